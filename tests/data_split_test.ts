/** splitReviews / stratifiedSample / labelsOf on synthetic reviews: properties, by hand. */
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { labelsOf, type Review, splitReviews, stratifiedSample, textsOf } from "../lib/data/mod.ts";

/** `pos` positive and `neg` negative reviews of each official half, ids 0.. per folder. */
function makeReviews(perHalf: { pos: number; neg: number }): Review[] {
  const out: Review[] = [];
  for (const split of ["train", "test"] as const) {
    for (const [folder, count] of Object.entries(perHalf)) {
      const label = folder === "pos" ? 1 : 0;
      for (let id = 0; id < count; id++) {
        out.push({ split, id, rating: label ? 8 : 2, label, text: `${split} ${folder} ${id}` });
      }
    }
  }
  return out;
}

const key = (r: Review) => `${r.split}/${r.label}/${r.id}`;
const positives = (rs: Review[]) => rs.filter((r) => r.label === 1).length;

function assertDisjoint(...parts: Review[][]): void {
  const seen = new Set<string>();
  for (const part of parts) {
    for (const r of part) {
      assert(!seen.has(key(r)), `review ${key(r)} is in two parts`);
      seen.add(key(r));
    }
  }
}

Deno.test("standard scheme: official halves, 10 % validation, stratified, disjoint", () => {
  const reviews = makeReviews({ pos: 500, neg: 500 });
  const s = splitReviews(reviews, { scheme: "standard" });
  assertEquals([s.train.length, s.validation.length, s.test.length], [900, 100, 1000]);
  assert(s.train.every((r) => r.split === "train"));
  assert(s.validation.every((r) => r.split === "train"));
  assert(s.test.every((r) => r.split === "test"));
  assertEquals([positives(s.train), positives(s.validation), positives(s.test)], [450, 50, 500]);
  assertDisjoint(s.train, s.validation, s.test);
});

Deno.test("standard scheme with sizes: exact sizes, exact label shares, disjoint", () => {
  const reviews = makeReviews({ pos: 600, neg: 400 });
  const s = splitReviews(reviews, { scheme: "standard", trainSize: 200, testSize: 150 });
  assertEquals([s.train.length, s.validation.length, s.test.length], [200, 20, 150]);
  // 60 % positive in every part (150 × 0.6 = 90).
  assertEquals([positives(s.train), positives(s.validation), positives(s.test)], [120, 12, 90]);
  assertDisjoint(s.train, s.validation, s.test);
  const none = splitReviews(reviews, {
    scheme: "standard",
    trainSize: 200,
    validationFraction: 0,
  });
  assertEquals(none.validation, []);
  assertEquals(none.test.length, 1000);
});

Deno.test("splits are identical on every run with the same seed and differ across seeds", () => {
  const reviews = makeReviews({ pos: 300, neg: 300 });
  const options = { scheme: "standard" as const, trainSize: 100, testSize: 100, seed: 7 };
  const a = splitReviews(reviews, options);
  const b = splitReviews(structuredClone(reviews), options);
  assertEquals(a.train.map(key), b.train.map(key));
  assertEquals(a.validation.map(key), b.validation.map(key));
  assertEquals(a.test.map(key), b.test.map(key));
  const c = splitReviews(reviews, { ...options, seed: 8 });
  assertNotEquals(a.train.map(key).sort(), c.train.map(key).sort());
  // The default seed is 42.
  const d = splitReviews(reviews, { scheme: "standard", trainSize: 100, testSize: 100 });
  const e = splitReviews(reviews, { scheme: "standard", trainSize: 100, testSize: 100, seed: 42 });
  assertEquals(d.train.map(key), e.train.map(key));
});

Deno.test("the test subsample does not depend on the train size", () => {
  const reviews = makeReviews({ pos: 200, neg: 200 });
  const a = splitReviews(reviews, { scheme: "standard", trainSize: 50, testSize: 60 });
  const b = splitReviews(reviews, { scheme: "standard", trainSize: 120, testSize: 60 });
  assertEquals(a.test.map(key), b.test.map(key));
});

Deno.test("parts come in a shuffled order, not grouped by label", () => {
  const reviews = makeReviews({ pos: 200, neg: 200 });
  const { train } = splitReviews(reviews, { scheme: "standard", trainSize: 100 });
  const labels = labelsOf(train);
  let changes = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] !== labels[i - 1]) changes++;
  // Sorted by label there would be 1 change; a random order of 50/50 has about 50.
  assert(changes > 20, `only ${changes} label changes`);
});

