/**
 * A run's trained models back in one call: {@link loadRun} reads a committed run
 * (`results/<name>/metrics.json` and `config.json`: its config and which models it holds),
 * then the run's caches (`data/experiments/<name>/`: the embeddings' store and fitted layout
 * through `prepareInputs`, every finished job and the model file beside it) and the text
 * encoder and backbones; {@link LoadedRun.predict} turns new texts into P(positive) for every
 * model and seed of the run, the way the run computed its own test predictions:
 *
 * - embeddings: the run's encoder with the run's options (layers, pooling, truncation);
 * - images: the fitted DeepInsight layout (and, for the permuted-pixel ablation, the same
 *   permutation of each seed);
 * - backbone features (image models): the same backbone (ImageNet weights, or the random
 *   weights drawn from the seed), z-normalised with the training images' mean and standard
 *   deviation, upsampled, fed without ImageNet scaling (or as `models.normalization` says),
 *   and rounded to `models.featureDtype` as the feature cache stored them;
 * - the model: logistic regression's weights, the MLP's layers (kept epoch) or the image
 *   classifier's selected-epoch weights with its feature standardisation.
 *
 * {@link LoadedRun.explain} draws one text's class activation map for one image model: Grad-CAM
 * (`lib/explain`'s `gradCam`) on the model's classifier and the very features `predict` feeds
 * it, brought back to the layout grid through the backbone's geometry.
 *
 * On the run's own test texts the probabilities equal the stored jobs' test predictions
 * (`tests/experiment_predict_test.ts` allows 1e-5 for the models on the embeddings and 1e-3
 * for image models, whose features the run computed in other batches and stored as float16;
 * on one machine they come out identical).
 *
 * ```ts
 * import { loadRun } from "./predict.ts";
 * const run = await loadRun("use-lite-5k");
 * for (const p of await run.predict(["A wonderful film.", "Dull and far too long."])) {
 *   console.log(p.model, p.seed, Array.from(p.probabilities));
 * }
 * const cam = await run.explain("A wonderful film."); // the run's first image model
 * console.log(cam.model, cam.probability, cam.cam.shape); // e.g. darknet_reference 0.93 [50, 50]
 * await run.dispose();
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { projectRoot } from "../config.ts";
import { LogisticRegression } from "../eval/logistic.ts";
import { gradCam } from "../explain/gradcam.ts";
import type { GradCamResult } from "../explain/gradcam.ts";
import type { InputGeometry } from "../explain/geometry.ts";
import { MLPClassifier } from "../eval/mlp.ts";
import { TfidfLogistic } from "../eval/tfidf.ts";
import { permutePixels } from "../image/mod.ts";
import { resolveEncodeOptions } from "../embed/mod.ts";
import type { ResolvedEncodeOptions, TextEncoderModel } from "../embed/mod.ts";
import {
  backboneFeatureSource,
  ImageClassifier,
  imageStats,
  zNormalizeImages,
} from "../train/mod.ts";
import type { ClassifierInput, ImageStats } from "../train/mod.ts";
import type { FeatureBatch, ImageBatch, Matrix } from "../types.ts";
import { loadBackbone, randomlyInitialisedBackbone } from "../vision/mod.ts";
import type { Backbone } from "../vision/mod.ts";
import { averagedLayouts, expandSweep, loadExperimentConfig, shippedConfigs } from "./config.ts";
import { baseImages, type ImagePlan } from "./features.ts";
import type { ResolvedConfig } from "./config.ts";
import { prepareInputs } from "./inputs.ts";
import type { ExperimentInputs, RunImages } from "./inputs.ts";
import { grayscale, type RunLayout } from "./layout.ts";
import { jobName, planModels, unavailableReason, withLayoutAverages } from "./plan.ts";
import type { ModelPlan } from "./plan.ts";
import { jobPath, readJob, readJobModel } from "./results.ts";
import { jobKey } from "./run.ts";
import type { ExperimentResults } from "./run.ts";
import { nearest } from "./schema.ts";
import { readResults } from "./write.ts";

/** Options of {@link loadRun}. */
export interface LoadRunOptions {
  /** Folder of committed runs (default `<project>/results`). */
  resultsDir?: string;
  /** The run's cache folder (default the config's: `<data>/experiments/<name>`). */
  cacheDir?: string;
  /** Only these models (model ids, e.g. `logistic-regression,darknet_reference`); default all. */
  models?: string[];
  /** Lines about what is read (default: none). */
  log?: (line: string) => void;
}

