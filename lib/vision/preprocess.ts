/**
 * Input scaling. The pipeline's images hold values in [0, 1] (DeepInsight output, decoded
 * photographs); each network expects its own range. Every mode is a per-channel affine map
 * of [0, 1] values, `out[c] = scale[c] · in[perm[c]] + bias[c]`:
 *
 * | mode    | network input                          | scale  | bias                         |
 * |---------|----------------------------------------|--------|------------------------------|
 * | `caffe` | BGR, 0–255 minus ImageNet means        | 255    | −[103.939, 116.779, 123.68]  |
 * | `tf`    | RGB, x/127.5 − 1 (x in 0–255)          | 2      | −1                           |
 * | `unit`  | RGB, x/255                             | 1      | 0                            |
 * | `torch` | RGB, (x/255 − mean) / std (torchvision)| 1/std  | −mean/std                    |
 *
 * (`torch`: torchvision's ImageNet mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225].
 * The paper itself fed its torchvision networks per-batch z-normalised images without these,
 * which the experiment does with preprocessing off.)
 *
 * Grayscale images (one channel) become three identical channels first. Because the map is
 * affine it can also run inside a model, as a frozen 1×1 convolution
 * ({@link preprocessingLayer}), so a trainable model can take [0, 1] images directly.
 *
 * @module
 */
import { tf } from "../tf.ts";
import type { FeatureBatch, ImageBatch } from "../types.ts";
import type { Preprocessing } from "./registry.ts";

/** The ImageNet channel means in BGR order, on the 0–255 scale (Keras "caffe" mode). */
export const CAFFE_BGR_MEANS: readonly [number, number, number] = [103.939, 116.779, 123.68];

/** torchvision's ImageNet channel means (RGB, [0, 1] scale). */
export const TORCH_RGB_MEANS: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** torchvision's ImageNet channel standard deviations (RGB, [0, 1] scale). */
export const TORCH_RGB_STDS: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** A per-channel affine map of [0, 1] RGB values: `out[c] = scale[c] · in[perm[c]] + bias[c]`. */
export interface ChannelAffine {
  /** Which input channel feeds output channel c. */
  perm: [number, number, number];
  /** Multiplier per output channel. */
  scale: [number, number, number];
  /** Offset per output channel. */
  bias: [number, number, number];
}

/** The affine map of a preprocessing mode, for inputs in [0, 1]. */
export function preprocessingAffine(mode: Preprocessing): ChannelAffine {
  switch (mode) {
    case "caffe":
      return {
        perm: [2, 1, 0],
        scale: [255, 255, 255],
        bias: [-CAFFE_BGR_MEANS[0], -CAFFE_BGR_MEANS[1], -CAFFE_BGR_MEANS[2]],
      };
    case "tf":
      return { perm: [0, 1, 2], scale: [2, 2, 2], bias: [-1, -1, -1] };
    case "unit":
      return { perm: [0, 1, 2], scale: [1, 1, 1], bias: [0, 0, 0] };
    case "torch": {
      const [m, s] = [TORCH_RGB_MEANS, TORCH_RGB_STDS];
      return {
        perm: [0, 1, 2],
        scale: [1 / s[0], 1 / s[1], 1 / s[2]],
        bias: [-m[0] / s[0], -m[1] / s[1], -m[2] / s[2]],
      };
    }
    default:
      throw new Error(`Unknown preprocessing "${mode}": use "caffe", "tf", "unit" or "torch".`);
  }
}

/** Number of channels of a batch: 1 for an {@link ImageBatch}, the last dim otherwise. */
export function channelsOf(images: ImageBatch | FeatureBatch): number {
  return images.shape.length === 3 ? 1 : images.shape[3];
}

/** A batch as `[n, h, w, c]` (an ImageBatch gets c = 1), sharing the data. */
export function asFeatureBatch(images: ImageBatch | FeatureBatch): FeatureBatch {
  if (images.shape.length === 4) return images as FeatureBatch;
  const [n, h, w] = images.shape;
  return { data: images.data, shape: [n, h, w, 1] };
}

/**
 * Applies a preprocessing mode to a tensor of [0, 1] images with 1 or 3 channels, returning
 * 3 channels in the network's range. For tensors; see {@link preprocessImages} for plain values.
 */
