import { readFileSync } from "node:fs";
import { DescribeStateMachineCommand, type SFNClient, StartExecutionCommand } from "@aws-sdk/client-sfn";
import type { Command } from "commander";
import { machineNames } from "../asl/deploy.js";
import {
  type ClassItem,
  type ClassOutcome,
  type ExecutionView,
  follow,
  labRunsByNames,
  namesKey,
  runClass,
  type StageState,
  sfnClient,
  track,
  viewOf,
} from "../asl/executions.js";
import { type Learner, parseRoster, RosterError, slug } from "../grade/class.js";
import { Clients } from "../machines/aws.js";
import { ParamsError, parseParams } from "../steps/params.js";
import { awsFailure, prefixOf } from "./deploy.js";
import { CliError, EXIT } from "./exit-codes.js";
import { formatMs, ICON, TITLE } from "./progress.js";
import { type GlobalOptions, paramsFrom, readConfig } from "./run.js";
import { callerAccount, openTarget, type Target } from "./target.js";

/**
 * `kmslab sfn start`: an execution of the deployed lab (or teardown), followed until it ends;
 * `--class learners.csv`: one per learner, a bounded number at a time; `kmslab sfn status ARN`:
 * an execution's history as the lab's six stages. On the embedded simulator an execution lives in
 * this process, so `start` always waits for it (the account is closed, and a running execution
 * failed, when the process ends); elsewhere `--no-wait` only starts it.
 */
interface StartFlags {
  input?: string;
  name?: string;
  teardown?: boolean;
  wait?: boolean;
  class?: string;
  concurrency?: string;
  namePrefix?: string;
  runId?: string[];
}

/** What Step Functions accepts as an execution name. */
const EXECUTION_NAME = /^[^\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/u;
const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/;
/**
 * Executions of a class running at a time. CloudTrail's LookupEvents allows 2 calls a second per
 * account, shared by the class; the lab looks up by its own key and retries throttling with a long
 * backoff, so 10 at a time all succeed (bench/sfn-class.ts: 50 learners, 50 succeeded); on AWS a
 * shared account holds 5 trails anyway.
 */
const DEFAULT_CONCURRENCY = 10;

export function registerSfn(program: Command, globals: () => GlobalOptions): void {
  const sfn = program
    .command("sfn")
    .description("run the deployed lab on Step Functions and follow its executions");

  sfn
    .command("start")
    .description("start an execution of the deployed lab (or teardown) and follow it until it ends")
    .option("--input <file>", "a JSON file of lab parameters, as --config takes them (default {})")
    .option("--name <name>", "the execution's name (with --class: appended to each learner's)")
    .option("--teardown", "start the teardown state machine instead")
    .option(
      "--run-id <id>",
      "with --teardown: a run whose resources go (repeatable; default: the lab executions with these parameters)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option("--no-wait", "print the execution's ARN and return (not on the embedded simulator)")
    .option("--class <csv>", "one execution per learner of a roster (name, and suffix)")
    .option(
      "--concurrency <n>",
      `with --class: executions running at a time (default ${DEFAULT_CONCURRENCY}; the class shares the account's 2 LookupEvents/s)`,
    )
    .option("--name-prefix <prefix>", "the state machines' prefix, as deployed (default kmslab)")
    .action(async (flags: StartFlags) => {
      process.exitCode = await startCommand(globals(), flags);
    });

  sfn
    .command("status")
    .description("an execution's status and history, as the lab's six stages")
    .argument("<execution-arn>", "the execution (kmslab sfn start prints it)")
    .option("--watch", "follow it until it ends")
    .action(async (arn: string, flags: { watch?: boolean }) => {
      process.exitCode = await statusCommand(globals(), arn, flags);
    });
}

/** Ctrl-C stops the following (and, on the embedded simulator, the execution with the process). */
function interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  return fn(controller.signal).finally(() => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  });
}

/** The embedded simulator runs executions in this process: polling it is cheap. */
const intervalFor = (target: Target) => (target.simulator ? 500 : 2_000);

