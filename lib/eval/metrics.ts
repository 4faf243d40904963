/**
 * Binary classification metrics, computed from scratch at every call (no running totals):
 * confusion matrix, accuracy with a Wilson score 95% interval, precision, recall, F1 and
 * ROC-AUC (the Mann–Whitney statistic with mid-ranks for tied scores).
 *
 * @module
 */
import type { Labels } from "../types.ts";

/** Counts of a binary confusion matrix (label 1 is the positive class). */
export interface ConfusionMatrix {
  /** True negatives: label 0, predicted 0. */
  tn: number;
  /** False positives: label 0, predicted 1. */
  fp: number;
  /** False negatives: label 1, predicted 0. */
  fn: number;
  /** True positives: label 1, predicted 1. */
  tp: number;
}

/** Every metric of one model on one data set. */
export interface BinaryMetrics {
  /** Number of examples. */
  n: number;
  /** Fraction correct. */
  accuracy: number;
  /** Wilson score 95% confidence interval of the accuracy. */
  accuracyCI95: [number, number];
  /** tp / (tp + fp) (0 when nothing is predicted positive). */
  precision: number;
  /** tp / (tp + fn) (0 when there are no positives). */
  recall: number;
  /** Harmonic mean of precision and recall (0 when both are 0). */
  f1: number;
  /** Area under the ROC curve of the scores (NaN when only one class is present). */
  rocAuc: number;
  /** The confusion matrix at the decision threshold. */
  confusion: ConfusionMatrix;
}

function checkLengths(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length) {
    throw new Error(`${what}: ${a.length} labels but ${b.length} predictions`);
  }
}

/** The confusion matrix of predicted labels `yPred` against true labels `yTrue` (0/1). */
export function confusionMatrix(yTrue: Labels, yPred: ArrayLike<number>): ConfusionMatrix {
  checkLengths(yTrue, yPred, "confusionMatrix");
  const m: ConfusionMatrix = { tn: 0, fp: 0, fn: 0, tp: 0 };
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i], p = yPred[i];
    if ((t !== 0 && t !== 1) || (p !== 0 && p !== 1)) {
      throw new Error(`confusionMatrix: labels must be 0 or 1 (row ${i}: ${t}, ${p})`);
    }
    if (t === 1) p === 1 ? m.tp++ : m.fn++;
    else p === 1 ? m.fp++ : m.tn++;
  }
  return m;
}

/** Accuracy, precision, recall and F1 of a confusion matrix. */
export function ratesOf(m: ConfusionMatrix): {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
} {
  const n = m.tn + m.fp + m.fn + m.tp;
  const precision = m.tp + m.fp > 0 ? m.tp / (m.tp + m.fp) : 0;
  const recall = m.tp + m.fn > 0 ? m.tp / (m.tp + m.fn) : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { accuracy: n > 0 ? (m.tp + m.tn) / n : NaN, precision, recall, f1 };
}

/**
 * Wilson score interval for a binomial proportion: `successes` of `n`, at the normal
 * quantile `z` (default 1.959964 for 95%).
 */
export function wilsonInterval(successes: number, n: number, z = 1.959963984540054): [
  number,
  number,
] {
  if (!(n > 0)) return [NaN, NaN];
  if (successes < 0 || successes > n) {
    throw new Error(`wilsonInterval: ${successes} successes of ${n}`);
  }
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * ROC-AUC of `scores` (higher means more likely positive) against `yTrue`: the probability
 * that a random positive scores above a random negative, ties counting one half. NaN when
 * only one class is present.
 */
export function rocAuc(yTrue: Labels, scores: ArrayLike<number>): number {
  checkLengths(yTrue, scores, "rocAuc");
  const n = yTrue.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positives = 0, rankSum = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const midRank = (i + j) / 2 + 1; // 1-based mid-rank of the tie group
    for (let k = i; k <= j; k++) {
      if (yTrue[order[k]] === 1) {
        positives++;
        rankSum += midRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * Every metric of probabilities `scores` of the positive class against `yTrue`, labels
 * predicted as `score > threshold` (default 0.5).
 */
export function evaluateBinary(
  yTrue: Labels,
  scores: ArrayLike<number>,
  threshold = 0.5,
): BinaryMetrics {
  checkLengths(yTrue, scores, "evaluateBinary");
  const predicted = new Uint8Array(scores.length);
  for (let i = 0; i < scores.length; i++) predicted[i] = scores[i] > threshold ? 1 : 0;
  const confusion = confusionMatrix(yTrue, predicted);
  const rates = ratesOf(confusion);
  return {
    n: yTrue.length,
    ...rates,
    accuracyCI95: wilsonInterval(confusion.tp + confusion.tn, yTrue.length),
    rocAuc: rocAuc(yTrue, scores),
    confusion,
  };
}

/** McNemar's exact test of two classifiers on the same rows. */
export interface McNemarResult {
  /** Rows only the first classifier gets right. */
  onlyFirstCorrect: number;
  /** Rows only the second classifier gets right. */
  onlySecondCorrect: number;
  /** Two-sided exact binomial p-value of "both are equally accurate". */
  pValue: number;
}

/**
 * McNemar's exact test comparing two classifiers' probabilities of the positive class
 * (thresholded at 0.5) on the same rows: a two-sided binomial test on the discordant rows.
 */
export function mcnemarTest(
  yTrue: Labels,
  first: ArrayLike<number>,
  second: ArrayLike<number>,
): McNemarResult {
  checkLengths(yTrue, first, "mcnemarTest");
  checkLengths(yTrue, second, "mcnemarTest");
  let b = 0, c = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const okA = (first[i] > 0.5 ? 1 : 0) === yTrue[i];
    const okB = (second[i] > 0.5 ? 1 : 0) === yTrue[i];
    if (okA && !okB) b++;
    else if (okB && !okA) c++;
  }
  return { onlyFirstCorrect: b, onlySecondCorrect: c, pValue: binomialTwoSided(b, b + c) };
}

/** Two-sided exact binomial p-value of `k` successes in `n` trials at p = 1/2. */
export function binomialTwoSided(k: number, n: number): number {
  if (n === 0) return 1;
  const m = Math.min(k, n - k);
  // log C(n, i) − n log 2, summed in a numerically stable way
  let logTerm = -n * Math.LN2; // i = 0
  let tail = Math.exp(logTerm);
  for (let i = 1; i <= m; i++) {
    logTerm += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logTerm);
  }
  return Math.min(1, 2 * tail);
}
