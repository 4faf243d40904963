/**
 * The frozen feature cache: a run killed (SIGKILL) mid-chunk resumes without lost or
 * duplicated rows, float16 and float32 storage, reading back rows, chunks and everything,
 * damaged and stale caches, and two processes filling one cache at once.
 * Uses a small model written by the test (no shared folder needed).
 */
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CorruptCacheError, StaleCacheError } from "../lib/integrity.ts";
import { FEATURE_STAGE_VERSION } from "../lib/vision/feature_cache.ts";
import { ready, tf } from "../lib/tf.ts";
import { projectRoot } from "../lib/config.ts";
import {
  backboneWeightsHash,
  cacheFeatures,
  FeatureCache,
  loadBackbone,
  saveLayersModel,
  weightFilesDigest,
} from "../lib/vision/mod.ts";
import type { BackboneSpec } from "../lib/vision/mod.ts";
import type { ImageBatch } from "../lib/types.ts";

await ready();

function makeNet(): tf.LayersModel {
  const input = tf.input({ shape: [null, null, 3], name: "img" });
  const c1 = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: "same", name: "c1" })
    .apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: "bn1" }).apply(c1) as tf.SymbolicTensor;
  const r1 = tf.layers.reLU({ name: "r1" }).apply(bn) as tf.SymbolicTensor;
  const p1 = tf.layers.maxPooling2d({ poolSize: 2, name: "p1" }).apply(r1) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: p1 });
}

function images(n: number, size: number, seed: number): ImageBatch {
  const data = tf.tidy(() => tf.randomUniform([n, size, size], 0, 1, "float32", seed).dataSync());
  return { data: data as Float32Array, shape: [n, size, size] };
}

const folder = await Deno.makeTempDir({ prefix: "vision_cache_net_" });
await saveLayersModel(makeNet(), folder);
const spec: BackboneSpec = {
  name: "cache_net",
  description: "test net",
  sources: [{ folder }],
  preprocessing: "caffe",
  sliceLayer: "p1",
  standsInFor: [],
};
const N = 50, SIZE = 12;

function assertRowsClose(actual: Float32Array, expected: Float32Array, relative: number) {
  assertEquals(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > relative * (1 + Math.abs(expected[i]))) {
      throw new Error(`value ${i}: ${actual[i]} vs ${expected[i]}`);
    }
  }
}

const CHILD = `
import { ready, tf } from ${JSON.stringify(new URL("../lib/tf.ts", import.meta.url).href)};
import { cacheFeatures, loadBackbone } from ${
  JSON.stringify(new URL("../lib/vision/mod.ts", import.meta.url).href)
};
await ready();
const [specJson, root, n, size, seed, killAt] = Deno.args;
const [N, S] = [Number(n), Number(size)];
const data = tf.randomUniform([N, S, S], 0, 1, "float32", Number(seed)).dataSync();
const backbone = await loadBackbone(JSON.parse(specJson));
await cacheFeatures(backbone, { data, shape: [N, S, S] }, {
  root, dtype: "float32", chunkRows: 8, batchSize: 4, upsample: 2,
  onProgress: (p) => { if (p.done >= Number(killAt)) Deno.kill(Deno.pid, "SIGKILL"); },
});
`;

