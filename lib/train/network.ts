/**
 * The trainable network on top of a frozen backbone: four [Conv, ReLU, BatchNorm] blocks
 * (optional dropout), adaptive average pooling to a fixed grid, an MLP head and 2 logits,
 * written with plain TF.js ops and named variables so that weights, BatchNorm statistics and
 * optimizer state can be saved and restored exactly.
 *
 * Initialisation follows the official code: Xavier-normal conv kernels, Xavier-uniform
 * dense kernels with the ReLU gain √2, PyTorch's default uniform biases
 * (±1/√fan_in), BatchNorm γ = 1, β = 0, running mean 0 and variance 1 (momentum 0.1,
 * ε = 1e-5, unbiased running variance, as `torch.nn.BatchNorm2d`). All draws come from a
 * seeded generator.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { Random } from "../random.ts";
import type { ArchitectureSpec } from "./architecture.ts";
import { resolvePadding } from "./architecture.ts";
import type { Collective } from "./collective.ts";
import type { FeatureStandardization } from "./standardize.ts";
import { dropout as dropoutOf } from "./dropout.ts";
import {
  BATCH_NORM_TRAINING,
  BATCH_NORM_TRAINING_GRAD,
  nativeBatchNormAvailable,
} from "../native/mod.ts";

/** Which optimizer group a parameter belongs to. */
export type ParamGroupName = "conv" | "head";

/** A trainable parameter. */
export interface Param {
  /** Unique name, e.g. `conv1/kernel`. */
  name: string;
  /** Optimizer group (separate learning rates). */
  group: ParamGroupName;
  /** The variable. */
  variable: tf.Variable;
}

/** Named float32 arrays with their shapes, e.g. weights in a checkpoint. */
export type NamedArrays = Record<string, { data: Float32Array; shape: number[] }>;

const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.1;

/**
 * PyTorch-style adaptive average pooling as a `[out*out, h*w]` matrix: output cell `(i, j)`
 * averages rows `[⌊i·h/out⌋, ⌈(i+1)·h/out⌉)` and the same for columns.
 */
export function adaptivePoolMatrix(h: number, w: number, out: number): Float32Array {
  const m = new Float32Array(out * out * h * w);
  for (let i = 0; i < out; i++) {
    const r0 = Math.floor((i * h) / out), r1 = Math.ceil(((i + 1) * h) / out);
    for (let j = 0; j < out; j++) {
      const c0 = Math.floor((j * w) / out), c1 = Math.ceil(((j + 1) * w) / out);
      const weight = 1 / ((r1 - r0) * (c1 - c0));
      const row = (i * out + j) * h * w;
      for (let r = r0; r < r1; r++) {
        for (let c = c0; c < c1; c++) m[row + r * w + c] = weight;
      }
    }
  }
  return m;
}

/** Adaptive average pooling of `[n, h, w, c]` to `[n, out, out, c]` with a pooling matrix. */
export function adaptiveAvgPool(x: tf.Tensor4D, pool: tf.Tensor2D, out: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    if (h === out && w === out) return x.clone();
    // [n, h*w, c] → [h*w, n*c]; P·X → [out*out, n*c] → [n, out, out, c]
    const flat = tf.reshape(tf.transpose(tf.reshape(x, [n, h * w, c]), [1, 0, 2]), [
      h * w,
      n * c,
    ]);
    const pooled = tf.matMul(pool, flat);
    return tf.reshape(tf.transpose(tf.reshape(pooled, [out * out, n, c]), [1, 0, 2]), [
      n,
      out,
      out,
      c,
    ]) as tf.Tensor4D;
  });
}

