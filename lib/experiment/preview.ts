/**
 * A preview of a committed run for a fresh clone, which has none of the run's caches
 * (`data/` is not committed): instead of embedding every review of the run (10,500 for
 * `use-lite-5k`, about 19 minutes on two cores) and fitting the layout, the preview reads the
 * run's fitted layout from its results folder (`results/<run>/layout.json`, committed with
 * {@link commitLayout}) and embeds only a small, seeded, label-stratified sample of the run's
 * training (and, on request, validation) reviews, so a notebook shows the run's own layout
 * and the images of real reviews in a minute or two.
 *
 * The committed layout is the run's cache file `image-transformer-<key>.json`, copied byte for
 * byte (and read with the same loader, {@link loadRunLayout}), with the cache's provenance
 * record beside it (`layout.json.made.json`) and `layout.key.json` ({@link
 * CommittedLayoutRecord}): what the cache key was computed from. The key hashes the config's
 * image settings and the very rows the layout was fitted on, and without the run's
 * embeddings those rows cannot be hashed again; the record keeps their hash and the
 * embedding store's key (encoder, its weights, layers, pooling, truncation and a hash of
 * the run's texts in order), so {@link planPreview} checks a config against the committed
 * layout without them: the key recomputed from the config's image settings and the recorded
 * rows hash must be the recorded key, the config's reviews and encoder must give the recorded
 * store key, and the file must be the one the record describes. A stale or damaged file is
 * refused with a {@link PreviewError} naming the file and the fix.
 *
 * Everything the preview computes is said before it starts: {@link planPreview} loads the
 * split, the encoder and the committed layout, draws the sample and estimates the encoding
 * time from the encoder's measured rate (this machine's, else the committed run's), and its
 * {@link PreviewPlan.summary} says so in one line, with the command that recreates the full
 * caches and that run's own time (`totalSeconds` of its `metrics.json`); {@link runPreview}
 * then embeds the sample and draws its images.
 *
 * ```ts
 * import { choosePreview, runPreview } from "./preview.ts";
 * import { loadExperimentConfig } from "./config.ts";
 * const cfg = await loadExperimentConfig("use-lite-5k");
 * const { plan } = await choosePreview(cfg, { reviews: 800 });
 * if (plan) {
 *   console.log(plan.summary); // caches missing: a preview on 800 reviews, about 1 min, …
 *   const preview = await runPreview(plan);
 *   console.log(preview.images.train.shape); // [800, 50, 50]
 * }
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { dataDir, projectRoot } from "../config.ts";
import { labelsOf, stratifiedSample } from "../data/mod.ts";
import type { DatasetRecord } from "../data/mod.ts";
import { embeddingKey, embedTexts, resolveEncodeOptions } from "../embed/mod.ts";
import type { EmbeddingKey, TextEncoderModel } from "../embed/mod.ts";
import { CorruptCacheError, sha256Hex, StaleCacheError } from "../integrity.ts";
import { type Maker, readMaker, writeMaker } from "../provenance.ts";
import type { Matrix } from "../types.ts";
import { codeVersion } from "./code_version.ts";
import type { ResolvedConfig } from "./config.ts";
import {
  type ExperimentInputs,
  hashedImage,
  layoutKey,
  layoutKeyOfHash,
  type LoadedSplit,
  loadEncoder,
  loadSplit,
  matrixHash,
  rows,
  storedEmbeddingRows,
} from "./inputs.ts";
import { loadRunLayout, type RunLayout } from "./layout.ts";
import { rateOf, readRates } from "./rates.ts";

/** File name of the committed layout in `results/<run>/`. */
export const COMMITTED_LAYOUT_FILE = "layout.json";

/** File name of the committed layout's key record ({@link CommittedLayoutRecord}). */
export const COMMITTED_LAYOUT_KEY_FILE = "layout.key.json";

/** Format marker of {@link CommittedLayoutRecord}. */
export const COMMITTED_LAYOUT_FORMAT = "text-as-image/committed-layout";

/**
 * What a committed layout is, written by {@link commitLayout} as `layout.key.json` beside
 * `layout.json`: enough to check a config against it without the run's embeddings.
 */