/** One model's (one seed's) probabilities. */
export interface ModelPrediction {
  /** Model id (prefixed `label/` in a sweep variant). */
  model: string;
  /** Its seed (`null`: logistic regression, fitted once). */
  seed: number | null;
  /** P(positive) per text, in the order given. */
  probabilities: Float32Array;
}

/** Options of {@link LoadedRun.explain}. */
export interface ExplainOptions {
  /**
   * The image model: a model id (`darknet_reference`, `label/…` in a sweep; its first seed)
   * or a job name (`darknet_reference@2`). Default: the run's first image model on intact
   * pixels (the first image model when all are permuted).
   */
  model?: string;
  /** The class whose score is explained: `"predicted"` (default, Grad-CAM's), 0 or 1. */
  target?: "predicted" | 0 | 1;
}

/** One text's class activation map for one image model (see {@link LoadedRun.explain}). */
export interface ModelExplanation {
  /** Model id (as in {@link ModelPrediction}). */
  model: string;
  /** Its seed. */
  seed: number;
  /** Job name (`id@seed`). */
  job: string;
  /**
   * The text's image as the model saw it, on the layout grid `[H, W]`: channels averaged
   * (multi-channel layouts), and permuted for the permuted-pixel ablation (whose map then
   * lies on the permuted grid too).
   */
  image: { data: Float32Array; shape: [number, number] };
  /**
   * The Grad-CAM map on the layout grid `[H, W]`, scaled to a maximum of 1 (all 0 when no
   * pixel speaks for the class).
   */
  cam: { data: Float32Array; shape: [number, number] };
  /** P(positive): the value {@link LoadedRun.predict} gives this model for the text. */
  probability: number;
  /** The class the map explains (0 negative, 1 positive). */
  target: number;
  /** What the classifier took: the text's backbone features `[1, h′, w′, c]`. */
  features: FeatureBatch;
  /** How those features were made from the layout's images (for `gradCam`'s `geometry`). */
  geometry: InputGeometry;
  /**
   * The whole Grad-CAM result, on `rows: "unseen"`: a typed text is none of the run's
   * train, validation or test rows, and its map is for figures only (`lib/explain`).
   */
  result: GradCamResult;
}

/** A loaded run: its models, ready to predict. */
export interface LoadedRun {
  /** Run name. */
  readonly name: string;
  /** The text encoder's identity (e.g. `use-lite:…`). */
  readonly encoder: string;
  /** The models loaded, in the run's order: id, seed, family, job name. */
  readonly models: { model: string; seed: number | null; family: string; job: string }[];
  /** P(positive) of every model and seed for each of `texts` (non-empty strings). */
  predict(texts: string[]): Promise<ModelPrediction[]>;
  /**
   * The Grad-CAM map of one image model for `text` (see {@link ExplainOptions} for which),
   * computed with `lib/explain`'s `gradCam` on the model's classifier and the features
   * `predict` computes, with the frozen backbone's geometry (`imageShape` the layout grid,
   * `upsample` the run's). Throws when the run has no image model, or `options.model` names
   * none (an averaged-layouts model: explain one of its layouts, `<id>.layout1`, …).
   */
  explain(text: string, options?: ExplainOptions): Promise<ModelExplanation>;
  /** Frees the models, backbones and encoders. */
  dispose(): Promise<void>;
}

/**
 * The run's files are not here (a fresh clone has no `data/`, or a cache was pruned): the
 * message names the command that recreates them and about how long it takes.
 */
export class MissingRunDataError extends Error {
  /** The command that recreates the files. */
  readonly command: string;

  /** Creates the error; `message` already names `command`. */
  constructor(message: string, command: string) {
    super(message);
    this.name = "MissingRunDataError";
    this.command = command;
  }
}

/** Rows per chunk of image-model prediction (a multiple of the classifier's batch of 64). */
const IMAGE_CHUNK = 512;

/** One loaded model of a variant. */
interface LoadedModel {
  plan: ModelPlan;
  name: string;
  /**
   * P(positive) from the texts' embeddings `x`, their images (`images(r)`: averaged layout `r`;
   * undefined: the run's layout) or the texts themselves (TF-IDF).
   */
  predict: (
    x: Matrix,
    images: (representation?: number) => RunImages,
    texts: string[],
  ) => Promise<Float32Array>;
  /** Image models: the classifier, its input for `images` and their geometry (for Grad-CAM). */
  explainInput?: (images: (representation?: number) => RunImages) => Promise<{
    classifier: ImageClassifier;
    seen: RunImages;
    input: FeatureBatch;
    geometry: InputGeometry;
  }>;
  dispose: () => void;
}

