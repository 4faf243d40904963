import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import {
  describeOrigin,
  type Maker,
  makerPath,
  mergeOrigins,
  originOf,
  readMaker,
  writeMaker,
} from "../lib/provenance.ts";
import { type EmbeddingKey, EmbeddingStore, hashTexts } from "../lib/embed/mod.ts";

const a: Maker = { run: "a", at: "2026-11-30T10:00:00.000Z", code: "c1" };
const b: Maker = { run: "b", at: "2026-11-29T09:30:00.000Z", code: "c0" };

Deno.test("originOf: parts of this call count as computed, the rest grouped by maker", () => {
  const o = originOf([
    { maker: a, units: 256 },
    { maker: b, units: 256 },
    { maker: undefined, units: 10 },
    { maker: { ...b }, units: 100 },
    { maker: { ...a }, units: 44 },
  ], a);
  assertEquals(o, {
    computed: 300,
    cached: [{ maker: b, units: 356 }, { maker: null, units: 10 }],
  });
  // Another call of the same run (other start time) is another maker.
  assertEquals(
    originOf([{ maker: { ...a, at: "2026-12-01T00:00:00Z" }, units: 1 }], a).computed,
    0,
  );
  const merged = mergeOrigins([o, { computed: 5, cached: [{ maker: b, units: 4 }] }]);
  assertEquals(merged, {
    computed: 305,
    cached: [{ maker: b, units: 360 }, { maker: null, units: 10 }],
  });
  const text = describeOrigin(merged, "texts");
  assertStringIncludes(text, "305 texts computed by this call");
  assertStringIncludes(
    text,
    "360 texts read from the cache made by run b (2026-11-29 09:30Z, code c0)",
  );
  assertStringIncludes(
    text,
    "10 texts read from the cache made by an earlier call (maker not recorded",
  );
  assertEquals(describeOrigin({ computed: 7, cached: [] }, "rows"), "computed by this call");
});

Deno.test("maker records: written beside the file, a damaged one reads as unrecorded", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "layout.json");
    await Deno.writeTextFile(file, "{}");
    assertEquals(await readMaker(file), undefined);
    await writeMaker(file, a);
    assertEquals(await readMaker(file), a);
    await Deno.writeTextFile(makerPath(file), '{"run": 3');
    assertEquals(await readMaker(file), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embedding store: each chunk records the call that wrote it; a rewrite replaces it", async () => {
  const root = await Deno.makeTempDir();
  try {
    const key: EmbeddingKey = {
      encoderId: "test-encoder",
      modelHash: "0".repeat(64),
      layers: [0],
      pooling: "cls",
      maxTokens: 8,
      overflow: "truncate",
      count: 5,
      textsHash: hashTexts(["1", "2", "3", "4", "5"]),
    };
    const store = await EmbeddingStore.open(key, 2, { root, chunkSize: 2, log: () => {} });
    await store.writeChunk(0, new Float32Array(4), a);
    await store.writeChunk(1, new Float32Array(4));
    await store.writeChunk(2, new Float32Array(2), b);
    assertEquals(await store.chunkMakers(), [
      { maker: a, units: 2 },
      { maker: undefined, units: 2 },
      { maker: b, units: 1 },
    ]);
    // Rewritten by a call without a maker: the old record must not survive.
    await store.writeChunk(0, new Float32Array(4));
    assertEquals((await store.chunkMakers())[0].maker, undefined);
    assert(!(await Deno.stat(makerPath(store.chunkPath(0))).catch(() => null)));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
