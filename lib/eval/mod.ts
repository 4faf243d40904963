/**
 * Evaluation (PAPER.md §4–6): metrics computed afresh at every call, the baselines on the
 * same embeddings (logistic regression, a small MLP), the two ablations (pixels permuted,
 * randomly initialised backbone), and the whole experiment as one cached, resumable call.
 *
 * ```ts
 * import { formatResultsSummary, runExperiment } from "./lib/eval/mod.ts";
 * const results = await runExperiment({ name: "use-lite-5k", data: { trainSize: 5000, testSize: 5000 } });
 * console.log(formatResultsSummary(results));
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
export { LogisticRegression } from "./logistic.ts";
export type { LogisticRegressionOptions } from "./logistic.ts";
export { MLPClassifier } from "./mlp.ts";
export type { MLPClassifierOptions, MLPEpochRecord } from "./mlp.ts";
export { permutePixels, pixelPermutation, randomlyInitialisedBackbone } from "./ablations.ts";
export { runTrainJob } from "./train_job.ts";
export type { TrainJob, TrainJobResult } from "./train_job.ts";
export { runTrainJobs } from "./pool.ts";
export type { TrainingPoolCallbacks } from "./pool.ts";
export { prepareInputs, resolveExperimentConfig, runExperiment } from "./experiment.ts";
export type {
  ExperimentConfig,
  ExperimentInputs,
  ExperimentProgress,
  ExperimentResults,
  ModelResult,
  ParamCounts,
  ResolvedExperimentConfig,
  RunExperimentOptions,
} from "./experiment.ts";
export { formatResultsSummary, formatResultsTable, RESULT_COLUMNS, resultRow } from "./report.ts";
export { describeFindings } from "./findings.ts";
