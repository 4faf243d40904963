/**
 * Runs the benchmarks in `bench/` one after another (never in parallel: they time things)
 * and prints each one's closing JSON line, then a table of every target and whether it was
 * met. Each bench runs its reference tool (scikit-learn, PyTorch, …) side by side itself.
 *
 *     deno task bench               # every bench (tens of minutes on two cores)
 *     deno task bench data tsne     # only these
 *
 * Exits non-zero if a bench fails to run; missed targets are reported, not fatal.
 *
 * @module
 */
import { join } from "node:path";
import { projectRoot } from "../lib/config.ts";

/** The closing line every bench prints. */
interface BenchLine {
  bench: string;
  figures: Record<string, unknown>;
  targets: Record<string, { value: number; target: string; met: boolean }>;
}

const benchDir = join(projectRoot, "bench");
const all = [...Deno.readDirSync(benchDir)]
  .filter((e) => e.isFile && e.name.endsWith(".ts"))
  .map((e) => e.name.replace(/\.ts$/, ""))
  .sort();
const chosen = Deno.args.length > 0 ? Deno.args : all;
for (const name of chosen) {
  if (!all.includes(name)) throw new Error(`No bench "${name}"; there are: ${all.join(", ")}`);
}

const lines: BenchLine[] = [];
let failed = 0;
for (const name of chosen) {
  console.error(`\n=== bench/${name}.ts`);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(benchDir, `${name}.ts`)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const output = new TextDecoder().decode((await child.output()).stdout);
  console.log(output.trimEnd());
  const last = output.trim().split("\n").at(-1) ?? "";
  try {
    const line = JSON.parse(last) as BenchLine;
    if (line.bench && line.targets) lines.push(line);
    else throw new Error("not a bench line");
  } catch {
    failed++;
    console.error(`bench/${name}.ts did not end with its JSON line`);
  }
}

console.log("\n| bench | target | value | goal | met |\n|---|---|---|---|---|");
for (const line of lines) {
  for (const [target, t] of Object.entries(line.targets)) {
    const value = Number.isFinite(t.value) ? Number(t.value.toPrecision(4)) : t.value;
    console.log(`| ${line.bench} | ${target} | ${value} | ${t.target} | ${t.met ? "yes" : "no"} |`);
  }
}
Deno.exit(failed > 0 ? 1 : 0);
