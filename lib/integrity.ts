/**
 * What every cache shares to be trusted: a content hash checked on every read, and a stage
 * version checked on every read. A cache whose bytes changed (same length or not) raises
 * {@link CorruptCacheError}; one made by another version of the stage's computation raises
 * {@link StaleCacheError}. Callers recompute on either and log the error's message, which
 * names the file.
 *
 * Stage versions are kept constants, bumped by hand in the stage's module when its
 * computation changes (not hashes of the sources: those would discard every cache on a
 * comment or formatting edit, and the stages' tests against reference implementations are
 * what says whether a computation changed).
 *
 * ```ts
 * import { sha256Hex, verifyHash } from "./integrity.ts";
 * const bytes = new TextEncoder().encode("data");
 * verifyHash(bytes, sha256Hex(bytes), "cache/file.bin"); // passes
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, join } from "node:path";

/** Hex SHA-256 of bytes or text. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A cache file whose content does not match its recorded hash (or cannot be parsed). */
export class CorruptCacheError extends Error {
  /** The damaged file. */
  readonly path: string;
  /** Creates the error for `path`, with what was found. */
  constructor(path: string, detail: string) {
    super(`${path} is damaged (${detail}); it will be recomputed`);
    this.name = "CorruptCacheError";
    this.path = path;
  }
}

/** A cache made by another version of its stage's computation. */
export class StaleCacheError extends Error {
  /** The cache file or folder. */
  readonly path: string;
  /** The version that made it (`undefined`: made before versions were recorded). */
  readonly made: number | undefined;
  /** The version of this code. */
  readonly current: number;
  /** Creates the error. */
  constructor(path: string, stage: string, made: number | undefined, current: number) {
    super(
      `${path} was made by ${stage} version ${made ?? "0 (before versions were recorded)"}, ` +
        `this code is version ${current}; it will be recomputed`,
    );
    this.name = "StaleCacheError";
    this.path = path;
    this.made = made;
    this.current = current;
  }
}

/** Throws {@link CorruptCacheError} unless `bytes` hash to `expected`. */
export function verifyHash(bytes: Uint8Array | string, expected: string | undefined, path: string) {
  if (expected === undefined) throw new CorruptCacheError(path, "no content hash recorded");
  const actual = sha256Hex(bytes);
  if (actual !== expected) {
    throw new CorruptCacheError(
      path,
      `content hash ${actual.slice(0, 12)}…, recorded ${expected.slice(0, 12)}…`,
    );
  }
}

/** Throws {@link StaleCacheError} unless `made` equals `current`. */
export function verifyVersion(
  made: number | undefined,
  current: number,
  stage: string,
  path: string,
) {
  if (made !== current) throw new StaleCacheError(path, stage, made, current);
}

/** A unique temporary name beside `path` for an atomic write (safe when processes race). */
export function partPath(path: string): string {
  return `${path}.${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.part`;
}

/** Writes `data` to `path` atomically (unique temporary file, then rename). */
export async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const part = partPath(path);
  if (typeof data === "string") await Deno.writeTextFile(part, data);
  else await Deno.writeFile(part, data);
  await Deno.rename(part, path);
}

/** The file that records `path`'s content hash (`<path>.sha256`, in `sha256sum` format). */
export function hashSidecarPath(path: string): string {
  return `${path}.sha256`;
}

/**
 * Writes `data` to `path` atomically, then its content hash to {@link hashSidecarPath}
 * (atomically too; `sha256sum -c` checks it). A stale sidecar is removed first, so the file
 * has its own hash recorded or none: a write that dies between the two renames leaves a file
 * without a hash, which readers treat as not written. Returns the hash.
 */
export async function writeAtomicWithHash(path: string, data: Uint8Array): Promise<string> {
  const hash = sha256Hex(data);
  const sidecar = hashSidecarPath(path);
  await Deno.remove(sidecar).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await writeAtomic(path, data);
  await writeAtomic(sidecar, `${hash}  ${basename(path)}\n`);
  return hash;
}

/**
 * The content hash recorded for `path` by {@link writeAtomicWithHash}; `undefined` when none
 * is recorded. Throws {@link CorruptCacheError} naming the sidecar when it is unreadable.
 */
