/**
 * loadImdb on small archives made here with tar-stream + gzip: layout, options, every
 * source kind, and an error that names the file and the problem for each kind of bad input.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { dirname, join } from "node:path";
import {
  gzipBytes,
  loadImdb,
  miniImdbEntries,
  readTarFiles,
  type Review,
  tarBytes,
  type TarEntry,
  writeTarArchive,
} from "../lib/data/mod.ts";
import { UnsafePathError } from "../lib/safe_path.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_load_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The reviews `entries` describe, worked out from the names alone (the expectation). */
function expectedReviews(entries: TarEntry[]): Omit<Review, "text">[] {
  const out: Omit<Review, "text">[] = [];
  for (const e of entries) {
    const m = /(train|test)\/(pos|neg)\/(\d+)_(\d+)\.txt$/.exec(e.name);
    if (m) {
      out.push({
        split: m[1] as Review["split"],
        id: Number(m[3]),
        rating: Number(m[4]),
        label: m[2] === "pos" ? 1 : 0,
      });
    }
  }
  const rank = (r: Omit<Review, "text">) => (r.split === "train" ? 0 : 1e9) + r.label * 1e6 + r.id;
  return out.sort((a, b) => rank(a) - rank(b));
}

function textOf(entries: TarEntry[], split: string, folder: string, id: number): string {
  const entry = entries.find((e) =>
    new RegExp(`${split}/${folder}/${id}_\\d+\\.txt$`).test(e.name)
  );
  return entry!.data as string;
}

Deno.test("loadImdb reads a small archive: records, order, unsup and extras skipped", async () => {
  await withTempDir(async (dir) => {
    const entries = miniImdbEntries({ perFolder: 7, extras: true });
    const path = await writeTarArchive(join(dir, "mini.tar.gz"), entries);
    const reviews = await loadImdb({ source: path });
    assertEquals(reviews.length, 28);
    assertEquals(reviews.map(({ text: _, ...rest }) => rest), expectedReviews(entries));
    for (const r of reviews) {
      assertEquals(r.text, textOf(entries, r.split, r.label ? "pos" : "neg", r.id));
    }
    assert(reviews.every((r) => r.text.includes("<br /><br />")), "raw text keeps <br />");
    assert(!reviews.some((r) => r.text.includes("unlabelled")), "train/unsup is skipped");
  });
});

Deno.test("loadImdb breaks: 'space' replaces each <br /> with one space", async () => {
  await withTempDir(async (dir) => {
    const entries = miniImdbEntries({ perFolder: 2 });
    const path = await writeTarArchive(join(dir, "mini.tar.gz"), entries);
    const raw = await loadImdb({ source: path });
    const spaced = await loadImdb({ source: path, breaks: "space" });
    assertEquals(spaced.length, raw.length);
    for (let i = 0; i < raw.length; i++) {
      assertEquals(spaced[i].text, raw[i].text.split("<br />").join(" "));
      assert(!spaced[i].text.includes("<br"));
    }
  });
});

Deno.test("loadImdb gives the same reviews from .tar.gz, plain .tar and an extracted folder", async () => {
  await withTempDir(async (dir) => {
    const entries = miniImdbEntries({ perFolder: 4, seed: 3, extras: true });
    const gz = await writeTarArchive(join(dir, "a.tar.gz"), entries);
    const plain = await writeTarArchive(join(dir, "a.tar"), entries, { gzip: false });
    const root = join(dir, "extracted");
    for (const e of entries) {
      const path = join(root, e.name);
      if (e.data === undefined) await Deno.mkdir(path, { recursive: true });
      else {
        await Deno.mkdir(dirname(path), { recursive: true });
        await Deno.writeTextFile(path, e.data as string);
      }
    }
    const fromGz = await loadImdb({ source: gz });
    assertEquals(await loadImdb({ source: plain }), fromGz);
    assertEquals(await loadImdb({ source: root }), fromGz, "parent of aclImdb/");
    assertEquals(await loadImdb({ source: join(root, "aclImdb") }), fromGz, "aclImdb/ itself");
  });
});

