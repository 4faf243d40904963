/**
 * Where a Hugging Face model in the transformers.js layout comes from: a local folder, or
 * the hub (`owner/name`), downloaded into the cache `dataDir()/models/<owner>/<name>/` with a
 * progress bar and the SHA-256 the hub publishes for each large file. When the hub cannot be
 * reached the error lists the files to fetch and the folder to put them in.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { dataDir } from "../config.ts";
import { downloadToFile, exists } from "../download.ts";

/** Base URL of the Hugging Face hub (override with `HF_ENDPOINT`). */
export function hubEndpoint(): string {
  return (Deno.env.get("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/$/, "");
}

/** The cache folder of hub model `repoId` (`owner/name`). */
export function hubCacheFolder(repoId: string): string {
  return join(dataDir(), "models", ...repoId.split("/"));
}

/** Whether `source` names a hub model (`owner/name`) rather than a folder on disk. */
export function looksLikeHubId(source: string): boolean {
  return /^[\w.-]+\/[\w.-]+$/.test(source) && !source.startsWith(".");
}

async function missingFiles(folder: string, files: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const f of files) if (!(await exists(join(folder, f)))) missing.push(f);
  return missing;
}

/** SHA-256 of the hub's LFS files, from the hub API; empty when it cannot be read. */
async function hubChecksums(repoId: string, revision: string): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  for (const sub of ["", "onnx"]) {
    const url = `${hubEndpoint()}/api/models/${repoId}/tree/${revision}${sub ? `/${sub}` : ""}`;
    try {
      const res = await fetch(url);
      if (!res.ok) {
        await res.body?.cancel();
        continue;
      }
      const entries = await res.json() as { path: string; lfs?: { oid?: string } }[];
      for (const e of entries) if (e.lfs?.oid) sums.set(e.path, e.lfs.oid);
    } catch {
      // Offline: downloads below fail with the instructions.
    }
  }
  return sums;
}

/**
 * Returns a folder holding `files` (paths relative to the model root) for `source`: the
 * folder itself when `source` is a directory, else the hub cache of `source`, downloading
 * what is missing. Throws, listing the files and the folder, when they cannot be obtained.
 */
export async function resolveModelFolder(
  source: string,
  files: readonly string[],
  options: { revision?: string; silent?: boolean } = {},
): Promise<string> {
  const asPath = resolve(source);
  let isDir = false;
  try {
    isDir = (await Deno.stat(asPath)).isDirectory;
  } catch {
    isDir = false;
  }
  if (isDir || !looksLikeHubId(source)) {
    if (!isDir) throw new Error(`Model folder ${asPath} does not exist`);
    const missing = await missingFiles(asPath, files);
    if (missing.length > 0) {
      throw new Error(
        `Model folder ${asPath} lacks ${missing.join(", ")} (the transformers.js layout ` +
          `needs: ${files.join(", ")})`,
      );
    }
    return asPath;
  }
  const folder = hubCacheFolder(source);
  const missing = await missingFiles(folder, files);
  if (missing.length === 0) return folder;
  const revision = options.revision ?? "main";
  const page = `${hubEndpoint()}/${source}/tree/${revision}`;
  const hint = `The model ${source} could not be downloaded. Download these files from ${page} ` +
    `and put them, keeping their sub-folders, into ${folder}:\n` +
    files.map((f) =>
      `  ${join(folder, f)}  <-  ${hubEndpoint()}/${source}/resolve/${revision}/${f}`
    )
      .join("\n") +
    `\nor pass the path of a local folder with that layout instead of "${source}".`;
  const sums = await hubChecksums(source, revision);
  for (const f of missing) {
    try {
      await downloadToFile(
        `${hubEndpoint()}/${source}/resolve/${revision}/${f}`,
        join(folder, f),
        { sha256: sums.get(f), silent: options.silent },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message.split("\n")[0]}\n${hint}`);
    }
  }
  return folder;
}
