/**
 * tools/bench.ts judges each bench: one that exits non-zero, prints no JSON line, or reports a
 * null figure fails (and the tool exits 1 after running the rest); one whose targets are all
 * reported is ok, its missed targets shown as not met. Tiny fake benches in a temporary folder
 * (`--dir`) stand in for the real ones. Also bench/embed.ts's token-id comparison.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatResults, readBenchOutput } from "../tools/bench.ts";
import { describeTokenMismatch, tokenMismatches } from "../bench/embed.ts";

const TOOL = fileURLToPath(new URL("../tools/bench.ts", import.meta.url));

const line = (bench: string, met: boolean, figures: Record<string, unknown> = { x: 1 }) =>
  JSON.stringify({
    bench,
    figures,
    targets: { speed: { value: met ? 2 : 0.5, target: ">= 1", met } },
  });

/** Fake benches: name → source. */
const FAKES: Record<string, string> = {
  good: `console.log("measuring"); console.log(${JSON.stringify(line("good", true))});`,
  unmet: `console.log(${JSON.stringify(line("unmet", false))});`,
  crash: `console.log("measuring"); console.error("reference tool missing"); Deno.exit(3);`,
  crash_after_line: `console.log(${JSON.stringify(line("crash_after_line", false))});
    Deno.exit(1);`,
  no_json: `console.log("measured, but forgot the JSON line");`,
  nulls: `console.log(${JSON.stringify(line("nulls", true, { reference_seconds: null }))});`,
};

async function fakeBenches(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench_tool_test_" });
  for (const [name, source] of Object.entries(FAKES)) {
    await Deno.writeTextFile(join(dir, `${name}.ts`), source);
  }
  return dir;
}

async function runTool(args: string[]): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TOOL, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/** The table rows of `bench` in the tool's output. */
const rowsOf = (stdout: string, bench: string) =>
  stdout.split("\n").filter((l) => l.startsWith(`| ${bench} |`));

Deno.test("tools/bench.ts: failed benches are marked failed and make it exit 1", async () => {
  const dir = await fakeBenches();
  try {
    const { code, stdout } = await runTool(["--dir", dir]);
    assertEquals(code, 1);
    // Each bench's output is passed on.
    assertStringIncludes(stdout, "measured, but forgot the JSON line");
    // Good: ok and met.
    assertEquals(rowsOf(stdout, "good"), ["| good | ok | speed | 2 | >= 1 | yes |"]);
    // Unmet target: ok, not met.
    assertEquals(rowsOf(stdout, "unmet"), ["| unmet | ok | speed | 0.5 | >= 1 | no |"]);
    // Non-zero exit: failed, with its exit code.
    const crash = rowsOf(stdout, "crash");
    assertEquals(crash.length, 1);
    assertMatch(crash[0], /^\| crash \| FAILED \(exit code 3; no JSON line[^|]*\) \| — /);
    // Non-zero exit after a JSON line: failed, its targets still shown.
    const after = rowsOf(stdout, "crash_after_line");
    assertEquals(after, ["| crash_after_line | FAILED (exit code 1) | speed | 0.5 | >= 1 | no |"]);
    // No JSON line, exit 0: failed.
    const noJson = rowsOf(stdout, "no_json");
    assertEquals(noJson.length, 1);
    assertMatch(noJson[0], /^\| no_json \| FAILED \(no JSON line[^|]*\) \| — /);
    // A null figure (an unmeasured reference): failed, naming it.
    const nulls = rowsOf(stdout, "nulls");
    assertEquals(nulls.length, 1);
    assertStringIncludes(nulls[0], "FAILED (not measured (null): figures.reference_seconds)");
    assertStringIncludes(
      stdout,
      "6 bench(es): 2 ran, 4 failed (crash, crash_after_line, no_json, nulls); 2 target(s) not met",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tools/bench.ts: exits 0 when every chosen bench ran, even with unmet targets", async () => {
  const dir = await fakeBenches();
  try {
    const { code, stdout } = await runTool([`--dir=${dir}`, "good", "unmet"]);
    assertEquals(code, 0);
    assertEquals(rowsOf(stdout, "good"), ["| good | ok | speed | 2 | >= 1 | yes |"]);
    assertEquals(rowsOf(stdout, "unmet"), ["| unmet | ok | speed | 0.5 | >= 1 | no |"]);
    assertEquals(rowsOf(stdout, "crash"), []);
    // A single failing bench alone still fails the run.
    assertEquals((await runTool(["--dir", dir, "no_json"])).code, 1);
    // An unknown name is an error before anything runs.
    assertEquals((await runTool(["--dir", dir, "nope"])).code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readBenchOutput: the last line must be a complete bench line without nulls", () => {
  assertEquals(readBenchOutput(`text\n${line("a", true)}\n`).failure, undefined);
  assertEquals(readBenchOutput(`text\n${line("a", false)}`).line?.targets.speed.met, false);
  assertMatch(readBenchOutput("").failure!, /no JSON line/);
  assertMatch(readBenchOutput(`${line("a", true)}\ntrailing text`).failure!, /no JSON line/);
  assertMatch(readBenchOutput(`{"bench":"a","figures":{}}`).failure!, /"targets" is not/);
  assertMatch(
    readBenchOutput(`{"bench":"a","figures":{},"targets":{"t":{"value":1,"target":">1"}}}`)
      .failure!,
    /target "t" is not/,
  );
  const nullTarget = JSON.stringify({
    bench: "a",
    figures: {},
    targets: { t: { value: null, target: "<= 1", met: false } },
  });
  assertEquals(readBenchOutput(nullTarget).failure, "not measured (null): targets.t.value");
});

Deno.test("formatResults: failed benches, targets and the summary", () => {
  const good = readBenchOutput(line("good", true)).line!;
  const text = formatResults([
    { name: "good", line: good },
    { name: "bad", failure: "exit code 1 | oops" },
  ]);
  assertStringIncludes(text, "| good | ok | speed | 2 | >= 1 | yes |");
  assertStringIncludes(text, "| bad | FAILED (exit code 1 \\| oops) | — | — | — | — |");
  assertStringIncludes(text, "2 bench(es): 1 ran, 1 failed (bad); 0 target(s) not met");
});

Deno.test("bench/embed.ts tokenMismatches: one differing review out of many fails", () => {
  const ours = Array.from({ length: 1000 }, (_, i) => [101, 1000 + i, 2000 + i, 102]);
  const same = ours.map((ids) => [...ids]);
  assertEquals(tokenMismatches(ours, same), []);

  const reference = ours.map((ids) => [...ids]);
  reference[637] = [101, 1637, 9999, 102];
  const mismatches = tokenMismatches(ours, reference);
  assertEquals(mismatches.length, 1);
  assertEquals(mismatches[0].review, 637);
  assertEquals(mismatches[0].firstDifference, 2);
  const text = describeTokenMismatch(mismatches[0], "A review that tokenises differently.");
  assertStringIncludes(text, "review 637");
  assertStringIncludes(text, "ours:      [101, 1637, 2637, 102]");
  assertStringIncludes(text, "reference: [101, 1637, 9999, 102]");

  // A prefix (one side truncated shorter) and a missing row differ too.
  const truncated = ours.map((ids) => [...ids]);
  truncated[5] = truncated[5].slice(0, 3);
  assertEquals(tokenMismatches(ours, truncated).map((m) => [m.review, m.firstDifference]), [
    [5, 3],
  ]);
  const missing = tokenMismatches(ours, same.slice(0, 999));
  assertEquals(missing.map((m) => m.review), [999]);
  assert(missing[0].reference.length === 0);
});
