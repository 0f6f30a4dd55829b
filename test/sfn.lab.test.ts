import { rmSync } from "node:fs";
import { CloudTrailClient, LookupEventsCommand } from "@aws-sdk/client-cloudtrail";
import {
  CreateRoleCommand,
  IAMClient,
  type IAMClientConfig,
  PutRolePolicyCommand,
} from "@aws-sdk/client-iam";
import { DescribeKeyCommand, GetKeyPolicyCommand, KMSClient } from "@aws-sdk/client-kms";
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from "@aws-sdk/client-sfn";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { afterEach, describe, expect, it } from "vitest";
import { exportLab, exportTeardown } from "../asl/export.js";
import { executionRolePolicy } from "../asl/iam.js";
import type { Definition } from "../asl/types.js";
import { gradeLab } from "../grade/grade.js";
import { Clients } from "../machines/aws.js";
import { Simulator } from "../sim/simulator.js";
import type { StageId } from "../steps/dsl.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { stage } from "../steps/registry.js";
import { type ServeHandle, startServe, tempDir } from "./helpers/cli.js";
import { labResources } from "./helpers/teardown.js";

/**
 * Issue #8 at the service level: the exported lab and teardown deployed to the simulated Step
 * Functions and run there through the real SFN and IAM SDK clients, as the execution role Step
 * Functions assumes — a full lab that grades 100/100 and is torn down; a stage that fails on an
 * injected AccessDenied and undoes its own work; a stopped execution whose closing event is its
 * last; histories that outlive a restart of `sim serve`, and an execution the server was stopped
 * (or killed) during that is FAILED (States.Runtime) once it is back, as provider.ts documents.
 */

const FAST = { pollSeconds: 1, trailWaitSeconds: 120, propagationWaitSeconds: 30 };
const ROLE = "kmslab-states";
const REGION = "us-east-1";

/** The execution role: trusted by Step Functions, with the policy `kmslab export iam-policy` derives. */
async function createExecutionRole(
  config: IAMClientConfig,
  account: string,
  definitions: Definition[],
  policy?: unknown,
  path?: string,
): Promise<string> {
  const iam = new IAMClient(config);
  try {
    const role = await iam.send(
      new CreateRoleCommand({
        RoleName: ROLE,
        ...(path ? { Path: path } : {}),
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { Service: "states.amazonaws.com" }, Action: "sts:AssumeRole" },
          ],
        }),
      }),
    );
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: ROLE,
        PolicyName: "kmslab-states",
        PolicyDocument: JSON.stringify(
          policy ?? executionRolePolicy(definitions, resolveParams(parseParams(FAST), account)),
        ),
      }),
    );
    return role.Role!.Arn!;
  } finally {
    iam.destroy();
  }
}

/** Every event of an execution's history, page by page (small pages, so nextToken is used). */
async function history(sfn: SFNClient, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  let pages = 0;
  do {
    const page = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn, maxResults: 100, ...(nextToken ? { nextToken } : {}) }),
    );
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
    pages++;
  } while (nextToken);
  if (events.length > 100) expect(pages).toBeGreaterThan(1);
  return events;
}

/** Ids 1..n in order, each event's previous one the one before it. */
function expectNumbered(events: HistoryEvent[]): void {
  expect(events.map((e) => e.id)).toEqual(events.map((_, i) => i + 1));
  expect(events.map((e) => e.previousEventId)).toEqual(events.map((_, i) => i));
}

/** The Task states of a definition, nested branches and Map item processors included, by name. */
function taskStates(definition: Definition): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (states: Definition["States"]) => {
    for (const [name, state] of Object.entries(states)) {
      if (state.Type === "Task") out.set(name, state.Resource!);
      for (const b of state.Branches ?? []) walk(b.States);
      if (state.ItemProcessor) walk(state.ItemProcessor.States);
    }
  };
  walk(definition.States);
  return out;
}

/** `arn:aws:states:::aws-sdk:s3:deleteBucket` as the history's task details name it. */
function taskResource(resource: string): { resourceType: string; resource: string } {
  const m = /^arn:aws:states:::(aws-sdk:\w+):(\w+)$/.exec(resource)!;
  return { resourceType: m[1]!, resource: m[2]! };
}