Deno.test("paper scheme: all reviews pooled, 80 % / 20 %, stratified, no validation", () => {
  const reviews = makeReviews({ pos: 250, neg: 250 }); // 1,000 reviews
  const s = splitReviews(reviews, { scheme: "paper" });
  assertEquals([s.train.length, s.validation.length, s.test.length], [800, 0, 200]);
  assertEquals([positives(s.train), positives(s.test)], [400, 100]);
  assertDisjoint(s.train, s.test);
  const halves = new Set(s.test.map((r) => r.split));
  assertEquals(halves.size, 2, "the paper's test set mixes both official halves");
  const small = splitReviews(reviews, { scheme: "paper", trainSize: 300, testSize: 100 });
  assertEquals([small.train.length, small.test.length], [300, 100]);
  assertDisjoint(small.train, small.test);
  const onlyTrain = splitReviews(reviews, { scheme: "paper", trainSize: 900 });
  assertEquals(onlyTrain.test.length, 100);
});

Deno.test("stratifiedSample: size, label shares with rounding that adds up, determinism", () => {
  const reviews = makeReviews({ pos: 70, neg: 30 }).filter((r) => r.split === "train");
  const sample = stratifiedSample(reviews, 11, 3);
  assertEquals(sample.length, 11);
  // 11 × 0.7 = 7.7 → 8 positive, 11 × 0.3 = 3.3 → 3 negative.
  assertEquals(positives(sample), 8);
  assertEquals(new Set(sample.map(key)).size, 11);
  assertEquals(stratifiedSample(reviews, 11, 3), sample);
  assertEquals(stratifiedSample(reviews, 100, 3).map(key).sort(), reviews.map(key).sort());
  assertEquals(stratifiedSample(reviews, 0, 3), []);
  // Over many seeds, every review is drawn about equally often (uniform within labels).
  const counts = new Map<string, number>();
  for (let seed = 0; seed < 400; seed++) {
    for (const r of stratifiedSample(reviews, 10, seed)) {
      counts.set(key(r), (counts.get(key(r)) ?? 0) + 1);
    }
  }
  // Each positive is drawn with probability 7/70, each negative 3/30: 40 times expected.
  for (const r of reviews) {
    const c = counts.get(key(r)) ?? 0;
    assert(c > 15 && c < 70, `${key(r)} drawn ${c} times, expected about 40`);
  }
});

Deno.test("sizes that do not fit and bad options are rejected with a clear message", () => {
  const reviews = makeReviews({ pos: 50, neg: 50 });
  assertThrows(() => stratifiedSample(reviews, 201, 1), Error, "larger than the 200");
  assertThrows(() => stratifiedSample(reviews, -1, 1), Error, "non-negative integer");
  assertThrows(
    () => splitReviews(reviews, { scheme: "standard", trainSize: 95 }),
    Error,
    "trainSize + validation (95 + 10)",
  );
  assertThrows(() => splitReviews(reviews, { scheme: "standard", testSize: 101 }), Error);
  assertThrows(
    () => splitReviews(reviews, { scheme: "standard", validationFraction: 1 }),
    Error,
    "validationFraction",
  );
  assertThrows(
    () => splitReviews(reviews, { scheme: "paper", validationFraction: 0.1 }),
    Error,
    "standard scheme only",
  );
  assertThrows(
    () => splitReviews(reviews, { scheme: "paper", trainSize: 150, testSize: 60 }),
    Error,
    "larger than the 200",
  );
  assertThrows(
    () => splitReviews(reviews.filter((r) => r.split === "train"), { scheme: "standard" }),
    Error,
    "both official halves",
  );
  assertThrows(
    () => splitReviews(reviews, { scheme: "random" as "paper" }),
    Error,
    "Unknown split scheme",
  );
});

Deno.test("labelsOf and textsOf follow the order of the reviews", () => {
  const reviews = makeReviews({ pos: 2, neg: 1 }).filter((r) => r.split === "test");
  assertEquals(labelsOf(reviews), new Uint8Array([1, 1, 0]));
  assertEquals(textsOf(reviews), ["test pos 0", "test pos 1", "test neg 0"]);
  assertEquals(labelsOf([]), new Uint8Array(0));
});
