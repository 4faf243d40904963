/**
 * The classic bag-of-words baseline: TF-IDF of word unigrams and bigrams of the raw text, then
 * L2 logistic regression (`./sparse_logistic.ts`) with `l2` chosen on validation rows.
 *
 * {@link TfidfVectorizer} follows scikit-learn's `TfidfVectorizer` for the options it has
 * (scikit-learn's documented behaviour is the specification; tests compare with it):
 *
 * - text lower-cased (`lowercase`), no accent stripping, no stop words;
 * - tokens: maximal runs of 2 or more word characters, the default pattern `(?u)\b\w\w+\b`,
 *   a word character being a Unicode letter or number or `_` (so "café" is one token, "a" and
 *   "I" are none, "don't" gives "don", and IMDB's `<br />` gives the token "br", as in
 *   scikit-learn; cleaning the text is the caller's business);
 * - word n-grams for `n` in `ngramRange`, joined by one space;
 * - terms kept when their document frequency is within `minDf` … `maxDf`, then the
 *   `maxFeatures` most frequent over the corpus; columns in code-point order of the terms;
 * - `tf · idf`, `tf` the raw count (or `1 + ln tf` with `sublinearTf`), the smooth
 *   `idf = ln((1 + n) / (1 + df)) + 1`, each row then scaled to unit L2 norm (rows without
 *   a known term stay zero).
 *
 * ```ts
 * import { TfidfLogistic } from "./lib/eval/tfidf.ts";
 * const texts = ["A great film, great cast", "Dull and slow", "great fun", "slow, dull plot"];
 * const model = new TfidfLogistic({ vectorizer: { minDf: 1 } })
 *   .fit(texts, Uint8Array.of(1, 0, 1, 0));
 * console.log(model.predictProba(["a great plot"])); // > 0.5
 * ```
 *
 * @module
 */
import type { Labels } from "../types.ts";
import {
  type CsrMatrix,
  fitL2Grid,
  L2_CANDIDATES,
  type SparseLogisticParameters,
  SparseLogisticRegression,
  type SparseLogisticRegressionOptions,
} from "./sparse_logistic.ts";

/**
 * A document-frequency bound: an integer is a number of documents (scikit-learn's `int`), a
 * non-integer between 0 and 1 or `{ proportion }` a proportion of the training documents
 * (scikit-learn's `float`; `{ proportion: 1 }` is scikit-learn's `1.0`, all documents).
 */
export type DocumentFrequency = number | { proportion: number };

/** Options of {@link TfidfVectorizer}. */
export interface TfidfVectorizerOptions {
  /** Lower-case the text before tokenising (default true). */
  lowercase?: boolean;
  /** Smallest and largest word n-gram, `1 <= min <= max` (default `[1, 2]`). */
  ngramRange?: [number, number];
  /**
   * Drop terms in fewer documents (default 2). Not scikit-learn's 1: with bigrams, terms of
   * a single document (mostly rare bigrams, names, typos) are the majority of IMDB's distinct
   * terms, multiplying the vocabulary (and the classifier's weights) for features that
   * cannot generalise.
   */
  minDf?: DocumentFrequency;
  /** Drop terms in more documents (default `{ proportion: 1 }`: none dropped). */
  maxDf?: DocumentFrequency;
  /**
   * Keep at most this many terms, the most frequent over the corpus (total count); `null`
   * (default) keeps all. Terms of equal total at the cut go to the earlier in column order;
   * scikit-learn breaks such ties by NumPy's unstable argsort, so the kept set equals its
   * own only when the cut falls between different totals.
   */
  maxFeatures?: number | null;
  /** Use `1 + ln(tf)` in place of the count `tf` (default false). */
  sublinearTf?: boolean;
}

/** Default options of {@link TfidfVectorizer} (the one place they are defined). */
export const TFIDF_DEFAULTS: Readonly<Required<TfidfVectorizerOptions>> = {
  lowercase: true,
  ngramRange: [1, 2],
  minDf: 2,
  maxDf: { proportion: 1 },
  maxFeatures: null,
  sublinearTf: false,
};

/** Tokens of scikit-learn's default pattern `(?u)\b\w\w+\b`: runs of 2+ word characters. */
const TOKEN = /[\p{L}\p{N}_]{2,}/gu;

/**
 * The tokens of `text` by scikit-learn's default token pattern (maximal runs of two or more
 * Unicode letters, numbers or underscores), without lower-casing.
 */
