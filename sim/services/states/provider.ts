import { randomBytes } from "node:crypto";
import { MAX_PAYLOAD_BYTES } from "../../../asl/interpreter.js";
import { aslValidatorProblems } from "../../../asl/validator.js";
import type { Account } from "../../account.js";
import { ServiceError } from "../../core/errors.js";
import { jsonNestsDeeper, MAX_NESTING } from "../../core/nesting.js";
import { uuid } from "../../core/random.js";
import {
  type CallContext,
  callContext,
  globalContextKeys,
  type OperationInfo,
  replaceContents,
  type ServiceProvider,
} from "../../core/service.js";
import type { Principal } from "../../core/types.js";
import { bool, int, list, str, struct, validate } from "../../core/validate.js";
import { identityDenial } from "../../policy/index.js";
import { type HistoryEvent, HistoryStore } from "./history.js";
import { type ExecutionHost, runExecution } from "./runner.js";

/**
 * The simulated AWS Step Functions (awsJson1_0, `AWSStepFunctions`): standard state machines and
 * their executions. An execution runs in the background of the process that holds the account
 * (`kmslab sim serve`, or the CLI with the embedded simulator): the ASL interpreter of asl/ walks
 * the definition, and each `aws-sdk` Task is a real SDK call into this same account as a session of
 * the state machine's role (or of the Task's `Credentials` role), so policies apply and CloudTrail
 * records it. Waits run on the account's clock. The history is AWS's event types and shapes.
 *
 * Deliberate simplifications: JSONata state machines only (a JSONPath one fails at its start with
 * States.Runtime), no Express workflows, versions, aliases, activities, Lambda or `.sync`
 * integrations, redrive or Distributed Map; `previousEventId` is the event before (AWS links an event
 * to the one before it in its branch). An execution the simulator was stopped during is not resumed:
 * on the next start it ends FAILED with States.Runtime, its history kept.
 */

export interface MachineRecord {
  name: string;
  arn: string;
  region: string;
  definition: string;
  roleArn: string;
  type: "STANDARD";
  creationDate: string;
  updateDate?: string;
  revisionId: string;
  status: "ACTIVE" | "DELETING";
  tags: { key: string; value: string }[];
}

export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";

export interface ExecutionRecord {
  arn: string;
  name: string;
  stateMachineArn: string;
  region: string;
  /** The definition and role as they were when it started (an update does not change a running execution). */
  definition: string;
  roleArn: string;
  status: ExecutionStatus;
  startDate: string;
  stopDate?: string;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
}

export interface StatesState {
  machines: Record<string, MachineRecord>;
  executions: Record<string, ExecutionRecord>;
}

export const STATES_PRINCIPAL: Principal = {
  type: "AWSService",
  arn: "states.amazonaws.com",
  accountId: "",
  userId: "states.amazonaws.com",
  service: "states.amazonaws.com",
};

/** Payloads (input, output) are at most 256 KiB of UTF-8. */
/** What Step Functions refuses in names: whitespace, brackets, wildcards, special and control characters. */
const BAD_NAME = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]/u;
const ARN = /^arn:aws:states:([a-z0-9-]+):(\d{12}):(stateMachine|execution):([^:]+)(?::([^:]+))?$/;

export class StatesService implements ServiceProvider {
  readonly service = "states";
  readonly protocol = "awsJson1_0" as const;
  readonly eventSource = "states.amazonaws.com";
  readonly targetPrefixes = ["AWSStepFunctions"] as const;
  readonly operations: Readonly<Record<string, OperationInfo>> = {
    ValidateStateMachineDefinition: { readOnly: true },
    CreateStateMachine: { readOnly: false },
    DescribeStateMachine: { readOnly: true },
    UpdateStateMachine: { readOnly: false },
    DeleteStateMachine: { readOnly: false },
    ListStateMachines: { readOnly: true },
    StartExecution: { readOnly: false },
    DescribeExecution: { readOnly: true },
    StopExecution: { readOnly: false },
    ListExecutions: { readOnly: true },
    GetExecutionHistory: { readOnly: true },
    ListTagsForResource: { readOnly: true },
  };
  readonly state: StatesState;
  readonly history: HistoryStore;
  private host: ExecutionHost | undefined;
  private readonly running = new Map<string, { stop: AbortController; done: Promise<void> }>();

