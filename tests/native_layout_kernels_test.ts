/**
 * The native kernels that move values or skip zeros, against independent references:
 * `PadV2` and the memory-sharing `Identity`/`Cast` against TF.js's cpu kernels and the
 * tensors' own lifetimes; the block-structure search of grouped filters against hand-made
 * filters; grouped (block-diagonal) and depthwise convolutions on oneDNN's grouped primitive
 * against the cpu kernels, with the profile showing the grouped primitive ran (a dense
 * filter's multiply-adds divided by the groups).
 */
import { assert, assertEquals } from "@std/assert";
import { ready, tf } from "../lib/tf.ts";
import { nativeGemm, nativeSetting } from "../lib/native/gemm.ts";
import { nativeProfile, resetNativeProfile } from "../lib/native/kernels.ts";
import { blockDiagonalGroups, groupFilter } from "../lib/native/groups.ts";
import { lcgValues, onBothBackends, relativeError } from "./_train_fixtures.ts";

const native = nativeSetting() !== "off";

Deno.test("native PadV2 equals the cpu kernel (ranks 1–5, inner axes unpadded, constants)", async () => {
  await ready("wasm");
  const cases: { shape: number[]; paddings: [number, number][]; value: number }[] = [
    { shape: [5], paddings: [[2, 3]], value: 0 },
    { shape: [2, 7, 6, 3], paddings: [[0, 0], [1, 1], [2, 0], [0, 0]], value: 0 },
    { shape: [2, 7, 6, 3], paddings: [[0, 0], [3, 3], [3, 3], [0, 0]], value: -Infinity },
    { shape: [2, 3, 4], paddings: [[1, 0], [0, 0], [0, 2]], value: 1.5 },
    { shape: [3, 4], paddings: [[0, 0], [0, 0]], value: 7 },
    { shape: [2, 2, 3, 2, 2], paddings: [[0, 1], [0, 0], [1, 1], [0, 0], [0, 0]], value: -2 },
  ];
  for (const c of cases) {
    const data = lcgValues(c.shape.reduce((a, b) => a * b), 4);
    const [ours, ref] = await onBothBackends(() =>
      tf.pad(tf.tensor(data, c.shape), c.paddings, c.value)
    );
    assertEquals(ours[0], ref[0], JSON.stringify(c));
  }
});

Deno.test("Identity and same-dtype Cast share memory safely: each tensor outlives the other", async () => {
  await ready("wasm");
  const values = lcgValues(24, 5);
  const x = tf.tensor(values, [2, 3, 4]);
  const y = x.clone(); // Identity
  const z = tf.cast(y, "float32"); // Cast to its own dtype
  const i = tf.cast(x, "int32"); // a real cast: the wasm kernel
  x.dispose();
  y.dispose();
  const after = tf.add(z, 1); // allocations after the frees must not reuse z's memory
  assertEquals(z.dataSync(), values);
  assertEquals(after.dataSync(), values.map((v) => Math.fround(v + 1)));
  assertEquals(Array.from(i.dataSync()), Array.from(values, (v) => v | 0));
  assertEquals(z.shape, [2, 3, 4]);
  tf.dispose([z, i, after]);
});

Deno.test("native Minimum and Maximum with a single value equal the cpu kernels (NaN kept)", async () => {
  await ready("wasm");
  const values = lcgValues(2 * 5 * 7, 12).map((v, i) => (i % 9 === 0 ? NaN : 8 * v));
  const [ours, ref] = await onBothBackends(() => {
    const x = tf.tensor3d(values, [2, 5, 7]);
    return [
      tf.minimum(6, x), // a scalar first: TF.js-layers' relu6
      tf.minimum(x, tf.tensor1d([0.5])),
      tf.maximum(x, -1),
      tf.maximum(tf.scalar(NaN), x),
      // broadcasting a row: the wasm kernel (on finite values: it does not keep NaN)
      tf.minimum(tf.tensor3d(lcgValues(70, 14), [2, 5, 7]), tf.tensor1d(lcgValues(7, 13))),
    ];
  });
  ours.forEach((o, i) => assertEquals(o, ref[i], `output ${i}`));
});

