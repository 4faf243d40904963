/**
 * The permuted-pixel ablation's transform ({@link permutePixels}): the same images with their
 * pixels moved by one fixed random permutation. Every image keeps exactly its values
 * (features that shared a pixel still share one); only the layout's neighbourhoods are
 * destroyed. If a CNN does as well on these, the layout carries nothing it uses.
 *
 * @module
 */
import { Random } from "../random.ts";
import type { FeatureBatch, ImageBatch } from "../types.ts";

/** The permutation {@link permutePixels} applies: `out[p] = in[permutation[p]]`. */
export function pixelPermutation(pixels: number, seed: number): Int32Array {
  return Int32Array.from(new Random(seed).permutation(pixels));
}

/** Applies one seeded permutation of the pixel positions to every image (every channel alike). */
export function permutePixels<T extends ImageBatch | FeatureBatch>(images: T, seed: number): T {
  const [n, h, w] = images.shape;
  const hw = h * w;
  const channels = images.data.length / (n * hw);
  const perm = pixelPermutation(hw, seed);
  const out = new Float32Array(images.data.length);
  for (let i = 0; i < n; i++) {
    const base = i * hw * channels;
    for (let p = 0; p < hw; p++) {
      for (let c = 0; c < channels; c++) {
        out[base + p * channels + c] = images.data[base + perm[p] * channels + c];
      }
    }
  }
  return { data: out, shape: images.shape } as T;
}
