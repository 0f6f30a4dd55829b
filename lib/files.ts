import {
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { isAlive, processStartedAt } from "./process.js";

/**
 * File utilities shared by the simulator's data directory (sim/store.ts), the lab's state file
 * (state/store.ts), gradings and exports: all must survive a crash at any instant and a full disk.
 * Every write of the product goes through `writeAll` here, so a write that comes up short is never
 * mistaken for a complete one, and the test harness below can make any of them fail.
 */

/**
 * A write that could not complete: the disk or the user's quota is full, or the device failed.
 * What the file held before is untouched (writeAtomic never renames an incomplete file into place;
 * an append is cut back to where it started).
 */
export class DiskFullError extends Error {
  override readonly name = "DiskFullError";
  constructor(
    /** The file that could not be written. */
    readonly path: string,
    /** ENOSPC, EDQUOT, EFBIG or EIO. */
    readonly code: string,
  ) {
    super(
      `cannot write ${path}: ${REASONS[code] ?? code} (${code}). What it held before is untouched. ` +
        `Free some space (or raise the quota) and run the command again: it continues where it stopped.`,
    );
  }
}

const REASONS: Record<string, string> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is used up",
  EFBIG: "the file is larger than the file system allows",
  EIO: "the disk reported an I/O error",
};

let lastFailure: DiskFullError | undefined;

/**
 * The last write of this process that could not complete, if any: a command whose work failed can
 * say that the disk was full even when the failure reached it as another error (a simulated
 * account answering 500 because it could not save).
 */
export function lastDiskFull(): DiskFullError | undefined {
  return lastFailure;
}

/** `err` as a DiskFullError for `path` when it is one of the codes of a full or failing disk. */
function asDiskFull(err: unknown, path: string): unknown {
  if (err instanceof DiskFullError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined || !(code in REASONS)) return err;
  lastFailure = new DiskFullError(path, code);
  return lastFailure;
}

/**
 * The full-disk tests' harness, in the style of lib/crash.ts: `KMSLAB_TEST_DISK_FULL=n` makes the
 * n-th write of this process (each writeAll counts once) come up short and then fail with ENOSPC,
 * as a write on a full disk does; `n+` makes that write and every later one fail (a disk that stays
 * full). Unset, it does nothing.
 */
const diskFull = (() => {
  const m = /^(\d+)(\+)?$/.exec(process.env.KMSLAB_TEST_DISK_FULL ?? "");
  if (!m) return () => false;
  const at = Number(m[1]);
  const stays = m[2] === "+";
  let writes = 0;
  return () => {
    writes++;
    return stays ? writes >= at : writes === at;
  };
})();

function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error("ENOSPC: no space left on device, write"), {
    code: "ENOSPC",
    errno: -28,
    syscall: "write",
  });
}

/**
 * Writes all of `data` to `fd` (at `position`, or the file's offset): write(2) may write less than
 * asked, and on a full disk does so before it fails with ENOSPC. Throws DiskFullError for `path`.
 */
export function writeAll(fd: number, data: Uint8Array, path: string, position?: number): void {
  // The injected fault writes half, then fails, like a disk that fills during the write.
  const limit = diskFull() ? data.length >> 1 : data.length;
  let off = 0;
  try {
    while (off < data.length) {
      if (off >= limit) throw enospc();
      const n = writeSync(fd, data, off, limit - off, position === undefined ? null : position + off);
      if (n <= 0) throw enospc();
      off += n;
    }
  } catch (err) {
    throw asDiskFull(err, path);
  }
}

/** fsync(2), whose ENOSPC/EIO (a network or thin-provisioned disk reports them late) is DiskFullError. */
function fsyncFile(fd: number, path: string): void {
  try {
    fsyncSync(fd);
  } catch (err) {
    throw asDiskFull(err, path);
  }
}

export interface WriteAtomicOptions {
  /** File mode of the new file (default 0600: these files may name accounts and resources). */
  mode?: number;
  /**
   * Keep what was there before as `<path>.backup`, so that one previous version always survives a
   * bad write or a bad tool. The backup is a hard link to the old file (no copy), or a copy when
   * the file system refuses links. A link is enough: a file in place is never written again, only
   * replaced by a rename, so the inode the backup names keeps the previous version whole; and
   * only a complete, fsynced temp file is ever renamed into place, so that version is a whole one.
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
 * The file `path` names once its symbolic links are followed (itself when it is not one; a link
 * to a file not made yet gives that file's path). Writing there, beside the target, keeps the link
 * a link: a rename over the link's own path would replace it with a regular file.
 */
export function followLinks(path: string): string {
  let current = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    let isLink: boolean;
    try {
      isLink = lstatSync(current).isSymbolicLink();
    } catch {
      return current;
    }
    if (!isLink) return current;
    current = resolve(dirname(current), readlinkSync(current));
  }
  return current; // a loop: the open below fails with ELOOP, as it should
}

/**
 * Atomic replace: the text goes to a temp file in the same directory as the file (the link's
 * target when `path` is a symbolic link), is written whole and fsynced, then renamed over it, and
 * the directory is fsynced so the rename itself is durable. A crash at any point leaves either the
 * old file or the new one, never a torn one (a stray temp file at worst, which readers never look
 * at; see removeStaleTempFiles). A write that fails (a full disk: DiskFullError) removes its temp
 * file and leaves the old file, and its backup, as they were.
 */
