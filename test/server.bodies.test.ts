import { type ClientRequest, type IncomingMessage, request } from "node:http";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatAmzDate } from "../sim/auth/sigv4.js";
import { type RunningServer, serve } from "../sim/server.js";
import { Simulator } from "../sim/simulator.js";

/**
 * Request bodies over HTTP (`kmslab sim serve`): a request that cannot be signed by any access key
 * of the account is answered from its headers, before its body is read; bodies held at once are
 * bounded, requests with no signature sharing a smaller part, and a request past the budget is
 * answered at once with 503 SlowDown. Before, every body (up to 64 MiB) was read into memory before
 * its signature was looked at, with no overall cap (20 such PUTs took the server to 1.1 GB).
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const MiB = 1024 * 1024;

let sim: Simulator;
let server: RunningServer;
const open: ClientRequest[] = [];

beforeEach(async () => {
  sim = Simulator.inMemory();
  server = await serve(sim, { port: 0 });
});
afterEach(async () => {
  for (const r of open.splice(0)) r.destroy();
  await server.close();
});

interface Answer {
  status: number;
  body: string;
}

/**
 * Sends a PUT declaring `length` bytes of body, and the body only when `body` is given; resolves
 * with the answer. The wait is bounded so that a server that waits for a body never sent fails
 * the test instead of hanging it.
 */
function put(path: string, headers: Record<string, string>, length: number, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, server.url);
    const req = request(url, { method: "PUT", headers: { ...headers, "content-length": String(length) } });
    open.push(req);
    const timer = setTimeout(() => {
      reject(new Error("no answer before the body was sent"));
      req.destroy();
    }, 10_000);
    req.on("response", (res: IncomingMessage) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: text });
      });
    });
    req.on("close", () => {
      clearTimeout(timer);
      reject(new Error("closed without an answer"));
    });
    req.on("error", () => {});
    if (body) req.end(body);
    else req.flushHeaders();
  });
}

const headersOnly = (path: string, headers: Record<string, string>, length: number) =>
  put(path, headers, length);

/** A SigV4 Authorization header for an access key the account does not have (the signature is junk). */
function unknownKeyHeaders(): Record<string, string> {
  const amzDate = formatAmzDate(sim.account.now());
  return {
    host: new URL(server.url).host,
    "x-amz-date": amzDate,
    "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    authorization: `AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNKEY000000/${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${"0".repeat(64)}`,
  };
}

describe("request bodies over HTTP", () => {
  it("an upload signed with an unknown access key is refused from its headers, before its body", async () => {
    const answer = await headersOnly("/bucket/key", unknownKeyHeaders(), 60 * MiB);
    expect(answer.status).toBe(403);
    expect(answer.body).toContain("<Code>InvalidAccessKeyId</Code>");
  });

  it("a KMS request with no signature is refused from its headers (MissingAuthenticationToken)", async () => {
    const answer = await headersOnly(
      "/",
      { "x-amz-target": "TrentService.Encrypt", "content-type": "application/x-amz-json-1.1" },
      30 * MiB,
    );
    expect(answer.status).toBe(400);
    expect(answer.body).toContain("MissingAuthenticationTokenException");
  });

  it("unsigned uploads share a bounded budget: past it, 503 SlowDown at once; signed uploads still go through", async () => {
    const s3 = new S3Client({
      region: "us-east-1",
      endpoint: server.url,
      forcePathStyle: true,
      credentials: sim.credentials(),
    });
    await s3.send(new CreateBucketCommand({ Bucket: "bodies" }));
    // The first unsigned upload declares 40 MiB and holds it while its body is awaited.
    const first = headersOnly("/bodies/a", {}, 40 * MiB);
    first.catch(() => {});
    // Wait until the server holds it: a request that needs no body budget is still answered.
    await headersOnly("/bodies/probe", {}, 0);
    const second = await headersOnly("/bodies/b", {}, 40 * MiB);
    expect(second.status).toBe(503);
    expect(second.body).toContain("<Code>SlowDown</Code>");
    expect(second.body).toContain("Please reduce your request rate.");
    // Signed clients are not starved by unsigned ones.
    const stored = await s3.send(
      new PutObjectCommand({ Bucket: "bodies", Key: "k", Body: Buffer.alloc(MiB, 1) }),
    );
    expect(stored.ETag).toBeDefined();
    // Once the first is gone, an unsigned upload of the same size is read again (and refused on its
    // merits: the bucket is not public).
    open[0]!.destroy();
    for (;;) {
      const again = await put("/bodies/c", {}, 40 * MiB, Buffer.alloc(40 * MiB, 2));
      if (again.status === 503) continue;
      expect(again.status).toBe(403);
      expect(again.body).toContain("<Code>AccessDenied</Code>");
      break;
    }
  });
});
