/**
 * The part of TensorFlow.js's kernel interface and wasm backend that the native kernels use
 * (the backend's class is not exported as a type we can import).
 *
 * @module
 */
import type { tf } from "../tf.ts";

/** A tensor as kernels see it: data id, shape, dtype. */
export type TensorInfo = tf.TensorInfo;

/** The wasm backend's methods the kernels call. */
export interface WasmBackend {
  /** A new output tensor in the heap. */
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  /** A view on a tensor's values in the heap; valid until the next allocation. */
  typedArrayFromHeap(info: TensorInfo): Float32Array;
  /** Drops one reference to the data of `dataId`, freeing it with the last. */
  disposeData(dataId: object): boolean;
  /** One more tensor shares the data of `dataId` (freed when the last one is disposed). */
  incRef(dataId: object): void;
}

/** What a kernel function receives. */
export type KernelArgs = {
  /** Input tensors by name. */
  inputs: Record<string, TensorInfo | undefined>;
  /** The wasm backend. */
  backend: WasmBackend;
  /** The op's attributes. */
  attrs: Record<string, unknown>;
};

/** A kernel function: the native ones, and the wasm ones they fall back to. */
export type KernelCall = (args: KernelArgs) => TensorInfo | TensorInfo[];

/** Number of elements of a shape. */
export const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
