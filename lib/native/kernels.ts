/**
 * Native kernels for TensorFlow.js's wasm backend, computed on the tensors' own memory in the
 * wasm heap, everything else left to the wasm kernels. The frozen backbones, the trainable
 * network, its gradients and the text encoders' graphs all run through these few kernels, so
 * they all get faster at once.
 *
 * - `Conv2D`, `FusedConv2D` (channels-last), `Conv2DBackpropFilter`, `Conv2DBackpropInput`:
 *   oneDNN's convolution primitives (`onednn_conv.ts`, bias and activation fused) where the
 *   GEMM is oneDNN's; otherwise, and where a primitive refuses the case, im2col in chunks of
 *   at most {@link IM2COL_CHUNK_FLOATS} values ({@link setIm2colChunkFloats}) and
 *   `cols[M×K] · W[K×Co]` on {@link nativeGemm}, the filter `[kh, kw, ci, co]` being that
 *   matrix already (a 1×1 stride-1 unpadded convolution is the product itself). The filter
 *   gradient is `dW = Σ_chunks colsᵀ · dy`; the input gradient, for stride 1, the forward
 *   convolution of `dy` with the rotated filter, else `dcols = dy · Wᵀ` scattered back.
 * - `BatchMatMul`, `_FusedMatMul`: one GEMM per batch entry (transposes passed to the GEMM,
 *   never materialised), a left operand broadcast over a shared right-hand matrix computed as
 *   one tall product; the fused bias written first, the activation applied in place.
 * - `Sum`, `Mean` over leading axes: one-row products `1ᵀ·X`.
 * - `DepthwiseConv2dNative`, `FusedDepthwiseConv2D`: oneDNN's grouped primitive, one group per
 *   channel; and a forward convolution whose filter is zero outside G diagonal blocks (the
 *   toolkit's form of PyTorch's `groups=G`, see `groups.ts`) runs as the grouped primitive on
 *   the blocks, with 1/G of the multiply-adds.
 * - `Identity`, same-dtype `Cast` (sharing memory), `PadV2`, and `Minimum`/`Maximum` with a
 *   single value (`copy_kernels.ts`); `Slice`, `Concat` and `Transpose` on oneDNN's reorder
 *   (`reorder_kernels.ts`); `MaxPool` on its pooling primitive (`onednn_pool.ts`).
 *
 * Beside them, two kernels of their own for the trainable network's BatchNorm
 * (`batchnorm.ts`).
 *
 * Anything else (other data formats, PReLU, broadcasting both operands, int tensors) calls the
 * kernel that was registered before, so results never depend on whether a case is covered.
 * {@link registerNativeKernels} installs them once the native library loads and is
 * idempotent; `registerTrainingKernels` in `lib/train/kernels.ts` calls it again after
 * installing its own wasm gradients, which then serve as the fallback.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type NativeGemm, nativeGemm } from "./gemm.ts";
import { type ConvSpec, type OneDnnConv, openOneDnnConv } from "./onednn_conv.ts";
import { type OneDnnCopy, openOneDnnCopy } from "./onednn_copy.ts";
import { openOneDnnPool } from "./onednn_pool.ts";
import { openedOnce } from "./onednn_ffi.ts";
import { cast, identity, minMaxScalar, padV2 } from "./copy_kernels.ts";
import { concat, slice, transpose } from "./reorder_kernels.ts";
import { registerBatchNormKernels } from "./batchnorm.ts";
import { blockDiagonalGroups, groupFilter } from "./groups.ts";
import { profile, timed } from "./profile.ts";
import { type KernelArgs, type KernelCall, size, type TensorInfo } from "./kernel_api.ts";
export { nativeProfile, resetNativeProfile } from "./profile.ts";
export type { NativeProfile } from "./profile.ts";
export { setPrimitivesEnabled } from "./onednn_ffi.ts";

/** Default largest im2col block, in float32 values (64 MB). */
export const IM2COL_CHUNK_FLOATS = 1 << 24;
let chunkFloats = IM2COL_CHUNK_FLOATS;

/**
 * Sets the largest im2col block (float32 values) of this thread's convolutions; bigger ones
 * are computed in chunks of output rows. Lower it to cap memory (the block is scratch memory
 * kept between calls), `undefined` restores {@link IM2COL_CHUNK_FLOATS}.
 */
