/**
 * The experiment's composition root: for each sweep variant, prepare the shared inputs
 * (`inputs.ts`), plan the models (`plan.ts`), find finished jobs in the run's cache, prepare
 * and run the rest on the worker pool (`jobs.ts`, `pool.ts`), and aggregate over seeds
 * (`results.ts`). The stages never call back into it.
 *
 * ```ts
 * import { loadExperimentConfig, runExperiment } from "./mod.ts";
 * const results = await runExperiment(await loadExperimentConfig("quick"));
 * ```
 *
 * @module
 */
import { dirname } from "node:path";
import { sharedCopy } from "../train/mod.ts";
import { ProgressBar } from "../progress.ts";
import { nativeStatus, nativeStatusText, nativeThreads, tf } from "../tf.ts";
import type { Matrix } from "../types.ts";
import {
  averagedLayouts,
  CONFIG_SCHEMA_VERSION,
  expandSweep,
  portableConfig,
  portableMessage,
} from "./config.ts";
import type { ResolvedConfig, SweepVariant } from "./config.ts";
import { imageJobKey, prepareImageJob } from "./features.ts";
import type { BackboneRecord } from "./features.ts";
import { prepareInputs, sha } from "./inputs.ts";
import type { ExperimentInputs, RunOptions } from "./inputs.ts";
import type { Job } from "./jobs.ts";
import { jobUnits } from "./jobs.ts";
import { jobName, planModels, unavailableReason } from "./plan.ts";
import type { ModelPlan } from "./plan.ts";
import { runJobs } from "./pool.ts";
import { estimateSeconds, rateKind, readRates, recordRate } from "./rates.ts";
import {
  aggregateModels,
  jobPath,
  readJob,
  storedJobOf,
  storeJob,
  variantFacts,
  withAveragedLayouts,
} from "./results.ts";
import type { FinishedJob, StoredJob, VariantResults } from "./results.ts";
import { experimentNotes } from "./notes.ts";
import { recordUses } from "./uses.ts";
import { acquireLock } from "./lock.ts";
import { codeVersion } from "./code_version.ts";

export { codeVersion };
import type { Lock } from "./lock.ts";

/** Options of {@link runExperiment}. */
export interface ExperimentOptions extends RunOptions {
  /** Run only these jobs (`id@seed`, or `label/id@seed` in a sweep), then stop; no aggregation. */
  only?: string[];
  /** Train nothing: assemble the results from finished jobs (an error lists missing ones). */
  collect?: boolean;
  /** Only these models of the plan (model ids, e.g. `darknet_reference`); default all. */
  models?: string[];
  /**
   * Called once per variant after aggregation, with its finished jobs (plan order, test
   * probabilities included) and its inputs: for callers that compare models across runs on
   * the same test rows (the study, `study.ts`).
   */
  onVariant?: (
    variant: VariantResults,
    jobs: readonly FinishedJob[],
    inputs: ExperimentInputs,
  ) => void | Promise<void>;
}

/** Everything a run measured, ready for a report (JSON-serialisable, no machine paths). */
export interface ExperimentResults {
  /** Format version. */
  schemaVersion: number;
  /** Run name. */
  name: string;
  /** The configuration with defaults filled in (portable). */
  config: ReturnType<typeof portableConfig>;
  /** ISO times of this call. */
  startedAt: string;
  /** ISO time it finished. */
  finishedAt: string;
  /** Wall-clock seconds of this call (jobs read from the cache add none). */
  totalSeconds: number;
  /** Where it ran, and the code version (git commit; `+changes` when the tree was modified). */
  environment: {
    deno: string;
    backend: string;
    cores: number;
    os: string;
    code: string;
    /**
     * Which kernels the matrix products and convolutions ran on (`lib/native/`), e.g.
     * `onednn (libdnnl.so.2, 2 threads); workers 1 thread each`; absent in runs before them.
     */
    kernels?: string;
  };
  /**
   * The results this run replaced in its folder (when there were any): when and by which code
   * and kernels they were made, and their wall time, for the report's comparison. Set by
   * `writeResults`.
   */
  previous?: {
    finishedAt: string;
    totalSeconds: number;
    code: string;
    kernels?: string;
    /** What that run computed itself, e.g. `embedded 10244 texts; 34 of 34 model fits`. */
    computed: string;
  };
  /** The command that made it, with portable paths (set by the caller, e.g. `reproduce`). */
  command?: string;
  /** Swept fields (empty without a sweep). */
  sweep: string[];
  /** One entry per sweep variant (one without a sweep). */
  variants: VariantResults[];
  /** Settings a reader needs to know, and deviations from the paper. */
  notes: string[];
}