  constructor(
    private readonly account: Account,
    state: StatesState | undefined,
  ) {
    this.state = state ?? { machines: {}, executions: {} };
    this.history = new HistoryStore(account.dataDir);
  }

  /**
   * Called by the simulator that serves this account: executions can now make their calls. One the
   * simulator was stopped during ends FAILED (its history is kept).
   */
  attach(host: ExecutionHost): void {
    this.host = host;
    for (const e of Object.values(this.state.executions)) {
      if (e.status !== "RUNNING" || this.running.has(e.arn)) continue;
      this.finish(e, {
        status: "FAILED",
        error: "States.Runtime",
        cause: "The simulator stopped while this execution was running; start a new execution.",
      });
    }
    host.save();
  }

  /** Resolves when no execution is running (tests, the CLI before it closes the account). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map((r) => r.done));
  }

  /**
   * The account went back to its last save (Account.rollback). Executions are processes, not data:
   * one the saved state knows keeps its live record (its history file, written as it ran, agrees
   * with it); one it does not know was started by a call that is undone, and is stopped and forgotten.
   */
  restore(saved: StatesState): void {
    const live = { ...this.state.executions };
    replaceContents(this.state, saved);
    for (const [arn, record] of Object.entries(live)) {
      if (Object.hasOwn(this.state.executions, arn)) this.state.executions[arn] = record;
      else {
        // No longer RUNNING: what its interpreter still says while it winds down is not recorded.
        record.status = "ABORTED";
        this.running.get(arn)?.stop.abort();
        this.history.remove(arn);
      }
    }
  }

