/**
 * Labelled text data besides IMDB: CSV, TSV, JSON Lines and class folders made here in
 * temporary folders; an error naming the file and the line for each kind of bad input; the
 * label mapping; the seeded stratified split of data without a split; the config fields;
 * and the whole experiment on a small synthetic CSV.
 */
import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "node:path";
import { shared } from "./_shared.ts";
import {
  describeLabels,
  firstInvalidUtf8,
  inferDataFormat,
  loadDataset,
  loadTable,
  splitReviews,
  type TextRecord,
} from "../lib/data/mod.ts";
import type { LoadTableOptions } from "../lib/data/mod.ts";
import {
  ConfigError,
  configFrom,
  loadSplit,
  reportMarkdown,
  runExperiment,
} from "../lib/experiment/mod.ts";

const darknet = shared("models", "darknet_reference", "model.json");

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_table_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes `content` (text or bytes) to `dir/name` and returns the path. */
async function write(dir: string, name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  if (typeof content === "string") await Deno.writeTextFile(path, content);
  else await Deno.writeFile(path, content);
  return path;
}

/** Asserts that loading rejects with a message holding the path and every `parts`. */
async function assertLoadError(
  options: LoadTableOptions,
  ...parts: string[]
): Promise<void> {
  const error = await assertRejects(() => loadTable(options), Error);
  for (const part of [options.source, ...parts]) {
    assert(error.message.includes(part), `"${part}" missing from: ${error.message}`);
  }
}

const bytes = (...parts: (string | number[])[]) =>
  new Uint8Array(
    parts.flatMap((p) => typeof p === "string" ? [...new TextEncoder().encode(p)] : p),
  );

Deno.test("a quoted CSV field with commas, doubled quotes and newlines parses exactly", async () => {
  await withTempDir(async (dir) => {
    const path = await write(
      dir,
      "quoted.csv",
      "id,text,label\r\n" +
        '7,"Great, truly great.\r\nSaw it twice; ""wow"", I said.\r\n",pos\r\n' +
        "\r\n" +
        "8,plain bad film,neg\r\n" +
        '9,"a ""quoted"" word, then\nan LF inside",pos\r\n',
    );
    const { records, info } = await loadTable({ source: path, format: "csv" });
    assertEquals(records.map((r) => r.text), [
      'Great, truly great.\r\nSaw it twice; "wow", I said.\r\n',
      "plain bad film",
      'a "quoted" word, then\nan LF inside',
    ]);
    assertEquals(records.map((r) => r.label), [1, 0, 1]);
    // The line where each record starts, as an editor shows it (empty lines skipped).
    assertEquals(records.map((r) => r.id), ["quoted.csv:2", "quoted.csv:6", "quoted.csv:7"]);
    assertEquals(records.map((r) => r.extra), [{ id: "7" }, { id: "8" }, { id: "9" }]);
    assert(records.every((r) => r.split === undefined));
    assertEquals(info.name, "quoted.csv");
    assertEquals(info.format, "csv");
    assertEquals(info.hasSplit, false);
    assertEquals(info.labels, { negative: "neg", positive: "pos", rule: "default" });
    assertEquals(describeLabels(info.labels), '0 = "neg", 1 = "pos" (default mapping)');
  });
});

Deno.test("TSV, JSONL and a BOM: columns, fields, splits, labels of several types", async () => {
  await withTempDir(async (dir) => {
    const tsv = await write(
      dir,
      "data.tsv",
      "\ufeffsentence\tpart\ty\n" +
        "good, fine\ttrain\t1\n" +
        '"tab\there"\tTEST\t0\n' +
        "ok\tdev\t1\n",
    );
    const t = await loadTable({
      source: tsv,
      format: "tsv",
      textColumn: "sentence",
      labelColumn: "y",
      splitColumn: "part",
    });
    assertEquals(t.records, [
      { id: "data.tsv:2", text: "good, fine", label: 1, split: "train" },
      { id: "data.tsv:3", text: "tab\there", label: 0, split: "test" },
      { id: "data.tsv:4", text: "ok", label: 1, split: "validation" },
    ]);
    assertEquals(t.info.hasSplit, true);
    assertEquals(t.info.labels.positive, "1");

    const jsonl = await write(
      dir,
      "data.jsonl",
      '{"text": "fine", "label": true, "split": "train", "stars": 5}\n' +
        "\n" +
        '{"text": "bad\\nworse", "label": false, "split": "test"}\r\n',
    );
    const j = await loadTable({ source: jsonl, format: "jsonl", splitColumn: "split" });
    assertEquals(j.records, [
      { id: "data.jsonl:1", text: "fine", label: 1, split: "train", extra: { stars: 5 } },
      { id: "data.jsonl:3", text: "bad\nworse", label: 0, split: "test" },
    ]);
    assertEquals(j.info.labels, { negative: "false", positive: "true", rule: "default" });
    // Numbers and their strings are the same raw value.
    const numbers = await write(dir, "n.jsonl", '{"text":"a","label":1}\n{"text":"b","label":0}');
    const n = await loadTable({ source: numbers, format: "jsonl", positiveLabel: 0 });
    assertEquals(n.records.map((r) => r.label), [0, 1]);
    assertEquals(n.info.labels, { negative: "1", positive: "0", rule: "positiveLabel" });
  });
});