/**
 * BatchNorm in training mode over axes [0, 1, 2] of `x` with a hand-written gradient (one
 * fused expression instead of TF.js's generic one, which tiles per-channel values to the
 * full tensor): `dx = γ·σ⁻¹/N · (N·dy − Σdy − x̂·Σ(dy·x̂))`. The batch mean and biased
 * variance go to `stats` for the running averages.
 *
 * With a `collective` of several ranks (data-parallel training, each rank holding part of
 * the batch), the statistics are those of the whole batch: the ranks sum their counts, sums
 * and squared deviations in the forward pass, and Σdy, Σ(dy·x̂) in the backward pass, so the
 * result equals BatchNorm over the whole batch (not per-shard "ghost" statistics). The
 * returned γ and β gradients are this rank's part (they are summed with the others later).
 */
export function batchNormTraining(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  stats?: BatchNormStats,
  collective?: Collective,
): tf.Tensor4D {
  const shape = x.shape;
  const c = shape[3], n = x.size / c;
  const synced = collective !== undefined && collective.size > 1;
  if (!synced && nativeBatchNormAvailable()) return batchNormNative(x, gamma, beta, stats);
  let total = n;
  const op = tf.customGrad(
    (...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [input, g, bt] = args as tf.Tensor[];
      const save = args[3] as tf.GradSaveFunc;
      const x2 = tf.reshape(input, [n, c]);
      let mean = tf.mean(x2, 0);
      let centered = tf.sub(x2, mean);
      let variance = tf.mean(tf.square(centered), 0);
      if (synced) {
        // [count, Σx (c), Σx² about 0 (c)] over all ranks, in float64
        const m = mean.dataSync(), v = variance.dataSync();
        const buf = new Float64Array(1 + 2 * c);
        buf[0] = n;
        for (let j = 0; j < c; j++) {
          buf[1 + j] = n * m[j];
          buf[1 + c + j] = n * v[j] + n * m[j] * m[j];
        }
        collective!.allReduceSum(buf);
        total = buf[0];
        const gm = new Float32Array(c), gv = new Float32Array(c);
        for (let j = 0; j < c; j++) {
          const mu = buf[1 + j] / total;
          gm[j] = mu;
          gv[j] = Math.max(0, buf[1 + c + j] / total - mu * mu);
        }
        mean = tf.tensor1d(gm);
        variance = tf.tensor1d(gv);
        centered = tf.sub(x2, mean);
      }
      const invStd = tf.rsqrt(tf.add(variance, BN_EPSILON));
      const xhat = tf.mul(centered, invStd);
      const value = tf.reshape(tf.add(tf.mul(xhat, g), bt), shape);
      if (stats) {
        stats.blocks.push({
          mean: tf.keep(mean as tf.Tensor1D),
          variance: tf.keep(variance as tf.Tensor1D),
          count: total,
        });
      }
      save([xhat, invStd, g]);
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xh, inv, gm] = saved;
          const dy2 = tf.reshape(dy, [n, c]);
          const dBeta = tf.sum(dy2, 0);
          const dGamma = tf.sum(tf.mul(dy2, xh), 0);
          let sumDy: tf.Tensor = dBeta, sumDyXhat: tf.Tensor = dGamma;
          if (synced) {
            const b = dBeta.dataSync(), gg = dGamma.dataSync();
            const buf = new Float64Array(2 * c);
            for (let j = 0; j < c; j++) {
              buf[j] = b[j];
              buf[c + j] = gg[j];
            }
            collective!.allReduceSum(buf);
            sumDy = tf.tensor1d(Float32Array.from(buf.subarray(0, c)));
            sumDyXhat = tf.tensor1d(Float32Array.from(buf.subarray(c)));
          }
          const dx = tf.mul(
            tf.sub(tf.sub(tf.mul(dy2, total), sumDy), tf.mul(xh, sumDyXhat)),
            tf.div(tf.mul(gm, inv), total),
          );
          return [tf.reshape(dx, shape), dGamma, dBeta];
        },
      };
    },
  );
  return op(x, gamma, beta) as tf.Tensor4D;
}

/**
 * {@link batchNormTraining} on one rank, as the two native kernels of `lib/native/batchnorm.ts`
 * (oneDNN's batch-normalization primitives): the same statistics, output and gradient in one
 * pass each instead of about ten TF.js ops.
 */
