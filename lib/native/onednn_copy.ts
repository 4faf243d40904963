/**
 * Copies between row-major float32 arrays on oneDNN's reorder primitive (jit-compiled, on the
 * threads the caller set), through Deno's FFI: a box of one array into a box of another
 * (`Slice`, each input of `Concat`) and a transpose. Both are reorders between memory
 * descriptors: a sub-memory of a plain array for a box (`dnnl_memory_desc_init_submemory`),
 * permuted strides for a transpose (`dnnl_memory_desc_init_by_strides`). The wasm kernels
 * copy such boxes a value or a short row at a time.
 *
 * @module
 */
import {
  cached,
  check,
  dims,
  execArgs,
  MEMORY_DESC_BYTES,
  openOneDnn,
  pointerOut,
} from "./onednn_ffi.ts";

const F32 = 3;
const ARG_FROM = 1, ARG_TO = 17;
/** Plain row-major tags `a`, `ab`, … `abcdef` by rank (dnnl_types.h, oneDNN 2.6). */
const PLAIN_TAG = [0, 2, 3, 4, 5, 7, 8];
/** Largest rank handled. */
export const MAX_COPY_RANK = PLAIN_TAG.length - 1;

const SYMBOLS = {
  dnnl_memory_desc_init_submemory: {
    parameters: ["buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_memory_desc_init_by_strides: {
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
} as const;

/** oneDNN's reorder as copies; each call returns false for a case it refuses. */
export interface OneDnnCopy {
  /**
   * Copies the box of extent `size` at `from` in the row-major `srcShape` array `src` into
   * the box at `to` in the row-major `dstShape` array `dst` (same rank, at most
   * {@link MAX_COPY_RANK}).
   */
  box(
    srcShape: readonly number[],
    from: readonly number[],
    dstShape: readonly number[],
    to: readonly number[],
    size: readonly number[],
    src: Float32Array,
    dst: Float32Array,
  ): boolean;
  /** `dst` = `src` (row-major `shape`) with its axes permuted: output axis k is axis `perm[k]`. */
  transpose(
    shape: readonly number[],
    perm: readonly number[],
    src: Float32Array,
    dst: Float32Array,
  ): boolean;
}

interface Entry {
  primitive: Deno.PointerValue;
  from: Deno.PointerValue;
  to: Deno.PointerValue;
  args: Uint8Array;
}

/** Opens the reorder, or `undefined` where `libdnnl.so.2` (major version 2) is missing. */
export function openOneDnnCopy(): OneDnnCopy | undefined {
  const dnnl = openOneDnn(SYMBOLS);
  if (!dnnl) return undefined;
  const { lib, engine, cell, memoryDesc, memory, primitiveOf, setHandle, execute } = dnnl;
  const entries = new Map<string, Entry | null>();
  const keep: Uint8Array[] = [];

  function box(shape: readonly number[], offsets: readonly number[], size: readonly number[]) {
    const parent = memoryDesc(shape, PLAIN_TAG[shape.length]);
    if (shape.every((d, i) => d === size[i])) return parent;
    const md = new Uint8Array(MEMORY_DESC_BYTES);
    check(lib.dnnl_memory_desc_init_submemory(md, parent, dims(size), dims(offsets)), "submemory");
    keep.push(md);
    return md;
  }

  function reorder(from: Uint8Array, to: Uint8Array): Entry {
    check(lib.dnnl_reorder_primitive_desc_create(cell, from, engine, to, engine, null), "reorder");
    const primitive = primitiveOf(pointerOut(cell)); // before the cell is used again
    const entry = { from: memory(from), to: memory(to) };
    return { ...entry, primitive, args: execArgs([[ARG_FROM, entry.from], [ARG_TO, entry.to]]) };
  }

  function run(key: string, make: () => Entry, src: Float32Array, dst: Float32Array): boolean {
    const entry = cached(entries, key, make);
    if (!entry) return false;
    setHandle(entry.from, src);
    setHandle(entry.to, dst);
    execute(entry.primitive, entry.args);
    return true;
  }

  const valid = (...shapes: (readonly number[])[]) =>
    shapes[0].length >= 1 && shapes[0].length <= MAX_COPY_RANK &&
    shapes.every((s) => s.length === shapes[0].length);

  return {
    box(srcShape, from, dstShape, to, size, src, dst) {
      if (!valid(srcShape, from, dstShape, to, size)) return false;
      const key = `box ${srcShape} ${from} ${dstShape} ${to} ${size}`;
      return run(key, () => reorder(box(srcShape, from, size), box(dstShape, to, size)), src, dst);
    },
    transpose(shape, perm, src, dst) {
      if (!valid(shape, perm)) return false;
      const rank = shape.length;
      const key = `transpose ${shape} ${perm}`;
      const make = () => {
        // the output, described on the input's axes: axis perm[k] steps by output stride k
        const outShape = perm.map((p) => shape[p]);
        const strides = new Array<number>(rank);
        for (let k = rank - 1, s = 1; k >= 0; k--) {
          strides[perm[k]] = s;
          s *= outShape[k];
        }
        const to = new Uint8Array(MEMORY_DESC_BYTES);
        check(
          lib.dnnl_memory_desc_init_by_strides(to, rank, dims(shape), F32, dims(strides)),
          "strides",
        );
        keep.push(to);
        return reorder(memoryDesc(shape, PLAIN_TAG[rank]), to);
      };
      return run(key, make, src, dst);
    },
  };
}
