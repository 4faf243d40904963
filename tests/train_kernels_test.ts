/**
 * Our wasm training kernels against TF.js' own cpu kernels (the reference), on strides 1
 * and 2, same and valid padding, and several kernel sizes and channel counts.
 */
import { assert, assertEquals } from "@std/assert";
import { ready, tf } from "../lib/tf.ts";
import { registerTrainingKernels } from "../lib/train/kernels.ts";
import { lcgValues, onBothBackends } from "./_train_fixtures.ts";

/** max |a − b| / max |b|: the error relative to the reference's scale. */
function relativeError(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  let err = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / Math.max(scale, 1e-30);
}

type Shape4 = [number, number, number, number];

const cases: { x: Shape4; filter: Shape4 }[] = [
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 5] },
  { x: [3, 10, 11, 4], filter: [4, 4, 4, 6] },
  { x: [2, 8, 8, 7], filter: [2, 2, 7, 3] },
  { x: [1, 7, 6, 2], filter: [5, 3, 2, 4] },
  { x: [2, 6, 6, 16], filter: [1, 1, 16, 8] },
  { x: [4, 12, 12, 32], filter: [4, 4, 32, 24] },
];

Deno.test("Conv2DBackpropFilter and Conv2DBackpropInput on wasm equal the cpu kernels", async () => {
  await ready("wasm");
  registerTrainingKernels();
  let worst = 0;
  for (const { x: xShape, filter: fShape } of cases) {
    for (const strides of [1, 2]) {
      for (const pad of ["same", "valid"] as const) {
        const xData = lcgValues(xShape.reduce((a, b) => a * b), 1);
        const fData = lcgValues(fShape.reduce((a, b) => a * b), 2);
        const [wasm, cpu] = await onBothBackends(() => {
          const x = tf.tensor4d(xData, xShape);
          const filter = tf.tensor4d(fData, fShape);
          const y = tf.conv2d(x, filter, strides, pad);
          const dy = tf.tensor4d(lcgValues(y.size, 3), y.shape);
          const attrs = { strides, pad, dataFormat: "NHWC" };
          const dW = tf.engine().runKernel(
            "Conv2DBackpropFilter",
            { x, dy },
            { ...attrs, filterShape: fShape },
          ) as tf.Tensor;
          const dX = tf.engine().runKernel(
            "Conv2DBackpropInput",
            { dy, filter },
            { ...attrs, inputShape: xShape },
          ) as tf.Tensor;
          tf.dispose([x, filter, y, dy]);
          return [dW, dX];
        });
        for (let k = 0; k < 2; k++) {
          const e = relativeError(wasm[k], cpu[k]);
          worst = Math.max(worst, e);
          assert(
            e < 1e-4,
            `${k ? "input" : "filter"} gradient, x ${xShape}, filter ${fShape}, stride ` +
              `${strides}, ${pad}: relative error ${e}`,
          );
        }
      }
    }
  }
  console.log(`worst relative error ${worst.toExponential(2)}`);
});

Deno.test("gradients of a conv layer through tf.grads agree between wasm and cpu", async () => {
  await ready("wasm");
  registerTrainingKernels();
  const xShape: Shape4 = [3, 9, 8, 5], fShape: Shape4 = [3, 3, 5, 7];
  const xData = lcgValues(3 * 9 * 8 * 5, 4), fData = lcgValues(3 * 3 * 5 * 7, 5);
  for (const strides of [1, 2]) {
    for (const pad of ["same", "valid"] as const) {
      const [wasm, cpu] = await onBothBackends(() => {
        const x = tf.tensor4d(xData, xShape), f = tf.tensor4d(fData, fShape);
        const loss = (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad)));
        const grads = tf.grads(loss)([x, f]);
        tf.dispose([x, f]);
        return grads;
      });
      for (let k = 0; k < 2; k++) {
        const e = relativeError(wasm[k], cpu[k]);
        assert(e < 1e-4, `tf.grads stride ${strides} ${pad} input ${k}: relative error ${e}`);
      }
    }
  }
});

Deno.test("BatchMatMul with transposed operands on wasm equals cpu", async () => {
  await ready("wasm");
  registerTrainingKernels();
  const shapes: [number[], number[], boolean, boolean][] = [
    [[32, 300], [32, 160], true, false], // dense kernel gradient: xᵀ·dy
    [[32, 160], [300, 160], false, true], // dense input gradient: dy·Wᵀ
    [[70, 40], [50, 70], true, true],
    [[5, 7], [7, 3], false, false],
    [[1, 64, 33], [1, 64, 17], true, false], // rank 3, batch 1
    [[3, 6, 5], [3, 6, 4], true, false], // batched: the built-in kernel
  ];
  for (const [aShape, bShape, tA, tB] of shapes) {
    const aData = lcgValues(aShape.reduce((p, q) => p * q), 6);
    const bData = lcgValues(bShape.reduce((p, q) => p * q), 7);
    const [wasm, cpu] = await onBothBackends(() =>
      tf.tidy(() => tf.matMul(tf.tensor(aData, aShape), tf.tensor(bData, bShape), tA, tB))
    );
    const e = relativeError(wasm[0], cpu[0]);
    assert(e < 1e-4, `matMul ${aShape} ${bShape} ${tA} ${tB}: relative error ${e}`);
  }
  // shapes too
  await ready("wasm");
  const out = tf.matMul(tf.ones([1, 4, 3]), tf.ones([1, 4, 2]), true, false);
  assertEquals(out.shape, [1, 3, 2]);
  out.dispose();
});

Deno.test("training kernels leak no wasm memory", async () => {
  await ready("wasm");
  registerTrainingKernels();
  const x = tf.tensor4d(lcgValues(2 * 8 * 8 * 4, 8), [2, 8, 8, 4]);
  const f = tf.tensor4d(lcgValues(3 * 3 * 4 * 6, 9), [3, 3, 4, 6]);
  const step = () =>
    tf.tidy(() => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.matMul(
          tf.reshape(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same"), [2, -1]),
          tf.ones([96, 3]),
        ))
      )([x, f]);
      return g.map((t) => t.sum());
    });
  tf.dispose(step());
  const before = tf.memory().numTensors;
  const bytesBefore = tf.memory().numBytes;
  for (let i = 0; i < 5; i++) tf.dispose(step());
  assertEquals(tf.memory().numTensors, before);
  assertEquals(tf.memory().numBytes, bytesBefore);
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const ids = backend.numDataIds();
  for (let i = 0; i < 5; i++) tf.dispose(step());
  assertEquals(backend.numDataIds(), ids);
  tf.dispose([x, f]);
});