export function setIm2colChunkFloats(floats: number | undefined): void {
  if (floats !== undefined && !(Number.isInteger(floats) && floats >= 1)) {
    throw new Error(`setIm2colChunkFloats: a positive integer or undefined, got ${floats}`);
  }
  chunkFloats = floats ?? IM2COL_CHUNK_FLOATS;
}

/** `gemm.sgemm`, timed and counted in the profile. */
function sgemm(gemm: NativeGemm, ...args: Parameters<NativeGemm["sgemm"]>): void {
  const t = performance.now();
  gemm.sgemm(...args);
  profile.gemmMs += performance.now() - t;
  profile.gemmFlops += 2 * args[2] * args[3] * args[4];
  profile.gemmCalls++;
}

let scratch: Float32Array | undefined;
function scratchOf(n: number): Float32Array {
  if (!scratch || scratch.length < n) scratch = new Float32Array(n);
  return scratch.subarray(0, n);
}

/**
 * Writes a fused bias (per output column, or one value) into every row of `out`, by doubling
 * copies, and returns the GEMM `beta` that adds the product to it (1; 0 without a bias).
 */
function prefillBias(out: Float32Array, columns: number, bias: Float32Array | undefined): number {
  if (!bias) return 0;
  const t = performance.now();
  if (bias.length === 1) out.fill(bias[0]);
  else if (out.length > 0) {
    out.set(bias, 0);
    for (let filled = columns; filled < out.length; filled *= 2) {
      out.copyWithin(filled, 0, Math.min(filled, out.length - filled));
    }
  }
  profile.epilogueMs += performance.now() - t;
  return 1;
}

/** Applies a fused activation in place. */
function activate(out: Float32Array, activation: string, alpha: number): void {
  if (activation === "linear") return;
  const t = performance.now();
  applyActivation(out, activation, alpha);
  profile.epilogueMs += performance.now() - t;
}

function applyActivation(out: Float32Array, activation: string, alpha: number): void {
  const n = out.length;
  switch (activation) {
    case "relu":
      for (let i = 0; i < n; i++) if (out[i] < 0) out[i] = 0;
      return;
    case "relu6":
      for (let i = 0; i < n; i++) out[i] = Math.min(6, Math.max(0, out[i]));
      return;
    case "leakyrelu":
      for (let i = 0; i < n; i++) if (out[i] < 0) out[i] *= alpha;
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-out[i]));
      return;
    case "elu":
      for (let i = 0; i < n; i++) if (out[i] < 0) out[i] = Math.expm1(out[i]);
      return;
  }
}

const SUPPORTED_ACTIVATIONS = new Set(["linear", "relu", "relu6", "leakyrelu", "sigmoid", "elu"]);

/** Whether a fused op's extras are ones we compute: no PReLU, a bias per column or scalar. */
function fusedSupported(
  activation: unknown,
  bias: TensorInfo | undefined,
  prelu: TensorInfo | undefined,
  columns: number,
): boolean {
  if (prelu !== undefined) return false;
  if (!SUPPORTED_ACTIVATIONS.has((activation as string | undefined) ?? "linear")) return false;
  if (bias === undefined) return true;
  const n = size(bias.shape);
  return bias.dtype === "float32" && (n === 1 || (n === columns && bias.shape.at(-1) === n));
}