export function preprocessTensor(x: tf.Tensor4D, mode: Preprocessing): tf.Tensor4D {
  const channels = x.shape[3];
  if (channels !== 1 && channels !== 3) {
    throw new Error(`Expected 1 or 3 channels, got ${channels}`);
  }
  // One fused 1×1 convolution (channel map × scale, plus bias): a single pass, where
  // tile + gather + multiply + add would take four (and wasm's Tile and GatherV2 are slow).
  const { kernel, bias } = affineKernel(mode, channels);
  return tf.tidy(() =>
    tf.fused.conv2d({
      x,
      filter: tf.tensor4d(kernel, [1, 1, channels, 3]),
      strides: 1,
      pad: "valid",
      bias: tf.tensor1d(bias),
    })
  );
}

/**
 * Repeats a 1-channel batch to 3 identical channels (3-channel input is returned as is).
 * A 1×1 convolution, which TF.js's wasm backend runs far faster than `tf.tile`.
 */
export function toThreeChannels(x: tf.Tensor4D): tf.Tensor4D {
  if (x.shape[3] === 3) return x;
  if (x.shape[3] !== 1) throw new Error(`Expected 1 or 3 channels, got ${x.shape[3]}`);
  return tf.tidy(() => tf.conv2d(x, tf.ones([1, 1, 1, 3]) as tf.Tensor4D, 1, "valid"));
}

/** The `[1, 1, channels, 3]` kernel (row-major) and bias of a mode's affine map. */
function affineKernel(
  mode: Preprocessing,
  channels: 1 | 3,
): { kernel: Float32Array; bias: [number, number, number] } {
  const { perm, scale, bias } = preprocessingAffine(mode);
  const kernel = new Float32Array(channels * 3);
  for (let out = 0; out < 3; out++) {
    const input = channels === 1 ? 0 : perm[out];
    kernel[input * 3 + out] = scale[out];
  }
  return { kernel, bias };
}

/** Plain-value version of {@link preprocessTensor}: `[n, h, w, 3]` in the network's range. */
export function preprocessImages(
  images: ImageBatch | FeatureBatch,
  mode: Preprocessing,
): FeatureBatch {
  const batch = asFeatureBatch(images);
  const [n, h, w, c] = batch.shape;
  if (c !== 1 && c !== 3) throw new Error(`Expected 1 or 3 channels, got ${c}`);
  const { perm, scale, bias } = preprocessingAffine(mode);
  const out = new Float32Array(n * h * w * 3);
  const pixels = n * h * w;
  for (let p = 0; p < pixels; p++) {
    for (let k = 0; k < 3; k++) {
      const v = c === 1 ? batch.data[p] : batch.data[p * 3 + perm[k]];
      out[p * 3 + k] = scale[k] * v + bias[k];
    }
  }
  return { data: out, shape: [n, h, w, 3] };
}

/**
 * A frozen 1×1 convolution that maps [0, 1] images with `channels` (1 or 3) channels to the
 * network's input range with 3 channels: put it in front of a backbone inside a trainable
 * model so that model takes [0, 1] images.
 */
export function preprocessingLayer(
  mode: Preprocessing,
  channels: 1 | 3 = 3,
  name?: string,
): tf.layers.Layer {
  const { kernel, bias } = affineKernel(mode, channels);
  return tf.layers.conv2d({
    filters: 3,
    kernelSize: 1,
    useBias: true,
    trainable: false,
    name,
    weights: [tf.tensor4d(kernel, [1, 1, channels, 3]), tf.tensor1d(bias)],
  });
}

/**
 * Nearest-neighbour upsampling by an integer factor (the paper's 50×50 → 150×150), on
 * plain values `[n, h, w, c]` or `[n, h, w]`.
 */
export function upsampleNearest<T extends ImageBatch | FeatureBatch>(images: T, factor: number): T {
  if (!Number.isInteger(factor) || factor < 1) {
    throw new Error(`upsample factor must be a positive integer, got ${factor}`);
  }
  if (factor === 1) return images;
  const batch = asFeatureBatch(images);
  const [n, h, w, c] = batch.shape;
  const H = h * factor, W = w * factor;
  const out = new Float32Array(n * H * W * c);
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < H; y++) {
      const src = ((i * h + Math.floor(y / factor)) * w) * c;
      const dst = ((i * H + y) * W) * c;
      for (let x = 0; x < W; x++) {
        const s = src + Math.floor(x / factor) * c;
        for (let k = 0; k < c; k++) out[dst + x * c + k] = batch.data[s + k];
      }
    }
  }
  return (images.shape.length === 3
    ? { data: out, shape: [n, H, W] }
    : { data: out, shape: [n, H, W, c] }) as T;
}
