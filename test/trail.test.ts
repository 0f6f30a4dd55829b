import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import {
  CloudTrailClient,
  CreateTrailCommand,
  DeleteTrailCommand,
  DescribeTrailsCommand,
  GetEventSelectorsCommand,
  GetTrailCommand,
  GetTrailStatusCommand,
  ListTagsCommand,
  LookupEventsCommand,
  PutEventSelectorsCommand,
  StartLoggingCommand,
  StopLoggingCommand,
} from "@aws-sdk/client-cloudtrail";
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import { CreateKeyCommand, DecryptCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  DeleteBucketPolicyCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { describe, expect, it } from "vitest";
import { PROFILES } from "../sim/account.js";
import { Simulator } from "../sim/simulator.js";
import { failure } from "./helpers/errors.js";

/**
 * CloudTrail through the real SDK clients (aws-subset §3): trails and the bucket policy CloudTrail
 * needs, the event history every call lands in (S3's KMS calls with the requester's identity and
 * the object's ARN), LookupEvents and its limits, log files delivered into the bucket, and delays on
 * a clock the test moves.
 */
const LOGS = "trail-logs-bucket";

function trailPolicy(acct: string, trail = "lab-trail", region = "us-east-1") {
  const trailArn = `arn:aws:cloudtrail:${region}:${acct}:trail/${trail}`;
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "AWSCloudTrailAclCheck20150319",
        Effect: "Allow",
        Principal: { Service: "cloudtrail.amazonaws.com" },
        Action: "s3:GetBucketAcl",
        Resource: `arn:aws:s3:::${LOGS}`,
        Condition: { StringEquals: { "aws:SourceArn": trailArn } },
      },
      {
        Sid: "AWSCloudTrailWrite20150319",
        Effect: "Allow",
        Principal: { Service: "cloudtrail.amazonaws.com" },
        Action: "s3:PutObject",
        Resource: `arn:aws:s3:::${LOGS}/AWSLogs/${acct}/*`,
        Condition: {
          StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trailArn },
        },
      },
    ],
  });
}

function setup(options: Parameters<typeof Simulator.inMemory>[0] = {}) {
  const sim = Simulator.inMemory(options);
  const acct = sim.account.accountId;
  const config = sim.clientConfig({ maxAttempts: 1 });
  return {
    sim,
    acct,
    trail: new CloudTrailClient(config),
    s3: new S3Client({ ...config, forcePathStyle: true }),
    kms: new KMSClient(config),
    iam: new IAMClient(config),
    sts: new STSClient(config),
  };
}

type Env = ReturnType<typeof setup>;

async function loggingTrail(env: Env, name = "lab-trail") {
  await env.s3.send(new CreateBucketCommand({ Bucket: LOGS }));
  await env.s3.send(new PutBucketPolicyCommand({ Bucket: LOGS, Policy: trailPolicy(env.acct, name) }));
  await env.trail.send(new CreateTrailCommand({ Name: name, S3BucketName: LOGS }));
  await env.trail.send(new StartLoggingCommand({ Name: name }));
}

/** Every record in the log files delivered so far. */
async function delivered(env: Env): Promise<Record<string, unknown>[]> {
  const listed = await env.s3.send(new ListObjectsV2Command({ Bucket: LOGS }));
  const records: Record<string, unknown>[] = [];
  for (const o of listed.Contents ?? []) {
    const body = await (
      await env.s3.send(new GetObjectCommand({ Bucket: LOGS, Key: o.Key }))
    ).Body!.transformToByteArray();
    records.push(...JSON.parse(gunzipSync(body).toString()).Records);
  }
  return records;
}

