import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import type { ClientBase } from "../machines/aws.js";
import type { StageId } from "../steps/dsl.js";
import { ParamsError, parseParams, resolveParams } from "../steps/params.js";
import { STAGES } from "../steps/registry.js";
import { TEARDOWN_ORDER, type TeardownType } from "../steps/resources.js";
import { type Export, exportLab, exportTeardown } from "./export.js";
import { allStates } from "./interpreter.js";
import { creatingStages, REPORT_STATE, type TeardownReport, type TeardownResource } from "./teardown.js";
import type { State } from "./types.js";

/**
 * Executions of the deployed lab (`kmslab sfn start|status`) as a library: an execution's history
 * read from Step Functions (GetExecutionHistory, newest pages first and only what is new) and
 * shown as the lab's six stages — each state entered mapped to its stage through the export's
 * `origins` (and, for the states a stage adds around its steps, the stage's own branch) — and a
 * roster's executions started and followed a bounded number at a time.
 */

/** An SFN client from the same base as the lab's clients (region, credentials, endpoint or the in-process simulator). */
export function sfnClient(base: ClientBase): SFNClient {
  const config: Record<string, unknown> = { region: base.region };
  if (base.endpoint) config.endpoint = base.endpoint;
  if (base.requestHandler) config.requestHandler = base.requestHandler;
  if (base.profile) config.profile = base.profile;
  if (base.credentials) config.credentials = base.credentials;
  return new SFNClient(config);
}

export type StageState = "waiting" | "running" | "passed" | "failed" | "blocked" | "stopped";
export type ExecutionStatus =
  | "RUNNING"
  | "SUCCEEDED"
  | "FAILED"
  | "TIMED_OUT"
  | "ABORTED"
  | "PENDING_REDRIVE";

export interface StageView {
  id: StageId;
  title: string;
  status: StageState;
  maxPoints: number;
  points?: number;
  reason?: string;
}

export interface ExecutionView {
  executionArn: string;
  name: string;
  stateMachineArn: string;
  /** Which definition ran: the lab's or its teardown's (from the states it entered). */
  kind: "lab" | "teardown";
  status: ExecutionStatus;
  startDate: string;
  stopDate?: string;
  durationMs?: number;
  error?: string;
  cause?: string;
  stages: StageView[];
  /** The lab's points so far (its passed stages'). */
  points?: number;
  /** A teardown's report, once it made one: every resource it looked at, its outcome and why. */
  resources?: TeardownResource[];
  events: number;
}

/** The exported definitions, made once: their state names are what histories name. */
let exportsCache: Promise<Record<"lab" | "teardown", Export>> | undefined;
export function definitions(): Promise<Record<"lab" | "teardown", Export>> {
  exportsCache ??= Promise.all([exportLab(), exportTeardown()]).then(([lab, teardown]) => ({
    lab,
    teardown,
  }));
  return exportsCache;
}

/** State name → stage: its origin, else the stage whose branch or name prefix it has (`create-key failed`), else the origin it extends (`teardown.x?`). */
function stageIndex(exp: Export): Map<string, { stage: StageId; state: State }> {
  const out = new Map<string, { stage: StageId; state: State }>();
  const ids = STAGES.map((s) => s.id);
  const origins = Object.entries(exp.origins).sort((a, b) => b[0].length - a[0].length);
  for (const [name, state] of allStates(exp.definition)) {
    let stage = exp.origins[name]?.stageId as StageId | undefined;
    stage ??= ids.find((id) => name === id || name.startsWith(`${id}.`) || name.startsWith(`${id} `));
    stage ??= origins.find(([n]) => name.startsWith(n))?.[1].stageId as StageId | undefined;
    if (stage) out.set(name, { stage, state });
  }
  return out;
}

const indexes = new WeakMap<Export, Map<string, { stage: StageId; state: State }>>();
function indexOf(exp: Export) {
  let index = indexes.get(exp);
  if (!index) {
    index = stageIndex(exp);
    indexes.set(exp, index);
  }
  return index;
}

const TEARDOWN_STATES = /^(teardown\.|Torn down$|Teardown incomplete$|Everything undone\?$)/;

/** Which definition a history comes from. */
export function kindOf(events: readonly HistoryEvent[]): "lab" | "teardown" {
  for (const e of events) {
    const name = e.stateEnteredEventDetails?.name;
    if (name && name !== "Parameters") return TEARDOWN_STATES.test(name) ? "teardown" : "lab";
  }
  return "lab";
}

