/**
 * Exit codes, one per kind of outcome, so scripts can tell them apart.
 * 0 success · 1 the lab (or a command's work) failed · 2 bad usage or bad input (flags, config) ·
 * 3 a lock is held by another process · 4 a state or data file is unreadable or from a newer kmslab ·
 * 130 interrupted (Ctrl-C).
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  locked: 3,
  invalidData: 4,
  interrupted: 130,
} as const;

/** An error the CLI reports as one clear line and a given exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
  }
}
