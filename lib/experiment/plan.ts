/**
 * The plan of a run: the list of models it trains, each a plain typed entry
 * ({@link ModelPlan}) with its input, its classifier options (whole) and its seed. Every
 * kind of model comes from one builder in {@link PLAN_BUILDERS}; a new model, baseline or
 * ablation is a new builder, not an edit in the middle of the run.
 *
 * @module
 */
import { MLPClassifier } from "../eval/mlp.ts";
import type { MLPClassifierOptions } from "../eval/mlp.ts";
import type { TrainingOptions } from "../train/mod.ts";
import { BACKBONES } from "../vision/mod.ts";
import { averagedLayouts } from "./config.ts";
import type { ConfigTfidfOptions, ResolvedConfig } from "./config.ts";

/** What an image model sees. */
export interface ImageInput {
  /** Registry name of the frozen backbone. */
  backbone: string;
  /** ImageNet weights, or weights drawn at random from the model's seed. */
  weights: "imagenet" | "random";
  /** The DeepInsight images, or the same with pixels permuted (seeded by the model's seed). */
  pixels: "layout" | "permuted";
  /**
   * With several averaged layouts (`image.representations`, `combine: "average"`): the index
   * of the layout whose images this classifier sees (absent otherwise).
   */
  representation?: number;
}

/** Fields every planned model has. */
export interface PlanBase {
  /** Model name, e.g. `vgg19`, `logistic-regression`, `ablation-permuted-pixels-vgg19`. */
  id: string;
  /** Role in the comparison. */
  kind: "baseline" | "image" | "ablation";
  /** One line on what it is. */
  description: string;
}

/** One model of the plan (the run trains it once per seed; logistic regression once). */
export type ModelPlan =
  | PlanBase & { family: "logistic"; seed: null; options: { l2: number[] } }
  | PlanBase & { family: "mlp"; seed: number; options: MLPClassifierOptions }
  | PlanBase & {
    family: "tfidf";
    seed: null;
    options: { l2: number[]; vectorizer: ConfigTfidfOptions };
  }
  | PlanBase & {
    family: "image";
    seed: number;
    input: ImageInput;
    options: TrainingOptions;
  };

/** The job name of a planned model: `id@seed` (logistic regression: `id`). */
export function jobName(plan: ModelPlan): string {
  return plan.seed === null ? plan.id : `${plan.id}@${plan.seed}`;
}

/**
 * With averaged layouts (see `imagePlan`): `items` (jobs, predictions…) with the model `<id>`
 * inserted before the first item of each complete group `<id>.<layout>` of one seed,
 * made by `combine(id, members)`; a group missing a layout gets none. `idOf` gives an
 * item's model id, or undefined for items that are not image models.
 */
export function withLayoutAverages<T>(
  items: T[],
  layouts: string[],
  idOf: (item: T) => string | undefined,
  seedOf: (item: T) => number | null,
  combine: (id: string, members: T[]) => T,
): T[] {
  if (layouts.length === 0) return items;
  const suffix = new RegExp(`\\.(${layouts.join("|")})$`);
  const baseOf = (item: T) => {
    const id = idOf(item);
    return id !== undefined && suffix.test(id) ? id.replace(suffix, "") : undefined;
  };
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const base = baseOf(item);
    if (base === undefined) continue;
    const key = `${base}@${seedOf(item)}`;
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  const out: T[] = [];
  const placed = new Set<string>();
  for (const item of items) {
    const base = baseOf(item);
    const key = `${base}@${seedOf(item)}`;
    const members = base === undefined ? undefined : groups.get(key);
    if (members && members.length === layouts.length && !placed.has(key)) {
      placed.add(key);
      out.push(combine(base!, members));
    }
    out.push(item);
  }
  return out;
}

/** Builds the entries of one kind of model from a config. */
export type PlanBuilder = (cfg: ResolvedConfig) => ModelPlan[];

/** Logistic regression on the embeddings: deterministic, so once whatever the seeds. */
export const logisticPlans: PlanBuilder = (cfg): ModelPlan[] =>
  cfg.baselines.logistic
    ? [{
      id: "logistic-regression",
      kind: "baseline",
      family: "logistic",
      seed: null,
      options: { l2: cfg.baselines.logistic.l2 },
      description: `L2 logistic regression on the standardised embeddings (l2 = 1/C chosen on ` +
        `the validation set from ${cfg.baselines.logistic.l2.join(", ")}; deterministic: one ` +
        `fit whatever the seeds)`,
    }]
    : [];