/**
 * The six stages as a history shows them. Lab: a stage runs from its first state entered, passes at
 * its `passed` state (with its points), fails or is blocked at one of its Fail states (the reason
 * is the execution's cause when it names the stage), and is stopped when the execution ended
 * while it ran. Teardown: see teardownStages.
 */
export function stagesFrom(
  events: readonly HistoryEvent[],
  kind: "lab" | "teardown",
  exp: Export,
  end: { status: ExecutionStatus; error?: string; cause?: string },
): StageView[] {
  if (kind === "teardown") return teardownStages(events, exp, end);
  const index = indexOf(exp);
  const views = new Map<StageId, StageView>(
    STAGES.map((s) => [s.id, { id: s.id, title: s.title, status: "waiting", maxPoints: s.points }]),
  );
  const set = (id: StageId, status: StageState, reason?: string) => {
    const v = views.get(id)!;
    v.status = status;
    if (reason !== undefined) v.reason = reason;
    else delete v.reason;
  };
  for (const e of events) {
    const entered = e.stateEnteredEventDetails?.name;
    const exited = e.stateExitedEventDetails?.name;
    if (entered !== undefined) {
      const hit = index.get(entered);
      if (!hit) continue;
      if (views.get(hit.stage)!.status === "waiting") set(hit.stage, "running");
      if (hit.state.Type === "Fail") {
        const blocked = hit.state.Error === "kmslab.Blocked";
        const prefix = `${hit.stage}: `;
        const reason = end.cause?.startsWith(prefix) ? end.cause.slice(prefix.length) : entered;
        set(hit.stage, blocked ? "blocked" : "failed", reason);
      }
      continue;
    }
    if (exited !== undefined) {
      const hit = index.get(exited);
      if (hit && hit.state.Type === "Pass" && hit.state.End === true) {
        const out = parse(e.stateExitedEventDetails?.output) as { points?: number } | undefined;
        const v = views.get(hit.stage)!;
        set(hit.stage, "passed");
        if (typeof out?.points === "number") v.points = out.points;
      }
    }
  }
  if (end.status !== "RUNNING")
    for (const v of views.values()) if (v.status === "running") v.status = "stopped";
  return [...views.values()];
}

/** The teardown's report, from its `teardown.report` state (a failed execution has no output). */
export function teardownReport(events: readonly HistoryEvent[]): TeardownReport | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const d = events[i]!.stateExitedEventDetails;
    if (d?.name === REPORT_STATE) return parse(d.output) as TeardownReport | undefined;
  }
  return undefined;
}

/**
 * The six stages as a teardown's history shows them: a stage runs while the teardown deals with a
 * type of resource it makes; once the report is made, a stage failed when one of its resources
 * could not be removed or could not be read (the reason names them), else it is undone; a stage
 * that makes nothing has nothing to undo.
 */
function teardownStages(
  events: readonly HistoryEvent[],
  exp: Export,
  end: { status: ExecutionStatus },
): StageView[] {
  const stagesOf = new Map<TeardownType, StageId[]>(
    TEARDOWN_ORDER.map((t) => [t, creatingStages(t, STAGES).map((c) => c.stageId as StageId)]),
  );
  const making = new Set([...stagesOf.values()].flat());
  const views = STAGES.map(
    (s): StageView => ({ id: s.id, title: s.title, status: "waiting", maxPoints: s.points }),
  );
  for (const e of events) {
    const type = exp.origins[e.stateEnteredEventDetails?.name ?? ""]?.stepId as TeardownType | undefined;
    for (const id of (type && stagesOf.get(type)) || [])
      for (const v of views) if (v.id === id && v.status === "waiting") v.status = "running";
  }
  const report = teardownReport(events);
  for (const v of views) {
    if (!making.has(v.id)) {
      v.reason = "nothing to undo";
      if (end.status === "SUCCEEDED" || report) v.status = "passed";
      continue;
    }
    if (!report) {
      if (end.status !== "RUNNING" && v.status === "running") v.status = "stopped";
      continue;
    }
    const open = report.resources.filter(
      (r) => r.stageId === v.id && (r.outcome === "failed" || r.undecided === true),
    );
    v.status = open.length > 0 ? "failed" : "passed";
    if (open.length > 0)
      v.reason = open.map((r) => `${r.type} ${r.name ?? ""}: ${r.reason ?? ""}`).join("; ");
  }
  return views;
}

