/**
 * Hidden states as image channels. A text encoder's embedding row often holds several hidden
 * states side by side, `[state_0 | state_1 | … | state_{S−1}]`, `S` blocks of `d` dimensions
 * (BERT's last layers: 6 × 768; USE-lite's Transformer states: 2 × 512). The states of one
 * residual stream share coordinates (dimension `j` means the same in each), so one DeepInsight
 * layout of the `d` dimensions serves them all: each dimension gets one pixel, and each state
 * is painted into its own channel of the same grid, giving `[n, H, W, S]` instead of one
 * image over `S·d` features in which a dimension's states would land in unrelated pixels.
 *
 * ```ts
 * const sct = new StateChannelTransformer({ states: 6, pixels: 50, discretization: "lsa" });
 * await sct.fit(trainX);                          // Matrix [samples, 6 · 768]
 * const images = sct.transform(testX);            // FeatureBatch [n, 50, 50, 6]
 * const rgb = sct.transform(testX, { toRgb: true }); // [n, 50, 50, 3]: states (0,1) (2,3) (4,5)
 * await sct.save("data/state_layout.json");       // later: await StateChannelTransformer.load(...)
 * ```
 *
 * @module
 */
import type { FeatureBatch, Matrix } from "../types.ts";
import type { PixelCoords } from "./discretize.ts";
import { transformerOptions } from "./multi.ts";
import {
  type FeatureEmbedder,
  ImageTransformer,
  type ImageTransformerFitOptions,
  type ImageTransformerOptions,
  type ImageTransformerState,
  loadLayoutFile,
  saveLayoutFile,
} from "./transformer.ts";

/**
 * What the shared layout is fitted on: `"together"` (every state's values, stacked as rows)
 * or the index of one state (that state's block only).
 */
export type StateFit = "together" | number;

/** Options of {@link StateChannelTransformer}: the layout's options plus the state split. */
export interface StateChannelOptions extends ImageTransformerOptions {
  /** Number of hidden states `S` side by side in each row (required; ≥ 1). */
  states: number;
  /**
   * What the scaler and the layout are fitted on (default `"together"`):
   *
   * - `"together"`: the states' blocks stacked as rows, `[n·S, d]`, so dimension `j`'s vector
   *   holds its values in every state of every sample. The default because the layout then
   *   reflects how dimensions co-vary across all the states it will paint, and the scaler
   *   (DeepInsight's log "Norm-2" by default, which clips values outside the fitted range)
   *   sees every state's range, so no channel is clipped by another state's statistics.
   * - `k`: state `k`'s block `[n, d]` only (e.g. the last layer, the one a classifier on
   *   the plain embedding would use); the other states are scaled with state `k`'s
   *   statistics, so values outside its range are clipped.
   */
  fitOn?: StateFit;
}

/** Defaults of {@link StateChannelOptions} besides the {@link ImageTransformer}'s. */
export const STATE_CHANNEL_DEFAULTS: { readonly fitOn: StateFit } = { fitOn: "together" };

/** Options of {@link StateChannelTransformer.transform}. */
export interface StateChannelTransformOptions {
  /**
   * Map the `S` state channels to 3 for ImageNet backbones (default false), by
   * {@link rgbGroups}: each output channel is the mean of a group of states.
   */
  toRgb?: boolean;
}

/** The fitted state as JSON (see {@link StateChannelTransformer.toJSON}). */
export interface StateChannelState {
  /** Format marker. */
  format: "text-as-image/state-channel-transformer";
  /** Format version. */
  version: 1;
  /** Number of states `S`. */
  states: number;
  /** What the layout was fitted on. */
  fitOn: StateFit;
  /** The shared layout over the `d` dimensions of one state. */
  transformer: ImageTransformerState;
}

/**
 * Which states each of the three RGB channels averages, for `S` states:
 *
 * - `S ≥ 3`: contiguous groups as equal as possible, the later groups taking the extra
 *   states: group `g` is states `⌊g·S/3⌋ … ⌊(g+1)·S/3⌋ − 1` (S = 6 → (0,1) (2,3) (4,5);
 *   S = 4 → (0) (1) (2,3); S = 3 → the identity). Adjacent layers are the most alike, so
 *   contiguous groups blur the least.
 * - `S = 2`: `[s0, s1, mean(s0, s1)]`: each state kept intact in a channel of its own, and
 *   the third filled with their mean rather than zeros, so it carries the same kind of
 *   signal as the others (a constant channel would only shift the backbone's activations).
 * - `S = 1`: `[s0, s0, s0]`, DeepInsight's three identical channels.
 */
export function rgbGroups(states: number): number[][] {
  checkStates(states);
  if (states === 1) return [[0], [0], [0]];
  if (states === 2) return [[0], [1], [0, 1]];
  return [0, 1, 2].map((g) => {
    const from = Math.floor((g * states) / 3), to = Math.floor(((g + 1) * states) / 3);
    return Array.from({ length: to - from }, (_, i) => from + i);
  });
}