function matMul(gemm: NativeGemm, args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { inputs, backend, attrs } = args;
  const a = inputs.a!, b = inputs.b!;
  const tA = Boolean(attrs.transposeA), tB = Boolean(attrs.transposeB);
  const ra = a.shape.at(-2)!, ca = a.shape.at(-1)!, rb = b.shape.at(-2)!, cb = b.shape.at(-1)!;
  const m = tA ? ca : ra, k = tA ? ra : ca, n = tB ? rb : cb;
  const batchA = size(a.shape.slice(0, -2)), batchB = size(b.shape.slice(0, -2));
  const sameBatch = a.shape.length === b.shape.length &&
    a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
  const activation = (attrs.activation as string | undefined) ?? "linear";
  if (
    a.dtype !== "float32" || b.dtype !== "float32" || k !== (tB ? cb : rb) ||
    !(sameBatch || batchA === 1 || batchB === 1) ||
    !fusedSupported(activation, inputs.bias, inputs.preluActivationWeights, n)
  ) {
    return fallback(args) as TensorInfo;
  }
  const batch = Math.max(batchA, batchB);
  const outShape = [...(batchA >= batchB ? a.shape : b.shape).slice(0, -2), m, n];
  const out = backend.makeOutput(outShape, "float32");
  // Views after every allocation: the heap may have moved.
  const av = backend.typedArrayFromHeap(a), bv = backend.typedArrayFromHeap(b);
  const ov = backend.typedArrayFromHeap(out);
  const bias = inputs.bias ? backend.typedArrayFromHeap(inputs.bias) : undefined;
  const beta = prefillBias(ov, n, bias);
  if (batchB === 1 && !tA && batch > 1) {
    // [batch·m, k] · [k, n] in one product
    sgemm(gemm, false, tB, batch * m, n, k, av, ca, bv, cb, beta, ov, n);
  } else {
    for (let i = 0; i < batch; i++) {
      const ai = av.subarray((batchA === 1 ? 0 : i) * ra * ca);
      const bi = bv.subarray((batchB === 1 ? 0 : i) * rb * cb);
      sgemm(gemm, tA, tB, m, n, k, ai, ca, bi, cb, beta, ov.subarray(i * m * n), n);
    }
  }
  activate(ov, activation, Number(attrs.leakyreluAlpha ?? 0.2));
  return out;
}

/** Geometry of a channels-last convolution, or `undefined` for cases we leave to wasm. */
function geometry(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
  depthwise = false,
): tf.backend_util.Conv2DInfo | undefined {
  const format = (attrs.dataFormat as string | undefined) ?? "NHWC";
  if (format !== "NHWC" && format !== "channelsLast") return undefined;
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations as number | [number, number] | undefined) ?? 1,
    attrs.pad as "valid",
    attrs.dimRoundingMode as "floor" | undefined,
    depthwise,
    "channelsLast",
  );
}

/** A 1×1, stride-1, unpadded convolution: the input is already the im2col matrix. */
function pointwise(info: tf.backend_util.Conv2DInfo): boolean {
  const p = info.padInfo;
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 &&
    info.strideWidth === 1 && p.top === 0 && p.left === 0 && p.bottom === 0 && p.right === 0;
}

/** Rows of the im2col matrix per chunk. */
function chunkRows(info: tf.backend_util.Conv2DInfo): number {
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  return Math.max(1, Math.floor(chunkFloats / k));
}

/**
 * Copies (`add` false) the receptive fields of output positions `[start, start+rows)` of
 * `x` into `cols` (one row of `kh·kw·ci` per position, zeros for padding), or adds `cols`
 * back into `x` (`add` true: col2im, the input gradient).
 */
function im2col(
  x: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  start: number,
  rows: number,
  cols: Float32Array,
  add = false,
): void {
  const t = performance.now();
  copyFields(x, info, start, rows, cols, add);
  if (add) profile.col2imMs += performance.now() - t;
  else profile.im2colMs += performance.now() - t;
}

function copyFields(
  x: Float32Array,
  info: tf.backend_util.Conv2DInfo,
  start: number,
  rows: number,
  cols: Float32Array,
  add: boolean,
): void {
  const H = info.inHeight, W = info.inWidth, C = info.inChannels;
  const OH = info.outHeight, OW = info.outWidth, KH = info.filterHeight, KW = info.filterWidth;
  const sh = info.strideHeight, sw = info.strideWidth;
  const dh = info.dilationHeight, dw = info.dilationWidth;
  const pt = info.padInfo.top, pl = info.padInfo.left;
  const K = KH * KW * C, span = KW * C;
  for (let r = 0; r < rows; r++) {
    const p = start + r, b = Math.floor(p / (OH * OW)), rem = p - b * OH * OW;
    const oh = Math.floor(rem / OW), ow = rem - oh * OW;
    const ih0 = oh * sh - pt, iw0 = ow * sw - pl;
    let dst = r * K;
    for (let kh = 0; kh < KH; kh++, dst += span) {
      const ih = ih0 + kh * dh;
      if (ih < 0 || ih >= H) {
        if (!add) cols.fill(0, dst, dst + span);
        continue;
      }
      const rowBase = (b * H + ih) * W;
      if (dw === 1 && iw0 >= 0 && iw0 + KW <= W) {
        const src = (rowBase + iw0) * C;
        if (add) {
          for (let i = 0; i < span; i++) x[src + i] += cols[dst + i];
        } else cols.set(x.subarray(src, src + span), dst);
        continue;
      }
      for (let kw = 0; kw < KW; kw++) {
        const iw = iw0 + kw * dw, d = dst + kw * C;
        if (iw < 0 || iw >= W) {
          if (!add) cols.fill(0, d, d + C);
          continue;
        }
        const src = (rowBase + iw) * C;
        if (add) {
          for (let i = 0; i < C; i++) x[src + i] += cols[d + i];
        } else cols.set(x.subarray(src, src + C), d);
      }
    }
  }
}

