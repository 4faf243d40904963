/**
 * Feature maps besides t-SNE, the cosine t-SNE metric, the `qtb` discretisation and the
 * pyDeepInsight compatibility conventions of the DeepInsight layout. Expectations are
 * independent: NumPy's SVD and scikit-learn's KernelPCA and t-SNE affinities
 * (tests/_layouts_reference.py, Debian's /usr/bin/python3), hand-computed cases, and
 * properties (UMAP, the random layout).
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertLessOrEqual,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import {
  binCoordinates,
  type FeatureEmbedder,
  ImageTransformer,
  type ImageTransformerState,
  jointProbabilitiesDense,
  jointProbabilitiesSparse,
  layoutConventions,
  lsaCoordinates,
  metricDistances,
  metricNeighbors,
  qtbCoordinates,
  quantileRanks,
  rotatedBoxArea,
  TSNE,
  tsneInputDistances,
  umapLayout,
} from "../lib/image/mod.ts";
import { Random } from "../lib/random.ts";
import type { Matrix } from "../lib/types.ts";

const PYTHON = "/usr/bin/python3";
const REFERENCE = fileURLToPath(new URL("./_layouts_reference.py", import.meta.url));

function sklearnAvailable(): boolean {
  try {
    if (new Deno.Command(PYTHON, { args: ["-c", "import sklearn"] }).outputSync().success) {
      return true;
    }
  } catch {
    // missing
  }
  if (Deno.env.get("CI")) throw new Error(`CI needs ${PYTHON} with scikit-learn (python3-sklearn)`);
  console.warn(`skipping: ${PYTHON} with scikit-learn is missing (Debian: python3-sklearn)`);
  return false;
}
const noSklearn = !sklearnAvailable();

/** Writes the points to a temporary folder and runs one request of the Python reference. */
async function reference<T>(points: Matrix, request: Record<string, unknown>): Promise<T> {
  const folder = await Deno.makeTempDir({ prefix: "layouts_ref_" });
  try {
    const d = points.data;
    await Deno.writeFile(
      join(folder, "X.f32"),
      new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
    );
    const child = new Deno.Command(PYTHON, {
      args: [REFERENCE],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { OMP_NUM_THREADS: "1", OPENBLAS_NUM_THREADS: "1", MKL_NUM_THREADS: "1" },
    }).spawn();
    const writer = child.stdin.getWriter();
    const full = { ...request, folder, n: points.shape[0], d: points.shape[1] };
    await writer.write(new TextEncoder().encode(JSON.stringify(full)));
    await writer.close();
    const { success, stdout, stderr } = await child.output();
    if (!success) {
      throw new Error(`${REFERENCE} ${request.task} failed:\n${new TextDecoder().decode(stderr)}`);
    }
    return JSON.parse(new TextDecoder().decode(stdout)) as T;
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
}

/** Samples × features data whose features (the layout's points) lie near a plane plus noise. */
function structured(samples: number, features: number, seed: number): Matrix {
  const rng = new Random(seed);
  const a = Array.from({ length: samples }, () => rng.normal() * 3);
  const b = Array.from({ length: samples }, () => rng.normal() * 1.5);
  const data = new Float32Array(samples * features);
  for (let f = 0; f < features; f++) {
    const u = rng.normal(), v = rng.normal();
    for (let s = 0; s < samples; s++) {
      data[s * features + f] = 2 + u * a[s] + v * b[s] + 0.3 * rng.normal();
    }
  }
  return { data, shape: [samples, features] };
}

/** Largest |ours − theirs| over all entries, and the largest |theirs|. */
function maxDiff(ours: ArrayLike<number>, theirs: ArrayLike<number>): [number, number] {
  assertEquals(ours.length, theirs.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < ours.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
    scale = Math.max(scale, Math.abs(theirs[i]));
  }
  return [diff, scale];
}

/** Flips each column of a `[n, 2]` map so that its largest-magnitude entry is positive. */
function signNormalised(map: Matrix): Float64Array {
  const out = Float64Array.from(map.data);
  const n = map.shape[0];
  for (let k = 0; k < 2; k++) {
    let arg = 0;
    for (let i = 0; i < n; i++) if (Math.abs(out[2 * i + k]) > Math.abs(out[2 * arg + k])) arg = i;
    if (out[2 * arg + k] < 0) { for (let i = 0; i < n; i++) out[2 * i + k] = -out[2 * i + k]; }
  }
  return out;
}

function matrix2(points: number[][]): Matrix {
  return { data: Float32Array.from(points.flat()), shape: [points.length, 2] };
}

/** A feature extractor that returns a fixed map. */
function fixedMap(points: number[][]): FeatureEmbedder {
  return { fitTransform: () => matrix2(points) };
}

Deno.test({
  name: "pca layout: the transformer's map equals NumPy's SVD scores (sign-normalised)",
  ignore: noSklearn,
  fn: async () => {
    const X = structured(40, 120, 1);
    const it = new ImageTransformer({ featureExtractor: "pca", scaler: "none", pixels: 10 });
    await it.fit(X);
    const points: Matrix = {
      data: Float32Array.from(
        { length: 120 * 40 },
        (_, t) => X.data[(t % 40) * 120 + (t / 40 | 0)],
      ),
      shape: [120, 40],
    };
    const ref = await reference<{ scores: number[] }>(points, { task: "pca" });
    const [diff, scale] = maxDiff(signNormalised(it.layout().embedding), ref.scores);
    // float32 data and products; randomized PCA with 4 power iterations on a near-rank-2 set.
    assertLessOrEqual(diff, 1e-4 * scale, `max |Δ| ${diff} against scale ${scale}`);
  },
});

Deno.test({
  name: "kpca layout: scikit-learn's KernelPCA(kernel='rbf'), default and explicit gamma",
  ignore: noSklearn,
  fn: async () => {
    const X = structured(30, 150, 2);
    // Default gamma = 1 / (points' dimension) = 1 / samples.
    const it = new ImageTransformer({ featureExtractor: "kpca", scaler: "minmax", pixels: 10 });
    await it.fit(X);
    const it2 = new ImageTransformer({
      featureExtractor: "kpca",
      kernelPca: { gamma: 0.5 },
      scaler: "minmax",
      pixels: 10,
    });
    await it2.fit(X);
    // The points the layout saw: the min-max scaled matrix, transposed.
    const scaled = it.scaler_.transform(X);
    const points: Matrix = {
      data: Float32Array.from(
        { length: 150 * 30 },
        (_, t) => scaled.data[(t % 30) * 150 + (t / 30 | 0)],
      ),
      shape: [150, 30],
    };
    for (const [model, gamma] of [[it, null], [it2, 0.5]] as const) {
      const ref = await reference<{ scores: number[]; gamma: number }>(points, {
        task: "kpca",
        gamma,
      });
      assertEquals(ref.gamma, gamma ?? 1 / 30);
      const [diff, scale] = maxDiff(signNormalised(model.layout().embedding), ref.scores);
      // Tolerance: 1e-4 of the largest score (float32 kernel matrix, subspace iteration).
      assertLessOrEqual(diff, 1e-4 * scale, `gamma ${gamma}: max |Δ| ${diff}, scale ${scale}`);
    }
  },
});

Deno.test({
  name: "cosine t-SNE: input affinities equal scikit-learn's (exact and nearest-neighbour P)",
  ignore: noSklearn,
  fn: async () => {
    const rng = new Random(3);
    const n = 40, d = 12, perplexity = 8, k = Math.floor(3 * perplexity + 1);
    const data = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const scale = 0.1 + 5 * rng.next(); // cosine ignores the scale
      for (let c = 0; c < d; c++) data[i * d + c] = scale * (rng.normal() + (c === i % 3 ? 2 : 0));
    }
    const points: Matrix = { data, shape: [n, d] };
    const ref = await reference<{ exact: number[]; nn: number[] }>(points, {
      task: "cosine_p",
      perplexity,
      k,
    });
    const { P } = jointProbabilitiesDense(
      await tsneInputDistances(points, "cosine"),
      n,
      perplexity,
    );
    let [diff, scale] = maxDiff(P, ref.exact);
    assertLessOrEqual(diff, 1e-5 * scale, `exact P: max |Δ| ${diff}, scale ${scale}`);
    // The sparse path of Barnes–Hut t-SNE: cosine neighbours, distances squared.
    const nb = await metricNeighbors(points, k, "cosine");
    const squared = nb.sqDistances.map((v) => v * v);
    const sparse = jointProbabilitiesSparse(nb.indices, squared, n, k, perplexity).P;
    const dense = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let e = sparse.rowStart[i]; e < sparse.rowStart[i + 1]; e++) {
        dense[i * n + sparse.columns[e]] = sparse.values[e];
      }
    }
    [diff, scale] = maxDiff(dense, ref.nn);
    assertLessOrEqual(diff, 1e-5 * scale, `nearest-neighbour P: max |Δ| ${diff}, scale ${scale}`);
    // An all-zero row is at cosine distance 1 from every other row, as in scikit-learn's
    // cosine_distances. (Its conditional P is degenerate there: scikit-learn's comes from
    // exp() underflow, so it is not compared.)
    const withZero: Matrix = { data: Float32Array.from(data).fill(0, 0, d), shape: [n, d] };
    const dz = await metricDistances(withZero, "cosine");
    for (let j = 1; j < n; j++) assertAlmostEquals(dz[j], 1, 1e-6);
    assertEquals(dz[0], 0);
  },
});