/** State channels `[n, H, W, S]` → `[n, H, W, 3]`: each the mean of its {@link rgbGroups} group. */
export function statesToRgb(batch: FeatureBatch): FeatureBatch {
  const [n, h, w, S] = batch.shape;
  const groups = rgbGroups(S);
  const pixels = n * h * w;
  if (batch.data.length !== pixels * S) {
    throw new Error(
      `batch.data has ${batch.data.length} values, shape [${batch.shape}] needs ${pixels * S}`,
    );
  }
  const out = new Float32Array(pixels * 3);
  groupChannels(batch.data, S, groups, out, 0, pixels);
  return { data: out, shape: [n, h, w, 3] };
}

/** Writes the group means of `pixels` pixels of `src` (`S` channels) into `out` at `offset`. */
function groupChannels(
  src: Float32Array,
  S: number,
  groups: number[][],
  out: Float32Array,
  offset: number,
  pixels: number,
): void {
  const G = groups.length;
  for (let p = 0; p < pixels; p++) {
    for (let g = 0; g < G; g++) {
      const group = groups[g];
      let sum = 0;
      for (const s of group) sum += src[p * S + s];
      out[offset + p * G + g] = sum / group.length;
    }
  }
}

function checkStates(states: number): void {
  if (!Number.isInteger(states) || states < 1) {
    throw new Error(
      `states must be a positive integer (the number of hidden states side by side in a row), ` +
        `got ${JSON.stringify(states)}`,
    );
  }
}

function checkFitOn(fitOn: StateFit, states: number): void {
  if (fitOn === "together") return;
  if (!Number.isInteger(fitOn) || fitOn < 0 || fitOn >= states) {
    throw new Error(
      `fitOn must be "together" or a state index 0…${states - 1}, got ${JSON.stringify(fitOn)}`,
    );
  }
}

/** The `d` columns of state `s` of rows `r0 … r1 − 1` of `X` `[n, S·d]`, as `[r1 − r0, d]`. */
function stateBlock(X: Matrix, S: number, s: number, r0: number, r1: number): Matrix {
  const cols = X.shape[1], d = cols / S;
  const out = new Float32Array((r1 - r0) * d);
  for (let r = r0; r < r1; r++) {
    out.set(X.data.subarray(r * cols + s * d, r * cols + (s + 1) * d), (r - r0) * d);
  }
  return { data: out, shape: [r1 - r0, d] };
}

/**
 * One DeepInsight layout of a state's `d` dimensions, every hidden state painted into its
 * own channel of the same grid: `fit(X [n, S·d])`, `transform(X)` → `[n, H, W, S]` (or 3
 * channels with `toRgb`). Fitted state (trailing underscore): `transformer_`, the shared
 * {@link ImageTransformer} over `d` features.
 */
export class StateChannelTransformer {
  /** Number of hidden states `S` per row. */
  readonly states: number;
  /** What the layout is fitted on. */
  readonly fitOn: StateFit;
  /** Options of the shared layout. */
  readonly layoutOptions: ImageTransformerOptions;
  /** The shared layout over one state's dimensions (set by {@link fit} or `load`). */
  transformer_?: ImageTransformer;

  /** Creates an unfitted transformer. */
  constructor(options: StateChannelOptions) {
    const { states, fitOn, ...layout } = options ?? ({} as StateChannelOptions);
    checkStates(states);
    this.states = states;
    this.fitOn = fitOn ?? STATE_CHANNEL_DEFAULTS.fitOn;
    checkFitOn(this.fitOn, states);
    this.layoutOptions = layout;
    new ImageTransformer(layout); // validates the layout options now, before any fitting
  }

