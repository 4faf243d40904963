/**
 * Runs the notebooks headless, in order, in the Deno Jupyter kernel, through
 * `tools/run_notebook.py` (which keeps outputs the kernel publishes after reporting idle and
 * fails on any cell error), then checks that every figure cell (cell tag `figure`) produced
 * its figure (an `image/svg+xml` or `image/png` output). With `--check` it type-checks the
 * notebooks' code cells and checks their formatting instead of running them.
 *
 *     deno task notebooks                      # all notebooks, their own parameters
 *     deno task notebooks --small              # the CI parameter set (minutes)
 *     deno task notebooks --only 03 --params '{"overrides": {"image": {"pixels": 32}}}'
 *     deno run -A tools/notebooks.ts --check   # type-check code cells, check formatting (no kernel)
 *
 *     deno task notebooks --save               # run all on the committed results, save outputs
 *     deno run -A tools/notebooks.ts --only 01 --html   # and check its HTML export
 *
 * Options: `--out DIR` (executed copies; default `data/notebooks/`, the committed notebooks
 * stay clean), `--in-place` (write outputs into `notebooks/` itself), `--echo` (echo cells'
 * output), `--quiet S` (seconds of silence after idle, default 1), `--keep-going`,
 * `--timeout S` (seconds per notebook: default 3 h, 30 min with `--small`), `--html`
 * (convert each executed notebook to HTML with nbconvert and check it shows the figures),
 * paths of `.ipynb` files (run those instead of `notebooks/`).
 *
 * `--save` runs the notebooks with their own parameters, which read the committed results
 * (`results/use-lite-5k`, or `--run NAME` in `--results DIR`), and writes them into
 * `notebooks/` with their outputs ({@link saveNotebook}: volatile metadata removed, execution
 * counts renumbered, large PNGs downscaled) and, in each notebook's metadata, the SHA-256 of
 * the `metrics.json` they show. CI ({@link savedOutputProblem}) fails when that hash is not
 * the committed file's any more.
 *
 * Ctrl-C (SIGINT) or SIGTERM is forwarded to the runner, which shuts its kernel down (and the
 * kernel's process group); this waits for it, then exits with status 130 (143 for SIGTERM).
 * A notebook running past `--timeout` is stopped the same way.
 *
 * Needs `/usr/bin/python3` with Debian's python3-jupyter-client and python3-nbformat
 * (override the interpreter with `JUPYTER_PYTHON`) and the kernel (`deno jupyter --install`).
 *
 * @module
 */
import { basename, dirname, join, relative, resolve } from "node:path";
import { existsSync } from "node:fs";
import { Buffer } from "node:buffer";
import { decode, encode } from "fast-png";
import { dataDir, projectRoot } from "../lib/config.ts";
import type { ConfigOverrides } from "../lib/experiment/mod.ts";

/** Folder of the committed notebooks. */
export const notebooksDir: string = join(projectRoot, "notebooks");

/** The Python interpreter that has jupyter_client (Debian's). */
export const jupyterPython: string = Deno.env.get("JUPYTER_PYTHON") ?? "/usr/bin/python3";

/**
 * The experiment of the CI parameter set (notebooks 3, 5, 6 and 7): the shipped `quick` config
 * (two backbones, both baselines, both ablations, one seed) on a few hundred reviews, small
 * images, one epoch, under its own run name, so that no committed `results/<name>/` stands
 * for it and notebook 6 runs it (reading the jobs notebook 5 finished: same config, same
 * job keys).
 */
export const SMALL_EXPERIMENT: { config: string; overrides: ConfigOverrides } = {
  config: "quick",
  overrides: {
    name: "notebooks-small",
    data: { trainSize: 300, testSize: 200 },
    image: { pixels: 24, tsne: { nIter: 500 } },
    models: { training: { epochs: 1 } },
  },
};

/**
 * The small parameter set CI runs every notebook with: a few hundred reviews, one epoch,
 * small images. Notebooks 3, 5, 6, 7 and 8 take the experiment as `config` and `overrides`
 * ({@link SMALL_EXPERIMENT}); notebooks 1, 2 and 4 declare their own settings (the same
 * sizes, images and backbones). Names a notebook does not declare are ignored for that
 * notebook.
 */
