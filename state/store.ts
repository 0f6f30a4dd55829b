import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, resolve } from "node:path";
import type { z } from "zod";
import {
  assertPrivateDir,
  backupPathFor,
  followLinks,
  removeStaleTempFiles,
  writeAtomic,
} from "../lib/files.js";
import { LockFile, type LockInfo } from "../lib/lock.js";
import {
  StateAccessError,
  StateConflictError,
  StateCorruptError,
  StateInvalidError,
  StateLockedError,
  StateTargetMismatchError,
  StateVersionError,
} from "./errors.js";
import {
  STATE_FORMAT_VERSION,
  type StateFile,
  stateFileSchema,
  type Target,
  TOOL_VERSION,
} from "./schema.js";
import { assertNoSecrets, formatPath } from "./secrets.js";

/** Where `kmslab run` keeps its state unless `--state PATH` says otherwise (relative to the cwd). */
export const DEFAULT_STATE_PATH = ".kmslab/state.json";

/**
 * The lab engine's checkpoint store (Terraform's statemgr, reduced to what kmslab needs). read()
 * returns the last state written, validated, or undefined when there is none. write() takes a state
 * based on the last one read or written (same lineage, same serial), stores it with the serial
 * incremented and updatedAt set, and returns what it stored: the base for the next write. A write
 * that changes nothing stores nothing and returns the current state. lock() makes this process the
 * only writer until unlock(); take it before the first read of a run. Implementations: the file store
 * and the memory store, held to the same contract suite (test/state.contract.test.ts).
 */
export interface StateStore {
  read(): Promise<StateFile | undefined>;
  write(next: StateFile): Promise<StateFile>;
  lock(command: string): Promise<void>;
  unlock(): Promise<void>;
}

/**
 * Refuses to act on another account or region than the one the state records (StateTargetMismatch).
 * The engine calls it after resolving the caller's identity, before anything touches the account.
 */
export function assertTarget(
  state: StateFile,
  target: Pick<Target, "accountId" | "region">,
  path?: string,
): void {
  const recorded = state.target;
  if (recorded.accountId !== target.accountId || recorded.region !== target.region)
    throw new StateTargetMismatchError(
      { accountId: recorded.accountId, region: recorded.region },
      { accountId: target.accountId, region: target.region },
      path,
    );
}

/**
 * Reads a state file's text: JSON first, then the format version (so a newer file is reported as
 * newer, not as a schema failure), then the schema. `source` names the file in messages; `backupPath`
 * is mentioned as the way back when the text is unusable. Never touches any file.
 */
export function parseState(text: string, source: string, backupPath?: string): StateFile {
  const corrupt = (reason: string, field?: string) =>
    new StateCorruptError(source, reason, field, backupPath);
  if (text.trim() === "") throw corrupt("it is empty");
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw corrupt(
      /end of JSON input|Unterminated/i.test(detail)
        ? `it is truncated (the JSON ends early: ${detail})`
        : `it is not JSON (${detail})`,
    );
  }
  if (data === null || typeof data !== "object" || Array.isArray(data))
    throw corrupt("the top level is not a JSON object");
  const raw = data as Record<string, unknown>;
  if (!("formatVersion" in raw)) throw corrupt("missing", "$.formatVersion");
  if (raw.formatVersion !== STATE_FORMAT_VERSION) {
    const tool = raw.tool as { version?: unknown } | undefined;
    const writtenBy = typeof tool?.version === "string" ? tool.version : undefined;
    throw new StateVersionError(source, raw.formatVersion, writtenBy, STATE_FORMAT_VERSION, TOOL_VERSION);
  }
  const parsed = stateFileSchema.safeParse(data);
  if (!parsed.success) {
    const { field, reason } = describeIssue(parsed.error);
    throw corrupt(reason, field);
  }
  return parsed.data;
}

