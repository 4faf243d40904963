/**
 * Checks for names that come from a downloaded or user-supplied description (a `model.json`'s
 * weight shards, a hub repo id or file list, a tar archive's entries) before they become paths:
 * such a name must be a relative path that stays inside the folder it is joined onto. Refused,
 * with an {@link UnsafePathError} naming what the name is, the name and why:
 *
 * - an empty name, or one that names no file (`.`, `./`);
 * - a NUL byte;
 * - an absolute path: `/x`, `\x`, `\\server\share`, or a Windows drive (`C:\x`, `C:x`);
 * - a `..` component, with `/` or `\` as the separator (`../x`, `a/../../x`, `..\x`): on
 *   Windows a backslash separates folders, so `..\x` is refused on every OS alike;
 * - anything that still resolves outside the folder (a last, lexical check of the joined path).
 *
 * The checks are lexical: a symbolic link inside the folder is followed as the operating
 * system follows it. The folders these names are joined onto are the toolkit's own caches,
 * or folders the user chose.
 *
 * @module
 */
import { isAbsolute, join, relative, resolve } from "node:path";

const RELATIVE_RULE = "Names from a downloaded or user-supplied description must be " +
  "relative paths that stay inside their folder.";

/** A name refused by {@link safeRelative} or {@link safeJoin}. */
export class UnsafePathError extends Error {
  /** What the name is, e.g. `model.json of <url>: weight shard`. */
  readonly what: string;
  /** The offending name, as given. */
  readonly offending: unknown;
  /** Why it was refused, e.g. `it has a ".." component`. */
  readonly reason: string;

  /**
   * Builds the message `<what> "<name>" is refused: <reason>. <rule>`; `rule` defaults to
   * the rule for relative paths.
   */
  constructor(what: string, offending: unknown, reason: string, rule = RELATIVE_RULE) {
    super(`${what} ${quote(offending)} is refused: ${reason}. ${rule}`);
    this.name = "UnsafePathError";
    this.what = what;
    this.offending = offending;
    this.reason = reason;
  }
}

/** The name quoted for a message, with control characters (NUL, newlines) escaped. */
function quote(name: unknown): string {
  return typeof name === "string" ? JSON.stringify(name) : `${String(name)} (${typeof name})`;
}

/**
 * Why `name` is not a safe relative path, or `null` when it is. See the module doc for the
 * rules; `name` may be any value read from JSON.
 */
export function unsafeReason(name: unknown): string | null {
  if (typeof name !== "string") return `it is not a string`;
  if (name === "") return "it is empty";
  if (name.includes("\0")) return "it contains a NUL byte";
  if (name.startsWith("/")) return "it is an absolute path";
  if (name.startsWith("\\")) return "it is an absolute path (a leading backslash, as on Windows)";
  if (/^[A-Za-z]:/.test(name)) return "it names a Windows drive";
  const parts = name.split(/[/\\]/);
  if (parts.includes("..")) {
    return name.split("/").includes("..")
      ? `it has a ".." component`
      : `it has a ".." component once backslashes are read as separators, as on Windows`;
  }
  if (parts.every((p) => p === "" || p === ".")) return "it names no file, only the folder itself";
  return null;
}

/**
 * Returns `name` unchanged when it is a safe relative path (see the module doc), else throws
 * an {@link UnsafePathError} whose message starts with `what` (what the name is and where it
 * comes from, e.g. `` `model.json of ${url}: weight shard` ``) and says why.
 */
export function safeRelative(name: string, what: string): string {
  const reason = unsafeReason(name);
  if (reason !== null) throw new UnsafePathError(what, name, reason);
  return name;
}

/**
 * `join(root, name)` when `name` is a safe relative path that stays inside `root`, else throws
 * an {@link UnsafePathError} naming `what`, the name and why (see {@link safeRelative}); the
 * joined path is also checked, after resolving, to lie strictly inside `root`.
 */
export function safeJoin(root: string, name: string, what: string): string {
  safeRelative(name, what);
  const rel = relative(resolve(root), resolve(root, name));
  if (rel === "") throw new UnsafePathError(what, name, `it resolves to ${root} itself`);
  if (rel === ".." || /^\.\.[/\\]/.test(rel) || isAbsolute(rel)) {
    throw new UnsafePathError(what, name, `it resolves outside ${root}`);
  }
  return join(root, name);
}