export const SMALL_PARAMETERS: Readonly<Record<string, unknown>> = {
  ...SMALL_EXPERIMENT,
  trainSize: 300,
  testSize: 200,
  pixels: 24,
  backbones: ["darknet_reference", "mobilenet_v1"],
  projectionSize: 300,
  camEpochs: 6,
};

/** The committed run whose results `--save` shows (notebooks' default config). */
export const SAVED_RUN = "use-lite-5k";

/** The command that saves the notebooks' outputs (named in CI's messages). */
export const SAVE_COMMAND = "deno task notebooks --save";

/** A notebook cell as stored in `.ipynb` (nbformat 4). */
export interface NotebookCell {
  /** `"code"`, `"markdown"` or `"raw"`. */
  cell_type: string;
  /** Source text, as one string or a list of lines. */
  source: string | string[];
  /** Cell metadata; `tags` marks `parameters` and `figure` cells. */
  metadata: { tags?: string[]; [key: string]: unknown };
  /** Outputs of code cells. */
  outputs?: { output_type: string; data?: Record<string, unknown>; [key: string]: unknown }[];
  /** Other fields. */
  [key: string]: unknown;
}

/** An `.ipynb` notebook (nbformat 4). */
export interface Notebook {
  /** The cells in order. */
  cells: NotebookCell[];
  /** Notebook metadata. */
  metadata: Record<string, unknown>;
  /** Other fields. */
  [key: string]: unknown;
}

/** The notebooks in run order: `notebooks/NN_*.ipynb` sorted by name. */
export function notebookPaths(dir: string = notebooksDir): string[] {
  return [...Deno.readDirSync(dir)]
    .filter((entry) => entry.isFile && /^\d+_.*\.ipynb$/.test(entry.name))
    .map((entry) => join(dir, entry.name))
    .sort();
}

/** Reads and parses an `.ipynb` file. */
export async function readNotebook(path: string): Promise<Notebook> {
  return JSON.parse(await Deno.readTextFile(path)) as Notebook;
}

