import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { ServiceError } from "../../core/errors.js";
import { pooledRandom } from "../../core/random.js";
import type { CallContext } from "../../core/service.js";
import type { ContextKeys } from "../../core/types.js";
import { type XmlNode, xmlChild, xmlChildren } from "../../core/xml.js";
import {
  authorizeS3,
  bucketArn,
  canonicalId,
  decideS3,
  requireBucket,
  s3AccessDenied,
  s3ContextKeys,
} from "./access.js";
import { blobStore } from "./blobs.js";
import {
  type ChecksumAlgorithm,
  checksumClaim,
  checksumHeader,
  verifyChecksum,
  verifyContentMd5,
} from "./checksums.js";
import { decodeAwsChunked, isAwsChunked, storedContentEncoding } from "./chunked.js";
import { malformedXml, parseS3Body, S3Error } from "./codec.js";
import type { BucketRecord, ObjectVersion, S3Input, S3Output, Tag } from "./model.js";
import type { S3Service } from "./provider.js";
import {
  decryptBody,
  encryptBody,
  kmsEtag,
  rejectSseHeadersOnRead,
  requestedSse,
  requireSigV4,
  sseHeaders,
} from "./sse.js";

/**
 * S3's object operations: Put/Get/Head/Delete, DeleteObjects, the three listings, object tagging
 * and ACL reads, over the versions kept in `BucketRecord.objects` (key → versions, newest last).
 * Bodies live in blob files (blobs.ts), encrypted with the object's data key (sse.ts); request
 * bodies may come `aws-chunked` (chunked.ts) and carry checksums (checksums.ts).
 *
 * Access (aws-subset §2.3): every operation is authorised with the bucket policy and the caller's
 * IAM policies (access.ts); a missing key is 404 NoSuchKey only for callers allowed s3:ListBucket,
 * 403 AccessDenied for the others, as S3 hides what it would not list.
 *
 * Deliberate differences from AWS, written down: object ACL grants are stored and shown but never
 * grant access (new buckets ignore ACLs; the lab does not use them); no multipart uploads, object
 * lock, SSE-C, storage-class transitions or replication.
 */

const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;
const MAX_LIST_KEYS = 1000;
const MAX_DELETE_OBJECTS = 1000;

/** Headers stored with an object and replayed on GET/HEAD (besides Content-Type and x-amz-meta-*). */
const STORED_HEADERS = [
  "cache-control",
  "content-disposition",
  "content-language",
  "expires",
  "x-amz-website-redirect-location",
  "x-amz-storage-class",
];

const CANNED_ACLS = new Set([
  "private",
  "public-read",
  "public-read-write",
  "authenticated-read",
  "aws-exec-read",
  "bucket-owner-read",
  "bucket-owner-full-control",
]);
const PUBLIC_ACLS = new Set(["public-read", "public-read-write", "authenticated-read"]);
const GRANT_HEADERS = [
  "x-amz-grant-full-control",
  "x-amz-grant-read",
  "x-amz-grant-read-acp",
  "x-amz-grant-write",
  "x-amz-grant-write-acp",
];

// -------------------------------------------------------------------------------------------------
// Versions of a key (own properties only: a key may be `__proto__` or `constructor`)

function versionsOf(bucket: BucketRecord, key: string): ObjectVersion[] | undefined {
  return Object.hasOwn(bucket.objects, key) ? bucket.objects[key] : undefined;
}

