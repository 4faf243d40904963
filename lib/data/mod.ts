/**
 * Data stage: the Large Movie Review Dataset (IMDB) as typed review records, loaded by
 * streaming the archive, and seeded, label-stratified splits and subsamples.
 *
 * ```ts
 * import { labelsOf, loadImdb, splitReviews } from "./lib/data/mod.ts";
 * const reviews = await loadImdb();
 * const { train, test } = splitReviews(reviews, { scheme: "paper", seed: 42 });
 * const y = labelsOf(train);
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
export { labelsOf, splitReviews, stratifiedSample, textsOf } from "./split.ts";
export type { DataSplits, SplitOptions } from "./split.ts";
export { isGzipFile, readTarFiles } from "./archive.ts";
export type { ReadTarOptions, TarFile } from "./archive.ts";
export { gzipBytes, miniImdbEntries, tarBytes, writeTarArchive } from "./fixtures.ts";
export type { MiniImdbOptions, TarEntry } from "./fixtures.ts";
