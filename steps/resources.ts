import { x } from "./build.js";
import type { Service, Template } from "./dsl.js";
import type { ResolvedParams } from "./params.js";

/**
 * The lab's resource types as data, one entry each, in teardown order (lab.md: trail, buckets,
 * alias, key, role): how to find every one in the account (a listing), how its tags are read, what
 * is already known from reading it, how it is deleted (its calls in order), its ARN, and which names
 * the lab's parameters give it. Every engine that finds, judges or deletes the lab's resources reads
 * this and nothing else: the local teardown's sweep (teardown/inventory.ts) and deleters
 * (teardown/delete.ts), its plan (teardown/plan.ts), the exported teardown (asl/export.ts) and the
 * execution role's policy (asl/iam.ts). The stage definitions' `effect.resource.type` names an entry.
 *
 * Templates and expressions are JSONata, as in the stage definitions (`{% %}` in call arguments,
 * bare elsewhere), evaluated alike by the local engine and by Step Functions. They see `$params`,
 * `$resource` (`{name, arn}`: the resource being read or deleted), `$states.result` (a call's
 * answer), and in a drain's calls `$item` (each) or `$items` (batch).
 */

/** One AWS call on a resource. */
export interface ResourceCall {
  service: Service;
  action: string;
  args: Template;
  /** Error codes that mean the resource is not there (any more). */
  gone?: string[];
}

/** How every resource of a type in the account and Region is listed (the local teardown's sweep). */
export interface Listing extends ResourceCall {
  /** JSONata over `$states.result`: this page's resources as `{name, arn, ...}`, AWS's own filtered out. */
  items: string;
  /** Pagination: the answer's member with the next token, the request's member that takes it. */
  next?: { out: string; in: string };
}

/** How a resource's tags are read. */
export interface TagRead extends ResourceCall {
  /** JSONata over `$states.result`: the tags as `[{"Key", "Value"}]`. */
  tags: string;
  /** Error codes that mean "it has no tags at all" (S3's NoSuchTagSet). */
  none?: string[];
}

/** A read that says more about a resource than its listing does (a key's manager and state). */
export interface Describe extends ResourceCall {
  /** JSONata over `$states.result`: false for what the lab never makes (AWS managed keys): left out. */
  keep: string;
  /** JSONata over `$states.result`: whether it is being deleted already (a key pending deletion). */
  deleting?: string;
  /** JSONata over `$states.result`: when that deletion completes. */
  deletionDate?: string;
}

/** Resources without tags of their own (aliases) are the run's when what they point at is. */
export interface Owner {
  type: TeardownType;
  /** The call that finds what it points at (the exported teardown; the sweep lists it). */
  read: ResourceCall;
  /** JSONata over `$states.result`: the owner's ARN. */
  arn: string;
}

/** One step of a deleter. */
export type DeleteOp = CallOp | DrainOp;

/** A call; `gone` errors end the deletion (someone else finished it). */
export interface CallOp {
  kind: "call";
  call: ResourceCall;
  /** JSONata over `$states.result`, per field: what the answer tells (a key's deletion date). */
  result?: { deletionDate?: string };
  /**
   * Errors that mean "not yet" (BucketNotEmpty: CloudTrail delivered one more file): the deleter
   * starts again from its first step, `waitSeconds` later, within `budgetSeconds`.
   */
  again?: { errors: string[]; waitSeconds: number; budgetSeconds: number };
  /** Errors that mean the deletion is under way already, when `read` then shows `holds`. */
  already?: { errors: string[]; read: ResourceCall; holds: string; deletionDate?: string };
}

/**
 * List what the resource holds and remove it — `each` item with a call, or a `batch` of items with
 * one call — listing again until nothing is left (what is removed no longer pages).
 */
export interface DrainOp {
  kind: "drain";
  /** What is removed, for the report ("object versions and delete markers"). */
  noun: string;
  list: ResourceCall & { items: string };
  each?: ResourceCall;
  batch?: ResourceCall & { failed?: string };
}

/** A type the teardown finds and deletes. */
export interface SweptKind {
  noun: string;
  /** The parameters that name resources of this type (none for keys: a key has only an id). */
  named: readonly NameParam[];
  /** The ARN from `{name}`, `{region}` and `{account}`. */
  arn: string;
  list: Listing;
  describe?: Describe;
  tags?: TagRead;
  owner?: Owner;
  delete: readonly DeleteOp[];
}

