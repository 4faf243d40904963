/**
 * Tables of records, shown in notebooks as Markdown (with a plain-text fallback) and usable
 * as Markdown in reports.
 *
 * @module
 */
import { jupyterDisplay, type MimeBundle } from "./figure.ts";

/** A table cell value. */
export type Cell = string | number | boolean | null | undefined;

/** Options of {@link Table}. */
export interface TableOptions {
  /** Columns in order (default: keys of the first row, then new keys of later rows). */
  columns?: readonly string[];
  /** Decimals for non-integer numbers (default 4). */
  decimals?: number;
  /** A bold line above the table. */
  title?: string;
}

function columnsOf(rows: readonly Record<string, Cell>[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const key of Object.keys(row)) seen.add(key);
  return [...seen];
}

/** A table of records with Markdown and plain-text renderings. */
export class Table {
  /** Column names in order. */
  readonly columns: readonly string[];
  /** Formatted cells, row by row. */
  readonly cells: readonly (readonly string[])[];
  /** Title line, if any. */
  readonly title: string | undefined;

  /** Formats `rows` (numbers rounded to `decimals`, missing values empty). */
  constructor(rows: readonly Record<string, Cell>[], options: TableOptions = {}) {
    this.columns = options.columns ? [...options.columns] : columnsOf(rows);
    this.title = options.title;
    const decimals = options.decimals ?? 4;
    const format = (value: Cell): string => {
      if (value === null || value === undefined) return "";
      if (typeof value === "number") {
        if (Number.isInteger(value)) return String(value);
        return Number.isFinite(value) ? value.toFixed(decimals) : String(value);
      }
      return String(value);
    };
    this.cells = rows.map((row) => this.columns.map((column) => format(row[column])));
  }

  /** GitHub-flavoured Markdown (numbers right-aligned). */
  markdown(): string {
    const escape = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
    const numeric = this.columns.map((_, c) =>
      this.cells.length > 0 &&
      this.cells.every((row) => row[c] === "" || !Number.isNaN(Number(row[c])))
    );
    const lines = [
      `| ${this.columns.map(escape).join(" | ")} |`,
      `|${numeric.map((right) => (right ? " ---: " : " --- ")).join("|")}|`,
      ...this.cells.map((row) => `| ${row.map(escape).join(" | ")} |`),
    ];
    return (this.title ? `**${escape(this.title)}**\n\n` : "") + lines.join("\n") + "\n";
  }

  /** Plain text with padded columns. */
  text(): string {
    const widths = this.columns.map((column, c) =>
      Math.max(column.length, ...this.cells.map((row) => row[c].length))
    );
    const line = (values: readonly string[]) =>
      values.map((value, c) => value.padEnd(widths[c])).join("  ").trimEnd();
    return [
      ...(this.title ? [this.title] : []),
      line(this.columns),
      line(widths.map((w) => "-".repeat(w))),
      ...this.cells.map(line),
    ].join("\n");
  }

  /** The MIME bundle Jupyter displays: Markdown plus plain text. */
  [jupyterDisplay](): MimeBundle {
    return { "text/markdown": this.markdown(), "text/plain": this.text() };
  }

  /** The plain-text rendering. */
  toString(): string {
    return this.text();
  }
}

/** Shorthand for `new Table(rows, options)`. */
export function table(rows: readonly Record<string, Cell>[], options: TableOptions = {}): Table {
  return new Table(rows, options);
}
