/**
 * Figures for notebooks and reports. Charts are SVG drawn by Observable Plot into a virtual
 * DOM (linkedom); images are PNG. Every figure shows inline in a Deno Jupyter notebook (it
 * implements the kernel's `Symbol.for("Jupyter.display")` protocol) and saves to a file.
 *
 * ```ts ignore
 * import { histogram } from "../lib/plot/mod.ts";
 * const figure = histogram([3, 5, 5, 8], { title: "lengths", xLabel: "words" });
 * await figure.save("results/lengths.svg");
 * figure; // last expression of a notebook cell: shown inline
 * ```
 *
 * @module
 */
export {
  type ChartOptions,
  Figure,
  type FigureInit,
  type InteractiveSpec,
  jupyterDisplay,
  type MimeBundle,
  type PlotlyTrace,
  PngImage,
} from "./figure.ts";
export {
  barChart,
  type BarChartOptions,
  type BarDatum,
  confusionMatrix,
  type ConfusionMatrixOptions,
  type EpochMetrics,
  featureMapChannels,
  featureMapGrid,
  type FeatureMapGridOptions,
  type Grid,
  type GroupOptions,
  heatmap,
  type HeatmapOptions,
  histogram,
  type HistogramOptions,
  imageGrid,
  type ImageGridOptions,
  intervalChart,
  type IntervalChartOptions,
  type IntervalDatum,
  lineChart,
  type LineChartOptions,
  type LinePoint,
  type Points2D,
  type Polygon,
  scatter,
  type ScatterOptions,
  trainingCurves,
  type TrainingHistory,
} from "./charts.ts";
export {
  colorLookup,
  type ColorOptions,
  type GrayImage,
  imageAt,
  imageToPng,
  type PngOptions,
  type RgbImage,
  rgbImageToPng,
} from "./png.ts";
export { type Cell, Table, table, type TableOptions } from "./table.ts";
export { interactiveSpecs, showInteractive } from "./interactive.ts";
export type { FeatureBatch, ImageBatch } from "../types.ts";
export { accuracyChart, confusionMatrices, imageModelCurves, sweepChart } from "./results.ts";
