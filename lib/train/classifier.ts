/**
 * {@link ImageClassifier}: the trainable part of the paper's models as an estimator. It
 * trains on a {@link FeatureSource} (cached frozen features, or images through the frozen
 * backbone) with Adam (separate learning rates for the conv stack and the head), batch 32,
 * seeded shuffling and dropout, cross-entropy on 2 logits.
 *
 * - Metrics are computed afresh at every evaluation (the official code's running totals
 *   across epochs are a defect we do not copy). Per epoch: training loss and accuracy (mean
 *   over that epoch's batches, training mode) and validation loss and accuracy (inference
 *   mode), kept in `history_` for plotting.
 * - With a `checkpointDir`, every epoch ends with a checkpoint (weights, BatchNorm
 *   statistics, Adam state, history, best-epoch weights, RNG state). A new `fit` with the
 *   same configuration resumes after the last completed epoch and ends with the same
 *   weights and history as an uninterrupted run: each epoch's shuffle and dropout masks are
 *   drawn from generators seeded by (seed, epoch, batch), so the RNG state at an epoch
 *   boundary is the pair (seed, next epoch).
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

/** Options of {@link ImageClassifier}. */
export interface ImageClassifierOptions {
  /** A paper architecture name (`vgg16`, `alexnet`, …) or a full spec. Default `vgg16`. */
  architecture?: string | ArchitectureSpec;
  /** Epochs (paper 15). */
  epochs?: number;
  /** Batch size (paper 32). */
  batchSize?: number;
  /** Learning rate of the conv stack (default: the architecture's). */
  lrConv?: number;
  /** Learning rate of the head (default: the architecture's). */
  lrHead?: number;
  /** Seed of initialisation, shuffling and dropout (paper 42). */
  seed?: number;
  /**
   * Standardise the inputs of the trainable part with their training mean (per position and
   * channel) and across-image spread (per channel), fitted at the start of `fit` (default
   * true; `false` is the paper). See `standardize.ts` for why. Fitting reads the training
   * inputs once (end to end: one extra frozen forward pass over the training images).
   */
  standardizeFeatures?: boolean;
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
  /** Called after every training batch with batches done / total over the whole fit. */
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

interface CheckpointRecord {
  fingerprint: string;
  epochsDone: number;
  history: EpochRecord[];
  bestEpoch: number | null;
  adamStep: number;
  rng: { seed: number; nextEpoch: number };
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

/** The trainable part of an image classifier, as an estimator (see the module doc). */
export class ImageClassifier {
  /** The options given. */
  readonly options: ImageClassifierOptions;
  /** The resolved architecture. */
  readonly architecture: ArchitectureSpec;
  /** The trained network (after `fit`). */
  network_?: TrainableNetwork;
  /** Per-epoch records (after `fit`). */
  history_: EpochRecord[] = [];
  /** The epoch whose weights the model ended with (1-based). */
  selectedEpoch_?: number;
  /** Epochs loaded from a checkpoint instead of trained by this `fit` call. */
  resumedEpochs_ = 0;
  /** Seconds this `fit` call took. */
  fitSeconds_ = 0;

  /** Creates an untrained classifier. */
  constructor(options: ImageClassifierOptions = {}) {
    this.options = options;
    const arch = options.architecture ?? "vgg16";
    this.architecture = typeof arch === "string" ? getArchitecture(arch) : arch;
  }

  /** Effective hyper-parameters. */
  get config(): {
    architecture: ArchitectureSpec;
    epochs: number;
    batchSize: number;
    lrConv: number;
    lrHead: number;
    seed: number;
    standardizeFeatures: boolean;
  } {
    const o = this.options;
    return {
      architecture: this.architecture,
      epochs: o.epochs ?? 15,
      batchSize: o.batchSize ?? 32,
      lrConv: o.lrConv ?? this.architecture.lrConv,
      lrHead: o.lrHead ?? this.architecture.lrHead,
      seed: o.seed ?? 42,
      standardizeFeatures: o.standardizeFeatures ?? true,
    };
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
   * number of ranks is skipped.
   */
  async fitRank(
    source: FeatureSource,
    y: Labels,
    validation: { x: FeatureSource; y: Labels } | undefined,
    collective: Collective,
  ): Promise<this> {
    registerTrainingKernels();
    const started = performance.now();
    const { rank, size } = collective;
    const lead = rank === 0;
    const valSource = validation?.x;
    if (source.length !== y.length) {
      throw new Error(`fit: ${source.length} inputs but ${y.length} labels`);
    }
    if (valSource && valSource.length !== validation!.y.length) {
      throw new Error(
        `fit: ${valSource.length} validation inputs but ${validation!.y.length} labels`,
      );
    }
    const cfg = this.config;
    const { epochs, batchSize, seed } = cfg;
    if (!(Number.isInteger(epochs) && epochs >= 0)) throw new Error(`epochs must be ≥ 0`);
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`batchSize must be ≥ 1`);
    const selection = this.options.selection ?? (valSource ? "best-validation" : "last");
    if (selection === "best-validation" && !valSource) {
      throw new Error(`selection "best-validation" needs a validation set`);
    }

    this.network_?.dispose();
    const network = new TrainableNetwork(cfg.architecture, source.featureShape, seed, {
      standardizeInput: cfg.standardizeFeatures,
    });
    this.network_ = network;
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
      featureShape: source.featureShape,
      kind: source.kind,
      labels: labelHash(y),
      validation: validation ? labelHash(validation.y) : null,
      runKey: this.options.runKey ?? null,
    });

