import type { Account, CallRecord } from "../../account.js";
import type { Principal } from "../../core/types.js";

/**
 * A call as CloudTrail writes it down (aws-subset §3.5): who (userIdentity, with `invokedBy` when an
 * AWS service called on the requester's behalf), what (eventSource, eventName, requestParameters
 * without secrets), the answer (responseElements — none for KMS's cryptographic calls —,
 * errorCode/errorMessage), on what (resources) and its category (S3 object calls are data events).
 */
export interface TrailEvent {
  eventVersion: string;
  userIdentity: Record<string, unknown>;
  eventTime: string;
  eventSource: string;
  eventName: string;
  awsRegion: string;
  sourceIPAddress: string;
  userAgent: string;
  errorCode?: string;
  errorMessage?: string;
  requestParameters: Record<string, unknown> | null;
  responseElements: Record<string, unknown> | null;
  additionalEventData?: Record<string, unknown>;
  requestID: string;
  eventID: string;
  readOnly: boolean;
  resources?: { accountId?: string; type: string; ARN: string }[];
  eventType: "AwsApiCall";
  managementEvent: boolean;
  recipientAccountId: string;
  eventCategory: "Management" | "Data";
}

/** S3's object-level operations: data events, logged only by trails that select them. */
export const S3_DATA = new Set([
  "GetObject",
  "PutObject",
  "HeadObject",
  "DeleteObject",
  "DeleteObjects",
  "GetObjectAcl",
  "GetObjectTagging",
  "PutObjectTagging",
  "DeleteObjectTagging",
  "ListObjects",
  "ListObjectsV2",
  "ListObjectVersions",
]);

/** Services whose events CloudTrail records in us-east-1 whatever the caller's Region (global services). */
export const GLOBAL_SOURCES = new Set(["iam.amazonaws.com", "sts.amazonaws.com"]);

/** Request and response members never written down: data, keys and credentials. */
const SECRET_MEMBERS = new Set([
  "Plaintext",
  "CiphertextBlob",
  "SecretAccessKey",
  "SessionToken",
  "Password",
  "GrantTokens",
  "Body",
]);

/** Members whose value is a map with the caller's own keys: copied as they are, not camelCased. */
const MAPS = new Set([
  "EncryptionContext",
  "SourceEncryptionContext",
  "DestinationEncryptionContext",
  "EncryptionContextSubset",
  "EncryptionContextEquals",
]);

/** KMS's cryptographic operations: CloudTrail logs no response for them (aws-subset §3.5). */
const KMS_CRYPTO = new Set([
  "Encrypt",
  "Decrypt",
  "ReEncrypt",
  "GenerateDataKey",
  "GenerateDataKeyWithoutPlaintext",
  "GenerateRandom",
]);

function camel(key: string): string {
  return key.length > 1 && /^[A-Z]{2}/.test(key) ? key : key.charAt(0).toLowerCase() + key.slice(1);
}

/** AWS's lowerCamel form of a request or response, secrets left out. */
function logged(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString().replace(/\.\d{3}Z$/, "Z");
  if (value instanceof Uint8Array) return undefined;
  if (Array.isArray(value)) return value.map(logged);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (SECRET_MEMBERS.has(k) || v === undefined) continue;
      out[camel(k)] = MAPS.has(k) ? v : logged(v);
    }
    return out;
  }
  return value;
}

export function userIdentity(p: Principal, viaService: string | undefined): Record<string, unknown> {
  const invoked = viaService === undefined ? {} : { invokedBy: serviceDnsName(viaService) };
  switch (p.type) {
    case "IAMUser":
      return {
        type: "IAMUser",
        principalId: p.userId,
        arn: p.arn,
        accountId: p.accountId,
        accessKeyId: p.accessKeyId,
        userName: p.userName,
        ...invoked,
      };
    case "AssumedRole":
      return {
        type: "AssumedRole",
        principalId: p.userId,
        arn: p.arn,
        accountId: p.accountId,
        accessKeyId: p.accessKeyId,
        sessionContext: {
          sessionIssuer: {
            type: "Role",
            principalId: p.roleId,
            arn: p.roleArn,
            accountId: p.accountId,
            userName: p.roleName,
          },
          attributes: { creationDate: p.sessionIssuedAt, mfaAuthenticated: "false" },
        },
        ...invoked,
      };
    case "Root":
      return {
        type: "Root",
        principalId: p.accountId,
        arn: p.arn,
        accountId: p.accountId,
        accessKeyId: p.accessKeyId,
        ...invoked,
      };
    case "AWSService":
      return { type: "AWSService", invokedBy: p.service ?? p.arn };
    default:
      // S3 logs anonymous requests with the "anonymous" account.
      return { type: "AWSAccount", principalId: "", accountId: "anonymous" };
  }
}

