/**
 * The Large Movie Review Dataset v1.0 (Maas et al., ACL 2011) as typed records. Reads the
 * official `aclImdb_v1.tar.gz`, the labelled-only archive of the team's shared folder, an
 * extracted `aclImdb/` folder, or a URL downloaded into the cache folder.
 *
 * @module
 */
import { basename, join } from "node:path";
import { dataDir, sharedPath } from "../config.ts";
import { downloadToFile } from "../download.ts";
import type { Progress } from "../progress.ts";
import { readTarFiles } from "./archive.ts";
import type { TextRecord } from "./record.ts";

/** The official train / test halves of the dataset. */
export type Split = "train" | "test";

/**
 * One labelled review, from the file `<split>/<pos|neg>/<id>_<rating>.txt`: a
 * {@link TextRecord} with IMDB's extra, the star rating.
 */
export interface Review extends TextRecord {
  /** The official half it comes from (kept when a split scheme regroups reviews). */
  split: Split;
  /** The number before `_` in the file name; unique within a split and label. */
  id: number;
  /** The IMDB star rating: 1–4 for negative, 7–10 for positive reviews. */
  rating: number;
  /** 1 for a positive review (folder `pos`), 0 for a negative one (folder `neg`). */
  label: 0 | 1;
  /** The review text, decoded as UTF-8. */
  text: string;
}

/** Options of {@link loadImdb}. */
export interface LoadImdbOptions {
  /**
   * `.tar.gz` path (official aclImdb_v1.tar.gz or the labelled-only archive), an extracted
   * `aclImdb/` folder, or an http(s) URL downloaded into `dataDir()`.
   * Default: {@link defaultImdbSource}().
   */
  source?: string;
  /**
   * `"keep"` the raw text with its `<br />` tags (as the paper did) or `"space"` to replace
   * each `<br />` (also `<br>`, `<br/>`) by one space. Default `"keep"`.
   */
  breaks?: "keep" | "space";
  /** Called as reviews are read: `done` reviews so far (`total` unknown until the end). */
  onProgress?: (p: Progress) => void;
}

/** The official download location of the dataset (84 MB, includes the unlabelled part). */
export const IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz";

/** SHA-256 of the official `aclImdb_v1.tar.gz`. */
export const IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe";

/** SHA-256 of the team's labelled-only `aclImdb_v1-labelled.tar.gz`. */
export const IMDB_LABELLED_SHA256 =
  "98b8d50b2f76316a6fde3b9e0c84d75540c824cd48eb0e871766e73952906d7d";

/** Reviews per split and label in the complete dataset. */
export const IMDB_REVIEWS_PER_FOLDER = 12_500;

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Where the loader looks for a local copy of the official archive (in the cache folder). */
export function cachedImdbPath(): string {
  return join(dataDir(), "aclImdb_v1.tar.gz");
}

/**
 * The default source: the shared labelled-only archive
 * (`sharedPath("data", "aclImdb_v1-labelled.tar.gz")`) if present, else
 * `dataDir()/aclImdb_v1.tar.gz` if present, else the official Stanford URL.
 */
export function defaultImdbSource(): string {
  const shared = sharedPath("data", "aclImdb_v1-labelled.tar.gz");
  if (existsSync(shared)) return shared;
  const cached = cachedImdbPath();
  if (existsSync(cached)) return cached;
  return IMDB_URL;
}

/** What to tell a user who has no copy of the dataset and no internet access. */
export function imdbOfflineHint(): string {
  return `Without internet access, put the official archive at ${cachedImdbPath()} ` +
    `(or the labelled-only archive at ${sharedPath("data", "aclImdb_v1-labelled.tar.gz")}), ` +
    `or pass source: "<path to aclImdb_v1.tar.gz or an extracted aclImdb/ folder>". ` +
    `Set TEXT_AS_IMAGE_DATA / TEXT_AS_IMAGE_SHARED to use other folders.`;
}

/** Where a review file sits: `<split>/<pos|neg>/<file name>` below some prefix. */
const REVIEW_PATH = /(?:^|\/)(train|test)\/(pos|neg|unsup)\/([^/]+)$/;
const REVIEW_NAME = /^(\d+)_(\d+)\.txt$/;
const BREAKS = /<br\s*\/?>/gi;

/** Collects reviews and checks names, ratings, duplicates, UTF-8 and completeness. */
class ReviewCollector {
  readonly #reviews: Review[] = [];
  readonly #decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  readonly #seen = new Set<string>();
  readonly #counts = new Map<string, number>();
  readonly #source: string;
  readonly #breaks: "keep" | "space";
  readonly #onProgress?: (p: Progress) => void;

  constructor(source: string, options: LoadImdbOptions) {
    this.#source = source;
    this.#breaks = options.breaks ?? "keep";
    this.#onProgress = options.onProgress;
    if (this.#breaks !== "keep" && this.#breaks !== "space") {
      throw new Error(`loadImdb: breaks must be "keep" or "space", got ${String(this.#breaks)}`);
    }
  }

  /** Whether the entry at `name` is a labelled review to read (unsup and others: no). */
  wants(name: string): boolean {
    const match = REVIEW_PATH.exec(name);
    return match !== null && match[2] !== "unsup";
  }

