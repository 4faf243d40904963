/**
 * `deno task reproduce --plan`: what a config would run, without training anything — the
 * resolved config, every job (model × seed × sweep variant) with whether its result is
 * already cached, which stages are cached, an estimate of the time from this machine's
 * measured rates (`rates.ts`), and plainly when the config cannot run here (missing data or
 * weights, or an estimate of many hours).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { embedTexts } from "../embed/mod.ts";
import { expandSweep } from "./config.ts";
import type { ResolvedConfig, SweepVariant } from "./config.ts";
import {
  layoutKey,
  loadEncoder,
  loadSplit,
  rows,
  rowsKeyOf,
  storedEmbeddingRows,
} from "./inputs.ts";
import type { ExperimentInputs } from "./inputs.ts";
import { jobName, planModels, unavailableReason } from "./plan.ts";
import type { ModelPlan } from "./plan.ts";
import { estimateSeconds, readRates } from "./rates.ts";
import type { Rates } from "./rates.ts";
import { formatSeconds } from "./report.ts";
import { jobPath } from "./results.ts";
import { jobKey } from "./run.ts";

/** Hours above which a plan is flagged as too long for this machine. */
const LONG_HOURS = 6;

/** One job of the plan. */
export interface InspectedJob {
  /** Job name (`label/id@seed` in a sweep). */
  name: string;
  /** `cached` (a result exists), `to run`, or `unavailable` (with the reason). */
  status: "cached" | "to run" | "unavailable";
  /** Estimated seconds when it has to run. */
  estimate?: number;
  /** Why it cannot run. */
  reason?: string;
}

/** What {@link inspectExperiment} found. */
export interface Inspection {
  /** The resolved config. */
  config: ResolvedConfig;
  /** Per sweep variant: its stages and jobs. */
  variants: {
    label: string;
    embeddings: string;
    layout: string;
    jobs: InspectedJob[];
  }[];
  /** Estimated seconds of everything still to run (a lower bound where a rate is unknown). */
  estimate: number;
  /** Where the rates come from. */
  rateSources: string[];
  /** Reasons the config cannot run here, or will take very long. */
  problems: string[];
}

async function stagesOf(
  variant: SweepVariant,
  problems: string[],
): Promise<{ embeddings: string; layout: string; inputs?: ExperimentInputs; sizes: number[] }> {
  const cfg = variant.config;
  let split;
  try {
    split = await loadSplit(cfg);
  } catch (e) {
    problems.push(`data: ${(e as Error).message}`);
    return {
      embeddings: "unknown",
      layout: "unknown",
      sizes: [cfg.data.trainSize, 0, cfg.data.testSize],
    };
  }
  const parts = [split.train, split.validation, split.test];
  const sizes = parts.map((p) => p.length);
  let encoder;
  try {
    encoder = await loadEncoder(cfg.embedding);
  } catch (e) {
    problems.push(`encoder: ${(e as Error).message}`);
    return { embeddings: "unknown", layout: "unknown", sizes };
  }
  const texts = parts.flat().map((r) => r.text);
  const { encoder: _e, model: _m, ...encodeOptions } = cfg.embedding;
  const stored = await storedEmbeddingRows(encoder, texts, encodeOptions);
  if (stored.state === "absent") {
    return { embeddings: `to compute (${texts.length} texts)`, layout: "to fit", sizes };
  }
  if (stored.state === "stale") {
    return {
      embeddings:
        `made by another version of the embedding stage: to recompute (${texts.length} texts)`,
      layout: "to fit",
      sizes,
    };
  }
  if (stored.rows < texts.length) {
    return {
      embeddings: `partly cached (${stored.rows}/${texts.length} texts)`,
      layout: "to fit",
      sizes,
    };
  }
  const embeddings = await embedTexts(encoder, texts, { ...encodeOptions, progress: false });
  const fitRows = cfg.image.fitOn === "all" ? embeddings : rows(embeddings, 0, sizes[0]);
  const key = layoutKey(cfg, fitRows);
  const cached = existsSync(join(cfg.cacheDir, `image-transformer-${key}.json`));
  const rowsKey = rowsKeyOf(cfg, key, embeddings, split);
  // Only what the job keys read (cfg, rowsKey) is filled in.
  const inputs = { cfg, rowsKey } as ExperimentInputs;
  return {
    embeddings: "cached",
    layout: cached ? "cached" : "to fit",
    inputs: cached ? inputs : undefined,
    sizes,
  };
}