Deno.test("loadImdb accepts entries without a top folder or with ./ and reports progress", async () => {
  await withTempDir(async (dir) => {
    const entries = miniImdbEntries({ perFolder: 600 }).map((e) => ({
      ...e,
      name: e.name.replace(/^aclImdb\//, "./"),
    }));
    const path = await writeTarArchive(join(dir, "flat.tar.gz"), entries);
    const seen: number[] = [];
    const reviews = await loadImdb({ source: path, onProgress: (p) => seen.push(p.done) });
    assertEquals(reviews.length, 2400);
    assertEquals(seen.at(-1), 2400);
    assert(seen.length >= 3, `progress reported ${seen.length} times`);
    assert(seen.every((d, i) => i === 0 || d >= seen[i - 1]), "progress never goes back");
  });
});

Deno.test("readTarFiles skips directories and symlinks and gives file bytes unchanged", async () => {
  await withTempDir(async (dir) => {
    const bytes = new Uint8Array(3000).map((_, i) => (i * 37) % 256);
    const path = await writeTarArchive(join(dir, "x.tar.gz"), [
      { name: "d/" },
      { name: "d/a.bin", data: bytes },
      { name: "d/link", type: "symlink", linkname: "a.bin" },
      { name: "d/empty.txt", data: "" },
    ]);
    const got: [string, Uint8Array][] = [];
    await readTarFiles(path, { onFile: (f, b) => got.push([f.name, b.slice()]) });
    assertEquals(got.map(([n]) => n), ["d/a.bin", "d/empty.txt"]);
    assertEquals(got[0][1], bytes);
    assertEquals(got[1][1].length, 0);
  });
});

/** Every path below `dir` (files and folders), relative, sorted. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(sub: string) {
    for await (const e of Deno.readDir(join(dir, sub))) {
      const rel = sub ? `${sub}/${e.name}` : e.name;
      out.push(rel);
      if (e.isDirectory) await walk(rel);
    }
  }
  await walk("");
  return out.sort();
}

Deno.test("hostile tar entry names ('../evil.txt', '/abs.txt', ...) are refused, naming the entry", async () => {
  await withTempDir(async (dir) => {
    // The archive sits two levels down, so that an escape through ".." would land in `dir`.
    const work = join(dir, "a", "b");
    await Deno.mkdir(work, { recursive: true });
    const path = join(work, "hostile.tar.gz");
    const base = miniImdbEntries({ perFolder: 2 });
    const baseFiles = base.filter((e) => e.data !== undefined).map((e) => e.name);
    const hostile: [TarEntry, string][] = [
      [{ name: "../evil.txt", data: "evil" }, `".." component`],
      [{ name: "/abs.txt", data: "evil" }, "absolute path"],
      // Would pass as a review without the check: the loader selects files by name.
      [{ name: "../aclImdb/train/pos/9_9.txt", data: "evil" }, `".." component`],
      [{ name: "aclImdb/../../evil.txt", data: "evil" }, `".." component`],
      [{ name: "./../evil.txt", data: "evil" }, `".." component`],
      [{ name: "aclImdb\\..\\..\\evil.txt", data: "evil" }, "backslashes"],
      // Entries that are never handed over are refused as well.
      [{ name: "../evil/" }, `".." component`],
      [{ name: "/abs-link", type: "symlink", linkname: "/etc/passwd" }, "absolute path"],
    ];
    // The parent of the temp folder is shared with other processes: compare only the names
    // these archives could create there.
    const parent = dirname(dir);
    const ours = async () => {
      const names: string[] = [];
      for await (const e of Deno.readDir(parent)) {
        if (/^(evil|evil\.txt|abs\.txt|abs-link|aclImdb)$/.test(e.name)) names.push(e.name);
      }
      return names.sort();
    };
    const parentBefore = await ours();
    const rootAbs = await Deno.stat("/abs.txt").then(() => true, () => false);
    for (const [entry, why] of hostile) {
      await writeTarArchive(path, [...base, entry]);
      const before = await listing(dir);
      const seen: string[] = [];
      const error = await assertRejects(
        () => readTarFiles(path, { onFile: (f) => seen.push(f.name) }),
        UnsafePathError,
      );
      const named = `${path}: tar entry ${JSON.stringify(entry.name)} is refused`;
      assertStringIncludes(error.message, named);
      assertStringIncludes(error.message, why);
      assertEquals(seen, baseFiles, "only the entries before it were handed over");
      await assertRejects(() => loadImdb({ source: path }), UnsafePathError, named);
      assertEquals(await listing(dir), before, "nothing written");
    }
    assertEquals(await Deno.stat("/abs.txt").then(() => true, () => false), rootAbs);
    assertEquals(await ours(), parentBefore, "nothing written beside the temp folder");
  });
});

/** Writes `bytes` to a file in a temp dir and expects loadImdb to reject naming it. */
async function expectLoadError(
  fileName: string,
  bytes: Uint8Array,
  ...fragments: string[]
): Promise<void> {
  await withTempDir(async (dir) => {
    const path = join(dir, fileName);
    await Deno.writeFile(path, bytes);
    const error = await assertRejects(() => loadImdb({ source: path }), Error);
    assertStringIncludes(error.message, path, "the error names the archive");
    for (const fragment of fragments) assertStringIncludes(error.message, fragment);
  });
}

Deno.test("corrupt gzip: not gzip data, damaged deflate data, bad checksum, cut short", async () => {
  const good = await gzipBytes(await tarBytes(miniImdbEntries({ perFolder: 50 })));
  await expectLoadError(
    "plain-text.tar.gz",
    new TextEncoder().encode("this is not an archive"),
    "not gzip data",
  );
  const notGzip = good.slice();
  notGzip[2] = 99; // compression method must be 8 (deflate)
  await expectLoadError("method.tar.gz", notGzip, "corrupt gzip");
  const damaged = good.slice();
  for (let i = 200; i < 260; i++) damaged[i] ^= 0x5a;
  await expectLoadError("damaged.tar.gz", damaged, "corrupt gzip");
  const badCrc = good.slice();
  badCrc[badCrc.length - 8] ^= 0xff; // CRC-32 of the uncompressed data
  await expectLoadError("crc.tar.gz", badCrc, "corrupt gzip");
  await expectLoadError("short.tar.gz", good.slice(0, good.length - 300), "corrupt gzip");
});

Deno.test("truncated tar: cut inside an entry, and cut cleanly between entries", async () => {
  const tarData = await tarBytes(miniImdbEntries({ perFolder: 3 }));
  // Cut in the middle of the last review's data block: tar-stream reports it.
  const lastData = tarData.length - 1024 - 512 + 10;
  await expectLoadError(
    "mid.tar.gz",
    await gzipBytes(tarData.slice(0, lastData)),
    "truncated",
    "test/neg/2_",
  );
  // Cut exactly at the end of the last entry: only the missing end marker tells.
  await expectLoadError(
    "boundary.tar.gz",
    await gzipBytes(tarData.slice(0, tarData.length - 1024)),
    "end-of-archive marker",
  );
  // Cut inside a header.
  await expectLoadError(
    "header.tar.gz",
    await gzipBytes(tarData.slice(0, 512 * 7 + 100)),
    "truncated",
  );
});

Deno.test("bad review file name is reported with the entry", async () => {
  const base = miniImdbEntries({ perFolder: 2 });
  for (const bad of ["0-9.txt", "0_9.text", "x_9.txt", "0_.txt", "notes.md"]) {
    const entries = [...base, { name: `aclImdb/train/pos/${bad}`, data: "text" }];
    await expectLoadError(
      "badname.tar.gz",
      await gzipBytes(await tarBytes(entries)),
      `aclImdb/train/pos/${bad}`,
      "bad file name",
    );
  }
});

Deno.test("rating outside 1–4 (neg) or 7–10 (pos) is reported with the entry", async () => {
  const base = miniImdbEntries({ perFolder: 2 });
  const cases: [string, string][] = [
    ["aclImdb/train/pos/5_6.txt", "7–10"],
    ["aclImdb/test/pos/5_11.txt", "7–10"],
    ["aclImdb/train/neg/5_7.txt", "1–4"],
    ["aclImdb/test/neg/5_0.txt", "1–4"],
  ];
  for (const [name, range] of cases) {
    const entries = [...base, { name, data: "A review." }];
    await expectLoadError(
      "rating.tar.gz",
      await gzipBytes(await tarBytes(entries)),
      name,
      "rating",
      range,
    );
  }
});

Deno.test("invalid UTF-8 is reported with the entry", async () => {
  const base = miniImdbEntries({ perFolder: 2 });
  const invalid = [
    new Uint8Array([0x41, 0xff, 0x42]), // 0xff never occurs in UTF-8
    new Uint8Array([0x41, 0xc3]), // sequence cut at the end
    new Uint8Array([0xa9, 0x41]), // starts with a continuation byte
    new Uint8Array([0xed, 0xa0, 0x80]), // encoded surrogate
  ];
  for (const data of invalid) {
    const entries = [...base, { name: "aclImdb/test/neg/9_2.txt", data }];
    await expectLoadError(
      "utf8.tar.gz",
      await gzipBytes(await tarBytes(entries)),
      "aclImdb/test/neg/9_2.txt",
      "invalid UTF-8",
    );
  }
  // Valid multi-byte text survives intact.
  await withTempDir(async (dir) => {
    const text = "Amélie — 5★ 🎬 film";
    const path = await writeTarArchive(join(dir, "ok.tar.gz"), [
      ...base,
      { name: "aclImdb/test/neg/9_2.txt", data: text },
    ]);
    const reviews = await loadImdb({ source: path });
    assertEquals(reviews.find((r) => r.split === "test" && r.id === 9)?.text, text);
  });
});

Deno.test("a missing split or label folder is reported with the archive", async () => {
  const base = miniImdbEntries({ perFolder: 2 });
  for (const folder of ["train/pos", "train/neg", "test/pos", "test/neg"]) {
    const entries = base.filter((e) => !e.name.includes(`/${folder}/`));
    await expectLoadError(
      "missing.tar.gz",
      await gzipBytes(await tarBytes(entries)),
      "missing split",
      folder,
    );
  }
});

Deno.test("a duplicated review is reported", async () => {
  const base = miniImdbEntries({ perFolder: 2 });
  const first = base.find((e) => e.name.includes("train/neg/1_"))!;
  const dup = { name: first.name.replace(/1_\d+/, "1_1"), data: "again" };
  const entries = [...base, dup];
  await expectLoadError(
    "dup.tar.gz",
    await gzipBytes(await tarBytes(entries)),
    "duplicate review train/neg/1",
  );
});

Deno.test("a missing local source says where to put the archive", async () => {
  const error = await assertRejects(
    () => loadImdb({ source: "/nonexistent/aclImdb_v1.tar.gz" }),
    Error,
    "/nonexistent/aclImdb_v1.tar.gz does not exist",
  );
  assertStringIncludes(error.message, "aclImdb_v1.tar.gz");
});

Deno.test("offline: an unreachable URL gives one error saying where to put the archive", async () => {
  await withTempDir(async (dir) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close(); // nothing listens there now
    const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
    Deno.env.set("TEXT_AS_IMAGE_DATA", dir);
    try {
      const url = `http://127.0.0.1:${port}/x.tar.gz`;
      const error = await assertRejects(() => loadImdb({ source: url }), Error);
      assertStringIncludes(error.message, `Could not download ${url}`);
      assertStringIncludes(error.message, join(dir, "aclImdb_v1.tar.gz"));
      assertEquals([...Deno.readDirSync(dir)], [], "nothing is left in the cache");
    } finally {
      if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
      else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
    }
  });
});

Deno.test("a URL source is downloaded into the cache folder once and then read from there", async () => {
  await withTempDir(async (dir) => {
    const archive = await gzipBytes(await tarBytes(miniImdbEntries({ perFolder: 3 })));
    let requests = 0;
    const controller = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
      () => {
        requests++;
        return new Response(archive);
      },
    );
    const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
    Deno.env.set("TEXT_AS_IMAGE_DATA", dir);
    try {
      const url = `http://127.0.0.1:${server.addr.port}/files/mini-imdb.tar.gz`;
      const first = await loadImdb({ source: url });
      const second = await loadImdb({ source: url });
      assertEquals(first.length, 12);
      assertEquals(second, first);
      assertEquals(requests, 1);
      assertEquals(await Deno.readFile(join(dir, "mini-imdb.tar.gz")), archive);
    } finally {
      if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
      else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
      controller.abort();
      await server.finished;
    }
  });
});
