import { ServiceError } from "../../core/errors.js";
import type { CallContext } from "../../core/service.js";
import { localName, type XmlNode, xmlChild, xmlChildren } from "../../core/xml.js";
import { type Policy, PolicyError, parsePolicy } from "../../policy/index.js";
import { compileGlob } from "../../policy/match.js";
import {
  authorizeS3,
  authorizeS3Identity,
  bucketArn,
  canonicalId,
  isPublicPolicy,
  requireBucket,
} from "./access.js";
import { malformedXml, parseS3Body } from "./codec.js";
import type {
  BucketRecord,
  CannedAcl,
  EncryptionRule,
  PublicAccessBlock,
  S3Input,
  S3Output,
  Tag,
} from "./model.js";
import type { S3Service } from "./provider.js";

/**
 * Bucket operations (aws-subset §2.1, §2.2). Each names its API reference page
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_<Op>.html) and authorises with the IAM
 * action AWS uses for it, which is not always the operation's name (DeletePublicAccessBlock is
 * `s3:PutBucketPublicAccessBlock`, GetBucketEncryption `s3:GetEncryptionConfiguration`...).
 *
 * Order of checks, as AWS answers: the bucket must exist (404 NoSuchBucket), then its region
 * (301), then authorisation (403), then the request's content (400).
 */

// Regions S3 accepts as a LocationConstraint; `EU` is eu-west-1's legacy name.
const REGIONS = new Set([
  "us-east-1",
  "us-east-2",
  "us-west-1",
  "us-west-2",
  "af-south-1",
  "ap-east-1",
  "ap-east-2",
  "ap-south-1",
  "ap-south-2",
  "ap-southeast-1",
  "ap-southeast-2",
  "ap-southeast-3",
  "ap-southeast-4",
  "ap-southeast-5",
  "ap-southeast-6",
  "ap-southeast-7",
  "ap-northeast-1",
  "ap-northeast-2",
  "ap-northeast-3",
  "ca-central-1",
  "ca-west-1",
  "eu-central-1",
  "eu-central-2",
  "eu-west-1",
  "eu-west-2",
  "eu-west-3",
  "eu-south-1",
  "eu-south-2",
  "eu-north-1",
  "il-central-1",
  "me-south-1",
  "me-central-1",
  "mx-central-1",
  "sa-east-1",
]);

const CANNED_BUCKET_ACLS: readonly CannedAcl[] = [
  "private",
  "public-read",
  "public-read-write",
  "authenticated-read",
];
const OWNERSHIPS = ["BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"] as const;

const noContent = (): S3Output => ({ status: 204 });
const ok = (): S3Output => ({});

/**
 * Why a bucket name breaks S3's naming rules (general purpose buckets), or undefined when it is valid:
 * 3–63 characters of lower-case letters, digits, `.` and `-`, starting and ending with a letter or
 * digit, no `..`, not shaped like an IP address, none of the reserved prefixes and suffixes.
 */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return "length";
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return "characters";
  if (name.includes("..") || name.includes(".-") || name.includes("-.")) return "adjacent periods";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "IP address";
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return "reserved prefix";
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)) return "reserved suffix";
  return undefined;
}

const invalidBucketName = (name: string) =>
  new ServiceError("InvalidBucketName", "The specified bucket is not valid.", 400, { BucketName: name });

/** The bucket's default encryption (every bucket has SSE-S3 unless configured otherwise). */
export const defaultEncryption = (): EncryptionRule => ({ SSEAlgorithm: "AES256", BucketKeyEnabled: false });

// ---- ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation --------------------

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html — every bucket of the
 * account with its region, oldest name first as S3 lists them (alphabetically). `prefix`,
 * `bucket-region`, `max-buckets` and `continuation-token` (the next bucket's name, opaque to
 * clients) are honoured. The Owner carries the canonical id only: S3 stopped returning
 * DisplayName in 2025.
 */
