import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AWS_CLI, awsCliEnv, type ServeHandle, startServe, tempDir } from "./helpers/cli.js";

/**
 * The whole lab done by hand, as a learner does it with Debian's AWS CLI and curl against
 * `kmslab sim serve`: key and alias, a log bucket whose policy CloudTrail first finds wanting, a
 * logging trail, an SSE-KMS upload, an unsigned request that fails and a presigned one that works,
 * and the key's use found in LookupEvents and in the delivered log file.
 */
const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

interface TrailEvent {
  eventName: string;
  eventSource: string;
  requestParameters?: { encryptionContext?: Record<string, string> };
  resources?: { ARN: string; type: string }[];
  userIdentity: { type: string; arn?: string };
}

describe("the whole lab by hand with the AWS CLI against kmslab sim serve", () => {
  const work = tempDir("kmslab-awscli-lab-");
  let server: ServeHandle;
  let account: string;

  const exec = (file: string, args: string[], env?: Record<string, string>): Promise<Result> =>
    run(file, args, { cwd: work, env, encoding: "utf8", maxBuffer: 16 << 20 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (err: { code: number; stdout: string; stderr: string }) => ({
        code: err.code,
        stdout: err.stdout,
        stderr: err.stderr,
      }),
    );

  const aws = (args: string[]): Promise<Result> =>
    exec(AWS_CLI, ["--endpoint-url", server.endpoint, "--output", "json", ...args], awsCliEnv(work, server));

  async function ok(args: string[]): Promise<Record<string, unknown>> {
    const res = await aws(args);
    expect(res.stderr, `aws ${args.join(" ")}`).toBe("");
    expect(res.code).toBe(0);
    return res.stdout.trim() ? JSON.parse(res.stdout) : {};
  }

  const curl = (url: string) =>
    exec("curl", ["-s", "-w", "\n%{http_code} %{content_type}", url]).then((r) => {
      const cut = r.stdout.lastIndexOf("\n");
      const [status, type] = r.stdout.slice(cut + 1).split(" ");
      return { status: Number(status), type, body: r.stdout.slice(0, cut) };
    });

  beforeAll(async () => {
    server = await startServe(["--sim-data", join(work, "sim"), "--sim-profile", "instant"]);
    account = (await ok(["sts", "get-caller-identity"])).Account as string;
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("runs every stage, and CloudTrail shows the key's use with the object's name", async () => {
    // Stage 1: a customer managed key and its alias.
    const key = (await ok(["kms", "create-key", "--description", "lab key"])).KeyMetadata as {
      KeyId: string;
      Arn: string;
    };
    await ok(["kms", "create-alias", "--alias-name", "alias/myFirstKey", "--target-key-id", key.KeyId]);
    const described = (await ok(["kms", "describe-key", "--key-id", "alias/myFirstKey"])).KeyMetadata as {
      Arn: string;
      KeyState: string;
    };
    expect(described).toMatchObject({ Arn: key.Arn, KeyState: "Enabled" });

    // Stage 2: the log bucket; CloudTrail refuses it until its policy lets CloudTrail write.
    const logBucket = `kmslab-trail-${account}-us-east-1`;
    const trailArn = `arn:aws:cloudtrail:us-east-1:${account}:trail/kmslab-trail`;
    await ok(["s3api", "create-bucket", "--bucket", logBucket]);
    const refused = await aws([
      "cloudtrail",
      "create-trail",
      "--name",
      "kmslab-trail",
      "--s3-bucket-name",
      logBucket,
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("InsufficientS3BucketPolicyException");
    expect(refused.stderr).toContain(`Incorrect S3 bucket policy is detected for bucket: ${logBucket}`);

    const trailPolicy = {
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "AWSCloudTrailAclCheck20150319",
          Effect: "Allow",
          Principal: { Service: "cloudtrail.amazonaws.com" },
          Action: "s3:GetBucketAcl",
          Resource: `arn:aws:s3:::${logBucket}`,
          Condition: { StringEquals: { "aws:SourceArn": trailArn } },
        },
        {
          Sid: "AWSCloudTrailWrite20150319",
          Effect: "Allow",
          Principal: { Service: "cloudtrail.amazonaws.com" },
          Action: "s3:PutObject",
          Resource: `arn:aws:s3:::${logBucket}/AWSLogs/${account}/*`,
          Condition: {
            StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trailArn },
          },
        },
      ],
    };
    writeFileSync(join(work, "trail-policy.json"), JSON.stringify(trailPolicy));
    await ok(["s3api", "put-bucket-policy", "--bucket", logBucket, "--policy", "file://trail-policy.json"]);
    const status = (await ok(["s3api", "get-bucket-policy-status", "--bucket", logBucket])).PolicyStatus;
    expect(status).toEqual({ IsPublic: false });

    const trail = await ok([
      "cloudtrail",
      "create-trail",
      "--name",
      "kmslab-trail",
      "--s3-bucket-name",
      logBucket,
    ]);
    expect(trail.TrailARN).toBe(trailArn);
    await ok(["cloudtrail", "start-logging", "--name", "kmslab-trail"]);
    expect((await ok(["cloudtrail", "get-trail-status", "--name", "kmslab-trail"])).IsLogging).toBe(true);

    // Stage 3: an object encrypted with SSE-KMS under the key.
    const dataBucket = `kmslab-data-${account}-us-east-1`;
    const objectKey = "reports/secret-report.txt";
    const objectArn = `arn:aws:s3:::${dataBucket}/${objectKey}`;
    const body = "quarterly numbers: confidential\n";
    writeFileSync(join(work, "report.txt"), body);
    await ok(["s3api", "create-bucket", "--bucket", dataBucket]);
    const put = await ok([
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
    ]);
    expect(put).toMatchObject({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.Arn });
    const head = await ok(["s3api", "head-object", "--bucket", dataBucket, "--key", objectKey]);
    expect(head).toMatchObject({ ServerSideEncryption: "aws:kms", SSEKMSKeyId: key.Arn });

    // Stage 4: the unsigned request is denied with AWS's XML error; a presigned one works.
    const url = `${server.endpoint}/${dataBucket}/${objectKey}`;
    const denied = await curl(url);
    expect(denied.status).toBe(403);
    expect(denied.type).toContain("application/xml");
    expect(denied.body).toMatch(/<Error><Code>AccessDenied<\/Code><Message>Access Denied<\/Message>/);
    const presigned = await aws(["s3", "presign", `s3://${dataBucket}/${objectKey}`, "--expires-in", "300"]);
    expect(presigned.code).toBe(0);
    const fetched = await curl(presigned.stdout.trim());
    expect(fetched.status).toBe(200);
    expect(fetched.body).toBe(body);

    // Stage 5: LookupEvents finds GenerateDataKey (upload) and Decrypt (download) on the key, with
    // the object's ARN as encryption context.
    const usage = async (eventName: string) => {
      const found = await ok([
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        `AttributeKey=EventName,AttributeValue=${eventName}`,
      ]);
      return (found.Events as { CloudTrailEvent: string }[])
        .map((e) => JSON.parse(e.CloudTrailEvent) as TrailEvent)
        .filter((e) => e.requestParameters?.encryptionContext?.["aws:s3:arn"] === objectArn);
    };
    for (const eventName of ["GenerateDataKey", "Decrypt"]) {
      const events = await usage(eventName);
      expect(events, eventName).toHaveLength(1);
      expect(events[0]!.resources).toContainEqual(expect.objectContaining({ ARN: key.Arn }));
      expect(events[0]!.userIdentity.type).toBe("IAMUser");
    }

    // ... and so does the log file CloudTrail delivered into the log bucket.
    const listed = await ok(["s3api", "list-objects-v2", "--bucket", logBucket]);
    const files = ((listed.Contents as { Key: string }[] | undefined) ?? []).map((c) => c.Key);
    const prefix = `AWSLogs/${account}/CloudTrail/us-east-1/`;
    expect(files.length).toBeGreaterThan(0);
    const records: TrailEvent[] = [];
    for (const file of files) {
      expect(file.startsWith(prefix), file).toBe(true);
      expect(file).toMatch(
        new RegExp(`${account}_CloudTrail_us-east-1_\\d{8}T\\d{4}Z_[A-Za-z0-9]{16}\\.json\\.gz$`),
      );
      const out = join(work, "log.json.gz");
      await ok(["s3api", "get-object", "--bucket", logBucket, "--key", file, out]);
      records.push(...(JSON.parse(gunzipSync(readFileSync(out)).toString("utf8")).Records as TrailEvent[]));
    }
    for (const eventName of ["GenerateDataKey", "Decrypt"]) {
      expect(
        records.some(
          (r) =>
            r.eventName === eventName && r.requestParameters?.encryptionContext?.["aws:s3:arn"] === objectArn,
        ),
        `${eventName} in the delivered log files`,
      ).toBe(true);
    }
  }, 180_000); // ~40 AWS CLI processes, each a Python start-up: slow on a loaded machine
});