Deno.test({
  name: "native Slice, Concat and Transpose (oneDNN's reorder) equal the cpu kernels",
  ignore: !native,
  async fn() {
    await ready("wasm");
    const onednn = nativeGemm()?.library === "onednn";
    const shape = [4, 9, 10, 58]; // ShuffleNetV2-like: 20,880 values, above the threshold
    const values = lcgValues(shape.reduce((a, b) => a * b), 15);
    const other = lcgValues(4 * 9 * 10 * 30, 16);
    resetNativeProfile();
    const [ours, ref] = await onBothBackends(() => {
      const x = tf.tensor4d(values, shape as [number, number, number, number]);
      const y = tf.tensor4d(other, [4, 9, 10, 30]);
      return [
        tf.slice(x, [0, 0, 0, 29], [-1, -1, -1, 29]), // channels: ShuffleNetV2's split
        tf.slice(x, [0, 1, 2, 4], [4, 8, 8, 50]), // a box on every axis but the first
        tf.slice(x, [1, 1, 2, 4], [3, 8, 8, 50]), // and on every axis
        tf.slice(x, [0, 0, 0, 0], [2, 9, 10, 58]), // leading rows
        tf.concat([x, y], 3),
        tf.concat([y, x, y], 3),
        tf.concat([x, x], 0),
        tf.transpose(x, [0, 3, 1, 2]),
        x.reshape([4, 9, 10, 2, 29]).transpose([0, 1, 2, 4, 3]), // channel shuffle
        tf.transpose(x.reshape([360, 58]), [1, 0]),
        tf.slice(x, [0, 0, 0, 0], [1, 1, 2, 58]), // small: the wasm kernel
      ];
    });
    ours.forEach((o, i) => assertEquals(o, ref[i], `output ${i}`));
    // every case above the threshold on the reorder: 4 slices, 2 + 3 + 2 concat parts, 3
    // transposes
    if (onednn) assertEquals(nativeProfile().reorderCalls, 14);
  },
});

Deno.test({
  name: "native MaxPool (oneDNN's pooling) equals the cpu kernel, padding never the maximum",
  ignore: !native,
  async fn() {
    await ready("wasm");
    // negative values: a zero padding would win the maximum at the borders
    const values = lcgValues(2 * 11 * 10 * 5, 17).map((v) => v - 2);
    resetNativeProfile();
    const [ours, ref] = await onBothBackends(() => {
      const x = tf.tensor4d(values, [2, 11, 10, 5]);
      return [
        tf.maxPool(x, 3, 2, 1), // PyTorch's nn.MaxPool2d(3, 2, 1)
        tf.maxPool(x, 3, 2, "valid"),
        tf.maxPool(x, 2, 1, "same"),
        tf.maxPool(x, 5, 1, 2), // (TF.js sizes numeric padding by the window's height only)
      ];
    });
    ours.forEach((o, i) => assertEquals(o, ref[i], `output ${i}`));
    if (nativeGemm()?.library === "onednn") assert(nativeProfile().poolMs > 0, "pooling ran");
  },
});

/** A `[taps, ci, co]` filter with non-zero values only inside `groups` diagonal blocks. */
function blockFilter(taps: number, ci: number, co: number, groups: number, seed: number) {
  const f = lcgValues(taps * ci * co, seed);
  const cig = ci / groups, cog = co / groups;
  for (let t = 0; t < taps; t++) {
    for (let i = 0; i < ci; i++) {
      for (let o = 0; o < co; o++) {
        if (Math.floor(i / cig) !== Math.floor(o / cog)) f[(t * ci + i) * co + o] = 0;
        else if (f[(t * ci + i) * co + o] === 0) f[(t * ci + i) * co + o] = 0.5;
      }
    }
  }
  return f;
}