/** One loaded sweep variant (the whole run without a sweep). */
interface LoadedVariant {
  label: string;
  encoder: TextEncoderModel;
  encodeOptions: ResolvedEncodeOptions;
  width: number;
  /** The run's fitted layout (one, states as channels, or several). */
  layout: RunLayout;
  /** Averaged layouts' names (`layout1`, …), whose models' mean is the model itself. */
  layouts: string[];
  models: LoadedModel[];
  backbones: Backbone[];
}

/** How the run is made again: the command, and roughly how long it took. */
interface Remake {
  command: string;
  estimate: string;
}

/** Seconds as `about 1 h 25 min` / `about 12 min` / `under a minute`. */
function roughly(seconds: number): string {
  if (!(seconds >= 60)) return "under a minute";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min`;
  return `about ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The command that recreates the run's caches and its own time for it. */
function remakeOf(name: string, dir: string, results: ExperimentResults): Remake {
  const configFile = relative(projectRoot, join(dir, "config.json"));
  const config = shippedConfigs().includes(name) ? name : configFile;
  const workers = Math.max(1, results.config.models.workers);
  const jobSeconds = results.variants.flatMap((v) => v.models.flatMap((m) => m.runs)).reduce(
    (s, r) =>
      s + r.timings.featureSeconds + r.timings.loadSeconds + r.timings.fitSeconds +
      r.timings.predictSeconds,
    0,
  ) / workers;
  const inputSeconds = results.variants.reduce(
    (s, v) => s + v.embedding.seconds + v.images.seconds,
    0,
  );
  const seconds = Math.max(results.totalSeconds, jobSeconds + inputSeconds);
  const env = results.environment;
  return {
    command: `deno task reproduce --config ${config}`,
    estimate: `${roughly(seconds)}, the run's own time on ${env.cores} cores`,
  };
}

/** Reads `results/<name>/` and the run's config (its cache folder as `options` says). */
async function readCommittedRun(
  name: string,
  options: LoadRunOptions,
): Promise<{ dir: string; results: ExperimentResults; cfg: ResolvedConfig; remake: Remake }> {
  const resultsDir = options.resultsDir ?? join(projectRoot, "results");
  const dir = join(resultsDir, name);
  for (const file of ["metrics.json", "config.json"]) {
    if (!existsSync(join(dir, file))) {
      const runs = existsSync(resultsDir)
        ? [...Deno.readDirSync(resultsDir)].filter((e) => e.isDirectory).map((e) => e.name)
        : [];
      const near = nearest(name, runs);
      throw new Error(
        `no committed run "${name}": ${join(dir, file)} is missing (runs in ${resultsDir}: ${
          runs.join(", ") || "none"
        }${near ? `; did you mean "${near}"?` : ""}). Make it with \`deno task reproduce ` +
          `--config ${name}\`, or give the folder that holds it (--results DIR).`,
      );
    }
  }
  const results = await readResults(dir);
  const cfg = await loadExperimentConfig(
    join(dir, "config.json"),
    options.cacheDir ? { cacheDir: options.cacheDir } : {},
  );
  return { dir, results, cfg, remake: remakeOf(name, dir, results) };
}

/**
 * The variant's inputs from the run's caches only: a cache that would have to be computed
 * (embeddings, the layout) stops with a {@link MissingRunDataError} instead.
 */
async function cachedInputs(
  name: string,
  cfg: ResolvedConfig,
  remake: Remake,
  log: (line: string) => void,
): Promise<ExperimentInputs> {
  const missing = (what: string) =>
    new MissingRunDataError(
      `run "${name}": ${what} (a fresh clone has no data/ folder). Recreate the run's ` +
        `caches with \`${remake.command}\` (${remake.estimate}); cached parts are reused.`,
      remake.command,
    );
  if (!existsSync(join(cfg.cacheDir, "jobs"))) {
    throw missing(`its trained models are not in ${join(cfg.cacheDir, "jobs")}`);
  }
  return await prepareInputs(cfg, {
    log,
    onProgress: (p) => {
      // Progress of these stages is only reported while computing, never when reading.
      if (p.stage === "embeddings") {
        throw missing(
          `its embeddings are not all cached (or a run still in progress is making them)`,
        );
      }
      if (p.stage === "images") throw missing(`its fitted layout is not in ${cfg.cacheDir}`);
    },
  });
}

/** The frozen backbone of an image plan, shared between the models that use the same one. */
async function backboneFor(
  plan: Extract<ModelPlan, { family: "image" }>,
  cache: Map<string, Backbone>,
): Promise<Backbone> {
  const { backbone, weights } = plan.input;
  const id = weights === "random" ? `${backbone}@random${plan.seed}` : backbone;
  let found = cache.get(id);
  if (!found) {
    found = weights === "random"
      ? await randomlyInitialisedBackbone(backbone, plan.seed)
      : await loadBackbone(backbone);
    cache.set(id, found);
  }
  return found;
}

/** Rows `[start, end)` of an image batch (a view). */
function imageRows(images: RunImages, start: number, end: number): RunImages {
  const [, ...rest] = images.shape;
  const size = (rest as number[]).reduce((a, b) => a * b, 1);
  return {
    data: images.data.subarray(start * size, end * size),
    shape: [end - start, ...rest],
  } as RunImages;
}

/** Values rounded through float16, as a float16 feature cache stores them. */
function roundFloat16(features: FeatureBatch): FeatureBatch {
  return { data: Float32Array.from(new Float16Array(features.data)), shape: features.shape };
}

/**
 * The classifier's input for `images`, through its backbone the way the job's features were
 * made (`features.ts`): z-normalised with the training images' `stats`, upsampled, rounded
 * to the cache's dtype; or a source that runs the backbone per batch, end to end as the job
 * ran.
 */
async function imageInput(
  backbone: Backbone,
  images: RunImages,
  m: ResolvedConfig["models"],
  stats: ImageStats,
): Promise<ClassifierInput> {
  if (m.features === "end-to-end") {
    const normalization = m.normalization === "train" ? stats : m.normalization;
    if (images.shape.length !== 3) throw new Error("multi-channel images need cached features");
    return backboneFeatureSource(images as ImageBatch, backbone, {
      upsample: m.upsample,
      normalization,
    });
  }
  const imagenet = m.normalization === "imagenet";
  const input = imagenet ? images : zNormalizeImages(images, stats);
  const features = await backbone.features(input, {
    preprocess: imagenet,
    upsample: m.upsample,
    progressBar: false,
  });
  return m.featureDtype === "float16" ? roundFloat16(features) : features;
}

/** An input's feature maps in memory (an end-to-end source runs its backbone once). */
function inMemory(input: ClassifierInput): FeatureBatch {
  if (!("gather" in input)) return input;
  const t = input.gather(Array.from({ length: input.length }, (_, i) => i));
  try {
    return {
      data: Float32Array.from(t.dataSync() as Float32Array),
      shape: t.shape as [number, number, number, number],
    };
  } finally {
    t.dispose();
  }
}

/** P(positive) of an image classifier for `images` (see {@link imageInput}), in chunks. */
async function imageProba(
  clf: ImageClassifier,
  backbone: Backbone,
  images: RunImages,
  m: ResolvedConfig["models"],
  stats: ImageStats,
): Promise<Float32Array> {
  const n = images.shape[0];
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += IMAGE_CHUNK) {
    const part = imageRows(images, start, Math.min(n, start + IMAGE_CHUNK));
    out.set(clf.predictProba(await imageInput(backbone, part, m, stats)), start);
  }
  return out;
}

