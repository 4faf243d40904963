/**
 * Slicing a TF.js layers model before its weights are read: parse `model.json`, keep the
 * layers the named layer depends on, build that graph with TF.js layers (any input size,
 * every layer frozen), then read only the weight shards those layers need. A shard that only
 * later layers need may be absent; an absent shard the slice needs is an error naming the
 * file.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { freezeModel, FROZEN_CLASS_NAMES } from "./frozen.ts";
import type { ModelStore } from "./source.ts";

/** One Keras layer in `model.json` (Keras 2 `get_config()` layout). */
export interface KerasLayerJson {
  /** Keras class, e.g. `"Conv2D"`. */
  class_name: string;
  /** The layer's config; `name` is always set. */
  config: { name: string; [key: string]: unknown };
  /** Functional models: `[[[layerName, nodeIndex, tensorIndex, kwargs], …], …]`. */
  inbound_nodes?: unknown[];
  /** Functional models repeat the name here. */
  name?: string;
}

/** The `model_config` of a Keras functional model or Sequential. */
export interface KerasModelConfigJson {
  class_name: string;
  config:
    | {
      name?: string;
      layers: KerasLayerJson[];
      input_layers?: unknown[];
      output_layers?: unknown[];
    }
    | KerasLayerJson[];
}

/** A TF.js layers-model file (`model.json`). */
export interface LayersModelJson {
  /** The Keras topology; `model_config` holds the graph. */
  modelTopology: { model_config?: KerasModelConfigJson; [key: string]: unknown };
  /** Weight groups: shard files and the weights packed in them, in order. */
  weightsManifest: tf.io.WeightsManifestConfig;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
}

/** What {@link sliceTopology} kept. */
export interface SlicedTopology {
  /** A `modelTopology` for `tf.models.modelFromJSON`, holding only the kept layers. */
  modelTopology: { model_config: KerasModelConfigJson };
  /** Names of the kept layers, in file order. */
  layerNames: string[];
  /** The original input shape `[h, w, c]` (null dims where the file had none). */
  originalInputShape: (number | null)[];
  /** BatchNormalization (and activation) layers folded into convolutions. */
  folds: Fold[];
}

/** A BatchNormalization layer (and maybe an activation) folded into the convolution before it. */
export interface Fold {
  /** The Conv2D / DepthwiseConv2D layer that absorbs the others. */
  conv: string;
  /** Keras class of `conv`. */
  convClass: string;
  /** Whether `conv` had a bias in the file. */
  convHadBias: boolean;
  /** The folded BatchNormalization layer. */
  bn: string;
  /** Its epsilon. */
  epsilon: number;
  /** Whether it has gamma (`scale`) and beta (`center`) weights. */
  scale: boolean;
  center: boolean;
  /** The folded activation layer, if any. */
  activation?: string;
}

const FOLDABLE_CONVS = new Set(["Conv2D", "DepthwiseConv2D"]);