/**
 * Pairs each TaskScheduled with its outcome (TaskSucceeded/TaskFailed/TaskTimedOut/TaskStateAborted)
 * and the TaskStateEntered it belongs to. Branches run at the same time, so events interleave; a
 * Task's own events are in order, and its entry is the latest entered Task state with its resource
 * not yet scheduled.
 */
interface TaskRun {
  state: string;
  resourceType: string;
  resource: string;
  parameters: unknown;
  scheduled: number;
  outcome?: { type: string; id: number; error?: string };
}

function taskRuns(events: HistoryEvent[], tasks: Map<string, string>): TaskRun[] {
  const entered: { name: string; id: number }[] = [];
  const open: TaskRun[] = [];
  const runs: TaskRun[] = [];
  for (const e of events) {
    if (e.type === "TaskStateEntered") {
      entered.push({ name: e.stateEnteredEventDetails!.name!, id: e.id! });
      continue;
    }
    if (e.type === "TaskScheduled") {
      const d = e.taskScheduledEventDetails!;
      let i = entered.length - 1;
      while (
        i >= 0 &&
        taskResource(tasks.get(entered[i]!.name) ?? "arn:aws:states:::x:x:x").resource !== d.resource
      )
        i--;
      expect(i, `TaskScheduled ${e.id} (${d.resource}) has no entered Task state`).toBeGreaterThanOrEqual(0);
      const [state] = entered.splice(i, 1);
      const run: TaskRun = {
        state: state!.name,
        resourceType: d.resourceType!,
        resource: d.resource!,
        parameters: JSON.parse(d.parameters!),
        scheduled: e.id!,
      };
      runs.push(run);
      open.push(run);
      continue;
    }
    const details =
      e.taskSucceededEventDetails ?? e.taskFailedEventDetails ?? e.taskTimedOutEventDetails ?? undefined;
    if (details) {
      const i = open.findIndex((r) => r.resource === details.resource);
      expect(i, `${e.type} ${e.id} closes no scheduled Task`).toBeGreaterThanOrEqual(0);
      const [run] = open.splice(i, 1);
      const error = (details as { error?: string }).error;
      run!.outcome = { type: e.type!, id: e.id!, ...(error !== undefined ? { error } : {}) };
      // A retried Task is entered once and scheduled again.
      if (e.type !== "TaskSucceeded") entered.push({ name: run!.state, id: e.id! });
    }
  }
  return runs;
}

/** Waits for the executions running in process, then describes one. */
async function settled(sim: Simulator, sfn: SFNClient, executionArn: string) {
  await sim.account.states.settled();
  return sfn.send(new DescribeExecutionCommand({ executionArn }));
}

