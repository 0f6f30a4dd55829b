import { createHash } from "node:crypto";
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  IAMClient,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteObjectTaggingCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketOwnershipControlsCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  PutPublicAccessBlockCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { afterEach, describe, expect, it } from "vitest";
import { type RunningServer, serve } from "../sim/server.js";
import { canonicalId } from "../sim/services/s3/access.js";
import { Simulator } from "../sim/simulator.js";
import { failure } from "./helpers/errors.js";

/**
 * S3 object operations through the real SDK v3 client (aws-subset §2.3–§2.6): each operation's
 * success and main errors (name, HTTP status, message).
 */

const BUCKET = "objects-test-bucket";

async function setup(options: Parameters<typeof Simulator.inMemory>[0] = {}) {
  const sim = Simulator.inMemory(options);
  const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  return { sim, s3, acct: sim.account.accountId };
}

/** An IAM user with `statements` as its only policy, and an S3 client acting as it. */
async function userClient(sim: Simulator, name: string, statements: unknown[]) {
  const iam = new IAMClient(sim.clientConfig());
  await iam.send(new CreateUserCommand({ UserName: name }));
  await iam.send(
    new PutUserPolicyCommand({
      UserName: name,
      PolicyName: "p",
      PolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: statements }),
    }),
  );
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return new S3Client({
    ...sim.clientConfig({
      credentials: { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! },
    }),
    forcePathStyle: true,
  });
}

