/**
 * loadImdb and the splits on the real dataset (the shared labelled-only archive), checked
 * against the dataset's documented layout and an independent reader (Python's tarfile).
 */
import { assert, assertEquals } from "@std/assert";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  labelsOf,
  loadImdb,
  type Review,
  splitReviews,
  stratifiedSample,
} from "../lib/data/mod.ts";
import { shared } from "./_shared.ts";

const archive = shared("data", "aclImdb_v1-labelled.tar.gz");
const ignore = archive.ignore;
const python = "/usr/bin/python3";

let loaded: Promise<Review[]> | undefined;
/** The 50,000 reviews, loaded once for this file. */
function reviews(): Promise<Review[]> {
  loaded ??= loadImdb({ source: archive.path });
  return loaded;
}

const key = (r: Review) => `${r.split}/${r.label}/${r.id}`;

Deno.test({
  name: "shared archive: 12,500 reviews in each of train/pos, train/neg, test/pos, test/neg",
  ignore,
  fn: async () => {
    const all = await reviews();
    assertEquals(all.length, 50_000);
    const counts: Record<string, number> = {};
    for (const r of all) {
      const folder = `${r.split}/${r.label ? "pos" : "neg"}`;
      counts[folder] = (counts[folder] ?? 0) + 1;
    }
    assertEquals(counts, {
      "train/pos": 12_500,
      "train/neg": 12_500,
      "test/pos": 12_500,
      "test/neg": 12_500,
    });
    // Documented by the dataset's README: ids 0..12499 in each folder, ratings 1–4 / 7–10.
    for (const split of ["train", "test"]) {
      for (const label of [0, 1]) {
        const ids = all.filter((r) => r.split === split && r.label === label).map((r) => r.id);
        assertEquals(ids, Array.from({ length: 12_500 }, (_, i) => i), `${split}/${label}`);
      }
    }
    for (const r of all) {
      assert(r.label ? r.rating >= 7 && r.rating <= 10 : r.rating >= 1 && r.rating <= 4);
    }
  },
});

Deno.test({
  name: "shared archive: train/pos/0_9.txt is found with rating 9, raw text keeps <br />",
  ignore,
  fn: async () => {
    const all = await reviews();
    const first = all.find((r) => r.split === "train" && r.label === 1 && r.id === 0);
    assertEquals(first?.rating, 9);
    assert(first!.text.startsWith("Bromwell High is a cartoon comedy."), first!.text);
    const withBreaks = all.filter((r) => r.text.includes("<br />")).length;
    assert(withBreaks > 20_000, `only ${withBreaks} reviews contain <br />`);
  },
});

Deno.test({
  name: "shared archive: same records and bytes as Python's tarfile reads",
  ignore: ignore || !existsSync(python),
  fn: async () => {
    const script = fileURLToPath(new URL("../bench/data_reference.py", import.meta.url));
    const output = await new Deno.Command(python, { args: [script, archive.path] }).output();
    assert(output.success, new TextDecoder().decode(output.stderr));
    const { count, sha256 } = JSON.parse(new TextDecoder().decode(output.stdout));
    // Same digest definition as the script: records in canonical order, each as
    // "split/label/id/rating\n" followed by the file's UTF-8 bytes.
    const hash = createHash("sha256");
    const encoder = new TextEncoder();
    const all = await reviews();
    for (const r of all) {
      hash.update(`${r.split}/${r.label ? "pos" : "neg"}/${r.id}/${r.rating}\n`);
      hash.update(encoder.encode(r.text));
    }
    assertEquals({ count: all.length, sha256: hash.digest("hex") }, { count, sha256 });
  },
});

Deno.test({
  name: "shared archive: breaks 'space' removes every <br /> and changes nothing else",
  ignore,
  fn: async () => {
    const raw = await reviews();
    const spaced = await loadImdb({ source: archive.path, breaks: "space" });
    assertEquals(spaced.length, raw.length);
    for (let i = 0; i < raw.length; i++) {
      assertEquals(key(spaced[i]), key(raw[i]));
      assertEquals(spaced[i].text, raw[i].text.replace(/<br\s*\/?>/gi, " "));
    }
  },
});

Deno.test({
  name: "shared archive: 2,000 / 2,000 subsamples are stratified, deterministic, disjoint",
  ignore,
  fn: async () => {
    const all = await reviews();
    const options = { scheme: "standard" as const, trainSize: 2000, testSize: 2000 };
    const a = splitReviews(all, options);
    const b = splitReviews(all, options);
    assertEquals(a.train.map(key), b.train.map(key));
    assertEquals(a.validation.map(key), b.validation.map(key));
    assertEquals(a.test.map(key), b.test.map(key));
    const ones = (rs: Review[]) => labelsOf(rs).reduce((s, y) => s + y, 0);
    assertEquals([a.train.length, a.validation.length, a.test.length], [2000, 200, 2000]);
    assertEquals([ones(a.train), ones(a.validation), ones(a.test)], [1000, 100, 1000]);
    const keys = [...a.train, ...a.validation, ...a.test].map(key);
    assertEquals(new Set(keys).size, keys.length, "train, validation and test are disjoint");
    assert(a.train.every((r) => r.split === "train") && a.test.every((r) => r.split === "test"));
    const sample = stratifiedSample(all, 1000, 5);
    assertEquals(ones(sample), 500);
    assertEquals(stratifiedSample(all, 1000, 5).map(key), sample.map(key));
  },
});

Deno.test({
  name: "shared archive: the paper split is 40,000 / 10,000, balanced, and covers all reviews",
  ignore,
  fn: async () => {
    const all = await reviews();
    const { train, validation, test } = splitReviews(all, { scheme: "paper", seed: 42 });
    assertEquals([train.length, validation.length, test.length], [40_000, 0, 10_000]);
    const ones = (rs: Review[]) => labelsOf(rs).reduce((s, y) => s + y, 0);
    assertEquals([ones(train), ones(test)], [20_000, 5_000]);
    const keys = new Set([...train, ...test].map(key));
    assertEquals(keys.size, 50_000);
    const fromTestHalf = test.filter((r) => r.split === "test").length;
    assert(fromTestHalf > 4_500 && fromTestHalf < 5_500, `${fromTestHalf} from the test half`);
  },
});
