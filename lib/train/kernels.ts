/**
 * Training kernels for the TensorFlow.js wasm backend.
 *
 * The wasm backend ships no `Conv2DBackpropFilter` (the filter gradient of a convolution),
 * so a conv layer cannot train on it at all, and its `Conv2DBackpropInput` is a plain
 * C++ loop, several times slower than its XNNPACK forward convolution. Both gradients are
 * themselves convolutions, so we express them through the backend's own fast kernels
 * (XNNPACK `Conv2D`, `Transpose`, `PadV2`, `Slice`):
 *
 * - filter gradient: `dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·s+kh−pt, ow·s+kw−pl, ci] ·
 *   dy[n,oh,ow,co]` is a convolution whose "batch" is the input channel `ci`, whose input
 *   channels are the examples `n`, whose filter is `dy` (`oh×ow` taps, dilated by the
 *   forward stride `s`) and whose output is the `kh×kw` filter window;
 * - input gradient (stride 1): `dx` is the convolution of `dy`, padded by `k−1−pad`, with
 *   the filter rotated by 180° and its channel axes swapped. Strides above 1 first spread
 *   `dy` with zeros (a cheap scatter), then do the same.
 *
 * {@link registerTrainingKernels} installs them; it is idempotent and does nothing for the
 * cpu backend, whose own kernels serve as the reference in the tests.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { registerNativeKernels } from "../native/kernels.ts";

type TensorInfo = tf.TensorInfo;
type Pad = "valid" | "same" | number | [[number, number], [number, number], [
  number,
  number,
], [number, number]];

/** The subset of the wasm backend we use (its class is not exported as a type we can import). */
interface WasmBackend {
  disposeData(dataId: object, force?: boolean): boolean;
  makeOutput(
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: Float32Array,
  ): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

type KernelCall = (
  args: { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: Record<string, unknown> },
) => TensorInfo | TensorInfo[];

function wasmKernel(name: string): KernelCall {
  const config = tf.getKernel(name, "wasm");
  if (!config) {
    throw new Error(
      `The wasm backend has no "${name}" kernel; the training kernels need it. ` +
        `Check that @tensorflow/tfjs-backend-wasm 4.22.0 is installed (deno install).`,
    );
  }
  return config.kernelFunc as unknown as KernelCall;
}

/** Runs a backend kernel directly (no engine bookkeeping) and returns its single output. */
function run(
  name: string,
  backend: WasmBackend,
  inputs: Record<string, TensorInfo>,
  attrs: Record<string, unknown> = {},
): TensorInfo {
  const out = wasmKernel(name)({ inputs, backend, attrs });
  return Array.isArray(out) ? out[0] : out;
}

/** Geometry of a forward convolution, from tfjs' own helper so padding rules agree. */
function convInfo(
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode: "floor" | "round" | "ceil" | undefined,
  dataFormat: string | undefined,
): tf.backend_util.Conv2DInfo {
  if (dataFormat !== undefined && dataFormat !== "NHWC" && dataFormat !== "channelsLast") {
    throw new Error(
      `Training kernels support channels-last (NHWC) convolutions only, got dataFormat ${dataFormat}.`,
    );
  }
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    strides,
    1,
    pad as "valid",
    dimRoundingMode,
    false,
    "channelsLast",
  );
}

/**
 * Filter gradient of a 2-D convolution as one XNNPACK convolution.
 * Inputs `x` `[n,h,w,ci]` and `dy` `[n,oh,ow,co]`; output `[kh,kw,ci,co]`.
 */
