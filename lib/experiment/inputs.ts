/**
 * Stages 1–3 of a run, shared by every model: reviews and splits, embeddings (embedding
 * store) and the DeepInsight images (the fitted transformer cached as JSON). The experiment
 * starts with {@link prepareInputs}; reports and notebooks call it again after a run to get
 * the same images from the caches.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { exists } from "../download.ts";
import { describeLabels, labelsOf, loadDataset, splitReviews } from "../data/mod.ts";
import type { DatasetInfo, DatasetRecord, TextRecord } from "../data/mod.ts";
import {
  BertEncoder,
  EMBEDDING_STAGE_VERSION,
  embeddingKey,
  EmbeddingStore,
  embedTexts,
  EncoderWorkers,
  hashTexts,
  resolveEncodeOptions,
  UseLiteEncoder,
} from "../embed/mod.ts";
import type { TextEncoderModel } from "../embed/mod.ts";
import { ImageTransformer } from "../image/mod.ts";
import type { Progress } from "../progress.ts";
import { ready } from "../tf.ts";
import type { FeatureBatch, ImageBatch, Labels, Matrix } from "../types.ts";
import type { ResolvedConfig } from "./config.ts";
import { recordUses } from "./uses.ts";
import { acquireLock } from "./lock.ts";
import { codeVersion } from "./code_version.ts";
import { fitRunLayout, loadRunLayout, type RunLayout } from "./layout.ts";

/** A run's images: one channel, or a multi-channel layout mapped to 3 channels. */
export type RunImages = ImageBatch | FeatureBatch;
import {
  describeOrigin,
  type Maker,
  originOf,
  readMaker,
  type StageOrigin,
  writeMaker,
} from "../provenance.ts";
import { portableSource } from "./config.ts";

/** Progress of a run's stages. */
export interface ExperimentProgress extends Progress {
  /** The stage running. */
  stage: "data" | "embeddings" | "images" | "features" | "training";
  /** What within the stage (e.g. a job). */
  detail?: string;
}

/** Options shared by the experiment's entry points. */
export interface RunOptions {
  /** Progress of every stage. */
  onProgress?: (progress: ExperimentProgress) => void;
  /** One line per notable event (default: to stderr). */
  log?: (line: string) => void;
  /** Stops between stages, batches and chunks; finished work stays cached. */
  signal?: AbortSignal;
  /**
   * This call, as recorded beside every cached part it computes (default: the run's name,
   * the time {@link prepareInputs} started and the code version).
   */
  maker?: Maker;
}

/** Where a run's shared inputs came from, per stage. */
export interface InputsProvenance {
  /** The reviews: always read from the data source by this call. */
  reviews: { source: string; records: number; sha256: string };
  /** Embeddings, in texts. */
  embeddings: StageOrigin;
  /** The fitted layout (one file). */
  layout: StageOrigin;
}

/** The inputs every model of a run shares: splits, labels, embeddings, the fitted layout, images. */
export interface ExperimentInputs {
  /** The configuration (one sweep variant). */
  cfg: ResolvedConfig;
  /** The records (reviews) of each part, and what was loaded. */
  split: LoadedSplit;
  /** Labels of each part. */
  labels: { train: Labels; validation: Labels; test: Labels };
  /** The text encoder. */
  encoder: TextEncoderModel;
  /** Embeddings of train, validation and test rows, in that order. */
  embeddings: Matrix;
  /** Embeddings of each part (views into {@link ExperimentInputs.embeddings}). */
  features: { train: Matrix; validation: Matrix; test: Matrix };
  /**
   * The fitted image transformer (with several layouts: the first; with hidden states as
   * channels: the layout of their dimensions), for figures and feature coordinates.
   */
  transformer: ImageTransformer;
  /** The run's layout as configured (one, states as channels, or several). */
  layout: RunLayout;
  /** Key of the cached transformer (content hash of its settings and fitting rows). */
  transformerKey: string;
  /** Whether the transformer came from the cache. */
  transformerCached: boolean;
  /** Key of everything a model's result depends on besides its own settings. */
  rowsKey: string;
  /** Images of each part: `[n, H, W]`, or `[n, H, W, 3]` for multi-channel layouts. */
  images: { train: RunImages; validation: RunImages; test: RunImages };
  /** With averaged layouts (`image.combine: "average"`): each layout's images, in order. */
  layoutImages?: { train: RunImages; validation: RunImages; test: RunImages }[];
  /** Pixels no feature maps to. */
  emptyPixels: number;
  /** Seconds spent on embeddings and on images. */
  seconds: { embeddings: number; images: number };
  /** Texts whose embeddings were read from the store rather than computed by this call. */
  embeddingsCached: number;
  /** This call, as recorded beside the cached parts it computes. */
  maker: Maker;
  /** Where the reviews, embeddings and layout came from. */
  provenance: InputsProvenance;
}

