import { createHash } from "node:crypto";
import * as zlib from "node:zlib";
import { ServiceError } from "../../core/errors.js";

/**
 * S3's integrity checks on request bodies (aws-subset §2.6): the flexible checksums
 * (`x-amz-checksum-crc32`, `-crc32c`, `-crc64nvme`, `-sha1`, `-sha256`, in a header or an
 * `aws-chunked` trailer) and `Content-MD5`.
 *
 * Error wording is AWS's as recorded by OpenStack Swift's s3api tests run against AWS
 * (test/s3api/test_object_checksums.py): a value that is not canonical base64 of the right length
 * is `InvalidRequest` "Value for x-amz-checksum-crc32 header is invalid.", a value that does not
 * match is `BadDigest` "The CRC32 you specified did not match the calculated checksum.".
 */

export type ChecksumAlgorithm = "CRC32" | "CRC32C" | "CRC64NVME" | "SHA1" | "SHA256";

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = {
  CRC32: 4,
  CRC32C: 4,
  CRC64NVME: 8,
  SHA1: 20,
  SHA256: 32,
};

export const CHECKSUM_ALGORITHMS = Object.keys(DIGEST_BYTES) as ChecksumAlgorithm[];

/** `x-amz-checksum-crc32` for CRC32, and so on. */
export const checksumHeader = (algorithm: ChecksumAlgorithm) => `x-amz-checksum-${algorithm.toLowerCase()}`;

function crc32Table(poly: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

const CRC32_TABLE = crc32Table(0xedb88320);
/** zlib's CRC-32 (Node 20.15 and later): the SDK checksums every upload with it by default. */
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
const CRC32C_TABLE = crc32Table(0x82f63b78);

function crc32With(table: Uint32Array, data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5, initial value and final xor all ones.
const CRC64_TABLE = (() => {
  const poly = 0x9a6c9329ac4bc9b5n;
  const table = new BigUint64Array(256);
  for (let n = 0; n < 256; n++) {
    let c = BigInt(n);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
    table[n] = c;
  }
  // Split in 32-bit halves: BigInt arithmetic per byte would be slow for megabyte bodies.
  const lo = new Uint32Array(256);
  const hi = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    lo[n] = Number(table[n]! & 0xffffffffn);
    hi[n] = Number(table[n]! >> 32n);
  }
  return { lo, hi };
})();

function crc64nvme(data: Uint8Array): Buffer {
  let lo = 0xffffffff;
  let hi = 0xffffffff;
  const { lo: tlo, hi: thi } = CRC64_TABLE;
  for (let i = 0; i < data.length; i++) {
    const idx = (lo ^ data[i]!) & 0xff;
    // (crc >> 8) ^ table[idx], on the two halves.
    const shiftedLo = ((lo >>> 8) | (hi << 24)) >>> 0;
    const shiftedHi = hi >>> 8;
    lo = (shiftedLo ^ tlo[idx]!) >>> 0;
    hi = (shiftedHi ^ thi[idx]!) >>> 0;
  }
  const out = Buffer.alloc(8);
  out.writeUInt32BE((hi ^ 0xffffffff) >>> 0, 0);
  out.writeUInt32BE((lo ^ 0xffffffff) >>> 0, 4);
  return out;
}

function u32(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n, 0);
  return out;
}

/** The raw digest of `data` (big-endian for the CRCs, as S3 encodes them). */
export function digest(algorithm: ChecksumAlgorithm, data: Uint8Array): Buffer {
  switch (algorithm) {
    case "CRC32":
      return u32(nativeCrc32 ? nativeCrc32(data) : crc32With(CRC32_TABLE, data));
    case "CRC32C":
      return u32(crc32With(CRC32C_TABLE, data));
    case "CRC64NVME":
      return crc64nvme(data);
    case "SHA1":
      return createHash("sha1").update(data).digest();
    case "SHA256":
      return createHash("sha256").update(data).digest();
  }
}

/** The base64 checksum as S3 shows it (`x-amz-checksum-crc32: y/Q5Jg==`). */
export const checksumOf = (algorithm: ChecksumAlgorithm, data: Uint8Array): string =>
  digest(algorithm, data).toString("base64");

/** Decodes base64 only when it is canonical (re-encodes to the same text); else undefined. */
function strictBase64(value: string, bytes: number): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) return undefined;
  const raw = Buffer.from(value, "base64");
  if (raw.length !== bytes || raw.toString("base64") !== value) return undefined;
  return raw;
}

const invalidValue = (header: string) =>
  new ServiceError("InvalidRequest", `Value for ${header} header is invalid.`, 400);

