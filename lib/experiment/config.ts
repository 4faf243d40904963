/**
 * What an experiment runs: the config type ({@link ExperimentConfig}), its one set of defaults
 * ({@link resolveConfig}), validation with clear errors ({@link validateConfig}), the one loader
 * used by `deno task reproduce`, the notebooks and the tests ({@link loadExperimentConfig}),
 * and sweeps ({@link expandSweep}).
 *
 * Classifier options are defined once, by the estimators: `models.training` is a part of the
 * image classifier's `TrainingOptions` (defaults `TRAINING_DEFAULTS`), `baselines.mlp` a part
 * of `MLPClassifierOptions`; both are carried whole to the job that trains the model. Seeds
 * are not options of a model but of the run: `seeds` lists them, and every trained model runs
 * once per seed.
 *
 * ```ts
 * import { loadExperimentConfig } from "./config.ts";
 * const cfg = await loadExperimentConfig("quick", { data: { trainSize: 300 } });
 * console.log(cfg.models.training.epochs, cfg.seeds);
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { dataDir, projectRoot, sharedDir } from "../config.ts";
import { COLUMN_OPTIONS, DATA_FORMATS, inferDataFormat, TABLE_OPTIONS } from "../data/mod.ts";
import type { DataFormat } from "../data/mod.ts";
import type { MLPClassifierOptions } from "../eval/mlp.ts";
import { L2_CANDIDATES } from "../eval/logistic.ts";
import type { TsneOptions } from "../image/mod.ts";
import type { Pooling } from "../embed/mod.ts";
import { PAPER_TRAINING, TRAINING_DEFAULTS } from "../train/mod.ts";
import type { TrainingOptions } from "../train/mod.ts";
import { BACKBONES, hasTorchvisionCheckpoint, loadableBackbones } from "../vision/mod.ts";
import type { FeatureDtype } from "../vision/mod.ts";
import {
  any,
  arrayOf,
  bool,
  fieldAt,
  fieldPaths,
  int,
  nearest,
  num,
  object,
  oneOf,
  record,
  type Schema,
  str,
  union,
  validate,
} from "./schema.ts";

/** The config format's version; configs and `metrics.json` carry it. */
export const CONFIG_SCHEMA_VERSION = 2;

/** What changed since each older version (shown when an older config is loaded). */
const CHANGES: Record<number, string[]> = {
  1: [
    `add "schemaVersion": 2`,
    `models.seed → top-level "seeds": [..] (every trained model runs once per seed)`,
    `models.epochs, batchSize, lrConv, lrHead, initGain, standardizeFeatures → ` +
    `models.training.{epochs, …}; models.training.epochs is now the maximum, with early ` +
    `stopping by models.training.patience (null: run every epoch)`,
    `ablations.seed removed: the permutation and the random weights follow "seeds"`,
  ],
};

/** Training options a config may set (the seed comes from `seeds`). */
export type ConfigTrainingOptions = Partial<Omit<TrainingOptions, "seed">>;

/** MLP options a config may set (the seed comes from `seeds`). */
export type ConfigMlpOptions = Omit<MLPClassifierOptions, "seed">;

/** t-SNE options a config may set. */
export type ConfigTsneOptions = Omit<TsneOptions, "init" | "metric" | "nComponents"> & {
  init?: "random" | "pca";
  /** Input-space metric: `euclidean` (default) or `cosine` (pyDeepInsight's). */
  metric?: "euclidean" | "cosine";
};

/** TF-IDF vectorizer options of a config (defaults: `TfidfVectorizer`'s). */
export interface ConfigTfidfOptions {
  lowercase?: boolean;
  ngramRange?: [number, number];
  minDf?: number;
  maxFeatures?: number;
  sublinearTf?: boolean;
}

/** UMAP options of a config (umap-learn's defaults). */
export interface ConfigUmapOptions {
  nNeighbors?: number;
  minDist?: number;
  spread?: number;
  nEpochs?: number;
  metric?: "euclidean" | "cosine";
  seed?: number;
}

/** One layout of several (`image.representations`): overrides of the image options. */
export interface ConfigRepresentation {
  featureExtractor?: "tsne" | "pca" | "kpca" | "umap" | "random";
  discretization?: "bin" | "qtb" | "lsa";
  compat?: "pydeepinsight-2021" | "pydeepinsight";
  tsne?: ConfigTsneOptions;
  kernelPca?: { gamma?: number };
  umap?: ConfigUmapOptions;
}

/** Image options that are part of a resolved config only when set (older keys stay valid). */
const OPTIONAL_IMAGE_FIELDS = [
  "featureExtractor",
  "compat",
  "kernelPca",
  "umap",
  "channels",
  "stateFit",
  "representations",
  "combine",
] as const;
type OptionalImageField = typeof OPTIONAL_IMAGE_FIELDS[number];

