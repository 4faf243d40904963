/**
 * The two ablations that test the paper's idea:
 *
 * - {@link permutePixels}: the same images with their pixels moved by one fixed random
 *   permutation. Every image keeps exactly its values (features that shared a pixel still
 *   share one), only the t-SNE neighbourhood is destroyed. If the CNN does as well on these,
 *   the layout does not matter.
 * - {@link randomlyInitialisedBackbone}: the same network with random weights instead of
 *   ImageNet's (He-normal kernels, zero biases, identity BatchNorm), a fresh copy under its
 *   own name so its features are cached apart. If it does as well, ImageNet pretraining
 *   does not help.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { Random } from "../random.ts";
import type { ImageBatch } from "../types.ts";
import { Backbone, loadBackbone } from "../vision/mod.ts";

/** The permutation {@link permutePixels} applies: `out[p] = in[permutation[p]]`. */
export function pixelPermutation(pixels: number, seed: number): Int32Array {
  return Int32Array.from(new Random(seed).permutation(pixels));
}

/** Applies one seeded permutation of the pixel positions to every image. */
export function permutePixels(images: ImageBatch, seed: number): ImageBatch {
  const [n, h, w] = images.shape;
  const hw = h * w;
  const perm = pixelPermutation(hw, seed);
  const out = new Float32Array(images.data.length);
  for (let i = 0; i < n; i++) {
    const base = i * hw;
    for (let p = 0; p < hw; p++) out[base + p] = images.data[base + perm[p]];
  }
  return { data: out, shape: [n, h, w] };
}

/** Initial value of a weight, by its Keras name. */
function randomValues(name: string, shape: number[], random: Random): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const last = name.split("/").pop() ?? name;
  if (/gamma|moving_variance/.test(last)) return out.fill(1);
  if (/beta|bias|moving_mean/.test(last)) return out;
  // Kernels: He normal over the fan-in (depthwise kernels: kh·kw per channel).
  let fanIn: number;
  if (/depthwise/.test(last) && shape.length === 4) fanIn = shape[0] * shape[1];
  else if (shape.length === 4) fanIn = shape[0] * shape[1] * shape[2];
  else if (shape.length === 2) fanIn = shape[0];
  else fanIn = Math.max(1, size / (shape[shape.length - 1] ?? 1));
  const std = Math.sqrt(2 / fanIn);
  for (let i = 0; i < size; i++) out[i] = std * random.normal();
  return out;
}

/**
 * A copy of backbone `name` (registry name) whose weights are drawn at random from `seed`,
 * registered under the name `<name>_random_init` (so its feature cache is separate). The
 * architecture, slice and preprocessing are the pretrained one's.
 */
export async function randomlyInitialisedBackbone(name: string, seed: number): Promise<Backbone> {
  const pretrained = await loadBackbone(name);
  const random = new Random(seed);
  for (const layer of pretrained.model.layers) {
    const weights = layer.weights;
    if (weights.length === 0) continue;
    const values = weights.map((w) =>
      tf.tensor(
        randomValues(w.originalName ?? w.name, w.shape as number[], random),
        w.shape as number[],
      )
    );
    layer.setWeights(values);
    tf.dispose(values);
  }
  const spec = {
    ...pretrained.spec,
    name: `${pretrained.spec.name}_random_init`,
    description: `${pretrained.spec.description} — weights re-initialised at random (seed ${seed})`,
  };
  return new Backbone(
    spec,
    pretrained.model,
    pretrained.layerNames,
    `${pretrained.loadedFrom} (weights re-initialised at random, seed ${seed})`,
    pretrained.weightReport,
    pretrained.loadOptions,
  );
}
