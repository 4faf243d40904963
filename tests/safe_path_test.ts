/**
 * Names from downloaded or user-supplied descriptions never become paths outside their
 * folder: `safeJoin` / `safeRelative` on hostile names, and hub repo ids and file lists
 * (`lib/embed/hub.ts`) against a fake hub that would serve anything asked for, checking that
 * nothing is requested nor written. Weight shards (`model.json`) are tested in
 * vision_loading_test.ts, tar entries in data_load_test.ts.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { safeJoin, safeRelative, UnsafePathError, unsafeReason } from "../lib/safe_path.ts";
import {
  checkHubId,
  hubCacheFolder,
  hubIdProblem,
  looksLikeHubId,
  resolveModelFolder,
} from "../lib/embed/hub.ts";

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

/** Hostile names and the words their refusal must give as the reason. */
const HOSTILE: [string, string][] = [
  ["../../x.bin", `".." component`],
  ["/etc/passwd", "absolute path"],
  ["a/../../x", `".." component`],
  ["..\\x", "backslashes"],
  ["a\\..\\..\\x", "backslashes"],
  ["./a/../../b", `".." component`],
  ["..", `".." component`],
  ["\\\\server\\share\\x", "absolute path"],
  ["C:\\Windows\\x", "Windows drive"],
  ["C:x", "Windows drive"],
  ["", "empty"],
  [".", "names no file"],
  ["./", "names no file"],
  ["x.bin\0.txt", "NUL byte"],
];

Deno.test("safeJoin refuses each hostile name with an error naming what, the name and why", () => {
  const root = "/srv/cache/model";
  for (const [name, why] of HOSTILE) {
    const what = "model.json of https://example.org/m/model.json: weight shard";
    const error = assertThrows(() => safeJoin(root, name, what), UnsafePathError);
    assertStringIncludes(error.message, `${what} ${JSON.stringify(name)} is refused`);
    assertStringIncludes(error.message, why);
    assertEquals(error.offending, name);
    assertEquals(error.what, what);
    assertThrows(() => safeRelative(name, what), UnsafePathError, why);
    assert(unsafeReason(name) !== null, name);
  }
  // Values read from JSON need not be strings.
  assertStringIncludes(unsafeReason(3)!, "not a string");
  assertThrows(() => safeJoin(root, null as unknown as string, "x"), UnsafePathError, "null");
});

Deno.test("safeJoin keeps safe names: sub-folders, dots inside names, ./ prefixes", () => {
  const root = "/srv/cache/model";
  for (
    const name of ["group1-shard1of2.bin", "onnx/model.onnx", "./a.bin", "a..b", "..a", "a/.b"]
  ) {
    assertEquals(safeJoin(root, name, "x"), join(root, name));
    assertEquals(safeRelative(name, "x"), name);
  }
  // A relative root works the same (resolved against the working directory for the check).
  assertEquals(safeJoin("data/m", "a/b.bin", "x"), join("data/m", "a/b.bin"));
});

Deno.test("hub repo ids: owner/name of the hub's characters, no '..', nothing else", () => {
  for (
    const id of ["Xenova/bert-base-uncased", "google-bert/bert-base-uncased", "a/b", "x_1/y.z"]
  ) {
    assert(looksLikeHubId(id), id);
    assertEquals(hubIdProblem(id), null);
    assertEquals(checkHubId(id), id);
  }
  const hostile: [string, string][] = [
    ["../../x", "3 parts"],
    ["a/b/../../c", "5 parts"],
    ["../x", `owner ".."`],
    ["x/..", `name ".."`],
    ["a/b..c", `holds ".."`],
    ["/etc/passwd", "3 parts"],
    ["a\\..\\b/c", `owner "a\\\\..\\\\b"`],
    [".hidden/x", `owner ".hidden"`],
    ["a/", `name ""`],
    ["x", "1 part"],
    ["a/b\0", `name "b\\u0000"`],
  ];
  for (const [id, why] of hostile) {
    assert(!looksLikeHubId(id), id);
    const error = assertThrows(() => hubCacheFolder(id), UnsafePathError);
    assertStringIncludes(error.message, `hub repo id ${JSON.stringify(id)} is refused`);
    assertStringIncludes(error.message, why);
    assertStringIncludes(error.message, "owner/name");
  }
});

/**
 * Runs `fn` with the data folder at `<tmp>/a/b/data` and `HF_ENDPOINT` at a fake hub that
 * answers every request with a small file (so a download outside the cache would succeed),
 * then checks that `<tmp>` holds nothing new outside the data folder's `models/`.
 */
