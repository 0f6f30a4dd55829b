import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  IAMClient,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteBucketEncryptionCommand,
  DeleteBucketPolicyCommand,
  DeleteBucketTaggingCommand,
  DeletePublicAccessBlockCommand,
  GetBucketAclCommand,
  GetBucketEncryptionCommand,
  GetBucketLocationCommand,
  GetBucketOwnershipControlsCommand,
  GetBucketPolicyCommand,
  GetBucketPolicyStatusCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  PutBucketAclCommand,
  PutBucketEncryptionCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketPolicyCommand,
  PutBucketTaggingCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import type { CallContext } from "../sim/core/service.js";
import type { Principal } from "../sim/core/types.js";
import { canonicalId, isPublicPolicy, s3Allowed } from "../sim/services/s3/access.js";
import { Simulator } from "../sim/simulator.js";
import { failure } from "./helpers/errors.js";
import { signer } from "./helpers/sign.js";

/**
 * S3 bucket operations through the real SDK v3 client (aws-subset §2.1, §2.2, §2.4): each
 * operation's success and main errors (name, HTTP status, message), Block Public Access and the
 * bucket policy CloudTrail needs (§3.1).
 */

function setup(region = "us-east-1") {
  const sim = Simulator.inMemory();
  const s3 = new S3Client({ ...sim.clientConfig({ region }), forcePathStyle: true });
  return { sim, s3, acct: sim.account.accountId };
}

const policy = (...Statement: unknown[]) => JSON.stringify({ Version: "2012-10-17", Statement });
const publicRead = (bucket: string, action = "s3:GetBucketTagging") =>
  policy({ Effect: "Allow", Principal: "*", Action: action, Resource: `arn:aws:s3:::${bucket}` });
const allOff = {
  BlockPublicAcls: false,
  IgnorePublicAcls: false,
  BlockPublicPolicy: false,
  RestrictPublicBuckets: false,
};

/** The CloudTrail bucket policy of aws-subset §3.1. */
const trailPolicy = (bucket: string, acct: string, trailArn: string) =>
  policy(
    {
      Sid: "AWSCloudTrailAclCheck20150319",
      Effect: "Allow",
      Principal: { Service: "cloudtrail.amazonaws.com" },
      Action: "s3:GetBucketAcl",
      Resource: `arn:aws:s3:::${bucket}`,
      Condition: { StringEquals: { "aws:SourceArn": trailArn } },
    },
    {
      Sid: "AWSCloudTrailWrite20150319",
      Effect: "Allow",
      Principal: { Service: "cloudtrail.amazonaws.com" },
      Action: "s3:PutObject",
      Resource: `arn:aws:s3:::${bucket}/AWSLogs/${acct}/*`,
      Condition: { StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trailArn } },
    },
  );

async function userClient(sim: Simulator, name: string, inline?: string) {
  const iam = new IAMClient(sim.clientConfig());
  const { User } = await iam.send(new CreateUserCommand({ UserName: name }));
  if (inline)
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: "p", PolicyDocument: inline }));
  const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: name }));
  const credentials = { accessKeyId: AccessKey!.AccessKeyId!, secretAccessKey: AccessKey!.SecretAccessKey! };
  return {
    arn: User!.Arn!,
    s3: new S3Client({ ...sim.clientConfig({ credentials }), forcePathStyle: true }),
  };
}

