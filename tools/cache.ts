/**
 * Lists the caches under the data folder (`TEXT_AS_IMAGE_DATA`, default `data/`) and prunes
 * them by age, run, stage or total size; see `lib/experiment/cache.ts` for what each stage
 * holds and how runs and last uses are found.
 *
 *     deno task cache                                      # table of every cache and a total
 *     deno task cache --prune --older-than 30              # dry run: what would go
 *     deno task cache --prune --older-than 30 --yes        # deletes it
 *     deno task cache --prune --run warm-5k --yes          # a run's caches (shared ones it alone used)
 *     deno task cache --prune --stage features --max-size 5G --yes
 *
 * Exit status: 0 done (or dry run), 1 some deletion failed, 2 a usage error.
 *
 * @module
 */
import { dataDir } from "../lib/config.ts";
import {
  CACHE_STAGES,
  type CacheEntry,
  type CacheStage,
  formatBytes,
  knownRuns,
  listCaches,
  parseSize,
  planPrune,
  pruneCaches,
  type PruneCriteria,
} from "../lib/experiment/cache.ts";
import { nearest } from "../lib/experiment/schema.ts";

/** A command-line mistake: reported with exit status 2. */
class UsageError extends Error {}

/** The flags, with their value's name (none: a switch) and one line of help. */
const FLAGS: Record<string, { value?: string; help: string }> = {
  "help": { help: "print this help and exit" },
  "prune": { help: "select caches to delete by the flags below (a dry run unless --yes)" },
  "older-than": {
    value: "DAYS",
    help: "last used more than DAYS days ago (e.g. 30, 0.5)",
  },
  "run": {
    value: "NAME",
    help: "the run's own caches and the shared ones only it used (others' survive)",
  },
  "stage": {
    value: "STAGE",
    help: `only this stage: ${CACHE_STAGES.join(", ")}`,
  },
  "max-size": {
    value: "SIZE",
    help: "least recently used first, until what is left totals ≤ SIZE (5G, 500M)",
  },
  "yes": { help: "with --prune: really delete (without it nothing is deleted)" },
  "json": { help: "print the entries (or those --prune selects) as JSON, not a table" },
};

/** The help text. */
function usage(): string {
  return [
    "deno task cache [--prune CRITERIA [--yes]] [--json]",
    "",
    "Lists the caches under the data folder (TEXT_AS_IMAGE_DATA, default data/): stage, key,",
    "size, the runs that made or used each (from every run's uses.json) and its last use.",
    "With --prune, prints what the criteria select and its total, and deletes it with --yes.",
    "--stage and --run narrow what is considered (both: both must hold); --older-than and",
    "--max-size then choose within it (both: the old ones, then the least recently used until",
    'under the size). Stage "other" (model downloads, rates.json, …) is only pruned with',
    "--stage other.",
    "",
    ...Object.entries(FLAGS).map(([name, flag]) =>
      `  ${`--${name}${flag.value ? ` ${flag.value}` : ""}`.padEnd(20)} ${flag.help}`
    ),
    "",
    "Sizes use powers of 1024: 5G = 5 GiB. Exit status: 0 done or dry run, 1 a deletion",
    "failed, 2 a usage error.",
  ].join("\n");
}

/** The parsed command line. */
interface Command {
  help: boolean;
  prune: boolean;
  yes: boolean;
  json: boolean;
  criteria: Omit<PruneCriteria, "now">;
  /** The criteria as typed, for messages. */
  said: string[];
}

function parseDays(text: string): number {
  const days = Number(text.replace(/d(ays?)?$/i, ""));
  if (text.trim() === "" || !Number.isFinite(days) || days < 0) {
    throw new UsageError(`--older-than needs a number of days ≥ 0 (e.g. 30), not "${text}"`);
  }
  return days;
}

