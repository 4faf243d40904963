/**
 * Frozen feature cache. The backbone never changes, so its output for an image is computed
 * once and stored, instead of once per epoch. A cache is a folder under
 * `dataDir()/features/`, keyed by backbone + slice + input size + preprocessing + dtype +
 * a hash of the image set:
 *
 *     meta.json            what is stored (shapes, dtype, rows, chunk size, image-set hash)
 *     chunk-000000.bin     rows [0, chunkRows), little-endian float16 or float32, row-major
 *     chunk-000001.bin     rows [chunkRows, 2·chunkRows) …
 *
 * Each chunk is written to `*.part` and renamed into place only when complete, so a run that
 * is killed loses at most the chunk in progress; the next run computes exactly the missing
 * chunks (no row is lost or stored twice, since a chunk's rows follow from its index).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { dataDir } from "../config.ts";
import { exists } from "../download.ts";
import { ProgressBar } from "../progress.ts";
import type { Progress } from "../progress.ts";
import type { FeatureBatch, ImageBatch } from "../types.ts";
import type { Backbone, FeaturesOptions } from "./backbone.ts";
import { asFeatureBatch } from "./preprocess.ts";

/** Storage type of cached features. */
export type FeatureDtype = "float16" | "float32";

const DTYPE_BYTES: Record<FeatureDtype, number> = { float16: 2, float32: 4 };

/** What a cache folder holds (`meta.json`). */
export interface FeatureCacheMeta {
  /** Format version (1). */
  version: 1;
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

/** A feature cache folder. Open with {@link FeatureCache.open} or create via {@link cacheFeatures}. */
export class FeatureCache {
  /** The folder. */
  readonly dir: string;
  /** What it holds. */
  readonly meta: FeatureCacheMeta;

  /** Wraps a folder and its metadata; see {@link FeatureCache.open}. */
  constructor(dir: string, meta: FeatureCacheMeta) {
    this.dir = dir;
    this.meta = meta;
  }

  /** Opens an existing cache folder. */
  static async open(dir: string): Promise<FeatureCache> {
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "meta.json"))) as FeatureCacheMeta;
    if (meta.version !== 1) throw new Error(`${dir}: unsupported feature cache version`);
    return new FeatureCache(dir, meta);
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

  /** Indices of the chunks not (completely) on disk. */
  async missingChunks(): Promise<number[]> {
    const missing: number[] = [];
    for (let i = 0; i < this.chunkCount; i++) {
      try {
        const size = (await Deno.stat(join(this.dir, chunkName(i)))).size;
        if (size !== this.#chunkBytes(i)) missing.push(i);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
        missing.push(i);
      }
    }
    return missing;
  }

  /** Whether every chunk is on disk. */
  async isComplete(): Promise<boolean> {
    return (await this.missingChunks()).length === 0;
  }

  /** Stores chunk `index` (`values`: float32 row-major, its rows only), atomically. */
  async writeChunk(index: number, values: Float32Array): Promise<void> {
    const expected = this.#chunkBytes(index) / DTYPE_BYTES[this.meta.dtype];
    if (values.length !== expected) {
      throw new Error(`chunk ${index}: expected ${expected} values, got ${values.length}`);
    }
    const stored = this.meta.dtype === "float16" ? new Float16Array(values) : values;
    const bytes = new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
    const path = join(this.dir, chunkName(index));
    await Deno.writeFile(`${path}.part`, bytes);
    await Deno.rename(`${path}.part`, path);
  }

  /** Reads chunk `index` as float32 values. */
  async readChunk(index: number): Promise<Float32Array> {
    const path = join(this.dir, chunkName(index));
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(`${path} is missing: the cache is incomplete; run cacheFeatures again.`);
      }
      throw e;
    }
    if (bytes.length !== this.#chunkBytes(index)) {
      throw new Error(`${path} has ${bytes.length} bytes, expected ${this.#chunkBytes(index)}`);
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

/**
 * The cache of `backbone`'s features of `images` ([0, 1] values, see `Backbone.features`):
 * opens it if complete, otherwise computes the missing chunks (resuming an interrupted run)
 * and returns it.
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
  ].join("__").replace(/[^A-Za-z0-9_.x-]/g, "_");
  const dir = join(options.root ?? join(dataDir(), "features"), key);
  const batchSize = Math.max(1, options.batchSize ?? 16);
  const rowBytes = cacheBytes(featureShape, 1, dtype);
  const chunkRows = Math.max(
    1,
    options.chunkRows ?? Math.max(batchSize, Math.floor((32 << 20) / rowBytes)),
  );
  const meta: FeatureCacheMeta = {
    version: 1,
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

  let cache: FeatureCache;
  if (await exists(join(dir, "meta.json"))) {
    cache = await FeatureCache.open(dir);
    const m = cache.meta;
    if (
      m.imageSetHash !== hash || m.rows !== n || m.dtype !== dtype ||
      JSON.stringify(m.featureShape) !== JSON.stringify(featureShape)
    ) {
      throw new Error(`${dir}/meta.json describes other features; delete the folder.`);
    }
  } else {
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, "meta.json");
    await Deno.writeTextFile(`${path}.part`, JSON.stringify(meta, null, 2));
    await Deno.rename(`${path}.part`, path);
    cache = new FeatureCache(dir, meta);
  }

  const missing = await cache.missingChunks();
  const todo = missing.reduce((sum, i) => sum + cache.chunkRange(i)[1] - cache.chunkRange(i)[0], 0);
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
    await cache.writeChunk(index, values);
    done += end - start;
    options.onChunk?.(index);
  }
  bar?.finish();
  return cache;
}