describe("CreateBucket", () => {
  it("creates with AWS's defaults: BPA all on, ACLs disabled, SSE-S3", async () => {
    const { s3 } = setup();
    const out = await s3.send(new CreateBucketCommand({ Bucket: "new-bucket" }));
    expect(out.Location).toBe("/new-bucket");
    expect(out.BucketArn).toBe("arn:aws:s3:::new-bucket");
    const pab = await s3.send(new GetPublicAccessBlockCommand({ Bucket: "new-bucket" }));
    expect(pab.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      IgnorePublicAcls: true,
      BlockPublicPolicy: true,
      RestrictPublicBuckets: true,
    });
    const own = await s3.send(new GetBucketOwnershipControlsCommand({ Bucket: "new-bucket" }));
    expect(own.OwnershipControls!.Rules).toEqual([{ ObjectOwnership: "BucketOwnerEnforced" }]);
    const enc = await s3.send(new GetBucketEncryptionCommand({ Bucket: "new-bucket" }));
    expect(enc.ServerSideEncryptionConfiguration!.Rules).toEqual([
      { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" }, BucketKeyEnabled: false },
    ]);
    const ver = await s3.send(new GetBucketVersioningCommand({ Bucket: "new-bucket" }));
    expect(ver.Status).toBeUndefined();
  });

  it.each([
    "ab",
    "x".repeat(64),
    "Upper",
    "bad..name",
    "192.168.0.1",
    "xn--bucket",
    "-dash",
    "a_b",
    "name-s3alias",
    "dot.-dash",
  ])("refuses the name %s", async (name) => {
    const { s3 } = setup();
    expect(await failure(s3.send(new CreateBucketCommand({ Bucket: name })))).toEqual({
      name: "InvalidBucketName",
      status: 400,
      message: "The specified bucket is not valid.",
    });
  });

  it("is idempotent in us-east-1 and 409 BucketAlreadyOwnedByYou elsewhere", async () => {
    const { s3, sim } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "twice-bucket" }));
    await s3.send(new CreateBucketCommand({ Bucket: "twice-bucket" }));
    const eu = new S3Client({ ...sim.clientConfig({ region: "eu-west-1" }), forcePathStyle: true });
    const cfg = { LocationConstraint: "eu-west-1" as const };
    await eu.send(new CreateBucketCommand({ Bucket: "eu-bucket", CreateBucketConfiguration: cfg }));
    expect(
      await failure(
        eu.send(new CreateBucketCommand({ Bucket: "eu-bucket", CreateBucketConfiguration: cfg })),
      ),
    ).toEqual({
      name: "BucketAlreadyOwnedByYou",
      status: 409,
      message: "Your previous request to create the named bucket succeeded and you already own it.",
    });
    const loc = await eu.send(new GetBucketLocationCommand({ Bucket: "eu-bucket" }));
    expect(loc.LocationConstraint).toBe("eu-west-1");
    const all = await s3.send(new ListBucketsCommand({}));
    expect(all.Buckets!.map((b) => [b.Name, b.BucketRegion])).toEqual([
      ["eu-bucket", "eu-west-1"],
      ["twice-bucket", "us-east-1"],
    ]);
    expect(all.Buckets![0]!.CreationDate).toBeInstanceOf(Date);
    expect(all.Owner!.ID).toBe(canonicalId(sim.account.accountId));
    expect(all.Owner!.ID).toMatch(/^[0-9a-f]{64}$/);
  });

  it("applies the location-constraint rules", async () => {
    const { s3, sim } = setup();
    expect(
      await failure(
        s3.send(
          new CreateBucketCommand({
            Bucket: "lc-bucket",
            CreateBucketConfiguration: { LocationConstraint: "us-east-1" as never },
          }),
        ),
      ),
    ).toEqual({
      name: "InvalidLocationConstraint",
      status: 400,
      message: "The specified location-constraint is not valid",
    });
    const west = new S3Client({ ...sim.clientConfig({ region: "us-west-2" }), forcePathStyle: true });
    // The SDK adds the client's region as the constraint, so a request without one is signed by hand.
    const signed = await signer("s3", sim.credentials(), "us-west-2").sign({
      method: "PUT",
      protocol: "https:",
      hostname: "s3.us-west-2.amazonaws.com",
      path: "/lc-bucket",
      query: {},
      headers: { host: "s3.us-west-2.amazonaws.com", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
    });
    const res = await sim.handle({
      method: "PUT",
      rawPath: "/lc-bucket",
      query: {},
      headers: signed.headers,
      body: new Uint8Array(0),
      scheme: "https",
      sourceIp: "203.0.113.9",
    });
    expect(res.status).toBe(400);
    expect(new TextDecoder().decode(res.body as Uint8Array)).toContain(
      "<Code>IllegalLocationConstraintException</Code><Message>The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.</Message>",
    );
    expect(
      await failure(
        west.send(
          new CreateBucketCommand({
            Bucket: "lc-bucket",
            CreateBucketConfiguration: { LocationConstraint: "eu-west-1" },
          }),
        ),
      ),
    ).toEqual({
      name: "IllegalLocationConstraintException",
      status: 400,
      message:
        "The eu-west-1 location constraint is incompatible for the region specific endpoint this request was sent to.",
    });
    const made = await west.send(
      new CreateBucketCommand({
        Bucket: "lc-bucket",
        CreateBucketConfiguration: { LocationConstraint: "us-west-2" },
      }),
    );
    expect(made.Location).toBe("http://lc-bucket.s3.amazonaws.com/");
    const head = await west.send(new HeadBucketCommand({ Bucket: "lc-bucket" }));
    expect(head.BucketRegion).toBe("us-west-2");
  });

  it("refuses ACLs on a bucket whose ACLs are disabled", async () => {
    const { s3 } = setup();
    expect(
      await failure(s3.send(new CreateBucketCommand({ Bucket: "acl-bucket", ACL: "public-read" }))),
    ).toEqual({
      name: "InvalidBucketAclWithObjectOwnership",
      status: 400,
      message: "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
    });
  });
});

