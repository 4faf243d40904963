/**
 * BERT path of lib/embed on a tiny random-weight BERT (tools/make_tiny_bert.py) with the
 * real bert-base-uncased vocabulary. Reference: PyTorch's float64 evaluation of the same
 * weights with the script's own WordPiece tokenizer (no code shared with transformers.js or
 * onnxruntime).
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import onnxProto from "onnx-proto";
import { join } from "node:path";
import { sha256File } from "../lib/download.ts";
import { BertEncoder, bertLayers } from "../lib/embed/bert.ts";
import { addGraphOutputs, findHiddenStateTaps } from "../lib/embed/onnx_graph.ts";
import { ensureTinyBert } from "../tools/tiny_bert.ts";
import { torchAvailable } from "./_shared.ts";

interface ReferenceSentence {
  text: string;
  max_tokens: number;
  token_ids: number[];
  cls: number[][];
  mean: number[][];
}

interface Reference {
  config: { num_hidden_layers: number; hidden_size: number };
  sentences: ReferenceSentence[];
}

const ignore = !torchAvailable();
let folderPromise: Promise<string> | undefined;
function tinyBert(): Promise<string> {
  folderPromise ??= ensureTinyBert();
  return folderPromise;
}
async function reference(): Promise<Reference> {
  return JSON.parse(await Deno.readTextFile(join(await tinyBert(), "reference.json")));
}

/** Whether the quantised export exists (it needs Python's onnx package; CI has it). */
async function hasQuantized(): Promise<boolean> {
  try {
    await Deno.stat(join(await tinyBert(), "onnx", "model_quantized.onnx"));
    return true;
  } catch {
    if (Deno.env.get("CI")) throw new Error("CI needs python3-onnx for model_quantized.onnx");
    console.warn("skipping the quantised export: install python3-onnx to build it");
    return false;
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const FLOAT_EXPORTS = [
  { file: "model.onnx", form: "decomposed" },
  { file: "model_fused.onnx", form: "LayerNormalization" },
] as const;

for (const { file, form } of FLOAT_EXPORTS) {
  Deno.test({
    name: `bert ${file}: every hidden state matches PyTorch (cls and mean, 1e-4)`,
    ignore,
    fn: async () => {
      const ref = await reference();
      const L = ref.config.num_hidden_layers;
      const H = ref.config.hidden_size;
      const enc = await BertEncoder.load(await tinyBert(), { modelFile: file });
      try {
        assertEquals(enc.numLayers, L);
        assertEquals(enc.hiddenSize, H);
        // Found by structure: embeddings norm + (attention, feed-forward) norm per layer.
        assertEquals(enc.taps.tensors.length, L + 1);
        assertEquals(enc.taps.layerNorms.length, 1 + 2 * L);
        assert(enc.taps.layerNorms.every((s) => s.form === form));
        assertEquals(
          enc.taps.layerNorms.map((s) => s.closes),
          ["embeddings", ...Array.from({ length: L }, () => ["attention", "feed-forward"]).flat()],
        );
        const all = Array.from({ length: L + 1 }, (_, i) => i);
        for (const s of ref.sentences) {
          assertEquals(enc.tokenize(s.text, s.max_tokens), s.token_ids, s.text);
          for (const pooling of ["cls", "mean"] as const) {
            const m = await enc.encode([s.text], { layers: all, pooling, maxTokens: s.max_tokens });
            assertEquals(m.shape, [1, (L + 1) * H]);
            for (const layer of all) {
              const got = m.data.subarray(layer * H, (layer + 1) * H);
              const diff = maxAbsDiff(got, s[pooling][layer]);
              assert(diff <= 1e-4, `${s.text} layer ${layer} ${pooling}: max |diff| ${diff}`);
            }
          }
        }
      } finally {
        await enc.dispose();
      }
    },
  });
}

Deno.test({
  name: "bert: last tapped layer is the model's own last_hidden_state output",
  ignore,
  fn: async () => {
    const files = ["model.onnx", "model_fused.onnx"];
    if (await hasQuantized()) files.push("model_quantized.onnx");
    for (const file of files) {
      const enc = await BertEncoder.load(await tinyBert(), { modelFile: file });
      try {
        const ids = [
          enc.tokenize("A short sentence."),
          enc.tokenize("Another, longer sentence here."),
        ];
        const { states, last } = await enc.hiddenStates(ids);
        assertEquals(states.length, enc.numLayers + 1);
        assertEquals(
          Array.from(states[enc.numLayers].data as Float32Array),
          Array.from(last.data as Float32Array),
        );
        // Every hidden state differs from the next (the taps are distinct tensors).
        for (let k = 0; k < enc.numLayers; k++) {
          assertGreater(
            maxAbsDiff(states[k].data as Float32Array, states[k + 1].data as Float32Array),
            1e-3,
          );
        }
      } finally {
        await enc.dispose();
      }
    }
  },
});

Deno.test({
  name: "bert: batched runs with attention masks equal one-at-a-time runs (1e-4), order kept",
  ignore,
  fn: async () => {
    const ref = await reference();
    const texts = [
      ...ref.sentences.map((s) => s.text),
      "Short.",
      "A considerably longer review that goes on and on about the cinematography, the score, " +
      "the pacing of the second act and the surprisingly moving final scene.",
    ];
    const enc = await BertEncoder.load(await tinyBert());
    try {
      const layers = [0, 1, 2, 3];
      for (const pooling of ["cls", "mean"] as const) {
        const batched = await enc.encode(texts, { layers, pooling, batchSize: 3 });
        for (let i = 0; i < texts.length; i++) {
          const single = await enc.encode([texts[i]], { layers, pooling, batchSize: 1 });
          const row = batched.data.subarray(i * single.shape[1], (i + 1) * single.shape[1]);
          const diff = maxAbsDiff(row, single.data);
          assert(diff <= 1e-4, `text ${i} ${pooling}: ${diff}`);
        }
      }
    } finally {
      await enc.dispose();
    }
  },
});

Deno.test({
  name: "bert: defaults follow the paper's code; layer choice, order and truncation",
  ignore,
  fn: async () => {
    assertEquals(bertLayers(12), [6, 7, 8, 9, 10, 11]);
    assertEquals(bertLayers(12, "abstract"), [7, 8, 9, 10, 11, 12]);
    assertEquals(bertLayers(3), [0, 1, 2]);
    const enc = await BertEncoder.load(await tinyBert());
    try {
      assertEquals(enc.defaults, {
        layers: [0, 1, 2],
        pooling: "cls",
        maxTokens: 512,
        batchSize: 1,
      });
      assertEquals(enc.maxTokensLimit, 512);
      const texts = ["I loved it.", "I hated it."];
      const byDefault = await enc.encode(texts);
      const explicit = await enc.encode(texts, { layers: [0, 1, 2], pooling: "cls" });
      assertEquals(byDefault.shape, [2, 3 * enc.hiddenSize]);
      assertEquals(byDefault.data, explicit.data);
      // Layer-major: [3, 1] is layer 3's block followed by layer 1's block.
      const swapped = await enc.encode(texts, { layers: [3, 1] });
      const all = await enc.encode(texts, { layers: [0, 1, 2, 3] });
      const H = enc.hiddenSize;
      for (let i = 0; i < 2; i++) {
        assertEquals(
          swapped.data.subarray(i * 2 * H, i * 2 * H + H),
          all.data.subarray(i * 4 * H + 3 * H, i * 4 * H + 4 * H),
        );
        assertEquals(
          swapped.data.subarray(i * 2 * H + H, i * 2 * H + 2 * H),
          all.data.subarray(i * 4 * H + H, i * 4 * H + 2 * H),
        );
      }
      // Truncation at 512 keeps [CLS] ... [SEP] and 510 text tokens.
      const long = Array.from({ length: 700 }, (_, i) => `word${i % 7}`).join(" ");
      const ids = enc.tokenize(long);
      assertEquals(ids.length, 512);
      assertEquals(ids[0], 101);
      assertEquals(ids[511], 102);
      const m = await enc.encode([long, "short"], { batchSize: 2 });
      assertEquals(m.shape, [2, 3 * H]);
      await assertRejects(
        () => enc.encode(["x"], { layers: [4] }),
        Error,
        "hidden state 4 does not exist",
      );
      await assertRejects(() => enc.encode(["x"], { maxTokens: 513 }), Error, "maxTokens");
      await assertRejects(() => enc.encode(["fine", "  "]), Error, "Text 1 is empty");
    } finally {
      await enc.dispose();
    }
  },
});

Deno.test({
  name: "bert quantised export: taps found, dynamic quantisation seen, close to float reference",
  ignore,
  fn: async () => {
    if (!(await hasQuantized())) return;
    const ref = await reference();
    const L = ref.config.num_hidden_layers;
    const H = ref.config.hidden_size;
    const enc = await BertEncoder.load(await tinyBert(), { modelFile: "model_quantized.onnx" });
    try {
      assertEquals(enc.taps.tensors.length, L + 1);
      assert(enc.taps.dynamicQuantization);
      assertEquals(enc.defaults.batchSize, 1);
      const all = Array.from({ length: L + 1 }, (_, i) => i);
      for (const s of ref.sentences) {
        const m = await enc.encode([s.text], {
          layers: all,
          pooling: "mean",
          maxTokens: s.max_tokens,
        });
        for (const layer of all) {
          const got = m.data.subarray(layer * H, (layer + 1) * H);
          const want = s.mean[layer];
          let dot = 0, a = 0, b = 0;
          for (let h = 0; h < H; h++) {
            dot += got[h] * want[h];
            a += got[h] * got[h];
            b += want[h] * want[h];
          }
          const cosine = dot / Math.sqrt(a * b);
          assert(cosine > 0.99, `${s.text} layer ${layer}: cosine ${cosine}`);
          assert(maxAbsDiff(got, want) < 0.5, `${s.text} layer ${layer}`);
        }
      }
    } finally {
      await enc.dispose();
    }
  },
});

Deno.test({
  name: "bert: taps are found by structure when every node and tensor name is anonymised",
  ignore,
  fn: async () => {
    // deno-lint-ignore no-explicit-any
    const { onnx } = onnxProto as any;
    const folder = await tinyBert();
    const original = await Deno.readFile(join(folder, "onnx", "model.onnx"));
    const model = onnx.ModelProto.decode(original);
    const keep = new Set<string>([
      ...model.graph.input.map((v: { name: string }) => v.name),
      ...model.graph.output.map((v: { name: string }) => v.name),
      ...model.graph.initializer.map((t: { name: string }) => t.name),
    ]);
    const rename = new Map<string, string>();
    const anon = (t: string) => {
      if (!t || keep.has(t)) return t;
      if (!rename.has(t)) rename.set(t, `t${rename.size}`);
      return rename.get(t)!;
    };
    for (const node of model.graph.node) {
      node.name = "";
      node.input = node.input.map(anon);
      node.output = node.output.map(anon);
    }
    const anonymised = onnx.ModelProto.encode(model).finish() as Uint8Array;
    const a = findHiddenStateTaps(original, 3);
    const b = findHiddenStateTaps(anonymised, 3);
    assertEquals(b.tensors, a.tensors.map(anon));
    assert(b.tensors.slice(0, -1).every((t) => /^t\d+$/.test(t)));
    // The edited bytes start with the original model, byte for byte.
    const edited = addGraphOutputs(original, a.tensors, a.graphOutputs);
    assertEquals(edited.subarray(0, original.length), original);
    assertGreater(edited.length, original.length);
    assertEquals(addGraphOutputs(original, ["last_hidden_state"], a.graphOutputs), original);
  },
});

Deno.test({
  name: "bert: an unreachable hub gives an error listing the files and where to put them",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const saved = { data: Deno.env.get("TEXT_AS_IMAGE_DATA"), hf: Deno.env.get("HF_ENDPOINT") };
    Deno.env.set("TEXT_AS_IMAGE_DATA", dir);
    Deno.env.set("HF_ENDPOINT", "http://127.0.0.1:9"); // discard port: refused at once
    try {
      const err = await assertRejects(() =>
        BertEncoder.load("Xenova/bert-base-uncased", { silent: true })
      );
      const msg = err.message;
      for (
        const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model.onnx"]
      ) {
        assertStringIncludes(msg, join(dir, "models", "Xenova", "bert-base-uncased", f));
      }
      assertStringIncludes(msg, "or pass the path of a local folder");
      const missing = await assertRejects(() => BertEncoder.load(join(dir, "nowhere")));
      assertStringIncludes(missing.message, "does not exist");
    } finally {
      for (
        const [k, v] of [["TEXT_AS_IMAGE_DATA", saved.data], ["HF_ENDPOINT", saved.hf]] as const
      ) {
        if (v === undefined) Deno.env.delete(k);
        else Deno.env.set(k, v);
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "bert: pooled values are finite and mean pooling averages the token states",
  ignore,
  fn: async () => {
    const enc = await BertEncoder.load(await tinyBert());
    try {
      const ids = [enc.tokenize("Mean pooling, by hand.")];
      const { states } = await enc.hiddenStates(ids);
      const H = enc.hiddenSize;
      const T = ids[0].length;
      const m = await enc.encode(["Mean pooling, by hand."], { layers: [2], pooling: "mean" });
      const data = states[2].data as Float32Array;
      for (let h = 0; h < H; h++) {
        let sum = 0;
        for (let t = 0; t < T; t++) sum += data[t * H + h];
        assertAlmostEquals(m.data[h], sum / T, 1e-5);
      }
    } finally {
      await enc.dispose();
    }
  },
});

Deno.test({
  name: "bert: overflow 'windows' averages framed windows weighted by their token counts",
  ignore,
  fn: async () => {
    const enc = await BertEncoder.load(await tinyBert());
    try {
      const text = "I didn't like the plot; the acting, however, was superb. Café scenes aside.";
      const full = enc.tokenize(text);
      const windows = enc.tokenWindows(text, 8, "windows");
      assertGreater(windows.length, 2);
      assert(windows.every((w) => w.length <= 8 && w[0] === 101 && w[w.length - 1] === 102));
      assertEquals(windows.flatMap((w) => w.slice(1, -1)), full.slice(1, -1));
      const H = enc.hiddenSize;
      const expected = new Float64Array(2 * H);
      const total = windows.reduce((n, w) => n + w.length, 0);
      for (const w of windows) {
        const { states } = await enc.hiddenStates([w]);
        for (const [k, layer] of [1, 3].entries()) {
          const data = states[layer].data as Float32Array;
          for (let h = 0; h < H; h++) expected[k * H + h] += (w.length / total) * data[h];
        }
      }
      const m = await enc.encode([text, "short"], {
        layers: [1, 3],
        maxTokens: 8,
        overflow: "windows",
      });
      assert(maxAbsDiff(m.data.subarray(0, 2 * H), expected) <= 1e-5);
      // A text that fits in one window gets exactly its truncated vector.
      const short = await enc.encode(["short"], { layers: [1, 3], maxTokens: 8 });
      assertEquals(m.data.subarray(2 * H), short.data);
    } finally {
      await enc.dispose();
    }
  },
});

Deno.test({
  name: "bert: a hub model is downloaded into the cache with the hub's checksums",
  ignore,
  fn: async () => {
    const folder = await tinyBert();
    const files = ["config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model.onnx"];
    const oid = await sha256File(join(folder, "onnx", "model.onnx"));
    let corrupt = false;
    const requests: string[] = [];
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
      const path = new URL(req.url).pathname;
      requests.push(path);
      if (path === "/api/models/someone/tiny/tree/main/onnx") {
        return Response.json([{
          path: "onnx/model.onnx",
          lfs: { oid: corrupt ? "0".repeat(64) : oid },
        }]);
      }
      if (path === "/api/models/someone/tiny/tree/main") return Response.json([]);
      const m = /^\/someone\/tiny\/resolve\/main\/(.+)$/.exec(path);
      if (m && files.includes(m[1])) return new Response(await Deno.readFile(join(folder, m[1])));
      return new Response("not found", { status: 404 });
    });
    const dir = await Deno.makeTempDir();
    const saved = { data: Deno.env.get("TEXT_AS_IMAGE_DATA"), hf: Deno.env.get("HF_ENDPOINT") };
    Deno.env.set("TEXT_AS_IMAGE_DATA", dir);
    Deno.env.set("HF_ENDPOINT", `http://127.0.0.1:${server.addr.port}`);
    try {
      const hub = await BertEncoder.load("someone/tiny", { silent: true });
      const local = await BertEncoder.load(folder);
      try {
        assertEquals(hub.folder, join(dir, "models", "someone", "tiny"));
        assertEquals(hub.id, "bert:someone/tiny/model.onnx");
        assertEquals(hub.modelHash, oid);
        const texts = ["Downloaded once.", "Then read from the cache."];
        assertEquals((await hub.encode(texts)).data, (await local.encode(texts)).data);
      } finally {
        await hub.dispose();
        await local.dispose();
      }
      // Cached: loading again makes no request.
      const before = requests.length;
      await (await BertEncoder.load("someone/tiny", { silent: true })).dispose();
      assertEquals(requests.length, before);
      // A file whose SHA-256 differs from the hub's is refused and not kept.
      await Deno.remove(join(dir, "models"), { recursive: true });
      corrupt = true;
      const err = await assertRejects(() => BertEncoder.load("someone/tiny", { silent: true }));
      assertStringIncludes(err.message, "corrupt");
      const kept = await Array.fromAsync(
        Deno.readDir(join(dir, "models", "someone", "tiny", "onnx")),
      );
      assertEquals(kept.length, 0);
    } finally {
      for (
        const [k, v] of [["TEXT_AS_IMAGE_DATA", saved.data], ["HF_ENDPOINT", saved.hf]] as const
      ) {
        if (v === undefined) Deno.env.delete(k);
        else Deno.env.set(k, v);
      }
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
