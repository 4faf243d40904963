/**
 * torchvision's ShuffleNetV2 1.0× (`torchvision.models.shufflenet_v2_x1_0`: stages of
 * [4, 8, 4] blocks with 116, 232, 464 channels). The paper's slice (arXiv 2106.12479, §3) is
 * conv1 (3×3/2 convolution, BN, ReLU), max-pool 3/2 with padding 1 and `stage2` →
 * 116×19×19 at 150×150. The key list is the complete network's (stage3–4, conv5, fc) for the
 * strict check; only the slice is built.
 *
 * @module
 */
import type { tf } from "../../tf.ts";
import type { TorchGraph } from "./graph.ts";
import { batchNormParams, convParams, linearParams } from "./keys.ts";
import type { ParamSpec } from "./keys.ts";
import { prefixFilter } from "./spec.ts";
import type { TorchvisionArchitecture } from "./spec.ts";

/** Blocks per stage (stage2 … stage4). */
const REPEATS = [4, 8, 4];
/** Output channels of conv1, stage2, stage3, stage4 and conv5. */
const CHANNELS = [24, 116, 232, 464, 1024];

/** One `InvertedResidual` block's shape. */
interface Block {
  prefix: string;
  inp: number;
  oup: number;
  stride: number;
}

function blocks(): Block[] {
  const result: Block[] = [];
  let inp = CHANNELS[0];
  REPEATS.forEach((repeats, s) => {
    const oup = CHANNELS[s + 1];
    for (let b = 0; b < repeats; b++) {
      result.push({ prefix: `stage${s + 2}.${b}`, inp, oup, stride: b === 0 ? 2 : 1 });
      inp = oup;
    }
  });
  return result;
}

function params(): ParamSpec[] {
  const specs = [...convParams("conv1.0", 24, 3, 3, false), ...batchNormParams("conv1.1", 24)];
  for (const { prefix: p, inp, oup, stride } of blocks()) {
    const half = oup / 2;
    if (stride > 1) {
      specs.push(
        ...convParams(`${p}.branch1.0`, inp, 1, 3, false),
        ...batchNormParams(`${p}.branch1.1`, inp),
        ...convParams(`${p}.branch1.2`, half, inp, 1, false),
        ...batchNormParams(`${p}.branch1.3`, half),
      );
    }
    specs.push(
      ...convParams(`${p}.branch2.0`, half, stride > 1 ? inp : half, 1, false),
      ...batchNormParams(`${p}.branch2.1`, half),
      ...convParams(`${p}.branch2.3`, half, 1, 3, false),
      ...batchNormParams(`${p}.branch2.4`, half),
      ...convParams(`${p}.branch2.5`, half, half, 1, false),
      ...batchNormParams(`${p}.branch2.6`, half),
    );
  }
  specs.push(
    ...convParams("conv5.0", CHANNELS[4], CHANNELS[3], 1, false),
    ...batchNormParams("conv5.1", CHANNELS[4]),
    ...linearParams("fc", 1000, CHANNELS[4]),
  );
  return specs;
}

/** `branch2`: 1×1 conv, BN, ReLU, 3×3 depthwise (stride), BN, 1×1 conv, BN, ReLU. */
function branch2(g: TorchGraph, x: tf.SymbolicTensor, p: string, half: number, stride: number) {
  let y = g.conv(x, {
    name: `${p}.branch2.0`,
    filters: half,
    kernel: 1,
    bn: `${p}.branch2.1`,
    relu: `${p}.branch2.2`,
  });
  y = g.conv(y, {
    name: `${p}.branch2.3`,
    filters: half,
    kernel: 3,
    stride,
    padding: 1,
    groups: half,
    bn: `${p}.branch2.4`,
  });
  return g.conv(y, {
    name: `${p}.branch2.5`,
    filters: half,
    kernel: 1,
    bn: `${p}.branch2.6`,
    relu: `${p}.branch2.7`,
  });
}

/** torchvision's `InvertedResidual.forward`, then `channel_shuffle(out, 2)`. */
function invertedResidual(g: TorchGraph, x: tf.SymbolicTensor, b: Block): tf.SymbolicTensor {
  const { prefix: p, inp, oup, stride } = b;
  const half = oup / 2;
  let left: tf.SymbolicTensor;
  let right: tf.SymbolicTensor;
  if (stride === 1) {
    left = g.channelSlice(x, `${p}.chunk0`, 0, half);
    right = branch2(g, g.channelSlice(x, `${p}.chunk1`, half, half), p, half, 1);
  } else {
    left = g.conv(x, {
      name: `${p}.branch1.0`,
      filters: inp,
      kernel: 3,
      stride,
      padding: 1,
      groups: inp,
      bn: `${p}.branch1.1`,
    });
    left = g.conv(left, {
      name: `${p}.branch1.2`,
      filters: half,
      kernel: 1,
      bn: `${p}.branch1.3`,
      relu: `${p}.branch1.4`,
    });
    right = branch2(g, x, p, half, stride);
  }
  return g.channelShuffle(g.concat([left, right], `${p}.cat`), `${p}.shuffle`, 2);
}

/** torchvision's `shufflenet_v2_x1_0`, sliced after `stage2`. */
export const SHUFFLENET_V2: TorchvisionArchitecture = {
  name: "shufflenet_v2",
  torchvisionFunction: "shufflenet_v2_x1_0",
  sliceDescription: "conv1 (conv, BN, ReLU), max-pool and stage2",
  sliceChannels: 116,
  sliceShapeAt150: [19, 19, 116],
  complete: false,
  params,
  inSlice: prefixFilter(["conv1.", "stage2."]),
  build(g: TorchGraph, input: tf.SymbolicTensor, complete: boolean): tf.SymbolicTensor {
    if (complete) throw new Error("shufflenet_v2: only the paper's slice is built here");
    let x = g.conv(input, {
      name: "conv1.0",
      filters: 24,
      kernel: 3,
      stride: 2,
      padding: 1,
      bn: "conv1.1",
      relu: "conv1.2",
    });
    x = g.maxPool(x, "maxpool", 3, 2, 1);
    for (const b of blocks().filter((b) => b.prefix.startsWith("stage2."))) {
      x = invertedResidual(g, x, b);
    }
    return x;
  },
};