function parse(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * An execution's history, extended by what happened since `known` (its events so far): pages read
 * newest first until one reaches an event already known, so following a long execution does not
 * read it all again each time.
 */
export async function readHistory(
  sfn: SFNClient,
  executionArn: string,
  known: readonly HistoryEvent[] = [],
): Promise<HistoryEvent[]> {
  const last = known.at(-1)?.id ?? 0;
  const fresh = new Map<number, HistoryEvent>();
  let nextToken: string | undefined;
  for (;;) {
    const page = await sfn.send(
      new GetExecutionHistoryCommand({
        executionArn,
        reverseOrder: true,
        // Following: usually a few events are new.
        maxResults: last > 0 ? 100 : 1000,
        ...(nextToken ? { nextToken } : {}),
      }),
    );
    let reached = false;
    for (const e of page.events ?? []) {
      if ((e.id ?? 0) <= last) {
        reached = true;
        break;
      }
      // Events that arrive between two pages shift the pages: an event may come twice.
      fresh.set(e.id ?? 0, e);
    }
    nextToken = page.nextToken;
    if (reached || !nextToken) break;
  }
  return [...known, ...[...fresh.values()].sort((a, b) => (a.id ?? 0) - (b.id ?? 0))];
}

/** What is known of an execution: its description and its history so far. */
export interface Tracked {
  description: DescribeExecutionCommandOutput;
  events: HistoryEvent[];
}

export async function track(sfn: SFNClient, executionArn: string, before?: Tracked): Promise<Tracked> {
  const description = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  const events = await readHistory(sfn, executionArn, before?.events);
  return { description, events };
}

export async function viewOf(t: Tracked): Promise<ExecutionView> {
  const d = t.description;
  const kind = kindOf(t.events);
  const exp = (await definitions())[kind];
  const status = (d.status ?? "RUNNING") as ExecutionStatus;
  const end = {
    status,
    ...(d.error !== undefined ? { error: d.error } : {}),
    ...(d.cause !== undefined ? { cause: d.cause } : {}),
  };
  const stages = stagesFrom(t.events, kind, exp, end);
  const passed = stages.filter((s) => s.points !== undefined);
  return {
    executionArn: d.executionArn!,
    name: d.name!,
    stateMachineArn: d.stateMachineArn!,
    kind,
    startDate: d.startDate!.toISOString(),
    ...(d.stopDate ? { stopDate: d.stopDate.toISOString() } : {}),
    ...(d.stopDate ? { durationMs: d.stopDate.getTime() - d.startDate!.getTime() } : {}),
    ...end,
    stages,
    ...(kind === "lab" && passed.length > 0 ? { points: passed.reduce((n, s) => n + s.points!, 0) } : {}),
    ...(kind === "teardown" ? resourcesOf(t.events) : {}),
    events: t.events.length,
  };
}

function resourcesOf(events: readonly HistoryEvent[]): { resources?: TeardownResource[] } {
  const report = teardownReport(events);
  return report ? { resources: report.resources } : {};
}

const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/**
 * Follows an execution until it ends (or `signal` stops the following, not the execution):
 * `onUpdate` sees its view after every read. Resolves with the last view.
 */
export async function follow(
  sfn: SFNClient,
  executionArn: string,
  o: { intervalMs: number; signal?: AbortSignal; onUpdate?: (view: ExecutionView) => void },
): Promise<ExecutionView> {
  let t: Tracked | undefined;
  for (;;) {
    t = await track(sfn, executionArn, t);
    const view = await viewOf(t);
    o.onUpdate?.(view);
    if (view.status !== "RUNNING" || o.signal?.aborted) return view;
    await delay(o.intervalMs, o.signal);
  }
}

/** One learner's execution in a class run. */
export interface ClassItem {
  learner: string;
  executionName: string;
  input: Record<string, unknown>;
}

export interface ClassOutcome {
  learner: string;
  executionName: string;
  executionArn?: string;
  status: ExecutionStatus | "NOT_STARTED";
  startDate?: string;
  stopDate?: string;
  durationMs?: number;
  error?: string;
  cause?: string;
}

/**
 * Starts one execution per learner, at most `concurrency` running at a time (CloudTrail's
 * LookupEvents allows 2 calls a second per account: a whole class at once throttles itself), and
 * follows each with DescribeExecution until it ends — or, with `wait: false`, only starts them.
 * A learner whose execution cannot be started is reported, not fatal.
 */
export async function runClass(
  sfn: SFNClient,
  stateMachineArn: string,
  items: readonly ClassItem[],
  o: {
    concurrency: number;
    wait: boolean;
    intervalMs: number;
    signal?: AbortSignal;
    onChange?: (outcome: ClassOutcome) => void;
  },
): Promise<ClassOutcome[]> {
  const out: ClassOutcome[] = items.map((i) => ({
    learner: i.learner,
    executionName: i.executionName,
    status: "NOT_STARTED",
  }));
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length && !o.signal?.aborted; i = next++) {
      const item = items[i]!;
      const outcome = out[i]!;
      try {
        const started = await sfn.send(
          new StartExecutionCommand({
            stateMachineArn,
            name: item.executionName,
            input: JSON.stringify(item.input),
          }),
        );
        outcome.executionArn = started.executionArn!;
        outcome.status = "RUNNING";
        outcome.startDate = started.startDate!.toISOString();
        o.onChange?.(outcome);
        while (o.wait && !o.signal?.aborted) {
          const d = await sfn.send(new DescribeExecutionCommand({ executionArn: outcome.executionArn }));
          outcome.status = d.status as ExecutionStatus;
          if (outcome.status !== "RUNNING") {
            if (d.stopDate) {
              outcome.stopDate = d.stopDate.toISOString();
              outcome.durationMs = d.stopDate.getTime() - d.startDate!.getTime();
            }
            if (d.error !== undefined) outcome.error = d.error;
            if (d.cause !== undefined) outcome.cause = d.cause;
            o.onChange?.(outcome);
            break;
          }
          await delay(o.intervalMs, o.signal);
        }
      } catch (err) {
        outcome.error = (err as Error).name;
        outcome.cause = (err as Error).message;
        o.onChange?.(outcome);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, o.concurrency), items.length) }, worker));
  return out;
}

