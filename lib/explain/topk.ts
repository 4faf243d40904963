/**
 * Does the attribution mean something? Keep the k features a ranking puts first, fit the
 * project's logistic regression on only those, and measure its accuracy on held-out rows,
 * for a list of k — a "remove and retrain"-style check in its simplest, keep-only form.
 * Three rankings are compared:
 *
 * - `cam`: the Grad-CAM importance of each feature (through the layout, `features.ts`);
 * - `coefficient`: logistic regression's own |coefficient| on all features, fitted on the
 *   fitting rows (in the standardised space when the regression standardises, so that the
 *   penalty and the ranking see the same scale);
 * - `random`: k features drawn at random, several seeded draws (mean, standard deviation,
 *   min, max).
 *
 * Rows are explicit: the importance must come from `"train"` or `"validation"` rows, the
 * regression is fitted on `"train"` or `"validation"` rows, and accuracy is measured on other
 * rows than either (e.g. `"test"`). Choosing features on the rows that score them would
 * overstate the ranking, so those cases are refused.
 *
 * @module
 */
import { LogisticRegression, type LogisticRegressionOptions } from "../eval/logistic.ts";
import { Random } from "../random.ts";
import type { Labels, Matrix } from "../types.ts";
import { type FeatureImportance, rankFeatures } from "./features.ts";
import { checkRows, type RowSet } from "./gradcam.ts";

/** Rows of embeddings `[n, features]` with their labels and which split they are. */
export interface LabelledRows {
  /** `[n, features]`, the features the layout placed (same order as its coords). */
  x: Matrix;
  /** 0/1 labels, one per row. */
  y: Labels;
  /** Which rows these are. */
  rows: RowSet;
}

/** Options of {@link topKCurve}. */
export interface TopKOptions {
  /** The k values (integers from 1 to the feature count), e.g. `[10, 50, 100, 500]`. */
  ks: readonly number[];
  /** Random draws per k (default 5). */
  randomDraws?: number;
  /** Seed of the random draws (default 1). */
  seed?: number;
  /** Options of every logistic regression fitted (default `{ standardize: true }`, the baseline's). */
  logistic?: LogisticRegressionOptions;
}

const TOPK_DEFAULTS = { randomDraws: 5, seed: 1, logistic: { standardize: true } } as const;

/** Accuracy over k of each ranking (see the module doc); arrays are indexed like `ks`. */
export interface TopKCurve {
  /** The k values. */
  ks: number[];
  /** Accuracy with the top-k features by Grad-CAM importance. */
  cam: number[];
  /** Accuracy with the top-k features by logistic regression's |coefficient|. */
  coefficient: number[];
  /** Accuracy with k random features. */
  random: {
    /** Mean over the draws. */
    mean: number[];
    /** Standard deviation over the draws (population; 0 with one draw). */
    std: number[];
    /** Lowest draw. */
    min: number[];
    /** Highest draw. */
    max: number[];
    /** Every draw: `draws[d][i]` is draw `d` at `ks[i]`. */
    draws: number[][];
  };
  /** Accuracy with every feature (the reference the curves approach). */
  allFeatures: number;
  /** Rows the importance came from. */
  importanceRows: RowSet;
  /** Rows the regressions were fitted on. */
  fitRows: RowSet;
  /** Rows the accuracies were measured on. */
  evaluationRows: RowSet;
  /** Random draws per k. */
  randomDraws: number;
  /** Seed of the draws. */
  seed: number;
}

/** The columns `columns` of `x`, in that order. */
export function selectColumns(x: Matrix, columns: ArrayLike<number>): Matrix {
  const [n, d] = x.shape;
  const k = columns.length;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const row = i * d, o = i * k;
    for (let j = 0; j < k; j++) out[o + j] = x.data[row + columns[j]];
  }
  return { data: out, shape: [n, k] };
}

