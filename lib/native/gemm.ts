/**
 * Native single-precision matrix products through Deno's FFI: oneDNN's `dnnl_sgemm`
 * (Debian `libdnnl2`, the library PyTorch's CPU kernels come from; AVX-512 where the CPU has
 * it, OpenMP threads) or, where oneDNN is missing, OpenBLAS's `cblas_sgemm` (Debian
 * `libopenblas0-pthread`). Where neither loads, {@link nativeGemm} returns `undefined` and
 * callers keep the TensorFlow.js wasm kernels; {@link nativeStatus} says which ran and why.
 *
 * Which library: the environment variable `TEXT_AS_IMAGE_NATIVE` = `auto` (default: oneDNN,
 * else OpenBLAS), `onednn`, `openblas` or `off` (wasm kernels only). A library asked for by
 * name that does not load is an error naming the Debian package to install.
 *
 * Threads: a product runs on {@link nativeThreads} threads of the calling thread. The default
 * is every core in the main thread and one in a Deno worker (the toolkit's workers exist to
 * spread work over the cores, so each takes one); `TEXT_AS_IMAGE_NATIVE_THREADS` or
 * {@link setNativeThreads} override it. oneDNN's OpenMP thread count is per calling thread,
 * so workers do not disturb each other.
 *
 * All matrices are row-major float32. Arrays may be views on the wasm heap: the call is
 * synchronous and nothing in it can grow that heap.
 *
 * @example
 * ```ts
 * import { nativeGemm } from "./gemm.ts";
 * const gemm = nativeGemm();
 * if (gemm) {
 *   const a = Float32Array.of(1, 2, 3, 4), b = Float32Array.of(5, 6, 7, 8);
 *   const c = new Float32Array(4);
 *   gemm.sgemm(false, false, 2, 2, 2, a, 2, b, 2, 0, c, 2);
 *   console.log(c); // 19 22 43 50
 * }
 * ```
 *
 * @module
 */

/** A native library that computes the products. */
export type NativeLibrary = "onednn" | "openblas";

/** Which kernels ran: a native library, or TensorFlow.js's wasm kernels. */
export interface NativeStatus {
  /** `onednn`, `openblas`, or `wasm` when no native library is used. */
  kernels: NativeLibrary | "wasm";
  /** The shared library file opened (absent for `wasm`). */
  file?: string;
  /** Threads a product uses in the calling thread. */
  threads: number;
  /** Why the wasm kernels run: switched off, or the libraries that failed to load. */
  reason?: string;
}

/** Row-major single-precision GEMM: `C = op(A)·op(B) + beta·C`. */
export interface NativeGemm {
  /** The library behind {@link NativeGemm.sgemm}. */
  readonly library: NativeLibrary;
  /** The shared library file. */
  readonly file: string;
  /**
   * `C[m×n] = op(A)[m×k] · op(B)[k×n] + beta·C`, row-major, `op` transposing when `transA`
   * / `transB`; `lda`, `ldb`, `ldc` are the row strides of the stored matrices.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
  ): void;
}

const LIBRARIES: Record<NativeLibrary, { file: string; debian: string }> = {
  onednn: { file: "libdnnl.so.2", debian: "libdnnl2" },
  openblas: { file: "libopenblas.so.0", debian: "libopenblas0-pthread" },
};

let loaded: { gemm?: NativeGemm; reason?: string } | undefined;
let enabled = true;
let threadsOverride: number | undefined;
let setOmpThreads: ((n: number) => void) | undefined;
let setBlasThreads: ((n: number) => void) | undefined;
let appliedThreads = 0;

function isWorker(): boolean {
  // Deno defines WorkerGlobalScope in workers only.
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";
}

function cores(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

/**
 * Threads a native product uses in the calling thread (see the module doc), or, with
 * `inWorker` given, in the main thread (`false`) or a worker (`true`) of this process by
 * default (what a report says of its workers).
 */
export function nativeThreads(inWorker?: boolean): number {
  if (inWorker === undefined && threadsOverride !== undefined) return threadsOverride;
  const fromEnv = Number(Deno.env.get("TEXT_AS_IMAGE_NATIVE_THREADS") ?? "");
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return fromEnv;
  return (inWorker ?? isWorker()) ? 1 : cores();
}

/** Sets the threads native products use in the calling thread (`undefined`: the default). */
export function setNativeThreads(threads: number | undefined): void {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new Error(`setNativeThreads: a positive integer or undefined, got ${threads}`);
  }
  threadsOverride = threads;
}

