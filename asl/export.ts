import { TRANSIENT_CODES } from "../machines/aws.js";
import { retryPolicyFor } from "../machines/runner.js";
import { PAGE_APPEND, ROLE_ARN, x } from "../steps/build.js";
import {
  ANY_ERROR,
  type CallStep,
  type Check,
  type PollStep,
  type ProbeStep,
  type RequireStep,
  type StageDef,
  type Step,
} from "../steps/dsl.js";
import { evaluate, expressionBody, isExpression } from "../steps/expr.js";
import { parseParams } from "../steps/params.js";
import { allSteps, STAGES } from "../steps/registry.js";
import { aslErrorNames, camel, transientErrorNames } from "./sdk.js";
import type { Catcher, Definition, Retrier, State } from "./types.js";

/**
 * The lab as an AWS Step Functions state machine (Amazon States Language, JSONata mode), generated
 * from the same stage registry as the XState machine: one renderer per step kind. A stage is a
 * branch of a Parallel state (so its variables are its own, as a stage runner's are): the
 * precondition (Tasks and Choices into a Fail when it does not hold), the run (its AWS calls as
 * `aws-sdk` Tasks, polls as Wait + Choice loops within a budget, the key user's calls with Task
 * `Credentials`), the verification (Tasks, a score per check, a Choice on the total), and the
 * compensation the run's Catch leads to (its completed effects undone newest first, as `Assign`ed in
 * `effectsDone`) before a Fail naming the stage. Stages whose dependencies are met together run in one Parallel state.
 * Execution input = the lab parameters (as a config file holds them).
 */

export interface ExportOptions {
  /** The parameter defaults baked into the definition (the execution input overrides them). */
  defaults?: Partial<ParamDefaults>;
  stages?: readonly StageDef[];
}

export interface ParamDefaults {
  keyAlias: string;
  keyUserRole: string;
  trailName: string;
  objectKey: string;
  suffix: string;
  trailWaitSeconds: number;
  propagationWaitSeconds: number;
  pollSeconds: number;
}

/** lab.md's defaults, as steps/params.ts gives them. */
export const PARAM_DEFAULTS: ParamDefaults = (() => {
  const { region: _r, logBucket: _l, dataBucket: _d, ...rest } = parseParams({});
  return rest;
})();

/** Where a state came from: the drift test and the IAM export read it. */
export type Phase = "precondition" | "run" | "verify" | "undo";

export interface StateOrigin {
  stageId: string;
  phase: Phase;
  stepId: string;
  /** Set on the Tasks that stand in for a probe Step Functions cannot make. */
  replaces?: string;
}

export interface Export {
  definition: Definition;
  origins: Record<string, StateOrigin>;
  /** What the export could not carry over as the local engine does it (said in Comments too). */
  notes: string[];
}

export const SERVICE_PREFIX = "arn:aws:states:::aws-sdk:";
export const FAIL = {
  blocked: "kmslab.Blocked",
  stage: "kmslab.StageFailed",
  verification: "kmslab.VerificationFailed",
  gaveUp: "kmslab.GaveUp",
  exists: "kmslab.AlreadyExists",
  teardown: "kmslab.TeardownIncomplete",
  noRun: "kmslab.NoRunId",
};

/** JSONata that resolves the execution input into `$params` exactly as steps/params.ts resolveParams does. */
function paramsExpression(defaults: ParamDefaults): string {
  return x(`(
  $in := $type($states.input) = "object" ? $states.input : {};
  $arn := $split($states.context.StateMachine.Id, ":");
  $p := $merge([${JSON.stringify(defaults)}, $in]);
  $region := $exists($in.region) ? $in.region : $arn[3];
  $account := $arn[4];
  $s := $p.suffix;
  {
    "account": $account,
    "region": $region,
    "keyAlias": $p.keyAlias & $s,
    "keyUserRole": $p.keyUserRole & $s,
    "trailName": $p.trailName & $s,
    "logBucket": $exists($in.logBucket) ? $in.logBucket : "kmslab-trail-" & $account & "-" & $region & $s,
    "dataBucket": $exists($in.dataBucket) ? $in.dataBucket : "kmslab-data-" & $account & "-" & $region & $s,
    "objectKey": $p.objectKey,
    "suffix": $s,
    "trailWaitSeconds": $p.trailWaitSeconds,
    "propagationWaitSeconds": $p.propagationWaitSeconds,
    "pollSeconds": $p.pollSeconds
  }
)`);
}

