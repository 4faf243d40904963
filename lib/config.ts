/**
 * Where the toolkit finds its inputs and keeps its caches. Every location is configuration:
 * an environment variable, else a default relative to the project root.
 *
 * - `TEXT_AS_IMAGE_DATA`: cache folder for downloads, embeddings, features (default `data/`).
 * - `TEXT_AS_IMAGE_SHARED`: a folder laid out like the team's `shared/` (default `../shared`).
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the project root (the folder holding `deno.json`). */
export const projectRoot: string = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
);

/** The cache folder for downloads and derived data. */
export function dataDir(): string {
  return resolve(
    Deno.env.get("TEXT_AS_IMAGE_DATA") ?? join(projectRoot, "data"),
  );
}

/** The folder of read-only shared inputs (IMDB archive, model weights, photographs). */
export function sharedDir(): string {
  return resolve(
    Deno.env.get("TEXT_AS_IMAGE_SHARED") ?? join(projectRoot, "..", "shared"),
  );
}

/** A path inside {@link sharedDir}. */
export function sharedPath(...parts: string[]): string {
  return join(sharedDir(), ...parts);
}
