/**
 * Finds the hidden states of a BERT-family ONNX export by graph structure and exposes them
 * as extra graph outputs.
 *
 * Exports in the Hugging Face / transformers.js layout only output `last_hidden_state`. Each
 * post-LayerNorm encoder layer ends with two residual blocks, each closed by a layer norm:
 * `LN(x + Attention(x))`, then `LN(h + FFN(h))`; the embeddings are closed by one more layer
 * norm. This module
 *
 * 1. finds every layer norm, whatever its form: a fused `LayerNormalization` (opset 17),
 *    onnxruntime's `SkipLayerNormalization`, or the decomposed pattern older exporters write
 *    (`ReduceMean` → `Sub` → `Pow`/`Mul` → `ReduceMean` → `Add ε` → `Sqrt` → `Div`, then the
 *    affine `Mul γ`/`Add β`);
 * 2. orders them topologically and classifies each by what its residual branch computes,
 *    walking backwards from the norm's input to the previous norm: a branch that contains a
 *    `Softmax` (or a fused attention op) is self-attention, otherwise it is the feed-forward
 *    block that closes an encoder layer;
 * 3. takes hidden state 0 = the first norm's output (embeddings) and hidden state k = the
 *    output of the k-th feed-forward norm.
 *
 * Node names are never used, so float exports, `quantize_dynamic` exports (`MatMulInteger`,
 * `DequantizeLinear`) and exports of other tools work alike.
 *
 * The extra outputs are added without re-serialising the model: protobuf merges a message
 * that is appended to another of the same type (repeated fields concatenate), so appending
 * `ModelProto { graph { output: [...] } }` to the original bytes yields the same model with
 * more outputs, keeping every field (also those this old `onnx-proto` schema does not know).
 *
 * @module
 */
import onnxProto from "onnx-proto";

// deno-lint-ignore no-explicit-any
const { onnx } = onnxProto as any;

/** The parts of an ONNX node this module reads. */
interface OnnxNode {
  input: string[];
  output: string[];
  opType: string;
  domain: string;
  name: string;
}

/** The parts of an ONNX graph this module reads. */
interface OnnxGraph {
  node: OnnxNode[];
  initializer: { name: string; dataLocation?: number }[];
  input: { name: string }[];
  output: { name: string }[];
}

/** One layer norm found in the graph. */
export interface LayerNormSite {
  /** `"LayerNormalization"`, `"SkipLayerNormalization"` or `"decomposed"`. */
  form: "LayerNormalization" | "SkipLayerNormalization" | "decomposed";
  /** Non-constant tensors the norm reads (its residual sum, or both summands when fused). */
  inputs: string[];
  /** The normalised tensor (after the affine γ/β). */
  output: string;
  /** Index (topological position) of the node that writes {@link output}. */
  position: number;
  /** What the residual branch before this norm computes. */
  closes: "embeddings" | "attention" | "feed-forward";
}

/** The hidden states of an encoder graph. */
export interface HiddenStateTaps {
  /** Tensor name of hidden state k at index k (0 = embeddings). */
  tensors: string[];
  /** Every layer norm found, in topological order. */
  layerNorms: LayerNormSite[];
  /** Names of the graph's original outputs. */
  graphOutputs: string[];
  /**
   * Whether activations are quantised at run time (`DynamicQuantizeLinear`): their scale is
   * then computed over the whole batch tensor, so a text's vector depends slightly on the
   * other texts (and padding) in its batch.
   */
  dynamicQuantization: boolean;
}

const ATTENTION_OPS = new Set([
  "Softmax",
  "Attention",
  "MultiHeadAttention",
  "PackedAttention",
  "QAttention",
]);

/** Decodes the graph of a serialised ONNX model (weights stay views into `bytes`). */
function decodeGraph(bytes: Uint8Array): OnnxGraph {
  let model;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`Not a valid ONNX model: ${(e as Error).message}`);
  }
  if (!model.graph) throw new Error("The ONNX model has no graph");
  return model.graph as OnnxGraph;
}

class GraphIndex {
  readonly producer = new Map<string, number>();
  readonly consumers = new Map<string, number[]>();
  readonly constant = new Set<string>();
  readonly graphInputs: Set<string>;