/** A cell's source as one string. */
export function cellSource(cell: NotebookCell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

/** Indices of the cells tagged `figure`. */
export function figureCells(notebook: Notebook): number[] {
  return notebook.cells.flatMap((cell, i) =>
    cell.cell_type === "code" && cell.metadata?.tags?.includes("figure") ? [i] : []
  );
}

/** Indices of figure cells without an `image/svg+xml` or `image/png` output. */
export function missingFigures(notebook: Notebook): number[] {
  return figureCells(notebook).filter((i) =>
    !(notebook.cells[i].outputs ?? []).some((output) =>
      output.data !== undefined &&
      ("image/svg+xml" in output.data || "image/png" in output.data)
    )
  );
}

/** Options of {@link executeNotebook}. */
export interface ExecuteOptions {
  /** Where to write the executed notebook. */
  output: string;
  /** Parameter overrides for the parameters cell. */
  parameters?: Record<string, unknown>;
  /** Skip overrides the notebook does not declare (default true). */
  ignoreUnknown?: boolean;
  /** Seconds of IOPub silence after idle before a cell counts as done (default 1). */
  quiet?: number;
  /** Seconds per cell before it fails (default 3600). */
  timeout?: number;
  /**
   * Seconds for the whole notebook (default: no limit). The runner stops itself then (and
   * shuts its kernel down); 30 s later this sends it SIGTERM, 30 s after that SIGKILL.
   */
  notebookTimeout?: number;
  /** Echo the cells' stdout/stderr. */
  echo?: boolean;
  /** Relay the runner's log to stderr as it comes (default true). */
  relay?: boolean;
  /**
   * Forward SIGINT and SIGTERM of this process to the runner and wait for it (default
   * true). The result then has `interrupted` set.
   */
  forwardSignals?: boolean;
}

/** Result of {@link executeNotebook}. */
export interface ExecuteResult {
  /** True when every cell ran without error. */
  ok: boolean;
  /** The runner's log (cells, timings, the failing cell's error). */
  log: string;
  /** The executed notebook (read back from `output`), if it was written. */
  notebook?: Notebook;
  /** The signal forwarded to the runner (`"SIGINT"`, `"SIGTERM"`), or `"timeout"`. */
  interrupted?: string;
  /** The runner's and the kernel's process ids, from the runner's log. */
  pids?: { runner: number; kernel: number };
}

/** The runner's and the kernel's pids from its log line `runner pid R, kernel pid K`. */
export function runnerPids(log: string): { runner: number; kernel: number } | undefined {
  const match = log.match(/runner pid (\d+), kernel pid (\d+)/);
  return match ? { runner: Number(match[1]), kernel: Number(match[2]) } : undefined;
}

/** Whether a process is alive (Linux: `/proc/<pid>` exists and is not a zombie). */
export function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Executes a notebook with `tools/run_notebook.py` in the Deno kernel (cwd: its folder). */
export async function executeNotebook(
  path: string,
  options: ExecuteOptions,
): Promise<ExecuteResult> {
  const args = [
    join(projectRoot, "tools", "run_notebook.py"),
    path,
    "--output",
    options.output,
    "--quiet",
    String(options.quiet ?? 1),
    "--timeout",
    String(options.timeout ?? 3600),
  ];
  if (options.parameters && Object.keys(options.parameters).length > 0) {
    args.push("--params", JSON.stringify(options.parameters));
    if (options.ignoreUnknown ?? true) args.push("--ignore-unknown");
  }
  if (options.echo) args.push("--echo");
  if (options.notebookTimeout) args.push("--notebook-timeout", String(options.notebookTimeout));
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(jupyterPython, {
      args,
      stdout: options.echo ? "inherit" : "piped",
      stderr: "piped",
      cwd: projectRoot,
    }).spawn();
  } catch (error) {
    throw new Error(
      `cannot start ${jupyterPython} (${(error as Error).message}): install Debian's ` +
        "python3-jupyter-client and python3-nbformat, or set JUPYTER_PYTHON",
    );
  }
  let interrupted: string | undefined;
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  // Signals: forwarded to the runner, which shuts its kernel down; a second one kills it.
  const listeners: [Deno.Signal, () => void][] = [];
  if (options.forwardSignals ?? true) {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const listener = () => {
        if (interrupted === undefined || interrupted === "timeout") {
          interrupted ??= signal;
          console.error(`\n${signal}: stopping the notebook and shutting its kernel down…`);
          kill(signal);
        } else {
          console.error(`${signal} again: killing the runner`);
          kill("SIGKILL");
        }
      };
      Deno.addSignalListener(signal, listener);
      listeners.push([signal, listener]);
    }
  }
  // The runner enforces the notebook timeout itself; these are the backstops.
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (options.notebookTimeout) {
    const ms = options.notebookTimeout * 1000;
    timers.push(setTimeout(() => {
      interrupted ??= "timeout";
      kill("SIGTERM");
    }, ms + 30_000));
    timers.push(setTimeout(() => kill("SIGKILL"), ms + 60_000));
  }
  // Relay the runner's log live while keeping a copy.
  const decoder = new TextDecoder();
  let log = "";
  try {
    const reader = child.stderr.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      log += decoder.decode(value, { stream: true });
      if (options.relay ?? true) await Deno.stderr.write(value);
    }
    await child.status;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
  const status = await child.status;
  if (!options.echo) await child.stdout?.cancel();
  if (!interrupted && /ran past its --notebook-timeout/.test(log)) interrupted = "timeout";
  const notebook = existsSync(options.output) ? await readNotebook(options.output) : undefined;
  return { ok: status.success, log, notebook, interrupted, pids: runnerPids(log) };
}

