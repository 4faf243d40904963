/**
 * Binary L2-regularised logistic regression, fitted with L-BFGS in float64: the baseline
 * classifier on frozen embeddings (PAPER.md §6).
 *
 * Objective (scikit-learn's, with `l2 = 1/C`):
 *
 *     Σᵢ log(1 + exp(−sᵢ (w·xᵢ + b))) + (l2 / 2) ‖w‖²,   sᵢ = ±1,
 *
 * the intercept unpenalised; `l2 = 1` equals scikit-learn's default `C = 1`. With
 * `standardize`, features are centred and scaled to unit variance (population std, as
 * `StandardScaler`) inside the fit, the penalty applies in that space, and `coef_` /
 * `intercept_` are reported for the original features.
 *
 * @module
 */
import type { Labels, Matrix } from "../types.ts";
import { dot, maxAbs, sigmoid, softplus } from "./math.ts";
import { evaluateBinary } from "./metrics.ts";

/** Options of {@link LogisticRegression}. */
export interface LogisticRegressionOptions {
  /** L2 penalty strength `1/C` (default 1, i.e. scikit-learn's `C = 1`). */
  l2?: number;
  /** L-BFGS iterations at most (default 5000). */
  maxIter?: number;
  /**
   * Stop when the largest gradient component is below `tol` times its value at the start
   * (default 1e-4; test accuracy on embeddings does not change beyond it, and it is about
   * as converged as scikit-learn's default lbfgs). Values below about 1e-9 may be out of
   * reach at float64 precision; the fit then stops when the loss no longer decreases.
   */
  tol?: number;
  /** Standardise features inside the fit (default false). */
  standardize?: boolean;
  /** Fit an intercept (default true). */
  fitIntercept?: boolean;
}

/** Objective and gradient at `theta`: writes the gradient into `grad`, returns the objective. */
type Objective = (theta: Float64Array, grad: Float64Array) => number;

/** Throws unless `X` and `y` are a finite `[n, d]` matrix and `n` labels of both classes 0/1. */
function checkData(X: Matrix, y: Labels): void {
  const [n, d] = X.shape;
  if (X.data.length !== n * d) {
    throw new Error(`X.data has ${X.data.length} values, shape [${n}, ${d}]`);
  }
  if (y.length !== n) throw new Error(`X has ${n} rows but y has ${y.length} labels`);
  let positives = 0;
  for (let i = 0; i < n; i++) {
    if (y[i] !== 0 && y[i] !== 1) throw new Error(`Label ${i} is ${y[i]}; labels must be 0 or 1`);
    positives += y[i];
  }
  if (positives === 0 || positives === n) {
    throw new Error("Logistic regression needs both classes in y; all labels are equal");
  }
  for (let i = 0; i < X.data.length; i++) {
    if (!Number.isFinite(X.data[i])) {
      throw new Error(`X holds ${X.data[i]} at row ${Math.floor(i / d)}, column ${i % d}`);
    }
  }
}

/**
 * The feature transform `x' = (x − shift) · scale`: with `standardize`, the column means and
 * the inverse population standard deviations (1 for a constant column), as `StandardScaler`;
 * else the identity.
 */
function featureTransform(
  X: Matrix,
  standardize: boolean,
): { shift: Float64Array; scale: Float64Array } {
  const [n, d] = X.shape;
  const shift = new Float64Array(d);
  const scale = new Float64Array(d).fill(1);
  if (standardize) {
    const sq = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      const row = i * d;
      for (let j = 0; j < d; j++) shift[j] += X.data[row + j];
    }
    for (let j = 0; j < d; j++) shift[j] /= n;
    for (let i = 0; i < n; i++) {
      const row = i * d;
      for (let j = 0; j < d; j++) {
        const c = X.data[row + j] - shift[j];
        sq[j] += c * c;
      }
    }
    for (let j = 0; j < d; j++) {
      const std = Math.sqrt(sq[j] / n);
      scale[j] = std > 0 ? 1 / std : 1;
    }
  }
  return { shift, scale };
}

/**
 * The penalised logistic loss (the module's objective) and its gradient at
 * `theta = [w, b]`, `w` in the transformed feature space, evaluated on the original `X`
 * without materialising the transformed features.
 */
