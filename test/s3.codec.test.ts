import {
  CreateBucketCommand,
  GetBucketCorsCommand,
  GetBucketTaggingCommand,
  HeadBucketCommand,
  PutBucketTaggingCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import type { SimRequest } from "../sim/core/types.js";
import { hostBucket, route } from "../sim/services/s3/codec.js";
import { Simulator } from "../sim/simulator.js";
import { failure } from "./helpers/errors.js";

/**
 * S3's wire layer: REST routing (path and virtual-hosted style, subresources, percent-decoded keys),
 * XML rendering checked through the real SDK's parser, and S3's error documents.
 */

const request = (
  method: string,
  rawPath: string,
  query: Record<string, string[]> = {},
  host = "localhost:4566",
): SimRequest => ({
  method,
  rawPath,
  query,
  headers: { host },
  body: new Uint8Array(0),
  scheme: "https",
  sourceIp: "203.0.113.9",
});

const text = (body: unknown) => new TextDecoder().decode(body as Uint8Array);

describe("routing", () => {
  it.each([
    ["GET", "/", {}, "ListBuckets"],
    ["PUT", "/bkt", {}, "CreateBucket"],
    ["DELETE", "/bkt", {}, "DeleteBucket"],
    ["HEAD", "/bkt", {}, "HeadBucket"],
    ["GET", "/bkt", {}, "ListObjects"],
    ["GET", "/bkt", { "list-type": ["2"], "x-id": ["ListObjectsV2"] }, "ListObjectsV2"],
    ["PUT", "/bkt", { policy: [""] }, "PutBucketPolicy"],
    ["GET", "/bkt", { policyStatus: [""] }, "GetBucketPolicyStatus"],
    ["DELETE", "/bkt", { publicAccessBlock: [""] }, "DeletePublicAccessBlock"],
    ["GET", "/bkt", { encryption: [""] }, "GetBucketEncryption"],
    ["PUT", "/bkt", { tagging: [""] }, "PutBucketTagging"],
    ["GET", "/bkt", { acl: [""] }, "GetBucketAcl"],
    ["PUT", "/bkt", { ownershipControls: [""] }, "PutBucketOwnershipControls"],
    ["GET", "/bkt", { versioning: [""] }, "GetBucketVersioning"],
    ["GET", "/bkt", { location: [""] }, "GetBucketLocation"],
    ["GET", "/bkt", { versions: [""] }, "ListObjectVersions"],
    ["POST", "/bkt", { delete: [""] }, "DeleteObjects"],
    ["GET", "/bkt", { uploads: [""] }, "ListMultipartUploads"],
    ["PUT", "/bkt/k", { "x-id": ["PutObject"] }, "PutObject"],
    ["GET", "/bkt/k", { versionId: ["null"], bogus: ["1"] }, "GetObject"],
    ["HEAD", "/bkt/k", {}, "HeadObject"],
    ["DELETE", "/bkt/k", {}, "DeleteObject"],
    ["GET", "/bkt/k", { tagging: [""] }, "GetObjectTagging"],
    ["GET", "/bkt/k", { acl: [""] }, "GetObjectAcl"],
    ["PUT", "/bkt/k", { partNumber: ["1"], uploadId: ["u"] }, "UploadPart"],
    ["POST", "/bkt/k", { uploads: [""] }, "CreateMultipartUpload"],
  ])("%s %s %j → %s", (method, path, query, operation) => {
    expect(route(request(method, path, query)).operation).toBe(operation);
  });

  it("decodes keys once, keeping spaces, +, unicode, // and ../ as sent", () => {
    const key = (raw: string) => route(request("GET", raw)).input.Key;
    expect(key("/bkt/a%20b+c")).toBe("a b+c");
    expect(key("/bkt/%F0%9F%94%91/cl%C3%A9")).toBe("🔑/clé");
    expect(key("/bkt/dir//double")).toBe("dir//double");
    expect(key("/bkt/../../etc/passwd")).toBe("../../etc/passwd");
    expect(key("/bkt/%2e%2e/x")).toBe("../x");
    expect(key("/bkt/a%2525")).toBe("a%25");
    expect(route(request("GET", "/bkt/")).input.Key).toBeUndefined();
  });

  it("takes the bucket from the Host header in virtual-hosted style", () => {
    expect(hostBucket("my.bucket.s3.us-east-1.amazonaws.com")).toBe("my.bucket");
    expect(hostBucket("bkt.s3.amazonaws.com")).toBe("bkt");
    expect(hostBucket("bkt.s3-eu-west-1.amazonaws.com")).toBe("bkt");
    expect(hostBucket("bkt.s3.dualstack.eu-west-1.amazonaws.com")).toBe("bkt");
    expect(hostBucket("bkt.localhost:4566")).toBe("bkt");
    expect(hostBucket("s3.us-east-1.amazonaws.com")).toBeUndefined();
    expect(hostBucket("s3.amazonaws.com")).toBeUndefined();
    expect(hostBucket("localhost:4566")).toBeUndefined();
    expect(hostBucket("127.0.0.1:4566")).toBeUndefined();
    const r = route(request("GET", "/some/key%20x", { tagging: [""] }, "bkt.localhost:9000"));
    expect(r).toMatchObject({
      operation: "GetObjectTagging",
      input: { Bucket: "bkt", Key: "some/key x", virtualHosted: true },
    });
    expect(route(request("GET", "/", {}, "bkt.s3.amazonaws.com")).operation).toBe("ListObjects");
  });
});

describe("answers on the wire", () => {
  it("renders errors as S3's <Error> document with RequestId, HostId and the request-id headers", async () => {
    const sim = Simulator.inMemory();
    const res = await sim.handle(request("GET", "/no-such-bucket-here", { tagging: [""] }));
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toBe("application/xml");
    const id = res.headers["x-amz-request-id"]!;
    expect(res.headers["x-amz-id-2"]).toMatch(/^[A-Za-z0-9+/=]{40,}$/);
    expect(text(res.body)).toBe(
      `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>` +
        `<BucketName>no-such-bucket-here</BucketName><RequestId>${id}</RequestId><HostId>${res.headers["x-amz-id-2"]}</HostId></Error>`,
    );
  });

  it("answers an unsigned request as the anonymous principal: 403 AccessDenied, AWS's body", async () => {
    const sim = Simulator.inMemory();
    const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: "anon-bucket" }));
    const res = await sim.handle(request("GET", "/anon-bucket", { acl: [""] }));
    expect(res.status).toBe(403);
    expect(res.headers["content-type"]).toBe("application/xml");
    expect(text(res.body)).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<Error><Code>AccessDenied<\/Code><Message>Access Denied<\/Message><RequestId>[^<]+<\/RequestId><HostId>[^<]+<\/HostId><\/Error>$/,
    );
    const anonymous = new S3Client({
      ...sim.clientConfig(),
      forcePathStyle: true,
      signer: { sign: async (r) => r },
    });
    expect(await failure(anonymous.send(new GetBucketTaggingCommand({ Bucket: "anon-bucket" })))).toEqual({
      name: "AccessDenied",
      status: 403,
      message: "Access Denied",
    });
  });

  it("leaves the body out of HEAD errors, so the SDK names them from the status", async () => {
    const sim = Simulator.inMemory();
    const res = await sim.handle(request("HEAD", "/no-such-bucket-here"));
    expect(res.status).toBe(404);
    expect((res.body as Uint8Array).length).toBe(0);
    const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
    expect(await failure(s3.send(new HeadBucketCommand({ Bucket: "no-such-bucket-here" })))).toMatchObject({
      name: "NotFound",
      status: 404,
    });
  });

  it("refuses methods S3 has no meaning for (405), undecodable paths (400) and unimplemented subresources (501)", async () => {
    const sim = Simulator.inMemory();
    const patch = await sim.handle(request("PATCH", "/bkt/k"));
    expect(patch.status).toBe(405);
    expect(text(patch.body)).toContain(
      "<Code>MethodNotAllowed</Code><Message>The specified method is not allowed against this resource.</Message><Method>PATCH</Method><ResourceType>OBJECT</ResourceType>",
    );
    const bad = await sim.handle(request("GET", "/bkt/%zz"));
    expect(bad.status).toBe(400);
    expect(text(bad.body)).toContain(
      "<Code>InvalidURI</Code><Message>Couldn&apos;t parse the specified URI.</Message><URI>/bkt/%zz</URI>",
    );
    const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: "cors-bucket" }));
    expect(await failure(s3.send(new GetBucketCorsCommand({ Bucket: "cors-bucket" })))).toEqual({
      name: "NotImplemented",
      status: 501,
      message: "A header you provided implies functionality that is not implemented.",
    });
  });

  it("works with the SDK's default virtual-hosted addressing", async () => {
    const sim = Simulator.inMemory();
    const s3 = new S3Client(sim.clientConfig());
    const created = await s3.send(new CreateBucketCommand({ Bucket: "vhost.bucket-1" }));
    expect(created.Location).toBe("/vhost.bucket-1");
    await s3.send(
      new PutBucketTaggingCommand({
        Bucket: "vhost.bucket-1",
        Tagging: { TagSet: [{ Key: "k", Value: "v & w" }] },
      }),
    );
    const got = await s3.send(new GetBucketTaggingCommand({ Bucket: "vhost.bucket-1" }));
    expect(got.TagSet).toEqual([{ Key: "k", Value: "v & w" }]);
    expect(got.$metadata.requestId).toBeTruthy();
    expect(got.$metadata.extendedRequestId).toBeTruthy();
  });

  it("routes a virtual-hosted request by a *.localhost Host", async () => {
    const sim = Simulator.inMemory();
    const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: "local-host-bucket" }));
    const res = await sim.handle(request("GET", "/", { acl: [""] }, "local-host-bucket.localhost:4566"));
    // Unsigned: the bucket was found (403, not 404).
    expect(res.status).toBe(403);
  });
});
