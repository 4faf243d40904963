/**
 * The paper's five torchvision networks rebuilt in TF.js from a PyTorch state_dict compute
 * what PyTorch computes: random-weight models with non-trivial BatchNorm statistics, written
 * by tools/make_torchvision_fixtures.py (Debian's python3-torch and python3-torchvision) into
 * a temporary folder, must match PyTorch's eval-mode outputs to 1e-4 of the output's scale —
 * sliced at 150×150 and 50×50 (BatchNorm folded and unfolded), and for AlexNet and VGG16 the
 * complete logits at 224×224. Also: the strict key check, and the custom layers against
 * hand-computed cases.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { ready, tf } from "../lib/tf.ts";
import {
  AdaptiveAveragePooling2D,
  adaptiveWindows,
  buildTorchvisionModel,
  ChannelShuffle,
  channelShuffleOrder,
  checkStateDictKeys,
  denseKernel,
  groupedConvKernel,
  poolOutputSize,
  TorchConv2D,
  TorchMaxPool2D,
  TORCHVISION_ARCHS,
} from "../lib/vision/torchvision/mod.ts";
import { nativeSetting, setNativeEnabled } from "../lib/native/gemm.ts";
import { numericPaddingInKernels } from "../lib/native/kernels.ts";
import type { TorchvisionArch } from "../lib/vision/torchvision/mod.ts";
import type { TensorInfo } from "../lib/vision/torch/types.ts";
import {
  entriesOnly,
  makeFixtures,
  RawStateDictSource,
  readCases,
  relativeError,
} from "./_torchvision_fixtures.ts";

await ready();

const TOLERANCE = 1e-4;
const ARCHS = Object.keys(TORCHVISION_ARCHS) as TorchvisionArch[];
const dir = await Deno.makeTempDir({ prefix: "torchvision_fixtures_" });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});

let sliced: Promise<void> | undefined;
/** The slice fixtures of all five architectures, written once. */
function slicedFixtures(): Promise<string> {
  sliced ??= makeFixtures(`${dir}/slice`, ARCHS, "slice");
  return sliced.then(() => `${dir}/slice`);
}

/** Runs `model` on a case's input and returns max relative error against PyTorch. */
function errorOn(
  model: tf.LayersModel,
  c: {
    input: { data: Float32Array; shape: number[] };
    output: { data: Float32Array; shape: number[] };
  },
): number {
  const y = tf.tidy(() => model.predict(tf.tensor(c.input.data, c.input.shape)) as tf.Tensor);
  assertEquals(y.shape, c.output.shape, "output shape");
  const error = relativeError(y.dataSync() as Float32Array, c.output.data);
  y.dispose();
  return error;
}

// ---------------------------------------------------------------- the networks against PyTorch

for (const arch of ARCHS) {
  const hasBatchNorm = TORCHVISION_ARCHS[arch].params().some((p) => p.key.endsWith("running_var"));
  for (const fold of [true, false]) {
    const variant = fold ? "folded" : "unfolded (every module a layer)";
    Deno.test(`${arch} slice ${variant}: matches PyTorch at 150×150 and 50×50`, async () => {
      const folder = await slicedFixtures();
      const source = await RawStateDictSource.open(folder, arch);
      const built = await buildTorchvisionModel(arch, source, { foldBatchNorm: fold });
      const { model } = built;
      assertEquals(model.trainableWeights.length, 0);
      assert(model.layers.every((l) => !l.trainable));
      assert(built.keysRead.every((k) => TORCHVISION_ARCHS[arch].inSlice(k)));
      assertEquals(source.requested, built.keysRead);
      const bnLayers = model.layers.filter((l) => /BatchNorm/.test(l.getClassName())).length;
      assert(fold || !hasBatchNorm ? bnLayers === 0 : bnLayers > 0, `${bnLayers} BatchNorm layers`);
      const reluLayers = model.layers.filter((l) => l.getClassName() === "ReLU").length;
      // folded: only the ReLUs after residual additions remain layers
      assert(fold ? reluLayers <= 3 : reluLayers > 0, `${reluLayers} ReLU layers`);
      const cases = await readCases(folder, arch);
      const [h, w, c] = TORCHVISION_ARCHS[arch].sliceShapeAt150;
      assertEquals(cases[0].output.shape, [2, h, w, c]);
      for (const kase of cases) {
        const error = errorOn(model, kase);
        console.log(
          `  ${arch} ${kase.name} ${variant}: output ${kase.output.shape}, max rel. error ${
            error.toExponential(2)
          }`,
        );
        assert(error < TOLERANCE, `${arch} ${kase.name}: relative error ${error}`);
      }
      model.dispose();
    });
  }
}