function setVersions(bucket: BucketRecord, key: string, list: ObjectVersion[]): void {
  if (list.length === 0) {
    delete bucket.objects[key];
    return;
  }
  Object.defineProperty(bucket.objects, key, {
    value: list,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

/** AWS version ids: 32 URL-safe characters. */
const newVersionId = () => pooledRandom(24).toString("base64url");

const one = (input: S3Input, name: string): string | undefined => input.query[name]?.[0];

function requireKey(input: S3Input): string {
  if (input.Key === undefined) throw new ServiceError("InvalidRequest", "A key must be specified", 400);
  return input.Key;
}

// -------------------------------------------------------------------------------------------------
// Finding what a request names

const noSuchKey = (key: string, headers: Record<string, string> = {}) =>
  new S3Error("NoSuchKey", "The specified key does not exist.", 404, { Key: key }, headers);

/**
 * 404 NoSuchKey when the caller may list the bucket, else 403 AccessDenied (aws-subset §2.3): S3
 * does not tell callers who could not list it whether a key exists.
 */
function missingKey(
  svc: S3Service,
  ctx: CallContext,
  bucket: BucketRecord,
  key: string,
  headers: Record<string, string> = {},
): ServiceError {
  const resource = bucketArn(bucket.name);
  const keys = s3ContextKeys(ctx);
  keys["s3:prefix"] = key;
  const result = decideS3(svc, ctx.principal, "s3:ListBucket", resource, bucket, keys);
  if (result.allowed) return noSuchKey(key, headers);
  return s3AccessDenied(svc, ctx, "s3:ListBucket", resource, result);
}

/**
 * The version a read names (`versionId`, else the newest), or S3's error: NoSuchKey (latest is a
 * delete marker: with `x-amz-delete-marker`), NoSuchVersion, 405 for a delete marker named by id.
 */
function findVersion(
  svc: S3Service,
  ctx: CallContext,
  bucket: BucketRecord,
  key: string,
  versionId: string | undefined,
  method: string,
): ObjectVersion {
  const list = versionsOf(bucket, key);
  if (versionId === undefined) {
    const latest = list?.[list.length - 1];
    if (!latest) throw missingKey(svc, ctx, bucket, key);
    if (latest.deleteMarker)
      throw missingKey(svc, ctx, bucket, key, {
        "x-amz-delete-marker": "true",
        ...(bucket.versioning ? { "x-amz-version-id": latest.versionId } : {}),
      });
    return latest;
  }
  const found = list?.find((v) => v.versionId === versionId);
  if (!found) {
    if (versionId !== "null" && !/^[A-Za-z0-9._-]{1,1024}$/.test(versionId))
      throw new ServiceError("InvalidArgument", "Invalid version id specified", 400, {
        ArgumentName: "versionId",
        ArgumentValue: versionId,
      });
    throw new ServiceError("NoSuchVersion", "The specified version does not exist.", 404, {
      Key: key,
      VersionId: versionId,
    });
  }
  if (found.deleteMarker)
    throw new S3Error(
      "MethodNotAllowed",
      "The specified method is not allowed against this resource.",
      405,
      { Method: method, ResourceType: "DeleteMarker" },
      {
        "x-amz-delete-marker": "true",
        "x-amz-version-id": found.versionId,
        "last-modified": httpDate(found.lastModified),
      },
    );
  return found;
}

// -------------------------------------------------------------------------------------------------
// Request bodies

interface Body {
  data: Buffer;
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
  /** Whether the request carried an integrity value (Content-MD5 or a flexible checksum). */
  integrity: boolean;
}

/**
 * The request's body as sent by the client: `aws-chunked` decoded (chunk signatures checked),
 * Content-MD5 and the flexible checksum verified.
 */
function requestBody(input: S3Input, ctx: CallContext): Body {
  const headers = input.headers;
  const claim = checksumClaim(headers);
  let data: Buffer;
  let trailers: Record<string, string> = {};
  if (isAwsChunked(headers)) {
    const decoded = decodeAwsChunked(input.body, headers, ctx.auth?.chunkSigning);
    data = decoded.data;
    trailers = decoded.trailers;
  } else {
    data = Buffer.from(input.body.buffer, input.body.byteOffset, input.body.byteLength);
  }
  verifyContentMd5(headers, data);
  const checksums = verifyChecksum(
    claim,
    data,
    claim ? trailers[checksumHeader(claim.algorithm)] : undefined,
  );
  return { data, checksums, integrity: claim !== undefined || headers["content-md5"] !== undefined };
}

// -------------------------------------------------------------------------------------------------
// Tags

/** Tag-set rules shared by `x-amz-tagging` and PutObjectTagging (AWS's wording, unconfirmed). */
function checkTags(tags: Tag[]): Tag[] {
  const invalid = (message: string) => new ServiceError("InvalidTag", message, 400);
  if (tags.length > 10) throw invalid("Object tags cannot be greater than 10");
  const seen = new Set<string>();
  for (const t of tags) {
    if (seen.has(t.Key)) throw invalid("Cannot provide multiple Tags with the same key");
    seen.add(t.Key);
    if (t.Key.length === 0 || [...t.Key].length > 128)
      throw invalid("The TagKey you have provided is too long, max 128");
    if ([...t.Value].length > 256) throw invalid("The TagValue you have provided is too long, max 256");
    if (t.Key.toLowerCase().startsWith("aws:")) throw invalid("Your TagKey cannot be prefixed with aws:");
  }
  return tags;
}

/** `x-amz-tagging: k1=v1&k2=v2` (URL query form). */
function headerTags(value: string | undefined): Tag[] {
  if (value === undefined || value === "") return [];
  const tags: Tag[] = [];
  for (const [Key, Value] of new URLSearchParams(value)) tags.push({ Key, Value });
  return checkTags(tags);
}

function xmlTags(root: XmlNode): Tag[] {
  const set = xmlChild(root, "TagSet");
  if (!set) throw malformedXml();
  const tags: Tag[] = [];
  for (const t of xmlChildren(set, "Tag")) {
    const k = xmlChild(t, "Key");
    const v = xmlChild(t, "Value");
    if (!k || !v) throw malformedXml();
    tags.push({ Key: k.text, Value: v.text });
  }
  return checkTags(tags);
}

// -------------------------------------------------------------------------------------------------
// Headers of an object

/** RFC 7231 date (Last-Modified), at S3's one-second resolution. */
const httpDate = (iso: string) => new Date(iso).toUTCString();

function objectHeaders(bucket: BucketRecord, v: ObjectVersion): Record<string, string> {
  const h: Record<string, string> = {
    "last-modified": httpDate(v.lastModified),
    etag: v.etag,
    "content-type": v.contentType ?? "binary/octet-stream",
    "accept-ranges": "bytes",
    ...v.metadata,
    ...sseHeaders(v),
  };
  if (bucket.versioning) h["x-amz-version-id"] = v.versionId;
  return h;
}

function checksumHeaders(v: ObjectVersion): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [alg, value] of Object.entries(v.checksums ?? {}))
    h[checksumHeader(alg as ChecksumAlgorithm)] = value;
  if (Object.keys(h).length > 0) h["x-amz-checksum-type"] = "FULL_OBJECT";
  return h;
}

// -------------------------------------------------------------------------------------------------
// PutObject — https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html

export function putObject(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  const key = requireKey(input);
  const h = input.headers;
  const acl = h["x-amz-acl"];
  const sse = requestedSse(bucket, h);

  const extra: ContextKeys = {};
  if (acl !== undefined) extra["s3:x-amz-acl"] = acl;
  if (h["x-amz-server-side-encryption"] !== undefined)
    extra["s3:x-amz-server-side-encryption"] = h["x-amz-server-side-encryption"];
  if (h["x-amz-server-side-encryption-aws-kms-key-id"] !== undefined)
    extra["s3:x-amz-server-side-encryption-aws-kms-key-id"] =
      h["x-amz-server-side-encryption-aws-kms-key-id"];
  if (h["x-amz-storage-class"] !== undefined) extra["s3:x-amz-storage-class"] = h["x-amz-storage-class"];
  const tags = headerTags(h["x-amz-tagging"]);
  if (tags.length > 0) {
    extra["s3:RequestObjectTagKeys"] = tags.map((t) => t.Key);
    for (const t of tags) extra[`s3:RequestObjectTag/${t.Key}`] = t.Value;
  }
  authorizeS3(svc, ctx, "s3:PutObject", bucket, key, extra);
  // Tagging an object as it is uploaded needs s3:PutObjectTagging as well.
  if (tags.length > 0) authorizeS3(svc, ctx, "s3:PutObjectTagging", bucket, key, extra);

  checkAcl(bucket, acl, h);
  if (sse.algorithm === "aws:kms") requireSigV4(ctx);

  const keyBytes = Buffer.byteLength(key, "utf8");
  if (keyBytes > MAX_KEY_BYTES)
    throw new ServiceError("KeyTooLongError", "Your key is too long", 400, {
      MaxSizeAllowed: String(MAX_KEY_BYTES),
      Size: String(keyBytes),
    });
  const metadata = storedMetadata(h);
  const body = requestBody(input, ctx);

  const { sealed, sse: sseRecord } = encryptBody(svc, ctx, bucket, key, body.data, sse);
  const store = blobStore(svc.account);
  const blobId = store.write(sealed);
  const etag = sse.algorithm === "aws:kms" ? kmsEtag() : createHash("md5").update(body.data).digest("hex");
  const version: ObjectVersion = {
    versionId: bucket.versioning === "Enabled" ? newVersionId() : "null",
    deleteMarker: false,
    lastModified: ctx.now.toISOString(),
    etag: `"${etag}"`,
    size: body.data.length,
    blobId,
    metadata,
    checksums: body.checksums,
    sse: sseRecord,
    tags,
  };
  if (h["content-type"] !== undefined) version.contentType = h["content-type"];
  if (acl !== undefined && bucket.ownership !== "BucketOwnerEnforced") version.acl = acl;
  addVersion(svc, bucket, key, version);

  const headers = Object.assign({ etag: version.etag }, sseHeaders(version, true));
  if (bucket.versioning === "Enabled") headers["x-amz-version-id"] = version.versionId;
  // Echo the checksum the client sent (not the one S3 computes for itself).
  if (checksumClaim(h)) Object.assign(headers, checksumHeaders(version));
  return { headers };
}

/** ACL headers on an object upload: only `bucket-owner-full-control` while ACLs are disabled. */
function checkAcl(bucket: BucketRecord, acl: string | undefined, h: Record<string, string>): void {
  const grants = GRANT_HEADERS.filter((g) => h[g] !== undefined);
  if (acl === undefined && grants.length === 0) return;
  if (bucket.ownership === "BucketOwnerEnforced") {
    if (grants.length > 0 || acl !== "bucket-owner-full-control")
      throw new ServiceError("AccessControlListNotSupported", "The bucket does not allow ACLs", 400);
    return;
  }
  if (acl !== undefined && !CANNED_ACLS.has(acl))
    // Wording unconfirmed.
    throw new ServiceError("InvalidArgument", "", 400, { ArgumentName: "x-amz-acl", ArgumentValue: acl });
  if (acl !== undefined && PUBLIC_ACLS.has(acl) && bucket.publicAccessBlock?.BlockPublicAcls)
    throw new ServiceError("AccessDenied", "Access Denied", 403);
}

function storedMetadata(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  let metaBytes = 0;
  for (const name in h) {
    const value = h[name]!;
    if (name.startsWith("x-amz-meta-")) {
      out[name] = value;
      metaBytes += Buffer.byteLength(name.slice("x-amz-meta-".length)) + Buffer.byteLength(value);
    } else if (STORED_HEADERS.includes(name)) {
      if (name === "x-amz-storage-class" && value === "STANDARD") continue;
      out[name] = value;
    }
  }
  const encoding = storedContentEncoding(h["content-encoding"]);
  if (encoding !== undefined) out["content-encoding"] = encoding;
  if (metaBytes > MAX_METADATA_BYTES)
    throw new ServiceError(
      "MetadataTooLarge",
      "Your metadata headers exceed the maximum allowed metadata size.",
      400,
      { MaxSizeAllowed: String(MAX_METADATA_BYTES), Size: String(metaBytes) },
    );
  return out;
}

/**
 * Adds a new current version: replaces the key's one version in an unversioned bucket, the
 * `null` version in a suspended one, and stacks on top in an enabled one. Replaced bodies are
 * removed once the new state is saved.
 */
function addVersion(svc: S3Service, bucket: BucketRecord, key: string, version: ObjectVersion): void {
  const list = versionsOf(bucket, key) ?? [];
  const keep: ObjectVersion[] = [];
  for (const v of list) {
    const replaced =
      bucket.versioning === undefined || (bucket.versioning === "Suspended" && v.versionId === "null");
    if (replaced) dropBody(svc, v);
    else keep.push(v);
  }
  keep.push(version);
  setVersions(bucket, key, keep);
}

function dropBody(svc: S3Service, v: ObjectVersion): void {
  if (v.blobId !== undefined) blobStore(svc.account).removeAfterCommit(v.blobId);
}

// -------------------------------------------------------------------------------------------------
// GetObject / HeadObject — https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html

/** `response-*` query parameters that override a GET's response headers. */
const OVERRIDES: Record<string, string> = {
  "response-content-type": "content-type",
  "response-content-language": "content-language",
  "response-expires": "expires",
  "response-cache-control": "cache-control",
  "response-content-disposition": "content-disposition",
  "response-content-encoding": "content-encoding",
};

/** Tab, printable ASCII and the rest of Latin-1: what an HTTP header value can carry. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * A `response-*` override becomes a response header, so it must be one. S3 refuses a character
 * outside ISO-8859-1 with InvalidArgument, "Header value cannot be represented using ISO-8859-1."
 * (quoted from S3 in https://github.com/guardian/grid/pull/1716); that it answers control
 * characters (CR, LF...) the same way is unconfirmed.
 */
function checkHeaderValue(name: string, value: string): void {
  if (HEADER_VALUE.test(value)) return;
  // The value is echoed as S3 does, unless it holds characters an XML document cannot.
  const echoable = !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(value);
  throw new ServiceError("InvalidArgument", "Header value cannot be represented using ISO-8859-1.", 400, {
    ArgumentName: name,
    ...(echoable ? { ArgumentValue: value } : {}),
  });
}

export function getObject(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  return read(svc, input, ctx, true);
}

export function headObject(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  return read(svc, input, ctx, false);
}

function read(svc: S3Service, input: S3Input, ctx: CallContext, withBody: boolean): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  const key = requireKey(input);
  const versionId = one(input, "versionId");
  authorizeS3(svc, ctx, versionId === undefined ? "s3:GetObject" : "s3:GetObjectVersion", bucket, key);
  const v = findVersion(svc, ctx, bucket, key, versionId, input.method);
  rejectSseHeadersOnRead(input.headers);
  const overrides = Object.keys(OVERRIDES).filter((q) => input.query[q] !== undefined);
  if (overrides.length > 0 && !ctx.auth?.signed && ctx.auth !== undefined)
    throw new ServiceError(
      "InvalidRequest",
      "Request specific response headers cannot be used for anonymous GET requests.",
      400,
    );

  for (const q of overrides) checkHeaderValue(q, one(input, q)!);

  const headers = objectHeaders(bucket, v);
  const notModified = preconditions(input.headers, v);
  if (notModified) {
    const h: Record<string, string> = { etag: v.etag, "last-modified": headers["last-modified"]! };
    if (bucket.versioning) h["x-amz-version-id"] = v.versionId;
    return { status: 304, headers: h };
  }
  if (withBody && v.tags.length > 0) headers["x-amz-tagging-count"] = String(v.tags.length);
  for (const q of overrides) headers[OVERRIDES[q]!] = one(input, q)!;

  const range = parseRange(input.headers.range, v.size);
  if (range === "unsatisfiable")
    throw new ServiceError("InvalidRange", "The requested range is not satisfiable", 416, {
      RangeRequested: input.headers.range!,
      ActualObjectSize: String(v.size),
    });
  let status = 200;
  let length = v.size;
  if (range) {
    status = 206;
    length = range.end - range.start + 1;
    headers["content-range"] = `bytes ${range.start}-${range.end}/${v.size}`;
  } else if ((input.headers["x-amz-checksum-mode"] ?? "").toUpperCase() === "ENABLED") {
    Object.assign(headers, checksumHeaders(v));
  }
  headers["content-length"] = String(length);
  if (!withBody) return { status, headers };

  if (v.sse?.algorithm === "aws:kms") requireSigV4(ctx);
  const sealed = blobStore(svc.account).read(v.blobId!);
  const plaintext = decryptBody(svc, ctx, bucket, v, sealed);
  const bytes = range ? plaintext.subarray(range.start, range.end + 1) : plaintext;
  // A stream, as the SDK expects of GetObject's body (in process as over HTTP).
  const body = new PassThrough();
  body.end(bytes);
  return { status, headers, body };
}

