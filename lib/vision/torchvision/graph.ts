/**
 * Building a frozen TF.js layers graph from PyTorch modules, one module at a time, with the
 * weights of a `state_dict`: `nn.Conv2d` (explicit padding, groups, optional BatchNorm and
 * ReLU after it), `nn.MaxPool2d`, `nn.AdaptiveAvgPool2d`, `nn.Linear`, residual additions,
 * ShuffleNetV2's split, concatenation and channel shuffle. Layers are named after the PyTorch
 * modules (`"layer1.0.conv1"`), every layer is non-trainable, and BatchNorm runs in inference
 * mode with its running statistics: folded into the convolution (default) or kept as a
 * frozen BatchNormalization layer.
 *
 * @module
 */
import { tf } from "../../tf.ts";
import { FrozenBatchNormalization } from "../frozen.ts";
import type { StateDict, TorchTensor } from "../torch/types.ts";
import {
  AdaptiveAveragePooling2D,
  ChannelShuffle,
  ChannelSlice,
  TorchConv2D,
  TorchMaxPool2D,
} from "./layers.ts";
import {
  BATCH_NORM_EPSILON,
  convKernel,
  denseKernel,
  depthwiseKernel,
  foldBatchNorm,
  groupedConvKernel,
} from "./weights.ts";
import type { BatchNormParams } from "./weights.ts";

type Sym = tf.SymbolicTensor;

/** An `nn.Conv2d`, optionally followed by an `nn.BatchNorm2d` and an `nn.ReLU`. */
export interface ConvOptions {
  /** The convolution's module path; its weight is `${name}.weight`. */
  name: string;
  /** Output channels. */
  filters: number;
  /** Square kernel size. */
  kernel: number;
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding on each side (default 0). */
  padding?: number;
  /** `groups` (default 1); equal to the input channels = depthwise. */
  groups?: number;
  /** Whether it has `${name}.bias` (default false). */
  bias?: boolean;
  /** Module path of the BatchNorm2d after it, if any. */
  bn?: string;
  /** Name of the ReLU after it (conv or BatchNorm), if any. */
  relu?: string;
}

/** Options of {@link TorchGraph}. */
export interface TorchGraphOptions {
  /**
   * Fold each BatchNorm into the convolution before it, and each ReLU into the layer before
   * it (default true): the same function with fewer passes over the feature maps. With false
   * every PyTorch module is its own layer (BatchNorm as `FrozenBatchNormalization`).
   */
  foldBatchNorm?: boolean;
  /** Names the checkpoint and network in errors. */
  context?: string;
}

/**
 * Builds the graph module by module from `state`; each call takes the symbolic input and
 * returns the symbolic output. Weights are set as layers are created; each tensor used is
 * removed from `state` (so large ones can be collected) and recorded in {@link keysUsed}.
 */
export class TorchGraph {
  /** Names of the layers created, in order. */
  readonly layerNames: string[] = [];
  /** State-dict keys whose tensors were used. */
  readonly keysUsed: string[] = [];
  readonly #state: StateDict;
  readonly #fold: boolean;
  readonly #context: string;

  /** `state` holds (at least) every tensor the calls will use. */
  constructor(state: StateDict, options: TorchGraphOptions = {}) {
    this.#state = state;
    this.#fold = options.foldBatchNorm ?? true;
    this.#context = options.context ?? "state_dict";
  }

  /** Whether BatchNorm and ReLU are folded into the layers before them. */
  get folded(): boolean {
    return this.#fold;
  }

  /** The tensor of `key`, removed from the state; an error names the key if it is absent. */
  take(key: string): TorchTensor {
    const t = this.#state.get(key);
    if (!t) throw new Error(`${this.#context}: the tensor "${key}" was not read`);
    this.#state.delete(key);
    this.keysUsed.push(key);
    return t;
  }