/** `{% E %}` whose undefined becomes null, as the local engine assigns it. */
function orNull(template: string): string {
  const m = /^\{%([\s\S]*)%\}$/.exec(template);
  if (!m) return template;
  return x(`($v := (${m[1]!.trim()}); $exists($v) ? $v : null)`);
}

function assignOrNull(assign: Record<string, string> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(assign ?? {}).map(([k, v]) => [k, orNull(v)]));
}

function nulls(assign: Record<string, string> | undefined): Record<string, null> {
  return Object.fromEntries(Object.keys(assign ?? {}).map((k) => [k, null]));
}

const varName = (id: string) => id.replace(/[^A-Za-z0-9]+(.)/g, (_, c: string) => c.toUpperCase());

/** Retry on throttling and 5xx, as the local engine does (backoff with full jitter). */
export function transientRetrier(step: Pick<CallStep, "service" | "action">): Retrier[] {
  const errors = transientErrorNames(step.service, TRANSIENT_CODES);
  if (errors.length === 0) return [];
  const policy = retryPolicyFor(step.service, step.action);
  return [
    {
      ErrorEquals: [...new Set(errors)],
      IntervalSeconds: Math.max(1, Math.round(policy.baseMs / 1000)),
      BackoffRate: 2,
      MaxAttempts: policy.maxAttempts - 1,
      MaxDelaySeconds: Math.round(policy.maxDelayMs / 1000),
      JitterStrategy: "FULL",
    },
  ];
}

/** Attempts of a 2 s, ×2, ≤30 s backoff that fill `budget` seconds. */
function attemptsWithin(budget: number): number {
  let total = 0;
  let delay = 2;
  let attempts = 0;
  while (total < budget && attempts < 100) {
    total += delay;
    delay = Math.min(30, delay * 2);
    attempts++;
  }
  return Math.max(1, attempts);
}

interface Ctx {
  stageId: string;
  prefix: string;
  /** Where an unexpected error goes, and what is assigned on the way (from a JSONata error object). */
  onError: { next: string; assign: (error: string) => Record<string, unknown> };
  phase: Phase;
  /** Effects append their step id to `effectsDone` (run phase only). */
  trackEffects: boolean;
}

/** What every branch's builder shares: state names are unique across the whole state machine. */
interface Shared {
  origins: Record<string, StateOrigin>;
  names: Set<string>;
  budgets: Map<string, number>;
}

class Builder {
  readonly states: Record<string, State> = {};
  constructor(readonly shared: Shared) {}

  add(name: string, state: State, origin?: StateOrigin): string {
    if (this.shared.names.has(name)) throw new Error(`ASL export: state name ${name} is used twice`);
    this.shared.names.add(name);
    if (name.length > 80) throw new Error(`ASL export: state name ${name} is longer than 80 characters`);
    this.states[name] = state;
    if (origin) this.shared.origins[name] = origin;
    return name;
  }

  steps(steps: readonly Step[], next: string, ctx: Ctx): string {
    let entry = next;
    for (const step of [...steps].reverse()) entry = this.step(step, entry, ctx);
    return entry;
  }

  step(step: Step, next: string, ctx: Ctx, origin?: Partial<StateOrigin>): string {
    switch (step.kind) {
      case "call":
        return this.call(step, next, ctx, origin);
      case "require":
        return this.require(step, next, ctx);
      case "probe":
        return this.probe(step, next, ctx);
      case "poll":
        return this.poll(step, next, ctx);
    }
  }

  private catchAll(ctx: Ctx): Catcher {
    const assign = ctx.onError.assign("$states.errorOutput");
    return {
      ErrorEquals: ["States.ALL"],
      ...(Object.keys(assign).length > 0 ? { Assign: assign } : {}),
      Next: ctx.onError.next,
    };
  }

