/**
 * The whole experiment as one library call, {@link runExperiment}: IMDB reviews → frozen
 * text encoder → DeepInsight images → every backbone's classifier, beside the baselines on
 * the same embeddings (logistic regression, a small MLP) and the two ablations (pixels
 * permuted at random; randomly initialised backbone), all measured on the same test rows
 * with the same metrics.
 *
 * Every stage is cached, so a re-run skips finished work and an interrupted run resumes:
 * reviews are re-read (seconds), embeddings come from the embedding store, the fitted image
 * transformer from a JSON file, backbone features from the feature cache, each classifier
 * from its per-epoch checkpoints, and each finished model's result from a JSON file.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { dataDir } from "../config.ts";
import { exists } from "../download.ts";
import { labelsOf, loadImdb, splitReviews } from "../data/mod.ts";
import type { Review } from "../data/mod.ts";
import { BertEncoder, embedTexts, UseLiteEncoder } from "../embed/mod.ts";
import type { Pooling, TextEncoderModel } from "../embed/mod.ts";
import { ImageTransformer } from "../image/mod.ts";
import type { TsneOptions } from "../image/mod.ts";
import { ProgressBar } from "../progress.ts";
import type { Progress } from "../progress.ts";
import { ready, tf } from "../tf.ts";
import { architectureFor, imageStats, sharedCopy, zNormalizeImages } from "../train/mod.ts";
import type { ArchitectureSpec, EpochRecord } from "../train/mod.ts";
import type { ImageBatch, Labels, Matrix } from "../types.ts";
import { BACKBONES, cacheFeatures, loadableBackbones, loadBackbone } from "../vision/mod.ts";
import type { Backbone, FeatureDtype } from "../vision/mod.ts";
import { permutePixels, randomlyInitialisedBackbone } from "./ablations.ts";
import { LogisticRegression } from "./logistic.ts";
import { evaluateBinary, mcnemarTest } from "./metrics.ts";
import type { BinaryMetrics } from "./metrics.ts";
import { MLPClassifier } from "./mlp.ts";
import type { MLPClassifierOptions } from "./mlp.ts";
import { runTrainJobs } from "./pool.ts";
import type { TrainJob, TrainJobInputs, TrainJobResult } from "./train_job.ts";

/** What to run. Every field but `name` has a default (see {@link resolveExperimentConfig}). */
export interface ExperimentConfig {
  /** Run name; names the cache folder of this run's transformer, checkpoints and results. */
  name: string;
  /** Reviews and splits. */
  data?: {
    /** IMDB archive, extracted folder or URL (default: the data stage's default source). */
    source?: string;
    /** Keep `<br />` as the paper did, or replace it with a space (default `keep`). */
    breaks?: "keep" | "space";
    /** `standard` (official train/test halves, validation slice of train) or `paper`. */
    scheme?: "standard" | "paper";
    /** Training reviews (default 5,000). */
    trainSize?: number;
    /** Test reviews (default 5,000). */
    testSize?: number;
    /** Validation slice as a fraction of the training size (standard only; default 0.1). */
    validationFraction?: number;
    /** Seed of the splits (default 42). */
    seed?: number;
  };
  /** Text encoder. */
  embedding?: {
    /** `use-lite` (offline, pretrained) or `bert` (bert-base-uncased ONNX export). */
    encoder?: "use-lite" | "bert";
    /** Model folder or hub id (BERT; default `Xenova/bert-base-uncased`). */
    model?: string;
    /** Hidden states to concatenate (default: the encoder's). */
    layers?: number[];
    /** Token pooling (default: the encoder's). */
    pooling?: Pooling;
    /** Truncation length in tokens (default: the encoder's). */
    maxTokens?: number;
    /** Texts per forward pass. */
    batchSize?: number;
  };
  /** Vector → image. */
  image?: {
    /** Side of the square image (default 50). */
    pixels?: number;
    /** `bin` (the paper's) or `lsa`. */
    discretization?: "bin" | "lsa";
    /** `log` (the paper's Norm-2) or `minmax`. */
    scaler?: "log" | "minmax";
    /** Fit scaler and layout on training rows only (default) or on all rows (transductive, as the official code). */
    fitOn?: "train" | "all";
    /** t-SNE options (defaults: the paper's, seed 1701). */
    tsne?: TsneOptions;
  };
  /** The image classifiers. */
  models?: {
    /** Registry names (default: every registered backbone with a loadable source). */
    backbones?: string[];
    /** Nearest upsampling before the backbone (paper 3; default 1: 50×50 inputs). */
    upsample?: number;
    /** Epochs (paper 15; default 2, so a 5,000-review run fits two cores in under an hour). */
    epochs?: number;
    /** Batch size (paper 32). */
    batchSize?: number;
    /** Seed of initialisation, shuffling and dropout (paper 42). */
    seed?: number;
    /** Learning rate of the conv stacks, or `"paper"` (each architecture's official one; default). */
    lrConv?: number | "paper";
    /**
     * Learning rate of the heads, or `"paper"` (each architecture's official one). Default
     * 1e-4, chosen on the validation set of the 5,000-review run with vgg19: the official
     * 1e-3 stayed at chance for the first epoch.
     */
    lrHead?: number | "paper";
    /** Storage type of cached backbone features (default float16). */
    featureDtype?: FeatureDtype;
    /**
     * `cache` (default): the backbone runs once per image, its features are cached on disk
     * and only the trainable part runs per epoch. `end-to-end`: the backbone runs on every
     * batch (no disk; for large runs whose features would not fit, e.g. 50k images at
     * 150×150 need ~35 GB per VGG/ResNet slice in float16).
     */
    features?: "cache" | "end-to-end";
    /**
     * z-normalisation before the backbone: `train` (one mean and std over the training
     * images; the only choice with cached features) or `batch` (the paper: per batch;
     * end-to-end only). Default: `train` for cached features, `batch` end to end.
     */
    normalization?: "train" | "batch";
    /**
     * Gains of the Xavier-uniform initialisation of the dense layers (default: hidden √2 as
     * the official code, output 0.1). The official √2 on the output layer makes the initial
     * predictions confidently wrong (loss 1.5–4), which takes about an epoch to unlearn;
     * with a few epochs instead of 15 the models then barely learn. Set
     * `{ hidden: Math.SQRT2, output: Math.SQRT2 }` for the official initialisation.
     */
    initGain?: { hidden: number; output: number };
    /**
     * Standardise the backbone features before the conv stack: minus their training mean
     * map, divided by each channel's across-image spread (default true; `false` is the
     * paper). DeepInsight images share most pixels, so the features are mostly one map common
     * to every review; without this resnet50 and mobilenet_v1 stayed at chance.
     */
    standardizeFeatures?: boolean;
    /** Trainings (and feature computations) run at once, one per core (default 2). */
    workers?: number;
  };
  /** Baselines on the same embeddings. */
  baselines?: {
    /** Logistic regression; `l2` candidates chosen on the validation set (default 0.01 … 10,000 by decades). */
    logistic?: boolean | { l2?: number[] };
    /** A small MLP (default options of `MLPClassifier`). */
    mlp?: boolean | MLPClassifierOptions;
  };
  /** Ablations on one backbone. */
  ablations?: {
    /** The backbone they use (default `vgg19`, the paper's VGG16 stand-in). */
    backbone?: string;
    /** Pixels permuted at random (default true). */
    permutedPixels?: boolean;
    /** Randomly initialised backbone (default true). */
    randomBackbone?: boolean;
    /** Seed of the permutation and of the random weights (default 7). */
    seed?: number;
  };
  /** Folder for this run's caches (default `dataDir()/experiments/<name>`). */
  cacheDir?: string;
}

