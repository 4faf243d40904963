/**
 * Training checkpoints on disk: a JSON record (anything serialisable: epoch, history, RNG
 * state, configuration) plus named float32 arrays (weights, optimizer moments) in one binary
 * file. Layout of a checkpoint folder:
 *
 *     checkpoint.json      the record, and where each array lies in the binary file
 *     epoch-0003.bin       the arrays, little-endian float32, back to back
 *
 * Writing is crash-safe: the binary file gets a new name per save and is complete on disk
 * before `checkpoint.json` (written to `.part`, then renamed) points at it; older binaries
 * are removed afterwards. A run killed at any moment leaves the previous or the new
 * checkpoint, never a mix.
 *
 * @module
 */
import { join } from "node:path";
import type { NamedArrays } from "./network.ts";

/** Where one array lies in the binary file. */
interface ArrayEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements. */
  offset: number;
  length: number;
}

interface CheckpointFile<R> {
  format: "text-as-image-checkpoint";
  version: 1;
  binary: string;
  arrays: ArrayEntry[];
  record: R;
}

/** A loaded checkpoint. */
export interface Checkpoint<R> {
  /** The JSON record saved with it. */
  record: R;
  /** The arrays. */
  arrays: NamedArrays;
}

/**
 * Saves `record` and `arrays` into `dir` (created when missing), replacing any previous
 * checkpoint there atomically. `tag` names the binary file (e.g. the epoch).
 */
export async function saveCheckpoint<R>(
  dir: string,
  tag: string,
  record: R,
  arrays: NamedArrays,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const entries: ArrayEntry[] = [];
  let total = 0;
  for (const [name, { data, shape }] of Object.entries(arrays)) {
    entries.push({ name, shape, offset: total, length: data.length });
    total += data.length;
  }
  const all = new Float32Array(total);
  for (const e of entries) all.set(arrays[e.name].data, e.offset);
  const binary = `${tag}.bin`;
  const binPath = join(dir, binary);
  await Deno.writeFile(`${binPath}.part`, new Uint8Array(all.buffer));
  await syncFile(`${binPath}.part`);
  await Deno.rename(`${binPath}.part`, binPath);
  const file: CheckpointFile<R> = {
    format: "text-as-image-checkpoint",
    version: 1,
    binary,
    arrays: entries,
    record,
  };
  const jsonPath = join(dir, "checkpoint.json");
  await Deno.writeTextFile(`${jsonPath}.part`, JSON.stringify(file));
  await syncFile(`${jsonPath}.part`);
  await Deno.rename(`${jsonPath}.part`, jsonPath);
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(".bin") && entry.name !== binary) {
      await Deno.remove(join(dir, entry.name)).catch(() => {});
    }
  }
}

async function syncFile(path: string): Promise<void> {
  const f = await Deno.open(path, { read: true, write: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

/** Loads the checkpoint in `dir`, or returns `undefined` when there is none. */
export async function loadCheckpoint<R>(dir: string): Promise<Checkpoint<R> | undefined> {
  const jsonPath = join(dir, "checkpoint.json");
  let text: string;
  try {
    text = await Deno.readTextFile(jsonPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const file = JSON.parse(text) as CheckpointFile<R>;
  if (file.format !== "text-as-image-checkpoint" || file.version !== 1) {
    throw new Error(`${jsonPath} is not a checkpoint of this toolkit (or a newer version).`);
  }
  let bytes = await Deno.readFile(join(dir, file.binary));
  if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
  const total = file.arrays.reduce((sum, e) => sum + e.length, 0);
  if (bytes.length !== total * 4) {
    throw new Error(
      `${join(dir, file.binary)} has ${bytes.length} bytes, expected ${total * 4}; ` +
        `delete ${dir} to start the run afresh.`,
    );
  }
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, total);
  const arrays: NamedArrays = {};
  for (const e of file.arrays) {
    arrays[e.name] = { data: all.slice(e.offset, e.offset + e.length), shape: e.shape };
  }
  return { record: file.record, arrays };
}