export function tokenize(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

/** The word n-grams of `tokens` for `n` from `minN` to `maxN`, shorter ones first. */
export function wordNgrams(tokens: readonly string[], minN: number, maxN: number): string[] {
  const out: string[] = [];
  for (let n = minN; n <= Math.min(maxN, tokens.length); n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      out.push(n === 1 ? tokens[i] : tokens.slice(i, i + n).join(" "));
    }
  }
  return out;
}

/** Rank of a UTF-16 unit >= 0xD800 so that surrogates (astral code points) sort last. */
function highUnitRank(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** Compares strings by Unicode code points (Python's `str` order), not UTF-16 units. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i), y = b.charCodeAt(i);
    if (x !== y) return x >= 0xd800 && y >= 0xd800 ? highUnitRank(x) - highUnitRank(y) : x - y;
  }
  return a.length - b.length;
}

/** Throws unless `texts` is an array of strings with text in every row. */
function checkTexts(texts: readonly string[], name: string): void {
  if (!Array.isArray(texts)) throw new Error(`${name} must be an array of strings`);
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== "string") {
      throw new Error(`${name}[${i}] is ${typeof texts[i]}, not a string`);
    }
    if (texts[i].trim() === "") {
      throw new Error(
        `${name}[${i}] is empty (or only whitespace): every row needs text; drop or fill ` +
          `empty rows before fitting or transforming`,
      );
    }
  }
}

/** Throws unless `value` is a valid {@link DocumentFrequency}. */
function checkDocumentFrequency(name: string, value: DocumentFrequency): void {
  const p = typeof value === "number" ? value : value?.proportion;
  const ok = typeof value === "number"
    ? (Number.isInteger(p) && p >= 0) || (p > 0 && p < 1)
    : typeof p === "number" && p >= 0 && p <= 1;
  if (!ok) {
    throw new Error(
      `${name} must be a document count (integer >= 0), a proportion between 0 and 1, or ` +
        `{ proportion: p } with 0 <= p <= 1, not ${JSON.stringify(value)}`,
    );
  }
}

/** The document count a {@link DocumentFrequency} stands for among `n` documents. */
function documentCount(value: DocumentFrequency, n: number): number {
  if (typeof value !== "number") return value.proportion * n;
  return Number.isInteger(value) ? value : value * n;
}

function describe(value: DocumentFrequency): string {
  return typeof value === "number" ? String(value) : `{ proportion: ${value.proportion} }`;
}

/** The option values of a {@link TfidfVectorizer}, defaults filled in and validated. */
function resolveOptions(options: TfidfVectorizerOptions): Required<TfidfVectorizerOptions> {
  const d = TFIDF_DEFAULTS;
  const o: Required<TfidfVectorizerOptions> = {
    lowercase: options.lowercase ?? d.lowercase,
    ngramRange: [...(options.ngramRange ?? d.ngramRange)] as [number, number],
    minDf: options.minDf ?? d.minDf,
    maxDf: options.maxDf ?? d.maxDf,
    maxFeatures: options.maxFeatures === undefined ? d.maxFeatures : options.maxFeatures,
    sublinearTf: options.sublinearTf ?? d.sublinearTf,
  };
  const [minN, maxN] = o.ngramRange;
  if (!(Number.isInteger(minN) && Number.isInteger(maxN) && minN >= 1 && maxN >= minN)) {
    throw new Error(
      `ngramRange must be [min, max] with integers 1 <= min <= max, not [${minN}, ${maxN}]`,
    );
  }
  checkDocumentFrequency("minDf", o.minDf);
  checkDocumentFrequency("maxDf", o.maxDf);
  if (o.maxFeatures !== null && !(Number.isInteger(o.maxFeatures) && o.maxFeatures >= 1)) {
    throw new Error(`maxFeatures must be an integer >= 1 or null (all), not ${o.maxFeatures}`);
  }
  return o;
}

/** A fitted {@link TfidfVectorizer} as plain values. */
export interface TfidfVectorizerParameters {
  /** The options it was fitted with (defaults filled in). */
  options: Required<TfidfVectorizerOptions>;
  /** The term of each column. */
  terms: string[];
  /** The idf of each column. */
  idf: Float64Array;
}