function parseStage(text: string): CacheStage {
  if ((CACHE_STAGES as readonly string[]).includes(text)) return text as CacheStage;
  const near = nearest(text, CACHE_STAGES);
  throw new UsageError(
    `unknown stage "${text}"${near ? `; did you mean ${near}?` : ""} ` +
      `(stages: ${CACHE_STAGES.join(", ")})`,
  );
}

/** Parses the arguments; throws {@link UsageError} on a mistake. */
function parseArgs(args: string[]): Command {
  const command: Command = {
    help: false,
    prune: false,
    yes: false,
    json: false,
    criteria: {},
    said: [],
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const name = arg.startsWith("--") ? arg.slice(2).split("=")[0] : undefined;
    const flag = name !== undefined ? FLAGS[name] : undefined;
    if (name === undefined || !flag) {
      const near = name !== undefined ? nearest(name, Object.keys(FLAGS)) : undefined;
      throw new UsageError(
        `unknown ${name !== undefined ? `flag ${arg}` : `argument "${arg}"`}` +
          (near ? `; did you mean --${near}?` : "") + " (see --help)",
      );
    }
    if (!flag.value) {
      if (arg.includes("=")) throw new UsageError(`--${name} takes no value (see --help)`);
      if (name === "help") command.help = true;
      else if (name === "prune") command.prune = true;
      else if (name === "yes") command.yes = true;
      else if (name === "json") command.json = true;
      continue;
    }
    const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[++i];
    if (value === undefined || (!arg.includes("=") && value.startsWith("--"))) {
      throw new UsageError(`--${name} needs a value: --${name} ${flag.value} (see --help)`);
    }
    command.said.push(`--${name} ${value}`);
    if (name === "older-than") command.criteria.olderThanDays = parseDays(value);
    else if (name === "run") command.criteria.run = value;
    else if (name === "stage") command.criteria.stage = parseStage(value);
    else if (name === "max-size") {
      try {
        command.criteria.keepBytes = parseSize(value);
      } catch (e) {
        throw new UsageError(`--max-size: ${(e as Error).message}`);
      }
    }
  }
  if (command.help) return command;
  if (!command.prune && command.said.length > 0) {
    throw new UsageError(
      `${command.said[0].split(" ")[0]} only selects caches to prune; add --prune to see what ` +
        "it would delete (nothing is deleted without --yes)",
    );
  }
  if (command.yes && !command.prune) {
    throw new UsageError("--yes confirms a --prune; add --prune with a criterion (see --help)");
  }
  if (command.prune && command.said.length === 0) {
    throw new UsageError(
      "--prune needs a criterion: --older-than DAYS, --run NAME, --stage STAGE or " +
        "--max-size SIZE (see --help)",
    );
  }
  return command;
}

function ago(iso: string, now: number): string {
  const hours = (now - Date.parse(iso)) / 3_600_000;
  if (hours < 1) return "<1 h ago";
  if (hours < 48) return `${Math.floor(hours)} h ago`;
  return `${Math.floor(hours / 24)} d ago`;
}

function runsText(e: CacheEntry): string {
  if (e.runs.length === 0) return "unknown run";
  const shown = e.runs.slice(0, 3).join(", ");
  return e.runs.length > 3 ? `${shown} +${e.runs.length - 3} more` : shown;
}

function lastUseText(e: CacheEntry, now: number): string {
  const when = `${e.lastUse.slice(0, 16).replace("T", " ")}Z (${ago(e.lastUse, now)})`;
  return e.lastUseSource === "uses.json" ? when : `${when} [${e.lastUseSource}]`;
}

