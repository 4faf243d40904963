/**
 * Labelled texts from a table (CSV, TSV, JSON Lines) or from a folder with one sub-folder per
 * class. CSV and TSV are parsed by `csv-parse` (RFC 4180 quoting: quoted fields may hold
 * delimiters, doubled quotes and newlines). Every problem of the input is an `Error` naming
 * the file and the 1-based line, as an editor shows it.
 *
 * @module
 */
import { basename, join } from "node:path";
import { parse } from "csv-parse/sync";
import type { Progress } from "../progress.ts";
import { labelMapping } from "./record.ts";
import type { DatasetInfo, LabelMapping, SplitName, TextRecord } from "./record.ts";

/** The table and folder formats {@link loadTable} reads. */
export type TableFormat = "csv" | "tsv" | "jsonl" | "folders";

/** Options of {@link loadTable}. */
export interface LoadTableOptions {
  /** The file (csv, tsv, jsonl) or the folder (folders). */
  source: string;
  /** How to read it. */
  format: TableFormat;
  /** Column (JSONL: field) holding the text. Default `"text"`. Not for folders. */
  textColumn?: string;
  /** Column (JSONL: field) holding the label. Default `"label"`. Not for folders. */
  labelColumn?: string;
  /**
   * Column (JSONL: field) holding each record's split: `train` (or `training`), `validation`
   * (`valid`, `val`, `dev`) or `test` (`testing`), case-insensitive. Default: none, and the
   * data has no split. Not for folders (a folder source is split by `train/`, `test/`, …
   * folders above the class folders).
   */
  splitColumn?: string;
  /**
   * The raw label value of class 1 (compared as a string: `1` and `"1"` are the same); the
   * other value is class 0. Needed unless the two values are a default pair: `0`/`1`,
   * `false`/`true`, `neg`/`pos`, `negative`/`positive` (any case).
   */
  positiveLabel?: string | number | boolean;
  /** Name for logs and reports. Default: the file or folder name. */
  name?: string;
  /** `"keep"` `<br />` tags (default) or replace each with a space, as for IMDB. */
  breaks?: "keep" | "space";
  /** Called as records are read. */
  onProgress?: (p: Progress) => void;
}

/** What {@link loadTable} returns. */
export interface TableData {
  /** The records, in file order (folders: by split, class folder and file name). */
  records: TextRecord[];
  /** Name, format, source, label mapping. */
  info: DatasetInfo;
}

const BREAKS = /<br\s*\/?>/gi;

/** Offset of the first byte that is not valid UTF-8 in `bytes`, or -1 when all are valid. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number, max = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) need = 2;
    else if (b >= 0xf0 && b <= 0xf4) need = 3;
    else return i;
    // The second byte's range excludes overlong forms, surrogates and > U+10FFFF.
    const min = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    if (b === 0xed) max = 0x9f;
    if (b === 0xf4) max = 0x8f;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || c < (k === 1 ? min : 0x80) || c > (k === 1 ? max : 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Byte offsets where each line starts (`\n`, `\r\n` and a lone `\r` end a line). */
function lineStarts(bytes: Uint8Array): number[] {
  const starts = [0];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x0a || (b === 0x0d && bytes[i + 1] !== 0x0a)) starts.push(i + 1);
  }
  return starts;
}

/** The 1-based line of byte `offset`, given {@link lineStarts}. */
function lineOf(starts: number[], offset: number): number {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

/** Decodes a whole file as UTF-8; invalid bytes are an error naming the file and line. */
export function decodeUtf8(bytes: Uint8Array, path: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const offset = at < 0 ? bytes.length : at;
    const line = lineOf(lineStarts(bytes), offset);
    throw new Error(
      `${path}, line ${line}: invalid UTF-8 (byte 0x${
        (bytes[offset] ?? 0).toString(16).padStart(2, "0")
      } at byte offset ${offset}); save the file as UTF-8`,
    );
  }
}

const SPLIT_NAMES: Record<string, SplitName> = {
  train: "train",
  training: "train",
  validation: "validation",
  valid: "validation",
  val: "validation",
  dev: "validation",
  test: "test",
  testing: "test",
};

/** A split name as a source may write it, or undefined. */
function splitName(raw: string): SplitName | undefined {
  return Object.hasOwn(SPLIT_NAMES, raw.trim().toLowerCase())
    ? SPLIT_NAMES[raw.trim().toLowerCase()]
    : undefined;
}

