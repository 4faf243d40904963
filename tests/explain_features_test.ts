/**
 * lib/explain from pixels to features and states, on hand cases: features on one pixel get
 * the same importance (all of it, or equal parts), states sum and average their blocks, the
 * top-k check refuses rows that would leak (test rows choosing features, scoring on the rows
 * that chose), and the three figures render as SVG with their marks.
 */
import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  camFigure,
  type CamMap,
  featureImportance,
  gradCam,
  rankFeatures,
  selectColumns,
  stateImportance,
  stateImportanceFigure,
  type TopKCurve,
  topKCurve,
  topKFigure,
} from "../lib/explain/mod.ts";
import type { Matrix } from "../lib/types.ts";

const MAP: CamMap = { data: Float32Array.of(1, 2, 3, 4), shape: [2, 2], rows: "train", count: 1 };
/** Features 0 and 1 on pixel (0,0); 2 and 5 on (1,1); 3 on (0,1); 4 on (1,0). */
const COORDS = { data: Int32Array.of(0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1), shape: [6, 2] as const };

Deno.test("featureImportance: a feature gets its pixel's value; shared pixels share it", () => {
  const full = featureImportance(MAP, COORDS);
  assertEquals([...full.values], [1, 1, 4, 2, 3, 4]);
  assertEquals([full.rows, full.sharing], ["train", "full"]);
  const split = featureImportance(MAP, COORDS, { sharing: "split" });
  assertEquals([...split.values], [0.5, 0.5, 2, 2, 3, 2]);
  assertThrows(
    () => featureImportance(MAP, { data: [0, 2], shape: [1, 2] }),
    Error,
    "outside the 2×2 map",
  );
});

Deno.test("stateImportance: sums, means and shares per block of featuresPerState", () => {
  const state = stateImportance(featureImportance(MAP, COORDS), 3);
  assertEquals([...state.sum], [6, 9]);
  assertEquals([...state.mean], [2, 3]);
  assertAlmostEquals(state.share[0], 0.4, 1e-12);
  assertAlmostEquals(state.share[1], 0.6, 1e-12);
  assertEquals([...stateImportance([1, 2, 3, 4], 1).sum], [1, 2, 3, 4]);
  assertThrows(() => stateImportance([1, 2, 3, 4, 5, 6], 4), Error, "featuresPerState = 4");
});

Deno.test("rankFeatures and selectColumns", () => {
  assertEquals([...rankFeatures([1, 3, 3, 0])], [1, 2, 0, 3]); // ties: lower index first
  const x: Matrix = { data: Float32Array.of(1, 2, 3, 4, 5, 6), shape: [2, 3] };
  assertEquals(selectColumns(x, [2, 0]), { data: Float32Array.of(3, 1, 6, 4), shape: [2, 2] });
});

/** Rows whose column 0 carries the label, columns 1–3 noise. */
function rows(n: number, seed: number): { x: Matrix; y: Uint8Array } {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
  const y = Uint8Array.from({ length: n }, (_, i) => i % 2);
  const data = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    data[i * 4] = (y[i] ? 1 : -1) + next();
    for (let j = 1; j < 4; j++) data[i * 4 + j] = next();
  }
  return { x: { data, shape: [n, 4] }, y };
}

