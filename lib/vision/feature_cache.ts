/**
 * Frozen feature cache. The backbone never changes, so its output for an image is computed
 * once and stored, instead of once per epoch. A cache is a folder under
 * `dataDir()/features/`, keyed by backbone + slice + input size + preprocessing + dtype +
 * a hash of the image set:
 *
 *     meta.json                what is stored (shapes, dtype, rows, chunk size, image-set hash,
 *                              the version of the stage that made it: FEATURE_STAGE_VERSION)
 *     chunk-000000.bin         rows [0, chunkRows), little-endian float16 or float32, row-major
 *     chunk-000000.bin.sha256  its SHA-256 (`sha256sum` format), written after the chunk
 *     chunk-000000.bin.made.json  which call computed it (run, start time, code version;
 *                              `../provenance.ts`), when the caller passed a maker
 *     chunk-000001.bin         rows [chunkRows, 2·chunkRows) …
 *
 * Each file is written under a unique temporary name and renamed into place only when
 * complete, so a run that is killed loses at most the chunk in progress, and two runs writing
 * the same cache at once never clobber each other's files (both write the same rows). A chunk
 * counts as written when it has the right size and its hash is recorded; the next run computes
 * exactly the missing chunks (no row is lost or stored twice, since a chunk's rows follow from
 * its index). Every read checks the chunk's hash: {@link cacheFeatures} recomputes a damaged
 * chunk (and a whole cache made by another {@link FEATURE_STAGE_VERSION}) with a message
 * naming the file, and a read that cannot recompute ({@link FeatureCache.readAll} in a
 * training worker) throws {@link CorruptCacheError} or {@link StaleCacheError} naming it.
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
import type { Progress } from "../progress.ts";
import type { FeatureBatch, ImageBatch } from "../types.ts";
import type { Backbone, FeaturesOptions } from "./backbone.ts";
import { asFeatureBatch } from "./preprocess.ts";

/**
 * Version of the feature stage (the backbones' features, their preprocessing, the cache's
 * layout), recorded in every cache's `meta.json`. Bump it by hand when what a cache holds for
 * the same key changes: caches of another version are recomputed. 1: caches made before
 * versions were recorded (no chunk hashes).
 */
export const FEATURE_STAGE_VERSION = 2;

/** Storage type of cached features. */
export type FeatureDtype = "float16" | "float32";

const DTYPE_BYTES: Record<FeatureDtype, number> = { float16: 2, float32: 4 };

/** What a cache folder holds (`meta.json`). */
export interface FeatureCacheMeta {
  /** {@link FEATURE_STAGE_VERSION} of the code that made the cache. */
  version: number;
  /** The folder name: backbone, slice, size, preprocessing, dtype, image-set hash. */
  key: string;
  /** Backbone registry name. */
  backbone: string;
  /** Slice layer (`null`: complete network). */
  sliceLayer: string | null;
  /** Preprocessing applied (`"raw"` when values were fed unchanged). */
  preprocessing: string;
  /** Nearest upsampling factor applied before the network. */
  upsample: number;
  /** Stored images' shape `[h, w, c]` (before upsampling). */
  imageShape: [number, number, number];
  /** Per-row feature shape `[h', w', c']`. */
  featureShape: [number, number, number];
  /** Number of rows (images). */
  rows: number;
  /** Rows per chunk file. */
  chunkRows: number;
  /** Storage type. */
  dtype: FeatureDtype;
  /** SHA-256 of the image set (shape + values). */
  imageSetHash: string;
}

/** Options of {@link cacheFeatures}. */
export interface FeatureCacheOptions extends FeaturesOptions {
  /** Storage type (default `float16`: half the disk; relative error ≤ 2⁻¹¹). */
  dtype?: FeatureDtype;
  /** Rows per chunk (default: about 32 MB per chunk, at least one batch). */
  chunkRows?: number;
  /** Parent folder of caches (default `dataDir()/features`). */
  root?: string;
  /** Stop between batches when aborted (completed chunks stay). */
  signal?: AbortSignal;
  /** Called after each chunk is safely on disk with its index. */
  onChunk?: (index: number) => void;
  /** Where messages about stale or damaged caches go (default `console.warn`). */
  log?: (line: string) => void;
  /** Recorded beside every chunk this call computes (`<chunk>.made.json`); none by default. */
  maker?: Maker;
}

