/**
 * Data stage: labelled texts as typed records. The Large Movie Review Dataset (IMDB), loaded
 * by streaming the archive; any other labelled text data from a CSV, TSV or JSON Lines file
 * or a folder with one sub-folder per class ({@link loadDataset}, {@link loadTable}); and
 * seeded, label-stratified splits and subsamples.
 *
 * ```ts
 * import { labelsOf, loadDataset, loadImdb, splitReviews } from "./lib/data/mod.ts";
 * const reviews = await loadImdb();
 * const { train, test } = splitReviews(reviews, { scheme: "paper", seed: 42 });
 * const y = labelsOf(train);
 * const { records, info } = await loadDataset({ source: "tweets.csv", positiveLabel: "happy" });
 * const splits = splitReviews(records, { scheme: "standard", testSize: 200 });
 * ```
 *
 * @module
 */
export {
  cachedImdbPath,
  defaultImdbSource,
  IMDB_LABELLED_SHA256,
  IMDB_REVIEWS_PER_FOLDER,
  IMDB_SHA256,
  IMDB_URL,
  imdbOfflineHint,
  loadImdb,
} from "./imdb.ts";
export type { LoadImdbOptions, Review, Split } from "./imdb.ts";
export { DATA_FORMATS, DEFAULT_LABEL_PAIRS, describeLabels, labelMapping } from "./record.ts";
export type { DataFormat, DatasetInfo, LabelMapping, SplitName, TextRecord } from "./record.ts";
export { decodeUtf8, firstInvalidUtf8, loadTable } from "./table.ts";
export type { LoadTableOptions, TableData, TableFormat } from "./table.ts";
export { COLUMN_OPTIONS, inferDataFormat, loadDataset, TABLE_OPTIONS } from "./source.ts";
export type { Dataset, DatasetRecord, LoadDatasetOptions } from "./source.ts";
export { labelsOf, splitReviews, stratifiedSample, textsOf } from "./split.ts";
export type { DataSplits, SplitOptions } from "./split.ts";
export { isGzipFile, readTarFiles } from "./archive.ts";
export type { ReadTarOptions, TarFile } from "./archive.ts";
export { gzipBytes, miniImdbEntries, tarBytes, writeTarArchive } from "./fixtures.ts";
export type { MiniImdbOptions, TarEntry } from "./fixtures.ts";
