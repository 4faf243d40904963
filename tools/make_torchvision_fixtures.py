#!/usr/bin/env python3
"""Reference fixtures for the torchvision architectures rebuilt in TensorFlow.js.

For each architecture of the paper (arXiv 2106.12479, section 3: AlexNet, VGG16,
Wide-ResNet-50-2, ResNeXt-50 32x4d, ShuffleNetV2 1.0) this builds torchvision's model with
random weights (``weights=None``, seeded per architecture), gives every BatchNorm non-trivial
affine parameters and running statistics (random gamma/beta, then three forward passes in
train mode with a cumulative average), and writes, into OUT:

* ``<arch>.pth`` / ``<arch>.legacy.pth``: the complete state_dict saved with
  ``torch.save`` (zip format) and with ``_use_new_zipfile_serialization=False`` (legacy
  format), as chosen by ``--formats``;
* ``<arch>.raw.json`` + ``<arch>.raw.bin`` (format ``raw``): every key of the complete
  state_dict with dtype and shape, and the values (little-endian float32, row-major) of
  either only the keys the paper's slice needs (``--scope slice``) or all (``--scope full``);
* ``<arch>.cases.json`` + ``<arch>.<case>.{input,output}.bin``: two random inputs per case
  and PyTorch's eval-mode outputs, both channels-last float32 (NHWC, or [n, 1000]): the
  slice at 150x150 and 50x50, and with ``--scope full`` for AlexNet and VGG16 also the
  complete network's logits at 224x224;
* ``layers.json``: inputs and PyTorch's outputs (channels-last) of single operations at
  uneven sizes: adaptive average pooling, max-pooling with padding and ceil_mode, ShuffleNetV2's
  channel shuffle.

Usage: python3 tools/make_torchvision_fixtures.py OUT [--archs a,b] [--formats zip,legacy,raw]
       [--scope slice|full] [--seed N]
Needs Debian's python3-torch and python3-torchvision.
"""
import argparse
import json
import os
import sys
import zlib

try:
    import torch
    import torchvision
except ImportError as e:  # the TS side reads this line and names the Debian packages
    sys.exit(f"No module named '{e.name}' (install python3-torch python3-torchvision)")


def _resnet_slice(model, x):
    """Stem (conv1, bn1, relu, maxpool) and layer1."""
    return model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x)))))


def _shufflenet_slice(model, x):
    """conv1 (conv, BN, ReLU), maxpool and stage2."""
    return model.stage2(model.maxpool(model.conv1(x)))


# name -> (torchvision function, slice forward, key prefixes of the slice, has a complete test)
ARCHS = {
    "alexnet": ("alexnet", lambda m, x: m.features[:5](x), ["features.0.", "features.3."], True),
    "vgg16": (
        "vgg16",
        lambda m, x: m.features[:12](x),
        [f"features.{i}." for i in (0, 2, 5, 7, 10)],
        True,
    ),
    "wide_resnet50_2": ("wide_resnet50_2", _resnet_slice, ["conv1.", "bn1.", "layer1."], False),
    "resnext50_32x4d": ("resnext50_32x4d", _resnet_slice, ["conv1.", "bn1.", "layer1."], False),
    "shufflenet_v2": ("shufflenet_v2_x1_0", _shufflenet_slice, ["conv1.", "stage2."], False),
}

DTYPES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.float16: "float16",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.uint8: "uint8",
    torch.bool: "bool",
}


def build(arch, seed):
    """torchvision's model with random weights and non-trivial BatchNorm parameters/statistics."""
    torch.manual_seed(seed + zlib.crc32(arch.encode()) % 100000)
    model = getattr(torchvision.models, ARCHS[arch][0])(weights=None)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if bns:
        with torch.no_grad():
            for bn in bns:
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0.0, 0.2)
                bn.reset_running_stats()
                bn.momentum = None  # cumulative average over the passes below
            model.train()
            for _ in range(3):
                model(torch.randn(4, 3, 64, 64))
    return model.eval()


def write_floats(path, tensor):
    """Writes a tensor as little-endian float32, row-major."""
    array = tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4")
    with open(path, "wb") as f:
        f.write(array.tobytes())


def write_raw(model, arch, out, scope):
    """The key list of the complete state_dict and the values of the slice's keys (or all)."""
    state = model.state_dict()
    prefixes = ARCHS[arch][2]
    keys = [
        {"key": k, "dtype": DTYPES[v.dtype], "shape": list(v.shape)} for k, v in state.items()
    ]
    data = {}
    offset = 0
    with open(os.path.join(out, f"{arch}.raw.bin"), "wb") as f:
        for k, v in state.items():
            if scope == "slice" and not any(k.startswith(p) for p in prefixes):
                continue
            array = v.detach().to(torch.float32).contiguous().numpy().astype("<f4")
            f.write(array.tobytes())
            data[k] = offset
            offset += array.size
    with open(os.path.join(out, f"{arch}.raw.json"), "w") as f:
        json.dump({"architecture": ARCHS[arch][0], "scope": scope, "keys": keys, "offsets": data}, f)


