import { randomBytes } from "node:crypto";
import { type AnyActorRef, createActor } from "xstate";
import { crashHarness } from "../lib/crash.js";
import { DiskFullError } from "../lib/files.js";
import {
  assertTarget,
  Checkpointer,
  createState,
  type JournalEntry,
  type StageStatus as RecordStatus,
  type StageRecord,
  type StateFile,
  type StateStore,
  type Target,
} from "../state/index.js";
import { RUN_TAG, STAGE_TAG } from "../steps/build.js";
import type { Check, StageDef, StageId, Step } from "../steps/dsl.js";
import type { Bindings } from "../steps/expr.js";
import type { ResolvedParams } from "../steps/params.js";
import { allSteps, LAB_VERSION, STAGES } from "../steps/registry.js";
import type { Clients } from "./aws.js";
import {
  buildLabMachine,
  type LabContext,
  MACHINE_VERSION,
  type StageExecutor,
  type StageStatus,
  type StageVerdict,
} from "./lab.js";
import {
  BlockedError,
  type CheckResult,
  type ProgressEvent,
  type RunnerHooks,
  StageRunner,
  StepError,
  StoppedError,
} from "./runner.js";

/**
 * The local engine: runs the lab's machine against a target, writing the state store before and after
 * every effect and before every wait (machine transitions, reads and verdicts go with the next of
 * those writes: a crash only makes a resumed run do them again), so that a run stopped at any point
 * (crash, Ctrl-C, a long CloudTrail wait) continues where it was when run again. Verification reads
 * the account only.
 */

export interface EngineOptions {
  store: StateStore;
  clients: Clients;
  target: Target;
  /** The parameters for a new run; a continued run uses the ones its state file records. */
  params: ResolvedParams;
  command: string;
  progress?: (event: EngineEvent) => void;
  /** Aborted on Ctrl-C: the run stops at the next step boundary, checkpointed. */
  signal?: AbortSignal;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** The stages to run (the registry's unless a test gives another list). */
  stages?: readonly StageDef[];
}

export type EngineEvent =
  | ProgressEvent
  | { kind: "stage"; stageId: StageId; status: StageStatus; reason?: string };

export interface StageOutcome {
  status: StageStatus;
  reason?: string;
  points?: number;
  maxPoints: number;
  checks?: CheckResult[];
}

export interface LabResult {
  runId: string;
  /** True when every stage passed. */
  complete: boolean;
  /** True when the run was stopped (Ctrl-C) before the machine finished. */
  interrupted: boolean;
  stages: Record<StageId, StageOutcome>;
}

export class ParamsMismatchError extends Error {}
export class MachineVersionError extends Error {}

const ENGINE_VERSION = `${MACHINE_VERSION}.${LAB_VERSION}`;

/**
 * The crash-safety tests' harness: `KMSLAB_TEST_CRASH_AFTER_EFFECT=k` kills this process with
 * SIGKILL right after the k-th effect of the run is checkpointed; `k:call` right after its AWS call
 * returned, before the checkpoint — the window in which a resumed run must find what was made.
 */
const crash = crashHarness("KMSLAB_TEST_CRASH_AFTER_EFFECT");
let effectsDone = 0;
const DEADLINES = "__deadlines";
const CURSOR = "__cursor";

/**
 * Whether a run may continue the state file's: the same account and Region, the same lab engine and
 * the same parameters; throws StateTargetMismatch, MachineVersionError or ParamsMismatchError (exit
 * 5) otherwise. The engine checks before it acts; the CLI checks earlier when it can, before the
 * embedded account is even opened.
 */
export function assertResumable(
  existing: StateFile,
  target: Pick<Target, "accountId" | "region">,
  params: ResolvedParams,
): void {
  assertTarget(existing, target);
  if (existing.machineVersion !== ENGINE_VERSION)
    throw new MachineVersionError(
      `the state file was written for lab engine version ${existing.machineVersion}; this kmslab runs version ${ENGINE_VERSION}. Tear that run down (kmslab teardown) with the kmslab that made it, or use another --state file.`,
    );
  const recorded = existing.params as unknown as ResolvedParams;
  const differ = (Object.keys(params) as (keyof ResolvedParams)[]).filter(
    (k) => JSON.stringify(recorded[k]) !== JSON.stringify(params[k]),
  );
  if (differ.length > 0)
    throw new ParamsMismatchError(
      `the state file records a run with other parameters (${differ.join(", ")}): continue it with the same ones, tear it down first (kmslab teardown), or start another run with --state PATH`,
    );
}

export function newRunId(): string {
  return `kmslab-${randomBytes(4).toString("hex")}`;
}

/** Runs (or continues) the lab. Takes the store's lock for the whole run. */
export async function runLab(options: EngineOptions): Promise<LabResult> {
  const engine = new Engine(options);
  await options.store.lock(options.command);
  try {
    return await engine.execute();
  } finally {
    await options.store.unlock();
  }
}

class Engine implements StageExecutor {
  private checkpoints!: Checkpointer;
  private params!: ResolvedParams;
  private active = 0;
  private idle?: () => void;
  private actor?: AnyActorRef;
  private readonly stages: readonly StageDef[];
  private readonly defs: Map<string, StageDef>;

