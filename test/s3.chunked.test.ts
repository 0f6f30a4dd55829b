import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import type { ChunkSigning } from "../sim/auth/authenticate.js";
import { ServiceError } from "../sim/core/errors.js";
import type { SimResponse } from "../sim/core/types.js";
import { type RunningServer, serve } from "../sim/server.js";
import { checksumOf } from "../sim/services/s3/checksums.js";
import { decodeAwsChunked } from "../sim/services/s3/chunked.js";
import { Simulator } from "../sim/simulator.js";
import { failure, thrown } from "./helpers/errors.js";
import { signer } from "./helpers/sign.js";

/**
 * `aws-chunked` request bodies (aws-subset §2.6): the SDK's unsigned-trailer streams, in process and
 * over HTTP, and the signed forms (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) whose seed and
 * chunk signatures come from @smithy/signature-v4.
 */

const BUCKET = "chunked-test-bucket";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const sha256 = async (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

/** An unsigned aws-chunked body as the SDK writes one (chunk sizes as given, CRC32 trailer). */
function unsignedBody(
  data: Buffer,
  sizes: number[],
  trailer = `x-amz-checksum-crc32:${checksumOf("CRC32", data)}`,
): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    parts.push(Buffer.from(`${size.toString(16)}\r\n`), data.subarray(at, at + size), Buffer.from("\r\n"));
    at += size;
  }
  parts.push(Buffer.from(`0\r\n${trailer}\r\n\r\n`));
  return Buffer.concat(parts);
}

const unsignedHeaders = (length: number) => ({
  "content-encoding": "aws-chunked",
  "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  "x-amz-trailer": "x-amz-checksum-crc32",
  "x-amz-decoded-content-length": String(length),
});

describe("decodeAwsChunked (unsigned, with a trailer)", () => {
  const data = Buffer.alloc(20_000, 7);

  it("decodes the body and returns the trailer", () => {
    const out = decodeAwsChunked(
      unsignedBody(data, [8192, 8192, 3616]),
      unsignedHeaders(data.length),
      undefined,
    );
    expect(out.data.equals(data)).toBe(true);
    expect(out.trailers).toEqual({ "x-amz-checksum-crc32": checksumOf("CRC32", data) });
  });

  it("refuses chunks under 8 KiB before the last: 403 InvalidChunkSizeError", () => {
    const err = thrown(() =>
      decodeAwsChunked(unsignedBody(data, [100, 19_900]), unsignedHeaders(data.length), undefined),
    );
    expect([err.code, err.status, err.message, err.extra]).toEqual([
      "InvalidChunkSizeError",
      403,
      "Only the last chunk is allowed to have a size less than 8192 bytes",
      { Chunk: "2", BadChunkSize: "100" },
    ]);
  });

  it("a body shorter or longer than x-amz-decoded-content-length is IncompleteBody", () => {
    for (const declared of [data.length + 1, data.length - 1]) {
      const err = thrown(() =>
        decodeAwsChunked(unsignedBody(data, [data.length]), unsignedHeaders(declared), undefined),
      );
      expect([err.code, err.status, err.message]).toEqual([
        "IncompleteBody",
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
      ]);
    }
    const cut = unsignedBody(data, [data.length]).subarray(0, 5000);
    expect(thrown(() => decodeAwsChunked(cut, unsignedHeaders(data.length), undefined)).code).toBe(
      "IncompleteBody",
    );
    const garbled = Buffer.from("zz\r\nabc\r\n0\r\n\r\n");
    expect(thrown(() => decodeAwsChunked(garbled, unsignedHeaders(3), undefined)).code).toBe(
      "IncompleteBody",
    );
  });

  it("without x-amz-decoded-content-length: 411 MissingContentLength", () => {
    const { "x-amz-decoded-content-length": _, ...headers } = unsignedHeaders(data.length);
    const err = thrown(() => decodeAwsChunked(unsignedBody(data, [data.length]), headers, undefined));
    expect([err.code, err.status]).toEqual(["MissingContentLength", 411]);
  });

  it("a malformed trailer line is MalformedTrailerError", () => {
    const err = thrown(() =>
      decodeAwsChunked(
        unsignedBody(data, [data.length], "no colon here"),
        unsignedHeaders(data.length),
        undefined,
      ),
    );
    expect([err.code, err.status]).toEqual(["MalformedTrailerError", 400]);
  });
});

// -------------------------------------------------------------------------------------------------
// Signed streaming uploads, sent to the simulator as raw requests

