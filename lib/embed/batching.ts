/**
 * The encode loop shared by the encoders: token windows sorted by length into batches (less
 * padding), one model call per batch, pooling of each requested hidden state into the output
 * row of its text, NaN/Inf check and progress.
 *
 * A text is one window when truncated; with `overflow: "windows"` it may be several, and its
 * row is the average of its windows' pooled vectors weighted by their token counts.
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

/** Splits `core` token ids into windows of at most `room` ids (one window if `truncate`). */
export function splitWindows(
  core: readonly number[],
  room: number,
  overflow: ResolvedEncodeOptions["overflow"],
): number[][] {
  if (overflow === "truncate" || core.length <= room) return [core.slice(0, room)];
  const windows: number[][] = [];
  for (let i = 0; i < core.length; i += room) windows.push(core.slice(i, i + room));
  return windows;
}

/**
 * Runs `runBatch` over the token windows of each text in length-sorted batches and returns
 * the pooled, layer-major matrix `[texts.length, layers.length * hiddenSize]` in the order
 * of `texts`. `runBatch` receives the token ids of a batch of windows and returns one
 * output per requested layer.
 */
export async function encodeInBatches(args: {
  encoderId: string;
  texts: readonly string[];
  /** Token-id windows of each text (at least one per text). */
  windows: readonly (readonly number[][])[];
  options: ResolvedEncodeOptions;
  hiddenSize: number;
  onProgress?: EncodeOptions["onProgress"];
  /** Number of `texts[0]` in error messages. */
  textIndexOffset?: number;
  runBatch: (ids: readonly number[][]) => Promise<BatchLayerOutput[]>;
}): Promise<Matrix> {
  const { texts, options, hiddenSize } = args;
  const n = texts.length;
  const layers = options.layers.length;
  const cols = layers * hiddenSize;
  const data = new Float32Array(n * cols);
  // Flatten windows: unit u belongs to text owner[u].
  const ids: number[][] = [];
  const owner: number[] = [];
  const remaining = new Int32Array(n);
  const weightSum = new Float64Array(n);
  args.windows.forEach((list, t) => {
    if (list.length === 0) throw new Error(`${args.encoderId}: text ${t} has no token window`);
    for (const w of list) {
      ids.push(w as number[]);
      owner.push(t);
      weightSum[t] += w.length;
    }
    remaining[t] = list.length;
  });
  const multi = ids.length > n;
  const sums = multi ? new Float64Array(n * cols) : undefined;
  const rows = new Float32Array(options.batchSize * cols);
  let unitsDone = 0;
  for (const batch of lengthSortedBatches(ids.map((w) => w.length), options.batchSize)) {
    const outputs = await args.runBatch(batch.map((u) => ids[u]));
    if (outputs.length !== layers) {
      throw new Error(`${args.encoderId}: model returned ${outputs.length} of ${layers} layers`);
    }
    for (let b = 0; b < batch.length; b++) {
      for (let l = 0; l < layers; l++) {
        const out = outputs[l];
        const offset = b * cols + l * hiddenSize;
        if (out.pooled) rows.set(out.data.subarray(b * hiddenSize, (b + 1) * hiddenSize), offset);
        else {
          const length = ids[batch[b]].length;
          poolInto(out.data, out.tokens, hiddenSize, b, length, options.pooling, rows, offset);
        }
      }
    }
    const batchRows = rows.subarray(0, batch.length * cols);
    const offset = args.textIndexOffset ?? 0;
    checkFiniteRows(
      batchRows,
      cols,
      batch.map((u) => texts[owner[u]]),
      batch.map((u) => owner[u] + offset),
      args.encoderId,
    );
    batch.forEach((u, b) => {
      const t = owner[u];
      const row = batchRows.subarray(b * cols, (b + 1) * cols);
      if (!sums) data.set(row, t * cols);
      else {
        const w = ids[u].length / weightSum[t];
        for (let c = 0; c < cols; c++) sums[t * cols + c] += w * row[c];
      }
      if (--remaining[t] === 0 && sums) {
        for (let c = 0; c < cols; c++) data[t * cols + c] = sums[t * cols + c];
      }
    });
    // Progress in texts, counted by windows done (texts finish out of order when windowed).
    unitsDone += batch.length;
    args.onProgress?.({ done: Math.floor((n * unitsDone) / ids.length), total: n });
  }
  return { data, shape: [n, cols] };
}