function describeIssue(error: z.ZodError): { field: string; reason: string } {
  const issue = error.issues[0];
  if (!issue) return { field: "$", reason: "fails the schema" };
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problems)` : "";
  return { field: formatPath(issue.path), reason: `${issue.message}${more}` };
}

/**
 * What a store keeps of the state it last read or wrote: the base that the next write must match.
 * Only scalars and the text, never the object handed out, so a caller's mutations cannot reach it.
 */
interface Current {
  lineage: string;
  serial: number;
  updatedAt: string;
  /** changeKey(state): compared to tell a real change from a repeated checkpoint. */
  key: string;
}

/** The state as JSON without what every write changes (serial, updatedAt): equal keys, no change. */
function changeKey(state: StateFile): string {
  return JSON.stringify({ ...state, serial: 0, updatedAt: "" });
}

function currentOf(state: StateFile, key = changeKey(state)): Current {
  return { lineage: state.lineage, serial: state.serial, updatedAt: state.updatedAt, key };
}

type Prepared =
  | { changed: false; state: StateFile }
  | { changed: true; state: StateFile; text: string; key: string };

/**
 * The write rules shared by both stores: no secrets, a valid state, same lineage, same serial; then
 * serial + 1 and updatedAt now, unless nothing but updatedAt differs from what is stored. The state
 * returned may share nested values with `next` (they are the caller's own).
 */
function prepareWrite(next: StateFile, current: Current | undefined, source: string): Prepared {
  assertNoSecrets(next);
  const parsed = stateFileSchema.safeParse(next);
  if (!parsed.success) {
    const { field, reason } = describeIssue(parsed.error);
    throw new StateInvalidError(field, reason);
  }
  const valid = parsed.data;
  if (current) {
    if (valid.lineage !== current.lineage)
      throw new StateConflictError(source, "lineage", current.lineage, valid.lineage);
    if (valid.serial !== current.serial)
      throw new StateConflictError(source, "serial", current.serial, valid.serial);
  }
  const key = changeKey(valid);
  if (current && key === current.key)
    return { changed: false, state: { ...valid, updatedAt: current.updatedAt } };
  const state: StateFile = {
    ...valid,
    serial: (current?.serial ?? valid.serial) + 1,
    updatedAt: new Date().toISOString(),
  };
  // Indented like Terraform's state: learners and instructors read it.
  return { changed: true, state, text: JSON.stringify(state, null, 2), key };
}

/** File identity and size: a change tells the store that someone else wrote the file since. */
interface Stamp {
  ino: number;
  size: number;
  mtimeMs: number;
}

function stampOf(path: string): Stamp | undefined {
  try {
    const s = statSync(path);
    return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
  } catch {
    return undefined;
  }
}

function sameStamp(a: Stamp | undefined, b: Stamp | undefined): boolean {
  return (
    a !== undefined && b !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs
  );
}

/**
 * The state as a file (default `.kmslab/state.json`): written atomically (temp file, fsync, rename,
 * fsync of the directory) with the previous version kept as `<path>.backup`, mode 0600 in a
 * directory created 0700; locked by the sidecar `<path>.lock` that names its holder. Reading never
 * changes any file, whatever the file holds. Stray temp files of crashed writers are ignored by
 * read() and removed by lock(). A state path that is a symbolic link stands for its target: the
 * target is the file written (atomically, beside it), and its backup and lock sit beside it too, so
 * two links to one file share one lock. lock() refuses a directory any user may write in.
 */
export class FileStateStore implements StateStore {
  readonly path: string;
  readonly lockPath: string;
  readonly backupPath: string;
  private readonly lockFile: LockFile;
  private current: (Current & { stamp: Stamp | undefined }) | undefined;

  constructor(path: string = DEFAULT_STATE_PATH) {
    this.path = followLinks(resolve(path));
    this.lockPath = `${this.path}.lock`;
    this.backupPath = backupPathFor(this.path);
    this.lockFile = new LockFile(this.lockPath);
  }

  async read(): Promise<StateFile | undefined> {
    return this.load();
  }

  async write(next: StateFile): Promise<StateFile> {
    // All synchronous from here: two write() calls of this process cannot interleave.
    const stamp = stampOf(this.path);
    if (!this.current || !sameStamp(this.current.stamp, stamp)) this.load();
    const prepared = prepareWrite(next, this.current, this.path);
    if (!prepared.changed) return prepared.state;
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeAtomic(this.path, prepared.text, { backup: true, mode: 0o600 });
    this.current = { ...currentOf(prepared.state, prepared.key), stamp: stampOf(this.path) };
    return prepared.state;
  }

  async lock(command: string): Promise<void> {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    assertPrivateDir(dir);
    let holder: LockInfo | undefined;
    try {
      holder = this.lockFile.tryAcquire(command);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EACCES" || code === "EPERM" || code === "EROFS")
        throw new StateAccessError(this.lockPath, code, (err as Error).message, "lock");
      throw err;
    }
    if (holder) throw new StateLockedError(this.path, holder);
    removeStaleTempFiles(dir, [basename(this.path)]);
  }

  /** Removes the lock with this id, whoever holds it (`kmslab unlock`); false when it is not that one. */
  forceUnlock(id: string): boolean {
    return this.lockFile.forceRelease(id);
  }

  /** What the lock file says, whether or not its holder still runs. */
  readLock(): LockInfo | undefined {
    return this.lockFile.read();
  }

  async unlock(): Promise<void> {
    this.lockFile.release();
  }

  /** The live process holding the lock, if any: for `kmslab status` to say a run is in progress. */
  holder(): LockInfo | undefined {
    return this.lockFile.holder();
  }

  /** Reads and validates the file, remembering it as the base for the next write. */
  private load(): StateFile | undefined {
    const stamp = stampOf(this.path);
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") throw new StateAccessError(this.path, code ?? "", (err as Error).message);
      this.current = undefined;
      return undefined;
    }
    const backup = existsSync(this.backupPath) ? this.backupPath : undefined;
    const state = parseState(text, this.path, backup);
    this.current = { ...currentOf(state), stamp };
    return state;
  }
}

/**
 * The state in memory, as the file store would hold it (stored as JSON text, so a caller's later
 * mutations never reach it): for tests and for runs that must leave nothing on disk. Its lock
 * refuses a second lock() until unlock(), like the file's.
 */
export class MemoryStateStore implements StateStore {
  private text: string | undefined;
  private current: Current | undefined;
  private holder: LockInfo | undefined;

  /** `text`: a state file's content to start from (parsed at the first read, like a file). */
  constructor(text?: string) {
    this.text = text;
  }

  async read(): Promise<StateFile | undefined> {
    return this.load();
  }

  async write(next: StateFile): Promise<StateFile> {
    if (!this.current) this.load();
    const prepared = prepareWrite(next, this.current, "memory");
    if (!prepared.changed) return prepared.state;
    this.text = prepared.text;
    this.current = currentOf(prepared.state, prepared.key);
    return prepared.state;
  }

  async lock(command: string): Promise<void> {
    if (this.holder) throw new StateLockedError("memory", this.holder);
    this.holder = { pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() };
  }

  async unlock(): Promise<void> {
    this.holder = undefined;
  }

  /** The stored text, exactly as the file store would have written it. */
  get snapshotText(): string | undefined {
    return this.text;
  }

  private load(): StateFile | undefined {
    if (this.text === undefined) {
      this.current = undefined;
      return undefined;
    }
    const state = parseState(this.text, "memory");
    this.current = currentOf(state);
    return state;
  }
}
