/**
 * TfidfVectorizer, SparseLogisticRegression and TfidfLogistic against scikit-learn 1.2
 * (tests/_tfidf_reference.py, run with /usr/bin/python3 and Debian's python3-sklearn) on a
 * seeded corpus with punctuation, upper case, non-ASCII letters, digits, one-letter words,
 * combining accents, astral and compatibility characters, and repeats. Without scikit-learn
 * the comparisons fail (they never skip).
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { fileURLToPath } from "node:url";
import {
  checkCsr,
  type CsrMatrix,
  fitL2Grid,
  SparseLogisticRegression,
} from "../lib/eval/sparse_logistic.ts";
import {
  compareCodePoints,
  type DocumentFrequency,
  TfidfLogistic,
  type TfidfLogisticParameters,
  TfidfVectorizer,
  type TfidfVectorizerOptions,
} from "../lib/eval/tfidf.ts";
import { Random } from "../lib/random.ts";

const PYTHON = "/usr/bin/python3";
const REFERENCE = fileURLToPath(new URL("./_tfidf_reference.py", import.meta.url));

/** Throws, naming the Debian package, when scikit-learn is missing. */
function requireSklearn(): void {
  let ok = false;
  try {
    ok = new Deno.Command(PYTHON, { args: ["-c", "import sklearn, numpy"] }).outputSync().success;
  } catch {
    // missing python
  }
  if (!ok) {
    throw new Error(
      `${PYTHON} with scikit-learn is needed for the reference values: install Debian's ` +
        `python3-sklearn (apt-get install python3-sklearn)`,
    );
  }
}

/** Runs one request of tests/_tfidf_reference.py. */
async function reference<T>(request: Record<string, unknown>): Promise<T> {
  requireSklearn();
  const child = new Deno.Command(PYTHON, {
    args: [REFERENCE],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

const NEUTRAL = [
  "the",
  "film",
  "movie",
  "plot",
  "a",
  "I",
  "x",
  "of",
  "and",
  "it",
  "was",
  "cast",
  "scene",
  "Café",
  "café",
  "naïve",
  "Straße",
  "ÉTÉ",
  "über",
  "42",
  "1999",
  "don't",
  "foo_bar",
  "co-op",
  "<br />",
  "e-mail",
  "3.14",
  "日本語",
  "İstanbul",
  "ΟΔΟΣ",
  "cafe\u0301",
  "x²",
  "𝒳yz",
  "ﬁlm",
  "Ｆｉｌｍ",
  "it's",
  "100%",
  "(director)",
  "R2-D2",
  "__init__",
]; // prettier-ignore
const POSITIVE = ["great", "wonderful", "Brilliant", "loved", "superb", "fun"];
const NEGATIVE = ["awful", "boring", "Terrible", "hated", "waste", "dull"];
const PUNCTUATION = [".", ",", "!", "?", "!!", " -", ":", ";", "..."];

/** `n` short reviews and their labels; sentiment words lean towards the label. */
function corpus(n: number, seed: number): { texts: string[]; labels: Uint8Array } {
  const rng = new Random(seed);
  const pick = (list: string[]) => list[rng.int(list.length)];
  const texts: string[] = [];
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = rng.next() < 0.5 ? 1 : 0;
    const words: string[] = [];
    const length = 3 + rng.int(25);
    for (let k = 0; k < length; k++) {
      const u = rng.next();
      let word = u < 0.2
        ? pick(labels[i] ? POSITIVE : NEGATIVE)
        : u < 0.26
        ? pick(labels[i] ? NEGATIVE : POSITIVE)
        : pick(NEUTRAL);
      if (rng.next() < 0.08) word = word.toUpperCase();
      if (rng.next() < 0.15) word += pick(PUNCTUATION);
      words.push(word);
      if (rng.next() < 0.08) words.push(word); // repeats
    }
    texts.push(words.join(rng.next() < 0.9 ? " " : "  "));
  }
  return { texts, labels };
}

/** Options as the reference script takes them (df bounds tagged int or float). */
function pythonOptions(options: TfidfVectorizerOptions): Record<string, unknown> {
  const v = new TfidfVectorizer(options);
  const bound = (b: DocumentFrequency) =>
    typeof b === "number"
      ? (Number.isInteger(b) ? { int: b } : { float: b })
      : { float: b.proportion };
  return {
    lowercase: v.lowercase,
    ngram_range: v.ngramRange,
    min_df: bound(v.minDf),
    max_df: bound(v.maxDf),
    max_features: v.maxFeatures,
    sublinear_tf: v.sublinearTf,
  };
}

interface ReferenceTfidf {
  terms: string[];
  idf: number[];
  indptr: number[];
  indices: number[];
  data: number[];
  shape: [number, number];
  cut: [number, number] | null;
}

function dense(
  X: {
    indptr: ArrayLike<number>;
    indices: ArrayLike<number>;
    data: ArrayLike<number>;
    shape: [number, number];
  },
): Float64Array {
  const [rows, cols] = X.shape;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let k = X.indptr[i]; k < X.indptr[i + 1]; k++) out[i * cols + X.indices[k]] = X.data[k];
  }
  return out;
}

