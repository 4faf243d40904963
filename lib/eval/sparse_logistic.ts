/**
 * Binary L2-regularised logistic regression on sparse rows (CSR), fitted in float64 by a
 * trust-region Newton method: the classifier of the bag-of-words baseline (TF-IDF features,
 * `./tfidf.ts`), where rows have hundreds of nonzeros among 10⁵–10⁶ columns.
 *
 * Objective (scikit-learn's `LogisticRegression` with `C = 1/l2`, divided by `C`; the same
 * minimiser), labels `yᵢ ∈ {0, 1}`, `sᵢ = 2yᵢ − 1`:
 *
 *     Σᵢ log(1 + exp(−sᵢ (w·xᵢ + b))) + (l2 / 2) ‖w‖²,
 *
 * the intercept `b` unpenalised (as scikit-learn's lbfgs and newton-cg solvers; not
 * liblinear). The options mirror {@link LogisticRegression} in `./logistic.ts` (`l2`,
 * `maxIter`, `tol`, `fitIntercept`) except `standardize`: centring would make TF-IDF rows
 * dense, and they are already L2-normalised.
 *
 * Solver: trust-region Newton with conjugate-gradient inner steps (Steihaug's truncated CG,
 * the trust-region rules of Lin & Moré's TRON, as liblinear uses for the same problem). Each
 * Hessian-vector product is two passes over the nonzeros, no Hessian is stored, and Newton
 * steps converge in tens of iterations where first-order methods need thousands on weakly
 * penalised, nearly separable text features. It stops when the largest gradient component is
 * at most `tol` times its value at `w = 0, b = 0`.
 *
 * ```ts
 * import { SparseLogisticRegression } from "./lib/eval/sparse_logistic.ts";
 * const X = {
 *   indptr: Int32Array.of(0, 1, 2, 3),
 *   indices: Int32Array.of(0, 1, 0),
 *   data: Float32Array.of(1, 1, 0.5),
 *   shape: [3, 2] as [number, number],
 * };
 * const model = new SparseLogisticRegression({ l2: 0.1 }).fit(X, Uint8Array.of(1, 0, 1));
 * console.log(model.predictProba(X)); // high, low, high
 * ```
 *
 * @module
 */
import type { Labels } from "../types.ts";
import { dot, maxAbs, sigmoid, softplus } from "./math.ts";
import { chooseL2, L2_CANDIDATES, type L2Choice } from "./logistic.ts";

/**
 * A sparse matrix in compressed sparse row form (as `scipy.sparse.csr_matrix`): row `i`
 * holds `data[k]` at column `indices[k]` for `k` in `indptr[i] … indptr[i + 1] − 1`, columns
 * increasing within a row.
 */
export interface CsrMatrix {
  /** Row starts into `indices`/`data`, `rows + 1` of them, from 0 to the nonzero count. */
  indptr: Int32Array;
  /** Column of each stored value. */
  indices: Int32Array;
  /** Stored values. */
  data: Float32Array;
  /** `[rows, cols]`. */
  shape: [number, number];
}

/**
 * Throws unless `X` is a well-formed CSR matrix with finite values: `indptr` of length
 * `rows + 1`, non-decreasing from 0 to the nonzero count, columns in range. `name` goes into
 * the messages.
 */
export function checkCsr(X: CsrMatrix, name = "X"): void {
  const [rows, cols] = X.shape;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new Error(`${name}.shape must be two non-negative integers, not [${X.shape}]`);
  }
  const { indptr, indices, data } = X;
  if (indptr.length !== rows + 1) {
    throw new Error(`${name}.indptr has ${indptr.length} entries; ${rows} rows need ${rows + 1}`);
  }
  if (indptr[0] !== 0 || indptr[rows] !== indices.length || indices.length !== data.length) {
    throw new Error(
      `${name} is not valid CSR: indptr must run from 0 to the nonzero count ` +
        `(${indptr[0]} … ${indptr[rows]}), indices has ${indices.length} and data ` +
        `${data.length} values`,
    );
  }
  for (let i = 0; i < rows; i++) {
    if (indptr[i + 1] < indptr[i]) throw new Error(`${name}.indptr decreases at row ${i}`);
    for (let k = indptr[i]; k < indptr[i + 1]; k++) {
      if (!(indices[k] >= 0 && indices[k] < cols)) {
        throw new Error(`${name} row ${i} has column ${indices[k]}, outside 0 … ${cols - 1}`);
      }
      if (!Number.isFinite(data[k])) {
        throw new Error(`${name} holds ${data[k]} at row ${i}, column ${indices[k]}`);
      }
    }
  }
}

