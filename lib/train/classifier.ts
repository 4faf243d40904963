/**
 * {@link ImageClassifier}: the trainable part of the paper's models as an estimator. It
 * trains on a {@link FeatureSource} (cached frozen features, or images through the frozen
 * backbone) with Adam (separate learning rates for the conv stack and the head), seeded
 * shuffling and dropout, cross-entropy on 2 logits. Its hyper-parameters are one type,
 * {@link TrainingOptions}, with one set of defaults, {@link TRAINING_DEFAULTS} (the
 * project's recommended settings); {@link PAPER_TRAINING} holds the paper's.
 *
 * - Metrics are computed afresh at every evaluation (the official code's running totals
 *   across epochs are a defect we do not copy). Per epoch: training loss and accuracy (mean
 *   over that epoch's batches, training mode) and validation loss and accuracy (inference
 *   mode), kept in `history_` for plotting.
 * - Early stopping (`patience`, with a validation set): training stops once `patience`
 *   epochs in a row brought no better validation accuracy (ties broken by lower validation
 *   loss); the best epoch's weights are kept as without it, `history_` holds the epochs
 *   actually run and `stoppedEarly_` says whether the rule ended the training.
 * - With a `checkpointDir`, every epoch ends with a checkpoint (weights, BatchNorm
 *   statistics, Adam state, history, best-epoch weights, RNG state). A new `fit` with the
 *   same configuration resumes after the last completed epoch and ends with the same
 *   weights and history as an uninterrupted run (early stopping included: a checkpoint
 *   whose history already meets the stopping rule trains no further): each epoch's shuffle
 *   and dropout masks are drawn from generators seeded by (seed, epoch, batch), so the RNG
 *   state at an epoch boundary is the pair (seed, next epoch).
 *
 * @module
 */
import { tf } from "../tf.ts";
import { Random } from "../random.ts";
import { ProgressBar } from "../progress.ts";
import type { Progress } from "../progress.ts";
import type { FeatureBatch, Labels } from "../types.ts";
import type { ArchitectureSpec } from "./architecture.ts";
import { getArchitecture } from "./architecture.ts";
import { Adam } from "./adam.ts";
import { Collective } from "./collective.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { registerTrainingKernels } from "./kernels.ts";
import type { BatchNormStats, NamedArrays } from "./network.ts";
import { TrainableNetwork } from "./network.ts";
import type { FeatureSource } from "./sources.ts";
import { cachedFeatureSource } from "./sources.ts";
import { fitFeatureStandardization } from "./standardize.ts";

/** Loss and accuracy of one pass over a data set. */
export interface LossAccuracy {
  /** Mean cross-entropy. */
  loss: number;
  /** Fraction classified correctly. */
  accuracy: number;
}

/** One epoch of training, for plotting. */
export interface EpochRecord {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean training loss over the epoch's batches (training mode: dropout, batch statistics). */
  trainLoss: number;
  /** Training accuracy over the epoch's batches (training mode). */
  trainAccuracy: number;
  /** Validation loss after the epoch (inference mode), when a validation set is given. */
  validationLoss?: number;
  /** Validation accuracy after the epoch. */
  validationAccuracy?: number;
  /** Wall-clock seconds of the epoch's training (without validation). */
  trainSeconds: number;
  /** Training images per second in this epoch. */
  imagesPerSecond: number;
}

/**
 * The hyper-parameters of an {@link ImageClassifier}'s training: one type, one set of
 * defaults ({@link TRAINING_DEFAULTS}), used by the estimator and carried whole by the
 * experiment. {@link PAPER_TRAINING} holds the paper's settings.
 */