/** The entries as an aligned table, sorted by stage then last use. */
function table(entries: readonly CacheEntry[], now: number): string {
  const rows = entries.map((e) => [
    e.stage,
    e.key,
    formatBytes(e.bytes),
    runsText(e),
    lastUseText(e, now),
  ]);
  const head = ["stage", "key", "size", "runs", "last use"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((cell, i) =>
      i === 2 ? cell.padStart(widths[i]) : i === r.length - 1 ? cell : cell.padEnd(widths[i])
    ).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

/** `N caches, SIZE (per stage …)`. */
function summary(entries: readonly CacheEntry[]): string {
  const total = entries.reduce((s, e) => s + e.bytes, 0);
  const parts = CACHE_STAGES.flatMap((stage) => {
    const of = entries.filter((e) => e.stage === stage);
    return of.length === 0
      ? []
      : [`${stage} ${of.length}: ${formatBytes(of.reduce((s, e) => s + e.bytes, 0))}`];
  });
  const n = `${entries.length} cache${entries.length === 1 ? "" : "s"}`;
  return `${n}, ${formatBytes(total)}${parts.length > 0 ? ` (${parts.join("; ")})` : ""}`;
}

async function main(args: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`cache: ${e.message}`);
    return 2;
  }
  if (command.help) {
    console.log(usage());
    return 0;
  }
  const root = dataDir();
  const now = Date.now();
  const entries = await listCaches(root);
  if (!command.prune) {
    if (command.json) {
      console.log(JSON.stringify(entries, null, 1));
      return 0;
    }
    if (entries.length === 0) {
      console.log(`no caches in ${root} (set TEXT_AS_IMAGE_DATA to look in another folder)`);
      return 0;
    }
    console.log(`caches in ${root}\n\n${table(entries, now)}\n\ntotal: ${summary(entries)}`);
    return 0;
  }
  const run = command.criteria.run;
  if (run !== undefined) {
    const runs = knownRuns(entries);
    if (!runs.includes(run)) {
      const near = nearest(run, runs);
      console.error(
        `cache: no run "${run}" in ${root}${near ? `; did you mean ${near}?` : ""} ` +
          (runs.length > 0
            ? `(runs: ${runs.join(", ")})`
            : "(no run has caches there; is TEXT_AS_IMAGE_DATA set to the right folder?)"),
      );
      return 2;
    }
  }
  const planned = planPrune(entries, { ...command.criteria, now });
  const criteria = command.said.join(" ");
  if (command.json && !command.yes) {
    console.log(JSON.stringify(planned, null, 1));
    return 0;
  }
  if (command.json) {
    const result = await pruneCaches(planned, root);
    console.log(JSON.stringify(result, null, 1));
    return result.failed.length > 0 ? 1 : 0;
  }
  if (planned.length === 0) {
    console.log(`nothing to delete: no cache in ${root} matches ${criteria}`);
    return 0;
  }
  const shown = [...planned].sort((a, b) =>
    CACHE_STAGES.indexOf(a.stage) - CACHE_STAGES.indexOf(b.stage) ||
    Date.parse(a.lastUse) - Date.parse(b.lastUse)
  );
  console.log(
    `${command.yes ? "deleting" : "would delete"} (${criteria}) in ${root}:\n\n` +
      `${table(shown, now)}\n\n${command.yes ? "deleting" : "would delete"}: ${summary(planned)}`,
  );
  if (!command.yes) {
    console.log("dry run: nothing was deleted; add --yes to delete these");
    return 0;
  }
  const result = await pruneCaches(planned, root);
  console.log(
    `deleted ${result.removed.length} cache${result.removed.length === 1 ? "" : "s"}, ` +
      `${formatBytes(result.bytes)}` +
      (result.usesUpdated.length > 0
        ? `; removed them from the uses.json of ${result.usesUpdated.join(", ")}`
        : ""),
  );
  const left = await listCaches(root);
  console.log(`left: ${summary(left)}`);
  if (result.failed.length > 0) {
    for (const f of result.failed) {
      console.error(`cache: could not delete ${f.entry.path}: ${f.error}`);
    }
    console.error(
      `cache: ${result.failed.length} cache(s) not deleted; check that you may write to ` +
        `${root} and that no run is using them, then run the same command again`,
    );
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