/** A planned model with its job key and stored result path. */
interface Slot {
  plan: ModelPlan;
  key: string;
  path: string;
  stored?: StoredJob;
  computed: boolean;
}

function baselineKey(plan: ModelPlan, inputs: ExperimentInputs): string {
  return sha(JSON.stringify({ rowsKey: inputs.rowsKey, plan })).slice(0, 16);
}

/** Job key of a planned model. */
export async function jobKey(plan: ModelPlan, inputs: ExperimentInputs): Promise<string> {
  return plan.family === "image" ? await imageJobKey(plan, inputs) : baselineKey(plan, inputs);
}

function sharedMatrix(m: Matrix): Matrix {
  return { data: sharedCopy(m.data), shape: m.shape };
}

/** Prepared jobs of the slots still to run, with what their stored records need. */
async function prepareJobs(
  slots: Slot[],
  inputs: ExperimentInputs,
  options: RunOptions,
  log: (line: string) => void,
  unavailable: VariantResults["unavailable"],
): Promise<
  Map<string, { job: Job; slot: Slot; backbone?: BackboneRecord; featureSeconds: number }>
> {
  const prepared = new Map<
    string,
    { job: Job; slot: Slot; backbone?: BackboneRecord; featureSeconds: number }
  >();
  const hasValidation = inputs.labels.validation.length > 0;
  const x = {
    train: sharedMatrix(inputs.features.train),
    validation: hasValidation ? sharedMatrix(inputs.features.validation) : undefined,
    test: sharedMatrix(inputs.features.test),
  };
  const labels = {
    train: inputs.labels.train,
    validation: hasValidation ? inputs.labels.validation : undefined,
    test: inputs.labels.test,
  };
  for (const slot of slots) {
    options.signal?.throwIfAborted();
    const plan = slot.plan, id = jobName(plan);
    if (plan.family === "logistic") {
      prepared.set(id, {
        job: { kind: "logistic", id, x, labels, l2: plan.options.l2 },
        slot,
        featureSeconds: 0,
      });
    } else if (plan.family === "mlp") {
      prepared.set(id, {
        job: { kind: "mlp", id, x, labels, options: plan.options },
        slot,
        featureSeconds: 0,
      });
    } else if (plan.family === "tfidf") {
      const text = (records: { text: string }[]) => records.map((r) => r.text);
      const texts = {
        train: text(inputs.split.train),
        validation: hasValidation ? text(inputs.split.validation) : undefined,
        test: text(inputs.split.test),
      };
      prepared.set(id, {
        job: { kind: "tfidf", id, texts, labels, options: plan.options },
        slot,
        featureSeconds: 0,
      });
    } else {
      try {
        const { job, backbone, featureSeconds } = await prepareImageJob(
          plan,
          inputs,
          slot.key,
          options,
        );
        prepared.set(id, { job, slot, backbone, featureSeconds });
        log(`features ${id}: ${backbone.featureShape.join("×")} (${featureSeconds.toFixed(0)} s)`);
      } catch (e) {
        if (options.signal?.aborted) throw e;
        unavailable.push({ name: id, reason: portableMessage((e as Error).message) });
        log(`skipping ${id}: ${(e as Error).message}`);
      }
    }
  }
  return prepared;
}

