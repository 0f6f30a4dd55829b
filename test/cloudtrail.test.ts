import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import {
  AddTagsCommand,
  CloudTrailClient,
  CreateTrailCommand,
  DescribeTrailsCommand,
  GetEventSelectorsCommand,
  GetTrailCommand,
  GetTrailStatusCommand,
  ListTagsCommand,
  type LookupAttributeKey,
  LookupEventsCommand,
  PutEventSelectorsCommand,
  RemoveTagsCommand,
  StartLoggingCommand,
  StopLoggingCommand,
} from "@aws-sdk/client-cloudtrail";
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";
import { CreateKeyCommand, DescribeKeyCommand, KMSClient, ListAliasesCommand } from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
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
 * CloudTrail through the real SDK clients, beyond test/trail.test.ts: who may call CloudTrail,
 * trails named by ARN, tags, selectors (advanced, excluded sources, read/write), every lookup
 * attribute, time ranges and Regions, the identities and elements records carry, what stopping
 * and a deleted bucket do to delivery, and the history file after a crash and after 90 days.
 */
const LOGS = "ct-logs-bucket";
const DAY = 24 * 3600 * 1000;

function trailPolicy(acct: string, trail: string, prefix = "") {
  const trailArn = `arn:aws:cloudtrail:us-east-1:${acct}:trail/${trail}`;
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Service: "cloudtrail.amazonaws.com" },
        Action: "s3:GetBucketAcl",
        Resource: `arn:aws:s3:::${LOGS}`,
        Condition: { StringEquals: { "aws:SourceArn": trailArn } },
      },
      {
        Effect: "Allow",
        Principal: { Service: "cloudtrail.amazonaws.com" },
        Action: "s3:PutObject",
        Resource: `arn:aws:s3:::${LOGS}/${prefix ? `${prefix}/` : ""}AWSLogs/${acct}/*`,
        Condition: {
          StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trailArn },
        },
      },
    ],
  });
}

/**
 * An account on a clock the test moves. SDK clients sign with the host's time and the account
 * refuses a signature more than 5 minutes off its own clock, so every client made through `client`
 * gets the moved clock as its `systemClockOffset` (what the SDK itself sets after a skew error).
 */
function setup(options: { dir?: string; start?: number; deliveryIntervalMs?: number } = {}) {
  const clock = { now: options.start ?? Date.now() };
  const profile = { ...PROFILES.instant!, trailDeliveryIntervalMs: options.deliveryIntervalMs ?? 0 };
  const sim = options.dir
    ? Simulator.open(options.dir, { profile, clock: () => new Date(clock.now) })
    : Simulator.inMemory({ profile, clock: () => new Date(clock.now) });
  const acct = sim.account.accountId;
  const clients: { config: { systemClockOffset?: number } }[] = [];
  const config = sim.clientConfig({ maxAttempts: 1 });
  function client<C extends { config: { systemClockOffset?: number } }, A extends unknown[]>(
    Client: new (...args: A) => C,
    extra: Record<string, unknown> = {},
  ): C {
    const c = new Client(...([{ ...config, ...extra }] as unknown as A));
    c.config.systemClockOffset = clock.now - Date.now();
    clients.push(c);
    return c;
  }
  const trail = client(CloudTrailClient);
  const env = {
    sim,
    acct,
    clock,
    client,
    trail,
    s3: client(S3Client, { forcePathStyle: true }),
    kms: client(KMSClient),
    iam: client(IAMClient),
    sts: client(STSClient),
    /** Moves the account's clock (and the clients' with it). */
    advance(ms: number) {
      clock.now += ms;
      for (const c of clients) c.config.systemClockOffset = clock.now - Date.now();
    },
    /** LookupEvents a second later than the last (CloudTrail allows 2 a second). */
    async lookup(input: ConstructorParameters<typeof LookupEventsCommand>[0] = {}) {
      env.advance(1000);
      return trail.send(new LookupEventsCommand(input));
    },
  };
  return env;
}

type Env = ReturnType<typeof setup>;

