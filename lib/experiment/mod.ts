/**
 * The experiment: one composition root that plans the models of a config, runs them as jobs
 * (seeds, sweeps, caches, workers), aggregates them with paired comparisons and writes the
 * results folder. `deno task reproduce`, the notebooks and the tests all go through
 * {@link loadExperimentConfig} and {@link runExperiment}.
 *
 * ```ts
 * import { loadExperimentConfig, runExperiment, formatResultsSummary } from "./lib/experiment/mod.ts";
 * const cfg = await loadExperimentConfig("quick", { data: { trainSize: 300, testSize: 200 } });
 * const results = await runExperiment(cfg);
 * console.log(formatResultsSummary(results));
 * ```
 *
 * @module
 */
export {
  averagedLayouts,
  CONFIG_SCHEMA_VERSION,
  ConfigError,
  configFrom,
  configPath,
  configSchema,
  differencesFromPaper,
  expandSweep,
  getField,
  loadExperimentConfig,
  mergeConfig,
  paperSettings,
  portableConfig,
  portablePath,
  resolveConfig,
  setField,
  shippedConfigs,
  validateConfig,
} from "./config.ts";
export type {
  ConfigMlpOptions,
  ConfigOverrides,
  ConfigTrainingOptions,
  ConfigTsneOptions,
  ExperimentConfig,
  ResolvedConfig,
  SweepVariant,
} from "./config.ts";
export { loadEncoder, loadSplit, prepareInputs } from "./inputs.ts";
export type { ExperimentInputs, ExperimentProgress, RunOptions } from "./inputs.ts";
export {
  backbonePlans,
  jobName,
  logisticPlans,
  mlpPlans,
  permutedPixelPlans,
  PLAN_BUILDERS,
  planModels,
  randomBackbonePlans,
  unavailableReason,
} from "./plan.ts";
export type { ImageInput, ModelPlan, PlanBase, PlanBuilder } from "./plan.ts";
export { architectureOf, imageJobKey, imagesFor, prepareImageJob } from "./features.ts";
export type { BackboneRecord, ImagePlan } from "./features.ts";
export { jobUnits, runJob } from "./jobs.ts";
export type {
  ImageJob,
  ImageJobInputs,
  Job,
  JobCallbacks,
  JobLabels,
  JobResult,
  LogisticJob,
  MlpJob,
  TrainedModel,
} from "./jobs.ts";
export { runJobs } from "./pool.ts";
export type { FromWorker, PoolCallbacks, ToWorker } from "./pool.ts";
export {
  aggregateModels,
  JOB_STAGE_VERSION,
  jobPath,
  readJob,
  readJobModel,
  storeJob,
} from "./results.ts";
export type {
  Comparison,
  FinishedJob,
  ModelArrayEntry,
  ModelRun,
  ModelSummary,
  StoredJob,
  StoredModelRef,
  VariantResults,
} from "./results.ts";
export { codeVersion, jobKey, runExperiment } from "./run.ts";
export { acquireLock, LockedError } from "./lock.ts";
export type { Lock, LockOwner } from "./lock.ts";
export type { ExperimentOptions, ExperimentResults } from "./run.ts";
export { formatInspection, inspectExperiment } from "./inspect.ts";
export type { InspectedJob, Inspection } from "./inspect.ts";
export {
  formatAblationTable,
  formatResultsSummary,
  formatResultsTable,
  formatSeedTable,
  RESULT_COLUMNS,
  resultRow,
  SEED_COLUMNS,
  seedRow,
} from "./report.ts";
export { bestOnValidation, describeFindings, verdict } from "./findings.ts";
export { experimentNotes } from "./notes.ts";
export { readResults, renderReport, reportMarkdown, writeResults } from "./write.ts";
export type { ReportFigure } from "./write.ts";
export { estimateSeconds, FALLBACK_RATES, readRates } from "./rates.ts";
export type { Rate, Rates } from "./rates.ts";

// Types of other stages that appear in this module's signatures.
export type { Schema } from "./schema.ts";
export type { ArchitectureSpec, EpochRecord, ImageStats, TrainingOptions } from "../train/mod.ts";
export type {
  BinaryMetrics,
  MLPClassifierOptions,
  MLPEpochRecord,
  SeedSummary,
} from "../eval/mod.ts";
export type { ImageBatch, Labels, Matrix } from "../types.ts";
export type { Review } from "../data/mod.ts";
export type { Pooling, TextEncoderModel } from "../embed/mod.ts";
export type { ImageTransformer, TsneOptions } from "../image/mod.ts";
export type { FeatureDtype } from "../vision/mod.ts";
export type { Figure, PngImage } from "../plot/mod.ts";
export type { Progress } from "../progress.ts";
export { compareRuns, verifyRun } from "./verify.ts";
export { loadRun, MissingRunDataError } from "./predict.ts";
export type { LoadedRun, LoadRunOptions, ModelPrediction } from "./predict.ts";
export type { MetricDifference, RunComparison, VerifyOptions } from "./verify.ts";
export {
  accuracyText,
  answerQuestion,
  comparisonRefs,
  loadStudy,
  runStudy,
  STUDIES_DIR,
  studyPath,
} from "./study.ts";
export type {
  ArmModel,
  ArmResults,
  ComparisonSpec,
  CorrectnessTable,
  CurvePoint,
  GapChangeSpec,
  PairSpec,
  Study,
  StudyArmSpec,
  StudyCall,
  StudyComparison,
  StudyOptions,
  StudyQuestionResults,
  StudyQuestionSpec,
  StudyResults,
  StudySpec,
} from "./study.ts";
export {
  answerRows,
  comparisonVerdict,
  jobMakers,
  questionFigures,
  STUDY_ALPHA,
  studyReportMarkdown,
  writeStudyResults,
} from "./study_report.ts";
export type { AnswerRow } from "./study_report.ts";
export {
  aboutSeconds,
  choosePreview,
  commitLayout,
  COMMITTED_LAYOUT_FILE,
  COMMITTED_LAYOUT_FORMAT,
  COMMITTED_LAYOUT_KEY_FILE,
  fullRunOf,
  loadCommittedLayout,
  planPreview,
  PreviewError,
  runPreview,
} from "./preview.ts";
export type {
  CommitLayoutOptions,
  CommittedLayout,
  CommittedLayoutRecord,
  FullRun,
  LoadCommittedLayoutOptions,
  PreviewDecision,
  PreviewInputs,
  PreviewOptions,
  PreviewPlan,
  RunPreviewOptions,
} from "./preview.ts";
export type { LoadedSplit } from "./inputs.ts";
export type { RunLayout } from "./layout.ts";
export type { Maker } from "../provenance.ts";
export type { EmbeddingKey } from "../embed/mod.ts";
export type { DatasetRecord } from "../data/mod.ts";
