import { type Bindings, evaluate, isExpression, render } from "../steps/expr.js";
import type { Branchlike, Catcher, Definition, Retrier, State } from "./types.js";

/**
 * A small interpreter of the Amazon States Language in JSONata mode: Pass, Task, Choice, Wait,
 * Parallel, Succeed and Fail; `Arguments`, `Output`, `Assign` (every expression of a state sees the
 * variables as they were before it), `$states.input/result/errorOutput/context`, Retry (with
 * backoff, `MaxDelaySeconds` and jitter) and Catch, and variable scopes (a Parallel branch reads the
 * variables around it and assigns its own). What a Task does is the caller's: a `TaskInvoker` gets
 * the resource, the evaluated arguments and credentials, and returns the result or throws a
 * `StatesError` named as Step Functions names errors. The drift test replays recorded AWS results
 * through it; the simulated Step Functions service (sim/services/states) dispatches the Tasks to the
 * simulated account and turns the interpreter's events into an execution history.
 *
 * Also: Map (inline), Task `TimeoutSeconds` (States.Timeout), stopping an execution (an AbortSignal:
 * a stopped execution makes no further call, Waits end at once), and a Parallel or Map whose branch
 * fails stops its other branches, as Step Functions does. Payloads past Step Functions' 256 KiB
 * quota fail the execution (States.DataLimitExceeded); JSONata's work is bounded in steps/expr.ts.
 * JSONPath is not supported.
 */

export class StatesError extends Error {
  constructor(
    readonly error: string,
    override readonly cause: string,
  ) {
    super(`${error}: ${cause}`);
    this.name = "StatesError";
  }
}

export interface TaskRequest {
  stateName: string;
  resource: string;
  arguments: unknown;
  credentials?: { RoleArn: string };
}

export type TaskInvoker = (request: TaskRequest) => Promise<unknown>;

export interface Clock {
  now(): number;
  /** Waits (a virtual clock just moves on); ends early, without error, when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * A timer that runs while a Task works, for its TimeoutSeconds. A virtual clock has none: its time
   * moves only when something waits on it, so a Task takes no time and never times out.
   */
  timeout?(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => abortableDelay(ms, signal),
  timeout: (ms, signal) => abortableDelay(ms, signal),
};

/** A timer that resolves after `ms`, or as soon as `signal` aborts. */
export function abortableDelay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** A clock that moves only when something waits: waits cost nothing, budgets still run out. */
export function virtualClock(start = Date.UTC(2026, 0, 1)): Clock & { elapsedMs(): number } {
  let now = start;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
      await Promise.resolve();
    },
    elapsedMs: () => now - start,
  };
}

export interface ExecutionOptions {
  invoke: TaskInvoker;
  clock?: Clock;
  /** `$states.context.Execution.Name` (and the end of its ARN). */
  executionName?: string;
  stateMachineArn?: string;
  /** Stops a runaway loop: the most states one execution may enter. */
  maxTransitions?: number;
  /** Sees every state entered (tracing, tests). */
  onState?: (name: string, state: State) => void;
  /** Sees what Step Functions writes into an execution's history, as it happens. */
  onEvent?: (event: InterpreterEvent) => void;
  /** Stops the execution: no state is entered and no Task invoked after it aborts. */
  signal?: AbortSignal;
  random?: () => number;
}

/**
 * What happens during an execution, named as Step Functions' history event types name it
 * (`TaskStateEntered`, `TaskScheduled`, `MapIterationStarted`...). `index` is a Map iteration's.
 */
export interface InterpreterEvent {
  type: string;
  name: string;
  input?: unknown;
  output?: unknown;
  resource?: string;
  arguments?: unknown;
  timeoutSeconds?: number;
  error?: string;
  cause?: string;
  index?: number;
  length?: number;
}

/** Thrown (and not catchable by Retry or Catch) when the execution is stopped. */
export class ExecutionAborted extends Error {
  constructor() {
    super("the execution was stopped");
    this.name = "ExecutionAborted";
  }
}