for (const arch of ["alexnet", "vgg16"] as const) {
  Deno.test(`${arch} complete: logits match PyTorch at 224×224`, async () => {
    const folder = `${dir}/full_${arch}`;
    await makeFixtures(folder, [arch], "full");
    try {
      const source = await RawStateDictSource.open(folder, arch);
      const { model, keysRead } = await buildTorchvisionModel(arch, source, { slice: false });
      assertEquals(keysRead.length, TORCHVISION_ARCHS[arch].params().length);
      const full = (await readCases(folder, arch)).find((c) => c.name === "full224")!;
      assertEquals(full.output.shape, [2, 1000]);
      const error = errorOn(model, full);
      console.log(`  ${arch} full224: max rel. error ${error.toExponential(2)}`);
      assert(error < TOLERANCE, `${arch} logits: relative error ${error}`);
      model.dispose();
    } finally {
      await Deno.remove(folder, { recursive: true });
    }
  });
}

// ---------------------------------------------------------------- keys

Deno.test("key lists equal torchvision's model.state_dict() (order and shapes)", async () => {
  const folder = await slicedFixtures();
  for (const arch of ARCHS) {
    const json = JSON.parse(await Deno.readTextFile(`${folder}/${arch}.raw.json`)) as {
      keys: { key: string; shape: number[] }[];
    };
    const ours = TORCHVISION_ARCHS[arch].params();
    assertEquals(ours.map((p) => p.key), json.keys.map((k) => k.key), arch);
    assertEquals(ours.map((p) => p.shape), json.keys.map((k) => k.shape), arch);
  }
});

function entriesOf(arch: TorchvisionArch): Map<string, TensorInfo> {
  return new Map(
    TORCHVISION_ARCHS[arch].params().map((p) => [
      p.key,
      { dtype: p.key.endsWith("num_batches_tracked") ? "int64" : "float32", shape: p.shape },
    ]),
  );
}

Deno.test("a state_dict of another architecture is an error listing missing and unexpected keys", async () => {
  const source = entriesOnly(entriesOf("alexnet"), "alexnet.pth");
  const error = await assertRejects(() => buildTorchvisionModel("vgg16", source), Error);
  assert(
    error.message.includes("alexnet.pth is not a state_dict of torchvision's vgg16"),
    error.message,
  );
  assert(/missing keys \(\d+\): features\.2\.weight/.test(error.message), error.message);
  assert(
    /unexpected keys \(\d+\): features\.3\.weight.*classifier\.1\.weight/.test(error.message),
    error.message,
  );
  assert(error.message.includes("those of alexnet"), error.message);
  // WRN and ResNeXt differ only in conv2's shapes
  const wrn = entriesOnly(entriesOf("wide_resnet50_2"), "wrn.pth");
  const e2 = assertThrows(() => checkStateDictKeys("resnext50_32x4d", wrn), Error);
  assert(
    e2.message.includes(
      "wrong shape for layer1.0.conv2.weight: [128, 128, 3, 3] in the checkpoint, [128, 4, 3, 3]",
    ),
    e2.message,
  );
  assert(e2.message.includes("those of wide_resnet50_2"), e2.message);
});

Deno.test("a wrong shape is an error naming the key and both shapes", () => {
  const entries = entriesOf("shufflenet_v2");
  entries.set("stage2.1.branch2.0.weight", { dtype: "float32", shape: [58, 58, 3, 3] });
  const error = assertThrows(
    () => checkStateDictKeys("shufflenet_v2", entriesOnly(entries, "s.pth")),
    Error,
  );
  assert(
    error.message.includes(
      "wrong shape for stage2.1.branch2.0.weight: [58, 58, 3, 3] in the checkpoint, [58, 58, 1, 1]",
    ),
    error.message,
  );
});

