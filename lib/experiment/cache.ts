/**
 * The caches under `dataDir()`: what each holds, how big it is, which runs made or used it
 * and when it was last used; and pruning them by age, run, stage or total size. Seeds ×
 * sweeps × layouts multiply them, so `deno task cache` (tools/cache.ts) lists and prunes
 * them with these functions.
 *
 * Layout (paths relative to `dataDir()`), one {@link CacheEntry} each:
 *
 * | path                                             | stage          | runs                   |
 * | ------------------------------------------------ | -------------- | ---------------------- |
 * | `embeddings/<encoder>/<key>/`                    | `"embeddings"` | shared: from uses.json |
 * | `features/<key>/`                                | `"features"`   | shared: from uses.json |
 * | `experiments/<run>/image-transformer-<key>.json` | `"layout"`     | `<run>`                |
 * | (its maker record `….json.made.json` goes with it)  |                |                        |
 * | `experiments/<run>/jobs/<job>-<key>.json`        | `"job"`        | `<run>` (`madeBy`)     |
 * | (its model file `….model.bin` goes with it)      |                |                        |
 * | `experiments/<run>/checkpoints/<job>-<key>/`     | `"checkpoint"` | `<run>`                |
 * | anything else                                    | `"other"`      | `<run>` inside its run |
 *
 * Each run's `experiments/<run>/uses.json` (see `uses.ts`) maps cache paths to the last time
 * the run used them: an entry's runs and last use come from every run's record (the latest
 * time over all runs). A job without a record falls back to its file's `madeAt`, and
 * anything else without one to the newest modification time of its files ("unknown run" for
 * a shared cache). `uses.json` itself is bookkeeping, not an entry.
 *
 * Entries of stage `"other"` (model downloads, `rates.json`, stray files) are only ever
 * pruned when asked for by stage.
 *
 * @example Delete the features and embeddings no run used for 30 days
 * ```ts
 * import { listCaches, planPrune, pruneCaches } from "./cache.ts";
 *
 * const entries = await listCaches();
 * const doomed = planPrune(entries, { olderThanDays: 30 }).filter((e) =>
 *   e.stage === "features" || e.stage === "embeddings"
 * );
 * const result = await pruneCaches(doomed);
 * console.log(`deleted ${result.removed.length} caches, ${result.bytes} bytes`);
 * ```
 *
 * @module
 */
import { isAbsolute, join, normalize } from "node:path";
import { dataDir } from "../config.ts";
import { readUses, USES_FILE } from "./uses.ts";
import { removeMaker } from "../provenance.ts";

/** The kinds of cache, in listing order. */
export const CACHE_STAGES = [
  "embeddings",
  "features",
  "layout",
  "job",
  "checkpoint",
  "other",
] as const;

/** A kind of cache (see the module doc for where each lives). */
export type CacheStage = typeof CACHE_STAGES[number];

/** Where an entry's last use was read from. */
export type LastUseSource = "uses.json" | "job file" | "mtime";

/** One cache: a folder or file under `dataDir()`. */
export interface CacheEntry {
  /** Its kind. */
  stage: CacheStage;
  /** Path relative to the data folder, with `/` separators. */
  path: string;
  /** What identifies it within its stage (a hash, `<job>-<key>`, or a name for `"other"`). */
  key: string;
  /** Total size of its files in bytes (symbolic links count as links, never followed). */
  bytes: number;
  /** Runs that made or used it, sorted (empty: unknown). */
  runs: string[];
  /** The run that made it: the run folder it lies in (a job: its `madeBy`). */
  madeBy?: string;
  /** ISO time of its last use. */
  lastUse: string;
  /** Where {@link CacheEntry.lastUse} comes from. */
  lastUseSource: LastUseSource;
}