async function signedUpload(
  sim: Simulator,
  key: string,
  data: Buffer,
  options: { chunk?: number; trailer?: boolean; tamper?: "chunk" | "trailer-sig" | "checksum" } = {},
): Promise<SimResponse> {
  const chunk = options.chunk ?? 8192;
  const mode = options.trailer
    ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  const date = sim.account.now();
  const s = signer("s3", sim.credentials());
  const headers: Record<string, string> = {
    host: "127.0.0.1",
    "content-encoding": "aws-chunked",
    "x-amz-content-sha256": mode,
    "x-amz-decoded-content-length": String(data.length),
    ...(options.trailer ? { "x-amz-trailer": "x-amz-checksum-crc32" } : {}),
  };
  const signed = await s.sign(
    {
      method: "PUT",
      protocol: "http:",
      hostname: "127.0.0.1",
      path: `/${BUCKET}/${key}`,
      query: {},
      headers,
    },
    { signingDate: date },
  );
  const seed = /Signature=([0-9a-f]{64})/.exec(signed.headers.authorization!)![1]!;
  const amzDate = signed.headers["x-amz-date"]!;
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  // Chunk signatures: AWS's string to sign, signed by the SDK's signer with its derived key.
  const sign = (toSign: string) => s.sign(toSign, { signingDate: date });
  const parts: Buffer[] = [];
  let previous = seed;
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += chunk) pieces.push(data.subarray(at, at + chunk));
  pieces.push(Buffer.alloc(0));
  for (const piece of pieces) {
    const toSign = [
      "AWS4-HMAC-SHA256-PAYLOAD",
      amzDate,
      scope,
      previous,
      EMPTY_SHA256,
      await sha256(piece),
    ].join("\n");
    let sig = await sign(toSign);
    previous = sig;
    if (options.tamper === "chunk" && piece.length > 0)
      sig = `${sig.slice(0, 63)}${sig[63] === "0" ? "1" : "0"}`;
    parts.push(Buffer.from(`${piece.length.toString(16)};chunk-signature=${sig}\r\n`), piece);
    if (piece.length > 0) parts.push(Buffer.from("\r\n"));
  }
  if (options.trailer) {
    const crc =
      options.tamper === "checksum" ? checksumOf("CRC32", Buffer.from("other")) : checksumOf("CRC32", data);
    const canonical = `x-amz-checksum-crc32:${crc}\n`;
    let sig = await sign(
      ["AWS4-HMAC-SHA256-TRAILER", amzDate, scope, previous, await sha256(canonical)].join("\n"),
    );
    if (options.tamper === "trailer-sig") sig = "0".repeat(64);
    parts.push(Buffer.from(`x-amz-checksum-crc32:${crc}\r\nx-amz-trailer-signature:${sig}\r\n\r\n`));
  } else {
    parts.push(Buffer.from("\r\n"));
  }
  const body = Buffer.concat(parts);
  return sim.handle({
    method: "PUT",
    rawPath: `/${BUCKET}/${key}`,
    query: {},
    headers: { ...signed.headers, "content-length": String(body.length) },
    body,
    scheme: "http",
    sourceIp: "127.0.0.1",
  });
}

const errorCode = (res: SimResponse) =>
  /<Code>([^<]*)<\/Code>/.exec(Buffer.from(res.body as Uint8Array).toString())?.[1];

async function simWithBucket() {
  const sim = Simulator.inMemory();
  const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  return { sim, s3 };
}

