/**
 * A small multi-layer perceptron on embedding vectors: the second baseline beside logistic
 * regression (same embeddings as the images, no image transform). Features are
 * standardised with the training rows' mean and standard deviation; hidden layers use ReLU
 * and dropout; Adam, cross-entropy, seeded; the epoch with the best validation accuracy
 * is kept when a validation set is given.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { Random } from "../random.ts";
import { Adam } from "../train/adam.ts";
import { deriveSeed } from "../train/classifier.ts";
import type { Labels, Matrix } from "../types.ts";

/** Options of {@link MLPClassifier}. */
export interface MLPClassifierOptions {
  /** Hidden layer widths (default `[256]`). */
  hidden?: number[];
  /** Dropout after each hidden layer (default 0.3). */
  dropout?: number;
  /** Adam learning rate (default 1e-3). */
  lr?: number;
  /** L2 penalty added to the gradient (PyTorch `weight_decay`, default 1e-4). */
  weightDecay?: number;
  /** Epochs (default 30). */
  epochs?: number;
  /** Batch size (default 64). */
  batchSize?: number;
  /** Seed of initialisation, shuffling and dropout (default 42). */
  seed?: number;
}

/** The MLP's defaults: the one place they live (the experiment carries options whole). */
export const MLP_DEFAULTS: Readonly<Required<MLPClassifierOptions>> = Object.freeze({
  hidden: Object.freeze([256]) as number[],
  dropout: 0.3,
  lr: 1e-3,
  weightDecay: 1e-4,
  epochs: 30,
  batchSize: 64,
  seed: 42,
});

/** One epoch of the MLP's training. */
export interface MLPEpochRecord {
  /** 1-based epoch. */
  epoch: number;
  /** Mean training loss (training mode). */
  trainLoss: number;
  /** Validation accuracy (inference mode), when a validation set is given. */
  validationAccuracy?: number;
}

/**
 * A fitted {@link MLPClassifier} as plain values (what `predictProba` needs): its options,
 * the standardisation fitted on the training rows, and every dense layer's weights (the kept
 * epoch's).
 */
export interface MLPState {
  /** The effective options. */
  config: Required<MLPClassifierOptions>;
  /** The epoch whose weights these are (1-based). */
  selectedEpoch?: number;
  /** Per-feature mean of the training rows. */
  mean: Float32Array;
  /** Per-feature standard deviation of the training rows. */
  scale: Float32Array;
  /** Dense layers in order: kernel `[in, out]` row-major, bias `[out]`. */
  layers: { kernel: Float32Array; shape: [number, number]; bias: Float32Array }[];
}

/** A small MLP classifier on dense vectors (scikit-learn-like estimator). */
export class MLPClassifier {
  /** The options given. */
  readonly options: MLPClassifierOptions;
  /** Per-feature mean of the training rows (after `fit`). */
  mean_?: Float32Array;
  /** Per-feature standard deviation of the training rows (after `fit`). */
  scale_?: Float32Array;
  /** Per-epoch records (after `fit`). */
  history_: MLPEpochRecord[] = [];
  /** The epoch whose weights were kept (1-based). */
  selectedEpoch_?: number;
  /** Seconds `fit` took. */
  fitSeconds_ = 0;
  #layers: { kernel: tf.Variable; bias: tf.Variable }[] = [];

  /** Creates an unfitted model. */
  constructor(options: MLPClassifierOptions = {}) {
    this.options = options;
  }

  /** Effective hyper-parameters: the options given over {@link MLP_DEFAULTS}. */
  get config(): Required<MLPClassifierOptions> {
    const defined = Object.entries(this.options).filter(([, v]) => v !== undefined);
    return { ...MLP_DEFAULTS, ...Object.fromEntries(defined) };
  }

  /** Trainable parameter count (after `fit`). */
  countParams(): number {
    return this.#layers.reduce((s, l) => s + l.kernel.size + l.bias.size, 0);
  }

