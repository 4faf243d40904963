/**
 * The figures of an experiment's results, shared by the notebooks and the `reproduce`
 * report: test accuracy over seeds with intervals, confusion matrices, training curves, and
 * accuracy against a swept setting with interval bands.
 *
 * @module
 */
import type { ExperimentResults, VariantResults } from "../experiment/mod.ts";
import { barChart, confusionMatrix, lineChart, trainingCurves } from "./charts.ts";
import type { LinePoint } from "./charts.ts";
import type { Figure } from "./figure.ts";

/** Bar colours by model kind. */
const KIND_COLORS = { baseline: "#59a14f", image: "#4e79a7", ablation: "#e15759" } as const;

/**
 * Mean test accuracy of every model over its seeds with the 95% interval over seeds (one
 * seed: its Wilson interval), coloured by kind; dashed line at chance.
 */
export function accuracyChart(variant: VariantResults): Figure {
  return barChart(
    variant.models.map((m) => {
      const ci = m.test.accuracy.ci95 ?? m.runs[0].metrics.test.accuracyCI95;
      return {
        label: m.id,
        value: m.test.accuracy.mean,
        low: ci[0],
        high: ci[1],
        group: m.kind,
      };
    }),
    {
      title: `Test accuracy, mean over seeds with 95% intervals (${variant.data.test} reviews; ` +
        `dashed: chance)`,
      xLabel: "test accuracy",
      domain: [0, 1],
      reference: 0.5,
      colors: KIND_COLORS,
    },
  );
}

/** One confusion matrix per model, of its first seed (rows true labels, columns predictions). */
export function confusionMatrices(variant: VariantResults): { model: string; figure: Figure }[] {
  return variant.models.map((m) => {
    const run = m.runs[0];
    const c = run.metrics.test.confusion;
    return {
      model: m.id,
      figure: confusionMatrix([[c.tn, c.fp], [c.fn, c.tp]], ["negative", "positive"], {
        title: run.seed === null ? m.id : `${m.id} (seed ${run.seed})`,
        cellSize: 60,
      }),
    };
  });
}

/**
 * Loss and accuracy per epoch of every trained image model's first seed (`undefined` when
 * none has any).
 */
export function imageModelCurves(variant: VariantResults): Figure | undefined {
  const trained = variant.models.filter((m) => m.input === "image" && m.runs[0].history?.length);
  if (trained.length === 0) return undefined;
  return trainingCurves(
    trained.map((m) => ({
      model: m.id.replace("ablation-", "abl. "),
      history: m.runs[0].history!,
    })),
    {
      title: `Image models (first seed): loss and accuracy per epoch`,
      width: Math.max(640, 220 * trained.length),
    },
  );
}

/**
 * Mean test accuracy of each model against the swept value of `field`, with the 95%
 * interval over seeds as a band (`undefined` when the run swept nothing numeric).
 */
export function sweepChart(results: ExperimentResults, field: string): Figure | undefined {
  const points: LinePoint[] = [];
  for (const v of results.variants) {
    const x = v.values[field];
    if (typeof x !== "number") return undefined;
    for (const m of v.models) {
      const s = m.test.accuracy;
      points.push({
        x,
        y: s.mean,
        series: m.id,
        ...(s.ci95 ? { low: s.ci95[0], high: s.ci95[1] } : {}),
      });
    }
  }
  if (points.length === 0) return undefined;
  return lineChart(points, {
    title: `Test accuracy against ${field} (mean over seeds, band: 95% interval)`,
    xLabel: field,
    yLabel: "test accuracy",
  });
}