function logisticObjective(
  X: Matrix,
  y: Labels,
  shift: Float64Array,
  scale: Float64Array,
  l2: number,
  fitIntercept: boolean,
): Objective {
  const [n, d] = X.shape;
  const data = X.data;
  const effective = new Float64Array(d);
  return (theta, grad) => {
    let offset = fitIntercept ? theta[d] : 0;
    for (let j = 0; j < d; j++) {
      effective[j] = theta[j] * scale[j];
      offset -= effective[j] * shift[j];
    }
    let loss = 0;
    let residualSum = 0;
    grad.fill(0);
    // One pass over X: the row is still in cache when its gradient term is added.
    for (let i = 0; i < n; i++) {
      const row = i * d;
      let z = offset;
      for (let j = 0; j < d; j++) z += data[row + j] * effective[j];
      loss += softplus(z) - (y[i] === 1 ? z : 0);
      const r = sigmoid(z) - y[i];
      residualSum += r;
      if (r !== 0) { for (let j = 0; j < d; j++) grad[j] += r * data[row + j]; }
    }
    let penalty = 0;
    for (let j = 0; j < d; j++) {
      grad[j] = (grad[j] - shift[j] * residualSum) * scale[j] + l2 * theta[j];
      penalty += theta[j] * theta[j];
    }
    if (fitIntercept) grad[d] = residualSum;
    return loss + 0.5 * l2 * penalty;
  };
}

/** The L-BFGS curvature pairs kept (newest last) with `rho = 1 / (s·y)`. */
interface LbfgsMemory {
  s: Float64Array[];
  y: Float64Array[];
  rho: number[];
}

/** Curvature pairs L-BFGS keeps. */
const LBFGS_MEMORY = 10;

/**
 * L-BFGS two-loop recursion: writes `−H·grad` into `direction`, `H` the inverse-Hessian
 * estimate from `memory` scaled by `s·y / y·y` of the newest pair; `alpha` is scratch.
 */
function twoLoopDirection(
  grad: Float64Array,
  memory: LbfgsMemory,
  alpha: Float64Array,
  direction: Float64Array,
): void {
  const size = grad.length;
  const { s: sList, y: yList, rho: rhoList } = memory;
  for (let k = 0; k < size; k++) direction[k] = -grad[k];
  for (let m = sList.length - 1; m >= 0; m--) {
    alpha[m] = rhoList[m] * dot(sList[m], direction);
    const ym = yList[m];
    for (let k = 0; k < size; k++) direction[k] -= alpha[m] * ym[k];
  }
  if (sList.length > 0) {
    const last = sList.length - 1;
    const gamma = dot(sList[last], yList[last]) / dot(yList[last], yList[last]);
    for (let k = 0; k < size; k++) direction[k] *= gamma;
  }
  for (let m = 0; m < sList.length; m++) {
    const beta = rhoList[m] * dot(yList[m], direction);
    const sm = sList[m];
    for (let k = 0; k < size; k++) direction[k] += (alpha[m] - beta) * sm[k];
  }
}

/**
 * Minimises `evaluate` over `size` parameters from zero with L-BFGS (memory
 * {@link LBFGS_MEMORY}) and a backtracking Armijo line search, until the largest gradient
 * component is at most `tol` times its starting value, `maxIter` iterations have run, or the
 * objective stops decreasing at float64 precision. Returns the parameters, the iterations run
 * and whether the tolerance was reached.
 */