/**
 * If-Match / If-Unmodified-Since (412 PreconditionFailed) and If-None-Match / If-Modified-Since
 * (304), with RFC 7232's precedence: the entity-tag condition wins over its date counterpart.
 * Returns true for 304.
 */
function preconditions(h: Record<string, string>, v: ObjectVersion): boolean {
  const etagMatches = (list: string) =>
    list.split(",").some((t) => {
      const tag = t.trim();
      return tag === "*" || tag === v.etag || `"${tag}"` === v.etag;
    });
  const modified = Math.floor(Date.parse(v.lastModified) / 1000) * 1000;
  const failed = (condition: string) =>
    new ServiceError(
      "PreconditionFailed",
      "At least one of the pre-conditions you specified did not hold",
      412,
      {
        Condition: condition,
      },
    );
  const ifMatch = h["if-match"];
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch)) throw failed("If-Match");
  } else {
    const since = h["if-unmodified-since"];
    const t = since === undefined ? Number.NaN : Date.parse(since);
    if (!Number.isNaN(t) && modified > t) throw failed("If-Unmodified-Since");
  }
  const ifNone = h["if-none-match"];
  if (ifNone !== undefined) return etagMatches(ifNone);
  const since = h["if-modified-since"];
  const t = since === undefined ? Number.NaN : Date.parse(since);
  return !Number.isNaN(t) && modified <= t;
}

