/**
 * The one place that sets up TensorFlow.js: the wasm backend (SIMD), loaded from the
 * installed npm package so nothing is fetched at run time. Every stage imports `tf` from
 * here and awaits {@link ready} before its first op.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

export { tf };

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
  })();
  return current;
}