describe("the exported lab on the simulated Step Functions", () => {
  it("runs the lab to SUCCEEDED as the execution role (100/100, CloudTrail names the roles), then its teardown leaves nothing", async () => {
    const sim = Simulator.inMemory();
    const account = sim.account.accountId;
    const config = sim.clientConfig();
    const sfn = new SFNClient(config);
    const clients = new Clients({ ...config, region: REGION });
    const ct = new CloudTrailClient(config);
    try {
      const lab = await exportLab();
      const teardown = await exportTeardown();
      const roleArn = await createExecutionRole(config, account, [lab.definition, teardown.definition]);
      const keyUserRoleArn = `arn:aws:iam::${account}:role/kmslab-key-user`;
      const labMachine = await sfn.send(
        new CreateStateMachineCommand({
          name: "kmslab",
          definition: JSON.stringify(lab.definition),
          roleArn,
        }),
      );
      const teardownMachine = await sfn.send(
        new CreateStateMachineCommand({
          name: "kmslab-teardown",
          definition: JSON.stringify(teardown.definition),
          roleArn,
        }),
      );

      // The lab.
      const trailBefore = sim.account.cloudtrail.events.nextSeq - 1;
      const started = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: labMachine.stateMachineArn,
          name: "lab-1",
          input: JSON.stringify(FAST),
        }),
      );
      const done = await settled(sim, sfn, started.executionArn!);
      const trailAfter = sim.account.cloudtrail.events.nextSeq - 1;
      expect(done.status, `${done.error}: ${done.cause}`).toBe("SUCCEEDED");
      const output = JSON.parse(done.output!) as {
        points: number;
        runId: string;
        stages: { stage: string }[];
      };
      expect(output.points).toBe(100);
      expect(output.runId).toBe("lab-1");
      expect(output.stages.map((s) => s.stage).sort()).toEqual(
        [
          "create-key",
          "trail-to-bucket",
          "sse-kms-upload",
          "public-access-denied",
          "trail-key-usage",
          "key-user-access",
        ].sort(),
      );
      const events = await history(sfn, started.executionArn!);
      // The simulator's CloudTrail is not late (instant profile): the polls of stages 5 and 6 find
      // their events in a few lookups (8 in all as written), far from the 120 one-second polls that
      // each of their budgets allows. (A count of lookups, not a wall time: no timing assertion.)
      const lookups = events.filter(
        (e) => e.type === "TaskScheduled" && e.taskScheduledEventDetails!.resource === "lookupEvents",
      );
      expect(lookups.length).toBeGreaterThanOrEqual(2);
      expect(lookups.length).toBeLessThan(40);
      expectNumbered(events);
      expect(events[0]!.type).toBe("ExecutionStarted");
      expect(events[0]!.executionStartedEventDetails).toMatchObject({
        roleArn,
        input: JSON.stringify(FAST),
      });
      expect(events.at(-1)!.type).toBe("ExecutionSucceeded");
      expect(JSON.parse(events.at(-1)!.executionSucceededEventDetails!.output!)).toEqual(
        JSON.parse(done.output!),
      );
      expect(events.filter((e) => e.type!.startsWith("Execution")).map((e) => e.type)).toEqual([
        "ExecutionStarted",
        "ExecutionSucceeded",
      ]);
      // Timestamps never go back.
      const times = events.map((e) => e.timestamp!.getTime());
      expect(times).toEqual([...times].sort((a, b) => a - b));

      // Every stage's calls: each Task scheduled, started and succeeded (or failed and caught:
      // the key user's denials of stage 6, the look-ups that find nothing).
      const runs = taskRuns(events, taskStates(lab.definition));
      expect(runs.every((r) => r.outcome !== undefined)).toBe(true);
      const count = (type: string) => events.filter((e) => e.type === type).length;
      expect(count("TaskStarted")).toBe(count("TaskScheduled"));
      expect(count("TaskSucceeded") + count("TaskFailed")).toBe(count("TaskScheduled"));
      const byStage = new Map<string, TaskRun[]>();
      for (const r of runs) {
        const stage = lab.origins[r.state]!.stageId;
        byStage.set(stage, [...(byStage.get(stage) ?? []), r]);
      }
      expect([...byStage.keys()].sort()).toEqual(
        [
          "create-key",
          "trail-to-bucket",
          "sse-kms-upload",
          "public-access-denied",
          "trail-key-usage",
          "key-user-access",
        ].sort(),
      );
      for (const [stage, list] of byStage) {
        const succeeded = list.filter((r) => r.outcome!.type === "TaskSucceeded");
        expect(succeeded.length, stage).toBeGreaterThan(0);
        // Every run-phase effect of the stage was made and succeeded.
        const effects = list.filter((r) => lab.origins[r.state]!.phase === "run");
        expect(effects.length, stage).toBeGreaterThan(0);
        // No undo ran: nothing failed.
        expect(
          list.filter((r) => lab.origins[r.state]!.phase === "undo"),
          stage,
        ).toEqual([]);
      }
      const called = (resource: string) =>
        runs.filter((r) => r.resource === resource && r.outcome!.type === "TaskSucceeded").length;
      for (const r of [
        "createKey",
        "createAlias",
        "createRole",
        "createBucket",
        "createTrail",
        "startLogging",
        "putObject",
        "getObject",
        "lookupEvents",
        "putKeyPolicy",
      ])
        expect(called(r), r).toBeGreaterThan(0);
      expect(runs.filter((r) => r.resource === "createTrail")[0]!.resourceType).toBe("aws-sdk:cloudtrail");
      // The key user's denials are caught by the definition: failed Tasks, but the stage passes. S3's
      // AccessDenied is S3.S3Exception here (the Java SDK's generic exception; Step Functions may
      // name it S3.AccessDeniedException instead, and the definition catches both), KMS's
      // AccessDeniedException is not modelled: Kms.KmsException.
      const denied = (resource: string) =>
        runs
          .filter((r) => r.resource === resource && r.outcome!.type === "TaskFailed")
          .map((r) => r.outcome!.error);
      expect(new Set(denied("getObject"))).toEqual(new Set(["S3.S3Exception"]));
      expect(new Set(denied("decrypt"))).toEqual(new Set(["Kms.KmsException"]));

      // Graded from the account alone: 100/100.
      const graded = await gradeLab({
        clients,
        params: resolveParams(parseParams(FAST), account),
        target: { kind: "sim", region: REGION, accountId: account },
      });
      expect(
        graded.stages.map((s) => [s.id, s.outcome]),
        JSON.stringify(graded.stages.map((s) => s.checks)),
      ).toEqual(graded.stages.map((s) => [s.id, "passed"]));
      expect(graded.score).toBe(100);

      // CloudTrail: Step Functions assumed the execution role; the lab's calls are that role's
      // sessions, the key user's calls sessions of the key-user role.
      const all = sim.account.cloudtrail.events;
      const record = (e: (typeof all.events)[number]) =>
        JSON.parse(all.json(e)) as {
          eventName: string;
          eventSource: string;
          eventTime: string;
          errorCode?: string;
          userIdentity: {
            type: string;
            invokedBy?: string;
            arn?: string;
            sessionContext?: { sessionIssuer: { arn: string } };
          };
        };
      // The calls the account saw while the execution ran (its StartExecution aside).
      const during = all
        .since(trailBefore, trailAfter)
        .map(record)
        .filter((r) => r.eventSource !== "states.amazonaws.com");
      const issuer = (r: ReturnType<typeof record>) => r.userIdentity.sessionContext?.sessionIssuer.arn;
      const assumedByStates = during.filter(
        (r) =>
          r.eventName === "AssumeRole" &&
          r.userIdentity.type === "AWSService" &&
          r.userIdentity.invokedBy === "states.amazonaws.com",
      );
      expect(assumedByStates.length).toBeGreaterThan(0);
      // Every call made during the execution is the role's or the key user's (S3 calling KMS on
      // their behalf included), none the admin's.
      const callers = new Set(
        during.filter((r) => !assumedByStates.includes(r)).map((r) => `${r.userIdentity.type} ${issuer(r)}`),
      );
      expect(callers).toEqual(new Set([`AssumedRole ${roleArn}`, `AssumedRole ${keyUserRoleArn}`]));
      const byRole = (arn: string) => during.filter((r) => issuer(r) === arn);
      const roleCalls = new Set(byRole(roleArn).map((r) => r.eventName));
      for (const name of [
        "CreateKey",
        "CreateAlias",
        "CreateRole",
        "CreateBucket",
        "CreateTrail",
        "PutKeyPolicy",
      ])
        expect(roleCalls, name).toContain(name);
      // The key user assumed by the role (Task Credentials), then its Decrypt denied and allowed.
      expect(byRole(roleArn).some((r) => r.eventName === "AssumeRole")).toBe(true);
      const keyUserDecrypts = byRole(keyUserRoleArn).filter((r) => r.eventName === "Decrypt");
      expect(
        keyUserDecrypts.some(
          (r) => r.errorCode === "AccessDenied" || r.errorCode === "AccessDeniedException",
        ),
      ).toBe(true);
      expect(keyUserDecrypts.some((r) => r.errorCode === undefined)).toBe(true);
      // The same through LookupEvents, as anyone sees it.
      const lookup = async (name: string) =>
        (
          await ct.send(
            new LookupEventsCommand({
              LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: name }],
            }),
          )
        ).Events ?? [];
      const createTrail = await lookup("CreateTrail");
      expect(createTrail).toHaveLength(1);
      const trailRecord = JSON.parse(createTrail[0]!.CloudTrailEvent!);
      expect(trailRecord.userIdentity.type).toBe("AssumedRole");
      expect(trailRecord.userIdentity.sessionContext.sessionIssuer.arn).toBe(roleArn);
      expect(trailRecord.userIdentity.arn).toMatch(
        new RegExp(`^arn:aws:sts::${account}:assumed-role/${ROLE}/`),
      );
      const decrypts = (await lookup("Decrypt")).map((e) => JSON.parse(e.CloudTrailEvent!));
      const deniedDecrypt = decrypts.find(
        (r) =>
          r.errorCode !== undefined && r.userIdentity.sessionContext?.sessionIssuer.arn === keyUserRoleArn,
      );
      expect(deniedDecrypt?.userIdentity.type).toBe("AssumedRole");
      expect(deniedDecrypt?.userIdentity.arn).toMatch(/:assumed-role\/kmslab-key-user\//);

      // The teardown.
      const down = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: teardownMachine.stateMachineArn,
          name: "teardown-1",
          // The run to tear down: the lab execution's name is its run id.
          input: JSON.stringify({ ...FAST, runId: "lab-1" }),
        }),
      );
      const torn = await settled(sim, sfn, down.executionArn!);
      expect(torn.status, `${torn.error}: ${torn.cause}`).toBe("SUCCEEDED");
      const downEvents = await history(sfn, down.executionArn!);
      expectNumbered(downEvents);
      expect(downEvents.at(-1)!.type).toBe("ExecutionSucceeded");
      const downRuns = taskRuns(downEvents, taskStates(teardown.definition));
      expect(
        downRuns.filter((r) => r.resource === "scheduleKeyDeletion").map((r) => r.outcome!.type),
      ).toEqual(["TaskSucceeded"]);
      // Nothing of the lab remains (the key pending deletion counts as removed); the execution
      // role is this test's, not the lab's.
      expect(await labResources(config)).toEqual([`role ${ROLE}`]);
    } finally {
      sfn.destroy();
      clients.destroy();
      ct.destroy();
      sim.close();
    }
  }, 300_000);

  it("runs as an execution role with a path (the console makes them under /service-role/), which the key policy names with its path", async () => {
    const sim = Simulator.inMemory();
    const config = sim.clientConfig();
    const sfn = new SFNClient(config);
    try {
      const lab = await exportLab();
      const roleArn = await createExecutionRole(
        config,
        sim.account.accountId,
        [lab.definition],
        undefined,
        "/service-role/",
      );
      expect(roleArn).toBe(`arn:aws:iam::${sim.account.accountId}:role/service-role/${ROLE}`);
      const machine = await sfn.send(
        new CreateStateMachineCommand({
          name: "kmslab",
          definition: JSON.stringify(lab.definition),
          roleArn,
        }),
      );
      const started = await sfn.send(
        new StartExecutionCommand({ stateMachineArn: machine.stateMachineArn, input: JSON.stringify(FAST) }),
      );
      const done = await settled(sim, sfn, started.executionArn!);
      expect(done.status, `${done.error}: ${done.cause}`).toBe("SUCCEEDED");
      expect((JSON.parse(done.output!) as { points: number }).points).toBe(100);
      const kms = new KMSClient(config);
      const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: "alias/myFirstKey" }));
      const { Policy } = await kms.send(new GetKeyPolicyCommand({ KeyId: KeyMetadata!.KeyId! }));
      expect(JSON.parse(Policy!).Statement).toContainEqual(
        expect.objectContaining({ Sid: "Allow access for Key Administrators", Principal: { AWS: roleArn } }),
      );
      kms.destroy();
    } finally {
      sfn.destroy();
      sim.close();
    }
  }, 300_000);

  it("ends FAILED naming stage 2 when CreateTrail is denied, after stage 2 has undone its own work", async () => {
    const sim = Simulator.inMemory();
    const account = sim.account.accountId;
    const config = sim.clientConfig();
    const sfn = new SFNClient(config);
    try {
      const lab = await exportLab();
      const roleArn = await createExecutionRole(config, account, [lab.definition]);
      const machine = await sfn.send(
        new CreateStateMachineCommand({
          name: "kmslab",
          definition: JSON.stringify(lab.definition),
          roleArn,
        }),
      );
      // As an organisation's service control policy would: every CreateTrail is denied.
      sim.faults.set("cloudtrail.CreateTrail", { deny: 1 });
      const started = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: machine.stateMachineArn,
          name: "denied-trail",
          input: JSON.stringify(FAST),
        }),
      );
      const done = await settled(sim, sfn, started.executionArn!);
      expect(done.status).toBe("FAILED");
      // The Fail state stage 2's compensation ends in (asl/export.ts: kmslab.StageFailed, "<stage>: <why>").
      expect(done.error).toBe("kmslab.StageFailed");
      expect(done.cause).toMatch(/^trail-to-bucket: /);
      expect(done.cause).toContain("is not authorized to perform: cloudtrail:CreateTrail");
      expect(done.cause).not.toContain("rolling back failed too");

      const events = await history(sfn, started.executionArn!);
      expectNumbered(events);
      expect(events.at(-1)!.type).toBe("ExecutionFailed");
      expect(events.at(-1)!.executionFailedEventDetails).toEqual({ error: done.error, cause: done.cause });
      const failedAt = events.find(
        (e) => e.type === "TaskFailed" && e.taskFailedEventDetails?.resource === "createTrail",
      );
      expect(failedAt?.taskFailedEventDetails).toMatchObject({
        resourceType: "aws-sdk:cloudtrail",
        error: "CloudTrail.AccessDeniedException",
      });
      // No retry of a denial: CreateTrail was scheduled once.
      const runs = taskRuns(events, taskStates(lab.definition));
      expect(runs.filter((r) => r.resource === "createTrail")).toHaveLength(1);

      // Stage 2's compensation, after the failure: the undo of every effect it had made (the
      // log bucket: emptied, then deleted), each Task scheduled and succeeded.
      const undoStates = new Set(
        Object.entries(lab.origins)
          .filter(([, o]) => o.stageId === "trail-to-bucket" && o.phase === "undo")
          .map(([name]) => name),
      );
      const undone = runs.filter((r) => undoStates.has(r.state));
      expect(undone.length).toBeGreaterThan(0);
      for (const r of undone) {
        expect(r.scheduled, r.state).toBeGreaterThan(failedAt!.id!);
        expect(r.outcome, r.state).toMatchObject({ type: "TaskSucceeded" });
      }
      const logBucket = `kmslab-trail-${account}-${REGION}`;
      expect(undone.map((r) => [r.resource, r.parameters])).toEqual([
        ["listObjectVersions", { Bucket: logBucket }],
        ["deleteBucket", { Bucket: logBucket }],
      ]);
      // Only effects that were made are undone: not the trail, which CreateTrail never made.
      expect(runs.filter((r) => r.resource === "deleteTrail" || r.resource === "stopLogging")).toEqual([]);
      // The stage's Fail state comes after its compensation; the Parallel holding it fails.
      const failState = events.findIndex(
        (e) => e.type === "FailStateEntered" && e.stateEnteredEventDetails?.name === "trail-to-bucket failed",
      );
      expect(failState).toBeGreaterThan(
        events.findIndex((e) => e.id === Math.max(...undone.map((r) => r.outcome!.id))),
      );
      expect(events.some((e) => e.type === "ParallelStateFailed")).toBe(true);
      // No later stage ran.
      const later = ["sse-kms-upload", "public-access-denied", "trail-key-usage", "key-user-access"];
      expect(runs.filter((r) => later.includes(lab.origins[r.state]!.stageId))).toEqual([]);

      // Nothing of stage 2 remains: neither the log bucket nor the trail.
      const remaining = await labResources(config);
      expect(remaining.filter((r) => r.startsWith("trail ") || r.includes(logBucket))).toEqual([]);
    } finally {
      sfn.destroy();
      sim.close();
    }
  }, 120_000);
});

