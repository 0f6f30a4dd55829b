import {
  closeSync,
  copyFileSync,
  fchmodSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { z } from "zod";

/**
 * File utilities shared by the simulator's data directory (sim/store.ts) and the lab's state file
 * (state/store.ts): both must survive a crash at any instant and both must refuse a second writer.
 */

export interface WriteAtomicOptions {
  /** File mode of the new file (default 0600: these files may name accounts and resources). */
  mode?: number;
  /**
   * Keep what was there before as `<path>.backup`, so that one previous version always survives a
   * bad write or a bad tool. The backup is a hard link to the old file (no copy), or a copy when
   * the file system refuses links.
   */
  backup?: boolean;
}

/** The temp file writeAtomic uses for `path` in this process; a crash may leave it behind. */
export function tempPathFor(path: string, pid = process.pid): string {
  return `${path}.tmp-${pid}`;
}

/** Where writeAtomic's `backup` option keeps the previous version of `path`. */
export function backupPathFor(path: string): string {
  return `${path}.backup`;
}

/**
 * Atomic replace: the text goes to a temp file in the same directory, is fsynced, then renamed over
 * `path`, and the directory is fsynced so the rename itself is durable. A crash at any point leaves
 * either the old file or the new one, never a torn one (a stray temp file at worst, which readers
 * never look at; see removeStaleTempFiles).
 */
export function writeAtomic(path: string, text: string, options: WriteAtomicOptions = {}): void {
  const mode = options.mode ?? 0o600;
  const tmp = tempPathFor(path);
  // A temp file left by a crash of an earlier process with our pid would keep its old mode.
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, "wx", mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (options.backup) keepBackup(path, mode);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/**
 * Makes `<path>.backup` the current content of `path` (if any). Linked under a temp name and renamed
 * into place, so an existing backup is replaced atomically too: a crash here leaves an older backup
 * or this one, and the state file itself untouched.
 */
function keepBackup(path: string, mode: number): void {
  const backup = backupPathFor(path);
  const tmp = `${backup}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  try {
    linkSync(path, tmp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return; // nothing to keep yet
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EXDEV" && code !== "EMLINK") throw err;
    copyFileSync(path, tmp);
    const fd = openSync(tmp, "r+");
    try {
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  renameSync(tmp, backup);
  // rename(2) between two links of one file does nothing and leaves `tmp`: that happens when a
  // crash came after the previous backup was made and before its rename, so both name one file.
  rmSync(tmp, { force: true });
}

function fsyncDir(dir: string): void {
  try {
    const dirFd = openSync(dir, "r");
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  }
}

/**
 * Removes temp files that writeAtomic left for `path` (and for its backup) when the process that
 * wrote them is gone. Call it only while holding the file's lock: then no live writer can own them
 * except ourselves, and our own is replaced at our next write anyway.
 */
export function removeStaleTempFiles(path: string): string[] {
  const dir = dirname(path);
  const prefixes = [`${basename(path)}.tmp-`, `${basename(backupPathFor(path))}.tmp-`];
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const prefix = prefixes.find((p) => name.startsWith(p));
    if (!prefix) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** Who holds a lock: written into the lock file so that a refused process can name the holder. */
export interface LockInfo {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
  /** Where `kmslab sim serve` answers, while it holds the directory. */
  endpoint?: string;
}

const lockSchema = z.object({
  pid: z.number().int(),
  host: z.string(),
  command: z.string(),
  startedAt: z.string(),
  endpoint: z.string().optional(),
});

/**
 * A sidecar lock file created exclusively: whoever creates it holds the lock, and its content names
 * the holder (pid, host, command, since when). The content is written to a temp file first and then
 * hard-linked into place, so another process never sees an empty lock file. A lock left by a process
 * that no longer runs on this host is stale and taken over; a lock from another host is always
 * respected (its process cannot be checked from here). Callers turn a refusal into their own error.
 */
export class LockFile {
  private held = false;

  constructor(readonly path: string) {}

  get isHeld(): boolean {
    return this.held;
  }

  /** Takes the lock and returns undefined, or returns the live holder that keeps us from taking it. */
  tryAcquire(command: string): LockInfo | undefined {
    const info: LockInfo = {
      pid: process.pid,
      host: hostname(),
      command,
      startedAt: new Date().toISOString(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.createExclusive(JSON.stringify(info))) {
        this.held = true;
        return undefined;
      }
      const text = this.readText();
      const holder = parseLock(text);
      if (holder && (holder.host !== info.host || isAlive(holder.pid))) return holder;
      // Stale (its process is gone) or unreadable. Remove it only if it is still the file we judged:
      // another process may have taken the stale lock over between our read and now.
      if (this.readText() === text) rmSync(this.path, { force: true });
    }
    return this.read() ?? { ...info, pid: -1, command: "unknown" };
  }

  /** Adds facts about the holder (its endpoint) to a lock we hold. */
  annotate(extra: Pick<LockInfo, "endpoint">): void {
    const current = this.read();
    if (!this.held || !current || current.pid !== process.pid) return;
    writeAtomic(this.path, JSON.stringify({ ...current, ...extra }));
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    rmSync(this.path, { force: true });
  }

  /** What the lock file says, whether or not its process still runs; undefined when there is none. */
  read(): LockInfo | undefined {
    return parseLock(this.readText());
  }

  /** The live process holding the lock, if any (a lock left by a dead process is not one). */
  holder(): LockInfo | undefined {
    const lock = this.read();
    if (!lock) return undefined;
    return lock.host !== hostname() || isAlive(lock.pid) ? lock : undefined;
  }

  private readText(): string | undefined {
    try {
      return readFileSync(this.path, "utf8");
    } catch {
      return undefined;
    }
  }

  /** link(2) fails with EEXIST like open(O_EXCL) does, but the file appears with its content. */
  private createExclusive(text: string): boolean {
    const tmp = `${this.path}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, this.path);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return false;
      if (code !== "EPERM" && code !== "ENOTSUP") throw err;
      return this.createExclusiveWithoutLinks(text);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** For file systems without hard links: O_EXCL, with a short window where the file is empty. */
  private createExclusiveWithoutLinks(text: string): boolean {
    let fd: number;
    try {
      fd = openSync(this.path, "wx", 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    }
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return true;
  }
}

function parseLock(text: string | undefined): LockInfo | undefined {
  if (text === undefined) return undefined;
  try {
    return lockSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid runs on this host (EPERM: it runs, as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