Deno.test("cosine t-SNE groups by direction where Euclidean t-SNE groups by length", async () => {
  // Two directions × two lengths: cosine sees two groups (directions), Euclidean the lengths.
  const rng = new Random(4);
  const n = 80, d = 10;
  const data = new Float32Array(n * d);
  const direction = (i: number) => i % 2, long = (i: number) => (i >> 1) % 2;
  for (let i = 0; i < n; i++) {
    const length = long(i) ? 20 : 1;
    for (let c = 0; c < d; c++) {
      const base = direction(i) ? (c < 5 ? 1 : 0.2) : (c < 5 ? 0.2 : 1);
      data[i * d + c] = length * (base + 0.05 * rng.normal());
    }
  }
  const points: Matrix = { data, shape: [n, d] };
  const agreement = (map: Matrix, group: (i: number) => number) => {
    let same = 0;
    for (let i = 0; i < n; i++) {
      let best = -1, bestD = Infinity;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const dd = (map.data[2 * i] - map.data[2 * j]) ** 2 +
          (map.data[2 * i + 1] - map.data[2 * j + 1]) ** 2;
        if (dd < bestD) [bestD, best] = [dd, j];
      }
      if (group(best) === group(i)) same++;
    }
    return same / n;
  };
  const options = { perplexity: 10, nIter: 400, seed: 1, method: "exact" as const };
  const cosine = await new TSNE({ ...options, metric: "cosine" }).fitTransform(points);
  const euclidean = await new TSNE(options).fitTransform(points);
  // Nearest map neighbours: cosine keeps the direction but mixes the lengths (chance: ½);
  // Euclidean keeps the length.
  assertLessOrEqual(0.95, agreement(cosine, direction));
  assertLessOrEqual(agreement(cosine, long), 0.75);
  assertEquals(agreement(euclidean, long), 1);
  assertThrows(() => new TSNE({ metric: "manhattan" as "cosine" }), Error, "metric must be");
});

