import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { assertPrivateDir, removeStaleTempFiles, writeAtomic } from "../lib/files.js";
import { describeHolder, LockFile, type LockInfo } from "../lib/lock.js";
import type { AccountState } from "./account.js";

/**
 * The simulator's data directory: `account.json` holds the whole account, written atomically
 * (temp file, fsync, rename, fsync of the directory) after every change; `lock` names the one
 * process allowed to write it (the state file's lock mechanism, lib/lock.ts). Readers
 * (`kmslab sim credentials`) need no lock. Temp files a dead writer left (they hold what
 * account.json and s3/master.key hold: secrets) are removed by the next process to open it.
 */
export const ACCOUNT_FILE = "account.json";
export const LOCK_FILE = "lock";
export const DATA_FORMAT_VERSION = 1;

export class DataDirLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockInfo,
  ) {
    const { holder: who, advice } = describeHolder(holder, `kmslab unlock <id> --sim-data ${dir}`);
    super(
      `the simulator data directory ${dir} is in use by ${who}. ${advice} ` +
        `Or give this command another directory with --sim-data DIR.`,
    );
  }
}

export class DataDirInvalidError extends Error {}

// Re-exported: the CLI and sim's users name the holder through this type.
export type { LockInfo } from "../lib/lock.js";

const accountSchema = z.object({
  formatVersion: z.number().int(),
  accountId: z.string().regex(/^\d{12}$/),
  createdAt: z.string(),
  adminUserName: z.string().min(1),
  services: z.record(z.string(), z.unknown()),
});

export class DataDir {
  readonly dir: string;
  private readonly lockFile: LockFile;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.lockFile = new LockFile(join(this.dir, LOCK_FILE));
  }

  get accountPath(): string {
    return join(this.dir, ACCOUNT_FILE);
  }

  get lockPath(): string {
    return this.lockFile.path;
  }

  /**
   * Takes the writer's lock, or throws DataDirLockedError naming the holder. A lock left by a
   * process that no longer runs on this host is stale and taken over.
   */
  lock(command: string): void {
    let holder: LockInfo | undefined;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      assertPrivateDir(this.dir);
      holder = this.lockFile.tryAcquire(command);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EACCES" || code === "EPERM" || code === "EROFS")
        throw new DataDirInvalidError(
          `cannot use the simulator data directory ${this.dir}: ${code === "EROFS" ? "it is on a read-only file system" : "permission denied"} (${(err as Error).message}). ` +
            `It should be yours (chmod 700), or give another one with --sim-data DIR.`,
        );
      throw err;
    }
    if (holder) throw new DataDirLockedError(this.dir, holder);
    this.removeStaleTempFiles();
  }

  /** Removes the temp files writers that have ended left here (account.json's, the lock's, the S3 master key's). */
  removeStaleTempFiles(): string[] {
    return [
      ...removeStaleTempFiles(this.dir, [ACCOUNT_FILE, LOCK_FILE]),
      ...removeStaleTempFiles(join(this.dir, "s3"), ["master.key"]),
    ];
  }

  /** Removes the lock with this id, whoever holds it (`kmslab unlock`); false when it is not that one. */
  forceUnlock(id: string): boolean {
    return this.lockFile.forceRelease(id);
  }

  /** Adds what other processes may want to know about the holder (its endpoint) to our lock. */
  annotateLock(extra: Pick<LockInfo, "endpoint">): void {
    this.lockFile.annotate(extra);
  }

  /** The live process holding this directory, if any (a lock left by a dead process is not one). */
  holder(): LockInfo | undefined {
    return this.lockFile.holder();
  }

  unlock(): void {
    this.lockFile.release();
  }

  readLock(): LockInfo | undefined {
    return this.lockFile.read();
  }

  /** The saved account, undefined when there is none yet; throws DataDirInvalidError when unreadable. */
  load(): AccountState | undefined {
    let text: string;
    try {
      text = readFileSync(this.accountPath, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new DataDirInvalidError(
        `cannot read ${this.accountPath} (${(err as Error).message}); it was left as it is.`,
      );
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

  /**
   * Atomic replace: a crash leaves either the old or the new file, never a torn one, and a write
   * that cannot complete (DiskFullError) leaves the old one: the caller goes back to it (rollback).
   */
  save(state: AccountState): void {
    writeAtomic(this.accountPath, JSON.stringify(state));
  }
}
