/**
 * Bench of the text encoders on 1,000 real IMDB reviews (stratified sample, seed 7): reviews
 * per second and peak memory (RSS sampled every 5 ms) for
 *
 * - USE-lite (TF.js wasm), default recipe: mean of layers 1, 2 + sentence embedding,
 *   truncated at 128 pieces, batches of 16; side by side on the first 250 reviews, the
 *   model's stock output alone (hidden state 3), to show what reading the intermediate
 *   layers costs;
 * - the tiny BERT of tools/make_tiny_bert.py (onnxruntime-node), default recipe: [CLS] of
 *   hidden states 0..2, truncated at 512 tokens, one review per run; side by side, the same
 *   model in PyTorch (bench/embed_reference.py, its own tokenizer; 1 thread on all reviews,
 *   2 threads on the first 200), whose [CLS] vectors must agree with ours (1e-4) for every
 *   review whose token ids agree.
 *
 * No embedding store is used: every figure is a fresh encode. Ends with one JSON line.
 *
 * Usage: deno run -A bench/embed.ts [--reviews N]
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadImdb, stratifiedSample, textsOf } from "../lib/data/mod.ts";
import { BertEncoder, USE_LITE_SENTENCE_EMBEDDING, UseLiteEncoder } from "../lib/embed/mod.ts";
import type { Matrix } from "../lib/types.ts";
import { ensureTinyBert, SYSTEM_PYTHON } from "../tools/tiny_bert.ts";

const i = Deno.args.indexOf("--reviews");
const count = i >= 0 ? Number(Deno.args[i + 1]) : 1000;
const pairedCount = Math.min(250, count);
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

console.log(`bench embed: ${count} IMDB reviews`);
const reviews = stratifiedSample(await loadImdb(), count, 7);
const texts = textsOf(reviews);
const figures: Record<string, number | string | null> = { reviews: count };
figures.rss_before_mb = mb(Deno.memoryUsage().rss);

// ---- USE-lite ------------------------------------------------------------------------------
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
  const stock = await measured(() => use.encode(paired, { layers: [USE_LITE_SENTENCE_EMBEDDING] }));
  const taps = await measured(() => use.encode(paired));
  stockSeconds += stock.seconds;
  tapsSeconds += taps.seconds;
}
figures.use_lite_stock_output_reviews_per_s = Number((2 * pairedCount / stockSeconds).toFixed(2));
figures.use_lite_taps_time_ratio = Number((tapsSeconds / stockSeconds).toFixed(3));
console.log(
  `USE-lite on ${pairedCount} reviews: stock output ${figures.use_lite_stock_output_reviews_per_s} ` +
    `reviews/s; reading the layers takes ${figures.use_lite_taps_time_ratio}x its time`,
);
await use.dispose();

// ---- tiny BERT -----------------------------------------------------------------------------
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
    const out = await new Deno.Command(SYSTEM_PYTHON, {
      args: [
        fileURLToPath(new URL("./embed_reference.py", import.meta.url)),
        folder,
        join(dir, "texts.json"),
        join(dir, "cls.f32"),
        bert.defaults.layers.join(","),
        String(bert.defaults.batchSize),
        "0",
        String(threads),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr).slice(-1500));
    const ref = JSON.parse(new TextDecoder().decode(out.stdout));
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

async function pytorchReference(ours: Matrix): Promise<void> {
  try {
    // One thread on all reviews (values compared); two threads, as the project's Python
    // references use, on the first 200 (on a loaded 2-core machine PyTorch's two OpenMP
    // threads spin against other processes and run far slower than one).
    const one = await runReference(texts, 1);
    const two = await runReference(texts.slice(0, Math.min(200, count)), 2);
    const cols = ours.shape[1];
    let mismatched = 0;
    let maxDiff = 0;
    for (let r = 0; r < count; r++) {
      const same = JSON.stringify(bert.tokenize(texts[r])) === JSON.stringify(one.token_ids[r]);
      if (!same) {
        mismatched++;
        continue;
      }
      for (let c = 0; c < cols; c++) {
        maxDiff = Math.max(maxDiff, Math.abs(ours.data[r * cols + c] - one.cls[r * cols + c]));
      }
    }
    const best = Math.max(one.reviews_per_second, two.reviews_per_second);
    figures.pytorch_1_thread_reviews_per_s = Number(one.reviews_per_second.toFixed(1));
    figures.pytorch_2_threads_reviews_per_s = Number(two.reviews_per_second.toFixed(1));
    figures.pytorch_peak_rss_mb = Number(one.peak_rss_mb.toFixed(1));
    figures.tiny_bert_speedup_vs_pytorch = Number(((count / bertRun.seconds) / best).toFixed(2));
    figures.token_id_mismatches = mismatched;
    figures.max_abs_diff_vs_pytorch = Number(maxDiff.toExponential(2));
    console.log(
      `PyTorch reference: ${figures.pytorch_1_thread_reviews_per_s} reviews/s on 1 thread, ` +
        `${figures.pytorch_2_threads_reviews_per_s} on 2 threads, peak RSS ` +
        `${figures.pytorch_peak_rss_mb} MB; ours is ${figures.tiny_bert_speedup_vs_pytorch}x ` +
        `as fast as the better; token ids differ for ${mismatched} reviews; max |diff| of ` +
        `[CLS] vectors ${maxDiff}`,
    );
  } catch (e) {
    console.error(`PyTorch reference not run: ${(e as Error).message}`);
    figures.max_abs_diff_vs_pytorch = null;
  }
}
await pytorchReference(bertRun.value);
await bert.dispose();

const diff = figures.max_abs_diff_vs_pytorch as number | null;
const mismatches = (figures.token_id_mismatches as number | undefined) ?? count;
console.log(JSON.stringify({
  bench: "embed",
  figures,
  targets: {
    max_abs_diff_vs_pytorch: {
      value: diff,
      target: "<= 1e-4",
      met: diff !== null && diff <= 1e-4 && mismatches < count,
    },
    use_lite_taps_time_ratio: {
      value: figures.use_lite_taps_time_ratio,
      target: "<= 1.25",
      met: (figures.use_lite_taps_time_ratio as number) <= 1.25,
    },
  },
}));
