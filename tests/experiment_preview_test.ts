/**
 * The preview of a committed run without its caches (`lib/experiment/preview.ts`), as on a
 * fresh clone: every test points `TEXT_AS_IMAGE_DATA` at an empty temporary folder, so the
 * run's embeddings and fitted layout are not there.
 *
 * - On the committed run `results/use-lite-5k` (real IMDB reviews from `../shared`, real
 *   USE-lite): the preview's layout is the committed file's (positions compared with the
 *   file's JSON, parsed here), its images are the layout's `transform` of the preview's
 *   embeddings (computed here with a transformer built straight from that JSON), the
 *   embeddings are the encoder's for the sampled texts (a few re-encoded one by one here,
 *   1e-4: other batches), and the labels belong to the sampled reviews; planning computes
 *   nothing (the cache folder stays empty) and says the time and the full command with
 *   the committed run's own time (`totalSeconds`).
 * - The sample: drawn from the run's training (and validation) reviews, no review twice,
 *   label counts within one of the split's shares, the same reviews for the same seed
 *   (the config's `data.seed` by default) and others for another.
 * - Refusals: other image settings (the key), other reviews (the store key), a missing
 *   layout or record, a changed byte, a damaged file with a matching record, a record for
 *   another key: each a `PreviewError` naming the file and the fix.
 * - The key recomputed from the fitting rows' hash is `layoutKey` of the rows.
 * - `commitLayout` on a tiny run: the committed file is the run's cache file byte for byte,
 *   and on a fresh cache folder the preview's images equal the run's own images
 *   (`prepareInputs`) of the same reviews (1e-4: the embeddings come from other batches).
 */
import {
  assert,
  assertEquals,
  assertLessOrEqual,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { shared } from "./_shared.ts";
import { projectRoot } from "../lib/config.ts";
import { resolveEncodeOptions } from "../lib/embed/mod.ts";
import { configFrom, loadExperimentConfig, prepareInputs } from "../lib/experiment/mod.ts";
import type { ResolvedConfig } from "../lib/experiment/mod.ts";
import { layoutKey, layoutKeyOfHash, loadSplit, matrixHash } from "../lib/experiment/inputs.ts";
import {
  aboutSeconds,
  choosePreview,
  commitLayout,
  COMMITTED_LAYOUT_FILE,
  COMMITTED_LAYOUT_KEY_FILE,
  type CommittedLayoutRecord,
  planPreview,
  PreviewError,
  type PreviewPlan,
  runPreview,
} from "../lib/experiment/preview.ts";
import { ImageTransformer, type ImageTransformerState } from "../lib/image/mod.ts";
import { sealJson } from "../lib/integrity.ts";
import { Random } from "../lib/random.ts";
import type { ImageBatch, Matrix } from "../lib/types.ts";

const imdb = shared("data", "aclImdb_v1-labelled.tar.gz");

const RUN = "use-lite-5k";
const committedDir = join(projectRoot, "results", RUN);
const committedLayout = join(committedDir, COMMITTED_LAYOUT_FILE);

/** Tolerance on embeddings and images computed in other batches (float32 rounding). */
const BATCH_TOLERANCE = 1e-4;

/** Runs `fn` with `TEXT_AS_IMAGE_DATA` at a new empty folder (a fresh clone's caches). */
async function freshClone<T>(fn: (root: string) => Promise<T>): Promise<T> {
  const root = await Deno.makeTempDir({ prefix: "preview-test-" });
  const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
  Deno.env.set("TEXT_AS_IMAGE_DATA", root);
  try {
    return await fn(root);
  } finally {
    if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
    else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
    await Deno.remove(root, { recursive: true });
  }
}

/** Files (not folders) under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return [...Deno.readDirSync(dir)].flatMap((e) =>
    e.isDirectory ? filesUnder(join(dir, e.name)) : e.isFile ? [join(dir, e.name)] : []
  );
}

/** Largest |a − b| over two equally long arrays. */
function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length);
  let largest = 0;
  for (let i = 0; i < a.length; i++) largest = Math.max(largest, Math.abs(a[i] - b[i]));
  return largest;
}

/** The committed layout's transformer state, parsed here from the file's JSON. */
async function committedState(path = committedLayout): Promise<ImageTransformerState> {
  return JSON.parse(await Deno.readTextFile(path)).transformer as ImageTransformerState;
}