/**
 * `s3.us-east-1.amazonaws.com` (what `kms:ViaService` holds) → `s3.amazonaws.com`: CloudTrail names
 * the calling service by its DNS name, without the Region (aws-subset §3.5; §9.4 unconfirmed).
 */
export function serviceDnsName(via: string): string {
  const m = /^([a-z0-9-]+)\.[a-z]{2}(-gov)?-[a-z]+-\d\.amazonaws\.com$/.exec(via);
  return m ? `${m[1]}.amazonaws.com` : via;
}

function s3Parameters(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof input.Bucket === "string") out.bucketName = input.Bucket;
  if (typeof input.Key === "string") out.key = input.Key;
  const headers = input.headers as Record<string, string> | undefined;
  if (headers?.host) out.Host = headers.host;
  const query = input.query as Record<string, string[]> | undefined;
  for (const [k, v] of Object.entries(query ?? {})) if (!k.startsWith("X-Amz-")) out[k] = v[0] ?? "";
  return out;
}

function requestParameters(r: PendingRecord): Record<string, unknown> | null {
  if (r.service === "s3") return s3Parameters(r.input);
  const out = logged(r.input) as Record<string, unknown>;
  if (
    r.service === "kms" &&
    (r.operation === "Decrypt" || r.operation === "Encrypt" || r.operation === "ReEncrypt")
  )
    out.encryptionAlgorithm ??= "SYMMETRIC_DEFAULT";
  return Object.keys(out).length > 0 ? out : null;
}

function responseElements(r: PendingRecord): Record<string, unknown> | null {
  if (r.error || r.output === undefined || r.output === null) return null;
  if (r.readOnly) return null;
  if (r.service === "kms" && KMS_CRYPTO.has(r.operation)) return null;
  if (r.service === "s3") return null;
  const out = logged(r.output) as Record<string, unknown>;
  return Object.keys(out).length > 0 ? out : null;
}

function resources(r: CallRecord, account: Account): TrailEvent["resources"] {
  const acct = account.accountId;
  // Unconfirmed: AWS may not name the key of a ciphertext it refuses to decrypt for the caller (the
  // caller may not learn which key it was). The simulator takes the stricter reading: a denied
  // Decrypt lists no resource, so a lookup by the key's ARN does not find it.
  if (r.service === "kms" && r.operation === "Decrypt" && r.error?.code === "AccessDeniedException")
    return undefined;
  if (r.service === "kms") {
    const out = r.output as Record<string, unknown> | undefined;
    const fromOutput =
      (out?.KeyMetadata as { Arn?: string } | undefined)?.Arn ??
      (typeof out?.KeyId === "string" && out.KeyId.startsWith("arn:") ? out.KeyId : undefined);
    const arn = fromOutput ?? account.kms.keyArnFor(r.input, r.ctx.region);
    return arn ? [{ accountId: acct, type: "AWS::KMS::Key", ARN: arn }] : undefined;
  }
  if (r.service === "s3") {
    const bucket = r.input.Bucket;
    if (typeof bucket !== "string") return undefined;
    const list: NonNullable<TrailEvent["resources"]> = [];
    if (typeof r.input.Key === "string")
      list.push({ type: "AWS::S3::Object", ARN: `arn:aws:s3:::${bucket}/${r.input.Key}` });
    list.push({ accountId: acct, type: "AWS::S3::Bucket", ARN: `arn:aws:s3:::${bucket}` });
    return list;
  }
  if (r.service === "iam" && typeof r.input.RoleName === "string") {
    // The role's ARN has its path: from the answer (CreateRole, GetRole) or the role as it is now; a
    // role just deleted is named without it.
    const arn =
      (r.output as { Role?: { Arn?: string } } | undefined)?.Role?.Arn ??
      account.iam.roleArn(r.input.RoleName) ??
      `arn:aws:iam::${acct}:role/${r.input.RoleName}`;
    return [{ accountId: acct, type: "AWS::IAM::Role", ARN: arn }];
  }
  if (r.service === "sts" && typeof r.input.RoleArn === "string")
    return [{ accountId: acct, type: "AWS::IAM::Role", ARN: r.input.RoleArn }];
  return undefined;
}

