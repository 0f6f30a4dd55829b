import { ServiceError } from "../../core/errors.js";
import { pooledRandom, randomBytesFast } from "../../core/random.js";
import { type CallContext, onBehalf } from "../../core/service.js";
import { bucketArn, objectArn } from "./access.js";
import { blobStore, open, seal } from "./blobs.js";
import type { BucketRecord, ObjectVersion } from "./model.js";
import type { S3Service } from "./provider.js";

/**
 * Server-side encryption of object bodies, as S3 does it (aws-subset §2.3, §3.5).
 *
 * SSE-KMS: on PutObject S3 calls KMS GenerateDataKey (KeySpec AES_256) **as the requester**, with
 * `kms:ViaService` = `s3.<region>.amazonaws.com` and the encryption context
 * `{"aws:s3:arn": <object ARN>}` (the bucket's ARN with an S3 Bucket Key) plus any context the
 * caller sent in `x-amz-server-side-encryption-context`; the plaintext data key encrypts the body
 * and is dropped, only the wrapped key is kept. GetObject calls KMS Decrypt with the same context.
 * KMS failures surface as S3's errors (`KMS.DisabledException`, 403 AccessDenied with KMS's text...).
 *
 * SSE-S3: a random data key per object, wrapped (AES-256-GCM) by the account's S3 master key, which
 * lives in `<dataDir>/s3/master.key` (blobs.ts), never in account.json.
 *
 * Deliberate differences from AWS: with an S3 Bucket Key, S3 caches a bucket-level data key and
 * calls KMS rarely; here every object still gets its own GenerateDataKey call (with the bucket's ARN
 * as context, as AWS's calls carry). SSE-KMS does not require TLS here (the simulator serves plain
 * HTTP locally); it does require SigV4. DSSE-KMS (`aws:kms:dsse`) is not simulated (501).
 */

export type SseAlgorithm = "AES256" | "aws:kms";

/** What a PutObject asks for, after the bucket's default encryption is applied. */
export interface SseRequest {
  algorithm: SseAlgorithm;
  /** As the request (or the bucket default) names it: key id, key ARN, alias name or alias ARN. */
  kmsKeyId?: string;
  /** The caller's context (decoded `x-amz-server-side-encryption-context`). */
  callerContext?: Record<string, string>;
  bucketKeyEnabled: boolean;
}

const SSE_HEADER = "x-amz-server-side-encryption";
const KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id";
const CONTEXT_HEADER = "x-amz-server-side-encryption-context";
const BUCKET_KEY_HEADER = "x-amz-server-side-encryption-bucket-key-enabled";
const AWS_MANAGED_KEY = "alias/aws/s3";

const invalidArgument = (message: string, name: string, value: string | null) =>
  new ServiceError("InvalidArgument", message, 400, {
    ArgumentName: name,
    ArgumentValue: value === null ? "null" : value,
  });

/**
 * The encryption a PutObject gets: its own SSE headers, else the bucket's default encryption
 * (SSE-S3 on every new bucket). Throws S3's 400s for malformed SSE headers.
 */