const text = async (p: Promise<{ Body?: { transformToString(): Promise<string> } }>) =>
  (await (await p).Body!.transformToString()) as string;

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("PutObject, GetObject, HeadObject", () => {
  it("stores the body with its headers and metadata and replays them", async () => {
    const { s3 } = await setup();
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "docs/a.txt",
        Body: "hello world",
        ContentType: "text/plain",
        CacheControl: "max-age=60",
        ContentDisposition: "attachment",
        Metadata: { owner: "lab", stage: "3" },
        Tagging: "team=blue&tier=gold",
      }),
    );
    expect(put.ETag).toBe(`"${md5("hello world")}"`);
    expect(put.ServerSideEncryption).toBe("AES256");
    expect(put.ChecksumCRC32).toBeDefined();

    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "docs/a.txt" }));
    expect(await got.Body!.transformToString()).toBe("hello world");
    expect(got.ContentType).toBe("text/plain");
    expect(got.CacheControl).toBe("max-age=60");
    expect(got.ContentDisposition).toBe("attachment");
    expect(got.Metadata).toEqual({ owner: "lab", stage: "3" });
    expect(got.TagCount).toBe(2);
    expect(got.ContentLength).toBe(11);
    expect(got.ETag).toBe(put.ETag);
    expect(got.ServerSideEncryption).toBe("AES256");

    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "docs/a.txt" }));
    expect(head.ContentLength).toBe(11);
    expect(head.ETag).toBe(put.ETag);
    expect(head.Metadata).toEqual({ owner: "lab", stage: "3" });
    expect(head.LastModified).toBeInstanceOf(Date);
  });

  it("keeps the Content-Type sent (the SDK's for bytes) and overwrites in an unversioned bucket", async () => {
    const { s3 } = await setup();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "k", Body: new Uint8Array([1, 2, 3]) }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "k", Body: "second" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "k" }));
    expect(got.ContentType).toBe("application/octet-stream");
    expect(await got.Body!.transformToString()).toBe("second");
    const list = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET }));
    expect(list.Versions?.map((v) => v.VersionId)).toEqual(["null"]);
  });

  it("serves byte ranges with 206 and Content-Range; an unsatisfiable range is 416 InvalidRange", async () => {
    const { s3 } = await setup();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "r", Body: "0123456789" }));
    const part = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "r", Range: "bytes=2-4" }));
    expect(part.$metadata.httpStatusCode).toBe(206);
    expect(part.ContentRange).toBe("bytes 2-4/10");
    expect(await part.Body!.transformToString()).toBe("234");
    expect(await text(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "r", Range: "bytes=7-" })))).toBe(
      "789",
    );
    expect(await text(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "r", Range: "bytes=-3" })))).toBe(
      "789",
    );
    expect(await text(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "r", Range: "bytes=8-99" })))).toBe(
      "89",
    );
    const bad = s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "r", Range: "bytes=10-20" }));
    expect(await failure(bad)).toEqual({
      name: "InvalidRange",
      status: 416,
      message: "The requested range is not satisfiable",
    });
    try {
      await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "r", Range: "bytes=10-20" }));
    } catch (e) {
      expect((e as { ActualObjectSize?: string }).ActualObjectSize).toBe("10");
    }
  });

  it("answers conditional requests: 304 for If-None-Match, 412 PreconditionFailed for If-Match", async () => {
    const { s3 } = await setup();
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "c", Body: "x" }));
    const nm = await failure(
      s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "c", IfNoneMatch: put.ETag })),
    );
    expect(nm.status).toBe(304);
    expect(
      await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "c", IfMatch: '"nope"' }))),
    ).toEqual({
      name: "PreconditionFailed",
      status: 412,
      message: "At least one of the pre-conditions you specified did not hold",
    });
  });

  it("missing key: 404 NoSuchKey with s3:ListBucket, 403 AccessDenied without (§2.3)", async () => {
    const { sim, s3, acct } = await setup();
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "nothing" })))).toEqual({
      name: "NoSuchKey",
      status: 404,
      message: "The specified key does not exist.",
    });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "nothing" })))).toMatchObject({
      name: "NotFound",
      status: 404,
    });
    const reader = await userClient(sim, "reader", [
      { Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/*` },
    ]);
    expect(await failure(reader.send(new GetObjectCommand({ Bucket: BUCKET, Key: "nothing" })))).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: arn:aws:iam::${acct}:user/reader is not authorized to perform: s3:ListBucket on resource: "arn:aws:s3:::${BUCKET}" because no identity-based policy allows the s3:ListBucket action`,
    });
    expect(await failure(reader.send(new PutObjectCommand({ Bucket: BUCKET, Key: "x", Body: "x" })))).toEqual(
      {
        name: "AccessDenied",
        status: 403,
        message: `User: arn:aws:iam::${acct}:user/reader is not authorized to perform: s3:PutObject on resource: "arn:aws:s3:::${BUCKET}/x" because no identity-based policy allows the s3:PutObject action`,
      },
    );
  });

  it("NoSuchBucket for an object in a bucket that does not exist", async () => {
    const { s3 } = await setup();
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: "no-such-bucket-here", Key: "k" })))).toEqual(
      {
        name: "NoSuchBucket",
        status: 404,
        message: "The specified bucket does not exist",
      },
    );
  });

  it("x-amz-acl with ACLs disabled: only bucket-owner-full-control (§2.1)", async () => {
    const { s3 } = await setup();
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: "ok", Body: "x", ACL: "bucket-owner-full-control" }),
    );
    expect(
      await failure(
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "p", Body: "x", ACL: "public-read" })),
      ),
    ).toEqual({
      name: "AccessControlListNotSupported",
      status: 400,
      message: "The bucket does not allow ACLs",
    });
  });

  it("a key longer than 1,024 bytes is KeyTooLongError; user metadata over 2 KB is MetadataTooLarge", async () => {
    const { s3 } = await setup();
    expect(
      await failure(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "k".repeat(1025), Body: "x" }))),
    ).toEqual({
      name: "KeyTooLongError",
      status: 400,
      message: "Your key is too long",
    });
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({ Bucket: BUCKET, Key: "m", Body: "x", Metadata: { big: "v".repeat(2100) } }),
        ),
      ),
    ).toEqual({
      name: "MetadataTooLarge",
      status: 400,
      message: "Your metadata headers exceed the maximum allowed metadata size.",
    });
  });
});

describe("checksums and Content-MD5 (§2.6)", () => {
  it("verifies x-amz-checksum-* values: BadDigest on mismatch, InvalidRequest when malformed", async () => {
    const { s3 } = await setup();
    // "123456789": the check values the checksum specifications publish.
    const good = {
      CRC32: "y/Q5Jg==",
      CRC32C: "4waSgw==",
      CRC64NVME: "rosUhgp5mIg=",
      SHA1: "98O8HYCOBHMq32eZZczDTKeuNEE=",
      SHA256: "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
    };
    for (const [alg, value] of Object.entries(good)) {
      const put = await s3.send(
        new PutObjectCommand({
          Bucket: BUCKET,
          Key: `ck-${alg}`,
          Body: "123456789",
          [`Checksum${alg}`]: value,
        }),
      );
      expect((put as unknown as Record<string, unknown>)[`Checksum${alg}`]).toBe(value);
      const got = await s3.send(
        new GetObjectCommand({ Bucket: BUCKET, Key: `ck-${alg}`, ChecksumMode: "ENABLED" }),
      );
      expect((got as unknown as Record<string, unknown>)[`Checksum${alg}`]).toBe(value);
    }
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({ Bucket: BUCKET, Key: "bad", Body: "123456789", ChecksumCRC32: "z/Q5Jg==" }),
        ),
      ),
    ).toEqual({
      name: "BadDigest",
      status: 400,
      message: "The CRC32 you specified did not match the calculated checksum.",
    });
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: "bad",
            Body: "123456789",
            ChecksumSHA256: "GeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
          }),
        ),
      ),
    ).toEqual({
      name: "BadDigest",
      status: 400,
      message: "The SHA256 you specified did not match the calculated checksum.",
    });
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({ Bucket: BUCKET, Key: "bad", Body: "123456789", ChecksumCRC32: "y/Q5Jh==" }),
        ),
      ),
    ).toEqual({
      name: "InvalidRequest",
      status: 400,
      message: "Value for x-amz-checksum-crc32 header is invalid.",
    });
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({ Bucket: BUCKET, Key: "bad", Body: "123456789", ChecksumCRC32: "toolong=" }),
        ),
      ),
    ).toEqual({
      name: "InvalidRequest",
      status: 400,
      message: "Value for x-amz-checksum-crc32 header is invalid.",
    });
    // Nothing was stored by the failed uploads.
    expect((await failure(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "bad" })))).status).toBe(404);
  });

  it("verifies Content-MD5: BadDigest on mismatch, InvalidDigest when malformed", async () => {
    const { s3 } = await setup();
    const right = createHash("md5").update("abc").digest("base64");
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "m", Body: "abc", ContentMD5: right }));
    const wrong = createHash("md5").update("abd").digest("base64");
    expect(
      await failure(
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "m", Body: "abc", ContentMD5: wrong })),
      ),
    ).toEqual({
      name: "BadDigest",
      status: 400,
      message: "The Content-MD5 you specified did not match what we received.",
    });
    expect(
      await failure(
        s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "m", Body: "abc", ContentMD5: "nope" })),
      ),
    ).toEqual({
      name: "InvalidDigest",
      status: 400,
      message: "The Content-MD5 you specified was invalid.",
    });
  });
});

describe("DeleteObject, versions and DeleteObjects", () => {
  it("DeleteObject answers 204 and removes the key, existing or not", async () => {
    const { s3 } = await setup();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "d", Body: "x" }));
    const del = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "d" }));
    expect(del.$metadata.httpStatusCode).toBe(204);
    expect((await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "d" })))).name).toBe(
      "NoSuchKey",
    );
    expect(
      (await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "never" }))).$metadata.httpStatusCode,
    ).toBe(204);
  });

  it("versioned buckets keep versions and stack delete markers", async () => {
    const { s3 } = await setup();
    await s3.send(
      new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }),
    );
    const v1 = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "v", Body: "one" }));
    const v2 = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "v", Body: "two" }));
    expect(v1.VersionId).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(v2.VersionId).not.toBe(v1.VersionId);
    expect(await text(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "v" })))).toBe("two");
    expect(
      await text(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "v", VersionId: v1.VersionId }))),
    ).toBe("one");

    const del = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "v" }));
    expect(del.DeleteMarker).toBe(true);
    expect(del.VersionId).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "v" })))).toEqual({
      name: "NoSuchKey",
      status: 404,
      message: "The specified key does not exist.",
    });
    expect(
      await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "v", VersionId: del.VersionId }))),
    ).toEqual({
      name: "MethodNotAllowed",
      status: 405,
      message: "The specified method is not allowed against this resource.",
    });
    expect(
      await failure(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "v", VersionId: "A".repeat(32) }))),
    ).toEqual({
      name: "NoSuchVersion",
      status: 404,
      message: "The specified version does not exist.",
    });

    const list = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET }));
    expect(list.Versions?.map((v) => [v.VersionId, v.IsLatest])).toEqual([
      [v2.VersionId, false],
      [v1.VersionId, false],
    ]);
    expect(list.DeleteMarkers?.map((m) => [m.Key, m.VersionId, m.IsLatest])).toEqual([
      ["v", del.VersionId, true],
    ]);
    expect((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))).KeyCount).toBe(0);

    // Removing the marker brings the object back; removing a version deletes it for good.
    const gone = await s3.send(
      new DeleteObjectCommand({ Bucket: BUCKET, Key: "v", VersionId: del.VersionId }),
    );
    expect(gone.DeleteMarker).toBe(true);
    expect(await text(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "v" })))).toBe("two");
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "v", VersionId: v2.VersionId }));
    expect(await text(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "v" })))).toBe("one");
  });

  it("ListObjectVersions pages with key-marker and version-id-marker", async () => {
    const { s3 } = await setup();
    await s3.send(
      new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } }),
    );
    for (const body of ["1", "2", "3"])
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "a", Body: body }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "b", Body: "b" }));
    const seen: string[] = [];
    let km: string | undefined;
    let vm: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await s3.send(
        new ListObjectVersionsCommand({ Bucket: BUCKET, MaxKeys: 2, KeyMarker: km, VersionIdMarker: vm }),
      );
      for (const v of page.Versions ?? []) seen.push(`${v.Key}:${v.VersionId}`);
      if (!page.IsTruncated) break;
      km = page.NextKeyMarker;
      vm = page.NextVersionIdMarker;
    }
    expect(seen).toHaveLength(4);
    expect(new Set(seen).size).toBe(4);
    expect(seen[3]!.startsWith("b:")).toBe(true);
  });

  it("DeleteObjects deletes many keys, reports per-key errors, and is quiet when asked", async () => {
    const { sim, s3 } = await setup();
    for (const k of ["a", "b", "keep/c"])
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: k, Body: k }));
    const out = await s3.send(
      new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: "a" }, { Key: "zzz" }] } }),
    );
    expect(out.Deleted?.map((d) => d.Key)).toEqual(["a", "zzz"]);
    expect(out.Errors ?? []).toEqual([]);

    const limited = await userClient(sim, "deleter", [
      { Effect: "Allow", Action: "s3:DeleteObject", Resource: `arn:aws:s3:::${BUCKET}/*` },
      { Effect: "Deny", Action: "s3:DeleteObject", Resource: `arn:aws:s3:::${BUCKET}/keep/*` },
    ]);
    const mixed = await limited.send(
      new DeleteObjectsCommand({
        Bucket: BUCKET,
        Delete: { Quiet: true, Objects: [{ Key: "b" }, { Key: "keep/c" }] },
      }),
    );
    expect(mixed.Deleted ?? []).toEqual([]);
    expect(mixed.Errors).toEqual([
      {
        Key: "keep/c",
        Code: "AccessDenied",
        Message: `User: arn:aws:iam::${sim.account.accountId}:user/deleter is not authorized to perform: s3:DeleteObject on resource: "arn:aws:s3:::${BUCKET}/keep/c" with an explicit deny in an identity-based policy`,
      },
    ]);
    const left = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(left.Contents?.map((c) => c.Key)).toEqual(["keep/c"]);
  });

  it("DeleteObjects without Content-MD5 or a checksum is InvalidRequest", async () => {
    const { s3 } = await setup();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "a", Body: "a" }));
    const client = new S3Client({ ...(await plainConfig(s3)), forcePathStyle: true });
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { headers: Record<string, string> };
        for (const h of Object.keys(req.headers))
          if (h.startsWith("x-amz-checksum-") || h === "x-amz-sdk-checksum-algorithm" || h === "content-md5")
            delete req.headers[h];
        return next(args);
      },
      { step: "build", priority: "low", name: "dropChecksums" },
    );
    expect(
      await failure(
        client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: "a" }] } })),
      ),
    ).toEqual({
      name: "InvalidRequest",
      status: 400,
      message: "Missing required header for this request: Content-Md5",
    });
  });
});

/** The config a client was made with, reusable for another client (same handler and credentials). */
async function plainConfig(s3: S3Client) {
  return {
    region: await s3.config.region(),
    credentials: await s3.config.credentials(),
    requestHandler: s3.config.requestHandler,
  };
}

describe("listings", () => {
  async function fill() {
    const ctx = await setup();
    for (const k of ["a.txt", "dir/one", "dir/two", "dir/sub/three", "other/x", "z"])
      await ctx.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: k, Body: k }));
    return ctx;
  }

  it("ListObjectsV2: prefix, delimiter and CommonPrefixes", async () => {
    const { s3 } = await fill();
    const top = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Delimiter: "/" }));
    expect(top.Contents?.map((c) => c.Key)).toEqual(["a.txt", "z"]);
    expect(top.CommonPrefixes?.map((c) => c.Prefix)).toEqual(["dir/", "other/"]);
    expect(top.KeyCount).toBe(4);
    const dir = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "dir/", Delimiter: "/" }));
    expect(dir.Contents?.map((c) => c.Key)).toEqual(["dir/one", "dir/two"]);
    expect(dir.CommonPrefixes?.map((c) => c.Prefix)).toEqual(["dir/sub/"]);
    expect(dir.Contents?.[0]).toMatchObject({
      Size: 7,
      StorageClass: "STANDARD",
      ETag: `"${md5("dir/one")}"`,
    });
  });

  it("ListObjectsV2 pages with max-keys and continuation tokens; start-after; fetch-owner", async () => {
    const { s3, acct } = await fill();
    const keys: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 2, ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((c) => c.Key!));
      token = page.NextContinuationToken;
      pages++;
      expect(page.IsTruncated).toBe(token !== undefined);
    } while (token);
    expect(pages).toBe(3);
    expect(keys).toEqual(["a.txt", "dir/one", "dir/sub/three", "dir/two", "other/x", "z"]);
    const after = await s3.send(
      new ListObjectsV2Command({ Bucket: BUCKET, StartAfter: "dir/two", FetchOwner: true }),
    );
    expect(after.Contents?.map((c) => c.Key)).toEqual(["other/x", "z"]);
    expect(after.Contents?.[0]?.Owner?.ID).toBe(canonicalId(acct));
    expect(
      await failure(s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: "bogus" }))),
    ).toEqual({
      name: "InvalidArgument",
      status: 400,
      message: "The continuation token provided is incorrect",
    });
  });

  it("ListObjectsV2 with encoding-type=url carries keys XML cannot", async () => {
    const { s3 } = await setup();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "ctl\u0001 key", Body: "x" }));
    const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, EncodingType: "url" }));
    expect(out.EncodingType).toBe("url");
    expect(out.Contents?.map((c) => c.Key)).toEqual(["ctl%01+key"]);
  });

  it("ListObjects (v1) pages with marker and NextMarker", async () => {
    const { s3 } = await fill();
    const first = await s3.send(new ListObjectsCommand({ Bucket: BUCKET, MaxKeys: 2, Delimiter: "/" }));
    expect(first.Contents?.map((c) => c.Key)).toEqual(["a.txt"]);
    expect(first.CommonPrefixes?.map((c) => c.Prefix)).toEqual(["dir/"]);
    expect(first.IsTruncated).toBe(true);
    expect(first.NextMarker).toBe("dir/");
    const second = await s3.send(
      new ListObjectsCommand({ Bucket: BUCKET, Delimiter: "/", Marker: first.NextMarker }),
    );
    expect(second.CommonPrefixes?.map((c) => c.Prefix)).toEqual(["other/"]);
    expect(second.Contents?.map((c) => c.Key)).toEqual(["z"]);
    expect(second.Contents?.[0]?.Owner?.ID).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("tagging and ACL", () => {
  it("Put/Get/DeleteObjectTagging; tag rules", async () => {
    const { s3 } = await setup();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "t", Body: "x", Tagging: "a=1" }));
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: "t" }))).TagSet).toEqual([
      { Key: "a", Value: "1" },
    ]);
    await s3.send(
      new PutObjectTaggingCommand({
        Bucket: BUCKET,
        Key: "t",
        Tagging: {
          TagSet: [
            { Key: "b", Value: "2" },
            { Key: "c", Value: "" },
          ],
        },
      }),
    );
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: "t" }))).TagSet).toEqual([
      { Key: "b", Value: "2" },
      { Key: "c", Value: "" },
    ]);
    const del = await s3.send(new DeleteObjectTaggingCommand({ Bucket: BUCKET, Key: "t" }));
    expect(del.$metadata.httpStatusCode).toBe(204);
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: "t" }))).TagSet ?? []).toEqual(
      [],
    );
    const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: "v" }));
    expect(
      await failure(
        s3.send(new PutObjectTaggingCommand({ Bucket: BUCKET, Key: "t", Tagging: { TagSet: eleven } })),
      ),
    ).toEqual({
      name: "InvalidTag",
      status: 400,
      message: "Object tags cannot be greater than 10",
    });
    expect(
      await failure(s3.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: "none" }))),
    ).toMatchObject({
      name: "NoSuchKey",
      status: 404,
    });
  });

  it("GetObjectAcl: the owner with FULL_CONTROL; canned ACLs where ACLs are enabled", async () => {
    const { s3, acct } = await setup();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "acl", Body: "x" }));
    const acl = await s3.send(new GetObjectAclCommand({ Bucket: BUCKET, Key: "acl" }));
    expect(acl.Owner?.ID).toBe(canonicalId(acct));
    expect(acl.Grants).toEqual([
      { Grantee: { ID: canonicalId(acct), Type: "CanonicalUser" }, Permission: "FULL_CONTROL" },
    ]);

    await s3.send(
      new PutBucketOwnershipControlsCommand({
        Bucket: BUCKET,
        OwnershipControls: { Rules: [{ ObjectOwnership: "ObjectWriter" }] },
      }),
    );
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: BUCKET,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: false,
          IgnorePublicAcls: false,
          BlockPublicPolicy: true,
          RestrictPublicBuckets: true,
        },
      }),
    );
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "pub", Body: "x", ACL: "public-read" }));
    const pub = await s3.send(new GetObjectAclCommand({ Bucket: BUCKET, Key: "pub" }));
    expect(pub.Grants?.[1]).toEqual({
      Grantee: { Type: "Group", URI: "http://acs.amazonaws.com/groups/global/AllUsers" },
      Permission: "READ",
    });
  });
});

