/**
 * A 2-D Barnes–Hut quadtree in flat typed arrays (no per-node objects), rebuilt on every
 * t-SNE iteration, and the repulsive-force pass that walks it.
 *
 * Semantics follow scikit-learn's `_QuadTree` / `compute_gradient_negative`: cells split at
 * the centre of their bounding box, a cell summarises its points by their centre of mass
 * when `maxWidth² / dist² < θ²` or when it is a leaf, and a point never interacts with the
 * leaf that holds it (nor with exact duplicates of itself).
 *
 * @module
 */

/** A quadtree over 2-D points, stored as parallel typed arrays indexed by node. */
export class QuadTree {
  /** Number of nodes in use (node 0 is the root). */
  size = 0;
  /** Centre of each cell, x. */
  centerX: Float64Array;
  /** Centre of each cell, y. */
  centerY: Float64Array;
  /** Half the cell's extent along x. */
  halfW: Float64Array;
  /** Half the cell's extent along y. */
  halfH: Float64Array;
  /** Squared largest side of the cell. */
  maxWidthSq: Float64Array;
  /** Sum of the x coordinates of the points below the node (centre of mass after {@link build}). */
  comX: Float64Array;
  /** Sum of the y coordinates (centre of mass after {@link build}). */
  comY: Float64Array;
  /** Number of points below the node. */
  count: Float64Array;
  /** Index of the first of four contiguous children, or -1 for a leaf. */
  firstChild: Int32Array;
  /** The first point a leaf holds (-1 when empty); duplicates chain through {@link next}. */
  point: Int32Array;
  /** Per point: the next point in the same leaf, or -1. */
  next: Int32Array = new Int32Array(0);
  #maxDepth = 64;

  /** Allocates room for `capacity` nodes (grown on demand). */
  constructor(capacity = 1024) {
    this.centerX = new Float64Array(capacity);
    this.centerY = new Float64Array(capacity);
    this.halfW = new Float64Array(capacity);
    this.halfH = new Float64Array(capacity);
    this.maxWidthSq = new Float64Array(capacity);
    this.comX = new Float64Array(capacity);
    this.comY = new Float64Array(capacity);
    this.count = new Float64Array(capacity);
    this.firstChild = new Int32Array(capacity);
    this.point = new Int32Array(capacity);
  }