/** Reads one finished job's model and makes it a predictor. */
async function loadModel(
  plan: ModelPlan,
  path: string,
  inputs: ExperimentInputs,
  backbones: Map<string, Backbone>,
  stats: () => ImageStats,
  log: (line: string) => void,
): Promise<Omit<LoadedModel, "name">> {
  const stored = await readJob(path, log);
  if (!stored) throw new Error(`no finished job at ${path}`);
  const model = await readJobModel(path, stored);
  if (model.family === "logistic") {
    const lr = LogisticRegression.fromParameters(model.parameters);
    // deno-lint-ignore require-await
    return { plan, predict: async (x) => lr.predictProba(x), dispose: () => {} };
  }
  if (model.family === "tfidf") {
    const tfidf = TfidfLogistic.fromParameters(model.parameters);
    return {
      plan,
      // deno-lint-ignore require-await
      predict: async (_x, _images, texts) => tfidf.predictProba(texts),
      dispose: () => {},
    };
  }
  if (model.family === "mlp") {
    const mlp = MLPClassifier.fromState(model.state);
    // deno-lint-ignore require-await
    return { plan, predict: async (x) => mlp.predictProba(x), dispose: () => mlp.dispose() };
  }
  if (plan.family !== "image") throw new Error(`${path}: an image model for a ${plan.family} plan`);
  const backbone = await backboneFor(plan, backbones);
  const m = inputs.cfg.models;
  const side = inputs.cfg.image.pixels * m.upsample;
  const expected = backbone.outputShape([side, side]);
  if (JSON.stringify(expected) !== JSON.stringify(model.state.featureShape)) {
    throw new Error(
      `${path}: the model takes features [${model.state.featureShape}], ${backbone.name} ` +
        `gives [${expected}] here (another backbone version?)`,
    );
  }
  const clf = ImageClassifier.fromState(model.state);
  const seed = plan.seed;
  const seenOf = (images: (representation?: number) => RunImages) => {
    const own = images(plan.input.representation);
    return plan.input.pixels === "permuted" ? permutePixels(own, seed) : own;
  };
  const pixels = inputs.cfg.image.pixels;
  return {
    plan,
    predict: async (_x, images) => await imageProba(clf, backbone, seenOf(images), m, stats()),
    explainInput: async (images) => {
      const seen = seenOf(images);
      return {
        classifier: clf,
        seen,
        input: inMemory(await imageInput(backbone, seen, m, stats())),
        geometry: { imageShape: [pixels, pixels], upsample: m.upsample },
      };
    },
    dispose: () => clf.dispose(),
  };
}

