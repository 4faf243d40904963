/**
 * The experiment end to end on a tiny configuration (real IMDB reviews, real USE-lite, a
 * real backbone, tiny sizes, two seeds): every model on the same test rows, one logistic
 * fit and one fit per seed of every trained model, the permuted-pixel ablation using one
 * permutation for train, validation and test, random weights drawn per seed, a second call
 * served from the caches with identical results, `only` and `collect`.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertRejects,
} from "@std/assert";
import { join } from "node:path";
import { shared } from "./_shared.ts";
import { pixelPermutation } from "../lib/image/mod.ts";
import { configFrom, imagesFor, planModels, runExperiment } from "../lib/experiment/mod.ts";
import { rowsKeyOf } from "../lib/experiment/inputs.ts";
import type { DatasetInfo } from "../lib/data/mod.ts";
import type { ImagePlan } from "../lib/experiment/mod.ts";

const imdb = shared("data", "aclImdb_v1-labelled.tar.gz");
const darknet = shared("models", "darknet_reference", "model.json");

Deno.test("the permuted-pixel ablation moves train, validation and test pixels by one permutation", () => {
  const part = (offset: number) => ({
    data: Float32Array.from({ length: 3 * 4 * 5 }, (_, i) => i + offset),
    shape: [3, 4, 5] as [number, number, number],
  });
  const images = { train: part(0), validation: part(1000), test: part(2000) };
  const cfg = configFrom({ schemaVersion: 2, name: "p", seeds: [5], models: { backbones: [] } });
  const plan = planModels(cfg).find((p) => p.id.startsWith("ablation-permuted")) as ImagePlan;
  const permuted = imagesFor(plan, images);
  const perm = pixelPermutation(20, 5);
  assertNotEquals([...perm], Array.from({ length: 20 }, (_, i) => i));
  for (const name of ["train", "validation", "test"] as const) {
    const before = images[name].data, after = permuted[name].data;
    for (let n = 0; n < 3; n++) {
      for (let p = 0; p < 20; p++) assertEquals(after[n * 20 + p], before[n * 20 + perm[p]]);
    }
  }
  // Intact-layout models see the images as they are.
  const intact = planModels(cfg).find((p) => p.id.startsWith("ablation-random")) as ImagePlan;
  assert(imagesFor(intact, images) === images);
});

Deno.test("a relabelled table with the same texts gets other job keys; IMDB keys ignore labels", () => {
  const cfg = configFrom({ schemaVersion: 2, name: "k" });
  const embeddings = { data: new Float32Array(6), shape: [3, 2] as [number, number] };
  const split = (labels: number[], format: string) => ({
    train: [{ id: "a", text: "x", label: labels[0] as 0 | 1 }],
    validation: [{ id: "b", text: "y", label: labels[1] as 0 | 1 }],
    test: [{ id: "c", text: "z", label: labels[2] as 0 | 1 }],
    dataset: { format } as DatasetInfo,
  });
  const key = (labels: number[], format: string) =>
    rowsKeyOf(cfg, "layout", embeddings, split(labels, format));
  assertNotEquals(key([0, 1, 0], "csv"), key([1, 1, 0], "csv"));
  assertEquals(key([0, 1, 0], "csv"), key([0, 1, 0], "csv"));
  assertEquals(key([0, 1, 0], "imdb"), key([1, 1, 0], "imdb"));
});

Deno.test({
  name: "runExperiment: two seeds, same test rows, caches, only and collect",
  ignore: imdb.ignore || darknet.ignore,
  fn: async () => {
    const root = await Deno.makeTempDir();
    const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
    Deno.env.set("TEXT_AS_IMAGE_DATA", root);
    try {
      const raw = {
        schemaVersion: 2,
        name: "tiny",
        data: { source: imdb.path, trainSize: 32, testSize: 24, validationFraction: 0.25 },
        image: { pixels: 12, tsne: { perplexity: 4, nIter: 300 } },
        models: { backbones: ["darknet_reference"], training: { epochs: 2 }, workers: 2 },
        seeds: [1, 2],
        baselines: { logistic: { l2: [0.1, 10] }, mlp: { epochs: 3, hidden: [16] } },
        ablations: { backbone: "darknet_reference" },
      };
      const cfg = configFrom(raw);

      // Only one job: its result is stored, nothing else trains; collect lists the rest.
      const lines: string[] = [];
      const beforePartial = new Date().toISOString();
      const partial = await runExperiment(cfg, {
        only: ["darknet_reference@2"],
        log: (l) => lines.push(l),
      });
      assertEquals(partial.variants, []);
      // One job: its record and, beside it, its fitted model (see predict.ts).
      const jobFiles = [...Deno.readDirSync(join(cfg.cacheDir, "jobs"))].map((e) => e.name).sort();
      assertEquals(jobFiles.length, 2, jobFiles.join(", "));
      assert(jobFiles[0].startsWith("darknet_reference-s2-") && jobFiles[0].endsWith(".json"));
      assertEquals(jobFiles[1], jobFiles[0].replace(/\.json$/, ".model.bin"));
      await assertRejects(
        () => runExperiment(cfg, { collect: true, log: () => {} }),
        Error,
        "mlp@1",
      );

      const beforeFirst = new Date().toISOString();
      const first = await runExperiment(cfg, { log: (l) => lines.push(l) });
      const v = first.variants[0];
      assertEquals(v.data, {
        scheme: "standard",
        train: 32,
        validation: 8,
        test: 24,
        testPositives: 12,
      });
      assertEquals(v.models.map((m) => [m.id, m.runs.map((r) => r.seed)]), [
        ["logistic-regression", [null]],
        ["mlp", [1, 2]],
        ["darknet_reference", [1, 2]],
        ["ablation-permuted-pixels-darknet_reference", [1, 2]],
        ["ablation-random-init-darknet_reference", [1, 2]],
      ]);
      for (const m of v.models) {
        for (const r of m.runs) {
          const t = r.metrics.test;
          assertEquals(t.n, 24);
          assertEquals(t.confusion.tp + t.confusion.fn, 12);
          assertAlmostEquals(t.accuracy, (t.confusion.tp + t.confusion.tn) / 24, 1e-12);
          assertEquals(r.metrics.validation?.n, 8);
          if (m.input === "image") assertEquals(r.epochsRun, 2);
        }
        const mean = m.runs.reduce((s, r) => s + r.metrics.test.accuracy, 0) / m.runs.length;
        assertAlmostEquals(m.test.accuracy.mean, mean, 1e-12);
        if (m.id !== "logistic-regression") assert(m.versusLogistic, m.id);
      }
      // The job run alone earlier is read, not retrained; every other fit is this call's.
      const image = v.models.find((m) => m.id === "darknet_reference")!;
      assertEquals(image.runs.map((r) => r.provenance.computed), [true, false]);
      // Features: seed 2's job computed them; seed 1's found them in the feature cache. A
      // permutation per seed means new images, so new features for each seed.
      assertEquals(image.runs.map((r) => r.provenance.features), ["cache", "computed"]);
      const permuted = v.models.find((m) => m.id.startsWith("ablation-permuted"))!;
      assertEquals(permuted.runs.map((r) => r.provenance.features), ["computed", "computed"]);
      // Provenance per stage: the `only` call computed the embeddings, the layout and seed 2's
      // features; this call read them, and names that call (run, start time, code).
      const p = v.provenance!;
      assertEquals(p.reviews.records, 64);
      assertEquals(p.embeddings.computed, 0);
      assertEquals(p.embeddings.cached.length, 1);
      const made = p.embeddings.cached[0];
      assertEquals(made.units, 64);
      assert(made.maker, "the embedding chunks record their maker");
      assertEquals(made.maker.run, "tiny");
      assertEquals(made.maker.code, first.environment.code);
      assert(made.maker.at >= beforePartial && made.maker.at < beforeFirst, made.maker.at);
      assertEquals(p.layout, { computed: 0, cached: [{ maker: made.maker, units: 1 }] });
      const origins = image.runs.map((r) => r.provenance.featureOrigin);
      assertEquals(origins[0], { computed: 0, cached: [{ maker: made.maker, units: 64 }] });
      assertEquals(origins[1], { computed: 64, cached: [] });
      for (const r of permuted.runs) assertEquals(r.provenance.featureOrigin?.computed, 64);
      // Random weights are drawn per seed: named apart, so their features are cached apart.
      const random = v.models.find((m) => m.id.startsWith("ablation-random"))!;
      assertEquals(random.backbone?.name, "darknet_reference_random_init_s1");
      assertEquals(v.ablations.map((c) => c.model), [
        "ablation-permuted-pixels-darknet_reference",
        "ablation-random-init-darknet_reference",
      ]);
      assert(!JSON.stringify(first).includes(root), "no machine path in the results");

      // Second call: everything from the caches, identical metrics; collect works too.
      const secondStart = new Date().toISOString();
      const again: string[] = [];
      const second = await runExperiment(cfg, { log: (l) => again.push(l) });
      assert(
        again.some((l) => l.includes("layout read from the cache made by run tiny")),
        again.join("\n"),
      );
      assertEquals(second.variants[0].provenance?.embeddings.cached[0].maker, made.maker);
      assertEquals(again.filter((l) => l.includes("result cached")).length, 9, again.join("\n"));
      const metrics = (r: typeof first) =>
        r.variants[0].models.map((m) => m.runs.map((x) => x.metrics));
      assertEquals(metrics(second), metrics(first));
      assert(second.variants[0].models.every((m) => m.runs.every((r) => !r.provenance.computed)));
      // Jobs read from the cache count as used by this call (what `deno task cache` prunes by).
      const uses = JSON.parse(await Deno.readTextFile(join(cfg.cacheDir, "uses.json")));
      const jobUses = Object.entries(uses).filter(([path]) => path.includes("/jobs/"));
      assertEquals(jobUses.length, 9);
      for (const [path, at] of jobUses) assert((at as string) >= secondStart, path);
      const collected = await runExperiment(cfg, { collect: true, log: () => {} });
      assertEquals(metrics(collected), metrics(first));
    } finally {
      if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
      else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
      await Deno.remove(root, { recursive: true });
    }
  },
});
