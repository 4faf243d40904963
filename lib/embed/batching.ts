/**
 * The encode loop shared by the encoders: texts sorted by token count into batches (less
 * padding), one model call per batch, pooling of each requested hidden state into the output
 * row of each text, NaN/Inf check and progress.
 *
 * @module
 */
import type { Matrix } from "../types.ts";
import { poolInto } from "./pooling.ts";
import { checkFiniteRows, type EncodeOptions, type ResolvedEncodeOptions } from "./types.ts";

/** One requested hidden state of a batch, as the model returned it. */
export interface BatchLayerOutput {
  /** Row-major `[batch, tokens, hidden]` token states, or `[batch, hidden]` when `pooled`. */
  data: Float32Array;
  /** Token positions per sample (the padded length); ignored when `pooled`. */
  tokens: number;
  /** True when the model already returns one vector per text (no pooling to do). */
  pooled?: boolean;
}

/** Indices `0..n-1` grouped into batches of similar token counts, longest first. */
export function lengthSortedBatches(lengths: readonly number[], batchSize: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const batches: number[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
  return batches;
}

/**
 * Runs `runBatch` over `tokenIds` in length-sorted batches and returns the pooled,
 * layer-major matrix `[texts.length, layers.length * hiddenSize]` in the order of `texts`.
 * `runBatch` receives the token ids of the batch and returns one output per requested layer.
 */
export async function encodeInBatches(args: {
  encoderId: string;
  texts: readonly string[];
  tokenIds: readonly number[][];
  options: ResolvedEncodeOptions;
  hiddenSize: number;
  onProgress?: EncodeOptions["onProgress"];
  /** Number of `texts[0]` in error messages. */
  textIndexOffset?: number;
  runBatch: (ids: readonly number[][]) => Promise<BatchLayerOutput[]>;
}): Promise<Matrix> {
  const { texts, tokenIds, options, hiddenSize } = args;
  const n = texts.length;
  const layers = options.layers.length;
  const cols = layers * hiddenSize;
  const data = new Float32Array(n * cols);
  let done = 0;
  for (const batch of lengthSortedBatches(tokenIds.map((t) => t.length), options.batchSize)) {
    const outputs = await args.runBatch(batch.map((i) => tokenIds[i]));
    if (outputs.length !== layers) {
      throw new Error(`${args.encoderId}: model returned ${outputs.length} of ${layers} layers`);
    }
    const rows = new Float32Array(batch.length * cols);
    for (let b = 0; b < batch.length; b++) {
      for (let l = 0; l < layers; l++) {
        const out = outputs[l];
        const offset = b * cols + l * hiddenSize;
        if (out.pooled) rows.set(out.data.subarray(b * hiddenSize, (b + 1) * hiddenSize), offset);
        else {
          poolInto(
            out.data,
            out.tokens,
            hiddenSize,
            b,
            tokenIds[batch[b]].length,
            options.pooling,
            rows,
            offset,
          );
        }
      }
    }
    const offset = args.textIndexOffset ?? 0;
    checkFiniteRows(
      rows,
      cols,
      batch.map((i) => texts[i]),
      batch.map((i) => i + offset),
      args.encoderId,
    );
    batch.forEach((textIndex, b) => {
      data.set(rows.subarray(b * cols, (b + 1) * cols), textIndex * cols);
    });
    done += batch.length;
    args.onProgress?.({ done, total: n });
  }
  return { data, shape: [n, cols] };
}