export interface CommittedLayoutRecord {
  /** {@link COMMITTED_LAYOUT_FORMAT}. */
  format: typeof COMMITTED_LAYOUT_FORMAT;
  /** Version of this record's format (1). */
  version: 1;
  /** The run's name. */
  run: string;
  /** The layout's cache key: the run's cache file is `image-transformer-<key>.json`. */
  key: string;
  /** Name of the cache file `layout.json` was copied from. */
  cacheFile: string;
  /** SHA-256 (hex) of `layout.json`'s bytes. */
  sha256: string;
  /** The config's image section as the key hashes it (for saying which setting differs). */
  image: Record<string, unknown>;
  /** The rows the layout was fitted on: how many, and their hash (`matrixHash`). */
  fitRows: { count: number; sha256: string };
  /**
   * Key of the run's embedding store: the encoder, its weights, the encode options and the
   * hash of the run's texts (train, validation, test, in order).
   */
  embeddings: EmbeddingKey;
  /** The call that fitted the layout (the cache's `.made.json`), when recorded. */
  maker?: Maker;
}

/** A committed layout that cannot stand for the config: names the file and the fix. */
export class PreviewError extends Error {
  /** The committed file at fault. */
  readonly path: string;
  /** What to do about it. */
  readonly fix: string;

  /** Creates the error: `problem` says what is wrong with `path`, `fix` what to do. */
  constructor(path: string, problem: string, fix: string) {
    super(`${shown(path)}: ${problem}. ${fix}`);
    this.name = "PreviewError";
    this.path = path;
    this.fix = fix;
  }
}

/** A path as shown in messages: relative to the project when inside it. */
function shown(path: string): string {
  const rel = relative(projectRoot, path);
  return rel.startsWith("..") ? path : rel;
}

/** Seconds as `about 1 h 55 min`, `about 12 min`, `about 40 s`. */
export function aboutSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "an unknown time";
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min`;
  return `about ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The texts of a split in the run's order (train, validation, test). */
function runTexts(split: LoadedSplit): string[] {
  return [split.train, split.validation, split.test].flat().map((r) => r.text);
}

/** The encode options of the config (the embedding section without encoder and model). */
function encodeOptionsOf(cfg: ResolvedConfig) {
  const { encoder: _e, model: _m, ...options } = cfg.embedding;
  return options;
}

/** The run's results folder. */
function runDir(cfg: ResolvedConfig, resultsDir?: string): string {
  return join(resultsDir ?? join(projectRoot, "results"), cfg.name);
}

/** Options of {@link commitLayout}. */
export interface CommitLayoutOptions {
  /** Folder of results folders (default `results/`). */
  resultsDir?: string;
}

/**
 * Copies the run's fitted layout from its caches into `results/<run>/` (`layout.json`, its
 * provenance record `layout.json.made.json` and `layout.key.json`): reads the split and the
 * run's embeddings (every one must be cached: this computes nothing), computes the layout key
 * as `prepareInputs` does and copies that cache file byte for byte. Returns the record.
 */
