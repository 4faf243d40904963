/**
 * The cache inventory (`lib/experiment/cache.ts`) and `deno task cache` (`tools/cache.ts`) on
 * a fake data folder: real files of known sizes, job files with `madeBy`/`madeAt`, `uses.json`
 * records of two runs, and modification times set by hand. Every expected value below is
 * written out from the fixture, not computed by the code under test.
 */
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { dirname, join } from "node:path";
import { projectRoot } from "../lib/config.ts";
import {
  type CacheEntry,
  formatBytes,
  knownRuns,
  listCaches,
  parseSize,
  planPrune,
  pruneCaches,
} from "../lib/experiment/cache.ts";

const DAY = 24 * 60 * 60 * 1000;

/** The fixture's present: every time in it is some days before this. */
const NOW = Math.floor(Date.now() / 1000) * 1000;
const ago = (days: number) => new Date(NOW - days * DAY);
const iso = (days: number) => ago(days).toISOString();

async function file(root: string, path: string, content: string | number, mtimeDays?: number) {
  const full = join(root, path);
  await Deno.mkdir(dirname(full), { recursive: true });
  if (typeof content === "number") await Deno.writeFile(full, new Uint8Array(content).fill(7));
  else await Deno.writeTextFile(full, content);
  if (mtimeDays !== undefined) await Deno.utime(full, ago(mtimeDays), ago(mtimeDays));
}

function job(name: string, madeBy: string, madeAtDays: number): string {
  // Shaped like a StoredJob (madeAt and madeBy last, as storedJobOf writes them).
  return JSON.stringify({
    schemaVersion: 2,
    job: name,
    key: "k",
    result: { testProba: Array.from({ length: 400 }, (_, i) => i / 400) },
    madeAt: iso(madeAtDays),
    madeBy,
  });
}

const JOB_A1 = job("logistic-regression", "A", 40);
const JOB_A2 = job("cnn@1", "A", 20);
const JOB_B = job("cnn@1", "B", 3);

/**
 * The fixture. Last uses (days ago): feat2 60 (mtime), A layout 41, bbbb 40, A logistic job 35
 * (uses.json; made 40), A checkpoint 25 (mtime), A cnn job 20 (job file), feat1 5, B job 3,
 * B layout 2, aaaa 1.5 (A at 10, B at 1.5); models/ and rates.json 100 (mtime).
 */
async function makeFixture(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "cache-test-" });
  // Shared: embedding stores (two levels: encoder, key) and feature caches.
  await file(root, "embeddings/enc/aaaa/meta.json", 100, 50);
  await file(root, "embeddings/enc/aaaa/rows-0-256.f32", 1000, 50);
  await file(root, "embeddings/enc/bbbb/rows-0-256.f32", 2000, 50);
  await file(root, "features/feat1/meta.json", 50, 50);
  await file(root, "features/feat1/chunk-000000.bin", 3000, 50);
  await file(root, "features/feat2/chunk-000000.bin", 4000, 60);
  // Run A: a layout, two jobs, a checkpoint.
  await file(root, "experiments/A/image-transformer-k1.json", 500, 41);
  // Its maker record (provenance) is part of the layout, not an entry of its own.
  await file(root, "experiments/A/image-transformer-k1.json.made.json", 60, 41);
  await file(root, "experiments/A/jobs/logistic-regression-k2.json", JOB_A1, 40);
  await file(root, "experiments/A/jobs/cnn-s1-k3.json", JOB_A2, 1);
  // Its fitted model (predict.ts) is part of the job entry: counted and pruned with it.
  await file(root, "experiments/A/jobs/cnn-s1-k3.model.bin", 300, 1);
  await file(root, "experiments/A/checkpoints/cnn@1-k3/checkpoint.json", 200, 26);
  await file(root, "experiments/A/checkpoints/cnn@1-k3/weights-1.bin", 5000, 25);
  await file(
    root,
    "experiments/A/uses.json",
    JSON.stringify({
      "embeddings/enc/aaaa": iso(10),
      "embeddings/enc/bbbb": iso(40),
      "experiments/A/image-transformer-k1.json": iso(41),
      "experiments/A/jobs/logistic-regression-k2.json": iso(35),
    }),
  );
  // Run B: a layout and a job.
  await file(root, "experiments/B/image-transformer-k4.json", 700, 30);
  await file(root, "experiments/B/jobs/cnn-s1-k5.json", JOB_B, 3);
  await file(
    root,
    "experiments/B/uses.json",
    JSON.stringify({
      "embeddings/enc/aaaa": iso(1.5),
      "features/feat1": iso(5),
      "experiments/B/image-transformer-k4.json": iso(2),
      "experiments/B/jobs/cnn-s1-k5.json": iso(3),
    }),
  );
  // Other things in the data folder.
  await file(root, "models/net/model.json", 800, 100);
  await file(root, "rates.json", 60, 100);
  return root;
}

