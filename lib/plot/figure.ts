/**
 * Display values: a {@link Figure} holds an SVG made by Observable Plot, a {@link PngImage}
 * holds PNG bytes. Both show inline in a Deno Jupyter notebook through the kernel's display
 * protocol (`Symbol.for("Jupyter.display")`), so `lib/` never touches `Deno.jupyter`, and both
 * save to files for reports.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";
import { Buffer } from "node:buffer";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** The symbol a Deno Jupyter kernel calls to get an object's MIME bundle. */
export const jupyterDisplay: unique symbol = Symbol.for("Jupyter.display");

/** A Jupyter MIME bundle: MIME type → data (text, or base64 for binary types). */
export type MimeBundle = Record<string, string>;

/** One plotly.js trace, for the opt-in interactive view (see `showInteractive`). */
export type PlotlyTrace = Record<string, unknown>;

/** A plotly.js figure description: traces and layout. */
export interface InteractiveSpec {
  /** plotly.js traces. */
  data: PlotlyTrace[];
  /** plotly.js layout. */
  layout: Record<string, unknown>;
}

/** Options of {@link Figure}. */
export interface FigureInit {
  /** Title shown above the figure (already drawn into the SVG); kept for captions. */
  title?: string;
  /** The same data as a plotly.js figure, for `showInteractive`. */
  interactive?: InteractiveSpec;
}

