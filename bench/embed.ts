/**
 * Bench of the text encoders on 1,000 real IMDB reviews (stratified sample, seed 7): reviews
 * per second and peak memory for
 *
 * - USE-lite (TF.js wasm backend with the native kernels of `lib/native/`, the toolkit's
 *   default: oneDNN's sgemm through FFI, 2 threads in the main thread), default recipe: mean
 *   of layers 1, 2 + sentence embedding, truncated at 128 pieces, batches of 16, in this
 *   process (peak RSS sampled every 5 ms); side by side on the first 250 reviews, the model's
 *   stock output alone (hidden state 3), to show what reading the intermediate layers costs;
 * - USE-lite's `embedTexts` on the first 240 reviews (chunks of 30, a fresh temporary store
 *   each time) in four configurations, each in its own process (so that its peak RSS, VmHWM
 *   with loading included, is its own):
 *   - `native_one_thread`: the native kernels in the main thread (2 threads per product);
 *   - `native_workers`: the native kernels on 2 encoder workers (lib/embed/workers.ts), one
 *     native thread each (the main thread holds a third copy of the model);
 *   - `wasm_one_thread`: the wasm kernels alone (`TEXT_AS_IMAGE_NATIVE=off`) in the main
 *     thread — today's figure, the baseline of the speed-up;
 *   - `wasm_workers`: the wasm kernels on 2 encoder workers (the previous parallel path);
 *   alternated over `--rounds` rounds (default 3; the order rotates every round) and compared
 *   by their medians. The workers are started and warmed up (one small chunk each) before the
 *   clock starts; their start time is reported apart. Reported for each: reviews/s, peak RSS,
 *   the achieved GFLOP/s (from the FLOPs per review counted on the model's graph,
 *   {@link useLiteFlops}); for the native main thread also a per-stage profile per chunk
 *   (`nativeProfile()`: time in the native GEMMs against the rest, GEMM GFLOP/s; and, from one
 *   extra profiled chunk after the timed run, ms per TF.js kernel);
 * - the tiny BERT of tools/make_tiny_bert.py (onnxruntime-node), default recipe: [CLS] of
 *   hidden states 0..2, truncated at 512 tokens, one review per run; side by side, the same
 *   model in PyTorch (bench/embed_reference.py, its own tokenizer; 1 thread on all reviews,
 *   2 threads on the first 200). Every review must tokenise to the same ids on both sides
 *   (target `token_id_mismatches`: 0; the first differing reviews are printed with both
 *   token lists) and every [CLS] vector must agree with PyTorch's to 1e-4.
 *
 * USE-lite targets: `use_lite_speedup_over_wasm` (the better native configuration's
 * reviews/s ÷ the wasm one-thread reviews/s, ≥ 4: the issue's goal of 4× today's on 2 cores);
 * `use_lite_native_identical` (max over reviews of ‖native − wasm‖ / ‖wasm‖, both native
 * configurations against the wasm main thread's vectors, ≤ 1e-4: a native GEMM sums in
 * another order than the wasm kernels, so the vectors are no longer bitwise equal);
 * `use_lite_parallel_identical` (the largest |difference| between the native main thread's
 * vectors, 2 threads per product, and every other native run's — the native workers', one
 * thread each, and the main thread's later rounds — = 0: a chunk must be encoded bitwise the
 * same in any thread, as it is on wasm, whose pair is reported too; with oneDNN's sgemm this
 * holds on the development machine, the relative difference is reported beside it);
 * `use_lite_peak_memory_vs_wasm` (peak RSS of the native configuration the speed-up uses ÷
 * the peak of the same configuration on the wasm kernels, today's figure for it: the main
 * thread against the wasm main thread, the workers against the wasm workers, ≤ 1.25; the
 * workers' process holds three copies of the model and three heaps on either kernels, so each
 * native configuration's ratio to the wasm main thread is printed as a figure too);
 * `use_lite_taps_time_ratio` (≤ 1.25).
 *
 * No embedding store is kept: every figure is a fresh encode. Ends with one JSON line. Exits
 * non-zero when any review tokenises differently, and without a JSON line when a
 * configuration's process fails or the PyTorch reference cannot run (Debian's python3-torch
 * missing, or its script failing): a bench never reports a missing reference as a null
 * figure. With the defaults it takes about 6 minutes on 2 idle cores.
 *
 * Usage: deno run -A bench/embed.ts [--reviews N] [--rounds R]
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadImdb, stratifiedSample, textsOf } from "../lib/data/mod.ts";
import {
  BertEncoder,
  embedTexts,
  EncoderWorkers,
  resolveEncodeOptions,
  USE_LITE_SENTENCE_EMBEDDING,
  useLiteDefaultFolder,
  UseLiteEncoder,
} from "../lib/embed/mod.ts";
import { nativeProfile, resetNativeProfile } from "../lib/native/kernels.ts";
import { nativeStatus, nativeStatusText, nativeThreads, tf } from "../lib/tf.ts";
import type { Matrix } from "../lib/types.ts";
import { ensureTinyBert, SYSTEM_PYTHON } from "../tools/tiny_bert.ts";
import { peakRssMb, pythonFailure } from "./data.ts";

/** One review whose token ids differ between ours and the reference. */
export interface TokenMismatch {
  /** Index of the review. */
  review: number;
  /** First position where the lists differ (the shorter list's length if one is a prefix). */
  firstDifference: number;
  /** Our token ids. */
  ours: readonly number[];
  /** The reference's token ids (empty where the reference has no row for the review). */
  reference: readonly number[];
}

