import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { aslValidatorProblems, structuralProblems } from "../asl/check.js";
import { exportLab, exportTeardown, levels } from "../asl/export.js";
import { executionRolePolicy } from "../asl/iam.js";
import { allStates, execute, StatesError, virtualClock } from "../asl/interpreter.js";
import { labMermaid } from "../asl/mermaid.js";
import type { Definition, State } from "../asl/types.js";
import type { Clients } from "../machines/aws.js";
import { LOOKUP_RETRY, StageRunner } from "../machines/runner.js";
import { check } from "../steps/build.js";
import type { StageDef } from "../steps/dsl.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { STAGES } from "../steps/registry.js";
import { runCli, tempDir } from "./helpers/cli.js";

/**
 * The Step Functions export: every definition passes asl-validator and kmslab's structural check
 * (and the check finds what is wrong when something is), the definitions carry what the issue asks
 * (Parallel by dependencies, Retry with jitter, compensation newest first, Credentials for the key
 * user, the probe replacements said in Comments), the interpreter's Retry/Catch/Choice/Parallel,
 * the committed workflows/ files are what the generator makes today, and the CLI.
 */

const WORKFLOWS = resolve(import.meta.dirname, "../workflows");

const NO_MESSAGES = { evidence: {}, learner: '"-"', author: '"-"' };

const lab = await exportLab();
const teardown = await exportTeardown();

function state(def: Definition, name: string): State {
  const found = allStates(def).find(([n]) => n === name);
  if (!found) throw new Error(`no state ${name}`);
  return found[1];
}

