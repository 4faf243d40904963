/** lib/random.ts: determinism and distribution properties of the seeded generator. */
import { assert, assertAlmostEquals, assertEquals, assertNotEquals } from "@std/assert";
import { Random } from "../lib/random.ts";

const draw = (seed: number, n: number) => {
  const random = new Random(seed);
  return Array.from({ length: n }, () => random.next());
};

Deno.test("the same seed gives the same sequence; different seeds differ", () => {
  assertEquals(draw(42, 100), draw(42, 100));
  assertNotEquals(draw(42, 100), draw(43, 100));
  assertNotEquals(draw(0, 100), draw(1, 100));
  // Seeds are taken as 32-bit unsigned integers.
  assertEquals(draw(-1, 10), draw(0xffffffff, 10));
});

Deno.test("next() is uniform on [0, 1): range, mean, variance, histogram", () => {
  const n = 100_000;
  const xs = draw(7, n);
  assert(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
  // Standard errors: mean 0.0009, variance 0.0003; allow 5 of them.
  assertAlmostEquals(mean, 0.5, 0.005);
  assertAlmostEquals(variance, 1 / 12, 0.0015);
  const bins = new Array(10).fill(0);
  for (const x of xs) bins[Math.floor(x * 10)]++;
  // Chi-square with 9 degrees of freedom: P(> 27.9) = 0.001.
  const chi2 = bins.reduce((a, c) => a + (c - n / 10) ** 2 / (n / 10), 0);
  assert(chi2 < 27.9, `chi-square ${chi2.toFixed(1)} for ${bins}`);
  // Consecutive draws are uncorrelated (lag-1 autocorrelation ~ N(0, 1/n)).
  let cov = 0;
  for (let i = 1; i < n; i++) cov += (xs[i] - mean) * (xs[i - 1] - mean);
  assertAlmostEquals(cov / (n - 1) / variance, 0, 0.016);
});

Deno.test("int(n) covers 0..n-1 and nothing else", () => {
  const random = new Random(3);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 7_000; i++) {
    const k = random.int(7);
    assert(Number.isInteger(k) && k >= 0 && k < 7, `int(7) gave ${k}`);
    counts[k]++;
  }
  assert(counts.every((c) => c > 850 && c < 1150), `counts ${counts}`);
});

Deno.test("normal() has mean 0 and variance 1", () => {
  const random = new Random(5);
  const n = 50_000;
  const xs = Array.from({ length: n }, () => random.normal());
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / n;
  assertAlmostEquals(mean, 0, 0.025);
  assertAlmostEquals(variance, 1, 0.035);
  const within1 = xs.filter((x) => Math.abs(x) < 1).length / n;
  assertAlmostEquals(within1, 0.6827, 0.01);
  assert(xs.every(Number.isFinite));
});

Deno.test("shuffle and permutation give permutations, every position equally likely", () => {
  const random = new Random(9);
  const items = ["a", "b", "c", "d", "e"];
  const shuffled = random.shuffle(items.slice());
  assertEquals(shuffled.slice().sort(), items);
  const p = new Random(1).permutation(1000);
  assertEquals(p.slice().sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  assertEquals(new Random(1).permutation(1000), p);
  assertEquals(new Random(1).permutation(0), []);
  // Where element 0 lands over many shuffles of 4: uniform over the 4 positions.
  const positions = [0, 0, 0, 0];
  for (let t = 0; t < 8_000; t++) positions[random.permutation(4).indexOf(0)]++;
  assert(positions.every((c) => c > 1800 && c < 2200), `positions ${positions}`);
});