function batchNormNative(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  stats?: BatchNormStats,
): tf.Tensor4D {
  const shape = x.shape;
  const c = shape[3], n = x.size / c;
  const attrs = { epsilon: BN_EPSILON };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, g, bt] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const x2 = tf.reshape(input, [n, c]);
    const [y, mean, variance] = tf.engine().runKernel(
      BATCH_NORM_TRAINING,
      { x: x2, gamma: g, beta: bt },
      attrs,
    ) as tf.Tensor[];
    if (stats) {
      stats.blocks.push({
        mean: tf.keep(mean as tf.Tensor1D),
        variance: tf.keep(variance as tf.Tensor1D),
        count: n,
      });
    }
    save([x2, mean, variance, g]);
    return {
      value: tf.reshape(y, shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, m, v, gm] = saved;
        const [dx, dGamma, dBeta] = tf.engine().runKernel(
          BATCH_NORM_TRAINING_GRAD,
          { x: xs, mean: m, variance: v, gamma: gm, dy: tf.reshape(dy, [n, c]) },
          attrs,
        ) as tf.Tensor[];
        return [tf.reshape(dx, shape), dGamma, dBeta];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor4D;
}

interface ConvBlock {
  kernel: tf.Variable;
  bias: tf.Variable;
  gamma: tf.Variable;
  beta: tf.Variable;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
}

interface Dense {
  kernel: tf.Variable;
  bias: tf.Variable;
}

/** Batch statistics a training step measured, to update the running statistics after it. */
export interface BatchNormStats {
  /** Per block: batch mean, biased batch variance, and the count of values per channel. */
  blocks: { mean: tf.Tensor1D; variance: tf.Tensor1D; count: number }[];
}

/** Options of {@link TrainableNetwork.apply}. */
export interface ApplyOptions {
  /** Training mode: batch statistics in BatchNorm, dropout active. */
  training: boolean;
  /** Seed of this call's dropout masks (training only). */
  dropoutSeed?: number;
  /** Where to put the batch statistics (training only). */
  stats?: BatchNormStats;
  /** Data-parallel group: BatchNorm statistics over the whole batch across ranks. */
  collective?: Collective;
}

/** The trainable part of an image classifier. Create with its architecture and input shape. */
export class TrainableNetwork {
  /** The architecture. */
  readonly spec: ArchitectureSpec;
  /** Input feature map `[h, w, c]` (the backbone's output). */
  readonly inputShape: [number, number, number];
  /** Padding the convolutions use (resolved from the spec for this input size). */
  readonly padding: "valid" | "same";
  /** Feature map after the conv stack `[h, w, c]`. */
  readonly convOutputShape: [number, number, number];
  /** Trainable parameters in a fixed order. */
  readonly params: Param[] = [];
  /** Non-trainable state (BatchNorm running statistics) in a fixed order. */
  readonly state: { name: string; variable: tf.Variable }[] = [];
  #blocks: ConvBlock[] = [];
  #dense: Dense[] = [];
  #pool: tf.Tensor2D;
  #input?: { mean: tf.Variable; scale: tf.Variable };

