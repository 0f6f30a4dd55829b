import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { exportLab, exportTeardown } from "../asl/export.js";
import { executionRolePolicy } from "../asl/iam.js";
import { execute } from "../asl/interpreter.js";
import { clientsInvoker, type InvokedCall } from "../asl/invoke.js";
import { Clients, type Credentials } from "../machines/aws.js";
import { evaluatePolicy, parsePolicy } from "../sim/policy/index.js";
import { Simulator } from "../sim/simulator.js";
import { parseParams, resolveParams } from "../steps/params.js";

/**
 * The execution-role policy `kmslab export iam-policy` derives, put to the simulator's IAM policy
 * evaluation through the real SDK: a role with only that policy runs the exported lab and then its
 * teardown — every Task dispatched to the simulated account as that role (the key user's Tasks as
 * the key-user role, which the execution role assumes, as Step Functions does for Task
 * `Credentials`) — and every stage passes with no call of the role denied; a call outside the
 * policy is denied.
 */

const FAST = { pollSeconds: 1, trailWaitSeconds: 120, propagationWaitSeconds: 30 };
const EXECUTION_ROLE = "kmslab-states-execution";
const DENIED = /AccessDenied|Unauthorized|Forbidden/;

function session(out: Record<string, unknown>): Credentials {
  const c = out.Credentials as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
}

describe("the execution-role IAM policy", () => {
  it("allows every call the lab and teardown definitions make, and denies a call outside it", async () => {
    const sim = Simulator.inMemory();
    const account = sim.account.accountId;
    const admin = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
    const lab = await exportLab();
    const teardown = await exportTeardown();
    const policy = executionRolePolicy(
      [lab.definition, teardown.definition],
      resolveParams(parseParams(FAST), account),
    );
    await admin.call("iam", "CreateRole", {
      RoleName: EXECUTION_ROLE,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: "sts:AssumeRole" },
        ],
      }),
    });
    await admin.call("iam", "PutRolePolicy", {
      RoleName: EXECUTION_ROLE,
      PolicyName: "kmslab-states",
      PolicyDocument: JSON.stringify(policy),
    });
    const role = session(
      await admin.call("sts", "AssumeRole", {
        RoleArn: `arn:aws:iam::${account}:role/${EXECUTION_ROLE}`,
        RoleSessionName: "states",
      }),
    );
    const exec = new Clients({ ...sim.clientConfig(), region: "us-east-1", credentials: role });
    // Waits move a clock of their own; a short real pause keeps CloudTrail's 2 lookups/s honest.
    let now = Date.now();
    const clock = {
      now: () => now,
      sleep: async (ms: number) => {
        now += ms;
        await new Promise((r) => setTimeout(r, Math.min(ms, 300)));
      },
    };
    const options = {
      clock,
      random: () => 1,
      executionName: "kmslab-states-test",
      stateMachineArn: `arn:aws:states:us-east-1:${account}:stateMachine:kmslab`,
    };
    try {
      const made: InvokedCall[] = [];
      const run = await execute(lab.definition, FAST, {
        ...options,
        invoke: clientsInvoker(exec, (c) => made.push(c)),
      });
      expect(run.status, `${run.error}: ${run.cause}`).toBe("SUCCEEDED");
      expect((run.output as { points: number }).points).toBe(100);
      expect(made.filter((m) => !m.asRole && DENIED.test(m.error ?? ""))).toEqual([]);
      // The denials the lab provokes are the key user's (stage 6), not the role's.
      expect(made.some((m) => m.asRole && DENIED.test(m.error ?? ""))).toBe(true);
      expect(new Set(made.map((m) => m.service))).toEqual(new Set(["sts", "iam", "kms", "s3", "cloudtrail"]));

      const undone: InvokedCall[] = [];
      // The lab's run id is its execution's name: the teardown is told it.
      const down = await execute(
        teardown.definition,
        { ...FAST, runId: options.executionName },
        {
          ...options,
          invoke: clientsInvoker(exec, (c) => undone.push(c)),
        },
      );
      expect(down.status, `${down.error}: ${down.cause}`).toBe("SUCCEEDED");
      expect(undone.filter((m) => DENIED.test(m.error ?? ""))).toEqual([]);
      expect(undone.map((m) => m.action)).toContain("ScheduleKeyDeletion");
      const buckets = ((await admin.call("s3", "ListBuckets", {})).Buckets as unknown[] | undefined) ?? [];
      expect(buckets).toEqual([]);
      const trails = (await admin.call("cloudtrail", "DescribeTrails", {})).trailList as unknown[];
      expect(trails).toEqual([]);
      await expect(admin.call("iam", "GetRole", { RoleName: "kmslab-key-user" })).rejects.toMatchObject({
        code: "NoSuchEntity",
      });

      // Stage 1's verification lists the aliases when no key answers to the lab's (a near miss is
      // named): never reached by the run above. ListAliases takes no key, so its resource is "*".
      expect((await exec.call("kms", "ListAliases", { Limit: 100 })).Aliases).toBeDefined();

      // Outside the policy: another role, another bucket.
      await expect(
        exec.call("iam", "CreateRole", { RoleName: "not-the-labs", AssumeRolePolicyDocument: "{}" }),
      ).rejects.toMatchObject({ code: "AccessDenied" });
      await expect(
        exec.call("s3", "CreateBucket", { Bucket: "somebody-elses-bucket" }),
      ).rejects.toMatchObject({
        code: "AccessDenied",
      });
    } finally {
      admin.destroy();
      exec.destroy();
    }
  });
});

describe("the committed policy for any account (workflows/iam-policy.json)", () => {
  const text = readFileSync(resolve(import.meta.dirname, "../workflows/iam-policy.json"), "utf8");
  const policy = parsePolicy(text, "identity");
  const principal = {
    type: "AssumedRole" as const,
    arn: "arn:aws:sts::444455556666:assumed-role/kmslab-states-execution/states",
    accountId: "444455556666",
    userId: "AROAEXAMPLE:states",
    roleArn: "arn:aws:iam::444455556666:role/kmslab-states-execution",
  };
  const decide = (action: string, resource: string) =>
    evaluatePolicy(policy, { principal, action, resource }).effect;

  it("allows the lab's calls on the lab's resources in any account, and nothing else", () => {
    expect(decide("kms:CreateKey", "*")).toBe("Allow");
    expect(decide("kms:ListAliases", "*")).toBe("Allow");
    expect(decide("kms:ScheduleKeyDeletion", "arn:aws:kms:us-east-1:444455556666:key/1234abcd")).toBe(
      "Allow",
    );
    expect(
      decide("s3:PutObject", "arn:aws:s3:::kmslab-data-444455556666-us-east-1/reports/secret-report.txt"),
    ).toBe("Allow");
    expect(decide("sts:AssumeRole", "arn:aws:iam::444455556666:role/kmslab-key-user")).toBe("Allow");
    expect(decide("s3:PutObject", "arn:aws:s3:::kmslab-data-444455556666-us-east-1/other.txt")).toBe("None");
    expect(decide("iam:CreateRole", "arn:aws:iam::444455556666:role/admin")).toBe("None");
    expect(decide("kms:Decrypt", "arn:aws:kms:eu-west-1:444455556666:key/1234abcd")).toBe("None");
    expect(
      decide("cloudtrail:DeleteTrail", "arn:aws:cloudtrail:us-east-1:444455556666:trail/org-trail"),
    ).toBe("None");
  });
});