async function withFakeHub(
  fn: (ctx: { tmp: string; data: string; requests: string[] }) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "safe_path_test_" });
  const data = join(tmp, "a", "b", "data");
  await Deno.mkdir(data, { recursive: true });
  const requests: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    requests.push(new URL(req.url).pathname);
    return new Response("hostile bytes");
  });
  const saved = { data: Deno.env.get("TEXT_AS_IMAGE_DATA"), hf: Deno.env.get("HF_ENDPOINT") };
  Deno.env.set("TEXT_AS_IMAGE_DATA", data);
  Deno.env.set("HF_ENDPOINT", `http://127.0.0.1:${server.addr.port}`);
  try {
    await fn({ tmp, data, requests });
  } finally {
    for (const [k, v] of [["TEXT_AS_IMAGE_DATA", saved.data], ["HF_ENDPOINT", saved.hf]] as const) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

const FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model.onnx"];

Deno.test("resolveModelFolder: a hostile hub repo id is refused, nothing fetched or written", async () => {
  await withFakeHub(async ({ tmp, requests }) => {
    // From a fresh working directory, so that none of these names is an existing folder
    // (an existing folder is the user's own choice and is used as given).
    const cwd = join(tmp, "a", "b", "cwd", "d");
    await Deno.mkdir(cwd, { recursive: true });
    const before = await listing(tmp);
    const previous = Deno.cwd();
    Deno.chdir(cwd);
    try {
      for (const id of ["../../x", "a/b/../../c", "../x", "a/b..c", "/etc/passwd/x"]) {
        assert(!existsSync(resolve(id)), id);
        const error = await assertRejects(() => resolveModelFolder(id, FILES, { silent: true }));
        assertStringIncludes(error.message, `${JSON.stringify(id)} is not a hub repo id`);
        assertStringIncludes(error.message, `Model folder ${resolve(id)} does not exist`);
      }
    } finally {
      Deno.chdir(previous);
    }
    assertEquals(requests, [], "nothing requested from the hub");
    assertEquals(await listing(tmp), before, "nothing written");
  });
});

Deno.test("resolveModelFolder: hostile file names are refused for hub ids and folders", async () => {
  await withFakeHub(async ({ tmp, data, requests }) => {
    // Files a traversal would find (reading) or overwrite (downloading).
    await Deno.writeTextFile(join(tmp, "a", "x.bin"), "outside");
    await Deno.mkdir(join(data, "models"), { recursive: true });
    await Deno.writeTextFile(join(data, "models", "x.bin"), "outside");
    const local = join(tmp, "a", "b", "local");
    await Deno.mkdir(local, { recursive: true });
    await Deno.writeTextFile(join(local, "config.json"), "{}");
    const before = await listing(tmp);
    for (const [name, why] of HOSTILE.slice(0, 6)) {
      const files = ["config.json", name];
      const hub = await assertRejects(
        () => resolveModelFolder("someone/tiny", files, { silent: true }),
        UnsafePathError,
      );
      assertStringIncludes(hub.message, `hub model someone/tiny: file ${JSON.stringify(name)}`);
      assertStringIncludes(hub.message, why);
      // A local folder: "../../x.bin" would reach a file that exists and pass as present.
      const error = await assertRejects(() => resolveModelFolder(local, files), UnsafePathError);
      assertStringIncludes(error.message, `model folder ${local}: file ${JSON.stringify(name)}`);
    }
    assertEquals(requests, [], "nothing requested from the hub");
    assertEquals(await listing(tmp), before, "nothing written");
    assertEquals(await Deno.readTextFile(join(tmp, "a", "x.bin")), "outside");
  });
});

Deno.test("resolveModelFolder: a valid hub id still downloads into its cache folder", async () => {
  await withFakeHub(async ({ data, requests }) => {
    const folder = await resolveModelFolder("someone/tiny", ["onnx/model.onnx"], { silent: true });
    assertEquals(folder, join(data, "models", "someone", "tiny"));
    assertEquals(hubCacheFolder("someone/tiny"), folder);
    assertEquals(await Deno.readTextFile(join(folder, "onnx", "model.onnx")), "hostile bytes");
    assert(requests.includes("/someone/tiny/resolve/main/onnx/model.onnx"), String(requests));
  });
});

Deno.test("UnsafePathError is an Error with a readable message for odd names", () => {
  const error = new UnsafePathError("what", "a\nb", "why");
  assertInstanceOf(error, Error);
  assertEquals(error.name, "UnsafePathError");
  assertStringIncludes(error.message, `what "a\\nb" is refused: why.`);
});