async function loggingTrail(env: Env, name = "ct-trail", prefix?: string) {
  await env.s3.send(new CreateBucketCommand({ Bucket: LOGS }));
  await env.s3.send(
    new PutBucketPolicyCommand({ Bucket: LOGS, Policy: trailPolicy(env.acct, name, prefix) }),
  );
  const created = await env.trail.send(
    new CreateTrailCommand({ Name: name, S3BucketName: LOGS, S3KeyPrefix: prefix }),
  );
  await env.trail.send(new StartLoggingCommand({ Name: name }));
  return created.TrailARN!;
}

async function logKeys(env: Env): Promise<string[]> {
  return ((await env.s3.send(new ListObjectsV2Command({ Bucket: LOGS }))).Contents ?? []).map((o) => o.Key!);
}

// biome-ignore lint/suspicious/noExplicitAny: parsed CloudTrail records, read field by field
type LogRecord = Record<string, any>;

/** Every record of every delivered log file, in file order. */
async function delivered(env: Env): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  for (const key of await logKeys(env)) {
    const body = await (
      await env.s3.send(new GetObjectCommand({ Bucket: LOGS, Key: key }))
    ).Body!.transformToByteArray();
    records.push(...JSON.parse(gunzipSync(body).toString()).Records);
  }
  return records;
}

/** A new IAM user with an access key and the given identity policy (none when undefined). */
async function user(env: Env, name: string, statement?: object) {
  await env.iam.send(new CreateUserCommand({ UserName: name }));
  if (statement)
    await env.iam.send(
      new PutUserPolicyCommand({
        UserName: name,
        PolicyName: "p",
        PolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: [statement] }),
      }),
    );
  const key = (await env.iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  const credentials = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
  return { credentials };
}