/** Options of {@link SparseLogisticRegression}. */
export interface SparseLogisticRegressionOptions {
  /**
   * L2 penalty strength `1/C` (default 1, scikit-learn's `C = 1`). Must be positive: TF-IDF
   * features usually separate the training set, and without a penalty no finite optimum
   * exists (use e.g. 1e-6 for almost none).
   */
  l2?: number;
  /** Newton iterations at most (default 1000). */
  maxIter?: number;
  /**
   * Stop when the largest gradient component is at most `tol` times its value at zero
   * (default 1e-4, as `LogisticRegression`; Newton steps usually overshoot it by orders of
   * magnitude). Below about 1e-12 the fit may stop first, when float64 no longer resolves
   * the decrease of the objective.
   */
  tol?: number;
  /** Fit an unpenalised intercept (default true). */
  fitIntercept?: boolean;
}

/** Default options of {@link SparseLogisticRegression} (the one place they are defined). */
export const SPARSE_LOGISTIC_DEFAULTS: Readonly<Required<SparseLogisticRegressionOptions>> = {
  l2: 1,
  maxIter: 1000,
  tol: 1e-4,
  fitIntercept: true,
};

/** Conjugate-gradient iterations at most per Newton step. */
const MAX_CG_ITER = 1000;

/** `out = X·w + b` per row (`b` = 0 when `w` has no intercept slot). */
function multiply(X: CsrMatrix, theta: Float64Array, fitIntercept: boolean, out: Float64Array) {
  const { indptr, indices, data } = X;
  const b = fitIntercept ? theta[X.shape[1]] : 0;
  for (let i = 0; i < X.shape[0]; i++) {
    let z = b;
    for (let k = indptr[i]; k < indptr[i + 1]; k++) z += data[k] * theta[indices[k]];
    out[i] = z;
  }
}

/** `out = Xᵀ·r` (and `Σ r` in the intercept slot when fitted). */
function multiplyTransposed(
  X: CsrMatrix,
  r: Float64Array,
  fitIntercept: boolean,
  out: Float64Array,
): void {
  const { indptr, indices, data } = X;
  out.fill(0);
  let sum = 0;
  for (let i = 0; i < X.shape[0]; i++) {
    const ri = r[i];
    sum += ri;
    if (ri === 0) continue;
    for (let k = indptr[i]; k < indptr[i + 1]; k++) out[indices[k]] += data[k] * ri;
  }
  if (fitIntercept) out[X.shape[1]] = sum;
}

/**
 * The objective of the module doc on `X`, `y`: `evaluate` writes the gradient and the Hessian
 * weights σ(z)(1 − σ(z)) per row at `theta = [w, b]` and returns the objective; `hessianTimes`
 * multiplies by the Hessian at the weights given.
 */
class SparseLogisticObjective {
  readonly size: number;
  readonly #z: Float64Array;
  readonly #r: Float64Array;

  constructor(
    readonly X: CsrMatrix,
    readonly y: Labels,
    readonly l2: number,
    readonly fitIntercept: boolean,
  ) {
    this.size = X.shape[1] + (fitIntercept ? 1 : 0);
    this.#z = new Float64Array(X.shape[0]);
    this.#r = new Float64Array(X.shape[0]);
  }

  evaluate(theta: Float64Array, grad: Float64Array, weights: Float64Array): number {
    const { X, y, l2 } = this;
    const z = this.#z, r = this.#r;
    multiply(X, theta, this.fitIntercept, z);
    let loss = 0;
    for (let i = 0; i < z.length; i++) {
      loss += softplus(z[i]) - (y[i] === 1 ? z[i] : 0);
      const p = sigmoid(z[i]);
      r[i] = p - y[i];
      weights[i] = p * (1 - p);
    }
    multiplyTransposed(X, r, this.fitIntercept, grad);
    let penalty = 0;
    for (let j = 0; j < X.shape[1]; j++) {
      grad[j] += l2 * theta[j];
      penalty += theta[j] * theta[j];
    }
    return loss + 0.5 * l2 * penalty;
  }

