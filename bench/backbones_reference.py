"""PyTorch reference for bench/backbones.ts: images/s of the paper's frozen slices.

Builds one slice once, then for each input size in turn (comma-separated SIZES) times its
forward pass for SECONDS seconds (at least 2 batches) after one untimed warm-up batch and
prints one JSON line per size: images/s over the whole timed run, from the fastest batch,
per CPU-second, and the peak RSS during that size's run (VmHWM, reset to the current RSS
through /proc/self/clear_refs before the size's warm-up, as bench/backbones.ts does on its
side; where that is refused, the process's peak so far). Random weights (timing only), eval
mode, no_grad, torch.set_num_threads(2), NCHW float32 inputs in [0, 1].

Slices (torchvision, as in the paper's official code):
  vgg16_features12          vgg16().features[:12]: conv1_1 ... conv3_1 + ReLU, 2 max-pools
  resnet50_layer1           resnet50(): conv1, bn1, relu, maxpool, layer1
  alexnet_features5         alexnet().features[:5]: conv1, ReLU, maxpool, conv2, ReLU
  wide_resnet50_2_layer1    wide_resnet50_2(): conv1, bn1, relu, maxpool, layer1
  resnext50_32x4d_layer1    resnext50_32x4d(): conv1, bn1, relu, maxpool, layer1
  shufflenet_v2_stage2      shufflenet_v2_x1_0(): conv1, maxpool, stage2

Usage: /usr/bin/python3 bench/backbones_reference.py SLICE SIZES [BATCH] [SECONDS]
"""

import json
import sys
import time

import torch
import torchvision
from _memory import peak_rss_mb, reset_peak_rss  # bench/_memory.py


def build(name):
    if name == "vgg16_features12":
        return torchvision.models.vgg16().features[:12]
    if name == "alexnet_features5":
        return torchvision.models.alexnet().features[:5]
    resnets = {
        "resnet50_layer1": torchvision.models.resnet50,
        "wide_resnet50_2_layer1": torchvision.models.wide_resnet50_2,
        "resnext50_32x4d_layer1": torchvision.models.resnext50_32x4d,
    }
    if name in resnets:
        r = resnets[name]()
        return torch.nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1)
    if name == "shufflenet_v2_stage2":
        s = torchvision.models.shufflenet_v2_x1_0()
        return torch.nn.Sequential(s.conv1, s.maxpool, s.stage2)
    raise SystemExit(f"unknown slice {name}")


def measure(model, name, size, batch, seconds):
    reset = reset_peak_rss()
    x = torch.rand(batch, 3, size, size)
    with torch.no_grad():
        out = model(x)  # warm-up
        images, start, best = 0, time.perf_counter(), float("inf")
        cpu0 = time.process_time()
        while True:
            t = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - t)
            images += batch
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and images >= 2 * batch:
                break
    cpu = time.process_time() - cpu0
    return {
        "slice": name,
        "size": size,
        "batch": batch,
        "threads": torch.get_num_threads(),
        "images_per_s": images / elapsed,
        "best_images_per_s": batch / best,
        "images_per_cpu_s": images / cpu,
        "output_shape": list(out.shape[1:]),
        "peak_rss_mb": peak_rss_mb(),
        "peak_reset": reset,
        "torch": torch.__version__,
    }


def main():
    name, sizes = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 4.0
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = build(name).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    for size in sizes:
        print(json.dumps(measure(model, name, size, batch, seconds)), flush=True)


if __name__ == "__main__":
    main()
