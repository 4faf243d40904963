/**
 * Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
 * Gradient-based Localization") for the trained image classifiers: for one class score y_c
 * (a logit, before the softmax), the channel weights are the spatial means of ∂y_c/∂A_k over
 * the last conv layer's activations A, and the map is ReLU(Σ_k w_k A_k), computed per review
 * and brought back to the DeepInsight layout grid (see `geometry.ts`).
 *
 * The layer: the output of the ReLU of the trainable stack's last [Conv, ReLU, BatchNorm]
 * block — the last rectified conv layer, as the paper takes for VGG. (The block's BatchNorm
 * output differs from it by a per-channel affine map in inference mode, so its CAM before the
 * ReLU differs only by a constant over the map.)
 *
 * Inputs are what the classifier trains on: a `FeatureSource` or feature maps in memory —
 * cached backbone features, images through the frozen backbone end to end
 * (`backboneFeatureSource`), or images fed to the trainable part directly. The frozen slice
 * is never differentiated: the CAM lives on the trainable stack's grid and reaches the image
 * through the slice's geometry.
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { FeatureBatch, ImageBatch, Labels } from "../types.ts";
import {
  adaptiveAvgPool,
  adaptivePoolMatrix,
  cachedFeatureSource,
  type ClassifierInput,
  type FeatureSource,
  ImageClassifier,
  registerTrainingKernels,
  TrainableNetwork,
} from "../train/mod.ts";
import {
  type CamGeometry,
  camToImageGrid,
  convStackPlacement,
  type InputGeometry,
  type Placement,
  resolveGeometry,
} from "./geometry.ts";

/**
 * Which rows a result was computed on. Attributions used to choose features must come from
 * `"train"` or `"validation"` rows (see `topk.ts`); `"test"` is for figures only, and so is
 * `"unseen"`: texts outside the run's split altogether (e.g. a review typed into notebook 8,
 * explained by `LoadedRun.explain`), which no model trained or was selected on, but which
 * are not the run's test rows either.
 */
export type RowSet = "train" | "validation" | "test" | "unseen";

/**
 * A network split at the layer the CAM is taken on. Both functions run in inference mode and
 * must output class scores (logits), not probabilities.
 */
export interface CamModel {
  /** Activations `[n, h, w, c]` of the CAM layer for inputs `[n, H′, W′, C]`. */
  activations(x: tf.Tensor4D): tf.Tensor4D;
  /** Class scores `[n, classes]` from those activations (differentiable). */
  logitsFrom(activations: tf.Tensor4D): tf.Tensor2D;
  /** The model input's `[height, width]` (the trainable stack's input grid). */
  readonly inputShape: [number, number];
  /** CAM cells on the model input (default: uniform over it). */
  readonly placement?: Placement;
  /** Frees what the split holds (not the model's weights). */
  dispose?(): void;
}

/** Options of {@link gradCam}. */
export interface GradCamOptions {
  /** Which rows `x` holds (required: it travels with the maps, see {@link RowSet}). */
  rows: RowSet;
  /**
   * The class whose score is explained: `"predicted"` (default, the arg-max logit), a class
   * index for every row, or one label per row (e.g. the true labels).
   */
  target?: "predicted" | number | Labels;
  /** How the inputs were made from the layout's images (default: they are the images). */
  geometry?: InputGeometry;
  /**
   * `"max"` (default): divide each review's map on the layout grid by its largest value
   * (maps in [0, 1], every review weighs the same in class means; an all-zero map stays 0);
   * `"none"`: keep the raw values (units of the class score).
   */
  normalize?: "max" | "none";
  /** Rows per forward/backward pass (default 32). */
  batchSize?: number;
}

/** Per-review class activation maps. */
export interface GradCamResult {
  /** Maps on the layout grid `[n, H, W]`. */
  cams: ImageBatch;
  /** Raw maps on the CAM layer's grid `[n, h, w]` (before resampling and normalisation). */
  convCams: ImageBatch;
  /** The class explained for each row. */
  targets: Uint8Array;
  /** The predicted class of each row. */
  predicted: Uint8Array;
  /** Which rows these are. */
  rows: RowSet;
  /** The resolved geometry from the CAM grid to the layout grid. */
  geometry: CamGeometry;
}

/** TrainableNetwork's BatchNorm ε (torch.nn.BatchNorm2d's), which its inference pass uses. */
const BN_EPSILON = 1e-5;

