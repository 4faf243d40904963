/**
 * Worker side of `runTrainJobs` (`pool.ts`): runs {@link runTrainJob} on its own TF.js
 * wasm backend (one core) for each job it is sent.
 *
 * Messages in: `{ type: "run", job }`. Messages out: `{ type: "progress", id, done, total }`,
 * `{ type: "epoch", id, record }`, `{ type: "result", result }` or
 * `{ type: "error", id, message }`.
 *
 * @module
 */
import { ready } from "../tf.ts";
import { runTrainJob } from "./train_job.ts";
import type { TrainJob } from "./train_job.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (event: MessageEvent) => {
  const msg = event.data as { type: string; job: TrainJob };
  if (msg.type !== "run") return;
  const id = msg.job.id;
  try {
    await ready();
    const result = await runTrainJob(msg.job, {
      onProgress: (p) => scope.postMessage({ type: "progress", id, done: p.done, total: p.total }),
      onEpoch: (record) => scope.postMessage({ type: "epoch", id, record }),
    });
    scope.postMessage({ type: "result", result });
  } catch (e) {
    scope.postMessage({ type: "error", id, message: (e as Error).stack ?? String(e) });
  }
};
