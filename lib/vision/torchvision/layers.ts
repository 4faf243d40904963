/**
 * TF.js layers (channels-last) that compute what PyTorch's modules compute where TF.js's own
 * layers differ, for the torchvision networks of the paper (arXiv 2106.12479, §3):
 *
 * - {@link TorchMaxPool2D}: `nn.MaxPool2d` with explicit padding (padded with −∞, so padding
 *   never wins the max) and `ceil_mode`; TF's `same` padding places pads differently.
 * - {@link ChannelSlice} and {@link ChannelShuffle}: ShuffleNetV2's `x.chunk(2, dim=1)` and
 *   `channel_shuffle` (PyTorch's NCHW `view(b, g, c/g, h, w).transpose(1, 2)` order).
 * - {@link AdaptiveAveragePooling2D}: `nn.AdaptiveAvgPool2d`, PyTorch's windows
 *   `[floor(i·in/out), ceil((i+1)·in/out))` for any input size.
 *
 * - {@link TorchConv2D}: `nn.Conv2d` with `padding=p` (dense or depthwise, bias and ReLU
 *   fused), padded inside the convolution kernel where it can (the native kernels), else by
 *   a zero padding of its input, as a `ZeroPadding2D` before a `valid` convolution.
 *
 * Every class is registered with `tf.serialization`, so a model containing them can be saved
 * and loaded by any program importing this module.
 *
 * @module
 */
import { tf } from "../../tf.ts";
import { numericPaddingInKernels } from "../../native/kernels.ts";

type Kwargs = Record<string, unknown>;
type Shape = (number | null)[];

/** Arguments every layer here takes besides its own. */
export interface BaseLayerArgs {
  /** Layer name. */
  name?: string;
  /** Always false in practice; there are no weights. */
  trainable?: boolean;
  /** `[h, w, c]` when the layer is the first of a `tf.sequential`. */
  inputShape?: Shape;
}

function register(cls: unknown): void {
  tf.serialization.registerClass(
    cls as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
  );
}

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

function singleShape(shape: Shape | Shape[]): Shape {
  return Array.isArray(shape[0]) ? shape[0] as Shape : shape as Shape;
}

/**
 * Output length of PyTorch's pooling along one axis (`torch.nn.MaxPool2d` documentation):
 * `floor` or `ceil` of `(size + 2·padding − kernel) / stride` plus one; in ceil mode the last
 * window must start inside the input or the left padding.
 */
export function poolOutputSize(
  size: number,
  kernel: number,
  stride: number,
  padding: number,
  ceilMode = false,
): number {
  const span = size + 2 * padding - kernel;
  if (span < 0) {
    throw new Error(
      `pooling: input of ${size} with padding ${padding} is smaller than the kernel ${kernel}`,
    );
  }
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + padding) out--;
  return out;
}

/** Configuration of {@link TorchMaxPool2D}, as in `nn.MaxPool2d` (square windows). */
export interface TorchMaxPool2DArgs extends BaseLayerArgs {
  /** Window size (`kernel_size`). */
  poolSize: number;
  /** Step (`stride`, default: the window size). */
  strides?: number;
  /** Implicit −∞ padding on each side (`padding`, default 0). */
  padding?: number;
  /** Round the output size up (`ceil_mode`, default false). */
  ceilMode?: boolean;
}

/** PyTorch's `nn.MaxPool2d` on channels-last input: −∞ padding, floor or ceil mode. */
export class TorchMaxPool2D extends tf.layers.Layer {
  /** Serialisation name. */
  static className = "TorchMaxPool2D";
  /** Window size. */
  readonly poolSize: number;
  /** Step. */
  readonly strides: number;
  /** Padding on each side. */
  readonly padding: number;
  /** Ceil mode. */
  readonly ceilMode: boolean;

  /** See {@link TorchMaxPool2DArgs}. */
  constructor(args: TorchMaxPool2DArgs) {
    super(args);
    this.poolSize = args.poolSize;
    this.strides = args.strides ?? args.poolSize;
    this.padding = args.padding ?? 0;
    this.ceilMode = args.ceilMode ?? false;
    if (2 * this.padding > this.poolSize) {
      throw new Error(
        `TorchMaxPool2D: padding ${this.padding} must be at most half the kernel ` +
          `${this.poolSize} (as PyTorch requires)`,
      );
    }
  }

