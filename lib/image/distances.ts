/**
 * Pairwise squared Euclidean distances and k-nearest neighbours of many long vectors, the
 * expensive first step of t-SNE on the DeepInsight problem (4,608 points of dimension
 * 2,000–50,000).
 *
 * The Gram matrix `G = PPᵀ` of the centred points is computed in blocks with the
 * TensorFlow.js wasm backend (XNNPACK SIMD matrix products), only for the blocks on and
 * above the diagonal, optionally split over several workers that write into one shared
 * buffer; then `‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b` gives the distances. Centring the points
 * first (distances do not change) keeps the cancellation in that formula small.
 *
 * @module
 */
import { ready, tf } from "../tf.ts";
import type { Matrix } from "../types.ts";

/** Options of {@link gramMatrix}, {@link squaredDistances} and {@link nearestNeighbors}. */
export interface DistanceOptions {
  /**
   * Workers that share the matrix products (default: 1 for small problems, else
   * `navigator.hardwareConcurrency`, at most 4).
   */
  threads?: number;
  /** Rows per block (default 512). */
  blockSize?: number;
  /** Dimensions per pass; longer vectors are processed in chunks (default 4096). */
  chunkSize?: number;
  /** Called after each block product with `{done, total}` block products. */
  onProgress?: (done: number, total: number) => void;
}

/** A symmetric Gram matrix of centred points and their squared norms. */
export interface Gram {
  /** Row-major `n × n` inner products of the centred points (full, both triangles). */
  gram: Float32Array;
  /** Squared norm of each centred point, in double precision. */
  sqNorms: Float64Array;
  /** Number of points. */
  n: number;
}

/** k nearest neighbours of every point, sorted nearest first (the point itself excluded). */
export interface Neighbors {
  /** Row-major `n × k` neighbour indices. */
  indices: Int32Array;
  /** Row-major `n × k` squared Euclidean distances. */
  sqDistances: Float64Array;
  /** Number of points. */
  n: number;
  /** Neighbours per point. */
  k: number;
}

/** The work one worker (or the main thread) does: its share of the block products. */
export interface GramTask {
  /** The points, row-major `n × d` (shared memory when workers are used). */
  points: Float32Array;
  /** Number of points. */
  n: number;
  /** Dimension. */
  d: number;
  /** Per-dimension mean subtracted before the products. */
  means: Float32Array;
  /** Output, row-major `n × n` (shared memory when workers are used). */
  gram: Float32Array;
  /** Rows per block. */
  blockSize: number;
  /** Dimensions per pass. */
  chunkSize: number;
  /** This worker's index. */
  worker: number;
  /** Number of workers. */
  workers: number;
  /** Shared counter of finished block products, for progress (optional). */
  counter?: Int32Array;
}

/** Block pairs (I ≤ J) assigned to `worker`, balanced round-robin. */
function pairsFor(blocks: number, worker: number, workers: number): Array<[number, number]> {
  const pairs: Array<[number, number]> = [];
  let k = 0;
  for (let bi = 0; bi < blocks; bi++) {
    for (let bj = bi; bj < blocks; bj++) {
      if (k++ % workers === worker) pairs.push([bi, bj]);
    }
  }
  return pairs;
}

/**
 * Computes this task's share of the Gram blocks with TensorFlow.js and accumulates them
 * (both `G[I,J]` and its mirror `G[J,I]`) into `task.gram`. Used in-process and by workers.
 */