/** Options of {@link FeatureCache.missingChunks}. */
export interface MissingChunksOptions {
  /**
   * Also read every written chunk and check its hash, counting damaged ones as missing
   * (default `false`: sizes and recorded hashes only).
   */
  verify?: boolean;
  /** Receives the message of each damaged chunk found (default: none). */
  log?: (line: string) => void;
}

/** SHA-256 (hex) of a batch of images: its shape and its float32 values. */
export function imageSetHash(images: ImageBatch | FeatureBatch): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(images.shape));
  const bytes = new Uint8Array(images.data.buffer, images.data.byteOffset, images.data.byteLength);
  const step = 1 << 24;
  for (let i = 0; i < bytes.length; i += step) hash.update(bytes.subarray(i, i + step));
  return hash.digest("hex");
}

/** Bytes that `rows` images take in a cache with per-row shape `featureShape`. */
export function cacheBytes(
  featureShape: [number, number, number],
  rows: number,
  dtype: FeatureDtype = "float16",
): number {
  return rows * featureShape[0] * featureShape[1] * featureShape[2] * DTYPE_BYTES[dtype];
}

function chunkName(index: number): string {
  return `chunk-${String(index).padStart(6, "0")}.bin`;
}

/** A chunk file, its recorded hash or its maker record. */
const CHUNK_FILE = /^chunk-\d+\.bin(\.sha256|\.made\.json)?$/;

/** Removes every chunk file and recorded hash in `dir` (absent folder: nothing). */
function removeChunkFiles(dir: string): Promise<void> {
  return removeMatching(dir, CHUNK_FILE);
}

/** The metadata in `dir/meta.json`; throws {@link CorruptCacheError} or {@link StaleCacheError}. */
async function readMeta(dir: string): Promise<FeatureCacheMeta> {
  const path = join(dir, "meta.json");
  const text = await Deno.readTextFile(path);
  let meta: FeatureCacheMeta;
  try {
    meta = JSON.parse(text);
  } catch {
    throw new CorruptCacheError(path, "not valid JSON");
  }
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) {
    throw new CorruptCacheError(path, "not a JSON object");
  }
  const made = typeof meta.version === "number" ? meta.version : undefined;
  verifyVersion(made, FEATURE_STAGE_VERSION, "feature stage", dir);
  const shape = meta.featureShape;
  if (
    !Number.isInteger(meta.rows) || meta.rows < 0 || !Number.isInteger(meta.chunkRows) ||
    meta.chunkRows < 1 || !Object.hasOwn(DTYPE_BYTES, meta.dtype) || !Array.isArray(shape) ||
    shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)
  ) {
    throw new CorruptCacheError(path, "rows, chunkRows, dtype or featureShape invalid");
  }
  return meta;
}

/** A feature cache folder. Open with {@link FeatureCache.open} or create via {@link cacheFeatures}. */
export class FeatureCache {
  /** The folder. */
  readonly dir: string;
  /** What it holds. */
  readonly meta: FeatureCacheMeta;
  /** Rows whose features the last {@link cacheFeatures} call computed (0: all read from disk). */
  computedRows = 0;

  /** Wraps a folder and its metadata; see {@link FeatureCache.open}. */
  constructor(dir: string, meta: FeatureCacheMeta) {
    this.dir = dir;
    this.meta = meta;
  }

  /**
   * Opens an existing cache folder. Throws {@link StaleCacheError} naming it when another
   * {@link FEATURE_STAGE_VERSION} made it (or one before versions were recorded), and
   * {@link CorruptCacheError} when its `meta.json` is damaged: {@link cacheFeatures}
   * recomputes such caches.
   */
  static async open(dir: string): Promise<FeatureCache> {
    return new FeatureCache(dir, await readMeta(dir));
  }

  /** Number of chunk files when complete. */
  get chunkCount(): number {
    return Math.ceil(this.meta.rows / this.meta.chunkRows);
  }

  /** Values per row. */
  get rowSize(): number {
    const [h, w, c] = this.meta.featureShape;
    return h * w * c;
  }

