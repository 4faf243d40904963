/**
 * lib/eval/stats.ts against closed forms, hand-computed values and SciPy/NumPy
 * (tests/_stats_reference.py, run with /usr/bin/python3 and Debian's python3-scipy).
 * Bootstrap intervals are compared within Monte-Carlo tolerance: both sides are seeded, but
 * draw different random numbers.
 */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { fileURLToPath } from "node:url";
import { evaluateBinary } from "../lib/eval/metrics.ts";
import {
  contrastBootstrap,
  correctness,
  holmAdjust,
  pairedBootstrap,
  studentTQuantile,
  summarizeSeeds,
} from "../lib/eval/stats.ts";
import { Random } from "../lib/random.ts";

const PYTHON = "/usr/bin/python3";
const REFERENCE = fileURLToPath(new URL("./_stats_reference.py", import.meta.url));

function scipyAvailable(): boolean {
  try {
    const probe = new Deno.Command(PYTHON, { args: ["-c", "import scipy.stats, numpy"] });
    if (probe.outputSync().success) return true;
  } catch {
    // missing
  }
  if (Deno.env.get("CI")) throw new Error(`CI needs ${PYTHON} with SciPy (python3-scipy)`);
  console.warn(`skipping: ${PYTHON} with SciPy is missing (Debian: python3-scipy)`);
  return false;
}
const ignore = !scipyAvailable();