function checkInputs(
  importance: FeatureImportance,
  fit: LabelledRows,
  evaluation: LabelledRows,
  ks: readonly number[],
): void {
  checkRows(importance.rows);
  checkRows(fit.rows);
  checkRows(evaluation.rows);
  if (importance.rows === "test" || importance.rows === "unseen") {
    throw new Error(
      `topKCurve: the importance was computed on ${importance.rows} rows; features are chosen ` +
        `on the run's own training or validation rows only (chosen on test rows they overstate ` +
        `their value). Compute the CAM on { rows: "train" } or "validation" rows.`,
    );
  }
  if (fit.rows === "test" || fit.rows === "unseen") {
    throw new Error(
      `topKCurve: the regressions would be fitted on ${fit.rows} rows; pass training rows as ` +
        "`fit` and the test rows as `evaluation`.",
    );
  }
  if (evaluation.rows === importance.rows || evaluation.rows === fit.rows) {
    throw new Error(
      `topKCurve: accuracy would be measured on the "${evaluation.rows}" rows that also ` +
        `chose the features or fitted the regressions; evaluate on other rows (e.g. test).`,
    );
  }
  const d = importance.values.length;
  for (const [name, rows] of [["fit", fit], ["evaluation", evaluation]] as const) {
    if (rows.x.shape[1] !== d) {
      throw new Error(
        `topKCurve: ${name}.x has ${rows.x.shape[1]} features, the importance ${d}; ` +
          "use the embeddings the layout was fitted on.",
      );
    }
    if (rows.y.length !== rows.x.shape[0]) {
      throw new Error(`topKCurve: ${name} has ${rows.x.shape[0]} rows but ${rows.y.length} labels`);
    }
  }
  if (ks.length === 0 || !ks.every((k) => Number.isInteger(k) && k >= 1 && k <= d)) {
    throw new Error(`topKCurve: ks must be integers from 1 to ${d}, got [${ks.join(", ")}]`);
  }
}

/** Standard deviation (population) of each column of `x`. */
function columnStd(x: Matrix): Float64Array {
  const [n, d] = x.shape;
  const mean = new Float64Array(d), sq = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x.data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) sq[j] += (x.data[i * d + j] - mean[j]) ** 2;
  }
  return sq.map((v) => Math.sqrt(v / n));
}

/**
 * The top-k check of the module doc: accuracies on `evaluation` rows of logistic regressions
 * fitted on `fit` rows with the top-k features of each ranking, for every k of `options.ks`.
 */
export function topKCurve(
  importance: FeatureImportance,
  fit: LabelledRows,
  evaluation: LabelledRows,
  options: TopKOptions,
): TopKCurve {
  const ks = [...options.ks];
  checkInputs(importance, fit, evaluation, ks);
  const randomDraws = options.randomDraws ?? TOPK_DEFAULTS.randomDraws;
  const seed = options.seed ?? TOPK_DEFAULTS.seed;
  const logistic = options.logistic ?? TOPK_DEFAULTS.logistic;
  if (!(Number.isInteger(randomDraws) && randomDraws >= 1)) {
    throw new Error(`topKCurve: randomDraws must be an integer ≥ 1, got ${randomDraws}`);
  }
  const d = importance.values.length;
  const accuracy = (columns: ArrayLike<number>): number =>
    new LogisticRegression(logistic)
      .fit(selectColumns(fit.x, columns), fit.y)
      .score(selectColumns(evaluation.x, columns), evaluation.y);

  const full = new LogisticRegression(logistic).fit(fit.x, fit.y);
  const allFeatures = full.score(evaluation.x, evaluation.y);
  const scale = logistic.standardize ? columnStd(fit.x) : new Float64Array(d).fill(1);
  const coefScores = Float64Array.from(full.coef_!, (w, j) => Math.abs(w) * scale[j]);
  const byCam = rankFeatures(importance.values);
  const byCoef = rankFeatures(coefScores);

  const random = new Random(seed);
  const draws = Array.from({ length: randomDraws }, () => random.permutation(d));
  const drawAcc = draws.map((order) => ks.map((k) => accuracy(order.slice(0, k))));
  const stats = ks.map((_, i) => {
    const values = drawAcc.map((row) => row[i]);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
    return { mean, std, min: Math.min(...values), max: Math.max(...values) };
  });
  return {
    ks,
    cam: ks.map((k) => accuracy(byCam.subarray(0, k))),
    coefficient: ks.map((k) => accuracy(byCoef.subarray(0, k))),
    random: {
      mean: stats.map((s) => s.mean),
      std: stats.map((s) => s.std),
      min: stats.map((s) => s.min),
      max: stats.map((s) => s.max),
      draws: drawAcc,
    },
    allFeatures,
    importanceRows: importance.rows,
    fitRows: fit.rows,
    evaluationRows: evaluation.rows,
    randomDraws,
    seed,
  };
}