/** {@link ExperimentConfig} with every default filled in. */
export type ResolvedExperimentConfig = {
  name: string;
  data: Required<Omit<NonNullable<ExperimentConfig["data"]>, "source">> & { source?: string };
  embedding: NonNullable<ExperimentConfig["embedding"]> & { encoder: "use-lite" | "bert" };
  image: Required<Omit<NonNullable<ExperimentConfig["image"]>, "tsne">> & { tsne: TsneOptions };
  models: Required<NonNullable<ExperimentConfig["models"]>>;
  baselines: { logistic: false | { l2: number[] }; mlp: false | MLPClassifierOptions };
  ablations: Required<NonNullable<ExperimentConfig["ablations"]>>;
  cacheDir: string;
};

/** The heads' learning rate unless a config says otherwise (see `models.lrHead`). */
const DEFAULT_LR_HEAD = 1e-4;

/** Fills in the defaults of `config`. */
export function resolveExperimentConfig(config: ExperimentConfig): ResolvedExperimentConfig {
  if (!config.name || !/^[A-Za-z0-9_.-]+$/.test(config.name)) {
    throw new Error(`experiment name must be letters, digits, "_", "-" or ".", got ${config.name}`);
  }
  const d = config.data ?? {}, e = config.embedding ?? {}, i = config.image ?? {};
  const m = config.models ?? {}, b = config.baselines ?? {}, a = config.ablations ?? {};
  const logistic = b.logistic ?? true, mlp = b.mlp ?? true;
  const resolved: ResolvedExperimentConfig = {
    name: config.name,
    data: {
      source: d.source,
      breaks: d.breaks ?? "keep",
      scheme: d.scheme ?? "standard",
      trainSize: d.trainSize ?? 5000,
      testSize: d.testSize ?? 5000,
      validationFraction: d.validationFraction ?? 0.1,
      seed: d.seed ?? 42,
    },
    embedding: { ...e, encoder: e.encoder ?? "use-lite" },
    image: {
      pixels: i.pixels ?? 50,
      discretization: i.discretization ?? "bin",
      scaler: i.scaler ?? "log",
      fitOn: i.fitOn ?? "train",
      tsne: { seed: 1701, verbose: true, ...(i.tsne ?? {}) },
    },
    models: {
      backbones: m.backbones ?? loadableBackbones(),
      upsample: m.upsample ?? 1,
      epochs: m.epochs ?? 2,
      batchSize: m.batchSize ?? 32,
      seed: m.seed ?? 42,
      lrConv: m.lrConv ?? "paper",
      lrHead: m.lrHead ?? DEFAULT_LR_HEAD,
      featureDtype: m.featureDtype ?? "float16",
      features: m.features ?? "cache",
      normalization: m.normalization ?? (m.features === "end-to-end" ? "batch" : "train"),
      initGain: m.initGain ?? { hidden: Math.SQRT2, output: 0.1 },
      standardizeFeatures: m.standardizeFeatures ?? true,
      workers: m.workers ?? 2,
    },
    baselines: {
      logistic: logistic === false ? false : {
        l2: (typeof logistic === "object" ? logistic.l2 : undefined) ??
          [0.01, 0.1, 1, 10, 100, 1000, 10000],
      },
      mlp: mlp === false ? false : (typeof mlp === "object" ? mlp : {}),
    },
    ablations: {
      backbone: a.backbone ?? "vgg19",
      permutedPixels: a.permutedPixels ?? true,
      randomBackbone: a.randomBackbone ?? true,
      seed: a.seed ?? 7,
    },
    cacheDir: config.cacheDir ?? join(dataDir(), "experiments", config.name),
  };
  if (resolved.models.features === "cache" && resolved.models.normalization === "batch") {
    throw new Error(
      `models.normalization "batch" (per-batch z-normalisation) needs models.features ` +
        `"end-to-end": cached features cannot depend on the batch an image lands in.`,
    );
  }
  return resolved;
}