/** Logistic regression on TF-IDF of the raw text (the classic baseline): deterministic, once. */
export const tfidfPlans: PlanBuilder = (cfg): ModelPlan[] =>
  cfg.baselines.tfidf
    ? [{
      id: "tfidf-logistic",
      kind: "baseline",
      family: "tfidf",
      seed: null,
      options: { l2: cfg.baselines.tfidf.l2, vectorizer: cfg.baselines.tfidf.vectorizer },
      description: `L2 logistic regression on TF-IDF word unigrams + bigrams of the raw text ` +
        `(vectorizer fitted on the training texts; l2 chosen on the validation set from ` +
        `${cfg.baselines.tfidf.l2.join(", ")}): the classic IMDB baseline, no encoder`,
    }]
    : [];

/** The MLP on the embeddings, once per seed. */
export const mlpPlans: PlanBuilder = (cfg): ModelPlan[] => {
  const options = cfg.baselines.mlp;
  if (!options) return [];
  return cfg.seeds.map((seed) => ({
    id: "mlp",
    kind: "baseline",
    family: "mlp",
    seed,
    options: { ...options, seed },
    description: `MLP on the standardised embeddings (hidden ${
      JSON.stringify(new MLPClassifier(options).config.hidden)
    }, ReLU, dropout, Adam; best epoch on validation)`,
  }));
};

/**
 * The image model `id` for one seed: one plan, or with several averaged layouts one per
 * layout (`<id>.layout<k>`, the model `<id>` then being their average, made when the results
 * are aggregated: see `results.ts`).
 */
function imagePlan(
  cfg: ResolvedConfig,
  seed: number,
  id: string,
  kind: "image" | "ablation",
  input: ImageInput,
  description: string,
): ModelPlan[] {
  const plan = (id: string, input: ImageInput, description: string): ModelPlan => ({
    id,
    kind,
    family: "image",
    seed,
    input,
    options: { ...cfg.models.training, seed },
    description,
  });
  const layouts = averagedLayouts(cfg);
  if (layouts.length === 0) return [plan(id, input, description)];
  return layouts.map((name, r) =>
    plan(
      `${id}.${name}`,
      { ...input, representation: r },
      `${description}, on layout ${r + 1} of ${layouts.length}`,
    )
  );
}

/** One classifier per configured backbone and seed. */
export const backbonePlans: PlanBuilder = (cfg): ModelPlan[] =>
  cfg.models.backbones.flatMap((backbone) =>
    cfg.seeds.flatMap((seed) =>
      imagePlan(
        cfg,
        seed,
        backbone,
        "image",
        { backbone, weights: "imagenet", pixels: "layout" },
        `frozen ${backbone} slice + trainable conv stack and head`,
      )
    )
  );

/** The ablation backbone on images whose pixels one random permutation per seed moved. */
export const permutedPixelPlans: PlanBuilder = (cfg): ModelPlan[] => {
  const backbone = cfg.ablations.backbone;
  if (!cfg.ablations.permutedPixels) return [];
  return cfg.seeds.flatMap((seed) =>
    imagePlan(
      cfg,
      seed,
      `ablation-permuted-pixels-${backbone}`,
      "ablation",
      { backbone, weights: "imagenet", pixels: "permuted" },
      `as ${backbone}, on images whose pixels are moved by one random permutation per seed ` +
        `(the layout destroyed)`,
    )
  );
};

/** The ablation backbone with random weights (He normal, drawn from each seed). */
export const randomBackbonePlans: PlanBuilder = (cfg): ModelPlan[] => {
  const backbone = cfg.ablations.backbone;
  if (!cfg.ablations.randomBackbone) return [];
  return cfg.seeds.flatMap((seed) =>
    imagePlan(
      cfg,
      seed,
      `ablation-random-init-${backbone}`,
      "ablation",
      { backbone, weights: "random", pixels: "layout" },
      `as ${backbone}, with the backbone's weights drawn at random (He normal, from the seed) ` +
        `instead of ImageNet's`,
    )
  );
};

/** Every kind of model a run can plan, in report order. */
export const PLAN_BUILDERS: readonly PlanBuilder[] = [
  logisticPlans,
  tfidfPlans,
  mlpPlans,
  backbonePlans,
  permutedPixelPlans,
  randomBackbonePlans,
];

/** The models of `cfg` (one entry per model and seed). */
export function planModels(cfg: ResolvedConfig): ModelPlan[] {
  return PLAN_BUILDERS.flatMap((build) => build(cfg));
}

/** Why a planned backbone cannot run here (no loadable source), or undefined. */
export function unavailableReason(backbone: string): string | undefined {
  const spec = BACKBONES[backbone];
  if (!spec) return `"${backbone}" is not a registered backbone`;
  if (spec.sources.length === 0) return spec.howToObtain ?? "no loadable source is registered";
  return undefined;
}
