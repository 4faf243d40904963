/**
 * Runs the benchmarks in `bench/` one after another (never in parallel: they time things),
 * passing on each one's output as it runs, then prints a table of every bench: its status and
 * each of its targets with whether it was met. Each bench runs its reference tool
 * (scikit-learn, PyTorch, …) side by side itself.
 *
 *     deno task bench                      # every bench (tens of minutes on two cores)
 *     deno task bench data tsne            # only these
 *     deno task bench --dir DIR [NAME …]   # the benches (*.ts) of another folder
 *
 * A bench fails when it exits non-zero, when the last line of its standard output is not its
 * JSON line (`{"bench", "figures", "targets"}`, each target `{value, target, met}`), or when
 * that line holds a null (a figure or target that was not measured: a reference tool that did
 * not run must fail its bench, not turn into null). A failed bench is marked so in the table
 * (with any targets it did report) and makes this tool exit 1 once every bench has run; a
 * missed target is reported (`no`), not fatal.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { projectRoot } from "../lib/config.ts";

/** One target of a bench line. */
export interface BenchTarget {
  value: number | string | null;
  target: string;
  met: boolean;
}

/** The closing line every bench prints. */
export interface BenchLine {
  bench: string;
  figures: Record<string, unknown>;
  targets: Record<string, BenchTarget>;
}

/** What became of one bench. */
export interface BenchResult {
  /** File name without `.ts`. */
  name: string;
  /** Why the bench failed; absent when it ran and reported. */
  failure?: string;
  /** Its JSON line, when it printed a valid one (also for some failed benches). */
  line?: BenchLine;
}

const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

/** Paths (`figures.a`, `targets.b.value`, …) of every null or non-finite number in `x`. */
function nullPaths(x: unknown, path: string): string[] {
  if (x === null || (typeof x === "number" && !Number.isFinite(x))) return [path];
  if (Array.isArray(x)) return x.flatMap((v, i) => nullPaths(v, `${path}[${i}]`));
  if (isRecord(x)) return Object.entries(x).flatMap(([k, v]) => nullPaths(v, `${path}.${k}`));
  return [];
}

/**
 * Reads a bench's standard output: its last non-empty line must be its JSON line. Returns the
 * line, and a failure when there is none, it is malformed, or it holds nulls.
 */
export function readBenchOutput(stdout: string): { line?: BenchLine; failure?: string } {
  const last = stdout.trim().split("\n").at(-1)?.trim() ?? "";
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    return { failure: "no JSON line at the end of its output" };
  }
  if (!isRecord(parsed)) return { failure: "no JSON line at the end of its output" };
  const problems: string[] = [];
  if (typeof parsed.bench !== "string") problems.push(`"bench" is not a string`);
  if (!isRecord(parsed.figures)) problems.push(`"figures" is not an object`);
  if (!isRecord(parsed.targets)) problems.push(`"targets" is not an object`);
  else {
    for (const [name, t] of Object.entries(parsed.targets)) {
      if (!isRecord(t) || typeof t.met !== "boolean" || typeof t.target !== "string") {
        problems.push(`target "${name}" is not {value, target, met}`);
      }
    }
  }
  if (problems.length > 0) return { failure: `malformed JSON line: ${problems.join("; ")}` };
  const line = parsed as unknown as BenchLine;
  const nulls = [...nullPaths(line.figures, "figures"), ...nullPaths(line.targets, "targets")];
  if (nulls.length > 0) {
    const shown = nulls.slice(0, 5).join(", ") + (nulls.length > 5 ? ", …" : "");
    return { line, failure: `not measured (null): ${shown}` };
  }
  return { line };
}

/** Names (file names without `.ts`) of the benches in `dir`, sorted. */
export function benchNames(dir: string): string[] {
  return [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith(".ts"))
    .map((e) => e.name.replace(/\.ts$/, ""))
    .sort();
}

/** Runs `dir/name.ts`, passing its output on, and judges it. */
export async function runBench(dir: string, name: string): Promise<BenchResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(dir, `${name}.ts`)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const chunks: Uint8Array[] = [];
  for await (const chunk of child.stdout) {
    chunks.push(chunk);
    for (let written = 0; written < chunk.length;) {
      written += await Deno.stdout.write(chunk.subarray(written));
    }
  }
  const status = await child.status;
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
  const stdout = new TextDecoder().decode(bytes);
  const { line, failure } = readBenchOutput(stdout);
  if (!status.success) {
    const how = status.signal ? `killed by ${status.signal}` : `exit code ${status.code}`;
    return { name, line, failure: failure ? `${how}; ${failure}` : how };
  }
  return { name, line, failure };
}

/** The results as a Markdown table, then a summary line. */
export function formatResults(results: BenchResult[]): string {
  const rows = ["| bench | status | target | value | goal | met |", "|---|---|---|---|---|---|"];
  let unmet = 0;
  for (const r of results) {
    const status = r.failure ? `FAILED (${r.failure.replaceAll("|", "\\|")})` : "ok";
    const targets = Object.entries(r.line?.targets ?? {});
    if (targets.length === 0) rows.push(`| ${r.name} | ${status} | — | — | — | — |`);
    for (const [target, t] of targets) {
      const value = typeof t.value === "number" && Number.isFinite(t.value)
        ? Number(t.value.toPrecision(4))
        : t.value;
      if (!t.met) unmet++;
      rows.push(
        `| ${r.name} | ${status} | ${target} | ${value} | ${t.target} | ${t.met ? "yes" : "no"} |`,
      );
    }
  }
  const failed = results.filter((r) => r.failure);
  rows.push(
    "",
    `${results.length} bench(es): ${results.length - failed.length} ran, ${failed.length} ` +
      `failed${failed.length ? ` (${failed.map((r) => r.name).join(", ")})` : ""}; ${unmet} ` +
      `target(s) not met`,
  );
  return rows.join("\n");
}

/** Runs the benches named by `args` (all without names); returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let dir = join(projectRoot, "bench");
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--dir" || args[i].startsWith("--dir=")) {
      const value = args[i] === "--dir" ? args[++i] : args[i].slice("--dir=".length);
      if (!value) {
        console.error("--dir needs a folder");
        return 2;
      }
      dir = resolve(value);
    } else if (args[i] === "--help" || args[i] === "-h") {
      console.log("Usage: deno run -A tools/bench.ts [--dir DIR] [NAME …]");
      return 0;
    } else names.push(args[i]);
  }
  const all = benchNames(dir);
  const chosen = names.length > 0 ? names : all;
  for (const name of chosen) {
    if (!all.includes(name)) {
      console.error(`No bench "${name}" in ${dir}; there are: ${all.join(", ")}`);
      return 2;
    }
  }
  const results: BenchResult[] = [];
  for (const name of chosen) {
    console.error(`\n=== ${join(dir, `${name}.ts`)}`);
    const result = await runBench(dir, name);
    if (result.failure) console.error(`bench ${name} FAILED: ${result.failure}`);
    results.push(result);
  }
  console.log(`\n${formatResults(results)}`);
  return results.some((r) => r.failure) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
