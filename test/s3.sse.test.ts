import { createHash } from "node:crypto";
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  KMSClient,
  PutKeyPolicyCommand,
  ScheduleKeyDeletionCommand,
} from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketEncryptionCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  PutPublicAccessBlockCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { afterEach, describe, expect, it } from "vitest";
import type { CallRecord } from "../sim/account.js";
import type { CallContext } from "../sim/core/service.js";
import { type RunningServer, serve } from "../sim/server.js";
import type { S3Output } from "../sim/services/s3/model.js";
import { Simulator } from "../sim/simulator.js";
import { failure } from "./helpers/errors.js";

/**
 * SSE-KMS and SSE-S3 as S3 does them (aws-subset §2.3, §3.5): KMS called on the requester's
 * behalf with the object's ARN as encryption context; KMS denials and key states as S3's errors.
 */

const BUCKET = "sse-test-bucket";
const doc = (...Statement: unknown[]) => JSON.stringify({ Version: "2012-10-17", Statement });

async function setup() {
  const sim = Simulator.inMemory();
  const acct = sim.account.accountId;
  const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
  const kms = new KMSClient(sim.clientConfig());
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
  await kms.send(new CreateAliasCommand({ AliasName: "alias/lab", TargetKeyId: key.KeyId! }));
  return { sim, s3, kms, acct, keyArn: key.Arn!, keyId: key.KeyId! };
}