export interface TrainingOptions {
  /** Maximum epochs (the paper: 15). */
  epochs: number;
  /**
   * Early stopping: stop once this many epochs in a row (an integer ≥ 1) brought no better
   * validation accuracy (ties broken by lower validation loss, as the best-epoch selection
   * does); `null` = run every epoch. Needs a validation set: without one it is ignored and
   * every epoch runs.
   */
  patience: number | null;
  /** Batch size (the paper: 32). */
  batchSize: number;
  /** Learning rate of the conv stack, or `"paper"`: the architecture's official one. */
  lrConv: number | "paper";
  /** Learning rate of the head, or `"paper"`: the architecture's official one. */
  lrHead: number | "paper";
  /**
   * Xavier-uniform gains of the head's dense layers (the hidden layers, the output layer),
   * or `"paper"` (√2 on every layer, the official code). They replace the architecture's
   * `head.xavierGain`.
   */
  initGain: { hidden: number; output: number } | "paper";
  /**
   * Standardise the inputs of the trainable part with their training mean (per position and
   * channel) and across-image spread (per channel), fitted at the start of `fit` (`false` is
   * the paper). See `standardize.ts` for why. Fitting reads the training inputs once (end to
   * end: one extra frozen forward pass over the training images).
   */
  standardizeFeatures: boolean;
  /** Seed of initialisation, shuffling and dropout (the paper: 42). */
  seed: number;
}

/**
 * The project's recommended training settings (what `tools/configs/recommended.json` runs),
 * and the defaults of every {@link ImageClassifier} option left out. Where they differ from
 * the paper ({@link PAPER_TRAINING}), by the project's choice (see the experiment report for
 * what each run measured):
 *
 * - `patience: 3`: stop once three epochs in a row brought no better validation accuracy,
 *   keeping the best epoch's weights; the paper always runs its 15 epochs.
 * - `lrHead: 1e-4` for every architecture, a tenth of the official 1e-3 of most of them: large
 *   early head updates can swamp what the conv stack has learnt, and a run of a few epochs
 *   has no time to undo them.
 * - `initGain.output: 0.1`: the official √2 on the output layer starts the model with large
 *   logits, confident predictions that are wrong half the time, which training must first
 *   unlearn; a small gain starts every prediction near 50/50. Hidden layers keep the official
 *   √2 (ReLU).
 * - `standardizeFeatures: true`: DeepInsight images of one data set share most of their
 *   pixels, so the backbone features are mostly one map common to every review (see
 *   `standardize.ts`).
 */
export const TRAINING_DEFAULTS: Readonly<TrainingOptions> = Object.freeze({
  epochs: 15,
  patience: 3,
  batchSize: 32,
  lrConv: "paper",
  lrHead: 1e-4,
  initGain: Object.freeze({ hidden: Math.SQRT2, output: 0.1 }),
  standardizeFeatures: true,
  seed: 42,
});

/**
 * The paper's settings (official code): 15 epochs, no early stopping, batch 32, the
 * architecture's official learning rates and √2 gains, no standardisation, seed 42.
 */
export const PAPER_TRAINING: Readonly<TrainingOptions> = Object.freeze({
  epochs: 15,
  patience: null,
  batchSize: 32,
  lrConv: "paper",
  lrHead: "paper",
  initGain: "paper",
  standardizeFeatures: false,
  seed: 42,
});

/**
 * {@link TrainingOptions} with every default filled in and resolved for one architecture:
 * what {@link ImageClassifier.config} returns.
 */
export interface ClassifierConfig extends Omit<TrainingOptions, "lrConv" | "lrHead" | "initGain"> {
  /** The architecture, its head's `xavierGain` set to {@link ClassifierConfig.initGain}. */
  architecture: ArchitectureSpec;
  /** Learning rate of the conv stack (`"paper"` resolved to the architecture's). */
  lrConv: number;
  /** Learning rate of the head (`"paper"` resolved to the architecture's). */
  lrHead: number;
  /** Xavier-uniform gains of the head's dense layers (`"paper"` resolved to √2, √2). */
  initGain: { hidden: number; output: number };
}

/**
 * Options of {@link ImageClassifier}: any of the {@link TrainingOptions} (the rest from
 * {@link TRAINING_DEFAULTS}) and how to run the training.
 */
