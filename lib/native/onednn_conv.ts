/**
 * Forward convolutions on oneDNN's own convolution primitive (Debian `libdnnl2`, the kernels
 * PyTorch's CPU convolutions run on), through Deno's FFI: channels-last input and output on
 * the tensors' memory, the filter reordered once into the layout the primitive asks for
 * (kept per filter tensor, so a frozen backbone's weights are reordered once), the bias and
 * the activation fused into the primitive (a post-op).
 *
 * Built for oneDNN 2.x's C API (`dnnl_dilated_convolution_forward_desc_init`); the sizes of
 * its descriptor structs and the enum values below are those of `oneapi/dnnl/dnnl_types.h`
 * of version 2.6 (Debian bookworm's `libdnnl-dev`). {@link openOneDnnConv} checks the
 * library's version and returns `undefined` for any other major version, and callers then
 * use the im2col + GEMM kernels.
 *
 * @module
 */

/** A convolution for {@link OneDnnConv.forward}: shapes, geometry and fused extras. */
export interface ConvSpec {
  /** Input `[n, h, w, ci]` (channels-last). */
  x: readonly number[];
  /** Filter `[kh, kw, ci, co]`. */
  filter: readonly number[];
  /** Output `[n, oh, ow, co]`. */
  out: readonly number[];
  /** Strides `[sh, sw]`. */
  strides: readonly [number, number];
  /** Dilations `[dh, dw]` (1: none). */
  dilations: readonly [number, number];
  /** Padding `[top, left, bottom, right]`. */
  pad: readonly [number, number, number, number];
  /** Whether a bias `[co]` is added. */
  bias: boolean;
  /** Fused activation: linear, relu, leakyrelu, relu6, elu or sigmoid. */
  activation: string;
  /** Slope of leakyrelu. */
  alpha: number;
}

/** oneDNN's convolution, opened. */
export interface OneDnnConv {
  /** `oneDNN <major>.<minor>.<patch>`. */
  readonly version: string;
  /**
   * Computes the convolution into `out`. `filterKey` identifies the filter's values (the
   * reordered copy is reused while the same key object is passed; pass a new object when
   * the values change). Returns false (computing nothing) for a case oneDNN refuses.
   */
  forward(
    spec: ConvSpec,
    x: Float32Array,
    filter: Float32Array,
    filterKey: object,
    bias: Float32Array | undefined,
    out: Float32Array,
    threads: number,
  ): boolean;
}

// dnnl_types.h, oneDNN 2.6
const MEMORY_DESC_BYTES = 696;
const CONV_DESC_BYTES = 5976;
const F32 = 3;
const TAG_ANY = 1, TAG_A = 2, TAG_NHWC = 20, TAG_HWIO = 30;
const FORWARD_INFERENCE = 96, CONVOLUTION_DIRECT = 1, ENGINE_CPU = 1, STREAM_DEFAULT = 1;
const QUERY_WEIGHTS_MD = 131;
const ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33, ARG_BIAS = 41, ARG_FROM = 1, ARG_TO = 17;
const ELTWISE: Record<string, number> = {
  relu: 0x1f,
  leakyrelu: 0x1f,
  elu: 0x3f,
  sigmoid: 0xaf,
  relu6: 0xff, // clip [alpha, beta]
};

