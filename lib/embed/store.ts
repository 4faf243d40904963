/**
 * A resumable on-disk store of embeddings, so that encoding 50,000 reviews survives being
 * killed and is never repeated.
 *
 * A store is a folder `<root>/<encoder>/<key>/` (root: `dataDir()/embeddings`), where `key`
 * hashes the encoder identity (id + SHA-256 of its weights), the hidden states, pooling,
 * truncation length and overflow handling, and the texts themselves (count and content). It holds
 *
 * - `meta.json`: the key in readable form, the row width and the chunk size;
 * - `rows-<first>-<end>.f32`: little-endian float32 rows `first .. end-1`, one file per
 *   chunk of `chunkSize` rows, chunk `c` covering rows `c·chunkSize ..`.
 *
 * Each chunk file is written under a temporary name and renamed into place only when
 * complete, so a run killed at any point leaves whole chunks only; a later run encodes just
 * the missing chunks (fixed row ranges, so nothing is lost or written twice). Reading
 * allocates one `Float32Array` for the whole matrix and reads every chunk file straight into
 * its place.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { dataDir } from "../config.ts";
import { ProgressBar } from "../progress.ts";
import type { Matrix } from "../types.ts";
import {
  checkFiniteRows,
  checkTexts,
  type EncodeOptions,
  type ResolvedEncodeOptions,
  resolveEncodeOptions,
  type TextEncoderModel,
} from "./types.ts";

/** Format version of the store layout (part of every key). */
export const EMBEDDING_STORE_VERSION = 1;

/** What a stored matrix is the embedding of. */
export interface EmbeddingKey {
  /** Encoder id. */
  encoderId: string;
  /** SHA-256 of the encoder's weights. */
  modelHash: string;
  /** Hidden states, in output order. */
  layers: number[];
  /** Token pooling. */
  pooling: string;
  /** Truncation length. */
  maxTokens: number;
  /** Handling of texts longer than `maxTokens`. */
  overflow: string;
  /** Number of texts. */
  count: number;
  /** {@link hashTexts} of the texts. */
  textsHash: string;
}

/** Contents of `meta.json`. */
export interface EmbeddingStoreMeta extends EmbeddingKey {
  /** Layout version. */
  version: number;
  /** Row width (`layers.length * hiddenSize`). */
  cols: number;
  /** Rows per chunk file. */
  chunkSize: number;
}

/** Options of {@link embedTexts}. */
export interface EmbedTextsOptions extends EncodeOptions {
  /** Folder holding the stores (default `dataDir()/embeddings`). */
  root?: string;
  /** Rows per chunk file (default 256); fixed when a store is created. */
  chunkSize?: number;
  /** Progress bar label; `false` for none (default: `embed <encoder id>`). */
  progress?: string | false;
}

/** SHA-256 over the texts, each prefixed by its UTF-8 byte length (order matters). */
export function hashTexts(texts: readonly string[]): string {
  const hash = createHash("sha256");
  const encoder = new TextEncoder();
  const length = new DataView(new ArrayBuffer(8));
  for (const text of texts) {
    const bytes = encoder.encode(text);
    length.setBigUint64(0, BigInt(bytes.length), true);
    hash.update(new Uint8Array(length.buffer));
    hash.update(bytes);
  }
  return hash.digest("hex");
}

/** The key of `texts` encoded by `encoder` with `options` (defaults filled in). */
export function embeddingKey(
  encoder: TextEncoderModel,
  texts: readonly string[],
  options: ResolvedEncodeOptions,
): EmbeddingKey {
  return {
    encoderId: encoder.id,
    modelHash: encoder.modelHash,
    layers: options.layers,
    pooling: options.pooling,
    maxTokens: options.maxTokens,
    overflow: options.overflow,
    count: texts.length,
    textsHash: hashTexts(texts),
  };
}