/** What to run. Every field but `name` and `schemaVersion` has a default ({@link resolveConfig}). */
export interface ExperimentConfig {
  /** Must be {@link CONFIG_SCHEMA_VERSION}. */
  schemaVersion: number;
  /** Run name: names the results folder and this run's cache folder. */
  name: string;
  /** One line on what the run is for (shown in the report). */
  description?: string;
  /** Informational: where a written config came from (replaced by the loader). */
  origin?: string;
  /** Reviews (or any labelled texts) and splits. */
  data?: {
    /**
     * IMDB archive, extracted folder or URL (default: the data stage's default source); or a
     * CSV, TSV or JSON Lines file, or a folder with one sub-folder per class.
     */
    source?: string;
    /**
     * How to read `source` (default: from the path: `.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`;
     * a folder that is not an extracted `aclImdb/` → `folders`; anything else → `imdb`).
     */
    format?: DataFormat;
    /** Shown in logs and the report (default: `IMDB`, or the file or folder name). */
    name?: string;
    /** Column (JSONL: field) of the text (csv, tsv, jsonl; default `text`). */
    textColumn?: string;
    /** Column (JSONL: field) of the label (csv, tsv, jsonl; default `label`). */
    labelColumn?: string;
    /**
     * Column (JSONL: field) of each record's split, `train` / `validation` / `test` (csv, tsv,
     * jsonl; default none: a seeded stratified split, `testSize` held out for test).
     */
    splitColumn?: string;
    /**
     * The raw label value of class 1 (not IMDB). Needed unless the two label values are
     * `0`/`1`, `false`/`true`, `neg`/`pos` or `negative`/`positive` (any case), which map
     * the second of each pair to 1.
     */
    positiveLabel?: string | number | boolean;
    /** Keep `<br />` as the paper did, or replace it with a space (default `keep`). */
    breaks?: "keep" | "space";
    /** `standard` (official train/test halves, validation slice of train) or `paper` (pooled 40k/10k). */
    scheme?: "standard" | "paper";
    /** Training reviews (default 5,000). */
    trainSize?: number;
    /** Test reviews (default 5,000). */
    testSize?: number;
    /** Validation slice as a fraction of the training size (standard only; default 0.1). */
    validationFraction?: number;
    /** Seed of the split (default 42); fixed across `seeds`. */
    seed?: number;
  };
  /** Text encoder. */
  embedding?: {
    /** `use-lite` (offline, pretrained) or `bert` (bert-base-uncased ONNX export). */
    encoder?: "use-lite" | "bert";
    /** Model folder or hub id (BERT only; default `Xenova/bert-base-uncased`). */
    model?: string;
    /** Hidden states to concatenate (default: the encoder's). */
    layers?: number[];
    /** Token pooling (default: the encoder's). */
    pooling?: Pooling;
    /** Truncation length in tokens (default: the encoder's). */
    maxTokens?: number;
    /** Texts per forward pass (default: the encoder's). */
    batchSize?: number;
  };
  /** Vector → image. */
  image?: {
    /** Side of the square image (default 50). */
    pixels?: number;
    /**
     * How features are laid out in 2-D: `tsne` (default, the paper's), `pca`, `kpca` (RBF
     * kernel PCA), `umap`, or `random` (each feature a random position: a control).
     */
    featureExtractor?: "tsne" | "pca" | "kpca" | "umap" | "random";
    /**
     * `bin` (the paper's), `qtb` (quantile ranks per axis, then bins: the points spread over
     * the grid) or `lsa` (one feature group per pixel).
     */
    discretization?: "bin" | "qtb" | "lsa";
    /**
     * Reproduce pyDeepInsight's geometry instead of the correct one (default: none):
     * `pydeepinsight-2021` (the code the paper used: rotation by +angle) or `pydeepinsight`
     * (today's: +angle, equal-width bins, its lsa centres). See `lib/image/compat.ts`.
     */
    compat?: "pydeepinsight-2021" | "pydeepinsight";
    /** Kernel PCA options (`gamma`, default 1 / the number of rows fitted on). */
    kernelPca?: { gamma?: number };
    /** UMAP options (umap-learn's defaults). */
    umap?: ConfigUmapOptions;
    /**
     * `single` (default, the paper's): one layout of every feature, one channel. `states`:
     * the hidden states (`embedding.layers`, which must share coordinates: one residual
     * stream) as channels of one layout of their dimensions, mapped to 3 channels (see
     * `lib/image/channels.ts`: contiguous groups averaged). Needs cached features.
     */
    channels?: "single" | "states";
    /** With `channels: "states"`: fit the layout on every state together (default) or on one. */
    stateFit?: "together" | number;
    /**
     * Several layouts of the same vectors (pyDeepInsight's MRep), each the image options
     * above with these overrides; combined as {@link combine} says. Needs cached features.
     */
    representations?: ConfigRepresentation[];
    /**
     * With `representations`: `average` (default, pyDeepInsight's MRep): one classifier per
     * layout (models `<id>.layout<k>`) and the model `<id>` itself the average of their
     * probabilities; `stacked`: the layouts as the channels of one image (mapped to 3).
     */
    combine?: "average" | "stacked";
    /** `log` (the paper's Norm-2) or `minmax`. */
    scaler?: "log" | "minmax";
    /** Fit scaler and layout on training rows only (default) or on all rows (the official code). */
    fitOn?: "train" | "all";
    /** t-SNE options (defaults: the paper's, seed 1701). */
    tsne?: ConfigTsneOptions;
  };
  /** The image classifiers. */
  models?: {
    /** Registry names (default: every registered backbone with a loadable source). */
    backbones?: string[];
    /** Nearest upsampling before the backbone (the paper: 3; default 1, 50×50 inputs). */
    upsample?: number;
    /** Storage type of cached backbone features (default float16). */
    featureDtype?: FeatureDtype;
    /**
     * `cache` (default): the backbone runs once per image and its features are cached on
     * disk. `end-to-end`: the backbone runs on every batch (no disk; the paper's per-batch
     * z-normalisation needs it).
     */
    features?: "cache" | "end-to-end";
    /**
     * Input scaling before the backbone: z-normalisation with `train` (one mean and std over
     * the training images) or `batch` (per batch, the paper; end to end only), or `imagenet`
     * (the [0, 1] images through the backbone's own ImageNet scaling: mean and std for the
     * torchvision networks, caffe / tf / unit for the Keras and Darknet ones). Default:
     * `train` with cached features, `batch` end to end.
     */
    normalization?: "train" | "batch" | "imagenet";
    /** The trainable part's training (defaults: `TRAINING_DEFAULTS` of `lib/train`). */
    training?: ConfigTrainingOptions;
    /** Jobs run at once, one per core (default 2). */
    workers?: number;
  };
  /** Seeds: every trained model runs once per seed (default `[42]`, the paper's). */
  seeds?: number[];
  /** Baselines on the same embeddings. */
  baselines?: {
    /** Logistic regression; `l2` candidates chosen on the validation set (default 0.01 … 10,000 by decades). */
    logistic?: boolean | { l2?: number[] };
    /** A small MLP (defaults: `MLPClassifier`'s). */
    mlp?: boolean | ConfigMlpOptions;
    /**
     * Logistic regression on TF-IDF unigrams + bigrams of the raw text (the classic IMDB
     * baseline; default off): what the frozen encoder loses. Vectorizer options default to
     * `TfidfVectorizer`'s (`minDf` 2); `l2` candidates as logistic regression's.
     */
    tfidf?: boolean | { l2?: number[]; vectorizer?: ConfigTfidfOptions };
  };
  /** Ablations on one backbone. */
  ablations?: {
    /** The backbone they use (default `vgg19`, the paper's VGG16 stand-in). */
    backbone?: string;
    /** Pixels moved by one random permutation per seed (default true). */
    permutedPixels?: boolean;
    /** The backbone's weights drawn at random, once per seed (default true). */
    randomBackbone?: boolean;
  };
  /**
   * Runs the whole plan once per value of each listed field (dotted paths, e.g.
   * `{ "data.trainSize": [1000, 2000] }`; several fields: every combination).
   */
  sweep?: Record<string, unknown[]>;
  /** Folder for this run's caches (default `dataDir()/experiments/<name>`); never written to results. */
  cacheDir?: string;
}

