/**
 * Checkpoints on disk (`lib/train/checkpoint.ts`): the newest two are kept, each file
 * hashed; a damaged newest checkpoint (a byte changed at the same length, truncated,
 * missing) is logged by name and the previous one is loaded, never the damaged data; both
 * damaged, or of another training stage version, start afresh; a manifest naming a file
 * outside the folder is refused; and a training resumed after its newest checkpoint was
 * damaged ends with the weights and history of an uninterrupted run.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import { ready } from "../lib/tf.ts";
import { sha256Hex } from "../lib/integrity.ts";
import { UnsafePathError } from "../lib/safe_path.ts";
import {
  type Checkpoint,
  loadCheckpoint,
  saveCheckpoint,
  TRAINING_STAGE_VERSION,
} from "../lib/train/checkpoint.ts";
import { type EpochRecord, ImageClassifier, type NamedArrays } from "../lib/train/mod.ts";
import { resumeFixture } from "./_train_fixtures.ts";

/** Small arrays that differ per epoch. */
function arraysOf(epoch: number): NamedArrays {
  return {
    "conv1/kernel": {
      data: Float32Array.from([1, 2, 3, 4, 5, 6], (v) => v * epoch),
      shape: [2, 3],
    },
    "adam/conv1/kernel": { data: Float32Array.from([0.5, -0.25, epoch]), shape: [3] },
    "empty": { data: new Float32Array(0), shape: [0] },
  };
}

function recordOf(epoch: number) {
  return { epochsDone: epoch, history: [{ epoch, loss: 0.125 * epoch }], note: "x" };
}

const tagOf = (epoch: number) => `epoch-${String(epoch).padStart(4, "0")}`;

/** A folder holding the checkpoints of epochs 1 … `epochs`. */
async function savedDir(epochs: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "checkpoint_test_" });
  for (let e = 1; e <= epochs; e++) await saveCheckpoint(dir, tagOf(e), recordOf(e), arraysOf(e));
  return dir;
}

