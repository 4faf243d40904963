/**
 * lib/explain end to end on synthetic data where only known features carry the label: a
 * small image classifier trained on the hand-laid-out images is explained by Grad-CAM, the
 * CAM importance ranks the informative features first (and a broken CAM — the wrong class,
 * or the wrong sign — does not), and the top-k curve's CAM accuracy beats random draws.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertGreaterOrEqual,
  assertLess,
} from "@std/assert";
import { ready, tf } from "../lib/tf.ts";
import { ImageClassifier } from "../lib/train/mod.ts";
import {
  camBatch,
  camFigure,
  camFromGradients,
  type CamMap,
  classMeanCams,
  featureImportance,
  gradCam,
  meanCam,
  networkCamModel,
  rankFeatures,
  stateImportance,
  topKCurve,
} from "../lib/explain/mod.ts";
import { FEATURES, INFORMATIVE, layout, SIDE, SMALL, synthetic } from "./_explain_fixtures.ts";

await ready();

const { informative, coords } = layout();
const COORDS = { data: coords, shape: [FEATURES, 2] as const };
const train = synthetic(400, 11);
const test = synthetic(400, 12);

/** Fraction of the top-20 features by `values` that are informative. */
function topInformative(values: ArrayLike<number>): number {
  const top = rankFeatures(values).subarray(0, INFORMATIVE);
  return top.filter((j) => informative.has(j)).length / INFORMATIVE;
}

const clf = new ImageClassifier({
  architecture: SMALL,
  epochs: 6,
  batchSize: 32,
  seed: 3,
  lrHead: 3e-3,
  progressBar: false,
});
await clf.fit(train.images, train.y);

Deno.test("the small classifier learns the synthetic task", () => {
  const accuracy = clf.evaluate(test.images, test.y).accuracy;
  assertGreater(accuracy, 0.8, `test accuracy ${accuracy}`);
});

Deno.test("CAM importance ranks the informative features first; broken CAMs do not", () => {
  const result = gradCam(clf, train.images, { rows: "train", target: train.y });
  assertEquals(result.cams.shape, [400, SIDE, SIDE]);
  // The split network predicts as the classifier does.
  assertEquals([...result.predicted], [...clf.predict(train.images)]);
  const good = topInformative(featureImportance(meanCam(result), COORDS).values);
  assertGreaterOrEqual(good, 0.7, `top-20 informative fraction ${good}`);

  // The class means average to the overall mean, weighted by their counts.
  const [negative, positive] = classMeanCams(result);
  assertEquals(negative.count + positive.count, 400);
  const overall = meanCam(result).data;
  for (let p = 0; p < SIDE * SIDE; p += 17) {
    const weighted = (negative.data[p] * negative.count + positive.data[p] * positive.count) / 400;
    assertAlmostEquals(weighted, overall[p], 1e-5);
  }

  // Wrong class: explain the other class of every row.
  const flipped = Uint8Array.from(train.y, (v) => 1 - v);
  const wrongClass = gradCam(clf, train.images, { rows: "train", target: flipped });
  const wrong = topInformative(featureImportance(meanCam(wrongClass), COORDS).values);
  assertLess(wrong, 0.3, `wrong-class top-20 informative fraction ${wrong}`);

  // Wrong sign: negated gradients (same rows, same target).
  const split = networkCamModel(clf.network_!);
  const x = tf.tensor4d(train.images.data, train.images.shape);
  const batch = camBatch(split, x, (row) => train.y[row]);
  x.dispose();
  split.dispose?.();
  const negated = { data: batch.gradients.data.map((g) => -g), shape: batch.gradients.shape };
  const maps = camFromGradients(batch.activations, negated);
  const mean = new Float32Array(SIDE * SIDE);
  for (let i = 0; i < maps.data.length; i++) mean[i % (SIDE * SIDE)] += maps.data[i];
  const signMap: CamMap = { data: mean, shape: [SIDE, SIDE], rows: "train", count: 400 };
  const sign = topInformative(featureImportance(signMap, COORDS).values);
  assertLess(sign, 0.3, `wrong-sign top-20 informative fraction ${sign}`);

  // Placing the CAM grid on the image grid without the stack's 1.5-pixel shift smears it.
  const unshifted = {
    ...networkCamModel(clf.network_!),
    placement: { stride: [1, 1] as [number, number], offset: [0, 0] as [number, number] },
  };
  const naive = gradCam(unshifted, train.images, { rows: "train", target: train.y });
  unshifted.dispose?.();
  const smeared = topInformative(featureImportance(meanCam(naive), COORDS).values);
  assertLess(smeared, good, `unshifted top-20 informative fraction ${smeared}`);

  const states = stateImportance(featureImportance(meanCam(result), COORDS), 50);
  assertEquals(states.sum.length, 4);
  const figure = camFigure(
    { data: train.images.data, shape: [400, SIDE, SIDE] },
    train.y,
    classMeanCams(result),
  );
  assert(figure.svg.includes("mean CAM (200)"));
  console.log(
    `top-20 informative: CAM ${good}, wrong class ${wrong}, wrong sign ${sign}, ` +
      `unshifted ${smeared}`,
  );
});

Deno.test("top-k curve: the CAM's top features beat random draws", () => {
  const result = gradCam(clf, train.images, { rows: "train", target: train.y });
  const importance = featureImportance(meanCam(result), COORDS);
  const curve = topKCurve(
    importance,
    { x: train.x, y: train.y, rows: "train" },
    { x: test.x, y: test.y, rows: "test" },
    { ks: [5, 10, 20], randomDraws: 5, seed: 2 },
  );
  for (let i = 0; i < curve.ks.length; i++) {
    assertGreater(curve.cam[i], curve.random.max[i], `k = ${curve.ks[i]}`);
    assertEquals(curve.random.draws.length, 5);
  }
  assertGreater(curve.cam[2], 0.9);
  assertGreater(curve.coefficient[2], 0.9);
  // A broken attribution (the wrong class's map) does not beat the random draws.
  const wrong = gradCam(clf, train.images, {
    rows: "train",
    target: Uint8Array.from(train.y, (v) => 1 - v),
  });
  const broken = topKCurve(
    featureImportance(meanCam(wrong), COORDS),
    { x: train.x, y: train.y, rows: "train" },
    { x: test.x, y: test.y, rows: "test" },
    { ks: [5, 10, 20], randomDraws: 5, seed: 2 },
  );
  for (let i = 0; i < curve.ks.length; i++) {
    assertLess(broken.cam[i], curve.random.mean[i], `broken, k = ${curve.ks[i]}`);
  }
  clf.dispose();
});