def write_cases(model, arch, out, scope, seed):
    """Inputs and PyTorch's eval-mode outputs, channels-last."""
    generator = torch.Generator().manual_seed(seed + 1)
    forward = ARCHS[arch][1]
    runs = [("slice150", 150, lambda x: forward(model, x)), ("slice50", 50, lambda x: forward(model, x))]
    if scope == "full" and ARCHS[arch][3]:
        runs.append(("full224", 224, model))
    cases = []
    with torch.no_grad():
        for name, size, fn in runs:
            x = torch.randn(2, 3, size, size, generator=generator)
            y = fn(x)
            if y.dim() == 4:
                y = y.permute(0, 2, 3, 1)
            write_floats(os.path.join(out, f"{arch}.{name}.input.bin"), x.permute(0, 2, 3, 1))
            write_floats(os.path.join(out, f"{arch}.{name}.output.bin"), y)
            cases.append({
                "name": name,
                "input": {"file": f"{arch}.{name}.input.bin", "shape": [2, size, size, 3]},
                "output": {"file": f"{arch}.{name}.output.bin", "shape": list(y.shape)},
            })
    with open(os.path.join(out, f"{arch}.cases.json"), "w") as f:
        json.dump(cases, f)


def _channel_shuffle(x, groups):
    """torchvision's ShuffleNetV2 channel_shuffle."""
    return torchvision.models.shufflenetv2.channel_shuffle(x, groups)


# single-layer cases: name, op, arguments, input NCHW shape
LAYER_CASES = [
    ("adaptive_13x5_to_6x4", "adaptive_avg_pool", {"outputSize": [6, 4]}, [2, 3, 13, 5]),
    ("adaptive_4x9_to_6x7", "adaptive_avg_pool", {"outputSize": [6, 7]}, [1, 2, 4, 9]),
    ("maxpool_k3_s2_p1", "max_pool", {"poolSize": 3, "strides": 2, "padding": 1, "ceilMode": False},
     [2, 3, 9, 8]),
    ("maxpool_k3_s2_ceil", "max_pool", {"poolSize": 3, "strides": 2, "padding": 1, "ceilMode": True},
     [2, 3, 10, 7]),
    ("maxpool_k2_s2_p1_ceil", "max_pool", {"poolSize": 2, "strides": 2, "padding": 1, "ceilMode": True},
     [1, 2, 5, 6]),
    ("shuffle_12_by_2", "channel_shuffle", {"groups": 2}, [2, 12, 3, 4]),
    ("shuffle_12_by_3", "channel_shuffle", {"groups": 3}, [1, 12, 2, 2]),
]


def write_layer_cases(out, seed):
    """`layers.json`: inputs and PyTorch's outputs (channels-last) of single layers."""
    generator = torch.Generator().manual_seed(seed + 2)
    ops = {
        "adaptive_avg_pool": lambda x, a: torch.nn.functional.adaptive_avg_pool2d(x, a["outputSize"]),
        "max_pool": lambda x, a: torch.nn.functional.max_pool2d(
            x, a["poolSize"], a["strides"], a["padding"], ceil_mode=a["ceilMode"]),
        "channel_shuffle": lambda x, a: _channel_shuffle(x, a["groups"]),
    }
    cases = []
    for name, op, arguments, shape in LAYER_CASES:
        x = torch.randn(*shape, generator=generator) - 1.0  # mostly negative: padding must not win
        y = ops[op](x, arguments)
        cases.append({
            "name": name,
            "op": op,
            "args": arguments,
            "input": {"shape": list(x.permute(0, 2, 3, 1).shape),
                      "data": x.permute(0, 2, 3, 1).flatten().tolist()},
            "output": {"shape": list(y.permute(0, 2, 3, 1).shape),
                       "data": y.permute(0, 2, 3, 1).flatten().tolist()},
        })
    with open(os.path.join(out, "layers.json"), "w") as f:
        json.dump(cases, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="output folder (created if missing)")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated subset")
    parser.add_argument("--formats", default="zip,legacy,raw", help="of zip, legacy, raw")
    parser.add_argument("--scope", choices=["slice", "full"], default="full",
                        help="raw values of the slice's keys only, or all (and full logits)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    archs = [a for a in args.archs.split(",") if a]
    formats = {f for f in args.formats.split(",") if f}
    for name in archs:
        if name not in ARCHS:
            sys.exit(f"unknown architecture {name!r}; known: {', '.join(ARCHS)}")
    for f in formats - {"zip", "legacy", "raw"}:
        sys.exit(f"unknown format {f!r}; known: zip, legacy, raw")
    os.makedirs(args.out, exist_ok=True)
    write_layer_cases(args.out, args.seed)
    for arch in archs:
        model = build(arch, args.seed)
        if "zip" in formats:
            torch.save(model.state_dict(), os.path.join(args.out, f"{arch}.pth"))
        if "legacy" in formats:
            torch.save(model.state_dict(), os.path.join(args.out, f"{arch}.legacy.pth"),
                       _use_new_zipfile_serialization=False)
        if "raw" in formats:
            write_raw(model, arch, args.out, args.scope)
        write_cases(model, arch, args.out, args.scope, args.seed)
        print(f"{arch}: written to {args.out}", flush=True)


if __name__ == "__main__":
    main()