export function requestedSse(bucket: BucketRecord, headers: Record<string, string>): SseRequest {
  const named = headers[SSE_HEADER];
  const keyId = headers[KEY_HEADER];
  const contextText = headers[CONTEXT_HEADER];
  const bucketKey = headers[BUCKET_KEY_HEADER];
  if (named !== undefined && named !== "AES256" && named !== "aws:kms") {
    if (named === "aws:kms:dsse")
      throw new ServiceError(
        "NotImplemented",
        "A header you provided implies functionality that is not implemented.",
        501,
        { Header: SSE_HEADER },
      );
    throw invalidArgument("The encryption method specified is not supported", SSE_HEADER, named);
  }
  const rule = bucket.encryption;
  const algorithm: SseAlgorithm =
    named ??
    (rule?.SSEAlgorithm === "aws:kms" || rule?.SSEAlgorithm === "aws:kms:dsse" ? "aws:kms" : "AES256");
  if (algorithm !== "aws:kms") {
    // KMS-only headers with SSE-S3 (wording recorded for the key id; the others follow it).
    for (const h of [KEY_HEADER, CONTEXT_HEADER])
      if (headers[h] !== undefined)
        throw invalidArgument(
          "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
          h,
          headers[h]!,
        );
    return { algorithm, bucketKeyEnabled: false };
  }
  let callerContext: Record<string, string> | undefined;
  if (contextText !== undefined) callerContext = parseContext(contextText);
  // A request that names aws:kms without a key gets the AWS managed key aws/s3, not the bucket's.
  const kmsKeyId = keyId ?? (named === undefined ? rule?.KMSMasterKeyID : undefined) ?? AWS_MANAGED_KEY;
  const bucketKeyEnabled =
    bucketKey !== undefined ? bucketKey.toLowerCase() === "true" : (rule?.BucketKeyEnabled ?? false);
  return {
    algorithm,
    kmsKeyId,
    bucketKeyEnabled,
    ...(callerContext ? { callerContext } : {}),
  };
}

/** `x-amz-server-side-encryption-context`: base64 of a UTF-8 JSON string-to-string map. */
function parseContext(text: string): Record<string, string> {
  // Wording unconfirmed.
  const bad = () =>
    invalidArgument(
      "The header 'x-amz-server-side-encryption-context' shall be Base64-encoded UTF-8 string holding JSON which represents a string-string map",
      CONTEXT_HEADER,
      text,
    );
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64").toString("utf8"));
  } catch {
    throw bad();
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw bad();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== "string") throw bad();
    out[k] = v;
  }
  return out;
}

/** SSE-KMS needs a SigV4-signed request (§2.3): anonymous requests that got this far are refused. */
export function requireSigV4(ctx: CallContext): void {
  if (ctx.auth === undefined || ctx.auth.signed) return;
  throw new ServiceError(
    "InvalidArgument",
    "Requests specifying Server Side Encryption with AWS KMS managed keys require AWS Signature Version 4.",
    400,
    { ArgumentName: "Authorization", ArgumentValue: "null" },
  );
}

/** GetObject/HeadObject take no SSE request headers (they would be SSE-C's, whose are different). */
export function rejectSseHeadersOnRead(headers: Record<string, string>): void {
  for (const h of [SSE_HEADER, KEY_HEADER, CONTEXT_HEADER, BUCKET_KEY_HEADER]) {
    if (headers[h] !== undefined)
      throw new ServiceError(
        "InvalidArgument",
        "x-amz-server-side-encryption header is not supported for this operation.",
        400,
        { ArgumentName: SSE_HEADER, ArgumentValue: headers[h]! },
      );
  }
}

/** The context S3 hands KMS for an object. */
function kmsContext(bucket: BucketRecord, key: string, req: SseRequest): Record<string, string> {
  const arn = req.bucketKeyEnabled ? bucketArn(bucket.name) : objectArn(bucket.name, key);
  const context: Record<string, string> = Object.assign({}, req.callerContext);
  context["aws:s3:arn"] = arn;
  return context;
}

/** The requester's context for S3's call to KMS: same principal, S3 as the calling service. */
function viaS3(ctx: CallContext, bucket: BucketRecord): CallContext {
  return onBehalf(ctx, bucket.region, `s3.${bucket.region}.amazonaws.com`);
}

/** KMS's errors as S3 surfaces them (aws-subset §2.3, recorded by LocalStack against AWS). */
export function kmsErrorToS3(err: unknown): unknown {
  if (!(err instanceof ServiceError)) return err;
  if (err.code === "AccessDeniedException") return new ServiceError("AccessDenied", err.message, 403);
  if (err.code === "ValidationException")
    // A key id KMS cannot even parse; S3's exact answer is unconfirmed.
    return new ServiceError("KMS.NotFoundException", err.message, 400);
  return new ServiceError(`KMS.${err.code}`, err.message, err.status >= 500 ? 500 : 400);
}

/** A body encrypted for storage, and the record of how. */
export interface SealedBody {
  sealed: Buffer;
  sse: NonNullable<ObjectVersion["sse"]>;
}

