#!/usr/bin/python3
"""Reference for bench/embed.ts: the tiny BERT of tools/make_tiny_bert.py run eagerly in
PyTorch (float32, torch.set_num_threads(THREADS), 2 unless given) on the same texts, with
that script's own WordPiece tokenizer, batched by length with attention masks like the
TypeScript side.

Usage: /usr/bin/python3 bench/embed_reference.py MODEL_DIR TEXTS_JSON OUT_F32 LAYERS BATCH SEED
           [THREADS [MAX_TOKENS]]

Needs Debian's python3-torch. MAX_TOKENS (default 512) is the truncation length, special
tokens included, as the TypeScript side's.

Writes the [CLS] vectors of hidden states LAYERS (comma-separated) for every text to OUT_F32
(little-endian float32, row-major, layer-major columns) and prints JSON with the token
ids of every text, seconds, reviews per second and peak RSS (VmHWM, MB).
"""
import importlib.util
import json
import os
import sys
import time

import torch
from _memory import peak_rss_mb  # bench/_memory.py

torch.set_num_threads(2)

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "make_tiny_bert", os.path.join(HERE, "..", "tools", "make_tiny_bert.py"))
tiny = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tiny)


def main():
    model_dir, texts_path, out_path, layers_arg, batch_arg, seed_arg = sys.argv[1:7]
    seed = int(seed_arg)
    if len(sys.argv) > 7:
        torch.set_num_threads(int(sys.argv[7]))
    max_tokens = int(sys.argv[8]) if len(sys.argv) > 8 else 512
    layers = [int(x) for x in layers_arg.split(",")]
    batch_size = int(batch_arg)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(model_dir, "reference.json")) as f:
        stored = json.load(f)
    with open(texts_path) as f:
        texts = json.load(f)
    vocab = tiny.load_bert_vocab(tiny.DEFAULT_VOCAB_JSON)
    index = {t: i for i, t in enumerate(vocab)}
    torch.manual_seed(seed)
    model = tiny.TinyBert(cfg).eval()
    tiny.randomize(model, seed)
    # Same weights as the exported model: the stored reference must be reproduced.
    first = stored["sentences"][0]
    ids = torch.tensor([first["token_ids"]])
    with torch.no_grad():
        states = model.hidden_states(ids, torch.ones_like(ids), torch.zeros_like(ids))
    check = max(abs(a - b) for a, b in zip(states[-1][0, 0].tolist(), first["cls"][-1]))
    if check > 1e-4:
        raise SystemExit(f"rebuilt weights differ from the export (|diff| {check})")

    start = time.perf_counter()
    encoded = [tiny.encode(t, index, max_tokens) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: (-len(encoded[i]), i))
    hidden = cfg["hidden_size"]
    out = torch.zeros(len(texts), len(layers) * hidden)
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            batch = order[b:b + batch_size]
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, :len(encoded[i])] = 1
            states = model.hidden_states(input_ids, mask, torch.zeros_like(input_ids))
            for k, layer in enumerate(layers):
                out[batch, k * hidden:(k + 1) * hidden] = states[layer][:, 0]
    seconds = time.perf_counter() - start
    out.numpy().astype("<f4").tofile(out_path)
    json.dump({
        "seconds": seconds,
        "reviews_per_second": len(texts) / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "token_ids": encoded,
    }, sys.stdout)


if __name__ == "__main__":
    main()