const TRAIN = corpus(150, 1);
const OTHER = corpus(50, 2).texts.concat(["!!", "unseen words only", "x y z"]);

const CASES: { name: string; options: TfidfVectorizerOptions }[] = [
  { name: "minDf 1", options: { minDf: 1 } },
  { name: "defaults (minDf 2)", options: {} },
  { name: "maxFeatures 129", options: { minDf: 1, maxFeatures: 129 } },
  { name: "sublinearTf", options: { sublinearTf: true } },
  { name: "minDf 0.05, maxDf 0.3 (proportions)", options: { minDf: 0.05, maxDf: 0.3 } },
  { name: "maxDf 40 documents, unigrams", options: { maxDf: 40, ngramRange: [1, 1] } },
  { name: "no lower-casing, trigrams", options: { lowercase: false, ngramRange: [2, 3] } },
];

for (const { name, options } of CASES) {
  Deno.test(`tfidf: vocabulary, idf and rows match scikit-learn (${name})`, async () => {
    const ref = await reference<ReferenceTfidf>({
      task: "tfidf",
      fit: TRAIN.texts,
      transform: TRAIN.texts.concat(OTHER),
      options: pythonOptions(options),
    });
    if (ref.cut) {
      assert(ref.cut[0] !== ref.cut[1], `maxFeatures cuts a tie ${ref.cut}: pick another value`);
    }
    const v = new TfidfVectorizer(options).fit(TRAIN.texts);
    assertEquals(v.terms_, ref.terms);
    for (let j = 0; j < ref.idf.length; j++) {
      assert(Math.abs(v.idf_![j] - ref.idf[j]) < 1e-6, `idf of ${ref.terms[j]}`);
    }
    const X = v.transform(TRAIN.texts.concat(OTHER));
    checkCsr(X);
    assertEquals(X.shape, ref.shape);
    assertEquals([...X.indptr], ref.indptr);
    assertEquals([...X.indices], ref.indices);
    const ours = dense(X), theirs = dense(ref);
    let worst = 0;
    for (let k = 0; k < ours.length; k++) worst = Math.max(worst, Math.abs(ours[k] - theirs[k]));
    assert(worst < 1e-6, `TF-IDF values differ by up to ${worst}`);
    assert(X.data.every(Number.isFinite));
  });
}

Deno.test("tfidf: tokens, n-grams and code-point order", () => {
  const v = new TfidfVectorizer({ minDf: 1 });
  assertEquals(v.analyze("A café, I <br />don't! x2 ÉTÉ"), [
    "café",
    "br",
    "don",
    "x2",
    "été",
    "café br",
    "br don",
    "don x2",
    "x2 été",
  ]);
  assertEquals(v.analyze("!! a b"), []);
  // Python orders by code point: U+FB01 (ﬁ) before U+1D4B3 (𝒳), unlike UTF-16 units.
  assert(compareCodePoints("\ufb01", "\u{1d4b3}") < 0);
  assert(compareCodePoints("ab", "abc") < 0 && compareCodePoints("b", "abc") > 0);
});

Deno.test("tfidf: maxFeatures keeps the most frequent terms, ties to the earlier term", () => {
  // Totals: "bb" 3, then "aa", "cc", "dd" 2 each: the tie at the cut goes to "aa", "cc".
  const texts = ["bb aa dd", "bb cc", "bb aa cc dd"];
  const v = new TfidfVectorizer({ minDf: 1, ngramRange: [1, 1], maxFeatures: 3 }).fit(texts);
  assertEquals(v.terms_, ["aa", "bb", "cc"]);
});

