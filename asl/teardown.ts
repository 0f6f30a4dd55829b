import { RUN_TAG, STAGE_TAG, x } from "../steps/build.js";
import type { StageDef } from "../steps/dsl.js";
import { expressionBody, isExpression } from "../steps/expr.js";
import { allSteps, STAGES } from "../steps/registry.js";
import {
  arnExpression,
  type CallOp,
  type DrainOp,
  type ResourceCall,
  resourceKind,
  type SweptKind,
  TEARDOWN_ORDER,
  type TeardownType,
} from "../steps/resources.js";
import {
  compact,
  type Export,
  type ExportOptions,
  FAIL,
  header,
  PARAM_DEFAULTS,
  SERVICE_PREFIX,
  type StateOrigin,
  transientRetrier,
} from "./export.js";
import { aslErrorName, camel, isModelledError, UNMODELLED_MESSAGES } from "./sdk.js";
import type { Branchlike, Catcher, State } from "./types.js";

/**
 * The teardown as its own state machine, generated from the resource-type registry
 * (steps/resources.ts) as the local teardown is: per type in teardown order, an inline Map over its
 * resources — the ones the parameters name, or (keys, which have no name) every one the account
 * lists — and for each: read it and its tags, decide, and delete it only when its `kmslab:run` tag
 * names one of the runs the execution input gives (`runId`, or `runIds`: the lab executions' names,
 * which `kmslab sfn start --teardown` fills in). Everything else is kept and listed with the reason;
 * a resource whose tags cannot be read (a denial, another Region) is skipped with the error, and
 * when it has the lab's name the teardown cannot tell, so it ends FAILED naming it. A deletion that
 * fails is listed too. The output (and the `teardown.report` state's, on a failure) is every
 * resource with its outcome: removed, gone, pendingDeletion, kept, skipped or failed.
 */

/** One resource in the teardown's report. */
export interface TeardownResource {
  type: TeardownType | string;
  name?: string;
  arn?: string;
  stageId?: string;
  outcome: "removed" | "gone" | "pendingDeletion" | "kept" | "skipped" | "failed";
  reason?: string;
  deletionDate?: string;
  /** Skipped, and it may be a run's: the teardown could not tell. */
  undecided?: boolean;
}

/** The teardown's output (and its report state's): the runs it tore down, every resource it looked at. */
export interface TeardownReport {
  runIds: string[];
  resources: TeardownResource[];
}

/** The state whose output is the report, a failed execution's included. */
export const REPORT_STATE = "teardown.report";

/** A drain lists and removes at most this many rounds (1000 items a page) before it gives up. */
const MAX_DRAIN_ROUNDS = 1000;

/** The stage that creates resources of a type, per parameter name (log bucket: stage 2, data bucket: stage 3). */
export function creatingStages(
  type: TeardownType,
  stages: readonly StageDef[],
): { param?: string; stageId: string }[] {
  const out: { param?: string; stageId: string }[] = [];
  for (const s of stages)
    for (const step of allSteps(s.run))
      if (step.kind === "call" && step.effect?.resource?.type === type) {
        const param = /\$params\.(\w+)/.exec(
          step.effect.resource.arn.replace(/\$params\.(region|account)\b/g, ""),
        );
        out.push({ ...(param ? { param: param[1]! } : {}), stageId: s.id });
      }
  return out;
}

/** A template as JSONata source (`{% e %}` strings become `(e)`), to merge into an expression. */
function templateSource(template: unknown): string {
  if (isExpression(template)) return `(${expressionBody(template)})`;
  if (Array.isArray(template)) return `[${template.map(templateSource).join(", ")}]`;
  if (template !== null && typeof template === "object")
    return `{${Object.entries(template)
      .map(([k, v]) => `${JSON.stringify(k)}: ${templateSource(v)}`)
      .join(", ")}}`;
  return JSON.stringify(template);
}

/** The same template with `$resource` read as another variable (an alias's tags are its key's). */
function rebind(template: unknown, variable: string): unknown {
  return JSON.parse(JSON.stringify(template).replace(/\$resource\b/g, `$${variable}`));
}

/**
 * How a Catch tells error codes apart: by their Step Functions names where the SDK models them,
 * else by the generic `<Service>.<Service>Exception` and AWS's message in the Cause.
 */
