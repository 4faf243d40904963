/**
 * The trainable part of the paper's five image classifiers (PAPER.md §3, official code's
 * `models/*.py`): a "conv auto-encoder" of four [Conv, ReLU, BatchNorm] blocks (with dropout
 * after the first three in some models), an adaptive average pool to a fixed grid, and an
 * MLP head to 2 logits, with the learning rates the official code uses for each network.
 *
 * @module
 */

/** The four trainable convolution blocks on top of the frozen backbone slice. */
export interface ConvStackSpec {
  /** Output channels of the four convolutions, e.g. `[192, 128, 64, 32]`. */
  channels: number[];
  /** Square kernel size (the paper: 4, or 2 for AlexNet). Stride is 1. */
  kernelSize: number;
  /**
   * `"valid"` (the paper: no padding), `"same"`, or `"auto"`: valid when the feature map
   * left after the four convolutions is at least half the pooling grid on each side, else
   * same (small inputs such as 50×50 images leave too few pixels for valid padding).
   */
  padding: "valid" | "same" | "auto";
  /** Dropout rate after each of the first three blocks (0: none). */
  dropout: number;
}

/** Adaptive average pooling and the MLP head. */
export interface HeadSpec {
  /** Side of the square grid the adaptive average pool produces (paper: 10, AlexNet 5). */
  poolSize: number;
  /** Dropout on the flattened pooled features before the first dense layer. */
  inputDropout: number;
  /** Widths of the hidden dense layers (ReLU), e.g. `[1600, 700, 50]`. */
  hidden: number[];
  /** Dropout after each hidden layer, one rate per hidden layer. */
  hiddenDropout: number[];
  /**
   * Gain of the Xavier-uniform initialisation of the dense layers: hidden layers and the
   * output layer (default √2 for both, the official code's `calculate_gain("relu")` on
   * every linear layer).
   */
  xavierGain?: { hidden: number; output: number };
}

/** One of the paper's trainable architectures and its learning rates. */
export interface ArchitectureSpec {
  /** Name, e.g. `"vgg16"`. */
  name: string;
  /** The trainable convolution stack. */
  convStack: ConvStackSpec;
  /** Pooling and MLP head. */
  head: HeadSpec;
  /** Adam learning rate of the conv stack ("CAE LR" in the official code). */
  lrConv: number;
  /** Adam learning rate of the head ("LC LR"). */
  lrHead: number;
}

const VGG_HEAD: HeadSpec = {
  poolSize: 10,
  inputDropout: 0,
  hidden: [1600, 700, 50],
  hiddenDropout: [0.3, 0.3, 0],
};

/**
 * The official code's five trainable parts, keyed by the paper network whose frozen slice
 * they sit on. Learning rates from its `main-train.py`.
 */
export const PAPER_ARCHITECTURES: Readonly<Record<string, ArchitectureSpec>> = {
  alexnet: {
    name: "alexnet",
    convStack: { channels: [192, 192, 192, 64], kernelSize: 2, padding: "auto", dropout: 0 },
    head: { poolSize: 5, inputDropout: 0.3, hidden: [700, 50], hiddenDropout: [0.3, 0] },
    lrConv: 1e-5,
    lrHead: 5e-4,
  },
  vgg16: {
    name: "vgg16",
    convStack: { channels: [192, 128, 64, 32], kernelSize: 4, padding: "auto", dropout: 0.05 },
    head: VGG_HEAD,
    lrConv: 5e-5,
    lrHead: 1e-3,
  },
  wide_resnet50_2: {
    name: "wide_resnet50_2",
    convStack: { channels: [192, 128, 64, 32], kernelSize: 4, padding: "auto", dropout: 0.2 },
    head: VGG_HEAD,
    lrConv: 5e-5,
    lrHead: 1e-4,
  },
  resnext50_32x4d: {
    name: "resnext50_32x4d",
    convStack: { channels: [192, 128, 64, 32], kernelSize: 4, padding: "auto", dropout: 0.2 },
    head: VGG_HEAD,
    lrConv: 5e-5,
    lrHead: 1e-3,
  },
  shufflenet_v2: {
    name: "shufflenet_v2",
    convStack: { channels: [192, 128, 64, 32], kernelSize: 4, padding: "auto", dropout: 0.05 },
    head: VGG_HEAD,
    lrConv: 5e-4,
    lrHead: 1e-3,
  },
};

/**
 * The architecture for a backbone that stands in for the given paper networks (the first
 * one known wins); `vgg16`'s when none is known (e.g. a complete classifier).
 */
export function architectureFor(standsInFor: readonly string[]): ArchitectureSpec {
  for (const name of standsInFor) {
    const spec = PAPER_ARCHITECTURES[name];
    if (spec) return spec;
  }
  return PAPER_ARCHITECTURES.vgg16;
}

/** Looks up a paper architecture by name; throws listing the known ones. */
export function getArchitecture(name: string): ArchitectureSpec {
  const spec = PAPER_ARCHITECTURES[name];
  if (!spec) {
    throw new Error(
      `Unknown architecture "${name}"; known: ${Object.keys(PAPER_ARCHITECTURES).join(", ")}`,
    );
  }
  return spec;
}

/** Spatial size after one convolution of kernel `k`, stride 1, with the given padding. */
function convOut(size: number, k: number, padding: "valid" | "same"): number {
  return padding === "same" ? size : size - k + 1;
}

/**
 * The padding `spec` resolves to for a `[height, width]` input feature map (see
 * {@link ConvStackSpec.padding}), and the map size after the four convolutions.
 */
export function resolvePadding(
  spec: ArchitectureSpec,
  [height, width]: [number, number],
): { padding: "valid" | "same"; outputSize: [number, number] } {
  const { kernelSize: k, channels, padding } = spec.convStack;
  const after = (p: "valid" | "same"): [number, number] => {
    let h = height, w = width;
    for (let i = 0; i < channels.length; i++) {
      h = convOut(h, k, p);
      w = convOut(w, k, p);
    }
    return [h, w];
  };
  if (padding === "valid" || padding === "same") {
    const outputSize = after(padding);
    if (outputSize[0] < 1 || outputSize[1] < 1) {
      throw new Error(
        `${spec.name}: a ${height}×${width} feature map is too small for ${channels.length} ` +
          `valid ${k}×${k} convolutions; use padding "same" or "auto", or a larger input ` +
          `(upsample the images).`,
      );
    }
    return { padding, outputSize };
  }
  const valid = after("valid");
  const half = spec.head.poolSize / 2;
  if (valid[0] >= half && valid[1] >= half) return { padding: "valid", outputSize: valid };
  return { padding: "same", outputSize: after("same") };
}