/** A type that goes with another (an object with its bucket): never looked for on its own. */
export interface PartKind {
  noun: string;
  partOf: TeardownType;
}

export type NameParam = keyof Pick<
  ResolvedParams,
  "trailName" | "logBucket" | "dataBucket" | "keyAlias" | "keyUserRole"
>;

const NO_SUCH_BUCKET = ["NoSuchBucket"];
const NO_SUCH_ENTITY = ["NoSuchEntity"];
const NOT_FOUND = ["NotFoundException"];
/** ListTags's model names ResourceNotFoundException; StopLogging's and the simulator's is TrailNotFoundException. */
const TRAIL_NOT_FOUND = ["TrailNotFoundException", "ResourceNotFoundException"];

const trail: SweptKind = {
  noun: "trail",
  named: ["trailName"],
  arn: "arn:aws:cloudtrail:{region}:{account}:trail/{name}",
  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html
  // (shadow trails are other Regions' multi-Region trails: not this Region's to delete)
  list: {
    service: "cloudtrail",
    action: "DescribeTrails",
    args: { includeShadowTrails: false },
    items: `[$states.result.trailList.{"name": Name, "arn": TrailARN}]`,
  },
  tags: {
    service: "cloudtrail",
    action: "ListTags",
    args: { ResourceIdList: [x("$resource.arn")] },
    gone: TRAIL_NOT_FOUND,
    tags: "$states.result.ResourceTagList[0].TagsList",
  },
  delete: [
    {
      kind: "call",
      call: {
        service: "cloudtrail",
        action: "StopLogging",
        args: { Name: x("$resource.arn") },
        gone: TRAIL_NOT_FOUND,
      },
    },
    {
      kind: "call",
      call: {
        service: "cloudtrail",
        action: "DeleteTrail",
        args: { Name: x("$resource.arn") },
        gone: TRAIL_NOT_FOUND,
      },
    },
  ],
};

const bucket: SweptKind = {
  noun: "bucket",
  named: ["logBucket", "dataBucket"],
  arn: "arn:aws:s3:::{name}",
  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html: BucketRegion lists only the
  // Region's buckets. A server that ignores it still says each bucket's BucketRegion (filtered here),
  // or says nothing, and then reading another Region's bucket answers 301 PermanentRedirect, which
  // the sweep reports as skipped.
  list: {
    service: "s3",
    action: "ListBuckets",
    args: { BucketRegion: x("$params.region") },
    items: `[$states.result.Buckets[$not($exists(BucketRegion)) or BucketRegion = $params.region].{"name": Name, "arn": "arn:aws:s3:::" & Name, "createdAt": CreationDate}]`,
    next: { out: "ContinuationToken", in: "ContinuationToken" },
  },
  tags: {
    service: "s3",
    action: "GetBucketTagging",
    args: { Bucket: x("$resource.name") },
    gone: NO_SUCH_BUCKET,
    // https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketTagging.html
    none: ["NoSuchTagSet"],
    tags: "$states.result.TagSet",
  },
  delete: [
    {
      kind: "drain",
      noun: "object versions and delete markers",
      list: {
        service: "s3",
        action: "ListObjectVersions",
        args: { Bucket: x("$resource.name") },
        gone: NO_SUCH_BUCKET,
        items: `[$append($append([], $states.result.Versions), $states.result.DeleteMarkers).{"Key": Key, "VersionId": VersionId}]`,
      },
      // DeleteObjects answers 200 with the keys it could not delete in Errors.
      batch: {
        service: "s3",
        action: "DeleteObjects",
        args: { Bucket: x("$resource.name"), Delete: { Objects: x("$items"), Quiet: true } },
        gone: NO_SUCH_BUCKET,
        failed: "$states.result.Errors",
      },
    },
    {
      kind: "call",
      call: {
        service: "s3",
        action: "DeleteBucket",
        args: { Bucket: x("$resource.name") },
        gone: NO_SUCH_BUCKET,
      },
      // CloudTrail may deliver one more file after logging stopped (aws-subset §7).
      again: { errors: ["BucketNotEmpty"], waitSeconds: 2, budgetSeconds: 60 },
    },
  ],
};

