/**
 * Seeded, label-stratified train / validation / test splits and subsamples of labelled
 * records (IMDB reviews or any {@link TextRecord}). The same records, options and seed give
 * the same splits on every machine.
 *
 * @module
 */
import { Random } from "../random.ts";
import type { Review } from "./imdb.ts";
import type { TextRecord } from "./record.ts";

/** The three disjoint parts returned by {@link splitReviews}. */
export interface DataSplits<T extends TextRecord = Review> {
  /** Records to fit on. */
  train: T[];
  /** Records held out from training for model selection (empty for the `paper` scheme). */
  validation: T[];
  /** Records to report on. */
  test: T[];
}

/** Options of {@link splitReviews}. */
export interface SplitOptions {
  /**
   * `"standard"`: train and validation come from the official train half, test from the
   * official test half (records with `split` "train" and "test"; when some records have
   * `split` "validation", the validation set is drawn from those instead of the train
   * half). Data without a split (no record has `split`) has no official halves: `testSize`
   * records (default `testFraction` of all) are held out for test, stratified and seeded,
   * and the rest is split into train and validation as the official train half would be.
   * `"paper"`: all records are pooled and split at random, 40k / 10k for the full IMDB
   * dataset (80 % / 20 %), as in the paper; no validation set.
   */
  scheme: "standard" | "paper";
  /** Seed of the random draws. Default 42 (the paper's). */
  seed?: number;
  /**
   * Number of training reviews (a stratified subsample). Default: all that the scheme
   * leaves for training.
   */
  trainSize?: number;
  /** Number of test reviews (a stratified subsample). Default: all the scheme's test pool. */
  testSize?: number;
  /**
   * `standard` only. Size of the validation set as a fraction of the training data:
   * without `trainSize`, this fraction of the official train half is held out and the rest
   * is the train set; with `trainSize`, `round(fraction × trainSize)` further reviews of the
   * official train half (disjoint from the train set) are drawn. Default 0.1. With a
   * validation split in the data: all of it without `trainSize`, `round(fraction ×
   * trainSize)` of it with `trainSize` (0: none).
   */
  validationFraction?: number;
  /**
   * Without `testSize`: the fraction of all records held out for test, for data without a
   * split (standard scheme) and for the paper scheme. Default 0.2.
   */
  testFraction?: number;
}

/** Exact per-label counts for drawing `n` of `available` (largest-remainder rounding). */
function stratifiedCounts(available: number[], n: number): number[] {
  const total = available.reduce((a, b) => a + b, 0);
  if (total === 0) return available.map(() => 0);
  const exact = available.map((c) => (n * c) / total);
  const counts = exact.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = exact
    .map((q, label) => ({ label, rest: q - Math.floor(q) }))
    .sort((a, b) =>
      b.rest - a.rest || available[b.label] - available[a.label] || a.label - b.label
    );
  for (const { label } of order) {
    if (left === 0) break;
    if (counts[label] < available[label]) {
      counts[label]++;
      left--;
    }
  }
  return counts;
}

