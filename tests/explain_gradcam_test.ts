/**
 * lib/explain Grad-CAM on hand-built models with known weights: a TF.js layers model
 * (1×1 conv whose two channels respond to bright and dark pixels, global average pool,
 * dense) and the project's TrainableNetwork with the same weights; the maps equal the
 * hand-computed ReLU(Σ_k mean(∂y_c/∂A_k) · A_k). Through a frozen backbone end to end the maps
 * equal those on the cached features, on the layout grid. The geometry's resampling matches
 * hand-computed weights for a valid conv stack and for ×3 upsampling through a stride-2 slice.
 */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { ready, tf } from "../lib/tf.ts";
import {
  axisResampling,
  camFromGradients,
  convStackPlacement,
  gradCam,
  layersCamModel,
  networkCamModel,
  resolveGeometry,
} from "../lib/explain/mod.ts";
import {
  type ArchitectureSpec,
  backboneFeatureSource,
  ImageClassifier,
  imageStats,
  TrainableNetwork,
} from "../lib/train/mod.ts";
import type { FeatureBatch } from "../lib/types.ts";

await ready();

/** A 4×4 single-channel image with positive and negative pixels. */
const IMAGE = [
  [0.5, -1, 0, 2],
  [1, 0, -0.5, 0],
  [0, 3, 0, -2],
  [-1, 0, 1, 0.25],
].flat();
const X: FeatureBatch = { data: Float32Array.from(IMAGE), shape: [1, 4, 4, 1] };
/** Dense weights `[channel, class]`: channel 0 (bright) → class 0, channel 1 (dark) mixed. */
const W = [[1, -1], [2, 0.5]];

/** ReLU(Σ_k W[k][c] · scale / 16 · A_k) with A_0 = relu(x), A_1 = relu(−x). */
function expectedCam(c: number, scale = 1): number[] {
  return IMAGE.map((x) => {
    const a0 = Math.max(0, x), a1 = Math.max(0, -x);
    return Math.max(0, (W[0][c] * a0 + W[1][c] * a1) * scale / 16);
  });
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6) {
  assertEquals(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assertAlmostEquals(actual[i], expected[i], tol);
}

Deno.test("gradCam on a hand-built layers model equals the hand-computed map", () => {
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [4, 4, 1],
        filters: 2,
        kernelSize: 1,
        useBias: false,
        activation: "relu",
        name: "conv",
      }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 2, name: "scores" }),
    ],
  });
  model.layers[0].setWeights([tf.tensor4d([1, -1], [1, 1, 1, 2])]);
  model.layers[2].setWeights([tf.tensor2d(W), tf.tensor1d([0.1, -0.2])]);
  const cam = layersCamModel(model, "conv");
  for (const c of [0, 1]) {
    const result = gradCam(cam, X, { rows: "train", target: c, normalize: "none" });
    assertEquals(result.convCams.shape, [1, 4, 4]);
    assertClose(result.convCams.data, expectedCam(c));
    // Identity geometry: the layout grid is the conv grid.
    assertClose(result.cams.data, expectedCam(c));
    assertEquals([...result.targets], [c]);
  }
  // Logits: class 0 = mean(relu x + 2 relu −x) + 0.1 > class 1, so "predicted" explains class 0.
  const predicted = gradCam(cam, X, { rows: "validation" });
  assertEquals([...predicted.predicted], [0]);
  const max = Math.max(...expectedCam(0));
  assertClose(predicted.cams.data, expectedCam(0).map((v) => v / max));
  assertThrows(() => layersCamModel(model, "nope"), Error, "conv, ");
  model.dispose();
});

Deno.test("gradCam on a TrainableNetwork with known weights; the split matches apply()", () => {
  const spec: ArchitectureSpec = {
    name: "hand",
    convStack: { channels: [2], kernelSize: 1, padding: "same", dropout: 0 },
    head: { poolSize: 1, inputDropout: 0, hidden: [], hiddenDropout: [] },
    lrConv: 0,
    lrHead: 0,
  };
  const network = new TrainableNetwork(spec, [4, 4, 1], 1);
  const weights = network.getWeights();
  weights["conv1/kernel"].data.set([1, -1]);
  weights["conv1/bias"].data.fill(0);
  weights["logits/kernel"].data.set(W.flat());
  weights["logits/bias"].data.set([0.1, -0.2]);
  network.setWeights(weights);
  const bn = 1 / Math.sqrt(1 + 1e-5); // inference BatchNorm with running mean 0, variance 1
  for (const c of [0, 1]) {
    const result = gradCam(network, X, { rows: "train", target: c, normalize: "none" });
    assertClose(result.convCams.data, expectedCam(c, bn));
  }
  const split = networkCamModel(network);
  const x = tf.tensor4d(X.data, X.shape);
  const mine = tf.tidy(() => split.logitsFrom(split.activations(x)).dataSync());
  const theirs = tf.tidy(() => network.apply(x, { training: false }).dataSync());
  assertClose(mine, theirs, 1e-5);
  tf.dispose(x);
  split.dispose?.();
  network.dispose();
});

