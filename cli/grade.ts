import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { Command } from "commander";
import { gradeRoster, type Learner, parseRoster, RosterError } from "../grade/class.js";
import { DEFAULT_THRESHOLD, type GradeResult, gradeLab } from "../grade/grade.js";
import {
  GradeFileError,
  gradeDirFor,
  listGrades,
  loadGrade,
  saveGrade,
  writeFileAtomic,
} from "../grade/store.js";
import { DiskFullError } from "../lib/files.js";
import { Clients } from "../machines/aws.js";
import { type ClassEntry, classMarkdown, writeClassReports } from "../report/class.js";
import { FORMATS, type ReportFormat, render } from "../report/render.js";
import { DEFAULT_STATE_PATH, FileStateStore, type StateFile } from "../state/index.js";
import { type LabParamsInput, parseParams, type ResolvedParams, resolveParams } from "../steps/params.js";
import { CliError, EXIT } from "./exit-codes.js";
import { type GlobalOptions, PARAM_FLAGS, paramsFrom } from "./run.js";
import { callerAccount, knownSim, openTarget, type Target, type TargetOptions } from "./target.js";

/**
 * `kmslab grade`: grades the lab as the account stands — read-only, with or without the state file
 * of a kmslab run — saves the result beside the state file (timestamped) or at `--out`, and prints
 * the report. `--class learners.csv` grades a roster. `kmslab report` renders a saved grading.
 */

/** The name parameters: what identifies a learner's resources (the waits do not matter to grading). */
const NAME_KEYS = [
  "keyAlias",
  "keyUserRole",
  "trailName",
  "logBucket",
  "dataBucket",
  "objectKey",
  "suffix",
] as const;

export function registerGrade(program: Command, globals: () => GlobalOptions): void {
  const grade = program
    .command("grade")
    .description("grade the lab as the account stands now (read-only), save the result and print the report")
    .option("--config <file>", "a JSON file of lab parameters (flags win over it)")
    .option("--class <csv>", "grade every learner of a roster (name, and suffix, profile or endpoint)")
    .option("--learner <name>", "the learner's name, for the report")
    .option("--threshold <percent>", `the pass mark in percent (default ${DEFAULT_THRESHOLD})`)
    .option("--format <format>", `the report printed: ${FORMATS.join(", ")} (default text)`)
    .option("--instructor", "include the author's messages for the instructor")
    .option(
      "--out <path>",
      "save the grading here (a directory with --class) instead of beside the state file",
    );
  for (const [flag, , help] of PARAM_FLAGS) grade.option(flag, help);
  grade.action(async (opts: Record<string, string | boolean | undefined>) => {
    const g = globals();
    process.exitCode = await (typeof opts.class === "string" ? gradeClass(g, opts) : gradeOne(g, opts));
  });
}

export function registerReport(program: Command, globals: () => GlobalOptions): void {
  program
    .command("report")
    .description("render a saved grading (the newest beside the state file, or --in)")
    .option("--in <file>", "the grading to render (a file kmslab grade saved)")
    .option("--format <format>", `${FORMATS.join(", ")} (default text)`)
    .option("--out <file>", "write the report here instead of stdout")
    .option("--instructor", "include the author's messages for the instructor")
    .action(async (opts: { in?: string; format?: string; out?: string; instructor?: boolean }) => {
      const g = globals();
      const format = formatOf(opts.format);
      const dir = gradeDirFor(g.state ?? DEFAULT_STATE_PATH);
      const path = opts.in ?? listGrades(dir).at(-1);
      if (!path)
        throw new CliError(
          `no grading saved in ${dir}: run kmslab grade first (or pass --in FILE)`,
          EXIT.failure,
        );
      const result = guard(() => loadGrade(path));
      const text = render(result, format, {
        instructor: opts.instructor === true,
        history: history(path, result),
      });
      if (opts.out) guard(() => writeFileAtomic(opts.out!, text));
      else process.stdout.write(text);
    });
}

