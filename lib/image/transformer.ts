/**
 * DeepInsight's image transformer (Sharma et al. 2019), with an API modelled on
 * pyDeepInsight's `ImageTransformer`, typed: each feature gets a pixel from a 2-D map of the
 * features (t-SNE on the transposed, scaled data), the map's minimum bounding rectangle made
 * axis-aligned, and a discretisation onto an `H × W` grid; each sample becomes an image
 * whose pixels hold the (averaged) scaled values of their features.
 *
 * ```ts
 * const it = new ImageTransformer({ pixels: 50, scaler: "log", tsne: { seed: 1701 } });
 * // or: featureExtractor "pca" | "kpca" | "umap" | "random", discretization "qtb" | "lsa",
 * //     tsne: { metric: "cosine" }, compat: "pydeepinsight" (see compat.ts)
 * await it.fit(trainX);                 // Matrix [samples, features]
 * const images = it.transform(testX);   // ImageBatch [n, 50, 50]
 * await it.save("data/layout.json");    // later: await ImageTransformer.load(...)
 * ```
 *
 * @module
 */
import type { FeatureBatch, ImageBatch, Matrix } from "../types.ts";
import { type Compat, type LayoutConventions, layoutConventions } from "./compat.ts";
import {
  binCoordinates,
  type Discretization,
  DISCRETIZATIONS,
  lsaCoordinates,
  type PixelCoords,
  qtbCoordinates,
} from "./discretize.ts";
import {
  type BoundingRectangle,
  convexHull,
  type Hull,
  minimumBoundingRectangle,
  rotatePoints,
  type Rotation,
  rotationFor,
} from "./hull.ts";
import {
  kernelPca,
  type KernelPcaOptions,
  type LayoutProgress,
  randomLayout,
  resolveUmapOptions,
  umapLayout,
  type UmapOptions,
} from "./layouts.ts";
import { randomizedPca } from "./linalg.ts";
import { makeScaler, type Scaler, scalerFromJSON, type ScalerState } from "./scalers.ts";
import { TSNE, type TsneOptions, type TsneProgress } from "./tsne.ts";
import {
  CorruptCacheError,
  parseJsonObject,
  sealJson,
  verifySeal,
  verifyVersion,
  writeAtomic,
} from "../integrity.ts";

/**
 * Version of the layout stage's computation (scaling, t-SNE, hull, rectangle,
 * discretisation), recorded by {@link ImageTransformer.save} and checked by
 * {@link ImageTransformer.load}. Bump it by hand when a change alters the fitted layout;
 * saved layouts of another version raise `StaleCacheError`. 1: the code before
 * versions were recorded (its files have none); 2: the first recorded.
 */
export const LAYOUT_STAGE_VERSION = 2;

/** Anything that maps points `[n, d]` to a 2-D map `[n, 2]` (sklearn's `fit_transform`). */
export interface FeatureEmbedder {
  /** Embeds the rows of `points` (the features) in 2-D. */
  fitTransform(
    points: Matrix,
    options?: { onProgress?: (p: TsneProgress) => void },
  ): Matrix | Promise<Matrix>;
}

/**
 * The named feature maps: `"tsne"` (the paper's), `"pca"` (first two principal
 * components), `"kpca"` (RBF kernel PCA), `"umap"`, `"random"` (uniform random positions,
 * a control).
 */
export type NamedFeatureExtractor = "tsne" | "pca" | "kpca" | "umap" | "random";

/** The named feature maps, for validation. */
export const FEATURE_EXTRACTORS: ReadonlyArray<NamedFeatureExtractor> = [
  "tsne",
  "pca",
  "kpca",
  "umap",
  "random",
];

/** A named feature map (default `"tsne"`) or a custom embedder. */
export type FeatureExtractor = NamedFeatureExtractor | FeatureEmbedder;

