/** The trainable network's pieces against hand-computed values and TF.js' generic ops. */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { ready, tf } from "../lib/tf.ts";
import {
  Adam,
  adaptivePoolMatrix,
  batchNormTraining,
  cachedFeatureSource,
  fitFeatureStandardization,
  getArchitecture,
  resolvePadding,
  TrainableNetwork,
} from "../lib/train/mod.ts";

Deno.test("adaptive average pooling uses PyTorch's windows", () => {
  // 5 → 3: windows [0, 2), [1, 4), [3, 5) per axis (floor(i·5/3), ceil((i+1)·5/3)).
  const m = adaptivePoolMatrix(5, 5, 3);
  const rows = [[0, 1], [1, 2, 3], [3, 4]];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) {
      const cell = m.subarray((i * 3 + j) * 25, (i * 3 + j + 1) * 25);
      const weight = 1 / (rows[i].length * rows[j].length);
      for (let r = 0; r < 5; r++) {
        for (let c = 0; c < 5; c++) {
          const inside = rows[i].includes(r) && rows[j].includes(c);
          assertAlmostEquals(cell[r * 5 + c], inside ? weight : 0, 1e-7);
        }
      }
    }
  }
  // Upsampling (7 → 10, the paper's ShuffleNet case) still averages a non-empty window.
  const up = adaptivePoolMatrix(7, 7, 10);
  for (let o = 0; o < 100; o++) {
    const sum = up.subarray(o * 49, (o + 1) * 49).reduce((a, b) => a + b, 0);
    assertAlmostEquals(sum, 1, 1e-6);
  }
});

Deno.test("padding: the paper's sizes keep valid convolutions, 50×50 inputs switch to same", () => {
  const vgg = getArchitecture("vgg16");
  assertEquals(resolvePadding(vgg, [37, 37]), { padding: "valid", outputSize: [25, 25] });
  // ShuffleNet 19 → 7 (paper), AlexNet 17 → 13 (k = 2)
  assertEquals(resolvePadding(getArchitecture("shufflenet_v2"), [19, 19]).outputSize, [7, 7]);
  assertEquals(resolvePadding(getArchitecture("alexnet"), [17, 17]).outputSize, [13, 13]);
  // VGG19 slice of a 50×50 image: 12×12, too small for four valid 4×4 convolutions
  assertEquals(resolvePadding(vgg, [12, 12]), { padding: "same", outputSize: [12, 12] });
  const strict = { ...vgg, convStack: { ...vgg.convStack, padding: "valid" as const } };
  assertThrows(() => resolvePadding(strict, [12, 12]), Error, "too small");
});

Deno.test("the paper's VGG16 head on a 37×37×256 slice has the official parameter count", async () => {
  await ready("wasm");
  const net = new TrainableNetwork(getArchitecture("vgg16"), [37, 37, 256], 1);
  // conv k×k×in×out + out biases + 2·out BatchNorm scale/shift; dense in×out + out
  const conv = (i: number, o: number) => 16 * i * o + o + 2 * o;
  const dense = (i: number, o: number) => i * o + o;
  const expected = conv(256, 192) + conv(192, 128) + conv(128, 64) + conv(64, 32) +
    dense(3200, 1600) + dense(1600, 700) + dense(700, 50) + dense(50, 2);
  assertEquals(net.countParams(), expected);
  assertEquals(net.convOutputShape, [25, 25, 32]);
  const x = tf.randomUniform([2, 37, 37, 256]) as tf.Tensor4D;
  const logits = net.apply(x, { training: false });
  assertEquals(logits.shape, [2, 2]);
  tf.dispose([x, logits]);
  net.dispose();
});

Deno.test("initialisation is seeded and Xavier-scaled", async () => {
  await ready("wasm");
  const spec = getArchitecture("vgg16");
  const a = new TrainableNetwork(spec, [12, 12, 64], 7);
  const b = new TrainableNetwork(spec, [12, 12, 64], 7);
  const c = new TrainableNetwork(spec, [12, 12, 64], 8);
  const wa = a.getWeights(), wb = b.getWeights(), wc = c.getWeights();
  assertEquals(wa["conv1/kernel"].data, wb["conv1/kernel"].data);
  assert(wa["conv1/kernel"].data.some((v, i) => v !== wc["conv1/kernel"].data[i]));
  // Xavier normal for conv1: std √(2 / (fan_in + fan_out)), fan = channels · 4 · 4
  const k = wa["conv1/kernel"].data;
  const std = Math.sqrt(k.reduce((s, v) => s + v * v, 0) / k.length);
  const expected = Math.sqrt(2 / (64 * 16 + 192 * 16));
  assert(Math.abs(std / expected - 1) < 0.02, `conv1 std ${std}, expected ${expected}`);
  // Xavier uniform with gain √2 for dense1: bound √2·√(6 / (fan_in + fan_out))
  const d = wa["dense1/kernel"].data;
  const bound = Math.SQRT2 * Math.sqrt(6 / (3200 + 1600));
  assert(d.every((v) => Math.abs(v) <= bound));
  assert(d.some((v) => Math.abs(v) > 0.95 * bound));
  for (const n of [a, b, c]) n.dispose();
});

