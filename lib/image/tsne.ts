/**
 * t-SNE (van der Maaten & Hinton 2008; Barnes–Hut: van der Maaten 2014) with
 * scikit-learn's semantics and defaults of the paper's time: 2-D, perplexity 30, 1000
 * iterations, early exaggeration 12 for the first 250, momentum 0.5 then 0.8, per-parameter
 * gains (+0.2 / ×0.8, floor 0.01), learning rate 200 (or `"auto"` = max(n / 12 / 4, 50)),
 * random initialisation N(0, 1e-4²) (or PCA scaled to std 1e-4), Barnes–Hut θ = 0.5 over
 * 3·perplexity + 1 nearest neighbours, exact gradients with dense affinities on request or
 * for small inputs. Seeded through `lib/random.ts`, so a seed gives the same map.
 *
 * Built for the DeepInsight layout: 4,608 points (features) of dimension 2,000–50,000 (the
 * samples). Distances (Euclidean or cosine) come from blocked wasm matrix products; the
 * gradient loop runs over typed arrays with a flat-array quadtree.
 *
 * @module
 */
import type { Progress } from "../progress.ts";
import { ProgressBar } from "../progress.ts";
import { Random } from "../random.ts";
import type { Matrix } from "../types.ts";
import {
  jointProbabilitiesDense,
  jointProbabilitiesSparse,
  type SparseSymmetric,
} from "./affinities.ts";
import {
  type DistanceOptions,
  metricDistances,
  metricNeighbors,
  neighborsFromDistances,
} from "./distances.ts";
import { randomizedPca } from "./linalg.ts";
import { BarnesHutPool, CHUNK } from "./barnes_hut_pool.ts";
import { defaultThreads } from "./distances.ts";
import { effectiveThetaSq, FlatTree, negativeForces, QuadTree } from "./quadtree.ts";

const MACHINE_EPSILON = 2.220446049250313e-16;
const FLOAT32_TINY = 1.1754943508222875e-38;

/** Input-space metric of {@link TSNE} (see {@link TsneOptions.metric}). */
export type TsneMetric = "euclidean" | "cosine" | "precomputed";

/**
 * The dense `n × n` matrix the perplexity search of exact t-SNE sees for the rows of
 * `points` under `metric`: squared Euclidean distances, or squared cosine distances
 * (scikit-learn's `TSNE` from 1.1 on squares the distances of every metric but
 * `"euclidean"`, which it computes squared already).
 */
export async function tsneInputDistances(
  points: Matrix,
  metric: "euclidean" | "cosine",
  options: DistanceOptions = {},
): Promise<Float32Array> {
  const d = await metricDistances(points, metric, options);
  if (metric === "cosine") { for (let t = 0; t < d.length; t++) d[t] = d[t] * d[t]; }
  return d;
}

/** Options of {@link TSNE}; every default is scikit-learn's (the paper's where they differ). */
export interface TsneOptions {
  /** Dimensions of the map (default 2; Barnes–Hut needs 2). */
  nComponents?: number;
  /** Perplexity, roughly the number of effective neighbours (default 30). */
  perplexity?: number;
  /** Factor on P during the first {@link explorationIterations} (default 12). */
  earlyExaggeration?: number;
  /** Iterations with exaggeration and momentum 0.5 (default 250). */
  explorationIterations?: number;
  /** Gradient-descent step: a number (default 200, the paper's) or `"auto"` = max(n / exaggeration / 4, 50). */
  learningRate?: number | "auto";
  /** Total iterations including the exploration ones (default 1000). */
  nIter?: number;
  /** Stop after this many iterations without a lower KL (checked every 50; default 300). */
  nIterWithoutProgress?: number;
  /** Stop when the gradient norm falls to this (default 1e-7). */
  minGradNorm?: number;
  /**
   * Input-space metric (default `"euclidean"`): `"euclidean"` (affinities from squared
   * Euclidean distances, scikit-learn's default and the paper's), `"cosine"` (from squared
   * cosine distances `(1 − cos θ)²`, as scikit-learn ≥ 1.1 squares every metric's
   * distances; pyDeepInsight's t-SNE uses this metric), or `"precomputed"` (fit takes an
   * `n × n` matrix used as is in place of the squared distances).
   */
  metric?: TsneMetric;
  /** `"random"` (default, the paper's), `"pca"`, or an `[n, nComponents]` starting map. */
  init?: "random" | "pca" | Matrix;
  /** `"auto"` (exact up to {@link exactMaxPoints} points, else Barnes–Hut), `"exact"` or `"barnes_hut"`. */
  method?: "auto" | "exact" | "barnes_hut";
  /** Barnes–Hut opening angle θ (default 0.5). */
  theta?: number;
  /** Largest input `method: "auto"` solves exactly (default 500). */
  exactMaxPoints?: number;
  /** Seed of the initialisation (default 1701, the paper's). */
  seed?: number;
  /** Reduce the points to this many principal components before the distances (default: off). */
  pcaComponents?: number;
  /**
   * Threads for the distance products and the Barnes–Hut forces (default: 1 for small
   * problems, else the number of cores, at most 4).
   */
  threads?: number;
  /** Draw a progress bar on stderr (default false). */
  verbose?: boolean;
}

