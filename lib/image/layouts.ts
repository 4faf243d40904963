/**
 * Feature maps besides t-SNE for the DeepInsight layout (Sharma et al. 2019 lay the features
 * out with t-SNE or kernel PCA; pyDeepInsight accepts any scikit-learn-style embedder):
 *
 * - {@link kernelPca}: kernel PCA with the RBF kernel, scikit-learn's `KernelPCA(kernel="rbf")`
 *   semantics (`gamma` defaults to `1 / n_features`, scores `vᵢ·√λᵢ`, signs so that each
 *   column's largest entry is positive).
 * - {@link umapLayout}: UMAP (McInnes et al. 2018) through the `umap-js` package, fed with
 *   our exact nearest neighbours (Euclidean or cosine) instead of its approximate search.
 * - {@link randomLayout}: every feature at an independent uniform random position, a control
 *   layout with no structure at all (unlike permuting the pixels of a fitted layout, which
 *   keeps its crowding).
 *
 * Each takes the points `[n, d]` (in DeepInsight the features, of dimension = samples) and
 * returns a 2-D map `[n, 2]`.
 *
 * @module
 */
import { UMAP } from "umap-js";
import { Random } from "../random.ts";
import type { Matrix } from "../types.ts";
import { type Metric, metricNeighbors, squaredDistances } from "./distances.ts";
import { randomizedPca } from "./linalg.ts";

/** Options of {@link kernelPca}. */
export interface KernelPcaOptions {
  /**
   * RBF kernel width in `k(x, y) = exp(−γ‖x − y‖²)`. Default `1 / d` with `d` the points'
   * dimension (scikit-learn's `1 / n_features`): in the DeepInsight layout the points are
   * the features, so `d` is the number of samples the layout is fitted on.
   */
  gamma?: number;
  /** Subspace (power) iterations of the randomized eigen-solver (default 10). */
  powerIterations?: number;
}

/** Options of {@link umapLayout}; the defaults are umap-learn's (and umap-js's). */
export interface UmapOptions {
  /** Neighbours per point, the point itself included as in umap-learn (default 15). */
  nNeighbors?: number;
  /** Smallest distance between points in the map (default 0.1). */
  minDist?: number;
  /** Scale of the map's distances (default 1). */
  spread?: number;
  /** Optimisation epochs (default umap-js's: 500 up to 2,500 points, 400 up to 5,000, 300 up to 7,500, else 200). */
  nEpochs?: number;
  /** Input-space metric (default `"euclidean"`). */
  metric?: Metric;
  /** Seed of the initial map and the negative sampling (default 1701). */
  seed?: number;
}

/** Defaults of {@link UmapOptions} (`nEpochs` left to umap-js's size rule). */
export const UMAP_DEFAULTS = {
  nNeighbors: 15,
  minDist: 0.1,
  spread: 1,
  metric: "euclidean" as Metric,
  seed: 1701,
};

/** Progress of a layout fit: `phase` names the step, `done` of `total` units. */
export interface LayoutProgress {
  /** `"distances"`, `"kernel"`, `"eigen"` or `"optimize"`. */
  phase: "distances" | "kernel" | "eigen" | "optimize";
  /** Units done. */
  done: number;
  /** Units in this phase. */
  total: number;
}

/** Run options shared by the layouts. */
export interface LayoutRunOptions {
  /** Seed (kernel PCA's random test matrix; default 0). */
  seed?: number;
  /** Threads for the distance products (default: as `squaredDistances` decides). */
  threads?: number;
  /** Called as the fit proceeds. */
  onProgress?: (p: LayoutProgress) => void;
}

/** Result of {@link kernelPca}. */
export interface KernelPcaResult {
  /** `[n, components]` scores `vᵢ·√λᵢ` (scikit-learn's `fit_transform`). */
  scores: Matrix;
  /** The largest eigenvalues `λᵢ` of the centred kernel matrix. */
  eigenvalues: Float64Array;
  /** The kernel width used. */
  gamma: number;
}

