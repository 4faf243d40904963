/**
 * torchvision's VGG16 without BatchNorm (`torchvision.models.vgg16`, configuration "D"). The
 * paper's slice (arXiv 2106.12479, §3) is `features[:12]`: conv1_1 … conv3_1 with their ReLUs
 * and two max-pools → 256×37×37 at 150×150. The complete network adds the remaining
 * convolutions, AdaptiveAvgPool2d((7, 7)) and the classifier (dropout is the identity in
 * inference).
 *
 * @module
 */
import type { tf } from "../../tf.ts";
import type { TorchGraph } from "./graph.ts";
import { convParams, linearParams } from "./keys.ts";
import type { ParamSpec } from "./keys.ts";
import { prefixFilter } from "./spec.ts";
import type { TorchvisionArchitecture } from "./spec.ts";

/** Configuration "D": output channels of each 3×3 convolution, "M" for a 2×2 max-pool. */
const CONFIG_D: (number | "M")[] = [
  64,
  64,
  "M",
  128,
  128,
  "M",
  256,
  256,
  256,
  "M",
  512,
  512,
  512,
  "M",
  512,
  512,
  512,
  "M",
];
/** `features[:12]` ends after conv3_1's ReLU. */
const SLICE_END = 12;

/** Each `features` module: index, kind, output channels and input channels of a convolution. */
function layout(): { index: number; conv?: { out: number; inp: number } }[] {
  const modules: { index: number; conv?: { out: number; inp: number } }[] = [];
  let index = 0;
  let channels = 3;
  for (const v of CONFIG_D) {
    if (v === "M") {
      modules.push({ index: index++ });
    } else {
      modules.push({ index, conv: { out: v, inp: channels } });
      index += 2; // the conv and its ReLU
      channels = v;
    }
  }
  return modules;
}

function params(): ParamSpec[] {
  return [
    ...layout().flatMap(({ index, conv }) =>
      conv ? convParams(`features.${index}`, conv.out, conv.inp, 3, true) : []
    ),
    ...linearParams("classifier.0", 4096, 512 * 7 * 7),
    ...linearParams("classifier.3", 4096, 4096),
    ...linearParams("classifier.6", 1000, 4096),
  ];
}

function build(g: TorchGraph, input: tf.SymbolicTensor, complete: boolean): tf.SymbolicTensor {
  let x = input;
  for (const { index, conv } of layout()) {
    if (!complete && index >= SLICE_END) break;
    if (!conv) {
      x = g.maxPool(x, `features.${index}`, 2, 2);
      continue;
    }
    x = g.conv(x, {
      name: `features.${index}`,
      filters: conv.out,
      kernel: 3,
      padding: 1,
      bias: true,
      relu: `features.${index + 1}`,
    });
  }
  if (!complete) return x;
  x = g.adaptiveAvgPool(x, "avgpool", [7, 7]);
  x = g.flatten(x, "flatten");
  x = g.linear(x, "classifier.0", 4096, "classifier.1", [512, 7, 7]);
  x = g.linear(x, "classifier.3", 4096, "classifier.4");
  return g.linear(x, "classifier.6", 1000);
}

/** torchvision's `vgg16`, sliced after conv3_1's ReLU (`features[:12]`). */
export const VGG16: TorchvisionArchitecture = {
  name: "vgg16",
  torchvisionFunction: "vgg16",
  sliceDescription: "features[:12]: conv1_1 … conv3_1 with ReLUs and two max-pools",
  sliceChannels: 256,
  sliceShapeAt150: [37, 37, 256],
  complete: true,
  params,
  inSlice: prefixFilter(
    layout().filter((m) => m.conv && m.index < SLICE_END).map((m) => `features.${m.index}.`),
  ),
  build,
};