  call(step: CallStep, next: string, ctx: Ctx, origin?: Partial<StateOrigin>): string {
    const name = `${ctx.prefix}.${step.id}`;
    // Where Step Functions' name for an error is unsure (S3's AccessDenied), every name it may give.
    const errors = (codes: string[]) => [...new Set(codes.flatMap((c) => aslErrorNames(step.service, c)))];
    const effect = step.effect !== undefined && ctx.trackEffects;
    const recorded = effect ? { effectsDone: x(`$append($effectsDone, ["${step.id}"])`) } : {};
    const catchers: Catcher[] = [];
    const seen = new Set<string>();
    const addCatcher = (c: Catcher) => {
      const fresh = c.ErrorEquals.filter((e) => !seen.has(e));
      for (const e of fresh) seen.add(e);
      if (fresh.length > 0) catchers.push({ ...c, ErrorEquals: fresh });
    };
    if (step.expectError)
      addCatcher({
        ErrorEquals: errors(step.expectError.errors),
        Assign: assignOrNull(step.expectError.assign),
        Next: next,
      });
    if (step.tolerate)
      addCatcher({ ErrorEquals: errors(step.tolerate), Assign: nulls(step.assign), Next: next });
    const exists = step.effect?.exists;
    if (exists) {
      const owned = this.add(
        `${name} owned?`,
        {
          Type: "Choice",
          Comment: "the resource is there already: this run's (a repeated call), or someone else's",
          Choices: [{ Condition: x(`(${exists.owned}) = true`), Next: next, Assign: recorded }],
          Default: this.add(`${name} not ours`, {
            Type: "Pass",
            Assign: ctx.onError.assign(
              `{"Error": "${FAIL.exists}", "Cause": ${JSON.stringify(`${step.title}: it already exists and was not made by this run`)}}`,
            ),
            Next: ctx.onError.next,
          }),
        },
        { stageId: ctx.stageId, phase: ctx.phase, stepId: step.id },
      );
      const read = this.steps(exists.read, owned, { ...ctx, prefix: `${name}.exists`, trackEffects: false });
      addCatcher({ ErrorEquals: errors(exists.errors), Next: read });
    }
    catchers.push(this.catchAll(ctx));
    const retry = [...transientRetrier(step)];
    if (step.retry) {
      const key = `${ctx.stageId}.${step.id}`;
      const budget = this.shared.budgets.get(key) ?? 60;
      const any = step.retry.errors.includes(ANY_ERROR);
      const notYet: Retrier = {
        ErrorEquals: any ? ["States.ALL"] : errors(step.retry.errors),
        IntervalSeconds: 2,
        BackoffRate: 2,
        MaxAttempts: attemptsWithin(budget),
        MaxDelaySeconds: 30,
        JitterStrategy: "FULL",
      };
      // States.ALL must be alone, in the last Retrier.
      if (any) retry.push(notYet);
      else retry.unshift(notYet);
    }
    const task: State = {
      Type: "Task",
      Comment: step.title,
      Resource: `${SERVICE_PREFIX}${step.service}:${camel(step.action)}`,
      Arguments: step.args as Record<string, unknown>,
      ...(step.as === "keyUser" ? { Credentials: { RoleArn: x(ROLE_ARN) } } : {}),
      ...(retry.length > 0 ? { Retry: retry } : {}),
      Catch: catchers,
      Assign: step.expectError
        ? nulls(step.expectError.assign)
        : { ...assignOrNull(step.assign), ...recorded },
      Next: next,
    };
    if (Object.keys(task.Assign as object).length === 0) delete task.Assign;
    const from: StateOrigin = { stageId: ctx.stageId, phase: ctx.phase, stepId: step.id, ...origin };
    if (step.pages) this.pages(step, name, task, next, from);
    else this.add(name, task, from);
    if (step.when === undefined) return name;
    const skipped = this.add(`${name} skipped`, {
      Type: "Pass",
      Comment: `${step.title}: not needed`,
      ...(step.assign ? { Assign: nulls(step.assign) } : {}),
      Next: next,
    });
    return this.add(`${name}?`, {
      Type: "Choice",
      Comment: `whether to ${step.title}`,
      Choices: [{ Condition: x(`(${step.when}) = true`), Next: name }],
      Default: skipped,
    });
  }

