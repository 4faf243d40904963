/**
 * Statistics for comparing models trained once per seed on the same test rows: a summary of
 * a metric over seeds (mean, sample standard deviation, Student-t 95% interval), Holm–Bonferroni
 * adjustment of several p-values, and a paired bootstrap over seeds and test rows together.
 *
 * ## The paired bootstrap over seeds and test rows
 *
 * A difference in accuracy between two models has two sources of noise: which test rows
 * happened to be drawn (test-set sampling) and which seed each model was trained with
 * (seed-to-seed variation). {@link pairedBootstrap} resamples both at once, as a two-level
 * (hierarchical) bootstrap: each resample draws S seed indices with replacement and N row
 * indices with replacement, the same drawn rows for every drawn seed (the rows are shared
 * test rows, so the pairing of A and B on a row, and of seeds on a row, is kept), and
 * recomputes the difference of mean accuracy
 *
 *     d = (1/S) Σₛ (1/N) Σᵢ (aₛᵢ − bₛᵢ)
 *
 * on it. Model B is either paired seed by seed with A (seed s of A with seed s of B), or one
 * deterministic baseline used for every seed. The alternatives each miss one source: McNemar's
 * test on one seed (`mcnemarTest` in `metrics.ts`) sees only the test rows, so it is
 * overconfident when another seed would have ranked the models differently; a t-test over
 * three accuracies per model sees only the seeds, with two degrees of freedom, and ignores
 * that both models were scored on the same rows.
 *
 * The interval is the percentile interval of the bootstrap distribution (linear interpolation
 * between order statistics, as NumPy's default `np.percentile`, which `scipy.stats.bootstrap`
 * uses). The p-value of "no difference" is two-sided, from the same distribution, with the
 * add-one correction so that it is never 0:
 *
 *     p = min(1, 2 · min((1 + #{d* ≤ 0}) / (B + 1), (1 + #{d* ≥ 0}) / (B + 1)))
 *
 * where d* are the B resampled differences. Its smallest possible value is 2 / (B + 1), so
 * with the default B = 10,000 it cannot go below about 2e-4; resamples equal to 0 count on
 * both sides, which makes it conservative.
 *
 * Random draws come from the project's seeded {@link Random}, so a seed gives the same
 * result on every machine.
 *
 * @module
 */
import { Random } from "../random.ts";

// ---------------------------------------------------------------------------------------
// Special functions: log-gamma, the regularised incomplete beta function, Student's t.

const LANCZOS = [
  0.99999999999980993,
  676.5203681218851,
  -1259.1392167224028,
  771.32342877765313,
  -176.61502916214059,
  12.507343278686905,
  -0.13857109526572012,
  9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7, about 1e-15 relative). */
function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let s = LANCZOS[0];
  for (let i = 1; i < 9; i++) s += LANCZOS[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

const TINY = 1e-300;

/**
 * The continued fraction of the incomplete beta function (modified Lentz), the factor
 * `cf` in I_x(a, b) = x^a (1 − x)^b cf / (a B(a, b)). Converges fast for x < (a+1)/(a+b+2).
 */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const qab = a + b, qap = a + 1, qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 100_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const step = d * c;
    h *= step;
    if (Math.abs(step - 1) < 1e-16) return h;
  }
  throw new Error(`incomplete beta: continued fraction did not converge (a=${a}, b=${b}, x=${x})`);
}

/**
 * ln I_x(a, b), the regularised incomplete beta function, from ln x and ln(1 − x) (given
 * separately so that neither loses precision when x is near 0 or 1).
 */
function logBetaInc(a: number, b: number, logX: number, logY: number): number {
  if (logX === -Infinity) return -Infinity;
  if (logY === -Infinity) return 0;
  const x = Math.exp(logX), y = Math.exp(logY);
  const logBeta = logGamma(a) + logGamma(b) - logGamma(a + b);
  if (x < (a + 1) / (a + b + 2)) {
    return a * logX + b * logY - logBeta + Math.log(betaContinuedFraction(a, b, x) / a);
  }
  const complement = Math.exp(a * logX + b * logY - logBeta) * betaContinuedFraction(b, a, y) / b;
  return Math.log1p(-complement);
}

