import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { connect } from "node:net";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServeHandle, startServe, tempDir } from "./helpers/cli.js";
import { signer } from "./helpers/sign.js";

/**
 * Bad input never crashes or hangs the simulator: 10,000 random and mutated requests to
 * `kmslab sim serve` — KMS, CloudTrail, IAM, STS and S3 (malformed XML, bad bucket names, hostile
 * keys, bad ranges, checksums and chunked bodies), most of them validly signed after mutation, so
 * they reach the codecs, validation and providers — must each get a well-formed AWS error or
 * success, never a 5xx, nothing may be written outside the data directory, and the server must
 * still answer afterwards. The generator is seeded: a failure names the request.
 */
const TOTAL = 10_000;
const SEED = Number(process.env.FUZZ_SEED ?? 20261128);

function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const KMS_OPS = [
  "CreateKey",
  "DescribeKey",
  "ListKeys",
  "CreateAlias",
  "UpdateAlias",
  "DeleteAlias",
  "ListAliases",
  "GetKeyPolicy",
  "PutKeyPolicy",
  "ListKeyPolicies",
  "Encrypt",
  "Decrypt",
  "GenerateDataKey",
  "GenerateDataKeyWithoutPlaintext",
  "ScheduleKeyDeletion",
  "CancelKeyDeletion",
  "EnableKey",
  "DisableKey",
  "TagResource",
  "UntagResource",
  "ListResourceTags",
  "CreateGrant",
  "RevokeGrant",
  "ReEncrypt",
  "NoSuchOperation",
] as const;
const IAM_OPS = [
  "CreateRole",
  "GetRole",
  "DeleteRole",
  "ListRoles",
  "PutRolePolicy",
  "GetRolePolicy",
  "DeleteRolePolicy",
  "AttachRolePolicy",
  "CreatePolicy",
  "GetPolicy",
  "CreateUser",
  "GetUser",
  "DeleteUser",
  "CreateAccessKey",
  "ListAccessKeys",
  "TagRole",
  "UpdateAssumeRolePolicy",
  "Bogus",
] as const;
const STS_OPS = ["GetCallerIdentity", "AssumeRole", "GetSessionToken"] as const;
const TRAIL_OPS = [
  "CreateTrail",
  "GetTrail",
  "DescribeTrails",
  "DeleteTrail",
  "StartLogging",
  "StopLogging",
  "GetTrailStatus",
  "PutEventSelectors",
  "GetEventSelectors",
  "LookupEvents",
  "AddTags",
  "ListTags",
  "Nope",
] as const;
const TRAIL_FIELDS = [
  "Name",
  "S3BucketName",
  "S3KeyPrefix",
  "TrailName",
  "EventSelectors",
  "AdvancedEventSelectors",
  "LookupAttributes",
  "StartTime",
  "EndTime",
  "MaxResults",
  "NextToken",
  "TagsList",
  "ResourceId",
  "trailNameList",
];

/** A bucket the fuzzer's requests can reach into (created before the run), and hostile names. */
const FUZZ_BUCKET = "kmslab-fuzz-bucket";
const BUCKETS = [
  FUZZ_BUCKET,
  FUZZ_BUCKET,
  "no-such-bucket-here",
  "A",
  "ab",
  "x".repeat(64),
  "bad..name",
  "192.168.0.1",
  "xn--bucket",
  "%2e%2e",
  "..",
];
const KEYS = [
  "reports/secret-report.txt",
  "../../../../etc/passwd",
  "%2e%2e/%2e%2e/%2e%2e/escape",
  "/etc/passwd",
  "a%00b",
  "k".repeat(1024),
  "k".repeat(1025),
  "%F0%9F%94%91/cl%C3%A9%20%C3%BCn%C3%AFcode",
  "dir//double",
  "",
  "%",
  "%zz",
];
const SUBRESOURCES = [
  "",
  "",
  "policy",
  "policyStatus",
  "publicAccessBlock",
  "encryption",
  "tagging",
  "acl",
  "location",
  "versioning",
  "versions",
  "delete",
  "list-type=2",
  "list-type=2&max-keys=-1",
  "list-type=2&continuation-token=%ff",
  "list-type=2&prefix=a&delimiter=%00",
  "ownershipControls",
  "uploads",
  "versionId=null",
  "partNumber=0",
  "bogus=1",
];

