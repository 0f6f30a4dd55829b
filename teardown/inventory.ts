import { RUN_TAG, STAGE_TAG } from "../steps/build.js";
import { type Aws, listAll } from "./aws.js";

/**
 * The teardown's sweep: every resource of the lab's types in the account and Region (trails,
 * buckets, KMS aliases and keys, IAM roles), with its tags, read through the SDK as anyone would
 * read them. Nothing outside these types is ever listed, so nothing outside them can be touched.
 */

/** The lab's resource types in teardown order (lab.md: trail, buckets, alias, key, role). */
export const TEARDOWN_ORDER = [
  "AWS::CloudTrail::Trail",
  "AWS::S3::Bucket",
  "AWS::KMS::Alias",
  "AWS::KMS::Key",
  "AWS::IAM::Role",
] as const;
export type TeardownType = (typeof TEARDOWN_ORDER)[number];

export interface Found {
  type: TeardownType;
  arn: string;
  /** The name the lab's parameters would give it (trail, bucket, alias and role names; a key's id). */
  name: string;
  /** The `kmslab:run` tag's value; undefined when the resource carries none. */
  run?: string;
  stage?: string;
  /** Buckets: when S3 says it was created (ISO). */
  createdAt?: string;
  /** Keys. */
  keyState?: string;
  deletionDate?: string;
  /** Aliases: the key's ARN they point at. */
  targetKeyArn?: string;
}

type Tag = { Key?: string; Value?: string; TagKey?: string; TagValue?: string };

/** The resource with its run and stage tags (IAM, S3 and CloudTrail say Key/Value, KMS TagKey/TagValue). */
function tagged(found: Omit<Found, "run" | "stage">, tags: Tag[] | undefined): Found {
  const value = (key: string) => {
    const tag = tags?.find((t) => (t.Key ?? t.TagKey) === key);
    return tag ? (tag.Value ?? tag.TagValue ?? "") : undefined;
  };
  const run = value(RUN_TAG);
  const stage = value(STAGE_TAG);
  return { ...found, ...(run !== undefined ? { run } : {}), ...(stage !== undefined ? { stage } : {}) };
}

/** Reads in flight at once per resource type during a sweep. */
const SWEEP_CONCURRENCY = 8;

const gone = (codes: string[]) => (err: { code?: string }) => codes.includes(err.code ?? "");

/** Everything of the lab's types the caller can see in `region` of `account`. */
export async function sweep(aws: Aws, account: string, region: string): Promise<Found[]> {
  const [trails, buckets, keys, roles] = await Promise.all([
    sweepTrails(aws),
    sweepBuckets(aws, region),
    sweepKeys(aws),
    sweepRoles(aws),
  ]);
  const aliases = await sweepAliases(aws, account, region);
  return [...trails, ...buckets, ...aliases, ...keys, ...roles];
}

async function sweepTrails(aws: Aws): Promise<Found[]> {
  const out = await aws.read("cloudtrail", "DescribeTrails", { includeShadowTrails: false });
  const list = (out.trailList as { Name: string; TrailARN: string }[] | undefined) ?? [];
  return mapLimit(list, async (t) => {
    const tags = await aws
      .read("cloudtrail", "ListTags", { ResourceIdList: [t.TrailARN] })
      .catch(aws.unless(gone(["TrailNotFoundException"])));
    if (!tags) return undefined;
    const list = (tags.ResourceTagList as { TagsList?: Tag[] }[] | undefined)?.[0]?.TagsList;
    return tagged({ type: "AWS::CloudTrail::Trail", arn: t.TrailARN, name: t.Name }, list);
  });
}