/** `per` points in each of `clusters` well-separated Gaussian clusters in `d` dimensions. */
function clusters(per: number, count: number, d: number, seed: number): Matrix {
  const rng = new Random(seed);
  const data = new Float32Array(per * count * d);
  for (let i = 0; i < per * count; i++) {
    const c = i % count;
    for (let k = 0; k < d; k++) data[i * d + k] = rng.normal() + (k % count === c ? 12 : 0);
  }
  return { data, shape: [per * count, d] };
}

Deno.test("umap: clusters stay together (neighbourhood preservation); seeded and deterministic", async () => {
  const count = 3, points = clusters(50, count, 20, 5);
  const n = points.shape[0];
  const map = await umapLayout(points, { seed: 7, nEpochs: 200 });
  assertEquals(map.shape, [n, 2]);
  // Each point's 10 nearest neighbours in the map come from its own cluster.
  let same = 0, total = 0;
  for (let i = 0; i < n; i++) {
    const order = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i).sort((a, b) =>
      (map.data[2 * a] - map.data[2 * i]) ** 2 + (map.data[2 * a + 1] - map.data[2 * i + 1]) ** 2 -
      (map.data[2 * b] - map.data[2 * i]) ** 2 - (map.data[2 * b + 1] - map.data[2 * i + 1]) ** 2
    );
    for (const j of order.slice(0, 10)) {
      total++;
      if (j % count === i % count) same++;
    }
  }
  assertLessOrEqual(0.99, same / total, `neighbourhood preservation ${same / total}`);
  const again = await umapLayout(points, { seed: 7, nEpochs: 200 });
  assertEquals(Array.from(again.data), Array.from(map.data));
  const other = await umapLayout(points, { seed: 8, nEpochs: 200 });
  assertNotEquals(Array.from(other.data), Array.from(map.data));
  // Cosine metric runs too, and bad options name the fix.
  const cosine = await umapLayout(points, { seed: 7, nEpochs: 50, metric: "cosine" });
  assert(cosine.data.every(Number.isFinite));
  await (async () => {
    let message = "";
    try {
      await umapLayout({ data: new Float32Array(10 * 3), shape: [10, 3] });
    } catch (e) {
      message = (e as Error).message;
    }
    assert(message.includes("lower umap.nNeighbors"), message);
  })();
  assertThrows(
    () => new ImageTransformer({ featureExtractor: "umap", umap: { minDist: 2 } }),
    Error,
    "minDist",
  );
});