/**
 * Compares the token ids of every review, ours against the reference's, and returns every
 * review that differs (none: all agree). A review missing on either side differs.
 */
export function tokenMismatches(
  ours: readonly (readonly number[])[],
  reference: readonly (readonly number[])[],
): TokenMismatch[] {
  const mismatches: TokenMismatch[] = [];
  for (let review = 0; review < Math.max(ours.length, reference.length); review++) {
    const a = ours[review] ?? [], b = reference[review] ?? [];
    let k = 0;
    while (k < a.length && k < b.length && a[k] === b[k]) k++;
    if (
      k < a.length || k < b.length || ours[review] === undefined ||
      reference[review] === undefined
    ) {
      mismatches.push({ review, firstDifference: k, ours: a, reference: b });
    }
  }
  return mismatches;
}

/** A printable description of `m`: the review's start and both token lists in full. */
export function describeTokenMismatch(m: TokenMismatch, text: string): string {
  const start = text.replace(/\s+/g, " ").slice(0, 200);
  return [
    `review ${m.review} (${JSON.stringify(start)}${text.length > 200 ? "…" : ""}) ` +
    `differs from token ${m.firstDifference} on (ours ${m.ours.length} tokens, reference ` +
    `${m.reference.length}):`,
    `  ours:      [${m.ours.join(", ")}]`,
    `  reference: [${m.reference.join(", ")}]`,
  ].join("\n");
}

const TORCH_INSTALL = "install Debian's python3-torch (sudo apt-get install python3-torch)";

/** Runs `args` with the system Python; throws a message naming what to install on failure. */
async function runPython(args: string[], what: string): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(SYSTEM_PYTHON, { args, stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    throw new Error(
      `cannot run ${SYSTEM_PYTHON} for ${what} (${(e as Error).message}); ${TORCH_INSTALL}`,
    );
  }
  if (!out.success) {
    throw pythonFailure(what, out.code, new TextDecoder().decode(out.stderr), SYSTEM_PYTHON);
  }
  return new TextDecoder().decode(out.stdout);
}

const mb = (bytes: number) => Number((bytes / 2 ** 20).toFixed(1));

/** Runs `fn`, sampling RSS; returns its result, seconds and peak RSS. */
async function measured<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; seconds: number; peakRss: number }> {
  let peakRss = Deno.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  }, 5);
  const start = performance.now();
  try {
    const value = await fn();
    return { value, seconds: (performance.now() - start) / 1000, peakRss };
  } finally {
    clearInterval(sampler);
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  }
}

/** The FLOPs of USE-lite's matrix products, read from its graph (see {@link useLiteFlops}). */
export interface UseLiteFlops {
  /** Per token: 2·in·out for every dense product inside the Transformer stack. */
  perToken: number;
  /** Width of the attention of each Transformer layer (keys = values), in layer order. */
  attentionWidths: number[];
  /** Per review, independent of its length: 2·in·out of the dense layers after pooling. */
  perReview: number;
}

/**
 * Counts the multiply-adds of USE-lite's graph (`model.json` in `folder`): every `MatMul` or
 * `Conv2D` whose second input is a stored weight of shape `[…, in, out]` costs 2·in·out per
 * row it is applied to (per token inside `TransformerStack`, once per review after the
 * pooling), and each layer's attention (its two `BatchMatMul`s, Q·Kᵀ and weights·V) costs
 * 4·T²·d for T tokens, d being a third of the output width of the layer's `qkv_transform`
 * weight. Element-wise ops (layer norms, softmax, activations, pooling) are not counted, nor
 * padding: it is the useful arithmetic of a review of T tokens, see {@link flopsPerReview}.
 */
