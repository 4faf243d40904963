/**
 * A run's trainings as plain, serialisable jobs, so each runs in this thread or in a Deno
 * worker (one per core; see `pool.ts`): logistic regression and the MLP on the embeddings,
 * and image classifiers on either the vision stage's feature caches (the backbone ran once
 * per image) or the images themselves with the backbone run per batch (end to end). A job
 * carries its classifier options whole (`TrainingOptions`, `MLPClassifierOptions`); its
 * result carries the history, the predicted probabilities and the fitted model as plain
 * values ({@link TrainedModel}: what `predict.ts` needs to predict new texts), no framework
 * objects.
 *
 * @module
 */
import { TfidfLogistic } from "../eval/tfidf.ts";
import type { TfidfLogisticParameters, TfidfVectorizerOptions } from "../eval/tfidf.ts";
import { chooseL2, LogisticRegression } from "../eval/logistic.ts";
import { MLPClassifier } from "../eval/mlp.ts";
import type { LogisticParameters } from "../eval/logistic.ts";
import type { MLPClassifierOptions, MLPEpochRecord, MLPState } from "../eval/mlp.ts";
import type { Progress } from "../progress.ts";
import type {
  ArchitectureSpec,
  EpochRecord,
  FeatureSource,
  ImageStats,
  TrainingOptions,
} from "../train/mod.ts";
import type { ImageClassifierState } from "../train/classifier.ts";
import { backboneFeatureSource, cachedFeatureSource, ImageClassifier } from "../train/mod.ts";
import type { ImageBatch, Labels, Matrix } from "../types.ts";
import { FeatureCache, loadBackbone, randomlyInitialisedBackbone } from "../vision/mod.ts";

/** Labels of the train, validation (when there is one) and test rows. */
export interface JobLabels {
  /** Training labels. */
  train: Labels;
  /** Validation labels (absent: no validation set). */
  validation?: Labels;
  /** Test labels. */
  test: Labels;
}

/** Logistic regression on the embeddings, `l2` chosen on the validation rows. */
export interface LogisticJob {
  /** Discriminant. */
  kind: "logistic";
  /** Job name. */
  id: string;
  /** Embeddings of each part. */
  x: { train: Matrix; validation?: Matrix; test: Matrix };
  /** Labels of each part. */
  labels: JobLabels;
  /** Candidate penalties. */
  l2: number[];
}

/** The MLP on the embeddings. */
export interface MlpJob {
  /** Discriminant. */
  kind: "mlp";
  /** Job name. */
  id: string;
  /** Embeddings of each part. */
  x: { train: Matrix; validation?: Matrix; test: Matrix };
  /** Labels of each part. */
  labels: JobLabels;
  /** The estimator's options, whole (seed included). */
  options: MLPClassifierOptions;
}

/** Where an image job's inputs come from. */
export type ImageJobInputs =
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
    /** Per-batch z-normalisation (the paper), fixed statistics, or the backbone's own scaling. */
    normalization: "batch" | "imagenet" | ImageStats;
  };

/** An image classifier's training. */
export interface ImageJob {
  /** Discriminant. */
  kind: "image";
  /** Job name. */
  id: string;
  /** The inputs. */
  inputs: ImageJobInputs;
  /** Must match for a checkpoint to be resumed (a key of the inputs). */
  runKey: string;
  /** Labels of each part. */
  labels: JobLabels;
  /** The trainable part. */
  architecture: ArchitectureSpec;
  /** The training options, whole (seed included). */
  training: TrainingOptions;
  /** Folder for per-epoch checkpoints (resumed when present). */
  checkpointDir: string;
}

/** Logistic regression on TF-IDF of the raw texts. */
export interface TfidfJob {
  /** Discriminant. */
  kind: "tfidf";
  /** Job name. */
  id: string;
  /** The texts of each part. */
  texts: { train: string[]; validation?: string[]; test: string[] };
  /** Labels of each part. */
  labels: JobLabels;
  /** `l2` candidates and vectorizer options. */
  options: { l2: number[]; vectorizer: TfidfVectorizerOptions };
}

/** Any job. */
export type Job = LogisticJob | MlpJob | TfidfJob | ImageJob;