/** ln u and ln(1 + u) for u = t²/ν, without overflow for large t. */
function logU(t: number, df: number): { logU: number; log1pU: number } {
  const w = t / Math.sqrt(df);
  const lu = 2 * Math.log(w);
  if (w <= 1) return { logU: lu, log1pU: Math.log1p(w * w) };
  const inv = 1 / w;
  return { logU: lu, log1pU: lu + Math.log1p(inv * inv) };
}

/** ln P(T > t) for t > 0, T ~ Student's t with `df` degrees of freedom. */
function logUpperTail(t: number, df: number): number {
  // P(T > t) = I_x(ν/2, 1/2) / 2 with x = ν/(ν + t²) = 1/(1 + u), 1 − x = u/(1 + u).
  const { logU: lu, log1pU } = logU(t, df);
  return Math.log(0.5) + logBetaInc(df / 2, 0.5, -log1pU, lu - log1pU);
}

/** ln of the density of Student's t at t. */
function logDensity(t: number, df: number): number {
  const { log1pU } = logU(Math.abs(t), df);
  return logGamma((df + 1) / 2) - logGamma(df / 2) - 0.5 * Math.log(df * Math.PI) -
    ((df + 1) / 2) * log1pU;
}

/**
 * The `p` quantile of Student's t distribution with `df` degrees of freedom (any real
 * df > 0): the t with P(T ≤ t) = p. Computed by inverting the CDF, written with the
 * regularised incomplete beta function (continued fraction, modified Lentz), by Newton's
 * method on log-tail against log t inside a bisection bracket. Accurate to about 1e-12
 * relative for df ≥ 1 (tested against SciPy to 1e-9).
 *
 * `p = 0` gives −Infinity and `p = 1` gives +Infinity.
 *
 * @param p probability in [0, 1]
 * @param df degrees of freedom, finite and > 0
 * @returns the quantile t
 * @throws {RangeError} when p is outside [0, 1] or NaN, or df is not a finite positive number
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`studentTQuantile: p must be in [0, 1], got ${p}`);
  if (!(df > 0 && Number.isFinite(df))) {
    throw new RangeError(`studentTQuantile: df must be a finite number > 0, got ${df}`);
  }
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  // By symmetry solve P(T > t) = q for t > 0 with q = min(p, 1 − p) (1 − p is exact for p ≥ 1/2).
  const q = p < 0.5 ? p : 1 - p;
  const logQ = Math.log(q);
  const g = (s: number) => logUpperTail(Math.exp(s), df) - logQ; // decreasing in s = ln t
  // Bracket the root in s = ln t: g(lo) > 0 ≥ g(hi).
  let lo = 0, hi = 0;
  if (g(0) > 0) {
    do {
      lo = hi;
      hi += Math.LN2;
    } while (g(hi) > 0);
  } else {
    do {
      hi = lo;
      lo -= Math.LN2;
    } while (g(lo) <= 0);
  }
  // Newton on g(s) with derivative g'(s) = −f(t)·t / P(T > t), bisecting when a step leaves
  // the bracket.
  let s = (lo + hi) / 2;
  for (let iter = 0; iter < 200; iter++) {
    const t = Math.exp(s);
    const logTail = logUpperTail(t, df);
    const value = logTail - logQ;
    if (value === 0) break;
    if (value > 0) lo = s;
    else hi = s;
    const slope = -Math.exp(logDensity(t, df) + s - logTail);
    let next = s - value / slope;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    const done = Math.abs(next - s) <= 1e-15 * Math.max(1, Math.abs(s)) ||
      hi - lo <= 1e-15 * Math.max(1, Math.abs(s));
    s = next;
    if (done) break;
  }
  const t = Math.exp(s);
  return p < 0.5 ? -t : t;
}

// ---------------------------------------------------------------------------------------
// Summaries over seeds and multiple comparisons.

/** A metric summarised over seeds. */
export interface SeedSummary {
  /** Number of seeds (values). */
  n: number;
  /** Mean of the values. */
  mean: number;
  /** Sample standard deviation (divisor n − 1); null for fewer than two values. */
  sd: number | null;
  /**
   * 95% Student-t interval of the mean, mean ± t₀.₉₇₅,ₙ₋₁ · sd / √n; null for fewer than two
   * values.
   */
  ci95: [number, number] | null;
}