function minimizeLbfgs(
  evaluate: Objective,
  size: number,
  maxIter: number,
  tol: number,
): { theta: Float64Array; iter: number; converged: boolean } {
  const theta = new Float64Array(size);
  const grad = new Float64Array(size);
  let f = evaluate(theta, grad);
  const g0 = Math.max(maxAbs(grad), 1e-300);
  const memory: LbfgsMemory = { s: [], y: [], rho: [] };
  const direction = new Float64Array(size);
  const alpha = new Float64Array(LBFGS_MEMORY);
  const trial = new Float64Array(size);
  const trialGrad = new Float64Array(size);
  let iter = 0;
  let converged = maxAbs(grad) <= tol * g0;
  while (!converged && iter < maxIter) {
    iter++;
    twoLoopDirection(grad, memory, alpha, direction);
    let slope = dot(grad, direction);
    if (!(slope < 0)) {
      for (let k = 0; k < size; k++) direction[k] = -grad[k];
      slope = dot(grad, direction);
      memory.s.length = memory.y.length = memory.rho.length = 0;
    }
    // Backtracking line search (Armijo); the first step is scaled to a unit move.
    let step = memory.s.length === 0 ? Math.min(1, 1 / Math.sqrt(dot(direction, direction))) : 1;
    let fTrial = Infinity;
    for (let tries = 0; tries < 60; tries++) {
      for (let k = 0; k < size; k++) trial[k] = theta[k] + step * direction[k];
      fTrial = evaluate(trial, trialGrad);
      if (fTrial <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fTrial <= f)) break; // no progress possible at float64 precision
    const s = new Float64Array(size);
    const yv = new Float64Array(size);
    for (let k = 0; k < size; k++) {
      s[k] = trial[k] - theta[k];
      yv[k] = trialGrad[k] - grad[k];
    }
    const sy = dot(s, yv);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(yv, yv))) {
      if (memory.s.length === LBFGS_MEMORY) {
        memory.s.shift();
        memory.y.shift();
        memory.rho.shift();
      }
      memory.s.push(s);
      memory.y.push(yv);
      memory.rho.push(1 / sy);
    }
    const previous = f;
    theta.set(trial);
    grad.set(trialGrad);
    f = fTrial;
    converged = maxAbs(grad) <= tol * g0;
    if (!converged && previous - f <= 1e-15 * Math.max(1, Math.abs(f))) break;
  }
  return { theta, iter, converged };
}

/**
 * A fitted {@link LogisticRegression} as plain values (what `predictProba` needs): the
 * weights and intercept for the original features (any standardisation of the fit is folded
 * into them), and the options it was fitted with.
 */
export interface LogisticParameters {
  /** Weights for the original features. */
  coef: Float64Array;
  /** Intercept. */
  intercept: number;
  /** The penalty it was fitted with. */
  l2: number;
  /** Whether the fit standardised the features (already folded into `coef`/`intercept`). */
  standardize: boolean;
}

/** Binary logistic regression (scikit-learn-like estimator). */
export class LogisticRegression {
  /** L2 penalty strength (`1/C`). */
  readonly l2: number;
  /** Iteration cap. */
  readonly maxIter: number;
  /** Relative gradient tolerance. */
  readonly tol: number;
  /** Whether features are standardised inside the fit. */
  readonly standardize: boolean;
  /** Whether an intercept is fitted. */
  readonly fitIntercept: boolean;
  /** Weights for the original features (after {@link fit}). */
  coef_?: Float64Array;
  /** Intercept (after {@link fit}). */
  intercept_?: number;
  /** L-BFGS iterations used. */
  nIter_?: number;
  /** Whether the gradient tolerance was reached within `maxIter`. */
  converged_?: boolean;

  /** Creates an unfitted model. */
  constructor(options: LogisticRegressionOptions = {}) {
    this.l2 = options.l2 ?? 1;
    this.maxIter = options.maxIter ?? 5000;
    this.tol = options.tol ?? 1e-4;
    this.standardize = options.standardize ?? false;
    this.fitIntercept = options.fitIntercept ?? true;
    if (!(this.l2 >= 0)) throw new Error(`l2 must be >= 0, not ${this.l2}`);
    if (!(this.maxIter >= 1)) throw new Error(`maxIter must be >= 1, not ${this.maxIter}`);
  }

  /** Fits the model to rows of `X` with labels `y` (0/1). */
  fit(X: Matrix, y: Labels): this {
    checkData(X, y);
    const d = X.shape[1];
    const { shift, scale } = featureTransform(X, this.standardize);
    const evaluate = logisticObjective(X, y, shift, scale, this.l2, this.fitIntercept);
    const { theta, iter, converged } = minimizeLbfgs(evaluate, d + 1, this.maxIter, this.tol);
    // Back to the original features: w = w' · scale, b = b' − Σ w·shift.
    const coef = new Float64Array(d);
    let intercept = this.fitIntercept ? theta[d] : 0;
    for (let j = 0; j < d; j++) {
      coef[j] = theta[j] * scale[j];
      intercept -= coef[j] * shift[j];
    }
    this.coef_ = coef;
    this.intercept_ = intercept;
    this.nIter_ = iter;
    this.converged_ = converged;
    return this;
  }

