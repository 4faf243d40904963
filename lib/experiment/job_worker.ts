/**
 * Worker side of {@link runJobs} (`pool.ts`): runs each job it is sent with `runJob` on its
 * own TF.js wasm backend (one core). Messages are typed: {@link ToWorker} in,
 * {@link FromWorker} out.
 *
 * @module
 */
import { ready } from "../tf.ts";
import { runJob } from "./jobs.ts";
import type { FromWorker, ToWorker } from "./pool.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  if (msg.type !== "run") return;
  const id = msg.job.id;
  try {
    await ready();
    const result = await runJob(msg.job, {
      onProgress: (p) =>
        scope.postMessage({ type: "progress", id, done: p.done, total: p.total ?? 0 }),
      onEpoch: (record) => scope.postMessage({ type: "epoch", id, record }),
    });
    scope.postMessage({ type: "result", result });
  } catch (e) {
    scope.postMessage({ type: "error", id, message: (e as Error).stack ?? String(e) });
  }
};