describe("trails", () => {
  it("creates a trail only into an existing bucket whose policy lets CloudTrail write", async () => {
    const env = setup();
    expect(
      await failure(env.trail.send(new CreateTrailCommand({ Name: "lab-trail", S3BucketName: LOGS }))),
    ).toEqual({
      name: "S3BucketDoesNotExistException",
      status: 400,
      message: `S3 bucket ${LOGS} does not exist.`,
    });
    await env.s3.send(new CreateBucketCommand({ Bucket: LOGS }));
    expect(
      await failure(env.trail.send(new CreateTrailCommand({ Name: "lab-trail", S3BucketName: LOGS }))),
    ).toEqual({
      name: "InsufficientS3BucketPolicyException",
      status: 400,
      message: `Incorrect S3 bucket policy is detected for bucket: ${LOGS}`,
    });
    // A policy pinned to another trail is not enough for this one.
    await env.s3.send(
      new PutBucketPolicyCommand({ Bucket: LOGS, Policy: trailPolicy(env.acct, "other-trail") }),
    );
    expect(
      (await failure(env.trail.send(new CreateTrailCommand({ Name: "lab-trail", S3BucketName: LOGS })))).name,
    ).toBe("InsufficientS3BucketPolicyException");
    await env.s3.send(new PutBucketPolicyCommand({ Bucket: LOGS, Policy: trailPolicy(env.acct) }));
    const created = await env.trail.send(
      new CreateTrailCommand({
        Name: "lab-trail",
        S3BucketName: LOGS,
        TagsList: [{ Key: "kmslab:run", Value: "r1" }],
      }),
    );
    expect(created).toMatchObject({
      Name: "lab-trail",
      S3BucketName: LOGS,
      TrailARN: `arn:aws:cloudtrail:us-east-1:${env.acct}:trail/lab-trail`,
      IncludeGlobalServiceEvents: true,
      IsMultiRegionTrail: false,
      LogFileValidationEnabled: false,
    });
    expect(
      await failure(env.trail.send(new CreateTrailCommand({ Name: "lab-trail", S3BucketName: LOGS }))),
    ).toEqual({
      name: "TrailAlreadyExistsException",
      status: 400,
      message: `Trail lab-trail already exists for customer: ${env.acct}`,
    });
    // Logging is off until StartLogging.
    expect((await env.trail.send(new GetTrailStatusCommand({ Name: "lab-trail" }))).IsLogging).toBe(false);
    const tags = await env.trail.send(new ListTagsCommand({ ResourceIdList: [created.TrailARN!] }));
    expect(tags.ResourceTagList?.[0]?.TagsList).toEqual([{ Key: "kmslab:run", Value: "r1" }]);
  });

  it("names bad trail names and unknown trails as AWS does", async () => {
    const env = setup();
    expect(await failure(env.trail.send(new CreateTrailCommand({ Name: "ab", S3BucketName: LOGS })))).toEqual(
      {
        name: "InvalidTrailNameException",
        status: 400,
        message:
          "Trail name too short. Minimum allowed length: 3 characters. Specified name length: 2 characters.",
      },
    );
    expect(
      (await failure(env.trail.send(new CreateTrailCommand({ Name: "bad name!", S3BucketName: LOGS })))).name,
    ).toBe("InvalidTrailNameException");
    expect(await failure(env.trail.send(new GetTrailCommand({ Name: "nope-trail" })))).toEqual({
      name: "TrailNotFoundException",
      status: 400,
      message: `Unknown trail: nope-trail for the user: ${env.acct}`,
    });
  });

  it("starts and stops logging, describes, lists and deletes trails, and keeps event selectors", async () => {
    const env = setup();
    await loggingTrail(env);
    const status = await env.trail.send(new GetTrailStatusCommand({ Name: "lab-trail" }));
    expect(status.IsLogging).toBe(true);
    expect(status.StartLoggingTime).toBeInstanceOf(Date);
    const described = await env.trail.send(new DescribeTrailsCommand({}));
    expect(described.trailList?.map((t) => [t.Name, t.HomeRegion, t.HasCustomEventSelectors])).toEqual([
      ["lab-trail", "us-east-1", false],
    ]);
    expect(
      (await env.trail.send(new GetEventSelectorsCommand({ TrailName: "lab-trail" }))).EventSelectors,
    ).toEqual([
      {
        ReadWriteType: "All",
        IncludeManagementEvents: true,
        DataResources: [],
        ExcludeManagementEventSources: [],
      },
    ]);
    const selectors = [
      {
        ReadWriteType: "All" as const,
        IncludeManagementEvents: true,
        DataResources: [{ Type: "AWS::S3::Object", Values: ["arn:aws:s3:::data-bucket/"] }],
      },
    ];
    const put = await env.trail.send(
      new PutEventSelectorsCommand({ TrailName: "lab-trail", EventSelectors: selectors }),
    );
    expect(put.EventSelectors).toEqual(selectors);
    expect(
      (await env.trail.send(new GetTrailCommand({ Name: "lab-trail" }))).Trail?.HasCustomEventSelectors,
    ).toBe(true);
    await env.trail.send(new StopLoggingCommand({ Name: "lab-trail" }));
    const stopped = await env.trail.send(new GetTrailStatusCommand({ Name: "lab-trail" }));
    expect(stopped.IsLogging).toBe(false);
    expect(stopped.StopLoggingTime).toBeInstanceOf(Date);
    await env.trail.send(new DeleteTrailCommand({ Name: "lab-trail" }));
    expect((await env.trail.send(new DescribeTrailsCommand({}))).trailList).toEqual([]);
  });
});