export async function commitLayout(
  cfg: ResolvedConfig,
  options: CommitLayoutOptions = {},
): Promise<CommittedLayoutRecord> {
  const split = await loadSplit(cfg);
  const texts = runTexts(split);
  const encoder = await loadEncoder(cfg.embedding);
  try {
    const encodeOptions = encodeOptionsOf(cfg);
    const stored = await storedEmbeddingRows(encoder, texts, encodeOptions);
    if (stored.rows < texts.length) {
      throw new Error(
        `run "${cfg.name}": ${texts.length - stored.rows} of ${texts.length} embeddings are not ` +
          `cached; make the run's caches first (\`deno task reproduce --config ${cfg.origin}\`)`,
      );
    }
    const embeddings = await embedTexts(encoder, texts, { ...encodeOptions, progress: false });
    const fitRows = cfg.image.fitOn === "all"
      ? embeddings
      : rows(embeddings, 0, split.train.length);
    const key = layoutKey(cfg, fitRows);
    const cacheFile = `image-transformer-${key}.json`;
    const cachePath = join(cfg.cacheDir, cacheFile);
    if (!existsSync(cachePath)) {
      throw new Error(
        `run "${cfg.name}": its fitted layout ${cachePath} is not cached; run the config once ` +
          `(\`deno task reproduce --config ${cfg.origin}\`, or its notebook 3)`,
      );
    }
    await loadRunLayout(cfg, cachePath); // a damaged or stale cache is never committed
    const bytes = await Deno.readFile(cachePath);
    const dir = runDir(cfg, options.resultsDir);
    await Deno.mkdir(dir, { recursive: true });
    const path = join(dir, COMMITTED_LAYOUT_FILE);
    await Deno.writeFile(path, bytes);
    const maker = await readMaker(cachePath);
    if (maker) await writeMaker(path, maker);
    const record: CommittedLayoutRecord = {
      format: COMMITTED_LAYOUT_FORMAT,
      version: 1,
      run: cfg.name,
      key,
      cacheFile,
      sha256: sha256Hex(bytes),
      image: JSON.parse(hashedImage(cfg)),
      fitRows: { count: fitRows.shape[0], sha256: matrixHash(fitRows) },
      embeddings: embeddingKey(encoder, texts, resolveEncodeOptions(encoder, encodeOptions)),
      ...(maker ? { maker } : {}),
    };
    await Deno.writeTextFile(
      join(dir, COMMITTED_LAYOUT_KEY_FILE),
      JSON.stringify(record, null, 1) + "\n",
    );
    return record;
  } finally {
    await encoder.dispose();
  }
}

/** The command that recreates a run's caches, and that run's own time. */
export interface FullRun {
  /** The command (`deno task reproduce --config <config>`). */
  command: string;
  /** Seconds the committed run took (`totalSeconds` of its `metrics.json`), when recorded. */
  seconds?: number;
  /** Cores of the machine it ran on, when recorded. */
  cores?: number;
}

/** How the committed run is made again, from its `metrics.json` (when committed). */
export async function fullRunOf(cfg: ResolvedConfig, resultsDir?: string): Promise<FullRun> {
  const command = `deno task reproduce --config ${cfg.origin}`;
  try {
    const metrics = JSON.parse(
      await Deno.readTextFile(join(runDir(cfg, resultsDir), "metrics.json")),
    );
    const seconds = typeof metrics.totalSeconds === "number" ? metrics.totalSeconds : undefined;
    const cores = typeof metrics.environment?.cores === "number"
      ? metrics.environment.cores
      : undefined;
    return { command, seconds, cores };
  } catch {
    return { command };
  }
}

/** `command (about T, the committed run's own time on N cores)`. */
function describeFullRun(run: FullRun): string {
  const time = run.seconds === undefined
    ? "its time is not recorded"
    : `${aboutSeconds(run.seconds)}, the committed run's own time${
      run.cores ? ` on ${run.cores} cores` : ""
    }, training every model too`;
  return `\`${run.command}\` (${time})`;
}

/** The committed layout of a run, checked against a config. */
export interface CommittedLayout {
  /** The fitted layout, as `prepareInputs` would read it from the run's cache. */
  layout: RunLayout;
  /** `results/<run>/layout.json`. */
  path: string;
  /** Its key record. */
  record: CommittedLayoutRecord;
}

/** Options of {@link loadCommittedLayout}. */
export interface LoadCommittedLayoutOptions {
  /** Folder of results folders (default `results/`). */
  resultsDir?: string;
  /** The config's split, when already loaded (else read with `loadSplit`). */
  split?: LoadedSplit;
  /** The config's encoder, when already loaded (else loaded and disposed here). */
  encoder?: TextEncoderModel;
}

/** The fields of two store keys that differ. */
function differingFields(a: EmbeddingKey, b: EmbeddingKey): (keyof EmbeddingKey)[] {
  return (Object.keys(a) as (keyof EmbeddingKey)[]).filter((k) =>
    JSON.stringify(a[k]) !== JSON.stringify(b[k])
  );
}

/** The image settings of `now` that differ from `then`, as `image.x: now here, then there`. */
function differingImage(now: Record<string, unknown>, then: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(now), ...Object.keys(then)])].sort();
  return keys.filter((k) => JSON.stringify(now[k]) !== JSON.stringify(then[k])).map((k) =>
    `image.${k}: ${JSON.stringify(now[k]) ?? "unset"} here, ${
      JSON.stringify(then[k]) ?? "unset"
    } in the committed layout`
  );
}

