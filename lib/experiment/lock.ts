/**
 * Locks that keep two processes working on one run (say `reproduce` in a terminal and
 * notebook 05 with the same config) from writing the same job or layout at once: a lock is
 * a file created exclusively beside what it protects, holding the owner's process id, host
 * and start time. A second process that meets a live lock stops with a message naming the
 * job, the owner and what to do; a lock whose process no longer runs (a crash, a killed
 * kernel) is taken over, and the log says so. Shared caches (embeddings, features) need no
 * lock: their writes are atomic and identical whoever makes them.
 *
 * @module
 */
import { hostname } from "node:os";
import { processAlive } from "../integrity.ts";

/** What a lock file holds. */
export interface LockOwner {
  /** Process id. */
  pid: number;
  /** Host name. */
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  /** What holds it (e.g. the job's name). */
  what: string;
}

/** A live lock held by another process. */
export class LockedError extends Error {
  /** The lock file. */
  readonly path: string;
  /** Who holds it. */
  readonly owner: LockOwner;
  /** Creates the error. */
  constructor(path: string, owner: LockOwner) {
    super(
      `${owner.what} is being run by process ${owner.pid} on ${owner.host} (since ` +
        `${owner.since}); wait for it to finish or stop it, or run other jobs with --only. If ` +
        `no such process runs, delete ${path}.`,
    );
    this.name = "LockedError";
    this.path = path;
    this.owner = owner;
  }
}

/** A held lock; release it when done. */
export interface Lock {
  /** The lock file. */
  path: string;
  /** Removes the lock file (idempotent). */
  release(): Promise<void>;
}

/** Whether `owner`'s process may still run (another host's, or unknown: assumed to). */
async function alive(owner: LockOwner): Promise<boolean> {
  return owner.host !== hostname() || (await processAlive(owner.pid)) !== false;
}

async function create(path: string, owner: LockOwner): Promise<boolean> {
  try {
    const file = await Deno.open(path, { write: true, createNew: true });
    await file.write(new TextEncoder().encode(JSON.stringify(owner)));
    file.close();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  }
}

/**
 * Takes the lock `path` for `what`, or throws {@link LockedError} when a live process holds
 * it. A stale lock is taken over (and `log` says so).
 */
export async function acquireLock(
  path: string,
  what: string,
  log: (line: string) => void = (line) => console.error(line),
): Promise<Lock> {
  const owner: LockOwner = {
    pid: Deno.pid,
    host: hostname(),
    since: new Date().toISOString(),
    what,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await create(path, owner)) {
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          await Deno.remove(path).catch(() => {});
        },
      };
    }
    let holder: LockOwner | undefined;
    try {
      holder = JSON.parse(await Deno.readTextFile(path)) as LockOwner;
    } catch {
      // Being written right now, or damaged: look again shortly.
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (await alive(holder)) throw new LockedError(path, holder);
    log(`${path}: taking over the lock of process ${holder.pid}, which no longer runs`);
    await Deno.remove(path).catch(() => {});
  }
  throw new Error(`${path}: could not take the lock for ${what}; delete the file and retry`);
}
