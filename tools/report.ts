/**
 * Renders a results folder's `report.md` and result figures again from its `metrics.json`
 * with this code's report, recomputing nothing (e.g. after a fix to the report's wording):
 *
 *     deno task report --run use-lite-5k [--results DIR]
 *
 * @module
 */
import { join } from "node:path";
import { projectRoot } from "../lib/config.ts";
import { codeVersion, renderReport } from "../lib/experiment/mod.ts";

const args = Deno.args;
const at = (flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const known = new Set(["--run", "--results"]);
const bad = args.filter((a, i) => a.startsWith("--") ? !known.has(a) : !known.has(args[i - 1]));
const run = at("--run");
if (bad.length || !run) {
  console.error(
    `report: ${bad.length ? `unknown argument ${bad[0]}` : "--run NAME is required"}; usage: ` +
      "deno task report --run NAME [--results DIR]",
  );
  Deno.exit(2);
}
try {
  const dir = join(at("--results") ?? join(projectRoot, "results"), run);
  await renderReport(dir, await codeVersion());
  console.log(`rendered ${join(dir, "report.md")}`);
} catch (e) {
  console.error(`report failed: ${(e as Error).message}`);
  Deno.exit(1);
}
