/**
 * The whole experiment on a tiny configuration (real IMDB reviews, real USE-lite, a real
 * backbone, tiny sizes): every model, baseline and ablation gets metrics on the same test
 * rows, and a second call is served from the caches with identical results.
 */
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { shared } from "./_shared.ts";
import { permutePixels, pixelPermutation, runExperiment } from "../lib/eval/mod.ts";
import type { ExperimentConfig } from "../lib/eval/mod.ts";

const imdb = shared("data", "aclImdb_v1-labelled.tar.gz");
const darknet = shared("models", "darknet_reference", "model.json");

Deno.test("permutePixels moves every image's pixels by the same permutation", () => {
  const images = {
    data: Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => i),
    shape: [2, 3, 4] as [number, number, number],
  };
  const perm = pixelPermutation(12, 3);
  assertEquals([...perm].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i));
  const out = permutePixels(images, 3);
  for (let i = 0; i < 2; i++) {
    for (let p = 0; p < 12; p++) assertEquals(out.data[i * 12 + p], images.data[i * 12 + perm[p]]);
  }
  assertEquals(out.shape, images.shape);
});

Deno.test({
  name: "runExperiment: every model on the same test rows, then again from the caches",
  ignore: imdb.ignore || darknet.ignore,
  fn: async () => {
    const root = await Deno.makeTempDir();
    const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
    Deno.env.set("TEXT_AS_IMAGE_DATA", root);
    try {
      const config: ExperimentConfig = {
        name: "tiny",
        data: { source: imdb.path, trainSize: 32, testSize: 24, validationFraction: 0.25 },
        image: { pixels: 12, tsne: { perplexity: 4, nIter: 300 } },
        models: { backbones: ["darknet_reference"], epochs: 2, workers: 2 },
        baselines: { logistic: { l2: [0.1, 10] }, mlp: { epochs: 3, hidden: [16] } },
        ablations: { backbone: "darknet_reference" },
      };
      const lines: string[] = [];
      const first = await runExperiment(config, { log: (l) => lines.push(l) });
      assertEquals(first.data, {
        scheme: "standard",
        train: 32,
        validation: 8,
        test: 24,
        testPositives: 12,
      });
      assertEquals(first.models.map((m) => m.name), [
        "logistic-regression",
        "mlp",
        "darknet_reference",
        "ablation-permuted-pixels-darknet_reference",
        "ablation-random-init-darknet_reference",
      ]);
      for (const m of first.models) {
        const t = m.metrics.test;
        assertEquals(t.n, 24);
        const c = t.confusion;
        assertEquals(c.tp + c.fn, 12);
        assertAlmostEquals(t.accuracy, (c.tp + c.tn) / 24, 1e-12);
        assert(t.accuracyCI95[0] <= t.accuracy && t.accuracy <= t.accuracyCI95[1]);
        assert(m.params.trainable > 0);
        assertEquals(m.metrics.validation?.n, 8);
        if (m.input === "image") {
          assertEquals(m.history?.length, 2);
          assert(m.params.frozen > 0);
          assertEquals(m.backbone?.name.startsWith("darknet_reference"), true);
        }
      }
      const random = first.models.find((m) => m.name.startsWith("ablation-random"))!;
      assertEquals(random.backbone?.weights, "random");
      assertEquals(random.params.frozen, first.models[2].params.frozen);
      // Same test rows for all: the paired comparison counts only rows where they differ.
      const image = first.models[2];
      assert(image.versusLogistic !== undefined);

      // Second call: everything from the caches, identical metrics.
      const again: string[] = [];
      const second = await runExperiment(config, { log: (l) => again.push(l) });
      assert(again.some((l) => l.includes("(cached)")), again.join("\n"));
      assertEquals(again.filter((l) => l.includes("result cached")).length, 3, again.join("\n"));
      assertEquals(first.cachedModels, []);
      assertEquals(second.cachedModels, first.models.slice(2).map((m) => m.name));
      assertEquals(
        second.models.map((m) => m.metrics),
        first.models.map((m) => m.metrics),
      );
    } finally {
      if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
      else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
      await Deno.remove(root, { recursive: true });
    }
  },
});
