/**
 * Data-parallel training of one {@link ImageClassifier} on several cores. TF.js's wasm
 * backend runs on one thread under Deno, so each Deno worker runs its own backend with a
 * replica of the network and trains on its share of every batch (`fitRank`); ranks sum
 * gradients, BatchNorm statistics and metrics through shared memory (`collective.ts`) and
 * apply identical Adam steps, so the replicas never diverge. Rank 0 reports progress, writes
 * the checkpoints and sends the final weights back, which this thread loads into its own
 * network for prediction.
 *
 * @module
 */
import { ProgressBar } from "../progress.ts";
import type { Labels } from "../types.ts";
import type { EpochRecord, ImageClassifier, ImageClassifierOptions } from "./classifier.ts";
import { createCollectiveBuffers } from "./collective.ts";
import type { NamedArrays } from "./network.ts";
import { TrainableNetwork } from "./network.ts";
import type { FeatureSource, SharedSourceSpec } from "./sources.ts";

/** What rank 0 sends back when training is done. */
export interface RankResult {
  /** The final weights (the selected epoch's). */
  weights: NamedArrays;
  /** Per-epoch records of the epochs run. */
  history: EpochRecord[];
  /** The epoch whose weights these are (1-based). */
  selectedEpoch: number;
  /** Whether early stopping ended the training (`ImageClassifier.stoppedEarly_`). */
  stoppedEarly: boolean;
  /** Epochs loaded from a checkpoint instead of trained. */
  resumedEpochs: number;
}

/** The options a worker can receive (no callbacks, no signal). */
export type SerializableClassifierOptions = Omit<
  ImageClassifierOptions,
  "onProgress" | "onEpoch" | "signal"
>;

function shareOf(source: FeatureSource, what: string): SharedSourceSpec {
  if (!source.share) {
    throw new Error(
      `${what}: this source cannot be shared with workers; train with workers: 1 or pass ` +
        `feature maps (cachedFeatureSource) or images through a registered backbone.`,
    );
  }
  return source.share();
}

/**
 * Trains `clf` on `workers` Deno workers and leaves the result in `clf` (network, history,
 * selected epoch), as `fit` does in one thread.
 */
export async function fitDataParallel(
  clf: ImageClassifier,
  source: FeatureSource,
  y: Labels,
  validation: { x: FeatureSource; y: Labels } | undefined,
  workers: number,
): Promise<void> {
  const started = performance.now();
  const { onProgress, onEpoch, signal, ...rest } = clf.options;
  const options: SerializableClassifierOptions = { ...rest, workers: 1, progressBar: false };
  const train = shareOf(source, "training inputs");
  const val = validation ? shareOf(validation.x, "validation inputs") : undefined;
  const buffers = createCollectiveBuffers(workers, 1 << 20);
  const cfg = clf.config;
  const batchesPerEpoch = Math.ceil(source.length / cfg.batchSize);
  const bar = (clf.options.progressBar ?? true)
    ? new ProgressBar(
      `${clf.options.label ?? cfg.architecture.name} (${workers} workers)`,
      batchesPerEpoch * cfg.epochs,
      { unit: "batches" },
    )
    : undefined;
  const pool: Worker[] = [];
  try {
    const result = await new Promise<RankResult>((resolve, reject) => {
      let failed = false;
      const fail = (error: unknown) => {
        if (failed) return;
        failed = true;
        reject(error);
      };
      signal?.addEventListener("abort", () => fail(signal.reason), { once: true });
      if (signal?.aborted) return fail(signal.reason);
      for (let rank = 0; rank < workers; rank++) {
        const worker = new Worker(new URL("./parallel_worker.ts", import.meta.url), {
          type: "module",
        });
        pool.push(worker);
        worker.onmessage = (event: MessageEvent) => {
          const msg = event.data as Record<string, unknown>;
          if (msg.type === "progress") {
            const done = msg.done as number;
            bar?.update(done);
            onProgress?.({ done, total: msg.total as number });
          } else if (msg.type === "epoch") {
            onEpoch?.(msg.record as EpochRecord);
          } else if (msg.type === "result") {
            resolve(msg.result as RankResult);
          } else if (msg.type === "error") {
            fail(new Error(`training worker ${rank} failed: ${msg.message}`));
          }
        };
        worker.onerror = (event: ErrorEvent) => {
          event.preventDefault();
          fail(new Error(`training worker ${rank} crashed: ${event.message}`));
        };
        worker.postMessage({
          type: "fit",
          rank,
          buffers,
          options,
          train,
          y,
          validation: val && validation ? { x: val, y: validation.y } : undefined,
        });
      }
    });
    bar?.finish();
    clf.network_?.dispose();
    const network = new TrainableNetwork(cfg.architecture, source.featureShape, cfg.seed, {
      standardizeInput: cfg.standardizeFeatures,
    });
    network.setWeights(result.weights);
    clf.network_ = network;
    clf.history_ = result.history;
    clf.selectedEpoch_ = result.selectedEpoch;
    clf.stoppedEarly_ = result.stoppedEarly;
    clf.resumedEpochs_ = result.resumedEpochs;
  } finally {
    for (const worker of pool) worker.terminate();
  }
  clf.fitSeconds_ = (performance.now() - started) / 1000;
}
