/**
 * Bench: our t-SNE on the DeepInsight layout problem (4,608 points = features, of dimension
 * N = samples) against scikit-learn's Barnes–Hut TSNE (bench/tsne_reference.py, Debian's
 * /usr/bin/python3, 2 threads) in the same run, and against tsne-js on a smaller problem;
 * then a full ImageTransformer fit + transform of 4,608 × 10,000 to 50×50 images, timed,
 * with its peak memory (in a child process, so the figure is its own).
 *
 * Data: realistic structured embeddings (no real BERT weights here): 6 "layers" × 768
 * dimensions whose values load on shared latent factors (the same dimension in successive
 * layers mostly on the same factor, some factors shifted by a binary label), with
 * per-feature offsets, noise, and a few large-magnitude outlier dimensions as in BERT;
 * log-scaled (Norm-2) like the pipeline before the layout.
 *
 * Then the fit time of every feature map (t-SNE, PCA, kernel PCA, UMAP, random) at 4,608
 * features × 10,000 samples beside scikit-learn's TSNE, PCA and KernelPCA and umap-learn's
 * UMAP in the same run (umap-learn, often not packaged, is reported as unavailable without
 * failing the bench).
 *
 * Run: `deno run -A bench/tsne.ts` (options: `--sizes=2000,10000`, `--features=4608`,
 * `--layout-samples=10000` (0: skip the layouts), `--tsnejs-points=500`, `--no-e2e`,
 * `--threads=2`, `--python=/usr/bin/python3`). Ends with one JSON line; a quick check:
 * `--sizes=300 --features=600 --layout-samples=300 --tsnejs-points=200 --no-e2e`.
 *
 * The bench fails (exit 1, no JSON line) when the scikit-learn reference cannot run. It is
 * checked before anything is timed (Debian's python3-sklearn and python3-numpy), with a
 * message naming the missing module and the package to install. Figures that cannot be read
 * on this system (the load average or peak RSS without /proc) are left out, never null.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { join } from "node:path";
import TsneJs from "tsne-js";
import {
  ImageTransformer,
  kernelPca,
  LogScaler,
  randomizedPca,
  randomLayout,
  squaredDistances,
  transposeMatrix,
  TSNE,
  umapLayout,
} from "../lib/image/mod.ts";
import { Random } from "../lib/random.ts";
import type { Matrix } from "../lib/types.ts";
import { failureText, pythonFailure, requirePython } from "./data.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "2000,10000" },
    features: { type: "string", default: "4608" },
    "layout-samples": { type: "string", default: "10000" },
    "tsnejs-points": { type: "string", default: "500" },
    "tsnejs-samples": { type: "string", default: "50" },
    threads: { type: "string", default: "2" },
    "no-e2e": { type: "boolean", default: false },
    e2e: { type: "boolean", default: false },
    python: { type: "string", default: "/usr/bin/python3" },
  },
});
const threads = Number(args.threads);
const features = Number(args.features);
const PERPLEXITY = 30, N_ITER = 1000, LEARNING_RATE = 200, SEED = 1701;
const REFERENCE = "the scikit-learn reference (bench/tsne_reference.py)";

/** Structured embedding-like data `[samples, features]` (see the module comment). */
function structuredEmbeddings(samples: number, features: number, seed: number): Matrix {
  const rng = new Random(seed);
  const width = 768, factors = 96;
  const primary = new Int32Array(features), secondary = new Int32Array(features);
  const load1 = new Float32Array(features), load2 = new Float32Array(features);
  const offset = new Float32Array(features), noise = new Float32Array(features);
  const dimFactor = Int32Array.from({ length: width }, () => rng.int(factors));
  for (let f = 0; f < features; f++) {
    const layer = Math.floor(f / width), dim = f % width;
    // Successive layers keep a dimension's factor, with some drift.
    primary[f] = rng.next() < 0.15 * layer ? rng.int(factors) : dimFactor[dim];
    secondary[f] = rng.int(factors);
    const outlier = dim % 384 === 7;
    load1[f] = rng.normal() * (0.6 + 0.1 * layer) * (outlier ? 8 : 1);
    load2[f] = rng.normal() * 0.3;
    offset[f] = rng.normal() * 0.4 + (outlier ? -3 : 0);
    noise[f] = 0.2 + rng.next() * 0.6;
  }
  const data = new Float32Array(samples * features);
  const z = new Float64Array(factors);
  for (let s = 0; s < samples; s++) {
    const label = rng.next() < 0.5 ? -1 : 1;
    for (let g = 0; g < factors; g++) z[g] = rng.normal() + (g < 12 ? 0.7 * label : 0);
    const base = s * features;
    for (let f = 0; f < features; f++) {
      data[base + f] = offset[f] + load1[f] * z[primary[f]] + load2[f] * z[secondary[f]] +
        noise[f] * rng.normal();
    }
  }
  return { data, shape: [samples, features] };
}

