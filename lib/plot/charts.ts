/**
 * The charts the notebooks and the report need, drawn with Observable Plot into a virtual DOM
 * (linkedom): histogram, bar chart with intervals, line chart, scatter with overlay polygons,
 * heatmap, confusion matrix and image grid. Each returns a {@link Figure} (SVG) that also
 * carries a plotly.js description for the opt-in interactive view.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import type { FeatureBatch, ImageBatch } from "../types.ts";
import {
  type ChartOptions,
  Figure,
  finishFigure,
  type PlotlyTrace,
  renderLegend,
  renderPlot,
} from "./figure.ts";
import {
  colorDomain,
  type ColorOptions,
  defaultScheme,
  type GrayImage,
  imageAt,
  imageToPng,
} from "./png.ts";

/** Colouring of rows by a category (e.g. the sentiment label). */
export interface GroupOptions {
  /** One category per row: a string, or a number code named by `groupNames`. */
  groups?: ArrayLike<number | string>;
  /** Names of number codes, index = code (e.g. `["negative", "positive"]` for labels). */
  groupNames?: readonly string[];
  /** Fixed colours by category name; others come from the `tableau10` scheme. */
  colors?: Readonly<Record<string, string>>;
  /** Title of the colour legend (default "group"). */
  legendLabel?: string;
}

const DEFAULT_COLORS = [
  "#4e79a7",
  "#f28e2c",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc949",
  "#af7aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ab",
];

function groupNamesOf(options: GroupOptions, n: number): string[] | undefined {
  const groups = options.groups;
  if (!groups) return undefined;
  if (groups.length !== n) {
    throw new Error(`groups has ${groups.length} entries, the data has ${n} rows`);
  }
  const names = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const g = groups[i];
    names[i] = typeof g === "number" ? options.groupNames?.[g] ?? String(g) : g;
  }
  return names;
}

function categoryDomain(names: readonly string[], preferred?: readonly string[]): string[] {
  const present = new Set(names);
  const ordered = [...new Set(preferred ?? [])].filter((name) => present.has(name));
  const rest = [...present].filter((name) => !ordered.includes(name)).sort();
  return [...ordered, ...rest];
}

function ordinalColor(
  domain: readonly string[],
  colors: Readonly<Record<string, string>> = {},
  label?: string,
): Plot.ScaleOptions {
  return {
    type: "ordinal",
    domain: [...domain],
    range: domain.map((name, i) => colors[name] ?? DEFAULT_COLORS[i % DEFAULT_COLORS.length]),
    label,
  };
}

function axisLabel(text: string | undefined, fallback: string | null): string | null {
  return text === undefined ? fallback : text;
}

// ---------------------------------------------------------------------------------------------
// Histogram

/** Options of {@link histogram}. */
export interface HistogramOptions extends ChartOptions, GroupOptions {
  /**
   * Number of bins (approximate, "nice" edges covering the data) or explicit bin edges.
   * Explicit bins are half-open `[a, b)`: values below the first or at/after the last edge
   * are not counted. Default 40.
   */
  thresholds?: number | readonly number[];
}

/**
 * A histogram of `values`, stacked by group when `groups` is given (e.g. review lengths by
 * sentiment). One bar (`rect`) per non-empty bin and group.
 */
