import { AsyncLocalStorage } from "node:async_hooks";
import { type Export, exportLab } from "../../asl/export.js";
import { execute, StatesError, type TaskRequest, virtualClock } from "../../asl/interpreter.js";
import { parseResource } from "../../asl/invoke.js";
import { aslErrorName } from "../../asl/sdk.js";
import { AwsError, Clients, type ObservedCall } from "../../machines/aws.js";
import { runLab } from "../../machines/engine.js";
import type { AccountOptions } from "../../sim/account.js";
import { Simulator } from "../../sim/simulator.js";
import { MemoryStateStore } from "../../state/index.js";
import type { Service, StageDef } from "../../steps/dsl.js";
import { type LabParamsInput, parseParams, resolveParams } from "../../steps/params.js";

/**
 * The no-drift harness: the local engine runs the lab on the simulator with every AWS call recorded
 * (by stage, through the Clients observer), then the exported state machine is walked by the ASL
 * interpreter with a Task invoker that hands back the recorded results in order — so both engines
 * see the same account and their calls can be compared one by one.
 */

export interface Call {
  service: Service;
  action: string;
  args: unknown;
  as?: "keyUser";
  /** Made by a check (checks run at the same time: their calls interleave). */
  verify?: true;
}

function push<T>(map: Record<string, T[]>, key: string, value: T): void {
  map[key] = [...(map[key] ?? []), value];
}

const sameCall = (a: Call, b: Call) =>
  a.service === b.service &&
  a.action === b.action &&
  a.as === b.as &&
  JSON.stringify(a.args) === JSON.stringify(b.args);

interface Recorded extends Call {
  output?: Record<string, unknown>;
  error?: AwsError;
}

export interface EngineRecording {
  sim: Simulator;
  region: string;
  runId: string;
  account: string;
  statuses: Record<string, string>;
  /** Per stage: the calls the stages' steps made (not the engine's AssumeRole, not probes). */
  calls: Record<string, Recorded[]>;
  /** Per stage: the calls probes made (unsigned GET, reading log files). */
  probes: Record<string, Recorded[]>;
}

/**
 * Runs the local engine on a fresh simulator, recording every call by stage. With a `profile` the
 * account's clock is the engine's (the waits move it): its delays pass as the engine waits.
 */
export async function recordEngine(
  input: LabParamsInput = {},
  stages?: readonly StageDef[],
  profile?: AccountOptions,
): Promise<EngineRecording> {
  let now = Date.now();
  const sim = profile ? Simulator.inMemory({ profile, clock: () => new Date(now) }) : Simulator.inMemory();
  const region = input.region ?? "us-east-1";
  // The engine paces its lookups as the account limits them (on the host's clock).
  const clients = new Clients({ ...sim.clientConfig(), region }, {}, profile?.trailLookupsPerSecond ?? 2);
  const stageOf = new AsyncLocalStorage<string>();
  const calls: Record<string, Recorded[]> = {};
  const probes: Record<string, Recorded[]> = {};
  clients.observer = (c: ObservedCall) => {
    const stage = stageOf.getStore() ?? "(none)";
    // The engine's own AssumeRole gets the key user's session; ASL says Credentials instead.
    if (c.service === "sts" && c.action === "AssumeRole") return;
    const probe = c.options.unsigned || c.options.binaryBody || c.action === "ListObjectsV2";
    const call: Recorded = {
      service: c.service,
      action: c.action,
      args: c.input,
      ...(c.options.credentials ? { as: "keyUser" as const } : {}),
      ...(c.output ? { output: c.output } : {}),
      ...(c.error ? { error: c.error } : {}),
    };
    push(probe ? probes : calls, stage, call);
  };
  const params = resolveParams(parseParams(input), sim.account.accountId);
  try {
    const result = await runLab({
      store: new MemoryStateStore(),
      clients,
      target: { kind: "sim", region, accountId: sim.account.accountId },
      params,
      command: "test",
      // Each step's calls belong to its stage: the step event comes first, in the stage's own async context.
      progress: (e) => {
        if (e.kind === "step") stageOf.enterWith(e.stageId);
      },
      ...(stages ? { stages } : {}),
      // Waits cost no time: the clock moves instead (CloudTrail on the simulator is not late).
      now: () => now,
      sleep: async (ms) => {
        now += ms;
        await new Promise((r) => setTimeout(r, 5));
      },
    });
    return {
      sim,
      region,
      runId: result.runId,
      account: sim.account.accountId,
      statuses: Object.fromEntries(Object.entries(result.stages).map(([k, v]) => [k, v.status])),
      calls,
      probes,
    };
  } finally {
    clients.destroy();
  }
}

