/**
 * A pool of encoder workers: N Deno workers, each loading its own copy of a text encoder on
 * its own TF.js wasm backend (one thread each), that encode whole chunks of texts on request.
 * TF.js's wasm backend runs on one thread under Deno, so this is how {@link embedTexts}
 * (`store.ts`, option `workers`) uses more than one core.
 *
 * A worker gets the encoder as an {@link EncoderSpec}: plain data (the encoder's kind and its
 * load options), copied whole to every worker, from which it loads the model itself. A chunk
 * is encoded in the worker by the same `encode` call, with the same resolved options (layers,
 * pooling, truncation, overflow, batch size), as in the main thread, on the same wasm
 * kernels, so its vectors are bitwise identical whichever thread encodes it
 * (`tests/embed_workers_test.ts` checks this on real reviews).
 *
 * Messages are typed: {@link ToEncoderWorker} in, {@link FromEncoderWorker} out (the worker
 * script is `encode_worker.ts`). Each worker encodes at most one chunk at a time; a request
 * made while every worker is busy waits for the first to finish.
 *
 * ```ts
 * const workers = await EncoderWorkers.start({ kind: "use-lite" }, 2);
 * try {
 *   const X = await embedTexts(await UseLiteEncoder.load(), texts, { workers });
 * } finally {
 *   await workers.dispose();
 * }
 * ```
 *
 * Only USE-lite is offered now. Another encoder is one more member of {@link EncoderSpec}
 * (e.g. `{ kind: "bert"; source: string; options?: BertLoadOptions }`) and one more case in
 * {@link loadSpecEncoder}; the pool and the worker script need no change.
 *
 * @module
 */
import type { Matrix } from "../types.ts";
import type { EncodeDefaults, ResolvedEncodeOptions, TextEncoderModel } from "./types.ts";
import { UseLiteEncoder, type UseLiteLoadOptions } from "./use_lite.ts";

// The types this module's API names, re-exported so that its documentation is complete.
export type { Progress } from "../progress.ts";
export type { Matrix } from "../types.ts";
export type {
  EncodeDefaults,
  EncodeOptions,
  Overflow,
  Pooling,
  ResolvedEncodeOptions,
  TextEncoderModel,
} from "./types.ts";
export type { UseLiteLoadOptions } from "./use_lite.ts";

/** USE-lite as a worker loads it: {@link UseLiteEncoder.load} with `options`. */
export interface UseLiteSpec {
  /** The encoder's kind. */
  kind: "use-lite";
  /** Load options (model folder, backend), passed whole to {@link UseLiteEncoder.load}. */
  options?: UseLiteLoadOptions;
}

/**
 * How an encoder worker loads its encoder: serialisable data only (it is copied to every
 * worker). One member per encoder kind.
 */
export type EncoderSpec = UseLiteSpec;

/** A short description of `spec` for messages, e.g. `use-lite (folder /m, wasm)`. */
export function describeSpec(spec: EncoderSpec): string {
  if (spec.kind === "use-lite") {
    const folder = spec.options?.folder ?? "the npm package";
    return `use-lite (folder ${folder}, ${spec.options?.backend ?? "wasm"} backend)`;
  }
  return JSON.stringify(spec);
}

/** Loads the encoder `spec` describes (in whichever thread calls it). */
export async function loadSpecEncoder(spec: EncoderSpec): Promise<TextEncoderModel> {
  if (spec === null || typeof spec !== "object") {
    throw new TypeError(`an encoder spec must be an object, not ${JSON.stringify(spec)}`);
  }
  switch (spec.kind) {
    case "use-lite":
      return await UseLiteEncoder.load(spec.options ?? {});
    default:
      throw new Error(
        `unknown encoder kind ${JSON.stringify((spec as { kind: unknown }).kind)} ` +
          `(encoder workers can load: "use-lite")`,
      );
  }
}