Deno.test("a killed run resumes: no lost and no duplicated rows", async () => {
  const root = await Deno.makeTempDir({ prefix: "vision_cache_" });
  const child = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(child, CHILD);
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      join(projectRoot, "deno.json"),
      child,
      JSON.stringify(spec),
      root,
      String(N),
      String(SIZE),
      "3",
      "20", // chunks 0 and 1 (rows 0–15) are done; chunk 2 is half computed
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(run.signal, "SIGKILL", new TextDecoder().decode(run.stderr));

  const backbone = await loadBackbone(spec);
  const set = images(N, SIZE, 3);
  const [dir] = [...Deno.readDirSync(root)].map((e) => join(root, e.name));
  const killed = await FeatureCache.open(dir);
  assertEquals(await killed.missingChunks(), [2, 3, 4, 5, 6]);
  // a half-written temporary and a truncated chunk, as a crash elsewhere could leave them
  await Deno.writeFile(join(dir, "chunk-000002.bin.part"), new Uint8Array(100));
  await Deno.writeFile(join(dir, "chunk-000003.bin"), new Uint8Array(100));

  const computed: number[] = [];
  const cache = await cacheFeatures(backbone, set, {
    root,
    dtype: "float32",
    chunkRows: 8,
    batchSize: 4,
    upsample: 2,
    onChunk: (i) => computed.push(i),
  });
  assertEquals(cache.dir, dir);
  assertEquals(computed, [2, 3, 4, 5, 6]);
  assert(await cache.isComplete());
  const all = await cache.readAll();
  const direct = await backbone.features(set, { upsample: 2, batchSize: 7 });
  assertEquals(all.shape, direct.shape);
  assertEquals(all.shape, [N, SIZE, SIZE, 6]); // 12 → ×2 → pool /2
  // every row is its own image's features (images differ, so a shifted or repeated row fails)
  assertRowsClose(all.data, direct.data, 1e-5);

  // complete: a further call computes nothing
  const again: number[] = [];
  await cacheFeatures(backbone, set, {
    root,
    dtype: "float32",
    chunkRows: 8,
    batchSize: 4,
    upsample: 2,
    onChunk: (i) => again.push(i),
  });
  assertEquals(again, []);
  backbone.dispose();
  await Deno.remove(root, { recursive: true });
  await Deno.remove(child);
});

Deno.test("float16 and float32 caches, keys and partial reads", async () => {
  const root = await Deno.makeTempDir({ prefix: "vision_cache_" });
  const backbone = await loadBackbone(spec);
  const set = images(N, SIZE, 4);
  const f32 = await cacheFeatures(backbone, set, { root, dtype: "float32", chunkRows: 16 });
  const f16 = await cacheFeatures(backbone, set, { root, dtype: "float16", chunkRows: 16 });
  assertNotEquals(f32.dir, f16.dir);
  assertEquals(f16.sizeBytes * 2, f32.sizeBytes);
  assertEquals(f32.sizeBytes, N * 6 * 6 * 6 * 4);
  let onDisk = 0;
  for (const entry of Deno.readDirSync(f16.dir)) {
    if (entry.name.endsWith(".bin")) onDisk += Deno.statSync(join(f16.dir, entry.name)).size;
  }
  assertEquals(onDisk, f16.sizeBytes);
  const a = await f32.readAll(), b = await f16.readAll();
  assertRowsClose(b.data, a.data, 1e-3); // float16: 11 significant bits
  // rows [5, 37) cross chunk boundaries
  const part = await f32.readRows(5, 37);
  const row = 6 * 6 * 6;
  assertEquals(part.shape, [32, 6, 6, 6]);
  assertEquals([...part.data], [...a.data.subarray(5 * row, 37 * row)]);
  let rows = 0;
  for await (const { start, batch } of f32.chunks()) {
    assertEquals(start, rows);
    rows += batch.shape[0];
  }
  assertEquals(rows, N);
  // other images, other input size → other caches
  const other = await cacheFeatures(backbone, images(N, SIZE, 5), { root, dtype: "float32" });
  assertNotEquals(other.dir, f32.dir);
  const bigger = await cacheFeatures(backbone, set, { root, dtype: "float32", upsample: 3 });
  assertNotEquals(bigger.dir, f32.dir);
  assertEquals(bigger.meta.featureShape, [18, 18, 6]);
  backbone.dispose();
  await Deno.remove(root, { recursive: true });
});

