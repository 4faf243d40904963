/**
 * Where a classifier's inputs come from, batch by batch:
 *
 * - {@link cachedFeatureSource}: frozen backbone features computed once (e.g. read from the
 *   vision stage's feature cache); only the trainable part runs per epoch (fast path);
 * - {@link backboneFeatureSource}: grayscale images run through the paper's input pipeline
 *   and the frozen backbone for every batch (end to end, backbone frozen; for small samples
 *   or when no cache is at hand).
 *
 * The paper's input pipeline: grayscale → nearest upsampling ×k → z-normalisation (one mean
 * and one standard deviation, `torch.std` (unbiased), `x' = (x − μ)/√(σ² + 1e-8)`) → three
 * identical channels → backbone, with no ImageNet scaling. The paper takes μ and σ over each
 * batch. Features that are cached once cannot depend on the batch an image later lands in,
 * so the cached path takes them over the training images instead ({@link imageStats}); with
 * batches of 32 random images the two differ little. The end-to-end path does either.
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { FeatureBatch, ImageBatch } from "../types.ts";

/**
 * A source described in shared memory, so data-parallel workers can rebuild it without a
 * copy per worker (see {@link FeatureSource.share}).
 */
export type SharedSourceSpec =
  | { kind: "features"; data: Float32Array; shape: [number, number, number, number] }
  | {
    kind: "backbone";
    /** Grayscale images `[n, h, w]` in shared memory. */
    images: Float32Array;
    shape: [number, number, number];
    /** The backbone's registry spec (workers load it with `loadBackbone`). */
    backbone: unknown;
    upsample: number;
    normalization: "batch" | "imagenet" | ImageStats;
  };

/**
 * Copies `data` into a `SharedArrayBuffer`, so that posting it to workers shares it instead
 * of copying it once per worker.
 */
export function sharedCopy(data: Float32Array): Float32Array {
  const out = new Float32Array(new SharedArrayBuffer(data.byteLength));
  out.set(data);
  return out;
}

/** Rows of inputs for a classifier, served as tensors. */
export interface FeatureSource {
  /** Number of rows. */
  readonly length: number;
  /** Shape of one row's feature map `[h, w, c]`. */
  readonly featureShape: [number, number, number];
  /** `"cached"` or `"end-to-end"`, for reports. */
  readonly kind: "cached" | "end-to-end";
  /** Feature maps of rows `indices` as `[k, h, w, c]`; the caller disposes the tensor. */
  gather(indices: ArrayLike<number>): tf.Tensor4D;
  /** The source in shared memory for workers (data-parallel training); absent: not shareable. */
  share?(): SharedSourceSpec;
}

/** A {@link FeatureSource} over feature maps already in memory. */
export function cachedFeatureSource(features: FeatureBatch): FeatureSource {
  const [n, h, w, c] = features.shape;
  const row = h * w * c;
  if (features.data.length !== n * row) {
    throw new Error(
      `cachedFeatureSource: shape ${features.shape} needs ${n * row} values, got ` +
        `${features.data.length}`,
    );
  }
  let shared: SharedSourceSpec | undefined;
  return {
    length: n,
    featureShape: [h, w, c],
    kind: "cached",
    share() {
      const data = features.data.buffer instanceof SharedArrayBuffer
        ? features.data
        : sharedCopy(features.data);
      shared ??= { kind: "features", data, shape: [n, h, w, c] };
      return shared;
    },
    gather(indices) {
      const k = indices.length;
      const out = new Float32Array(k * row);
      for (let i = 0; i < k; i++) {
        const r = indices[i];
        if (!(r >= 0 && r < n)) throw new RangeError(`row ${r} outside [0, ${n})`);
        out.set(features.data.subarray(r * row, (r + 1) * row), i * row);
      }
      return tf.tensor4d(out, [k, h, w, c]);
    },
  };
}

/** Mean and standard deviation for z-normalisation. */
export interface ImageStats {
  /** Mean of every pixel value. */
  mean: number;
  /** Unbiased standard deviation of every pixel value. */
  std: number;
}

/** Mean and unbiased standard deviation over every pixel of `images` (float64 sums). */
export function imageStats(images: ImageBatch | FeatureBatch): ImageStats {
  const d = images.data;
  let sum = 0;
  for (let i = 0; i < d.length; i++) sum += d[i];
  const mean = sum / d.length;
  let sq = 0;
  for (let i = 0; i < d.length; i++) sq += (d[i] - mean) ** 2;
  return { mean, std: Math.sqrt(sq / Math.max(1, d.length - 1)) };
}

