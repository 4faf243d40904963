/**
 * Loading and slicing mechanics on a small model written by the test (no shared folder
 * needed): folder and URL sources, slicing before weights, absent shards, the registry.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { join } from "node:path";
import { ready, tf } from "../lib/tf.ts";
import {
  BACKBONES,
  backboneSpecFromJSON,
  FolderModelStore,
  getBackboneSpec,
  loadableBackbones,
  loadBackbone,
  preprocessImages,
  preprocessingLayer,
  registerBackbone,
  resizeBilinear,
  saveLayersModel,
  toThreeChannels,
  upsampleNearest,
  UrlModelStore,
} from "../lib/vision/mod.ts";
import type { FeatureBatch } from "../lib/types.ts";
import { UnsafePathError } from "../lib/safe_path.ts";

await ready();

/** A small functional net with a BatchNorm, a residual add and a dense head. */
function makeNet(): tf.LayersModel {
  const input = tf.input({ shape: [null, null, 3], name: "img" });
  const c1 = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: "same", name: "c1" })
    .apply(input) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: "bn1" }).apply(c1) as tf.SymbolicTensor;
  const r1 = tf.layers.reLU({ name: "r1" }).apply(bn) as tf.SymbolicTensor;
  const p1 = tf.layers.maxPooling2d({ poolSize: 2, name: "p1" }).apply(r1) as tf.SymbolicTensor;
  const c2 = tf.layers.conv2d({ filters: 16, kernelSize: 3, padding: "same", name: "c2" })
    .apply(p1) as tf.SymbolicTensor;
  const c2b = tf.layers.conv2d({ filters: 16, kernelSize: 1, name: "c2b" })
    .apply(p1) as tf.SymbolicTensor;
  const sum = tf.layers.add({ name: "sum" }).apply([c2, c2b]) as tf.SymbolicTensor;
  const r2 = tf.layers.reLU({ name: "r2" }).apply(sum) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: "gap" }).apply(r2) as tf.SymbolicTensor;
  const fc = tf.layers.dense({ units: 40, name: "fc" }).apply(gap) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: fc, name: "synthetic" });
  // Non-trivial BatchNorm statistics, so that a wrong or missing load shows.
  const bnLayer = model.getLayer("bn1");
  bnLayer.setWeights([
    tf.randomUniform([8], 0.5, 1.5, "float32", 1),
    tf.randomUniform([8], -0.5, 0.5, "float32", 2),
    tf.randomUniform([8], -0.2, 0.2, "float32", 3),
    tf.randomUniform([8], 0.5, 2, "float32", 4),
  ]);
  return model;
}

function intermediate(model: tf.LayersModel, layer: string): tf.LayersModel {
  return tf.model({ inputs: model.inputs, outputs: model.getLayer(layer).output });
}

function assertClose(actual: tf.Tensor, expected: tf.Tensor, tol = 1e-5) {
  assertEquals(actual.shape, expected.shape);
  const a = actual.dataSync(), e = expected.dataSync();
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i] - e[i]) > tol * (1 + Math.abs(e[i]))) {
      throw new Error(`value ${i}: ${a[i]} vs ${e[i]}`);
    }
  }
}

const net = makeNet();
const x = tf.randomUniform([2, 20, 20, 3], 0, 1, "float32", 7) as tf.Tensor4D;

async function savedCopy(options: { shardBytes?: number; groupPerLayer?: boolean }) {
  const folder = await Deno.makeTempDir({ prefix: "vision_net_" });
  const json = await saveLayersModel(net, folder, options);
  return { folder, json };
}

Deno.test("complete model from a folder computes what the original computes", async () => {
  const { folder } = await savedCopy({ shardBytes: 1000 });
  const backbone = await loadBackbone({
    name: "synthetic_full",
    description: "",
    sources: [{ folder }],
    preprocessing: "unit",
    sliceLayer: null,
    standsInFor: [],
  });
  assertClose(backbone.model.predict(x) as tf.Tensor, net.predict(x) as tf.Tensor);
  assertEquals(backbone.outputShape([20, 20]), [1, 1, 40]);
  backbone.dispose();
  await Deno.remove(folder, { recursive: true });
});