/** What {@link planPrune} selects. */
export interface PruneCriteria {
  /** Policy: entries whose last use is more than this many days before `now`. */
  olderThanDays?: number;
  /** Scope: the entries of this run's folder and the shared caches used by this run only. */
  run?: string;
  /** Scope: entries of this stage (the only way to select `"other"`). */
  stage?: CacheStage;
  /**
   * Policy: least recently used entries (after those `olderThanDays` selects) until the
   * entries in scope that remain total at most this many bytes.
   */
  keepBytes?: number;
  /** The present, for `olderThanDays` (default: now). */
  now?: Date | number;
}

/** What {@link pruneCaches} did. */
export interface PruneResult {
  /** Entries deleted (or already gone). */
  removed: CacheEntry[];
  /** Their total size in bytes. */
  bytes: number;
  /** Run folders (relative to the data folder) whose `uses.json` was rewritten. */
  usesUpdated: string[];
  /** Entries that could not be deleted, with the reason. */
  failed: { entry: CacheEntry; error: string }[];
}

const DAY_MS = 24 * 60 * 60 * 1000;
const SHARED_STAGES: ReadonlySet<CacheStage> = new Set(["embeddings", "features"]);

interface Found {
  stage: CacheStage;
  path: string;
  key: string;
  owner?: string;
}

interface Scan {
  bytes: number;
  mtime: number;
}

interface Use {
  run: string;
  time: number;
}

/** Lists a folder's entries (none when it is missing or not a folder), sorted by name. */
async function children(dir: string): Promise<Deno.DirEntry[]> {
  const list: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) list.push(entry);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return [];
    throw e;
  }
  return list.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/** The model file kept beside a stored job (`<job>-<key>.json` → `<job>-<key>.model.bin`). */
function jobModelPath(jobPath: string): string {
  return jobPath.replace(/\.json$/, ".model.bin");
}

/** Size of the files under `path` and their newest modification time (links not followed). */
async function scan(path: string): Promise<Scan> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { bytes: 0, mtime: 0 };
    throw e;
  }
  const own = info.mtime?.getTime() ?? 0;
  if (!info.isDirectory) return { bytes: info.size, mtime: own };
  let bytes = 0, mtime = 0, any = false;
  for (const entry of await children(path)) {
    const s = await scan(join(path, entry.name));
    bytes += s.bytes;
    mtime = Math.max(mtime, s.mtime);
    any = true;
  }
  return { bytes, mtime: any ? mtime : own };
}

/** Every entry of one run folder (`experiments/<run>/`). */
async function runEntries(root: string, run: string): Promise<Found[]> {
  const base = `experiments/${run}`;
  const found: Found[] = [];
  const other = (path: string, key: string) =>
    found.push({ stage: "other", path, key, owner: run });
  for (const entry of await children(join(root, base))) {
    const path = `${base}/${entry.name}`;
    const layout = /^image-transformer-(.+)\.json$/.exec(entry.name);
    if (entry.name === USES_FILE && entry.isFile) continue;
    // A layout's maker record (`../provenance.ts`) belongs to its layout: removed with it.
    if (entry.name.startsWith("image-transformer-") && entry.name.endsWith(".made.json")) continue;
    if (layout && entry.isFile) {
      found.push({ stage: "layout", path, key: layout[1], owner: run });
    } else if ((entry.name === "jobs" || entry.name === "checkpoints") && entry.isDirectory) {
      for (const item of await children(join(root, path))) {
        const itemPath = `${path}/${item.name}`;
        // A job's model file (`<job>-<key>.model.bin`) belongs to its job entry.
        if (entry.name === "jobs" && item.isFile && item.name.endsWith(".model.bin")) continue;
        if (entry.name === "jobs" && item.isFile && item.name.endsWith(".json")) {
          found.push({ stage: "job", path: itemPath, key: item.name.slice(0, -5), owner: run });
        } else if (entry.name === "checkpoints" && item.isDirectory) {
          found.push({ stage: "checkpoint", path: itemPath, key: item.name, owner: run });
        } else {
          other(itemPath, `${run}/${entry.name}/${item.name}`);
        }
      }
    } else {
      other(path, `${run}/${entry.name}`);
    }
  }
  return found;
}

