/**
 * The paper's five torchvision networks (arXiv 2106.12479, §3) as frozen TF.js layers models
 * built from a PyTorch `state_dict`: the checkpoint's keys and shapes are checked strictly
 * against the complete architecture first, then only the tensors of the paper's slice are
 * read (or, for AlexNet and VGG16, of the complete network).
 *
 * @module
 */
import { tf } from "../../tf.ts";
import { freezeModel } from "../frozen.ts";
import type { StateDictSource } from "../torch/types.ts";
import { ALEXNET } from "./alexnet.ts";
import { TorchGraph } from "./graph.ts";
import { compareKeys, isBatchCounter, keyMismatchMessage, keysMatch } from "./keys.ts";
import { RESNEXT50_32X4D, WIDE_RESNET50_2 } from "./resnet.ts";
import { SHUFFLENET_V2 } from "./shufflenet.ts";
import type { TorchvisionArch, TorchvisionArchitecture } from "./spec.ts";
import { VGG16 } from "./vgg.ts";

/** Every architecture by name: metadata, the complete key list and the graph builder. */
export const TORCHVISION_ARCHS: Readonly<Record<TorchvisionArch, TorchvisionArchitecture>> = {
  alexnet: ALEXNET,
  vgg16: VGG16,
  wide_resnet50_2: WIDE_RESNET50_2,
  resnext50_32x4d: RESNEXT50_32X4D,
  shufflenet_v2: SHUFFLENET_V2,
};

/** The architecture named `arch`; an unknown name is an error listing the known ones. */
export function getTorchvisionArch(arch: string): TorchvisionArchitecture {
  const found = (TORCHVISION_ARCHS as Record<string, TorchvisionArchitecture>)[arch];
  if (!found) {
    throw new Error(
      `Unknown torchvision architecture "${arch}"; known: ${
        Object.keys(TORCHVISION_ARCHS).join(", ")
      }`,
    );
  }
  return found;
}

/**
 * Checks `source`'s keys and shapes against the complete `arch` like PyTorch's strict
 * `load_state_dict`: missing keys, unexpected keys and wrong shapes are one error listing
 * them (naming the architecture it does match, if any). Missing BatchNorm batch counters are
 * accepted, as PyTorch accepts them from old checkpoints.
 */
export function checkStateDictKeys(arch: TorchvisionArch, source: StateDictSource): void {
  const architecture = getTorchvisionArch(arch);
  const comparison = compareKeys(source.entries, architecture.params());
  if (keysMatch(comparison)) return;
  const others = Object.values(TORCHVISION_ARCHS)
    .filter((a) => a.name !== arch && keysMatch(compareKeys(source.entries, a.params())))
    .map((a) => a.name);
  throw new Error(
    keyMismatchMessage(source.description, architecture.torchvisionFunction, comparison, others),
  );
}

/** Options of {@link buildTorchvisionModel}. */
export interface TorchvisionBuildOptions {
  /**
   * The paper's slice (default true); false builds the complete network to the 1,000 logits
   * (AlexNet and VGG16 only).
   */
  slice?: boolean;
  /**
   * Fold BatchNorm (and ReLU) into the layer before it (default true); false keeps each
   * PyTorch module as a layer, BatchNorm as an inference-only `FrozenBatchNormalization`.
   */
  foldBatchNorm?: boolean;
  /** Fix the input's spatial size `[h, w]`; null (default) leaves it open. */
  inputSize?: [number, number] | null;
}

/** What {@link buildTorchvisionModel} returns. */
export interface TorchvisionModel {
  /**
   * The frozen network: input `[n, h, w, 3]` channels-last, output `[n, h', w', c]` (slice)
   * or `[n, 1000]` logits (complete). Every layer is non-trainable and BatchNorm runs in
   * inference mode.
   */
  model: tf.LayersModel;
  /** Names of its layers in order (after PyTorch's module paths, e.g. `"layer1.0.conv2"`). */
  layerNames: string[];
  /** The state_dict keys read from the source. */
  keysRead: string[];
}

/**
 * Builds torchvision's `arch` from a `state_dict` as a frozen TF.js model, sliced at the
 * paper's point by default. Checks every key and shape first (see {@link checkStateDictKeys}),
 * then reads only the tensors the network built needs. Does not close `source`.
 */
export async function buildTorchvisionModel(
  arch: TorchvisionArch,
  source: StateDictSource,
  options: TorchvisionBuildOptions = {},
): Promise<TorchvisionModel> {
  const architecture = getTorchvisionArch(arch);
  const complete = !(options.slice ?? true);
  if (complete && !architecture.complete) {
    const able = Object.values(TORCHVISION_ARCHS).filter((a) => a.complete).map((a) => a.name);
    throw new Error(
      `${arch}: only the paper's slice (${architecture.sliceDescription}) is built; ` +
        `slice: false is available for ${able.join(" and ")}`,
    );
  }
  checkStateDictKeys(arch, source);
  const keysRead = architecture.params()
    .map((p) => p.key)
    .filter((key) => !isBatchCounter(key) && (complete || architecture.inSlice(key)));
  const state = await source.read(keysRead);
  const context = `${source.description} (${architecture.torchvisionFunction})`;
  const graph = new TorchGraph(state, { foldBatchNorm: options.foldBatchNorm ?? true, context });
  const [h, w] = options.inputSize ?? [null, null];
  const input = tf.input({ shape: [h, w, 3], name: "input" });
  const output = architecture.build(graph, input, complete);
  const unused = keysRead.filter((k) => !graph.keysUsed.includes(k));
  if (unused.length) {
    throw new Error(`${context}: read but not used (a bug in the builder): ${unused.join(", ")}`);
  }
  const model = freezeModel(
    tf.model({ inputs: input, outputs: output, name: `${arch}${complete ? "" : "_slice"}` }),
  );
  return { model, layerNames: graph.layerNames, keysRead };
}