/** {@link ExperimentConfig} with every default filled in. */
export interface ResolvedConfig {
  /** The format's version. */
  schemaVersion: number;
  /** Run name. */
  name: string;
  /** What the run is for. */
  description: string;
  /** Shipped config name or file it came from (`(inline)` otherwise). */
  origin: string;
  /**
   * Reviews and splits. The fields of other sources (`format`, `name`, the columns,
   * `positiveLabel`) stay unset unless the config sets them: the data stage infers them from
   * `source` when it loads it (and reports what it used), and an IMDB run's resolved config,
   * and so its cache keys, are those of before these fields existed.
   */
  data:
    & Required<Omit<NonNullable<ExperimentConfig["data"]>, "source" | OptionalDataField>>
    & Pick<NonNullable<ExperimentConfig["data"]>, "source" | OptionalDataField>;
  /** Text encoder (unset fields: the encoder's defaults). */
  embedding: NonNullable<ExperimentConfig["embedding"]> & { encoder: "use-lite" | "bert" };
  /** Vector → image. */
  image:
    & Required<Omit<NonNullable<ExperimentConfig["image"]>, "tsne" | OptionalImageField>>
    & Pick<NonNullable<ExperimentConfig["image"]>, OptionalImageField>
    & { tsne: ConfigTsneOptions };
  /** The image classifiers, their training options complete. */
  models: Required<Omit<NonNullable<ExperimentConfig["models"]>, "training">> & {
    training: Omit<TrainingOptions, "seed">;
  };
  /** Seeds of every trained model. */
  seeds: number[];
  /** Baselines (false: not run). */
  baselines: {
    logistic: false | { l2: number[] };
    mlp: false | ConfigMlpOptions;
    tfidf: false | { l2: number[]; vectorizer: ConfigTfidfOptions };
  };
  /** Ablations. */
  ablations: Required<NonNullable<ExperimentConfig["ablations"]>>;
  /** Swept fields and their values (empty: no sweep). */
  sweep: Record<string, unknown[]>;
  /** This machine's cache folder of the run. */
  cacheDir: string;
}

/** The `data` fields without a default in {@link ResolvedConfig} (inferred when loading). */
type OptionalDataField =
  | "format"
  | "name"
  | "textColumn"
  | "labelColumn"
  | "splitColumn"
  | "positiveLabel";