export interface ImageClassifierOptions extends Partial<TrainingOptions> {
  /** A paper architecture name (`vgg16`, `alexnet`, …) or a full spec. Default `vgg16`. */
  architecture?: string | ArchitectureSpec;
  /**
   * Which weights `fit` ends with: `"last"` epoch's, or `"best-validation"` (highest
   * validation accuracy, ties broken by lower validation loss; the default when a
   * validation set is given).
   */
  selection?: "last" | "best-validation";
  /** Folder for per-epoch checkpoints; an existing checkpoint of the same run is resumed. */
  checkpointDir?: string;
  /** Extra text that must match for a checkpoint to be resumed (e.g. a data-set key). */
  runKey?: string;
  /** Label of the progress bar. */
  label?: string;
  /** Show a progress bar per epoch on stderr (default true). */
  progressBar?: boolean;
  /**
   * Called after every training batch with batches done / total over the whole fit (the
   * total counts every epoch up to `epochs`; a fit that stops early reports done = total
   * once at its end).
   */
  onProgress?: (progress: Progress) => void;
  /** Called after every epoch with its record. */
  onEpoch?: (record: EpochRecord) => void;
  /** Stops training between batches (the last checkpoint stays). */
  signal?: AbortSignal;
  /**
   * Train data-parallel on this many Deno workers (one core each; default 1: this thread).
   * Each worker takes a share of every batch; BatchNorm statistics are those of the whole
   * batch and gradients are summed, so the arithmetic is that of one batch of `batchSize`
   * (up to floating-point order and dropout masks). Inputs must be shareable: feature maps
   * in memory, or images through a backbone loadable from its registry spec.
   */
  workers?: number;
}

/**
 * A trained {@link ImageClassifier} as plain values: what `predictProba` needs (the resolved
 * architecture, the input feature shape, and every weight: conv stack, head, BatchNorm
 * running statistics and, with `standardizeFeatures`, the fitted feature standardisation
 * `input/mean` and `input/scale`). After `fit` these are the selected epoch's weights.
 */
export interface ImageClassifierState {
  /** The resolved architecture (head gains included). */
  architecture: ArchitectureSpec;
  /** Input feature map `[h, w, c]` (the backbone's output). */
  featureShape: [number, number, number];
  /** Whether inputs are standardised (the weights then hold `input/mean`, `input/scale`). */
  standardizeFeatures: boolean;
  /** The epoch whose weights these are (1-based). */
  selectedEpoch?: number;
  /** Every weight by name (see `TrainableNetwork.getWeights`). */
  weights: NamedArrays;
}

/** Inputs accepted by {@link ImageClassifier}: a source, or feature maps in memory. */
export type ClassifierInput = FeatureSource | FeatureBatch;

function asSource(x: ClassifierInput): FeatureSource {
  return "gather" in x ? x : cachedFeatureSource(x);
}

/** Seed of an independent stream derived from `seed` and up to two indices. */
export function deriveSeed(seed: number, a: number, b = 0): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (a + 0x632be5ab), 0xc2b2ae35);
  h = Math.imul(h ^ (b + 0x27d4eb2f), 0x165667b1);
  return (h ^ (h >>> 15)) >>> 0;
}

const TRAINING_KEYS = Object.keys(TRAINING_DEFAULTS) as (keyof TrainingOptions)[];

/** {@link TRAINING_DEFAULTS} overridden by the training options `options` defines. */
function resolveConfig(options: ImageClassifierOptions): ClassifierConfig {
  const given = Object.fromEntries(
    TRAINING_KEYS.filter((key) => options[key] !== undefined).map((key) => [key, options[key]]),
  ) as Partial<TrainingOptions>;
  const training: TrainingOptions = { ...TRAINING_DEFAULTS, ...given };
  const arch = options.architecture ?? "vgg16";
  const spec = typeof arch === "string" ? getArchitecture(arch) : arch;
  const initGain = training.initGain === "paper"
    ? { hidden: Math.SQRT2, output: Math.SQRT2 }
    : { hidden: training.initGain.hidden, output: training.initGain.output };
  return {
    ...training,
    architecture: { ...spec, head: { ...spec.head, xavierGain: initGain } },
    lrConv: training.lrConv === "paper" ? spec.lrConv : training.lrConv,
    lrHead: training.lrHead === "paper" ? spec.lrHead : training.lrHead,
    initGain,
  };
}

interface CheckpointRecord {
  fingerprint: string;
  epochsDone: number;
  history: EpochRecord[];
  bestEpoch: number | null;
  adamStep: number;
  rng: { seed: number; nextEpoch: number };
}

