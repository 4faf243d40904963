/**
 * Plain values exchanged between stages: row-major typed arrays with their shapes. No stage
 * passes framework objects (tensors, sessions) to another.
 *
 * @module
 */

/** A row-major matrix, e.g. embeddings `[samples, features]`. */
export interface Matrix {
  /** Row-major values, `shape[0] * shape[1]` of them. */
  data: Float32Array;
  /** `[rows, cols]`. */
  shape: [number, number];
}

/** A batch of single-channel images, row-major `[n, height, width]`. */
export interface ImageBatch {
  /** Row-major values, `n * height * width` of them. */
  data: Float32Array;
  /** `[n, height, width]`. */
  shape: [number, number, number];
}

/** A batch of channels-last feature maps or images, `[n, height, width, channels]`. */
export interface FeatureBatch {
  /** Row-major values. */
  data: Float32Array;
  /** `[n, height, width, channels]`. */
  shape: [number, number, number, number];
}

/** Binary labels, 0 (negative) or 1 (positive), one per row. */
export type Labels = Uint8Array;
