/**
 * Our t-SNE and its building blocks: distances against a naive loop, the perplexity search
 * against its definition, the quadtree against brute-force forces, PCA against an
 * eigen-decomposition, the map of Gaussian blobs (5-NN accuracy, seed reproducibility) and
 * the KL it reaches against tsne-js (an independent exact implementation).
 */
import { assert, assertAlmostEquals, assertEquals, assertLessOrEqual } from "@std/assert";
import TsneJs from "tsne-js";
import {
  conditionalProbabilities,
  jointProbabilitiesDense,
  klDivergenceExact,
  nearestNeighbors,
  randomizedPca,
  squaredDistances,
  symmetricEigen,
  TSNE,
} from "../lib/image/mod.ts";
import { effectiveThetaSq, FlatTree, negativeForces, QuadTree } from "../lib/image/quadtree.ts";
import { Random } from "../lib/random.ts";
import type { Matrix } from "../lib/types.ts";

/** `k` Gaussian blobs of `per` points in `d` dimensions; centres spread by `spread`. */
function blobs(k: number, per: number, d: number, spread: number, seed: number) {
  const rng = new Random(seed);
  const centres = Array.from(
    { length: k },
    () => Array.from({ length: d }, () => rng.normal() * spread),
  );
  const n = k * per;
  const data = new Float32Array(n * d);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % k;
    labels[i] = c;
    for (let a = 0; a < d; a++) data[i * d + a] = centres[c][a] + rng.normal();
  }
  return { points: { data, shape: [n, d] } as Matrix, labels };
}

function naiveSqDist(p: Matrix, i: number, j: number): number {
  const d = p.shape[1];
  let s = 0;
  for (let a = 0; a < d; a++) {
    const t = p.data[i * d + a] - p.data[j * d + a];
    s += t * t;
  }
  return s;
}

/** Majority label among each point's 5 nearest neighbours in the map. */
function knnAccuracy(map: Matrix, labels: Int32Array, k = 5): number {
  const n = map.shape[0];
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const d: Array<[number, number]> = [];
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      d.push([
        (map.data[2 * i] - map.data[2 * j]) ** 2 + (map.data[2 * i + 1] - map.data[2 * j + 1]) ** 2,
        j,
      ]);
    }
    d.sort((a, b) => a[0] - b[0]);
    const votes = new Map<number, number>();
    for (let t = 0; t < k; t++) votes.set(labels[d[t][1]], (votes.get(labels[d[t][1]]) ?? 0) + 1);
    const best = [...votes.entries()].sort((a, b) => b[1] - a[1])[0][0];
    if (best === labels[i]) correct++;
  }
  return correct / n;
}

Deno.test("distances: wasm blocked products match a naive loop (1 and 2 workers)", async () => {
  const rng = new Random(1);
  const n = 300, d = 70;
  // An offset far from 0 makes the ‖a‖² + ‖b‖² − 2a·b cancellation visible without centring.
  const points: Matrix = {
    data: Float32Array.from({ length: n * d }, () => 20 + rng.normal()),
    shape: [n, d],
  };
  for (const threads of [1, 2]) {
    const D = await squaredDistances(points, { threads, blockSize: 64, chunkSize: 32 });
    for (let t = 0; t < 3000; t++) {
      const i = rng.int(n), j = rng.int(n);
      const expected = i === j ? 0 : naiveSqDist(points, i, j);
      assertAlmostEquals(D[i * n + j], expected, 1e-4 * Math.max(1, expected));
    }
    const nb = await nearestNeighbors(points, 7, { threads, blockSize: 64 });
    for (const i of [0, 17, 299]) {
      const order = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i)
        .map((j) => [naiveSqDist(points, i, j), j]).sort((a, b) => a[0] - b[0]).slice(0, 7);
      assertEquals(Array.from(nb.indices.subarray(i * 7, i * 7 + 7)), order.map((o) => o[1]));
      order.forEach(([v], t) => assertAlmostEquals(nb.sqDistances[i * 7 + t], v, 1e-4 * v));
    }
  }
});

Deno.test("perplexity search: each row's entropy is log(perplexity)", () => {
  const rng = new Random(2);
  const n = 50, m = 40;
  const dist = Float64Array.from({ length: n * m }, () => rng.next() * 1000);
  for (const perplexity of [5, 30]) {
    const { probabilities } = conditionalProbabilities(dist, n, m, perplexity, false);
    for (let i = 0; i < n; i++) {
      let sum = 0, entropy = 0;
      for (let j = 0; j < m; j++) {
        const p = probabilities[i * m + j];
        sum += p;
        if (p > 0) entropy -= p * Math.log(p);
      }
      assertAlmostEquals(sum, 1, 1e-9);
      assertAlmostEquals(entropy, Math.log(perplexity), 1e-4);
    }
  }
});

Deno.test("quadtree: θ=0 gives the exact repulsive forces, θ=0.5 is close", () => {
  const rng = new Random(3);
  const n = 500;
  const y = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    y[2 * i] = (i % 5) * 8 + rng.normal();
    y[2 * i + 1] = rng.normal() * 3;
  }
  y[2] = y[0]; // a duplicate point
  y[3] = y[1];
  let zExact = 0;
  const fExact = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j || (y[2 * i] === y[2 * j] && y[2 * i + 1] === y[2 * j + 1])) continue;
      const dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      const q = 1 / (1 + dx * dx + dy * dy);
      zExact += q;
      fExact[2 * i] += q * q * dx;
      fExact[2 * i + 1] += q * q * dy;
    }
  }
  const tree = new QuadTree();
  tree.build(y, n);
  for (const [theta, tol] of [[0, 1e-5], [0.5, 0.02]]) {
    const flat = new FlatTree();
    const thetaSq = effectiveThetaSq(theta);
    flat.flatten(tree, thetaSq, n);
    const f = new Float64Array(2 * n);
    const z = negativeForces(flat, y, 0, n, thetaSq, f);
    assertAlmostEquals(z, zExact, tol * zExact);
    let err = 0, norm = 0;
    for (let t = 0; t < 2 * n; t++) {
      err += (f[t] - fExact[t]) ** 2;
      norm += fExact[t] ** 2;
    }
    assertLessOrEqual(Math.sqrt(err / norm), theta === 0 ? 1e-5 : 0.05);
  }
});