/** Runs the prepared jobs on the pool, longest first, storing each as it finishes. */
async function runPrepared(
  prepared: Awaited<ReturnType<typeof prepareJobs>>,
  inputs: ExperimentInputs,
  options: RunOptions,
  log: (line: string) => void,
): Promise<void> {
  if (prepared.size === 0) return;
  const rates = await readRates();
  const code = await codeVersion();
  const n = inputs.labels.train.length;
  const predict = inputs.labels.validation.length + inputs.labels.test.length;
  const cost = (p: { slot: Slot }) =>
    estimateSeconds(p.slot.plan, inputs.cfg, { train: n, predict }, rates)?.seconds ?? 0;
  const ordered = [...prepared.values()].sort((a, b) => cost(b) - cost(a));
  const total = ordered.reduce((s, p) => s + jobUnits(p.job), 0);
  const done = new Map<string, number>();
  const bar = new ProgressBar(`training ${ordered.length} jobs`, total, { unit: "units" });
  const update = () => {
    const sum = [...done.values()].reduce((a, b) => a + b, 0);
    bar.update(sum);
    options.onProgress?.({ stage: "training", done: sum, total });
  };
  await runJobs(ordered.map((p) => p.job), Math.max(1, inputs.cfg.models.workers), {
    onProgress: (id, d) => {
      done.set(id, d);
      update();
    },
    onEpoch: (id, r) =>
      log(
        `${id} epoch ${r.epoch}: train loss ${r.trainLoss.toFixed(4)}` +
          (r.validationAccuracy !== undefined
            ? `, validation acc ${r.validationAccuracy.toFixed(4)}`
            : ""),
      ),
    onResult: async (r) => {
      const p = prepared.get(r.id)!;
      done.set(r.id, jobUnits(p.job));
      update();
      const stored = storedJobOf(p.slot.plan, p.slot.key, r, {
        backbone: p.backbone,
        featureSeconds: p.featureSeconds,
        run: inputs.cfg.name,
        code,
      });
      await storeJob(p.slot.path, stored);
      await recordUses(inputs.cfg.cacheDir, [p.slot.path]);
      p.slot.stored = stored;
      p.slot.computed = true;
      const epochs = r.epochsRun ?? 1;
      await recordRate(rateKind(p.slot.plan, inputs.cfg), {
        fitPerRowEpoch: r.timings.fitSeconds / (n * epochs),
        predictPerRow: r.timings.predictSeconds / Math.max(1, predict),
      });
      log(`${r.id}: done, test rows ${r.testProba.length}`);
    },
  }, options.signal);
  bar.finish();
}

/** The planned models of a variant with their keys and any finished job. */
async function slotsOf(
  inputs: ExperimentInputs,
  log: (line: string) => void,
  unavailable: VariantResults["unavailable"],
  models?: string[],
): Promise<Slot[]> {
  const slots: Slot[] = [];
  const plans = planModels(inputs.cfg).filter((p) => !models || models.includes(p.id));
  for (const plan of plans) {
    const reason = plan.family === "image" ? unavailableReason(plan.input.backbone) : undefined;
    if (reason) {
      if (!unavailable.some((u) => u.name === plan.id)) unavailable.push({ name: plan.id, reason });
      continue;
    }
    const key = await jobKey(plan, inputs);
    const path = jobPath(inputs.cfg.cacheDir, plan, key);
    const stored = await readJob(path, log);
    if (stored) {
      log(`${jobName(plan)}: result cached (made ${stored.madeAt} by run ${stored.madeBy})`);
    }
    slots.push({ plan, key, path, stored, computed: false });
  }
  // Jobs read from the cache count as used now (for `deno task cache`), in one write.
  const read = slots.filter((s) => s.stored).map((s) => s.path);
  if (read.length) await recordUses(inputs.cfg.cacheDir, read);
  return slots;
}

/**
 * Locks the jobs this process will run (all or none: a job another live process runs stops
 * this one with a message naming it, before any work).
 */
async function lockJobs(todo: Slot[], log: (line: string) => void): Promise<Lock[]> {
  const locks: Lock[] = [];
  try {
    for (const slot of todo) {
      await Deno.mkdir(dirname(slot.path), { recursive: true });
      locks.push(await acquireLock(`${slot.path}.lock`, `job ${jobName(slot.plan)}`, log));
    }
  } catch (e) {
    for (const lock of locks) await lock.release();
    throw e;
  }
  return locks;
}

function selected(variant: SweepVariant, plan: ModelPlan, only: string[] | undefined): boolean {
  if (!only) return true;
  const name = jobName(plan);
  return only.includes(variant.label ? `${variant.label}/${name}` : name);
}

