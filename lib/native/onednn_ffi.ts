/**
 * What every oneDNN primitive module here shares: opening Debian's `libdnnl.so.2` through
 * Deno's FFI with the primitive's own symbols, the CPU engine and stream, memory descriptors
 * and objects, primitive creation and execution. Written for oneDNN 2.x's C API; the sizes
 * and enum values are those of `oneapi/dnnl/dnnl_types.h` of version 2.6 (Debian bookworm's
 * `libdnnl-dev`). {@link openOneDnn} returns `undefined` where the library is missing or of
 * another major version, and the caller keeps its other path.
 *
 * @module
 */

// dnnl_types.h, oneDNN 2.6
/** `sizeof(dnnl_memory_desc_t)`. */
export const MEMORY_DESC_BYTES = 696;
/** `dnnl_format_tag_t` values used here. */
export const TAG = { any: 1, a: 2, nhwc: 20, hwio: 30, hwigo: 33 } as const;
/** `dnnl_prop_kind_t` values used here. */
export const PROP = {
  forwardTraining: 64,
  forwardInference: 96,
  backward: 128,
} as const;
const F32 = 3;
const ENGINE_CPU = 1, STREAM_DEFAULT = 1;

const BASE_SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_memory_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
} as const;

/** Throws when a oneDNN call did not return `dnnl_success`. */
export function check(status: number, what: string): void {
  if (status !== 0) throw new Error(`oneDNN ${what} failed with status ${status}`);
}

/** The pointer an out-parameter cell received. */
export function pointerOut(cell: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(cell[0]);
}

/** A `dnnl_dims_t` (12 int64) holding `values`. */
export function dims(values: readonly number[]): BigInt64Array {
  const d = new BigInt64Array(12);
  values.forEach((v, i) => (d[i] = BigInt(v)));
  return d;
}

/** The `dnnl_exec_arg_t` array of `(argument, memory)` pairs. */
export function execArgs(pairs: [number, Deno.PointerValue][]): Uint8Array {
  const bytes = new Uint8Array(16 * pairs.length);
  const view = new DataView(bytes.buffer);
  pairs.forEach(([arg, memory], i) => {
    view.setInt32(16 * i, arg, true);
    view.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(memory)), true);
  });
  return bytes;
}

let primitivesEnabled = true;

/**
 * Whether oneDNN's primitives may run (default) in this thread. Off, convolutions and their
 * gradients use im2col + GEMM, BatchNorm plain loops and the copies and pooling the wasm
 * kernels: to compare both, or where a primitive misbehaves.
 */
export function setPrimitivesEnabled(on: boolean): void {
  primitivesEnabled = on;
}

/**
 * `open`, called on first use in this thread and remembered (also when it returns
 * `undefined`: the library is missing); `undefined` while the primitives are switched off.
 */
export function openedOnce<T>(open: () => T | undefined): () => T | undefined {
  let opened: { value?: T } | undefined;
  return () => {
    if (!primitivesEnabled) return undefined;
    opened ??= { value: open() };
    return opened.value;
  };
}

/**
 * The primitive cached under `key`, made once by `make`; `null` (also cached) where oneDNN
 * refuses the case, and the caller computes it another way. `TEXT_AS_IMAGE_NATIVE_DEBUG=1`
 * prints why.
 */
export function cached<T>(cache: Map<string, T | null>, key: string, make: () => T): T | null {
  let entry = cache.get(key);
  if (entry === undefined) {
    try {
      entry = make();
    } catch (error) {
      if (Deno.env.get("TEXT_AS_IMAGE_NATIVE_DEBUG")) console.error(key, error);
      entry = null;
    }
    cache.set(key, entry);
  }
  return entry;
}