/**
 * `Range: bytes=a-b | a- | -n` (one range; S3 serves no multi-range). A header S3 cannot read is
 * ignored (the whole object is served), as S3 does; a range past the end is unsatisfiable (416).
 */
function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Number(m[2]);
  if (end < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end: Math.min(end, size - 1) };
}

// -------------------------------------------------------------------------------------------------
// DeleteObject — https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObject.html

interface DeleteResult {
  deleteMarker: boolean;
  versionId?: string;
}

/**
 * Deletes one key or version. Without a version id: an unversioned bucket removes the key, an
 * enabled one stacks a delete marker, a suspended one replaces the `null` version by a `null`
 * marker. With one: that version goes for good (a marker too). A key that does not exist is no error.
 */
function deleteOne(
  svc: S3Service,
  ctx: CallContext,
  bucket: BucketRecord,
  key: string,
  versionId: string | undefined,
): DeleteResult {
  const list = versionsOf(bucket, key) ?? [];
  if (versionId !== undefined) {
    const i = list.findIndex((v) => v.versionId === versionId);
    if (i < 0) return { deleteMarker: false, versionId };
    const [gone] = list.splice(i, 1);
    dropBody(svc, gone!);
    setVersions(bucket, key, list);
    return { deleteMarker: gone!.deleteMarker, versionId };
  }
  if (!bucket.versioning) {
    for (const v of list) dropBody(svc, v);
    setVersions(bucket, key, []);
    return { deleteMarker: false };
  }
  const marker: ObjectVersion = {
    versionId: bucket.versioning === "Enabled" ? newVersionId() : "null",
    deleteMarker: true,
    lastModified: ctx.now.toISOString(),
    etag: "",
    size: 0,
    metadata: {},
    tags: [],
  };
  addVersion(svc, bucket, key, marker);
  return { deleteMarker: true, versionId: marker.versionId };
}