function errorMatch(service: ResourceCall["service"], codes: readonly string[]) {
  const names = codes.filter((c) => isModelledError(service, c)).map((c) => aslErrorName(service, c));
  const messages = codes
    .filter((c) => !isModelledError(service, c))
    .map((c) => {
      const message = UNMODELLED_MESSAGES[service]?.[c];
      if (!message) throw new Error(`ASL export: no message known to tell ${service} ${c} apart`);
      return message;
    });
  return {
    names: [...new Set(names)],
    generic:
      messages.length > 0
        ? aslErrorName(service, codes.find((c) => !isModelledError(service, c))!)
        : undefined,
    condition:
      messages.length > 0
        ? messages.map((m) => `$contains($failure.Cause, ${JSON.stringify(m)})`).join(" or ")
        : undefined,
  };
}

const FAILURE = { failure: x("$states.errorOutput") };

class TeardownBuilder {
  readonly names = new Set<string>();
  constructor(readonly origins: Record<string, StateOrigin>) {}

  add(into: Record<string, State>, name: string, state: State, origin?: StateOrigin): string {
    if (this.names.has(name)) throw new Error(`ASL export: state name ${name} is used twice`);
    if (name.length > 80) throw new Error(`ASL export: state name ${name} is longer than 80 characters`);
    this.names.add(name);
    into[name] = state;
    if (origin) this.origins[name] = origin;
    return name;
  }
}

/** The states that judge and delete one resource of a type: a Map's item processor. */
class ResourceChain {
  readonly states: Record<string, State> = {};
  private readonly kind: SweptKind;
  /** The prefix of this type's state names (`teardown.bucket`). */
  private readonly p: string;
  private readonly origin: StateOrigin;
  private readonly named: boolean;

  constructor(
    private readonly b: TeardownBuilder,
    private readonly type: TeardownType,
    stageId: string,
  ) {
    this.kind = resourceKind(type);
    this.p = `teardown.${this.kind.noun}`;
    this.named = this.kind.named.length > 0;
    this.origin = { stageId, phase: "undo", stepId: type };
  }

  private add(name: string, state: State): string {
    return this.b.add(this.states, name, state, this.origin);
  }

  /** The item a resource's outcome adds to the report. */
  private item(outcome: string, reason?: string, extra: Record<string, string> = {}): string {
    const fields = [
      `"type": "${this.type}"`,
      `"name": $resource.name`,
      `"arn": $resource.arn`,
      `"stageId": $exists($resource.stageId) ? $resource.stageId : $tags[Key = "${STAGE_TAG}"].Value`,
      `"outcome": "${outcome}"`,
      ...(reason ? [`"reason": ${reason}`] : []),
      ...Object.entries(extra).map(([k, v]) => `${JSON.stringify(k)}: ${v}`),
    ];
    return x(`{${fields.join(", ")}}`);
  }

  private end(name: string, outcome: string, reason?: string, extra?: Record<string, string>): string {
    return this.add(name, { Type: "Pass", Output: this.item(outcome, reason, extra), End: true });
  }

  /** A state several paths lead to, made the first time one does. */
  private once(name: string, make: (name: string) => string): string {
    return this.b.names.has(name) ? name : make(name);
  }

  /** Not listed: the account's other resources (a key that is not the lab's, or went meanwhile). */
  private omit(): string {
    return this.once(`${this.p} not the lab's`, (name) =>
      this.add(name, {
        Type: "Pass",
        Comment: "none of the lab's: not listed",
        Output: x("null"),
        End: true,
      }),
    );
  }