/** TF-IDF features of texts, as scikit-learn's `TfidfVectorizer` (see the module doc). */
export class TfidfVectorizer {
  /** Lower-case before tokenising. */
  readonly lowercase: boolean;
  /** Smallest and largest word n-gram. */
  readonly ngramRange: readonly [number, number];
  /** Lower document-frequency bound. */
  readonly minDf: DocumentFrequency;
  /** Upper document-frequency bound. */
  readonly maxDf: DocumentFrequency;
  /** Most terms kept (`null`: all). */
  readonly maxFeatures: number | null;
  /** `1 + ln(tf)` in place of `tf`. */
  readonly sublinearTf: boolean;
  /** Term → column (after {@link fit}). */
  vocabulary_?: Map<string, number>;
  /** The term of each column (after {@link fit}). */
  terms_?: string[];
  /** The smooth idf of each column (after {@link fit}). */
  idf_?: Float64Array;

  /** Creates an unfitted vectorizer; throws on invalid options. */
  constructor(options: TfidfVectorizerOptions = {}) {
    const o = resolveOptions(options);
    this.lowercase = o.lowercase;
    this.ngramRange = o.ngramRange;
    this.minDf = o.minDf;
    this.maxDf = o.maxDf;
    this.maxFeatures = o.maxFeatures;
    this.sublinearTf = o.sublinearTf;
  }

  /** The terms (n-grams) of one text, in order, repeats kept. */
  analyze(text: string): string[] {
    const tokens = tokenize(this.lowercase ? text.toLowerCase() : text);
    return wordNgrams(tokens, this.ngramRange[0], this.ngramRange[1]);
  }

  /** Learns the vocabulary and idf from `texts`; throws on an empty text or vocabulary. */
  fit(texts: readonly string[]): this {
    checkTexts(texts, "texts");
    const n = texts.length;
    const ids = new Map<string, number>();
    const df: number[] = [], total: number[] = [], lastDoc: number[] = [];
    for (let doc = 0; doc < n; doc++) {
      for (const term of this.analyze(texts[doc])) {
        let id = ids.get(term);
        if (id === undefined) {
          id = df.length;
          ids.set(term, id);
          df.push(0), total.push(0), lastDoc.push(-1);
        }
        total[id]++;
        if (lastDoc[id] !== doc) {
          lastDoc[id] = doc;
          df[id]++;
        }
      }
    }
    if (ids.size === 0) {
      throw new Error(
        `No text of ${n} has a token (2+ letters or digits): the vocabulary is empty`,
      );
    }
    const low = documentCount(this.minDf, n), high = documentCount(this.maxDf, n);
    if (high < low) {
      throw new Error(
        `maxDf ${describe(this.maxDf)} allows fewer documents (${high}) than minDf ` +
          `${describe(this.minDf)} requires (${low}) among ${n}; raise maxDf or lower minDf`,
      );
    }
    let kept: [string, number][] = [];
    for (const entry of ids) if (df[entry[1]] >= low && df[entry[1]] <= high) kept.push(entry);
    kept.sort((a, b) => compareCodePoints(a[0], b[0]));
    if (this.maxFeatures !== null && kept.length > this.maxFeatures) {
      // Stable sort: equal totals keep column (code-point) order.
      kept = kept.sort((a, b) => total[b[1]] - total[a[1]]).slice(0, this.maxFeatures);
      kept.sort((a, b) => compareCodePoints(a[0], b[0]));
    }
    if (kept.length === 0) {
      throw new Error(
        `No term is in at least minDf ${describe(this.minDf)} and at most maxDf ` +
          `${describe(this.maxDf)} of the ${n} documents (${ids.size} distinct terms): ` +
          `the vocabulary is empty; lower minDf or raise maxDf`,
      );
    }
    this.terms_ = kept.map(([term]) => term);
    this.vocabulary_ = new Map(this.terms_.map((term, column) => [term, column]));
    this.idf_ = Float64Array.from(kept, ([, id]) => Math.log((1 + n) / (1 + df[id])) + 1);
    return this;
  }