Deno.test("camFromGradients: spatial-mean weights, ReLU, shape checks", () => {
  const a: FeatureBatch = { data: Float32Array.of(1, 0, 0, 2), shape: [1, 1, 2, 2] };
  const g: FeatureBatch = { data: Float32Array.of(1, -1, 3, -1), shape: [1, 1, 2, 2] };
  // weights: channel 0 (1+3)/2 = 2, channel 1 (−1−1)/2 = −1 → [2·1, relu(−1·2)] = [2, 0]
  assertEquals([...camFromGradients(a, g).data], [2, 0]);
  assertThrows(
    () => camFromGradients(a, { data: g.data, shape: [1, 2, 1, 2] }),
    Error,
    "do not match",
  );
});

Deno.test("geometry: a valid conv stack shifts the CAM by (k−1)/2 per layer", () => {
  const placement = convStackPlacement(1, 3, "valid");
  assertEquals(placement, { stride: [1, 1], offset: [1, 1] });
  assertEquals(convStackPlacement(4, 4, "same").offset, [2, 2]); // ½ per even "same" layer
  const geometry = resolveGeometry([4, 4], [6, 6], placement);
  assertEquals(geometry.imageShape, [6, 6]);
  const rows = axisResampling(geometry, 0); // [6 pixels, 4 cells]
  const oneHot = (cell: number) => [0, 1, 2, 3].map((j) => (j === cell ? 1 : 0));
  assertEquals(Array.from(rows), [0, 0, 1, 2, 3, 3].flatMap(oneHot));
});

Deno.test("geometry: ×3 upsampling through a stride-2 slice, bilinear then averaged", () => {
  // image 2 → network input 6 → slice (uniform: stride 2, offset ½) → 3 cells → "same" conv
  const geometry = resolveGeometry([3, 3], [3, 3], convStackPlacement(1, 3, "same"), {
    imageShape: [2, 2],
    upsample: 3,
  });
  assertEquals(geometry.slice, { stride: [2, 2], offset: [0.5, 0.5] });
  const rows = axisResampling(geometry, 1);
  assertClose(rows, [2 / 3, 1 / 3, 0, 0, 1 / 3, 2 / 3]);
  assertThrows(
    () => resolveGeometry([3, 3], [7, 7], convStackPlacement(1, 3, "same"), { upsample: 3 }),
    Error,
    "imageShape",
  );
});

Deno.test("gradCam end to end through a frozen backbone equals it on the cached features", () => {
  // A frozen 3×3 valid conv "backbone" on ×3-upsampled 6×6 images: 18×18 → 16×16×4.
  const model = tf.sequential({
    layers: [tf.layers.conv2d({
      inputShape: [null, null, 3] as unknown as number[],
      filters: 4,
      kernelSize: 3,
      activation: "relu",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }),
      trainable: false,
    })],
  });
  const backbone = {
    name: "tiny-frozen",
    outputShape: ([h, w]: [number, number]): [number, number, number] => [h - 2, w - 2, 4],
    forward: (x: tf.Tensor4D) => model.predict(x) as tf.Tensor4D,
  };
  const n = 5;
  const images = {
    data: Float32Array.from({ length: n * 36 }, (_, i) => Math.sin(i * 0.7)),
    shape: [n, 6, 6] as [number, number, number],
  };
  const source = backboneFeatureSource(images, backbone, {
    upsample: 3,
    normalization: imageStats(images),
  });
  const spec: ArchitectureSpec = {
    name: "small",
    convStack: { channels: [4, 4], kernelSize: 3, padding: "valid", dropout: 0 },
    head: { poolSize: 2, inputDropout: 0, hidden: [8], hiddenDropout: [0] },
    lrConv: 0,
    lrHead: 0,
  };
  const network = new TrainableNetwork(spec, source.featureShape, 2);
  // The valid 3×3 slice's exact placement: stack-input cell p sits at network-input pixel p + 1.
  const geometry = {
    imageShape: [6, 6] as [number, number],
    upsample: 3,
    slice: { stride: [1, 1] as [number, number], offset: [1, 1] as [number, number] },
  };
  const endToEnd = gradCam(network, source, { rows: "validation", geometry, target: 1 });
  const features = source.gather([0, 1, 2, 3, 4]);
  const cached = gradCam(
    network,
    {
      data: features.dataSync() as Float32Array,
      shape: features.shape as [number, number, number, number],
    },
    { rows: "validation", geometry, target: 1 },
  );
  features.dispose();
  assertEquals(endToEnd.cams.shape, [n, 6, 6]);
  assertEquals(endToEnd.convCams.shape, [n, 12, 12]); // 16 − 2·2 after two valid 3×3 convs
  assertEquals(endToEnd.geometry.cam.offset, [2, 2]);
  assertClose(endToEnd.cams.data, cached.cams.data, 1e-5);
  assert(endToEnd.cams.data.some((v) => v > 0));
  network.dispose();
  model.dispose();
  assertThrows(
    () => gradCam(new ImageClassifier(), source, { rows: "train" }),
    Error,
    "fit() it first",
  );
});
