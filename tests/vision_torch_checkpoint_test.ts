/**
 * lib/vision/torch: the restricted unpickler, the checkpoint reader against files written by
 * Python's torch (tests/_torch_checkpoint_fixtures.py, which also writes the expected values),
 * and the torchvision downloader against a local HTTP server.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import { sha256File } from "../lib/download.ts";
import { UnsafePathError } from "../lib/safe_path.ts";
import { type CheckpointSource, openCheckpoint } from "../lib/vision/torch/checkpoint.ts";
import {
  HashPrefixError,
  hashPrefixOf,
  torchvisionFile,
  torchvisionFileName,
} from "../lib/vision/torch/download.ts";
import {
  PickleDict,
  PickleTruncatedError,
  unpickle,
  UnpickleRefusedError,
} from "../lib/vision/torch/pickle.ts";
import type { TensorInfo } from "../lib/vision/torch/types.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./_torch_checkpoint_fixtures.py", import.meta.url).pathname;

function hex(text: string): Uint8Array {
  return new Uint8Array(text.match(/../g)!.map((b) => parseInt(b, 16)));
}

async function withTempDir(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("unpickle reads protocol 2 (Python 2 style) and protocol 4 pickles", () => {
  // OrderedDict([["a", 5], ["b", -1]]) as Python 2 pickles it: SHORT_BINSTRING keys, LONG1.
  const py2 = new Uint8Array([
    ...Array.from("\x80\x02ccollections\nOrderedDict\nq\x00]q\x01(]q\x02(", (c) => c.charCodeAt(0)),
    ...[0x55, 0x01, 0x61, 0x4b, 0x05, 0x65, 0x5d, 0x28, 0x55, 0x01, 0x62, 0x8a, 0x01, 0xff],
    ...[0x65, 0x65, 0x85, 0x52, 0x2e],
  ]);
  const old = unpickle(py2, 0, { source: "py2" });
  assertInstanceOf(old.value, PickleDict);
  assertEquals([...old.value.entries], [["a", 5], ["b", -1]]);
  assertEquals(old.end, py2.length);
  // pickle.dumps(OrderedDict([("a", 1.5), ("b", [None, True, "é"])]), protocol=4)
  const p4 = hex(
    "80049540000000000000008c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294" +
      "288c016194473ff80000000000008c0162945d94284e888c02c3a99465752e",
  );
  const v = unpickle(p4, 0, { source: "p4" }).value;
  assertInstanceOf(v, PickleDict);
  assertEquals(v.className, "collections.OrderedDict");
  assertEquals([...v.entries], [["a", 1.5], ["b", [null, true, "é"]]]);
  assertThrows(() => unpickle(p4.subarray(0, 30), 0, { source: "p4" }), PickleTruncatedError);
});

Deno.test("unpickle refuses globals outside the allow-list, naming them", () => {
  for (
    const text of [
      "800263706f7369780a73797374656d0a71002e", /* GLOBAL, protocol 2 */
      "80049514000000000000008c05706f736978948c0673797374656d9493942e", /* STACK_GLOBAL */
    ]
  ) {
    const e = assertThrows(
      () => unpickle(hex(text), 0, { source: "evil.pkl" }),
      UnpickleRefusedError,
    );
    assertEquals(e.global, "posix.system");
    assertStringIncludes(e.message, 'Refusing to load "posix.system" from evil.pkl');
  }
});

/** Runs the Python fixture script into a new folder; fails naming python3-torch without it. */
async function writeFixtures(dir: string): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(PYTHON, { args: [SCRIPT, dir] }).output();
  } catch (e) {
    throw new Error(
      `${PYTHON} could not be run (${(e as Error).message}): install the Debian packages ` +
        `python3 and python3-torch.`,
    );
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr);
    throw new Error(
      `${SCRIPT} failed (it needs Python's torch, Debian package python3-torch):\n${stderr}`,
    );
  }
}

/** Reads `expected.json` of `folder` and the expected float32 values of `keys`. */
async function expected(folder: string) {
  const meta: Record<string, TensorInfo> = JSON.parse(
    await Deno.readTextFile(join(folder, "expected.json")),
  );
  const values = async (key: string) =>
    new Float32Array((await Deno.readFile(join(folder, "expected", `${key}.f32`))).buffer);
  return { meta, values };
}