describe("the exported definitions", () => {
  it("pass asl-validator and the structural check (Next targets, reachability, SDK operations and members)", () => {
    for (const d of [lab.definition, teardown.definition]) {
      expect(structuralProblems(d)).toEqual([]);
      expect(aslValidatorProblems(d)).toEqual([]);
    }
  });

  it("the structural check finds a missing Next, an unreachable state, an unknown operation and unknown members", () => {
    const broken = structuredClone(teardown.definition);
    const tasks = allStates(broken).filter(([, s]) => s.Type === "Task");
    const [nameA, a] = tasks.find(([, s]) => s.Resource?.endsWith(":deleteAlias"))!;
    const [nameB, b] = tasks.find(([, s]) => s.Resource?.endsWith(":scheduleKeyDeletion"))!;
    const [nameC, c] = tasks.find(([, s]) => s.Resource?.endsWith(":deleteObjects"))!;
    a.Next = "nowhere";
    b.Resource = "arn:aws:states:::aws-sdk:kms:scheduleKeyDeletions";
    (c.Arguments as Record<string, unknown>).Delete = { Objects: [{ Key: "k", Colour: "red" }], Quiet: true };
    (a.Arguments as Record<string, unknown>).AliasNames = "alias/x";
    broken.States.Orphan = { Type: "Pass", End: true };
    const problems = structuralProblems(broken);
    // The teardown's Tasks are in its Maps' item processors: the problems say where.
    const inMap = (type: string, name: string) => `teardown.${type} / items: ${name}`;
    expect(problems).toContain(
      `${inMap("aliases", nameA)}: goes to nowhere, which is not a state of its branch`,
    );
    expect(problems).toContain(
      `${inMap("keys", nameB)}: the AWS SDK has no kms operation ScheduleKeyDeletions`,
    );
    expect(problems).toContain(
      `${inMap("buckets", nameC)}: Delete.Objects[0].Colour is not a member of DeleteObjects's input`,
    );
    expect(problems).toContain(
      `${inMap("aliases", nameA)}: AliasNames is not a member of DeleteAlias's input`,
    );
    expect(problems).toContain("Orphan: is not reachable from Parameters");
    const twice = structuredClone(lab.definition);
    twice.States["create-key.run.createKey"] = { Type: "Pass", End: true };
    expect(structuralProblems(twice)).toContain(
      "create-key.run.createKey: the name is used by more than one state",
    );
    expect(aslValidatorProblems(broken).join("\n")).toMatch(/nowhere|Orphan/);
  });

  it("runs stages without a dependency between them in one Parallel state, in dependency order", () => {
    expect(levels(STAGES).map((l) => l.map((s) => s.id))).toEqual([
      ["create-key", "trail-to-bucket"],
      ["sse-kms-upload"],
      ["public-access-denied", "key-user-access"],
      ["trail-key-usage"],
    ]);
    const first = lab.definition.States["stages: create-key, trail-to-bucket"]!;
    expect(first.Type).toBe("Parallel");
    expect(first.Branches!.map((b) => b.StartAt)).toEqual(["create-key", "trail-to-bucket"]);
    expect(lab.definition.States.Parameters!.Next).toBe("stages: create-key, trail-to-bucket");
  });

  it("names aws-sdk resources with camelCase actions and retries throttling with backoff, full jitter and a cap", () => {
    const createKey = state(lab.definition, "create-key.run.createKey");
    expect(createKey.Resource).toBe("arn:aws:states:::aws-sdk:kms:createKey");
    expect(Object.keys(createKey.Arguments as object)).toEqual([
      "Description",
      "KeyUsage",
      "KeySpec",
      "Policy",
      "Tags",
    ]);
    expect(createKey.Retry).toContainEqual(
      expect.objectContaining({
        ErrorEquals: ["Kms.KMSInternalException", "Kms.ThrottlingException"],
        BackoffRate: 2,
        JitterStrategy: "FULL",
        MaxDelaySeconds: 10,
      }),
    );
    // The role KMS does not accept yet (IAM propagation) is retried within the budget.
    expect(createKey.Retry![0]).toMatchObject({
      ErrorEquals: ["Kms.MalformedPolicyDocumentException"],
      JitterStrategy: "FULL",
    });
    // S3 models none of its throttling and 5xx errors: their Step Functions names are unconfirmed.
    expect(state(lab.definition, "sse-kms-upload.run.upload").Retry![0]!.ErrorEquals).toContain(
      "S3.SlowDownException",
    );
    // LookupEvents (2 a second, shared by the account) retries throttling longer, as the engine does.
    const lookup = state(lab.definition, "trail-key-usage.run.lookupKeyUse");
    expect(lookup.Retry![0]).toMatchObject({
      ErrorEquals: ["CloudTrail.ThrottlingException"],
      MaxAttempts: LOOKUP_RETRY.maxAttempts - 1,
      MaxDelaySeconds: LOOKUP_RETRY.maxDelayMs / 1000,
    });
    expect(lookup.Arguments).toMatchObject({
      LookupAttributes: [{ AttributeKey: "ResourceName", AttributeValue: "{% $key.Arn %}" }],
    });
  });

  it("catches into the stage's compensation: completed effects undone newest first, then a Fail naming the stage", () => {
    const d = lab.definition;
    const createRole = state(d, "create-key.run.createRole");
    expect(createRole.Assign!.effectsDone).toBe('{% $append($effectsDone, ["createRole"]) %}');
    const catchAll = createRole.Catch!.at(-1)!;
    expect(catchAll.ErrorEquals).toEqual(["States.ALL"]);
    // Walk the compensation chain: each "undo X?" choice leads to X's undo, or past it.
    const order: string[] = [];
    let name = catchAll.Next;
    while (name.endsWith("?")) {
      order.push(name);
      name = state(d, name).Default!;
    }
    expect(order).toEqual([
      "create-key.undo.createAlias?",
      "create-key.undo.createKey?",
      "create-key.undo.rolePolicy?",
      "create-key.undo.createRole?",
    ]);
    expect(state(d, name)).toMatchObject({ Type: "Fail", Error: "kmslab.StageFailed" });
    expect(state(d, name).Cause).toContain('"create-key: "');
    const undoKey = state(d, "create-key.undo.createKey?");
    expect(undoKey.Choices![0]!.Condition).toBe('{% "createKey" in $effectsDone %}');
    expect(state(d, undoKey.Choices![0]!.Next).Resource).toBe(
      "arn:aws:states:::aws-sdk:kms:scheduleKeyDeletion",
    );
  });

  it("makes the key user's calls with Task Credentials (the key-user role) and polls with Wait + Choice within a budget", () => {
    const get = state(lab.definition, "key-user-access.run.getDenied");
    expect(get.Credentials).toEqual({
      RoleArn: '{% "arn:aws:iam::" & $params.account & ":role/" & $params.keyUserRole %}',
    });
    // S3's denial by either name Step Functions may give it (unconfirmed which it gives today).
    expect(get.Catch![0]).toMatchObject({
      ErrorEquals: ["S3.S3Exception", "S3.AccessDeniedException"],
      Assign: { s3Denied: expect.any(String) },
    });
    // So too where a denial is tolerated (the key user's reads before and after).
    expect(state(lab.definition, "key-user-access.run.getBefore").Catch![0]!.ErrorEquals).toEqual([
      "S3.S3Exception",
      "S3.AccessDeniedException",
    ]);
    const loop = state(lab.definition, "key-user-access.run.denied done?");
    expect(loop.Type).toBe("Choice");
    expect(loop.Choices![1]!.Condition).toContain("$deniedDeadline");
    expect(state(lab.definition, loop.Default!)).toMatchObject({ Type: "Wait", Seconds: "{% 2 %}" });
    expect(state(lab.definition, "trail-key-usage.run.events wait").Seconds).toBe(
      "{% $params.pollSeconds %}",
    );
  });

  it("replaces stage 4's unsigned GET with the bucket's public-access checks and says so", () => {
    const pab = state(lab.definition, "public-access-denied.run.unsignedPab");
    expect(pab.Resource).toBe("arn:aws:states:::aws-sdk:s3:getPublicAccessBlock");
    expect(pab.Comment).toContain("cannot send an anonymous request");
    expect(state(lab.definition, "public-access-denied.run.unsignedPolicyStatus").Resource).toBe(
      "arn:aws:states:::aws-sdk:s3:getBucketPolicyStatus",
    );
    expect(
      state(lab.definition, "public-access-denied.run.unsigned (as Step Functions can)").Assign,
    ).toHaveProperty("anonStatus");
    expect(state(lab.definition, "public-access-denied.run.signedGet").Resource).toBe(
      "arn:aws:states:::aws-sdk:s3:getObject",
    );
    expect(lab.notes.join("\n")).toContain("cannot send an anonymous request");
    expect(lab.notes.join("\n")).toContain("cannot gunzip");
  });

  /** An account holding every lab resource, tagged `kmslab:run=<run>`, as the teardown's Tasks see it. */
  const taggedAccount = (run: string, order: string[]) => async (req: { resource: string }) => {
    const op = req.resource.split(":").slice(-2).join(":");
    order.push(op);
    const keyed = [{ Key: "kmslab:run", Value: run }];
    const key = "arn:aws:kms:us-east-1:111122223333:key/k";
    const answers: Record<string, unknown> = {
      "cloudtrail:listTags": { ResourceTagList: [{ TagsList: keyed }] },
      "s3:getBucketTagging": { TagSet: keyed },
      "kms:describeKey": {
        KeyMetadata: { Arn: key, KeyId: "k", KeyManager: "CUSTOMER", KeyState: "Enabled" },
      },
      "kms:listKeys": { Keys: [{ KeyId: "k", KeyArn: key }], Truncated: false },
      "kms:listResourceTags": { Tags: [{ TagKey: "kmslab:run", TagValue: run }] },
      "kms:scheduleKeyDeletion": { DeletionDate: "2026-01-08T00:00:00.000Z" },
      "iam:listRoleTags": { Tags: keyed },
    };
    return answers[op] ?? {};
  };

  it("the teardown reads every resource's kmslab:run tag before deleting it, in lab.md's order", async () => {
    const order: string[] = [];
    const result = await execute(
      teardown.definition,
      { runId: "lab-1" },
      { clock: virtualClock(), invoke: taggedAccount("lab-1", order) },
    );
    expect(result.status, `${result.error}: ${result.cause}`).toBe("SUCCEEDED");
    const at = (op: string) => order.indexOf(op);
    expect(at("cloudtrail:listTags")).toBeLessThan(at("cloudtrail:stopLogging"));
    expect(at("cloudtrail:stopLogging")).toBeLessThan(at("cloudtrail:deleteTrail"));
    expect(at("cloudtrail:deleteTrail")).toBeLessThan(at("s3:getBucketTagging"));
    expect(order.filter((o) => o === "s3:getBucketTagging")).toHaveLength(2);
    expect(order.filter((o) => o === "s3:deleteBucket")).toHaveLength(2);
    expect(order.lastIndexOf("s3:deleteBucket")).toBeLessThan(at("kms:deleteAlias"));
    expect(at("kms:listResourceTags")).toBeLessThan(at("kms:deleteAlias"));
    expect(at("kms:deleteAlias")).toBeLessThan(at("kms:scheduleKeyDeletion"));
    expect(at("kms:scheduleKeyDeletion")).toBeLessThan(at("iam:listRoleTags"));
    expect(at("iam:listRoleTags")).toBeLessThan(at("iam:deleteRole"));
    expect(order).not.toContain("kms:putKeyPolicy");
    const report = result.output as { runIds: string[]; resources: { type: string; outcome: string }[] };
    expect(report.runIds).toEqual(["lab-1"]);
    expect(report.resources.map((r) => [r.type, r.outcome])).toEqual([
      ["AWS::CloudTrail::Trail", "removed"],
      ["AWS::S3::Bucket", "removed"],
      ["AWS::S3::Bucket", "removed"],
      ["AWS::KMS::Alias", "removed"],
      ["AWS::KMS::Key", "removed"],
      ["AWS::IAM::Role", "removed"],
    ]);
  });

  it("the teardown deletes nothing another run tagged, and without a run named it fails before any call", async () => {
    const order: string[] = [];
    const other = await execute(
      teardown.definition,
      { runIds: ["lab-1", "lab-2"] },
      { clock: virtualClock(), invoke: taggedAccount("someone-else", order) },
    );
    expect(other.status, `${other.error}: ${other.cause}`).toBe("SUCCEEDED");
    expect(order.filter((o) => !/:(list|get|describe)/.test(o))).toEqual([]);
    const kept = (other.output as { resources: { outcome: string; reason: string }[] }).resources;
    expect(kept).toHaveLength(6);
    for (const r of kept)
      expect(r).toMatchObject({ outcome: "kept", reason: expect.stringContaining("someone-else") });

    const none: string[] = [];
    const unnamed = await execute(
      teardown.definition,
      {},
      { clock: virtualClock(), invoke: taggedAccount("x", none) },
    );
    expect(unnamed).toMatchObject({ status: "FAILED", error: "kmslab.NoRunId" });
    expect(none).toEqual([]);
  });

  it("a check whose score gives nothing scores 0 in the export, as in the local engine", async () => {
    const stage: StageDef = {
      id: "create-key",
      title: "a stage with one check",
      points: 10,
      dependsOn: [],
      precondition: [],
      run: [],
      verify: [check("nothing", "a score that gives nothing", 10, [], "$nowhere.points", NO_MESSAGES)],
    };
    const exported = await exportLab({ stages: [stage] });
    const result = await execute(
      exported.definition,
      {},
      {
        clock: virtualClock(),
        invoke: async () => ({}),
      },
    );
    expect(result).toMatchObject({
      status: "FAILED",
      error: "kmslab.VerificationFailed",
      cause: "create-key: 0 of 10 points",
    });
    const params = resolveParams(parseParams({}), "123456789012");
    const runner = new StageRunner({} as Clients, params, "run-1", "create-key", {
      intent: async () => {},
      done: async () => {},
      recorded: () => undefined,
      deadline: async (_k, ms) => ms,
    });
    expect((await runner.runCheck(stage.verify[0]!)).points).toBe(0);
  });

  it("the Mermaid statechart has a region per stage with the machine's transitions", () => {
    const m = labMermaid();
    expect(m.startsWith("stateDiagram-v2\n")).toBe(true);
    for (const s of STAGES) expect(m).toContain(`state "${s.id} (${s.points} points)"`);
    expect(m).toContain("create_key_running --> create_key_rollingBack : runStage error");
    expect(m).toContain(
      "note right of trail_key_usage_waiting : waits for trail-to-bucket, sse-kms-upload, public-access-denied",
    );
  });
});