export async function readRecordedHash(path: string): Promise<string | undefined> {
  const sidecar = hashSidecarPath(path);
  let text: string;
  try {
    text = await Deno.readTextFile(sidecar);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const m = /^([0-9a-f]{64}) [ *](.+)\n?$/.exec(text);
  if (!m || m[2] !== basename(path)) {
    throw new CorruptCacheError(sidecar, `not a SHA-256 line for ${basename(path)}`);
  }
  return m[1];
}

/** Whether process `pid` of this host runs (`undefined`: cannot tell here, not Linux). */
export async function processAlive(pid: number): Promise<boolean | undefined> {
  if (pid === Deno.pid) return true;
  if (Deno.build.os !== "linux") return undefined;
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the temporary files in `folder` left by writes whose process died: names made by
 * {@link partPath} (and the older `<name>.<pid>.part|tmp`) of processes no longer running,
 * and, where that cannot be told (no process id, or not Linux), those untouched for
 * `maxAgeMs` (default one hour). Temporary files of live processes are kept. Returns the
 * names removed.
 */
export async function removeLeftoverParts(
  folder: string,
  maxAgeMs = 3_600_000,
): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(folder));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return removed;
    throw e;
  }
  for (const entry of entries) {
    if (!entry.isFile || !/\.(part|tmp)$/.test(entry.name)) continue;
    const path = join(folder, entry.name);
    const pid = /\.(\d+)(?:-[0-9a-f]{8})?\.(?:part|tmp)$/.exec(entry.name)?.[1];
    let alive = pid === undefined ? undefined : await processAlive(Number(pid));
    if (alive === undefined) {
      const mtime = (await Deno.stat(path).catch(() => undefined))?.mtime?.getTime();
      alive = mtime === undefined || Date.now() - mtime < maxAgeMs;
    }
    if (alive) continue;
    try {
      await Deno.remove(path);
      removed.push(entry.name);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return removed;
}

/** What is on disk of one hashed chunk file, found without reading its data. */
export type ChunkProbe =
  | { state: "absent" }
  | { state: "written"; hash: string }
  | { state: "damaged"; error: CorruptCacheError };

/**
 * What is on disk of `path`, a chunk written by {@link writeAtomicWithHash} that must hold
 * `expectedBytes`: absent (no file, or no hash recorded: the write died between the two),
 * written (with its recorded hash, checked when read), or damaged (wrong size, unreadable
 * hash record).
 */
export async function probeChunk(path: string, expectedBytes: number): Promise<ChunkProbe> {
  let size: number;
  try {
    size = (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { state: "absent" };
    throw e;
  }
  let hash: string | undefined;
  try {
    hash = await readRecordedHash(path);
  } catch (e) {
    if (e instanceof CorruptCacheError) return { state: "damaged", error: e };
    throw e;
  }
  if (hash === undefined) return { state: "absent" };
  if (size !== expectedBytes) {
    return {
      state: "damaged",
      error: new CorruptCacheError(path, `${size} bytes, expected ${expectedBytes}`),
    };
  }
  return { state: "written", hash };
}

/** Removes every file in `folder` whose name matches `pattern` (absent folder: nothing). */
export async function removeMatching(folder: string, pattern: RegExp): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(folder));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const entry of entries) {
    if (!pattern.test(entry.name)) continue;
    await Deno.remove(join(folder, entry.name)).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}

// Self-hashed JSON: `{"sha256":"<64 hex>",…}`, the hash of the text with those hex digits
// zeroed, so every other byte of the file (its version fields too) is covered.
const HASH_PREFIX = '{"sha256":"';
const ZERO_HASH = "0".repeat(64);
const HASH_END = HASH_PREFIX.length + 64;

/** `body` as JSON text that starts with its own hash (checked by {@link verifySeal}). */
export function sealJson(body: object): string {
  const text = JSON.stringify({ sha256: ZERO_HASH, ...body });
  return HASH_PREFIX + sha256Hex(text) + text.slice(HASH_END);
}

/** Throws {@link CorruptCacheError} unless `text` is as {@link sealJson} wrote it. */
export function verifySeal(text: string, path: string): void {
  const recorded = text.startsWith(HASH_PREFIX) ? text.slice(HASH_PREFIX.length, HASH_END) : "";
  verifyHash(
    HASH_PREFIX + ZERO_HASH + text.slice(HASH_END),
    /^[0-9a-f]{64}$/.test(recorded) ? recorded : undefined,
    path,
  );
}

/** `text` parsed as a JSON object, or {@link CorruptCacheError} naming `path`. */
export function parseJsonObject(text: string, path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CorruptCacheError(path, `not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CorruptCacheError(path, "not a JSON object");
  }
  return value as Record<string, unknown>;
}