describe("the key user's role not yet assumable", () => {
  it("retries the key user's first Task until Step Functions can assume its role (Task Credentials)", async () => {
    const sim = Simulator.inMemory();
    const account = sim.account.accountId;
    const config = sim.clientConfig();
    const sfn = new SFNClient(config);
    try {
      // The stages that stage 6 needs, and stage 6 (the key user's stage).
      const lab = await exportLab({
        stages: ["create-key", "sse-kms-upload", "key-user-access"].map((id) => stage(id as StageId)),
      });
      const roleArn = await createExecutionRole(config, account, [lab.definition]);
      const machine = await sfn.send(
        new CreateStateMachineCommand({
          name: "kmslab",
          definition: JSON.stringify(lab.definition),
          roleArn,
        }),
      );
      // Step Functions' first two assumptions of the key-user role are refused, as while IAM has
      // not yet propagated a new role (the role's own creation has propagated for KMS already).
      sim.faults.set("sts.AssumeRole", { deny: 1, count: 2 });
      const started = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: machine.stateMachineArn,
          name: "new-key-user",
          input: JSON.stringify(FAST),
        }),
      );
      const done = await settled(sim, sfn, started.executionArn!);
      expect(done.status, `${done.error}: ${done.cause}`).toBe("SUCCEEDED");
      const runs = taskRuns(await history(sfn, started.executionArn!), taskStates(lab.definition));
      const first = runs.filter((r) => r.state === "key-user-access.run.keyUserSession");
      expect(first.map((r) => r.outcome!.type)).toEqual(["TaskFailed", "TaskFailed", "TaskSucceeded"]);
    } finally {
      sfn.destroy();
      sim.close();
    }
  }, 120_000);
});

