import { ServiceError } from "../../core/errors.js";
import { type Field, list, str, struct } from "../../core/validate.js";

/**
 * IAM's persisted state and the rules shared by its operations (names, paths, tags, paging).
 * Everything here is JSON-safe: dates are ISO strings, policy documents are kept as the text the
 * caller sent (IAM returns documents as sent, URL-encoded).
 */

export interface Tag {
  Key: string;
  Value: string;
}

export interface AccessKeyRecord {
  accessKeyId: string;
  secretAccessKey: string;
  status: "Active" | "Inactive";
  createDate: string;
}

interface EntityRecord {
  name: string;
  /** `AROA...` / `AIDA...`: what policies keep once the entity is gone. */
  id: string;
  path: string;
  arn: string;
  createDate: string;
  tags: Tag[];
  /** Inline policies by name, as the text sent. */
  inline: Record<string, string>;
  /** Managed policy ARNs, in attach order. */
  attached: string[];
  /** Set on principals that exist from the account's creation (the admin): never subject to propagation delay. */
  propagated?: true;
}

export interface RoleRecord extends EntityRecord {
  trustPolicy: string;
  description?: string;
  maxSessionDuration: number;
}

export interface UserRecord extends EntityRecord {
  accessKeys: AccessKeyRecord[];
}

export interface PolicyVersionRecord {
  versionId: string;
  document: string;
  createDate: string;
}

export interface ManagedPolicyRecord {
  name: string;
  id: string;
  path: string;
  arn: string;
  description?: string;
  createDate: string;
  updateDate: string;
  defaultVersionId: string;
  versions: PolicyVersionRecord[];
  tags: Tag[];
}

/** Keys are lower-cased names: IAM names are unique regardless of case. Policies are keyed by ARN. */
export interface IamState {
  roles: Record<string, RoleRecord>;
  users: Record<string, UserRecord>;
  policies: Record<string, ManagedPolicyRecord>;
  /**
   * The account root user's access keys (AWS lets the root user have up to two; it strongly advises
   * against any). Absent until the first is made.
   */
  rootAccessKeys?: AccessKeyRecord[];
}

export const emptyIamState = (): IamState => ({ roles: {}, users: {}, policies: {} });

/**
 * A few AWS-managed policies, so that `AttachRolePolicy` with a well-known ARN works as on AWS. They
 * belong to no account state: they are the same in every account and cannot be changed.
 */
export const AWS_MANAGED: readonly ManagedPolicyRecord[] = [
  awsManaged("AdministratorAccess", "ANPAIWMBCKSKIEE64ZLYK", "2015-02-06T18:39:46Z", [
    { Effect: "Allow", Action: "*", Resource: "*" },
  ]),
  awsManaged("AmazonS3FullAccess", "ANPAIFIR6V6BVTRAHWINE", "2015-02-06T18:40:58Z", [
    { Effect: "Allow", Action: ["s3:*", "s3-object-lambda:*"], Resource: "*" },
  ]),
  awsManaged("AmazonS3ReadOnlyAccess", "ANPAIZTJ4DXE7G6AGAE6M", "2015-02-06T18:40:59Z", [
    {
      Effect: "Allow",
      Action: ["s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*", "s3-object-lambda:List*"],
      Resource: "*",
    },
  ]),
];

function awsManaged(name: string, id: string, created: string, statements: object[]): ManagedPolicyRecord {
  return {
    name,
    id,
    path: "/",
    arn: `arn:aws:iam::aws:policy/${name}`,
    description: `AWS managed policy ${name}`,
    createDate: created,
    updateDate: created,
    defaultVersionId: "v1",
    versions: [
      {
        versionId: "v1",
        document: JSON.stringify({ Version: "2012-10-17", Statement: statements }, null, 4),
        createDate: created,
      },
    ],
    tags: [],
  };
}

// Field shapes from the IAM/STS service models (botocore iam/2010-05-08, sts/2011-06-15).
export const NAME_PATTERN = String.raw`[\w+=,.@-]+`;
export const roleName = (required = true) => str({ required, min: 1, max: 64 });
export const userName = (required = true) => str({ required, min: 1, max: 64 });
/** Existing users may have names up to 128 (`existingUserNameType`). */
export const existingUserName = (required = true) => str({ required, min: 1, max: 128 });
export const policyName = () => str({ required: true, min: 1, max: 128 });
export const path = () => str({ min: 1, max: 512 });
export const pathPrefix = () => str({ min: 1, max: 512, pattern: /\u002F[\u0021-\u007F]*/u });
export const policyDocument = () =>
  str({
    required: true,
    min: 1,
    max: 131072,
    pattern: /[\u0009\u000A\u000D\u0020-\u00FF]+/u,
  });