  hessianTimes(weights: Float64Array, v: Float64Array, out: Float64Array): void {
    const z = this.#z;
    multiply(this.X, v, this.fitIntercept, z);
    for (let i = 0; i < z.length; i++) z[i] *= weights[i];
    multiplyTransposed(this.X, z, this.fitIntercept, out);
    for (let j = 0; j < this.X.shape[1]; j++) out[j] += this.l2 * v[j];
  }
}

/**
 * Steihaug's truncated conjugate gradient on `H s = −g` inside `‖s‖ ≤ radius`, until the
 * residual is at most `relTol · ‖g‖`. Writes the step into `s` and the residual `−g − H s`
 * into `r`.
 */
function steihaugCg(
  objective: SparseLogisticObjective,
  weights: Float64Array,
  g: Float64Array,
  radius: number,
  relTol: number,
  s: Float64Array,
  r: Float64Array,
): void {
  const size = g.length;
  const d = new Float64Array(size);
  const hd = new Float64Array(size);
  s.fill(0);
  for (let k = 0; k < size; k++) r[k] = d[k] = -g[k];
  let rr = dot(r, r);
  const stop = relTol * Math.sqrt(rr);
  for (let iter = 0; iter < MAX_CG_ITER && Math.sqrt(rr) > stop; iter++) {
    objective.hessianTimes(weights, d, hd);
    const dhd = dot(d, hd);
    const alpha = rr / dhd;
    let ss = 0;
    for (let k = 0; k < size; k++) ss += (s[k] + alpha * d[k]) ** 2;
    if (!(dhd > 0) || ss > radius * radius) {
      // Leave along d at the trust-region boundary: the τ ≥ 0 with ‖s + τd‖ = radius.
      const sd = dot(s, d), dd = dot(d, d), gap = radius * radius - dot(s, s);
      const root = Math.sqrt(sd * sd + dd * gap);
      const tau = sd >= 0 ? gap / (sd + root) : (root - sd) / dd;
      for (let k = 0; k < size; k++) {
        s[k] += tau * d[k];
        r[k] -= tau * hd[k];
      }
      return;
    }
    for (let k = 0; k < size; k++) {
      s[k] += alpha * d[k];
      r[k] -= alpha * hd[k];
    }
    const rrNew = dot(r, r);
    const beta = rrNew / rr;
    for (let k = 0; k < size; k++) d[k] = r[k] + beta * d[k];
    rr = rrNew;
  }
}

/** The trust-region radius after a step of length `stepNorm` (TRON's update rules). */
function nextRadius(
  radius: number,
  stepNorm: number,
  actual: number,
  predicted: number,
  gs: number,
  firstStep: boolean,
): number {
  if (firstStep) radius = Math.min(radius, stepNorm);
  // Minimiser of the quadratic through f, f' = gs and the new f along the step.
  const curvature = -actual - gs;
  const alpha = curvature <= 0 ? 4 : Math.max(0.25, -0.5 * (gs / curvature));
  if (actual < 1e-4 * predicted) return Math.min(Math.max(alpha, 0.25) * stepNorm, 0.5 * radius);
  if (actual < 0.25 * predicted) {
    return Math.max(0.25 * radius, Math.min(alpha * stepNorm, 0.5 * radius));
  }
  if (actual < 0.75 * predicted) {
    return Math.max(0.25 * radius, Math.min(alpha * stepNorm, 4 * radius));
  }
  return Math.max(radius, Math.min(alpha * stepNorm, 4 * radius));
}

/**
 * Minimises `objective` from zero by trust-region Newton until the largest gradient component
 * is at most `tol` times its starting value, `maxIter` Newton iterations have run, or neither
 * the actual nor the predicted decrease is resolvable in float64.
 */
