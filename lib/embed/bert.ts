/**
 * BERT-family encoders from ONNX exports in the Hugging Face / transformers.js layout
 * (`config.json`, `tokenizer.json`, `tokenizer_config.json`, `onnx/model.onnx` or
 * `onnx/model_quantized.onnx`), run with onnxruntime-node, every hidden state exposed (see
 * `onnx_graph.ts` for how the hidden states are found and added as graph outputs).
 *
 * Tokenisation is transformers.js's (`AutoTokenizer`, from the local folder only, through its
 * browser build: see the import below). Truncation follows the Python tokenizers
 * (`truncation=True, max_length=N`): the text's tokens are cut so that the result, special
 * tokens included, has at most N tokens and still ends with the closing special token
 * ([SEP]). With `overflow: "windows"` the text is instead cut into consecutive windows, each
 * framed by [CLS] ... [SEP].
 *
 * Defaults follow the paper's official code (`PAPER.md` §1): one review at a time, [CLS] of
 * hidden states 6..11 of bert-base (generally `L-6 .. L-1`), 512 tokens, special tokens
 * added; {@link bertLayers} gives the abstract's "last six" (`L-5 .. L`). Batches (padding +
 * attention mask) give the same vectors to 1e-4 for float exports; for dynamically
 * quantised exports they differ slightly, because activations are quantised with one scale
 * per batch tensor.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
// transformers.js's browser build: the Node entry point also loads onnxruntime-node 1.14,
// whose native library clashes with onnxruntime-node 1.22 in one process (runs then abort
// with "Specified device is not supported"). The browser build leaves onnxruntime-node out
// and reads local files with fetch(file://...).
import { AutoTokenizer, env as transformersEnv } from "@xenova/transformers/dist/transformers.js";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { sha256File } from "../download.ts";
import type { Matrix } from "../types.ts";
import { encodeInBatches, splitWindows } from "./batching.ts";
import { hubCacheFolder, looksLikeHubId, resolveModelFolder } from "./hub.ts";
import { addGraphOutputs, findHiddenStateTaps, type HiddenStateTaps } from "./onnx_graph.ts";
import {
  checkTexts,
  type EncodeDefaults,
  type EncodeOptions,
  type Overflow,
  resolveEncodeOptions,
  type TextEncoderModel,
} from "./types.ts";

/** The paper's encoder on the Hugging Face hub (ONNX export for transformers.js). */
export const BERT_BASE_UNCASED = "Xenova/bert-base-uncased";

/** Options of {@link BertEncoder.load}. */
export interface BertLoadOptions {
  /** ONNX file inside `onnx/` (default `model.onnx`; e.g. `model_quantized.onnx`). */
  modelFile?: string;
  /** Hub revision when downloading (default `main`). */
  revision?: string;
  /** onnxruntime intra-op threads (default: onnxruntime's choice, all cores). */
  threads?: number;
  /** No download progress bar. */
  silent?: boolean;
}

