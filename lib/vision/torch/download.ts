/**
 * torchvision's published checkpoint files (`https://download.pytorch.org/models/<name>.pth`)
 * in a local cache: {@link torchvisionFile} returns the path of the file, downloading it with
 * progress when it is not there yet. The file is checked as torchvision checks it
 * (`torch.hub`'s `check_hash`): the file name holds a prefix of the file's SHA-256 after its
 * last dash-separated part (`resnet18-f37072fd.pth` → `f37072fd`), and the digest must start
 * with it. A download goes to a unique temporary file beside its destination and is renamed
 * into place only when complete and verified, so a failed or interrupted download leaves
 * nothing that looks like the file.
 *
 * ```ts
 * import { torchvisionFile } from "./download.ts";
 * const path = await torchvisionFile("https://download.pytorch.org/models/resnet18-f37072fd.pth", {
 *   cacheDir: "data/cache/torchvision",
 * });
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { exists, sha256File } from "../../download.ts";
import {
  hashSidecarPath,
  partPath,
  readRecordedHash,
  removeLeftoverParts,
  writeAtomic,
} from "../../integrity.ts";
import { type Progress, ProgressBar } from "../../progress.ts";
import { safeJoin, UnsafePathError } from "../../safe_path.ts";

/** Options of {@link torchvisionFile}. */
export interface TorchvisionFileOptions {
  /** The folder downloads are kept in (created when missing). */
  cacheDir: string;
  /**
   * A local copy to use instead of the cache: the file itself, or a folder holding a file of
   * the URL's file name. It is checked like a download and never copied.
   */
  localPath?: string;
  /** Called as bytes arrive (`total`: the announced length, when known). */
  onProgress?: (progress: Progress) => void;
  /** Print no progress bar. */
  silent?: boolean;
}

/** A file whose SHA-256 does not start with the prefix in its name. */
export class HashPrefixError extends Error {
  /** The file checked (for a download: its URL). */
  readonly path: string;
  /** The prefix in the file name. */
  readonly expected: string;
  /** The file's SHA-256 (hex). */
  readonly actual: string;
  /** Creates the error; `fix` says what to do. */
  constructor(path: string, expected: string, actual: string, fix: string) {
    super(
      `${path} fails torchvision's hash check: its SHA-256 is ${actual}, which does not start ` +
        `with ${expected} (the prefix in its file name). ${fix}`,
    );
    this.name = "HashPrefixError";
    this.path = path;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * The hash prefix in a checkpoint's file name as `torch.hub` finds it (the first match of
 * `-([a-f0-9]*)\.`), or `undefined` when there is none (nothing to check).
 */
export function hashPrefixOf(fileName: string): string | undefined {
  return /-([a-f0-9]*)\./.exec(fileName)?.[1];
}

/**
 * The file name of a checkpoint URL (the last part of its path, percent-escapes decoded),
 * refused with an {@link UnsafePathError} when it could name a file outside its folder: empty,
 * holding `/` or `\`, `.` or `..`.
 */
export function torchvisionFileName(url: string): string {
  const what = `the file name of ${url}`;
  let name: string;
  try {
    name = decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
  } catch (e) {
    throw new Error(`${url} is not a valid checkpoint URL: ${(e as Error).message}`);
  }
  if (/[/\\]/.test(name)) throw new UnsafePathError(what, name, "it holds a path separator");
  if (name === "." || name === "..") throw new UnsafePathError(what, name, "it names a folder");
  safeJoin(".", name, what);
  return name;
}

/**
 * Throws {@link HashPrefixError} unless the SHA-256 of the file at `path` starts with the
 * hash prefix of `fileName` (see {@link hashPrefixOf}); returns the digest.
 */
export async function checkHashPrefix(path: string, fileName = basename(path)): Promise<string> {
  const digest = await sha256File(path);
  const prefix = hashPrefixOf(fileName);
  if (prefix !== undefined && !digest.startsWith(prefix)) {
    throw new HashPrefixError(
      path,
      prefix,
      digest,
      `It is not the file ${fileName} that torchvision publishes (damaged or another version); ` +
        `replace it with the published file.`,
    );
  }
  return digest;
}

/** A local copy named by `localPath`: the file, or `fileName` inside the folder. */
async function localCopy(localPath: string, fileName: string): Promise<string> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(localPath);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(`The local copy ${localPath} of ${fileName} does not exist.`);
  }
  const path = stat.isDirectory
    ? safeJoin(localPath, fileName, `checkpoint file name in ${localPath}`)
    : localPath;
  if (stat.isDirectory && !(await exists(path))) {
    throw new Error(`The folder ${localPath} has no ${fileName}; put the file there.`);
  }
  await checkHashPrefix(path, fileName);
  return path;
}