/** The activation name an activation layer computes, if it can become a conv's activation. */
function activationOf(layer: KerasLayerJson): string | null {
  const c = layer.config as Record<string, unknown>;
  if (layer.class_name === "Activation") {
    return ["relu", "relu6", "linear", "sigmoid", "tanh", "elu", "selu"].includes(
        c.activation as string,
      )
      ? c.activation as string
      : null;
  }
  if (layer.class_name === "ReLU") {
    if ((c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0) return null;
    if (c.max_value === null || c.max_value === undefined) return "relu";
    return c.max_value === 6 ? "relu6" : null;
  }
  return null;
}

/**
 * Folds, in place, BatchNormalization layers (channels-last) into the convolution that is
 * their only input and has them as its only consumer, and then a following activation layer
 * into the convolution. Returns what was folded and how names map (removed → conv).
 */
function foldLayers(
  layers: KerasLayerJson[],
): { kept: KerasLayerJson[]; folds: Fold[]; renamed: Map<string, string> } {
  const byName = new Map(layers.map((l) => [l.config.name, l]));
  const consumers = new Map<string, string[]>();
  for (const layer of layers) {
    for (const name of inboundNames(layer)) {
      consumers.set(name, [...(consumers.get(name) ?? []), layer.config.name]);
    }
  }
  const only = (name: string): KerasLayerJson | undefined => {
    const c = consumers.get(name) ?? [];
    return c.length === 1 ? byName.get(c[0]) : undefined;
  };
  const folds: Fold[] = [];
  const renamed = new Map<string, string>();
  for (const conv of layers) {
    const cc = conv.config as Record<string, unknown>;
    if (!FOLDABLE_CONVS.has(conv.class_name)) continue;
    if (
      (cc.activation ?? "linear") !== "linear" ||
      (cc.data_format ?? "channels_last") !== "channels_last"
    ) continue;
    const bn = only(conv.config.name);
    if (!bn || bn.class_name !== "BatchNormalization" || inboundNames(bn).length !== 1) continue;
    const bc = bn.config as Record<string, unknown>;
    const axis = Array.isArray(bc.axis) ? bc.axis : [bc.axis ?? -1];
    if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 3)) continue;
    const fold: Fold = {
      conv: conv.config.name,
      convClass: conv.class_name,
      convHadBias: cc.use_bias !== false,
      bn: bn.config.name,
      epsilon: (bc.epsilon as number | undefined) ?? 1e-3,
      scale: bc.scale !== false,
      center: bc.center !== false,
    };
    cc.use_bias = true;
    renamed.set(bn.config.name, conv.config.name);
    const act = only(bn.config.name);
    const activation = act && inboundNames(act).length === 1 ? activationOf(act) : null;
    if (act && activation) {
      cc.activation = activation;
      fold.activation = act.config.name;
      renamed.set(act.config.name, conv.config.name);
    }
    folds.push(fold);
  }
  const kept = layers.filter((l) => !renamed.has(l.config.name));
  for (const layer of kept) {
    for (const node of layer.inbound_nodes ?? []) {
      for (const tensor of node as unknown[][]) {
        if (Array.isArray(tensor) && renamed.has(tensor[0] as string)) {
          tensor[0] = renamed.get(tensor[0] as string);
        }
      }
    }
  }
  return { kept, folds, renamed };
}

/** Options of {@link sliceTopology}. */
export interface SliceTopologyOptions {
  /**
   * Spatial input size `[h, w]`; `null` (default) leaves it open so any size works, except
   * for graphs with a `Flatten` layer, which keep the file's size.
   */
  inputSize?: [number, number] | null;
  /** Replace layers by their inference-only variants and mark all non-trainable (default true). */
  freeze?: boolean;
  /**
   * Fold each BatchNormalization into the convolution before it, and a following ReLU-type
   * activation into that convolution's activation (default: same as `freeze`). Exact in
   * inference mode, and faster: fewer passes over the feature maps.
   */
  fold?: boolean;
}

function modelConfig(json: LayersModelJson): KerasModelConfigJson {
  const topology = json.modelTopology as Record<string, unknown>;
  const config = (topology.model_config ?? topology) as KerasModelConfigJson;
  if (!config || typeof config.class_name !== "string") {
    throw new Error(
      "model.json has no Keras model_config: only TF.js *layers* models can be sliced " +
        "(graph models from tf.saved_model conversions cannot).",
    );
  }
  return config;
}

/** The layers of a `model.json`, in file order. */
export function listLayers(json: LayersModelJson): KerasLayerJson[] {
  const config = modelConfig(json).config;
  return Array.isArray(config) ? config : config.layers;
}

function inboundNames(layer: KerasLayerJson): string[] {
  const names: string[] = [];
  for (const node of layer.inbound_nodes ?? []) {
    if (!Array.isArray(node)) {
      throw new Error(
        `Layer "${layer.config.name}" uses a Keras 3 inbound-node format that TF.js ` +
          `layers cannot read; convert the model with a Keras 2 / tf.keras setup.`,
      );
    }
    for (const tensor of node) {
      if (Array.isArray(tensor) && typeof tensor[0] === "string") names.push(tensor[0]);
    }
  }
  return names;
}

/**
 * Cuts the topology after `sliceLayer` (`null` keeps every layer) and returns a topology for
 * `tf.models.modelFromJSON` with frozen layers and an open (or given) input size.
 */
