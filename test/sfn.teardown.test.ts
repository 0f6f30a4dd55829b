import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { TeardownResource } from "../asl/teardown.js";
import { AwsError, Clients } from "../machines/aws.js";
import { Simulator } from "../sim/simulator.js";
import { runCli, tempDir } from "./helpers/cli.js";

/**
 * `kmslab sfn start --teardown` as a new user meets it, on the embedded simulator's Step Functions:
 * the exported teardown deletes only what a run of the input made (its kmslab:run tag names the
 * run), keeps and lists hand-made look-alikes with the lab's names, skips with the error what it
 * cannot read — someone else's key, whose key policy does not admit the caller, apart; a bucket
 * with the lab's name whose policy denies reading its tags ends it FAILED, naming it — and never
 * guesses which run to tear down.
 */
const FAST = { pollSeconds: 1, trailWaitSeconds: 120, propagationWaitSeconds: 30 };
const env = { KMSLAB_SIM_PROFILE: "instant" };

function workspace(prefix: string) {
  const work = tempDir(prefix);
  const simData = join(work, "sim");
  const input = (name: string, params: Record<string, unknown>) => {
    const file = join(work, `${name}.json`);
    writeFileSync(file, JSON.stringify({ ...FAST, ...params }));
    return file;
  };
  const cli = (...args: string[]) => runCli(["--sim-data", simData, ...args], { cwd: work, env });
  return { simData, input, cli };
}

/** The account in a data directory, opened for a moment, with admin clients. */
async function withAccount<T>(dir: string, fn: (aws: Clients, account: string) => Promise<T>): Promise<T> {
  const sim = Simulator.open(dir, { profile: "instant" });
  const aws = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
  try {
    return await fn(aws, sim.account.accountId);
  } finally {
    aws.destroy();
    sim.close();
  }
}

interface View {
  status: string;
  error?: string;
  cause?: string;
  resources?: TeardownResource[];
  stages: { id: string; status: string; reason?: string }[];
}

const outcomes = (v: View) => (v.resources ?? []).map((r) => [r.type, r.name, r.outcome]);

const exists = (p: Promise<unknown>) =>
  p.then(
    () => true,
    (err) => {
      if (err instanceof AwsError && /NoSuch|NotFound/.test(err.code)) return false;
      throw err;
    },
  );

