/**
 * Runs several image-classifier trainings at once, one per core. TF.js's wasm backend is
 * single-threaded under Deno, and the experiment trains several independent models, so the
 * cheapest way to use two cores is two Deno workers, each training whole models on its own
 * backend (no change to any model's arithmetic: a job gives the same result in a worker as
 * in this thread).
 *
 * @module
 */
import type { EpochRecord } from "../train/mod.ts";
import { runTrainJob } from "./train_job.ts";
import type { TrainJob, TrainJobResult } from "./train_job.ts";

/** Callbacks of {@link runTrainJobs}. */
export interface TrainingPoolCallbacks {
  /** Batches done / total of job `id`. */
  onProgress?: (id: string, done: number, total: number) => void;
  /** An epoch of job `id` finished. */
  onEpoch?: (id: string, record: EpochRecord) => void;
  /** Job `id` finished. */
  onResult?: (result: TrainJobResult) => void | Promise<void>;
}

/**
 * Runs `jobs` on `workers` Deno workers (or in this thread when `workers` is 1), at most
 * one job per worker at a time, and returns the results in the order of `jobs`. The first
 * failure, or `signal`, stops the pool (terminating the workers; checkpoints stay) and
 * rejects.
 */
export async function runTrainJobs(
  jobs: TrainJob[],
  workers: number,
  callbacks: TrainingPoolCallbacks = {},
  signal?: AbortSignal,
): Promise<TrainJobResult[]> {
  const results = new Map<string, TrainJobResult>();
  if (workers <= 1 || jobs.length <= 1) {
    for (const job of jobs) {
      signal?.throwIfAborted();
      const result = await runTrainJob(job, {
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
        worker.postMessage({ type: "run", job });
      };
      for (let i = 0; i < Math.min(workers, jobs.length); i++) {
        const worker = new Worker(new URL("./train_worker.ts", import.meta.url), {
          type: "module",
        });
        pool.push(worker);
        worker.onmessage = async (event: MessageEvent) => {
          const msg = event.data as Record<string, unknown>;
          if (failed) return;
          if (msg.type === "progress") {
            callbacks.onProgress?.(msg.id as string, msg.done as number, msg.total as number);
          } else if (msg.type === "epoch") {
            callbacks.onEpoch?.(msg.id as string, msg.record as EpochRecord);
          } else if (msg.type === "result") {
            const result = msg.result as TrainJobResult;
            results.set(result.id, result);
            running--;
            try {
              await callbacks.onResult?.(result);
            } catch (e) {
              failed = true;
              reject(e);
              return;
            }
            if (queue.length === 0 && running === 0) resolve();
            else next(worker);
          } else if (msg.type === "error") {
            failed = true;
            reject(new Error(`training ${msg.id} failed in a worker: ${msg.message}`));
          }
        };
        worker.onerror = (event: ErrorEvent) => {
          event.preventDefault();
          failed = true;
          reject(new Error(`a training worker crashed: ${event.message}`));
        };
        next(worker);
      }
    });
  } finally {
    for (const worker of pool) worker.terminate();
  }
  return jobs.map((j) => results.get(j.id)!);
}