describe("CloudTrail's own API", () => {
  it("is authorised by the caller's IAM policies", async () => {
    const env = setup();
    await loggingTrail(env);
    const nobody = await user(env, "nobody");
    const denied = await failure(
      env.client(CloudTrailClient, nobody).send(new GetTrailStatusCommand({ Name: "ct-trail" })),
    );
    expect(denied).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: arn:aws:iam::${env.acct}:user/nobody is not authorized to perform: cloudtrail:GetTrailStatus on resource: arn:aws:cloudtrail:us-east-1:${env.acct}:trail/ct-trail because no identity-based policy allows the cloudtrail:GetTrailStatus action`,
    });
    const reader = await user(env, "reader", {
      Effect: "Allow",
      Action: ["cloudtrail:GetTrailStatus", "cloudtrail:LookupEvents"],
      Resource: "*",
    });
    const readerTrail = env.client(CloudTrailClient, reader);
    expect((await readerTrail.send(new GetTrailStatusCommand({ Name: "ct-trail" }))).IsLogging).toBe(true);
    const stop = await failure(readerTrail.send(new StopLoggingCommand({ Name: "ct-trail" })));
    expect([stop.name, stop.status]).toEqual(["AccessDeniedException", 400]);
    expect(stop.message).toContain("cloudtrail:StopLogging");
    // The denied call is itself an event, with the error CloudTrail logs for a denial.
    const [event] = (
      await env.lookup({ LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "StopLogging" }] })
    ).Events!;
    expect(JSON.parse(event!.CloudTrailEvent!)).toMatchObject({
      eventSource: "cloudtrail.amazonaws.com",
      errorCode: "AccessDenied",
      userIdentity: { type: "IAMUser", userName: "reader" },
    });
  });

  it("authorises ListTags on each trail's ARN, as the Service Authorization Reference scopes it", async () => {
    const env = setup();
    await loggingTrail(env);
    const arn = `arn:aws:cloudtrail:us-east-1:${env.acct}:trail/ct-trail`;
    const tagger = await user(env, "tagger", {
      Effect: "Allow",
      Action: "cloudtrail:ListTags",
      Resource: arn,
    });
    const listed = await env
      .client(CloudTrailClient, tagger)
      .send(new ListTagsCommand({ ResourceIdList: [arn] }));
    expect(listed.ResourceTagList?.[0]?.ResourceId).toBe(arn);
    const other = await user(env, "other", {
      Effect: "Allow",
      Action: "cloudtrail:ListTags",
      Resource: `arn:aws:cloudtrail:us-east-1:${env.acct}:trail/another`,
    });
    const denied = await failure(
      env.client(CloudTrailClient, other).send(new ListTagsCommand({ ResourceIdList: [arn] })),
    );
    expect(denied.message).toContain(`cloudtrail:ListTags on resource: ${arn}`);
  });

  it("takes a trail's name or its ARN, and names unknown trails in AWS's words", async () => {
    const env = setup();
    const arn = await loggingTrail(env);
    expect((await env.trail.send(new GetTrailCommand({ Name: arn }))).Trail?.Name).toBe("ct-trail");
    await env.trail.send(new StopLoggingCommand({ Name: arn }));
    expect((await env.trail.send(new GetTrailStatusCommand({ Name: arn }))).IsLogging).toBe(false);
    await env.trail.send(new StartLoggingCommand({ Name: arn }));
    expect((await env.trail.send(new GetTrailStatusCommand({ Name: "ct-trail" }))).IsLogging).toBe(true);
    expect(
      (await env.trail.send(new DescribeTrailsCommand({ trailNameList: [arn] }))).trailList?.map(
        (t) => t.TrailARN,
      ),
    ).toEqual([arn]);
    const missing = `arn:aws:cloudtrail:us-east-1:${env.acct}:trail/missing`;
    expect(await failure(env.trail.send(new GetTrailStatusCommand({ Name: missing })))).toEqual({
      name: "TrailNotFoundException",
      status: 400,
      message: `Unknown trail: ${missing} for the user: ${env.acct}`,
    });
    // A trail is found by name only in its own Region.
    const west = env.client(CloudTrailClient, { region: "eu-west-1" });
    expect((await failure(west.send(new GetTrailCommand({ Name: "ct-trail" })))).name).toBe(
      "TrailNotFoundException",
    );
  });

  it("adds, lists and removes tags", async () => {
    const env = setup();
    const arn = await loggingTrail(env);
    await env.trail.send(
      new AddTagsCommand({
        ResourceId: arn,
        TagsList: [
          { Key: "team", Value: "sec" },
          { Key: "env", Value: "lab" },
        ],
      }),
    );
    await env.trail.send(new AddTagsCommand({ ResourceId: arn, TagsList: [{ Key: "env", Value: "prod" }] }));
    const listed = await env.trail.send(new ListTagsCommand({ ResourceIdList: [arn] }));
    expect(listed.ResourceTagList).toEqual([
      {
        ResourceId: arn,
        TagsList: [
          { Key: "team", Value: "sec" },
          { Key: "env", Value: "prod" },
        ],
      },
    ]);
    await env.trail.send(new RemoveTagsCommand({ ResourceId: arn, TagsList: [{ Key: "team" }] }));
    expect(
      (await env.trail.send(new ListTagsCommand({ ResourceIdList: [arn] }))).ResourceTagList?.[0]?.TagsList,
    ).toEqual([{ Key: "env", Value: "prod" }]);
    const missing = `arn:aws:cloudtrail:us-east-1:${env.acct}:trail/missing`;
    expect(
      (await failure(env.trail.send(new AddTagsCommand({ ResourceId: missing, TagsList: [{ Key: "a" }] }))))
        .name,
    ).toBe("TrailNotFoundException");
  });

  it("keeps basic or advanced event selectors, never both", async () => {
    const env = setup();
    await loggingTrail(env);
    const both = await failure(
      env.trail.send(
        new PutEventSelectorsCommand({
          TrailName: "ct-trail",
          EventSelectors: [{ ReadWriteType: "All" }],
          AdvancedEventSelectors: [{ FieldSelectors: [{ Field: "eventCategory", Equals: ["Management"] }] }],
        }),
      ),
    );
    expect([both.name, both.status]).toEqual(["InvalidParameterCombinationException", 400]);
    const advanced = [
      { Name: "management", FieldSelectors: [{ Field: "eventCategory", Equals: ["Management"] }] },
      {
        Name: "objects",
        FieldSelectors: [
          { Field: "eventCategory", Equals: ["Data"] },
          { Field: "resources.type", Equals: ["AWS::S3::Object"] },
        ],
      },
    ];
    await env.trail.send(
      new PutEventSelectorsCommand({ TrailName: "ct-trail", AdvancedEventSelectors: advanced }),
    );
    const got = await env.trail.send(new GetEventSelectorsCommand({ TrailName: "ct-trail" }));
    expect(got.AdvancedEventSelectors).toEqual(advanced);
    expect(got.EventSelectors).toBeUndefined();
    expect(
      (await env.trail.send(new GetTrailCommand({ Name: "ct-trail" }))).Trail?.HasCustomEventSelectors,
    ).toBe(true);
  });
});

describe("what a trail delivers", () => {
  it("follows advanced selectors: S3 object calls as data events, never CloudTrail's own writes", async () => {
    const env = setup();
    await loggingTrail(env);
    await env.trail.send(
      new PutEventSelectorsCommand({
        TrailName: "ct-trail",
        AdvancedEventSelectors: [
          {
            FieldSelectors: [
              { Field: "eventCategory", Equals: ["Data"] },
              { Field: "resources.type", Equals: ["AWS::S3::Object"] },
              { Field: "resources.ARN", StartsWith: ["arn:aws:s3:::data-bucket/in/"] },
            ],
          },
        ],
      }),
    );
    await env.s3.send(new CreateBucketCommand({ Bucket: "data-bucket" }));
    await env.s3.send(new PutObjectCommand({ Bucket: "data-bucket", Key: "in/a.txt", Body: "a" }));
    await env.s3.send(new PutObjectCommand({ Bucket: "data-bucket", Key: "out/b.txt", Body: "b" }));
    await env.s3.send(new DeleteObjectCommand({ Bucket: "data-bucket", Key: "in/a.txt" }));
    // (StartLogging went out before the selectors changed: selectors apply when a file is written.)
    const records = (await delivered(env)).filter((r) => r.eventCategory === "Data");
    expect(records.map((r) => [r.eventName, r.requestParameters.key]).sort()).toEqual([
      ["DeleteObject", "in/a.txt"],
      ["PutObject", "in/a.txt"],
    ]);
    expect(records.find((r) => r.eventName === "PutObject")).toMatchObject({
      eventSource: "s3.amazonaws.com",
      eventCategory: "Data",
      managementEvent: false,
      readOnly: false,
      requestParameters: { bucketName: "data-bucket", key: "in/a.txt" },
      responseElements: null,
      resources: [
        { type: "AWS::S3::Object", ARN: "arn:aws:s3:::data-bucket/in/a.txt" },
        { accountId: env.acct, type: "AWS::S3::Bucket", ARN: "arn:aws:s3:::data-bucket" },
      ],
    });
    // No record anywhere of the trail's own log-file writes.
    const history = env.sim.account.cloudtrail.events.events;
    expect(history.some((e) => e.username === "cloudtrail.amazonaws.com")).toBe(false);
  });

  it("leaves out excluded event sources and, with ReadWriteType WriteOnly, read-only calls", async () => {
    const env = setup();
    await loggingTrail(env);
    await env.trail.send(
      new PutEventSelectorsCommand({
        TrailName: "ct-trail",
        EventSelectors: [
          {
            ReadWriteType: "WriteOnly",
            IncludeManagementEvents: true,
            ExcludeManagementEventSources: ["kms.amazonaws.com"],
          },
        ],
      }),
    );
    const key = (await env.kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await env.kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
    await env.s3.send(new CreateBucketCommand({ Bucket: "written-bucket" }));
    await env.s3.send(new ListObjectsV2Command({ Bucket: "written-bucket" }));
    const names = (await delivered(env)).map((r) => r.eventName);
    expect(names).toContain("CreateBucket");
    expect(names).not.toContain("CreateKey");
    expect(names).not.toContain("DescribeKey");
    // ListObjectsV2 (read, and a data event) and the GetTrailStatus-like reads are not written.
    expect(names.every((n) => !n.startsWith("List") && !n.startsWith("Get"))).toBe(true);
  });

  it("writes under the trail's key prefix", async () => {
    const env = setup();
    await loggingTrail(env, "ct-trail", "audit/lab");
    await env.kms.send(new CreateKeyCommand({}));
    const keys = await logKeys(env);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys)
      expect(key.startsWith(`audit/lab/AWSLogs/${env.acct}/CloudTrail/us-east-1/`)).toBe(true);
  });

  it("delivers what was pending when logging stopped, once, and nothing made while stopped", async () => {
    // A realistic interval on the moved clock: the last file comes after StopLogging.
    const env = setup({ deliveryIntervalMs: 300_000 });
    await loggingTrail(env);
    await env.kms.send(new CreateKeyCommand({ Description: "before stop" }));
    await env.trail.send(new StopLoggingCommand({ Name: "ct-trail" }));
    await env.kms.send(new CreateKeyCommand({ Description: "while stopped" }));
    expect(await logKeys(env)).toEqual([]);
    env.advance(300_000);
    const first = await delivered(env);
    const descriptions = first
      .filter((r) => r.eventName === "CreateKey")
      .map((r) => r.requestParameters.description);
    expect(descriptions).toEqual(["before stop"]);
    expect(first.some((r) => r.eventName === "StopLogging")).toBe(true);
    env.advance(600_000);
    await env.kms.send(new CreateKeyCommand({ Description: "later" }));
    env.advance(600_000);
    expect(await logKeys(env)).toHaveLength(1);
  });

  it("reports NoSuchBucket when the bucket is gone", async () => {
    const env = setup({ deliveryIntervalMs: 60_000 });
    await loggingTrail(env);
    env.advance(60_000);
    await env.kms.send(new CreateKeyCommand({}));
    env.advance(60_000);
    // The first file has landed; empty the bucket and remove it.
    for (const key of await logKeys(env))
      await env.s3.send(new DeleteObjectCommand({ Bucket: LOGS, Key: key }));
    await env.s3.send(new DeleteBucketCommand({ Bucket: LOGS }));
    env.advance(60_000);
    const status = await env.trail.send(new GetTrailStatusCommand({ Name: "ct-trail" }));
    expect(status.LatestDeliveryError).toBe("NoSuchBucket");
    expect(status.LatestDeliveryAttemptTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(status.LatestDeliveryTime!.getTime()).toBeLessThan(env.clock.now - 60_000 + 1);
  });
});

describe("event records and lookups", () => {
  it("finds events by each lookup attribute", async () => {
    const env = setup();
    const alice = await user(env, "alice", { Effect: "Allow", Action: "kms:*", Resource: "*" });
    const key = (await env.client(KMSClient, alice).send(new CreateKeyCommand({ Description: "a" })))
      .KeyMetadata!;
    await env.kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
    const by = async (AttributeKey: LookupAttributeKey, AttributeValue: string) =>
      ((await env.lookup({ LookupAttributes: [{ AttributeKey, AttributeValue }] })).Events ?? []).map(
        (e) => e.EventName,
      );
    expect(await by("Username", "alice")).toEqual(["CreateKey"]);
    expect(await by("AccessKeyId", alice.credentials.accessKeyId)).toEqual(["CreateKey"]);
    expect(await by("EventSource", "kms.amazonaws.com")).toEqual(["DescribeKey", "CreateKey"]);
    expect(await by("ResourceType", "AWS::KMS::Key")).toEqual(["DescribeKey", "CreateKey"]);
    expect(await by("ResourceName", key.KeyId!)).toEqual(["DescribeKey", "CreateKey"]);
    const reads = await by("ReadOnly", "true");
    expect(reads).toContain("DescribeKey");
    expect(reads).not.toContain("CreateKey");
    const [created] = (
      await env.lookup({ LookupAttributes: [{ AttributeKey: "Username", AttributeValue: "alice" }] })
    ).Events!;
    expect(await by("EventId", created!.EventId!)).toEqual(["CreateKey"]);
    // The id index is built on the first lookup by id; events recorded after it are found by id too.
    await env.kms.send(new ListAliasesCommand({}));
    const [listed] = (
      await env.lookup({ LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "ListAliases" }] })
    ).Events!;
    expect(await by("EventId", listed!.EventId!)).toEqual(["ListAliases"]);
    expect(created).toMatchObject({
      EventSource: "kms.amazonaws.com",
      ReadOnly: "false",
      Username: "alice",
      AccessKeyId: alice.credentials.accessKeyId,
      Resources: [{ ResourceType: "AWS::KMS::Key", ResourceName: key.Arn }],
    });
    const record = JSON.parse(created!.CloudTrailEvent!);
    expect(record.userIdentity).toEqual({
      type: "IAMUser",
      principalId: expect.stringMatching(/^AIDA/),
      arn: `arn:aws:iam::${env.acct}:user/alice`,
      accountId: env.acct,
      accessKeyId: alice.credentials.accessKeyId,
      userName: "alice",
    });
    expect(record.responseElements.keyMetadata).toMatchObject({ keyId: key.KeyId, arn: key.Arn });
    expect(record.eventID).toBe(created!.EventId);
    expect(record.eventTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(await by("Username", "nobody-at-all")).toEqual([]);
  });

  it("refuses unknown attribute keys, MaxResults 0, another query's NextToken and a StartTime after the EndTime", async () => {
    const env = setup();
    const bad = await failure(
      env.lookup({
        LookupAttributes: [{ AttributeKey: "Color" as LookupAttributeKey, AttributeValue: "red" }],
      }),
    );
    expect([bad.name, bad.status]).toEqual(["InvalidLookupAttributesException", 400]);
    expect(await failure(env.lookup({ MaxResults: 0 }))).toEqual({
      name: "InvalidMaxResultsException",
      status: 400,
      message: "Value for parameter MaxResults is not valid. MaxResults must be a number between 1 and 50.",
    });
    // A token from one query does not page another.
    for (let i = 0; i < 3; i++) await env.kms.send(new CreateKeyCommand({}));
    const page = await env.lookup({ MaxResults: 1 });
    expect(page.NextToken).toBeDefined();
    expect((await env.lookup({ MaxResults: 1, NextToken: page.NextToken })).Events).toHaveLength(1);
    const other = await failure(
      env.lookup({
        MaxResults: 1,
        NextToken: page.NextToken,
        LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "CreateKey" }],
      }),
    );
    expect([other.name, other.status]).toEqual(["InvalidNextTokenException", 400]);
    const range = await failure(
      env.lookup({ StartTime: new Date(env.clock.now), EndTime: new Date(env.clock.now - DAY) }),
    );
    expect([range.name, range.status]).toEqual(["InvalidTimeRangeException", 400]);
  });

  it("keeps to the time range, the caller's Region and its own rate limit per Region", async () => {
    const env = setup();
    const t0 = env.clock.now;
    await env.kms.send(new CreateKeyCommand({ Description: "early" }));
    env.advance(3600_000);
    await env.kms.send(new CreateKeyCommand({ Description: "late" }));
    const west = env.client(KMSClient, { region: "eu-west-1" });
    await west.send(new CreateKeyCommand({ Description: "west" }));
    const creates = {
      LookupAttributes: [{ AttributeKey: "EventName" as const, AttributeValue: "CreateKey" }],
    };
    const desc = (events: { CloudTrailEvent?: string }[] = []) =>
      events.map((e) => JSON.parse(e.CloudTrailEvent!).requestParameters.description);
    expect(desc((await env.lookup(creates)).Events)).toEqual(["late", "early"]);
    expect(desc((await env.lookup({ ...creates, StartTime: new Date(t0 + 60_000) })).Events)).toEqual([
      "late",
    ]);
    expect(desc((await env.lookup({ ...creates, EndTime: new Date(t0 + 60_000) })).Events)).toEqual([
      "early",
    ]);
    const westTrail = env.client(CloudTrailClient, { region: "eu-west-1" });
    env.advance(1000);
    expect(desc((await westTrail.send(new LookupEventsCommand(creates))).Events)).toEqual(["west"]);
    // Two in a second per Region: the third in us-east-1 is refused, eu-west-1 still answers.
    await env.trail.send(new LookupEventsCommand({ MaxResults: 1 }));
    await env.trail.send(new LookupEventsCommand({ MaxResults: 1 }));
    expect((await failure(env.trail.send(new LookupEventsCommand({ MaxResults: 1 })))).name).toBe(
      "ThrottlingException",
    );
    await westTrail.send(new LookupEventsCommand({ MaxResults: 1 }));
  });

  it("logs IAM and STS in us-east-1, AssumeRole without its secrets, a role session as AssumedRole", async () => {
    const env = setup();
    const trust = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${env.acct}:root` }, Action: "sts:AssumeRole" },
      ],
    });
    const role = (
      await env.iam.send(new CreateRoleCommand({ RoleName: "auditor", AssumeRolePolicyDocument: trust }))
    ).Role!;
    const westSts = env.client(STSClient, { region: "eu-west-1" });
    const session = (
      await westSts.send(new AssumeRoleCommand({ RoleArn: role.Arn, RoleSessionName: "audit-1" }))
    ).Credentials!;
    const [assumed] = (
      await env.lookup({ LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "AssumeRole" }] })
    ).Events!;
    const record = JSON.parse(assumed!.CloudTrailEvent!);
    expect(record).toMatchObject({
      eventSource: "sts.amazonaws.com",
      awsRegion: "us-east-1",
      requestParameters: { roleArn: role.Arn, roleSessionName: "audit-1" },
      responseElements: { credentials: { accessKeyId: session.AccessKeyId } },
      resources: [{ type: "AWS::IAM::Role", ARN: role.Arn }],
    });
    expect(record.responseElements.credentials.expiration).toBeDefined();
    expect(assumed!.CloudTrailEvent).not.toContain(session.SecretAccessKey!);
    expect(assumed!.CloudTrailEvent).not.toContain(session.SessionToken!);
    // The role session is AssumedRole with its issuer, and its Username is the session name.
    const asRole = env.client(KMSClient, {
      credentials: {
        accessKeyId: session.AccessKeyId!,
        secretAccessKey: session.SecretAccessKey!,
        sessionToken: session.SessionToken!,
      },
    });
    await failure(asRole.send(new CreateKeyCommand({})));
    const [denied] = (
      await env.lookup({ LookupAttributes: [{ AttributeKey: "Username", AttributeValue: "audit-1" }] })
    ).Events!;
    const deniedRecord = JSON.parse(denied!.CloudTrailEvent!);
    expect(deniedRecord).toMatchObject({
      eventName: "CreateKey",
      errorCode: "AccessDenied",
      responseElements: null,
      userIdentity: {
        type: "AssumedRole",
        principalId: `${role.RoleId}:audit-1`,
        arn: `arn:aws:sts::${env.acct}:assumed-role/auditor/audit-1`,
        accessKeyId: session.AccessKeyId,
        sessionContext: {
          attributes: { mfaAuthenticated: "false" },
          sessionIssuer: {
            type: "Role",
            principalId: role.RoleId,
            arn: role.Arn,
            accountId: env.acct,
            userName: "auditor",
          },
        },
      },
    });
    expect(deniedRecord.userIdentity.sessionContext.attributes.creationDate).toMatch(/Z$/);
    expect(deniedRecord.errorMessage).toContain("kms:CreateKey");
  });
});

