/**
 * Bench of the text encoders on 1,000 real IMDB reviews (stratified sample, seed 7): reviews
 * per second and peak memory (RSS sampled every 5 ms) for
 *
 * - USE-lite (TF.js wasm), default recipe: mean of layers 1, 2 + sentence embedding,
 *   truncated at 128 pieces, batches of 16; side by side on the first 250 reviews, the
 *   model's stock output alone (hidden state 3), to show what reading the intermediate
 *   layers costs; and `embedTexts` with 2 encoder workers (lib/embed/workers.ts) against
 *   `embedTexts` in this thread on the first 240 reviews (chunks of 30, a fresh temporary
 *   store each time), alternated over 3 rounds and compared by their medians: reviews per
 *   second, the ratio (target `use_lite_parallel_speedup`: the issue's goal of 4× on 2
 *   cores, which 2 workers alone cannot reach), peak RSS of each, the workers' start time,
 *   and the largest |difference| between the two matrices (target 0: a chunk is encoded
 *   the same way in any thread); plus the achieved GFLOP/s, from the FLOPs per review
 *   counted on the model's graph ({@link useLiteFlops});
 * - the tiny BERT of tools/make_tiny_bert.py (onnxruntime-node), default recipe: [CLS] of
 *   hidden states 0..2, truncated at 512 tokens, one review per run; side by side, the same
 *   model in PyTorch (bench/embed_reference.py, its own tokenizer; 1 thread on all reviews,
 *   2 threads on the first 200). Every review must tokenise to the same ids on both sides
 *   (target `token_id_mismatches`: 0; the first differing reviews are printed with both
 *   token lists) and every [CLS] vector must agree with PyTorch's to 1e-4.
 *
 * No embedding store is used: every figure is a fresh encode. Ends with one JSON line. Exits
 * non-zero when any review tokenises differently, and when the PyTorch reference cannot run
 * (Debian's python3-torch missing, or its script failing): a bench never reports a missing
 * reference as a null figure.
 *
 * Usage: deno run -A bench/embed.ts [--reviews N]
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadImdb, stratifiedSample, textsOf } from "../lib/data/mod.ts";
import {
  BertEncoder,
  embedTexts,
  EncoderWorkers,
  USE_LITE_SENTENCE_EMBEDDING,
  useLiteDefaultFolder,
  UseLiteEncoder,
} from "../lib/embed/mod.ts";
import type { Matrix } from "../lib/types.ts";
import { ensureTinyBert, SYSTEM_PYTHON } from "../tools/tiny_bert.ts";
import { pythonFailure } from "./data.ts";

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

/** Runs the bench; returns the exit code (1 when a review tokenises differently). */
async function main(): Promise<number> {
  const i = Deno.args.indexOf("--reviews");
  const count = i >= 0 ? Number(Deno.args[i + 1]) : 1000;
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`--reviews must be a positive integer, not ${Deno.args[i + 1]}`);
  }
  const pairedCount = Math.min(250, count);

  console.log(`bench embed: ${count} IMDB reviews`);
  const reviews = stratifiedSample(await loadImdb(), count, 7);
  const texts = textsOf(reviews);
  const figures: Record<string, number | string> = { reviews: count };
  figures.rss_before_mb = mb(Deno.memoryUsage().rss);

  // ---- USE-lite ----------------------------------------------------------------------------
  const use = await UseLiteEncoder.load();
  await use.encode(texts.slice(0, 4)); // warm-up: kernels compiled, weights uploaded
  const useRun = await measured(() => use.encode(texts));
  figures.use_lite_reviews_per_s = Number((count / useRun.seconds).toFixed(2));
  figures.use_lite_seconds = Number(useRun.seconds.toFixed(1));
  figures.use_lite_peak_rss_mb = mb(useRun.peakRss);
  figures.use_lite_features = useRun.value.shape[1];
  console.log(
    `USE-lite: ${count} reviews in ${useRun.seconds.toFixed(1)} s = ` +
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

  // ---- USE-lite: embedTexts on 2 encoder workers vs this thread ----------------------------
  // The same reviews and chunks both ways, a fresh store each time, alternated (which goes
  // first swaps every round), compared by their medians. Each worker round starts the
  // workers (timed apart), encodes, and ends them. The one-thread peak RSS is that of round
  // 0, which runs before any worker has started (memory of ended workers partly stays in
  // the process); the workers' is the largest of their rounds.
  const WORKERS = 2;
  const ROUNDS = 3;
  const parallelTexts = texts.slice(0, Math.min(240, count));
  const parallelChunk = Math.ceil(parallelTexts.length / 8);
  const oneSeconds: number[] = [];
  const workerSeconds: number[] = [];
  const startSeconds: number[] = [];
  let onePeak = 0;
  let workersPeak = 0;
  let reference: Matrix | undefined;
  let maxParallelDiff = 0;
  const compare = (m: Matrix) => {
    if (!reference) {
      reference = m;
      return;
    }
    if (m.data.length !== reference.data.length) maxParallelDiff = Infinity;
    for (let k = 0; k < m.data.length; k++) {
      maxParallelDiff = Math.max(maxParallelDiff, Math.abs(m.data[k] - reference.data[k]));
    }
  };
  const inTempStore = async <T>(fn: (root: string) => Promise<T>): Promise<T> => {
    const root = await Deno.makeTempDir({ prefix: "bench-embed-" });
    try {
      return await fn(root);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  };
  const options = { chunkSize: parallelChunk, progress: false as const };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 === 0 ? ["one", "workers"] : ["workers", "one"]) {
      if (mode === "one") {
        const run = await measured(() =>
          inTempStore((root) => embedTexts(use, parallelTexts, { ...options, root }))
        );
        oneSeconds.push(run.seconds);
        // Round 0's: later rounds' RSS still holds memory the ended workers left behind.
        if (round === 0) onePeak = run.peakRss;
        compare(run.value);
      } else {
        let encodeSeconds = 0;
        const run = await measured(async () => {
          const t0 = performance.now();
          const workers = await EncoderWorkers.start({ kind: "use-lite" }, WORKERS);
          try {
            startSeconds.push((performance.now() - t0) / 1000);
            const t1 = performance.now();
            const m = await inTempStore((root) =>
              embedTexts(use, parallelTexts, { ...options, root, workers })
            );
            encodeSeconds = (performance.now() - t1) / 1000;
            return m;
          } finally {
            await workers.dispose();
          }
        });
        workerSeconds.push(encodeSeconds);
        workersPeak = Math.max(workersPeak, run.peakRss);
        compare(run.value);
      }
    }
  }
  const n = parallelTexts.length;
  const oneRate = n / median(oneSeconds);
  const workersRate = n / median(workerSeconds);
  const speedup = workersRate / oneRate;
  figures.use_lite_parallel_reviews = n;
  figures.use_lite_parallel_chunk_size = parallelChunk;
  figures.use_lite_parallel_workers = WORKERS;
  figures.use_lite_one_thread_reviews_per_s = Number(oneRate.toFixed(2));
  figures.use_lite_workers_reviews_per_s = Number(workersRate.toFixed(2));
  figures.use_lite_parallel_speedup = Number(speedup.toFixed(3));
  figures.use_lite_one_thread_peak_rss_mb = mb(onePeak);
  figures.use_lite_workers_peak_rss_mb = mb(workersPeak);
  figures.use_lite_workers_start_seconds = Number(median(startSeconds).toFixed(2));
  figures.use_lite_parallel_max_abs_diff = maxParallelDiff;
  console.log(
    `USE-lite embedTexts on ${n} reviews (chunks of ${parallelChunk}, medians of ${ROUNDS} ` +
      `alternated rounds): one thread ${figures.use_lite_one_thread_reviews_per_s} reviews/s ` +
      `(peak RSS ${figures.use_lite_one_thread_peak_rss_mb} MB), ${WORKERS} workers ` +
      `${figures.use_lite_workers_reviews_per_s} reviews/s (peak RSS ` +
      `${figures.use_lite_workers_peak_rss_mb} MB, started in ` +
      `${figures.use_lite_workers_start_seconds} s, not counted): ${speedup.toFixed(2)}x; ` +
      `max |diff| between the matrices ${maxParallelDiff}`,
  );
  // Achieved arithmetic rate, from the FLOPs counted on the graph for each review's tokens.
  const flops = useLiteFlops(useLiteDefaultFolder());
  const subsetFlops = parallelTexts.reduce(
    (f, t) => f + flopsPerReview(flops, use.tokenize(t).length),
    0,
  );
  figures.use_lite_mflop_per_review = Number((subsetFlops / n / 1e6).toFixed(1));
  figures.use_lite_one_thread_gflop_per_s = Number(
    (subsetFlops / median(oneSeconds) / 1e9).toFixed(2),
  );
  figures.use_lite_workers_gflop_per_s = Number(
    (subsetFlops / median(workerSeconds) / 1e9).toFixed(2),
  );
  console.log(
    `USE-lite arithmetic: ${figures.use_lite_mflop_per_review} MFLOP per review on average ` +
      `(graph's matrix products: ${(flops.perToken / 1e6).toFixed(2)} MFLOP per token, ` +
      `attention 4·T²·d with d = ${flops.attentionWidths.join(", ")}, ` +
      `${(flops.perReview / 1e6).toFixed(2)} MFLOP per review after pooling; element-wise ops ` +
      `and padding not counted): ${figures.use_lite_one_thread_gflop_per_s} GFLOP/s on one ` +
      `thread, ${figures.use_lite_workers_gflop_per_s} GFLOP/s on ${WORKERS} workers`,
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
      // The goal: 4x today's reviews/s on 2 cores (workers vs one thread, same run).
      use_lite_parallel_speedup: {
        value: figures.use_lite_parallel_speedup,
        target: ">= 4",
        met: speedup >= 4,
      },
      use_lite_parallel_identical: {
        value: maxParallelDiff,
        target: "= 0",
        met: maxParallelDiff === 0,
      },
    },
  }));
  return mismatches.length > 0 ? 1 : 0;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench/embed.ts failed: ${(e as Error).stack ?? e}`);
    code = 1;
  }
  Deno.exit(code);
}