/**
 * A fitted model as plain, structured-clonable values (it crosses from a worker in the
 * job's result): logistic regression's weights and intercept, the MLP's standardisation and
 * layers (kept epoch), or the image classifier's selected-epoch weights with its
 * architecture and feature standardisation. `results.ts` stores it beside the job.
 */
export type TrainedModel =
  | { family: "logistic"; parameters: LogisticParameters }
  | { family: "mlp"; state: MLPState }
  | { family: "tfidf"; parameters: TfidfLogisticParameters }
  | { family: "image"; state: ImageClassifierState };

/** What a finished job returns. */
export interface JobResult {
  /** The job's name. */
  id: string;
  /** Per-epoch records (trained models). */
  history?: EpochRecord[] | MLPEpochRecord[];
  /** The epoch whose weights were kept. */
  selectedEpoch?: number;
  /** Epochs trained (fewer than the maximum when early stopping ended the fit). */
  epochsRun?: number;
  /** Whether early stopping ended the fit. */
  stoppedEarly?: boolean;
  /** Epochs taken from a checkpoint instead of trained now. */
  resumedEpochs?: number;
  /** Trainable parameters. */
  trainableParams: number;
  /** Seconds reading the inputs, fitting, and predicting validation and test rows. */
  timings: { loadSeconds: number; fitSeconds: number; predictSeconds: number };
  /** Model-specific facts (chosen `l2`; the conv stack's padding and input shape). */
  details: Record<string, unknown>;
  /** P(positive) per validation row (when there is a validation set). */
  validationProba?: Float32Array;
  /** P(positive) per test row. */
  testProba: Float32Array;
  /** The fitted model (absent only in results made before models were kept). */
  model?: TrainedModel;
}

/** Callbacks of a job. */
export interface JobCallbacks {
  /** Batches done / total. */
  onProgress?: (p: Progress) => void;
  /** An epoch finished. */
  onEpoch?: (record: EpochRecord | MLPEpochRecord) => void;
  /** Stops between batches. */
  signal?: AbortSignal;
}

function runLogistic(job: LogisticJob): JobResult {
  const t0 = performance.now();
  const { x, labels } = job;
  const hasValidation = x.validation !== undefined && labels.validation !== undefined;
  const best = chooseL2(
    job.l2,
    (l2) => new LogisticRegression({ l2, standardize: true }).fit(x.train, labels.train),
    hasValidation
      ? { proba: (model) => model.predictProba(x.validation!), y: labels.validation! }
      : undefined,
  );
  const fitSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const validationProba = hasValidation ? best.model.predictProba(x.validation!) : undefined;
  const testProba = best.model.predictProba(x.test);
  return {
    id: job.id,
    trainableParams: x.train.shape[1] + 1,
    timings: { loadSeconds: 0, fitSeconds, predictSeconds: (performance.now() - t1) / 1000 },
    details: { l2: best.l2, candidates: best.candidates },
    validationProba,
    testProba,
    model: { family: "logistic", parameters: best.model.parameters() },
  };
}

function runTfidf(job: TfidfJob): JobResult {
  const t0 = performance.now();
  const { texts, labels } = job;
  const validation = texts.validation && labels.validation
    ? { texts: texts.validation, labels: labels.validation }
    : undefined;
  const model = new TfidfLogistic({ l2: job.options.l2, vectorizer: job.options.vectorizer })
    .fit(texts.train, labels.train, { validation });
  const fitSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const validationProba = validation ? model.predictProba(validation.texts) : undefined;
  const testProba = model.predictProba(texts.test);
  return {
    id: job.id,
    trainableParams: model.vectorizer_!.terms_!.length + 1,
    timings: { loadSeconds: 0, fitSeconds, predictSeconds: (performance.now() - t1) / 1000 },
    details: {
      l2: model.l2_,
      candidates: model.candidates_,
      vocabulary: model.vectorizer_!.terms_!.length,
    },
    validationProba,
    testProba,
    model: { family: "tfidf", parameters: model.parameters() },
  };
}

