/**
 * Experiment configs: every validation error case says what is wrong (with the nearest valid
 * name where there is one), overrides merge and validate, every shipped config loads and
 * plans the models a hand count expects, sweeps expand to every combination, and nothing
 * machine-specific reaches a results folder.
 */
import { assert, assertEquals, assertStringIncludes, assertThrows } from "@std/assert";
import { join } from "node:path";
import { projectRoot } from "../lib/config.ts";
import {
  architectureOf,
  averagedLayouts,
  ConfigError,
  configFrom,
  differencesFromPaper,
  expandSweep,
  jobName,
  loadExperimentConfig,
  mergeConfig,
  paperSettings,
  planModels,
  portableConfig,
  shippedConfigs,
  validateConfig,
} from "../lib/experiment/mod.ts";
import { editDistance, nearest } from "../lib/experiment/schema.ts";
import { BACKBONES, loadableBackbones } from "../lib/vision/mod.ts";
import { PAPER_TRAINING, TRAINING_DEFAULTS } from "../lib/train/mod.ts";

const base = { schemaVersion: 2, name: "t" };

function problemsOf(config: unknown): string[] {
  try {
    validateConfig(config, "test config");
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

function assertProblem(config: unknown, ...fragments: string[]) {
  const problems = problemsOf(config);
  const hit = problems.find((p) => fragments.every((f) => p.includes(f)));
  assert(
    hit,
    `expected a problem with ${JSON.stringify(fragments)}, got ${JSON.stringify(problems)}`,
  );
}

Deno.test("edit distance and nearest name", () => {
  assertEquals(editDistance("kitten", "sitting"), 3);
  assertEquals(editDistance("", "abc"), 3);
  assertEquals(nearest("trainsize", ["trainSize", "testSize"]), "trainSize");
  assertEquals(nearest("zzzzzz", ["trainSize", "testSize"]), undefined);
});

Deno.test("config validation: each error case names the field and what it accepts", () => {
  assertEquals(problemsOf(base), []);
  assertProblem({ ...base, data: { trainsize: 10 } }, "data.trainsize", `did you mean "trainSize"`);
  assertProblem({ ...base, imgae: {} }, "imgae", `did you mean "image"`);
  assertProblem({ ...base, data: { trainSize: "5000" } }, "data.trainSize", "integer", "string");
  assertProblem({ ...base, data: { trainSize: 1.5 } }, "data.trainSize", "integer");
  assertProblem({ ...base, image: { pixels: 2 } }, "image.pixels", "≥ 4");
  assertProblem({ ...base, data: { validationFraction: 0.95 } }, "validationFraction", "≤ 0.9");
  assertProblem(
    { ...base, image: { discretization: "lsb" } },
    "discretization",
    `did you mean "lsa"`,
  );
  assertProblem(
    { ...base, models: { backbones: ["vgg91"] } },
    "models.backbones[0]",
    `did you mean "vgg19"`,
  );
  // An unknown backbone far from any name lists the registered ones.
  assertProblem({ ...base, models: { backbones: ["lenet"] } }, "lenet", "resnet50", "darknet_tiny");
  assertProblem(
    { ...base, embedding: { encoder: "use-lite", model: "Xenova/bert-base-uncased" } },
    "embedding.model",
    `"bert" only`,
  );
  assertProblem(
    { ...base, models: { normalization: "batch" } },
    "models.normalization",
    "end-to-end",
  );
  // The TF-IDF baseline: off unless asked for; its options are checked like the others.
  assertEquals(configFrom(base).baselines.tfidf, false);
  assertEquals(configFrom({ ...base, baselines: { tfidf: true } }).baselines.tfidf, {
    l2: [0.01, 0.1, 1, 10, 100, 1000, 10000],
    vectorizer: {},
  });
  assertProblem(
    { ...base, baselines: { tfidf: { vectorizer: { minDF: 2 } } } },
    "baselines.tfidf",
    `did you mean "minDf"`,
  );
  // Layout options: combinations that cannot work are refused with the way out.
  assertProblem(
    { ...base, image: { compat: "pydeepinsight-2021", discretization: "qtb" } },
    "image.compat",
    `"bin"`,
  );
  assertProblem({ ...base, image: { kernelPca: { gamma: 1 } } }, "image.kernelPca", `"kpca"`);
  assertProblem({ ...base, image: { featureExtractor: "tnse" } }, `did you mean "tsne"`);
  assertProblem({ ...base, image: { channels: "states" } }, "image.channels", "[1, 2]");
  assertProblem(
    {
      ...base,
      embedding: { layers: [1, 2] },
      image: { channels: "states" },
      models: { features: "end-to-end" },
    },
    "image.channels",
    `"cache"`,
  );
  assertProblem({ ...base, image: { stateFit: 1 } }, "image.stateFit", `"states"`);
  assertProblem(
    { ...base, embedding: { layers: [1, 2] }, image: { channels: "states", stateFit: 2 } },
    "image.stateFit",
    "2 states",
  );
  assertProblem({ ...base, image: { representations: [] } }, "image.representations");
  assertEquals(
    problemsOf({
      ...base,
      embedding: { layers: [1, 2] },
      image: { channels: "states", stateFit: 1, discretization: "lsa" },
    }),
    [],
  );
  assertProblem({ ...base, models: { training: { seed: 3 } } }, "models.training.seed", "seeds");
  assertProblem({ ...base, baselines: { mlp: { seed: 3 } } }, "baselines.mlp.seed", "seeds");
  assertProblem({ ...base, models: { training: { lrHead: "official" } } }, "lrHead", `"paper"`);
  assertProblem({ ...base, models: { training: { patience: 0 } } }, "patience");
  assertProblem({ ...base, seeds: [] }, "seeds", "at least 1");
  assertProblem({ ...base, seeds: [1, 1] }, "seeds", "distinct");
  assertProblem({ ...base, name: "a b" }, "name");
  assertProblem({ ...base, name: ".." }, "name", "folder above");
  assertProblem({ schemaVersion: 2 }, "name: required");
  assertProblem(
    { ...base, sweep: { "data.trainsize": [1, 2] } },
    "sweep.data.trainsize",
    "data.trainSize",
  );
  assertProblem({ ...base, sweep: { "data.trainSize": [1000, "x"] } }, "sweep.data.trainSize[1]");
  assertProblem({ ...base, sweep: { seeds: [[1]] } }, "sweep.seeds", "cannot be swept");
  assertProblem({ ...base, sweep: { "data.trainSize": [] } }, "sweep.data.trainSize", "at least 1");
  // Every problem at once, not just the first.
  assertEquals(problemsOf({ ...base, data: { trainsize: 1 }, image: { pixels: "50" } }).length, 2);
});

Deno.test("config validation: an older config says what changed", () => {
  const problems = problemsOf({ name: "old", models: { seed: 42, epochs: 3 } });
  assertEquals(problems.length, 1);
  for (const fragment of ["format 1", "seeds", "models.training", "patience", "ablations.seed"]) {
    assertStringIncludes(problems[0], fragment);
  }
  assertProblem({ ...base, schemaVersion: 99 }, "newer");
  assertThrows(() => validateConfig([1, 2]), ConfigError, "JSON object");
});

Deno.test("defaults: one set, the estimators' own", () => {
  const cfg = configFrom(base);
  const { seed: _s, ...training } = TRAINING_DEFAULTS;
  assertEquals(cfg.models.training, training);
  assertEquals(cfg.seeds, [42]);
  assertEquals(cfg.models.backbones, loadableBackbones());
  assertEquals(cfg.baselines.mlp, {});
  // Overrides merge into nested objects and replace arrays and values.
  const o = configFrom(base, {
    models: { training: { epochs: 4 } },
    seeds: [1, 2],
    data: { trainSize: 100 },
  });
  assertEquals(o.models.training.epochs, 4);
  assertEquals(o.models.training.lrHead, TRAINING_DEFAULTS.lrHead);
  assertEquals(o.seeds, [1, 2]);
  assertEquals(o.data.testSize, 5000);
  assertEquals(mergeConfig({ a: [1, 2], b: { c: 1, d: 2 } }, { a: [3], b: { d: 5 } }), {
    a: [3],
    b: { c: 1, d: 5 },
  });
  assertThrows(() => configFrom(base, { data: { trainSize: -1 } }), ConfigError, "trainSize");
});

Deno.test("shipped configs: each loads, and its plan has the hand-counted jobs", async () => {
  const names = shippedConfigs();
  for (const name of ["paper", "quick", "recommended", "use-lite-5k"]) assert(names.includes(name));
  for (const name of names) {
    const cfg = await loadExperimentConfig(name);
    assertEquals(cfg.origin, name);
    const plan = planModels(cfg);
    const seeds = cfg.seeds.length;
    const ablations = Number(cfg.ablations.permutedPixels) + Number(cfg.ablations.randomBackbone);
    // Averaged layouts (image.representations): one classifier per layout and image model.
    const layouts = Math.max(1, averagedLayouts(cfg).length);
    const expected = (cfg.baselines.logistic ? 1 : 0) + (cfg.baselines.tfidf ? 1 : 0) +
      (cfg.baselines.mlp ? seeds : 0) + (cfg.models.backbones.length + ablations) * seeds * layouts;
    assertEquals(plan.length, expected, name);
    assertEquals(new Set(plan.map(jobName)).size, plan.length, `${name}: job names are unique`);
  }
  const quick = planModels(await loadExperimentConfig("quick")).map(jobName);
  assertEquals(quick, [
    "logistic-regression",
    "mlp@42",
    "darknet_reference@42",
    "mobilenet_v1@42",
    "ablation-permuted-pixels-darknet_reference@42",
    "ablation-random-init-darknet_reference@42",
  ]);
  const committed = await loadExperimentConfig("use-lite-5k");
  assertEquals(committed.seeds, [42, 43, 44]);
  // 1 logistic + 3 MLP + (every loadable backbone + 2 ablations) × 3 seeds.
  assertEquals(planModels(committed).length, 1 + 3 + (loadableBackbones().length + 2) * 3);
  // Every image model of a seed carries the whole training options with that seed.
  for (const p of planModels(committed)) {
    if (p.family === "image") {
      assertEquals(p.options, { ...committed.models.training, seed: p.seed });
    }
  }
});

Deno.test("paper.json is the paper's setup and reports no difference from it", async () => {
  const paper = await loadExperimentConfig("paper");
  const { seed: _s, ...training } = PAPER_TRAINING;
  assertEquals(paper.models.training, training);
  assertEquals(paper.embedding.layers, [6, 7, 8, 9, 10, 11]);
  assertEquals(paper.image.fitOn, "all");
  assertEquals(paper.models.upsample, 3);
  assertEquals(paper.models.normalization, "batch");
  // The paper's own five networks, read from torchvision's checkpoints, with its heads and rates.
  assertEquals(paper.models.backbones, paperSettings().models.backbones);
  for (const name of paper.models.backbones) {
    assertEquals(BACKBONES[name].torchvision, name);
    assertEquals(architectureOf(name).name, name);
  }
  assertEquals(differencesFromPaper(paper), []);
  const recommended = await loadExperimentConfig("recommended");
  const differences = differencesFromPaper(recommended).join("\n");
  for (const path of ["data.scheme", "image.fitOn", "models.upsample", "models.training.lrHead"]) {
    assertStringIncludes(differences, path);
  }
});

Deno.test("a config file: problems name the file; an unknown name lists the shipped ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "bad.json");
    await Deno.writeTextFile(path, JSON.stringify({ ...base, data: { tranSize: 10 } }));
    const error = await loadExperimentConfig(path).then(() => undefined, (e) => e as Error);
    assert(error instanceof ConfigError);
    assertStringIncludes(error.message, path);
    assertStringIncludes(error.message, `did you mean "trainSize"`);
    await Deno.writeTextFile(path, "{ not json");
    const json = await loadExperimentConfig(path).then(() => undefined, (e) => e as Error);
    assertStringIncludes(json!.message, "not valid JSON");
    const missing = await loadExperimentConfig("quik").then(() => undefined, (e) => e as Error);
    assertStringIncludes(missing!.message, "quick");
    assertStringIncludes(missing!.message, `did you mean "quick"`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweeps: every combination, labelled, the swept fields set", () => {
  const cfg = configFrom({
    ...base,
    sweep: { "data.trainSize": [100, 200], "image.discretization": ["bin", "lsa"] },
  });
  const variants = expandSweep(cfg);
  assertEquals(variants.map((v) => v.label), [
    "data.trainSize=100,image.discretization=bin",
    "data.trainSize=100,image.discretization=lsa",
    "data.trainSize=200,image.discretization=bin",
    "data.trainSize=200,image.discretization=lsa",
  ]);
  assertEquals(variants.map((v) => [v.config.data.trainSize, v.config.image.discretization]), [
    [100, "bin"],
    [100, "lsa"],
    [200, "bin"],
    [200, "lsa"],
  ]);
  for (const v of variants) {
    assertEquals(v.config.sweep, {});
    assertEquals(v.config.data.testSize, 5000);
  }
  assertEquals(expandSweep(configFrom(base)).map((v) => v.label), [""]);
  // A swept features mode re-derives the normalisation that follows it.
  const e2e = expandSweep(
    configFrom({ ...base, sweep: { "models.features": ["cache", "end-to-end"] } }),
  );
  assertEquals(e2e.map((v) => v.config.models.normalization), ["train", "batch"]);
});

Deno.test("portable config: no absolute paths reach a results folder", () => {
  const cfg = configFrom({
    ...base,
    data: { source: join(projectRoot, "..", "shared", "data", "x.tar.gz") },
    cacheDir: "/tmp/somewhere/cache",
  });
  const portable = JSON.stringify(portableConfig(cfg));
  assert(!portable.includes("/tmp/somewhere"), portable);
  assert(!portable.includes(projectRoot), portable);
  assertStringIncludes(portable, "<shared>/data/x.tar.gz");
  const url = configFrom({ ...base, data: { source: "https://example.org/a.tar.gz" } });
  assertEquals(portableConfig(url).data.source, "https://example.org/a.tar.gz");
});