const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_equal: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["pointer"], result: "usize" },
  dnnl_dilated_convolution_forward_desc_init: {
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
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_attr_set_post_ops: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_memory_create: { parameters: ["buffer", "pointer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
} as const;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A created primitive with its memory objects (handles set per call). */
interface Entry {
  conv: Deno.PointerValue;
  src: Deno.PointerValue;
  weights: Deno.PointerValue;
  bias: Deno.PointerValue;
  dst: Deno.PointerValue;
  /** Reorder of the filter from [kh, kw, ci, co] into the primitive's layout, if needed. */
  reorder?: { primitive: Deno.PointerValue; from: Deno.PointerValue; bytes: number };
  args: Uint8Array;
}

function check(status: number, what: string): void {
  if (status !== 0) throw new Error(`oneDNN ${what} failed with status ${status}`);
}

/** Reads the pointer an out-parameter received. */
function pointerOut(cell: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(cell[0]);
}

function dims(values: readonly number[]): BigInt64Array {
  const d = new BigInt64Array(12);
  values.forEach((v, i) => (d[i] = BigInt(v)));
  return d;
}

function execArgs(pairs: [number, Deno.PointerValue][]): Uint8Array {
  const bytes = new Uint8Array(16 * pairs.length);
  const view = new DataView(bytes.buffer);
  pairs.forEach(([arg, memory], i) => {
    view.setInt32(16 * i, arg, true);
    view.setBigUint64(16 * i + 8, BigInt(Deno.UnsafePointer.value(memory)), true);
  });
  return bytes;
}

/**
 * Opens oneDNN's convolution, or returns `undefined` where `libdnnl.so.2` is missing or not
 * of major version 2 (whose C API this module is written for).
 */
export function openOneDnnConv(): OneDnnConv | undefined {
  let lib: Lib;
  try {
    lib = Deno.dlopen("libdnnl.so.2", SYMBOLS).symbols;
  } catch {
    return undefined;
  }
  const v = new Deno.UnsafePointerView(lib.dnnl_version()!);
  const version = [v.getInt32(0), v.getInt32(4), v.getInt32(8)];
  if (version[0] !== 2) return undefined;
  const cell = new BigUint64Array(1);
  check(lib.dnnl_engine_create(cell, ENGINE_CPU, 0n), "engine_create");
  const engine = pointerOut(cell);
  check(lib.dnnl_stream_create(cell, engine, STREAM_DEFAULT), "stream_create");
  const stream = pointerOut(cell);
  const omp = Deno.dlopen("libgomp.so.1", {
    omp_set_num_threads: { parameters: ["i32"], result: "void" },
  }).symbols;

  const memoryDesc = (shape: readonly number[], tag: number) => {
    const md = new Uint8Array(MEMORY_DESC_BYTES);
    check(lib.dnnl_memory_desc_init_by_tag(md, shape.length, dims(shape), F32, tag), "md");
    return md;
  };
  const memory = (md: Uint8Array | Deno.PointerValue) => {
    const c = new BigUint64Array(1);
    const mdPointer = md instanceof Uint8Array ? Deno.UnsafePointer.of(md) : md;
    // DNNL_MEMORY_NONE (null): the handle is set before every execution
    check(lib.dnnl_memory_create(c, mdPointer, engine, null), "memory_create");
    return pointerOut(c);
  };
  const keep: unknown[] = []; // descriptors the memory objects point into stay alive
  const entries = new Map<string, Entry | null>(); // null: refused by oneDNN
  const reordered = new WeakMap<object, { key: string; data: Uint8Array }>();

  function create(spec: ConvSpec): Entry {
    const [n, h, w, ci] = spec.x, [kh, kw, , co] = spec.filter, [, oh, ow] = spec.out;
    const src = memoryDesc([n, ci, h, w], TAG_NHWC);
    const dst = memoryDesc([n, co, oh, ow], TAG_NHWC);
    const plainWeights = memoryDesc([co, ci, kh, kw], TAG_HWIO);
    const anyWeights = memoryDesc([co, ci, kh, kw], TAG_ANY);
    const bias = spec.bias ? memoryDesc([co], TAG_A) : null;
    const desc = new Uint8Array(CONV_DESC_BYTES);
    check(
      lib.dnnl_dilated_convolution_forward_desc_init(
        desc,
        FORWARD_INFERENCE,
        CONVOLUTION_DIRECT,
        src,
        anyWeights,
        bias,
        dst,
        dims(spec.strides),
        dims(spec.dilations.map((d) => d - 1)),
        dims([spec.pad[0], spec.pad[1]]),
        dims([spec.pad[2], spec.pad[3]]),
      ),
      "convolution_forward_desc_init",
    );
    const c = new BigUint64Array(1);
    check(lib.dnnl_primitive_attr_create(c), "primitive_attr_create");
    const attr = pointerOut(c);
    if (spec.activation !== "linear") {
      check(lib.dnnl_post_ops_create(c), "post_ops_create");
      const postOps = pointerOut(c);
      const [alpha, beta] = spec.activation === "leakyrelu"
        ? [spec.alpha, 0]
        : spec.activation === "relu6"
        ? [0, 6]
        : spec.activation === "elu"
        ? [1, 0]
        : [0, 0];
      check(
        lib.dnnl_post_ops_append_eltwise(postOps, 1, ELTWISE[spec.activation], alpha, beta),
        "post_ops_append_eltwise",
      );
      check(lib.dnnl_primitive_attr_set_post_ops(attr, postOps), "attr_set_post_ops");
    }
    check(lib.dnnl_primitive_desc_create(c, desc, attr, engine, null), "primitive_desc_create");
    const pd = pointerOut(c);
    check(lib.dnnl_primitive_create(c, pd), "primitive_create");
    const conv = pointerOut(c);
    const chosen = lib.dnnl_primitive_desc_query_md(pd, QUERY_WEIGHTS_MD, 0);
    keep.push(src, dst, plainWeights, bias, desc);
    const entry: Entry = {
      conv,
      src: memory(src),
      weights: memory(chosen),
      bias: bias ? memory(bias) : null,
      dst: memory(dst),
      args: new Uint8Array(),
    };
    if (!lib.dnnl_memory_desc_equal(plainWeights, chosen)) {
      check(
        lib.dnnl_reorder_primitive_desc_create(
          c,
          plainWeights,
          engine,
          chosen,
          engine,
          null,
        ),
        "reorder_primitive_desc_create",
      );
      const reorderPd = pointerOut(c);
      check(lib.dnnl_primitive_create(c, reorderPd), "reorder primitive_create");
      entry.reorder = {
        primitive: pointerOut(c),
        from: memory(plainWeights),
        bytes: Number(lib.dnnl_memory_desc_get_size(chosen)),
      };
    }
    const pairs: [number, Deno.PointerValue][] = [
      [ARG_SRC, entry.src],
      [ARG_WEIGHTS, entry.weights],
      [ARG_DST, entry.dst],
    ];
    if (entry.bias) pairs.push([ARG_BIAS, entry.bias]);
    entry.args = execArgs(pairs);
    return entry;
  }

  return {
    version: `oneDNN ${version.join(".")}`,
    forward(spec, x, filter, filterKey, bias, out, threads) {
      const key = JSON.stringify(spec);
      let entry = entries.get(key);
      if (entry === undefined) {
        try {
          entry = create(spec);
        } catch (error) {
          if (Deno.env.get("TEXT_AS_IMAGE_NATIVE_DEBUG")) console.error(key, error);
          entry = null;
        }
        entries.set(key, entry);
      }
      if (entry === null) return false;
      omp.omp_set_num_threads(threads);
      let weights: Float32Array | Uint8Array = filter;
      if (entry.reorder) {
        let cached = reordered.get(filterKey);
        if (!cached || cached.key !== key) {
          const data = new Uint8Array(entry.reorder.bytes);
          const r = entry.reorder;
          check(lib.dnnl_memory_set_data_handle(r.from, Deno.UnsafePointer.of(filter)), "handle");
          check(lib.dnnl_memory_set_data_handle(entry.weights, Deno.UnsafePointer.of(data)), "h");
          const args = execArgs([[ARG_FROM, r.from], [ARG_TO, entry.weights]]);
          check(lib.dnnl_primitive_execute(r.primitive, stream, 2, args), "reorder execute");
          check(lib.dnnl_stream_wait(stream), "stream_wait");
          cached = { key, data };
          reordered.set(filterKey, cached);
        }
        weights = cached.data;
      }
      check(lib.dnnl_memory_set_data_handle(entry.src, Deno.UnsafePointer.of(x)), "handle");
      check(lib.dnnl_memory_set_data_handle(entry.weights, Deno.UnsafePointer.of(weights)), "h");
      check(lib.dnnl_memory_set_data_handle(entry.dst, Deno.UnsafePointer.of(out)), "handle");
      if (entry.bias && bias) {
        check(lib.dnnl_memory_set_data_handle(entry.bias, Deno.UnsafePointer.of(bias)), "h");
      }
      const nargs = entry.args.length / 16;
      check(lib.dnnl_primitive_execute(entry.conv, stream, nargs, entry.args), "execute");
      check(lib.dnnl_stream_wait(stream), "stream_wait");
      return true;
    },
  };
}
