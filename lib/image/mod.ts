/**
 * Stage 2 of the paper: embedding vectors → DeepInsight images. Scalers, our own t-SNE
 * (exact and Barnes–Hut, wasm-accelerated distances, Euclidean or cosine), other feature maps
 * (PCA, RBF kernel PCA, UMAP through umap-js, a random control), the layout geometry (convex
 * hull, minimum bounding rectangle), discretisation onto a pixel grid (`bin`, `qtb`, `lsa`
 * through our own linear assignment solver), pyDeepInsight compatibility conventions, the
 * {@link ImageTransformer} and PNG output.
 *
 * @module
 */
export {
  IdentityScaler,
  LogScaler,
  makeScaler,
  MinMaxScaler,
  type MinMaxScalerOptions,
  type Scaler,
  scalerFromJSON,
  type ScalerState,
} from "./scalers.ts";
export {
  klDivergenceExact,
  TSNE,
  type TsneFitOptions,
  tsneInputDistances,
  type TsneMetric,
  type TsneOptions,
  type TsneProgress,
  type TsneTimings,
} from "./tsne.ts";
export {
  conditionalProbabilities,
  jointProbabilitiesDense,
  jointProbabilitiesSparse,
  type SparseSymmetric,
} from "./affinities.ts";
export {
  type DistanceOptions,
  type Gram,
  gramMatrix,
  type Metric,
  metricDistances,
  metricNeighbors,
  nearestNeighbors,
  type Neighbors,
  neighborsFromDistances,
  squaredDistances,
  unitRows,
} from "./distances.ts";
export {
  kernelPca,
  type KernelPcaOptions,
  type KernelPcaResult,
  type LayoutProgress,
  type LayoutRunOptions,
  randomLayout,
  resolveUmapOptions,
  UMAP_DEFAULTS,
  umapLayout,
  type UmapOptions,
} from "./layouts.ts";
export { type Compat, type LayoutConventions, layoutConventions } from "./compat.ts";
export { type PcaOptions, type PcaResult, randomizedPca, symmetricEigen } from "./linalg.ts";
export {
  type BoundingRectangle,
  convexHull,
  type Hull,
  minimumBoundingRectangle,
  rotatedBoxArea,
  rotatePoints,
  type Rotation,
  rotationFor,
} from "./hull.ts";
export {
  type BinConvention,
  binCoordinates,
  type Clusters,
  digitize,
  type Discretization,
  DISCRETIZATIONS,
  equalWidthBin,
  kMeans2D,
  linspace,
  type LsaCentres,
  lsaCoordinates,
  type PixelCoords,
  qtbCoordinates,
  quantileRanks,
} from "./discretize.ts";
export { type Assignment, linearSumAssignment } from "./lsa.ts";
export {
  FEATURE_EXTRACTORS,
  type FeatureEmbedder,
  type FeatureExtractor,
  ImageTransformer,
  type ImageTransformerFitOptions,
  type ImageTransformerOptions,
  type ImageTransformerProgress,
  type ImageTransformerState,
  type NamedFeatureExtractor,
  type TransformerLayout,
  type TransformOptions,
  transposeMatrix,
} from "./transformer.ts";
export {
  batchImage,
  drawText,
  encodeGrayPng,
  FONT_CHARACTERS,
  FONT_SIZE,
  glyph,
  type GrayImage,
  grayLevels,
  type GrayOptions,
  type GridOptions,
  imageGridPng,
  textWidth,
  writePng,
} from "./png.ts";
export { type ClassMeanImages, classMeanImages, type SingleImage } from "./class_means.ts";
export { permutePixels, pixelPermutation } from "./permute.ts";
export {
  rgbGroups,
  STATE_CHANNEL_DEFAULTS,
  type StateChannelOptions,
  type StateChannelState,
  StateChannelTransformer,
  type StateChannelTransformOptions,
  type StateFit,
  statesToRgb,
} from "./channels.ts";
export {
  averageProbabilities,
  DEFAULT_REPRESENTATIONS,
  MultiRepresentation,
  type MultiRepresentationOptions,
  type MultiRepresentationProgress,
  type MultiRepresentationState,
  transformerOptions,
} from "./multi.ts";