async function writeBytes(path: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

/** A finished SVG figure. Shown inline in notebooks; `save` writes it to an `.svg` file. */
export class Figure {
  /** The standalone SVG document (with its XML namespace). */
  readonly svg: string;
  /** The figure's title, if any. */
  readonly title: string | undefined;
  /** The same data for plotly.js, when the chart kind has one. */
  readonly interactive: InteractiveSpec | undefined;

  /** Wraps an SVG document string (normally made by the chart functions of this module). */
  constructor(svg: string, init: FigureInit = {}) {
    this.svg = svg;
    this.title = init.title;
    this.interactive = init.interactive;
  }

  /** The MIME bundle Jupyter displays: `{"image/svg+xml": svg}`. */
  [jupyterDisplay](): MimeBundle {
    return { "image/svg+xml": this.svg };
  }

  /** Writes the SVG to `path`, creating parent folders. */
  async save(path: string): Promise<void> {
    await writeBytes(path, this.svg);
  }

  /** The SVG document. */
  toString(): string {
    return this.svg;
  }
}

/** PNG bytes with their size. Shown inline in notebooks; `save` writes a `.png` file. */
export class PngImage {
  /** The encoded PNG file. */
  readonly bytes: Uint8Array;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;

  /** Wraps encoded PNG bytes of a `width`×`height` image. */
  constructor(bytes: Uint8Array, width: number, height: number) {
    this.bytes = bytes;
    this.width = width;
    this.height = height;
  }

  /** Wraps an encoded PNG file, reading its size from the header (e.g. lib/image's grids). */
  static fromBytes(bytes: Uint8Array): PngImage {
    const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
    if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) {
      throw new Error("not a PNG file (bad signature)");
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return new PngImage(bytes, view.getUint32(16), view.getUint32(20));
  }

  /** The PNG file as base64. */
  base64(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
      .toString("base64");
  }

  /** A `data:image/png;base64,…` URL, for embedding in SVG or HTML. */
  dataUrl(): string {
    return `data:image/png;base64,${this.base64()}`;
  }

  /** The MIME bundle Jupyter displays: `{"image/png": base64}`. */
  [jupyterDisplay](): MimeBundle {
    return { "image/png": this.base64() };
  }

  /** Writes the PNG to `path`, creating parent folders. */
  async save(path: string): Promise<void> {
    await writeBytes(path, this.bytes);
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
const XLINK_NS = "http://www.w3.org/1999/xlink";

/** The style every chart gets: readable on light and dark notebook themes. */
const CHART_STYLE = { background: "white", color: "black", fontSize: "11px" };

/**
 * The part of a (linkedom) SVG element this module uses; Deno's type library has no DOM
 * types, so this stands in for `SvgElement`.
 */
export interface SvgElement {
  /** Lower- or upper-case tag name. */
  readonly tagName: string;
  /** The element serialised as markup. */
  readonly outerHTML: string;
  /** Reads an attribute. */
  getAttribute(name: string): string | null;
  /** Sets an attribute. */
  setAttribute(name: string, value: string): void;
  /** Appends a child node. */
  appendChild(child: SvgElement): unknown;
  /** First descendant matching a CSS selector. */
  querySelector(selector: string): unknown;
}

/** The part of the virtual DOM document this module uses. */
export interface VirtualDocument {
  /** Creates a namespaced element. */
  createElementNS(namespace: string, name: string): SvgElement;
}

let sharedDocument: VirtualDocument | undefined;

/** The virtual DOM document (linkedom) that Plot renders into. */
export function plotDocument(): VirtualDocument {
  if (!sharedDocument) {
    sharedDocument = (parseHTML("<!DOCTYPE html><html><body></body></html>") as unknown as {
      document: VirtualDocument;
    }).document;
  }
  return sharedDocument;
}

/**
 * Renders Plot options to an SVG element. Plot wraps charts in an HTML `<figure>` when given
 * a title, caption or categorical legend; those are composed separately here (see
 * {@link composeFigure}), so a plain SVG is required.
 */
export function renderPlot(options: Plot.PlotOptions): SvgElement {
  const element = Plot.plot({
    ...options,
    document: plotDocument() as unknown as Plot.PlotOptions["document"],
    style: { ...CHART_STYLE, ...(typeof options.style === "object" ? options.style : {}) },
  }) as unknown as SvgElement;
  if (element.tagName.toLowerCase() !== "svg") {
    throw new Error(
      `Plot returned <${element.tagName.toLowerCase()}>, not <svg>: pass titles and legends ` +
        "through composeFigure instead of Plot options.",
    );
  }
  return element;
}

/** A title line rendered by Plot as its own small SVG (a single text mark). */
export function renderTitle(title: string, width: number): SvgElement {
  return renderPlot({
    width,
    height: 26,
    margin: 0,
    axis: null,
    x: { domain: [0, 1] },
    y: { domain: [0, 1] },
    marks: [
      Plot.text([title], {
        frameAnchor: "left",
        dx: 8,
        fontSize: 14,
        fontWeight: "bold",
        text: (d: string) => d,
      }),
    ],
  });
}

/**
 * A colour legend as its own small SVG. Categorical scales use Plot's ramp legend (drawn with
 * rects). Continuous scales are drawn as a Plot chart of 128 adjacent colour steps with a
 * value axis, because Plot's own continuous legend needs a canvas, which a virtual DOM lacks.
 */
export function renderLegend(color: Plot.ScaleOptions, width: number): SvgElement {
  let legendWidth = Math.min(width - 16, 360);
  if (color.type === "ordinal" || color.type === "categorical") {
    const names = Array.from(color.domain ?? [], String);
    const longest = Math.max(0, ...names.map((name) => name.length));
    legendWidth = Math.max(legendWidth, Math.min(width - 16, names.length * (6.5 * longest + 14)));
    const element = Plot.legend({
      document: plotDocument(),
      legend: "ramp",
      width: legendWidth,
      marginLeft: 8,
      style: CHART_STYLE,
      color,
    } as unknown as Plot.LegendOptions) as unknown as SvgElement | undefined;
    if (!element || element.tagName.toLowerCase() !== "svg") {
      throw new Error("Plot did not return an SVG legend");
    }
    return element;
  }
  const domain = (color.domain ?? [0, 1]) as [number, number];
  const steps = 128;
  const span = domain[1] - domain[0];
  const bands = Array.from({ length: steps }, (_, i) => ({
    x1: domain[0] + (span * i) / steps,
    x2: domain[0] + (span * (i + 1)) / steps,
    value: domain[0] + (span * (i + 0.5)) / steps,
  }));
  const marks: Plot.Markish[] = [
    Plot.rectY(bands, {
      x1: "x1",
      x2: "x2",
      y: 1,
      fill: "value",
      shapeRendering: "crispEdges",
      insetLeft: -0.3,
      insetRight: -0.3,
    }),
  ];
  if (color.label) {
    marks.push(Plot.text([color.label], {
      frameAnchor: "top-left",
      dy: -10,
      textAnchor: "start",
      fontWeight: "bold",
      text: (d: string) => d,
    }));
  }
  return renderPlot({
    width: legendWidth,
    height: 54,
    marginLeft: 12,
    marginRight: 16,
    marginTop: 20,
    marginBottom: 22,
    x: { domain, label: null, ticks: Math.max(2, Math.min(6, Math.floor(legendWidth / 70))) },
    y: { axis: null },
    color: { ...color, label: undefined },
    marks,
  });
}

function sizeOf(svg: SvgElement): { width: number; height: number } {
  const width = Number(svg.getAttribute("width"));
  const height = Number(svg.getAttribute("height"));
  if (!(width > 0 && height > 0)) throw new Error("SVG part without width/height");
  return { width, height };
}

/**
 * Stacks SVG parts vertically (title, legend, chart) into one standalone SVG document string
 * with the XML namespaces set, using DOM calls only.
 */
export function composeFigure(parts: SvgElement[]): string {
  const document = plotDocument();
  let root: SvgElement;
  if (parts.length === 1) {
    root = parts[0];
  } else {
    root = document.createElementNS(SVG_NS, "svg");
    let y = 0;
    let width = 0;
    for (const part of parts) {
      const size = sizeOf(part);
      part.setAttribute("x", "0");
      part.setAttribute("y", String(y));
      y += size.height;
      width = Math.max(width, size.width);
      root.appendChild(part);
    }
    root.setAttribute("width", String(width));
    root.setAttribute("height", String(y));
    root.setAttribute("viewBox", `0 0 ${width} ${y}`);
    root.setAttribute("style", "background: white;");
    root.setAttribute("font-family", "system-ui, sans-serif");
  }
  root.setAttribute("xmlns", SVG_NS);
  if (root.querySelector("image")) root.setAttribute("xmlns:xlink", XLINK_NS);
  return root.outerHTML;
}

/** Common options of the chart functions. */
export interface ChartOptions {
  /** Title drawn above the chart. */
  title?: string;
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels of the plot area part (default depends on the chart). */
  height?: number;
  /** Label of the horizontal axis. */
  xLabel?: string;
  /** Label of the vertical axis. */
  yLabel?: string;
}

/**
 * Builds a {@link Figure} from a chart (or charts stacked top to bottom), an optional legend
 * and the options' title.
 */
export function finishFigure(
  chart: SvgElement | SvgElement[],
  options: { title?: string; legend?: SvgElement; interactive?: InteractiveSpec },
): Figure {
  const charts = Array.isArray(chart) ? chart : [chart];
  const width = Math.max(...charts.map((c) => sizeOf(c).width));
  const parts: SvgElement[] = [];
  if (options.title) {
    parts.push(
      renderTitle(options.title, Math.max(width, Math.ceil(16 + 8.5 * options.title.length))),
    );
  }
  if (options.legend) parts.push(options.legend);
  parts.push(...charts);
  return new Figure(composeFigure(parts), {
    title: options.title,
    interactive: options.interactive,
  });
}
