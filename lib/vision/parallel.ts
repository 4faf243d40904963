/**
 * Running a backbone on several cores. TF.js's wasm backend is single-threaded under Deno
 * (its multi-threaded build starts emscripten pthreads through Node's `worker_threads` from
 * a blob URL, which Deno refuses), so parallelism comes from Deno workers instead: each
 * worker loads the same frozen backbone on its own wasm backend and computes whole batches.
 * Used through `Backbone.features(images, { workers: n })` and `cacheFeatures`.
 *
 * @module
 */
import type { LoadBackboneOptions } from "./backbone.ts";
import type { BackboneSpec } from "./registry.ts";

interface Pending {
  resolve: (data: Float32Array) => void;
  reject: (error: Error) => void;
}

/** A set of workers that each hold a copy of one backbone. */
export class BackboneWorkers {
  /** Number of workers. */
  readonly size: number;
  readonly #workers: Worker[];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #ready: Promise<void>;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  /** Starts `size` workers loading `spec` with `options`; await {@link BackboneWorkers.ready}. */
  constructor(spec: BackboneSpec, options: LoadBackboneOptions, size: number) {
    this.size = size;
    this.#workers = [];
    const loads: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      this.#workers.push(worker);
      loads.push(
        new Promise<void>((resolve, reject) => {
          worker.onmessage = (event: MessageEvent) => {
            const msg = event.data as {
              type: string;
              id?: number;
              data?: Float32Array;
              message?: string;
            };
            if (msg.type === "loaded") resolve();
            else if (msg.type === "result" || msg.type === "error") {
              if (msg.id === undefined) {
                reject(new Error(`backbone worker: ${msg.message}`));
                return;
              }
              const pending = this.#pending.get(msg.id);
              this.#pending.delete(msg.id);
              if (msg.type === "result") pending?.resolve(msg.data!);
              else pending?.reject(new Error(`backbone worker: ${msg.message}`));
            }
          };
          worker.onerror = (event: ErrorEvent) => {
            event.preventDefault();
            const error = new Error(`backbone worker failed: ${event.message}`);
            reject(error);
            for (const pending of this.#pending.values()) pending.reject(error);
            this.#pending.clear();
          };
        }),
      );
      worker.postMessage({ type: "load", spec, options });
    }
    this.#ready = Promise.all(loads).then(() => {});
    this.#ready.catch(() => this.terminate());
  }

  /** Resolves when every worker has loaded the backbone. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Runs one batch on worker `index`: `data` (transferred) is `[n, h, w, c]` images; returns
   * the features, row-major.
   */
  run(
    index: number,
    data: Float32Array,
    shape: [number, number, number, number],
    options: { preprocess?: boolean; upsample?: number },
  ): Promise<Float32Array> {
    this.#cancelIdle();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#workers[index].postMessage(
        {
          type: "run",
          id,
          data,
          shape,
          preprocess: options.preprocess,
          upsample: options.upsample,
        },
        [data.buffer as ArrayBuffer],
      );
    });
  }

  #cancelIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  /**
   * Terminates the workers after `ms` without work (a live worker keeps the program
   * running); `onTerminate` is called when they are gone.
   */
  terminateWhenIdle(ms: number, onTerminate: () => void): void {
    this.#cancelIdle();
    this.#idleTimer = setTimeout(() => {
      this.terminate();
      onTerminate();
    }, ms);
  }

  /** Stops every worker now. */
  terminate(): void {
    this.#cancelIdle();
    for (const worker of this.#workers) worker.terminate();
    const error = new Error("backbone workers terminated");
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
