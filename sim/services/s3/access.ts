import { createHash } from "node:crypto";
import { ServiceError } from "../../core/errors.js";
import { type CallContext, globalContextKeys } from "../../core/service.js";
import type { ContextKeys, Principal } from "../../core/types.js";
import { splitOperator } from "../../policy/document.js";
import { type AuthzResult, authorize, denialReason, type Policy, parsePolicy } from "../../policy/index.js";
import { S3Error } from "./codec.js";
import type { BucketRecord } from "./model.js";
import type { S3Service } from "./provider.js";

/**
 * S3 authorisation as AWS does it: the caller's identity policies together with the bucket policy
 * (the policy engine's "default" mode: within the account either may grant; across accounts both
 * must), Block Public Access's RestrictPublicBuckets, anonymous callers (no identity: only a
 * bucket policy naming `*` lets them in) and AWS service principals (CloudTrail writing log files:
 * only the bucket policy, with the `aws:SourceArn`/`aws:SourceAccount` keys the service adds).
 *
 * Denial messages follow S3's since-2024 rule (aws-subset §2.4): signed requests from the bucket
 * owner's account get "User: <arn> is not authorized to perform: <action> on resource: "<arn>"
 * because no identity-based policy allows the <action> action" (or "with an explicit deny in a
 * resource-based policy" / "... identity-based policy"); anonymous, cross-account and service
 * callers get the bare "Access Denied".
 */