const alias: SweptKind = {
  noun: "alias",
  named: ["keyAlias"],
  arn: "arn:aws:kms:{region}:{account}:{name}",
  list: {
    service: "kms",
    action: "ListAliases",
    args: {},
    items: `[$states.result.Aliases[$substring(AliasName, 0, 10) != "alias/aws/"].{"name": AliasName, "arn": $exists(AliasArn) ? AliasArn : "arn:aws:kms:" & $params.region & ":" & $params.account & ":" & AliasName, "ownerArn": $exists(TargetKeyId) ? "arn:aws:kms:" & $params.region & ":" & $params.account & ":key/" & TargetKeyId : undefined}]`,
    next: { out: "NextMarker", in: "Marker" },
  },
  owner: {
    type: "AWS::KMS::Key",
    read: { service: "kms", action: "DescribeKey", args: { KeyId: x("$resource.name") }, gone: NOT_FOUND },
    arn: "$states.result.KeyMetadata.Arn",
  },
  delete: [
    {
      kind: "call",
      call: {
        service: "kms",
        action: "DeleteAlias",
        args: { AliasName: x("$resource.name") },
        gone: NOT_FOUND,
      },
    },
  ],
};

const key: SweptKind = {
  noun: "key",
  named: [],
  arn: "arn:aws:kms:{region}:{account}:key/{name}",
  list: {
    service: "kms",
    action: "ListKeys",
    args: {},
    items: `[$states.result.Keys.{"name": KeyId, "arn": KeyArn}]`,
    next: { out: "NextMarker", in: "Marker" },
  },
  describe: {
    service: "kms",
    action: "DescribeKey",
    args: { KeyId: x("$resource.arn") },
    gone: NOT_FOUND,
    // AWS managed keys are not the lab's, and cannot be deleted.
    keep: `$states.result.KeyMetadata.KeyManager = "CUSTOMER"`,
    deleting: `$states.result.KeyMetadata.KeyState = "PendingDeletion"`,
    deletionDate: "$states.result.KeyMetadata.DeletionDate",
  },
  tags: {
    service: "kms",
    action: "ListResourceTags",
    args: { KeyId: x("$resource.arn") },
    gone: NOT_FOUND,
    tags: `[$states.result.Tags.{"Key": TagKey, "Value": TagValue}]`,
  },
  delete: [
    {
      kind: "call",
      // 7 days, the minimum: https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html
      call: {
        service: "kms",
        action: "ScheduleKeyDeletion",
        args: { KeyId: x("$resource.arn"), PendingWindowInDays: 7 },
        gone: NOT_FOUND,
      },
      result: { deletionDate: "$states.result.DeletionDate" },
      already: {
        errors: ["KMSInvalidStateException"],
        read: { service: "kms", action: "DescribeKey", args: { KeyId: x("$resource.arn") }, gone: NOT_FOUND },
        holds: `$states.result.KeyMetadata.KeyState = "PendingDeletion"`,
        deletionDate: "$states.result.KeyMetadata.DeletionDate",
      },
    },
  ],
};

const role: SweptKind = {
  noun: "role",
  named: ["keyUserRole"],
  arn: "arn:aws:iam::{account}:role/{name}",
  list: {
    service: "iam",
    action: "ListRoles",
    args: {},
    // Service-linked roles belong to AWS services.
    items: `[$states.result.Roles[$substring(Path, 0, 18) != "/aws-service-role/"].{"name": RoleName, "arn": Arn}]`,
    next: { out: "Marker", in: "Marker" },
  },
  tags: {
    service: "iam",
    action: "ListRoleTags",
    args: { RoleName: x("$resource.name") },
    gone: NO_SUCH_ENTITY,
    tags: "$states.result.Tags",
  },
  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html: inline policies
  // deleted and managed ones detached first.
  delete: [
    {
      kind: "drain",
      noun: "inline policies",
      list: {
        service: "iam",
        action: "ListRolePolicies",
        args: { RoleName: x("$resource.name"), MaxItems: 1000 },
        gone: NO_SUCH_ENTITY,
        items: "[$states.result.PolicyNames]",
      },
      each: {
        service: "iam",
        action: "DeleteRolePolicy",
        args: { RoleName: x("$resource.name"), PolicyName: x("$item") },
        gone: NO_SUCH_ENTITY,
      },
    },
    {
      kind: "drain",
      noun: "attached policies",
      list: {
        service: "iam",
        action: "ListAttachedRolePolicies",
        args: { RoleName: x("$resource.name"), MaxItems: 1000 },
        gone: NO_SUCH_ENTITY,
        items: "[$states.result.AttachedPolicies.PolicyArn]",
      },
      each: {
        service: "iam",
        action: "DetachRolePolicy",
        args: { RoleName: x("$resource.name"), PolicyArn: x("$item") },
        gone: NO_SUCH_ENTITY,
      },
    },
    {
      kind: "call",
      call: {
        service: "iam",
        action: "DeleteRole",
        args: { RoleName: x("$resource.name") },
        gone: NO_SUCH_ENTITY,
      },
    },
  ],
};