export interface ExecutionResult {
  status: "SUCCEEDED" | "FAILED" | "ABORTED";
  output?: unknown;
  error?: string;
  cause?: string;
  transitions: number;
}

/** Variables: a scope reads its parents, assigns in itself (a Parallel branch has its own). */
class Scope {
  private readonly vars = new Map<string, unknown>();
  constructor(private readonly parent?: Scope) {}

  all(): Bindings {
    const out: Bindings = this.parent ? this.parent.all() : {};
    for (const [k, v] of this.vars) out[k] = v;
    return out;
  }

  set(values: Record<string, unknown>): void {
    for (const [k, v] of Object.entries(values)) this.vars.set(k, v);
  }
}

export async function execute(
  definition: Definition,
  input: unknown,
  options: ExecutionOptions,
): Promise<ExecutionResult> {
  const run = new Execution(definition, input, options);
  try {
    const output = await run.branch(definition, input, new Scope(), options.signal);
    return { status: "SUCCEEDED", output, transitions: run.transitions };
  } catch (err) {
    if (err instanceof StatesError)
      return { status: "FAILED", error: err.error, cause: err.cause, transitions: run.transitions };
    if (err instanceof ExecutionAborted) return { status: "ABORTED", transitions: run.transitions };
    throw err;
  }
}

type Step = { output: unknown; next?: string };

class Execution {
  transitions = 0;
  private readonly clock: Clock;
  private readonly context: Record<string, unknown>;

  constructor(
    definition: Definition,
    input: unknown,
    private readonly o: ExecutionOptions,
  ) {
    if (definition.QueryLanguage !== "JSONata")
      throw new Error("only JSONata state machines are supported (QueryLanguage: JSONata)");
    this.clock = o.clock ?? realClock;
    const machine = o.stateMachineArn ?? "arn:aws:states:us-east-1:123456789012:stateMachine:kmslab";
    const name = o.executionName ?? "execution";
    this.context = {
      Execution: {
        Id: `${machine.replace(":stateMachine:", ":execution:")}:${name}`,
        Name: name,
        Input: input,
        StartTime: new Date(this.clock.now()).toISOString(),
      },
      StateMachine: { Id: machine, Name: machine.split(":").at(-1) },
    };
  }

  private emit(event: InterpreterEvent): void {
    this.o.onEvent?.(event);
  }

  async branch(branch: Branchlike, input: unknown, scope: Scope, signal?: AbortSignal): Promise<unknown> {
    let name: string | undefined = branch.StartAt;
    let data = input;
    while (name !== undefined) {
      if (signal?.aborted) throw new ExecutionAborted();
      const state = branch.States[name];
      if (!state) throw new Error(`no state named ${name}`);
      if (++this.transitions > (this.o.maxTransitions ?? 100_000))
        throw new StatesError("States.Runtime", `more than ${this.o.maxTransitions ?? 100_000} transitions`);
      this.o.onState?.(name, state);
      this.emit({ type: `${state.Type}StateEntered`, name, input: data });
      const out = await this.state(name, state, data, scope, signal);
      withinQuota(
        out.output,
        `The state/task '${name}' returned a result with a size exceeding the maximum number of bytes service limit.`,
      );
      if (state.Type !== "Fail") this.emit({ type: `${state.Type}StateExited`, name, output: out.output });
      data = out.output;
      name = out.next;
    }
    return data;
  }

  private states(
    name: string,
    input: unknown,
    extra: Record<string, unknown> = {},
    retryCount = 0,
  ): Record<string, unknown> {
    return {
      input,
      context: {
        ...this.context,
        State: { Name: name, EnteredTime: new Date(this.clock.now()).toISOString(), RetryCount: retryCount },
      },
      ...extra,
    };
  }