/** Options of {@link ImageTransformer}. */
export interface ImageTransformerOptions {
  /**
   * How features are laid out in 2-D (default `"tsne"`): `"tsne"`, `"pca"`, `"kpca"`
   * (options {@link kernelPca}), `"umap"` (options {@link umap}), `"random"`, or an object
   * with `fitTransform(points)`.
   */
  featureExtractor?: FeatureExtractor;
  /** Grid size: `P` for `P × P`, or `[height, width]` (default 50). */
  pixels?: number | [number, number];
  /**
   * `"bin"` (default, the paper's), `"qtb"` (quantile ranks per axis, then equal-width
   * bins: features spread over the grid) or `"lsa"` (one feature group per pixel).
   */
  discretization?: Discretization;
  /**
   * pyDeepInsight compatibility (default: none, the correct geometry): `"pydeepinsight-2021"`
   * (the 2021 code the paper used: rotation by +angle; `bin` only) or `"pydeepinsight"`
   * (today's: rotation by +angle, `P` equal-width bins, its `lsa` centres). See `compat.ts`.
   */
  compat?: Compat;
  /** Value of pixels no feature maps to (default 0). */
  emptyValue?: number;
  /** Feature scaling fitted in {@link ImageTransformer.fit}: `"log"` (default, the paper's Norm-2), `"minmax"`, `"none"`, or a scaler instance. */
  scaler?: "log" | "minmax" | "none" | Scaler;
  /** Options of the t-SNE layout (defaults: the paper's, seed 1701; `metric` `"euclidean"` or `"cosine"`). */
  tsne?: TsneOptions;
  /** Options of the `"kpca"` layout (default `gamma`: 1 / the number of samples fitted on). */
  kernelPca?: KernelPcaOptions;
  /** Options of the `"umap"` layout (umap-learn's defaults; `seed` defaults to {@link seed}). */
  umap?: UmapOptions;
  /**
   * Seed for the `lsa` k-means and the PCA, kernel PCA, UMAP and random extractors
   * (default: the t-SNE seed, else 1701).
   */
  seed?: number;
}

/** Progress of {@link ImageTransformer.fit}. */
export interface ImageTransformerProgress {
  /** `"scale"`, a t-SNE or other feature-map phase, or `"layout"`. */
  phase: "scale" | "layout" | TsneProgress["phase"] | LayoutProgress["phase"];
  /** Units done in this phase. */
  done: number;
  /** Units in this phase. */
  total?: number;
  /** t-SNE KL divergence when reported. */
  kl?: number;
}

/** Options of {@link ImageTransformer.fit}. */
export interface ImageTransformerFitOptions {
  /** Called as the fit proceeds. */
  onProgress?: (p: ImageTransformerProgress) => void;
}

/** The geometry behind the pixel layout, for plotting the feature map. */
export interface TransformerLayout {
  /** The 2-D map of the features `[features, 2]` (e.g. t-SNE). */
  embedding: Matrix;
  /** Its convex hull. */
  hull: Hull;
  /** The minimum-area bounding rectangle of the hull (corners in map coordinates). */
  rectangle: BoundingRectangle;
  /**
   * The rotation applied: the rectangle's (by −angle), or under a pyDeepInsight
   * {@link ImageTransformerOptions.compat} its mirror (by +angle).
   */
  rotation: Rotation;
  /** The map rotated by {@link rotation} `[features, 2]` (axis 0 → rows). */
  rotated: Matrix;
}

/** Options of {@link ImageTransformer.transform}. */
export interface TransformOptions {
  /** 1 (default): `ImageBatch [n, H, W]`; 3: identical channels, `FeatureBatch [n, H, W, 3]`. */
  channels?: 1 | 3;
}