  /**
   * A paged read (CallStep.pages) as Step Functions can make it: the Task, then a Choice that sends
   * it again with the `NextToken` it answered, while there is one and fewer than `max` pages were
   * read. Each Task appends what its page gives to the step's variables (PAGE_APPEND), as the local
   * engine does page by page.
   */
  private pages(step: CallStep, name: string, task: State, next: string, from: StateOrigin): void {
    if (step.expectError || step.effect)
      throw new Error(`ASL export: ${name}: a paged read can neither expect an error nor be an effect`);
    const v = varName(step.id);
    const token = `${v}NextToken`;
    const read = `${v}PagesRead`;
    const more = `${name} more pages?`;
    const again = `${name} next page`;
    const assign = (first: boolean) => ({
      ...Object.fromEntries(
        Object.entries(step.assign ?? {}).map(([k, t]) => [
          k,
          x(PAGE_APPEND(first ? "[]" : `$${k}`, `(${expressionBody(t)})`)),
        ]),
      ),
      [token]: x("$exists($states.result.NextToken) ? $states.result.NextToken : null"),
      [read]: first ? 1 : x(`$${read} + 1`),
    });
    const args = step.args;
    this.add(name, { ...task, Assign: assign(true), Next: more }, from);
    this.add(
      again,
      {
        ...structuredClone(task),
        Comment: `${step.title} (the next page)`,
        Arguments: isExpression(args)
          ? x(`$merge([(${expressionBody(args)}), {"NextToken": $${token}}])`)
          : { ...(args as Record<string, unknown>), NextToken: x(`$${token}`) },
        Assign: assign(false),
        Next: more,
      },
      from,
    );
    this.add(more, {
      Type: "Choice",
      Comment: `every page, at most ${step.pages!.max}`,
      Choices: [
        { Condition: x(`$type($${token}) = "string" and $${read} < ${step.pages!.max}`), Next: again },
      ],
      Default: next,
    });
  }

  require(step: RequireStep, next: string, ctx: Ctx): string {
    const blocked = this.add(`${ctx.stageId} blocked: ${step.id}`, {
      Type: "Fail",
      Comment: `the precondition "${step.title}" does not hold: the stage is blocked`,
      Error: FAIL.blocked,
      Cause: x(`"${ctx.stageId}: " & (${step.message})`),
    });
    return this.add(`${ctx.prefix}.${step.id}`, {
      Type: "Choice",
      Comment: step.title,
      Choices: [{ Condition: x(`(${step.condition}) = true`), Next: next }],
      Default: blocked,
    });
  }

  probe(step: ProbeStep, next: string, ctx: Ctx): string {
    const name = `${ctx.prefix}.${step.id}`;
    let after = next;
    if (step.asl.assign)
      after = this.add(`${name} (as Step Functions can)`, {
        Type: "Pass",
        Comment: step.asl.comment,
        Assign: assignOrNull(step.asl.assign),
        Next: next,
      });
    let entry = after;
    for (const r of [...step.asl.replacement].reverse()) {
      entry = this.call(r, entry, ctx, { replaces: step.id });
      const state = this.states[`${ctx.prefix}.${r.id}`]!;
      state.Comment = `${r.title} — ${step.asl.comment}`;
    }
    return entry;
  }

  poll(step: PollStep, next: string, ctx: Ctx): string {
    const name = `${ctx.prefix}.${step.id}`;
    const deadline = `${varName(step.id)}Deadline`;
    const gaveUp = this.add(`${name} gave up`, {
      Type: "Pass",
      Assign: ctx.onError.assign(
        `{"Error": "${FAIL.gaveUp}", "Cause": ${JSON.stringify(`${step.title}: gave up waiting for ${step.waitingFor} after `)} & $string(${step.budgetSeconds}) & " s"}`,
      ),
      Next: ctx.onError.next,
    });
    const wait = `${name} wait`;
    const done = this.add(`${name} done?`, {
      Type: "Choice",
      Comment: `until ${step.waitingFor}`,
      Choices: [
        { Condition: x(`(${step.until}) = true`), Next: next },
        { Condition: x(`$toMillis($states.context.State.EnteredTime) >= $${deadline}`), Next: gaveUp },
      ],
      Default: wait,
    });
    // Poll bodies keep the stage's prefix (their step ids are unique in it): names stay short.
    const body = this.steps(step.steps, done, ctx);
    this.add(wait, {
      Type: "Wait",
      Comment: `waiting for ${step.waitingFor}`,
      Seconds: x(step.intervalSeconds),
      Next: body,
    });
    return this.add(name, {
      Type: "Pass",
      Comment: `${step.title} (within ${step.budgetSeconds} seconds)`,
      Assign: {
        [deadline]: x(`$toMillis($states.context.State.EnteredTime) + (${step.budgetSeconds}) * 1000`),
      },
      Next: body,
    });
  }