export function deleteObject(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  const key = requireKey(input);
  const versionId = one(input, "versionId");
  authorizeS3(svc, ctx, versionId === undefined ? "s3:DeleteObject" : "s3:DeleteObjectVersion", bucket, key);
  const result = deleteOne(svc, ctx, bucket, key, versionId);
  const headers: Record<string, string> = {};
  if (result.deleteMarker) headers["x-amz-delete-marker"] = "true";
  if (result.versionId !== undefined) headers["x-amz-version-id"] = result.versionId;
  return { status: 204, headers };
}

// -------------------------------------------------------------------------------------------------
// DeleteObjects — https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html

export function deleteObjects(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  const body = requestBody(input, ctx);
  if (!body.integrity)
    throw new ServiceError("InvalidRequest", "Missing required header for this request: Content-Md5", 400);
  const root = parseS3Body(body.data, "Delete");
  const quiet = (xmlChild(root, "Quiet")?.text.trim() ?? "false") === "true";
  const items = xmlChildren(root, "Object").map((o) => {
    const k = xmlChild(o, "Key");
    if (!k) throw malformedXml();
    const vid = xmlChild(o, "VersionId")?.text;
    return { key: k.text, versionId: vid };
  });
  if (items.length === 0 || items.length > MAX_DELETE_OBJECTS) throw malformedXml();

  const deleted: Record<string, unknown>[] = [];
  const errors: Record<string, unknown>[] = [];
  for (const item of items) {
    try {
      const action = item.versionId === undefined ? "s3:DeleteObject" : "s3:DeleteObjectVersion";
      authorizeS3(svc, ctx, action, bucket, item.key);
      const r = deleteOne(svc, ctx, bucket, item.key, item.versionId);
      if (quiet) continue;
      const entry: Record<string, unknown> = { Key: item.key };
      if (item.versionId !== undefined) {
        entry.VersionId = item.versionId;
        if (r.deleteMarker) {
          entry.DeleteMarker = true;
          entry.DeleteMarkerVersionId = item.versionId;
        }
      } else if (r.deleteMarker) {
        entry.DeleteMarker = true;
        entry.DeleteMarkerVersionId = r.versionId;
      }
      deleted.push(entry);
    } catch (err) {
      if (!(err instanceof ServiceError)) throw err;
      errors.push({
        Key: item.key,
        ...(item.versionId !== undefined ? { VersionId: item.versionId } : {}),
        Code: err.code,
        Message: err.message,
      });
    }
  }
  return { xml: { root: "DeleteResult", value: { Deleted: deleted, Error: errors } } };
}

