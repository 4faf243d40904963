/**
 * Runs a study (`tools/configs/study/<name>.json`: arms of one experiment, questions answered
 * by paired comparisons across them) and writes `results/<name>/`: `report.md` (answers first),
 * `metrics.json`, the figures, copies of the study file and its base config, and `jobs/` (each
 * finished job's small result file, copied as its arm completes, so the study resumes on any
 * machine that has them). Resumable: finished jobs are read, not trained again.
 *
 *     deno task study                       # the shipped study (tools/configs/study/study.json)
 *     deno task study --config full         # the uncut design, for a larger machine
 *     deno task study --arms n2k,perm-D     # only these arms (stores their jobs; no report)
 *     deno task study --report              # rewrite report.md and figures from metrics.json
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { projectRoot } from "../lib/config.ts";
import { loadStudy, runStudy } from "../lib/experiment/study.ts";
import type { StudyResults } from "../lib/experiment/study.ts";
import { writeStudyResults } from "../lib/experiment/study_report.ts";
import { writeAtomic } from "../lib/integrity.ts";

const USAGE = `deno task study [--config NAME|FILE] [--arms A,B] [--out DIR] [--report]

  --config NAME|FILE  study file: a name under tools/configs/study/ (default study) or a path
  --arms A,B          run only these arms (their jobs are stored; no report is written)
  --out DIR           folder for results/<name>/ (default results/)
  --report            write report.md and figures again from <out>/<name>/metrics.json
  --help              this text`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string", default: "study" },
      arms: { type: "string" },
      out: { type: "string", default: join(projectRoot, "results") },
      report: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const study = await loadStudy(values.config);
  const dir = resolve(values.out, study.spec.name);
  if (values.report) {
    const results = JSON.parse(
      await Deno.readTextFile(join(dir, "metrics.json")),
    ) as StudyResults;
    await writeStudyResults(dir, results);
    console.log(`wrote ${join(dir, "report.md")} from ${join(dir, "metrics.json")}`);
    return;
  }
  const controller = new AbortController();
  const stop = () => {
    console.error("\nstopping after the current step (finished jobs stay cached) …");
    controller.abort();
  };
  Deno.addSignalListener("SIGINT", stop);
  const arms = values.arms?.split(",").map((s) => s.trim()).filter(Boolean);
  const results = await runStudy(study, { resultsDir: dir, arms, signal: controller.signal });
  Deno.removeSignalListener("SIGINT", stop);
  if (arms) {
    console.log(`arms ${arms.join(", ")} done; their jobs are in ${join(dir, "jobs")}`);
    return;
  }
  await writeStudyResults(dir, results);
  await writeAtomic(join(dir, basename(study.path)), await Deno.readFile(study.path));
  const base = resolve(dirname(study.path), study.spec.base);
  await writeAtomic(join(dir, basename(base)), await Deno.readFile(base));
  console.log(`wrote ${join(dir, "report.md")}`);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