/** Collects rows, checks texts, labels and splits, and maps the labels to 0 / 1. */
class RowCollector {
  readonly #rows: {
    id: string;
    text: string;
    raw: string;
    split?: SplitName;
    extra?: Record<string, unknown>;
  }[] = [];
  /** The label values seen, with the line of the first record of each. */
  readonly #labels = new Map<string, number>();
  readonly #path: string;
  readonly #options: LoadTableOptions;

  constructor(path: string, options: LoadTableOptions) {
    this.#path = path;
    this.#options = options;
  }

  #fail(line: number, message: string): never {
    throw new Error(`${this.#path}, line ${line}: ${message}`);
  }

  /** Adds one record; `what` names where its text and label came from (columns, folder). */
  add(
    id: string,
    line: number,
    text: unknown,
    label: unknown,
    split: unknown,
    what: { text: string; label: string; split?: string },
    extra?: Record<string, unknown>,
  ): void {
    if (typeof text !== "string") {
      this.#fail(line, `the text (${what.text}) is ${describe(text)}, not a string`);
    }
    if (text.trim() === "") this.#fail(line, `empty text (${what.text})`);
    if (
      label === null || label === undefined ||
      !["string", "number", "boolean"].includes(typeof label)
    ) {
      this.#fail(line, `the label (${what.label}) is ${describe(label)}`);
    }
    const raw = String(label).trim();
    if (raw === "") this.#fail(line, `empty label (${what.label})`);
    if (!this.#labels.has(raw)) {
      if (this.#labels.size === 2) {
        const seen = [...this.#labels].map(([v, l]) => `${JSON.stringify(v)} (line ${l})`);
        this.#fail(
          line,
          `a third label value ${JSON.stringify(raw)} (${what.label}); the labels so far are ` +
            `${seen.join(" and ")}, and the data must have exactly two classes`,
        );
      }
      this.#labels.set(raw, line);
    }
    let part: SplitName | undefined;
    if (what.split !== undefined) {
      if (typeof split !== "string" || splitName(split) === undefined) {
        this.#fail(
          line,
          `the split (${what.split}) is ${
            typeof split === "string" ? JSON.stringify(split) : describe(split)
          }; use train, validation or test (also training, valid, val, dev, testing)`,
        );
      }
      part = splitName(split);
    }
    const breaks = this.#options.breaks ?? "keep";
    this.#rows.push({
      id,
      text: breaks === "space" ? text.replace(BREAKS, " ") : text,
      raw,
      ...(part ? { split: part } : {}),
      ...(extra && Object.keys(extra).length ? { extra } : {}),
    });
    if (this.#options.onProgress && this.#rows.length % 1000 === 0) {
      this.#options.onProgress({ done: this.#rows.length });
    }
  }

  /** The records with their 0 / 1 labels, and the mapping. */
  finish(empty: string): { records: TextRecord[]; labels: LabelMapping } {
    if (this.#rows.length === 0) throw new Error(`${this.#path}: ${empty}`);
    const values = [...this.#labels.keys()];
    if (values.length < 2) {
      throw new Error(
        `${this.#path}: every record has the label ${JSON.stringify(values[0])}; the data ` +
          `must have two classes`,
      );
    }
    const labels = labelMapping(
      values as [string, string],
      this.#options.positiveLabel,
      this.#path,
    );
    const records = this.#rows.map(({ raw, ...rest }): TextRecord => ({
      ...rest,
      label: raw === labels.positive ? 1 : 0,
    }));
    this.#options.onProgress?.({ done: records.length, total: records.length });
    return { records, labels };
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

/** The columns of a table: text, label, optional split. */
function columnsOf(options: LoadTableOptions) {
  return {
    text: options.textColumn ?? "text",
    label: options.labelColumn ?? "label",
    split: options.splitColumn,
  };
}

const COLUMN_FIELD = { text: "textColumn", label: "labelColumn", split: "splitColumn" } as const;

