/**
 * Parallel Barnes–Hut repulsive forces: the main thread builds the tree each iteration into
 * shared memory, then it and its workers claim chunks of points from a shared counter and
 * walk the tree for them. Every point's force and every chunk's share of `Z` is computed by
 * the same code whichever thread claims it, and `Z` is summed in chunk order, so results do
 * not depend on scheduling (a seed still gives the same map).
 *
 * @module
 */
import { type FlatTree, negativeForces } from "./quadtree.ts";

// Control words.
const GENERATION = 0, NEXT_CHUNK = 1, DONE = 2, TREE_SIZE = 3, POINTS = 4, STOP = 5;

/** Points per claimed chunk. */
export const CHUNK = 128;

/** The shared buffers a worker receives. */
export interface BarnesHutShared {
  /** Control words (generation, next chunk, workers done, tree size, points, stop). */
  control: Int32Array;
  /** `[θ²]`. */
  params: Float64Array;
  /** Tree nodes (stride 4). */
  nodes: Float32Array;
  /** Tree skip pointers. */
  skip: Int32Array;
  /** Points in leaf preorder. */
  order: Int32Array;
  /** Map positions `[x0, y0, ...]`. */
  positions: Float64Array;
  /** Output: unnormalised repulsive force per point. */
  negForce: Float64Array;
  /** Output: each chunk's share of `Z`. */
  zChunks: Float64Array;
}

/** Claims and processes chunks until none are left; returns nothing (writes shared outputs). */
function processChunks(s: BarnesHutShared, size: number, n: number, thetaSq: number): void {
  const chunks = Math.ceil(n / CHUNK);
  const tree = { nodes: s.nodes, skip: s.skip, order: s.order, size };
  for (;;) {
    const c = Atomics.add(s.control, NEXT_CHUNK, 1);
    if (c >= chunks) break;
    s.zChunks[c] = negativeForces(
      tree,
      s.positions,
      c * CHUNK,
      Math.min(n, (c + 1) * CHUNK),
      thetaSq,
      s.negForce,
    );
  }
}

/** The worker loop (runs until the pool stops). */
export function runBarnesHutWorker(s: BarnesHutShared): void {
  let generation = 0;
  for (;;) {
    Atomics.wait(s.control, GENERATION, generation);
    generation = Atomics.load(s.control, GENERATION);
    if (Atomics.load(s.control, STOP)) return;
    processChunks(
      s,
      Atomics.load(s.control, TREE_SIZE),
      Atomics.load(s.control, POINTS),
      s.params[0],
    );
    Atomics.add(s.control, DONE, 1);
    Atomics.notify(s.control, DONE);
  }
}

/** A pool of workers computing repulsive forces over a shared flat tree. */
export class BarnesHutPool {
  /** The shared buffers. */
  readonly shared: BarnesHutShared;
  readonly #workers: Worker[] = [];
  readonly #n: number;

  private constructor(shared: BarnesHutShared, n: number) {
    this.shared = shared;
    this.#n = n;
  }

  /**
   * Starts `workers` workers for `n` points whose positions live in `positions` (shared
   * memory) and whose tree is `tree` (a shared {@link FlatTree}).
   */
  static async start(
    workers: number,
    n: number,
    positions: Float64Array,
    tree: FlatTree,
  ): Promise<BarnesHutPool> {
    if (!(positions.buffer instanceof SharedArrayBuffer) || !tree.shared) {
      throw new Error("BarnesHutPool needs positions and tree in shared memory");
    }
    const sab = (bytes: number) => new SharedArrayBuffer(bytes);
    const shared: BarnesHutShared = {
      control: new Int32Array(sab(4 * 8)),
      params: new Float64Array(sab(8)),
      nodes: tree.nodes,
      skip: tree.skip,
      order: tree.order,
      positions,
      negForce: new Float64Array(sab(16 * n)),
      zChunks: new Float64Array(sab(8 * Math.ceil(n / CHUNK))),
    };
    shared.control[POINTS] = n;
    const pool = new BarnesHutPool(shared, n);
    const ready: Promise<void>[] = [];
    for (let w = 0; w < workers; w++) {
      const worker = new Worker(new URL("./barnes_hut_worker.ts", import.meta.url), {
        type: "module",
      });
      pool.#workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.onmessage = () => resolve();
          worker.onerror = (e: ErrorEvent) => {
            e.preventDefault();
            reject(new Error(`Barnes–Hut worker failed: ${e.message}`));
          };
        }),
      );
      worker.postMessage(shared);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      pool.stop();
      throw e;
    }
    return pool;
  }

  /**
   * Computes the repulsive forces of all points over the tree already flattened into the
   * shared arrays (`size` nodes); the main thread works too. Writes `shared.negForce` and
   * returns `Z`.
   */
  run(size: number, thetaSq: number, beforeJoining?: () => void): number {
    const s = this.shared;
    s.params[0] = thetaSq;
    Atomics.store(s.control, TREE_SIZE, size);
    Atomics.store(s.control, NEXT_CHUNK, 0);
    Atomics.store(s.control, DONE, 0);
    Atomics.add(s.control, GENERATION, 1);
    Atomics.notify(s.control, GENERATION);
    beforeJoining?.();
    processChunks(s, size, this.#n, thetaSq);
    const workers = this.#workers.length;
    for (;;) {
      const done = Atomics.load(s.control, DONE);
      if (done >= workers) break;
      Atomics.wait(s.control, DONE, done);
    }
    let z = 0;
    for (let c = 0; c < s.zChunks.length; c++) z += s.zChunks[c];
    return z;
  }

  /** Stops and terminates the workers. */
  stop(): void {
    Atomics.store(this.shared.control, STOP, 1);
    Atomics.add(this.shared.control, GENERATION, 1);
    Atomics.notify(this.shared.control, GENERATION);
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
  }
}