describe("region", () => {
  it("redirects a signed request for a bucket of another region (301 PermanentRedirect); GetBucketLocation answers anywhere", async () => {
    const { s3, sim } = setup();
    const eu = new S3Client({ ...sim.clientConfig({ region: "eu-central-1" }), forcePathStyle: true });
    await eu.send(
      new CreateBucketCommand({
        Bucket: "far-bucket",
        CreateBucketConfiguration: { LocationConstraint: "eu-central-1" },
      }),
    );
    expect(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: "far-bucket" })))).toEqual({
      name: "PermanentRedirect",
      status: 301,
      message:
        "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
    });
    expect((await s3.send(new GetBucketLocationCommand({ Bucket: "far-bucket" }))).LocationConstraint).toBe(
      "eu-central-1",
    );
    // The SDK follows the redirect when asked to, reading x-amz-bucket-region.
    const following = new S3Client({
      ...sim.clientConfig(),
      forcePathStyle: true,
      followRegionRedirects: true,
    });
    expect(
      await failure(following.send(new GetBucketTaggingCommand({ Bucket: "far-bucket" }))),
    ).toMatchObject({
      name: "NoSuchTagSet",
      status: 404,
    });
  });
});

describe("DeleteBucket", () => {
  it("deletes (204) and then answers NoSuchBucket", async () => {
    const { s3, sim } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "gone-bucket" }));
    const out = await s3.send(new DeleteBucketCommand({ Bucket: "gone-bucket" }));
    expect(out.$metadata.httpStatusCode).toBe(204);
    expect(await failure(s3.send(new DeleteBucketCommand({ Bucket: "gone-bucket" })))).toEqual({
      name: "NoSuchBucket",
      status: 404,
      message: "The specified bucket does not exist",
    });
    expect(await failure(s3.send(new HeadBucketCommand({ Bucket: "gone-bucket" })))).toMatchObject({
      name: "NotFound",
      status: 404,
    });
    // A bucket holding objects (written here through the model, as objects.ts keeps them).
    await s3.send(new CreateBucketCommand({ Bucket: "full-bucket" }));
    const bucket = sim.account.s3.state.buckets["full-bucket"]!;
    bucket.objects.k = [
      {
        versionId: "null",
        deleteMarker: false,
        lastModified: "",
        etag: "",
        size: 0,
        metadata: {},
        sse: { algorithm: "AES256" },
        tags: [],
      },
    ];
    expect(await failure(s3.send(new DeleteBucketCommand({ Bucket: "full-bucket" })))).toEqual({
      name: "BucketNotEmpty",
      status: 409,
      message: "The bucket you tried to delete is not empty",
    });
    await s3.send(
      new PutBucketVersioningCommand({
        Bucket: "full-bucket",
        VersioningConfiguration: { Status: "Enabled" },
      }),
    );
    expect(await failure(s3.send(new DeleteBucketCommand({ Bucket: "full-bucket" })))).toEqual({
      name: "BucketNotEmpty",
      status: 409,
      message: "The bucket you tried to delete is not empty. You must delete all versions in the bucket.",
    });
  });
});