/** Every call the account sees while `fn` runs. */
async function recording<T>(sim: Simulator, fn: () => Promise<T>): Promise<{ out: T; calls: CallRecord[] }> {
  const calls: CallRecord[] = [];
  const stop = sim.observe((r) => calls.push(r));
  try {
    return { out: await fn(), calls };
  } finally {
    stop();
  }
}

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("SSE-KMS uploads and downloads", () => {
  it("PutObject calls GenerateDataKey once, as the requester, with the object's ARN as context", async () => {
    const { sim, s3, acct, keyArn } = await setup();
    const { out: put, calls } = await recording(sim, () =>
      s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "data/secret.txt",
          Body: "classified",
          ServerSideEncryption: "aws:kms",
          SSEKMSKeyId: "alias/lab",
        }),
      ),
    );
    expect(put.ServerSideEncryption).toBe("aws:kms");
    expect(put.SSEKMSKeyId).toBe(keyArn);
    expect(put.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(put.ETag).not.toBe(`"${createHash("md5").update("classified").digest("hex")}"`);

    const kmsCalls = calls.filter((c) => c.service === "kms");
    expect(kmsCalls.map((c) => c.operation)).toEqual(["GenerateDataKey"]);
    const gdk = kmsCalls[0]!;
    expect(gdk.ctx.viaService).toBe("s3.us-east-1.amazonaws.com");
    expect(gdk.ctx.principal.arn).toBe(`arn:aws:iam::${acct}:user/admin`);
    expect(gdk.input).toEqual({
      KeyId: "alias/lab",
      KeySpec: "AES_256",
      EncryptionContext: { "aws:s3:arn": `arn:aws:s3:::${BUCKET}/data/secret.txt` },
    });
    expect(gdk.error).toBeUndefined();

    const { out: head, calls: headCalls } = await recording(sim, () =>
      s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "data/secret.txt" })),
    );
    expect(head.ServerSideEncryption).toBe("aws:kms");
    expect(head.SSEKMSKeyId).toBe(keyArn);
    expect(head.BucketKeyEnabled).toBeUndefined();
    expect(headCalls.filter((c) => c.service === "kms")).toEqual([]);

    const { out: body, calls: getCalls } = await recording(sim, async () => {
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "data/secret.txt" }));
      expect(got.SSEKMSKeyId).toBe(keyArn);
      return got.Body!.transformToString();
    });
    expect(body).toBe("classified");
    const decrypt = getCalls.filter((c) => c.service === "kms");
    expect(decrypt.map((c) => c.operation)).toEqual(["Decrypt"]);
    expect(decrypt[0]!.input.EncryptionContext).toEqual({
      "aws:s3:arn": `arn:aws:s3:::${BUCKET}/data/secret.txt`,
    });
    expect(decrypt[0]!.ctx.viaService).toBe("s3.us-east-1.amazonaws.com");
  });

  it("the bucket's default encryption applies; a Bucket Key makes the bucket's ARN the context", async () => {
    const { sim, s3, keyArn } = await setup();
    await s3.send(
      new PutBucketEncryptionCommand({
        Bucket: BUCKET,
        ServerSideEncryptionConfiguration: {
          Rules: [
            {
              ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: keyArn },
              BucketKeyEnabled: true,
            },
          ],
        },
      }),
    );
    const { out: put, calls } = await recording(sim, () =>
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "by-default", Body: "x" })),
    );
    expect(put.ServerSideEncryption).toBe("aws:kms");
    expect(put.BucketKeyEnabled).toBe(true);
    expect(calls.find((c) => c.service === "kms")!.input.EncryptionContext).toEqual({
      "aws:s3:arn": `arn:aws:s3:::${BUCKET}`,
    });
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "by-default" }));
    expect(head.BucketKeyEnabled).toBe(true);
    // A request naming SSE-S3 overrides the default.
    const s3only = await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: "aes", Body: "x", ServerSideEncryption: "AES256" }),
    );
    expect(s3only.ServerSideEncryption).toBe("AES256");
    expect(
      await (
        await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "by-default" }))
      ).Body!.transformToString(),
    ).toBe("x");
  });

  it("aws:kms without a key uses the AWS managed key aws/s3 (its policy needs kms:ViaService)", async () => {
    const { s3 } = await setup();
    const put = await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: "managed", Body: "m", ServerSideEncryption: "aws:kms" }),
    );
    expect(put.SSEKMSKeyId).toMatch(/^arn:aws:kms:us-east-1:\d{12}:key\/[0-9a-f-]{36}$/);
    expect(
      await (
        await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "managed" }))
      ).Body!.transformToString(),
    ).toBe("m");
  });

  it("the caller's encryption context is added to S3's and echoed on PutObject", async () => {
    const { sim, s3 } = await setup();
    const context = Buffer.from(JSON.stringify({ project: "lab" })).toString("base64");
    const { out: put, calls } = await recording(sim, () =>
      s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: "ctx",
          Body: "c",
          ServerSideEncryption: "aws:kms",
          SSEKMSKeyId: "alias/lab",
          SSEKMSEncryptionContext: context,
        }),
      ),
    );
    const used = { project: "lab", "aws:s3:arn": `arn:aws:s3:::${BUCKET}/ctx` };
    expect(calls.find((c) => c.service === "kms")!.input.EncryptionContext).toEqual(used);
    expect(JSON.parse(Buffer.from(put.SSEKMSEncryptionContext!, "base64").toString())).toEqual(used);
    expect(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "ctx" }))).Body!.transformToString(),
    ).toBe("c");
  });

  it("malformed SSE headers are InvalidArgument; SSE headers on a GET are refused", async () => {
    const { s3 } = await setup();
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "k",
            Body: "x",
            ServerSideEncryption: "rot13" as never,
          }),
        ),
      ),
    ).toEqual({
      name: "InvalidArgument",
      status: 400,
      message: "The encryption method specified is not supported",
    });
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "k",
            Body: "x",
            ServerSideEncryption: "AES256",
            SSEKMSKeyId: "alias/lab",
          }),
        ),
      ),
    ).toEqual({
      name: "InvalidArgument",
      status: 400,
      message:
        "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
    });
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "k",
        Body: "x",
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: "alias/lab",
      }),
    );
    const withHeader = new S3Client({ ...(await configOf(s3)), forcePathStyle: true });
    withHeader.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers["x-amz-server-side-encryption"] =
          "aws:kms";
        return next(args);
      },
      { step: "build", name: "addSse" },
    );
    expect(await failure(withHeader.send(new GetObjectCommand({ Bucket: BUCKET, Key: "k" })))).toEqual({
      name: "InvalidArgument",
      status: 400,
      message: "x-amz-server-side-encryption header is not supported for this operation.",
    });
  });
});

async function configOf(s3: S3Client) {
  return {
    region: await s3.config.region(),
    credentials: await s3.config.credentials(),
    requestHandler: s3.config.requestHandler,
  };
}

