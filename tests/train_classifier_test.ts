/**
 * ImageClassifier end to end: its configuration is TRAINING_DEFAULTS resolved for the
 * architecture, it learns a separable image task through a frozen backbone, and a run that
 * is interrupted (aborted, or killed as a separate process) resumes from its last checkpoint
 * to exactly the weights and history of an uninterrupted run. Early stopping:
 * `train_early_stopping_test.ts`.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertRejects,
} from "@std/assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ready, tf } from "../lib/tf.ts";
import {
  backboneFeatureSource,
  cachedFeatureSource,
  type EpochRecord,
  type FrozenBackbone,
  ImageClassifier,
  imageStats,
  loadCheckpoint,
  PAPER_ARCHITECTURES,
  PAPER_TRAINING,
  TRAINING_DEFAULTS,
} from "../lib/train/mod.ts";
import { featureData, patchImages, resumeFixture, TINY } from "./_train_fixtures.ts";

/** A frozen one-layer "backbone" with fixed random weights. */
function tinyBackbone(): FrozenBackbone & { dispose(): void } {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [null, null, 3] as unknown as number[],
        filters: 4,
        kernelSize: 3,
        activation: "relu",
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
        trainable: false,
      }),
    ],
  });
  return {
    name: "tiny-frozen",
    outputShape: ([h, w]) => [h - 2, w - 2, 4],
    forward: (x) => model.predict(x) as tf.Tensor4D,
    dispose: () => model.dispose(),
  };
}

Deno.test("config: TRAINING_DEFAULTS, with rates and gains resolved for the architecture", () => {
  const SQRT2 = Math.SQRT2;
  const alexnet = PAPER_ARCHITECTURES.alexnet;
  const clf = new ImageClassifier({ architecture: "alexnet", epochs: undefined });
  const { architecture, lrConv, lrHead, initGain, ...rest } = clf.config;
  const { lrConv: _c, lrHead: _h, initGain: _g, ...plain } = TRAINING_DEFAULTS;
  assertEquals(rest, plain); // an option given as undefined keeps its default
  assertEquals(TRAINING_DEFAULTS.lrConv, "paper");
  assertEquals(lrConv, alexnet.lrConv);
  assertEquals(lrHead, 1e-4);
  assertEquals(initGain, { hidden: SQRT2, output: 0.1 });
  assertEquals(architecture.head.xavierGain, { hidden: SQRT2, output: 0.1 });
  const { xavierGain: _x, ...head } = architecture.head;
  assertEquals({ ...architecture, head }, alexnet);
  assertEquals(alexnet.head.xavierGain, undefined); // the registry's spec is not modified
  assertEquals(clf.architecture, architecture);

  const paper = new ImageClassifier({ architecture: "alexnet", ...PAPER_TRAINING }).config;
  assertEquals([paper.lrConv, paper.lrHead], [alexnet.lrConv, alexnet.lrHead]);
  assertEquals(paper.architecture.head.xavierGain, { hidden: SQRT2, output: SQRT2 });
  assertEquals([paper.patience, paper.standardizeFeatures, paper.epochs], [null, false, 15]);

  // initGain replaces the gains of a spec that has its own.
  const own = { ...TINY, head: { ...TINY.head, xavierGain: { hidden: 3, output: 3 } } };
  const given = new ImageClassifier({
    architecture: own,
    lrConv: 0.01,
    lrHead: 0.02,
    initGain: { hidden: 1, output: 0.5 },
  }).config;
  assertEquals([given.lrConv, given.lrHead], [0.01, 0.02]);
  assertEquals(given.architecture.head.xavierGain, { hidden: 1, output: 0.5 });
});