/** Reads and checks the record beside a committed layout. */
function parseRecord(text: string, path: string, fix: string): CommittedLayoutRecord {
  let value: Partial<CommittedLayoutRecord>;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PreviewError(path, `not valid JSON (${(e as Error).message})`, fix);
  }
  if (
    !value || value.format !== COMMITTED_LAYOUT_FORMAT || value.version !== 1 ||
    typeof value.key !== "string" || typeof value.sha256 !== "string" ||
    typeof value.fitRows?.sha256 !== "string" || typeof value.fitRows?.count !== "number" ||
    typeof value.embeddings?.textsHash !== "string" || typeof value.image !== "object"
  ) {
    throw new PreviewError(
      path,
      `not a committed-layout record (format ${COMMITTED_LAYOUT_FORMAT}, version 1)`,
      fix,
    );
  }
  return value as CommittedLayoutRecord;
}

/**
 * The committed layout of `cfg`'s run (`results/<run>/layout.json`), checked against `cfg`:
 * the record beside it must describe this very file (its SHA-256), the config's image
 * settings and the recorded rows must give the recorded key, the config's reviews and
 * encoder must give the recorded embedding store, and the file must load (sealed, of this
 * layout version). Any failure is a {@link PreviewError} naming the file and the fix.
 */
export async function loadCommittedLayout(
  cfg: ResolvedConfig,
  options: LoadCommittedLayoutOptions = {},
): Promise<CommittedLayout> {
  const dir = runDir(cfg, options.resultsDir);
  const path = join(dir, COMMITTED_LAYOUT_FILE);
  const recordPath = join(dir, COMMITTED_LAYOUT_KEY_FILE);
  const full = await fullRunOf(cfg, options.resultsDir);
  const remake = `recreate the run's caches with ${describeFullRun(full)}`;
  const restore = (file: string) =>
    `Restore it from git (\`git checkout -- ${shown(file)}\`) or ${remake}`;
  for (const file of [path, recordPath]) {
    if (!existsSync(file)) {
      throw new PreviewError(
        file,
        `missing: run "${cfg.name}" has no committed layout to preview`,
        `${restore(file)}; \`commitLayout\` (lib/experiment/preview.ts) writes it from the caches.`,
      );
    }
  }
  const record = parseRecord(await Deno.readTextFile(recordPath), recordPath, restore(recordPath));
  const bytes = await Deno.readFile(path);
  const actual = sha256Hex(bytes);
  if (actual !== record.sha256) {
    throw new PreviewError(
      path,
      `its SHA-256 is ${actual.slice(0, 12)}…, ${shown(recordPath)} describes ` +
        `${record.sha256.slice(0, 12)}… (layout ${record.key}): damaged, or not the layout ` +
        `the record was written for`,
      restore(path),
    );
  }
  if (`image-transformer-${record.key}.json` !== record.cacheFile) {
    throw new PreviewError(
      recordPath,
      `its key ${record.key} is not the key of the cache file it names (${record.cacheFile})`,
      restore(recordPath),
    );
  }
  const key = layoutKeyOfHash(cfg, record.fitRows.sha256);
  if (key !== record.key) {
    const differences = differingImage(JSON.parse(hashedImage(cfg)), record.image);
    if (differences.length === 0) {
      throw new PreviewError(
        recordPath,
        `the config's image settings are the ones it records, yet with its fitting rows they ` +
          `give layout key ${key}, not its key ${record.key}: a stale or edited record`,
        restore(recordPath),
      );
    }
    throw new PreviewError(
      path,
      `it is layout ${record.key} of run "${record.run}", the config's layout key is ${key} ` +
        `(${differences.join("; ")})`,
      `The preview shows the committed config's layout: drop these changes, or compute this ` +
        `config's own inputs (\`prepareInputs\`, as \`deno task reproduce\` with the same ` +
        `overrides does)`,
    );
  }
  const split = options.split ?? await loadSplit(cfg);
  const fitCount = cfg.image.fitOn === "all" ? runTexts(split).length : split.train.length;
  const encoder = options.encoder ?? await loadEncoder(cfg.embedding);
  try {
    const texts = runTexts(split);
    const store = embeddingKey(
      encoder,
      texts,
      resolveEncodeOptions(encoder, encodeOptionsOf(cfg)),
    );
    const differing = differingFields(store, record.embeddings);
    if (differing.length > 0 || fitCount !== record.fitRows.count) {
      throw new PreviewError(
        path,
        `it was fitted on other embeddings than this config's (${
          [
            ...differing.map((f) =>
              `${f}: ${JSON.stringify(store[f])} here, ${
                JSON.stringify(record.embeddings[f])
              } in the committed layout`
            ),
            ...(fitCount !== record.fitRows.count
              ? [`${fitCount} fitting rows here, ${record.fitRows.count} there`]
              : []),
          ].join("; ")
        })`,
        `The preview needs the committed config's reviews and encoder: drop the data or ` +
          `embedding changes, or compute this config's own inputs (\`prepareInputs\`, as ` +
          `\`deno task reproduce\` with the same overrides does)`,
      );
    }
  } finally {
    if (!options.encoder) await encoder.dispose();
  }
  let layout: RunLayout;
  try {
    layout = await loadRunLayout(cfg, path);
  } catch (e) {
    if (e instanceof CorruptCacheError || e instanceof StaleCacheError) {
      throw new PreviewError(
        path,
        e.message.replace(/; it will be recomputed$/, "").replace(`${path} `, "it "),
        restore(path),
      );
    }
    throw e;
  }
  return { layout, path, record };
}

