import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { ChunkSigning } from "../../auth/authenticate.js";
import { ServiceError } from "../../core/errors.js";

/**
 * `Content-Encoding: aws-chunked` request bodies, as the SDKs send streaming uploads
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html and
 * .../sigv4-streaming-trailers.html):
 *
 *     <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
 *     [<trailer name>:<value>\r\n ... [x-amz-trailer-signature:<sig>\r\n]]\r\n
 *
 * Signed forms (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`) chain each chunk's signature from
 * the previous one, starting at the request's own (ctx.auth.chunkSigning):
 *
 *     AWS4-HMAC-SHA256-PAYLOAD\n<amz date>\n<scope>\n<previous sig>\n<sha256("")>\n<sha256(chunk)>
 *     AWS4-HMAC-SHA256-TRAILER\n<amz date>\n<scope>\n<previous sig>\n<sha256(trailer lines)>
 *
 * where the trailer lines are `name:value\n` each (the wire's CRLF made LF) and the previous
 * signature of the trailer is the final, empty chunk's.
 *
 * As on AWS, every chunk but the last with data must hold at least 8 KiB (InvalidChunkSizeError;
 * the SDK adds its "Set [requestStreamBufferSize...]" hint to that error's message).
 */

export const MIN_CHUNK_BYTES = 8192;
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** Longest chunk-header or trailer line accepted (a signature line is ~90 bytes). */
const MAX_LINE = 4096;

const S3_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your key and signing method.";

export interface DecodedBody {
  data: Buffer;
  /** Trailer fields by lower-case name (the trailer signature left out). */
  trailers: Record<string, string>;
}

/** Whether a request's body is `aws-chunked` (by its encoding or its streaming payload hash). */
export function isAwsChunked(headers: Record<string, string>): boolean {
  const encodings = (headers["content-encoding"] ?? "").split(",").map((e) => e.trim().toLowerCase());
  return (
    encodings.includes("aws-chunked") || (headers["x-amz-content-sha256"] ?? "").startsWith("STREAMING-")
  );
}

/** The Content-Encoding to store: the request's, without `aws-chunked`; undefined when nothing is left. */
export function storedContentEncoding(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const rest = value
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "" && e.toLowerCase() !== "aws-chunked");
  return rest.length === 0 ? undefined : rest.join(",");
}

const incomplete = () =>
  new ServiceError(
    "IncompleteBody",
    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    400,
  );

// AWS's code for a chunk header it cannot read is unconfirmed; IncompleteBody is what a body cut
// short gets, and a garbled header reads as one.
const malformedChunk = incomplete;

const malformedTrailer = () =>
  new ServiceError(
    "MalformedTrailerError",
    "The request contained trailing data that was not well-formed or did not conform to our published schema.",
    400,
  );

function signatureMismatch(): ServiceError {
  return new ServiceError("SignatureDoesNotMatch", S3_MISMATCH, 403);
}

function sameSignature(provided: string, expected: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(provided)) return false;
  return timingSafeEqual(Buffer.from(provided, "hex"), Buffer.from(expected, "hex"));
}

const sha256Hex = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

/** Chunk signature for `data` chained from `previous` (exported for tests that sign bodies). */
export function chunkSignature(signing: ChunkSigning, previous: string, data: Uint8Array): string {
  const toSign = [
    "AWS4-HMAC-SHA256-PAYLOAD",
    signing.amzDate,
    signing.scope,
    previous,
    EMPTY_SHA256,
    sha256Hex(data),
  ].join("\n");
  return createHmac("sha256", signing.signingKey).update(toSign).digest("hex");
}

/** Trailer signature over the canonical trailer lines (`name:value\n` each). */
export function trailerSignature(signing: ChunkSigning, previous: string, canonical: string): string {
  const toSign = [
    "AWS4-HMAC-SHA256-TRAILER",
    signing.amzDate,
    signing.scope,
    previous,
    sha256Hex(canonical),
  ].join("\n");
  return createHmac("sha256", signing.signingKey).update(toSign).digest("hex");
}

/**
 * Decodes an `aws-chunked` body and checks its framing, its chunk and trailer signatures (signed
 * forms) and its length against `x-amz-decoded-content-length`.
 *
 * `signing` comes from SigV4 authentication; it is undefined for STREAMING-UNSIGNED-PAYLOAD-TRAILER
 * and for internal calls. A signed streaming payload hash without it (cannot happen through the
 * simulator's front door) is treated as a signature mismatch.
 */
