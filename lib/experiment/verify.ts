/**
 * Reproducibility check of a committed run: {@link verifyRun} recomputes the named models of
 * `results/<run>/` from nothing (a fresh, temporary cache folder: reviews, embeddings,
 * layout, features and every fit are computed again) with the run's own `config.json`, and
 * {@link compareRuns} lists every metric that differs from the committed `metrics.json` by
 * more than a stated tolerance.
 *
 * @module
 */
import { join } from "node:path";
import { loadExperimentConfig } from "./config.ts";
import type { RunOptions } from "./inputs.ts";
import { runExperiment } from "./run.ts";
import type { ExperimentResults } from "./run.ts";
import { readResults } from "./write.ts";

/** One compared metric. */
export interface MetricDifference {
  /** Sweep variant label ("" without a sweep). */
  variant: string;
  /** Model id. */
  model: string;
  /** Seed (`null`: deterministic model). */
  seed: number | null;
  /** Metric name (`test accuracy`, `test F1`, `test AUC`, `validation accuracy`). */
  metric: string;
  /** The committed value. */
  committed: number | undefined;
  /** The recomputed value. */
  recomputed: number | undefined;
}

/** What {@link compareRuns} found. */
export interface RunComparison {
  /** Metrics compared. */
  compared: number;
  /** Largest absolute difference. */
  maxDifference: number;
  /** Metrics beyond the tolerance (or missing on one side). */
  differences: MetricDifference[];
}

/**
 * Compares every metric of every model and seed of `recomputed` with `committed` (only the
 * models `recomputed` holds); a metric differs when |Δ| > `tolerance` or one side lacks it.
 */
export function compareRuns(
  committed: ExperimentResults,
  recomputed: ExperimentResults,
  tolerance: number,
): RunComparison {
  const out: RunComparison = { compared: 0, maxDifference: 0, differences: [] };
  for (const v of recomputed.variants) {
    const cv = committed.variants.find((x) => x.label === v.label);
    for (const m of v.models) {
      const cm = cv?.models.find((x) => x.id === m.id);
      for (const r of m.runs) {
        const cr = cm?.runs.find((x) => x.seed === r.seed);
        const pairs: [string, number | undefined, number | undefined][] = [
          ["test accuracy", cr?.metrics.test.accuracy, r.metrics.test.accuracy],
          ["test F1", cr?.metrics.test.f1, r.metrics.test.f1],
          ["test AUC", cr?.metrics.test.rocAuc, r.metrics.test.rocAuc],
          [
            "validation accuracy",
            cr?.metrics.validation?.accuracy,
            r.metrics.validation?.accuracy,
          ],
        ];
        for (const [metric, a, b] of pairs) {
          if (a === undefined && b === undefined) continue;
          out.compared++;
          const d = a !== undefined && b !== undefined ? Math.abs(a - b) : Infinity;
          if (Number.isFinite(d)) out.maxDifference = Math.max(out.maxDifference, d);
          if (!(d <= tolerance)) {
            out.differences.push({
              variant: v.label,
              model: m.id,
              seed: r.seed,
              metric,
              committed: a,
              recomputed: b,
            });
          }
        }
      }
    }
  }
  return out;
}

/** Options of {@link verifyRun}. */
export interface VerifyOptions extends RunOptions {
  /** Models to recompute (model ids; default: all of the run). */
  models?: string[];
  /** Largest accepted |Δ| of a metric (default 0.001). */
  tolerance?: number;
  /** Folder of the results (default `results/`). */
  resultsDir: string;
  /** Fresh folder for the recomputation's caches (deleted by the caller). */
  scratch: string;
}

/**
 * Recomputes the named models of a committed run from nothing and compares them with the
 * committed metrics. The caches go to `scratch` (the environment's `TEXT_AS_IMAGE_DATA` is
 * pointed there for the duration of the call), so no earlier cache is read.
 */
export async function verifyRun(
  run: string,
  options: VerifyOptions,
): Promise<
  { committed: ExperimentResults; recomputed: ExperimentResults; comparison: RunComparison }
> {
  const dir = join(options.resultsDir, run);
  const committed = await readResults(dir);
  const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
  Deno.env.set("TEXT_AS_IMAGE_DATA", options.scratch);
  try {
    const cfg = await loadExperimentConfig(join(dir, "config.json"), {
      cacheDir: join(options.scratch, "experiments", run),
    });
    const recomputed = await runExperiment(cfg, { ...options, models: options.models });
    const comparison = compareRuns(committed, recomputed, options.tolerance ?? 0.001);
    return { committed, recomputed, comparison };
  } finally {
    if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
    else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
  }
}