/**
 * Mean, sample standard deviation and 95% Student-t confidence interval of the mean of
 * one metric over seeds (e.g. the test accuracy of one model for each training seed).
 *
 * @param values one value per seed, all finite, at least one
 * @returns the summary; `sd` and `ci95` are null for a single value
 * @throws {Error} when there are no values or a value is not finite
 */
export function summarizeSeeds(values: readonly number[]): SeedSummary {
  const n = values.length;
  if (n === 0) throw new Error("summarizeSeeds: no values (need at least one seed)");
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i])) {
      throw new Error(`summarizeSeeds: value ${i} is ${values[i]}; every value must be finite`);
    }
    sum += values[i];
  }
  const mean = sum / n;
  if (n < 2) return { n, mean, sd: null, ci95: null };
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (values[i] - mean) ** 2;
  const sd = Math.sqrt(squares / (n - 1));
  const half = (studentTQuantile(0.975, n - 1) * sd) / Math.sqrt(n);
  return { n, mean, sd, ci95: [mean - half, mean + half] };
}

/**
 * Holm–Bonferroni adjusted p-values, in the order given: with the p-values sorted
 * ascending, p₍ᵢ₎ · (m − i + 1) for i = 1…m, made monotone by a running maximum and capped
 * at 1. Rejecting where the adjusted value is ≤ α controls the family-wise error rate at α.
 *
 * @param pValues p-values in [0, 1] (any number of them; an empty list gives an empty list)
 * @returns the adjusted p-values, the i-th for the i-th input
 * @throws {Error} when a p-value is NaN or outside [0, 1]
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  for (let i = 0; i < m; i++) {
    const p = pValues[i];
    if (Number.isNaN(p)) throw new Error(`holmAdjust: p-value ${i} is NaN`);
    if (!(p >= 0 && p <= 1)) {
      throw new Error(`holmAdjust: p-value ${i} is ${p}; p-values must be in [0, 1]`);
    }
  }
  const order = Array.from({ length: m }, (_, i) => i).sort((i, j) =>
    pValues[i] - pValues[j] || i - j
  );
  const adjusted = new Array<number>(m);
  let running = 0;
  for (let rank = 0; rank < m; rank++) {
    const i = order[rank];
    running = Math.max(running, Math.min(1, pValues[i] * (m - rank)));
    adjusted[i] = running;
  }
  return adjusted;
}

// ---------------------------------------------------------------------------------------
// Paired bootstrap over seeds and test rows.

/** Options of {@link pairedBootstrap}. */
export interface PairedBootstrapOptions {
  /** Number of bootstrap resamples B (default 10,000). */
  resamples?: number;
  /** Seed of the random draws (default 1). */
  seed?: number;
  /** Confidence level of the percentile interval (default 0.95). */
  confidence?: number;
}

/** The result of {@link pairedBootstrap}. */
export interface PairedBootstrapResult {
  /** Observed difference of mean accuracy, A − B, averaged over seeds. */
  difference: number;
  /** Percentile bootstrap interval of the difference at the requested confidence. */
  ci: [number, number];
  /**
   * Two-sided bootstrap p-value of "no difference",
   * min(1, 2 · min((1 + #{d* ≤ 0}) / (B + 1), (1 + #{d* ≥ 0}) / (B + 1))).
   */
  pValue: number;
  /** Number of resamples B. */
  resamples: number;
  /** Number of seeds S (of model A). */
  seeds: number;
  /** Number of test rows N. */
  rows: number;
}