/** What the request says about checksums: the one algorithm it names and where the value comes from. */
export interface ChecksumClaim {
  algorithm: ChecksumAlgorithm;
  /** The header's value; undefined when it comes in an `aws-chunked` trailer. */
  value?: string;
  trailer: boolean;
}

function algorithmFromHeaderName(name: string): ChecksumAlgorithm | undefined {
  return CHECKSUM_ALGORITHMS.find((a) => checksumHeader(a) === name);
}

/**
 * Reads the checksum a request announces: at most one `x-amz-checksum-*` header or one declared
 * trailer (`x-amz-trailer`), agreeing with `x-amz-sdk-checksum-algorithm` when that is sent.
 */
export function checksumClaim(headers: Record<string, string>): ChecksumClaim | undefined {
  const found: ChecksumClaim[] = [];
  for (const name in headers) {
    if (
      !name.startsWith("x-amz-checksum-") ||
      name === "x-amz-checksum-type" ||
      name === "x-amz-checksum-mode"
    )
      continue;
    const algorithm = algorithmFromHeaderName(name);
    // An algorithm S3 does not know (x-amz-checksum-md5...): unconfirmed wording, AWS's
    // "not implemented" family.
    if (!algorithm) throw new ServiceError("InvalidRequest", `Value for ${name} header is invalid.`, 400);
    found.push({ algorithm, value: headers[name]!, trailer: false });
  }
  const declared = headers["x-amz-trailer"];
  if (declared !== undefined) {
    for (const name of declared.split(",").map((s) => s.trim().toLowerCase())) {
      if (name === "") continue;
      const algorithm = algorithmFromHeaderName(name);
      if (!algorithm)
        throw new ServiceError("InvalidRequest", `Value for x-amz-trailer header is invalid.`, 400);
      found.push({ algorithm, trailer: true });
    }
  }
  if (found.length > 1)
    throw new ServiceError(
      "InvalidRequest",
      "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
      400,
    );
  const sdk = headers["x-amz-sdk-checksum-algorithm"];
  const claim = found[0];
  if (sdk !== undefined) {
    const named = sdk.toUpperCase() as ChecksumAlgorithm;
    if (!CHECKSUM_ALGORITHMS.includes(named) || (claim && claim.algorithm !== named))
      throw invalidValue("x-amz-sdk-checksum-algorithm");
    // The SDK names an algorithm but sends no value: unconfirmed wording.
    if (!claim)
      throw new ServiceError(
        "InvalidRequest",
        `x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.`,
        400,
      );
  }
  return claim;
}

/**
 * Verifies `data` against the claimed checksum (the header's value, or `trailerValue` for a
 * trailer). Returns the checksums S3 keeps with the object: the verified one, or CRC64NVME, which
 * S3 computes for objects uploaded without one (since December 2024).
 */
export function verifyChecksum(
  claim: ChecksumClaim | undefined,
  data: Uint8Array,
  trailerValue?: string,
): Partial<Record<ChecksumAlgorithm, string>> {
  if (!claim) return { CRC64NVME: checksumOf("CRC64NVME", data) };
  const header = checksumHeader(claim.algorithm);
  const value = claim.trailer ? trailerValue : claim.value;
  if (value === undefined)
    // A declared trailer that never came: unconfirmed wording.
    throw new ServiceError(
      "MalformedTrailerError",
      "The request contained trailing data that was not well-formed or did not conform to our published schema.",
      400,
    );
  const expected = strictBase64(value.trim(), DIGEST_BYTES[claim.algorithm]);
  if (!expected) throw invalidValue(header);
  const actual = digest(claim.algorithm, data);
  if (!actual.equals(expected))
    throw new ServiceError(
      "BadDigest",
      `The ${claim.algorithm} you specified did not match the calculated checksum.`,
      400,
    );
  return { [claim.algorithm]: actual.toString("base64") };
}

/** `Content-MD5`: base64 of the 16-byte MD5; a mismatch is BadDigest, a malformed value InvalidDigest. */
export function verifyContentMd5(headers: Record<string, string>, data: Uint8Array): void {
  const value = headers["content-md5"];
  if (value === undefined) return;
  const expected = strictBase64(value.trim(), 16);
  if (!expected) throw new ServiceError("InvalidDigest", "The Content-MD5 you specified was invalid.", 400);
  const actual = createHash("md5").update(data).digest();
  if (!actual.equals(expected))
    throw new ServiceError("BadDigest", "The Content-MD5 you specified did not match what we received.", 400);
}