/** The fitted state as JSON (see {@link ImageTransformer.toJSON}). */
export interface ImageTransformerState {
  /** Format marker. */
  format: "text-as-image/image-transformer";
  /** Format version. */
  version: 1;
  /** A named extractor, or `"custom"` (a custom extractor cannot be saved; refits need it again). */
  featureExtractor: NamedFeatureExtractor | "custom";
  /** `[height, width]`. */
  pixels: [number, number];
  /** Discretisation. */
  discretization: Discretization;
  /** Value of empty pixels. */
  emptyValue: number;
  /** Seed for `lsa` and the non-t-SNE extractors. */
  seed: number;
  /** t-SNE options (without a matrix `init`). */
  tsne: Omit<TsneOptions, "init"> & { init?: "random" | "pca" };
  /** Kernel PCA options (absent in older files: the defaults). */
  kernelPca?: KernelPcaOptions;
  /** UMAP options (absent in older files: the defaults). */
  umap?: UmapOptions;
  /** pyDeepInsight compatibility (absent: none). */
  compat?: Compat;
  /** The fitted scaler. */
  scaler: ScalerState;
  /** Number of features. */
  nFeatures: number;
  /** The 2-D map, row-major `[features, 2]`. */
  embedding: number[];
  /** Pixel `(row, column)` of each feature, row-major `[features, 2]`. */
  coords: number[];
  /** Final t-SNE KL divergence, when t-SNE made the map. */
  klDivergence?: number;
}

function resolvePixels(pixels: number | [number, number]): [number, number] {
  const p: [number, number] = typeof pixels === "number"
    ? [pixels, pixels]
    : [pixels[0], pixels[1]];
  if (!p.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error(
      `pixels must be a positive integer or [height, width], got ${JSON.stringify(pixels)}`,
    );
  }
  return p;
}

/** Transposes a row-major `rows × cols` matrix (blocked for cache efficiency). */
export function transposeMatrix(X: Matrix): Matrix {
  const [rows, cols] = X.shape;
  const out = new Float32Array(rows * cols);
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = X.data[base + c];
      }
    }
  }
  return { data: out, shape: [cols, rows] };
}

/**
 * DeepInsight image transformer: `fit` on `[samples, features]`, `transform` to images.
 * Fitted state (trailing underscore): `scaler_`, `embedding_`, `klDivergence_`.
 */
export class ImageTransformer {
  /** The layout method. */
  readonly featureExtractor: FeatureExtractor;
  /** Discretisation in use. */
  discretization: Discretization;
  /** Value of pixels no feature maps to. */
  emptyValue: number;
  /** t-SNE options. */
  readonly tsneOptions: TsneOptions;
  /** Kernel PCA options (for `"kpca"`). */
  readonly kernelPcaOptions: KernelPcaOptions;
  /** UMAP options (for `"umap"`). */
  readonly umapOptions: UmapOptions;
  /** pyDeepInsight compatibility, if any. */
  readonly compat?: Compat;
  /** Seed for `lsa` and the non-t-SNE extractors. */
  readonly seed: number;
  /** The scaler (fitted by {@link fit}). */
  scaler_: Scaler;
  /** The 2-D map of the features `[features, 2]`. */
  embedding_?: Matrix;
  /** Final t-SNE KL divergence, when t-SNE made the map. */
  klDivergence_?: number;
  /** The t-SNE estimator of the last fit (timings, iterations), when t-SNE made the map. */
  tsne_?: TSNE;
  #pixels: [number, number];
  #conventions: LayoutConventions;
  #layout?: TransformerLayout;
  #coords?: PixelCoords;
  #pixelOfFeature?: Int32Array;
  #counts?: Int32Array;
  #empty?: Int32Array;

