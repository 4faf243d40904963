/**
 * The code version a run records: the project's git commit, asked of git once per process.
 *
 * @module
 */
import { projectRoot } from "../config.ts";

/**
 * The project's git commit (with `+changes` for a modified tree), or `unknown` without git;
 * asked of git once per process.
 */
export function codeVersion(): Promise<string> {
  codeOnce ??= gitVersion();
  return codeOnce;
}

let codeOnce: Promise<string> | undefined;

async function gitVersion(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", {
      args,
      cwd: projectRoot,
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  try {
    const commit = await git("rev-parse", "--short=12", "HEAD");
    if (!commit) return "unknown";
    const status = await git("status", "--porcelain", "--untracked-files=no", "--", "lib", "tools");
    return status ? `${commit}+changes` : commit;
  } catch {
    return "unknown";
  }
}