  /** One stage as a Parallel branch's states; returns the branch's start. */
  stage(def: StageDef): string {
    const id = def.id;
    const failed = this.add(`${id} failed`, {
      Type: "Fail",
      Comment: `stage ${id} failed; its completed effects were undone`,
      Error: FAIL.stage,
      Cause: x(
        `"${id}: " & $failure.Cause & ($count($undoFailures) > 0 ? "; rolling back failed too: " & $join($undoFailures.Cause, "; ") : "")`,
      ),
    });
    // Compensation: the run's effects newest first, each only if it completed.
    const effects = allSteps(def.run).filter(
      (s): s is CallStep => s.kind === "call" && s.effect !== undefined && !isExistsRead(def, s),
    );
    let compensate = failed;
    for (const effect of effects) {
      const undoPrefix = `${id}.undo.${effect.id}`;
      const undo = this.steps(effect.effect!.undo, compensate, {
        stageId: id,
        phase: "undo",
        prefix: undoPrefix,
        onError: { next: compensate, assign: recordUndoFailure },
        trackEffects: false,
      });
      compensate = this.add(`${undoPrefix}?`, {
        Type: "Choice",
        Comment: `undo "${effect.title}" if it was done`,
        Choices: [{ Condition: x(`"${effect.id}" in $effectsDone`), Next: undo }],
        Default: compensate,
      });
    }
    const onError = { next: compensate, assign: (e: string) => ({ failure: x(e) }) };
    // Verification: the checks one after another in the stage's scope, each assigning its points.
    // (Not a Parallel of checks: a branch's variables would share names with the stage's, which
    // Step Functions may refuse across scopes; the local engine runs them at the same time, each
    // with fresh variables — every check's reads assign what its score reads first.)
    const checkVars = def.verify.map((c) => `${varName(c.id)}Points`);
    const sum = `$sum([${checkVars.map((v) => `$${v}`).join(", ")}])`;
    const passed = this.add(`${id} passed`, {
      Type: "Pass",
      Output: { stage: id, points: x(sum), maxPoints: def.points },
      End: true,
    });
    const notPassed = this.add(`${id} verification failed`, {
      Type: "Fail",
      Error: FAIL.verification,
      Cause: x(`"${id}: " & $string(${sum}) & " of ${def.points} points"`),
    });
    let verify = this.add(`${id} verified?`, {
      Type: "Choice",
      Choices: [{ Condition: x(`${sum} >= ${def.points}`), Next: passed }],
      Default: notPassed,
    });
    for (let i = def.verify.length - 1; i >= 0; i--)
      verify = this.check(def, def.verify[i]!, checkVars[i]!, verify);
    const run = this.steps(def.run, verify, {
      stageId: id,
      phase: "run",
      prefix: `${id}.run`,
      onError,
      trackEffects: true,
    });
    const pre = this.steps(def.precondition, run, {
      stageId: id,
      phase: "precondition",
      prefix: `${id}.pre`,
      onError,
      trackEffects: false,
    });
    return this.add(id, {
      Type: "Pass",
      Comment: `stage ${id}: ${def.title} (${def.points} points)`,
      Assign: { effectsDone: [], undoFailures: [] },
      Next: pre,
    });
  }

  private check(def: StageDef, c: Check, variable: string, next: string): string {
    const prefix = `${def.id}.verify.${c.id}`;
    const score = this.add(`${prefix} score`, {
      Type: "Pass",
      Comment: c.title,
      // A score that gives nothing is 0, as in the local engine (an array constructor would drop it,
      // and $min of the points alone is full marks).
      Assign: {
        [variable]: x(`($s := $number(${c.score}); $exists($s) ? $max([0, $min([${c.points}, $s])]) : 0)`),
      },
      Next: next,
    });
    // A read that fails scores the check 0, as in the local engine.
    const zero = this.add(`${prefix} unreadable`, {
      Type: "Pass",
      Comment: `${c.title}: a read failed, the check scores 0`,
      Assign: { [variable]: 0 },
      Next: next,
    });
    return this.steps(c.read, score, {
      stageId: def.id,
      phase: "verify",
      prefix,
      onError: { next: zero, assign: () => ({}) },
      trackEffects: false,
    });
  }
}

function isExistsRead(def: StageDef, step: CallStep): boolean {
  return allSteps(def.run).some(
    (s) => s.kind === "call" && s.effect?.exists?.read.includes(step) === true && s !== step,
  );
}