/** CloudTrail's timestamps: ISO 8601 in UTC, to the second. */
export const trailTime = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** What LookupEvents and trail selectors need of a call, cheap to compute when it happens. */
export interface EventSummary {
  time: number;
  region: string;
  category: "Management" | "Data";
  eventName: string;
  eventSource: string;
  readOnly: boolean;
  username?: string;
  accessKeyId?: string;
  resources: NonNullable<TrailEvent["resources"]>;
}

export function summarize(r: CallRecord, account: Account): EventSummary {
  const p = r.ctx.principal;
  const username =
    p.type === "IAMUser"
      ? p.userName
      : p.type === "AssumedRole"
        ? p.sessionName
        : p.type === "Root"
          ? "root"
          : p.type === "AWSService"
            ? p.service
            : undefined;
  const summary: EventSummary = {
    time: Math.floor(r.ctx.now.getTime() / 1000) * 1000,
    region: GLOBAL_SOURCES.has(r.eventSource) ? "us-east-1" : r.ctx.region,
    category: r.service === "s3" && S3_DATA.has(r.operation) ? "Data" : "Management",
    eventName: r.operation,
    eventSource: r.eventSource,
    readOnly: r.readOnly,
    resources: resources(r, account) ?? [],
  };
  if (username !== undefined) summary.username = username;
  if (p.accessKeyId !== undefined) summary.accessKeyId = p.accessKeyId;
  return summary;
}

/**
 * What the full record will need of a call, and nothing more: the event history keeps this until
 * the record is built, so the call's context, blobs, plaintext, error stacks and outputs no record
 * shows are let go at once. Every event keeps one, so it is flat: the principal is shared with the
 * caller's other requests, the time a number.
 */
export interface PendingRecord extends Omit<CallRecord, "ctx" | "error"> {
  error?: { code: string; message: string };
  principal: Principal;
  time: number;
  requestId: string;
  sourceIp: string;
  userAgent: string;
  viaService?: string;
}

export function slim(r: CallRecord): PendingRecord {
  let input = r.input;
  for (const k in input)
    if (SECRET_MEMBERS.has(k)) {
      input = { ...input };
      for (const m of SECRET_MEMBERS) delete input[m];
      break;
    }
  const c = r.ctx;
  const out: PendingRecord = {
    service: r.service,
    eventSource: r.eventSource,
    operation: r.operation,
    readOnly: r.readOnly,
    input,
    principal: c.principal,
    time: c.now.getTime(),
    requestId: c.requestId,
    sourceIp: c.sourceIp,
    userAgent: c.userAgent,
  };
  if (c.viaService !== undefined) out.viaService = c.viaService;
  if (r.error) out.error = { code: r.error.code, message: r.error.message };
  if (r.service === "kms" && KMS_CRYPTO.has(r.operation)) {
    const id = (r.output as { KeyMaterialId?: string } | undefined)?.KeyMaterialId;
    if (id !== undefined) out.output = { KeyMaterialId: id };
  } else if (!r.readOnly && r.service !== "s3" && r.output !== undefined) out.output = r.output;
  return out;
}

/** The full record, built when it is looked up or delivered (most calls are never looked at). */
export function toTrailEvent(
  r: PendingRecord,
  account: Account,
  eventId: string,
  summary: EventSummary,
): TrailEvent {
  const via = r.viaService;
  const data = summary.category === "Data";
  const region = summary.region;
  const event: TrailEvent = {
    eventVersion: "1.11",
    userIdentity: userIdentity(r.principal, via),
    eventTime: trailTime(new Date(r.time)),
    eventSource: r.eventSource,
    eventName: r.operation,
    awsRegion: region,
    sourceIPAddress: via ? serviceDnsName(via) : r.sourceIp,
    userAgent: via ? serviceDnsName(via) : r.userAgent,
    requestParameters: requestParameters(r),
    responseElements: responseElements(r),
    requestID: r.requestId,
    eventID: eventId,
    readOnly: r.readOnly,
    eventType: "AwsApiCall",
    managementEvent: !data,
    recipientAccountId: account.accountId,
    eventCategory: data ? "Data" : "Management",
  };
  if (r.error) {
    // KMS's AccessDeniedException is logged as "AccessDenied", as AWS logs denials.
    event.errorCode = r.error.code === "AccessDeniedException" ? "AccessDenied" : r.error.code;
    event.errorMessage = r.error.message;
  }
  if (summary.resources.length > 0) event.resources = summary.resources;
  if (r.service === "kms" && KMS_CRYPTO.has(r.operation) && !r.error && r.output) {
    const out = r.output as { KeyMaterialId?: string } | undefined;
    if (out?.KeyMaterialId) event.additionalEventData = { keyMaterialId: out.KeyMaterialId };
  }
  return event;
}