// -------------------------------------------------------------------------------------------------
// Listings

/** S3 sorts keys by their UTF-8 bytes. */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

interface ListParams {
  prefix: string;
  delimiter?: string;
  /** Exclusive: keys (or common prefixes) up to and including this are skipped. */
  after?: string;
  maxKeys: number;
  encode: (s: string) => string;
  encodingType?: string;
}

function listParams(input: S3Input): Omit<ListParams, "after"> {
  const maxText = one(input, "max-keys");
  let maxKeys = MAX_LIST_KEYS;
  if (maxText !== undefined) {
    if (!/^\d{1,10}$/.test(maxText) || Number(maxText) > 2147483647)
      throw new ServiceError(
        "InvalidArgument",
        "Provided max-keys not an integer or within integer range",
        400,
        {
          ArgumentName: "max-keys",
          ArgumentValue: maxText,
        },
      );
    maxKeys = Math.min(Number(maxText), MAX_LIST_KEYS);
  }
  const encodingType = one(input, "encoding-type");
  if (encodingType !== undefined && encodingType !== "url")
    throw new ServiceError("InvalidArgument", "Invalid Encoding Method specified in Request", 400, {
      ArgumentName: "encoding-type",
      ArgumentValue: encodingType,
    });
  const delimiter = one(input, "delimiter");
  return {
    prefix: one(input, "prefix") ?? "",
    ...(delimiter !== undefined && delimiter !== "" ? { delimiter } : {}),
    maxKeys,
    // S3's URL encoding keeps `/` (unconfirmed detail) and writes spaces as `+`.
    encode:
      encodingType === "url"
        ? (s) => encodeURIComponent(s).replace(/%2F/g, "/").replace(/%20/g, "+")
        : (s) => s,
    ...(encodingType !== undefined ? { encodingType } : {}),
  };
}

/** The common prefix `key` rolls up into, if any. */
function commonPrefix(key: string, p: ListParams): string | undefined {
  if (p.delimiter === undefined) return undefined;
  const i = key.indexOf(p.delimiter, p.prefix.length);
  return i < 0 ? undefined : key.slice(0, i + p.delimiter.length);
}

