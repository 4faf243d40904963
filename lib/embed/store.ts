/**
 * A resumable on-disk store of embeddings, so that encoding 50,000 reviews survives being
 * killed and is never repeated.
 *
 * A store is a folder `<root>/<encoder>/<key>/` (root: `dataDir()/embeddings`), where `key`
 * hashes the encoder identity (id + SHA-256 of its weights), the hidden states, pooling,
 * truncation length and overflow handling, and the texts themselves (count and content). It holds
 *
 * - `meta.json`: the key in readable form, the row width, the chunk size, and the version of
 *   the embedding stage that made the store ({@link EMBEDDING_STAGE_VERSION});
 * - `rows-<first>-<end>.f32`: little-endian float32 rows `first .. end-1`, one file per
 *   chunk of `chunkSize` rows, chunk `c` covering rows `c·chunkSize ..`;
 * - `rows-<first>-<end>.f32.sha256`: the chunk's SHA-256 (`sha256sum` format), written after
 *   the chunk. A chunk counts as written only when it has the right size and its hash is
 *   recorded, and every read checks the hash.
 * - `rows-<first>-<end>.f32.made.json`: which call encoded the chunk (run, start time, code
 *   version; `../provenance.ts`), when the caller passed a maker. Provenance only: a chunk
 *   without one is read all the same and reported as "maker not recorded".
 *
 * Every file is written under a unique temporary name and renamed into place only when
 * complete, so a run killed at any point leaves whole chunks only, and two runs writing the
 * same store at once never clobber each other's files (both write the same rows). A later run
 * encodes just the missing chunks (fixed row ranges, so nothing is lost or written twice).
 * {@link embedTexts} also re-encodes, with a message naming the file, every chunk whose bytes
 * no longer match their hash, and the whole store when `meta.json` records another stage
 * version (or none: stores made before versions were recorded) or is damaged. Reading
 * allocates one `Float32Array` for the whole matrix and reads every chunk file straight into
 * its place.
 *
 * Missing chunks are encoded in this thread, one after another, or, with the option
 * `workers` ({@link EncoderWorkers}, `workers.ts`), on several Deno workers at once, one
 * chunk per worker: each chunk is encoded whole by the same call either way, so the rows are
 * bitwise the same, and each is checked and written in this thread as it arrives.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { dataDir } from "../config.ts";
import {
  type ChunkProbe,
  CorruptCacheError,
  probeChunk,
  removeLeftoverParts,
  removeMatching,
  StaleCacheError,
  verifyHash,
  verifyVersion,
  writeAtomic,
  writeAtomicWithHash,
} from "../integrity.ts";
import { ProgressBar } from "../progress.ts";
import { type Maker, readMaker, removeMaker, writeMaker } from "../provenance.ts";
import type { Matrix } from "../types.ts";
import {
  checkFiniteRows,
  checkTexts,
  type EncodeOptions,
  type ResolvedEncodeOptions,
  resolveEncodeOptions,
  type TextEncoderModel,
} from "./types.ts";
import type { EncoderWorkers } from "./workers.ts";

/**
 * Version of the store key, part of every store's folder name. Kept at 1: a change of the
 * computation bumps {@link EMBEDDING_STAGE_VERSION} instead, so that the store made by the
 * older code is found, reported and recomputed in place rather than silently left behind.
 */
export const EMBEDDING_STORE_VERSION = 1;

/**
 * Version of the embedding stage (encoders' hidden states, pooling, the store's layout),
 * recorded in every store's `meta.json`. Bump it by hand when what a store holds for the same
 * key changes: stores of another version are recomputed. 1: stores made before versions were
 * recorded (no chunk hashes).
 */
export const EMBEDDING_STAGE_VERSION = 2;

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
  /** {@link EMBEDDING_STAGE_VERSION} of the code that made the store. */
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
  /** Where messages about stale or damaged chunks go (default `console.warn`). */
  log?: (line: string) => void;
  /** Recorded beside every chunk this call encodes (`<chunk>.made.json`); none by default. */
  maker?: Maker;
  /**
   * Encoder workers (`workers.ts`) to encode the missing chunks on, at most one chunk per
   * worker at a time, instead of in this thread. They must run the same encoder (id and
   * weights hash) as `encoder`; each chunk is encoded whole with the same options, so its
   * rows are the same, bit for bit, as in this thread. Every returned chunk is checked and
   * written as in this thread. The caller owns the workers (this call does not end them).
   */
  workers?: EncoderWorkers;
  /**
   * Stops the call: no chunk is started once it is aborted, and the call rejects with its
   * reason (chunks written so far stay). In this thread it is checked between chunks; with
   * `workers`, chunks being encoded are not waited for (their results are dropped).
   */
  signal?: AbortSignal;
}

