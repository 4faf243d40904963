/**
 * The paper's five networks end to end as registered backbones: torchvision-architecture
 * checkpoints written by PyTorch (tools/make_torchvision_fixtures.py, random weights with
 * non-trivial BatchNorm statistics) in the zip format and, for the smaller networks, the
 * legacy format; read by the checkpoint reader through `loadBackbone` (a { folder } source,
 * after an unreachable { url } source), and matched against PyTorch's eval-mode outputs at
 * 150×150 and 50×50. Fixtures are made per network at test time and deleted after it (the
 * complete random VGG16 alone is 528 MB).
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ready, tf } from "../lib/tf.ts";
import {
  BACKBONES,
  type BackboneSpec,
  loadableBackbones,
  loadBackbone,
  randomlyInitialisedBackbone,
  torchvisionWeightsDigest,
} from "../lib/vision/mod.ts";
import { hasTorchvisionCheckpoint } from "../lib/vision/torchvision_backbone.ts";
import { randomTorchvisionStateDict } from "../lib/vision/random_init.ts";
import { portableMessage } from "../lib/experiment/config.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../tools/make_torchvision_fixtures.py", import.meta.url));
/** A URL nothing listens on: the download fails at once and the next source is tried. */
const DEAD = "http://127.0.0.1:9/models";

await ready();

async function fixtures(dir: string, arch: string, formats: string): Promise<void> {
  const out = await new Deno.Command(PYTHON, {
    args: [SCRIPT, dir, "--archs", arch, "--formats", formats, "--scope", "slice"],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((e) => {
    throw new Error(`${PYTHON} is needed (install python3-torch python3-torchvision): ${e}`);
  });
  if (!out.success) {
    throw new Error(
      `${SCRIPT} failed; install Debian's python3-torch python3-torchvision:\n` +
        new TextDecoder().decode(out.stderr).slice(-1500),
    );
  }
}

/** Renames `file` to `<arch>-<sha256 prefix>.pth`, as torchvision names its files. */
async function published(dir: string, file: string, arch: string): Promise<string> {
  const bytes = await Deno.readFile(join(dir, file));
  const name = `${arch}-${createHash("sha256").update(bytes).digest("hex").slice(0, 8)}.pth`;
  await Deno.rename(join(dir, file), join(dir, name));
  return name;
}

function read(dir: string, file: string, shape: number[]): tf.Tensor {
  const bytes = Deno.readFileSync(join(dir, file));
  return tf.tensor(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), shape);
}

function relativeError(actual: tf.Tensor, expected: tf.Tensor): number {
  return tf.tidy(() =>
    tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0] /
    tf.max(tf.abs(expected)).dataSync()[0]
  );
}

/** A test spec: the registry's entry for `arch`, its checkpoint in `dir` under `name`. */
function specFor(arch: string, dir: string, name: string): BackboneSpec {
  return {
    ...BACKBONES[arch],
    name: `test_${arch}`,
    sources: [{ url: `${DEAD}/${name}` }, { folder: dir }],
  };
}

const NETWORKS: [string, string][] = [
  ["shufflenet_v2", "zip,legacy"],
  ["resnext50_32x4d", "zip,legacy"],
  ["alexnet", "zip"],
  ["wide_resnet50_2", "zip"],
  ["vgg16", "zip"],
];

for (const [arch, formats] of NETWORKS) {
  Deno.test(`${arch}: loadBackbone reads the ${formats} checkpoint(s) and matches PyTorch`, async () => {
    const dir = await Deno.makeTempDir({ prefix: `tv-${arch}-` });
    const data = await Deno.makeTempDir({ prefix: "tv-data-" });
    const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
    Deno.env.set("TEXT_AS_IMAGE_DATA", data);
    try {
      await fixtures(dir, arch, formats);
      const cases = JSON.parse(await Deno.readTextFile(join(dir, `${arch}.cases.json`)));
      for (const format of formats.split(",")) {
        const file = format === "zip" ? `${arch}.pth` : `${arch}.legacy.pth`;
        const size = (await Deno.stat(join(dir, file))).size;
        const name = await published(dir, file, arch);
        const backbone = await loadBackbone(specFor(arch, dir, name));
        try {
          assertStringIncludes(backbone.loadedFrom, name);
          // Only the slice's tensors are read (the whole network is many times larger).
          assert(
            backbone.weightReport.bytes < size / 2,
            `${backbone.weightReport.bytes} of ${size}`,
          );
          for (const c of cases) {
            const x = read(dir, c.input.file, c.input.shape) as tf.Tensor4D;
            const expected = read(dir, c.output.file, c.output.shape);
            const y = backbone.forward(x, { preprocess: false });
            assertEquals(y.shape, expected.shape);
            const err = relativeError(y, expected);
            assert(err < 1e-4, `${arch} ${format} ${c.name}: relative error ${err}`);
            tf.dispose([x, y, expected]);
          }
        } finally {
          backbone.dispose();
        }
        // The job key's weight digest is the file's SHA-256.
        const digest = createHash("sha256").update(await Deno.readFile(join(dir, name)))
          .digest("hex");
        assertEquals(await torchvisionWeightsDigest(specFor(arch, dir, name)), digest);
        await Deno.remove(join(dir, name));
      }
    } finally {
      if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
      else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(data, { recursive: true });
    }
  });
}