export function useLiteFlops(folder: string): UseLiteFlops {
  const model = JSON.parse(Deno.readTextFileSync(join(folder, "model.json"))) as {
    modelTopology: { node: { name: string; op: string; input?: string[] }[] };
    weightsManifest: { weights: { name: string; shape: number[] }[] }[];
  };
  const shapes = new Map<string, number[]>();
  for (const group of model.weightsManifest) {
    for (const w of group.weights) shapes.set(w.name, w.shape);
  }
  let perToken = 0;
  let perReview = 0;
  const widths = new Map<number, number>();
  const attentionLayers = new Set<number>();
  for (const node of model.modelTopology.node) {
    const layer = /\/Layer_(\d+)\//.exec(node.name);
    if (node.op === "BatchMatMul" || node.op === "BatchMatMulV2") {
      if (!layer) throw new Error(`USE-lite graph: attention product ${node.name} outside a layer`);
      attentionLayers.add(Number(layer[1]));
      continue;
    }
    if (node.op !== "MatMul" && node.op !== "Conv2D") continue;
    const shape = shapes.get((node.input?.[1] ?? "").replace(/^\^/, "").split(":")[0]);
    if (!shape || shape.length < 2) {
      throw new Error(`USE-lite graph: ${node.op} ${node.name} has no stored weight`);
    }
    const [inputs, outputs] = shape.slice(-2);
    if (node.name.includes("/TransformerStack/")) perToken += 2 * inputs * outputs;
    else perReview += 2 * inputs * outputs;
    if (layer && node.name.includes("qkv_transform")) widths.set(Number(layer[1]), outputs / 3);
  }
  const attentionWidths = [...attentionLayers].sort((a, b) => a - b).map((l) => {
    const d = widths.get(l);
    if (d === undefined) throw new Error(`USE-lite graph: no qkv_transform in layer ${l}`);
    return d;
  });
  return { perToken, attentionWidths, perReview };
}

/** FLOPs of one review of `tokens` tokens under {@link UseLiteFlops} `f`. */
export function flopsPerReview(f: UseLiteFlops, tokens: number): number {
  return f.perToken * tokens + f.attentionWidths.reduce((n, d) => n + 4 * tokens ** 2 * d, 0) +
    f.perReview;
}

/** The median of `values`. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Encoder workers of the `*_workers` configurations. */
const WORKERS = 2;

/** The `embedTexts` configurations compared, each run in its own process. */
const CONFIGS = {
  native_one_thread: { native: true, workers: 0, what: "native kernels, main thread" },
  native_workers: { native: true, workers: WORKERS, what: `native kernels, ${WORKERS} workers` },
  wasm_one_thread: { native: false, workers: 0, what: "wasm kernels, main thread (today's)" },
  wasm_workers: { native: false, workers: WORKERS, what: `wasm kernels, ${WORKERS} workers` },
} as const;
type Config = keyof typeof CONFIGS;

/** What one configuration's process reports (its vectors go to a file). */
interface ConfigRun {
  kernels: string;
  seconds: number;
  /** Workers' start and warm-up, not counted in `seconds`. */
  start_seconds: number;
  /** VmHWM of the process (loading included), MB. */
  peak_rss_mb: number;
  /** Native kernels of the main thread during the timed call (zero on workers and wasm). */
  native: { gemm_ms: number; gemm_flops: number; gemm_calls: number; other_ms: number };
  /** ms per TF.js kernel over one profiled chunk (only when asked for). */
  kernel_ms?: Record<string, number>;
  /** ms of that profiled chunk. */
  profiled_chunk_ms?: number;
}

/** What the workers' products run on: the library, and each worker's threads (default 1). */
function workersKernels(count: number): string {
  const status = nativeStatus();
  if (status.kernels === "wasm") return `${nativeStatusText(status)}, ${count} workers`;
  const threads = nativeThreads(true);
  return `${status.kernels} (${status.file}, ${count} workers × ${threads} thread` +
    `${threads === 1 ? "" : "s"})`;
}

/**
 * Child process: `embedTexts` of USE-lite on the texts of `dir/texts.json` in configuration
 * `config` (the native kernels or not as this process's `TEXT_AS_IMAGE_NATIVE` says), after
 * a warm-up; writes the matrix to `out` (float32) and prints one JSON line ({@link ConfigRun}).
 */