function byName(network: TrainableNetwork): Map<string, tf.Variable> {
  const map = new Map<string, tf.Variable>();
  for (const { name, variable } of [...network.params, ...network.state]) map.set(name, variable);
  return map;
}

/**
 * The trainable network split after its last conv block's ReLU, rebuilt from its public,
 * named parameters in inference mode (input standardisation, conv blocks with running-
 * statistics BatchNorm, adaptive average pool, MLP head), so it computes the same logits as
 * `network.apply(x, { training: false })`.
 */
export function networkCamModel(network: TrainableNetwork): CamModel {
  const vars = byName(network);
  const get = (name: string): tf.Variable => {
    const v = vars.get(name);
    if (!v) {
      throw new Error(
        `networkCamModel: the network has no variable "${name}"; its layout of named ` +
          `parameters changed — update lib/explain/gradcam.ts to match lib/train/network.ts.`,
      );
    }
    return v;
  };
  const { channels, kernelSize } = network.spec.convStack;
  const { hidden, poolSize } = network.spec.head;
  const blocks = channels.map((_, i) => ({
    kernel: get(`conv${i + 1}/kernel`) as tf.Tensor as tf.Tensor4D,
    bias: get(`conv${i + 1}/bias`),
    gamma: get(`conv${i + 1}/bn_gamma`),
    beta: get(`conv${i + 1}/bn_beta`),
    mean: get(`conv${i + 1}/bn_running_mean`),
    variance: get(`conv${i + 1}/bn_running_var`),
  }));
  const dense = [...hidden.map((_, i) => `dense${i + 1}`), "logits"].map((name) => ({
    kernel: get(`${name}/kernel`) as tf.Tensor as tf.Tensor2D,
    bias: get(`${name}/bias`),
  }));
  const input = vars.has("input/mean")
    ? { mean: get("input/mean"), scale: get("input/scale") }
    : undefined;
  const [ph, pw] = network.convOutputShape;
  const pool = tf.tensor2d(adaptivePoolMatrix(ph, pw, poolSize), [poolSize * poolSize, ph * pw]);
  const norm = (h: tf.Tensor4D, b: (typeof blocks)[number]): tf.Tensor4D =>
    tf.batchNorm(h, b.mean, b.variance, b.beta, b.gamma, BN_EPSILON) as tf.Tensor4D;
  return {
    inputShape: [network.inputShape[0], network.inputShape[1]],
    placement: convStackPlacement(channels.length, kernelSize, network.padding),
    activations: (x) =>
      tf.tidy(() => {
        let h: tf.Tensor4D = input ? tf.mul(tf.sub(x, input.mean), input.scale) : x;
        blocks.forEach((b, i) => {
          h = tf.fused.conv2d({
            x: h,
            filter: b.kernel,
            bias: b.bias,
            strides: 1,
            pad: network.padding,
            activation: "relu",
          });
          if (i < blocks.length - 1) h = norm(h, b);
        });
        return h;
      }),
    logitsFrom: (a) =>
      tf.tidy(() => {
        const pooled = adaptiveAvgPool(norm(a, blocks[blocks.length - 1]), pool, poolSize);
        let f: tf.Tensor2D = tf.reshape(pooled, [pooled.shape[0], -1]);
        dense.forEach((d, i) => {
          f = tf.add(tf.matMul(f, d.kernel), d.bias);
          if (i < dense.length - 1) f = tf.relu(f);
        });
        return f;
      }),
    dispose: () => pool.dispose(),
  };
}

/**
 * A TF.js layers model (e.g. `tf.sequential`) split after the layer named `layerName`: the
 * layers up to it give the activations, the rest the class scores. The layers must form a
 * chain (each feeding the next), and the last must output logits (linear activation).
 */
export function layersCamModel(model: tf.LayersModel, layerName: string): CamModel {
  const layers = model.layers;
  const at = layers.findIndex((layer) => layer.name === layerName);
  if (at < 0) {
    throw new Error(
      `layersCamModel: no layer "${layerName}"; the model has ${
        layers.map((l) => l.name).join(", ")
      }`,
    );
  }
  const shape = model.inputs[0].shape;
  const run = (x: tf.Tensor, from: number, to: number): tf.Tensor =>
    layers.slice(from, to).reduce((h, layer) => layer.apply(h) as tf.Tensor, x);
  return {
    inputShape: [shape[1] ?? NaN, shape[2] ?? NaN],
    activations: (x) => tf.tidy(() => run(x, 0, at + 1) as tf.Tensor4D),
    logitsFrom: (a) => tf.tidy(() => run(a, at + 1, layers.length) as tf.Tensor2D),
  };
}

