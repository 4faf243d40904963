/**
 * `loadRun` / `predict` against a tiny real run (real IMDB reviews, real USE-lite, a real
 * backbone, 32 train / 24 test reviews, 12×12 images): the run's trained models, loaded back
 * from its results folder and caches, give on the run's own test texts the probabilities the
 * run stored for its test rows. The expectation is independent of `predict.ts`: the stored
 * jobs' `testProba`, read straight from the job files the run wrote.
 *
 * Tolerances (absolute, on probabilities):
 * - logistic regression and the MLP: 1e-5. Their weights are stored exactly; the only
 *   difference is the embeddings, computed here for the 24 test texts in one call and in the
 *   run for all 64 texts in other batches (float32 rounding of the encoder, ~1e-7).
 * - image models: 1e-3 (the issue allows 1e-2). The run's backbone features were computed
 *   in other batches (and workers) and stored as float16 (relative error ≤ 2⁻¹¹); `predict`
 *   rounds its features to float16 too, so a value that differs by float32 rounding can land
 *   one float16 step (≤ 5e-4 relative) apart, which the conv stack and head carry to the
 *   probability. On one machine the differences are 0; the largest seen is printed.
 *
 * `LoadedRun.explain` (Grad-CAM of one image model for one text) is checked on every image
 * model of the same runs against `gradCam` called here on a classifier read straight from the
 * job's model file, with the features `explain` reports and the geometry taken from the
 * config; those features are the ones `predict` uses (the probability through them equals
 * `predict`'s for the text within the image tolerance above).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { shared } from "./_shared.ts";
import { CorruptCacheError, sealJson } from "../lib/integrity.ts";
import { decodeModel, encodeModel } from "../lib/experiment/results.ts";
import type { TrainedModel } from "../lib/experiment/mod.ts";
import { configFrom, loadSplit, runExperiment } from "../lib/experiment/mod.ts";
import type { ExperimentResults, ResolvedConfig, StoredJob } from "../lib/experiment/mod.ts";
import { loadRun, MissingRunDataError } from "../lib/experiment/predict.ts";
import type { LoadedRun, ModelPrediction } from "../lib/experiment/predict.ts";
import { readJobModel } from "../lib/experiment/results.ts";
import { gradCam } from "../lib/explain/mod.ts";
import { ImageClassifier } from "../lib/train/mod.ts";

const imdb = shared("data", "aclImdb_v1-labelled.tar.gz");
const darknet = shared("models", "darknet_reference", "model.json");

const EMBEDDING_TOLERANCE = 1e-5;
const IMAGE_TOLERANCE = 1e-3;

/** Writes `results/<name>/` as `writeResults` does, without figures and report. */
async function writeCommitted(resultsDir: string, results: ExperimentResults): Promise<void> {
  const dir = join(resultsDir, results.name);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(results.config, null, 2));
  await Deno.writeTextFile(join(dir, "metrics.json"), JSON.stringify(results));
}

/** Every stored job of a run, by job name, with its file. */
async function storedJobs(
  cfg: ResolvedConfig,
): Promise<Map<string, { job: StoredJob; path: string }>> {
  const out = new Map<string, { job: StoredJob; path: string }>();
  const dir = join(cfg.cacheDir, "jobs");
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.endsWith(".json")) continue;
    const path = join(dir, entry.name);
    const job = JSON.parse(await Deno.readTextFile(path)).job as StoredJob;
    out.set(job.job, { job, path });
  }
  return out;
}

/**
 * Checks `run.explain` for the first test text on every image model of the run: a CAM on the
 * layout grid, non-negative, finite, scaled to at most 1, equal to `gradCam` called directly.
 */