  /** The fitted parameters as plain values (a copy); throws when not fitted. */
  parameters(): LogisticParameters {
    if (!this.coef_ || this.intercept_ === undefined) {
      throw new Error("LogisticRegression is not fitted: call fit() before parameters()");
    }
    return {
      coef: this.coef_.slice(),
      intercept: this.intercept_,
      l2: this.l2,
      standardize: this.standardize,
    };
  }

  /**
   * A fitted model from {@link LogisticRegression.parameters}: its predictions equal the
   * original's bit for bit (same weights, same arithmetic).
   */
  static fromParameters(p: LogisticParameters): LogisticRegression {
    if (!(p.coef instanceof Float64Array) || !Number.isFinite(p.intercept)) {
      throw new Error(
        "LogisticRegression.fromParameters: coef must be a Float64Array, intercept finite",
      );
    }
    const model = new LogisticRegression({ l2: p.l2, standardize: p.standardize });
    model.coef_ = p.coef.slice();
    model.intercept_ = p.intercept;
    return model;
  }

  /** Decision values `w·x + b` per row. */
  decisionFunction(X: Matrix): Float64Array {
    const coef = this.coef_;
    if (!coef || this.intercept_ === undefined) throw new Error("LogisticRegression is not fitted");
    const [n, d] = X.shape;
    if (d !== coef.length) {
      throw new Error(`X has ${d} columns, the model was fitted on ${coef.length}`);
    }
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let z = this.intercept_;
      const row = i * d;
      for (let j = 0; j < d; j++) z += X.data[row + j] * coef[j];
      out[i] = z;
    }
    return out;
  }

  /** P(class 1) per row. */
  predictProba(X: Matrix): Float32Array {
    return Float32Array.from(this.decisionFunction(X), sigmoid);
  }

  /** Predicted labels (1 where P(class 1) > 0.5). */
  predict(X: Matrix): Uint8Array {
    return Uint8Array.from(this.decisionFunction(X), (z) => (z > 0 ? 1 : 0));
  }

  /** Fraction of rows whose predicted label equals `y`. */
  score(X: Matrix, y: Labels): number {
    const predicted = this.predict(X);
    let correct = 0;
    for (let i = 0; i < y.length; i++) if (predicted[i] === y[i]) correct++;
    return correct / y.length;
  }
}

/**
 * The default `l2` candidates of logistic regression (dense on embeddings, or sparse on
 * TF-IDF): 0.01 … 10,000 by decades, chosen on the validation rows ({@link chooseL2}).
 */
export const L2_CANDIDATES: readonly number[] = [0.01, 0.1, 1, 10, 100, 1000, 10000];

/** What {@link chooseL2} chose. */
export interface L2Choice<M> {
  /** The model fitted with the chosen `l2`. */
  model: M;
  /** The chosen `l2`. */
  l2: number;
  /** The candidates fitted (one when there are no validation rows). */
  candidates: number[];
  /** Validation accuracy per fitted candidate (empty without validation rows). */
  validationAccuracy: number[];
}

/**
 * The one rule every logistic regression here chooses its penalty by: one fit per `l2`
 * candidate, the highest validation accuracy (P > 0.5) wins, the earliest on ties; without
 * validation rows only `l2 = 1` (or the first candidate when 1 is not one) is fitted.
 * `fit(l2)` fits a model; `validation.proba(model)` gives its validation probabilities.
 */
export function chooseL2<M>(
  grid: readonly number[],
  fit: (l2: number) => M,
  validation?: { proba: (model: M) => Float32Array; y: Labels },
): L2Choice<M> {
  if (grid.length === 0) throw new Error("l2 needs at least one candidate");
  const candidates = validation ? [...grid] : [grid.includes(1) ? 1 : grid[0]];
  const validationAccuracy: number[] = [];
  let best: { l2: number; model: M; accuracy: number } | undefined;
  for (const l2 of candidates) {
    const model = fit(l2);
    let accuracy = 0;
    if (validation) {
      accuracy = evaluateBinary(validation.y, validation.proba(model)).accuracy;
      validationAccuracy.push(accuracy);
    }
    if (!best || accuracy > best.accuracy) best = { l2, model, accuracy };
  }
  return { model: best!.model, l2: best!.l2, candidates, validationAccuracy };
}