/** Which hidden states the paper's code and abstract use, for a model of `numLayers`. */
export function bertLayers(numLayers: number, which: "code" | "abstract" = "code"): number[] {
  const last = which === "code" ? numLayers - 1 : numLayers;
  const first = Math.max(0, last - 5);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

interface BertConfig {
  num_hidden_layers: number;
  hidden_size: number;
  max_position_embeddings?: number;
  model_type?: string;
}

/** The special tokens the tokenizer puts before and after a single text. */
interface SpecialFrame {
  prefix: number[];
  suffix: number[];
}

// deno-lint-ignore no-explicit-any
type Tokenizer = any;

/** Loads the tokenizer of a local folder with transformers.js, never touching the network. */
async function loadTokenizer(folder: string): Promise<Tokenizer> {
  transformersEnv.allowRemoteModels = false;
  transformersEnv.allowLocalModels = true;
  transformersEnv.useBrowserCache = false;
  transformersEnv.localModelPath = `${pathToFileURL(dirname(folder)).href}/`;
  return await AutoTokenizer.from_pretrained(basename(folder));
}

/** Finds the special tokens around a text by comparing encodings with and without them. */
function specialFrame(tokenizer: Tokenizer): SpecialFrame {
  const probe = "hello world";
  const withSpecial: number[] = tokenizer.encode(probe);
  const plain: number[] = tokenizer.encode(probe, null, { add_special_tokens: false });
  for (let start = 0; start + plain.length <= withSpecial.length; start++) {
    if (plain.every((id, k) => withSpecial[start + k] === id)) {
      return {
        prefix: withSpecial.slice(0, start),
        suffix: withSpecial.slice(start + plain.length),
      };
    }
  }
  throw new Error("Cannot locate the text between the tokenizer's special tokens");
}

/** A BERT-family encoder whose every hidden state can be read. */
export class BertEncoder implements TextEncoderModel {
  readonly id: string;
  readonly modelHash: string;
  readonly numLayers: number;
  readonly hiddenSize: number;
  readonly availableLayers: readonly number[];
  readonly maxTokensLimit: number;
  readonly defaults: EncodeDefaults;
  /** The model folder. */
  readonly folder: string;
  /** The hidden-state tensors found in the graph (index = hidden state). */
  readonly taps: HiddenStateTaps;
  #session: ort.InferenceSession;
  #tokenizer: Tokenizer;
  #frame: SpecialFrame;
  #padId: number;
  #inputNames: readonly string[];

  private constructor(init: {
    id: string;
    modelHash: string;
    config: BertConfig;
    folder: string;
    taps: HiddenStateTaps;
    session: ort.InferenceSession;
    tokenizer: Tokenizer;
  }) {
    this.id = init.id;
    this.modelHash = init.modelHash;
    this.numLayers = init.config.num_hidden_layers;
    this.hiddenSize = init.config.hidden_size;
    this.folder = init.folder;
    this.taps = init.taps;
    this.#session = init.session;
    this.#tokenizer = init.tokenizer;
    this.#frame = specialFrame(init.tokenizer);
    this.#padId = init.tokenizer.pad_token_id ?? 0;
    this.#inputNames = init.session.inputNames;
    this.availableLayers = Array.from({ length: this.numLayers + 1 }, (_, i) => i);
    const tokenizerLimit = Number(init.tokenizer.model_max_length) || Infinity;
    this.maxTokensLimit = Math.min(
      init.config.max_position_embeddings ?? 512,
      tokenizerLimit > 0 ? tokenizerLimit : Infinity,
    );
    this.defaults = {
      layers: bertLayers(this.numLayers, "code"),
      pooling: "cls",
      maxTokens: Math.min(512, this.maxTokensLimit),
      // One text per run, as the paper: on CPU, padded batches of long texts are slower
      // (the [batch, heads, n, n] attention tensors outgrow the caches), and dynamically
      // quantised exports scale activations per batch tensor, so batching would make a
      // text's vector depend on its neighbours. Batches stay available (batchSize).
      batchSize: 1,
    };
  }

  /**
   * Loads a model from a local folder or a hub id such as {@link BERT_BASE_UNCASED}
   * (downloaded into `dataDir()/models/`; offline, the error lists the files to provide).
   */
  static async load(source: string, options: BertLoadOptions = {}): Promise<BertEncoder> {
    const modelFile = options.modelFile ?? "model.onnx";
    const onnxPath = `onnx/${modelFile}`;
    const folder = await resolveModelFolder(
      source,
      ["config.json", "tokenizer.json", "tokenizer_config.json", onnxPath],
      { revision: options.revision, silent: options.silent },
    );
    const config = JSON.parse(await Deno.readTextFile(join(folder, "config.json"))) as BertConfig;
    if (!Number.isInteger(config.num_hidden_layers) || !Number.isInteger(config.hidden_size)) {
      throw new Error(`${join(folder, "config.json")} lacks num_hidden_layers / hidden_size`);
    }
    const bytes = await Deno.readFile(join(folder, onnxPath));
    const taps = findHiddenStateTaps(bytes, config.num_hidden_layers);
    const session = await ort.InferenceSession.create(
      addGraphOutputs(bytes, taps.tensors, taps.graphOutputs),
      {
        graphOptimizationLevel: "all",
        ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
      },
    );
    if (!session.inputNames.includes("input_ids")) {
      throw new Error(`${onnxPath} has no input_ids input (inputs: ${session.inputNames})`);
    }
    const tokenizer = await loadTokenizer(folder);
    const modelHash = await sha256File(join(folder, onnxPath));
    // A hub model is named by its hub id, a local folder by its name.
    const name = looksLikeHubId(source) && folder === hubCacheFolder(source)
      ? source
      : basename(folder);
    return new BertEncoder({
      id: `bert:${name}/${modelFile}`,
      modelHash,
      config,
      folder,
      taps,
      session,
      tokenizer,
    });
  }

  /** Token ids of `text` with special tokens, truncated to `maxTokens`. */
  tokenize(text: string, maxTokens: number = this.defaults.maxTokens): number[] {
    return this.tokenWindows(text, maxTokens, "truncate")[0];
  }

  /**
   * Token-id windows of `text`, each framed by the special tokens and at most `maxTokens`
   * long: one (truncated) window, or consecutive windows covering every token.
   */
  tokenWindows(text: string, maxTokens: number, overflow: Overflow): number[][] {
    const { prefix, suffix } = this.#frame;
    const room = maxTokens - prefix.length - suffix.length;
    if (room < 1) throw new Error(`maxTokens ${maxTokens} leaves no room for text`);
    const core: number[] = this.#tokenizer.encode(text, null, { add_special_tokens: false });
    return splitWindows(core, room, overflow).map((w) => [...prefix, ...w, ...suffix]);
  }

  /** Encodes `texts`; see {@link TextEncoderModel.encode}. */
  async encode(texts: readonly string[], options: EncodeOptions = {}): Promise<Matrix> {
    const resolved = resolveEncodeOptions(this, options);
    const offset = options.textIndexOffset ?? 0;
    checkTexts(texts, offset);
    const windows = texts.map((t) => this.tokenWindows(t, resolved.maxTokens, resolved.overflow));
    const fetches = resolved.layers.map((l) => this.taps.tensors[l]);
    return await encodeInBatches({
      encoderId: this.id,
      texts,
      windows,
      options: resolved,
      hiddenSize: this.hiddenSize,
      onProgress: options.onProgress,
      textIndexOffset: offset,
      runBatch: async (ids) => {
        const results = await this.#runAll(ids);
        return fetches.map((name) => {
          const t = results[name];
          if (t.dims.length !== 3 || t.dims[2] !== this.hiddenSize) {
            throw new Error(`${this.id}: ${name} has shape [${t.dims}], expected [b, n, hidden]`);
          }
          return { data: t.data as Float32Array, tokens: Number(t.dims[1]) };
        });
      },
    });
  }

  /** Runs the graph on one batch and returns every hidden state (for tests and checks). */
  async hiddenStates(
    ids: readonly number[][],
  ): Promise<{ states: ort.Tensor[]; last: ort.Tensor }> {
    const output = this.taps.graphOutputs[0];
    const results = await this.#runAll(ids);
    return { states: this.taps.tensors.map((name) => results[name]), last: results[output] };
  }

  /**
   * Runs the session and returns every output. (onnxruntime-node 1.22 mislabels the results
   * when a subset of outputs is requested: it names them after the first outputs of the
   * session. All taps are computed anyway, since each layer feeds the next.)
   */
  async #runAll(ids: readonly number[][]): Promise<ort.InferenceSession.OnnxValueMapType> {
    return await this.#session.run(this.#feeds(ids));
  }

  #feeds(ids: readonly number[][]): Record<string, ort.Tensor> {
    const batch = ids.length;
    const width = Math.max(...ids.map((r) => r.length));
    const inputIds = new BigInt64Array(batch * width).fill(BigInt(this.#padId));
    const mask = new BigInt64Array(batch * width);
    ids.forEach((row, b) => {
      row.forEach((id, t) => {
        inputIds[b * width + t] = BigInt(id);
        mask[b * width + t] = 1n;
      });
    });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor("int64", inputIds, [batch, width]),
    };
    if (this.#inputNames.includes("attention_mask")) {
      feeds.attention_mask = new ort.Tensor("int64", mask, [batch, width]);
    }
    if (this.#inputNames.includes("token_type_ids")) {
      feeds.token_type_ids = new ort.Tensor("int64", new BigInt64Array(batch * width), [
        batch,
        width,
      ]);
    }
    return feeds;
  }

  /** Releases the onnxruntime session. */
  async dispose(): Promise<void> {
    await this.#session.release();
  }
}