Deno.test("tfidf: input and option errors say what to fix", () => {
  assertThrows(
    () => new TfidfVectorizer().fit(["good film", "", "bad"]),
    Error,
    "texts[1] is empty",
  );
  assertThrows(() => new TfidfVectorizer().fit(["good film", "  \n"]), Error, "texts[1] is empty");
  assertThrows(
    () => new TfidfVectorizer({ minDf: 1 }).fit(["ok film"]).transform(["fine", ""]),
    Error,
    "texts[1]",
  );
  assertThrows(() => new TfidfVectorizer().fit(["!!", "? a"]), Error, "vocabulary is empty");
  assertThrows(
    () => new TfidfVectorizer({ minDf: 5 }).fit(["good film", "bad film", "fine"]),
    Error,
    "lower minDf",
  );
  assertThrows(
    () => new TfidfVectorizer({ minDf: 3, maxDf: 2 }).fit(["a film", "the film", "film"]),
    Error,
    "raise maxDf or lower minDf",
  );
  assertThrows(() => new TfidfVectorizer({ minDf: 1.5 }), Error, "minDf must be");
  assertThrows(() => new TfidfVectorizer({ maxDf: { proportion: 2 } }), Error, "maxDf must be");
  assertThrows(() => new TfidfVectorizer({ ngramRange: [2, 1] }), Error, "ngramRange");
  assertThrows(() => new TfidfVectorizer({ maxFeatures: 0 }), Error, "maxFeatures");
  assertThrows(() => new TfidfVectorizer().transform(["film"]), Error, "not fitted");
});

Deno.test("tfidf: a text without tokens is a zero row", () => {
  const v = new TfidfVectorizer({ minDf: 1 });
  const X = v.fitTransform(["good film", "!!", "bad film"]);
  assertEquals([...X.indptr.slice(1, 3)].map((e, i) => e - X.indptr[i]), [3, 0]);
  const other = v.transform(["?? x", "unknown words", "good"]);
  assertEquals([...other.indptr], [0, 0, 0, 1]);
  assertEquals(other.data[0], 1);
  const model = new SparseLogisticRegression().fit(X, Uint8Array.of(1, 0, 0));
  assert(model.predictProba(other).every(Number.isFinite));
});

interface ReferenceFit {
  coef: number[];
  intercept: number;
  proba: number[];
  accuracy: number;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0, m = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / Math.max(scale, 1e-12);
}

Deno.test("sparse logistic: coefficients, probabilities and the l2 choice match scikit-learn", async () => {
  const train = corpus(200, 3), validation = corpus(100, 4);
  const l2 = [0.1, 1, 10];
  const ref = await reference<
    { terms: string[]; fits: Record<"tight" | "default", ReferenceFit>[] }
  >(
    {
      task: "logistic",
      train: train.texts,
      labels: [...train.labels],
      validation: validation.texts,
      validation_labels: [...validation.labels],
      options: pythonOptions({}),
      l2,
    },
  );
  const v = new TfidfVectorizer();
  const X = v.fitTransform(train.texts), Xv = v.transform(validation.texts);
  assertEquals(v.terms_, ref.terms);
  for (let c = 0; c < l2.length; c++) {
    const model = new SparseLogisticRegression({ l2: l2[c], tol: 1e-10 }).fit(X, train.labels);
    assert(model.converged_, `l2 ${l2[c]}: not converged in ${model.nIter_} iterations`);
    const loose = new SparseLogisticRegression({ l2: l2[c] }).fit(X, train.labels).predictProba(Xv);
    const defaults = ref.fits[c].default.proba;
    for (let i = 0; i < loose.length; i++) {
      assert(
        Math.abs(loose[i] - defaults[i]) < 1e-3,
        `l2 ${l2[c]}, default fits: P(1) of row ${i}`,
      );
    }
    // Both converged tightly (measured: coefficients agree to ~2e-8, probabilities to ~5e-8).
    const r = ref.fits[c].tight;
    const coefDiff = maxRelDiff(model.coef_!, r.coef);
    assert(coefDiff < 1e-6, `l2 ${l2[c]}: coefficients differ by ${coefDiff} (relative)`);
    const b = Math.abs(model.intercept_! - r.intercept) / Math.max(1, Math.abs(r.intercept));
    assert(b < 1e-6, `l2 ${l2[c]}: intercept differs by ${b}`);
    const p = model.predictProba(Xv);
    for (let i = 0; i < p.length; i++) {
      assert(Math.abs(p[i] - r.proba[i]) < 1e-5, `l2 ${l2[c]}: P(1) of row ${i}`);
    }
  }
  // The grid: the first candidate of best scikit-learn validation accuracy.
  const accuracies = ref.fits.map((f) => f.tight.accuracy);
  const expected = l2[accuracies.indexOf(Math.max(...accuracies))];
  const grid = fitL2Grid(X, train.labels, { l2, validation: { X: Xv, y: validation.labels } });
  assertEquals(grid.validationAccuracy, accuracies);
  assertEquals(grid.l2, expected);
  const model = new TfidfLogistic({ l2 }).fit(train.texts, train.labels, {
    validation: { texts: validation.texts, labels: validation.labels },
  });
  assertEquals(model.l2_, expected);
  assertEquals(model.validationAccuracy_, accuracies);
  const chosen = ref.fits[l2.indexOf(expected)].tight.proba;
  const p = model.predictProba(validation.texts);
  for (let i = 0; i < p.length; i++) assert(Math.abs(p[i] - chosen[i]) < 1e-3, `P(1) of row ${i}`);
});

