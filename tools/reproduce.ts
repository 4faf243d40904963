/**
 * The main job: runs an experiment config (every stage cached and resumable) and writes
 * `results/<run-name>/`: the config, `metrics.json`, the figures and `report.md`. Run
 * `deno task reproduce --help` for the flags and the shipped configs.
 *
 * @module
 */
import { isAbsolute, join, relative, resolve } from "node:path";
import { projectRoot } from "../lib/config.ts";
import {
  ConfigError,
  configPath,
  formatInspection,
  formatResultsTable,
  inspectExperiment,
  loadExperimentConfig,
  runExperiment,
  shippedConfigs,
  writeResults,
} from "../lib/experiment/mod.ts";
import type { ConfigOverrides, ExperimentResults, ResolvedConfig } from "../lib/experiment/mod.ts";
import { portablePath, setField } from "../lib/experiment/mod.ts";
import { nearest } from "../lib/experiment/schema.ts";

/** A command-line flag: its value's name (none: a switch) and what it does. */
interface Flag {
  value?: string;
  help: string;
  apply?: (overrides: ConfigOverrides, value: string) => ConfigOverrides;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`--${flag} needs a positive integer, got "${value}"`);
  }
  return n;
}

function list(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter(Boolean);
}

const FLAGS: Record<string, Flag> = {
  config: {
    value: "NAME|FILE",
    help: "config to run: a shipped name (below) or a JSON file (default quick)",
  },
  name: {
    value: "NAME",
    help: "run name (results/<NAME>/, cache folder)",
    apply: (o, v) => setField(o, "name", v),
  },
  train: {
    value: "N",
    help: "training reviews",
    apply: (o, v) => setField(o, "data.trainSize", positiveInt("train", v)),
  },
  test: {
    value: "N",
    help: "test reviews",
    apply: (o, v) => setField(o, "data.testSize", positiveInt("test", v)),
  },
  epochs: {
    value: "E",
    help: "maximum epochs of the image models",
    apply: (o, v) => setField(o, "models.training.epochs", positiveInt("epochs", v)),
  },
  seeds: {
    value: "S1,S2,…",
    help: "seeds (every trained model runs once per seed)",
    apply: (o, v) => setField(o, "seeds", list(v).map((s) => Number(s))),
  },
  backbones: {
    value: "A,B",
    help: "backbones (registry names)",
    apply: (o, v) => setField(o, "models.backbones", list(v)),
  },
  workers: {
    value: "N",
    help: "jobs at once (one per core)",
    apply: (o, v) => setField(o, "models.workers", positiveInt("workers", v)),
  },
  upsample: {
    value: "N",
    help: "nearest upsampling before the backbone",
    apply: (o, v) => setField(o, "models.upsample", positiveInt("upsample", v)),
  },
  set: {
    value: "PATH=VALUE",
    help:
      "set any config field, e.g. --set image.discretization=lsa (VALUE read as JSON, else text); repeatable",
    apply: (o, v) => {
      const i = v.indexOf("=");
      if (i <= 0) throw new Error(`--set needs PATH=VALUE, got "${v}"`);
      let value: unknown = v.slice(i + 1);
      try {
        value = JSON.parse(value as string);
      } catch {
        // plain text
      }
      return setField(o, v.slice(0, i), value);
    },
  },
  out: { value: "DIR", help: "folder for results/<name>/ (default results/)" },
  plan: {
    help: "print the resolved config and the plan (jobs, cache hits, time estimate); train nothing",
  },
  only: {
    value: "JOB,…",
    help: "run only these jobs (names as --plan prints them), store their results, write no report",
  },
  collect: {
    help:
      "train nothing: write the results folder from finished jobs (an error lists missing ones)",
  },
  help: { help: "this text" },
};