/** The primitive's description of a TF.js convolution (no fused extras). */
function convSpec(info: tf.backend_util.Conv2DInfo): ConvSpec {
  const p = info.padInfo;
  return {
    x: [info.batchSize, info.inHeight, info.inWidth, info.inChannels],
    filter: [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels],
    out: [info.batchSize, info.outHeight, info.outWidth, info.outChannels],
    strides: [info.strideHeight, info.strideWidth],
    dilations: [info.dilationHeight, info.dilationWidth],
    pad: [p.top, p.left, p.bottom, p.right],
    groups: 1,
    bias: false,
    activation: "linear",
    alpha: 0,
  };
}

/**
 * Runs a convolution of `multiplyAdds` on oneDNN's primitive, on the threads a product of
 * that size gets, timing it; false where the primitive is not used (another library,
 * switched off) or refused the case.
 */
function onPrimitive(
  gemm: NativeGemm,
  multiplyAdds: number,
  run: (primitive: OneDnnConv) => boolean,
): boolean {
  const primitive = gemm.library === "onednn" ? oneDnnConv() : undefined;
  return primitive !== undefined && timed(multiplyAdds, () => run(primitive), (ms) => {
    profile.convMs += ms;
    profile.convFlops += 2 * multiplyAdds;
  });
}

function conv2D(gemm: NativeGemm, args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!, filter = inputs.filter!;
  const info = x.dtype === "float32" ? geometry(x.shape, filter.shape, attrs) : undefined;
  const activation = (attrs.activation as string | undefined) ?? "linear";
  if (
    !info ||
    !fusedSupported(activation, inputs.bias, inputs.preluActivationWeights, info.outChannels)
  ) {
    return fallback(args) as TensorInfo;
  }
  const M = info.batchSize * info.outHeight * info.outWidth, CO = info.outChannels;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const out = backend.makeOutput([info.batchSize, info.outHeight, info.outWidth, CO], "float32");
  const xv = backend.typedArrayFromHeap(x), wv = backend.typedArrayFromHeap(filter);
  const ov = backend.typedArrayFromHeap(out);
  const bias = inputs.bias ? backend.typedArrayFromHeap(inputs.bias) : undefined;
  const spec = {
    ...convSpec(info),
    bias: bias !== undefined,
    activation,
    alpha: Number(attrs.leakyreluAlpha ?? 0.2),
  };
  const grouped = primitiveInUse(gemm) ? groupsOf(filter.dataId, wv, info) : undefined;
  if (grouped) {
    const g = { ...spec, groups: grouped.groups };
    const run = (p: OneDnnConv) => p.forward(g, xv, grouped.filter, filter.dataId, bias, ov);
    if (onPrimitive(gemm, (M * K * CO) / grouped.groups, run)) return out;
  } else if (
    onPrimitive(gemm, M * K * CO, (p) => p.forward(spec, xv, wv, filter.dataId, bias, ov))
  ) {
    return out;
  }
  const beta = prefillBias(ov, CO, bias);
  if (pointwise(info)) {
    sgemm(gemm, false, false, M, CO, K, xv, K, wv, CO, beta, ov, CO);
  } else {
    const step = chunkRows(info);
    for (let r0 = 0; r0 < M; r0 += step) {
      const rows = Math.min(step, M - r0), cols = scratchOf(rows * K);
      im2col(xv, info, r0, rows, cols);
      sgemm(gemm, false, false, rows, CO, K, cols, K, wv, CO, beta, ov.subarray(r0 * CO), CO);
    }
  }
  activate(ov, activation, spec.alpha);
  return out;
}

/** A filter's diagonal blocks, where it has G > 1 of them (see `groups.ts`). */
interface GroupedFilter {
  groups: number;
  filter: Float32Array;
}