  /** Applies `layer` (frozen) to `x`, sets its weights, and records its name. */
  #apply(layer: tf.layers.Layer, x: Sym | Sym[], weights: tf.Tensor[] = []): Sym {
    layer.trainable = false;
    const y = layer.apply(x) as Sym;
    if (weights.length) {
      layer.setWeights(weights);
      for (const w of weights) w.dispose();
    }
    this.layerNames.push(layer.name);
    return y;
  }

  #batchNorm(prefix: string): BatchNormParams {
    return {
      gamma: this.take(`${prefix}.weight`).data,
      beta: this.take(`${prefix}.bias`).data,
      mean: this.take(`${prefix}.running_mean`).data,
      variance: this.take(`${prefix}.running_var`).data,
      epsilon: BATCH_NORM_EPSILON,
    };
  }

  /**
   * `nn.Conv2d` (+ BatchNorm2d, + ReLU): a `valid` TF.js convolution, or a {@link TorchConv2D}
   * where it pads.
   */
  conv(x: Sym, o: ConvOptions): Sym {
    const inChannels = x.shape[3]!;
    const groups = o.groups ?? 1;
    const stride = o.stride ?? 1;
    const padding = o.padding ?? 0;
    const depthwise = groups > 1 && groups === inChannels && o.filters === inChannels;
    const weight = this.take(`${o.name}.weight`);
    let kernel = depthwise
      ? depthwiseKernel(weight)
      : groups > 1
      ? groupedConvKernel(weight, groups)
      : convKernel(weight);
    let bias = o.bias ? this.take(`${o.name}.bias`).data : null;
    const foldBn = o.bn !== undefined && this.#fold;
    if (foldBn) bias = foldBatchNorm(kernel, bias, this.#batchNorm(o.bn!));
    const fuseRelu = o.relu !== undefined && this.#fold && (o.bn === undefined || foldBn);
    const k = o.kernel;
    const common = {
      name: o.name,
      kernelSize: k,
      strides: stride,
      padding: "valid" as const,
      useBias: bias !== null,
      activation: fuseRelu ? "relu" as const : "linear" as const,
      biasInitializer: "zeros" as const,
    };
    const layer = padding > 0
      ? new TorchConv2D({
        name: o.name,
        filters: o.filters,
        kernelSize: k,
        strides: stride,
        padding,
        depthwise,
        useBias: bias !== null,
        activation: common.activation,
      })
      : depthwise
      ? tf.layers.depthwiseConv2d({ ...common, depthwiseInitializer: "zeros" })
      : tf.layers.conv2d({ ...common, filters: o.filters, kernelInitializer: "zeros" });
    const shape = depthwise ? [k, k, inChannels, 1] : [k, k, inChannels, o.filters];
    const weights = [tf.tensor(kernel, shape)];
    kernel = new Float32Array(0);
    if (bias) weights.push(tf.tensor1d(bias));
    let y = this.#apply(layer, x, weights);
    if (o.bn !== undefined && !foldBn) y = this.batchNorm(y, o.bn);
    if (o.relu !== undefined && !fuseRelu) y = this.relu(y, o.relu);
    return y;
  }

  /** `nn.BatchNorm2d` in inference mode, as a frozen BatchNormalization layer. */
  batchNorm(x: Sym, prefix: string): Sym {
    const bn = this.#batchNorm(prefix);
    const layer = new FrozenBatchNormalization({
      name: prefix,
      axis: -1,
      epsilon: bn.epsilon,
    });
    return this.#apply(
      layer,
      x,
      [bn.gamma, bn.beta, bn.mean, bn.variance].map((v) => tf.tensor1d(v)),
    );
  }

  /** `nn.ReLU`. */
  relu(x: Sym, name: string): Sym {
    return this.#apply(tf.layers.reLU({ name }), x);
  }

  /** `nn.MaxPool2d(kernel, stride, padding, ceil_mode)`. */
  maxPool(
    x: Sym,
    name: string,
    kernel: number,
    stride: number,
    padding = 0,
    ceilMode = false,
  ): Sym {
    return this.#apply(
      new TorchMaxPool2D({ name, poolSize: kernel, strides: stride, padding, ceilMode }),
      x,
    );
  }

  /** `nn.AdaptiveAvgPool2d((h, w))`. */
  adaptiveAvgPool(x: Sym, name: string, outputSize: [number, number]): Sym {
    return this.#apply(new AdaptiveAveragePooling2D({ name, outputSize }), x);
  }

  /**
   * `torch.flatten(x, 1)` of a channels-last map: a TF.js `Flatten` (channels-last order);
   * the next {@link linear} gets `nchw` to reorder its weights to match PyTorch's order.
   */
  flatten(x: Sym, name: string): Sym {
    return this.#apply(tf.layers.flatten({ name }), x);
  }

  /**
   * `nn.Linear` (+ ReLU). `nchw`: the `[c, h, w]` map flattened before it, whose
   * channel-major order the weight rows assume (see `denseKernel`).
   */
  linear(x: Sym, name: string, units: number, relu?: string, nchw?: [number, number, number]): Sym {
    const kernel = denseKernel(this.take(`${name}.weight`), nchw);
    const bias = this.take(`${name}.bias`).data;
    const fuseRelu = relu !== undefined && this.#fold;
    const layer = tf.layers.dense({
      name,
      units,
      activation: fuseRelu ? "relu" : "linear",
      kernelInitializer: "zeros",
      biasInitializer: "zeros",
    });
    const y = this.#apply(layer, x, [tf.tensor2d(kernel, [x.shape[1]!, units]), tf.tensor1d(bias)]);
    return relu !== undefined && !fuseRelu ? this.relu(y, relu) : y;
  }

  /** Elementwise sum (a residual connection). */
  add(xs: Sym[], name: string): Sym {
    return this.#apply(tf.layers.add({ name }), xs);
  }

  /** `torch.cat(xs, dim=1)`: concatenation along channels. */
  concat(xs: Sym[], name: string): Sym {
    return this.#apply(tf.layers.concatenate({ name, axis: -1 }), xs);
  }

  /** Channels `[begin, begin + size)`. */
  channelSlice(x: Sym, name: string, begin: number, size: number): Sym {
    return this.#apply(new ChannelSlice({ name, begin, size }), x);
  }

  /** ShuffleNetV2's `channel_shuffle(x, groups)`. */
  channelShuffle(x: Sym, name: string, groups: number): Sym {
    return this.#apply(new ChannelShuffle({ name, groups }), x);
  }
}
