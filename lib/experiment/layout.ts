/**
 * A run's image layout, as the config chooses it (`image`): one DeepInsight transformer over
 * every feature (the paper's), the hidden states as channels of one layout of their shared
 * dimensions (`image.channels: "states"`), or several layouts of the same vectors stacked as
 * channels (`image.representations`, pyDeepInsight's MRep idea). Multi-channel images are
 * mapped to the 3 channels an ImageNet backbone takes by `statesToRgb` (documented grouping:
 * contiguous groups of channels averaged; 2 channels → [c0, c1, mean]).
 *
 * @module
 */
import {
  ImageTransformer,
  type ImageTransformerOptions,
  type ImageTransformerProgress,
  MultiRepresentation,
  StateChannelTransformer,
  statesToRgb,
} from "../image/mod.ts";
import type { FeatureBatch, ImageBatch, Matrix } from "../types.ts";
import type { ResolvedConfig } from "./config.ts";

/** The fitted layout of a run. */
export interface RunLayout {
  /**
   * The layout figures and feature coordinates use: the only one, the dimensions' layout
   * (hidden states as channels), or the first representation (several layouts).
   */
  transformer: ImageTransformer;
  /** Channels of the images before the mapping to 3 (1 for the paper's layout). */
  channels: number;
  /**
   * Images of rows: `[n, H, W]` (one layout; with averaged layouts, the first's) or
   * `[n, H, W, 3]` (channels mapped to RGB).
   */
  transform(x: Matrix): ImageBatch | FeatureBatch;
  /** With averaged layouts (`combine: "average"`): each layout's images, in order. */
  transformEach?(x: Matrix): ImageBatch[];
  /** Writes the fitted layout (sealed JSON) to `path`. */
  save(path: string): Promise<void>;
}

/** The transformer options of the config's image section, with `over` applied. */
export function transformerOptionsOf(
  image: ResolvedConfig["image"],
  over: NonNullable<ResolvedConfig["image"]["representations"]>[number] = {},
): ImageTransformerOptions {
  const i = { ...image, ...over, tsne: { ...image.tsne, ...(over.tsne ?? {}) } };
  return {
    pixels: i.pixels,
    discretization: i.discretization,
    scaler: i.scaler,
    tsne: { verbose: true, ...i.tsne },
    ...(i.featureExtractor ? { featureExtractor: i.featureExtractor } : {}),
    ...(i.compat ? { compat: i.compat } : {}),
    ...(i.kernelPca ? { kernelPca: i.kernelPca } : {}),
    ...(i.umap ? { umap: i.umap } : {}),
  };
}

/** Number of hidden states side by side in an embedding row (the configured layers). */
function statesOf(cfg: ResolvedConfig, features: number): number {
  const layers = cfg.embedding.layers?.length;
  if (!layers || features % layers !== 0) {
    throw new Error(
      `image.channels "states": the embedding has ${features} features, which do not split ` +
        `into the ${layers ?? "?"} configured hidden states (embedding.layers); set ` +
        `embedding.layers explicitly`,
    );
  }
  return layers;
}

function single(t: ImageTransformer): RunLayout {
  return {
    transformer: t,
    channels: 1,
    transform: (x) => t.transform(x, { channels: 1 }) as ImageBatch,
    save: (path) => t.save(path),
  };
}

function states(t: StateChannelTransformer): RunLayout {
  return {
    transformer: t.transformer_!,
    channels: t.states,
    transform: (x) => t.transform(x, { toRgb: true }),
    save: (path) => t.save(path),
  };
}

function several(t: MultiRepresentation, combine: "average" | "stacked"): RunLayout {
  if (combine === "average") {
    return {
      transformer: t.transformers_![0],
      channels: 1,
      transform: (x) => t.transformers_![0].transform(x, { channels: 1 }) as ImageBatch,
      transformEach: (x) => t.transform(x),
      save: (path) => t.save(path),
    };
  }
  return {
    transformer: t.transformers_![0],
    channels: t.size,
    transform: (x) => statesToRgb(t.transformStacked(x)),
    save: (path) => t.save(path),
  };
}

/** Fits the config's layout on `rows` (`[samples, features]`). */
export async function fitRunLayout(
  cfg: ResolvedConfig,
  rows: Matrix,
  onProgress?: (p: ImageTransformerProgress) => void,
): Promise<RunLayout> {
  const i = cfg.image;
  if (i.representations) {
    const t = new MultiRepresentation({
      representations: i.representations.map((r) => transformerOptionsOf(i, r)),
    });
    await t.fit(rows, { onProgress });
    return several(t, i.combine ?? "average");
  }
  if (i.channels === "states") {
    const t = new StateChannelTransformer({
      ...transformerOptionsOf(i),
      states: statesOf(cfg, rows.shape[1]),
      ...(i.stateFit !== undefined ? { fitOn: i.stateFit } : {}),
    });
    await t.fit(rows, { onProgress });
    return states(t);
  }
  const t = new ImageTransformer(transformerOptionsOf(i));
  await t.fit(rows, { onProgress });
  return single(t);
}

/** Reads a layout {@link RunLayout.save} wrote (throws the loaders' cache errors). */
export async function loadRunLayout(cfg: ResolvedConfig, path: string): Promise<RunLayout> {
  if (cfg.image.representations) {
    return several(await MultiRepresentation.load(path), cfg.image.combine ?? "average");
  }
  if (cfg.image.channels === "states") return states(await StateChannelTransformer.load(path));
  return single(await ImageTransformer.load(path));
}

/** One grayscale view of images (the channel mean), for figures of multi-channel layouts. */
export function grayscale(images: ImageBatch | FeatureBatch): ImageBatch {
  if (images.shape.length === 3) return images as ImageBatch;
  const [n, h, w, c] = images.shape as [number, number, number, number];
  const out = new Float32Array(n * h * w);
  for (let p = 0; p < out.length; p++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += images.data[p * c + k];
    out[p] = s / c;
  }
  return { data: out, shape: [n, h, w] };
}
