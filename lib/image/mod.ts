/**
 * Stage 2 of the paper: embedding vectors → DeepInsight images. Scalers, our own t-SNE
 * (exact and Barnes–Hut, wasm-accelerated distances), the layout geometry (convex hull,
 * minimum bounding rectangle), discretisation onto a pixel grid (`bin`, `lsa` through our
 * own linear assignment solver), the {@link ImageTransformer} and PNG output.
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
  nearestNeighbors,
  type Neighbors,
  neighborsFromDistances,
  squaredDistances,
} from "./distances.ts";
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
  binCoordinates,
  type Clusters,
  digitize,
  type Discretization,
  kMeans2D,
  linspace,
  lsaCoordinates,
  type PixelCoords,
} from "./discretize.ts";
export { type Assignment, linearSumAssignment } from "./lsa.ts";
export {
  type FeatureEmbedder,
  type FeatureExtractor,
  ImageTransformer,
  type ImageTransformerFitOptions,
  type ImageTransformerOptions,
  type ImageTransformerProgress,
  type ImageTransformerState,
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