  constructor(private readonly o: EngineOptions) {
    this.stages = o.stages ?? STAGES;
    this.defs = new Map(this.stages.map((s) => [s.id, s]));
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  private get stopping(): boolean {
    return this.o.signal?.aborted === true || this.unwritable !== undefined;
  }

  /**
   * Why the state could not be written (a full disk: DiskFullError), once a write failed. The run
   * then stops as it does on Ctrl-C: no effect may be made that its record does not hold, and no
   * stage is rolled back for a failure that is not its own; execute() throws it at the end.
   */
  private unwritable: Error | undefined;
  private readonly halted = new AbortController();

  /** checkpoints.commit, stopping the run when the state cannot be written. */
  private commit(fn?: (state: StateFile) => void): Promise<void> {
    return this.checkpoints.commit(fn).catch((err: unknown) => {
      throw this.halt(err as Error);
    });
  }

  /**
   * Stops the run for `err` (the state, or the embedded account, cannot be written): returns the
   * StoppedError for the stage to throw, so that it neither fails nor rolls back.
   */
  private halt(err: Error): StoppedError {
    this.unwritable ??= err;
    this.halted.abort();
    return new StoppedError("the state could not be written");
  }

  /** `err`, or the StoppedError that halts the run when it is a full disk. */
  private stopIfDiskFull(err: unknown): unknown {
    return err instanceof DiskFullError ? this.halt(err) : err;
  }

  async execute(): Promise<LabResult> {
    await this.load();
    const machine = buildLabMachine(this.stages, this);
    const snapshot = this.state.snapshot as { status?: string } | undefined;
    const resumeInFlight = snapshot !== undefined && snapshot.status === "active";
    const passed = this.stages.filter((s) => this.state.stages[s.id]?.status === "passed").map((s) => s.id);
    const actor = createActor(machine, {
      input: { passed },
      ...(resumeInFlight ? { snapshot: snapshot as never } : {}),
    });
    this.actor = actor;
    let last: LabContext | undefined;
    const finished = new Promise<void>((resolve) => {
      actor.subscribe({
        next: (s) => {
          const context = s.context as LabContext;
          this.reportTransitions(last, context);
          last = context;
          const snapshot = actor.getPersistedSnapshot();
          this.checkpoints.change((st) => {
            st.snapshot = snapshot;
            this.recordStatuses(st, context);
          });
          if (s.status === "done") resolve();
        },
        error: () => resolve(),
      });
    });
    const stopped = new Promise<void>((resolve) => {
      const stop = () => {
        // Stop once no stage is inside a step: every effect has its checkpoint by then.
        if (this.active === 0) resolve();
        else this.idle = resolve;
      };
      this.o.signal?.addEventListener("abort", stop);
      this.halted.signal.addEventListener("abort", stop);
    });
    actor.start();
    await Promise.race([finished, stopped]);
    const interrupted = actor.getSnapshot().status !== "done";
    const lastWrite = this.checkpoints
      .commit((st) => {
        st.snapshot = actor.getPersistedSnapshot();
        this.recordStatuses(st, actor.getSnapshot().context as LabContext);
      })
      .catch((err: unknown) => {
        this.unwritable ??= err as Error;
      });
    actor.stop();
    await lastWrite;
    await this.checkpoints.settled();
    if (this.unwritable) throw this.unwritable;
    return this.result(interrupted);
  }

  private async load(): Promise<void> {
    const existing = await this.o.store.read();
    if (existing) {
      assertResumable(existing, this.o.target, this.o.params);
      this.checkpoints = new Checkpointer(this.o.store, existing);
      this.params = existing.params as unknown as ResolvedParams;
      return;
    }
    this.params = this.o.params;
    const created = await this.o.store.write(
      createState({
        target: this.o.target,
        runId: newRunId(),
        machineVersion: ENGINE_VERSION,
        params: this.o.params as unknown as Record<string, unknown>,
        now: new Date(this.now()),
      }),
    );
    this.checkpoints = new Checkpointer(this.o.store, created);
  }

  /** The run's state, with every change made so far (written or not yet). */
  private get state(): StateFile {
    return this.checkpoints.state;
  }

  private record(st: StateFile, id: string): StageRecord {
    st.stages[id] ??= { status: "pending", attempts: 0, outputs: {}, evidence: [] };
    return st.stages[id]!;
  }

  private recordStatuses(st: StateFile, context: LabContext): void {
    for (const [id, s] of Object.entries(context.stages)) {
      const r = this.record(st, id);
      const status = toRecordStatus(s.status, r);
      if (r.status !== status) {
        r.status = status;
        if (status === "passed" || status === "failed" || status === "blocked" || status === "rolledBack")
          r.endedAt = this.iso();
      }
      if (s.reason && (status === "blocked" || status === "failed" || status === "rolledBack") && !r.error)
        r.error = { code: status === "blocked" ? "Blocked" : "Failed", message: s.reason, at: this.iso() };
    }
  }

  private reportTransitions(before: LabContext | undefined, after: LabContext): void {
    for (const [id, s] of Object.entries(after.stages)) {
      if (before?.stages[id]?.status === s.status) continue;
      this.o.progress?.({
        kind: "stage",
        stageId: id as StageId,
        status: s.status,
        ...(s.reason ? { reason: s.reason } : {}),
      });
    }
  }

  /** Runs `fn` as an in-flight step: a stop request waits for it to end. */
  private async inFlight<T>(fn: () => Promise<T>): Promise<T> {
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      if (this.active === 0 && this.idle) this.idle();
    }
  }

