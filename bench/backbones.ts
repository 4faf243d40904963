/**
 * Bench of the frozen backbones: images/s of the frozen forward pass (preprocessing + sliced
 * network with BatchNorm folded, batches of `--batch` images, default 16) for every loadable
 * registered backbone (the stand-ins: resnet50, vgg19, mobilenet_v1, darknet_reference,
 * darknet_tiny) and the paper's five networks (alexnet, vgg16, wide_resnet50_2,
 * resnext50_32x4d, shufflenet_v2: our TF.js build of torchvision's architecture, from random
 * weights in PyTorch's shapes when no checkpoint is here) at 50×50 and 150×150, peak memory,
 * and the feature cache's size per 1,000 images. In the same run, PyTorch
 * (bench/backbones_reference.py: the torchvision slice a backbone stands for, random weights,
 * eval, no_grad, torch.set_num_threads(2)) for every backbone that has one: vgg19 and vgg16 →
 * vgg16().features[:12], resnet50 → resnet50's stem + layer1, each other paper network → its
 * own torchvision slice (mobilenet_v1 and the darknets have none).
 *
 * Ours runs with the native kernels (`lib/native/`: oneDNN's sgemm through FFI, else
 * OpenBLAS) — the toolkit's default — in the main thread of its process, whose products use
 * 2 threads (one per core, as PyTorch's 2 threads). Per backbone, ours and PyTorch alternate
 * for `--rounds` rounds (default 3; which goes first swaps every round), and the figures are
 * the medians over the rounds: images/s over the whole timed run (the figure the targets
 * compare), images/s of the fastest batch, images per CPU-second, peak RSS. A backbone
 * without a PyTorch slice runs ours once. Then, once per backbone, the wasm kernels alone —
 * the previous path (`TEXT_AS_IMAGE_NATIVE=off`): on 2 Deno workers with a copy of the
 * backbone each (one core each), or, for a paper network built from random weights (which
 * cannot be sent to workers), in the main thread — for the speed-up over it and the memory
 * comparison (`*_wasm_images_per_s`, `*_speedup_over_wasm`, `*_wasm_peak_rss_mb`).
 *
 * Every process loads the backbone once, then measures each size in turn (50, then 150): one
 * untimed warm-up call of `features()`, then whole calls for `--seconds` seconds (default 2,
 * down from 3 to keep the run short; at least 2 calls). Each size's peak RSS is the process's
 * VmHWM after resetting it to the current RSS (/proc/self/clear_refs) before the size's
 * warm-up, so it includes the loaded network (and, for the 2-worker wasm process, the three
 * copies of it: the main thread's and each worker's); PyTorch's side does the same.
 *
 * Per-stage profile (every backbone at 150×150, ours' median run): ms per batch in oneDNN's
 * convolution primitives (dense, grouped and depthwise), in the native GEMMs, in im2col, in
 * the fused bias/activation, and the rest (wasm kernels such as pooling, residual additions,
 * channel slices and concatenations, the native copies, preprocessing, reading the output),
 * from `nativeProfile()`
 * around the timed calls, and GFLOP/s inside the primitive, the GEMMs and over the batch.
 *
 * Targets: `<backbone>_<size>_vs_pytorch` (ours' median images/s ÷ PyTorch's, ≥ 1) for every
 * backbone with a PyTorch slice at both sizes; `<backbone>_<size>_peak_memory_vs_wasm`
 * (ours' median peak RSS ÷ the wasm path's, ≤ 1.25) for every backbone at both sizes. Ends
 * with one JSON line. With the defaults (10 backbones, 7 with a PyTorch slice, 3 rounds,
 * 2 s per measurement) the bench starts 55 processes and takes about 9 minutes on 2 idle
 * cores (an estimate from partial runs).
 *
 * The bench fails (exit 1, no JSON line) when a measurement cannot run, ours, the wasm path's
 * or PyTorch's: a missing reference is never reported as a null figure. PyTorch is checked
 * before anything is timed (Debian's python3-torch and python3-torchvision), with a message
 * naming the missing module and the package to install.
 *
 * Usage: deno run -A bench/backbones.ts [--seconds S] [--batch B] [--rounds R]
 *            [--only name,name] [--sizes 50,150]
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { projectRoot } from "../lib/config.ts";
import { nativeStatusText, ready } from "../lib/tf.ts";
import { nativeProfile, resetNativeProfile } from "../lib/native/kernels.ts";
import {
  BACKBONES,
  cacheBytes,
  hasTorchvisionCheckpoint,
  loadableBackbones,
  loadBackbone,
  randomlyInitialisedBackbone,
} from "../lib/vision/mod.ts";
import {
  cpuSeconds,
  failureText,
  peakRssMb,
  PYTHON,
  pythonFailure,
  requirePython,
  resetPeakRss,
} from "./data.ts";

const SIZES = [50, 150] as const;
const TARGET_RATIO = 1;
const MEMORY_RATIO = 1.25;
const WASM_WORKERS = 2;
const REFERENCE_SCRIPT = "the PyTorch reference (bench/backbones_reference.py)";
/** Our backbone → the PyTorch slice it stands in for. */
const REFERENCE: Record<string, string> = {
  vgg19: "vgg16_features12",
  resnet50: "resnet50_layer1",
  alexnet: "alexnet_features5",
  vgg16: "vgg16_features12",
  wide_resnet50_2: "wide_resnet50_2_layer1",
  resnext50_32x4d: "resnext50_32x4d_layer1",
  shufflenet_v2: "shufflenet_v2_stage2",
};
/** The paper's own networks: the same architecture as the PyTorch slice. */
const PAPER_NETWORKS = ["alexnet", "vgg16", "wide_resnet50_2", "resnext50_32x4d", "shufflenet_v2"];