export function histogram(values: ArrayLike<number>, options: HistogramOptions = {}): Figure {
  const names = groupNamesOf(options, values.length);
  const rows = Array.from({ length: values.length }, (_, i) => ({
    value: values[i],
    group: names?.[i] ?? "",
  }));
  const domain = names ? categoryDomain(names, options.groupNames) : undefined;
  const color = domain
    ? ordinalColor(domain, options.colors, options.legendLabel ?? "group")
    : undefined;
  const width = options.width ?? 640;
  const thresholds = options.thresholds ?? 40;
  const chart = renderPlot({
    width,
    height: options.height ?? 320,
    marginLeft: 56,
    x: { label: axisLabel(options.xLabel, "value") },
    y: { label: axisLabel(options.yLabel, "count"), grid: true },
    color,
    marks: [
      Plot.rectY(
        rows,
        Plot.binX({ y: "count" }, {
          x: "value",
          fill: domain ? "group" : "#4e79a7",
          thresholds: (typeof thresholds === "number" ? thresholds : [...thresholds]) as number,
          insetLeft: 0.5,
          insetRight: 0.5,
        } as Plot.BinXInputs<Plot.RectYOptions>),
      ),
      Plot.ruleY([0]),
    ],
  });
  const traces: PlotlyTrace[] = (domain ?? [""]).map((group) => ({
    type: "histogram",
    name: group || "values",
    x: rows.filter((row) => row.group === group).map((row) => row.value),
  }));
  return finishFigure(chart, {
    title: options.title,
    legend: color ? renderLegend(color, width) : undefined,
    interactive: {
      data: traces,
      layout: {
        title: options.title,
        barmode: "stack",
        xaxis: { title: options.xLabel ?? "value" },
        yaxis: { title: options.yLabel ?? "count" },
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Bar chart with intervals

/** One bar of {@link barChart}. */
export interface BarDatum {
  /** The bar's name (unique), shown on the category axis. */
  label: string;
  /** Bar length (e.g. an accuracy). */
  value: number;
  /** Lower end of the interval, if any. */
  low?: number;
  /** Upper end of the interval, if any. */
  high?: number;
  /** Colour category (e.g. "image model", "baseline", "ablation"). */
  group?: string;
}

/** Options of {@link barChart}. */
export interface BarChartOptions extends ChartOptions {
  /** Value axis range; default from 0 to a little above the largest interval end. */
  domain?: readonly [number, number];
  /** A vertical reference line (e.g. 0.5 = chance accuracy). */
  reference?: number;
  /** Decimals of the value printed beside each bar (default 3); `null` prints none. */
  decimals?: number | null;
  /** Fixed colours by group name. */
  colors?: Readonly<Record<string, string>>;
}

/**
 * Horizontal bars in the given order, with an interval (rule with end ticks) wherever `low`
 * and `high` are given, and the value printed beside each bar.
 */
export function barChart(bars: readonly BarDatum[], options: BarChartOptions = {}): Figure {
  const labels = bars.map((bar) => bar.label);
  if (new Set(labels).size !== labels.length) throw new Error("bar labels must be unique");
  const rows = bars.map((bar) => ({ ...bar, group: bar.group ?? "" }));
  const withInterval = rows.filter((bar) => bar.low !== undefined && bar.high !== undefined);
  const groups = [...new Set(rows.map((bar) => bar.group))].filter((g) => g !== "");
  const color = groups.length > 0 ? ordinalColor(groups, options.colors, "group") : undefined;
  const top = Math.max(0, ...rows.map((bar) => Math.max(bar.value, bar.high ?? -Infinity)));
  const domain = options.domain ?? [0, top * 1.08 || 1];
  const longest = Math.max(0, ...labels.map((label) => label.length));
  const width = options.width ?? 640;
  const decimals = options.decimals === undefined ? 3 : options.decimals;
  const marks: Plot.Markish[] = [
    Plot.barX(rows, {
      y: "label",
      x: "value",
      fill: color ? "group" : "#4e79a7",
      insetTop: 2,
      insetBottom: 2,
    }),
    Plot.ruleY(withInterval, { y: "label", x1: "low", x2: "high", strokeWidth: 1.5 }),
    Plot.tickX(withInterval, { y: "label", x: "low", insetTop: 5, insetBottom: 5 }),
    Plot.tickX(withInterval, { y: "label", x: "high", insetTop: 5, insetBottom: 5 }),
    Plot.ruleX([domain[0]]),
  ];
  if (decimals !== null) {
    marks.push(Plot.text(rows, {
      y: "label",
      x: (bar: BarDatum) => Math.max(bar.value, bar.high ?? -Infinity),
      text: (bar: BarDatum) => bar.value.toFixed(decimals),
      textAnchor: "start",
      dx: 4,
    }));
  }
  return horizontalFigure(rows, marks, options, {
    trace: { type: "bar", orientation: "h" },
    height: 40 + 26 * rows.length,
    marginLeft: Math.min(260, 12 + 6.2 * longest),
    marginRight: 48,
    domain,
    color,
    width,
  });
}

/** A category row of {@link horizontalFigure}: its value and interval (if any). */
interface HorizontalRow {
  label: string;
  value: number;
  low?: number;
  high?: number;
}

/**
 * The figure of rows drawn horizontally on a category axis (bar and interval charts): the
 * reference line, the plot, title and legend, and the plotly twin (`trace` with error bars).
 */
function horizontalFigure(
  rows: readonly HorizontalRow[],
  marks: Plot.Markish[],
  options: ChartOptions & { reference?: number },
  layout: {
    trace: PlotlyTrace;
    height: number;
    marginLeft: number;
    marginRight: number;
    domain: readonly [number, number];
    color: Plot.ScaleOptions | undefined;
    width: number;
  },
): Figure {
  const { domain, color, width } = layout;
  if (options.reference !== undefined) {
    marks.push(Plot.ruleX([options.reference], { stroke: "#888", strokeDasharray: "4,3" }));
  }
  const labels = rows.map((row) => row.label);
  const chart = renderPlot({
    width,
    height: options.height ?? layout.height,
    marginLeft: layout.marginLeft,
    marginRight: layout.marginRight,
    x: { label: axisLabel(options.xLabel, "value"), domain: [...domain], grid: true },
    y: { label: axisLabel(options.yLabel, null), domain: labels },
    color,
    marks,
  });
  return finishFigure(chart, {
    title: options.title,
    legend: color ? renderLegend(color, width) : undefined,
    interactive: {
      data: [{
        ...layout.trace,
        y: labels,
        x: rows.map((row) => row.value),
        error_x: {
          type: "data",
          symmetric: false,
          array: rows.map((row) => (row.high ?? row.value) - row.value),
          arrayminus: rows.map((row) => row.value - (row.low ?? row.value)),
        },
      }],
      layout: {
        title: options.title,
        xaxis: { title: options.xLabel ?? "value", range: [...domain] },
        yaxis: { autorange: "reversed" },
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Intervals with their points (paired differences)

/** One row of {@link intervalChart}: an estimate, its interval and the values behind it. */
export interface IntervalDatum {
  /** The row's name (unique), shown on the category axis. */
  label: string;
  /** The estimate (e.g. a mean difference). */
  value: number;
  /** Lower end of its interval. */
  low: number;
  /** Upper end of its interval. */
  high: number;
  /** The values it summarises (e.g. one per seed), drawn as small dots. */
  points?: readonly number[];
  /** Colour category (e.g. "significant"). */
  group?: string;
}

/** Options of {@link intervalChart}. */
export interface IntervalChartOptions extends ChartOptions {
  /** Value axis range; default from the data with a little room. */
  domain?: readonly [number, number];
  /** A vertical reference line (e.g. 0: no difference). */
  reference?: number;
  /** Fixed colours by group name. */
  colors?: Readonly<Record<string, string>>;
}

/**
 * One row per estimate: its interval as a rule with end ticks, the estimate as a large dot and
 * the values behind it (e.g. each seed's paired difference) as small hollow dots on the same
 * row, so the spread the interval summarises stays visible.
 */
export function intervalChart(
  rows: readonly IntervalDatum[],
  options: IntervalChartOptions = {},
): Figure {
  const labels = rows.map((row) => row.label);
  if (new Set(labels).size !== labels.length) throw new Error("interval labels must be unique");
  // With groups, a row without one is drawn as "other" (Plot drops rows without a colour).
  const grouped = rows.some((row) => row.group !== undefined);
  const data = rows.map((row) => ({ ...row, group: row.group ?? (grouped ? "other" : "") }));
  const points = data.flatMap((row) =>
    (row.points ?? []).map((value) => ({ label: row.label, value, group: row.group }))
  );
  const groups = [...new Set(data.map((row) => row.group))].filter((g) => g !== "");
  const color = groups.length > 0 ? ordinalColor(groups, options.colors, "group") : undefined;
  const ends = [
    ...data.flatMap((row) => [row.low, row.high, row.value]),
    ...points.map((p) => p.value),
    ...(options.reference !== undefined ? [options.reference] : []),
  ];
  const pad = 0.05 * ((Math.max(...ends) - Math.min(...ends)) || 1);
  const domain = options.domain ?? [Math.min(...ends) - pad, Math.max(...ends) + pad];
  const longest = Math.max(0, ...labels.map((label) => label.length));
  const width = options.width ?? 720;
  const stroke = color ? "group" : "#4e79a7";
  const marks: Plot.Markish[] = [
    Plot.ruleY(data, { y: "label", x1: "low", x2: "high", strokeWidth: 2, stroke }),
    Plot.tickX(data, { y: "label", x: "low", insetTop: 6, insetBottom: 6, stroke }),
    Plot.tickX(data, { y: "label", x: "high", insetTop: 6, insetBottom: 6, stroke }),
    Plot.dot(points, { y: "label", x: "value", r: 2.5, stroke, fill: "none", dy: -7 }),
    Plot.dot(data, { y: "label", x: "value", r: 4.5, fill: color ? "group" : "#4e79a7" }),
  ];
  return horizontalFigure(data, marks, options, {
    trace: { type: "scatter", mode: "markers" },
    height: 44 + 30 * rows.length,
    marginLeft: Math.min(360, 12 + 6.2 * longest),
    marginRight: 24,
    domain,
    color,
    width,
  });
}

// ---------------------------------------------------------------------------------------------
// Line chart

/** One point of {@link lineChart}. */
export interface LinePoint {
  /** Horizontal position (e.g. epoch). */
  x: number;
  /** Vertical position (e.g. loss). */
  y: number;
  /** The line it belongs to (e.g. "train", "validation"); coloured. */
  series: string;
  /** Panel column (e.g. the model); one panel per value, side by side. */
  facet?: string;
  /** Panel row (e.g. the metric); one row of panels per value. */
  row?: string;
  /** Lower end of an interval band around the line (drawn when both ends are given). */
  low?: number;
  /** Upper end of the interval band. */
  high?: number;
}

/** Options of {@link lineChart}. */
export interface LineChartOptions extends ChartOptions {
  /** Fixed colours by series name. */
  colors?: Readonly<Record<string, string>>;
  /** Vertical range; default from the data (each row of panels shares it). */
  yDomain?: readonly [number, number];
}

/**
 * Lines with a dot at every point, coloured by series, in panels by `facet` (columns) and
 * `row` (rows; each row has its own vertical scale, labelled with the row's name). One
 * `path` per series and panel, one `circle` per point. Integer x values (epochs) get integer
 * ticks. Points with `low` and `high` get a translucent band of their series' colour.
 */
export function lineChart(points: readonly LinePoint[], options: LineChartOptions = {}): Figure {
  const rows = points.map((p) => ({ ...p, facet: p.facet ?? "", row: p.row ?? "" }));
  const series = categoryDomain(rows.map((p) => p.series));
  const facets = categoryDomain(rows.map((p) => p.facet), rows.map((p) => p.facet));
  const panelRows = categoryDomain(rows.map((p) => p.row), rows.map((p) => p.row));
  const color = ordinalColor(series, options.colors, "series");
  const width = options.width ?? Math.max(640, 240 * facets.length);
  const faceted = facets.length > 1 || facets[0] !== "";
  const rowFaceted = panelRows.length > 1 || panelRows[0] !== "";
  const xs = rows.map((p) => p.x);
  const xMin = xs.length ? Math.min(...xs) : 0;
  const xMax = xs.length ? Math.max(...xs) : 1;
  const xDomain = [xMin, xMax > xMin ? xMax : xMin + 1];
  const integerTicks = xs.every(Number.isInteger) && xDomain[1] - xDomain[0] <= 20
    ? Array.from({ length: xDomain[1] - xDomain[0] + 1 }, (_, i) => xDomain[0] + i)
    : undefined;
  const rowHeight = options.height !== undefined
    ? Math.max(120, Math.floor(options.height / panelRows.length))
    : 240;
  const charts = panelRows.map((row, index) => {
    const selected = rows.filter((p) => p.row === row);
    const first = index === 0;
    const last = index === panelRows.length - 1;
    return renderPlot({
      width,
      height: rowHeight + (first && faceted ? 18 : 0) + (last ? 30 : 0),
      marginLeft: 56,
      marginRight: 20,
      marginTop: first && faceted ? 44 : 26,
      marginBottom: last ? 40 : 10,
      x: {
        label: last ? axisLabel(options.xLabel, "x") : null,
        domain: xDomain,
        grid: true,
        ...(integerTicks ? { ticks: integerTicks, tickFormat: "d" } : {}),
        ...(last ? {} : { tickFormat: () => "" }),
      },
      y: {
        label: rowFaceted ? row : axisLabel(options.yLabel, "y"),
        grid: true,
        ...(options.yDomain ? { domain: [...options.yDomain] } : {}),
      },
      fx: faceted ? { label: null, domain: facets, axis: first ? "top" : null } : undefined,
      color,
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.areaY(selected.filter((p) => p.low !== undefined && p.high !== undefined), {
          x: "x",
          y1: "low",
          y2: "high",
          fill: "series",
          z: "series",
          fillOpacity: 0.15,
          ...(faceted ? { fx: "facet" } : {}),
        }),
        Plot.line(selected, {
          x: "x",
          y: "y",
          stroke: "series",
          z: "series",
          ...(faceted ? { fx: "facet" } : {}),
          strokeWidth: 1.8,
        }),
        Plot.dot(selected, {
          x: "x",
          y: "y",
          fill: "series",
          ...(faceted ? { fx: "facet" } : {}),
          r: 2.5,
        }),
      ],
    });
  });
  const traces: PlotlyTrace[] = [];
  for (const facet of facets) {
    for (const row of panelRows) {
      for (const name of series) {
        const selected = rows.filter((p) =>
          p.facet === facet && p.row === row && p.series === name
        );
        if (selected.length === 0) continue;
        traces.push({
          type: "scatter",
          mode: "lines+markers",
          name: [facet, row, name].filter((s) => s !== "").join(" · "),
          x: selected.map((p) => p.x),
          y: selected.map((p) => p.y),
        });
      }
    }
  }
  return finishFigure(charts, {
    title: options.title,
    legend: renderLegend(color, width),
    interactive: {
      data: traces,
      layout: {
        title: options.title,
        xaxis: { title: options.xLabel ?? "x" },
        yaxis: { title: options.yLabel ?? "y" },
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Scatter with overlay polygons

/** A closed polygon drawn over a scatter (e.g. the convex hull, the bounding rectangle). */
export interface Polygon {
  /** Legend name. */
  name: string;
  /**
   * Vertices in order: `[x, y]` pairs or a `[k, 2]` matrix; the polygon is closed
   * automatically.
   */
  points:
    | ArrayLike<readonly [number, number]>
    | ArrayLike<ArrayLike<number>>
    | { data: ArrayLike<number>; shape: readonly [number, number] };
}

function polygonVertices(points: Polygon["points"]): [number, number][] {
  if ("shape" in points && "data" in points) {
    const [k, d] = points.shape;
    if (d !== 2) throw new Error(`polygon vertices need shape [k, 2], got [${k}, ${d}]`);
    return Array.from({ length: k }, (_, i) => [points.data[2 * i], points.data[2 * i + 1]]);
  }
  return Array.from(
    points as ArrayLike<ArrayLike<number>>,
    (p) => [Number(p[0]), Number(p[1])] as [number, number],
  );
}

/** Options of {@link scatter}. */
export interface ScatterOptions extends ChartOptions, GroupOptions {
  /** Polygons outlined over the points, each in its own colour. */
  polygons?: readonly Polygon[];
  /** Dot radius in pixels (default 2.5, or 1.5 above 2,000 points). */
  radius?: number;
  /** Dot opacity (default 0.7). */
  opacity?: number;
  /** Same unit length on both axes (for layouts such as t-SNE maps). Default false. */
  equalAspect?: boolean;
}

/** 2-D points: a `[n, 2]` matrix, or separate coordinate arrays. */
export type Points2D =
  | { data: ArrayLike<number>; shape: readonly [number, number] }
  | { x: ArrayLike<number>; y: ArrayLike<number> };

function coordinates(points: Points2D): { x: ArrayLike<number>; y: ArrayLike<number> } {
  if ("x" in points) {
    if (points.x.length !== points.y.length) throw new Error("x and y differ in length");
    return points;
  }
  const [n, d] = points.shape;
  if (d !== 2) throw new Error(`scatter needs a [n, 2] matrix, got [${n}, ${d}]`);
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = points.data[2 * i];
    y[i] = points.data[2 * i + 1];
  }
  return { x, y };
}

/**
 * A scatter plot, dots coloured by group, with polygons outlined on top. One `circle` per
 * point; one `path` per polygon.
 */
export function scatter(points: Points2D, options: ScatterOptions = {}): Figure {
  const { x, y } = coordinates(points);
  const n = x.length;
  const names = groupNamesOf(options, n);
  const rows = Array.from({ length: n }, (_, i) => ({ x: x[i], y: y[i], group: names?.[i] ?? "" }));
  const polygons = (options.polygons ?? []).map((polygon) => ({
    name: polygon.name,
    vertices: polygonVertices(polygon.points),
  }));
  const pointGroups = names ? categoryDomain(names, options.groupNames) : [];
  const domain = [...pointGroups, ...polygons.map((p) => p.name)];
  const color = domain.length > 0
    ? ordinalColor(domain, options.colors, options.legendLabel)
    : undefined;
  const width = options.width ?? 640;
  let height = options.height ?? 480;
  const xs = [...Array.from(x), ...polygons.flatMap((p) => p.vertices.map((v) => v[0]))];
  const ys = [...Array.from(y), ...polygons.flatMap((p) => p.vertices.map((v) => v[1]))];
  const xDomain = [Math.min(...xs), Math.max(...xs)];
  const yDomain = [Math.min(...ys), Math.max(...ys)];
  const margin = { left: 56, right: 20, top: 20, bottom: 40 };
  if (options.equalAspect && options.height === undefined) {
    const spanX = xDomain[1] - xDomain[0] || 1;
    const spanY = yDomain[1] - yDomain[0] || 1;
    const plotWidth = width - margin.left - margin.right;
    height = Math.round(
      Math.min(900, plotWidth * spanY / spanX + margin.top + margin.bottom),
    );
  }
  const marks: Plot.Markish[] = [
    Plot.dot(rows, {
      x: "x",
      y: "y",
      fill: names ? "group" : "#4e79a7",
      r: options.radius ?? (n > 2000 ? 1.5 : 2.5),
      fillOpacity: options.opacity ?? 0.7,
    }),
  ];
  for (const polygon of polygons) {
    marks.push(Plot.line(polygon.vertices, {
      x: (v: [number, number]) => v[0],
      y: (v: [number, number]) => v[1],
      stroke: () => polygon.name,
      curve: "linear-closed",
      strokeWidth: 1.8,
    }));
  }
  const chart = renderPlot({
    width,
    height,
    marginLeft: margin.left,
    marginRight: margin.right,
    marginTop: margin.top,
    marginBottom: margin.bottom,
    x: { label: axisLabel(options.xLabel, "x"), domain: xDomain, nice: true },
    y: { label: axisLabel(options.yLabel, "y"), domain: yDomain, nice: true },
    color,
    marks,
  });
  const traces: PlotlyTrace[] = [];
  for (const group of pointGroups.length ? pointGroups : [""]) {
    const selected = rows.filter((row) => row.group === group);
    traces.push({
      type: "scattergl",
      mode: "markers",
      name: group || "points",
      x: selected.map((row) => row.x),
      y: selected.map((row) => row.y),
    });
  }
  for (const polygon of polygons) {
    const closed = [...polygon.vertices, polygon.vertices[0]];
    traces.push({
      type: "scatter",
      mode: "lines",
      name: polygon.name,
      x: closed.map((v) => v[0]),
      y: closed.map((v) => v[1]),
    });
  }
  return finishFigure(chart, {
    title: options.title,
    legend: color ? renderLegend(color, width) : undefined,
    interactive: {
      data: traces,
      layout: {
        title: options.title,
        xaxis: { title: options.xLabel ?? "x" },
        yaxis: {
          title: options.yLabel ?? "y",
          ...(options.equalAspect ? { scaleanchor: "x" } : {}),
        },
      },
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Heatmap and confusion matrix

/** Options of {@link heatmap}. */
export interface HeatmapOptions extends ChartOptions, ColorOptions {
  /** Names of the rows, top to bottom (default 0, 1, …). */
  rowLabels?: readonly string[];
  /** Names of the columns, left to right (default 0, 1, …). */
  columnLabels?: readonly string[];
  /** Print each cell's value in it: `true` (3 significant digits) or a formatter. */
  annotate?: boolean | ((value: number) => string);
  /** Side of a cell in pixels (default fits about 480 px). */
  cellSize?: number;
  /** Label of the colour legend (default "value"); `null` draws no legend. */
  legendLabel?: string | null;
}

/** A row-major matrix of any numeric array type with its `[rows, columns]`. */
export interface Grid {
  /** Row-major values. */
  data: ArrayLike<number>;
  /** `[rows, columns]`. */
  shape: readonly [number, number];
}

/** Plot's colour-scale options for a scheme name ("gray" = black → white). */
function linearColor(scheme: string, domain: [number, number], label?: string): Plot.ScaleOptions {
  const gray = scheme === "gray" || scheme === "grey";
  return {
    type: "linear",
    scheme: gray ? "greys" : scheme,
    reverse: gray,
    domain,
    label,
  } as Plot.ScaleOptions;
}

function tickValues(labels: readonly string[]): string[] {
  if (labels.length <= 20) return [...labels];
  const step = Math.ceil(labels.length / 10);
  return labels.filter((_, i) => i % step === 0);
}

/**
 * A heatmap of a matrix, row 0 at the top (image convention), one `rect` per cell, with a
 * colour legend. Used for feature-density matrices, mean and difference images, confusion
 * matrices.
 */
export function heatmap(matrix: Grid, options: HeatmapOptions = {}): Figure {
  const [rowCount, columnCount] = matrix.shape;
  if (matrix.data.length !== rowCount * columnCount) {
    throw new Error(
      `matrix has ${matrix.data.length} values, shape [${rowCount}, ${columnCount}] needs ${
        rowCount * columnCount
      }`,
    );
  }
  const rowLabels = options.rowLabels ?? Array.from({ length: rowCount }, (_, i) => String(i));
  const columnLabels = options.columnLabels ??
    Array.from({ length: columnCount }, (_, i) => String(i));
  if (rowLabels.length !== rowCount || columnLabels.length !== columnCount) {
    throw new Error("rowLabels/columnLabels must match the matrix shape");
  }
  const cells = [];
  for (let r = 0; r < rowCount; r++) {
    for (let c = 0; c < columnCount; c++) {
      cells.push({
        row: rowLabels[r],
        column: columnLabels[c],
        value: matrix.data[r * columnCount + c],
      });
    }
  }
  const scheme = options.scheme ?? (options.diverging ? "rdbu" : "viridis");
  const domain = colorDomain(matrix.data, options);
  const legendLabel = options.legendLabel === undefined ? "value" : options.legendLabel;
  const color = linearColor(scheme, domain, legendLabel ?? undefined);
  const cellSize = options.cellSize ??
    Math.max(4, Math.min(90, Math.floor(480 / Math.max(rowCount, columnCount))));
  const longestRow = Math.max(...rowLabels.map((label) => label.length));
  const marginLeft = Math.max(40, 14 + 6.5 * longestRow) + (options.yLabel ? 14 : 0);
  const marginBottom = 44;
  const width = options.width ?? Math.round(marginLeft + 20 + cellSize * columnCount);
  const height = options.height ?? Math.round(20 + marginBottom + cellSize * rowCount);
  const marks: Plot.Markish[] = [
    Plot.cell(cells, { x: "column", y: "row", fill: "value", inset: 0 }),
  ];
  if (options.annotate) {
    const format = typeof options.annotate === "function"
      ? options.annotate
      : (value: number) => Number(value.toPrecision(3)).toString();
    marks.push(Plot.text(cells, {
      x: "column",
      y: "row",
      text: (cell: { value: number }) => format(cell.value),
      fill: "black",
      stroke: "white",
      strokeWidth: 3,
      fontSize: 13,
    }));
  }
  const chart = renderPlot({
    width,
    height,
    marginLeft,
    marginBottom,
    marginTop: 20,
    marginRight: 20,
    x: {
      label: axisLabel(options.xLabel, null),
      domain: [...columnLabels],
      ticks: tickValues(columnLabels),
      padding: 0,
      labelAnchor: "center",
    },
    y: {
      label: axisLabel(options.yLabel, null),
      domain: [...rowLabels],
      ticks: tickValues(rowLabels),
      padding: 0,
      labelAnchor: "center",
    },
    color,
    marks,
  });
  const rows: number[][] = [];
  for (let r = 0; r < rowCount; r++) {
    rows.push(Array.from({ length: columnCount }, (_, c) => matrix.data[r * columnCount + c]));
  }
  const plotlyScales: Record<string, string> = {
    viridis: "Viridis",
    gray: "Greys",
    rdbu: "RdBu",
    blues: "Blues",
    magma: "Hot",
  };
  return finishFigure(chart, {
    title: options.title,
    legend: legendLabel === null ? undefined : renderLegend(color, width),
    interactive: {
      data: [{
        type: "heatmap",
        z: rows,
        x: [...columnLabels],
        y: [...rowLabels],
        zmin: domain[0],
        zmax: domain[1],
        colorscale: plotlyScales[scheme] ?? "Viridis",
        reversescale: scheme === "gray",
      }],
      layout: {
        title: options.title,
        yaxis: { autorange: "reversed", title: options.yLabel },
        xaxis: { title: options.xLabel },
      },
    },
  });
}

/** Options of {@link confusionMatrix}. */
export interface ConfusionMatrixOptions {
  /** Title drawn above. */
  title?: string;
  /** Show row-normalised rates instead of counts (colour and text). Default false. */
  normalize?: boolean;
  /** Side of a cell in pixels (default 80). */
  cellSize?: number;
}

/**
 * A confusion matrix: rows are true classes, columns predicted classes, counts printed in
 * the cells. `counts[t][p]` or a row-major `[k, k]` grid.
 */
export function confusionMatrix(
  counts: readonly (readonly number[])[] | Grid,
  classNames: readonly string[],
  options: ConfusionMatrixOptions = {},
): Figure {
  const k = classNames.length;
  const flat = "shape" in counts ? Array.from(counts.data) : counts.flatMap((row) => [...row]);
  if (flat.length !== k * k) {
    throw new Error(
      `a confusion matrix for ${k} classes needs ${k * k} counts, got ${flat.length}`,
    );
  }
  let values = flat;
  if (options.normalize) {
    values = flat.map((v, i) => {
      const row = Math.floor(i / k);
      const total = flat.slice(row * k, row * k + k).reduce((a, b) => a + b, 0);
      return total > 0 ? v / total : 0;
    });
  }
  return heatmap({ data: values, shape: [k, k] }, {
    title: options.title,
    rowLabels: classNames,
    columnLabels: classNames,
    xLabel: "predicted",
    yLabel: "true",
    scheme: "blues",
    domain: options.normalize ? [0, 1] : undefined,
    annotate: options.normalize ? (v) => v.toFixed(3) : (v) => String(Math.round(v)),
    cellSize: options.cellSize ?? 80,
    legendLabel: options.normalize ? "fraction of true class" : "count",
  });
}

// ---------------------------------------------------------------------------------------------
// Image grid

/** Options of {@link imageGrid}. */
export interface ImageGridOptions extends ColorOptions {
  /** Title drawn above the grid. */
  title?: string;
  /** A caption under each image. */
  captions?: readonly string[];
  /** Images per row (default up to 8). */
  columns?: number;
  /** Displayed side of each image in pixels (default 96). */
  tileSize?: number;
  /**
   * `"shared"` (default): one colour range for all images, with a legend (compare mean
   * images); `"each"`: every image stretched to its own range (feature maps).
   */
  range?: "shared" | "each";
  /** Label of the colour legend (shared range only; default "value"). */
  legendLabel?: string;
}

/**
 * Images side by side in a grid: each image is a colour-mapped PNG embedded in the SVG (one
 * `image` element per image), pixelated, with an optional caption under it.
 */
export function imageGrid(
  images: ImageBatch | readonly GrayImage[],
  options: ImageGridOptions = {},
): Figure {
  const list: GrayImage[] = "shape" in images && !Array.isArray(images)
    ? Array.from(
      { length: (images as ImageBatch).shape[0] },
      (_, i) => imageAt(images as ImageBatch, i),
    )
    : [...(images as readonly GrayImage[])];
  if (list.length === 0) throw new Error("imageGrid needs at least one image");
  const columns = Math.max(1, Math.min(options.columns ?? 8, list.length));
  const tile = options.tileSize ?? 96;
  const gap = 8;
  const captionHeight = options.captions ? 16 : 0;
  const gridRows = Math.ceil(list.length / columns);
  const shared = (options.range ?? "shared") === "shared";
  const scheme = defaultScheme(options);
  let sharedDomain: [number, number] | undefined;
  if (shared) {
    let min = Infinity;
    let max = -Infinity;
    for (const image of list) {
      const [low, high] = colorDomain(image.data, { diverging: options.diverging });
      min = Math.min(min, low);
      max = Math.max(max, high);
    }
    sharedDomain = options.domain ? [options.domain[0], options.domain[1]] : [min, max];
  }
  const tiles = list.map((image, i) => {
    const column = i % columns;
    const row = Math.floor(i / columns);
    const scale = Math.max(1, Math.ceil(tile / Math.max(...image.shape)));
    const png = imageToPng(image, {
      scheme,
      diverging: options.diverging,
      domain: sharedDomain ?? options.domain,
      scale,
    });
    return {
      x: gap + column * (tile + gap) + tile / 2,
      y: gap + row * (tile + gap + captionHeight) + tile / 2,
      src: png.dataUrl(),
      caption: options.captions?.[i] ?? "",
    };
  });
  const width = gap + columns * (tile + gap);
  const height = gap + gridRows * (tile + gap + captionHeight);
  const marks: Plot.Markish[] = [
    Plot.image(tiles, {
      x: "x",
      y: "y",
      src: "src",
      width: tile,
      height: tile,
      imageRendering: "pixelated",
    }),
  ];
  if (options.captions) {
    marks.push(Plot.text(tiles, {
      x: "x",
      y: (t: { y: number }) => t.y + tile / 2 + 10,
      text: "caption",
      fontSize: 10,
    }));
  }
  const chart = renderPlot({
    width,
    height,
    margin: 0,
    x: { type: "identity" },
    y: { type: "identity" },
    axis: null,
    marks,
  });
  const legendWidth = Math.max(width, 240);
  return finishFigure(chart, {
    title: options.title,
    legend: sharedDomain && list.length > 0
      ? renderLegend(linearColor(scheme, sharedDomain, options.legendLabel ?? "value"), legendWidth)
      : undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// Feature maps

/** Options of {@link featureMapGrid}. */
export interface FeatureMapGridOptions extends Omit<ImageGridOptions, "captions" | "range"> {
  /** Which image of the batch (default 0). */
  image?: number;
  /** How many channels (default 16) or exactly which channel indices. */
  channels?: number | readonly number[];
  /**
   * With a channel count: `"strongest"` (default) picks the channels with the largest mean
   * activation on this image, `"first"` the first ones.
   */
  order?: "strongest" | "first";
}

/** The channels of one image's feature map `[n, h, w, c]` as single-channel images. */
export function featureMapChannels(
  features: FeatureBatch,
  image: number,
  channels: readonly number[],
): GrayImage[] {
  const [n, h, w, c] = features.shape;
  if (!(image >= 0 && image < n)) throw new RangeError(`image ${image} of ${n}`);
  const base = image * h * w * c;
  return channels.map((channel) => {
    if (!(channel >= 0 && channel < c)) throw new RangeError(`channel ${channel} of ${c}`);
    const data = new Float32Array(h * w);
    for (let p = 0; p < h * w; p++) data[p] = features.data[base + p * c + channel];
    return { data, shape: [h, w] as [number, number] };
  });
}

/**
 * A grid of one image's feature maps (a backbone's output `[n, h, w, c]`), each channel
 * stretched to its own range, captioned with its channel index.
 */
export function featureMapGrid(
  features: FeatureBatch,
  options: FeatureMapGridOptions = {},
): Figure {
  const [, h, w, c] = features.shape;
  const image = options.image ?? 0;
  let channels: number[];
  if (Array.isArray(options.channels)) {
    channels = [...options.channels];
  } else {
    const count = Math.min(c, (options.channels as number | undefined) ?? 16);
    if ((options.order ?? "strongest") === "first") {
      channels = Array.from({ length: count }, (_, i) => i);
    } else {
      const means = new Float64Array(c);
      const base = image * h * w * c;
      for (let p = 0; p < h * w; p++) {
        for (let k = 0; k < c; k++) means[k] += features.data[base + p * c + k];
      }
      channels = Array.from({ length: c }, (_, k) => k)
        .sort((a, b) => means[b] - means[a] || a - b)
        .slice(0, count);
    }
  }
  return imageGrid(featureMapChannels(features, image, channels), {
    ...options,
    captions: channels.map((k) => `channel ${k}`),
    range: "each",
    scheme: options.scheme ?? "viridis",
  });
}

// ---------------------------------------------------------------------------------------------
// Training curves

/** One epoch of a training history (structurally `EpochRecord` of lib/train). */
export interface EpochMetrics {
  /** 1-based epoch. */
  epoch: number;
  /** Mean training loss of the epoch. */
  trainLoss: number;
  /** Training accuracy of the epoch, if measured. */
  trainAccuracy?: number;
  /** Validation loss after the epoch, if measured. */
  validationLoss?: number;
  /** Validation accuracy after the epoch, if measured. */
  validationAccuracy?: number;
}

/** A model's name and its per-epoch history. */
export interface TrainingHistory {
  /** Panel title (e.g. the backbone). */
  model: string;
  /** Epochs so far, in order. */
  history: readonly EpochMetrics[];
}

/**
 * Training curves: one panel column per model, rows for loss and accuracy, lines for train
 * and validation. Works on partial histories (redraw after each epoch for a live view).
 */
export function trainingCurves(
  histories: readonly TrainingHistory[],
  options: Omit<LineChartOptions, "yDomain"> = {},
): Figure {
  const points: LinePoint[] = [];
  for (const { model, history } of histories) {
    for (const record of history) {
      points.push({
        x: record.epoch,
        y: record.trainLoss,
        series: "train",
        facet: model,
        row: "loss",
      });
      if (record.trainAccuracy !== undefined) {
        points.push({
          x: record.epoch,
          y: record.trainAccuracy,
          series: "train",
          facet: model,
          row: "accuracy",
        });
      }
      if (record.validationLoss !== undefined) {
        points.push({
          x: record.epoch,
          y: record.validationLoss,
          series: "validation",
          facet: model,
          row: "loss",
        });
      }
      if (record.validationAccuracy !== undefined) {
        points.push({
          x: record.epoch,
          y: record.validationAccuracy,
          series: "validation",
          facet: model,
          row: "accuracy",
        });
      }
    }
  }
  if (points.length === 0) throw new Error("trainingCurves needs at least one epoch");
  return lineChart(points, {
    xLabel: "epoch",
    colors: { train: "#4e79a7", validation: "#f28e2c" },
    height: 360,
    ...options,
  });
}