export function writeAtomic(path: string, text: string | Uint8Array, options: WriteAtomicOptions = {}): void {
  const mode = options.mode ?? 0o600;
  const file = followLinks(path);
  const tmp = tempPathFor(file);
  const data = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  // A temp file left by a crash of an earlier process with our pid would keep its old mode.
  rmSync(tmp, { force: true });
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx", mode);
    fchmodSync(fd, mode);
    writeAll(fd, data, file);
    fsyncFile(fd, file);
    closeSync(fd);
    fd = undefined;
    if (options.backup) keepBackup(file, mode);
    renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw asDiskFull(err, file);
  }
  fsyncDir(dirname(file));
}

/**
 * Makes `<path>.backup` the current content of `path` (if any). Linked under a temp name and renamed
 * into place, so an existing backup is replaced atomically too: a crash here leaves an older backup
 * or this one, and the file itself untouched.
 */
function keepBackup(path: string, mode: number): void {
  const backup = backupPathFor(path);
  const tmp = tempPathFor(backup);
  rmSync(tmp, { force: true });
  try {
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
        fsyncFile(fd, backup);
      } finally {
        closeSync(fd);
      }
    }
    renameSync(tmp, backup);
  } finally {
    // rename(2) between two links of one file does nothing and leaves `tmp`: that happens when a
    // crash came after the previous backup was made and before its rename, so both name one file.
    // A failed copy leaves it too.
    rmSync(tmp, { force: true });
  }
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
 * Creates `path` (which must not exist) holding `data`, fsynced. A write that fails removes the
 * file: no reader ever finds part of it. For files named once and never rewritten (S3 bodies).
 */
export function writeNewFile(path: string, data: Uint8Array, mode = 0o600): void {
  const fd = openSync(path, "wx", mode);
  try {
    writeAll(fd, data, path);
    fsyncFile(fd, path);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw err;
  }
  closeSync(fd);
}

/**
 * Appends `text` to the log file `path` whose length is `size` (what the caller has appended so
 * far; the file's own length when not given), and returns the new length. A write that fails cuts the file back to `size`, so the next
 * line starts where this one would have, and a reader never finds a line that was not acknowledged.
 * Not fsynced: a log's last lines may go with a power loss, and a reader drops a torn last line.
 */
export function appendLine(path: string, text: string, size?: number): number {
  const data = Buffer.from(text, "utf8");
  // Not O_APPEND: Linux's pwrite(2) ignores the position in append mode, and this one must hold.
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT, 0o600);
  const start = size ?? fstatSync(fd).size;
  try {
    writeAll(fd, data, path, start);
    return start + data.length;
  } catch (err) {
    try {
      ftruncateSync(fd, start);
    } catch {
      // Nothing more to do: a reader drops what does not parse.
    }
    throw err;
  } finally {
    closeSync(fd);
  }
}

/** A temp file name writeAtomic or a lock makes: `<file>.tmp-<pid>`. */
const TEMP_NAME = /\.tmp-(\d+)$/;

/**
 * Removes the temp files (`<file>.tmp-<pid>`, `<file>.backup.tmp-<pid>`, `<file>.lock.tmp-<pid>`)
 * of the `files` in `dir` that their writers left when they died: a crash
 * or SIGKILL between the write of a temp file and its rename. They may hold what their file holds
 * (an account's secrets, key material), so none outlives its writer longer than the next process
 * to open the directory. A temp file is its writer's while that process runs; its writer is gone
 * when no process has the pid, or the process with it started after the file was last written
 * (the pid was used again). Safe without a lock: a live writer's own files are never touched.
 */
export function removeStaleTempFiles(dir: string, files: readonly string[]): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    // Only ours: the directory may be shared (--state ~/lab.json), and others' temp files are theirs.
    if (!m || !files.some((f) => name.startsWith(`${f}.`))) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    const path = join(dir, name);
    if (isAlive(pid) && !startedAfter(pid, path)) continue;
    rmSync(path, { force: true });
    removed.push(name);
  }
  return removed;
}

/** Whether the process with `pid` started after `path` was last changed (its writer is another). */
function startedAfter(pid: number, path: string): boolean {
  const started = processStartedAt(pid);
  if (started === undefined) return false;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return false;
  }
  // A start time is known to a second (the boot time's resolution): allow two.
  return started > mtimeMs + 2_000;
}

/**
 * A directory other users may write in (mode o+w) without the sticky bit: any of them could
 * rename, replace or delete the files kept there (a state file, a lock, an account's keys).
 */
export class UnsafeDirectoryError extends Error {
  override readonly name = "UnsafeDirectoryError";
  constructor(
    readonly dir: string,
    readonly mode: number,
  ) {
    super(
      `refusing to use ${dir}: any user of this machine may write in it (mode ` +
        `${(mode & 0o7777).toString(8).padStart(4, "0")}), so another user could replace or remove ` +
        `the files kept there. Make it yours alone with: chmod 700 ${dir}`,
    );
  }
}

/**
 * Refuses a directory that every user may write in and that lacks the sticky bit (which /tmp has:
 * there only a file's owner may rename or remove it). Absent directories pass (they are made 0700).
 */
export function assertPrivateDir(dir: string): void {
  let mode: number;
  try {
    mode = statSync(dir).mode;
  } catch {
    return;
  }
  if (mode & 0o002 && !(mode & 0o1000)) throw new UnsafeDirectoryError(dir, mode);
}
