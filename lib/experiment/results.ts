/**
 * A run's results: every finished job stored as one JSON file in the run's cache (so a run
 * resumes, a job can run on its own with `--only`, and `--collect` assembles a results
 * folder from finished jobs) with its fitted model beside it (`<job>-<key>.model.bin`, see
 * {@link StoredModelRef}; read back by {@link readJobModel} for `predict.ts`), and the
 * aggregation of the jobs into per-model summaries over
 * seeds with paired comparisons on the same test rows.
 *
 * Comparisons: each model against logistic regression, and each ablation against its intact
 * model, by a paired bootstrap that resamples seeds and test rows together (see
 * `lib/eval/stats.ts`: it carries both the test-set sampling and the seed-to-seed variation
 * into the interval, which neither a per-seed McNemar test nor a t-test over a few seeds
 * does); p-values are Holm-corrected within each family of comparisons (all models against
 * logistic regression; the ablations against their intact models). Per seed, McNemar's exact
 * test against logistic regression is kept as well.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { exists } from "../download.ts";
import {
  CorruptCacheError,
  parseJsonObject,
  sealJson,
  sha256Hex,
  verifyHash,
  verifySeal,
  verifyVersion,
  writeAtomic,
} from "../integrity.ts";
import { safeJoin } from "../safe_path.ts";
import { evaluateBinary, mcnemarTest } from "../eval/metrics.ts";
import type { BinaryMetrics } from "../eval/metrics.ts";
import type { MLPEpochRecord } from "../eval/mlp.ts";
import { correctness, holmAdjust, pairedBootstrap, summarizeSeeds } from "../eval/stats.ts";
import type { SeedSummary } from "../eval/stats.ts";
import type { EpochRecord } from "../train/mod.ts";
import { CONFIG_SCHEMA_VERSION, portablePath } from "./config.ts";
import type { BackboneRecord } from "./features.ts";
import type { ExperimentInputs, InputsProvenance } from "./inputs.ts";
import type { JobResult, TrainedModel } from "./jobs.ts";
import type { ModelPlan } from "./plan.ts";
import { jobName, withLayoutAverages } from "./plan.ts";

/**
 * Version of the job stage (training and prediction of every model family): bumped by hand
 * when what a job computes changes (see `lib/integrity.ts`); a stored job of another version
 * is recomputed, and the log says so.
 */
export const JOB_STAGE_VERSION = 2;

/** A finished job as stored in the run's cache (`jobs/<job>-<key>.json`). */
export interface StoredJob {
  /** Format version. */
  schemaVersion: number;
  /** {@link JOB_STAGE_VERSION} of the code that made it. */
  stageVersion: number;
  /** Job name (`id@seed`). */
  job: string;
  /** Key of everything the result depends on. */
  key: string;
  /** The planned model. */
  plan: ModelPlan;
  /** The backbone (image models). */
  backbone?: BackboneRecord;
  /** Seconds computing or reading the backbone features. */
  featureSeconds: number;
  /**
   * The fitted model's file beside this one (absent in jobs stored before models were kept:
   * such a job's model cannot be loaded; `predict.ts` says how to make it again).
   */
  model?: StoredModelRef;
  /** The result, probabilities as plain arrays (the model is in {@link StoredJob.model}). */
  result: Omit<JobResult, "validationProba" | "testProba" | "model"> & {
    validationProba?: number[];
    testProba: number[];
  };
  /** When and by which run it was made. */
  madeAt: string;
  /** The run name that made it. */
  madeBy: string;
  /** The code version (git commit) that made it. */
  madeByCode: string;
}

