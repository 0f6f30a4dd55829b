/**
 * Exit codes, one per kind of outcome, so scripts can tell them apart.
 * 0 success (the lab complete) · 1 a stage failed or is blocked (or a command's work failed) ·
 * 2 bad usage or bad input (flags, parameters, config) · 3 a lock is held by another process ·
 * 4 credentials or authentication problem · 5 a state or data file cannot be used (unreadable,
 * another format version, another account or region, another run's parameters) · 6 a file could
 * not be written (a full disk or quota; nothing was replaced) · 130 interrupted.
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  locked: 3,
  credentials: 4,
  invalidData: 5,
  diskFull: 6,
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