describe("the committed workflows/", () => {
  const policyNames = {
    account: "*",
    region: "us-east-1",
    keyAlias: "alias/myFirstKey",
    keyUserRole: "kmslab-key-user",
    trailName: "kmslab-trail",
    logBucket: "kmslab-trail-*-us-east-1",
    dataBucket: "kmslab-data-*-us-east-1",
    objectKey: "reports/secret-report.txt",
  };
  const fresh: Record<string, unknown> = {
    "lab.asl.json": lab.definition,
    "teardown.asl.json": teardown.definition,
    "iam-policy.json": executionRolePolicy([lab.definition, teardown.definition], policyNames),
  };
  const regenerate =
    "regenerate them: kmslab export asl --out workflows/lab.asl.json; kmslab export asl --teardown --out workflows/teardown.asl.json; kmslab export iam-policy --out workflows/iam-policy.json; kmslab export mermaid --out workflows/lab.mmd";

  it.each(Object.keys(fresh))("%s is what the generator makes from the registry today", (file) => {
    const committed = JSON.parse(readFileSync(join(WORKFLOWS, file), "utf8"));
    expect(committed, `workflows/${file} is stale: ${regenerate}`).toEqual(fresh[file]);
  });

  it("lab.mmd is what the generator makes today", () => {
    expect(
      readFileSync(join(WORKFLOWS, "lab.mmd"), "utf8"),
      `workflows/lab.mmd is stale: ${regenerate}`,
    ).toBe(labMermaid());
  });
});