/** A small state machine: a Pass, a Task (as the execution role), a Wait of `$states.input.wait` s. */
const SMALL = {
  QueryLanguage: "JSONata",
  StartAt: "Hello",
  States: {
    Hello: {
      Type: "Pass",
      Assign: { wait: "{% $states.input.wait %}" },
      Output: { greeting: "{% 'hello ' & $states.input.who %}" },
      Next: "Who am I",
    },
    "Who am I": {
      Type: "Task",
      Resource: "arn:aws:states:::aws-sdk:sts:getCallerIdentity",
      Arguments: {},
      Output: "{% $merge([$states.input, {'arn': $states.result.Arn}]) %}",
      Next: "Pause",
    },
    Pause: { Type: "Wait", Seconds: "{% $wait %}", Next: "Done" },
    Done: { Type: "Succeed" },
  },
};

describe("stopping an execution of the simulated Step Functions", () => {
  it("ends it ABORTED with ExecutionAborted as its last event, nothing written after it", async () => {
    const sim = Simulator.inMemory();
    const config = sim.clientConfig();
    const sfn = new SFNClient(config);
    try {
      const roleArn = await createExecutionRole(config, sim.account.accountId, [], {
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "sts:GetCallerIdentity", Resource: "*" }],
      });
      const machine = await sfn.send(
        new CreateStateMachineCommand({ name: "small", definition: JSON.stringify(SMALL), roleArn }),
      );
      const { executionArn } = await sfn.send(
        new StartExecutionCommand({
          stateMachineArn: machine.stateMachineArn,
          input: JSON.stringify({ who: "world", wait: 600 }),
        }),
      );
      while (!(await history(sfn, executionArn!)).some((e) => e.type === "WaitStateEntered"))
        await new Promise((r) => setTimeout(r, 20));
      await sfn.send(new StopExecutionCommand({ executionArn, error: "Test.Stop", cause: "enough" }));
      const done = await settled(sim, sfn, executionArn!);
      expect(done).toMatchObject({ status: "ABORTED", error: "Test.Stop", cause: "enough" });
      const events = await history(sfn, executionArn!);
      expectNumbered(events);
      expect(events.slice(-2).map((e) => e.type)).toEqual(["WaitStateEntered", "ExecutionAborted"]);
      expect(events.at(-1)!.executionAbortedEventDetails).toEqual({ error: "Test.Stop", cause: "enough" });
    } finally {
      sfn.destroy();
      sim.close();
    }
  });
});