/**
 * Encrypts `plaintext` for an object: SSE-S3 with a fresh data key wrapped by the master key;
 * SSE-KMS with a data key from KMS GenerateDataKey, called on the requester's behalf.
 */
export function encryptBody(
  svc: S3Service,
  ctx: CallContext,
  bucket: BucketRecord,
  key: string,
  plaintext: Uint8Array,
  req: SseRequest,
): SealedBody {
  if (req.algorithm === "AES256") {
    const dataKey = randomBytesFast(32);
    const wrapped = seal(blobStore(svc.account).masterKey(), dataKey, "sse-s3");
    const sealed = seal(dataKey, plaintext);
    dataKey.fill(0);
    return { sealed, sse: { algorithm: "AES256", encryptedDataKey: wrapped.toString("base64") } };
  }
  const context = kmsContext(bucket, key, req);
  let out: { CiphertextBlob: Uint8Array; Plaintext: Uint8Array; KeyId: string };
  try {
    out = svc.account.call(
      svc.account.kms,
      "GenerateDataKey",
      { KeyId: req.kmsKeyId, KeySpec: "AES_256", EncryptionContext: context },
      viaS3(ctx, bucket),
    );
  } catch (err) {
    throw kmsErrorToS3(err);
  }
  const sealed = seal(out.Plaintext, plaintext);
  // The plaintext data key is used once and dropped, as S3 does; only the wrapped key is kept.
  out.Plaintext.fill(0);
  return {
    sealed,
    sse: {
      algorithm: "aws:kms",
      kmsKeyArn: out.KeyId,
      encryptedDataKey: Buffer.from(out.CiphertextBlob).toString("base64"),
      context,
      ...(req.callerContext ? { callerContext: true } : {}),
      ...(req.bucketKeyEnabled ? { bucketKeyEnabled: true } : {}),
    },
  };
}

/** Decrypts a stored body: SSE-KMS calls KMS Decrypt as the requester, with the stored context. */
export function decryptBody(
  svc: S3Service,
  ctx: CallContext,
  bucket: BucketRecord,
  version: ObjectVersion,
  sealed: Uint8Array,
): Buffer {
  const sse = version.sse ?? { algorithm: "AES256" };
  if (sse.algorithm === "AES256") {
    const dataKey = open(
      blobStore(svc.account).masterKey(),
      Buffer.from(sse.encryptedDataKey ?? "", "base64"),
      "sse-s3",
    );
    try {
      return open(dataKey, sealed);
    } finally {
      dataKey.fill(0);
    }
  }
  let out: { Plaintext: Uint8Array };
  try {
    out = svc.account.call(
      svc.account.kms,
      "Decrypt",
      {
        CiphertextBlob: Buffer.from(sse.encryptedDataKey ?? "", "base64"),
        EncryptionContext: sse.context ?? {},
      },
      viaS3(ctx, bucket),
    );
  } catch (err) {
    throw kmsErrorToS3(err);
  }
  try {
    return open(out.Plaintext, sealed);
  } finally {
    out.Plaintext.fill(0);
  }
}

/** The SSE response headers of an object (PutObject, GetObject, HeadObject). */
export function sseHeaders(version: ObjectVersion, withContext = false): Record<string, string> {
  const sse = version.sse;
  if (!sse) return {};
  const h: Record<string, string> = { [SSE_HEADER]: sse.algorithm };
  if (sse.algorithm === "aws:kms") {
    if (sse.kmsKeyArn) h[KEY_HEADER] = sse.kmsKeyArn;
    if (sse.bucketKeyEnabled) h[BUCKET_KEY_HEADER] = "true";
    if (withContext && sse.callerContext && sse.context)
      h[CONTEXT_HEADER] = Buffer.from(JSON.stringify(sse.context), "utf8").toString("base64");
  }
  return h;
}

/** The ETag of an SSE-KMS object: 32 hex digits that are not the MD5 of the plaintext (§2.3). */
export const kmsEtag = () => pooledRandom(16).toString("hex");
