/**
 * Test helpers for inputs from the shared folder and for Debian's Python with torch. In CI
 * (`CI=true`) they are required: a missing file or module fails the test. Elsewhere a test
 * that needs one is skipped with a message saying how to provide it.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { projectRoot, sharedDir, sharedPath } from "../lib/config.ts";
import { SYSTEM_PYTHON } from "../tools/tiny_bert.ts";

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

/** Whether Debian's Python imports torch (required in CI; elsewhere false, with a message). */
export function torchAvailable(): boolean {
  try {
    const out = new Deno.Command(SYSTEM_PYTHON, { args: ["-c", "import torch"] }).outputSync();
    if (out.success) return true;
  } catch {
    // not installed
  }
  if (Deno.env.get("CI")) throw new Error(`CI needs ${SYSTEM_PYTHON} with torch (python3-torch)`);
  console.warn(`skipping: ${SYSTEM_PYTHON} with torch is missing (Debian: python3-torch)`);
  return false;
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
