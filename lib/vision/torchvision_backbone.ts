/**
 * The paper's own networks (`alexnet`, `vgg16`, `wide_resnet50_2`, `resnext50_32x4d`,
 * `shufflenet_v2`, PAPER.md §3) as backbones, read from the checkpoint files torchvision
 * publishes, with no Python at run time: the file comes from a local source or the download
 * cache (`dataDir()/models/torchvision/`, fetched with progress and checked against the hash
 * prefix in its name, as `torch.hub` does), `torch/checkpoint.ts` reads the tensors the slice
 * needs, and `torchvision/` builds the sliced network in TF.js.
 *
 * A spec is a torchvision backbone when it names an architecture (`torchvision`); its sources
 * then point at the checkpoint: `{ url }` the published file, `{ folder }` a local file or a
 * folder holding a file of the URL's name, `{ shared: [...] }` the same under the shared folder.
 *
 * @module
 */
import { basename, join } from "node:path";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { dataDir } from "../config.ts";
import type { tf } from "../tf.ts";
import type { WeightReadReport } from "./layers_model.ts";
import type { BackboneSpec, ModelSource } from "./registry.ts";
import { sharedModelFolder } from "./source.ts";
import { openCheckpoint } from "./torch/checkpoint.ts";
import { torchvisionFile, torchvisionFileName } from "./torch/download.ts";
import { buildTorchvisionModel } from "./torchvision/architectures.ts";
import type { TorchvisionArch } from "./torchvision/spec.ts";

/** The folder torchvision checkpoints are downloaded to: `dataDir()/models/torchvision`. */
export function torchvisionCacheDir(): string {
  return join(dataDir(), "models", "torchvision");
}

/** The checkpoint's file name: the name of the spec's first URL source. */
function checkpointName(spec: BackboneSpec): string {
  const url = spec.sources.find((s): s is { url: string } => "url" in s);
  if (!url) {
    throw new Error(`backbone "${spec.name}": a torchvision backbone needs a { url } source`);
  }
  return torchvisionFileName(url.url);
}

/** Where a source keeps the checkpoint, or why it cannot. */
async function fileOf(spec: BackboneSpec, source: ModelSource): Promise<string> {
  const url = spec.sources.find((s): s is { url: string } => "url" in s)!.url;
  const options = { cacheDir: torchvisionCacheDir() };
  if ("url" in source) return await torchvisionFile(source.url, options);
  if ("folder" in source) {
    return await torchvisionFile(url, { ...options, localPath: source.folder });
  }
  if ("shared" in source) {
    return await torchvisionFile(url, { ...options, localPath: sharedModelFolder(source.shared) });
  }
  throw new Error(`an npm source cannot hold a PyTorch checkpoint`);
}

/** What {@link loadTorchvisionModel} returns. */
export interface LoadedTorchvisionModel {
  /** The frozen sliced network. */
  model: tf.LayersModel;
  /** Its layer names. */
  layerNames: string[];
  /** The source used. */
  source: ModelSource;
  /** The checkpoint file, in words. */
  loadedFrom: string;
  /** What was read (the file as one "shard"; bytes of tensors decoded). */
  report: WeightReadReport;
}

/**
 * Builds the torchvision backbone `spec` (sliced at the paper's point) from the first source
 * that has its checkpoint. Offline without the file: one error naming the file and where to
 * put it (the download cache), with every source's reason.
 */
export async function loadTorchvisionModel(
  spec: BackboneSpec,
  options: { sources?: ModelSource[]; fold?: boolean; inputSize?: [number, number] | null } = {},
): Promise<LoadedTorchvisionModel> {
  const arch = spec.torchvision as TorchvisionArch;
  const name = checkpointName(spec);
  const failures: string[] = [];
  for (const source of options.sources ?? spec.sources) {
    let path: string;
    try {
      path = await fileOf(spec, source);
    } catch (e) {
      failures.push((e as Error).message);
      continue;
    }
    const checkpoint = await openCheckpoint(path);
    try {
      const built = await buildTorchvisionModel(arch, checkpoint, {
        foldBatchNorm: options.fold ?? true,
        inputSize: options.inputSize ?? null,
      });
      return {
        model: built.model,
        layerNames: built.layerNames,
        source,
        loadedFrom: `torchvision checkpoint ${basename(path)}`,
        report: { shardsRead: [basename(path)], bytes: checkpoint.bytesRead },
      };
    } finally {
      checkpoint.close();
    }
  }
  const url = spec.sources.find((s): s is { url: string } => "url" in s)!.url;
  // One line per source tried, up to its first sentence (the download's own advice repeats
  // what this message says).
  const why = failures.map((f) => f.split(/\.(\s|$)/)[0]).join("; ");
  throw new Error(
    `The checkpoint file ${name} of "${spec.name}" is not available (${why}): download it ` +
      `from ${url} and put it in ${torchvisionCacheDir()}, or register a { folder } source ` +
      `holding it.`,
  );
}

/**
 * A digest of the checkpoint a torchvision backbone would load: the SHA-256 recorded beside
 * the cached or local file (checked against its name's prefix when it was fetched), or the
 * file name alone when no copy is here yet (nothing is downloaded).
 */
export async function torchvisionWeightsDigest(spec: BackboneSpec): Promise<string> {
  const name = checkpointName(spec);
  const candidates = [join(torchvisionCacheDir(), name)];
  for (const s of spec.sources) {
    if ("folder" in s) candidates.push(s.folder, join(s.folder, name));
    if ("shared" in s) candidates.push(join(sharedModelFolder(s.shared), name));
  }
  for (const path of candidates) {
    if (!existsSync(path) || Deno.statSync(path).isDirectory) continue;
    try {
      const recorded = (await Deno.readTextFile(`${path}.sha256`)).split(/\s/)[0];
      if (/^[0-9a-f]{64}$/.test(recorded)) return recorded;
    } catch {
      // no record beside a local copy: hash it
    }
    const hash = createHash("sha256");
    const file = await Deno.open(path, { read: true });
    try {
      for await (const chunk of file.readable) hash.update(chunk);
    } catch (e) {
      throw new Error(`${path}: cannot read (${(e as Error).message})`);
    }
    return hash.digest("hex");
  }
  return `absent:${name}`;
}

/**
 * Whether a torchvision backbone's checkpoint is here already (in the download cache or a
 * local source), so a run can use it without network access.
 */
export function hasTorchvisionCheckpoint(spec: BackboneSpec): boolean {
  if (spec.torchvision === undefined) return false;
  const name = checkpointName(spec);
  const candidates = [join(torchvisionCacheDir(), name)];
  for (const s of spec.sources) {
    if ("folder" in s) candidates.push(s.folder, join(s.folder, name));
  }
  return candidates.some((p) => existsSync(p) && Deno.statSync(p).isFile);
}
