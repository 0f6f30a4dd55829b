import { describe, expect, it } from "vitest";
import { createActor, waitFor } from "xstate";
import { buildLabMachine, type StageExecutor, type StageVerdict } from "../machines/lab.js";
import { BlockedError, StepError, StoppedError } from "../machines/runner.js";
import type { StageId } from "../steps/dsl.js";
import { STAGES } from "../steps/registry.js";

/**
 * The machine generated from the registry, driven by a scripted executor: what runs in parallel,
 * what a failure or a block does to the stages that depend on it, and that a snapshot taken
 * mid-run restores into a new machine that finishes the run. (The executor that talks to AWS is
 * tested end to end against the simulator.)
 */
type Script = Partial<
  Record<StageId, { precondition?: Error; run?: Error; points?: number; rollback?: Error }>
>;

function scripted(script: Script = {}) {
  const log: string[] = [];
  const running = new Set<string>();
  let maxParallel = 0;
  const step = async (what: string, id: StageId, error?: Error) => {
    running.add(`${what}:${id}`);
    maxParallel = Math.max(maxParallel, running.size);
    await new Promise((r) => setTimeout(r, 5));
    running.delete(`${what}:${id}`);
    log.push(`${what}:${id}`);
    if (error) throw error;
  };
  const executor: StageExecutor = {
    precondition: (id) => step("check", id, script[id]?.precondition),
    run: (id) => step("run", id, script[id]?.run),
    verify: async (id): Promise<StageVerdict> => {
      await step("verify", id);
      const max = STAGES.find((s) => s.id === id)!.points;
      return { points: script[id]?.points ?? max, maxPoints: max };
    },
    rollback: (id) => step("rollback", id, script[id]?.rollback),
  };
  return { executor, log, maxParallel: () => maxParallel };
}

async function runToEnd(executor: StageExecutor, passed: StageId[] = []) {
  const actor = createActor(buildLabMachine(STAGES, executor), { input: { passed } }).start();
  const done = await waitFor(actor, (s) => s.status === "done", { timeout: 10_000 });
  return done.context.stages;
}

describe("the lab machine", () => {
  it("passes every stage, running independent stages at the same time and dependent ones in order", async () => {
    const { executor, log, maxParallel } = scripted();
    const stages = await runToEnd(executor);
    expect(Object.values(stages).map((s) => s.status)).toEqual(Array(6).fill("passed"));
    expect(maxParallel()).toBeGreaterThan(1);
    const at = (entry: string) => log.indexOf(entry);
    expect(at("verify:create-key")).toBeLessThan(at("check:sse-kms-upload"));
    expect(at("verify:public-access-denied")).toBeLessThan(at("check:trail-key-usage"));
    expect(at("verify:trail-to-bucket")).toBeLessThan(at("check:trail-key-usage"));
  });

  it("rolls back a failed stage, blocks what depends on it and lets the rest finish", async () => {
    const { executor, log } = scripted({
      "trail-to-bucket": { run: new StepError("createTrail", "AccessDenied") },
    });
    const stages = await runToEnd(executor);
    expect(stages["trail-to-bucket"]).toEqual({ status: "failed", reason: "AccessDenied" });
    expect(log).toContain("rollback:trail-to-bucket");
    expect(stages["trail-key-usage"]).toEqual({
      status: "blocked",
      reason: "trail-to-bucket did not pass",
    });
    for (const id of ["create-key", "sse-kms-upload", "public-access-denied", "key-user-access"])
      expect(stages[id]!.status, id).toBe("passed");
  });

  it("blocks on a precondition without running or rolling back, and records a failed rollback beside the failure", async () => {
    const { executor, log } = scripted({
      "create-key": { precondition: new BlockedError("the alias is taken") },
      "trail-to-bucket": { run: new StepError("x", "boom"), rollback: new Error("bucket not empty") },
    });
    const stages = await runToEnd(executor);
    expect(stages["create-key"]).toEqual({ status: "blocked", reason: "the alias is taken" });
    expect(log).not.toContain("run:create-key");
    expect(stages["sse-kms-upload"]!.status).toBe("blocked");
    expect(stages["key-user-access"]!.status).toBe("blocked");
    expect(stages["trail-to-bucket"]).toEqual({
      status: "failed",
      reason: "boom; rolling back failed too: bucket not empty",
    });
  });

  it("continues a run: stages that passed before are not run again", async () => {
    const { executor, log } = scripted();
    const stages = await runToEnd(executor, ["create-key", "trail-to-bucket"]);
    expect(Object.values(stages).map((s) => s.status)).toEqual(Array(6).fill("passed"));
    expect(log.filter((l) => l.endsWith(":create-key") || l.endsWith(":trail-to-bucket"))).toEqual([]);
    expect(log).toContain("run:sse-kms-upload");
  });

  it("fails a stage whose verification falls short", async () => {
    const { executor } = scripted({ "public-access-denied": { points: 7 } });
    const stages = await runToEnd(executor);
    expect(stages["public-access-denied"]!.status).toBe("failed");
    expect(stages["trail-key-usage"]!.status).toBe("blocked");
  });

  it("restores a snapshot taken while a stage was stopped, and finishes in a new machine", async () => {
    let stop = true;
    const first = scripted();
    const stopping: StageExecutor = {
      ...first.executor,
      run: async (id) => {
        if (id === "sse-kms-upload" && stop) throw new StoppedError("stopped");
        return first.executor.run(id);
      },
    };
    const actor = createActor(buildLabMachine(STAGES, stopping), { input: {} }).start();
    await waitFor(
      actor,
      (s) =>
        s.context.stages["trail-to-bucket"]!.status === "passed" &&
        s.context.stages["sse-kms-upload"]!.status === "running",
    );
    const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
    actor.stop();

    stop = false;
    const second = scripted();
    const resumed = createActor(buildLabMachine(STAGES, second.executor), {
      snapshot: persisted,
      input: {},
    }).start();
    const done = await waitFor(resumed, (s) => s.status === "done", { timeout: 10_000 });
    expect(Object.values(done.context.stages).map((s) => s.status)).toEqual(Array(6).fill("passed"));
    // Only the stage in flight and those after it ran again.
    expect(second.log).not.toContain("run:create-key");
    expect(second.log).toContain("run:sse-kms-upload");
  });
});