/** The t-SNE input of the pipeline: log-scaled, transposed (features are the points). */
function layoutPoints(samples: number, features: number, seed: number): Matrix {
  const X = structuredEmbeddings(samples, features, seed);
  return transposeMatrix(new LogScaler().fitTransform(X));
}

/** Peak RSS of this process in MiB (VmHWM), or undefined where /proc is unavailable. */
function peakRssMiB(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function cpuSeconds(since: { user: number; system: number }): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

function rssMiB(): number {
  return Deno.memoryUsage().rss / 2 ** 20;
}

// ---- child mode: end-to-end fit + transform, own process for an honest peak memory ----
if (args.e2e) {
  const samples = 10000, features = 4608;
  const X = structuredEmbeddings(samples, features, 3);
  const rssData = rssMiB();
  const t0 = performance.now();
  const it = new ImageTransformer({
    pixels: 50,
    scaler: "log",
    tsne: {
      perplexity: PERPLEXITY,
      nIter: N_ITER,
      learningRate: LEARNING_RATE,
      seed: SEED,
      threads,
    },
  });
  await it.fit(X);
  const fitSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const images = it.transform(X);
  const transformSeconds = (performance.now() - t1) / 1000;
  const density = it.featureDensityMatrix().data;
  console.log(JSON.stringify({
    samples,
    features,
    imageShape: images.shape,
    fitSeconds,
    transformSeconds,
    totalSeconds: fitSeconds + transformSeconds,
    kl: it.klDivergence_,
    tsneTimings: it.tsne_?.timings_,
    pixelsUsed: density.filter((c) => c > 0).length,
    peakRssMiB: peakRssMiB(),
    rssAfterDataMiB: rssData,
  }));
  Deno.exit(0);
}

/**
 * The 1-minute load average (other jobs share the cores; reported with the figures), or
 * undefined where /proc is unavailable.
 */
function loadAverage(): number | undefined {
  try {
    const value = Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Sets `figures[key]` to `value` when it is a number (a figure never becomes null). */
function setFigure(key: string, value: number | undefined): void {
  if (typeof value === "number" && Number.isFinite(value)) figures[key] = value;
}

const pointsFiles = new Map<string, { points: Matrix; file: string }>();

/**
 * The layout points of `features` × `samples` and the file the Python reference reads them
 * from, made once per size (the t-SNE pair and the layouts use the same points).
 */
async function pointsFile(
  samples: number,
  features: number,
): Promise<{ points: Matrix; file: string }> {
  const key = `${samples}x${features}`;
  let made = pointsFiles.get(key);
  if (!made) {
    const points = layoutPoints(samples, features, 11 + samples);
    const file = join(tmp, `points_${key}.f32`);
    await Deno.writeFile(
      file,
      new Uint8Array(points.data.buffer, points.data.byteOffset, points.data.byteLength),
    );
    made = { points, file };
    pointsFiles.set(key, made);
  }
  return made;
}

/**
 * Our Barnes–Hut t-SNE and scikit-learn's (reference, run first) on the layout points of
 * `features` × `samples`; records the `*_N<samples>` t-SNE figures and targets.
 */
async function tsnePair(samples: number, features: number): Promise<void> {
  console.log(`\n== ${features} points × ${samples} dimensions ==`);
  const { points, file } = await pointsFile(samples, features);

  // scikit-learn (reference), then ours, on the same points.
  const py = await new Deno.Command(args.python, {
    args: [
      new URL("./tsne_reference.py", import.meta.url).pathname,
      file,
      String(features),
      String(samples),
      String(PERPLEXITY),
      String(N_ITER),
      String(LEARNING_RATE),
      String(SEED),
      String(threads),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!py.success) {
    throw pythonFailure(REFERENCE, py.code, new TextDecoder().decode(py.stderr), args.python);
  }
  const lines = new TextDecoder().decode(py.stdout).trim().split("\n");
  const ref = JSON.parse(lines[lines.length - 1]) as {
    seconds: number;
    kl: number;
    n_iter: number;
    sklearn: string;
  };
  console.log(
    `sklearn ${ref.sklearn}: ${fmt(ref.seconds)} s, KL ${
      fmt(ref.kl, 4)
    } (${ref.n_iter} iterations)`,
  );

  const t0 = performance.now();
  const tsne = new TSNE({
    perplexity: PERPLEXITY,
    nIter: N_ITER,
    learningRate: LEARNING_RATE,
    seed: SEED,
    method: "barnes_hut",
    threads,
  });
  await tsne.fit(points);
  const ours = (performance.now() - t0) / 1000;
  const t = tsne.timings_!;
  console.log(
    `ours: ${fmt(ours)} s (distances ${fmt(t.distances)}, affinities ${fmt(t.affinities)}, ` +
      `optimise ${fmt(t.optimize)}), KL ${fmt(tsne.klDivergence_!, 4)} (${tsne.nIter_} iterations)`,
  );
  const timeRatio = ours / ref.seconds, klRatio = tsne.klDivergence_! / ref.kl;
  console.log(`ratios ours/sklearn: time ${fmt(timeRatio, 3)}, KL ${fmt(klRatio, 4)}`);
  figures[`sklearn_seconds_N${samples}`] = ref.seconds;
  figures[`sklearn_kl_N${samples}`] = ref.kl;
  figures[`ours_seconds_N${samples}`] = ours;
  figures[`ours_distances_seconds_N${samples}`] = t.distances;
  figures[`ours_optimize_seconds_N${samples}`] = t.optimize;
  figures[`ours_kl_N${samples}`] = tsne.klDivergence_!;
  targets[`time_ratio_vs_sklearn_N${samples}`] = {
    value: timeRatio,
    target: "<= 1",
    met: timeRatio <= 1,
  };
  targets[`kl_ratio_vs_sklearn_N${samples}`] = {
    value: klRatio,
    target: "<= 1.05",
    met: klRatio <= 1.05,
  };
  // The points file stays for the layouts of the same size (the temporary folder goes at the end).
  await Deno.remove(`${file}.sklearn_map.f32`).catch(() => {});
}

/** Seconds taken by `f`. */
async function seconds(f: () => unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

/**
 * Fit time of every feature map (t-SNE, PCA, kernel PCA, UMAP, random) on the layout points
 * of `features` × `samples`, beside scikit-learn's TSNE, PCA and KernelPCA and umap-learn's
 * UMAP (when importable; otherwise reported as unavailable) in the same run. Our figures
 * time the map alone (`TSNE`, `randomizedPca`, `kernelPca`, `umapLayout`, `randomLayout`),
 * as the references do. The t-SNE pair is reused when the t-SNE section ran this size.
 */
async function benchLayouts(samples: number, features: number): Promise<void> {
  if (typeof figures[`ours_seconds_N${samples}`] !== "number") {
    await tsnePair(samples, features);
  }
  console.log(`\n== layouts: ${features} features × ${samples} samples ==`);
  const { points, file } = await pointsFile(samples, features);
  const py = await new Deno.Command(args.python, {
    args: [
      new URL("./tsne_reference.py", import.meta.url).pathname,
      "--layouts",
      file,
      String(features),
      String(samples),
      String(SEED),
      String(threads),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  // The layouts are the last to use these points: free them.
  await Deno.remove(file);
  pointsFiles.delete(`${samples}x${features}`);
  if (!py.success) {
    throw pythonFailure(REFERENCE, py.code, new TextDecoder().decode(py.stderr), args.python);
  }
  const lines = new TextDecoder().decode(py.stdout).trim().split("\n");
  const ref = JSON.parse(lines[lines.length - 1]) as {
    pca_seconds: number;
    kpca_seconds: number;
    umap_seconds?: number;
    umap: string;
  };
  const ours = {
    tsne: figures[`ours_seconds_N${samples}`] as number,
    pca: await seconds(() => randomizedPca(points, 2, { seed: SEED })),
    kpca: await seconds(() => kernelPca(points, 2, { seed: SEED, threads })),
    umap: await seconds(() => umapLayout(points, { seed: SEED }, { threads })),
    random: await seconds(() => randomLayout(features, SEED)),
  };
  const theirs: Record<string, number | undefined> = {
    tsne: figures[`sklearn_seconds_N${samples}`] as number,
    pca: ref.pca_seconds,
    kpca: ref.kpca_seconds,
    umap: ref.umap_seconds,
  };
  for (const [name, value] of Object.entries(ours)) {
    const other = theirs[name];
    const versus = other === undefined
      ? name === "umap" ? ` (umap-learn: ${ref.umap})` : ""
      : ` (reference ${fmt(other)} s, ratio ${fmt(value / other, 3)})`;
    console.log(`${name}: ${fmt(value, 3)} s${versus}`);
    figures[`layout_${name}_seconds_N${samples}`] = value;
    setFigure(`reference_${name}_seconds_N${samples}`, other);
  }
  if (ref.umap_seconds === undefined) figures.umap_learn = ref.umap;
}

// ---- main mode ----
const tmp = await Deno.makeTempDir({ prefix: "tsne_bench_" });
const figures: Record<string, number | string> = {};
const targets: Record<string, { value: number; target: string; met: boolean }> = {};
const fmt = (v: number, d = 2) => v.toFixed(d);

console.log(
  `t-SNE bench: perplexity ${PERPLEXITY}, ${N_ITER} iterations, learning rate ${LEARNING_RATE}, ` +
    `Barnes–Hut θ 0.5, ${threads} threads each side; other jobs may share the cores.`,
);
figures.cores = navigator.hardwareConcurrency;
setFigure("load_average_start", loadAverage());
let failed = false;
try {
  const sizes = args.sizes.split(",").map(Number).filter((v) => v > 0);
  const layoutSamples = Number(args["layout-samples"]);
  if (sizes.length > 0 || layoutSamples > 0) {
    await requirePython(
      REFERENCE,
      ["numpy", "sklearn.manifold", "sklearn.decomposition"],
      args.python,
    );
  }
  for (const samples of sizes) await tsnePair(samples, features);
  if (layoutSamples > 0) await benchLayouts(layoutSamples, features);

  // tsne-js (exact, plain Euclidean distances) on a smaller problem; ours minimises the same
  // objective (the same distances, precomputed) and its time includes computing them.
  {
    const n = Number(args["tsnejs-points"]), dims = Number(args["tsnejs-samples"]);
    console.log(`\n== tsne-js: ${n} points × ${dims} dimensions ==`);
    const points = layoutPoints(dims, n, 5);
    const rows = Array.from(
      { length: n },
      (_, i) => Array.from(points.data.subarray(i * dims, (i + 1) * dims)),
    );
    const rng = new Random(SEED);
    const original = Math.random;
    Math.random = () => rng.next();
    let jsSeconds: number, jsCpu: number, jsKl: number, jsIter: number;
    try {
      const t0 = performance.now(), c0 = process.cpuUsage();
      const model = new TsneJs({
        dim: 2,
        perplexity: PERPLEXITY,
        earlyExaggeration: 4,
        learningRate: 100,
        nIter: N_ITER,
      });
      model.init({ data: rows, type: "dense" });
      [jsKl, jsIter] = model.run();
      jsSeconds = (performance.now() - t0) / 1000;
      jsCpu = cpuSeconds(c0);
    } finally {
      Math.random = original;
    }
    console.log(
      `tsne-js: ${fmt(jsSeconds)} s (CPU ${fmt(jsCpu)} s), KL ${fmt(jsKl, 4)} ` +
        `(stopped itself after ${jsIter} iterations)`,
    );
    const t0 = performance.now(), c0 = process.cpuUsage();
    const sq = await squaredDistances(points, { threads: 1 });
    const dist = Float32Array.from(sq, Math.sqrt);
    const tsne = new TSNE({
      perplexity: PERPLEXITY,
      nIter: N_ITER,
      learningRate: LEARNING_RATE,
      seed: SEED,
      metric: "precomputed",
      threads: 1,
    });
    await tsne.fit({ data: dist, shape: [n, n] });
    const ours = (performance.now() - t0) / 1000, oursCpu = cpuSeconds(c0);
    console.log(
      `ours (${tsne.method_}): ${fmt(ours, 3)} s (CPU ${fmt(oursCpu, 3)} s), KL ${
        fmt(tsne.klDivergence_!, 4)
      } ` +
        `(${tsne.nIter_} iterations)`,
    );
    const speedup = jsSeconds / ours;
    const perIteration = (jsSeconds / jsIter) / (ours / tsne.nIter_!);
    console.log(
      `speed-up over tsne-js: ${fmt(speedup, 1)}× per run (CPU ${fmt(jsCpu / oursCpu, 1)}×), ` +
        `${fmt(perIteration, 1)}× per iteration; KL ratio ours/tsne-js ${
          fmt(tsne.klDivergence_! / jsKl, 4)
        }`,
    );
    figures.tsnejs_points = n;
    figures.tsnejs_seconds = jsSeconds;
    figures.tsnejs_cpu_seconds = jsCpu;
    figures.tsnejs_iterations = jsIter;
    figures.tsnejs_kl = jsKl;
    figures.ours_small_seconds = ours;
    figures.ours_small_cpu_seconds = oursCpu;
    figures.ours_small_kl = tsne.klDivergence_!;
    targets.speedup_vs_tsnejs_per_run = { value: speedup, target: ">= 50", met: speedup >= 50 };
    targets.speedup_vs_tsnejs_per_iteration = {
      value: perIteration,
      target: ">= 50",
      met: perIteration >= 50,
    };
  }

  if (!args["no-e2e"]) {
    console.log(
      `\n== ImageTransformer fit + transform: 10,000 samples × 4,608 features → 50×50 ==`,
    );
    const child = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(import.meta.url).pathname, "--e2e", `--threads=${threads}`],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!child.success) throw new Error("the end-to-end child run failed");
    const lines = new TextDecoder().decode(child.stdout).trim().split("\n");
    const e2e = JSON.parse(lines[lines.length - 1]);
    console.log(
      `fit ${fmt(e2e.fitSeconds)} s + transform ${fmt(e2e.transformSeconds)} s = ${
        fmt(e2e.totalSeconds)
      } s; ` +
        `peak RSS ${
          typeof e2e.peakRssMiB === "number" ? `${fmt(e2e.peakRssMiB, 0)} MiB` : "unknown"
        } (input data alone: ${fmt(e2e.rssAfterDataMiB, 0)} MiB); ` +
        `KL ${fmt(e2e.kl, 4)}; ${e2e.pixelsUsed} of 2500 pixels used`,
    );
    figures.e2e_fit_seconds = e2e.fitSeconds;
    figures.e2e_transform_seconds = e2e.transformSeconds;
    figures.e2e_total_seconds = e2e.totalSeconds;
    setFigure("e2e_peak_rss_mib", e2e.peakRssMiB);
    figures.e2e_rss_after_data_mib = e2e.rssAfterDataMiB;
    figures.e2e_pixels_used = e2e.pixelsUsed;
  }
} catch (e) {
  console.error(`bench/tsne.ts failed: ${failureText(e)}`);
  failed = true;
} finally {
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
if (failed) Deno.exit(1);

setFigure("load_average_end", loadAverage());
console.log(
  "load_average_start" in figures
    ? `\nload average (1 min) at start ${figures.load_average_start}, at end ` +
      `${figures.load_average_end ?? "unknown"} on ${figures.cores} cores`
    : `\nload average unknown (no /proc/loadavg); ${figures.cores} cores`,
);
console.log(JSON.stringify({ bench: "tsne", figures, targets }));