Deno.test("two workers compute the same features and the same cache", async () => {
  const root = await Deno.makeTempDir({ prefix: "vision_cache_" });
  const backbone = await loadBackbone(spec);
  const set = images(N, SIZE, 6);
  const here = await backbone.features(set, { batchSize: 8 });
  const progress: number[] = [];
  const parallel = await backbone.features(set, {
    batchSize: 8,
    workers: 2,
    onProgress: (p) => progress.push(p.done),
  });
  assertEquals(parallel.shape, here.shape);
  assertRowsClose(parallel.data, here.data, 1e-6);
  assertEquals(progress.at(-1), N);
  const cache = await cacheFeatures(backbone, set, {
    root,
    dtype: "float32",
    chunkRows: 16,
    workers: 2,
  });
  assertRowsClose((await cache.readAll()).data, here.data, 1e-6);
  backbone.dispose(); // stops the workers
  await Deno.remove(root, { recursive: true });
});

/** Inverts one byte of `path`, keeping its length. */
async function flipByte(path: string, at: number): Promise<void> {
  const bytes = await Deno.readFile(path);
  bytes[at] ^= 0xff;
  await Deno.writeFile(path, bytes);
  assertEquals((await Deno.stat(path)).size, bytes.length);
}

function fail(line: string): never {
  throw new Error(`unexpected message: ${line}`);
}

Deno.test("a chunk changed at the same length: reads name it, cacheFeatures recomputes it", async () => {
  const root = await Deno.makeTempDir({ prefix: "vision_cache_" });
  const backbone = await loadBackbone(spec);
  const set = images(N, SIZE, 7);
  for (const dtype of ["float32", "float16"] as const) {
    const lines: string[] = [];
    const options = { root, dtype, chunkRows: 16, log: (l: string) => lines.push(l) };
    const cache = await cacheFeatures(backbone, set, options);
    const original = await cache.readAll();
    assertEquals(lines, []);
    assertEquals(cache.meta.version, FEATURE_STAGE_VERSION);
    const path = join(cache.dir, "chunk-000001.bin");
    const bytes = await Deno.readFile(path);
    assertEquals(
      await Deno.readTextFile(`${path}.sha256`),
      `${createHash("sha256").update(bytes).digest("hex")}  chunk-000001.bin\n`,
      "sha256sum format",
    );
    await flipByte(path, 101);

    // A training worker's read cannot recompute: it throws, naming the file.
    const opened = await FeatureCache.open(cache.dir);
    const err = await assertRejects(() => opened.readAll(), CorruptCacheError, path);
    assertEquals(err.path, path);
    await assertRejects(() => opened.readRows(20, 21), CorruptCacheError, path);
    await assertRejects(() => opened.readChunk(1), CorruptCacheError, path);
    await assertRejects(async () => {
      for await (const _ of opened.chunks()) { /* reads every chunk */ }
    }, CorruptCacheError);
    assertEquals((await opened.readRows(0, 16)).data, original.data.subarray(0, 16 * 216));
    assertEquals(await opened.missingChunks(), [], "same size and hash recorded: cheap check");
    assertEquals(await opened.missingChunks({ verify: true, log: () => {} }), [1]);

    // cacheFeatures checks hashes before calling the cache complete, and recomputes the chunk.
    const computed: number[] = [];
    const again = await cacheFeatures(backbone, set, {
      ...options,
      onChunk: (i) => computed.push(i),
    });
    assertEquals(computed, [1], dtype);
    assertEquals(lines.length, 1);
    assertStringIncludes(lines[0], path);
    assertStringIncludes(lines[0], "is damaged");
    assertEquals((await again.readAll()).data, original.data, dtype);
    assert(await again.isComplete({ verify: true, log: fail }));
  }
  backbone.dispose();
  await Deno.remove(root, { recursive: true });
});

