/**
 * PyTorch checkpoints in TypeScript, without Python: {@link openCheckpoint} reads the
 * `state_dict` of a `torch.save` file (zip layout of PyTorch ≥ 1.6, the legacy pickle sequence,
 * and the tar layout of PyTorch ≤ 0.1), listing every tensor first and reading only the
 * tensors asked for, as float32. Its unpickler executes nothing: classes outside a short
 * allow-list are refused by name. {@link torchvisionFile} fetches torchvision's published
 * checkpoint files into a cache, checked against the hash prefix in their names.
 *
 * ```ts
 * import { openCheckpoint, torchvisionFile } from "./mod.ts";
 *
 * const path = await torchvisionFile(
 *   "https://download.pytorch.org/models/resnet18-f37072fd.pth",
 *   { cacheDir: "data/cache/torchvision" },
 * );
 * const source = await openCheckpoint(path);
 * try {
 *   console.log(source.entries.get("conv1.weight")); // { dtype: "float32", shape: [64, 3, 7, 7] }
 *   const weights = await source.read(["conv1.weight", "bn1.weight"]);
 *   console.log(weights.get("conv1.weight")!.data.length); // 9408
 * } finally {
 *   source.close();
 * }
 * ```
 *
 * @module
 */
export type { StateDict, StateDictSource, TensorInfo, TorchDType, TorchTensor } from "./types.ts";
export {
  type CheckpointFormat,
  type CheckpointSource,
  decodeElements,
  ELEMENT_SIZE,
  openCheckpoint,
} from "./checkpoint.ts";
export {
  checkHashPrefix,
  HashPrefixError,
  hashPrefixOf,
  torchvisionFile,
  torchvisionFileName,
  type TorchvisionFileOptions,
} from "./download.ts";
export {
  ALLOWED_GLOBALS,
  PickleError,
  PickleTruncatedError,
  unpickle,
  type UnpickleOptions,
  UnpickleRefusedError,
} from "./pickle.ts";