/** Progress of a t-SNE fit: the phase, and for the optimisation the KL when computed. */
export interface TsneProgress extends Progress {
  /** `"pca"`, `"distances"`, `"affinities"` or `"optimize"`. */
  phase: "pca" | "distances" | "affinities" | "optimize";
  /** KL divergence at this iteration (every 50 iterations; exaggerated P while exploring). */
  kl?: number;
  /** Gradient norm at this iteration (with the KL). */
  gradNorm?: number;
}

/** Options of {@link TSNE.fit}. */
export interface TsneFitOptions {
  /** Called as work proceeds. */
  onProgress?: (progress: TsneProgress) => void;
}

/** Seconds spent in each phase of the last fit. */
export interface TsneTimings {
  /** PCA pre-reduction (0 when off). */
  pca: number;
  /** Distances / nearest neighbours. */
  distances: number;
  /** Perplexity search and joint probabilities. */
  affinities: number;
  /** Gradient descent. */
  optimize: number;
}

/** Resolved options (every field set). */
type Resolved = Required<Omit<TsneOptions, "init" | "pcaComponents" | "threads">> & {
  init: "random" | "pca" | Matrix;
  pcaComponents: number | undefined;
  threads: number | undefined;
};

/** A gradient function: writes the gradient into `grad` and returns the KL (or NaN). */
type Objective = (
  y: Float64Array,
  grad: Float64Array,
  exaggeration: number,
  computeError: boolean,
) => number;

/**
 * Exact objective specialised to a 2-D map with one degree of freedom (the common case), in
 * one pass over the pairs: with `w = 1/(1+d²)` and `Z = Σ w`, the gradient
 * `4 Σ_j (p − w/Z)·w·(yᵢ − yⱼ)` splits into `Σ p·w·Δ` and `Σ w²·Δ / Z`, and the KL into
 * `Σ p·log p − Σ p·log w + (Σ p)·log Z`, so Z is not needed before the loop. (scikit-learn
 * also floors Q at machine epsilon; that only matters for pairs 10⁸ apart.)
 */
function exactObjective2D(P: Float64Array, n: number): Objective {
  const attract = new Float64Array(2 * n);
  const repulse = new Float64Array(2 * n);
  return (y, grad, exaggeration, computeError) => {
    attract.fill(0);
    repulse.fill(0);
    let z = 0, plogp = 0, plogw = 0, psum = 0;
    for (let i = 0; i < n; i++) {
      const xi = y[2 * i], yi = y[2 * i + 1];
      const row = i * n;
      let ax = 0, ay = 0, rx = 0, ry = 0;
      for (let j = i + 1; j < n; j++) {
        const dx = xi - y[2 * j], dy = yi - y[2 * j + 1];
        const w = 1 / (1 + dx * dx + dy * dy);
        const p = exaggeration * P[row + j];
        z += w;
        const a = p * w, r = w * w;
        const fax = a * dx, fay = a * dy, frx = r * dx, fry = r * dy;
        ax += fax;
        ay += fay;
        rx += frx;
        ry += fry;
        attract[2 * j] -= fax;
        attract[2 * j + 1] -= fay;
        repulse[2 * j] -= frx;
        repulse[2 * j + 1] -= fry;
        if (computeError) {
          plogp += p * Math.log(Math.max(p, MACHINE_EPSILON));
          plogw += p * Math.log(w);
          psum += p;
        }
      }
      attract[2 * i] += ax;
      attract[2 * i + 1] += ay;
      repulse[2 * i] += rx;
      repulse[2 * i + 1] += ry;
    }
    const sum = Math.max(2 * z, MACHINE_EPSILON);
    const inv = 1 / sum;
    for (let t = 0; t < 2 * n; t++) grad[t] = 4 * (attract[t] - repulse[t] * inv);
    // Pairs i < j carry half the mass: KL = 2 Σ_{i<j} p·log(p / (w/sum)).
    return computeError ? 2 * (plogp - plogw + psum * Math.log(sum)) : NaN;
  };
}