describe("the history on disk", () => {
  it("ignores a line a crash cut short, keeps the next one, and drops events after 90 days", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kmslab-ct-"));
    const history = join(dir, "cloudtrail");
    const start = Math.floor(Date.now() / DAY) * DAY + DAY / 2; // noon UTC: 1 s later is the same day
    const first = setup({ dir, start });
    await first.kms.send(new CreateKeyCommand({ Description: "old" }));
    first.advance(80 * DAY);
    await first.kms.send(new CreateKeyCommand({ Description: "recent" }));
    first.sim.close();
    // One file per UTC day at most: the two calls 80 days apart are in two files.
    const files = () =>
      readdirSync(history)
        .filter((n) => n.endsWith(".jsonl"))
        .sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
    const before = files();
    expect(before.length).toBeGreaterThanOrEqual(2);
    for (const f of before) expect(f).toMatch(/^events-\d+\.jsonl$/);
    // Nothing secret in the history files.
    const text = before.map((f) => readFileSync(join(history, f), "utf8")).join("");
    expect(text).not.toContain(first.sim.credentials().secretAccessKey);
    appendFileSync(join(history, before.at(-1)!), '{"seq":999999,"time":');

    // Reopened the same day: the next event goes into the file the crash left torn.
    const second = setup({ dir, start: start + 80 * DAY + 1000 });
    await second.kms.send(new CreateKeyCommand({ Description: "after crash" }));
    second.sim.close();
    expect(files()).toEqual(before);

    // 95 days on: "old" is past CloudTrail's 90 days (its file is gone), the others are not.
    const third = setup({ dir, start: start + 95 * DAY });
    expect(files()).not.toContain(before[0]);
    const found = await third.lookup({
      LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "CreateKey" }],
    });
    third.sim.close();
    expect(found.Events?.map((e) => JSON.parse(e.CloudTrailEvent!).requestParameters.description)).toEqual([
      "after crash",
      "recent",
    ]);
  });

  it("starts a new file after every file aged out, and reads records back from it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kmslab-ct-"));
    const start = Date.now();
    const first = setup({ dir, start });
    await first.kms.send(new CreateKeyCommand({ Description: "ancient" }));
    first.sim.close();
    const names = () => readdirSync(join(dir, "cloudtrail")).sort();
    const before = names();
    const second = setup({ dir, start: start + 200 * DAY });
    expect(names()).toEqual([]); // every file aged out
    await second.kms.send(new CreateKeyCommand({ Description: "fresh" }));
    await second.kms.send(new CreateKeyCommand({ Description: "fresher" }));
    second.sim.close();
    // A number is not reused (a reader holding an old position reads nothing wrong).
    expect(names().some((n) => before.includes(n))).toBe(false);
    const third = setup({ dir, start: start + 200 * DAY + 1000 });
    const found = await third.lookup({
      LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "CreateKey" }],
    });
    third.sim.close();
    expect(found.Events?.map((e) => JSON.parse(e.CloudTrailEvent!).requestParameters.description)).toEqual([
      "fresher",
      "fresh",
    ]);
  });

  it("reads the first file format (one JSON object a line, record inside)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kmslab-ct-"));
    const first = setup({ dir });
    first.sim.close();
    const time = Math.floor(first.clock.now / 1000) * 1000;
    const record = { eventVersion: "1.11", eventName: "CreateKey", requestParameters: { description: "v1" } };
    const line = {
      time,
      region: "us-east-1",
      category: "Management",
      eventName: "CreateKey",
      eventSource: "kms.amazonaws.com",
      readOnly: false,
      resources: [],
      seq: 1,
      eventId: "0d7e1b1e-1111-4222-8333-944455556666",
      json: JSON.stringify(record),
    };
    mkdirSync(join(dir, "cloudtrail"), { recursive: true });
    writeFileSync(join(dir, "cloudtrail", "events.jsonl"), `${JSON.stringify(line)}\n`);
    const second = setup({ dir, start: first.clock.now + 1000 });
    await second.kms.send(new CreateKeyCommand({ Description: "v2" }));
    const found = await second.lookup({
      LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "CreateKey" }],
    });
    second.sim.close();
    expect(found.Events?.map((e) => JSON.parse(e.CloudTrailEvent!).requestParameters.description)).toEqual([
      "v2",
      "v1",
    ]);
    expect(found.Events?.[1]?.EventId).toBe(line.eventId);
  });

  it("keeps trails and their delivery across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kmslab-ct-"));
    const first = setup({ dir });
    await loggingTrail(first);
    first.sim.close();
    const second = setup({ dir, start: first.clock.now + 1000 });
    expect((await second.trail.send(new GetTrailStatusCommand({ Name: "ct-trail" }))).IsLogging).toBe(true);
    await second.kms.send(new CreateKeyCommand({ Description: "after restart" }));
    const records = await delivered(second);
    second.sim.close();
    expect(
      records.filter((r) => r.eventName === "CreateKey").map((r) => r.requestParameters.description),
    ).toEqual(["after restart"]);
  });
});
