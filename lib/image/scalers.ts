/**
 * Feature scalers of DeepInsight: the log ("Norm-2") scaler the paper uses and min–max
 * ("Norm-1"). sklearn style: `fit` learns per-feature statistics from rows `[samples,
 * features]`, `transform` applies them (clipping values outside the fitted range, as
 * DeepInsight does for unseen data), `inverseTransform` maps back.
 *
 * Which rows to fit on is the caller's choice: training rows only (clean), or all rows (the
 * paper's official code).
 *
 * @module
 */
import type { Matrix } from "../types.ts";

/** A fitted scaler's state as plain JSON. */
export type ScalerState =
  | { kind: "log"; featureMin: number[]; globalMax: number }
  | { kind: "minmax"; featureMin: number[]; featureMax: number[]; clip: boolean }
  | { kind: "none"; features: number };

/** What every scaler offers. */
export interface Scaler {
  /** `"log"`, `"minmax"` or `"none"`. */
  readonly kind: ScalerState["kind"];
  /** Learns the statistics from `X` `[samples, features]`. */
  fit(X: Matrix): this;
  /** Scales `X` into a new matrix. */
  transform(X: Matrix): Matrix;
  /** `fit(X)` then `transform(X)`. */
  fitTransform(X: Matrix): Matrix;
  /** Maps scaled values back to the original units (clipped values stay clipped). */
  inverseTransform(X: Matrix): Matrix;
  /** Number of features seen by `fit`. */
  readonly nFeatures: number;
  /** The fitted state as JSON. */
  toJSON(): ScalerState;
}

function checkMatrix(X: Matrix, what: string): [number, number] {
  const [rows, cols] = X.shape;
  if (X.data.length !== rows * cols) {
    throw new Error(
      `${what}: data has ${X.data.length} values, shape [${rows}, ${cols}] needs ${rows * cols}`,
    );
  }
  return [rows, cols];
}

function notFitted(name: string): never {
  throw new Error(`${name} is not fitted: call fit(X) (or fitTransform) first`);
}

function checkFeatures(name: string, expected: number, got: number): void {
  if (expected !== got) {
    throw new Error(`${name} was fitted on ${expected} features but X has ${got}`);
  }
}

/**
 * DeepInsight's "Norm-2" log scaler: `x' = log(x + |min_j| + 1) / max`, where `min_j` is the
 * per-feature minimum and `max` the global maximum of the logged training matrix, so
 * training values land in [0, 1]. At use, the log is clipped at 0 below and the result at 1
 * above (pyDeepInsight's `LogScaler`).
 */
export class LogScaler implements Scaler {
  /** Always `"log"`. */
  readonly kind = "log" as const;
  /** Per-feature minimum of the training rows. */
  featureMin_?: Float64Array;
  /** Global maximum of `log(x + |min_j| + 1)` over the training rows. */
  globalMax_?: number;

  /** Number of features seen by `fit`. */
  get nFeatures(): number {
    return this.featureMin_?.length ?? 0;
  }

  /** Learns per-feature minima and the global maximum of the logged matrix. */
  fit(X: Matrix): this {
    const [rows, cols] = checkMatrix(X, "LogScaler.fit");
    if (rows === 0) throw new Error("LogScaler.fit needs at least one row");
    const min = new Float64Array(cols).fill(Infinity);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) {
        const v = X.data[base + c];
        if (v < min[c]) min[c] = v;
      }
    }
    let max = -Infinity;
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) {
        const v = Math.log(X.data[base + c] + Math.abs(min[c]) + 1);
        if (v > max) max = v;
      }
    }
    if (!Number.isFinite(max)) throw new Error("LogScaler.fit: X holds non-finite values");
    this.featureMin_ = min;
    this.globalMax_ = max > 0 ? max : 1;
    return this;
  }

  /** Scales `X` with the fitted statistics, clipping into [0, 1]. */
  transform(X: Matrix): Matrix {
    const min = this.featureMin_ ?? notFitted("LogScaler");
    const [rows, cols] = checkMatrix(X, "LogScaler.transform");
    checkFeatures("LogScaler", min.length, cols);
    const inv = 1 / this.globalMax_!;
    const shift = Float64Array.from(min, (m) => Math.abs(m) + 1);
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) {
        const arg = X.data[base + c] + shift[c];
        let v = arg > 1 ? Math.log(arg) * inv : 0;
        if (v > 1) v = 1;
        out[base + c] = v;
      }
    }
    return { data: out, shape: [rows, cols] };
  }

  /** `fit(X)` then `transform(X)`. */
  fitTransform(X: Matrix): Matrix {
    return this.fit(X).transform(X);
  }

  /** `x = exp(x'·max) − |min_j| − 1`. */
  inverseTransform(X: Matrix): Matrix {
    const min = this.featureMin_ ?? notFitted("LogScaler");
    const [rows, cols] = checkMatrix(X, "LogScaler.inverseTransform");
    checkFeatures("LogScaler", min.length, cols);
    const max = this.globalMax_!;
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) {
        out[base + c] = Math.exp(X.data[base + c] * max) - Math.abs(min[c]) - 1;
      }
    }
    return { data: out, shape: [rows, cols] };
  }

  /** The fitted state as JSON. */
  toJSON(): ScalerState {
    const min = this.featureMin_ ?? notFitted("LogScaler");
    return { kind: "log", featureMin: Array.from(min), globalMax: this.globalMax_! };
  }
}

/** Options of {@link MinMaxScaler}. */
export interface MinMaxScalerOptions {
  /** Clip transformed values into [0, 1] (default true, DeepInsight's "Norm-1"). */
  clip?: boolean;
}