async function configChild(
  config: Config,
  dir: string,
  chunkSize: number,
  out: string,
  profileKernels: boolean,
) {
  const texts = JSON.parse(await Deno.readTextFile(join(dir, "texts.json"))) as string[];
  const use = await UseLiteEncoder.load();
  await use.encode(texts.slice(0, 4)); // warm-up: kernels compiled, weights uploaded
  let workers: EncoderWorkers | undefined;
  let startSeconds = 0;
  if (CONFIGS[config].workers > 0) {
    const t0 = performance.now();
    workers = await EncoderWorkers.start({ kind: "use-lite" }, CONFIGS[config].workers);
    const options = resolveEncodeOptions(use, {});
    // Warm-up: one small chunk on each worker (all idle, so each takes one).
    await Promise.all(
      Array.from(
        { length: workers.size },
        (_, i) => workers!.encodeChunk({ chunk: i, first: 0, texts: texts.slice(0, 4), options }),
      ),
    );
    startSeconds = (performance.now() - t0) / 1000;
  }
  const root = await Deno.makeTempDir({ prefix: "bench-embed-" });
  resetNativeProfile();
  const t = performance.now();
  let m: Matrix;
  try {
    m = await embedTexts(use, texts, { chunkSize, progress: false, root, workers });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
  const seconds = (performance.now() - t) / 1000;
  const p = nativeProfile();
  const peak = peakRssMb();
  await workers?.dispose();
  await Deno.writeFile(out, new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  const run: ConfigRun = {
    kernels: workers ? workersKernels(workers.size) : nativeStatusText(),
    seconds,
    start_seconds: startSeconds,
    peak_rss_mb: peak,
    native: {
      gemm_ms: p.gemmMs,
      gemm_flops: p.gemmFlops,
      gemm_calls: p.gemmCalls,
      other_ms: p.im2colMs + p.col2imMs + p.epilogueMs,
    },
  };
  if (profileKernels) {
    // One more chunk, under tf.profile (after the timed run and the peak: it adds overhead).
    const t1 = performance.now();
    const info = await tf.profile(async () => {
      await use.encode(texts.slice(0, chunkSize));
    });
    run.profiled_chunk_ms = performance.now() - t1;
    const byKernel: Record<string, number> = {};
    for (const k of info.kernels) {
      byKernel[k.name] = (byKernel[k.name] ?? 0) + (Number(k.kernelTimeMs) || 0);
    }
    run.kernel_ms = byKernel;
  }
  console.log(JSON.stringify(run));
}

/** Runs this file as a configuration's child; returns its report and matrix. */
async function runConfig(
  config: Config,
  dir: string,
  chunkSize: number,
  round: number,
  profileKernels: boolean,
): Promise<{ run: ConfigRun; data: Float32Array }> {
  const out = join(dir, `${config}-${round}.f32`);
  const env: Record<string, string> = CONFIGS[config].native ? {} : { TEXT_AS_IMAGE_NATIVE: "off" };
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      fileURLToPath(import.meta.url),
      "--config-child",
      config,
      dir,
      String(chunkSize),
      out,
      profileKernels ? "profile" : "-",
    ],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(result.stdout).trim();
  const last = stdout.split("\n").at(-1) ?? "";
  if (!result.success || !last.startsWith("{")) {
    const stderr = new TextDecoder().decode(result.stderr).trim();
    throw new Error(
      `USE-lite configuration ${config} (${CONFIGS[config].what}) failed (exit ${result.code}):` +
        `\n${stderr.split("\n").slice(-8).join("\n")}`,
    );
  }
  const bytes = await Deno.readFile(out);
  await Deno.remove(out);
  return {
    run: JSON.parse(last) as ConfigRun,
    data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4),
  };
}

/** Largest |a − b| over the values, and max over rows of ‖a − b‖ / ‖b‖ (`cols` per row). */
export function matrixDifference(
  a: Float32Array,
  b: Float32Array,
  cols: number,
): { maxAbs: number; maxRowRelative: number } {
  if (a.length !== b.length) return { maxAbs: Infinity, maxRowRelative: Infinity };
  let maxAbs = 0, maxRowRelative = 0;
  for (let r = 0; r * cols < a.length; r++) {
    let diff = 0, norm = 0;
    for (let c = r * cols; c < (r + 1) * cols; c++) {
      const d = Math.abs(a[c] - b[c]);
      maxAbs = Math.max(maxAbs, d);
      diff += d * d;
      norm += b[c] * b[c];
    }
    maxRowRelative = Math.max(maxRowRelative, Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-30));
  }
  return { maxAbs, maxRowRelative };
}