  private task(
    name: string,
    call: ResourceCall,
    next: string,
    o: { catchers?: Catcher[]; assign?: Record<string, unknown>; args?: unknown; comment?: string },
  ): string {
    const catchers: Catcher[] = [];
    const seen = new Set<string>();
    for (const c of [
      ...(o.catchers ?? []),
      { ErrorEquals: ["States.ALL"], Assign: FAILURE, Next: this.failed() },
    ]) {
      const fresh = c.ErrorEquals.filter((e) => !seen.has(e));
      for (const e of fresh) seen.add(e);
      if (fresh.length > 0) catchers.push({ ...c, ErrorEquals: fresh });
    }
    const retry = transientRetrier(call);
    return this.add(name, {
      Type: "Task",
      ...(o.comment ? { Comment: o.comment } : {}),
      Resource: `${SERVICE_PREFIX}${call.service}:${camel(call.action)}`,
      Arguments: (o.args ?? call.args) as Record<string, unknown>,
      ...(retry.length > 0 ? { Retry: retry } : {}),
      Catch: catchers,
      ...(o.assign && Object.keys(o.assign).length > 0 ? { Assign: o.assign } : {}),
      Next: next,
    });
  }

  /**
   * Catchers for `codes` going to `next`; where Step Functions cannot name them apart, through a
   * Choice on the Cause, whose other errors go to `otherwise`.
   */
  private catching(
    call: ResourceCall,
    codes: readonly string[] | undefined,
    next: string,
    label: string,
    otherwise: () => string = () => this.failed(),
  ): Catcher[] {
    if (!codes || codes.length === 0) return [];
    const m = errorMatch(call.service, codes);
    const out: Catcher[] = [];
    if (m.names.length > 0) out.push({ ErrorEquals: m.names, Assign: FAILURE, Next: next });
    if (m.generic) {
      const decide = this.add(`${this.p} ${camel(call.action)} ${label}?`, {
        Type: "Choice",
        Comment: `${m.generic} is also other errors: AWS's message tells`,
        Choices: [{ Condition: x(m.condition!), Next: next }],
        Default: otherwise(),
      });
      out.push({ ErrorEquals: [m.generic], Assign: FAILURE, Next: decide });
    }
    return out;
  }

  private failed(): string {
    return this.once(`${this.p} failed`, (name) =>
      this.end(name, "failed", `$failure.Error & ": " & $failure.Cause`),
    );
  }

  private unreadable(): string {
    const why = this.named
      ? "it has the lab's name, so whose it is cannot be told: kept, and the teardown is not complete"
      : "not provably the lab's, so it is kept";
    return this.once(`${this.p} unreadable`, () =>
      this.end(
        `${this.p} unreadable`,
        "skipped",
        `"could not be read (" & $failure.Error & ": " & $failure.Cause & "): ${why}"`,
        this.named ? { undecided: "true" } : {},
      ),
    );
  }

  private gone(deleting: boolean): string {
    if (deleting)
      return this.once(`${this.p} gone meanwhile`, () =>
        this.end(`${this.p} gone meanwhile`, "gone", `"already gone"`),
      );
    if (!this.named) return this.omit();
    return this.once(`${this.p} absent`, () => this.end(`${this.p} absent`, "gone", `"not in the account"`));
  }