/** Options of {@link EmbeddingStore.open}. */
export interface EmbeddingStoreOpenOptions {
  /** Folder holding the stores (default `dataDir()/embeddings`). */
  root?: string;
  /** Rows per chunk file of a new store (default 256). */
  chunkSize?: number;
  /** Where the message about a stale or damaged store goes (default `console.warn`). */
  log?: (line: string) => void;
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

function chunkName(first: number, end: number): string {
  return `rows-${String(first).padStart(9, "0")}-${String(end).padStart(9, "0")}.f32`;
}

/** A chunk file, its recorded hash or its maker record, of any chunk size. */
const CHUNK_FILE = /^rows-\d+-\d+\.f32(\.sha256|\.made\.json)?$/;

/** The metadata in `text`, or the reason it cannot describe the store of `key` and `cols`. */
function parseMeta(
  text: string,
  metaPath: string,
  folder: string,
  key: EmbeddingKey,
  cols: number,
): EmbeddingStoreMeta {
  let meta: EmbeddingStoreMeta;
  try {
    meta = JSON.parse(text);
  } catch {
    throw new CorruptCacheError(metaPath, "not valid JSON");
  }
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) {
    throw new CorruptCacheError(metaPath, "not a JSON object");
  }
  const made = typeof meta.version === "number" ? meta.version : undefined;
  verifyVersion(made, EMBEDDING_STAGE_VERSION, "embedding stage", folder);
  const expected: Record<string, unknown> = {
    encoderId: key.encoderId,
    modelHash: key.modelHash,
    layers: key.layers,
    pooling: key.pooling,
    maxTokens: key.maxTokens,
    overflow: key.overflow,
    count: key.count,
    textsHash: key.textsHash,
    cols,
  };
  for (const [field, value] of Object.entries(expected)) {
    const found = (meta as unknown as Record<string, unknown>)[field];
    if (JSON.stringify(found) !== JSON.stringify(value)) {
      throw new CorruptCacheError(
        metaPath,
        `${field} is ${JSON.stringify(found)}, this store's key has ${JSON.stringify(value)}`,
      );
    }
  }
  if (!Number.isInteger(meta.chunkSize) || meta.chunkSize < 1) {
    throw new CorruptCacheError(metaPath, `chunkSize ${JSON.stringify(meta.chunkSize)}`);
  }
  return meta;
}