/** One `fitRank` call's inputs, model, optimizer and progress through the epochs. */
interface FitRun {
  source: FeatureSource;
  y: Labels;
  validation: { x: FeatureSource; y: Labels } | undefined;
  collective: Collective;
  /** This rank reports progress and writes checkpoints. */
  lead: boolean;
  cfg: ClassifierConfig;
  selection: "last" | "best-validation";
  network: TrainableNetwork;
  adam: Adam;
  vars: tf.Variable[];
  fingerprint: string;
  batchesPerEpoch: number;
  totalBatches: number;
  label: string;
  /** Records of the epochs done (the resumed ones included). */
  history: EpochRecord[];
  /** Best validation epoch so far (1-based). */
  bestEpoch: number | null;
  /** Its weights, when `selection` is `"best-validation"`. */
  bestWeights: NamedArrays | undefined;
}

function labelHash(y: Labels): string {
  let h = 2166136261;
  for (let i = 0; i < y.length; i++) h = Math.imul(h ^ y[i], 16777619);
  return `${y.length}:${(h >>> 0).toString(16)}`;
}

function oneHot(labels: ArrayLike<number>): tf.Tensor2D {
  const out = new Float32Array(labels.length * 2);
  for (let i = 0; i < labels.length; i++) out[i * 2 + labels[i]] = 1;
  return tf.tensor2d(out, [labels.length, 2]);
}

/** Whether `run` has met its early-stopping rule (see {@link TrainingOptions.patience}). */
function stoppingRuleMet(run: FitRun): boolean {
  const { patience } = run.cfg;
  return patience !== null && run.validation !== undefined && run.bestEpoch !== null &&
    run.history.length - run.bestEpoch >= patience;
}

/** The trainable part of an image classifier, as an estimator (see the module doc). */
export class ImageClassifier {
  /** The options given. */
  readonly options: ImageClassifierOptions;
  /** The resolved architecture, with the head's `xavierGain` set to the resolved `initGain`. */
  readonly architecture: ArchitectureSpec;
  /** The trained network (after `fit`). */
  network_?: TrainableNetwork;
  /** Per-epoch records of the epochs run (after `fit`; its length is the epochs run). */
  history_: EpochRecord[] = [];
  /** The epoch whose weights the model ended with (1-based). */
  selectedEpoch_?: number;
  /** Whether `fit` ended before `epochs` because early stopping's rule was met. */
  stoppedEarly_ = false;
  /** Epochs loaded from a checkpoint instead of trained by this `fit` call. */
  resumedEpochs_ = 0;
  /** Seconds this `fit` call took. */
  fitSeconds_ = 0;
  readonly #config: ClassifierConfig;

  /** Creates an untrained classifier. */
  constructor(options: ImageClassifierOptions = {}) {
    this.options = options;
    this.#config = resolveConfig(options);
    this.architecture = this.#config.architecture;
  }

  /**
   * The effective hyper-parameters: {@link TRAINING_DEFAULTS} overridden by the options
   * given, learning rates and gains resolved for the architecture.
   */
  get config(): ClassifierConfig {
    return { ...this.#config };
  }

  /** Trainable parameter count (after `fit`). */
  countParams(): number {
    return this.#network().countParams();
  }

  #network(): TrainableNetwork {
    if (!this.network_) throw new Error("ImageClassifier: call fit() first");
    return this.network_;
  }

  /**
   * Trains on `x` with labels `y` (0/1), evaluating on `validation` after every epoch.
   * Resumes from `checkpointDir` when it holds a checkpoint of the same run.
   */
  async fit(
    x: ClassifierInput,
    y: Labels,
    validation?: { x: ClassifierInput; y: Labels },
  ): Promise<this> {
    const workers = this.options.workers ?? 1;
    if (workers > 1) {
      const { fitDataParallel } = await import("./parallel.ts");
      await fitDataParallel(
        this,
        asSource(x),
        y,
        validation && {
          x: asSource(validation.x),
          y: validation.y,
        },
        workers,
      );
      return this;
    }
    return await this.fitRank(
      asSource(x),
      y,
      validation && { x: asSource(validation.x), y: validation.y },
      Collective.single(),
    );
  }

