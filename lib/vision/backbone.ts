/**
 * Loading a registered backbone as a frozen TF.js model and computing its features.
 *
 * Input convention: the pipeline's images hold values in [0, 1] (DeepInsight images are
 * grayscale, one channel). {@link Backbone.features} maps them to the network's own input
 * range with its preprocessing (grayscale → 3 identical channels, then caffe / tf / unit
 * scaling, see `preprocess.ts`). The paper instead z-normalises each batch and feeds that
 * without ImageNet scaling; pass `preprocess: false` to feed values unchanged (and do the
 * paper's normalisation yourself).
 *
 * @module
 */
import { readValues, tf } from "../tf.ts";
import { ProgressBar } from "../progress.ts";
import type { Progress } from "../progress.ts";
import type { FeatureBatch, ImageBatch } from "../types.ts";
import { buildSlicedModel } from "./layers_model.ts";
import type { WeightReadReport } from "./layers_model.ts";
import { getBackboneSpec, validateBackboneSpec } from "./registry.ts";
import type { BackboneSpec, ModelSource } from "./registry.ts";
import { describeSource, openModelStore } from "./source.ts";
import {
  asFeatureBatch,
  preprocessingLayer,
  preprocessTensor,
  toThreeChannels,
} from "./preprocess.ts";
import { BackboneWorkers } from "./parallel.ts";
import { loadTorchvisionModel } from "./torchvision_backbone.ts";

/** How long idle workers are kept for the next call before they are stopped. */
const WORKER_IDLE_MS = 2000;

/** Options of {@link loadBackbone}. */
export interface LoadBackboneOptions {
  /**
   * Fix the spatial input size `[h, w]`; by default it is open (any size works) unless the
   * kept layers contain a `Flatten`.
   */
  inputSize?: [number, number] | null;
  /** Use these sources instead of the spec's. */
  sources?: ModelSource[];
  /**
   * Fold BatchNormalization layers (and a following ReLU-type activation) into the
   * convolution before them (default true): the same function, about 15% faster on ResNet50.
   * With `false` the Keras layers are kept as in the file (BatchNormalization replaced by
   * the inference-only `FrozenBatchNormalization`), e.g. to inspect them by name.
   */
  fold?: boolean;
}

/** Options of {@link Backbone.features}. */
export interface FeaturesOptions {
  /** Images per forward pass (default 16). */
  batchSize?: number;
  /** Called after every batch with images done so far. */
  onProgress?: (progress: Progress) => void;
  /** Show a progress bar on stderr (default: only for more than 256 images). */
  progressBar?: boolean;
  /**
   * Map [0, 1] inputs to the network's range (default true); false feeds values unchanged
   * (1-channel inputs are still repeated to 3 channels).
   */
  preprocess?: boolean;
  /** Nearest-neighbour upsampling factor applied first (the paper uses 3: 50 → 150). */
  upsample?: number;
  /**
   * Compute on this many Deno workers, each with its own copy of the backbone on one core
   * (default 1: in this thread). They are started on first use and stopped after
   * 2 s without work or by {@link Backbone.dispose}.
   */
  workers?: number;
}

/** A frozen, sliced ImageNet network. Create with {@link loadBackbone}. */
export class Backbone {
  /** Registry name. */
  readonly name: string;
  /** The spec it was loaded from. */
  readonly spec: BackboneSpec;
  /**
   * The frozen network: input `[n, h, w, 3]` in the network's own range (see
   * {@link Backbone.preprocess}), output the slice layer's `[n, h', w', c]` (or `[n, c]` for
   * a complete classifier). Every layer has `trainable = false` and BatchNormalization runs
   * in inference mode even when a larger model is trained through it (by default it is
   * folded into the convolution before it, see {@link LoadBackboneOptions.fold}, so the
   * model's output layer may be that convolution rather than the spec's slice layer name).
   */
  readonly model: tf.LayersModel;
  /** The layers kept, in order. */
  readonly layerNames: string[];
  /** The source the weights came from, in words. */
  readonly loadedFrom: string;
  /** Which shards were read. */
  readonly weightReport: WeightReadReport;
  /** The options it was loaded with (workers load the same). */
  readonly loadOptions: LoadBackboneOptions;
  #workers: BackboneWorkers | undefined;
  /** Output shapes by input size (the model's shape inference walks every layer). */
  readonly #outputShapes = new Map<string, [number, number, number]>();

  /** Wraps an already built frozen model; normally use {@link loadBackbone}. */
  constructor(
    spec: BackboneSpec,
    model: tf.LayersModel,
    layerNames: string[],
    loadedFrom: string,
    weightReport: WeightReadReport,
    loadOptions: LoadBackboneOptions = {},
  ) {
    this.name = spec.name;
    this.spec = spec;
    this.model = model;
    this.layerNames = layerNames;
    this.loadedFrom = loadedFrom;
    this.weightReport = weightReport;
    this.loadOptions = loadOptions;
  }

