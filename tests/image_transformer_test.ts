/**
 * The DeepInsight ImageTransformer end to end on small inputs with known layouts, its
 * scalers, save/load, and PNG output.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import { decode } from "fast-png";
import {
  drawText,
  encodeGrayPng,
  type FeatureEmbedder,
  FONT_CHARACTERS,
  glyph,
  imageGridPng,
  ImageTransformer,
  LogScaler,
  MinMaxScaler,
  textWidth,
} from "../lib/image/mod.ts";
import { LAYOUT_STAGE_VERSION } from "../lib/image/transformer.ts";
import { CorruptCacheError, sha256Hex, StaleCacheError } from "../lib/integrity.ts";
import { Random } from "../lib/random.ts";
import type { Matrix } from "../lib/types.ts";

/** A feature extractor that returns a fixed map (so pixels are hand-computable). */
function fixedMap(points: number[][]): FeatureEmbedder {
  return {
    fitTransform: (input: Matrix) => {
      assertEquals(input.shape[0], points.length, "the extractor sees one point per feature");
      return { data: Float32Array.from(points.flat()), shape: [points.length, 2] };
    },
  };
}

// An axis-aligned 3 × 2 map: the minimum rectangle is at angle 0 and the rotation is the
// identity. With a 3 × 3 grid: axis 0 edges 0, 1.5, 3; axis 1 edges 0, 1, 2.
const MAP = [[0, 0], [3, 2], [0, 2], [3, 0], [1.4, 0.9], [1.6, 1.1]];
// Pixels: f0 (0,0), f1 (2,2), f2 (0,2), f3 (2,0), f4 (0,0) with f0, f5 (1,1).

Deno.test("bin: hand-computed pixels and averaged values through the transformer", async () => {
  const it = new ImageTransformer({
    featureExtractor: fixedMap(MAP),
    pixels: 3,
    scaler: "none",
    emptyValue: -1,
  });
  const X: Matrix = {
    data: Float32Array.from([0.2, 0.4, 0.6, 0.8, 0.5, 0.9, 1, 0, 0, 0, 0, 0]),
    shape: [2, 6],
  };
  await it.fit(X);
  assertEquals(Array.from(it.coords().data), [0, 0, 2, 2, 0, 2, 2, 0, 0, 0, 1, 1]);
  assertEquals(Array.from(it.featureDensityMatrix().data), [2, 0, 1, 0, 1, 0, 1, 0, 1]);
  const images = it.transform(X);
  assertEquals(images.shape, [2, 3, 3]);
  const f32 = (v: number) => Math.fround(v);
  // deno-fmt-ignore
  const expectedFirst = [
    f32((f32(0.2) + f32(0.5)) / 2), -1, f32(0.6),
    -1, f32(0.9), -1,
    f32(0.8), -1, f32(0.4),
  ];
  assertEquals(Array.from(images.data.subarray(0, 9)), expectedFirst);

  assertEquals(Array.from(images.data.subarray(9, 18)), [0.5, -1, 0, -1, 0, -1, 0, -1, 0]);
  // Three identical channels.
  const rgb = it.transform(X, { channels: 3 });
  assertEquals(rgb.shape, [2, 3, 3, 3]);
  for (let p = 0; p < 18; p++) {
    for (let c = 0; c < 3; c++) assertEquals(rgb.data[3 * p + c], images.data[p]);
  }
  // Inverse: lone features exactly, shared ones get their pixel's average.
  const back = it.inverseTransform(images);
  const shared = f32((f32(0.2) + f32(0.5)) / 2);
  assertEquals(back.shape, [2, 6]);
  assertEquals(Array.from(back.data.subarray(0, 6)), [
    shared,
    f32(0.4),
    f32(0.6),
    f32(0.8),
    shared,
    f32(0.9),
  ]);
});