describe("the ASL interpreter", () => {
  const machine: Definition = {
    QueryLanguage: "JSONata",
    StartAt: "Init",
    States: {
      Init: { Type: "Pass", Assign: { n: 0, seen: [] }, Next: "Call" },
      Call: {
        Type: "Task",
        Resource: "arn:aws:states:::aws-sdk:kms:describeKey",
        Arguments: { KeyId: "{% 'key-' & $string($n) %}" },
        Retry: [
          {
            ErrorEquals: ["Kms.KMSInternalException"],
            MaxAttempts: 2,
            IntervalSeconds: 1,
            JitterStrategy: "FULL",
          },
        ],
        Catch: [
          {
            ErrorEquals: ["Kms.NotFoundException"],
            Assign: { missing: "{% $states.errorOutput.Error %}" },
            Next: "Both",
          },
        ],
        Assign: { n: "{% $n + 1 %}", seen: "{% $append($seen, $states.result.KeyId) %}" },
        Next: "Again?",
      },
      "Again?": {
        Type: "Choice",
        Choices: [{ Condition: "{% $n < 2 %}", Next: "Wait" }],
        Default: "Both",
      },
      Wait: { Type: "Wait", Seconds: "{% 5 %}", Next: "Call" },
      Both: {
        Type: "Parallel",
        Branches: [
          {
            StartAt: "A",
            States: { A: { Type: "Pass", Assign: { inner: 1 }, Output: "{% $n %}", End: true } },
          },
          {
            StartAt: "B",
            States: { B: { Type: "Fail", Error: "Custom.Error", Cause: "{% 'at ' & $string($n) %}" } },
          },
        ],
        Catch: [
          { ErrorEquals: ["States.ALL"], Assign: { failed: "{% $states.errorOutput %}" }, Next: "Done" },
        ],
        Next: "Done",
      },
      Done: { Type: "Succeed", Output: "{% {'n': $n, 'seen': $seen, 'failed': $failed, 'inner': $inner} %}" },
    },
  };

  it("evaluates Arguments, Assign, Retry, Choice loops, Wait on its clock, Parallel scopes and Catch", async () => {
    const calls: unknown[] = [];
    const clock = virtualClock();
    let transient = 1;
    const result = await execute(
      machine,
      {},
      {
        clock,
        invoke: async (req) => {
          calls.push(req.arguments);
          if (transient-- > 0) throw new StatesError("Kms.KMSInternalException", "try again");
          return { KeyId: (req.arguments as { KeyId: string }).KeyId };
        },
      },
    );
    expect(result.status).toBe("SUCCEEDED");
    // The inner branch's variable stays in its branch; the failing branch is caught around the Parallel.
    expect(result.output).toEqual({
      n: 2,
      seen: ["key-0", "key-1"],
      failed: { Error: "Custom.Error", Cause: "at 2" },
    });
    expect(calls).toEqual([{ KeyId: "key-0" }, { KeyId: "key-0" }, { KeyId: "key-1" }]);
    expect(clock.elapsedMs()).toBeGreaterThanOrEqual(5000);
  });

  it("Catch assigns from the error output; an error nothing catches fails the execution", async () => {
    const caught = await execute(
      machine,
      {},
      {
        clock: virtualClock(),
        invoke: async () => {
          throw new StatesError("Kms.NotFoundException", "no such key");
        },
      },
    );
    expect(caught.status).toBe("SUCCEEDED");
    const failed = await execute(
      machine,
      {},
      {
        clock: virtualClock(),
        invoke: async () => {
          throw new StatesError("Kms.KMSInternalException", "still down");
        },
      },
    );
    expect(failed).toMatchObject({
      status: "FAILED",
      error: "Kms.KMSInternalException",
      cause: "still down",
    });
  });
});

