/**
 * Who made a cached file: a small record (`<file>.made.json`) written beside each cached
 * part (an embedding-store chunk, a feature-cache chunk, a fitted layout) by the call that
 * computed it, naming the run, the time that call started and the code version. Reports read
 * them back to say, per stage, what this call computed and what it read from caches made by
 * earlier calls, by which code and when.
 *
 * The records are provenance, not data: a missing or unreadable record never stops a read,
 * it is reported as "maker not recorded" (caches made before records were written have
 * none). Stages take a {@link Maker} as an option and never ask where it comes from; the
 * experiment makes one per call.
 *
 * ```ts
 * import { readMaker, writeMaker } from "./provenance.ts";
 * const file = await Deno.makeTempFile();
 * const maker = { run: "demo", at: new Date().toISOString(), code: "abc123" };
 * await writeMaker(file, maker);
 * console.log((await readMaker(file))?.run); // "demo"
 * ```
 *
 * @module
 */
import { writeAtomic } from "./integrity.ts";

/** The call that computed a cached part. */
export interface Maker {
  /** The run's name (or a tool's name, e.g. `notebook 03`). */
  run: string;
  /** ISO time the call started: every part one call writes carries the same value. */
  at: string;
  /** The code version (git commit, `+changes` for a modified tree, or `unknown`). */
  code: string;
}

/** The record of `file`'s maker: `<file>.made.json`. */
export function makerPath(file: string): string {
  return `${file}.made.json`;
}

/** Records that `maker` computed `file` (atomically; after the file itself is in place). */
export async function writeMaker(file: string, maker: Maker): Promise<void> {
  await writeAtomic(makerPath(file), JSON.stringify(maker) + "\n");
}

/** The recorded maker of `file`, or `undefined` when none was recorded or it is unreadable. */
export async function readMaker(file: string): Promise<Maker | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(makerPath(file));
  } catch {
    return undefined;
  }
  try {
    const m = JSON.parse(text);
    if (
      m && typeof m === "object" && typeof m.run === "string" && typeof m.at === "string" &&
      typeof m.code === "string"
    ) return { run: m.run, at: m.at, code: m.code };
  } catch {
    // an unreadable record is a missing one: provenance, not data
  }
  return undefined;
}

/** Removes `file`'s maker record, if any (when the file itself is removed or rewritten). */
export async function removeMaker(file: string): Promise<void> {
  await Deno.remove(makerPath(file)).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** Whether two makers are the same call. */
export function sameMaker(a: Maker | undefined, b: Maker | undefined): boolean {
  return a !== undefined && b !== undefined && a.run === b.run && a.at === b.at &&
    a.code === b.code;
}

/**
 * Where a stage's output came from, in units of the stage (texts, rows, files): how many this
 * call computed, and for the rest, how many each earlier maker made (`maker: null`: not
 * recorded).
 */
export interface StageOrigin {
  /** Units computed by this call. */
  computed: number;
  /** Units read from caches, grouped by the call that made them. */
  cached: { maker: Maker | null; units: number }[];
}

/**
 * Groups parts by maker: parts made by `current` count as computed, the others are added to
 * the cached group of their maker.
 */
export function originOf(
  parts: { maker: Maker | undefined; units: number }[],
  current: Maker | undefined,
): StageOrigin {
  const origin: StageOrigin = { computed: 0, cached: [] };
  for (const part of parts) {
    if (sameMaker(part.maker, current)) {
      origin.computed += part.units;
      continue;
    }
    const maker = part.maker ?? null;
    const group = origin.cached.find((g) =>
      g.maker === null ? maker === null : maker !== null && sameMaker(g.maker, maker)
    );
    if (group) group.units += part.units;
    else origin.cached.push({ maker, units: part.units });
  }
  return origin;
}

/** Adds origins of the same stage (e.g. the train, validation and test parts). */
export function mergeOrigins(origins: StageOrigin[]): StageOrigin {
  const parts: { maker: Maker | undefined; units: number }[] = [];
  let computed = 0;
  for (const o of origins) {
    computed += o.computed;
    for (const g of o.cached) parts.push({ maker: g.maker ?? undefined, units: g.units });
  }
  const merged = originOf(parts, undefined);
  merged.computed = computed;
  return merged;
}

/** A maker in words: `run use-lite-5k (2026-11-30 10:43Z, code 8ce3988b2a62)`. */
export function describeMaker(maker: Maker | null): string {
  if (maker === null) return "an earlier call (maker not recorded: made before records were kept)";
  return `run ${maker.run} (${maker.at.slice(0, 16).replace("T", " ")}Z, code ${maker.code})`;
}

/** An origin in words, e.g. `5000 texts computed by this call; 500 read from the cache of run …`. */
export function describeOrigin(origin: StageOrigin, unit: string): string {
  const parts: string[] = [];
  const total = origin.computed + origin.cached.reduce((s, g) => s + g.units, 0);
  if (origin.computed > 0) {
    parts.push(
      origin.computed === total
        ? `computed by this call`
        : `${origin.computed} ${unit} computed by this call`,
    );
  }
  for (const g of origin.cached) {
    const all = g.units === total ? "" : `${g.units} ${unit} `;
    parts.push(`${all}read from the cache made by ${describeMaker(g.maker)}`);
  }
  return parts.length ? parts.join("; ") : `no ${unit}`;
}
