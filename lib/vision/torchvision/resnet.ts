/**
 * torchvision's Bottleneck ResNets of the paper: Wide-ResNet-50-2
 * (`torchvision.models.wide_resnet50_2`: width per group 128) and ResNeXt-50 32×4d
 * (`torchvision.models.resnext50_32x4d`: 32 groups of width 4 in each 3×3 convolution). Both
 * have blocks [3, 4, 6, 3] and the same widths; only the 3×3 convolutions' groups differ.
 *
 * The paper's slice (arXiv 2106.12479, §3) is the stem (conv1 7×7/2, bn1, ReLU, max-pool 3/2
 * with padding 1) and `layer1` → 256×38×38 at 150×150. The key list is the complete network's
 * (layer2–4, fc) for the strict check; only the slice is built.
 *
 * @module
 */
import type { tf } from "../../tf.ts";
import type { TorchGraph } from "./graph.ts";
import { batchNormParams, convParams, linearParams } from "./keys.ts";
import type { ParamSpec } from "./keys.ts";
import { prefixFilter } from "./spec.ts";
import type { TorchvisionArchitecture } from "./spec.ts";

/** Bottleneck expansion: a block outputs 4 × `planes` channels. */
const EXPANSION = 4;
/** Blocks per layer of a 50-layer ResNet. */
const BLOCKS = [3, 4, 6, 3];
/** `planes` of layer1 … layer4. */
const PLANES = [64, 128, 256, 512];

/** One Bottleneck block's shape. */
interface Block {
  prefix: string;
  inplanes: number;
  width: number;
  out: number;
  stride: number;
  downsample: boolean;
}

/** The blocks of all four layers, as torchvision's `ResNet._make_layer` creates them. */
function blocks(groups: number, widthPerGroup: number): Block[] {
  const result: Block[] = [];
  let inplanes = 64;
  PLANES.forEach((planes, layer) => {
    const width = Math.floor(planes * (widthPerGroup / 64)) * groups;
    for (let b = 0; b < BLOCKS[layer]; b++) {
      const stride = b === 0 && layer > 0 ? 2 : 1;
      const out = planes * EXPANSION;
      result.push({
        prefix: `layer${layer + 1}.${b}`,
        inplanes,
        width,
        out,
        stride,
        downsample: b === 0 && (stride !== 1 || inplanes !== out),
      });
      inplanes = out;
    }
  });
  return result;
}

function params(groups: number, widthPerGroup: number): ParamSpec[] {
  const specs = [...convParams("conv1", 64, 3, 7, false), ...batchNormParams("bn1", 64)];
  for (const b of blocks(groups, widthPerGroup)) {
    specs.push(
      ...convParams(`${b.prefix}.conv1`, b.width, b.inplanes, 1, false),
      ...batchNormParams(`${b.prefix}.bn1`, b.width),
      ...convParams(`${b.prefix}.conv2`, b.width, b.width / groups, 3, false),
      ...batchNormParams(`${b.prefix}.bn2`, b.width),
      ...convParams(`${b.prefix}.conv3`, b.out, b.width, 1, false),
      ...batchNormParams(`${b.prefix}.bn3`, b.out),
    );
    if (b.downsample) {
      specs.push(
        ...convParams(`${b.prefix}.downsample.0`, b.out, b.inplanes, 1, false),
        ...batchNormParams(`${b.prefix}.downsample.1`, b.out),
      );
    }
  }
  specs.push(...linearParams("fc", 1000, 512 * EXPANSION));
  return specs;
}

/** torchvision's `Bottleneck.forward`: 1×1, 3×3 (grouped), 1×1, plus the shortcut, ReLU. */
function bottleneck(g: TorchGraph, x: tf.SymbolicTensor, b: Block, groups: number) {
  const p = b.prefix;
  let y = g.conv(x, {
    name: `${p}.conv1`,
    filters: b.width,
    kernel: 1,
    bn: `${p}.bn1`,
    relu: `${p}.relu1`,
  });
  y = g.conv(y, {
    name: `${p}.conv2`,
    filters: b.width,
    kernel: 3,
    stride: b.stride,
    padding: 1,
    groups,
    bn: `${p}.bn2`,
    relu: `${p}.relu2`,
  });
  y = g.conv(y, { name: `${p}.conv3`, filters: b.out, kernel: 1, bn: `${p}.bn3` });
  const shortcut = b.downsample
    ? g.conv(x, {
      name: `${p}.downsample.0`,
      filters: b.out,
      kernel: 1,
      stride: b.stride,
      bn: `${p}.downsample.1`,
    })
    : x;
  return g.relu(g.add([y, shortcut], `${p}.add`), `${p}.relu`);
}

function resnet(
  name: "wide_resnet50_2" | "resnext50_32x4d",
  groups: number,
  widthPerGroup: number,
  description: string,
): TorchvisionArchitecture {
  return {
    name,
    torchvisionFunction: name,
    sliceDescription: `stem (conv1, bn1, ReLU, max-pool) and layer1; ${description}`,
    sliceChannels: 256,
    sliceShapeAt150: [38, 38, 256],
    complete: false,
    params: () => params(groups, widthPerGroup),
    inSlice: prefixFilter(["conv1.", "bn1.", "layer1."]),
    build(g: TorchGraph, input: tf.SymbolicTensor, complete: boolean): tf.SymbolicTensor {
      if (complete) throw new Error(`${name}: only the paper's slice is built here`);
      let x = g.conv(input, {
        name: "conv1",
        filters: 64,
        kernel: 7,
        stride: 2,
        padding: 3,
        bn: "bn1",
        relu: "relu",
      });
      x = g.maxPool(x, "maxpool", 3, 2, 1);
      for (const b of blocks(groups, widthPerGroup).filter((b) => b.prefix.startsWith("layer1."))) {
        x = bottleneck(g, x, b, groups);
      }
      return x;
    },
  };
}

/** torchvision's `wide_resnet50_2`, sliced after `layer1`. */
export const WIDE_RESNET50_2: TorchvisionArchitecture = resnet(
  "wide_resnet50_2",
  1,
  128,
  "Bottleneck width 128 in layer1",
);

/** torchvision's `resnext50_32x4d`, sliced after `layer1`. */
export const RESNEXT50_32X4D: TorchvisionArchitecture = resnet(
  "resnext50_32x4d",
  32,
  4,
  "3×3 convolutions in 32 groups of 4 channels",
);