/** Exact t-SNE objective over dense P (any map dimension, Student-t with `dof`). */
function exactObjective(P: Float64Array, n: number, dims: number, dof: number): Objective {
  if (dims === 2 && dof === 1) return exactObjective2D(P, n);
  const qNum = new Float64Array(n * n);
  const c = (2 * (dof + 1)) / dof;
  const exponent = (dof + 1) / 2;
  const diff = new Float64Array(dims);
  return (y, grad, exaggeration, computeError) => {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let d2 = 0;
        for (let a = 0; a < dims; a++) {
          const t = y[i * dims + a] - y[j * dims + a];
          d2 += t * t;
        }
        const q = dof === 1 ? 1 / (1 + d2) : Math.pow(1 + d2 / dof, -exponent);
        qNum[i * n + j] = q;
        sum += q;
      }
    }
    sum = Math.max(2 * sum, MACHINE_EPSILON);
    grad.fill(0);
    let kl = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const qn = qNum[i * n + j];
        const q = Math.max(qn / sum, MACHINE_EPSILON);
        const p = exaggeration * P[i * n + j];
        if (computeError) kl += p * Math.log(Math.max(p, MACHINE_EPSILON) / q);
        const m = (p - q) * qn;
        for (let a = 0; a < dims; a++) {
          diff[a] = m * (y[i * dims + a] - y[j * dims + a]);
          grad[i * dims + a] += diff[a];
          grad[j * dims + a] -= diff[a];
        }
      }
    }
    for (let t = 0; t < grad.length; t++) grad[t] *= c;
    return computeError ? 2 * kl : NaN;
  };
}

/**
 * Barnes–Hut t-SNE objective over sparse P (2-D map, one degree of freedom). With
 * `workers > 0` the repulsive forces are shared with a {@link BarnesHutPool} (then `y` must
 * be in shared memory); the attractive forces run on the main thread meanwhile. Results do
 * not depend on the number of workers.
 */
async function barnesHutObjective(
  P: SparseSymmetric,
  theta: number,
  y: Float64Array,
  workers: number,
): Promise<{ objective: Objective; pool?: BarnesHutPool }> {
  const n = P.n;
  const tree = new QuadTree(Math.max(64, 8 * n));
  const local = new FlatTree(Math.max(64, 8 * n));
  const localNeg = new Float64Array(2 * n);
  const pos = new Float64Array(2 * n);
  const thetaSq = effectiveThetaSq(theta);
  const { rowStart, columns, values } = P;
  let pool: BarnesHutPool | undefined;
  let shared: FlatTree | undefined;
  if (workers > 0) {
    shared = new FlatTree(Math.max(64, 8 * n), { shared: true, points: n });
    pool = await BarnesHutPool.start(workers, n, y, shared);
  }
  const chunks = Math.ceil(n / CHUNK);
  let klSum = 0, pSum = 0;
  let exaggeration = 1, computeError = false;
  // Attractive forces (and the Z-free part of the KL: Σ p·log p − Σ p·log q).
  const attractive = () => {
    let kl = 0, ps = 0;
    for (let i = 0; i < n; i++) {
      const xi = y[2 * i], yi = y[2 * i + 1];
      let fx = 0, fy = 0;
      for (let e = rowStart[i], end = rowStart[i + 1]; e < end; e++) {
        const j = columns[e];
        const dx = xi - y[2 * j], dy = yi - y[2 * j + 1];
        const q = 1 / (1 + dx * dx + dy * dy);
        const p = exaggeration * values[e];
        const m = p * q;
        fx += m * dx;
        fy += m * dy;
        if (computeError && p > 0) {
          kl += p * (Math.log(Math.max(p, FLOAT32_TINY)) - Math.log(q));
          ps += p;
        }
      }
      pos[2 * i] = fx;
      pos[2 * i + 1] = fy;
    }
    klSum = kl;
    pSum = ps;
  };
  const objective: Objective = (yy, grad, exag, withError) => {
    if (yy !== y) throw new Error("internal: Barnes–Hut objective called with another map");
    exaggeration = exag;
    computeError = withError;
    tree.build(y, n);
    let sumQ = 0;
    let neg: Float64Array;
    if (pool && shared!.flatten(tree, thetaSq, n)) {
      sumQ = pool.run(shared!.size, thetaSq, attractive);
      neg = pool.shared.negForce;
    } else {
      local.flatten(tree, thetaSq, n);
      for (let c = 0; c < chunks; c++) {
        sumQ += negativeForces(
          local,
          y,
          c * CHUNK,
          Math.min(n, (c + 1) * CHUNK),
          thetaSq,
          localNeg,
        );
      }
      attractive();
      neg = localNeg;
    }
    const invSumQ = 1 / sumQ;
    for (let t = 0; t < 2 * n; t++) grad[t] = 4 * (pos[t] - neg[t] * invSumQ);
    // KL = Σ p·log(p / (q/Z)) = Σ p·log p − Σ p·log q + (Σ p)·log Z.
    return withError ? klSum + pSum * Math.log(sumQ) : NaN;
  };
  return { objective, pool };
}

