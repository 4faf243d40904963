/**
 * From the rotated 2-D feature map to pixel coordinates on an `H × W` grid.
 *
 * - `bin` (the paper's): per axis, by default `numpy.digitize` against `P` equally spaced
 *   edges from min to max (`linspace(min, max, P)`), minus one, the convention of the 2021
 *   pyDeepInsight code the paper used (today's pyDeepInsight uses `P` equal-width bins
 *   instead, {@link BinConvention} `"equal-width"`); the first axis gives the row (0..H−1)
 *   and the second the column (0..W−1), the maximum landing in the last bin.
 * - `qtb` (quantile-transform binning): each axis is first replaced by its quantile ranks,
 *   uniform on `[0, 1]` ({@link quantileRanks}), then cut into `P` equal-width bins, so the
 *   features spread evenly over the rows and over the columns whatever the map's density.
 * - `lsa`: features are scaled onto the pixel-centre grid; when there are more features than
 *   pixels they are first grouped by k-means into as many groups as pixels; then a linear
 *   sum assignment puts every group on its own pixel (least total squared distance), so
 *   features no longer crowd into few pixels.
 *
 * @module
 */
import { Random } from "../random.ts";
import type { Matrix } from "../types.ts";
import { linearSumAssignment } from "./lsa.ts";

/** Pixel coordinates of each feature. */
export interface PixelCoords {
  /** Row-major `[features, 2]`: `(row, column)` of each feature. */
  data: Int32Array;
  /** `[features, 2]`. */
  shape: [number, number];
}

/** How rotated coordinates become pixels: `"bin"`, `"qtb"` or `"lsa"` (see the module doc). */
export type Discretization = "bin" | "qtb" | "lsa";

/** The discretisations, for validation. */
export const DISCRETIZATIONS: ReadonlyArray<Discretization> = ["bin", "qtb", "lsa"];

/**
 * How an axis is cut into `P` bins. `"edges"`: `digitize(x, linspace(min, max, P)) − 1`
 * (the 2021 pyDeepInsight code, the paper's): `P − 1` bins of width `(max − min)/(P − 1)`,
 * the last bin holding only the maximum. `"equal-width"`: `floor(P·(x − min)/(max − min))`
 * with the maximum moved into bin `P − 1` (today's pyDeepInsight): `P` bins of equal width.
 * A constant axis puts every point in bin 0.
 */
export type BinConvention = "edges" | "equal-width";

/**
 * Where `lsa` puts the pixel centres. `"grid"` (ours): coordinates scaled to `[0, P − 1]`,
 * centres at the integer indices, so the extreme features sit on the outer pixels' centres.
 * `"pydeepinsight"`: coordinates scaled to `[0, P]` as for its binning, centres at the
 * integer indices `0..P − 1` (see `compat.ts` for the assumptions).
 */
export type LsaCentres = "grid" | "pydeepinsight";

/** numpy's `linspace(start, stop, num)` in double precision (last value exactly `stop`). */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  if (num === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = start + i * step;
  out[num - 1] = stop;
  return out;
}

/** numpy's `digitize(x, edges)` for increasing edges (`right=False`): the number of edges ≤ x. */
export function digitize(x: number, edges: Float64Array): number {
  let lo = 0, hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function checkGrid(pixels: [number, number]): void {
  const [h, w] = pixels;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) {
    throw new Error(`pixels must be positive integers [height, width], got [${pixels}]`);
  }
}

