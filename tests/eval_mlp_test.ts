/** The MLP baseline learns a separable problem, is seeded, and keeps its best epoch. */
import { assert, assertEquals, assertGreater, assertThrows } from "@std/assert";
import { ready } from "../lib/tf.ts";
import { MLPClassifier } from "../lib/eval/mod.ts";
import { Random } from "../lib/random.ts";
import type { Matrix } from "../lib/types.ts";

/** Two Gaussian clouds in 20 dimensions (unit variance), 6 apart along a random axis. */
function clouds(n: number, seed: number): { x: Matrix; y: Uint8Array } {
  const random = new Random(seed);
  const d = 20;
  const axis = new Random(99).permutation(d).map((i) => (i % 2 ? 1 : -1) / Math.sqrt(d));
  const data = new Float32Array(n * d), y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    for (let j = 0; j < d; j++) {
      data[i * d + j] = 5 + random.normal() + (y[i] ? 3 : -3) * axis[j];
    }
  }
  return { x: { data, shape: [n, d] }, y };
}

Deno.test("MLPClassifier learns two separated clouds and is reproducible", async () => {
  await ready("wasm");
  const train = clouds(400, 1), validation = clouds(100, 2), test = clouds(400, 3);
  const options = { hidden: [16], epochs: 8, batchSize: 32, seed: 4 };
  const a = new MLPClassifier(options).fit(train.x, train.y, validation);
  const p = a.predictProba(test.x);
  let correct = 0;
  a.predict(test.x).forEach((v, i) => (correct += v === test.y[i] ? 1 : 0));
  assertGreater(correct / 400, 0.95);
  assertEquals(a.history_.length, 8);
  const best = Math.max(...a.history_.map((h) => h.validationAccuracy!));
  assertEquals(a.history_[a.selectedEpoch_! - 1].validationAccuracy, best);
  assertEquals(a.countParams(), 20 * 16 + 16 + 16 * 2 + 2);
  const b = new MLPClassifier(options).fit(train.x, train.y, validation);
  assertEquals(Array.from(b.predictProba(test.x)), Array.from(p));
  assert(p.every((v) => v >= 0 && v <= 1));
  assertThrows(() => a.predictProba({ data: new Float32Array(3), shape: [1, 3] }), Error, "20");
  a.dispose();
  b.dispose();
});