/** z-normalises plain images with fixed statistics (the cached path's input). */
export function zNormalizeImages<T extends ImageBatch | FeatureBatch>(
  images: T,
  stats: ImageStats,
): T {
  const scale = 1 / Math.sqrt(stats.std ** 2 + 1e-8);
  const out = new Float32Array(images.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (images.data[i] - stats.mean) * scale;
  return { data: out, shape: images.shape.slice() } as T;
}

/**
 * The paper's input pipeline on a tensor batch of grayscale images `[n, h, w]`:
 * upsampling ×`upsample`, z-normalisation (per batch, or with fixed `stats`), three
 * identical channels. Returns `[n, h·k, w·k, 3]`.
 */
export function paperInput(
  images: tf.Tensor3D,
  upsample: number,
  stats?: ImageStats,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w] = images.shape;
    let x: tf.Tensor4D = tf.reshape(images, [n, h, w, 1]);
    if (upsample !== 1) x = tf.image.resizeNearestNeighbor(x, [h * upsample, w * upsample]);
    let mean: tf.Scalar | number, variance: tf.Scalar | number;
    if (stats) {
      mean = stats.mean;
      variance = stats.std ** 2;
    } else {
      const size = x.size;
      mean = tf.mean(x);
      variance = tf.sum(tf.square(tf.sub(x, mean))).div(Math.max(1, size - 1)) as tf.Scalar;
    }
    const z = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-8)));
    return tf.tile(z, [1, 1, 1, 3]) as tf.Tensor4D;
  });
}

/** Rebuilds a source from {@link SharedSourceSpec} (in a worker). */
export async function sourceFromShared(spec: SharedSourceSpec): Promise<FeatureSource> {
  if (spec.kind === "features") return cachedFeatureSource({ data: spec.data, shape: spec.shape });
  // Loaded on demand, so lib/train does not need lib/vision unless a worker runs a backbone.
  const { loadBackbone } = await import("../vision/mod.ts");
  const backbone = await loadBackbone(spec.backbone as Parameters<typeof loadBackbone>[0]);
  return backboneFeatureSource({ data: spec.images, shape: spec.shape }, backbone, {
    upsample: spec.upsample,
    normalization: spec.normalization,
  });
}

/** The part of a frozen backbone an end-to-end source needs (e.g. lib/vision's `Backbone`). */
export interface FrozenBackbone {
  /** Registry name. */
  readonly name: string;
  /** Output `[h', w', c]` for an input of `[h, w]`. */
  outputShape(size: [number, number]): [number, number, number];
  /** Frozen forward pass, inference mode; `preprocess: false` feeds values unchanged. */
  forward(x: tf.Tensor4D, options?: { preprocess?: boolean }): tf.Tensor4D;
}

/** Options of {@link backboneFeatureSource}. */
export interface BackboneSourceOptions {
  /** Nearest upsampling factor (paper: 3). */
  upsample?: number;
  /**
   * `"batch"` (the paper: one mean and std per gathered batch), fixed statistics (e.g.
   * the training images', as the cached path uses), or `"imagenet"`: [0, 1] images through
   * the backbone's own input scaling (ImageNet mean and std for torchvision networks). Default
   * `"batch"`.
   */
  normalization?: "batch" | "imagenet" | ImageStats;
}

/**
 * A {@link FeatureSource} that runs `images` through the paper's input pipeline and the
 * frozen backbone for every gathered batch (end to end). No gradient reaches the backbone:
 * its features are computed before the trainable part's gradient tape starts.
 */
export function backboneFeatureSource(
  images: ImageBatch,
  backbone: FrozenBackbone,
  options: BackboneSourceOptions = {},
): FeatureSource {
  const [n, h, w] = images.shape;
  const upsample = options.upsample ?? 1;
  const norm = options.normalization ?? "batch";
  const featureShape = backbone.outputShape([h * upsample, w * upsample]);
  const pixels = h * w;
  let shared: SharedSourceSpec | undefined;
  return {
    length: n,
    featureShape,
    kind: "end-to-end",
    share() {
      const spec = (backbone as { spec?: unknown }).spec;
      if (!spec) {
        throw new Error(
          `backbone "${backbone.name}" has no registry spec, so workers cannot load it; ` +
            `train with workers: 1, or on its cached features.`,
        );
      }
      shared ??= {
        kind: "backbone",
        images: images.data.buffer instanceof SharedArrayBuffer
          ? images.data
          : sharedCopy(images.data),
        shape: [n, h, w],
        backbone: spec,
        upsample,
        normalization: norm,
      };
      return shared;
    },
    gather(indices) {
      const k = indices.length;
      const batch = new Float32Array(k * pixels);
      for (let i = 0; i < k; i++) {
        const r = indices[i];
        if (!(r >= 0 && r < n)) throw new RangeError(`row ${r} outside [0, ${n})`);
        batch.set(images.data.subarray(r * pixels, (r + 1) * pixels), i * pixels);
      }
      return tf.tidy(() => {
        if (norm === "imagenet") {
          let x: tf.Tensor4D = tf.tensor4d(batch, [k, h, w, 1]);
          if (upsample !== 1) x = tf.image.resizeNearestNeighbor(x, [h * upsample, w * upsample]);
          return backbone.forward(x, { preprocess: true });
        }
        const x = paperInput(
          tf.tensor3d(batch, [k, h, w]),
          upsample,
          norm === "batch" ? undefined : norm,
        );
        return backbone.forward(x, { preprocess: false });
      });
    },
  };
}