/** Runs one request of tests/_stats_reference.py. */
async function reference<T>(request: Record<string, unknown>): Promise<T> {
  const child = new Deno.Command(PYTHON, {
    args: [REFERENCE],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/**
 * Correctness of `skills.length` seeds of one model on `rows` shared test rows: a row has a
 * difficulty shared by every model and seed, each seed adds its own noise and is right when
 * difficulty + noise < skill (skill 1.04 ≈ 85% correct).
 */
function seedsOf(skills: number[], rows: number, seed: number): Uint8Array[] {
  const difficulty = new Random(12345);
  const z = Float64Array.from({ length: rows }, () => difficulty.normal());
  const rng = new Random(seed);
  return skills.map((skill) => Uint8Array.from(z, (v) => (v + 0.6 * rng.normal() < skill ? 1 : 0)));
}

// ---------------------------------------------------------------------------------------
// Student's t quantile and seed summaries

/** Asserts |actual − expected| ≤ rel · max(1, |expected|). */
function assertClose(actual: number, expected: number, rel: number, msg: string): void {
  assertAlmostEquals(actual, expected, rel * Math.max(1, Math.abs(expected)), msg);
}

Deno.test("studentTQuantile: closed forms for df 1, 2 and 4", () => {
  for (const p of [1e-9, 0.001, 0.025, 0.1, 0.3, 0.45, 0.55, 0.7, 0.9, 0.975, 0.999, 1 - 1e-9]) {
    // df 1 (Cauchy): tan(π (p − 1/2)), written −1/tan(π p) below 1/2 and 1/tan(π (1 − p))
    // above it, which stay accurate in the tails.
    const t1 = p < 0.5 ? -1 / Math.tan(Math.PI * p) : 1 / Math.tan(Math.PI * (1 - p));
    assertClose(studentTQuantile(p, 1), t1, 1e-12, `df 1, p ${p}`);
    // df 2: (2p − 1) / √(2p(1 − p)).
    const t2 = (2 * p - 1) / Math.sqrt(2 * p * (1 - p));
    assertClose(studentTQuantile(p, 2), t2, 1e-12, `df 2, p ${p}`);
    // df 4: sign(p − 1/2) · 2 √(q − 1), q = cos(arccos(√α) / 3) / √α, α = 4p(1 − p).
    const alpha = 4 * p * (1 - p);
    const q = Math.cos(Math.acos(Math.sqrt(alpha)) / 3) / Math.sqrt(alpha);
    const t4 = Math.sign(p - 0.5) * 2 * Math.sqrt(q - 1);
    assertClose(studentTQuantile(p, 4), t4, 1e-12, `df 4, p ${p}`);
  }
  assertEquals(studentTQuantile(0.5, 7), 0);
  assertEquals(studentTQuantile(0, 3), -Infinity);
  assertEquals(studentTQuantile(1, 3), Infinity);
  // symmetric
  assertEquals(studentTQuantile(0.025, 9), -studentTQuantile(0.975, 9));
});

Deno.test("studentTQuantile: rejects p outside [0, 1] and df ≤ 0", () => {
  assertThrows(() => studentTQuantile(1.5, 3), RangeError, "p must be in [0, 1]");
  assertThrows(() => studentTQuantile(NaN, 3), RangeError, "p must be in [0, 1]");
  assertThrows(() => studentTQuantile(0.9, 0), RangeError, "df must be");
  assertThrows(() => studentTQuantile(0.9, Infinity), RangeError, "df must be");
});

Deno.test({
  name: "studentTQuantile matches scipy.stats.t.ppf",
  ignore,
  fn: async () => {
    const cases: [number, number][] = [];
    for (const df of [1, 2, 3, 4, 10, 30, 1000, 2.5]) {
      for (const p of [1e-10, 0.001, 0.025, 0.05, 0.3, 0.5001, 0.8, 0.95, 0.975, 0.995, 0.9995]) {
        cases.push([p, df]);
      }
    }
    const expected = await reference<number[]>({ task: "t_ppf", cases });
    for (let k = 0; k < cases.length; k++) {
      const [p, df] = cases[k];
      const t = studentTQuantile(p, df);
      // SciPy 1.10's t.ppf (Cephes stdtrit) is itself good to about 1e-9 relative.
      assertClose(t, expected[k], 1e-8, `p ${p}, df ${df}`);
    }
  },
});

Deno.test("summarizeSeeds: a hand-computed case", () => {
  // [1, 2, 3, 4]: mean 2.5, sd √(5/3), t(0.975, 3) = 3.182446305284 (tables)
  const s = summarizeSeeds([1, 2, 3, 4]);
  assertEquals(s.n, 4);
  assertEquals(s.mean, 2.5);
  assertAlmostEquals(s.sd!, Math.sqrt(5 / 3), 1e-14);
  const half = (3.182446305284 * Math.sqrt(5 / 3)) / 2;
  assertAlmostEquals(s.ci95![0], 2.5 - half, 1e-11);
  assertAlmostEquals(s.ci95![1], 2.5 + half, 1e-11);
  // two values: mean ± tan(0.475π) · |x − y| / 2 (t(0.975, 1) = tan(0.475π))
  const two = summarizeSeeds([0.8, 0.9]);
  assertAlmostEquals(two.ci95![0], 0.85 - Math.tan(0.475 * Math.PI) * 0.05, 1e-12);
  assertAlmostEquals(two.ci95![1], 0.85 + Math.tan(0.475 * Math.PI) * 0.05, 1e-12);
  // one value: no spread, no interval; equal values: a zero-width interval
  assertEquals(summarizeSeeds([0.83]), { n: 1, mean: 0.83, sd: null, ci95: null });
  assertEquals(summarizeSeeds([0.5, 0.5, 0.5]), { n: 3, mean: 0.5, sd: 0, ci95: [0.5, 0.5] });
  assertThrows(() => summarizeSeeds([]), Error, "no values");
  assertThrows(() => summarizeSeeds([0.8, NaN]), Error, "value 1 is NaN");
});

Deno.test({
  name: "summarizeSeeds matches NumPy and scipy.stats.t.interval",
  ignore,
  fn: async () => {
    for (
      const values of [
        [0.851, 0.862, 0.848],
        [0.851, 0.862, 0.848, 0.857, 0.855],
        [0.7, 0.9],
        [0.9012, 0.8875, 0.8993, 0.9101, 0.8954, 0.9032, 0.8921, 0.8987, 0.9066, 0.9003],
      ]
    ) {
      const ref = await reference<{ mean: number; sd: number; ci95: [number, number] }>({
        task: "seed_summary",
        values,
      });
      const s = summarizeSeeds(values);
      assertEquals(s.n, values.length);
      assertAlmostEquals(s.mean, ref.mean, 1e-14);
      assertAlmostEquals(s.sd!, ref.sd, 1e-14);
      assertAlmostEquals(s.ci95![0], ref.ci95[0], 1e-9, `lower, ${values}`);
      assertAlmostEquals(s.ci95![1], ref.ci95[1], 1e-9, `upper, ${values}`);
    }
  },
});

// ---------------------------------------------------------------------------------------
// Holm–Bonferroni

Deno.test("holmAdjust: a hand-computed case, monotone and capped at 1", () => {
  // sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → max 0.06
  const adjusted = holmAdjust([0.01, 0.04, 0.03, 0.005]);
  const expected = [0.03, 0.06, 0.06, 0.02];
  for (let i = 0; i < 4; i++) assertAlmostEquals(adjusted[i], expected[i], 1e-15);
  // monotone: 0.3·3 = 0.9, then 0.4·2 = 0.8 and 0.6·1 are raised to 0.9
  assertEquals(holmAdjust([0.3, 0.4, 0.6]), [0.3 * 3, 0.3 * 3, 0.3 * 3]);
  // capped: 0.5·3 = 1.5 → 1, and so the rest
  assertEquals(holmAdjust([0.5, 0.9, 0.7]), [1, 1, 1]);
  assertEquals(holmAdjust([0.001, 0.5, 0.9]), [0.003, 1, 1]);
  assertEquals(holmAdjust([]), []);
  assertEquals(holmAdjust([0.2]), [0.2]);
  // ties keep their input order and get equal values
  assertEquals(holmAdjust([0.01, 0.01]), [0.02, 0.02]);
  // on random p-values: never below the raw value, at most 1, monotone in the raw value
  const rng = new Random(3);
  const raw = Array.from({ length: 40 }, () => rng.next() ** 3);
  const adj = holmAdjust(raw);
  const order = raw.map((_, i) => i).sort((i, j) => raw[i] - raw[j]);
  for (let k = 0; k < raw.length; k++) {
    assert(adj[k] >= raw[k] && adj[k] <= 1);
    if (k > 0) assert(adj[order[k]] >= adj[order[k - 1]], "not monotone");
  }
  assertThrows(() => holmAdjust([0.1, NaN]), Error, "p-value 1 is NaN");
  assertThrows(() => holmAdjust([1.2]), Error, "must be in [0, 1]");
});

// ---------------------------------------------------------------------------------------
// Paired bootstrap

Deno.test({
  name: "pairedBootstrap with one seed matches scipy.stats.bootstrap (paired, percentile)",
  ignore,
  fn: async () => {
    const [a] = seedsOf([1.04], 2000, 1);
    const [b] = seedsOf([0.84], 2000, 2);
    const res = pairedBootstrap([a], [b]);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff += a[i] - b[i];
    assertEquals(res.difference, diff / 2000);
    assertEquals([res.resamples, res.seeds, res.rows], [10_000, 1, 2000]);
    const ref = await reference<{ ci: [number, number]; se: number }>({
      task: "bootstrap_scipy",
      a: Array.from(a),
      b: Array.from(b),
      n_resamples: 10_000,
      seed: 7,
    });
    // Each endpoint's Monte-Carlo sd is about 3e-4 on either side (measured over 20 seeds;
    // se of the statistic ≈ 0.009, B = 10,000), so about 4e-4 for their difference.
    assertAlmostEquals(res.ci[0], ref.ci[0], 0.002, "lower");
    assertAlmostEquals(res.ci[1], ref.ci[1], 0.002, "upper");
    assert(res.pValue < 0.01, `p ${res.pValue}`);
  },
});

Deno.test({
  name: "pairedBootstrap over 3 seeds matches an independent NumPy two-level bootstrap",
  ignore,
  fn: async () => {
    // Seeds differ in skill, so seed-to-seed variation matters as much as the rows do.
    const a = seedsOf([1.2, 0.85, 1.05], 2000, 3);
    for (
      const b of [
        seedsOf([0.95, 0.8, 0.7], 2000, 4), // paired seed by seed
        seedsOf([0.84], 2000, 5), // one deterministic baseline
      ]
    ) {
      const res = pairedBootstrap(a, b);
      const ref = await reference<{
        difference: number;
        ci: [number, number];
        pValue: number;
        se: number;
      }>({
        task: "bootstrap_two_level",
        a: a.map((x) => Array.from(x)),
        b: b.map((x) => Array.from(x)),
        n_resamples: 10_000,
        seed: 11,
        confidence: 0.95,
      });
      const what = `${b.length} B arrays`;
      assertAlmostEquals(res.difference, ref.difference, 1e-15, what);
      assertEquals([res.seeds, res.rows], [3, 2000]);
      // With 3 seeds the bootstrap distribution is a lumpy mixture over the 10 multisets of
      // seeds (se of the statistic ≈ 0.02); the Monte-Carlo sd of each endpoint is up to
      // 6e-4 and of the p-value up to 2e-3 on either side (measured over 20 seeds).
      assertAlmostEquals(res.ci[0], ref.ci[0], 0.004, `lower, ${what}`);
      assertAlmostEquals(res.ci[1], ref.ci[1], 0.004, `upper, ${what}`);
      assertAlmostEquals(res.pValue, ref.pValue, 0.012, `p-value, ${what}`);
      // wider than a bootstrap over the rows of any one seed, which ignores seed variation
      for (let s = 0; s < 3; s++) {
        const one = pairedBootstrap([a[s]], [b.length === 1 ? b[0] : b[s]]);
        assert(res.ci[1] - res.ci[0] > one.ci[1] - one.ci[0], `seed ${s}, ${what}`);
      }
    }
  },
});

Deno.test("pairedBootstrap: identical models, a model right wherever the other is wrong", () => {
  const a = seedsOf([1.0, 1.1, 0.9], 1000, 6);
  const same = pairedBootstrap(a, a.map((x) => x.slice()), { resamples: 500 });
  assertEquals(same.difference, 0);
  assertEquals(same.ci, [0, 0]);
  assertEquals(same.pValue, 1);

  // B wrong on every 10th row, right elsewhere; A right everywhere: +0.1 exactly, and no
  // resample is ≤ 0, so the p-value is at its minimum 2 / (B + 1).
  const perfect = new Uint8Array(1000).fill(1);
  const tenthWrong = Uint8Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? 0 : 1));
  const better = pairedBootstrap([perfect, perfect, perfect], [tenthWrong], { resamples: 2000 });
  assertEquals(better.difference, 0.1);
  assertEquals(better.pValue, 2 / 2001);
  assert(better.ci[0] > 0.07 && better.ci[1] < 0.13, `ci ${better.ci}`);
  // and the other way round
  const worse = pairedBootstrap([tenthWrong], [perfect], { resamples: 2000 });
  assertEquals(worse.difference, -0.1);
  assertEquals(worse.pValue, 2 / 2001);

  // one row: every resample is that row
  const one = pairedBootstrap([Uint8Array.of(1)], [Uint8Array.of(0)], { resamples: 99 });
  assertEquals([one.difference, one.ci, one.pValue], [1, [1, 1], 2 / 100]);
});

Deno.test("pairedBootstrap: one baseline equals it replicated; a seed fixes the result", () => {
  const a = seedsOf([1.0, 1.1, 0.95], 3000, 8);
  const [base] = seedsOf([0.9], 3000, 9);
  const once = pairedBootstrap(a, [base], { resamples: 3000, seed: 5 });
  const replicated = pairedBootstrap(a, [base, base, base], { resamples: 3000, seed: 5 });
  assertEquals(once, replicated);
  assertEquals(pairedBootstrap(a, [base], { resamples: 3000, seed: 5 }), once);
  const other = pairedBootstrap(a, [base], { resamples: 3000, seed: 6 });
  assertEquals(other.difference, once.difference);
  assert(other.ci[0] !== once.ci[0] || other.ci[1] !== once.ci[1], "another seed, same draws");
  // confidence: a 50% interval lies inside the 95% one
  const half = pairedBootstrap(a, [base], { resamples: 3000, seed: 5, confidence: 0.5 });
  assert(half.ci[0] > once.ci[0] && half.ci[1] < once.ci[1]);
  assertEquals(pairedBootstrap(a, [base]).resamples, 10_000);
});

Deno.test("pairedBootstrap: bad inputs say what is wrong", () => {
  const x = Uint8Array.of(1, 0, 1), y = Uint8Array.of(0, 0, 1);
  assertThrows(() => pairedBootstrap([], [y]), Error, "a holds no seeds");
  assertThrows(() => pairedBootstrap([x, x, x], [y, y]), Error, "b holds 2 arrays; expected 3");
  assertThrows(() => pairedBootstrap([x], [Uint8Array.of(1, 0)]), Error, "b[0] has 2 rows");
  assertThrows(() => pairedBootstrap([x, Uint8Array.of(1)], [y]), Error, "a[1] has 1 rows");
  assertThrows(() => pairedBootstrap([x], [Uint8Array.of(0, 2, 1)]), Error, "b[0][1] is 2");
  assertThrows(
    () => pairedBootstrap([new Uint8Array(0)], [new Uint8Array(0)]),
    Error,
    "no test rows",
  );
  assertThrows(() => pairedBootstrap([x], [y], { resamples: 0 }), Error, "resamples");
  assertThrows(() => pairedBootstrap([x], [y], { confidence: 1 }), Error, "confidence");
  assertThrows(() => pairedBootstrap([x], [y], { seed: 1.5 }), Error, "seed");
});

// ---------------------------------------------------------------------------------------
// Correctness

Deno.test("correctness: a score of exactly 0.5 is predicted 0, as in evaluateBinary", () => {
  const labels = Uint8Array.of(0, 1, 1, 0, 1, 0);
  const proba = Float32Array.of(0.5, 0.5, 0.51, 0.49, 0.2, 0.9);
  // predicted:                  0    0    1     0     0    1
  assertEquals(Array.from(correctness(labels, proba)), [1, 0, 1, 1, 0, 0]);
  assertEquals(Array.from(correctness(labels, Array.from(proba))), [1, 0, 1, 1, 0, 0]);
  // its mean is evaluateBinary's accuracy, ties at 0.5 included
  const rng = new Random(4);
  const y = Uint8Array.from({ length: 500 }, () => (rng.next() < 0.5 ? 1 : 0));
  const p = Float32Array.from({ length: 500 }, () => Math.round(rng.next() * 4) / 4);
  const ok = correctness(y, p);
  assertEquals(ok.reduce((s, v) => s + v, 0) / 500, evaluateBinary(y, p).accuracy);
  assertThrows(() => correctness(labels, [0.5]), Error, "6 labels but 1 probabilities");
  assertThrows(() => correctness(Uint8Array.of(2), [0.5]), Error, "label 0 is 2");
  assertThrows(() => correctness(Uint8Array.of(1), [NaN]), Error, "probability 0 is NaN");
});

// ---------------------------------------------------------------------------------------
// Contrast bootstrap (the study's comparisons across runs)

Deno.test({
  name: "contrastBootstrap: a difference of differences matches an independent NumPy bootstrap",
  ignore,
  fn: async () => {
    // (image − logistic) at a large size minus (image − logistic) at a small size; the two
    // logistic fits are deterministic (one array), the image models have three seeds each.
    const big = seedsOf([1.0, 1.05, 0.95], 2000, 31);
    const [logBig] = seedsOf([1.1], 2000, 32);
    const small = seedsOf([0.7, 0.8, 0.75], 2000, 33);
    const [logSmall] = seedsOf([1.0], 2000, 34);
    const terms = [
      { weight: 1, correct: big },
      { weight: -1, correct: [logBig] },
      { weight: -1, correct: small },
      { weight: 1, correct: [logSmall] },
    ];
    const res = contrastBootstrap(terms);
    // By hand: the mean of each term, weighted.
    const mean = (arrays: Uint8Array[]) =>
      arrays.reduce((s, x) => s + x.reduce((t, v) => t + v, 0), 0) / (arrays.length * 2000);
    const expected = mean(big) - mean([logBig]) - mean(small) + mean([logSmall]);
    assertAlmostEquals(res.difference, expected, 1e-12);
    const ref = await reference<{ difference: number; ci: [number, number]; pValue: number }>({
      task: "contrast_two_level",
      terms: terms.map((t) => ({ weight: t.weight, correct: t.correct.map((c) => Array.from(c)) })),
      n_resamples: 10_000,
      seed: 13,
      confidence: 0.95,
    });
    assertAlmostEquals(res.difference, ref.difference, 1e-12);
    // Monte-Carlo error as in the two-level pairedBootstrap test above (3 seeds).
    assertAlmostEquals(res.ci[0], ref.ci[0], 0.006, "lower");
    assertAlmostEquals(res.ci[1], ref.ci[1], 0.006, "upper");
    assertAlmostEquals(res.pValue, ref.pValue, 0.015, "p-value");
  },
});

Deno.test("contrastBootstrap: cancelling terms, bad input", () => {
  const a = seedsOf([1.0, 0.9], 500, 41);
  // The same model twice with opposite weights: exactly zero, and p = 1.
  const zero = contrastBootstrap([{ weight: 0.5, correct: a }, { weight: -0.5, correct: a }], {
    resamples: 300,
  });
  assertEquals([zero.difference, zero.ci, zero.pValue], [0, [0, 0], 1]);
  assertThrows(() => contrastBootstrap([]), Error, "no terms");
  assertThrows(
    () =>
      contrastBootstrap([{ weight: 1, correct: a }, { weight: -1, correct: [a[0], a[0], a[1]] }]),
    Error,
    "term 0 has 2 seeds; expected 3 or 1",
  );
  assertThrows(
    () => contrastBootstrap([{ weight: NaN, correct: a }]),
    Error,
    "weight NaN",
  );
  assertThrows(
    () => contrastBootstrap([{ weight: 1, correct: [Uint8Array.of(0, 2)] }]),
    Error,
    "0 or 1",
  );
});
