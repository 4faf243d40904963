/**
 * Test helper for inputs from the shared folder. In CI (`CI=true`) they are required: a
 * missing file fails the test. Elsewhere a test that needs a missing file is skipped with a
 * message saying how to provide it.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { projectRoot, sharedDir, sharedPath } from "../lib/config.ts";

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

/** What a tool run by {@link runTool} printed, and its exit code. */
export interface ToolOutput {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/**
 * Runs `tools/<script>` with `args` in a new Deno process (all permissions); `data`, when
 * given, is the process's cache folder (`TEXT_AS_IMAGE_DATA`), so its caches stay in the test's.
 */
export async function runTool(script: string, args: string[], data?: string): Promise<ToolOutput> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(projectRoot, "tools", script), ...args],
    env: data ? { TEXT_AS_IMAGE_DATA: data } : {},
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}
