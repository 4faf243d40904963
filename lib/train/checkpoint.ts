/**
 * Training checkpoints on disk: a JSON record (anything serialisable: epoch, history, RNG
 * state, configuration) plus named float32 arrays (weights, optimizer moments) in one binary
 * file. A checkpoint folder keeps the newest two checkpoints, so a damaged newest one falls
 * back to the one before it:
 *
 *     epoch-0003.json      the manifest: the record, where each array lies in the binary
 *     epoch-0003.bin       the arrays, little-endian float32, back to back
 *     epoch-0002.json      the previous checkpoint, kept as a fallback
 *     epoch-0002.bin
 *
 * The manifest (`<tag>.json`) is one JSON object,
 * `{"sha256":…,"format":"text-as-image-checkpoint","version":2,"stageVersion":…,"sequence":…,
 * "tag":…,"binary":…,"binaryBytes":…,"binarySha256":…,"arrays":[…],"record":…}`:
 *
 * - `sha256` is the SHA-256 of the manifest's own text with those 64 hex digits replaced by
 *   zeros, so every byte of the manifest (the record and the array table included) is
 *   covered; `binarySha256` is the SHA-256 of the binary file's bytes.
 * - `stageVersion` is {@link TRAINING_STAGE_VERSION} of the code that wrote it.
 * - `sequence` orders the checkpoints of a folder (1 + the largest one there when saved).
 *
 * {@link loadCheckpoint} returns the newest checkpoint that verifies: a manifest or binary
 * changed in any byte (at the same length or not), truncated or missing, or made by another
 * training stage version, is logged with the file's name and skipped, never read as data. A
 * name in a manifest that would lead outside the folder (`binary`: absolute, `..`) is refused
 * with an error. Array names are only keys of the loaded arrays, never paths.
 *
 * Writing is crash-safe: each file is written under a unique temporary name, synced, then
 * renamed; the binary is complete on disk before its manifest appears; checkpoints older
 * than the newest two are removed afterwards. A run killed at any moment leaves the previous
 * checkpoints and possibly the new one, never a mix.
 *
 * @module
 */
import { join } from "node:path";
import {
  CorruptCacheError,
  parseJsonObject,
  partPath,
  sealJson,
  sha256Hex,
  StaleCacheError,
  verifyHash,
  verifySeal,
} from "../integrity.ts";
import { safeJoin } from "../safe_path.ts";
import type { NamedArrays } from "./network.ts";

/**
 * Version of the training stage's computation (the classifier's training and what its
 * checkpoints hold), recorded in every checkpoint. Bump it by hand when a change makes a
 * saved checkpoint unfit to resume; checkpoints of another version are ignored (logged) and
 * training starts afresh. 1: the code before versions were recorded (such checkpoints have
 * none); 2: checkpoints with content hashes.
 */
export const TRAINING_STAGE_VERSION = 2;

const FORMAT = "text-as-image-checkpoint";
const FORMAT_VERSION = 2;
/** How many checkpoints a folder keeps (the newest, and the fallbacks before it). */
const KEEP = 2;

/** Where one array lies in the binary file. */
interface ArrayEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements. */
  offset: number;
  length: number;
}

interface Manifest<R> {
  format: typeof FORMAT;
  version: typeof FORMAT_VERSION;
  stageVersion: number;
  sequence: number;
  tag: string;
  binary: string;
  binaryBytes: number;
  binarySha256: string;
  arrays: ArrayEntry[];
  record: R;
}

/** A loaded checkpoint. */
export interface Checkpoint<R> {
  /** The JSON record saved with it. */
  record: R;
  /** The arrays. */
  arrays: NamedArrays;
  /** The tag it was saved under (e.g. `epoch-0003`). */
  tag: string;
}

/** Options of {@link saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Stage version recorded (default {@link TRAINING_STAGE_VERSION}). */
  stageVersion?: number;
}

/** Options of {@link loadCheckpoint}. */
export interface LoadCheckpointOptions {
  /**
   * Receives a message naming the file for every checkpoint skipped (damaged, or of another
   * stage version) and for the fallback taken (default `console.warn`).
   */
  log?: (message: string) => void;
  /** Stage version a checkpoint must have been made by (default {@link TRAINING_STAGE_VERSION}). */
  stageVersion?: number;
}

