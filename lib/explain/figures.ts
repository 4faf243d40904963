/**
 * Figures of the attribution stage, drawn like the rest of the project (Observable Plot into
 * a virtual DOM, PNG tiles embedded in SVG): the class activation map over each class's mean
 * image, the importance per hidden state, and the top-k curve with its random band.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { classMeanImages } from "../image/class_means.ts";
import {
  barChart,
  type BarDatum,
  colorLookup,
  type Figure,
  imageToPng,
  lineChart,
  type LinePoint,
  rgbImageToPng,
} from "../plot/mod.ts";
import { finishFigure, renderLegend, renderPlot } from "../plot/figure.ts";
import type { ImageBatch, Labels } from "../types.ts";
import type { StateImportance } from "./features.ts";
import type { CamMap } from "./gradcam.ts";
import type { TopKCurve } from "./topk.ts";

/** Options of {@link camFigure}. */
export interface CamFigureOptions {
  /** Title drawn above. */
  title?: string;
  /** Class names, index = label (default `["negative", "positive"]`). */
  classNames?: readonly string[];
  /** Displayed side of each tile in pixels (default 150). */
  tileSize?: number;
  /** Colour scheme of the map (default `"inferno"`). */
  scheme?: string;
  /** Opacity of the map where it is largest, in the overlay (default 0.7). */
  alpha?: number;
}

const CAM_FIGURE_DEFAULTS = {
  classNames: ["negative", "positive"],
  tileSize: 150,
  scheme: "inferno",
  alpha: 0.7,
} as const;

function range(values: ArrayLike<number>): [number, number] {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < min) min = values[i];
    if (values[i] > max) max = values[i];
  }
  return min < max ? [min, max] : [min, min + 1];
}

/**
 * The map blended over a grayscale image: each pixel mixes the image's gray with the
 * scheme's colour of the map value, weighted by `alpha ×` the value (scaled to [0, 1] by
 * `camMax`), so pixels the map ignores show the image.
 */
function overlay(
  image: Float32Array,
  cam: Float32Array,
  camMax: number,
  scheme: string,
  alpha: number,
): Float32Array {
  const [low, high] = range(image);
  const table = colorLookup(scheme);
  const out = new Float32Array(image.length * 3);
  for (let p = 0; p < image.length; p++) {
    const gray = (image[p] - low) / (high - low);
    const t = camMax > 0 ? Math.max(0, Math.min(1, cam[p] / camMax)) : 0;
    const index = Math.round(t * 255);
    const weight = alpha * t;
    for (let k = 0; k < 3; k++) {
      out[3 * p + k] = (1 - weight) * gray + weight * (table[3 * index + k] / 255);
    }
  }
  return out;
}

/**
 * The class activation map over the mean image, per class: one row per class with the class's
 * mean image (gray), its mean CAM (shared colour range, with a legend), and the CAM blended
 * over the image. `images` and `labels` give the mean images (the rows the maps came from, or
 * any rows of the same layout); `classCams` are `classMeanCams`'s maps.
 */
export function camFigure(
  images: ImageBatch,
  labels: Labels,
  classCams: readonly CamMap[],
  options: CamFigureOptions = {},
): Figure {
  const { classNames, tileSize, scheme, alpha } = { ...CAM_FIGURE_DEFAULTS, ...options };
  const [, H, W] = images.shape;
  if (classCams.length !== 2) {
    throw new Error(
      `camFigure: needs the two class maps of classMeanCams, got ${classCams.length}`,
    );
  }
  for (const cam of classCams) {
    if (cam.shape[0] !== H || cam.shape[1] !== W) {
      throw new Error(
        `camFigure: a ${cam.shape.join("×")} map does not fit ${H}×${W} images; use the maps ` +
          "on the layout grid (GradCamResult.cams), not the conv grid.",
      );
    }
  }
  const means = classMeanImages(images, labels);
  const meanImages = [means.negative.data, means.positive.data];
  return camRows(
    classCams.map((cam, c) => {
      const name = classNames[c] ?? String(c);
      return {
        image: meanImages[c],
        cam: cam.data,
        captions: [`${name}: mean image`, `${name}: mean CAM (${cam.count})`, `${name}: overlay`],
      };
    }),
    [H, W],
    { title: options.title, tileSize, scheme, alpha },
  );
}

/** One map of {@link reviewCamFigure}: a review's image and its map on the layout grid. */
export interface ReviewCam {
  /** The image `[H, W]` (row-major). */
  image: { data: Float32Array; shape: [number, number] };
  /** Its class activation map on the same grid. */
  cam: { data: Float32Array; shape: [number, number] };
  /** What the row shows, e.g. the model and its P(positive). */
  caption: string;
}

/**
 * Class activation maps of single reviews (e.g. `LoadedRun.explain`'s, one per model): one
 * row per map with the image (gray), the map (one colour range over all rows, with a
 * legend) and the map blended over the image, as {@link camFigure} draws class means.
 */
