/**
 * The native kernels (lib/native/) against independent references: each GEMM binding against
 * a plain JavaScript product (every transpose, leading dimensions, beta), and each kernel on
 * the wasm backend against TF.js's own cpu kernels (convolutions with strides, paddings,
 * dilations, 1×1, chunked im2col; their two gradients; matrix products with transposes,
 * batches, broadcasting, fused bias and activations). Tolerances are relative to each
 * tensor's norm, as the agreement targets of bench/train.ts.
 *
 * These tests need a native library (Debian's libdnnl2 or libopenblas0-pthread, installed
 * by tools/run); with TEXT_AS_IMAGE_NATIVE=off they check that the wasm kernels run instead.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { nativeStatus, ready, tf } from "../lib/tf.ts";
import {
  type NativeLibrary,
  nativeSetting,
  openNativeGemm,
  setNativeEnabled,
} from "../lib/native/gemm.ts";
import {
  nativeProfile,
  resetNativeProfile,
  setIm2colChunkFloats,
  setPrimitivesEnabled,
} from "../lib/native/kernels.ts";
import { registerTrainingKernels } from "../lib/train/kernels.ts";
import { getArchitecture } from "../lib/train/architecture.ts";
import { TrainableNetwork } from "../lib/train/network.ts";
import { Adam } from "../lib/train/adam.ts";
import { lcgValues, onBothBackends, relativeError } from "./_train_fixtures.ts";

const native = nativeSetting() !== "off";

Deno.test("native status says which kernels run", async () => {
  await ready("wasm");
  const status = nativeStatus();
  if (native) {
    assert(
      status.kernels !== "wasm",
      `no native library loaded (${status.reason}): install libdnnl2 (bash tools/run test does)`,
    );
    assert(status.threads >= 1);
  } else {
    assertEquals(status.kernels, "wasm");
    assertEquals(status.reason, "TEXT_AS_IMAGE_NATIVE=off");
  }
});

for (const library of ["onednn", "openblas"] as NativeLibrary[]) {
  Deno.test({
    name: `${library} sgemm equals a plain product (transposes, strides, beta)`,
    ignore: !native,
    fn() {
      const gemm = openNativeGemm(library);
      const m = 7, n = 5, k = 9, pad = 3;
      for (const tA of [false, true]) {
        for (const tB of [false, true]) {
          // stored matrices with row strides larger than their widths
          const [ar, ac] = tA ? [k, m] : [m, k], [br, bc] = tB ? [n, k] : [k, n];
          const lda = ac + pad, ldb = bc + pad, ldc = n + pad;
          const a = lcgValues(ar * lda, 1), b = lcgValues(br * ldb, 2), c0 = lcgValues(m * ldc, 3);
          const c = c0.slice();
          gemm.sgemm(tA, tB, m, n, k, a, lda, b, ldb, 0.5, c, ldc);
          const expected = c0.slice();
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let sum = 0;
              for (let p = 0; p < k; p++) {
                sum += (tA ? a[p * lda + i] : a[i * lda + p]) *
                  (tB ? b[j * ldb + p] : b[p * ldb + j]);
              }
              expected[i * ldc + j] = sum + 0.5 * c0[i * ldc + j];
            }
          }
          assert(relativeError(c, expected) < 1e-6, `${library} tA ${tA} tB ${tB}`);
        }
      }
    },
  });
}

type Shape4 = [number, number, number, number];
const convCases: {
  x: Shape4;
  filter: Shape4;
  strides: number;
  pad: "same" | "valid" | number;
  dilations?: number;
}[] = [
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 5], strides: 1, pad: "same" },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 5], strides: 2, pad: "same" },
  { x: [3, 10, 11, 4], filter: [4, 4, 4, 6], strides: 1, pad: "same" },
  { x: [3, 10, 11, 4], filter: [4, 4, 4, 6], strides: 1, pad: "valid" },
  { x: [2, 8, 8, 7], filter: [2, 2, 7, 3], strides: 2, pad: "valid" },
  { x: [1, 7, 6, 2], filter: [5, 3, 2, 4], strides: 1, pad: 1 },
  { x: [2, 6, 6, 16], filter: [1, 1, 16, 8], strides: 1, pad: "valid" },
  { x: [2, 6, 6, 16], filter: [1, 1, 16, 8], strides: 2, pad: "same" },
  { x: [2, 11, 11, 5], filter: [3, 3, 5, 4], strides: 1, pad: "same", dilations: 2 },
  { x: [4, 12, 12, 32], filter: [4, 4, 32, 24], strides: 1, pad: "same" },
];

for (const [chunk, primitive] of [[undefined, true], [undefined, false], [50, false]] as const) {
  Deno.test(
    `native convolution, its input and filter gradients equal the cpu kernels` +
      (primitive ? " (oneDNN's convolution primitives)" : " (im2col + GEMM)") +
      (chunk ? ` (im2col in chunks of ${chunk} values)` : ""),
    async () => {
      await ready("wasm");
      registerTrainingKernels();
      setIm2colChunkFloats(chunk);
      setPrimitivesEnabled(primitive);
      resetNativeProfile();
      try {
        // TF.js wasm's own Conv2D corrupts its heap on numeric padding, so with the native
        // kernels off that case is left out (the native kernels compute it).
        for (const c of convCases.filter((c) => native || typeof c.pad !== "number")) {
          const xData = lcgValues(c.x.reduce((a, b) => a * b), 1);
          const fData = lcgValues(c.filter.reduce((a, b) => a * b), 2);
          const [ours, ref] = await onBothBackends(() => {
            const x = tf.tensor4d(xData, c.x), filter = tf.tensor4d(fData, c.filter);
            const conv = (xx: tf.Tensor4D, ff: tf.Tensor4D) =>
              tf.conv2d(xx, ff, c.strides, c.pad, "NHWC", c.dilations ?? 1);
            const y = conv(x, filter);
            const dy = tf.tensor4d(lcgValues(y.size, 3), y.shape);
            const outs: tf.Tensor[] = [y];
            if ((c.dilations ?? 1) === 1) {
              // TF.js has no gradient for dilated convolutions
              const [dx, df] = tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
                conv(xx as tf.Tensor4D, ff as tf.Tensor4D)
              )([x, filter], dy);
              outs.push(dx, df);
            }
            return outs;
          });
          for (let i = 0; i < ours.length; i++) {
            const err = relativeError(ours[i], ref[i]);
            assert(err < 1e-5, `${JSON.stringify(c)} output ${i}: relative error ${err}`);
          }
        }
        if (native) assert(nativeProfile().gemmCalls > 0, "the native kernels did not run");
        if (native && chunk) assert(nativeProfile().im2colMs > 0);
        if (native && primitive) assert(nativeProfile().convMs > 0, "the primitive did not run");
        if (native && !primitive) assertEquals(nativeProfile().convMs, 0);
      } finally {
        setIm2colChunkFloats(undefined);
        setPrimitivesEnabled(true);
      }
    },
  );
}

Deno.test("native fused convolution (bias, relu / leaky relu / relu6) equals the cpu kernels", async () => {
  await ready("wasm");
  for (const activation of ["linear", "relu", "leakyrelu", "relu6", "elu", "sigmoid"] as const) {
    const [ours, ref] = await onBothBackends(() => [
      tf.fused.conv2d({
        x: tf.tensor4d(lcgValues(2 * 7 * 7 * 3, 4), [2, 7, 7, 3]),
        filter: tf.tensor4d(lcgValues(3 * 3 * 3 * 6, 5), [3, 3, 3, 6]),
        strides: 1,
        pad: "same",
        bias: tf.tensor1d(lcgValues(6, 6)),
        activation,
        leakyreluAlpha: 0.1,
      }),
    ]);
    const err = relativeError(ours[0], ref[0]);
    assert(err < 1e-5, `${activation}: ${err}`);
  }
});

Deno.test("native matrix products (transposes, batches, broadcasting, fused) equal the cpu kernels", async () => {
  await ready("wasm");
  registerTrainingKernels();
  const t = (shape: number[], seed: number) =>
    tf.tensor(lcgValues(shape.reduce((a, b) => a * b), seed), shape);
  const cases: [string, () => tf.Tensor][] = [
    ["2-D", () => tf.matMul(t([5, 7], 1), t([7, 3], 2))],
    ["Aᵀ", () => tf.matMul(t([7, 5], 1), t([7, 3], 2), true, false)],
    ["Bᵀ", () => tf.matMul(t([5, 7], 1), t([3, 7], 2), false, true)],
    ["AᵀBᵀ", () => tf.matMul(t([7, 5], 1), t([3, 7], 2), true, true)],
    ["batched", () => tf.matMul(t([4, 5, 7], 1), t([4, 7, 3], 2))],
    ["batched Bᵀ", () => tf.matMul(t([2, 3, 5, 7], 1), t([2, 3, 3, 7], 2), false, true)],
    ["broadcast B", () => tf.matMul(t([4, 5, 7], 1), t([7, 3], 2))],
    ["broadcast B, Aᵀ", () => tf.matMul(t([4, 7, 5], 1), t([1, 7, 3], 2), true, false)],
    ["broadcast A", () => tf.matMul(t([5, 7], 1), t([4, 7, 3], 2))],
    [
      "fused bias + relu",
      () =>
        tf.fused.matMul({ a: t([6, 8], 1), b: t([8, 4], 2), bias: t([4], 3), activation: "relu" }),
    ],
    [
      "fused Bᵀ, scalar bias, leaky relu",
      () =>
        tf.fused.matMul({
          a: t([6, 8], 1),
          b: t([4, 8], 2),
          transposeB: true,
          bias: t([1], 3),
          activation: "leakyrelu",
          leakyreluAlpha: 0.3,
        }),
    ],
    ["empty", () => tf.matMul(t([0, 7], 1), t([7, 3], 2))],
  ];
  for (const [name, f] of cases) {
    const [ours, ref] = await onBothBackends(() => [f()]);
    assertEquals(ours[0].length, ref[0].length, name);
    if (ref[0].length) assert(relativeError(ours[0], ref[0]) < 1e-6, name);
  }
  // PReLU is left to the wasm kernel, whose result must be the same
  const [ours, ref] = await onBothBackends(() => [
    tf.fused.matMul({
      a: t([6, 8], 1),
      b: t([8, 4], 2),
      activation: "prelu",
      preluActivationWeights: t([4], 3),
    }),
  ]);
  assert(relativeError(ours[0], ref[0]) < 1e-6, "prelu");
});

Deno.test({
  name: "switched off, the same kernels run on wasm and agree",
  ignore: !native,
  async fn() {
    await ready("wasm");
    registerTrainingKernels();
    const x = tf.tensor4d(lcgValues(2 * 8 * 8 * 6, 1), [2, 8, 8, 6]);
    const f = tf.tensor4d(lcgValues(3 * 3 * 6 * 4, 2), [3, 3, 6, 4]);
    const run = () =>
      tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
        tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, 1, "same").square().sum()
      )([x, f]).map((g) => g.dataSync() as Float32Array);
    resetNativeProfile();
    const withNative = run();
    assert(nativeProfile().gemmCalls > 0);
    setNativeEnabled(false);
    try {
      assertEquals(nativeStatus().kernels, "wasm");
      resetNativeProfile();
      const withWasm = run();
      assertEquals(nativeProfile().gemmCalls, 0);
      for (let i = 0; i < 2; i++) assert(relativeError(withNative[i], withWasm[i]) < 1e-5);
    } finally {
      setNativeEnabled(true);
    }
  },
});

Deno.test("bad settings are refused with what to do", () => {
  assertThrows(() => setIm2colChunkFloats(0), Error, "positive integer");
  const previous = Deno.env.get("TEXT_AS_IMAGE_NATIVE");
  Deno.env.set("TEXT_AS_IMAGE_NATIVE", "mkl");
  try {
    assertThrows(() => nativeSetting(), Error, "use auto, onednn, openblas or off");
  } finally {
    if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_NATIVE");
    else Deno.env.set("TEXT_AS_IMAGE_NATIVE", previous);
  }
});

Deno.test({
  name:
    "a training step of the paper's VGG-type network: native and wasm agree (forward, gradients, Adam step)",
  ignore: !native,
  async fn() {
    await ready("wasm");
    registerTrainingKernels();
    const spec = getArchitecture("vgg16");
    const inputShape: [number, number, number] = [12, 12, 256];
    const batch = 8;
    const x = tf.tensor4d(lcgValues(batch * 12 * 12 * 256, 7), [batch, ...inputShape]);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 1, 0, 1, 0, 0, 1], "int32"), 2);
    const step = (useNative: boolean) => {
      setNativeEnabled(useNative);
      resetNativeProfile();
      try {
        const net = new TrainableNetwork(spec, inputShape, 3);
        const adam = new Adam([
          { name: "conv", lr: spec.lrConv, params: net.params.filter((p) => p.group === "conv") },
          { name: "head", lr: spec.lrHead, params: net.params.filter((p) => p.group === "head") },
        ]);
        let logits: Float32Array = new Float32Array();
        const { grads } = tf.variableGrads(() => {
          const out = net.apply(x, { training: true, dropoutSeed: 5 });
          logits = out.dataSync() as Float32Array;
          return tf.losses.softmaxCrossEntropy(labels, out) as tf.Scalar;
        });
        // by parameter name (TF.js makes variable names unique per process)
        const gradients = Object.fromEntries(
          net.params.map((p) => [p.name, grads[p.variable.name].dataSync() as Float32Array]),
        );
        adam.applyGradients(grads);
        tf.dispose(Object.values(grads));
        const weights = net.getWeights();
        net.dispose();
        return { logits, gradients, weights, calls: nativeProfile().gemmCalls };
      } finally {
        setNativeEnabled(true);
      }
    };
    const ours = step(true), wasm = step(false);
    assert(ours.calls > 0, "native kernels ran");
    assertEquals(wasm.calls, 0, "the reference ran on wasm");
    const worst: [string, number][] = [["logits", relativeError(ours.logits, wasm.logits)]];
    for (const [k, g] of Object.entries(wasm.gradients)) {
      worst.push([`gradient ${k}`, relativeError(ours.gradients[k], g)]);
    }
    // Adam's first step moves a weight by about lr·sign(g), so where the two gradients have
    // opposite signs within rounding of zero (|g| ≤ 1e-3 of its RMS) either direction is
    // right: those weights (at most 1%) are left out of the comparison after the step.
    for (const [k, w] of Object.entries(wasm.weights)) {
      const g = wasm.gradients[k], gn = ours.gradients[k];
      if (!g) { // BatchNorm running statistics, not stepped by Adam
        worst.push([`running ${k}`, relativeError(ours.weights[k].data, w.data)]);
        continue;
      }
      const rms = Math.sqrt(g.reduce((a, v) => a + v * v, 0) / g.length);
      const keep = (_: number, i: number) =>
        Math.sign(g[i]) === Math.sign(gn[i]) || Math.abs(g[i]) > 1e-3 * rms;
      const kept = w.data.filter(keep);
      assert(
        kept.length >= 0.99 * g.length,
        `${k}: ${g.length - kept.length} gradients of opposite signs`,
      );
      worst.push([`after one step ${k}`, relativeError(ours.weights[k].data.filter(keep), kept)]);
    }
    assertEquals(Object.keys(ours.gradients).length, spec.convStack.channels.length * 4 + 8);
    for (const [name, err] of worst) assert(err < 1e-4, `${name}: relative error ${err}`);
    tf.dispose([x, labels]);
  },
});

Deno.test("native sums and means over leading axes equal the cpu kernels; other axes fall back", async () => {
  await ready("wasm");
  const x = () => tf.tensor(lcgValues(4 * 5 * 6 * 3, 9), [4, 5, 6, 3]);
  const cases: [string, () => tf.Tensor][] = [
    ["sum axis 0", () => tf.sum(x(), 0)],
    ["sum axes 0,1,2", () => tf.sum(x(), [0, 1, 2])],
    ["sum axes 1,0 keepDims", () => tf.sum(x(), [1, 0], true)],
    ["mean axes 0,1,2", () => tf.mean(x(), [0, 1, 2])],
    ["mean all", () => tf.mean(x())],
    ["mean axis -4", () => tf.mean(x(), -4)],
    ["sum last axis (wasm)", () => tf.sum(x(), 3)],
    ["mean axes 0,2 (wasm)", () => tf.mean(x(), [0, 2])],
  ];
  for (const [name, f] of cases) {
    resetNativeProfile();
    const [ours, ref] = await onBothBackends(() => [f()]);
    assertEquals(ours[0].length, ref[0].length, name);
    assert(relativeError(ours[0], ref[0]) < 1e-6, name);
    if (native) {
      assertEquals(nativeProfile().gemmCalls > 0, !name.endsWith("(wasm)"), `${name}: which ran`);
    }
  }
});