/** What `--save` records in a notebook's metadata (key `text_as_image`). */
export interface SavedMetadata {
  /** The results file the outputs show, relative to the project (`results/<run>/metrics.json`). */
  results: string;
  /** SHA-256 (hex) of that file when the outputs were made. */
  results_sha256: string;
  /** The command that made the outputs. */
  saved_with: string;
  /**
   * Other results files the outputs show, as the notebook declares them (its metadata
   * `text_as_image_reads`, paths relative to the project), each with its SHA-256 when the
   * outputs were made (`null`: the file did not exist then).
   */
  also?: { results: string; results_sha256: string | null }[];
}

/** The other results files a notebook declares it shows (metadata `text_as_image_reads`). */
export function declaredReads(notebook: Notebook): string[] {
  const reads = notebook.metadata.text_as_image_reads;
  return Array.isArray(reads) ? reads.filter((r): r is string => typeof r === "string") : [];
}

/** The SHA-256 of each file `declaredReads` names, null where it does not exist. */
export async function readsHashes(
  paths: string[],
  root: string = projectRoot,
): Promise<{ results: string; results_sha256: string | null }[]> {
  return await Promise.all(paths.map(async (results) => {
    const path = resolve(root, results);
    return { results, results_sha256: existsSync(path) ? await sha256File(path) : null };
  }));
}

/** SHA-256 of a file, as hex. */
export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether any code cell of `notebook` has outputs. */
export function hasOutputs(notebook: Notebook): boolean {
  return notebook.cells.some((cell) =>
    cell.cell_type === "code" && (cell.outputs ?? []).length > 0
  );
}

/** Longest side of a saved PNG figure; larger ones are downscaled by an integer factor. */
export const SAVED_PNG_MAX_SIDE = 800;

/**
 * A PNG (base64) no side of which exceeds `maxSide`: the same image when it fits, else
 * downscaled by the smallest integer factor that makes it fit (mean of each block).
 */
export function downscalePng(base64: string, maxSide = SAVED_PNG_MAX_SIDE): string {
  const png = decode(Buffer.from(base64, "base64"));
  const factor = Math.ceil(Math.max(png.width, png.height) / maxSide);
  if (factor <= 1) return base64;
  const channels = png.channels;
  const width = Math.floor(png.width / factor), height = Math.floor(png.height / factor);
  const source = png.data;
  const max = png.depth === 16 ? 65535 : 255;
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        let sum = 0;
        for (let dy = 0; dy < factor; dy++) {
          for (let dx = 0; dx < factor; dx++) {
            sum += source[((y * factor + dy) * png.width + x * factor + dx) * channels + c];
          }
        }
        out[(y * width + x) * channels + c] = Math.round((sum / (factor * factor)) * 255 / max);
      }
    }
  }
  const bytes = encode({ width, height, data: out, channels, depth: 8 });
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Notebook and cell metadata that change from run to run, removed by {@link saveNotebook}. */
const VOLATILE_METADATA = ["execution", "papermill", "widgets", "collapsed", "scrolled"];

/**
 * An executed notebook made ready to commit: volatile metadata (execution timestamps,
 * papermill or widget state, parameters a run was made with) removed, execution counts
 * renumbered 1, 2, … in cell order, the project's absolute path in text outputs written as
 * `.`, PNGs larger than {@link SAVED_PNG_MAX_SIDE} downscaled, and `metadata.text_as_image`
 * set to `saved` (the hash of the results shown).
 */
export function saveNotebook(executed: Notebook, saved: SavedMetadata): Notebook {
  const notebook = structuredClone(executed);
  for (const key of [...VOLATILE_METADATA, "executed_with_parameters"]) {
    delete notebook.metadata[key];
  }
  notebook.metadata.text_as_image = saved;
  let count = 0;
  const root = projectRoot.endsWith("/") ? projectRoot : `${projectRoot}/`;
  const unroot = (text: string) => text.replaceAll(root, "./").replaceAll(projectRoot, ".");
  for (const cell of notebook.cells) {
    for (const key of VOLATILE_METADATA) delete cell.metadata[key];
    if (cell.cell_type !== "code") continue;
    const outputs = cell.outputs ?? [];
    cell.execution_count = outputs.length > 0 || cell.execution_count ? ++count : null;
    for (const output of outputs) {
      delete output.transient;
      if (output.output_type === "execute_result") output.execution_count = cell.execution_count;
      if (typeof output.text === "string") output.text = unroot(output.text);
      if (Array.isArray(output.text)) output.text = unroot(output.text.join(""));
      const data = output.data as Record<string, unknown> | undefined;
      if (!data) continue;
      for (const mime of ["text/plain", "text/markdown", "text/html"]) {
        const value = data[mime];
        if (typeof value === "string") data[mime] = unroot(value);
        else if (Array.isArray(value)) data[mime] = unroot(value.join(""));
      }
      if (typeof data["image/png"] === "string") {
        data["image/png"] = downscalePng((data["image/png"] as string).replace(/\s/g, ""));
      }
    }
  }
  return notebook;
}