export function decodeAwsChunked(
  body: Uint8Array,
  headers: Record<string, string>,
  signing: ChunkSigning | undefined,
): DecodedBody {
  const mode = headers["x-amz-content-sha256"] ?? "";
  if (mode.startsWith("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"))
    // Deliberate difference: SigV4a (ECDSA) streaming is not simulated.
    throw new ServiceError(
      "NotImplemented",
      "A header you provided implies functionality that is not implemented",
      501,
      {
        Header: "x-amz-content-sha256",
      },
    );
  const signed = mode.startsWith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
  const withTrailer = mode.endsWith("-TRAILER") || (!signed && headers["x-amz-trailer"] !== undefined);
  if (signed && !signing) throw signatureMismatch();

  const declared = headers["x-amz-decoded-content-length"];
  if (declared === undefined)
    throw new ServiceError("MissingContentLength", "You must provide the Content-Length HTTP header.", 411);
  if (!/^\d{1,16}$/.test(declared)) throw incomplete();
  const expectedLength = Number(declared);

  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let pos = 0;
  const readLine = (): string | undefined => {
    const end = buf.indexOf("\r\n", pos, "latin1");
    if (end < 0 || end - pos > MAX_LINE) return undefined;
    const line = buf.toString("latin1", pos, end);
    pos = end + 2;
    return line;
  };

  const pieces: Buffer[] = [];
  let total = 0;
  let previous = signing?.seedSignature ?? "";
  const sizes: number[] = [];
  for (;;) {
    const line = readLine();
    if (line === undefined) throw incomplete();
    const [sizeText, ...exts] = line.split(";");
    if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText ?? "")) throw malformedChunk();
    const size = Number.parseInt(sizeText!, 16);
    if (size > buf.length - pos) throw incomplete();
    const data = buf.subarray(pos, pos + size);
    pos += size;
    if (signed) {
      const ext = exts.find((e) => e.trim().startsWith("chunk-signature="));
      const provided = ext?.trim().slice("chunk-signature=".length) ?? "";
      const expected = chunkSignature(signing!, previous, data);
      if (!sameSignature(provided, expected)) throw signatureMismatch();
      previous = expected;
    }
    if (size === 0) break;
    if (buf.toString("latin1", pos, pos + 2) !== "\r\n") throw incomplete();
    pos += 2;
    sizes.push(size);
    pieces.push(data);
    total += size;
    if (total > expectedLength) throw incomplete();
  }
  // Every chunk before the last one with data must be at least 8 KiB. AWS answers 403 and numbers
  // the chunk that follows the short one (as recorded by versitygw issue #1683): `<Chunk>2</Chunk>
  // <BadChunkSize>3</BadChunkSize>` for chunks of 3 and 2 bytes.
  for (let i = 0; i < sizes.length - 1; i++) {
    if (sizes[i]! < MIN_CHUNK_BYTES)
      throw new ServiceError(
        "InvalidChunkSizeError",
        `Only the last chunk is allowed to have a size less than ${MIN_CHUNK_BYTES} bytes`,
        403,
        { Chunk: String(i + 2), BadChunkSize: String(sizes[i]) },
      );
  }

  const trailers: Record<string, string> = {};
  if (withTrailer) {
    let canonical = "";
    let trailerSig: string | undefined;
    for (;;) {
      // The final empty line may come without its CRLF (some clients end the body there).
      if (pos >= buf.length) break;
      const line = readLine();
      if (line === undefined) throw malformedTrailer();
      if (line === "") break;
      const colon = line.indexOf(":");
      if (colon <= 0) throw malformedTrailer();
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "x-amz-trailer-signature") {
        trailerSig = value;
        continue;
      }
      if (trailerSig !== undefined) throw malformedTrailer();
      trailers[name] = value;
      canonical += `${name}:${value}\n`;
    }
    if (signed) {
      const expected = trailerSignature(signing!, previous, canonical);
      if (trailerSig === undefined || !sameSignature(trailerSig, expected)) throw signatureMismatch();
    }
  } else {
    // After the final chunk: one empty line.
    const line = pos >= buf.length ? "" : readLine();
    if (line !== "") throw incomplete();
  }
  if (pos !== buf.length) throw incomplete();
  if (total !== expectedLength) throw incomplete();
  return { data: Buffer.concat(pieces, total), trailers };
}
