/**
 * Evaluation (PAPER.md §4–6): metrics computed afresh at every call, statistics over seeds
 * and paired comparisons, and the baseline estimators on the same embeddings (logistic
 * regression, a small MLP). The experiment that uses them lives in `lib/experiment`.
 *
 * ```ts
 * import { evaluateBinary } from "./lib/eval/mod.ts";
 * const m = evaluateBinary(Uint8Array.of(0, 1, 1), [0.2, 0.7, 0.4]);
 * console.log(m.accuracy); // 0.666…
 * ```
 *
 * @module
 */
export {
  binomialTwoSided,
  confusionMatrix,
  evaluateBinary,
  mcnemarTest,
  ratesOf,
  rocAuc,
  wilsonInterval,
} from "./metrics.ts";
export type { BinaryMetrics, ConfusionMatrix, McNemarResult } from "./metrics.ts";
export {
  contrastBootstrap,
  correctness,
  holmAdjust,
  pairedBootstrap,
  studentTQuantile,
  summarizeSeeds,
} from "./stats.ts";
export type {
  ContrastTerm,
  PairedBootstrapOptions,
  PairedBootstrapResult,
  SeedSummary,
} from "./stats.ts";
export { LogisticRegression } from "./logistic.ts";
export type { LogisticRegressionOptions } from "./logistic.ts";
export { MLP_DEFAULTS, MLPClassifier } from "./mlp.ts";
export type { MLPClassifierOptions, MLPEpochRecord } from "./mlp.ts";
export {
  checkCsr,
  fitL2Grid,
  L2_CANDIDATES,
  SPARSE_LOGISTIC_DEFAULTS,
  SparseLogisticRegression,
} from "./sparse_logistic.ts";
export type {
  CsrMatrix,
  L2GridOptions,
  L2GridResult,
  SparseLogisticParameters,
  SparseLogisticRegressionOptions,
} from "./sparse_logistic.ts";
export {
  compareCodePoints,
  TFIDF_DEFAULTS,
  TfidfLogistic,
  TfidfVectorizer,
  tokenize,
  wordNgrams,
} from "./tfidf.ts";
export type {
  DocumentFrequency,
  TfidfLogisticOptions,
  TfidfLogisticParameters,
  TfidfVectorizerOptions,
  TfidfVectorizerParameters,
} from "./tfidf.ts";
