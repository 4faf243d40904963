/**
 * Test helper for the torchvision architectures: runs tools/make_torchvision_fixtures.py
 * (Debian's python3 with python3-torch and python3-torchvision) into a temporary folder, and
 * reads what it writes: a `StateDictSource` over its raw dump (`<arch>.raw.json` + `.bin`:
 * the complete key list, and the values of the keys it dumped) and the input/output cases.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type {
  StateDict,
  StateDictSource,
  TensorInfo,
  TorchDType,
} from "../lib/vision/torch/types.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../tools/make_torchvision_fixtures.py", import.meta.url));

/**
 * Runs the fixture script into `dir` for `archs`, raw dump only. `scope`: "slice" dumps only
 * the slice's values, "full" all values and adds the complete network's logits at 224×224.
 * Fails (never skips) naming the Debian packages when PyTorch is missing.
 */
export async function makeFixtures(
  dir: string,
  archs: string[],
  scope: "slice" | "full",
): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(PYTHON, {
      args: [SCRIPT, dir, "--archs", archs.join(","), "--formats", "raw", "--scope", scope],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(
      `the torchvision fixtures need ${PYTHON} (${(e as Error).message}); install Debian's ` +
        `python3 python3-torch python3-torchvision`,
    );
  }
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr);
    const missing = /No module named '([^']+)'/.exec(stderr)?.[1];
    throw new Error(
      missing
        ? `the torchvision fixtures need the Python module "${missing}": install Debian's ` +
          `python3-torch python3-torchvision (sudo apt-get install python3-torch python3-torchvision)`
        : `${SCRIPT} failed (exit ${out.code}):\n${stderr.slice(-2000)}`,
    );
  }
}

interface RawJson {
  keys: { key: string; dtype: TorchDType; shape: number[] }[];
  offsets: Record<string, number>;
}

/** A `StateDictSource` over a raw dump; reading a key that was not dumped is an error. */
export class RawStateDictSource implements StateDictSource {
  readonly entries: ReadonlyMap<string, TensorInfo>;
  readonly description: string;
  /** Every key passed to {@link read}, in order. */
  readonly requested: string[] = [];
  readonly #offsets: Record<string, number>;
  readonly #bin: string;

  private constructor(json: RawJson, bin: string) {
    this.entries = new Map(json.keys.map((k) => [k.key, { dtype: k.dtype, shape: k.shape }]));
    this.#offsets = json.offsets;
    this.#bin = bin;
    this.description = bin;
  }

  /** Opens `<dir>/<arch>.raw.json` and its `.bin`. */
  static async open(dir: string, arch: string): Promise<RawStateDictSource> {
    const json = JSON.parse(await Deno.readTextFile(`${dir}/${arch}.raw.json`)) as RawJson;
    return new RawStateDictSource(json, `${dir}/${arch}.raw.bin`);
  }

  /** Reads `keys` from the dump (each by its offset). */
  async read(keys: readonly string[]): Promise<StateDict> {
    this.requested.push(...keys);
    const file = await Deno.open(this.#bin, { read: true });
    try {
      const state: StateDict = new Map();
      for (const key of keys) {
        const info = this.entries.get(key);
        const offset = this.#offsets[key];
        if (!info || offset === undefined) {
          throw new Error(`${this.#bin}: "${key}" is ${info ? "not in the dump" : "no key"}`);
        }
        const count = info.shape.reduce((a, b) => a * b, 1);
        const bytes = new Uint8Array(count * 4);
        await file.seek(offset * 4, Deno.SeekMode.Start);
        let done = 0;
        while (done < bytes.length) {
          const n = await file.read(bytes.subarray(done));
          if (n === null) throw new Error(`${this.#bin}: ends inside "${key}"`);
          done += n;
        }
        state.set(key, { ...info, data: new Float32Array(bytes.buffer) });
      }
      return state;
    } finally {
      file.close();
    }
  }

  /** Nothing to release: each read opens and closes the file. */
  close(): void {}
}

/** A source with only `entries` (for key-check tests); reading is an error. */
export function entriesOnly(
  entries: Map<string, TensorInfo>,
  description: string,
): StateDictSource {
  return {
    entries,
    description,
    read: () => Promise.reject(new Error(`${description}: read() must not be called`)),
    close: () => {},
  };
}

/** One input/output pair written by the script (channels-last float32). */
export interface FixtureCase {
  name: string;
  input: { data: Float32Array; shape: number[] };
  output: { data: Float32Array; shape: number[] };
}

/** The cases of `arch` in `dir`. */
export async function readCases(dir: string, arch: string): Promise<FixtureCase[]> {
  const list = JSON.parse(await Deno.readTextFile(`${dir}/${arch}.cases.json`)) as {
    name: string;
    input: { file: string; shape: number[] };
    output: { file: string; shape: number[] };
  }[];
  const load = async (f: { file: string; shape: number[] }) => {
    const bytes = await Deno.readFile(`${dir}/${f.file}`);
    return { data: new Float32Array(bytes.slice().buffer), shape: f.shape };
  };
  return await Promise.all(
    list.map(async (c) => ({
      name: c.name,
      input: await load(c.input),
      output: await load(c.output),
    })),
  );
}

/** Max |a − b| / max |b|. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  if (actual.length !== expected.length) {
    throw new Error(`lengths differ: ${actual.length} vs ${expected.length}`);
  }
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}