/** The options of a bootstrap with defaults filled in, validated (`name`: the caller's). */
function bootstrapOptions(
  options: PairedBootstrapOptions,
  name: string,
): Required<PairedBootstrapOptions> {
  const { resamples = 10_000, seed = 1, confidence = 0.95 } = options;
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new Error(`${name}: resamples must be an integer ≥ 1, got ${resamples}`);
  }
  if (!Number.isInteger(seed)) {
    throw new Error(`${name}: seed must be an integer, got ${seed}`);
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw new Error(`${name}: confidence must be in (0, 1), got ${confidence}`);
  }
  return { resamples, seed, confidence };
}

/**
 * The percentile interval of the resampled statistics (sorted here) and the two-sided p-value
 * from how many were ≤ 0 and ≥ 0.
 */
function bootstrapSummary(
  distribution: Float64Array,
  atMost: number,
  atLeast: number,
  confidence: number,
): { ci: [number, number]; pValue: number } {
  const resamples = distribution.length;
  distribution.sort();
  const alpha = (1 - confidence) / 2;
  return {
    ci: [quantileSorted(distribution, alpha), quantileSorted(distribution, 1 - alpha)],
    pValue: Math.min(
      1,
      2 * Math.min((1 + atMost) / (resamples + 1), (1 + atLeast) / (resamples + 1)),
    ),
  };
}

function checkCorrectness(x: ArrayLike<number>, name: string, n: number): void {
  if (x.length !== n) {
    throw new Error(`pairedBootstrap: ${name} has ${x.length} rows but a[0] has ${n}`);
  }
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (v !== 0 && v !== 1) {
      throw new Error(`pairedBootstrap: ${name}[${i}] is ${v}; correctness values must be 0 or 1`);
    }
  }
}

/** The q quantile of sorted values, linear between order statistics (np.percentile). */
function quantileSorted(sorted: Float64Array, q: number): number {
  const h = q * (sorted.length - 1);
  const i = Math.floor(h);
  if (i >= sorted.length - 1) return sorted[sorted.length - 1];
  return sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]);
}

/**
 * A sampler of Binomial(n, k/n): the number of n uniform draws from n rows that land on k
 * given rows. Inverts the CDF, tabulated once (one uniform per sample).
 */