/** Thrown for a config that does not validate; `problems` lists each one. */
export class ConfigError extends Error {
  /** One line per problem, each with its dotted path. */
  readonly problems: string[];
  /** Creates the error; `where` names the config. */
  constructor(where: string, problems: string[]) {
    super(
      `${where} is not a valid experiment config:\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

const positive = num({ min: 0, exclusiveMin: true });
const rate = union(positive, oneOf(["paper"]));

const TRAINING_SCHEMA = object({
  epochs: int({ min: 1, max: 1000 }),
  patience: union(int({ min: 1 }), oneOf([null])),
  batchSize: int({ min: 1 }),
  lrConv: rate,
  lrHead: rate,
  initGain: union(object({ hidden: positive, output: positive }), oneOf(["paper"])),
  standardizeFeatures: bool,
});

const MLP_SCHEMA = object({
  hidden: arrayOf(int({ min: 1 }), { minLength: 1 }),
  dropout: num({ min: 0, max: 0.99 }),
  lr: positive,
  weightDecay: num({ min: 0 }),
  epochs: int({ min: 1 }),
  batchSize: int({ min: 1 }),
});

const TSNE_SCHEMA = object({
  perplexity: positive,
  earlyExaggeration: positive,
  explorationIterations: int({ min: 0 }),
  learningRate: union(positive, oneOf(["auto"])),
  nIter: int({ min: 1 }),
  nIterWithoutProgress: int({ min: 1 }),
  minGradNorm: num({ min: 0 }),
  init: oneOf(["random", "pca"]),
  method: oneOf(["auto", "exact", "barnes_hut"]),
  theta: num({ min: 0, max: 1 }),
  exactMaxPoints: int({ min: 0 }),
  seed: int({ min: 0 }),
  pcaComponents: int({ min: 1 }),
  threads: int({ min: 1, max: 64 }),
  verbose: bool,
  metric: oneOf(["euclidean", "cosine"]),
});

const UMAP_SCHEMA = object({
  nNeighbors: int({ min: 2 }),
  minDist: num({ min: 0 }),
  spread: positive,
  nEpochs: int({ min: 1 }),
  metric: oneOf(["euclidean", "cosine"]),
  seed: int({ min: 0 }),
});

/**
 * The layouts whose classifiers are averaged (`image.representations` with `combine`
 * `average`, the default), named `layout1`, `layout2`, …; empty otherwise.
 */
export function averagedLayouts(cfg: ResolvedConfig): string[] {
  const reps = cfg.image.representations;
  if (!reps || cfg.image.combine === "stacked") return [];
  return reps.map((_, r) => `layout${r + 1}`);
}

/** Problems of the channel and multi-representation modes (see `layout.ts`). */
function layoutModeProblems(c: ExperimentConfig, features: string): string[] {
  const image = c.image ?? {}, problems: string[] = [];
  const multi = image.channels === "states" || image.representations !== undefined;
  if (image.channels === "states" && image.representations) {
    problems.push(`image.representations: not together with image.channels "states"; pick one`);
  }
  if (multi && features === "end-to-end") {
    problems.push(
      `image.${image.representations ? "representations" : "channels"}: multi-channel images ` +
        `need models.features "cache"`,
    );
  }
  if (image.combine !== undefined && image.representations === undefined) {
    problems.push(`image.combine: applies to image.representations only`);
  }
  if (image.stateFit !== undefined && image.channels !== "states") {
    problems.push(`image.stateFit: applies to image.channels "states" only`);
  }
  if (image.channels === "states") {
    const layers = c.embedding?.layers;
    if ((c.embedding?.encoder ?? "use-lite") === "use-lite" && (!layers || layers.includes(3))) {
      problems.push(
        `image.channels "states": USE-lite's sentence embedding (hidden state 3, after a dense ` +
          `layer) does not share coordinates with its Transformer states; set ` +
          `embedding.layers to [1, 2]`,
      );
    }
    if (typeof image.stateFit === "number" && layers && image.stateFit >= layers.length) {
      problems.push(`image.stateFit: ${image.stateFit} is not one of the ${layers.length} states`);
    }
  }
  return problems;
}