/** Per filter tensor: its blocks, or null when it is dense. */
const groupedFilters = new WeakMap<object, GroupedFilter | null>();

/**
 * The grouped form of a forward convolution's filter (checked once per filter tensor, so a
 * frozen backbone's filters once), or undefined for a dense one.
 */
function groupsOf(
  dataId: object,
  filter: Float32Array,
  info: tf.backend_util.Conv2DInfo,
): GroupedFilter | undefined {
  let cached = groupedFilters.get(dataId);
  if (cached === undefined) {
    const taps = info.filterHeight * info.filterWidth;
    const ci = info.inChannels, co = info.outChannels;
    const groups = blockDiagonalGroups(filter, taps, ci, co);
    cached = groups > 1 ? { groups, filter: groupFilter(filter, taps, ci, co, groups) } : null;
    groupedFilters.set(dataId, cached);
  }
  return cached ?? undefined;
}

/**
 * `DepthwiseConv2dNative` and `FusedDepthwiseConv2D` (channels-last) on oneDNN's grouped
 * primitive, one group per input channel; TF.js's filter `[kh, kw, c, m]` is the primitive's
 * grouped layout already. Without the primitive, or where it refuses, the wasm kernel.
 */
function depthwiseConv2D(gemm: NativeGemm, args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!, filter = inputs.filter!;
  const activation = (attrs.activation as string | undefined) ?? "linear";
  const info = x.dtype === "float32" && filter.dtype === "float32" && primitiveInUse(gemm)
    ? geometry(x.shape, filter.shape, attrs, true)
    : undefined;
  if (
    !info ||
    !fusedSupported(activation, inputs.bias, inputs.preluActivationWeights, info.outChannels)
  ) {
    return fallback(args) as TensorInfo;
  }
  const CO = info.outChannels;
  const out = backend.makeOutput([info.batchSize, info.outHeight, info.outWidth, CO], "float32");
  const xv = backend.typedArrayFromHeap(x), wv = backend.typedArrayFromHeap(filter);
  const ov = backend.typedArrayFromHeap(out);
  const bias = inputs.bias ? backend.typedArrayFromHeap(inputs.bias) : undefined;
  const spec: ConvSpec = {
    ...convSpec(info),
    groups: info.inChannels,
    bias: bias !== undefined,
    activation,
    alpha: Number(attrs.leakyreluAlpha ?? 0.2),
  };
  const multiplyAdds = info.batchSize * info.outHeight * info.outWidth * CO *
    info.filterHeight * info.filterWidth;
  const run = (p: OneDnnConv) => p.forward(spec, xv, wv, filter.dataId, bias, ov);
  if (onPrimitive(gemm, multiplyAdds, run)) return out;
  backend.disposeData(out.dataId);
  return padThenFallback(args, fallback, 0);
}

/**
 * The wasm kernel of a float32 case the primitive refused; a numeric padding is made values
 * first (`constant`: 0 for convolutions, −∞ for max pooling), since the wasm kernels
 * mishandle it.
 */
function padThenFallback(args: KernelArgs, fallback: KernelCall, constant: number): TensorInfo {
  const { inputs, backend, attrs } = args;
  if (typeof attrs.pad !== "number" || attrs.pad === 0) return fallback(args) as TensorInfo;
  const p = attrs.pad;
  const padded = padV2({
    inputs: { x: inputs.x },
    backend,
    attrs: { paddings: [[0, 0], [p, p], [p, p], [0, 0]], constantValue: constant },
  }, fallback);
  try {
    return fallback({
      ...args,
      inputs: { ...inputs, x: padded },
      attrs: { ...attrs, pad: 0 },
    }) as TensorInfo;
  } finally {
    backend.disposeData(padded.dataId);
  }
}

const oneDnnPool = openedOnce(openOneDnnPool);