/**
 * Why a committed notebook's outputs cannot stand, or undefined when they can: a notebook
 * without outputs is fine; one with outputs must carry `metadata.text_as_image` (written by
 * `--save`) whose `results_sha256` equals the SHA-256 of that results file now (`root`: the
 * folder the recorded path is relative to, default the project).
 */
export async function savedOutputProblem(
  notebook: Notebook,
  name: string,
  root: string = projectRoot,
): Promise<string | undefined> {
  if (!hasOutputs(notebook)) return undefined;
  const saved = notebook.metadata.text_as_image as Partial<SavedMetadata> | undefined;
  if (!saved?.results || !saved.results_sha256) {
    return `${name} has outputs but no record of the results they show (metadata.text_as_image): ` +
      `save outputs only with \`${SAVE_COMMAND}\`, or clear them`;
  }
  const path = resolve(root, saved.results);
  if (!existsSync(path)) {
    return `${name}: its outputs show ${saved.results}, which is not committed any more; run ` +
      `\`${SAVE_COMMAND}\` again (or clear the outputs)`;
  }
  const now = await sha256File(path);
  if (now !== saved.results_sha256) {
    return `${name}: its outputs were made from an older ${saved.results} (SHA-256 ` +
      `${saved.results_sha256.slice(0, 12)}…, the committed file is ${now.slice(0, 12)}…): ` +
      `run \`${SAVE_COMMAND}\` to save them again from the committed results`;
  }
  const recorded = new Map((saved.also ?? []).map((a) => [a.results, a.results_sha256]));
  for (const other of await readsHashes(declaredReads(notebook), root)) {
    if (!recorded.has(other.results)) {
      return `${name} shows ${other.results} but its outputs record no hash of it: run ` +
        `\`${SAVE_COMMAND}\` again`;
    }
    if (recorded.get(other.results) !== other.results_sha256) {
      return `${name}: its outputs were made when ${other.results} ${
        recorded.get(other.results) === null ? "did not exist" : "was different"
      }; run \`${SAVE_COMMAND}\` to save them again`;
    }
  }
  return undefined;
}

/** Total size in bytes of the figures (`image/svg+xml`, `image/png`) of a notebook's outputs. */
export function figureBytes(notebook: Notebook): number {
  let bytes = 0;
  for (const cell of notebook.cells) {
    for (const output of cell.outputs ?? []) {
      for (const mime of ["image/svg+xml", "image/png"]) {
        const value = output.data?.[mime];
        if (typeof value === "string") bytes += value.length;
        else if (Array.isArray(value)) bytes += value.join("").length;
      }
    }
  }
  return bytes;
}

/**
 * Converts an executed notebook to HTML with nbconvert (`python3 -m nbconvert --to html`,
 * Debian's python3-nbconvert) into `outDir`; returns the HTML's path, its text and how many
 * figures (`<svg` or `<img` elements) it holds.
 */