/**
 * Where a job's fitted model lies: a binary file beside the job's JSON, described by the
 * job's (sealed) record, which also holds the file's SHA-256, so the pair verifies as one.
 * The file holds the arrays back to back, little-endian, each at an offset aligned to its
 * element size; everything else the model needs (options, architecture, intercept) is the
 * JSON `spec`. Per family:
 *
 * - `logistic`: spec `{ intercept, l2, standardize }`, array `coef` (float64, the weights for
 *   the original embedding features: the fit's standardisation is folded in);
 * - `tfidf`: spec `{ vectorizer: { options, terms }, logistic: { intercept, l2 } }`, arrays
 *   `idf` and `coef` (float64);
 * - `mlp`: spec `{ config, selectedEpoch, layers }`, arrays `mean`, `scale` (the training
 *   rows' standardisation) and `dense<i>/kernel`, `dense<i>/bias` (float32, kept epoch);
 * - `image`: spec `{ architecture, featureShape, standardizeFeatures, selectedEpoch }`,
 *   arrays: every weight of the trainable network by name (float32, selected epoch): conv
 *   stack, BatchNorm running statistics, head, and `input/mean`, `input/scale` (the feature
 *   standardisation) when it has one.
 */
export interface StoredModelRef {
  /** File name beside the job's JSON (`<job>-<key>.model.bin`). */
  file: string;
  /** SHA-256 (hex) of the file's bytes. */
  sha256: string;
  /** The file's size in bytes. */
  bytes: number;
  /** The model family. */
  family: TrainedModel["family"];
  /** The model's non-array facts (see above). */
  spec: Record<string, unknown>;
  /** Where each array lies in the file (`offset` in bytes, `length` in elements). */
  arrays: ModelArrayEntry[];
}

/** One array of a model file. */
export interface ModelArrayEntry {
  /** Its name. */
  name: string;
  /** Element type. */
  dtype: "float32" | "float64";
  /** Its shape. */
  shape: number[];
  /** Byte offset in the file. */
  offset: number;
  /** Elements. */
  length: number;
}

type ModelArrays = Record<string, { data: Float32Array | Float64Array; shape: number[] }>;

function jobStem(plan: ModelPlan, key: string): string {
  return `${jobName(plan).replace("@", "-s")}-${key}`;
}

/** Path of a job's stored result. */
export function jobPath(cacheDir: string, plan: ModelPlan, key: string): string {
  return join(cacheDir, "jobs", `${jobStem(plan, key)}.json`);
}

/** The model's arrays and JSON facts (see {@link StoredModelRef} for each family's). */
function modelParts(model: TrainedModel): { spec: Record<string, unknown>; arrays: ModelArrays } {
  if (model.family === "logistic") {
    const { coef, ...spec } = model.parameters;
    return { spec, arrays: { coef: { data: coef, shape: [coef.length] } } };
  }
  if (model.family === "tfidf") {
    const { vectorizer: { idf, ...vectorizer }, logistic: { coef, ...logistic } } =
      model.parameters;
    return {
      spec: { vectorizer, logistic },
      arrays: {
        idf: { data: idf, shape: [idf.length] },
        coef: { data: coef, shape: [coef.length] },
      },
    };
  }
  if (model.family === "mlp") {
    const { mean, scale, layers, ...rest } = model.state;
    const arrays: ModelArrays = {
      mean: { data: mean, shape: [mean.length] },
      scale: { data: scale, shape: [scale.length] },
    };
    layers.forEach((l, i) => {
      arrays[`dense${i}/kernel`] = { data: l.kernel, shape: [...l.shape] };
      arrays[`dense${i}/bias`] = { data: l.bias, shape: [l.bias.length] };
    });
    return { spec: { ...rest, layers: layers.length }, arrays };
  }
  const { weights, ...spec } = model.state;
  return { spec, arrays: weights };
}

/** A model as its record's fields and the file's bytes. */
export function encodeModel(
  model: TrainedModel,
  file: string,
): { ref: StoredModelRef; bytes: Uint8Array } {
  const { spec, arrays } = modelParts(model);
  const entries: ModelArrayEntry[] = [];
  let offset = 0;
  for (const [name, { data, shape }] of Object.entries(arrays)) {
    const size = data.BYTES_PER_ELEMENT;
    offset = Math.ceil(offset / size) * size;
    const dtype = data instanceof Float64Array ? "float64" : "float32";
    entries.push({ name, dtype, shape, offset, length: data.length });
    offset += data.byteLength;
  }
  const bytes = new Uint8Array(offset);
  for (const e of entries) {
    const data = arrays[e.name].data;
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), e.offset);
  }
  const ref: StoredModelRef = {
    file,
    sha256: sha256Hex(bytes),
    bytes: bytes.length,
    family: model.family,
    spec,
    arrays: entries,
  };
  return { ref, bytes };
}

