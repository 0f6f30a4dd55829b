import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type RunningServer, serve } from "../sim/server.js";
import { Simulator } from "../sim/simulator.js";

/**
 * GetObject's `response-*` overrides become response headers: a value no header can carry (outside
 * ISO-8859-1, or a control character) is S3's 400 InvalidArgument, through the real SDK over HTTP.
 * Before, the server failed writing the header and answered 500 with an empty body.
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

let server: RunningServer;
let s3: S3Client;

beforeEach(async () => {
  const sim = Simulator.inMemory();
  server = await serve(sim, { port: 0 });
  s3 = new S3Client({
    region: "us-east-1",
    endpoint: server.url,
    forcePathStyle: true,
    credentials: sim.credentials(),
    maxAttempts: 1,
  });
  await s3.send(new CreateBucketCommand({ Bucket: "overrides" }));
  await s3.send(new PutObjectCommand({ Bucket: "overrides", Key: "a.jpg", Body: "x" }));
});
afterEach(async () => {
  s3.destroy();
  await server.close();
});

async function rejection(p: Promise<unknown>) {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata: { httpStatusCode?: number }; ArgumentName?: string };
    return { name: e.name, status: e.$metadata.httpStatusCode, message: e.message, argument: e.ArgumentName };
  }
  throw new Error("expected the call to fail");
}

describe("GetObject response-* overrides", () => {
  it("a value outside ISO-8859-1 is 400 InvalidArgument naming the parameter", async () => {
    const err = await rejection(
      s3.send(
        new GetObjectCommand({
          Bucket: "overrides",
          Key: "a.jpg",
          ResponseContentDisposition: 'attachment; filename="D\u2019Arcy.jpg"',
        }),
      ),
    );
    expect(err).toEqual({
      name: "InvalidArgument",
      status: 400,
      message: "Header value cannot be represented using ISO-8859-1.",
      argument: "response-content-disposition",
    });
  });

  it("a control character is 400 InvalidArgument too", async () => {
    const err = await rejection(
      s3.send(
        new GetObjectCommand({ Bucket: "overrides", Key: "a.jpg", ResponseContentType: "text/plain\u0001" }),
      ),
    );
    expect(err).toMatchObject({ name: "InvalidArgument", status: 400, argument: "response-content-type" });
  });

  it("a Latin-1 value is still written as the header", async () => {
    const out = await s3.send(
      new GetObjectCommand({ Bucket: "overrides", Key: "a.jpg", ResponseContentLanguage: "fr-CH" }),
    );
    expect(out.ContentLanguage).toBe("fr-CH");
  });
});