/** The schema every config is validated against (backbone names: the registry's). */
export function configSchema(): Schema {
  const backbone = oneOf(Object.keys(BACKBONES));
  return object({
    schemaVersion: int({ min: 1 }),
    name: str(/^[A-Za-z0-9_.-]+$/, `a name of letters, digits, "_", "-" or "."`),
    description: str(),
    origin: str(),
    data: object({
      source: str(),
      format: oneOf(DATA_FORMATS),
      name: str(),
      textColumn: str(/\S/, "a column name"),
      labelColumn: str(/\S/, "a column name"),
      splitColumn: str(/\S/, "a column name"),
      positiveLabel: union(str(), num(), bool),
      breaks: oneOf(["keep", "space"]),
      scheme: oneOf(["standard", "paper"]),
      trainSize: int({ min: 2 }),
      testSize: int({ min: 2 }),
      validationFraction: num({ min: 0, max: 0.9 }),
      seed: int({ min: 0 }),
    }),
    embedding: object({
      encoder: oneOf(["use-lite", "bert"]),
      model: str(),
      layers: arrayOf(int({ min: 0 }), { minLength: 1, unique: true }),
      pooling: oneOf(["cls", "mean"]),
      maxTokens: int({ min: 2 }),
      batchSize: int({ min: 1 }),
    }),
    image: object({
      pixels: int({ min: 4, max: 1024 }),
      featureExtractor: oneOf(["tsne", "pca", "kpca", "umap", "random"]),
      discretization: oneOf(["bin", "qtb", "lsa"]),
      compat: oneOf(["pydeepinsight-2021", "pydeepinsight"]),
      kernelPca: object({ gamma: positive }),
      umap: UMAP_SCHEMA,
      channels: oneOf(["single", "states"]),
      stateFit: union(oneOf(["together"]), int({ min: 0 })),
      combine: oneOf(["average", "stacked"]),
      representations: arrayOf(
        object({
          featureExtractor: oneOf(["tsne", "pca", "kpca", "umap", "random"]),
          discretization: oneOf(["bin", "qtb", "lsa"]),
          compat: oneOf(["pydeepinsight-2021", "pydeepinsight"]),
          tsne: TSNE_SCHEMA,
          kernelPca: object({ gamma: positive }),
          umap: UMAP_SCHEMA,
        }),
        { minLength: 1 },
      ),
      scaler: oneOf(["log", "minmax"]),
      fitOn: oneOf(["train", "all"]),
      tsne: TSNE_SCHEMA,
    }),
    models: object({
      backbones: arrayOf(backbone, { unique: true }),
      upsample: int({ min: 1, max: 16 }),
      featureDtype: oneOf(["float16", "float32"]),
      features: oneOf(["cache", "end-to-end"]),
      normalization: oneOf(["train", "batch", "imagenet"]),
      training: TRAINING_SCHEMA,
      workers: int({ min: 1, max: 64 }),
    }),
    seeds: arrayOf(int({ min: 0 }), { minLength: 1, unique: true }),
    baselines: object({
      logistic: union(bool, object({ l2: arrayOf(positive, { minLength: 1 }) })),
      mlp: union(bool, MLP_SCHEMA),
      tfidf: union(
        bool,
        object({
          l2: arrayOf(positive, { minLength: 1 }),
          vectorizer: object({
            lowercase: bool,
            ngramRange: arrayOf(int({ min: 1 }), { minLength: 2 }),
            minDf: positive,
            maxFeatures: int({ min: 1 }),
            sublinearTf: bool,
          }),
        }),
      ),
    }),
    ablations: object({
      backbone,
      permutedPixels: bool,
      randomBackbone: bool,
    }),
    sweep: record(arrayOf(any, { minLength: 1 })),
    cacheDir: str(),
  });
}

/** Checks the parts of a config the schema cannot: combinations, sweeps, versions. */
function crossChecks(raw: Record<string, unknown>, schema: Schema): string[] {
  const problems: string[] = [];
  const c = raw as unknown as ExperimentConfig;
  if (c.embedding?.model !== undefined && (c.embedding.encoder ?? "use-lite") !== "bert") {
    problems.push(`embedding.model: applies to encoder "bert" only (the encoder is use-lite)`);
  }
  const image = c.image ?? {};
  if (image.compat === "pydeepinsight-2021" && (image.discretization ?? "bin") !== "bin") {
    problems.push(
      `image.compat: "pydeepinsight-2021" (the 2021 code) had only the "bin" discretisation; ` +
        `use compat "pydeepinsight" for "${image.discretization}"`,
    );
  }
  for (const [field, extractor] of [["kernelPca", "kpca"], ["umap", "umap"]] as const) {
    if (image[field] !== undefined && image.featureExtractor !== extractor) {
      problems.push(`image.${field}: applies to featureExtractor "${extractor}" only`);
    }
  }
  const features = c.models?.features ?? "cache";
  problems.push(...layoutModeProblems(c, features));
  if (features === "cache" && c.models?.normalization === "batch") {
    problems.push(
      `models.normalization: "batch" (per-batch z-normalisation, the paper) needs ` +
        `models.features "end-to-end": cached features cannot depend on the batch an image lands in`,
    );
  }
  problems.push(...dataSourceProblems(c.data));
  if (c.data?.validationFraction === 0 && c.models?.training?.patience) {
    problems.push(`models.training.patience: early stopping needs a validation set`);
  }
  const paths = fieldPaths(schema);
  for (const [path, values] of Object.entries(c.sweep ?? {})) {
    if (["name", "schemaVersion", "seeds", "sweep", "cacheDir"].includes(path)) {
      problems.push(`sweep.${path}: cannot be swept` + (path === "seeds" ? ` (use seeds)` : ""));
      continue;
    }
    const field = fieldAt(schema, path);
    if (!field) {
      const near = nearest(path, paths);
      problems.push(`sweep.${path}: no such field${near ? `; did you mean "${near}"?` : ""}`);
      continue;
    }
    if (!Array.isArray(values)) continue; // reported by the schema
    values.forEach((v, i) => problems.push(...validate(field, v, `sweep.${path}[${i}]`)));
  }
  return problems;
}

/** Options of table sources given with a source they do not apply to. */
function dataSourceProblems(data: ExperimentConfig["data"]): string[] {
  if (!data) return [];
  const problems: string[] = [];
  let format = data.format;
  if (format === undefined && typeof data.source === "string") {
    let source = data.source;
    try {
      source = fromPortable(source, "data.source");
    } catch {
      // a <local>/ path: inferred from its name
    }
    format = inferDataFormat(source);
  }
  format ??= "imdb";
  const fields = format === "imdb" ? TABLE_OPTIONS : format === "folders" ? COLUMN_OPTIONS : [];
  for (const field of fields) {
    if (data[field] === undefined) continue;
    problems.push(
      `data.${field}: applies to ${
        field === "positiveLabel" ? "csv, tsv, jsonl and folders" : "csv, tsv and jsonl"
      } sources only (the source is read as ${format}${
        data.format === undefined ? `, inferred from data.source; set data.format` : ""
      })`,
    );
  }
  return problems;
}

