import { ServiceError } from "../../core/errors.js";
import { pooledRandom } from "../../core/random.js";
import type { ServiceProvider } from "../../core/service.js";
import type { SimRequest, SimResponse } from "../../core/types.js";
import { escapeXml, flatElement, parseXml, XML_DECLARATION, type XmlNode } from "../../core/xml.js";
import { type Codec, fromUtf8, utf8 } from "../../protocols/codec.js";
import type { S3Input, S3Output } from "./model.js";

/**
 * S3's REST wire layer (restXml): finds the operation from method, path and query subresource,
 * hands the operation an S3Input, and renders S3Outputs and errors as S3 does.
 *
 * Addressing: path style (`/<bucket>/<key>`) and virtual-hosted style (Host `<bucket>.s3.<region>.amazonaws.com`,
 * `<bucket>.s3.amazonaws.com`, `<bucket>.s3-<region>.amazonaws.com`, `<bucket>.localhost[:port]`). The raw
 * path is percent-decoded exactly once, so keys keep spaces, `+`, unicode, `//` and `../` as the client
 * meant them (an object key is a name, never a path: see objects.ts for where bodies live).
 *
 * Query parameters S3 does not know are ignored, as S3 ignores them (the SDK's `x-id=<Op>` is one).
 * Subresources S3 knows but the simulator does not implement answer 501 NotImplemented; methods S3
 * has no meaning for answer 405 MethodNotAllowed.
 */

export const S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/";

/** A ServiceError carrying response headers (301 PermanentRedirect's `x-amz-bucket-region`). */
export class S3Error extends ServiceError {
  constructor(
    code: string,
    message: string,
    status: number,
    extra: Record<string, string> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message, status, extra);
  }
}

export const malformedXml = () =>
  new ServiceError(
    "MalformedXML",
    "The XML you provided was not well-formed or did not validate against our published schema",
    400,
  );

/**
 * A request body as an XML document whose root must be `root` (local name), or 400 MalformedXML
 * as S3 answers for anything it cannot read: bad syntax, DOCTYPE/ENTITY declarations, the wrong
 * root element, too deep or too large.
 */
export function parseS3Body(body: Uint8Array, root: string, maxLength = 1024 * 1024): XmlNode {
  if (body.length > maxLength) throw malformedXml();
  let node: XmlNode;
  try {
    node = parseXml(fromUtf8.decode(body), { maxDepth: 32, maxLength });
  } catch {
    throw malformedXml();
  }
  if (node.name.slice(node.name.indexOf(":") + 1) !== root) throw malformedXml();
  return node;
}

// -------------------------------------------------------------------------------------------------
// Routing

/** Query parameters that select a bucket subresource, mapped per method to an operation. */
type Table = Record<string, string>;