/** The arrays of a verified model file (copies, aligned). */
function modelArrays(ref: StoredModelRef, bytes: Uint8Array, path: string): ModelArrays {
  const out: ModelArrays = {};
  for (const e of ref.arrays) {
    const size = e.dtype === "float64" ? 8 : 4;
    const elements = e.shape.reduce((a, b) => a * b, 1);
    if (
      !Number.isInteger(e.offset) || e.offset < 0 || elements !== e.length ||
      e.offset + e.length * size > bytes.length || e.name === "__proto__"
    ) {
      throw new CorruptCacheError(path, `bad array entry ${JSON.stringify(e)}`);
    }
    const copy = bytes.slice(e.offset, e.offset + e.length * size).buffer;
    out[e.name] = {
      data: e.dtype === "float64" ? new Float64Array(copy) : new Float32Array(copy),
      shape: e.shape,
    };
  }
  return out;
}

/** The model back from its record and verified bytes (the inverse of {@link encodeModel}). */
export function decodeModel(ref: StoredModelRef, bytes: Uint8Array, path: string): TrainedModel {
  const arrays = modelArrays(ref, bytes, path);
  const f32 = (name: string): Float32Array => {
    const a = arrays[name]?.data;
    if (!(a instanceof Float32Array)) throw new CorruptCacheError(path, `no float32 ${name}`);
    return a;
  };
  // deno-lint-ignore no-explicit-any
  const spec = ref.spec as any;
  if (ref.family === "logistic") {
    const coef = arrays.coef?.data;
    if (!(coef instanceof Float64Array)) throw new CorruptCacheError(path, "no float64 coef");
    return { family: "logistic", parameters: { ...spec, coef } };
  }
  if (ref.family === "tfidf") {
    const idf = arrays.idf?.data, coef = arrays.coef?.data;
    if (!(idf instanceof Float64Array) || !(coef instanceof Float64Array)) {
      throw new CorruptCacheError(path, "no float64 idf and coef");
    }
    return {
      family: "tfidf",
      parameters: {
        vectorizer: { ...spec.vectorizer, idf },
        logistic: { ...spec.logistic, coef },
      },
    };
  }
  if (ref.family === "mlp") {
    const layers = Array.from({ length: spec.layers as number }, (_, i) => ({
      kernel: f32(`dense${i}/kernel`),
      shape: arrays[`dense${i}/kernel`].shape as [number, number],
      bias: f32(`dense${i}/bias`),
    }));
    const { layers: _n, ...rest } = spec;
    return { family: "mlp", state: { ...rest, mean: f32("mean"), scale: f32("scale"), layers } };
  }
  if (ref.family === "image") {
    const weights: Record<string, { data: Float32Array; shape: number[] }> = {};
    for (const name of Object.keys(arrays)) {
      weights[name] = { data: f32(name), shape: arrays[name].shape };
    }
    return { family: "image", state: { ...spec, weights } };
  }
  throw new CorruptCacheError(path, `unknown model family ${JSON.stringify(ref.family)}`);
}

/** Model bytes of records made by {@link storedJobOf}, written by {@link storeJob}. */
const pendingModels = new WeakMap<StoredJob, Uint8Array>();

/**
 * Writes a finished job atomically, as self-hashed JSON `{ sha256, job }` (see `sealJson`),
 * its model file first (atomically too), so a job record never names a file not yet written.
 */
export async function storeJob(path: string, stored: StoredJob): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const bytes = pendingModels.get(stored);
  if (stored.model && bytes) {
    await writeAtomic(safeJoin(dirname(path), stored.model.file, "model file"), bytes);
  }
  await writeAtomic(path, sealJson({ job: stored }));
  pendingModels.delete(stored);
}