function readDelimited(
  path: string,
  bytes: Uint8Array,
  delimiter: string,
  collector: RowCollector,
  options: LoadTableOptions,
): void {
  const starts = lineStarts(bytes);
  /** The line of the first byte of the record that starts at or after `offset`. */
  const recordLine = (offset: number) => {
    let o = offset;
    if (o === 0 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) o = 3;
    while (o < bytes.length && (bytes[o] === 0x0a || bytes[o] === 0x0d)) o++;
    return lineOf(starts, o);
  };
  let rows: { record: string[]; info: { bytes: number } }[];
  try {
    rows = parse(bytes, {
      delimiter,
      bom: true,
      info: true,
      skip_empty_lines: true,
      relax_quotes: true,
    }) as unknown as { record: string[]; info: { bytes: number } }[];
  } catch (e) {
    const err = e as Error & { bytes_records?: number; code?: string };
    const line = recordLine(err.bytes_records ?? 0);
    if (err.code === "CSV_QUOTE_NOT_CLOSED") {
      throw new Error(
        `${path}, line ${line}: malformed record: a quoted field of the record that starts ` +
          `here is never closed`,
      );
    }
    throw new Error(`${path}, line ${line}: malformed record (${err.message})`);
  }
  if (rows.length === 0) {
    throw new Error(
      `${path}, line 1: the file is empty; expected a header line naming the columns`,
    );
  }
  const header = rows[0].record.map((name) => name.trim());
  const columns = columnsOf(options);
  const index: Record<string, number> = {};
  for (const [key, name] of Object.entries(columns)) {
    if (name === undefined) continue;
    const found = header.indexOf(name);
    if (found < 0) {
      throw new Error(
        `${path}, line 1: no column ${JSON.stringify(name)} (the columns are ${
          header.map((h) => JSON.stringify(h)).join(", ")
        }); set data.${COLUMN_FIELD[key as keyof typeof COLUMN_FIELD]}`,
      );
    }
    if (header.indexOf(name, found + 1) >= 0) {
      throw new Error(`${path}, line 1: two columns are named ${JSON.stringify(name)}`);
    }
    index[key] = found;
  }
  const used = new Set(Object.values(index));
  const file = basename(path);
  const what = {
    text: `column ${JSON.stringify(columns.text)}`,
    label: `column ${JSON.stringify(columns.label)}`,
    ...(columns.split ? { split: `column ${JSON.stringify(columns.split)}` } : {}),
  };
  for (let r = 1; r < rows.length; r++) {
    const line = recordLine(rows[r - 1].info.bytes);
    const record = rows[r].record;
    const extra: Record<string, unknown> = {};
    header.forEach((name, i) => {
      if (!used.has(i)) extra[name] = record[i];
    });
    collector.add(
      `${file}:${line}`,
      line,
      record[index.text],
      record[index.label],
      columns.split ? record[index.split] : undefined,
      what,
      extra,
    );
  }
}

