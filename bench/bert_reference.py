#!/usr/bin/python3
"""PyTorch side of bench/bert.ts: the random-weight BERT of tools/make_tiny_bert.py, rebuilt
in PyTorch from its seed (that script's own `TinyBert` module and `randomize`, so the weights
are the ones it exported to ONNX), run eagerly in float32 under torch.inference_mode() with
torch.set_num_threads(THREADS) on token ids given by the TypeScript side.

Usage: /usr/bin/python3 bench/bert_reference.py JOB_JSON

JOB_JSON holds {"model": folder, "seed": weight seed, "threads": PyTorch threads,
"layers": hidden states to return, "batch": reviews per forward pass, "lengths": [{"tokens":
N, "ids": [[token ids of each review]], "vectors": output path or null}]}.

Before anything is timed the rebuilt model must reproduce the [CLS] vectors of every hidden
state stored in the folder's reference.json (float64, written by make_tiny_bert.py) to 1e-4
of their norm; otherwise it exits 1. Then, for each length: one untimed warm-up review, the
peak-RSS mark reset (/proc/self/clear_refs), every review run in batches of "batch" (all rows
of a batch have N tokens: no padding), seconds and peak RSS (VmHWM, MB) read. The [CLS]
vectors of "layers" (float32, little-endian, row-major, layer-major columns) go to "vectors"
when given. Prints one JSON line: {"torch", "threads", "load_seconds", "weights_check",
"lengths": [{"tokens", "reviews", "seconds", "peak_rss_mb", "peak_reset"}],
"load_peak_rss_mb"} (the last: VmHWM once the model is built and checked).
"""
import importlib.util
import json
import os
import sys
import time

import torch
from _memory import peak_rss_mb, reset_peak_rss  # bench/_memory.py

torch.set_num_threads(2)

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "make_tiny_bert", os.path.join(HERE, "..", "tools", "make_tiny_bert.py"))
tiny = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tiny)


def weights_check(model, model_dir):
    """Largest ||ours - stored|| / ||stored|| over the stored [CLS] vectors of every state."""
    with open(os.path.join(model_dir, "reference.json")) as f:
        stored = json.load(f)
    worst = 0.0
    for sentence in stored["sentences"]:
        ids = torch.tensor([sentence["token_ids"]])
        with torch.inference_mode():
            states = model.hidden_states(ids, torch.ones_like(ids), torch.zeros_like(ids))
        for state, expected in zip(states, sentence["cls"]):
            expected = torch.tensor(expected, dtype=torch.float64)
            diff = torch.linalg.norm(state[0, 0].double() - expected)
            worst = max(worst, float(diff / torch.linalg.norm(expected)))
    return worst


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    torch.set_num_threads(int(job["threads"]))
    start = time.perf_counter()
    with open(os.path.join(job["model"], "config.json")) as f:
        cfg = json.load(f)
    seed = int(job["seed"])
    # Exactly as make_tiny_bert.py builds the model it exports.
    torch.manual_seed(seed)
    model = tiny.TinyBert(cfg).eval()
    tiny.randomize(model, seed)
    load_seconds = time.perf_counter() - start
    check = weights_check(model, job["model"])
    if not check <= 1e-4:
        raise SystemExit(f"the rebuilt PyTorch weights do not reproduce {job['model']}/"
                         f"reference.json (max relative difference {check:.3g} > 1e-4)")

    load_peak = peak_rss_mb()  # model built and checked, before any reset
    layers = [int(x) for x in job["layers"]]
    batch = int(job["batch"])
    hidden = cfg["hidden_size"]
    results = []
    for length in job["lengths"]:
        ids = torch.tensor(length["ids"], dtype=torch.long)
        if ids.dim() != 2 or ids.shape[1] != length["tokens"]:
            raise SystemExit(f"ids for {length['tokens']} tokens have shape {list(ids.shape)}")
        out = torch.empty(ids.shape[0], len(layers) * hidden)

        def run(rows):
            mask = torch.ones_like(rows)
            states = model.hidden_states(rows, mask, torch.zeros_like(rows))
            return torch.cat([states[layer][:, 0] for layer in layers], dim=1)

        with torch.inference_mode():
            run(ids[:1])  # warm-up: allocations, kernel choice
            reset = reset_peak_rss()
            t0 = time.perf_counter()
            for b in range(0, ids.shape[0], batch):
                out[b:b + batch] = run(ids[b:b + batch])
            seconds = time.perf_counter() - t0
        peak = peak_rss_mb()
        if length.get("vectors"):
            out.numpy().astype("<f4").tofile(length["vectors"])
        results.append({"tokens": length["tokens"], "reviews": int(ids.shape[0]),
                        "seconds": seconds, "peak_rss_mb": peak, "peak_reset": reset})
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_seconds": load_seconds,
        "weights_check": check,
        "lengths": results,
        "load_peak_rss_mb": load_peak,
    }))


if __name__ == "__main__":
    main()