  private runner(stageId: StageId, vars: Bindings): StageRunner {
    const attempt = this.state.stages[stageId]?.attempts ?? 1;
    const key = (stepId: string) => `${stepId}#${attempt}`;
    const hooks: RunnerHooks = {
      intent: (e) =>
        this.commit((st) => {
          st.journal.push(this.entry(st, e.stageId, key(e.stepId), e.service, e.action, "intent"));
        }),
      done: async (e) => {
        const effect = ++effectsDone;
        crash(effect, "call");
        await this.commit((st) => {
          const entry = this.entry(st, e.stageId, key(e.stepId), e.service, e.action, "done");
          entry.result = e.assigned;
          st.journal.push(entry);
          if (e.resourceArn) {
            entry.resourceArn = e.resourceArn;
            const step = this.step(e.stageId, e.stepId);
            const type = step?.kind === "call" ? step.effect?.resource?.type : undefined;
            if (type && !st.ledger.some((l) => l.arn === e.resourceArn && !l.deletedAt))
              st.ledger.push({
                arn: e.resourceArn,
                type,
                stageId: e.stageId,
                createdAt: this.iso(),
                tags: { [RUN_TAG]: st.runId, [STAGE_TAG]: e.stageId },
              });
          }
          const r = this.record(st, e.stageId);
          r.outputs = { ...r.outputs, ...e.assigned };
        });
        crash(effect);
      },
      recorded: (stepId) => {
        const latest = latestPhase(this.state.journal, stageId, key(stepId));
        if (!latest) return undefined;
        if (latest.phase === "done") return { phase: "done", assigned: (latest.result as Bindings) ?? {} };
        if (latest.phase === "intent") return { phase: "intent" };
        return undefined;
      },
      deadline: async (name, fallbackMs) => {
        const k = `${name}#${attempt}`;
        const saved = (
          this.state.stages[stageId]?.outputs[DEADLINES] as Record<string, number> | undefined
        )?.[k];
        if (saved !== undefined) return saved;
        // Written before the poll first waits (settle): a poll that needs no wait writes nothing.
        this.checkpoints.change((st) => {
          const r = this.record(st, stageId);
          r.outputs = {
            ...r.outputs,
            [DEADLINES]: { ...((r.outputs[DEADLINES] as object) ?? {}), [k]: fallbackMs },
          };
        });
        return fallbackMs;
      },
      cursor: () => Number(this.state.stages[stageId]?.outputs[CURSOR] ?? 0),
      stepDone: async (completed, vars) =>
        this.checkpoints.change((st) => {
          const r = this.record(st, stageId);
          r.outputs = { ...r.outputs, ...vars, [CURSOR]: completed };
        }),
      settle: () => this.commit(),
      progress: (event) => this.o.progress?.(event),
      stopping: () => this.stopping,
      ...(this.o.now ? { now: this.o.now } : {}),
      ...(this.o.sleep ? { sleep: this.o.sleep } : {}),
    };
    return new StageRunner(this.o.clients, this.params, this.state.runId, stageId, hooks, vars);
  }