  /** Bytes of the complete cache's chunks. */
  get sizeBytes(): number {
    return cacheBytes(this.meta.featureShape, this.meta.rows, this.meta.dtype);
  }

  /** Rows `[start, end)` of chunk `index`. */
  chunkRange(index: number): [number, number] {
    const start = index * this.meta.chunkRows;
    return [start, Math.min(this.meta.rows, start + this.meta.chunkRows)];
  }

  #chunkBytes(index: number): number {
    const [start, end] = this.chunkRange(index);
    return (end - start) * this.rowSize * DTYPE_BYTES[this.meta.dtype];
  }

  /** The file of chunk `index`. */
  chunkPath(index: number): string {
    return join(this.dir, chunkName(index));
  }

  /** What is on disk of chunk `index`, without reading its data. */
  #probe(index: number): Promise<ChunkProbe> {
    return probeChunk(this.chunkPath(index), this.#chunkBytes(index));
  }

  /**
   * Indices of the chunks not (completely) on disk: absent, of the wrong size, or without a
   * recorded hash. With `verify`, written chunks are read and checked against their hash
   * too, and damaged ones count as missing (their messages go to `log`).
   */
  async missingChunks(options: MissingChunksOptions = {}): Promise<number[]> {
    const missing: number[] = [];
    for (let i = 0; i < this.chunkCount; i++) {
      const probe = await this.#probe(i);
      if (probe.state === "written") {
        if (!options.verify) continue;
        try {
          await this.#readBytes(i, probe.hash);
          continue;
        } catch (e) {
          if (e instanceof CorruptCacheError) options.log?.(e.message);
          else if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      } else if (probe.state === "damaged") {
        options.log?.(probe.error.message);
      }
      missing.push(i);
    }
    return missing;
  }

  /** Whether every chunk is on disk (with `verify`: and matches its hash). */
  async isComplete(options: MissingChunksOptions = {}): Promise<boolean> {
    return (await this.missingChunks(options)).length === 0;
  }

  /**
   * Stores chunk `index` (`values`: float32 row-major, its rows only) atomically, then its
   * hash. Safe when another process writes the same chunk at the same time.
   */
  async writeChunk(index: number, values: Float32Array, maker?: Maker): Promise<void> {
    const expected = this.#chunkBytes(index) / DTYPE_BYTES[this.meta.dtype];
    if (values.length !== expected) {
      throw new Error(`chunk ${index}: expected ${expected} values, got ${values.length}`);
    }
    const stored = this.meta.dtype === "float16" ? new Float16Array(values) : values;
    const bytes = new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
    await removeMaker(this.chunkPath(index));
    await writeAtomicWithHash(this.chunkPath(index), bytes);
    if (maker) await writeMaker(this.chunkPath(index), maker);
  }

  /**
   * The makers of the written chunks (see `../provenance.ts`), in rows: `maker` undefined
   * where none was recorded (chunks written before records were kept, or without a maker).
   */
  async chunkMakers(): Promise<{ maker: Maker | undefined; units: number }[]> {
    const out: { maker: Maker | undefined; units: number }[] = [];
    for (let i = 0; i < this.chunkCount; i++) {
      if ((await this.#probe(i)).state !== "written") continue;
      const [start, end] = this.chunkRange(i);
      out.push({ maker: await readMaker(this.chunkPath(i)), units: end - start });
    }
    return out;
  }

  /** The bytes of chunk `index`, checked against `hash` (throws {@link CorruptCacheError}). */
  async #readBytes(index: number, hash: string): Promise<Uint8Array> {
    const path = this.chunkPath(index);
    const bytes = await Deno.readFile(path);
    if (bytes.length !== this.#chunkBytes(index)) {
      throw new CorruptCacheError(
        path,
        `${bytes.length} bytes, expected ${this.#chunkBytes(index)}`,
      );
    }
    verifyHash(bytes, hash, path);
    return bytes;
  }

  /**
   * Reads chunk `index` as float32 values, checked against its recorded hash: throws
   * {@link CorruptCacheError} naming the file when damaged, an error when not written.
   */
  async readChunk(index: number): Promise<Float32Array> {
    const path = this.chunkPath(index);
    const probe = await this.#probe(index);
    if (probe.state === "damaged") throw probe.error;
    if (probe.state === "absent") {
      throw new Error(`${path} is missing: the cache is incomplete; run cacheFeatures again.`);
    }
    let bytes: Uint8Array;
    try {
      bytes = await this.#readBytes(index, probe.hash);
    } catch (e) {
      // Removed or replaced since the probe: read as it is now.
      if (e instanceof Deno.errors.NotFound) return await this.readChunk(index);
      throw e;
    }
    const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
    if (this.meta.dtype === "float32") {
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.length / 4);
    }
    return new Float32Array(
      new Float16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2),
    );
  }

  /** Rows `[start, end)` as one float32 batch `[end − start, h', w', c']`. */
  async readRows(start = 0, end = this.meta.rows): Promise<FeatureBatch> {
    if (start < 0 || end > this.meta.rows || start > end) {
      throw new Error(`rows [${start}, ${end}) outside [0, ${this.meta.rows})`);
    }
    const size = this.rowSize;
    const out = new Float32Array((end - start) * size);
    const { chunkRows } = this.meta;
    for (let i = Math.floor(start / chunkRows); i * chunkRows < end; i++) {
      const [c0, c1] = this.chunkRange(i);
      const values = await this.readChunk(i);
      const lo = Math.max(start, c0), hi = Math.min(end, c1);
      out.set(values.subarray((lo - c0) * size, (hi - c0) * size), (lo - start) * size);
    }
    return { data: out, shape: [end - start, ...this.meta.featureShape] };
  }

  /** Every row as one float32 batch (`sizeBytes` × 2 in memory for float16 caches). */
  readAll(): Promise<FeatureBatch> {
    return this.readRows(0, this.meta.rows);
  }

  /** Iterates over the chunks in order, each as a float32 batch with its first row. */
  async *chunks(): AsyncGenerator<{ start: number; batch: FeatureBatch }> {
    for (let i = 0; i < this.chunkCount; i++) {
      const [start, end] = this.chunkRange(i);
      const data = await this.readChunk(i);
      yield { start, batch: { data, shape: [end - start, ...this.meta.featureShape] } };
    }
  }
}