export function reviewCamFigure(
  maps: readonly ReviewCam[],
  options: Omit<CamFigureOptions, "classNames"> = {},
): Figure {
  const { tileSize, scheme, alpha } = { ...CAM_FIGURE_DEFAULTS, ...options };
  if (maps.length === 0) throw new Error("reviewCamFigure: give at least one map");
  const [H, W] = maps[0].image.shape;
  for (const m of maps) {
    for (const grid of [m.image.shape, m.cam.shape]) {
      if (grid[0] !== H || grid[1] !== W) {
        throw new Error(
          `reviewCamFigure: a ${grid.join("×")} grid among ${H}×${W} ones; give images and ` +
            "maps on the layout grid (GradCamResult.cams), not the conv grid.",
        );
      }
    }
  }
  return camRows(
    maps.map((m) => ({
      image: m.image.data,
      cam: m.cam.data,
      captions: [`${m.caption}: image`, `${m.caption}: CAM`, `${m.caption}: overlay`],
    })),
    [H, W],
    { title: options.title, tileSize, scheme, alpha },
  );
}

/** Rows of image, map and overlay (one colour range for every map), as one figure. */
function camRows(
  rows: { image: Float32Array; cam: Float32Array; captions: string[] }[],
  [H, W]: [number, number],
  options: { title?: string; tileSize: number; scheme: string; alpha: number },
): Figure {
  const { tileSize, scheme, alpha } = options;
  const camMax = Math.max(...rows.map((row) => range(row.cam)[1]), 0);
  const scale = Math.max(1, Math.ceil(tileSize / Math.max(H, W)));
  const gap = 8, captionHeight = 16, columns = 3;
  const tiles = rows.flatMap((row, c) => {
    const pngs = [
      imageToPng({ data: row.image, shape: [H, W] }, { scale }),
      imageToPng({ data: row.cam, shape: [H, W] }, { scheme, domain: [0, camMax || 1], scale }),
      rgbImageToPng({
        data: overlay(row.image, row.cam, camMax, scheme, alpha),
        shape: [H, W, 3],
      }, { scale }),
    ];
    return pngs.map((png, k) => ({
      x: gap + k * (tileSize + gap) + tileSize / 2,
      y: gap + c * (tileSize + gap + captionHeight) + tileSize / 2,
      src: png.dataUrl(),
      caption: row.captions[k],
    }));
  });
  const width = gap + columns * (tileSize + gap);
  const chart = renderPlot({
    width,
    height: gap + rows.length * (tileSize + gap + captionHeight),
    margin: 0,
    x: { type: "identity" },
    y: { type: "identity" },
    axis: null,
    marks: [
      Plot.image(tiles, {
        x: "x",
        y: "y",
        src: "src",
        width: tileSize,
        height: tileSize,
        imageRendering: "pixelated",
      }),
      Plot.text(tiles, {
        x: "x",
        y: (t: { y: number }) => t.y + tileSize / 2 + 10,
        text: "caption",
        fontSize: 10,
      }),
    ],
  });
  const legend = renderLegend(
    { type: "linear", scheme, domain: [0, camMax || 1], label: "Grad-CAM" } as Plot.ScaleOptions,
    Math.max(width, 240),
  );
  return finishFigure(chart, { title: options.title, legend });
}

/** Options of {@link stateImportanceFigure}. */
export interface StateImportanceFigureOptions {
  /** Title drawn above. */
  title?: string;
  /** Name of each state (default `state 1`, `state 2`, …), e.g. `["layer 6", …]`. */
  stateNames?: readonly string[];
  /** `"mean"` (default: mean importance per feature) or `"share"` (share of the total). */
  measure?: "mean" | "share";
}

/** Importance per hidden state as horizontal bars. */
export function stateImportanceFigure(
  state: StateImportance,
  options: StateImportanceFigureOptions = {},
): Figure {
  const measure = options.measure ?? "mean";
  const values = state[measure];
  if (options.stateNames && options.stateNames.length !== values.length) {
    throw new Error(
      `stateImportanceFigure: ${options.stateNames.length} names for ${values.length} states`,
    );
  }
  const bars: BarDatum[] = Array.from(values, (value, s) => ({
    label: options.stateNames?.[s] ?? `state ${s + 1}`,
    value,
  }));
  return barChart(bars, {
    title: options.title,
    xLabel: measure === "mean" ? "mean Grad-CAM importance per feature" : "share of importance",
    decimals: 3,
  });
}

/** Options of {@link topKFigure}. */
export interface TopKFigureOptions {
  /** Title drawn above. */
  title?: string;
  /** Label of the horizontal axis (default "k (features kept)"). */
  xLabel?: string;
}

/**
 * The top-k curve: accuracy over k for the Grad-CAM ranking, the |coefficient| ranking and
 * random draws (mean, with a band of ± one standard deviation), and all features as a level.
 */
export function topKFigure(curve: TopKCurve, options: TopKFigureOptions = {}): Figure {
  const random = `random (${curve.randomDraws} draws, ± sd)`;
  const points: LinePoint[] = curve.ks.flatMap((k, i) => [
    { x: k, y: curve.cam[i], series: "Grad-CAM" },
    { x: k, y: curve.coefficient[i], series: "|LR coefficient|" },
    {
      x: k,
      y: curve.random.mean[i],
      series: random,
      low: curve.random.mean[i] - curve.random.std[i],
      high: curve.random.mean[i] + curve.random.std[i],
    },
    { x: k, y: curve.allFeatures, series: "all features" },
  ]);
  return lineChart(points, {
    title: options.title,
    xLabel: options.xLabel ?? "k (features kept)",
    yLabel: `accuracy (${curve.evaluationRows} rows)`,
    // Every series its own colour (the random band must not take Grad-CAM's red).
    colors: {
      "Grad-CAM": "#e15759",
      "|LR coefficient|": "#4e79a7",
      [random]: "#59a14f",
      "all features": "#999999",
    },
  });
}