Deno.test("a cache of another stage version, or a damaged meta.json, is recomputed whole", async () => {
  const root = await Deno.makeTempDir({ prefix: "vision_cache_" });
  const backbone = await loadBackbone(spec);
  const set = images(N, SIZE, 8);
  const lines: string[] = [];
  const options = {
    root,
    dtype: "float32" as const,
    chunkRows: 16,
    log: (l: string) => lines.push(l),
  };
  const cache = await cacheFeatures(backbone, set, options);
  const original = await cache.readAll();
  const metaPath = join(cache.dir, "meta.json");
  const meta = JSON.parse(await Deno.readTextFile(metaPath));
  const edits: [
    typeof StaleCacheError | typeof CorruptCacheError,
    string,
    (m: Record<string, unknown>) => string,
  ][] = [
    [StaleCacheError, "feature stage version 1,", (m) => JSON.stringify({ ...m, version: 1 })],
    [
      StaleCacheError,
      "version 0 (before versions were recorded)",
      ({ version: _, ...m }) => JSON.stringify(m),
    ],
    [CorruptCacheError, `${metaPath} is damaged`, (m) => JSON.stringify(m).slice(0, -2)],
  ];
  for (const [errorClass, message, edit] of edits) {
    await Deno.writeTextFile(metaPath, edit(meta));
    await assertRejects(() => FeatureCache.open(cache.dir), errorClass, cache.dir);
    // A chunk of the old cache that must not be reused (it would be reported damaged).
    await flipByte(join(cache.dir, "chunk-000002.bin"), 7);
    lines.length = 0;
    const computed: number[] = [];
    const again = await cacheFeatures(backbone, set, {
      ...options,
      onChunk: (i) => computed.push(i),
    });
    assertEquals(computed, [0, 1, 2, 3], message);
    assertEquals(lines.length, 1, lines.join("\n"));
    assertStringIncludes(lines[0], message);
    assertStringIncludes(lines[0], cache.dir);
    assertEquals((await again.readAll()).data, original.data);
    assertEquals(JSON.parse(await Deno.readTextFile(metaPath)), meta);
  }
  backbone.dispose();
  await Deno.remove(root, { recursive: true });
});

const RACE_CHILD = `
import { createHash } from "node:crypto";
import { ready, tf } from ${JSON.stringify(new URL("../lib/tf.ts", import.meta.url).href)};
import { cacheFeatures, loadBackbone } from ${
  JSON.stringify(new URL("../lib/vision/mod.ts", import.meta.url).href)
};
await ready();
const [specJson, root, n, size, seed, readyPath, go] = Deno.args;
const [N, S] = [Number(n), Number(size)];
const data = tf.randomUniform([N, S, S], 0, 1, "float32", Number(seed)).dataSync();
const backbone = await loadBackbone(JSON.parse(specJson));
await Deno.writeTextFile(readyPath, "");
while (true) {
  try {
    await Deno.stat(go);
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 2));
  }
}
const pause = new Int32Array(new SharedArrayBuffer(4));
const cache = await cacheFeatures(backbone, { data, shape: [N, S, S] }, {
  root, dtype: "float32", chunkRows: 4, batchSize: 4,
  log: (line) => console.error("LOG " + line),
  onChunk: () => Atomics.wait(pause, 0, 0, 15), // slow, so that the two runs interleave
});
const all = await cache.readAll();
console.log(createHash("sha256").update(new Uint8Array(all.data.buffer)).digest("hex"));
`;