/**
 * The fitted model of a stored job read from `jobs/<job>-<key>.model.bin` beside `path`
 * (the job's JSON), its size and SHA-256 checked against the job's record. Throws when the
 * job was stored before models were kept, or the file is missing or damaged (naming it).
 */
export async function readJobModel(path: string, stored: StoredJob): Promise<TrainedModel> {
  const ref = stored.model;
  if (!ref) {
    throw new Error(
      `${path}: job ${stored.job} was stored before models were kept beside jobs, so it has no ` +
        `model to load`,
    );
  }
  const file = safeJoin(dirname(path), ref.file, `job record ${path}: model file`);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new CorruptCacheError(file, "missing");
    throw e;
  }
  if (bytes.length !== ref.bytes) {
    throw new CorruptCacheError(file, `${bytes.length} bytes, ${ref.bytes} recorded`);
  }
  verifyHash(bytes, ref.sha256, file);
  return decodeModel(ref, bytes, file);
}

/**
 * Reads a stored job, or undefined when absent. A damaged file (changed bytes, truncated,
 * no hash) or one made by another job stage version is never read as data: the log names
 * the file, and the caller recomputes the job.
 */
export async function readJob(
  path: string,
  log: (line: string) => void,
): Promise<StoredJob | undefined> {
  if (!(await exists(path))) return undefined;
  try {
    const text = await Deno.readTextFile(path);
    const record = parseJsonObject(text, path);
    verifySeal(text, path);
    if (typeof record.job !== "object" || record.job === null) {
      throw new CorruptCacheError(path, "no job record");
    }
    const stored = record.job as StoredJob;
    verifyVersion(stored.stageVersion, JOB_STAGE_VERSION, "the job stage", path);
    if (stored.schemaVersion !== CONFIG_SCHEMA_VERSION) {
      throw new CorruptCacheError(path, `results format ${stored.schemaVersion}`);
    }
    return stored;
  } catch (e) {
    log((e as Error).message);
    return undefined;
  }
}

/** The result of a stored job with typed arrays back. */
export function jobResultOf(stored: StoredJob): JobResult {
  const r = stored.result;
  return {
    ...r,
    validationProba: r.validationProba ? Float32Array.from(r.validationProba) : undefined,
    testProba: Float32Array.from(r.testProba),
  };
}

/**
 * A stored job record for `result`; its model (when the result has one) is named in the
 * record with its hash, and its bytes are written by {@link storeJob} with the record. The
 * model moves into the record: it is removed from `result`, so that results kept in memory
 * until the run ends (the pool's) do not hold every model's weights.
 */
export function storedJobOf(
  plan: ModelPlan,
  key: string,
  result: JobResult,
  extra: { backbone?: BackboneRecord; featureSeconds: number; run: string; code: string },
): StoredJob {
  const { model, ...rest } = result;
  const encoded = model ? encodeModel(model, `${jobStem(plan, key)}.model.bin`) : undefined;
  delete result.model;
  const stored: StoredJob = {
    schemaVersion: CONFIG_SCHEMA_VERSION,
    stageVersion: JOB_STAGE_VERSION,
    job: jobName(plan),
    key,
    plan,
    backbone: extra.backbone
      ? { ...extra.backbone, loadedFrom: portableLoadedFrom(extra.backbone.loadedFrom) }
      : undefined,
    featureSeconds: extra.featureSeconds,
    ...(encoded ? { model: encoded.ref } : {}),
    result: {
      ...rest,
      validationProba: rest.validationProba ? Array.from(rest.validationProba) : undefined,
      testProba: Array.from(rest.testProba),
    },
    madeAt: new Date().toISOString(),
    madeBy: extra.run,
    madeByCode: extra.code,
  };
  if (encoded) pendingModels.set(stored, encoded.bytes);
  return stored;
}

