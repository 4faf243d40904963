/**
 * Feature standardisation before the trainable part: each value of a backbone's feature map
 * minus its mean over the training images (per position and channel), divided by its
 * channel's standard deviation across images.
 *
 * Why: DeepInsight images of one data set share their layout (here three quarters of the
 * pixels are empty in every image), so a backbone's feature maps are mostly the same map
 * for every review: across-image variance is 0.4% (resnet50) to 6% (darknet_reference) of
 * the total in the 5,000-review run. BatchNorm in the conv stack divides by the total, the
 * review-dependent part arrives scaled down by up to 16×, and resnet50 and mobilenet_v1
 * stayed at chance. Subtracting the shared map and scaling by the across-image spread gives
 * the conv stack the part that differs between reviews. The paper does not do this.
 *
 * @module
 */
import { readValues } from "../tf.ts";
import type { Collective } from "./collective.ts";
import type { FeatureSource } from "./sources.ts";

/** Fitted standardisation: `x' = (x − mean) · scale`. */
export interface FeatureStandardization {
  /** Mean over the training images, one per value of a feature map `[h·w·c]`. */
  mean: Float32Array;
  /** `1 / √(variance + 1e-5)` per channel `[c]`, the variance taken across images. */
  scale: Float32Array;
}

const EPSILON = 1e-5;

/**
 * Fits a {@link FeatureStandardization} on every row of `source`, in batches. With a
 * collective of several ranks each rank reads its share of the rows and the sums are
 * combined, so every rank gets the same result.
 */
export function fitFeatureStandardization(
  source: FeatureSource,
  collective?: Collective,
  batchSize = 64,
): FeatureStandardization {
  const [h, w, c] = source.featureShape;
  const row = h * w * c;
  const rank = collective?.rank ?? 0, size = collective?.size ?? 1;
  const from = Math.floor((rank * source.length) / size);
  const to = Math.floor(((rank + 1) * source.length) / size);
  // [Σx per value, Σx² per value, rows], in float64
  const sums = new Float64Array(2 * row + 1);
  for (let start = from; start < to; start += batchSize) {
    const end = Math.min(to, start + batchSize);
    const batch = source.gather(Array.from({ length: end - start }, (_, i) => start + i));
    const values = readValues(batch);
    for (let r = 0; r < end - start; r++) {
      const offset = r * row;
      for (let j = 0; j < row; j++) {
        const x = values[offset + j];
        sums[j] += x;
        sums[row + j] += x * x;
      }
    }
    batch.dispose();
  }
  sums[2 * row] = to - from;
  collective?.allReduceSum(sums);
  const n = sums[2 * row];
  if (!(n > 0)) throw new Error("fitFeatureStandardization: the source has no rows");
  const mean = new Float32Array(row);
  const variance = new Float64Array(c);
  for (let j = 0; j < row; j++) {
    const mu = sums[j] / n;
    mean[j] = mu;
    variance[j % c] += Math.max(0, sums[row + j] / n - mu * mu) / (h * w);
  }
  const scale = Float32Array.from(variance, (v) => 1 / Math.sqrt(v + EPSILON));
  return { mean, scale };
}
