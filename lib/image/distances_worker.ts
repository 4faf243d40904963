/**
 * Worker entry for {@link gramMatrix}: receives a {@link GramTask} whose arrays live in
 * shared memory, computes its share of the Gram blocks and posts `{ ok: true }` (or
 * `{ error }`).
 *
 * @module
 */
import { type GramTask, runGramTask } from "./distances.ts";

// deno-lint-ignore no-explicit-any
const scope = self as any;
scope.onmessage = async (e: MessageEvent<GramTask>) => {
  try {
    await runGramTask(e.data);
    scope.postMessage({ ok: true });
  } catch (err) {
    scope.postMessage({ error: err instanceof Error ? err.stack ?? err.message : String(err) });
  }
};
