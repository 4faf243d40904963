/**
 * Kernels that only move values, written in TypeScript on the wasm heap:
 *
 * - `Identity` shares its input's memory instead of copying it (TF.js tensors are immutable;
 *   the wasm backend's own `Reshape` shares memory the same way, by reference count).
 *   `tf.layers.add` clones its first input, and gradients pass tensors through `Identity`,
 *   so in a residual network or a training step this saves a full copy per call. So does a
 *   `Cast` to the same dtype (Keras layers cast their inputs to float32).
 * - `PadV2` copies the input in contiguous runs (every axis inside the innermost padded one
 *   in one run) into an output filled with the constant, where the wasm kernel visits
 *   values one by one: the zero padding before each of a backbone's convolutions.
 *
 * - `Minimum` and `Maximum` of a float32 tensor and a single value (either side): one loop,
 *   where the wasm kernels take their general broadcasting path, a value at a time.
 *   TF.js-layers' `relu6` activation is `minimum(6, relu(x))`: in MobileNet most of the
 *   frozen forward went there.
 *
 * Other dtypes and cases call the wasm kernel (`fallback`).
 *
 * @module
 */
import { type KernelArgs, type KernelCall, size, type TensorInfo } from "./kernel_api.ts";

/** `Identity` without a copy (see the module documentation). */
export function identity(args: KernelArgs, fallback: KernelCall): TensorInfo {
  const x = args.inputs.x!;
  if (x.dtype === "string") return fallback(args) as TensorInfo;
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** `Cast` to the tensor's own dtype shares its memory too; other casts call the wasm kernel. */
export function cast(args: KernelArgs, fallback: KernelCall): TensorInfo {
  const x = args.inputs.x!;
  return args.attrs.dtype === x.dtype ? identity(args, fallback) : fallback(args) as TensorInfo;
}

/** `PadV2` (constant padding) of a float32 tensor, in contiguous runs. */
export function padV2(args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  const paddings = attrs.paddings as [number, number][];
  const rank = x.shape.length;
  if (
    x.dtype !== "float32" || size(x.shape) === 0 || paddings.length !== rank ||
    paddings.some(([before, after]) => !(before >= 0 && after >= 0))
  ) {
    return fallback(args) as TensorInfo;
  }
  const outShape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
  // axes k… are unpadded: a run is axis k−1 with everything inside it
  let k = rank;
  while (k > 0 && paddings[k - 1][0] === 0 && paddings[k - 1][1] === 0) k--;
  const out = backend.makeOutput(outShape, "float32");
  const xv = backend.typedArrayFromHeap(x), ov = backend.typedArrayFromHeap(out);
  if (k === 0) {
    ov.set(xv);
    return out;
  }
  ov.fill(Number(attrs.constantValue ?? 0));
  const inner = size(x.shape.slice(k));
  const run = x.shape[k - 1] * inner;
  const outStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    outStrides[i] = s;
    s *= outShape[i];
  }
  const outer = x.shape.slice(0, k - 1);
  let base = paddings[k - 1][0] * inner;
  for (let i = 0; i < k - 1; i++) base += paddings[i][0] * outStrides[i];
  const index = new Array<number>(k - 1).fill(0);
  const runs = size(outer);
  for (let r = 0, src = 0; r < runs; r++, src += run) {
    let dst = base;
    for (let i = 0; i < k - 1; i++) dst += index[i] * outStrides[i];
    ov.set(xv.subarray(src, src + run), dst);
    for (let i = k - 2; i >= 0; i--) {
      if (++index[i] < outer[i]) break;
      index[i] = 0;
    }
  }
  return out;
}

/** `Minimum` (`max` false) or `Maximum` of a float32 tensor and a one-value tensor. */
export function minMaxScalar(max: boolean, args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { inputs, backend } = args;
  const a = inputs.a!, b = inputs.b!;
  const scalarA = size(a.shape) === 1, scalarB = size(b.shape) === 1;
  const tensor = scalarA && !scalarB ? b : a, scalar = tensor === a ? b : a;
  if (
    a.dtype !== "float32" || b.dtype !== "float32" || size(scalar.shape) !== 1 ||
    scalar.shape.length > tensor.shape.length
  ) {
    return fallback(args) as TensorInfo;
  }
  const out = backend.makeOutput([...tensor.shape], "float32");
  const xv = backend.typedArrayFromHeap(tensor), ov = backend.typedArrayFromHeap(out);
  const v = backend.typedArrayFromHeap(scalar)[0];
  const n = xv.length;
  // Math.min / Math.max: branch-free, and NaN propagates as in TF.js
  if (max) { for (let i = 0; i < n; i++) ov[i] = Math.max(xv[i], v); }
  else for (let i = 0; i < n; i++) ov[i] = Math.min(xv[i], v);
  return out;
}