    let history: EpochRecord[] = [];
    let bestEpoch: number | null = null;
    let bestWeights: NamedArrays | undefined;
    let startEpoch = 0;
    const dir = this.options.checkpointDir;
    if (dir) {
      const ck = await loadCheckpoint<CheckpointRecord>(dir);
      if (ck) {
        if (ck.record.fingerprint !== fingerprint) {
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
        network.setWeights(weights);
        adam.setState({ step: ck.record.adamStep, moments });
        history = ck.record.history;
        bestEpoch = ck.record.bestEpoch;
        if (Object.keys(best).length > 0) bestWeights = best;
        startEpoch = ck.record.epochsDone;
      }
    }
    // A resumed network has its standardisation from the checkpoint; every rank takes the
    // same branch (they read the same checkpoint).
    if (cfg.standardizeFeatures && startEpoch === 0) {
      network.setStandardization(fitFeatureStandardization(source, collective));
    }
    this.resumedEpochs_ = Math.min(startEpoch, epochs);
    const n = source.length;
    const batchesPerEpoch = Math.ceil(n / batchSize);
    const totalBatches = batchesPerEpoch * epochs;
    const label = this.options.label ?? cfg.architecture.name;
    const vars = adam.variables();

    for (let epoch = startEpoch; epoch < epochs; epoch++) {
      const order = new Random(deriveSeed(seed, epoch + 1)).permutation(n);
      const bar = lead && (this.options.progressBar ?? true)
        ? new ProgressBar(`${label} epoch ${epoch + 1}/${epochs}`, batchesPerEpoch, {
          unit: "batches",
        })
        : undefined;
      const t0 = performance.now();
      let lossSum = 0, correct = 0, seen = 0;
      for (let b = 0; b < batchesPerEpoch; b++) {
        this.options.signal?.throwIfAborted();
        const batch = order.slice(b * batchSize, Math.min(n, (b + 1) * batchSize));
        if (batch.length < size) continue; // too small to share out (data-parallel only)
        // This rank's contiguous share of the batch.
        const idx = batch.slice(
          Math.floor((rank * batch.length) / size),
          Math.floor(((rank + 1) * batch.length) / size),
        );
        const labels = idx.map((i) => y[i]);
        const xb = source.gather(idx);
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
        }, vars);
        adam.applyGradients(grads);
        network.updateRunningStats(stats);
        const lossValue = (await (localLoss ?? value).data())[0];
        const pred = (await predicted!.data()) as Int32Array;
        for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) correct++;
        lossSum += lossValue * labels.length;
        seen += labels.length;
        tf.dispose([xb, yb, value, predicted!, ...Object.values(grads)]);
        if (localLoss) localLoss.dispose();
        if (!Number.isFinite(lossValue)) {
          collective.abort();
          throw new Error(
            `${label}: the training loss became ${lossValue} at epoch ${epoch + 1}, batch ` +
              `${b + 1}; lower the learning rates.`,
          );
        }
        bar?.update(b + 1);
        if (lead) {
          this.options.onProgress?.({
            done: epoch * batchesPerEpoch + b + 1,
            total: totalBatches,
          });
        }
        // Let timers and signals run between batches.
        if (b % 8 === 7) await new Promise((r) => setTimeout(r, 0));
      }
      bar?.finish();
      const sums = collective.allReduceSum(Float64Array.of(lossSum, correct, seen));
      const trainSeconds = (performance.now() - t0) / 1000;
      const record: EpochRecord = {
        epoch: epoch + 1,
        trainLoss: sums[0] / sums[2],
        trainAccuracy: sums[1] / sums[2],
        trainSeconds,
        imagesPerSecond: sums[2] / trainSeconds,
      };
      if (valSource) {
        const v = this.#evaluate(valSource, validation!.y, 64, collective);
        record.validationLoss = v.loss;
        record.validationAccuracy = v.accuracy;
        const best = bestEpoch === null ? undefined : history[bestEpoch - 1];
        if (
          !best || v.accuracy > best.validationAccuracy! ||
          (v.accuracy === best.validationAccuracy && v.loss < best.validationLoss!)
        ) {
          bestEpoch = epoch + 1;
          bestWeights = selection === "best-validation" ? network.getWeights() : undefined;
        }
      }
      history.push(record);
      if (lead) this.options.onEpoch?.(record);
      // Every rank takes part in gathering the optimizer state; the lead saves it.
      const state = dir ? adam.getState() : undefined;
      if (dir && lead) {
        const arrays: NamedArrays = { ...network.getWeights() };
        for (const [name, arr] of Object.entries(state!.moments)) arrays[`adam/${name}`] = arr;
        if (bestWeights) {
          for (const [name, arr] of Object.entries(bestWeights)) arrays[`best/${name}`] = arr;
        }
        const ckRecord: CheckpointRecord = {
          fingerprint,
          epochsDone: epoch + 1,
          history,
          bestEpoch,
          adamStep: state!.step,
          rng: { seed, nextEpoch: epoch + 2 },
        };
        await saveCheckpoint(
          dir,
          `epoch-${String(epoch + 1).padStart(4, "0")}`,
          ckRecord,
          arrays,
        );
      }
    }
    this.history_ = history.slice(0, epochs);
    if (selection === "best-validation" && bestWeights && bestEpoch !== null) {
      network.setWeights(bestWeights);
      this.selectedEpoch_ = bestEpoch;
    } else {
      this.selectedEpoch_ = Math.min(epochs, history.length);
    }
    this.fitSeconds_ = (performance.now() - started) / 1000;
    return this;
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
