/**
 * Several DeepInsight layouts of the same vectors: pyDeepInsight's "MRep" (multiple
 * representations) idea. One {@link ImageTransformer} per representation is fitted on the
 * same rows; each sample then has one image per layout. A classifier is trained per layout
 * and their class probabilities are averaged ({@link averageProbabilities}); or the layouts
 * are stacked as the channels of one image ({@link MultiRepresentation.transformStacked}).
 *
 * ```ts
 * const mrep = new MultiRepresentation({ shared: { pixels: 50, tsne: { seed: 1701 } } });
 * // default representations: t-SNE, PCA and RBF kernel PCA (DEFAULT_REPRESENTATIONS)
 * await mrep.fit(trainX);                        // Matrix [samples, features]
 * const perLayout = mrep.transform(testX);       // ImageBatch [n, 50, 50], one per layout
 * const stacked = mrep.transformStacked(testX);  // FeatureBatch [n, 50, 50, 3]
 * const proba = averageProbabilities(models.map((m, r) => m.predict(perLayout[r])));
 * await mrep.save("data/mrep.json");             // later: await MultiRepresentation.load(...)
 * ```
 *
 * @module
 */
import type { FeatureBatch, ImageBatch, Matrix } from "../types.ts";
import type { PixelCoords } from "./discretize.ts";
import { scalerFromJSON } from "./scalers.ts";
import {
  type FeatureEmbedder,
  ImageTransformer,
  type ImageTransformerOptions,
  type ImageTransformerProgress,
  type ImageTransformerState,
  loadLayoutFile,
  saveLayoutFile,
} from "./transformer.ts";

/**
 * The representations used when none are given: the paper's t-SNE map, the first two
 * principal components, and RBF kernel PCA — three different views of the feature
 * geometry (a neighbourhood-preserving map, a linear projection, a non-linear projection),
 * as in pyDeepInsight's multiple-representation examples. Every other option comes from
 * {@link MultiRepresentationOptions.shared} or the {@link ImageTransformer} defaults.
 */
export const DEFAULT_REPRESENTATIONS: ReadonlyArray<Readonly<ImageTransformerOptions>> = [
  { featureExtractor: "tsne" },
  { featureExtractor: "pca" },
  { featureExtractor: "kpca" },
];

/** Options of {@link MultiRepresentation}. */
export interface MultiRepresentationOptions {
  /** One set of transformer options per layout (default {@link DEFAULT_REPRESENTATIONS}). */
  representations?: ReadonlyArray<ImageTransformerOptions>;
  /**
   * Options every representation shares (e.g. `pixels`, `scaler`, `tsne: { seed }`); a
   * representation's own option replaces the shared one whole (a representation's `tsne`
   * object replaces the shared `tsne`, it is not merged into it). Give `scaler` as a name:
   * a scaler instance here would be one object refitted by every representation.
   */
  shared?: ImageTransformerOptions;
}

/** Progress of {@link MultiRepresentation.fit}: a transformer's, with its index. */
export type MultiRepresentationProgress = ImageTransformerProgress & {
  /** Index of the representation being fitted. */
  representation: number;
};

/** The fitted state as JSON (see {@link MultiRepresentation.toJSON}). */
export interface MultiRepresentationState {
  /** Format marker. */
  format: "text-as-image/multi-representation";
  /** Format version. */
  version: 1;
  /** Each representation's fitted transformer, in order. */
  transformers: ImageTransformerState[];
}

/**
 * The options that rebuild an unfitted twin of a transformer (same extractor, grid,
 * discretisation, seeds; a fresh copy of its scaler, so refitting the twin leaves `it`
 * untouched).
 */
export function transformerOptions(it: ImageTransformer): ImageTransformerOptions {
  return {
    featureExtractor: it.featureExtractor,
    pixels: it.pixels,
    discretization: it.discretization,
    emptyValue: it.emptyValue,
    scaler: scalerFromJSON(it.scaler_.toJSON()),
    tsne: { ...it.tsneOptions },
    kernelPca: { ...it.kernelPcaOptions },
    umap: { ...it.umapOptions },
    compat: it.compat,
    seed: it.seed,
  };
}

/**
 * Several DeepInsight layouts of the same features (pyDeepInsight's MRep idea): `fit` fits
 * one {@link ImageTransformer} per representation on the same rows; `transform` gives one
 * `ImageBatch` per layout, `transformStacked` the layouts as channels of one image.
 * Fitted state (trailing underscore): `transformers_`.
 */
export class MultiRepresentation {
  /** Each representation's options, with {@link MultiRepresentationOptions.shared} applied. */
  readonly representations: ReadonlyArray<ImageTransformerOptions>;
  /** The fitted transformers, one per representation (set by {@link fit} or `load`). */
  transformers_?: ImageTransformer[];

  /** Creates an unfitted set of layouts. */
  constructor(options: MultiRepresentationOptions = {}) {
    const reps = options.representations ?? DEFAULT_REPRESENTATIONS;
    if (!Array.isArray(reps) || reps.length === 0) {
      throw new Error(
        "representations must be a non-empty array of ImageTransformer options " +
          "(leave it out for the defaults: t-SNE, PCA and kernel PCA)",
      );
    }
    const shared = options.shared ?? {};
    this.representations = reps.map((r) => ({ ...shared, ...r }));
    // Unfitted twins validate every option now, so a typo fails before any fitting.
    this.representations.forEach((r) => new ImageTransformer(r));
  }

  /** Number of representations. */
  get size(): number {
    return this.representations.length;
  }