Deno.test("inverseTransform(transform(x)) returns lone features exactly", async () => {
  const rng = new Random(2);
  const features = 400, samples = 30;
  const map = Array.from({ length: features }, () => [rng.normal(), rng.normal()]);
  const X: Matrix = {
    data: Float32Array.from({ length: samples * features }, () => rng.next() * 3 - 1),
    shape: [samples, features],
  };
  const it = new ImageTransformer({
    featureExtractor: fixedMap(map),
    pixels: [40, 30],
    scaler: "none",
  });
  await it.fit(X);
  const coords = it.coords();
  const counts = new Map<number, number>();
  for (let j = 0; j < features; j++) {
    const p = coords.data[2 * j] * 30 + coords.data[2 * j + 1];
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  const back = it.inverseTransform(it.transform(X));
  let lone = 0;
  for (let j = 0; j < features; j++) {
    const p = coords.data[2 * j] * 30 + coords.data[2 * j + 1];
    if (counts.get(p) !== 1) continue;
    lone++;
    for (let r = 0; r < samples; r++) {
      assertEquals(back.data[r * features + j], X.data[r * features + j]);
    }
  }
  assert(lone > 100, `expected many lone features, got ${lone}`);
  // With the log scaler the round trip goes through log/exp: equal to float32 rounding.
  const logIt = new ImageTransformer({
    featureExtractor: fixedMap(map),
    pixels: [40, 30],
    scaler: "log",
  });
  await logIt.fit(X);
  const back2 = logIt.inverseTransform(logIt.transform(X));
  for (let j = 0; j < features; j++) {
    const p = coords.data[2 * j] * 30 + coords.data[2 * j + 1];
    if (counts.get(p) !== 1) continue;
    for (let r = 0; r < samples; r++) {
      assertAlmostEquals(back2.data[r * features + j], X.data[r * features + j], 1e-5);
    }
  }
});

Deno.test("setPixels re-bins without refitting; save/load restores the same images", async () => {
  let fits = 0;
  const rng = new Random(4);
  const map = Array.from({ length: 50 }, () => [rng.normal(), rng.normal()]);
  const extractor: FeatureEmbedder = {
    fitTransform: (input: Matrix) => {
      fits++;
      return fixedMap(map).fitTransform(input);
    },
  };
  const X: Matrix = {
    data: Float32Array.from({ length: 20 * 50 }, () => rng.normal()),
    shape: [20, 50],
  };
  const it = new ImageTransformer({ featureExtractor: extractor, pixels: 8, scaler: "minmax" });
  await it.fit(X);
  it.setPixels([5, 7]);
  assertEquals(fits, 1);
  assertEquals(it.transform(X).shape, [20, 5, 7]);
  assertEquals(it.featureDensityMatrix().data.reduce((a, b) => a + b, 0), 50);
  it.setPixels(6);
  const usedByBin = it.featureDensityMatrix().data.filter((c) => c > 0).length;
  it.setPixels(6, "lsa");
  assertEquals(fits, 1);
  // 50 features on 36 pixels: lsa spreads the groups over (nearly) every pixel.
  const usedByLsa = it.featureDensityMatrix().data.filter((c) => c > 0).length;
  assert(usedByLsa >= usedByBin && usedByLsa >= 30, `lsa uses ${usedByLsa}, bin ${usedByBin}`);
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await it.save(path);
    const loaded = await ImageTransformer.load(path);
    assertEquals(loaded.pixels, [6, 6]);
    assertEquals(loaded.discretization, "lsa");
    assertEquals(Array.from(loaded.coords().data), Array.from(it.coords().data));
    assertEquals(Array.from(loaded.transform(X).data), Array.from(it.transform(X).data));
    const layout = loaded.layout();
    assertEquals(layout.rectangle.corners.shape, [4, 2]);
    assertEquals(Array.from(layout.embedding.data), Array.from(it.layout().embedding.data));
  } finally {
    await Deno.remove(path);
  }
  const rgb = await new ImageTransformer({ featureExtractor: extractor, pixels: [4, 6] })
    .fitTransform(X, { channels: 3 });
  assertEquals(rgb.shape, [20, 4, 6, 3]);
  assertThrows(() => new ImageTransformer().transform(X), Error, "not fitted");
  assertThrows(
    () => it.transform({ data: new Float32Array(10), shape: [1, 10] }),
    Error,
    "50 features",
  );
});

