/**
 * Where a class activation map's cells lie on the DeepInsight image: the chain
 *
 *     layout grid H×W ──nearest ×u──► network input ──frozen slice──► stack input h′×w′
 *                     ──trainable conv stack (stride 1)──► CAM grid h×w
 *
 * described by two {@link Placement}s (slice and conv stack), and the separable linear map
 * that brings a CAM back to the layout grid: each network-input pixel takes the CAM value
 * bilinearly interpolated at its position (clamped at the borders), and each layout pixel the
 * mean over its u×u network-input pixels (the nearest upsampling made them copies of it).
 * Grad-CAM (Selvaraju et al. 2017) upsamples its map bilinearly to the input in the same way;
 * the average pooling undoes the pipeline's ×u upsampling.
 *
 * Placements: index `p` of a coarse grid ↔ index `p·stride + offset` of the finer grid it
 * was computed from (pixel-centre coordinates). The conv stack's is exact (stride 1; valid
 * padding shifts each layer by (k−1)/2, TensorFlow's "same" padding by (k−1)/2 − ⌊(k−1)/2⌋,
 * i.e. ½ for even k). A frozen backbone slice's is by default the uniform one: its h′ cells
 * spread evenly over the H·u input rows, stride H·u/h′ and offset (stride − 1)/2 — exact for
 * "same"-padded stride-s slices, within a few input pixels for valid-padded ones; give the
 * slice's own placement when it is known.
 *
 * @module
 */

/** Index `p` of a coarse grid ↔ index `p·stride + offset` of the finer grid, per axis. */
export interface Placement {
  /** Spacing of the coarse cells in fine-grid pixels `[rows, columns]`. */
  stride: [number, number];
  /** Fine-grid position (pixel centre) of coarse cell 0 `[rows, columns]`. */
  offset: [number, number];
}

/** How the classifier's input was made from the layout's images (see the module doc). */
export interface InputGeometry {
  /** The layout grid `[H, W]` (e.g. `[50, 50]`). Default: the stack input's size ÷ `upsample`. */
  imageShape?: [number, number];
  /** Nearest upsampling factor before the backbone (the paper: 3). Default 1. */
  upsample?: number;
  /**
   * Placement of the stack input's cells on the network input (the frozen slice's geometry).
   * Default: uniform (see the module doc); the identity when there is no backbone.
   */
  slice?: Placement;
}

/** Every step from the CAM grid to the layout grid, resolved. */
export interface CamGeometry {
  /** The layout grid `[H, W]`. */
  imageShape: [number, number];
  /** Nearest upsampling factor. */
  upsample: number;
  /** The trainable stack's input grid `[h′, w′]` (the frozen slice's output). */
  stackInputShape: [number, number];
  /** Stack-input cells on the network input. */
  slice: Placement;
  /** The CAM grid `[h, w]` (the last conv layer's output). */
  camShape: [number, number];
  /** CAM cells on the stack input. */
  cam: Placement;
}

/** The uniform placement of a `coarse` grid over a `fine` one (see the module doc). */
export function uniformPlacement(
  coarse: [number, number],
  fine: [number, number],
): Placement {
  const stride: [number, number] = [fine[0] / coarse[0], fine[1] / coarse[1]];
  return { stride, offset: [(stride[0] - 1) / 2, (stride[1] - 1) / 2] };
}

/**
 * Placement of the output of `layers` stride-1 convolutions of kernel `kernelSize` on their
 * input: offset `layers · (k−1)/2` for valid padding, `layers · ((k−1)/2 − ⌊(k−1)/2⌋)` for
 * TensorFlow's "same" padding (which pads ⌊(k−1)/2⌋ before and the rest after).
 */
export function convStackPlacement(
  layers: number,
  kernelSize: number,
  padding: "valid" | "same",
): Placement {
  const half = (kernelSize - 1) / 2;
  const shift = layers * (padding === "valid" ? half : half - Math.floor(half));
  return { stride: [1, 1], offset: [shift, shift] };
}