function runMlp(job: MlpJob, callbacks: JobCallbacks): JobResult {
  const { x, labels } = job;
  const mlp = new MLPClassifier(job.options);
  try {
    const validation = x.validation && labels.validation
      ? { x: x.validation, y: labels.validation }
      : undefined;
    mlp.fit(x.train, labels.train, validation);
    for (const record of mlp.history_) callbacks.onEpoch?.(record);
    const t1 = performance.now();
    const validationProba = validation ? mlp.predictProba(validation.x) : undefined;
    const testProba = mlp.predictProba(x.test);
    return {
      id: job.id,
      history: mlp.history_,
      selectedEpoch: mlp.selectedEpoch_,
      epochsRun: mlp.history_.length,
      trainableParams: mlp.countParams(),
      timings: {
        loadSeconds: 0,
        fitSeconds: mlp.fitSeconds_,
        predictSeconds: (performance.now() - t1) / 1000,
      },
      details: {},
      validationProba,
      testProba,
      model: { family: "mlp", state: mlp.getState() },
    };
  } finally {
    mlp.dispose();
  }
}

async function openImageInputs(
  inputs: ImageJobInputs,
): Promise<(part: "train" | "validation" | "test") => Promise<FeatureSource | undefined>> {
  if (inputs.kind === "cache") {
    return async (part) => {
      const dir = inputs[part];
      return dir ? cachedFeatureSource(await (await FeatureCache.open(dir)).readAll()) : undefined;
    };
  }
  const backbone = inputs.weights === "random"
    ? await randomlyInitialisedBackbone(inputs.backbone, inputs.randomSeed)
    : await loadBackbone(inputs.backbone);
  // deno-lint-ignore require-await
  return async (part) => {
    const images = inputs[part];
    return images
      ? backboneFeatureSource(images, backbone, {
        upsample: inputs.upsample,
        normalization: inputs.normalization,
      })
      : undefined;
  };
}

async function runImage(job: ImageJob, callbacks: JobCallbacks): Promise<JobResult> {
  const t0 = performance.now();
  const open = await openImageInputs(job.inputs);
  const train = (await open("train"))!;
  const validation = await open("validation");
  const loadSeconds = (performance.now() - t0) / 1000;
  const clf = new ImageClassifier({
    ...job.training,
    architecture: job.architecture,
    checkpointDir: job.checkpointDir,
    runKey: job.runKey,
    label: job.id,
    progressBar: false,
    onProgress: callbacks.onProgress,
    onEpoch: callbacks.onEpoch,
    signal: callbacks.signal,
  });
  try {
    const yValidation = job.labels.validation;
    await clf.fit(
      train,
      job.labels.train,
      validation && yValidation ? { x: validation, y: yValidation } : undefined,
    );
    const t1 = performance.now();
    const validationProba = validation ? clf.predictProba(validation) : undefined;
    const validationSeconds = (performance.now() - t1) / 1000;
    const test = (await open("test"))!;
    const t2 = performance.now();
    const testProba = clf.predictProba(test);
    const network = clf.network_!;
    return {
      id: job.id,
      history: clf.history_,
      selectedEpoch: clf.selectedEpoch_ ?? clf.history_.length,
      epochsRun: clf.history_.length,
      stoppedEarly: clf.stoppedEarly_,
      resumedEpochs: clf.resumedEpochs_,
      trainableParams: network.countParams(),
      timings: {
        loadSeconds,
        fitSeconds: clf.fitSeconds_,
        predictSeconds: validationSeconds + (performance.now() - t2) / 1000,
      },
      details: { padding: network.padding, featureShape: network.inputShape },
      validationProba,
      testProba,
      model: { family: "image", state: clf.exportState() },
    };
  } finally {
    clf.dispose();
  }
}

/** Runs a job in this thread. */
export async function runJob(job: Job, callbacks: JobCallbacks = {}): Promise<JobResult> {
  switch (job.kind) {
    case "logistic":
      return runLogistic(job);
    case "mlp":
      return runMlp(job, callbacks);
    case "tfidf":
      return runTfidf(job);
    case "image":
      return await runImage(job, callbacks);
  }
}

/**
 * Work units of a job for the run's progress bar: an image job's training batches at most
 * (its progress total); a baseline counts as one unit, done when it finishes.
 */
export function jobUnits(job: Job): number {
  if (job.kind !== "image") return 1;
  return Math.ceil(job.labels.train.length / job.training.batchSize) * job.training.epochs;
}