Deno.test("tfidf logistic: without validation texts l2 = 1 is used", () => {
  const train = corpus(120, 5);
  const model = new TfidfLogistic({ l2: [0.1, 1, 10] }).fit(train.texts, train.labels);
  assertEquals(model.l2_, 1);
  assertEquals(model.candidates_, [1]);
  const first = new TfidfLogistic({ l2: [3, 30] }).fit(train.texts, train.labels);
  assertEquals(first.l2_, 3);
});

Deno.test("tfidf logistic: parameters round trip gives identical probabilities", () => {
  const train = corpus(150, 6), test = corpus(40, 7).texts.concat(["!!"]);
  const model = new TfidfLogistic({ vectorizer: { sublinearTf: true }, l2: [1] })
    .fit(train.texts, train.labels);
  const p = model.predictProba(test);
  assert(p.every(Number.isFinite));
  // Through JSON, as a saved model would be.
  const json = JSON.stringify(
    model.parameters(),
    (_, value) => value instanceof Float64Array ? [...value] : value,
  );
  const raw = JSON.parse(json);
  const restored: TfidfLogisticParameters = {
    vectorizer: { ...raw.vectorizer, idf: Float64Array.from(raw.vectorizer.idf) },
    logistic: { ...raw.logistic, coef: Float64Array.from(raw.logistic.coef) },
  };
  const loaded = TfidfLogistic.fromParameters(restored);
  assertEquals(loaded.predictProba(test), p);
  assertEquals(loaded.predict(test), model.predict(test));
  assertThrows(() => new TfidfLogistic().predictProba(["film"]), Error, "not fitted");
});

Deno.test("sparse logistic: input checks", () => {
  const X: CsrMatrix = {
    indptr: Int32Array.of(0, 1, 2, 3),
    indices: Int32Array.of(0, 1, 0),
    data: Float32Array.of(1, 1, 0.5),
    shape: [3, 2],
  };
  const model = new SparseLogisticRegression({ l2: 0.1 }).fit(X, Uint8Array.of(1, 0, 1));
  const p = model.predictProba(X);
  assert(p[0] > 0.5 && p[1] < 0.5 && p[2] > 0.5);
  assertThrows(() => new SparseLogisticRegression({ l2: 0 }), Error, "l2 must be positive");
  assertThrows(() => model.fit(X, Uint8Array.of(1, 1, 1)), Error, "both classes");
  assertThrows(() => model.fit(X, Uint8Array.of(1, 0)), Error, "labels");
  assertThrows(() => model.predict({ ...X, shape: [3, 5] }), Error, "columns");
  assertThrows(
    () => model.fit({ ...X, indices: Int32Array.of(0, 2, 0) }, Uint8Array.of(1, 0, 1)),
    Error,
    "column 2",
  );
  assertThrows(
    () => model.fit({ ...X, data: Float32Array.of(1, NaN, 1) }, Uint8Array.of(1, 0, 1)),
    Error,
    "row 1",
  );
  assertThrows(
    () => model.fit({ ...X, indptr: Int32Array.of(0, 1, 3) }, Uint8Array.of(1, 0, 1)),
    Error,
    "indptr",
  );
});
