/**
 * Worker side of data-parallel training (`parallel.ts`): one rank. Rebuilds the shared
 * sources, joins the collective and runs `ImageClassifier.fitRank`; rank 0 forwards
 * progress and epochs and sends the final weights.
 *
 * Message in: `{ type: "fit", rank, buffers, options, train, y, validation }`. Messages out:
 * `{ type: "progress", done, total }`, `{ type: "epoch", record }` (rank 0),
 * `{ type: "result", result }` (rank 0) or `{ type: "error", message }`.
 *
 * @module
 */
import { ready } from "../tf.ts";
import type { Labels } from "../types.ts";
import { ImageClassifier } from "./classifier.ts";
import { Collective } from "./collective.ts";
import type { CollectiveBuffers } from "./collective.ts";
import type { RankResult, SerializableClassifierOptions } from "./parallel.ts";
import { sourceFromShared } from "./sources.ts";
import type { SharedSourceSpec } from "./sources.ts";

interface WorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
}

const scope = globalThis as unknown as WorkerScope;

scope.onmessage = async (event: MessageEvent) => {
  const msg = event.data as {
    type: string;
    rank: number;
    buffers: CollectiveBuffers;
    options: SerializableClassifierOptions;
    train: SharedSourceSpec;
    y: Labels;
    validation?: { x: SharedSourceSpec; y: Labels };
  };
  if (msg.type !== "fit") return;
  const collective = new Collective(msg.buffers, msg.rank);
  try {
    await ready();
    const lead = msg.rank === 0;
    const clf = new ImageClassifier({
      ...msg.options,
      onProgress: lead
        ? (p) => scope.postMessage({ type: "progress", done: p.done, total: p.total })
        : undefined,
      onEpoch: lead ? (record) => scope.postMessage({ type: "epoch", record }) : undefined,
    });
    const train = await sourceFromShared(msg.train);
    const validation = msg.validation
      ? { x: await sourceFromShared(msg.validation.x), y: msg.validation.y }
      : undefined;
    await clf.fitRank(train, msg.y, validation, collective);
    if (lead) {
      const result: RankResult = {
        weights: clf.network_!.getWeights(),
        history: clf.history_,
        selectedEpoch: clf.selectedEpoch_ ?? clf.history_.length,
        stoppedEarly: clf.stoppedEarly_,
        resumedEpochs: clf.resumedEpochs_,
      };
      scope.postMessage({ type: "result", result });
    }
    clf.dispose();
  } catch (e) {
    collective.abort();
    scope.postMessage({ type: "error", message: (e as Error).stack ?? String(e) });
  }
};
