/**
 * Which shared caches a run used, and when: `<run cache>/uses.json` maps each cache folder
 * or file (embedding stores and feature caches under `dataDir()`, shared between runs; the
 * run's own layout and job files) to the last time this run used it. `deno task cache`
 * reads these files to say which run made or used a cache and when it was last used.
 *
 * @module
 */
import { join, relative } from "node:path";
import { dataDir } from "../config.ts";

/** File name of the record in a run's cache folder. */
export const USES_FILE = "uses.json";

/** Cache paths relative to `dataDir()` → ISO time of their last use by the run. */
export type CacheUses = Record<string, string>;

/** Reads a run's record (empty when absent or damaged). */
export async function readUses(runCacheDir: string): Promise<CacheUses> {
  try {
    return JSON.parse(await Deno.readTextFile(join(runCacheDir, USES_FILE))) as CacheUses;
  } catch {
    return {};
  }
}

let queue: Promise<void> = Promise.resolve();

/**
 * Records that the run whose cache folder is `runCacheDir` used `paths` now (calls of this
 * process are serialised, so none is lost).
 */
export function recordUses(runCacheDir: string, paths: string[]): Promise<void> {
  const next = queue.then(() => writeUses(runCacheDir, paths));
  queue = next.catch(() => {});
  return next;
}

async function writeUses(runCacheDir: string, paths: string[]): Promise<void> {
  const uses = await readUses(runCacheDir);
  const now = new Date().toISOString();
  for (const path of paths) uses[relative(dataDir(), path)] = now;
  await Deno.mkdir(runCacheDir, { recursive: true });
  const part = join(runCacheDir, `${USES_FILE}.${crypto.randomUUID().slice(0, 8)}.part`);
  await Deno.writeTextFile(part, JSON.stringify(uses, null, 1));
  await Deno.rename(part, join(runCacheDir, USES_FILE));
}