/** Runs one sweep variant: inputs, plan, jobs, aggregation. */
async function runVariant(
  variant: SweepVariant,
  options: ExperimentOptions,
  log: (line: string) => void,
): Promise<VariantResults | undefined> {
  if (variant.label) log(`variant ${variant.label}`);
  const inputs = await prepareInputs(variant.config, options);
  const unavailable: VariantResults["unavailable"] = [];
  const slots = await slotsOf(inputs, log, unavailable, options.models);
  const todo = slots.filter((s) => !s.stored && selected(variant, s.plan, options.only));
  if (options.collect && todo.length > 0) {
    throw new Error(
      `--collect: ${todo.length} job(s) have no result yet: ${
        todo.map((s) => (variant.label ? `${variant.label}/` : "") + jobName(s.plan)).join(", ")
      }; run them (e.g. with --only JOB) first.`,
    );
  }
  const locks = await lockJobs(todo, log);
  try {
    const prepared = await prepareJobs(todo, inputs, options, log, unavailable);
    await runPrepared(prepared, inputs, options, log);
    // Every job that ran has its result stored: never aggregate a run with one silently left out.
    const lost = [...prepared.values()].filter((p) => !p.slot.stored).map((p) => p.job.id);
    if (lost.length) throw new Error(`job(s) ${lost.join(", ")} ran but no result was stored`);
  } finally {
    for (const lock of locks) await lock.release();
  }
  if (options.only) return undefined;
  const finished: FinishedJob[] = withAveragedLayouts(
    slots.filter((s) => s.stored).map((s) => ({
      plan: s.plan,
      stored: s.stored!,
      computed: s.computed,
    })),
    averagedLayouts(inputs.cfg),
  );
  const { models, ablations } = aggregateModels(
    finished,
    inputs,
    inputs.cfg.ablations.backbone,
  );
  const result: VariantResults = {
    label: variant.label,
    values: variant.values,
    ...variantFacts(inputs),
    models,
    ablations,
    unavailable,
  };
  await options.onVariant?.(result, finished, inputs);
  return result;
}

/** The kernels this run computes on: the main thread's, and the job workers' thread count. */
function kernelsText(): string {
  const status = nativeStatus();
  if (status.kernels === "wasm") return nativeStatusText(status);
  const perWorker = nativeThreads(true);
  return `${nativeStatusText(status)}; job workers ${perWorker} thread${
    perWorker > 1 ? "s" : ""
  } each`;
}

/**
 * Runs the experiment `cfg` (see `config.ts`) and returns every model's metrics over its
 * seeds, timings, parameter counts and provenance. With `only`, runs those jobs and returns
 * `undefined`. Needs the IMDB archive, the encoder's weights and the backbones' weights
 * (each with a clear error when missing).
 */
export async function runExperiment(
  cfg: ResolvedConfig,
  options: ExperimentOptions = {},
): Promise<ExperimentResults> {
  const unknown = (options.models ?? []).filter((id) => !planModels(cfg).some((p) => p.id === id));
  if (unknown.length) {
    throw new Error(
      `no model ${unknown.join(", ")} in this run's plan (${
        [...new Set(planModels(cfg).map((p) => p.id))].join(", ")
      })`,
    );
  }
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const log = options.log ?? ((line: string) => console.error(line));
  log(`kernels: ${kernelsText()}`);
  const variants: VariantResults[] = [];
  for (const variant of expandSweep(cfg)) {
    const result = await runVariant(variant, options, log);
    if (result) variants.push(result);
    options.signal?.throwIfAborted();
  }
  return {
    schemaVersion: CONFIG_SCHEMA_VERSION,
    name: cfg.name,
    config: portableConfig(cfg),
    startedAt,
    finishedAt: new Date().toISOString(),
    totalSeconds: (performance.now() - started) / 1000,
    environment: {
      deno: Deno.version.deno,
      backend: tf.getBackend(),
      cores: navigator.hardwareConcurrency,
      os: Deno.build.os,
      code: await codeVersion(),
      kernels: kernelsText(),
    },
    sweep: Object.keys(cfg.sweep),
    variants,
    notes: experimentNotes(cfg, variants),
  };
}