export async function runGramTask(task: GramTask): Promise<void> {
  await ready();
  const { points, n, d, means, gram, blockSize, chunkSize } = task;
  const blocks = Math.ceil(n / blockSize);
  const pairs = pairsFor(blocks, task.worker, task.workers);
  if (pairs.length === 0) return;
  const needed = new Set<number>();
  for (const [bi, bj] of pairs) {
    needed.add(bi);
    needed.add(bj);
  }
  for (let c0 = 0; c0 < d; c0 += chunkSize) {
    const dc = Math.min(chunkSize, d - c0);
    const left = new Map<number, tf.Tensor2D>();
    const right = new Map<number, tf.Tensor2D>();
    // Staging buffers reused across blocks (tf.tensor2d copies them into the wasm heap).
    const a = new Float32Array(blockSize * dc);
    const at = new Float32Array(dc * blockSize);
    const tile = 32;
    for (const b of needed) {
      const r0 = b * blockSize;
      const rows = Math.min(blockSize, n - r0);
      for (let r = 0; r < rows; r++) {
        const src = (r0 + r) * d + c0;
        const dst = r * dc;
        for (let c = 0; c < dc; c++) a[dst + c] = points[src + c] - means[c0 + c];
      }
      // Transpose in tiles for cache locality.
      for (let rt = 0; rt < rows; rt += tile) {
        const re = Math.min(rows, rt + tile);
        for (let ct = 0; ct < dc; ct += tile) {
          const ce = Math.min(dc, ct + tile);
          for (let r = rt; r < re; r++) {
            const src = r * dc;
            for (let c = ct; c < ce; c++) at[c * rows + r] = a[src + c];
          }
        }
      }
      left.set(b, tf.tensor2d(a.subarray(0, rows * dc), [rows, dc]));
      right.set(b, tf.tensor2d(at.subarray(0, dc * rows), [dc, rows]));
    }
    for (const [bi, bj] of pairs) {
      const product = tf.matMul(left.get(bi)!, right.get(bj)!);
      const values = product.dataSync() as Float32Array;
      product.dispose();
      const i0 = bi * blockSize, j0 = bj * blockSize;
      const ri = Math.min(blockSize, n - i0), rj = Math.min(blockSize, n - j0);
      for (let r = 0; r < ri; r++) {
        const rowOut = (i0 + r) * n + j0;
        const rowIn = r * rj;
        for (let c = 0; c < rj; c++) gram[rowOut + c] += values[rowIn + c];
      }
      if (bi !== bj) {
        for (let r = 0; r < ri; r++) {
          const rowIn = r * rj;
          for (let c = 0; c < rj; c++) gram[(j0 + c) * n + i0 + r] += values[rowIn + c];
        }
      }
      if (task.counter) Atomics.add(task.counter, 0, 1);
    }
    for (const t of left.values()) t.dispose();
    for (const t of right.values()) t.dispose();
  }
}

/** Threads used when not specified: the number of cores, at most 4. */
export function defaultThreads(): number {
  const cores = typeof navigator !== "undefined" ? navigator.hardwareConcurrency ?? 1 : 1;
  return Math.max(1, Math.min(4, cores));
}

/** Validates a points matrix and returns `[n, d]`. */
function checkPoints(points: Matrix): [number, number] {
  const [n, d] = points.shape;
  if (points.data.length !== n * d) {
    throw new Error(
      `points.data has ${points.data.length} values but shape [${n}, ${d}] needs ${n * d}`,
    );
  }
  for (let i = 0; i < points.data.length; i++) {
    if (!Number.isFinite(points.data[i])) {
      throw new Error(
        `points hold a non-finite value at index ${i} (row ${Math.floor(i / d)}); ` +
          `clean or impute the data before computing distances`,
      );
    }
  }
  return [n, d];
}

/**
 * The Gram matrix of the centred points `[n, d]` (full `n × n`, float32) and their squared
 * norms, computed with TensorFlow.js wasm products, in parallel workers when `threads > 1`.
 */
export async function gramMatrix(points: Matrix, options: DistanceOptions = {}): Promise<Gram> {
  const [n, d] = checkPoints(points);
  const blockSize = options.blockSize ?? 512;
  const chunkSize = options.chunkSize ?? 4096;
  const blocks = Math.ceil(n / blockSize);
  const totalPairs = (blocks * (blocks + 1)) / 2;
  // Small problems are not worth a worker's start-up (about a second).
  const autoThreads = n * n * d < 4e9 ? 1 : defaultThreads();
  const threads = Math.max(1, Math.min(options.threads ?? autoThreads, totalPairs));
  const chunks = Math.ceil(d / chunkSize);
  const total = totalPairs * chunks;

  const meansF64 = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    for (let c = 0; c < d; c++) meansF64[c] += points.data[row + c];
  }
  const means = new Float32Array(d);
  for (let c = 0; c < d; c++) means[c] = meansF64[c] / n;
  const sqNorms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const row = i * d;
    let s = 0;
    for (let c = 0; c < d; c++) {
      const v = points.data[row + c] - means[c];
      s += v * v;
    }
    sqNorms[i] = s;
  }

  if (threads === 1) {
    const gram = new Float32Array(n * n);
    const counter = new Int32Array(1);
    const task: GramTask = {
      points: points.data,
      n,
      d,
      means,
      gram,
      blockSize,
      chunkSize,
      worker: 0,
      workers: 1,
      counter,
    };
    await runGramTask(task);
    options.onProgress?.(total, total);
    return { gram, sqNorms, n };
  }

  const sharedPoints = points.data.buffer instanceof SharedArrayBuffer ? points.data : (() => {
    const s = new Float32Array(new SharedArrayBuffer(points.data.length * 4));
    s.set(points.data);
    return s;
  })();
  const gram = new Float32Array(new SharedArrayBuffer(n * n * 4));
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const workers: Worker[] = [];
  try {
    const done = Array.from({ length: threads }, (_, w) => {
      const worker = new Worker(new URL("./distances_worker.ts", import.meta.url), {
        type: "module",
      });
      workers.push(worker);
      return new Promise<void>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent) => {
          if (e.data?.error) reject(new Error(`distance worker ${w} failed: ${e.data.error}`));
          else resolve();
        };
        worker.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          reject(new Error(`distance worker ${w} failed: ${e.message}`));
        };
        const task: GramTask = {
          points: sharedPoints,
          n,
          d,
          means,
          gram,
          blockSize,
          chunkSize,
          worker: w,
          workers: threads,
          counter,
        };
        worker.postMessage(task);
      });
    });
    let finished = false;
    const all = Promise.all(done).finally(() => (finished = true));
    if (options.onProgress) {
      while (!finished) {
        await Promise.race([all, new Promise((r) => setTimeout(r, 250))]);
        options.onProgress(Atomics.load(counter, 0), total);
      }
    }
    await all;
  } finally {
    for (const w of workers) w.terminate();
  }
  return { gram, sqNorms, n };
}