  #out(size: number | null): number | null {
    return size === null
      ? null
      : poolOutputSize(size, this.poolSize, this.strides, this.padding, this.ceilMode);
  }

  /** `[n, h', w', c]`. */
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [n, h, w, c] = singleShape(inputShape);
    return [n, this.#out(h), this.#out(w), c];
  }

  /**
   * Pads with −∞ (plus the extra right/bottom rows ceil mode needs) and max-pools `valid`;
   * without ceil mode, where the max-pool kernel takes the padding itself
   * (`numericPaddingInKernels`), no padded copy is made.
   */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs) as tf.Tensor4D;
      const [, h, w] = x.shape;
      const p = this.padding;
      if (p > 0 && !this.ceilMode && numericPaddingInKernels("maxPool")) {
        return tf.maxPool(x, this.poolSize, this.strides, p);
      }
      const extra = (size: number) =>
        (this.#out(size)! - 1) * this.strides + this.poolSize - (size + 2 * p);
      const padH = [p, p + Math.max(0, extra(h))];
      const padW = [p, p + Math.max(0, extra(w))];
      const padded = padH[0] + padH[1] + padW[0] + padW[1] === 0 ? x : tf.pad(
        x,
        [[0, 0], padH as [number, number], padW as [number, number], [0, 0]],
        -Infinity,
      );
      return tf.maxPool(padded, this.poolSize, this.strides, "valid");
    });
  }

  /** Serialisable configuration. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      poolSize: this.poolSize,
      strides: this.strides,
      padding: this.padding,
      ceilMode: this.ceilMode,
    };
  }
}
register(TorchMaxPool2D);

/** Configuration of {@link ChannelSlice}. */
export interface ChannelSliceArgs extends BaseLayerArgs {
  /** First channel kept. */
  begin: number;
  /** Number of channels kept. */
  size: number;
}

/** Channels `[begin, begin + size)` of channels-last input (ShuffleNetV2's `x.chunk(2, dim=1)`). */
export class ChannelSlice extends tf.layers.Layer {
  /** Serialisation name. */
  static className = "ChannelSlice";
  /** First channel kept. */
  readonly begin: number;
  /** Channels kept. */
  readonly size: number;

  /** See {@link ChannelSliceArgs}. */
  constructor(args: ChannelSliceArgs) {
    super(args);
    this.begin = args.begin;
    this.size = args.size;
  }

  /** `[n, h, w, size]`. */
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = singleShape(inputShape);
    const channels = shape[shape.length - 1];
    if (channels !== null && this.begin + this.size > channels) {
      throw new Error(
        `ChannelSlice "${this.name}": channels ${this.begin}…${this.begin + this.size - 1} ` +
          `of an input with ${channels}`,
      );
    }
    return [...shape.slice(0, -1), this.size];
  }

  /** The slice. */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    const x = single(inputs);
    const begin = x.shape.map((_, i) => i === x.rank - 1 ? this.begin : 0);
    const size = x.shape.map((_, i) => i === x.rank - 1 ? this.size : -1);
    return tf.slice(x, begin, size);
  }

  /** Serialisable configuration. */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), begin: this.begin, size: this.size };
  }
}
register(ChannelSlice);

/**
 * The channel order of PyTorch's `channel_shuffle(x, groups)` (ShuffleNetV2): output channel
 * `j = k·groups + g` is input channel `g·(c/groups) + k`. Returns the input channel of each
 * output channel.
 */
export function channelShuffleOrder(channels: number, groups: number): number[] {
  if (channels % groups !== 0) {
    throw new Error(`channel shuffle: ${channels} channels do not split into ${groups} groups`);
  }
  const perGroup = channels / groups;
  return Array.from(
    { length: channels },
    (_, j) => (j % groups) * perGroup + Math.floor(j / groups),
  );
}

/** Configuration of {@link ChannelShuffle}. */
export interface ChannelShuffleArgs extends BaseLayerArgs {
  /** Number of groups (ShuffleNetV2: 2). */
  groups: number;
}

