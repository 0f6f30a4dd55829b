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
 * through it; a simulated Step Functions service can dispatch the Tasks to the simulator.
 * Map states and JSONPath are not supported.
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
  /** Waits (a virtual clock just moves on). */
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

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
  random?: () => number;
}

export interface ExecutionResult {
  status: "SUCCEEDED" | "FAILED";
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
    const output = await run.branch(definition, input, new Scope());
    return { status: "SUCCEEDED", output, transitions: run.transitions };
  } catch (err) {
    if (err instanceof StatesError)
      return { status: "FAILED", error: err.error, cause: err.cause, transitions: run.transitions };
    throw err;
  }
}

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

  async branch(branch: Branchlike, input: unknown, scope: Scope): Promise<unknown> {
    let name: string | undefined = branch.StartAt;
    let data = input;
    while (name !== undefined) {
      const state = branch.States[name];
      if (!state) throw new Error(`no state named ${name}`);
      if (++this.transitions > (this.o.maxTransitions ?? 100_000))
        throw new StatesError("States.Runtime", `more than ${this.o.maxTransitions ?? 100_000} transitions`);
      this.o.onState?.(name, state);
      const out = await this.state(name, state, data, scope);
      data = out.output;
      name = out.next;
    }
    return data;
  }

  private states(name: string, input: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      input,
      context: {
        ...this.context,
        State: { Name: name, EnteredTime: new Date(this.clock.now()).toISOString(), RetryCount: 0 },
      },
      ...extra,
    };
  }

  private async value(template: unknown, bindings: Bindings): Promise<unknown> {
    try {
      return await render(template, bindings);
    } catch (err) {
      throw new StatesError("States.QueryEvaluationError", (err as Error).message);
    }
  }

  private async assign(
    scope: Scope,
    assign: Record<string, unknown> | undefined,
    bindings: Bindings,
  ): Promise<void> {
    if (!assign) return;
    const values: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(assign)) values[k] = await this.value(v, bindings);
    scope.set(values);
  }

  private async state(
    name: string,
    state: State,
    input: unknown,
    scope: Scope,
  ): Promise<{ output: unknown; next?: string }> {
    const vars = () => scope.all();
    const next = () => (state.End ? undefined : state.Next);
    switch (state.Type) {
      case "Pass": {
        const b = { ...vars(), states: this.states(name, input) };
        const output = state.Output === undefined ? input : await this.value(state.Output, b);
        await this.assign(scope, state.Assign, b);
        return { output, next: next() };
      }
      case "Succeed": {
        const b = { ...vars(), states: this.states(name, input) };
        return { output: state.Output === undefined ? input : await this.value(state.Output, b) };
      }
      case "Fail": {
        const b = { ...vars(), states: this.states(name, input) };
        const error = String((await this.value(state.Error ?? "States.Fail", b)) ?? "");
        const cause = String((await this.value(state.Cause ?? "", b)) ?? "");
        throw new StatesError(error, cause);
      }
      case "Choice": {
        const b = { ...vars(), states: this.states(name, input) };
        for (const rule of state.Choices ?? []) {
          const holds = await this.condition(rule.Condition, b);
          if (!holds) continue;
          await this.assign(scope, rule.Assign, b);
          return {
            output: rule.Output === undefined ? input : await this.value(rule.Output, b),
            next: rule.Next,
          };
        }
        if (state.Default === undefined)
          throw new StatesError("States.NoChoiceMatched", `no choice of ${name} matched`);
        await this.assign(scope, state.Assign, b);
        return { output: input, next: state.Default };
      }
      case "Wait": {
        const b = { ...vars(), states: this.states(name, input) };
        let ms = 0;
        if (state.Seconds !== undefined) ms = Number(await this.value(state.Seconds, b)) * 1000;
        else if (state.Timestamp !== undefined)
          ms = Date.parse(String(await this.value(state.Timestamp, b))) - this.clock.now();
        if (!Number.isFinite(ms)) throw new StatesError("States.QueryEvaluationError", `${name}: bad wait`);
        if (ms > 0) await this.clock.sleep(ms);
        await this.assign(scope, state.Assign, b);
        return {
          output: state.Output === undefined ? input : await this.value(state.Output, b),
          next: next(),
        };
      }
      case "Task":
      case "Parallel":
        return this.withRetry(name, state, input, scope);
      default:
        throw new Error(`${name}: ${state.Type} states are not supported by this interpreter`);
    }
  }

  private async condition(condition: string, b: Bindings): Promise<boolean> {
    const v = isExpression(condition) ? await this.value(condition, b) : condition;
    if (typeof v !== "boolean")
      throw new StatesError(
        "States.QueryEvaluationError",
        `a Choice condition gave ${JSON.stringify(v)}, not a boolean`,
      );
    return v;
  }

  /** Task and Parallel: the work, Retry on its errors, then Catch, then Output and Assign. */
  private async withRetry(
    name: string,
    state: State,
    input: unknown,
    scope: Scope,
  ): Promise<{ output: unknown; next?: string }> {
    const attempts = new Map<Retrier, number>();
    for (;;) {
      const b = { ...scope.all(), states: this.states(name, input) };
      try {
        const result =
          state.Type === "Task" ? await this.task(name, state, b) : await this.parallel(state, b, scope);
        const rb = { ...b, states: { ...(b.states as object), result } };
        const output = state.Output === undefined ? result : await this.value(state.Output, rb);
        await this.assign(scope, state.Assign, rb);
        return { output, next: state.End ? undefined : state.Next };
      } catch (err) {
        if (!(err instanceof StatesError)) throw err;
        const retrier = (state.Retry ?? []).find((r) => matches(r.ErrorEquals, err.error));
        if (retrier) {
          const n = attempts.get(retrier) ?? 0;
          if (n < (retrier.MaxAttempts ?? 3)) {
            attempts.set(retrier, n + 1);
            await this.clock.sleep(this.delay(retrier, n));
            continue;
          }
        }
        const catcher: Catcher | undefined = (state.Catch ?? []).find((c) =>
          matches(c.ErrorEquals, err.error),
        );
        if (!catcher) throw err;
        const errorOutput = { Error: err.error, Cause: err.cause };
        const cb = { ...b, states: { ...(b.states as object), errorOutput } };
        const output = catcher.Output === undefined ? errorOutput : await this.value(catcher.Output, cb);
        await this.assign(scope, catcher.Assign, cb);
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

  private async task(name: string, state: State, b: Bindings): Promise<unknown> {
    if (!state.Resource) throw new Error(`${name}: a Task without Resource`);
    const args = state.Arguments === undefined ? undefined : await this.value(state.Arguments, b);
    const credentials =
      state.Credentials === undefined
        ? undefined
        : ((await this.value(state.Credentials, b)) as { RoleArn: string });
    return this.o.invoke({
      stateName: name,
      resource: state.Resource,
      arguments: args,
      ...(credentials ? { credentials } : {}),
    });
  }

  private async parallel(state: State, b: Bindings, scope: Scope): Promise<unknown[]> {
    const input =
      state.Arguments === undefined
        ? (b.states as { input: unknown }).input
        : await this.value(state.Arguments, b);
    return Promise.all((state.Branches ?? []).map((branch) => this.branch(branch, input, new Scope(scope))));
  }
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
  }
  return out;
}

/** Evaluates one `{% %}` expression as the interpreter would (for tests and the IAM export). */
export async function evaluateIn(expression: string, bindings: Bindings): Promise<unknown> {
  return evaluate(expression, bindings);
}
