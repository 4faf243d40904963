/**
 * Hidden states as channels (StateChannelTransformer): one layout over a state's dimensions,
 * each state painted into its own channel. Expectations are independent: single non-zero
 * inputs located by hand, a hand-computed RGB grouping, and comparisons with an
 * ImageTransformer fitted on a block built here by hand.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "node:path";
import {
  type FeatureEmbedder,
  ImageTransformer,
  rgbGroups,
  StateChannelTransformer,
  statesToRgb,
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

/** Columns `s·d … (s+1)·d − 1` of `X`, copied by hand. */
function block(X: Matrix, S: number, s: number): Matrix {
  const [n, cols] = X.shape, d = cols / S;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) out.push(X.data[i * cols + s * d + j]);
  }
  return { data: Float32Array.from(out), shape: [n, d] };
}

Deno.test("lsa with d ≤ H·W: one pixel per dimension; a value lands in its pixel and channel only", async () => {
  const S = 3, d = 12, n = 10;
  const sct = new StateChannelTransformer({
    states: S,
    featureExtractor: "pca",
    discretization: "lsa",
    scaler: "none",
    pixels: 4,
  });
  await sct.fit(randomMatrix(n, S * d, 3));
  const coords = sct.coords();
  assertEquals(coords.shape, [d, 2]);
  const pixels = new Set<number>();
  for (let j = 0; j < d; j++) pixels.add(coords.data[2 * j] * 4 + coords.data[2 * j + 1]);
  assertEquals(pixels.size, d, "every dimension has a pixel of its own");
  const density = Array.from(sct.featureDensityMatrix().data);
  assertEquals(Math.max(...density), 1);
  assertEquals(density.reduce((a, b) => a + b, 0), d);

  for (const [i, s, j] of [[0, 0, 0], [1, 2, 5], [2, 1, 11], [1, 0, 7]]) {
    const X: Matrix = { data: new Float32Array(3 * S * d), shape: [3, S * d] };
    X.data[i * S * d + s * d + j] = 0.75;
    const out = sct.transform(X);
    assertEquals(out.shape, [3, 4, 4, S]);
    const nonZero = [...out.data.keys()].filter((k) => out.data[k] !== 0);
    const [row, col] = [coords.data[2 * j], coords.data[2 * j + 1]];
    assertEquals(nonZero, [((i * 4 + row) * 4 + col) * S + s], `sample ${i} state ${s} dim ${j}`);
    assertEquals(out.data[nonZero[0]], 0.75);
  }
});

/** A feature extractor that returns a fixed map (pixels computable by hand). */
function fixedMap(points: number[][]): FeatureEmbedder {
  return {
    fitTransform: () => ({ data: Float32Array.from(points.flat()), shape: [points.length, 2] }),
  };
}

Deno.test("rgbGroups: contiguous groups, S = 2 adds the mean, S = 3 is the identity", () => {
  assertEquals(rgbGroups(6), [[0, 1], [2, 3], [4, 5]]);
  assertEquals(rgbGroups(4), [[0], [1], [2, 3]]);
  assertEquals(rgbGroups(5), [[0], [1, 2], [3, 4]]);
  assertEquals(rgbGroups(7), [[0, 1], [2, 3], [4, 5, 6]]);
  assertEquals(rgbGroups(3), [[0], [1], [2]]);
  assertEquals(rgbGroups(2), [[0], [1], [0, 1]]);
  assertEquals(rgbGroups(1), [[0], [0], [0]]);
  assertThrows(() => rgbGroups(0), Error, "states must be a positive integer");
});

Deno.test("toRgb on a hand case: 6 states → means of (0,1), (2,3), (4,5)", async () => {
  // 2 dimensions on a 1 × 2 grid: dimension 0 at (0, 0), dimension 1 at (0, 1).
  const S = 6;
  const sct = new StateChannelTransformer({
    states: S,
    featureExtractor: fixedMap([[0, 0], [0, 1]]),
    pixels: [1, 2],
    scaler: "none",
  });
  // State s holds (s + 1, 10·(s + 1)).
  const row = Array.from({ length: S }, (_, s) => [s + 1, 10 * (s + 1)]).flat();
  const X: Matrix = { data: Float32Array.from(row), shape: [1, 2 * S] };
  await sct.fit(X);
  const all = sct.transform(X);
  assertEquals(all.shape, [1, 1, 2, 6]);
  assertEquals(Array.from(all.data), [1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60]);
  const rgb = sct.transform(X, { toRgb: true });
  assertEquals(rgb.shape, [1, 1, 2, 3]);
  assertEquals(Array.from(rgb.data), [1.5, 3.5, 5.5, 15, 35, 55]);
  assertEquals(Array.from(statesToRgb(all).data), Array.from(rgb.data));
  // S = 2 by hand: [s0, s1, mean].
  const two = statesToRgb({ data: Float32Array.from([1, 3, -2, 4]), shape: [1, 1, 2, 2] });
  assertEquals(Array.from(two.data), [1, 3, 2, -2, 4, 1]);
});