/** Every entry under `root`, before sizes and uses. */
async function findEntries(root: string): Promise<{ found: Found[]; runs: string[] }> {
  const found: Found[] = [];
  const runs: string[] = [];
  for (const top of await children(root)) {
    const name = top.name;
    if (name === "embeddings" && top.isDirectory) {
      for (const encoder of await children(join(root, name))) {
        const path = `${name}/${encoder.name}`;
        const stores = encoder.isDirectory ? await children(join(root, path)) : [];
        // A store is `<encoder>/<key>/`; a folder holding files itself is a store on its own.
        if (!encoder.isDirectory || stores.some((s) => !s.isDirectory)) {
          found.push({ stage: "embeddings", path, key: encoder.name });
        } else {
          for (const store of stores) {
            found.push({
              stage: "embeddings",
              path: `${path}/${store.name}`,
              key: `${encoder.name}/${store.name}`,
            });
          }
        }
      }
    } else if (name === "features" && top.isDirectory) {
      for (const cache of await children(join(root, name))) {
        found.push({ stage: "features", path: `${name}/${cache.name}`, key: cache.name });
      }
    } else if (name === "experiments" && top.isDirectory) {
      for (const run of await children(join(root, name))) {
        if (run.isDirectory) {
          runs.push(run.name);
          found.push(...await runEntries(root, run.name));
        } else {
          found.push({ stage: "other", path: `${name}/${run.name}`, key: `${name}/${run.name}` });
        }
      }
    } else {
      found.push({ stage: "other", path: name, key: name });
    }
  }
  return { found, runs };
}

/** A recorded path in the form entry paths have (`/` separators); undefined outside the root. */
function recordedPath(path: string): string | undefined {
  const p = path.replaceAll("\\", "/").replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  if (p === "" || p.startsWith("/") || /^[A-Za-z]:/.test(p) || p.split("/").includes("..")) {
    return undefined;
  }
  return p;
}

/** Every run's uses, by recorded path. */
async function readAllUses(root: string, runs: string[]): Promise<Map<string, Use[]>> {
  const byPath = new Map<string, Use[]>();
  for (const run of runs) {
    const uses = await readUses(join(root, "experiments", run));
    if (typeof uses !== "object" || uses === null || Array.isArray(uses)) continue;
    for (const [recorded, iso] of Object.entries(uses)) {
      const path = recordedPath(recorded);
      const time = typeof iso === "string" ? Date.parse(iso) : NaN;
      if (path === undefined || !Number.isFinite(time)) continue;
      byPath.set(path, [...(byPath.get(path) ?? []), { run, time }]);
    }
  }
  return byPath;
}

/** `madeBy` and `madeAt` of a job file (read from its end, where they are written last). */
async function jobFacts(path: string): Promise<{ madeBy?: string; madeAt?: number }> {
  const pick = (text: string) => {
    const field = (name: string) => {
      const m = new RegExp(`"${name}"\\s*:\\s*("(?:[^"\\\\]|\\\\.)*")`).exec(text);
      if (!m) return undefined;
      try {
        return JSON.parse(m[1]) as string;
      } catch {
        return undefined;
      }
    };
    const at = field("madeAt");
    const time = at !== undefined ? Date.parse(at) : NaN;
    return { madeBy: field("madeBy"), madeAt: Number.isFinite(time) ? time : undefined };
  };
  try {
    using file = await Deno.open(path);
    const size = (await file.stat()).size;
    const tail = new Uint8Array(Math.min(size, 4096));
    await file.seek(size - tail.length, Deno.SeekMode.Start);
    let read = 0;
    while (read < tail.length) {
      const n = await file.read(tail.subarray(read));
      if (n === null) break;
      read += n;
    }
    const facts = pick(new TextDecoder().decode(tail.subarray(0, read)));
    if (facts.madeBy !== undefined && facts.madeAt !== undefined) return facts;
    if (size <= tail.length) return facts;
    const stored = JSON.parse(await Deno.readTextFile(path)) as Record<string, unknown>;
    const time = typeof stored.madeAt === "string" ? Date.parse(stored.madeAt) : NaN;
    return {
      madeBy: typeof stored.madeBy === "string" ? stored.madeBy : undefined,
      madeAt: Number.isFinite(time) ? time : undefined,
    };
  } catch {
    return {};
  }
}