  /**
   * The training loop as rank `collective.rank` of a data-parallel group (`fit` calls it
   * with a group of one; `fit` with `workers > 1` runs it in every worker). Each rank trains
   * on its contiguous share of every batch; gradients, BatchNorm statistics and metrics are
   * summed across ranks, so all replicas stay identical. A last batch smaller than the
   * number of ranks is skipped. Every rank takes the same early-stopping decision: it
   * depends only on the history, whose validation metrics are summed across ranks.
   */
  async fitRank(
    source: FeatureSource,
    y: Labels,
    validation: { x: FeatureSource; y: Labels } | undefined,
    collective: Collective,
  ): Promise<this> {
    registerTrainingKernels();
    const started = performance.now();
    const run = this.#setup(source, y, validation, collective);
    const startEpoch = await this.#resume(run);
    // A resumed network has its standardisation from the checkpoint; every rank takes the
    // same branch (they read the same checkpoint).
    if (run.cfg.standardizeFeatures && startEpoch === 0) {
      run.network.setStandardization(fitFeatureStandardization(source, collective));
    }
    const { epochs } = run.cfg;
    this.resumedEpochs_ = Math.min(startEpoch, epochs);
    // The rule is checked before every epoch, so a resumed run that had met it trains no more.
    for (let epoch = startEpoch; epoch < epochs && !stoppingRuleMet(run); epoch++) {
      const record = await this.#trainEpoch(run, epoch);
      this.#validateEpoch(run, record);
      run.history.push(record);
      if (run.lead) this.options.onEpoch?.(record);
      await this.#saveCheckpoint(run, epoch + 1);
    }
    this.#finish(run);
    this.fitSeconds_ = (performance.now() - started) / 1000;
    return this;
  }