/** Direct double loop, for problems too small to be worth the wasm backend's start-up. */
function squaredDistancesDirect(points: Matrix): Float32Array {
  const [n, d] = points.shape;
  const out = new Float32Array(n * n);
  const x = points.data;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let a = 0, bi = i * d, bj = j * d; a < d; a++) {
        const t = x[bi + a] - x[bj + a];
        s += t * t;
      }
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}

/** Below this many multiply-adds (`n²·d`) distances are computed directly. */
const DIRECT_LIMIT = 5e7;

/** Full `n × n` squared Euclidean distances (float32, zero diagonal) of the rows of `points`. */
export async function squaredDistances(
  points: Matrix,
  options: DistanceOptions = {},
): Promise<Float32Array> {
  const [n0, d0] = checkPoints(points);
  if (n0 * n0 * d0 <= DIRECT_LIMIT && options.blockSize === undefined) {
    return squaredDistancesDirect(points);
  }
  const { gram, sqNorms, n } = await gramMatrix(points, options);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    const si = sqNorms[i];
    for (let j = 0; j < n; j++) {
      const v = si + sqNorms[j] - 2 * gram[row + j];
      gram[row + j] = v > 0 ? v : 0;
    }
    gram[row + i] = 0;
  }
  return gram;
}

/**
 * Indices of the `k` smallest values of `values[0..n)` except `skip`, sorted ascending, written
 * to `outIdx`/`outVal`. Uses a bounded max-heap (k ≪ n).
 */
export function kSmallest(
  values: ArrayLike<number>,
  n: number,
  k: number,
  skip: number,
  outIdx: Int32Array,
  outVal: Float64Array,
  outOffset: number,
  heapIdx: Int32Array,
  heapVal: Float64Array,
): void {
  let size = 0;
  for (let j = 0; j < n; j++) {
    if (j === skip) continue;
    const v = values[j];
    if (size < k) {
      // Sift up.
      let pos = size++;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (heapVal[parent] >= v) break;
        heapVal[pos] = heapVal[parent];
        heapIdx[pos] = heapIdx[parent];
        pos = parent;
      }
      heapVal[pos] = v;
      heapIdx[pos] = j;
    } else if (v < heapVal[0]) {
      // Replace the largest and sift down.
      let pos = 0;
      for (;;) {
        const l = 2 * pos + 1;
        if (l >= size) break;
        const r = l + 1;
        const c = r < size && heapVal[r] > heapVal[l] ? r : l;
        if (heapVal[c] <= v) break;
        heapVal[pos] = heapVal[c];
        heapIdx[pos] = heapIdx[c];
        pos = c;
      }
      heapVal[pos] = v;
      heapIdx[pos] = j;
    }
  }
  // Heap-sort out: repeatedly remove the max into the back.
  for (let end = size - 1; end >= 0; end--) {
    outIdx[outOffset + end] = heapIdx[0];
    outVal[outOffset + end] = heapVal[0];
    const v = heapVal[end], vi = heapIdx[end];
    let pos = 0;
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= end) break;
      const r = l + 1;
      const c = r < end && heapVal[r] > heapVal[l] ? r : l;
      if (heapVal[c] <= v) break;
      heapVal[pos] = heapVal[c];
      heapIdx[pos] = heapIdx[c];
      pos = c;
    }
    heapVal[pos] = v;
    heapIdx[pos] = vi;
  }
}

