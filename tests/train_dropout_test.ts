/**
 * The trainable network's seeded dropout (lib/train/dropout.ts) against its definition:
 * the kept fraction within binomial bounds, kept values scaled by exactly 1/(1 − rate),
 * masks equal for equal seeds and unrelated for different seeds or neighbouring values, the
 * gradient equal to the mask, and bad rates refused.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { ready, tf } from "../lib/tf.ts";
import { dropout, dropoutMask } from "../lib/train/dropout.ts";

Deno.test("dropout mask: kept fraction, scale, seeds and neighbours as a fair coin would give", () => {
  const n = 200_000, rate = 0.2, keep = 1 - rate;
  const mask = dropoutMask(n, rate, 12345).slice();
  const scale = Math.fround(1 / keep);
  let kept = 0, both = 0;
  for (let i = 0; i < n; i++) {
    assert(mask[i] === 0 || mask[i] === scale, `value ${i} is ${mask[i]}`);
    if (mask[i] !== 0) kept++;
    if (i > 0 && mask[i] !== 0 && mask[i - 1] !== 0) both++;
  }
  const sd = Math.sqrt(n * keep * rate);
  assert(Math.abs(kept - n * keep) < 5 * sd, `kept ${kept} of ${n}`);
  // neighbours: both kept with probability keep² if independent
  const sdPairs = Math.sqrt(n * keep * keep * (1 - keep * keep));
  assert(Math.abs(both - n * keep * keep) < 5 * sdPairs, `neighbours both kept ${both}`);
  assertEquals(dropoutMask(n, rate, 12345), mask);
  const other = dropoutMask(n, rate, 12346);
  let same = 0;
  for (let i = 0; i < n; i++) if ((other[i] !== 0) === (mask[i] !== 0)) same++;
  const agree = keep * keep + rate * rate; // two independent masks agree this often
  assert(Math.abs(same - n * agree) < 5 * Math.sqrt(n * agree * (1 - agree)), `agree ${same}`);
});

Deno.test("dropout: values times the mask, gradient the mask; rate 0 is the identity", async () => {
  await ready("wasm");
  const x = tf.randomNormal([4, 5, 6, 7], 0, 1, "float32", 3);
  const mask = dropoutMask(x.size, 0.3, 9).slice();
  const y = dropout(x, 0.3, 9);
  const xv = x.dataSync(), yv = y.dataSync();
  for (let i = 0; i < x.size; i++) assertEquals(yv[i], Math.fround(xv[i] * mask[i]));
  const grad = tf.grad((t: tf.Tensor) => tf.sum(dropout(t, 0.3, 9)))(x);
  assertEquals(grad.dataSync(), mask);
  assertEquals(dropout(x, 0, 9), x);
  assertThrows(() => dropout(x, 1, 9), Error, "rate must be in [0, 1)");
  assertThrows(() => dropoutMask(3, -0.1, 9), Error, "rate must be in [0, 1)");
  tf.dispose([x, y, grad]);
});