Deno.test("torchvision backbones: offline, wrong architecture, wrong hash, default plan", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tv-errors-" });
  const data = await Deno.makeTempDir({ prefix: "tv-data-" });
  const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
  Deno.env.set("TEXT_AS_IMAGE_DATA", data);
  try {
    // Offline without the file: one error naming it and the folder to put it in.
    const offline = {
      ...BACKBONES.alexnet,
      name: "t_off",
      sources: [{ url: `${DEAD}/x-12ab.pth` }],
    };
    const e = await assertRejects(() => loadBackbone(offline));
    assertStringIncludes(e.message, 'The checkpoint file x-12ab.pth of "t_off" is not available');
    assertStringIncludes(e.message, `download it from ${DEAD}/x-12ab.pth and put it in`);
    assertStringIncludes(e.message, join(data, "models", "torchvision"));
    // As a run's "not run" note: the same words, with no machine path.
    const note = portableMessage(e.message);
    assert(!note.includes(data), note);
    assertStringIncludes(note, "put it in <data>/models/torchvision");
    assertEquals(await torchvisionWeightsDigest(offline), "absent:x-12ab.pth");
    // The registered paper networks are not in the default plan until their file is here.
    assert(!loadableBackbones(hasTorchvisionCheckpoint).includes("alexnet"));
    await Deno.mkdir(join(data, "models", "torchvision"), { recursive: true });
    await Deno.writeTextFile(join(data, "models", "torchvision", "alexnet-owt-4df8aa71.pth"), "");
    assert(loadableBackbones(hasTorchvisionCheckpoint).includes("alexnet"));

    await fixtures(dir, "shufflenet_v2", "zip");
    const name = await published(dir, "shufflenet_v2.pth", "shufflenet_v2");
    // A checkpoint of another architecture: the strict key check lists what is wrong.
    const wrong = await assertRejects(() =>
      loadBackbone({ ...specFor("resnext50_32x4d", dir, name), name: "t_wrong" })
    );
    assertStringIncludes(wrong.message, "missing");
    // A file whose content does not match the hash prefix in its name is refused.
    await Deno.rename(join(dir, name), join(dir, "shufflenet_v2-00000000.pth"));
    const bad = await assertRejects(() =>
      loadBackbone(specFor("shufflenet_v2", dir, "shufflenet_v2-00000000.pth"))
    );
    assertStringIncludes(bad.message, "shufflenet_v2-00000000.pth");
  } finally {
    if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
    else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("random weights for a torchvision network: PyTorch's fan-in, groups kept, per seed", async () => {
  // ResNeXt's grouped 3×3 conv: weights [128, 4, 3, 3], He normal over 4·3·3 = 36.
  const state = randomTorchvisionStateDict("resnext50_32x4d", 5);
  const w = (await state.read(["layer1.0.conv2.weight"])).get("layer1.0.conv2.weight")!;
  assertEquals(w.shape, [128, 4, 3, 3]);
  const sd = Math.sqrt(w.data.reduce((s, v) => s + v * v, 0) / w.data.length);
  assert(Math.abs(sd - Math.sqrt(2 / 36)) < 0.02, `std ${sd}`);
  const bn = await state.read(["bn1.weight", "bn1.running_var", "bn1.running_mean"]);
  assertEquals([...bn.get("bn1.weight")!.data].every((v) => v === 1), true);
  assertEquals([...bn.get("bn1.running_var")!.data].every((v) => v === 1), true);
  assertEquals([...bn.get("bn1.running_mean")!.data].every((v) => v === 0), true);

  // Through the ablation's entry point: its own name per seed, no checkpoint read.
  const a = await randomlyInitialisedBackbone("shufflenet_v2", 1);
  const b = await randomlyInitialisedBackbone("shufflenet_v2", 1);
  const c = await randomlyInitialisedBackbone("shufflenet_v2", 2);
  try {
    assertEquals(a.name, "shufflenet_v2_random_init_s1");
    const x = tf.randomNormal([1, 50, 50, 3], 0, 1, "float32", 3) as tf.Tensor4D;
    const [ya, yb, yc] = [a, b, c].map((n) => n.forward(x, { preprocess: false }));
    assertEquals(ya.shape, [1, 7, 7, 116]);
    assertEquals(relativeError(ya, yb), 0);
    assert(relativeError(ya, yc) > 0.1);
    assert(ya.dataSync().every(Number.isFinite));
    tf.dispose([x, ya, yb, yc]);
  } finally {
    for (const n of [a, b, c]) n.dispose();
  }
});