export async function notebookToHtml(
  path: string,
  outDir: string,
): Promise<{ path: string; html: string; figures: number }> {
  await Deno.mkdir(outDir, { recursive: true });
  const result = await new Deno.Command(jupyterPython, {
    args: ["-m", "nbconvert", "--to", "html", "--output-dir", outDir, path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new Error(
      `nbconvert failed on ${path} (install Debian's python3-nbconvert):\n` +
        new TextDecoder().decode(result.stderr).slice(-2000),
    );
  }
  const html = join(outDir, basename(path, ".ipynb") + ".html");
  const text = await Deno.readTextFile(html);
  const figures = (text.match(/<svg[\s>]|<img[\s>]/g) ?? []).length;
  return { path: html, html: text, figures };
}

/** A notebook's code cells as one TypeScript module, with a map back to cells. */
export interface ExtractedCode {
  /** The module text: the code cells in order, each after a `// cell N` line. */
  code: string;
  /** For each line of `code` (0-based), the cell index it came from, or -1. */
  lineCell: number[];
  /** For each line of `code`, the line number inside its cell (1-based), or 0. */
  lineInCell: number[];
}

/**
 * Turns a notebook's code cells into one TypeScript module for `deno check`. Cells share one
 * scope in the kernel, as declarations in one module do. A cell's trailing bare expression
 * (shown as its result) is valid TypeScript as is.
 */
export function notebookToTypeScript(notebook: Notebook): ExtractedCode {
  const lines: string[] = [];
  const lineCell: number[] = [];
  const lineInCell: number[] = [];
  notebook.cells.forEach((cell, index) => {
    if (cell.cell_type !== "code") return;
    lines.push(`// cell ${index}`);
    lineCell.push(-1);
    lineInCell.push(0);
    cellSource(cell).split("\n").forEach((line, i) => {
      lines.push(line);
      lineCell.push(index);
      lineInCell.push(i + 1);
    });
  });
  lines.push("export {};");
  lineCell.push(-1);
  lineInCell.push(0);
  return { code: lines.join("\n") + "\n", lineCell, lineInCell };
}

/**
 * Type-checks the code cells of `paths` with `deno check` (the project's `deno.json`
 * applies). Each notebook's cells are written to a temporary module beside it (so relative
 * imports resolve), checked together, and removed. Errors are reported as
 * `notebooks/NAME.ipynb cell C line L`. Returns true when all pass.
 */
export async function checkNotebooks(paths: string[]): Promise<boolean> {
  const temporary = new Map<string, { notebook: string; extracted: ExtractedCode }>();
  try {
    for (const path of paths) {
      const extracted = notebookToTypeScript(await readNotebook(path));
      const file = join(
        path.slice(0, path.length - basename(path).length),
        `.check_${basename(path, ".ipynb")}_${Deno.pid}.ts`,
      );
      await Deno.writeTextFile(file, extracted.code);
      temporary.set(file, { notebook: path, extracted });
    }
    if (temporary.size === 0) return true;
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["check", ...temporary.keys()],
      cwd: projectRoot,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    let text = new TextDecoder().decode(result.stderr) + new TextDecoder().decode(result.stdout);
    for (const [file, { notebook, extracted }] of temporary) {
      const url = `file://${file}`;
      text = text.replaceAll(new RegExp(`${escapeRegExp(url)}:(\\d+):(\\d+)`, "g"), (_, l, c) => {
        const line = Number(l) - 1;
        const cell = extracted.lineCell[line];
        const where = relative(projectRoot, notebook);
        return cell >= 0
          ? `${where} cell ${cell} line ${extracted.lineInCell[line]}:${c}`
          : `${where} (generated line ${l})`;
      });
    }
    text = text.split("\n").filter((line) => !/^Check\s/.test(line.trim())).join("\n");
    if (text.trim()) console.error(text.trim());
    return result.success;
  } finally {
    for (const file of temporary.keys()) await Deno.remove(file).catch(() => {});
  }
}

/**
 * Notebooks that `deno fmt` would change: each is formatted through standard input
 * (`deno fmt --ext ipynb -`) and compared byte for byte with the file. (`deno fmt --check`
 * flags every notebook with an empty diff, formatted or not, under Deno 2.9.6: like the
 * CSS/YAML/HTML case of denoland/deno#25840, its notebook formatter reports a change when
 * there is none. The task `check` leaves notebooks to this function.)
 */
export async function unformattedNotebooks(paths: string[]): Promise<string[]> {
  const unformatted: string[] = [];
  for (const path of paths) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["fmt", "--ext", "ipynb", "-"],
      cwd: projectRoot,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const text = await Deno.readFile(path);
    const writer = child.stdin.getWriter();
    await writer.write(text);
    await writer.close();
    const output = await child.output();
    if (!output.success) {
      throw new Error(`deno fmt of ${path}: ${new TextDecoder().decode(output.stderr)}`);
    }
    if (new TextDecoder().decode(output.stdout) !== new TextDecoder().decode(text)) {
      unformatted.push(relative(projectRoot, path));
    }
  }
  return unformatted;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

interface CliOptions {
  small: boolean;
  check: boolean;
  inPlace: boolean;
  keepGoing: boolean;
  echo: boolean;
  save: boolean;
  html: boolean;
  quiet: number;
  timeout: number | undefined;
  out: string | undefined;
  only: string[];
  paths: string[];
  params: Record<string, unknown>;
  run: string;
  results: string;
}

const USAGE =
  "use --small, --check, --save [--run NAME] [--results DIR], --html, --only NN[,NN], " +
  "--params JSON, --out DIR, --in-place, --echo, --quiet S, --timeout S, --keep-going, " +
  "or paths of .ipynb files";

function parseArgs(args: string[]): CliOptions {
  const options: CliOptions = {
    small: false,
    check: false,
    inPlace: false,
    keepGoing: false,
    echo: false,
    save: false,
    html: false,
    quiet: 1,
    timeout: undefined,
    out: undefined,
    only: [],
    paths: [],
    params: {},
    run: SAVED_RUN,
    results: join(projectRoot, "results"),
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      if (i + 1 >= args.length) throw new Error(`${arg} needs a value`);
      return args[++i];
    };
    if (arg === "--small") options.small = true;
    else if (arg === "--check") options.check = true;
    else if (arg === "--in-place") options.inPlace = true;
    else if (arg === "--keep-going") options.keepGoing = true;
    else if (arg === "--echo") options.echo = true;
    else if (arg === "--save") options.save = true;
    else if (arg === "--html") options.html = true;
    else if (arg === "--quiet") options.quiet = Number(value());
    else if (arg === "--timeout") options.timeout = Number(value());
    else if (arg === "--out") options.out = value();
    else if (arg === "--only") options.only.push(...value().split(","));
    else if (arg === "--params") options.params = JSON.parse(value());
    else if (arg === "--run") options.run = value();
    else if (arg === "--results") options.results = resolve(value());
    else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      Deno.exit(0);
    } else if (!arg.startsWith("-") && arg.endsWith(".ipynb")) options.paths.push(resolve(arg));
    else throw new Error(`unknown argument ${arg}; ${USAGE}`);
  }
  return options;
}