async function startCommand(g: GlobalOptions, flags: StartFlags): Promise<number> {
  // Flags and files first: a usage problem leaves the account (and the simulator's data) untouched.
  const prefix = prefixOf(flags.namePrefix);
  if (flags.name !== undefined && !EXECUTION_NAME.test(flags.name))
    throw new CliError(
      `--name must be 1-80 characters without spaces, brackets, wildcards or any of "#%\\^|~\`$&,;:/, not "${flags.name}"`,
    );
  if (flags.concurrency !== undefined && !flags.class) throw new CliError("--concurrency goes with --class");
  if (flags.runId && !flags.teardown)
    throw new CliError("--run-id names the runs a teardown removes: add --teardown");
  for (const id of flags.runId ?? [])
    if (!EXECUTION_NAME.test(id))
      throw new CliError(`--run-id must be a run id (an execution's name), not "${id}"`);
  const concurrency = flags.concurrency === undefined ? DEFAULT_CONCURRENCY : Number(flags.concurrency);
  if (!/^\d+$/.test(flags.concurrency ?? "1") || concurrency < 1 || concurrency > 100)
    throw new CliError(`--concurrency must be a whole number from 1 to 100, not "${flags.concurrency}"`);
  if (flags.input) parseParams(readConfig(flags.input));
  const roster = flags.class ? readRoster(flags.class) : undefined;
  // Each learner's parameters and execution name, checked now (the simulator's waits come later).
  if (roster) classItems(roster, flags.input ? readConfig(flags.input) : {}, flags.name);

  const target = await openTarget(g, "kmslab sfn start");
  const clients = new Clients(target.base);
  const sfn = sfnClient(target.base);
  try {
    const input = paramsFrom({ input: undefined, config: flags.input }, target.kind) as Record<
      string,
      unknown
    >;
    const items = roster ? classItems(roster, input, flags.name) : undefined;
    for (const l of roster ?? [])
      if (l.region && l.region !== target.region)
        throw new CliError(
          `line ${l.line}: ${l.name}'s region ${l.region} is not the state machines' (${target.region}); pass --region ${l.region} to run that Region's learners`,
        );
    const account = await callerAccount(clients, target);
    const machine = machineNames(prefix)[flags.teardown ? "teardown" : "lab"];
    const machineArn = `arn:aws:states:${target.region}:${account}:stateMachine:${machine}`;
    const embedded = target.simulator !== undefined;
    if (flags.wait === false && embedded)
      process.stderr.write(
        "kmslab: --no-wait does not apply to the embedded simulator: the execution runs in this process, so kmslab waits for it to end\n",
      );
    const wait = embedded || flags.wait !== false;
    if (flags.teardown) {
      // Which runs' resources go: the ones named, or the lab executions of the same parameters.
      const runsOf = await teardownRuns(sfn, flags.runId, {
        labArn: `arn:aws:states:${target.region}:${account}:stateMachine:${machineNames(prefix).lab}`,
        account,
        region: target.region,
      });
      for (const item of items ?? []) item.input = { ...item.input, runIds: runsOf(item.input) };
      if (!items) {
        const runIds = runsOf(input);
        if (runIds.length === 0)
          throw new CliError(
            `no run to tear down: no execution of ${machineNames(prefix).lab} had these parameters; name the run with --run-id (an execution's name, or a local run's id from kmslab status)`,
            EXIT.failure,
          );
        input.runIds = runIds;
      }
    }
    if (items) return await startClass(g, sfn, machineArn, items, { concurrency, wait, target });

    let started: { executionArn?: string; startDate?: Date };
    try {
      started = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: machineArn,
          input: JSON.stringify(input),
          ...(flags.name ? { name: flags.name } : {}),
        }),
      );
    } catch (err) {
      throw startFailure(err, machine, target);
    }
    const arn = started.executionArn!;
    if (!wait) {
      if (g.json)
        process.stdout.write(
          `${JSON.stringify({ executionArn: arn, startDate: started.startDate?.toISOString(), status: "RUNNING" }, null, 2)}\n`,
        );
      else {
        process.stdout.write(`${arn}\n`);
        process.stderr.write(`kmslab: started; follow it with kmslab sfn status ${arn} --watch\n`);
      }
      return EXIT.ok;
    }
    if (!g.json) process.stderr.write(`kmslab: started ${arn}\n`);
    return await followAndPrint(g, sfn, arn, target);
  } finally {
    sfn.destroy();
    clients.destroy();
    target.close();
  }
}