/** Options of {@link planPreview} and {@link choosePreview}. */
export interface PreviewOptions {
  /** Training reviews to sample (label-stratified). */
  reviews: number;
  /** Validation reviews to sample too (default 0). */
  validation?: number;
  /** Seed of the sample (default the config's `data.seed`). */
  seed?: number;
  /** Folder of results folders (default `results/`). */
  resultsDir?: string;
  /** The config's split, when already loaded (else read with `loadSplit`). */
  split?: LoadedSplit;
}

/** What {@link runPreview} will do, said before it starts. */
export interface PreviewPlan {
  /** The config (one sweep variant). */
  cfg: ResolvedConfig;
  /** The run's whole split (the sample is drawn from it). */
  split: LoadedSplit;
  /** The sampled reviews, in the sample's seeded order. */
  sample: { train: DatasetRecord[]; validation: DatasetRecord[] };
  /** The sample's seed. */
  seed: number;
  /** The encoder (loaded; it stays loaded in {@link PreviewInputs.encoder}). */
  encoder: TextEncoderModel;
  /** The committed layout, checked against the config. */
  committed: CommittedLayout;
  /** The run's texts whose embeddings are not cached (why there is a preview). */
  missingEmbeddings: number;
  /** The run's texts. */
  runTexts: number;
  /** Sampled texts to encode (the others are in the embedding store from an earlier preview). */
  toEncode: number;
  /** Estimated seconds of the encoding, and where the rate comes from. */
  estimate: { seconds: number; textsPerSecond: number; source: string };
  /** The command that recreates the full caches and the committed run's time. */
  fullRun: FullRun;
  /** One line: the caches are missing, the preview, its time, and the full command. */
  summary: string;
}

/** The sample's texts, in the preview's row order (train, then validation). */
function sampleTexts(sample: PreviewPlan["sample"]): string[] {
  return [...sample.train, ...sample.validation].map((r) => r.text);
}

/** Draws `n` of `pool` (label-stratified, seeded), or says how many there are. */
function drawSample(pool: DatasetRecord[], n: number, seed: number, what: string) {
  if (!Number.isInteger(n) || n < 0 || n > pool.length) {
    throw new Error(
      `preview: ${n} ${what} reviews asked for; the run has ${pool.length} (give an integer ` +
        `from 0 to ${pool.length})`,
    );
  }
  return stratifiedSample(pool, n, seed);
}

/**
 * Plans a preview of `cfg`'s run: loads the split and the encoder, loads and checks the
 * committed layout ({@link loadCommittedLayout}; a {@link PreviewError} when it cannot stand
 * for the config), draws the sample (`options.reviews` training and `options.validation`
 * validation reviews, each stratified by label, seeded) and estimates the encoding time.
 * Computes nothing; {@link runPreview} does.
 */