Deno.test("the network is built with the configured gains", async () => {
  await ready("wasm");
  const data = featureData(32, 1);
  const kernels = async (initGain: "paper" | { hidden: number; output: number }) => {
    const clf = new ImageClassifier({
      architecture: TINY,
      epochs: 0,
      initGain,
      progressBar: false,
    });
    await clf.fit(data.x, data.y);
    const w = clf.network_!.getWeights();
    clf.dispose();
    return { hidden: w["dense1/kernel"].data, output: w["logits/kernel"].data };
  };
  const paper = await kernels("paper");
  const standard = await kernels(TRAINING_DEFAULTS.initGain);
  const zero = await kernels({ hidden: Math.SQRT2, output: 0 });
  // Same draws, scaled by the gain: hidden layers √2 in all three, the output 0.1/√2 and 0.
  assertEquals(standard.hidden, paper.hidden);
  assertEquals(zero.hidden, paper.hidden);
  assert(paper.output.some((v) => Math.abs(v) > 0.1));
  paper.output.forEach((v, i) =>
    assertAlmostEquals(standard.output[i], v * 0.1 / Math.SQRT2, 1e-6)
  );
  assert(zero.output.every((v) => v === 0));
});

Deno.test("a tiny model learns a separable synthetic image task end to end (> 95%)", async () => {
  await ready("wasm");
  const train = patchImages(256, 1);
  const test = patchImages(256, 2);
  const backbone = tinyBackbone();
  const before = backbone.forward(tf.ones([1, 12, 12, 3])).dataSync().slice();
  const epochs: EpochRecord[] = [];
  const clf = new ImageClassifier({
    architecture: TINY,
    epochs: 6,
    seed: 42,
    // The settings this test was made for: TINY's own learning rates, the official gains,
    // every epoch.
    lrHead: "paper",
    initGain: "paper",
    patience: null,
    progressBar: false,
    onEpoch: (r) => epochs.push(r),
  });
  // The paper's pipeline: nearest upsampling ×2, per-batch z-normalisation, 3 channels.
  const source = (images: typeof train.images) =>
    backboneFeatureSource(images, backbone, { upsample: 2 });
  await clf.fit(source(train.images), train.labels, {
    x: source(test.images),
    y: test.labels,
  });
  const { accuracy } = clf.evaluate(source(test.images), test.labels);
  console.log(`test accuracy ${accuracy}`);
  assertGreater(accuracy, 0.95, `test accuracy ${accuracy}`);
  assertEquals(epochs.length, 6);
  assertEquals(clf.history_.map((r) => r.epoch), [1, 2, 3, 4, 5, 6]);
  assert(clf.history_.every((r) => r.validationAccuracy !== undefined));
  assert(clf.history_[5].trainLoss < clf.history_[0].trainLoss, "training loss went down");
  // Predictions agree with the probabilities, and the frozen backbone did not change.
  const p = clf.predictProba(source(test.images));
  const labels = clf.predict(source(test.images));
  assert(p.every((v, i) => (v > 0.5 ? 1 : 0) === labels[i]));
  const after = backbone.forward(tf.ones([1, 12, 12, 3])).dataSync();
  assertEquals(Array.from(after), Array.from(before));
  clf.dispose();
  backbone.dispose();
});

Deno.test("fixed z-normalisation statistics work end to end as well", async () => {
  await ready("wasm");
  const train = patchImages(64, 3);
  const backbone = tinyBackbone();
  const stats = imageStats(train.images);
  const source = backboneFeatureSource(train.images, backbone, { normalization: stats });
  assertEquals(source.featureShape, [10, 10, 4]);
  const clf = new ImageClassifier({ architecture: TINY, epochs: 1, progressBar: false });
  await clf.fit(source, train.labels);
  assertEquals(clf.history_.length, 1);
  clf.dispose();
  backbone.dispose();
});

function withoutTimes(history: EpochRecord[]) {
  return history.map(({ trainSeconds: _s, imagesPerSecond: _r, ...rest }) => rest);
}

async function uninterrupted(dir: string) {
  const { train, validation, options } = resumeFixture(dir);
  const clf = new ImageClassifier(options);
  await clf.fit(train.x, train.y, validation);
  const result = {
    weights: clf.network_!.getWeights(),
    history: clf.history_,
    epoch: clf.selectedEpoch_,
  };
  clf.dispose();
  return result;
}