/** The run ids a teardown of an input removes: `--run-id`, or its parameters' lab executions. */
async function teardownRuns(
  sfn: SFNClient,
  given: string[] | undefined,
  o: { labArn: string; account: string; region: string },
): Promise<(input: Record<string, unknown>) => string[]> {
  if (given && given.length > 0) return () => given;
  let runs: Map<string, string[]>;
  try {
    runs = await labRunsByNames(sfn, o.labArn);
  } catch (err) {
    if ((err as Error).name === "StateMachineDoesNotExist") runs = new Map();
    else throw awsFailure(err, "cannot list the lab's executions");
  }
  return (input) => runs.get(namesKey(input, o.account, o.region) ?? "") ?? [];
}

function startFailure(err: unknown, machine: string, target: Target): CliError {
  if ((err as Error).name === "StateMachineDoesNotExist")
    return new CliError(
      `there is no state machine ${machine} on ${target.description} in ${target.region}: deploy it first (kmslab deploy)`,
      EXIT.failure,
    );
  return awsFailure(err, `cannot start ${machine}`);
}

async function statusCommand(g: GlobalOptions, arn: string, flags: { watch?: boolean }): Promise<number> {
  if (!EXECUTION_ARN.test(arn))
    throw new CliError(
      `"${arn}" is not an execution ARN (arn:aws:states:<region>:<account>:execution:<machine>:<name>)`,
    );
  const region = arn.split(":")[3]!;
  if (g.region !== undefined && g.region !== region)
    throw new CliError(`the execution is in ${region}, not in --region ${g.region}`);
  const target = await openTarget({ ...g, region }, "kmslab sfn status");
  const clients = new Clients(target.base);
  const sfn = sfnClient(target.base);
  try {
    await callerAccount(clients, target);
    if (flags.watch) return await followAndPrint(g, sfn, arn, target);
    let view: ExecutionView;
    try {
      view = await viewOf(await track(sfn, arn));
    } catch (err) {
      throw notFound(err, arn) ?? awsFailure(err, "cannot read the execution");
    }
    print(g, view);
    return view.status === "RUNNING" || view.status === "SUCCEEDED" ? EXIT.ok : EXIT.failure;
  } finally {
    sfn.destroy();
    clients.destroy();
    target.close();
  }
}

function notFound(err: unknown, arn: string): CliError | undefined {
  if ((err as Error).name !== "ExecutionDoesNotExist") return undefined;
  return new CliError(`there is no execution ${arn}`, EXIT.failure);
}

/** Follows an execution with a live (terminal) or line-by-line display on stderr; prints its end. */
async function followAndPrint(
  g: GlobalOptions,
  sfn: SFNClient,
  arn: string,
  target: Target,
): Promise<number> {
  const display = g.json ? undefined : displayFor(process.stderr);
  let view: ExecutionView;
  let interrupted = false;
  try {
    view = await interruptible(async (signal) => {
      const v = await follow(sfn, arn, {
        intervalMs: intervalFor(target),
        signal,
        onUpdate: (u) => display?.update(u),
      });
      interrupted = signal.aborted && v.status === "RUNNING";
      return v;
    });
  } catch (err) {
    throw notFound(err, arn) ?? awsFailure(err, "cannot follow the execution");
  } finally {
    display?.done();
  }
  print(g, view);
  if (interrupted) {
    process.stderr.write(
      target.simulator
        ? "kmslab: stopped: the execution ran in this process and ends with it\n"
        : `kmslab: stopped following; the execution goes on (kmslab sfn status ${arn} --watch)\n`,
    );
    return EXIT.interrupted;
  }
  return view.status === "SUCCEEDED" ? EXIT.ok : EXIT.failure;
}

const STAGE_ICON: Record<StageState, string> = { ...ICON, stopped: "■" };

