import { describeHolder, type LockInfo } from "../lib/lock.js";
import type { Target } from "./schema.js";

/**
 * The state module's errors. Each is its own class so that the CLI can map it to an exit code and a
 * message without parsing text (state locked: 3; bad input: 2); the message itself is written for
 * the learner and says what to do. All extend StateError, so the CLI can also catch the family.
 */
export class StateError extends Error {
  override readonly name: string = "StateError";
}

/** Another process holds the state file's lock: it is named so the learner can find it. */
export class StateLockedError extends StateError {
  override readonly name = "StateLockedError";
  constructor(
    readonly path: string,
    readonly holder: LockInfo,
  ) {
    const { holder: who, advice } = describeHolder(holder, `kmslab unlock <id> --state ${path}`);
    super(`the state file ${path} is in use by ${who}. ${advice}`);
  }
}

/**
 * The state file, or its directory, cannot be read or written for a reason of the file system
 * (permissions, a read-only mount, a directory in its place): nothing was changed.
 */
export class StateAccessError extends StateError {
  override readonly name = "StateAccessError";
  constructor(
    readonly path: string,
    readonly code: string,
    detail: string,
    readonly action: "read" | "lock" = "read",
  ) {
    const what = action === "read" ? `read the state file ${path}` : `lock the state file (create ${path})`;
    super(
      code === "EACCES" || code === "EPERM"
        ? `cannot ${what}: permission denied. Nothing was changed. The state file and its directory ` +
            `should be yours (chmod 700 on the directory, 600 on the file), or give another state ` +
            `file with --state PATH.`
        : `cannot ${what} (${detail}). Nothing was changed.`,
    );
  }
}

/**
 * The state file cannot be read as a kmslab state: not JSON, truncated, or a field fails the schema.
 * Nothing was changed; the backup, when there is one, holds the version before the last write.
 */
export class StateCorruptError extends StateError {
  override readonly name = "StateCorruptError";
  constructor(
    readonly path: string,
    /** What is wrong, e.g. "it is truncated (the JSON ends early)". */
    readonly reason: string,
    /** The offending field as a path, e.g. `$.stages["create-key"].attempts`, when one is known. */
    readonly field: string | undefined,
    /** `<path>.backup` when it exists. */
    readonly backupPath: string | undefined,
  ) {
    super(
      `the state file ${path} is not a valid kmslab state: ${field ? `${field}: ` : ""}${reason}. ` +
        `It was left as it is. ` +
        (backupPath
          ? `${backupPath} holds the previous version: inspect it, and copy it over ${path} to go back to it.`
          : `There is no backup of an earlier version.`),
    );
  }
}

/** The file's format version is one this kmslab does not read: newer, or one that never existed. */
export class StateVersionError extends StateError {
  override readonly name = "StateVersionError";
  constructor(
    readonly path: string,
    readonly version: unknown,
    /** The kmslab version recorded as the file's writer, when the file says. */
    readonly writtenBy: string | undefined,
    readonly supported: number,
    readonly toolVersion: string,
  ) {
    const by = writtenBy ? `kmslab ${writtenBy}` : "an unknown tool";
    const newer = typeof version === "number" && Number.isInteger(version) && version > supported;
    super(
      newer
        ? `the state file ${path} has format version ${version}, written by ${by}; this kmslab ` +
            `(${toolVersion}) reads format version ${supported}. Upgrade kmslab to continue this lab. ` +
            `The file was left as it is.`
        : `the state file ${path} has format version ${JSON.stringify(version)}, written by ${by}, ` +
            `which no kmslab writes; this kmslab (${toolVersion}) reads format version ${supported}. ` +
            `The file was left as it is.`,
    );
  }
}

/** The credentials reach another account or region than the one the lab's state records. */
export class StateTargetMismatchError extends StateError {
  override readonly name = "StateTargetMismatchError";
  constructor(
    readonly recorded: Pick<Target, "accountId" | "region">,
    readonly actual: Pick<Target, "accountId" | "region">,
    readonly path?: string,
  ) {
    super(
      `the state file${path ? ` ${path}` : ""} belongs to account ${recorded.accountId} in ` +
        `${recorded.region}, but the credentials and region given are for account ${actual.accountId} ` +
        `in ${actual.region}. kmslab only continues a lab where it started: switch the credentials or ` +
        `region back, or start a separate lab with --state PATH.`,
    );
  }
}

/**
 * A write based on an outdated read: another writer changed the state since (stale serial), or the
 * state given belongs to another lab (other lineage). Nothing was written.
 */
export class StateConflictError extends StateError {
  override readonly name = "StateConflictError";
  constructor(
    readonly path: string,
    readonly kind: "lineage" | "serial",
    readonly stored: string | number,
    readonly given: string | number,
  ) {
    super(
      kind === "lineage"
        ? `refusing to write ${path}: it holds lineage ${stored}, a different lab from the state given ` +
            `(lineage ${given}).`
        : `refusing to write ${path}: the state given is based on serial ${given}, but the file is at ` +
            `serial ${stored} (it changed since it was read). Read it again and reapply the change.`,
    );
  }
}

/** The state given to write() fails the schema: a bug in the caller, never written to disk. */
export class StateInvalidError extends StateError {
  override readonly name = "StateInvalidError";
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`refusing to write an invalid state: ${field}: ${reason}.`);
  }
}

/** A secret (a credential, a plaintext data key) was about to be written; the paths say where. */
export class StateSecretError extends StateError {
  override readonly name = "StateSecretError";
  constructor(readonly paths: string[]) {
    super(
      `the state file was not written: it would have held a secret (an AWS credential or a plaintext ` +
        `data key) at ${paths.slice(0, 5).join(", ")}${paths.length > 5 ? ` and ${paths.length - 5} more` : ""}. ` +
        `kmslab keeps credentials in memory and never writes them to disk. If you gave a credential as a ` +
        `lab parameter (a flag or the --config file), choose another value.`,
    );
  }
}
