import { ServiceError } from "../../core/errors.js";
import { type CallContext, globalContextKeys } from "../../core/service.js";
import type { ContextKeys, Principal } from "../../core/types.js";
import { authorize, parsePolicy } from "../../policy/index.js";
import type { BucketRecord } from "./model.js";
import type { S3Service } from "./provider.js";

/**
 * S3 authorisation: the caller's identity policies with the bucket policy (AWS's "default" mode),
 * Block Public Access's RestrictPublicBuckets, anonymous callers. Starter version; see buckets work.
 */

export const bucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`;
export const objectArn = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;

export const noSuchBucket = (bucket: string) =>
  new ServiceError("NoSuchBucket", "The specified bucket does not exist", 404, { BucketName: bucket });

/** The bucket, or 404 NoSuchBucket. */
export function requireBucket(svc: S3Service, name: string | undefined): BucketRecord {
  const bucket = name === undefined ? undefined : svc.state.buckets[name];
  if (!bucket) throw noSuchBucket(name ?? "");
  return bucket;
}

/** Whether `principal` may do `action` on `resource` of `bucket` (no throw). */
export function s3Allowed(
  svc: S3Service,
  principal: Principal,
  action: string,
  resource: string,
  bucket: BucketRecord,
  context: ContextKeys,
): boolean {
  const policy = bucket.policy === undefined ? undefined : parsePolicy(bucket.policy, "resource");
  return authorize({
    req: { principal, action, resource, context },
    identityPolicies: svc.account.iam.identityPolicies(principal),
    ...(policy ? { resourcePolicy: policy } : {}),
    resourceAccountId: svc.account.accountId,
    mode: "default",
  }).allowed;
}

/**
 * Authorises an S3 action on a bucket (key undefined) or an object, or throws 403 AccessDenied.
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
  const resource = key === undefined ? bucketArn(bucket.name) : objectArn(bucket.name, key);
  const context = { ...globalContextKeys(ctx), ...extra };
  if (s3Allowed(svc, ctx.principal, action, resource, bucket, context)) return;
  throw new ServiceError("AccessDenied", "Access Denied", 403);
}