// `""` is the bucket (or object) itself. Operations not in the provider's list answer 501.
const BUCKET_ROUTES: Record<string, Table> = {
  GET: {
    "": "ListObjects",
    "list-type": "ListObjectsV2",
    policy: "GetBucketPolicy",
    policyStatus: "GetBucketPolicyStatus",
    publicAccessBlock: "GetPublicAccessBlock",
    encryption: "GetBucketEncryption",
    tagging: "GetBucketTagging",
    acl: "GetBucketAcl",
    ownershipControls: "GetBucketOwnershipControls",
    versioning: "GetBucketVersioning",
    location: "GetBucketLocation",
    versions: "ListObjectVersions",
    uploads: "ListMultipartUploads",
    cors: "GetBucketCors",
    lifecycle: "GetBucketLifecycleConfiguration",
    logging: "GetBucketLogging",
    notification: "GetBucketNotificationConfiguration",
    replication: "GetBucketReplication",
    website: "GetBucketWebsite",
    requestPayment: "GetBucketRequestPayment",
    accelerate: "GetBucketAccelerateConfiguration",
    "object-lock": "GetObjectLockConfiguration",
    analytics: "GetBucketAnalyticsConfiguration",
    inventory: "GetBucketInventoryConfiguration",
    metrics: "GetBucketMetricsConfiguration",
    "intelligent-tiering": "GetBucketIntelligentTieringConfiguration",
    metadataTable: "GetBucketMetadataTableConfiguration",
  },
  PUT: {
    "": "CreateBucket",
    policy: "PutBucketPolicy",
    publicAccessBlock: "PutPublicAccessBlock",
    encryption: "PutBucketEncryption",
    tagging: "PutBucketTagging",
    acl: "PutBucketAcl",
    ownershipControls: "PutBucketOwnershipControls",
    versioning: "PutBucketVersioning",
    cors: "PutBucketCors",
    lifecycle: "PutBucketLifecycleConfiguration",
    logging: "PutBucketLogging",
    notification: "PutBucketNotificationConfiguration",
    replication: "PutBucketReplication",
    website: "PutBucketWebsite",
    requestPayment: "PutBucketRequestPayment",
    accelerate: "PutBucketAccelerateConfiguration",
    "object-lock": "PutObjectLockConfiguration",
    analytics: "PutBucketAnalyticsConfiguration",
    inventory: "PutBucketInventoryConfiguration",
    metrics: "PutBucketMetricsConfiguration",
    "intelligent-tiering": "PutBucketIntelligentTieringConfiguration",
  },
  DELETE: {
    "": "DeleteBucket",
    policy: "DeleteBucketPolicy",
    publicAccessBlock: "DeletePublicAccessBlock",
    encryption: "DeleteBucketEncryption",
    tagging: "DeleteBucketTagging",
    ownershipControls: "DeleteBucketOwnershipControls",
    cors: "DeleteBucketCors",
    lifecycle: "DeleteBucketLifecycle",
    replication: "DeleteBucketReplication",
    website: "DeleteBucketWebsite",
    analytics: "DeleteBucketAnalyticsConfiguration",
    inventory: "DeleteBucketInventoryConfiguration",
    metrics: "DeleteBucketMetricsConfiguration",
    "intelligent-tiering": "DeleteBucketIntelligentTieringConfiguration",
    metadataTable: "DeleteBucketMetadataTableConfiguration",
  },
  HEAD: { "": "HeadBucket" },
  POST: { delete: "DeleteObjects", metadataTable: "CreateBucketMetadataTableConfiguration" },
};

const OBJECT_ROUTES: Record<string, Table> = {
  GET: {
    "": "GetObject",
    tagging: "GetObjectTagging",
    acl: "GetObjectAcl",
    attributes: "GetObjectAttributes",
    uploadId: "ListParts",
    retention: "GetObjectRetention",
    "legal-hold": "GetObjectLegalHold",
    torrent: "GetObjectTorrent",
  },
  PUT: {
    "": "PutObject",
    tagging: "PutObjectTagging",
    acl: "PutObjectAcl",
    uploadId: "UploadPart",
    retention: "PutObjectRetention",
    "legal-hold": "PutObjectLegalHold",
  },
  DELETE: { "": "DeleteObject", tagging: "DeleteObjectTagging", uploadId: "AbortMultipartUpload" },
  HEAD: { "": "HeadObject" },
  POST: {
    uploads: "CreateMultipartUpload",
    uploadId: "CompleteMultipartUpload",
    restore: "RestoreObject",
    select: "SelectObjectContent",
    renameObject: "RenameObject",
  },
};

/** Hosts seen and the bucket each names: a client sends the same few Host headers again and again. */
const hostBuckets = new Map<string, string | undefined>();

/** The bucket a Host header names (virtual-hosted style), or undefined for path style. */
export function hostBucket(host: string | undefined): string | undefined {
  if (!host) return undefined;
  if (hostBuckets.has(host)) return hostBuckets.get(host);
  if (hostBuckets.size >= 1024) hostBuckets.clear();
  const bucket = bucketOfHost(host);
  hostBuckets.set(host, bucket);
  return bucket;
}

