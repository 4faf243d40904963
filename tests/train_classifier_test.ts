/**
 * ImageClassifier end to end: it learns a separable image task through a frozen backbone,
 * and a run that is interrupted (aborted, or killed as a separate process) resumes from its
 * last checkpoint to exactly the weights and history of an uninterrupted run.
 */
import { assert, assertEquals, assertGreater, assertRejects } from "@std/assert";
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
} from "../lib/train/mod.ts";
import { patchImages, resumeFixture, TINY } from "./_train_fixtures.ts";

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