/**
 * Grad-CAM from activations `A` and gradients `∂y/∂A` (both `[n, h, w, c]`): per row,
 * `ReLU(Σ_k mean_{h,w}(∂y/∂A_k) · A_k)` as `[n, h, w]`. Plain arrays; {@link gradCam} uses it.
 */
export function camFromGradients(activations: FeatureBatch, gradients: FeatureBatch): ImageBatch {
  const [n, h, w, c] = activations.shape;
  if (gradients.shape.join() !== activations.shape.join()) {
    throw new Error(
      `camFromGradients: gradients ${gradients.shape} do not match activations ${activations.shape}`,
    );
  }
  const cells = h * w;
  const out = new Float32Array(n * cells);
  const weights = new Float64Array(c);
  for (let k = 0; k < n; k++) {
    weights.fill(0);
    const base = k * cells * c;
    for (let p = 0; p < cells; p++) {
      for (let j = 0; j < c; j++) weights[j] += gradients.data[base + p * c + j];
    }
    for (let j = 0; j < c; j++) weights[j] /= cells;
    for (let p = 0; p < cells; p++) {
      let s = 0;
      for (let j = 0; j < c; j++) s += weights[j] * activations.data[base + p * c + j];
      out[k * cells + p] = Math.max(0, s);
    }
  }
  return { data: out, shape: [n, h, w] };
}

/**
 * Activations, gradients of the target scores, predicted and target classes of one batch.
 * `pick` chooses the target class of a row from its index and its predicted class.
 */
export function camBatch(
  model: CamModel,
  x: tf.Tensor4D,
  pick: (row: number, predicted: number) => number,
): {
  activations: FeatureBatch;
  gradients: FeatureBatch;
  predicted: Uint8Array;
  targets: Uint8Array;
} {
  return tf.tidy(() => {
    const a = model.activations(x);
    const logits = model.logitsFrom(a);
    const [n, classes] = logits.shape;
    const predicted = Uint8Array.from(tf.argMax(logits, 1).dataSync());
    const targets = new Uint8Array(n);
    const mask = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) {
      const t = pick(i, predicted[i]);
      if (!(Number.isInteger(t) && t >= 0 && t < classes)) {
        throw new Error(`gradCam: target class ${t} for row ${i}; the model has ${classes}`);
      }
      targets[i] = t;
      mask[i * classes + t] = 1;
    }
    const m = tf.tensor2d(mask, [n, classes]);
    // Rows are independent in inference mode, so the gradient of the sum is each row's own.
    const g = tf.grad((act: tf.Tensor) => tf.sum(tf.mul(model.logitsFrom(act as tf.Tensor4D), m)))(
      a,
    );
    const shape = a.shape as [number, number, number, number];
    return {
      activations: { data: a.dataSync() as Float32Array, shape },
      gradients: { data: g.dataSync() as Float32Array, shape },
      predicted,
      targets,
    };
  });
}

function asCamModel(model: ImageClassifier | TrainableNetwork | CamModel): {
  cam: CamModel;
  owned: boolean;
} {
  if (model instanceof ImageClassifier) {
    if (!model.network_) {
      throw new Error("gradCam: the ImageClassifier is not trained; fit() it first");
    }
    return { cam: networkCamModel(model.network_), owned: true };
  }
  if (model instanceof TrainableNetwork) return { cam: networkCamModel(model), owned: true };
  return { cam: model, owned: false };
}

function targetPicker(
  target: GradCamOptions["target"],
  n: number,
): (start: number) => (row: number, predicted: number) => number {
  if (target === undefined || target === "predicted") return () => (_, p) => p;
  if (typeof target === "number") return () => () => target;
  if (target.length !== n) {
    throw new Error(`gradCam: ${target.length} target labels for ${n} rows; give one per row`);
  }
  return (start) => (row) => target[start + row];
}

function normalizeMax(maps: Float32Array, n: number, size: number): void {
  for (let k = 0; k < n; k++) {
    const map = maps.subarray(k * size, (k + 1) * size);
    let max = 0;
    for (let p = 0; p < size; p++) max = Math.max(max, map[p]);
    if (max > 0) { for (let p = 0; p < size; p++) map[p] /= max; }
  }
}

/**
 * Grad-CAM of every row of `x` (see the module doc) for a trained {@link ImageClassifier},
 * its {@link TrainableNetwork}, or any {@link CamModel}; maps on the layout grid and on the
 * CAM layer's grid.
 */
