import { assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  binomialTwoSided,
  confusionMatrix,
  evaluateBinary,
  mcnemarTest,
  rocAuc,
  wilsonInterval,
} from "../lib/eval/metrics.ts";

Deno.test("confusion matrix, accuracy, precision, recall and F1 match a hand count", () => {
  //            0  1  2  3  4  5  6  7  8  9
  const y = Uint8Array.from([1, 1, 1, 1, 0, 0, 0, 0, 0, 1]);
  const p = [0.9, 0.8, 0.4, 0.6, 0.3, 0.7, 0.1, 0.2, 0.55, 0.45];
  // predicted (> 0.5): 1 1 0 1 0 1 0 0 1 0
  // tp: rows 0, 1, 3 → 3; fn: rows 2, 9 → 2; fp: rows 5, 8 → 2; tn: rows 4, 6, 7 → 3
  const m = evaluateBinary(y, p);
  assertEquals(m.confusion, { tn: 3, fp: 2, fn: 2, tp: 3 });
  assertEquals(m.n, 10);
  assertAlmostEquals(m.accuracy, 6 / 10, 1e-12);
  assertAlmostEquals(m.precision, 3 / 5, 1e-12);
  assertAlmostEquals(m.recall, 3 / 5, 1e-12);
  assertAlmostEquals(m.f1, 3 / 5, 1e-12);
  // AUC by counting pairs: positives {0.9, 0.8, 0.4, 0.6, 0.45}, negatives
  // {0.3, 0.7, 0.1, 0.2, 0.55}. Pairs with positive > negative:
  // 0.9: 5, 0.8: 5, 0.4: 3 (0.3, 0.1, 0.2), 0.6: 4 (all but 0.7), 0.45: 3 → 20 of 25.
  assertAlmostEquals(m.rocAuc, 20 / 25, 1e-12);
});

Deno.test("a second hand-computed confusion matrix, with an unbalanced set", () => {
  const yTrue = Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1]);
  const yPred = [0, 0, 0, 0, 1, 1, 1, 0];
  assertEquals(confusionMatrix(yTrue, yPred), { tn: 4, fp: 2, fn: 1, tp: 1 });
  const m = evaluateBinary(yTrue, yPred.map((v) => (v ? 0.9 : 0.1)));
  assertAlmostEquals(m.accuracy, 5 / 8, 1e-12);
  assertAlmostEquals(m.precision, 1 / 3, 1e-12);
  assertAlmostEquals(m.recall, 1 / 2, 1e-12);
  assertAlmostEquals(m.f1, (2 * (1 / 3) * (1 / 2)) / (1 / 3 + 1 / 2), 1e-12);
});

Deno.test("ROC-AUC counts tied scores as one half", () => {
  const y = Uint8Array.from([1, 0, 1, 0]);
  // every positive ties with every negative → 0.5
  assertAlmostEquals(rocAuc(y, [0.5, 0.5, 0.5, 0.5]), 0.5, 1e-12);
  // positives {0.8, 0.4}, negatives {0.4, 0.1}: pairs 1 + 1 + 0.5 + 1 = 3.5 of 4
  assertAlmostEquals(rocAuc(y, [0.8, 0.4, 0.4, 0.1]), 3.5 / 4, 1e-12);
  assertEquals(Number.isNaN(rocAuc(Uint8Array.from([1, 1]), [0.2, 0.3])), true);
});

Deno.test("ROC-AUC equals the pair-counting definition on random scores", () => {
  let s = 7;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const n = 300;
  const y = Uint8Array.from({ length: n }, () => (rand() < 0.4 ? 1 : 0));
  const scores = Array.from({ length: n }, () => Math.round(rand() * 20) / 20); // many ties
  let wins = 0, pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (y[i] === 1 && y[j] === 0) {
        pairs++;
        wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
      }
    }
  }
  assertAlmostEquals(rocAuc(y, scores), wins / pairs, 1e-12);
});

Deno.test("Wilson interval matches hand-computed values", () => {
  // 81 of 100, z = 1.96: centre (0.81 + 1.96²/200)/(1 + 1.96²/100),
  // half-width 1.96/(1 + 1.96²/100)·√(0.81·0.19/100 + 1.96²/40000)
  const z = 1.959963984540054;
  const centre = (0.81 + z * z / 200) / (1 + z * z / 100);
  const half = (z / (1 + z * z / 100)) * Math.sqrt(0.81 * 0.19 / 100 + z * z / 40000);
  const [lo, hi] = wilsonInterval(81, 100);
  assertAlmostEquals(lo, centre - half, 1e-12);
  assertAlmostEquals(hi, centre + half, 1e-12);
  // Worked by hand to four places for 81/100: [0.7222, 0.8749]
  assertAlmostEquals(lo, 0.7222, 1e-4);
  assertAlmostEquals(hi, 0.8749, 1e-4);
  // All correct: the upper bound is 1, the lower bound n/(n + z²)
  const [lo2, hi2] = wilsonInterval(50, 50);
  assertAlmostEquals(hi2, 1, 1e-12);
  assertAlmostEquals(lo2, 50 / (50 + z * z), 1e-12);
  assertThrows(() => wilsonInterval(5, 4));
});

Deno.test("metrics reject mismatched lengths and labels other than 0/1", () => {
  assertThrows(() => evaluateBinary(Uint8Array.from([0, 1]), [0.1]), Error, "2 labels");
  assertThrows(() => confusionMatrix(Uint8Array.from([2]), [0]), Error, "0 or 1");
});

Deno.test("McNemar's exact test counts discordant rows and matches hand-computed p-values", () => {
  // binomial tails at p = 1/2, by hand: P(X ≤ 1 | n = 10) = 11/1024
  assertAlmostEquals(binomialTwoSided(1, 10), 22 / 1024, 1e-12);
  assertAlmostEquals(binomialTwoSided(9, 10), 22 / 1024, 1e-12);
  assertAlmostEquals(binomialTwoSided(0, 5), 2 / 32, 1e-12);
  assertAlmostEquals(binomialTwoSided(2, 5), 1, 1e-12); // 2·(1 + 5 + 10)/32 = 1
  assertEquals(binomialTwoSided(0, 0), 1);
  const y = Uint8Array.from([1, 1, 0, 0, 1, 0]);
  const a = [0.9, 0.8, 0.2, 0.6, 0.7, 0.1]; // right on rows 0, 1, 2, 4, 5
  const b = [0.2, 0.8, 0.7, 0.4, 0.3, 0.1]; // right on rows 1, 3, 5
  const t = mcnemarTest(y, a, b);
  assertEquals(t.onlyFirstCorrect, 3); // rows 0, 2, 4
  assertEquals(t.onlySecondCorrect, 1); // row 3
  assertAlmostEquals(t.pValue, binomialTwoSided(1, 4), 1e-12); // 2·(1 + 4)/16 = 0.625
  assertAlmostEquals(t.pValue, 0.625, 1e-12);
});