function stageRank(stage: CacheStage): number {
  return CACHE_STAGES.indexOf(stage);
}

/** Orders entries by stage (in {@link CACHE_STAGES} order), then last use (oldest first). */
export function compareEntries(a: CacheEntry, b: CacheEntry): number {
  return stageRank(a.stage) - stageRank(b.stage) ||
    Date.parse(a.lastUse) - Date.parse(b.lastUse) ||
    (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}

/**
 * Every cache under `root` (default `dataDir()`) with its stage, size, runs and last use
 * (see the module doc), sorted by {@link compareEntries}. A missing root has none.
 */
export async function listCaches(root: string = dataDir()): Promise<CacheEntry[]> {
  const { found, runs } = await findEntries(root);
  const uses = await readAllUses(root, runs);
  // Each record counts for the entry it names or lies inside.
  const usesOf = new Map<string, Use[]>(found.map((f) => [f.path, []]));
  for (const [path, list] of uses) {
    const parts = path.split("/");
    for (let n = parts.length; n > 0; n--) {
      const target = usesOf.get(parts.slice(0, n).join("/"));
      if (target) {
        target.push(...list);
        break;
      }
    }
  }
  const entries: CacheEntry[] = [];
  for (const f of found) {
    const scanned = await scan(join(root, f.path));
    const model = f.stage === "job" ? await scan(join(root, jobModelPath(f.path))) : undefined;
    const bytes = scanned.bytes + (model?.bytes ?? 0);
    const mtime = scanned.mtime;
    const recorded = usesOf.get(f.path)!;
    const runSet = new Set(recorded.map((u) => u.run));
    let madeBy = f.owner;
    let lastUse = recorded.length > 0 ? Math.max(...recorded.map((u) => u.time)) : undefined;
    let source: LastUseSource = "uses.json";
    if (f.stage === "job") {
      const facts = await jobFacts(join(root, f.path));
      if (facts.madeBy !== undefined) madeBy = facts.madeBy;
      if (facts.madeAt !== undefined && (lastUse === undefined || facts.madeAt > lastUse)) {
        lastUse = facts.madeAt;
        source = "job file";
      }
    }
    if (lastUse === undefined) {
      lastUse = mtime;
      source = "mtime";
    }
    if (f.owner !== undefined) runSet.add(f.owner);
    if (madeBy !== undefined) runSet.add(madeBy);
    entries.push({
      stage: f.stage,
      path: f.path,
      key: f.key,
      bytes,
      runs: [...runSet].sort(),
      ...(madeBy !== undefined ? { madeBy } : {}),
      lastUse: new Date(lastUse).toISOString(),
      lastUseSource: source,
    });
  }
  return entries.sort(compareEntries);
}

/** The run whose folder holds `entry` (`experiments/<run>/…`), if any. */
export function runFolderOf(entry: Pick<CacheEntry, "path">): string | undefined {
  const parts = entry.path.split("/");
  return parts[0] === "experiments" && parts.length > 2 ? parts[1] : undefined;
}

/** Every run named by `entries` (run folders, users of shared caches, makers), sorted. */
export function knownRuns(entries: readonly CacheEntry[]): string[] {
  const runs = new Set<string>();
  for (const e of entries) {
    for (const r of e.runs) runs.add(r);
    if (e.madeBy !== undefined) runs.add(e.madeBy);
    const folder = runFolderOf(e);
    if (folder !== undefined) runs.add(folder);
  }
  return [...runs].sort();
}

/**
 * Which entries to delete (pure; nothing is touched). `stage` and `run` set the scope (both
 * when both are given): without `stage`, entries of stage `"other"` are never in scope;
 * `run` R takes the entries in R's run folder and the shared caches (embeddings, features)
 * used by R and no other run. Within the scope, `olderThanDays` selects entries last used
 * more than that many days before `now`, and `keepBytes` then adds the least recently used
 * of the rest until what remains in scope totals at most `keepBytes`; with neither, the
 * whole scope is selected. No criterion at all selects nothing. The result is ordered by
 * last use, oldest first.
 *
 * @throws RangeError for a negative or non-finite `olderThanDays` or `keepBytes`, or an
 * unknown `stage`.
 */
export function planPrune(entries: readonly CacheEntry[], criteria: PruneCriteria): CacheEntry[] {
  const { olderThanDays, run, stage, keepBytes } = criteria;
  if (olderThanDays !== undefined && !(Number.isFinite(olderThanDays) && olderThanDays >= 0)) {
    throw new RangeError(`olderThanDays must be a number ≥ 0, not ${olderThanDays}`);
  }
  if (keepBytes !== undefined && !(Number.isFinite(keepBytes) && keepBytes >= 0)) {
    throw new RangeError(`keepBytes must be a number of bytes ≥ 0, not ${keepBytes}`);
  }
  if (stage !== undefined && !(CACHE_STAGES as readonly string[]).includes(stage)) {
    throw new RangeError(`unknown stage "${stage}"; stages: ${CACHE_STAGES.join(", ")}`);
  }
  if ([olderThanDays, run, stage, keepBytes].every((c) => c === undefined)) return [];
  const byAge = (a: CacheEntry, b: CacheEntry) =>
    Date.parse(a.lastUse) - Date.parse(b.lastUse) || (a.path < b.path ? -1 : 1);
  const scope = entries.filter((e) =>
    (stage === undefined ? e.stage !== "other" : e.stage === stage) &&
    (run === undefined || runFolderOf(e) === run ||
      (SHARED_STAGES.has(e.stage) && e.runs.length === 1 && e.runs[0] === run))
  ).sort(byAge);
  if (olderThanDays === undefined && keepBytes === undefined) return scope;
  const chosen = new Set<CacheEntry>();
  if (olderThanDays !== undefined) {
    const now = criteria.now === undefined ? Date.now() : new Date(criteria.now).getTime();
    const cutoff = now - olderThanDays * DAY_MS;
    for (const e of scope) if (Date.parse(e.lastUse) < cutoff) chosen.add(e);
  }
  if (keepBytes !== undefined) {
    let remaining = scope.reduce((sum, e) => sum + (chosen.has(e) ? 0 : e.bytes), 0);
    for (const e of scope) {
      if (remaining <= keepBytes) break;
      if (chosen.has(e)) continue;
      chosen.add(e);
      remaining -= e.bytes;
    }
  }
  return scope.filter((e) => chosen.has(e));
}

/** A relative path that stays inside the root (no `..`, not absolute, not the root itself). */
function insideRoot(path: string): boolean {
  if (path === "" || isAbsolute(path) || /^[A-Za-z]:/.test(path)) return false;
  const parts = normalize(path).replaceAll("\\", "/").split("/");
  return !parts.includes("..") && parts[0] !== "." && parts[0] !== "";
}

/** Whether a `uses.json` key names `path` or something inside it. */
function covers(removed: ReadonlySet<string>, recorded: string): boolean {
  const p = recordedPath(recorded);
  if (p === undefined) return false;
  const parts = p.split("/");
  for (let n = parts.length; n > 0; n--) if (removed.has(parts.slice(0, n).join("/"))) return true;
  return false;
}

/** Rewrites a run's `uses.json` without the removed paths; true when it changed. */
async function forgetUses(runDir: string, removed: ReadonlySet<string>): Promise<boolean> {
  const file = join(runDir, USES_FILE);
  try {
    await Deno.lstat(file);
  } catch {
    return false;
  }
  const uses = await readUses(runDir);
  const kept = Object.fromEntries(Object.entries(uses).filter(([p]) => !covers(removed, p)));
  if (Object.keys(kept).length === Object.keys(uses).length) return false;
  const part = join(runDir, `${USES_FILE}.${crypto.randomUUID().slice(0, 8)}.part`);
  await Deno.writeTextFile(part, JSON.stringify(kept, null, 1));
  await Deno.rename(part, file);
  return true;
}

/** Removes `dir` when empty, or when it holds only an empty `uses.json`; true if removed. */
async function removeIfEmpty(dir: string): Promise<boolean> {
  const list = await children(dir);
  if (list.length === 1 && list[0].name === USES_FILE && list[0].isFile) {
    if (Object.keys(await readUses(dir)).length > 0) return false;
    await Deno.remove(join(dir, USES_FILE));
  } else if (list.length > 0) {
    return false;
  }
  try {
    await Deno.remove(dir);
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes `entries` under `root` (default `dataDir()`; folders recursively, links without
 * following them), removes their paths from every run's `uses.json`, and then removes
 * folders the deletion left empty (an encoder's folder, a run's `jobs/` or `checkpoints/`,
 * a run folder left with an empty `uses.json`), never the stage folders themselves. An
 * entry already gone counts as removed; one that cannot be deleted is reported in
 * {@link PruneResult.failed} and the others still go.
 *
 * @throws Error before deleting anything when an entry's path is absolute or leaves `root`.
 */
export async function pruneCaches(
  entries: readonly CacheEntry[],
  root: string = dataDir(),
): Promise<PruneResult> {
  for (const e of entries) {
    if (!insideRoot(e.path)) {
      throw new Error(`refusing to delete "${e.path}": not a path inside ${root}`);
    }
  }
  const result: PruneResult = { removed: [], bytes: 0, usesUpdated: [], failed: [] };
  for (const e of entries) {
    try {
      await Deno.remove(join(root, e.path), { recursive: true });
      if (e.stage === "layout") await removeMaker(join(root, e.path));
      if (e.stage === "job") await Deno.remove(join(root, jobModelPath(e.path))).catch(() => {});
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        result.failed.push({ entry: e, error: (error as Error).message });
        continue;
      }
    }
    result.removed.push(e);
    result.bytes += e.bytes;
  }
  const removed = new Set(result.removed.map((e) => normalize(e.path).replaceAll("\\", "/")));
  if (removed.size === 0) return result;
  for (const run of await children(join(root, "experiments"))) {
    if (!run.isDirectory) continue;
    if (await forgetUses(join(root, "experiments", run.name), removed)) {
      result.usesUpdated.push(`experiments/${run.name}`);
    }
  }
  const keep = new Set(["", "embeddings", "features", "experiments"]);
  for (const path of [...removed, ...result.usesUpdated.map((run) => `${run}/${USES_FILE}`)]) {
    const parts = path.split("/");
    for (let n = parts.length - 1; n > 0; n--) {
      const parent = parts.slice(0, n).join("/");
      if (keep.has(parent) || !(await removeIfEmpty(join(root, parent)))) break;
    }
  }
  return result;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`, `3.21 GiB` (powers of 1024). */
export function formatBytes(bytes: number): string {
  let value = bytes, unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${value} B`;
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

/**
 * Parses a size such as `5G`, `500M`, `1.5GiB`, `750MB`, `64k` or `1024` (bytes) into bytes;
 * every unit is a power of 1024 (`5G` = 5 GiB).
 *
 * @throws RangeError naming the accepted forms when `text` is not a size.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgtp]?)(i?b)?\s*$/i.exec(text);
  if (!m || (m[3] !== undefined && m[2] === "" && m[3].toLowerCase() !== "b")) {
    throw new RangeError(
      `"${text}" is not a size; write a number with an optional unit K, M, G or T ` +
        `(powers of 1024), e.g. 5G or 500M`,
    );
  }
  const power = " kmgtp".indexOf(m[2].toLowerCase() || " ");
  return Math.round(Number(m[1]) * 1024 ** power);
}
