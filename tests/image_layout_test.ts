/**
 * Layout geometry and discretisation of the DeepInsight transform: hull, minimum bounding
 * rectangle, `bin` and `lsa` pixels, and the linear assignment solver. Expectations are
 * hand-computed or brute force.
 */
import { assert, assertAlmostEquals, assertEquals, assertLessOrEqual } from "@std/assert";
import {
  binCoordinates,
  convexHull,
  digitize,
  kMeans2D,
  linearSumAssignment,
  linspace,
  lsaCoordinates,
  minimumBoundingRectangle,
  rotatedBoxArea,
  rotatePoints,
} from "../lib/image/mod.ts";
import { Random } from "../lib/random.ts";
import type { Matrix } from "../lib/types.ts";

function matrix2(points: number[][]): Matrix {
  return { data: Float32Array.from(points.flat()), shape: [points.length, 2] };
}

Deno.test("hull and rectangle: a rotated 4×1 rectangle comes back axis-aligned with area 4", () => {
  const angle = Math.PI / 6, c = Math.cos(angle), s = Math.sin(angle);
  const rng = new Random(1);
  const local: number[][] = [[0, 0], [4, 0], [4, 1], [0, 1]];
  for (let i = 0; i < 200; i++) local.push([rng.next() * 4, rng.next()]);
  const pts = local.map(([u, v]) => [3 + c * u - s * v, -2 + s * u + c * v]);
  const points = matrix2(pts);
  const hull = convexHull(points);
  assertEquals(Array.from(hull.indices).sort((a, b) => a - b), [0, 1, 2, 3]);
  const rect = minimumBoundingRectangle(hull.points);
  assertAlmostEquals(rect.area, 4, 1e-4);
  assertAlmostEquals(Math.max(rect.width, rect.height), 4, 1e-4);
  assertAlmostEquals(Math.min(rect.width, rect.height), 1, 1e-4);
  // After rotation the four corners share two x values and two y values.
  const rotated = rotatePoints(matrix2(pts.slice(0, 4)), rect.rotation);
  const xs = Array.from({ length: 4 }, (_, i) => rotated.data[2 * i]).sort((a, b) => a - b);
  const ys = Array.from({ length: 4 }, (_, i) => rotated.data[2 * i + 1]).sort((a, b) => a - b);
  assertAlmostEquals(xs[0], xs[1], 1e-4);
  assertAlmostEquals(xs[2], xs[3], 1e-4);
  assertAlmostEquals(ys[0], ys[1], 1e-4);
  assertAlmostEquals(ys[2], ys[3], 1e-4);
  // The corners of the returned rectangle are the rectangle's corners.
  const corners = Array.from(
    { length: 4 },
    (_, i) => [rect.corners.data[2 * i], rect.corners.data[2 * i + 1]],
  );
  for (const p of pts.slice(0, 4)) {
    const nearest = Math.min(...corners.map(([x, y]) => Math.hypot(x - p[0], y - p[1])));
    assertLessOrEqual(nearest, 1e-4);
  }
});

Deno.test("rectangle on random sets: contains every point, no hull-edge or other angle is smaller", () => {
  const rng = new Random(7);
  for (let trial = 0; trial < 25; trial++) {
    const n = 5 + rng.int(300);
    const sx = 0.2 + rng.next() * 5, sy = 0.2 + rng.next() * 5, rho = rng.next() * 2 - 1;
    const pts: number[][] = [];
    for (let i = 0; i < n; i++) {
      const a = rng.normal(), b = rng.normal();
      pts.push([sx * a, sy * (rho * a + Math.sqrt(1 - rho * rho) * b)]);
    }
    const points = matrix2(pts);
    const hull = convexHull(points);
    const rect = minimumBoundingRectangle(hull.points);
    // Every point inside the rectangle (in its rotated frame).
    const rotated = rotatePoints(points, rect.rotation);
    const box = rotatedBoxArea(hull.points, rect.angle);
    for (let i = 0; i < n; i++) {
      const u = rotated.data[2 * i], v = rotated.data[2 * i + 1];
      assert(u >= box.minX - 1e-4 && u <= box.maxX + 1e-4, `point ${i} outside along x`);
      assert(v >= box.minY - 1e-4 && v <= box.maxY + 1e-4, `point ${i} outside along y`);
    }
    // Brute force over all hull edge angles, computed over all points.
    const k = hull.points.shape[0];
    for (let e = 0; e < k; e++) {
      const f = (e + 1) % k;
      const angle = Math.atan2(
        hull.points.data[2 * f + 1] - hull.points.data[2 * e + 1],
        hull.points.data[2 * f] - hull.points.data[2 * e],
      );
      const area = rotatedBoxArea(points, angle).area;
      assert(area >= rect.area * (1 - 1e-5), `edge ${e} gives area ${area} < ${rect.area}`);
    }
    // And no angle on a fine sweep does better.
    for (let t = 0; t < 360; t++) {
      const area = rotatedBoxArea(points, (t / 360) * (Math.PI / 2)).area;
      assert(area >= rect.area * (1 - 1e-5), `angle step ${t} gives ${area} < ${rect.area}`);
    }
  }
});

Deno.test("linspace and digitize follow numpy", () => {
  // numpy.linspace(0, 3, 4) = [0, 1, 2, 3]; numpy.digitize([-1, 0, 0.5, 1, 2.999, 3, 4], that)
  // = [0, 1, 1, 2, 3, 4, 4].
  const edges = linspace(0, 3, 4);
  assertEquals(Array.from(edges), [0, 1, 2, 3]);
  assertEquals([-1, 0, 0.5, 1, 2.999, 3, 4].map((x) => digitize(x, edges)), [0, 1, 1, 2, 3, 4, 4]);
});

