import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AWS_CLI, awsCliEnv, runCli, type ServeHandle, startServe, tempDir } from "./helpers/cli.js";

/**
 * The whole lab done by hand with Debian's AWS CLI against `kmslab sim serve` — all six stages,
 * the key user's removal and return included, no kmslab tags, no state file — then graded by
 * `kmslab grade --endpoint-url` from the parameters alone: 100/100.
 */
const run = promisify(execFile);

describe("a lab done by hand with the AWS CLI grades 100/100", () => {
  const work = tempDir("kmslab-grade-awscli-");
  let server: ServeHandle;
  let account: string;

  const baseEnv = () => ({ ...awsCliEnv(work, server), AWS_REGION: "us-east-1" });

  /** `aws ...` as the learner, or with the given session's credentials. */
  async function aws(args: string[], session?: Record<string, string>): Promise<Record<string, unknown>> {
    const { stdout } = await run(AWS_CLI, ["--endpoint-url", server.endpoint, "--output", "json", ...args], {
      cwd: work,
      env: { ...baseEnv(), ...session },
      encoding: "utf8",
    });
    return stdout.trim() ? JSON.parse(stdout) : {};
  }

  async function awsFails(args: string[], session?: Record<string, string>): Promise<string> {
    return run(AWS_CLI, ["--endpoint-url", server.endpoint, ...args], {
      cwd: work,
      env: { ...baseEnv(), ...session },
      encoding: "utf8",
    }).then(
      () => "",
      (err: { stderr: string }) => err.stderr,
    );
  }

  const file = (name: string, value: unknown) => {
    writeFileSync(join(work, name), typeof value === "string" ? value : JSON.stringify(value));
    return `file://${name}`;
  };

  beforeAll(async () => {
    server = await startServe(["--sim-data", join(work, "sim"), "--sim-profile", "instant"]);
    account = (await aws(["sts", "get-caller-identity"])).Account as string;
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("all six stages by hand, then kmslab grade", async () => {
    const root = `arn:aws:iam::${account}:root`;
    const me = (await aws(["sts", "get-caller-identity"])).Arn as string;
    const roleArn = `arn:aws:iam::${account}:role/kmslab-key-user`;
    const logBucket = `kmslab-trail-${account}-us-east-1`;
    const dataBucket = `kmslab-data-${account}-us-east-1`;
    const trailArn = `arn:aws:cloudtrail:us-east-1:${account}:trail/kmslab-trail`;
    const objectKey = "reports/secret-report.txt";
    const allBlocked =
      "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true";

    // 1. The key user (S3 read, no KMS in IAM), the key with the console's policy, the alias.
    await aws([
      "iam",
      "create-role",
      "--role-name",
      "kmslab-key-user",
      "--assume-role-policy-document",
      file("trust.json", {
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { AWS: root }, Action: "sts:AssumeRole" }],
      }),
    ]);
    await aws([
      "iam",
      "put-role-policy",
      "--role-name",
      "kmslab-key-user",
      "--policy-name",
      "read-data",
      "--policy-document",
      file("read.json", {
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${dataBucket}/*` }],
      }),
    ]);
    const keyPolicy = (withRole: boolean) => ({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "Enable IAM User Permissions",
          Effect: "Allow",
          Principal: { AWS: root },
          Action: "kms:*",
          Resource: "*",
        },
        {
          Sid: "Key administrators",
          Effect: "Allow",
          Principal: { AWS: me },
          Action: "kms:*",
          Resource: "*",
        },
        ...(withRole
          ? [
              {
                Sid: "Allow use of the key",
                Effect: "Allow",
                Principal: { AWS: roleArn },
                Action: [
                  "kms:Encrypt",
                  "kms:Decrypt",
                  "kms:ReEncrypt*",
                  "kms:GenerateDataKey*",
                  "kms:DescribeKey",
                ],
                Resource: "*",
              },
            ]
          : []),
      ],
    });
    const key = (await aws(["kms", "create-key", "--policy", file("key-policy.json", keyPolicy(true))]))
      .KeyMetadata as { KeyId: string; Arn: string };
    await aws(["kms", "create-alias", "--alias-name", "alias/myFirstKey", "--target-key-id", key.KeyId]);

    // 2. The log bucket, private, with CloudTrail's policy; the trail; logging.
    await aws(["s3api", "create-bucket", "--bucket", logBucket]);
    await aws([
      "s3api",
      "put-public-access-block",
      "--bucket",
      logBucket,
      "--public-access-block-configuration",
      allBlocked,
    ]);
    await aws([
      "s3api",
      "put-bucket-policy",
      "--bucket",
      logBucket,
      "--policy",
      file("trail-policy.json", {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: "cloudtrail.amazonaws.com" },
            Action: "s3:GetBucketAcl",
            Resource: `arn:aws:s3:::${logBucket}`,
            Condition: { StringEquals: { "aws:SourceArn": trailArn } },
          },
          {
            Effect: "Allow",
            Principal: { Service: "cloudtrail.amazonaws.com" },
            Action: "s3:PutObject",
            Resource: `arn:aws:s3:::${logBucket}/AWSLogs/${account}/*`,
            Condition: {
              StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trailArn },
            },
          },
        ],
      }),
    ]);
    await aws(["cloudtrail", "create-trail", "--name", "kmslab-trail", "--s3-bucket-name", logBucket]);
    await aws(["cloudtrail", "start-logging", "--name", "kmslab-trail"]);

    // 3. The data bucket, private; the object with SSE-KMS under the key, bucket key off.
    await aws(["s3api", "create-bucket", "--bucket", dataBucket]);
    await aws([
      "s3api",
      "put-public-access-block",
      "--bucket",
      dataBucket,
      "--public-access-block-configuration",
      allBlocked,
    ]);
    writeFileSync(join(work, "report.txt"), "quarterly numbers: confidential\n");
    await aws([
      "s3api",
      "put-object",
      "--bucket",
      dataBucket,
      "--key",
      objectKey,
      "--body",
      "report.txt",
      "--server-side-encryption",
      "aws:kms",
      "--ssekms-key-id",
      "alias/myFirstKey",
      "--no-bucket-key-enabled",
    ]);

    // 4. A signed download (the grader tries the unsigned one itself).
    await aws(["s3api", "get-object", "--bucket", dataBucket, "--key", objectKey, "downloaded.txt"]);

    // 6. As the key user: it reads; out of the key policy it is denied; back in it reads again.
    const creds = (await aws(["sts", "assume-role", "--role-arn", roleArn, "--role-session-name", "learner"]))
      .Credentials as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
    const asRole = {
      AWS_ACCESS_KEY_ID: creds.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.SecretAccessKey,
      AWS_SESSION_TOKEN: creds.SessionToken,
    };
    await aws(["s3api", "get-object", "--bucket", dataBucket, "--key", objectKey, "as-role.txt"], asRole);
    writeFileSync(join(work, "probe.txt"), "probe");
    const blob = (
      await aws(["kms", "encrypt", "--key-id", "alias/myFirstKey", "--plaintext", "fileb://probe.txt"])
    ).CiphertextBlob as string;
    writeFileSync(join(work, "probe.enc"), Buffer.from(blob, "base64"));
    await aws([
      "kms",
      "put-key-policy",
      "--key-id",
      key.KeyId,
      "--policy-name",
      "default",
      "--policy",
      file("without.json", keyPolicy(false)),
    ]);
    expect(await awsFails(["kms", "decrypt", "--ciphertext-blob", "fileb://probe.enc"], asRole)).toContain(
      "AccessDeniedException",
    );
    await aws([
      "kms",
      "put-key-policy",
      "--key-id",
      key.KeyId,
      "--policy-name",
      "default",
      "--policy",
      file("with.json", keyPolicy(true)),
    ]);
    await aws(
      ["s3api", "get-object", "--bucket", dataBucket, "--key", objectKey, "as-role-again.txt"],
      asRole,
    );

    // Graded through the same endpoint, from the parameters alone.
    const graded = await runCli(
      ["--endpoint-url", server.endpoint, "--json", "grade", "--learner", "by hand"],
      {
        cwd: work,
        env: baseEnv(),
      },
    );
    expect(graded.stderr).toBe("");
    const result = JSON.parse(graded.stdout);
    const missing = result.stages.flatMap((s: { checks: { learner?: string }[] }) =>
      s.checks.flatMap((c) => (c.learner ? [c.learner] : [])),
    );
    expect(missing).toEqual([]);
    expect(result).toMatchObject({ score: 100, maxScore: 100, passed: true, learner: "by hand" });
    expect(result.target).toMatchObject({ kind: "endpoint", accountId: account, endpoint: server.endpoint });
    expect(result.run).toBeUndefined();
    expect(graded.code).toBe(0);

    // The same learner in a class roster, found by their endpoint.
    writeFileSync(join(work, "learners.csv"), `name,endpoint\nBy hand,${server.endpoint}\n`);
    const klass = await runCli(["grade", "--class", "learners.csv", "--out", "class"], {
      cwd: work,
      env: baseEnv(),
    });
    expect(klass.code).toBe(0);
    expect(klass.stdout).toContain("1 of 1 learners graded · 1 passed (100%) · mean score 100");
    expect(readFileSync(join(work, "class", "summary.csv"), "utf8")).toContain("By hand,100,100,100,true,");
  }, 120_000);
});