Deno.test("topKCurve refuses test rows choosing features and scoring on the choosing rows", () => {
  const train = { ...rows(40, 1), rows: "train" as const };
  const test = { ...rows(40, 2), rows: "test" as const };
  const importance = {
    values: Float32Array.of(1, 0, 0, 0),
    rows: "train" as const,
    sharing: "full" as const,
  };
  const curve = topKCurve(importance, train, test, { ks: [1, 2], randomDraws: 3 });
  assertEquals(curve.ks, [1, 2]);
  assertEquals(curve.cam[0], 1); // column 0 alone separates the classes
  assertEquals(curve.random.draws.length, 3);
  assertEquals([curve.importanceRows, curve.fitRows, curve.evaluationRows], [
    "train",
    "train",
    "test",
  ]);
  const onTest = { ...importance, rows: "test" as const };
  assertThrows(() => topKCurve(onTest, train, test, { ks: [1] }), Error, "computed on test rows");
  assertThrows(
    () =>
      topKCurve(importance, { ...test, rows: "test" }, { ...train, rows: "validation" }, {
        ks: [1],
      }),
    Error,
    "fitted on test rows",
  );
  assertThrows(
    () => topKCurve(importance, train, { ...test, rows: "train" }, { ks: [1] }),
    Error,
    'on the "train" rows',
  );
  const onValidation = { ...importance, rows: "validation" as const };
  assertThrows(
    () => topKCurve(onValidation, train, { ...test, rows: "validation" }, { ks: [1] }),
    Error,
    "evaluate on other rows",
  );
  assertThrows(() => topKCurve(importance, train, test, { ks: [5] }), Error, "from 1 to 4");
  // A run-time value outside the type (e.g. from a notebook) is refused too.
  assertThrows(
    () => topKCurve({ ...importance, rows: "all" as "train" }, train, test, { ks: [1] }),
    Error,
    'rows must be "train"',
  );
  assertThrows(
    () =>
      gradCam({} as never, { data: new Float32Array(1), shape: [1, 1, 1, 1] }, {
        rows: "everything" as "train",
      }),
    Error,
    'rows must be "train"',
  );
});

function countTags(svg: string, tag: string): number {
  return svg.split(`<${tag}`).length - 1;
}

Deno.test("figures: CAM over mean images, state bars, top-k lines with a band", () => {
  const images = {
    data: Float32Array.from({ length: 4 * 4 }, (_, i) => i % 5),
    shape: [4, 2, 2] as [number, number, number],
  };
  const labels = Uint8Array.of(0, 1, 0, 1);
  const cams = [MAP, { ...MAP, data: Float32Array.of(0, 0, 1, 0.5) }];
  const figure = camFigure(images, labels, cams, { title: "Grad-CAM per class" });
  assert(figure.svg.startsWith("<svg"));
  assertEquals(countTags(figure.svg, "image"), 6); // 2 classes × (mean, CAM, overlay)
  assert(figure.svg.includes("positive: overlay"));
  assertThrows(
    () => camFigure(images, labels, [{ ...MAP, shape: [1, 4] }, MAP]),
    Error,
    "does not fit",
  );

  const bars = stateImportanceFigure(stateImportance([1, 2, 3, 4, 5, 6], 2), {
    stateNames: ["layer 6", "layer 7", "layer 8"],
  });
  assert(bars.svg.includes("layer 8"));

  const curve: TopKCurve = {
    ks: [1, 2, 4],
    cam: [0.9, 0.92, 0.93],
    coefficient: [0.9, 0.91, 0.93],
    random: {
      mean: [0.6, 0.7, 0.93],
      std: [0.1, 0.05, 0],
      min: [0.5, 0.65, 0.93],
      max: [0.7, 0.75, 0.93],
      draws: [],
    },
    allFeatures: 0.93,
    importanceRows: "train",
    fitRows: "train",
    evaluationRows: "test",
    randomDraws: 2,
    seed: 1,
  };
  const lines = topKFigure(curve, { title: "top-k" });
  assert(lines.svg.includes("Grad-CAM"));
  assert(lines.svg.includes("accuracy (test rows)"));
  assertEquals(countTags(lines.svg, "circle"), 12); // 4 series × 3 k
  // Four series, four colours: the random band is not drawn in Grad-CAM's red.
  const colours = new Set(
    [...lines.svg.matchAll(/<circle[^>]*fill="(#[0-9a-f]{6})"/gi)].map((m) => m[1].toLowerCase()),
  );
  assertEquals(colours.size, 4, [...colours].join(", "));
});