  /** TF-IDF rows of `texts` (unit L2 norm; zero for a text without known terms). */
  transform(texts: readonly string[]): CsrMatrix {
    const vocabulary = this.vocabulary_, idf = this.idf_;
    if (!vocabulary || !idf) throw new Error("TfidfVectorizer is not fitted: call fit() first");
    checkTexts(texts, "texts");
    const counts = new Float64Array(idf.length);
    const indptr = new Int32Array(texts.length + 1);
    const rowsIndices: Int32Array[] = [], rowsData: Float32Array[] = [];
    for (let i = 0; i < texts.length; i++) {
      const touched: number[] = [];
      for (const term of this.analyze(texts[i])) {
        const column = vocabulary.get(term);
        if (column === undefined) continue;
        if (counts[column] === 0) touched.push(column);
        counts[column]++;
      }
      const columns = Int32Array.from(touched).sort();
      const values = new Float64Array(columns.length);
      let squares = 0;
      for (let k = 0; k < columns.length; k++) {
        const tf = counts[columns[k]];
        counts[columns[k]] = 0;
        values[k] = (this.sublinearTf ? 1 + Math.log(tf) : tf) * idf[columns[k]];
        squares += values[k] * values[k];
      }
      const scale = squares > 0 ? 1 / Math.sqrt(squares) : 0;
      rowsIndices.push(columns);
      rowsData.push(Float32Array.from(values, (v) => v * scale));
      indptr[i + 1] = indptr[i] + columns.length;
    }
    const indices = new Int32Array(indptr[texts.length]);
    const data = new Float32Array(indptr[texts.length]);
    for (let i = 0; i < texts.length; i++) {
      indices.set(rowsIndices[i], indptr[i]);
      data.set(rowsData[i], indptr[i]);
    }
    return { indptr, indices, data, shape: [texts.length, idf.length] };
  }

  /** {@link fit} then {@link transform} on the same texts. */
  fitTransform(texts: readonly string[]): CsrMatrix {
    return this.fit(texts).transform(texts);
  }

  /** The options and fitted state as plain values (copies); throws when not fitted. */
  parameters(): TfidfVectorizerParameters {
    if (!this.terms_ || !this.idf_) {
      throw new Error("TfidfVectorizer is not fitted: call fit() before parameters()");
    }
    return {
      options: {
        lowercase: this.lowercase,
        ngramRange: [...this.ngramRange] as [number, number],
        minDf: this.minDf,
        maxDf: this.maxDf,
        maxFeatures: this.maxFeatures,
        sublinearTf: this.sublinearTf,
      },
      terms: [...this.terms_],
      idf: this.idf_.slice(),
    };
  }

  /** A fitted vectorizer from {@link TfidfVectorizer.parameters}; transforms as the original. */
  static fromParameters(p: TfidfVectorizerParameters): TfidfVectorizer {
    if (!Array.isArray(p.terms) || !(p.idf instanceof Float64Array)) {
      throw new Error("TfidfVectorizer.fromParameters: terms must be strings, idf a Float64Array");
    }
    if (p.terms.length !== p.idf.length || p.terms.length === 0) {
      throw new Error(
        `TfidfVectorizer.fromParameters: ${p.terms.length} terms but ${p.idf.length} idf values`,
      );
    }
    const vectorizer = new TfidfVectorizer(p.options);
    vectorizer.terms_ = [...p.terms];
    vectorizer.vocabulary_ = new Map(p.terms.map((term, column) => [term, column]));
    if (vectorizer.vocabulary_.size !== p.terms.length) {
      throw new Error("TfidfVectorizer.fromParameters: terms repeat");
    }
    vectorizer.idf_ = p.idf.slice();
    return vectorizer;
  }
}

/** Options of {@link TfidfLogistic}. */
export interface TfidfLogisticOptions {
  /** Options of the {@link TfidfVectorizer} (its defaults: unigrams + bigrams, `minDf` 2). */
  vectorizer?: TfidfVectorizerOptions;
  /** `l2` candidates chosen on the validation texts (default {@link L2_CANDIDATES}). */
  l2?: readonly number[];
  /** The other options of the {@link SparseLogisticRegression} fits. */
  logistic?: Omit<SparseLogisticRegressionOptions, "l2">;
}

/** A fitted {@link TfidfLogistic} as plain values. */
export interface TfidfLogisticParameters {
  /** The fitted vectorizer. */
  vectorizer: TfidfVectorizerParameters;
  /** The classifier of the chosen `l2`. */
  logistic: SparseLogisticParameters;
}

/**
 * TF-IDF + logistic regression: the vectorizer learns from the training texts only, one
 * classifier is fitted per `l2` candidate and the one most accurate on the validation texts
 * kept (see {@link fitL2Grid}).
 */
