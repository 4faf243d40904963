/**
 * Mean image of each class and their difference: where, on the DeepInsight layout, positive
 * and negative reviews differ on average.
 *
 * @module
 */
import type { ImageBatch, Labels } from "../types.ts";

/** One image `[height, width]`, row-major. */
export interface SingleImage {
  /** Row-major values. */
  data: Float32Array;
  /** `[height, width]`. */
  shape: [number, number];
}

/** The class means of {@link classMeanImages}. */
export interface ClassMeanImages {
  /** Mean image of label 0. */
  negative: SingleImage;
  /** Mean image of label 1. */
  positive: SingleImage;
  /** `positive − negative`, pixel by pixel. */
  difference: SingleImage;
}

/** Mean image per label (0 and 1) of `images`, and positive minus negative. */
export function classMeanImages(images: ImageBatch, labels: Labels): ClassMeanImages {
  const [n, height, width] = images.shape;
  if (labels.length !== n) {
    throw new Error(`classMeanImages: ${n} images but ${labels.length} labels`);
  }
  const size = height * width;
  const sums = [new Float64Array(size), new Float64Array(size)];
  const counts = [0, 0];
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    if (label !== 0 && label !== 1) throw new Error(`classMeanImages: label ${label} at row ${i}`);
    counts[label]++;
    const sum = sums[label];
    for (let p = 0, o = i * size; p < size; p++, o++) sum[p] += images.data[o];
  }
  if (counts[0] === 0 || counts[1] === 0) {
    throw new Error("classMeanImages needs at least one image of each label");
  }
  const mean = (label: 0 | 1): SingleImage => ({
    data: Float32Array.from(sums[label], (v) => v / counts[label]),
    shape: [height, width],
  });
  const negative = mean(0), positive = mean(1);
  return {
    negative,
    positive,
    difference: {
      data: positive.data.map((v, p) => v - negative.data[p]),
      shape: [height, width],
    },
  };
}