const object: PartKind = { noun: "object", partOf: "AWS::S3::Bucket" };

/** The registry: CloudFormation's type names, in teardown order. */
export const RESOURCES = {
  "AWS::CloudTrail::Trail": trail,
  "AWS::S3::Bucket": bucket,
  "AWS::S3::Object": object,
  "AWS::KMS::Alias": alias,
  "AWS::KMS::Key": key,
  "AWS::IAM::Role": role,
} as const satisfies Record<string, SweptKind | PartKind>;

/** The lab's resource types, as CloudFormation names them (ledger, teardown, stage effects). */
export type ResourceType = keyof typeof RESOURCES;

/** The types the teardown finds and deletes (the others go with them). */
export type TeardownType = {
  [K in ResourceType]: (typeof RESOURCES)[K] extends SweptKind ? K : never;
}[ResourceType];

const isSwept = (kind: SweptKind | PartKind): kind is SweptKind => "delete" in kind;

/** The teardown's types in the order it deletes them. */
export const TEARDOWN_ORDER: readonly TeardownType[] = (
  Object.entries(RESOURCES) as [ResourceType, SweptKind | PartKind][]
)
  .filter(([, kind]) => isSwept(kind))
  .map(([type]) => type as TeardownType);

export function isTeardownType(type: string): type is TeardownType {
  return (TEARDOWN_ORDER as readonly string[]).includes(type);
}

export function resourceKind(type: TeardownType): SweptKind {
  return RESOURCES[type] as SweptKind;
}

/** An ARN from a type's pattern (`*` where a part is not known: the IAM policy's names). */
export function arnOf(type: TeardownType, parts: { name: string; region: string; account: string }): string {
  return resourceKind(type)
    .arn.replace("{name}", parts.name)
    .replace("{region}", parts.region)
    .replace("{account}", parts.account);
}

/** The same ARN as JSONata over `$params`, for a name given as JSONata. */
export function arnExpression(type: TeardownType, name: string): string {
  const parts = resourceKind(type).arn.split(/(\{name\}|\{region\}|\{account\})/);
  const source = { "{name}": name, "{region}": "$params.region", "{account}": "$params.account" } as Record<
    string,
    string
  >;
  return parts
    .filter((p) => p !== "")
    .map((p) => source[p] ?? JSON.stringify(p))
    .join(" & ");
}

/** The names the parameters give resources of a type (what a look-alike would be called). */
export function labNames(type: TeardownType, params: Pick<ResolvedParams, NameParam>): string[] {
  return resourceKind(type).named.map((p) => params[p]);
}

/** What a call of the registry is for: how the readers (and their tests) tell its calls apart. */
export type CallRole = "list" | "describe" | "tags" | "owner" | "delete";

/** Every call the registry makes for a type, with what it is for. */
export function callsOf(type: TeardownType): { role: CallRole; call: ResourceCall }[] {
  const kind = resourceKind(type);
  const out: { role: CallRole; call: ResourceCall }[] = [{ role: "list", call: kind.list }];
  if (kind.describe) out.push({ role: "describe", call: kind.describe });
  if (kind.tags) out.push({ role: "tags", call: kind.tags });
  if (kind.owner) out.push({ role: "owner", call: kind.owner.read });
  for (const op of kind.delete) {
    if (op.kind === "call") {
      out.push({ role: "delete", call: op.call });
      if (op.already) out.push({ role: "delete", call: op.already.read });
    } else {
      out.push({ role: "delete", call: op.list });
      if (op.each) out.push({ role: "delete", call: op.each });
      if (op.batch) out.push({ role: "delete", call: op.batch });
    }
  }
  return out;
}

/**
 * The exported teardown finds named types by their names (a run names all it makes but keys) and
 * lists only the others: its calls are all but the listings of named types.
 */
export function exportedCalls(type: TeardownType): { role: CallRole; call: ResourceCall }[] {
  const named = resourceKind(type).named.length > 0;
  return callsOf(type).filter((c) => !(named && c.role === "list"));
}