Deno.test("string labels: default pairs in any case, positiveLabel for any other pair", async () => {
  await withTempDir(async (dir) => {
    const upper = await write(dir, "u.csv", "text,label\na,NEGATIVE\nb,Positive\n");
    const u = await loadTable({ source: upper, format: "csv" });
    assertEquals(u.records.map((r) => r.label), [0, 1]);
    assertEquals(u.info.labels, { negative: "NEGATIVE", positive: "Positive", rule: "default" });

    const spam = await write(dir, "spam.csv", "text,label\nbuy now,spam\nhi mum,ham\nwin,spam\n");
    await assertLoadError(
      { source: spam, format: "csv" },
      `"spam" and "ham" are not a known pair`,
      "positiveLabel",
    );
    const s = await loadTable({ source: spam, format: "csv", positiveLabel: "spam" });
    assertEquals(s.records.map((r) => r.label), [1, 0, 1]);
    assertEquals(describeLabels(s.info.labels), '0 = "ham", 1 = "spam" (data.positiveLabel)');
    await assertLoadError(
      { source: spam, format: "csv", positiveLabel: "eggs" },
      `positiveLabel "eggs" is not one of the labels`,
      `"spam" and "ham"`,
    );
  });
});

Deno.test("folders: one sub-folder per class, optionally below split folders", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "sentiment");
    for (const [cls, files] of [["happy", ["b.txt", "a.txt"]], ["sad", ["c.txt"]]] as const) {
      await Deno.mkdir(join(root, cls), { recursive: true });
      for (const f of files) await write(join(root, cls), f, `${cls} ${f}`);
    }
    await write(root, "README", "not a class");
    assertEquals(inferDataFormat(root), "folders");
    await assertLoadError({ source: root, format: "folders" }, "not a known pair");
    const { records, info } = await loadTable({
      source: root,
      format: "folders",
      positiveLabel: "happy",
    });
    assertEquals(records, [
      { id: "happy/a.txt", text: "happy a.txt", label: 1 },
      { id: "happy/b.txt", text: "happy b.txt", label: 1 },
      { id: "sad/c.txt", text: "sad c.txt", label: 0 },
    ]);
    assertEquals([info.name, info.format, info.hasSplit], ["sentiment", "folders", false]);

    const splitRoot = join(dir, "split");
    for (const part of ["train", "test"]) {
      for (const cls of ["neg", "pos"]) {
        await Deno.mkdir(join(splitRoot, part, cls), { recursive: true });
        await write(join(splitRoot, part, cls), "1.txt", `${part} ${cls}`);
      }
    }
    const s = await loadDataset({ source: splitRoot });
    assertEquals(s.info.format, "folders");
    assertEquals(s.records.map((r) => [r.id, r.split, r.label]), [
      ["test/neg/1.txt", "test", 0],
      ["test/pos/1.txt", "test", 1],
      ["train/neg/1.txt", "train", 0],
      ["train/pos/1.txt", "train", 1],
    ]);

    // A third class folder; an empty file; invalid UTF-8 on the file's line 2.
    await Deno.mkdir(join(root, "meh"));
    await write(join(root, "meh"), "x.txt", "so so");
    await assertLoadError(
      { source: root, format: "folders" },
      "meh",
      "third class folder",
      `"happy" and`,
    );
    await Deno.remove(join(root, "meh"), { recursive: true });
    const empty = await write(join(root, "sad"), "d.txt", " \n");
    const folders = { source: root, format: "folders", positiveLabel: "happy" } as const;
    await assertLoadError(folders, empty, "line 1", "empty text");
    await Deno.remove(empty);
    const bad = await write(join(root, "sad"), "e.txt", bytes("fine\nbad ", [0xff], "!"));
    await assertLoadError(folders, bad, "line 2", "invalid UTF-8");
  });
});