/** Smallest and largest coordinate of the points `[n, 2]` along `axis` (0 or 1). */
function axisRange(points: Matrix, axis: number): [number, number] {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < points.shape[0]; i++) {
    const v = points.data[2 * i + axis];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/**
 * Bin of `x` among `size` equal-width bins over `[min, max]`: `floor(size·(x − min)/(max −
 * min))`, the maximum in the last bin, a constant axis (`max = min`) in bin 0.
 */
export function equalWidthBin(x: number, min: number, max: number, size: number): number {
  if (!(max > min)) return 0;
  const b = Math.floor(((x - min) / (max - min)) * size);
  return Math.min(Math.max(b, 0), size - 1);
}

/**
 * The `bin` discretisation of rotated coordinates `[n, 2]` onto `[H, W]`. With the default
 * `bins: "edges"` (the paper's): `row = digitize(x₀, linspace(min x₀, max x₀, H)) − 1` and
 * likewise for the column; with `"equal-width"`: {@link equalWidthBin} per axis.
 */
export function binCoordinates(
  rotated: Matrix,
  pixels: [number, number],
  options: { bins?: BinConvention } = {},
): PixelCoords {
  checkGrid(pixels);
  const bins = options.bins ?? "edges";
  if (bins !== "edges" && bins !== "equal-width") {
    throw new Error(`bins must be "edges" or "equal-width", got ${JSON.stringify(bins)}`);
  }
  const n = rotated.shape[0];
  const out = new Int32Array(2 * n);
  for (let axis = 0; axis < 2; axis++) {
    const [min, max] = axisRange(rotated, axis);
    const size = pixels[axis];
    if (bins === "equal-width") {
      for (let i = 0; i < n; i++) {
        out[2 * i + axis] = equalWidthBin(rotated.data[2 * i + axis], min, max, size);
      }
      continue;
    }
    const edges = linspace(min, max, size);
    for (let i = 0; i < n; i++) {
      const b = digitize(rotated.data[2 * i + axis], edges) - 1;
      out[2 * i + axis] = Math.min(Math.max(b, 0), size - 1);
    }
  }
  return { data: out, shape: [n, 2] };
}

/**
 * Quantile ranks of `values` on `[0, 1]`: the rank of each value among them (0 for the
 * smallest, `n − 1` for the largest; tied values share their average rank) divided by
 * `n − 1`. This is scikit-learn's `QuantileTransformer(n_quantiles=n)` to a uniform output.
 * A single value gets 0.
 */
export function quantileRanks(values: ArrayLike<number>): Float64Array {
  const n = values.length;
  const out = new Float64Array(n);
  if (n <= 1) return out;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  for (let start = 0; start < n;) {
    let end = start + 1;
    while (end < n && values[order[end]] === values[order[start]]) end++;
    const rank = (start + end - 1) / 2 / (n - 1);
    for (let t = start; t < end; t++) out[order[t]] = rank;
    start = end;
  }
  return out;
}

/**
 * The `qtb` discretisation: each axis of the rotated coordinates `[n, 2]` replaced by its
 * {@link quantileRanks}, then cut into `H` (rows) and `W` (columns) equal-width bins of
 * `[0, 1]`, so each row and each column receives about `n/H` and `n/W` features. (Equal
 * widths whatever the `bin` convention: `"edges"` would give the last row to the maximum
 * alone.)
 */
export function qtbCoordinates(rotated: Matrix, pixels: [number, number]): PixelCoords {
  checkGrid(pixels);
  const n = rotated.shape[0];
  const out = new Int32Array(2 * n);
  const axisValues = new Float64Array(n);
  for (let axis = 0; axis < 2; axis++) {
    for (let i = 0; i < n; i++) axisValues[i] = rotated.data[2 * i + axis];
    const ranks = quantileRanks(axisValues);
    for (let i = 0; i < n; i++) out[2 * i + axis] = equalWidthBin(ranks[i], 0, 1, pixels[axis]);
  }
  return { data: out, shape: [n, 2] };
}

/** Result of {@link kMeans2D}. */
export interface Clusters {
  /** Cluster of each point (0..k−1, no empty clusters). */
  labels: Int32Array;
  /** Centroids `[k, 2]`. */
  centroids: Matrix;
}

/**
 * k-means of 2-D points (k-means++ seeding, Lloyd iterations until no label changes or
 * `maxIterations`). Empty clusters are dropped, so fewer than `k` may come back.
 */
export function kMeans2D(
  points: Matrix,
  k: number,
  options: { seed?: number; maxIterations?: number } = {},
): Clusters {
  const n = points.shape[0];
  if (k < 1 || k > n) throw new Error(`k must be in 1..${n}, got ${k}`);
  const rng = new Random(options.seed ?? 0);
  const x = points.data;
  const cx = new Float64Array(k), cy = new Float64Array(k);
  // k-means++ seeding.
  const d2 = new Float64Array(n).fill(Infinity);
  let c0 = rng.int(n);
  for (let c = 0; c < k; c++) {
    cx[c] = x[2 * c0];
    cy[c] = x[2 * c0 + 1];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const dx = x[2 * i] - cx[c], dy = x[2 * i + 1] - cy[c];
      const v = dx * dx + dy * dy;
      if (v < d2[i]) d2[i] = v;
      total += d2[i];
    }
    if (c + 1 === k) break;
    if (total <= 0) {
      c0 = rng.int(n);
      continue;
    }
    let r = rng.next() * total;
    c0 = n - 1;
    for (let i = 0; i < n; i++) {
      r -= d2[i];
      if (r < 0) {
        c0 = i;
        break;
      }
    }
  }
  // Lloyd iterations.
  const labels = new Int32Array(n).fill(-1);
  const sumX = new Float64Array(k), sumY = new Float64Array(k), cnt = new Float64Array(k);
  const maxIterations = options.maxIterations ?? 100;
  for (let it = 0; it < maxIterations; it++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const px = x[2 * i], py = x[2 * i + 1];
      let best = Infinity, arg = 0;
      for (let c = 0; c < k; c++) {
        const dx = px - cx[c], dy = py - cy[c];
        const v = dx * dx + dy * dy;
        if (v < best) {
          best = v;
          arg = c;
        }
      }
      if (labels[i] !== arg) {
        labels[i] = arg;
        changed++;
      }
    }
    sumX.fill(0);
    sumY.fill(0);
    cnt.fill(0);
    for (let i = 0; i < n; i++) {
      const c = labels[i];
      sumX[c] += x[2 * i];
      sumY[c] += x[2 * i + 1];
      cnt[c]++;
    }
    for (let c = 0; c < k; c++) {
      if (cnt[c] > 0) {
        cx[c] = sumX[c] / cnt[c];
        cy[c] = sumY[c] / cnt[c];
      }
    }
    if (changed === 0) break;
  }
  // Drop empty clusters and renumber.
  const remap = new Int32Array(k).fill(-1);
  let kept = 0;
  for (let c = 0; c < k; c++) if (cnt[c] > 0) remap[c] = kept++;
  const centroids = new Float32Array(2 * kept);
  for (let c = 0; c < k; c++) {
    if (remap[c] >= 0) {
      centroids[2 * remap[c]] = cx[c];
      centroids[2 * remap[c] + 1] = cy[c];
    }
  }
  for (let i = 0; i < n; i++) labels[i] = remap[labels[i]];
  return { labels, centroids: { data: centroids, shape: [kept, 2] } };
}

