/**
 * PyTorch weights in TF.js's layouts: convolution kernels OIHW → HWIO (grouped convolutions as
 * one block-diagonal kernel, depthwise ones as `[kh, kw, c, 1]`), dense `[out, in]` →
 * `[in, out]` (optionally reordering the inputs from PyTorch's NCHW flattening to the
 * channels-last one), and inference-mode BatchNorm folded into the convolution before it.
 *
 * All functions take and return plain row-major `Float32Array`s.
 *
 * @module
 */
import type { TorchTensor } from "../torch/types.ts";

/** `nn.BatchNorm2d`'s default epsilon, which every torchvision network here uses. */
export const BATCH_NORM_EPSILON = 1e-5;

/** A PyTorch BatchNorm2d's parameters and running statistics (each `[c]`). */
export interface BatchNormParams {
  /** γ (`weight`). */
  gamma: Float32Array;
  /** β (`bias`). */
  beta: Float32Array;
  /** `running_mean`. */
  mean: Float32Array;
  /** `running_var`. */
  variance: Float32Array;
  /** ε. */
  epsilon: number;
}

function expectShape(t: TorchTensor, rank: number, what: string): void {
  if (t.shape.length !== rank) {
    throw new Error(`${what}: expected a ${rank}-d tensor, got shape [${t.shape.join(", ")}]`);
  }
}

/** A convolution weight `[out, in, kh, kw]` (OIHW) as a TF.js kernel `[kh, kw, in, out]` (HWIO). */
export function convKernel(weight: TorchTensor): Float32Array {
  expectShape(weight, 4, "convolution weight");
  const [o, i, kh, kw] = weight.shape;
  const out = new Float32Array(weight.data.length);
  const src = weight.data;
  for (let a = 0; a < o; a++) {
    for (let b = 0; b < i; b++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          out[((y * kw + x) * i + b) * o + a] = src[((a * i + b) * kh + y) * kw + x];
        }
      }
    }
  }
  return out;
}

/**
 * A grouped convolution's weight `[out, in/groups, kh, kw]` as one dense HWIO kernel
 * `[kh, kw, in, out]` that is zero outside the diagonal blocks: output channel `o` of group
 * `g = floor(o / (out/groups))` sees only inputs `g·(in/groups) …`. The products with the
 * zeros add exact zeros, so the result is PyTorch's grouped convolution, computed by one
 * fast conv2d instead of `groups` small ones.
 */
export function groupedConvKernel(weight: TorchTensor, groups: number): Float32Array {
  expectShape(weight, 4, "grouped convolution weight");
  const [o, perGroupIn, kh, kw] = weight.shape;
  if (o % groups !== 0) {
    throw new Error(`grouped convolution: ${o} output channels do not split into ${groups}`);
  }
  const i = perGroupIn * groups;
  const perGroupOut = o / groups;
  const out = new Float32Array(kh * kw * i * o);
  const src = weight.data;
  for (let a = 0; a < o; a++) {
    const firstIn = Math.floor(a / perGroupOut) * perGroupIn;
    for (let b = 0; b < perGroupIn; b++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          out[((y * kw + x) * i + firstIn + b) * o + a] =
            src[((a * perGroupIn + b) * kh + y) * kw + x];
        }
      }
    }
  }
  return out;
}

/** A depthwise convolution's weight `[c, 1, kh, kw]` as a TF.js depthwise kernel `[kh, kw, c, 1]`. */
export function depthwiseKernel(weight: TorchTensor): Float32Array {
  expectShape(weight, 4, "depthwise convolution weight");
  const [c, one, kh, kw] = weight.shape;
  if (one !== 1) {
    throw new Error(`depthwise convolution: weight [${weight.shape}] is not [c, 1, kh, kw]`);
  }
  const out = new Float32Array(weight.data.length);
  for (let a = 0; a < c; a++) {
    for (let p = 0; p < kh * kw; p++) out[p * c + a] = weight.data[a * kh * kw + p];
  }
  return out;
}

/**
 * A linear layer's weight `[out, in]` as a TF.js dense kernel `[in, out]`. With `nchw`
 * (`[c, h, w]` of the feature map flattened before it), the rows are reordered from PyTorch's
 * channel-major flattening (`c·h·w + y·w + x`) to the channels-last one a TF.js `Flatten`
 * produces (`(y·w + x)·c + channel`), so no transpose is needed at run time.
 */
export function denseKernel(weight: TorchTensor, nchw?: [number, number, number]): Float32Array {
  expectShape(weight, 2, "linear weight");
  const [o, i] = weight.shape;
  const src = weight.data;
  const row = new Int32Array(i);
  if (nchw) {
    const [c, h, w] = nchw;
    if (c * h * w !== i) {
      throw new Error(
        `linear weight [${o}, ${i}]: inputs are not the flattened [${c}, ${h}, ${w}]`,
      );
    }
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < h * w; p++) row[ch * h * w + p] = p * c + ch;
    }
  } else {
    for (let k = 0; k < i; k++) row[k] = k;
  }
  const out = new Float32Array(i * o);
  for (let a = 0; a < o; a++) {
    const base = a * i;
    for (let k = 0; k < i; k++) out[row[k] * o + a] = src[base + k];
  }
  return out;
}

/**
 * Folds inference-mode BatchNorm into the convolution before it, in place on `kernel`
 * (any layout whose innermost axis, or innermost axes flattened, index the output channel:
 * HWIO, or depthwise `[kh, kw, c, 1]`): `w' = w·s`, `b' = (b − mean)·s + β` with
 * `s = γ / √(var + ε)`, computed in double precision. Returns the new bias.
 */
export function foldBatchNorm(
  kernel: Float32Array,
  bias: Float32Array | null,
  bn: BatchNormParams,
): Float32Array {
  const c = bn.gamma.length;
  if (kernel.length % c !== 0) {
    throw new Error(`BatchNorm of ${c} channels cannot follow a kernel of ${kernel.length} values`);
  }
  const scale = new Float64Array(c);
  const newBias = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    scale[k] = bn.gamma[k] / Math.sqrt(bn.variance[k] + bn.epsilon);
    newBias[k] = ((bias ? bias[k] : 0) - bn.mean[k]) * scale[k] + bn.beta[k];
  }
  for (let j = 0; j < kernel.length; j++) kernel[j] = kernel[j] * scale[j % c];
  return newBias;
}
