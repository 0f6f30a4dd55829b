import { AwsError } from "../machines/aws.js";
import { type Aws, listAll } from "./aws.js";
import type { PlanItem } from "./plan.js";

/**
 * One deleter per resource type, each safe to repeat (NotFound is success) and each doing what AWS
 * needs before the delete itself: a trail stops logging first; a bucket is emptied of every
 * version and delete marker, and re-listed until empty, since CloudTrail may still deliver a file
 * after logging stopped; a key is scheduled for deletion after the 7-day minimum; a role loses its
 * inline and attached policies first.
 */

export interface Deleted {
  /** `gone`: it was not there any more (deleted by hand, or by an interrupted teardown). */
  outcome: "removed" | "gone" | "pendingDeletion";
  deletionDate?: string;
  detail?: string;
}

export interface DeleteOptions {
  /** How long a bucket may keep receiving files before the teardown gives up on it. */
  bucketBudgetMs: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

export async function deleteResource(aws: Aws, item: PlanItem, o: DeleteOptions): Promise<Deleted> {
  switch (item.type) {
    case "AWS::CloudTrail::Trail":
      return deleteTrail(aws, item.arn);
    case "AWS::S3::Bucket":
      return deleteBucket(aws, item.name, o);
    case "AWS::KMS::Alias":
      return outcome(await aws.change("kms", "DeleteAlias", { AliasName: item.name }, ["NotFoundException"]));
    case "AWS::KMS::Key":
      return scheduleKeyDeletion(aws, item.arn);
    case "AWS::IAM::Role":
      return deleteRole(aws, item.name);
  }
}

const outcome = (r: "done" | "gone"): Deleted => ({ outcome: r === "done" ? "removed" : "gone" });

async function deleteTrail(aws: Aws, arn: string): Promise<Deleted> {
  const stopped = await aws.change("cloudtrail", "StopLogging", { Name: arn }, ["TrailNotFoundException"]);
  if (stopped === "gone") return { outcome: "gone" };
  return outcome(await aws.change("cloudtrail", "DeleteTrail", { Name: arn }, ["TrailNotFoundException"]));
}

async function deleteBucket(aws: Aws, bucket: string, o: DeleteOptions): Promise<Deleted> {
  const deadline = o.now() + o.bucketBudgetMs;
  let objects = 0;
  for (let round = 1; ; round++) {
    const left = await listVersions(aws, bucket);
    if (left === undefined) return { outcome: objects > 0 ? "removed" : "gone" };
    for (let i = 0; i < left.length; i += 1000) {
      const batch = left.slice(i, i + 1000);
      const out = await aws.read("s3", "DeleteObjects", {
        Bucket: bucket,
        Delete: { Objects: batch, Quiet: true },
      });
      const errors = (out.Errors as { Key?: string; Code?: string; Message?: string }[] | undefined) ?? [];
      if (errors.length > 0) {
        const e = errors[0]!;
        throw new AwsError(
          e.Code ?? "Error",
          `${e.Key}: ${e.Message ?? ""}`,
          undefined,
          "s3",
          "DeleteObjects",
        );
      }
      aws.noteChange();
      objects += batch.length;
    }
    try {
      const r = await aws.change("s3", "DeleteBucket", { Bucket: bucket }, ["NoSuchBucket"]);
      const detail =
        objects > 0 ? `${objects} object version(s) and delete marker(s) removed first` : undefined;
      return { ...outcome(r), ...(detail ? { detail } : {}) };
    } catch (err) {
      // One more file landed (CloudTrail after StopLogging): empty it again, within the budget.
      if (!(err instanceof AwsError) || err.code !== "BucketNotEmpty" || o.now() > deadline) throw err;
      await o.sleep(Math.min(1000 * round, 5000));
    }
  }
}

/** Every object version and delete marker; undefined when the bucket is gone. */
async function listVersions(
  aws: Aws,
  bucket: string,
): Promise<{ Key: string; VersionId?: string }[] | undefined> {
  const out: { Key: string; VersionId?: string }[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    let page: Record<string, unknown>;
    try {
      page = await aws.read("s3", "ListObjectVersions", {
        Bucket: bucket,
        ...(keyMarker ? { KeyMarker: keyMarker } : {}),
        ...(versionMarker ? { VersionIdMarker: versionMarker } : {}),
      });
    } catch (err) {
      if (err instanceof AwsError && err.code === "NoSuchBucket") return undefined;
      throw err;
    }
    for (const v of [
      ...((page.Versions as { Key: string; VersionId?: string }[] | undefined) ?? []),
      ...((page.DeleteMarkers as { Key: string; VersionId?: string }[] | undefined) ?? []),
    ])
      out.push({ Key: v.Key, ...(v.VersionId ? { VersionId: v.VersionId } : {}) });
    const truncated = page.IsTruncated === true;
    keyMarker = truncated ? (page.NextKeyMarker as string | undefined) : undefined;
    versionMarker = truncated ? (page.NextVersionIdMarker as string | undefined) : undefined;
  } while (keyMarker);
  return out;
}

/** ScheduleKeyDeletion, 7 days (the minimum); a key already pending deletion counts as removed. */
async function scheduleKeyDeletion(aws: Aws, arn: string): Promise<Deleted> {
  try {
    const out = await aws.changeWithOutput("kms", "ScheduleKeyDeletion", {
      KeyId: arn,
      PendingWindowInDays: 7,
    });
    if (!out) return { outcome: "gone" };
    return {
      outcome: "removed",
      deletionDate: String(out.DeletionDate),
      detail: "pending deletion (7 days)",
    };
  } catch (err) {
    if (!(err instanceof AwsError) || err.code !== "KMSInvalidStateException") throw err;
    const meta = (await aws.read("kms", "DescribeKey", { KeyId: arn })).KeyMetadata as {
      KeyState: string;
      DeletionDate?: string;
    };
    if (meta.KeyState !== "PendingDeletion") throw err;
    return { outcome: "pendingDeletion", ...(meta.DeletionDate ? { deletionDate: meta.DeletionDate } : {}) };
  }
}

async function deleteRole(aws: Aws, role: string): Promise<Deleted> {
  const gone = ["NoSuchEntity"];
  let inline: unknown[];
  let attached: unknown[];
  try {
    inline = await listAll(
      aws,
      "iam",
      "ListRolePolicies",
      { RoleName: role },
      "PolicyNames",
      "Marker",
      "Marker",
    );
    attached = await listAll(
      aws,
      "iam",
      "ListAttachedRolePolicies",
      { RoleName: role },
      "AttachedPolicies",
      "Marker",
      "Marker",
    );
  } catch (err) {
    if (err instanceof AwsError && err.code === "NoSuchEntity") return { outcome: "gone" };
    throw err;
  }
  for (const name of inline as string[])
    await aws.change("iam", "DeleteRolePolicy", { RoleName: role, PolicyName: name }, gone);
  for (const p of attached as { PolicyArn: string }[])
    await aws.change("iam", "DetachRolePolicy", { RoleName: role, PolicyArn: p.PolicyArn }, gone);
  const r = await aws.change("iam", "DeleteRole", { RoleName: role }, gone);
  const n = inline.length + attached.length;
  return {
    ...outcome(r),
    ...(n > 0
      ? { detail: `${inline.length} inline and ${attached.length} attached policies removed first` }
      : {}),
  };
}
