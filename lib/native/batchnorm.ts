/**
 * BatchNorm in training mode as two kernels of the wasm backend, for the trainable
 * network's hand-written BatchNorm (`batchNormTraining` in `lib/train/network.ts`): the
 * forward pass ({@link BATCH_NORM_TRAINING}: `y`, batch mean, biased batch variance) and its
 * gradient ({@link BATCH_NORM_TRAINING_GRAD}: `dx`, `dγ`, `dβ`), over channels-last values
 * seen as `[rows, channels]`. They run on oneDNN's batch-normalization primitives
 * (`onednn_batchnorm.ts`) where those open and accept the case, else on plain loops here
 * (two passes for the statistics, as the wasm ops).
 *
 * The gradient is PyTorch's and the ops path's:
 * `dx = γ·σ⁻¹/N · (N·dy − Σdy − x̂·Σ(dy·x̂))`, `dγ = Σ(dy·x̂)`, `dβ = Σdy`, with
 * `x̂ = (x − μ)·σ⁻¹` and `σ = √(var + ε)`.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { nativeGemm } from "./gemm.ts";
import type { KernelArgs, TensorInfo } from "./kernel_api.ts";
import { type OneDnnBatchNorm, openOneDnnBatchNorm } from "./onednn_batchnorm.ts";
import { openedOnce } from "./onednn_ffi.ts";
import { profile, timed } from "./profile.ts";

/** Kernel name of the training-mode forward pass: inputs `x`, `gamma`, `beta`; attr `epsilon`. */
export const BATCH_NORM_TRAINING = "TextAsImageBatchNormTraining";
/** Kernel name of its gradient: inputs `x`, `mean`, `variance`, `gamma`, `dy`; attr `epsilon`. */
export const BATCH_NORM_TRAINING_GRAD = "TextAsImageBatchNormTrainingGrad";

/** oneDNN's primitives, opened once per thread (off with `setPrimitivesEnabled(false)`). */
const primitive = openedOnce(openOneDnnBatchNorm);

/**
 * Whether the two kernels run natively in this thread: the wasm backend is active, the
 * native kernels are on and oneDNN is the library. Otherwise BatchNorm should use TF.js ops.
 */
export function nativeBatchNormAvailable(): boolean {
  return tf.getBackend() === "wasm" && nativeGemm()?.library === "onednn" &&
    tf.getKernel(BATCH_NORM_TRAINING, "wasm") !== undefined;
}

/** Runs a call of `values` values on the primitive, timed; false where it is off or refused. */
function onPrimitive(values: number, run: (p: OneDnnBatchNorm) => boolean): boolean {
  const p = primitive();
  return p !== undefined && timed(values, () => run(p), (ms) => {
    profile.batchNormMs += ms;
    profile.batchNormCalls++;
  });
}

function forward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const x = inputs.x!, gamma = inputs.gamma!, beta = inputs.beta!;
  const [rows, channels] = x.shape;
  const epsilon = attrs.epsilon as number;
  const y = backend.makeOutput([rows, channels], "float32");
  const mean = backend.makeOutput([channels], "float32");
  const variance = backend.makeOutput([channels], "float32");
  const v = {
    x: backend.typedArrayFromHeap(x),
    gamma: backend.typedArrayFromHeap(gamma),
    beta: backend.typedArrayFromHeap(beta),
    y: backend.typedArrayFromHeap(y),
    mean: backend.typedArrayFromHeap(mean),
    variance: backend.typedArrayFromHeap(variance),
  };
  if (!onPrimitive(rows * channels, (p) => p.forward(rows, channels, epsilon, v))) {
    forwardLoops(rows, channels, epsilon, v);
  }
  return [y, mean, variance];
}

function forwardLoops(
  rows: number,
  c: number,
  epsilon: number,
  v: Record<"x" | "gamma" | "beta" | "y" | "mean" | "variance", Float32Array>,
): void {
  const sum = new Float64Array(c), squares = new Float64Array(c);
  for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) sum[j] += v.x[r * c + j];
  for (let j = 0; j < c; j++) v.mean[j] = sum[j] / rows;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < c; j++) squares[j] += (v.x[r * c + j] - v.mean[j]) ** 2;
  }
  const scale = new Float32Array(c);
  for (let j = 0; j < c; j++) {
    v.variance[j] = squares[j] / rows;
    scale[j] = v.gamma[j] / Math.sqrt(v.variance[j] + epsilon);
  }
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < c; j++) {
      v.y[r * c + j] = (v.x[r * c + j] - v.mean[j]) * scale[j] + v.beta[j];
    }
  }
}

function backward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const x = inputs.x!;
  const [rows, channels] = x.shape;
  const epsilon = attrs.epsilon as number;
  const dx = backend.makeOutput([rows, channels], "float32");
  const dGamma = backend.makeOutput([channels], "float32");
  const dBeta = backend.makeOutput([channels], "float32");
  const heap = (t: TensorInfo) => backend.typedArrayFromHeap(t);
  const v = {
    x: heap(x),
    mean: heap(inputs.mean!),
    variance: heap(inputs.variance!),
    gamma: heap(inputs.gamma!),
    dy: heap(inputs.dy!),
    dx: heap(dx),
    dGamma: heap(dGamma),
    dBeta: heap(dBeta),
  };
  if (!onPrimitive(rows * channels, (p) => p.backward(rows, channels, epsilon, v))) {
    backwardLoops(rows, channels, epsilon, v);
  }
  return [dx, dGamma, dBeta];
}

function backwardLoops(
  rows: number,
  c: number,
  epsilon: number,
  v: Record<"x" | "mean" | "variance" | "gamma" | "dy" | "dx" | "dGamma" | "dBeta", Float32Array>,
): void {
  const inv = new Float64Array(c), sumDy = new Float64Array(c), sumDyXhat = new Float64Array(c);
  for (let j = 0; j < c; j++) inv[j] = 1 / Math.sqrt(v.variance[j] + epsilon);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < c; j++) {
      const dy = v.dy[r * c + j];
      sumDy[j] += dy;
      sumDyXhat[j] += dy * (v.x[r * c + j] - v.mean[j]) * inv[j];
    }
  }
  for (let j = 0; j < c; j++) {
    v.dBeta[j] = sumDy[j];
    v.dGamma[j] = sumDyXhat[j];
  }
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < c; j++) {
      const xhat = (v.x[r * c + j] - v.mean[j]) * inv[j];
      v.dx[r * c + j] = (v.gamma[j] * inv[j] / rows) *
        (rows * v.dy[r * c + j] - sumDy[j] - xhat * sumDyXhat[j]);
    }
  }
}

/** Registers the two kernels on the wasm backend (once). */
export function registerBatchNormKernels(): void {
  for (
    const [kernelName, kernelFunc] of [
      [BATCH_NORM_TRAINING, forward],
      [BATCH_NORM_TRAINING_GRAD, backward],
    ] as const
  ) {
    if (tf.getKernel(kernelName, "wasm")) continue;
    tf.registerKernel({
      kernelName,
      backendName: "wasm",
      kernelFunc: kernelFunc as unknown as tf.KernelFunc,
    });
  }
}
