import { randomBytes } from "node:crypto";
import { abortableDelay, type Clock, type InterpreterEvent } from "../../../asl/interpreter.js";
import type { Definition } from "../../../asl/types.js";
import type { Account } from "../../account.js";
import type { ExecutionRecord, ExecutionStatus } from "./provider.js";
import { serviceContext } from "./provider.js";

/**
 * One execution of the simulated Step Functions: the ASL interpreter over the definition, its
 * `aws-sdk` Tasks made by SDK clients that reach the account in process (the full SDK stack, as any
 * client) with a session of the execution role that Step Functions assumes, Waits and timeouts on
 * the account's clock, and every interpreter event written into the history in AWS's shapes.
 */

/** What the simulator serving the account lends to executions. */
export interface ExecutionHost {
  /** An SDK requestHandler into the simulator. */
  requestHandler: unknown;
  /** Saves the account if it changed (executions change it outside any request). */
  save(): void;
}

export interface RunOptions {
  host: ExecutionHost;
  account: Account;
  signal: AbortSignal;
  event(type: string, details: Record<string, unknown>): void;
  finish(outcome: {
    status: Exclude<ExecutionStatus, "RUNNING">;
    output?: string;
    error?: string;
    cause?: string;
  }): void;
}

interface Session {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export async function runExecution(record: ExecutionRecord, o: RunOptions): Promise<void> {
  const definition = JSON.parse(record.definition) as Definition;
  if (definition.QueryLanguage !== "JSONata") {
    o.finish({
      status: "FAILED",
      error: "States.Runtime",
      cause: "The simulated Step Functions runs JSONata state machines only (QueryLanguage: JSONata).",
    });
    return;
  }
  // Loaded on first use: an account that runs no execution does not load the SDK clients.
  const [{ Clients }, { clientsInvoker }, { execute }] = await Promise.all([
    import("../../../machines/aws.js"),
    import("../../../asl/invoke.js"),
    import("../../../asl/interpreter.js"),
  ]);
  const { account } = o;
  let session: Session | undefined;
  // Step Functions assumes the execution role and renews the session before it expires.
  const credentials = async (): Promise<Session> => {
    if (session && session.expiration.getTime() - account.now().getTime() > 5 * 60_000) return session;
    const out = account.call<{ Credentials: Record<string, unknown> }>(
      account.sts,
      "AssumeRole",
      { RoleArn: record.roleArn, RoleSessionName: randomBytes(16).toString("hex") },
      serviceContext(record.region, account),
    );
    const c = out.Credentials;
    session = {
      accessKeyId: c.AccessKeyId as string,
      secretAccessKey: c.SecretAccessKey as string,
      sessionToken: c.SessionToken as string,
      expiration: c.Expiration as Date,
    };
    return session;
  };
  const clients = new Clients(
    { region: record.region, credentials, requestHandler: o.host.requestHandler },
    {},
    0, // Step Functions does not pace calls: CloudTrail's own limit answers ThrottlingException.
  );
  const clock = accountClock(account);
  const stop = new AbortController();
  const onStop = () => stop.abort();
  o.signal.addEventListener("abort", onStop, { once: true });
  let timedOut = false;
  const limit = definition.TimeoutSeconds;
  if (limit !== undefined)
    void clock.sleep(limit * 1000, stop.signal).then(() => {
      if (stop.signal.aborted) return;
      timedOut = true;
      stop.abort();
    });
  try {
    const result = await execute(definition, JSON.parse(record.input), {
      invoke: clientsInvoker(clients),
      clock,
      executionName: record.name,
      stateMachineArn: record.stateMachineArn,
      signal: stop.signal,
      onEvent: (e) => {
        const { type, details } = historyEvent(e, record.region);
        o.event(type, details);
      },
    });
    if (result.status === "SUCCEEDED")
      o.finish({ status: "SUCCEEDED", output: JSON.stringify(result.output ?? null) });
    else if (result.status === "FAILED")
      o.finish({
        status: "FAILED",
        ...(result.error !== undefined ? { error: result.error } : {}),
        ...(result.cause !== undefined ? { cause: result.cause } : {}),
      });
    else if (timedOut)
      o.finish({
        status: "TIMED_OUT",
        error: "States.Timeout",
        cause: `The execution did not finish within its TimeoutSeconds (${limit} s).`,
      });
    else o.finish({ status: "ABORTED" });
  } finally {
    o.signal.removeEventListener("abort", onStop);
    stop.abort();
    clients.destroy();
  }
}

/** Waits on the account's clock (which tests may move): re-read at least every second. */
export function accountClock(account: Account): Clock {
  const sleep = async (ms: number, signal?: AbortSignal) => {
    const end = account.now().getTime() + ms;
    for (;;) {
      if (signal?.aborted) return;
      const left = end - account.now().getTime();
      if (left <= 0) return;
      await abortableDelay(Math.min(left, 1000), signal);
    }
  };
  return { now: () => account.now().getTime(), sleep, timeout: sleep };
}

const json = (v: unknown) => JSON.stringify(v ?? null);

/** An interpreter event as the history holds it: AWS's type and its details member. */
export function historyEvent(
  e: InterpreterEvent,
  region: string,
): { type: string; details: Record<string, unknown> } {
  const task = () => {
    const m = /^arn:aws:states:::([\w-]+:[\w-]+):(\w+)$/.exec(e.resource ?? "");
    return m
      ? { resourceType: m[1]!, resource: m[2]! }
      : { resourceType: "unknown", resource: e.resource ?? "" };
  };
  const { type } = e;
  if (type.endsWith("StateEntered"))
    return {
      type,
      details: {
        stateEnteredEventDetails: { name: e.name, input: json(e.input), inputDetails: { truncated: false } },
      },
    };
  if (type.endsWith("StateExited"))
    return {
      type,
      details: {
        stateExitedEventDetails: {
          name: e.name,
          output: json(e.output),
          outputDetails: { truncated: false },
        },
      },
    };
  switch (type) {
    case "TaskScheduled":
      return {
        type,
        details: {
          taskScheduledEventDetails: {
            ...task(),
            region,
            parameters: json(e.arguments ?? {}),
            ...(e.timeoutSeconds !== undefined ? { timeoutInSeconds: e.timeoutSeconds } : {}),
          },
        },
      };
    case "TaskStarted":
      return { type, details: { taskStartedEventDetails: task() } };
    case "TaskSucceeded":
      return {
        type,
        details: {
          taskSucceededEventDetails: {
            ...task(),
            output: json(e.output),
            outputDetails: { truncated: false },
          },
        },
      };
    case "TaskFailed":
      return { type, details: { taskFailedEventDetails: { ...task(), error: e.error, cause: e.cause } } };
    case "TaskTimedOut":
      return { type, details: { taskTimedOutEventDetails: { ...task(), error: e.error, cause: e.cause } } };
    case "MapStateStarted":
      return { type, details: { mapStateStartedEventDetails: { length: e.length } } };
    case "MapIterationStarted":
    case "MapIterationSucceeded":
    case "MapIterationFailed":
    case "MapIterationAborted": {
      const member = `mapIteration${type.slice("MapIteration".length)}EventDetails`;
      return { type, details: { [member]: { name: e.name, index: e.index } } };
    }
    default:
      // ParallelStateStarted/Succeeded/Failed/Aborted, MapStateSucceeded/Failed/Aborted,
      // TaskStateAborted, WaitStateAborted: no details.
      return { type, details: {} };
  }
}