export class TfidfLogistic {
  /** Vectorizer options (defaults filled in). */
  readonly vectorizer: Required<TfidfVectorizerOptions>;
  /** `l2` candidates. */
  readonly l2: readonly number[];
  /** Classifier options besides `l2`. */
  readonly logistic: Omit<SparseLogisticRegressionOptions, "l2">;
  /** The fitted vectorizer (after {@link fit}). */
  vectorizer_?: TfidfVectorizer;
  /** The classifier of the chosen `l2` (after {@link fit}). */
  classifier_?: SparseLogisticRegression;
  /** The chosen `l2` (after {@link fit}). */
  l2_?: number;
  /** The candidates fitted (one without validation texts). */
  candidates_?: number[];
  /** Validation accuracy per fitted candidate (empty without validation texts). */
  validationAccuracy_?: number[];

  /** Creates an unfitted model; throws on invalid options. */
  constructor(options: TfidfLogisticOptions = {}) {
    this.vectorizer = resolveOptions(options.vectorizer ?? {});
    this.l2 = [...(options.l2 ?? L2_CANDIDATES)];
    this.logistic = { ...options.logistic };
    if (this.l2.length === 0) throw new Error("TfidfLogistic: l2 needs at least one candidate");
    for (const l2 of this.l2) new SparseLogisticRegression({ ...this.logistic, l2 });
  }

  /**
   * Fits the vectorizer on `trainTexts`, then the classifiers; `validation` chooses `l2`
   * (without it, `l2 = 1` if a candidate, else the first).
   */
  fit(
    trainTexts: readonly string[],
    trainLabels: Labels,
    options: { validation?: { texts: readonly string[]; labels: Labels } } = {},
  ): this {
    if (trainTexts.length !== trainLabels.length) {
      throw new Error(`${trainTexts.length} training texts but ${trainLabels.length} labels`);
    }
    const vectorizer = new TfidfVectorizer(this.vectorizer);
    const X = vectorizer.fitTransform(trainTexts);
    const v = options.validation;
    if (v && v.texts.length !== v.labels.length) {
      throw new Error(`${v.texts.length} validation texts but ${v.labels.length} labels`);
    }
    const grid = fitL2Grid(X, trainLabels, {
      l2: this.l2,
      logistic: this.logistic,
      validation: v ? { X: vectorizer.transform(v.texts), y: v.labels } : undefined,
    });
    this.vectorizer_ = vectorizer;
    this.classifier_ = grid.model;
    this.l2_ = grid.l2;
    this.candidates_ = grid.candidates;
    this.validationAccuracy_ = grid.validationAccuracy;
    return this;
  }

  #fitted(): { vectorizer: TfidfVectorizer; classifier: SparseLogisticRegression } {
    if (!this.vectorizer_ || !this.classifier_) {
      throw new Error("TfidfLogistic is not fitted: call fit() first");
    }
    return { vectorizer: this.vectorizer_, classifier: this.classifier_ };
  }

  /** P(class 1) per text. */
  predictProba(texts: readonly string[]): Float32Array {
    const { vectorizer, classifier } = this.#fitted();
    return classifier.predictProba(vectorizer.transform(texts));
  }

  /** Predicted labels (1 where P(class 1) > 0.5). */
  predict(texts: readonly string[]): Uint8Array {
    const { vectorizer, classifier } = this.#fitted();
    return classifier.predict(vectorizer.transform(texts));
  }

  /** The fitted vectorizer and classifier as plain values (copies). */
  parameters(): TfidfLogisticParameters {
    const { vectorizer, classifier } = this.#fitted();
    return { vectorizer: vectorizer.parameters(), logistic: classifier.parameters() };
  }

  /** A fitted model from {@link TfidfLogistic.parameters}: the same probabilities. */
  static fromParameters(p: TfidfLogisticParameters): TfidfLogistic {
    const vectorizer = TfidfVectorizer.fromParameters(p.vectorizer);
    const classifier = SparseLogisticRegression.fromParameters(p.logistic);
    if (classifier.coef_!.length !== vectorizer.terms_!.length) {
      throw new Error(
        `TfidfLogistic.fromParameters: ${classifier.coef_!.length} weights for ` +
          `${vectorizer.terms_!.length} terms`,
      );
    }
    const model = new TfidfLogistic({ vectorizer: p.vectorizer.options, l2: [p.logistic.l2] });
    model.vectorizer_ = vectorizer;
    model.classifier_ = classifier;
    model.l2_ = p.logistic.l2;
    return model;
  }
}