Deno.test("BatchNorm's hand-written gradient equals TF.js' generic one (cpu)", async () => {
  await ready("cpu");
  const x = tf.randomNormal([4, 3, 5, 6], 0.5, 2, "float32", 1) as tf.Tensor4D;
  const gamma = tf.randomNormal([6], 1, 0.3, "float32", 2);
  const beta = tf.randomNormal([6], 0, 1, "float32", 3);
  const w = tf.randomNormal([4, 3, 5, 6], 0, 1, "float32", 4);
  const generic = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(a, [0, 1, 2]);
    return tf.sum(tf.mul(tf.batchNorm(a, mean, variance, b, g, 1e-5), w));
  };
  const ours = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(batchNormTraining(a as tf.Tensor4D, g, b), w));
  assertAlmostEquals(
    ours(x, gamma, beta).dataSync()[0],
    generic(x, gamma, beta).dataSync()[0],
    1e-4,
  );
  const g1 = tf.grads(generic)([x, gamma, beta]);
  const g2 = tf.grads(ours)([x, gamma, beta]);
  for (let i = 0; i < 3; i++) {
    const err = tf.max(tf.abs(tf.sub(g1[i], g2[i]))).dataSync()[0];
    const scale = tf.max(tf.abs(g1[i])).dataSync()[0];
    assert(err / scale < 1e-4, `input ${i}: relative error ${err / scale}`);
  }
  await ready("wasm");
});

Deno.test("Adam follows PyTorch's update rule, per group learning rate", async () => {
  await ready("wasm");
  const p1 = tf.variable(tf.tensor1d([1, -2]));
  const p2 = tf.variable(tf.tensor1d([0.5]));
  const adam = new Adam([
    { name: "a", lr: 0.1, params: [{ name: "p1", variable: p1 }] },
    { name: "b", lr: 0.01, params: [{ name: "p2", variable: p2 }] },
  ]);
  const gradsSeq = [[[0.5, -1], [2]], [[-0.25, 3], [1]]];
  // Hand computation with β1 = 0.9, β2 = 0.999, ε = 1e-8.
  const ref = [[1, -2], [0.5]];
  const m = [[0, 0], [0]], v = [[0, 0], [0]];
  const lrs = [0.1, 0.01];
  gradsSeq.forEach((step, t) => {
    step.forEach((g, k) => {
      g.forEach((gi, i) => {
        m[k][i] = 0.9 * m[k][i] + 0.1 * gi;
        v[k][i] = 0.999 * v[k][i] + 0.001 * gi * gi;
        const bc1 = 1 - 0.9 ** (t + 1), bc2 = 1 - 0.999 ** (t + 1);
        ref[k][i] -= (lrs[k] / bc1) * m[k][i] / (Math.sqrt(v[k][i]) / Math.sqrt(bc2) + 1e-8);
      });
    });
    const grads = { [p1.name]: tf.tensor1d(step[0]), [p2.name]: tf.tensor1d(step[1]) };
    adam.applyGradients(grads);
    tf.dispose(Object.values(grads));
  });
  const got1 = p1.dataSync(), got2 = p2.dataSync();
  assertAlmostEquals(got1[0], ref[0][0], 1e-6);
  assertAlmostEquals(got1[1], ref[0][1], 1e-6);
  assertAlmostEquals(got2[0], ref[1][0], 1e-6);
  // State round trip
  const state = adam.getState();
  assertEquals(state.step, 2);
  const other = new Adam([
    { name: "a", lr: 0.1, params: [{ name: "p1", variable: p1 }] },
    { name: "b", lr: 0.01, params: [{ name: "p2", variable: p2 }] },
  ]);
  other.setState(state);
  assertEquals(other.getState(), state);
  tf.dispose([p1, p2]);
});