function formatOf(value: string | undefined): ReportFormat {
  const format = (value ?? "text") as ReportFormat;
  if (!FORMATS.includes(format))
    throw new CliError(`--format must be one of ${FORMATS.join(", ")}, not "${value}"`);
  return format;
}

function thresholdOf(value: unknown): number {
  if (value === undefined) return DEFAULT_THRESHOLD;
  const n = Number(value);
  if (typeof value !== "string" || !/^\d+(\.\d+)?$/.test(value) || n > 100)
    throw new CliError(`--threshold must be a percentage from 0 to 100, not "${String(value)}"`);
  return n;
}

function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof GradeFileError) throw new CliError(err.message, EXIT.invalidData);
    if (err instanceof RosterError) throw new CliError(err.message, EXIT.usage);
    if (err instanceof DiskFullError) throw err;
    if ((err as NodeJS.ErrnoException).code) throw new CliError((err as Error).message, EXIT.failure);
    throw err;
  }
}

/** Earlier gradings of the same learner's lab in the same directory, oldest first. */
function history(path: string, result: GradeResult): { gradedAt: string; score: number; percent: number }[] {
  const dir = dirname(path);
  const out: { gradedAt: string; score: number; percent: number }[] = [];
  for (const p of listGrades(dir)) {
    if (p === path) continue;
    try {
      const r = loadGrade(p);
      const same =
        r.target.accountId === result.target.accountId &&
        r.params.suffix === result.params.suffix &&
        r.learner === result.learner;
      if (same && r.endedAt < result.endedAt)
        out.push({ gradedAt: r.endedAt, score: r.score, percent: r.percent });
    } catch {
      // Not a grading this kmslab reads: not part of the history.
    }
  }
  return out;
}

/** The parameters of the command line, given or not (a state file's are used only when none are). */
function givenParams(opts: Record<string, unknown>): boolean {
  if (opts.config !== undefined) return true;
  return PARAM_FLAGS.some(([flag]) => {
    const name = flag
      .split(" ")[0]!
      .slice(2)
      .replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
    return opts[name] !== undefined;
  });
}

function resolve(input: LabParamsInput, account: string): ResolvedParams {
  return resolveParams(parseParams(input), account);
}

const targetOf = (t: Target, accountId: string): GradeResult["target"] => ({
  kind: t.kind,
  region: t.region,
  accountId,
  ...(t.endpoint ? { endpoint: t.endpoint } : {}),
});

async function gradeOne(
  g: GlobalOptions,
  opts: Record<string, string | boolean | undefined>,
): Promise<number> {
  const format = formatOf(opts.format as string | undefined);
  const threshold = thresholdOf(opts.threshold);
  const stringOpts = opts as Record<string, string | undefined>;
  const statePath = g.state ?? DEFAULT_STATE_PATH;
  // Whatever can refuse the grading is checked before the embedded account is opened (knownSim):
  // the state file (unreadable or another format: exit 5) and, on the simulator, the parameters.
  const state = await new FileStateStore(statePath).read();
  const sim = knownSim(g);
  if (sim) guard(() => parseParams({ ...paramsFrom(stringOpts, "sim"), region: sim.region }));
  const target = await openTarget(g, "kmslab grade");
  const clients = new Clients(target.base);
  try {
    const input = { ...paramsFrom(stringOpts, target.kind), region: target.region };
    guard(() => parseParams(input));
    const account = await callerAccount(clients, target);
    let params = resolve(input, account);
    // The state file's run is this lab when it is on this account and Region, and the names agree.
    let used: StateFile | undefined;
    if (state && state.target.accountId === account && state.target.region === target.region) {
      const recorded = state.params as unknown as ResolvedParams;
      if (!givenParams(opts) || NAME_KEYS.every((k) => recorded[k] === params[k])) {
        used = state;
        params = recorded;
      }
    }
    const result = await gradeLab({
      clients,
      params,
      target: targetOf(target, account),
      threshold,
      ...(used ? { state: used } : {}),
      ...(typeof opts.learner === "string" ? { learner: opts.learner } : {}),
    });
    const saved = guard(() => {
      if (typeof opts.out === "string") {
        writeFileAtomic(opts.out, `${JSON.stringify(result, null, 2)}\n`);
        return opts.out;
      }
      const dir = gradeDirFor(statePath);
      mkdirSync(dir, { recursive: true });
      return saveGrade(dir, result);
    });
    if (g.json) process.stdout.write(render(result, "json", { instructor: opts.instructor === true }));
    else {
      process.stdout.write(render(result, format, { instructor: opts.instructor === true }));
      process.stderr.write(
        `kmslab: grading saved in ${saved}${used ? "" : " (no state file of this lab: graded from the parameters alone)"}\n`,
      );
    }
    return result.passed ? EXIT.ok : EXIT.failure;
  } finally {
    clients.destroy();
    target.close();
  }
}

