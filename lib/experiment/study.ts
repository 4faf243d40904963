/**
 * The study: several experiment runs ("arms") answering a list of questions with paired
 * comparisons across them on one fixed test set. A study file (`tools/configs/study/*.json`)
 * names a base experiment config, the arms (overrides of it), the questions and their
 * comparisons, and what the study cuts on this machine. {@link runStudy} runs every arm
 * through {@link runExperiment} (all arms share one cache, so a model that two arms plan
 * alike is trained once), then compares models across arms: a paired bootstrap over seeds and
 * test rows of each contrast of accuracies ({@link contrastBootstrap}), Holm-corrected within
 * each question.
 *
 * ```ts ignore
 * import { loadStudy, runStudy } from "./lib/experiment/study.ts";
 * const study = await loadStudy("study");
 * const results = await runStudy(study, { resultsDir: "results/study" });
 * console.log(results.questions.map((q) => q.title));
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { contrastBootstrap, correctness, holmAdjust } from "../eval/mod.ts";
import type { SeedSummary } from "../eval/mod.ts";
import { writeAtomic } from "../integrity.ts";
import { CONFIGS_DIR, loadExperimentConfig } from "./config.ts";
import type { ConfigOverrides, ResolvedConfig } from "./config.ts";
import type { ExperimentInputs } from "./inputs.ts";
import { sha } from "./inputs.ts";
import { planModels } from "./plan.ts";
import { jobPath } from "./results.ts";
import type { FinishedJob, VariantResults } from "./results.ts";
import { runExperiment } from "./run.ts";
import type { ExperimentOptions, ExperimentResults } from "./run.ts";
import { codeVersion } from "./code_version.ts";

/** One arm of a study: overrides of the base config, and what it is. */
export type StudyArmSpec = ConfigOverrides & { description: string };

/** A comparison of one model (in one arm) with another: `"arm/model"` each. */
export interface PairSpec {
  /** Shown in tables. */
  label: string;
  /** `arm/model`: the model whose accuracy the difference is of. */
  model: string;
  /** `arm/model`: what it is compared against. */
  against: string;
  /** Whether it belongs in the answers table at the top of the report. */
  headline?: boolean;
}

/** Whether a gap between two models changes from one arm to another (difference of differences). */
export interface GapChangeSpec {
  /** Shown in tables. */
  label: string;
  /** (model − against) in arm `to` minus (model − against) in arm `from`. */
  gapChange: { model: string; against: string; from: string; to: string };
  /** Whether it belongs in the answers table. */
  headline?: boolean;
}

/** One comparison of a question. */
export type ComparisonSpec = PairSpec | GapChangeSpec;

/** One question of a study. */
export interface StudyQuestionSpec {
  /** Short id (`q1`). */
  id: string;
  /** Title (`Data`). */
  title: string;
  /** The question in one sentence. */
  question: string;
  /** Its comparisons (Holm-corrected together). */
  comparisons: ComparisonSpec[];
  /**
   * A learning curve: every model's accuracy in each arm, and each model's gap to `against`
   * per arm (these gaps join the question's comparisons).
   */
  curve?: { arms: string[]; models: string[]; against: string };
  /** Arms whose layouts the report shows side by side. */
  layouts?: string[];
}

/** A study file. */
export interface StudySpec {
  /** Name (`results/<name>/`). */
  name: string;
  /** One paragraph on what it is. */
  description: string;
  /** The base experiment config (path relative to the study file). */
  base: string;
  /** What this study cuts compared with the full design, one sentence each. */
  cuts: string[];
  /** Each model family's tuning budget on validation, one sentence each. */
  tuning?: string[];
  /** The study file a larger machine runs (relative), if any. */
  full?: string;
  /** Arms in the order they run. */
  arms: Record<string, StudyArmSpec>;
  /** The questions. */
  questions: StudyQuestionSpec[];
}

/** A loaded study: its file, the resolved config of every arm. */
export interface Study {
  /** The study file. */
  spec: StudySpec;
  /** Its path. */
  path: string;
  /** Each arm's resolved config (name: the study's, so every arm shares its cache). */
  arms: Map<string, ResolvedConfig>;
}