/** Dependency levels: a stage runs in the Parallel state after all of its dependencies'. */
export function levels(stages: readonly StageDef[]): StageDef[][] {
  const level = new Map<string, number>();
  const out: StageDef[][] = [];
  for (const s of stages) {
    const l = Math.max(-1, ...s.dependsOn.map((d) => level.get(d) ?? -1)) + 1;
    level.set(s.id, l);
    out[l] = [...(out[l] ?? []), s];
  }
  return out;
}

/** Budgets of `retry` steps, evaluated with the default parameters (ASL Retry fields are numbers). */
async function retryBudgets(
  stages: readonly StageDef[],
  defaults: ParamDefaults,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const s of stages)
    for (const step of allSteps([...s.precondition, ...s.run]))
      if (step.kind === "call" && step.retry)
        out.set(
          `${s.id}.${step.id}`,
          Number(await evaluate(x(step.retry.budgetSeconds), { params: defaults, runId: "" })),
        );
  return out;
}

/**
 * Expressions on one line: the stage modules write long JSONata over several lines, and ASL tools
 * (asl-validator among them) match `{% ... %}` line by line. JSONata ignores the whitespace.
 */
export function compact<T>(value: T): T {
  if (typeof value === "string")
    return (/^\{%[\s\S]*%\}$/.test(value) ? value.replace(/\s*\n\s*/g, " ") : value) as T;
  if (Array.isArray(value)) return value.map(compact) as T;
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, compact(v)])) as T;
  return value;
}

export function header(defaults: ParamDefaults, comment: string) {
  return {
    Comment: comment,
    QueryLanguage: "JSONata" as const,
    StartAt: "Parameters",
    parameters: {
      Type: "Pass",
      Comment:
        "the lab parameters: the execution input (as a kmslab config file holds them) over the defaults; account and Region are the state machine's",
      Assign: {
        params: paramsExpression(defaults),
        runId: x("$states.context.Execution.Name"),
      },
    } satisfies State,
  };
}

/** The lab's state machine. */
export async function exportLab(options: ExportOptions = {}): Promise<Export> {
  const stages = options.stages ?? STAGES;
  const defaults = { ...PARAM_DEFAULTS, ...options.defaults };
  const origins: Record<string, StateOrigin> = {};
  const top: Record<string, State> = {};
  const h = header(
    defaults,
    "kmslab: the AWS KMS security lab (generated from the stage registry by kmslab export asl)",
  );
  const layers = levels(stages);
  const layerName = (l: StageDef[]) => `stages: ${l.map((s) => s.id).join(", ")}`;
  top.Parameters = {
    ...h.parameters,
    Assign: { ...h.parameters.Assign, stages: [] },
    Next: layerName(layers[0]!),
  };
  const shared: Shared = { origins, names: new Set(), budgets: await retryBudgets(stages, defaults) };
  for (const [i, layer] of layers.entries()) {
    const branches = layer.map((def) => {
      const b = new Builder(shared);
      const start = b.stage(def);
      return { StartAt: start, States: b.states };
    });
    top[layerName(layer)] = {
      Type: "Parallel",
      Comment:
        layer.length > 1
          ? "stages with no dependency between them run at the same time"
          : `stage ${layer[0]!.id} (after ${layer[0]!.dependsOn.join(", ")})`,
      Branches: branches,
      Assign: { stages: x("$append($stages, $states.result)") },
      Next: i + 1 < layers.length ? layerName(layers[i + 1]!) : "Lab complete",
    };
  }
  top["Lab complete"] = {
    Type: "Succeed",
    Output: {
      runId: x("$runId"),
      params: x("$params"),
      stages: x("$stages"),
      points: x("$sum($stages.points)"),
    },
  };
  const notes = stages.flatMap((s) =>
    allSteps([...s.precondition, ...s.run, ...s.verify.flatMap((c) => c.read)])
      .filter((st): st is ProbeStep => st.kind === "probe")
      .map((p) => `${s.id}: ${p.title}: ${p.asl.comment}`),
  );
  return {
    definition: compact({
      Comment: h.Comment,
      QueryLanguage: h.QueryLanguage,
      StartAt: h.StartAt,
      States: top,
    }),
    origins,
    notes: [...new Set(notes)],
  };
}

/** The teardown's state machine: asl/teardown.ts, generated from the resource-type registry. */
export { exportTeardown } from "./teardown.js";

function recordUndoFailure(error: string): Record<string, unknown> {
  return { undoFailures: x(`$append($undoFailures, [${error}])`) };
}