function conv2DBackpropFilterWasm(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: WasmBackend;
  attrs: {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: string;
    dimRoundingMode?: "floor" | "round" | "ceil";
    filterShape: [number, number, number, number];
  };
}): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const info = convInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    attrs.pad,
    attrs.dimRoundingMode,
    attrs.dataFormat,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci } = info;
  const { filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const top = info.padInfo.top, left = info.padInfo.left;
  // Rows of the (padded) input the forward pass touched: (oh-1)*sh + kh from row -top.
  const needH = (oh - 1) * sh + kh, needW = (ow - 1) * sw + kw;
  const bottom = needH - top - h, right = needW - left - w;
  const temps: TensorInfo[] = [];
  try {
    // x → [ci, h, w, n]: channels become the batch, examples become channels.
    let xt = run("Transpose", backend, { x }, { perm: [3, 1, 2, 0] });
    temps.push(xt);
    if (bottom < 0 || right < 0) {
      // The forward pass never reached the last rows/columns (valid padding, stride > 1).
      xt = run("Slice", backend, { x: xt }, {
        begin: [0, 0, 0, 0],
        size: [ci, h + Math.min(0, bottom), w + Math.min(0, right), n],
      });
      temps.push(xt);
    }
    // dy → [oh, ow, n, co]: a filter with oh×ow taps, n input and co output channels.
    const dyt = run("Transpose", backend, { x: dy }, { perm: [1, 2, 0, 3] });
    temps.push(dyt);
    const out = run("Conv2D", backend, { x: xt, filter: dyt }, {
      strides: [1, 1],
      pad: [[0, 0], [top, Math.max(0, bottom)], [left, Math.max(0, right)], [0, 0]],
      dataFormat: "NHWC",
      dilations: [sh, sw],
    }); // [ci, kh, kw, co]
    temps.push(out);
    if (out.shape[1] !== kh || out.shape[2] !== kw) {
      throw new Error(
        `Conv2DBackpropFilter: internal shape mismatch ${out.shape} for filter ${attrs.filterShape}`,
      );
    }
    temps.pop();
    const result = run("Transpose", backend, { x: out }, { perm: [1, 2, 0, 3] });
    backend.disposeData(out.dataId);
    return result;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * Input gradient of a 2-D convolution as one XNNPACK convolution (after spreading `dy` with
 * zeros when the stride is above 1). Inputs `dy` `[n,oh,ow,co]`, `filter` `[kh,kw,ci,co]`;
 * output `[n,h,w,ci]` with `h,w` from the attribute `inputShape`.
 */
function conv2DBackpropInputWasm(args: {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: WasmBackend;
  attrs: {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: string;
    dimRoundingMode?: "floor" | "round" | "ceil";
    inputShape: [number, number, number, number];
  };
}): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs } = args;
  const info = convInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.pad,
    attrs.dimRoundingMode,
    attrs.dataFormat,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci } = info;
  const { filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const co = info.outChannels;
  const top = info.padInfo.top, left = info.padInfo.left;
  const temps: TensorInfo[] = [];
  try {
    let src = dy;
    // Spread dy on the stride grid: row r of dy lands on row r*sh.
    const dh = (oh - 1) * sh + 1, dw = (ow - 1) * sw + 1;
    if (sh > 1 || sw > 1) {
      const spread = backend.makeOutput([n, dh, dw, co], "float32");
      temps.push(spread);
      const to = backend.typedArrayFromHeap(spread);
      to.fill(0);
      const from = backend.typedArrayFromHeap(dy);
      for (let b = 0; b < n; b++) {
        for (let r = 0; r < oh; r++) {
          for (let c = 0; c < ow; c++) {
            const s = ((b * oh + r) * ow + c) * co;
            const d = ((b * dh + r * sh) * dw + c * sw) * co;
            to.set(from.subarray(s, s + co), d);
          }
        }
      }
      src = spread;
    }
    // Filter rotated 180° with channel axes swapped: [kh,kw,ci,co] → [kh,kw,co,ci] reversed.
    const ft = run("Transpose", backend, { x: filter }, { perm: [0, 1, 3, 2] });
    temps.push(ft);
    const fr = run("Reverse", backend, { x: ft }, { dims: [0, 1] });
    temps.push(fr);
    // dx[y] = Σ_k dyspread[y + top − k]·W[k]: pad by k−1−top before, enough after for h rows.
    const padTop = kh - 1 - top, padLeft = kw - 1 - left;
    const padBottom = h + kh - 1 - padTop - dh, padRight = w + kw - 1 - padLeft - dw;
    let input = src;
    let cropTop = 0, cropLeft = 0;
    const pt = Math.max(0, padTop), pl = Math.max(0, padLeft);
    const pb = Math.max(0, padBottom), pr = Math.max(0, padRight);
    if (padTop < 0 || padLeft < 0 || padBottom < 0 || padRight < 0) {
      // Padding larger than the filter: drop the rows of dy that map outside x.
      cropTop = Math.max(0, -padTop);
      cropLeft = Math.max(0, -padLeft);
      const sizeH = dh - cropTop - Math.max(0, -padBottom);
      const sizeW = dw - cropLeft - Math.max(0, -padRight);
      input = run("Slice", backend, { x: src }, {
        begin: [0, cropTop, cropLeft, 0],
        size: [n, sizeH, sizeW, co],
      });
      temps.push(input);
    }
    const out = run("Conv2D", backend, { x: input, filter: fr }, {
      strides: [1, 1],
      pad: [[0, 0], [pt, pb], [pl, pr], [0, 0]],
      dataFormat: "NHWC",
      dilations: [1, 1],
    });
    if (out.shape[1] !== h || out.shape[2] !== w || out.shape[3] !== ci) {
      backend.disposeData(out.dataId);
      throw new Error(
        `Conv2DBackpropInput: internal shape mismatch ${out.shape} for input ${attrs.inputShape}`,
      );
    }
    return out;
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}

/**
 * Matrix products with a transposed operand. The wasm backend runs `A·B` (no transposes,
 * no batch) through XNNPACK and everything else through a plain loop, 10–30× slower; the
 * gradients of every dense layer are `Aᵀ·dY` and `dY·Bᵀ`. We transpose an operand
 * explicitly and call the fast path, choosing between `op(A)·op(B)` and `(op(B)ᵀ·op(A)ᵀ)ᵀ`
 * by the number of values each must transpose or pack.
 */
function makeBatchMatMulWasm(original: KernelCall) {
  return function batchMatMulWasm(args: {
    inputs: { a: TensorInfo; b: TensorInfo };
    backend: WasmBackend;
    attrs: { transposeA: boolean; transposeB: boolean };
  }): TensorInfo {
    const { inputs: { a, b }, backend, attrs: { transposeA: tA, transposeB: tB } } = args;
    const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    if ((!tA && !tB) || batchA !== 1 || batchB !== 1 || a.dtype !== "float32") {
      return original(args as never) as TensorInfo;
    }
    const ra = a.shape[a.shape.length - 2], ca = a.shape[a.shape.length - 1];
    const rb = b.shape[b.shape.length - 2], cb = b.shape[b.shape.length - 1];
    const m = tA ? ca : ra, n = tB ? rb : cb;
    const sizeA = ra * ca, sizeB = rb * cb, sizeC = m * n;
    // Values moved: transposes, plus packing of the right-hand operand by XNNPACK.
    const direct = (tA ? sizeA : 0) + (tB ? sizeB : 0) + sizeB;
    const swapped = (tB ? 0 : sizeB) + (tA ? 0 : sizeA) + sizeA + sizeC;
    const temps: TensorInfo[] = [];
    const matrix = (x: TensorInfo, rows: number, cols: number) => {
      const r = run("Reshape", backend, { x }, { shape: [rows, cols] });
      temps.push(r);
      return r;
    };
    const transposed = (x: TensorInfo) => {
      const t = run("Transpose", backend, { x }, { perm: [1, 0] });
      temps.push(t);
      return t;
    };
    try {
      const a2 = matrix(a, ra, ca), b2 = matrix(b, rb, cb);
      let out2: TensorInfo;
      if (direct <= swapped) {
        const left = tA ? transposed(a2) : a2;
        const right = tB ? transposed(b2) : b2;
        out2 = original({
          inputs: { a: left, b: right },
          backend,
          attrs: { transposeA: false, transposeB: false },
        }) as TensorInfo;
      } else {
        // Cᵀ = op(B)ᵀ·op(A)ᵀ, where op(B)ᵀ is B itself when tB, else Bᵀ.
        const left = tB ? b2 : transposed(b2);
        const right = tA ? a2 : transposed(a2);
        const outT = original({
          inputs: { a: left, b: right },
          backend,
          attrs: { transposeA: false, transposeB: false },
        }) as TensorInfo;
        temps.push(outT);
        out2 = run("Transpose", backend, { x: matrix(outT, n, m) }, { perm: [1, 0] });
      }
      const outShape = [
        ...(a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2),
        m,
        n,
      ];
      const result = run("Reshape", backend, { x: out2 }, { shape: outShape });
      backend.disposeData(out2.dataId);
      return result;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

let registered = false;

/**
 * Registers our `Conv2DBackpropFilter`, `Conv2DBackpropInput` and `BatchMatMul` kernels for
 * the wasm backend (replacing the slow built-in input gradient and wrapping the built-in
 * matrix product). Safe to call more than once, before or after the backend is
 * initialised; call it before the first training step. Other backends are untouched. Where
 * a native library loads, the native kernels of `lib/native/kernels.ts` are installed over
 * these, which remain their fallback.
 */
export function registerTrainingKernels(): void {
  if (registered) return;
  registered = true;
  try {
    registerWasmTrainingKernels();
  } finally {
    // The native kernels (where a native library loads) go over these, which stay as the
    // fallback for the cases the native ones leave to wasm.
    registerNativeKernels();
  }
}

function registerWasmTrainingKernels(): void {
  replaceKernel("Conv2DBackpropFilter", conv2DBackpropFilterWasm as unknown as tf.KernelFunc);
  replaceKernel("Conv2DBackpropInput", conv2DBackpropInputWasm as unknown as tf.KernelFunc);
  const matMul = tf.getKernel("BatchMatMul", "wasm");
  if (!matMul) throw new Error(`The wasm backend has no BatchMatMul kernel to wrap.`);
  replaceKernel(
    "BatchMatMul",
    makeBatchMatMulWasm(matMul.kernelFunc as unknown as KernelCall) as unknown as tf.KernelFunc,
    matMul.setupFunc,
  );
}

function replaceKernel(name: string, kernelFunc: tf.KernelFunc, setupFunc?: tf.KernelSetupFunc) {
  if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc, setupFunc });
}
