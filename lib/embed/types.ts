/**
 * The interface every text encoder implements, and the checks shared by all of them.
 *
 * Hidden states are numbered as in Hugging Face's `output_hidden_states`: 0 is the embedding
 * output, `k` (1..numLayers) the output of encoder layer `k`. An encoder turns each text into
 * one row: for every requested hidden state, the token states pooled into one vector
 * (`"cls"`: position 0; `"mean"`: average over the text's tokens, special tokens included),
 * concatenated layer-major (all of the first requested layer, then the next, ...).
 *
 * @module
 */
import type { Progress } from "../progress.ts";
import type { Matrix } from "../types.ts";

/** How token states become one vector per hidden state. */
export type Pooling = "cls" | "mean";

/** Handling of texts longer than `maxTokens` (see {@link EncodeOptions.overflow}). */
export type Overflow = "truncate" | "windows";

/** Options of {@link TextEncoderModel.encode}. */
export interface EncodeOptions {
  /** Hidden states to read (0 = embeddings, k = encoder layer k), in output order. */
  layers?: number[];
  /** Token pooling (default: the encoder's {@link TextEncoderModel.defaults}). */
  pooling?: Pooling;
  /** Truncation length in tokens, special tokens included. */
  maxTokens?: number;
  /**
   * What happens to tokens beyond `maxTokens`: `"truncate"` drops them (default, as the
   * paper); `"windows"` encodes the text as consecutive windows of at most `maxTokens`
   * tokens (special tokens added to each) and averages the windows' pooled vectors,
   * weighted by their token counts.
   */
  overflow?: Overflow;
  /** Texts run through the model at once (padding + attention mask). */
  batchSize?: number;
  /** Called after each batch with the number of texts done. */
  onProgress?: (progress: Progress) => void;
  /** Number given to `texts[0]` in error messages (default 0), e.g. when encoding a slice. */
  textIndexOffset?: number;
}

/** An encoder's default {@link EncodeOptions}. */
export interface EncodeDefaults {
  /** Default hidden states. */
  layers: number[];
  /** Default pooling. */
  pooling: Pooling;
  /** Default truncation length (tokens, special tokens included). */
  maxTokens: number;
  /** Default batch size. */
  batchSize: number;
}

/** A frozen text encoder that exposes per-layer hidden states. */
export interface TextEncoderModel {
  /** Stable identity of the model, e.g. `"bert:Xenova/bert-base-uncased/model.onnx"`. */
  readonly id: string;
  /** SHA-256 (hex) of the model's weight files: cached embeddings are keyed by it. */
  readonly modelHash: string;
  /** Number of encoder (Transformer) layers. */
  readonly numLayers: number;
  /** Width of one pooled hidden state. */
  readonly hiddenSize: number;
  /** Hidden-state indices this encoder can return. */
  readonly availableLayers: readonly number[];
  /** Longest input the model accepts, in tokens. */
  readonly maxTokensLimit: number;
  /** Options used where {@link EncodeOptions} leaves them out. */
  readonly defaults: EncodeDefaults;
  /**
   * Encodes `texts` into `[texts.length, layers.length * hiddenSize]`, layer-major.
   * Throws on an empty text and on a NaN/Inf output (naming the text).
   */
  encode(texts: readonly string[], options?: EncodeOptions): Promise<Matrix>;
  /** Releases native resources. */
  dispose(): Promise<void>;
}

/** {@link EncodeOptions} with every field decided. */
export interface ResolvedEncodeOptions {
  /** Hidden states, in output order. */
  layers: number[];
  /** Token pooling. */
  pooling: Pooling;
  /** Truncation length. */
  maxTokens: number;
  /** Handling of longer texts. */
  overflow: Overflow;
  /** Batch size. */
  batchSize: number;
}

/** Fills `options` from the encoder's defaults and validates them against the encoder. */
export function resolveEncodeOptions(
  encoder: Pick<TextEncoderModel, "id" | "availableLayers" | "maxTokensLimit" | "defaults">,
  options: EncodeOptions = {},
): ResolvedEncodeOptions {
  const layers = options.layers ?? encoder.defaults.layers;
  const pooling = options.pooling ?? encoder.defaults.pooling;
  const maxTokens = options.maxTokens ?? encoder.defaults.maxTokens;
  const batchSize = options.batchSize ?? encoder.defaults.batchSize;
  if (layers.length === 0) throw new Error(`${encoder.id}: "layers" must name at least one layer`);
  for (const layer of layers) {
    if (!Number.isInteger(layer) || !encoder.availableLayers.includes(layer)) {
      throw new Error(
        `${encoder.id}: hidden state ${layer} does not exist; choose among ` +
          `${encoder.availableLayers.join(", ")}`,
      );
    }
  }
  if (pooling !== "cls" && pooling !== "mean") {
    throw new Error(`${encoder.id}: pooling must be "cls" or "mean", not ${String(pooling)}`);
  }
  if (!Number.isInteger(maxTokens) || maxTokens < 3 || maxTokens > encoder.maxTokensLimit) {
    throw new Error(
      `${encoder.id}: maxTokens must be an integer in 3..${encoder.maxTokensLimit}, not ${maxTokens}`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`${encoder.id}: batchSize must be a positive integer, not ${batchSize}`);
  }
  const overflow = options.overflow ?? "truncate";
  if (overflow !== "truncate" && overflow !== "windows") {
    throw new Error(`${encoder.id}: overflow must be "truncate" or "windows", not ${overflow}`);
  }
  return { layers: [...layers], pooling, maxTokens, overflow, batchSize };
}

/** A short, printable excerpt of a text for error messages. */
export function excerpt(text: string, length = 80): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(flat.length > length ? `${flat.slice(0, length)}…` : flat);
}

/** Throws if any text is not a string or holds no visible characters, naming it. */
export function checkTexts(texts: readonly string[], offset = 0): void {
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    if (typeof text !== "string") {
      throw new TypeError(`Text ${offset + i} is a ${typeof text}, not a string`);
    }
    if (text.trim().length === 0) {
      throw new Error(
        `Text ${offset + i} is empty (${JSON.stringify(text)}): an empty review has no tokens ` +
          `to embed; remove it or replace it before encoding`,
      );
    }
  }
}

/**
 * Throws if a row of `data` (width `cols`) holds NaN or ±Inf, naming the text it came from:
 * row r is text `texts[r]`, numbered `indices[r]` (default r) in the caller's full list.
 */
export function checkFiniteRows(
  data: Float32Array,
  cols: number,
  texts: readonly string[],
  indices?: readonly number[],
  encoderId = "encoder",
): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const row = Math.floor(i / cols);
      throw new Error(
        `${encoderId} produced ${data[i]} at column ${i % cols} for text ${
          indices?.[row] ?? row
        } ` +
          `${excerpt(texts[row] ?? "")}; the model or its input is broken`,
      );
    }
  }
}
