/**
 * Native kernels for TensorFlow.js's wasm backend: oneDNN's convolution primitives and
 * `sgemm` (else OpenBLAS's) through Deno's FFI, installed over the wasm kernels by
 * `ready()` in `lib/tf.ts`, with the wasm kernels as the fallback for every case they do not
 * cover and where no library loads.
 *
 * - {@link nativeStatus} / {@link nativeStatusText}: which kernels run in this thread, and why
 *   wasm when they do not.
 * - {@link setNativeEnabled}, {@link setNativeThreads}, {@link setPrimitivesEnabled},
 *   {@link setIm2colChunkFloats}: switches for comparisons and memory; the environment
 *   variables `TEXT_AS_IMAGE_NATIVE` (`auto`, `onednn`, `openblas`, `off`) and
 *   `TEXT_AS_IMAGE_NATIVE_THREADS` set them per process.
 * - {@link nativeProfile}: time per stage (primitives, GEMM, im2col, …) for benches.
 * - {@link numericPaddingInKernels}: whether a layer may hand the convolution kernels a
 *   PyTorch-style numeric padding instead of padding its input.
 * - {@link nativeBatchNormAvailable} and the kernel names {@link BATCH_NORM_TRAINING},
 *   {@link BATCH_NORM_TRAINING_GRAD}: the trainable network's BatchNorm on oneDNN.
 * - {@link nativeGemm} / {@link openNativeGemm}: the row-major GEMM itself.
 *
 * @example
 * ```ts
 * import { ready, tf } from "../tf.ts";
 * import { nativeStatusText } from "./mod.ts";
 *
 * await ready();
 * console.log(nativeStatusText()); // e.g. "onednn (libdnnl.so.2, 2 threads)"
 * const x = tf.ones([1, 8, 8, 3]) as tf.Tensor4D;
 * const y = tf.conv2d(x, tf.ones([3, 3, 3, 4]) as tf.Tensor4D, 1, "same");
 * console.log(y.shape); // [1, 8, 8, 4]
 * ```
 *
 * @module
 */
export {
  nativeGemm,
  nativeSetting,
  nativeStatus,
  nativeStatusText,
  nativeThreads,
  openNativeGemm,
  setNativeEnabled,
  setNativeThreads,
  SMALL_GEMM_MULTIPLY_ADDS,
} from "./gemm.ts";
export type { NativeGemm, NativeLibrary, NativeStatus } from "./gemm.ts";
export {
  IM2COL_CHUNK_FLOATS,
  nativeProfile,
  numericPaddingInKernels,
  registerNativeKernels,
  resetNativeProfile,
  setIm2colChunkFloats,
  setPrimitivesEnabled,
} from "./kernels.ts";
export type { NativeProfile, PaddedOp } from "./kernels.ts";
export { openOneDnnConv } from "./onednn_conv.ts";
export {
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
  nativeBatchNormAvailable,
} from "./batchnorm.ts";
export { openOneDnnBatchNorm } from "./onednn_batchnorm.ts";
export type {
  BatchNormBackwardValues,
  BatchNormForwardValues,
  OneDnnBatchNorm,
} from "./onednn_batchnorm.ts";
export type { ConvSpec, OneDnnConv } from "./onednn_conv.ts";