export function sliceTopology(
  json: LayersModelJson,
  sliceLayer: string | null,
  options: SliceTopologyOptions = {},
): SlicedTopology {
  const freeze = options.freeze ?? true;
  const config = modelConfig(json);
  const sequential = Array.isArray(config.config) || config.class_name === "Sequential";
  const layers = listLayers(json);
  const byName = new Map(layers.map((l) => [l.config.name, l]));
  if (sliceLayer !== null && !byName.has(sliceLayer)) {
    const names = layers.map((l) => l.config.name);
    throw new Error(
      `Layer "${sliceLayer}" is not in this model. Its ${names.length} layers: ` +
        `${names.join(", ")}`,
    );
  }

  let kept: KerasLayerJson[];
  if (sequential) {
    const end = sliceLayer === null
      ? layers.length
      : layers.findIndex((l) => l.config.name === sliceLayer) + 1;
    kept = layers.slice(0, end);
  } else if (sliceLayer === null) {
    kept = layers;
  } else {
    const needed = new Set<string>();
    const stack = [sliceLayer];
    while (stack.length) {
      const name = stack.pop()!;
      if (needed.has(name)) continue;
      needed.add(name);
      const layer = byName.get(name);
      if (!layer) throw new Error(`model.json: layer "${name}" is referenced but not defined`);
      stack.push(...inboundNames(layer));
    }
    kept = layers.filter((l) => needed.has(l.config.name));
  }

  let copies: KerasLayerJson[] = structuredClone(kept);
  let folds: Fold[] = [];
  let outputName = sliceLayer;
  if ((options.fold ?? freeze) && !sequential) {
    const folded = foldLayers(copies);
    copies = folded.kept;
    folds = folded.folds;
    if (outputName !== null) outputName = folded.renamed.get(outputName) ?? outputName;
  }
  const hasFlatten = copies.some((l) => l.class_name === "Flatten");
  let originalInputShape: (number | null)[] = [];
  for (const [i, layer] of copies.entries()) {
    const c = layer.config as Record<string, unknown>;
    const shape = c.batch_input_shape as (number | null)[] | undefined;
    const isInput = layer.class_name === "InputLayer" || (sequential && i === 0);
    if (isInput && shape) {
      originalInputShape = shape.slice(1);
      if (shape.length === 4) {
        const size = options.inputSize ?? (hasFlatten ? [shape[1], shape[2]] : [null, null]);
        c.batch_input_shape = [null, size[0], size[1], shape[3]];
      }
    }
    if (freeze) {
      c.trainable = false;
      const frozen = FROZEN_CLASS_NAMES[layer.class_name];
      if (frozen) layer.class_name = frozen;
    }
  }

  let modelConfigOut: KerasModelConfigJson;
  if (sequential) {
    modelConfigOut = { class_name: "Sequential", config: { name: "sliced", layers: copies } };
  } else {
    const full = config.config as { name?: string; input_layers?: unknown[] };
    const keptNames = new Set(copies.map((l) => l.config.name));
    const inputs = (full.input_layers ?? []).filter((t) =>
      Array.isArray(t) && keptNames.has(t[0] as string)
    );
    const renamedOutputs = new Map(
      folds.flatMap((f) =>
        [[f.bn, f.conv], ...(f.activation ? [[f.activation, f.conv]] : [])] as [string, string][]
      ),
    );
    const outputs = outputName === null
      ? ((config.config as { output_layers?: unknown[] }).output_layers ?? []).map((t) =>
        Array.isArray(t) && renamedOutputs.has(t[0]) ? [renamedOutputs.get(t[0]), ...t.slice(1)] : t
      )
      : [[outputName, 0, 0]];
    modelConfigOut = {
      class_name: config.class_name,
      config: {
        name: full.name ?? "sliced",
        layers: copies,
        input_layers: inputs,
        output_layers: outputs,
      },
    };
  }
  return {
    modelTopology: { model_config: modelConfigOut },
    layerNames: copies.map((l) => l.config.name),
    originalInputShape,
    folds,
  };
}

/** Where one weight sits in its group's concatenated shards. */
export interface WeightLocation {
  /** Manifest entry (name, shape, dtype, quantization). */
  entry: tf.io.WeightsManifestEntry;
  /** Index of the group in `weightsManifest`. */
  group: number;
  /** Byte offset in the group's concatenated shards. */
  offset: number;
  /** Byte length. */
  length: number;
}

const BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

function entryBytes(entry: tf.io.WeightsManifestEntry): number {
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const dtype = entry.quantization?.dtype ?? entry.dtype;
  const bytes = BYTES[dtype];
  if (!bytes) throw new Error(`Weight "${entry.name}" has unsupported dtype ${dtype}`);
  return count * bytes;
}

/** The byte location of every weight in the manifest, keyed by weight name. */
export function locateWeights(manifest: tf.io.WeightsManifestConfig): Map<string, WeightLocation> {
  const out = new Map<string, WeightLocation>();
  manifest.forEach((group, g) => {
    let offset = 0;
    for (const entry of group.weights) {
      const length = entryBytes(entry);
      out.set(entry.name, { entry, group: g, offset, length });
      offset += length;
    }
  });
  return out;
}