Deno.test("randomized PCA matches the covariance eigenvectors", async () => {
  const rng = new Random(4);
  const n = 200, d = 12;
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const a = rng.normal() * 5, b = rng.normal() * 2;
    for (let c = 0; c < d; c++) {
      data[i * d + c] = a * Math.sin(c + 1) + b * Math.cos(2 * c) + 0.1 * rng.normal() + 3;
    }
  }
  const { scores, explainedVariance } = await randomizedPca({ data, shape: [n, d] }, 2, {
    seed: 1,
  });
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c] += data[i * d + c] / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) {
        cov[a * d + b] += (data[i * d + a] - mean[a]) * (data[i * d + b] - mean[b]) / (n - 1);
      }
    }
  }
  const { values, vectors } = symmetricEigen(cov, d);
  for (let k = 0; k < 2; k++) {
    assertAlmostEquals(explainedVariance[k], values[k], 1e-3 * values[k]);
    const proj = Array.from({ length: n }, (_, i) => {
      let s = 0;
      for (let c = 0; c < d; c++) s += (data[i * d + c] - mean[c]) * vectors[c * d + k];
      return s;
    });
    const sign = Math.sign(proj[0]) === Math.sign(scores.data[k]) ? 1 : -1;
    for (let i = 0; i < n; i++) {
      assertAlmostEquals(scores.data[i * 2 + k], sign * proj[i], 1e-3 * Math.sqrt(values[k]));
    }
  }
});

Deno.test("t-SNE on 5 Gaussian blobs × 200 in 50-D: 5-NN accuracy ≥ 0.95, same seed → same map", async () => {
  const { points, labels } = blobs(5, 200, 50, 3, 5);
  const first = new TSNE({ seed: 42 });
  const map = await first.fitTransform(points);
  assertEquals(first.method_, "barnes_hut");
  assertEquals(map.shape, [1000, 2]);
  const accuracy = knnAccuracy(map, labels);
  assert(accuracy >= 0.95, `5-NN accuracy ${accuracy}`);
  assert(Number.isFinite(first.klDivergence_!) && first.klDivergence_! > 0);
  const again = await new TSNE({ seed: 42 }).fitTransform(points);
  assertEquals(again.data, map.data);
  const other = await new TSNE({ seed: 43 }).fitTransform(points);
  assert(other.data.some((v, i) => v !== map.data[i]), "another seed gives another map");
});

Deno.test("Barnes–Hut with worker threads gives the same map as one thread", async () => {
  const { points } = blobs(4, 150, 20, 3, 8);
  const options = { seed: 3, method: "barnes_hut" as const, nIter: 300 };
  const one = new TSNE({ ...options, threads: 1 });
  const two = new TSNE({ ...options, threads: 2 });
  const a = await one.fitTransform(points);
  const b = await two.fitTransform(points);
  assertEquals(b.data, a.data);
  assertEquals(two.klDivergence_, one.klDivergence_);
});

Deno.test("t-SNE KL agrees with tsne-js within 10% on the same affinities", async () => {
  // tsne-js builds P from plain (not squared) Euclidean distances; we give ours the same
  // distances as a precomputed matrix so both minimise the same objective.
  const { points } = blobs(4, 40, 10, 2, 6);
  const [n, d] = points.shape;
  const dist = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      dist[i * n + j] = i === j ? 0 : Math.sqrt(naiveSqDist(points, i, j));
    }
  }
  const ours = new TSNE({ metric: "precomputed", method: "exact", seed: 7 });
  const map = await ours.fitTransform({ data: dist, shape: [n, n] });

  // tsne-js draws its start from Math.random: seed it for a reproducible test.
  const rng = new Random(7);
  const original = Math.random;
  Math.random = () => rng.next();
  let theirs: number[][];
  let theirKl: number;
  try {
    const model = new TsneJs({
      dim: 2,
      perplexity: 30,
      earlyExaggeration: 4,
      learningRate: 100,
      nIter: 1000,
    });
    const rows = Array.from(
      { length: n },
      (_, i) => Array.from(points.data.subarray(i * d, (i + 1) * d)),
    );
    model.init({ data: rows, type: "dense" });
    [theirKl] = model.run();
    theirs = model.getOutput();
  } finally {
    Math.random = original;
  }
  // Both maps scored against the same P by one KL function, and each side's own report.
  const { P } = jointProbabilitiesDense(Float64Array.from(dist, (v) => v), n, 30);
  const theirMap: Matrix = { data: Float32Array.from(theirs.flat()), shape: [n, 2] };
  const klOurs = klDivergenceExact(P, map);
  const klTheirs = klDivergenceExact(P, theirMap);
  assertAlmostEquals(klOurs, ours.klDivergence_!, 1e-3 * klOurs);
  assertAlmostEquals(klTheirs, theirKl, 0.02 * theirKl);
  const ratio = klOurs / klTheirs;
  assert(
    Math.abs(ratio - 1) <= 0.1,
    `KL ours ${klOurs.toFixed(4)} vs tsne-js ${klTheirs.toFixed(4)}`,
  );
});