  constructor(readonly graph: OnnxGraph) {
    for (const t of graph.initializer) this.constant.add(t.name);
    this.graphInputs = new Set(graph.input.map((i) => i.name).filter((n) => !this.constant.has(n)));
    graph.node.forEach((node, i) => {
      for (const out of node.output) if (out) this.producer.set(out, i);
      for (const inp of node.input) {
        if (!inp) continue;
        const list = this.consumers.get(inp);
        if (list) list.push(i);
        else this.consumers.set(inp, [i]);
      }
      // Constant folding: a node whose inputs are all constant produces constants.
      const inputs = node.input.filter((n) => n);
      if (node.opType !== "Shape" && inputs.every((n) => this.constant.has(n))) {
        for (const out of node.output) if (out) this.constant.add(out);
      }
    });
  }

  nonConstantInputs(i: number): string[] {
    return this.graph.node[i].input.filter((n) => n && !this.constant.has(n));
  }

  consumersOf(tensor: string): number[] {
    return this.consumers.get(tensor) ?? [];
  }
}

/** Follows `Mul γ` / `Add β` with constant operands while the chain is unbranched. */
function followAffine(index: GraphIndex, tensor: string): { output: string; position: number } {
  let current = tensor;
  let position = index.producer.get(tensor) ?? -1;
  for (let step = 0; step < 2; step++) {
    const users = index.consumersOf(current);
    if (users.length !== 1) break;
    const node = index.graph.node[users[0]];
    if (node.opType !== "Mul" && node.opType !== "Add") break;
    const others = index.nonConstantInputs(users[0]);
    if (others.length !== 1 || others[0] !== current) break;
    current = node.output[0];
    position = users[0];
  }
  return { output: current, position };
}

/** The decomposed layer norm that starts at `Sub(x, ReduceMean(x))`, if any. */
function decomposedAt(index: GraphIndex, subIndex: number): Omit<LayerNormSite, "closes"> | null {
  const { node } = index.graph;
  const sub = node[subIndex];
  const [x, mean] = sub.input;
  const meanNode = index.producer.get(mean);
  if (meanNode === undefined || node[meanNode].opType !== "ReduceMean") return null;
  if (node[meanNode].input[0] !== x) return null;
  const centred = sub.output[0];
  // Square: Pow(c, 2) or Mul(c, c), then ReduceMean.
  let variance: string | undefined;
  for (const u of index.consumersOf(centred)) {
    const n = node[u];
    const squares = (n.opType === "Pow" && n.input[0] === centred) ||
      (n.opType === "Mul" && n.input[0] === centred && n.input[1] === centred);
    if (!squares) continue;
    const r = index.consumersOf(n.output[0]).find((k) => node[k].opType === "ReduceMean");
    if (r !== undefined) variance = node[r].output[0];
  }
  if (!variance) return null;
  // Denominator: elementwise ops with constant operands (Add ε, Sqrt, Reciprocal) from the
  // variance, then the node that combines it with the centred tensor (Div or Mul).
  const derived = new Set([variance]);
  const frontier = [variance];
  let normalised: { tensor: string; position: number } | undefined;
  while (frontier.length > 0 && !normalised) {
    const t = frontier.shift()!;
    for (const u of index.consumersOf(t)) {
      const n = node[u];
      const others = index.nonConstantInputs(u);
      if (
        (n.opType === "Div" || n.opType === "Mul") && n.input[0] === centred &&
        derived.has(n.input[1])
      ) {
        normalised = { tensor: n.output[0], position: u };
        break;
      }
      if (
        ["Add", "Sqrt", "Reciprocal", "Cast"].includes(n.opType) && others.length === 1 &&
        others[0] === t
      ) {
        derived.add(n.output[0]);
        frontier.push(n.output[0]);
      }
    }
  }
  if (!normalised) return null;
  const end = followAffine(index, normalised.tensor);
  return { form: "decomposed", inputs: [x], output: end.output, position: end.position };
}

/** Every layer norm of the graph, in topological order, not yet classified. */
function findLayerNorms(index: GraphIndex): Omit<LayerNormSite, "closes">[] {
  const sites: Omit<LayerNormSite, "closes">[] = [];
  index.graph.node.forEach((n, i) => {
    if (n.opType === "LayerNormalization") {
      sites.push({
        form: "LayerNormalization",
        inputs: [n.input[0]],
        output: n.output[0],
        position: i,
      });
    } else if (n.opType === "SkipLayerNormalization") {
      const inputs = [n.input[0], n.input[1]].filter((t) => t && !index.constant.has(t));
      if (n.input[4] && !index.constant.has(n.input[4])) inputs.push(n.input[4]);
      sites.push({ form: "SkipLayerNormalization", inputs, output: n.output[0], position: i });
    } else if (n.opType === "Sub") {
      const site = decomposedAt(index, i);
      if (site) sites.push(site);
    }
  });
  return sites.sort((a, b) => a.position - b.position);
}

