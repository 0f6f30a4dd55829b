import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeAtomic } from "../lib/files.js";
import type { GradeResult } from "./grade.js";

/**
 * Grading results on disk: each grading is its own JSON file named by when it ended
 * (`grade-2026-11-29T04-50-00.123Z.json`), beside the state file unless told where, so that a
 * report can be rendered later and progress compared over time. Files are written whole (temp
 * file, fsync, rename) and never overwritten.
 */
export class GradeFileError extends Error {}

const NAME = /^grade-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z)\.json$/;

/** The file name a grading is saved under. */
export function gradeFileName(result: Pick<GradeResult, "endedAt">): string {
  return `grade-${result.endedAt.replace(/:/g, "-")}.json`;
}

/** The directory gradings of the lab recorded by `statePath` are kept in: the state file's own. */
export function gradeDirFor(statePath: string): string {
  return dirname(statePath);
}

/** Writes `text` to `path` atomically (lib/files.ts); refuses to replace an existing file unless `replace`. */
export function writeFileAtomic(path: string, text: string, replace = true): void {
  if (!replace && existsSync(path)) throw new GradeFileError(`${path} already exists`);
  writeAtomic(path, text);
}

/** Saves a grading under its timestamped name in `dir`; returns the path. */
export function saveGrade(dir: string, result: GradeResult): string {
  const path = join(dir, gradeFileName(result));
  writeFileAtomic(path, `${JSON.stringify(result, null, 2)}\n`, false);
  return path;
}

/** Reads a saved grading, with a clear error for a file that is not one. */
export function loadGrade(path: string): GradeResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new GradeFileError(`cannot read the grading ${path}: ${(err as Error).message}`);
  }
  let value: Partial<GradeResult>;
  try {
    value = JSON.parse(text) as Partial<GradeResult>;
  } catch (err) {
    throw new GradeFileError(`${path} is not JSON: ${(err as Error).message}`);
  }
  if (
    value === null ||
    typeof value !== "object" ||
    value.schemaVersion !== 1 ||
    !Array.isArray(value.stages) ||
    typeof value.score !== "number"
  )
    throw new GradeFileError(
      `${path} is not a kmslab grading of a version this kmslab reads (schemaVersion ${JSON.stringify((value as { schemaVersion?: unknown })?.schemaVersion)})`,
    );
  return value as GradeResult;
}

/** The gradings saved in `dir`, oldest first. */
export function listGrades(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => NAME.test(n))
    .sort()
    .map((n) => join(dir, n));
}
