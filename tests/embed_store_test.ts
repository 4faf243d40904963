/**
 * The resumable embedding store: caching, keys, reading back, errors, a real run killed
 * with SIGKILL and resumed, damaged and stale stores, and two processes filling one store.
 *
 * Run as a program (`deno run -A tests/embed_store_test.ts child ROOT N CHUNK`), this file is
 * the child process that the kill test starts.
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertLess,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  EMBEDDING_STAGE_VERSION,
  EmbeddingStore,
  embedTexts,
  hashTexts,
} from "../lib/embed/store.ts";
import { CorruptCacheError } from "../lib/integrity.ts";
import {
  checkFiniteRows,
  checkTexts,
  type EncodeOptions,
  resolveEncodeOptions,
  type TextEncoderModel,
} from "../lib/embed/types.ts";
import type { Matrix } from "../lib/types.ts";

/** Value `h` of layer `layer` for `text`: a hash, so rows are independent and checkable. */
function fakeValue(text: string, layer: number, h: number): number {
  const digest = createHash("sha256").update(`${text}|${layer}|${h}`).digest();
  return digest.readInt32LE(0) / 2 ** 31;
}

/** A deterministic stand-in encoder that counts the texts it encodes. */
export class FakeEncoder implements TextEncoderModel {
  readonly id = "fake:hash-encoder";
  readonly modelHash = "0".repeat(64);
  readonly numLayers = 4;
  readonly hiddenSize = 6;
  readonly availableLayers = [0, 1, 2, 3, 4];
  readonly maxTokensLimit = 64;
  readonly defaults = { layers: [1, 2], pooling: "cls" as const, maxTokens: 64, batchSize: 4 };
  encoded = 0;
  constructor(readonly delayMs = 0, readonly nanFor?: string) {}

  async encode(texts: readonly string[], options: EncodeOptions = {}): Promise<Matrix> {
    const o = resolveEncodeOptions(this, options);
    checkTexts(texts);
    const cols = o.layers.length * this.hiddenSize;
    const data = new Float32Array(texts.length * cols);
    for (let start = 0; start < texts.length; start += o.batchSize) {
      const end = Math.min(texts.length, start + o.batchSize);
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      for (let i = start; i < end; i++) {
        o.layers.forEach((layer, l) => {
          for (let h = 0; h < this.hiddenSize; h++) {
            data[i * cols + l * this.hiddenSize + h] = texts[i] === this.nanFor
              ? NaN
              : fakeValue(texts[i], layer, h) + (o.pooling === "mean" ? 1 : 0);
          }
        });
      }
      this.encoded += end - start;
      options.onProgress?.({ done: end, total: texts.length });
    }
    // No NaN check here: the store's own check is under test.
    return { data, shape: [texts.length, cols] };
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

export function makeTexts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `review number ${i}: ${"good ".repeat(i % 5)}end`);
}

function expectedRow(text: string, layers: number[]): number[] {
  return layers.flatMap((layer) =>
    Array.from({ length: 6 }, (_, h) => Math.fround(fakeValue(text, layer, h)))
  );
}

async function chunkFiles(folder: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(folder)) if (e.name.endsWith(".f32")) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return names.sort();
}

// ---- child process mode ------------------------------------------------------------------
if (import.meta.main && Deno.args[0] === "child") {
  const [, root, n, chunk] = Deno.args;
  await embedTexts(new FakeEncoder(15), makeTexts(Number(n)), {
    root,
    chunkSize: Number(chunk),
    progress: false,
  });
  console.log("child finished");
  Deno.exit(0);
}