function binomialSampler(n: number, k: number): (rng: Random) => number {
  if (k === 0) return () => 0;
  if (k === n) return () => n;
  const p = k / n;
  const logP = Math.log(p), logQ = Math.log1p(-p), logNFact = logGamma(n + 1);
  const cdf = new Float64Array(n + 1);
  let acc = 0;
  for (let m = 0; m <= n; m++) {
    acc += Math.exp(
      logNFact - logGamma(m + 1) - logGamma(n - m + 1) + m * logP + (n - m) * logQ,
    );
    cdf[m] = acc;
  }
  return (rng) => {
    const u = rng.next() * acc;
    let lo = 0, hi = n; // the first m with cdf[m] > u
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/**
 * Paired bootstrap over seeds and test rows together of the difference in mean accuracy
 * between model A and model B (see the module documentation for the method and why).
 *
 * `a[s][i]` is 1 when model A trained with seed s classified test row i correctly, else 0
 * (see {@link correctness}). `b` holds either as many arrays as `a` (seed s of B paired with
 * seed s of A) or one array, a deterministic baseline compared with every seed of A.
 *
 * Each resample draws S seed indices, then N row indices, with replacement from the
 * seeded {@link Random}. Rows where A and B agree for every seed cannot change the
 * statistic, so only the draws that land on the other K rows are made: their number from
 * its exact Binomial(N, K/N) distribution, then that many rows uniformly among the K (the
 * same distribution of resamples as drawing all N rows). The work per resample is about K
 * draws plus one pass over each drawn seed's disagreeing rows.
 *
 * @param a correctness of model A, one Uint8Array of 0/1 per seed, all of the same length
 * @param b correctness of model B: one array per seed of A, or a single array
 * @param options resamples (default 10,000), seed (default 1), confidence (default 0.95)
 * @returns the observed difference A − B, its percentile interval and two-sided p-value
 * @throws {Error} when `a` is empty, lengths differ, `b` has neither 1 nor `a.length`
 *   arrays, a value is not 0 or 1, or an option is out of range
 */
export function pairedBootstrap(
  a: readonly Uint8Array[],
  b: readonly Uint8Array[],
  options: PairedBootstrapOptions = {},
): PairedBootstrapResult {
  const { resamples, seed, confidence } = bootstrapOptions(options, "pairedBootstrap");
  const S = a.length;
  if (S === 0) throw new Error("pairedBootstrap: a holds no seeds (need at least one array)");
  if (b.length !== S && b.length !== 1) {
    throw new Error(
      `pairedBootstrap: b holds ${b.length} arrays; expected ${S} (one per seed of a) ` +
        "or 1 (a deterministic baseline)",
    );
  }
  const N = a[0].length;
  if (N === 0) throw new Error("pairedBootstrap: no test rows (a[0] is empty)");
  for (let s = 0; s < S; s++) checkCorrectness(a[s], `a[${s}]`, N);
  for (let s = 0; s < b.length; s++) checkCorrectness(b[s], `b[${s}]`, N);

  // A − B is the contrast of the two with weights +1 and −1 (the same draws).
  return contrastBootstrap([{ weight: 1, correct: a }, { weight: -1, correct: b }], {
    resamples,
    seed,
    confidence,
  });
}

/**
 * Per-row correctness of one model: 1 where its predicted label equals `labels[i]`, else 0.
 * The prediction is 1 when `proba[i] > 0.5` and 0 otherwise, the threshold convention of
 * `evaluateBinary` and `mcnemarTest` in `metrics.ts`: a score of exactly 0.5 is predicted 0
 * (the negative class).
 *
 * @param labels true labels, 0 or 1
 * @param proba probabilities of the positive class, one per label
 * @returns a Uint8Array of 0/1, the input of {@link pairedBootstrap}
 * @throws {Error} when lengths differ, a label is not 0 or 1, or a probability is NaN
 */
export function correctness(
  labels: Uint8Array,
  proba: Float32Array | readonly number[],
): Uint8Array {
  if (labels.length !== proba.length) {
    throw new Error(`correctness: ${labels.length} labels but ${proba.length} probabilities`);
  }
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i], p = proba[i];
    if (y !== 0 && y !== 1) throw new Error(`correctness: label ${i} is ${y}; must be 0 or 1`);
    if (Number.isNaN(p)) throw new Error(`correctness: probability ${i} is NaN`);
    out[i] = (p > 0.5 ? 1 : 0) === y ? 1 : 0;
  }
  return out;
}

/** One term of {@link contrastBootstrap}: a model's correctness and its weight. */
export interface ContrastTerm {
  /** Weight of the term's mean accuracy in the contrast (e.g. +1, −1). */
  weight: number;
  /**
   * Correctness (0/1 per test row): one array per seed, paired by index with the other
   * terms' seeds, or one array (a deterministic model, the same for every seed).
   */
  correct: readonly Uint8Array[];
}

/**
 * Paired bootstrap of a contrast of mean accuracies, Σ weightₜ · accuracyₜ, over seeds and test
 * rows together: every term is evaluated on the same resampled seeds and rows, so paired
 * structure is kept across all of them. With two terms of weight +1 and −1 it is
 * {@link pairedBootstrap} (which calls it so); with four it measures a
 * difference of differences, e.g. whether the gap between two models shrinks from one training
 * size to another on the same test rows.
 *
 * @param terms at least one term; every term has 1 or S arrays (S: the most any term has),
 *   all of the same length
 * @param options resamples (default 10,000), seed (default 1), confidence (default 0.95)
 * @returns the observed contrast, its percentile interval and two-sided p-value of "zero"
 * @throws {Error} when there are no terms, a weight is not finite, seed counts or lengths do
 *   not match, or a value is not 0 or 1
 */
