/**
 * Bench of a BERT-base-sized encoder (12 layers, hidden 768, 12 heads, feed-forward 3072,
 * random weights from tools/make_tiny_bert.py, real bert-base-uncased vocabulary) run by our
 * library's ONNX path (`BertEncoder` of lib/embed/bert.ts: onnxruntime-node, its default
 * model file `onnx/model.onnx`, graph optimisation "all", 2 intra-op threads) against the
 * same weights in PyTorch (bench/bert_reference.py: make_tiny_bert.py's own module rebuilt
 * from the seed, float32, eager, `torch.set_num_threads(2)`), on the same CPU, at 128 and 512
 * tokens.
 *
 * Texts: IMDB reviews (stratified sample, seed 7), consecutive reviews joined until each
 * text is far longer than the longest length, so that every text is cut to exactly N tokens
 * ([CLS] … [SEP]). Our side tokenises them (transformers.js, as `encode` does) and hands the
 * token ids to PyTorch: both see exactly the same ids. Our figure is `encode()` as a user
 * calls it, text in, pooled vectors out, with the library's defaults (one review per run,
 * [CLS] of hidden states 6..11); PyTorch's starts from the token ids (its side does no
 * tokenisation, so the comparison slightly favours PyTorch).
 *
 * Each side runs in its own process (ours: this file with `--ours JOB`); they alternate for
 * `--rounds` rounds (which goes first swaps every round); within a process each length gets
 * one untimed warm-up review, then every review is timed. Figures are the medians over the
 * rounds: reviews per second of each side at each length, their ratio (ours / PyTorch),
 * achieved GFLOP/s (matrix products only: per token per layer 2·(4·h² + 2·h·i), plus the
 * attention's 4·N·h per token), and each side's peak RSS during that length's run (VmHWM
 * after resetting it through /proc/self/clear_refs once the model is loaded; also each
 * side's peak while loading). After its timed run, our side also profiles its stages on its
 * first 4 batches (tokenisation, session run, the rest of `encode`: pooling, checks, copies;
 * medians over all rounds).
 *
 * Agreement: the [CLS] vectors of hidden states 6..11 (layer-major, 4,608 values per review)
 * of both sides on the same ids, max over reviews of ‖ours − PyTorch‖ / ‖PyTorch‖, must be
 * ≤ 1e-4. PyTorch's rebuilt weights must also reproduce the reference.json that
 * make_tiny_bert.py wrote with the exported model (checked before anything is timed).
 *
 * Ends with one JSON line; targets `bert_base_128_ratio` and `bert_base_512_ratio` (ours /
 * PyTorch reviews per second, ≥ 1) and `bert_base_agreement` (≤ 1e-4). Exits 1 without a
 * JSON line when a side cannot run (Debian's python3-torch missing, a process failing).
 * The model (≈ 1 GB of ONNX files) is made once, in about 15 s, into
 * `dataDir()/fixtures/tiny-bert-l12-h768-a12-i3072-s0-*`.
 *
 * Usage: deno run -A bench/bert.ts [--rounds 3] [--reviews 8] [--lengths 128,512]
 *            [--batch N] [--threads 2] [--seed 0]
 *
 * `--batch` sets the reviews per run on both sides (default: the library's, 1); the targets
 * are meant for the default.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { projectRoot } from "../lib/config.ts";
import { BertEncoder } from "../lib/embed/bert.ts";
import { ensureTinyBert } from "../tools/tiny_bert.ts";
import { failureText, PYTHON, pythonFailure, requirePython, resetPeakRss } from "./data.ts";

const REFERENCE = "the PyTorch reference (bench/bert_reference.py)";
const REFERENCE_SCRIPT = fileURLToPath(new URL("./bert_reference.py", import.meta.url));
const THIS_FILE = fileURLToPath(import.meta.url);

/** The model's shape (make_tiny_bert.py options). */
export interface BertShape {
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
}

/** BERT-base. */
export const BERT_BASE: BertShape = { layers: 12, hidden: 768, heads: 12, intermediate: 3072 };