/**
 * The local path of the torchvision checkpoint at `url`: `options.localPath` (the file, or a
 * folder holding it) when given, else the file in `options.cacheDir`, downloaded with progress
 * when missing. Each file is checked against the hash prefix in its name (a cached file once,
 * recorded in a `.sha256` file beside it). Offline without the file, the error names the file,
 * the URL and where to put it.
 */
export async function torchvisionFile(
  url: string,
  options: TorchvisionFileOptions,
): Promise<string> {
  const fileName = torchvisionFileName(url);
  if (options.localPath !== undefined) return await localCopy(options.localPath, fileName);
  const dest = safeJoin(options.cacheDir, fileName, `the file name of ${url}`);
  if (await exists(dest)) {
    const prefix = hashPrefixOf(fileName) ?? "";
    const recorded = await readRecordedHash(dest).catch(() => undefined);
    if (recorded?.startsWith(prefix)) return dest;
    const digest = await checkHashPrefix(dest, fileName);
    await writeAtomic(hashSidecarPath(dest), `${digest}  ${fileName}\n`);
    return dest;
  }
  await Deno.mkdir(options.cacheDir, { recursive: true });
  await removeLeftoverParts(options.cacheDir); // of downloads whose process died
  const digest = await download(url, dest, fileName, options);
  await writeAtomic(hashSidecarPath(dest), `${digest}  ${fileName}\n`);
  return dest;
}

/** Why `url` could not be fetched, with where to put the file by hand. */
function offlineError(url: string, fileName: string, dest: string, reason: string): Error {
  return new Error(
    `Could not download ${fileName} from ${url} (${reason}). Without network access, fetch ` +
      `the file elsewhere and put it at ${dest}, or pass localPath (the file, or a folder ` +
      `holding ${fileName}).`,
  );
}

/** Streams `url` into a temporary file, checks its hash prefix, renames it to `dest`. */
async function download(
  url: string,
  dest: string,
  fileName: string,
  options: TorchvisionFileOptions,
): Promise<string> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw offlineError(url, fileName, dest, (e as Error).message);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw offlineError(url, fileName, dest, `HTTP ${response.status}`);
  }
  const total = Number(response.headers.get("content-length")) || undefined;
  const bar = new ProgressBar(`download ${fileName}`, total, {
    unit: "B",
    silent: options.silent,
  });
  const part = partPath(dest);
  const hash = createHash("sha256");
  try {
    let done = 0;
    try {
      using file = await Deno.open(part, { write: true, createNew: true });
      for await (const chunk of response.body) {
        hash.update(chunk);
        for (let written = 0; written < chunk.length;) {
          written += await file.write(chunk.subarray(written));
        }
        done += chunk.length;
        bar.tick(chunk.length);
        options.onProgress?.({ done, total });
      }
    } catch (e) {
      throw offlineError(url, fileName, dest, `interrupted: ${(e as Error).message}`);
    }
    if (total !== undefined && done !== total) {
      throw offlineError(url, fileName, dest, `interrupted after ${done} of ${total} bytes`);
    }
    bar.finish();
    const digest = hash.digest("hex");
    const prefix = hashPrefixOf(fileName);
    if (prefix !== undefined && !digest.startsWith(prefix)) {
      throw new HashPrefixError(url, prefix, digest, "The download is corrupt; try again.");
    }
    await Deno.rename(part, dest);
    return digest;
  } catch (e) {
    await Deno.remove(part).catch(() => {});
    throw e;
  }
}