  private entry(
    st: StateFile,
    stageId: string,
    effectId: string,
    service: string,
    operation: string,
    phase: JournalEntry["phase"],
  ): JournalEntry {
    const seq = (st.journal.at(-1)?.seq ?? 0) + 1;
    return { seq, stageId, effectId, service, operation, phase, at: this.iso() };
  }

  private step(stageId: string, stepId: string): Step | undefined {
    const def = this.defs.get(stageId);
    return def ? allSteps(def.run).find((s) => s.id === stepId) : undefined;
  }

  private savedVars(stageId: StageId): Bindings {
    const { [DEADLINES]: _d, [CURSOR]: _c, ...vars } = this.state.stages[stageId]?.outputs ?? {};
    return vars;
  }

  // ---- the machine's actors -------------------------------------------------------------------

  async precondition(stageId: StageId): Promise<void> {
    await this.inFlight(async () => {
      // Not written yet: the attempt counts once its first effect's intent is written.
      this.checkpoints.change((st) => {
        const r = this.record(st, stageId);
        r.attempts += 1;
        r.status = "running";
        r.startedAt = this.iso();
        r.outputs = {};
        delete r.error;
        delete r.endedAt;
      });
      const runner = this.runner(stageId, {});
      try {
        await runner.runSteps(this.defs.get(stageId)!.precondition, false);
      } catch (caught) {
        const err = this.stopIfDiskFull(caught);
        if (!(err instanceof StoppedError)) await this.recordError(stageId, err);
        throw err;
      }
      this.checkpoints.change((st) => {
        const r = this.record(st, stageId);
        r.outputs = { ...r.outputs, ...runner.persistableVars() };
      });
    });
  }

  async run(stageId: StageId): Promise<void> {
    await this.inFlight(async () => {
      const runner = this.runner(stageId, this.savedVars(stageId));
      try {
        // What a resumed run needs is what the precondition found and what effects made (recorded
        // by the journal hooks); reads are simply made again.
        await runner.runSteps(this.defs.get(stageId)!.run, true);
      } catch (caught) {
        const err = this.stopIfDiskFull(caught);
        if (!(err instanceof StoppedError)) await this.recordError(stageId, err);
        throw err;
      }
    });
  }

  async verify(stageId: StageId): Promise<StageVerdict> {
    return this.inFlight(async () => {
      const def = this.defs.get(stageId)!;
      const checks = await verifyStage(def, (vars) => this.runner(stageId, vars)).catch((err: unknown) => {
        throw this.stopIfDiskFull(err);
      });
      const points = checks.reduce((n, c) => n + c.points, 0);
      this.checkpoints.change((st) => {
        const r = this.record(st, stageId);
        r.evidence = checks as unknown as StageRecord["evidence"];
        if (points < def.points) {
          const missing = checks.filter((c) => c.points < c.maxPoints).map((c) => c.learner ?? c.title);
          r.error = { code: "VerificationFailed", message: missing.join(" "), at: this.iso() };
        }
      });
      return { points, maxPoints: def.points };
    });
  }