/** Parameter counts of a model. */
export interface ParamCounts {
  /** Values trained. */
  trainable: number;
  /** Values of the frozen backbone (0 for the baselines). */
  frozen: number;
}

/** One model's record in the results. */
export interface ModelResult {
  /** Unique name, e.g. `vgg19`, `logistic-regression`, `ablation-permuted-pixels-vgg19`. */
  name: string;
  /** `image` (a backbone's classifier), `baseline` or `ablation`. */
  kind: "image" | "baseline" | "ablation";
  /** One line on what it is. */
  description: string;
  /** The input it sees. */
  input: "image" | "embedding";
  /** The backbone, for image models. */
  backbone?: {
    name: string;
    standsInFor: string[];
    weights: "imagenet" | "random";
    sliceLayer: string | null;
    loadedFrom: string;
    featureShape: [number, number, number];
  };
  /** Hyper-parameters (architecture, epochs, learning rates, …). */
  config: Record<string, unknown>;
  /** Trainable and frozen parameter counts. */
  params: ParamCounts;
  /** Metrics on the test rows (reported) and the validation rows (used for selection). */
  metrics: { test: BinaryMetrics; validation?: BinaryMetrics };
  /** Test accuracy minus logistic regression's, and McNemar's exact test on the same rows. */
  versusLogistic?: { accuracyDifference: number; discordant: [number, number]; pValue: number };
  /** Per-epoch curves (trained models). */
  history?: EpochRecord[] | { epoch: number; trainLoss: number; validationAccuracy?: number }[];
  /** The epoch whose weights were kept. */
  selectedEpoch?: number;
  /** Seconds per phase. */
  timings: Record<string, number>;
}

/** Everything a run measured, ready for a report (JSON-serialisable). */
export interface ExperimentResults {
  /** Run name. */
  name: string;
  /** The configuration with defaults filled in. */
  config: ResolvedExperimentConfig;
  /** ISO times. */
  startedAt: string;
  finishedAt: string;
  /** Wall-clock seconds of the whole call. */
  totalSeconds: number;
  /** Image models whose results an earlier run trained (read from the cache; their times are that run's). */
  cachedModels: string[];
  /** Where it ran. */
  environment: { deno: string; backend: string; cores: number; os: string };
  /** Split sizes and label balance. */
  data: {
    scheme: string;
    train: number;
    validation: number;
    test: number;
    testPositives: number;
  };
  /** The encoder and the embedding width. */
  embedding: { encoder: string; features: number; seconds: number };
  /** The image transform. */
  images: {
    pixels: number;
    discretization: string;
    scaler: string;
    fitOn: string;
    klDivergence?: number;
    emptyPixels: number;
    seconds: number;
    cached: boolean;
  };
  /** Registered backbones that could not be used here, and why. */
  unavailable: { name: string; reason: string }[];
  /** One record per model. */
  models: ModelResult[];
  /** Deviations from the paper and other facts a reader needs. */
  notes: string[];
}

/** Progress of {@link runExperiment}. */
export interface ExperimentProgress extends Progress {
  /** The stage running. */
  stage: "data" | "embeddings" | "images" | "features" | "baselines" | "training";
  /** What within the stage (e.g. a backbone). */
  detail?: string;
}

/** Options of {@link runExperiment}. */
export interface RunExperimentOptions {
  /** Progress of every stage. */
  onProgress?: (progress: ExperimentProgress) => void;
  /** One line per notable event (default: to stderr). */
  log?: (line: string) => void;
  /** Stops between stages, batches and chunks; finished work stays cached. */
  signal?: AbortSignal;
}

function sha(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

function matrixHash(m: Matrix): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(m.shape));
  hash.update(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  return hash.digest("hex");
}

/** A copy of `images` in shared memory (posted to training workers without a copy each). */
function sharedImages(images: ImageBatch): ImageBatch {
  return { data: sharedCopy(images.data), shape: images.shape };
}

function rows(m: Matrix, start: number, end: number): Matrix {
  return {
    data: m.data.subarray(start * m.shape[1], end * m.shape[1]),
    shape: [end - start, m.shape[1]],
  };
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(`${path}.part`, JSON.stringify(value));
  await Deno.rename(`${path}.part`, path);
}

async function loadEncoder(
  config: ResolvedExperimentConfig["embedding"],
): Promise<TextEncoderModel> {
  if (config.encoder === "use-lite") return await UseLiteEncoder.load();
  if (config.encoder === "bert") {
    return await BertEncoder.load(config.model ?? "Xenova/bert-base-uncased");
  }
  throw new Error(`Unknown encoder ${config.encoder}: use "use-lite" or "bert".`);
}