/** `MaxPool` (channels-last) on oneDNN's pooling primitive, else the wasm kernel. */
function maxPool(gemm: NativeGemm, args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  if (x.dtype !== "float32") return fallback(args) as TensorInfo;
  const pool = primitiveInUse(gemm) ? oneDnnPool() : undefined;
  if (!pool) return padThenFallback(args, fallback, -Infinity);
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize as number | [number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "valid",
    attrs.dimRoundingMode as "floor" | undefined,
  );
  const p = info.padInfo;
  const shape = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  const out = backend.makeOutput(shape, "float32");
  const spec = {
    x: x.shape,
    out: shape,
    kernel: [info.filterHeight, info.filterWidth] as const,
    strides: [info.strideHeight, info.strideWidth] as const,
    pad: [p.top, p.left, p.bottom, p.right] as const,
  };
  const xv = backend.typedArrayFromHeap(x), ov = backend.typedArrayFromHeap(out);
  const work = size(shape) * info.filterHeight * info.filterWidth;
  if (timed(work, () => pool.maxPool(spec, xv, ov), (ms) => (profile.poolMs += ms))) return out;
  backend.disposeData(out.dataId);
  return padThenFallback(args, fallback, -Infinity);
}

function conv2DBackpropFilter(
  gemm: NativeGemm,
  args: KernelArgs,
  fallback: KernelCall | undefined,
): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!, dy = inputs.dy!;
  const filterShape = attrs.filterShape as number[];
  const info = x.dtype === "float32" ? geometry(x.shape, filterShape, attrs) : undefined;
  if (!info) return unsupported("Conv2DBackpropFilter", args, fallback);
  const M = info.batchSize * info.outHeight * info.outWidth, CO = info.outChannels;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const out = backend.makeOutput(filterShape, "float32");
  const xv = backend.typedArrayFromHeap(x), dyv = backend.typedArrayFromHeap(dy);
  const ov = backend.typedArrayFromHeap(out);
  const spec = convSpec(info);
  if (onPrimitive(gemm, M * K * CO, (p) => p.backwardWeights(spec, xv, dyv, ov))) {
    return out;
  }
  if (pointwise(info)) {
    sgemm(gemm, true, false, K, CO, M, xv, K, dyv, CO, 0, ov, CO);
    return out;
  }
  const step = chunkRows(info);
  ov.fill(0);
  for (let r0 = 0; r0 < M; r0 += step) {
    const rows = Math.min(step, M - r0), cols = scratchOf(rows * K);
    im2col(xv, info, r0, rows, cols);
    sgemm(gemm, true, false, K, CO, rows, cols, K, dyv.subarray(r0 * CO), CO, 1, ov, CO);
  }
  return out;
}

/**
 * The input gradient of a stride-1, undilated convolution as a forward convolution of `dy`:
 * `dx[ih, iw] = Σ dy[ih − p′ + kh′, iw − q′ + kw′] · W′[kh′, kw′]` with the filter rotated by
 * 180° and its channel axes swapped (`W′[kh′, kw′, co, ci] = W[KH−1−kh′, KW−1−kw′, ci, co]`)
 * and padding `p′ = KH−1−top`, `q′ = KW−1−left`. Copying receptive fields of `dy` costs less
 * than adding every column back into `dx` (col2im).
 */
function backpropInputAsConv(
  gemm: NativeGemm,
  info: tf.backend_util.Conv2DInfo,
  dyv: Float32Array,
  wv: Float32Array,
  ov: Float32Array,
): void {
  const KH = info.filterHeight, KW = info.filterWidth, CI = info.inChannels;
  const CO = info.outChannels;
  const rotated = new Float32Array(KH * KW * CO * CI);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const src = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * CI * CO, dst = (kh * KW + kw) * CO * CI;
      for (let ci = 0; ci < CI; ci++) {
        for (let co = 0; co < CO; co++) rotated[dst + co * CI + ci] = wv[src + ci * CO + co];
      }
    }
  }
  const transposed = {
    ...info,
    inHeight: info.outHeight,
    inWidth: info.outWidth,
    inChannels: CO,
    outHeight: info.inHeight,
    outWidth: info.inWidth,
    outChannels: CI,
    padInfo: { ...info.padInfo, top: KH - 1 - info.padInfo.top, left: KW - 1 - info.padInfo.left },
  } as tf.backend_util.Conv2DInfo;
  const M = info.batchSize * info.inHeight * info.inWidth, K = KH * KW * CO;
  const step = chunkRows(transposed);
  for (let r0 = 0; r0 < M; r0 += step) {
    const rows = Math.min(step, M - r0), cols = scratchOf(rows * K);
    im2col(dyv, transposed, r0, rows, cols);
    sgemm(gemm, false, false, rows, CI, K, cols, K, rotated, CI, 0, ov.subarray(r0 * CI), CI);
  }
}