describe("KMS failures surface as S3's errors (§2.3)", () => {
  it("a role session loses access when its key-policy statement is removed: 403 AccessDenied with KMS's text", async () => {
    const { sim, s3: admin, kms, acct, keyArn, keyId } = await setup();
    const iam = new IAMClient(sim.clientConfig());
    const sts = new STSClient(sim.clientConfig());
    const role = (
      await iam.send(
        new CreateRoleCommand({
          RoleName: "lab-user",
          AssumeRolePolicyDocument: doc({
            Effect: "Allow",
            Principal: { AWS: `arn:aws:iam::${acct}:root` },
            Action: "sts:AssumeRole",
          }),
        }),
      )
    ).Role!;
    // S3 permissions through IAM; KMS permissions only through the key policy (aws-subset §7.6).
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: "lab-user",
        PolicyName: "s3",
        PolicyDocument: doc({
          Effect: "Allow",
          Action: ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
          Resource: "*",
        }),
      }),
    );
    const rootStatement = {
      Sid: "Enable IAM User Permissions",
      Effect: "Allow",
      Principal: { AWS: `arn:aws:iam::${acct}:root` },
      Action: "kms:*",
      Resource: "*",
    };
    const userStatement = {
      Sid: "Allow use of the key",
      Effect: "Allow",
      Principal: { AWS: role.Arn },
      Action: ["kms:GenerateDataKey", "kms:Decrypt"],
      Resource: "*",
    };
    await kms.send(
      new PutKeyPolicyCommand({
        KeyId: keyId,
        PolicyName: "default",
        Policy: doc(rootStatement, userStatement),
      }),
    );
    const creds = (await sts.send(new AssumeRoleCommand({ RoleArn: role.Arn!, RoleSessionName: "alice" })))
      .Credentials!;
    const s3 = new S3Client({
      ...sim.clientConfig({
        credentials: {
          accessKeyId: creds.AccessKeyId!,
          secretAccessKey: creds.SecretAccessKey!,
          sessionToken: creds.SessionToken!,
        },
      }),
      forcePathStyle: true,
    });
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "o",
        Body: "round trip",
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: keyArn,
      }),
    );
    expect(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "o" }))).Body!.transformToString(),
    ).toBe("round trip");

    await kms.send(
      new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: "default", Policy: doc(rootStatement) }),
    );
    const session = `arn:aws:sts::${acct}:assumed-role/lab-user/alice`;
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "o" })))).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: ${session} is not authorized to perform: kms:Decrypt on resource: ${keyArn} because no identity-based policy allows the kms:Decrypt action`,
    });
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "o2",
            Body: "x",
            ServerSideEncryption: "aws:kms",
            SSEKMSKeyId: keyArn,
          }),
        ),
      ),
    ).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: ${session} is not authorized to perform: kms:GenerateDataKey on resource: ${keyArn} because no identity-based policy allows the kms:GenerateDataKey action`,
    });
    // The admin (root statement + IAM policy) still reads it.
    expect(
      await (await admin.send(new GetObjectCommand({ Bucket: BUCKET, Key: "o" }))).Body!.transformToString(),
    ).toBe("round trip");
  });

  it("disabled key: KMS.DisabledException; pending deletion: KMS.KMSInvalidStateException", async () => {
    const { s3, kms, keyArn, keyId } = await setup();
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "o",
        Body: "x",
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: keyId,
      }),
    );
    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    const disabled = { name: "KMS.DisabledException", status: 400, message: `${keyArn} is disabled.` };
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "o" })))).toEqual(disabled);
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "p",
            Body: "x",
            ServerSideEncryption: "aws:kms",
            SSEKMSKeyId: keyId,
          }),
        ),
      ),
    ).toEqual(disabled);
    // HeadObject does not call KMS.
    expect((await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "o" }))).SSEKMSKeyId).toBe(keyArn);
    await kms.send(new EnableKeyCommand({ KeyId: keyId }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "o" })))).toEqual({
      name: "KMS.KMSInvalidStateException",
      status: 400,
      message: `${keyArn} is pending deletion.`,
    });
  });

  it("unknown keys and keys of another Region: KMS.NotFoundException", async () => {
    const { s3, acct } = await setup();
    const missing = `arn:aws:kms:us-east-1:${acct}:key/11111111-2222-3333-4444-555555555555`;
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "k",
            Body: "x",
            ServerSideEncryption: "aws:kms",
            SSEKMSKeyId: missing,
          }),
        ),
      ),
    ).toEqual({ name: "KMS.NotFoundException", status: 400, message: `Key '${missing}' does not exist` });
    const elsewhere = `arn:aws:kms:eu-west-1:${acct}:key/11111111-2222-3333-4444-555555555555`;
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "k",
            Body: "x",
            ServerSideEncryption: "aws:kms",
            SSEKMSKeyId: elsewhere,
          }),
        ),
      ),
    ).toEqual({ name: "KMS.NotFoundException", status: 400, message: "Invalid arn eu-west-1" });
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "k",
            Body: "x",
            ServerSideEncryption: "aws:kms",
            SSEKMSKeyId: "alias/none",
          }),
        ),
      ),
    ).toEqual({
      name: "KMS.NotFoundException",
      status: 400,
      message: `Alias arn:aws:kms:us-east-1:${acct}:alias/none is not found.`,
    });
  });
});