/** The library opened with a module's symbols, and the helpers every primitive needs. */
export interface OneDnn<S extends Deno.ForeignLibraryInterface> {
  /** The symbols: the shared ones and the module's. */
  lib: Deno.DynamicLibrary<S & typeof BASE_SYMBOLS>["symbols"];
  /** `oneDNN <major>.<minor>.<patch>`. */
  version: string;
  /** The CPU engine. */
  engine: Deno.PointerValue;
  /** The out-parameter cell of create calls. */
  cell: BigUint64Array;
  /** A float32 memory descriptor of `shape` (logical dims) in layout `tag`, kept alive. */
  memoryDesc(shape: readonly number[], tag: number): Uint8Array;
  /** A memory object of a descriptor, its data handle set before each execution. */
  memory(md: Uint8Array | Deno.PointerValue): Deno.PointerValue;
  /** A primitive descriptor of an operation descriptor. */
  primitiveDesc(
    desc: Uint8Array,
    attr: Deno.PointerValue,
    hint: Deno.PointerValue,
  ): Deno.PointerValue;
  /** The primitive of a primitive descriptor. */
  primitiveOf(pd: Deno.PointerValue): Deno.PointerValue;
  /** Points a memory object at `data` (a view on the wasm heap or a typed array). */
  setHandle(memory: Deno.PointerValue, data: Float32Array | Uint8Array): void;
  /** Executes a primitive on the stream and waits for it. */
  execute(primitive: Deno.PointerValue, args: Uint8Array): void;
}

/**
 * Opens `libdnnl.so.2` with the shared symbols and `symbols`, creating its CPU engine and
 * stream, or returns `undefined` where it is missing or not of major version 2.
 */
export function openOneDnn<S extends Deno.ForeignLibraryInterface>(
  symbols: S,
): OneDnn<S> | undefined {
  let lib: OneDnn<S>["lib"];
  try {
    lib = Deno.dlopen("libdnnl.so.2", { ...BASE_SYMBOLS, ...symbols }).symbols as OneDnn<
      S
    >["lib"];
  } catch {
    return undefined;
  }
  const base = lib as unknown as Deno.DynamicLibrary<typeof BASE_SYMBOLS>["symbols"];
  const v = new Deno.UnsafePointerView(base.dnnl_version()!);
  const version = [v.getInt32(0), v.getInt32(4), v.getInt32(8)];
  if (version[0] !== 2) return undefined;
  const c = new BigUint64Array(1);
  check(base.dnnl_engine_create(c, ENGINE_CPU, 0n), "engine_create");
  const engine = pointerOut(c);
  check(base.dnnl_stream_create(c, engine, STREAM_DEFAULT), "stream_create");
  const stream = pointerOut(c);
  const keep: unknown[] = [];
  return {
    lib,
    version: `oneDNN ${version.join(".")}`,
    engine,
    cell: c,
    memoryDesc(shape, tag) {
      const md = new Uint8Array(MEMORY_DESC_BYTES);
      check(base.dnnl_memory_desc_init_by_tag(md, shape.length, dims(shape), F32, tag), "md");
      keep.push(md); // memory objects and primitives made from it may point into it
      return md;
    },
    memory(md) {
      const mdPointer = md instanceof Uint8Array ? Deno.UnsafePointer.of(md) : md;
      // DNNL_MEMORY_NONE (null): the handle is set before every execution
      check(base.dnnl_memory_create(c, mdPointer, engine, null), "memory_create");
      return pointerOut(c);
    },
    primitiveDesc(desc, attr, hint) {
      check(base.dnnl_primitive_desc_create(c, desc, attr, engine, hint), "primitive_desc_create");
      return pointerOut(c);
    },
    primitiveOf(pd) {
      check(base.dnnl_primitive_create(c, pd), "primitive_create");
      return pointerOut(c);
    },
    setHandle(memory, data) {
      // views on the wasm heap are typed as ArrayBufferLike; the pointer is taken at once
      const pointer = Deno.UnsafePointer.of(data as Uint8Array<ArrayBuffer>);
      check(base.dnnl_memory_set_data_handle(memory, pointer), "set handle");
    },
    execute(primitive, args) {
      check(base.dnnl_primitive_execute(primitive, stream, args.length / 16, args), "execute");
      check(base.dnnl_stream_wait(stream), "stream_wait");
    },
  };
}
