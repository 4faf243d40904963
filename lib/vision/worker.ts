/**
 * Worker side of {@link BackboneWorkers} (`parallel.ts`): loads the same backbone on its own
 * TF.js wasm backend (one core) and runs the frozen forward pass on the batches it is sent.
 *
 * Messages in: `{ type: "load", spec, options }`, then `{ type: "run", id, data, shape,
 * preprocess, upsample }`. Messages out: `{ type: "loaded" }`, `{ type: "result", id, data }`
 * (data transferred) or `{ type: "error", id?, message }`.
 *
 * @module
 */
import { ready, tf } from "../tf.ts";
import { loadBackbone } from "./backbone.ts";
import type { Backbone, LoadBackboneOptions } from "./backbone.ts";
import type { BackboneSpec } from "./registry.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;
let backbone: Backbone | undefined;

scope.onmessage = async (event: MessageEvent) => {
  const msg = event.data as Record<string, unknown>;
  try {
    if (msg.type === "load") {
      await ready();
      backbone = await loadBackbone(msg.spec as BackboneSpec, msg.options as LoadBackboneOptions);
      scope.postMessage({ type: "loaded" });
    } else if (msg.type === "run") {
      if (!backbone) throw new Error("worker: run before load");
      const shape = msg.shape as [number, number, number, number];
      const factor = (msg.upsample as number | undefined) ?? 1;
      const y = tf.tidy(() => {
        let x = tf.tensor4d(msg.data as Float32Array, shape);
        if (factor !== 1) {
          x = tf.image.resizeNearestNeighbor(x, [shape[1] * factor, shape[2] * factor]);
        }
        return backbone!.forward(x, { preprocess: msg.preprocess as boolean | undefined });
      });
      const values = (await y.data()) as Float32Array;
      y.dispose();
      // transfer a buffer of our own (never a view of the wasm heap)
      const data = values.byteOffset === 0 && values.buffer.byteLength === values.byteLength
        ? values
        : values.slice();
      scope.postMessage({ type: "result", id: msg.id, data }, [data.buffer as ArrayBuffer]);
    }
  } catch (e) {
    scope.postMessage({ type: "error", id: msg.id, message: (e as Error).message });
  }
};