/** Problems peculiar to configs of older formats, with what changed. */
function versionProblems(raw: Record<string, unknown>): string[] {
  const version = raw.schemaVersion;
  if (version === CONFIG_SCHEMA_VERSION) return [];
  if (version === undefined || (typeof version === "number" && version < CONFIG_SCHEMA_VERSION)) {
    const from = typeof version === "number" ? version : 1;
    const changes = Object.entries(CHANGES)
      .filter(([v]) => Number(v) >= from)
      .flatMap(([, lines]) => lines);
    return [
      `schemaVersion: this config is of format ${from}${
        version === undefined ? " (no schemaVersion)" : ""
      }, the toolkit reads ${CONFIG_SCHEMA_VERSION}. What changed: ${changes.join("; ")}`,
    ];
  }
  return [
    `schemaVersion: ${
      JSON.stringify(version)
    } is newer than this toolkit's ${CONFIG_SCHEMA_VERSION}`,
  ];
}

/**
 * Validates a parsed JSON config; throws a {@link ConfigError} listing every problem
 * (unknown keys with the nearest valid name, wrong types, out-of-range values, unknown
 * backbones with the registered ones, options that do not apply, older formats).
 */
export function validateConfig(raw: unknown, where = "config"): ExperimentConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(where, ["expected a JSON object"]);
  }
  const r = raw as Record<string, unknown>;
  const problems = versionProblems(r);
  if (problems.length) throw new ConfigError(where, problems);
  const schema = configSchema();
  problems.push(...validate(schema, raw, "config").map((p) => p.replace(/^config\./, "")));
  const training = (r.models as Record<string, unknown> | undefined)?.training as
    | Record<string, unknown>
    | undefined;
  const mlp = (r.baselines as Record<string, unknown> | undefined)?.mlp;
  for (const [path, options] of [["models.training", training], ["baselines.mlp", mlp]] as const) {
    if (options && typeof options === "object" && "seed" in options) {
      const i = problems.findIndex((p) => p.startsWith(`${path}.seed:`));
      if (i >= 0) problems[i] = `${path}.seed: set the top-level "seeds": [..] instead`;
    }
  }
  if (typeof r.name !== "string") problems.push(`name: required (letters, digits, "_", "-", ".")`);
  if (r.name === "." || r.name === "..") {
    problems.push(`name: "${r.name}" would name a folder above the run's`);
  }
  problems.push(...crossChecks(r, schema));
  if (problems.length) throw new ConfigError(where, problems);
  return raw as ExperimentConfig;
}

/** Default l2 candidates of logistic regression (and of the TF-IDF baseline): lib/eval's one list. */
const LOGISTIC_L2 = [...L2_CANDIDATES];

/** Fills in every default of a validated config (the one place the experiment's defaults live). */
export function resolveConfig(config: ExperimentConfig, origin = "(inline)"): ResolvedConfig {
  const d = config.data ?? {}, e = config.embedding ?? {}, i = config.image ?? {};
  const m = config.models ?? {}, b = config.baselines ?? {}, a = config.ablations ?? {};
  const logistic = b.logistic ?? true, mlp = b.mlp ?? true;
  const { seed: _seed, ...training } = TRAINING_DEFAULTS;
  return {
    schemaVersion: CONFIG_SCHEMA_VERSION,
    name: config.name,
    description: config.description ?? "",
    origin,
    data: {
      source: d.source === undefined ? undefined : fromPortable(d.source, "data.source"),
      breaks: d.breaks ?? "keep",
      scheme: d.scheme ?? "standard",
      trainSize: d.trainSize ?? 5000,
      testSize: d.testSize ?? 5000,
      validationFraction: d.validationFraction ?? 0.1,
      seed: d.seed ?? 42,
      // Only when set: an IMDB config resolves (and keys its caches) as before.
      ...Object.fromEntries(
        (["format", "name", ...TABLE_OPTIONS] as const)
          .filter((k) => d[k] !== undefined)
          .map((k) => [k, d[k]]),
      ),
    },
    embedding: {
      ...e,
      ...(e.model !== undefined ? { model: fromPortable(e.model, "embedding.model") } : {}),
      encoder: e.encoder ?? "use-lite",
    },
    image: {
      pixels: i.pixels ?? 50,
      discretization: i.discretization ?? "bin",
      scaler: i.scaler ?? "log",
      fitOn: i.fitOn ?? "train",
      tsne: { seed: 1701, ...(i.tsne ?? {}) },
      // Only when set: the default layout resolves (and keys its caches) as before.
      ...Object.fromEntries(
        OPTIONAL_IMAGE_FIELDS.filter((k) => i[k] !== undefined).map((k) => [k, i[k]]),
      ),
    },
    models: {
      backbones: m.backbones ?? loadableBackbones(hasTorchvisionCheckpoint),
      upsample: m.upsample ?? 1,
      featureDtype: m.featureDtype ?? "float16",
      features: m.features ?? "cache",
      normalization: m.normalization ?? (m.features === "end-to-end" ? "batch" : "train"),
      training: { ...training, ...(m.training ?? {}) },
      workers: m.workers ?? 2,
    },
    seeds: config.seeds ?? [42],
    baselines: {
      logistic: logistic === false
        ? false
        : { l2: (typeof logistic === "object" ? logistic.l2 : undefined) ?? LOGISTIC_L2 },
      mlp: mlp === false ? false : (typeof mlp === "object" ? mlp : {}),
      tfidf: !b.tfidf ? false : {
        l2: (typeof b.tfidf === "object" ? b.tfidf.l2 : undefined) ?? LOGISTIC_L2,
        vectorizer: (typeof b.tfidf === "object" ? b.tfidf.vectorizer : undefined) ?? {},
      },
    },
    ablations: {
      backbone: a.backbone ?? "vgg19",
      permutedPixels: a.permutedPixels ?? true,
      randomBackbone: a.randomBackbone ?? true,
    },
    sweep: config.sweep ?? {},
    cacheDir: config.cacheDir ?? join(dataDir(), "experiments", config.name),
  };
}