async function checkExplain(
  run: LoadedRun,
  cfg: ResolvedConfig,
  jobs: Map<string, { job: StoredJob; path: string }>,
  text: string,
  predictions: ModelPrediction[],
): Promise<void> {
  const images = run.models.filter((m) => m.family === "image");
  assert(images.length > 0, "the run has image models");
  for (const m of images) {
    const e = await run.explain(text, { model: m.job });
    assertEquals([e.model, e.seed, e.job], [m.model, m.seed, m.job]);
    const side = cfg.image.pixels;
    assertEquals(e.cam.shape, [side, side]);
    assertEquals(e.image.shape, [side, side]);
    assertEquals(e.cam.data.length, side * side);
    assertEquals(e.result.rows, "unseen");
    assert(e.cam.data.every((v) => Number.isFinite(v) && v >= 0 && v <= 1), `${m.job}: CAM range`);
    // The same map from gradCam on the job's own classifier and the features explain used.
    const { job, path } = jobs.get(m.job)!;
    const model = await readJobModel(path, job);
    assert(model.family === "image");
    const clf = ImageClassifier.fromState(model.state);
    try {
      const direct = gradCam(clf, e.features, {
        rows: "unseen",
        geometry: { imageShape: [side, side], upsample: cfg.models.upsample },
      });
      assertEquals(e.features.shape.slice(1), model.state.featureShape);
      assertEquals(direct.cams.shape, [1, side, side]);
      assertEquals(Array.from(e.cam.data), Array.from(direct.cams.data));
      assertEquals(e.target, direct.targets[0]);
      assertEquals(e.probability, clf.predictProba(e.features)[0]);
      assertEquals(e.target, e.probability > 0.5 ? 1 : 0);
    } finally {
      clf.dispose();
    }
    // The features are predict's: the same probability (one text alone here, 24 there).
    const p = predictions.find((q) => `${q.model}@${q.seed}` === m.job)!;
    const delta = Math.abs(p.probabilities[0] - e.probability);
    assert(delta <= IMAGE_TOLERANCE, `${m.job}: explain's probability differs by ${delta}`);
    console.log(
      `${cfg.name} ${m.job}: explain P ${e.probability.toFixed(4)}, max CAM ${
        Math.max(...e.cam.data).toFixed(3)
      }, |Δ| to predict ${delta.toExponential(2)}`,
    );
  }
  // The default is an image model on intact pixels; the other class gives the other target.
  const first = await run.explain(text);
  assertEquals(first.job, images.find((m) => !m.model.includes("permuted"))?.job ?? images[0].job);
  const other = await run.explain(text, { model: first.job, target: first.target === 1 ? 0 : 1 });
  assertEquals(other.target, first.target === 1 ? 0 : 1);
  await assertRejects(() => run.explain("  "), Error, "text 0 is empty");
  const nonImage = run.models.find((m) => m.family !== "image");
  if (nonImage) {
    await assertRejects(
      () => run.explain(text, { model: nonImage.model }),
      Error,
      "Grad-CAM explains image classifiers",
    );
  }
}

/** Runs `raw`, writes its results folder, and checks `predict` on its test texts. */
async function runAndCompare(
  raw: Record<string, unknown>,
  resultsDir: string,
): Promise<{ cfg: ResolvedConfig; jobs: Map<string, { job: StoredJob; path: string }> }> {
  const cfg = configFrom(raw);
  const results = await runExperiment(cfg, { log: () => {} });
  await writeCommitted(resultsDir, results);
  const jobs = await storedJobs(cfg);
  const texts = (await loadSplit(cfg)).test.map((r) => r.text);
  const run = await loadRun(cfg.name, { resultsDir });
  try {
    assertEquals(run.models.map((m) => m.job).sort(), [...jobs.keys()].sort());
    const predictions = await run.predict(texts);
    assertEquals(predictions.length, jobs.size);
    for (const p of predictions) {
      const name = p.seed === null ? p.model : `${p.model}@${p.seed}`;
      const { job, path } = jobs.get(name)!;
      assert(job.model, `${name}: the job names its model file`);
      const stat = await Deno.stat(join(path, "..", job.model.file));
      assertEquals(stat.size, job.model.bytes);
      const expected = job.result.testProba;
      assertEquals(p.probabilities.length, expected.length);
      const tolerance = job.plan.family === "image" ? IMAGE_TOLERANCE : EMBEDDING_TOLERANCE;
      let largest = 0;
      for (let i = 0; i < expected.length; i++) {
        largest = Math.max(largest, Math.abs(p.probabilities[i] - expected[i]));
      }
      console.log(`${cfg.name} ${name}: largest |Δ| ${largest.toExponential(2)}`);
      // Not a constant: the texts get different probabilities (the comparison means something).
      assert(Math.max(...expected) - Math.min(...expected) > 1e-4, `${name}: constant predictions`);
      assert(largest <= tolerance, `${name}: |Δ| ${largest} > ${tolerance}`);
    }
    await checkExplain(run, cfg, jobs, texts[0], predictions);
    await assertRejects(() => run.predict(["a fine film", "  "]), Error, "text 1 is empty");
    await assertRejects(() => run.predict([]), Error, "at least one text");
  } finally {
    await run.dispose();
  }
  return { cfg, jobs };
}

Deno.test("a model file gives back every array exactly, and its array table is checked", () => {
  const models: TrainedModel[] = [
    {
      family: "logistic",
      parameters: {
        coef: Float64Array.of(0.1, -2e-300, Math.PI),
        intercept: -0.5,
        l2: 10,
        standardize: true,
      },
    },
    {
      family: "mlp",
      state: {
        config: {
          hidden: [2],
          dropout: 0.3,
          lr: 1e-3,
          weightDecay: 1e-4,
          epochs: 3,
          batchSize: 64,
          seed: 7,
        },
        selectedEpoch: 2,
        mean: Float32Array.of(1, 2, 3),
        scale: Float32Array.of(0.5, 1, 2),
        layers: [
          { kernel: new Float32Array(6).fill(0.25), shape: [3, 2], bias: Float32Array.of(1, -1) },
          { kernel: Float32Array.of(1, 2, 3, 4), shape: [2, 2], bias: Float32Array.of(0, 0) },
        ],
      },
    },
  ];
  for (const model of models) {
    const { ref, bytes } = encodeModel(model, "m.model.bin");
    for (const e of ref.arrays) assertEquals(e.offset % (e.dtype === "float64" ? 8 : 4), 0);
    assertEquals(decodeModel(ref, bytes, "m.model.bin"), model);
    // The array table is checked against the file: an entry past its end is refused.
    const bad = {
      ...ref,
      arrays: ref.arrays.map((e) => ({ ...e, offset: e.offset + bytes.length })),
    };
    let refused = false;
    try {
      decodeModel(bad, bytes, "m.model.bin");
    } catch (e) {
      refused = e instanceof CorruptCacheError && (e as Error).message.includes("m.model.bin");
    }
    assert(refused, "an array outside the file is refused, naming it");
  }
});