/** A tag must be a plain file name (it names the checkpoint's two files). */
function checkTag(tag: string): void {
  if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(tag) || tag.includes("..")) {
    throw new Error(
      `checkpoint tag ${JSON.stringify(tag)} must be a plain file name ` +
        `(letters, digits, ".", "_", "-"; no ".." or separators)`,
    );
  }
}

async function writeSynced(path: string, data: Uint8Array | string): Promise<void> {
  const part = partPath(path);
  try {
    if (typeof data === "string") await Deno.writeTextFile(part, data);
    else await Deno.writeFile(part, data);
    const f = await Deno.open(part, { read: true, write: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(part, path);
  } catch (e) {
    await Deno.remove(part).catch(() => {});
    throw e;
  }
}

/** The manifest files (`*.json`) of `dir`, or `undefined` when `dir` does not exist. */
async function manifestNames(dir: string): Promise<string[] | undefined> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && entry.name.endsWith(".json")) names.push(entry.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return names.sort();
}

/** The `sequence` a manifest claims, without verifying it (for ordering and pruning). */
async function claimedSequence(path: string): Promise<number> {
  try {
    const value = JSON.parse(await Deno.readTextFile(path));
    return typeof value?.sequence === "number" ? value.sequence : -Infinity;
  } catch {
    return -Infinity;
  }
}

/**
 * Saves `record` and `arrays` into `dir` (created when missing) as the checkpoint `tag`
 * (a plain file name, e.g. `epoch-0003`): the newest of the folder, replacing one of the
 * same tag. The previous checkpoint is kept as a fallback; older ones are removed.
 */
export async function saveCheckpoint<R>(
  dir: string,
  tag: string,
  record: R,
  arrays: NamedArrays,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  checkTag(tag);
  await Deno.mkdir(dir, { recursive: true });
  const entries: ArrayEntry[] = [];
  let total = 0;
  for (const [name, { data, shape }] of Object.entries(arrays)) {
    entries.push({ name, shape, offset: total, length: data.length });
    total += data.length;
  }
  const all = new Float32Array(total);
  for (const e of entries) all.set(arrays[e.name].data, e.offset);
  const bytes = new Uint8Array(all.buffer);
  const binary = `${tag}.bin`;
  const manifestName = `${tag}.json`;

  const existing = (await manifestNames(dir)) ?? [];
  const sequences = new Map<string, number>();
  for (const name of existing) sequences.set(name, await claimedSequence(join(dir, name)));
  const sequence = Math.max(0, ...[...sequences.values()].filter(Number.isFinite)) + 1;

  await writeSynced(join(dir, binary), bytes);
  const manifest: Manifest<R> = {
    format: FORMAT,
    version: FORMAT_VERSION,
    stageVersion: options.stageVersion ?? TRAINING_STAGE_VERSION,
    sequence,
    tag,
    binary,
    binaryBytes: bytes.length,
    binarySha256: sha256Hex(bytes),
    arrays: entries,
    record,
  };
  await writeSynced(join(dir, manifestName), sealJson(manifest));

  // Keep the newest KEEP checkpoints (this one included); remove the rest, manifest first,
  // and any manifest without a sequence (unreadable, or of the layout before version 2).
  sequences.set(manifestName, sequence);
  const kept = new Set(
    [...sequences].filter(([, s]) => Number.isFinite(s)).sort((a, b) => b[1] - a[1])
      .slice(0, KEEP).map(([name]) => name),
  );
  for (const name of sequences.keys()) {
    if (!kept.has(name)) await Deno.remove(join(dir, name)).catch(() => {});
  }
  const keptBinaries = new Set([...kept].map((name) => `${name.slice(0, -5)}.bin`));
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".bin") && !keptBinaries.has(entry.name)) {
      await Deno.remove(join(dir, entry.name)).catch(() => {});
    }
  }
}

/** Reads the manifest at `path`; throws {@link CorruptCacheError} or {@link StaleCacheError}. */
function readManifest<R>(text: string, path: string, stageVersion: number): Manifest<R> {
  const value = parseJsonObject(text, path);
  const made = typeof value.stageVersion === "number" ? value.stageVersion : undefined;
  // The version first: a checkpoint of another version (or of before versions were
  // recorded, which has no hash) is stale, whatever its layout.
  if (made !== stageVersion) throw new StaleCacheError(path, "training", made, stageVersion);
  verifySeal(text, path);
  const m = value as unknown as Manifest<R>;
  if (m.format !== FORMAT || m.version !== FORMAT_VERSION) {
    throw new CorruptCacheError(
      path,
      `not a checkpoint manifest of format version ${FORMAT_VERSION}`,
    );
  }
  return m;
}

