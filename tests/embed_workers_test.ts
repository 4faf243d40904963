/**
 * Encoder workers (`lib/embed/workers.ts`) and `embedTexts` with `workers`: on 40 real IMDB
 * reviews with 2 workers and chunks of 8 rows, the matrix equals the one this thread encodes
 * bit for bit, the store the workers wrote reads back (a second call encodes nothing), a
 * failed or aborted run leaves whole chunks only and resumes, a worker that cannot load its
 * model says so, and `dispose()` ends the workers (Deno's sanitizers check none is left).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { loadImdb, stratifiedSample, textsOf } from "../lib/data/mod.ts";
import { embeddingKey, EmbeddingStore, embedTexts } from "../lib/embed/store.ts";
import { resolveEncodeOptions, type TextEncoderModel } from "../lib/embed/types.ts";
import { useLiteDefaultFolder, UseLiteEncoder } from "../lib/embed/use_lite.ts";
import { EncoderWorkers } from "../lib/embed/workers.ts";
import type { Maker } from "../lib/provenance.ts";
import type { Matrix } from "../lib/types.ts";
import { shared } from "./_shared.ts";

const archive = shared("data", "aclImdb_v1-labelled.tar.gz");
const ignore = archive.ignore;
const CHUNK = 8;
const COUNT = 40;
const maker: Maker = { run: "embed_workers_test", at: "2025-01-01T00:00:00.000Z", code: "test" };

let textsPromise: Promise<string[]> | undefined;
/** 40 real reviews (stratified sample, seed 3), loaded once for this file. */
function reviews(): Promise<string[]> {
  textsPromise ??= loadImdb({ source: archive.path }).then((all) =>
    textsOf(stratifiedSample(all, COUNT, 3))
  );
  return textsPromise;
}

let encoderPromise: Promise<UseLiteEncoder> | undefined;
function encoder(): Promise<UseLiteEncoder> {
  encoderPromise ??= UseLiteEncoder.load();
  return encoderPromise;
}

let referencePromise: Promise<Matrix> | undefined;
/** The reviews' matrix encoded in this thread (chunks of 8, its own temporary store). */
function reference(): Promise<Matrix> {
  referencePromise ??= (async () => {
    const root = await Deno.makeTempDir({ prefix: "embed-workers-ref-" });
    try {
      return await embedTexts(await encoder(), await reviews(), {
        root,
        chunkSize: CHUNK,
        progress: false,
      });
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  })();
  return referencePromise;
}

/** Positions where `a` and `b` differ bit for bit (NaN payloads and -0 included). */
function bitDifferences(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  return n;
}

/** The store of `texts` under `root` (as embedTexts opens it with the default options). */
async function storeOf(
  use: TextEncoderModel,
  root: string,
  texts: string[],
  cols: number,
): Promise<EmbeddingStore> {
  const key = embeddingKey(use, texts, resolveEncodeOptions(use));
  return await EmbeddingStore.open(key, cols, { root, chunkSize: CHUNK, log: () => {} });
}

/** Every file in the store's folder is meta.json or part of a whole chunk (no leftovers). */
async function assertOnlyWholeChunks(store: EmbeddingStore): Promise<Set<number>> {
  const written = await store.completeChunks();
  const names = new Set<string>();
  for (const c of written) {
    const file = store.chunkPath(c).split("/").pop()!;
    for (const suffix of ["", ".sha256", ".made.json"]) names.add(file + suffix);
  }
  for await (const entry of Deno.readDir(store.folder)) {
    assert(
      entry.name === "meta.json" || names.has(entry.name),
      `unexpected file ${entry.name} in ${store.folder}`,
    );
  }
  return written;
}

Deno.test({
  name: "embedTexts on 2 workers: bitwise the single-thread matrix; the store reads back",
  ignore,
  fn: async () => {
    const texts = await reviews();
    const use = await encoder();
    const expected = await reference();
    const root = await Deno.makeTempDir({ prefix: "embed-workers-" });
    const workers = await EncoderWorkers.start({ kind: "use-lite" }, 2);
    try {
      assertEquals(workers.size, 2);
      assertEquals(workers.encoder.id, use.id);
      assertEquals(workers.encoder.modelHash, use.modelHash);
      const progress: number[] = [];
      let mostBusy = 0;
      const got = await embedTexts(use, texts, {
        root,
        chunkSize: CHUNK,
        progress: false,
        maker,
        workers,
        onProgress: (p) => {
          progress.push(p.done);
          mostBusy = Math.max(mostBusy, workers.busy);
        },
      });
      assertEquals(got.shape, expected.shape);
      assertEquals(bitDifferences(got.data, expected.data), 0);
      // Both workers encoded at once; progress counted texts up to all of them, never back.
      assertEquals(mostBusy, 2);
      assertEquals(progress.at(-1), COUNT);
      for (let i = 1; i < progress.length; i++) assert(progress[i] >= progress[i - 1]);

      // The store holds every chunk whole, with its hash and maker, and reads back.
      const store = await storeOf(use, root, texts, got.shape[1]);
      assertEquals((await assertOnlyWholeChunks(store)).size, COUNT / CHUNK);
      assertEquals(bitDifferences((await store.read()).data, expected.data), 0);
      for (const { maker: m } of await store.chunkMakers()) assertEquals(m, maker);
      // A second call, with or without the workers, encodes nothing.
      let encoded = 0;
      const counting: TextEncoderModel = {
        id: use.id,
        modelHash: use.modelHash,
        numLayers: use.numLayers,
        hiddenSize: use.hiddenSize,
        availableLayers: use.availableLayers,
        maxTokensLimit: use.maxTokensLimit,
        defaults: use.defaults,
        encode: (t, o) => {
          encoded += t.length;
          return use.encode(t, o);
        },
        dispose: () => Promise.resolve(),
      };
      for (const options of [{}, { workers }]) {
        let calls = 0;
        const again = await embedTexts(counting, texts, {
          root,
          progress: false,
          ...options,
          onProgress: () => calls++,
        });
        assertEquals(calls, 0);
        assertEquals(bitDifferences(again.data, expected.data), 0);
      }
      assertEquals(encoded, 0);
      assertEquals(workers.busy, 0);
    } finally {
      await workers.dispose();
      await Deno.remove(root, { recursive: true });
    }
  },
});

/**
 * Copies USE-lite into `folder` with its word-boundary piece "▁" (id 30) renamed, so that a
 * text of unknown characters only ("☃☃") tokenises to nothing and its encode fails. (With
 * the real vocabulary every text yields at least "▁".)
 */
async function copyWithoutBoundaryPiece(folder: string): Promise<void> {
  const from = useLiteDefaultFolder();
  await Deno.mkdir(folder, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isFile) await Deno.copyFile(join(from, entry.name), join(folder, entry.name));
  }
  const vocab = JSON.parse(await Deno.readTextFile(join(folder, "vocab.json")));
  assertEquals(vocab[30][0], "\u2581");
  vocab[30][0] = "<no-boundary-piece>";
  await Deno.writeTextFile(join(folder, "vocab.json"), JSON.stringify(vocab));
}

