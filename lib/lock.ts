import { createHash, randomUUID } from "node:crypto";
import { linkSync, readFileSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { z } from "zod";
import { DiskFullError, tempPathFor, writeAtomic, writeNewFile } from "./files.js";
import { type Identity, ownIdentity, processStatus } from "./process.js";

/** Who holds a lock: written into the lock file so that a refused process can name the holder. */
export interface LockInfo extends Identity {
  /** Names this lock for `kmslab unlock <id>`; missing in locks written by an older kmslab. */
  id?: string;
  pid: number;
  host: string;
  command: string;
  startedAt: string;
  /** Where `kmslab sim serve` answers, while it holds the directory. */
  endpoint?: string;
}

const lockSchema = z.object({
  id: z.string().optional(),
  pid: z.number().int(),
  host: z.string(),
  command: z.string(),
  startedAt: z.string(),
  endpoint: z.string().optional(),
  machineId: z.string().optional(),
  bootId: z.string().optional(),
  pidNamespace: z.string().optional(),
  processStart: z.number().int().optional(),
});

/** The id `kmslab unlock` takes for this lock (one derived from the holder for an older lock file). */
export function lockIdOf(lock: LockInfo): string {
  if (lock.id) return lock.id;
  const digest = createHash("sha256").update(`${lock.pid}\n${lock.host}\n${lock.startedAt}`).digest("hex");
  return `legacy-${digest.slice(0, 12)}`;
}

/**
 * Whether a lock's holder still runs: "dead" only when that is certain (lib/process.ts), "unknown"
 * when it cannot be checked from here (another machine, another container of this one).
 */
export function holderStatus(lock: LockInfo): "alive" | "dead" | "unknown" {
  return processStatus(lock.pid, lock, { recorded: lock.host, ours: hostname() });
}

/**
 * The holder in one phrase and what to do about it, for the errors of a refused lock: wait or stop
 * a live holder; take over one that cannot be checked from here (`unlockCommand`) once sure it ended.
 */
export function describeHolder(lock: LockInfo, unlockCommand: string): { holder: string; advice: string } {
  const holder = `process ${lock.pid} on ${lock.host} (${lock.command}, since ${lock.startedAt})`;
  if (holderStatus(lock) === "alive")
    return {
      holder,
      advice: `Wait for it to finish or stop it; a lock left by a process that has ended is taken over automatically.`,
    };
  return {
    holder,
    advice:
      `That process cannot be checked from here (it ran on another machine, or in another container ` +
      `of this one). If you are sure it is no longer running, take the lock over with: ` +
      `${unlockCommand.replace("<id>", lockIdOf(lock))}`,
  };
}

/**
 * A sidecar lock file created exclusively: whoever creates it holds the lock, and its content names
 * the holder (lock id, pid, host, command, since when, and the machine, boot, pid namespace and
 * start time of its process). The content is written to a temp file first and then hard-linked
 * into place, so another process never sees an empty lock file. A lock whose holder is certainly
 * gone (lib/process.ts: another boot, or a pid that no longer runs or runs another process) is
 * stale and taken over; any other is respected, and can be removed by its id (`forceRelease`).
 * Callers turn a refusal into their own error.
 */
export class LockFile {
  private held = false;

  constructor(readonly path: string) {}

  get isHeld(): boolean {
    return this.held;
  }

  /** Takes the lock and returns undefined, or returns the holder that keeps us from taking it. */
  tryAcquire(command: string): LockInfo | undefined {
    const info: LockInfo = {
      id: randomUUID(),
      pid: process.pid,
      host: hostname(),
      command,
      startedAt: new Date().toISOString(),
      ...ownIdentity(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.createExclusive(JSON.stringify(info))) {
        this.held = true;
        return undefined;
      }
      const text = this.readText();
      const holder = parseLock(text);
      if (holder && holderStatus(holder) !== "dead") return holder;
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

  /**
   * Removes the lock if it is still the one with `id` (`kmslab unlock`): for a holder that cannot
   * be checked from here and that the user knows has ended. Returns whether it removed it.
   */
  forceRelease(id: string): boolean {
    const text = this.readText();
    const lock = parseLock(text);
    if (!lock || lockIdOf(lock) !== id) return false;
    if (this.readText() !== text) return false;
    rmSync(this.path, { force: true });
    return true;
  }

  /** What the lock file says, whether or not its process still runs; undefined when there is none. */
  read(): LockInfo | undefined {
    return parseLock(this.readText());
  }

  /** The process holding the lock, if any: a lock whose holder is certainly gone is not one. */
  holder(): LockInfo | undefined {
    const lock = this.read();
    if (!lock) return undefined;
    return holderStatus(lock) === "dead" ? undefined : lock;
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
    const tmp = tempPathFor(this.path);
    rmSync(tmp, { force: true });
    try {
      writeNewFile(tmp, Buffer.from(text, "utf8"));
      linkSync(tmp, this.path);
      return true;
    } catch (err) {
      // The lock is what could not be written, not its temp file.
      if (err instanceof DiskFullError) throw new DiskFullError(this.path, err.code);
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
    try {
      // A write that fails removes the file: no lock is left half-made.
      writeNewFile(this.path, Buffer.from(text, "utf8"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    }
    return true;
  }
}

function parseLock(text: string | undefined): LockInfo | undefined {
  if (text === undefined) return undefined;
  try {
    return lockSchema.parse(JSON.parse(text)) as LockInfo;
  } catch {
    return undefined;
  }
}
