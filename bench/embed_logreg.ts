/**
 * Real check of the text stage: logistic regression on USE-lite embeddings of 2,000 train /
 * 2,000 test IMDB reviews (standard split: train from the official train half, test from
 * the official test half, stratified, seed 42). Target: at least 80% test accuracy.
 *
 * Embeddings go through the resumable store (`dataDir()/embeddings`), so a second run only
 * fits. Side by side: scikit-learn's LogisticRegression on the same embeddings
 * (bench/embed_logreg_reference.py, Debian's python3-sklearn). Also reports each hidden-state
 * block alone. The bench fails (non-zero exit, no JSON line) when scikit-learn cannot run.
 *
 * USE-lite reads at most 128 pieces while the median review has about 250, so by default each
 * review is encoded as consecutive 128-piece windows whose pooled vectors are averaged
 * (`overflow: "windows"`); `--overflow truncate` keeps only the first 128 pieces. The
 * experiment pipeline uses the encoder's default overflow mode (`"truncate"` today), so the
 * same run also embeds and fits in that mode and reports it beside the chosen one
 * (`pipeline_default_overflow`, `accuracy_concatenated_<mode>`, …). Review text is raw, with
 * its `<br />` tags, as in the paper (`--breaks space` replaces them).
 *
 * Usage: deno run -A bench/embed_logreg.ts [--train N] [--test N] [--l2 X]
 *          [--overflow windows|truncate] [--breaks keep|space]
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { labelsOf, loadImdb, splitReviews, textsOf } from "../lib/data/mod.ts";
import {
  embedTexts,
  type Overflow,
  resolveEncodeOptions,
  USE_LITE_SENTENCE_EMBEDDING,
  UseLiteEncoder,
} from "../lib/embed/mod.ts";
import { LogisticRegression } from "../lib/eval/logistic.ts";
import { CONFIG_SCHEMA_VERSION, resolveConfig } from "../lib/experiment/config.ts";
import type { Matrix } from "../lib/types.ts";
import { pythonFailure } from "./data.ts";

const TARGET_ACCURACY = 0.8;
const python = "/usr/bin/python3";
const SKLEARN_INSTALL = "install Debian's python3-sklearn (sudo apt-get install python3-sklearn)";

function argument(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

/** Columns `[from, from + width)` of `m` as a new matrix. */
function columns(m: Matrix, from: number, width: number): Matrix {
  const [n, cols] = m.shape;
  const data = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    data.set(m.data.subarray(i * cols + from, i * cols + from + width), i * width);
  }
  return { data, shape: [n, width] };
}

/**
 * scikit-learn's accuracy on the same data (bench/embed_logreg_reference.py); throws a message
 * naming what to install when the reference cannot run.
 */
