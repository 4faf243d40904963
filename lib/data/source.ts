/**
 * Any labelled text data behind one call: {@link loadDataset} reads IMDB (archive, folder,
 * URL) or a table / folder source ({@link loadTable}) and says what it read (name, format,
 * label mapping). {@link inferDataFormat} picks the format from the path.
 *
 * @module
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { defaultImdbSource, loadImdb } from "./imdb.ts";
import type { Review } from "./imdb.ts";
import type { Progress } from "../progress.ts";
import type { DataFormat, DatasetInfo, TextRecord } from "./record.ts";
import { loadTable } from "./table.ts";
import type { LoadTableOptions } from "./table.ts";

/** A record of any source; IMDB's carry their star rating (`Review.rating`). */
export type DatasetRecord = TextRecord & Partial<Pick<Review, "rating">>;

/** Options of {@link loadDataset}. */
export interface LoadDatasetOptions
  extends Omit<LoadTableOptions, "source" | "format" | "onProgress"> {
  /** Path or (IMDB only) URL. Default: IMDB's default source. */
  source?: string;
  /** How to read it. Default: {@link inferDataFormat}(source). */
  format?: DataFormat;
  /** Called as records are read. */
  onProgress?: (p: Progress) => void;
}

/** A loaded dataset: its records and what was read. */
export interface Dataset {
  /** The records (IMDB: train before test, negative before positive, by id; tables: file order). */
  records: DatasetRecord[];
  /** Name, format, source, label mapping. */
  info: DatasetInfo;
}

/** Options that apply to table and folder formats only (given with IMDB: an error). */
export const TABLE_OPTIONS = [
  "textColumn",
  "labelColumn",
  "splitColumn",
  "positiveLabel",
] as const;

/** Options that apply to csv, tsv and jsonl only (not folders). */
export const COLUMN_OPTIONS = ["textColumn", "labelColumn", "splitColumn"] as const;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Whether the folder is (or holds) the extracted IMDB dataset. */
function isAclImdbFolder(path: string): boolean {
  if (
    isDirectory(join(path, "aclImdb")) || existsSync(join(path, "imdb.vocab")) ||
    existsSync(join(path, "imdbEr.txt"))
  ) {
    return true;
  }
  // train/pos or train/neg holding review files named <id>_<rating>.txt.
  for (const folder of ["pos", "neg"]) {
    const dir = join(path, "train", folder);
    if (!isDirectory(dir)) continue;
    try {
      const names = readdirSync(dir).slice(0, 20);
      if (names.some((name) => /^\d+_\d+\.txt$/.test(name))) return true;
    } catch {
      // unreadable: not IMDB
    }
  }
  return false;
}

/**
 * The format of a source, from its path: no source, a URL or an archive → `imdb`; `.csv` →
 * `csv`; `.tsv` / `.tab` → `tsv`; `.jsonl` / `.ndjson` → `jsonl`; a folder → `imdb` when it is
 * (or holds) an extracted `aclImdb/` (`imdb.vocab`, or `train/pos/<id>_<rating>.txt`), else
 * `folders` (one sub-folder per class); anything else → `imdb`.
 */
export function inferDataFormat(source: string | undefined): DataFormat {
  if (source === undefined || /^[a-z]+:\/\//i.test(source)) return "imdb";
  if (/\.csv$/i.test(source)) return "csv";
  if (/\.(tsv|tab)$/i.test(source)) return "tsv";
  if (/\.(jsonl|ndjson)$/i.test(source)) return "jsonl";
  if (isDirectory(source)) return isAclImdbFolder(source) ? "imdb" : "folders";
  return "imdb";
}

/**
 * Loads labelled texts from any supported source (see {@link inferDataFormat} and
 * {@link loadTable}); IMDB through {@link loadImdb}, with its fixed mapping
 * 0 = `neg`, 1 = `pos`. Table options given for IMDB are an error.
 */
export async function loadDataset(options: LoadDatasetOptions = {}): Promise<Dataset> {
  const format = options.format ?? inferDataFormat(options.source);
  if (format === "imdb") {
    const given = TABLE_OPTIONS.filter((key) => options[key] !== undefined);
    if (given.length) {
      throw new Error(
        `${given.join(", ")}: ${given.length > 1 ? "apply" : "applies"} to csv, tsv, jsonl ` +
          `and folders sources, not to IMDB ` +
          `(${options.source ?? "the default source"})`,
      );
    }
    const source = options.source ?? defaultImdbSource();
    const reviews = await loadImdb({
      source,
      breaks: options.breaks,
      onProgress: options.onProgress,
    });
    return {
      records: reviews,
      info: {
        name: options.name ?? "IMDB",
        format,
        source,
        labels: { negative: "neg", positive: "pos", rule: "fixed" },
        hasSplit: true,
        records: reviews.length,
      },
    };
  }
  if (options.source === undefined) {
    throw new Error(`format "${format}" needs a source: the path of the file or folder`);
  }
  const { records, info } = await loadTable({ ...options, source: options.source, format });
  return { records, info };
}