  #grow(): void {
    const cap = this.centerX.length * 2;
    const f = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const g = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.centerX = f(this.centerX);
    this.centerY = f(this.centerY);
    this.halfW = f(this.halfW);
    this.halfH = f(this.halfH);
    this.maxWidthSq = f(this.maxWidthSq);
    this.comX = f(this.comX);
    this.comY = f(this.comY);
    this.count = f(this.count);
    this.firstChild = g(this.firstChild);
    this.point = g(this.point);
  }

  #initNode(node: number, cx: number, cy: number, hw: number, hh: number): void {
    this.centerX[node] = cx;
    this.centerY[node] = cy;
    this.halfW[node] = hw;
    this.halfH[node] = hh;
    const w = 2 * Math.max(hw, hh);
    this.maxWidthSq[node] = w * w;
    this.comX[node] = 0;
    this.comY[node] = 0;
    this.count[node] = 0;
    this.firstChild[node] = -1;
    this.point[node] = -1;
  }

  #split(node: number): void {
    while (this.size + 4 > this.centerX.length) this.#grow();
    const first = this.size;
    this.size += 4;
    const hw = this.halfW[node] / 2, hh = this.halfH[node] / 2;
    const cx = this.centerX[node], cy = this.centerY[node];
    // Child order: (x<cx,y<cy), (x>=cx,y<cy), (x<cx,y>=cy), (x>=cx,y>=cy).
    this.#initNode(first, cx - hw, cy - hh, hw, hh);
    this.#initNode(first + 1, cx + hw, cy - hh, hw, hh);
    this.#initNode(first + 2, cx - hw, cy + hh, hw, hh);
    this.#initNode(first + 3, cx + hw, cy + hh, hw, hh);
    this.firstChild[node] = first;
  }

  /** Rebuilds the tree over `n` points stored as `[x0, y0, x1, y1, ...]`. */
  build(positions: Float64Array, n: number): void {
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = positions[2 * i], y = positions[2 * i + 1];
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
    // A small margin keeps the extreme points strictly inside the root cell.
    const marginX = Math.max((maxX - minX) * 1e-3, 1e-3);
    const marginY = Math.max((maxY - minY) * 1e-3, 1e-3);
    if (this.next.length < n) this.next = new Int32Array(n);
    this.size = 1;
    this.#initNode(
      0,
      (minX + maxX) / 2,
      (minY + maxY) / 2,
      (maxX - minX) / 2 + marginX,
      (maxY - minY) / 2 + marginY,
    );
    for (let i = 0; i < n; i++) this.#insert(i, positions[2 * i], positions[2 * i + 1]);
    for (let node = 0; node < this.size; node++) {
      const c = this.count[node];
      if (c > 0) {
        this.comX[node] /= c;
        this.comY[node] /= c;
      }
    }
  }

  #insert(p: number, x: number, y: number): void {
    let node = 0;
    let depth = 0;
    for (;;) {
      const first = this.firstChild[node];
      if (first >= 0) {
        this.comX[node] += x;
        this.comY[node] += y;
        this.count[node] += 1;
        node = first + (x >= this.centerX[node] ? 1 : 0) + (y >= this.centerY[node] ? 2 : 0);
        depth++;
        continue;
      }
      if (this.count[node] === 0) {
        this.point[node] = p;
        this.next[p] = -1;
        this.comX[node] = x;
        this.comY[node] = y;
        this.count[node] = 1;
        return;
      }
      // Occupied leaf: duplicates (or too deep) accumulate; otherwise split and push down.
      const c = this.count[node];
      const qx = this.comX[node] / c, qy = this.comY[node] / c;
      if ((Math.abs(qx - x) <= 1e-12 && Math.abs(qy - y) <= 1e-12) || depth >= this.#maxDepth) {
        this.comX[node] += x;
        this.comY[node] += y;
        this.count[node] += 1;
        this.next[p] = this.point[node];
        this.point[node] = p;
        return;
      }
      const q = this.point[node];
      const sumX = this.comX[node], sumY = this.comY[node];
      this.#split(node);
      this.point[node] = -1;
      const child = this.firstChild[node] + (qx >= this.centerX[node] ? 1 : 0) +
        (qy >= this.centerY[node] ? 2 : 0);
      this.point[child] = q;
      this.comX[child] = sumX;
      this.comY[child] = sumY;
      this.count[child] = c;
      // The node's sums already include q; continue inserting p from this (now internal) node.
    }
  }
}

/** The arrays a traversal needs (a {@link FlatTree}, or its shared-memory view in a worker). */
export interface FlatTreeArrays {
  /** Per node, stride 4: centre-of-mass x, y, opening threshold, point count. */
  nodes: Float32Array;
  /** Per node: index of the next node after its subtree. */
  skip: Int32Array;
  /** The points in leaf preorder. */
  order: Int32Array;
  /** Nodes in use. */
  size: number;
}

/**
 * The tree's non-empty nodes in depth-first preorder, for stackless traversal: opening a
 * node moves to the next node (its first child), summarising it jumps to `skip`, past its
 * subtree.
 */
export class FlatTree implements FlatTreeArrays {
  /** Nodes in use. */
  size = 0;
  /** Per node, stride 4: centre-of-mass x, y, opening threshold, point count. */
  nodes: Float32Array;
  /** Per node: index of the next node after its subtree. */
  skip: Int32Array;
  /** The points in leaf preorder (spatially coherent; traversing in this order is faster). */
  order: Int32Array;
  /** Whether the arrays live in shared memory (fixed capacity). */
  readonly shared: boolean;
  #stack = new Int32Array(8192);

  /**
   * Allocates room for `capacity` nodes. With `shared`, the arrays are backed by
   * `SharedArrayBuffer`s (for workers) and never grow: {@link flatten} then reports overflow.
   */
  constructor(capacity = 1024, options: { shared?: boolean; points?: number } = {}) {
    this.shared = options.shared ?? false;
    const make = (bytes: number) =>
      this.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    this.nodes = new Float32Array(make(16 * capacity));
    this.skip = new Int32Array(make(4 * capacity));
    this.order = new Int32Array(make(4 * (options.points ?? 0)));
  }

