"""PyTorch reference for bench/train.ts: training images/s of the paper's VGG-type model.

Model (PAPER.md §3, random weights, timing only): grayscale image -> nearest upsampling
(factor given) -> per-batch z-normalisation -> 3 identical channels -> frozen VGG16
features[:12] (conv1_1 ... conv3_1 + ReLU, 2 max-pools; the same layer shapes as VGG19 up
to block3_conv1, in eval mode, no gradients) -> trainable 4 x [Conv k=4, ReLU, BatchNorm]
(256->192->128->64->32, dropout 0.05 after the first three; padding given) ->
AdaptiveAvgPool2d(10) -> 3200 -> 1600 -> 700 -> 50 -> 2 (ReLU, dropout 0.3 after the first
two). Adam with the paper's two learning rates, cross-entropy, batch size given.

With MODE "cached" the step starts from random frozen features of the slice's output shape
(256 x size·upsample/4 squared, what bench/train.ts's cached mode gives ours): the trainable
part alone, as the experiment trains it on cached features.

Usage: python3 train_reference.py IMAGE_SIZE UPSAMPLE PADDING BATCH STEPS [THREADS] [MODE]
Prints one JSON line: {"images_per_second", "fastest_images_per_second" (best step),
"images_per_cpu_second" (process CPU time, all threads), "seconds_per_step", ...}.
"""

import json
import sys
import time

import torch
import torch.nn as nn
from _memory import peak_rss_mb  # bench/_memory.py


def vgg_slice():
    layers = []
    cin = 3
    for width, convs in ((64, 2), (128, 2), (256, 1)):
        for _ in range(convs):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
            cin = width
        if width != 256:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


def conv_stack(padding):
    widths = [256, 192, 128, 64, 32]
    layers = []
    for i in range(4):
        layers += [
            nn.Conv2d(widths[i], widths[i + 1], 4, padding=padding),
            nn.ReLU(),
            nn.BatchNorm2d(widths[i + 1]),
        ]
        if i < 3:
            layers.append(nn.Dropout(0.05))
    return nn.Sequential(*layers)


def head():
    return nn.Sequential(
        nn.Linear(3200, 1600), nn.ReLU(inplace=True), nn.Dropout(0.3),
        nn.Linear(1600, 700), nn.ReLU(inplace=True), nn.Dropout(0.3),
        nn.Linear(700, 50), nn.ReLU(inplace=True), nn.Linear(50, 2),
    )


def main():
    size, upsample, padding, batch, steps = (
        int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    threads = int(sys.argv[6]) if len(sys.argv) > 6 else 2
    mode = sys.argv[7] if len(sys.argv) > 7 else "end-to-end"
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    backbone = vgg_slice().eval()
    for p in backbone.parameters():
        p.requires_grad = False
    stack, pool, mlp = conv_stack(padding), nn.AdaptiveAvgPool2d(10), head()
    optimizer = torch.optim.Adam([
        {"params": stack.parameters(), "lr": 5e-5},
        {"params": mlp.parameters(), "lr": 1e-3},
    ])
    loss_fn = nn.CrossEntropyLoss()
    up = nn.Upsample(scale_factor=upsample, mode="nearest")
    images = torch.rand(batch, 1, size, size)
    side = size * upsample // 4
    cached = torch.rand(batch, 256, side, side) if mode == "cached" else None
    labels = torch.randint(0, 2, (batch,))

    def step():
        if cached is not None:
            features = cached
        else:
            x = up(images) if upsample != 1 else images
            x = (x - x.mean()) / torch.sqrt(x.std() ** 2 + 1e-8)
            x = x.expand(-1, 3, -1, -1)
            with torch.no_grad():
                features = backbone(x)
        logits = mlp(torch.flatten(pool(stack(features)), 1))
        loss = loss_fn(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    step()  # warm-up
    start, cpu_start = time.perf_counter(), time.process_time()
    fastest = float("inf")
    for _ in range(steps):
        t = time.perf_counter()
        step()
        fastest = min(fastest, time.perf_counter() - t)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    print(json.dumps({
        "images_per_second": steps * batch / seconds,
        "fastest_images_per_second": batch / fastest,
        "images_per_cpu_second": steps * batch / cpu,
        "seconds_per_step": seconds / steps,
        "input": size * upsample,
        "padding": padding,
        "threads": threads,
        "mode": mode,
        "peak_rss_mb": peak_rss_mb(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