Deno.test("bin: hand-computed pixel indices", () => {
  // Axis 0 spans [0, 3] on 3 rows: edges 0, 1.5, 3. Axis 1 spans [0, 2] on 4 columns:
  // edges 0, 2/3, 4/3, 2.
  const rotated = matrix2([[0, 0], [3, 2], [1.4, 0.5], [1.5, 0.7], [2.9, 1.4], [0.2, 2]]);
  const coords = binCoordinates(rotated, [3, 4]);
  // deno-fmt-ignore
  const expected = [
    0, 0, // min on both axes
    2, 3, // max on both axes → last bins
    0, 0, // 1.4 < 1.5; 0.5 < 2/3
    1, 1, // 1.5 ≥ 1.5; 0.7 ≥ 2/3
    1, 2, // 2.9 < 3; 4/3 ≤ 1.4 < 2
    0, 3, // 0.2; 2 = max
  ];
  assertEquals(Array.from(coords.data), expected);
});

Deno.test("linear sum assignment is optimal (brute force over permutations)", () => {
  const rng = new Random(11);
  const brute = (cost: number[], n: number, m: number): number => {
    let best = Infinity;
    const used = new Array(m).fill(false);
    const rec = (i: number, acc: number) => {
      if (i === n) {
        best = Math.min(best, acc);
        return;
      }
      for (let j = 0; j < m; j++) {
        if (used[j]) continue;
        used[j] = true;
        rec(i + 1, acc + cost[i * m + j]);
        used[j] = false;
      }
    };
    rec(0, 0);
    return best;
  };
  for (let t = 0; t < 200; t++) {
    const n = 1 + rng.int(6), m = n + rng.int(3);
    // Integer costs with many ties, and real-valued ones.
    const cost = Array.from({ length: n * m }, () => t % 2 ? rng.int(4) : rng.next() * 100 - 50);
    const result = linearSumAssignment(cost, n, m);
    assertEquals(new Set(result.columnOfRow).size, n, "columns are distinct");
    let total = 0;
    for (let i = 0; i < n; i++) total += cost[i * m + result.columnOfRow[i]];
    assertAlmostEquals(total, result.cost, 1e-9);
    assertAlmostEquals(result.cost, brute(cost, n, m), 1e-9);
  }
});

Deno.test("lsa: at most one feature group per pixel", () => {
  const rng = new Random(3);
  // Fewer features than pixels: every feature gets its own pixel.
  const few = matrix2(Array.from({ length: 60 }, () => [rng.normal(), rng.normal()]));
  const c1 = lsaCoordinates(few, [10, 10]);
  const pixels1 = new Set<number>();
  for (let i = 0; i < 60; i++) pixels1.add(c1.data[2 * i] * 10 + c1.data[2 * i + 1]);
  assertEquals(pixels1.size, 60);
  // A clumped map that `bin` crowds into few pixels.
  const clumped = matrix2(
    Array.from(
      { length: 60 },
      (_, i) => [i < 50 ? rng.normal() * 0.01 : 5 + rng.normal(), rng.normal()],
    ),
  );
  const binned = binCoordinates(clumped, [10, 10]);
  const binPixels = new Set<number>();
  for (let i = 0; i < 60; i++) binPixels.add(binned.data[2 * i] * 10 + binned.data[2 * i + 1]);
  const lsa = lsaCoordinates(clumped, [10, 10]);
  const lsaPixels = new Set<number>();
  for (let i = 0; i < 60; i++) lsaPixels.add(lsa.data[2 * i] * 10 + lsa.data[2 * i + 1]);
  assertEquals(lsaPixels.size, 60);
  assert(binPixels.size < 60, "bin crowds the clump");

  // More features than pixels: features sharing a pixel are exactly one k-means group.
  const many = matrix2(Array.from({ length: 400 }, () => [rng.normal(), rng.normal() * 2]));
  const seed = 5;
  const c2 = lsaCoordinates(many, [6, 8], { seed });
  // Rebuild the groups lsa used: the same scaling onto pixel centres, the same k-means.
  const scaled = new Float32Array(800);
  for (let axis = 0; axis < 2; axis++) {
    let min = Infinity, max = -Infinity;
    for (let i = 0; i < 400; i++) {
      min = Math.min(min, many.data[2 * i + axis]);
      max = Math.max(max, many.data[2 * i + axis]);
    }
    for (let i = 0; i < 400; i++) {
      scaled[2 * i + axis] = ((many.data[2 * i + axis] - min) / (max - min)) *
        ((axis === 0 ? 6 : 8) - 1);
    }
  }
  const groups = kMeans2D({ data: scaled, shape: [400, 2] }, 48, { seed }).labels;
  const groupOfPixel = new Map<number, number>();
  const pixelOfGroup = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    const pixel = c2.data[2 * i] * 8 + c2.data[2 * i + 1];
    assert(
      c2.data[2 * i] >= 0 && c2.data[2 * i] < 6 && c2.data[2 * i + 1] >= 0 &&
        c2.data[2 * i + 1] < 8,
    );
    if (groupOfPixel.has(pixel)) {
      assertEquals(groupOfPixel.get(pixel), groups[i], "one group per pixel");
    }
    groupOfPixel.set(pixel, groups[i]);
    if (pixelOfGroup.has(groups[i])) {
      assertEquals(pixelOfGroup.get(groups[i]), pixel, "a group stays together");
    }
    pixelOfGroup.set(groups[i], pixel);
  }
  assertEquals(groupOfPixel.size, new Set(groups).size);
});
