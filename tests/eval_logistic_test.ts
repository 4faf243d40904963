/**
 * LogisticRegression against scikit-learn (Debian's python3-sklearn) on the same data.
 * Coefficients are compared with both sides converged tightly (scikit-learn's newton-cg at
 * tol 1e-10; its default lbfgs stops on a relative loss change of 2e-9, loosely), and
 * probabilities also with both at their default tolerances.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { join } from "node:path";
import { chooseL2, LogisticRegression } from "../lib/eval/logistic.ts";
import { Random } from "../lib/random.ts";
import type { Matrix } from "../lib/types.ts";

const PYTHON = "/usr/bin/python3";

function sklearnAvailable(): boolean {
  try {
    if (new Deno.Command(PYTHON, { args: ["-c", "import sklearn"] }).outputSync().success) {
      return true;
    }
  } catch {
    // missing
  }
  if (Deno.env.get("CI")) throw new Error(`CI needs ${PYTHON} with scikit-learn (python3-sklearn)`);
  console.warn(`skipping: ${PYTHON} with scikit-learn is missing (Debian: python3-sklearn)`);
  return false;
}
const ignore = !sklearnAvailable();

/** Correlated features of different scales and offsets, labels from a noisy linear rule. */
function dataset(n: number, d: number, seed: number): { X: Matrix; y: Uint8Array } {
  const rng = new Random(seed);
  const data = new Float32Array(n * d);
  const y = new Uint8Array(n);
  const w = Array.from({ length: d }, () => rng.normal());
  for (let i = 0; i < n; i++) {
    const common = rng.normal();
    let z = 0.4;
    for (let j = 0; j < d; j++) {
      const v = (rng.normal() + 0.5 * common) * (1 + j % 4) + j * 0.2;
      data[i * d + j] = v;
      z += (w[j] * v) / (1 + j % 4);
    }
    y[i] = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { X: { data, shape: [n, d] }, y };
}

const SKLEARN = `
import json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
folder, n, d, C, standardize = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
X = np.fromfile(folder + "/X.f32", dtype="<f4").reshape(n, d).astype(np.float64)
y = np.fromfile(folder + "/y.u8", dtype=np.uint8)
Xfit = X
if standardize:
    scaler = StandardScaler().fit(X)
    Xfit = scaler.transform(X)
def fitted(m):
    coef, b = m.coef_[0], float(m.intercept_[0])
    if standardize:
        coef = coef / scaler.scale_
        b = b - float((coef * scaler.mean_).sum())
    p = 1 / (1 + np.exp(-(X @ coef + b)))
    return {"coef": coef.tolist(), "intercept": b, "proba": p.tolist()}
tight = LogisticRegression(C=C, solver="newton-cg", tol=1e-10, max_iter=10000).fit(Xfit, y)
default = LogisticRegression(C=C).fit(Xfit, y)
json.dump({"tight": fitted(tight), "default": fitted(default)}, sys.stdout)
`;

async function sklearn(
  X: Matrix,
  y: Uint8Array,
  C: number,
  standardize: boolean,
): Promise<Record<"tight" | "default", { coef: number[]; intercept: number; proba: number[] }>> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "X.f32"), new Uint8Array(X.data.buffer));
    await Deno.writeFile(join(dir, "y.u8"), y);
    const out = await new Deno.Command(PYTHON, {
      args: [
        "-c",
        SKLEARN,
        dir,
        String(X.shape[0]),
        String(X.shape[1]),
        String(C),
        standardize ? "1" : "0",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / Math.max(scale, 1e-12);
}

for (
  const { l2, standardize } of [
    { l2: 1, standardize: false },
    { l2: 0.1, standardize: false },
    { l2: 10, standardize: true },
  ]
) {
  Deno.test({
    name: `logistic: matches scikit-learn (C=${1 / l2}, standardize=${standardize})`,
    ignore,
    fn: async () => {
      const { X, y } = dataset(300, 12, 7);
      const model = new LogisticRegression({ l2, standardize, tol: 1e-8 }).fit(X, y);
      assert(model.converged_, `not converged after ${model.nIter_} iterations`);
      const both = await sklearn(X, y, 1 / l2, standardize);
      const ref = both.tight;
      // Default tolerances on both sides: the same probabilities to 1e-3.
      const loose = new LogisticRegression({ l2, standardize }).fit(X, y).predictProba(X);
      for (let i = 0; i < loose.length; i++) {
        assert(Math.abs(loose[i] - both.default.proba[i]) < 1e-3, `default fit, P(1) of row ${i}`);
      }
      const coef = model.coef_!;
      assertEquals(coef.length, 12);
      const coefDiff = maxRelDiff(coef, ref.coef);
      assert(coefDiff < 1e-4, `coefficients differ by ${coefDiff} (relative)`);
      assert(
        Math.abs(model.intercept_! - ref.intercept) < 1e-4 * Math.max(1, Math.abs(ref.intercept)),
      );
      const proba = model.predictProba(X);
      for (let i = 0; i < proba.length; i++) {
        assert(Math.abs(proba[i] - ref.proba[i]) < 1e-5, `P(1) of row ${i}`);
      }
      const predicted = model.predict(X);
      for (let i = 0; i < predicted.length; i++) {
        if (Math.abs(ref.proba[i] - 0.5) > 1e-4) {
          assertEquals(predicted[i], ref.proba[i] > 0.5 ? 1 : 0);
        }
      }
    },
  });
}

Deno.test("logistic: predictions, score and input checks", () => {
  const { X, y } = dataset(200, 5, 3);
  const model = new LogisticRegression();
  assertThrows(() => model.predict(X), Error, "not fitted");
  model.fit(X, y);
  const p = model.predictProba(X);
  const labels = model.predict(X);
  for (let i = 0; i < p.length; i++) assertEquals(labels[i], p[i] > 0.5 ? 1 : 0);
  const accuracy = model.score(X, y);
  assert(accuracy > 0.6 && accuracy <= 1, `accuracy ${accuracy}`);
  assertThrows(() => model.predict({ data: new Float32Array(8), shape: [2, 4] }), Error, "columns");
  assertThrows(() => new LogisticRegression().fit(X, new Uint8Array(200)), Error, "both classes");
  assertThrows(() => new LogisticRegression().fit(X, new Uint8Array(5)), Error, "labels");
  const bad = new Float32Array(X.data);
  bad[7] = NaN;
  assertThrows(
    () => new LogisticRegression().fit({ data: bad, shape: X.shape }, y),
    Error,
    "row 1",
  );
});

Deno.test("logistic: a stronger penalty shrinks the weights", () => {
  const { X, y } = dataset(200, 6, 11);
  const norm = (l2: number) => {
    const c = new LogisticRegression({ l2 }).fit(X, y).coef_!;
    return Math.hypot(...c);
  };
  assert(norm(100) < norm(1));
  assert(norm(1) < norm(0.01));
});

Deno.test("chooseL2: best validation accuracy, the earliest on ties; l2 = 1 without validation", () => {
  // Each candidate's "model" is its own l2; its validation probabilities make 2, 4, 4 and 3
  // of 5 rows right, so 0.1 and 1 tie at 80% and the earlier one, 0.1, must win.
  const y = Uint8Array.from([1, 1, 1, 0, 0]);
  const right: Record<number, number> = { 0.01: 2, 0.1: 4, 1: 4, 10: 3 };
  const proba = (l2: number) =>
    Float32Array.from(y, (label, i) => (i < right[l2] ? label : 1 - label) ? 0.9 : 0.1);
  const fitted: number[] = [];
  const fit = (l2: number) => {
    fitted.push(l2);
    return l2;
  };
  const choice = chooseL2([0.01, 0.1, 1, 10], fit, { proba, y });
  assertEquals(choice.l2, 0.1);
  assertEquals(choice.model, 0.1);
  assertEquals(choice.candidates, [0.01, 0.1, 1, 10]);
  assertEquals(choice.validationAccuracy, [0.4, 0.8, 0.8, 0.6]);
  // Without validation rows: only l2 = 1 is fitted, or the first candidate when 1 is not one.
  fitted.length = 0;
  assertEquals(chooseL2([0.01, 1, 10], fit).l2, 1);
  assertEquals(fitted, [1]);
  assertEquals(chooseL2([0.01, 10], fit).l2, 0.01);
  assertThrows(() => chooseL2([], fit), Error, "at least one candidate");
});