function conv2DBackpropInput(
  gemm: NativeGemm,
  args: KernelArgs,
  fallback: KernelCall | undefined,
): TensorInfo {
  const { inputs, backend, attrs } = args;
  const dy = inputs.dy!, filter = inputs.filter!;
  const inputShape = attrs.inputShape as number[];
  const info = dy.dtype === "float32" ? geometry(inputShape, filter.shape, attrs) : undefined;
  if (!info) return unsupported("Conv2DBackpropInput", args, fallback);
  const M = info.batchSize * info.outHeight * info.outWidth, CO = info.outChannels;
  const K = info.filterHeight * info.filterWidth * info.inChannels;
  const out = backend.makeOutput(inputShape, "float32");
  const dyv = backend.typedArrayFromHeap(dy), wv = backend.typedArrayFromHeap(filter);
  const ov = backend.typedArrayFromHeap(out);
  const spec = convSpec(info);
  if (onPrimitive(gemm, M * K * CO, (p) => p.backwardData(spec, dyv, wv, ov))) {
    return out;
  }
  if (pointwise(info)) {
    sgemm(gemm, false, true, M, K, CO, dyv, CO, wv, CO, 0, ov, K);
    return out;
  }
  if (
    info.strideHeight === 1 && info.strideWidth === 1 && info.dilationHeight === 1 &&
    info.dilationWidth === 1
  ) {
    backpropInputAsConv(gemm, info, dyv, wv, ov);
    return out;
  }
  ov.fill(0);
  const step = chunkRows(info);
  for (let r0 = 0; r0 < M; r0 += step) {
    const rows = Math.min(step, M - r0), cols = scratchOf(rows * K);
    sgemm(gemm, false, true, rows, K, CO, dyv.subarray(r0 * CO), CO, wv, CO, 0, cols, K);
    im2col(ov, info, r0, rows, cols, true);
  }
  return out;
}

function unsupported(name: string, args: KernelArgs, fallback: KernelCall | undefined) {
  if (!fallback) {
    throw new Error(
      `${name}: the native kernel covers channels-last float32 convolutions only, and the ` +
        `wasm backend has no kernel for this case. Call registerTrainingKernels() ` +
        `(lib/train/mod.ts) first, or convert the input to channels-last float32.`,
    );
  }
  return fallback(args) as TensorInfo;
}

/** oneDNN's convolution primitive (opened once per thread), or undefined where it cannot. */
const oneDnnConv = openedOnce(openOneDnnConv);

/** The ops {@link numericPaddingInKernels} answers for. */
export type PaddedOp = "conv" | "depthwise" | "maxPool";

/**
 * Whether this thread's kernels for `op` take a numeric (symmetric, PyTorch-style) padding
 * themselves, so a layer can pass `pad: p` instead of padding its input first: the native
 * kernels are on (the primitive pads in place; im2col reads zeros), and for depthwise
 * convolutions and max pooling oneDNN's primitive is there (a case it refuses is padded
 * before the wasm kernel). TF.js wasm's own kernels mishandle numeric padding, so where this
 * is false, pad the input.
 */
export function numericPaddingInKernels(op: PaddedOp = "conv"): boolean {
  if (tf.getBackend() !== "wasm") return tf.getBackend() === "cpu";
  const gemm = nativeGemm();
  const name = { conv: "FusedConv2D", depthwise: "FusedDepthwiseConv2D", maxPool: "MaxPool" }[op];
  const kernel = tf.getKernel(name, "wasm");
  if (!gemm || !kernel || !installed.has(kernel.kernelFunc)) return false;
  return op === "conv" || primitiveInUse(gemm);
}

/** Whether convolutions with this GEMM run on oneDNN's primitive (it may still refuse one). */
function primitiveInUse(gemm: NativeGemm): boolean {
  return gemm.library === "onednn" && oneDnnConv() !== undefined;
}

let ones: Float32Array | undefined;

/**
 * `Sum` and `Mean` over leading axes (`[0, …, r−1]` of the input, any order): the reduction
 * of a `[outer, inner]` matrix over its rows, `1ᵀ·X` as a one-row product. TF.js's wasm
 * kernels transpose the reduced axes to the end first; BatchNorm's statistics and every bias
 * gradient are reductions of this kind. Other axes call the wasm kernel.
 */
