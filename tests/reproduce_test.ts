/**
 * The main job end to end on a small config: `tools/reproduce.ts` runs every stage, writes
 * the results folder, and a second run finds every stage in the caches.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { DOMParser } from "linkedom";
import { projectRoot } from "../lib/config.ts";
import { formatResultsTable } from "../lib/eval/mod.ts";
import type { ExperimentResults } from "../lib/eval/mod.ts";
import { shared } from "./_shared.ts";

const archive = shared("data", "aclImdb_v1-labelled.tar.gz");
const models = shared("models", "darknet_reference", "model.json");

async function reproduce(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(projectRoot, "tools", "reproduce.ts"), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test({
  name: "reproduce: a small config writes config, metrics, figures and a report that agree",
  ignore: archive.ignore || models.ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "reproduce-test-" });
    const configPath = join(dir, "tiny.json");
    await Deno.writeTextFile(
      configPath,
      JSON.stringify({
        name: "tiny",
        data: { source: archive.path, trainSize: 160, testSize: 100 },
        image: { pixels: 24, tsne: { nIter: 250 } },
        models: { backbones: ["darknet_reference"], epochs: 1, workers: 1 },
        ablations: { backbone: "darknet_reference" },
        cacheDir: join(dir, "cache"),
      }),
    );
    try {
      const first = await reproduce(["--config", configPath, "--out", dir]);
      assertEquals(first.code, 0, first.stderr);
      const out = join(dir, "tiny");
      const results = JSON.parse(
        await Deno.readTextFile(join(out, "metrics.json")),
      ) as ExperimentResults;
      const names = results.models.map((m) => m.name);
      for (
        const name of [
          "logistic-regression",
          "mlp",
          "darknet_reference",
          "ablation-permuted-pixels-darknet_reference",
          "ablation-random-init-darknet_reference",
        ]
      ) assert(names.includes(name), `${name} missing from ${names}`);
      assertEquals(results.data.test, 100);
      for (const m of results.models) {
        const { accuracy, accuracyCI95 } = m.metrics.test;
        assert(accuracy >= accuracyCI95[0] && accuracy <= accuracyCI95[1], m.name);
      }
      // The report's table is the one the run printed, built from metrics.json.
      const table = formatResultsTable(results);
      const report = await Deno.readTextFile(join(out, "report.md"));
      assertStringIncludes(report, table);
      assertStringIncludes(first.stdout, table);
      assertStringIncludes(report, "## Deviations from the paper");
      // Every figure the report links exists; SVGs parse with one <svg> root.
      const linked = [...report.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
      assert(linked.length >= 8, `only ${linked.length} figures`);
      for (const file of linked) {
        const bytes = await Deno.readFile(join(out, file));
        if (file.endsWith(".svg")) {
          const doc = new DOMParser().parseFromString(
            new TextDecoder().decode(bytes),
            "image/svg+xml",
          );
          assert(doc.querySelector("svg"), `${file} is not an SVG`);
        } else {
          assertEquals(
            Array.from(bytes.subarray(1, 4)),
            [0x50, 0x4e, 0x47],
            `${file} is not a PNG`,
          );
        }
      }
      const config = JSON.parse(await Deno.readTextFile(join(out, "config.json")));
      assertEquals(config.image.pixels, 24);

      // Second run: every stage comes from the caches and the metrics are identical.
      const second = await reproduce(["--config", configPath, "--out", dir]);
      assertEquals(second.code, 0, second.stderr);
      assertStringIncludes(second.stderr, "(cached)");
      assertStringIncludes(second.stderr, "darknet_reference: result cached");
      const again = JSON.parse(
        await Deno.readTextFile(join(out, "metrics.json")),
      ) as ExperimentResults;
      assertEquals(
        again.models.map((m) => [m.name, m.metrics.test.accuracy]),
        results.models.map((m) => [m.name, m.metrics.test.accuracy]),
      );
      // The report says which results an earlier run trained.
      const secondReport = await Deno.readTextFile(join(out, "report.md"));
      assertStringIncludes(
        secondReport,
        `${again.cachedModels.length} image models were trained by an earlier run`,
      );
      assert(again.cachedModels.includes("darknet_reference"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("reproduce: an unknown config names the shipped ones", async () => {
  const run = await reproduce(["--config", "no-such-config"]);
  assertEquals(run.code, 2);
  assertStringIncludes(run.stderr, "quick");
  assertStringIncludes(run.stderr, "paper");
});