/**
 * The `lsa` discretisation: rotated coordinates `[n, 2]` scaled onto pixel centres (per
 * `centres`, default `"grid"`: see {@link LsaCentres}), grouped by k-means when `n > H·W`,
 * then each group assigned its own pixel by linear sum assignment (squared distance to the
 * integer pixel indices). At most one group per pixel; features of a group share its pixel.
 */
export function lsaCoordinates(
  rotated: Matrix,
  pixels: [number, number],
  options: { seed?: number; centres?: LsaCentres } = {},
): PixelCoords {
  checkGrid(pixels);
  const centres = options.centres ?? "grid";
  if (centres !== "grid" && centres !== "pydeepinsight") {
    throw new Error(`centres must be "grid" or "pydeepinsight", got ${JSON.stringify(centres)}`);
  }
  const [h, w] = pixels;
  const n = rotated.shape[0];
  const scaled = new Float32Array(2 * n);
  for (let axis = 0; axis < 2; axis++) {
    const [min, max] = axisRange(rotated, axis);
    const span = max > min ? max - min : 1;
    const size = axis === 0 ? h : w;
    const top = centres === "grid" ? size - 1 : size;
    for (let i = 0; i < n; i++) {
      scaled[2 * i + axis] = ((rotated.data[2 * i + axis] - min) / span) * top;
    }
  }
  const nPixels = h * w;
  let labels: Int32Array, centroids: Float32Array, groups: number;
  if (n > nPixels) {
    const clusters = kMeans2D({ data: scaled, shape: [n, 2] }, nPixels, { seed: options.seed });
    labels = clusters.labels;
    centroids = clusters.centroids.data;
    groups = clusters.centroids.shape[0];
  } else {
    labels = Int32Array.from({ length: n }, (_, i) => i);
    centroids = scaled;
    groups = n;
  }
  const cost = new Float64Array(groups * nPixels);
  for (let g = 0; g < groups; g++) {
    const gx = centroids[2 * g], gy = centroids[2 * g + 1];
    const base = g * nPixels;
    for (let r = 0; r < h; r++) {
      const dr = gx - r;
      for (let c = 0; c < w; c++) {
        const dc = gy - c;
        cost[base + r * w + c] = dr * dr + dc * dc;
      }
    }
  }
  const { columnOfRow } = linearSumAssignment(cost, groups, nPixels);
  const out = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const pixel = columnOfRow[labels[i]];
    out[2 * i] = Math.floor(pixel / w);
    out[2 * i + 1] = pixel % w;
  }
  return { data: out, shape: [n, 2] };
}