/** Asserts that `source` lists exactly `folder`'s expected tensors and reads them bit-exactly. */
async function assertMatches(source: CheckpointSource, folder: string, keys?: string[]) {
  const { meta, values } = await expected(folder);
  if (!keys) {
    assertEquals([...source.entries.keys()], Object.keys(meta), source.description);
    for (const [key, info] of source.entries) assertEquals(info, meta[key], key);
  }
  const wanted = keys ?? Object.keys(meta);
  const read = await source.read(wanted);
  assertEquals([...read.keys()], wanted);
  for (const key of wanted) {
    const tensor = read.get(key)!;
    assertEquals({ dtype: tensor.dtype, shape: tensor.shape }, meta[key], key);
    const want = await values(key);
    assertEquals(tensor.data.length, want.length, key);
    // Bit-exact: the same float32 values (and signs of zeros) as torch's .float().
    assertEquals(
      Array.from(new Uint32Array(tensor.data.slice().buffer)),
      Array.from(new Uint32Array(want.buffer)),
      `${source.description}: ${key}`,
    );
  }
}

async function withCheckpoint(path: string, fn: (s: CheckpointSource) => Promise<void>) {
  const source = await openCheckpoint(path);
  try {
    await fn(source);
  } finally {
    source.close();
  }
}

/** A copy of `path` cut to its first `length` bytes. */
async function truncatedCopy(path: string, length: number, out: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(out, bytes.subarray(0, length));
  return out;
}

Deno.test("openCheckpoint reads what Python's torch.save wrote", async (t) => {
  await withTempDir("torch_checkpoint_test_", async (dir) => {
    await writeFixtures(dir);
    const at = (name: string) => join(dir, name);

    await t.step(
      "zip (also zip64) and legacy formats, pickle protocols 2 and 4, every dtype",
      async () => {
        for (const file of ["zip.pt", "zip_p4.pt", "zip64.pt"]) {
          await withCheckpoint(at(file), async (s) => {
            assertEquals(s.format, "zip");
            await assertMatches(s, dir);
          });
        }
        for (const file of ["legacy.pt", "legacy_p4.pt"]) {
          await withCheckpoint(at(file), async (s) => {
            assertEquals(s.format, "legacy");
            await assertMatches(s, dir);
          });
        }
      },
    );

    await t.step("views: transposed, strided slice, row at an offset, scalar, empty", async () => {
      await withCheckpoint(at("zip.pt"), async (s) => {
        assertEquals(s.entries.get("transposed"), { dtype: "float32", shape: [6, 4] });
        assertEquals(s.entries.get("scalar"), { dtype: "float32", shape: [] });
        const read = await s.read(["base", "transposed", "slice", "scalar", "empty"]);
        const base = read.get("base")!.data;
        assertEquals(read.get("transposed")!.data[1], base[6]); // [0][1] of base.t() = base[1][0]
        assertEquals(
          Array.from(read.get("slice")!.data),
          [6, 8, 10, 12, 14, 16].map((i) => base[i]),
        );
        assertEquals(Array.from(read.get("scalar")!.data), [3.5]);
        assertEquals(read.get("empty")!.data.length, 0);
      });
    });

    await t.step("a state_dict nested under 'state_dict' or 'model'", async () => {
      for (const file of ["nested_zip.pt", "nested_legacy.pt"]) {
        await withCheckpoint(at(file), (s) => assertMatches(s, dir));
      }
    });

    await t.step("the tar layout of PyTorch <= 0.1, built from its specification", async () => {
      await withCheckpoint(at("tar.pt"), async (s) => {
        assertEquals(s.format, "tar");
        await assertMatches(s, join(dir, "tar"));
      });
    });

    await t.step("read() of a subset reads only those tensors' bytes", async () => {
      const keys = ["layer3.weight", "layer7.weight"];
      for (const file of ["big_zip.pt", "big_legacy.pt"]) {
        await withCheckpoint(at(file), async (s) => {
          const listed = s.bytesRead;
          assert(listed < 64 * 1024, `${file}: listing read ${listed} bytes`);
          await assertMatches(s, join(dir, "big"), keys);
          const tensorBytes = 2 * 64 * 1024 * 4;
          const extra = s.bytesRead - listed - tensorBytes;
          assert(extra >= 0 && extra < 512, `${file}: read ${extra} bytes beyond the 2 tensors`);
        });
      }
      // Every other storage overwritten with 0xFF (legacy: count headers too): the wanted
      // tensors still read correctly, an overwritten one is reported damaged.
      for (const file of ["big_zip_others_ff.pt", "big_legacy_others_ff.pt"]) {
        await withCheckpoint(at(file), async (s) => {
          await assertMatches(s, join(dir, "big"), keys);
          const e = await assertRejects(() => s.read(["layer0.weight"]));
          assertStringIncludes(e.message, at(file));
          assertStringIncludes(e.message, "damaged");
        });
      }
    });

    await t.step("an unknown key in read() is an error naming it and the file", async () => {
      await withCheckpoint(at("zip.pt"), async (s) => {
        const e = await assertRejects(() => s.read(["f32", "no.such.weight"]));
        assertStringIncludes(e.message, '"no.such.weight"');
        assertStringIncludes(e.message, at("zip.pt"));
      });
    });

    await t.step("truncated files of each format are errors naming the file", async () => {
      const cases: [string, number][] = [
        ["zip.pt", 3000],
        ["legacy.pt", 300], // inside the state_dict pickle
        ["legacy.pt", -10], // inside the last storage
        ["tar.pt", 3000],
      ];
      for (const [file, cut] of cases) {
        const size = (await Deno.stat(at(file))).size;
        const path = await truncatedCopy(at(file), cut < 0 ? size + cut : cut, at(`cut_${file}`));
        const e = await assertRejects(async () => {
          const s = await openCheckpoint(path);
          try {
            await s.read([...s.entries.keys()]);
          } finally {
            s.close();
          }
        });
        assertStringIncludes(e.message, path);
        assertStringIncludes(e.message, "truncated");
      }
    });

    await t.step("a pickle naming os.system is refused, naming the global", async () => {
      for (const file of ["evil_zip.pt", "evil_legacy.pt"]) {
        const e = await assertRejects(() => openCheckpoint(at(file)), UnpickleRefusedError);
        assertEquals(e.global, "posix.system");
        assertStringIncludes(e.message, `Refusing to load "posix.system" from ${at(file)}`);
      }
    });

    await t.step("files that are not state_dict checkpoints", async () => {
      const cases: [string, string][] = [
        ["list.pt", "holds a list or tuple of 1 item, not a state_dict"],
        ["mixed.pt", 'entry "b" is an int, not a tensor'],
        ["plain.pkl", "is not a PyTorch checkpoint"],
        ["notes.txt", "is not a PyTorch checkpoint"],
      ];
      for (const [file, message] of cases) {
        const e = await assertRejects(() => openCheckpoint(at(file)));
        assertStringIncludes(e.message, at(file));
        assertStringIncludes(e.message, message);
      }
    });

    await t.step("read() after close() is an error", async () => {
      const s = await openCheckpoint(at("zip.pt"));
      s.close();
      await assertRejects(() => s.read(["f32"]), Error, "was closed");
    });
  });
});