/**
 * Products below this many multiply-adds run on one thread: waking a second thread costs
 * more than it saves, and far more when another process holds that core.
 */
export const SMALL_GEMM_MULTIPLY_ADDS = 1 << 21;

/**
 * Sets the threads of this thread's next native call (a product, or a oneDNN primitive) of
 * `multiplyAdds`: one below {@link SMALL_GEMM_MULTIPLY_ADDS}, else {@link nativeThreads}. Every
 * native call goes through here, so the remembered count is always the runtime's.
 */
export function useNativeThreads(multiplyAdds: number): void {
  const n = multiplyAdds < SMALL_GEMM_MULTIPLY_ADDS ? 1 : nativeThreads();
  if (n === appliedThreads) return;
  setOmpThreads?.(n);
  setBlasThreads?.(n);
  appliedThreads = n;
}

function openOneDnn(): NativeGemm {
  // libgomp is the OpenMP runtime oneDNN is linked with; opening it again returns the same
  // instance, whose thread count is set per calling thread.
  const omp = Deno.dlopen("libgomp.so.1", {
    omp_set_num_threads: { parameters: ["i32"], result: "void" },
  });
  const lib = Deno.dlopen(LIBRARIES.onednn.file, {
    dnnl_sgemm: {
      parameters: [
        "u8",
        "u8",
        "i64",
        "i64",
        "i64",
        "f32",
        "buffer",
        "i64",
        "buffer",
        "i64",
        "f32",
        "buffer",
        "i64",
      ],
      result: "i32",
    },
  });
  setOmpThreads = (n) => omp.symbols.omp_set_num_threads(n);
  const T = 84, N = 78; // 'T', 'N'
  return {
    library: "onednn",
    file: LIBRARIES.onednn.file,
    sgemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc) {
      if (m === 0 || n === 0) return;
      useNativeThreads(m * n * k);
      const status = lib.symbols.dnnl_sgemm(
        tA ? T : N,
        tB ? T : N,
        BigInt(m),
        BigInt(n),
        BigInt(k),
        1,
        a,
        BigInt(lda),
        b,
        BigInt(ldb),
        beta,
        c,
        BigInt(ldc),
      );
      if (status !== 0) {
        throw new Error(
          `dnnl_sgemm failed with status ${status} (m ${m}, n ${n}, k ${k}, lda ${lda}, ` +
            `ldb ${ldb}, ldc ${ldc}); set TEXT_AS_IMAGE_NATIVE=off to use the wasm kernels.`,
        );
      }
    },
  };
}

function openOpenBlas(): NativeGemm {
  const lib = Deno.dlopen(LIBRARIES.openblas.file, {
    cblas_sgemm: {
      parameters: [
        "i32",
        "i32",
        "i32",
        "i32",
        "i32",
        "i32",
        "f32",
        "buffer",
        "i32",
        "buffer",
        "i32",
        "f32",
        "buffer",
        "i32",
      ],
      result: "void",
    },
    openblas_set_num_threads: { parameters: ["i32"], result: "void" },
  });
  setBlasThreads = (n) => lib.symbols.openblas_set_num_threads(n);
  const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;
  return {
    library: "openblas",
    file: LIBRARIES.openblas.file,
    sgemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc) {
      if (m === 0 || n === 0) return;
      useNativeThreads(m * n * k);
      lib.symbols.cblas_sgemm(
        ROW_MAJOR,
        tA ? TRANS : NO_TRANS,
        tB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        1,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
      );
    },
  };
}

