/**
 * Downloads into a cache: progress bar, SHA-256 check, and an atomic rename so that an
 * interrupted download never leaves a file that looks complete. Shared by every stage that
 * fetches data or weights (IMDB archive, text encoders, vision backbones).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { dirname } from "node:path";
import { ProgressBar } from "./progress.ts";

/** Options of {@link downloadToFile}. */
export interface DownloadOptions {
  /** Expected SHA-256 (hex) of the file; checked before the file is moved into place. */
  sha256?: string;
  /** What to tell the user if the download fails (e.g. where to put a local copy). */
  offlineHint?: string;
  /** Print no progress bar. */
  silent?: boolean;
}

/** The SHA-256 (hex) of a file, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Downloads `url` to `dest` unless `dest` already exists (and matches `sha256` when given).
 * The bytes go to `dest + ".part"` first and are renamed into place only when complete and
 * verified. Returns `dest`.
 */
export async function downloadToFile(
  url: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<string> {
  if (await exists(dest)) {
    if (!options.sha256 || (await sha256File(dest)) === options.sha256) return dest;
    throw new Error(
      `${dest} exists but its SHA-256 differs from the expected ${options.sha256}; ` +
        `delete it to download again.`,
    );
  }
  await Deno.mkdir(dirname(dest), { recursive: true });
  const hint = options.offlineHint ? `\n${options.offlineHint}` : "";
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`Could not download ${url}: ${(e as Error).message}${hint}`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`Could not download ${url}: HTTP ${response.status}${hint}`);
  }
  const length = Number(response.headers.get("content-length")) || undefined;
  const bar = new ProgressBar(`download ${url.split("/").pop()}`, length, {
    unit: "B",
    silent: options.silent,
  });
  const part = `${dest}.part`;
  const hash = createHash("sha256");
  const file = await Deno.open(part, { write: true, create: true, truncate: true });
  try {
    for await (const chunk of response.body) {
      hash.update(chunk);
      let written = 0;
      while (written < chunk.length) written += await file.write(chunk.subarray(written));
      bar.tick(chunk.length);
    }
  } catch (e) {
    file.close();
    throw new Error(`Download of ${url} was interrupted: ${(e as Error).message}${hint}`);
  }
  file.close();
  bar.finish();
  const digest = hash.digest("hex");
  if (options.sha256 && digest !== options.sha256) {
    await Deno.remove(part);
    throw new Error(
      `Download of ${url} is corrupt: SHA-256 ${digest}, expected ${options.sha256}.`,
    );
  }
  await Deno.rename(part, dest);
  return dest;
}