Deno.test("key check: DataParallel prefixes are explained, missing batch counters accepted", () => {
  const prefixed = new Map([...entriesOf("alexnet")].map(([k, v]) => [`module.${k}`, v]));
  const error = assertThrows(
    () => checkStateDictKeys("alexnet", entriesOnly(prefixed, "dp.pth")),
    Error,
  );
  assert(error.message.includes('starts with "module."'), error.message);
  const old = new Map(
    [...entriesOf("resnext50_32x4d")].filter(([k]) => !k.endsWith("num_batches_tracked")),
  );
  checkStateDictKeys("resnext50_32x4d", entriesOnly(old, "old.pth"));
});

Deno.test("slice: false is refused for the networks only sliced here", async () => {
  const source = entriesOnly(entriesOf("shufflenet_v2"), "s.pth");
  const error = await assertRejects(() =>
    buildTorchvisionModel("shufflenet_v2", source, { slice: false })
  );
  assert((error as Error).message.includes("alexnet and vgg16"), (error as Error).message);
});

// ---------------------------------------------------------------- custom layers

Deno.test("channel shuffle: PyTorch's view(b, g, c/g, h, w).transpose(1, 2) order", () => {
  assertEquals(channelShuffleOrder(6, 2), [0, 3, 1, 4, 2, 5]);
  assertEquals(channelShuffleOrder(6, 3), [0, 2, 4, 1, 3, 5]);
  for (const groups of [2, 3]) {
    const x = tf.tidy(() => tf.range(0, 6).reshape([1, 1, 1, 6]).tile([2, 3, 2, 1]));
    const y = new ChannelShuffle({ groups }).apply(x) as tf.Tensor;
    const values = y.dataSync();
    for (let p = 0; p < 12; p++) {
      assertEquals([...values.slice(p * 6, p * 6 + 6)], channelShuffleOrder(6, groups));
    }
    tf.dispose([x, y]);
  }
});

Deno.test("adaptive average pooling: PyTorch's windows at uneven sizes", () => {
  assertEquals(adaptiveWindows(5, 3), [[0, 2], [1, 4], [3, 5]]);
  assertEquals(adaptiveWindows(13, 6), [[0, 3], [2, 5], [4, 7], [6, 9], [8, 11], [10, 13]]);
  assertEquals(adaptiveWindows(4, 6), [[0, 1], [0, 2], [1, 2], [2, 3], [2, 4], [3, 4]]);
  const [n, h, w, c, oh, ow] = [2, 5, 13, 3, 3, 6];
  const x = tf.randomNormal([n, h, w, c], 0, 1, "float32", 3) as tf.Tensor4D;
  const y = new AdaptiveAveragePooling2D({ outputSize: [oh, ow] }).apply(x) as tf.Tensor;
  assertEquals(y.shape, [n, oh, ow, c]);
  const xs = x.dataSync();
  const ys = y.dataSync();
  const rows = adaptiveWindows(h, oh);
  const cols = adaptiveWindows(w, ow);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let k = 0; k < c; k++) {
          let sum = 0;
          for (let r = rows[i][0]; r < rows[i][1]; r++) {
            for (let s = cols[j][0]; s < cols[j][1]; s++) sum += xs[((b * h + r) * w + s) * c + k];
          }
          const expected = sum / ((rows[i][1] - rows[i][0]) * (cols[j][1] - cols[j][0]));
          assert(Math.abs(ys[((b * oh + i) * ow + j) * c + k] - expected) < 1e-5);
        }
      }
    }
  }
  tf.dispose([x, y]);
});