  /** Output `[h', w', c]` for an input of `[h, w]` (a flat output of c values is `[1, 1, c]`). */
  outputShape([height, width]: [number, number]): [number, number, number] {
    const key = `${height}×${width}`;
    let known = this.#outputShapes.get(key);
    if (!known) {
      const shape = this.model.computeOutputShape([null, height, width, 3]) as (number | null)[];
      if (shape.length === 2) known = [1, 1, shape[1]!];
      else if (shape.length !== 4 || shape.slice(1).some((d) => d === null)) {
        throw new Error(`${this.name}: cannot infer the output shape for ${height}×${width}`);
      } else known = [shape[1]!, shape[2]!, shape[3]!];
      this.#outputShapes.set(key, known);
    }
    return [...known];
  }

  /** Maps [0, 1] images (1 or 3 channels) to 3-channel network input, as plain values. */
  preprocess(images: ImageBatch | FeatureBatch): FeatureBatch {
    const batch = asFeatureBatch(images);
    return tf.tidy(() => {
      const x = preprocessTensor(tf.tensor4d(batch.data, batch.shape), this.spec.preprocessing);
      return { data: x.dataSync() as Float32Array, shape: x.shape as FeatureBatch["shape"] };
    });
  }

  /**
   * A new frozen 1×1 convolution mapping [0, 1] images with `channels` channels to this
   * network's input range (see `preprocessingLayer`).
   */
  preprocessingLayer(channels: 1 | 3 = 3): tf.layers.Layer {
    return preprocessingLayer(this.spec.preprocessing, channels);
  }

  /**
   * Applies the frozen backbone to a symbolic input inside a larger model (for training a
   * head on top). With `preprocess` (default) the input is [0, 1] images with 1 or 3
   * channels, mapped by a frozen preprocessing layer; without, network-range 3-channel input.
   *
   * ```ts
   * const input = tf.input({ shape: [150, 150, 1] });
   * const features = backbone.apply(input);          // frozen
   * const head = tf.layers.conv2d({ filters: 64, kernelSize: 3 }).apply(features);
   * const model = tf.model({ inputs: input, outputs: … });
   * ```
   */
  apply(input: tf.SymbolicTensor, options: { preprocess?: boolean } = {}): tf.SymbolicTensor {
    let x = input;
    if (options.preprocess ?? true) {
      const channels = input.shape[input.shape.length - 1];
      if (channels !== 1 && channels !== 3) {
        throw new Error(`${this.name}.apply: input must have 1 or 3 channels, got ${channels}`);
      }
      x = this.preprocessingLayer(channels).apply(x) as tf.SymbolicTensor;
    }
    return this.model.apply(x) as tf.SymbolicTensor;
  }

  /**
   * The frozen forward pass on a tensor batch `[n, h, w, 1|3]`: preprocessing (unless
   * `preprocess` is false) then the network, in inference mode. The caller disposes the
   * result.
   */
  forward(x: tf.Tensor4D, options: { preprocess?: boolean } = {}): tf.Tensor4D {
    return tf.tidy(() => {
      let input: tf.Tensor4D;
      if (options.preprocess ?? true) input = preprocessTensor(x, this.spec.preprocessing);
      else input = toThreeChannels(x);
      const y = this.model.apply(input, { training: false }) as tf.Tensor;
      return (y.rank === 2 ? y.reshape([y.shape[0], 1, 1, y.shape[1]!]) : y) as tf.Tensor4D;
    });
  }

  /**
   * Frozen features of a batch of images with values in [0, 1] (`[n, h, w]` grayscale or
   * `[n, h, w, 1|3]`), as plain values `[n, h', w', c]`. For large sets whose features do
   * not fit in memory, use the feature cache (`cacheFeatures`), which stores them in chunks.
   */
  async features(
    images: ImageBatch | FeatureBatch,
    options: FeaturesOptions = {},
  ): Promise<FeatureBatch> {
    const batch = asFeatureBatch(images);
    const [n, h, w] = batch.shape;
    const factor = options.upsample ?? 1;
    const [oh, ow, oc] = this.outputShape([h * factor, w * factor]);
    const perImage = oh * ow * oc;
    if (n * perImage > 2 ** 32 - 1) {
      throw new Error(
        `${this.name}: features of ${n} images need ${n * perImage} floats, more than one ` +
          `array can hold; use cacheFeatures() and read them back in chunks.`,
      );
    }
    const out = new Float32Array(n * perImage);
    await this.forEachBatch(batch, options, (start, values) => {
      out.set(values, start * perImage);
    });
    return { data: out, shape: [n, oh, ow, oc] };
  }