/** The `k` nearest neighbours of each row of a full `n × n` distance matrix. */
export function neighborsFromDistances(
  distances: ArrayLike<number>,
  n: number,
  k: number,
): Neighbors {
  if (k < 1 || k > n - 1) throw new Error(`k must be in 1..${n - 1} for ${n} points, got ${k}`);
  const indices = new Int32Array(n * k);
  const sqDistances = new Float64Array(n * k);
  const heapIdx = new Int32Array(k), heapVal = new Float64Array(k);
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) row[j] = distances[i * n + j];
    kSmallest(row, n, k, i, indices, sqDistances, i * k, heapIdx, heapVal);
  }
  return { indices, sqDistances, n, k };
}

/**
 * The `k` nearest neighbours (squared Euclidean) of every row of `points` `[n, d]`,
 * brute force over all pairs through blocked matrix products.
 */
export async function nearestNeighbors(
  points: Matrix,
  k: number,
  options: DistanceOptions = {},
): Promise<Neighbors> {
  const n = points.shape[0];
  if (k < 1 || k > n - 1) throw new Error(`k must be in 1..${n - 1} for ${n} points, got ${k}`);
  if (n * n * points.shape[1] <= DIRECT_LIMIT && options.blockSize === undefined) {
    return neighborsFromDistances(squaredDistancesDirect(points), n, k);
  }
  const { gram, sqNorms } = await gramMatrix(points, options);
  const indices = new Int32Array(n * k);
  const sqDistances = new Float64Array(n * k);
  const heapIdx = new Int32Array(k), heapVal = new Float64Array(k);
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * n;
    const si = sqNorms[i];
    for (let j = 0; j < n; j++) {
      const v = si + sqNorms[j] - 2 * gram[base + j];
      row[j] = v > 0 ? v : 0;
    }
    kSmallest(row, n, k, i, indices, sqDistances, i * k, heapIdx, heapVal);
  }
  return { indices, sqDistances, n, k };
}

/**
 * Metric of the input space: `"euclidean"`, or `"cosine"` (the cosine distance
 * `1 − cos θ`, the metric pyDeepInsight's t-SNE uses).
 */
export type Metric = "euclidean" | "cosine";

/**
 * The rows of `points` `[n, d]` scaled to unit length, so that squared Euclidean distances
 * between them are twice the cosine distances: `‖u − v‖² = 2 (1 − cos θ)`. An all-zero
 * row has no direction; like scikit-learn's `cosine_distances` it is put at cosine
 * distance 1 from every other row, by giving all rows one extra coordinate (0 for the
 * others, 1 for zero rows). Two zero rows are then at distance 0 from each other
 * (scikit-learn: 1). Without zero rows the result has `d` columns.
 */
export function unitRows(points: Matrix): Matrix {
  const [n, d] = checkPoints(points);
  const norms = new Float64Array(n);
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0, b = i * d; c < d; c++) s += points.data[b + c] * points.data[b + c];
    norms[i] = Math.sqrt(s);
    if (norms[i] === 0) zeros++;
  }
  const width = zeros > 0 ? d + 1 : d;
  const out = new Float32Array(new SharedArrayBuffer(4 * n * width));
  for (let i = 0; i < n; i++) {
    const inv = norms[i] > 0 ? 1 / norms[i] : 0;
    for (let c = 0, b = i * d, o = i * width; c < d; c++) out[o + c] = points.data[b + c] * inv;
    if (zeros > 0 && norms[i] === 0) out[i * width + d] = 1;
  }
  return { data: out, shape: [n, width] };
}

/**
 * Full `n × n` distances of the rows of `points` under `metric` (zero diagonal): squared
 * Euclidean distances, or cosine distances `1 − cos θ` (clipped at 0).
 */
export async function metricDistances(
  points: Matrix,
  metric: Metric,
  options: DistanceOptions = {},
): Promise<Float32Array> {
  if (metric === "euclidean") return await squaredDistances(points, options);
  const sq = await squaredDistances(unitRows(points), options);
  for (let t = 0; t < sq.length; t++) sq[t] = sq[t] / 2;
  return sq;
}

/**
 * The `k` nearest neighbours of every row of `points` under `metric`; `sqDistances` then
 * holds squared Euclidean distances, or cosine distances for `"cosine"`.
 */
export async function metricNeighbors(
  points: Matrix,
  k: number,
  metric: Metric,
  options: DistanceOptions = {},
): Promise<Neighbors> {
  if (metric === "euclidean") return await nearestNeighbors(points, k, options);
  const nb = await nearestNeighbors(unitRows(points), k, options);
  for (let t = 0; t < nb.sqDistances.length; t++) nb.sqDistances[t] /= 2;
  return nb;
}