Deno.test("Adam's fused update is bit for bit TF.js' op-by-op update (decay, frozen group, missing gradient)", async () => {
  await ready("wasm");
  const shapes = [[3, 5], [7], [4]];
  const random = (n: number, scale: number) =>
    Float32Array.from({ length: n }, (_, i) => scale * Math.sin(1.7 * i + n));
  const start = shapes.map((s, k) => random(s.reduce((a, b) => a * b, 1), k + 1));
  const ours = shapes.map((s, k) => tf.variable(tf.tensor(start[k], s)));
  const ref = shapes.map((s, k) => tf.variable(tf.tensor(start[k], s)));
  const lrs = [3e-3, 1e-2, 0];
  const decay = 1e-2;
  const adam = new Adam(
    ours.map((v, k) => ({ name: `g${k}`, lr: lrs[k], params: [{ name: `p${k}`, variable: v }] })),
    { weightDecay: decay },
  );
  // The reference: the update written as TF.js float32 ops, one after another.
  const m: tf.Tensor[] = ref.map((v) => tf.zerosLike(v));
  const v2: tf.Tensor[] = ref.map((v) => tf.zerosLike(v));
  for (let t = 1; t <= 4; t++) {
    const grads = shapes.map((s, k) => tf.tensor(random(start[k].length, t * 0.37 + k), s));
    // The second parameter has no gradient at step 2: it must stay as it is.
    const given = (k: number) => !(k === 1 && t === 2);
    adam.applyGradients(
      Object.fromEntries(ours.flatMap((v, k) => given(k) ? [[v.name, grads[k]]] : [])),
    );
    ref.forEach((p, k) => {
      if (!given(k) || lrs[k] === 0) return;
      tf.tidy(() => {
        const g = grads[k].add(p.mul(decay));
        const m1 = m[k].mul(0.9).add(g.mul(1 - 0.9));
        const v1 = v2[k].mul(0.999).add(g.square().mul(1 - 0.999));
        const denom = v1.sqrt().div(Math.sqrt(1 - 0.999 ** t)).add(1e-8);
        p.assign(p.sub(m1.div(denom).mul(lrs[k] / (1 - 0.9 ** t))));
        m[k].dispose();
        v2[k].dispose();
        m[k] = tf.keep(m1);
        v2[k] = tf.keep(v1);
      });
    });
    tf.dispose(grads);
  }
  ours.forEach((v, k) => {
    assertEquals(Array.from(v.dataSync()), Array.from(ref[k].dataSync()), `parameter ${k}`);
  });
  assertEquals(Array.from(ours[2].dataSync()), Array.from(start[2]), "lr 0 leaves it unchanged");
  const state = adam.getState();
  assertEquals(Array.from(state.moments["m/p0"].data), Array.from(m[0].dataSync()));
  assertEquals(Array.from(state.moments["v/p1"].data), Array.from(v2[1].dataSync()));
  tf.dispose([...ours, ...ref, ...m, ...v2]);
});

Deno.test("feature standardisation: mean per value, spread per channel, applied before the conv stack", async () => {
  await ready("wasm");
  // Three rows of 1×2×2 maps (positions p0, p1; channels c0, c1).
  const rows = [
    [1, 10, 3, 20],
    [2, 10, 5, 26],
    [3, 10, 7, 23],
  ];
  const source = cachedFeatureSource({ data: Float32Array.from(rows.flat()), shape: [3, 1, 2, 2] });
  const { mean, scale } = fitFeatureStandardization(source, undefined, 2);
  assertEquals(Array.from(mean), [2, 10, 5, 23]);
  // c0: variances across rows 2/3 (p0) and 8/3 (p1) → 5/3; c1: 0 (p0) and 6 (p1) → 3.
  assertAlmostEquals(scale[0], 1 / Math.sqrt(5 / 3 + 1e-5), 1e-6);
  assertAlmostEquals(scale[1], 1 / Math.sqrt(3 + 1e-5), 1e-6);
  // A network with the standardisation sees the training mean map as all zeros: the same
  // logits as a network without it fed zeros.
  const spec = getArchitecture("vgg16");
  const small = {
    ...spec,
    convStack: { ...spec.convStack, channels: [4, 4, 4, 4], kernelSize: 1 },
    head: { ...spec.head, poolSize: 1, hidden: [3], hiddenDropout: [0] },
  };
  const withInput = new TrainableNetwork(small, [1, 2, 2], 5, { standardizeInput: true });
  const plain = new TrainableNetwork(small, [1, 2, 2], 5);
  withInput.setStandardization({ mean, scale });
  const a = withInput.apply(tf.tensor4d(mean, [1, 1, 2, 2]), { training: false });
  const b = plain.apply(tf.zeros([1, 1, 2, 2]) as tf.Tensor4D, { training: false });
  assertEquals(Array.from(a.dataSync()), Array.from(b.dataSync()));
  // It is saved with the weights.
  assertEquals(Array.from(withInput.getWeights()["input/mean"].data), [2, 10, 5, 23]);
  tf.dispose([a, b]);
  withInput.dispose();
  plain.dispose();
});