Deno.test("max-pool: −∞ padding and ceil mode as in nn.MaxPool2d", () => {
  assertEquals(poolOutputSize(36, 3, 2, 0), 17);
  assertEquals(poolOutputSize(75, 3, 2, 1), 38);
  assertEquals(poolOutputSize(6, 3, 2, 0, true), 3);
  assertEquals(poolOutputSize(5, 2, 2, 1, true), 3); // the window starting in the right padding is dropped
  const size = 6;
  const x = tf.tensor4d(Array.from({ length: size * size }, (_, i) => -1 - i), [1, size, size, 1]);
  for (const [padding, ceilMode] of [[1, false], [0, true], [1, true]] as const) {
    const layer = new TorchMaxPool2D({ poolSize: 3, strides: 2, padding, ceilMode });
    const y = layer.apply(x) as tf.Tensor;
    const out = poolOutputSize(size, 3, 2, padding, ceilMode);
    assertEquals(y.shape, [1, out, out, 1]);
    const values = y.dataSync();
    for (let i = 0; i < out; i++) {
      for (let j = 0; j < out; j++) {
        // inputs decrease with index, so the max is the window's first in-bounds element
        const r = Math.max(0, i * 2 - padding);
        const c = Math.max(0, j * 2 - padding);
        assertEquals(values[i * out + j], -1 - (r * size + c));
      }
    }
    y.dispose();
  }
  x.dispose();
});

Deno.test("custom layers match PyTorch's functions at uneven sizes", async () => {
  const folder = await slicedFixtures();
  const cases = JSON.parse(await Deno.readTextFile(`${folder}/layers.json`)) as {
    name: string;
    op: "adaptive_avg_pool" | "max_pool" | "channel_shuffle";
    args: Record<string, unknown>;
    input: { shape: number[]; data: number[] };
    output: { shape: number[]; data: number[] };
  }[];
  assertEquals(cases.length, 7);
  for (const c of cases) {
    const layer = c.op === "adaptive_avg_pool"
      ? new AdaptiveAveragePooling2D(c.args as { outputSize: [number, number] })
      : c.op === "max_pool"
      ? new TorchMaxPool2D(c.args as { poolSize: number })
      : new ChannelShuffle(c.args as { groups: number });
    const x = tf.tensor(c.input.data, c.input.shape);
    const y = layer.apply(x) as tf.Tensor;
    assertEquals(y.shape, c.output.shape, c.name);
    const error = relativeError(y.dataSync() as Float32Array, new Float32Array(c.output.data));
    assert(error < 1e-6, `${c.name}: relative error ${error}`);
    tf.dispose([x, y]);
  }
});

Deno.test("grouped convolution: the block-diagonal kernel equals per-group convolutions", () => {
  const [groups, perIn, perOut, k] = [4, 3, 2, 3];
  const weight = tf.randomNormal([groups * perOut, perIn, k, k], 0, 1, "float32", 7);
  const kernel = groupedConvKernel(
    { dtype: "float32", shape: weight.shape, data: weight.dataSync() as Float32Array },
    groups,
  );
  const x = tf.randomNormal([2, 7, 7, groups * perIn], 0, 1, "float32", 8) as tf.Tensor4D;
  const dense = tf.conv2d(
    x,
    tf.tensor4d(kernel, [k, k, groups * perIn, groups * perOut]),
    1,
    "valid",
  );
  const parts = Array.from({ length: groups }, (_, g) => {
    const wg = weight.slice([g * perOut, 0, 0, 0], [perOut, perIn, k, k]).transpose([
      2,
      3,
      1,
      0,
    ]) as tf.Tensor4D;
    return tf.conv2d(x.slice([0, 0, 0, g * perIn], [-1, -1, -1, perIn]), wg, 1, "valid");
  });
  const reference = tf.concat(parts, 3);
  assert(tf.max(tf.abs(tf.sub(dense, reference))).dataSync()[0] < 1e-5);
  tf.dispose([weight, x, dense, reference, ...parts]);
});