describe("sfn start --teardown with {suffix: -mine}", () => {
  it("removes what the run made, and keeps and lists hand-made look-alikes with the lab's names", async () => {
    const { simData, input, cli } = workspace("kmslab-sfn-td-mine-");
    const mine = input("mine", { suffix: "-mine" });
    expect((await cli("deploy")).code).toBe(0);
    const lab = await cli("--json", "sfn", "start", "--input", mine, "--name", "lab-mine");
    expect(lab.code, lab.stderr).toBe(0);

    // By hand: the run's trail, data bucket, role and alias replaced with untagged ones of the same
    // names — a bucket with objects, a role, a key of one's own under the alias, a trail.
    const names = await withAccount(simData, async (aws, account) => {
      const dataBucket = `kmslab-data-${account}-us-east-1-mine`;
      const logBucket = `kmslab-trail-${account}-us-east-1-mine`;
      await aws.call("cloudtrail", "DeleteTrail", { Name: "kmslab-trail-mine" });
      await aws.call("cloudtrail", "CreateTrail", { Name: "kmslab-trail-mine", S3BucketName: logBucket });
      for (const v of ((await aws.call("s3", "ListObjectVersions", { Bucket: dataBucket })).Versions ??
        []) as { Key: string; VersionId: string }[])
        await aws.call("s3", "DeleteObject", { Bucket: dataBucket, Key: v.Key, VersionId: v.VersionId });
      await aws.call("s3", "DeleteBucket", { Bucket: dataBucket });
      await aws.call("s3", "CreateBucket", { Bucket: dataBucket });
      for (const key of ["notes.txt", "photos/cat.jpg"])
        await aws.call("s3", "PutObject", { Bucket: dataBucket, Key: key, Body: "mine" });
      await aws.call("iam", "DeleteRolePolicy", {
        RoleName: "kmslab-key-user-mine",
        PolicyName: "kmslab-read-lab-data",
      });
      await aws.call("iam", "DeleteRole", { RoleName: "kmslab-key-user-mine" });
      await aws.call("iam", "CreateRole", {
        RoleName: "kmslab-key-user-mine",
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: "sts:AssumeRole" },
          ],
        }),
      });
      const labKey = (await aws.call("kms", "DescribeKey", { KeyId: "alias/myFirstKey-mine" }))
        .KeyMetadata as {
        KeyId: string;
      };
      await aws.call("kms", "DeleteAlias", { AliasName: "alias/myFirstKey-mine" });
      const handKey = (await aws.call("kms", "CreateKey", { Description: "my first key" })).KeyMetadata as {
        KeyId: string;
      };
      await aws.call("kms", "CreateAlias", {
        AliasName: "alias/myFirstKey-mine",
        TargetKeyId: handKey.KeyId,
      });
      return { account, dataBucket, logBucket, labKey: labKey.KeyId, handKey: handKey.KeyId };
    });

    const down = await cli("--json", "sfn", "start", "--teardown", "--input", mine);
    expect(down.code, down.stderr).toBe(0);
    const view = JSON.parse(down.stdout) as View;
    expect(view.status).toBe("SUCCEEDED");
    expect(outcomes(view)).toEqual([
      ["AWS::CloudTrail::Trail", "kmslab-trail-mine", "kept"],
      ["AWS::S3::Bucket", names.logBucket, "removed"],
      ["AWS::S3::Bucket", names.dataBucket, "kept"],
      ["AWS::KMS::Alias", "alias/myFirstKey-mine", "kept"],
      ["AWS::KMS::Key", names.labKey, "removed"],
      ["AWS::IAM::Role", "kmslab-key-user-mine", "kept"],
    ]);
    for (const r of view.resources!.filter((r) => r.outcome === "kept"))
      expect(r.reason).toMatch(/no kmslab:run tag/);

    await withAccount(simData, async (aws) => {
      // Every look-alike is there as it was made; the run's own are gone.
      expect(
        (
          (await aws.call("s3", "ListObjectsV2", { Bucket: names.dataBucket })).Contents as { Key: string }[]
        ).map((o) => o.Key),
      ).toEqual(["notes.txt", "photos/cat.jpg"]);
      expect(await exists(aws.call("iam", "GetRole", { RoleName: "kmslab-key-user-mine" }))).toBe(true);
      expect(await exists(aws.call("cloudtrail", "GetTrail", { Name: "kmslab-trail-mine" }))).toBe(true);
      const alias = (await aws.call("kms", "DescribeKey", { KeyId: "alias/myFirstKey-mine" }))
        .KeyMetadata as {
        KeyId: string;
        KeyState: string;
      };
      expect(alias).toMatchObject({ KeyId: names.handKey, KeyState: "Enabled" });
      expect(await exists(aws.call("s3", "HeadBucket", { Bucket: names.logBucket }))).toBe(false);
      expect(
        ((await aws.call("kms", "DescribeKey", { KeyId: names.labKey })).KeyMetadata as { KeyState: string })
          .KeyState,
      ).toBe("PendingDeletion");
    });

    // The text says the same, one resource a line.
    const text = await cli("sfn", "start", "--teardown", "--input", mine);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /^ {2}kept +AWS::IAM::Role +\S+role\/kmslab-key-user-mine — .*no kmslab:run tag/m,
    );
    expect(text.stdout).toMatch(/^ {2}pendingDeletion +AWS::KMS::Key/m);
  }, 180_000);

  it("without a lab execution of those parameters it names no run and starts nothing", async () => {
    const { input, cli } = workspace("kmslab-sfn-td-none-");
    expect((await cli("deploy")).code).toBe(0);
    const res = await cli("sfn", "start", "--teardown", "--input", input("none", { suffix: "-none" }));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/no run to tear down: .*--run-id/);
    const usage = await cli("sfn", "start", "--run-id", "lab-1");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("--run-id names the runs a teardown removes");
  }, 60_000);
});

