/**
 * Where a Hugging Face model in the transformers.js layout comes from: a local folder, or
 * the hub (`owner/name`), downloaded into the cache `dataDir()/models/<owner>/<name>/` with a
 * progress bar and the SHA-256 the hub publishes for each large file. When the hub cannot be
 * reached the error lists the files to fetch and the folder to put them in.
 *
 * Hub repo ids and file names become folder and file names, so they are checked first: a repo
 * id must be `owner/name`, each part letters, digits, `_`, `-` and `.` that starts and ends
 * with a letter, digit or `_` and holds no `..` (the hub's own rule), and every file name
 * must be a relative path that stays inside the model folder ({@link safeJoin}). Anything
 * else (`../../x`, `a/b/../../c`, `/etc/passwd`) is an error naming it, and nothing is read or
 * written outside the cache. The hub API's file listing is only used to look up the checksum
 * of a file asked for by name: its paths never become paths on disk.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { dataDir } from "../config.ts";
import { downloadToFile, exists } from "../download.ts";
import { safeJoin, UnsafePathError } from "../safe_path.ts";

/** Base URL of the Hugging Face hub (override with `HF_ENDPOINT`). */
export function hubEndpoint(): string {
  return (Deno.env.get("HF_ENDPOINT") ?? "https://huggingface.co").replace(/\/$/, "");
}

/** One part (owner or name) of a hub repo id: the hub's characters, no `..`, at most 96. */
const HUB_ID_PART = /^\w(?:[\w.-]{0,94}\w)?$/;

const HUB_ID_RULE = "A hub repo id is owner/name, each part made of letters, digits, " +
  '"_", "-" and "." that starts and ends with a letter, digit or "_" and holds no "..".';

/** Why `repoId` is not a valid hub repo id (`owner/name`), or `null` when it is one. */
export function hubIdProblem(repoId: string): string | null {
  if (typeof repoId !== "string") return "it is not a string";
  const parts = repoId.split("/");
  if (parts.length !== 2) {
    return `it has ${parts.length} part${parts.length === 1 ? "" : "s"} separated by "/", not 2`;
  }
  for (const [i, part] of parts.entries()) {
    const which = i === 0 ? "owner" : "name";
    if (part.includes("..")) return `its ${which} ${JSON.stringify(part)} holds ".."`;
    if (!HUB_ID_PART.test(part)) {
      return `its ${which} ${JSON.stringify(part)} has characters outside the hub's set, ` +
        `starts or ends with "." or "-", or is empty or longer than 96`;
    }
  }
  return null;
}

/**
 * `repoId` when it is a valid hub repo id (`owner/name`, see {@link hubIdProblem}), else
 * throws an {@link UnsafePathError} naming it and why.
 */
export function checkHubId(repoId: string): string {
  const problem = hubIdProblem(repoId);
  if (problem !== null) throw new UnsafePathError("hub repo id", repoId, problem, HUB_ID_RULE);
  return repoId;
}

/**
 * The cache folder of hub model `repoId` (`owner/name`); throws when `repoId` is not a valid
 * hub repo id (so that it cannot name a folder outside the cache).
 */
export function hubCacheFolder(repoId: string): string {
  checkHubId(repoId);
  return safeJoin(join(dataDir(), "models"), repoId, "hub repo id");
}

/** Whether `source` names a hub model (a valid `owner/name`) rather than a folder on disk. */
export function looksLikeHubId(source: string): boolean {
  return hubIdProblem(source) === null;
}

/**
 * The paths of `files` inside `folder`, each checked with {@link safeJoin} (throwing an error
 * that names `what` and the file).
 */
function filePaths(folder: string, files: readonly string[], what: string): string[] {
  return files.map((f) => safeJoin(folder, f, `${what}: file`));
}

async function missingFiles(files: readonly string[], paths: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const [i, f] of files.entries()) if (!(await exists(paths[i]))) missing.push(f);
  return missing;
}

/**
 * SHA-256 of the hub's LFS files, from the hub API; empty when it cannot be read. The paths
 * of the listing are only map keys, looked up by the names of the files asked for.
 */
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
 * what is missing. Throws, listing the files and the folder, when they cannot be obtained;
 * throws before anything is read or written when a file name would resolve outside the
 * folder, or when `source` is neither an existing folder nor a valid hub repo id.
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
  const hubProblem = hubIdProblem(source);
  if (isDir || hubProblem !== null) {
    if (!isDir) {
      throw new Error(
        `Model folder ${asPath} does not exist, and ${JSON.stringify(source)} is not a hub ` +
          `repo id (owner/name): ${hubProblem}.`,
      );
    }
    const missing = await missingFiles(files, filePaths(asPath, files, `model folder ${asPath}`));
    if (missing.length > 0) {
      throw new Error(
        `Model folder ${asPath} lacks ${missing.join(", ")} (the transformers.js layout ` +
          `needs: ${files.join(", ")})`,
      );
    }
    return asPath;
  }
  const folder = hubCacheFolder(source);
  const paths = filePaths(folder, files, `hub model ${source}`);
  const missing = await missingFiles(files, paths);
  if (missing.length === 0) return folder;
  const revision = options.revision ?? "main";
  const page = `${hubEndpoint()}/${source}/tree/${revision}`;
  const hint = `The model ${source} could not be downloaded. Download these files from ${page} ` +
    `and put them, keeping their sub-folders, into ${folder}:\n` +
    files.map((f, i) => `  ${paths[i]}  <-  ${hubEndpoint()}/${source}/resolve/${revision}/${f}`)
      .join("\n") +
    `\nor pass the path of a local folder with that layout instead of "${source}".`;
  const sums = await hubChecksums(source, revision);
  for (const f of missing) {
    try {
      await downloadToFile(
        `${hubEndpoint()}/${source}/resolve/${revision}/${f}`,
        paths[files.indexOf(f)],
        { sha256: sums.get(f), silent: options.silent },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message.split("\n")[0]}\n${hint}`);
    }
  }
  return folder;
}