Deno.test("an aborted run resumes from its checkpoint to the uninterrupted result", async () => {
  await ready("wasm");
  const root = await Deno.makeTempDir();
  try {
    const reference = await uninterrupted(join(root, "a"));
    const { train, validation, options } = resumeFixture(join(root, "b"));
    const controller = new AbortController();
    const first = new ImageClassifier({
      ...options,
      signal: controller.signal,
      onEpoch: (r) => {
        if (r.epoch === 2) controller.abort();
      },
    });
    await assertRejects(() => first.fit(train.x, train.y, validation));
    first.dispose();
    const saved = await loadCheckpoint<{ epochsDone: number }>(join(root, "b"));
    assertEquals(saved?.record.epochsDone, 2);
    const second = new ImageClassifier(options);
    await second.fit(cachedFeatureSource(train.x), train.y, validation);
    assertEquals(second.resumedEpochs_, 2);
    assertEquals(withoutTimes(second.history_), withoutTimes(reference.history));
    assertEquals(second.selectedEpoch_, reference.epoch);
    assertEquals(second.network_!.getWeights(), reference.weights);
    second.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a killed training process resumes to the uninterrupted result", async () => {
  await ready("wasm");
  const root = await Deno.makeTempDir();
  try {
    const reference = await uninterrupted(join(root, "a"));
    const dir = join(root, "killed");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", fileURLToPath(new URL("./_train_fixtures.ts", import.meta.url)), dir],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    // Wait until the child reports it is inside epoch 2 (epoch 1's checkpoint is on disk).
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("waiting")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    child.kill("SIGKILL");
    const status = await child.status;
    await reader.cancel().catch(() => {});
    assert(!status.success, `the child was not killed: ${text}`);
    const saved = await loadCheckpoint<{ epochsDone: number }>(dir);
    assertEquals(saved?.record.epochsDone, 1);

    const { train, validation, options } = resumeFixture(dir);
    const resumed = new ImageClassifier(options);
    await resumed.fit(train.x, train.y, validation);
    assertEquals(resumed.resumedEpochs_, 1);
    assertEquals(withoutTimes(resumed.history_), withoutTimes(reference.history));
    assertEquals(resumed.network_!.getWeights(), reference.weights);
    resumed.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a checkpoint of another configuration is refused", async () => {
  await ready("wasm");
  const root = await Deno.makeTempDir();
  try {
    const { train, options } = resumeFixture(root);
    const a = new ImageClassifier({ ...options, epochs: 1 });
    await a.fit(train.x, train.y);
    a.dispose();
    const b = new ImageClassifier({ ...options, epochs: 1, seed: 6 });
    await assertRejects(() => b.fit(train.x, train.y), Error, "different run");
    b.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("normalization 'imagenet': raw [0, 1] pixels reach the backbone's own scaling", async () => {
  await ready("wasm");
  const seen: { preprocess?: boolean; values: number[]; shape: number[] }[] = [];
  const recorder: FrozenBackbone = {
    name: "recorder",
    outputShape: ([h, w]) => [h, w, 1],
    forward: (x, options) => {
      seen.push({ preprocess: options?.preprocess, values: [...x.dataSync()], shape: x.shape });
      return tf.mean(x, 3, true) as tf.Tensor4D;
    },
  };
  const images = {
    data: new Float32Array([0, 0.25, 0.5, 1]),
    shape: [1, 2, 2] as [number, number, number],
  };
  backboneFeatureSource(images, recorder, { normalization: "imagenet", upsample: 2 })
    .gather([0]).dispose();
  // Upsampled ×2 (nearest), values unchanged, one channel, the backbone's preprocessing on.
  assertEquals(seen[0].preprocess, true);
  assertEquals(seen[0].shape, [1, 4, 4, 1]);
  assertEquals(seen[0].values.slice(0, 4), [0, 0, 0.25, 0.25]);
  // The z-normalised path: mean 0 over the batch, three channels, preprocessing off.
  backboneFeatureSource(images, recorder, { normalization: "batch" }).gather([0]).dispose();
  assertEquals(seen[1].preprocess, false);
  assertEquals(seen[1].shape, [1, 2, 2, 3]);
  assertAlmostEquals(seen[1].values.reduce((a, b) => a + b, 0), 0, 1e-5);
});