/** Deep partial of a config, for overrides. */
export type ConfigOverrides = {
  [K in keyof ExperimentConfig]?: ExperimentConfig[K] extends infer V
    ? V extends unknown[] ? V : V extends object ? { [P in keyof V]?: V[P] } : V
    : never;
};

/** `base` with `overrides` merged in (objects merged key by key, arrays and values replaced). */
export function mergeConfig<T>(base: T, overrides: unknown): T {
  if (
    typeof overrides !== "object" || overrides === null || Array.isArray(overrides) ||
    typeof base !== "object" || base === null || Array.isArray(base)
  ) {
    return (overrides === undefined ? base : overrides) as T;
  }
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(overrides)) {
    out[key] = value === undefined ? out[key] : mergeConfig(out[key], value);
  }
  return out as T;
}

/** A copy of `config` with the field at dotted `path` set to `value`. */
export function setField<T>(config: T, path: string, value: unknown): T {
  const parts = path.split(".");
  const patch: Record<string, unknown> = {};
  let node = patch;
  for (const part of parts.slice(0, -1)) node = (node[part] = {}) as Record<string, unknown>;
  node[parts.at(-1)!] = value;
  return mergeConfig(config, patch);
}

/** The value at dotted `path`, or undefined. */
export function getField(config: unknown, path: string): unknown {
  let node = config;
  for (const part of path.split(".")) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** Folder of the shipped configs. */
export const CONFIGS_DIR: string = join(projectRoot, "tools", "configs");

/** Names of the shipped configs (`tools/configs/*.json`, sub-folders as `folder/name`). */
export function shippedConfigs(): string[] {
  const names: string[] = [];
  const walk = (dir: string, prefix: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isDirectory) {
        // Study files (`study/`) are not experiment configs: `deno task study` runs them.
        if (prefix !== "" || entry.name !== "study") {
          walk(join(dir, entry.name), `${prefix}${entry.name}/`);
        }
      } else if (entry.name.endsWith(".json")) names.push(prefix + entry.name.slice(0, -5));
    }
  };
  if (existsSync(CONFIGS_DIR)) walk(CONFIGS_DIR, "");
  return names.sort();
}

/** The file of a shipped config name or a path. */
export function configPath(nameOrPath: string): string {
  if (existsSync(nameOrPath) && Deno.statSync(nameOrPath).isFile) return nameOrPath;
  const shipped = join(CONFIGS_DIR, `${nameOrPath}.json`);
  if (existsSync(shipped)) return shipped;
  const names = shippedConfigs();
  const near = nearest(nameOrPath, names);
  throw new Error(
    `No config "${nameOrPath}": give a JSON file or one of the shipped configs (${
      names.join(", ")
    })${near ? `; did you mean "${near}"?` : ""}.`,
  );
}

/**
 * Reads a config (a shipped name such as `quick`, or a JSON file), merges `overrides` (a
 * partial config, e.g. `{ data: { trainSize: 300 } }`), validates the result and fills in
 * the defaults. Throws a {@link ConfigError} naming the file and every problem.
 */
export async function loadExperimentConfig(
  nameOrPath: string,
  overrides: ConfigOverrides = {},
): Promise<ResolvedConfig> {
  const path = configPath(nameOrPath);
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message}); fix the file.`);
  }
  const merged = mergeConfig(raw, overrides);
  const where = path.startsWith(CONFIGS_DIR) ? `config "${nameOrPath}" (${path})` : path;
  const config = validateConfig(merged, where);
  const origin = path.startsWith(CONFIGS_DIR)
    ? relative(CONFIGS_DIR, path).replace(/\.json$/, "")
    : portablePath(resolve(path));
  return resolveConfig(config, origin);
}

/** Validates and resolves an in-memory config (tests, notebooks). */
export function configFrom(config: unknown, overrides: ConfigOverrides = {}): ResolvedConfig {
  return resolveConfig(validateConfig(mergeConfig(config, overrides), "config"));
}

/** One value combination of a sweep: the config it runs and its label. */
export interface SweepVariant {
  /** `field=value` pairs joined by `,` (empty without a sweep). */
  label: string;
  /** The swept fields' values. */
  values: Record<string, unknown>;
  /** The config of this variant (its `sweep` emptied). */
  config: ResolvedConfig;
}

/** Every combination of the swept values (one variant, labelled "", without a sweep). */
export function expandSweep(cfg: ResolvedConfig): SweepVariant[] {
  let variants: SweepVariant[] = [{ label: "", values: {}, config: { ...cfg, sweep: {} } }];
  for (const [path, values] of Object.entries(cfg.sweep)) {
    variants = variants.flatMap((v) =>
      values.map((value) => {
        const values = { ...v.values, [path]: value };
        const label = Object.entries(values)
          .map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : x}`).join(",");
        const config = setField(v.config, path, value);
        // The normalisation follows the features mode (unless it is swept too).
        if (path === "models.features" && !("models.normalization" in cfg.sweep)) {
          config.models.normalization = value === "end-to-end" ? "batch" : "train";
        }
        return { label, values, config };
      })
    );
  }
  return variants;
}