Deno.test("store: second call reads from disk; any key change gets its own store", async () => {
  const root = await Deno.makeTempDir();
  try {
    const texts = makeTexts(23);
    const enc = new FakeEncoder();
    const progress: number[] = [];
    const first = await embedTexts(enc, texts, {
      root,
      chunkSize: 5,
      progress: false,
      onProgress: (p) => progress.push(p.done),
    });
    assertEquals(first.shape, [23, 12]);
    assertEquals(enc.encoded, 23);
    assertEquals(progress[progress.length - 1], 23);
    assert(progress.every((d, i) => i === 0 || d >= progress[i - 1]));
    for (let i = 0; i < 23; i++) {
      assertEquals(
        Array.from(first.data.subarray(i * 12, (i + 1) * 12)),
        expectedRow(texts[i], [1, 2]),
      );
    }
    const again = await embedTexts(enc, texts, { root, chunkSize: 5, progress: false });
    assertEquals(enc.encoded, 23, "nothing re-encoded");
    assertEquals(again.data, first.data);
    assertEquals(
      again.data.buffer.byteLength,
      23 * 12 * 4,
      "one buffer holding exactly the matrix",
    );

    const key = (options: EncodeOptions, t = texts) =>
      EmbeddingStore.folderFor(
        {
          encoderId: enc.id,
          modelHash: enc.modelHash,
          ...resolveEncodeOptions(enc, options),
          count: t.length,
          textsHash: hashTexts(t),
        },
        root,
      );
    const base = key({});
    assertNotEquals(key({ layers: [2, 1] }), base);
    assertNotEquals(key({ pooling: "mean" }), base);
    assertNotEquals(key({ maxTokens: 32 }), base);
    assertNotEquals(key({ overflow: "windows" }), base);
    assertEquals(key({ batchSize: 1 }), base, "batch size is not part of the key");

    // Different texts, options: new stores, new encodes.
    const changed = [...texts];
    changed[7] += "!";
    await embedTexts(enc, changed, { root, chunkSize: 5, progress: false });
    assertEquals(enc.encoded, 46);
    const mean = await embedTexts(enc, texts, { root, pooling: "mean", progress: false });
    assertEquals(enc.encoded, 69);
    assertEquals(mean.data[0], Math.fround(fakeValue(texts[0], 1, 0) + 1));
    const dirs = [];
    for await (const e of Deno.readDir(join(root, "fake_hash-encoder"))) dirs.push(e.name);
    assertEquals(dirs.length, 3);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("store: damaged or partial chunk files are redone, leftovers removed", async () => {
  const root = await Deno.makeTempDir();
  try {
    const texts = makeTexts(12);
    const enc = new FakeEncoder();
    const first = await embedTexts(enc, texts, { root, chunkSize: 4, progress: false });
    const [folder] = await Array.fromAsync(Deno.readDir(join(root, "fake_hash-encoder")));
    const dir = join(root, "fake_hash-encoder", folder.name);
    const files = await chunkFiles(dir);
    assertEquals(files, [
      "rows-000000000-000000004.f32",
      "rows-000000004-000000008.f32",
      "rows-000000008-000000012.f32",
    ]);
    // Truncate the middle chunk, and leave a stale temporary file of a dead process.
    await Deno.truncate(join(dir, files[1]), 10);
    await Deno.writeTextFile(join(dir, `${files[2]}.999999999.part`), "junk");
    const lines: string[] = [];
    const again = await embedTexts(enc, texts, {
      root,
      chunkSize: 4,
      progress: false,
      log: (line) => lines.push(line),
    });
    assertEquals(enc.encoded, 16, "only the damaged chunk (4 rows) is re-encoded");
    assertEquals(lines, [
      `${join(dir, files[1])} is damaged (10 bytes, expected 192); ` +
      "it will be recomputed",
    ]);
    assertEquals(again.data, first.data);
    assertEquals(await chunkFiles(dir), files);
    const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    assert(!left.some((n) => n.endsWith(".part")), `leftovers: ${left}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("store: NaN output and empty texts are errors naming the text", async () => {
  const root = await Deno.makeTempDir();
  try {
    const texts = makeTexts(9);
    await assertRejects(
      () =>
        embedTexts(new FakeEncoder(0, texts[6]), texts, { root, chunkSize: 4, progress: false }),
      Error,
      `for text 6 "review number 6`,
    );
    const withEmpty = [...texts];
    withEmpty[3] = " \n ";
    const err = await assertRejects(() => embedTexts(new FakeEncoder(), withEmpty, { root }));
    assertStringIncludes(err.message, "Text 3 is empty");
    // Direct check of a row with Inf.
    const data = new Float32Array([1, 2, 3, Infinity]);
    const e = assertThrows(() => checkFiniteRows(data, 2, ["a", "b"], [10, 11], "enc"));
    assertStringIncludes(e.message, 'text 11 "b"');
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("store: a run killed with SIGKILL resumes with no lost and no duplicated rows", async () => {
  const root = await Deno.makeTempDir();
  const n = 120;
  const chunk = 8;
  const self = fileURLToPath(import.meta.url);
  const texts = makeTexts(n);
  const enc = new FakeEncoder();
  const folder = EmbeddingStore.folderFor(
    {
      encoderId: enc.id,
      modelHash: enc.modelHash,
      ...resolveEncodeOptions(enc, {}),
      count: n,
      textsHash: hashTexts(texts),
    },
    root,
  );
  try {
    const rowsOnDisk: number[] = [];
    // Two child runs, each killed once a few more chunks are on disk.
    for (const killAfterChunks of [3, 8]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", self, "child", root, String(n), String(chunk)],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const deadline = Date.now() + 60_000;
      while ((await chunkFiles(folder)).length < killAfterChunks) {
        if (Date.now() > deadline) throw new Error("child made no progress");
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill("SIGKILL");
      const status = await child.status;
      assertEquals(status.signal, "SIGKILL");
      const store = await EmbeddingStore.open(
        {
          encoderId: enc.id,
          modelHash: enc.modelHash,
          ...resolveEncodeOptions(enc, {}),
          count: n,
          textsHash: hashTexts(texts),
        },
        12,
        { root },
      );
      rowsOnDisk.push(await store.rowsDone());
    }
    assertGreater(rowsOnDisk[0], 0);
    assertLess(rowsOnDisk[1], n, "killed before the end");
    assert(rowsOnDisk[1] >= rowsOnDisk[0], "the second run kept the first run's rows");

    // Resume here: only the missing rows are encoded, and every row is right.
    const result = await embedTexts(enc, texts, { root, chunkSize: chunk, progress: false });
    assertEquals(enc.encoded, n - rowsOnDisk[1]);
    assertEquals(result.shape, [n, 12]);
    for (let i = 0; i < n; i++) {
      assertEquals(
        Array.from(result.data.subarray(i * 12, (i + 1) * 12)),
        expectedRow(texts[i], [1, 2]),
        `row ${i}`,
      );
    }
    const files = await chunkFiles(folder);
    assertEquals(files.length, n / chunk);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The only store folder under `root` (one encoder, one key). */
async function onlyStore(root: string): Promise<string> {
  const stores = await Array.fromAsync(Deno.readDir(join(root, "fake_hash-encoder")));
  assertEquals(stores.length, 1);
  return join(root, "fake_hash-encoder", stores[0].name);
}

/** Inverts one byte of `path`, keeping its length. */
async function flipByte(path: string, at: number): Promise<void> {
  const bytes = await Deno.readFile(path);
  bytes[at] ^= 0xff;
  await Deno.writeFile(path, bytes);
  assertEquals((await Deno.stat(path)).size, bytes.length);
}

function keyOf(enc: FakeEncoder, texts: string[]) {
  return {
    encoderId: enc.id,
    modelHash: enc.modelHash,
    ...resolveEncodeOptions(enc, {}),
    count: texts.length,
    textsHash: hashTexts(texts),
  };
}

Deno.test("store: a chunk changed at the same length is re-encoded with a message naming it", async () => {
  const root = await Deno.makeTempDir();
  try {
    const texts = makeTexts(12);
    const enc = new FakeEncoder();
    const lines: string[] = [];
    const options = {
      root,
      chunkSize: 4,
      progress: false as const,
      log: (l: string) => lines.push(l),
    };
    const first = await embedTexts(enc, texts, options);
    assertEquals(lines, []);
    const dir = await onlyStore(root);
    const files = await chunkFiles(dir);
    for (const f of files) {
      const recorded = await Deno.readTextFile(join(dir, `${f}.sha256`));
      const actual = createHash("sha256").update(await Deno.readFile(join(dir, f))).digest("hex");
      assertEquals(recorded, `${actual}  ${f}\n`, "sha256sum format");
    }
    const meta = JSON.parse(await Deno.readTextFile(join(dir, "meta.json")));
    assertEquals(meta.version, EMBEDDING_STAGE_VERSION);

    await flipByte(join(dir, files[1]), 37);
    // Reading without re-encoding names the damaged file.
    const store = await EmbeddingStore.open(keyOf(enc, texts), 12, { root, log: fail });
    assertEquals((await store.completeChunks()).size, 3, "same size, hash recorded");
    const err = await assertRejects(() => store.read(), CorruptCacheError, files[1]);
    assertEquals(err.path, join(dir, files[1]));
    await assertRejects(() => store.readChunk(1), CorruptCacheError, files[1]);
    assertEquals(await store.readChunk(0), first.data.slice(0, 48));

    const again = await embedTexts(enc, texts, options);
    assertEquals(enc.encoded, 16, "only the damaged chunk (4 rows) is re-encoded");
    assertEquals(lines.length, 1);
    assertStringIncludes(lines[0], join(dir, files[1]));
    assertEquals(again.data, first.data);
    assertEquals((await store.read()).data, first.data, "the store is whole again");

    // A damaged hash record counts the same, and names the record.
    await Deno.writeTextFile(join(dir, `${files[2]}.sha256`), "not a hash\n");
    lines.length = 0;
    const third = await embedTexts(enc, texts, options);
    assertEquals(enc.encoded, 20);
    assertEquals(lines.length, 1);
    assertStringIncludes(lines[0], join(dir, `${files[2]}.sha256`));
    assertEquals(third.data, first.data);

    // A chunk whose hash was never recorded (a write killed between the two) is redone quietly.
    await Deno.remove(join(dir, `${files[0]}.sha256`));
    lines.length = 0;
    assertEquals((await embedTexts(enc, texts, options)).data, first.data);
    assertEquals(enc.encoded, 24);
    assertEquals(lines, []);
    assertEquals((await embedTexts(enc, texts, options)).data, first.data);
    assertEquals(enc.encoded, 24, "whole again: nothing re-encoded");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

function fail(line: string): never {
  throw new Error(`unexpected message: ${line}`);
}

Deno.test("store: a store of another stage version, or a damaged meta.json, is redone whole", async () => {
  const root = await Deno.makeTempDir();
  try {
    const texts = makeTexts(12);
    const enc = new FakeEncoder();
    const lines: string[] = [];
    const options = {
      root,
      chunkSize: 4,
      progress: false as const,
      log: (l: string) => lines.push(l),
    };
    const first = await embedTexts(enc, texts, options);
    const dir = await onlyStore(root);
    const metaPath = join(dir, "meta.json");
    const meta = JSON.parse(await Deno.readTextFile(metaPath));
    const edits: [string, (m: Record<string, unknown>) => string][] = [
      [
        "made by embedding stage version 1, this code is version 2",
        (m) => JSON.stringify({ ...m, version: 1 }),
      ],
      ["version 0 (before versions were recorded)", ({ version: _, ...m }) => JSON.stringify(m)],
      [`${metaPath} is damaged (not valid JSON)`, (m) => JSON.stringify(m).slice(0, -3)],
      [`${metaPath} is damaged (count is 13`, (m) => JSON.stringify({ ...m, count: 13 })],
    ];
    let encoded = 12;
    for (const [message, edit] of edits) {
      await Deno.writeTextFile(metaPath, edit(meta));
      // A chunk of the old store that must not survive: no chunk is taken from a stale store.
      await flipByte(join(dir, (await chunkFiles(dir))[2]), 3);
      lines.length = 0;
      const again = await embedTexts(enc, texts, options);
      encoded += 12;
      assertEquals(enc.encoded, encoded, `${message}: everything re-encoded`);
      assertEquals(lines.length, 1, lines.join("\n"));
      assertStringIncludes(lines[0], message);
      assertStringIncludes(lines[0], dir);
      assertEquals(again.data, first.data);
      assertEquals(JSON.parse(await Deno.readTextFile(metaPath)), meta);
      assertEquals((await chunkFiles(dir)).length, 3);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("store: two calls in one process filling the same store at once both succeed", async () => {
  const root = await Deno.makeTempDir();
  try {
    const texts = makeTexts(40);
    const expected = await embedTexts(new FakeEncoder(), texts, {
      root: join(root, "single"),
      chunkSize: 4,
      progress: false,
    });
    const options = {
      root: join(root, "shared"),
      chunkSize: 4,
      progress: false as const,
      log: fail,
    };
    const [a, b] = await Promise.all([
      embedTexts(new FakeEncoder(2), texts, options),
      embedTexts(new FakeEncoder(2), texts, options),
    ]);
    assertEquals(a.data, expected.data);
    assertEquals(b.data, expected.data);
    const dir = await onlyStore(join(root, "shared"));
    const store = await EmbeddingStore.open(keyOf(new FakeEncoder(), texts), 12, {
      root: join(root, "shared"),
      log: fail,
    });
    assertEquals((await store.read()).data, expected.data);
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    assert(!names.some((n) => n.endsWith(".part") || n.endsWith(".tmp")), `${names}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const RACE_CHILD = (testUrl: string, storeUrl: string) => `
import { createHash } from "node:crypto";
import { embedTexts } from ${JSON.stringify(storeUrl)};
import { FakeEncoder, makeTexts } from ${JSON.stringify(testUrl)};
const [root, n, chunk, ready, go] = Deno.args;
await Deno.writeTextFile(ready, "");
while (true) {
  try {
    await Deno.stat(go);
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 2));
  }
}
const m = await embedTexts(new FakeEncoder(10), makeTexts(Number(n)), {
  root,
  chunkSize: Number(chunk),
  progress: false,
  log: (line) => console.error("LOG " + line),
});
console.log(createHash("sha256").update(new Uint8Array(m.data.buffer)).digest("hex"));
`;

Deno.test("store: two processes filling the same store at once both succeed, one whole store", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const n = 96, chunk = 4;
    const root = join(tmp, "embeddings");
    const script = join(tmp, "race_child.ts");
    await Deno.writeTextFile(
      script,
      RACE_CHILD(import.meta.url, new URL("../lib/embed/store.ts", import.meta.url).href),
    );
    const texts = makeTexts(n);
    const single = await embedTexts(new FakeEncoder(), texts, {
      root: join(tmp, "single"),
      chunkSize: chunk,
      progress: false,
    });
    const singleHash = createHash("sha256").update(new Uint8Array(single.data.buffer))
      .digest("hex");

    const race = async (round: number) => {
      const go = join(tmp, `go-${round}`);
      const children = [0, 1].map((i) =>
        new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--config",
            fileURLToPath(new URL("../deno.json", import.meta.url)),
            script,
            root,
            String(n),
            String(chunk),
            join(tmp, `ready-${round}-${i}`),
            go,
          ],
          stdout: "piped",
          stderr: "piped",
        }).spawn()
      );
      const deadline = Date.now() + 120_000;
      for (const i of [0, 1]) {
        while (!existsSync(join(tmp, `ready-${round}-${i}`))) {
          if (Date.now() > deadline) throw new Error("children did not start");
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      await Deno.writeTextFile(go, ""); // both start encoding now
      const outputs = await Promise.all(children.map((c) => c.output()));
      const decode = (b: Uint8Array) => new TextDecoder().decode(b);
      for (const out of outputs) {
        assertEquals(out.code, 0, decode(out.stderr));
        assertEquals(decode(out.stdout).trim(), singleHash, "each run returns the right matrix");
      }
      return outputs.map((o) => decode(o.stderr));
    };

    const logs = await race(0);
    for (const log of logs) assert(!log.includes("LOG"), `no damage seen: ${log}`);
    const dir = await onlyStore(root);
    const store = await EmbeddingStore.open(keyOf(new FakeEncoder(), texts), 12, {
      root,
      log: fail,
    });
    assertEquals((await store.read()).data, single.data, "every chunk verified, equal");
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assertEquals(names.length, 1 + 2 * (n / chunk), `no leftovers: ${names}`);

    // Both find the store stale at once: each resets it, and it ends whole all the same.
    const metaPath = join(dir, "meta.json");
    const meta = JSON.parse(await Deno.readTextFile(metaPath));
    await Deno.writeTextFile(metaPath, JSON.stringify({ ...meta, version: 1 }));
    const staleLogs = await race(1);
    assert(staleLogs.some((l) => l.includes("version 1")), staleLogs.join("\n"));
    assertEquals((await store.read()).data, single.data);
    assertEquals(JSON.parse(await Deno.readTextFile(metaPath)), meta);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
