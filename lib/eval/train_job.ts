/**
 * One image-classifier training as a plain, serialisable job, so it can run in this thread
 * or in a Deno worker (one per core; see `runTrainJobs` in `pool.ts`). Its inputs are either
 * the vision stage's on-disk feature caches (the backbone ran once per image), or the images
 * themselves with the backbone to run per batch (end to end; no disk, and the paper's
 * per-batch z-normalisation). The result carries the history and the predicted
 * probabilities on the validation and test rows, no framework objects.
 *
 * @module
 */
import type { ArchitectureSpec, EpochRecord, FeatureSource, ImageStats } from "../train/mod.ts";
import { backboneFeatureSource, cachedFeatureSource, ImageClassifier } from "../train/mod.ts";
import type { Progress } from "../progress.ts";
import type { ImageBatch } from "../types.ts";
import { FeatureCache, loadBackbone } from "../vision/mod.ts";
import { randomlyInitialisedBackbone } from "./ablations.ts";

/** Where a job's inputs come from. */
export type TrainJobInputs =
  | {
    /** Feature cache folders (from `cacheFeatures`) of the train, validation and test rows. */
    kind: "cache";
    train: string;
    validation?: string;
    test: string;
  }
  | {
    /** Grayscale images through the frozen backbone for every batch. */
    kind: "images";
    train: ImageBatch;
    validation?: ImageBatch;
    test: ImageBatch;
    /** Registry name of the backbone. */
    backbone: string;
    /** ImageNet weights, or weights drawn at random from `randomSeed`. */
    weights: "imagenet" | "random";
    randomSeed: number;
    /** Nearest upsampling factor. */
    upsample: number;
    /** Per-batch z-normalisation (the paper) or fixed statistics. */
    normalization: "batch" | ImageStats;
  };

/** A training to run (everything serialisable, so it can be posted to a worker). */
export interface TrainJob {
  /** Unique name, e.g. `vgg19` or `ablation-permuted-vgg19`. */
  id: string;
  /** The inputs. */
  inputs: TrainJobInputs;
  /** Must match for a checkpoint to be resumed (e.g. a key of the inputs). */
  runKey: string;
  /** Labels of the same rows. */
  labels: { train: Uint8Array; validation?: Uint8Array; test: Uint8Array };
  /** The trainable part. */
  architecture: ArchitectureSpec;
  /** Epochs, batch size, learning rates, seed. */
  epochs: number;
  batchSize: number;
  lrConv: number;
  lrHead: number;
  seed: number;
  /** Standardise the features before the conv stack (see `ImageClassifierOptions`). */
  standardizeFeatures: boolean;
  /** Folder for per-epoch checkpoints (resumed when present). */
  checkpointDir: string;
}

/** What a finished job returns. */
export interface TrainJobResult {
  /** The job's id. */
  id: string;
  /** Per-epoch loss and accuracy. */
  history: EpochRecord[];
  /** The epoch whose weights were kept. */
  selectedEpoch: number;
  /** Epochs taken from a checkpoint instead of trained now. */
  resumedEpochs: number;
  /** Trainable parameters. */
  trainableParams: number;
  /** Padding the conv stack used for this input size. */
  padding: "valid" | "same";
  /** Input feature map `[h, w, c]`. */
  featureShape: [number, number, number];
  /** Seconds reading the features from disk (or loading the backbone). */
  loadSeconds: number;
  /** Seconds of `fit` (including any resume). */
  fitSeconds: number;
  /** Seconds predicting validation and test rows. */
  predictSeconds: number;
  /** P(positive) per validation row (when there is a validation set). */
  validationProba?: Float32Array;
  /** P(positive) per test row. */
  testProba: Float32Array;
}

/** Runs a job in this thread. `onProgress` gets batches done / total of the job. */
export async function runTrainJob(
  job: TrainJob,
  options: {
    onProgress?: (p: Progress) => void;
    onEpoch?: (r: EpochRecord) => void;
    signal?: AbortSignal;
  } = {},
): Promise<TrainJobResult> {
  const t0 = performance.now();
  const inputs = job.inputs;
  let open: (part: "train" | "validation" | "test") => Promise<FeatureSource | undefined>;
  if (inputs.kind === "cache") {
    open = async (part) => {
      const dir = inputs[part];
      return dir ? cachedFeatureSource(await (await FeatureCache.open(dir)).readAll()) : undefined;
    };
  } else {
    const backbone = inputs.weights === "random"
      ? await randomlyInitialisedBackbone(inputs.backbone, inputs.randomSeed)
      : await loadBackbone(inputs.backbone);
    // deno-lint-ignore require-await
    open = async (part) => {
      const images = inputs[part];
      return images
        ? backboneFeatureSource(images, backbone, {
          upsample: inputs.upsample,
          normalization: inputs.normalization,
        })
        : undefined;
    };
  }
  const train = (await open("train"))!;
  const validation = await open("validation");
  const loadSeconds = (performance.now() - t0) / 1000;
  const clf = new ImageClassifier({
    architecture: job.architecture,
    epochs: job.epochs,
    batchSize: job.batchSize,
    lrConv: job.lrConv,
    lrHead: job.lrHead,
    seed: job.seed,
    standardizeFeatures: job.standardizeFeatures,
    checkpointDir: job.checkpointDir,
    runKey: job.runKey,
    label: job.id,
    progressBar: false,
    onProgress: options.onProgress,
    onEpoch: options.onEpoch,
    signal: options.signal,
  });
  try {
    await clf.fit(
      train,
      job.labels.train,
      validation && job.labels.validation ? { x: validation, y: job.labels.validation } : undefined,
    );
    const t1 = performance.now();
    const validationProba = validation ? clf.predictProba(validation) : undefined;
    const validationSeconds = (performance.now() - t1) / 1000;
    const test = (await open("test"))!;
    const t2 = performance.now();
    const testProba = clf.predictProba(test);
    const predictSeconds = validationSeconds + (performance.now() - t2) / 1000;
    const network = clf.network_!;
    return {
      id: job.id,
      history: clf.history_,
      selectedEpoch: clf.selectedEpoch_ ?? job.epochs,
      resumedEpochs: clf.resumedEpochs_,
      trainableParams: network.countParams(),
      padding: network.padding,
      featureShape: network.inputShape,
      loadSeconds,
      fitSeconds: clf.fitSeconds_,
      predictSeconds,
      validationProba,
      testProba,
    };
  } finally {
    clf.dispose();
  }
}