  #fitted(): ImageTransformer {
    if (!this.transformer_) {
      throw new Error(
        "StateChannelTransformer is not fitted: call fit(X) (or load a saved layout) first",
      );
    }
    return this.transformer_;
  }

  /** Dimensions per state `d` (0 before fitting). */
  get dims(): number {
    return this.transformer_?.nFeatures ?? 0;
  }

  /** Features per row, `S·d` (0 before fitting). */
  get nFeatures(): number {
    return this.states * this.dims;
  }

  /** Grid size `[height, width]`. */
  get pixels(): [number, number] {
    return this.transformer_?.pixels ?? new ImageTransformer(this.layoutOptions).pixels;
  }

  /** `d` from a row width, or an error saying how the row should look. */
  #dimsOf(X: Matrix): number {
    const [n, cols] = X.shape;
    if (X.data.length !== n * cols) {
      throw new Error(
        `X.data has ${X.data.length} values, shape [${n}, ${cols}] needs ${n * cols}`,
      );
    }
    if (cols % this.states !== 0) {
      throw new Error(
        `X has ${cols} features, not divisible by states = ${this.states}: a row must be ` +
          `${this.states} blocks of d dimensions side by side ([state_0 | state_1 | …]); ` +
          `check states, or which hidden states the embedding holds`,
      );
    }
    return cols / this.states;
  }

  /**
   * Fits the shared scaler and layout on `X` `[samples, S·d]`: on the states stacked as rows
   * `[samples·S, d]` (`fitOn: "together"`), or on state `k`'s block `[samples, d]`.
   */
  async fit(X: Matrix, options: ImageTransformerFitOptions = {}): Promise<this> {
    const d = this.#dimsOf(X);
    const n = X.shape[0], S = this.states;
    let rows: Matrix;
    if (this.fitOn === "together") {
      // Row i·S + s is sample i's state s: a [n, S·d] row-major matrix read as [n·S, d].
      rows = { data: X.data, shape: [n * S, d] };
    } else {
      rows = stateBlock(X, S, this.fitOn, 0, n);
    }
    const it = new ImageTransformer(this.layoutOptions);
    await it.fit(rows, options);
    this.transformer_ = it;
    return this;
  }

  /** `fit(X)` then `transform(X, options)`. */
  async fitTransform(
    X: Matrix,
    options: ImageTransformerFitOptions & StateChannelTransformOptions = {},
  ): Promise<FeatureBatch> {
    await this.fit(X, options);
    return this.transform(X, options);
  }

  /**
   * Images of the rows of `X` `[n, S·d]`: `[n, H, W, S]`, channel `s` = state `s`'s block
   * through the shared layout; with `toRgb`, `[n, H, W, 3]` by {@link rgbGroups}.
   */
  transform(X: Matrix, options: StateChannelTransformOptions = {}): FeatureBatch {
    const it = this.#fitted();
    const d = this.#dimsOf(X);
    if (d !== it.nFeatures) {
      throw new Error(
        `the layout was fitted on ${this.states} states of ${it.nFeatures} dimensions ` +
          `(${this.nFeatures} features) but X has ${X.shape[1]}`,
      );
    }
    const n = X.shape[0], S = this.states;
    const [h, w] = it.pixels;
    const hw = h * w;
    const groups = options.toRgb ? rgbGroups(S) : undefined;
    const C = groups ? 3 : S;
    const out = new Float32Array(n * hw * C);
    const batch = 512;
    for (let r0 = 0; r0 < n; r0 += batch) {
      const r1 = Math.min(n, r0 + batch), b = r1 - r0;
      const target = groups ? new Float32Array(b * hw * S) : out.subarray(r0 * hw * S);
      for (let s = 0; s < S; s++) {
        const images = it.transform(stateBlock(X, S, s, r0, r1)).data;
        for (let q = 0; q < b * hw; q++) target[q * S + s] = images[q];
      }
      if (groups) groupChannels(target, S, groups, out, r0 * hw * 3, b * hw);
    }
    return { data: out, shape: [n, h, w, C] };
  }

  /** Pixel `(row, column)` of each of a state's `d` dimensions, `[d, 2]` (same in every channel). */
  coords(): PixelCoords {
    return this.#fitted().coords();
  }

  /** Number of dimensions in each pixel, `[H, W]` (per channel: each state has this density). */
  featureDensityMatrix(): Matrix {
    return this.#fitted().featureDensityMatrix();
  }

  /** The fitted state as JSON; {@link StateChannelTransformer.fromJSON} restores it. */
  toJSON(): StateChannelState {
    return {
      format: "text-as-image/state-channel-transformer",
      version: 1,
      states: this.states,
      fitOn: this.fitOn,
      transformer: this.#fitted().toJSON(),
    };
  }

  /**
   * Restores {@link toJSON} output. A custom feature extractor is not restorable; pass
   * `featureExtractor` to refit with it later.
   */
  static fromJSON(
    state: StateChannelState,
    options: { featureExtractor?: FeatureEmbedder } = {},
  ): StateChannelTransformer {
    if (state?.format !== "text-as-image/state-channel-transformer") {
      throw new Error("not a StateChannelTransformer state (missing format marker)");
    }
    if (state.version !== 1) {
      throw new Error(`unsupported StateChannelTransformer state version ${state.version}`);
    }
    const it = ImageTransformer.fromJSON(state.transformer, options);
    const sct = new StateChannelTransformer({
      ...transformerOptions(it),
      states: state.states,
      fitOn: state.fitOn,
    });
    sct.transformer_ = it;
    return sct;
  }

  /**
   * Writes the fitted state to a JSON file atomically, sealed with its SHA-256 and the
   * layout stage version, like {@link ImageTransformer.save}.
   */
  async save(path: string): Promise<void> {
    await saveLayoutFile(path, "stateChannels", this.toJSON());
  }

  /**
   * Reads a layout saved with {@link save}. Throws `StaleCacheError` for another layout
   * stage version and `CorruptCacheError` for a changed or unusable file (both name it).
   */
  static async load(
    path: string,
    options: { featureExtractor?: FeatureEmbedder } = {},
  ): Promise<StateChannelTransformer> {
    return await loadLayoutFile(
      path,
      "stateChannels",
      "state-channel layout",
      (state: StateChannelState) => StateChannelTransformer.fromJSON(state, options),
    );
  }
}