function checkSize(name: string, n: number, max: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${n}`);
  }
  if (n > max) throw new Error(`${name} ${n} is larger than the ${max} records available`);
}

/**
 * Splits `pool` into disjoint parts of the given sizes, each stratified by label: each
 * label's reviews are permuted once, and parts take consecutive runs of that permutation,
 * in proportion to what is left of each label. Each part is returned in a seeded random
 * order (labels interleaved).
 */
function stratifiedPartition<T extends TextRecord>(
  pool: T[],
  sizes: number[],
  random: Random,
): T[][] {
  const groups: T[][] = [[], []];
  for (const review of pool) groups[review.label].push(review);
  for (const group of groups) random.shuffle(group);
  const used = [0, 0];
  const parts = sizes.map((size) => {
    const left = groups.map((g, label) => g.length - used[label]);
    const counts = stratifiedCounts(left, size);
    const part: T[] = [];
    counts.forEach((count, label) => {
      part.push(...groups[label].slice(used[label], used[label] + count));
      used[label] += count;
    });
    return part;
  });
  for (const part of parts) random.shuffle(part);
  return parts;
}

/** A seed for an independent stream `stream` derived from `seed`. */
function deriveSeed(seed: number, stream: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(stream, 0x85ebca6b)) >>> 0;
}

/**
 * Draws `n` of `reviews` at random without replacement, stratified by label (each label
 * keeps its share, rounded so the counts add up to `n`). Deterministic for a given seed;
 * returned in a seeded random order.
 */
export function stratifiedSample<T extends TextRecord>(reviews: T[], n: number, seed: number): T[] {
  checkSize("sample size", n, reviews.length);
  return stratifiedPartition(reviews, [n], new Random(seed))[0];
}

/**
 * Splits records into disjoint train / validation / test sets, each stratified by label,
 * seeded (default seed 42). See {@link SplitOptions} for the two schemes and for data
 * without a split. `split` still says which official half each record comes from.
 */
export function splitReviews<T extends TextRecord>(
  reviews: T[],
  options: SplitOptions,
): DataSplits<T> {
  const seed = options.seed ?? 42;
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new Error(`testFraction must be in (0, 1), got ${testFraction}`);
  }
  if (options.scheme === "standard") {
    const withSplit = reviews.filter((r) => r.split !== undefined).length;
    if (withSplit > 0 && withSplit < reviews.length) {
      throw new Error(
        `${reviews.length - withSplit} of ${reviews.length} records have no split; give ` +
          `every record a split, or none`,
      );
    }
    const fraction = options.validationFraction ?? 0.1;
    if (!(fraction >= 0 && fraction < 1)) {
      throw new Error(`validationFraction must be in [0, 1), got ${fraction}`);
    }
    let trainPool: T[];
    let test: T[] | undefined;
    let testPool: T[] = [];
    if (withSplit === 0) {
      // No official halves: hold out a seeded, stratified test set first.
      const total = reviews.length;
      const testSize = options.testSize ?? Math.round(testFraction * total);
      checkSize("testSize", testSize, total);
      [test, trainPool] = stratifiedPartition(
        reviews,
        [testSize, total - testSize],
        new Random(deriveSeed(seed, 4)),
      );
    } else {
      trainPool = reviews.filter((r) => r.split === "train");
      testPool = reviews.filter((r) => r.split === "test");
      if (trainPool.length === 0 || testPool.length === 0) {
        throw new Error(
          `The standard scheme needs reviews from both official halves (records with split ` +
            `"train" and "test"); got ${trainPool.length} train and ${testPool.length} test ` +
            `records.`,
        );
      }
    }
    const validationPool = reviews.filter((r) => r.split === "validation");
    let train: T[];
    let validation: T[];
    if (validationPool.length > 0) {
      const trainSize = options.trainSize ?? trainPool.length;
      checkSize("trainSize", trainSize, trainPool.length);
      const validationSize = fraction === 0
        ? 0
        : options.trainSize === undefined
        ? validationPool.length
        : Math.round(fraction * trainSize);
      checkSize(
        `validation (round(${fraction} × ${trainSize}))`,
        validationSize,
        validationPool.length,
      );
      [train] = stratifiedPartition(trainPool, [trainSize], new Random(deriveSeed(seed, 1)));
      [validation] = stratifiedPartition(
        validationPool,
        [validationSize],
        new Random(deriveSeed(seed, 5)),
      );
    } else {
      let trainSize: number;
      let validationSize: number;
      if (options.trainSize === undefined) {
        validationSize = Math.round(fraction * trainPool.length);
        trainSize = trainPool.length - validationSize;
      } else {
        trainSize = options.trainSize;
        checkSize("trainSize", trainSize, trainPool.length);
        validationSize = Math.round(fraction * trainSize);
        checkSize(
          `trainSize + validation (${trainSize} + ${validationSize})`,
          trainSize + validationSize,
          trainPool.length,
        );
      }
      [train, validation] = stratifiedPartition(
        trainPool,
        [trainSize, validationSize],
        new Random(deriveSeed(seed, 1)),
      );
    }
    if (test === undefined) {
      const testSize = options.testSize ?? testPool.length;
      checkSize("testSize", testSize, testPool.length);
      [test] = stratifiedPartition(testPool, [testSize], new Random(deriveSeed(seed, 2)));
    }
    return { train, validation, test };
  }
  if (options.scheme === "paper") {
    if (options.validationFraction) {
      throw new Error(
        `validationFraction applies to the standard scheme only; the paper scheme has no ` +
          `validation set.`,
      );
    }
    const total = reviews.length;
    if (options.trainSize !== undefined) checkSize("trainSize", options.trainSize, total);
    const testSize = options.testSize ??
      (options.trainSize !== undefined
        ? total - options.trainSize
        : Math.round(testFraction * total));
    checkSize("testSize", testSize, total);
    const trainSize = options.trainSize ?? total - testSize;
    checkSize(`trainSize + testSize (${trainSize} + ${testSize})`, trainSize + testSize, total);
    const [test, train] = stratifiedPartition(
      reviews,
      [testSize, trainSize],
      new Random(deriveSeed(seed, 3)),
    );
    return { train, validation: [], test };
  }
  throw new Error(
    `Unknown split scheme ${String((options as { scheme: unknown }).scheme)}; ` +
      `use "standard" or "paper".`,
  );
}

/** The labels of `records` (1 positive, 0 negative), in order. */
export function labelsOf(records: TextRecord[]): Uint8Array {
  const labels = new Uint8Array(records.length);
  for (let i = 0; i < records.length; i++) labels[i] = records[i].label;
  return labels;
}

/** The texts of `records`, in order. */
export function textsOf(records: TextRecord[]): string[] {
  return records.map((r) => r.text);
}