/**
 * Resolves the geometry of a CAM of `camShape` computed by a network whose trainable stack
 * reads `stackInputShape` and places its CAM cells by `cam`, for inputs made as `input` says.
 * Throws when the sizes do not fit together (e.g. a stack input larger than the upsampled image).
 */
export function resolveGeometry(
  camShape: [number, number],
  stackInputShape: [number, number],
  cam: Placement,
  input: InputGeometry = {},
): CamGeometry {
  const upsample = input.upsample ?? 1;
  if (!(Number.isInteger(upsample) && upsample >= 1)) {
    throw new Error(`geometry.upsample must be an integer ≥ 1, got ${upsample}`);
  }
  const imageShape: [number, number] = input.imageShape
    ? [input.imageShape[0], input.imageShape[1]]
    : [stackInputShape[0] / upsample, stackInputShape[1] / upsample];
  if (!imageShape.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error(
      `geometry: cannot infer the layout grid from a ${stackInputShape.join("×")} stack input ` +
        `and upsample ${upsample}; pass geometry.imageShape (e.g. [50, 50]).`,
    );
  }
  const networkInput: [number, number] = [imageShape[0] * upsample, imageShape[1] * upsample];
  const slice = input.slice ?? uniformPlacement(stackInputShape, networkInput);
  return {
    imageShape,
    upsample,
    stackInputShape: [stackInputShape[0], stackInputShape[1]],
    slice,
    camShape: [camShape[0], camShape[1]],
    cam,
  };
}

/**
 * One axis of the resampling as a dense `[image, cam]` matrix: row `r` holds the weights of
 * the CAM cells in layout pixel `r` (bilinear at each of its `u` network-input pixels,
 * clamped to the first and last cell, averaged). Every row sums to 1.
 */
export function axisResampling(geometry: CamGeometry, axis: 0 | 1): Float64Array {
  const size = geometry.imageShape[axis], cells = geometry.camShape[axis];
  const u = geometry.upsample;
  const out = new Float64Array(size * cells);
  for (let r = 0; r < size; r++) {
    for (let a = 0; a < u; a++) {
      const t = r * u + a; // network-input pixel
      const p = (t - geometry.slice.offset[axis]) / geometry.slice.stride[axis];
      const i = (p - geometry.cam.offset[axis]) / geometry.cam.stride[axis];
      const clamped = Math.min(cells - 1, Math.max(0, i));
      const i0 = Math.floor(clamped), i1 = Math.min(cells - 1, i0 + 1);
      const frac = clamped - i0;
      out[r * cells + i0] += (1 - frac) / u;
      out[r * cells + i1] += frac / u;
    }
  }
  return out;
}

/**
 * Maps maps `[n, h, w]` on the CAM grid (row-major, `n·h·w` values) to the layout grid
 * `[n, H, W]` by the separable resampling of {@link axisResampling}.
 */
export function camToImageGrid(cams: Float32Array, n: number, geometry: CamGeometry): Float32Array {
  const [h, w] = geometry.camShape, [H, W] = geometry.imageShape;
  if (cams.length !== n * h * w) {
    throw new Error(`camToImageGrid: ${cams.length} values, expected ${n}×${h}×${w}`);
  }
  const rows = axisResampling(geometry, 0), cols = axisResampling(geometry, 1);
  const out = new Float32Array(n * H * W);
  const tmp = new Float64Array(H * w);
  for (let k = 0; k < n; k++) {
    const cam = cams.subarray(k * h * w, (k + 1) * h * w);
    tmp.fill(0);
    for (let r = 0; r < H; r++) {
      for (let i = 0; i < h; i++) {
        const weight = rows[r * h + i];
        if (weight === 0) continue;
        for (let j = 0; j < w; j++) tmp[r * w + j] += weight * cam[i * w + j];
      }
    }
    const base = k * H * W;
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) {
        let s = 0;
        for (let j = 0; j < w; j++) s += cols[c * w + j] * tmp[r * w + j];
        out[base + r * W + c] = s;
      }
    }
  }
  return out;
}