function reduceLeading(mean: boolean) {
  return (gemm: NativeGemm, args: KernelArgs, fallback: KernelCall): TensorInfo => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x!;
    const rank = x.shape.length;
    const axis = attrs.axis as number | number[] | null | undefined;
    const axes = axis == null
      ? x.shape.map((_, i) => i) // TF.js: no axis reduces over all
      : [axis].flat().map((a) => (a < 0 ? a + rank : a));
    const r = axes.length;
    const leading = r > 0 && new Set(axes).size === r && axes.every((a) => a >= 0 && a < r);
    if (x.dtype !== "float32" || !leading || rank === 0) return fallback(args) as TensorInfo;
    const outer = size(x.shape.slice(0, r)), inner = size(x.shape.slice(r));
    const shape = attrs.keepDims ? x.shape.map((d, i) => (i < r ? 1 : d)) : x.shape.slice(r);
    const out = backend.makeOutput(shape, "float32");
    const xv = backend.typedArrayFromHeap(x), ov = backend.typedArrayFromHeap(out);
    if (outer === 0) {
      ov.fill(mean ? NaN : 0);
      return out;
    }
    if (!ones || ones.length < outer) ones = new Float32Array(outer);
    const weights = ones.subarray(0, outer).fill(mean ? 1 / outer : 1);
    sgemm(gemm, false, false, 1, inner, outer, weights, outer, xv, inner, 0, ov, inner);
    return out;
  };
}

const oneDnnCopy = openedOnce(openOneDnnCopy);

/** A kernel on oneDNN's reorder where the primitives are in use, else the wasm kernel. */
function onReorder(
  kernel: (copy: OneDnnCopy, args: KernelArgs, fallback: KernelCall) => TensorInfo,
): NativeKernel {
  return (gemm, args, fallback) => {
    const copy = primitiveInUse(gemm) ? oneDnnCopy() : undefined;
    return copy ? kernel(copy, args, fallback) : fallback(args) as TensorInfo;
  };
}

type NativeKernel = (
  gemm: NativeGemm,
  args: KernelArgs,
  fallback: KernelCall,
) => TensorInfo;

const KERNELS: Record<string, NativeKernel> = {
  BatchMatMul: matMul,
  _FusedMatMul: matMul,
  Conv2D: conv2D,
  FusedConv2D: conv2D,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  DepthwiseConv2dNative: depthwiseConv2D,
  FusedDepthwiseConv2D: depthwiseConv2D,
  Sum: reduceLeading(false),
  Mean: reduceLeading(true),
  Identity: (_gemm, args, fallback) => identity(args, fallback),
  Cast: (_gemm, args, fallback) => cast(args, fallback),
  PadV2: (_gemm, args, fallback) => padV2(args, fallback),
  Minimum: (_gemm, args, fallback) => minMaxScalar(false, args, fallback),
  Maximum: (_gemm, args, fallback) => minMaxScalar(true, args, fallback),
  MaxPool: maxPool,
  Slice: onReorder(slice),
  Concat: onReorder(concat),
  Transpose: onReorder(transpose),
};

/** The kernel functions we installed, to recognise them when asked to install again. */
const installed = new Set<tf.KernelFunc>();

/**
 * Installs the native kernels on the wasm backend, each wrapping the kernel registered
 * before it (its fallback). Returns whether a native library is in use (`false`: nothing
 * installed, see `nativeStatus()` for why). Safe to call again: kernels already ours are
 * kept, kernels replaced since are wrapped anew.
 */
export function registerNativeKernels(): boolean {
  if (!nativeGemm()) return false;
  for (const [name, kernel] of Object.entries(KERNELS)) {
    const previous = tf.getKernel(name, "wasm");
    if (previous && installed.has(previous.kernelFunc)) continue;
    const fallback = previous?.kernelFunc as unknown as KernelCall | undefined;
    const kernelFunc = ((args: KernelArgs) => {
      const gemm = nativeGemm(); // undefined while switched off (setNativeEnabled)
      if (gemm) return kernel(gemm, args, fallback as KernelCall);
      return fallback ? fallback(args) : unsupported(name, args, undefined);
    }) as unknown as tf.KernelFunc;
    if (previous) tf.unregisterKernel(name, "wasm");
    tf.registerKernel({
      kernelName: name,
      backendName: "wasm",
      kernelFunc,
      setupFunc: previous?.setupFunc,
    });
    installed.add(kernelFunc);
  }
  registerBatchNormKernels();
  return true;
}
