/**
 * DeepInsight images out as 8-bit grayscale PNG: one image, or a labelled grid of many
 * (labels drawn with a built-in 5×7 bitmap font, upper case, digits and common
 * punctuation; lower case is drawn as upper case).
 *
 * @module
 */
import { encode } from "fast-png";
import type { ImageBatch } from "../types.ts";

/** How values become gray levels. */
export interface GrayOptions {
  /** Value drawn black (default 0). */
  min?: number;
  /** Value drawn white (default 1); values outside [min, max] are clipped. */
  max?: number;
  /** Integer nearest-neighbour magnification (default 1). */
  scale?: number;
}

/** A single-channel image: row-major values and `[height, width]`. */
export interface GrayImage {
  /** Row-major values. */
  data: ArrayLike<number>;
  /** `[height, width]`. */
  shape: readonly [number, number];
}

// 5×7 glyphs, one number per row (bit 4 = leftmost column).
const GLYPHS: Record<string, number[]> = {
  "0": [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
  "1": [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
  "2": [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
  "3": [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
  "4": [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
  "5": [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
  "6": [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
  "7": [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
  "8": [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
  "9": [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
  A: [0x0e, 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11],
  B: [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
  C: [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
  D: [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
  E: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
  F: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
  G: [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f],
  H: [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
  I: [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
  J: [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
  K: [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
  L: [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
  M: [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
  N: [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
  O: [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
  P: [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
  Q: [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d],
  R: [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
  S: [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
  T: [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
  U: [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
  V: [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
  W: [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a],
  X: [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
  Y: [0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04],
  Z: [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
  " ": [0, 0, 0, 0, 0, 0, 0],
  ".": [0, 0, 0, 0, 0, 0x0c, 0x0c],
  ",": [0, 0, 0, 0, 0x0c, 0x04, 0x08],
  ":": [0, 0x0c, 0x0c, 0, 0x0c, 0x0c, 0],
  "-": [0, 0, 0, 0x1f, 0, 0, 0],
  "+": [0, 0x04, 0x04, 0x1f, 0x04, 0x04, 0],
  "_": [0, 0, 0, 0, 0, 0, 0x1f],
  "/": [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
  "(": [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
  ")": [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
  "[": [0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e],
  "]": [0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e],
  "%": [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
  "=": [0, 0, 0x1f, 0, 0x1f, 0, 0],
  "#": [0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a],
  "!": [0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04],
  "?": [0x0e, 0x11, 0x01, 0x02, 0x04, 0, 0x04],
  "'": [0x0c, 0x04, 0x08, 0, 0, 0, 0],
  "<": [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02],
  ">": [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
  "*": [0, 0x04, 0x15, 0x0e, 0x15, 0x04, 0],
};

/** Glyph width and height of the label font, in font pixels (plus 1 column of spacing). */
export const FONT_SIZE = { width: 5, height: 7, advance: 6 } as const;

/** The characters the label font can draw (lower case maps to upper case). */
export const FONT_CHARACTERS: string = Object.keys(GLYPHS).join("");

/** The 7 rows of a character's glyph (`?` for characters the font lacks). */
export function glyph(ch: string): readonly number[] {
  return GLYPHS[ch.toUpperCase()] ?? GLYPHS["?"];
}

/** Width in pixels of `text` drawn at magnification `scale`. */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * FONT_SIZE.advance - 1) * scale;
}

/** Draws `text` into an 8-bit buffer `[height, width]` at `(top, left)` in gray `ink`. */
export function drawText(
  buffer: Uint8Array,
  width: number,
  height: number,
  text: string,
  top: number,
  left: number,
  options: { scale?: number; ink?: number } = {},
): void {
  const scale = options.scale ?? 1;
  const ink = options.ink ?? 255;
  for (let k = 0; k < text.length; k++) {
    const rows = glyph(text[k]);
    const x0 = left + k * FONT_SIZE.advance * scale;
    for (let r = 0; r < FONT_SIZE.height; r++) {
      for (let c = 0; c < FONT_SIZE.width; c++) {
        if (!((rows[r] >> (FONT_SIZE.width - 1 - c)) & 1)) continue;
        for (let dy = 0; dy < scale; dy++) {
          const y = top + r * scale + dy;
          if (y < 0 || y >= height) continue;
          for (let dx = 0; dx < scale; dx++) {
            const x = x0 + c * scale + dx;
            if (x >= 0 && x < width) buffer[y * width + x] = ink;
          }
        }
      }
    }
  }
}

function toGray(v: number, min: number, max: number): number {
  const t = max > min ? (v - min) / (max - min) : 0;
  if (!(t > 0)) return 0; // also NaN
  if (t >= 1) return 255;
  return Math.round(t * 255);
}

function checkScale(scale: number): number {
  if (!Number.isInteger(scale) || scale < 1) {
    throw new Error(`scale must be a positive integer, got ${scale}`);
  }
  return scale;
}

/** 8-bit gray levels of an image, magnified by `scale`: `{pixels, width, height}`. */
export function grayLevels(
  image: GrayImage,
  options: GrayOptions = {},
): { pixels: Uint8Array; width: number; height: number } {
  const [h, w] = image.shape;
  if (image.data.length !== h * w) {
    throw new Error(`image has ${image.data.length} values, shape [${h}, ${w}] needs ${h * w}`);
  }
  const min = options.min ?? 0, max = options.max ?? 1;
  const s = checkScale(options.scale ?? 1);
  const width = w * s, height = h * s;
  const pixels = new Uint8Array(width * height);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const g = toGray(image.data[r * w + c], min, max);
      for (let dy = 0; dy < s; dy++) {
        pixels.fill(g, (r * s + dy) * width + c * s, (r * s + dy) * width + c * s + s);
      }
    }
  }
  return { pixels, width, height };
}

/** One image of a batch `[n, H, W]` as a {@link GrayImage}. */
export function batchImage(batch: ImageBatch, index: number): GrayImage {
  const [n, h, w] = batch.shape;
  if (!(index >= 0 && index < n)) throw new Error(`image index ${index} outside 0..${n - 1}`);
  return { data: batch.data.subarray(index * h * w, (index + 1) * h * w), shape: [h, w] };
}

/** Encodes one image as an 8-bit grayscale PNG (values in [min, max] → 0..255). */
export function encodeGrayPng(image: GrayImage, options: GrayOptions = {}): Uint8Array {
  const { pixels, width, height } = grayLevels(image, options);
  return encode({ width, height, data: pixels, channels: 1, depth: 8 });
}

/** Options of {@link imageGridPng}. */
export interface GridOptions extends GrayOptions {
  /** One label per image, drawn under it (default none). */
  labels?: readonly string[];
  /** Images per row (default ⌈√n⌉). */
  columns?: number;
  /** Gap between tiles and around the grid, in output pixels (default 4). */
  padding?: number;
  /** Magnification of the label font (default 1). */
  labelScale?: number;
  /** Background gray level 0..255 (default 32). */
  background?: number;
}

/**
 * A grid of the images of a batch `[n, H, W]` as one 8-bit grayscale PNG, each tile
 * magnified by `scale` and labelled underneath (labels are clipped to the tile width).
 */
export function imageGridPng(batch: ImageBatch, options: GridOptions = {}): Uint8Array {
  const [n, h, w] = batch.shape;
  if (n === 0) throw new Error("imageGridPng needs at least one image");
  if (options.labels && options.labels.length !== n) {
    throw new Error(`got ${options.labels.length} labels for ${n} images`);
  }
  const s = checkScale(options.scale ?? 1);
  const labelScale = checkScale(options.labelScale ?? 1);
  const columns = options.columns ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / columns);
  const pad = options.padding ?? 4;
  const labelHeight = options.labels ? FONT_SIZE.height * labelScale + pad : 0;
  const tileW = w * s, tileH = h * s;
  const width = pad + columns * (tileW + pad);
  const height = pad + rows * (tileH + labelHeight + pad);
  const pixels = new Uint8Array(width * height).fill(options.background ?? 32);
  for (let k = 0; k < n; k++) {
    const left = pad + (k % columns) * (tileW + pad);
    const top = pad + Math.floor(k / columns) * (tileH + labelHeight + pad);
    const tile = grayLevels(batchImage(batch, k), { min: options.min, max: options.max, scale: s });
    for (let r = 0; r < tileH; r++) {
      pixels.set(tile.pixels.subarray(r * tileW, (r + 1) * tileW), (top + r) * width + left);
    }
    if (options.labels) {
      const maxChars = Math.max(
        0,
        Math.floor((tileW + labelScale) / (FONT_SIZE.advance * labelScale)),
      );
      const text = options.labels[k].slice(0, maxChars);
      drawText(pixels, width, height, text, top + tileH + pad, left, { scale: labelScale });
    }
  }
  return encode({ width, height, data: pixels, channels: 1, depth: 8 });
}

/** Writes PNG bytes to `path`. */
export async function writePng(path: string, png: Uint8Array): Promise<void> {
  await Deno.writeFile(path, png);
}