/**
 * ShuffleNetV2's `channel_shuffle` on channels-last input, in PyTorch's channel order: the NCHW
 * `view(b, g, c/g, h, w).transpose(1, 2)` is, channels-last, a reshape to `[n, h, w, g, c/g]`,
 * a swap of the last two axes and a reshape back (see {@link channelShuffleOrder}).
 */
export class ChannelShuffle extends tf.layers.Layer {
  /** Serialisation name. */
  static className = "ChannelShuffle";
  /** Number of groups. */
  readonly groups: number;

  /** See {@link ChannelShuffleArgs}. */
  constructor(args: ChannelShuffleArgs) {
    super(args);
    this.groups = args.groups;
  }

  /** Unchanged shape. */
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return singleShape(inputShape);
  }

  /** The shuffle. */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs) as tf.Tensor4D;
      const [n, h, w, c] = x.shape;
      if (c % this.groups !== 0) {
        throw new Error(`ChannelShuffle "${this.name}": ${c} channels, ${this.groups} groups`);
      }
      return x.reshape([n, h, w, this.groups, c / this.groups])
        .transpose([0, 1, 2, 4, 3])
        .reshape([n, h, w, c]);
    });
  }

  /** Serialisable configuration. */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groups: this.groups };
  }
}
register(ChannelShuffle);

/**
 * PyTorch's adaptive-average-pooling windows along one axis: output `i` averages inputs
 * `[floor(i·size/out), ceil((i+1)·size/out))`. Returns `[start, end)` per output.
 */
export function adaptiveWindows(size: number, out: number): [number, number][] {
  return Array.from({ length: out }, (_, i) => [
    Math.floor((i * size) / out),
    Math.ceil(((i + 1) * size) / out),
  ]);
}

/** The `[out, size]` averaging matrix of {@link adaptiveWindows} (row i: 1/len on its window). */
export function adaptivePoolMatrix(size: number, out: number): Float32Array {
  const m = new Float32Array(out * size);
  adaptiveWindows(size, out).forEach(([start, end], i) => {
    for (let j = start; j < end; j++) m[i * size + j] = 1 / (end - start);
  });
  return m;
}

/** Configuration of {@link AdaptiveAveragePooling2D}. */
export interface AdaptiveAveragePooling2DArgs extends BaseLayerArgs {
  /** Output `[h, w]` (`output_size` of `nn.AdaptiveAvgPool2d`). */
  outputSize: [number, number];
}

/**
 * PyTorch's `nn.AdaptiveAvgPool2d` on channels-last input, for any input size: the average
 * over a rectangle is separable, so it is two small matrix products (rows, then columns) with
 * the matrices of {@link adaptivePoolMatrix}; an axis already of the output size is left as
 * is. Its output size is fixed, so a `Flatten` after it works for any input size.
 */
export class AdaptiveAveragePooling2D extends tf.layers.Layer {
  /** Serialisation name. */
  static className = "AdaptiveAveragePooling2D";
  /** Output `[h, w]`. */
  readonly outputSize: [number, number];

  /** See {@link AdaptiveAveragePooling2DArgs}. */
  constructor(args: AdaptiveAveragePooling2DArgs) {
    super(args);
    this.outputSize = [args.outputSize[0], args.outputSize[1]];
  }

  /** `[n, oh, ow, c]`. */
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [n, , , c] = singleShape(inputShape);
    return [n, this.outputSize[0], this.outputSize[1], c];
  }

  /** The pooling. */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      let x = single(inputs) as tf.Tensor4D;
      const [oh, ow] = this.outputSize;
      // pool axis 1 (rows): [h, n·w·c] ← matrix · that, then the same for axis 2 (columns)
      for (const [axis, out] of [[1, oh], [2, ow]] as const) {
        const size = x.shape[axis];
        if (size === out) continue;
        const perm = axis === 1 ? [1, 0, 2, 3] : [2, 1, 0, 3];
        const moved = x.transpose(perm);
        const rest = moved.shape.slice(1);
        const pooled = tf.matMul(
          tf.tensor2d(adaptivePoolMatrix(size, out), [out, size]),
          moved.reshape([size, -1]),
        );
        x = pooled.reshape([out, ...rest]).transpose(perm) as tf.Tensor4D;
      }
      return x;
    });
  }

  /** Serialisable configuration. */
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), outputSize: [...this.outputSize] };
  }
}
register(AdaptiveAveragePooling2D);