  /** Creates an unfitted transformer. */
  constructor(options: ImageTransformerOptions = {}) {
    this.featureExtractor = options.featureExtractor ?? "tsne";
    if (
      typeof this.featureExtractor !== "object" &&
      !FEATURE_EXTRACTORS.includes(this.featureExtractor)
    ) {
      throw new Error(
        `featureExtractor must be one of ${
          FEATURE_EXTRACTORS.map((e) => JSON.stringify(e)).join(", ")
        } or an object with fitTransform(points), got ${JSON.stringify(this.featureExtractor)}`,
      );
    }
    this.#pixels = resolvePixels(options.pixels ?? 50);
    this.compat = options.compat;
    this.#conventions = layoutConventions(this.compat);
    this.discretization = options.discretization ?? "bin";
    this.#checkDiscretization(this.discretization);
    this.emptyValue = options.emptyValue ?? 0;
    const scaler = options.scaler ?? "log";
    this.scaler_ = typeof scaler === "string" ? makeScaler(scaler) : scaler;
    this.tsneOptions = { ...(options.tsne ?? {}) };
    this.kernelPcaOptions = { ...(options.kernelPca ?? {}) };
    const gamma = this.kernelPcaOptions.gamma;
    if (gamma !== undefined && !(gamma > 0 && Number.isFinite(gamma))) {
      throw new Error(`kernelPca.gamma must be a positive number or left out, got ${gamma}`);
    }
    this.umapOptions = { ...(options.umap ?? {}) };
    resolveUmapOptions(this.umapOptions);
    this.seed = options.seed ?? this.tsneOptions.seed ?? 1701;
  }