  /**
   * A field's value (`field` as Step Functions names it in its errors: `Arguments`, `Assign/x`,
   * `Choices[0]/Condition`). An expression that fails, or that gives nothing for a field, fails the
   * state with States.QueryEvaluationError, as Step Functions does: AWS does not leave the field
   * out ("The JSONata expression '$states.input.x' specified for the field 'Arguments/Input/x'
   * returned nothing (undefined).", https://states-language.net/#appendix-a).
   */
  private async value(template: unknown, bindings: Bindings, field: string): Promise<unknown> {
    try {
      return await render(template, bindings, field);
    } catch (err) {
      const state = (bindings.states as { context?: { State?: { Name?: string } } } | undefined)?.context
        ?.State?.Name;
      const where = state === undefined ? "" : `An error occurred while executing the state '${state}'. `;
      throw new StatesError("States.QueryEvaluationError", `${where}${(err as Error).message}`);
    }
  }

  private async assign(
    name: string,
    scope: Scope,
    assign: Record<string, unknown> | undefined,
    bindings: Bindings,
    prefix = "",
  ): Promise<void> {
    if (!assign) return;
    const values: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(assign))
      values[k] = await this.value(v, bindings, `${prefix}Assign/${k}`);
    withinQuota(
      values,
      `The state '${name}' assigned variables with a size exceeding the maximum number of bytes service limit.`,
    );
    scope.set(values);
  }

  private async state(
    name: string,
    state: State,
    input: unknown,
    scope: Scope,
    signal: AbortSignal | undefined,
  ): Promise<Step> {
    const vars = () => scope.all();
    const next = () => (state.End ? undefined : state.Next);
    switch (state.Type) {
      case "Pass": {
        const b = { ...vars(), states: this.states(name, input) };
        const output = state.Output === undefined ? input : await this.value(state.Output, b, "Output");
        await this.assign(name, scope, state.Assign, b);
        return { output, next: next() };
      }
      case "Succeed": {
        const b = { ...vars(), states: this.states(name, input) };
        return { output: state.Output === undefined ? input : await this.value(state.Output, b, "Output") };
      }
      case "Fail": {
        const b = { ...vars(), states: this.states(name, input) };
        const error = String((await this.value(state.Error ?? "States.Fail", b, "Error")) ?? "");
        const cause = String((await this.value(state.Cause ?? "", b, "Cause")) ?? "");
        throw new StatesError(error, cause);
      }
      case "Choice": {
        const b = { ...vars(), states: this.states(name, input) };
        for (const [i, rule] of (state.Choices ?? []).entries()) {
          const holds = await this.condition(rule.Condition, b, `Choices[${i}]/Condition`);
          if (!holds) continue;
          await this.assign(name, scope, rule.Assign, b, `Choices[${i}]/`);
          return {
            output:
              rule.Output === undefined ? input : await this.value(rule.Output, b, `Choices[${i}]/Output`),
            next: rule.Next,
          };
        }
        if (state.Default === undefined)
          throw new StatesError("States.NoChoiceMatched", `no choice of ${name} matched`);
        await this.assign(name, scope, state.Assign, b);
        return { output: input, next: state.Default };
      }
      case "Wait": {
        const b = { ...vars(), states: this.states(name, input) };
        let ms = 0;
        if (state.Seconds !== undefined) ms = Number(await this.value(state.Seconds, b, "Seconds")) * 1000;
        else if (state.Timestamp !== undefined)
          ms = Date.parse(String(await this.value(state.Timestamp, b, "Timestamp"))) - this.clock.now();
        if (!Number.isFinite(ms)) throw new StatesError("States.QueryEvaluationError", `${name}: bad wait`);
        if (ms > 0) await this.clock.sleep(ms, signal);
        if (signal?.aborted) {
          this.emit({ type: "WaitStateAborted", name });
          throw new ExecutionAborted();
        }
        await this.assign(name, scope, state.Assign, b);
        return {
          output: state.Output === undefined ? input : await this.value(state.Output, b, "Output"),
          next: next(),
        };
      }
      case "Task":
      case "Parallel":
      case "Map":
        return this.withRetry(name, state, input, scope, signal);
      default:
        throw new Error(`${name}: ${state.Type} states are not supported by this interpreter`);
    }
  }

  private async condition(condition: string, b: Bindings, field: string): Promise<boolean> {
    const v = isExpression(condition) ? await this.value(condition, b, field) : condition;
    if (typeof v !== "boolean")
      throw new StatesError(
        "States.QueryEvaluationError",
        `a Choice condition gave ${JSON.stringify(v)}, not a boolean`,
      );
    return v;
  }

  /** Task, Parallel and Map: the work, Retry on its errors, then Catch, then Output and Assign. */
  private async withRetry(
    name: string,
    state: State,
    input: unknown,
    scope: Scope,
    signal: AbortSignal | undefined,
  ): Promise<Step> {
    const attempts = new Map<Retrier, number>();
    let retries = 0;
    for (;;) {
      const b = { ...scope.all(), states: this.states(name, input, {}, retries) };
      try {
        const result =
          state.Type === "Task"
            ? await this.task(name, state, b, signal)
            : state.Type === "Parallel"
              ? await this.parallel(name, state, b, scope, signal)
              : await this.map(name, state, b, scope, signal);
        const rb = { ...b, states: { ...(b.states as object), result } };
        const output = state.Output === undefined ? result : await this.value(state.Output, rb, "Output");
        await this.assign(name, scope, state.Assign, rb);
        return { output, next: state.End ? undefined : state.Next };
      } catch (err) {
        if (!(err instanceof StatesError) || !catchable(err.error)) throw err;
        const retrier = (state.Retry ?? []).find((r) => matches(r.ErrorEquals, err.error));
        if (retrier) {
          const n = attempts.get(retrier) ?? 0;
          if (n < (retrier.MaxAttempts ?? 3)) {
            attempts.set(retrier, n + 1);
            retries++;
            await this.clock.sleep(this.delay(retrier, n), signal);
            if (signal?.aborted) throw new ExecutionAborted();
            continue;
          }
        }
        const catcher: Catcher | undefined = (state.Catch ?? []).find((c) =>
          matches(c.ErrorEquals, err.error),
        );
        if (!catcher) throw err;
        const errorOutput = { Error: err.error, Cause: err.cause };
        const cb = { ...b, states: { ...(b.states as object), errorOutput } };
        const at = `Catch[${(state.Catch ?? []).indexOf(catcher)}]/`;
        const output =
          catcher.Output === undefined ? errorOutput : await this.value(catcher.Output, cb, `${at}Output`);
        await this.assign(name, scope, catcher.Assign, cb, at);
        return { output, next: catcher.Next };
      }
    }
  }

  private delay(r: Retrier, attempt: number): number {
    const base = (r.IntervalSeconds ?? 1) * (r.BackoffRate ?? 2) ** attempt;
    const capped = r.MaxDelaySeconds !== undefined ? Math.min(base, r.MaxDelaySeconds) : base;
    const jittered = r.JitterStrategy === "FULL" ? (this.o.random ?? Math.random)() * capped : capped;
    return Math.round(jittered * 1000);
  }

  private async task(name: string, state: State, b: Bindings, signal?: AbortSignal): Promise<unknown> {
    if (!state.Resource) throw new Error(`${name}: a Task without Resource`);
    const resource = state.Resource;
    const args =
      state.Arguments === undefined ? undefined : await this.value(state.Arguments, b, "Arguments");
    const credentials =
      state.Credentials === undefined
        ? undefined
        : ((await this.value(state.Credentials, b, "Credentials")) as { RoleArn: string });
    const timeout =
      state.TimeoutSeconds === undefined
        ? undefined
        : Number(await this.value(state.TimeoutSeconds, b, "TimeoutSeconds"));
    if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0))
      throw new StatesError("States.Runtime", `${name}: TimeoutSeconds must be a positive integer`);
    withinQuota(
      args,
      `The state/task '${name}' has arguments with a size exceeding the maximum number of bytes service limit.`,
    );
    this.emit({
      type: "TaskScheduled",
      name,
      resource,
      arguments: args,
      ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}),
    });
    this.emit({ type: "TaskStarted", name, resource });
    const call = this.o.invoke({
      stateName: name,
      resource,
      arguments: args,
      ...(credentials ? { credentials } : {}),
    });
    try {
      const output = await this.race(call, timeout, signal);
      withinQuota(
        output,
        `The state/task '${resource}' returned a result with a size exceeding the maximum number of bytes service limit.`,
      );
      this.emit({ type: "TaskSucceeded", name, resource, output });
      return output;
    } catch (err) {
      if (err instanceof ExecutionAborted) this.emit({ type: "TaskStateAborted", name });
      else if (err instanceof StatesError)
        this.emit({
          type: err.error === "States.Timeout" ? "TaskTimedOut" : "TaskFailed",
          name,
          resource,
          error: err.error,
          cause: err.cause,
        });
      throw err;
    }
  }

  /** A Task's call against its timeout and the execution being stopped; the first to end wins. */
  private race<T>(call: Promise<T>, timeoutSeconds: number | undefined, signal?: AbortSignal): Promise<T> {
    if (timeoutSeconds === undefined && !signal) return call;
    const done = new AbortController();
    const contenders: Promise<T>[] = [call];
    if (timeoutSeconds !== undefined && this.clock.timeout) {
      contenders.push(
        this.clock.timeout(timeoutSeconds * 1000, done.signal).then(() => {
          throw new StatesError("States.Timeout", `the Task did not finish within ${timeoutSeconds} s`);
        }),
      );
    }
    if (signal) {
      contenders.push(
        new Promise<T>((_, reject) => {
          const stop = () => reject(new ExecutionAborted());
          if (signal.aborted) stop();
          else {
            signal.addEventListener("abort", stop, { once: true });
            done.signal.addEventListener("abort", () => signal.removeEventListener("abort", stop));
          }
        }),
      );
    }
    call.catch(() => {}); // a call that loses the race may still fail later
    return Promise.race(contenders).finally(() => done.abort());
  }

  private async parallel(
    name: string,
    state: State,
    b: Bindings,
    scope: Scope,
    signal?: AbortSignal,
  ): Promise<unknown[]> {
    const input =
      state.Arguments === undefined
        ? (b.states as { input: unknown }).input
        : await this.value(state.Arguments, b, "Arguments");
    const branches = state.Branches ?? [];
    this.emit({ type: "ParallelStateStarted", name });
    try {
      const out = await this.all(branches.length, 0, signal, (i, s) =>
        this.branch(branches[i]!, input, new Scope(scope), s),
      );
      this.emit({ type: "ParallelStateSucceeded", name });
      return out;
    } catch (err) {
      this.emit({
        type: err instanceof ExecutionAborted ? "ParallelStateAborted" : "ParallelStateFailed",
        name,
      });
      throw err;
    }
  }

  private async map(
    name: string,
    state: State,
    b: Bindings,
    scope: Scope,
    signal?: AbortSignal,
  ): Promise<unknown[]> {
    const processor = (state.ItemProcessor ?? state.Iterator) as Branchlike | undefined;
    if (!processor) throw new Error(`${name}: a Map without ItemProcessor`);
    const states = b.states as Record<string, unknown>;
    const items = state.Items === undefined ? states.input : await this.value(state.Items, b, "Items");
    if (!Array.isArray(items))
      throw new StatesError("States.QueryEvaluationError", `${name}: Items must be an array`);
    const concurrency =
      state.MaxConcurrency === undefined
        ? 0
        : Number(await this.value(state.MaxConcurrency, b, "MaxConcurrency"));
    this.emit({ type: "MapStateStarted", name, length: items.length });
    try {
      const out = await this.all(items.length, concurrency, signal, async (index, s) => {
        const context = {
          ...(states.context as object),
          Map: { Item: { Index: index, Value: items[index] } },
        };
        const itemInput =
          state.ItemSelector === undefined
            ? items[index]
            : await this.value(state.ItemSelector, { ...b, states: { ...states, context } }, "ItemSelector");
        this.emit({ type: "MapIterationStarted", name, index });
        try {
          const result = await this.branch(processor, itemInput, new Scope(scope), s);
          this.emit({ type: "MapIterationSucceeded", name, index });
          return result;
        } catch (err) {
          this.emit({
            type: err instanceof ExecutionAborted ? "MapIterationAborted" : "MapIterationFailed",
            name,
            index,
          });
          throw err;
        }
      });
      this.emit({ type: "MapStateSucceeded", name });
      return out;
    } catch (err) {
      this.emit({ type: err instanceof ExecutionAborted ? "MapStateAborted" : "MapStateFailed", name });
      throw err;
    }
  }

  /**
   * Runs `n` branches or iterations, `concurrency` at a time (0: all at once); the first to fail
   * stops the others (they see their signal abort) and its error is the result.
   */
  private async all<T>(
    n: number,
    concurrency: number,
    signal: AbortSignal | undefined,
    run: (index: number, signal: AbortSignal) => Promise<T>,
  ): Promise<T[]> {
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const results: T[] = new Array(n);
    let failure: { error: unknown } | undefined;
    let next = 0;
    const worker = async () => {
      while (next < n && !failure && !stop.signal.aborted) {
        const i = next++;
        try {
          results[i] = await run(i, stop.signal);
        } catch (error) {
          if (!failure) failure = { error };
          stop.abort();
        }
      }
    };
    const width = concurrency > 0 ? Math.min(concurrency, n) : n;
    try {
      await Promise.all(Array.from({ length: width }, worker));
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    if (signal?.aborted) throw new ExecutionAborted();
    if (failure) throw failure.error;
    return results;
  }
}