/** What a worker's loaded encoder is: the fields of {@link TextEncoderModel} that are data. */
export interface EncoderIdentity {
  /** {@link TextEncoderModel.id}. */
  id: string;
  /** {@link TextEncoderModel.modelHash}. */
  modelHash: string;
  /** {@link TextEncoderModel.numLayers}. */
  numLayers: number;
  /** {@link TextEncoderModel.hiddenSize}. */
  hiddenSize: number;
  /** {@link TextEncoderModel.availableLayers}. */
  availableLayers: number[];
  /** {@link TextEncoderModel.maxTokensLimit}. */
  maxTokensLimit: number;
  /** {@link TextEncoderModel.defaults}. */
  defaults: EncodeDefaults;
}

/** The {@link EncoderIdentity} of `encoder`. */
export function encoderIdentity(encoder: TextEncoderModel): EncoderIdentity {
  return {
    id: encoder.id,
    modelHash: encoder.modelHash,
    numLayers: encoder.numLayers,
    hiddenSize: encoder.hiddenSize,
    availableLayers: [...encoder.availableLayers],
    maxTokensLimit: encoder.maxTokensLimit,
    defaults: { ...encoder.defaults, layers: [...encoder.defaults.layers] },
  };
}

/** One chunk of texts to encode. */
export interface ChunkRequest {
  /** The chunk's index (named in errors). */
  chunk: number;
  /** Index of `texts[0]` in the caller's full list (rows `first .. first + texts.length − 1`). */
  first: number;
  /** The chunk's texts. */
  texts: readonly string[];
  /** Encode options, every field decided (as the main thread resolved them). */
  options: ResolvedEncodeOptions;
}

/** Message to an encoder worker. */
export type ToEncoderWorker =
  | { type: "load"; spec: EncoderSpec }
  | ({ type: "encode"; request: number } & ChunkRequest);

/** Message from an encoder worker. */
export type FromEncoderWorker =
  | { type: "ready"; encoder: EncoderIdentity }
  | { type: "load-error"; message: string }
  | { type: "progress"; request: number; done: number }
  | { type: "result"; request: number; data: Float32Array; shape: [number, number] }
  | { type: "error"; request: number; message: string };

/** Options of {@link EncoderWorkers.encodeChunk}. */
export interface EncodeChunkOptions {
  /** Called after each batch with the number of the chunk's texts done. */
  onProgress?: (done: number) => void;
  /**
   * Stops waiting: rejects with the signal's reason at once. A worker already encoding the
   * chunk finishes it (its result is dropped) before it takes another.
   */
  signal?: AbortSignal;
}

/** A chunk waiting for a worker or being encoded by one. */
interface Pending {
  request: number;
  chunk: ChunkRequest;
  /** True once the caller's promise has been settled (result, error, abort, disposal). */
  settled: boolean;
  /** Settles the caller's promise (once: later calls do nothing). */
  resolve(matrix: Matrix): void;
  /** Rejects the caller's promise (once: later calls do nothing). */
  reject(error: unknown): void;
  onProgress?: (done: number) => void;
}

/** One worker of the pool. */
interface Slot {
  worker: Worker;
  /** 1-based, for messages. */
  number: number;
  /** The chunk it is encoding; undefined when idle. */
  busy?: Pending;
}

const WORKER_SCRIPT = new URL("./encode_worker.ts", import.meta.url);

/** `rows a..b` of a chunk. */
function rowsOf(chunk: ChunkRequest): string {
  return `rows ${chunk.first}..${chunk.first + chunk.texts.length - 1}`;
}

