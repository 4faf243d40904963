/**
 * The generic labelled-text record every data source produces (IMDB's `Review` is one), the
 * source formats, and how raw label values become 0 / 1.
 *
 * @module
 */

/** The part of the data a record belongs to, when the source says so. */
export type SplitName = "train" | "validation" | "test";

/** The formats a data source can have. */
export type DataFormat = "imdb" | "csv" | "tsv" | "jsonl" | "folders";

/** Every {@link DataFormat}, in the order the docs list them. */
export const DATA_FORMATS: readonly DataFormat[] = ["imdb", "csv", "tsv", "jsonl", "folders"];

/** One labelled text, whatever its source. */
export interface TextRecord {
  /**
   * Identifies the record: for a table the file name and line of the record
   * (`reviews.csv:12`), for a folder source `<class>/<file name>` (with `<split>/` before it
   * when the folders are split); unique within the dataset. IMDB keeps its numeric file id
   * (unique within a split and a label).
   */
  id: string | number;
  /** The text, decoded as UTF-8. */
  text: string;
  /** 1 for the positive class, 0 for the negative one (see {@link LabelMapping}). */
  label: 0 | 1;
  /** The part the source puts it in; absent when the source has no split. */
  split?: SplitName;
  /** Source-specific fields (a table's other columns). */
  extra?: Record<string, unknown>;
}

/** Which raw label value became 0 and which became 1, and why. */
export interface LabelMapping {
  /** The raw value of class 0. */
  negative: string;
  /** The raw value of class 1. */
  positive: string;
  /**
   * `fixed`: the source's own labels (IMDB's `neg` / `pos` folders); `default`: a known
   * pair (see {@link DEFAULT_LABEL_PAIRS}); `positiveLabel`: chosen by the config.
   */
  rule: "fixed" | "default" | "positiveLabel";
}

/** What was loaded: the dataset's name, format and label mapping (for logs and results). */
export interface DatasetInfo {
  /** Shown in logs and reports: `IMDB`, or the file or folder name (or `data.name`). */
  name: string;
  /** The format it was read as. */
  format: DataFormat;
  /** The path or URL it was read from. */
  source: string;
  /** Raw label values → 0 / 1. */
  labels: LabelMapping;
  /** Whether the records carry a split (IMDB's halves, a split column or split folders). */
  hasSplit: boolean;
  /** Records read. */
  records: number;
}

/**
 * Pairs of raw label values that map to 0 / 1 without `positiveLabel`, as
 * `[negative, positive]`, compared case-insensitively after trimming.
 */
export const DEFAULT_LABEL_PAIRS: readonly (readonly [string, string])[] = [
  ["0", "1"],
  ["false", "true"],
  ["neg", "pos"],
  ["negative", "positive"],
];

/** The mapping as one line: `0 = "neg", 1 = "pos" (default mapping)`. */
export function describeLabels(m: LabelMapping): string {
  const why = m.rule === "fixed"
    ? "the source's labels"
    : m.rule === "default"
    ? "default mapping"
    : "data.positiveLabel";
  return `0 = ${JSON.stringify(m.negative)}, 1 = ${JSON.stringify(m.positive)} (${why})`;
}

/**
 * Maps two raw label values to 0 / 1: `positiveLabel` (compared as a string) is class 1 and
 * the other value class 0; without it, a {@link DEFAULT_LABEL_PAIRS} pair. Throws, naming
 * `where`, when `positiveLabel` is not one of the values or the pair is not a known one.
 */
export function labelMapping(
  values: [string, string],
  positiveLabel: string | number | boolean | undefined,
  where: string,
): LabelMapping {
  const shown = values.map((v) => JSON.stringify(v)).join(" and ");
  if (positiveLabel !== undefined) {
    const wanted = String(positiveLabel);
    const i = values.indexOf(wanted);
    if (i < 0) {
      throw new Error(
        `${where}: data.positiveLabel ${JSON.stringify(wanted)} is not one of the labels ` +
          `found, ${shown}`,
      );
    }
    return { negative: values[1 - i], positive: values[i], rule: "positiveLabel" };
  }
  const lower = values.map((v) => v.trim().toLowerCase());
  for (const [neg, pos] of DEFAULT_LABEL_PAIRS) {
    const n = lower.indexOf(neg), p = lower.indexOf(pos);
    if (n >= 0 && p >= 0) return { negative: values[n], positive: values[p], rule: "default" };
  }
  throw new Error(
    `${where}: the labels ${shown} are not a known pair (${
      DEFAULT_LABEL_PAIRS.map(([n, p]) => `${n}/${p}`).join(", ")
    }); set data.positiveLabel to the value of class 1`,
  );
}