Deno.test("bad input: each problem is an error naming the file and the line", async () => {
  await withTempDir(async (dir) => {
    const csv = (name: string, content: string | Uint8Array) => write(dir, name, content);
    const load = (source: string, more: Partial<LoadTableOptions> = {}) => ({
      source,
      format: source.endsWith(".jsonl") ? "jsonl" as const : "csv" as const,
      ...more,
    });
    // An empty file, a blank one, a header without records.
    await assertLoadError(load(await csv("empty.csv", "")), "line 1", "the file is empty");
    await assertLoadError(load(await csv("blank.csv", "\n \n")), "line 1", "the file is empty");
    await assertLoadError(
      load(await csv("header.csv", "text,label\n")),
      "no records after the header",
    );
    await assertLoadError(load(await csv("empty.jsonl", "\n")), "line 1", "the file is empty");
    // A missing column: the columns found are listed and the field to set is named.
    await assertLoadError(
      load(await csv("columns.csv", "review,sentiment\nfine,pos\n")),
      "line 1",
      `no column "text"`,
      `"review", "sentiment"`,
      "data.textColumn",
    );
    await assertLoadError(
      load(await csv("split.csv", "text,label\nfine,pos\n"), { splitColumn: "fold" }),
      `no column "fold"`,
      "data.splitColumn",
    );
    // A third label value, named with its line and the lines of the first two.
    await assertLoadError(
      load(await csv("third.csv", "text,label\na,pos\nb,neg\n\nc,pos\nd,neutral\n")),
      "line 6",
      `third label value "neutral"`,
      `"pos" (line 2) and "neg" (line 3)`,
    );
    // One label only.
    await assertLoadError(load(await csv("one.csv", "text,label\na,pos\nb,pos\n")), "two classes");
    // An empty text (after a multi-line quoted record: the line is still the editor's).
    await assertLoadError(
      load(await csv("text.csv", 'text,label\n"multi\nline",pos\n  ,neg\n')),
      "line 4",
      "empty text",
      `column "text"`,
    );
    await assertLoadError(
      load(await csv("label.csv", "text,label\na,\n")),
      "line 2",
      "empty label",
    );
    // Invalid UTF-8 on line 3: a lone continuation byte, then a truncated sequence.
    await assertLoadError(
      load(await csv("utf8.csv", bytes("text,label\na,pos\nb", [0x80], ",neg\n"))),
      "line 3",
      "invalid UTF-8",
    );
    await assertLoadError(
      load(await csv("utf8b.csv", bytes("text,label\na,pos\n\nb,neg\nc", [0xe2, 0x82], ",neg\n"))),
      "line 5",
      "invalid UTF-8",
    );
    // Malformed CSV: a quote never closed (reported where its record starts), a record with
    // too many fields.
    await assertLoadError(
      load(await csv("quote.csv", 'text,label\na,pos\n"never closed,neg\nb,pos\n')),
      "line 3",
      "malformed record",
    );
    await assertLoadError(
      load(await csv("fields.csv", "text,label\na,pos\nb,neg,extra\n")),
      "line 3",
      "malformed record",
    );
    // A bad split value.
    await assertLoadError(
      load(await csv("part.csv", "text,label,part\na,pos,train\nb,neg,holdout\n"), {
        splitColumn: "part",
      }),
      "line 3",
      `"holdout"`,
      "train, validation or test",
    );
    // JSONL: a line that is not JSON, not an object, a missing field, a text not a string.
    await assertLoadError(
      load(await csv("bad.jsonl", '{"text":"a","label":1}\n{"text": "b", "label": 0,}\n')),
      "line 2",
      "not valid JSON",
    );
    await assertLoadError(
      load(await csv("array.jsonl", '{"text":"a","label":1}\n\n[1, 2]\n')),
      "line 3",
      "expected a JSON object",
    );
    await assertLoadError(
      load(await csv("field.jsonl", '{"text":"a","label":1}\n{"body":"b","label":0}\n')),
      "line 2",
      `no field "text"`,
      `"body", "label"`,
    );
    await assertLoadError(
      load(await csv("type.jsonl", '{"text":"a","label":1}\n{"text":7,"label":0}\n')),
      "line 2",
      "not a string",
    );
    await assertLoadError(
      load(await csv("null.jsonl", '{"text":"a","label":1}\n{"text":"b","label":null}\n')),
      "line 2",
      "label",
      "null",
    );
    // A source that does not exist.
    await assertRejects(
      () => loadTable(load(join(dir, "missing.csv"))),
      Error,
      "does not exist",
    );
  });
});

