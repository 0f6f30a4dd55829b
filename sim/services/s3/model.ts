import type { Readable } from "node:stream";

/**
 * What the simulated S3 keeps, JSON-safe so the store can persist it as it is (object bodies live
 * in files of the data directory, named by a random id, never by the object's key).
 */

/** A request as the S3 codec hands it to an operation: REST parts, already routed. */
export interface S3Input {
  /** The bucket, from the path or the virtual host; undefined for ListBuckets. */
  Bucket?: string;
  /** The object key, percent-decoded; undefined for bucket operations. */
  Key?: string;
  method: string;
  /** Decoded query parameters (`versionId`, `list-type`, `prefix`...). */
  query: Record<string, string[]>;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** The body as sent (still `aws-chunked` if it was). */
  body: Uint8Array;
  /** Whether the bucket came from the Host header (virtual-hosted style). */
  virtualHosted: boolean;
}

/** What an S3 operation returns for the codec to render. */
export interface S3Output {
  /** 200 unless given (204 for deletions, ...). */
  status?: number;
  /** Response headers, lower-case names (ETag, x-amz-server-side-encryption, Location...). */
  headers?: Record<string, string>;
  /**
   * An XML document: the root element's name and its content, rendered by the codec with
   * `renderFlatXml` (sim/core/xml.ts) inside `<root xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`.
   * Arrays are flattened (each item repeats the key: `{Contents: [a, b]}`); a wrapped list is an
   * object holding the array (`{TagSet: {Tag: [...]}}`); `@name` keys become attributes; Dates are
   * written ISO-8601 with milliseconds, as S3 writes them. A string value is the root's text
   * (GetBucketLocation's `<LocationConstraint>`).
   */
  xml?: { root: string; value: Record<string, unknown> | string };
  /** A raw body (GetObject). */
  body?: Uint8Array | Readable;
}

export interface Tag {
  Key: string;
  Value: string;
}

export interface PublicAccessBlock {
  BlockPublicAcls: boolean;
  IgnorePublicAcls: boolean;
  BlockPublicPolicy: boolean;
  RestrictPublicBuckets: boolean;
}

export interface EncryptionRule {
  SSEAlgorithm: "AES256" | "aws:kms" | "aws:kms:dsse";
  KMSMasterKeyID?: string;
  BucketKeyEnabled: boolean;
}

/**
 * One version of an object (unversioned buckets keep exactly one, with versionId "null"). Owned by
 * objects.ts. No secret is kept here: the body is in a blob file, encrypted; only wrapped data keys.
 */
export interface ObjectVersion {
  versionId: string;
  /** A delete marker has no body, no ETag worth showing and no encryption. */
  deleteMarker: boolean;
  lastModified: string;
  /** Quoted, as S3 shows it (`"d41d8cd98f00b204e9800998ecf8427e"`). */
  etag: string;
  size: number;
  /** The file holding the (encrypted-at-rest) body in the data directory's `s3/objects/`; random. */
  blobId?: string;
  contentType?: string;
  /**
   * Other stored headers replayed on GET/HEAD, lower-case names (content-encoding, cache-control,
   * content-disposition, content-language, expires, x-amz-meta-*, x-amz-storage-class...).
   */
  metadata: Record<string, string>;
  /** Verified (or S3-computed) checksums by algorithm (`CRC32` → base64), FULL_OBJECT type. */
  checksums?: Record<string, string>;
  /** Absent on delete markers. */
  sse?: {
    algorithm: "AES256" | "aws:kms";
    /** SSE-KMS: the key's ARN. */
    kmsKeyArn?: string;
    /** The wrapped data key (base64): by KMS for SSE-KMS, by the S3 master key for SSE-S3. */
    encryptedDataKey?: string;
    /** SSE-KMS: the encryption context S3 gave KMS (`aws:s3:arn` and the caller's pairs). */
    context?: Record<string, string>;
    /** Whether the caller sent `x-amz-server-side-encryption-context` (echoed on PutObject). */
    callerContext?: boolean;
    bucketKeyEnabled?: boolean;
  };
  tags: Tag[];
  /** The canned ACL given at upload, when the bucket allows ACLs. */
  acl?: string;
}

/** A canned ACL as stored on a bucket whose ownership setting allows ACLs. */
export type CannedAcl = "private" | "public-read" | "public-read-write" | "authenticated-read";

export interface BucketRecord {
  name: string;
  region: string;
  creationDate: string;
  /** The bucket's ACL (canned), kept only while ACLs are enabled; absent means `private`. */
  acl?: CannedAcl;
  /** Bucket policy text exactly as put. */
  policy?: string;
  publicAccessBlock?: PublicAccessBlock;
  ownership: "BucketOwnerEnforced" | "BucketOwnerPreferred" | "ObjectWriter";
  /** Default encryption; every bucket has one (SSE-S3 unless configured), absent only in old states. */
  encryption?: EncryptionRule;
  tags?: Tag[];
  versioning?: "Enabled" | "Suspended";
  /** Object key → its versions, newest last. */
  objects: Record<string, ObjectVersion[]>;
}

export interface S3State {
  buckets: Record<string, BucketRecord>;
}

export const emptyS3State = (): S3State => ({ buckets: {} });