export const arn = (required = true) => str({ required, min: 20, max: 2048 });
export const marker = () => str({ min: 1, max: 320, pattern: /[\u0020-\u00FF]+/u });
export const maxItems = (): Field => ({ kind: "integer", min: 1, max: 1000 });
export const description = () =>
  str({ max: 1000, pattern: /[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*/u });
export const accessKeyId = (required = true) => str({ required, min: 16, max: 128, pattern: /[\w]+/u });
const tagKey = () =>
  str({
    required: true,
    min: 1,
    max: 128,
    pattern: /[\p{L}\p{Z}\p{N}_.:/=+\-@]+/u,
  });
const tagValue = () =>
  str({
    required: true,
    min: 0,
    max: 256,
    pattern: /[\p{L}\p{Z}\p{N}_.:/=+\-@]*/u,
  });
export const tags = (required = false) =>
  list(struct({ Key: tagKey(), Value: tagValue() }), { required, max: 50 });
export const tagKeys = () => list(tagKey(), { required: true, max: 50 });

/**
 * IAM answers a name or path that breaks its pattern with its own sentence rather than the generic
 * validation message (length and null checks still use the generic one).
 */
export function checkName(member: string, value: string | undefined): void {
  if (value !== undefined && !new RegExp(`^${NAME_PATTERN}$`).test(value))
    throw new ServiceError(
      "ValidationError",
      `The specified value for ${member} is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-`,
      400,
    );
}

export function checkPath(member: string, value: string | undefined): void {
  if (value !== undefined && !/^(\/|\/[\u0021-\u007E]+\/)$/.test(value))
    throw new ServiceError(
      "ValidationError",
      `The specified value for ${member} is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.`,
      400,
    );
}

/** Tags as a request carries them: keys unique regardless of case, none in the `aws:` namespace. */
export function checkTags(input: Tag[] | undefined): void {
  if (!input) return;
  const keys = new Set(input.map((t) => t.Key.toLowerCase()));
  if (keys.size < input.length)
    throw new ServiceError(
      "InvalidInput",
      "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
      400,
    );
  // The wording of this refusal is not confirmed from a recorded AWS response.
  if (input.some((t) => t.Key.toLowerCase().startsWith("aws:")))
    throw new ServiceError(
      "InvalidInput",
      "User is not authorized to work with tags that begin with aws:.",
      400,
    );
}

/** Adds or replaces tags (a key differing only in case is the same tag; the new spelling wins). */
export function mergeTags(existing: Tag[], added: Tag[]): Tag[] {
  const out = existing.filter((t) => !added.some((a) => a.Key.toLowerCase() === t.Key.toLowerCase()));
  out.push(...added.map((t) => ({ Key: t.Key, Value: t.Value })));
  if (out.length > 50)
    throw new ServiceError("LimitExceeded", "The number of tags has reached the maximum limit.", 409);
  return out.sort((a, b) => (a.Key < b.Key ? -1 : a.Key > b.Key ? 1 : 0));
}

export function removeTags(existing: Tag[], keys: string[]): Tag[] {
  const drop = new Set(keys.map((k) => k.toLowerCase()));
  return existing.filter((t) => !drop.has(t.Key.toLowerCase()));
}

export interface Page<T> {
  items: T[];
  IsTruncated: boolean;
  Marker?: string;
}

/**
 * IAM's paging: `MaxItems` (default 100) per page, an opaque `Marker` to continue, `IsTruncated`.
 * The marker is the position of the next item, so it stays valid while nothing is added or removed.
 */
export function paginate<T>(items: T[], markerIn: string | undefined, max: number | undefined): Page<T> {
  let start = 0;
  if (markerIn !== undefined) {
    const decoded = /^p(\d+)$/.exec(Buffer.from(markerIn, "base64").toString("utf8"));
    if (!decoded) throw new ServiceError("ValidationError", "Invalid Marker.", 400);
    start = Number(decoded[1]);
  }
  const size = max ?? 100;
  const slice = items.slice(start, start + size);
  const next = start + size;
  if (next < items.length)
    return { items: slice, IsTruncated: true, Marker: Buffer.from(`p${next}`).toString("base64") };
  return { items: slice, IsTruncated: false };
}

/** IAM returns policy documents URL-encoded (RFC 3986); SDK clients hand them back undecoded. */
export const encodeDocument = (text: string): string => encodeURIComponent(text);

export const byName = <T extends { name: string }>(a: T, b: T): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/**
 * Record access by user-chosen names: `constructor` and `__proto__` are valid IAM names, so reads
 * look at own properties only and writes define a plain property.
 */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

export function put<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