function stageLine(s: ExecutionView["stages"][number], kind: ExecutionView["kind"]): string {
  const points =
    kind === "lab" ? (s.points !== undefined ? `${s.points}/${s.maxPoints}` : `–/${s.maxPoints}`) : "";
  const status = kind === "teardown" && s.status === "passed" ? "undone" : s.status;
  return `${STAGE_ICON[s.status].padEnd(2)} ${(TITLE.get(s.id) ?? s.id).padEnd(72)} ${status.padEnd(8)} ${points.padStart(6)}`.trimEnd();
}

/** The execution as text (stdout) or JSON. */
function print(g: GlobalOptions, v: ExecutionView): void {
  if (g.json) {
    process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
    return;
  }
  const lines = [
    `${v.kind === "teardown" ? "teardown" : "lab"} execution ${v.name}: ${v.status}`,
    `  ${v.executionArn}`,
    `  started ${v.startDate}${v.stopDate ? `, stopped ${v.stopDate} (${formatMs(v.durationMs ?? 0)})` : ""}`,
    ...v.stages.map((s) => `${stageLine(s, v.kind)}${s.reason ? `\n     ${s.reason}` : ""}`),
  ];
  if (v.kind === "lab") lines.push(`points: ${v.points ?? 0}/100`);
  if (v.resources) {
    lines.push(v.resources.length > 0 ? "resources:" : "resources: none of the lab's found");
    for (const r of v.resources)
      lines.push(
        `  ${(r.undecided ? "UNDECIDED" : r.outcome).padEnd(16)} ${r.type.padEnd(22)} ${r.arn ?? r.name ?? ""}${r.reason ? ` — ${r.reason}` : ""}`,
      );
  }
  if (v.error !== undefined) lines.push(`error: ${v.error}`);
  if (v.cause !== undefined && v.cause !== "") lines.push(`cause: ${v.cause}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

interface Display {
  update(v: ExecutionView): void;
  done(): void;
}

/** On a terminal: the stages redrawn in place. Elsewhere: one line per stage that changes. */
function displayFor(out: NodeJS.WriteStream): Display {
  if (out.isTTY) {
    let drawn = 0;
    let last: ExecutionView | undefined;
    const draw = () => {
      if (!last) return;
      const width = out.columns || 100;
      const lines = [
        `${last.name}: ${last.status} · ${last.events} events`,
        ...last.stages.map((s) => stageLine(s, last!.kind)),
      ].map((l) => (l.length > width - 1 ? `${l.slice(0, width - 2)}…` : l));
      if (drawn > 0) out.write(`\x1b[${drawn}A`);
      for (const l of lines) out.write(`\x1b[2K${l}\n`);
      drawn = lines.length;
    };
    return {
      update(v) {
        last = v;
        draw();
      },
      done() {
        if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[J`);
      },
    };
  }
  const seen = new Map<string, string>();
  return {
    update(v) {
      for (const s of v.stages) {
        const key = `${s.status}${s.reason ?? ""}`;
        if (seen.get(s.id) === key || (s.status === "waiting" && !seen.has(s.id))) continue;
        seen.set(s.id, key);
        out.write(`${s.id}: ${s.status}${s.reason ? ` (${s.reason})` : ""}\n`);
      }
    },
    done() {},
  };
}

function readRoster(path: string): Learner[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`cannot read the roster ${path}: ${(err as Error).message}`);
  }
  let roster: Learner[];
  try {
    roster = parseRoster(text, path);
  } catch (err) {
    if (err instanceof RosterError) throw new CliError(err.message);
    throw err;
  }
  for (const l of roster)
    if (l.profile || l.endpoint)
      throw new CliError(
        `${path} line ${l.line}: ${l.name} has a ${l.profile ? "profile" : "endpoint"}: sfn start --class runs every learner in one account (name and suffix; profile and endpoint are for grade --class)`,
      );
  return roster;
}

/** `-<name>` as a lab suffix can hold it: lower-case letters, digits and hyphens, 20 characters in all. */
function suffixFor(name: string, taken: Set<string>): string {
  const base =
    name
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 19)
      .replace(/-+$/, "") || "learner";
  let s = base;
  for (let n = 2; taken.has(s); n++) s = `${base.slice(0, 19 - String(n).length - 1)}-${n}`;
  taken.add(s);
  return `-${s}`;
}