  /**
   * Builds and initialises the network from `seed`. With `standardizeInput`, inputs are
   * standardised first (see `standardize.ts`; identity until {@link setStandardization}),
   * and the standardisation is part of the saved state.
   */
  constructor(
    spec: ArchitectureSpec,
    inputShape: [number, number, number],
    seed: number,
    options: { standardizeInput?: boolean } = {},
  ) {
    this.spec = spec;
    this.inputShape = inputShape;
    if (options.standardizeInput) {
      this.#input = {
        mean: this.#state("input/mean", inputShape, 0),
        scale: this.#state("input/scale", [inputShape[2]], 1),
      };
    }
    const { channels, kernelSize: k } = spec.convStack;
    if (channels.length === 0) throw new Error(`${spec.name}: the conv stack needs channels`);
    const { padding, outputSize } = resolvePadding(spec, [inputShape[0], inputShape[1]]);
    this.padding = padding;
    this.convOutputShape = [outputSize[0], outputSize[1], channels[channels.length - 1]];
    const { hidden, hiddenDropout, poolSize } = spec.head;
    if (hiddenDropout.length !== hidden.length) {
      throw new Error(`${spec.name}: head.hiddenDropout needs one rate per hidden layer`);
    }
    const random = new Random(seed);
    let inC = inputShape[2];
    channels.forEach((outC, i) => {
      const name = `conv${i + 1}`;
      const fanIn = inC * k * k, fanOut = outC * k * k;
      const std = Math.sqrt(2 / (fanIn + fanOut)); // Xavier normal, gain 1
      const kernel = this.#param(
        `${name}/kernel`,
        "conv",
        [k, k, inC, outC],
        () => std * random.normal(),
      );
      const bound = 1 / Math.sqrt(fanIn);
      const bias = this.#param(
        `${name}/bias`,
        "conv",
        [outC],
        () => (2 * random.next() - 1) * bound,
      );
      const gamma = this.#param(`${name}/bn_gamma`, "conv", [outC], () => 1);
      const beta = this.#param(`${name}/bn_beta`, "conv", [outC], () => 0);
      const runningMean = this.#state(`${name}/bn_running_mean`, [outC], 0);
      const runningVar = this.#state(`${name}/bn_running_var`, [outC], 1);
      this.#blocks.push({ kernel, bias, gamma, beta, runningMean, runningVar });
      inC = outC;
    });
    const [ph, pw, pc] = this.convOutputShape;
    this.#pool = tf.tensor2d(adaptivePoolMatrix(ph, pw, poolSize), [poolSize * poolSize, ph * pw]);
    let inF = poolSize * poolSize * pc;
    [...hidden, 2].forEach((outF, i) => {
      const name = i < hidden.length ? `dense${i + 1}` : "logits";
      // calculate_gain("relu") on every layer, as the official code, unless the spec says otherwise
      const gains = spec.head.xavierGain ?? { hidden: Math.SQRT2, output: Math.SQRT2 };
      const gain = i < hidden.length ? gains.hidden : gains.output;
      const limit = gain * Math.sqrt(6 / (inF + outF));
      const kernel = this.#param(
        `${name}/kernel`,
        "head",
        [inF, outF],
        () => (2 * random.next() - 1) * limit,
      );
      const bound = 1 / Math.sqrt(inF);
      const bias = this.#param(
        `${name}/bias`,
        "head",
        [outF],
        () => (2 * random.next() - 1) * bound,
      );
      this.#dense.push({ kernel, bias });
      inF = outF;
    });
  }

  #param(
    name: string,
    group: ParamGroupName,
    shape: number[],
    draw: () => number,
  ): tf.Variable {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) values[i] = draw();
    const variable = tf.tidy(() =>
      tf.variable(tf.tensor(values, shape, "float32"), true, undefined, "float32")
    );
    this.params.push({ name, group, variable });
    return variable;
  }

  #state(name: string, shape: number[], value: number): tf.Variable {
    const variable = tf.tidy(() =>
      tf.variable(tf.fill(shape, value, "float32"), false, undefined, "float32")
    );
    this.state.push({ name, variable });
    return variable;
  }

  /** Sets the input standardisation (the network must have been built with one). */
  setStandardization(standardization: FeatureStandardization): void {
    if (!this.#input) throw new Error("setStandardization: built without standardizeInput");
    const { mean, scale } = this.#input;
    tf.tidy(() => {
      mean.assign(tf.tensor(standardization.mean, mean.shape, "float32"));
      scale.assign(tf.tensor(standardization.scale, scale.shape, "float32"));
    });
  }

  /** Number of trainable values. */
  countParams(): number {
    return this.params.reduce((sum, p) => sum + p.variable.size, 0);
  }

  /** Logits `[n, 2]` for input feature maps `[n, h, w, c]`. */
  apply(x: tf.Tensor4D, options: ApplyOptions): tf.Tensor2D {
    const { training } = options;
    const seed = options.dropoutSeed ?? 0;
    const { dropout } = this.spec.convStack;
    const { inputDropout, hiddenDropout } = this.spec.head;
    return tf.tidy(() => {
      let h: tf.Tensor4D = x;
      if (this.#input) h = tf.mul(tf.sub(x, this.#input.mean), this.#input.scale);
      this.#blocks.forEach((b, i) => {
        h = tf.fused.conv2d({
          x: h,
          filter: b.kernel as tf.Tensor4D,
          bias: b.bias,
          strides: 1,
          pad: this.padding,
          activation: "relu",
        });
        if (training) {
          h = batchNormTraining(h, b.gamma, b.beta, options.stats, options.collective);
        } else {
          h = tf.batchNorm(
            h,
            b.runningMean,
            b.runningVar,
            b.beta,
            b.gamma,
            BN_EPSILON,
          ) as tf.Tensor4D;
        }
        if (training && dropout > 0 && i < this.#blocks.length - 1) {
          h = dropoutOf(h, dropout, seed * 31 + i + 1);
        }
      });
      const { poolSize } = this.spec.head;
      const pooled = adaptiveAvgPool(h, this.#pool, poolSize);
      let f: tf.Tensor2D = tf.reshape(pooled, [pooled.shape[0], -1]);
      if (training && inputDropout > 0) {
        f = dropoutOf(f, inputDropout, seed * 31 + 11);
      }
      this.#dense.forEach((d, i) => {
        const last = i === this.#dense.length - 1;
        f = tf.fused.matMul({
          a: f,
          b: d.kernel as tf.Tensor2D,
          bias: d.bias,
          activation: last ? "linear" : "relu",
        }) as tf.Tensor2D;
        if (!last && training && hiddenDropout[i] > 0) {
          f = dropoutOf(f, hiddenDropout[i], seed * 31 + 21 + i);
        }
      });
      return f;
    });
  }

  /**
   * Moves the BatchNorm running statistics towards a training step's batch statistics
   * (PyTorch: momentum 0.1, unbiased variance) and disposes them.
   */
  updateRunningStats(stats: BatchNormStats): void {
    if (stats.blocks.length !== this.#blocks.length) {
      throw new Error("updateRunningStats: statistics do not match the conv blocks");
    }
    tf.tidy(() => {
      stats.blocks.forEach((s, i) => {
        const b = this.#blocks[i];
        const unbiased = s.count > 1 ? s.variance.mul(s.count / (s.count - 1)) : s.variance;
        b.runningMean.assign(b.runningMean.mul(1 - BN_MOMENTUM).add(s.mean.mul(BN_MOMENTUM)));
        b.runningVar.assign(b.runningVar.mul(1 - BN_MOMENTUM).add(unbiased.mul(BN_MOMENTUM)));
      });
    });
    for (const s of stats.blocks) {
      s.mean.dispose();
      s.variance.dispose();
    }
    stats.blocks.length = 0;
  }

  /** Every parameter and BatchNorm statistic as plain arrays (a copy). */
  getWeights(): NamedArrays {
    const out: NamedArrays = {};
    for (const { name, variable } of [...this.params, ...this.state]) {
      out[name] = { data: variable.dataSync() as Float32Array, shape: variable.shape.slice() };
    }
    return out;
  }

  /** Restores values saved with {@link getWeights}; throws on a missing or misshapen entry. */
  setWeights(weights: NamedArrays): void {
    for (const { name, variable } of [...this.params, ...this.state]) {
      const w = weights[name];
      if (!w) throw new Error(`setWeights: no values for ${name}`);
      if (w.data.length !== variable.size) {
        throw new Error(
          `setWeights: ${name} has ${w.data.length} values, expected ${variable.size} ` +
            `(shape ${variable.shape})`,
        );
      }
      tf.tidy(() => variable.assign(tf.tensor(w.data, variable.shape, "float32")));
    }
  }

  /** Frees the variables. */
  dispose(): void {
    for (const { variable } of [...this.params, ...this.state]) variable.dispose();
    this.#pool.dispose();
  }
}