function xmlBody(r: Rng): string {
  switch (r.int(9)) {
    case 0:
      return `<Delete><Object><Key>${r.pick(KEYS)}</Key></Object><Quiet>${r.pick(["true", "maybe"])}</Quiet></Delete>`;
    case 1:
      return `<Tagging><TagSet><Tag><Key>${randomString(r).slice(0, 200)}</Key><Value>v</Value></Tag></TagSet></Tagging>`;
    case 2:
      return `<PublicAccessBlockConfiguration><BlockPublicAcls>${r.pick(["true", "false", "x"])}</BlockPublicAcls></PublicAccessBlockConfiguration>`;
    case 3:
      return `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>${r.pick(["aws:kms", "AES256", "rot13"])}</SSEAlgorithm><KMSMasterKeyID>${randomString(r).slice(0, 100)}</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
    case 4:
      return '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Tagging>&lol2;</Tagging>';
    case 5:
      return "<a>".repeat(r.pick([10, 5000, 50_000]));
    case 6:
      return `<CreateBucketConfiguration><LocationConstraint>${r.pick(["us-east-1", "EU", "mars-1", ""])}</LocationConstraint></CreateBucketConfiguration>`;
    case 7:
      return randomString(r);
    default:
      return mutateBytes(r, "<Delete><Object><Key>k</Key></Object></Delete>");
  }
}

function s3Request(r: Rng): FuzzRequest {
  const method = r.pick(["GET", "GET", "PUT", "PUT", "HEAD", "DELETE", "POST", "PATCH"]);
  const bucket = r.pick(BUCKETS);
  const key = r.int(3) === 0 ? undefined : r.pick(KEYS);
  const sub = r.pick(SUBRESOURCES);
  const path = `/${bucket}${key === undefined ? "" : `/${key}`}${sub ? `?${sub}` : ""}`;
  const headers: Record<string, string> = {};
  let body = "";
  if (method === "PUT" || method === "POST") {
    body = sub === "policy" ? randomString(r) : r.int(2) ? xmlBody(r) : "x".repeat(r.int(2048));
    if (r.int(4) === 0)
      headers["content-md5"] = r.pick(["", "AAAA", createHash("md5").update(body).digest("base64")]);
    if (r.int(4) === 0) headers["x-amz-checksum-crc32"] = r.pick(["", "AAAAAA==", "not base64!"]);
    if (r.int(5) === 0) headers["x-amz-server-side-encryption"] = r.pick(["aws:kms", "AES256", "rot13"]);
    if (r.int(6) === 0)
      headers["x-amz-server-side-encryption-aws-kms-key-id"] = randomString(r).replace(/[^\x21-\x7e]/g, "");
    if (r.int(6) === 0)
      headers["x-amz-server-side-encryption-context"] = r.pick([
        "e30=",
        "!!",
        Buffer.from('{"a":1}').toString("base64"),
      ]);
    if (r.int(8) === 0) headers["x-amz-acl"] = r.pick(["public-read", "bucket-owner-full-control", "bogus"]);
    if (r.int(8) === 0) {
      headers["content-encoding"] = "aws-chunked";
      headers["x-amz-decoded-content-length"] = r.pick(["5", "-1", "99999999999", "x"]);
      body = r.pick([
        "5\r\nhello\r\n0\r\n\r\n",
        "zz\r\n",
        "5;chunk-signature=00\r\nhel",
        "0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
      ]);
    }
  }
  if (method === "GET" && r.int(4) === 0)
    headers.range = r.pick([
      "bytes=0-0",
      "bytes=5-2",
      "bytes=-0",
      "bytes=999999-",
      "bytes=a-b",
      "bytes=0-1,3-4",
      "items=0-1",
    ]);
  if (r.int(10) === 0) headers["x-amz-server-side-encryption-customer-algorithm"] = "AES256";
  return { method, path, headers, body, service: "s3" };
}

const FIELDS = [
  "KeyId",
  "Plaintext",
  "CiphertextBlob",
  "EncryptionContext",
  "AliasName",
  "TargetKeyId",
  "Policy",
  "PolicyName",
  "KeySpec",
  "NumberOfBytes",
  "PendingWindowInDays",
  "Tags",
  "TagKeys",
  "Description",
  "KeyUsage",
  "Limit",
  "Marker",
  "GrantId",
  "Operations",
  "GranteePrincipal",
  "BypassPolicyLockoutSafetyCheck",
  "DestinationKeyId",
];
const QUERY_FIELDS = [
  "RoleName",
  "AssumeRolePolicyDocument",
  "PolicyName",
  "PolicyDocument",
  "PolicyArn",
  "UserName",
  "Path",
  "MaxItems",
  "Marker",
  "RoleArn",
  "RoleSessionName",
  "DurationSeconds",
  "Description",
  "MaxSessionDuration",
  "AccessKeyId",
  "Tags.member.1.Key",
  "Tags.member.1.Value",
  "Tags.member.99999.Key",
  "PolicyArns.member.1.arn",
];

function randomString(r: Rng): string {
  switch (r.int(8)) {
    case 0:
      return "";
    case 1:
      return "x".repeat(r.pick([1, 255, 256, 4097, 70_000, 140_000]));
    case 2:
      return "alias/" + "a".repeat(r.int(300));
    case 3:
      return String.fromCharCode(...Array.from({ length: 1 + r.int(40) }, () => r.int(0xffff)));
    case 4:
      return r.pick([
        "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000",
        "arn:",
        "alias/aws/s3",
        "../../etc/passwd",
        "%00",
        "\u0000",
      ]);
    case 5:
      return Buffer.from(Array.from({ length: r.int(64) }, () => r.int(256))).toString("base64");
    case 6:
      return JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: r.pick(["Allow", "Deny", "Maybe"]),
            Principal: r.pick(["*", { AWS: "x" }, {}]),
            Action: "kms:*",
            Resource: "*",
          },
        ],
      });
    default:
      return "r" + r.int(1e9).toString(36);
  }
}

function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 3 ? 4 : 8)) {
    case 0:
      return r.int(2) ? r.int(1e6) : -r.int(1e12);
    case 1:
      return r.next() < 0.5;
    case 2:
      return null;
    case 3:
      return randomString(r);
    case 4:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    case 5:
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [randomString(r).slice(0, 20), randomValue(r, depth + 1)]),
      );
    case 6:
      return 1e308 * 10; // Infinity serialises as null
    default:
      return r.pick(["AES_256", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "default", 7, 30]);
  }
}

function mutateBytes(r: Rng, text: string): string {
  const chars = [...text];
  const n = 1 + r.int(5);
  for (let i = 0; i < n && chars.length > 0; i++) {
    const at = r.int(chars.length);
    switch (r.int(3)) {
      case 0:
        chars[at] = String.fromCharCode(r.int(256));
        break;
      case 1:
        chars.splice(at, 1);
        break;
      default:
        chars.splice(at, 0, r.pick(["{", "}", '"', ",", ":", "[", "&", "=", "%", "\\", "\u0000"]));
    }
  }
  return chars.join("");
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  service: string;
}

function generate(r: Rng): FuzzRequest {
  const kind = r.int(14);
  if (kind >= 10 && kind < 13) return s3Request(r);
  if (kind === 13) {
    const op = r.pick(TRAIL_OPS);
    const input: Record<string, unknown> = {};
    for (let i = r.int(5); i > 0; i--) input[r.pick(TRAIL_FIELDS)] = randomValue(r);
    if (op === "CreateTrail" && r.int(2))
      Object.assign(input, { Name: "fuzz-trail", S3BucketName: FUZZ_BUCKET });
    let body = JSON.stringify(input);
    if (r.int(8) === 0) body = mutateBytes(r, body);
    return {
      method: "POST",
      path: "/",
      headers: {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": `CloudTrail_20131101.${op}`,
      },
      body,
      service: "cloudtrail",
    };
  }
  if (kind < 5) {
    const op = r.pick(KMS_OPS);
    const input: Record<string, unknown> = {};
    for (let i = r.int(5); i > 0; i--) input[r.pick(FIELDS)] = randomValue(r);
    let body = JSON.stringify(input);
    const shape = r.int(10);
    if (shape === 0) body = mutateBytes(r, body);
    else if (shape === 1) body = "[".repeat(r.pick([10, 5000, 100_000]));
    else if (shape === 2) body = body.slice(0, r.int(body.length + 1));
    else if (shape === 3) body = "";
    return {
      method: r.int(20) === 0 ? r.pick(["GET", "PUT", "DELETE"]) : "POST",
      path: r.int(20) === 0 ? "/" + randomString(r).replace(/[^\w/.-]/g, "") : "/",
      headers: {
        "content-type":
          r.int(15) === 0 ? r.pick(["text/plain", "application/xml", ""]) : "application/x-amz-json-1.1",
        "x-amz-target":
          r.int(15) === 0
            ? r.pick(["", "TrentService", "Nope.CreateKey", "TrentService.", "TrentService.constructor"])
            : `TrentService.${op}`,
      },
      body,
      service: "kms",
    };
  }
  const sts = kind >= 8;
  const op = sts ? r.pick(STS_OPS) : r.pick(IAM_OPS);
  const params: string[] = [`Action=${op}`, `Version=${sts ? "2011-06-15" : "2010-05-08"}`];
  for (let i = r.int(5); i > 0; i--) {
    const v = randomValue(r);
    params.push(
      `${r.pick(QUERY_FIELDS)}=${encodeURIComponent((typeof v === "string" ? v : (JSON.stringify(v) ?? "")).replace(/[\uD800-\uDFFF]/g, "?"))}`,
    );
  }
  let body = params.join("&");
  if (r.int(8) === 0) body = mutateBytes(r, body);
  return {
    method: "POST",
    path: "/",
    headers: {
      "content-type":
        r.int(20) === 0 ? "application/json" : "application/x-www-form-urlencoded; charset=utf-8",
    },
    body,
    service: sts ? "sts" : "iam",
  };
}

describe("fuzzing kmslab sim serve", () => {
  let server: ServeHandle;
  const work = tempDir("kmslab-fuzz-");
  const data = join(work, "sim");
  beforeAll(async () => {
    server = await startServe(["--sim-data", data], { cwd: work });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it(`answers ${TOTAL} random and mutated requests with well-formed errors, no 5xx, and keeps answering`, async () => {
    const creds = {
      accessKeyId: server.env.AWS_ACCESS_KEY_ID!,
      secretAccessKey: server.env.AWS_SECRET_ACCESS_KEY!,
    };
    const url = new URL(server.endpoint);
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    {
      const made = await signer("s3", creds).sign({
        method: "PUT",
        protocol: "http:",
        hostname: url.hostname,
        port: Number(url.port),
        path: `/${FUZZ_BUCKET}`,
        query: {},
        headers: { host: url.host, "x-amz-content-sha256": createHash("sha256").update("").digest("hex") },
      });
      const res = await fetch(`${server.endpoint}/${FUZZ_BUCKET}`, { method: "PUT", headers: made.headers });
      expect(res.status).toBe(200);
    }
    const r = rng(SEED);
    const failures: string[] = [];
    const statuses = new Map<number, number>();

    // Generated up front, so the sequence does not depend on the order in which answers arrive.
    const plan = Array.from({ length: TOTAL }, () => {
      const req = generate(r);
      const auth = r.int(20);
      return { req, auth, junk: randomString(r).replace(/[^\x20-\x7e]/g, "") };
    });

    const send = async (i: number): Promise<void> => {
      const { req, auth, junk } = plan[i]!;
      const body = Buffer.from(req.body, "utf8");
      const headers: Record<string, string> = { host: url.host, ...req.headers };
      if (req.service === "s3" && auth >= 3)
        headers["x-amz-content-sha256"] =
          auth === 4 ? "UNSIGNED-PAYLOAD" : createHash("sha256").update(body).digest("hex");
      if (auth >= 3) {
        const signed = await signer(req.service, creds).sign({
          method: req.method,
          protocol: "http:",
          hostname: url.hostname,
          port: Number(url.port),
          path: req.path.split("?")[0]!,
          query: Object.fromEntries(new URLSearchParams(req.path.split("?")[1] ?? "")),
          headers,
          body,
        });
        Object.assign(headers, signed.headers);
        if (auth === 3)
          headers.authorization = headers.authorization!.replace(/Signature=[0-9a-f]{4}/, "Signature=0000");
      } else if (auth === 1) {
        headers.authorization = junk;
      }
      const res = await new Promise<{ status: number; type: string; text: string }>((done, fail) => {
        const h = httpRequest(
          { host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent },
          (resp) => {
            const chunks: Buffer[] = [];
            resp.on("data", (c) => chunks.push(c));
            resp.on("end", () =>
              done({
                status: resp.statusCode ?? 0,
                type: String(resp.headers["content-type"] ?? ""),
                text: Buffer.concat(chunks).toString(),
              }),
            );
          },
        );
        h.setTimeout(20_000, () => h.destroy(new Error("timed out")));
        h.on("error", fail);
        h.end(body);
      });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const summary = `#${i} ${req.method} ${req.service} ${req.path.slice(0, 120)} ${req.headers["x-amz-target"] ?? ""} ${req.body.slice(0, 200)} → ${res.status} ${res.text.slice(0, 300)}`;
      if (res.status >= 500 && !(res.status === 501 && /<Code>NotImplemented<\/Code>/.test(res.text)))
        failures.push(summary);
      else if (
        req.method === "HEAD" ||
        (req.service === "s3" && res.status < 300 && !res.type.includes("xml"))
      ) {
        // HEAD answers carry no body; objects come back in their own content type, 204s empty.
      } else if (res.type.includes("json")) {
        try {
          const parsed = JSON.parse(res.text || "{}");
          if (res.status >= 400 && typeof parsed.__type !== "string") failures.push(`no __type: ${summary}`);
        } catch {
          failures.push(`bad JSON: ${summary}`);
        }
      } else if (res.type.includes("xml")) {
        if (!res.text.startsWith("<?xml") || (res.status >= 400 && !/<Code>[^<]+<\/Code>/.test(res.text)))
          failures.push(`bad XML: ${summary}`);
      } else if (res.status !== 413 && res.status !== 400)
        failures.push(`unexpected content type ${res.type}: ${summary}`);
    };

    const concurrency = 8;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < TOTAL) await send(next++);
      }),
    );

    // Broken HTTP on a raw socket, and a body announced too large.
    for (const raw of [
      "GARBAGE\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n",
      "\u0000\u0001\u0002",
    ]) {
      const reply = await new Promise<string>((done) => {
        const socket = connect(Number(url.port), url.hostname, () => socket.write(raw));
        let text = "";
        socket.on("data", (d) => (text += d));
        socket.on("close", () => done(text));
        socket.on("error", () => done(text));
        socket.setTimeout(5_000, () => socket.destroy());
      });
      expect(reply).toMatch(/^HTTP\/1\.1 4\d\d/);
    }

    agent.destroy();
    expect(failures.slice(0, 10)).toEqual([]);
    // Whatever the keys were, every file the server wrote is inside its data directory.
    const outside: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (relative(data, path).startsWith("..")) outside.push(path);
      }
    };
    walk(work);
    expect(outside).toEqual([]);
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(TOTAL);
    // Some requests got through to succeed: the generator reaches the providers, not just the signature check.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(100);

    const alive = await fetch(server.endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.ListKeys" },
      body: "{}",
    });
    expect(alive.status).toBe(400);
    expect(await alive.json()).toMatchObject({ __type: "MissingAuthenticationTokenException" });
  }, 240_000);
});