  /** The processor: returns its StartAt. */
  build(): Branchlike {
    const k = this.kind;
    const removed = this.end(
      `${this.p} removed`,
      "removed",
      undefined,
      k.delete.some((op) => op.kind === "call" && op.result?.deletionDate)
        ? { deletionDate: "$deletionDate" }
        : {},
    );
    let next = removed;
    const restart = `${this.p} again`;
    for (const op of [...k.delete].reverse())
      next = op.kind === "call" ? this.callOp(op, next, restart) : this.drainOp(op, next);
    const firstOp = next;
    const again = k.delete.find((op): op is CallOp => op.kind === "call" && op.again !== undefined)?.again;
    if (again) {
      this.add(restart, { Type: "Pass", Comment: "once more from the start", Next: firstOp });
      next = this.add(`${this.p} delete`, {
        Type: "Pass",
        Comment: `delete it (within ${again.budgetSeconds} s of being told "not yet")`,
        Assign: {
          againDeadline: x(`$toMillis($states.context.State.EnteredTime) + ${again.budgetSeconds * 1000}`),
        },
        Next: firstOp,
      });
    }
    if (k.describe?.deleting)
      next = this.add(`${this.p} deleting?`, {
        Type: "Choice",
        Comment: "its deletion is under way already",
        Choices: [
          {
            Condition: x("$resource.deleting = true"),
            Next: this.end(`${this.p} pending`, "pendingDeletion", `"pending deletion"`, {
              deletionDate: "$resource.deletionDate",
            }),
          },
        ],
        Default: next,
      });
    const ours = next;
    const otherRun = this.end(
      `${this.p} another run's`,
      "kept",
      `"tagged by another run (${RUN_TAG}=" & $tags[Key = "${RUN_TAG}"].Value & "), not " & $join($runIds, ", ")`,
    );
    const untagged = this.named
      ? this.end(
          `${this.p} untagged`,
          "kept",
          JSON.stringify(
            k.owner
              ? `it points at a ${resourceKind(k.owner.type).noun} with no ${RUN_TAG} tag (an alias goes with its key), so kmslab did not make it`
              : `it has the lab's name but no ${RUN_TAG} tag, so kmslab did not make it`,
          ),
        )
      : this.omit();
    const decide = this.add(`${this.p} ours?`, {
      Type: "Choice",
      Comment: `deleted only when its ${RUN_TAG} tag names a run of the input`,
      Choices: [
        { Condition: x(`$count($tags[Key = "${RUN_TAG}" and Value in $runIds]) > 0`), Next: ours },
        { Condition: x(`$count($tags[Key = "${RUN_TAG}"]) > 0`), Next: otherRun },
      ],
      Default: untagged,
    });
    next = decide;
    if (k.tags) {
      const t = k.tags;
      const noTags = () =>
        this.add(`${this.p} no tags`, { Type: "Pass", Assign: { tags: [] }, Next: decide });
      next = this.task(`${this.p} tags`, t, decide, {
        comment: `read its tags (${t.action})`,
        catchers: [
          ...this.catching(t, t.gone, this.gone(false), "gone"),
          ...(t.none ? this.catching(t, t.none, noTags(), "untagged", () => this.unreadable()) : []),
          { ErrorEquals: ["States.ALL"], Assign: FAILURE, Next: this.unreadable() },
        ],
        assign: { tags: x(`$append([], ${t.tags})`) },
      });
    }
    if (k.owner) {
      const owner = resourceKind(k.owner.type);
      const ownerTags = owner.tags!;
      const tagsOf = this.task(`${this.p} owner's tags`, ownerTags, decide, {
        comment: `read the ${owner.noun}'s tags (${ownerTags.action})`,
        args: rebind(ownerTags.args, "owned"),
        catchers: [{ ErrorEquals: ["States.ALL"], Assign: FAILURE, Next: this.unreadable() }],
        assign: { tags: x(`$append([], ${ownerTags.tags})`) },
      });
      next = this.task(`${this.p} owner`, k.owner.read, tagsOf, {
        comment: `find the ${owner.noun} it points at (${k.owner.read.action})`,
        catchers: [
          ...this.catching(k.owner.read, k.owner.read.gone, this.gone(false), "gone"),
          { ErrorEquals: ["States.ALL"], Assign: FAILURE, Next: this.unreadable() },
        ],
        assign: { owned: x(`{"arn": ${k.owner.arn}}`) },
      });
    }
    if (k.describe) {
      const d = k.describe;
      const kept = this.add(`${this.p} the lab's kind?`, {
        Type: "Choice",
        Comment: "only what the lab makes (customer managed keys)",
        Choices: [{ Condition: x("$keep = true"), Next: next }],
        Default: this.omit(),
      });
      next = this.task(`${this.p} describe`, d, kept, {
        comment: `read it (${d.action})`,
        catchers: [
          ...this.catching(d, d.gone, this.gone(false), "gone"),
          { ErrorEquals: ["States.ALL"], Assign: FAILURE, Next: this.unreadable() },
        ],
        assign: {
          keep: x(d.keep),
          resource: x(
            `$merge([$resource, {${[
              ...(d.deleting ? [`"deleting": ${d.deleting}`] : []),
              ...(d.deletionDate ? [`"deletionDate": ${d.deletionDate}`] : []),
            ].join(", ")}}])`,
          ),
        },
      });
    }
    const start = this.add(this.p, {
      Type: "Pass",
      Comment: `one ${k.noun}: read it, decide by its ${RUN_TAG} tag, delete it only if a run of the input made it`,
      Assign: {
        resource: x("$states.input"),
        tags: null,
        failure: null,
        ...(k.describe ? { keep: null } : {}),
        ...(k.owner ? { owned: null } : {}),
        ...(k.delete.some((op) => op.kind === "drain") ? { items: null, rounds: 0 } : {}),
        ...(k.delete.some((op) => op.kind === "drain" && op.batch) ? { batchFailed: null } : {}),
        ...(again ? { againDeadline: null } : {}),
        ...(k.delete.some((op) => op.kind === "call" && (op.result?.deletionDate || op.already))
          ? { deletionDate: null, settled: null }
          : {}),
      },
      Next: next,
    });
    return { StartAt: start, States: this.states };
  }

