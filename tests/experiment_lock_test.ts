/**
 * Locks: a lock held by a live process stops a second taker with a message naming what it
 * protects and the owner; a lock left by a process that no longer runs is taken over (and
 * logged); release is idempotent.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { hostname } from "node:os";
import { join } from "node:path";
import { acquireLock, LockedError } from "../lib/experiment/mod.ts";

Deno.test("a live lock stops a second taker; release frees it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "job.json.lock");
    const lock = await acquireLock(path, "job vgg19@42");
    const owner = JSON.parse(await Deno.readTextFile(path));
    assertEquals([owner.pid, owner.host, owner.what], [Deno.pid, hostname(), "job vgg19@42"]);
    const error = await assertRejects(() => acquireLock(path, "job vgg19@42"), LockedError);
    assertStringIncludes(error.message, "job vgg19@42 is being run by process");
    assertStringIncludes(error.message, path);
    await lock.release();
    await lock.release(); // idempotent
    const again = await acquireLock(path, "job vgg19@42");
    await again.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lock whose process no longer runs is taken over, and the log says so", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A process that has exited: its pid is free (or reused much later).
    const child = new Deno.Command(Deno.execPath(), { args: ["eval", "0"] }).spawn();
    const { pid } = child;
    await child.status;
    const path = join(dir, "layout.json.lock");
    await Deno.writeTextFile(
      path,
      JSON.stringify({ pid, host: hostname(), since: "2026-01-01T00:00:00Z", what: "x" }),
    );
    const lines: string[] = [];
    const lock = await acquireLock(path, "the layout", (l) => lines.push(l));
    assertStringIncludes(lines.join("\n"), `process ${pid}, which no longer runs`);
    assertEquals(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);
    await lock.release();
    // Another host's lock cannot be judged from here: it is respected.
    await Deno.writeTextFile(
      path,
      JSON.stringify({ pid: 1, host: `${hostname()}-other`, since: "x", what: "job a@1" }),
    );
    await assertRejects(() => acquireLock(path, "job a@1"), LockedError, "other");
    assert(lines.length === 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