  /** Parses and checks one review file; `name` must satisfy {@link wants}. */
  add(name: string, bytes: Uint8Array): void {
    const [, split, folder, fileName] = REVIEW_PATH.exec(name)!;
    const where = `${this.#source}: ${name}`;
    const parts = REVIEW_NAME.exec(fileName);
    if (!parts) {
      throw new Error(
        `${where}: bad file name "${fileName}"; review files must be named <id>_<rating>.txt`,
      );
    }
    const id = Number(parts[1]);
    const rating = Number(parts[2]);
    const label = folder === "pos" ? 1 : 0;
    const ratingOk = label === 1 ? rating >= 7 && rating <= 10 : rating >= 1 && rating <= 4;
    if (!ratingOk) {
      throw new Error(
        `${where}: rating ${rating} is outside ${label === 1 ? "7–10" : "1–4"}, ` +
          `the range of the ${folder}/ folder`,
      );
    }
    const key = `${split}/${folder}/${id}`;
    if (this.#seen.has(key)) throw new Error(`${where}: duplicate review ${key}`);
    this.#seen.add(key);
    // Decoded once, straight from the archive's bytes; fatal: invalid UTF-8 throws.
    let text: string;
    try {
      text = this.#decoder.decode(bytes);
    } catch {
      throw new Error(`${where}: invalid UTF-8 in the review text`);
    }
    if (this.#breaks === "space") text = text.replace(BREAKS, " ");
    this.#reviews.push({ split: split as Split, id, rating, label, text });
    const folderKey = `${split}/${folder}`;
    this.#counts.set(folderKey, (this.#counts.get(folderKey) ?? 0) + 1);
    if (this.#onProgress && this.#reviews.length % 1000 === 0) {
      this.#onProgress({ done: this.#reviews.length });
    }
  }

  /** Checks that every split has both labels and returns the reviews in canonical order. */
  finish(): Review[] {
    const missing = ["train/pos", "train/neg", "test/pos", "test/neg"].filter((k) =>
      !this.#counts.get(k)
    );
    if (missing.length > 0) {
      throw new Error(
        `${this.#source}: missing split: no reviews in ${missing.join(", ")}. ` +
          `Expected files aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt; the archive is ` +
          `incomplete or is not the Large Movie Review Dataset.`,
      );
    }
    const reviews = this.#reviews;
    const order = { train: 0, test: 1 };
    reviews.sort((a, b) => order[a.split] - order[b.split] || a.label - b.label || a.id - b.id);
    this.#onProgress?.({ done: reviews.length, total: reviews.length });
    return reviews;
  }
}

async function loadFromArchive(path: string, collector: ReviewCollector): Promise<void> {
  await readTarFiles(path, {
    want: (file) => collector.wants(file.name),
    onFile: (file, bytes) => collector.add(file.name, bytes),
  });
}

async function loadFromFolder(path: string, collector: ReviewCollector): Promise<void> {
  let root = path;
  if (!existsSync(join(root, "train")) && !existsSync(join(root, "test"))) {
    if (existsSync(join(root, "aclImdb"))) root = join(root, "aclImdb");
  }
  const names: string[] = [];
  for (const split of ["train", "test"]) {
    for (const folder of ["pos", "neg"]) {
      const dir = join(root, split, folder);
      if (!existsSync(dir)) continue; // reported as a missing split by finish()
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isFile) names.push(`${split}/${folder}/${entry.name}`);
      }
    }
  }
  names.sort();
  const concurrency = 64;
  for (let start = 0; start < names.length; start += concurrency) {
    const batch = names.slice(start, start + concurrency);
    const contents = await Promise.all(batch.map((name) => Deno.readFile(join(root, name))));
    batch.forEach((name, i) => collector.add(name, contents[i]));
  }
}

/**
 * Loads the 50,000 labelled reviews (25,000 train + 25,000 test; `train/unsup` and the
 * other files are skipped) from `options.source`. A URL is downloaded once into
 * `dataDir()` (SHA-256 checked for the official URL); offline, that fails with one error
 * saying where to put the archive. Bad input (corrupt gzip, truncated tar, a file name that
 * is not `<id>_<rating>.txt`, a rating outside 1–4 / 7–10 for its folder, invalid UTF-8, a
 * missing split) rejects with an `Error` naming the file and the problem.
 *
 * The order is deterministic: train before test, then negative before positive, then by id.
 */
export async function loadImdb(options: LoadImdbOptions = {}): Promise<Review[]> {
  let source = options.source ?? defaultImdbSource();
  if (/^https?:\/\//i.test(source)) {
    const name = basename(new URL(source).pathname) || "aclImdb_v1.tar.gz";
    const official = source.replace(/^http:/i, "https:") === IMDB_URL;
    source = await downloadToFile(source, join(dataDir(), name), {
      sha256: official ? IMDB_SHA256 : undefined,
      offlineHint: imdbOfflineHint(),
    });
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(source);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(`IMDB source ${source} does not exist. ${imdbOfflineHint()}`);
  }
  const collector = new ReviewCollector(source, options);
  if (info.isDirectory) await loadFromFolder(source, collector);
  else await loadFromArchive(source, collector);
  return collector.finish();
}