  private callOp(op: CallOp, next: string, restart: string): string {
    const c = op.call;
    const name = `${this.p} ${camel(c.action)}`;
    const catchers: Catcher[] = [...this.catching(c, c.gone, this.gone(true), "gone")];
    if (op.again) {
      const wait = this.add(`${name} wait`, {
        Type: "Wait",
        Comment: "not yet: once more, a little later",
        Seconds: op.again.waitSeconds,
        Next: restart,
      });
      const within = this.add(`${name} within budget?`, {
        Type: "Choice",
        Choices: [
          { Condition: x("$toMillis($states.context.State.EnteredTime) < $againDeadline"), Next: wait },
        ],
        Default: this.failed(),
      });
      catchers.push(...this.catching(c, op.again.errors, within, "not yet"));
    }
    if (op.already) {
      const a = op.already;
      const pending = this.end(`${this.p} pending already`, "pendingDeletion", `"pending deletion"`, {
        deletionDate: "$deletionDate",
      });
      const holds = this.add(`${name} under way?`, {
        Type: "Choice",
        Choices: [{ Condition: x("$settled = true"), Next: pending }],
        Default: this.failed(),
      });
      const read = this.task(`${name} under way`, a.read, holds, {
        comment: `its deletion may be under way already (${a.read.action})`,
        assign: {
          settled: x(a.holds),
          ...(a.deletionDate ? { deletionDate: x(a.deletionDate) } : {}),
        },
      });
      catchers.push(...this.catching(c, a.errors, read, "already"));
    }
    return this.task(name, c, next, {
      comment: c.action,
      catchers,
      ...(op.result?.deletionDate ? { assign: { deletionDate: x(op.result.deletionDate) } } : {}),
    });
  }

  private drainOp(op: DrainOp, next: string): string {
    const list = op.list;
    const listName = `${this.p} ${camel(list.action)}`;
    const gaveUp = this.add(`${listName} gave up`, {
      Type: "Pass",
      Assign: {
        failure: {
          Error: FAIL.gaveUp,
          Cause: `${op.noun} still listed after ${MAX_DRAIN_ROUNDS} rounds of removing them`,
        },
      },
      Next: this.failed(),
    });
    const left = `${listName} left?`;
    let act: string;
    if (op.batch) {
      const batch = op.batch;
      const failedItems = this.add(`${this.p} ${camel(batch.action)} refused`, {
        Type: "Pass",
        Assign: {
          failure: x(
            `{"Error": $batchFailed[0].Code, "Cause": $batchFailed[0].Key & ": " & $batchFailed[0].Message}`,
          ),
        },
        Next: this.failed(),
      });
      const checked = this.add(`${this.p} ${camel(batch.action)} done?`, {
        Type: "Choice",
        Choices: [{ Condition: x("$count($batchFailed) > 0"), Next: failedItems }],
        Default: listName,
      });
      act = this.task(`${this.p} ${camel(batch.action)}`, batch, checked, {
        comment: `remove them (${batch.action})`,
        catchers: this.catching(batch, batch.gone, this.gone(true), "gone"),
        assign: { batchFailed: x(`$append([], ${batch.failed ?? "[]"})`) },
      });
    } else {
      const each = op.each!;
      const itemStates: Record<string, State> = {};
      const eachName = `${this.p} ${camel(each.action)}`;
      const retry = transientRetrier(each);
      const eachGone = this.b.add(itemStates, `${eachName} gone`, { Type: "Pass", End: true }, this.origin);
      const errors = errorMatch(each.service, each.gone ?? []).names;
      this.b.add(
        itemStates,
        eachName,
        {
          Type: "Task",
          Resource: `${SERVICE_PREFIX}${each.service}:${camel(each.action)}`,
          Arguments: each.args as Record<string, unknown>,
          ...(retry.length > 0 ? { Retry: retry } : {}),
          ...(errors.length > 0 ? { Catch: [{ ErrorEquals: errors, Next: eachGone }] } : {}),
          Output: {},
          End: true,
        },
        this.origin,
      );
      const start = this.b.add(
        itemStates,
        `${eachName} item`,
        { Type: "Pass", Assign: { item: x("$states.input") }, Next: eachName },
        this.origin,
      );
      act = this.add(`${eachName} each`, {
        Type: "Map",
        Comment: `remove them (${each.action})`,
        Items: x("$items"),
        MaxConcurrency: 5,
        ItemProcessor: { ProcessorConfig: { Mode: "INLINE" }, StartAt: start, States: itemStates },
        Catch: [{ ErrorEquals: ["States.ALL"], Assign: FAILURE, Next: this.failed() }],
        Output: {},
        Next: listName,
      });
    }
    this.add(left, {
      Type: "Choice",
      Choices: [
        { Condition: x("$count($items) = 0"), Next: next },
        { Condition: x(`$rounds > ${MAX_DRAIN_ROUNDS}`), Next: gaveUp },
      ],
      Default: act,
    });
    this.task(listName, list, left, {
      comment: `list its ${op.noun} (${list.action})`,
      catchers: this.catching(list, list.gone, this.gone(true), "gone"),
      assign: { items: x(`$append([], ${list.items})`), rounds: x("$rounds + 1") },
    });
    return listName;
  }
}