/** Checks the array table of a verified manifest against its binary's size. */
function checkEntries(m: Manifest<unknown>, path: string): number {
  if (!Array.isArray(m.arrays) || !Number.isInteger(m.binaryBytes)) {
    throw new CorruptCacheError(path, "no array table");
  }
  const total = m.binaryBytes / 4;
  const seen = new Set<string>();
  for (const e of m.arrays) {
    const size = Array.isArray(e?.shape) ? e.shape.reduce((a, b) => a * b, 1) : NaN;
    if (
      typeof e.name !== "string" || e.name === "__proto__" || seen.has(e.name) ||
      !Number.isInteger(e.offset) || !Number.isInteger(e.length) || e.offset < 0 ||
      e.length < 0 || e.offset + e.length > total || size !== e.length
    ) {
      throw new CorruptCacheError(path, `bad array entry ${JSON.stringify(e)}`);
    }
    seen.add(e.name);
  }
  return total;
}

/**
 * Loads the newest checkpoint in `dir` that verifies, or returns `undefined` when there is
 * none (no folder, nothing saved yet, or every checkpoint damaged or of another training
 * stage version: training starts afresh). Every checkpoint skipped is reported to `log`
 * with a message naming the damaged or stale file; so is the fallback. Throws an
 * `UnsafePathError` when a manifest names a binary outside `dir`.
 */
export async function loadCheckpoint<R>(
  dir: string,
  options: LoadCheckpointOptions = {},
): Promise<Checkpoint<R> | undefined> {
  const log = options.log ?? ((message: string) => console.warn(message));
  const stageVersion = options.stageVersion ?? TRAINING_STAGE_VERSION;
  const names = await manifestNames(dir);
  if (names === undefined) return undefined;

  const manifests: { path: string; m: Manifest<R> }[] = [];
  let skipped = 0;
  const skip = (e: unknown) => {
    if (!(e instanceof CorruptCacheError || e instanceof StaleCacheError)) throw e;
    skipped++;
    log(`checkpoint skipped: ${e.message}`);
  };
  // Binaries some manifest names (read without trusting it, only to spot orphans).
  const named = new Set<string>();
  for (const name of names) {
    const path = join(dir, name);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // removed since listed
      throw e;
    }
    named.add(`${name.slice(0, -5)}.bin`);
    try {
      const binary = JSON.parse(text)?.binary;
      if (typeof binary === "string") named.add(binary);
    } catch { /* reported by readManifest */ }
    try {
      manifests.push({ path, m: readManifest<R>(text, path, stageVersion) });
    } catch (e) {
      skip(e);
    }
  }
  // A binary whose manifest is missing: an interrupted save, or a deleted manifest.
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".bin") && !named.has(entry.name)) {
      skipped++;
      log(
        `checkpoint skipped: ${join(dir, entry.name)} has no manifest ` +
          `(${entry.name.slice(0, -4)}.json is missing: an interrupted save, or deleted)`,
      );
    }
  }

  manifests.sort((a, b) => b.m.sequence - a.m.sequence);
  for (const { path, m } of manifests) {
    // A verified manifest naming a file outside the folder was crafted: refuse it loudly.
    const binPath = safeJoin(dir, m.binary, `checkpoint manifest ${path}: binary file`);
    let bytes: Uint8Array;
    try {
      const total = checkEntries(m, path);
      try {
        bytes = await Deno.readFile(binPath);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) throw new CorruptCacheError(binPath, "missing");
        throw e;
      }
      if (bytes.length !== m.binaryBytes) {
        throw new CorruptCacheError(
          binPath,
          `${bytes.length} bytes, ${m.binaryBytes} recorded${
            bytes.length < m.binaryBytes ? ": truncated" : ""
          }`,
        );
      }
      verifyHash(bytes, m.binarySha256, binPath);
      if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
      const all = new Float32Array(bytes.buffer, bytes.byteOffset, total);
      const arrays: NamedArrays = {};
      for (const e of m.arrays) {
        arrays[e.name] = { data: all.slice(e.offset, e.offset + e.length), shape: e.shape };
      }
      if (skipped > 0) log(`resuming from the checkpoint ${path}, the newest intact one`);
      return { record: m.record, arrays, tag: m.tag };
    } catch (e) {
      skip(e);
    }
  }
  if (skipped > 0) log(`no intact checkpoint in ${dir}: training starts afresh`);
  return undefined;
}