/** The plans of a variant to load: the models `metrics.json` holds, filtered by `models`. */
function plansOf(
  cfg: ResolvedConfig,
  variant: ExperimentResults["variants"][number] | undefined,
  models: string[] | undefined,
): ModelPlan[] {
  const held = new Set(variant?.models.map((m) => m.id) ?? []);
  return planModels(cfg).filter((p) =>
    held.has(p.id) && (!models || models.includes(p.id)) &&
    (p.family !== "image" || !unavailableReason(p.input.backbone))
  );
}

/** Loads one sweep variant: inputs from the caches, every model's job and model file. */
async function loadVariant(
  name: string,
  label: string,
  cfg: ResolvedConfig,
  results: ExperimentResults,
  remake: Remake,
  options: LoadRunOptions,
): Promise<LoadedVariant> {
  const log = options.log ?? (() => {});
  const inputs = await cachedInputs(name, cfg, remake, log);
  const plans = plansOf(cfg, results.variants.find((v) => v.label === label), options.models);
  const backbones = new Map<string, Backbone>();
  let stats: ImageStats | undefined;
  const layoutStats: ImageStats[] = [];
  const models: LoadedModel[] = [];
  const problems: { job: string; message: string; noModel: boolean }[] = [];
  for (const plan of plans) {
    const job = (label ? `${label}/` : "") + jobName(plan);
    const path = jobPath(cfg.cacheDir, plan, await jobKey(plan, inputs));
    try {
      // One mean and std over the intact training images of the model's layout, as
      // features.ts takes them.
      const r = plan.family === "image" ? plan.input.representation : undefined;
      const train = () =>
        r === undefined
          ? (stats ??= imageStats(inputs.images.train))
          : (layoutStats[r] ??= imageStats(baseImages(plan as ImagePlan, inputs).train));
      const loaded = await loadModel(plan, path, inputs, backbones, train, log);
      models.push({ ...loaded, name: (label ? `${label}/` : "") + plan.id });
      log(`loaded ${job} from ${path}`);
    } catch (e) {
      const message = (e as Error).message;
      problems.push({ job, message, noModel: message.includes("before models were kept") });
    }
  }
  const { encoder: _e, model: _m, ...encodeOptions } = cfg.embedding;
  const loaded: LoadedVariant = {
    label,
    encoder: inputs.encoder,
    encodeOptions: resolveEncodeOptions(inputs.encoder, encodeOptions),
    width: inputs.embeddings.shape[1],
    layout: inputs.layout,
    layouts: averagedLayouts(cfg),
    models,
    backbones: [...backbones.values()],
  };
  if (problems.length > 0) {
    await disposeVariant(loaded);
    const jobs = problems.map((p) => p.job).join(",");
    throw new MissingRunDataError(
      `run "${name}": ${problems.length} model(s) cannot be loaded:\n` +
        problems.map((p) => `  ${p.job}: ${p.message}`).join("\n") +
        `\nRecreate them with \`${remake.command} --only ${jobs}\`` +
        (problems.some((p) => p.noModel)
          ? ` after deleting the job files named above (a stored job is reused as it is)`
          : "") +
        ` (the whole run took ${remake.estimate.replace(/, the run's own time.*/, "")}).`,
      `${remake.command} --only ${jobs}`,
    );
  }
  return loaded;
}

