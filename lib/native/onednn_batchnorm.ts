/**
 * BatchNorm in training mode on oneDNN's batch-normalization primitives (the kernels
 * PyTorch's CPU `BatchNorm2d` runs on), through Deno's FFI, on channels-last values seen as
 * `[rows, channels]`: the forward pass computes the batch mean and biased variance and
 * normalises with them, then scales and shifts (γ, β); the backward pass computes `dx`, `dγ`
 * and `dβ` from `x`, those statistics, γ and `dy`. One pass each over the values, on the
 * threads the caller set, where TF.js's wasm ops take about ten.
 *
 * @module
 */
import { cached, check, execArgs, openOneDnn, PROP, TAG } from "./onednn_ffi.ts";

// dnnl_types.h, oneDNN 2.6
const BATCH_NORM_DESC_BYTES = 4096; // sizeof(dnnl_batch_normalization_desc_t) is 3496
const USE_SCALE = 0x8, USE_SHIFT = 0x10;
const ARG_SRC = 1, ARG_DST = 17, ARG_MEAN = 49, ARG_VARIANCE = 50, ARG_SCALE = 51;
const ARG_SHIFT = 52, ARG_DIFF_SRC = 129, ARG_DIFF_DST = 145, ARG_DIFF_SCALE = 255;
const ARG_DIFF_SHIFT = 256;

const SYMBOLS = {
  dnnl_batch_normalization_forward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
  },
} as const;

/** Values of one forward call (views on the wasm heap or typed arrays). */
export interface BatchNormForwardValues {
  /** Input `[rows, channels]`. */
  x: Float32Array;
  /** γ `[channels]`. */
  gamma: Float32Array;
  /** β `[channels]`. */
  beta: Float32Array;
  /** Output `[rows, channels]`. */
  y: Float32Array;
  /** Batch mean `[channels]` (written). */
  mean: Float32Array;
  /** Biased batch variance `[channels]` (written). */
  variance: Float32Array;
}

/** Values of one backward call. */
export interface BatchNormBackwardValues {
  /** The forward input `[rows, channels]`. */
  x: Float32Array;
  /** Its batch mean. */
  mean: Float32Array;
  /** Its biased batch variance. */
  variance: Float32Array;
  /** γ. */
  gamma: Float32Array;
  /** Gradient of the output. */
  dy: Float32Array;
  /** Gradient of the input (written). */
  dx: Float32Array;
  /** Gradient of γ (written). */
  dGamma: Float32Array;
  /** Gradient of β (written). */
  dBeta: Float32Array;
}

/** oneDNN's batch normalization, opened; each call returns false for a case it refuses. */
export interface OneDnnBatchNorm {
  /** Training-mode forward pass over `rows × channels` values. */
  forward(rows: number, channels: number, epsilon: number, v: BatchNormForwardValues): boolean;
  /** Its backward pass. */
  backward(rows: number, channels: number, epsilon: number, v: BatchNormBackwardValues): boolean;
}

interface Entry {
  primitive: Deno.PointerValue;
  memories: Map<number, Deno.PointerValue>;
  args: Uint8Array;
}

/** Opens the primitives, or `undefined` where `libdnnl.so.2` (major version 2) is missing. */
export function openOneDnnBatchNorm(): OneDnnBatchNorm | undefined {
  const dnnl = openOneDnn(SYMBOLS);
  if (!dnnl) return undefined;
  const { lib, memoryDesc, memory, primitiveDesc, primitiveOf, setHandle, execute } = dnnl;
  const entries = new Map<string, { forward: Entry; backward: Entry } | null>();

  function create(rows: number, channels: number, epsilon: number) {
    const data = memoryDesc([rows, channels, 1, 1], TAG.nhwc);
    const vector = memoryDesc([channels], TAG.a);
    const flags = USE_SCALE | USE_SHIFT;
    const forwardDesc = new Uint8Array(BATCH_NORM_DESC_BYTES);
    check(
      lib.dnnl_batch_normalization_forward_desc_init(
        forwardDesc,
        PROP.forwardTraining,
        data,
        epsilon,
        flags,
      ),
      "batch_normalization_forward_desc_init",
    );
    const forwardPd = primitiveDesc(forwardDesc, null, null);
    const backwardDesc = new Uint8Array(BATCH_NORM_DESC_BYTES);
    check(
      lib.dnnl_batch_normalization_backward_desc_init(
        backwardDesc,
        PROP.backward,
        data,
        data,
        epsilon,
        flags,
      ),
      "batch_normalization_backward_desc_init",
    );
    const backwardPd = primitiveDesc(backwardDesc, null, forwardPd);
    const entry = (pd: Deno.PointerValue, args: [number, Uint8Array][]): Entry => {
      const memories = new Map(args.map(([arg, md]) => [arg, memory(md)]));
      return { primitive: primitiveOf(pd), memories, args: execArgs([...memories]) };
    };
    return {
      forward: entry(forwardPd, [
        [ARG_SRC, data],
        [ARG_DST, data],
        [ARG_MEAN, vector],
        [ARG_VARIANCE, vector],
        [ARG_SCALE, vector],
        [ARG_SHIFT, vector],
      ]),
      backward: entry(backwardPd, [
        [ARG_SRC, data],
        [ARG_MEAN, vector],
        [ARG_VARIANCE, vector],
        [ARG_DIFF_DST, data],
        [ARG_SCALE, vector],
        [ARG_SHIFT, vector],
        [ARG_DIFF_SRC, data],
        [ARG_DIFF_SCALE, vector],
        [ARG_DIFF_SHIFT, vector],
      ]),
    };
  }

  function entriesFor(rows: number, channels: number, epsilon: number) {
    return cached(entries, `${rows} ${channels} ${epsilon}`, () => create(rows, channels, epsilon));
  }

  function run(entry: Entry, values: [number, Float32Array][]): void {
    for (const [arg, data] of values) setHandle(entry.memories.get(arg)!, data);
    execute(entry.primitive, entry.args);
  }

  return {
    forward(rows, channels, epsilon, v) {
      const found = entriesFor(rows, channels, epsilon);
      if (!found) return false;
      run(found.forward, [
        [ARG_SRC, v.x],
        [ARG_DST, v.y],
        [ARG_MEAN, v.mean],
        [ARG_VARIANCE, v.variance],
        [ARG_SCALE, v.gamma],
        [ARG_SHIFT, v.beta],
      ]);
      return true;
    },
    backward(rows, channels, epsilon, v) {
      const found = entriesFor(rows, channels, epsilon);
      if (!found) return false;
      run(found.backward, [
        [ARG_SRC, v.x],
        [ARG_MEAN, v.mean],
        [ARG_VARIANCE, v.variance],
        [ARG_DIFF_DST, v.dy],
        [ARG_SCALE, v.gamma],
        [ARG_SHIFT, v.gamma], // read by no computation; bound so the argument list is whole
        [ARG_DIFF_SRC, v.dx],
        [ARG_DIFF_SCALE, v.dGamma],
        [ARG_DIFF_SHIFT, v.dBeta],
      ]);
      return true;
    },
  };
}
