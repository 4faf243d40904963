/**
 * Layout geometry of DeepInsight: the convex hull of the 2-D feature map, the minimum-area
 * bounding rectangle over the hull's edge angles, and the rotation that makes that
 * rectangle axis-aligned. The hull comes from d3-polygon (maintained, Andrew's monotone
 * chain).
 *
 * @module
 */
import { polygonHull } from "d3-polygon";
import type { Matrix } from "../types.ts";

/** A 2×2 rotation `[[a, b], [c, d]]` applied as `p' = R·p`. */
export type Rotation = [[number, number], [number, number]];

/** The convex hull of a point set. */
export interface Hull {
  /** Indices of the hull's vertices in the input, in order around the hull. */
  indices: Int32Array;
  /** The vertices `[k, 2]` in the same order. */
  points: Matrix;
}

/** A minimum-area bounding rectangle. */
export interface BoundingRectangle {
  /** Angle (radians, in [0, π/2)) of the hull edge the rectangle is aligned with. */
  angle: number;
  /** Rotation by −angle: applying it makes the rectangle axis-aligned. */
  rotation: Rotation;
  /** The four corners `[4, 2]` in the original coordinates, in order around the rectangle. */
  corners: Matrix;
  /** Area of the rectangle. */
  area: number;
  /** Extent along the first rotated axis. */
  width: number;
  /** Extent along the second rotated axis. */
  height: number;
}

function checkPoints2D(points: Matrix, what: string): number {
  const [n, d] = points.shape;
  if (d !== 2 || points.data.length !== 2 * n) {
    throw new Error(`${what} needs 2-D points of shape [n, 2], got [${points.shape}]`);
  }
  return n;
}

/**
 * The convex hull of 2-D points `[n, 2]`. Fewer than three distinct points (or collinear
 * ones) give the extreme points only.
 */
export function convexHull(points: Matrix): Hull {
  const n = checkPoints2D(points, "convexHull");
  if (n === 0) throw new Error("convexHull needs at least one point");
  const pts: Array<[number, number] & { index?: number }> = [];
  for (let i = 0; i < n; i++) {
    const p = [points.data[2 * i], points.data[2 * i + 1]] as [number, number] & { index?: number };
    p.index = i;
    pts.push(p);
  }
  const hull = n >= 3
    ? polygonHull(pts) as Array<[number, number] & { index?: number }> | null
    : null;
  let indices: number[];
  if (hull && hull.length >= 3) {
    indices = hull.map((p) => p.index!);
  } else {
    // Degenerate: the lexicographic extremes.
    let lo = 0, hi = 0;
    for (let i = 1; i < n; i++) {
      const [x, y] = pts[i];
      if (x < pts[lo][0] || (x === pts[lo][0] && y < pts[lo][1])) lo = i;
      if (x > pts[hi][0] || (x === pts[hi][0] && y > pts[hi][1])) hi = i;
    }
    indices = lo === hi ? [lo] : [lo, hi];
  }
  const out = new Float32Array(indices.length * 2);
  indices.forEach((idx, k) => {
    out[2 * k] = points.data[2 * idx];
    out[2 * k + 1] = points.data[2 * idx + 1];
  });
  return { indices: Int32Array.from(indices), points: { data: out, shape: [indices.length, 2] } };
}

/** The rotation by `−angle` (so that direction `angle` becomes the first axis). */
export function rotationFor(angle: number): Rotation {
  const c = Math.cos(angle), s = Math.sin(angle);
  return [[c, s], [-s, c]];
}

/** Applies `rotation` to every point `[n, 2]` (in double precision, stored as float32). */
export function rotatePoints(points: Matrix, rotation: Rotation): Matrix {
  const n = checkPoints2D(points, "rotatePoints");
  const [[a, b], [c, d]] = rotation;
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const x = points.data[2 * i], y = points.data[2 * i + 1];
    out[2 * i] = a * x + b * y;
    out[2 * i + 1] = c * x + d * y;
  }
  return { data: out, shape: [n, 2] };
}

/** Axis-aligned bounding box area of `points` rotated by −angle, with its extents. */
export function rotatedBoxArea(
  points: Matrix,
  angle: number,
): { area: number; minX: number; maxX: number; minY: number; maxY: number } {
  const n = points.shape[0];
  const c = Math.cos(angle), s = Math.sin(angle);
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = points.data[2 * i], y = points.data[2 * i + 1];
    const u = c * x + s * y, v = -s * x + c * y;
    if (u < minX) minX = u;
    if (u > maxX) maxX = u;
    if (v < minY) minY = v;
    if (v > maxY) maxY = v;
  }
  return { area: (maxX - minX) * (maxY - minY), minX, maxX, minY, maxY };
}

/**
 * The minimum-area rectangle enclosing `hull` (its vertices `[k, 2]`, e.g. from
 * {@link convexHull}): every edge direction of the hull is tried (a minimum rectangle has a
 * side collinear with a hull edge), including the closing edge. Ties keep the smallest
 * angle.
 */
export function minimumBoundingRectangle(hull: Matrix): BoundingRectangle {
  const k = checkPoints2D(hull, "minimumBoundingRectangle");
  if (k === 0) throw new Error("minimumBoundingRectangle needs at least one point");
  const halfPi = Math.PI / 2;
  const angles: number[] = [];
  for (let e = 0; e < k; e++) {
    const f = (e + 1) % k;
    const dx = hull.data[2 * f] - hull.data[2 * e],
      dy = hull.data[2 * f + 1] - hull.data[2 * e + 1];
    if (dx === 0 && dy === 0) continue;
    let a = Math.atan2(dy, dx) % halfPi;
    if (a < 0) a += halfPi;
    if (a >= halfPi - 1e-15) a = 0;
    angles.push(a);
  }
  if (angles.length === 0) angles.push(0);
  angles.sort((x, y) => x - y);
  let best = { angle: 0, area: Infinity, minX: 0, maxX: 0, minY: 0, maxY: 0 };
  for (const angle of angles) {
    const box = rotatedBoxArea(hull, angle);
    if (box.area < best.area * (1 - 1e-12)) best = { angle, ...box };
  }
  const rotation = rotationFor(best.angle);
  // Corners: rotate the axis-aligned box back with Rᵀ.
  const [[a, b], [c, d]] = rotation;
  const box = [
    [best.minX, best.minY],
    [best.maxX, best.minY],
    [best.maxX, best.maxY],
    [best.minX, best.maxY],
  ];
  const corners = new Float32Array(8);
  box.forEach(([u, v], i) => {
    corners[2 * i] = a * u + c * v;
    corners[2 * i + 1] = b * u + d * v;
  });
  return {
    angle: best.angle,
    rotation,
    corners: { data: corners, shape: [4, 2] },
    area: best.area,
    width: best.maxX - best.minX,
    height: best.maxY - best.minY,
  };
}