/**
 * Step Functions' payload quota: 262,144 bytes of UTF-8 JSON for a state's input and output and a
 * Task's arguments and result (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html),
 * and for the variables one state assigns ("up to 256 KiB per state",
 * https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html). Past it the
 * execution fails with States.DataLimitExceeded, which no Retry or Catch handles. The Task-result
 * wording is AWS's as quoted in public reports; the others follow it and are unconfirmed.
 */
export const MAX_PAYLOAD_BYTES = 262_144;

function withinQuota(value: unknown, cause: string): void {
  if (value === undefined) return;
  const text = JSON.stringify(value);
  // UTF-8 takes one to three bytes per UTF-16 unit: the bytes are counted only when the length leaves it open.
  if (text.length <= MAX_PAYLOAD_BYTES / 3) return;
  if (text.length > MAX_PAYLOAD_BYTES || Buffer.byteLength(text) > MAX_PAYLOAD_BYTES)
    throw new StatesError("States.DataLimitExceeded", cause);
}

/** Errors no Retry or Catch handles (Step Functions ends the execution on them). */
function catchable(error: string): boolean {
  return error !== "States.Runtime" && error !== "States.DataLimitExceeded";
}

/** Whether an error name is matched by an ErrorEquals list (States.ALL matches all but nothing else is wild). */
function matches(names: string[], error: string): boolean {
  return (
    names.includes(error) ||
    names.includes("States.ALL") ||
    (names.includes("States.TaskFailed") && error !== "States.Timeout")
  );
}

/** Every state of a definition, nested branches included, with the branch that holds it. */
export function allStates(definition: Branchlike): [string, State][] {
  const out: [string, State][] = [];
  for (const [name, state] of Object.entries(definition.States)) {
    out.push([name, state]);
    for (const b of state.Branches ?? []) out.push(...allStates(b));
    if (state.ItemProcessor) out.push(...allStates(state.ItemProcessor));
  }
  return out;
}

/** Evaluates one `{% %}` expression as the interpreter would (for tests and the IAM export). */
export async function evaluateIn(expression: string, bindings: Bindings): Promise<unknown> {
  return evaluate(expression, bindings);
}