Deno.test("random layout: seeded, reproducible, data-blind, every feature on a pixel, even coverage", async () => {
  const features = 2000, samples = 8, pixels = 20;
  const rng = new Random(9);
  const X: Matrix = {
    data: Float32Array.from({ length: samples * features }, () => rng.normal()),
    shape: [samples, features],
  };
  const fit = async (seed: number, data: Matrix) =>
    await new ImageTransformer({ featureExtractor: "random", seed, pixels, scaler: "none" })
      .fit(data);
  const a = await fit(3, X);
  const coords = a.coords();
  assertEquals(coords.shape, [features, 2]);
  assert(coords.data.every((v) => v >= 0 && v < pixels), "every feature on the grid");
  const density = a.featureDensityMatrix().data;
  assertEquals(density.reduce((s, v) => s + v, 0), features);
  // The paper's `bin` edges give P − 1 full-width bins per axis and a last one holding only
  // the maximum: the 19 × 19 inner pixels get multinomial counts of mean 2000/361 ≈ 5.5
  // (about e^−5.5 ≈ 0.4 % empty); each inner row and column about 2000/19 ≈ 105.
  let emptyInner = 0;
  for (let r = 0; r < pixels - 1; r++) {
    for (let c = 0; c < pixels - 1; c++) if (density[r * pixels + c] === 0) emptyInner++;
  }
  assertLessOrEqual(emptyInner / (pixels - 1) ** 2, 0.03, `${emptyInner} inner pixels empty`);
  for (let axis = 0; axis < 2; axis++) {
    const counts = new Array(pixels).fill(0);
    for (let j = 0; j < features; j++) counts[coords.data[2 * j + axis]]++;
    // Binomial sd ≈ 10; allow ±45. The last bin holds the extreme feature(s) only.
    for (const c of counts.slice(0, -1)) assert(c >= 60 && c <= 150, `axis ${axis}: ${counts}`);
    assertLessOrEqual(counts[pixels - 1], 3);
  }
  // With `qtb` every row and column gets 100 features exactly.
  a.setPixels(pixels, "qtb");
  for (let axis = 0; axis < 2; axis++) {
    const counts = new Array(pixels).fill(0);
    for (let j = 0; j < features; j++) counts[a.coords().data[2 * j + axis]]++;
    assertEquals(counts, new Array(pixels).fill(features / pixels));
  }
  a.setPixels(pixels, "bin");
  // Same seed: same pixels, whatever the data; another seed: other pixels.
  const shuffled: Matrix = { data: X.data.map((v) => v * 3 + 1), shape: X.shape };
  assertEquals(Array.from((await fit(3, shuffled)).coords().data), Array.from(coords.data));
  assertNotEquals(Array.from((await fit(4, X)).coords().data), Array.from(coords.data));
});

Deno.test("qtb: hand-computed quantile ranks and pixels", () => {
  // Ranks of [0, 10, 1, 100, 2] are 0, 3, 1, 4, 2 → /4; ties share their average rank.
  assertEquals(Array.from(quantileRanks([0, 10, 1, 100, 2])), [0, 0.75, 0.25, 1, 0.5]);
  assertEquals(Array.from(quantileRanks([5, 1, 5, 5, 0])), [0.75, 0.25, 0.75, 0.75, 0]);
  assertEquals(Array.from(quantileRanks([7])), [0]);
  // Axis 0: [0, 10, 1, 100, 2] → ranks ×5 = 0, 3.75, 1.25, 5 (→ last), 2.5 → rows 0, 3, 1, 4, 2.
  // Axis 1: [3, 3, 3, 9, −1] → ranks 0.5, 0.5, 0.5, 1, 0 → ×4 = 2, 2, 2, 4 (→ 3), 0.
  const rotated = matrix2([[0, 3], [10, 3], [1, 3], [100, 9], [2, -1]]);
  const coords = qtbCoordinates(rotated, [5, 4]);
  assertEquals(Array.from(coords.data), [0, 2, 3, 2, 1, 2, 4, 3, 2, 0]);
  // `bin` of the same map crowds four features into row 0.
  const binned = binCoordinates(rotated, [5, 4]);
  assertEquals([0, 1, 2, 3, 4].map((i) => binned.data[2 * i]), [0, 0, 0, 4, 0]);
});