/** Serialised form of a job result (typed arrays as plain arrays). */
interface StoredJobResult extends Omit<TrainJobResult, "validationProba" | "testProba"> {
  validationProba?: number[];
  testProba: number[];
}

/** The inputs every model of a run shares: splits, labels, embeddings, the fitted layout, images. */
export interface ExperimentInputs {
  /** The configuration with defaults filled in. */
  cfg: ResolvedExperimentConfig;
  /** The reviews of each part. */
  split: { train: Review[]; validation: Review[]; test: Review[] };
  /** Labels of each part. */
  labels: { train: Labels; validation: Labels; test: Labels };
  /** The text encoder. */
  encoder: TextEncoderModel;
  /** Embeddings of train, validation and test rows, in that order. */
  embeddings: Matrix;
  /** Embeddings of each part (views into {@link ExperimentInputs.embeddings}). */
  features: { train: Matrix; validation: Matrix; test: Matrix };
  /** The fitted image transformer, and the key of its cached JSON. */
  transformer: ImageTransformer;
  transformerKey: string;
  /** Whether the transformer came from the cache. */
  transformerCached: boolean;
  /** Images of each part. */
  images: { train: ImageBatch; validation: ImageBatch; test: ImageBatch };
  /** Pixels no feature maps to. */
  emptyPixels: number;
  /** Seconds spent on embeddings and on images. */
  seconds: { embeddings: number; images: number };
}

/**
 * Stages 1–3 of a run: reviews and splits, embeddings (embedding store) and the DeepInsight
 * images (fitted transformer cached as JSON). {@link runExperiment} starts with it; reports
 * and notebooks call it again after a run to get the same images from the caches.
 */
export async function prepareInputs(
  config: ExperimentConfig,
  options: RunExperimentOptions = {},
): Promise<ExperimentInputs> {
  const cfg = resolveExperimentConfig(config);
  const log = options.log ?? ((line: string) => console.error(line));
  const report = (p: ExperimentProgress) => options.onProgress?.(p);
  const signal = options.signal;
  await Deno.mkdir(cfg.cacheDir, { recursive: true });
  await ready();

  // 1. Reviews and splits.
  report({ stage: "data", done: 0 });
  const reviews = await loadImdb({
    source: cfg.data.source,
    breaks: cfg.data.breaks,
    onProgress: (p) => report({ stage: "data", ...p }),
  });
  const split = splitReviews(reviews, {
    scheme: cfg.data.scheme,
    seed: cfg.data.seed,
    trainSize: cfg.data.trainSize,
    testSize: cfg.data.testSize,
    ...(cfg.data.scheme === "standard" ? { validationFraction: cfg.data.validationFraction } : {}),
  });
  const parts: Review[][] = [split.train, split.validation, split.test];
  const [nTrain, nVal, nTest] = parts.map((p) => p.length);
  const yTrain = labelsOf(split.train),
    yVal = labelsOf(split.validation),
    yTest = labelsOf(split.test);
  log(
    `data: ${nTrain} train / ${nVal} validation / ${nTest} test reviews (${cfg.data.scheme} split)`,
  );
  signal?.throwIfAborted();

  // 2. Embeddings (cached in the embedding store).
  const t1 = performance.now();
  const encoder = await loadEncoder(cfg.embedding);
  const allTexts = parts.flat().map((r) => r.text);
  const embeddings = await embedTexts(encoder, allTexts, {
    layers: cfg.embedding.layers,
    pooling: cfg.embedding.pooling,
    maxTokens: cfg.embedding.maxTokens,
    batchSize: cfg.embedding.batchSize,
    onProgress: (p) => report({ stage: "embeddings", ...p }),
  });
  const embeddingSeconds = (performance.now() - t1) / 1000;
  const xTrain = rows(embeddings, 0, nTrain);
  const xVal = rows(embeddings, nTrain, nTrain + nVal);
  const xTest = rows(embeddings, nTrain + nVal, nTrain + nVal + nTest);
  log(`embeddings: ${encoder.id}, ${embeddings.shape[1]} features per review`);
  signal?.throwIfAborted();

  // 3. Image transformer (fitted once, saved as JSON) and images.
  const t2 = performance.now();
  const fitRows = cfg.image.fitOn === "all" ? embeddings : xTrain;
  // What the layout depends on (not how verbosely or on how many threads it is computed).
  const { verbose: _v, threads: _t, ...tsneKey } = cfg.image.tsne;
  const transformerKey = sha(
    JSON.stringify({ ...cfg.image, tsne: tsneKey }) + matrixHash(fitRows),
  ).slice(0, 16);
  const transformerPath = join(cfg.cacheDir, `image-transformer-${transformerKey}.json`);
  let transformer: ImageTransformer;
  const transformerCached = await exists(transformerPath);
  if (transformerCached) {
    transformer = await ImageTransformer.load(transformerPath);
  } else {
    transformer = new ImageTransformer({
      pixels: cfg.image.pixels,
      discretization: cfg.image.discretization,
      scaler: cfg.image.scaler,
      tsne: cfg.image.tsne,
    });
    await transformer.fit(fitRows, {
      onProgress: (p) => report({ stage: "images", done: p.done, total: p.total, detail: p.phase }),
    });
    await transformer.save(transformerPath);
  }
  const imagesOf = (x: Matrix) => transformer.transform(x, { channels: 1 }) as ImageBatch;
  const images = { train: imagesOf(xTrain), validation: imagesOf(xVal), test: imagesOf(xTest) };
  const density = transformer.featureDensityMatrix();
  let emptyPixels = 0;
  for (const v of density.data) if (v === 0) emptyPixels++;
  const imageSeconds = (performance.now() - t2) / 1000;
  log(
    `images: ${cfg.image.pixels}×${cfg.image.pixels}, layout fitted on ${cfg.image.fitOn} rows` +
      `${transformerCached ? " (cached)" : ""}, ${emptyPixels} empty pixels`,
  );
  signal?.throwIfAborted();
  return {
    cfg,
    split,
    labels: { train: yTrain, validation: yVal, test: yTest },
    encoder,
    embeddings,
    features: { train: xTrain, validation: xVal, test: xTest },
    transformer,
    transformerKey,
    transformerCached,
    images,
    emptyPixels,
    seconds: { embeddings: embeddingSeconds, images: imageSeconds },
  };
}