/** Whether the backward cone of `starts`, cut at `stops`, contains an attention op. */
function branchHasAttention(index: GraphIndex, starts: string[], stops: Set<string>): boolean {
  const seen = new Set<number>();
  const stack = [...starts];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (stops.has(t) || index.constant.has(t)) continue;
    const p = index.producer.get(t);
    if (p === undefined || seen.has(p)) continue;
    seen.add(p);
    const node = index.graph.node[p];
    if (ATTENTION_OPS.has(node.opType)) return true;
    for (const inp of node.input) if (inp) stack.push(inp);
  }
  return false;
}

/**
 * Finds the tensors holding each hidden state of a post-LayerNorm Transformer encoder
 * (BERT, RoBERTa, DistilBERT, ELECTRA, ... exports). `expectedLayers` (from `config.json`)
 * turns a count mismatch into an error that says what was found.
 */
export function findHiddenStateTaps(
  modelBytes: Uint8Array,
  expectedLayers?: number,
): HiddenStateTaps {
  const graph = decodeGraph(modelBytes);
  if (graph.initializer.some((t) => t.dataLocation === 1)) {
    throw new Error(
      "The ONNX model keeps its weights in external data files; re-export it as one file",
    );
  }
  const index = new GraphIndex(graph);
  const raw = findLayerNorms(index);
  if (raw.length === 0) {
    throw new Error("No layer norm found in the ONNX graph: not a BERT-style encoder export");
  }
  const outputs = new Set(raw.map((s) => s.output));
  const layerNorms: LayerNormSite[] = raw.map((site, k) => ({
    ...site,
    closes: k === 0
      ? "embeddings"
      : branchHasAttention(index, site.inputs, outputs)
      ? "attention"
      : "feed-forward",
  }));
  const tensors = [layerNorms[0].output];
  for (let k = 1; k < layerNorms.length; k++) {
    const site = layerNorms[k];
    if (site.closes !== "feed-forward") continue;
    if (layerNorms[k - 1].closes !== "attention") {
      throw new Error(
        `Unexpected encoder structure: the layer norm writing ${site.output} closes a ` +
          `feed-forward block that does not follow an attention block`,
      );
    }
    tensors.push(site.output);
  }
  const summary = layerNorms.map((s) => s.closes).join(", ");
  if (tensors.length < 2) {
    throw new Error(`Found no encoder layer in the ONNX graph (layer norms: ${summary})`);
  }
  if (expectedLayers !== undefined && tensors.length - 1 !== expectedLayers) {
    throw new Error(
      `The ONNX graph has ${tensors.length - 1} encoder layers by structure but config.json ` +
        `says ${expectedLayers} (layer norms closing: ${summary})`,
    );
  }
  return {
    tensors,
    layerNorms,
    graphOutputs: graph.output.map((o) => o.name),
    dynamicQuantization: graph.node.some((n) => n.opType === "DynamicQuantizeLinear"),
  };
}

/**
 * Returns the model bytes with `tensors` added as float graph outputs (those that already
 * are outputs are skipped). The original bytes are kept as they are, followed by a small
 * protobuf message that adds the outputs (see the module documentation).
 */
export function addGraphOutputs(
  modelBytes: Uint8Array,
  tensors: readonly string[],
  existingOutputs: readonly string[],
): Uint8Array {
  const missing = [...new Set(tensors)].filter((t) => !existingOutputs.includes(t));
  if (missing.length === 0) return modelBytes;
  const FLOAT = 1;
  const extra = onnx.ModelProto.encode({
    graph: {
      output: missing.map((name) => ({ name, type: { tensorType: { elemType: FLOAT } } })),
    },
  }).finish() as Uint8Array;
  const merged = new Uint8Array(modelBytes.length + extra.length);
  merged.set(modelBytes, 0);
  merged.set(extra, modelBytes.length);
  return merged;
}