Deno.test("qtb through the transformer: a skewed map spreads evenly over rows and columns", async () => {
  const rng = new Random(12);
  // Log-normal clump: `bin` leaves most pixels empty; `qtb` puts n/P features in each row.
  const n = 400,
    map = Array.from({ length: n }, () => [Math.exp(2 * rng.normal()), rng.normal() ** 3]);
  const X: Matrix = { data: new Float32Array(3 * n).fill(1), shape: [3, n] };
  const it = new ImageTransformer({
    featureExtractor: fixedMap(map),
    discretization: "qtb",
    pixels: 10,
    scaler: "none",
  });
  await it.fit(X);
  const coords = it.coords();
  const rotated = it.layout().rotated;
  assertEquals(Array.from(coords.data), Array.from(qtbCoordinates(rotated, [10, 10]).data));
  for (let axis = 0; axis < 2; axis++) {
    const counts = new Array(10).fill(0);
    for (let j = 0; j < n; j++) counts[coords.data[2 * j + axis]]++;
    assertEquals(counts, new Array(10).fill(40), `axis ${axis}`);
  }
  const used = it.featureDensityMatrix().data.filter((c) => c > 0).length;
  it.setPixels(10, "bin");
  const usedByBin = it.featureDensityMatrix().data.filter((c) => c > 0).length;
  assert(used > usedByBin + 20, `qtb uses ${used} pixels, bin ${usedByBin}`);
});

Deno.test("compat: pyDeepInsight's rotation sign gives a larger box on a hand-made map", async () => {
  // A 4 × 1 rectangle turned by 30°: the minimum rectangle has area 4, at angle 30°.
  // pyDeepInsight rotates by +30° instead of −30°, leaving the rectangle at 60°, whose
  // axis-aligned box is (4 cos 60° + sin 60°) × (4 sin 60° + cos 60°) = 2.866 × 3.964.
  const t = Math.PI / 6;
  const local = [[0, 0], [4, 0], [4, 1], [0, 1], [2, 0.5], [1, 0.25]];
  const map = local.map((
    [u, v],
  ) => [Math.cos(t) * u - Math.sin(t) * v, Math.sin(t) * u + Math.cos(t) * v]);
  const X: Matrix = { data: new Float32Array(2 * map.length).fill(1), shape: [2, map.length] };
  const boxArea = (it: ImageTransformer) => rotatedBoxArea(it.layout().rotated, 0).area;
  const ours = await new ImageTransformer({
    featureExtractor: fixedMap(map),
    pixels: 4,
    scaler: "none",
  }).fit(X);
  const theirs = await new ImageTransformer({
    featureExtractor: fixedMap(map),
    pixels: 4,
    scaler: "none",
    compat: "pydeepinsight-2021",
  }).fit(X);
  assert(Math.abs(ours.layout().rectangle.angle - t) < 1e-6);
  assert(Math.abs(boxArea(ours) - 4) < 1e-4, `ours ${boxArea(ours)}`);
  const expected = (4 * Math.cos(2 * t) + Math.sin(2 * t)) *
    (4 * Math.sin(2 * t) + Math.cos(2 * t));
  assert(Math.abs(boxArea(theirs) - expected) < 1e-4, `theirs ${boxArea(theirs)} vs ${expected}`);
  // Both keep the same (minimum) rectangle; only the rotation applied differs.
  assertEquals(theirs.layout().rectangle.area, ours.layout().rectangle.area);
  // The 2021 code only bins.
  assertThrows(
    () => new ImageTransformer({ compat: "pydeepinsight-2021", discretization: "lsa" }),
    Error,
    "only bins",
  );
  assertThrows(() => theirs.setPixels(4, "qtb"), Error, "only bins");
  assertThrows(
    () => new ImageTransformer({ compat: "other" as "pydeepinsight" }),
    Error,
    "compat must be",
  );
});