/** Options of {@link benchBert}. */
export interface BertBenchOptions {
  /** Model shape (default {@link BERT_BASE}). */
  shape?: BertShape;
  /** Weight seed (default 0). */
  seed?: number;
  /** Alternated rounds (default 3). */
  rounds?: number;
  /** Reviews timed per length and round (default 8). */
  reviews?: number;
  /** Token counts, special tokens included (default [128, 512]). */
  lengths?: number[];
  /** Reviews per run on both sides (default: the library's default batch size). */
  batch?: number;
  /** onnxruntime intra-op threads and PyTorch threads (default 2). */
  threads?: number;
  /** The texts (each must reach the longest length); default: joined IMDB reviews. */
  texts?: string[];
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
}

/** The bench's closing line. */
export interface BertBenchLine {
  bench: "bert";
  figures: Record<string, number | string>;
  targets: Record<string, { value: number; target: string; met: boolean }>;
}

/**
 * FLOPs of the matrix products of one review of `tokens` tokens: per layer and token
 * 2·(4·h² + 2·h·i) for the Q, K, V, output and feed-forward projections, plus 4·N·h for the
 * attention (Q·Kᵀ and weights·V). Embeddings, layer norms, softmax and GELU are not counted.
 */
export function bertFlops(shape: BertShape, tokens: number): number {
  const { layers, hidden: h, intermediate: i } = shape;
  return layers * (tokens * 2 * (4 * h * h + 2 * h * i) + 4 * tokens * tokens * h);
}

/** Max over the rows of ‖a − b‖ / ‖b‖ for row-major matrices of `cols` columns. */
export function maxRelativeRowDifference(a: Float32Array, b: Float32Array, cols: number): number {
  if (a.length !== b.length || a.length % cols !== 0) {
    throw new Error(`matrices of ${a.length} and ${b.length} values, ${cols} columns`);
  }
  let worst = 0;
  for (let r = 0; r < a.length / cols; r++) {
    let diff = 0;
    let norm = 0;
    for (let c = r * cols; c < (r + 1) * cols; c++) {
      diff += (a[c] - b[c]) ** 2;
      norm += b[c] ** 2;
    }
    const rel = Math.sqrt(diff) / Math.sqrt(norm);
    worst = Math.max(worst, Number.isNaN(rel) ? Infinity : rel);
  }
  return worst;
}

/** The median of `values`. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
const sig = (x: number) => Number(x.toPrecision(3));

// ---- our side (a child process: this file with --ours JOB) ----------------------------------

interface OursJob {
  model: string;
  threads: number;
  batch: number | null;
  texts: string;
  lengths: { tokens: number; ids: string | null; vectors: string | null }[];
}

interface OursLength {
  tokens: number;
  reviews: number;
  seconds: number;
  peak_rss_mb: number;
  /** Stage profile. */
  profile?: StageProfile;
}

/** Milliseconds per review of each batch in turn: tokenise, session run, whole encode(). */
interface StageProfile {
  tokenize_ms: number[];
  run_ms: number[];
  encode_ms: number[];
}

interface OursResult {
  onnxruntime: string;
  model_file: string;
  layers: number[];
  batch: number;
  threads: number;
  load_seconds: number;
  load_peak_rss_mb: number;
  lengths: OursLength[];
}

/** VmHWM or VmRSS of this process, MB. */
function procMb(field: "VmHWM" | "VmRSS"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
    Deno.readTextFileSync("/proc/self/status"),
  );
  if (!m) throw new Error(`/proc/self/status has no ${field}`);
  return Number(m[1]) / 1024;
}

