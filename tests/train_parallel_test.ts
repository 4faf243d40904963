/**
 * Data-parallel training on two workers: with dropout off it computes what one thread
 * computes (BatchNorm over the whole batch, summed gradients), it is deterministic, and the
 * collective's sums are exact and in rank order.
 */
import { assert, assertEquals } from "@std/assert";
import { ready } from "../lib/tf.ts";
import { Collective, createCollectiveBuffers, ImageClassifier } from "../lib/train/mod.ts";
import type { ArchitectureSpec, NamedArrays } from "../lib/train/mod.ts";
import { join } from "node:path";
import { featureData, TINY } from "./_train_fixtures.ts";

const NO_DROPOUT: ArchitectureSpec = {
  ...TINY,
  convStack: { ...TINY.convStack, dropout: 0 },
  head: { ...TINY.head, inputDropout: 0, hiddenDropout: [0, 0] },
};

/** The largest ‖a − b‖ / ‖a‖ over the tensors (the agreement rule of the native kernels). */
function maxRelativeDifference(a: NamedArrays, b: NamedArrays): number {
  let worst = 0;
  for (const name of Object.keys(a)) {
    const x = a[name].data, y = b[name].data;
    let err = 0, norm = 0;
    for (let i = 0; i < x.length; i++) {
      err += (x[i] - y[i]) ** 2;
      norm += x[i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(err / Math.max(norm, 1e-24)));
  }
  return worst;
}

Deno.test("a group of one sums nothing; buffers reject a bad size", () => {
  const single = Collective.single();
  assertEquals(Array.from(single.allReduceSum(Float64Array.of(1, 2))), [1, 2]);
  let threw = false;
  try {
    createCollectiveBuffers(0, 4);
  } catch {
    threw = true;
  }
  assert(threw);
});

Deno.test("three ranks split an update and gather its parts across slot-sized chunks", async () => {
  const ranks = 3, length = 23, capacity = 5; // five chunks, the last one short
  const buffers = createCollectiveBuffers(ranks, capacity);
  const replies = await Promise.all(
    Array.from({ length: ranks }, (_, rank) => {
      const worker = new Worker(new URL("./_collective_worker.ts", import.meta.url), {
        type: "module",
      });
      return new Promise<{ values: number[]; seen: number[]; owners: number[] }>(
        (resolve, reject) => {
          worker.onmessage = (e) => {
            worker.terminate();
            resolve(e.data);
          };
          worker.onerror = (e) => {
            worker.terminate();
            reject(e);
          };
          worker.postMessage({ buffers, rank, length });
        },
      );
    }),
  );
  // Σ_r (r + 1)(i + 1) = 6(i + 1), then 10 · sum + i, on every rank.
  const expected = Array.from({ length }, (_, i) => 10 * 6 * (i + 1) + i);
  for (const reply of replies) assertEquals(reply.values, expected);
  // Every index was updated by exactly one rank, and each rank did about a third.
  const seen = replies.flatMap((r) => r.seen).sort((a, b) => a - b);
  assertEquals(seen, Array.from({ length }, (_, i) => i));
  for (const reply of replies) assert(reply.seen.length >= 5 && reply.seen.length <= 9);
  // allGatherParts hands every rank every owner's part.
  const owners = Array.from({ length }, (_, i) => replies.findIndex((r) => r.seen.includes(i)));
  for (const reply of replies) assertEquals(reply.owners, owners);
});

Deno.test("two workers train the same model as one thread (dropout off)", async () => {
  await ready("wasm");
  const train = featureData(100, 1), validation = featureData(40, 2);
  const run = async (workers: number) => {
    const clf = new ImageClassifier({
      architecture: NO_DROPOUT,
      epochs: 2,
      batchSize: 16,
      seed: 3,
      workers,
      progressBar: false,
    });
    await clf.fit(train.x, train.y, validation);
    const out = {
      weights: clf.network_!.getWeights(),
      history: clf.history_,
      proba: clf.predictProba(validation.x),
    };
    clf.dispose();
    return out;
  };
  const one = await run(1);
  const two = await run(2);
  const again = await run(2);
  const diff = maxRelativeDifference(one.weights, two.weights);
  assert(diff < 1e-4, `one thread vs two workers: relative difference ${diff}`);
  assertEquals(two.history.length, 2);
  for (let e = 0; e < 2; e++) {
    assert(Math.abs(one.history[e].trainLoss - two.history[e].trainLoss) < 1e-4);
    assertEquals(one.history[e].validationAccuracy, two.history[e].validationAccuracy);
  }
  // Deterministic: the same run twice gives the same bits.
  assertEquals(two.weights, again.weights);
  assertEquals(Array.from(two.proba), Array.from(again.proba));
});

Deno.test("a data-parallel run resumed from its checkpoint ends as the uninterrupted one", async () => {
  await ready("wasm");
  const train = featureData(80, 4), validation = featureData(32, 5);
  const root = await Deno.makeTempDir();
  const fit = async (dir: string, epochs: number) => {
    const clf = new ImageClassifier({
      architecture: TINY,
      epochs,
      batchSize: 16,
      seed: 9,
      workers: 2,
      progressBar: false,
      checkpointDir: join(root, dir),
    });
    await clf.fit(train.x, train.y, validation);
    const out = { weights: clf.network_!.getWeights(), resumed: clf.resumedEpochs_ };
    clf.dispose();
    return out;
  };
  try {
    const whole = await fit("a", 3);
    await fit("b", 1);
    const resumed = await fit("b", 3);
    assertEquals(resumed.resumed, 1);
    // Equal bits: the optimizer state the ranks kept in parts was gathered and restored.
    assertEquals(resumed.weights, whole.weights);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