Deno.test("firstInvalidUtf8 finds the first bad byte (overlong, surrogate, truncated)", () => {
  assertEquals(firstInvalidUtf8(bytes("héllo ✓ 😀")), -1);
  assertEquals(firstInvalidUtf8(bytes("ab", [0xc0, 0xaf])), 2); // overlong "/"
  assertEquals(firstInvalidUtf8(bytes("a", [0xed, 0xa0, 0x80])), 1); // a surrogate
  assertEquals(firstInvalidUtf8(bytes("abc", [0xf0, 0x9f, 0x98])), 3); // truncated
  assertEquals(firstInvalidUtf8(bytes([0xf4, 0x90, 0x80, 0x80])), 0); // > U+10FFFF
});

Deno.test("inferDataFormat: extensions, class folders, aclImdb folders, archives, URLs", async () => {
  await withTempDir(async (dir) => {
    assertEquals(inferDataFormat(undefined), "imdb");
    assertEquals(inferDataFormat("https://example.org/x.csv"), "imdb");
    assertEquals(inferDataFormat("a/b.CSV"), "csv");
    assertEquals(inferDataFormat("b.tsv"), "tsv");
    assertEquals(inferDataFormat("b.tab"), "tsv");
    assertEquals(inferDataFormat("b.jsonl"), "jsonl");
    assertEquals(inferDataFormat("b.ndjson"), "jsonl");
    assertEquals(inferDataFormat("aclImdb_v1.tar.gz"), "imdb");
    const imdb = join(dir, "imdb");
    await Deno.mkdir(join(imdb, "train", "pos"), { recursive: true });
    await write(join(imdb, "train", "pos"), "0_9.txt", "x");
    assertEquals(inferDataFormat(imdb), "imdb");
    await Deno.mkdir(join(dir, "wrapped", "aclImdb"), { recursive: true });
    assertEquals(inferDataFormat(join(dir, "wrapped")), "imdb");
    await Deno.mkdir(join(dir, "classes", "yes"), { recursive: true });
    assertEquals(inferDataFormat(join(dir, "classes")), "folders");
  });
});

/** `n` records per label (`pos`, `neg`), no split. */
function unsplit(n: { pos: number; neg: number }): TextRecord[] {
  const out: TextRecord[] = [];
  for (const [name, count] of Object.entries(n)) {
    for (let i = 0; i < count; i++) {
      out.push({ id: `${name}-${i}`, text: `${name} ${i}`, label: name === "pos" ? 1 : 0 });
    }
  }
  return out;
}

Deno.test("data without a split: seeded, stratified, disjoint train / validation / test", () => {
  const records = unsplit({ pos: 70, neg: 51 });
  const ids = (rs: TextRecord[]) => rs.map((r) => r.id);
  const positives = (rs: TextRecord[]) => rs.filter((r) => r.label === 1).length;
  const cases = [
    { options: {}, sizes: [87, 10, 24] }, // test 20 % of 121; 10 % of the rest for validation
    { options: { testSize: 30, trainSize: 50, validationFraction: 0.2 }, sizes: [50, 10, 30] },
    { options: { testFraction: 0.5, validationFraction: 0 }, sizes: [60, 0, 61] },
  ];
  for (const { options, sizes } of cases) {
    const s = splitReviews(records, { scheme: "standard", seed: 3, ...options });
    assertEquals([s.train.length, s.validation.length, s.test.length], sizes);
    const all = [...ids(s.train), ...ids(s.validation), ...ids(s.test)];
    assertEquals(new Set(all).size, all.length, "disjoint");
    // Stratified: each part's positives within 1 of its share of the 70 / 121.
    for (const part of [s.train, s.validation, s.test]) {
      const expected = (part.length * 70) / 121;
      assert(Math.abs(positives(part) - expected) <= 1, `${positives(part)} vs ${expected}`);
    }
    // Deterministic for a seed, different for another.
    assertEquals(splitReviews(records, { scheme: "standard", seed: 3, ...options }), s);
    assertNotEquals(
      ids(splitReviews(records, { scheme: "standard", seed: 4, ...options }).test),
      ids(s.test),
    );
  }
  assertThrows(
    () => splitReviews(records, { scheme: "standard", testSize: 122 }),
    Error,
    "larger than the 121 records",
  );
  assertThrows(
    () => splitReviews(records, { scheme: "standard", testFraction: 1 }),
    Error,
    "testFraction",
  );
  // Some records with a split and some without: an error.
  const mixed = [
    ...records.slice(0, 3).map((r) => ({ ...r, split: "train" as const })),
    records[3],
  ];
  assertThrows(() => splitReviews(mixed, { scheme: "standard" }), Error, "have no split");
});

