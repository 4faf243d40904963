/**
 * Frozen variants of the layers whose behaviour depends on the `training` flag. TF.js's
 * BatchNormalization, when a larger model is trained through it, normalises with the batch's
 * statistics and updates its moving mean and variance (the official PyTorch code let them
 * drift the same way); `trainable = false` does not prevent that. The variants here always
 * run in inference mode, whatever `training` says, so a frozen backbone computes the same
 * function during `fit` as during `predict`.
 *
 * They are registered with `tf.serialization`, so a model that contains them can be saved
 * and loaded again by any program that imports this module.
 *
 * @module
 */
import { tf } from "../tf.ts";

type Kwargs = Record<string, unknown>;
type CallFn = (inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs) => tf.Tensor | tf.Tensor[];
type LayerClass = {
  new (args: Record<string, unknown>): tf.layers.Layer;
  className: string;
};

function classOf(layer: tf.layers.Layer): LayerClass {
  return layer.constructor as unknown as LayerClass;
}

function inferenceOnly(Base: LayerClass, className: string): LayerClass {
  const Frozen = class extends Base {
    static override className = className;
    override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
      const call = Base.prototype.call as unknown as CallFn;
      return call.call(this, inputs, { ...kwargs, training: false });
    }
  };
  tf.serialization.registerClass(
    Frozen as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>,
  );
  return Frozen;
}

/** BatchNormalization that always normalises with its moving statistics and never updates them. */
export const FrozenBatchNormalization: LayerClass = inferenceOnly(
  classOf(tf.layers.batchNormalization({})),
  "FrozenBatchNormalization",
);

/** Dropout that never drops (inference mode always). */
export const FrozenDropout: LayerClass = inferenceOnly(
  classOf(tf.layers.dropout({ rate: 0.5 })),
  "FrozenDropout",
);

/**
 * Keras class names replaced by their frozen variant when a backbone is built, e.g.
 * `BatchNormalization` → `FrozenBatchNormalization`.
 */
export const FROZEN_CLASS_NAMES: Readonly<Record<string, string>> = {
  BatchNormalization: "FrozenBatchNormalization",
  Dropout: "FrozenDropout",
};

/** Marks every layer of `model` (and the model) non-trainable. Returns `model`. */
export function freezeModel<M extends tf.LayersModel>(model: M): M {
  for (const layer of model.layers) layer.trainable = false;
  model.trainable = false;
  return model;
}