Deno.test("a slice equals the original's intermediate output and reads only its shards", async () => {
  const { folder, json } = await savedCopy({ groupPerLayer: true, shardBytes: 1024 });
  const backbone = await loadBackbone({
    name: "synthetic_r2",
    description: "",
    sources: [{ folder }],
    preprocessing: "unit",
    sliceLayer: "r2",
    standsInFor: [],
  });
  assertClose(
    backbone.model.predict(x) as tf.Tensor,
    intermediate(net, "r2").predict(x) as tf.Tensor,
  );
  assertEquals(backbone.layerNames.includes("fc"), false);
  const fcGroup = json.weightsManifest.find((g) => g.weights[0].name.startsWith("fc/"))!;
  for (const path of fcGroup.paths) {
    assertEquals(backbone.weightReport.shardsRead.includes(path), false);
  }
  // any input size, channels-last
  for (const size of [9, 50, 150]) {
    const y = backbone.model.predict(tf.zeros([1, size, size, 3])) as tf.Tensor;
    assertEquals(y.shape, [1, Math.floor(size / 2), Math.floor(size / 2), 16]);
    assertEquals(backbone.outputShape([size, size]), [
      Math.floor(size / 2),
      Math.floor(size / 2),
      16,
    ]);
  }
  backbone.dispose();
  await Deno.remove(folder, { recursive: true });
});

Deno.test("absent shards: fine beyond the slice, an error naming the file within it", async () => {
  const { folder, json } = await savedCopy({ groupPerLayer: true, shardBytes: 1024 });
  const fcGroup = json.weightsManifest.find((g) => g.weights[0].name.startsWith("fc/"))!;
  for (const path of fcGroup.paths) await Deno.remove(join(folder, path));
  const spec = {
    name: "synthetic_missing",
    description: "",
    sources: [{ folder }],
    preprocessing: "unit" as const,
    sliceLayer: "r2",
    standsInFor: [],
  };
  const sliced = await loadBackbone(spec);
  assertClose(
    sliced.model.predict(x) as tf.Tensor,
    intermediate(net, "r2").predict(x) as tf.Tensor,
  );
  sliced.dispose();
  const error = await assertRejects(() => loadBackbone({ ...spec, sliceLayer: null }));
  assertStringIncludes(error.message, join(folder, fcGroup.paths[0]));
  assertStringIncludes(error.message, "is missing");

  // The middle shard of c2's kernel: slicing before c2 works, slicing after it names the file.
  const c2Group = json.weightsManifest.find((g) => g.weights[0].name === "c2/kernel")!;
  assert(c2Group.paths.length >= 3, "c2's kernel should span several shards");
  await Deno.remove(join(folder, c2Group.paths[1]));
  const early = await loadBackbone({ ...spec, sliceLayer: "p1" });
  assertClose(early.model.predict(x) as tf.Tensor, intermediate(net, "p1").predict(x) as tf.Tensor);
  early.dispose();
  const error2 = await assertRejects(() => loadBackbone(spec));
  assertStringIncludes(error2.message, c2Group.paths[1]);
  await Deno.remove(folder, { recursive: true });
});

Deno.test("an absent shard between needed ones in one group is skipped", async () => {
  // One group ordered c1, fc (not needed, 2,600 bytes), then the rest: the shards that hold
  // only fc bytes are deleted, and their sizes must be inferred.
  const folder = await Deno.makeTempDir({ prefix: "vision_gap_" });
  const named = net.weights.map((w) => ({ name: w.originalName, tensor: w.read() }));
  const order = [
    ...named.filter((w) => w.name.startsWith("c1/")),
    ...named.filter((w) => w.name.startsWith("fc/")),
    ...named.filter((w) => !w.name.startsWith("c1/") && !w.name.startsWith("fc/")),
  ];
  const { data, specs } = await tf.io.encodeWeights(order);
  const bytes = new Uint8Array(data);
  const shard = 256;
  const count = Math.ceil(bytes.length / shard);
  const paths = Array.from({ length: count }, (_, i) => `g1-shard${i + 1}of${count}`);
  const c1Bytes = (3 * 3 * 3 * 8 + 8) * 4;
  const fcEnd = c1Bytes + (16 * 40 + 40) * 4;
  const removed: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i * shard >= c1Bytes && (i + 1) * shard <= fcEnd) {
      removed.push(paths[i]);
      continue;
    }
    await Deno.writeFile(join(folder, paths[i]), bytes.subarray(i * shard, (i + 1) * shard));
  }
  assert(removed.length >= 5, `expected several fc-only shards, got ${removed.length}`);
  await Deno.writeTextFile(
    join(folder, "model.json"),
    JSON.stringify({
      modelTopology: net.toJSON(null, false),
      weightsManifest: [{ paths, weights: specs }],
    }),
  );
  const backbone = await loadBackbone({
    name: "synthetic_gap",
    description: "",
    sources: [{ folder }],
    preprocessing: "unit",
    sliceLayer: "r2",
    standsInFor: [],
  });
  assertClose(
    backbone.model.predict(x) as tf.Tensor,
    intermediate(net, "r2").predict(x) as tf.Tensor,
  );
  for (const path of removed) assertEquals(backbone.weightReport.shardsRead.includes(path), false);
  backbone.dispose();
  await Deno.remove(folder, { recursive: true });
});