Deno.test("a validation split in the data is the validation pool", () => {
  const parts = (["train", "validation", "test"] as const).flatMap((split, k) =>
    unsplit({ pos: 20 * (k + 1), neg: 20 * (k + 1) }).map((r) => ({
      ...r,
      id: `${split}/${r.id}`,
      split,
    }))
  );
  const all = splitReviews(parts, { scheme: "standard", seed: 1 });
  assertEquals([all.train.length, all.validation.length, all.test.length], [40, 80, 120]);
  assert(all.validation.every((r) => r.split === "validation"));
  const some = splitReviews(parts, {
    scheme: "standard",
    seed: 1,
    trainSize: 30,
    validationFraction: 0.5,
    testSize: 50,
  });
  assertEquals([some.train.length, some.validation.length, some.test.length], [30, 15, 50]);
  assert(some.test.every((r) => r.split === "test"));
  const positives = some.validation.filter((r) => r.label === 1).length;
  assert(positives === 7 || positives === 8, `${positives} of 15 positive`);
});

Deno.test("config: data fields validated; table fields with IMDB or folders are errors", async () => {
  const base = { schemaVersion: 2, name: "t" };
  const problems = (data: Record<string, unknown>) => {
    try {
      configFrom({ ...base, data });
      return [];
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.problems;
    }
  };
  const has = (list: string[], ...parts: string[]) =>
    assert(list.some((p) => parts.every((x) => p.includes(x))), list.join("\n"));
  has(problems({ textColumn: "review" }), "data.textColumn", "only", "imdb");
  has(problems({ source: "x.tar.gz", positiveLabel: "pos" }), "data.positiveLabel", "imdb");
  has(problems({ source: "x.csv", format: "imdb", labelColumn: "y" }), "data.labelColumn");
  has(problems({ format: "xml" }), "data.format");
  has(problems({ source: "x.csv", textColumn: "" }), "data.textColumn");
  has(problems({ source: "x.csv", positiveLabel: [1] }), "data.positiveLabel");
  assertEquals(
    problems({ source: "x.csv", textColumn: "review", positiveLabel: 1, splitColumn: "s" }),
    [],
  );
  assertEquals(problems({ source: "x.jsonl", positiveLabel: true, name: "tweets" }), []);
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "c", "a"), { recursive: true });
    has(problems({ source: join(dir, "c"), textColumn: "t" }), "data.textColumn", "folders");
    assertEquals(problems({ source: join(dir, "c"), positiveLabel: "a" }), []);
  });
  // An IMDB config resolves as before: no new data fields.
  assertEquals(Object.keys(configFrom(base).data), [
    "source",
    "breaks",
    "scheme",
    "trainSize",
    "testSize",
    "validationFraction",
    "seed",
  ]);
  const csv = configFrom({ ...base, data: { source: "x.csv", labelColumn: "y" } });
  assertEquals(csv.data.labelColumn, "y");
  assertEquals(csv.data.textColumn, undefined);
});

/** 120 short synthetic reviews with sentiment words, one in ten with a comma and a newline. */
function syntheticCsv(): string {
  const good = ["great", "wonderful", "superb", "delightful", "brilliant", "moving"];
  const bad = ["awful", "boring", "dreadful", "tedious", "terrible", "clumsy"];
  const things = ["plot", "acting", "score", "script", "ending", "cast", "pacing", "dialogue"];
  const lines = ["review,sentiment,source"];
  for (let i = 0; i < 120; i++) {
    const positive = i % 2 === 0;
    const words = positive ? good : bad;
    let text = `The ${things[i % 8]} was ${words[i % 6]} and the ${things[(i + 3) % 8]} ` +
      `${words[(i + 1) % 6]} (review ${i}).`;
    if (i % 10 === 0) text = `"${text}\nReally, ""${words[(i + 2) % 6]}""."`;
    lines.push(`${text},${positive ? "positive" : "negative"},site ${i % 3}`);
  }
  return lines.join("\n") + "\n";
}