describe("the event history", () => {
  it("records S3's KMS calls with the requester's role session, invokedBy S3 and the object's ARN, and denials with their error", async () => {
    let now = Date.now();
    const env = setup({ profile: "instant", clock: () => new Date(now) });
    const trust = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${env.acct}:root` }, Action: "sts:AssumeRole" },
      ],
    });
    const role = (
      await env.iam.send(new CreateRoleCommand({ RoleName: "uploader", AssumeRolePolicyDocument: trust }))
    ).Role!;
    await env.iam.send(
      new PutRolePolicyCommand({
        RoleName: "uploader",
        PolicyName: "s3",
        PolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: ["s3:PutObject", "kms:GenerateDataKey"], Resource: "*" }],
        }),
      }),
    );
    const key = (await env.kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await env.s3.send(new CreateBucketCommand({ Bucket: "data-bucket" }));
    const session = (
      await env.sts.send(new AssumeRoleCommand({ RoleArn: role.Arn, RoleSessionName: "uploader-session" }))
    ).Credentials!;
    const asRole = {
      ...env.sim.clientConfig({
        credentials: {
          accessKeyId: session.AccessKeyId!,
          secretAccessKey: session.SecretAccessKey!,
          sessionToken: session.SessionToken!,
        },
      }),
      maxAttempts: 1,
    };
    await new S3Client({ ...asRole, forcePathStyle: true }).send(
      new PutObjectCommand({
        Bucket: "data-bucket",
        Key: "report.txt",
        Body: "x",
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: key.KeyId,
      }),
    );
    const { CiphertextBlob } = await env.kms.send(
      new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from("p") }),
    );
    await failure(new KMSClient(asRole).send(new DecryptCommand({ CiphertextBlob })));

    const lookup = async (name: string) =>
      (
        await env.trail.send(
          new LookupEventsCommand({
            LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: name }],
          }),
        )
      ).Events ?? [];
    const [gdk] = await lookup("GenerateDataKey");
    expect(gdk).toMatchObject({
      EventName: "GenerateDataKey",
      EventSource: "kms.amazonaws.com",
      ReadOnly: "true",
      Username: "uploader-session",
    });
    expect(gdk!.Resources).toEqual([{ ResourceType: "AWS::KMS::Key", ResourceName: key.Arn }]);
    const record = JSON.parse(gdk!.CloudTrailEvent!);
    expect(record).toMatchObject({
      eventVersion: "1.11",
      eventSource: "kms.amazonaws.com",
      eventName: "GenerateDataKey",
      awsRegion: "us-east-1",
      sourceIPAddress: "s3.amazonaws.com",
      userAgent: "s3.amazonaws.com",
      requestParameters: {
        keyId: key.KeyId,
        keySpec: "AES_256",
        encryptionContext: { "aws:s3:arn": "arn:aws:s3:::data-bucket/report.txt" },
      },
      responseElements: null,
      readOnly: true,
      eventType: "AwsApiCall",
      managementEvent: true,
      eventCategory: "Management",
      recipientAccountId: env.acct,
      resources: [{ accountId: env.acct, type: "AWS::KMS::Key", ARN: key.Arn }],
      userIdentity: {
        type: "AssumedRole",
        arn: `arn:aws:sts::${env.acct}:assumed-role/uploader/uploader-session`,
        invokedBy: "s3.amazonaws.com",
        sessionContext: { sessionIssuer: { type: "Role", arn: role.Arn, userName: "uploader" } },
      },
    });
    const denied = (await lookup("Decrypt")).map((e) => JSON.parse(e.CloudTrailEvent!));
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ errorCode: "AccessDenied" });
    // Unconfirmed whether AWS names the key of a ciphertext it refused: the simulator does not.
    expect(denied[0].resources).toBeUndefined();
    expect(denied[0].errorMessage).toContain("is not authorized to perform: kms:Decrypt");
    // Credentials and data never reach the history (read here as a trail's log file holds it).
    const everything = env.sim.account.cloudtrail.events.events
      .map((e) => env.sim.account.cloudtrail.events.json(e))
      .join("\n");
    expect(everything).not.toContain(session.SecretAccessKey!);
    expect(everything).not.toContain(session.SessionToken!);
    expect(everything).not.toContain(Buffer.from(CiphertextBlob!).toString("base64"));
    // S3's object calls are data events: not in the event history.
    now += 1000; // LookupEvents allows 2 requests a second
    expect(await lookup("PutObject")).toEqual([]);
  });

  it("looks up by one attribute, pages newest first, and refuses what AWS refuses", async () => {
    let now = Date.now();
    const env = setup({ profile: "instant", clock: () => new Date(now) });
    const key = (await env.kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    for (let i = 0; i < 5; i++)
      await env.kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from(`${i}`) }));
    const byArn = await env.trail.send(
      new LookupEventsCommand({
        LookupAttributes: [{ AttributeKey: "ResourceName", AttributeValue: key.Arn }],
      }),
    );
    expect(byArn.Events?.map((e) => e.EventName)).toEqual([
      "Encrypt",
      "Encrypt",
      "Encrypt",
      "Encrypt",
      "Encrypt",
      "CreateKey",
    ]);
    now += 1000; // LookupEvents allows 2 requests a second
    const page1 = await env.trail.send(
      new LookupEventsCommand({
        LookupAttributes: [{ AttributeKey: "ResourceName", AttributeValue: key.KeyId }],
        MaxResults: 4,
      }),
    );
    expect(page1.Events).toHaveLength(4);
    const page2 = await env.trail.send(
      new LookupEventsCommand({
        LookupAttributes: [{ AttributeKey: "ResourceName", AttributeValue: key.KeyId }],
        MaxResults: 4,
        NextToken: page1.NextToken,
      }),
    );
    expect(page2.Events?.map((e) => e.EventName)).toEqual(["Encrypt", "CreateKey"]);
    expect(page2.NextToken).toBeUndefined();
    // A third request within the same second is throttled.
    expect(await failure(env.trail.send(new LookupEventsCommand({})))).toEqual({
      name: "ThrottlingException",
      status: 400,
      message: "Rate exceeded",
    });
  });

  it.each([
    [{ MaxResults: 51 }, "InvalidMaxResultsException"],
    [{ NextToken: "garbage" }, "InvalidNextTokenException"],
    [{ StartTime: new Date(2026, 1, 2), EndTime: new Date(2026, 1, 1) }, "InvalidTimeRangeException"],
    [
      {
        LookupAttributes: [
          { AttributeKey: "EventName" as const, AttributeValue: "Encrypt" },
          { AttributeKey: "ReadOnly" as const, AttributeValue: "true" },
        ],
      },
      "InvalidLookupAttributesException",
    ],
  ])("refuses %j with %s", async (input, name) => {
    const env = setup();
    expect((await failure(env.trail.send(new LookupEventsCommand(input)))).name).toBe(name);
  });

  it("takes JSON nulls as absent members, as AWS's JSON services do", async () => {
    const env = setup({ profile: "instant" });
    await env.kms.send(new CreateKeyCommand({}));
    const admin = env.sim.account.iam.findAccessKey(env.sim.credentials().accessKeyId)!.principal;
    const ctx = {
      accountId: env.acct,
      region: "us-east-1",
      requestId: "req",
      principal: admin,
      now: env.sim.account.now(),
      sourceIp: "192.0.2.10",
      userAgent: "test",
      secureTransport: true,
    };
    const out = env.sim.account.cloudtrail.LookupEvents(
      { NextToken: null, MaxResults: null, LookupAttributes: null },
      ctx,
    );
    expect(out.Events.map((e) => e.EventName)).toContain("CreateKey");
    expect(out.NextToken).toBeUndefined();
  });

  it("shows an event only after the lookup delay, on the account's clock", async () => {
    // Near the host's time: SDK clients sign with it, and the account refuses a skewed signature.
    let now = Date.now();
    const env = setup({ profile: PROFILES.realistic!, clock: () => new Date(now) });
    await env.kms.send(new CreateKeyCommand({ Description: "late" }));
    const creates = async () =>
      (
        await env.trail.send(
          new LookupEventsCommand({
            LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "CreateKey" }],
          }),
        )
      ).Events ?? [];
    expect(await creates()).toEqual([]);
    now += PROFILES.realistic!.trailLookupDelayMs - 2000;
    expect(await creates()).toEqual([]);
    now += 3000;
    expect(await creates()).toHaveLength(1);
  });

  it("keeps the history across a restart of a persistent account", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kmslab-trail-"));
    const first = Simulator.open(dir, { profile: "instant" });
    await new KMSClient(first.clientConfig()).send(new CreateKeyCommand({ Description: "before restart" }));
    first.close();
    const second = Simulator.open(dir, { profile: "instant" });
    const found = await new CloudTrailClient(second.clientConfig()).send(
      new LookupEventsCommand({
        LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "CreateKey" }],
      }),
    );
    second.close();
    expect(found.Events).toHaveLength(1);
    expect(JSON.parse(found.Events![0]!.CloudTrailEvent!).requestParameters.description).toBe(
      "before restart",
    );
  });
});

describe("log file delivery", () => {
  it("delivers gzipped records at AWS's key layout while the trail logs, and none from before", async () => {
    const env = setup({ profile: "instant" });
    await env.kms.send(new CreateKeyCommand({ Description: "before logging" }));
    await loggingTrail(env);
    await env.kms.send(new CreateKeyCommand({ Description: "while logging" }));
    const listed = await env.s3.send(new ListObjectsV2Command({ Bucket: LOGS }));
    for (const o of listed.Contents ?? [])
      expect(o.Key).toMatch(
        new RegExp(
          `^AWSLogs/${env.acct}/CloudTrail/us-east-1/\\d{4}/\\d{2}/\\d{2}/${env.acct}_CloudTrail_us-east-1_\\d{8}T\\d{4}Z_[A-Za-z0-9]{16}\\.json\\.gz$`,
        ),
      );
    const records = await delivered(env);
    const descriptions = records
      .filter((r) => r.eventName === "CreateKey")
      .map((r) => (r.requestParameters as { description: string }).description);
    expect(descriptions).toEqual(["while logging"]);
    expect(
      (await env.trail.send(new GetTrailStatusCommand({ Name: "lab-trail" }))).LatestDeliveryTime,
    ).toBeInstanceOf(Date);
  });

  it("delivers a file only when the interval has passed, on the account's clock", async () => {
    let now = Date.now();
    const env = setup({ profile: PROFILES.realistic!, clock: () => new Date(now) });
    await loggingTrail(env);
    const files = async () => (await env.s3.send(new ListObjectsV2Command({ Bucket: LOGS }))).KeyCount ?? 0;
    expect(await files()).toBe(0);
    now += PROFILES.realistic!.trailDeliveryIntervalMs;
    expect(await files()).toBe(1);
  });

  it("reports a delivery the bucket policy refuses in the trail's status, and retries the records", async () => {
    const env = setup({ profile: "instant" });
    await loggingTrail(env);
    await env.s3.send(new DeleteBucketPolicyCommand({ Bucket: LOGS }));
    await env.kms.send(new CreateKeyCommand({ Description: "undelivered" }));
    const status = await env.trail.send(new GetTrailStatusCommand({ Name: "lab-trail" }));
    expect(status.LatestDeliveryError).toBe("AccessDenied");
    await env.s3.send(new PutBucketPolicyCommand({ Bucket: LOGS, Policy: trailPolicy(env.acct) }));
    const records = await delivered(env);
    expect(
      records.some((r) => (r.requestParameters as { description?: string })?.description === "undelivered"),
    ).toBe(true);
    expect(
      (await env.trail.send(new GetTrailStatusCommand({ Name: "lab-trail" }))).LatestDeliveryError,
    ).toBeUndefined();
  });

  it("delivers S3 data events only to a trail whose selectors ask for them", async () => {
    const env = setup({ profile: "instant" });
    await loggingTrail(env);
    await env.s3.send(new CreateBucketCommand({ Bucket: "data-bucket" }));
    await env.s3.send(new PutObjectCommand({ Bucket: "data-bucket", Key: "a.txt", Body: "a" }));
    await env.trail.send(
      new PutEventSelectorsCommand({
        TrailName: "lab-trail",
        EventSelectors: [
          {
            ReadWriteType: "All",
            IncludeManagementEvents: true,
            DataResources: [{ Type: "AWS::S3::Object", Values: ["arn:aws:s3:::data-bucket/"] }],
          },
        ],
      }),
    );
    await env.s3.send(new PutObjectCommand({ Bucket: "data-bucket", Key: "b.txt", Body: "b" }));
    const puts = (await delivered(env)).filter(
      (r) => r.eventName === "PutObject" && r.eventCategory === "Data",
    );
    expect(puts.map((r) => (r.requestParameters as { key: string }).key)).toEqual(["b.txt"]);
  });
});
