/**
 * The random-weights ablation's backbone ({@link randomlyInitialisedBackbone}): the same
 * network with random weights instead of ImageNet's (He-normal kernels, zero biases, identity
 * BatchNorm), under its own name per seed so its features are cached apart. If it does as
 * well as the pretrained one, ImageNet pretraining does not help.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { Random } from "../random.ts";
import { Backbone, loadBackbone } from "./backbone.ts";

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
 * registered under the name `<name>_random_init_s<seed>` (so each seed's features are cached
 * apart). The
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
    name: `${pretrained.spec.name}_random_init_s${seed}`,
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