const weightHashes = new WeakMap<Backbone, string>();

/**
 * SHA-256 over the names, shapes and values of a backbone's weights (its slice's), so a
 * feature cache is keyed by the weights that made it: other weight files under the same
 * registry name, or random weights from another seed, never share features.
 */
export function backboneWeightsHash(backbone: Backbone): string {
  const known = weightHashes.get(backbone);
  if (known) return known;
  const hash = createHash("sha256");
  for (const w of backbone.model.weights) {
    const values = w.read().dataSync() as Float32Array;
    // The layer's own name: a second load in one process gets suffixed variable names.
    hash.update(`${w.originalName ?? w.name}:${w.shape.join("x")}:`);
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  const digest = hash.digest("hex");
  weightHashes.set(backbone, digest);
  return digest;
}

/**
 * The cache of `backbone`'s features of `images` ([0, 1] values, see `Backbone.features`):
 * opens it, checks every chunk on disk against its recorded hash, computes the missing and
 * damaged chunks (resuming an interrupted run) and returns it complete. A damaged chunk, or a
 * cache made by another {@link FEATURE_STAGE_VERSION} (recomputed whole), is reported to
 * `options.log` with a message naming the file or folder. Two processes may compute the same
 * cache at once.
 */
export async function cacheFeatures(
  backbone: Backbone,
  images: ImageBatch | FeatureBatch,
  options: FeatureCacheOptions = {},
): Promise<FeatureCache> {
  const batch = asFeatureBatch(images);
  const [n, h, w, c] = batch.shape;
  const dtype = options.dtype ?? "float16";
  if (!(dtype in DTYPE_BYTES)) throw new Error(`dtype must be float16 or float32, got ${dtype}`);
  const upsample = options.upsample ?? 1;
  const featureShape = backbone.outputShape([h * upsample, w * upsample]);
  const preprocessing = (options.preprocess ?? true) ? backbone.spec.preprocessing : "raw";
  const hash = imageSetHash(batch);
  const slice = backbone.spec.sliceLayer ?? "complete";
  const key = [
    backbone.name,
    slice,
    `${h * upsample}x${w * upsample}`,
    preprocessing,
    dtype === "float16" ? "f16" : "f32",
    hash.slice(0, 16),
    `w${backboneWeightsHash(backbone).slice(0, 12)}`,
  ].join("__").replace(/[^A-Za-z0-9_.x-]/g, "_");
  const dir = join(options.root ?? join(dataDir(), "features"), key);
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const rowBytes = cacheBytes(featureShape, 1, dtype);
  const chunkRows = Math.max(
    1,
    options.chunkRows ?? Math.max(batchSize, Math.floor((32 << 20) / rowBytes)),
  );
  const meta: FeatureCacheMeta = {
    version: FEATURE_STAGE_VERSION,
    key,
    backbone: backbone.name,
    sliceLayer: backbone.spec.sliceLayer,
    preprocessing,
    upsample,
    imageShape: [h, w, c],
    featureShape,
    rows: n,
    chunkRows,
    dtype,
    imageSetHash: hash,
  };
  const log = options.log ?? ((line: string) => console.warn(line));

  let cache: FeatureCache | undefined;
  try {
    const found = await FeatureCache.open(dir);
    for (const [field, value] of Object.entries(meta)) {
      if (field === "version" || field === "chunkRows") continue; // checked; kept from the cache
      const stored = (found.meta as unknown as Record<string, unknown>)[field];
      if (JSON.stringify(stored) !== JSON.stringify(value)) {
        throw new CorruptCacheError(
          join(dir, "meta.json"),
          `${field} is ${JSON.stringify(stored)}, these features have ${JSON.stringify(value)}`,
        );
      }
    }
    cache = found;
  } catch (e) {
    if (e instanceof StaleCacheError || e instanceof CorruptCacheError) log(e.message);
    else if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (cache === undefined) {
    // Chunks first, then the new meta.json: a run killed in between finds the old meta.json
    // and empties the folder again, so chunks of another version are never taken as this one's.
    await removeChunkFiles(dir);
    await Deno.mkdir(dir, { recursive: true });
    await writeAtomic(join(dir, "meta.json"), JSON.stringify(meta, null, 2));
    cache = new FeatureCache(dir, meta);
  }
  await removeLeftoverParts(dir);

  const computeChunks = async (cache: FeatureCache, missing: number[]) => {
    const todo = missing.reduce(
      (sum, i) => sum + cache.chunkRange(i)[1] - cache.chunkRange(i)[0],
      0,
    );
    cache.computedRows += todo;
    let done = 0;
    const rowSize = cache.rowSize;
    const bar = (options.progressBar ?? todo > 256) && todo > 0
      ? new ProgressBar(`${backbone.name} features → cache`, todo, { unit: "images" })
      : undefined;
    for (const index of missing) {
      options.signal?.throwIfAborted();
      const [start, end] = cache.chunkRange(index);
      const values = new Float32Array((end - start) * rowSize);
      await backbone.forEachBatch(
        batch,
        {
          ...options,
          batchSize,
          progressBar: false,
          onProgress: (p: Progress) => {
            bar?.update(done + p.done);
            options.onProgress?.({ done: done + p.done, total: todo });
            options.signal?.throwIfAborted();
          },
        },
        (first, data) => values.set(data, (first - start) * rowSize),
        [start, end],
      );
      await cache.writeChunk(index, values, options.maker);
      done += end - start;
      options.onChunk?.(index);
    }
    bar?.finish();
  };

  // Chunks already on disk are checked against their hashes (once) before the cache counts
  // as complete; damaged ones are recomputed with the others.
  await computeChunks(cache, await cache.missingChunks({ verify: true, log }));
  // Another run that found the cache stale at the same moment may have removed chunks just
  // written: compute them again (sizes and hashes recorded; written chunks are not re-read).
  for (let round = 0;; round++) {
    const missing = await cache.missingChunks();
    if (missing.length === 0) break;
    if (round === 2) {
      throw new Error(`${dir}: chunks ${missing.join(", ")} keep disappearing while written`);
    }
    await computeChunks(cache, missing);
  }
  return cache;
}
