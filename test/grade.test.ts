import { describe, expect, it } from "vitest";
import { type GradeResult, gradeLab } from "../grade/grade.js";
import { Clients } from "../machines/aws.js";
import { runLab } from "../machines/engine.js";
import { Simulator } from "../sim/simulator.js";
import { MemoryStateStore, parseState } from "../state/index.js";
import type { StageId } from "../steps/dsl.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { labByHand, type Mistakes } from "./helpers/handlab.js";

/**
 * Grading on the embedded simulator: a lab kmslab ran and a lab done by hand through the SDK both
 * grade 100/100 without one write to the account, and each of the common mistakes costs the points
 * lab.md's checks give it, with a learner message that names the problem.
 */
const FAST = { pollSeconds: 1, trailWaitSeconds: 60, propagationWaitSeconds: 10 };

function setup(suffix = "") {
  const sim = Simulator.inMemory();
  const clients = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
  const params = resolveParams(parseParams({ ...FAST, suffix }), sim.account.accountId);
  const target = { kind: "sim" as const, region: "us-east-1", accountId: sim.account.accountId };
  return { sim, clients, params, target };
}

/** Grades and counts what the grading sent: every call the account saw, by operation, and its writes. */
async function graded(env: ReturnType<typeof setup>, extra: Partial<Parameters<typeof gradeLab>[0]> = {}) {
  const operations: string[] = [];
  const stop = env.sim.observe((r) => {
    // CloudTrail delivering a log file is the account's own doing, not the grader's.
    if (!r.readOnly && !r.ctx.viaService && r.ctx.principal.type !== "AWSService")
      operations.push(`${r.service}.${r.operation}`);
  });
  const writes = env.sim.stats.writeCalls;
  const result = await gradeLab({ clients: env.clients, params: env.params, target: env.target, ...extra });
  stop();
  return { result, writes: env.sim.stats.writeCalls - writes, mutating: operations };
}

const points = (r: GradeResult) => Object.fromEntries(r.stages.map((s) => [s.id, s.points]));
const outcome = (r: GradeResult, id: StageId) => r.stages.find((s) => s.id === id)!.outcome;
const messages = (r: GradeResult, id?: StageId) =>
  r.stages
    .filter((s) => id === undefined || s.id === id)
    .flatMap((s) => s.checks.flatMap((c) => (c.learner ? [c.learner] : [])))
    .join("\n");

