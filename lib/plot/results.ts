/**
 * The figures of an experiment's results, shared by notebook 6 and the `reproduce` report:
 * test accuracy with intervals, confusion matrices, and training curves.
 *
 * @module
 */
import type { ExperimentResults } from "../eval/mod.ts";
import { barChart, confusionMatrix, trainingCurves } from "./charts.ts";
import type { Figure } from "./figure.ts";

/** Bar colours by model kind. */
const KIND_COLORS = { baseline: "#59a14f", image: "#4e79a7", ablation: "#e15759" } as const;

/** Test accuracy of every model with its 95% interval, coloured by kind; dashed line at chance. */
export function accuracyChart(results: ExperimentResults): Figure {
  return barChart(
    results.models.map((m) => ({
      label: m.name,
      value: m.metrics.test.accuracy,
      low: m.metrics.test.accuracyCI95[0],
      high: m.metrics.test.accuracyCI95[1],
      group: m.kind,
    })),
    {
      title: `Test accuracy with 95% intervals (${results.data.test} reviews; dashed: chance)`,
      xLabel: "test accuracy",
      domain: [0, 1],
      reference: 0.5,
      colors: KIND_COLORS,
    },
  );
}

/** One confusion matrix per model (rows true labels, columns predictions at 0.5). */
export function confusionMatrices(results: ExperimentResults): { model: string; figure: Figure }[] {
  return results.models.map((m) => {
    const c = m.metrics.test.confusion;
    return {
      model: m.name,
      figure: confusionMatrix([[c.tn, c.fp], [c.fn, c.tp]], ["negative", "positive"], {
        title: m.name,
        cellSize: 60,
      }),
    };
  });
}

/** Loss and accuracy per epoch of every trained image model (`undefined` when none has any). */
export function imageModelCurves(results: ExperimentResults): Figure | undefined {
  const trained = results.models.filter((m) => m.input === "image" && m.history?.length);
  if (trained.length === 0) return undefined;
  return trainingCurves(
    trained.map((m) => ({ model: m.name.replace("ablation-", "abl. "), history: m.history! })),
    {
      title: "Image models: loss and accuracy per epoch",
      width: Math.max(640, 220 * trained.length),
    },
  );
}
