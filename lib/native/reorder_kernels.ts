/**
 * `Slice`, `Concat` and `Transpose` of float32 tensors on oneDNN's reorder primitive
 * (`onednn_copy.ts`): ShuffleNetV2's channel split, concatenation and shuffle, and the
 * encoders' head transposes, are boxes and permutations the wasm kernels copy a value or a
 * short row at a time. Small tensors (under {@link MIN_REORDER_VALUES} values, where a call's
 * fixed cost would dominate), other dtypes, ranks above 6 and refused cases call the wasm
 * kernel.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type KernelArgs, type KernelCall, size, type TensorInfo } from "./kernel_api.ts";
import type { OneDnnCopy } from "./onednn_copy.ts";
import { profile, timed } from "./profile.ts";

/** Smallest output, in values, copied by oneDNN rather than the wasm kernel. */
export const MIN_REORDER_VALUES = 8192;

/** Runs one copy of `values` values, timed; false where refused. */
function timedCopy(values: number, run: () => boolean): boolean {
  return timed(values, run, (ms) => {
    profile.reorderMs += ms;
    profile.reorderCalls++;
  });
}

/** `Slice`: the box `[begin, begin + size)` of `x`. */
export function slice(copy: OneDnnCopy, args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  if (x.dtype !== "float32") return fallback(args) as TensorInfo;
  const [begin, extent] = tf.slice_util.parseSliceParams(
    x as unknown as tf.Tensor,
    attrs.begin as number[],
    attrs.size as number[],
  );
  const n = size(extent);
  if (n < MIN_REORDER_VALUES) return fallback(args) as TensorInfo;
  const out = backend.makeOutput(extent, "float32");
  const xv = backend.typedArrayFromHeap(x), ov = backend.typedArrayFromHeap(out);
  const zeros = extent.map(() => 0);
  if (timedCopy(n, () => copy.box(x.shape, begin, extent, zeros, extent, xv, ov))) return out;
  backend.disposeData(out.dataId);
  return fallback(args) as TensorInfo;
}

/** `Concat` along `axis`: each input copied into its box of the output. */
export function concat(copy: OneDnnCopy, args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { backend, attrs } = args;
  const all = Object.values(args.inputs) as TensorInfo[];
  const parts = all.filter((t) => size(t.shape) > 0);
  if (parts.length < 2 || parts.some((t) => t.dtype !== "float32")) {
    return fallback(args) as TensorInfo;
  }
  const axis = tf.util.parseAxisParam(attrs.axis as number, parts[0].shape)[0];
  const outShape = tf.backend_util.computeOutShape(all.map((t) => t.shape), axis);
  const n = size(outShape);
  if (n < MIN_REORDER_VALUES) return fallback(args) as TensorInfo;
  const out = backend.makeOutput(outShape, "float32");
  const ov = backend.typedArrayFromHeap(out);
  let offset = 0;
  for (const t of parts) {
    const to = outShape.map((_, i) => (i === axis ? offset : 0));
    const from = t.shape.map(() => 0);
    const tv = backend.typedArrayFromHeap(t);
    if (!timedCopy(size(t.shape), () => copy.box(t.shape, from, outShape, to, t.shape, tv, ov))) {
      backend.disposeData(out.dataId);
      return fallback(args) as TensorInfo;
    }
    offset += t.shape[axis];
  }
  return out;
}

/** `Transpose` by `perm`. */
export function transpose(copy: OneDnnCopy, args: KernelArgs, fallback: KernelCall): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x!;
  const perm = attrs.perm as number[];
  const n = size(x.shape);
  if (x.dtype !== "float32" || n < MIN_REORDER_VALUES) return fallback(args) as TensorInfo;
  const out = backend.makeOutput(perm.map((p) => x.shape[p]), "float32");
  const xv = backend.typedArrayFromHeap(x), ov = backend.typedArrayFromHeap(out);
  if (timedCopy(n, () => copy.transpose(x.shape, perm, xv, ov))) return out;
  backend.disposeData(out.dataId);
  return fallback(args) as TensorInfo;
}
