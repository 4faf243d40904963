/**
 * Which features decide: class activation maps of the trained image classifiers, traced
 * back through the DeepInsight layout to the embedding's features and hidden states, with a
 * check that the attribution means something.
 *
 * - {@link gradCam}: Grad-CAM (Selvaraju et al. 2017) on the last conv layer of the
 *   trainable stack, per review, on the layout grid (`geometry.ts` says how the CAM grid is
 *   resampled through the conv stack, the frozen slice and the ×u upsampling);
 *   {@link classMeanCams} and {@link meanCam} average them.
 * - {@link featureImportance}: each feature gets its pixel's CAM value (DeepInsight's
 *   `coords`); {@link stateImportance} sums and averages per hidden state.
 * - {@link topKCurve}: logistic regression on the top-k features by CAM importance vs. by
 *   its own |coefficient| vs. random draws, over a list of k; the rows of each step are
 *   explicit and test rows never choose features.
 * - Figures: {@link camFigure}, {@link reviewCamFigure} (single reviews, e.g. notebook 8's),
 *   {@link stateImportanceFigure}, {@link topKFigure}.
 *
 * ```ts ignore
 * import { classMeanCams, featureImportance, gradCam, meanCam, stateImportance,
 *   topKCurve } from "./lib/explain/mod.ts";
 * // clf: a fitted ImageClassifier; trainSource: what it trained on (cached backbone features
 * // of the ×3-upsampled 50×50 images); layout: the fitted ImageTransformer.
 * const result = gradCam(clf, trainSource, {
 *   rows: "train",
 *   target: yTrain,                                 // explain each review's true class
 *   geometry: { imageShape: [50, 50], upsample: 3 },
 * });
 * const perClass = classMeanCams(result);           // [negative, positive] maps, 50×50
 * const importance = featureImportance(meanCam(result), layout.coords());
 * const perState = stateImportance(importance, 512); // USE-lite: 3 states × 512
 * const curve = topKCurve(importance,
 *   { x: trainX, y: yTrain, rows: "train" },
 *   { x: testX, y: yTest, rows: "test" },
 *   { ks: [10, 50, 100, 500], randomDraws: 5 });
 * ```
 *
 * @module
 */
export {
  camBatch,
  camFromGradients,
  type CamMap,
  type CamModel,
  checkRows,
  classMeanCams,
  gradCam,
  type GradCamOptions,
  type GradCamResult,
  layersCamModel,
  meanCam,
  networkCamModel,
  type RowSet,
} from "./gradcam.ts";
export {
  axisResampling,
  type CamGeometry,
  camToImageGrid,
  convStackPlacement,
  type InputGeometry,
  type Placement,
  resolveGeometry,
  uniformPlacement,
} from "./geometry.ts";
export {
  type FeatureCoords,
  type FeatureImportance,
  featureImportance,
  type FeatureImportanceOptions,
  rankFeatures,
  type StateImportance,
  stateImportance,
} from "./features.ts";
export {
  type LabelledRows,
  selectColumns,
  type TopKCurve,
  topKCurve,
  type TopKOptions,
} from "./topk.ts";
export {
  camFigure,
  type CamFigureOptions,
  type ReviewCam,
  reviewCamFigure,
  stateImportanceFigure,
  type StateImportanceFigureOptions,
  topKFigure,
  type TopKFigureOptions,
} from "./figures.ts";
export type { FeatureBatch, ImageBatch, Labels, Matrix } from "../types.ts";