const OPENERS: Record<NativeLibrary, () => NativeGemm> = {
  onednn: openOneDnn,
  openblas: openOpenBlas,
};
const opened: Partial<Record<NativeLibrary, NativeGemm>> = {};

/**
 * Opens one library by name, whatever `TEXT_AS_IMAGE_NATIVE` says (to compare libraries;
 * the kernels use {@link nativeGemm}). Throws naming the Debian package when it is missing.
 */
export function openNativeGemm(library: NativeLibrary): NativeGemm {
  if (opened[library]) return opened[library];
  try {
    return opened[library] = OPENERS[library]();
  } catch (error) {
    throw new Error(
      `${LIBRARIES[library].file} cannot be opened (${(error as Error).message.split("\n")[0]}); ` +
        `install Debian's ${LIBRARIES[library].debian} (apt-get install ${
          LIBRARIES[library].debian
        }).`,
    );
  }
}

/** The setting of `TEXT_AS_IMAGE_NATIVE`, checked. */
export function nativeSetting(): "auto" | "off" | NativeLibrary {
  const value = (Deno.env.get("TEXT_AS_IMAGE_NATIVE") ?? "auto").trim().toLowerCase() || "auto";
  if (value === "auto" || value === "off" || value === "onednn" || value === "openblas") {
    return value;
  }
  throw new Error(
    `TEXT_AS_IMAGE_NATIVE=${value} is not a setting: use auto, onednn, openblas or off.`,
  );
}

/**
 * The native GEMM (opened once per thread), or `undefined` where the wasm kernels must run
 * (switched off, or no library loads; {@link nativeStatus} says why). Throws when a library
 * asked for by name cannot be opened.
 */
export function nativeGemm(): NativeGemm | undefined {
  if (!enabled) return undefined;
  if (loaded) return loaded.gemm;
  const setting = nativeSetting();
  if (setting === "off") {
    loaded = { reason: "TEXT_AS_IMAGE_NATIVE=off" };
    return undefined;
  }
  const order: NativeLibrary[] = setting === "auto" ? ["onednn", "openblas"] : [setting];
  const failures: string[] = [];
  for (const name of order) {
    try {
      loaded = { gemm: openNativeGemm(name) };
      return loaded.gemm;
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  if (setting !== "auto") {
    throw new Error(
      `TEXT_AS_IMAGE_NATIVE=${setting}, but ${failures[0]} Or set TEXT_AS_IMAGE_NATIVE=auto.`,
    );
  }
  loaded = { reason: `no native library loaded: ${failures.join("; ")}` };
  return undefined;
}

/**
 * Switches the native products off (`false`: every kernel falls back to wasm) or on again in
 * the calling thread, e.g. to compare both paths in one process.
 */
export function setNativeEnabled(on: boolean): void {
  enabled = on;
}

/** Which kernels products run on in this thread, the file and threads, or why wasm. */
export function nativeStatus(): NativeStatus {
  const gemm = nativeGemm();
  if (!gemm) {
    const reason = enabled ? loaded?.reason : "switched off by setNativeEnabled(false)";
    return { kernels: "wasm", threads: 1, reason };
  }
  return { kernels: gemm.library, file: gemm.file, threads: nativeThreads() };
}

/** One line for logs and reports, e.g. `onednn (libdnnl.so.2, 2 threads)`. */
export function nativeStatusText(status: NativeStatus = nativeStatus()): string {
  return status.kernels === "wasm"
    ? `wasm (${status.reason ?? "no native library"})`
    : `${status.kernels} (${status.file}, ${status.threads} thread${
      status.threads === 1 ? "" : "s"
    })`;
}
