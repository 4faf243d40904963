/**
 * From a planned image model to its job: the images it sees (the run's, or the same with
 * pixels permuted), its frozen backbone (ImageNet or random weights drawn from its seed),
 * the backbone features cached on disk (or the images for an end-to-end job), and the
 * trainable architecture of the paper's network it stands in for.
 *
 * @module
 */
import { join } from "node:path";
import { permutePixels } from "../image/mod.ts";
import { architectureFor, imageStats, sharedCopy, zNormalizeImages } from "../train/mod.ts";
import type { ArchitectureSpec, ImageStats } from "../train/mod.ts";
import type { ImageBatch } from "../types.ts";
import {
  BACKBONES,
  cacheFeatures,
  loadBackbone,
  randomlyInitialisedBackbone,
  torchvisionWeightsDigest,
  weightFilesDigest,
} from "../vision/mod.ts";
import type { Backbone } from "../vision/mod.ts";
import type { ExperimentInputs, RunImages, RunOptions } from "./inputs.ts";
import { sha } from "./inputs.ts";
import type { ImageJob, ImageJobInputs } from "./jobs.ts";
import type { ModelPlan } from "./plan.ts";
import { jobName } from "./plan.ts";
import { recordUses } from "./uses.ts";
import { mergeOrigins, originOf, type StageOrigin } from "../provenance.ts";

/** A planned image model. */
export type ImagePlan = Extract<ModelPlan, { family: "image" }>;

/** The backbone of an image model as the results describe it. */
export interface BackboneRecord {
  /** Registry name (with `_random_init_s<seed>` for random weights). */
  name: string;
  /** The paper's networks it stands in for. */
  standsInFor: string[];
  /** ImageNet or random weights. */
  weights: "imagenet" | "random";
  /** Layer the network is sliced after. */
  sliceLayer: string | null;
  /** Where the weights were read (portable form). */
  loadedFrom: string;
  /** Output `[h, w, c]` for the run's input size. */
  featureShape: [number, number, number];
  /** Frozen parameter count. */
  frozenParams: number;
  /**
   * Where the features came from when the job was made: `computed` (by that call, all or some
   * rows), `cache` (read from the feature cache), or `end-to-end` (the backbone ran per batch).
   */
  features: "computed" | "cache" | "end-to-end";
  /**
   * With cached features: which call computed the feature rows the job read (train,
   * validation and test together), in rows; absent in jobs stored before it was recorded.
   */
  featureOrigin?: StageOrigin;
}

/** The trainable part for a backbone: its paper network's architecture. */
export function architectureOf(backbone: string): ArchitectureSpec {
  return architectureFor(BACKBONES[backbone]?.standsInFor ?? []);
}

/**
 * The images of each part an image model sees: the run's, or for the permuted-pixel
 * ablation the same images with ONE permutation (seeded by the model's seed) applied to
 * train, validation and test alike.
 */
export function imagesFor(
  plan: ImagePlan,
  images: ExperimentInputs["images"],
): ExperimentInputs["images"] {
  if (plan.input.pixels === "layout") return images;
  return {
    train: permutePixels(images.train, plan.seed),
    validation: permutePixels(images.validation, plan.seed),
    test: permutePixels(images.test, plan.seed),
  };
}

/** The images of the layout an image model sees: the run's, or its averaged layout's. */
export function baseImages(plan: ImagePlan, inputs: ExperimentInputs): ExperimentInputs["images"] {
  const r = plan.input.representation;
  if (r === undefined) return inputs.images;
  const images = inputs.layoutImages?.[r];
  if (!images) {
    throw new Error(`${plan.id}: layout ${r + 1} has no images (image.representations has fewer)`);
  }
  return images;
}

/**
 * Key of everything an image model's result depends on (finds a finished job without
 * training): the rows, the model's input and options, the backbone's spec and, for ImageNet
 * weights, a digest of its weight files (random weights: the seed, in the plan).
 */
export async function imageJobKey(plan: ImagePlan, inputs: ExperimentInputs): Promise<string> {
  const m = inputs.cfg.models;
  const spec = BACKBONES[plan.input.backbone];
  const weightFiles = plan.input.weights === "imagenet" && spec?.sources.length
    ? (spec.torchvision !== undefined
      ? await torchvisionWeightsDigest(spec)
      : await weightFilesDigest(spec.sources))
    : null;
  return sha(JSON.stringify({
    weightFiles,
    rowsKey: inputs.rowsKey,
    id: plan.id,
    input: plan.input,
    seed: plan.seed,
    spec: BACKBONES[plan.input.backbone],
    upsample: m.upsample,
    dtype: m.features === "cache" ? m.featureDtype : null,
    features: m.features,
    normalization: m.normalization,
    architecture: architectureOf(plan.input.backbone),
    training: plan.options,
  })).slice(0, 16);
}