Deno.test("hashPrefixOf finds the prefix as torch.hub does", () => {
  assertEquals(hashPrefixOf("resnet18-f37072fd.pth"), "f37072fd");
  assertEquals(hashPrefixOf("alexnet-owt-7be5be79.pth"), "7be5be79");
  assertEquals(hashPrefixOf("vgg16_bn-6c64b313.pth"), "6c64b313");
  assertEquals(hashPrefixOf("model.pth"), undefined);
});

Deno.test("torchvisionFileName refuses names that leave the cache folder", () => {
  for (
    const url of [
      "http://h/m/..%2F..%2Fevil-ab.pth",
      "http://h/m/a%5Cb.pth",
      "http://h/m/%2E%2E",
      "http://h/",
    ]
  ) {
    assertThrows(() => torchvisionFileName(url), UnsafePathError);
  }
  assertEquals(
    torchvisionFileName("https://x/models/resnet18-f37072fd.pth"),
    "resnet18-f37072fd.pth",
  );
});

const PAYLOAD = new Uint8Array(200_000).map((_, i) => (i * 7919) % 251);

/** A hash prefix that `digest` does not start with. */
function wrongPrefix(digest: string): string {
  return (digest[0] === "0" ? "1" : "0") + digest.slice(1, 8);
}

Deno.test("torchvisionFile checks local copies against the hash prefix", async () => {
  await withTempDir("torchvision_local_", async (dir) => {
    const source = join(dir, "payload");
    await Deno.writeFile(source, PAYLOAD);
    const digest = await sha256File(source);
    const good = `x-${digest.slice(0, 8)}.pth`;
    const bad = `x-${wrongPrefix(digest)}.pth`;
    await Deno.copyFile(source, join(dir, good));
    await Deno.copyFile(source, join(dir, bad));
    const cacheDir = join(dir, "cache");
    const url = (name: string) => `https://download.pytorch.org/models/${name}`;
    assertEquals(await torchvisionFile(url(good), { cacheDir, localPath: dir }), join(dir, good));
    assertEquals(
      await torchvisionFile(url(good), { cacheDir, localPath: join(dir, good) }),
      join(dir, good),
    );
    const e = await assertRejects(
      () => torchvisionFile(url(bad), { cacheDir, localPath: dir }),
      HashPrefixError,
    );
    assertStringIncludes(e.message, join(dir, bad));
    assertStringIncludes(e.message, `does not start with ${wrongPrefix(digest)}`);
    // A file put in the cache by hand is checked too.
    await Deno.mkdir(cacheDir);
    await Deno.copyFile(source, join(cacheDir, bad));
    await assertRejects(
      () => torchvisionFile(url(bad), { cacheDir, silent: true }),
      HashPrefixError,
    );
    await assertRejects(
      () => torchvisionFile(url("..%2Fescape-00.pth"), { cacheDir, silent: true }),
      UnsafePathError,
    );
  });
});