  #standardize(x: Matrix): Float32Array {
    const [n, d] = x.shape;
    const out = new Float32Array(n * d);
    const mean = this.mean_!, scale = this.scale_!;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) out[i * d + j] = (x.data[i * d + j] - mean[j]) / scale[j];
    }
    return out;
  }

  #forward(x: tf.Tensor2D, training: boolean, seed: number): tf.Tensor2D {
    const dropout = this.config.dropout;
    return tf.tidy(() => {
      let h = x;
      this.#layers.forEach((layer, i) => {
        const last = i === this.#layers.length - 1;
        h = tf.fused.matMul({
          a: h,
          b: layer.kernel as tf.Tensor2D,
          bias: layer.bias,
          activation: last ? "linear" : "relu",
        }) as tf.Tensor2D;
        if (!last && training && dropout > 0) {
          h = tf.dropout(h, dropout, undefined, seed * 7 + i) as tf.Tensor2D;
        }
      });
      return h;
    });
  }

  /** Trains on `x` `[n, d]` with labels `y`, keeping the best epoch on `validation`. */
  fit(x: Matrix, y: Labels, validation?: { x: Matrix; y: Labels }): this {
    const started = performance.now();
    const [n, d] = x.shape;
    if (y.length !== n) throw new Error(`MLPClassifier.fit: ${n} rows but ${y.length} labels`);
    if (validation && validation.x.shape[1] !== d) {
      throw new Error(
        `MLPClassifier.fit: validation has ${validation.x.shape[1]} features, not ${d}`,
      );
    }
    const o = this.config;
    const { hidden, epochs, batchSize, seed } = o;
    // Standardisation fitted on the training rows.
    const mean = new Float64Array(d), sq = new Float64Array(d);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) mean[j] += x.data[i * d + j];
    }
    for (let j = 0; j < d; j++) mean[j] /= n;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) sq[j] += (x.data[i * d + j] - mean[j]) ** 2;
    }
    this.mean_ = Float32Array.from(mean);
    this.scale_ = Float32Array.from(sq, (s) => Math.sqrt(s / n) || 1);
    this.dispose();
    const random = new Random(seed);
    let inF = d;
    for (const outF of [...hidden, 2]) {
      const limit = Math.sqrt(6 / (inF + outF));
      const k = Float32Array.from({ length: inF * outF }, () => (2 * random.next() - 1) * limit);
      this.#layers.push({
        kernel: tf.tidy(() => tf.variable(tf.tensor2d(k, [inF, outF]))),
        bias: tf.tidy(() => tf.variable(tf.zeros([outF]))),
      });
      inF = outF;
    }
    const params = this.#layers.flatMap((l, i) => [
      { name: `dense${i}/kernel`, variable: l.kernel },
      { name: `dense${i}/bias`, variable: l.bias },
    ]);
    const adam = new Adam([{ name: "all", lr: o.lr, params }], { weightDecay: o.weightDecay });
    const xs = tf.tensor2d(this.#standardize(x), [n, d]);
    const oneHot = new Float32Array(n * 2);
    for (let i = 0; i < n; i++) oneHot[i * 2 + y[i]] = 1;
    const ys = tf.tensor2d(oneHot, [n, 2]);
    let best: { accuracy: number; weights: Float32Array[] } | undefined;
    this.history_ = [];
    try {
      for (let epoch = 0; epoch < epochs; epoch++) {
        const order = new Random(deriveSeed(seed, epoch + 1)).permutation(n);
        let lossSum = 0;
        for (let b = 0; b * batchSize < n; b++) {
          const idx = tf.tensor1d(order.slice(b * batchSize, (b + 1) * batchSize), "int32");
          const xb = tf.gather(xs, idx), yb = tf.gather(ys, idx);
          const { value, grads } = tf.variableGrads(
            () =>
              tf.losses.softmaxCrossEntropy(
                yb,
                this.#forward(xb as tf.Tensor2D, true, deriveSeed(seed, epoch + 1, b + 1)),
              ) as tf.Scalar,
            adam.variables(),
          );
          adam.applyGradients(grads);
          lossSum += value.dataSync()[0] * idx.size;
          tf.dispose([idx, xb, yb, value, ...Object.values(grads)]);
        }
        const record: MLPEpochRecord = { epoch: epoch + 1, trainLoss: lossSum / n };
        if (validation) {
          const pred = this.predict(validation.x);
          let correct = 0;
          for (let i = 0; i < pred.length; i++) if (pred[i] === validation.y[i]) correct++;
          record.validationAccuracy = correct / pred.length;
          if (!best || record.validationAccuracy > best.accuracy) {
            best = {
              accuracy: record.validationAccuracy,
              weights: params.map((p) => p.variable.dataSync().slice() as Float32Array),
            };
            this.selectedEpoch_ = epoch + 1;
          }
        }
        this.history_.push(record);
      }
      if (best) {
        params.forEach((p, i) =>
          tf.tidy(() => p.variable.assign(tf.tensor(best!.weights[i], p.variable.shape)))
        );
      } else {
        this.selectedEpoch_ = epochs;
      }
    } finally {
      tf.dispose([xs, ys]);
    }
    this.fitSeconds_ = (performance.now() - started) / 1000;
    return this;
  }

  /** Probability of the positive class (label 1) per row of `x`. */
  predictProba(x: Matrix): Float32Array {
    if (this.#layers.length === 0) throw new Error("MLPClassifier: call fit() first");
    const [n, d] = x.shape;
    if (d !== this.mean_!.length) {
      throw new Error(`MLPClassifier: expected ${this.mean_!.length} features, got ${d}`);
    }
    const out = new Float32Array(n);
    const z = this.#standardize(x);
    const chunk = 1024;
    for (let start = 0; start < n; start += chunk) {
      const end = Math.min(n, start + chunk);
      const p = tf.tidy(() => {
        const logits = this.#forward(
          tf.tensor2d(z.subarray(start * d, end * d), [end - start, d]),
          false,
          0,
        );
        return tf.softmax(logits).slice([0, 1], [-1, 1]).dataSync();
      });
      out.set(p, start);
    }
    return out;
  }

  /** The fitted model as plain values (a copy); throws when not fitted. */
  getState(): MLPState {
    if (this.#layers.length === 0) throw new Error("MLPClassifier: call fit() before getState()");
    return {
      config: this.config,
      selectedEpoch: this.selectedEpoch_,
      mean: this.mean_!.slice(),
      scale: this.scale_!.slice(),
      layers: this.#layers.map((l) => ({
        kernel: l.kernel.dataSync().slice() as Float32Array,
        shape: l.kernel.shape.slice() as [number, number],
        bias: l.bias.dataSync().slice() as Float32Array,
      })),
    };
  }

  /**
   * A fitted classifier from {@link MLPClassifier.getState}: its predictions equal the
   * original's (same weights, same arithmetic). Dispose it when done.
   */
  static fromState(state: MLPState): MLPClassifier {
    const d = state.mean.length;
    if (state.scale.length !== d || state.layers.length === 0) {
      throw new Error("MLPClassifier.fromState: mean, scale and layers do not fit together");
    }
    const mlp = new MLPClassifier(state.config);
    mlp.mean_ = state.mean.slice();
    mlp.scale_ = state.scale.slice();
    mlp.selectedEpoch_ = state.selectedEpoch;
    let inF = d;
    for (const [i, layer] of state.layers.entries()) {
      const [rows, cols] = layer.shape;
      if (rows !== inF || layer.kernel.length !== rows * cols || layer.bias.length !== cols) {
        mlp.dispose();
        throw new Error(`MLPClassifier.fromState: layer ${i} has shape [${layer.shape}]`);
      }
      mlp.#layers.push({
        kernel: tf.tidy(() => tf.variable(tf.tensor2d(layer.kernel, [rows, cols]), false)),
        bias: tf.tidy(() => tf.variable(tf.tensor1d(layer.bias), false)),
      });
      inF = cols;
    }
    return mlp;
  }

  /** Predicted labels (1 when the positive class is more probable). */
  predict(x: Matrix): Labels {
    const p = this.predictProba(x);
    return Uint8Array.from(p, (v) => (v > 0.5 ? 1 : 0));
  }

  /** Frees the weights. */
  dispose(): void {
    for (const l of this.#layers) tf.dispose([l.kernel, l.bias]);
    this.#layers = [];
  }
}
