/**
 * Max pooling on oneDNN's pooling primitive (forward inference), through Deno's FFI, on
 * channels-last values: padding is never the maximum (as PyTorch's `nn.MaxPool2d`, whose
 * padding is −∞), so a padded pooling needs no padded copy of its input.
 *
 * @module
 */
import { cached, check, dims, execArgs, openOneDnn, PROP, TAG } from "./onednn_ffi.ts";

// dnnl_types.h, oneDNN 2.6
const POOLING_DESC_BYTES = 4096; // sizeof(dnnl_pooling_desc_t) is 3136
const POOLING_MAX = 0x1ff;
const ARG_SRC = 1, ARG_DST = 17;

const SYMBOLS = {
  dnnl_pooling_forward_desc_init: {
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
} as const;

/** A max pooling: shapes and geometry. */
export interface PoolSpec {
  /** Input `[n, h, w, c]`. */
  x: readonly number[];
  /** Output `[n, oh, ow, c]`. */
  out: readonly number[];
  /** Window `[kh, kw]`. */
  kernel: readonly [number, number];
  /** Strides `[sh, sw]`. */
  strides: readonly [number, number];
  /** Padding `[top, left, bottom, right]`. */
  pad: readonly [number, number, number, number];
}

/** oneDNN's max pooling; false for a case it refuses. */
export interface OneDnnPool {
  /** The max pooling of `x` into `out`. */
  maxPool(spec: PoolSpec, x: Float32Array, out: Float32Array): boolean;
}

/** Opens the primitive, or `undefined` where `libdnnl.so.2` (major version 2) is missing. */
export function openOneDnnPool(): OneDnnPool | undefined {
  const dnnl = openOneDnn(SYMBOLS);
  if (!dnnl) return undefined;
  const { lib, memoryDesc, memory, primitiveDesc, primitiveOf, setHandle, execute } = dnnl;
  const entries = new Map<
    string,
    {
      primitive: Deno.PointerValue;
      src: Deno.PointerValue;
      dst: Deno.PointerValue;
      args: Uint8Array;
    } | null
  >();

  function create(spec: PoolSpec) {
    const [n, h, w, c] = spec.x, [, oh, ow] = spec.out;
    const src = memoryDesc([n, c, h, w], TAG.nhwc), dst = memoryDesc([n, c, oh, ow], TAG.nhwc);
    const desc = new Uint8Array(POOLING_DESC_BYTES);
    check(
      lib.dnnl_pooling_forward_desc_init(
        desc,
        PROP.forwardInference,
        POOLING_MAX,
        src,
        dst,
        dims(spec.strides),
        dims(spec.kernel),
        dims([spec.pad[0], spec.pad[1]]),
        dims([spec.pad[2], spec.pad[3]]),
      ),
      "pooling_forward_desc_init",
    );
    const primitive = primitiveOf(primitiveDesc(desc, null, null));
    const memories = { src: memory(src), dst: memory(dst) };
    return {
      primitive,
      ...memories,
      args: execArgs([[ARG_SRC, memories.src], [ARG_DST, memories.dst]]),
    };
  }

  return {
    maxPool(spec, x, out) {
      const entry = cached(entries, JSON.stringify(spec), () => create(spec));
      if (!entry) return false;
      setHandle(entry.src, x);
      setHandle(entry.dst, out);
      execute(entry.primitive, entry.args);
      return true;
    },
  };
}
