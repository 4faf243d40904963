/**
 * Real check of the text stage: logistic regression on USE-lite embeddings of 2,000 train /
 * 2,000 test IMDB reviews (standard split: train from the official train half, test from
 * the official test half, stratified, seed 42). Target: at least 80% test accuracy.
 *
 * Embeddings go through the resumable store (`dataDir()/embeddings`), so a second run only
 * fits. Side by side: scikit-learn's LogisticRegression on the same embeddings
 * (bench/embed_logreg_reference.py). Also reports each hidden-state block alone.
 *
 * USE-lite reads at most 128 pieces while the median review has about 250, so by default each
 * review is encoded as consecutive 128-piece windows whose pooled vectors are averaged
 * (`overflow: "windows"`); `--overflow truncate` keeps only the first 128 pieces. Review text
 * is raw, with its `<br />` tags, as in the paper (`--breaks space` replaces them).
 *
 * Usage: deno run -A bench/embed_logreg.ts [--train N] [--test N] [--l2 X]
 *          [--overflow windows|truncate] [--breaks keep|space]
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { labelsOf, loadImdb, splitReviews, textsOf } from "../lib/data/mod.ts";
import { embedTexts, USE_LITE_SENTENCE_EMBEDDING, UseLiteEncoder } from "../lib/embed/mod.ts";
import { LogisticRegression } from "../lib/eval/logistic.ts";
import type { Matrix } from "../lib/types.ts";

const TARGET_ACCURACY = 0.8;
const python = "/usr/bin/python3";

function argument(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}
const trainSize = Number(argument("--train", "2000"));
const testSize = Number(argument("--test", "2000"));
const l2 = Number(argument("--l2", "1"));
const overflow = argument("--overflow", "windows") as "windows" | "truncate";
const breaks = argument("--breaks", "keep") as "keep" | "space";

/** Columns `[from, from + width)` of `m` as a new matrix. */
function columns(m: Matrix, from: number, width: number): Matrix {
  const [n, cols] = m.shape;
  const data = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    data.set(m.data.subarray(i * cols + from, i * cols + from + width), i * width);
  }
  return { data, shape: [n, width] };
}

async function sklearnAccuracy(
  train: Matrix,
  yTrain: Uint8Array,
  test: Matrix,
  yTest: Uint8Array,
): Promise<{ accuracy: number; seconds: number } | null> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "train.f32"), new Uint8Array(train.data.buffer));
    await Deno.writeFile(join(dir, "test.f32"), new Uint8Array(test.data.buffer));
    await Deno.writeFile(join(dir, "ytrain.u8"), yTrain);
    await Deno.writeFile(join(dir, "ytest.u8"), yTest);
    const script = fileURLToPath(new URL("./embed_logreg_reference.py", import.meta.url));
    const out = await new Deno.Command(python, {
      args: [script, dir, String(train.shape[1]), String(1 / l2)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      console.error(`reference failed: ${new TextDecoder().decode(out.stderr)}`);
      return null;
    }
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } catch (e) {
    console.error(`reference not run: ${(e as Error).message}`);
    return null;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

console.log(
  `bench embed_logreg: USE-lite (${overflow}, breaks ${breaks}) + logistic regression ` +
    `(l2=${l2}, i.e. C=${1 / l2})`,
);
const reviews = await loadImdb({ breaks });
const split = splitReviews(reviews, { scheme: "standard", seed: 42, trainSize, testSize });
const yTrain = labelsOf(split.train);
const yTest = labelsOf(split.test);
const encoder = await UseLiteEncoder.load();
const options = {
  layers: [1, 2, USE_LITE_SENTENCE_EMBEDDING],
  pooling: "mean" as const,
  overflow,
};
let start = performance.now();
const train = await embedTexts(encoder, textsOf(split.train), {
  ...options,
  progress: "embed train",
});
const test = await embedTexts(encoder, textsOf(split.test), { ...options, progress: "embed test" });
const embedSeconds = (performance.now() - start) / 1000;
console.log(
  `embeddings ${train.shape} + ${test.shape} in ${
    embedSeconds.toFixed(1)
  } s (cached runs: read only)`,
);

const blocks: [string, number, number][] = [
  ["layer1_mean", 0, 512],
  ["layer2_mean", 512, 512],
  ["sentence_embedding", 1024, 512],
  ["concatenated", 0, 1536],
];
const figures: Record<string, number | string | null> = {
  train: train.shape[0],
  test: test.shape[0],
  features: train.shape[1],
  l2,
  overflow,
  breaks,
  embed_seconds: Number(embedSeconds.toFixed(1)),
};
for (const [name, from, width] of blocks) {
  const Xtr = columns(train, from, width);
  const Xte = columns(test, from, width);
  start = performance.now();
  const model = new LogisticRegression({ l2 }).fit(Xtr, yTrain);
  const seconds = (performance.now() - start) / 1000;
  const accuracy = model.score(Xte, yTest);
  const reference = await sklearnAccuracy(Xtr, yTrain, Xte, yTest);
  figures[`accuracy_${name}`] = Number(accuracy.toFixed(4));
  figures[`fit_seconds_${name}`] = Number(seconds.toFixed(2));
  figures[`iterations_${name}`] = model.nIter_ ?? null;
  figures[`sklearn_accuracy_${name}`] = reference ? Number(reference.accuracy.toFixed(4)) : null;
  figures[`sklearn_fit_seconds_${name}`] = reference ? Number(reference.seconds.toFixed(2)) : null;
  console.log(
    `${name.padEnd(20)} ${width} features: test accuracy ${(accuracy * 100).toFixed(2)}% ` +
      `(fit ${seconds.toFixed(1)} s, ${model.nIter_} iterations, converged ${model.converged_})` +
      (reference
        ? ` | scikit-learn ${(reference.accuracy * 100).toFixed(2)}% (fit ${
          reference.seconds.toFixed(1)
        } s)`
        : ""),
  );
}
await encoder.dispose();
const accuracy = figures.accuracy_concatenated as number;
console.log(JSON.stringify({
  bench: "embed_logreg",
  figures,
  targets: {
    test_accuracy: {
      value: accuracy,
      target: `>= ${TARGET_ACCURACY}`,
      met: accuracy >= TARGET_ACCURACY,
    },
  },
}));
