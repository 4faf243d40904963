/**
 * Multiple representations (MultiRepresentation, pyDeepInsight's MRep idea): each layout must
 * equal a separately fitted ImageTransformer with the same options, the stacked channels the
 * separate images; plus the grid-mismatch error, save/load, and averageProbabilities on hand
 * cases.
 */
import { assertAlmostEquals, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "node:path";
import {
  averageProbabilities,
  ImageTransformer,
  type ImageTransformerOptions,
  MultiRepresentation,
} from "../lib/image/mod.ts";
import { CorruptCacheError } from "../lib/integrity.ts";
import { Random } from "../lib/random.ts";
import type { Matrix } from "../lib/types.ts";

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const rng = new Random(seed);
  return {
    data: Float32Array.from({ length: rows * cols }, () => rng.next()),
    shape: [rows, cols],
  };
}

const REPRESENTATIONS: ImageTransformerOptions[] = [
  { featureExtractor: "pca" },
  { featureExtractor: "kpca", discretization: "qtb" },
  { featureExtractor: "tsne", tsne: { nIter: 250, perplexity: 5, seed: 3 } },
  { featureExtractor: "random", discretization: "lsa", scaler: "minmax" },
];

Deno.test("each representation equals a separately fitted ImageTransformer; stacked = separate", async () => {
  const X = randomMatrix(15, 20, 1), T = randomMatrix(4, 20, 2);
  const mrep = await new MultiRepresentation({
    representations: REPRESENTATIONS,
    shared: { pixels: 5 },
  }).fit(X);
  assertEquals(mrep.size, 4);
  const images = mrep.transform(T);
  const coords = mrep.coords();
  const stacked = mrep.transformStacked(T);
  assertEquals(stacked.shape, [4, 5, 5, 4]);
  for (let r = 0; r < REPRESENTATIONS.length; r++) {
    const alone = await new ImageTransformer({ pixels: 5, ...REPRESENTATIONS[r] }).fit(X);
    assertEquals(Array.from(coords[r].data), Array.from(alone.coords().data), `coords ${r}`);
    const expected = alone.transform(T);
    assertEquals(images[r].shape, [4, 5, 5]);
    assertEquals(Array.from(images[r].data), Array.from(expected.data), `images ${r}`);
    for (let q = 0; q < 4 * 25; q++) assertEquals(stacked.data[q * 4 + r], expected.data[q]);
  }
});

Deno.test("defaults: t-SNE, PCA and kernel PCA; shared options apply, own options win", () => {
  const mrep = new MultiRepresentation({ shared: { pixels: 7, featureExtractor: "umap" } });
  assertEquals(mrep.representations.map((r) => r.featureExtractor), ["tsne", "pca", "kpca"]);
  assertEquals(mrep.representations.map((r) => r.pixels), [7, 7, 7]);
  assertThrows(() => new MultiRepresentation({ representations: [] }), Error, "non-empty array");
  assertThrows(
    () => new MultiRepresentation({ representations: [{ discretization: "nope" as "bin" }] }),
    Error,
    "discretization must be",
  );
});

Deno.test("transformStacked needs one grid; transform works with mixed grids", async () => {
  const X = randomMatrix(8, 10, 4);
  const mrep = await new MultiRepresentation({
    representations: [{ featureExtractor: "pca", pixels: 4 }, {
      featureExtractor: "random",
      pixels: [3, 5],
    }],
  }).fit(X);
  assertThrows(
    () => mrep.transformStacked(X),
    Error,
    "representation 0 is 4×4 and representation 1 is 3×5",
  );
  assertEquals(mrep.transform(X).map((b) => b.shape), [[8, 4, 4], [8, 3, 5]]);
  assertThrows(
    () => new MultiRepresentation().transform(X),
    Error,
    "MultiRepresentation is not fitted",
  );
});

Deno.test("save/load round trip", async () => {
  const folder = await Deno.makeTempDir({ prefix: "mrep_" });
  try {
    const X = randomMatrix(10, 12, 6);
    const mrep = await new MultiRepresentation({
      representations: [{ featureExtractor: "pca" }, { featureExtractor: "kpca" }],
      shared: { pixels: 4, scaler: "minmax" },
    }).fit(X);
    const path = join(folder, "mrep.json");
    await mrep.save(path);
    const back = await MultiRepresentation.load(path);
    assertEquals(back.size, 2);
    assertEquals(back.representations.map((r) => r.featureExtractor), ["pca", "kpca"]);
    back.coords().forEach((c, r) =>
      assertEquals(Array.from(c.data), Array.from(mrep.coords()[r].data))
    );
    assertEquals(
      Array.from(back.transformStacked(X).data),
      Array.from(mrep.transformStacked(X).data),
    );
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace('"pca"', '"umap"'));
    await assertRejects(() => MultiRepresentation.load(path), CorruptCacheError);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("averageProbabilities: element-wise mean; mismatched lengths and none are errors", () => {
  const mean = averageProbabilities([
    Float32Array.from([0.2, 0.9, 0.5]),
    Float32Array.from([0.4, 0.6, 0.5]),
    Float32Array.from([0.9, 0.3, 0.2]),
  ]);
  [0.5, 0.6, 0.4].forEach((v, i) => assertAlmostEquals(mean[i], v, 1e-6));
  assertEquals(Array.from(averageProbabilities([Float32Array.from([0.25, 1])])), [0.25, 1]);
  assertThrows(
    () => averageProbabilities([new Float32Array(3), new Float32Array(2)]),
    Error,
    "array 1 has 2 values but array 0 has 3",
  );
  assertThrows(() => averageProbabilities([]), Error, "at least one");
});