describe("sfn start --teardown next to what it cannot read", () => {
  it("skips someone else's key with the reason, and fails naming a lab-named bucket whose tags it may not read", async () => {
    const { simData, input, cli } = workspace("kmslab-sfn-td-denied-");
    const b = input("b", { suffix: "-b" });
    expect((await cli("deploy")).code).toBe(0);
    expect((await cli("sfn", "start", "--input", b, "--name", "lab-b")).code).toBe(0);
    const foreign = await withAccount(simData, async (aws, account) => {
      // A key whose key policy admits only someone else: not even the account's IAM policies apply.
      await aws.call("iam", "CreateRole", {
        RoleName: "someone-else",
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: "sts:AssumeRole" },
          ],
        }),
      });
      const key = (
        await aws.call("kms", "CreateKey", {
          BypassPolicyLockoutSafetyCheck: true,
          Policy: JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                Principal: { AWS: `arn:aws:iam::${account}:role/someone-else` },
                Action: "kms:*",
                Resource: "*",
              },
            ],
          }),
        })
      ).KeyMetadata as { KeyId: string; Arn: string };
      return key;
    });
    const down = await cli("--json", "sfn", "start", "--teardown", "--input", b);
    expect(down.code, down.stderr).toBe(0);
    const view = JSON.parse(down.stdout) as View;
    expect(view.status).toBe("SUCCEEDED");
    const skipped = view.resources!.find((r) => r.name === foreign.KeyId)!;
    expect(skipped).toMatchObject({ type: "AWS::KMS::Key", outcome: "skipped" });
    expect(skipped.reason).toMatch(/AccessDeniedException|not authorized/);
    expect(skipped.reason).toContain("not provably the lab's");
    expect(skipped.undecided).toBeUndefined();
    expect(view.resources!.filter((r) => r.outcome === "removed")).toHaveLength(6);

    // A bucket with the lab's log-bucket name for -c, whose policy denies reading its tags.
    const c = input("c", { suffix: "-c" });
    const bucket = await withAccount(simData, async (aws, account) => {
      const name = `kmslab-trail-${account}-us-east-1-c`;
      await aws.call("s3", "CreateBucket", { Bucket: name });
      await aws.call("s3", "PutObject", { Bucket: name, Key: "keep.txt", Body: "mine" });
      await aws.call("s3", "PutBucketPolicy", {
        Bucket: name,
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Deny",
              Principal: "*",
              Action: "s3:GetBucketTagging",
              Resource: `arn:aws:s3:::${name}`,
              Condition: { ArnLike: { "aws:PrincipalArn": `arn:aws:iam::${account}:role/kmslab-states` } },
            },
          ],
        }),
      });
      // And its data-bucket name, taken in another Region: S3 answers 301 PermanentRedirect.
      const europe = new Clients({ ...aws.base, region: "eu-west-1" });
      await europe.call("s3", "CreateBucket", {
        Bucket: `kmslab-data-${account}-us-east-1-c`,
        CreateBucketConfiguration: { LocationConstraint: "eu-west-1" },
      });
      europe.destroy();
      return name;
    });
    const denied = await cli("--json", "sfn", "start", "--teardown", "--input", c, "--run-id", "lab-c");
    expect(denied.code).toBe(1);
    const failed = JSON.parse(denied.stdout) as View;
    expect(failed).toMatchObject({ status: "FAILED", error: "kmslab.TeardownIncomplete" });
    expect(failed.cause).toContain(`AWS::S3::Bucket ${bucket}: could not be read`);
    const unread = failed.resources!.find((r) => r.name === bucket)!;
    expect(unread).toMatchObject({ outcome: "skipped", undecided: true });
    expect(unread.reason).toMatch(/not authorized to perform: s3:GetBucketTagging/);
    const elsewhere = failed.resources!.find((r) => r.name?.startsWith("kmslab-data-"))!;
    expect(elsewhere).toMatchObject({ outcome: "skipped", undecided: true });
    expect(elsewhere.reason).toContain("must be addressed using the specified endpoint");
    expect(failed.stages.find((s) => s.id === "trail-to-bucket")).toMatchObject({
      status: "failed",
      reason: expect.stringContaining(bucket),
    });
    await withAccount(simData, async (aws) => {
      expect(await exists(aws.call("s3", "HeadObject", { Bucket: bucket, Key: "keep.txt" }))).toBe(true);
      expect(
        ((await aws.call("kms", "ListKeys", {})).Keys as { KeyId: string }[]).map((k) => k.KeyId),
      ).toContain(foreign.KeyId);
    });
  }, 180_000);
});