function keyDigest(key: EmbeddingKey): string {
  const canonical = JSON.stringify([
    EMBEDDING_STORE_VERSION,
    key.encoderId,
    key.modelHash,
    key.layers,
    key.pooling,
    key.maxTokens,
    key.overflow,
    key.count,
    key.textsHash,
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 24);
}

async function processAlive(pid: number): Promise<boolean> {
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function chunkName(first: number, end: number): string {
  return `rows-${String(first).padStart(9, "0")}-${String(end).padStart(9, "0")}.f32`;
}

/** One embedding matrix on disk, filled chunk by chunk. */
export class EmbeddingStore {
  /** The store's folder. */
  readonly folder: string;
  /** Its metadata. */
  readonly meta: EmbeddingStoreMeta;

  private constructor(folder: string, meta: EmbeddingStoreMeta) {
    this.folder = folder;
    this.meta = meta;
  }

  /** The folder a key is stored in under `root`. */
  static folderFor(key: EmbeddingKey, root: string = join(dataDir(), "embeddings")): string {
    return join(root, key.encoderId.replace(/[^\w.-]+/g, "_"), keyDigest(key));
  }

  /**
   * Opens the store of `key` (row width `cols`), creating it if absent. An existing store
   * keeps its own chunk size.
   */
  static async open(
    key: EmbeddingKey,
    cols: number,
    options: { root?: string; chunkSize?: number } = {},
  ): Promise<EmbeddingStore> {
    const folder = EmbeddingStore.folderFor(key, options.root);
    const metaPath = join(folder, "meta.json");
    try {
      const meta = JSON.parse(await Deno.readTextFile(metaPath)) as EmbeddingStoreMeta;
      if (meta.textsHash !== key.textsHash || meta.count !== key.count || meta.cols !== cols) {
        throw new Error(
          `${metaPath} does not describe these embeddings (texts/shape differ); delete ${folder}`,
        );
      }
      return new EmbeddingStore(folder, meta);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const chunkSize = options.chunkSize ?? 256;
    if (!Number.isInteger(chunkSize) || chunkSize < 1) {
      throw new Error(`chunkSize must be a positive integer, not ${chunkSize}`);
    }
    const meta: EmbeddingStoreMeta = { version: EMBEDDING_STORE_VERSION, ...key, cols, chunkSize };
    await Deno.mkdir(folder, { recursive: true });
    const tmp = `${metaPath}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(meta, null, 2) + "\n");
    await Deno.rename(tmp, metaPath);
    return new EmbeddingStore(folder, meta);
  }

  /** Number of chunks. */
  get chunkCount(): number {
    return Math.ceil(this.meta.count / this.meta.chunkSize);
  }

  /** Rows `[first, end)` of chunk `c`. */
  chunkRows(c: number): [number, number] {
    const first = c * this.meta.chunkSize;
    return [first, Math.min(this.meta.count, first + this.meta.chunkSize)];
  }

  #chunkPath(c: number): string {
    const [first, end] = this.chunkRows(c);
    return join(this.folder, chunkName(first, end));
  }

  /** Indices of the chunks present on disk with the right size. */
  async completeChunks(): Promise<Set<number>> {
    const done = new Set<number>();
    for (let c = 0; c < this.chunkCount; c++) {
      const [first, end] = this.chunkRows(c);
      try {
        const info = await Deno.stat(this.#chunkPath(c));
        if (info.size === (end - first) * this.meta.cols * 4) done.add(c);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    return done;
  }

  /** Rows present on disk. */
  async rowsDone(): Promise<number> {
    let rows = 0;
    for (const c of await this.completeChunks()) {
      const [first, end] = this.chunkRows(c);
      rows += end - first;
    }
    return rows;
  }

  /** Writes chunk `c` (`data` holds exactly its rows) atomically. */
  async writeChunk(c: number, data: Float32Array): Promise<void> {
    const [first, end] = this.chunkRows(c);
    if (data.length !== (end - first) * this.meta.cols) {
      throw new Error(
        `chunk ${c} needs ${(end - first) * this.meta.cols} values, got ${data.length}`,
      );
    }
    const path = this.#chunkPath(c);
    const tmp = `${path}.${Deno.pid}.part`;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  }

  /** Removes temporary files left by runs that were killed (not those of live processes). */
  async removeLeftovers(): Promise<void> {
    for await (const entry of Deno.readDir(this.folder)) {
      const m = /\.(\d+)\.(part|tmp)$/.exec(entry.name);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid !== Deno.pid && Deno.build.os === "linux" && await processAlive(pid)) continue;
      await Deno.remove(join(this.folder, entry.name)).catch(() => {});
    }
  }

  /** Reads the whole matrix; throws if a chunk is missing. */
  async read(): Promise<Matrix> {
    const { count, cols } = this.meta;
    const data = new Float32Array(count * cols);
    const bytes = new Uint8Array(data.buffer);
    for (let c = 0; c < this.chunkCount; c++) {
      const [first, end] = this.chunkRows(c);
      const target = bytes.subarray(first * cols * 4, end * cols * 4);
      let file: Deno.FsFile;
      try {
        file = await Deno.open(this.#chunkPath(c), { read: true });
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new Error(`Embedding store ${this.folder} lacks rows ${first}..${end - 1}`);
        }
        throw e;
      }
      try {
        let filled = 0;
        while (filled < target.length) {
          const n = await file.read(target.subarray(filled));
          if (n === null) throw new Error(`${this.#chunkPath(c)} is truncated`);
          filled += n;
        }
      } finally {
        file.close();
      }
    }
    return { data, shape: [count, cols] };
  }
}

/**
 * Encodes `texts` with `encoder` through the store: cached rows are read, missing chunks
 * encoded and written as they finish (so a killed run resumes where it stopped), and the
 * whole matrix `[texts.length, layers.length * hiddenSize]` is returned.
 */
export async function embedTexts(
  encoder: TextEncoderModel,
  texts: readonly string[],
  options: EmbedTextsOptions = {},
): Promise<Matrix> {
  const resolved = resolveEncodeOptions(encoder, options);
  checkTexts(texts);
  const key = embeddingKey(encoder, texts, resolved);
  const cols = resolved.layers.length * encoder.hiddenSize;
  const store = await EmbeddingStore.open(key, cols, {
    root: options.root,
    chunkSize: options.chunkSize,
  });
  await store.removeLeftovers();
  const complete = await store.completeChunks();
  const missing: number[] = [];
  for (let c = 0; c < store.chunkCount; c++) if (!complete.has(c)) missing.push(c);
  const cached = texts.length -
    missing.reduce((n, c) => n + store.chunkRows(c)[1] - store.chunkRows(c)[0], 0);
  if (missing.length > 0) {
    const todo = texts.length - cached;
    const bar = options.progress === false ? undefined : new ProgressBar(
      `${options.progress ?? `embed ${encoder.id}`}${cached > 0 ? ` (${cached} cached)` : ""}`,
      todo,
      { unit: "texts" },
    );
    let done = 0;
    for (const c of missing) {
      const [first, end] = store.chunkRows(c);
      const chunkTexts = texts.slice(first, end);
      const matrix = await encoder.encode(chunkTexts, {
        ...resolved,
        textIndexOffset: first,
        onProgress: (p) => {
          bar?.update(done + p.done);
          options.onProgress?.({ done: cached + done + p.done, total: texts.length });
        },
      });
      if (matrix.shape[0] !== end - first || matrix.shape[1] !== cols) {
        throw new Error(
          `${encoder.id} returned shape [${matrix.shape}] for ${end - first} texts, ` +
            `expected [${end - first}, ${cols}]`,
        );
      }
      checkFiniteRows(
        matrix.data,
        cols,
        chunkTexts,
        chunkTexts.map((_, i) => first + i),
        encoder.id,
      );
      await store.writeChunk(c, matrix.data);
      done += end - first;
      bar?.update(done);
    }
    bar?.finish();
  }
  return await store.read();
}