describe("kmslab export", () => {
  it("asl --out writes a checked definition and says what Step Functions cannot do", async () => {
    const dir = tempDir();
    const out = join(dir, "lab.json");
    const r = await runCli(["export", "asl", "--out", out]);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(lab.definition);
    expect(r.stderr).toContain("cannot send an anonymous request");
    const t = await runCli(["export", "asl", "--teardown", "--json", "--out", join(dir, "td.json")]);
    expect(t.code).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({ kind: "teardown", out: join(dir, "td.json") });
  });

  it("a config file's parameters become the definition's defaults; bad input exits 2 and leaves the file as it was", async () => {
    const dir = tempDir();
    const out = join(dir, "lab.json");
    writeFileSync(out, "keep me");
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ keyAlias: "alias/aws/mine" }));
    const bad = await runCli(["export", "asl", "--config", join(dir, "bad.json"), "--out", out]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("alias/aws/ is reserved");
    expect(readFileSync(out, "utf8")).toBe("keep me");
    const nowhere = await runCli(["export", "mermaid", "--out", join(dir, "no-such-dir", "lab.mmd")]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain("cannot write");
    const account = await runCli(["export", "iam-policy", "--account", "12"]);
    expect(account.code).toBe(2);
    expect(account.stderr).toContain("12-digit");
    writeFileSync(join(dir, "good.json"), JSON.stringify({ keyAlias: "alias/classKey", suffix: "-bob" }));
    const good = await runCli(["export", "asl", "--config", join(dir, "good.json")]);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout).States.Parameters.Assign.params).toContain('"keyAlias":"alias/classKey"');
  });

  it("iam-policy names the account's resources; mermaid prints the statechart", async () => {
    const policy = await runCli(["export", "iam-policy", "--account", "111122223333"]);
    expect(policy.code).toBe(0);
    const doc = JSON.parse(policy.stdout) as { Statement: { Resource: string[] }[] };
    expect(doc.Statement.flatMap((s) => s.Resource)).toContain(
      "arn:aws:iam::111122223333:role/kmslab-key-user",
    );
    expect(doc.Statement.flatMap((s) => s.Resource)).toContain(
      "arn:aws:s3:::kmslab-data-111122223333-us-east-1",
    );
    const m = await runCli(["export", "mermaid"]);
    expect(m.stdout).toBe(labMermaid());
    const unknown = await runCli(["export", "bpmn"]);
    expect(unknown.code).toBe(2);
  });
});