/** Removes every chunk file and recorded hash in `folder` (absent folder: nothing). */
function removeChunkFiles(folder: string): Promise<void> {
  return removeMatching(folder, CHUNK_FILE);
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
   * keeps its own chunk size. A store made by another {@link EMBEDDING_STAGE_VERSION} (or
   * before versions were recorded), or whose `meta.json` is damaged, is emptied and made
   * anew, with the {@link StaleCacheError} or {@link CorruptCacheError} message sent to
   * `options.log`.
   */
  static async open(
    key: EmbeddingKey,
    cols: number,
    options: EmbeddingStoreOpenOptions = {},
  ): Promise<EmbeddingStore> {
    const folder = EmbeddingStore.folderFor(key, options.root);
    const metaPath = join(folder, "meta.json");
    const log = options.log ?? ((line: string) => console.warn(line));
    let text: string | undefined;
    try {
      text = await Deno.readTextFile(metaPath);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (text !== undefined) {
      try {
        return new EmbeddingStore(folder, parseMeta(text, metaPath, folder, key, cols));
      } catch (e) {
        if (!(e instanceof StaleCacheError || e instanceof CorruptCacheError)) throw e;
        log(e.message);
      }
    }
    const chunkSize = options.chunkSize ?? 256;
    if (!Number.isInteger(chunkSize) || chunkSize < 1) {
      throw new Error(`chunkSize must be a positive integer, not ${chunkSize}`);
    }
    const meta: EmbeddingStoreMeta = { version: EMBEDDING_STAGE_VERSION, ...key, cols, chunkSize };
    // Chunks first, then the new meta.json: a run killed in between finds the old meta.json
    // and empties the store again, so chunks of another version are never taken as this one's.
    await removeChunkFiles(folder);
    await Deno.mkdir(folder, { recursive: true });
    await writeAtomic(metaPath, JSON.stringify(meta, null, 2) + "\n");
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

  /** The file of chunk `c`. */
  chunkPath(c: number): string {
    const [first, end] = this.chunkRows(c);
    return join(this.folder, chunkName(first, end));
  }

  #chunkBytes(c: number): number {
    const [first, end] = this.chunkRows(c);
    return (end - first) * this.meta.cols * 4;
  }

  /** What is on disk of chunk `c`, without reading its data. */
  #probe(c: number): Promise<ChunkProbe> {
    return probeChunk(this.chunkPath(c), this.#chunkBytes(c));
  }

  /**
   * Indices of the chunks written on disk (right size, hash recorded). Their content is
   * checked against the hash when read.
   */
  async completeChunks(): Promise<Set<number>> {
    const done = new Set<number>();
    for (let c = 0; c < this.chunkCount; c++) {
      if ((await this.#probe(c)).state === "written") done.add(c);
    }
    return done;
  }

  /** Rows written on disk. */
  async rowsDone(): Promise<number> {
    let rows = 0;
    for (const c of await this.completeChunks()) {
      const [first, end] = this.chunkRows(c);
      rows += end - first;
    }
    return rows;
  }

  /**
   * Writes chunk `c` (`data` holds exactly its rows) atomically, then its hash. Safe when
   * another process writes the same chunk at the same time.
   */
  async writeChunk(c: number, data: Float32Array, maker?: Maker): Promise<void> {
    const [first, end] = this.chunkRows(c);
    if (data.length !== (end - first) * this.meta.cols) {
      throw new Error(
        `chunk ${c} needs ${(end - first) * this.meta.cols} values, got ${data.length}`,
      );
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    await removeMaker(this.chunkPath(c));
    await writeAtomicWithHash(this.chunkPath(c), bytes);
    if (maker) await writeMaker(this.chunkPath(c), maker);
  }

  /**
   * The written chunks' makers (see `../provenance.ts`), in rows: `maker` undefined where
   * none was recorded (chunks written before records were kept, or without a maker).
   */
  async chunkMakers(): Promise<{ maker: Maker | undefined; units: number }[]> {
    const out: { maker: Maker | undefined; units: number }[] = [];
    for (const c of await this.completeChunks()) {
      const [first, end] = this.chunkRows(c);
      out.push({ maker: await readMaker(this.chunkPath(c)), units: end - first });
    }
    return out;
  }

  /** Removes temporary files left by runs that were killed (not those of live processes). */
  async removeLeftovers(): Promise<void> {
    await removeLeftoverParts(this.folder);
  }

  /**
   * Reads chunk `c` (whose probe found it written with `hash`) into `target` and checks it:
   * throws {@link CorruptCacheError} naming the file if its size or hash differ.
   */
  async #readInto(c: number, target: Uint8Array, hash: string): Promise<void> {
    const path = this.chunkPath(c);
    const file = await Deno.open(path, { read: true });
    try {
      const size = (await file.stat()).size;
      if (size !== target.length) {
        throw new CorruptCacheError(path, `${size} bytes, expected ${target.length}`);
      }
      let filled = 0;
      while (filled < target.length) {
        const n = await file.read(target.subarray(filled));
        if (n === null) throw new CorruptCacheError(path, "truncated while read");
        filled += n;
      }
    } finally {
      file.close();
    }
    verifyHash(target, hash, path);
  }

  /**
   * Reads chunk `c` into `target` (its bytes) after checking its hash. Throws
   * {@link CorruptCacheError} naming the file when damaged, and an error naming the rows
   * when not written.
   */
  async #readChecked(c: number, target: Uint8Array): Promise<void> {
    const probe = await this.#probe(c);
    if (probe.state === "damaged") throw probe.error;
    if (probe.state === "absent") {
      const [first, end] = this.chunkRows(c);
      throw new Error(`Embedding store ${this.folder} lacks rows ${first}..${end - 1}`);
    }
    try {
      await this.#readInto(c, target, probe.hash);
    } catch (e) {
      // Removed or replaced since the probe: read as it is now.
      if (e instanceof Deno.errors.NotFound) return await this.#readChecked(c, target);
      throw e;
    }
  }

  /**
   * Rows of chunk `c`, checked against the chunk's hash: throws {@link CorruptCacheError}
   * naming the file when damaged, and an error naming the rows when not written.
   */
  async readChunk(c: number): Promise<Float32Array> {
    const data = new Float32Array(this.#chunkBytes(c) / 4);
    await this.#readChecked(c, new Uint8Array(data.buffer));
    return data;
  }

  /**
   * Reads the whole matrix, every chunk checked against its hash; throws if a chunk is
   * missing, or {@link CorruptCacheError} naming the file if one is damaged.
   */
  async read(): Promise<Matrix> {
    const { count, cols } = this.meta;
    const data = new Float32Array(count * cols);
    const bytes = new Uint8Array(data.buffer);
    for (let c = 0; c < this.chunkCount; c++) {
      const [first, end] = this.chunkRows(c);
      await this.#readChecked(c, bytes.subarray(first * cols * 4, end * cols * 4));
    }
    return { data, shape: [count, cols] };
  }

  /**
   * Reads every written chunk into `data` (the whole matrix), each checked against its hash.
   * Returns the chunks that are not written or are damaged (sending the damage's message to
   * `log`): those to encode.
   */
  async readAvailable(data: Float32Array, log: (line: string) => void): Promise<number[]> {
    const { cols } = this.meta;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const missing: number[] = [];
    for (let c = 0; c < this.chunkCount; c++) {
      const [first, end] = this.chunkRows(c);
      const probe = await this.#probe(c);
      if (probe.state === "written") {
        try {
          await this.#readInto(c, bytes.subarray(first * cols * 4, end * cols * 4), probe.hash);
          continue;
        } catch (e) {
          if (e instanceof CorruptCacheError) log(e.message);
          else if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      } else if (probe.state === "damaged") {
        log(probe.error.message);
      }
      missing.push(c);
    }
    return missing;
  }
}

/**
 * Encodes `texts` with `encoder` through the store: cached rows are read (each chunk checked
 * against its recorded hash), missing or damaged chunks encoded and written as they finish (so
 * a killed run resumes where it stopped), and the whole matrix
 * `[texts.length, layers.length * hiddenSize]` is returned. A damaged chunk, or a store made
 * by another {@link EMBEDDING_STAGE_VERSION}, is re-encoded with a message to `options.log`
 * naming the file or folder.
 */
export async function embedTexts(
  encoder: TextEncoderModel,
  texts: readonly string[],
  options: EmbedTextsOptions = {},
): Promise<Matrix> {
  const resolved = resolveEncodeOptions(encoder, options);
  checkTexts(texts);
  const log = options.log ?? ((line: string) => console.warn(line));
  const key = embeddingKey(encoder, texts, resolved);
  const cols = resolved.layers.length * encoder.hiddenSize;
  const store = await EmbeddingStore.open(key, cols, {
    root: options.root,
    chunkSize: options.chunkSize,
    log,
  });
  await store.removeLeftovers();
  // The result is filled in place: read chunks are checked once, encoded ones never re-read.
  const data = new Float32Array(texts.length * cols);
  const missing = await store.readAvailable(data, log);
  const cached = texts.length -
    missing.reduce((n, c) => n + store.chunkRows(c)[1] - store.chunkRows(c)[0], 0);
  if (missing.length > 0) {
    const todo = texts.length - cached;
    const bar = options.progress === false ? undefined : new ProgressBar(
      `${options.progress ?? `embed ${encoder.id}`}${cached > 0 ? ` (${cached} cached)` : ""}`,
      todo,
      { unit: "texts" },
    );
    /** Checks chunk `c`'s rows `matrix` (shape, finite values), writes it, fills `data`. */
    const keepChunk = async (c: number, matrix: Matrix) => {
      const [first, end] = store.chunkRows(c);
      if (matrix.shape[0] !== end - first || matrix.shape[1] !== cols) {
        throw new Error(
          `${encoder.id} returned shape [${matrix.shape}] for ${end - first} texts, ` +
            `expected [${end - first}, ${cols}]`,
        );
      }
      const chunkTexts = texts.slice(first, end);
      checkFiniteRows(
        matrix.data,
        cols,
        chunkTexts,
        chunkTexts.map((_, i) => first + i),
        encoder.id,
      );
      await store.writeChunk(c, matrix.data, options.maker);
      data.set(matrix.data, first * cols);
    };
    if (options.workers) {
      await encodeOnWorkers(options.workers, encoder, texts, store, missing, resolved, {
        signal: options.signal,
        onProgress: (done) => {
          bar?.update(done);
          options.onProgress?.({ done: cached + done, total: texts.length });
        },
        write: keepChunk,
      });
    } else {
      let done = 0;
      for (const c of missing) {
        options.signal?.throwIfAborted();
        const [first, end] = store.chunkRows(c);
        const matrix = await encoder.encode(texts.slice(first, end), {
          ...resolved,
          textIndexOffset: first,
          onProgress: (p) => {
            bar?.update(done + p.done);
            options.onProgress?.({ done: cached + done + p.done, total: texts.length });
          },
        });
        await keepChunk(c, matrix);
        done += end - first;
        bar?.update(done);
      }
    }
    bar?.finish();
  }
  return { data, shape: [texts.length, cols] };
}

/**
 * Encodes chunks `missing` of `store` on `workers`, at most one per worker at a time, and
 * hands each returned chunk to `write` as it arrives. The first error, or `signal`, stops
 * handing out chunks: chunks being written are finished, chunks being encoded are waited
 * for (and written) after an error, dropped after an abort; then it rejects with the error
 * (or the signal's reason). `onProgress` gets the texts done: written chunks plus the
 * batches done of chunks being encoded.
 */
async function encodeOnWorkers(
  workers: EncoderWorkers,
  encoder: TextEncoderModel,
  texts: readonly string[],
  store: EmbeddingStore,
  missing: readonly number[],
  options: ResolvedEncodeOptions,
  hooks: {
    signal?: AbortSignal;
    onProgress: (done: number) => void;
    write: (c: number, matrix: Matrix) => Promise<void>;
  },
): Promise<void> {
  const { signal } = hooks;
  const loaded = workers.encoder;
  if (loaded.id !== encoder.id || loaded.modelHash !== encoder.modelHash) {
    const theirs = `${loaded.id} (weights ${loaded.modelHash.slice(0, 12)})`;
    const ours = `${encoder.id} (weights ${encoder.modelHash.slice(0, 12)})`;
    throw new Error(
      `embedTexts: the encoder workers run ${theirs}, not ${ours}: their rows would be ` +
        `stored under another encoder's key`,
    );
  }
  signal?.throwIfAborted();
  const queue = [...missing];
  /** Texts done of each chunk being encoded. */
  const partial = new Map<number, number>();
  let done = 0;
  let failure: { error: unknown } | undefined;
  const report = () => {
    let inFlight = 0;
    for (const n of partial.values()) inFlight += n;
    hooks.onProgress(done + inFlight);
  };
  const stopped = () => failure !== undefined || signal?.aborted === true;
  const lane = async () => {
    while (!stopped()) {
      const c = queue.shift();
      if (c === undefined) return;
      const [first, end] = store.chunkRows(c);
      partial.set(c, 0);
      try {
        const matrix = await workers.encodeChunk(
          { chunk: c, first, texts: texts.slice(first, end), options },
          {
            signal,
            onProgress: (n) => {
              if (!partial.has(c)) return;
              partial.set(c, n);
              report();
            },
          },
        );
        // A chunk finished after an abort is dropped; after another chunk's error it is kept.
        if (signal?.aborted) {
          partial.delete(c);
          return;
        }
        partial.set(c, end - first); // counted as done while it is written
        await hooks.write(c, matrix);
        partial.delete(c);
        done += end - first;
        report();
      } catch (e) {
        partial.delete(c);
        failure ??= { error: e };
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers.size, missing.length) }, lane));
  signal?.throwIfAborted();
  if (failure) throw failure.error;
}