async function sweepBuckets(aws: Aws, region: string): Promise<Found[]> {
  const buckets = await listAll(
    aws,
    "s3",
    "ListBuckets",
    {},
    "Buckets",
    "ContinuationToken",
    "ContinuationToken",
  );
  const here = (buckets as { Name: string; CreationDate?: string; BucketRegion?: string }[]).filter(
    (b) => !b.BucketRegion || b.BucketRegion === region,
  );
  return mapLimit(here, async (b) => {
    const tags = await aws
      .read("s3", "GetBucketTagging", { Bucket: b.Name })
      .catch(aws.unless(gone(["NoSuchTagSet", "NoSuchBucket"]), { TagSet: [] }));
    return tagged(
      {
        type: "AWS::S3::Bucket",
        arn: `arn:aws:s3:::${b.Name}`,
        name: b.Name,
        ...(b.CreationDate ? { createdAt: b.CreationDate } : {}),
      },
      tags.TagSet as Tag[],
    );
  });
}

async function sweepKeys(aws: Aws): Promise<Found[]> {
  const keys = await listAll(aws, "kms", "ListKeys", {}, "Keys", "Marker", "NextMarker");
  return mapLimit(keys as { KeyId: string }[], async (k) => {
    const described = await aws
      .read("kms", "DescribeKey", { KeyId: k.KeyId })
      .catch(aws.unless(gone(["NotFoundException"])));
    const meta = described?.KeyMetadata as
      | { Arn: string; KeyId: string; KeyState: string; KeyManager: string; DeletionDate?: string }
      | undefined;
    // AWS managed keys are not the lab's and cannot be deleted.
    if (meta?.KeyManager !== "CUSTOMER") return undefined;
    const tags = await aws
      .read("kms", "ListResourceTags", { KeyId: k.KeyId })
      .catch(aws.unless(gone(["NotFoundException"]), { Tags: [] }));
    return tagged(
      {
        type: "AWS::KMS::Key",
        arn: meta.Arn,
        name: meta.KeyId,
        keyState: meta.KeyState,
        ...(meta.DeletionDate ? { deletionDate: meta.DeletionDate } : {}),
      },
      tags.Tags as Tag[],
    );
  });
}

/** Aliases carry no tags: whose they are follows from the key they point at (see plan.ts). */
async function sweepAliases(aws: Aws, account: string, region: string): Promise<Found[]> {
  const aliases = await listAll(aws, "kms", "ListAliases", {}, "Aliases", "Marker", "NextMarker");
  return (aliases as { AliasName: string; AliasArn?: string; TargetKeyId?: string }[])
    .filter((a) => !a.AliasName.startsWith("alias/aws/"))
    .map((a) => ({
      type: "AWS::KMS::Alias" as const,
      arn: a.AliasArn ?? `arn:aws:kms:${region}:${account}:${a.AliasName}`,
      name: a.AliasName,
      ...(a.TargetKeyId ? { targetKeyArn: `arn:aws:kms:${region}:${account}:key/${a.TargetKeyId}` } : {}),
    }));
}

async function sweepRoles(aws: Aws): Promise<Found[]> {
  const roles = await listAll(aws, "iam", "ListRoles", {}, "Roles", "Marker", "Marker");
  // Service-linked roles belong to AWS services.
  const own = (roles as { RoleName: string; Arn: string; Path?: string }[]).filter(
    (r) => !r.Path?.startsWith("/aws-service-role/"),
  );
  return mapLimit(own, async (r) => {
    const tags = await aws
      .read("iam", "ListRoleTags", { RoleName: r.RoleName })
      .catch(aws.unless(gone(["NoSuchEntity"])));
    if (!tags) return undefined;
    return tagged({ type: "AWS::IAM::Role", arn: r.Arn, name: r.RoleName }, tags.Tags as Tag[]);
  });
}

/** Per-resource reads, a few at a time (AWS's latency, not the work, is what a sweep waits on). */
async function mapLimit<T>(
  items: readonly T[],
  fn: (item: T) => Promise<Found | undefined>,
): Promise<Found[]> {
  const out: (Found | undefined)[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(SWEEP_CONCURRENCY, items.length) }, worker));
  return out.filter((f): f is Found => f !== undefined);
}