interface Page<T> {
  items: T[];
  prefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned (NextMarker / the continuation token's content). */
  last?: string;
}

/** One page of current objects (latest version not a delete marker) in key order. */
function listCurrent(bucket: BucketRecord, p: ListParams): Page<[string, ObjectVersion]> {
  const keys = Object.keys(bucket.objects)
    .filter((k) => k.startsWith(p.prefix))
    .sort(byUtf8);
  const out: Page<[string, ObjectVersion]> = { items: [], prefixes: [], truncated: false };
  let count = 0;
  for (const key of keys) {
    if (p.after !== undefined && byUtf8(key, p.after) <= 0) continue;
    const list = bucket.objects[key]!;
    const latest = list[list.length - 1];
    if (!latest || latest.deleteMarker) continue;
    const cp = commonPrefix(key, p);
    if (cp !== undefined && (p.after === cp || out.prefixes[out.prefixes.length - 1] === cp)) continue;
    if (count === p.maxKeys) {
      out.truncated = true;
      break;
    }
    count++;
    if (cp !== undefined) {
      out.prefixes.push(cp);
      out.last = cp;
    } else {
      out.items.push([key, latest]);
      out.last = key;
    }
  }
  return out;
}

function owner(svc: S3Service) {
  return { ID: canonicalId(svc.account.accountId) };
}

function contentsEntry(svc: S3Service, p: ListParams, key: string, v: ObjectVersion, withOwner: boolean) {
  const algorithms = Object.keys(v.checksums ?? {});
  return {
    Key: p.encode(key),
    LastModified: v.lastModified,
    ETag: v.etag,
    ...(algorithms.length > 0 ? { ChecksumAlgorithm: algorithms, ChecksumType: "FULL_OBJECT" } : {}),
    Size: v.size,
    ...(withOwner ? { Owner: owner(svc) } : {}),
    StorageClass: v.metadata["x-amz-storage-class"] ?? "STANDARD",
  };
}

function authorizeList(
  svc: S3Service,
  ctx: CallContext,
  bucket: BucketRecord,
  action: string,
  p: ListParams,
): void {
  const extra: ContextKeys = { "s3:prefix": p.prefix, "s3:max-keys": p.maxKeys };
  if (p.delimiter !== undefined) extra["s3:delimiter"] = p.delimiter;
  authorizeS3(svc, ctx, action, bucket, undefined, extra);
}

const TOKEN_PREFIX = "kmslab-v1:";

function decodeToken(token: string): string {
  const text = Buffer.from(token, "base64").toString("utf8");
  if (!text.startsWith(TOKEN_PREFIX))
    throw new ServiceError("InvalidArgument", "The continuation token provided is incorrect", 400, {
      ArgumentName: "continuation-token",
      ArgumentValue: token,
    });
  return text.slice(TOKEN_PREFIX.length);
}

const encodeToken = (last: string) => Buffer.from(TOKEN_PREFIX + last, "utf8").toString("base64");

// ListObjectsV2 — https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
export function listObjectsV2(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  const base = listParams(input);
  authorizeList(svc, ctx, bucket, "s3:ListBucket", base);
  const token = one(input, "continuation-token");
  const startAfter = one(input, "start-after");
  const after = token !== undefined ? decodeToken(token) : startAfter;
  const p: ListParams = { ...base, ...(after !== undefined ? { after } : {}) };
  const page = listCurrent(bucket, p);
  const fetchOwner = one(input, "fetch-owner") === "true";
  return {
    xml: {
      root: "ListBucketResult",
      value: {
        Name: bucket.name,
        Prefix: p.encode(p.prefix),
        ...(p.delimiter !== undefined ? { Delimiter: p.encode(p.delimiter) } : {}),
        MaxKeys: p.maxKeys,
        KeyCount: page.items.length + page.prefixes.length,
        IsTruncated: page.truncated,
        ...(token !== undefined ? { ContinuationToken: token } : {}),
        ...(page.truncated && page.last !== undefined
          ? { NextContinuationToken: encodeToken(page.last) }
          : {}),
        ...(startAfter !== undefined ? { StartAfter: p.encode(startAfter) } : {}),
        ...(p.encodingType !== undefined ? { EncodingType: p.encodingType } : {}),
        Contents: page.items.map(([k, v]) => contentsEntry(svc, p, k, v, fetchOwner)),
        CommonPrefixes: page.prefixes.map((cp) => ({ Prefix: p.encode(cp) })),
      },
    },
  };
}

// ListObjects (v1) — https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjects.html
export function listObjects(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  const base = listParams(input);
  authorizeList(svc, ctx, bucket, "s3:ListBucket", base);
  const marker = one(input, "marker");
  const p: ListParams = { ...base, ...(marker !== undefined && marker !== "" ? { after: marker } : {}) };
  const page = listCurrent(bucket, p);
  return {
    xml: {
      root: "ListBucketResult",
      value: {
        Name: bucket.name,
        Prefix: p.encode(p.prefix),
        Marker: p.encode(marker ?? ""),
        ...(page.truncated && p.delimiter !== undefined && page.last !== undefined
          ? { NextMarker: p.encode(page.last) }
          : {}),
        MaxKeys: p.maxKeys,
        ...(p.delimiter !== undefined ? { Delimiter: p.encode(p.delimiter) } : {}),
        IsTruncated: page.truncated,
        ...(p.encodingType !== undefined ? { EncodingType: p.encodingType } : {}),
        Contents: page.items.map(([k, v]) => contentsEntry(svc, p, k, v, true)),
        CommonPrefixes: page.prefixes.map((cp) => ({ Prefix: p.encode(cp) })),
      },
    },
  };
}

// ListObjectVersions — https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html
export function listObjectVersions(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  const p = listParams(input);
  authorizeList(svc, ctx, bucket, "s3:ListBucketVersions", p);
  const keyMarker = one(input, "key-marker") || undefined;
  const versionIdMarker = one(input, "version-id-marker") || undefined;
  if (versionIdMarker !== undefined && keyMarker === undefined)
    throw new ServiceError(
      "InvalidArgument",
      "A version-id marker cannot be specified without a key marker.",
      400,
      { ArgumentName: "version-id-marker", ArgumentValue: versionIdMarker },
    );

  const keys = Object.keys(bucket.objects)
    .filter((k) => k.startsWith(p.prefix))
    .sort(byUtf8);
  const versions: Record<string, unknown>[] = [];
  const markers: Record<string, unknown>[] = [];
  const prefixes: string[] = [];
  let count = 0;
  let truncated = false;
  let nextKey: string | undefined;
  let nextVersion: string | undefined;
  outer: for (const key of keys) {
    if (keyMarker !== undefined) {
      const c = byUtf8(key, keyMarker);
      if (c < 0 || (c === 0 && versionIdMarker === undefined)) continue;
    }
    const cp = commonPrefix(key, p);
    if (cp !== undefined) {
      if (keyMarker === cp || prefixes[prefixes.length - 1] === cp) continue;
      if (count === p.maxKeys) {
        truncated = true;
        break;
      }
      count++;
      prefixes.push(cp);
      nextKey = cp;
      nextVersion = undefined;
      continue;
    }
    const list = bucket.objects[key]!;
    let started = !(keyMarker === key && versionIdMarker !== undefined);
    for (let i = list.length - 1; i >= 0; i--) {
      const v = list[i]!;
      if (!started) {
        if (v.versionId === versionIdMarker) started = true;
        continue;
      }
      if (count === p.maxKeys) {
        truncated = true;
        break outer;
      }
      count++;
      // Each entry one literal (undefined members are left out of the XML): a spread of a common
      // part would give every entry a hidden class of its own (see onBehalf in core/service.ts).
      const isLatest = i === list.length - 1;
      if (v.deleteMarker)
        markers.push({
          Key: p.encode(key),
          VersionId: v.versionId,
          IsLatest: isLatest,
          LastModified: v.lastModified,
          Owner: owner(svc),
        });
      else {
        const algorithms = Object.keys(v.checksums ?? {});
        const checksummed = algorithms.length > 0;
        versions.push({
          Key: p.encode(key),
          VersionId: v.versionId,
          IsLatest: isLatest,
          LastModified: v.lastModified,
          ETag: v.etag,
          ChecksumAlgorithm: checksummed ? algorithms : undefined,
          ChecksumType: checksummed ? "FULL_OBJECT" : undefined,
          Size: v.size,
          StorageClass: v.metadata["x-amz-storage-class"] ?? "STANDARD",
          Owner: owner(svc),
        });
      }
      nextKey = key;
      nextVersion = v.versionId;
    }
  }
  return {
    xml: {
      root: "ListVersionsResult",
      value: {
        Name: bucket.name,
        Prefix: p.encode(p.prefix),
        KeyMarker: p.encode(keyMarker ?? ""),
        VersionIdMarker: versionIdMarker ?? "",
        ...(truncated && nextKey !== undefined ? { NextKeyMarker: p.encode(nextKey) } : {}),
        ...(truncated && nextVersion !== undefined ? { NextVersionIdMarker: nextVersion } : {}),
        MaxKeys: p.maxKeys,
        ...(p.delimiter !== undefined ? { Delimiter: p.encode(p.delimiter) } : {}),
        IsTruncated: truncated,
        ...(p.encodingType !== undefined ? { EncodingType: p.encodingType } : {}),
        Version: versions,
        DeleteMarker: markers,
        CommonPrefixes: prefixes.map((cp) => ({ Prefix: p.encode(cp) })),
      },
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Object ACL and tagging

/** The version a sub-resource operation (tagging, ACL) names: a delete marker counts as missing. */
function subresourceTarget(
  svc: S3Service,
  input: S3Input,
  ctx: CallContext,
  action: string,
  versionAction: string,
): { bucket: BucketRecord; key: string; v: ObjectVersion; versionId?: string } {
  const bucket = requireBucket(svc, input.Bucket);
  const key = requireKey(input);
  const versionId = one(input, "versionId");
  authorizeS3(svc, ctx, versionId === undefined ? action : versionAction, bucket, key);
  const v = findVersion(svc, ctx, bucket, key, versionId, input.method);
  return { bucket, key, v, ...(versionId !== undefined ? { versionId } : {}) };
}

function versionHeader(bucket: BucketRecord, v: ObjectVersion): Record<string, string> {
  return bucket.versioning ? { "x-amz-version-id": v.versionId } : {};
}

// GetObjectAcl — https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectAcl.html
export function getObjectAcl(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const { bucket, v } = subresourceTarget(svc, input, ctx, "s3:GetObjectAcl", "s3:GetObjectVersionAcl");
  const me = owner(svc);
  const grantee = (type: string, fields: Record<string, string>) => ({
    "@xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "@xsi:type": type,
    ...fields,
  });
  const grants: Record<string, unknown>[] = [
    { Grantee: grantee("CanonicalUser", me), Permission: "FULL_CONTROL" },
  ];
  const allUsers = { URI: "http://acs.amazonaws.com/groups/global/AllUsers" };
  if (v.acl === "public-read" || v.acl === "public-read-write")
    grants.push({ Grantee: grantee("Group", allUsers), Permission: "READ" });
  if (v.acl === "public-read-write")
    grants.push({ Grantee: grantee("Group", allUsers), Permission: "WRITE" });
  if (v.acl === "authenticated-read")
    grants.push({
      Grantee: grantee("Group", { URI: "http://acs.amazonaws.com/groups/global/AuthenticatedUsers" }),
      Permission: "READ",
    });
  return {
    headers: versionHeader(bucket, v),
    xml: { root: "AccessControlPolicy", value: { Owner: me, AccessControlList: { Grant: grants } } },
  };
}

// GetObjectTagging — https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectTagging.html
export function getObjectTagging(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const { bucket, v } = subresourceTarget(
    svc,
    input,
    ctx,
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
  );
  return {
    headers: versionHeader(bucket, v),
    xml: { root: "Tagging", value: { TagSet: { Tag: v.tags.map((t) => ({ Key: t.Key, Value: t.Value })) } } },
  };
}

// PutObjectTagging — https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectTagging.html
export function putObjectTagging(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const { bucket, v } = subresourceTarget(
    svc,
    input,
    ctx,
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
  );
  const body = requestBody(input, ctx);
  v.tags = xmlTags(parseS3Body(body.data, "Tagging"));
  return { headers: versionHeader(bucket, v) };
}

// DeleteObjectTagging — https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjectTagging.html
export function deleteObjectTagging(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const { bucket, v } = subresourceTarget(
    svc,
    input,
    ctx,
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
  );
  v.tags = [];
  return { status: 204, headers: versionHeader(bucket, v) };
}