Deno.test("block structure of grouped filters: found where it is, not where it is not", () => {
  assertEquals(blockDiagonalGroups(blockFilter(9, 8, 12, 4, 1), 9, 8, 12), 4);
  assertEquals(blockDiagonalGroups(blockFilter(1, 6, 6, 6, 2), 1, 6, 6), 6); // depthwise-like
  assertEquals(blockDiagonalGroups(lcgValues(9 * 8 * 8, 3).map((v) => v + 2), 9, 8, 8), 1);
  // one value outside the blocks makes it dense
  const almost = blockFilter(4, 8, 8, 2, 4);
  almost[(3 * 8 + 7) * 8 + 0] = 1e-30;
  assertEquals(blockDiagonalGroups(almost, 4, 8, 8), 1);
  // an all-zero filter is block-diagonal at every common divisor: the largest
  assertEquals(blockDiagonalGroups(new Float32Array(2 * 6 * 9), 2, 6, 9), 3);
  // the blocks in oneDNN's hwigo order, by hand: taps 1, ci 4, co 2, G 2
  const f = Float32Array.from([1, 0, 2, 0, 0, 3, 0, 4]); // rows ci 0..3, columns co 0..1
  assertEquals(Array.from(groupFilter(f, 1, 4, 2, 2)), [1, 3, 2, 4]); // [i][g][o]: i0 g0, i0 g1…
});

Deno.test({
  name:
    "grouped (block-diagonal) and depthwise convolutions on the grouped primitive equal the cpu kernels",
  ignore: !native,
  async fn() {
    await ready("wasm");
    const onednn = nativeGemm()?.library === "onednn";
    const cases = [
      { x: [2, 9, 9, 8], k: 3, co: 12, groups: 4, strides: 1, pad: "same" as const },
      { x: [2, 10, 10, 16], k: 3, co: 16, groups: 8, strides: 2, pad: "valid" as const },
      { x: [1, 7, 7, 6], k: 1, co: 6, groups: 3, strides: 1, pad: "valid" as const },
    ];
    for (const c of cases) {
      const ci = c.x[3], taps = c.k * c.k;
      const filter = blockFilter(taps, ci, c.co, c.groups, 6);
      const xData = lcgValues(c.x.reduce((a, b) => a * b), 7);
      const bias = lcgValues(c.co, 8);
      resetNativeProfile();
      const [ours, ref] = await onBothBackends(() =>
        tf.fused.conv2d({
          x: tf.tensor4d(xData, c.x as [number, number, number, number]),
          filter: tf.tensor4d(filter, [c.k, c.k, ci, c.co]),
          strides: c.strides,
          pad: c.pad,
          bias: tf.tensor1d(bias),
          activation: "relu",
        })
      );
      const p = nativeProfile();
      assert(relativeError(ours[0], ref[0]) < 1e-5, JSON.stringify(c));
      if (onednn) {
        const [n, h] = c.x,
          out = c.pad === "same" ? Math.ceil(h / c.strides) : Math.floor((h - c.k) / c.strides) + 1;
        const denseFlops = 2 * n * out * out * taps * ci * c.co;
        assertEquals(
          p.convFlops,
          denseFlops / c.groups,
          `grouped primitive ran: ${JSON.stringify(c)}`,
        );
      }
    }
    // depthwise, channel multipliers 1 and 2, plain and fused
    for (const m of [1, 2]) {
      const x = lcgValues(2 * 9 * 9 * 5, 9), f = lcgValues(3 * 3 * 5 * m, 10);
      const b = lcgValues(5 * m, 11);
      resetNativeProfile();
      const [ours, ref] = await onBothBackends(() => {
        const xt = tf.tensor4d(x, [2, 9, 9, 5]), ft = tf.tensor4d(f, [3, 3, 5, m]);
        return [
          tf.depthwiseConv2d(xt, ft, 2, "same"),
          tf.fused.depthwiseConv2d({
            x: xt,
            filter: ft,
            strides: 1,
            pad: "valid",
            bias: tf.tensor1d(b),
            activation: "relu6",
          }),
        ];
      });
      for (let i = 0; i < 2; i++) {
        assert(relativeError(ours[i], ref[i]) < 1e-5, `depthwise m=${m} output ${i}`);
      }
      if (onednn) {
        // multiply-adds of each output value: one 3×3 window of one channel
        const expected = 2 * 2 * (5 * 5 + 7 * 7) * 5 * m * 9;
        assertEquals(nativeProfile().convFlops, expected, `depthwise m=${m} on the primitive`);
      }
    }
  },
});
