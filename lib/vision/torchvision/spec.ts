/**
 * What each torchvision architecture module provides: its complete `state_dict` key list, which
 * of those keys the paper's slice needs, and a builder of the frozen TF.js graph.
 *
 * @module
 */
import type { tf } from "../../tf.ts";
import type { TorchGraph } from "./graph.ts";
import type { ParamSpec } from "./keys.ts";

/** The architectures of the paper (arXiv 2106.12479, §3). */
export type TorchvisionArch =
  | "alexnet"
  | "vgg16"
  | "wide_resnet50_2"
  | "resnext50_32x4d"
  | "shufflenet_v2";

/** One torchvision architecture: metadata, keys and graph builder. */
export interface TorchvisionArchitecture {
  /** Name used here. */
  name: TorchvisionArch;
  /** The `torchvision.models` function that builds it, e.g. `"shufflenet_v2_x1_0"`. */
  torchvisionFunction: string;
  /** The paper's frozen slice, in words. */
  sliceDescription: string;
  /** Channels of the slice's output. */
  sliceChannels: number;
  /** Output `[h, w, c]` of the slice at the paper's 150×150 input. */
  sliceShapeAt150: [number, number, number];
  /** Whether {@link TorchvisionArchitecture.build} can build the complete network. */
  complete: boolean;
  /** Every key of the complete network's `model.state_dict()`, in its order, with shapes. */
  params(): ParamSpec[];
  /** Whether the slice uses `key` (batch counters are never read). */
  inSlice(key: string): boolean;
  /**
   * Builds the graph on `input` (`[n, h, w, 3]`): the paper's slice, or with `complete` the
   * whole network to the 1,000 logits.
   */
  build(graph: TorchGraph, input: tf.SymbolicTensor, complete: boolean): tf.SymbolicTensor;
}

/** `inSlice` for a slice made of the modules under `prefixes` (e.g. `"layer1."`). */
export function prefixFilter(prefixes: readonly string[]): (key: string) => boolean {
  return (key) => prefixes.some((p) => key.startsWith(p));
}