Deno.test({
  name: "preview: the committed layout, its images of the sampled reviews' embeddings",
  ignore: imdb.ignore,
  sanitizeResources: false,
  fn: () =>
    freshClone(async (root) => {
      const cfg = await loadExperimentConfig(RUN);
      const decision = await choosePreview(cfg, { reviews: 24, validation: 8 });
      const plan = decision.plan;
      assert(plan, `no preview: ${decision.refused}`);
      try {
        // Planning computes nothing: the cache folder is still empty.
        assertEquals(filesUnder(root), [], "planning wrote into the cache folder");
        const split = await loadSplit(cfg);
        const runTexts = split.train.length + split.validation.length + split.test.length;
        assertEquals(decision.missingEmbeddings, runTexts);
        assertEquals(plan.toEncode, 32);
        // The one line: caches missing, the preview and its time, the full command and time.
        const metrics = JSON.parse(await Deno.readTextFile(join(committedDir, "metrics.json")));
        assertStringIncludes(plan.summary, `The caches of run "${RUN}" are missing`);
        assertStringIncludes(plan.summary, `results/${RUN}/layout.json`);
        assertStringIncludes(plan.summary, "24 sampled training and 8 validation reviews");
        assertStringIncludes(plan.summary, `takes ${aboutSeconds(plan.estimate.seconds)}`);
        assertStringIncludes(
          plan.summary,
          `\`deno task reproduce --config ${RUN}\` (${aboutSeconds(metrics.totalSeconds)}`,
        );
        assertEquals(plan.summary.split("\n").length, 1);

        const preview = await runPreview(plan, { progress: false });
        // The layout: the committed positions, feature by feature.
        const state = await committedState();
        assertEquals(preview.transformer.nFeatures, state.nFeatures);
        assertEquals(Array.from(preview.transformer.coords().data), state.coords);
        assertEquals(Array.from(preview.transformer.layout().embedding.data), state.embedding);
        const record: CommittedLayoutRecord = JSON.parse(
          await Deno.readTextFile(join(committedDir, COMMITTED_LAYOUT_KEY_FILE)),
        );
        assertEquals(preview.transformerKey, record.key);
        assertEquals(record.cacheFile, `image-transformer-${record.key}.json`);
        // The images: the committed layout's transform of the preview's embeddings.
        const independent = ImageTransformer.fromJSON(state);
        for (const part of ["train", "validation"] as const) {
          const expected = independent.transform(preview.features[part], { channels: 1 });
          const images = preview.images[part] as ImageBatch;
          assertEquals(images.shape, expected.shape);
          assertEquals(images.shape[0], part === "train" ? 24 : 8);
          assertEquals(Array.from(images.data), Array.from(expected.data), `${part} images`);
        }
        assertEquals(preview.images.test.shape[0], 0);
        // The embeddings are the sampled texts', in the sample's order, with their labels.
        const encodeOptions = resolveEncodeOptions(preview.encoder, {
          layers: cfg.embedding.layers,
        });
        const cols = preview.embeddings.shape[1];
        assertEquals(cols, state.nFeatures);
        for (const [part, i] of [["train", 0], ["train", 23], ["validation", 7]] as const) {
          const review = preview.split[part][i];
          const alone = await preview.encoder.encode([review.text], encodeOptions);
          const row = preview.features[part].data.subarray(i * cols, (i + 1) * cols);
          const delta = largestDifference(row, alone.data);
          assertLessOrEqual(delta, BATCH_TOLERANCE, `${part} row ${i}: |Δ| ${delta}`);
        }
        for (const part of ["train", "validation"] as const) {
          assertEquals(
            Array.from(preview.labels[part]),
            preview.split[part].map((r) => r.label),
          );
        }
        await preview.encoder.dispose();
      } catch (e) {
        await plan.encoder.dispose();
        throw e;
      }
    }),
});

/** The texts of a plan's sample, per part. */
function sampled(plan: PreviewPlan): { train: string[]; validation: string[] } {
  return {
    train: plan.sample.train.map((r) => r.text),
    validation: plan.sample.validation.map((r) => r.text),
  };
}