Deno.test("a saved transformer altered on disk is refused, naming the file", async () => {
  const rng = new Random(11);
  const map = Array.from({ length: 30 }, () => [rng.normal(), rng.normal()]);
  const X: Matrix = {
    data: Float32Array.from({ length: 12 * 30 }, () => rng.normal()),
    shape: [12, 30],
  };
  const it = new ImageTransformer({ featureExtractor: fixedMap(map), pixels: 5, scaler: "minmax" });
  await it.fit(X);
  const dir = await Deno.makeTempDir({ prefix: "transformer_integrity_" });
  try {
    const path = join(dir, "layout.json");
    await it.save(path);
    // Atomic write: only the file is left (no temporary).
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assertEquals(names, ["layout.json"]);
    const text = await Deno.readTextFile(path);
    const saved = JSON.parse(text);
    assertEquals(saved.stageVersion, LAYOUT_STAGE_VERSION);
    assertEquals(LAYOUT_STAGE_VERSION, 2);
    assertEquals(saved.sha256.length, 64);
    assertEquals(
      sha256Hex(text.replace(saved.sha256, "0".repeat(64))),
      saved.sha256,
      "the hash is that of the text with the hash zeroed",
    );

    // Intact: loads and transforms exactly as the original.
    const loaded = await ImageTransformer.load(path);
    assertEquals(Array.from(loaded.transform(X).data), Array.from(it.transform(X).data));

    const rejects = async (
      altered: string,
      ErrorClass: typeof CorruptCacheError | typeof StaleCacheError,
      includes: string,
    ) => {
      const p = join(dir, "altered.json");
      await Deno.writeTextFile(p, altered);
      const e = await assertRejects(() => ImageTransformer.load(p), ErrorClass, includes);
      assertEquals(e.path, p);
      assertStringIncludes(e.message, p);
      return e;
    };

    // One digit of a number in the map changed: same length, still valid JSON.
    const at = text.indexOf('"embedding":[') + '"embedding":['.length;
    let d = at;
    while (!/[0-9]/.test(text[d])) d++;
    const digit = text[d] === "9" ? "8" : String(Number(text[d]) + 1);
    const flipped = text.slice(0, d) + digit + text.slice(d + 1);
    assertEquals(flipped.length, text.length);
    JSON.parse(flipped);
    await rejects(flipped, CorruptCacheError, "content hash");
    // A digit of a pixel coordinate, and a character of the hash itself.
    const c = text.indexOf('"coords":[') + '"coords":['.length;
    const coordFlip = text.slice(0, c) + (text[c] === "1" ? "2" : "1") + text.slice(c + 1);
    await rejects(coordFlip, CorruptCacheError, "content hash");
    const h = '{"sha256":"'.length;
    await rejects(
      text.slice(0, h) + (text[h] === "a" ? "b" : "a") + text.slice(h + 1),
      CorruptCacheError,
      "content hash",
    );
    // Truncated, and a file without a hash.
    await rejects(text.slice(0, text.length - 10), CorruptCacheError, "not valid JSON");
    await rejects(
      JSON.stringify({ stageVersion: saved.stageVersion, transformer: saved.transformer }),
      CorruptCacheError,
      "no content hash",
    );

    // Another version: stale (the version is read before the hash).
    const other = await rejects(
      text.replace('"stageVersion":2,', '"stageVersion":7,'),
      StaleCacheError,
      "layout version 7",
    );
    assert(other instanceof StaleCacheError);
    assertEquals([other.made, other.current], [7, LAYOUT_STAGE_VERSION]);
    // A file saved before versions were recorded (the bare state): stale, made undefined.
    const legacy = await rejects(
      JSON.stringify(it.toJSON()),
      StaleCacheError,
      "before versions were recorded",
    );
    assert(legacy instanceof StaleCacheError);
    assertEquals(legacy.made, undefined);
    // A missing file is not a damaged one.
    await assertRejects(() => ImageTransformer.load(join(dir, "none.json")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LogScaler: Norm-2 by hand, clipped at use", () => {
  // Feature 0: values 1, 3 (min 1); feature 1: values -2, 2 (min -2).
  const X: Matrix = { data: Float32Array.from([1, -2, 3, 2]), shape: [2, 2] };
  const s = new LogScaler().fit(X);
  // log(x + |min| + 1): [log 3, log 1; log 5, log 5] → max log 5.
  const max = Math.log(5);
  assertAlmostEquals(s.globalMax_!, max, 1e-12);
  const t = s.transform(X);
  const expected = [Math.log(3) / max, 0, 1, 1];
  expected.forEach((v, i) => assertAlmostEquals(t.data[i], v, 1e-6));
  // Unseen values: below the fitted range → 0, above → 1.
  const u = s.transform({ data: Float32Array.from([-10, 100]), shape: [1, 2] });
  assertEquals(Array.from(u.data), [0, 1]);
  const inv = s.inverseTransform(t);
  [1, -2, 3, 2].forEach((v, i) => assertAlmostEquals(inv.data[i], v, 1e-5));
});

Deno.test("MinMaxScaler: per feature, constant features to 0, clipped at use", () => {
  const X: Matrix = { data: Float32Array.from([0, 5, 7, 10, 5, 7]), shape: [2, 3] };
  const s = new MinMaxScaler().fit(X);
  assertEquals(Array.from(s.transform(X).data), [0, 0, 0, 1, 0, 0]);
  assertEquals(
    Array.from(s.transform({ data: Float32Array.from([-5, 5, 7]), shape: [1, 3] }).data),
    [0, 0, 0],
  );
  assertEquals(
    Array.from(s.transform({ data: Float32Array.from([5, 5, 7]), shape: [1, 3] }).data),
    [0.5, 0, 0],
  );
});

Deno.test("PNG: one image and a labelled grid decode to the expected gray levels", () => {
  const image = {
    data: Float32Array.from([0, 0.5, 1, 2, -1, 0.25]),
    shape: [2, 3] as [number, number],
  };
  const png = decode(encodeGrayPng(image, { scale: 2 }));
  assertEquals([png.width, png.height, png.channels, png.depth], [6, 4, 1, 8]);
  const px = png.data as Uint8Array;
  // Row 0: 0, 0.5, 1 → 0, 128, 255 (each 2×2); row 1: 2 → 255 (clipped), −1 → 0, 0.25 → 64.
  assertEquals(Array.from(px.subarray(0, 6)), [0, 0, 128, 128, 255, 255]);
  assertEquals(Array.from(px.subarray(18, 24)), [255, 255, 0, 0, 64, 64]);

  // Grid of 3 images of 4×5, 2 columns, padding 1, labels of 1× font (7 px tall).
  const batch = {
    data: Float32Array.from({ length: 3 * 20 }, (_, i) => Math.floor(i / 20) / 2),
    shape: [3, 4, 5] as [number, number, number],
  };
  const grid = decode(
    imageGridPng(batch, { labels: ["A", "B", "C"], columns: 2, padding: 1, background: 7 }),
  );
  const tileH = 4 + 7 + 1;
  assertEquals([grid.width, grid.height], [1 + 2 * (5 + 1), 1 + 2 * (tileH + 1)]);
  const g = grid.data as Uint8Array;
  const at = (x: number, y: number) => g[y * grid.width + x];
  assertEquals(at(1, 1), 0); // image 0 = 0
  assertEquals(at(7, 1), 128); // image 1 = 0.5
  assertEquals(at(1, 1 + tileH + 1), 255); // image 2 = 1
  assertEquals(at(0, 0), 7); // background
  // The label "A" under image 0: its glyph's top row is .###. → ink at columns 1..3.
  const labelTop = 1 + 4 + 1;
  const rowA = [0, 1, 2, 3, 4].map((c) => at(1 + c, labelTop) === 255 ? 1 : 0);
  assertEquals(rowA, [0, 1, 1, 1, 0]);
});

Deno.test("label font: every glyph is distinct and drawn where asked", () => {
  const seen = new Set<string>();
  for (const ch of FONT_CHARACTERS) {
    const key = glyph(ch).join(",");
    assert(!seen.has(key), `glyph of ${JSON.stringify(ch)} duplicates another`);
    seen.add(key);
    assert(ch === " " || glyph(ch).some((r) => r !== 0), `glyph of ${JSON.stringify(ch)} is empty`);
  }
  assertEquals(glyph("a"), glyph("A"));
  assertEquals(textWidth("NEG 0.93"), 8 * 6 - 1);
  const w = 20, h = 9;
  const buf = new Uint8Array(w * h);
  drawText(buf, w, h, "I", 1, 2);
  // "I" = .###. / ..#.. ×5 / .###. drawn at (top 1, left 2).
  const ink: string[] = [];
  for (let y = 0; y < h; y++) {
    let line = "";
    for (let x = 0; x < 7; x++) line += buf[y * w + x] ? "#" : ".";
    ink.push(line);
  }
  assertEquals(ink, [
    ".......",
    "...###.",
    "....#..",
    "....#..",
    "....#..",
    "....#..",
    "....#..",
    "...###.",
    ".......",
  ]);
});