  /** Checks the inputs and options; builds the network and the optimizer. */
  #setup(
    source: FeatureSource,
    y: Labels,
    validation: { x: FeatureSource; y: Labels } | undefined,
    collective: Collective,
  ): FitRun {
    if (source.length !== y.length) {
      throw new Error(`fit: ${source.length} inputs but ${y.length} labels`);
    }
    if (validation && validation.x.length !== validation.y.length) {
      throw new Error(
        `fit: ${validation.x.length} validation inputs but ${validation.y.length} labels`,
      );
    }
    const cfg = this.config;
    const { epochs, batchSize, seed, patience } = cfg;
    if (!(Number.isInteger(epochs) && epochs >= 0)) throw new Error(`epochs must be ≥ 0`);
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize must be ≥ 1`);
    if (!(patience === null || (Number.isInteger(patience) && patience >= 1))) {
      throw new Error(`patience must be an integer ≥ 1 or null, got ${patience}`);
    }
    const selection = this.options.selection ?? (validation ? "best-validation" : "last");
    if (selection === "best-validation" && !validation) {
      throw new Error(`selection "best-validation" needs a validation set`);
    }

    this.stoppedEarly_ = false;
    this.network_?.dispose();
    const network = new TrainableNetwork(cfg.architecture, source.featureShape, seed, {
      standardizeInput: cfg.standardizeFeatures,
    });
    this.network_ = network;
    const size = collective.size;
    // With several ranks, Adam sums the gradients over them and splits the update.
    const adam = new Adam([
      { name: "conv", lr: cfg.lrConv, params: network.params.filter((p) => p.group === "conv") },
      { name: "head", lr: cfg.lrHead, params: network.params.filter((p) => p.group === "head") },
    ], { collective: size > 1 ? collective : undefined });
    const fingerprint = JSON.stringify({
      architecture: cfg.architecture,
      batchSize,
      lrConv: cfg.lrConv,
      lrHead: cfg.lrHead,
      seed,
      standardizeFeatures: cfg.standardizeFeatures,
      selection,
      // Without a validation set patience is ignored, so it does not tell runs apart.
      patience: validation ? patience : null,
      featureShape: source.featureShape,
      kind: source.kind,
      labels: labelHash(y),
      validation: validation ? labelHash(validation.y) : null,
      runKey: this.options.runKey ?? null,
    });
    const batchesPerEpoch = Math.ceil(source.length / batchSize);
    return {
      source,
      y,
      validation,
      collective,
      lead: collective.rank === 0,
      cfg,
      selection,
      network,
      adam,
      vars: adam.variables(),
      fingerprint,
      batchesPerEpoch,
      totalBatches: batchesPerEpoch * epochs,
      label: this.options.label ?? cfg.architecture.name,
      history: [],
      bestEpoch: null,
      bestWeights: undefined,
    };
  }

  /**
   * Loads the checkpoint in `checkpointDir`, if any, into `run` (weights, optimizer state,
   * history, best epoch) and returns the epochs it holds (0 without one).
   */
  async #resume(run: FitRun): Promise<number> {
    const dir = this.options.checkpointDir;
    if (!dir) return 0;
    // Damaged or stale checkpoints are skipped with a message (the lead rank says it).
    const log = run.lead ? (m: string) => console.warn(`${run.label}: ${m}`) : () => {};
    const ck = await loadCheckpoint<CheckpointRecord>(dir, { log });
    if (!ck) return 0;
    if (ck.record.fingerprint !== run.fingerprint) {
      throw new Error(
        `${dir} holds a checkpoint of a different run (other data, architecture or ` +
          `hyper-parameters); delete it or choose another checkpointDir.`,
      );
    }
    const weights: NamedArrays = {}, moments: NamedArrays = {}, best: NamedArrays = {};
    for (const [name, arr] of Object.entries(ck.arrays)) {
      if (name.startsWith("adam/")) moments[name.slice(5)] = arr;
      else if (name.startsWith("best/")) best[name.slice(5)] = arr;
      else weights[name] = arr;
    }
    run.network.setWeights(weights);
    run.adam.setState({ step: ck.record.adamStep, moments });
    run.history = ck.record.history;
    run.bestEpoch = ck.record.bestEpoch;
    if (Object.keys(best).length > 0) run.bestWeights = best;
    return ck.record.epochsDone;
  }

  /** Trains one epoch (0-based `epoch`) and returns its record, without validation. */
  async #trainEpoch(run: FitRun, epoch: number): Promise<EpochRecord> {
    const { source, collective, batchesPerEpoch } = run;
    const { batchSize, seed, epochs } = run.cfg;
    const n = source.length;
    const order = new Random(deriveSeed(seed, epoch + 1)).permutation(n);
    const bar = run.lead && (this.options.progressBar ?? true)
      ? new ProgressBar(`${run.label} epoch ${epoch + 1}/${epochs}`, batchesPerEpoch, {
        unit: "batches",
      })
      : undefined;
    const t0 = performance.now();
    let lossSum = 0, correct = 0, seen = 0;
    for (let b = 0; b < batchesPerEpoch; b++) {
      this.options.signal?.throwIfAborted();
      const batch = order.slice(b * batchSize, Math.min(n, (b + 1) * batchSize));
      if (batch.length < collective.size) continue; // too small to share out (data-parallel only)
      const step = await this.#trainStep(run, epoch, b, batch);
      correct += step.correct;
      lossSum += step.loss * step.count;
      seen += step.count;
      bar?.update(b + 1);
      if (run.lead) {
        this.options.onProgress?.({
          done: epoch * batchesPerEpoch + b + 1,
          total: run.totalBatches,
        });
      }
      // Let timers and signals run between batches.
      if (b % 8 === 7) await new Promise((r) => setTimeout(r, 0));
    }
    bar?.finish();
    const sums = collective.allReduceSum(Float64Array.of(lossSum, correct, seen));
    const trainSeconds = (performance.now() - t0) / 1000;
    return {
      epoch: epoch + 1,
      trainLoss: sums[0] / sums[2],
      trainAccuracy: sums[1] / sums[2],
      trainSeconds,
      imagesPerSecond: sums[2] / trainSeconds,
    };
  }

  /**
   * One Adam step on batch `b` of `epoch` (this rank's contiguous share of `batch`); returns
   * this rank's mean loss, correct predictions and examples.
   */
  async #trainStep(
    run: FitRun,
    epoch: number,
    b: number,
    batch: number[],
  ): Promise<{ loss: number; correct: number; count: number }> {
    const { network, collective, y } = run;
    const { rank, size } = collective;
    const seed = run.cfg.seed;
    const idx = batch.slice(
      Math.floor((rank * batch.length) / size),
      Math.floor(((rank + 1) * batch.length) / size),
    );
    const labels = idx.map((i) => y[i]);
    const xb = run.source.gather(idx);
    const yb = oneHot(labels);
    const stats: BatchNormStats = { blocks: [] };
    let predicted: tf.Tensor1D | undefined;
    let localLoss: tf.Scalar | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const logits = network.apply(xb, {
        training: true,
        dropoutSeed: deriveSeed(seed, epoch + 1, b + 1 + rank * 1_000_003),
        stats,
        collective,
      });
      predicted = tf.keep(tf.argMax(logits, 1) as tf.Tensor1D);
      const loss = tf.losses.softmaxCrossEntropy(yb, logits) as tf.Scalar;
      if (size === 1) return loss;
      // The batch's mean loss is the sum over ranks of (share / batch) × share mean.
      localLoss = tf.keep(loss);
      return tf.mul(loss, idx.length / batch.length) as tf.Scalar;
    }, run.vars);
    run.adam.applyGradients(grads);
    network.updateRunningStats(stats);
    const lossValue = (await (localLoss ?? value).data())[0];
    const pred = (await predicted!.data()) as Int32Array;
    let correct = 0;
    for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) correct++;
    tf.dispose([xb, yb, value, predicted!, ...Object.values(grads)]);
    if (localLoss) localLoss.dispose();
    if (!Number.isFinite(lossValue)) {
      collective.abort();
      throw new Error(
        `${run.label}: the training loss became ${lossValue} at epoch ${epoch + 1}, batch ` +
          `${b + 1}; lower the learning rates.`,
      );
    }
    return { loss: lossValue, correct, count: labels.length };
  }

  /**
   * Adds the validation loss and accuracy to `record` (when there is a validation set) and
   * makes it the best epoch when it is: higher accuracy, or equal accuracy and lower loss.
   */
  #validateEpoch(run: FitRun, record: EpochRecord): void {
    if (!run.validation) return;
    const v = this.#evaluate(run.validation.x, run.validation.y, 64, run.collective);
    record.validationLoss = v.loss;
    record.validationAccuracy = v.accuracy;
    const best = run.bestEpoch === null ? undefined : run.history[run.bestEpoch - 1];
    if (
      !best || v.accuracy > best.validationAccuracy! ||
      (v.accuracy === best.validationAccuracy && v.loss < best.validationLoss!)
    ) {
      run.bestEpoch = record.epoch;
      run.bestWeights = run.selection === "best-validation" ? run.network.getWeights() : undefined;
    }
  }

  /** Saves the checkpoint of `epochsDone` epochs (when there is a `checkpointDir`). */
  async #saveCheckpoint(run: FitRun, epochsDone: number): Promise<void> {
    const dir = this.options.checkpointDir;
    if (!dir) return;
    // Every rank takes part in gathering the optimizer state; the lead saves it.
    const state = run.adam.getState();
    if (!run.lead) return;
    const arrays: NamedArrays = { ...run.network.getWeights() };
    for (const [name, arr] of Object.entries(state.moments)) arrays[`adam/${name}`] = arr;
    if (run.bestWeights) {
      for (const [name, arr] of Object.entries(run.bestWeights)) arrays[`best/${name}`] = arr;
    }
    const record: CheckpointRecord = {
      fingerprint: run.fingerprint,
      epochsDone,
      history: run.history,
      bestEpoch: run.bestEpoch,
      adamStep: state.step,
      rng: { seed: run.cfg.seed, nextEpoch: epochsDone + 1 },
    };
    await saveCheckpoint(dir, `epoch-${String(epochsDone).padStart(4, "0")}`, record, arrays);
  }

  /** Leaves the result of `run` in this classifier: history, selected weights and epoch. */
  #finish(run: FitRun): void {
    const { epochs } = run.cfg;
    this.history_ = run.history.slice(0, epochs);
    this.stoppedEarly_ = stoppingRuleMet(run) && run.history.length < epochs;
    // The progress total counts every epoch up to `epochs`: finish it.
    if (this.stoppedEarly_ && run.lead) {
      this.options.onProgress?.({ done: run.totalBatches, total: run.totalBatches });
    }
    if (run.selection === "best-validation" && run.bestWeights && run.bestEpoch !== null) {
      run.network.setWeights(run.bestWeights);
      this.selectedEpoch_ = run.bestEpoch;
    } else {
      this.selectedEpoch_ = Math.min(epochs, run.history.length);
    }
  }

  #forwardBatches(
    source: FeatureSource,
    batchSize: number,
    each: (logits: tf.Tensor2D, start: number) => void,
    [from, to]: [number, number] = [0, source.length],
  ): void {
    const network = this.#network();
    for (let start = from; start < to; start += batchSize) {
      const end = Math.min(to, start + batchSize);
      const idx = Array.from({ length: end - start }, (_, i) => start + i);
      tf.tidy(() => {
        const xb = source.gather(idx);
        each(network.apply(xb, { training: false }), start);
      });
    }
  }

  #evaluate(
    source: FeatureSource,
    y: Labels,
    batchSize = 64,
    collective?: Collective,
  ): LossAccuracy {
    const rank = collective?.rank ?? 0, size = collective?.size ?? 1;
    const from = Math.floor((rank * source.length) / size);
    const to = Math.floor(((rank + 1) * source.length) / size);
    let lossSum = 0, correct = 0;
    this.#forwardBatches(source, batchSize, (logits, start) => {
      const k = logits.shape[0];
      const labels = y.subarray(start, start + k);
      const yb = oneHot(labels);
      const losses = tf.losses.softmaxCrossEntropy(
        yb,
        logits,
        undefined,
        undefined,
        tf.Reduction.NONE,
      );
      const l = losses.dataSync();
      const pred = tf.argMax(logits, 1).dataSync();
      for (let i = 0; i < k; i++) {
        lossSum += l[i];
        if (pred[i] === labels[i]) correct++;
      }
    }, [from, to]);
    const sums = collective ? collective.allReduceSum(Float64Array.of(lossSum, correct)) : [
      lossSum,
      correct,
    ];
    return { loss: sums[0] / source.length, accuracy: sums[1] / source.length };
  }

  /** Mean cross-entropy and accuracy on `x` (inference mode). */
  evaluate(x: ClassifierInput, y: Labels, batchSize = 64): LossAccuracy {
    const source = asSource(x);
    if (source.length !== y.length) {
      throw new Error(`evaluate: ${source.length} inputs, ${y.length} labels`);
    }
    return this.#evaluate(source, y, batchSize);
  }

  /** Probability of the positive class (label 1) for each row of `x`. */
  predictProba(x: ClassifierInput, batchSize = 64): Float32Array {
    const source = asSource(x);
    const out = new Float32Array(source.length);
    this.#forwardBatches(source, batchSize, (logits, start) => {
      out.set(tf.softmax(logits).slice([0, 1], [-1, 1]).dataSync(), start);
    });
    return out;
  }

  /**
   * The trained model as plain values (a copy): after `fit`, the selected epoch's weights
   * (the best validation epoch's with `best-validation`). Throws before `fit`.
   */
  exportState(): ImageClassifierState {
    const network = this.#network();
    return {
      architecture: network.spec,
      featureShape: [...network.inputShape],
      standardizeFeatures: this.#config.standardizeFeatures,
      selectedEpoch: this.selectedEpoch_,
      weights: network.getWeights(),
    };
  }

  /**
   * A trained classifier from {@link ImageClassifier.exportState}, ready to predict: its
   * predictions on the same inputs equal the original's. Throws when a weight is missing or
   * misshapen. Dispose it when done.
   */
  static fromState(state: ImageClassifierState): ImageClassifier {
    const gain = state.architecture.head.xavierGain;
    const clf = new ImageClassifier({
      architecture: state.architecture,
      standardizeFeatures: state.standardizeFeatures,
      ...(gain ? { initGain: gain } : {}),
    });
    const network = new TrainableNetwork(state.architecture, state.featureShape, 0, {
      standardizeInput: state.standardizeFeatures,
    });
    try {
      network.setWeights(state.weights);
    } catch (e) {
      network.dispose();
      throw e;
    }
    clf.network_ = network;
    clf.selectedEpoch_ = state.selectedEpoch;
    return clf;
  }

  /** Predicted labels (1 when the positive class is more probable). */
  predict(x: ClassifierInput, batchSize = 64): Labels {
    const p = this.predictProba(x, batchSize);
    const out = new Uint8Array(p.length);
    for (let i = 0; i < p.length; i++) out[i] = p[i] > 0.5 ? 1 : 0;
    return out;
  }

  /** Frees the network's variables. */
  dispose(): void {
    this.network_?.dispose();
    this.network_ = undefined;
  }
}