  /** Throws unless `discretization` is known and allowed by the compatibility setting. */
  #checkDiscretization(discretization: Discretization): void {
    if (!DISCRETIZATIONS.includes(discretization)) {
      throw new Error(
        `discretization must be "bin", "qtb" or "lsa", got ${JSON.stringify(discretization)}`,
      );
    }
    if (!this.#conventions.discretizations.includes(discretization)) {
      throw new Error(
        `discretization "${discretization}" is not part of compat "${this.compat}" (the 2021 ` +
          `pyDeepInsight code only bins); use "bin", or compat "pydeepinsight" or none`,
      );
    }
  }

  /** Grid size `[height, width]`. */
  get pixels(): [number, number] {
    return [this.#pixels[0], this.#pixels[1]];
  }

  /** Number of features seen by {@link fit} (0 before). */
  get nFeatures(): number {
    return this.embedding_?.shape[0] ?? 0;
  }

  #requireFitted(): void {
    if (!this.#coords) {
      throw new Error("ImageTransformer is not fitted: call fit(X) (or load a saved layout) first");
    }
  }

  /**
   * Fits the scaler on the rows of `X` `[samples, features]`, lays the features out in 2-D
   * (t-SNE on the scaled, transposed matrix), finds the rotation and the pixel of each
   * feature. Pass the rows the layout should learn from (training only, or all rows).
   */
  async fit(X: Matrix, options: ImageTransformerFitOptions = {}): Promise<this> {
    const [samples, features] = X.shape;
    if (X.data.length !== samples * features) {
      throw new Error(
        `X.data has ${X.data.length} values, shape [${samples}, ${features}] needs ${
          samples * features
        }`,
      );
    }
    if (features < 2) throw new Error(`need at least 2 features, got ${features}`);
    const report = options.onProgress ?? (() => {});
    report({ phase: "scale", done: 0, total: 1 });
    this.scaler_.fit(X);
    const points = this.#scaledPoints(X);
    report({ phase: "scale", done: 1, total: 1 });
    this.klDivergence_ = undefined;
    this.tsne_ = undefined;
    const embedding = await this.#embed(points, report);
    if (embedding.shape[0] !== features || embedding.shape[1] !== 2) {
      throw new Error(
        `the feature extractor returned shape [${embedding.shape}], expected [${features}, 2]`,
      );
    }
    report({ phase: "layout", done: 0, total: 1 });
    this.#setEmbedding(embedding);
    report({ phase: "layout", done: 1, total: 1 });
    return this;
  }

  /** The 2-D map of the points (features) by the chosen extractor. */
  async #embed(
    points: Matrix,
    report: (p: ImageTransformerProgress) => void,
  ): Promise<Matrix> {
    const extractor = this.featureExtractor;
    const forward = (p: TsneProgress | LayoutProgress) =>
      report({ phase: p.phase, done: p.done, total: p.total, kl: "kl" in p ? p.kl : undefined });
    switch (extractor) {
      case "tsne": {
        const tsne = new TSNE({ ...this.tsneOptions, nComponents: 2 });
        const embedding = await tsne.fitTransform(points, { onProgress: forward });
        this.klDivergence_ = tsne.klDivergence_;
        this.tsne_ = tsne;
        return embedding;
      }
      case "pca":
        return (await randomizedPca(points, 2, { seed: this.seed })).scores;
      case "kpca":
        return (await kernelPca(points, 2, {
          ...this.kernelPcaOptions,
          seed: this.seed,
          onProgress: forward,
        })).scores;
      case "umap":
        return await umapLayout(points, { seed: this.seed, ...this.umapOptions }, {
          onProgress: forward,
        });
      case "random":
        return randomLayout(points.shape[0], this.seed);
      default:
        return await extractor.fitTransform(points, { onProgress: forward });
    }
  }

  /**
   * The t-SNE input: the scaled matrix transposed (features are the points), built batch by
   * batch straight into shared memory, so distance workers use it without another copy.
   */
  #scaledPoints(X: Matrix): Matrix {
    const [samples, features] = X.shape;
    const out = new Float32Array(new SharedArrayBuffer(4 * samples * features));
    const batch = 512;
    for (let r0 = 0; r0 < samples; r0 += batch) {
      const r1 = Math.min(samples, r0 + batch);
      const scaled = this.scaler_.transform({
        data: X.data.subarray(r0 * features, r1 * features),
        shape: [r1 - r0, features],
      }).data;
      for (let c0 = 0; c0 < features; c0 += 64) {
        const c1 = Math.min(features, c0 + 64);
        for (let r = r0; r < r1; r++) {
          const base = (r - r0) * features;
          for (let c = c0; c < c1; c++) out[c * samples + r] = scaled[base + c];
        }
      }
    }
    return { data: out, shape: [features, samples] };
  }

  #setEmbedding(embedding: Matrix, coords?: PixelCoords): void {
    this.embedding_ = { data: Float32Array.from(embedding.data), shape: [embedding.shape[0], 2] };
    const hull = convexHull(this.embedding_);
    const rectangle = minimumBoundingRectangle(hull.points);
    // rotationFor(a) rotates by −a; pyDeepInsight's sign (+a) is rotationFor(−a).
    const rotation = this.#conventions.rotationSign < 0
      ? rectangle.rotation
      : rotationFor(-rectangle.angle);
    const rotated = rotatePoints(this.embedding_, rotation);
    this.#layout = { embedding: this.embedding_, hull, rectangle, rotation, rotated };
    this.#setCoords(coords ?? this.#discretize());
  }

  #discretize(): PixelCoords {
    const rotated = this.#layout!.rotated;
    const { bins, lsaCentres } = this.#conventions;
    switch (this.discretization) {
      case "bin":
        return binCoordinates(rotated, this.#pixels, { bins });
      case "qtb":
        return qtbCoordinates(rotated, this.#pixels);
      case "lsa":
        return lsaCoordinates(rotated, this.#pixels, { seed: this.seed, centres: lsaCentres });
    }
  }

  #setCoords(coords: PixelCoords): void {
    const [h, w] = this.#pixels;
    const n = coords.shape[0];
    const pixelOf = new Int32Array(n);
    const counts = new Int32Array(h * w);
    for (let j = 0; j < n; j++) {
      const r = coords.data[2 * j], c = coords.data[2 * j + 1];
      if (!(r >= 0 && r < h && c >= 0 && c < w)) {
        throw new Error(`feature ${j} has pixel (${r}, ${c}) outside the ${h}×${w} grid`);
      }
      pixelOf[j] = r * w + c;
      counts[r * w + c]++;
    }
    const empty: number[] = [];
    for (let p = 0; p < h * w; p++) if (counts[p] === 0) empty.push(p);
    this.#coords = coords;
    this.#pixelOfFeature = pixelOf;
    this.#counts = counts;
    this.#empty = Int32Array.from(empty);
  }

  /** `fit(X)` then `transform(X)`: `[n, H, W]`. */
  fitTransform(
    X: Matrix,
    options?: ImageTransformerFitOptions & { channels?: 1 },
  ): Promise<ImageBatch>;
  /** `fit(X)` then `transform(X, { channels: 3 })`: `[n, H, W, 3]`. */
  fitTransform(
    X: Matrix,
    options: ImageTransformerFitOptions & { channels: 3 },
  ): Promise<FeatureBatch>;
  /** `fit(X)` then `transform(X)`. */
  async fitTransform(
    X: Matrix,
    options: ImageTransformerFitOptions & TransformOptions = {},
  ): Promise<ImageBatch | FeatureBatch> {
    await this.fit(X, options);
    return options.channels === 3 ? this.transform(X, { channels: 3 }) : this.transform(X);
  }

  /** Images of the rows of `X` `[samples, features]`: `[n, H, W]`, or `[n, H, W, 3]` with `channels: 3`. */
  transform(X: Matrix): ImageBatch;
  /** Single-channel images `[n, H, W]`. */
  transform(X: Matrix, options: { channels?: 1 }): ImageBatch;
  /** Three identical channels `[n, H, W, 3]`. */
  transform(X: Matrix, options: { channels: 3 }): FeatureBatch;
  /** Images of the rows of `X`. */
  transform(X: Matrix, options?: TransformOptions): ImageBatch | FeatureBatch;
  transform(X: Matrix, options: TransformOptions = {}): ImageBatch | FeatureBatch {
    this.#requireFitted();
    const [n, features] = X.shape;
    if (features !== this.nFeatures) {
      throw new Error(
        `the transformer was fitted on ${this.nFeatures} features but X has ${features}`,
      );
    }
    if (X.data.length !== n * features) {
      throw new Error(
        `X.data has ${X.data.length} values, shape [${n}, ${features}] needs ${n * features}`,
      );
    }
    const [h, w] = this.#pixels;
    const hw = h * w;
    const channels = options.channels ?? 1;
    if (channels !== 1 && channels !== 3) {
      throw new Error(`channels must be 1 or 3, got ${channels}`);
    }
    const out = new Float32Array(n * hw * channels);
    const pixelOf = this.#pixelOfFeature!, counts = this.#counts!, empty = this.#empty!;
    const inv = Float64Array.from(counts, (c) => (c > 0 ? 1 / c : 0));
    const sums = new Float64Array(hw);
    const batch = 1024;
    for (let r0 = 0; r0 < n; r0 += batch) {
      const r1 = Math.min(n, r0 + batch);
      const scaled = this.scaler_.transform({
        data: X.data.subarray(r0 * features, r1 * features),
        shape: [r1 - r0, features],
      }).data;
      for (let r = r0; r < r1; r++) {
        sums.fill(0);
        const base = (r - r0) * features;
        for (let j = 0; j < features; j++) sums[pixelOf[j]] += scaled[base + j];
        for (let p = 0; p < hw; p++) sums[p] *= inv[p];
        for (let e = 0; e < empty.length; e++) sums[empty[e]] = this.emptyValue;
        if (channels === 1) {
          out.set(sums, r * hw);
        } else {
          const o = r * hw * 3;
          for (let p = 0; p < hw; p++) {
            const v = sums[p];
            out[o + 3 * p] = v;
            out[o + 3 * p + 1] = v;
            out[o + 3 * p + 2] = v;
          }
        }
      }
    }
    return channels === 1 ? { data: out, shape: [n, h, w] } : { data: out, shape: [n, h, w, 3] };
  }

  /**
   * Features back from images (`[n, H, W]`, or `[n, H, W, C]` whose channels are averaged):
   * each feature takes its pixel's value, mapped back to the original units through the
   * scaler unless `unscale: false`. Features alone in their pixel come back exactly (up to
   * the scaler's rounding); features sharing a pixel get their average.
   */
  inverseTransform(images: ImageBatch | FeatureBatch, options: { unscale?: boolean } = {}): Matrix {
    this.#requireFitted();
    const [h, w] = this.#pixels;
    const [n, ih, iw] = images.shape;
    const channels = images.shape.length === 4 ? (images.shape as number[])[3] : 1;
    if (ih !== h || iw !== w) {
      throw new Error(`images are ${ih}×${iw} but the transformer makes ${h}×${w}`);
    }
    const features = this.nFeatures;
    const pixelOf = this.#pixelOfFeature!;
    const out = new Float32Array(n * features);
    const hw = h * w;
    for (let r = 0; r < n; r++) {
      const base = r * hw * channels;
      for (let j = 0; j < features; j++) {
        const p = base + pixelOf[j] * channels;
        let v = 0;
        for (let c = 0; c < channels; c++) v += images.data[p + c];
        out[r * features + j] = channels === 1 ? v : v / channels;
      }
    }
    const matrix: Matrix = { data: out, shape: [n, features] };
    return options.unscale === false || this.scaler_.kind === "none"
      ? matrix
      : this.scaler_.inverseTransform(matrix);
  }

  /** Pixel `(row, column)` of each feature, `[features, 2]`. */
  coords(): PixelCoords {
    this.#requireFitted();
    return { data: this.#coords!.data.slice(), shape: [this.#coords!.shape[0], 2] };
  }

  /** Number of features in each pixel, `[H, W]`. */
  featureDensityMatrix(): Matrix {
    this.#requireFitted();
    const [h, w] = this.#pixels;
    return { data: Float32Array.from(this.#counts!), shape: [h, w] };
  }

  /** The map, hull, bounding rectangle and rotated map behind the layout. */
  layout(): TransformerLayout {
    this.#requireFitted();
    return this.#layout!;
  }

  /**
   * Changes the grid size (and optionally the discretisation) and re-discretises the
   * fitted map, without refitting the scaler or the t-SNE.
   */
  setPixels(pixels: number | [number, number], discretization?: Discretization): this {
    this.#requireFitted();
    if (discretization) this.#checkDiscretization(discretization);
    this.#pixels = resolvePixels(pixels);
    if (discretization) this.discretization = discretization;
    this.#setCoords(this.#discretize());
    return this;
  }

  /** The fitted state as JSON; {@link ImageTransformer.fromJSON} restores it. */
  toJSON(): ImageTransformerState {
    this.#requireFitted();
    const { init, ...tsne } = this.tsneOptions;
    return {
      format: "text-as-image/image-transformer",
      version: 1,
      featureExtractor: typeof this.featureExtractor === "string"
        ? this.featureExtractor
        : "custom",
      pixels: this.pixels,
      discretization: this.discretization,
      emptyValue: this.emptyValue,
      seed: this.seed,
      tsne: typeof init === "string" ? { ...tsne, init } : tsne,
      kernelPca: { ...this.kernelPcaOptions },
      umap: { ...this.umapOptions },
      ...(this.compat === undefined ? {} : { compat: this.compat }),
      scaler: this.scaler_.toJSON(),
      nFeatures: this.nFeatures,
      embedding: Array.from(this.embedding_!.data),
      coords: Array.from(this.#coords!.data),
      klDivergence: this.klDivergence_,
    };
  }

  /**
   * Restores a transformer from {@link toJSON} output. A `"custom"` extractor is not
   * restorable; pass `featureExtractor` to refit with it later.
   */
  static fromJSON(
    state: ImageTransformerState,
    options: { featureExtractor?: FeatureEmbedder } = {},
  ): ImageTransformer {
    if (state?.format !== "text-as-image/image-transformer") {
      throw new Error("not an ImageTransformer state (missing format marker)");
    }
    if (state.version !== 1) {
      throw new Error(`unsupported ImageTransformer state version ${state.version}`);
    }
    const extractor: FeatureExtractor = state.featureExtractor === "custom"
      ? options.featureExtractor ?? "tsne"
      : state.featureExtractor;
    const it = new ImageTransformer({
      featureExtractor: extractor,
      pixels: state.pixels,
      discretization: state.discretization,
      emptyValue: state.emptyValue,
      scaler: scalerFromJSON(state.scaler),
      tsne: state.tsne,
      kernelPca: state.kernelPca,
      umap: state.umap,
      compat: state.compat,
      seed: state.seed,
    });
    const n = state.nFeatures;
    if (state.embedding.length !== 2 * n || state.coords.length !== 2 * n) {
      throw new Error(
        `corrupt ImageTransformer state: expected ${n} features in embedding and coords`,
      );
    }
    it.klDivergence_ = state.klDivergence;
    it.#setEmbedding(
      { data: Float32Array.from(state.embedding), shape: [n, 2] },
      { data: Int32Array.from(state.coords), shape: [n, 2] },
    );
    return it;
  }

  /**
   * Writes the fitted state to a JSON file, atomically (unique temporary name, then rename):
   * `{"sha256":"<hex>","stageVersion":LAYOUT_STAGE_VERSION,"transformer":<toJSON()>}`,
   * where `sha256` is the SHA-256 of the file's text with those 64 hex digits replaced by
   * zeros (so every other byte of the file is covered).
   */
  async save(path: string): Promise<void> {
    await saveLayoutFile(path, "transformer", this.toJSON());
  }

  /**
   * Reads a transformer saved with {@link save}. Throws `StaleCacheError` when the
   * file was made by another {@link LAYOUT_STAGE_VERSION} (or before versions were
   * recorded), and `CorruptCacheError` when it is not valid JSON, its hash is missing
   * or does not match (any byte changed), or its state is unusable; both name the file.
   * A missing file raises `Deno.errors.NotFound`.
   */
  static async load(
    path: string,
    options: { featureExtractor?: FeatureEmbedder } = {},
  ): Promise<ImageTransformer> {
    return await loadLayoutFile(
      path,
      "transformer",
      "transformer",
      (state: ImageTransformerState) => ImageTransformer.fromJSON(state, options),
    );
  }
}

/**
 * Writes a fitted layout's state under `field` to `path`, atomically and sealed:
 * `{"sha256":"<hex>","stageVersion":LAYOUT_STAGE_VERSION,"<field>":<state>}` (the format of
 * {@link ImageTransformer.save}; the multi-channel layouts use it with their own field).
 */
export async function saveLayoutFile(path: string, field: string, state: unknown): Promise<void> {
  await writeAtomic(path, sealJson({ stageVersion: LAYOUT_STAGE_VERSION, [field]: state }));
}

/**
 * Reads the `field` of a layout file {@link saveLayoutFile} wrote and builds it with `build`.
 * Throws `StaleCacheError` for another {@link LAYOUT_STAGE_VERSION} (or a file from before
 * versions were recorded) and `CorruptCacheError` (naming the file, `what` it should hold)
 * when the file is not valid JSON, its hash is missing or does not match, or `build` fails.
 */
export async function loadLayoutFile<S, T>(
  path: string,
  field: string,
  what: string,
  build: (state: S) => T,
): Promise<T> {
  const text = await Deno.readTextFile(path);
  const value = parseJsonObject(text, path) as { stageVersion?: unknown } & Record<string, unknown>;
  // The version first: a file of another version (or a bare state, saved before versions
  // were recorded, without a hash) is stale, whatever its layout.
  const made = typeof value.stageVersion === "number" ? value.stageVersion : undefined;
  verifyVersion(made, LAYOUT_STAGE_VERSION, "layout", path);
  verifySeal(text, path);
  try {
    return build(value[field] as S);
  } catch (e) {
    throw new CorruptCacheError(path, `not a usable ${what}: ${(e as Error).message}`);
  }
}