/** Total bytes of each group, from its entries. */
function groupBytes(manifest: tf.io.WeightsManifestConfig): number[] {
  return manifest.map((group) => group.weights.reduce((sum, e) => sum + entryBytes(e), 0));
}

/** Statistics of one weight read, for tests and logs. */
export interface WeightReadReport {
  /** Shard files read, in order of reading. */
  shardsRead: string[];
  /** Bytes of weights decoded. */
  bytes: number;
}

/**
 * Reads the weights `names` from `store`, touching only the shards that hold them (and, for
 * their offsets, the sizes of earlier shards of the same group). `context` is added to errors
 * (e.g. which slice needs the weight).
 */
export async function readWeights(
  store: ModelStore,
  manifest: tf.io.WeightsManifestConfig,
  names: string[],
  context = "",
): Promise<{ tensors: tf.NamedTensorMap; report: WeightReadReport }> {
  const locations = locateWeights(manifest);
  const totals = groupBytes(manifest);
  const byGroup = new Map<number, WeightLocation[]>();
  for (const name of names) {
    const location = locations.get(name);
    if (!location) {
      throw new Error(
        `model.json at ${store.location} lists no weight "${name}"${context}. Is model.json ` +
          `from the same conversion as its layers?`,
      );
    }
    const list = byGroup.get(location.group) ?? [];
    list.push(location);
    byGroup.set(location.group, list);
  }

  const tensors: tf.NamedTensorMap = {};
  const report: WeightReadReport = { shardsRead: [], bytes: 0 };
  for (const [g, wanted] of [...byGroup.entries()].sort((a, b) => a[0] - b[0])) {
    const paths = manifest[g].paths;
    const end = Math.max(...wanted.map((w) => w.offset + w.length));
    // Shard boundaries up to the last byte needed. Absent shards get the size the TF.js
    // converter gives every shard but the last (all equal); the last one's size follows
    // from the manifest's total.
    const starts: number[] = [];
    const sizes: (number | null)[] = [];
    let start = 0;
    for (let i = 0; i < paths.length && start < end; i++) {
      starts.push(start);
      const size = await store.shardSize(paths[i]);
      sizes.push(size);
      if (size === null) {
        if (i === paths.length - 1) sizes[i] = totals[g] - start;
        else {
          let known: number | null = null;
          for (let j = 0; j < paths.length - 1 && known === null; j++) {
            if (j !== i) known = j < sizes.length ? sizes[j] : await store.shardSize(paths[j]);
          }
          if (known === null) {
            throw new Error(
              `Cannot locate weights of group ${g + 1} in ${store.location}: shard ` +
                `${store.shardLocation(paths[i])} is missing and no other shard of the group ` +
                `gives the shard size${context}.`,
            );
          }
          sizes[i] = known;
        }
      }
      start += sizes[i]!;
    }
    const cache = new Map<number, Uint8Array>();
    const shard = async (i: number, weight: string): Promise<Uint8Array> => {
      let bytes = cache.get(i);
      if (bytes) return bytes;
      const read = await store.readShard(paths[i]);
      if (read === null) {
        throw new Error(
          `Weight shard ${store.shardLocation(paths[i])} is missing, but weight "${weight}"` +
            `${context} is stored in it. Put the file there, or slice at an earlier layer.`,
        );
      }
      bytes = read;
      cache.set(i, bytes);
      report.shardsRead.push(paths[i]);
      return bytes;
    };
    for (const w of wanted) {
      const buffer = new Uint8Array(w.length);
      for (let i = 0; i < starts.length; i++) {
        const s0 = starts[i], s1 = starts[i] + sizes[i]!;
        const lo = Math.max(s0, w.offset), hi = Math.min(s1, w.offset + w.length);
        if (lo >= hi) continue;
        const bytes = await shard(i, w.entry.name);
        if (bytes.length < hi - s0) {
          throw new Error(
            `Weight shard ${store.shardLocation(paths[i])} is truncated: ${bytes.length} ` +
              `bytes, but weight "${w.entry.name}" needs bytes up to ${hi - s0}.`,
          );
        }
        buffer.set(bytes.subarray(lo - s0, hi - s0), lo - w.offset);
      }
      const decoded = tf.io.decodeWeights(buffer.buffer, [w.entry]);
      tensors[w.entry.name] = decoded[w.entry.name];
      report.bytes += w.length;
    }
  }
  return { tensors, report };
}