/** The KL divergence of a map `y` `[n, dims]` against dense joint probabilities `P` (Student-t, dof = max(dims − 1, 1)). */
export function klDivergenceExact(P: Float64Array, y: Matrix): number {
  const [n, dims] = y.shape;
  const objective = exactObjective(P, n, dims, Math.max(dims - 1, 1));
  const yy = Float64Array.from(y.data);
  return objective(yy, new Float64Array(n * dims), 1, true);
}

/** Reports the progress of a fit (to the caller's callback and the progress bar). */
type Report = (progress: TsneProgress) => void;

/**
 * Affinities ready for the descent: the objective over dense P (`"exact"`), or sparse P
 * (`"barnes_hut"`, whose objective is built once the map is allocated).
 */
interface Affinities {
  /** Exact objective. */
  objective?: Objective;
  /** Sparse joint probabilities for Barnes–Hut. */
  sparseP?: SparseSymmetric;
}

/** What the stages of the gradient descent share: the objective, the map and its buffers. */
interface Descent {
  /** Gradient and KL of a map. */
  objective: Objective;
  /** The map `[n, dims]`, updated in place. */
  y: Float64Array;
  /** Gradient buffer (as `y`). */
  grad: Float64Array;
  /** Previous update, for the momentum term (as `y`). */
  update: Float64Array;
  /** Per-parameter gains (as `y`). */
  gains: Float64Array;
  /** Gradient-descent step. */
  learningRate: number;
  /** Total iterations of the fit (for progress reports). */
  nIter: number;
  /** Stop when the gradient norm falls to this. */
  minGradNorm: number;
  /** Progress callback. */
  report: Report;
}

/**
 * One stage of gradient descent (scikit-learn's `_gradient_descent`): iterations `start` to
 * `end − 1` with `momentum` and P times `exaggeration`, per-parameter gains (+0.2 / ×0.8,
 * floor 0.01), both reset at the start. The KL is computed every 50 iterations and at the
 * last; the stage stops early when it has not decreased for more than `withoutProgress`
 * iterations or when the gradient norm falls to {@link Descent.minGradNorm}. Returns the last
 * iteration run and the last KL computed.
 */
function descentStage(
  descent: Descent,
  start: number,
  end: number,
  momentum: number,
  exaggeration: number,
  withoutProgress: number,
): [number, number] {
  const { objective: f, y, grad, update, gains, learningRate, nIter, minGradNorm, report } =
    descent;
  update.fill(0);
  gains.fill(1);
  let error = Number.MAX_VALUE, bestError = Number.MAX_VALUE, bestIter = start;
  let i = start;
  for (; i < end; i++) {
    const check = (i + 1) % 50 === 0;
    const computeError = check || i === end - 1;
    const e = f(y, grad, exaggeration, computeError);
    if (computeError) error = e;
    let norm = 0;
    for (let t = 0; t < y.length; t++) {
      const g = grad[t];
      let gain = gains[t];
      gain = update[t] * g < 0 ? gain + 0.2 : gain * 0.8;
      if (gain < 0.01) gain = 0.01;
      gains[t] = gain;
      const gg = g * gain;
      norm += gg * gg;
      const u = momentum * update[t] - learningRate * gg;
      update[t] = u;
      y[t] += u;
    }
    report({ phase: "optimize", done: i + 1, total: nIter });
    if (check) {
      const gradNorm = Math.sqrt(norm);
      report({ phase: "optimize", done: i + 1, total: nIter, kl: error, gradNorm });
      if (error < bestError) {
        bestError = error;
        bestIter = i;
      } else if (i - bestIter > withoutProgress) {
        break;
      }
      if (gradNorm <= minGradNorm) break;
    }
  }
  return [Math.min(i, end - 1), error];
}