/** Serves PAYLOAD at /models/<name> (hash prefix in the name), 404 elsewhere. */
async function withServer(fn: (base: string, hits: () => number) => Promise<void>) {
  let hits = 0;
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
    (request) => {
      hits++;
      if (new URL(request.url).pathname.startsWith("/models/")) return new Response(PAYLOAD);
      return new Response("not here", { status: 404 });
    },
  );
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, () => hits);
  } finally {
    controller.abort();
    await server.finished;
  }
}

/** A raw TCP server announcing PAYLOAD's length but closing after a quarter of it. */
async function withCuttingServer(fn: (base: string) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      await conn.read(new Uint8Array(4096)); // the request (small, one read)
      const head = `HTTP/1.1 200 OK\r\nContent-Length: ${PAYLOAD.length}\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      const part = PAYLOAD.subarray(0, PAYLOAD.length / 4);
      for (let written = 0; written < part.length;) {
        written += await conn.write(part.subarray(written));
      }
      conn.close();
    }
  })();
  try {
    await fn(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
  } finally {
    listener.close();
    await served.catch(() => {});
  }
}

Deno.test("torchvisionFile downloads with progress, verifies, renames atomically", async () => {
  await withTempDir("torchvision_download_", async (dir) => {
    const digest = await crypto.subtle.digest("SHA-256", PAYLOAD);
    const prefix = Array.from(
      new Uint8Array(digest).slice(0, 4),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const cacheDir = join(dir, "cache");
    await withServer(async (base, hits) => {
      const progress: { done: number; total?: number }[] = [];
      const name = `net-${prefix}.pth`;
      const path = await torchvisionFile(`${base}/models/${name}`, {
        cacheDir,
        silent: true,
        onProgress: (p) => progress.push({ ...p }),
      });
      assertEquals(path, join(cacheDir, name));
      assertEquals(await Deno.readFile(path), PAYLOAD);
      assert(progress.length >= 1);
      assertEquals(progress.at(-1), { done: PAYLOAD.length, total: PAYLOAD.length });
      assert(progress.every((p, i) => i === 0 || p.done > progress[i - 1].done));
      // Cached: no second request.
      const before = hits();
      assertEquals(
        await torchvisionFile(`${base}/models/${name}`, { cacheDir, silent: true }),
        path,
      );
      assertEquals(hits(), before);

      // A body whose hash does not match its name, a cut connection, a 404: nothing is left.
      const bad = `other-${wrongPrefix(prefix)}.pth`;
      const e = await assertRejects(
        () => torchvisionFile(`${base}/models/${bad}`, { cacheDir, silent: true }),
        HashPrefixError,
      );
      assertStringIncludes(e.message, bad);
      const missing = await assertRejects(() =>
        torchvisionFile(`${base}/nothing/gone-${prefix}.pth`, { cacheDir, silent: true })
      );
      assertStringIncludes(missing.message, "HTTP 404");
    });
    await withCuttingServer(async (base) => {
      const cut = await assertRejects(() =>
        torchvisionFile(`${base}/cut/cut-${prefix}.pth`, { cacheDir, silent: true })
      );
      assertStringIncludes(cut.message, "interrupted");
    });
    const left = [...Deno.readDirSync(cacheDir)].map((e) => e.name).sort();
    assertEquals(left, [`net-${prefix}.pth`, `net-${prefix}.pth.sha256`]);

    // Offline (nothing listens): the error names the file, the URL and where to put it.
    const url = `http://127.0.0.1:9/models/offline-${prefix}.pth`;
    const e = await assertRejects(() => torchvisionFile(url, { cacheDir, silent: true }));
    assertStringIncludes(e.message, `offline-${prefix}.pth`);
    assertStringIncludes(e.message, url);
    assertStringIncludes(e.message, join(cacheDir, `offline-${prefix}.pth`));
  });
});