async function sklearnAccuracy(
  train: Matrix,
  yTrain: Uint8Array,
  test: Matrix,
  yTest: Uint8Array,
  l2: number,
): Promise<{ accuracy: number; seconds: number }> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "train.f32"), new Uint8Array(train.data.buffer));
    await Deno.writeFile(join(dir, "test.f32"), new Uint8Array(test.data.buffer));
    await Deno.writeFile(join(dir, "ytrain.u8"), yTrain);
    await Deno.writeFile(join(dir, "ytest.u8"), yTest);
    const script = fileURLToPath(new URL("./embed_logreg_reference.py", import.meta.url));
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(python, {
        args: [script, dir, String(train.shape[1]), String(1 / l2)],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (e) {
      throw new Error(
        `cannot run ${python} for the scikit-learn reference (${(e as Error).message}); ` +
          SKLEARN_INSTALL,
      );
    }
    if (!out.success) {
      const stderr = new TextDecoder().decode(out.stderr);
      throw pythonFailure("the scikit-learn reference", out.code, stderr, python);
    }
    const result = JSON.parse(new TextDecoder().decode(out.stdout));
    if (!Number.isFinite(result.accuracy) || !Number.isFinite(result.seconds)) {
      throw new Error(`bench/embed_logreg_reference.py printed no accuracy: ${result}`);
    }
    return result;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function main(): Promise<void> {
  const trainSize = Number(argument("--train", "2000"));
  const testSize = Number(argument("--test", "2000"));
  const l2 = Number(argument("--l2", "1"));
  const overflow = argument("--overflow", "windows") as Overflow;
  const breaks = argument("--breaks", "keep") as "keep" | "space";
  if (overflow !== "windows" && overflow !== "truncate") {
    throw new Error(`--overflow must be windows or truncate, not ${overflow}`);
  }
  if (breaks !== "keep" && breaks !== "space") {
    throw new Error(`--breaks must be keep or space, not ${breaks}`);
  }

  const reviews = await loadImdb({ breaks });
  const split = splitReviews(reviews, { scheme: "standard", seed: 42, trainSize, testSize });
  const yTrain = labelsOf(split.train);
  const yTest = labelsOf(split.test);
  const encoder = await UseLiteEncoder.load();
  const options = { layers: [1, 2, USE_LITE_SENTENCE_EMBEDDING], pooling: "mean" as const };
  // The overflow mode the experiment pipeline uses: its default config's embedding options,
  // resolved by the encoder as lib/experiment/inputs.ts does.
  const pipeline = resolveConfig({ schemaVersion: CONFIG_SCHEMA_VERSION, name: "bench" });
  const { encoder: _e, model: _m, ...pipelineOptions } = pipeline.embedding;
  const pipelineOverflow = resolveEncodeOptions(encoder, pipelineOptions).overflow;
  console.log(
    `bench embed_logreg: USE-lite (${overflow}, breaks ${breaks}) + logistic regression ` +
      `(l2=${l2}, i.e. C=${1 / l2}); the pipeline's default overflow mode is ` +
      `${pipelineOverflow}`,
  );

  const figures: Record<string, number | string> = {
    train: split.train.length,
    test: split.test.length,
    l2,
    overflow,
    pipeline_default_overflow: pipelineOverflow,
    breaks,
  };
  // The chosen mode with every block, then the pipeline's default (when it differs) on the
  // concatenated block, each beside scikit-learn.
  const modes: Overflow[] = [
    overflow,
    ...(pipelineOverflow === overflow ? [] : [pipelineOverflow]),
  ];
  for (const mode of modes) {
    const start = performance.now();
    const train = await embedTexts(encoder, textsOf(split.train), {
      ...options,
      overflow: mode,
      progress: `embed train (${mode})`,
    });
    const test = await embedTexts(encoder, textsOf(split.test), {
      ...options,
      overflow: mode,
      progress: `embed test (${mode})`,
    });
    const embedSeconds = (performance.now() - start) / 1000;
    console.log(
      `${mode}: embeddings ${train.shape} + ${test.shape} in ${embedSeconds.toFixed(1)} s ` +
        `(cached runs: read only)`,
    );
    figures.features = train.shape[1];
    figures[`embed_seconds_${mode}`] = Number(embedSeconds.toFixed(1));
    if (mode === overflow) figures.embed_seconds = figures[`embed_seconds_${mode}`];

    const blocks: [string, number, number][] = mode === overflow
      ? [
        ["layer1_mean", 0, 512],
        ["layer2_mean", 512, 512],
        ["sentence_embedding", 1024, 512],
        ["concatenated", 0, 1536],
      ]
      : [["concatenated", 0, 1536]];
    for (const [name, from, width] of blocks) {
      const Xtr = columns(train, from, width);
      const Xte = columns(test, from, width);
      const fitStart = performance.now();
      const model = new LogisticRegression({ l2 }).fit(Xtr, yTrain);
      const seconds = (performance.now() - fitStart) / 1000;
      const accuracy = model.score(Xte, yTest);
      const reference = await sklearnAccuracy(Xtr, yTrain, Xte, yTest, l2);
      const values: Record<string, number> = {
        accuracy: Number(accuracy.toFixed(4)),
        fit_seconds: Number(seconds.toFixed(2)),
        iterations: model.nIter_ ?? NaN,
        sklearn_accuracy: Number(reference.accuracy.toFixed(4)),
        sklearn_fit_seconds: Number(reference.seconds.toFixed(2)),
      };
      for (const [figure, value] of Object.entries(values)) {
        if (mode === overflow) figures[`${figure}_${name}`] = value;
        if (name === "concatenated") figures[`${figure}_${name}_${mode}`] = value;
      }
      console.log(
        `${mode.padEnd(8)} ${name.padEnd(20)} ${width} features: test accuracy ` +
          `${(accuracy * 100).toFixed(2)}% (fit ${seconds.toFixed(1)} s, ${model.nIter_} ` +
          `iterations, converged ${model.converged_}) | scikit-learn ` +
          `${(reference.accuracy * 100).toFixed(2)}% (fit ${reference.seconds.toFixed(1)} s)`,
      );
    }
  }
  await encoder.dispose();
  const accuracy = figures.accuracy_concatenated as number;
  console.log(
    `concatenated: ${overflow} ${(accuracy * 100).toFixed(2)}%` +
      (pipelineOverflow === overflow
        ? ""
        : `, ${pipelineOverflow} (the pipeline's default) ${
          ((figures[`accuracy_concatenated_${pipelineOverflow}`] as number) * 100).toFixed(2)
        }%`),
  );
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
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`bench/embed_logreg.ts failed: ${(e as Error).stack ?? e}`);
    Deno.exit(1);
  }
}