export const bucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`;
export const objectArn = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;

export const noSuchBucket = (bucket: string) =>
  new ServiceError("NoSuchBucket", "The specified bucket does not exist", 404, { BucketName: bucket });

/** The bucket, or 404 NoSuchBucket. */
export function requireBucket(svc: S3Service, name: string | undefined): BucketRecord {
  const bucket =
    name === undefined
      ? undefined
      : Object.hasOwn(svc.state.buckets, name)
        ? svc.state.buckets[name]
        : undefined;
  if (!bucket) throw noSuchBucket(name ?? "");
  return bucket;
}

/**
 * The account's S3 canonical user id (64 hex digits), as ACLs and ListBuckets' Owner show it.
 * AWS's are opaque; this one is derived from the account id so that it is stable across restarts.
 */
export function canonicalId(accountId: string): string {
  return createHash("sha256").update(`kmslab-s3-canonical-user:${accountId}`).digest("hex");
}

/** The bucket's policy, parsed (cached by text in the policy engine); undefined when none. */
function bucketPolicy(bucket: BucketRecord): Policy | undefined {
  if (bucket.policy === undefined) return undefined;
  try {
    return parsePolicy(bucket.policy, "resource");
  } catch {
    // A stored policy was accepted by PutBucketPolicy, so it parses; if an old state holds one that
    // no longer does, it grants nothing rather than failing every request.
    return undefined;
  }
}

// The same policy with its Allow statements removed: what still applies to outsiders when
// RestrictPublicBuckets ignores a public policy's grants (its Denies still bind everyone).
const denyOnly = new WeakMap<Policy, Policy>();
function denyStatementsOf(policy: Policy): Policy {
  let out = denyOnly.get(policy);
  if (!out) {
    out = {
      ...(policy.version !== undefined ? { version: policy.version } : {}),
      statements: policy.statements.filter((s) => s.effect === "Deny"),
      text: policy.text,
    };
    denyOnly.set(policy, out);
  }
  return out;
}

/**
 * The decision for one request. With RestrictPublicBuckets on and a public bucket policy, only
 * AWS service principals and principals of the bucket owner's account get in through that
 * policy's grants; for anyone else (anonymous, other accounts) its Allow statements are ignored.
 */
export function decideS3(
  svc: S3Service,
  principal: Principal,
  action: string,
  resource: string,
  bucket: BucketRecord | undefined,
  context: ContextKeys | (() => ContextKeys),
): AuthzResult {
  let policy = bucket ? bucketPolicy(bucket) : undefined;
  const owner = svc.account.accountId;
  if (
    policy &&
    bucket?.publicAccessBlock?.RestrictPublicBuckets &&
    principal.type !== "AWSService" &&
    (principal.type === "Anonymous" || principal.accountId !== owner) &&
    isPublicPolicy(policy)
  )
    policy = denyStatementsOf(policy);
  return authorize({
    req: {
      principal,
      action,
      resource,
      // Made only if a condition asks: most decisions are made by action, principal and resource.
      context: () => ({
        "aws:ResourceAccount": owner,
        ...(typeof context === "function" ? context() : context),
      }),
    },
    identityPolicies: principal.type === "Anonymous" ? [] : svc.account.iam.identityPolicies(principal),
    ...(policy ? { resourcePolicy: policy } : {}),
    resourceAccountId: owner,
    mode: "default",
  });
}

/** Whether `principal` may do `action` on `resource` of `bucket` (no throw; CloudTrail's CreateTrail check). */
export function s3Allowed(
  svc: S3Service,
  principal: Principal,
  action: string,
  resource: string,
  bucket: BucketRecord,
  context: ContextKeys,
): boolean {
  return decideS3(svc, principal, action, resource, bucket, context).allowed;
}

/** The condition keys S3 adds to every request (beside the global ones). */
export function s3ContextKeys(ctx: CallContext): ContextKeys {
  const keys: ContextKeys = globalContextKeys(ctx);
  if (ctx.auth?.signed) {
    keys["s3:signatureversion"] = "AWS4-HMAC-SHA256";
    keys["s3:authType"] = ctx.auth.presigned ? "REST-QUERY-STRING" : "REST-HEADER";
  }
  return keys;
}

/**
 * 403 AccessDenied in S3's words for a denied request (see the module comment for who gets the
 * detailed text).
 */
export function s3AccessDenied(
  svc: S3Service,
  ctx: CallContext,
  action: string,
  resource: string,
  result: AuthzResult,
): ServiceError {
  const p = ctx.principal;
  const detailed = p.type !== "Anonymous" && p.type !== "AWSService" && p.accountId === svc.account.accountId;
  if (!detailed) return new ServiceError("AccessDenied", "Access Denied", 403);
  const head = `User: ${p.arn} is not authorized to perform: ${action} on resource: "${resource}"`;
  return new ServiceError("AccessDenied", `${head} ${denialReason(result, action)}`, 403);
}

/**
 * A signed request must reach the bucket's region: elsewhere S3 answers 301 PermanentRedirect
 * naming the endpoint, with `x-amz-bucket-region` (the header the SDK's `followRegionRedirects`
 * reads to retry in the right region). AWS answers some of these (requests to the us-east-1
 * global endpoint) 400 AuthorizationHeaderMalformed instead; the simulator has one endpoint for
 * every region, so it always redirects. Unsigned requests and AWS services' own calls are not
 * region-bound here (their region is not known from a signature). GetBucketLocation works from
 * any region, as on AWS.
 */
export function checkBucketRegion(ctx: CallContext, bucket: BucketRecord, action: string): void {
  if (!ctx.auth?.signed || action === "s3:GetBucketLocation" || ctx.region === bucket.region) return;
  throw new S3Error(
    "PermanentRedirect",
    "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
    301,
    { Bucket: bucket.name, Endpoint: `${bucket.name}.s3.${bucket.region}.amazonaws.com` },
    { "x-amz-bucket-region": bucket.region },
  );
}

/**
 * Authorises an S3 action on a bucket (key undefined) or an object, or throws: 301
 * PermanentRedirect for a signed request to the wrong region, 403 AccessDenied otherwise.
 * `extra` adds request condition keys (`s3:x-amz-acl`, `s3:prefix`...).
 */
export function authorizeS3(
  svc: S3Service,
  ctx: CallContext,
  action: string,
  bucket: BucketRecord,
  key?: string,
  extra: ContextKeys = {},
): void {
  checkBucketRegion(ctx, bucket, action);
  const resource = key === undefined ? bucketArn(bucket.name) : objectArn(bucket.name, key);
  const context = () => ({ ...s3ContextKeys(ctx), ...extra });
  const result = decideS3(svc, ctx.principal, action, resource, bucket, context);
  if (!result.allowed) throw s3AccessDenied(svc, ctx, action, resource, result);
}

/**
 * Authorises an action no bucket policy can grant (ListBuckets on `*`, CreateBucket on a bucket
 * that does not exist yet): identity policies only.
 */
export function authorizeS3Identity(
  svc: S3Service,
  ctx: CallContext,
  action: string,
  resource: string,
  extra: ContextKeys = {},
): void {
  const result = decideS3(svc, ctx.principal, action, resource, undefined, () => ({
    ...s3ContextKeys(ctx),
    ...extra,
  }));
  if (!result.allowed) throw s3AccessDenied(svc, ctx, action, resource, result);
}

// -------------------------------------------------------------------------------------------------
// What "public" means (Block Public Access; aws-subset §2.2)

// Condition keys whose fixed value pins a grant to known callers, so that a grant to `*` under such a
// condition is not public (AWS's list: "the meaning of public" in the Block Public Access guide).
const PINNING_KEYS = new Set(
  [
    "aws:SourceArn",
    "aws:SourceAccount",
    "aws:SourceOwner",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:PrincipalOrgID",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalServiceName",
    "aws:userid",
    "s3:DataAccessPointArn",
    "s3:DataAccessPointAccount",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
  ].map((k) => k.toLowerCase()),
);
const FIXED_OPERATORS = new Set([
  "StringEquals",
  "StringEqualsIgnoreCase",
  "StringLike",
  "ArnEquals",
  "ArnLike",
]);

/** Whether a condition block pins the statement to fixed callers (see isPublicPolicy). */
function pinned(condition: Record<string, Record<string, string[]>> | undefined): boolean {
  for (const [op, keys] of Object.entries(condition ?? {})) {
    const parts = splitOperator(op);
    // `...IfExists` lets a request without the key through; ForAllValues passes on no values.
    if (!parts || parts.ifExists || parts.set === "ForAllValues") continue;
    for (const [key, values] of Object.entries(keys)) {
      const k = key.toLowerCase();
      if (values.length === 0) continue;
      if (parts.base === "IpAddress" && k === "aws:sourceip") {
        if (values.every(narrowCidr)) return true;
        continue;
      }
      if (!FIXED_OPERATORS.has(parts.base) || !PINNING_KEYS.has(k)) continue;
      const fixed = values.every((v) =>
        k === "aws:userid" ? !/[*?]/.test(v.replace(/:\*$/, "")) : !/[*?]/.test(v),
      );
      if (fixed) return true;
    }
  }
  return false;
}

/**
 * An `aws:SourceIp` range narrow enough not to count as public. AWS documents that limiting a grant
 * to "a set of CIDRs" makes it non-public; the cut-off used here (IPv4 /8, IPv6 /32, so that
 * 0.0.0.0/0 and ::/0 stay public) is the simulator's (unconfirmed).
 */
function narrowCidr(value: string): boolean {
  const [addr, bits] = value.split("/");
  const v6 = (addr ?? "").includes(":");
  const prefix = bits === undefined ? (v6 ? 128 : 32) : Number(bits);
  if (!Number.isInteger(prefix)) return false;
  return prefix >= (v6 ? 32 : 8);
}

/**
 * Whether a bucket policy is public as S3 judges it for Block Public Access and
 * GetBucketPolicyStatus: some Allow statement grants to everyone (`"*"`, `{"AWS":"*"}`, or any
 * NotPrincipal) without a condition that pins it to fixed values of aws:SourceArn,
 * aws:SourceAccount, aws:SourceVpc(e), aws:PrincipalOrgID, aws:PrincipalAccount, aws:PrincipalArn,
 * aws:userid, s3:DataAccessPointArn ... or to narrow aws:SourceIp ranges. Grants to accounts, IAM
 * principals and service principals are not public. Deny statements never make a policy public.
 */
export function isPublicPolicy(policy: Policy | string): boolean {
  const doc = typeof policy === "string" ? parsePolicy(policy, "resource") : policy;
  for (const s of doc.statements) {
    if (s.effect !== "Allow") continue;
    const everyone = s.notPrincipal !== undefined || (s.principal?.AWS ?? []).includes("*");
    if (!everyone) continue;
    if (!pinned(s.condition)) return true;
  }
  return false;
}