type Expected = Omit<CacheEntry, "lastUse"> & { days: number };

const EXPECTED: Expected[] = [
  {
    stage: "embeddings",
    path: "embeddings/enc/bbbb",
    key: "enc/bbbb",
    bytes: 2000,
    runs: ["A"],
    days: 40,
    lastUseSource: "uses.json",
  },
  {
    stage: "embeddings",
    path: "embeddings/enc/aaaa",
    key: "enc/aaaa",
    bytes: 1100,
    runs: ["A", "B"],
    days: 1.5,
    lastUseSource: "uses.json",
  },
  {
    stage: "features",
    path: "features/feat2",
    key: "feat2",
    bytes: 4000,
    runs: [],
    days: 60,
    lastUseSource: "mtime",
  },
  {
    stage: "features",
    path: "features/feat1",
    key: "feat1",
    bytes: 3050,
    runs: ["B"],
    days: 5,
    lastUseSource: "uses.json",
  },
  {
    stage: "layout",
    path: "experiments/A/image-transformer-k1.json",
    key: "k1",
    bytes: 500,
    runs: ["A"],
    madeBy: "A",
    days: 41,
    lastUseSource: "uses.json",
  },
  {
    stage: "layout",
    path: "experiments/B/image-transformer-k4.json",
    key: "k4",
    bytes: 700,
    runs: ["B"],
    madeBy: "B",
    days: 2,
    lastUseSource: "uses.json",
  },
  {
    stage: "job",
    path: "experiments/A/jobs/logistic-regression-k2.json",
    key: "logistic-regression-k2",
    bytes: JOB_A1.length,
    runs: ["A"],
    madeBy: "A",
    days: 35,
    lastUseSource: "uses.json",
  },
  {
    stage: "job",
    path: "experiments/A/jobs/cnn-s1-k3.json",
    key: "cnn-s1-k3",
    bytes: JOB_A2.length + 300, // with its model file
    runs: ["A"],
    madeBy: "A",
    days: 20,
    lastUseSource: "job file",
  },
  {
    stage: "job",
    path: "experiments/B/jobs/cnn-s1-k5.json",
    key: "cnn-s1-k5",
    bytes: JOB_B.length,
    runs: ["B"],
    madeBy: "B",
    days: 3,
    lastUseSource: "uses.json",
  },
  {
    stage: "checkpoint",
    path: "experiments/A/checkpoints/cnn@1-k3",
    key: "cnn@1-k3",
    bytes: 5200,
    runs: ["A"],
    madeBy: "A",
    days: 25,
    lastUseSource: "mtime",
  },
  {
    stage: "other",
    path: "models",
    key: "models",
    bytes: 800,
    runs: [],
    days: 100,
    lastUseSource: "mtime",
  },
  {
    stage: "other",
    path: "rates.json",
    key: "rates.json",
    bytes: 60,
    runs: [],
    days: 100,
    lastUseSource: "mtime",
  },
];

function expectedEntries(): CacheEntry[] {
  return EXPECTED.map(({ days, ...e }) => ({ ...e, lastUse: iso(days) }));
}

const paths = (entries: readonly CacheEntry[]) => entries.map((e) => e.path).sort();

async function existing(root: string, list: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const p of list) {
    try {
      await Deno.lstat(join(root, p));
      found.push(p);
    } catch {
      // gone
    }
  }
  return found;
}