function portableLoadedFrom(text: string): string {
  return text.replace(/(^|[\s(])(\/[^\s()]+)/g, (_, pre, path) => pre + portablePath(path));
}

/** One trained model (one seed) in the results. */
export interface ModelRun {
  /** Its seed (`null`: deterministic, fitted once). */
  seed: number | null;
  /** Job name. */
  job: string;
  /** Metrics on the test rows (reported) and the validation rows (used for selection). */
  metrics: { test: BinaryMetrics; validation?: BinaryMetrics };
  /** Against logistic regression on the same test rows: difference and McNemar's exact test. */
  versusLogistic?: { difference: number; discordant: [number, number]; pValue: number };
  /** Per-epoch records (trained models). */
  history?: EpochRecord[] | MLPEpochRecord[];
  /** The epoch whose weights were kept. */
  selectedEpoch?: number;
  /** Epochs trained. */
  epochsRun?: number;
  /** Whether early stopping ended the fit. */
  stoppedEarly?: boolean;
  /** Epochs read from a checkpoint instead of trained by the job's process. */
  resumedEpochs?: number;
  /** Trainable and frozen parameter counts. */
  params: { trainable: number; frozen: number };
  /** Seconds per phase (features: computing or reading them in the run that made the job). */
  timings: {
    featureSeconds: number;
    loadSeconds: number;
    fitSeconds: number;
    predictSeconds: number;
  };
  /** Model-specific facts (chosen l2, padding, input shape). */
  details: Record<string, unknown>;
  /** Provenance: made by this run, or read from the cache of an earlier one. */
  provenance: {
    computed: boolean;
    madeAt: string;
    madeBy: string;
    code: string;
    features?: BackboneRecord["features"];
    featureOrigin?: BackboneRecord["featureOrigin"];
  };
}

/** A paired comparison of two models on the same test rows (and seeds). */
export interface Comparison {
  /** The model compared. */
  model: string;
  /** What it is compared against. */
  against: string;
  /** Mean accuracy difference (model − against) over seeds and rows. */
  difference: number;
  /** 95% paired-bootstrap interval of the difference. */
  ci95: [number, number];
  /** Two-sided paired-bootstrap p-value. */
  pValue: number;
  /** Holm-corrected p-value within its family of comparisons. */
  pHolm: number;
  /** Seeds and bootstrap resamples used. */
  seeds: number;
  /** Bootstrap resamples. */
  resamples: number;
}

/** One model over its seeds. */
export interface ModelSummary {
  /** Model name. */
  id: string;
  /** Role. */
  kind: ModelPlan["kind"];
  /** Estimator family. */
  family: ModelPlan["family"];
  /** One line on what it is. */
  description: string;
  /** The input it sees: the embedding, its image, or the raw text (TF-IDF). */
  input: "embedding" | "image" | "text";
  /** The backbone (image models; the first seed's, names differ per seed for random weights). */
  backbone?: BackboneRecord;
  /** The classifier options, whole (the first seed's; only the seed differs between runs). */
  options: Record<string, unknown>;
  /** One run per seed. */
  runs: ModelRun[];
  /** Test metrics over seeds. */
  test: { accuracy: SeedSummary; f1: SeedSummary; rocAuc: SeedSummary };
  /** Validation accuracy over seeds (when there is a validation set). */
  validation?: { accuracy: SeedSummary };
  /** Against logistic regression (paired bootstrap over seeds and test rows, Holm-corrected). */
  versusLogistic?: Comparison;
}

/** The results of one sweep variant (the whole run without a sweep). */
export interface VariantResults {
  /** `field=value` of the sweep ("" without one). */
  label: string;
  /** The swept fields' values. */
  values: Record<string, unknown>;
  /**
   * The data's name, split sizes, label balance and which raw label is 0 and which 1 (`name`
   * and `labels`: set for sources other than IMDB, whose labels are fixed: `neg` 0, `pos` 1).
   */
  data: {
    scheme: string;
    train: number;
    validation: number;
    test: number;
    testPositives: number;
    name?: string;
    labels?: { negative: string; positive: string };
  };
  /** The encoder, the embedding width, seconds, and texts read from the store (not computed). */
  embedding: { encoder: string; features: number; seconds: number; cachedTexts: number };
  /** The image transform. */
  images: {
    pixels: number;
    /** The feature map (absent in results written before it was recorded: t-SNE). */
    featureExtractor?: string;
    /** pyDeepInsight geometry, when reproduced. */
    compat?: string;
    /** Channels before the mapping to RGB: hidden states, or layouts (absent: one). */
    channels?: {
      mode: "states" | "representations";
      count: number;
      layouts?: string[];
      /** Several layouts: stacked as channels, or one classifier each, averaged. */
      combine?: "stacked" | "average";
    };
    discretization: string;
    scaler: string;
    fitOn: string;
    klDivergence?: number;
    emptyPixels: number;
    seconds: number;
    cached: boolean;
  };
  /**
   * Where the reviews, embeddings and layout came from: computed by this call or read from
   * caches, with the run, date and code version that made them (absent in results written
   * before it was recorded). Each model's runs carry their own (`ModelRun.provenance`).
   */
  provenance?: InputsProvenance;
  /** One summary per model, in plan order. */
  models: ModelSummary[];
  /** Each ablation against its intact model (paired by seed, Holm-corrected). */
  ablations: Comparison[];
  /** Planned models that could not run here, and why. */
  unavailable: { name: string; reason: string }[];
}

/** A finished job with its plan, as aggregation reads it. */
export interface FinishedJob {
  /** The planned model. */
  plan: ModelPlan;
  /** Its stored record. */
  stored: StoredJob;
  /** Whether this run computed it (false: read from the cache). */
  computed: boolean;
}

function runOf(
  job: FinishedJob,
  labels: ExperimentInputs["labels"],
  logistic?: Float32Array,
): ModelRun {
  const r = jobResultOf(job.stored);
  const hasValidation = labels.validation.length > 0 && r.validationProba !== undefined;
  const test = evaluateBinary(labels.test, r.testProba);
  let versusLogistic: ModelRun["versusLogistic"];
  if (logistic && job.plan.family !== "logistic") {
    const t = mcnemarTest(labels.test, r.testProba, logistic);
    versusLogistic = {
      difference: test.accuracy - evaluateBinary(labels.test, logistic).accuracy,
      discordant: [t.onlyFirstCorrect, t.onlySecondCorrect],
      pValue: t.pValue,
    };
  }
  return {
    seed: job.plan.seed,
    job: job.stored.job,
    metrics: {
      test,
      validation: hasValidation ? evaluateBinary(labels.validation, r.validationProba!) : undefined,
    },
    versusLogistic,
    history: r.history,
    selectedEpoch: r.selectedEpoch,
    epochsRun: r.epochsRun,
    stoppedEarly: r.stoppedEarly,
    resumedEpochs: r.resumedEpochs,
    params: { trainable: r.trainableParams, frozen: job.stored.backbone?.frozenParams ?? 0 },
    timings: {
      featureSeconds: job.stored.featureSeconds,
      loadSeconds: r.timings.loadSeconds,
      fitSeconds: r.timings.fitSeconds,
      predictSeconds: r.timings.predictSeconds,
    },
    details: r.details,
    provenance: {
      computed: job.computed,
      madeAt: job.stored.madeAt,
      madeBy: job.stored.madeBy,
      code: job.stored.madeByCode,
      features: job.stored.backbone?.features,
      ...(job.stored.backbone?.featureOrigin
        ? { featureOrigin: job.stored.backbone.featureOrigin }
        : {}),
    },
  };
}

function correctOf(job: FinishedJob, labels: Uint8Array): Uint8Array {
  return correctness(labels, job.stored.result.testProba);
}

function compare(
  model: FinishedJob[],
  against: FinishedJob[],
  labels: Uint8Array,
  names: [string, string],
  seed: number,
): Omit<Comparison, "pHolm"> {
  const bySeed = new Map(against.map((j) => [j.plan.seed, j]));
  // Paired seed by seed; a deterministic model (one fit) is compared with every seed.
  const paired = against.length === 1 ? model : model.filter((j) => bySeed.has(j.plan.seed));
  const a = paired.map((j) => correctOf(j, labels));
  const b = against.length === 1
    ? [correctOf(against[0], labels)]
    : paired.map((j) => correctOf(bySeed.get(j.plan.seed)!, labels));
  const boot = pairedBootstrap(a, b, { seed });
  return {
    model: names[0],
    against: names[1],
    difference: boot.difference,
    ci95: boot.ci,
    pValue: boot.pValue,
    seeds: boot.seeds,
    resamples: boot.resamples,
  };
}

function withHolm(comparisons: Omit<Comparison, "pHolm">[]): Comparison[] {
  const adjusted = holmAdjust(comparisons.map((c) => c.pValue));
  return comparisons.map((c, i) => ({ ...c, pHolm: adjusted[i] }));
}

function summaryOf(id: string, jobs: FinishedJob[], runs: ModelRun[]): ModelSummary {
  const first = jobs[0];
  const validation = runs.every((r) => r.metrics.validation)
    ? { accuracy: summarizeSeeds(runs.map((r) => r.metrics.validation!.accuracy)) }
    : undefined;
  const { seed: _seed, ...options } = first.plan.options as Record<string, unknown>;
  return {
    id,
    kind: first.plan.kind,
    family: first.plan.family,
    description: first.plan.description,
    input: first.plan.family === "image"
      ? "image"
      : first.plan.family === "tfidf"
      ? "text"
      : "embedding",
    backbone: first.stored.backbone,
    options,
    runs,
    test: {
      accuracy: summarizeSeeds(runs.map((r) => r.metrics.test.accuracy)),
      f1: summarizeSeeds(runs.map((r) => r.metrics.test.f1)),
      rocAuc: summarizeSeeds(runs.map((r) => r.metrics.test.rocAuc)),
    },
    validation,
  };
}

/**
 * Per-model summaries over seeds, each model against logistic regression and each ablation
 * against its intact model (see the module doc). `jobs` holds every finished job of the
 * variant in plan order.
 */
export function aggregateModels(
  jobs: FinishedJob[],
  inputs: ExperimentInputs,
  ablationBackbone: string,
): { models: ModelSummary[]; ablations: Comparison[] } {
  const labels = inputs.labels;
  const byModel = new Map<string, FinishedJob[]>();
  for (const job of jobs) byModel.set(job.plan.id, [...(byModel.get(job.plan.id) ?? []), job]);
  const logisticJobs = byModel.get("logistic-regression");
  const logistic = logisticJobs
    ? Float32Array.from(logisticJobs[0].stored.result.testProba)
    : undefined;
  const models = [...byModel].map(([id, list]) =>
    summaryOf(id, list, list.map((j) => runOf(j, labels, logistic)))
  );
  if (logisticJobs) {
    const others = [...byModel].filter(([id]) => id !== "logistic-regression");
    const versus = withHolm(
      others.map(([id, list]) =>
        compare(list, logisticJobs, labels.test, [id, "logistic-regression"], 1)
      ),
    );
    for (const c of versus) models.find((m) => m.id === c.model)!.versusLogistic = c;
  }
  const intact = byModel.get(ablationBackbone);
  const ablations = intact
    ? withHolm(
      [...byModel].filter(([id]) => id.startsWith("ablation-") && id.endsWith(ablationBackbone))
        .map(([id, list]) => compare(list, intact, labels.test, [id, ablationBackbone], 2)),
    )
    : [];
  return { models, ablations };
}

/** The variant's data, embedding and image facts. */
export function variantFacts(
  inputs: ExperimentInputs,
): Pick<VariantResults, "data" | "embedding" | "images" | "provenance"> {
  const cfg = inputs.cfg;
  return {
    data: {
      scheme: cfg.data.scheme,
      train: inputs.labels.train.length,
      validation: inputs.labels.validation.length,
      test: inputs.labels.test.length,
      testPositives: inputs.labels.test.reduce((s, v) => s + v, 0),
      // IMDB (fixed labels neg = 0, pos = 1) keeps the facts of results written before.
      ...(inputs.split?.dataset && inputs.split.dataset.format !== "imdb"
        ? {
          name: inputs.split.dataset.name,
          labels: {
            negative: inputs.split.dataset.labels.negative,
            positive: inputs.split.dataset.labels.positive,
          },
        }
        : {}),
    },
    embedding: {
      encoder: inputs.encoder.id,
      features: inputs.embeddings.shape[1],
      seconds: inputs.seconds.embeddings,
      cachedTexts: inputs.embeddingsCached,
    },
    images: {
      pixels: cfg.image.pixels,
      featureExtractor: cfg.image.featureExtractor ?? "tsne",
      ...(cfg.image.compat ? { compat: cfg.image.compat } : {}),
      ...(inputs.layout && (inputs.layout.channels > 1 || cfg.image.representations)
        ? {
          channels: {
            mode: cfg.image.representations ? "representations" as const : "states" as const,
            count: cfg.image.representations?.length ?? inputs.layout.channels,
            ...(cfg.image.representations
              ? {
                combine: cfg.image.combine ?? "average",
                layouts: cfg.image.representations.map((r) =>
                  `${r.featureExtractor ?? cfg.image.featureExtractor ?? "tsne"}/` +
                  `${r.discretization ?? cfg.image.discretization}`
                ),
              }
              : {}),
          },
        }
        : {}),
      discretization: cfg.image.discretization,
      scaler: cfg.image.scaler,
      fitOn: cfg.image.fitOn,
      klDivergence: inputs.transformer.klDivergence_,
      emptyPixels: inputs.emptyPixels,
      seconds: inputs.seconds.images,
      cached: inputs.transformerCached,
    },
    provenance: inputs.provenance,
  };
}

function meanOfArrays(arrays: number[][]): number[] {
  return arrays[0].map((_, i) => arrays.reduce((s, a) => s + a[i], 0) / arrays.length);
}

/**
 * With averaged layouts (`image.representations`, `combine: "average"`, see `plan.ts`): for
 * every image model `<id>` and seed whose classifiers on all `layouts` (`<id>.<layout>`)
 * finished, the model `<id>` itself, whose probabilities are the mean of theirs
 * (pyDeepInsight's MRep), placed before them. Its timings add theirs; nothing is stored.
 */
export function withAveragedLayouts(jobs: FinishedJob[], layouts: string[]): FinishedJob[] {
  return withLayoutAverages(
    jobs,
    layouts,
    (job) => job.plan.family === "image" ? job.plan.id : undefined,
    (job) => job.plan.seed,
    averagedJob,
  );
}

function averagedJob(id: string, members: FinishedJob[]): FinishedJob {
  const first = members[0];
  const plan = first.plan as Extract<ModelPlan, { family: "image" }>;
  const { representation: _r, ...input } = plan.input;
  const results = members.map((m) => m.stored.result);
  const validation = results.every((r) => r.validationProba)
    ? meanOfArrays(results.map((r) => r.validationProba!))
    : undefined;
  const sum = (f: (r: StoredJob["result"]) => number) => results.reduce((s, r) => s + f(r), 0);
  const { validationProba: _v, ...firstResult } = first.stored.result;
  return {
    plan: {
      ...plan,
      id,
      input,
      description: `${plan.description.replace(/, on layout \d+ of \d+$/, "")}: the mean ` +
        `probability of its classifiers on the ${members.length} layouts (MRep)`,
    },
    computed: members.some((m) => m.computed),
    stored: {
      ...first.stored,
      job: `${id}@${plan.seed}`,
      featureSeconds: members.reduce((s, m) => s + m.stored.featureSeconds, 0),
      model: undefined,
      result: {
        ...firstResult,
        id: `${id}@${plan.seed}`,
        testProba: meanOfArrays(results.map((r) => r.testProba)),
        ...(validation ? { validationProba: validation } : {}),
        history: undefined,
        selectedEpoch: undefined,
        epochsRun: undefined,
        stoppedEarly: undefined,
        trainableParams: sum((r) => r.trainableParams),
        timings: {
          loadSeconds: sum((r) => r.timings.loadSeconds),
          fitSeconds: sum((r) => r.timings.fitSeconds),
          predictSeconds: sum((r) => r.timings.predictSeconds),
        },
        details: { averageOf: members.map((m) => m.stored.job) },
      },
    },
  };
}
