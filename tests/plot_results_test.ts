/**
 * lib/plot/results.ts: the figures of an experiment's results (shared by notebook 6 and the
 * report) on a small hand-made result set: one bar and interval per model (over seeds, or
 * the single seed's Wilson interval), one confusion matrix per model (its first seed) with
 * its counts, curves for the trained image models only, and accuracy against a numeric
 * swept value with one band per model.
 */
import { assert, assertEquals } from "@std/assert";
import { DOMParser } from "linkedom";
import type { ExperimentResults, VariantResults } from "../lib/experiment/mod.ts";
import {
  accuracyChart,
  confusionMatrices,
  type Figure,
  imageModelCurves,
  sweepChart,
} from "../lib/plot/mod.ts";

// deno-lint-ignore no-explicit-any
type Node = any;

function parse(figure: Figure): Node {
  return new DOMParser().parseFromString(figure.svg, "image/svg+xml");
}

function model(
  name: string,
  kind: string,
  correct: [number, number],
  history?: object[],
  ci95: [number, number] | null = null,
) {
  // 50 negatives and 50 positives; `correct` = [true negatives, true positives].
  const [tn, tp] = correct;
  const accuracy = (tn + tp) / 100;
  return {
    id: name,
    kind,
    input: kind === "baseline" ? "embedding" : "image",
    test: { accuracy: { n: ci95 ? 3 : 1, mean: accuracy, sd: null, ci95 } },
    runs: [{
      seed: 1,
      metrics: {
        test: {
          n: 100,
          accuracy,
          accuracyCI95: [accuracy - 0.09, accuracy + 0.08],
          confusion: { tn, fp: 50 - tn, fn: 50 - tp, tp },
        },
      },
      history,
    }],
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
    model("vgg19", "image", [35, 37], epochs, [0.6, 0.8]),
    model("ablation-permuted-pixels-vgg19", "ablation", [26, 25], epochs.slice(0, 1)),
  ],
} as unknown as VariantResults;

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
  // The interval is over seeds where there are several, else the seed's Wilson interval.
  const ends = [...chart.querySelectorAll('g[aria-label="rule"] line')].slice(0, 3).map((
    l: Node,
  ) => [Number(l.getAttribute("x1")), Number(l.getAttribute("x2"))]);
  const widths = ends.map(([a, b]: number[]) => Math.abs(b - a));
  // vgg19: 0.8 − 0.6 = 0.2 wide; the others 0.09 + 0.08 = 0.17 wide.
  assert(Math.abs(widths[1] / widths[0] - 0.2 / 0.17) < 0.02, JSON.stringify(widths));
});

Deno.test("confusion matrices: one per model, counts from the confusion record", () => {
  const figures = confusionMatrices(results);
  assertEquals(figures.map((f) => f.model), results.models.map((m) => m.id));
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
  const untrained = { ...results, models: results.models.slice(0, 1) } as VariantResults;
  assertEquals(imageModelCurves(untrained), undefined);
});

Deno.test("sweep chart: one line and one band per model over the swept values", () => {
  const variant = (size: number, shift: number) => ({
    values: { "data.trainSize": size },
    models: [
      { id: "a", test: { accuracy: { mean: 0.6 + shift, ci95: [0.55 + shift, 0.65 + shift] } } },
      { id: "b", test: { accuracy: { mean: 0.7, ci95: null } } },
    ],
  });
  const swept = {
    sweep: ["data.trainSize"],
    variants: [variant(1000, 0), variant(2000, 0.05), variant(5000, 0.1)],
  } as unknown as ExperimentResults;
  const doc = parse(sweepChart(swept, "data.trainSize")!);
  assertEquals(doc.querySelectorAll('g[aria-label="line"] path').length, 2);
  // Only "a" has intervals: one band.
  assertEquals(doc.querySelectorAll('g[aria-label="area"] path').length, 1);
  assertEquals(doc.querySelectorAll('g[aria-label="dot"] circle').length, 6);
  const text = { ...swept, variants: [{ ...variant(1, 0), values: { f: "bin" } }] };
  assertEquals(sweepChart(text as unknown as ExperimentResults, "f"), undefined);
});