/**
 * Runs the experiment `config` (see {@link ExperimentConfig}) and returns every model's
 * metrics, timings and parameter counts. Needs the IMDB archive, the encoder's weights and
 * the backbones' weights (each with a clear error when missing).
 */
export async function runExperiment(
  config: ExperimentConfig,
  options: RunExperimentOptions = {},
): Promise<ExperimentResults> {
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const log = options.log ?? ((line: string) => console.error(line));
  const report = (p: ExperimentProgress) => options.onProgress?.(p);
  const signal = options.signal;
  const notes: string[] = [];
  const inputs = await prepareInputs(config, options);
  const { cfg, encoder, embeddings, transformer, transformerKey, transformerCached, images } =
    inputs;
  const { train: yTrain, validation: yVal, test: yTest } = inputs.labels;
  const { train: xTrain, validation: xVal, test: xTest } = inputs.features;
  const [nTrain, nVal, nTest] = [yTrain.length, yVal.length, yTest.length];
  const hasValidation = nVal > 0;
  const emptyPixels = inputs.emptyPixels;
  const { embeddings: embeddingSeconds, images: imageSeconds } = inputs.seconds;

  // 4. Baselines on the embeddings.
  const models: ModelResult[] = [];
  const testProbaOf = new Map<string, Float32Array>();
  const validationMetrics = (
    p?: Float32Array,
  ) => (hasValidation && p ? evaluateBinary(yVal, p) : undefined);
  if (cfg.baselines.logistic) {
    report({ stage: "baselines", done: 0, total: 2, detail: "logistic regression" });
    const t = performance.now();
    let best: { l2: number; model: LogisticRegression; accuracy: number } | undefined;
    const candidates = hasValidation ? cfg.baselines.logistic.l2 : [1];
    for (const l2 of candidates) {
      const model = new LogisticRegression({ l2, standardize: true }).fit(
        xTrain,
        yTrain,
      );
      const accuracy = hasValidation ? evaluateBinary(yVal, model.predictProba(xVal)).accuracy : 0;
      if (!best || accuracy > best.accuracy) best = { l2, model, accuracy };
    }
    const fitSeconds = (performance.now() - t) / 1000;
    const t3 = performance.now();
    const testProba = best!.model.predictProba(xTest);
    testProbaOf.set("logistic-regression", testProba);
    models.push({
      name: "logistic-regression",
      kind: "baseline",
      description: `L2 logistic regression on the standardised ${encoder.id} embeddings ` +
        `(l2 = 1/C chosen on the validation set from ${candidates.join(", ")})`,
      input: "embedding",
      config: { l2: best!.l2, candidates, standardize: true },
      params: { trainable: embeddings.shape[1] + 1, frozen: 0 },
      metrics: {
        test: evaluateBinary(yTest, testProba),
        validation: validationMetrics(best!.model.predictProba(xVal)),
      },
      timings: { fitSeconds, predictSeconds: (performance.now() - t3) / 1000 },
    });
    log(
      `baseline logistic regression: test accuracy ${
        models.at(-1)!.metrics.test.accuracy.toFixed(4)
      }`,
    );
  }
  if (cfg.baselines.mlp) {
    report({ stage: "baselines", done: 1, total: 2, detail: "MLP" });
    const mlp = new MLPClassifier({ seed: cfg.models.seed, ...cfg.baselines.mlp });
    mlp.fit(xTrain, yTrain, hasValidation ? { x: xVal, y: yVal } : undefined);
    const t3 = performance.now();
    const testProba = mlp.predictProba(xTest);
    testProbaOf.set("mlp", testProba);
    models.push({
      name: "mlp",
      kind: "baseline",
      description: `MLP on the standardised ${encoder.id} embeddings (hidden ` +
        `${
          JSON.stringify(mlp.options.hidden ?? [256])
        }, ReLU, dropout, Adam; best epoch on validation)`,
      input: "embedding",
      config: { ...mlp.options },
      params: { trainable: mlp.countParams(), frozen: 0 },
      metrics: {
        test: evaluateBinary(yTest, testProba),
        validation: validationMetrics(hasValidation ? mlp.predictProba(xVal) : undefined),
      },
      history: mlp.history_,
      selectedEpoch: mlp.selectedEpoch_,
      timings: { fitSeconds: mlp.fitSeconds_, predictSeconds: (performance.now() - t3) / 1000 },
    });
    mlp.dispose();
    log(`baseline MLP: test accuracy ${models.at(-1)!.metrics.test.accuracy.toFixed(4)}`);
  }
  signal?.throwIfAborted();

  // 5. Backbone features (cached on disk) and the training jobs.
  const unavailable: { name: string; reason: string }[] = [];
  for (const name of Object.keys(BACKBONES)) {
    if (!cfg.models.backbones.includes(name) && BACKBONES[name].sources.length === 0) {
      unavailable.push({ name, reason: BACKBONES[name].howToObtain ?? "no loadable source" });
    }
  }
  /** A trained image model's description, stored beside its job result. */
  interface PlannedModel {
    result: Omit<ModelResult, "metrics" | "params" | "timings" | "history"> & {
      frozen: number;
      featureSeconds: number;
    };
    job?: TrainJob;
    path: string;
    /** Read from an earlier run's result cache. */
    cached?: boolean;
  }
  interface StoredModel {
    key: string;
    result: PlannedModel["result"];
    job: StoredJobResult;
  }
  const upsample = cfg.models.upsample;
  const stats = imageStats(images.train); // one mean/std over the training images (see train/sources.ts)
  const permuted = cfg.ablations.permutedPixels
    ? {
      train: permutePixels(images.train, cfg.ablations.seed),
      validation: permutePixels(images.validation, cfg.ablations.seed),
      test: permutePixels(images.test, cfg.ablations.seed),
    }
    : undefined;
  const variants: {
    id: string;
    kind: "image" | "ablation";
    backbone: string;
    weights: "imagenet" | "random";
    images: typeof images;
    permutation?: number;
    description: string;
  }[] = [];
  for (const name of cfg.models.backbones) {
    variants.push({
      id: name,
      kind: "image",
      backbone: name,
      weights: "imagenet",
      images,
      description: `frozen ${name} slice + trainable conv stack and head`,
    });
  }
  if (permuted) {
    variants.push({
      id: `ablation-permuted-pixels-${cfg.ablations.backbone}`,
      kind: "ablation",
      backbone: cfg.ablations.backbone,
      weights: "imagenet",
      images: permuted,
      permutation: cfg.ablations.seed,
      description: `as ${cfg.ablations.backbone}, on images whose pixels are moved by one fixed ` +
        `random permutation (t-SNE layout destroyed)`,
    });
  }
  if (cfg.ablations.randomBackbone) {
    variants.push({
      id: `ablation-random-init-${cfg.ablations.backbone}`,
      kind: "ablation",
      backbone: cfg.ablations.backbone,
      weights: "random",
      images,
      description: `as ${cfg.ablations.backbone}, with the backbone's weights drawn at random ` +
        `(He normal, seed ${cfg.ablations.seed}) instead of ImageNet's`,
    });
  }
  // Everything a model's result depends on, so a finished model is found without loading
  // its backbone or features.
  const rowsKey = sha(
    transformerKey + matrixHash(embeddings) + JSON.stringify([nTrain, nVal, nTest]) +
      JSON.stringify(cfg.data),
  );
  const planned: PlannedModel[] = [];
  const doneJobs = new Map<string, TrainJobResult>();
  const jobResultOf = (stored: StoredJobResult): TrainJobResult => ({
    ...stored,
    validationProba: stored.validationProba ? Float32Array.from(stored.validationProba) : undefined,
    testProba: Float32Array.from(stored.testProba),
  });
  await Deno.mkdir(join(cfg.cacheDir, "models"), { recursive: true });
  for (const [index, v] of variants.entries()) {
    signal?.throwIfAborted();
    const spec = BACKBONES[v.backbone];
    if (!spec) {
      unavailable.push({ name: v.id, reason: `"${v.backbone}" is not a registered backbone` });
      continue;
    }
    const paperArchitecture = architectureFor(spec.standsInFor);
    const architecture: ArchitectureSpec = {
      ...paperArchitecture,
      head: { ...paperArchitecture.head, xavierGain: cfg.models.initGain },
    };
    const training = {
      architecture,
      epochs: cfg.models.epochs,
      batchSize: cfg.models.batchSize,
      lrConv: cfg.models.lrConv === "paper" ? architecture.lrConv : cfg.models.lrConv,
      lrHead: cfg.models.lrHead === "paper" ? architecture.lrHead : cfg.models.lrHead,
      seed: cfg.models.seed,
      standardizeFeatures: cfg.models.standardizeFeatures,
    };
    const key = sha(JSON.stringify({
      rowsKey,
      id: v.id,
      spec,
      weights: v.weights,
      permutation: v.permutation ?? null,
      randomSeed: v.weights === "random" ? cfg.ablations.seed : null,
      upsample,
      dtype: cfg.models.features === "cache" ? cfg.models.featureDtype : null,
      features: cfg.models.features,
      normalization: cfg.models.normalization,
      training,
    })).slice(0, 16);
    const path = join(cfg.cacheDir, "models", `${v.id}-${key}.json`);
    if (await exists(path)) {
      const stored = JSON.parse(await Deno.readTextFile(path)) as StoredModel;
      planned.push({ result: stored.result, path, cached: true });
      doneJobs.set(v.id, jobResultOf(stored.job));
      log(`${v.id}: result cached`);
      continue;
    }
    let backbone: Backbone;
    try {
      backbone = v.weights === "random"
        ? await randomlyInitialisedBackbone(v.backbone, cfg.ablations.seed)
        : await loadBackbone(v.backbone);
    } catch (e) {
      unavailable.push({ name: v.id, reason: (e as Error).message });
      log(`skipping ${v.id}: ${(e as Error).message}`);
      continue;
    }
    const t = performance.now();
    let inputs: TrainJobInputs;
    if (cfg.models.features === "cache") {
      const dirs: Record<string, string> = {};
      for (const part of ["train", "validation", "test"] as const) {
        if (part === "validation" && !hasValidation) continue;
        const z = zNormalizeImages(v.images[part], stats);
        const cache = await cacheFeatures(backbone, z, {
          preprocess: false,
          upsample,
          dtype: cfg.models.featureDtype,
          // Workers load a backbone from its registry spec: never for re-initialised weights.
          workers: v.weights === "random" ? 1 : cfg.models.workers,
          signal,
          onProgress: (p) =>
            report({ stage: "features", done: p.done, total: p.total, detail: `${v.id} ${part}` }),
        });
        dirs[part] = cache.dir;
      }
      inputs = { kind: "cache", train: dirs.train, validation: dirs.validation, test: dirs.test };
    } else {
      inputs = {
        kind: "images",
        train: sharedImages(v.images.train),
        validation: hasValidation ? sharedImages(v.images.validation) : undefined,
        test: sharedImages(v.images.test),
        backbone: v.backbone,
        weights: v.weights,
        randomSeed: cfg.ablations.seed,
        upsample,
        normalization: cfg.models.normalization === "batch" ? "batch" : stats,
      };
    }
    const featureSeconds = (performance.now() - t) / 1000;
    const featureShape = backbone.outputShape([
      cfg.image.pixels * upsample,
      cfg.image.pixels * upsample,
    ]);
    const job: TrainJob = {
      id: v.id,
      inputs,
      runKey: key,
      labels: { train: yTrain, validation: hasValidation ? yVal : undefined, test: yTest },
      ...training,
      checkpointDir: join(cfg.cacheDir, "checkpoints", `${v.id}-${key}`),
    };
    planned.push({
      job,
      path,
      result: {
        name: v.id,
        kind: v.kind,
        description: `${v.description} (${architecture.name}-type head)`,
        input: "image",
        backbone: {
          name: backbone.name,
          standsInFor: backbone.spec.standsInFor,
          weights: v.weights,
          sliceLayer: backbone.spec.sliceLayer,
          loadedFrom: backbone.loadedFrom,
          featureShape,
        },
        config: {
          ...training,
          upsample,
          imageSize: cfg.image.pixels,
          features: cfg.models.features,
          normalization: cfg.models.normalization === "batch"
            ? "z-score per batch (the paper)"
            : "z-score with the training images' mean and std",
          featureDtype: cfg.models.featureDtype,
        },
        frozen: backbone.model.countParams(),
        featureSeconds,
      },
    });
    backbone.dispose();
    log(
      `features ${index + 1}/${variants.length}: ${v.id} ${featureShape.join("×")} ` +
        `(${featureSeconds.toFixed(0)} s)`,
    );
  }

  // 6. Training, jobs in parallel (one per core), each finished model stored as JSON.
  const todo = planned.filter((p) => p.job);
  if (todo.length > 0) {
    const batchesOf = (p: PlannedModel) => Math.ceil(nTrain / p.job!.batchSize) * p.job!.epochs;
    const total = todo.reduce((s, p) => s + batchesOf(p), 0);
    const progress = new Map<string, number>();
    const bar = new ProgressBar(`training ${todo.length} models`, total, { unit: "batches" });
    signal?.throwIfAborted();
    await runTrainJobs(
      todo.map((p) => p.job!),
      Math.max(1, cfg.models.workers),
      {
        onProgress: (id, d) => {
          progress.set(id, d);
          const sum = [...progress.values()].reduce((a, b) => a + b, 0);
          bar.update(sum);
          report({ stage: "training", done: sum, total, detail: id });
        },
        onEpoch: (id, r) =>
          log(
            `${id} epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)} acc ` +
              `${r.trainAccuracy.toFixed(4)}` +
              (r.validationAccuracy !== undefined
                ? `, validation loss ${r.validationLoss!.toFixed(4)} acc ${
                  r.validationAccuracy.toFixed(4)
                }`
                : "") +
              ` (${r.trainSeconds.toFixed(0)} s, ${r.imagesPerSecond.toFixed(1)} images/s)`,
          ),
        onResult: async (r) => {
          doneJobs.set(r.id, r);
          const p = todo.find((q) => q.job!.id === r.id)!;
          const stored: StoredModel = {
            key: p.path,
            result: p.result,
            job: {
              ...r,
              validationProba: r.validationProba ? Array.from(r.validationProba) : undefined,
              testProba: Array.from(r.testProba),
            },
          };
          await writeJsonAtomic(p.path, stored);
        },
      },
      signal,
    );
    bar.finish();
  }
  for (const p of planned) {
    const r = doneJobs.get(p.result.name)!;
    testProbaOf.set(p.result.name, r.testProba);
    models.push({
      ...p.result,
      backbone: { ...p.result.backbone!, featureShape: r.featureShape },
      config: { ...p.result.config, padding: r.padding },
      params: { trainable: r.trainableParams, frozen: p.result.frozen },
      metrics: {
        test: evaluateBinary(yTest, r.testProba),
        validation: validationMetrics(r.validationProba),
      },
      history: r.history,
      selectedEpoch: r.selectedEpoch,
      timings: {
        featureSeconds: p.result.featureSeconds,
        loadSeconds: r.loadSeconds,
        fitSeconds: r.fitSeconds,
        predictSeconds: r.predictSeconds,
        trainImagesPerSecond: r.history.length
          ? r.history.reduce((s, h) => s + h.imagesPerSecond, 0) / r.history.length
          : 0,
      },
    });
    if (r.resumedEpochs > 0) {
      notes.push(`${p.result.name}: ${r.resumedEpochs} epoch(s) resumed from a checkpoint.`);
    }
  }

  // 7. Paired comparison with logistic regression on the same test rows.
  const logisticProba = testProbaOf.get("logistic-regression");
  if (logisticProba) {
    const logisticAccuracy = models.find((m) => m.name === "logistic-regression")!.metrics.test
      .accuracy;
    for (const m of models) {
      const proba = testProbaOf.get(m.name);
      if (m.name === "logistic-regression" || !proba) continue;
      const t = mcnemarTest(yTest, proba, logisticProba);
      m.versusLogistic = {
        accuracyDifference: m.metrics.test.accuracy - logisticAccuracy,
        discordant: [t.onlyFirstCorrect, t.onlySecondCorrect],
        pValue: t.pValue,
      };
    }
  }

  notes.push(
    `Images are ${cfg.image.pixels}×${cfg.image.pixels}` +
      (upsample !== 1 ? `, upsampled ×${upsample}` : ", not upsampled (the paper: ×3 to 150×150)") +
      `; the scaler and t-SNE layout were fitted on ${
        cfg.image.fitOn === "all"
          ? "all rows (transductive, as the official code)"
          : "the training rows only"
      }.`,
    cfg.models.features === "cache"
      ? `Backbone features are computed once per image and cached; the z-normalisation uses one ` +
        `mean and standard deviation over the training images instead of per batch (the paper), ` +
        `so the cached features do not depend on batch composition.`
      : `The backbone runs on every batch (end to end, frozen); z-normalisation ` +
        (cfg.models.normalization === "batch"
          ? `per batch, as the paper.`
          : `with one mean and standard deviation over the training images.`),
    ...(cfg.models.initGain.output !== Math.SQRT2 || cfg.models.initGain.hidden !== Math.SQRT2
      ? [
        `Dense layers are Xavier-initialised with gain ${cfg.models.initGain.hidden.toFixed(3)} ` +
        `(hidden) and ${cfg.models.initGain.output} (output layer) instead of the official code's ` +
        `√2 on every layer, whose confidently wrong initial predictions take about an epoch to ` +
        `unlearn.`,
      ]
      : []),
    ...(["lrConv", "lrHead"] as const).flatMap((key) => {
      const rate = cfg.models[key];
      if (rate === "paper") return [];
      const official = [
        ...new Set(cfg.models.backbones.map((b) => {
          const a = architectureFor(BACKBONES[b]?.standsInFor ?? []);
          return `${a.name} ${a[key]}`;
        })),
      ].join(", ");
      const why = key === "lrHead" && rate === DEFAULT_LR_HEAD
        ? "chosen on the validation set of the 5,000-review run: the official 1e-3 left vgg19 " +
          "at chance after its first epoch"
        : "as the config sets it";
      return [
        `${key === "lrConv" ? "Conv-stack" : "Head"} learning rate ${rate} for every model ` +
        `instead of each architecture's official one (${official}), ${why}.`,
      ];
    }),
    ...(cfg.models.standardizeFeatures
      ? [
        `Backbone features are standardised before the conv stack (not in the paper): minus ` +
        `their mean map over the training images, divided by each channel's spread across ` +
        `images. The images share most pixels, so the features are mostly one map common to ` +
        `every review; without this, resnet50 and mobilenet_v1 stayed at chance.`,
      ]
      : []),
    `Epochs: ${cfg.models.epochs} (the paper: 15); the kept weights are those of the epoch with the ` +
      `best validation accuracy${hasValidation ? "" : " (no validation set: the last epoch)"}.`,
    `Backbones stand in for the paper's networks (${
      cfg.models.backbones.map((b) =>
        `${b} → ${(BACKBONES[b]?.standsInFor ?? []).join("/") || "none"}`
      ).join(", ")
    }).`,
  );
  const paddings = models.filter((m) => m.config.padding === "same").map((m) => m.name);
  if (paddings.length) {
    notes.push(
      `"same" padding in the conv stack for ${paddings.join(", ")}: their feature maps are too ` +
        `small for the paper's unpadded convolutions.`,
    );
  }
  return {
    name: cfg.name,
    config: cfg,
    startedAt,
    finishedAt: new Date().toISOString(),
    totalSeconds: (performance.now() - started) / 1000,
    cachedModels: planned.filter((p) => p.cached).map((p) => p.result.name),
    environment: {
      deno: Deno.version.deno,
      backend: tf.getBackend(),
      cores: navigator.hardwareConcurrency,
      os: Deno.build.os,
    },
    data: {
      scheme: cfg.data.scheme,
      train: nTrain,
      validation: nVal,
      test: nTest,
      testPositives: yTest.reduce((s, v) => s + v, 0),
    },
    embedding: { encoder: encoder.id, features: embeddings.shape[1], seconds: embeddingSeconds },
    images: {
      pixels: cfg.image.pixels,
      discretization: cfg.image.discretization,
      scaler: cfg.image.scaler,
      fitOn: cfg.image.fitOn,
      klDivergence: transformer.klDivergence_,
      emptyPixels,
      seconds: imageSeconds,
      cached: transformerCached,
    },
    unavailable,
    models,
    notes,
  };
}
