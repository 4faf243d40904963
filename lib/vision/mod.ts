/**
 * Stage 3a: frozen early slices of ImageNet networks (PAPER.md §3) as TF.js layers models.
 *
 * - Registry ({@link BACKBONES}): `resnet50` (npm, stem + conv2_x), `vgg19` (to
 *   block3_conv1), `mobilenet_v1` (to conv_pw_5_relu), `darknet_reference` (two conv
 *   blocks), `darknet_tiny` (complete), and the paper's networks (`alexnet`, `vgg16`,
 *   `wide_resnet50_2`, `resnext50_32x4d`, `shufflenet_v2`) with how to obtain them. Add your
 *   own with {@link registerBackbone} / {@link backboneSpecFromJSON} (URL or folder + slice).
 * - Loading ({@link loadBackbone}): the graph is cut at the slice layer before any weight is
 *   read, and only the shards the slice needs are read (or downloaded).
 * - Frozen: every layer is non-trainable and BatchNormalization always uses its moving
 *   statistics, also when a larger model is trained through the backbone.
 * - Inputs: images with values in [0, 1], grayscale `[n, h, w]` or `[n, h, w, 1|3]`; each
 *   backbone maps them to its own range (caffe / tf / unit). `preprocess: false` feeds them
 *   unchanged (the paper z-normalises per batch and applies no ImageNet scaling).
 * - Features: {@link Backbone.features} (in memory) or {@link cacheFeatures} (on disk,
 *   chunked, resumable, float16 or float32).
 *
 * Training a head on top (two ways):
 * ```ts
 * const backbone = await loadBackbone("vgg19");
 * // 1. end to end, backbone frozen inside the model:
 * const input = tf.input({ shape: [150, 150, 1] });        // [0, 1] grayscale
 * const features = backbone.apply(input);                   // [37, 37, 256], frozen
 * // … add trainable layers on `features`, then tf.model({ inputs: input, outputs })
 * // 2. from cached features (the backbone runs once per image, not once per epoch):
 * const cache = await cacheFeatures(backbone, images, { upsample: 3 });
 * const { data, shape } = await cache.readRows(0, 1024);    // FeatureBatch
 * ```
 *
 * @module
 */
export {
  BACKBONES,
  backboneSpecFromJSON,
  getBackboneSpec,
  loadableBackbones,
  parseModelSource,
  PREPROCESSING_MODES,
  registerBackbone,
  TORCHVISION_ARCHITECTURES,
  validateBackboneSpec,
} from "./registry.ts";
export type { BackboneSpec, ModelSource, Preprocessing } from "./registry.ts";
export { Backbone, loadBackbone } from "./backbone.ts";
export type { FeaturesOptions, LoadBackboneOptions } from "./backbone.ts";
export {
  asFeatureBatch,
  CAFFE_BGR_MEANS,
  preprocessImages,
  preprocessingAffine,
  preprocessingLayer,
  preprocessTensor,
  toThreeChannels,
  upsampleNearest,
} from "./preprocess.ts";
export type { ChannelAffine } from "./preprocess.ts";
export {
  backboneWeightsHash,
  cacheBytes,
  cacheFeatures,
  FEATURE_STAGE_VERSION,
  FeatureCache,
  imageSetHash,
} from "./feature_cache.ts";
export type {
  FeatureCacheMeta,
  FeatureCacheOptions,
  FeatureDtype,
  MissingChunksOptions,
} from "./feature_cache.ts";
export {
  buildSlicedModel,
  listLayers,
  locateWeights,
  readWeights,
  sliceTopology,
} from "./layers_model.ts";
export type {
  KerasLayerJson,
  LayersModelJson,
  SlicedModel,
  SlicedTopology,
  WeightLocation,
  WeightReadReport,
} from "./layers_model.ts";
export {
  describeSource,
  FolderModelStore,
  openModelStore,
  resolveNpmModelFolder,
  UrlModelStore,
  weightFilesDigest,
} from "./source.ts";
export type { ModelStore } from "./source.ts";
export {
  freezeModel,
  FROZEN_CLASS_NAMES,
  FrozenBatchNormalization,
  FrozenDropout,
} from "./frozen.ts";
export { decodeJpeg, loadJpeg, resizeBilinear } from "./photo.ts";
export { saveLayersModel } from "./save.ts";
export type { SaveLayersModelOptions } from "./save.ts";
export { randomlyInitialisedBackbone } from "./random_init.ts";
export {
  hasTorchvisionCheckpoint,
  loadTorchvisionModel,
  torchvisionCacheDir,
  torchvisionWeightsDigest,
} from "./torchvision_backbone.ts";
export type { LoadedTorchvisionModel } from "./torchvision_backbone.ts";
