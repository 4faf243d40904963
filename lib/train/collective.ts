/**
 * Sums across Deno workers through shared memory, for data-parallel training: every worker
 * (a "rank") holds a replica of the model and trains on its share of each batch; gradients,
 * BatchNorm batch statistics and metrics are summed across ranks with
 * {@link Collective.allReduceSum}. Sums are taken in rank order, so every rank gets the same
 * bits and the replicas stay identical.
 *
 * Synchronisation is a generation-counting barrier on a `SharedArrayBuffer` with
 * `Atomics.wait`/`notify` (allowed in workers). A rank that fails sets an abort flag so the
 * others stop waiting and fail too, instead of hanging.
 *
 * @module
 */

/** Shared buffers of a group of ranks; create once, send to every worker. */
export interface CollectiveBuffers {
  /** Number of ranks. */
  size: number;
  /** Control words: [arrived, generation, aborted]. */
  control: SharedArrayBuffer;
  /** One float64 slot of `capacity` values per rank. */
  slots: SharedArrayBuffer;
  /** Values per slot. */
  capacity: number;
}

/** Allocates the buffers of a group of `size` ranks exchanging up to `capacity` values. */
export function createCollectiveBuffers(size: number, capacity: number): CollectiveBuffers {
  if (!(Number.isInteger(size) && size >= 1)) throw new Error(`size must be ≥ 1, got ${size}`);
  return {
    size,
    control: new SharedArrayBuffer(3 * 4),
    slots: new SharedArrayBuffer(size * capacity * 8),
    capacity,
  };
}

const ARRIVED = 0, GENERATION = 1, ABORTED = 2;

/** A rank's handle on a group (see the module doc). */
export class Collective {
  /** This rank, 0-based. */
  readonly rank: number;
  /** Number of ranks. */
  readonly size: number;
  readonly #control: Int32Array;
  readonly #slots: Float64Array;
  readonly #capacity: number;
  readonly #timeoutMs: number;

  /** Joins the group described by `buffers` as `rank`. */
  constructor(buffers: CollectiveBuffers, rank: number, timeoutMs = 600_000) {
    if (!(rank >= 0 && rank < buffers.size)) throw new Error(`rank ${rank} outside the group`);
    this.rank = rank;
    this.size = buffers.size;
    this.#control = new Int32Array(buffers.control);
    this.#slots = new Float64Array(buffers.slots);
    this.#capacity = buffers.capacity;
    this.#timeoutMs = timeoutMs;
  }

  /** A group of one: every sum is the identity (single-process training). */
  static single(): Collective {
    return new Collective(createCollectiveBuffers(1, 0), 0);
  }

  /** Tells every rank to stop (after a failure). */
  abort(): void {
    Atomics.store(this.#control, ABORTED, 1);
    Atomics.add(this.#control, GENERATION, 1);
    Atomics.notify(this.#control, GENERATION);
  }

  /** Waits until every rank has arrived. */
  barrier(): void {
    if (this.size === 1) return;
    const c = this.#control;
    const generation = Atomics.load(c, GENERATION);
    if (Atomics.load(c, ABORTED)) throw new Error("another training worker failed");
    if (Atomics.add(c, ARRIVED, 1) === this.size - 1) {
      Atomics.store(c, ARRIVED, 0);
      Atomics.add(c, GENERATION, 1);
      Atomics.notify(c, GENERATION);
      return;
    }
    const deadline = Date.now() + this.#timeoutMs;
    while (Atomics.load(c, GENERATION) === generation) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.abort();
        throw new Error(`training worker ${this.rank}: the other workers did not arrive`);
      }
      Atomics.wait(c, GENERATION, generation, Math.min(left, 1000));
    }
    if (Atomics.load(c, ABORTED)) throw new Error("another training worker failed");
  }

  /**
   * Replaces `values` by their elementwise sum over all ranks (added in rank order, in
   * float64, so every rank gets identical results). Every rank must call it with the same
   * length, in the same order of calls.
   */
  allReduceSum<T extends Float32Array | Float64Array>(values: T): T {
    if (this.size === 1) return values;
    const n = values.length;
    const capacity = this.#capacity;
    for (let start = 0; start < n; start += capacity) {
      const end = Math.min(n, start + capacity);
      const mine = this.#slots.subarray(this.rank * capacity, this.rank * capacity + end - start);
      for (let i = start; i < end; i++) mine[i - start] = values[i];
      this.barrier();
      for (let i = start; i < end; i++) {
        let sum = 0;
        for (let r = 0; r < this.size; r++) sum += this.#slots[r * capacity + i - start];
        values[i] = sum;
      }
      this.barrier();
    }
    return values;
  }
}