/** Hex SHA-256 of a string or bytes. */
export function sha(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/** SHA-256 of a matrix's shape and values. */
export function matrixHash(m: Matrix): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(m.shape));
  hash.update(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  return hash.digest("hex");
}

/** Rows `start` … `end − 1` of `m` (a view). */
export function rows(m: Matrix, start: number, end: number): Matrix {
  return {
    data: m.data.subarray(start * m.shape[1], end * m.shape[1]),
    shape: [end - start, m.shape[1]],
  };
}

/** Loads the configured text encoder. */
export async function loadEncoder(config: ResolvedConfig["embedding"]): Promise<TextEncoderModel> {
  if (config.encoder === "bert") {
    return await BertEncoder.load(config.model ?? "Xenova/bert-base-uncased");
  }
  return await UseLiteEncoder.load();
}

/** The records of a run's parts (IMDB reviews, or any labelled texts) and what was loaded. */
export interface LoadedSplit {
  /** Records to fit on. */
  train: DatasetRecord[];
  /** Records for model selection. */
  validation: DatasetRecord[];
  /** Records to report on. */
  test: DatasetRecord[];
  /** The dataset's name, format, source and label mapping (absent only in hand-made inputs). */
  dataset?: DatasetInfo;
}

/**
 * The configured data (IMDB, or a CSV / TSV / JSONL file or class folders: `data.format`,
 * inferred from `data.source` by default), split into train / validation / test; `log`
 * gets one line naming the data and its label mapping. Data without a split column is split
 * seeded and stratified: `testSize` records for test, the rest as an official train half.
 */
export async function loadSplit(
  cfg: ResolvedConfig,
  report: (p: ExperimentProgress) => void = () => {},
  log?: (line: string) => void,
): Promise<LoadedSplit> {
  const d = cfg.data;
  const { records, info } = await loadDataset({
    source: d.source,
    format: d.format,
    name: d.name,
    textColumn: d.textColumn,
    labelColumn: d.labelColumn,
    splitColumn: d.splitColumn,
    positiveLabel: d.positiveLabel,
    breaks: d.breaks,
    onProgress: (p) => report({ stage: "data", ...p }),
  });
  log?.(
    `data: ${info.name} (${info.format}, ${info.records} records${
      info.hasSplit ? "" : ", no split in the data: seeded stratified split"
    }), labels ${describeLabels(info.labels)}`,
  );
  let split;
  try {
    split = splitReviews(records, {
      scheme: d.scheme,
      seed: d.seed,
      trainSize: d.trainSize,
      testSize: d.testSize,
      ...(d.scheme === "standard" ? { validationFraction: d.validationFraction } : {}),
    });
  } catch (e) {
    if (info.format === "imdb") throw e;
    throw new Error(
      `${info.source} (${info.records} records): ${(e as Error).message}; set data.trainSize, ` +
        `data.testSize and data.validationFraction to fit the data`,
    );
  }
  return { ...split, dataset: info };
}

/** Key of a layout: its settings (not how verbosely or on how many threads) and fitting rows. */
export function layoutKey(cfg: ResolvedConfig, fitRows: Matrix): string {
  return layoutKeyOfHash(cfg, matrixHash(fitRows));
}

/** The image section as {@link layoutKey} hashes it (t-SNE's verbosity and threads left out). */
export function hashedImage(cfg: ResolvedConfig): string {
  const { verbose: _v, threads: _t, ...tsne } = cfg.image.tsne;
  return JSON.stringify({ ...cfg.image, tsne });
}

/**
 * The layout key of `cfg` for fitting rows whose `matrixHash` is `rowsHash` (a committed layout
 * is checked this way without its fitting rows: `preview.ts`).
 */
export function layoutKeyOfHash(cfg: ResolvedConfig, rowsHash: string): string {
  return sha(hashedImage(cfg) + rowsHash).slice(0, 16);
}

