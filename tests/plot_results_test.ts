/**
 * lib/plot/results.ts: the figures of an experiment's results (shared by notebook 6 and the
 * report) on a small hand-made result set: one bar and interval per model, one confusion
 * matrix per model with its counts, curves for the trained image models only.
 */
import { assert, assertEquals } from "@std/assert";
import { DOMParser } from "linkedom";
import type { ExperimentResults } from "../lib/eval/mod.ts";
import {
  accuracyChart,
  confusionMatrices,
  type Figure,
  imageModelCurves,
} from "../lib/plot/mod.ts";

// deno-lint-ignore no-explicit-any
type Node = any;

function parse(figure: Figure): Node {
  return new DOMParser().parseFromString(figure.svg, "image/svg+xml");
}

function model(name: string, kind: string, correct: [number, number], history?: object[]) {
  // 50 negatives and 50 positives; `correct` = [true negatives, true positives].
  const [tn, tp] = correct;
  const accuracy = (tn + tp) / 100;
  return {
    name,
    kind,
    input: kind === "baseline" ? "embedding" : "image",
    metrics: {
      test: {
        n: 100,
        accuracy,
        accuracyCI95: [accuracy - 0.09, accuracy + 0.08],
        confusion: { tn, fp: 50 - tn, fn: 50 - tp, tp },
      },
    },
    history,
  };
}

const epochs = [1, 2].map((epoch) => ({
  epoch,
  trainLoss: 0.7 / epoch,
  trainAccuracy: 0.5 + 0.1 * epoch,
  validationLoss: 0.72 / epoch,
  validationAccuracy: 0.5 + 0.05 * epoch,
}));
const results = {
  data: { test: 100 },
  models: [
    model("logistic-regression", "baseline", [40, 42]),
    model("vgg19", "image", [35, 37], epochs),
    model("ablation-permuted-pixels-vgg19", "ablation", [26, 25], epochs.slice(0, 1)),
  ],
} as unknown as ExperimentResults;

Deno.test("accuracy chart: one bar and one interval per model, accuracies printed", () => {
  const doc = parse(accuracyChart(results));
  const parts = [...doc.documentElement.children].filter((c: Node) => c.tagName === "svg");
  const chart = parts[parts.length - 1];
  assertEquals(chart.querySelectorAll('g[aria-label="bar"] rect').length, 3);
  // 3 intervals, the axis rule at 0 and the dashed chance line.
  assertEquals(chart.querySelectorAll('g[aria-label="rule"] line').length, 5);
  const printed = [...chart.querySelectorAll('g[aria-label="text"] text')].map((t: Node) =>
    t.textContent
  );
  assertEquals(printed, ["0.820", "0.720", "0.510"]);
});

Deno.test("confusion matrices: one per model, counts from the confusion record", () => {
  const figures = confusionMatrices(results);
  assertEquals(figures.map((f) => f.model), results.models.map((m) => m.name));
  const doc = parse(figures[1].figure);
  const parts = [...doc.documentElement.children].filter((c: Node) => c.tagName === "svg");
  const counts = [...parts[parts.length - 1].querySelectorAll('g[aria-label="text"] text')]
    .map((t: Node) => t.textContent);
  assertEquals(counts, ["35", "15", "13", "37"]);
});

Deno.test("image model curves: trained image models only; none without histories", () => {
  const doc = parse(imageModelCurves(results)!);
  const texts = [...doc.querySelectorAll("text")].map((t: Node) => t.textContent);
  assert(texts.includes("vgg19") && texts.includes("abl. permuted-pixels-vgg19"));
  assert(!texts.includes("logistic-regression"));
  // 2 models × (loss, accuracy) × (train, validation) lines.
  assertEquals(doc.querySelectorAll('g[aria-label="line"] path').length, 8);
  const untrained = { ...results, models: results.models.slice(0, 1) } as ExperimentResults;
  assertEquals(imageModelCurves(untrained), undefined);
});