describe("signed aws-chunked uploads (chunk signatures from ctx.auth.chunkSigning)", () => {
  const data = Buffer.from(Array.from({ length: 20_000 }, (_, i) => i % 251));

  it("STREAMING-AWS4-HMAC-SHA256-PAYLOAD: verified chunk by chunk and stored", async () => {
    const { sim, s3 } = await simWithBucket();
    const res = await signedUpload(sim, "signed", data);
    expect(res.status).toBe(200);
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "signed" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
  });

  it("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: trailer signature and checksum verified", async () => {
    const { sim, s3 } = await simWithBucket();
    const res = await signedUpload(sim, "trailer", data, { trailer: true });
    expect(res.status).toBe(200);
    expect(res.headers["x-amz-checksum-crc32"]).toBe(checksumOf("CRC32", data));
    const got = await s3.send(
      new GetObjectCommand({ Bucket: BUCKET, Key: "trailer", ChecksumMode: "ENABLED" }),
    );
    expect(got.ChecksumCRC32).toBe(checksumOf("CRC32", data));
  });

  it("a wrong chunk or trailer signature is 403 SignatureDoesNotMatch; a wrong trailer checksum BadDigest", async () => {
    const { sim } = await simWithBucket();
    const chunk = await signedUpload(sim, "x", data, { tamper: "chunk" });
    expect([chunk.status, errorCode(chunk)]).toEqual([403, "SignatureDoesNotMatch"]);
    const trailer = await signedUpload(sim, "x", data, { trailer: true, tamper: "trailer-sig" });
    expect([trailer.status, errorCode(trailer)]).toEqual([403, "SignatureDoesNotMatch"]);
    const checksum = await signedUpload(sim, "x", data, { trailer: true, tamper: "checksum" });
    expect([checksum.status, errorCode(checksum)]).toEqual([400, "BadDigest"]);
    const small = await signedUpload(sim, "x", data, { chunk: 1000 });
    expect([small.status, errorCode(small)]).toEqual([403, "InvalidChunkSizeError"]);
  });

  it("the chain uses the signing key AWS derives (unit check against the decoder)", () => {
    const signing: ChunkSigning = {
      signingKey: Buffer.alloc(32, 1),
      seedSignature: "a".repeat(64),
      amzDate: "20260601T000000Z",
      scope: "20260601/us-east-1/s3/aws4_request",
      trailer: false,
    };
    const body = Buffer.from(
      `3;chunk-signature=${"0".repeat(64)}\r\nabc\r\n0;chunk-signature=${"0".repeat(64)}\r\n\r\n`,
    );
    const headers = {
      "content-encoding": "aws-chunked",
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "x-amz-decoded-content-length": "3",
    };
    const err = thrown(() => decodeAwsChunked(body, headers, signing));
    expect(err).toBeInstanceOf(ServiceError);
    expect([err.code, err.status]).toEqual(["SignatureDoesNotMatch", 403]);
  });
});

describe("the SDK's streaming uploads (Readable bodies are sent aws-chunked)", () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("in process and over HTTP, with the CRC32 trailer", async () => {
    const { sim, s3 } = await simWithBucket();
    const data = Buffer.alloc(100_000, "abc");
    const inProcess = await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "stream-1",
        Body: Readable.from([data]),
        ContentLength: data.length,
      }),
    );
    expect(inProcess.ChecksumCRC32).toBe(checksumOf("CRC32", data));

    server = await serve(sim, { port: 0 });
    const http = new S3Client({
      region: "us-east-1",
      endpoint: server.url,
      forcePathStyle: true,
      credentials: sim.credentials(),
    });
    const viaHttp = await http.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "stream-2",
        Body: Readable.from([data.subarray(0, 70_000), data.subarray(70_000)]),
        ContentLength: data.length,
        ContentType: "text/plain",
        ContentEncoding: "identity",
      }),
    );
    expect(viaHttp.ChecksumCRC32).toBe(checksumOf("CRC32", data));
    const got = await http.send(new GetObjectCommand({ Bucket: BUCKET, Key: "stream-2" }));
    expect(got.ContentType).toBe("text/plain");
    // aws-chunked is a transfer detail: the stored Content-Encoding leaves it out.
    expect(got.ContentEncoding).toBe("identity");
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
  });

  it("small stream chunks: InvalidChunkSizeError (with the SDK's hint), unless the SDK buffers", async () => {
    const { sim } = await simWithBucket();
    server = await serve(sim, { port: 0 });
    const config = {
      region: "us-east-1",
      endpoint: server.url,
      forcePathStyle: true,
      credentials: sim.credentials(),
    };
    const pieces = () => Readable.from([Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(1000, 3)]);
    const plain = new S3Client(config);
    const err = await failure(
      plain.send(new PutObjectCommand({ Bucket: BUCKET, Key: "small", Body: pieces(), ContentLength: 3000 })),
    );
    expect(err.name).toBe("InvalidChunkSizeError");
    expect(err.status).toBe(403);
    expect(err.message).toBe(
      "Only the last chunk is allowed to have a size less than 8192 bytes. Set [requestStreamBufferSize=number e.g. 65_536] in client constructor to instruct AWS SDK to buffer your input stream.",
    );
    const buffered = new S3Client({ ...config, requestStreamBufferSize: 65_536 });
    const ok = await buffered.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: "small", Body: pieces(), ContentLength: 3000 }),
    );
    expect(ok.$metadata.httpStatusCode).toBe(200);
  });
});