export function gradCam(
  model: ImageClassifier | TrainableNetwork | CamModel,
  x: ClassifierInput,
  options: GradCamOptions,
): GradCamResult {
  checkRows(options.rows);
  registerTrainingKernels();
  const source: FeatureSource = "gather" in x ? x : cachedFeatureSource(x);
  const n = source.length;
  const { cam, owned } = asCamModel(model);
  const batchSize = options.batchSize ?? 32;
  const pickFrom = targetPicker(options.target, n);
  const targets = new Uint8Array(n), predicted = new Uint8Array(n);
  let convCams: Float32Array | undefined;
  let camShape: [number, number] = [0, 0];
  try {
    for (let start = 0; start < n; start += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
      const xb = source.gather(idx);
      let batch;
      try {
        batch = camBatch(cam, xb, pickFrom(start));
      } finally {
        xb.dispose();
      }
      const maps = camFromGradients(batch.activations, batch.gradients);
      camShape = [maps.shape[1], maps.shape[2]];
      convCams ??= new Float32Array(n * camShape[0] * camShape[1]);
      convCams.set(maps.data, start * camShape[0] * camShape[1]);
      targets.set(batch.targets, start);
      predicted.set(batch.predicted, start);
    }
  } finally {
    if (owned) cam.dispose?.();
  }
  const placement = cam.placement ?? {
    stride: [cam.inputShape[0] / camShape[0], cam.inputShape[1] / camShape[1]],
    offset: [
      (cam.inputShape[0] / camShape[0] - 1) / 2,
      (cam.inputShape[1] / camShape[1] - 1) / 2,
    ],
  };
  const geometry = resolveGeometry(camShape, cam.inputShape, placement, options.geometry);
  const raw = convCams ?? new Float32Array(0);
  const cams = camToImageGrid(raw, n, geometry);
  const [H, W] = geometry.imageShape;
  if ((options.normalize ?? "max") === "max") normalizeMax(cams, n, H * W);
  return {
    cams: { data: cams, shape: [n, H, W] },
    convCams: { data: raw, shape: [n, camShape[0], camShape[1]] },
    targets,
    predicted,
    rows: options.rows,
    geometry,
  };
}

/** Throws unless `rows` names a row set. */
export function checkRows(rows: unknown): asserts rows is RowSet {
  if (rows !== "train" && rows !== "validation" && rows !== "test" && rows !== "unseen") {
    throw new Error(
      `rows must be "train", "validation", "test" or "unseen" (which rows the maps come ` +
        `from; "unseen": texts outside the run's split), got ` +
        `${JSON.stringify(rows)}`,
    );
  }
}

/** One map on the layout grid, with the rows it was averaged over. */
export interface CamMap {
  /** Row-major values `[H, W]`. */
  data: Float32Array;
  /** `[H, W]`. */
  shape: [number, number];
  /** Which rows it comes from. */
  rows: RowSet;
  /** How many reviews it averages. */
  count: number;
}

function meanOf(
  cams: ImageBatch,
  select: (row: number) => boolean,
): { data: Float32Array; count: number } {
  const [n, H, W] = cams.shape;
  const size = H * W;
  const sum = new Float64Array(size);
  let count = 0;
  for (let k = 0; k < n; k++) {
    if (!select(k)) continue;
    count++;
    for (let p = 0; p < size; p++) sum[p] += cams.data[k * size + p];
  }
  return { data: Float32Array.from(sum, (v) => (count > 0 ? v / count : 0)), count };
}

/** The mean map over every row of `result` (each row's map is that of its target class). */
export function meanCam(result: GradCamResult): CamMap {
  const [, H, W] = result.cams.shape;
  const { data, count } = meanOf(result.cams, () => true);
  return { data, shape: [H, W], rows: result.rows, count };
}

/**
 * The mean map per class: entry `c` averages the rows whose `labels` (default: the target
 * classes the maps explain) equal `c`, for `c` in 0..classes−1 (default 2). A class without
 * rows gets an all-zero map with `count` 0.
 */
export function classMeanCams(
  result: GradCamResult,
  labels: Labels = result.targets,
  classes = 2,
): CamMap[] {
  const [n, H, W] = result.cams.shape;
  if (labels.length !== n) {
    throw new Error(`classMeanCams: ${labels.length} labels for ${n} maps; give one per row`);
  }
  return Array.from({ length: classes }, (_, c) => {
    const { data, count } = meanOf(result.cams, (k) => labels[k] === c);
    return { data, shape: [H, W] as [number, number], rows: result.rows, count };
  });
}