  /**
   * Copies `tree` in preorder. An internal node's threshold is its squared largest side; a
   * leaf's is tiny (`θ²·δ²` with δ ≈ 2·10⁻⁶ of the largest coordinate, above float32
   * rounding), so the test `threshold ≥ θ²·d²` opens an internal node that is too close and
   * "opens" (skips) only the leaf holding the point itself (and its duplicates). Returns
   * false (and changes nothing) when shared arrays are too small.
   */
  flatten(tree: QuadTree, thetaSq: number, n: number): boolean {
    if (this.skip.length < tree.size || this.order.length !== n) {
      if (this.shared) return false;
      if (this.skip.length < tree.size) {
        this.nodes = new Float32Array(4 * tree.size);
        this.skip = new Int32Array(tree.size);
      }
      if (this.order.length !== n) this.order = new Int32Array(n);
    }
    const nodes = this.nodes, skip = this.skip;
    const first = tree.firstChild, count = tree.count;
    const order = this.order, next = tree.next;
    let scale = 1;
    for (let node = 0; node < tree.size; node++) {
      if (tree.firstChild[node] < 0 && count[node] > 0) {
        const ax = Math.abs(tree.comX[node] / count[node]),
          ay = Math.abs(tree.comY[node] / count[node]);
        if (ax > scale) scale = ax;
        if (ay > scale) scale = ay;
      }
    }
    const delta = 2e-6 * scale;
    const leafThreshold = thetaSq * 2 * delta * delta;
    let placed = 0;
    // Explicit DFS; a negative stack entry -(k+1) marks "subtree of output node k done".
    let stack = this.#stack;
    let top = 0, out = 0;
    stack[top++] = 0;
    while (top > 0) {
      const entry = stack[--top];
      if (entry < 0) {
        skip[-entry - 1] = out;
        continue;
      }
      const k = out++;
      const o = 4 * k;
      nodes[o] = tree.comX[entry];
      nodes[o + 1] = tree.comY[entry];
      nodes[o + 3] = count[entry];
      const f = first[entry];
      if (f < 0) {
        nodes[o + 2] = leafThreshold;
        skip[k] = out;
        for (let p = tree.point[entry]; p >= 0; p = next[p]) order[placed++] = p;
        continue;
      }
      nodes[o + 2] = tree.maxWidthSq[entry];
      if (top + 5 > stack.length) {
        const bigger = new Int32Array(stack.length * 2);
        bigger.set(stack);
        stack = this.#stack = bigger;
      }
      stack[top++] = -(k + 1);
      for (let c = 3; c >= 0; c--) if (count[f + c] > 0) stack[top++] = f + c;
    }
    this.size = out;
    return true;
  }
}

/**
 * Repulsive (negative) t-SNE forces for the points `tree.order[start..end-1]` over a
 * flattened tree.
 * Writes the unnormalised force `Σ size·q²·(yᵢ − y_c)` into `negForce[2i..2i+1]` and returns
 * this range's share of `Z = Σᵢ Σ_c size·q`, where `q = 1 / (1 + d²)`. `thetaSq` must be the
 * value the tree was flattened with.
 */
export function negativeForces(
  tree: FlatTreeArrays,
  positions: Float64Array,
  start: number,
  end: number,
  thetaSq: number,
  negForce: Float64Array,
): number {
  const nodes = tree.nodes, skip = tree.skip, size = tree.size;
  const order = tree.order;
  let sumQ = 0;
  for (let t = start; t < end; t++) {
    const i = order[t];
    const x = positions[2 * i], y = positions[2 * i + 1];
    let fx = 0, fy = 0, z = 0;
    let node = 0;
    while (node < size) {
      const o = 4 * node;
      const dx = x - nodes[o], dy = y - nodes[o + 1];
      const d2 = dx * dx + dy * dy;
      if (nodes[o + 2] >= thetaSq * d2) {
        node++;
        continue;
      }
      const q = 1 / (1 + d2);
      const cq = nodes[o + 3] * q;
      z += cq;
      const m = cq * q;
      fx += m * dx;
      fy += m * dy;
      node = skip[node];
    }
    negForce[2 * i] = fx;
    negForce[2 * i + 1] = fy;
    sumQ += z;
  }
  return sumQ;
}

/** θ² as used by the traversal: θ = 0 (exact) becomes 10⁻²⁰ (cells summarised only when 10¹⁰ times farther than wide). */
export function effectiveThetaSq(theta: number): number {
  return Math.max(theta * theta, 1e-20);
}