Deno.test("compat: equal-width bins and pyDeepInsight's lsa centres, hand-computed", async () => {
  assertEquals(layoutConventions(), {
    rotationSign: -1,
    bins: "edges",
    lsaCentres: "grid",
    discretizations: ["bin", "qtb", "lsa"],
  });
  // Axis-aligned 3 × 2 map on 3 × 3: equal-width bins floor(x) and floor(1.5 y); the 2021
  // edges (0, 1.5, 3 and 0, 1, 2) put f4 (1.4, 0.9) in (0, 0), equal widths in (1, 1).
  const map = [[0, 0], [3, 2], [0, 2], [3, 0], [1.4, 0.9], [1.6, 1.1]];
  const X: Matrix = { data: new Float32Array(2 * map.length).fill(1), shape: [2, map.length] };
  const make = (compat?: "pydeepinsight") =>
    new ImageTransformer({ featureExtractor: fixedMap(map), pixels: 3, scaler: "none", compat })
      .fit(X);
  assertEquals(Array.from((await make()).coords().data), [0, 0, 2, 2, 0, 2, 2, 0, 0, 0, 1, 1]);
  assertEquals(Array.from((await make("pydeepinsight")).coords().data), [
    0,
    0,
    2,
    2,
    0,
    2,
    2,
    0,
    1,
    1,
    1,
    1,
  ]);
  // lsa on a 1 × 5 grid, x = 0, 0.6, 1: ours scales to [0, 4] → 0, 2.4, 4 → columns 0, 2, 4;
  // pyDeepInsight's to [0, 5] → 0, 3, 5 → nearest free centres 0, 3, 4.
  const line = matrix2([[0, 0], [0, 0.6], [0, 1]]);
  const columns = (c: { data: Int32Array }) => [c.data[1], c.data[3], c.data[5]];
  assertEquals(columns(lsaCoordinates(line, [1, 5])), [0, 2, 4]);
  assertEquals(columns(lsaCoordinates(line, [1, 5], { centres: "pydeepinsight" })), [0, 3, 4]);
});

Deno.test("every layout option is saved and loaded; older files read as the defaults", async () => {
  const rng = new Random(21);
  const X: Matrix = {
    data: Float32Array.from({ length: 20 * 60 }, () => rng.next() * 4),
    shape: [20, 60],
  };
  const it = new ImageTransformer({
    featureExtractor: "kpca",
    kernelPca: { gamma: 0.2 },
    umap: { nNeighbors: 5, metric: "cosine" },
    tsne: { metric: "cosine", seed: 4 },
    discretization: "qtb",
    compat: "pydeepinsight",
    pixels: 6,
  });
  await it.fit(X);
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await it.save(path);
    const loaded = await ImageTransformer.load(path);
    assertEquals(loaded.featureExtractor, "kpca");
    assertEquals(loaded.kernelPcaOptions, { gamma: 0.2 });
    assertEquals(loaded.umapOptions, { nNeighbors: 5, metric: "cosine" });
    assertEquals(loaded.tsneOptions.metric, "cosine");
    assertEquals(loaded.discretization, "qtb");
    assertEquals(loaded.compat, "pydeepinsight");
    assertEquals(loaded.seed, 4);
    assertEquals(Array.from(loaded.coords().data), Array.from(it.coords().data));
    assertEquals(Array.from(loaded.transform(X).data), Array.from(it.transform(X).data));
    assertEquals(Array.from(loaded.layout().rotated.data), Array.from(it.layout().rotated.data));
  } finally {
    await Deno.remove(path);
  }
  // A state written before these options existed: no kernelPca, umap or compat fields.
  const plain = new ImageTransformer({ featureExtractor: "random", pixels: 6 });
  await plain.fit(X);
  const { kernelPca: _k, umap: _u, compat: _c, ...old } = plain.toJSON();
  const restored = ImageTransformer.fromJSON(old as ImageTransformerState);
  assertEquals(restored.featureExtractor, "random");
  assertEquals([restored.kernelPcaOptions, restored.umapOptions, restored.compat], [
    {},
    {},
    undefined,
  ]);
  assertEquals(Array.from(restored.coords().data), Array.from(plain.coords().data));
  assertThrows(() => new ImageTransformer({ featureExtractor: "lda" as "pca" }), Error, '"kpca"');
  assertThrows(() => new ImageTransformer({ discretization: "ags" as "bin" }), Error, '"qtb"');
});
