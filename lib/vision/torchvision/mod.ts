/**
 * torchvision's networks of the paper (arXiv 2106.12479, §3: AlexNet, VGG16, Wide-ResNet-50-2,
 * ResNeXt-50 32×4d, ShuffleNetV2 1.0×) rebuilt as frozen TF.js layers models (channels-last)
 * from a PyTorch `state_dict`, sliced where the paper slices them, computing what PyTorch
 * computes in eval mode.
 *
 * ```ts
 * import { buildTorchvisionModel, TORCHVISION_ARCHS } from "./lib/vision/torchvision/mod.ts";
 *
 * const source: StateDictSource = …; // e.g. from the checkpoint reader in ../torch/
 * const { model } = await buildTorchvisionModel("resnext50_32x4d", source);
 * const features = model.predict(tf.zeros([1, 150, 150, 3])) as tf.Tensor; // [1, 38, 38, 256]
 * console.log(TORCHVISION_ARCHS.resnext50_32x4d.sliceDescription);
 * ```
 *
 * @module
 */
export {
  buildTorchvisionModel,
  checkStateDictKeys,
  getTorchvisionArch,
  TORCHVISION_ARCHS,
} from "./architectures.ts";
export type { TorchvisionBuildOptions, TorchvisionModel } from "./architectures.ts";
export type { TorchvisionArch, TorchvisionArchitecture } from "./spec.ts";
export type { ParamSpec } from "./keys.ts";
export {
  AdaptiveAveragePooling2D,
  adaptivePoolMatrix,
  adaptiveWindows,
  ChannelShuffle,
  channelShuffleOrder,
  ChannelSlice,
  poolOutputSize,
  TorchConv2D,
  TorchMaxPool2D,
} from "./layers.ts";
export {
  convKernel,
  denseKernel,
  depthwiseKernel,
  foldBatchNorm,
  groupedConvKernel,
} from "./weights.ts";