  #fitted(): ImageTransformer[] {
    if (!this.transformers_) {
      throw new Error(
        "MultiRepresentation is not fitted: call fit(X) (or load a saved one) first",
      );
    }
    return this.transformers_;
  }

  /**
   * Fits one transformer per representation on the rows of `X` `[samples, features]`, one
   * after another (each runs its own scaler and feature map).
   */
  async fit(
    X: Matrix,
    options: { onProgress?: (p: MultiRepresentationProgress) => void } = {},
  ): Promise<this> {
    const fitted: ImageTransformer[] = [];
    for (let r = 0; r < this.representations.length; r++) {
      const it = new ImageTransformer(this.representations[r]);
      const report = options.onProgress;
      await it.fit(X, report ? { onProgress: (p) => report({ ...p, representation: r }) } : {});
      fitted.push(it);
    }
    this.transformers_ = fitted;
    return this;
  }

  /** Images of the rows of `X`: one `ImageBatch [n, H_r, W_r]` per representation. */
  transform(X: Matrix): ImageBatch[] {
    return this.#fitted().map((it) => it.transform(X));
  }

  /**
   * Images of the rows of `X` with the layouts as channels: `FeatureBatch [n, H, W, R]`,
   * channel `r` = representation `r`'s image. Every representation must have the same grid.
   */
  transformStacked(X: Matrix): FeatureBatch {
    const transformers = this.#fitted();
    const [h, w] = transformers[0].pixels;
    transformers.forEach((it, r) => {
      const [hr, wr] = it.pixels;
      if (hr !== h || wr !== w) {
        throw new Error(
          `transformStacked needs one grid for all representations, but representation 0 is ` +
            `${h}×${w} and representation ${r} is ${hr}×${wr}: give them the same pixels ` +
            `(e.g. in options.shared), or use transform() for one ImageBatch per layout`,
        );
      }
    });
    const R = transformers.length;
    const n = X.shape[0];
    const hw = h * w;
    const out = new Float32Array(n * hw * R);
    transformers.forEach((it, r) => {
      const images = it.transform(X).data;
      for (let q = 0; q < n * hw; q++) out[q * R + r] = images[q];
    });
    return { data: out, shape: [n, h, w, R] };
  }

  /** Pixel `(row, column)` of each feature, one `[features, 2]` per representation. */
  coords(): PixelCoords[] {
    return this.#fitted().map((it) => it.coords());
  }

  /** The fitted state as JSON; {@link MultiRepresentation.fromJSON} restores it. */
  toJSON(): MultiRepresentationState {
    return {
      format: "text-as-image/multi-representation",
      version: 1,
      transformers: this.#fitted().map((it) => it.toJSON()),
    };
  }

  /**
   * Restores {@link toJSON} output. Representations with a custom feature extractor are not
   * restorable as such; pass `featureExtractors[r]` to refit representation `r` with it later.
   */
  static fromJSON(
    state: MultiRepresentationState,
    options: { featureExtractors?: ReadonlyArray<FeatureEmbedder | undefined> } = {},
  ): MultiRepresentation {
    if (state?.format !== "text-as-image/multi-representation") {
      throw new Error("not a MultiRepresentation state (missing format marker)");
    }
    if (state.version !== 1) {
      throw new Error(`unsupported MultiRepresentation state version ${state.version}`);
    }
    if (!Array.isArray(state.transformers) || state.transformers.length === 0) {
      throw new Error("corrupt MultiRepresentation state: no transformers");
    }
    const transformers = state.transformers.map((t, r) =>
      ImageTransformer.fromJSON(t, { featureExtractor: options.featureExtractors?.[r] })
    );
    const nFeatures = transformers[0].nFeatures;
    if (transformers.some((it) => it.nFeatures !== nFeatures)) {
      throw new Error("corrupt MultiRepresentation state: representations disagree on features");
    }
    const mrep = new MultiRepresentation({ representations: transformers.map(transformerOptions) });
    mrep.transformers_ = transformers;
    return mrep;
  }

  /**
   * Writes the fitted state to a JSON file atomically, sealed with its SHA-256 and the
   * layout stage version, like {@link ImageTransformer.save}.
   */
  async save(path: string): Promise<void> {
    await saveLayoutFile(path, "multiRepresentation", this.toJSON());
  }

  /**
   * Reads layouts saved with {@link save}. Throws `StaleCacheError` for another layout stage
   * version and `CorruptCacheError` for a changed or unusable file (both name the file).
   */
  static async load(
    path: string,
    options: { featureExtractors?: ReadonlyArray<FeatureEmbedder | undefined> } = {},
  ): Promise<MultiRepresentation> {
    return await loadLayoutFile(
      path,
      "multiRepresentation",
      "set of layouts",
      (state: MultiRepresentationState) => MultiRepresentation.fromJSON(state, options),
    );
  }
}

/**
 * The element-wise mean of several classifiers' probabilities (same layout: e.g. `[n]`
 * positive-class probabilities, or row-major `[n, classes]`): the default way the
 * multiple-representation approach combines one classifier per layout.
 */
export function averageProbabilities(probas: ReadonlyArray<Float32Array>): Float32Array {
  if (probas.length === 0) {
    throw new Error("averageProbabilities needs at least one array of probabilities, got none");
  }
  const length = probas[0].length;
  probas.forEach((p, i) => {
    if (p.length !== length) {
      throw new Error(
        `averageProbabilities: array ${i} has ${p.length} values but array 0 has ${length}; ` +
          `pass every classifier's predictions for the same samples, in the same order`,
      );
    }
  });
  const sums = new Float64Array(length);
  for (const p of probas) for (let i = 0; i < length; i++) sums[i] += p[i];
  return Float32Array.from(sums, (s) => s / probas.length);
}