Deno.test("a URL source downloads model.json and only the needed shards, once", async () => {
  const { folder, json } = await savedCopy({ groupPerLayer: true, shardBytes: 1024 });
  const requests: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const file = new URL(req.url).pathname.slice(1);
    requests.push(file);
    try {
      return new Response(await Deno.readFile(join(folder, file)));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  const cache = await Deno.makeTempDir({ prefix: "vision_data_" });
  const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
  Deno.env.set("TEXT_AS_IMAGE_DATA", cache);
  try {
    const url = `http://127.0.0.1:${server.addr.port}/model.json`;
    // registered from JSON, as a user with internet would do
    const spec = backboneSpecFromJSON(
      JSON.stringify({ name: "synthetic_url", source: url, slice: "p1", preprocessing: "unit" }),
    );
    assertEquals(BACKBONES.synthetic_url.sliceLayer, "p1");
    const backbone = await loadBackbone("synthetic_url");
    assertClose(
      backbone.model.predict(x) as tf.Tensor,
      intermediate(net, "p1").predict(x) as tf.Tensor,
    );
    backbone.dispose();
    const needed = json.weightsManifest
      .filter((g) => /^(c1|bn1)\//.test(g.weights[0].name))
      .flatMap((g) => g.paths);
    assertEquals(requests.sort(), ["model.json", ...needed].sort());
    const count = requests.length;
    (await loadBackbone(spec)).dispose();
    assertEquals(requests.length, count, "a second load must come from the cache");
  } finally {
    if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
    else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
    await server.shutdown();
    delete BACKBONES.synthetic_url;
    await Deno.remove(cache, { recursive: true });
    await Deno.remove(folder, { recursive: true });
  }
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

/** Weight shard names a hostile `model.json` may give, and the reason each is refused for. */
const HOSTILE_SHARDS: [string, string][] = [
  ["../../x.bin", `".." component`],
  ["/etc/passwd", "absolute path"],
  ["a/../../x", `".." component`],
  ["..\\x", "backslashes"],
];

Deno.test("hostile shard names in model.json are refused: URL store, nothing fetched or written", async () => {
  const { folder, json } = await savedCopy({ shardBytes: 1000 });
  // The caches sit two levels down, so that an escape through ".." would land in `tmp`.
  const tmp = await Deno.makeTempDir({ prefix: "vision_hostile_url_" });
  await Deno.mkdir(join(tmp, "a", "b"), { recursive: true });
  await Deno.writeTextFile(join(tmp, "a", "x.bin"), "bait");
  const requests: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const m = /^\/m(\d+)\/model\.json$/.exec(path);
    if (!m) return new Response(new Uint8Array(1000)); // any shard "exists" on this server
    const hostile = structuredClone(json);
    hostile.weightsManifest[0].paths[0] = HOSTILE_SHARDS[Number(m[1])][0];
    return new Response(JSON.stringify(hostile));
  });
  const previous = Deno.env.get("TEXT_AS_IMAGE_DATA");
  Deno.env.set("TEXT_AS_IMAGE_DATA", join(tmp, "a", "b", "data"));
  const before = await listing(tmp);
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    for (const [i, [name, why]] of HOSTILE_SHARDS.entries()) {
      const url = `${base}/m${i}/model.json`;
      const what = `model.json of ${url}: weight shard ${JSON.stringify(name)} is refused`;
      const store = new UrlModelStore(url, { cacheDir: join(tmp, "a", "b", `cache${i}`) });
      const error = await assertRejects(() => store.readModelJson(), UnsafePathError);
      assertStringIncludes(error.message, what);
      assertStringIncludes(error.message, why);
      // Asked for directly, the shard is refused too (not reported as merely absent).
      await assertRejects(() => store.readShard(name), UnsafePathError, what);
      await assertRejects(() => store.shardSize(name), UnsafePathError, what);
      assertThrows(() => store.shardLocation(name), UnsafePathError, what);
      // Through a backbone: the error lists the source and the refusal.
      const load = await assertRejects(() =>
        loadBackbone({
          name: `synthetic_hostile_${i}`,
          description: "",
          sources: [{ url }],
          preprocessing: "unit",
          sliceLayer: null,
          standsInFor: [],
        })
      );
      assertStringIncludes(load.message, "No source of this model could be opened");
      assertStringIncludes(load.message, what);
    }
    assertEquals(requests.filter((r) => !r.endsWith("/model.json")), [], "no shard fetched");
    const added = (await listing(tmp)).filter((p) => !before.includes(p));
    assert(
      added.every((p) => /^a\/b\/(cache\d|data)(\/|$)/.test(p) && !p.endsWith(".bin")),
      `only caches of model.json were written: ${added.join(", ")}`,
    );
    assert(added.some((p) => p.endsWith("/model.json")), "model.json was downloaded");
    assertEquals(await Deno.readTextFile(join(tmp, "a", "x.bin")), "bait");
  } finally {
    if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_DATA");
    else Deno.env.set("TEXT_AS_IMAGE_DATA", previous);
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("hostile shard names in model.json are refused: folder and shared sources", async () => {
  const { folder, json } = await savedCopy({ shardBytes: 1000 });
  const tmp = await Deno.makeTempDir({ prefix: "vision_hostile_folder_" });
  // A real model outside the shared folder and a shard-sized bait beside the model folders.
  const outside = join(tmp, "a", "outside");
  await Deno.mkdir(join(tmp, "a", "b", "shared"), { recursive: true });
  await Deno.mkdir(outside);
  for await (const e of Deno.readDir(folder)) {
    await Deno.copyFile(join(folder, e.name), join(outside, e.name));
  }
  await Deno.writeFile(
    join(tmp, "a", "x.bin"),
    await Deno.readFile(join(folder, json.weightsManifest[0].paths[0])),
  );
  const previous = Deno.env.get("TEXT_AS_IMAGE_SHARED");
  Deno.env.set("TEXT_AS_IMAGE_SHARED", join(tmp, "a", "b", "shared"));
  try {
    for (const [i, [name, why]] of HOSTILE_SHARDS.entries()) {
      const dir = join(tmp, "a", "b", `model${i}`);
      await Deno.mkdir(dir);
      const hostile = structuredClone(json);
      hostile.weightsManifest[0].paths[0] = name;
      await Deno.writeTextFile(join(dir, "model.json"), JSON.stringify(hostile));
      const what = `model.json in ${dir}: weight shard ${JSON.stringify(name)} is refused`;
      const store = new FolderModelStore(dir);
      const error = await assertRejects(() => store.readModelJson(), UnsafePathError, what);
      assertStringIncludes(error.message, why);
      await assertRejects(() => store.readShard(name), UnsafePathError, what);
      await assertRejects(() => store.shardSize(name), UnsafePathError, what);
      const load = await assertRejects(() =>
        loadBackbone({
          name: `synthetic_hostile_folder_${i}`,
          description: "",
          sources: [{ folder: dir }],
          preprocessing: "unit",
          sliceLayer: null,
          standsInFor: [],
        })
      );
      assertStringIncludes(load.message, what);
    }
    // A { shared: [...] } source whose parts climb out of the shared folder, to a real model.
    for (const parts of [["..", "..", "outside"], ["models/../../../outside"], [outside]]) {
      const load = await assertRejects(() =>
        loadBackbone({
          name: "synthetic_hostile_shared",
          description: "",
          sources: [{ shared: parts }],
          preprocessing: "unit",
          sliceLayer: null,
          standsInFor: [],
        })
      );
      assertStringIncludes(load.message, `model source { shared: ${JSON.stringify(parts)} }`);
      assertStringIncludes(load.message, "is refused");
    }
  } finally {
    if (previous === undefined) Deno.env.delete("TEXT_AS_IMAGE_SHARED");
    else Deno.env.set("TEXT_AS_IMAGE_SHARED", previous);
    await Deno.remove(tmp, { recursive: true });
    await Deno.remove(folder, { recursive: true });
  }
});

Deno.test("an unknown slice layer is an error listing the layers", async () => {
  const { folder } = await savedCopy({});
  const error = await assertRejects(() =>
    loadBackbone({
      name: "synthetic_bad",
      description: "",
      sources: [{ folder }],
      preprocessing: "unit",
      sliceLayer: "block9_conv9",
      standsInFor: [],
    })
  );
  assertStringIncludes(error.message, "block9_conv9");
  assertStringIncludes(error.message, "c2b");
  await Deno.remove(folder, { recursive: true });
});

Deno.test("registry: the paper's networks come from torchvision's files, and say where to put them", async () => {
  const files: Record<string, string> = {
    alexnet: "alexnet-owt-4df8aa71.pth",
    vgg16: "vgg16-397923af.pth",
    wide_resnet50_2: "wide_resnet50_2-95faca4d.pth",
    resnext50_32x4d: "resnext50_32x4d-7cdf4587.pth",
    shufflenet_v2: "shufflenetv2_x1-5666bf0f80.pth",
  };
  for (const [name, file] of Object.entries(files)) {
    const spec = getBackboneSpec(name);
    assertEquals(spec.torchvision, name);
    assertEquals(spec.sources, [{ url: `https://download.pytorch.org/models/${file}` }]);
    // Without the file here and without network access: one error naming file and folder.
    // (A closed local port stands for the download, so a machine online downloads nothing.)
    const offline = { ...spec, sources: [{ url: `http://127.0.0.1:9/models/${file}` }] };
    const error = await assertRejects(() => loadBackbone(offline));
    assertStringIncludes(error.message, `The checkpoint file ${file}`);
    assertStringIncludes(error.message, join("models", "torchvision"));
    // each has a loadable stand-in
    assert(loadableBackbones().some((b) => BACKBONES[b].standsInFor.includes(name)), name);
  }
  assertEquals(
    loadableBackbones().sort(),
    ["darknet_reference", "darknet_tiny", "mobilenet_v1", "resnet50", "vgg19"],
  );
  assertThrows(() => getBackboneSpec("lenet"), Error, "Registered:");
  assertThrows(
    () =>
      registerBackbone({
        name: "x",
        sources: [],
        preprocessing: "bgr" as "caffe",
        sliceLayer: null,
      }),
    Error,
    "preprocessing",
  );
  // the shared location is configuration, resolved at load time
  assertEquals(BACKBONES.vgg19.sources[0], { shared: ["models", "vgg19"] });
});

Deno.test("preprocessing maps [0, 1] to each network's range (hand-computed)", () => {
  const gray: FeatureBatch = { data: new Float32Array([0.5]), shape: [1, 1, 1, 1] };
  const red: FeatureBatch = { data: new Float32Array([1, 0, 0]), shape: [1, 1, 1, 3] };
  const expect = (actual: Float32Array, expected: number[]) =>
    expected.forEach((v, i) => assertAlmostEquals(actual[i], v, 1e-4));
  expect(preprocessImages(gray, "caffe").data, [127.5 - 103.939, 127.5 - 116.779, 127.5 - 123.68]);
  expect(preprocessImages(red, "caffe").data, [-103.939, -116.779, 255 - 123.68]); // BGR
  expect(preprocessImages(red, "tf").data, [1, -1, -1]);
  expect(preprocessImages(gray, "unit").data, [0.5, 0.5, 0.5]);
  // torchvision: (x − mean) / std per RGB channel
  expect(preprocessImages(red, "torch").data, [
    (1 - 0.485) / 0.229,
    (0 - 0.456) / 0.224,
    (0 - 0.406) / 0.225,
  ]);
  // the in-model layer computes the same map, for 1 and 3 channels
  const rgb = tf.randomUniform([2, 4, 5, 3], 0, 1, "float32", 3);
  const g = tf.randomUniform([2, 4, 5, 1], 0, 1, "float32", 4);
  for (const mode of ["caffe", "tf", "unit", "torch"] as const) {
    for (const t of [rgb, g]) {
      const channels = t.shape[3] as 1 | 3;
      const plain = preprocessImages(
        { data: t.dataSync() as Float32Array, shape: t.shape as FeatureBatch["shape"] },
        mode,
      );
      const layered = preprocessingLayer(mode, channels).apply(t) as tf.Tensor;
      assertClose(layered, tf.tensor4d(plain.data, plain.shape), 1e-5);
    }
  }
});

Deno.test("features: preprocess false feeds values unchanged (gray → 3 channels)", async () => {
  const { folder } = await savedCopy({});
  const backbone = await loadBackbone({
    name: "synthetic_raw",
    description: "",
    sources: [{ folder }],
    preprocessing: "caffe",
    sliceLayer: "r2",
    standsInFor: [],
  });
  const gray = tf.randomNormal([3, 10, 10, 1], 0, 1, "float32", 9) as tf.Tensor4D;
  assertClose(toThreeChannels(gray), tf.tile(gray, [1, 1, 1, 3]), 0);
  const raw = await backbone.features(
    { data: gray.dataSync() as Float32Array, shape: [3, 10, 10] },
    { preprocess: false },
  );
  const expected = intermediate(net, "r2").predict(tf.tile(gray, [1, 1, 1, 3])) as tf.Tensor;
  assertClose(tf.tensor4d(raw.data, raw.shape), expected);
  // and with preprocessing, the caffe map is applied first
  const mapped = await backbone.features({
    data: gray.dataSync() as Float32Array,
    shape: [3, 10, 10],
  });
  const bgr = tf.sub(
    tf.mul(tf.tile(gray, [1, 1, 1, 3]), 255),
    tf.tensor1d([103.939, 116.779, 123.68]),
  );
  assertClose(
    tf.tensor4d(mapped.data, mapped.shape),
    intermediate(net, "r2").predict(bgr) as tf.Tensor,
    1e-4,
  );
  backbone.dispose();
  await Deno.remove(folder, { recursive: true });
});

Deno.test("nearest upsampling and bilinear resizing", () => {
  const up = upsampleNearest({ data: new Float32Array([1, 2, 3, 4]), shape: [1, 2, 2] }, 2);
  assertEquals(up.shape, [1, 4, 4]);
  assertEquals([...up.data], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  // upscaling is plain bilinear: compare with TF.js's half-pixel-centre bilinear
  const small = tf.randomUniform([1, 5, 7, 3], 0, 1, "float32", 5) as tf.Tensor4D;
  const mine = resizeBilinear(
    { data: small.dataSync() as Float32Array, shape: [1, 5, 7, 3] },
    [11, 16],
  );
  const theirs = tf.image.resizeBilinear(small, [11, 16], false, true);
  assertClose(tf.tensor4d(mine.data, mine.shape), theirs, 1e-5);
  // shrinking a linear ramp by 4 averages: each output pixel is the ramp at its centre
  const w = 32;
  const ramp = new Float32Array(w * w).map((_, i) => i % w);
  const shrunk = resizeBilinear({ data: ramp, shape: [1, w, w, 1] }, [8, 8]);
  for (let x0 = 1; x0 < 7; x0++) assertAlmostEquals(shrunk.data[8 * 3 + x0], 4 * x0 + 1.5, 1e-4);
  // a fine checkerboard shrunk by 4 is flat grey with antialiasing, not aliased
  const board = new Float32Array(w * w).map((_, i) => ((i % w) + Math.floor(i / w)) % 2);
  const grey = resizeBilinear({ data: board, shape: [1, w, w, 1] }, [8, 8]);
  for (let i = 9; i < 55; i++) {
    if (i % 8 !== 0 && i % 8 !== 7) assertAlmostEquals(grey.data[i], 0.5, 0.02);
  }
});