async function gradeClass(
  g: GlobalOptions,
  opts: Record<string, string | boolean | undefined>,
): Promise<number> {
  const csv = opts.class as string;
  const threshold = thresholdOf(opts.threshold);
  let text: string;
  try {
    text = readFileSync(csv, "utf8");
  } catch (err) {
    throw new CliError(`cannot read the roster ${csv}: ${(err as Error).message}`);
  }
  const roster = guard(() => parseRoster(text, csv));
  const stringOpts = opts as Record<string, string | undefined>;
  const outDir =
    typeof opts.out === "string"
      ? opts.out
      : join(
          gradeDirFor(g.state ?? DEFAULT_STATE_PATH),
          `class-${new Date().toISOString().replace(/:/g, "-")}`,
        );
  // Every learner's parameters are checked before anything is graded or written.
  for (const l of roster)
    guard(() => parseParams({ ...paramsFrom(stringOpts, "sim"), ...(l.suffix ? { suffix: l.suffix } : {}) }));
  const targets = new Map<string, Promise<{ target: Target; clients: Clients; account: string }>>();
  const open = (l: Learner) => {
    const key = JSON.stringify([l.profile ?? "", l.endpoint ?? "", l.region ?? ""]);
    let t = targets.get(key);
    if (!t) {
      const options: TargetOptions = {
        ...g,
        ...(l.profile ? { profile: l.profile, target: "aws", endpointUrl: undefined } : {}),
        ...(l.endpoint ? { endpointUrl: l.endpoint, target: undefined, profile: undefined } : {}),
        ...(l.region ? { region: l.region } : {}),
      };
      t = openTarget(options, "kmslab grade --class").then(async (target) => {
        const clients = new Clients(target.base);
        return { target, clients, account: await callerAccount(clients, target) };
      });
      t.catch(() => {});
      targets.set(key, t);
    }
    return t;
  };
  mkdirSync(outDir, { recursive: true });
  let entries: ClassEntry[];
  try {
    const graded = await gradeRoster(roster, async (l) => {
      const { target, clients, account } = await open(l);
      const params = resolve(
        {
          ...paramsFrom(stringOpts, target.kind),
          ...(l.suffix ? { suffix: l.suffix } : {}),
          region: target.region,
        },
        account,
      );
      return gradeLab({ clients, params, target: targetOf(target, account), threshold, learner: l.name });
    });
    entries = writeClassReports(graded, outDir, { instructor: opts.instructor === true });
  } finally {
    for (const t of targets.values())
      await t.then(
        ({ target, clients }) => {
          clients.destroy();
          target.close();
        },
        () => {},
      );
  }
  const md = classMarkdown(entries);
  if (g.json)
    process.stdout.write(
      `${JSON.stringify(
        {
          out: outDir,
          learners: entries.map((e) => ({
            name: e.name,
            ...(e.result ? { score: e.result.score, passed: e.result.passed } : { error: e.error }),
            ...(e.files ? { report: join(outDir, e.files.html) } : {}),
          })),
        },
        null,
        2,
      )}\n`,
    );
  else {
    process.stdout.write(md);
    process.stderr.write(`kmslab: class reports in ${relative(process.cwd(), outDir) || "."}\n`);
  }
  return entries.every((e) => e.result) ? EXIT.ok : EXIT.failure;
}