Deno.test("TorchConv2D: padding inside the kernel equals padding the input first", async () => {
  const cases = [
    { x: [2, 9, 9, 4], filters: 6, k: 3, strides: 1, padding: 1, depthwise: false },
    { x: [2, 10, 11, 3], filters: 5, k: 7, strides: 2, padding: 3, depthwise: false },
    { x: [1, 9, 8, 6], filters: 6, k: 3, strides: 2, padding: 1, depthwise: true },
  ];
  for (const c of cases) {
    const layer = new TorchConv2D({
      filters: c.filters,
      kernelSize: c.k,
      strides: c.strides,
      padding: c.padding,
      depthwise: c.depthwise,
      activation: "relu",
    });
    const x = tf.randomNormal(c.x, 0, 1, "float32", 13);
    layer.apply(x); // builds
    const [kernel, bias] = layer.getWeights();
    layer.setWeights([
      tf.randomNormal(kernel.shape, 0, 1, "float32", 14),
      tf.randomNormal(bias.shape, 0, 1, "float32", 15),
    ]);
    const w = layer.getWeights().map((t) => t.dataSync().slice());
    // reference: PyTorch's padding as an explicit zero pad, on the cpu backend
    const run = () => {
      const input = tf.tensor4d(x.dataSync(), c.x as [number, number, number, number]);
      const padded = tf.pad(input, [[0, 0], [c.padding, c.padding], [c.padding, c.padding], [
        0,
        0,
      ]]);
      const filter = tf.tensor4d(w[0], kernel.shape as [number, number, number, number]);
      const conv = c.depthwise
        ? tf.depthwiseConv2d(padded, filter, c.strides, "valid")
        : tf.conv2d(padded, filter, c.strides, "valid");
      return tf.relu(tf.add(conv, tf.tensor1d(w[1])));
    };
    await ready("cpu");
    const expected = run().dataSync() as Float32Array;
    await ready("wasm");
    for (const nativeOn of [true, false]) {
      setNativeEnabled(nativeOn);
      try {
        const inKernel = numericPaddingInKernels(c.depthwise ? "depthwise" : "conv");
        if (nativeSetting() !== "off") assertEquals(inKernel, nativeOn, JSON.stringify(c));
        const info = await tf.profile(() => layer.apply(x) as tf.Tensor);
        const y = info.result as tf.Tensor;
        assertEquals(info.kernelNames.includes("PadV2"), !inKernel, "padded copy made");
        const error = relativeError(y.dataSync() as Float32Array, expected);
        assert(error < 1e-5, `${JSON.stringify(c)} native ${nativeOn}: ${error}`);
        y.dispose();
      } finally {
        setNativeEnabled(true);
      }
    }
    tf.dispose([x, kernel, bias]);
  }
});

Deno.test("dense kernel from NCHW flattening equals transposing to NCHW before flattening", () => {
  const [c, h, w, out] = [3, 2, 4, 5];
  const weight = tf.randomNormal([out, c * h * w], 0, 1, "float32", 9);
  const x = tf.randomNormal([2, h, w, c], 0, 1, "float32", 10);
  const torchOrder = tf.matMul(x.transpose([0, 3, 1, 2]).reshape([2, -1]), weight, false, true);
  const kernel = denseKernel(
    { dtype: "float32", shape: weight.shape, data: weight.dataSync() as Float32Array },
    [c, h, w],
  );
  const ours = tf.matMul(x.reshape([2, -1]), tf.tensor2d(kernel, [c * h * w, out]));
  assert(tf.max(tf.abs(tf.sub(ours, torchOrder))).dataSync()[0] < 1e-5);
  tf.dispose([weight, x, torchOrder, ours]);
});

Deno.test("a built slice with custom layers survives serialisation", async () => {
  const folder = await slicedFixtures();
  const source = await RawStateDictSource.open(folder, "shufflenet_v2");
  const { model } = await buildTorchvisionModel("shufflenet_v2", source, { inputSize: [50, 50] });
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler((artifacts) => {
    saved = artifacts;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
  const x = tf.randomNormal([1, 50, 50, 3], 0, 1, "float32", 12);
  const a = model.predict(x) as tf.Tensor;
  const b = loaded.predict(x) as tf.Tensor;
  assertEquals(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0], 0);
  const pool = tf.sequential({
    layers: [new AdaptiveAveragePooling2D({ outputSize: [2, 3], inputShape: [5, 7, 2] })],
  });
  const json = pool.toJSON(undefined, false);
  const pool2 = await tf.models.modelFromJSON({
    modelTopology: json as tf.io.ModelJSON["modelTopology"],
  });
  assertEquals(pool2.outputs[0].shape, [null, 2, 3, 2]);
  tf.dispose([x, a, b]);
  model.dispose();
  loaded.dispose();
});