function readJsonLines(
  path: string,
  text: string,
  collector: RowCollector,
  options: LoadTableOptions,
): void {
  const lines = text.split(/\r\n|\n|\r/);
  if (lines.every((l) => l.trim() === "")) {
    throw new Error(`${path}, line 1: the file is empty; expected one JSON object per line`);
  }
  const columns = columnsOf(options);
  const file = basename(path);
  const what = {
    text: `field ${JSON.stringify(columns.text)}`,
    label: `field ${JSON.stringify(columns.label)}`,
    ...(columns.split ? { split: `field ${JSON.stringify(columns.split)}` } : {}),
  };
  lines.forEach((source, i) => {
    const line = i + 1;
    if (source.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch (e) {
      const message = (e as Error).message.replace(/ \(line 1 (column \d+)\)/, ", $1");
      throw new Error(`${path}, line ${line}: not valid JSON (${message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new Error(`${path}, line ${line}: expected a JSON object, got ${describe(value)}`);
    }
    const row = value as Record<string, unknown>;
    for (const [key, name] of Object.entries(columns)) {
      if (name !== undefined && !Object.hasOwn(row, name)) {
        throw new Error(
          `${path}, line ${line}: no field ${JSON.stringify(name)} (the fields are ${
            Object.keys(row).map((k) => JSON.stringify(k)).join(", ") || "none"
          }); set data.${COLUMN_FIELD[key as keyof typeof COLUMN_FIELD]}`,
        );
      }
    }
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) {
      if (k !== columns.text && k !== columns.label && k !== columns.split) extra[k] = v;
    }
    collector.add(
      `${file}:${line}`,
      line,
      row[columns.text],
      row[columns.label],
      columns.split ? row[columns.split] : undefined,
      what,
      extra,
    );
  });
}

async function subfolders(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory && !entry.name.startsWith(".")) names.push(entry.name);
  }
  return names.sort();
}

async function readFolders(root: string, options: LoadTableOptions): Promise<TableData> {
  const top = await subfolders(root);
  const split = top.length > 0 && top.every((name) => splitName(name) !== undefined);
  const parts = split ? top : [""];
  const classes = new Map<string, string>(); // class name → first folder holding it
  const files: { id: string; path: string; label: string; split?: SplitName }[] = [];
  for (const part of parts) {
    const dir = join(root, part);
    const names = await subfolders(dir);
    if (names.length === 0) {
      throw new Error(
        `${dir}: no class folders; a folder source holds one sub-folder per class ` +
          `(optionally below train/, validation/ and test/ folders)`,
      );
    }
    for (const name of names) {
      if (!classes.has(name)) {
        if (classes.size === 2) {
          throw new Error(
            `${join(dir, name)}: a third class folder (the classes so far are ${
              [...classes.keys()].map((c) => JSON.stringify(c)).join(" and ")
            }); the data must have exactly two classes`,
          );
        }
        classes.set(name, join(dir, name));
      }
      const folder = join(dir, name);
      const entries: string[] = [];
      for await (const entry of Deno.readDir(folder)) {
        if (entry.isFile && !entry.name.startsWith(".")) entries.push(entry.name);
      }
      if (entries.length === 0) throw new Error(`${folder}: the class folder has no files`);
      for (const file of entries.sort()) {
        files.push({
          id: part ? `${part}/${name}/${file}` : `${name}/${file}`,
          path: join(folder, file),
          label: name,
          ...(split ? { split: splitName(part) } : {}),
        });
      }
    }
  }
  if (classes.size < 2) {
    throw new Error(
      `${root}: only one class folder (${[...classes.keys()].join("")}); the data must have ` +
        `two classes, one sub-folder each`,
    );
  }
  const labels = labelMapping(
    [...classes.keys()] as [string, string],
    options.positiveLabel,
    root,
  );
  const breaks = options.breaks ?? "keep";
  const records: TextRecord[] = [];
  const concurrency = 64;
  for (let start = 0; start < files.length; start += concurrency) {
    const batch = files.slice(start, start + concurrency);
    const contents = await Promise.all(batch.map((f) => Deno.readFile(f.path)));
    batch.forEach((f, i) => {
      const text = decodeUtf8(contents[i], f.path);
      if (text.trim() === "") throw new Error(`${f.path}, line 1: empty text (the file is empty)`);
      records.push({
        id: f.id,
        text: breaks === "space" ? text.replace(BREAKS, " ") : text,
        label: f.label === labels.positive ? 1 : 0,
        ...(f.split ? { split: f.split } : {}),
      });
    });
    options.onProgress?.({ done: records.length });
  }
  options.onProgress?.({ done: records.length, total: records.length });
  return {
    records,
    info: {
      name: options.name ?? basename(root),
      format: "folders",
      source: root,
      labels,
      hasSplit: split,
      records: records.length,
    },
  };
}

/**
 * Reads labelled texts from a CSV, TSV or JSON Lines file or a folder of class folders (see
 * {@link LoadTableOptions}). A table's first line names the columns; empty lines are skipped;
 * a JSONL file holds one JSON object per line. Each record gets the id `<file name>:<line>`
 * (folders: `<class>/<file name>`) and the table's other columns as `extra`.
 *
 * Rejects, naming the file and line, on: an empty file, a missing column (listing those
 * found), a third label value (naming it and the lines of the first two), an empty text or
 * label, a bad split value, invalid UTF-8, a malformed CSV record, a JSONL line that is not a
 * JSON object; and on labels that are not a default pair without `positiveLabel`.
 */
export async function loadTable(options: LoadTableOptions): Promise<TableData> {
  const path = options.source;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(`data source ${path} does not exist`);
  }
  if (options.format === "folders") {
    if (!info.isDirectory) throw new Error(`${path}: format "folders" needs a folder`);
    for (const key of ["textColumn", "labelColumn", "splitColumn"] as const) {
      if (options[key] !== undefined) {
        throw new Error(`${path}: ${key} applies to csv, tsv and jsonl sources, not to folders`);
      }
    }
    return await readFolders(path, options);
  }
  if (info.isDirectory) {
    throw new Error(`${path}: a folder; format "${options.format}" needs a file`);
  }
  const bytes = await Deno.readFile(path);
  const text = decodeUtf8(bytes, path);
  const collector = new RowCollector(path, options);
  if (options.format === "jsonl") readJsonLines(path, text, collector, options);
  else if (options.format === "csv" || options.format === "tsv") {
    if (text.replace(/^\ufeff/, "").trim() === "") {
      throw new Error(
        `${path}, line 1: the file is empty; expected a header line naming the columns`,
      );
    }
    readDelimited(path, bytes, options.format === "csv" ? "," : "\t", collector, options);
  } else {
    throw new Error(`loadTable: unknown format ${String(options.format)}`);
  }
  const { records, labels } = collector.finish(
    options.format === "jsonl" ? "no records" : "no records after the header line",
  );
  return {
    records,
    info: {
      name: options.name ?? basename(path),
      format: options.format,
      source: path,
      labels,
      hasSplit: options.splitColumn !== undefined,
      records: records.length,
    },
  };
}
