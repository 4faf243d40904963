/**
 * Text stage (PAPER.md §1): frozen Transformer encoders that return chosen hidden layers,
 * pooled per text and concatenated layer-major, and a resumable on-disk embedding store.
 *
 * ```ts
 * import {
 *   BERT_BASE_UNCASED,
 *   BertEncoder,
 *   EncoderWorkers,
 *   embedTexts,
 *   UseLiteEncoder,
 * } from "./lib/embed/mod.ts";
 * const bert = await BertEncoder.load(BERT_BASE_UNCASED); // or a local folder
 * const X = await embedTexts(bert, texts); // [CLS] of hidden states 6..11 → [n, 4608]
 * const use = await UseLiteEncoder.load(); // offline, real pretrained weights
 * const Y = await embedTexts(use, texts, { layers: [1, 2, 3], pooling: "mean" });
 * // Missing chunks encoded on two cores: one encoder per Deno worker (see workers.ts).
 * await using workers = await EncoderWorkers.start({ kind: "use-lite" }, 2);
 * const Z = await embedTexts(use, texts, { workers });
 * ```
 *
 * @module
 */
export type {
  EncodeDefaults,
  EncodeOptions,
  Overflow,
  Pooling,
  ResolvedEncodeOptions,
  TextEncoderModel,
} from "./types.ts";
export { checkFiniteRows, checkTexts, resolveEncodeOptions } from "./types.ts";
export { BERT_BASE_UNCASED, BertEncoder, bertLayers } from "./bert.ts";
export type { BertLoadOptions } from "./bert.ts";
export {
  USE_LITE_PACKAGE,
  USE_LITE_SENTENCE_EMBEDDING,
  useLiteDefaultFolder,
  UseLiteEncoder,
} from "./use_lite.ts";
export type { UseLiteLoadOptions } from "./use_lite.ts";
export { SentencePieceTokenizer, WORD_BOUNDARY } from "./sentencepiece.ts";
export type { SentencePieceOptions } from "./sentencepiece.ts";
export { addGraphOutputs, findHiddenStateTaps } from "./onnx_graph.ts";
export type { HiddenStateTaps, LayerNormSite } from "./onnx_graph.ts";
export { hubCacheFolder, hubEndpoint, looksLikeHubId, resolveModelFolder } from "./hub.ts";
export {
  EMBEDDING_STAGE_VERSION,
  EMBEDDING_STORE_VERSION,
  embeddingKey,
  EmbeddingStore,
  embedTexts,
  hashTexts,
} from "./store.ts";
export type {
  EmbeddingKey,
  EmbeddingStoreMeta,
  EmbeddingStoreOpenOptions,
  EmbedTextsOptions,
} from "./store.ts";
export { describeSpec, encoderIdentity, EncoderWorkers, loadSpecEncoder } from "./workers.ts";
export type {
  ChunkRequest,
  EncodeChunkOptions,
  EncoderIdentity,
  EncoderSpec,
  FromEncoderWorker,
  ToEncoderWorker,
  UseLiteSpec,
} from "./workers.ts";
export { encodeInBatches, lengthSortedBatches, splitWindows } from "./batching.ts";
export type { BatchLayerOutput } from "./batching.ts";
export { poolInto } from "./pooling.ts";