async function inspectJobs(
  variant: SweepVariant,
  inputs: ExperimentInputs | undefined,
  sizes: number[],
  rates: Rates,
  sources: Set<string>,
): Promise<InspectedJob[]> {
  const prefix = variant.label ? `${variant.label}/` : "";
  const jobs: InspectedJob[] = [];
  for (const plan of planModels(variant.config)) {
    jobs.push(await inspectJob(prefix, plan, variant, inputs, sizes, rates, sources));
  }
  return jobs;
}

async function inspectJob(
  prefix: string,
  plan: ModelPlan,
  variant: SweepVariant,
  inputs: ExperimentInputs | undefined,
  sizes: number[],
  rates: Rates,
  sources: Set<string>,
): Promise<InspectedJob> {
  const name = prefix + jobName(plan);
  const reason = plan.family === "image" ? unavailableReason(plan.input.backbone) : undefined;
  if (reason) return { name, status: "unavailable", reason };
  if (inputs && existsSync(jobPath(variant.config.cacheDir, plan, await jobKey(plan, inputs)))) {
    return { name, status: "cached" };
  }
  const estimate = estimateSeconds(plan, variant.config, {
    train: sizes[0],
    predict: sizes[1] + sizes[2],
  }, rates);
  if (estimate) sources.add(estimate.source);
  return { name, status: "to run", estimate: estimate?.seconds };
}

/** Inspects `cfg` (see the module doc); reads caches, trains nothing. */
export async function inspectExperiment(cfg: ResolvedConfig): Promise<Inspection> {
  const rates = await readRates();
  const problems: string[] = [];
  const sources = new Set<string>();
  const variants: Inspection["variants"] = [];
  for (const variant of expandSweep(cfg)) {
    const stages = await stagesOf(variant, problems);
    const jobs = await inspectJobs(variant, stages.inputs, stages.sizes, rates, sources);
    variants.push({
      label: variant.label,
      embeddings: stages.embeddings,
      layout: stages.layout,
      jobs,
    });
  }
  const todo = variants.flatMap((v) => v.jobs).filter((j) => j.status === "to run");
  const workers = Math.max(1, cfg.models.workers);
  const estimate = todo.reduce((s, j) => s + (j.estimate ?? 0), 0) / workers;
  for (const j of variants.flatMap((v) => v.jobs)) {
    if (j.status === "unavailable") problems.push(`${j.name}: cannot run here: ${j.reason}`);
  }
  if (todo.some((j) => j.estimate === undefined)) {
    problems.push(
      `no rate known for ${
        todo.filter((j) => j.estimate === undefined).map((j) => j.name).join(", ")
      }: the estimate leaves them out`,
    );
  }
  if (estimate > LONG_HOURS * 3600) {
    problems.push(`the estimate is ${(estimate / 3600).toFixed(1)} hours on this machine`);
  }
  return {
    config: cfg,
    variants,
    estimate,
    rateSources: [...sources],
    problems: [...new Set(problems)],
  };
}

/** The inspection as text. */
export function formatInspection(i: Inspection): string {
  const lines = [
    `Run "${i.config.name}" (config ${i.config.origin}), seeds ${i.config.seeds.join(", ")}`,
  ];
  for (const v of i.variants) {
    lines.push(
      "",
      `${v.label ? `variant ${v.label}: ` : ""}embeddings ${v.embeddings}; layout ${v.layout}`,
    );
    for (const j of v.jobs) {
      lines.push(
        `  ${j.status.padEnd(11)} ${j.name}` +
          (j.estimate !== undefined ? `  ~${formatSeconds(j.estimate)}` : "") +
          (j.reason ? `  (${j.reason.split("\n")[0]})` : ""),
      );
    }
  }
  const jobs = i.variants.flatMap((v) => v.jobs);
  const count = (s: InspectedJob["status"]) => jobs.filter((j) => j.status === s).length;
  lines.push(
    "",
    `${jobs.length} jobs: ${count("cached")} cached, ${count("to run")} to run, ` +
      `${count("unavailable")} unavailable. Estimated time of the jobs to run: ` +
      `${formatSeconds(i.estimate)} on ${i.config.models.workers} worker(s) (plus embeddings, ` +
      `layout and features where not cached).`,
    ...(i.rateSources.length ? [`Rates from: ${i.rateSources.join("; ")}.`] : []),
    ...i.problems.map((p) => `Cannot run as planned: ${p}`),
  );
  return lines.join("\n");
}
