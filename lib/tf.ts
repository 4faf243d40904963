/**
 * The one place that sets up TensorFlow.js: the wasm backend (SIMD), loaded from the
 * installed npm package so nothing is fetched at run time, with native matrix products and
 * convolutions installed over its kernels where oneDNN or OpenBLAS loads (`lib/native/`;
 * {@link nativeStatus} says which ran). Every stage imports `tf` from here and awaits
 * {@link ready} before its first op.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { registerNativeKernels } from "./native/kernels.ts";

export { tf };
export { nativeStatus, nativeStatusText, nativeThreads } from "./native/gemm.ts";

/** Backends this toolkit uses: `wasm` for speed, `cpu` as the reference for kernel tests. */
export type BackendName = "wasm" | "cpu";

let current: Promise<void> | undefined;
let currentName: BackendName | undefined;

/**
 * Initialises TensorFlow.js on `backend` (default `wasm`) once and returns when it is ready.
 * Calling it again with another backend switches.
 */
export function ready(backend: BackendName = "wasm"): Promise<void> {
  if (current && currentName === backend) return current;
  currentName = backend;
  current = (async () => {
    if (backend === "wasm") {
      const wasmFile = fileURLToPath(
        import.meta.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm"),
      );
      setWasmPaths(`${dirname(wasmFile)}/`);
    }
    if (!(await tf.setBackend(backend))) {
      throw new Error(`TensorFlow.js backend "${backend}" failed to initialise`);
    }
    await tf.ready();
    // Matrix products and convolutions on a native GEMM where one loads (lib/native/).
    if (backend === "wasm") registerNativeKernels();
  })();
  return current;
}

/** The part of the wasm backend {@link readValues} uses (its class is not exported as a type). */
interface HeapBackend {
  typedArrayFromHeap(info: { shape: number[]; dtype: tf.DataType; dataId: object }): Float32Array;
}

/**
 * The values of a float32 `tensor`, without a copy where the backend allows it (wasm: a view
 * on its heap), else from `dataSync()`. A heap view is valid only until the next TF.js op
 * (the heap can grow and move), so read it at once and do not keep it.
 *
 * Why: `dataSync()` returns a fresh buffer, and fresh buffers of tens of megabytes cost far
 * more than the copy (V8 collects garbage on large allocations) — for the gradients of a
 * 7.6 M-parameter head, about 90 ms per training step.
 */
export function readValues(tensor: tf.Tensor): Float32Array {
  if (tensor.dtype !== "float32") {
    throw new Error(`readValues: float32 tensors only, got ${tensor.dtype}`);
  }
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  if (tf.getBackend() === "wasm" && typeof backend.typedArrayFromHeap === "function") {
    return backend.typedArrayFromHeap({
      shape: tensor.shape,
      dtype: "float32",
      dataId: tensor.dataId,
    });
  }
  return tensor.dataSync() as Float32Array;
}