function argument(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

/** Where one batch's time went (native kernels' profile around the timed calls). */
interface StageProfile {
  ms_per_batch: number;
  /** In oneDNN's convolution primitive (forward convolutions). */
  conv_primitive_ms: number;
  gemm_ms: number;
  im2col_ms: number;
  bias_activation_ms: number;
  /** Everything else: wasm kernels (pooling, depthwise convolutions, …), preprocessing, I/O. */
  rest_ms: number;
  gemm_calls_per_batch: number;
  /** FLOPs of the primitive's convolutions ÷ time inside them. */
  conv_primitive_gflop_per_s: number;
  /** FLOPs of the GEMMs ÷ time inside them. */
  gemm_gflop_per_s: number;
  /** FLOPs of the convolutions and GEMMs ÷ the whole batch's time. */
  gflop_per_s: number;
}

interface Measurement {
  backbone: string;
  size: number;
  workers: number;
  kernels: string;
  images_per_s: number;
  best_images_per_s: number;
  images_per_cpu_s: number;
  output_shape: number[];
  /** Peak RSS during this size's run (VmHWM after a reset, see {@link resetPeakRss}). */
  peak_rss_mb: number;
  /** Whether VmHWM could be reset before this size (else: the process's peak so far). */
  peak_reset: boolean;
  load_s: number;
  profile: StageProfile;
}

/** Whether `name` is built from random weights here (a paper network without its checkpoint). */
function randomWeights(name: string): boolean {
  const spec = BACKBONES[name];
  return spec?.torchvision !== undefined && !hasTorchvisionCheckpoint(spec);
}

/**
 * Child mode: load one backbone, then for each size time its frozen forward pass and print
 * one JSON line ({@link Measurement}).
 */
async function child(
  name: string,
  sizes: number[],
  batch: number,
  seconds: number,
  workers: number,
) {
  await ready();
  const t0 = performance.now();
  // A paper network without its checkpoint here: the same architecture, random weights.
  const backbone = randomWeights(name)
    ? await randomlyInitialisedBackbone(name, 0)
    : await loadBackbone(name);
  const loadSeconds = (performance.now() - t0) / 1000;
  for (const size of sizes) {
    const reset = resetPeakRss();
    const n = batch * workers;
    const data = new Float32Array(n * size * size);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761 % 1000) / 1000;
    const images = { data, shape: [n, size, size] as [number, number, number] };
    const options = { batchSize: batch, workers };
    await backbone.features(images, options); // warm-up (starts the workers)
    let count = 0, calls = 0, best = Infinity;
    resetNativeProfile();
    const cpu0 = cpuSeconds();
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < seconds || calls < 2) {
      const t = performance.now();
      await backbone.features(images, options);
      best = Math.min(best, (performance.now() - t) / 1000);
      count += n;
      calls++;
      elapsed = (performance.now() - start) / 1000;
    }
    const cpu = cpuSeconds() - cpu0;
    const p = nativeProfile(); // this thread's native kernels (none with workers or wasm): forward
    // convolutions on oneDNN's primitive, products and the rest of im2col on the GEMM
    const msPerBatch = (elapsed * 1000) / calls;
    const per = (ms: number) => ms / calls;
    const m: Measurement = {
      backbone: name,
      size,
      workers,
      kernels: nativeStatusText(),
      images_per_s: count / elapsed,
      best_images_per_s: n / best,
      images_per_cpu_s: count / cpu,
      output_shape: backbone.outputShape([size, size]),
      peak_rss_mb: peakRssMb(),
      peak_reset: reset,
      load_s: loadSeconds,
      profile: {
        ms_per_batch: msPerBatch,
        conv_primitive_ms: per(p.convMs),
        gemm_ms: per(p.gemmMs),
        im2col_ms: per(p.im2colMs),
        bias_activation_ms: per(p.epilogueMs),
        rest_ms: msPerBatch -
          per(p.convMs + p.gemmMs + p.im2colMs + p.col2imMs + p.epilogueMs),
        gemm_calls_per_batch: per(p.gemmCalls),
        conv_primitive_gflop_per_s: p.convMs > 0 ? p.convFlops / p.convMs / 1e6 : 0,
        gemm_gflop_per_s: p.gemmMs > 0 ? p.gemmFlops / p.gemmMs / 1e6 : 0,
        gflop_per_s: (p.gemmFlops + p.convFlops) / (elapsed * 1e9),
      },
    };
    console.log(JSON.stringify(m));
  }
  backbone.dispose();
}

