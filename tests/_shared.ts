/**
 * Test helper for inputs from the shared folder. In CI (`CI=true`) they are required: a
 * missing file fails the test. Elsewhere a test that needs a missing file is skipped with a
 * message saying how to provide it.
 */
import { existsSync } from "node:fs";
import { sharedDir, sharedPath } from "../lib/config.ts";

/** Resolves `parts` under the shared folder; `ignore` is true when it must be skipped. */
export function shared(...parts: string[]): { path: string; ignore: boolean } {
  const path = sharedPath(...parts);
  if (existsSync(path)) return { path, ignore: false };
  if (Deno.env.get("CI")) {
    throw new Error(
      `CI needs ${path}: place the team's shared folder beside the project.`,
    );
  }
  console.warn(
    `skipping: ${path} is missing. Put the shared folder at ${sharedDir()} ` +
      `or set TEXT_AS_IMAGE_SHARED to a folder that holds ${parts.join("/")}.`,
  );
  return { path, ignore: true };
}