describe("kmslab grade on the embedded simulator", () => {
  it("grades an empty account 0/100, every stage not attempted, without a write", async () => {
    const env = setup();
    const { result, writes } = await graded(env);
    expect(result.score).toBe(0);
    expect(result.passed).toBe(false);
    expect(result.stages.map((s) => s.outcome)).toEqual(Array(6).fill("notAttempted"));
    expect(writes).toBe(0);
    expect(messages(result, "create-key")).toContain("No key answers to alias/myFirstKey");
  });

  it("grades a lab kmslab ran 100/100 from its state file, read-only: the account's writes do not move", async () => {
    const env = setup();
    const store = new MemoryStateStore();
    const run = await runLab({
      store,
      clients: env.clients,
      target: env.target,
      params: env.params,
      command: "test",
    });
    expect(run.complete).toBe(true);
    const state = parseState(store.snapshotText!, "memory");
    const { result, writes, mutating } = await graded(env, { state });
    expect(result.score).toBe(100);
    expect(result.percent).toBe(100);
    expect(result.passed).toBe(true);
    expect(result.run?.runId).toBe(run.runId);
    expect(result.stages.every((s) => s.outcome === "passed" && s.run?.status === "passed")).toBe(true);
    // Read-only: no call that changes a resource; the only non-read is the key user's session.
    expect(writes).toBe(0);
    expect(new Set(mutating)).toEqual(new Set(["sts.AssumeRole"]));
    // The evidence names what was found: the key's ARN, CloudTrail's event ids.
    const usage = result.stages.find((s) => s.id === "trail-key-usage")!.checks[0]!;
    expect(usage.evidence.keyArn).toMatch(/^arn:aws:kms:us-east-1:\d{12}:key\//);
    expect(usage.evidence.generateDataKeyEvents).toBeTruthy();
  }, 60_000);

  it("grades a lab done by hand 100/100 from the parameters alone", async () => {
    const env = setup();
    await labByHand(env.sim);
    const { result, writes } = await graded(env);
    expect(messages(result)).toBe("");
    expect(points(result)).toEqual({
      "create-key": 15,
      "trail-to-bucket": 15,
      "sse-kms-upload": 15,
      "public-access-denied": 15,
      "trail-key-usage": 20,
      "key-user-access": 20,
    });
    expect(result.run).toBeUndefined();
    expect(writes).toBe(0);
  });

  it("refuses a call that is not a read before it reaches the account", async () => {
    const { GradingClients, ReadOnlyError } = await import("../grade/grade.js");
    const env = setup();
    const writes = env.sim.stats.writeCalls;
    const guarded = new GradingClients(env.clients);
    await expect(guarded.call("s3", "CreateBucket", { Bucket: "nope" })).rejects.toBeInstanceOf(
      ReadOnlyError,
    );
    expect(env.sim.stats.writeCalls).toBe(writes);
    // The counter the read-only tests rely on does count a write, and not an AssumeRole's session.
    await env.clients.call("s3", "CreateBucket", { Bucket: "kmslab-counted" });
    expect(env.sim.stats.writeCalls).toBe(writes + 1);
    await labByHand(env.sim);
    const sessions = env.sim.stats.mutatingCalls;
    const before = env.sim.stats.writeCalls;
    await guarded.call("sts", "AssumeRole", {
      RoleArn: `arn:aws:iam::${env.sim.account.accountId}:role/kmslab-key-user`,
      RoleSessionName: "grader",
    });
    expect(env.sim.stats.mutatingCalls).toBe(sessions + 1);
    expect(env.sim.stats.writeCalls).toBe(before);
  });

  // Each mistake: the points per stage it leaves, and what the learner is told.
  const cases: [string, Mistakes, Partial<Record<StageId, number>>, StageId, RegExp][] = [
    [
      "no key-user statement",
      { noKeyUserStatement: true },
      { "create-key": 8, "key-user-access": 0 },
      "create-key",
      /key policy needs a statement that allows the role kmslab-key-user kms:Decrypt and kms:GenerateDataKey/,
    ],
    [
      "trail created but not logging",
      { trailNotLogging: true },
      { "trail-to-bucket": 10, "trail-key-usage": 12 },
      "trail-to-bucket",
      /exists but is not logging/,
    ],
    [
      "SSE-S3 instead of SSE-KMS",
      { sseS3: true },
      { "sse-kms-upload": 4, "trail-key-usage": 0 },
      "sse-kms-upload",
      /encrypted with AES256 \(SSE-S3\); upload it with SSE-KMS/,
    ],
    [
      "bucket key on",
      { bucketKey: true },
      // With a bucket key S3 asks KMS per bucket, not per object: CloudTrail shows no object's use.
      { "sse-kms-upload": 10, "trail-key-usage": 0 },
      "sse-kms-upload",
      /Turn the S3 Bucket Key off/,
    ],
    [
      "a public bucket policy",
      { publicPolicy: true },
      // An anonymous GET reaches the object (only SSE-KMS refuses it: 7 points lost); the bucket is public (3).
      { "public-access-denied": 5 },
      "public-access-denied",
      /lets anonymous requests through to reports\/secret-report.txt[\s\S]*bucket policy of kmslab-data-\d+-us-east-1 makes it public/,
    ],
    [
      "the key user never removed",
      { neverRemoved: true },
      { "key-user-access": 10 },
      "key-user-access",
      /key user was never removed from the key policy/,
    ],
    [
      "the key user left removed",
      { leftRemoved: true },
      { "create-key": 8, "key-user-access": 7 },
      "key-user-access",
      /key user was left removed/,
    ],
    [
      "a log bucket policy without CloudTrail's write permission",
      { noCloudTrailWrite: true },
      { "trail-to-bucket": 13, "trail-key-usage": 12 },
      "trail-to-bucket",
      /CloudTrail cannot write into kmslab-trail-\d+-us-east-1 .*must let cloudtrail\.amazonaws\.com s3:PutObject/,
    ],
    [
      "a wrong alias",
      { wrongAlias: "alias/MyFirstKey" },
      { "create-key": 0, "sse-kms-upload": 8, "trail-key-usage": 8, "key-user-access": 5 },
      "create-key",
      /No key answers to alias\/myFirstKey \(the account has alias\/MyFirstKey: a wrong alias\?/,
    ],
  ];
  const FULL: Record<StageId, number> = {
    "create-key": 15,
    "trail-to-bucket": 15,
    "sse-kms-upload": 15,
    "public-access-denied": 15,
    "trail-key-usage": 20,
    "key-user-access": 20,
  };

  for (const [name, mistakes, expected, stage, message] of cases)
    it(`${name}: ${JSON.stringify(expected)}, and the learner is told`, async () => {
      const env = setup();
      await labByHand(env.sim, mistakes);
      const { result, writes } = await graded(env);
      const want = { ...FULL, ...expected };
      expect(points(result)).toEqual(want);
      expect(result.score).toBe(Object.values(want).reduce((a, b) => a + b, 0));
      expect(messages(result, stage)).toMatch(message);
      expect(["partial", "failed"]).toContain(outcome(result, stage));
      expect(writes).toBe(0);
    });

  it("grades learners who share an account by their suffix, each on their own resources", async () => {
    const env = setup();
    await labByHand(env.sim, {}, "-ann");
    await labByHand(env.sim, { sseS3: true }, "-bob");
    const forSuffix = (suffix: string) => ({
      ...env,
      params: resolveParams(parseParams({ ...FAST, suffix }), env.sim.account.accountId),
    });
    const ann = await graded(forSuffix("-ann"), { learner: "Ann" });
    const bob = await graded(forSuffix("-bob"), { learner: "Bob" });
    expect(ann.result.score).toBe(100);
    expect(bob.result.score).toBe(69);
    expect(bob.result.learner).toBe("Bob");
  });
});