/** Configuration of {@link TorchConv2D}, as in `nn.Conv2d` (square kernels). */
export interface TorchConv2DArgs extends BaseLayerArgs {
  /** Output channels (`out_channels`; a depthwise convolution: the input channels). */
  filters: number;
  /** Kernel size. */
  kernelSize: number;
  /** Stride (default 1). */
  strides?: number;
  /** Zero padding on each side (`padding`, default 0). */
  padding?: number;
  /** One filter per input channel (`groups` = channels, default false). */
  depthwise?: boolean;
  /** Whether it adds a bias (default true). */
  useBias?: boolean;
  /** A ReLU after it (`"relu"`) or none (`"linear"`, default). */
  activation?: "linear" | "relu";
}

/**
 * PyTorch's `nn.Conv2d(padding=p)` on channels-last input: weights `kernel` (`[k, k, c, f]`,
 * depthwise `[k, k, c, 1]`) and `bias`, in the order of TF.js's own convolution layers. The
 * padding goes to the convolution kernel as a number where the kernels in use take one
 * (`numericPaddingInKernels`: no padded copy of the input is made), else the input is padded
 * with zeros first; both compute the same values.
 */
export class TorchConv2D extends tf.layers.Layer {
  /** Serialisation name. */
  static className = "TorchConv2D";
  /** Output channels. */
  readonly filters: number;
  /** Kernel size. */
  readonly kernelSize: number;
  /** Stride. */
  readonly strides: number;
  /** Padding on each side. */
  readonly padding: number;
  /** Depthwise. */
  readonly depthwise: boolean;
  /** Bias. */
  readonly useBias: boolean;
  /** Activation after it. */
  readonly activation: "linear" | "relu";
  #kernel?: tf.LayerVariable;
  #bias?: tf.LayerVariable;

  /** See {@link TorchConv2DArgs}. */
  constructor(args: TorchConv2DArgs) {
    super(args);
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.strides = args.strides ?? 1;
    this.padding = args.padding ?? 0;
    this.depthwise = args.depthwise ?? false;
    this.useBias = args.useBias ?? true;
    this.activation = args.activation ?? "linear";
  }

  /** Creates `kernel` (and `bias`), zero until set. */
  override build(inputShape: Shape | Shape[]): void {
    const channels = singleShape(inputShape)[3];
    if (channels === null) throw new Error(`TorchConv2D "${this.name}": unknown input channels`);
    if (this.depthwise && this.filters !== channels) {
      throw new Error(
        `TorchConv2D "${this.name}": depthwise with ${this.filters} filters on ${channels} channels`,
      );
    }
    const k = this.kernelSize;
    const shape = this.depthwise ? [k, k, channels, 1] : [k, k, channels, this.filters];
    const zeros = tf.initializers.zeros();
    this.#kernel = this.addWeight("kernel", shape, "float32", zeros);
    if (this.useBias) this.#bias = this.addWeight("bias", [this.filters], "float32", zeros);
    this.built = true;
  }

  #out(size: number | null): number | null {
    return size === null
      ? null
      : Math.floor((size + 2 * this.padding - this.kernelSize) / this.strides) + 1;
  }

  /** `[n, h', w', filters]`. */
  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const [n, h, w] = singleShape(inputShape);
    return [n, this.#out(h), this.#out(w), this.filters];
  }

  /** The convolution (see the class documentation for where the padding happens). */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = single(inputs) as tf.Tensor4D;
      const p = this.padding;
      const inKernel = p > 0 && numericPaddingInKernels(this.depthwise ? "depthwise" : "conv");
      const conv = {
        x: p > 0 && !inKernel ? tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]) : x,
        filter: this.#kernel!.read() as tf.Tensor4D,
        strides: this.strides,
        pad: inKernel ? p : "valid" as const,
        bias: this.#bias?.read(),
        activation: this.activation,
      };
      return this.depthwise ? tf.fused.depthwiseConv2d(conv) : tf.fused.conv2d(conv);
    });
  }

  /** Serialisable configuration. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      depthwise: this.depthwise,
      useBias: this.useBias,
      activation: this.activation,
    };
  }
}
register(TorchConv2D);