async function disposeVariant(v: LoadedVariant): Promise<void> {
  for (const m of v.models) m.dispose();
  for (const b of v.backbones) b.dispose();
  await v.encoder.dispose();
}

/** Throws unless `texts` is a non-empty list of texts with visible characters, naming the bad one. */
function checkPredictTexts(texts: string[]): void {
  if (!Array.isArray(texts) || texts.length === 0) {
    throw new Error("predict: give at least one text (a list of review texts)");
  }
  texts.forEach((text, i) => {
    if (typeof text !== "string") throw new TypeError(`predict: text ${i} is a ${typeof text}`);
    if (text.trim().length === 0) {
      throw new Error(
        `predict: text ${i} is empty (${JSON.stringify(text)}): an empty review has no words ` +
          `to embed; remove it or give its text`,
      );
    }
  });
}

/**
 * With averaged layouts: each model `<id>` (the mean of its classifiers `<id>.layout<k>`,
 * as `withAveragedLayouts` in results.ts makes it) added before its layouts' predictions.
 */
function withAveragedPredictions(
  predictions: ModelPrediction[],
  layouts: string[],
): ModelPrediction[] {
  return withLayoutAverages(
    predictions,
    layouts,
    (p) => p.model,
    (p) => p.seed,
    (model, members) => {
      const mean = new Float32Array(members[0].probabilities.length);
      for (const q of members) q.probabilities.forEach((v, i) => (mean[i] += v / members.length));
      return { model, seed: members[0].seed, probabilities: mean };
    },
  );
}

/** The embeddings of `texts` and their images (`images(r)`: averaged layout `r`), made once. */
async function encodeVariant(
  v: LoadedVariant,
  texts: string[],
): Promise<{ x: Matrix; imagesOf: (representation?: number) => RunImages }> {
  const x = await v.encoder.encode(texts, v.encodeOptions);
  if (x.shape[1] !== v.width) {
    throw new Error(`the encoder gave ${x.shape[1]} features per text, the run had ${v.width}`);
  }
  let images: RunImages | undefined;
  let each: RunImages[] | undefined;
  const imagesOf = (r?: number) =>
    r === undefined ? (images ??= v.layout.transform(x)) : (each ??= v.layout.transformEach!(x))[r];
  return { x, imagesOf };
}

/** P(positive) of every model of a loaded variant for `texts`. */
async function predictVariant(v: LoadedVariant, texts: string[]): Promise<ModelPrediction[]> {
  const { x, imagesOf } = await encodeVariant(v, texts);
  const out: ModelPrediction[] = [];
  for (const m of v.models) {
    out.push({
      model: m.name,
      seed: m.plan.seed,
      probabilities: await m.predict(x, imagesOf, texts),
    });
  }
  return withAveragedPredictions(out, v.layouts);
}