  /**
   * Runs the frozen forward pass over `images` batch by batch and hands each batch's
   * features (row-major `[b, h', w', c]`) to `sink` with the index of its first image.
   * `values` may be a view on the backend's memory, valid until the next TF.js op: the sink
   * copies what it keeps before it awaits anything.
   */
  async forEachBatch(
    images: ImageBatch | FeatureBatch,
    options: FeaturesOptions,
    sink: (start: number, values: Float32Array) => void | Promise<void>,
    range: [number, number] = [0, images.shape[0]],
  ): Promise<void> {
    const batch = asFeatureBatch(images);
    const [, h, w, c] = batch.shape;
    const batchSize = Math.max(1, options.batchSize ?? 16);
    const factor = options.upsample ?? 1;
    const [from, to] = range;
    const total = to - from;
    const bar = (options.progressBar ?? total > 256)
      ? new ProgressBar(`${this.name} features`, total, { unit: "images" })
      : undefined;
    const pixels = h * w * c;
    const workers = Math.max(1, Math.floor(options.workers ?? 1));
    if (workers > 1) {
      if (this.#workers?.size !== workers) {
        this.#workers?.terminate();
        this.#workers = new BackboneWorkers(this.spec, this.loadOptions, workers);
      }
      const pool = this.#workers;
      await pool.ready();
      let next = from;
      let done = 0;
      // two batches in flight per worker, so none waits for the next one
      const loop = async (index: number) => {
        while (next < to) {
          const start = next;
          const size = Math.min(batchSize, to - start);
          next += size;
          const data = batch.data.slice(start * pixels, (start + size) * pixels);
          const values = await pool.run(index, data, [size, h, w, c], options);
          await sink(start, values);
          done += size;
          bar?.update(done);
          options.onProgress?.({ done, total });
        }
      };
      try {
        await Promise.all(
          Array.from({ length: 2 * workers }, (_, i) => loop(i % workers)),
        );
      } finally {
        pool.terminateWhenIdle(WORKER_IDLE_MS, () => {
          if (this.#workers === pool) this.#workers = undefined;
        });
      }
      bar?.finish();
      return;
    }
    for (let start = from; start < to; start += batchSize) {
      const size = Math.min(batchSize, to - start);
      const values = tf.tidy(() => {
        let x: tf.Tensor4D = tf.tensor4d(
          batch.data.subarray(start * pixels, (start + size) * pixels),
          [size, h, w, c],
        );
        if (factor !== 1) x = tf.image.resizeNearestNeighbor(x, [h * factor, w * factor]);
        return this.forward(x, { preprocess: options.preprocess });
      });
      try {
        // no copy out of the wasm heap: the sink copies them into its own array at once
        await sink(start, readValues(values));
      } finally {
        values.dispose();
      }
      bar?.update(start + size - from);
      options.onProgress?.({ done: start + size - from, total });
    }
    bar?.finish();
  }

  /** Frees the model's weights and stops its workers. */
  dispose(): void {
    this.#workers?.terminate();
    this.#workers = undefined;
    this.model.dispose();
  }
}

/**
 * Loads a backbone by registry name or spec: opens its first available source, builds the
 * graph up to its slice layer and reads only the weights that slice needs (a torchvision
 * backbone: from its PyTorch checkpoint, see `torchvision_backbone.ts`). Throws with how
 * to obtain the network when it has no source (the paper's own networks).
 */
export async function loadBackbone(
  nameOrSpec: string | BackboneSpec,
  options: LoadBackboneOptions = {},
): Promise<Backbone> {
  const spec = typeof nameOrSpec === "string"
    ? getBackboneSpec(nameOrSpec)
    : validateBackboneSpec(nameOrSpec);
  const sources = options.sources ?? spec.sources;
  if (spec.torchvision !== undefined && sources.length > 0) {
    const built = await loadTorchvisionModel(spec, { ...options, sources });
    return new Backbone(
      spec,
      built.model,
      built.layerNames,
      built.loadedFrom,
      built.report,
      { ...options, sources: [built.source] },
    );
  }
  if (sources.length === 0) {
    throw new Error(
      `Backbone "${spec.name}" has no TF.js layers source here. ${spec.howToObtain ?? ""}`,
    );
  }
  const hint = spec.howToObtain ??
    `Provide the model folder (model.json + shards) and register it: ` +
      `registerBackbone({ ...BACKBONES["${spec.name}"], sources: [{ folder: "/path" }] }), ` +
      `or set TEXT_AS_IMAGE_SHARED to a folder laid out like the team's shared/.`;
  const { store, json, source } = await openModelStore(sources, hint);
  const context = ` (backbone "${spec.name}" from ${describeSource(source)}, slice ` +
    `${spec.sliceLayer === null ? "complete" : `up to "${spec.sliceLayer}"`})`;
  const sliced = await buildSlicedModel(store, json, spec.sliceLayer, {
    inputSize: options.inputSize,
    fold: options.fold ?? true,
    context,
  });
  return new Backbone(
    spec,
    sliced.model,
    sliced.layerNames,
    describeSource(source),
    sliced.report,
    { ...options, sources: [source] },
  );
}
