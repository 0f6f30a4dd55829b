import { assign, fromPromise, setup } from "xstate";
import type { StageDef, StageId } from "../steps/dsl.js";
import { BlockedError, StoppedError } from "./runner.js";

/**
 * The lab as an XState v5 machine, generated from the stage registry: one parallel region per
 * stage — waiting (for its dependencies) → checking (precondition) → running → verifying →
 * passed | failed | blocked, with rolling back (the stage's own completed effects, newest first)
 * when running fails. Regions whose dependencies are met run at the same time. The machine holds
 * names only; what each actor does is the executor's (machines/engine.ts), so a persisted snapshot
 * restores into a machine built the same way in another process.
 */

export type StageStatus =
  | "waiting"
  | "checking"
  | "running"
  | "verifying"
  | "rollingBack"
  | "passed"
  | "failed"
  | "blocked";

export interface StageVerdict {
  points: number;
  maxPoints: number;
}

/** What the machine's actors do; the engine implements it (and tests may). */
export interface StageExecutor {
  precondition(stageId: StageId): Promise<void>;
  run(stageId: StageId): Promise<void>;
  verify(stageId: StageId): Promise<StageVerdict>;
  rollback(stageId: StageId, reason: string): Promise<void>;
}

export interface LabContext {
  /** Stages that passed in an earlier attempt of this run; they are not run again. */
  passed: StageId[];
  stages: Record<string, { status: StageStatus; reason?: string }>;
}

interface StageInput {
  stageId: StageId;
}

/** A run continued after some stages failed or were blocked: the stages that passed stay passed. */
export interface LabInput {
  passed?: StageId[];
}

/** Bumped when the machine's shape changes: a snapshot of another shape is not restored. */
export const MACHINE_VERSION = "1";

const FINAL = new Set<StageStatus>(["passed", "failed", "blocked"]);

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function buildLabMachine(stages: readonly StageDef[], executor: StageExecutor) {
  /**
   * A promise actor that never settles once the run is asked to stop: the snapshot then still
   * shows the stage in flight, and a resumed run starts its actor again (the journal keeps its
   * effects from being repeated).
   */
  const actor = <T>(fn: (input: StageInput) => Promise<T>) =>
    fromPromise<T, StageInput>(({ input }) =>
      fn(input).catch((err: unknown) => {
        if (err instanceof StoppedError) return new Promise<T>(() => {});
        throw err;
      }),
    );

  const byId = new Map(stages.map((s) => [s.id, s]));
  const status = (context: LabContext, id: string) => context.stages[id]?.status;

  return setup({
    types: {
      context: {} as LabContext,
      input: {} as LabInput,
    },
    actors: {
      checkPrecondition: actor(({ stageId }) => executor.precondition(stageId)),
      runStage: actor(({ stageId }) => executor.run(stageId)),
      verifyStage: actor(({ stageId }) => executor.verify(stageId)),
      rollbackStage: actor(({ stageId }) =>
        executor.rollback(stageId, "the stage failed; its own effects are undone"),
      ),
    },
    guards: {
      alreadyPassed: ({ context }, params: StageInput) => context.passed.includes(params.stageId),
      dependenciesPassed: ({ context }, params: StageInput) =>
        byId.get(params.stageId)!.dependsOn.every((d) => status(context, d) === "passed"),
      dependencyNotPassed: ({ context }, params: StageInput) =>
        byId
          .get(params.stageId)!
          .dependsOn.some((d) => FINAL.has(status(context, d)!) && status(context, d) !== "passed"),
      isBlocked: ({ event }) => (event as { error?: unknown }).error instanceof BlockedError,
      gotFullPoints: ({ event }) => {
        const v = (event as { output?: StageVerdict }).output;
        return v !== undefined && v.points >= v.maxPoints;
      },
    },
    actions: {
      recordStatus: assign(({ context, event }, params: StageInput & { status: StageStatus }) => {
        const error = (event as { error?: unknown }).error;
        const previous = context.stages[params.stageId]?.reason;
        const entry: LabContext["stages"][string] = { status: params.status };
        if (error !== undefined) entry.reason = message(error);
        else if (previous !== undefined) entry.reason = previous;
        return { stages: { ...context.stages, [params.stageId]: entry } };
      }),
      /** Blocked because a dependency did not pass: named, whatever event got the machine here. */
      recordDependencyBlock: assign(({ context }, params: StageInput) => {
        const deps = byId
          .get(params.stageId)!
          .dependsOn.filter((d) => FINAL.has(status(context, d)!) && status(context, d) !== "passed");
        const reason = `${deps.join(" and ")} did not pass`;
        return {
          stages: { ...context.stages, [params.stageId]: { status: "blocked" as StageStatus, reason } },
        };
      }),
      /** A failed rollback is recorded beside the failure that caused it, never instead of it. */
      recordRollbackFailure: assign(({ context, event }, params: StageInput) => {
        const reason = `${context.stages[params.stageId]?.reason ?? "failed"}; rolling back failed too: ${message((event as { error?: unknown }).error)}`;
        return {
          stages: { ...context.stages, [params.stageId]: { status: "failed" as StageStatus, reason } },
        };
      }),
    },
  }).createMachine({
    id: "kmslab",
    type: "parallel",
    context: ({ input }) => ({
      passed: input?.passed ?? [],
      stages: Object.fromEntries(
        stages.map((s) => [
          s.id,
          { status: (input?.passed?.includes(s.id) ? "passed" : "waiting") as StageStatus },
        ]),
      ),
    }),
    states: Object.fromEntries(
      stages.map((s) => {
        const p = { stageId: s.id };
        const to = (target: string, st: StageStatus) => ({
          target,
          actions: { type: "recordStatus" as const, params: { ...p, status: st } },
        });
        return [
          s.id,
          {
            initial: "waiting",
            states: {
              waiting: {
                always: [
                  { guard: { type: "alreadyPassed" as const, params: p }, target: "passed" },
                  {
                    guard: { type: "dependencyNotPassed" as const, params: p },
                    target: "blocked",
                    actions: { type: "recordDependencyBlock" as const, params: p },
                  },
                  {
                    guard: { type: "dependenciesPassed" as const, params: p },
                    ...to("checking", "checking"),
                  },
                ],
              },
              checking: {
                invoke: {
                  id: `${s.id}.precondition`,
                  src: "checkPrecondition" as const,
                  input: p,
                  onDone: to("running", "running"),
                  onError: [
                    { guard: "isBlocked" as const, ...to("blocked", "blocked") },
                    to("failed", "failed"),
                  ],
                },
              },
              running: {
                invoke: {
                  id: `${s.id}.run`,
                  src: "runStage" as const,
                  input: p,
                  onDone: to("verifying", "verifying"),
                  onError: to("rollingBack", "rollingBack"),
                },
              },
              verifying: {
                invoke: {
                  id: `${s.id}.verify`,
                  src: "verifyStage" as const,
                  input: p,
                  onDone: [
                    { guard: "gotFullPoints" as const, ...to("passed", "passed") },
                    to("failed", "failed"),
                  ],
                  onError: to("failed", "failed"),
                },
              },
              rollingBack: {
                invoke: {
                  id: `${s.id}.rollback`,
                  src: "rollbackStage" as const,
                  input: p,
                  onDone: to("failed", "failed"),
                  onError: {
                    target: "failed",
                    actions: { type: "recordRollbackFailure" as const, params: p },
                  },
                },
              },
              passed: { type: "final" as const },
              failed: { type: "final" as const },
              blocked: { type: "final" as const },
            },
          },
        ];
      }),
    ),
  });
}

export type LabMachine = ReturnType<typeof buildLabMachine>;
