/**
 * A run's results: every finished job stored as one JSON file in the run's cache (so a run
 * resumes, a job can run on its own with `--only`, and `--collect` assembles a results
 * folder from finished jobs), and the aggregation of the jobs into per-model summaries over
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
import { join } from "node:path";
import { exists } from "../download.ts";
import {
  CorruptCacheError,
  parseJsonObject,
  sealJson,
  verifySeal,
  verifyVersion,
  writeAtomic,
} from "../integrity.ts";
import { evaluateBinary, mcnemarTest } from "../eval/metrics.ts";
import type { BinaryMetrics } from "../eval/metrics.ts";
import type { MLPEpochRecord } from "../eval/mlp.ts";
import { correctness, holmAdjust, pairedBootstrap, summarizeSeeds } from "../eval/stats.ts";
import type { SeedSummary } from "../eval/stats.ts";
import type { EpochRecord } from "../train/mod.ts";
import { CONFIG_SCHEMA_VERSION, portablePath } from "./config.ts";
import type { BackboneRecord } from "./features.ts";
import type { ExperimentInputs, InputsProvenance } from "./inputs.ts";
import type { JobResult } from "./jobs.ts";
import type { ModelPlan } from "./plan.ts";
import { jobName } from "./plan.ts";

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
  /** The result, probabilities as plain arrays. */
  result: Omit<JobResult, "validationProba" | "testProba"> & {
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

/** Path of a job's stored result. */
export function jobPath(cacheDir: string, plan: ModelPlan, key: string): string {
  return join(cacheDir, "jobs", `${jobName(plan).replace("@", "-s")}-${key}.json`);
}

/** Writes a finished job atomically, as self-hashed JSON `{ sha256, job }` (see `sealJson`). */
export async function storeJob(path: string, stored: StoredJob): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await writeAtomic(path, sealJson({ job: stored }));
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

/** A stored job record for `result`. */
export function storedJobOf(
  plan: ModelPlan,
  key: string,
  result: JobResult,
  extra: { backbone?: BackboneRecord; featureSeconds: number; run: string; code: string },
): StoredJob {
  return {
    schemaVersion: CONFIG_SCHEMA_VERSION,
    stageVersion: JOB_STAGE_VERSION,
    job: jobName(plan),
    key,
    plan,
    backbone: extra.backbone
      ? { ...extra.backbone, loadedFrom: portableLoadedFrom(extra.backbone.loadedFrom) }
      : undefined,
    featureSeconds: extra.featureSeconds,
    result: {
      ...result,
      validationProba: result.validationProba ? Array.from(result.validationProba) : undefined,
      testProba: Array.from(result.testProba),
    },
    madeAt: new Date().toISOString(),
    madeBy: extra.run,
    madeByCode: extra.code,
  };
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
  /** The input it sees. */
  input: "embedding" | "image";
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
    input: first.plan.family === "image" ? "image" : "embedding",
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
