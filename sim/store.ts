import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import type { AccountState } from "./account.js";

/**
 * The simulator's data directory: `account.json` holds the whole account, written atomically
 * (temp file, fsync, rename, fsync of the directory) after every change; `lock` names the one
 * process allowed to write it. Readers (`kmslab sim credentials`) need no lock.
 */
export const ACCOUNT_FILE = "account.json";
export const LOCK_FILE = "lock";
export const DATA_FORMAT_VERSION = 1;

export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockInfo,
  ) {
    super(
      `the simulator data directory ${dir} is in use by process ${holder.pid} on ${holder.host} ` +
        `(${holder.command}, since ${holder.startedAt}). Stop that process, or give this one another ` +
        `directory with --sim-data DIR.`,
    );
  }
}

export class DataDirInvalidError extends Error {}

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

const accountSchema = z.object({
  formatVersion: z.number().int(),
  accountId: z.string().regex(/^\d{12}$/),
  createdAt: z.string(),
  adminUserName: z.string().min(1),
  services: z.record(z.string(), z.unknown()),
});

export class DataDir {
  readonly dir: string;
  private lockFd: number | undefined;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  get accountPath(): string {
    return join(this.dir, ACCOUNT_FILE);
  }

  get lockPath(): string {
    return join(this.dir, LOCK_FILE);
  }

  /**
   * Takes the writer's lock, or throws DataDirLockedError naming the holder. A lock left by a
   * process that no longer runs on this host is stale and taken over.
   */
  lock(command: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const info: LockInfo = {
      pid: process.pid,
      host: hostname(),
      command,
      startedAt: new Date().toISOString(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(this.lockPath, "wx", 0o600);
        writeSync(fd, JSON.stringify(info));
        fsyncSync(fd);
        this.lockFd = fd;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const holder = this.readLock();
      if (holder && (holder.host !== info.host || isAlive(holder.pid)))
        throw new DataDirLockedError(this.dir, holder);
      rmSync(this.lockPath, { force: true }); // stale: its process is gone
    }
    throw new DataDirLockedError(this.dir, this.readLock() ?? { ...info, pid: -1, command: "unknown" });
  }

  /** Adds what other processes may want to know about the holder (its endpoint) to our lock. */
  annotateLock(extra: Pick<LockInfo, "endpoint">): void {
    const current = this.readLock();
    if (this.lockFd === undefined || !current || current.pid !== process.pid) return;
    writeAtomic(this.lockPath, JSON.stringify({ ...current, ...extra }));
  }

  /** The live process holding this directory, if any (a lock left by a dead process is not one). */
  holder(): LockInfo | undefined {
    const lock = this.readLock();
    if (!lock) return undefined;
    return lock.host !== hostname() || isAlive(lock.pid) ? lock : undefined;
  }

  unlock(): void {
    if (this.lockFd === undefined) return;
    closeSync(this.lockFd);
    this.lockFd = undefined;
    rmSync(this.lockPath, { force: true });
  }

  readLock(): LockInfo | undefined {
    try {
      return lockSchema.parse(JSON.parse(readFileSync(this.lockPath, "utf8")));
    } catch {
      return undefined;
    }
  }

  /** The saved account, undefined when there is none yet; throws DataDirInvalidError when unreadable. */
  load(): AccountState | undefined {
    let text: string;
    try {
      text = readFileSync(this.accountPath, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new DataDirInvalidError(`${this.accountPath} is not valid JSON; it was left as it is.`);
    }
    const version = (data as { formatVersion?: unknown })?.formatVersion;
    if (typeof version === "number" && version > DATA_FORMAT_VERSION)
      throw new DataDirInvalidError(
        `${this.accountPath} has format version ${version}, written by a newer kmslab; this one reads version ${DATA_FORMAT_VERSION}.`,
      );
    const parsed = accountSchema.safeParse(data);
    if (!parsed.success || parsed.data.formatVersion !== DATA_FORMAT_VERSION)
      throw new DataDirInvalidError(
        `${this.accountPath} is not a kmslab simulator account (${parsed.success ? `format version ${String(version)}` : parsed.error.issues[0]?.message}); it was left as it is.`,
      );
    return parsed.data as AccountState;
  }

  /** Atomic replace: a crash leaves either the old or the new file, never a torn one. */
  save(state: AccountState): void {
    writeAtomic(this.accountPath, JSON.stringify(state));
  }
}

export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dirFd = openSync(resolve(path, ".."), "r");
    fsyncSync(dirFd);
    closeSync(dirFd);
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
