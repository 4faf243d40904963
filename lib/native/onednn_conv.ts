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
import {
  cached,
  check,
  dims,
  execArgs,
  MEMORY_DESC_BYTES,
  openOneDnn,
  pointerOut,
  PROP,
  TAG,
} from "./onednn_ffi.ts";

/** A convolution for {@link OneDnnConv.forward}: shapes, geometry and fused extras. */
export interface ConvSpec {
  /** Input `[n, h, w, ci]` (channels-last). */
  x: readonly number[];
  /**
   * Filter `[kh, kw, ci, co]` (ci: all input channels). With {@link groups} G > 1 its values
   * are laid out `[kh, kw, ci/G, G, co/G]` (oneDNN's `hwigo`): output channel `g·co/G + o`
   * sees input channels `g·ci/G …` only. TF.js's depthwise filter `[kh, kw, c, m]` is that
   * layout already (G = c, one input channel per group, `m` outputs each).
   */
  filter: readonly number[];
  /** Groups (1: an ordinary convolution; PyTorch's `groups`). */
  groups: number;
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

/**
 * oneDNN's convolution, opened. Each call returns false (computing nothing) for a case oneDNN
 * refuses, and the caller computes it another way. Calls run on the OpenMP threads the caller
 * set (`useNativeThreads` in `gemm.ts`).
 */
export interface OneDnnConv {
  /** `oneDNN <major>.<minor>.<patch>`. */
  readonly version: string;
  /**
   * The convolution of `x` into `out`. `filterKey` identifies the filter's values (the
   * reordered copy is reused while the same key object is passed; pass a new object when
   * the values change).
   */
  forward(
    spec: ConvSpec,
    x: Float32Array,
    filter: Float32Array,
    filterKey: object,
    bias: Float32Array | undefined,
    out: Float32Array,
  ): boolean;
  /** The input gradient `dx` (`[n, h, w, ci]`) from `dy` and the filter. */
  backwardData(
    spec: ConvSpec,
    dy: Float32Array,
    filter: Float32Array,
    dx: Float32Array,
  ): boolean;
  /** The filter gradient `dw` (`[kh, kw, ci, co]`) from `x` and `dy`. */
  backwardWeights(
    spec: ConvSpec,
    x: Float32Array,
    dy: Float32Array,
    dw: Float32Array,
  ): boolean;
}

// dnnl_types.h, oneDNN 2.6
const CONV_DESC_BYTES = 5976;
const CONVOLUTION_DIRECT = 1;
const QUERY_WEIGHTS_MD = 131, QUERY_DIFF_WEIGHTS_MD = 132;
const ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33, ARG_BIAS = 41, ARG_FROM = 1, ARG_TO = 17;
const ARG_DIFF_SRC = 129, ARG_DIFF_DST = 145, ARG_DIFF_WEIGHTS = 161;
const ELTWISE: Record<string, number> = {
  relu: 0x1f,
  leakyrelu: 0x1f,
  elu: 0x3f,
  sigmoid: 0xaf,
  relu6: 0xff, // clip [alpha, beta]
};

const SYMBOLS = {
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
  dnnl_dilated_convolution_backward_data_desc_init: {
    parameters: [
      "buffer",
      "i32",
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
  dnnl_dilated_convolution_backward_weights_desc_init: {
    parameters: [
      "buffer",
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
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_reorder_primitive_desc_create: {
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
} as const;

type Direction = "forward" | "backwardData" | "backwardWeights";

/** A created primitive with its memory objects (their data handles are set per call). */
interface Entry {
  primitive: Deno.PointerValue;
  /** Memory objects by execution argument (DNNL_ARG_*). */
  memories: Map<number, Deno.PointerValue>;
  args: Uint8Array;
  /**
   * Reorder between the plain `[kh, kw, ci, co]` filter and the primitive's layout: into it
   * (forward, input gradient) or out of it (filter gradient); absent when they are equal.
   */
  reorder?: {
    primitive: Deno.PointerValue;
    plain: Deno.PointerValue;
    chosen: Deno.PointerValue;
    bytes: number;
    args: Uint8Array;
  };
}

/**
 * Opens oneDNN's convolution, or returns `undefined` where `libdnnl.so.2` is missing or not
 * of major version 2 (whose C API this module is written for).
 */
export function openOneDnnConv(): OneDnnConv | undefined {
  const dnnl = openOneDnn(SYMBOLS);
  if (!dnnl) return undefined;
  const { lib, engine, cell: c, memoryDesc, memory, primitiveDesc, primitiveOf } = dnnl;
  const { setHandle, execute } = dnnl;
  const entries = new Map<string, Entry | null>(); // null: refused by oneDNN
  // per filter tensor: its values in the layout of the entry that reordered them
  const reordered = new WeakMap<object, { entry: Entry; data: Uint8Array }>();

  function postOps(spec: ConvSpec): Deno.PointerValue {
    check(lib.dnnl_primitive_attr_create(c), "primitive_attr_create");
    const attr = pointerOut(c);
    if (spec.activation === "linear") return attr;
    check(lib.dnnl_post_ops_create(c), "post_ops_create");
    const ops = pointerOut(c);
    const [alpha, beta] = spec.activation === "leakyrelu"
      ? [spec.alpha, 0]
      : spec.activation === "relu6"
      ? [0, 6]
      : spec.activation === "elu"
      ? [1, 0]
      : [0, 0];
    check(
      lib.dnnl_post_ops_append_eltwise(ops, 1, ELTWISE[spec.activation], alpha, beta),
      "post_ops_append_eltwise",
    );
    check(lib.dnnl_primitive_attr_set_post_ops(attr, ops), "attr_set_post_ops");
    return attr;
  }

  function create(spec: ConvSpec, direction: Direction): Entry {
    const [n, h, w, ci] = spec.x, [kh, kw, , co] = spec.filter, [, oh, ow] = spec.out;
    const src = memoryDesc([n, ci, h, w], TAG.nhwc);
    const dst = memoryDesc([n, co, oh, ow], TAG.nhwc);
    const g = spec.groups;
    if (g < 1 || ci % g !== 0 || co % g !== 0) throw new Error(`groups ${g} of ${ci}→${co}`);
    const weights = g === 1 ? [co, ci, kh, kw] : [g, co / g, ci / g, kh, kw];
    const plain = memoryDesc(weights, g === 1 ? TAG.hwio : TAG.hwigo);
    const any = memoryDesc(weights, TAG.any);
    const geometry = [
      dims(spec.strides),
      dims(spec.dilations.map((d) => d - 1)),
      dims([spec.pad[0], spec.pad[1]]),
      dims([spec.pad[2], spec.pad[3]]),
    ] as const;
    const forwardDesc = (prop: number, bias: Uint8Array | null) => {
      const desc = new Uint8Array(CONV_DESC_BYTES);
      check(
        lib.dnnl_dilated_convolution_forward_desc_init(
          desc,
          prop,
          CONVOLUTION_DIRECT,
          src,
          any,
          bias,
          dst,
          ...geometry,
        ),
        "convolution_forward_desc_init",
      );
      return desc;
    };
    let pd: Deno.PointerValue;
    let chosen: Deno.PointerValue;
    const memories = new Map<number, Deno.PointerValue>();
    if (direction === "forward") {
      const bias = spec.bias ? memoryDesc([co], TAG.a) : null;
      pd = primitiveDesc(forwardDesc(PROP.forwardInference, bias), postOps(spec), null);
      chosen = lib.dnnl_primitive_desc_query_md(pd, QUERY_WEIGHTS_MD, 0);
      memories.set(ARG_SRC, memory(src)).set(ARG_WEIGHTS, memory(chosen));
      memories.set(ARG_DST, memory(dst));
      if (bias) memories.set(ARG_BIAS, memory(bias));
    } else {
      const hint = primitiveDesc(forwardDesc(PROP.forwardTraining, null), null, null);
      const desc = new Uint8Array(CONV_DESC_BYTES);
      if (direction === "backwardData") {
        check(
          lib.dnnl_dilated_convolution_backward_data_desc_init(
            desc,
            CONVOLUTION_DIRECT,
            src,
            any,
            dst,
            ...geometry,
          ),
          "convolution_backward_data_desc_init",
        );
        pd = primitiveDesc(desc, null, hint);
        chosen = lib.dnnl_primitive_desc_query_md(pd, QUERY_WEIGHTS_MD, 0);
        memories.set(ARG_DIFF_DST, memory(dst)).set(ARG_WEIGHTS, memory(chosen));
        memories.set(ARG_DIFF_SRC, memory(src));
      } else {
        check(
          lib.dnnl_dilated_convolution_backward_weights_desc_init(
            desc,
            CONVOLUTION_DIRECT,
            src,
            any,
            null,
            dst,
            ...geometry,
          ),
          "convolution_backward_weights_desc_init",
        );
        pd = primitiveDesc(desc, null, hint);
        chosen = lib.dnnl_primitive_desc_query_md(pd, QUERY_DIFF_WEIGHTS_MD, 0);
        memories.set(ARG_SRC, memory(src)).set(ARG_DIFF_DST, memory(dst));
        memories.set(ARG_DIFF_WEIGHTS, memory(chosen));
      }
    }
    const entry: Entry = {
      primitive: primitiveOf(pd),
      memories,
      args: execArgs([...memories]),
    };
    if (!lib.dnnl_memory_desc_equal(plain, chosen)) {
      const into = direction !== "backwardWeights";
      check(
        into
          ? lib.dnnl_reorder_primitive_desc_create(c, plain, engine, chosen, engine, null)
          : lib.dnnl_reorder_primitive_desc_create(
            c,
            new Uint8Array(new Deno.UnsafePointerView(chosen!).getArrayBuffer(MEMORY_DESC_BYTES)),
            engine,
            Deno.UnsafePointer.of(plain),
            engine,
            null,
          ),
        "reorder_primitive_desc_create",
      );
      const reorderPd = pointerOut(c);
      const plainMemory = memory(plain), chosenMemory = memory(chosen);
      entry.reorder = {
        primitive: primitiveOf(reorderPd),
        plain: plainMemory,
        chosen: chosenMemory,
        bytes: Number(lib.dnnl_memory_desc_get_size(chosen)),
        args: execArgs(
          into
            ? [[ARG_FROM, plainMemory], [ARG_TO, chosenMemory]]
            : [[ARG_FROM, chosenMemory], [ARG_TO, plainMemory]],
        ),
      };
    }
    return entry;
  }

  /** The entry for `spec` and `direction`, created once; null when oneDNN refuses it. */
  function entryFor(spec: ConvSpec, direction: Direction): Entry | null {
    return cached(entries, `${direction} ${JSON.stringify(spec)}`, () => create(spec, direction));
  }

  /** Reorders the plain filter into the entry's layout (a new buffer). */
  function reorderInto(entry: Entry, filter: Float32Array): Uint8Array {
    const r = entry.reorder!;
    const data = new Uint8Array(r.bytes);
    setHandle(r.plain, filter);
    setHandle(r.chosen, data);
    execute(r.primitive, r.args);
    return data;
  }

  return {
    version: dnnl.version,
    forward(spec, x, filter, filterKey, bias, out) {
      const entry = entryFor(spec, "forward");
      if (!entry) return false;
      let weights: Float32Array | Uint8Array = filter;
      if (entry.reorder) {
        let cached = reordered.get(filterKey);
        if (!cached || cached.entry !== entry) {
          cached = { entry, data: reorderInto(entry, filter) };
          reordered.set(filterKey, cached);
        }
        weights = cached.data;
      }
      setHandle(entry.memories.get(ARG_SRC)!, x);
      setHandle(entry.memories.get(ARG_WEIGHTS)!, weights);
      setHandle(entry.memories.get(ARG_DST)!, out);
      if (bias) setHandle(entry.memories.get(ARG_BIAS)!, bias);
      execute(entry.primitive, entry.args);
      return true;
    },
    backwardData(spec, dy, filter, dx) {
      const entry = entryFor(spec, "backwardData");
      if (!entry) return false;
      setHandle(entry.memories.get(ARG_DIFF_DST)!, dy);
      setHandle(
        entry.memories.get(ARG_WEIGHTS)!,
        entry.reorder ? reorderInto(entry, filter) : filter,
      );
      setHandle(entry.memories.get(ARG_DIFF_SRC)!, dx);
      execute(entry.primitive, entry.args);
      return true;
    },
    backwardWeights(spec, x, dy, dw) {
      const entry = entryFor(spec, "backwardWeights");
      if (!entry) return false;
      const chosen = entry.reorder ? new Uint8Array(entry.reorder.bytes) : dw;
      setHandle(entry.memories.get(ARG_SRC)!, x);
      setHandle(entry.memories.get(ARG_DIFF_DST)!, dy);
      setHandle(entry.memories.get(ARG_DIFF_WEIGHTS)!, chosen);
      execute(entry.primitive, entry.args);
      if (entry.reorder) {
        setHandle(entry.reorder.chosen, chosen);
        setHandle(entry.reorder.plain, dw);
        execute(entry.reorder.primitive, entry.reorder.args);
      }
      return true;
    },
  };
}