describe("Step Functions histories across a restart of `kmslab sim serve`", () => {
  let server: ServeHandle | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await server?.stop("SIGKILL");
    server = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const clientsFor = (s: ServeHandle) => {
    const config = {
      region: REGION,
      endpoint: s.endpoint,
      credentials: { accessKeyId: s.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s.env.AWS_SECRET_ACCESS_KEY! },
    };
    return { config, sfn: new SFNClient(config) };
  };

  const describeAndHistory = async (sfn: SFNClient, executionArn: string) => {
    const { $metadata: _m, ...described } = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    return { described, events: await history(sfn, executionArn) };
  };

  async function until(
    sfn: SFNClient,
    executionArn: string,
    done: (d: DescribeExecutionCommandOutput, events: HistoryEvent[]) => boolean,
  ) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
      const events = await history(sfn, executionArn);
      if (done(d, events)) return;
      if (Date.now() > deadline) throw new Error(`execution still ${d.status} after 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it("keeps a finished execution's status and history, and fails one the server was stopped during (States.Runtime), its events kept", async () => {
    dir = tempDir("kmslab-sfn-");
    const args = ["--sim-data", dir, "--sim-profile", "instant"];
    server = await startServe(args);
    let { config, sfn } = clientsFor(server);
    const sts = new STSClient(config);
    const account = (await sts.send(new GetCallerIdentityCommand({}))).Account!;
    sts.destroy();
    const roleArn = await createExecutionRole(config, account, [], {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: "sts:GetCallerIdentity", Resource: "*" }],
    });
    const machine = await sfn.send(
      new CreateStateMachineCommand({ name: "small", definition: JSON.stringify(SMALL), roleArn }),
    );
    const start = async (name: string, wait: number) =>
      (
        await sfn.send(
          new StartExecutionCommand({
            stateMachineArn: machine.stateMachineArn,
            name,
            input: JSON.stringify({ who: "world", wait }),
          }),
        )
      ).executionArn!;

    // One execution to its end.
    const finished = await start("finished", 1);
    await until(sfn, finished, (d) => d.status !== "RUNNING");
    const before = await describeAndHistory(sfn, finished);
    expect(before.described.status).toBe("SUCCEEDED");
    expect(JSON.parse(before.described.output!)).toEqual({
      greeting: "hello world",
      arn: expect.stringMatching(new RegExp(`^arn:aws:sts::${account}:assumed-role/${ROLE}/`)),
    });
    expect(before.events.map((e) => e.type)).toEqual([
      "ExecutionStarted",
      "PassStateEntered",
      "PassStateExited",
      "TaskStateEntered",
      "TaskScheduled",
      "TaskStarted",
      "TaskSucceeded",
      "TaskStateExited",
      "WaitStateEntered",
      "WaitStateExited",
      "SucceedStateEntered",
      "SucceedStateExited",
      "ExecutionSucceeded",
    ]);
    expectNumbered(before.events);

    // Stopped (SIGTERM) and started again on the same data: the same status, the same events.
    sfn.destroy();
    expect(await server.stop("SIGTERM")).toBe(0);
    server = await startServe(args);
    ({ config, sfn } = clientsFor(server));
    expect(await describeAndHistory(sfn, finished)).toEqual(before);

    // An execution still waiting (600 s) when the server stops — politely (SIGTERM) or killed
    // (SIGKILL) — is FAILED with States.Runtime once it is back, its events so far kept.
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      const waiting = await start(`waiting-${signal}`, 600);
      await until(sfn, waiting, (_d, events) => events.some((e) => e.type === "WaitStateEntered"));
      const { described, events: far } = await describeAndHistory(sfn, waiting);
      expect(described.status).toBe("RUNNING");
      sfn.destroy();
      const code = await server.stop(signal);
      expect(code, signal).toBe(signal === "SIGTERM" ? 0 : null);
      server = await startServe(args);
      ({ config, sfn } = clientsFor(server));
      const after = await describeAndHistory(sfn, waiting);
      expect(after.described, signal).toMatchObject({ status: "FAILED", error: "States.Runtime" });
      expect(after.described.cause, signal).toMatch(/execution was running/);
      expect(after.described.stopDate, signal).toBeInstanceOf(Date);
      expectNumbered(after.events);
      // What was there before, then the execution's end, and nothing after it.
      expect(after.events.slice(0, far.length), signal).toEqual(far);
      expect(after.events.at(-1), signal).toMatchObject({
        type: "ExecutionFailed",
        executionFailedEventDetails: { error: "States.Runtime", cause: after.described.cause },
      });
      expect(
        after.events.slice(far.length).map((e) => e.type),
        signal,
      ).toEqual(["ExecutionFailed"]);
    }
    // The finished one is untouched by all this.
    expect(await describeAndHistory(sfn, finished)).toEqual(before);
    sfn.destroy();
  }, 120_000);
});