  /** Ends every running execution FAILED with States.Runtime and the cause (the simulator is closing). */
  stopAll(cause: string): void {
    for (const [arn, r] of this.running) {
      const e = this.state.executions[arn];
      if (e) this.finish(e, { status: "FAILED", error: "States.Runtime", cause });
      r.stop.abort();
    }
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html
  ValidateStateMachineDefinition(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ definition: string; maxResults?: number }>(input, {
      definition: str({ required: true, min: 1, max: 1_048_576 }),
      type: str({ enum: ["STANDARD", "EXPRESS"] }),
      severity: str({ enum: ["ERROR", "WARNING"] }),
      maxResults: int({ min: 0, max: 100 }),
    });
    this.allow(ctx, "states:ValidateStateMachineDefinition", "*");
    const diagnostics = definitionProblems(req.definition);
    const max = req.maxResults || 100;
    return {
      result: diagnostics.length === 0 ? "OK" : "FAIL",
      diagnostics: diagnostics.slice(0, max),
      truncated: diagnostics.length > max,
    };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html
  CreateStateMachine(input: Record<string, unknown>, ctx: CallContext) {
    const tag = struct({ key: str({ min: 1, max: 128 }), value: str({ max: 256 }) });
    const req = validate<{
      name: string;
      definition: string;
      roleArn: string;
      type?: string;
      tags?: { key: string; value: string }[];
    }>(input, {
      name: str({ required: true, min: 1, max: 80 }),
      definition: str({ required: true, min: 1, max: 1_048_576 }),
      roleArn: str({ required: true, min: 1, max: 256 }),
      type: str({ enum: ["STANDARD", "EXPRESS"] }),
      loggingConfiguration: struct({}),
      tracingConfiguration: struct({ enabled: bool() }),
      tags: list(tag),
      publish: bool(),
      versionDescription: str({ max: 256 }),
      encryptionConfiguration: struct({}),
    });
    checkName(req.name, "name");
    const arn = `arn:aws:states:${ctx.region}:${ctx.accountId}:stateMachine:${req.name}`;
    this.allow(ctx, "states:CreateStateMachine", arn);
    if (req.type === "EXPRESS")
      throw new ServiceError(
        "ValidationException",
        "The simulated Step Functions runs STANDARD state machines only.",
      );
    checkDefinition(req.definition);
    const existing = this.state.machines[arn];
    if (existing) {
      // Idempotent for the same definition; roleArn and tags are not compared, as AWS does.
      if (existing.definition !== req.definition || existing.status === "DELETING")
        throw new ServiceError("StateMachineAlreadyExists", `State Machine Already Exists: '${arn}'`);
      return { stateMachineArn: arn, creationDate: new Date(existing.creationDate) };
    }
    this.passRole(ctx, req.roleArn);
    const machine: MachineRecord = {
      name: req.name,
      arn,
      region: ctx.region,
      definition: req.definition,
      roleArn: req.roleArn,
      type: "STANDARD",
      creationDate: ctx.now.toISOString(),
      revisionId: uuid(),
      status: "ACTIVE",
      tags: req.tags ?? [],
    };
    this.state.machines[arn] = machine;
    return { stateMachineArn: arn, creationDate: ctx.now };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeStateMachine.html
  DescribeStateMachine(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ stateMachineArn: string }>(input, {
      stateMachineArn: str({ required: true, min: 1, max: 256 }),
      includedData: str({ enum: ["ALL_DATA", "METADATA_ONLY"] }),
    });
    const m = this.machine(req.stateMachineArn, ctx, "states:DescribeStateMachine");
    return describeMachine(m);
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_UpdateStateMachine.html
  UpdateStateMachine(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ stateMachineArn: string; definition?: string; roleArn?: string }>(input, {
      stateMachineArn: str({ required: true, min: 1, max: 256 }),
      definition: str({ min: 1, max: 1_048_576 }),
      roleArn: str({ min: 1, max: 256 }),
      loggingConfiguration: struct({}),
      tracingConfiguration: struct({ enabled: bool() }),
      publish: bool(),
      versionDescription: str({ max: 256 }),
      encryptionConfiguration: struct({}),
    });
    const m = this.machine(req.stateMachineArn, ctx, "states:UpdateStateMachine");
    if (req.definition === undefined && req.roleArn === undefined && !input.loggingConfiguration)
      throw new ServiceError(
        "MissingRequiredParameter",
        "Either the definition, the role ARN, the LoggingConfiguration, or the TracingConfiguration must be specified",
      );
    if (m.status === "DELETING")
      throw new ServiceError("StateMachineDeleting", `State Machine is being deleted: '${m.arn}'`);
    if (req.definition !== undefined) checkDefinition(req.definition);
    if (req.roleArn !== undefined) this.passRole(ctx, req.roleArn);
    if (req.definition !== undefined) m.definition = req.definition;
    if (req.roleArn !== undefined) m.roleArn = req.roleArn;
    m.updateDate = ctx.now.toISOString();
    m.revisionId = uuid();
    return { updateDate: ctx.now, revisionId: m.revisionId };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_DeleteStateMachine.html
  DeleteStateMachine(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ stateMachineArn: string }>(input, {
      stateMachineArn: str({ required: true, min: 1, max: 256 }),
    });
    const parsed = parseArn(req.stateMachineArn, "stateMachine");
    this.allow(ctx, "states:DeleteStateMachine", req.stateMachineArn);
    const m = this.state.machines[req.stateMachineArn];
    // Deleting a state machine that does not exist succeeds; it goes once its executions have ended.
    if (!m || parsed.region !== ctx.region) return {};
    m.status = "DELETING";
    this.collect(m);
    return {};
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListStateMachines.html
  ListStateMachines(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ maxResults?: number; nextToken?: string }>(input, {
      maxResults: int({ min: 0, max: 1000 }),
      nextToken: str({ min: 1, max: 1024 }),
    });
    this.allow(ctx, "states:ListStateMachines", "*");
    const all = Object.values(this.state.machines)
      .filter((m) => m.region === ctx.region && m.status === "ACTIVE")
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((m) => ({
        stateMachineArn: m.arn,
        name: m.name,
        type: m.type,
        creationDate: new Date(m.creationDate),
      }));
    const page = paginate(all, req.maxResults, req.nextToken);
    return { stateMachines: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
  StartExecution(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ stateMachineArn: string; name?: string; input?: string }>(input, {
      stateMachineArn: str({ required: true, min: 1, max: 256 }),
      name: str({ min: 1, max: 80 }),
      input: str({ max: MAX_PAYLOAD_BYTES }),
      traceHeader: str({ max: 256 }),
    });
    const m = this.machine(req.stateMachineArn, ctx, "states:StartExecution");
    if (m.status === "DELETING")
      throw new ServiceError("StateMachineDeleting", `State Machine is being deleted: '${m.arn}'`);
    const name = req.name ?? uuid();
    checkName(name, "name");
    const text = req.input ?? "{}";
    if (Buffer.byteLength(text) > MAX_PAYLOAD_BYTES)
      throw new ServiceError("InvalidExecutionInput", "The input exceeds the 262144 bytes limit.");
    // Nested deeper than the simulator reads (sim/core/nesting.ts): refused as input it cannot
    // take, before the execution starts. AWS's limit and wording for this are unconfirmed.
    if (jsonNestsDeeper(text))
      throw new ServiceError(
        "InvalidExecutionInput",
        `Invalid State Machine Execution Input: 'objects and arrays nested deeper than ${MAX_NESTING} levels'`,
      );
    try {
      JSON.parse(text);
    } catch (err) {
      throw new ServiceError(
        "InvalidExecutionInput",
        `Invalid State Machine Execution Input: '${(err as Error).message}'`,
      );
    }
    const arn = `arn:aws:states:${m.region}:${ctx.accountId}:execution:${m.name}:${name}`;
    const existing = this.state.executions[arn];
    if (existing) {
      // The same name and input as a running execution is the same request; anything else is refused.
      if (existing.status === "RUNNING" && existing.input === text)
        return { executionArn: arn, startDate: new Date(existing.startDate) };
      throw new ServiceError("ExecutionAlreadyExists", `Execution Already Exists: '${arn}'`);
    }
    if (!this.host)
      throw new ServiceError(
        "ServiceUnavailable",
        "This simulated account is not being served: no execution can run.",
        500,
      );
    const record: ExecutionRecord = {
      arn,
      name,
      stateMachineArn: m.arn,
      region: m.region,
      definition: m.definition,
      roleArn: m.roleArn,
      status: "RUNNING",
      startDate: ctx.now.toISOString(),
      input: text,
    };
    this.state.executions[arn] = record;
    this.event(record, "ExecutionStarted", {
      executionStartedEventDetails: {
        input: text,
        inputDetails: { truncated: false },
        roleArn: m.roleArn,
        stateMachineArn: m.arn,
      },
    });
    this.launch(record);
    return { executionArn: arn, startDate: ctx.now };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
  DescribeExecution(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ executionArn: string }>(input, {
      executionArn: str({ required: true, min: 1, max: 256 }),
      includedData: str({ enum: ["ALL_DATA", "METADATA_ONLY"] }),
    });
    const e = this.execution(req.executionArn, ctx, "states:DescribeExecution");
    return {
      executionArn: e.arn,
      stateMachineArn: e.stateMachineArn,
      name: e.name,
      status: e.status,
      startDate: new Date(e.startDate),
      ...(e.stopDate ? { stopDate: new Date(e.stopDate) } : {}),
      input: e.input,
      inputDetails: { included: true },
      ...(e.output !== undefined ? { output: e.output, outputDetails: { included: true } } : {}),
      ...(e.error !== undefined ? { error: e.error } : {}),
      ...(e.cause !== undefined ? { cause: e.cause } : {}),
      redriveCount: 0,
      redriveStatus: "NOT_REDRIVABLE",
    };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
  StopExecution(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ executionArn: string; error?: string; cause?: string }>(input, {
      executionArn: str({ required: true, min: 1, max: 256 }),
      error: str({ max: 256 }),
      cause: str({ max: 32768 }),
    });
    const e = this.execution(req.executionArn, ctx, "states:StopExecution");
    if (e.status === "RUNNING") {
      this.finish(e, {
        status: "ABORTED",
        ...(req.error !== undefined ? { error: req.error } : {}),
        ...(req.cause !== undefined ? { cause: req.cause } : {}),
      });
      this.running.get(e.arn)?.stop.abort();
    }
    return { stopDate: new Date(e.stopDate ?? ctx.now.toISOString()) };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html
  ListExecutions(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      stateMachineArn?: string;
      statusFilter?: string;
      maxResults?: number;
      nextToken?: string;
    }>(input, {
      stateMachineArn: str({ min: 1, max: 256 }),
      statusFilter: str({
        enum: ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"],
      }),
      maxResults: int({ min: 0, max: 1000 }),
      nextToken: str({ min: 1, max: 3096 }),
      mapRunArn: str({ min: 1, max: 2000 }),
      redriveFilter: str({ enum: ["REDRIVEN", "NOT_REDRIVEN"] }),
    });
    if (req.stateMachineArn === undefined)
      throw new ServiceError("ValidationException", "Must provide a StateMachine ARN or MapRun ARN");
    const m = this.machine(req.stateMachineArn, ctx, "states:ListExecutions");
    const all = Object.values(this.state.executions)
      .filter((e) => e.stateMachineArn === m.arn && (!req.statusFilter || e.status === req.statusFilter))
      .sort((a, b) => b.startDate.localeCompare(a.startDate) || b.name.localeCompare(a.name))
      .map((e) => ({
        executionArn: e.arn,
        stateMachineArn: e.stateMachineArn,
        name: e.name,
        status: e.status,
        startDate: new Date(e.startDate),
        ...(e.stopDate ? { stopDate: new Date(e.stopDate) } : {}),
      }));
    const page = paginate(all, req.maxResults, req.nextToken);
    return { executions: page.items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
  GetExecutionHistory(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      executionArn: string;
      maxResults?: number;
      reverseOrder?: boolean;
      nextToken?: string;
      includeExecutionData?: boolean;
    }>(input, {
      executionArn: str({ required: true, min: 1, max: 256 }),
      maxResults: int({ min: 0, max: 1000 }),
      reverseOrder: bool(),
      nextToken: str({ min: 1, max: 3096 }),
      includeExecutionData: bool(),
    });
    const e = this.execution(req.executionArn, ctx, "states:GetExecutionHistory");
    let events = this.history.read(e.arn);
    if (req.reverseOrder) events = [...events].reverse();
    const page = paginate(events, req.maxResults, req.nextToken);
    const items = req.includeExecutionData === false ? page.items.map(withoutData) : page.items;
    return { events: items, ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
  }

  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListTagsForResource.html
  ListTagsForResource(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ resourceArn: string }>(input, {
      resourceArn: str({ required: true, min: 1, max: 256 }),
    });
    const m = this.machine(req.resourceArn, ctx, "states:ListTagsForResource");
    return { tags: m.tags };
  }

  /** Starts an execution's work in the background. */
  private launch(record: ExecutionRecord): void {
    const stop = new AbortController();
    const done = runExecution(record, {
      host: this.host!,
      account: this.account,
      signal: stop.signal,
      // An execution stopped (StopExecution, the simulator closing) already has its closing event:
      // what its interpreter says while winding down (WaitStateAborted...) would come after it.
      event: (type, details) => {
        if (record.status === "RUNNING") this.event(record, type, details);
      },
      finish: (outcome) => this.finish(record, outcome),
    })
      .catch((err: Error) => {
        // A fault of the simulator itself: the execution fails, the process goes on.
        try {
          this.finish(record, { status: "FAILED", error: "States.Runtime", cause: err.message });
        } catch {
          // Its closing event could not be written either (a full disk): the record says FAILED.
        }
      })
      .finally(() => {
        this.running.delete(record.arn);
        const m = this.state.machines[record.stateMachineArn];
        if (m) this.collect(m);
        this.history.release(record.arn);
        this.account.changed();
        this.host?.save();
      });
    this.running.set(record.arn, { stop, done });
  }

  /** Ends an execution once: its status, the closing history event, saved with the account. */
  private finish(
    e: ExecutionRecord,
    outcome: { status: Exclude<ExecutionStatus, "RUNNING">; output?: string; error?: string; cause?: string },
  ): void {
    if (e.status !== "RUNNING") return;
    e.status = outcome.status;
    e.stopDate = this.account.now().toISOString();
    if (outcome.output !== undefined) e.output = outcome.output;
    if (outcome.error !== undefined) e.error = outcome.error;
    if (outcome.cause !== undefined) e.cause = outcome.cause;
    const problem = {
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      ...(outcome.cause !== undefined ? { cause: outcome.cause } : {}),
    };
    switch (outcome.status) {
      case "SUCCEEDED":
        this.event(e, "ExecutionSucceeded", {
          executionSucceededEventDetails: { output: outcome.output, outputDetails: { truncated: false } },
        });
        break;
      case "FAILED":
        this.event(e, "ExecutionFailed", { executionFailedEventDetails: problem });
        break;
      case "ABORTED":
        this.event(e, "ExecutionAborted", { executionAbortedEventDetails: problem });
        break;
      case "TIMED_OUT":
        this.event(e, "ExecutionTimedOut", { executionTimedOutEventDetails: problem });
        break;
    }
    this.account.changed();
  }

  private event(e: ExecutionRecord, type: string, details: Record<string, unknown>): HistoryEvent {
    return this.history.append(e.arn, type, this.account.now(), details);
  }

  /** A state machine being deleted goes once none of its executions runs. */
  private collect(m: MachineRecord): void {
    if (m.status !== "DELETING") return;
    for (const arn of this.running.keys()) if (this.state.executions[arn]?.stateMachineArn === m.arn) return;
    delete this.state.machines[m.arn];
    this.account.changed();
  }

  private machine(arn: string, ctx: CallContext, action: string): MachineRecord {
    const parsed = parseArn(arn, "stateMachine");
    this.allow(ctx, action, arn);
    const m = this.state.machines[arn];
    if (!m || parsed.region !== ctx.region || parsed.account !== ctx.accountId)
      throw new ServiceError("StateMachineDoesNotExist", `State Machine Does Not Exist: '${arn}'`);
    return m;
  }

  private execution(arn: string, ctx: CallContext, action: string): ExecutionRecord {
    const parsed = parseArn(arn, "execution");
    this.allow(ctx, action, arn);
    const e = this.state.executions[arn];
    if (!e || parsed.region !== ctx.region || parsed.account !== ctx.accountId)
      throw new ServiceError("ExecutionDoesNotExist", `Execution Does Not Exist: '${arn}'`);
    return e;
  }

  /** The caller's IAM policies must allow the action (Step Functions has no resource policies). */
  private allow(ctx: CallContext, action: string, resource: string): void {
    const denial = identityDenial(
      { principal: ctx.principal, action, resource, context: globalContextKeys(ctx) },
      this.account.iam.identityPolicies(ctx.principal),
      this.account.accountId,
    );
    if (denial) throw new ServiceError("AccessDeniedException", denial);
  }

  /**
   * Giving a state machine a role: the caller needs iam:PassRole on it, and the role must exist and
   * trust Step Functions (AWS tries to assume it when the state machine is created).
   */
  private passRole(ctx: CallContext, roleArn: string): void {
    if (!/^arn:aws:iam::\d{12}:role\/.+/.test(roleArn))
      throw new ServiceError(
        "InvalidArn",
        `Invalid Arn: 'Resource type not valid in this context: ${roleArn}'`,
      );
    this.allow(ctx, "iam:PassRole", roleArn);
    try {
      this.account.call(
        this.account.sts,
        "AssumeRole",
        { RoleArn: roleArn, RoleSessionName: randomBytes(16).toString("hex") },
        serviceContext(ctx.region, this.account),
      );
    } catch {
      throw new ServiceError(
        "AccessDeniedException",
        "Neither the global service principal states.amazonaws.com, nor the regional one is authorized to assume the provided role.",
      );
    }
  }
}

/** A call Step Functions makes itself (assuming the execution role). */
export function serviceContext(region: string, account: Account): CallContext {
  return callContext({
    accountId: account.accountId,
    region,
    requestId: uuid(),
    principal: STATES_PRINCIPAL,
    now: account.now(),
    sourceIp: "states.amazonaws.com",
    userAgent: "states.amazonaws.com",
    secureTransport: true,
  });
}

function describeMachine(m: MachineRecord) {
  return {
    stateMachineArn: m.arn,
    name: m.name,
    status: m.status,
    definition: m.definition,
    roleArn: m.roleArn,
    type: m.type,
    creationDate: new Date(m.creationDate),
    loggingConfiguration: { level: "OFF", includeExecutionData: false },
    tracingConfiguration: { enabled: false },
    revisionId: m.revisionId,
  };
}

function parseArn(arn: string, kind: "stateMachine" | "execution") {
  const m = ARN.exec(arn);
  if (!m || m[3] !== kind || (kind === "execution") !== (m[5] !== undefined))
    throw new ServiceError("InvalidArn", `Invalid Arn: '${arn}'`);
  return { region: m[1]!, account: m[2]!, name: m[4]! };
}

function checkName(name: string, member: string): void {
  if (BAD_NAME.test(name)) throw new ServiceError("InvalidName", `Invalid Name: '${name}' (${member})`);
}

/** Problems as ValidateStateMachineDefinition reports them: none for a definition AWS accepts. */
export function definitionProblems(
  text: string,
): { severity: string; code: string; message: string; location?: string }[] {
  let definition: unknown;
  try {
    definition = JSON.parse(text);
  } catch (err) {
    return [{ severity: "ERROR", code: "INVALID_JSON_DESCRIPTION", message: (err as Error).message }];
  }
  return aslValidatorProblems(definition).map((message) => ({
    severity: "ERROR",
    code: "SCHEMA_VALIDATION_FAILED",
    message,
  }));
}

function checkDefinition(text: string): void {
  const problems = definitionProblems(text);
  if (problems.length > 0)
    throw new ServiceError(
      "InvalidDefinition",
      `Invalid State Machine Definition: '${problems.map((p) => `${p.code}: ${p.message}`).join(", ")}'`,
    );
}

/** A page of a list, with an opaque token for the next. */
function paginate<T>(all: T[], maxResults: number | undefined, token: string | undefined) {
  let start = 0;
  if (token !== undefined) {
    const n = Number(Buffer.from(token, "base64url").toString("utf8").replace(/^p:/, ""));
    if (!Number.isInteger(n) || n < 0 || n > all.length)
      throw new ServiceError("InvalidToken", `Invalid Token: '${token}'`);
    start = n;
  }
  const size = maxResults ? maxResults : 100;
  const items = all.slice(start, start + size);
  const end = start + items.length;
  return {
    items,
    nextToken: end < all.length ? Buffer.from(`p:${end}`).toString("base64url") : undefined,
  };
}

/** `includeExecutionData: false`: the events without their inputs, outputs and parameters. */
function withoutData(event: HistoryEvent): HistoryEvent {
  const out: HistoryEvent = { ...event };
  for (const [k, v] of Object.entries(event)) {
    if (!k.endsWith("EventDetails") || typeof v !== "object" || v === null) continue;
    const { input: _i, output: _o, parameters: _p, ...rest } = v as Record<string, unknown>;
    out[k] = rest;
  }
  return out;
}