/**
 * Key of everything a model's result depends on besides its own settings: the layout, the
 * embeddings, the split sizes and settings, and for table and folder sources the labels
 * (a relabelled file with the same texts must not reuse results). IMDB's labels follow
 * the archive's folders and are not hashed (as in every key made before other sources
 * existed, so IMDB caches stay valid).
 */
export function rowsKeyOf(
  cfg: ResolvedConfig,
  layout: string,
  embeddings: Matrix,
  split: {
    train: TextRecord[];
    validation: TextRecord[];
    test: TextRecord[];
    dataset?: DatasetInfo;
  },
): string {
  const parts = [split.train, split.validation, split.test];
  const sizes = parts.map((p) => p.length);
  const labels = split.dataset && split.dataset.format !== "imdb"
    ? sha(parts.map((p) => Array.from(labelsOf(p)).join("")).join("|"))
    : "";
  return sha(
    layout + matrixHash(embeddings) + JSON.stringify(sizes) + JSON.stringify(cfg.data) + labels,
  );
}

/** The fitted layout: from the run's cache, or fitted on `fitRows` and saved. */
async function fittedLayout(
  cfg: ResolvedConfig,
  fitRows: Matrix,
  report: (p: ExperimentProgress) => void,
  log: (line: string) => void,
  maker: Maker,
): Promise<{ layout: RunLayout; key: string; cached: boolean; origin: StageOrigin }> {
  const key = layoutKey(cfg, fitRows);
  const path = join(cfg.cacheDir, `image-transformer-${key}.json`);
  if (await exists(path)) {
    try {
      const layout = await loadRunLayout(cfg, path);
      const origin = originOf([{ maker: await readMaker(path), units: 1 }], maker);
      return { layout, key, cached: true, origin };
    } catch (e) {
      // Damaged, or made by another version of the layout stage: never used, refitted.
      log((e as Error).message);
    }
  }
  const lock = await acquireLock(`${path}.lock`, `the layout ${basename(path)}`, log);
  try {
    const layout = await fitRunLayout(
      cfg,
      fitRows,
      (p) => report({ stage: "images", done: p.done, total: p.total, detail: p.phase }),
    );
    await layout.save(path);
    await writeMaker(path, maker);
    return { layout, key, cached: false, origin: { computed: 1, cached: [] } };
  } finally {
    await lock.release();
  }
}

