/**
 * Writing a TF.js layers model to a folder (`model.json` + weight shards) the way
 * `tensorflowjs_converter` lays it out, since TF.js's `file://` handler exists only in
 * tfjs-node. A folder written here loads with {@link loadBackbone} (`{ folder }` source) and
 * with `tf.loadLayersModel` in a browser.
 *
 * @module
 */
import { join } from "node:path";
import { tf } from "../tf.ts";
import type { LayersModelJson } from "./layers_model.ts";

/** Options of {@link saveLayersModel}. */
export interface SaveLayersModelOptions {
  /** Bytes per shard file (default 4 MiB, the converter's default); the last may be shorter. */
  shardBytes?: number;
  /** One weight group per layer (like Keras-converted models) instead of one group. */
  groupPerLayer?: boolean;
}

/**
 * Saves `model`'s topology and weights into `folder` (created if needed). Weights are named
 * by their original names (`layer/kernel`), as in converted Keras models. Returns the
 * `model.json` content.
 */
export async function saveLayersModel(
  model: tf.LayersModel,
  folder: string,
  options: SaveLayersModelOptions = {},
): Promise<LayersModelJson> {
  const shardBytes = options.shardBytes ?? 4 * 1024 * 1024;
  await Deno.mkdir(folder, { recursive: true });
  const groups: { name: string; tensor: tf.Tensor }[][] = [];
  if (options.groupPerLayer) {
    for (const layer of model.layers) {
      if (layer.weights.length) {
        groups.push(layer.weights.map((w) => ({ name: w.originalName, tensor: w.read() })));
      }
    }
  } else {
    groups.push(model.weights.map((w) => ({ name: w.originalName, tensor: w.read() })));
  }
  const manifest: tf.io.WeightsManifestConfig = [];
  for (const [g, group] of groups.entries()) {
    const { data, specs } = await tf.io.encodeWeights(group);
    const bytes = new Uint8Array(data);
    const count = Math.max(1, Math.ceil(bytes.length / shardBytes));
    const paths: string[] = [];
    for (let s = 0; s < count; s++) {
      const path = `group${g + 1}-shard${s + 1}of${count}.bin`;
      await Deno.writeFile(
        join(folder, path),
        bytes.subarray(s * shardBytes, (s + 1) * shardBytes),
      );
      paths.push(path);
    }
    manifest.push({ paths, weights: specs });
  }
  const json: LayersModelJson = {
    format: "layers-model",
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: null,
    modelTopology: model.toJSON(null, false) as unknown as LayersModelJson["modelTopology"],
    weightsManifest: manifest,
  };
  await Deno.writeTextFile(join(folder, "model.json"), JSON.stringify(json));
  return json;
}