/**
 * t-SNE as an estimator: `fit(points)` learns a low-dimensional map of the rows of
 * `points`, available as `embedding_` with its final KL divergence `klDivergence_`.
 *
 * ```ts
 * const tsne = new TSNE({ perplexity: 30, seed: 1701 });
 * const map = await tsne.fitTransform({ data, shape: [4608, 10000] }); // [4608, 2]
 * ```
 */
export class TSNE {
  /** The options as resolved at construction. */
  readonly options: Readonly<Resolved>;
  /** The map `[n, nComponents]` after {@link fit}. */
  embedding_?: Matrix;
  /** KL divergence of the final map (against the un-exaggerated P). */
  klDivergence_?: number;
  /** Iterations run. */
  nIter_?: number;
  /** Learning rate used (resolves `"auto"`). */
  learningRate_?: number;
  /** `"exact"` or `"barnes_hut"` as used. */
  method_?: "exact" | "barnes_hut";
  /** Mean Gaussian bandwidth σ found by the perplexity search. */
  meanSigma_?: number;
  /** Seconds per phase of the last fit. */
  timings_?: TsneTimings;

  /** Creates an unfitted t-SNE with the given options. */
  constructor(options: TsneOptions = {}) {
    const o: Resolved = {
      nComponents: options.nComponents ?? 2,
      perplexity: options.perplexity ?? 30,
      earlyExaggeration: options.earlyExaggeration ?? 12,
      explorationIterations: options.explorationIterations ?? 250,
      learningRate: options.learningRate ?? 200,
      nIter: options.nIter ?? 1000,
      nIterWithoutProgress: options.nIterWithoutProgress ?? 300,
      minGradNorm: options.minGradNorm ?? 1e-7,
      metric: options.metric ?? "euclidean",
      init: options.init ?? "random",
      method: options.method ?? "auto",
      theta: options.theta ?? 0.5,
      exactMaxPoints: options.exactMaxPoints ?? 500,
      seed: options.seed ?? 1701,
      pcaComponents: options.pcaComponents,
      threads: options.threads,
      verbose: options.verbose ?? false,
    };
    if (!(o.perplexity > 0)) throw new Error(`perplexity must be positive, got ${o.perplexity}`);
    if (!(o.earlyExaggeration >= 1)) {
      throw new Error(`earlyExaggeration must be at least 1, got ${o.earlyExaggeration}`);
    }
    if (o.learningRate !== "auto" && !(o.learningRate > 0)) {
      throw new Error(`learningRate must be positive or "auto", got ${o.learningRate}`);
    }
    if (!Number.isInteger(o.nComponents) || o.nComponents < 1) {
      throw new Error(`nComponents must be a positive integer, got ${o.nComponents}`);
    }
    if (o.method === "barnes_hut" && o.nComponents !== 2) {
      throw new Error(
        `Barnes–Hut t-SNE here supports nComponents = 2 only; use method: "exact" for ${o.nComponents}`,
      );
    }
    if (o.metric === "precomputed" && o.init === "pca") {
      throw new Error(`init: "pca" needs the points; with metric: "precomputed" use "random"`);
    }
    if (!["euclidean", "cosine", "precomputed"].includes(o.metric)) {
      throw new Error(
        `metric must be "euclidean", "cosine" or "precomputed", got ${JSON.stringify(o.metric)}`,
      );
    }
    if (!(o.theta >= 0)) throw new Error(`theta must be non-negative, got ${o.theta}`);
    this.options = o;
  }

  /** Fits and returns the map `[n, nComponents]`. */
  async fitTransform(points: Matrix, options: TsneFitOptions = {}): Promise<Matrix> {
    await this.fit(points, options);
    return this.embedding_!;
  }