describe("anonymous and presigned access over HTTP (§2.4)", () => {
  it("an unsigned GET on a default bucket is 403 AccessDenied with AWS's XML body", async () => {
    const { sim, s3 } = await setup();
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "secret.txt", Body: "top secret" }));
    server = await serve(sim, { port: 0 });
    const res = await fetch(`${server.url}/${BUCKET}/secret.txt`);
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toBe("application/xml");
    const body = await res.text();
    expect(body).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>AccessDenied<\/Code><Message>Access Denied<\/Message><RequestId>[^<]+<\/RequestId><HostId>[^<]+<\/HostId><\/Error>$/,
    );
  });

  it("a presigned GET URL works until it expires, then 403 Request has expired", async () => {
    let now = Date.parse("2026-06-01T12:00:00Z");
    const { sim, s3 } = await setup({ clock: () => new Date(now) });
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "shared.txt", Body: "for your eyes" }));
    server = await serve(sim, { port: 0 });
    const client = new S3Client({
      region: "us-east-1",
      endpoint: server.url,
      forcePathStyle: true,
      credentials: sim.credentials(),
      systemClockOffset: now - Date.now(),
    });
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: BUCKET, Key: "shared.txt" }), {
      expiresIn: 60,
      signingDate: new Date(now),
    });
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "shared.txt" }));
    expect(head.ContentLength).toBe("for your eyes".length);
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("for your eyes");
    now += 61_000;
    const late = await fetch(url);
    expect(late.status).toBe(403);
    const body = await late.text();
    expect(body).toContain("<Code>AccessDenied</Code><Message>Request has expired</Message>");
  });

  it("a public bucket policy lets anonymous callers read an SSE-S3 object", async () => {
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
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/*` },
          ],
        }),
      }),
    );
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "open.txt", Body: "public" }));
    server = await serve(sim, { port: 0 });
    const res = await fetch(`${server.url}/${BUCKET}/open.txt`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("public");
    // Without s3:ListBucket, anonymous callers learn nothing about missing keys.
    expect((await fetch(`${server.url}/${BUCKET}/missing.txt`)).status).toBe(403);
  });
});
