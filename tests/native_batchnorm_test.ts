/**
 * The trainable network's BatchNorm on the native kernels (`lib/native/batchnorm.ts`: oneDNN's
 * batch-normalization primitives, and the plain loops used where they are off) against the
 * TF.js-ops BatchNorm that runs on the cpu backend (`batchNormTraining` in
 * `lib/train/network.ts`): output, batch statistics and the gradients of x, γ and β.
 */
import { assert, assertEquals } from "@std/assert";
import { ready, tf } from "../lib/tf.ts";
import { nativeSetting, setNativeEnabled } from "../lib/native/gemm.ts";
import { nativeProfile, resetNativeProfile, setPrimitivesEnabled } from "../lib/native/kernels.ts";
import { nativeBatchNormAvailable } from "../lib/native/batchnorm.ts";
import { type BatchNormStats, batchNormTraining } from "../lib/train/network.ts";
import { lcgValues, onBothBackends, relativeError } from "./_train_fixtures.ts";

const native = nativeSetting() !== "off";

/** BatchNorm of `[n, h, w, c]` values: output, mean, variance, dx, dγ, dβ. */
function batchNormCase(shape: [number, number, number, number]) {
  const size = shape.reduce((a, b) => a * b), c = shape[3];
  // an offset and a spread per channel, so that centring and scaling both matter
  const xData = lcgValues(size, 21).map((v, i) => 3 * v * (1 + (i % c)) + (i % c) - 2);
  const gamma = lcgValues(c, 22).map((v) => 1 + v), beta = lcgValues(c, 23);
  const dyData = lcgValues(size, 24);
  return () => {
    const x = tf.tensor4d(xData, shape), g = tf.tensor1d(gamma), b = tf.tensor1d(beta);
    const stats: BatchNormStats = { blocks: [] };
    const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
      batchNormTraining(xx as tf.Tensor4D, gg, bb, stats);
    const { value, grads } = tf.valueAndGrads(f)([x, g, b], tf.tensor4d(dyData, shape));
    const { mean, variance, count } = stats.blocks[0];
    assertEquals(count, size / c);
    return [value, mean, variance, ...grads];
  };
}

const NAMES = ["output", "mean", "variance", "dx", "dγ", "dβ"];

for (const primitive of [true, false]) {
  Deno.test({
    name: `native BatchNorm (${primitive ? "oneDNN's primitives" : "plain loops"}) equals ` +
      `the TF.js-ops BatchNorm: output, statistics, gradients`,
    ignore: !native,
    async fn() {
      await ready("wasm");
      assert(nativeBatchNormAvailable(), "the native BatchNorm kernels are not installed");
      setPrimitivesEnabled(primitive);
      resetNativeProfile();
      try {
        for (const shape of [[4, 5, 6, 7], [32, 3, 3, 16]] as [number, number, number, number][]) {
          const [ours, ref] = await onBothBackends(batchNormCase(shape));
          ours.forEach((values, i) => {
            const err = relativeError(values, ref[i]);
            assert(err < 1e-5, `${shape} ${NAMES[i]}: relative error ${err}`);
          });
        }
        // forward and backward per shape on the primitive, none with it off
        assertEquals(nativeProfile().batchNormCalls, primitive ? 4 : 0);
      } finally {
        setPrimitivesEnabled(true);
      }
    },
  });
}

Deno.test("the native BatchNorm is used only on the wasm backend with the native kernels on", async () => {
  await ready("cpu");
  assertEquals(nativeBatchNormAvailable(), false);
  await ready("wasm");
  assertEquals(nativeBatchNormAvailable(), native);
  setNativeEnabled(false);
  try {
    assertEquals(nativeBatchNormAvailable(), false);
  } finally {
    setNativeEnabled(true);
  }
});