/** Each learner's execution: named after them (and the run), with their suffix over the input. */
function classItems(
  roster: Learner[],
  input: Record<string, unknown>,
  name: string | undefined,
): ClassItem[] {
  const tag = name ?? new Date().toISOString().replace(/[-:]|\.\d+/g, "");
  const names = new Set<string>();
  const suffixes = new Set<string>(roster.flatMap((l) => (l.suffix ? [l.suffix.replace(/^-/, "")] : [])));
  return roster.map((l) => {
    const suffix = l.suffix ?? suffixFor(l.name, suffixes);
    const learnerInput = { ...input, suffix };
    try {
      parseParams(learnerInput);
    } catch (err) {
      if (err instanceof ParamsError) throw new CliError(`line ${l.line}: ${l.name}: ${err.message}`);
      throw err;
    }
    const ascii = l.name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
    const base = slug(ascii, names).slice(0, 79 - tag.length);
    const executionName = `${base}-${tag}`;
    if (!EXECUTION_NAME.test(executionName))
      throw new CliError(`line ${l.line}: ${l.name}: "${executionName}" cannot name an execution`);
    return { learner: l.name, executionName, input: learnerInput };
  });
}

async function startClass(
  g: GlobalOptions,
  sfn: SFNClient,
  machineArn: string,
  items: ClassItem[],
  o: { concurrency: number; wait: boolean; target: Target },
): Promise<number> {
  try {
    await sfn.send(new DescribeStateMachineCommand({ stateMachineArn: machineArn }));
  } catch (err) {
    throw startFailure(err, machineArn.split(":").pop()!, o.target);
  }
  if (o.target.kind !== "sim" && items.length > 5)
    process.stderr.write(
      "kmslab: note: AWS allows 5 trails per Region in an account: in one account, the learners past the fifth trail fail at trail-to-bucket\n",
    );
  const started = Date.now();
  if (!g.json)
    process.stderr.write(
      `kmslab: ${items.length} learner(s), ${o.concurrency} at a time, on ${o.target.description}\n`,
    );
  const outcomes = await interruptible((signal) =>
    runClass(sfn, machineArn, items, {
      concurrency: o.concurrency,
      wait: o.wait,
      intervalMs: intervalFor(o.target),
      signal,
      onChange: (c) => {
        if (g.json) return;
        const took = c.durationMs !== undefined ? ` in ${formatMs(c.durationMs)}` : "";
        process.stderr.write(`  ${c.learner}: ${c.status}${took}${c.error ? ` (${c.error})` : ""}\n`);
      },
    }),
  );
  const ok = (c: ClassOutcome) => (o.wait ? c.status === "SUCCEEDED" : c.status !== "NOT_STARTED");
  const succeeded = outcomes.filter(ok).length;
  if (g.json)
    process.stdout.write(
      `${JSON.stringify(
        {
          stateMachineArn: machineArn,
          wallMs: Date.now() - started,
          total: outcomes.length,
          succeeded,
          learners: outcomes,
        },
        null,
        2,
      )}\n`,
    );
  else process.stdout.write(classTable(outcomes, Date.now() - started));
  return succeeded === outcomes.length ? EXIT.ok : EXIT.failure;
}

function classTable(outcomes: ClassOutcome[], wallMs: number): string {
  const rows = outcomes.map((c) => [
    c.learner,
    c.status,
    c.durationMs !== undefined ? formatMs(c.durationMs) : "",
    c.error ? `${c.error}${c.cause ? `: ${c.cause}` : ""}` : "",
  ]);
  const head = ["learner", "status", "duration", "error"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  widths[3] = head[3]!.length;
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell))
      .join("  ")
      .trimEnd();
  const ok = outcomes.filter((c) => c.status === "SUCCEEDED").length;
  return `${[line(head), ...rows.map(line)].join("\n")}\n${ok}/${outcomes.length} succeeded in ${formatMs(wallMs)}\n`;
}