async function files(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** Loads with the messages collected. */
async function load(dir: string, stageVersion?: number) {
  const messages: string[] = [];
  const ck = await loadCheckpoint<ReturnType<typeof recordOf>>(dir, {
    log: (m) => messages.push(m),
    stageVersion,
  });
  return { ck, messages };
}

function assertEpoch(ck: Checkpoint<ReturnType<typeof recordOf>> | undefined, epoch: number) {
  assert(ck, `expected the checkpoint of epoch ${epoch}, got none`);
  assertEquals(ck.tag, tagOf(epoch));
  assertEquals(ck.record, recordOf(epoch));
  assertEquals(ck.arrays, arraysOf(epoch));
}

/** Changes one byte of `path` in place (same length). */
async function flipByte(path: string, at: (bytes: Uint8Array) => number) {
  const bytes = await Deno.readFile(path);
  const i = at(bytes);
  bytes[i] ^= 0x01;
  await Deno.writeFile(path, bytes);
}

/** Changes one digit of the record in a manifest (same length, still valid JSON). */
async function flipRecordDigit(path: string) {
  const text = await Deno.readTextFile(path);
  const at = text.indexOf('"record":{"epochsDone":') + '"record":{"epochsDone":'.length;
  const altered = text.slice(0, at) + (text[at] === "7" ? "8" : "7") + text.slice(at + 1);
  assertEquals(altered.length, text.length);
  JSON.parse(altered);
  await Deno.writeTextFile(path, altered);
}

/** Rewrites a manifest with `edit` applied and a valid hash, as a forger would. */
async function reseal(path: string, edit: (m: Record<string, unknown>) => void) {
  const m = JSON.parse(await Deno.readTextFile(path));
  edit(m);
  // The parsed object keeps "sha256" first: zero it, hash, put the hash in its place.
  const text = JSON.stringify({ ...m, sha256: "0".repeat(64) });
  assert(text.startsWith(`{"sha256":"${"0".repeat(64)}"`));
  const hash = sha256Hex(text);
  await Deno.writeTextFile(path, text.replace("0".repeat(64), hash));
}

Deno.test("checkpoints: the newest two are kept, hashed, and load back intact", async () => {
  const dir = await savedDir(3);
  try {
    assertEquals(await files(dir), [
      "epoch-0002.bin",
      "epoch-0002.json",
      "epoch-0003.bin",
      "epoch-0003.json",
    ]);
    const manifest = JSON.parse(await Deno.readTextFile(join(dir, "epoch-0003.json")));
    assertEquals(manifest.stageVersion, TRAINING_STAGE_VERSION);
    assertEquals(TRAINING_STAGE_VERSION, 2);
    assertEquals(
      manifest.binarySha256,
      sha256Hex(await Deno.readFile(join(dir, "epoch-0003.bin"))),
    );
    const { ck, messages } = await load(dir);
    assertEpoch(ck, 3);
    assertEquals(messages, []);
    // No folder, or an empty one: nothing to resume, nothing to say.
    assertEquals(await load(join(dir, "none")), { ck: undefined, messages: [] });
    await assertRejects(() => saveCheckpoint(dir, "../x", {}, {}), Error, "plain file name");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoints: a damaged newest checkpoint falls back to the previous one", async () => {
  const cases: [string, (dir: string) => Promise<void>, string][] = [
    [
      "an array byte changed at the same length",
      (dir) => flipByte(join(dir, "epoch-0002.bin"), (b) => b.length >> 1),
      "epoch-0002.bin is damaged (content hash",
    ],
    [
      "a digit of the record changed",
      (dir) => flipRecordDigit(join(dir, "epoch-0002.json")),
      "epoch-0002.json is damaged (content hash",
    ],
    [
      "a byte of the manifest changed",
      (dir) => flipByte(join(dir, "epoch-0002.json"), () => 200),
      "epoch-0002.json is damaged",
    ],
    [
      "the arrays truncated",
      async (dir) => await Deno.truncate(join(dir, "epoch-0002.bin"), 8),
      "epoch-0002.bin is damaged (8 bytes, 36 recorded: truncated)",
    ],
    [
      "the arrays missing",
      (dir) => Deno.remove(join(dir, "epoch-0002.bin")),
      "epoch-0002.bin is damaged (missing)",
    ],
    [
      "the manifest missing",
      (dir) => Deno.remove(join(dir, "epoch-0002.json")),
      "epoch-0002.bin has no manifest",
    ],
    [
      "the manifest truncated",
      async (dir) => await Deno.truncate(join(dir, "epoch-0002.json"), 100),
      "epoch-0002.json is damaged (not valid JSON",
    ],
  ];
  for (const [what, damage, message] of cases) {
    const dir = await savedDir(2);
    try {
      await damage(dir);
      const { ck, messages } = await load(dir);
      assertEpoch(ck, 1);
      assert(messages.some((m) => m.includes(message)), `${what}: ${messages.join(" | ")}`);
      assertStringIncludes(messages.at(-1)!, `${join(dir, "epoch-0001.json")}, the newest intact`);
      // The next save replaces the damaged checkpoint and keeps the one it resumed from.
      await saveCheckpoint(dir, tagOf(2), recordOf(2), arraysOf(2));
      assertEquals(await files(dir), [
        "epoch-0001.bin",
        "epoch-0001.json",
        "epoch-0002.bin",
        "epoch-0002.json",
      ]);
      const again = await load(dir);
      assertEpoch(again.ck, 2);
      assertEquals(again.messages, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("checkpoints: both damaged, or of another version, start afresh with messages", async () => {
  const dir = await savedDir(2);
  try {
    await flipByte(join(dir, "epoch-0002.bin"), () => 3);
    await flipByte(join(dir, "epoch-0001.bin"), (b) => b.length - 1);
    const { ck, messages } = await load(dir);
    assertEquals(ck, undefined);
    assert(messages.some((m) => m.includes(`${join(dir, "epoch-0002.bin")} is damaged`)));
    assert(messages.some((m) => m.includes(`${join(dir, "epoch-0001.bin")} is damaged`)));
    assertStringIncludes(messages.at(-1)!, "training starts afresh");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  // Made by another training stage version: ignored.
  const other = await Deno.makeTempDir({ prefix: "checkpoint_test_" });
  try {
    await saveCheckpoint(other, tagOf(1), recordOf(1), arraysOf(1), { stageVersion: 1 });
    const { ck, messages } = await load(other);
    assertEquals(ck, undefined);
    assertStringIncludes(messages[0], `${join(other, "epoch-0001.json")} was made by training`);
    assertStringIncludes(messages[0], `version 1, this code is version ${TRAINING_STAGE_VERSION}`);
    assertEpoch((await load(other, 1)).ck, 1);
  } finally {
    await Deno.remove(other, { recursive: true });
  }

  // The layout before versions were recorded (checkpoint.json + one binary, no hashes).
  const legacy = await Deno.makeTempDir({ prefix: "checkpoint_test_" });
  try {
    await Deno.writeFile(join(legacy, "epoch-0003.bin"), new Uint8Array(8));
    await Deno.writeTextFile(
      join(legacy, "checkpoint.json"),
      JSON.stringify({
        format: "text-as-image-checkpoint",
        version: 1,
        binary: "epoch-0003.bin",
        arrays: [{ name: "w", shape: [2], offset: 0, length: 2 }],
        record: { epochsDone: 3 },
      }),
    );
    const { ck, messages } = await load(legacy);
    assertEquals(ck, undefined);
    assertEquals(messages.length, 2, messages.join(" | "));
    assertStringIncludes(messages[0], "before versions were recorded");
    // A fresh run's first save removes the old layout.
    await saveCheckpoint(legacy, tagOf(1), recordOf(1), arraysOf(1));
    assertEquals(await files(legacy), ["epoch-0001.bin", "epoch-0001.json"]);
  } finally {
    await Deno.remove(legacy, { recursive: true });
  }
});

Deno.test("checkpoints: a manifest naming a file outside its folder is refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "checkpoint_test_" });
  try {
    const dir = join(root, "ck");
    await saveCheckpoint(dir, tagOf(1), recordOf(1), arraysOf(1));
    // A file outside the folder with the right content: only the name keeps it out.
    await Deno.copyFile(join(dir, "epoch-0001.bin"), join(root, "outside.bin"));
    const manifest = join(dir, "epoch-0001.json");
    const original = await Deno.readTextFile(manifest);
    for (const hostile of ["../outside.bin", join(root, "outside.bin"), "sub/../../outside.bin"]) {
      await Deno.writeTextFile(manifest, original);
      await reseal(manifest, (m) => m.binary = hostile);
      const e = await assertRejects(() => load(dir), UnsafePathError, JSON.stringify(hostile));
      assertStringIncludes(e.message, manifest);
    }
    // The same edit without a valid hash is only damage: logged and skipped.
    await Deno.writeTextFile(manifest, original.replace('"epoch-0001.bin"', '"../outside.bin"'));
    const { ck, messages } = await load(dir);
    assertEquals(ck, undefined);
    assertStringIncludes(messages[0], `${manifest} is damaged (content hash`);
    // Array names are keys, never paths: a resealed odd name loads as a key.
    await Deno.writeTextFile(manifest, original);
    await reseal(manifest, (m) => {
      (m.arrays as { name: string }[])[0].name = "../../etc/passwd";
    });
    const odd = await load(dir);
    assertEquals(Object.keys(odd.ck!.arrays)[0], "../../etc/passwd");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

function withoutTimes(history: EpochRecord[]) {
  return history.map(({ trainSeconds: _s, imagesPerSecond: _r, ...rest }) => rest);
}

Deno.test("a training resumed after its newest checkpoint was damaged ends as an uninterrupted run", async () => {
  await ready("wasm");
  const root = await Deno.makeTempDir({ prefix: "checkpoint_test_" });
  const warn = console.warn;
  try {
    const fixture = resumeFixture(join(root, "a"));
    const reference = new ImageClassifier(fixture.options);
    await reference.fit(fixture.train.x, fixture.train.y, fixture.validation);
    const expected = {
      weights: reference.network_!.getWeights(),
      history: withoutTimes(reference.history_),
      epoch: reference.selectedEpoch_,
    };
    reference.dispose();

    const dir = join(root, "b");
    const { train, validation, options } = resumeFixture(dir);
    const controller = new AbortController();
    const first = new ImageClassifier({
      ...options,
      signal: controller.signal,
      onEpoch: (r) => {
        if (r.epoch === 2) controller.abort();
      },
    });
    await assertRejects(() => first.fit(train.x, train.y, validation));
    first.dispose();
    assertEquals(await files(dir), [
      "epoch-0001.bin",
      "epoch-0001.json",
      "epoch-0002.bin",
      "epoch-0002.json",
    ]);
    await flipByte(join(dir, "epoch-0002.bin"), (b) => b.length >> 1);

    const warnings: string[] = [];
    console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
    const resumed = new ImageClassifier(options);
    await resumed.fit(train.x, train.y, validation);
    console.warn = warn;
    assertEquals(resumed.resumedEpochs_, 1);
    assert(
      warnings.some((w) => w.startsWith("tiny: ") && w.includes(join(dir, "epoch-0002.bin"))),
      warnings.join(" | "),
    );
    assertEquals(withoutTimes(resumed.history_), expected.history);
    assertEquals(resumed.selectedEpoch_, expected.epoch);
    assertEquals(resumed.network_!.getWeights(), expected.weights);
    resumed.dispose();
  } finally {
    console.warn = warn;
    await Deno.remove(root, { recursive: true });
  }
});
