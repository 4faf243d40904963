/**
 * Photographs for checking backbones: JPEG decoding (jpeg-js, pure JS) to [0, 1] RGB, and a
 * bilinear resize that low-pass filters when it shrinks (the triangle filter widened by the
 * scale factor, as PIL's `BILINEAR` does), so a 773×512 photo shrunk to 224×224 does not
 * alias.
 *
 * @module
 */
import jpeg from "jpeg-js";
import type { FeatureBatch } from "../types.ts";

/** Decodes JPEG bytes into one RGB image `[1, h, w, 3]` with values in [0, 1]. */
export function decodeJpeg(bytes: Uint8Array): FeatureBatch {
  const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
  const { width, height, data } = image;
  const out = new Float32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    out[p * 3] = data[p * 4] / 255;
    out[p * 3 + 1] = data[p * 4 + 1] / 255;
    out[p * 3 + 2] = data[p * 4 + 2] / 255;
  }
  return { data: out, shape: [1, height, width, 3] };
}

/** Per output index: first input index and normalised weights of the taps. */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  maxTaps: number;
}

function taps(inSize: number, outSize: number, antialias: boolean): Taps {
  const scale = inSize / outSize;
  const filterScale = antialias ? Math.max(1, scale) : 1;
  const support = filterScale; // the triangle filter has radius 1, widened by filterScale
  const maxTaps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * maxTaps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale; // in input pixel units, pixel j covers [j, j+1)
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(inSize, Math.ceil(center + support));
    let sum = 0;
    let n = 0;
    for (let j = lo; j < hi && n < maxTaps; j++, n++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - center) / filterScale));
      weights[i * maxTaps + n] = w;
      sum += w;
    }
    first[i] = lo;
    count[i] = n;
    for (let k = 0; k < n; k++) weights[i * maxTaps + k] /= sum || 1;
  }
  return { first, count, weights, maxTaps };
}

/**
 * Resizes `[n, h, w, c]` images to `[outHeight, outWidth]` with bilinear interpolation
 * (pixel centres aligned, half-pixel convention). With `antialias` (default) shrinking
 * averages over the covered input pixels instead of sampling 2×2 of them.
 */
export function resizeBilinear(
  images: FeatureBatch,
  [outHeight, outWidth]: [number, number],
  options: { antialias?: boolean } = {},
): FeatureBatch {
  const antialias = options.antialias ?? true;
  const [n, h, w, c] = images.shape;
  const tx = taps(w, outWidth, antialias);
  const ty = taps(h, outHeight, antialias);
  const rows = new Float32Array(h * outWidth * c);
  const out = new Float32Array(n * outHeight * outWidth * c);
  for (let b = 0; b < n; b++) {
    const base = b * h * w * c;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < outWidth; x++) {
        const dst = (y * outWidth + x) * c;
        for (let k = 0; k < c; k++) rows[dst + k] = 0;
        for (let t = 0; t < tx.count[x]; t++) {
          const weight = tx.weights[x * tx.maxTaps + t];
          const src = base + (y * w + tx.first[x] + t) * c;
          for (let k = 0; k < c; k++) rows[dst + k] += weight * images.data[src + k];
        }
      }
    }
    const outBase = b * outHeight * outWidth * c;
    for (let y = 0; y < outHeight; y++) {
      for (let t = 0; t < ty.count[y]; t++) {
        const weight = ty.weights[y * ty.maxTaps + t];
        const src = (ty.first[y] + t) * outWidth * c;
        const dst = outBase + y * outWidth * c;
        for (let i = 0; i < outWidth * c; i++) out[dst + i] += weight * rows[src + i];
      }
    }
  }
  return { data: out, shape: [n, outHeight, outWidth, c] };
}

/** Reads a JPEG file and, if `size` is given, resizes it to `[h, w]`. Values in [0, 1]. */
export async function loadJpeg(path: string, size?: [number, number]): Promise<FeatureBatch> {
  const image = decodeJpeg(await Deno.readFile(path));
  return size ? resizeBilinear(image, size) : image;
}