function usage(): string {
  const width = Math.max(
    ...Object.entries(FLAGS).map(([n, f]) => n.length + (f.value?.length ?? 0)),
  );
  return [
    "deno task reproduce [flags]: run an experiment config and write results/<name>/.",
    "",
    "Flags:",
    ...Object.entries(FLAGS).map(([name, f]) => {
      const left = `--${name}${f.value ? ` ${f.value}` : ""}`;
      return `  ${left.padEnd(width + 4)} ${f.help}`;
    }),
    "",
    "Shipped configs (tools/configs/):",
    ...shippedConfigs().map((name) => {
      let line = "";
      try {
        line = JSON.parse(Deno.readTextFileSync(configPath(name))).description ?? "";
      } catch {
        line = "(unreadable)";
      }
      return `  ${name.padEnd(20)} ${line}`;
    }),
    "",
    "Ctrl-C stops between stages and batches; finished work stays cached and the same command resumes it.",
  ].join("\n");
}

/** Parsed command line. */
interface Command {
  config: string;
  overrides: ConfigOverrides;
  switches: Set<string>;
  out?: string;
  only?: string[];
}

function parseArgs(args: string[]): Command {
  const command: Command = { config: "quick", overrides: {}, switches: new Set() };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const name = arg.startsWith("--") ? arg.slice(2).split("=")[0] : undefined;
    const flag = name !== undefined ? FLAGS[name] : undefined;
    if (!flag) {
      const near = name !== undefined ? nearest(name, Object.keys(FLAGS)) : undefined;
      throw new Error(
        `unknown ${name !== undefined ? `flag ${arg}` : `argument "${arg}"`}` +
          (near ? `; did you mean --${near}?` : "") + ` (see --help)`,
      );
    }
    if (!flag.value) {
      command.switches.add(name!);
      continue;
    }
    const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[++i];
    if (value === undefined) throw new Error(`--${name} needs a value (${flag.value})`);
    if (name === "config") command.config = value;
    else if (name === "out") command.out = value;
    else if (name === "only") command.only = list(value);
    else command.overrides = flag.apply!(command.overrides, value);
  }
  return command;
}

async function main(): Promise<number> {
  let command: Command, cfg: ResolvedConfig;
  try {
    command = parseArgs(Deno.args);
    if (command.switches.has("help")) {
      console.log(usage());
      return 0;
    }
    cfg = await loadExperimentConfig(command.config, command.overrides);
  } catch (e) {
    console.error(`reproduce: ${e instanceof ConfigError ? e.message : (e as Error).message}`);
    return 2;
  }
  if (command.switches.has("plan")) {
    const { cacheDir: _c, ...shown } = cfg;
    console.log(JSON.stringify(shown, null, 2));
    const inspection = await inspectExperiment(cfg);
    console.log(formatInspection(inspection));
    return inspection.problems.some((p) => p.includes("cannot run")) ? 1 : 0;
  }
  const outDir = resolve(command.out ?? join(projectRoot, "results"), cfg.name);
  // The command as the report shows it: no machine's absolute paths.
  const line = `deno task reproduce ${
    Deno.args.map((a) => (isAbsolute(a) ? portablePath(a) : a)).join(" ")
  }`.trim();
  console.error(`experiment "${cfg.name}" (config ${cfg.origin}), seeds ${cfg.seeds.join(", ")}`);
  const controller = new AbortController();
  Deno.addSignalListener("SIGINT", () => {
    console.error("\ninterrupted: finished work stays cached; run the same command to resume");
    controller.abort();
  });
  let results: ExperimentResults;
  try {
    results = await runExperiment(cfg, {
      signal: controller.signal,
      only: command.only,
      collect: command.switches.has("collect"),
    });
  } catch (e) {
    if (controller.signal.aborted) return 130;
    console.error(`\nreproduce failed: ${(e as Error).message}`);
    return 1;
  }
  if (command.only) {
    console.error(`ran ${command.only.join(", ")}; assemble the results with --collect`);
    return 0;
  }
  results.command = line;
  await writeResults(results, cfg, outDir, line);
  for (const v of results.variants) {
    console.log(`${v.label ? `\n[${v.label}]\n` : ""}${formatResultsTable(v)}`);
  }
  console.log(`\nreport: ${relative(Deno.cwd(), join(outDir, "report.md"))}`);
  return 0;
}

Deno.exit(await main());