async function withDataDir(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir();
  const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
  Deno.env.set("TEXT_AS_IMAGE_DATA", root);
  try {
    await fn(root);
  } finally {
    if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
    else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
    await Deno.remove(root, { recursive: true });
  }
}

const tiny = {
  schemaVersion: 2,
  data: { source: imdb.path, trainSize: 32, testSize: 24, validationFraction: 0.25 },
  image: { pixels: 12, tsne: { perplexity: 4, nIter: 300 } },
  seeds: [1],
};

Deno.test({
  name: "loadRun/predict: every model of a tiny run gives the run's own test predictions",
  ignore: imdb.ignore || darknet.ignore,
  fn: () =>
    withDataDir(async (root) => {
      const resultsDir = join(root, "results");
      const { cfg, jobs } = await runAndCompare({
        ...tiny,
        name: "tiny-predict",
        models: { backbones: ["darknet_reference"], training: { epochs: 2 }, workers: 2 },
        baselines: {
          logistic: { l2: [0.1, 10] },
          mlp: { epochs: 3, hidden: [16] },
          // The TF-IDF baseline reads the raw texts: predict must hand it the texts.
          tfidf: { l2: [0.1, 10], vectorizer: { minDf: 1 } },
        },
        ablations: { backbone: "darknet_reference" },
      }, resultsDir);
      assertEquals(jobs.size, 6);
      assertEquals(jobs.get("tfidf-logistic")?.job.model?.family, "tfidf");

      // Only some models.
      const some = await loadRun(cfg.name, { resultsDir, models: ["mlp"] });
      assertEquals(some.models.map((m) => m.job), ["mlp@1"]);
      await some.dispose();
      await assertRejects(
        () => loadRun(cfg.name, { resultsDir, models: ["mlpp"] }),
        Error,
        `did you mean "mlp"`,
      );

      // A damaged model file is named, with the command that makes it again.
      const logistic = jobs.get("logistic-regression")!;
      const modelFile = join(logistic.path, "..", logistic.job.model!.file);
      const bytes = await Deno.readFile(modelFile);
      bytes[0] ^= 1;
      await Deno.writeFile(modelFile, bytes);
      const damaged = await assertRejects(
        () => loadRun(cfg.name, { resultsDir }),
        MissingRunDataError,
      );
      assertStringIncludes(damaged.message, modelFile);
      assertStringIncludes(damaged.message, "--only logistic-regression");

      // A job stored before models were kept: say to delete it and rerun the job.
      const { model: _model, ...old } = logistic.job;
      await Deno.writeTextFile(logistic.path, sealJson({ job: old }));
      const legacy = await assertRejects(
        () => loadRun(cfg.name, { resultsDir }),
        MissingRunDataError,
      );
      assertStringIncludes(legacy.message, "before models were kept");
      assertStringIncludes(legacy.message, "after deleting the job files");

      // No data folder (a fresh clone): the command that recreates it and a time estimate.
      const empty = await Deno.makeTempDir({ dir: root });
      const missing = await assertRejects(
        () => loadRun(cfg.name, { resultsDir, cacheDir: join(empty, "tiny-predict") }),
        MissingRunDataError,
      );
      assertStringIncludes(missing.message, "deno task reproduce --config ");
      assertStringIncludes(missing.message, join("tiny-predict", "config.json"));
      assert(/under a minute|about \d+ (h|min)/.test(missing.message), missing.message);
      await assertRejects(() => loadRun("no-such-run", { resultsDir }), Error, "no committed run");
    }),
});

Deno.test({
  name: "loadRun/predict: an end-to-end image model (backbone per batch, float32)",
  ignore: imdb.ignore || darknet.ignore,
  fn: () =>
    withDataDir(async (root) => {
      const { jobs } = await runAndCompare({
        ...tiny,
        name: "tiny-predict-e2e",
        models: {
          backbones: ["darknet_reference"],
          training: { epochs: 2 },
          workers: 1,
          features: "end-to-end",
          normalization: "train",
        },
        baselines: { logistic: false, mlp: false },
        ablations: { backbone: "darknet_reference", permutedPixels: false, randomBackbone: false },
      }, join(root, "results"));
      assertEquals([...jobs.keys()], ["darknet_reference@1"]);
    }),
});