export interface Walk {
  status: string;
  output?: unknown;
  error?: string;
  cause?: string;
  calls: Record<string, Call[]>;
  /** Calls made by the Tasks that replace probes. */
  replacements: Record<string, Call[]>;
  /** Recorded engine calls no Task of the definition made. */
  unused: Record<string, Call[]>;
}

/**
 * Walks an exported definition over an engine recording: each stage's Tasks get that stage's
 * recorded results in order; a Task that replaces a probe gets the probe's recorded listing, or
 * asks the simulator (nothing else in the recording answers it).
 */
export async function walkRecorded(
  rec: EngineRecording,
  input: LabParamsInput,
  exported?: Export,
): Promise<Walk> {
  const { definition, origins } = exported ?? (await exportLab());
  const usedBy: Record<string, Set<number>> = {};
  const probeCursor: Record<string, number> = {};
  const calls: Record<string, Call[]> = {};
  const replacements: Record<string, Call[]> = {};
  const clients = new Clients({ ...rec.sim.clientConfig(), region: rec.region });
  const answer = (r: Recorded) => {
    if (r.error) throw new StatesError(aslErrorName(r.service, r.error.code), r.error.message);
    return r.output ?? {};
  };
  const invoke = async (req: TaskRequest) => {
    const origin = origins[req.stateName];
    if (!origin) throw new Error(`no origin for state ${req.stateName}`);
    const stage = origin.stageId;
    const { service, action } = parseResource(req.resource);
    const call: Call = {
      service,
      action,
      args: req.arguments ?? {},
      ...(req.credentials ? { as: "keyUser" as const } : {}),
    };
    if (origin.replaces) {
      push(replacements, stage, call);
      const i = probeCursor[stage] ?? 0;
      const recorded = rec.probes[stage]?.filter((p) => p.action === action)[i];
      if (recorded) {
        probeCursor[stage] = i + 1;
        return answer(recorded);
      }
      try {
        return await clients.call(service, action, (req.arguments ?? {}) as Record<string, unknown>);
      } catch (err) {
        if (err instanceof AwsError) throw new StatesError(aslErrorName(service, err.code), err.message);
        throw err;
      }
    }
    push(calls, stage, origin.phase === "verify" ? { ...call, verify: true } : call);
    const list = rec.calls[stage] ?? [];
    const used = usedBy[stage] ?? new Set<number>();
    usedBy[stage] = used;
    // Steps run in order; the engine runs a stage's checks at the same time, so a check's read is
    // answered by the first unused recorded call that is the same call.
    const i =
      origin.phase === "verify"
        ? list.findIndex((r, n) => !used.has(n) && sameCall(r, call))
        : list.findIndex((_, n) => !used.has(n));
    const recorded = i >= 0 ? list[i] : undefined;
    if (!recorded || recorded.service !== service || recorded.action !== action)
      throw new StatesError(
        "kmslab.Drift",
        `${req.stateName}: the definition calls ${service}:${action}, the engine called ${recorded ? `${recorded.service}:${recorded.action}` : "nothing more"}`,
      );
    used.add(i);
    return answer(recorded);
  };
  try {
    const result = await execute(definition, input, {
      invoke,
      clock: virtualClock(),
      executionName: rec.runId,
      // The definition takes its Region from the state machine's ARN, as on AWS.
      stateMachineArn: `arn:aws:states:${rec.region}:${rec.account}:stateMachine:kmslab`,
    });
    const unused = Object.fromEntries(
      Object.entries(rec.calls).map(([stage, list]) => [
        stage,
        callsOnly({ [stage]: list.filter((_, i) => !usedBy[stage]?.has(i)) })[stage]!,
      ]),
    );
    return { ...result, calls, replacements, unused };
  } finally {
    clients.destroy();
  }
}

/** The engine's calls without their results, to compare with a walk's. */
export function callsOnly(calls: Record<string, Recorded[]>): Record<string, Call[]> {
  return Object.fromEntries(
    Object.entries(calls).map(([stage, list]) => [
      stage,
      list.map(({ service, action, args, as }) => ({ service, action, args, ...(as ? { as } : {}) })),
    ]),
  );
}