export async function planPreview(
  cfg: ResolvedConfig,
  options: PreviewOptions,
): Promise<PreviewPlan> {
  const split = options.split ?? await loadSplit(cfg);
  const seed = options.seed ?? cfg.data.seed;
  const sample = {
    train: drawSample(split.train, options.reviews, seed, "training"),
    validation: drawSample(split.validation, options.validation ?? 0, seed, "validation"),
  };
  const encoder = await loadEncoder(cfg.embedding);
  try {
    const committed = await loadCommittedLayout(cfg, {
      resultsDir: options.resultsDir,
      split,
      encoder,
    });
    const encodeOptions = encodeOptionsOf(cfg);
    const all = runTexts(split);
    const missingEmbeddings = all.length -
      (await storedEmbeddingRows(encoder, all, encodeOptions)).rows;
    const texts = sampleTexts(sample);
    const toEncode = texts.length -
      (texts.length ? (await storedEmbeddingRows(encoder, texts, encodeOptions)).rows : 0);
    const known = rateOf(await readRates(), `embed:${cfg.embedding.encoder}`);
    let perText = known?.fitPerRowEpoch;
    let source = `rate: ${known?.source}`;
    if (perText === undefined || !(perText > 0)) {
      const probe = texts.slice(0, 8);
      const started = performance.now();
      await encoder.encode(probe, resolveEncodeOptions(encoder, encodeOptions));
      perText = (performance.now() - started) / 1000 / Math.max(1, probe.length);
      source = `rate: ${probe.length} texts timed here`;
    }
    const estimate = { seconds: toEncode * perText, textsPerSecond: 1 / perText, source };
    const fullRun = await fullRunOf(cfg, options.resultsDir);
    const what = `${sample.train.length} sampled training${
      sample.validation.length ? ` and ${sample.validation.length} validation` : ""
    } reviews (seed ${seed})`;
    const work = toEncode === 0
      ? "their embeddings are cached from an earlier preview"
      : `embedding ${toEncode === texts.length ? "them" : `${toEncode} of them`} takes ` +
        `${aboutSeconds(estimate.seconds)} at ${estimate.textsPerSecond.toFixed(1)} texts/s ` +
        `(${source}), the images well under a second`;
    const summary = `The caches of run "${cfg.name}" are missing (${missingEmbeddings} of ` +
      `${all.length} embeddings in ${shown(join(dataDir(), "embeddings"))}), so this shows a ` +
      `preview: the committed layout ${shown(committed.path)} on ${what}; ${work}. ` +
      `${describeFullRun(fullRun)} recreates the full caches.`;
    return {
      cfg,
      split,
      sample,
      seed,
      encoder,
      committed,
      missingEmbeddings,
      runTexts: all.length,
      toEncode,
      estimate,
      fullRun,
      summary,
    };
  } catch (e) {
    await encoder.dispose();
    throw e;
  }
}

/** What {@link choosePreview} decided. */
export interface PreviewDecision {
  /**
   * The preview to show: the run's embeddings are not all cached and its committed layout
   * stands for the config. Undefined: run the config's own inputs (`prepareInputs`).
   */
  plan?: PreviewPlan;
  /** The run's texts whose embeddings are not cached (0: the caches are there). */
  missingEmbeddings: number;
  /**
   * Why there is no preview although embeddings are missing and the run has a committed
   * layout (stale or damaged: the {@link PreviewError}'s message, naming the file and the fix).
   */
  refused?: string;
}

/**
 * Whether a notebook should show a preview of `cfg`'s run: only when the run's embeddings
 * are not all cached (a fresh clone) and `results/<run>/layout.json` exists and stands for
 * the config ({@link planPreview}). With the caches, or without a committed layout, there is
 * no plan and nothing is said; with a committed layout that is refused, `refused` says why.
 */
