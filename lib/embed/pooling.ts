/**
 * Pooling of token states `[batch, tokens, hidden]` into one vector per text, written
 * straight into the output matrix.
 *
 * @module
 */
import type { Pooling } from "./types.ts";

/**
 * Pools sample `sample` of `states` (`[batch, tokens, hidden]`, row-major) over its first
 * `length` tokens and writes the `hidden` values to `out` at `outOffset`.
 * `"cls"` takes token 0; `"mean"` averages tokens `0..length-1` (in float64).
 */
export function poolInto(
  states: Float32Array,
  tokens: number,
  hidden: number,
  sample: number,
  length: number,
  pooling: Pooling,
  out: Float32Array,
  outOffset: number,
): void {
  const base = sample * tokens * hidden;
  if (pooling === "cls") {
    out.set(states.subarray(base, base + hidden), outOffset);
    return;
  }
  if (length < 1 || length > tokens) {
    throw new RangeError(`mean pooling over ${length} of ${tokens} tokens`);
  }
  const sum = new Float64Array(hidden);
  for (let t = 0; t < length; t++) {
    const row = base + t * hidden;
    for (let h = 0; h < hidden; h++) sum[h] += states[row + h];
  }
  for (let h = 0; h < hidden; h++) out[outOffset + h] = sum[h] / length;
}