function minimizeTrustRegion(
  objective: SparseLogisticObjective,
  maxIter: number,
  tol: number,
): { theta: Float64Array; iter: number; converged: boolean } {
  const size = objective.size, n = objective.X.shape[0];
  let theta = new Float64Array(size), trial = new Float64Array(size);
  let grad = new Float64Array(size), trialGrad = new Float64Array(size);
  let weights = new Float64Array(n), trialWeights = new Float64Array(n);
  const s = new Float64Array(size), r = new Float64Array(size);
  let f = objective.evaluate(theta, grad, weights);
  const g0 = Math.max(maxAbs(grad), 1e-300);
  const g0norm = Math.max(Math.sqrt(dot(grad, grad)), 1e-300);
  let radius = g0norm;
  let converged = maxAbs(grad) <= tol * g0;
  let iter = 0;
  while (!converged && iter < maxIter) {
    iter++;
    const gnorm = Math.sqrt(dot(grad, grad));
    steihaugCg(objective, weights, grad, radius, Math.min(0.1, Math.sqrt(gnorm / g0norm)), s, r);
    for (let k = 0; k < size; k++) trial[k] = theta[k] + s[k];
    const fTrial = objective.evaluate(trial, trialGrad, trialWeights);
    const gs = dot(grad, s);
    const predicted = -0.5 * (gs - dot(s, r));
    const actual = f - fTrial;
    radius = nextRadius(radius, Math.sqrt(dot(s, s)), actual, predicted, gs, iter === 1);
    if (actual > 1e-4 * predicted) {
      [theta, trial] = [trial, theta];
      [grad, trialGrad] = [trialGrad, grad];
      [weights, trialWeights] = [trialWeights, weights];
      f = fTrial;
      converged = maxAbs(grad) <= tol * g0;
    }
    const resolvable = 1e-12 * Math.abs(f);
    if (predicted <= 0 || (Math.abs(actual) <= resolvable && predicted <= resolvable)) break;
  }
  return { theta, iter, converged };
}

/** Throws unless `y` holds one 0/1 label per row of `X` (and, for fitting, both classes). */
function checkLabels(X: CsrMatrix, y: Labels, bothClasses = true): void {
  const n = X.shape[0];
  if (y.length !== n) throw new Error(`X has ${n} rows but y has ${y.length} labels`);
  let positives = 0;
  for (let i = 0; i < n; i++) {
    if (y[i] !== 0 && y[i] !== 1) throw new Error(`Label ${i} is ${y[i]}; labels must be 0 or 1`);
    positives += y[i];
  }
  if (bothClasses && (positives === 0 || positives === n)) {
    throw new Error("Logistic regression needs both classes in y; all labels are equal");
  }
}

/**
 * A fitted {@link SparseLogisticRegression} as plain values (what `predictProba` needs).
 */
export interface SparseLogisticParameters {
  /** One weight per column. */
  coef: Float64Array;
  /** Intercept (0 when fitted without one). */
  intercept: number;
  /** The penalty it was fitted with. */
  l2: number;
}

/** Binary logistic regression on CSR rows (scikit-learn-like estimator). */
export class SparseLogisticRegression {
  /** L2 penalty strength (`1/C`). */
  readonly l2: number;
  /** Newton iteration cap. */
  readonly maxIter: number;
  /** Relative gradient tolerance. */
  readonly tol: number;
  /** Whether an intercept is fitted. */
  readonly fitIntercept: boolean;
  /** One weight per column (after {@link fit}). */
  coef_?: Float64Array;
  /** Intercept (after {@link fit}). */
  intercept_?: number;
  /** Newton iterations used. */
  nIter_?: number;
  /** Whether the gradient tolerance was reached within `maxIter`. */
  converged_?: boolean;

  /** Creates an unfitted model; throws on invalid options. */
  constructor(options: SparseLogisticRegressionOptions = {}) {
    const d = SPARSE_LOGISTIC_DEFAULTS;
    this.l2 = options.l2 ?? d.l2;
    this.maxIter = options.maxIter ?? d.maxIter;
    this.tol = options.tol ?? d.tol;
    this.fitIntercept = options.fitIntercept ?? d.fitIntercept;
    if (!(this.l2 > 0 && Number.isFinite(this.l2))) {
      throw new Error(
        `l2 must be positive and finite, not ${this.l2} (use e.g. 1e-6 for almost no penalty)`,
      );
    }
    if (!(Number.isInteger(this.maxIter) && this.maxIter >= 1)) {
      throw new Error(`maxIter must be an integer >= 1, not ${this.maxIter}`);
    }
    if (!(this.tol >= 0)) throw new Error(`tol must be >= 0, not ${this.tol}`);
  }