async function readJson(path: string): Promise<Record<string, string>> {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("listCaches: every entry with its stage, key, size, runs, maker and last use", async () => {
  const root = await makeFixture();
  try {
    assertEquals(await listCaches(root), expectedEntries());
    assertEquals(knownRuns(await listCaches(root)), ["A", "B"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("listCaches: a missing data folder has no caches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cache-test-" });
  try {
    assertEquals(await listCaches(join(dir, "absent")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("planPrune: each criterion selects exactly the hand-computed entries", () => {
  const entries = expectedEntries();
  const plan = (criteria: Parameters<typeof planPrune>[1]) =>
    paths(planPrune(entries, { now: NOW, ...criteria }));
  const A_OWN = [
    "experiments/A/checkpoints/cnn@1-k3",
    "experiments/A/image-transformer-k1.json",
    "experiments/A/jobs/cnn-s1-k3.json",
    "experiments/A/jobs/logistic-regression-k2.json",
  ];
  // Age: last use more than 30 days ago; "other" (100 days) is never in scope by default.
  assertEquals(
    plan({ olderThanDays: 30 }),
    [
      "embeddings/enc/bbbb",
      "experiments/A/image-transformer-k1.json",
      "experiments/A/jobs/logistic-regression-k2.json",
      "features/feat2",
    ],
  );
  assertEquals(plan({ olderThanDays: 0.5 }).length, 10);
  assertEquals(plan({ olderThanDays: 1000 }), []);
  // Run A: its folder and bbbb (A only); aaaa, shared with B, survives, as does feat2 (no run).
  assertEquals(plan({ run: "A" }), ["embeddings/enc/bbbb", ...A_OWN]);
  assertEquals(plan({ run: "B" }), [
    "experiments/B/image-transformer-k4.json",
    "experiments/B/jobs/cnn-s1-k5.json",
    "features/feat1",
  ]);
  assertEquals(plan({ run: "nobody" }), []);
  // Stage; "other" only when asked for.
  assertEquals(plan({ stage: "features" }), ["features/feat1", "features/feat2"]);
  assertEquals(plan({ stage: "other" }), ["models", "rates.json"]);
  assertEquals(plan({ stage: "features", olderThanDays: 30 }), ["features/feat2"]);
  assertEquals(plan({ stage: "layout", run: "B" }), ["experiments/B/image-transformer-k4.json"]);
  // Size: the least recently used go until the rest is at most the limit. In scope (all but
  // "other"): feat2 4000, A layout 500, bbbb 2000, … in order of last use.
  const total = 2000 + 1100 + 4000 + 3050 + 500 + 700 + JOB_A1.length + JOB_A2.length + 300 +
    JOB_B.length + 5200;
  assertEquals(plan({ keepBytes: total }), []);
  assertEquals(plan({ keepBytes: total - 4000 }), ["features/feat2"]);
  assertEquals(plan({ keepBytes: total - 4001 }), [
    "experiments/A/image-transformer-k1.json",
    "features/feat2",
  ]);
  assertEquals(plan({ keepBytes: total - 6000 }), [
    "embeddings/enc/bbbb",
    "experiments/A/image-transformer-k1.json",
    "features/feat2",
  ]);
  assertEquals(plan({ keepBytes: 0 }).length, 10);
  assertEquals(plan({ stage: "features", keepBytes: 3050 }), ["features/feat2"]);
  // Age, then size: the four old ones, then the next least recently used (A's checkpoint).
  const afterOld = total - 4000 - 500 - 2000 - JOB_A1.length;
  assertEquals(plan({ olderThanDays: 30, keepBytes: afterOld }).length, 4);
  assertEquals(plan({ olderThanDays: 30, keepBytes: afterOld - 1 }), [
    "embeddings/enc/bbbb",
    "experiments/A/checkpoints/cnn@1-k3",
    "experiments/A/image-transformer-k1.json",
    "experiments/A/jobs/logistic-regression-k2.json",
    "features/feat2",
  ]);
  // Ordered oldest first.
  assertEquals(
    planPrune(entries, { now: NOW, olderThanDays: 30 }).map((e) => e.key),
    ["feat2", "k1", "enc/bbbb", "logistic-regression-k2"],
  );
  // No criterion selects nothing; bad values are refused.
  assertEquals(plan({}), []);
  assertThrows(() => planPrune(entries, { olderThanDays: -1 }), RangeError);
  assertThrows(() => planPrune(entries, { keepBytes: NaN }), RangeError);
  assertThrows(
    () => planPrune(entries, { stage: "feature" as "features" }),
    RangeError,
    "stages: embeddings",
  );
});

Deno.test("pruneCaches: deletes those entries and only those, and updates uses.json", async () => {
  const root = await makeFixture();
  try {
    const before = await listCaches(root);
    const doomed = planPrune(before, { run: "A" });
    const result = await pruneCaches(doomed, root);
    assertEquals(paths(result.removed), paths(doomed));
    assertEquals(result.bytes, 2000 + 500 + JOB_A1.length + JOB_A2.length + 300 + 5200);
    assertEquals(result.failed, []);
    assertEquals(result.usesUpdated, ["experiments/A"]);
    // What is left is exactly the rest, unchanged (aaaa is still used by A and B).
    const gone = new Set(paths(doomed));
    assertEquals(await listCaches(root), before.filter((e) => !gone.has(e.path)));
    assertEquals(await existing(root, paths(doomed)), []);
    assertEquals(
      await existing(root, [
        "experiments/A/image-transformer-k1.json.made.json",
        "experiments/A/jobs/cnn-s1-k3.model.bin",
      ]),
      [],
    );
    // A's record keeps only the shared store that survived; B's is untouched.
    assertEquals(await readJson(join(root, "experiments/A/uses.json")), {
      "embeddings/enc/aaaa": iso(10),
    });
    assertEquals(Object.keys(await readJson(join(root, "experiments/B/uses.json"))).length, 4);
    // Emptied folders went; the run folder stays while its record is not empty.
    assertEquals(await existing(root, ["experiments/A/jobs", "experiments/A/checkpoints"]), []);
    assertEquals(await existing(root, ["experiments/A", "embeddings/enc"]), [
      "experiments/A",
      "embeddings/enc",
    ]);

    // B's feature cache: B's record loses it; the stage folder stays even when emptied.
    const features = await pruneCaches(
      planPrune(await listCaches(root), { stage: "features" }),
      root,
    );
    assertEquals(paths(features.removed), ["features/feat1", "features/feat2"]);
    assertEquals(features.usesUpdated, ["experiments/B"]);
    assertEquals(
      Object.keys(await readJson(join(root, "experiments/B/uses.json"))).sort(),
      [
        "embeddings/enc/aaaa",
        "experiments/B/image-transformer-k4.json",
        "experiments/B/jobs/cnn-s1-k5.json",
      ],
    );
    assertEquals(await existing(root, ["features"]), ["features"]);

    // The last embedding store: the encoder folder goes, and A's folder with its now empty
    // record (it has nothing left).
    const embeddings = await pruneCaches(
      planPrune(await listCaches(root), { stage: "embeddings" }),
      root,
    );
    assertEquals(paths(embeddings.removed), ["embeddings/enc/aaaa"]);
    assertEquals(embeddings.usesUpdated, ["experiments/A", "experiments/B"]);
    assertEquals(await existing(root, ["embeddings/enc", "experiments/A"]), []);
    assertEquals(await existing(root, ["embeddings", "experiments/B/uses.json"]), [
      "embeddings",
      "experiments/B/uses.json",
    ]);
    assertEquals(paths(await listCaches(root)), [
      "experiments/B/image-transformer-k4.json",
      "experiments/B/jobs/cnn-s1-k5.json",
      "models",
      "rates.json",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("pruneCaches: refuses paths outside the data folder before deleting anything", async () => {
  const root = await makeFixture();
  try {
    const [first] = await listCaches(root);
    const outside = { ...first, path: "../elsewhere" };
    await assertRejects(() => pruneCaches([first, outside], root), Error, "refusing to delete");
    await assertRejects(() => pruneCaches([{ ...first, path: "/etc" }], root), Error, "refusing");
    assertEquals(await existing(root, [first.path]), [first.path]);
    // An entry already gone counts as removed.
    await Deno.remove(join(root, first.path), { recursive: true });
    const result = await pruneCaches([first], root);
    assertEquals(paths(result.removed), [first.path]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("parseSize and formatBytes", () => {
  assertEquals(parseSize("5G"), 5 * 1024 ** 3);
  assertEquals(parseSize("500M"), 500 * 1024 ** 2);
  assertEquals(parseSize("1.5GiB"), 1.5 * 1024 ** 3);
  assertEquals(parseSize("750mb"), 750 * 1024 ** 2);
  assertEquals(parseSize("64k"), 65536);
  assertEquals(parseSize("1024"), 1024);
  assertEquals(parseSize("2 TB"), 2 * 1024 ** 4);
  assertEquals(parseSize("12B"), 12);
  for (const bad of ["", "G", "5X", "-1G", "5iB", "1e3"]) {
    assertThrows(() => parseSize(bad), RangeError, "e.g. 5G or 500M");
  }
  assertEquals(formatBytes(0), "0 B");
  assertEquals(formatBytes(512), "512 B");
  assertEquals(formatBytes(1536), "1.50 KiB");
  assertEquals(formatBytes(45 * 1024 ** 2), "45.0 MiB");
  assertEquals(formatBytes(5 * 1024 ** 3), "5.00 GiB");
});

async function cli(
  root: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(projectRoot, "tools", "cache.ts"), ...args],
    cwd: projectRoot,
    env: { TEXT_AS_IMAGE_DATA: root, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("tools/cache.ts: lists, dry-runs, deletes with --yes, and rejects bad flags", async () => {
  const root = await makeFixture();
  try {
    const all = paths(expectedEntries());
    // The table: every entry, sorted by stage then last use, and the total.
    const list = await cli(root, []);
    assertEquals(list.code, 0, list.stderr);
    const lines = list.stdout.split("\n");
    const rows = lines.filter((l) => /^(embeddings|features|layout|job|checkpoint|other) /.test(l));
    assertEquals(rows.map((l) => l.split(/\s+/)[1]), expectedEntries().map((e) => e.key));
    assertStringIncludes(list.stdout, "stage");
    assertStringIncludes(list.stdout, "last use");
    assertStringIncludes(rows[0], "1.95 KiB");
    assertStringIncludes(rows[1], "A, B");
    assertStringIncludes(rows[2], "unknown run");
    assertStringIncludes(rows[2], "[mtime]");
    assertStringIncludes(rows[2], "60 d ago");
    const total = EXPECTED.reduce((s, e) => s + e.bytes, 0);
    assertStringIncludes(list.stdout, `total: 12 caches, ${formatBytes(total)}`);

    // Dry run: says what would go and its total, deletes nothing.
    const dry = await cli(root, ["--prune", "--older-than", "30"]);
    assertEquals(dry.code, 0, dry.stderr);
    assertStringIncludes(
      dry.stdout,
      "would delete: 4 caches, " + formatBytes(6500 + JOB_A1.length),
    );
    assertStringIncludes(dry.stdout, "dry run: nothing was deleted; add --yes");
    assertEquals(await existing(root, all), all);

    // Shared cache used by two runs survives --run A.
    const runA = await cli(root, ["--prune", "--run=A", "--yes"]);
    assertEquals(runA.code, 0, runA.stderr);
    assertStringIncludes(runA.stdout, "deleted 5 caches");
    assertStringIncludes(runA.stdout, "uses.json of experiments/A");
    const afterA = all.filter((p) => p !== "embeddings/enc/bbbb" && !p.startsWith("experiments/A"));
    assertEquals(await existing(root, all), afterA);

    // --yes deletes; "other" stays.
    const old = await cli(root, ["--prune", "--older-than", "30", "--yes"]);
    assertEquals(old.code, 0, old.stderr);
    assertStringIncludes(old.stdout, "deleted 1 cache, 3.91 KiB");
    assertEquals(await existing(root, all), afterA.filter((p) => p !== "features/feat2"));

    // Nothing left to match.
    const none = await cli(root, ["--prune", "--older-than", "30"]);
    assertEquals(none.code, 0);
    assertStringIncludes(none.stdout, "nothing to delete");

    // Mistakes: exit status 2 with the problem and the fix.
    const mistakes: [string[], string][] = [
      [["--prunee"], "unknown flag --prunee; did you mean --prune?"],
      [["--older-then", "3"], "did you mean --older-than?"],
      [["stray"], 'unknown argument "stray"'],
      [["--prune"], "--prune needs a criterion"],
      [["--older-than", "30"], "add --prune"],
      [["--prune", "--older-than", "soon"], "--older-than needs a number of days"],
      [["--prune", "--stage", "feature"], "did you mean features?"],
      [["--prune", "--max-size", "5X"], "e.g. 5G or 500M"],
      [["--prune", "--run"], "--run needs a value"],
      [["--prune", "--run", "C"], 'no run "C"'],
      [["--prune", "--run", "b"], "did you mean B?"],
      [["--yes"], "--yes confirms a --prune"],
    ];
    for (const [args, message] of mistakes) {
      const r = await cli(root, args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assertStringIncludes(r.stderr, message);
    }
    assertEquals(await existing(root, all), afterA.filter((p) => p !== "features/feat2"));

    // Help lists every flag.
    const help = await cli(root, ["--help"]);
    assertEquals(help.code, 0);
    for (const flag of ["--prune", "--older-than", "--run", "--stage", "--max-size", "--yes"]) {
      assertStringIncludes(help.stdout, flag);
    }
    // JSON for scripts.
    const json = await cli(root, ["--json"]);
    assert(Array.isArray(JSON.parse(json.stdout)));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