  /** Undoes the stage's own completed effects of this attempt, newest first. */
  async rollback(stageId: StageId): Promise<void> {
    await this.inFlight(async () => {
      const attempt = this.state.stages[stageId]?.attempts ?? 1;
      const suffix = `#${attempt}`;
      const done = new Map<string, JournalEntry>();
      for (const e of this.state.journal)
        if (e.stageId === stageId && e.effectId.endsWith(suffix)) {
          if (e.phase === "done") done.set(e.effectId, e);
          if (e.phase === "undone") done.delete(e.effectId);
        }
      const failures: string[] = [];
      for (const entry of [...done.values()].reverse()) {
        const stepId = entry.effectId.slice(0, -suffix.length);
        const step = this.step(stageId, stepId);
        if (step?.kind !== "call" || !step.effect) continue;
        const runner = this.runner(stageId, {
          ...this.savedVars(stageId),
          ...((entry.result as Bindings) ?? {}),
        });
        try {
          await runner.runSteps(step.effect.undo, false);
        } catch (caught) {
          const err = this.stopIfDiskFull(caught);
          if (err instanceof StoppedError) throw err;
          failures.push(`${step.title}: ${(err as Error).message}`);
          continue;
        }
        await this.commit((st) => {
          st.journal.push(this.entry(st, stageId, entry.effectId, entry.service, entry.operation, "undone"));
          const ledger = st.ledger.find((l) => l.arn === entry.resourceArn && !l.deletedAt);
          if (ledger) ledger.deletedAt = this.iso();
        });
      }
      await this.commit((st) => {
        this.record(st, stageId).status = failures.length === 0 ? "rolledBack" : "failed";
      });
      if (failures.length > 0) throw new Error(failures.join("; "));
    });
  }

  private async recordError(stageId: StageId, err: unknown): Promise<void> {
    await this.commit((st) => {
      const r = this.record(st, stageId);
      r.error = {
        code:
          err instanceof BlockedError
            ? "Blocked"
            : err instanceof StepError
              ? (err.code ?? "StepFailed")
              : "Error",
        message: (err as Error).message,
        at: this.iso(),
      };
    });
  }

  private result(interrupted: boolean): LabResult {
    const stages = {} as Record<StageId, StageOutcome>;
    const context = this.actor?.getSnapshot().context as LabContext | undefined;
    for (const def of this.stages) {
      const r = this.state.stages[def.id];
      const status = context?.stages[def.id]?.status ?? "waiting";
      const checks = (r?.evidence ?? []) as unknown as CheckResult[];
      const outcome: StageOutcome = { status, maxPoints: def.points };
      const reason = r?.error?.message ?? context?.stages[def.id]?.reason;
      if (reason && status !== "passed") outcome.reason = reason;
      if (checks.length > 0) {
        outcome.points = checks.reduce((n, c) => n + c.points, 0);
        outcome.checks = checks;
      }
      stages[def.id] = outcome;
    }
    const complete = Object.values(stages).every((s) => s.status === "passed");
    return { runId: this.state.runId, complete, interrupted, stages };
  }
}

/** Runs a stage's checks, each with fresh variables: a check sees only the parameters and its reads. */
export async function verifyStage(
  def: StageDef,
  runner: (vars: Bindings) => StageRunner,
): Promise<CheckResult[]> {
  // Checks are independent reads: made at the same time.
  return Promise.all((def.verify as Check[]).map((c) => runner({}).runCheck(c)));
}

function latestPhase(
  journal: readonly JournalEntry[],
  stageId: string,
  effectId: string,
): JournalEntry | undefined {
  for (let i = journal.length - 1; i >= 0; i--) {
    const e = journal[i]!;
    if (e.stageId === stageId && e.effectId === effectId) return e;
  }
  return undefined;
}

function toRecordStatus(status: StageStatus, record: StageRecord): RecordStatus {
  switch (status) {
    case "waiting":
      return "pending";
    case "checking":
    case "running":
    case "rollingBack":
      return "running";
    case "verifying":
      return "verifying";
    case "failed":
      return record.status === "rolledBack" ? "rolledBack" : "failed";
    default:
      return status;
  }
}