  /**
   * Learns the map of the rows of `points` `[n, d]` (or, with `metric: "precomputed"`, of an
   * `n × n` distance matrix): the optional PCA pre-reduction, the distances and affinities,
   * the initial map, then gradient descent.
   */
  async fit(points: Matrix, fitOptions: TsneFitOptions = {}): Promise<this> {
    const o = this.options;
    this.#checkPoints(points);
    const n = points.shape[0];
    const method = o.method === "auto"
      ? (n <= o.exactMaxPoints || o.nComponents !== 2 ? "exact" : "barnes_hut")
      : o.method;
    const dims = o.nComponents;
    const bar = o.verbose ? new ProgressBar("t-SNE", o.nIter, { unit: "it" }) : undefined;
    const report: Report = (p) => {
      fitOptions.onProgress?.(p);
      if (bar && p.phase === "optimize") bar.update(p.done);
    };
    const timings: TsneTimings = { pca: 0, distances: 0, affinities: 0, optimize: 0 };
    let t0 = performance.now();
    const input = await this.#reduce(points, report);
    timings.pca = (performance.now() - t0) / 1000;
    const affinities = await this.#affinities(points, input, method, report, timings);

    // Initial map and gradient descent.
    t0 = performance.now();
    // Barnes–Hut shares the repulsive forces with workers for larger maps.
    const bhThreads = affinities.sparseP ? (o.threads ?? (n >= 2000 ? defaultThreads() : 1)) : 1;
    const y = await this.#initialMap(input, n, bhThreads > 1);
    const learningRate = o.learningRate === "auto"
      ? Math.max(n / o.earlyExaggeration / 4, 50)
      : o.learningRate;
    this.learningRate_ = learningRate;
    let objective = affinities.objective;
    let pool: BarnesHutPool | undefined;
    if (affinities.sparseP) {
      ({ objective, pool } = await barnesHutObjective(
        affinities.sparseP,
        o.theta,
        y,
        bhThreads - 1,
      ));
    }
    let it: number, kl: number;
    try {
      [it, kl] = this.#descend(objective!, y, learningRate, report);
    } finally {
      pool?.stop();
    }
    timings.optimize = (performance.now() - t0) / 1000;
    bar?.finish();

    const out = new Float32Array(n * dims);
    for (let t = 0; t < out.length; t++) out[t] = y[t];
    this.embedding_ = { data: out, shape: [n, dims] };
    this.klDivergence_ = kl;
    this.nIter_ = it + 1;
    this.method_ = method;
    this.timings_ = timings;
    return this;
  }