export function listBuckets(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  authorizeS3Identity(svc, ctx, "s3:ListAllMyBuckets", "arn:aws:s3:::*");
  const q = (k: string) => input.query[k]?.[0];
  const prefix = q("prefix");
  const region = q("bucket-region");
  const maxText = q("max-buckets");
  let max = 10_000;
  if (maxText !== undefined) {
    max = Number(maxText);
    if (!/^\d+$/.test(maxText) || max < 1 || max > 10_000)
      throw new ServiceError("InvalidArgument", "Invalid Argument", 400, {
        ArgumentName: "max-buckets",
        ArgumentValue: maxText,
      });
  }
  const token = q("continuation-token");
  let names = Object.keys(svc.state.buckets).sort();
  if (prefix) names = names.filter((n) => n.startsWith(prefix));
  if (region) names = names.filter((n) => svc.state.buckets[n]!.region === region);
  if (token !== undefined) names = names.filter((n) => n >= token);
  const page = names.slice(0, max);
  const next = names[max];
  return {
    xml: {
      root: "ListAllMyBucketsResult",
      value: {
        Buckets: {
          Bucket: page.map((n) => {
            const b = svc.state.buckets[n]!;
            return {
              Name: b.name,
              CreationDate: b.creationDate,
              BucketRegion: b.region,
              BucketArn: bucketArn(b.name),
            };
          }),
        },
        Owner: { ID: canonicalId(svc.account.accountId) },
        ContinuationToken: next,
        Prefix: prefix,
      },
    },
  };
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html — region rules of §2.1:
 * on the us-east-1 endpoint the constraint is omitted (or names another region, which the
 * us-east-1 endpoint accepts); an explicit `us-east-1` is InvalidLocationConstraint; on any other
 * regional endpoint it must name that region (IllegalLocationConstraintException otherwise).
 * Re-creating an own bucket is idempotent in us-east-1, 409 BucketAlreadyOwnedByYou elsewhere.
 * New buckets get AWS's defaults: all of Block Public Access on, ACLs disabled
 * (BucketOwnerEnforced), SSE-S3 default encryption.
 */
export function createBucket(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const name = input.Bucket ?? "";
  if (bucketNameProblem(name)) throw invalidBucketName(name);

  let constraint: string | undefined;
  if (input.body.length > 0) {
    const doc = parseS3Body(input.body, "CreateBucketConfiguration");
    const lc = xmlChild(doc, "LocationConstraint");
    if (lc) constraint = lc.text.trim();
  }
  const acl = input.headers["x-amz-acl"];
  const ownershipHeader = input.headers["x-amz-object-ownership"];
  authorizeS3Identity(svc, ctx, "s3:CreateBucket", bucketArn(name), {
    ...(constraint ? { "s3:LocationConstraint": constraint } : {}),
    ...(acl !== undefined ? { "s3:x-amz-acl": acl } : {}),
    ...(ownershipHeader !== undefined ? { "s3:x-amz-object-ownership": ownershipHeader } : {}),
  });

  const endpoint = ctx.region;
  let region: string;
  if (constraint === undefined || constraint === "") {
    if (endpoint !== "us-east-1")
      throw new ServiceError(
        "IllegalLocationConstraintException",
        "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.",
        400,
      );
    region = "us-east-1";
  } else {
    const named = constraint === "EU" ? "eu-west-1" : constraint;
    if (!REGIONS.has(named) || named === "us-east-1")
      throw new ServiceError(
        "InvalidLocationConstraint",
        "The specified location-constraint is not valid",
        400,
        {
          LocationConstraint: constraint,
        },
      );
    if (endpoint !== "us-east-1" && named !== endpoint)
      throw new ServiceError(
        "IllegalLocationConstraintException",
        `The ${constraint} location constraint is incompatible for the region specific endpoint this request was sent to.`,
        400,
      );
    region = named;
  }

  let ownership: BucketRecord["ownership"] = "BucketOwnerEnforced";
  if (ownershipHeader !== undefined) {
    if (!(OWNERSHIPS as readonly string[]).includes(ownershipHeader))
      // Wording unconfirmed.
      throw new ServiceError("InvalidArgument", "Invalid x-amz-object-ownership header", 400, {
        ArgumentName: "x-amz-object-ownership",
        ArgumentValue: ownershipHeader,
      });
    ownership = ownershipHeader as BucketRecord["ownership"];
  }
  let cannedAcl: CannedAcl | undefined;
  if (acl !== undefined) {
    if (!(CANNED_BUCKET_ACLS as readonly string[]).includes(acl))
      throw new ServiceError("InvalidArgument", "", 400, { ArgumentName: "x-amz-acl", ArgumentValue: acl });
    cannedAcl = acl as CannedAcl;
    if (ownership === "BucketOwnerEnforced" && cannedAcl !== "private")
      throw new ServiceError(
        "InvalidBucketAclWithObjectOwnership",
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
        400,
      );
    // New buckets block public access, so a public canned ACL cannot be set (wording unconfirmed).
    if (cannedAcl !== "private")
      throw new ServiceError(
        "InvalidBucketAclWithBlockPublicAccessError",
        "Bucket cannot have public ACLs set with BlockPublicAccess enabled",
        400,
      );
  }

  const existing = Object.hasOwn(svc.state.buckets, name) ? svc.state.buckets[name] : undefined;
  if (existing) {
    if (!(existing.region === "us-east-1" && region === "us-east-1"))
      throw new ServiceError(
        "BucketAlreadyOwnedByYou",
        "Your previous request to create the named bucket succeeded and you already own it.",
        409,
        { BucketName: name },
      );
  } else {
    svc.state.buckets[name] = {
      name,
      region,
      creationDate: ctx.now.toISOString(),
      publicAccessBlock: {
        BlockPublicAcls: true,
        IgnorePublicAcls: true,
        BlockPublicPolicy: true,
        RestrictPublicBuckets: true,
      },
      ownership,
      encryption: defaultEncryption(),
      objects: {},
    };
  }
  return {
    headers: {
      location: region === "us-east-1" ? `/${name}` : `http://${name}.s3.amazonaws.com/`,
      "x-amz-bucket-arn": bucketArn(name),
    },
  };
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html — 204; a bucket holding
 * any object (any version or delete marker once versioning was ever enabled) is 409 BucketNotEmpty.
 */
export function deleteBucket(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:DeleteBucket", bucket);
  const nonEmpty = Object.values(bucket.objects).some((versions) => versions.length > 0);
  if (nonEmpty)
    throw new ServiceError(
      "BucketNotEmpty",
      bucket.versioning
        ? "The bucket you tried to delete is not empty. You must delete all versions in the bucket."
        : "The bucket you tried to delete is not empty",
      409,
      { BucketName: bucket.name },
    );
  delete svc.state.buckets[bucket.name];
  return noContent();
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html — 200 with the bucket's
 * region (`x-amz-bucket-region`); needs `s3:ListBucket`. Errors have no body (HEAD), so the SDK
 * names them from the status (NotFound, Forbidden).
 */
export function headBucket(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:ListBucket", bucket);
  return {
    headers: {
      "x-amz-bucket-region": bucket.region,
      "x-amz-access-point-alias": "false",
      "x-amz-bucket-arn": bucketArn(bucket.name),
    },
  };
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html — an empty
 * LocationConstraint for us-east-1, the region's name otherwise. Answered from any region.
 */
export function getBucketLocation(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:GetBucketLocation", bucket);
  return { xml: { root: "LocationConstraint", value: bucket.region === "us-east-1" ? "" : bucket.region } };
}

// ---- bucket policy ----------------------------------------------------------------------------

const malformedPolicy = (message: string) => new ServiceError("MalformedPolicy", message, 400);

/** The policy engine's reason, in S3's words where S3 words it differently. */
function s3PolicyMessage(message: string): string {
  if (message.startsWith("Invalid principal in policy")) return "Invalid principal in policy";
  if (message.startsWith("Resource ")) return "Policy has invalid resource";
  if (message.startsWith("Actions/Conditions must be prefaced")) return "Policy has an invalid condition key";
  return message;
}

/** Every Resource must lie in this bucket (S3: "Policy has invalid resource"). */
function checkPolicyResources(policy: Policy, bucket: string): void {
  for (const s of policy.statements)
    for (const r of [...(s.resource ?? []), ...(s.notResource ?? [])]) {
      if (r === "*") continue;
      const m = /^arn:aws:s3:::([^/]*)(\/.*)?$/.exec(r);
      if (!m || !compileGlob(m[1]!, "plain")(bucket)) throw malformedPolicy("Policy has invalid resource");
    }
  for (const s of policy.statements)
    for (const a of [...(s.action ?? []), ...(s.notAction ?? [])])
      if (a !== "*" && !a.toLowerCase().startsWith("s3:")) throw malformedPolicy("Policy has invalid action");
}

/**
 * Parses a bucket policy as S3 validates it on PutBucketPolicy, or throws 400 MalformedPolicy.
 * Principals of this account must exist (and have propagated): "Invalid principal in policy".
 * Principals of other accounts cannot be checked offline and are accepted.
 */
export function parseBucketPolicy(svc: S3Service, text: string, bucket: string): Policy {
  if (!text.trimStart().startsWith("{"))
    throw malformedPolicy("Policies must be valid JSON and the first byte must be '{'");
  let policy: Policy;
  try {
    policy = parsePolicy(text, "resource");
  } catch (err) {
    if (err instanceof PolicyError) throw malformedPolicy(s3PolicyMessage(err.message));
    throw err;
  }
  checkPolicyResources(policy, bucket);
  if (svc.account.iam.checkPrincipals(policy).unknown.length > 0)
    throw malformedPolicy("Invalid principal in policy");
  return policy;
}

// The bucket owner's root user can always read, replace and delete the bucket policy, even when
// the policy denies it (AWS's lock-out protection).
const ownerRoot = (svc: S3Service, ctx: CallContext) =>
  ctx.principal.type === "Root" && ctx.principal.accountId === svc.account.accountId;

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html — 204. With
 * BlockPublicPolicy on, a public policy is refused 403 AccessDenied with S3's BPA reason.
 */
export function putBucketPolicy(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  if (!ownerRoot(svc, ctx)) authorizeS3(svc, ctx, "s3:PutBucketPolicy", bucket);
  if (input.body.length > 20 * 1024)
    // S3 limits bucket policies to 20 KB (wording unconfirmed).
    throw malformedPolicy("Policies must be less than 20 KB");
  const text = new TextDecoder("utf-8", { fatal: false }).decode(input.body);
  const policy = parseBucketPolicy(svc, text, bucket.name);
  if (bucket.publicAccessBlock?.BlockPublicPolicy && isPublicPolicy(policy)) {
    const p = ctx.principal;
    const sameAccount =
      p.type !== "Anonymous" && p.type !== "AWSService" && p.accountId === svc.account.accountId;
    throw new ServiceError(
      "AccessDenied",
      sameAccount
        ? `User: ${p.arn} is not authorized to perform: s3:PutBucketPolicy on resource: "${bucketArn(bucket.name)}" because public policies are blocked by the BlockPublicPolicy block public access setting.`
        : "Access Denied",
      403,
    );
  }
  bucket.policy = text;
  return noContent();
}

const noSuchBucketPolicy = (bucket: string) =>
  new ServiceError("NoSuchBucketPolicy", "The bucket policy does not exist", 404, { BucketName: bucket });

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketPolicy.html — the text as put (a JSON body, not XML). */
export function getBucketPolicy(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  if (!ownerRoot(svc, ctx)) authorizeS3(svc, ctx, "s3:GetBucketPolicy", bucket);
  if (bucket.policy === undefined) throw noSuchBucketPolicy(bucket.name);
  return { headers: { "content-type": "application/json" }, body: new TextEncoder().encode(bucket.policy) };
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketPolicy.html — 204, also when there is none. */
export function deleteBucketPolicy(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  if (!ownerRoot(svc, ctx)) authorizeS3(svc, ctx, "s3:DeleteBucketPolicy", bucket);
  delete bucket.policy;
  return noContent();
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketPolicyStatus.html — IsPublic as
 * Block Public Access judges the policy (access.ts isPublicPolicy); 404 NoSuchBucketPolicy without one.
 */
export function getBucketPolicyStatus(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:GetBucketPolicyStatus", bucket);
  if (bucket.policy === undefined) throw noSuchBucketPolicy(bucket.name);
  return { xml: { root: "PolicyStatus", value: { IsPublic: isPublicPolicy(bucket.policy) } } };
}

// ---- Block Public Access ----------------------------------------------------------------------

/** A boolean element as S3's schema reads it (`true`/`false`); anything else is MalformedXML. */
function xmlBool(node: XmlNode | undefined): boolean | undefined {
  if (!node) return undefined;
  const t = node.text.trim();
  if (t === "true") return true;
  if (t === "false") return false;
  throw malformedXml();
}

const PAB_FLAGS = [
  "BlockPublicAcls",
  "IgnorePublicAcls",
  "BlockPublicPolicy",
  "RestrictPublicBuckets",
] as const;

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutPublicAccessBlock.html — flags left out are false. */
export function putPublicAccessBlock(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:PutBucketPublicAccessBlock", bucket);
  const doc = parseS3Body(input.body, "PublicAccessBlockConfiguration");
  const config = {} as PublicAccessBlock;
  for (const flag of PAB_FLAGS) config[flag] = xmlBool(xmlChild(doc, flag)) ?? false;
  bucket.publicAccessBlock = config;
  return ok();
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetPublicAccessBlock.html */
export function getPublicAccessBlock(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:GetBucketPublicAccessBlock", bucket);
  if (!bucket.publicAccessBlock)
    throw new ServiceError(
      "NoSuchPublicAccessBlockConfiguration",
      "The public access block configuration was not found",
      404,
      { BucketName: bucket.name },
    );
  return { xml: { root: "PublicAccessBlockConfiguration", value: { ...bucket.publicAccessBlock } } };
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeletePublicAccessBlock.html — 204 (IAM action s3:PutBucketPublicAccessBlock). */
export function deletePublicAccessBlock(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:PutBucketPublicAccessBlock", bucket);
  delete bucket.publicAccessBlock;
  return noContent();
}

// ---- default encryption -----------------------------------------------------------------------

const SSE_ALGORITHMS = ["AES256", "aws:kms", "aws:kms:dsse"] as const;

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketEncryption.html — exactly one
 * Rule; `KMSMasterKeyID` only with aws:kms / aws:kms:dsse (400 InvalidArgument otherwise). S3
 * does not check that the key exists here (AWS documents it); objects find out on upload.
 */
export function putBucketEncryption(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:PutEncryptionConfiguration", bucket);
  const doc = parseS3Body(input.body, "ServerSideEncryptionConfiguration");
  const rules = xmlChildren(doc, "Rule");
  if (rules.length !== 1) throw malformedXml();
  const rule = rules[0]!;
  const byDefault = xmlChild(rule, "ApplyServerSideEncryptionByDefault");
  const bucketKey = xmlBool(xmlChild(rule, "BucketKeyEnabled")) ?? false;
  if (!byDefault) throw malformedXml();
  const algorithm = xmlChild(byDefault, "SSEAlgorithm")?.text.trim();
  if (!algorithm || !(SSE_ALGORITHMS as readonly string[]).includes(algorithm)) throw malformedXml();
  const keyNode = xmlChild(byDefault, "KMSMasterKeyID");
  if (keyNode && algorithm === "AES256")
    throw new ServiceError(
      "InvalidArgument",
      "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse",
      400,
      { ArgumentName: "ApplyServerSideEncryptionByDefault" },
    );
  const keyId = keyNode?.text.trim();
  bucket.encryption = {
    SSEAlgorithm: algorithm as EncryptionRule["SSEAlgorithm"],
    ...(keyId ? { KMSMasterKeyID: keyId } : {}),
    BucketKeyEnabled: bucketKey,
  };
  return ok();
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketEncryption.html (IAM action s3:GetEncryptionConfiguration). */
export function getBucketEncryption(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:GetEncryptionConfiguration", bucket);
  const rule = bucket.encryption ?? defaultEncryption();
  return {
    xml: {
      root: "ServerSideEncryptionConfiguration",
      value: {
        Rule: {
          ApplyServerSideEncryptionByDefault: {
            SSEAlgorithm: rule.SSEAlgorithm,
            KMSMasterKeyID: rule.KMSMasterKeyID,
          },
          BucketKeyEnabled: rule.BucketKeyEnabled,
        },
      },
    },
  };
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketEncryption.html — 204. Since
 * 2023 this *resets* the default to SSE-S3 (AWS: "resets the default encryption for the bucket
 * as server-side encryption with Amazon S3 managed keys"), so GetBucketEncryption then returns
 * AES256, not ServerSideEncryptionConfigurationNotFoundError (what it did before 2023).
 */
export function deleteBucketEncryption(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:PutEncryptionConfiguration", bucket);
  bucket.encryption = defaultEncryption();
  return noContent();
}

// ---- tagging ----------------------------------------------------------------------------------

/**
 * A `<Tagging><TagSet><Tag>...` document's tags, validated as S3 validates bucket tags (InvalidTag
 * wordings recorded from AWS by LocalStack/moto tests). `max` is 50 for buckets, 10 for objects.
 */
export function parseTagging(body: Uint8Array, kind: "bucket" | "object"): Tag[] {
  const doc = parseS3Body(body, "Tagging");
  const set = xmlChild(doc, "TagSet");
  if (!set) throw malformedXml();
  const tags: Tag[] = [];
  const seen = new Set<string>();
  for (const node of set.children) {
    if (localName(node.name) !== "Tag") throw malformedXml();
    const keyNode = xmlChild(node, "Key");
    const valueNode = xmlChild(node, "Value");
    if (!keyNode || !valueNode) throw malformedXml();
    const Key = keyNode.text;
    const Value = valueNode.text;
    if (Key.length === 0 || [...Key].length > 128)
      throw new ServiceError("InvalidTag", "The TagKey you have provided is invalid", 400, { TagKey: Key });
    if ([...Value].length > 256)
      throw new ServiceError("InvalidTag", "The TagValue you have provided is invalid", 400, { TagKey: Key });
    if (Key.toLowerCase().startsWith("aws:"))
      throw new ServiceError(
        "InvalidTag",
        kind === "bucket"
          ? "System tags cannot be added/updated by requester"
          : "Your TagKey cannot be prefixed with aws:",
        400,
        { TagKey: Key },
      );
    if (seen.has(Key))
      throw new ServiceError("InvalidTag", "Cannot provide multiple Tags with the same key", 400, {
        TagKey: Key,
      });
    seen.add(Key);
    tags.push({ Key, Value });
  }
  const max = kind === "bucket" ? 50 : 10;
  if (tags.length > max)
    throw new ServiceError(
      "BadRequest",
      kind === "bucket" ? "Bucket tags cannot be greater than 50" : "Object tags cannot be greater than 10",
      400,
    );
  return tags;
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketTagging.html — replaces the whole set; 204. */
export function putBucketTagging(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:PutBucketTagging", bucket);
  bucket.tags = parseTagging(input.body, "bucket");
  return noContent();
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketTagging.html — 404 NoSuchTagSet without tags. */
export function getBucketTagging(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:GetBucketTagging", bucket);
  if (!bucket.tags || bucket.tags.length === 0)
    throw new ServiceError("NoSuchTagSet", "The TagSet does not exist", 404, { BucketName: bucket.name });
  return { xml: { root: "Tagging", value: { TagSet: { Tag: bucket.tags.map((t) => ({ ...t })) } } } };
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucketTagging.html — 204 (IAM action s3:PutBucketTagging). */
export function deleteBucketTagging(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:PutBucketTagging", bucket);
  delete bucket.tags;
  return noContent();
}

// ---- ACLs and ownership -----------------------------------------------------------------------

const XSI = "http://www.w3.org/2001/XMLSchema-instance";
const ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/** The grants of a canned ACL, owner first, as GetBucketAcl/GetObjectAcl list them. */
export function aclGrants(ownerId: string, acl: CannedAcl = "private"): Record<string, unknown>[] {
  const grant = (grantee: Record<string, unknown>, permission: string) => ({
    Grantee: { "@xmlns:xsi": XSI, ...grantee },
    Permission: permission,
  });
  const out = [grant({ "@xsi:type": "CanonicalUser", ID: ownerId }, "FULL_CONTROL")];
  if (acl === "public-read" || acl === "public-read-write")
    out.push(grant({ "@xsi:type": "Group", URI: ALL_USERS }, "READ"));
  if (acl === "public-read-write") out.push(grant({ "@xsi:type": "Group", URI: ALL_USERS }, "WRITE"));
  if (acl === "authenticated-read")
    out.push(grant({ "@xsi:type": "Group", URI: AUTHENTICATED_USERS }, "READ"));
  return out;
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketAcl.html — with ACLs disabled, the owner's FULL_CONTROL only. */
export function getBucketAcl(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:GetBucketAcl", bucket);
  const owner = canonicalId(svc.account.accountId);
  const acl = bucket.ownership === "BucketOwnerEnforced" ? "private" : bucket.acl;
  return {
    xml: {
      root: "AccessControlPolicy",
      value: { Owner: { ID: owner }, AccessControlList: { Grant: aclGrants(owner, acl) } },
    },
  };
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketAcl.html — with ACLs disabled
 * (BucketOwnerEnforced) 400 AccessControlListNotSupported; otherwise a canned ACL (`x-amz-acl`)
 * is kept, a public one refused while BlockPublicAcls is on. ACL documents and `x-amz-grant-*`
 * headers are not simulated (501).
 */
export function putBucketAcl(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  const acl = input.headers["x-amz-acl"];
  authorizeS3(
    svc,
    ctx,
    "s3:PutBucketAcl",
    bucket,
    undefined,
    acl !== undefined ? { "s3:x-amz-acl": acl } : {},
  );
  if (bucket.ownership === "BucketOwnerEnforced")
    throw new ServiceError("AccessControlListNotSupported", "The bucket does not allow ACLs", 400);
  if (acl === undefined) {
    if (input.body.length > 0 || Object.keys(input.headers).some((h) => h.startsWith("x-amz-grant-")))
      throw new ServiceError(
        "NotImplemented",
        "A header you provided implies functionality that is not implemented.",
        501,
      );
    throw malformedXml();
  }
  if (!(CANNED_BUCKET_ACLS as readonly string[]).includes(acl))
    throw new ServiceError("InvalidArgument", "", 400, { ArgumentName: "x-amz-acl", ArgumentValue: acl });
  if (acl !== "private" && bucket.publicAccessBlock?.BlockPublicAcls)
    throw new ServiceError("AccessDenied", "Access Denied", 403);
  if (acl === "private") delete bucket.acl;
  else bucket.acl = acl as CannedAcl;
  return ok();
}

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketOwnershipControls.html */
export function getBucketOwnershipControls(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:GetBucketOwnershipControls", bucket);
  return { xml: { root: "OwnershipControls", value: { Rule: { ObjectOwnership: bucket.ownership } } } };
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketOwnershipControls.html — one Rule
 * with BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter. Enforcing ownership drops the
 * bucket's ACL (AWS: ACLs no longer affect permissions).
 */
export function putBucketOwnershipControls(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:PutBucketOwnershipControls", bucket);
  const doc = parseS3Body(input.body, "OwnershipControls");
  const rules = xmlChildren(doc, "Rule");
  if (rules.length !== 1) throw malformedXml();
  const value = xmlChild(rules[0]!, "ObjectOwnership")?.text.trim();
  if (!value || !(OWNERSHIPS as readonly string[]).includes(value)) throw malformedXml();
  bucket.ownership = value as BucketRecord["ownership"];
  if (bucket.ownership === "BucketOwnerEnforced") delete bucket.acl;
  return ok();
}

// ---- versioning -------------------------------------------------------------------------------

/** https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketVersioning.html — empty until versioning was ever set. */
export function getBucketVersioning(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:GetBucketVersioning", bucket);
  return { xml: { root: "VersioningConfiguration", value: { Status: bucket.versioning } } };
}

/**
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketVersioning.html — Enabled or
 * Suspended (a bucket never returns to unversioned). MFA Delete is not simulated: asking to
 * enable it is 501.
 */
export function putBucketVersioning(svc: S3Service, input: S3Input, ctx: CallContext): S3Output {
  const bucket = requireBucket(svc, input.Bucket);
  authorizeS3(svc, ctx, "s3:PutBucketVersioning", bucket);
  const doc = parseS3Body(input.body, "VersioningConfiguration");
  const status = xmlChild(doc, "Status")?.text.trim();
  const mfa = xmlChild(doc, "MfaDelete")?.text.trim();
  if (mfa !== undefined && mfa !== "Disabled" && mfa !== "Enabled") throw malformedXml();
  if (mfa === "Enabled")
    throw new ServiceError(
      "NotImplemented",
      "A header you provided implies functionality that is not implemented.",
      501,
    );
  if (status === undefined) return ok();
  if (status !== "Enabled" && status !== "Suspended") throw malformedXml();
  bucket.versioning = status;
  return ok();
}
