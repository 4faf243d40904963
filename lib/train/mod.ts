/**
 * Stage 3b (PAPER.md §3): train the trainable part of the paper's image classifiers on top
 * of a frozen backbone slice, fast enough on two cores.
 *
 * - {@link ImageClassifier}: the estimator (Adam with separate conv-stack and head learning
 *   rates, batch 32, seeded shuffling and dropout, per-epoch history, early stopping,
 *   crash-safe per-epoch checkpoints that resume to the same result, progress bar with
 *   batches/s and ETA). Its hyper-parameters are {@link TrainingOptions}, defaults
 *   {@link TRAINING_DEFAULTS} (the project's recommended settings); {@link PAPER_TRAINING}
 *   holds the paper's.
 * - {@link TrainableNetwork}: 4 × [Conv, ReLU, BatchNorm] (+ dropout) → adaptive average
 *   pool → MLP → 2 logits, Xavier-initialised; {@link PAPER_ARCHITECTURES} holds the five
 *   variants of the official code.
 * - Inputs ({@link FeatureSource}): cached frozen features ({@link cachedFeatureSource},
 *   the fast path) or images through the paper's input pipeline and the frozen backbone per
 *   batch ({@link backboneFeatureSource}, end to end).
 * - {@link fitFeatureStandardization}: the inputs' training mean map and per-channel spread,
 *   subtracted and divided before the conv stack (default on; off is the paper), because
 *   DeepInsight images of one data set share most of their pixels.
 * - Data-parallel training (`workers: 2` in {@link ImageClassifier}): one replica per Deno
 *   worker, whole-batch BatchNorm and summed gradients through shared memory
 *   ({@link Collective}).
 * - {@link registerTrainingKernels}: the wasm backend's missing/slow gradient kernels
 *   (`Conv2DBackpropFilter`, `Conv2DBackpropInput`, transposed `BatchMatMul`) expressed
 *   through its fast XNNPACK kernels.
 *
 * ```ts
 * import { ready } from "../tf.ts";
 * import { cachedFeatureSource, ImageClassifier } from "./mod.ts";
 * await ready();
 * const clf = new ImageClassifier({ architecture: "vgg16", epochs: 15, checkpointDir: "data/ck/vgg" });
 * await clf.fit(cachedFeatureSource(trainFeatures), yTrain, { x: valFeatures, y: yVal });
 * const p = clf.predictProba(testFeatures); // P(positive) per row
 * ```
 *
 * @module
 */
export {
  architectureFor,
  getArchitecture,
  PAPER_ARCHITECTURES,
  resolvePadding,
} from "./architecture.ts";
export type { ArchitectureSpec, ConvStackSpec, HeadSpec } from "./architecture.ts";
export {
  adaptiveAvgPool,
  adaptivePoolMatrix,
  batchNormTraining,
  TrainableNetwork,
} from "./network.ts";
export type {
  ApplyOptions,
  BatchNormStats,
  NamedArrays,
  Param,
  ParamGroupName,
} from "./network.ts";
export { fitFeatureStandardization } from "./standardize.ts";
export type { FeatureStandardization } from "./standardize.ts";
export { Adam } from "./adam.ts";
export type { AdamOptions, ParamGroup } from "./adam.ts";
export { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
export type { Checkpoint } from "./checkpoint.ts";
export {
  backboneFeatureSource,
  cachedFeatureSource,
  imageStats,
  paperInput,
  sharedCopy,
  sourceFromShared,
  zNormalizeImages,
} from "./sources.ts";
export type {
  BackboneSourceOptions,
  FeatureSource,
  FrozenBackbone,
  ImageStats,
  SharedSourceSpec,
} from "./sources.ts";
export { deriveSeed, ImageClassifier, PAPER_TRAINING, TRAINING_DEFAULTS } from "./classifier.ts";
export type {
  ClassifierConfig,
  ClassifierInput,
  EpochRecord,
  ImageClassifierOptions,
  LossAccuracy,
  TrainingOptions,
} from "./classifier.ts";
export { registerTrainingKernels } from "./kernels.ts";
export { Collective, createCollectiveBuffers } from "./collective.ts";
export type { CollectiveBuffers } from "./collective.ts";
export { fitDataParallel } from "./parallel.ts";
export type { RankResult, SerializableClassifierOptions } from "./parallel.ts";
