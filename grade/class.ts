import type { GradeResult } from "./grade.js";

/**
 * A class roster: `learners.csv` with a header row and one learner a row — `name`, and what tells
 * their lab apart: a `suffix` (learners sharing one account), a `profile` (an AWS CLI profile per
 * learner account) or an `endpoint` (an AWS-compatible endpoint per learner). A `region` column
 * may set the learner's Region. The whole file is checked before anything is graded.
 */
export interface Learner {
  name: string;
  suffix?: string;
  profile?: string;
  endpoint?: string;
  region?: string;
  /** The roster's line, for messages. */
  line: number;
}

export class RosterError extends Error {}

const COLUMNS = ["name", "suffix", "profile", "endpoint", "region"] as const;

/** RFC 4180 fields: commas, double quotes ("" inside quotes), CRLF or LF. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  let i = 0;
  const t = text.replace(/^\uFEFF/, "");
  while (i < t.length) {
    const c = t[i]!;
    if (quoted) {
      if (c === '"' && t[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === "") quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && t[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
    i++;
  }
  if (quoted) throw new RosterError("a quoted field is not closed");
  if (field !== "" || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export function parseRoster(text: string, source = "learners.csv"): Learner[] {
  let rows: string[][];
  try {
    rows = parseCsv(text);
  } catch (err) {
    throw new RosterError(`${source}: ${(err as Error).message}`);
  }
  const header = (rows.shift() ?? []).map((h) => h.trim().toLowerCase());
  if (!header.includes("name"))
    throw new RosterError(
      `${source}: the first row must name the columns, with at least "name" (and suffix, profile or endpoint)`,
    );
  const unknown = header.filter((h) => !(COLUMNS as readonly string[]).includes(h));
  if (unknown.length > 0)
    throw new RosterError(
      `${source}: unknown column${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (known: ${COLUMNS.join(", ")})`,
    );
  const learners: Learner[] = [];
  const names = new Set<string>();
  rows.forEach((cells, i) => {
    const line = i + 2;
    if (cells.every((c) => c.trim() === "")) return;
    if (cells.length > header.length)
      throw new RosterError(
        `${source} line ${line}: ${cells.length} fields, the header names ${header.length}`,
      );
    const get = (col: string) => {
      const v = cells[header.indexOf(col)]?.trim();
      return v ? v : undefined;
    };
    const name = get("name");
    if (!name) throw new RosterError(`${source} line ${line}: the name is empty`);
    if (names.has(name)) throw new RosterError(`${source} line ${line}: ${name} is listed twice`);
    names.add(name);
    const learner: Learner = { name, line };
    for (const col of ["suffix", "profile", "endpoint", "region"] as const) {
      const v = get(col);
      if (v !== undefined) learner[col] = v;
    }
    if (learner.profile && learner.endpoint)
      throw new RosterError(`${source} line ${line}: give ${name} a profile or an endpoint, not both`);
    if (learner.endpoint && !/^https?:\/\/[^\s/]+/.test(learner.endpoint))
      throw new RosterError(
        `${source} line ${line}: the endpoint "${learner.endpoint}" is not an http(s) URL`,
      );
    learners.push(learner);
  });
  if (learners.length === 0) throw new RosterError(`${source}: no learner is listed`);
  return learners;
}

/** A file-name-safe form of a learner's name (unique within a roster). */
export function slug(name: string, taken: Set<string>): string {
  const base =
    name
      .normalize("NFKD")
      .replace(/[^\w.-]+/g, "-")
      .replace(/^[-.]+|[-.]+$/g, "")
      .slice(0, 60) || "learner";
  let s = base;
  for (let n = 2; taken.has(s.toLowerCase()); n++) s = `${base}-${n}`;
  taken.add(s.toLowerCase());
  return s;
}

/** A learner's grading, or why there is none (no credentials for their profile...). */
export interface RosterGrade {
  learner: Learner;
  result?: GradeResult;
  error?: string;
}

/**
 * Grades every learner of a roster, `concurrency` at a time (enough to overlap network waits, few
 * enough for CloudTrail's lookup rate), in the roster's order. A learner that cannot be graded is
 * reported, not fatal.
 */
export async function gradeRoster(
  roster: readonly Learner[],
  grade: (learner: Learner) => Promise<GradeResult>,
  concurrency = 8,
): Promise<RosterGrade[]> {
  const out: RosterGrade[] = roster.map((learner) => ({ learner }));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < roster.length; i = next++) {
      try {
        out[i]!.result = await grade(roster[i]!);
      } catch (err) {
        out[i]!.error = (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, roster.length) }, worker));
  return out;
}
