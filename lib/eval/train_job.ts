/**
 * One image-classifier training as a plain, serialisable job: features are read from the
 * vision stage's on-disk feature caches, so the job can run in this thread or in a Deno
 * worker (one per core; see `runTrainJobs` in `pool.ts`). The result carries the history and the
 * predicted probabilities on the validation and test rows, no framework objects.
 *
 * @module
 */
import type { ArchitectureSpec, EpochRecord } from "../train/mod.ts";
import { ImageClassifier } from "../train/mod.ts";
import type { Progress } from "../progress.ts";
import { FeatureCache } from "../vision/mod.ts";

/** A training to run (everything serialisable, so it can be posted to a worker). */
export interface TrainJob {
  /** Unique name, e.g. `vgg19` or `ablation-permuted-vgg19`. */
  id: string;
  /** Feature cache folders (from `cacheFeatures`) of the train, validation and test rows. */
  features: { train: string; validation?: string; test: string };
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
  /** Seconds reading the features from disk. */
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
  const read = async (dir: string) => (await FeatureCache.open(dir)).readAll();
  const train = await read(job.features.train);
  const validation = job.features.validation ? await read(job.features.validation) : undefined;
  const loadSeconds = (performance.now() - t0) / 1000;
  const clf = new ImageClassifier({
    architecture: job.architecture,
    epochs: job.epochs,
    batchSize: job.batchSize,
    lrConv: job.lrConv,
    lrHead: job.lrHead,
    seed: job.seed,
    checkpointDir: job.checkpointDir,
    runKey: JSON.stringify(job.features),
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
    const test = await read(job.features.test);
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
