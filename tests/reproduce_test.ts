/**
 * The main job end to end on a small config with two seeds and a two-value sweep:
 * `tools/reproduce.ts` runs every stage, writes the results folder (report, figures and
 * metrics that agree), and a second run finds every stage in the caches. Also its command
 * line: `--help`, unknown flags and configs, `--plan`.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { DOMParser } from "linkedom";
import { projectRoot } from "../lib/config.ts";
import { formatResultsTable, shippedConfigs } from "../lib/experiment/mod.ts";
import type { ExperimentResults } from "../lib/experiment/mod.ts";
import { runTool, shared, type ToolOutput } from "./_shared.ts";

const archive = shared("data", "aclImdb_v1-labelled.tar.gz");
const models = shared("models", "darknet_reference", "model.json");

function reproduce(args: string[], data?: string): Promise<ToolOutput> {
  // Caches (embeddings, features, measured rates) in the test's folder, not the project's.
  return runTool("reproduce.ts", args, data);
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
        schemaVersion: 2,
        name: "tiny",
        data: { source: archive.path, trainSize: 160, testSize: 100 },
        image: { pixels: 24, tsne: { nIter: 250 } },
        models: { backbones: ["darknet_reference"], training: { epochs: 1 }, workers: 2 },
        seeds: [1, 2],
        baselines: { mlp: { epochs: 3, hidden: [16] } },
        ablations: { backbone: "darknet_reference", randomBackbone: false },
        sweep: { "image.discretization": ["bin", "lsa"] },
        cacheDir: join(dir, "cache"),
      }),
    );
    try {
      const first = await reproduce(["--config", configPath, "--out", dir], join(dir, "data"));
      assertEquals(first.code, 0, first.stderr);
      const out = join(dir, "tiny");
      const results = JSON.parse(
        await Deno.readTextFile(join(out, "metrics.json")),
      ) as ExperimentResults;
      assertEquals(results.sweep, ["image.discretization"]);
      assertEquals(results.variants.map((v) => v.values["image.discretization"]), ["bin", "lsa"]);
      const report = await Deno.readTextFile(join(out, "report.md"));
      for (const v of results.variants) {
        assertEquals(v.models.map((m) => m.id), [
          "logistic-regression",
          "mlp",
          "darknet_reference",
          "ablation-permuted-pixels-darknet_reference",
        ]);
        assertEquals(v.data.test, 100);
        for (const m of v.models) {
          assertEquals(m.runs.length, m.id === "logistic-regression" ? 1 : 2);
          for (const r of m.runs) {
            const { accuracy, accuracyCI95 } = r.metrics.test;
            assert(accuracy >= accuracyCI95[0] && accuracy <= accuracyCI95[1], m.id);
          }
        }
        // The report's tables are the ones the run printed, built from metrics.json.
        const table = formatResultsTable(v);
        assertStringIncludes(report, table);
        assertStringIncludes(first.stdout, table);
        assertStringIncludes(
          report,
          `## Variant image.discretization=${v.values["image.discretization"]}`,
        );
      }
      assertStringIncludes(report, "## Settings, deviations from the paper, and methods");
      assertStringIncludes(report, "Seeds: 1, 2");
      // Every figure the report links exists, the sweep figure among them; SVGs parse.
      const linked = [...report.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]);
      assert(
        linked.includes("sweep-image-discretization.svg") === false,
        "a text sweep has no x axis",
      );
      assert(
        linked.includes("accuracy-v1.svg") && linked.includes("accuracy-v2.svg"),
        linked.join(),
      );
      assert(linked.length >= 10, `only ${linked.length} figures`);
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
      assertEquals(config.cacheDir, undefined);
      assert(!(await Deno.readTextFile(join(out, "metrics.json"))).includes(dir), "machine paths");
      assert(!report.includes(dir), "the report's command has no machine path");

      // The report rendered again from metrics.json alone: same tables, says so.
      const rendered = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          join(projectRoot, "tools", "report.ts"),
          "--run",
          "tiny",
          "--results",
          dir,
        ],
      }).output();
      assertEquals(rendered.code, 0, new TextDecoder().decode(rendered.stderr));
      const rerendered = await Deno.readTextFile(join(out, "report.md"));
      assertStringIncludes(rerendered, "rendered again from `metrics.json`");
      for (const v of results.variants) assertStringIncludes(rerendered, formatResultsTable(v));

      // Second run: every stage comes from the caches and the metrics are identical.
      const second = await reproduce(["--config", configPath, "--out", dir], join(dir, "data"));
      assertEquals(second.code, 0, second.stderr);
      assertStringIncludes(second.stderr, "layout read from the cache made by run tiny");
      assertStringIncludes(second.stderr, "darknet_reference@1: result cached");
      const again = JSON.parse(
        await Deno.readTextFile(join(out, "metrics.json")),
      ) as ExperimentResults;
      const accuracies = (r: ExperimentResults) =>
        r.variants.map((v) => v.models.map((m) => m.runs.map((x) => x.metrics.test.accuracy)));
      assertEquals(accuracies(again), accuracies(results));
      // The report says which fits an earlier call made.
      const secondReport = await Deno.readTextFile(join(out, "report.md"));
      assertStringIncludes(secondReport, "0 of 14 model fits were computed by this call");
      // …which kernels ran, and the wall time against the results it replaced (the first run's).
      assertStringIncludes(secondReport, `kernels ${again.environment.kernels}`);
      assertEquals(again.previous?.totalSeconds, results.totalSeconds);
      const embedded = results.variants[0].provenance!.embeddings.computed;
      assert(embedded > 0);
      assertEquals(
        again.previous?.computed,
        `embedded ${embedded} texts; trained 14 of 14 model fits`,
      );
      assertStringIncludes(
        secondReport,
        `Wall time against the results this run replaced (finished ${results.finishedAt}, code ` +
          `${results.environment.code}, kernels ${results.environment.kernels}): `,
      );
      assert(results.previous === undefined, "the first run replaced nothing");
      // …and per stage, which earlier call (run, code) made the embeddings and the layout.
      const code = again.environment.code;
      assertStringIncludes(
        secondReport,
        `  - embeddings: read from the cache made by run tiny (${
          results.startedAt.slice(0, 16).replace("T", " ")
        }Z, code ${code})`,
      );
      assertStringIncludes(secondReport, "  - layout: read from the cache made by run tiny");
      assertStringIncludes(report, "  - embeddings: computed by this call");
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

Deno.test("reproduce: --help lists every flag and config; unknown flags and bad values fail", async () => {
  const help = await reproduce(["--help"]);
  assertEquals(help.code, 0);
  for (const flag of ["--config", "--plan", "--only", "--collect", "--seeds", "--set", "--help"]) {
    assertStringIncludes(help.stdout, flag);
  }
  for (const name of shippedConfigs()) assertStringIncludes(help.stdout, name);
  const unknown = await reproduce(["--epoch", "3"]);
  assertEquals(unknown.code, 2);
  assertStringIncludes(unknown.stderr, "did you mean --epochs?");
  const bad = await reproduce(["--set", "image.pixels=2"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "image.pixels");
  const stray = await reproduce(["quick"]);
  assertEquals(stray.code, 2);
  assertStringIncludes(stray.stderr, "unknown argument");
});

Deno.test({
  name: "reproduce --plan: the resolved config and the jobs, training nothing",
  ignore: archive.ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "reproduce-plan-" });
    try {
      const run = await reproduce([
        "--plan",
        "--config",
        "quick",
        "--seeds",
        "1,2",
        "--set",
        `data.source=${archive.path}`,
        "--set",
        `cacheDir=${join(dir, "cache")}`,
        "--name",
        "plan-test",
      ], join(dir, "data"));
      assertEquals(run.code, 0, run.stderr);
      assertStringIncludes(run.stdout, `"seeds": [`);
      for (const job of ["logistic-regression", "mlp@1", "mlp@2", "mobilenet_v1@2"]) {
        assertStringIncludes(run.stdout, job);
      }
      assertStringIncludes(run.stdout, "to run");
      assertStringIncludes(run.stdout, "Estimated time");
      // Nothing was trained: no job results, no checkpoints.
      const jobs = join(dir, "cache", "jobs");
      assert(!existsSync(jobs), "--plan stored job results");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "reproduce: two processes on one run name — the second stops at the lock, caches stay valid",
  ignore: archive.ignore || models.ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "reproduce-lock-" });
    const configPath = join(dir, "twice.json");
    await Deno.writeTextFile(
      configPath,
      JSON.stringify({
        schemaVersion: 2,
        name: "twice",
        data: { source: archive.path, trainSize: 160, testSize: 100 },
        image: { pixels: 24, tsne: { nIter: 250 } },
        // enough epochs (no early stopping) that the first process still holds the training
        // job's lock when the second one reaches it, on native kernels too
        models: {
          backbones: ["darknet_reference"],
          training: { epochs: 60, patience: null },
          workers: 1,
        },
        baselines: { mlp: false },
        ablations: { permutedPixels: false, randomBackbone: false },
        cacheDir: join(dir, "cache"),
      }),
    );
    const args = ["run", "-A", join(projectRoot, "tools", "reproduce.ts"), "--config", configPath];
    const env = { TEXT_AS_IMAGE_DATA: join(dir, "data") };
    try {
      const first = new Deno.Command(Deno.execPath(), {
        args: [...args, "--out", join(dir, "a")],
        env,
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Wait until the first process holds its job locks (it logs the features it prepared).
      const reader = first.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let log = "";
      while (!log.includes("features darknet_reference@42")) {
        const { value, done } = await reader.read();
        if (done) break;
        log += value;
      }
      const rest = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return log;
          log += value;
        }
      })();
      const second = await reproduce(
        ["--config", configPath, "--out", join(dir, "b")],
        env.TEXT_AS_IMAGE_DATA,
      );
      assertEquals(second.code, 1, second.stderr);
      assertStringIncludes(second.stderr, "job darknet_reference@42 is being run by process");
      assertStringIncludes(second.stderr, String(first.pid));
      const status = await first.status;
      await first.stdout.cancel();
      assertEquals(status.code, 0, await rest);
      // A third run finds every job finished, intact, and identical.
      const third = await reproduce(
        ["--config", configPath, "--out", join(dir, "a")],
        env.TEXT_AS_IMAGE_DATA,
      );
      assertEquals(third.code, 0, third.stderr);
      assertStringIncludes(third.stderr, "darknet_reference@42: result cached");
      assertStringIncludes(third.stderr, "logistic-regression: result cached");
      assert(!(await rest).includes("damaged") && !third.stderr.includes("damaged"));
      const lockFiles = [...Deno.readDirSync(join(dir, "cache", "jobs"))].filter((e) =>
        e.name.endsWith(".lock")
      );
      assertEquals(lockFiles, [], "locks are released");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "reproduce --config layouts: every feature map and discretisation runs end to end",
  ignore: archive.ignore || models.ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "layouts-test-" });
    try {
      // The shipped config, made tiny; pyDeepInsight's geometry and cosine t-SNE on top.
      const run = await reproduce([
        "--config",
        "layouts",
        "--train",
        "48",
        "--test",
        "24",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--set",
        "image.pixels=24",
        "--set",
        "image.tsne.nIter=250",
        "--set",
        "data.validationFraction=0.25",
        "--set",
        "image.compat=pydeepinsight",
        "--set",
        "image.tsne.metric=cosine",
        "--out",
        dir,
      ], join(dir, "data"));
      assertEquals(run.code, 0, run.stderr.slice(-3000));
      const results = JSON.parse(
        await Deno.readTextFile(join(dir, "layouts", "metrics.json")),
      ) as ExperimentResults;
      const maps = ["tsne", "pca", "kpca", "umap", "random"];
      const grids = ["bin", "qtb", "lsa"];
      assertEquals(
        results.variants.map((v) => [v.images.featureExtractor, v.images.discretization]),
        maps.flatMap((m) => grids.map((g) => [m, g])),
      );
      const empty = (m: string, g: string) =>
        results.variants.find((v) =>
          v.images.featureExtractor === m && v.images.discretization === g
        )!.images.emptyPixels;
      for (const m of maps) {
        // 1,536 features on 576 pixels: quantile binning and lsa spread them over the grid.
        assert(
          empty(m, "qtb") < empty(m, "bin"),
          `${m}: qtb ${empty(m, "qtb")}, bin ${empty(m, "bin")}`,
        );
        assertEquals(empty(m, "lsa"), 0, m);
      }
      for (const v of results.variants) {
        assertEquals(v.models.map((x) => x.id), [
          "logistic-regression",
          "darknet_reference",
          "ablation-permuted-pixels-darknet_reference",
        ]);
      }
      const report = await Deno.readTextFile(join(dir, "layouts", "report.md"));
      assertStringIncludes(
        report,
        "24×24, kernel PCA map (pydeepinsight geometry), qtb discretisation",
      );
      assertEquals(results.config.image.tsne.metric, "cosine");
      assertStringIncludes(report, "24×24, random layout map (pydeepinsight geometry), lsa");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "reproduce --config channels / representations: multi-channel layouts run end to end",
  ignore: archive.ignore || models.ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "channels-test-" });
    const tiny = [
      "--train",
      "48",
      "--test",
      "24",
      "--seeds",
      "1",
      "--epochs",
      "1",
      "--set",
      "image.pixels=24",
      "--set",
      "image.tsne.nIter=250",
      "--set",
      "data.validationFraction=0.25",
      "--out",
      dir,
    ];
    try {
      const channels = await reproduce(["--config", "channels", ...tiny], join(dir, "data"));
      assertEquals(channels.code, 0, channels.stderr.slice(-3000));
      const c = JSON.parse(
        await Deno.readTextFile(join(dir, "channels", "metrics.json")),
      ) as ExperimentResults;
      assertEquals(c.variants.map((v) => v.images.channels?.count ?? 1), [1, 1, 2, 2]);
      for (const v of c.variants) {
        assertEquals(v.embedding.features, 1024);
        // The darknet slice sees 3 channels either way; every planned model ran.
        assertEquals(v.models.map((m) => m.runs.length), [1, 1, 1]);
      }
      // lsa on the states' 512 dimensions: each its own pixel of 576, none shared.
      const statesLsa = c.variants.find((v) =>
        v.label.includes("states") && v.label.includes("lsa")
      )!;
      assertEquals(statesLsa.images.emptyPixels, 576 - 512);
      const report = await Deno.readTextFile(join(dir, "channels", "report.md"));
      assertStringIncludes(report, "hidden states as channels (2 states");

      const several = await reproduce(["--config", "representations", ...tiny], join(dir, "data"));
      assertEquals(several.code, 0, several.stderr.slice(-3000));
      const r = JSON.parse(
        await Deno.readTextFile(join(dir, "representations", "metrics.json")),
      ) as ExperimentResults;
      const layouts = ["tsne/bin", "pca/bin", "kpca/bin"];
      assertEquals(
        r.variants.map((v) => v.images.channels),
        (["average", "stacked"] as const).map((combine) => ({
          mode: "representations" as const,
          count: 3,
          combine,
          layouts,
        })),
      );
      // Averaged: one classifier per layout, and the model itself their mean probability.
      const [average, stacked] = r.variants;
      const perLayout = (id: string) => [id, ...[1, 2, 3].map((k) => `${id}.layout${k}`)];
      assertEquals(average.models.map((m) => m.id), [
        "logistic-regression",
        ...perLayout("darknet_reference"),
        ...perLayout("ablation-permuted-pixels-darknet_reference"),
      ]);
      assertEquals(average.ablations.map((a) => [a.model, a.against]), [
        ["ablation-permuted-pixels-darknet_reference", "darknet_reference"],
      ]);
      assertEquals(stacked.models.map((m) => m.id), [
        "logistic-regression",
        "darknet_reference",
        "ablation-permuted-pixels-darknet_reference",
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
