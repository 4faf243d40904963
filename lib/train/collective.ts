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
    this.allReduceUpdate(values, () => {});
    return values;
  }

  /**
   * Sums `values` over all ranks as {@link allReduceSum}, but each rank then transforms only
   * its own part of the sum, in place, with `update(from, to)` on `values[from, to)` (e.g. an
   * optimizer step on summed gradients), and the ranks exchange the transformed parts, so
   * every rank ends with all of them: the work of `update` is split, not repeated. `update`
   * must compute the same function of the sum on every rank. The parts a rank owns are
   * those {@link allGatherParts} shares.
   */
  allReduceUpdate<T extends Float32Array | Float64Array>(
    values: T,
    update: (from: number, to: number) => void,
  ): void {
    if (this.size === 1) {
      update(0, values.length);
      return;
    }
    const slots = this.#slots, size = this.size;
    this.#chunks(values.length, (start, length, from, to) => {
      const mine = this.rank * this.#capacity;
      for (let i = 0; i < length; i++) slots[mine + i] = values[start + i];
      this.barrier();
      // Rank r sums and updates its part of the chunk, then writes it to rank 0's slot;
      // parts are disjoint, so no rank reads what another writes.
      for (let i = from; i < to; i++) {
        let sum = 0;
        for (let r = 0; r < size; r++) sum += slots[r * this.#capacity + i];
        values[start + i] = sum;
      }
      update(start + from, start + to);
      for (let i = from; i < to; i++) slots[i] = values[start + i];
      this.barrier();
      for (let i = 0; i < length; i++) values[start + i] = slots[i];
      this.barrier();
    });
  }

  /**
   * Gives every rank the parts of `values` each rank owns in {@link allReduceUpdate} (e.g.
   * optimizer moments that each rank kept for its part only). Every rank must call it.
   */
  allGatherParts<T extends Float32Array | Float64Array>(values: T): T {
    if (this.size === 1) return values;
    const slots = this.#slots;
    this.#chunks(values.length, (start, length, from, to) => {
      for (let i = from; i < to; i++) slots[i] = values[start + i];
      this.barrier();
      for (let i = 0; i < length; i++) values[start + i] = slots[i];
      this.barrier();
    });
    return values;
  }

  /** Walks `n` values in slot-sized chunks, with this rank's part `[from, to)` of each. */
  #chunks(n: number, each: (start: number, length: number, from: number, to: number) => void) {
    for (let start = 0; start < n; start += this.#capacity) {
      const length = Math.min(n, start + this.#capacity) - start;
      const from = Math.floor((this.rank * length) / this.size);
      const to = Math.floor(((this.rank + 1) * length) / this.size);
      each(start, length, from, to);
    }
  }
}