export async function choosePreview(
  cfg: ResolvedConfig,
  options: PreviewOptions,
): Promise<PreviewDecision> {
  const split = options.split ?? await loadSplit(cfg);
  const encoder = await loadEncoder(cfg.embedding);
  let missingEmbeddings: number;
  try {
    const texts = runTexts(split);
    missingEmbeddings = texts.length -
      (await storedEmbeddingRows(encoder, texts, encodeOptionsOf(cfg))).rows;
  } finally {
    await encoder.dispose();
  }
  if (missingEmbeddings === 0) return { missingEmbeddings };
  if (!existsSync(join(runDir(cfg, options.resultsDir), COMMITTED_LAYOUT_FILE))) {
    return { missingEmbeddings };
  }
  try {
    return { plan: await planPreview(cfg, { ...options, split }), missingEmbeddings };
  } catch (e) {
    if (e instanceof PreviewError) return { missingEmbeddings, refused: e.message };
    throw e;
  }
}

/**
 * A run's inputs on the preview's sample, shaped as the fields of `ExperimentInputs` a
 * notebook reads: `split`, `labels`, `embeddings`, `features` and `images` hold the sample
 * (training, then validation rows; no test rows), the layout is the committed one.
 */
export type PreviewInputs =
  & Pick<
    ExperimentInputs,
    | "cfg"
    | "split"
    | "labels"
    | "encoder"
    | "embeddings"
    | "features"
    | "transformer"
    | "layout"
    | "transformerKey"
    | "images"
    | "emptyPixels"
    | "seconds"
    | "embeddingsCached"
  >
  & {
    /** Always true: the layout is read, never fitted. */
    transformerCached: true;
    /** What the preview is: sample sizes, seed, the committed layout's file and record. */
    preview: {
      reviews: number;
      validation: number;
      seed: number;
      path: string;
      record: CommittedLayoutRecord;
    };
  };

/** Options of {@link runPreview}. */
export interface RunPreviewOptions {
  /** Messages about stale or damaged embedding chunks (default `console.warn`). */
  log?: (line: string) => void;
  /** Progress bar label; `false` for none (default `embed preview (<run>)`). */
  progress?: string | false;
}

/**
 * Runs a {@link PreviewPlan}: embeds the sampled reviews through the embedding store (a
 * second preview of the same sample reads them back) and draws their images with the
 * committed layout, exactly as `prepareInputs` draws a run's images.
 */
export async function runPreview(
  plan: PreviewPlan,
  options: RunPreviewOptions = {},
): Promise<PreviewInputs> {
  const { cfg, sample, encoder, committed } = plan;
  const texts = sampleTexts(sample);
  const nTrain = sample.train.length;
  const maker: Maker = {
    run: `${cfg.name} preview`,
    at: new Date().toISOString(),
    code: await codeVersion(),
  };
  const started = performance.now();
  const cols = (cfg.embedding.layers ?? encoder.defaults.layers).length * encoder.hiddenSize;
  const embeddings = texts.length === 0
    ? { data: new Float32Array(0), shape: [0, cols] } as Matrix
    : await embedTexts(encoder, texts, {
      ...encodeOptionsOf(cfg),
      maker,
      log: options.log,
      progress: options.progress ?? `embed preview (${cfg.name})`,
    });
  const embeddingSeconds = (performance.now() - started) / 1000;
  const features = {
    train: rows(embeddings, 0, nTrain),
    validation: rows(embeddings, nTrain, texts.length),
    test: rows(embeddings, texts.length, texts.length),
  };
  const imagesStarted = performance.now();
  const layout = committed.layout;
  const images = {
    train: layout.transform(features.train),
    validation: layout.transform(features.validation),
    test: layout.transform(features.test),
  };
  let emptyPixels = 0;
  for (const v of layout.transformer.featureDensityMatrix().data) if (v === 0) emptyPixels++;
  return {
    cfg,
    split: {
      train: sample.train,
      validation: sample.validation,
      test: [],
      dataset: plan.split.dataset,
    },
    labels: {
      train: labelsOf(sample.train),
      validation: labelsOf(sample.validation),
      test: new Uint8Array(0),
    },
    encoder,
    embeddings,
    features,
    transformer: layout.transformer,
    layout,
    transformerKey: committed.record.key,
    transformerCached: true,
    images,
    emptyPixels,
    seconds: { embeddings: embeddingSeconds, images: (performance.now() - imagesStarted) / 1000 },
    embeddingsCached: texts.length - plan.toEncode,
    preview: {
      reviews: nTrain,
      validation: sample.validation.length,
      seed: plan.seed,
      path: committed.path,
      record: committed.record,
    },
  };
}