/**
 * The weights of the folded graph: each folded convolution's kernel scaled by
 * γ/√(σ² + ε) per output channel and its bias set to (b − μ)·γ/√(σ² + ε) + β; the
 * BatchNormalization weights dropped. Returns new tensors (the caller disposes both maps).
 */
export function foldWeights(tensors: tf.NamedTensorMap, folds: Fold[]): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  const dropped = new Set<string>();
  for (const f of folds) {
    for (const w of ["gamma", "beta", "moving_mean", "moving_variance"]) {
      dropped.add(`${f.bn}/${w}`);
    }
  }
  for (const [name, t] of Object.entries(tensors)) if (!dropped.has(name)) out[name] = t.clone();
  for (const f of folds) {
    const kernelName = `${f.conv}/${
      f.convClass === "DepthwiseConv2D" ? "depthwise_kernel" : "kernel"
    }`;
    const [kernel, bias] = tf.tidy(() => {
      const mean = tensors[`${f.bn}/moving_mean`];
      const variance = tensors[`${f.bn}/moving_variance`];
      const gamma = f.scale ? tensors[`${f.bn}/gamma`] : tf.onesLike(mean);
      const beta = f.center ? tensors[`${f.bn}/beta`] : tf.zerosLike(mean);
      const scale = tf.div(gamma, tf.sqrt(tf.add(variance, f.epsilon)));
      const k = tensors[kernelName];
      const kernel = f.convClass === "DepthwiseConv2D"
        ? tf.mul(k, tf.reshape(scale, [1, 1, k.shape[2]!, k.shape[3]!]))
        : tf.mul(k, scale);
      const b0 = f.convHadBias ? tensors[`${f.conv}/bias`] : tf.zerosLike(mean);
      const bias = tf.add(tf.mul(tf.sub(b0, mean), scale), beta);
      return [kernel, bias];
    });
    out[kernelName].dispose();
    out[kernelName] = kernel;
    out[`${f.conv}/bias`]?.dispose();
    out[`${f.conv}/bias`] = bias;
  }
  return out;
}

/** Options of {@link buildSlicedModel}. */
export interface BuildSlicedModelOptions extends SliceTopologyOptions {
  /** Appended to error messages, e.g. which backbone is being loaded. */
  context?: string;
}

/** A built slice and what it took. */
export interface SlicedModel {
  /** The frozen model: input `[n, h, w, c]`, output the slice layer's output. */
  model: tf.LayersModel;
  /** The kept layers. */
  layerNames: string[];
  /** Which shards were read. */
  report: WeightReadReport;
  /** The input shape recorded in the file. */
  originalInputShape: (number | null)[];
  /** BatchNormalization (and activation) layers folded into convolutions. */
  folds: Fold[];
}

/**
 * Builds the graph up to `sliceLayer` from `json` and loads its weights from `store`, reading
 * only the shards it needs. The returned model is frozen (see `frozen.ts`).
 */
export async function buildSlicedModel(
  store: ModelStore,
  json: LayersModelJson,
  sliceLayer: string | null,
  options: BuildSlicedModelOptions = {},
): Promise<SlicedModel> {
  const sliced = sliceTopology(json, sliceLayer, options);
  const model = await tf.models.modelFromJSON({
    modelTopology: sliced.modelTopology as unknown as tf.serialization.ConfigDict,
  });
  const synthesized = new Set(
    sliced.folds.filter((f) => !f.convHadBias).map((f) => `${f.conv}/bias`),
  );
  const names = model.weights.map((w) => w.originalName).filter((n) => !synthesized.has(n));
  for (const f of sliced.folds) {
    if (f.scale) names.push(`${f.bn}/gamma`);
    if (f.center) names.push(`${f.bn}/beta`);
    names.push(`${f.bn}/moving_mean`, `${f.bn}/moving_variance`);
  }
  const context = options.context ??
    (sliceLayer === null ? "" : ` (needed by the slice up to "${sliceLayer}")`);
  let loaded: { tensors: tf.NamedTensorMap; report: WeightReadReport };
  try {
    loaded = await readWeights(store, json.weightsManifest, names, context);
  } catch (e) {
    model.dispose();
    throw e;
  }
  const weights = foldWeights(loaded.tensors, sliced.folds);
  model.loadWeights(weights, true);
  tf.dispose(Object.values(loaded.tensors));
  tf.dispose(Object.values(weights));
  if (options.freeze ?? true) freezeModel(model);
  return {
    model,
    layerNames: sliced.layerNames,
    report: loaded.report,
    originalInputShape: sliced.originalInputShape,
    folds: sliced.folds,
  };
}