async function writeF32(path: string, data: Float32Array): Promise<void> {
  await Deno.writeFile(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

async function readF32(path: string): Promise<Float32Array> {
  const bytes = await Deno.readFile(path);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** Batches profiled per length and round (each costs twice its timed work). */
const PROFILE_BATCHES = 4;

/** Runs our side of one round, as a user would: load the folder, `encode` the texts. */
async function oursProcess(jobPath: string): Promise<OursResult> {
  const job = JSON.parse(await Deno.readTextFile(jobPath)) as OursJob;
  const t0 = performance.now();
  const encoder = await BertEncoder.load(job.model, { threads: job.threads, silent: true });
  const loadSeconds = (performance.now() - t0) / 1000;
  const loadPeak = procMb("VmHWM");
  const texts = JSON.parse(await Deno.readTextFile(job.texts)) as string[];
  const batch = job.batch ?? encoder.defaults.batchSize;
  const lengths: OursLength[] = [];
  for (const length of job.lengths) {
    const options = { maxTokens: length.tokens, batchSize: batch };
    await encoder.encode(texts.slice(0, 1), options); // warm-up
    resetPeakRss();
    const start = performance.now();
    const vectors = await encoder.encode(texts, options);
    const seconds = (performance.now() - start) / 1000;
    const result: OursLength = {
      tokens: length.tokens,
      reviews: texts.length,
      seconds,
      peak_rss_mb: procMb("VmHWM"),
    };
    // Every text must fill the length: the timed work is then exactly N tokens per review.
    const ids = texts.map((t) => encoder.tokenize(t, length.tokens));
    ids.forEach((row, r) => {
      if (row.length !== length.tokens) {
        throw new Error(`text ${r} has ${row.length} tokens, fewer than ${length.tokens}`);
      }
    });
    // Stage profile, after the timed run: for each of the first batches its tokenisation, its
    // session run alone (hiddenStates: feeds, onnxruntime, every hidden state out) and the
    // whole encode() of it again, so that the three see the same conditions.
    const profile: StageProfile = { tokenize_ms: [], run_ms: [], encode_ms: [] };
    for (let b = 0; b < Math.min(texts.length, PROFILE_BATCHES * batch); b += batch) {
      const slice = texts.slice(b, b + batch);
      const t1 = performance.now();
      const batchIds = slice.map((t) => encoder.tokenize(t, length.tokens));
      const t2 = performance.now();
      await encoder.hiddenStates(batchIds);
      const t3 = performance.now();
      await encoder.encode(slice, options);
      const t4 = performance.now();
      profile.tokenize_ms.push((t2 - t1) / slice.length);
      profile.run_ms.push((t3 - t2) / slice.length);
      profile.encode_ms.push((t4 - t3) / slice.length);
    }
    result.profile = profile;
    if (length.ids) await Deno.writeTextFile(length.ids, JSON.stringify(ids));
    if (length.vectors) await writeF32(length.vectors, vectors.data);
    lengths.push(result);
  }
  const modelFile = encoder.id.slice(encoder.id.lastIndexOf("/") + 1);
  await encoder.dispose();
  return {
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    model_file: modelFile,
    layers: [...encoder.defaults.layers],
    batch,
    threads: job.threads,
    load_seconds: loadSeconds,
    load_peak_rss_mb: loadPeak,
    lengths,
  };
}

// ---- the bench ------------------------------------------------------------------------------

interface ReferenceResult {
  torch: string;
  threads: number;
  load_seconds: number;
  weights_check: number;
  load_peak_rss_mb: number;
  lengths: { tokens: number; reviews: number; seconds: number; peak_rss_mb: number }[];
}

/** Runs `command`; returns its last stdout line parsed as JSON, or throws `failure(stderr)`. */
async function runJson<T>(
  command: string,
  args: string[],
  failure: (code: number, stderr: string) => Error,
): Promise<T> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(command, {
      args,
      cwd: projectRoot,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw failure(-1, `cannot start ${command}: ${(e as Error).message}`);
  }
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw failure(out.code, stderr);
  const last = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(last) as T;
  } catch {
    throw failure(
      out.code,
      `printed no JSON line (stdout ends ${JSON.stringify(last)})\n${stderr}`,
    );
  }
}

/** IMDB reviews (stratified sample, seed 7), consecutive ones joined to ≥ `chars` characters. */
async function imdbTexts(count: number, chars: number): Promise<string[]> {
  const { loadImdb, stratifiedSample, textsOf } = await import("../lib/data/mod.ts");
  const reviews = textsOf(stratifiedSample(await loadImdb(), 1000, 7));
  const texts: string[] = [];
  let next = 0;
  for (let t = 0; t < count; t++) {
    const parts: string[] = [];
    let length = 0;
    while (length < chars) {
      const review = reviews[next++ % reviews.length];
      parts.push(review);
      length += review.length + 1;
    }
    texts.push(parts.join(" "));
  }
  return texts;
}

/** Runs the bench; returns its closing line. Throws when a side cannot run. */
export async function benchBert(options: BertBenchOptions = {}): Promise<BertBenchLine> {
  const shape = options.shape ?? BERT_BASE;
  const seed = options.seed ?? 0;
  const rounds = options.rounds ?? 3;
  const count = options.texts?.length ?? options.reviews ?? 8;
  const lengths = options.lengths ?? [128, 512];
  const threads = options.threads ?? 2;
  const log = options.log ?? console.log;
  for (const [name, v] of Object.entries({ rounds, reviews: count, threads })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  }
  if (options.batch !== undefined && !(Number.isInteger(options.batch) && options.batch >= 1)) {
    throw new Error(`batch must be a positive integer`);
  }
  if (lengths.length === 0 || lengths.some((n) => !Number.isInteger(n) || n < 3)) {
    throw new Error(`lengths must be integers ≥ 3, not ${lengths}`);
  }
  const isBase = Object.entries(BERT_BASE).every(([k, v]) => shape[k as keyof BertShape] === v);
  const prefix = isBase ? "bert_base" : `bert_l${shape.layers}_h${shape.hidden}`;

  // Both sides must be able to run before anything is timed.
  await requirePython(REFERENCE, ["torch"]);
  const t0 = performance.now();
  const model = await ensureTinyBert({ ...shape, seed });
  const modelSeconds = (performance.now() - t0) / 1000;
  log(
    `bench bert: ${basename(model)} (ready in ${modelSeconds.toFixed(1)} s), ${count} reviews ` +
      `at ${lengths.join(" and ")} tokens, ${rounds} alternated rounds, ${threads} threads`,
  );
  const texts = options.texts ?? await imdbTexts(count, 8 * Math.max(...lengths));

  const dir = await Deno.makeTempDir({ prefix: "bench-bert-" });
  try {
    const textsPath = join(dir, "texts.json");
    await Deno.writeTextFile(textsPath, JSON.stringify(texts));
    const file = (side: string, n: number, what: string) => join(dir, `${side}-${n}.${what}`);
    const ours: OursResult[] = [];
    const reference: ReferenceResult[] = [];
    let ids: number[][][] | undefined;
    for (let r = 0; r < rounds; r++) {
      for (const side of r % 2 === 0 ? ["ours", "torch"] : ["torch", "ours"]) {
        if (side === "ours") {
          const job: OursJob = {
            model,
            threads,
            batch: options.batch ?? null,
            texts: textsPath,
            lengths: lengths.map((n) => ({
              tokens: n,
              ids: r === 0 ? file("ours", n, "ids.json") : null,
              vectors: r === 0 ? file("ours", n, "f32") : null,
            })),
          };
          await Deno.writeTextFile(join(dir, "ours.json"), JSON.stringify(job));
          ours.push(
            await runJson<OursResult>(
              Deno.execPath(),
              ["run", "-A", THIS_FILE, "--ours", join(dir, "ours.json")],
              (code, stderr) =>
                new Error(
                  `our side (bench/bert.ts --ours) failed (exit ${code}):\n` +
                    stderr.slice(-2000),
                ),
            ),
          );
          ids ??= await Promise.all(
            lengths.map(async (n) =>
              JSON.parse(await Deno.readTextFile(file("ours", n, "ids.json"))) as number[][]
            ),
          );
        } else {
          if (!ids) throw new Error("internal: PyTorch side before the token ids exist");
          const job = {
            model,
            seed,
            threads,
            layers: ours[0].layers,
            batch: ours[0].batch,
            lengths: lengths.map((n, k) => ({
              tokens: n,
              ids: ids![k],
              vectors: r === 0 ? file("torch", n, "f32") : null,
            })),
          };
          await Deno.writeTextFile(join(dir, "torch.json"), JSON.stringify(job));
          reference.push(
            await runJson<ReferenceResult>(
              PYTHON,
              [REFERENCE_SCRIPT, join(dir, "torch.json")],
              (code, stderr) => pythonFailure(REFERENCE, code, stderr),
            ),
          );
        }
      }
      const o = ours[r], p = reference[r];
      log(
        `round ${r + 1}: ` +
          lengths.map((n, k) =>
            `${n} tokens: ours ${(count / o.lengths[k].seconds).toFixed(2)} reviews/s ` +
            `(${o.lengths[k].peak_rss_mb.toFixed(0)} MB), PyTorch ` +
            `${(count / p.lengths[k].seconds).toFixed(2)} reviews/s ` +
            `(${p.lengths[k].peak_rss_mb.toFixed(0)} MB)`
          ).join("; "),
      );
    }

    const cols = ours[0].layers.length * shape.hidden;
    const figures: Record<string, number | string> = {
      model: basename(model),
      model_file: `onnx/${ours[0].model_file}`,
      onnxruntime: ours[0].onnxruntime,
      torch: reference[0].torch,
      shape: `${shape.layers} layers, hidden ${shape.hidden}, ${shape.heads} heads, ` +
        `feed-forward ${shape.intermediate}`,
      hidden_states: ours[0].layers.join(","),
      batch: ours[0].batch,
      threads,
      rounds,
      reviews: count,
      model_ready_seconds: round(modelSeconds, 1),
      ours_load_seconds: round(median(ours.map((o) => o.load_seconds)), 2),
      pytorch_load_seconds: round(median(reference.map((p) => p.load_seconds)), 2),
      ours_load_peak_rss_mb: round(Math.max(...ours.map((o) => o.load_peak_rss_mb)), 1),
      pytorch_load_peak_rss_mb: round(Math.max(...reference.map((p) => p.load_peak_rss_mb)), 1),
      pytorch_weights_check: sig(reference[0].weights_check),
    };
    const targets: BertBenchLine["targets"] = {};
    let worstDiff = 0;
    for (const [k, n] of lengths.entries()) {
      const oursSeconds = median(ours.map((o) => o.lengths[k].seconds));
      const torchSeconds = median(reference.map((p) => p.lengths[k].seconds));
      const oursRate = count / oursSeconds, torchRate = count / torchSeconds;
      const ratio = oursRate / torchRate;
      const flops = bertFlops(shape, n);
      const a = await readF32(file("ours", n, "f32"));
      const b = await readF32(file("torch", n, "f32"));
      if (a.length !== count * cols || b.length !== count * cols) {
        throw new Error(
          `${n} tokens: vectors of ${a.length} and ${b.length} values, expected ` +
            `${count * cols}`,
        );
      }
      const diff = maxRelativeRowDifference(a, b, cols);
      worstDiff = Math.max(worstDiff, diff);
      // Stage medians over every batch of every round; the rest of encode() (pooling,
      // checks, copies) as the median of each batch's encode − tokenise − run.
      const stages = ours.map((o) => o.lengths[k].profile!);
      const all = (key: keyof StageProfile) => stages.flatMap((s) => s[key]);
      const tokenizeMs = median(all("tokenize_ms"));
      const runMs = median(all("run_ms"));
      const encodeMs = median(all("encode_ms"));
      const restMs = median(
        stages.flatMap((s) => s.encode_ms.map((e, j) => e - s.tokenize_ms[j] - s.run_ms[j])),
      );
      Object.assign(figures, {
        [`ours_${n}_reviews_per_s`]: sig(oursRate),
        [`pytorch_${n}_reviews_per_s`]: sig(torchRate),
        [`ratio_${n}`]: round(ratio, 3),
        [`ours_${n}_peak_rss_mb`]: round(Math.max(...ours.map((o) => o.lengths[k].peak_rss_mb)), 1),
        [`pytorch_${n}_peak_rss_mb`]: round(
          Math.max(...reference.map((p) => p.lengths[k].peak_rss_mb)),
          1,
        ),
        [`gflop_per_review_${n}`]: sig(flops / 1e9),
        [`ours_${n}_gflop_per_s`]: round(flops * oursRate / 1e9, 1),
        [`pytorch_${n}_gflop_per_s`]: round(flops * torchRate / 1e9, 1),
        [`ours_${n}_encode_ms_per_review`]: round(encodeMs, 2),
        [`ours_${n}_tokenize_ms_per_review`]: round(tokenizeMs, 3),
        [`ours_${n}_session_run_ms_per_review`]: round(runMs, 2),
        [`ours_${n}_rest_ms_per_review`]: round(restMs, 3),
        [`max_rel_diff_${n}`]: sig(diff),
      });
      log(
        `${n} tokens (medians): ours ${figures[`ours_${n}_reviews_per_s`]} reviews/s ` +
          `(${figures[`ours_${n}_gflop_per_s`]} GFLOP/s, peak RSS ` +
          `${figures[`ours_${n}_peak_rss_mb`]} MB), PyTorch ` +
          `${figures[`pytorch_${n}_reviews_per_s`]} reviews/s ` +
          `(${figures[`pytorch_${n}_gflop_per_s`]} GFLOP/s, peak RSS ` +
          `${figures[`pytorch_${n}_peak_rss_mb`]} MB): ours/PyTorch ${ratio.toFixed(3)}; ` +
          `${(flops / 1e9).toFixed(2)} GFLOP per review; max relative difference ` +
          `${diff.toExponential(2)}`,
      );
      log(
        `  ours' stages (medians per review over ${all("encode_ms").length} profiled batches): ` +
          `encode ${encodeMs.toFixed(1)} ms; tokenise ${tokenizeMs.toFixed(2)} ms, session run ` +
          `${runMs.toFixed(1)} ms (${(100 * runMs / encodeMs).toFixed(1)}%), rest ` +
          `${restMs.toFixed(2)} ms (pooling, checks, copies)`,
      );
      targets[`${prefix}_${n}_ratio`] = { value: round(ratio, 3), target: ">= 1", met: ratio >= 1 };
    }
    targets[`${prefix}_agreement`] = {
      value: sig(worstDiff),
      target: "<= 1e-4",
      met: worstDiff <= 1e-4,
    };
    return { bench: "bert", figures, targets };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function parseOptions(args: string[]): BertBenchOptions {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string", default: "3" },
      reviews: { type: "string", default: "8" },
      lengths: { type: "string", default: "128,512" },
      batch: { type: "string" },
      threads: { type: "string", default: "2" },
      seed: { type: "string", default: "0" },
    },
  });
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be an integer, not ${v}`);
    return n;
  };
  const rounds = int("rounds", values.rounds);
  if (rounds < 3) throw new Error(`--rounds must be at least 3 (the alternation rule)`);
  return {
    rounds,
    reviews: int("reviews", values.reviews),
    lengths: values.lengths.split(",").map((v) => int("lengths", v)),
    batch: values.batch === undefined ? undefined : int("batch", values.batch),
    threads: int("threads", values.threads),
    seed: int("seed", values.seed),
  };
}

if (import.meta.main) {
  let code = 0;
  const at = Deno.args.indexOf("--ours");
  if (at >= 0) {
    try {
      console.log(JSON.stringify(await oursProcess(Deno.args[at + 1])));
    } catch (e) {
      console.error(`bench/bert.ts --ours failed: ${(e as Error).stack ?? e}`);
      code = 1;
    }
  } else {
    try {
      console.log(JSON.stringify(await benchBert(parseOptions(Deno.args))));
    } catch (e) {
      console.error(`bench/bert.ts failed: ${failureText(e)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