function checkMatrix(points: Matrix, what: string): [number, number] {
  const [n, d] = points.shape;
  if (points.data.length !== n * d) {
    throw new Error(
      `${what}: points.data has ${points.data.length} values, shape [${n}, ${d}] needs ${n * d}`,
    );
  }
  return [n, d];
}

/**
 * Kernel PCA of the rows of `points` `[n, d]` with the RBF kernel: the `n × n` kernel matrix
 * (from wasm-computed squared distances, float32), double-centred, then its largest
 * eigenpairs by randomized subspace iteration; returns the first `components` scores as
 * scikit-learn's `KernelPCA(kernel="rbf").fit_transform` does. Memory: two `n × n` float32
 * matrices (about 170 MB for 4,608 features).
 */
export async function kernelPca(
  points: Matrix,
  components = 2,
  options: KernelPcaOptions & LayoutRunOptions = {},
): Promise<KernelPcaResult> {
  const [n, d] = checkMatrix(points, "kernelPca");
  if (!Number.isInteger(components) || components < 1 || components > n - 1) {
    throw new Error(`kernelPca components must be an integer in 1..${n - 1}, got ${components}`);
  }
  const gamma = options.gamma ?? 1 / d;
  if (!(gamma > 0) || !Number.isFinite(gamma)) {
    throw new Error(`kernel PCA gamma must be a positive number, got ${gamma}`);
  }
  const report = options.onProgress ?? (() => {});
  report({ phase: "distances", done: 0, total: 1 });
  const K = await squaredDistances(points, { threads: options.threads });
  report({ phase: "distances", done: 1, total: 1 });
  // K ← exp(−γ d²), then double centring: Kc = K − 1K/n − K1/n + 1K1/n² (K symmetric).
  const rowMean = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0, b = i * n; j < n; j++) {
      const v = Math.exp(-gamma * K[b + j]);
      K[b + j] = v;
      s += v;
    }
    rowMean[i] = s / n;
  }
  let grand = 0;
  for (let i = 0; i < n; i++) grand += rowMean[i];
  grand /= n;
  for (let i = 0; i < n; i++) {
    const ri = rowMean[i] - grand;
    for (let j = 0, b = i * n; j < n; j++) K[b + j] = K[b + j] - ri - rowMean[j];
  }
  report({ phase: "kernel", done: 1, total: 1 });
  // Kc is symmetric positive semi-definite: its principal directions are its eigenvectors
  // vᵢ and the PCA scores of its rows are Kc·vᵢ = λᵢ·vᵢ, so λᵢ = ‖scoresᵢ‖.
  const { scores } = await randomizedPca({ data: K, shape: [n, n] }, components, {
    seed: options.seed,
    powerIterations: options.powerIterations ?? 10,
  });
  report({ phase: "eigen", done: 1, total: 1 });
  const eigenvalues = new Float64Array(components);
  const out = new Float32Array(n * components);
  for (let k = 0; k < components; k++) {
    let sq = 0;
    for (let i = 0; i < n; i++) sq += scores.data[i * components + k] ** 2;
    const lambda = Math.sqrt(sq);
    eigenvalues[k] = lambda;
    const f = lambda > 0 ? 1 / Math.sqrt(lambda) : 0;
    for (let i = 0; i < n; i++) out[i * components + k] = scores.data[i * components + k] * f;
  }
  return { scores: { data: out, shape: [n, components] }, eigenvalues, gamma };
}

/**
 * `n` points at independent uniform random positions in `[0, 1)²`, seeded (default 1701):
 * the random control layout. With the `bin` or `qtb` discretisation each feature lands on a
 * uniformly random pixel, so pixel counts are multinomial (about `e^(−n/HW)` of the pixels
 * empty), whatever the data.
 */
export function randomLayout(n: number, seed = 1701): Matrix {
  if (!Number.isInteger(n) || n < 1) throw new Error(`randomLayout needs n ≥ 1, got ${n}`);
  const rng = new Random(seed);
  const out = new Float32Array(2 * n);
  for (let t = 0; t < out.length; t++) out[t] = rng.next();
  return { data: out, shape: [n, 2] };
}