export function contrastBootstrap(
  terms: readonly ContrastTerm[],
  options: PairedBootstrapOptions = {},
): PairedBootstrapResult {
  const { resamples, seed, confidence } = bootstrapOptions(options, "contrastBootstrap");
  if (terms.length === 0) throw new Error("contrastBootstrap: no terms");
  const S = Math.max(...terms.map((t) => t.correct.length));
  const N = terms[0].correct[0]?.length ?? 0;
  if (N === 0) throw new Error("contrastBootstrap: no test rows");
  terms.forEach((t, k) => {
    if (!Number.isFinite(t.weight)) {
      throw new Error(`contrastBootstrap: term ${k} has weight ${t.weight}`);
    }
    if (t.correct.length !== S && t.correct.length !== 1) {
      throw new Error(
        `contrastBootstrap: term ${k} has ${t.correct.length} seeds; expected ${S} or 1`,
      );
    }
    t.correct.forEach((c, s) => checkCorrectness(c, `term ${k} seed ${s}`, N));
  });
  // Per seed and row, the contrast's value v_s[i] = Σ weightₜ · correctₜ[s][i]. Only rows where
  // some seed's value is non-zero ("active" rows, K of them) can change the statistic. Of N
  // rows drawn uniformly with replacement, the number landing on active rows is
  // Binomial(N, K/N), and given that number they are uniform over the active rows; so a
  // resample draws that number from its exact distribution and then only that many rows,
  // which is the same distribution of row counts as drawing all N rows, at a fraction of the
  // cost.
  const values: Float64Array[] = [];
  for (let s = 0; s < S; s++) {
    const v = new Float64Array(N);
    for (const t of terms) {
      const c = t.correct.length === 1 ? t.correct[0] : t.correct[s];
      for (let i = 0; i < N; i++) v[i] += t.weight * c[i];
    }
    values.push(v);
  }
  const activeRows: number[] = [];
  for (let i = 0; i < N; i++) if (values.some((v) => v[i] !== 0)) activeRows.push(i);
  const K = activeRows.length;
  const active = values.map((v) => Float64Array.from(activeRows, (i) => v[i]));
  const denominator = S * N;
  const difference = active.reduce((sum, v) => sum + v.reduce((a, b) => a + b, 0), 0) /
    denominator;

  const rng = new Random(seed);
  const activeDraws = binomialSampler(N, K);
  const seedCounts = new Int32Array(S);
  const rowCounts = new Int32Array(K);
  const distribution = new Float64Array(resamples);
  // Exact zero tests on sums of weights: round to absorb floating-point residue.
  const tolerance = 1e-9 * Math.max(1, ...terms.map((t) => Math.abs(t.weight))) * N;
  let atMost = 0, atLeast = 0;
  for (let r = 0; r < resamples; r++) {
    seedCounts.fill(0);
    for (let k = 0; k < S; k++) seedCounts[rng.int(S)]++;
    rowCounts.fill(0);
    const M = activeDraws(rng);
    for (let k = 0; k < M; k++) rowCounts[rng.int(K)]++;
    let sum = 0;
    for (let s = 0; s < S; s++) {
      const w = seedCounts[s];
      if (w === 0) continue;
      const v = active[s];
      let t = 0;
      for (let j = 0; j < K; j++) t += rowCounts[j] * v[j];
      sum += w * t;
    }
    if (sum <= tolerance) atMost++;
    if (sum >= -tolerance) atLeast++;
    distribution[r] = sum / denominator;
  }
  const { ci, pValue } = bootstrapSummary(distribution, atMost, atLeast, confidence);
  return { difference, ci, pValue, resamples, seeds: S, rows: N };
}