async function backboneOf(plan: ImagePlan): Promise<Backbone> {
  return plan.input.weights === "random"
    ? await randomlyInitialisedBackbone(plan.input.backbone, plan.seed)
    : await loadBackbone(plan.input.backbone);
}

async function cachedInputs(
  plan: ImagePlan,
  backbone: Backbone,
  images: ExperimentInputs["images"],
  stats: ImageStats,
  inputs: ExperimentInputs,
  options: RunOptions,
): Promise<{ inputs: ImageJobInputs; computed: number; origin: StageOrigin }> {
  const m = inputs.cfg.models;
  const dirs: Record<string, string> = {};
  const origins: StageOrigin[] = [];
  let computed = 0;
  for (const part of ["train", "validation", "test"] as const) {
    if (part === "validation" && inputs.labels.validation.length === 0) continue;
    // `imagenet`: the [0, 1] images through the backbone's own scaling; else z-normalised.
    const imagenet = m.normalization === "imagenet";
    const input = imagenet ? images[part] : zNormalizeImages(images[part], stats);
    const cache = await cacheFeatures(backbone, input, {
      preprocess: imagenet,
      upsample: m.upsample,
      dtype: m.featureDtype,
      // Workers load a backbone from its registry spec: never for re-initialised weights.
      workers: plan.input.weights === "random" ? 1 : m.workers,
      signal: options.signal,
      log: options.log,
      maker: inputs.maker,
      onProgress: (p) =>
        options.onProgress?.({
          stage: "features",
          done: p.done,
          total: p.total,
          detail: `${jobName(plan)} ${part}`,
        }),
    });
    dirs[part] = cache.dir;
    computed += cache.computedRows;
    origins.push(originOf(await cache.chunkMakers(), inputs.maker));
  }
  await recordUses(inputs.cfg.cacheDir, Object.values(dirs));
  return {
    inputs: { kind: "cache", train: dirs.train, validation: dirs.validation, test: dirs.test },
    computed,
    origin: mergeOrigins(origins),
  };
}

function shared(images: RunImages): ImageBatch {
  if (images.shape.length !== 3) {
    // The config refuses this combination; a hand-made one gets told why.
    throw new Error(
      `multi-channel images (image.channels "states" or image.representations) need ` +
        `models.features "cache"`,
    );
  }
  return { data: sharedCopy(images.data), shape: images.shape };
}

/**
 * The job of a planned image model, with its backbone's description; computes (or reads)
 * the backbone features. Throws when the backbone cannot be loaded.
 */
export async function prepareImageJob(
  plan: ImagePlan,
  inputs: ExperimentInputs,
  key: string,
  options: RunOptions = {},
): Promise<{ job: ImageJob; backbone: BackboneRecord; featureSeconds: number }> {
  const cfg = inputs.cfg, m = cfg.models;
  const backbone = await backboneOf(plan);
  try {
    const t = performance.now();
    const base = baseImages(plan, inputs);
    const images = imagesFor(plan, base);
    // One mean and std over the (intact) training images (see train/sources.ts).
    const stats = imageStats(base.train);
    const hasValidation = inputs.labels.validation.length > 0;
    const cached = m.features === "cache"
      ? await cachedInputs(plan, backbone, images, stats, inputs, options)
      : undefined;
    const jobInputs: ImageJobInputs = cached ? cached.inputs : {
      kind: "images",
      train: shared(images.train),
      validation: hasValidation ? shared(images.validation) : undefined,
      test: shared(images.test),
      backbone: plan.input.backbone,
      weights: plan.input.weights,
      randomSeed: plan.seed,
      upsample: m.upsample,
      normalization: m.normalization === "train" ? stats : m.normalization,
    };
    const featureSeconds = (performance.now() - t) / 1000;
    const side = cfg.image.pixels * m.upsample;
    const name = jobName(plan);
    const job: ImageJob = {
      kind: "image",
      id: name,
      inputs: jobInputs,
      runKey: key,
      labels: {
        train: inputs.labels.train,
        validation: hasValidation ? inputs.labels.validation : undefined,
        test: inputs.labels.test,
      },
      architecture: architectureOf(plan.input.backbone),
      training: plan.options,
      checkpointDir: join(cfg.cacheDir, "checkpoints", `${name}-${key}`),
    };
    return {
      job,
      featureSeconds,
      backbone: {
        name: backbone.name,
        standsInFor: backbone.spec.standsInFor,
        weights: plan.input.weights,
        sliceLayer: backbone.spec.sliceLayer,
        loadedFrom: backbone.loadedFrom,
        featureShape: backbone.outputShape([side, side]),
        frozenParams: backbone.model.countParams(),
        features: !cached ? "end-to-end" : cached.computed > 0 ? "computed" : "cache",
        ...(cached ? { featureOrigin: cached.origin } : {}),
      },
    };
  } finally {
    backbone.dispose();
  }
}
