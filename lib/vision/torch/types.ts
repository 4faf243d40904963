/**
 * Plain values shared by the PyTorch checkpoint reader (`checkpoint.ts`) and the
 * torchvision architectures built from it (`../torchvision/`): a `state_dict` as named
 * tensors, and a source that lists every tensor before reading any.
 *
 * @module
 */

/** Element types of PyTorch storages (`torch.FloatStorage` → `"float32"`, …). */
export type TorchDType =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

/** A tensor's element type and shape, known without reading its values. */
export interface TensorInfo {
  /** The storage's element type. */
  dtype: TorchDType;
  /** The tensor's size (`tensor.shape`), outermost first; `[]` for a scalar. */
  shape: number[];
}

/** A tensor's values as float32, contiguous in row-major (C) order of {@link TensorInfo.shape}. */
export interface TorchTensor extends TensorInfo {
  /** `shape.reduce(*)` values (strides and storage offset already applied). */
  data: Float32Array;
}

/** A `state_dict`: parameter and buffer names (`"features.0.weight"`) to tensors. */
export type StateDict = Map<string, TorchTensor>;

/**
 * A `state_dict` that can be listed before it is read: {@link StateDictSource.entries} has
 * every key with dtype and shape, {@link StateDictSource.read} reads only the named tensors
 * (so a slice of a large network reads a small part of its file).
 */
export interface StateDictSource {
  /** Every key of the `state_dict`, in file order, with its dtype and shape. */
  readonly entries: ReadonlyMap<string, TensorInfo>;
  /** Reads the named tensors; an unknown key is an error naming it. */
  read(keys: readonly string[]): Promise<StateDict>;
  /** Where it came from, for messages (e.g. the file path). */
  readonly description: string;
  /** Releases an open file, if any. */
  close(): void;
}
