/**
 * Worker side of {@link EncoderWorkers} (`workers.ts`): loads the encoder of the
 * {@link EncoderSpec} it is sent (on its own TF.js backend, one thread), then encodes each
 * chunk it is sent with the encoder's own `encode` and the main thread's resolved options,
 * exactly as `embedTexts` does in the main thread. Messages are typed:
 * {@link ToEncoderWorker} in, {@link FromEncoderWorker} out; the result's buffer is
 * transferred, not copied. Messages are handled one after another, in order.
 *
 * @module
 */
import type { TextEncoderModel } from "./types.ts";
import {
  encoderIdentity,
  type EncoderSpec,
  type FromEncoderWorker,
  loadSpecEncoder,
  type ToEncoderWorker,
} from "./workers.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToEncoderWorker>) => void) | null;
  postMessage(message: FromEncoderWorker, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

let encoder: TextEncoderModel | undefined;
/** The handling of every message so far: each waits for the one before. */
let handled: Promise<void> = Promise.resolve();

function errorText(e: unknown): string {
  if (e instanceof Error) return e.name === "Error" ? e.message : `${e.name}: ${e.message}`;
  return String(e);
}

async function load(spec: EncoderSpec): Promise<void> {
  try {
    if (encoder) throw new Error("this worker has loaded an encoder already");
    encoder = await loadSpecEncoder(spec);
    scope.postMessage({ type: "ready", encoder: encoderIdentity(encoder) });
  } catch (e) {
    scope.postMessage({ type: "load-error", message: errorText(e) });
  }
}

async function encode(msg: Extract<ToEncoderWorker, { type: "encode" }>): Promise<void> {
  const { request } = msg;
  try {
    if (!encoder) throw new Error("no encoder loaded in this worker");
    // The same call as embedTexts makes in the main thread (store.ts).
    const matrix = await encoder.encode(msg.texts, {
      ...msg.options,
      textIndexOffset: msg.first,
      onProgress: (p) => scope.postMessage({ type: "progress", request, done: p.done }),
    });
    let { data } = matrix;
    if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
    scope.postMessage(
      { type: "result", request, data, shape: [matrix.shape[0], matrix.shape[1]] },
      [data.buffer as ArrayBuffer],
    );
  } catch (e) {
    scope.postMessage({ type: "error", request, message: errorText(e) });
  }
}

scope.onmessage = (event: MessageEvent<ToEncoderWorker>) => {
  const msg = event.data;
  handled = handled.then(() => msg.type === "load" ? load(msg.spec) : encode(msg));
};