/** Runs (or reads from the caches) stages 1–3 of `cfg`: see the module doc. */
export async function prepareInputs(
  cfg: ResolvedConfig,
  options: RunOptions = {},
): Promise<ExperimentInputs> {
  const log = options.log ?? ((line: string) => console.error(line));
  const report = (p: ExperimentProgress) => options.onProgress?.(p);
  const maker = options.maker ??
    { run: cfg.name, at: new Date().toISOString(), code: await codeVersion() };
  await Deno.mkdir(cfg.cacheDir, { recursive: true });
  await ready();

  report({ stage: "data", done: 0 });
  const split = await loadSplit(cfg, report, log);
  const parts: DatasetRecord[][] = [split.train, split.validation, split.test];
  const [nTrain, nVal, nTest] = parts.map((p) => p.length);
  log(
    `data: ${nTrain} train / ${nVal} validation / ${nTest} test reviews (${cfg.data.scheme} split)`,
  );
  options.signal?.throwIfAborted();

  const t1 = performance.now();
  const encoder = await loadEncoder(cfg.embedding);
  const { encoder: _e, model: _m, ...encodeOptions } = cfg.embedding;
  const texts = parts.flat().map((r) => r.text);
  const embeddingsCached = (await storedEmbeddingRows(encoder, texts, encodeOptions)).rows;
  // USE-lite runs on one wasm thread: with texts to encode, encode chunks on the run's workers
  // (models.workers, one per core), each its own thread; the rows are bitwise those of the
  // main thread (tests/embed_workers_test.ts). BERT's onnxruntime already uses every core.
  const workers = cfg.embedding.encoder === "use-lite" && cfg.models.workers > 1 &&
      embeddingsCached < texts.length
    ? await EncoderWorkers.start({ kind: "use-lite" }, cfg.models.workers)
    : undefined;
  let embeddings: Matrix;
  try {
    embeddings = await embedTexts(encoder, texts, {
      ...encodeOptions,
      log,
      maker,
      workers,
      signal: options.signal,
      onProgress: (p) => report({ stage: "embeddings", ...p }),
    });
  } finally {
    await workers?.dispose();
  }
  const storeKey = embeddingKey(encoder, texts, resolveEncodeOptions(encoder, encodeOptions));
  const store = EmbeddingStore.folderFor(storeKey);
  const embeddingOrigin = originOf(
    await (await EmbeddingStore.open(storeKey, embeddings.shape[1], { log })).chunkMakers(),
    maker,
  );
  const embeddingSeconds = (performance.now() - t1) / 1000;
  const features = {
    train: rows(embeddings, 0, nTrain),
    validation: rows(embeddings, nTrain, nTrain + nVal),
    test: rows(embeddings, nTrain + nVal, nTrain + nVal + nTest),
  };
  log(
    `embeddings: ${encoder.id}, ${embeddings.shape[1]} features per review, ` +
      describeOrigin(embeddingOrigin, "texts"),
  );
  options.signal?.throwIfAborted();

  const t2 = performance.now();
  const fitRows = cfg.image.fitOn === "all" ? embeddings : features.train;
  const { layout, key, cached, origin: layoutOrigin } = await fittedLayout(
    cfg,
    fitRows,
    report,
    log,
    maker,
  );
  const transformer = layout.transformer;
  const imagesOf = (x: Matrix) => layout.transform(x);
  const images = {
    train: imagesOf(features.train),
    validation: imagesOf(features.validation),
    test: imagesOf(features.test),
  };
  // Averaged layouts: every layout's images (the first's are `images` too).
  const each = layout.transformEach;
  const layoutImages = each
    ? (() => {
      const [train, validation, test] = [features.train, features.validation, features.test]
        .map((x) => each(x));
      return train.map((_, r) => ({ train: train[r], validation: validation[r], test: test[r] }));
    })()
    : undefined;
  let emptyPixels = 0;
  for (const v of transformer.featureDensityMatrix().data) if (v === 0) emptyPixels++;
  const imageSeconds = (performance.now() - t2) / 1000;
  log(
    `images: ${cfg.image.pixels}×${cfg.image.pixels}, layout fitted on ${cfg.image.fitOn} rows` +
      `, ${emptyPixels} empty pixels; layout ${describeOrigin(layoutOrigin, "files")}`,
  );
  options.signal?.throwIfAborted();
  const labels = {
    train: labelsOf(split.train),
    validation: labelsOf(split.validation),
    test: labelsOf(split.test),
  };
  await recordUses(cfg.cacheDir, [store, join(cfg.cacheDir, `image-transformer-${key}.json`)]);
  const rowsKey = rowsKeyOf(cfg, key, embeddings, split);
  return {
    cfg,
    split,
    labels,
    encoder,
    embeddings,
    features,
    transformer,
    layout,
    transformerKey: key,
    transformerCached: cached,
    rowsKey,
    images,
    ...(layoutImages ? { layoutImages } : {}),
    emptyPixels,
    seconds: { embeddings: embeddingSeconds, images: imageSeconds },
    embeddingsCached,
    maker,
    provenance: {
      reviews: {
        source: split.dataset ? portableSource(split.dataset.source) : "hand-made records",
        records: texts.length,
        sha256: sha(hashTexts(texts) + Array.from(labelsOf(parts.flat())).join("")),
      },
      embeddings: embeddingOrigin,
      layout: layoutOrigin,
    },
  };
}

/**
 * How many of `texts` the embedding store holds, read-only: complete chunks of a store of
 * this stage version (a stale store counts as none; opening it would empty it).
 */
export async function storedEmbeddingRows(
  encoder: TextEncoderModel,
  texts: string[],
  options: Omit<ResolvedConfig["embedding"], "encoder" | "model">,
): Promise<{ rows: number; state: "absent" | "stale" | "current" }> {
  const resolved = resolveEncodeOptions(encoder, options);
  const key = embeddingKey(encoder, texts, resolved);
  let meta: { version?: number };
  try {
    meta = JSON.parse(await Deno.readTextFile(join(EmbeddingStore.folderFor(key), "meta.json")));
  } catch {
    return { rows: 0, state: "absent" };
  }
  if (meta.version !== EMBEDDING_STAGE_VERSION) return { rows: 0, state: "stale" };
  const store = await EmbeddingStore.open(key, resolved.layers.length * encoder.hiddenSize);
  let rows = 0;
  for (const c of await store.completeChunks()) {
    const [first, end] = store.chunkRows(c);
    rows += end - first;
  }
  return { rows, state: "current" };
}
