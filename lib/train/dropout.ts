/**
 * Seeded dropout for the trainable network, with the mask drawn in one pass of a
 * counter-based hash: value `i` is kept (and scaled by `1/(1 − rate)`) when
 * `hash(i ⊕ hash(seed))` falls below `(1 − rate)·2³²`. The same seed gives the same mask on
 * every backend and in every worker. TF.js's `tf.dropout` draws each value from its seeded
 * JavaScript generator and then takes four passes (add, floor, divide, multiply): on the
 * paper's 150×150 conv stack that was about a sixth of a training step.
 *
 * The hash is MurmurHash3's 32-bit finalizer (`fmix32`), a bijection whose output bits
 * each depend on every input bit, so consecutive indices give unrelated values.
 *
 * @module
 */
import { tf } from "../tf.ts";

function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

let scratch: Float32Array | undefined;

/**
 * The dropout mask of `size` values for `rate` and `seed`: `1/(1 − rate)` where a value is
 * kept, 0 where it is dropped. Written into a buffer reused between calls (valid until the
 * next call).
 */
export function dropoutMask(size: number, rate: number, seed: number): Float32Array {
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${rate}`);
  if (!scratch || scratch.length < size) scratch = new Float32Array(size);
  const mask = scratch.subarray(0, size);
  const keep = 1 - rate, scale = 1 / keep;
  const threshold = Math.min(2 ** 32, Math.round(keep * 2 ** 32));
  const key = fmix32(seed >>> 0);
  for (let i = 0; i < size; i++) mask[i] = fmix32((i ^ key) >>> 0) < threshold ? scale : 0;
  return mask;
}

/** `x` with dropout at `rate` (inverted: kept values scaled by `1/(1 − rate)`), seeded. */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  if (rate === 0) return x;
  const mask = dropoutMask(x.size, rate, seed);
  return tf.tidy(() => tf.mul(x, tf.tensor(mask, x.shape, "float32"))) as T;
}