/** Starts worker `number` of `count` and resolves with its encoder once loaded. */
function startWorker(
  spec: EncoderSpec,
  number: number,
  count: number,
  started: Worker[],
): Promise<EncoderIdentity> {
  return new Promise((resolve, reject) => {
    const what = `encoder worker ${number} of ${count}`;
    let worker: Worker;
    try {
      worker = new Worker(WORKER_SCRIPT, { type: "module", name: `encoder ${number}` });
    } catch (e) {
      reject(new Error(`${what} could not be created: ${(e as Error).message}`));
      return;
    }
    started.push(worker);
    worker.onmessage = (event: MessageEvent<FromEncoderWorker>) => {
      const msg = event.data;
      if (msg.type === "ready") resolve(msg.encoder);
      else if (msg.type === "load-error") {
        reject(new Error(`${what} could not load ${describeSpec(spec)}: ${msg.message}`));
      } else {
        reject(new Error(`${what} sent ${JSON.stringify(msg.type)} before it was ready`));
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      reject(new Error(`${what} failed to start (${describeSpec(spec)}): ${event.message}`));
    };
    worker.postMessage({ type: "load", spec } satisfies ToEncoderWorker);
  });
}

/**
 * A pool of encoder workers (see the module doc). Start one with {@link EncoderWorkers.start},
 * hand it to `embedTexts` (option `workers`) or call {@link EncoderWorkers.encodeChunk}, and
 * end it with {@link EncoderWorkers.dispose} (or `await using`).
 */
export class EncoderWorkers {
  /** What the workers load (a copy of the spec given to {@link EncoderWorkers.start}). */
  readonly spec: EncoderSpec;
  /** The encoder every worker loaded (all alike: checked at start). */
  readonly encoder: EncoderIdentity;
  #slots: Slot[];
  /** Requests waiting for an idle worker, first come first served. */
  #queue: Pending[] = [];
  #requests = 0;
  /** Why the pool takes no more requests (disposed, or a worker crashed). */
  #closed: Error | undefined;

  private constructor(spec: EncoderSpec, encoder: EncoderIdentity, workers: Worker[]) {
    this.spec = spec;
    this.encoder = encoder;
    this.#slots = workers.map((worker, i) => ({ worker, number: i + 1 }));
    for (const slot of this.#slots) {
      slot.worker.onmessage = (event: MessageEvent<FromEncoderWorker>) =>
        this.#receive(slot, event.data);
      slot.worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        const chunk = slot.busy ? ` while encoding chunk ${slot.busy.chunk.chunk}` : "";
        this.#close(
          new Error(
            `encoder worker ${slot.number} of ${this.size} crashed${chunk}: ${event.message}`,
          ),
        );
      };
    }
  }

  /**
   * Starts `n` workers (default: one per core, `navigator.hardwareConcurrency`), each
   * loading the encoder of `spec`, and resolves once every one has loaded it. A worker that
   * cannot start or load the encoder rejects with an error naming it, the spec and the
   * cause, after every worker has been ended.
   */
  static async start(
    spec: EncoderSpec,
    n: number = navigator.hardwareConcurrency,
  ): Promise<EncoderWorkers> {
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`the number of encoder workers must be a positive integer, not ${n}`);
    }
    try {
      spec = structuredClone(spec); // what every worker gets; later changes do not reach it
    } catch (e) {
      throw new Error(`an encoder spec must be plain data: ${(e as Error).message}`);
    }
    const workers: Worker[] = [];
    try {
      const identities = await Promise.all(
        Array.from({ length: n }, (_, i) => startWorker(spec, i + 1, n, workers)),
      );
      for (const [i, identity] of identities.entries()) {
        if (identity.id !== identities[0].id || identity.modelHash !== identities[0].modelHash) {
          throw new Error(
            `encoder worker ${i + 1} of ${n} loaded ${identity.id} (${identity.modelHash}), ` +
              `worker 1 loaded ${identities[0].id} (${identities[0].modelHash})`,
          );
        }
      }
      return new EncoderWorkers(spec, identities[0], workers);
    } catch (e) {
      for (const worker of workers) worker.terminate();
      throw e;
    }
  }

  /** Number of workers. */
  get size(): number {
    return this.#slots.length;
  }

  /** Number of workers encoding a chunk now. */
  get busy(): number {
    return this.#slots.filter((s) => s.busy).length;
  }

  /** False once {@link dispose} was called or a worker crashed. */
  get open(): boolean {
    return this.#closed === undefined;
  }

  /**
   * Encodes `chunk` on the first idle worker (waiting for one when all are busy) and
   * resolves with its matrix `[texts.length, layers.length * hiddenSize]`. An error in the
   * worker rejects with an error naming the chunk, its rows and the worker; so does a worker
   * that crashes and a pool disposed meanwhile.
   */
  encodeChunk(chunk: ChunkRequest, options: EncodeChunkOptions = {}): Promise<Matrix> {
    const { signal } = options;
    if (this.#closed) return Promise.reject(this.#closed);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = Promise.withResolvers<Matrix>();
    const onAbort = () => {
      pending.reject(signal!.reason);
      this.#queue = this.#queue.filter((p) => p !== pending);
    };
    const pending: Pending = {
      request: ++this.#requests,
      chunk,
      settled: false,
      resolve: (matrix) => {
        if (pending.settled) return;
        pending.settled = true;
        signal?.removeEventListener("abort", onAbort);
        resolve(matrix);
      },
      reject: (error) => {
        if (pending.settled) return;
        pending.settled = true;
        signal?.removeEventListener("abort", onAbort);
        reject(error);
      },
      onProgress: options.onProgress,
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const idle = this.#slots.find((s) => !s.busy);
    if (idle) this.#post(idle, pending);
    else this.#queue.push(pending);
    return promise;
  }

  /**
   * Ends every worker at once (a chunk being encoded is abandoned: its caller's promise
   * rejects, naming the chunk). Safe to call twice.
   */
  dispose(): Promise<void> {
    this.#close(new Error("the encoder workers were disposed"));
    return Promise.resolve();
  }

  /** {@link dispose}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  /** Sends `pending` to the idle `slot`. */
  #post(slot: Slot, pending: Pending): void {
    slot.busy = pending;
    const { chunk } = pending;
    const message: ToEncoderWorker = {
      type: "encode",
      request: pending.request,
      chunk: chunk.chunk,
      first: chunk.first,
      texts: chunk.texts,
      options: chunk.options,
    };
    try {
      slot.worker.postMessage(message);
    } catch (e) {
      slot.busy = undefined;
      pending.reject(e);
      this.#release(slot);
    }
  }

  /** Hands the idle `slot` the first waiting request that still wants an answer. */
  #release(slot: Slot): void {
    if (this.#closed || slot.busy) return;
    while (this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      if (next.settled) continue;
      this.#post(slot, next);
      return;
    }
  }

  #receive(slot: Slot, msg: FromEncoderWorker): void {
    const pending = slot.busy;
    if (!pending || !("request" in msg) || msg.request !== pending.request) return;
    if (msg.type === "progress") {
      if (!pending.settled) pending.onProgress?.(msg.done);
      return;
    }
    slot.busy = undefined;
    if (msg.type === "result") pending.resolve({ data: msg.data, shape: msg.shape });
    else if (msg.type === "error") {
      pending.reject(
        new Error(
          `${this.encoder.id}: chunk ${pending.chunk.chunk} (${rowsOf(pending.chunk)}) failed ` +
            `in encoder worker ${slot.number} of ${this.size}: ${msg.message}`,
        ),
      );
    }
    this.#release(slot);
  }

  /** Ends the workers; every request in flight or waiting rejects. */
  #close(reason: Error): void {
    if (this.#closed) return;
    this.#closed = reason;
    for (const slot of this.#slots) {
      slot.worker.terminate();
      const pending = slot.busy;
      slot.busy = undefined;
      pending?.reject(
        new Error(
          `chunk ${pending.chunk.chunk} (${rowsOf(pending.chunk)}) was not encoded: ` +
            reason.message,
        ),
      );
    }
    for (const pending of this.#queue.splice(0)) {
      pending.reject(
        new Error(
          `chunk ${pending.chunk.chunk} (${rowsOf(pending.chunk)}) was not encoded: ` +
            reason.message,
        ),
      );
    }
  }
}
