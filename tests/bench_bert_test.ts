/**
 * bench/bert.ts at toy size, through the bench's own code path (our side in its own process,
 * PyTorch in bench/bert_reference.py, alternated rounds): the closing line's shape and the
 * agreement of the [CLS] vectors on the same token ids. Also the FLOP count and the
 * relative-difference helper.
 */
import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { benchBert, bertFlops, maxRelativeRowDifference } from "../bench/bert.ts";
import { readBenchOutput } from "../tools/bench.ts";
import { torchAvailable } from "./_shared.ts";

Deno.test("bertFlops: BERT-base at 128 tokens is about 22.3 GFLOP of matrix products", () => {
  const base = { layers: 12, hidden: 768, heads: 12, intermediate: 3072 };
  // 12 · (128 · 2 · (4·768² + 2·768·3072) + 4 · 128² · 768)
  assertEquals(bertFlops(base, 128), 12 * (128 * 14_155_776 + 50_331_648));
  assertAlmostEquals(bertFlops(base, 128) / 1e9, 22.35, 0.01);
});

Deno.test("maxRelativeRowDifference: the worst row, relative to the second matrix's norm", () => {
  const b = new Float32Array([3, 4, 0, 1]);
  const a = new Float32Array([3, 4.5, 0, 1.1]);
  assertAlmostEquals(maxRelativeRowDifference(a, b, 2), 0.1, 1e-6);
  assertEquals(maxRelativeRowDifference(b, b, 2), 0);
});

Deno.test({
  name: "bench/bert.ts: a toy BERT through both sides agrees with PyTorch to 1e-4",
  ignore: !torchAvailable(),
  sanitizeResources: false,
  async fn() {
    const texts = Array.from(
      { length: 2 },
      (_, i) =>
        `Review ${i}: ` + "The film was great, the acting superb; the plot dragged. ".repeat(8),
    );
    const lines: string[] = [];
    const line = await benchBert({
      shape: { layers: 2, hidden: 32, heads: 4, intermediate: 64 },
      lengths: [16, 40],
      texts,
      log: (l) => lines.push(l),
    });
    // What tools/bench.ts would accept as the bench's last line.
    const read = readBenchOutput(JSON.stringify(line));
    assertEquals(read.failure, undefined);
    assertEquals(Object.keys(line.targets).sort(), [
      "bert_l2_h32_16_ratio",
      "bert_l2_h32_40_ratio",
      "bert_l2_h32_agreement",
    ]);
    assert(line.targets.bert_l2_h32_agreement.met, JSON.stringify(line.targets));
    assertEquals(line.figures.model_file, "onnx/model.onnx");
    assertEquals(line.figures.hidden_states, "0,1");
    assertEquals(line.figures.rounds, 3);
    assert((line.figures.pytorch_weights_check as number) <= 1e-4);
    assertEquals(lines.filter((l) => l.startsWith("round ")).length, 3);
  },
});