Deno.test("two processes computing the same cache at once both succeed, one whole cache", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "vision_cache_" });
  const root = join(tmp, "features");
  const script = join(tmp, "race_child.ts");
  await Deno.writeTextFile(script, RACE_CHILD);
  const backbone = await loadBackbone(spec);
  const set = images(N, SIZE, 9);
  const options = { dtype: "float32" as const, chunkRows: 4, batchSize: 4 };
  const single = await (await cacheFeatures(backbone, set, { ...options, root: join(tmp, "one") }))
    .readAll();
  const singleHash = createHash("sha256").update(new Uint8Array(single.data.buffer)).digest("hex");

  const race = async (round: number) => {
    const go = join(tmp, `go-${round}`);
    const children = [0, 1].map((i) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          join(projectRoot, "deno.json"),
          script,
          JSON.stringify(spec),
          root,
          String(N),
          String(SIZE),
          "9",
          join(tmp, `ready-${round}-${i}`),
          go,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn()
    );
    const deadline = Date.now() + 300_000;
    for (const i of [0, 1]) {
      while (!existsSync(join(tmp, `ready-${round}-${i}`))) {
        if (Date.now() > deadline) throw new Error("children did not start");
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await Deno.writeTextFile(go, ""); // both start computing now
    const outputs = await Promise.all(children.map((c) => c.output()));
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    for (const out of outputs) {
      assertEquals(out.code, 0, decode(out.stderr));
      assertEquals(decode(out.stdout).trim(), singleHash, "each run reads the right features");
    }
    return outputs.map((o) => decode(o.stderr));
  };

  const logs = await race(0);
  for (const log of logs) assert(!log.includes("LOG"), `no damage seen: ${log}`);
  const [dir] = [...Deno.readDirSync(root)].map((e) => join(root, e.name));
  const cache = await FeatureCache.open(dir);
  assert(await cache.isComplete({ verify: true, log: fail }));
  assertEquals((await cache.readAll()).data, single.data);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name);
  assertEquals(names.length, 1 + 2 * Math.ceil(N / 4), `no leftovers: ${names}`);

  // Both find the cache stale at once: each resets it, and it ends whole all the same.
  const metaPath = join(dir, "meta.json");
  const meta = JSON.parse(await Deno.readTextFile(metaPath));
  await Deno.writeTextFile(metaPath, JSON.stringify({ ...meta, version: 1 }));
  const staleLogs = await race(1);
  assert(staleLogs.some((l) => l.includes("feature stage version 1")), staleLogs.join("\n"));
  assert(await cache.isComplete({ verify: true, log: fail }));
  assertEquals((await cache.readAll()).data, single.data);
  assertEquals(JSON.parse(await Deno.readTextFile(metaPath)), meta);
  backbone.dispose();
  await Deno.remove(tmp, { recursive: true });
});

Deno.test("feature caches are keyed by the weights: other weights under the same name, other features", async () => {
  const root = await Deno.makeTempDir({ prefix: "vision_cache_weights_" });
  try {
    const x = images(6, SIZE, 3);
    const first = await loadBackbone(spec);
    const again = await loadBackbone(spec);
    assertEquals(backboneWeightsHash(first), backboneWeightsHash(again));
    const a = await cacheFeatures(first, x, { root, dtype: "float32" });
    const b = await cacheFeatures(again, x, { root, dtype: "float32" });
    assertEquals(a.dir, b.dir);
    assertEquals(b.computedRows, 0);
    // The same registry name with re-drawn weights (as a replaced weight file would be).
    const changed = await loadBackbone(spec);
    const conv = changed.model.getLayer("c1");
    conv.setWeights(conv.getWeights().map((w) => tf.mul(w, 2)));
    assertNotEquals(backboneWeightsHash(changed), backboneWeightsHash(first));
    const c = await cacheFeatures(changed, x, { root, dtype: "float32" });
    assertNotEquals(c.dir, a.dir);
    assertEquals(c.computedRows, 6);
    for (const bb of [first, again, changed]) bb.dispose();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("weight-file digests: same files, same digest; one changed byte, another", async () => {
  const copies: string[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const dir = await Deno.makeTempDir({ prefix: "vision_digest_" });
      for (const e of Deno.readDirSync(folder)) {
        await Deno.copyFile(join(folder, e.name), join(dir, e.name));
      }
      copies.push(dir);
    }
    const shard = [...Deno.readDirSync(copies[2])].find((e) => e.name.endsWith(".bin"))!.name;
    const bytes = await Deno.readFile(join(copies[2], shard));
    bytes[bytes.length - 1] ^= 1;
    await Deno.writeFile(join(copies[2], shard), bytes);
    const [a, b, c] = await Promise.all(copies.map((f) => weightFilesDigest([{ folder: f }])));
    assertEquals(a, b);
    assertNotEquals(a, c);
  } finally {
    for (const dir of copies) await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cleanup", async () => {
  await Deno.remove(folder, { recursive: true });
});
