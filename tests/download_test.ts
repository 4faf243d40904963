/** lib/download.ts against local servers on 127.0.0.1 (no internet needed). */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { downloadToFile, exists, sha256File } from "../lib/download.ts";
import { Random } from "../lib/random.ts";

const random = new Random(11);
const PAYLOAD = new Uint8Array(300_000).map(() => random.int(256));

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Runs `fn` with a local HTTP server serving PAYLOAD at /ok and /chunked, 404 elsewhere. */
async function withServer(fn: (base: string, hits: () => number) => Promise<void>) {
  let requests = 0;
  const controller = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: () => {} },
    (request) => {
      requests++;
      const path = new URL(request.url).pathname;
      if (path === "/ok") return new Response(PAYLOAD);
      if (path === "/chunked") {
        const parts = [PAYLOAD.subarray(0, 1000), PAYLOAD.subarray(1000)];
        return new Response(ReadableStream.from(parts));
      }
      return new Response("not here", { status: 404 });
    },
  );
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, () => requests);
  } finally {
    controller.abort();
    await server.finished;
  }
}

/**
 * Runs `fn` with a raw TCP server that announces `Content-Length: PAYLOAD.length` but sends
 * only the first half of the body and closes the connection.
 */
async function withCuttingServer(fn: (url: string) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      const buffer = new Uint8Array(4096);
      await conn.read(buffer); // the request (small, one read)
      const head = `HTTP/1.1 200 OK\r\nContent-Length: ${PAYLOAD.length}\r\n` +
        `Content-Type: application/octet-stream\r\n\r\n`;
      await conn.write(new TextEncoder().encode(head));
      const half = PAYLOAD.subarray(0, PAYLOAD.length / 2);
      let written = 0;
      while (written < half.length) written += await conn.write(half.subarray(written));
      conn.close();
    }
  })();
  try {
    await fn(`http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/cut.bin`);
  } finally {
    listener.close();
    await served.catch(() => {});
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "download_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("sha256File matches the FIPS 180-2 test vector and WebCrypto", async () => {
  await withTempDir(async (dir) => {
    const abc = join(dir, "abc");
    await Deno.writeTextFile(abc, "abc");
    assertEquals(
      await sha256File(abc),
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    const big = join(dir, "big");
    await Deno.writeFile(big, PAYLOAD);
    assertEquals(await sha256File(big), await sha256Hex(PAYLOAD));
    assert(await exists(big));
    assert(!(await exists(join(dir, "missing"))));
  });
});

Deno.test("downloadToFile writes the exact bytes, creates folders, leaves no .part", async () => {
  await withServer(async (base) => {
    await withTempDir(async (dir) => {
      for (const path of ["/ok", "/chunked"]) {
        const dest = join(dir, "sub", "folder", `file${path.slice(1)}.bin`);
        const got = await downloadToFile(`${base}${path}`, dest, {
          sha256: await sha256Hex(PAYLOAD),
          silent: true,
        });
        assertEquals(got, dest);
        assertEquals(await Deno.readFile(dest), PAYLOAD);
        assert(!(await exists(`${dest}.part`)), "no .part is left");
      }
    });
  });
});

Deno.test("downloadToFile does not fetch again when the file is already there", async () => {
  await withServer(async (base, hits) => {
    await withTempDir(async (dir) => {
      const dest = join(dir, "file.bin");
      await downloadToFile(`${base}/ok`, dest, { silent: true });
      assertEquals(hits(), 1);
      await downloadToFile(`${base}/ok`, dest, { sha256: await sha256Hex(PAYLOAD), silent: true });
      assertEquals(hits(), 1);
      // A file in place with the wrong content is reported, not silently replaced.
      await Deno.writeTextFile(dest, "something else");
      const sha256 = await sha256Hex(PAYLOAD);
      await assertRejects(
        () => downloadToFile(`${base}/ok`, dest, { sha256 }),
        Error,
        "delete it to download again",
      );
      assertEquals(hits(), 1);
    });
  });
});

Deno.test("a checksum mismatch leaves no file at dest and no .part", async () => {
  await withServer(async (base) => {
    await withTempDir(async (dir) => {
      const dest = join(dir, "file.bin");
      const error = await assertRejects(
        () => downloadToFile(`${base}/ok`, dest, { sha256: "0".repeat(64), silent: true }),
        Error,
        "corrupt",
      );
      assertStringIncludes(error.message, await sha256Hex(PAYLOAD));
      assertEquals([...Deno.readDirSync(dir)], []);
    });
  });
});

Deno.test("an interrupted body leaves only the .part file, never dest", async () => {
  await withCuttingServer(async (url) => {
    await withTempDir(async (dir) => {
      const dest = join(dir, "cut.bin");
      await assertRejects(
        () => downloadToFile(url, dest, { silent: true, offlineHint: "Put it at X." }),
        Error,
        "Put it at X.",
      );
      assert(!(await exists(dest)), "dest must not look complete");
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["cut.bin.part"]);
      const part = await Deno.readFile(`${dest}.part`);
      assert(part.length < PAYLOAD.length, `${part.length} bytes in .part`);
    });
  });
});

Deno.test("HTTP errors and unreachable hosts give one error with the offline hint", async () => {
  await withServer(async (base) => {
    await withTempDir(async (dir) => {
      const hint = "Put the archive at /somewhere/file.bin.";
      const error = await assertRejects(
        () =>
          downloadToFile(`${base}/missing`, join(dir, "a.bin"), {
            offlineHint: hint,
            silent: true,
          }),
        Error,
        "HTTP 404",
      );
      assertStringIncludes(error.message, hint);
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      listener.close();
      const offline = await assertRejects(
        () =>
          downloadToFile(`http://127.0.0.1:${port}/x.tar.gz`, join(dir, "b.bin"), {
            offlineHint: hint,
            silent: true,
          }),
        Error,
        `Could not download http://127.0.0.1:${port}/x.tar.gz`,
      );
      assertStringIncludes(offline.message, hint);
      assertEquals([...Deno.readDirSync(dir)], []);
    });
  });
});