Deno.test("loadSplit on a CSV config: stratified parts of the configured sizes, mapping logged", async () => {
  await withTempDir(async (dir) => {
    const source = await write(dir, "reviews.csv", syntheticCsv());
    const cfg = configFrom({
      schemaVersion: 2,
      name: "csv",
      data: {
        source,
        textColumn: "review",
        labelColumn: "sentiment",
        trainSize: 60,
        testSize: 40,
        validationFraction: 0.25,
      },
      cacheDir: join(dir, "cache"),
    });
    const lines: string[] = [];
    const split = await loadSplit(cfg, () => {}, (l) => lines.push(l));
    assertEquals([split.train.length, split.validation.length, split.test.length], [60, 15, 40]);
    assertEquals(split.test.filter((r) => r.label === 1).length, 20);
    assertEquals(split.dataset?.labels, {
      negative: "negative",
      positive: "positive",
      rule: "default",
    });
    assert(
      lines.some((l) =>
        l.includes("reviews.csv (csv, 120 records") &&
        l.includes('0 = "negative", 1 = "positive" (default mapping)')
      ),
      lines.join("\n"),
    );
    // The default sizes (5,000 / 5,000) do not fit 120 records: the error says what to set.
    const defaults = configFrom({
      schemaVersion: 2,
      name: "d",
      data: { source, textColumn: "review", labelColumn: "sentiment" },
    });
    await assertRejects(
      () => loadSplit(defaults),
      Error,
      "testSize 5000 is larger than the 120 records available; set data.trainSize, data.testSize",
    );
    const texts = split.test.map((r) => r.text);
    const multi = [...split.train, ...split.validation, ...split.test].filter((r) =>
      r.text.includes("\n")
    );
    assertEquals(multi.length, 12);
    assert(multi.every((r) => /^The .*\(review \d+\)\.\nReally, "\w+"\.$/.test(r.text)));
    assertEquals(new Set(texts).size, 40);
  });
});

Deno.test({
  name: "runExperiment on a synthetic CSV: metrics on the test rows, label mapping in the results",
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "data_table_e2e_" });
    const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
    Deno.env.set("TEXT_AS_IMAGE_DATA", root);
    try {
      const source = await write(root, "reviews.csv", syntheticCsv());
      const backbones = darknet.ignore ? [] : ["darknet_reference"];
      const cfg = configFrom({
        schemaVersion: 2,
        name: "csv-e2e",
        data: {
          source,
          textColumn: "review",
          labelColumn: "sentiment",
          trainSize: 60,
          testSize: 40,
          validationFraction: 0.25,
        },
        embedding: { encoder: "use-lite" },
        image: { pixels: 12, tsne: { perplexity: 4, nIter: 300 } },
        models: { backbones, training: { epochs: 1 }, workers: 1 },
        seeds: [1],
        baselines: { logistic: { l2: [1] }, mlp: false },
        ablations: { permutedPixels: false, randomBackbone: false },
        cacheDir: join(root, "cache"),
      });
      const lines: string[] = [];
      const results = await runExperiment(cfg, { log: (l) => lines.push(l) });
      const v = results.variants[0];
      assertEquals(v.data, {
        scheme: "standard",
        train: 60,
        validation: 15,
        test: 40,
        testPositives: 20,
        name: "reviews.csv",
        labels: { negative: "negative", positive: "positive" },
      });
      assertEquals(v.models.map((m) => m.id), ["logistic-regression", ...backbones]);
      for (const m of v.models) {
        for (const r of m.runs) {
          assertEquals(r.metrics.test.n, 40);
          const c = r.metrics.test.confusion;
          assertEquals(c.tp + c.fn, 20);
          assertEquals(c.tp + c.fn + c.tn + c.fp, 40);
          assertEquals(r.metrics.validation?.n, 15);
        }
      }
      // The sentiment words separate the classes: logistic regression on USE-lite gets most.
      const logistic = v.models.find((m) => m.id === "logistic-regression")!;
      assert(logistic.test.accuracy.mean > 0.8, `accuracy ${logistic.test.accuracy.mean}`);
      assert(
        lines.some((l) => l.includes('labels 0 = "negative", 1 = "positive"')),
        lines.join("\n"),
      );
      const report = reportMarkdown(results, "test", []);
      assert(
        report.includes(
          "- Data: reviews.csv, standard split: 60 train / 15 validation / 40 test reviews " +
            '(20 test positives); labels: 0 = "negative", 1 = "positive".',
        ),
        report,
      );
      assert(!JSON.stringify(results).includes(root), "no machine path in the results");
    } finally {
      if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
      else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
      await Deno.remove(root, { recursive: true });
    }
  },
});
