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
import { getBackboneSpec } from "./registry.ts";
import type { BackboneSpec } from "./registry.ts";
import { buildTorchvisionModel, getTorchvisionArch } from "./torchvision/architectures.ts";
import type { TorchvisionArch } from "./torchvision/spec.ts";
import type { StateDict, StateDictSource, TensorInfo } from "./torch/types.ts";

/**
 * A random `state_dict` for a torchvision architecture, drawn in PyTorch's own shapes so
 * grouped and depthwise convolutions keep their structure: conv and linear weights He normal
 * over PyTorch's fan-in (`in / groups · kh · kw`), biases 0, BatchNorm the identity (weight 1,
 * bias 0, running mean 0, running variance 1). Nothing is read from a file.
 */
export function randomTorchvisionStateDict(arch: TorchvisionArch, seed: number): StateDictSource {
  const random = new Random(seed);
  const state: StateDict = new Map();
  const entries = new Map<string, TensorInfo>();
  for (const { key, shape } of getTorchvisionArch(arch).params()) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    // Only BatchNorm has a 1-D `weight`; conv and linear weights are 2-D or 4-D.
    const bnWeight = key.endsWith(".weight") && shape.length === 1;
    if (key.endsWith(".running_var") || bnWeight) data.fill(1);
    else if (key.endsWith(".weight") && shape.length >= 2) {
      const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
      const std = Math.sqrt(2 / fanIn);
      for (let i = 0; i < size; i++) data[i] = std * random.normal();
    }
    entries.set(key, { dtype: "float32", shape });
    state.set(key, { dtype: "float32", shape, data });
  }
  return {
    entries,
    description: `random ${arch} weights (seed ${seed})`,
    read: (keys) => {
      const out: StateDict = new Map();
      for (const k of keys) {
        const t = state.get(k);
        if (!t) throw new Error(`random ${arch} weights: no key ${k}`);
        out.set(k, t);
      }
      return Promise.resolve(out);
    },
    close: () => {},
  };
}

/** {@link randomlyInitialisedBackbone} for a torchvision backbone: built from random weights. */
async function randomTorchvisionBackbone(spec: BackboneSpec, seed: number): Promise<Backbone> {
  const arch = spec.torchvision as TorchvisionArch;
  const built = await buildTorchvisionModel(arch, randomTorchvisionStateDict(arch, seed));
  return new Backbone(
    {
      ...spec,
      name: `${spec.name}_random_init_s${seed}`,
      description: `${spec.description} — weights drawn at random (seed ${seed})`,
    },
    built.model,
    built.layerNames,
    `random ${arch} weights (seed ${seed}; no checkpoint read)`,
    { shardsRead: [], bytes: 0 },
  );
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
 * registered under the name `<name>_random_init_s<seed>` (so each seed's features are cached
 * apart). The
 * architecture, slice and preprocessing are the pretrained one's.
 */
export async function randomlyInitialisedBackbone(name: string, seed: number): Promise<Backbone> {
  const registered = getBackboneSpec(name);
  if (registered.torchvision !== undefined) {
    return await randomTorchvisionBackbone(registered, seed);
  }
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