describe("unsigned access and internal writers", () => {
  it("anonymous GET of an SSE-KMS object let through by a public policy: 400 InvalidArgument (SigV4 required)", async () => {
    const { sim, s3 } = await setup();
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: BUCKET,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          IgnorePublicAcls: true,
          BlockPublicPolicy: false,
          RestrictPublicBuckets: false,
        },
      }),
    );
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: BUCKET,
        Policy: doc({
          Effect: "Allow",
          Principal: "*",
          Action: "s3:GetObject",
          Resource: `arn:aws:s3:::${BUCKET}/*`,
        }),
      }),
    );
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "kms.txt",
        Body: "k",
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: "alias/lab",
      }),
    );
    server = await serve(sim, { port: 0 });
    const res = await fetch(`${server.url}/${BUCKET}/kms.txt`);
    expect(res.status).toBe(400);
    const body = await res.text();
    expect(body).toContain(
      "<Code>InvalidArgument</Code><Message>Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4.</Message><ArgumentName>Authorization</ArgumentName><ArgumentValue>null</ArgumentValue>",
    );
  });

  it("a presigned GET URL of an SSE-KMS object answers 200 and the body (query auth is SigV4)", async () => {
    const { sim, s3 } = await setup();
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "p.txt",
        Body: "presigned",
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: "alias/lab",
      }),
    );
    server = await serve(sim, { port: 0 });
    const client = new S3Client({
      region: "us-east-1",
      endpoint: server.url,
      forcePathStyle: true,
      credentials: sim.credentials(),
    });
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: "p.txt" }), {
      expiresIn: 300,
    });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-amz-server-side-encryption")).toBe("aws:kms");
    expect(await res.text()).toBe("presigned");
  });

  it("an AWS service's own PutObject (CloudTrail delivering a log file) works on an SSE-S3 bucket", async () => {
    const { sim, s3, acct } = await setup();
    const trailArn = `arn:aws:cloudtrail:us-east-1:${acct}:trail/t`;
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: BUCKET,
        Policy: doc({
          Effect: "Allow",
          Principal: { Service: "cloudtrail.amazonaws.com" },
          Action: "s3:PutObject",
          Resource: `arn:aws:s3:::${BUCKET}/AWSLogs/${acct}/*`,
          Condition: {
            StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trailArn },
          },
        }),
      }),
    );
    const ctx: CallContext = {
      accountId: acct,
      region: "us-east-1",
      requestId: "internal",
      principal: {
        type: "AWSService",
        arn: "cloudtrail.amazonaws.com",
        accountId: acct,
        userId: "cloudtrail.amazonaws.com",
        service: "cloudtrail.amazonaws.com",
      },
      now: sim.account.now(),
      sourceIp: "cloudtrail.amazonaws.com",
      userAgent: "cloudtrail.amazonaws.com",
      secureTransport: true,
      serviceKeys: { "aws:SourceArn": trailArn, "aws:SourceAccount": acct },
    };
    const key = `AWSLogs/${acct}/CloudTrail/us-east-1/2026/06/01/file.json.gz`;
    const input = {
      Bucket: BUCKET,
      Key: key,
      method: "PUT",
      query: {},
      headers: {
        "x-amz-acl": "bucket-owner-full-control",
        "content-type": "application/json",
        "content-encoding": "gzip",
      },
      body: new Uint8Array([31, 139, 8, 0]),
      virtualHosted: false,
    };
    const out = sim.account.call<S3Output>(sim.account.s3, "PutObject", input, ctx);
    expect(out.headers?.["x-amz-server-side-encryption"]).toBe("AES256");
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(got.ContentEncoding).toBe("gzip");
    expect(got.ContentType).toBe("application/json");
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(Buffer.from([31, 139, 8, 0]));
    // Elsewhere in the bucket the policy grants nothing.
    expect(() => sim.account.call(sim.account.s3, "PutObject", { ...input, Key: "other/file" }, ctx)).toThrow(
      "Access Denied",
    );
  });
});