/**
 * Min–max scaler ("Norm-1"): `x' = (x − min_j) / (max_j − min_j)` per feature; constant
 * features map to 0. Clipped into [0, 1] at use unless `clip: false`.
 */
export class MinMaxScaler implements Scaler {
  /** Always `"minmax"`. */
  readonly kind = "minmax" as const;
  /** Whether transform clips into [0, 1]. */
  readonly clip: boolean;
  /** Per-feature minimum of the training rows. */
  featureMin_?: Float64Array;
  /** Per-feature maximum of the training rows. */
  featureMax_?: Float64Array;

  /** Creates an unfitted scaler. */
  constructor(options: MinMaxScalerOptions = {}) {
    this.clip = options.clip ?? true;
  }

  /** Number of features seen by `fit`. */
  get nFeatures(): number {
    return this.featureMin_?.length ?? 0;
  }

  /** Learns per-feature minima and maxima. */
  fit(X: Matrix): this {
    const [rows, cols] = checkMatrix(X, "MinMaxScaler.fit");
    if (rows === 0) throw new Error("MinMaxScaler.fit needs at least one row");
    const min = new Float64Array(cols).fill(Infinity);
    const max = new Float64Array(cols).fill(-Infinity);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) {
        const v = X.data[base + c];
        if (v < min[c]) min[c] = v;
        if (v > max[c]) max[c] = v;
      }
    }
    this.featureMin_ = min;
    this.featureMax_ = max;
    return this;
  }

  /** Scales `X` with the fitted minima and maxima. */
  transform(X: Matrix): Matrix {
    const min = this.featureMin_ ?? notFitted("MinMaxScaler");
    const max = this.featureMax_!;
    const [rows, cols] = checkMatrix(X, "MinMaxScaler.transform");
    checkFeatures("MinMaxScaler", min.length, cols);
    const scale = Float64Array.from(min, (m, c) => (max[c] > m ? 1 / (max[c] - m) : 0));
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) {
        let v = (X.data[base + c] - min[c]) * scale[c];
        if (this.clip) v = v < 0 ? 0 : v > 1 ? 1 : v;
        out[base + c] = v;
      }
    }
    return { data: out, shape: [rows, cols] };
  }

  /** `fit(X)` then `transform(X)`. */
  fitTransform(X: Matrix): Matrix {
    return this.fit(X).transform(X);
  }

  /** `x = min_j + x'·(max_j − min_j)`. */
  inverseTransform(X: Matrix): Matrix {
    const min = this.featureMin_ ?? notFitted("MinMaxScaler");
    const max = this.featureMax_!;
    const [rows, cols] = checkMatrix(X, "MinMaxScaler.inverseTransform");
    checkFeatures("MinMaxScaler", min.length, cols);
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) out[base + c] = min[c] + X.data[base + c] * (max[c] - min[c]);
    }
    return { data: out, shape: [rows, cols] };
  }

  /** The fitted state as JSON. */
  toJSON(): ScalerState {
    const min = this.featureMin_ ?? notFitted("MinMaxScaler");
    return {
      kind: "minmax",
      featureMin: Array.from(min),
      featureMax: Array.from(this.featureMax_!),
      clip: this.clip,
    };
  }
}

/** The identity "scaler", for data already in [0, 1] or when scaling is done elsewhere. */
export class IdentityScaler implements Scaler {
  /** Always `"none"`. */
  readonly kind = "none" as const;
  #features = 0;

  /** Number of features seen by `fit`. */
  get nFeatures(): number {
    return this.#features;
  }

  /** Records the number of features. */
  fit(X: Matrix): this {
    this.#features = checkMatrix(X, "IdentityScaler.fit")[1];
    return this;
  }

  /** Returns a copy of `X`. */
  transform(X: Matrix): Matrix {
    const [rows, cols] = checkMatrix(X, "IdentityScaler.transform");
    if (this.#features) checkFeatures("IdentityScaler", this.#features, cols);
    return { data: X.data.slice(), shape: [rows, cols] };
  }

  /** `fit(X)` then `transform(X)`. */
  fitTransform(X: Matrix): Matrix {
    return this.fit(X).transform(X);
  }

  /** Returns a copy of `X`. */
  inverseTransform(X: Matrix): Matrix {
    return this.transform(X);
  }

  /** The state as JSON. */
  toJSON(): ScalerState {
    return { kind: "none", features: this.#features };
  }
}

/** Creates a fitted scaler from {@link Scaler.toJSON} output. */
export function scalerFromJSON(state: ScalerState): Scaler {
  switch (state.kind) {
    case "log": {
      const s = new LogScaler();
      s.featureMin_ = Float64Array.from(state.featureMin);
      s.globalMax_ = state.globalMax;
      return s;
    }
    case "minmax": {
      const s = new MinMaxScaler({ clip: state.clip });
      s.featureMin_ = Float64Array.from(state.featureMin);
      s.featureMax_ = Float64Array.from(state.featureMax);
      return s;
    }
    case "none": {
      const s = new IdentityScaler();
      if (state.features) {
        s.fit({ data: new Float32Array(state.features), shape: [1, state.features] });
      }
      return s;
    }
    default:
      throw new Error(`unknown scaler kind ${JSON.stringify((state as { kind: unknown }).kind)}`);
  }
}

/** Creates an unfitted scaler by name. */
export function makeScaler(kind: "log" | "minmax" | "none"): Scaler {
  if (kind === "log") return new LogScaler();
  if (kind === "minmax") return new MinMaxScaler();
  if (kind === "none") return new IdentityScaler();
  throw new Error(`unknown scaler ${JSON.stringify(kind)}: use "log", "minmax" or "none"`);
}