/**
 * Which lab resources an execution input names: its Region and the names its parameters resolve to
 * (as the state machines resolve them; the Region is the state machine's unless the input gives
 * one). Undefined for an input that is not the lab's parameters.
 */
export function namesKey(input: unknown, account: string, region: string): string | undefined {
  try {
    const raw = input !== null && typeof input === "object" ? (input as Record<string, unknown>) : {};
    const { runId: _r, runIds: _rs, ...params } = raw;
    const p = resolveParams(parseParams({ region, ...params }), account);
    return JSON.stringify([p.region, p.keyAlias, p.keyUserRole, p.trailName, p.logBucket, p.dataBucket]);
  } catch (err) {
    if (err instanceof ParamsError) return undefined;
    throw err;
  }
}

/** How many of a lab state machine's newest executions are looked at for their run ids. */
export const LAB_RUNS_LOOKED_AT = 1000;

/**
 * The run ids (execution names) of a lab state machine's executions, newest first, by the names
 * their input gives the lab's resources (namesKey): what a teardown with the same parameters may
 * remove — each is a run of this lab, and a resource it tagged is its. The newest
 * LAB_RUNS_LOOKED_AT executions (Step Functions keeps a closed one for 90 days).
 */
export async function labRunsByNames(
  sfn: SFNClient,
  stateMachineArn: string,
): Promise<Map<string, string[]>> {
  const [, , , region, account] = stateMachineArn.split(":") as string[];
  const executions: { executionArn?: string; name?: string }[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn, maxResults: 1000, ...(nextToken ? { nextToken } : {}) }),
    );
    executions.push(...(page.executions ?? []));
    nextToken = page.nextToken;
  } while (nextToken && executions.length < LAB_RUNS_LOOKED_AT);
  const wanted = executions.slice(0, LAB_RUNS_LOOKED_AT);
  const keys: (string | undefined)[] = new Array(wanted.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < wanted.length; i = next++) {
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: wanted[i]!.executionArn! }));
      keys[i] = namesKey(parse(d.input), account!, region!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(5, wanted.length) }, worker));
  const out = new Map<string, string[]>();
  for (const [i, e] of wanted.entries()) {
    const key = keys[i];
    if (key === undefined || !e.name) continue;
    out.set(key, [...(out.get(key) ?? []), e.name]);
  }
  return out;
}
