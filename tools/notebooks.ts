/**
 * Runs the notebooks headless, in order, in the Deno Jupyter kernel, through
 * `tools/run_notebook.py` (which keeps outputs the kernel publishes after reporting idle and
 * fails on any cell error), then checks that every figure cell (cell tag `figure`) produced
 * its figure (an `image/svg+xml` or `image/png` output). With `--check` it type-checks the
 * notebooks' code cells instead of running them.
 *
 *     deno task notebooks                      # all notebooks, their own parameters
 *     deno task notebooks --small              # the CI parameter set (minutes)
 *     deno task notebooks --only 03 --params '{"overrides": {"image": {"pixels": 32}}}'
 *     deno run -A tools/notebooks.ts --check   # type-check code cells (no kernel)
 *
 * Options: `--out DIR` (executed copies; default `data/notebooks/`, the committed notebooks
 * stay clean), `--in-place` (write outputs into `notebooks/` itself), `--echo` (echo cells'
 * output), `--quiet S` (seconds of silence after idle, default 1), `--keep-going`.
 *
 * Needs `/usr/bin/python3` with Debian's python3-jupyter-client and python3-nbformat
 * (override the interpreter with `JUPYTER_PYTHON`) and the kernel (`deno jupyter --install`).
 *
 * @module
 */
import { basename, join, relative } from "node:path";
import { existsSync } from "node:fs";
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
 * small images. Notebooks 3, 5, 6 and 7 take the experiment as `config` and `overrides`
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
  /** Echo the cells' stdout/stderr. */
  echo?: boolean;
}

/** Result of {@link executeNotebook}. */
export interface ExecuteResult {
  /** True when every cell ran without error. */
  ok: boolean;
  /** The runner's log (cells, timings, the failing cell's error). */
  log: string;
  /** The executed notebook (read back from `output`), if it was written. */
  notebook?: Notebook;
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
  let child;
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
  // Relay the runner's log live while keeping a copy.
  const decoder = new TextDecoder();
  let log = "";
  const reader = child.stderr.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const text = decoder.decode(value, { stream: true });
    log += text;
    await Deno.stderr.write(value);
  }
  const status = await child.status;
  if (!options.echo) await child.stdout?.cancel();
  const notebook = existsSync(options.output) ? await readNotebook(options.output) : undefined;
  return { ok: status.success, log, notebook };
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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

interface CliOptions {
  small: boolean;
  check: boolean;
  inPlace: boolean;
  keepGoing: boolean;
  echo: boolean;
  quiet: number;
  out: string;
  only: string[];
  params: Record<string, unknown>;
}

function parseArgs(args: string[]): CliOptions {
  const options: CliOptions = {
    small: false,
    check: false,
    inPlace: false,
    keepGoing: false,
    echo: false,
    quiet: 1,
    out: join(dataDir(), "notebooks"),
    only: [],
    params: {},
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
    else if (arg === "--quiet") options.quiet = Number(value());
    else if (arg === "--out") options.out = value();
    else if (arg === "--only") options.only.push(...value().split(","));
    else if (arg === "--params") options.params = JSON.parse(value());
    else {
      throw new Error(
        `unknown argument ${arg}; use --small, --check, --only NN[,NN], --params JSON, ` +
          "--out DIR, --in-place, --echo, --quiet S, --keep-going",
      );
    }
  }
  return options;
}

async function main(): Promise<number> {
  const options = parseArgs(Deno.args);
  let paths = notebookPaths();
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
    return ok ? 0 : 1;
  }
  const parameters = { ...(options.small ? SMALL_PARAMETERS : {}), ...options.params };
  const failures: string[] = [];
  for (const path of paths) {
    const name = basename(path);
    const output = options.inPlace ? path : join(options.out, name);
    await Deno.mkdir(options.inPlace ? notebooksDir : options.out, { recursive: true });
    const started = performance.now();
    const result = await executeNotebook(path, {
      output,
      parameters,
      quiet: options.quiet,
      echo: options.echo,
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    let problem = result.ok ? "" : "a cell failed";
    if (result.ok && result.notebook) {
      const missing = missingFigures(result.notebook);
      const figures = figureCells(result.notebook).length;
      if (missing.length > 0) problem = `figure cells ${missing.join(", ")} produced no figure`;
      else console.error(`${name}: ok in ${seconds} s, ${figures} figure cells with figures`);
    }
    if (problem) {
      console.error(`${name}: FAILED after ${seconds} s: ${problem} (see ${output})`);
      failures.push(name);
      if (!options.keepGoing) break;
    }
  }
  if (failures.length > 0) {
    console.error(`notebooks failed: ${failures.join(", ")}`);
    return 1;
  }
  console.error(
    `all ${paths.length} notebooks ran; executed copies in ${
      options.inPlace ? notebooksDir : options.out
    }`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
