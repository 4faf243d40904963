/**
 * torchvision's AlexNet (`torchvision.models.alexnet`, the "one weird trick" variant with
 * 64-192-384-256-256 channels). The paper's slice (arXiv 2106.12479, §3) is `features[:5]`:
 * conv1 (11×11, stride 4, padding 2), ReLU, max-pool 3/2, conv2 (5×5, padding 2), ReLU →
 * 192×17×17 at 150×150. The complete network adds conv3–5, a max-pool,
 * AdaptiveAvgPool2d((6, 6)) and the classifier (dropout is the identity in inference).
 *
 * @module
 */
import type { tf } from "../../tf.ts";
import type { TorchGraph } from "./graph.ts";
import { convParams, linearParams } from "./keys.ts";
import type { ParamSpec } from "./keys.ts";
import { prefixFilter } from "./spec.ts";
import type { TorchvisionArchitecture } from "./spec.ts";

/** `features` convolutions: index, out, in, kernel, stride, padding. */
const CONVS: [number, number, number, number, number, number][] = [
  [0, 64, 3, 11, 4, 2],
  [3, 192, 64, 5, 1, 2],
  [6, 384, 192, 3, 1, 1],
  [8, 256, 384, 3, 1, 1],
  [10, 256, 256, 3, 1, 1],
];
/** Max-pools (3×3, stride 2) follow these `features` indices' ReLUs, at index + 2. */
const POOL_AFTER = new Set([0, 3, 10]);

function params(): ParamSpec[] {
  return [
    ...CONVS.flatMap(([i, out, inp, k]) => convParams(`features.${i}`, out, inp, k, true)),
    ...linearParams("classifier.1", 4096, 256 * 6 * 6),
    ...linearParams("classifier.4", 4096, 4096),
    ...linearParams("classifier.6", 1000, 4096),
  ];
}

function build(g: TorchGraph, input: tf.SymbolicTensor, complete: boolean): tf.SymbolicTensor {
  let x = input;
  for (const [i, filters, , kernel, stride, padding] of CONVS) {
    if (!complete && i > 3) break;
    x = g.conv(x, {
      name: `features.${i}`,
      filters,
      kernel,
      stride,
      padding,
      bias: true,
      relu: `features.${i + 1}`,
    });
    if (POOL_AFTER.has(i) && (complete || i === 0)) x = g.maxPool(x, `features.${i + 2}`, 3, 2);
  }
  if (!complete) return x;
  x = g.adaptiveAvgPool(x, "avgpool", [6, 6]);
  x = g.flatten(x, "flatten");
  x = g.linear(x, "classifier.1", 4096, "classifier.2", [256, 6, 6]);
  x = g.linear(x, "classifier.4", 4096, "classifier.5");
  return g.linear(x, "classifier.6", 1000);
}

/** torchvision's `alexnet`, sliced after conv2's ReLU (`features[:5]`). */
export const ALEXNET: TorchvisionArchitecture = {
  name: "alexnet",
  torchvisionFunction: "alexnet",
  sliceDescription: "features[:5]: conv1, ReLU, max-pool, conv2, ReLU",
  sliceChannels: 192,
  sliceShapeAt150: [17, 17, 192],
  complete: true,
  params,
  inSlice: prefixFilter(["features.0.", "features.3."]),
  build,
};