/** Runs `cmd args` (with `env` added); returns its JSON lines parsed, or why it failed. */
async function runJson(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Record<string, unknown>[] | string> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n")
    .filter((l) => l.startsWith("{"));
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    if (cmd === PYTHON && /No module named/.test(stderr)) {
      return pythonFailure(REFERENCE_SCRIPT, out.code, stderr).message;
    }
    return `exit ${out.code}: ${stderr.split("\n").slice(-3).join(" | ")}`;
  }
  try {
    return lines.map((l) => JSON.parse(l));
  } catch {
    return `unparsable output: ${lines.join(" ")}`;
  }
}

const round = (x: number, d = 2) => Number(x.toFixed(d));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The run whose images/s is the median (the lower middle one for an even count). */
function medianRun<T extends { images_per_s: number }>(runs: T[]): T {
  const sorted = [...runs].sort((a, b) => a.images_per_s - b.images_per_s);
  return sorted[(sorted.length - 1) >> 1];
}

type Target = { value: number; target: string; met: boolean };

/** Runs the bench; returns the exit code (1 when any measurement could not run). */
async function main(): Promise<number> {
  const seconds = Number(argument("--seconds") ?? 2);
  const batch = Number(argument("--batch") ?? 16);
  const rounds = Number(argument("--rounds") ?? 3);
  const only = argument("--only")?.split(",");
  const sizes = argument("--sizes")?.split(",").map(Number) ?? [...SIZES];
  for (const [flag, v] of [["--seconds", seconds], ["--batch", batch], ["--rounds", rounds]]) {
    if (!(Number(v) > 0) || (flag !== "--seconds" && !Number.isInteger(v))) {
      throw new Error(`${flag} must be a positive ${flag === "--seconds" ? "number" : "integer"}`);
    }
  }
  if (sizes.some((s) => !Number.isInteger(s) || s < 32)) {
    throw new Error(`--sizes must be integers ≥ 32, got ${argument("--sizes")}`);
  }
  const self = fileURLToPath(import.meta.url);
  const reference = fileURLToPath(new URL("./backbones_reference.py", import.meta.url));
  const figures: Record<string, unknown> = {
    backend: "native kernels in the main thread, BatchNorm folded",
    wasm_backend: "wasm SIMD (TEXT_AS_IMAGE_NATIVE=off), 2 workers (1 core each) where the " +
      "backbone can be sent to workers, else the main thread",
    pytorch_threads: 2,
    batch,
    rounds,
    seconds_per_measurement: seconds,
    peak_rss: "VmHWM during each size's run (reset before its warm-up)",
  };
  const targets: Record<string, Target> = {};
  const names = [...new Set([...loadableBackbones(), ...PAPER_NETWORKS])]
    .filter((n) => !only || only.includes(n));
  if (only && names.length === 0) throw new Error(`--only names no known backbone: ${only}`);
  if (names.some((n) => REFERENCE[n] !== undefined)) {
    await requirePython(REFERENCE_SCRIPT, ["torch", "torchvision"]);
  }
  /** Measurements that did not run; any fails the bench. */
  const problems: string[] = [];
  const sizeList = sizes.join(",");
  const ours = (name: string, workers: number, env: Record<string, string> = {}) =>
    runJson(
      Deno.execPath(),
      [
        "run",
        "-A",
        "--config",
        join(projectRoot, "deno.json"),
        self,
        "--child",
        name,
        sizeList,
        String(batch),
        String(seconds),
        String(workers),
      ],
      env,
    );
  const torch = (slice: string) =>
    runJson(PYTHON, [reference, slice, sizeList, String(batch), String(seconds)]);
  /** One process's lines by size; a string says why it did not run or what is missing. */
  const bySize = <T extends { size: number }>(lines: Record<string, unknown>[] | string) => {
    if (typeof lines === "string") return lines;
    const out = new Map<number, T>();
    for (const l of lines as unknown as T[]) out.set(l.size, l);
    const missing = sizes.filter((size) => !out.has(size));
    return missing.length ? `no measurement at ${missing.join(", ")}` : out;
  };
  for (const name of names) {
    // Ours and PyTorch alternate (which goes first swaps every round), each process measuring
    // every size in turn; then the wasm path once.
    const slice = REFERENCE[name];
    const runs: Map<number, Measurement>[] = [];
    const torchRuns: Map<number, Record<string, number> & { size: number }>[] = [];
    const failures: string[] = [];
    const sides = slice ? ["ours", "pytorch"] : ["ours"];
    for (let r = 0; r < (slice ? rounds : 1); r++) {
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
        if (side === "ours") {
          const m = bySize<Measurement>(await ours(name, 1));
          if (typeof m === "string") failures.push(`ours (native): ${m}`);
          else runs.push(m);
        } else {
          const t = bySize<Record<string, number> & { size: number }>(await torch(slice));
          if (typeof t === "string") failures.push(`PyTorch: ${t}`);
          else torchRuns.push(t);
        }
      }
    }
    const wasmWorkers = randomWeights(name) ? 1 : WASM_WORKERS;
    const w = bySize<Measurement>(await ours(name, wasmWorkers, { TEXT_AS_IMAGE_NATIVE: "off" }));
    if (typeof w === "string") failures.push(`wasm kernels: ${w}`);
    if (failures.length > 0 || typeof w === "string") {
      problems.push(`${name}: ${failures.join("; ")}`);
      console.log(`${name}: not measured (${failures.join("; ")})`);
      continue;
    }
    const all = [...runs, w].flatMap((r) => [...r.values()]);
    if (all.some((m) => !m.peak_reset)) {
      figures.peak_rss = "VmHWM of the whole process (/proc/self/clear_refs refused)";
    }
    for (const size of sizes) {
      const key = `${name}_${size}`;
      const sizeRuns = runs.map((r) => r.get(size)!);
      const sizeTorch = torchRuns.map((r) => r.get(size)!);
      const wasm = w.get(size)!;
      const m = sizeRuns[0];
      const [h, wd, c] = m.output_shape as [number, number, number];
      const rate = median(sizeRuns.map((r) => r.images_per_s));
      const peak = median(sizeRuns.map((r) => r.peak_rss_mb));
      figures.kernels = m.kernels;
      figures[`${key}_images_per_s`] = round(rate);
      figures[`${key}_best_batch_images_per_s`] = round(
        median(sizeRuns.map((r) => r.best_images_per_s)),
      );
      figures[`${key}_images_per_cpu_s`] = round(median(sizeRuns.map((r) => r.images_per_cpu_s)));
      figures[`${key}_peak_rss_mb`] = round(peak, 0);
      figures[`${key}_load_s`] = round(median(sizeRuns.map((r) => r.load_s)));
      figures[`${key}_output`] = `${h}x${wd}x${c}`;
      figures[`${key}_cache_mb_per_1000_f16`] = round(cacheBytes([h, wd, c], 1000) / 1e6, 1);
      figures[`${key}_cache_mb_per_1000_f32`] = round(
        cacheBytes([h, wd, c], 1000, "float32") / 1e6,
        1,
      );
      figures[`${key}_wasm_images_per_s`] = round(wasm.images_per_s);
      figures[`${key}_wasm_workers`] = wasm.workers;
      figures[`${key}_wasm_peak_rss_mb`] = round(wasm.peak_rss_mb, 0);
      figures[`${key}_speedup_over_wasm`] = round(rate / wasm.images_per_s);
      figures.wasm_kernels = wasm.kernels;
      const memory = peak / wasm.peak_rss_mb;
      targets[`${key}_peak_memory_vs_wasm`] = {
        value: round(memory, 3),
        target: `<= ${MEMORY_RATIO}`,
        met: memory <= MEMORY_RATIO,
      };
      let line = `${name.padEnd(17)} ${String(size).padStart(3)}×${size}: ours ` +
        `${figures[`${key}_images_per_s`]} images/s (median of ${sizeRuns.length}; fastest batch ` +
        `${figures[`${key}_best_batch_images_per_s`]}, ${figures[`${key}_images_per_cpu_s`]} ` +
        `per CPU-s), peak RSS ${figures[`${key}_peak_rss_mb`]} MB; wasm kernels ` +
        `(${wasm.workers} ${wasm.workers === 1 ? "thread" : "workers"}) ` +
        `${figures[`${key}_wasm_images_per_s`]} images/s, peak RSS ` +
        `${figures[`${key}_wasm_peak_rss_mb`]} MB → ×${figures[`${key}_speedup_over_wasm`]}, ` +
        `memory ×${round(memory, 3)}; output ${h}×${wd}×${c}, cache ` +
        `${figures[`${key}_cache_mb_per_1000_f16`]} MB / 1,000 images (f16)`;
      if (slice) {
        const p = `pytorch_${slice}_${size}`;
        const tRate = median(sizeTorch.map((r) => r.images_per_s));
        figures[`${p}_images_per_s`] = round(tRate);
        figures[`${p}_best_batch_images_per_s`] = round(
          median(sizeTorch.map((r) => r.best_images_per_s)),
        );
        figures[`${p}_images_per_cpu_s`] = round(median(sizeTorch.map((r) => r.images_per_cpu_s)));
        figures[`${p}_peak_rss_mb`] = round(median(sizeTorch.map((r) => r.peak_rss_mb)), 0);
        figures[`${key}_cpu_efficiency_ratio_to_pytorch`] = round(
          (figures[`${key}_images_per_cpu_s`] as number) /
            (figures[`${p}_images_per_cpu_s`] as number),
        );
        const ratio = rate / tRate;
        targets[`${key}_vs_pytorch`] = {
          value: round(ratio, 3),
          target: `>= ${TARGET_RATIO}`,
          met: ratio >= TARGET_RATIO,
        };
        line += `; PyTorch ${slice} ${figures[`${p}_images_per_s`]} images/s (median of ` +
          `${sizeTorch.length}; fastest batch ${figures[`${p}_best_batch_images_per_s`]}, ` +
          `${figures[`${p}_images_per_cpu_s`]} per CPU-s, peak RSS ` +
          `${figures[`${p}_peak_rss_mb`]} MB) → ratio ${round(ratio, 3)}, per CPU-s ` +
          `${figures[`${key}_cpu_efficiency_ratio_to_pytorch`]}`;
      }
      console.log(line);
      if (size === 150) {
        const pr = medianRun(sizeRuns).profile;
        const profile = Object.fromEntries(
          Object.entries(pr).map(([k, v]) => [k, round(v, k.endsWith("_ms") ? 1 : 2)]),
        ) as unknown as StageProfile;
        figures[`${key}_profile`] = profile;
        console.log(
          `  profile per batch of ${batch} (median run): ${profile.ms_per_batch} ms = GEMM ` +
            `${profile.gemm_ms} (${profile.gemm_calls_per_batch} calls, ` +
            `${profile.gemm_gflop_per_s} GFLOP/s) + im2col ${profile.im2col_ms} + ` +
            `bias/activation ${profile.bias_activation_ms} + rest ${profile.rest_ms}; ` +
            `${profile.gflop_per_s} GFLOP/s over the batch`,
        );
      }
    }
  }
  if (problems.length > 0) {
    console.error(
      `bench/backbones.ts failed: ${problems.length} measurement(s) did not run:\n  ` +
        problems.join("\n  "),
    );
    return 1;
  }
  console.log(JSON.stringify({ bench: "backbones", figures, targets }));
  return 0;
}

if (Deno.args[0] === "--child") {
  const [, name, sizes, batch, seconds, workers] = Deno.args;
  await child(name, sizes.split(",").map(Number), Number(batch), Number(seconds), Number(workers));
  Deno.exit(0); // do not wait for idle workers to time out
} else if (import.meta.main) {
  let code: number;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench/backbones.ts failed: ${failureText(e)}`);
    code = 1;
  }
  Deno.exit(code);
}