Deno.test({
  name: "embedTexts on workers: a failing chunk names itself, stops the run, whole chunks stay",
  ignore,
  fn: async () => {
    const texts = [...await reviews()];
    // Text 27 (chunk 3, rows 24..31) has no piece in this vocabulary: the worker's encoder
    // rejects it (the main thread's checks let it through: it is not empty).
    texts[27] = "☃☃☃ ☃☃";
    const root = await Deno.makeTempDir({ prefix: "embed-workers-fail-" });
    const folder = join(root, "model");
    await copyWithoutBoundaryPiece(folder);
    const use = await UseLiteEncoder.load({ folder });
    const workers = await EncoderWorkers.start({ kind: "use-lite", options: { folder } }, 2);
    try {
      const storeRoot = join(root, "store");
      const error = await assertRejects(() =>
        embedTexts(use, texts, { root: storeRoot, chunkSize: CHUNK, progress: false, workers })
      );
      const message = (error as Error).message;
      assertStringIncludes(message, "chunk 3 (rows 24..31)");
      assertStringIncludes(message, "encoder worker");
      assertStringIncludes(message, "Text 27");
      assertStringIncludes(message, "no piece in the USE-lite vocabulary");
      const cols = use.hiddenSize * use.defaults.layers.length;
      const store = await storeOf(use, storeRoot, texts, cols);
      const written = await assertOnlyWholeChunks(store);
      assert(!written.has(3), "the failed chunk is not written");
      // Chunks 0 and 1 ran first; chunk 2, in flight beside chunk 3, was finished and kept;
      // chunk 4 was not handed out.
      assertEquals([...written].sort(), [0, 1, 2]);
      // Each written chunk is the one this thread encodes, bit for bit.
      for (const c of written) {
        const [first, end] = store.chunkRows(c);
        const rows = await use.encode(texts.slice(first, end), { textIndexOffset: first });
        assertEquals(bitDifferences(await store.readChunk(c), rows.data), 0);
      }
      // The pool is still usable after a chunk's error.
      assert(workers.open);
      assertEquals(workers.busy, 0);
    } finally {
      await workers.dispose();
      await use.dispose();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "embedTexts on workers: an abort stops handing out chunks; a second call resumes",
  ignore,
  fn: async () => {
    const texts = await reviews();
    const expected = await reference();
    const use = await encoder();
    const root = await Deno.makeTempDir({ prefix: "embed-workers-abort-" });
    const workers = await EncoderWorkers.start({ kind: "use-lite" }, 2);
    try {
      const controller = new AbortController();
      const reason = new Error("stop: test abort");
      const folder = EmbeddingStore.folderFor(
        embeddingKey(use, texts, resolveEncodeOptions(use)),
        root,
      );
      const hashes = () => {
        let n = 0;
        for (const entry of Deno.readDirSync(folder)) if (entry.name.endsWith(".sha256")) n++;
        return n;
      };
      const error = await assertRejects(() =>
        embedTexts(use, texts, {
          root,
          chunkSize: CHUNK,
          progress: false,
          workers,
          signal: controller.signal,
          // Aborted as soon as the first chunk is written.
          onProgress: () => {
            if (!controller.signal.aborted && hashes() > 0) controller.abort(reason);
          },
        })
      );
      assert(error === reason, `rejected with ${error}`);
      const store = await storeOf(use, root, texts, expected.shape[1]);
      const written = await assertOnlyWholeChunks(store);
      // The chunk written, and perhaps the other worker's if it was being written then.
      assert(written.size >= 1 && written.size <= 2, `${written.size} chunks written`);
      // Resumed: only the missing chunks are encoded, and the matrix is the same.
      let first: number | undefined;
      const got = await embedTexts(use, texts, {
        root,
        progress: false,
        workers,
        onProgress: (p) => first ??= p.done,
      });
      assert(first !== undefined && first >= written.size * CHUNK, `resumed at ${first}`);
      assertEquals(bitDifferences(got.data, expected.data), 0);
      assertEquals((await assertOnlyWholeChunks(store)).size, COUNT / CHUNK);
    } finally {
      await workers.dispose();
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "encoder workers: a missing model folder is a clear start error; nothing is written",
  ignore,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "embed-workers-missing-" });
    const folder = join(root, "no-such-model");
    try {
      const error = await assertRejects(() =>
        EncoderWorkers.start({ kind: "use-lite", options: { folder } }, 2)
      );
      const message = (error as Error).message;
      assertStringIncludes(message, "could not load use-lite");
      assertStringIncludes(message, folder);
      assertStringIncludes(message, "model.json");
      const left: string[] = [];
      for await (const entry of Deno.readDir(root)) left.push(entry.name);
      assertEquals(left, []);
      // Bad counts and unknown kinds are refused before any worker starts.
      await assertRejects(() => EncoderWorkers.start({ kind: "use-lite" }, 0), Error, "positive");
      await assertRejects(
        () => EncoderWorkers.start({ kind: "bert" } as unknown as { kind: "use-lite" }, 1),
        Error,
        'unknown encoder kind "bert"',
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "encoder workers: another encoder is refused; dispose() ends them and their chunks",
  ignore,
  fn: async () => {
    const texts = await reviews();
    const use = await encoder();
    const root = await Deno.makeTempDir({ prefix: "embed-workers-dispose-" });
    const workers = await EncoderWorkers.start({ kind: "use-lite" }, 2);
    try {
      // Rows of another model would be stored under this encoder's key: refused.
      const other: TextEncoderModel = {
        id: use.id,
        modelHash: "f".repeat(64),
        numLayers: use.numLayers,
        hiddenSize: use.hiddenSize,
        availableLayers: use.availableLayers,
        maxTokensLimit: use.maxTokensLimit,
        defaults: use.defaults,
        encode: () => Promise.reject(new Error("not called")),
        dispose: () => Promise.resolve(),
      };
      await assertRejects(
        () => embedTexts(other, texts, { root, progress: false, workers }),
        Error,
        "their rows would be stored under another encoder's key",
      );
      // Disposed while chunks are in flight and waiting: each rejects, naming its chunk.
      const options = resolveEncodeOptions(use);
      const requests = [0, 1, 2].map((chunk) =>
        workers.encodeChunk({
          chunk,
          first: chunk * CHUNK,
          texts: texts.slice(chunk * CHUNK, (chunk + 1) * CHUNK),
          options,
        })
      );
      assertEquals(workers.busy, 2);
      await workers.dispose();
      assert(!workers.open);
      for (const [chunk, request] of requests.entries()) {
        await assertRejects(() => request, Error, `chunk ${chunk} (rows ${chunk * CHUNK}..`);
      }
      await assertRejects(
        () => workers.encodeChunk({ chunk: 0, first: 0, texts: texts.slice(0, 1), options }),
        Error,
        "disposed",
      );
      await workers.dispose(); // twice: nothing more
    } finally {
      await workers.dispose();
      await Deno.remove(root, { recursive: true });
    }
  },
});