/** Folder of the shipped study files. */
export const STUDIES_DIR: string = join(CONFIGS_DIR, "study");

/** The file of a shipped study name (`study`, `full`) or a path. */
export function studyPath(nameOrPath: string): string {
  if (existsSync(nameOrPath) && Deno.statSync(nameOrPath).isFile) return nameOrPath;
  return join(STUDIES_DIR, `${nameOrPath.replace(/\.json$/, "")}.json`);
}

function parseRef(ref: string, where: string): { arm: string; model: string } {
  const i = ref.indexOf("/");
  if (i <= 0) throw new Error(`${where}: "${ref}" is not "arm/model"`);
  return { arm: ref.slice(0, i), model: ref.slice(i + 1) };
}

/** The `arm/model` references of a comparison. */
export function comparisonRefs(c: ComparisonSpec): string[] {
  if ("gapChange" in c) {
    const g = c.gapChange;
    return [
      `${g.to}/${g.model}`,
      `${g.to}/${g.against}`,
      `${g.from}/${g.model}`,
      `${g.from}/${g.against}`,
    ];
  }
  return [c.model, c.against];
}

function checkRefs(study: Study): void {
  const problems: string[] = [];
  const has = (ref: string) => {
    const { arm, model } = parseRef(ref, study.path);
    const cfg = study.arms.get(arm);
    if (!cfg) return `no arm "${arm}" (arms: ${[...study.arms.keys()].join(", ")})`;
    const ids = new Set(planModels(cfg).map((p) => p.id));
    return ids.has(model) ? undefined : `arm "${arm}" plans no model "${model}" ` +
      `(it plans ${[...ids].join(", ")})`;
  };
  for (const q of study.spec.questions) {
    const refs = q.comparisons.flatMap(comparisonRefs);
    for (const arm of q.curve?.arms ?? []) refs.push(`${arm}/${q.curve!.against}`);
    for (const arm of q.layouts ?? []) {
      if (!study.arms.has(arm)) problems.push(`${q.id}.layouts: no arm "${arm}"`);
    }
    for (const ref of refs) {
      const problem = has(ref);
      if (problem) problems.push(`${q.id}: ${ref}: ${problem}`);
    }
  }
  if (problems.length) {
    throw new Error(`${study.path}: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  }
}

/**
 * Reads a study file (a shipped name under `tools/configs/study/` or a path), resolves every
 * arm's config (the base with the arm's overrides; each arm is validated like any config) and
 * checks that every comparison names an arm and a model that arm plans.
 */
export async function loadStudy(nameOrPath: string): Promise<Study> {
  const path = studyPath(nameOrPath);
  let spec: StudySpec;
  try {
    spec = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(
      `${path}: cannot read the study (${(e as Error).message}); shipped studies are in ` +
        `${STUDIES_DIR}`,
    );
  }
  for (const key of ["name", "base", "arms", "questions"] as const) {
    if (!spec[key]) throw new Error(`${path}: no "${key}"`);
  }
  const base = resolve(dirname(path), spec.base);
  const arms = new Map<string, ResolvedConfig>();
  for (const [arm, { description: _d, ...overrides }] of Object.entries(spec.arms)) {
    try {
      arms.set(arm, await loadExperimentConfig(base, { ...overrides, name: spec.name }));
    } catch (e) {
      throw new Error(`${path}: arm "${arm}": ${(e as Error).message}`);
    }
  }
  const study: Study = { spec, path, arms };
  checkRefs(study);
  return study;
}

// ---------------------------------------------------------------------------------------------
// Results

/** One model of one arm: its seeds' test correctness and accuracies. */
export interface ArmModel {
  /** Seeds (null: deterministic). */
  seeds: (number | null)[];
  /** Test accuracy per seed. */
  accuracy: number[];
  /** Over seeds. */
  summary: SeedSummary;
  /** Validation accuracy per seed (when there is a validation set). */
  validation?: number[];
  /** Epochs kept / run per seed (trained models). */
  epochs?: string[];
  /** Seconds of fitting per seed. */
  fitSeconds: number[];
  /** Whether each seed's job was computed by this call (false: read from the cache). */
  computed: boolean[];
}

/** One arm's results. */
export interface ArmResults {
  /** Arm name. */
  name: string;
  /** What it is. */
  description: string;
  /** Training reviews. */
  train: number;
  /** The layout (feature map / discretisation / fitted on). */
  layout: string;
  /** Models by id. */
  models: Record<string, ArmModel>;
  /** Wall seconds of this call for this arm. */
  seconds: number;
  /** Jobs this call trained, and jobs it read from the cache. */
  jobs: { computed: number; cached: number };
  /** The arm's whole experiment results (one variant). */
  experiment: ExperimentResults;
  /** The layout's feature positions (arms a question shows the layout of). */
  layoutPoints?: { x: number[]; y: number[] };
}

/** One computed comparison. */
export interface StudyComparison {
  /** Label. */
  label: string;
  /** `arm/model` references with their weights in the contrast. */
  terms: { ref: string; weight: number }[];
  /** Observed contrast of accuracies (fractions; e.g. +0.012). */
  difference: number;
  /** 95% paired-bootstrap interval. */
  ci95: [number, number];
  /** Two-sided p-value. */
  pValue: number;
  /** Holm-corrected within the question. */
  pHolm: number;
  /** The contrast per seed (all seeds' values on all test rows). */
  perSeed: { seed: number | null; difference: number }[];
  /** In the answers table. */
  headline: boolean;
}

/** One point of a learning curve. */
export interface CurvePoint {
  /** Arm. */
  arm: string;
  /** Training reviews. */
  train: number;
  /** Model. */
  model: string;
  /** Test accuracy over seeds. */
  accuracy: SeedSummary;
}

/** One answered question. */
export interface StudyQuestionResults {
  /** Id, title, question. */
  id: string;
  /** Title. */
  title: string;
  /** The question. */
  question: string;
  /** Every comparison, Holm-corrected together. */
  comparisons: StudyComparison[];
  /** Learning-curve points (question with a curve). */
  curve?: CurvePoint[];
  /** Arms whose layouts the report shows. */
  layouts?: string[];
}

/** One call of {@link runStudy} (a study made over several calls lists each). */
export interface StudyCall {
  /** ISO start. */
  startedAt: string;
  /** Wall seconds. */
  seconds: number;
  /** Jobs trained by this call, and read from the cache. */
  computed: number;
  /** Jobs read. */
  cached: number;
  /** Code version. */
  code: string;
}

/** Everything a study measured. */
export interface StudyResults {
  /** Format version. */
  schemaVersion: 1;
  /** Study name. */
  name: string;
  /** Its description. */
  description: string;
  /** The study file's path relative to the project. */
  file: string;
  /** SHA-256 of the study file and its base config. */
  specSha256: string;
  /** What it cuts. */
  cuts: string[];
  /** Each model family's tuning budget on validation. */
  tuning: string[];
  /** The study file a larger machine runs. */
  full?: string;
  /** This call and, from the results it found, the earlier ones whose jobs it read. */
  calls: StudyCall[];
  /** Every arm. */
  arms: ArmResults[];
  /** Every question. */
  questions: StudyQuestionResults[];
  /** Test rows (the same in every arm) and their fingerprint. */
  test: { rows: number; positives: number; sha256: string };
}

/** Test correctness per `arm/model`: one array per seed, seeds in plan order. */
export type CorrectnessTable = Map<string, { seed: number | null; correct: Uint8Array }[]>;

function testFingerprint(inputs: ExperimentInputs): string {
  return sha(JSON.stringify({
    ids: inputs.split.test.map((r) => r.id),
    labels: Array.from(inputs.labels.test),
  }));
}

function layoutPointsOf(inputs: ExperimentInputs): ArmResults["layoutPoints"] {
  const { data, shape } = inputs.transformer.layout().embedding;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    x: Array.from({ length: shape[0] }, (_, i) => round(data[2 * i])),
    y: Array.from({ length: shape[0] }, (_, i) => round(data[2 * i + 1])),
  };
}

function armModels(variant: VariantResults): Record<string, ArmModel> {
  const out: Record<string, ArmModel> = {};
  for (const m of variant.models) {
    const runs = m.runs;
    out[m.id] = {
      seeds: runs.map((r) => r.seed),
      accuracy: runs.map((r) => r.metrics.test.accuracy),
      summary: m.test.accuracy,
      ...(runs.every((r) => r.metrics.validation)
        ? { validation: runs.map((r) => r.metrics.validation!.accuracy) }
        : {}),
      ...(runs.every((r) => r.epochsRun !== undefined)
        ? { epochs: runs.map((r) => `${r.selectedEpoch}/${r.epochsRun}`) }
        : {}),
      fitSeconds: runs.map((r) => r.timings.fitSeconds),
      computed: runs.map((r) => r.provenance.computed),
    };
  }
  return out;
}

/** Options of {@link runStudy}. */
export interface StudyOptions extends Pick<ExperimentOptions, "log" | "signal" | "onProgress"> {
  /**
   * The study's results folder: each arm's finished jobs' result files are copied into its
   * `jobs/` as the arm completes (small JSON files, meant to be committed), and read back into
   * the cache before anything runs, so a study resumes on any machine that has them.
   */
  resultsDir: string;
  /** Only these arms (default all; comparisons need every arm they name). */
  arms?: string[];
}

async function seedCache(resultsDir: string, cacheDir: string): Promise<number> {
  const from = join(resultsDir, "jobs");
  if (!existsSync(from)) return 0;
  await Deno.mkdir(join(cacheDir, "jobs"), { recursive: true });
  let copied = 0;
  for await (const entry of Deno.readDir(from)) {
    if (!entry.isFile || !entry.name.endsWith(".json")) continue;
    const to = join(cacheDir, "jobs", entry.name);
    if (!existsSync(to)) {
      await Deno.copyFile(join(from, entry.name), to);
      copied++;
    }
  }
  return copied;
}

async function keepJobs(
  jobs: readonly FinishedJob[],
  cacheDir: string,
  resultsDir: string,
): Promise<void> {
  await Deno.mkdir(join(resultsDir, "jobs"), { recursive: true });
  for (const job of jobs) {
    if (job.stored.model === undefined && job.stored.result.details?.averageOf) continue;
    const from = jobPath(cacheDir, job.plan, job.stored.key);
    const to = join(resultsDir, "jobs", from.slice(join(cacheDir, "jobs").length + 1));
    if (existsSync(from) && !existsSync(to)) {
      await writeAtomic(to, await Deno.readFile(from));
    }
  }
}

async function runArm(
  name: string,
  cfg: ResolvedConfig,
  study: Study,
  table: CorrectnessTable,
  fingerprints: Map<string, string>,
  options: StudyOptions,
): Promise<ArmResults> {
  const log = options.log ?? ((line: string) => console.error(line));
  log(`arm ${name}: ${study.spec.arms[name].description}`);
  const started = performance.now();
  const shown = study.spec.questions.some((q) => q.layouts?.includes(name));
  let layoutPoints: ArmResults["layoutPoints"];
  const experiment = await runExperiment(cfg, {
    log,
    signal: options.signal,
    onProgress: options.onProgress,
    onVariant: async (_variant, jobs, inputs) => {
      fingerprints.set(name, testFingerprint(inputs));
      if (shown) layoutPoints = layoutPointsOf(inputs);
      const labels = inputs.labels.test;
      for (const job of jobs) {
        const ref = `${name}/${job.plan.id}`;
        const list = table.get(ref) ?? [];
        list.push({
          seed: job.plan.seed,
          correct: correctness(labels, job.stored.result.testProba),
        });
        table.set(ref, list);
      }
      await keepJobs(jobs, cfg.cacheDir, options.resultsDir);
    },
  });
  const variant = experiment.variants[0];
  const models = armModels(variant);
  const computed = Object.values(models).flatMap((m) => m.computed);
  const images = variant.images;
  return {
    name,
    description: study.spec.arms[name].description,
    train: variant.data.train,
    layout: `${images.featureExtractor ?? "tsne"} / ${images.discretization} / fitted on ` +
      `${images.fitOn}`,
    models,
    seconds: (performance.now() - started) / 1000,
    jobs: {
      computed: computed.filter(Boolean).length,
      cached: computed.filter((c) => !c).length,
    },
    experiment,
    ...(layoutPoints ? { layoutPoints } : {}),
  };
}

function termsOf(c: ComparisonSpec): { ref: string; weight: number }[] {
  if ("gapChange" in c) {
    const [a, b, d, e] = comparisonRefs(c);
    return [{ ref: a, weight: 1 }, { ref: b, weight: -1 }, { ref: d, weight: -1 }, {
      ref: e,
      weight: 1,
    }];
  }
  return [{ ref: c.model, weight: 1 }, { ref: c.against, weight: -1 }];
}

/** Seeds common to every seeded term (deterministic terms join every seed). */
function alignedTerms(
  terms: { ref: string; weight: number }[],
  table: CorrectnessTable,
): { seeds: (number | null)[]; correct: Uint8Array[][] } {
  const lists = terms.map((t) => {
    const list = table.get(t.ref);
    if (!list?.length) throw new Error(`study: no finished job for ${t.ref}`);
    return list;
  });
  const seeded = lists.filter((l) => l.length > 1 || l[0].seed !== null);
  const seeds: (number | null)[] = seeded.length
    ? seeded.map((l) => l.map((r) => r.seed)).reduce((a, b) => a.filter((s) => b.includes(s)))
    : [null];
  if (seeds.length === 0) {
    throw new Error(`study: ${terms.map((t) => t.ref).join(", ")} share no seed`);
  }
  const correct = lists.map((l) =>
    l.length === 1 && l[0].seed === null
      ? [l[0].correct]
      : seeds.map((s) => l.find((r) => r.seed === s)!.correct)
  );
  return { seeds, correct };
}

function perSeedContrast(
  weights: number[],
  correct: Uint8Array[][],
  seeds: (number | null)[],
): StudyComparison["perSeed"] {
  return seeds.map((seed, s) => {
    let total = 0;
    correct.forEach((arrays, t) => {
      const c = arrays.length === 1 ? arrays[0] : arrays[s];
      total += weights[t] * c.reduce((a, b) => a + b, 0) / c.length;
    });
    return { seed, difference: total };
  });
}

function compareTerms(
  label: string,
  terms: { ref: string; weight: number }[],
  table: CorrectnessTable,
  headline: boolean,
  seed: number,
): Omit<StudyComparison, "pHolm"> {
  const { seeds, correct } = alignedTerms(terms, table);
  const boot = contrastBootstrap(
    terms.map((t, i) => ({ weight: t.weight, correct: correct[i] })),
    { seed },
  );
  return {
    label,
    terms,
    difference: boot.difference,
    ci95: boot.ci,
    pValue: boot.pValue,
    perSeed: perSeedContrast(terms.map((t) => t.weight), correct, seeds),
    headline,
  };
}

function curveOf(q: StudyQuestionSpec, arms: ArmResults[]): CurvePoint[] {
  const points: CurvePoint[] = [];
  for (const armName of q.curve!.arms) {
    const arm = arms.find((a) => a.name === armName)!;
    for (const model of q.curve!.models) {
      const m = arm.models[model];
      if (m) points.push({ arm: armName, train: arm.train, model, accuracy: m.summary });
    }
  }
  return points;
}

/** Answers one question from the arms' test correctness. */
export function answerQuestion(
  q: StudyQuestionSpec,
  arms: ArmResults[],
  table: CorrectnessTable,
): StudyQuestionResults {
  const specs: { label: string; terms: { ref: string; weight: number }[]; headline: boolean }[] =
    [];
  if (q.curve) {
    for (const arm of q.curve.arms) {
      for (const model of q.curve.models) {
        if (model === q.curve.against || !table.has(`${arm}/${model}`)) continue;
        specs.push({
          label: `${model} vs ${q.curve.against} at ${arm}`,
          terms: [{ ref: `${arm}/${model}`, weight: 1 }, {
            ref: `${arm}/${q.curve.against}`,
            weight: -1,
          }],
          headline: false,
        });
      }
    }
  }
  for (const c of q.comparisons) {
    specs.push({ label: c.label, terms: termsOf(c), headline: c.headline ?? false });
  }
  const raw = specs.map((s, i) => compareTerms(s.label, s.terms, table, s.headline, i + 1));
  const holm = holmAdjust(raw.map((c) => c.pValue));
  return {
    id: q.id,
    title: q.title,
    question: q.question,
    comparisons: raw.map((c, i) => ({ ...c, pHolm: holm[i] })),
    ...(q.curve ? { curve: curveOf(q, arms) } : {}),
    ...(q.layouts ? { layouts: q.layouts } : {}),
  };
}

async function earlierCalls(resultsDir: string): Promise<StudyCall[]> {
  try {
    const previous = JSON.parse(await Deno.readTextFile(join(resultsDir, "metrics.json")));
    return Array.isArray(previous.calls) ? previous.calls : [];
  } catch {
    return [];
  }
}

/**
 * Runs every arm of `study` (in its file's order; all arms share one cache, and the jobs
 * already in `resultsDir/jobs` are read, not trained), then answers every question. Each arm's
 * finished jobs are copied to `resultsDir/jobs` as the arm completes.
 */
export async function runStudy(study: Study, options: StudyOptions): Promise<StudyResults> {
  const log = options.log ?? ((line: string) => console.error(line));
  const startedAt = new Date().toISOString();
  const started = performance.now();
  const cacheDir = [...study.arms.values()][0].cacheDir;
  const seeded = await seedCache(options.resultsDir, cacheDir);
  if (seeded) log(`read ${seeded} finished job(s) from ${join(options.resultsDir, "jobs")}`);
  const names = options.arms ?? [...study.arms.keys()];
  const table: CorrectnessTable = new Map();
  const fingerprints = new Map<string, string>();
  const arms: ArmResults[] = [];
  for (const name of names) {
    const cfg = study.arms.get(name);
    if (!cfg) throw new Error(`no arm "${name}" in ${study.path}`);
    arms.push(await runArm(name, cfg, study, table, fingerprints, options));
    // Fail as soon as an arm tests on other rows: its comparisons would not be paired.
    const distinct = new Set(fingerprints.values());
    if (distinct.size > 1) {
      throw new Error(
        `study: the arms' test rows differ (${
          [...fingerprints].map(([a, f]) => `${a} ${f.slice(0, 8)}`)
            .join(", ")
        }); every arm must test on the same rows (same data.scheme, seed, testSize)`,
      );
    }
    options.signal?.throwIfAborted();
  }
  const distinct = new Set(fingerprints.values());
  const questions = options.arms
    ? []
    : study.spec.questions.map((q) => answerQuestion(q, arms, table));
  const testArm = arms[0]?.experiment.variants[0]?.data;
  const base = resolve(dirname(study.path), study.spec.base);
  const code = await codeVersion();
  const computed = arms.reduce((s, a) => s + a.jobs.computed, 0);
  return {
    schemaVersion: 1,
    name: study.spec.name,
    description: study.spec.description,
    file: study.path.startsWith(CONFIGS_DIR)
      ? `tools/configs/${study.path.slice(CONFIGS_DIR.length + 1)}`
      : study.path,
    specSha256: sha(
      (await Deno.readTextFile(study.path)) + (await Deno.readTextFile(base)),
    ),
    cuts: study.spec.cuts,
    tuning: study.spec.tuning ?? [],
    ...(study.spec.full ? { full: study.spec.full } : {}),
    calls: [...(await earlierCalls(options.resultsDir)), {
      startedAt,
      seconds: (performance.now() - started) / 1000,
      computed,
      cached: arms.reduce((s, a) => s + a.jobs.cached, 0),
      code,
    }],
    arms,
    questions,
    test: {
      rows: testArm?.test ?? 0,
      positives: testArm?.testPositives ?? 0,
      sha256: [...distinct][0] ?? "",
    },
  };
}

/** Summary of an arm model's accuracy for tables: mean ± sd over seeds, in percent. */
export function accuracyText(m: ArmModel): string {
  const s = m.summary;
  return m.accuracy.length > 1
    ? `${(100 * s.mean).toFixed(1)} ± ${(100 * (s.sd ?? 0)).toFixed(1)}`
    : `${(100 * s.mean).toFixed(1)}`;
}
