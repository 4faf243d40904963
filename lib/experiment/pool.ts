/**
 * Runs a run's jobs several at once, one per core. TF.js's wasm backend is single-threaded
 * under Deno, and the experiment trains many independent models, so the cheapest way to use
 * two cores is two Deno workers, each running whole jobs on its own backend (no change to
 * any model's arithmetic: a job gives the same result in a worker as in this thread).
 *
 * @module
 */
import type { MLPEpochRecord } from "../eval/mlp.ts";
import type { EpochRecord } from "../train/mod.ts";
import { runJob } from "./jobs.ts";
import type { Job, JobResult } from "./jobs.ts";

/** Message to a worker: run this job. */
export type ToWorker = { type: "run"; job: Job };

/** Message from a worker. */
export type FromWorker =
  | { type: "progress"; id: string; done: number; total: number }
  | { type: "epoch"; id: string; record: EpochRecord | MLPEpochRecord }
  | { type: "result"; result: JobResult }
  | { type: "error"; id: string; message: string };

/** Callbacks of {@link runJobs}. */
export interface PoolCallbacks {
  /** Batches done / total of job `id`. */
  onProgress?: (id: string, done: number, total: number) => void;
  /** An epoch of job `id` finished. */
  onEpoch?: (id: string, record: EpochRecord | MLPEpochRecord) => void;
  /** Job `id` finished. */
  onResult?: (result: JobResult) => void | Promise<void>;
}

/**
 * Runs `jobs` on `workers` Deno workers (or in this thread when `workers` is 1), at most
 * one job per worker at a time, and returns the results in the order of `jobs`, after every
 * `onResult` has completed. The first
 * failure, or `signal`, stops the pool (terminating the workers; checkpoints stay) and
 * rejects.
 */
export async function runJobs(
  jobs: Job[],
  workers: number,
  callbacks: PoolCallbacks = {},
  signal?: AbortSignal,
): Promise<JobResult[]> {
  const results = new Map<string, JobResult>();
  if (workers <= 1 || jobs.length <= 1) {
    for (const job of jobs) {
      signal?.throwIfAborted();
      const result = await runJob(job, {
        signal,
        onProgress: (p) => callbacks.onProgress?.(job.id, p.done, p.total ?? 0),
        onEpoch: (r) => callbacks.onEpoch?.(job.id, r),
      });
      results.set(job.id, result);
      await callbacks.onResult?.(result);
    }
    return jobs.map((j) => results.get(j.id)!);
  }
  const queue = [...jobs];
  const pool: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      let failed = false;
      signal?.throwIfAborted();
      signal?.addEventListener("abort", () => {
        failed = true;
        reject(signal.reason);
      }, { once: true });
      const next = (worker: Worker) => {
        const job = queue.shift();
        if (!job) {
          if (running === 0) resolve();
          return;
        }
        running++;
        worker.postMessage({ type: "run", job } satisfies ToWorker);
      };
      for (let i = 0; i < Math.min(workers, jobs.length); i++) {
        const worker = new Worker(new URL("./job_worker.ts", import.meta.url), {
          type: "module",
        });
        pool.push(worker);
        worker.onmessage = async (event: MessageEvent) => {
          const msg = event.data as FromWorker;
          if (failed) return;
          if (msg.type === "progress") {
            callbacks.onProgress?.(msg.id, msg.done, msg.total);
          } else if (msg.type === "epoch") {
            callbacks.onEpoch?.(msg.id, msg.record);
          } else if (msg.type === "result") {
            const result = msg.result;
            results.set(result.id, result);
            try {
              await callbacks.onResult?.(result);
            } catch (e) {
              failed = true;
              reject(e);
              return;
            }
            // Only now is the job finished: the pool resolves after every onResult has (a
            // job counted done before its result was stored could be left out of a run).
            running--;
            if (queue.length === 0 && running === 0) resolve();
            else next(worker);
          } else if (msg.type === "error") {
            failed = true;
            reject(new Error(`job ${msg.id} failed in a worker: ${msg.message}`));
          }
        };
        worker.onerror = (event: ErrorEvent) => {
          event.preventDefault();
          failed = true;
          reject(new Error(`a job worker crashed: ${event.message}`));
        };
        next(worker);
      }
    });
  } finally {
    for (const worker of pool) worker.terminate();
  }
  return jobs.map((j) => results.get(j.id)!);
}