/** The image model `options.model` names (see {@link ExplainOptions}), with its variant. */
function explainedModel(
  name: string,
  variants: LoadedVariant[],
  wanted: string | undefined,
): { variant: LoadedVariant; model: LoadedModel } {
  const all = variants.flatMap((variant) => variant.models.map((model) => ({ variant, model })));
  const images = all.filter((e) => e.model.explainInput);
  const jobOf = (e: (typeof all)[number]) =>
    `${e.model.name}${e.model.plan.seed === null ? "" : `@${e.model.plan.seed}`}`;
  if (wanted === undefined) {
    const intact = images.find((e) =>
      e.model.plan.family === "image" && e.model.plan.input.pixels !== "permuted"
    );
    const found = intact ?? images[0];
    if (!found) {
      throw new Error(
        `explain: run "${name}" has no image model loaded (it has ${
          all.map(jobOf).join(", ") || "none"
        }); Grad-CAM explains image classifiers only`,
      );
    }
    return found;
  }
  const found = images.find((e) => jobOf(e) === wanted) ??
    images.find((e) => e.model.name === wanted);
  if (found) return found;
  const names = [...new Set(images.flatMap((e) => [e.model.name, jobOf(e)]))];
  const layouts = variants[0]?.layouts ?? [];
  const averaged = layouts.length > 0 && images.some((e) => e.model.name.startsWith(`${wanted}.`));
  const other = all.find((e) => e.model.name === wanted || jobOf(e) === wanted);
  const near = nearest(wanted, names);
  throw new Error(
    `explain: run "${name}" has no image model "${wanted}"` +
      (averaged
        ? ` of its own: it is the mean of ${
          layouts.map((l) => `${wanted}.${l}`).join(", ")
        }; explain one of those`
        : other
        ? ` (it is a ${other.model.plan.family} model; Grad-CAM explains image classifiers)`
        : "") +
      ` (image models: ${names.join(", ") || "none"})` +
      (near && !averaged ? `; did you mean "${near}"?` : ""),
  );
}

/** Grad-CAM of one image model of `variant` for `text` (see {@link LoadedRun.explain}). */
async function explainText(
  variant: LoadedVariant,
  model: LoadedModel,
  text: string,
  target: ExplainOptions["target"],
): Promise<ModelExplanation> {
  const { imagesOf } = await encodeVariant(variant, [text]);
  const { classifier, seen, input, geometry } = await model.explainInput!(imagesOf);
  const result = gradCam(classifier, input, {
    rows: "unseen",
    target: target ?? "predicted",
    geometry,
  });
  const [, H, W] = result.cams.shape;
  const seed = model.plan.seed ?? 0;
  return {
    model: model.name,
    seed,
    job: `${model.name}@${seed}`,
    image: { data: grayscale(seen).data.slice(0, H * W), shape: [H, W] },
    cam: { data: result.cams.data.slice(0, H * W), shape: [H, W] },
    probability: classifier.predictProba(input)[0],
    target: result.targets[0],
    features: input,
    geometry,
    result,
  };
}

/**
 * Loads every trained model of the committed run `name` (see the module doc). Throws a
 * {@link MissingRunDataError} naming the command that recreates them (and about how long it
 * takes) when the run's caches are not here, or when some jobs' models were never kept or
 * are damaged; an error naming the runs there when `results/<name>/` does not exist.
 */
export async function loadRun(name: string, options: LoadRunOptions = {}): Promise<LoadedRun> {
  const { results, cfg, remake } = await readCommittedRun(name, options);
  const ids = [...new Set(results.variants.flatMap((v) => v.models.map((m) => m.id)))];
  const unknown = (options.models ?? []).filter((id) => !ids.includes(id));
  if (unknown.length > 0) {
    const near = nearest(unknown[0], ids);
    throw new Error(
      `run "${name}" has no model ${unknown.join(", ")} (it has ${ids.join(", ")})` +
        (near ? `; did you mean "${near}"?` : ""),
    );
  }
  const variants: LoadedVariant[] = [];
  try {
    for (const variant of expandSweep(cfg)) {
      variants.push(
        await loadVariant(name, variant.label, variant.config, results, remake, options),
      );
    }
  } catch (e) {
    for (const v of variants) await disposeVariant(v);
    throw e;
  }
  return {
    name,
    encoder: variants[0]?.encoder.id ?? "",
    models: variants.flatMap((v) =>
      v.models.map((m) => ({
        model: m.name,
        seed: m.plan.seed,
        family: m.plan.family,
        job: (v.label ? `${v.label}/` : "") + jobName(m.plan),
      }))
    ),
    async predict(texts: string[]): Promise<ModelPrediction[]> {
      checkPredictTexts(texts);
      const out: ModelPrediction[] = [];
      for (const v of variants) out.push(...await predictVariant(v, texts));
      return out;
    },
    async explain(text: string, options: ExplainOptions = {}): Promise<ModelExplanation> {
      checkPredictTexts([text]);
      const { variant, model } = explainedModel(name, variants, options.model);
      return await explainText(variant, model, text, options.target);
    },
    async dispose(): Promise<void> {
      for (const v of variants) await disposeVariant(v);
      variants.length = 0;
    },
  };
}
