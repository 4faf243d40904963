/**
 * Single-channel images (a DeepInsight image, a mean image, a feature map) to colour-mapped
 * PNGs. Colour schemes come from Observable Plot's scales, so PNGs and SVG heatmaps share
 * colours.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { encode } from "fast-png";
import { encodeGrayPng } from "../image/png.ts";
import type { ImageBatch } from "../types.ts";
import { PngImage } from "./figure.ts";

/** A single-channel image: row-major values and `[height, width]`. */
export interface GrayImage {
  /** Row-major values, `height * width` of them. */
  data: ArrayLike<number>;
  /** `[height, width]`. */
  shape: readonly [number, number];
}

/** How values become colours. */
export interface ColorOptions {
  /**
   * `"gray"` (black → white) or any Observable Plot colour scheme name (`"viridis"`,
   * `"magma"`, `"rdbu"`, `"blues"`, …). Default `"gray"`, or `"rdbu"` when `diverging`.
   */
  scheme?: string;
  /** Value range mapped to the ends of the scheme; default the data's min and max. */
  domain?: readonly [number, number];
  /** Centre the domain on 0 (symmetric), for signed data such as difference images. */
  diverging?: boolean;
}

/** Options of {@link imageToPng}. */
export interface PngOptions extends ColorOptions {
  /** Integer upsampling factor (nearest neighbour); default makes the long side ≥ 160 px. */
  scale?: number;
}

const lookupCache = new Map<string, Uint8Array>();

function parseColor(color: string): [number, number, number] {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (hex) return [parseInt(hex[1], 16), parseInt(hex[2], 16), parseInt(hex[3], 16)];
  const rgb = /^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/i.exec(color);
  if (rgb) {
    return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])].map(Math.round) as [
      number,
      number,
      number,
    ];
  }
  throw new Error(`cannot parse colour ${JSON.stringify(color)}`);
}

/** A 256-entry RGB lookup table (768 bytes) for a colour scheme, index 0 = low end. */
export function colorLookup(scheme: string): Uint8Array {
  const cached = lookupCache.get(scheme);
  if (cached) return cached;
  const table = new Uint8Array(256 * 3);
  if (scheme === "gray" || scheme === "grey") {
    for (let i = 0; i < 256; i++) table.fill(i, 3 * i, 3 * i + 3);
  } else {
    const scale = Plot.scale({
      color: { type: "linear", scheme: scheme as Plot.ColorScheme, domain: [0, 1] },
    });
    for (let i = 0; i < 256; i++) {
      table.set(parseColor(String(scale.apply(i / 255))), 3 * i);
    }
  }
  lookupCache.set(scheme, table);
  return table;
}

/** The value range to colour: explicit, symmetric around 0, or the finite min..max. */
export function colorDomain(
  values: ArrayLike<number>,
  options: ColorOptions = {},
): [number, number] {
  if (options.domain) return [options.domain[0], options.domain[1]];
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (min > max) return [0, 1];
  if (options.diverging) {
    const m = Math.max(Math.abs(min), Math.abs(max)) || 1;
    return [-m, m];
  }
  if (min === max) return [min - 0.5, max + 0.5];
  return [min, max];
}

/** The scheme used when none is given. */
export function defaultScheme(options: ColorOptions): string {
  return options.scheme ?? (options.diverging ? "rdbu" : "gray");
}

/**
 * Encodes one single-channel image as a PNG: 8-bit grayscale for the `"gray"` scheme (through
 * lib/image's encoder), colour-mapped RGB for the others.
 */
export function imageToPng(image: GrayImage, options: PngOptions = {}): PngImage {
  const [height, width] = image.shape;
  if (image.data.length !== height * width) {
    throw new Error(
      `image data has ${image.data.length} values, shape [${height}, ${width}] needs ${
        height * width
      }`,
    );
  }
  const scale = Math.max(1, Math.floor(options.scale ?? Math.ceil(160 / Math.max(height, width))));
  const scheme = defaultScheme(options);
  const [low, high] = colorDomain(image.data, options);
  if (scheme === "gray" || scheme === "grey") {
    const bytes = encodeGrayPng(image, { min: low, max: high, scale });
    return new PngImage(bytes, width * scale, height * scale);
  }
  const table = colorLookup(scheme);
  const span = high - low || 1;
  const outWidth = width * scale;
  const outHeight = height * scale;
  const rgb = new Uint8Array(outWidth * outHeight * 3);
  for (let r = 0; r < outHeight; r++) {
    const sourceRow = Math.floor(r / scale) * width;
    for (let c = 0; c < outWidth; c++) {
      const v = image.data[sourceRow + Math.floor(c / scale)];
      const t = Number.isFinite(v) ? (v - low) / span : 0;
      const index = Math.max(0, Math.min(255, Math.round(t * 255)));
      const o = (r * outWidth + c) * 3;
      rgb[o] = table[3 * index];
      rgb[o + 1] = table[3 * index + 1];
      rgb[o + 2] = table[3 * index + 2];
    }
  }
  const bytes = encode({ width: outWidth, height: outHeight, data: rgb, channels: 3, depth: 8 });
  return new PngImage(bytes, outWidth, outHeight);
}

/** Image `index` of a batch `[n, height, width]`, as a view (no copy). */
export function imageAt(batch: ImageBatch, index: number): GrayImage {
  const [n, height, width] = batch.shape;
  if (!(index >= 0 && index < n)) throw new RangeError(`image ${index} of ${n}`);
  const size = height * width;
  return { data: batch.data.subarray(index * size, (index + 1) * size), shape: [height, width] };
}

/** An RGB image with values in [0, 1]: row-major `[height, width, 3]`. */
export interface RgbImage {
  /** Row-major RGB values in [0, 1]. */
  data: ArrayLike<number>;
  /** `[height, width, 3]`. */
  shape: readonly [number, number, 3] | readonly [number, number, number];
}

/** Encodes an RGB image with values in [0, 1] (clamped) as a PNG, upsampled by `scale`. */
export function rgbImageToPng(image: RgbImage, options: { scale?: number } = {}): PngImage {
  const [height, width, channels] = image.shape;
  if (channels !== 3 || image.data.length !== height * width * 3) {
    throw new Error(`an RGB image needs shape [h, w, 3] and h·w·3 values`);
  }
  const scale = Math.max(1, Math.floor(options.scale ?? 1));
  const outWidth = width * scale;
  const outHeight = height * scale;
  const rgb = new Uint8Array(outWidth * outHeight * 3);
  for (let r = 0; r < outHeight; r++) {
    for (let c = 0; c < outWidth; c++) {
      const source = (Math.floor(r / scale) * width + Math.floor(c / scale)) * 3;
      for (let k = 0; k < 3; k++) {
        const v = image.data[source + k];
        rgb[(r * outWidth + c) * 3 + k] = Number.isFinite(v)
          ? Math.round(255 * Math.max(0, Math.min(1, v)))
          : 0;
      }
    }
  }
  const bytes = encode({ width: outWidth, height: outHeight, data: rgb, channels: 3, depth: 8 });
  return new PngImage(bytes, outWidth, outHeight);
}