Deno.test({
  name: "preview: the sample is the run's reviews, stratified by label and seeded",
  ignore: imdb.ignore,
  sanitizeResources: false,
  fn: () =>
    freshClone(async () => {
      const cfg = await loadExperimentConfig(RUN);
      const split = await loadSplit(cfg);
      const plans: Record<string, { train: string[]; validation: string[] }> = {};
      for (
        const [name, seed] of [["default", undefined], ["42", 42], ["7", 7], ["8", 8]] as const
      ) {
        const plan = await planPreview(cfg, { reviews: 101, validation: 31, seed, split });
        await plan.encoder.dispose();
        assertEquals(plan.seed, seed ?? cfg.data.seed);
        plans[name] = sampled(plan);
        for (const part of ["train", "validation"] as const) {
          const pool = split[part];
          const texts = new Set(pool.map((r) => r.text));
          const sample = plan.sample[part];
          assertEquals(sample.length, part === "train" ? 101 : 31);
          assert(sample.every((r) => texts.has(r.text)), `${part}: a review from elsewhere`);
          assertEquals(new Set(sample.map((r) => r.text)).size, sample.length, "a review twice");
          // Stratified: each label's count within one of its share of the split.
          const share = pool.filter((r) => r.label === 1).length / pool.length;
          const positives = sample.filter((r) => r.label === 1).length;
          assertLessOrEqual(
            Math.abs(positives - share * sample.length),
            1,
            `${part} seed ${seed}: ${positives} positives of ${sample.length}, share ${share}`,
          );
        }
      }
      assertEquals(cfg.data.seed, 42);
      assertEquals(plans.default, plans["42"], "the default seed is the config's data.seed");
      // Same seed, same reviews (a second plan from scratch).
      const again = await planPreview(cfg, { reviews: 101, validation: 31, seed: 7 });
      await again.encoder.dispose();
      assertEquals(sampled(again), plans["7"]);
      // Another seed, other reviews.
      assertNotEquals(plans["7"].train, plans["8"].train);
      assertNotEquals(new Set(plans["7"].train), new Set(plans["8"].train));
      assertNotEquals(plans["7"].validation, plans["8"].validation);
      await assertRejects(
        () => planPreview(cfg, { reviews: split.train.length + 1, split }),
        Error,
        `the run has ${split.train.length}`,
      );
    }),
});

/** A copy of the committed run's results folder (metrics and layout files) under `root`. */
async function copyCommitted(root: string): Promise<string> {
  const dir = join(root, "results", RUN);
  await Deno.mkdir(dir, { recursive: true });
  for (
    const file of [
      "metrics.json",
      COMMITTED_LAYOUT_FILE,
      `${COMMITTED_LAYOUT_FILE}.made.json`,
      COMMITTED_LAYOUT_KEY_FILE,
    ]
  ) {
    await Deno.copyFile(join(committedDir, file), join(dir, file));
  }
  return join(root, "results");
}

/** Plans a preview of `cfg` from `resultsDir`, expecting a PreviewError; returns its message. */
async function refusal(
  cfg: ResolvedConfig,
  resultsDir: string | undefined,
  file: string,
  ...fix: string[]
): Promise<string> {
  const error = await assertRejects(
    () => planPreview(cfg, { reviews: 4, resultsDir }),
    PreviewError,
  );
  assertStringIncludes(error.message, `${RUN}/${file}`);
  assertEquals(error.path, join(resultsDir ?? join(projectRoot, "results"), RUN, file));
  for (const text of fix) assertStringIncludes(error.fix, text);
  assert(!error.message.includes("will be recomputed"), error.message);
  return error.message;
}