  /** Throws unless `points` suits the options (shape, size, perplexity). */
  #checkPoints(points: Matrix): void {
    const o = this.options;
    const [n, d] = points.shape;
    if (points.data.length !== n * d) {
      throw new Error(
        `points.data has ${points.data.length} values, shape [${n}, ${d}] needs ${n * d}`,
      );
    }
    if (n < 2) throw new Error(`t-SNE needs at least 2 points, got ${n}`);
    if (o.metric === "precomputed" && d !== n) {
      throw new Error(`metric "precomputed" needs a square distance matrix, got [${n}, ${d}]`);
    }
    if (o.perplexity >= n) {
      throw new Error(`perplexity (${o.perplexity}) must be less than the number of points (${n})`);
    }
  }

  /** The optional PCA pre-reduction of `points` ({@link TsneOptions.pcaComponents}); `points` when off. */
  async #reduce(points: Matrix, report: Report): Promise<Matrix> {
    const o = this.options;
    const [n, d] = points.shape;
    if (o.pcaComponents === undefined || o.metric !== "euclidean" || o.pcaComponents >= d) {
      return points;
    }
    report({ phase: "pca", done: 0, total: 1 });
    const { scores } = await randomizedPca(points, Math.min(o.pcaComponents, n), { seed: o.seed });
    report({ phase: "pca", done: 1, total: 1 });
    return scores;
  }

  /**
   * Distances of `input` (or the precomputed ones in `points`) and the joint probabilities:
   * dense with the exact objective for `"exact"`, sparse over the 3·perplexity + 1 nearest
   * neighbours for `"barnes_hut"`. Sets {@link meanSigma_} and the `distances` and
   * `affinities` timings.
   */
  async #affinities(
    points: Matrix,
    input: Matrix,
    method: "exact" | "barnes_hut",
    report: Report,
    timings: TsneTimings,
  ): Promise<Affinities> {
    const o = this.options;
    const n = points.shape[0];
    const dims = o.nComponents;
    let t0 = performance.now();
    const onDistances = (done: number, total: number) =>
      report({ phase: "distances", done, total });
    let affinities: Affinities;
    if (method === "exact") {
      const sq = o.metric === "precomputed"
        ? points.data
        : await tsneInputDistances(input, o.metric, {
          threads: o.threads,
          onProgress: onDistances,
        });
      timings.distances = (performance.now() - t0) / 1000;
      t0 = performance.now();
      const { P, meanSigma } = jointProbabilitiesDense(sq, n, o.perplexity);
      this.meanSigma_ = meanSigma;
      affinities = { objective: exactObjective(P, n, dims, Math.max(dims - 1, 1)) };
    } else {
      const k = Math.min(n - 1, Math.floor(3 * o.perplexity + 1));
      const nb = o.metric === "precomputed"
        ? neighborsFromDistances(points.data, n, k)
        : await metricNeighbors(input, k, o.metric, {
          threads: o.threads,
          onProgress: onDistances,
        });
      // Cosine distances are squared, as scikit-learn does (Euclidean ones come squared).
      if (o.metric === "cosine") {
        for (let t = 0; t < nb.sqDistances.length; t++) nb.sqDistances[t] **= 2;
      }
      timings.distances = (performance.now() - t0) / 1000;
      t0 = performance.now();
      const { P, meanSigma } = jointProbabilitiesSparse(
        nb.indices,
        nb.sqDistances,
        n,
        k,
        o.perplexity,
      );
      this.meanSigma_ = meanSigma;
      affinities = { sparseP: P };
    }
    timings.affinities = (performance.now() - t0) / 1000;
    report({ phase: "affinities", done: 1, total: 1 });
    return affinities;
  }

  /**
   * The initial map `[n, nComponents]` as {@link TsneOptions.init} says: N(0, 1e-4²), the
   * PCA of `input` scaled so that its first component has std 1e-4, or the given map. In
   * shared memory when `shared` (for the Barnes–Hut workers).
   */
  async #initialMap(input: Matrix, n: number, shared: boolean): Promise<Float64Array> {
    const o = this.options;
    const dims = o.nComponents;
    const y = shared
      ? new Float64Array(new SharedArrayBuffer(8 * n * dims))
      : new Float64Array(n * dims);
    if (o.init === "random") {
      const rng = new Random(o.seed);
      for (let i = 0; i < y.length; i++) y[i] = 1e-4 * rng.normal();
    } else if (o.init === "pca") {
      const { scores } = await randomizedPca(input, dims, { seed: o.seed });
      let mean = 0, sq = 0;
      for (let i = 0; i < n; i++) mean += scores.data[i * dims];
      mean /= n;
      for (let i = 0; i < n; i++) sq += (scores.data[i * dims] - mean) ** 2;
      const std = Math.sqrt(sq / n) || 1;
      for (let i = 0; i < y.length; i++) y[i] = (scores.data[i] / std) * 1e-4;
    } else {
      if (o.init.shape[0] !== n || o.init.shape[1] !== dims) {
        throw new Error(
          `init map has shape [${o.init.shape}], expected [${n}, ${dims}] for these points`,
        );
      }
      y.set(o.init.data);
    }
    return y;
  }

  /**
   * Gradient descent on the map `y` in place: {@link TsneOptions.explorationIterations} with
   * momentum 0.5 and P exaggerated, then the remaining iterations with momentum 0.8 (also
   * when the first stage stopped early). Returns the last iteration run and its KL.
   */
  #descend(
    objective: Objective,
    y: Float64Array,
    learningRate: number,
    report: Report,
  ): [number, number] {
    const o = this.options;
    const descent: Descent = {
      objective,
      y,
      grad: new Float64Array(y.length),
      update: new Float64Array(y.length),
      gains: new Float64Array(y.length),
      learningRate,
      nIter: o.nIter,
      minGradNorm: o.minGradNorm,
      report,
    };
    const explore = Math.min(o.explorationIterations, o.nIter);
    let [it, kl] = descentStage(descent, 0, explore, 0.5, o.earlyExaggeration, explore);
    if (it < explore - 1 || o.nIter > explore) {
      [it, kl] = descentStage(descent, it + 1, o.nIter, 0.8, 1, o.nIterWithoutProgress);
    }
    return [it, kl];
  }
}