/** Checks that `path`'s HTML export (nbconvert) shows as many figures as its outputs hold. */
async function htmlCheck(path: string, outDir: string): Promise<string> {
  const notebook = await readNotebook(path);
  const expected =
    notebook.cells.flatMap((cell) => cell.outputs ?? []).filter((output) =>
      output.data !== undefined && ("image/svg+xml" in output.data || "image/png" in output.data)
    ).length;
  const { path: html, figures } = await notebookToHtml(path, outDir);
  if (expected === 0) return "";
  if (figures < expected) {
    return `${relative(projectRoot, html)} shows ${figures} figures of ${expected} (<svg or <img)`;
  }
  console.error(`${basename(html)}: ${figures} figure elements for ${expected} figure outputs`);
  return "";
}

async function main(): Promise<number> {
  const options = parseArgs(Deno.args);
  let paths = options.paths.length > 0 ? options.paths : notebookPaths();
  if (options.only.length > 0) {
    paths = paths.filter((path) => options.only.some((key) => basename(path).startsWith(key)));
  }
  if (paths.length === 0) {
    console.error("no notebooks selected");
    return 1;
  }
  if (options.check) {
    const ok = await checkNotebooks(paths);
    console.error(ok ? `type-checked ${paths.length} notebooks: ok` : "notebook type errors");
    const unformatted = await unformattedNotebooks(paths);
    if (unformatted.length) {
      console.error(`not formatted (run \`deno fmt ${unformatted.join(" ")}\`)`);
    }
    return ok && unformatted.length === 0 ? 0 : 1;
  }
  const parameters = { ...(options.small ? SMALL_PARAMETERS : {}), ...options.params };
  let metrics: string | undefined;
  let metricsHash: string | undefined;
  if (options.save) {
    if ((options.small || Object.keys(options.params).length > 0) && !options.out) {
      console.error(
        "--save writes notebooks/ with outputs of the committed results: it takes the " +
          "notebooks' own parameters (give --out DIR to try --small or --params)",
      );
      return 2;
    }
    metrics = join(options.results, options.run, "metrics.json");
    if (!existsSync(metrics)) {
      console.error(`--save: ${metrics} does not exist; make the run first`);
      return 1;
    }
    metricsHash = await sha256File(metrics);
    console.error(`saving outputs made from ${metrics} (SHA-256 ${metricsHash.slice(0, 12)}…)`);
  }
  const inPlace = options.inPlace || (options.save && !options.out);
  const outDir = options.out ?? join(dataDir(), "notebooks");
  const timeout = options.timeout ?? (options.small ? 1800 : 3 * 3600);
  const failures: string[] = [];
  let savedBytes = 0;
  for (const path of paths) {
    const name = basename(path);
    const output = inPlace ? path : join(outDir, name);
    const executed = options.save && inPlace ? join(outDir, name) : output;
    await Deno.mkdir(dirname(executed), { recursive: true });
    const started = performance.now();
    const result = await executeNotebook(path, {
      output: executed,
      parameters,
      quiet: options.quiet,
      echo: options.echo,
      notebookTimeout: timeout,
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    if (result.interrupted && result.interrupted !== "timeout") {
      console.error(`${name}: stopped by ${result.interrupted}; its kernel was shut down`);
      return result.interrupted === "SIGTERM" ? 143 : 130;
    }
    let problem = result.ok
      ? ""
      : result.interrupted === "timeout"
      ? `ran past --timeout ${timeout} s`
      : "a cell failed";
    if (result.ok && result.notebook) {
      const missing = missingFigures(result.notebook);
      const figures = figureCells(result.notebook).length;
      if (missing.length > 0) problem = `figure cells ${missing.join(", ")} produced no figure`;
      else console.error(`${name}: ok in ${seconds} s, ${figures} figure cells with figures`);
    }
    if (!problem && options.save && result.notebook) {
      const also = await readsHashes(declaredReads(await readNotebook(path)));
      if (await sha256File(metrics!) !== metricsHash) {
        console.error(`${metrics} changed while the notebooks ran: run --save again`);
        return 1;
      }
      const saved = saveNotebook(result.notebook, {
        results: relative(projectRoot, metrics!),
        results_sha256: metricsHash!,
        saved_with: SAVE_COMMAND,
        ...(also.length ? { also } : {}),
      });
      const text = JSON.stringify(saved, null, 1) + "\n";
      await Deno.writeTextFile(output, text);
      savedBytes += text.length;
      console.error(
        `${name}: saved to ${relative(Deno.cwd(), output)} (${(text.length / 1024).toFixed(0)} ` +
          `KiB, figures ${(figureBytes(saved) / 1024).toFixed(0)} KiB)`,
      );
    }
    if (!problem && options.html) {
      problem = await htmlCheck(output, join(outDir, "html"));
    }
    if (problem) {
      console.error(`${name}: FAILED after ${seconds} s: ${problem} (see ${executed})`);
      failures.push(name);
      if (!options.keepGoing) break;
    }
  }
  if (failures.length > 0) {
    console.error(`notebooks failed: ${failures.join(", ")}`);
    return 1;
  }
  if (options.save) {
    console.error(
      `saved ${paths.length} notebooks with outputs, ${(savedBytes / 1024).toFixed(0)} KiB in all`,
    );
  }
  console.error(
    `all ${paths.length} notebooks ran; executed copies in ${inPlace ? notebooksDir : outDir}`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
