/**
 * Test worker for tests/train_parallel_test.ts: one rank of a collective. It sums
 * `(rank + 1) · (i + 1)` over the ranks with `allReduceUpdate`, turning its own part of the
 * sum into `10 · sum + i`, then marks the indices it owns with its rank and gathers them
 * with `allGatherParts`. Replies with the results and the indices its update saw.
 */
import { Collective, type CollectiveBuffers } from "../lib/train/mod.ts";

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

scope.onmessage = (event: MessageEvent) => {
  const { buffers, rank, length } = event.data as {
    buffers: CollectiveBuffers;
    rank: number;
    length: number;
  };
  const collective = new Collective(buffers, rank);
  const values = Float32Array.from({ length }, (_, i) => (rank + 1) * (i + 1));
  const seen: number[] = [];
  collective.allReduceUpdate(values, (from, to) => {
    for (let i = from; i < to; i++) {
      values[i] = 10 * values[i] + i;
      seen.push(i);
    }
  });
  const owners = new Float64Array(length).fill(-1);
  for (const i of seen) owners[i] = rank;
  collective.allGatherParts(owners);
  scope.postMessage({ values: Array.from(values), seen, owners: Array.from(owners) });
};
