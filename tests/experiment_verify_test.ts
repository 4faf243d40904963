/**
 * `deno task verify`: metrics compared one by one within the tolerance (hand-made cases),
 * and end to end, a small run written by `reproduce` and recomputed from nothing agrees
 * with itself, while a tampered metrics.json is caught with the metric named.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { projectRoot } from "../lib/config.ts";
import { compareRuns } from "../lib/experiment/mod.ts";
import type { ExperimentResults } from "../lib/experiment/mod.ts";
import { shared } from "./_shared.ts";

const archive = shared("data", "aclImdb_v1-labelled.tar.gz");
const models = shared("models", "darknet_reference", "model.json");

function results(accuracies: Record<string, number[]>): ExperimentResults {
  return {
    variants: [{
      label: "",
      models: Object.entries(accuracies).map(([id, list]) => ({
        id,
        runs: list.map((accuracy, i) => ({
          seed: i + 1,
          metrics: { test: { accuracy, f1: 0.5, rocAuc: 0.6 }, validation: { accuracy: 0.7 } },
        })),
      })),
    }],
  } as unknown as ExperimentResults;
}

Deno.test("compareRuns: each metric of each seed within the tolerance, or listed", () => {
  const committed = results({ a: [0.8, 0.7], b: [0.6] });
  const same = compareRuns(committed, results({ a: [0.8, 0.7] }), 0.001);
  assertEquals([same.compared, same.differences.length, same.maxDifference], [8, 0, 0]);
  const off = compareRuns(committed, results({ a: [0.8, 0.7005], b: [0.61] }), 0.001);
  assertEquals(off.differences.map((d) => [d.model, d.seed, d.metric, d.committed, d.recomputed]), [
    ["b", 1, "test accuracy", 0.6, 0.61],
  ]);
  assertEquals(Math.round(off.maxDifference * 1e6) / 1e6, 0.01);
  // A model or seed the committed run lacks is a difference, not a silent pass.
  const missing = compareRuns(committed, results({ c: [0.5] }), 0.001);
  assertEquals(missing.differences.length, 4);
});

async function run(script: string, args: string[], data: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(projectRoot, "tools", script), ...args],
    env: { TEXT_AS_IMAGE_DATA: data },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test({
  name: "verify: a run recomputed from nothing matches; a tampered metric is named",
  ignore: archive.ignore || models.ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "verify-test-" });
    try {
      const configPath = join(dir, "small.json");
      await Deno.writeTextFile(
        configPath,
        JSON.stringify({
          schemaVersion: 2,
          name: "small",
          data: { source: archive.path, trainSize: 100, testSize: 60 },
          image: { pixels: 16, tsne: { nIter: 250 } },
          models: { backbones: ["darknet_reference"], training: { epochs: 1 }, workers: 1 },
          seeds: [1, 2],
          baselines: { mlp: false },
          ablations: { permutedPixels: false, randomBackbone: false },
        }),
      );
      const results = join(dir, "results");
      const made = await run(
        "reproduce.ts",
        ["--config", configPath, "--out", results],
        join(dir, "data"),
      );
      assertEquals(made.code, 0, made.stderr);
      // The written config names the archive as <shared>/…, which verify resolves again.
      const args = ["--run", "small", "--results", results, "--models", "darknet_reference"];
      const ok = await run("verify.ts", args, join(dir, "other"));
      assertEquals(ok.code, 0, ok.stdout + ok.stderr);
      assertStringIncludes(ok.stdout, "recomputed darknet_reference of small from nothing");
      assertStringIncludes(ok.stdout, "8 metrics compared");
      assertStringIncludes(ok.stdout, "0 beyond the tolerance");
      // Tamper with one committed metric: verify names it and fails.
      const path = join(results, "small", "metrics.json");
      const metrics = JSON.parse(await Deno.readTextFile(path));
      const model = metrics.variants[0].models.find((m: { id: string }) =>
        m.id === "darknet_reference"
      );
      model.runs[1].metrics.test.accuracy += 0.05;
      await Deno.writeTextFile(path, JSON.stringify(metrics));
      const bad = await run("verify.ts", args, join(dir, "other2"));
      assertEquals(bad.code, 1, bad.stdout + bad.stderr);
      assertStringIncludes(bad.stdout, "darknet_reference seed 2 test accuracy");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