/** Runs the bench; returns the exit code (1 when a review tokenises differently). */
async function main(): Promise<number> {
  const i = Deno.args.indexOf("--reviews");
  const count = i >= 0 ? Number(Deno.args[i + 1]) : 1000;
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`--reviews must be a positive integer, not ${Deno.args[i + 1]}`);
  }
  const r = Deno.args.indexOf("--rounds");
  const rounds = r >= 0 ? Number(Deno.args[r + 1]) : 3;
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`--rounds must be a positive integer, not ${Deno.args[r + 1]}`);
  }
  const pairedCount = Math.min(250, count);

  console.log(`bench embed: ${count} IMDB reviews`);
  const reviews = stratifiedSample(await loadImdb(), count, 7);
  const texts = textsOf(reviews);
  const figures: Record<string, unknown> = { reviews: count };
  figures.rss_before_mb = mb(Deno.memoryUsage().rss);

  // ---- USE-lite ----------------------------------------------------------------------------
  const use = await UseLiteEncoder.load();
  await use.encode(texts.slice(0, 4)); // warm-up: kernels compiled, weights uploaded
  figures.use_lite_kernels = nativeStatusText();
  const useRun = await measured(() => use.encode(texts));
  figures.use_lite_reviews_per_s = Number((count / useRun.seconds).toFixed(2));
  figures.use_lite_seconds = Number(useRun.seconds.toFixed(1));
  figures.use_lite_peak_rss_mb = mb(useRun.peakRss);
  figures.use_lite_features = useRun.value.shape[1];
  console.log(
    `USE-lite [${figures.use_lite_kernels}]: ${count} reviews in ${
      useRun.seconds.toFixed(1)
    } s = ` +
      `${figures.use_lite_reviews_per_s} reviews/s, peak RSS ${figures.use_lite_peak_rss_mb} MB ` +
      `(${useRun.value.shape[1]} features)`,
  );
  // Paired: all taps vs the stock output alone, alternating, on the same reviews.
  const paired = texts.slice(0, pairedCount);
  let tapsSeconds = 0;
  let stockSeconds = 0;
  for (let round = 0; round < 2; round++) {
    const stock = await measured(() =>
      use.encode(paired, { layers: [USE_LITE_SENTENCE_EMBEDDING] })
    );
    const taps = await measured(() => use.encode(paired));
    stockSeconds += stock.seconds;
    tapsSeconds += taps.seconds;
  }
  figures.use_lite_stock_output_reviews_per_s = Number(
    (2 * pairedCount / stockSeconds).toFixed(2),
  );
  figures.use_lite_taps_time_ratio = Number((tapsSeconds / stockSeconds).toFixed(3));
  console.log(
    `USE-lite on ${pairedCount} reviews: stock output ` +
      `${figures.use_lite_stock_output_reviews_per_s} reviews/s; reading the layers takes ` +
      `${figures.use_lite_taps_time_ratio}x its time`,
  );

  // ---- USE-lite: embedTexts in four configurations, each in its own process ---------------
  // The same reviews and chunks every time, a fresh store each time; the configurations
  // alternate (the order rotates every round) and are compared by their medians.
  const configs = Object.keys(CONFIGS) as Config[];
  const parallelTexts = texts.slice(0, Math.min(240, count));
  const parallelChunk = Math.ceil(parallelTexts.length / 8);
  const n = parallelTexts.length;
  const useCols = useRun.value.shape[1];
  const runs = Object.fromEntries(configs.map((c) => [c, [] as ConfigRun[]])) as Record<
    Config,
    ConfigRun[]
  >;
  const vectors = Object.fromEntries(configs.map((c) => [c, [] as Float32Array[]])) as Record<
    Config,
    Float32Array[]
  >;
  const jobDir = await Deno.makeTempDir({ prefix: "bench-embed-job-" });
  try {
    await Deno.writeTextFile(join(jobDir, "texts.json"), JSON.stringify(parallelTexts));
    for (let round = 0; round < rounds; round++) {
      const order = configs.map((_, k) => configs[(k + round) % configs.length]);
      for (const config of order) {
        const profile = round === 0 && config === "native_one_thread";
        const { run, data } = await runConfig(config, jobDir, parallelChunk, round, profile);
        runs[config].push(run);
        vectors[config].push(data);
      }
    }
  } finally {
    await Deno.remove(jobDir, { recursive: true });
  }
  const flops = useLiteFlops(useLiteDefaultFolder());
  const subsetFlops = parallelTexts.reduce(
    (f, t) => f + flopsPerReview(flops, use.tokenize(t).length),
    0,
  );
  const rate: Record<string, number> = {};
  const peak: Record<string, number> = {};
  figures.use_lite_parallel_reviews = n;
  figures.use_lite_parallel_chunk_size = parallelChunk;
  figures.use_lite_parallel_workers = WORKERS;
  figures.use_lite_parallel_rounds = rounds;
  figures.use_lite_mflop_per_review = Number((subsetFlops / n / 1e6).toFixed(1));
  for (const config of configs) {
    const seconds = median(runs[config].map((r) => r.seconds));
    rate[config] = n / seconds;
    peak[config] = median(runs[config].map((r) => r.peak_rss_mb));
    figures[`use_lite_${config}_kernels`] = runs[config][0].kernels;
    figures[`use_lite_${config}_reviews_per_s`] = Number(rate[config].toFixed(2));
    figures[`use_lite_${config}_peak_rss_mb`] = Number(peak[config].toFixed(1));
    figures[`use_lite_${config}_gflop_per_s`] = Number((subsetFlops / seconds / 1e9).toFixed(2));
    if (CONFIGS[config].workers > 0) {
      figures[`use_lite_${config}_start_seconds`] = Number(
        median(runs[config].map((r) => r.start_seconds)).toFixed(2),
      );
    }
  }
  const wasmRate = rate.wasm_one_thread;
  const bestNative: Config = rate.native_workers > rate.native_one_thread
    ? "native_workers"
    : "native_one_thread";
  const speedup = rate[bestNative] / wasmRate;
  // the same configuration on today's kernels: one thread against one thread, workers against
  // workers (each worker holds its own copy of the model and its own heap)
  const sameOnWasm: Config = bestNative === "native_workers" ? "wasm_workers" : "wasm_one_thread";
  const memory = peak[bestNative] / peak[sameOnWasm];
  figures.use_lite_memory_compared_with = sameOnWasm;
  figures.use_lite_native_best = bestNative;
  figures.use_lite_native_one_thread_speedup_over_wasm = Number(
    (rate.native_one_thread / wasmRate).toFixed(3),
  );
  figures.use_lite_native_workers_speedup_over_wasm = Number(
    (rate.native_workers / wasmRate).toFixed(3),
  );
  figures.use_lite_wasm_workers_speedup_over_wasm = Number(
    (rate.wasm_workers / wasmRate).toFixed(3),
  );
  for (const config of ["native_one_thread", "native_workers", "wasm_workers"] as const) {
    figures[`use_lite_${config}_peak_memory_vs_wasm`] = Number(
      (peak[config] / peak.wasm_one_thread).toFixed(3),
    );
  }
  // Agreement: native vectors against the wasm main thread's; native main thread against
  // native workers; wasm main thread against wasm workers (bitwise before the native kernels).
  const wasmReference = vectors.wasm_one_thread[0];
  const worst = (pairs: [Float32Array, Float32Array][]) =>
    pairs.map(([x, y]) => matrixDifference(x, y, useCols)).reduce((w, d) => ({
      maxAbs: Math.max(w.maxAbs, d.maxAbs),
      maxRowRelative: Math.max(w.maxRowRelative, d.maxRowRelative),
    }), { maxAbs: 0, maxRowRelative: 0 });
  const nativeVsWasm = worst(
    [...vectors.native_one_thread, ...vectors.native_workers].map((v) => [v, wasmReference]),
  );
  const nativeOne = vectors.native_one_thread[0];
  const nativeParallel = worst(
    [...vectors.native_one_thread.slice(1), ...vectors.native_workers].map((v) => [v, nativeOne]),
  );
  const wasmParallel = worst(
    [...vectors.wasm_one_thread.slice(1), ...vectors.wasm_workers].map((v) => [v, wasmReference]),
  );
  figures.use_lite_native_max_rel_diff_vs_wasm = Number(
    nativeVsWasm.maxRowRelative.toExponential(2),
  );
  figures.use_lite_native_max_abs_diff_vs_wasm = Number(nativeVsWasm.maxAbs.toExponential(2));
  figures.use_lite_native_parallel_max_rel_diff = Number(
    nativeParallel.maxRowRelative.toExponential(2),
  );
  figures.use_lite_native_parallel_max_abs_diff = Number(nativeParallel.maxAbs.toExponential(2));
  figures.use_lite_wasm_parallel_max_abs_diff = Number(wasmParallel.maxAbs.toExponential(2));
  // Where the native main thread's time goes, per chunk (medians over the rounds).
  const chunks = Math.ceil(n / parallelChunk);
  const nativeRuns = runs.native_one_thread;
  const perChunk = (f: (r: ConfigRun) => number) =>
    Number((median(nativeRuns.map(f)) / chunks).toFixed(1));
  const gemmMs = median(nativeRuns.map((r) => r.native.gemm_ms));
  const gemmFlops = median(nativeRuns.map((r) => r.native.gemm_flops));
  const kernelMs = nativeRuns[0].kernel_ms ?? {};
  const kernelTotal = Object.values(kernelMs).reduce((a, b) => a + b, 0);
  const chunkMs = nativeRuns[0].profiled_chunk_ms ?? 0;
  const topKernels = Object.entries(kernelMs).sort((x, y) => y[1] - x[1]).slice(0, 10);
  figures.use_lite_native_profile = {
    ms_per_chunk: perChunk((r) => r.seconds * 1000),
    gemm_ms_per_chunk: perChunk((r) => r.native.gemm_ms),
    other_native_ms_per_chunk: perChunk((r) => r.native.other_ms),
    rest_ms_per_chunk: perChunk((r) => r.seconds * 1000 - r.native.gemm_ms - r.native.other_ms),
    gemm_calls_per_chunk: perChunk((r) => r.native.gemm_calls),
    gemm_gflop_per_s: Number((gemmMs > 0 ? gemmFlops / gemmMs / 1e6 : 0).toFixed(2)),
    profiled_chunk_ms: Number(chunkMs.toFixed(1)),
    profiled_chunk_kernels_ms: Number(kernelTotal.toFixed(1)),
    profiled_chunk_outside_kernels_ms: Number((chunkMs - kernelTotal).toFixed(1)),
    kernel_ms_per_chunk: Object.fromEntries(
      topKernels.map(([k, ms]) => [k, Number(ms.toFixed(1))]),
    ),
  };
  for (const config of configs) {
    console.log(
      `USE-lite embedTexts, ${CONFIGS[config].what} [${runs[config][0].kernels}]: ` +
        `${figures[`use_lite_${config}_reviews_per_s`]} reviews/s, ` +
        `${figures[`use_lite_${config}_gflop_per_s`]} GFLOP/s, peak RSS ` +
        `${figures[`use_lite_${config}_peak_rss_mb`]} MB` +
        (CONFIGS[config].workers > 0
          ? ` (workers started in ${figures[`use_lite_${config}_start_seconds`]} s, not counted)`
          : ""),
    );
  }
  console.log(
    `USE-lite on ${n} reviews (chunks of ${parallelChunk}, medians of ${rounds} alternated ` +
      `rounds): best native configuration (${bestNative}) ${
        speedup.toFixed(2)
      }x the wasm main thread, peak ` +
      `memory ${
        memory.toFixed(3)
      }x that of ${sameOnWasm}; native vs wasm: max relative row difference ` +
      `${figures.use_lite_native_max_rel_diff_vs_wasm}; native main thread vs workers ` +
      `${figures.use_lite_native_parallel_max_rel_diff} (max |diff| ` +
      `${figures.use_lite_native_parallel_max_abs_diff}); wasm main thread vs workers max ` +
      `|diff| ${figures.use_lite_wasm_parallel_max_abs_diff}`,
  );
  console.log(
    `USE-lite arithmetic: ${figures.use_lite_mflop_per_review} MFLOP per review on average ` +
      `(graph's matrix products: ${(flops.perToken / 1e6).toFixed(2)} MFLOP per token, ` +
      `attention 4·T²·d with d = ${flops.attentionWidths.join(", ")}, ` +
      `${(flops.perReview / 1e6).toFixed(2)} MFLOP per review after pooling; element-wise ops ` +
      `and padding not counted)`,
  );
  console.log(
    `USE-lite native main thread, per chunk of ${parallelChunk}: ` +
      JSON.stringify(figures.use_lite_native_profile),
  );
  await use.dispose();

  // ---- tiny BERT ---------------------------------------------------------------------------
  const folder = await ensureTinyBert();
  const bert = await BertEncoder.load(folder);
  await bert.encode(texts.slice(0, 4));
  const bertRun = await measured(() => bert.encode(texts));
  figures.tiny_bert_reviews_per_s = Number((count / bertRun.seconds).toFixed(1));
  figures.tiny_bert_seconds = Number(bertRun.seconds.toFixed(2));
  figures.tiny_bert_peak_rss_mb = mb(bertRun.peakRss);
  figures.tiny_bert_layers = `${bert.defaults.layers}`;
  console.log(
    `tiny BERT (${bert.numLayers} layers, hidden ${bert.hiddenSize}): ${count} reviews in ` +
      `${bertRun.seconds.toFixed(2)} s = ${figures.tiny_bert_reviews_per_s} reviews/s, ` +
      `peak RSS ${figures.tiny_bert_peak_rss_mb} MB`,
  );

  /** Runs bench/embed_reference.py on `subset` texts with `threads` PyTorch threads. */
  async function runReference(subset: string[], threads: number) {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(join(dir, "texts.json"), JSON.stringify(subset));
      const stdout = await runPython([
        fileURLToPath(new URL("./embed_reference.py", import.meta.url)),
        folder,
        join(dir, "texts.json"),
        join(dir, "cls.f32"),
        bert.defaults.layers.join(","),
        String(bert.defaults.batchSize),
        "0",
        String(threads),
        String(bert.defaults.maxTokens),
      ], `the PyTorch reference (bench/embed_reference.py, ${threads} thread(s))`);
      const ref = JSON.parse(stdout);
      const bytes = await Deno.readFile(join(dir, "cls.f32"));
      const cls = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      return { ...ref, cls } as {
        reviews_per_second: number;
        peak_rss_mb: number;
        token_ids: number[][];
        cls: Float32Array;
      };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }

  // ---- PyTorch reference: token ids of every review, then [CLS] vectors --------------------
  // One thread on all reviews (values compared); two threads, as the project's Python
  // references use, on the first 200 (on a loaded 2-core machine PyTorch's two OpenMP
  // threads spin against other processes and run far slower than one).
  const ours: Matrix = bertRun.value;
  const one = await runReference(texts, 1);
  const two = await runReference(texts.slice(0, Math.min(200, count)), 2);
  const mismatches = tokenMismatches(texts.map((t) => bert.tokenize(t)), one.token_ids);
  const cols = ours.shape[1];
  const differing = new Set(mismatches.map((m) => m.review));
  let maxDiff = 0;
  for (let r = 0; r < count; r++) {
    if (differing.has(r)) continue;
    for (let c = 0; c < cols; c++) {
      maxDiff = Math.max(maxDiff, Math.abs(ours.data[r * cols + c] - one.cls[r * cols + c]));
    }
  }
  await bert.dispose();
  const best = Math.max(one.reviews_per_second, two.reviews_per_second);
  figures.pytorch_1_thread_reviews_per_s = Number(one.reviews_per_second.toFixed(1));
  figures.pytorch_2_threads_reviews_per_s = Number(two.reviews_per_second.toFixed(1));
  figures.pytorch_peak_rss_mb = Number(one.peak_rss_mb.toFixed(1));
  figures.tiny_bert_speedup_vs_pytorch = Number(((count / bertRun.seconds) / best).toFixed(2));
  figures.token_id_mismatches = mismatches.length;
  figures.max_abs_diff_vs_pytorch = Number(maxDiff.toExponential(2));
  console.log(
    `PyTorch reference: ${figures.pytorch_1_thread_reviews_per_s} reviews/s on 1 thread, ` +
      `${figures.pytorch_2_threads_reviews_per_s} on 2 threads, peak RSS ` +
      `${figures.pytorch_peak_rss_mb} MB; ours is ${figures.tiny_bert_speedup_vs_pytorch}x ` +
      `as fast as the better; token ids differ for ${mismatches.length} of ${count} reviews; ` +
      `max |diff| of [CLS] vectors ${maxDiff}` +
      (mismatches.length > 0 ? " (over the reviews whose token ids agree)" : ""),
  );
  if (mismatches.length > 0) {
    const shown = mismatches.slice(0, 3);
    console.error(
      `Token ids differ from the reference tokenizer for ${mismatches.length} of ${count} ` +
        `reviews; the first ${shown.length}:\n` +
        shown.map((m) => describeTokenMismatch(m, texts[m.review])).join("\n"),
    );
  }

  const useRatio = figures.use_lite_taps_time_ratio as number;
  console.log(JSON.stringify({
    bench: "embed",
    figures,
    targets: {
      token_id_mismatches: {
        value: mismatches.length,
        target: "= 0",
        met: mismatches.length === 0,
      },
      max_abs_diff_vs_pytorch: {
        value: figures.max_abs_diff_vs_pytorch,
        target: "<= 1e-4",
        met: maxDiff <= 1e-4 && mismatches.length === 0,
      },
      use_lite_taps_time_ratio: {
        value: useRatio,
        target: "<= 1.25",
        met: useRatio <= 1.25,
      },
      // The issue's goal: 4x today's reviews/s (the wasm kernels on one thread) on 2 cores.
      use_lite_speedup_over_wasm: {
        value: Number(speedup.toFixed(3)),
        target: ">= 4",
        met: speedup >= 4,
      },
      use_lite_native_identical: {
        value: figures.use_lite_native_max_rel_diff_vs_wasm as number,
        target: "<= 1e-4",
        met: nativeVsWasm.maxRowRelative <= 1e-4,
      },
      use_lite_parallel_identical: {
        value: nativeParallel.maxAbs,
        target: "= 0",
        met: nativeParallel.maxAbs === 0,
      },
      use_lite_peak_memory_vs_wasm: {
        value: Number(memory.toFixed(3)),
        target: "<= 1.25",
        met: memory <= 1.25,
      },
    },
  }));
  return mismatches.length > 0 ? 1 : 0;
}

if (Deno.args[0] === "--config-child") {
  const [, config, dir, chunk, out, profile] = Deno.args;
  if (!(config in CONFIGS)) throw new Error(`unknown configuration ${config}`);
  await configChild(config as Config, dir, Number(chunk), out, profile === "profile");
  Deno.exit(0); // do not wait for ended workers
} else if (import.meta.main) {
  let code: number;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench/embed.ts failed: ${(e as Error).stack ?? e}`);
    code = 1;
  }
  Deno.exit(code);
}