/** The exported teardown. */
export async function exportTeardown(options: ExportOptions = {}): Promise<Export> {
  const stages = options.stages ?? STAGES;
  const defaults = { ...PARAM_DEFAULTS, ...options.defaults };
  const origins: Record<string, StateOrigin> = {};
  const b = new TeardownBuilder(origins);
  const top: Record<string, State> = {};
  const h = header(
    defaults,
    "kmslab teardown: remove what the lab's runs made, checking every resource's kmslab:run tag first (generated from the resource-type registry by kmslab export asl --teardown)",
  );
  const failed = b.add(top, "Teardown incomplete", {
    Type: "Fail",
    Comment: "something could not be removed, or may be a run's and could not be read: the report says what",
    Error: FAIL.teardown,
    Cause: x(
      `"not everything could be decided and removed: " & $join($results[outcome = "failed" or undecided = true].($string(type) & " " & $string(name) & ": " & $string(reason)), "; ")`,
    ),
  });
  const done = b.add(top, "Torn down", { Type: "Succeed", Output: x("$report") });
  const decided = b.add(top, "Everything undone?", {
    Type: "Choice",
    Choices: [{ Condition: x(`$count($results[outcome = "failed" or undecided = true]) = 0`), Next: done }],
    Default: failed,
  });
  let next = b.add(top, REPORT_STATE, {
    Type: "Pass",
    Comment: "every resource of the lab's types that was looked at, with its outcome and why",
    Assign: { report: x(`{"runIds": $runIds, "resources": $results}`) },
    Output: x(`{"runIds": $runIds, "resources": $results}`),
    Next: decided,
  });
  const variables: Record<string, unknown> = {};
  for (const type of [...TEARDOWN_ORDER].reverse()) {
    const kind = resourceKind(type);
    const made = creatingStages(type, stages);
    const stageOf = (param?: string) =>
      made.find((m) => m.param === param)?.stageId ?? made[0]?.stageId ?? stages[0]!.id;
    const plural = `teardown.${kind.noun.endsWith("s") ? `${kind.noun}e` : kind.noun}s`;
    const origin: StateOrigin = { stageId: stageOf(), phase: "undo", stepId: type };
    const processor = new ResourceChain(b, type, stageOf()).build();
    const record = (what: string) => ({
      results: x(`$append($results, ${what})`),
    });
    const mapFailed = b.add(
      top,
      `${plural} failed`,
      {
        Type: "Pass",
        Assign: record(
          `[{"type": "${type}", "outcome": "failed", "undecided": true, "reason": $typeFailure.Error & ": " & $typeFailure.Cause}]`,
        ),
        Next: next,
      },
      origin,
    );
    const map = (items: string, after: string) =>
      b.add(
        top,
        plural,
        {
          Type: "Map",
          Comment: `each ${kind.noun}: read, judged by its tags, deleted if a run of the input made it`,
          Items: x(items),
          MaxConcurrency: kind.named.length > 0 ? 1 : 8,
          ItemProcessor: { ProcessorConfig: { Mode: "INLINE" }, ...processor },
          Assign: record(`$states.result[$type($) = "object"]`),
          Catch: [
            {
              ErrorEquals: ["States.ALL"],
              Assign: { typeFailure: x("$states.errorOutput") },
              Next: mapFailed,
            },
          ],
          Next: after,
        },
        origin,
      );
    if (kind.named.length > 0) {
      const items = kind.named.map(
        (p) =>
          `{"name": $params.${p}, "arn": ${arnExpression(type, `$params.${p}`)}, "stageId": "${stageOf(p)}"}`,
      );
      next = map(`[${items.join(", ")}]`, next);
      continue;
    }
    // No name to look for (keys): every one the account lists, a page at a time.
    const list = kind.list;
    const page = `${kind.noun}sPage`;
    const token = `${kind.noun}sToken`;
    variables[page] = null;
    variables[token] = null;
    const listName = `${plural} list`;
    const more = b.add(
      top,
      `${plural} more?`,
      {
        Type: "Choice",
        Choices: [{ Condition: x(`$type($${token}) = "string"`), Next: listName }],
        Default: next,
      },
      origin,
    );
    const mapName = map(`$${page}`, more);
    const retry = transientRetrier(list);
    const tokenIn = list.next ? `$type($${token}) = "string" ? {"${list.next.in}": $${token}} : {}` : "{}";
    const tokenOut = list.next
      ? `($t := $exists($states.result.Truncated) ? $states.result.Truncated : $states.result.IsTruncated; $t = false or $not($exists($states.result.${list.next.out})) ? null : $states.result.${list.next.out})`
      : "null";
    b.add(
      top,
      listName,
      {
        Type: "Task",
        Comment: `list the account's ${kind.noun}s (${list.action})`,
        Resource: `${SERVICE_PREFIX}${list.service}:${camel(list.action)}`,
        Arguments: x(`$merge([${templateSource(list.args)}, ${tokenIn}])`),
        ...(retry.length > 0 ? { Retry: retry } : {}),
        Catch: [
          { ErrorEquals: ["States.ALL"], Assign: { typeFailure: x("$states.errorOutput") }, Next: mapFailed },
        ],
        Assign: {
          [page]: x(`[$append([], ${list.items}).$merge([$, {"stageId": ${JSON.stringify(stageOf())}}])]`),
          [token]: x(tokenOut),
        },
        Next: mapName,
      },
      origin,
    );
    next = listName;
  }
  const named = b.add(top, "teardown.runIds?", {
    Type: "Choice",
    Comment: "which run's resources go: the input names them (the lab execution's name is its run id)",
    Choices: [{ Condition: x("$count($runIds) > 0"), Next: next }],
    Default: b.add(top, "teardown.no run named", {
      Type: "Fail",
      Comment: "the teardown never guesses whose resources to delete",
      Error: FAIL.noRun,
      Cause:
        'The teardown needs to know which run to tear down: give the lab execution\'s name in the input as "runId" (or several as "runIds"); kmslab sfn start --teardown fills it in.',
    }),
  });
  const states: Record<string, State> = {
    Parameters: {
      ...h.parameters,
      Assign: {
        params: h.parameters.Assign.params,
        runIds: x(
          `($in := $type($states.input) = "object" ? $states.input : {}; $append([], $filter($append($append([], $in.runIds), $in.runId), function($v) { $type($v) = "string" and $v != "" })))`,
        ),
        results: [],
        typeFailure: null,
        ...variables,
      },
      Next: named,
    },
    ...top,
  };
  return {
    definition: compact({
      Comment: h.Comment,
      QueryLanguage: h.QueryLanguage,
      StartAt: h.StartAt,
      States: states,
    }),
    origins,
    notes: [],
  };
}