Deno.test({
  name: "preview: a stale, missing or damaged committed layout is refused, naming file and fix",
  ignore: imdb.ignore,
  sanitizeResources: false,
  fn: () =>
    freshClone(async (root) => {
      // Other image settings: another layout key.
      const pixels = await loadExperimentConfig(RUN, { image: { pixels: 32 } });
      const message = await refusal(pixels, undefined, COMMITTED_LAYOUT_FILE, "drop");
      assertStringIncludes(message, "image.pixels: 32 here, 50 in the committed layout");
      const decision = await choosePreview(pixels, { reviews: 4 });
      assertEquals(decision.plan, undefined);
      assertStringIncludes(decision.refused ?? "", "image.pixels: 32 here");
      // Other reviews: another embedding store.
      const reviews = await loadExperimentConfig(RUN, { data: { trainSize: 1000 } });
      const other = await refusal(reviews, undefined, COMMITTED_LAYOUT_FILE, "drop");
      assertStringIncludes(other, "textsHash");
      assertStringIncludes(other, "1000 fitting rows here, 5000 there");

      const cfg = await loadExperimentConfig(RUN);
      const resultsDir = await copyCommitted(root);
      const dir = join(resultsDir, RUN);
      const layoutPath = join(dir, COMMITTED_LAYOUT_FILE);
      const recordPath = join(dir, COMMITTED_LAYOUT_KEY_FILE);
      const text = await Deno.readTextFile(layoutPath);
      const recordText = await Deno.readTextFile(recordPath);
      const remake = `deno task reproduce --config ${RUN}`;
      // The copy as it is previews (the refusals below come from the changes alone).
      const fine = await planPreview(cfg, { reviews: 4, resultsDir });
      await fine.encoder.dispose();
      assertEquals(fine.committed.path, layoutPath);

      // Missing layout, missing record.
      await Deno.remove(layoutPath);
      const missing = await refusal(cfg, resultsDir, COMMITTED_LAYOUT_FILE, "git checkout", remake);
      assertStringIncludes(missing, "missing");
      assertStringIncludes(
        missing,
        aboutSeconds(
          JSON.parse(
            await Deno.readTextFile(join(dir, "metrics.json")),
          ).totalSeconds,
        ),
      );
      // Without a committed layout a notebook computes the inputs, as before: no refusal.
      const none = await choosePreview(cfg, { reviews: 4, resultsDir });
      assertEquals(none.plan, undefined);
      assertEquals(none.refused, undefined);
      await Deno.writeTextFile(layoutPath, text);
      await Deno.remove(recordPath);
      await refusal(cfg, resultsDir, COMMITTED_LAYOUT_KEY_FILE, "git checkout", remake);
      await Deno.writeTextFile(recordPath, "{ not json");
      await refusal(cfg, resultsDir, COMMITTED_LAYOUT_KEY_FILE, "git checkout", remake);
      await Deno.writeTextFile(recordPath, recordText);

      // One byte of a coordinate changed: not the file the record describes.
      const at = text.indexOf('"coords":[') + '"coords":['.length;
      const digit = text[at] === "1" ? "2" : "1";
      const changed = text.slice(0, at) + digit + text.slice(at + 1);
      await Deno.writeTextFile(layoutPath, changed);
      const damaged = await refusal(cfg, resultsDir, COMMITTED_LAYOUT_FILE, "git checkout", remake);
      assertStringIncludes(damaged, "damaged");
      // The same change with a record that matches it: the file's own seal refuses it.
      const record: CommittedLayoutRecord = JSON.parse(recordText);
      const bytes = new TextEncoder().encode(changed);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      await Deno.writeTextFile(recordPath, JSON.stringify({ ...record, sha256: hex }));
      const sealed = await refusal(cfg, resultsDir, COMMITTED_LAYOUT_FILE, "git checkout");
      assertStringIncludes(sealed, "content hash");

      // A record whose key its own settings and rows do not give (stale or edited).
      const stale = { ...record, key: "0123456789abcdef", cacheFile: "" };
      stale.cacheFile = `image-transformer-${stale.key}.json`;
      await Deno.writeTextFile(layoutPath, text);
      await Deno.writeTextFile(recordPath, JSON.stringify(stale));
      const staleMessage = await refusal(
        cfg,
        resultsDir,
        COMMITTED_LAYOUT_KEY_FILE,
        "git checkout",
      );
      assertStringIncludes(staleMessage, "not its key 0123456789abcdef");
      // A record whose key is not its cache file's.
      await Deno.writeTextFile(recordPath, JSON.stringify({ ...record, cacheFile: "x.json" }));
      await refusal(cfg, resultsDir, COMMITTED_LAYOUT_KEY_FILE, "git checkout");
      // A valid layout file of another version of the layout stage is stale.
      const state = JSON.parse(text);
      const otherVersion = sealJson({ stageVersion: -1, transformer: state.transformer });
      await Deno.writeTextFile(layoutPath, otherVersion);
      const otherDigest = new Uint8Array(
        await crypto.subtle.digest("SHA-256", new TextEncoder().encode(otherVersion)),
      );
      await Deno.writeTextFile(
        recordPath,
        JSON.stringify({
          ...record,
          sha256: Array.from(otherDigest, (b) => b.toString(16).padStart(2, "0")).join(""),
        }),
      );
      const version = await refusal(cfg, resultsDir, COMMITTED_LAYOUT_FILE, "git checkout");
      assertStringIncludes(version, "layout version -1");
    }),
});

