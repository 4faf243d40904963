/**
 * Worker of {@link BarnesHutPool}: waits on a shared generation counter, then computes
 * repulsive forces for chunks of points it claims from a shared counter, until told to stop.
 *
 * @module
 */
import { type BarnesHutShared, runBarnesHutWorker } from "./barnes_hut_pool.ts";

// deno-lint-ignore no-explicit-any
const scope = self as any;
scope.onmessage = (e: MessageEvent<BarnesHutShared>) => {
  scope.postMessage("ready");
  runBarnesHutWorker(e.data);
  scope.close();
};