/** A path as written into committed results: relative to the project, `<shared>/…`, or a bare name. */
export function portablePath(path: string): string {
  if (!isAbsolute(path)) return path;
  const inside = (root: string) => {
    const r = relative(root, path);
    return r && !r.startsWith("..") && !isAbsolute(r) ? r : undefined;
  };
  const shared = inside(sharedDir());
  if (shared !== undefined) return `<shared>/${shared}`;
  const data = inside(dataDir());
  if (data !== undefined) return `<data>/${data}`;
  const project = inside(projectRoot);
  if (project !== undefined) return project;
  return `<local>/${path.split(/[\\/]/).filter(Boolean).at(-1) ?? ""}`;
}

/**
 * A message as written into committed results: every absolute path under the shared folder,
 * the data folder or the project replaced by its portable form (see {@link portablePath}).
 */
export function portableMessage(message: string): string {
  const roots: [string, string][] = [
    [dataDir(), "<data>"],
    [sharedDir(), "<shared>"],
    [projectRoot, "."],
  ];
  let out = message;
  for (const [root, name] of roots.sort((a, b) => b[0].length - a[0].length)) {
    if (root.length > 1) out = out.split(root).join(name);
  }
  return out;
}

/**
 * A path of a written config back on this machine: `<shared>/…` under `sharedDir()`,
 * `<data>/…` under `dataDir()`; a `<local>/name` (a file outside both on the machine that
 * wrote it) is an error saying how to give it.
 */
export function fromPortable(path: string, field: string): string {
  const match = /^<(shared|data|local)>\/(.*)$/.exec(path);
  if (!match) return path;
  if (match[1] === "shared") return join(sharedDir(), match[2]);
  if (match[1] === "data") return join(dataDir(), match[2]);
  throw new ConfigError("config", [
    `${field}: the run used a local file "${match[2]}" on the machine that wrote it; give its ` +
    `path here (e.g. --set ${field}=/path/to/${match[2]})`,
  ]);
}

/** The config as written into `results/<run>/config.json`: nothing machine-specific. */
export function portableConfig(cfg: ResolvedConfig): Omit<ResolvedConfig, "cacheDir"> {
  const { cacheDir: _cache, ...rest } = cfg;
  return {
    ...rest,
    data: {
      ...rest.data,
      ...(rest.data.source ? { source: portableSource(rest.data.source) } : {}),
    },
    embedding: {
      ...rest.embedding,
      ...(rest.embedding.model && isAbsolute(rest.embedding.model)
        ? { model: portablePath(rest.embedding.model) }
        : {}),
    },
  };
}

/** A data source as written into committed results: a URL as it is, a path made portable. */
export function portableSource(source: string): string {
  return /^[a-z]+:\/\//.test(source) ? source : portablePath(resolve(source));
}

/** The paper's setup, resolved (what `tools/configs/paper.json` runs), for comparisons. */
export function paperSettings(): Pick<ResolvedConfig, "data" | "embedding" | "image" | "models"> {
  const { seed: _s, ...training } = PAPER_TRAINING;
  return {
    data: {
      breaks: "keep",
      scheme: "paper",
      trainSize: 40000,
      testSize: 10000,
      validationFraction: 0,
      seed: 42,
    },
    embedding: { encoder: "bert", layers: [6, 7, 8, 9, 10, 11], pooling: "cls", maxTokens: 512 },
    image: { pixels: 50, discretization: "bin", scaler: "log", fitOn: "all", tsne: { seed: 1701 } },
    models: {
      backbones: ["alexnet", "vgg16", "wide_resnet50_2", "resnext50_32x4d", "shufflenet_v2"],
      upsample: 3,
      featureDtype: "float32",
      features: "end-to-end",
      normalization: "batch",
      training,
      workers: 1,
    },
  };
}

/** Settings of `cfg` that differ from the paper's, as `path: value (paper: value)` lines. */
export function differencesFromPaper(cfg: ResolvedConfig): string[] {
  const paper = paperSettings();
  const ignore = new Set([
    "models.backbones",
    "models.workers",
    "models.featureDtype",
    "data.validationFraction",
    "image.tsne",
  ]);
  const lines: string[] = [];
  const walk = (ours: unknown, theirs: unknown, path: string) => {
    if (ignore.has(path.slice(1))) return;
    if (
      typeof theirs === "object" && theirs !== null && !Array.isArray(theirs) &&
      typeof ours === "object" && ours !== null
    ) {
      for (const key of Object.keys(theirs)) {
        walk(
          (ours as Record<string, unknown>)[key],
          (theirs as Record<string, unknown>)[key],
          `${path}.${key}`,
        );
      }
      return;
    }
    if (ours === undefined) return; // the encoder's default
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      lines.push(`${path.slice(1)}: ${JSON.stringify(ours)} (paper: ${JSON.stringify(theirs)})`);
    }
  };
  walk(cfg, paper, "");
  return lines;
}