Deno.test("preview: the key from the fitting rows' hash is the key the committed run used", async () => {
  // The committed run named its layout cache file by the key its own code computed from the
  // fitting rows (record.cacheFile); the record keeps those rows' hash.
  const record = JSON.parse(
    await Deno.readTextFile(join(projectRoot, "results", RUN, COMMITTED_LAYOUT_KEY_FILE)),
  ) as CommittedLayoutRecord;
  const cfg = await loadExperimentConfig(RUN);
  assertEquals(
    `image-transformer-${layoutKeyOfHash(cfg, record.fitRows.sha256)}.json`,
    record.cacheFile,
  );
  const random = new Random(5);
  const m: Matrix = {
    data: Float32Array.from({ length: 40 * 12 }, () => random.normal()),
    shape: [40, 12],
  };
  assertEquals(layoutKey(cfg, m), layoutKeyOfHash(cfg, matrixHash(m)));
  // Verbosity and threads are not part of the key; the image settings are.
  const base = await loadExperimentConfig(RUN);
  const quiet = await loadExperimentConfig(RUN, { image: { tsne: { verbose: false } } });
  assertEquals(layoutKeyOfHash(quiet, "x"), layoutKeyOfHash(base, "x"));
  const lsa = await loadExperimentConfig(RUN, { image: { discretization: "lsa" } });
  assertNotEquals(layoutKeyOfHash(lsa, "x"), layoutKeyOfHash(base, "x"));
  assertNotEquals(layoutKeyOfHash(base, "y"), layoutKeyOfHash(base, "x"));
});

Deno.test({
  name: "commitLayout: the run's cache file committed; the preview's images are the run's own",
  ignore: imdb.ignore,
  sanitizeResources: false,
  fn: async () => {
    const raw = {
      schemaVersion: 2,
      name: "tiny-preview",
      data: { source: imdb.path, trainSize: 32, testSize: 16, validationFraction: 0.25 },
      embedding: { encoder: "use-lite" },
      image: { pixels: 12, tsne: { perplexity: 4, nIter: 300 } },
      seeds: [1],
    };
    const resultsDir = await Deno.makeTempDir({ prefix: "preview-results-" });
    try {
      // The run itself, with its caches.
      const { inputs, record } = await freshClone(async () => {
        const cfg = configFrom(raw);
        const inputs = await prepareInputs(cfg, { log: () => {} });
        await inputs.encoder.dispose();
        // Not committed until the metrics are; commitLayout needs only the caches.
        const record = await commitLayout(cfg, { resultsDir });
        const cache = join(cfg.cacheDir, `image-transformer-${inputs.transformerKey}.json`);
        assertEquals(record.key, inputs.transformerKey);
        assertEquals(record.cacheFile, `image-transformer-${inputs.transformerKey}.json`);
        assertEquals(record.fitRows.count, inputs.split.train.length);
        assertEquals(record.fitRows.sha256, matrixHash(inputs.features.train));
        const dir = join(resultsDir, cfg.name);
        assertEquals(
          await Deno.readFile(join(dir, COMMITTED_LAYOUT_FILE)),
          await Deno.readFile(cache),
        );
        assertEquals(
          await Deno.readTextFile(join(dir, `${COMMITTED_LAYOUT_FILE}.made.json`)),
          await Deno.readTextFile(`${cache}.made.json`),
        );
        return { inputs, record };
      });
      // A fresh clone of it: the preview's images of sampled reviews are the run's images.
      await freshClone(async (root) => {
        const cfg = configFrom(raw);
        const { plan, missingEmbeddings } = await choosePreview(cfg, {
          reviews: 10,
          validation: 4,
          resultsDir,
        });
        assert(plan, "no preview of the tiny run");
        assertEquals(missingEmbeddings, inputs.embeddings.shape[0]);
        // No metrics.json committed: the summary still names the command.
        assertStringIncludes(plan.summary, "deno task reproduce --config");
        const preview = await runPreview(plan, { progress: false });
        await preview.encoder.dispose();
        assertEquals(preview.transformerKey, record.key);
        assert(!existsSync(cfg.cacheDir), "the preview wrote into the run's cache folder");
        assert(filesUnder(root).length > 0, "the preview's embeddings are not in the store");
        const pixels = 12 * 12;
        let largest = 0;
        for (const part of ["train", "validation"] as const) {
          const runRows = new Map(inputs.split[part].map((r, i) => [r.text, i]));
          const runImages = inputs.images[part] as ImageBatch;
          const images = preview.images[part] as ImageBatch;
          preview.split[part].forEach((review, i) => {
            const j = runRows.get(review.text);
            assert(j !== undefined, `${part} review ${i} is not one of the run's`);
            largest = Math.max(
              largest,
              largestDifference(
                images.data.subarray(i * pixels, (i + 1) * pixels),
                runImages.data.subarray(j * pixels, (j + 1) * pixels),
              ),
            );
          });
        }
        console.log(`preview vs the run's images: largest |Δ| ${largest.toExponential(2)}`);
        assertLessOrEqual(largest, BATCH_TOLERANCE);
      });
    } finally {
      await Deno.remove(resultsDir, { recursive: true });
    }
  },
});