Deno.test("fitOn: together fits on the states stacked as rows; fitOn: k on state k alone", async () => {
  const S = 3, d = 8, n = 12;
  const X = randomMatrix(n, S * d, 7);
  const options = { featureExtractor: "pca", pixels: 5, scaler: "minmax" } as const;

  const together = await new StateChannelTransformer({ states: S, ...options }).fit(X);
  const stacked: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < S; s++) stacked.push(...block(X, S, s).data.subarray(i * d, (i + 1) * d));
  }
  const reference = await new ImageTransformer(options).fit({
    data: Float32Array.from(stacked),
    shape: [n * S, d],
  });
  assertEquals(Array.from(together.coords().data), Array.from(reference.coords().data));

  // State 1 is the data; states 0 and 2 are huge garbage that would move any layout.
  const rng = new Random(11);
  const Y = Float32Array.from(X.data);
  for (let i = 0; i < n; i++) {
    for (const s of [0, 2]) {
      for (let j = 0; j < d; j++) Y[i * S * d + s * d + j] = 1e6 * rng.normal();
    }
  }
  const garbage: Matrix = { data: Y, shape: [n, S * d] };
  const one = await new StateChannelTransformer({ states: S, fitOn: 1, ...options }).fit(garbage);
  const alone = await new ImageTransformer(options).fit(block(X, S, 1));
  assertEquals(Array.from(one.coords().data), Array.from(alone.coords().data));
  const images = one.transform(garbage), expected = alone.transform(block(X, S, 1));
  for (let q = 0; q < n * 25; q++) assertEquals(images.data[q * S + 1], expected.data[q]);
});

Deno.test("save/load round trip keeps the layout, the channels and the options", async () => {
  const folder = await Deno.makeTempDir({ prefix: "state_channels_" });
  try {
    const X = randomMatrix(9, 2 * 6, 5);
    const sct = await new StateChannelTransformer({
      states: 2,
      fitOn: 0,
      featureExtractor: "kpca",
      pixels: [3, 4],
    }).fit(X);
    const path = join(folder, "layout.json");
    await sct.save(path);
    const back = await StateChannelTransformer.load(path);
    assertEquals(back.states, 2);
    assertEquals(back.fitOn, 0);
    assertEquals(back.pixels, [3, 4]);
    assertEquals(back.dims, 6);
    assertEquals(Array.from(back.coords().data), Array.from(sct.coords().data));
    assertEquals(Array.from(back.transform(X).data), Array.from(sct.transform(X).data));
    assertEquals(
      Array.from(back.transform(X, { toRgb: true }).data),
      Array.from(sct.transform(X, { toRgb: true }).data),
    );
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.replace('"states":2', '"states":3'));
    await assertRejects(() => StateChannelTransformer.load(path), CorruptCacheError);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("bad shapes and options raise errors that name the problem", async () => {
  assertThrows(
    () => new StateChannelTransformer({ states: 0 }),
    Error,
    "states must be a positive integer",
  );
  assertThrows(
    () => new StateChannelTransformer({ states: 3, fitOn: 3 }),
    Error,
    'fitOn must be "together" or a state index 0…2',
  );
  assertThrows(
    () => new StateChannelTransformer({ states: 2, featureExtractor: "nope" as "pca" }),
    Error,
    "featureExtractor must be one of",
  );
  const sct = new StateChannelTransformer({ states: 3, featureExtractor: "pca", pixels: 3 });
  await assertRejects(() => sct.fit(randomMatrix(4, 10, 1)), Error, "not divisible by states = 3");
  assertThrows(() => sct.transform(randomMatrix(2, 9, 1)), Error, "not fitted");
  await sct.fit(randomMatrix(4, 9, 1));
  assertThrows(() => sct.transform(randomMatrix(2, 10, 1)), Error, "not divisible by states = 3");
  assertThrows(
    () => sct.transform(randomMatrix(2, 12, 1)),
    Error,
    "fitted on 3 states of 3 dimensions (9 features) but X has 12",
  );
  assert(sct.transform(randomMatrix(2, 9, 1)).shape.every((v, i) => v === [2, 3, 3, 3][i]));
});
