/**
 * How fast this machine runs each kind of job, for `--plan`'s time estimates and for
 * ordering jobs longest first. Every finished job updates `dataDir()/rates.json` with what
 * it measured; until a kind has run here, the estimate uses the rates of the run that made
 * the committed `results/use-lite-5k` (2 cores; see {@link FALLBACK_RATES}) and says so.
 *
 * @module
 */
import { join } from "node:path";
import { dataDir } from "../config.ts";
import { MLPClassifier } from "../eval/mlp.ts";
import type { ResolvedConfig } from "./config.ts";
import type { ModelPlan } from "./plan.ts";

/** Seconds per unit of work of one kind of job. */
export interface Rate {
  /** Seconds per training row and epoch (image models, MLP) or per row and l2 candidate. */
  fitPerRowEpoch: number;
  /** Seconds per predicted row (validation and test). */
  predictPerRow: number;
  /** Where the rate comes from. */
  source: string;
}

/**
 * Rates by job kind: `image:<backbone>:<features mode>:<input side>` (a backbone's rate at
 * one input size and features mode says nothing of another), `mlp`, `logistic`,
 * `mlp:<hidden widths>`, `embed:<encoder>`.
 */
export type Rates = Record<string, Rate>;

const COMMITTED = "the run that made results/use-lite-5k (commit 9889e80, 2 cores)";

/**
 * Rates measured in the run that made the committed `results/use-lite-5k` (fit seconds over
 * 3 epochs × 5,000 training images, predict seconds over 5,500 images; its metrics.json).
 */
export const FALLBACK_RATES: Readonly<Rates> = {
  "image:resnet50:cache:50": {
    fitPerRowEpoch: 696.0 / 15000,
    predictPerRow: 82.5 / 5500,
    source: COMMITTED,
  },
  "image:vgg19:cache:50": {
    fitPerRowEpoch: 622.6 / 15000,
    predictPerRow: 62.1 / 5500,
    source: COMMITTED,
  },
  "image:mobilenet_v1:cache:50": {
    fitPerRowEpoch: 270.7 / 15000,
    predictPerRow: 24.3 / 5500,
    source: COMMITTED,
  },
  "image:darknet_reference:cache:50": {
    fitPerRowEpoch: 200.0 / 15000,
    predictPerRow: 14.7 / 5500,
    source: COMMITTED,
  },
  "image:darknet_tiny:cache:50": {
    fitPerRowEpoch: 117.0 / 15000,
    predictPerRow: 4.4 / 5500,
    source: COMMITTED,
  },
  "mlp:256": { fitPerRowEpoch: 106.3 / (30 * 5000), predictPerRow: 0.25 / 5500, source: COMMITTED },
  logistic: { fitPerRowEpoch: 38.6 / (7 * 5000), predictPerRow: 0.01 / 5500, source: COMMITTED },
  "embed:use-lite": { fitPerRowEpoch: 1 / 12.2, predictPerRow: 0, source: COMMITTED },
};

/** The rates file of this machine. */
export function ratesPath(): string {
  return join(dataDir(), "rates.json");
}

/** This machine's measured rates (empty when none yet; a damaged file counts as none). */
export async function readRates(): Promise<Rates> {
  try {
    return JSON.parse(await Deno.readTextFile(ratesPath())) as Rates;
  } catch {
    return {};
  }
}

/** Records a measured rate (read-modify-write of a small file; the last writer wins). */
export async function recordRate(kind: string, rate: Omit<Rate, "source">): Promise<void> {
  if (!(rate.fitPerRowEpoch > 0)) return;
  const rates = await readRates();
  rates[kind] = { ...rate, source: `measured on this machine ${new Date().toISOString()}` };
  await Deno.mkdir(dataDir(), { recursive: true });
  const part = `${ratesPath()}.${crypto.randomUUID().slice(0, 8)}.part`;
  await Deno.writeTextFile(part, JSON.stringify(rates, null, 1));
  await Deno.rename(part, ratesPath());
}

/** The rate kind of a planned model of `cfg`. */
export function rateKind(plan: ModelPlan, cfg: ResolvedConfig): string {
  if (plan.family === "mlp") {
    return `mlp:${new MLPClassifier(plan.options).config.hidden.join("-")}`;
  }
  if (plan.family !== "image") return plan.family;
  const side = cfg.image.pixels * cfg.models.upsample;
  return `image:${plan.input.backbone}:${cfg.models.features}:${side}`;
}

/** The rate of `kind`: this machine's, else the committed run's, else undefined. */
export function rateOf(rates: Rates, kind: string): Rate | undefined {
  return rates[kind] ?? FALLBACK_RATES[kind];
}

/**
 * Estimated seconds of a planned model's job on `train` training rows and `predict`
 * predicted rows (the maximum epochs for image models: early stopping can only shorten it).
 */
export function estimateSeconds(
  plan: ModelPlan,
  cfg: ResolvedConfig,
  sizes: { train: number; predict: number },
  rates: Rates,
): { seconds: number; source: string } | undefined {
  const rate = rateOf(rates, rateKind(plan, cfg));
  if (!rate) return undefined;
  const epochs = plan.family === "image"
    ? plan.options.epochs
    : plan.family === "mlp"
    ? new MLPClassifier(plan.options).config.epochs
    : plan.options.l2.length;
  return {
    seconds: rate.fitPerRowEpoch * sizes.train * epochs + rate.predictPerRow * sizes.predict,
    source: rate.source,
  };
}
