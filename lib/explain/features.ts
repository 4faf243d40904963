/**
 * From pixels back to features through the DeepInsight layout (Sharma et al. 2019): the
 * fitted transformer puts feature `j` on pixel `coords[j] = (row, column)`, and the image
 * shows at each pixel the mean of its features' values. A class activation map therefore
 * says how much a pixel mattered, not which of its features did: every feature on a pixel is
 * credited with that pixel's value (`sharing: "full"`, the default — features sharing a
 * pixel share its importance and cannot be told apart), or with an equal part of it
 * (`"split"`, so the importances sum to the map's total over occupied pixels).
 *
 * Features are blocks of one encoder's hidden states (e.g. 6 states × 768 for BERT, 3 × 512
 * for USE-lite): {@link stateImportance} sums and averages the importance per block.
 *
 * @module
 */
import type { CamMap, RowSet } from "./gradcam.ts";

/** Pixel `(row, column)` of each feature, row-major `[features, 2]` (an ImageTransformer's `coords()`). */
export interface FeatureCoords {
  /** Row-major `(row, column)` pairs. */
  data: ArrayLike<number>;
  /** `[features, 2]`. */
  shape: readonly [number, number];
}

/** Options of {@link featureImportance}. */
export interface FeatureImportanceOptions {
  /** `"full"` (default) or `"split"`: how features on one pixel share it (see the module doc). */
  sharing?: "full" | "split";
}

/** Importance of each feature, with the rows the map came from. */
export interface FeatureImportance {
  /** One value per feature. */
  values: Float32Array;
  /** Which rows the map was computed on (only `"train"`/`"validation"` may choose features). */
  rows: RowSet;
  /** How features on one pixel shared it. */
  sharing: "full" | "split";
}

/**
 * The importance of each feature: the value of `map` at the feature's pixel (see the module
 * doc for pixels holding several features). Throws when a pixel lies outside the map.
 */
export function featureImportance(
  map: CamMap,
  coords: FeatureCoords,
  options: FeatureImportanceOptions = {},
): FeatureImportance {
  const sharing = options.sharing ?? "full";
  const [H, W] = map.shape;
  const n = coords.shape[0];
  if (coords.shape[1] !== 2 || coords.data.length !== 2 * n) {
    throw new Error(`featureImportance: coords must be [features, 2], got [${coords.shape}]`);
  }
  const pixel = new Int32Array(n);
  const occupancy = new Int32Array(H * W);
  for (let j = 0; j < n; j++) {
    const r = coords.data[2 * j], c = coords.data[2 * j + 1];
    if (!(Number.isInteger(r) && Number.isInteger(c) && r >= 0 && r < H && c >= 0 && c < W)) {
      throw new Error(
        `featureImportance: feature ${j} is on pixel (${r}, ${c}), outside the ${H}×${W} map; ` +
          `use the coords of the layout the classifier's images were made with.`,
      );
    }
    pixel[j] = r * W + c;
    occupancy[pixel[j]]++;
  }
  const values = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const v = map.data[pixel[j]];
    values[j] = sharing === "split" ? v / occupancy[pixel[j]] : v;
  }
  return { values, rows: map.rows, sharing };
}

/** Importance aggregated per hidden state (block of features). */
export interface StateImportance {
  /** Sum over each state's features. */
  sum: Float64Array;
  /** Mean over each state's features. */
  mean: Float64Array;
  /** Each state's share of the total sum (0 when the total is 0). */
  share: Float64Array;
  /** Features per state. */
  featuresPerState: number;
}

/**
 * Sums and means of `importance` per hidden state: state `s` holds features
 * `[s·featuresPerState, (s+1)·featuresPerState)`, the embedding's concatenation order.
 * Throws unless the feature count is a multiple of `featuresPerState`.
 */
export function stateImportance(
  importance: FeatureImportance | ArrayLike<number>,
  featuresPerState: number,
): StateImportance {
  // Arrays have a `values` method, so tell the two apart by the row set.
  const values = typeof (importance as FeatureImportance).rows === "string"
    ? (importance as FeatureImportance).values
    : importance as ArrayLike<number>;
  const n = values.length;
  if (!(Number.isInteger(featuresPerState) && featuresPerState >= 1) || n % featuresPerState) {
    throw new Error(
      `stateImportance: ${n} features are not blocks of featuresPerState = ${featuresPerState}; ` +
        `pass the encoder's hidden size (e.g. 768 for BERT, 512 for USE-lite).`,
    );
  }
  const states = n / featuresPerState;
  const sum = new Float64Array(states);
  for (let j = 0; j < n; j++) sum[Math.floor(j / featuresPerState)] += values[j];
  const total = sum.reduce((a, b) => a + b, 0);
  return {
    sum,
    mean: sum.map((v) => v / featuresPerState),
    share: sum.map((v) => (total > 0 ? v / total : 0)),
    featuresPerState,
  };
}

/**
 * Feature indices by decreasing `scores`, ties broken by the lower index (a stable order, so
 * features sharing a pixel stay together in index order).
 */
export function rankFeatures(scores: ArrayLike<number>): Int32Array {
  const order = Int32Array.from({ length: scores.length }, (_, i) => i);
  return order.sort((a, b) => scores[b] - scores[a] || a - b);
}
