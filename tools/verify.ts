/**
 * Recomputes models of a committed run from nothing and compares every metric with its
 * `metrics.json`:
 *
 *     deno task verify --run use-lite-5k --models darknet_reference
 *
 * Flags: `--run NAME` (required), `--models a,b` (model ids; default all), `--tolerance X`
 * (largest accepted |Δ| of a metric, default 0.001), `--results DIR` (default `results/`),
 * `--keep` (keep the scratch cache folder), `--scratch DIR` (use and keep this cache folder
 * instead of a new temporary one: a new folder, or one that only earlier verify calls
 * wrote, so that several models can be checked in turn without recomputing the embeddings).
 * Exit status: 0 all within tolerance, 1 some differ, 2 usage error.
 *
 * @module
 */
import { join } from "node:path";
import { projectRoot } from "../lib/config.ts";
import { verifyRun } from "../lib/experiment/verify.ts";
import { formatSeconds } from "../lib/experiment/report.ts";

const FLAGS = new Set(["run", "models", "tolerance", "results", "keep", "scratch", "help"]);

function parse(args: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : undefined;
    if (!name || !FLAGS.has(name)) throw new Error(`unknown argument ${args[i]} (see --help)`);
    if (name === "keep" || name === "help") out[name] = "true";
    else if (args[i + 1] === undefined) throw new Error(`--${name} needs a value`);
    else out[name] = args[++i];
  }
  return out;
}

async function main(): Promise<number> {
  let flags: Record<string, string>;
  try {
    flags = parse(Deno.args);
    if (flags.help) {
      console.log(
        "deno task verify --run NAME [--models a,b] [--tolerance 0.001] [--results DIR] [--keep]",
      );
      return 0;
    }
    if (!flags.run) throw new Error("--run NAME is required (a folder of results/)");
  } catch (e) {
    console.error(`verify: ${(e as Error).message}`);
    return 2;
  }
  const tolerance = Number(flags.tolerance ?? 0.001);
  const scratch = flags.scratch ?? await Deno.makeTempDir({ prefix: "verify-" });
  if (flags.scratch) {
    await Deno.mkdir(scratch, { recursive: true });
    const entries = [...Deno.readDirSync(scratch)].map((e) => e.name);
    const marker = `${scratch}/.verify-scratch`;
    if (entries.length > 0 && !entries.includes(".verify-scratch")) {
      console.error(`verify: ${scratch} holds files not written by verify; give a new folder`);
      return 2;
    }
    await Deno.writeTextFile(marker, "caches written only by deno task verify\n");
    flags.keep = "true";
  }
  const started = performance.now();
  try {
    const { recomputed, comparison } = await verifyRun(flags.run, {
      models: flags.models?.split(","),
      tolerance,
      resultsDir: flags.results ?? join(projectRoot, "results"),
      scratch,
    });
    const models = [...new Set(recomputed.variants.flatMap((v) => v.models.map((m) => m.id)))];
    console.log(
      `recomputed ${models.join(", ")} of ${flags.run} from nothing in ` +
        `${
          formatSeconds((performance.now() - started) / 1000)
        } (code ${recomputed.environment.code}): ` +
        `${comparison.compared} metrics compared, largest |Δ| ${
          comparison.maxDifference.toExponential(2)
        }, ` +
        `${comparison.differences.length} beyond the tolerance ${tolerance}.`,
    );
    for (const d of comparison.differences) {
      console.log(
        `  ${d.variant ? `[${d.variant}] ` : ""}${d.model} seed ${d.seed ?? "–"} ${d.metric}: ` +
          `committed ${d.committed ?? "missing"}, recomputed ${d.recomputed ?? "missing"}`,
      );
    }
    return comparison.differences.length ? 1 : 0;
  } catch (e) {
    console.error(`verify failed: ${(e as Error).message}`);
    return 2;
  } finally {
    if (!flags.keep) await Deno.remove(scratch, { recursive: true }).catch(() => {});
    else console.error(`scratch caches kept in ${scratch}`);
  }
}

Deno.exit(await main());