  /** Fits the model to the rows of `X` with labels `y` (0/1). */
  fit(X: CsrMatrix, y: Labels): this {
    checkCsr(X);
    checkLabels(X, y);
    const objective = new SparseLogisticObjective(X, y, this.l2, this.fitIntercept);
    const { theta, iter, converged } = minimizeTrustRegion(objective, this.maxIter, this.tol);
    const d = X.shape[1];
    this.coef_ = theta.slice(0, d);
    this.intercept_ = this.fitIntercept ? theta[d] : 0;
    this.nIter_ = iter;
    this.converged_ = converged;
    return this;
  }

  /** The fitted parameters as plain values (a copy); throws when not fitted. */
  parameters(): SparseLogisticParameters {
    if (!this.coef_ || this.intercept_ === undefined) {
      throw new Error("SparseLogisticRegression is not fitted: call fit() before parameters()");
    }
    return { coef: this.coef_.slice(), intercept: this.intercept_, l2: this.l2 };
  }

  /**
   * A fitted model from {@link SparseLogisticRegression.parameters}: its predictions equal
   * the original's bit for bit.
   */
  static fromParameters(p: SparseLogisticParameters): SparseLogisticRegression {
    if (!(p.coef instanceof Float64Array) || !Number.isFinite(p.intercept)) {
      throw new Error(
        "SparseLogisticRegression.fromParameters: coef must be a Float64Array, intercept finite",
      );
    }
    const model = new SparseLogisticRegression({ l2: p.l2 });
    model.coef_ = p.coef.slice();
    model.intercept_ = p.intercept;
    return model;
  }

  /** Decision values `w·x + b` per row. */
  decisionFunction(X: CsrMatrix): Float64Array {
    const coef = this.coef_;
    if (!coef || this.intercept_ === undefined) {
      throw new Error("SparseLogisticRegression is not fitted: call fit() first");
    }
    checkCsr(X);
    if (X.shape[1] !== coef.length) {
      throw new Error(`X has ${X.shape[1]} columns, the model was fitted on ${coef.length}`);
    }
    const out = new Float64Array(X.shape[0]);
    const { indptr, indices, data } = X;
    for (let i = 0; i < out.length; i++) {
      let z = this.intercept_;
      for (let k = indptr[i]; k < indptr[i + 1]; k++) z += data[k] * coef[indices[k]];
      out[i] = z;
    }
    return out;
  }

  /** P(class 1) per row. */
  predictProba(X: CsrMatrix): Float32Array {
    return Float32Array.from(this.decisionFunction(X), sigmoid);
  }

  /** Predicted labels (1 where P(class 1) > 0.5). */
  predict(X: CsrMatrix): Uint8Array {
    return Uint8Array.from(this.decisionFunction(X), (z) => (z > 0 ? 1 : 0));
  }

  /** Fraction of rows whose predicted label equals `y`. */
  score(X: CsrMatrix, y: Labels): number {
    const predicted = this.predict(X);
    let correct = 0;
    for (let i = 0; i < y.length; i++) if (predicted[i] === y[i]) correct++;
    return correct / y.length;
  }
}

/** The default `l2` candidates of {@link fitL2Grid} (logistic regression's, one list). */
export { L2_CANDIDATES };

/** Options of {@link fitL2Grid}. */
export interface L2GridOptions {
  /** `l2` candidates, tried in order (default {@link L2_CANDIDATES}). */
  l2?: readonly number[];
  /** Rows to choose `l2` on; without them, `l2 = 1` is used if a candidate, else the first. */
  validation?: { X: CsrMatrix; y: Labels };
  /** The other options of every fit. */
  logistic?: Omit<SparseLogisticRegressionOptions, "l2">;
}

/** What {@link fitL2Grid} chose. */
export type L2GridResult = L2Choice<SparseLogisticRegression>;

/**
 * Chooses `l2` by logistic regression's one rule ({@link chooseL2}): one fit on the training
 * rows per candidate, the highest validation accuracy wins, the earliest on ties; without
 * validation rows only `l2 = 1` (or the first candidate when 1 is not one) is fitted.
 */
export function fitL2Grid(X: CsrMatrix, y: Labels, options: L2GridOptions = {}): L2GridResult {
  const validation = options.validation;
  if (validation) {
    checkCsr(validation.X, "validation.X");
    checkLabels(validation.X, validation.y, false);
  }
  return chooseL2(
    options.l2 ?? L2_CANDIDATES,
    (l2) => new SparseLogisticRegression({ ...options.logistic, l2 }).fit(X, y),
    validation && { proba: (model) => model.predictProba(validation.X), y: validation.y },
  );
}
