/**
 * Aggregation over seeds and the findings text, on synthetic jobs whose every number is
 * computed by hand: mean, standard deviation and Student-t interval over seeds, McNemar
 * discordant counts per seed, the paired difference, Holm's correction, the best image
 * model chosen on validation (not test), and sentences that name the right model,
 * direction and counts. Also: stored jobs survive a round trip and a damaged one is
 * recomputed, not read.
 */
import { assert, assertAlmostEquals, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import {
  aggregateModels,
  bestOnValidation,
  describeFindings,
  formatResultsTable,
  JOB_STAGE_VERSION,
  readJob,
  storeJob,
  verdict,
} from "../lib/experiment/mod.ts";
import type {
  Comparison,
  ExperimentInputs,
  FinishedJob,
  JobResult,
  ModelPlan,
  VariantResults,
} from "../lib/experiment/mod.ts";
import { storedJobOf, withAveragedLayouts } from "../lib/experiment/results.ts";
import { TRAINING_DEFAULTS } from "../lib/train/mod.ts";

const N = 20;
/** Labels 1, 0, 1, 0, … */
const yTest = Uint8Array.from({ length: N }, (_, i) => (i + 1) % 2);
const yVal = Uint8Array.from({ length: 10 }, (_, i) => (i + 1) % 2);

/** Probabilities correct on the rows in `correct`, wrong elsewhere. */
function proba(labels: Uint8Array, correct: (i: number) => boolean): Float32Array {
  return Float32Array.from(labels, (y, i) => (correct(i) === (y === 1) ? 0.9 : 0.1));
}

function imagePlan(id: string, seed: number, kind: "image" | "ablation" = "image"): ModelPlan {
  return {
    id,
    kind,
    family: "image",
    seed,
    input: { backbone: "darknet_reference", weights: "imagenet", pixels: "layout" },
    options: { ...TRAINING_DEFAULTS, seed },
    description: id,
  };
}

function job(plan: ModelPlan, test: Float32Array, validation: Float32Array): FinishedJob {
  const result: JobResult = {
    id: plan.id,
    trainableParams: 10,
    timings: { loadSeconds: 0, fitSeconds: 1, predictSeconds: 0 },
    details: {},
    validationProba: validation,
    testProba: test,
    history: [],
    epochsRun: 2,
    selectedEpoch: 1,
  };
  return {
    plan,
    stored: storedJobOf(plan, "k", result, { featureSeconds: 0, run: "synthetic", code: "test" }),
    computed: true,
  };
}

const logisticPlan: ModelPlan = {
  id: "logistic-regression",
  kind: "baseline",
  family: "logistic",
  seed: null,
  options: { l2: [1] },
  description: "logistic",
};

/**
 * Logistic regression right on test rows 0–15 (80%). Model "a" (3 seeds) right on rows
 * 0–17, 0–13, 0–15 (90%, 70%, 80%); validation 60% each. Model "b" right on 0–11 (60%)
 * for every seed but 90% on validation, so it is best on validation, not on test.
 */
function synthetic(): FinishedJob[] {
  const val = (k: number) => proba(yVal, (i) => i < k);
  return [
    job(logisticPlan, proba(yTest, (i) => i < 16), val(8)),
    job(imagePlan("a", 1), proba(yTest, (i) => i < 18), val(6)),
    job(imagePlan("a", 2), proba(yTest, (i) => i < 14), val(6)),
    job(imagePlan("a", 3), proba(yTest, (i) => i < 16), val(6)),
    job(imagePlan("b", 1), proba(yTest, (i) => i < 12), val(9)),
    job(imagePlan("b", 2), proba(yTest, (i) => i < 12), val(9)),
    job(imagePlan("b", 3), proba(yTest, (i) => i < 12), val(9)),
    job(
      imagePlan("ablation-permuted-pixels-a", 1, "ablation"),
      proba(yTest, (i) => i < 18),
      val(5),
    ),
    job(
      imagePlan("ablation-permuted-pixels-a", 2, "ablation"),
      proba(yTest, (i) => i < 18),
      val(5),
    ),
    job(
      imagePlan("ablation-permuted-pixels-a", 3, "ablation"),
      proba(yTest, (i) => i < 18),
      val(5),
    ),
  ];
}

const inputs = {
  labels: { train: new Uint8Array(0), validation: yVal, test: yTest },
} as unknown as ExperimentInputs;

Deno.test("aggregation over seeds: hand-computed summaries and per-seed McNemar counts", () => {
  const { models } = aggregateModels(synthetic(), inputs, "a");
  assertEquals(models.map((m) => m.id), [
    "logistic-regression",
    "a",
    "b",
    "ablation-permuted-pixels-a",
  ]);
  const a = models[1];
  assertEquals(a.runs.map((r) => r.seed), [1, 2, 3]);
  assertAlmostEquals(a.test.accuracy.mean, 0.8, 1e-12);
  assertAlmostEquals(a.test.accuracy.sd!, 0.1, 1e-12);
  // t(0.975, 2) = 4.302652729749464; half-width 4.3027 × 0.1 / √3.
  const half = 4.302652729749464 * 0.1 / Math.sqrt(3);
  assertAlmostEquals(a.test.accuracy.ci95![0], 0.8 - half, 1e-9);
  assertAlmostEquals(a.test.accuracy.ci95![1], 0.8 + half, 1e-9);
  assertEquals(a.runs.map((r) => r.versusLogistic!.discordant), [[2, 0], [0, 2], [0, 0]]);
  assertEquals(a.runs.map((r) => r.versusLogistic!.difference.toFixed(2)), [
    "0.10",
    "-0.10",
    "0.00",
  ]);
  // Logistic regression is fitted once and compared with nothing.
  assertEquals(models[0].runs.length, 1);
  assertEquals(models[0].versusLogistic, undefined);
  // Paired difference over seeds and rows: (0.1 − 0.1 + 0) / 3 = 0; b: 0.6 − 0.8 = −0.2.
  assertAlmostEquals(a.versusLogistic!.difference, 0, 1e-12);
  assertAlmostEquals(models[2].versusLogistic!.difference, -0.2, 1e-12);
  // b is wrong on 4 rows logistic regression gets right, in every seed and resample with
  // any of them: the interval is below zero.
  assert(models[2].versusLogistic!.ci95[1] < 0);
  assertAlmostEquals(models[2].validation!.accuracy.mean, 0.9, 1e-12);
});

Deno.test("aggregation: Holm correction within the family against logistic regression", () => {
  const { models, ablations } = aggregateModels(synthetic(), inputs, "a");
  const compared = models.filter((m) => m.versusLogistic);
  const p = compared.map((m) => m.versusLogistic!.pValue);
  const order = [...p.keys()].sort((i, j) => p[i] - p[j]);
  // Holm by hand: sorted p × (m − rank), running maximum, capped at 1.
  let running = 0;
  const expected = new Array(p.length);
  order.forEach((i, rank) => {
    running = Math.max(running, Math.min(1, p[i] * (p.length - rank)));
    expected[i] = running;
  });
  assertEquals(compared.map((m) => m.versusLogistic!.pHolm), expected);
  // The ablation against its intact model, paired by seed: (0 + 0.2 + 0.1) / 3 = 0.1.
  assertEquals(ablations.length, 1);
  assertEquals(ablations[0].against, "a");
  assertAlmostEquals(ablations[0].difference, 0.1, 1e-12);
  assertEquals(ablations[0].pHolm, ablations[0].pValue); // a family of one
});

Deno.test("findings: best image model on validation, right direction and counts", () => {
  const { models, ablations } = aggregateModels(synthetic(), inputs, "a");
  const variant = { models, ablations } as unknown as VariantResults;
  assertEquals(bestOnValidation(variant)?.id, "b"); // test-best would be "a"
  const lines = describeFindings(variant);
  const best = lines.find((l) => l.includes("Best image model"))!;
  assertStringIncludes(best, "**b**");
  // 4 discordant rows of 20 per seed: the uncorrected interval excludes zero, but after
  // Holm's correction over the two models the p-value does not reach 5%.
  assertStringIncludes(
    best,
    "cannot tell b from logistic regression at the 5% level after Holm's correction (the " +
      "uncorrected 95% interval excludes zero)",
  );
  assertStringIncludes(best, "0/4 (seed 1), 0/4 (seed 2), 0/4 (seed 3)");
  assertStringIncludes(best, "-20.0");
  const count = lines.find((l) => l.includes("image models"))!;
  assertStringIncludes(count, "Of 2 image models, 0 are above logistic regression and 0 below");
  const ablation = lines.find((l) => l.includes("pixels permuted"))!;
  assertStringIncludes(ablation, "+10.0");
  // The table has one row per model.
  const table = formatResultsTable({ ...variant, label: "" } as VariantResults);
  assertEquals(table.split("\n").length, 2 + models.length);
});

Deno.test("verdict: significance after Holm's correction, not the uncorrected interval", () => {
  const c = (difference: number, ci95: [number, number], pHolm: number) =>
    ({ difference, ci95, pHolm }) as Comparison;
  assertEquals(
    verdict(c(0.015, [0.001, 0.029], 0.01), ["x", "y"]),
    "x is above y (Holm-corrected p < 0.05)",
  );
  assertEquals(
    verdict(c(-0.05, [-0.06, -0.04], 0.002), ["x", "y"]),
    "x is below y (Holm-corrected p < 0.05)",
  );
  // The uncorrected interval excludes zero, the corrected p does not reach 5%: not a finding.
  assertEquals(
    verdict(c(0.015, [0.001, 0.029], 0.076), ["x", "y"]),
    "this run cannot tell x from y at the 5% level after Holm's correction (the uncorrected 95% " +
      "interval excludes zero)",
  );
  assertEquals(
    verdict(c(-0.008, [-0.023, 0.007], 0.3), ["x", "y"]),
    "this run cannot tell x from y at the 5% level after Holm's correction",
  );
});

Deno.test("stored jobs: round trip; a damaged file is reported and recomputed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const finished = synthetic()[1];
    const path = join(dir, "jobs", "a-s1-k.json");
    await storeJob(path, finished.stored);
    const lines: string[] = [];
    const back = await readJob(path, (l) => lines.push(l));
    assertEquals(back, JSON.parse(JSON.stringify(finished.stored)));
    // One byte changed at the same length: a probability digit.
    const text = await Deno.readTextFile(path);
    const at = text.indexOf("0.9");
    await Deno.writeTextFile(path, text.slice(0, at) + "0.8" + text.slice(at + 3));
    assertEquals(await readJob(path, (l) => lines.push(l)), undefined);
    assertStringIncludes(lines.at(-1)!, path);
    assertStringIncludes(lines.at(-1)!, "damaged");
    // Truncated.
    await Deno.writeTextFile(path, text.slice(0, 100));
    assertEquals(await readJob(path, (l) => lines.push(l)), undefined);
    assertStringIncludes(lines.at(-1)!, path);
    // Made by another version of the job stage: recomputed, and the log says so.
    await storeJob(path, { ...finished.stored, stageVersion: JOB_STAGE_VERSION - 1 });
    assertEquals(await readJob(path, (l) => lines.push(l)), undefined);
    assertStringIncludes(lines.at(-1)!, `this code is version ${JOB_STAGE_VERSION}`);
    assertEquals(await readJob(join(dir, "none.json"), (l) => lines.push(l)), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("averaged layouts (MRep): the model is the mean of its layouts' probabilities", () => {
  const layoutPlan = (id: string, k: number, seed: number): ModelPlan => {
    const plan = imagePlan(`${id}.layout${k}`, seed) as Extract<ModelPlan, { family: "image" }>;
    return { ...plan, input: { ...plan.input, representation: k - 1 } };
  };
  // Three layouts of model "m", one seed: each alone right on 12, 14 and 10 of 20 rows, wrong
  // on different rows; their mean is right wherever two of three are right.
  const right = [(i: number) => i < 12, (i: number) => i >= 6, (i: number) => i < 4 || i >= 14];
  const jobs = [
    job(logisticPlan, proba(yTest, (i) => i < 16), proba(yVal, (i) => i < 8)),
    ...right.map((r, k) => job(layoutPlan("m", k + 1, 7), proba(yTest, r), proba(yVal, r))),
  ];
  const all = withAveragedLayouts(jobs, ["layout1", "layout2", "layout3"]);
  assertEquals(all.map((j) => j.plan.id), [
    "logistic-regression",
    "m",
    "m.layout1",
    "m.layout2",
    "m.layout3",
  ]);
  const mean = all[1];
  assertEquals(mean.stored.job, "m@7");
  assertEquals(mean.plan.family === "image" && mean.plan.input.representation, undefined);
  // Hand-computed: 0.9/0.1 per layout; a row right in k layouts has mean p = (0.9k + 0.1(3−k))/3.
  for (let i = 0; i < N; i++) {
    const k = right.filter((r) => r(i)).length;
    const expected = yTest[i] === 1 ? (0.9 * k + 0.1 * (3 - k)) / 3 : (0.1 * k + 0.9 * (3 - k)) / 3;
    assertAlmostEquals(mean.stored.result.testProba[i], expected, 1e-6);
  }
  const { models } = aggregateModels(all, inputs, "m");
  const majority = Array.from({ length: N }, (_, i) => right.filter((r) => r(i)).length >= 2)
    .filter(Boolean).length / N;
  assertAlmostEquals(models.find((m) => m.id === "m")!.test.accuracy.mean, majority, 1e-12);
  // A seed missing one layout gets no mean model (never a mean of fewer layouts).
  const partial = withAveragedLayouts(jobs.slice(0, 3), ["layout1", "layout2", "layout3"]);
  assertEquals(partial.map((j) => j.plan.id), ["logistic-regression", "m.layout1", "m.layout2"]);
});
