/**
 * Where the native kernels' time goes, per thread: counters the kernels add to, read by the
 * benches' profiles.
 *
 * @module
 */
import { useNativeThreads } from "./gemm.ts";

/** Time and work of the native kernels in this thread, by stage (see {@link nativeProfile}). */
export interface NativeProfile {
  /** Milliseconds in the GEMM calls. */
  gemmMs: number;
  /** Floating-point operations the GEMMs computed (2·m·n·k each). */
  gemmFlops: number;
  /** GEMM calls. */
  gemmCalls: number;
  /** Milliseconds copying receptive fields (im2col). */
  im2colMs: number;
  /** Milliseconds adding input gradients back (col2im). */
  col2imMs: number;
  /** Milliseconds applying fused biases and activations. */
  epilogueMs: number;
  /** Milliseconds in oneDNN's convolution primitives (where the library loads). */
  convMs: number;
  /** Floating-point operations of those convolutions. */
  convFlops: number;
  /** Milliseconds in oneDNN's BatchNorm primitives (forward and backward). */
  batchNormMs: number;
  /** Calls of those primitives. */
  batchNormCalls: number;
  /** Milliseconds in oneDNN's reorders (`Slice`, `Concat`, `Transpose`). */
  reorderMs: number;
  /** Calls of those reorders. */
  reorderCalls: number;
  /** Milliseconds in oneDNN's pooling primitive. */
  poolMs: number;
}

/** The counters, added to by the kernels of this thread. */
export const profile: NativeProfile = {
  gemmMs: 0,
  gemmFlops: 0,
  gemmCalls: 0,
  im2colMs: 0,
  col2imMs: 0,
  epilogueMs: 0,
  convMs: 0,
  convFlops: 0,
  batchNormMs: 0,
  batchNormCalls: 0,
  reorderMs: 0,
  reorderCalls: 0,
  poolMs: 0,
};

/** The native kernels' time by stage since the last {@link resetNativeProfile}, in this thread. */
export function nativeProfile(): NativeProfile {
  return { ...profile };
}

/** Zeroes the counters of {@link nativeProfile}. */
export function resetNativeProfile(): void {
  for (const key of Object.keys(profile) as (keyof NativeProfile)[]) profile[key] = 0;
}

/**
 * Runs a native call of `work` (multiply-adds or values) on the threads a task of that size
 * gets, timed: `record` receives its milliseconds. False, recording nothing, where `run`
 * refused the case.
 */
export function timed(work: number, run: () => boolean, record: (ms: number) => void): boolean {
  const t = performance.now();
  useNativeThreads(work);
  if (!run()) return false;
  record(performance.now() - t);
  return true;
}