/** Resolves and checks {@link UmapOptions}. */
export function resolveUmapOptions(
  options: UmapOptions = {},
): Required<Omit<UmapOptions, "nEpochs">> & { nEpochs?: number } {
  const o = { ...UMAP_DEFAULTS, ...options };
  if (!Number.isInteger(o.nNeighbors) || o.nNeighbors < 2) {
    throw new Error(`umap nNeighbors must be an integer ≥ 2, got ${o.nNeighbors}`);
  }
  if (!(o.minDist >= 0) || !(o.spread > 0) || o.minDist > o.spread) {
    throw new Error(
      `umap needs 0 ≤ minDist ≤ spread and spread > 0, got minDist ${o.minDist}, spread ${o.spread}`,
    );
  }
  if (o.nEpochs !== undefined && !(Number.isInteger(o.nEpochs) && o.nEpochs >= 1)) {
    throw new Error(`umap nEpochs must be a positive integer, got ${o.nEpochs}`);
  }
  if (o.metric !== "euclidean" && o.metric !== "cosine") {
    throw new Error(`umap metric must be "euclidean" or "cosine", got ${JSON.stringify(o.metric)}`);
  }
  return o;
}

/**
 * UMAP map `[n, 2]` of the rows of `points` `[n, d]`. The exact `nNeighbors − 1` nearest
 * neighbours of each point (wasm products; Euclidean distances, or cosine distances) plus
 * the point itself are handed to umap-js, which builds the fuzzy simplicial set and
 * optimises the map from its uniform random initialisation in `[−10, 10]²` (umap-learn
 * starts from a spectral embedding instead). Deterministic for a seed: umap-js draws every
 * random number from the generator we give it.
 */
export function umapLayout(
  points: Matrix,
  options: UmapOptions = {},
  run: Omit<LayoutRunOptions, "seed"> = {},
): Promise<Matrix> {
  const o = resolveUmapOptions(options);
  const [n] = checkMatrix(points, "umapLayout");
  if (n <= o.nNeighbors) {
    throw new Error(
      `umap needs more points (${n}) than nNeighbors (${o.nNeighbors}); lower umap.nNeighbors`,
    );
  }
  return umapFromNeighbors(points, o, run);
}

async function umapFromNeighbors(
  points: Matrix,
  o: ReturnType<typeof resolveUmapOptions>,
  run: Omit<LayoutRunOptions, "seed">,
): Promise<Matrix> {
  const n = points.shape[0];
  const report = run.onProgress ?? (() => {});
  const k = o.nNeighbors - 1;
  const nb = await metricNeighbors(points, k, o.metric, {
    threads: run.threads,
    onProgress: (done, total) => report({ phase: "distances", done, total }),
  });
  const knnIndices: number[][] = [];
  const knnDistances: number[][] = [];
  for (let i = 0; i < n; i++) {
    const idx = [i], dist = [0];
    for (let t = 0; t < k; t++) {
      idx.push(nb.indices[i * k + t]);
      const v = nb.sqDistances[i * k + t];
      dist.push(o.metric === "euclidean" ? Math.sqrt(v) : v);
    }
    knnIndices.push(idx);
    knnDistances.push(dist);
  }
  const rng = new Random(o.seed);
  const umap = new UMAP({
    nComponents: 2,
    nNeighbors: o.nNeighbors,
    minDist: o.minDist,
    spread: o.spread,
    nEpochs: o.nEpochs,
    random: () => rng.next(),
  });
  umap.setPrecomputedKNN(knnIndices, knnDistances);
  // umap-js reads only the number of rows once the neighbours are given.
  const epochs = umap.initializeFit(Array.from({ length: n }, () => []));
  for (let e = 0; e < epochs; e++) {
    umap.step();
    if ((e + 1) % 10 === 0 || e + 1 === epochs) {
      report({ phase: "optimize", done: e + 1, total: epochs });
    }
  }
  const embedding = umap.getEmbedding();
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    out[2 * i] = embedding[i][0];
    out[2 * i + 1] = embedding[i][1];
  }
  return { data: out, shape: [n, 2] };
}