function bucketOfHost(host: string): string | undefined {
  const name = host.replace(/:\d+$/, "").toLowerCase();
  const aws = /^(.+)\.s3(?:[.-]dualstack)?(?:[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?$/.exec(name);
  if (aws) return aws[1];
  const local = /^(.+)\.localhost$/.exec(name);
  return local ? local[1] : undefined;
}

/** The routed operation and its input; throws the S3 errors of malformed requests. */
export function route(req: SimRequest): { operation: string; input: S3Input } {
  const raw = req.rawPath.split("?")[0] || "/";
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new ServiceError("InvalidURI", "Couldn't parse the specified URI.", 400, { URI: raw });
  }
  const virtual = hostBucket(req.headers.host);
  let bucket: string | undefined;
  let key: string | undefined;
  if (virtual !== undefined) {
    bucket = virtual;
    key = decoded.slice(1);
  } else {
    const rest = decoded.slice(1);
    const slash = rest.indexOf("/");
    bucket = slash < 0 ? rest : rest.slice(0, slash);
    key = slash < 0 ? "" : rest.slice(slash + 1);
    if (bucket === "") bucket = undefined;
  }
  if (key === "") key = undefined;
  const method = req.method.toUpperCase();
  // One shape for every request (no spread of optional members): S3's busiest object.
  const input: S3Input = {
    Bucket: bucket,
    Key: key,
    method,
    query: req.query,
    headers: req.headers,
    body: req.body,
    virtualHosted: virtual !== undefined,
  };

  if (bucket === undefined) {
    if (method === "GET") return { operation: "ListBuckets", input };
    throw methodNotAllowed(method, "SERVICE");
  }
  const table = (key === undefined ? BUCKET_ROUTES : OBJECT_ROUTES)[method];
  if (!table) throw methodNotAllowed(method, key === undefined ? "BUCKET" : "OBJECT");
  // The first subresource the table knows decides; unknown parameters are ignored.
  let operation = table[""];
  for (const name of Object.keys(req.query)) {
    const op = table[name];
    if (op !== undefined && name !== "") {
      operation = op;
      break;
    }
  }
  // Multipart: `?uploads` on PUT/GET of an object, `?partNumber&uploadId` etc. all need uploadId.
  if (operation === undefined) throw methodNotAllowed(method, key === undefined ? "BUCKET" : "OBJECT");
  return { operation, input };
}

function methodNotAllowed(method: string, resourceType: string): ServiceError {
  return new ServiceError(
    "MethodNotAllowed",
    "The specified method is not allowed against this resource.",
    405,
    {
      Method: method,
      ResourceType: resourceType,
    },
  );
}

/**
 * What S3 says for functionality it has and the simulator does not. AWS's wording for
 * NotImplemented ("A header you provided implies functionality that is not implemented.") is
 * kept, with the operation named in a `Header`-like extra so a reader learns which one.
 */
function notImplemented(operation: string): ServiceError {
  return new ServiceError(
    "NotImplemented",
    "A header you provided implies functionality that is not implemented.",
    501,
    { Operation: operation },
  );
}

// -------------------------------------------------------------------------------------------------
// Rendering

/** `x-amz-id-2`: AWS's extended request id, an opaque base64 token; derived from the request id. */
/** S3's `x-amz-id-2` (an opaque base64 token, 48 bytes as AWS's are): random, from the pool. */
export function hostId(): string {
  return pooledRandom(48).toString("base64");
}

function baseHeaders(requestId: string, id2 = hostId()): Record<string, string> {
  return { "x-amz-request-id": requestId, "x-amz-id-2": id2, server: "AmazonS3" };
}

/** An S3 XML document: the declaration, then the root with S3's namespace. */
export function renderDocument(root: string, value: Record<string, unknown> | string): string {
  const attrs = ` xmlns="${S3_NAMESPACE}"`;
  return XML_DECLARATION + flatElement(root, value, attrs);
}

export const s3Codec: Codec = {
  decode(req: SimRequest, provider: ServiceProvider) {
    const { operation, input } = route(req);
    if (!provider.operations[operation]) throw notImplemented(operation);
    return { operation, input: input as unknown as Record<string, unknown> };
  },

  encode(_provider, _operation, output, requestId): SimResponse {
    const out = (output ?? {}) as S3Output;
    const headers = Object.assign(baseHeaders(requestId), out.headers);
    let body: SimResponse["body"] = new Uint8Array(0);
    if (out.xml) {
      body = utf8.encode(renderDocument(out.xml.root, out.xml.value));
      headers["content-type"] ??= "application/xml";
    } else if (out.body !== undefined) {
      body = out.body;
    }
    return { status: out.status ?? 200, headers, body };
  },

  encodeError(_provider, error, requestId): SimResponse {
    let extras = "";
    const id2 = hostId();
    for (const [k, v] of Object.entries(error.extra)) extras += `<${k}>${escapeXml(v)}</${k}>`;
    const text =
      `${XML_DECLARATION}<Error><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message>` +
      `${extras}<RequestId>${requestId}</RequestId><HostId>${id2}</HostId></Error>`;
    const headers = baseHeaders(requestId, id2);
    headers["content-type"] = "application/xml";
    if (error instanceof S3Error) Object.assign(headers, error.headers);
    return { status: error.status, headers, body: utf8.encode(text) };
  },
};