describe("bucket policy", () => {
  it("puts (204), gets the text as put, reports status, deletes", async () => {
    const { s3, acct } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "trail-logs" }));
    const text = trailPolicy("trail-logs", acct, `arn:aws:cloudtrail:us-east-1:${acct}:trail/t`);
    const put = await s3.send(new PutBucketPolicyCommand({ Bucket: "trail-logs", Policy: text }));
    expect(put.$metadata.httpStatusCode).toBe(204);
    expect((await s3.send(new GetBucketPolicyCommand({ Bucket: "trail-logs" }))).Policy).toBe(text);
    expect((await s3.send(new GetBucketPolicyStatusCommand({ Bucket: "trail-logs" }))).PolicyStatus).toEqual({
      IsPublic: false,
    });
    await s3.send(new DeleteBucketPolicyCommand({ Bucket: "trail-logs" }));
    expect(await failure(s3.send(new GetBucketPolicyCommand({ Bucket: "trail-logs" })))).toEqual({
      name: "NoSuchBucketPolicy",
      status: 404,
      message: "The bucket policy does not exist",
    });
    expect(await failure(s3.send(new GetBucketPolicyStatusCommand({ Bucket: "trail-logs" })))).toMatchObject({
      name: "NoSuchBucketPolicy",
      status: 404,
    });
  });

  it.each([
    ["not JSON", "Version: 1", "Policies must be valid JSON and the first byte must be '{'"],
    ["invalid JSON", "{nope", "This policy contains invalid Json"],
    ["no Statement", '{"Version":"2012-10-17"}', "Missing required field Statement"],
    [
      "a resource outside the bucket",
      policy({ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::other/*" }),
      "Policy has invalid resource",
    ],
    [
      "a non-S3 action",
      policy({
        Effect: "Allow",
        Principal: "*",
        Action: "kms:Decrypt",
        Resource: "arn:aws:s3:::pol-bucket/*",
      }),
      "Policy has invalid action",
    ],
    [
      "an unknown principal",
      policy({
        Effect: "Allow",
        Principal: { AWS: "arn:aws:iam::ACCT:user/nobody" },
        Action: "s3:GetObject",
        Resource: "arn:aws:s3:::pol-bucket/*",
      }),
      "Invalid principal in policy",
    ],
    [
      "a malformed principal",
      policy({
        Effect: "Allow",
        Principal: { AWS: "nobody" },
        Action: "s3:GetObject",
        Resource: "arn:aws:s3:::pol-bucket/*",
      }),
      "Invalid principal in policy",
    ],
  ])("refuses %s: MalformedPolicy", async (_what, doc, message) => {
    const { s3, acct } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "pol-bucket" }));
    expect(
      await failure(
        s3.send(new PutBucketPolicyCommand({ Bucket: "pol-bucket", Policy: doc.replace("ACCT", acct) })),
      ),
    ).toEqual({
      name: "MalformedPolicy",
      status: 400,
      message,
    });
  });

  it("refuses a public policy while BlockPublicPolicy is on (403, AWS's reason), accepts it once off", async () => {
    const { s3, sim, acct } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "pub-bucket" }));
    const admin = `arn:aws:iam::${acct}:user/${sim.account.adminUserName}`;
    expect(
      await failure(
        s3.send(new PutBucketPolicyCommand({ Bucket: "pub-bucket", Policy: publicRead("pub-bucket") })),
      ),
    ).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: ${admin} is not authorized to perform: s3:PutBucketPolicy on resource: "arn:aws:s3:::pub-bucket" because public policies are blocked by the BlockPublicPolicy block public access setting.`,
    });
    await s3.send(
      new PutPublicAccessBlockCommand({ Bucket: "pub-bucket", PublicAccessBlockConfiguration: allOff }),
    );
    await s3.send(new PutBucketPolicyCommand({ Bucket: "pub-bucket", Policy: publicRead("pub-bucket") }));
    expect(
      (await s3.send(new GetBucketPolicyStatusCommand({ Bucket: "pub-bucket" }))).PolicyStatus!.IsPublic,
    ).toBe(true);
  });

  it("RestrictPublicBuckets ignores a public policy's grants for anonymous callers; the owner's account still gets in", async () => {
    const { s3, sim } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "rpb-bucket" }));
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: "rpb-bucket",
        PublicAccessBlockConfiguration: { ...allOff, RestrictPublicBuckets: true },
      }),
    );
    await s3.send(new PutBucketPolicyCommand({ Bucket: "rpb-bucket", Policy: publicRead("rpb-bucket") }));
    const anonymous = new S3Client({
      ...sim.clientConfig(),
      forcePathStyle: true,
      signer: { sign: async (r) => r },
    });
    expect(await failure(anonymous.send(new GetBucketTaggingCommand({ Bucket: "rpb-bucket" })))).toEqual({
      name: "AccessDenied",
      status: 403,
      message: "Access Denied",
    });
    // A user of the account with no IAM policy of its own is let in by the same public grant.
    const user = await userClient(sim, "reader");
    expect(await failure(user.s3.send(new GetBucketTaggingCommand({ Bucket: "rpb-bucket" })))).toMatchObject({
      name: "NoSuchTagSet",
    });
    // With RestrictPublicBuckets off, the public grant lets anonymous callers in.
    await s3.send(
      new PutPublicAccessBlockCommand({ Bucket: "rpb-bucket", PublicAccessBlockConfiguration: allOff }),
    );
    expect(await failure(anonymous.send(new GetBucketTaggingCommand({ Bucket: "rpb-bucket" })))).toEqual({
      name: "NoSuchTagSet",
      status: 404,
      message: "The TagSet does not exist",
    });
  });

  it("judges public and non-public policies as Block Public Access does", () => {
    const r = "arn:aws:s3:::b/*";
    const stmt = (extra: Record<string, unknown>) =>
      policy({ Effect: "Allow", Action: "s3:GetObject", Resource: r, Principal: "*", ...extra });
    expect(
      isPublicPolicy(trailPolicy("b", "111122223333", "arn:aws:cloudtrail:us-east-1:111122223333:trail/t")),
    ).toBe(false);
    expect(isPublicPolicy(stmt({}))).toBe(true);
    expect(isPublicPolicy(stmt({ Principal: { AWS: "*" } }))).toBe(true);
    expect(isPublicPolicy(stmt({ Principal: { AWS: "111122223333" } }))).toBe(false);
    expect(
      isPublicPolicy(stmt({ Condition: { StringEquals: { "aws:SourceAccount": "111122223333" } } })),
    ).toBe(false);
    expect(isPublicPolicy(stmt({ Condition: { StringEquals: { "aws:PrincipalOrgID": "o-abc" } } }))).toBe(
      false,
    );
    expect(
      isPublicPolicy(stmt({ Condition: { StringLike: { "aws:SourceArn": "arn:aws:cloudtrail:*" } } })),
    ).toBe(true);
    expect(
      isPublicPolicy(stmt({ Condition: { StringEqualsIfExists: { "aws:SourceAccount": "111122223333" } } })),
    ).toBe(true);
    expect(isPublicPolicy(stmt({ Condition: { IpAddress: { "aws:SourceIp": "203.0.113.0/24" } } }))).toBe(
      false,
    );
    expect(isPublicPolicy(stmt({ Condition: { IpAddress: { "aws:SourceIp": "0.0.0.0/0" } } }))).toBe(true);
    expect(isPublicPolicy(stmt({ Condition: { Bool: { "aws:SecureTransport": "true" } } }))).toBe(true);
    expect(isPublicPolicy(stmt({ Effect: "Deny" }))).toBe(false);
  });

  it("lets cloudtrail.amazonaws.com in through the §3.1 policy only for its trail (s3Allowed; an internal call)", async () => {
    const { s3, sim, acct } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "ct-bucket" }));
    const trailArn = `arn:aws:cloudtrail:us-east-1:${acct}:trail/lab`;
    await s3.send(
      new PutBucketPolicyCommand({ Bucket: "ct-bucket", Policy: trailPolicy("ct-bucket", acct, trailArn) }),
    );
    const svc = sim.account.s3;
    const bucket = svc.state.buckets["ct-bucket"]!;
    const cloudtrail: Principal = {
      type: "AWSService",
      arn: "cloudtrail.amazonaws.com",
      accountId: acct,
      userId: "cloudtrail.amazonaws.com",
      service: "cloudtrail.amazonaws.com",
    };
    const key = `arn:aws:s3:::ct-bucket/AWSLogs/${acct}/CloudTrail/x.json.gz`;
    const ctx = { "aws:SourceArn": trailArn, "aws:SourceAccount": acct };
    expect(s3Allowed(svc, cloudtrail, "s3:GetBucketAcl", "arn:aws:s3:::ct-bucket", bucket, ctx)).toBe(true);
    expect(
      s3Allowed(svc, cloudtrail, "s3:PutObject", key, bucket, {
        ...ctx,
        "s3:x-amz-acl": "bucket-owner-full-control",
      }),
    ).toBe(true);
    expect(s3Allowed(svc, cloudtrail, "s3:PutObject", key, bucket, ctx)).toBe(false);
    expect(
      s3Allowed(svc, cloudtrail, "s3:GetBucketAcl", "arn:aws:s3:::ct-bucket", bucket, {
        ...ctx,
        "aws:SourceArn": `${trailArn}2`,
      }),
    ).toBe(false);
    // The same check as an AWS service's own call into S3 (no client signature).
    const call: CallContext = {
      accountId: acct,
      region: "us-east-1",
      requestId: "r",
      principal: cloudtrail,
      now: new Date(),
      sourceIp: "cloudtrail.amazonaws.com",
      userAgent: "cloudtrail.amazonaws.com",
      secureTransport: true,
      serviceKeys: ctx,
    };
    const acl = sim.account.call<{ xml: { root: string } }>(
      svc,
      "GetBucketAcl",
      {
        Bucket: "ct-bucket",
        method: "GET",
        query: {},
        headers: {},
        body: new Uint8Array(0),
        virtualHosted: false,
      },
      call,
    );
    expect(acl.xml.root).toBe("AccessControlPolicy");
    expect(() =>
      sim.account.call(
        svc,
        "GetBucketTagging",
        {
          Bucket: "ct-bucket",
          method: "GET",
          query: {},
          headers: {},
          body: new Uint8Array(0),
          virtualHosted: false,
        },
        call,
      ),
    ).toThrow("Access Denied");
  });
});

describe("denial messages", () => {
  it("gives same-account users AWS's detailed text, and names an explicit deny in the bucket policy", async () => {
    const { s3, sim } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "deny-bucket" }));
    const user = await userClient(sim, "nobody-special");
    expect(await failure(user.s3.send(new GetBucketTaggingCommand({ Bucket: "deny-bucket" })))).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: ${user.arn} is not authorized to perform: s3:GetBucketTagging on resource: "arn:aws:s3:::deny-bucket" because no identity-based policy allows the s3:GetBucketTagging action`,
    });
    const allowed = await userClient(
      sim,
      "tagger",
      policy({ Effect: "Allow", Action: "s3:*", Resource: "*" }),
    );
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: "deny-bucket",
        Policy: policy({
          Effect: "Deny",
          Principal: { AWS: allowed.arn },
          Action: "s3:GetBucketTagging",
          Resource: "arn:aws:s3:::deny-bucket",
        }),
      }),
    );
    expect(await failure(allowed.s3.send(new GetBucketTaggingCommand({ Bucket: "deny-bucket" })))).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: ${allowed.arn} is not authorized to perform: s3:GetBucketTagging on resource: "arn:aws:s3:::deny-bucket" with an explicit deny in a resource-based policy`,
    });
    // The user's IAM policy still grants what the bucket policy does not deny.
    expect((await allowed.s3.send(new GetBucketAclCommand({ Bucket: "deny-bucket" }))).Grants).toHaveLength(
      1,
    );
  });
});

describe("configuration", () => {
  it("Block Public Access: put, get, delete (404 NoSuchPublicAccessBlockConfiguration after)", async () => {
    const { s3 } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "pab-bucket" }));
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: "pab-bucket",
        PublicAccessBlockConfiguration: { BlockPublicAcls: true },
      }),
    );
    expect(
      (await s3.send(new GetPublicAccessBlockCommand({ Bucket: "pab-bucket" })))
        .PublicAccessBlockConfiguration,
    ).toEqual({
      ...allOff,
      BlockPublicAcls: true,
    });
    const del = await s3.send(new DeletePublicAccessBlockCommand({ Bucket: "pab-bucket" }));
    expect(del.$metadata.httpStatusCode).toBe(204);
    expect(await failure(s3.send(new GetPublicAccessBlockCommand({ Bucket: "pab-bucket" })))).toEqual({
      name: "NoSuchPublicAccessBlockConfiguration",
      status: 404,
      message: "The public access block configuration was not found",
    });
  });

  it("default encryption: SSE-KMS with a key, InvalidArgument for a key with AES256, reset to SSE-S3 on delete", async () => {
    const { s3 } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "enc-bucket" }));
    await s3.send(
      new PutBucketEncryptionCommand({
        Bucket: "enc-bucket",
        ServerSideEncryptionConfiguration: {
          Rules: [
            {
              ApplyServerSideEncryptionByDefault: {
                SSEAlgorithm: "aws:kms",
                KMSMasterKeyID: "alias/myFirstKey",
              },
              BucketKeyEnabled: true,
            },
          ],
        },
      }),
    );
    expect(
      (await s3.send(new GetBucketEncryptionCommand({ Bucket: "enc-bucket" })))
        .ServerSideEncryptionConfiguration!.Rules,
    ).toEqual([
      {
        ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: "alias/myFirstKey" },
        BucketKeyEnabled: true,
      },
    ]);
    expect(
      await failure(
        s3.send(
          new PutBucketEncryptionCommand({
            Bucket: "enc-bucket",
            ServerSideEncryptionConfiguration: {
              Rules: [
                { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256", KMSMasterKeyID: "k" } },
              ],
            },
          }),
        ),
      ),
    ).toEqual({
      name: "InvalidArgument",
      status: 400,
      message:
        "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
    });
    expect(
      await failure(
        s3.send(
          new PutBucketEncryptionCommand({
            Bucket: "enc-bucket",
            ServerSideEncryptionConfiguration: { Rules: [] },
          }),
        ),
      ),
    ).toEqual({
      name: "MalformedXML",
      status: 400,
      message: "The XML you provided was not well-formed or did not validate against our published schema",
    });
    expect(
      (await s3.send(new DeleteBucketEncryptionCommand({ Bucket: "enc-bucket" }))).$metadata.httpStatusCode,
    ).toBe(204);
    expect(
      (await s3.send(new GetBucketEncryptionCommand({ Bucket: "enc-bucket" })))
        .ServerSideEncryptionConfiguration!.Rules,
    ).toEqual([{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" }, BucketKeyEnabled: false }]);
  });

  it("tagging: put (204), get, InvalidTag for aws: keys and duplicates, delete → NoSuchTagSet", async () => {
    const { s3 } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "tag-bucket" }));
    expect(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: "tag-bucket" })))).toEqual({
      name: "NoSuchTagSet",
      status: 404,
      message: "The TagSet does not exist",
    });
    const put = await s3.send(
      new PutBucketTaggingCommand({
        Bucket: "tag-bucket",
        Tagging: {
          TagSet: [
            { Key: "team", Value: "lab" },
            { Key: "k2", Value: "" },
          ],
        },
      }),
    );
    expect(put.$metadata.httpStatusCode).toBe(204);
    expect((await s3.send(new GetBucketTaggingCommand({ Bucket: "tag-bucket" }))).TagSet).toEqual([
      { Key: "team", Value: "lab" },
      { Key: "k2", Value: "" },
    ]);
    expect(
      await failure(
        s3.send(
          new PutBucketTaggingCommand({
            Bucket: "tag-bucket",
            Tagging: { TagSet: [{ Key: "aws:x", Value: "v" }] },
          }),
        ),
      ),
    ).toEqual({
      name: "InvalidTag",
      status: 400,
      message: "System tags cannot be added/updated by requester",
    });
    expect(
      await failure(
        s3.send(
          new PutBucketTaggingCommand({
            Bucket: "tag-bucket",
            Tagging: {
              TagSet: [
                { Key: "a", Value: "1" },
                { Key: "a", Value: "2" },
              ],
            },
          }),
        ),
      ),
    ).toEqual({ name: "InvalidTag", status: 400, message: "Cannot provide multiple Tags with the same key" });
    await s3.send(new DeleteBucketTaggingCommand({ Bucket: "tag-bucket" }));
    expect(await failure(s3.send(new GetBucketTaggingCommand({ Bucket: "tag-bucket" })))).toMatchObject({
      name: "NoSuchTagSet",
    });
  });

  it("ACLs: the owner's FULL_CONTROL grant; PutBucketAcl refused while ACLs are disabled", async () => {
    const { s3, sim } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "acl-read" }));
    const acl = await s3.send(new GetBucketAclCommand({ Bucket: "acl-read" }));
    const id = canonicalId(sim.account.accountId);
    expect(acl.Owner).toEqual({ ID: id });
    expect(acl.Grants).toEqual([{ Grantee: { Type: "CanonicalUser", ID: id }, Permission: "FULL_CONTROL" }]);
    expect(await failure(s3.send(new PutBucketAclCommand({ Bucket: "acl-read", ACL: "private" })))).toEqual({
      name: "AccessControlListNotSupported",
      status: 400,
      message: "The bucket does not allow ACLs",
    });
    await s3.send(
      new PutBucketOwnershipControlsCommand({
        Bucket: "acl-read",
        OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerPreferred" }] },
      }),
    );
    await s3.send(new PutBucketAclCommand({ Bucket: "acl-read", ACL: "private" }));
    expect(
      await failure(s3.send(new PutBucketAclCommand({ Bucket: "acl-read", ACL: "public-read" }))),
    ).toMatchObject({ name: "AccessDenied", status: 403 });
    await s3.send(
      new PutPublicAccessBlockCommand({ Bucket: "acl-read", PublicAccessBlockConfiguration: allOff }),
    );
    await s3.send(new PutBucketAclCommand({ Bucket: "acl-read", ACL: "public-read" }));
    const grants = (await s3.send(new GetBucketAclCommand({ Bucket: "acl-read" }))).Grants!;
    expect(grants[1]).toEqual({
      Grantee: { Type: "Group", URI: "http://acs.amazonaws.com/groups/global/AllUsers" },
      Permission: "READ",
    });
  });

  it("versioning: Enabled, Suspended; MalformedXML for anything else", async () => {
    const { s3 } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "ver-bucket" }));
    await s3.send(
      new PutBucketVersioningCommand({
        Bucket: "ver-bucket",
        VersioningConfiguration: { Status: "Enabled" },
      }),
    );
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: "ver-bucket" }))).Status).toBe("Enabled");
    await s3.send(
      new PutBucketVersioningCommand({
        Bucket: "ver-bucket",
        VersioningConfiguration: { Status: "Suspended" },
      }),
    );
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: "ver-bucket" }))).Status).toBe(
      "Suspended",
    );
    expect(
      await failure(
        s3.send(
          new PutBucketVersioningCommand({
            Bucket: "ver-bucket",
            VersioningConfiguration: { Status: "Off" as never },
          }),
        ),
      ),
    ).toMatchObject({ name: "MalformedXML", status: 400 });
  });

  it("ownership controls: MalformedXML for an unknown setting", async () => {
    const { s3 } = setup();
    await s3.send(new CreateBucketCommand({ Bucket: "own-bucket" }));
    expect(
      await failure(
        s3.send(
          new PutBucketOwnershipControlsCommand({
            Bucket: "own-bucket",
            OwnershipControls: { Rules: [{ ObjectOwnership: "Nobody" as never }] },
          }),
        ),
      ),
    ).toMatchObject({ name: "MalformedXML", status: 400 });
  });
});
