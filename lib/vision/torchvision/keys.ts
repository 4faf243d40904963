/**
 * The `state_dict` keys of torchvision's architectures, and the strict check of a checkpoint's
 * keys and shapes against them (what PyTorch's `load_state_dict(strict=True)` does), before
 * any tensor is read.
 *
 * @module
 */
import type { TensorInfo } from "../torch/types.ts";

/** One entry of a `state_dict`: its key and shape. */
export interface ParamSpec {
  /** E.g. `"layer1.0.conv1.weight"`. */
  key: string;
  /** E.g. `[128, 64, 1, 1]`; `[]` for `num_batches_tracked`. */
  shape: number[];
}

/** Keys of an `nn.Conv2d(inChannels / groups → out, k×k)`: `weight` (and `bias`). */
export function convParams(
  prefix: string,
  out: number,
  inPerGroup: number,
  kernel: number,
  bias: boolean,
): ParamSpec[] {
  const specs = [{ key: `${prefix}.weight`, shape: [out, inPerGroup, kernel, kernel] }];
  if (bias) specs.push({ key: `${prefix}.bias`, shape: [out] });
  return specs;
}

/** Keys of an `nn.BatchNorm2d(c)`: affine parameters, running statistics, batch counter. */
export function batchNormParams(prefix: string, channels: number): ParamSpec[] {
  return [
    ...["weight", "bias", "running_mean", "running_var"].map((name) => ({
      key: `${prefix}.${name}`,
      shape: [channels],
    })),
    { key: `${prefix}.num_batches_tracked`, shape: [] },
  ];
}

/** Keys of an `nn.Linear(in → out)`. */
export function linearParams(prefix: string, out: number, inputs: number): ParamSpec[] {
  return [
    { key: `${prefix}.weight`, shape: [out, inputs] },
    { key: `${prefix}.bias`, shape: [out] },
  ];
}

/**
 * Whether `key` is a BatchNorm batch counter. It is never needed for inference, and
 * checkpoints saved before PyTorch 0.4.1 (such as several of torchvision's own ImageNet
 * weights) lack it; `load_state_dict` accepts them, and so does {@link checkStateDictKeys}.
 */
export function isBatchCounter(key: string): boolean {
  return key.endsWith(".num_batches_tracked");
}

/** What {@link compareKeys} found. */
export interface KeyComparison {
  /** Expected keys the checkpoint lacks (batch counters excepted). */
  missing: string[];
  /** Checkpoint keys the architecture does not have. */
  unexpected: string[];
  /** Keys present in both with different shapes. */
  wrongShapes: { key: string; found: number[]; expected: number[] }[];
}

/** Compares a checkpoint's entries with an architecture's keys and shapes. */
export function compareKeys(
  entries: ReadonlyMap<string, TensorInfo>,
  expected: readonly ParamSpec[],
): KeyComparison {
  const wanted = new Map(expected.map((p) => [p.key, p.shape]));
  const result: KeyComparison = { missing: [], unexpected: [], wrongShapes: [] };
  for (const [key, shape] of wanted) {
    const found = entries.get(key);
    if (!found) {
      if (!isBatchCounter(key)) result.missing.push(key);
    } else if (found.shape.length !== shape.length || found.shape.some((d, i) => d !== shape[i])) {
      // a batch counter saved as a 1-element tensor is still a counter
      const counterLike = isBatchCounter(key) && found.shape.reduce((a, b) => a * b, 1) === 1;
      if (!counterLike) result.wrongShapes.push({ key, found: [...found.shape], expected: shape });
    }
  }
  for (const key of entries.keys()) if (!wanted.has(key)) result.unexpected.push(key);
  return result;
}

/** Whether {@link compareKeys} found nothing wrong. */
export function keysMatch(comparison: KeyComparison): boolean {
  return comparison.missing.length + comparison.unexpected.length +
      comparison.wrongShapes.length === 0;
}

const SHOWN = 12;

function list(keys: string[]): string {
  const shown = keys.slice(0, SHOWN).join(", ");
  return keys.length > SHOWN ? `${shown}, … (${keys.length - SHOWN} more)` : shown;
}

/**
 * The error message for a checkpoint whose keys do not match `architecture`: missing keys,
 * unexpected keys and wrong shapes (each with both shapes), and what to do. `alsoMatches`
 * names other architectures whose keys the checkpoint does match.
 */
export function keyMismatchMessage(
  description: string,
  architecture: string,
  comparison: KeyComparison,
  alsoMatches: string[] = [],
): string {
  const lines = [
    `${description} is not a state_dict of torchvision's ${architecture} ` +
    `(checked strictly, as load_state_dict(strict=True) does):`,
  ];
  const { missing, unexpected, wrongShapes } = comparison;
  if (missing.length) lines.push(`  missing keys (${missing.length}): ${list(missing)}`);
  if (unexpected.length) {
    lines.push(`  unexpected keys (${unexpected.length}): ${list(unexpected)}`);
  }
  for (const w of wrongShapes.slice(0, SHOWN)) {
    lines.push(
      `  wrong shape for ${w.key}: [${w.found.join(", ")}] in the checkpoint, ` +
        `[${w.expected.join(", ")}] in ${architecture}`,
    );
  }
  if (wrongShapes.length > SHOWN) lines.push(`  … ${wrongShapes.length - SHOWN} more wrong shapes`);
  if (alsoMatches.length) {
    lines.push(`  its keys and shapes are those of ${alsoMatches.join(", ")}: build that instead.`);
  } else if (unexpected.length && unexpected.every((k) => k.startsWith("module."))) {
    lines.push(
      `  every key starts with "module." (saved from nn.DataParallel): save ` +
        `model.module.state_dict() instead, or strip the prefix.`,
    );
  } else {
    lines.push(
      `  Pass a checkpoint saved from torchvision.models.${architecture}(), e.g. ` +
        `torch.save(model.state_dict(), path), or choose the architecture it was saved from.`,
    );
  }
  return lines.join("\n");
}
