import { describe, expect, it } from "vitest";
import { ANONYMOUS, type ContextKeys, type Principal } from "../sim/core/types.js";
import {
  type AuthzResult,
  authorize,
  evaluatePolicy,
  type Policy,
  PolicyError,
  type PolicyKind,
  parsePolicy,
  policyPrincipals,
  policyProblems,
} from "../sim/policy/index.js";

// The policy engine on its own: documents as IAM/KMS/S3 validate them, matching, condition
// operators, and the authorisation decision (aws-subset §1.4, §1.5, §3.1, §7.6).

const ACCT = "111122223333";
const OTHER = "444455556666";
const REGION = "us-east-1";
const KEY = `arn:aws:kms:${REGION}:${ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const OTHER_KEY = `arn:aws:kms:${REGION}:${ACCT}:key/0000abcd-12ab-34cd-56ef-1234567890ab`;
const ROLE_R = `arn:aws:iam::${ACCT}:role/R`;
const ROLE_ID = "AROAEXAMPLEROLE00001";
const TRAIL = `arn:aws:cloudtrail:${REGION}:${ACCT}:trail/lab-trail`;

const root: Principal = { type: "Root", arn: `arn:aws:iam::${ACCT}:root`, accountId: ACCT, userId: ACCT };
const alice: Principal = {
  type: "IAMUser",
  arn: `arn:aws:iam::${ACCT}:user/alice`,
  accountId: ACCT,
  userId: "AIDAEXAMPLEALICE0001",
  userName: "alice",
};
const session = (name = "s1", roleId = ROLE_ID): Principal => ({
  type: "AssumedRole",
  arn: `arn:aws:sts::${ACCT}:assumed-role/R/${name}`,
  accountId: ACCT,
  userId: `${roleId}:${name}`,
  roleArn: ROLE_R,
  roleId,
  roleName: "R",
  sessionName: name,
});
const r = session();
const bob: Principal = {
  type: "IAMUser",
  arn: `arn:aws:iam::${OTHER}:user/bob`,
  accountId: OTHER,
  userId: "AIDAEXAMPLEBOB000001",
  userName: "bob",
};
const cloudtrail: Principal = {
  type: "AWSService",
  arn: "cloudtrail.amazonaws.com",
  accountId: "",
  userId: "cloudtrail.amazonaws.com",
  service: "cloudtrail.amazonaws.com",
};

/** A policy variable as written in a document, e.g. `VAR("aws:username")`. */
const VAR = (key: string) => "$" + "{" + key + "}";

const doc = (statements: object[], version = "2012-10-17") =>
  JSON.stringify({ Version: version, Statement: statements });
const identity = (...statements: object[]) => parsePolicy(doc(statements), "identity");
const resource = (...statements: object[]) => parsePolicy(doc(statements), "resource");

// Key policies (aws-subset §1.4)
const rootStatement = {
  Sid: "Enable IAM User Permissions",
  Effect: "Allow",
  Principal: { AWS: `arn:aws:iam::${ACCT}:root` },
  Action: "kms:*",
  Resource: "*",
};
const keyUsersStatement = {
  Sid: "Allow use of the key",
  Effect: "Allow",
  Principal: { AWS: [ROLE_R] },
  Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
  Resource: "*",
};
const keyAdminStatement = {
  Sid: "Allow access for Key Administrators",
  Effect: "Allow",
  Principal: { AWS: alice.arn },
  Action: [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
  ],
  Resource: "*",
};
const grantStatement = {
  Sid: "Allow attachment of persistent resources",
  Effect: "Allow",
  Principal: { AWS: [ROLE_R] },
  Action: ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
  Resource: "*",
  Condition: { Bool: { "kms:GrantIsForAWSResource": true } },
};
const consoleKeyPolicy = resource(rootStatement, keyAdminStatement, keyUsersStatement, grantStatement);
const rootOnlyKeyPolicy = resource(rootStatement);

// Identity policies
const s3Only = identity({
  Effect: "Allow",
  Action: ["s3:GetObject", "s3:PutObject"],
  Resource: "arn:aws:s3:::lab-*/*",
});
const kmsDecrypt = identity({ Effect: "Allow", Action: "kms:Decrypt", Resource: "*" });
const kmsAll = identity({ Effect: "Allow", Action: "kms:*", Resource: "*" });
const denyKms = identity({ Effect: "Deny", Action: "kms:*", Resource: "*" });
const s3All = identity({ Effect: "Allow", Action: "s3:*", Resource: "*" });

// CloudTrail's bucket policy (aws-subset §3.1)
const trailBucketPolicy = resource(
  {
    Sid: "AWSCloudTrailAclCheck20150319",
    Effect: "Allow",
    Principal: { Service: "cloudtrail.amazonaws.com" },
    Action: "s3:GetBucketAcl",
    Resource: "arn:aws:s3:::lab-logs",
    Condition: { StringEquals: { "aws:SourceArn": TRAIL } },
  },
  {
    Sid: "AWSCloudTrailWrite20150319",
    Effect: "Allow",
    Principal: { Service: "cloudtrail.amazonaws.com" },
    Action: "s3:PutObject",
    Resource: `arn:aws:s3:::lab-logs/AWSLogs/${ACCT}/*`,
    Condition: { StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": TRAIL } },
  },
);
const logObject = `arn:aws:s3:::lab-logs/AWSLogs/${ACCT}/CloudTrail/${REGION}/2026/01/01/x.json.gz`;
const publicRead = resource({
  Effect: "Allow",
  Principal: "*",
  Action: "s3:GetObject",
  Resource: "arn:aws:s3:::lab-data/*",
});
const accountOnlyBucket = resource({
  Effect: "Allow",
  Principal: { AWS: ACCT },
  Action: "s3:GetObject",
  Resource: "arn:aws:s3:::lab-data/*",
});
const otherAccountBucket = resource({
  Effect: "Allow",
  Principal: { AWS: `arn:aws:iam::${OTHER}:root` },
  Action: "s3:GetObject",
  Resource: "arn:aws:s3:::lab-data/*",
});

interface AuthzCase {
  name: string;
  principal: Principal;
  action: string;
  resource?: string;
  identity?: Policy[];
  policy?: Policy;
  mode: "default" | "kms";
  context?: ContextKeys;
  expected: AuthzResult;
}

const ALLOWED: AuthzResult = { allowed: true };
const MISSING_IDENTITY: AuthzResult = { allowed: false, missing: "identity" };
const MISSING_RESOURCE: AuthzResult = { allowed: false, missing: "resource" };
const DENY_IDENTITY: AuthzResult = { allowed: false, explicitDeny: "identity" };
const DENY_RESOURCE: AuthzResult = { allowed: false, explicitDeny: "resource" };
const DENY_SESSION: AuthzResult = { allowed: false, explicitDeny: "session" };
const MISSING_SESSION: AuthzResult = { allowed: false, missing: "session" };

/** A session of role R made with these session policies (AssumeRole `Policy` / `PolicyArns`). */
const limited = (...statements: object[]): Principal => ({
  ...session("limited"),
  sessionPolicies: statements.map((st) => doc([st])),
});
const DENY_ALL = { Effect: "Deny", Action: "*", Resource: "*" };
const ONLY_S3_LIST = { Effect: "Allow", Action: "s3:ListBucket", Resource: "*" };
const OBJECT = "arn:aws:s3:::lab-data/report.txt";

const authzCases: AuthzCase[] = [
  // --- KMS (aws-subset §1.5)
  {
    name: "kms: key-users statement naming role R lets its session decrypt without any IAM policy",
    principal: r,
    action: "kms:Decrypt",
    identity: [s3Only],
    policy: consoleKeyPolicy,
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "kms stage-6 trap: key-users statement removed, root statement kept, R's IAM has only S3 → denied (no identity allow)",
    principal: r,
    action: "kms:Decrypt",
    identity: [s3Only],
    policy: rootOnlyKeyPolicy,
    mode: "kms",
    expected: MISSING_IDENTITY,
  },
  {
    name: "kms stage-6 variant: key-users statement removed but R's IAM allows kms:Decrypt → still allowed via the root statement",
    principal: r,
    action: "kms:Decrypt",
    identity: [s3Only, kmsDecrypt],
    policy: rootOnlyKeyPolicy,
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "kms: without the root statement, IAM kms:* is ineffective → no resource-based policy allows",
    principal: r,
    action: "kms:Decrypt",
    identity: [kmsAll],
    policy: resource(keyAdminStatement),
    mode: "kms",
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: explicit deny in the identity policy beats the key policy's Allow",
    principal: r,
    action: "kms:Decrypt",
    identity: [denyKms],
    policy: consoleKeyPolicy,
    mode: "kms",
    expected: DENY_IDENTITY,
  },
  {
    name: "kms: the account root is allowed by the root statement (it names the root directly)",
    principal: root,
    action: "kms:PutKeyPolicy",
    policy: rootOnlyKeyPolicy,
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "kms: no implicit access for root when the key policy does not name the account",
    principal: root,
    action: "kms:Decrypt",
    policy: resource(keyUsersStatement),
    mode: "kms",
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: no key policy → nothing is allowed",
    principal: alice,
    action: "kms:Decrypt",
    identity: [kmsAll],
    mode: "kms",
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: the key admin statement grants no cryptographic operation",
    principal: alice,
    action: "kms:Decrypt",
    policy: resource(keyAdminStatement, keyUsersStatement),
    mode: "kms",
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: the key admin may describe the key (kms:Describe* wildcard)",
    principal: alice,
    action: "kms:DescribeKey",
    policy: consoleKeyPolicy,
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "kms: CreateGrant needs kms:GrantIsForAWSResource (Bool) — absent",
    principal: r,
    action: "kms:CreateGrant",
    policy: resource(keyUsersStatement, grantStatement),
    mode: "kms",
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: CreateGrant with kms:GrantIsForAWSResource=true",
    principal: r,
    action: "kms:CreateGrant",
    policy: resource(keyUsersStatement, grantStatement),
    mode: "kms",
    context: { "kms:GrantIsForAWSResource": true },
    expected: ALLOWED,
  },
  {
    name: "kms: key-policy Deny on insecure transport is an explicit deny in the resource-based policy",
    principal: r,
    action: "kms:Decrypt",
    policy: resource(keyUsersStatement, {
      Effect: "Deny",
      Principal: "*",
      Action: "kms:*",
      Resource: "*",
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    }),
    mode: "kms",
    context: { "aws:SecureTransport": false },
    expected: DENY_RESOURCE,
  },
  {
    name: "kms: cross-account caller needs its own IAM allow even when the key policy names its account",
    principal: bob,
    action: "kms:Decrypt",
    policy: resource(rootStatement, { ...keyUsersStatement, Principal: { AWS: OTHER } }),
    mode: "kms",
    expected: MISSING_IDENTITY,
  },
  {
    name: "kms: cross-account caller with key policy naming its account and IAM allow",
    principal: bob,
    action: "kms:Decrypt",
    identity: [kmsDecrypt],
    policy: resource(rootStatement, { ...keyUsersStatement, Principal: { AWS: OTHER } }),
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "kms: the account principal of another account does not cover this account's users",
    principal: alice,
    action: "kms:Decrypt",
    identity: [kmsAll],
    policy: resource({ ...keyUsersStatement, Principal: { AWS: OTHER } }),
    mode: "kms",
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: encryption-context condition (context key case-insensitive, value matched exactly)",
    principal: r,
    action: "kms:Decrypt",
    policy: resource({
      ...keyUsersStatement,
      Condition: { StringEquals: { "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::lab-data/report.txt" } },
    }),
    mode: "kms",
    context: { "kms:EncryptionContext:AWS:S3:ARN": "arn:aws:s3:::lab-data/report.txt" },
    expected: ALLOWED,
  },
  {
    name: "kms: encryption-context value differing in case does not match",
    principal: r,
    action: "kms:Decrypt",
    policy: resource({
      ...keyUsersStatement,
      Condition: { StringEquals: { "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::lab-data/report.txt" } },
    }),
    mode: "kms",
    context: { "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::lab-data/REPORT.txt" },
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: NotPrincipal Deny refuses everyone but role R",
    principal: alice,
    action: "kms:Decrypt",
    identity: [kmsAll],
    policy: resource(rootStatement, {
      Effect: "Deny",
      NotPrincipal: { AWS: [ROLE_R, `arn:aws:iam::${ACCT}:root`] },
      Action: "kms:Decrypt",
      Resource: "*",
    }),
    mode: "kms",
    expected: DENY_RESOURCE,
  },
  {
    name: "kms: NotPrincipal naming the session, its role and its account spares the session (allowed via root + IAM)",
    principal: r,
    action: "kms:Decrypt",
    identity: [kmsDecrypt],
    policy: resource(rootStatement, {
      Effect: "Deny",
      NotPrincipal: { AWS: [r.arn, ROLE_R, `arn:aws:iam::${ACCT}:root`] },
      Action: "kms:Decrypt",
      Resource: "*",
    }),
    mode: "kms",
    expected: ALLOWED,
  },
  {
    // AWS identifies an assumed-role session by its session ARN: the role's ARN exempts none of them.
    name: "kms: NotPrincipal naming the role and its account but not the session denies the session",
    principal: r,
    action: "kms:Decrypt",
    identity: [kmsDecrypt],
    policy: resource(rootStatement, {
      Effect: "Deny",
      NotPrincipal: { AWS: [ROLE_R, `arn:aws:iam::${ACCT}:root`] },
      Action: "kms:Decrypt",
      Resource: "*",
    }),
    mode: "kms",
    expected: DENY_RESOURCE,
  },
  {
    name: "kms: NotPrincipal naming the session and the account but not the role denies the session",
    principal: r,
    action: "kms:Decrypt",
    identity: [kmsDecrypt],
    policy: resource(rootStatement, {
      Effect: "Deny",
      NotPrincipal: { AWS: [r.arn, `arn:aws:iam::${ACCT}:root`] },
      Action: "kms:Decrypt",
      Resource: "*",
    }),
    mode: "kms",
    expected: DENY_RESOURCE,
  },
  {
    name: "kms: NotPrincipal naming one session of a role denies its other sessions",
    principal: session("s2"),
    action: "kms:Decrypt",
    identity: [kmsDecrypt],
    policy: resource(rootStatement, {
      Effect: "Deny",
      NotPrincipal: { AWS: [r.arn, ROLE_R, `arn:aws:iam::${ACCT}:root`] },
      Action: "kms:Decrypt",
      Resource: "*",
    }),
    mode: "kms",
    expected: DENY_RESOURCE,
  },
  {
    name: "kms: NotPrincipal naming the role but not its account still denies the role's session",
    principal: r,
    action: "kms:Decrypt",
    identity: [kmsDecrypt],
    policy: resource(rootStatement, {
      Effect: "Deny",
      NotPrincipal: { AWS: ROLE_R },
      Action: "kms:Decrypt",
      Resource: "*",
    }),
    mode: "kms",
    expected: DENY_RESOURCE,
  },
  // Session policies (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session)
  {
    name: "session: a Deny * session policy denies what the role's policies allow",
    principal: limited(DENY_ALL),
    action: "s3:GetObject",
    resource: OBJECT,
    identity: [s3All],
    mode: "default",
    expected: DENY_SESSION,
  },
  {
    name: "session: the session gets the intersection of the role's policies and the session policy",
    principal: limited(ONLY_S3_LIST),
    action: "s3:GetObject",
    resource: OBJECT,
    identity: [s3All],
    mode: "default",
    expected: MISSING_SESSION,
  },
  {
    name: "session: what both allow is allowed",
    principal: limited({ Effect: "Allow", Action: "s3:GetObject", Resource: OBJECT }),
    action: "s3:GetObject",
    resource: OBJECT,
    identity: [s3All],
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "session: several session policies allow what any of them allows",
    principal: limited(ONLY_S3_LIST, { Effect: "Allow", Action: "s3:GetObject", Resource: "*" }),
    action: "s3:GetObject",
    resource: OBJECT,
    identity: [s3All],
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "session: a bucket policy naming the role is limited by the session policy",
    principal: limited(ONLY_S3_LIST),
    action: "s3:GetObject",
    resource: OBJECT,
    policy: resource({
      Effect: "Allow",
      Principal: { AWS: ROLE_R },
      Action: "s3:GetObject",
      Resource: OBJECT,
    }),
    mode: "default",
    expected: MISSING_SESSION,
  },
  {
    name: "session: a bucket policy naming the session's own ARN is not limited by the session policy",
    principal: limited(ONLY_S3_LIST),
    action: "s3:GetObject",
    resource: OBJECT,
    policy: resource({
      Effect: "Allow",
      Principal: { AWS: limited().arn },
      Action: "s3:GetObject",
      Resource: OBJECT,
    }),
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "session: an explicit Deny in a session policy beats a bucket policy naming the session",
    principal: limited(DENY_ALL),
    action: "s3:GetObject",
    resource: OBJECT,
    policy: resource({
      Effect: "Allow",
      Principal: { AWS: limited().arn },
      Action: "s3:GetObject",
      Resource: OBJECT,
    }),
    mode: "default",
    expected: DENY_SESSION,
  },
  {
    name: "session: a key policy naming the role (key users) is limited by the session policy",
    principal: limited(ONLY_S3_LIST),
    action: "kms:Decrypt",
    policy: resource(rootStatement, keyUsersStatement),
    mode: "kms",
    expected: MISSING_SESSION,
  },
  {
    name: "session: a key policy naming the session's own ARN is not",
    principal: limited(ONLY_S3_LIST),
    action: "kms:Decrypt",
    policy: resource(rootStatement, { ...keyUsersStatement, Principal: { AWS: [ROLE_R, limited().arn] } }),
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "session: IAM permissions through the key policy's root statement are limited too",
    principal: limited(ONLY_S3_LIST),
    action: "kms:Decrypt",
    identity: [kmsDecrypt],
    policy: rootOnlyKeyPolicy,
    mode: "kms",
    expected: MISSING_SESSION,
  },
  {
    name: "kms: NotResource Deny in IAM bites every key but the one excluded",
    principal: r,
    action: "kms:Decrypt",
    resource: OTHER_KEY,
    identity: [kmsAll, identity({ Effect: "Deny", Action: "kms:*", NotResource: KEY })],
    policy: rootOnlyKeyPolicy,
    mode: "kms",
    expected: DENY_IDENTITY,
  },
  {
    name: "kms: NotResource Deny leaves the excluded key alone",
    principal: r,
    action: "kms:Decrypt",
    identity: [kmsAll, identity({ Effect: "Deny", Action: "kms:*", NotResource: KEY })],
    policy: rootOnlyKeyPolicy,
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "kms: a key policy naming a deleted role's unique id still matches that role's sessions",
    principal: r,
    action: "kms:Decrypt",
    policy: resource({ ...keyUsersStatement, Principal: { AWS: ROLE_ID } }),
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "kms: … but not a re-created role of the same name (new unique id)",
    principal: session("s1", "AROAEXAMPLEROLE00002"),
    action: "kms:Decrypt",
    policy: resource({ ...keyUsersStatement, Principal: { AWS: ROLE_ID } }),
    mode: "kms",
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: a session ARN in the key policy names only that session",
    principal: session("other"),
    action: "kms:Decrypt",
    policy: resource({ ...keyUsersStatement, Principal: { AWS: `arn:aws:sts::${ACCT}:assumed-role/R/s1` } }),
    mode: "kms",
    expected: MISSING_RESOURCE,
  },
  {
    name: "kms: a session ARN in the key policy lets that session in",
    principal: r,
    action: "kms:Decrypt",
    policy: resource({ ...keyUsersStatement, Principal: { AWS: `arn:aws:sts::${ACCT}:assumed-role/R/s1` } }),
    mode: "kms",
    expected: ALLOWED,
  },
  {
    name: "kms: a user's unique id (AIDA) in the key policy matches that user",
    principal: alice,
    action: "kms:Encrypt",
    policy: resource({ ...keyUsersStatement, Principal: { AWS: alice.userId } }),
    mode: "kms",
    expected: ALLOWED,
  },

  // --- default mode (IAM, S3, STS trust)
  {
    name: "default: IAM user allowed by its identity policy",
    principal: alice,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    identity: [s3Only],
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "default: IAM user without an identity allow",
    principal: alice,
    action: "iam:CreateRole",
    resource: ROLE_R,
    identity: [s3Only],
    mode: "default",
    expected: MISSING_IDENTITY,
  },
  {
    name: "default: the account root has an implicit identity allow",
    principal: root,
    action: "iam:CreateRole",
    resource: ROLE_R,
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: 'default: anonymous is let in by Principal "*"',
    principal: ANONYMOUS,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    policy: publicRead,
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "default: anonymous is not covered by a policy naming the account",
    principal: ANONYMOUS,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    policy: accountOnlyBucket,
    mode: "default",
    expected: MISSING_RESOURCE,
  },
  {
    name: "default: anonymous without a bucket policy has nothing (no identity policies)",
    principal: ANONYMOUS,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    identity: [s3All],
    mode: "default",
    expected: MISSING_RESOURCE,
  },
  {
    name: "default: same-account bucket policy naming the account adds nothing without IAM",
    principal: alice,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    policy: accountOnlyBucket,
    mode: "default",
    expected: MISSING_IDENTITY,
  },
  {
    name: "default: a bucket policy naming the user directly allows it without IAM",
    principal: alice,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    policy: resource({
      Effect: "Allow",
      Principal: { AWS: alice.arn },
      Action: "s3:GetObject",
      Resource: "arn:aws:s3:::lab-data/*",
    }),
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "default cross-account: IAM allow alone is not enough",
    principal: bob,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    identity: [s3All],
    policy: accountOnlyBucket,
    mode: "default",
    expected: MISSING_RESOURCE,
  },
  {
    name: "default cross-account: bucket policy naming the account alone is not enough",
    principal: bob,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    policy: otherAccountBucket,
    mode: "default",
    expected: MISSING_IDENTITY,
  },
  {
    name: "default cross-account: both sides allow",
    principal: bob,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    identity: [s3All],
    policy: otherAccountBucket,
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "default: explicit deny in the bucket policy beats the identity allow",
    principal: alice,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    identity: [s3All],
    policy: resource({ Effect: "Deny", Principal: "*", Action: "s3:*", Resource: "arn:aws:s3:::lab-data/*" }),
    mode: "default",
    expected: DENY_RESOURCE,
  },
  {
    name: "default: NotAction allow covers everything but IAM",
    principal: alice,
    action: "kms:CreateKey",
    identity: [identity({ Effect: "Allow", NotAction: "iam:*", Resource: "*" })],
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "default: NotAction allow excludes the named actions (case-insensitively)",
    principal: alice,
    action: "IAM:CreateUser",
    identity: [identity({ Effect: "Allow", NotAction: "iam:*", Resource: "*" })],
    mode: "default",
    expected: MISSING_IDENTITY,
  },

  // --- CloudTrail's bucket policy (aws-subset §3.1)
  {
    name: "cloudtrail: PutObject with the trail's SourceArn and bucket-owner-full-control",
    principal: cloudtrail,
    action: "s3:PutObject",
    resource: logObject,
    policy: trailBucketPolicy,
    mode: "default",
    context: { "aws:SourceArn": TRAIL, "s3:x-amz-acl": "bucket-owner-full-control" },
    expected: ALLOWED,
  },
  {
    name: "cloudtrail: PutObject without the ACL header",
    principal: cloudtrail,
    action: "s3:PutObject",
    resource: logObject,
    policy: trailBucketPolicy,
    mode: "default",
    context: { "aws:SourceArn": TRAIL },
    expected: MISSING_RESOURCE,
  },
  {
    name: "cloudtrail: PutObject for another trail's SourceArn",
    principal: cloudtrail,
    action: "s3:PutObject",
    resource: logObject,
    policy: trailBucketPolicy,
    mode: "default",
    context: { "aws:SourceArn": `${TRAIL}-2`, "s3:x-amz-acl": "bucket-owner-full-control" },
    expected: MISSING_RESOURCE,
  },
  {
    name: "cloudtrail: PutObject outside AWSLogs/<account>/",
    principal: cloudtrail,
    action: "s3:PutObject",
    resource: `arn:aws:s3:::lab-logs/AWSLogs/${OTHER}/x.json.gz`,
    policy: trailBucketPolicy,
    mode: "default",
    context: { "aws:SourceArn": TRAIL, "s3:x-amz-acl": "bucket-owner-full-control" },
    expected: MISSING_RESOURCE,
  },
  {
    name: "cloudtrail: GetBucketAcl check with the trail's SourceArn",
    principal: cloudtrail,
    action: "s3:GetBucketAcl",
    resource: "arn:aws:s3:::lab-logs",
    policy: trailBucketPolicy,
    mode: "default",
    context: { "aws:SourceArn": TRAIL },
    expected: ALLOWED,
  },
  {
    name: "cloudtrail: another service principal is not CloudTrail",
    principal: { ...cloudtrail, service: "config.amazonaws.com", arn: "config.amazonaws.com" },
    action: "s3:GetBucketAcl",
    resource: "arn:aws:s3:::lab-logs",
    policy: trailBucketPolicy,
    mode: "default",
    context: { "aws:SourceArn": TRAIL },
    expected: MISSING_RESOURCE,
  },
  {
    name: "cloudtrail: an IAM user is not the service principal",
    principal: alice,
    action: "s3:GetBucketAcl",
    resource: "arn:aws:s3:::lab-logs",
    policy: trailBucketPolicy,
    mode: "default",
    context: { "aws:SourceArn": TRAIL },
    expected: MISSING_IDENTITY,
  },

  // --- trust policies
  {
    name: "trust: role ARN of the caller's own role session (role chaining) is named directly",
    principal: r,
    action: "sts:AssumeRole",
    resource: `arn:aws:iam::${ACCT}:role/Target`,
    policy: parsePolicy(
      doc([{ Effect: "Allow", Principal: { AWS: ROLE_R }, Action: "sts:AssumeRole" }]),
      "trust",
    ),
    mode: "default",
    expected: ALLOWED,
  },
  {
    name: "trust: a trust policy naming another user does not let alice in",
    principal: alice,
    action: "sts:AssumeRole",
    resource: `arn:aws:iam::${ACCT}:role/Target`,
    policy: parsePolicy(
      doc([
        { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${ACCT}:user/carol` }, Action: "sts:AssumeRole" },
      ]),
      "trust",
    ),
    mode: "default",
    expected: MISSING_IDENTITY,
  },
];

describe("authorize", () => {
  it.each(authzCases)("$name", (c) => {
    const result = authorize({
      req: {
        principal: c.principal,
        action: c.action,
        resource: c.resource ?? KEY,
        context: c.context ?? {},
      },
      identityPolicies: c.identity ?? [],
      ...(c.policy ? { resourcePolicy: c.policy } : {}),
      resourceAccountId: ACCT,
      mode: c.mode,
    });
    expect(result).toEqual(c.expected);
  });
});

// -------------------------------------------------------------------------------------------------
// Matching and conditions: one identity statement, evaluated on its own.

interface MatchCase {
  name: string;
  statement: object;
  version?: string;
  principal?: Principal;
  action?: string;
  resource?: string;
  context?: ContextKeys;
  expected: "Allow" | "None";
}

const allowWith = (Condition: object, extra: object = {}) => ({
  Effect: "Allow",
  Action: "kms:*",
  Resource: "*",
  Condition,
  ...extra,
});

const matchCases: MatchCase[] = [
  // actions
  {
    name: "action wildcard kms:Generate*",
    statement: { Effect: "Allow", Action: "kms:Generate*", Resource: "*" },
    action: "kms:GenerateDataKeyWithoutPlaintext",
    expected: "Allow",
  },
  {
    name: "action wildcard does not cross services",
    statement: { Effect: "Allow", Action: "kms:*", Resource: "*" },
    action: "s3:GetObject",
    expected: "None",
  },
  {
    name: "action match is case-insensitive",
    statement: { Effect: "Allow", Action: "KMS:decrypt", Resource: "*" },
    action: "kms:Decrypt",
    expected: "Allow",
  },
  {
    name: "action `?` wildcard matches one character",
    statement: { Effect: "Allow", Action: "kms:?ncrypt", Resource: "*" },
    action: "kms:Encrypt",
    expected: "Allow",
  },
  {
    name: "action `?` wildcard does not match two",
    statement: { Effect: "Allow", Action: "kms:?crypt", Resource: "*" },
    action: "kms:Decrypt",
    expected: "None",
  },
  {
    name: "action `*` matches everything",
    statement: { Effect: "Allow", Action: "*", Resource: "*" },
    action: "sts:AssumeRole",
    expected: "Allow",
  },
  // resources
  {
    name: "resource match is case-sensitive",
    statement: {
      Effect: "Allow",
      Action: "kms:*",
      Resource: KEY.toUpperCase().replace("ARN:AWS:KMS", "arn:aws:kms"),
    },
    expected: "None",
  },
  {
    name: "resource wildcard per ARN component (region *)",
    statement: { Effect: "Allow", Action: "kms:*", Resource: `arn:aws:kms:*:${ACCT}:key/*` },
    expected: "Allow",
  },
  {
    name: "a pattern with fewer than six ARN components is matched as a whole",
    statement: { Effect: "Allow", Action: "kms:*", Resource: "arn:aws:kms:*" },
    expected: "Allow",
  },
  {
    name: "ArnLike keeps a head wildcard inside its component",
    statement: allowWith({ ArnLike: { "aws:SourceArn": "arn:aws:cloudtrail:*:trail/lab-trail:x" } }),
    context: { "aws:SourceArn": `arn:aws:cloudtrail:us-east-1:${ACCT}:trail/lab-trail:x` },
    expected: "None",
  },
  {
    name: "resource wildcard spans `/` in the resource part",
    statement: { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::lab-data/*" },
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/a/b/c.txt",
    expected: "Allow",
  },
  {
    name: "resource `?` wildcard",
    statement: { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::lab-dat?/x" },
    action: "s3:GetObject",
    resource: "arn:aws:s3:::lab-data/x",
    expected: "Allow",
  },
  // policy variables
  {
    name: `${VAR("aws:username")} in a resource`,
    statement: { Effect: "Allow", Action: "s3:*", Resource: `arn:aws:s3:::home/${VAR("aws:username")}/*` },
    principal: alice,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::home/alice/notes.txt",
    expected: "Allow",
  },
  {
    name: `${VAR("aws:username")} does not match another user's folder`,
    statement: { Effect: "Allow", Action: "s3:*", Resource: `arn:aws:s3:::home/${VAR("aws:username")}/*` },
    principal: alice,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::home/bob/notes.txt",
    expected: "None",
  },
  {
    name: `${VAR("aws:username")} is absent for role sessions → no match`,
    statement: { Effect: "Allow", Action: "s3:*", Resource: `arn:aws:s3:::home/${VAR("aws:username")}/*` },
    principal: r,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::home/alice/x",
    expected: "None",
  },
  {
    name: `${VAR("aws:userid")} in a resource (role session)`,
    statement: { Effect: "Allow", Action: "s3:*", Resource: `arn:aws:s3:::home/${VAR("aws:userid")}/*` },
    principal: r,
    action: "s3:GetObject",
    resource: `arn:aws:s3:::home/${ROLE_ID}:s1/x`,
    expected: "Allow",
  },
  {
    name: "variables are literal text in 2008-10-17 documents",
    version: "2008-10-17",
    statement: { Effect: "Allow", Action: "s3:*", Resource: `arn:aws:s3:::home/${VAR("aws:username")}/*` },
    principal: alice,
    action: "s3:GetObject",
    resource: "arn:aws:s3:::home/alice/x",
    expected: "None",
  },
  {
    name: `${VAR("*")} is a literal star, not a wildcard`,
    statement: { Effect: "Allow", Action: "s3:*", Resource: `arn:aws:s3:::b/${VAR("*")}` },
    action: "s3:GetObject",
    resource: "arn:aws:s3:::b/anything",
    expected: "None",
  },
  {
    name: "variable in a condition value",
    statement: allowWith({ StringEquals: { "kms:EncryptionContext:owner": `${VAR("aws:username")}` } }),
    principal: alice,
    context: { "kms:EncryptionContext:owner": "alice" },
    expected: "Allow",
  },
  // string operators
  {
    name: "StringEquals matches",
    statement: allowWith({ StringEquals: { "kms:CallerAccount": ACCT } }),
    context: { "kms:CallerAccount": ACCT },
    expected: "Allow",
  },
  {
    name: "StringEquals is case-sensitive",
    statement: allowWith({ StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } }),
    context: { "kms:ViaService": "S3.us-east-1.amazonaws.com" },
    expected: "None",
  },
  {
    name: "StringEquals: several values are OR",
    statement: allowWith({
      StringEquals: { "kms:ViaService": ["ec2.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com"] },
    }),
    context: { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
    expected: "Allow",
  },
  {
    name: "StringEquals: missing key → false",
    statement: allowWith({ StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } }),
    expected: "None",
  },
  {
    name: "StringNotEquals: missing key → true (AWS documented)",
    statement: allowWith({ StringNotEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } }),
    expected: "Allow",
  },
  {
    name: "StringNotEquals: value among the listed → false",
    statement: allowWith({ StringNotEquals: { "kms:ViaService": ["a", "b"] } }),
    context: { "kms:ViaService": "b" },
    expected: "None",
  },
  {
    name: "StringEqualsIgnoreCase",
    statement: allowWith({ StringEqualsIgnoreCase: { "aws:UserAgent": "LAB-AGENT" } }),
    context: { "aws:UserAgent": "lab-agent" },
    expected: "Allow",
  },
  {
    name: "StringNotEqualsIgnoreCase",
    statement: allowWith({ StringNotEqualsIgnoreCase: { "aws:UserAgent": "LAB-AGENT" } }),
    context: { "aws:UserAgent": "lab-agent" },
    expected: "None",
  },
  {
    name: "StringLike with * and ?",
    statement: allowWith({ StringLike: { "kms:ViaService": "s3.?s-*.amazonaws.com" } }),
    context: { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
    expected: "Allow",
  },
  {
    name: "StringNotLike rejects a match",
    statement: allowWith({ StringNotLike: { "kms:ViaService": "s3.*" } }),
    context: { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
    expected: "None",
  },
  {
    name: "condition keys are case-insensitive",
    statement: allowWith({ StringEquals: { "AWS:sourcearn": TRAIL } }),
    context: { "aws:SourceArn": TRAIL },
    expected: "Allow",
  },
  {
    name: "several keys are AND",
    statement: allowWith({ StringEquals: { "aws:SourceArn": TRAIL, "aws:SourceAccount": ACCT } }),
    context: { "aws:SourceArn": TRAIL },
    expected: "None",
  },
  {
    name: "several operators are AND",
    statement: allowWith({
      StringEquals: { "aws:SourceAccount": ACCT },
      Bool: { "aws:SecureTransport": "true" },
    }),
    context: { "aws:SourceAccount": ACCT, "aws:SecureTransport": true },
    expected: "Allow",
  },
  // ARN operators
  {
    name: "ArnLike with wildcards per component",
    statement: allowWith({ ArnLike: { "aws:SourceArn": `arn:aws:cloudtrail:*:${ACCT}:trail/*` } }),
    context: { "aws:SourceArn": TRAIL },
    expected: "Allow",
  },
  {
    name: "ArnEquals exact",
    statement: allowWith({ ArnEquals: { "aws:SourceArn": TRAIL } }),
    context: { "aws:SourceArn": TRAIL },
    expected: "Allow",
  },
  {
    name: "ArnNotEquals with the same ARN → false",
    statement: allowWith({ ArnNotEquals: { "aws:SourceArn": TRAIL } }),
    context: { "aws:SourceArn": TRAIL },
    expected: "None",
  },
  {
    name: "ArnNotLike with missing key → true",
    statement: allowWith({ ArnNotLike: { "aws:SourceArn": "arn:aws:cloudtrail:*" } }),
    expected: "Allow",
  },
  // Bool, Numeric, Date, IP, Null, Binary
  {
    name: "Bool true (JSON boolean in the policy, boolean in the context)",
    statement: allowWith({ Bool: { "aws:SecureTransport": true } }),
    context: { "aws:SecureTransport": true },
    expected: "Allow",
  },
  {
    name: "Bool false does not match true",
    statement: allowWith({ Bool: { "aws:SecureTransport": "false" } }),
    context: { "aws:SecureTransport": true },
    expected: "None",
  },
  {
    name: "NumericLessThan",
    statement: allowWith({ NumericLessThan: { "kms:RecipientAttestation:x": 10 } }),
    context: { "kms:RecipientAttestation:x": 9 },
    expected: "Allow",
  },
  {
    name: "NumericGreaterThanEquals on a string value",
    statement: allowWith({ NumericGreaterThanEquals: { "aws:MultiFactorAuthAge": "3600" } }),
    context: { "aws:MultiFactorAuthAge": "100" },
    expected: "None",
  },
  {
    name: "NumericEquals / NotEquals",
    statement: allowWith({ NumericEquals: { "s3:max-keys": "10" }, NumericNotEquals: { "s3:x": "3" } }),
    context: { "s3:max-keys": 10, "s3:x": 4 },
    expected: "Allow",
  },
  {
    name: "NumericLessThanEquals / GreaterThan",
    statement: allowWith({ NumericLessThanEquals: { "s3:a": 5 }, NumericGreaterThan: { "s3:b": 5 } }),
    context: { "s3:a": 5, "s3:b": 5 },
    expected: "None",
  },
  {
    name: "DateLessThan with ISO dates",
    statement: allowWith({ DateLessThan: { "aws:CurrentTime": "2027-01-01T00:00:00Z" } }),
    context: { "aws:CurrentTime": "2026-06-01T12:00:00Z" },
    expected: "Allow",
  },
  {
    name: "DateGreaterThan with an epoch policy value",
    statement: allowWith({ DateGreaterThan: { "aws:EpochTime": "1800000000" } }),
    context: { "aws:EpochTime": 1700000000 },
    expected: "None",
  },
  {
    name: "DateGreaterThanEquals mixing ISO and epoch",
    statement: allowWith({ DateGreaterThanEquals: { "aws:CurrentTime": "1700000000" } }),
    context: { "aws:CurrentTime": "2023-11-14T22:13:20Z" },
    expected: "Allow",
  },
  {
    name: "DateEquals / DateNotEquals / DateLessThanEquals",
    statement: allowWith({
      DateEquals: { "aws:TokenIssueTime": "2026-01-01T00:00:00Z" },
      DateNotEquals: { "aws:CurrentTime": "2026-01-01T00:00:00Z" },
      DateLessThanEquals: { "aws:TokenIssueTime": "2026-01-01T00:00:00.000Z" },
    }),
    context: { "aws:TokenIssueTime": "2026-01-01T00:00:00Z", "aws:CurrentTime": "2026-01-02T00:00:00Z" },
    expected: "Allow",
  },
  {
    name: "IpAddress IPv4 CIDR",
    statement: allowWith({ IpAddress: { "aws:SourceIp": ["10.0.0.0/8", "192.0.2.1"] } }),
    context: { "aws:SourceIp": "10.1.2.3" },
    expected: "Allow",
  },
  {
    name: "IpAddress outside the range",
    statement: allowWith({ IpAddress: { "aws:SourceIp": "10.0.0.0/8" } }),
    context: { "aws:SourceIp": "11.0.0.1" },
    expected: "None",
  },
  {
    name: "IpAddress IPv6 CIDR",
    statement: allowWith({ IpAddress: { "aws:SourceIp": "2001:db8::/32" } }),
    context: { "aws:SourceIp": "2001:db8:0:1::42" },
    expected: "Allow",
  },
  {
    name: "IpAddress IPv4-mapped IPv6 request address",
    statement: allowWith({ IpAddress: { "aws:SourceIp": "127.0.0.0/8" } }),
    context: { "aws:SourceIp": "::ffff:127.0.0.1" },
    expected: "Allow",
  },
  {
    name: "NotIpAddress",
    statement: allowWith({ NotIpAddress: { "aws:SourceIp": "10.0.0.0/8" } }),
    context: { "aws:SourceIp": "10.9.9.9" },
    expected: "None",
  },
  {
    name: "Null true: key absent",
    statement: allowWith({ Null: { "kms:EncryptionContextKeys": "true" } }),
    expected: "Allow",
  },
  {
    name: "Null false: key present",
    statement: allowWith({ Null: { "kms:EncryptionContextKeys": "false" } }),
    context: { "kms:EncryptionContextKeys": ["a"] },
    expected: "Allow",
  },
  {
    name: "Null false with the key absent",
    statement: allowWith({ Null: { "kms:EncryptionContextKeys": false } }),
    expected: "None",
  },
  {
    name: "BinaryEquals on base64",
    statement: allowWith({ BinaryEquals: { "kms:x": "aGVsbG8=" } }),
    context: { "kms:x": "aGVsbG8=" },
    expected: "Allow",
  },
  // IfExists
  {
    name: "StringEqualsIfExists with the key missing → true",
    statement: allowWith({ StringEqualsIfExists: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } }),
    expected: "Allow",
  },
  {
    name: "StringEqualsIfExists with a different value → false",
    statement: allowWith({ StringEqualsIfExists: { "kms:ViaService": "s3.us-east-1.amazonaws.com" } }),
    context: { "kms:ViaService": "ec2.us-east-1.amazonaws.com" },
    expected: "None",
  },
  {
    name: "BoolIfExists / NumericLessThanIfExists / DateLessThanIfExists / IpAddressIfExists / ArnLikeIfExists, keys missing",
    statement: allowWith({
      BoolIfExists: { "aws:MultiFactorAuthPresent": "true" },
      NumericLessThanIfExists: { "s3:n": 1 },
      DateLessThanIfExists: { "aws:x": "2020-01-01" },
      IpAddressIfExists: { "aws:SourceIp": "10.0.0.0/8" },
      ArnLikeIfExists: { "aws:SourceArn": "arn:aws:s3:::*" },
    }),
    expected: "Allow",
  },
  // set operators (kms:EncryptionContextKeys)
  {
    name: "ForAllValues:StringEquals with an empty set → true",
    statement: allowWith({ "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["aws:s3:arn"] } }),
    context: { "kms:EncryptionContextKeys": [] },
    expected: "Allow",
  },
  {
    name: "ForAllValues:StringEquals with a key outside the list → false",
    statement: allowWith({ "ForAllValues:StringEquals": { "kms:EncryptionContextKeys": ["aws:s3:arn"] } }),
    context: { "kms:EncryptionContextKeys": ["aws:s3:arn", "extra"] },
    expected: "None",
  },
  {
    name: "ForAllValues:StringLike, every value matches",
    statement: allowWith({ "ForAllValues:StringLike": { "kms:EncryptionContextKeys": ["aws:*"] } }),
    context: { "kms:EncryptionContextKeys": ["aws:s3:arn", "aws:pi"] },
    expected: "Allow",
  },
  {
    name: "ForAnyValue:StringEquals, one value matches",
    statement: allowWith({ "ForAnyValue:StringEquals": { "kms:EncryptionContextKeys": "aws:s3:arn" } }),
    context: { "kms:EncryptionContextKeys": ["dept", "aws:s3:arn"] },
    expected: "Allow",
  },
  {
    name: "ForAnyValue:StringEquals with the key missing → false",
    statement: allowWith({ "ForAnyValue:StringEquals": { "kms:EncryptionContextKeys": "aws:s3:arn" } }),
    expected: "None",
  },
  {
    name: "ForAnyValue:StringNotEquals: some value is not listed",
    statement: allowWith({ "ForAnyValue:StringNotEquals": { "aws:TagKeys": ["a"] } }),
    context: { "aws:TagKeys": ["a", "b"] },
    expected: "Allow",
  },
  {
    name: "ForAllValues:StringNotEquals: one value is listed → false",
    statement: allowWith({ "ForAllValues:StringNotEquals": { "aws:TagKeys": ["a"] } }),
    context: { "aws:TagKeys": ["a", "b"] },
    expected: "None",
  },
  // keys the evaluator fills from the principal
  {
    name: "aws:PrincipalArn of a role session is the role ARN",
    statement: allowWith({
      ArnEquals: { "aws:PrincipalArn": ROLE_R },
      StringEquals: { "aws:PrincipalType": "AssumedRole", "aws:PrincipalAccount": ACCT },
    }),
    principal: r,
    expected: "Allow",
  },
  {
    name: "aws:PrincipalType of root is Account, of a user User",
    statement: allowWith({
      StringEquals: { "aws:PrincipalType": ["Account", "User"], "aws:userid": [ACCT, alice.userId] },
    }),
    principal: root,
    expected: "Allow",
  },
  {
    name: "aws:username / aws:PrincipalArn of a user",
    statement: allowWith({ StringEquals: { "aws:username": "alice", "aws:PrincipalArn": alice.arn } }),
    principal: alice,
    expected: "Allow",
  },
  {
    name: "anonymous callers have aws:PrincipalType Anonymous",
    statement: allowWith({ StringEquals: { "aws:PrincipalType": "Anonymous" } }),
    principal: ANONYMOUS,
    expected: "Allow",
  },
  {
    name: "the evaluator's principal keys cannot be overridden by the caller's context",
    statement: allowWith({ StringEquals: { "aws:PrincipalArn": ROLE_R } }),
    principal: alice,
    context: { "aws:PrincipalArn": ROLE_R },
    expected: "None",
  },
];

describe("evaluatePolicy: matching and conditions", () => {
  it.each(matchCases)("$name", (c) => {
    const policy = parsePolicy(doc([c.statement], c.version), "identity");
    const result = evaluatePolicy(policy, {
      principal: c.principal ?? alice,
      action: c.action ?? "kms:Decrypt",
      resource: c.resource ?? KEY,
      context: c.context ?? {},
    });
    expect(result.effect).toBe(c.expected);
  });

  it("reports Deny with the deciding statement's Sid, ahead of any Allow", () => {
    const policy = identity(
      { Sid: "AllowAll", Effect: "Allow", Action: "*", Resource: "*" },
      { Sid: "NoDecrypt", Effect: "Deny", Action: "kms:Decrypt", Resource: "*" },
    );
    expect(evaluatePolicy(policy, { principal: alice, action: "kms:Decrypt", resource: KEY })).toEqual({
      effect: "Deny",
      sid: "NoDecrypt",
    });
    expect(evaluatePolicy(policy, { principal: alice, action: "kms:Encrypt", resource: KEY })).toEqual({
      effect: "Allow",
      sid: "AllowAll",
    });
  });

  it("marks an Allow that only names the caller's account as delegated, but not for the root itself", () => {
    const req = { action: "kms:Decrypt", resource: KEY };
    expect(evaluatePolicy(rootOnlyKeyPolicy, { ...req, principal: r })).toEqual({
      effect: "Allow",
      sid: "Enable IAM User Permissions",
      delegated: true,
    });
    expect(evaluatePolicy(rootOnlyKeyPolicy, { ...req, principal: root })).toEqual({
      effect: "Allow",
      sid: "Enable IAM User Permissions",
    });
    expect(evaluatePolicy(rootOnlyKeyPolicy, { ...req, principal: ANONYMOUS }).effect).toBe("None");
    expect(evaluatePolicy(consoleKeyPolicy, { ...req, principal: r }).delegated).toBeUndefined();
  });

  it("does not let a trust policy statement without Action grant anything", () => {
    const policy = parsePolicy(doc([{ Effect: "Allow", Principal: "*" }]), "resource");
    expect(evaluatePolicy(policy, { principal: alice, action: "kms:Decrypt", resource: KEY }).effect).toBe(
      "None",
    );
  });
});

// -------------------------------------------------------------------------------------------------
// Documents

interface ParseErrorCase {
  name: string;
  text: string;
  kind: PolicyKind;
  message: string;
}

const parseErrorCases: ParseErrorCase[] = [
  { name: "invalid JSON", text: "{not json", kind: "identity", message: "This policy contains invalid Json" },
  { name: "a JSON array", text: "[]", kind: "identity", message: "Syntax errors in policy." },
  { name: "a JSON string", text: '"policy"', kind: "resource", message: "Syntax errors in policy." },
  {
    name: "no Statement",
    text: '{"Version":"2012-10-17"}',
    kind: "resource",
    message: "Missing required field Statement",
  },
  {
    name: "an unknown Version",
    text: doc([{ Effect: "Allow", Action: "s3:*", Resource: "*" }], "2020-01-01"),
    kind: "identity",
    message: "Syntax errors in policy.",
  },
  {
    name: "a bad Effect",
    text: doc([{ Effect: "Allowed", Action: "s3:*", Resource: "*" }]),
    kind: "identity",
    message: "Invalid effect: Allowed",
  },
  {
    name: "no Effect",
    text: doc([{ Action: "s3:*", Resource: "*" }]),
    kind: "identity",
    message: "Missing required field Effect",
  },
  {
    name: "an identity policy naming a principal",
    text: doc([{ Effect: "Allow", Principal: "*", Action: "s3:*", Resource: "*" }]),
    kind: "identity",
    message: "Policy document should not specify a principal.",
  },
  {
    name: "a key policy statement without principal",
    text: doc([rootStatement, { Effect: "Allow", Action: "kms:*", Resource: "*" }]),
    kind: "resource",
    message: "Missing required field Principal",
  },
  {
    name: "a trust policy without principal",
    text: doc([{ Effect: "Allow", Action: "sts:AssumeRole" }]),
    kind: "trust",
    message: "Missing required field Principal",
  },
  {
    name: "a trust policy with a Resource",
    text: doc([{ Effect: "Allow", Principal: { AWS: ACCT }, Action: "sts:AssumeRole", Resource: "*" }]),
    kind: "trust",
    message: "Has prohibited field Resource",
  },
  {
    name: "a trust policy with a non-STS action",
    text: doc([{ Effect: "Allow", Principal: { AWS: ACCT }, Action: "s3:GetObject" }]),
    kind: "trust",
    message: "AssumeRole policy may only specify STS AssumeRole actions.",
  },
  {
    name: "an identity statement without actions",
    text: doc([{ Effect: "Allow", Resource: "*" }]),
    kind: "identity",
    message: "Policy statement must contain actions.",
  },
  {
    name: "an identity statement without resources",
    text: doc([{ Effect: "Allow", Action: "s3:*" }]),
    kind: "identity",
    message: "Policy statement must contain resources.",
  },
  {
    name: "an action without vendor",
    text: doc([{ Effect: "Allow", Action: "GetObject", Resource: "*" }]),
    kind: "identity",
    message: "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
  },
  {
    name: "a resource that is not an ARN",
    text: doc([{ Effect: "Allow", Action: "s3:*", Resource: "my-bucket" }]),
    kind: "identity",
    message: 'Resource my-bucket must be in ARN format or "*".',
  },
  {
    name: "an unknown condition operator",
    text: doc([allowWith({ StringEqualz: { "aws:x": "1" } })]),
    kind: "identity",
    message: "Invalid Condition type : StringEqualz",
  },
  {
    name: "duplicate Sids",
    text: doc([
      { Sid: "A", Effect: "Allow", Action: "s3:*", Resource: "*" },
      { Sid: "A", Effect: "Deny", Action: "s3:*", Resource: "*" },
    ]),
    kind: "identity",
    message: "Statement IDs (SID) in a single policy must be unique.",
  },
  {
    name: "an invalid AWS principal",
    text: doc([{ Effect: "Allow", Principal: { AWS: "alice" }, Action: "kms:*", Resource: "*" }]),
    kind: "resource",
    message: 'Invalid principal in policy: "AWS":"alice"',
  },
  {
    name: "Action and NotAction together",
    text: doc([{ Effect: "Allow", Action: "s3:*", NotAction: "iam:*", Resource: "*" }]),
    kind: "identity",
    message: "Syntax errors in policy.",
  },
  {
    name: "an unknown statement field",
    text: doc([{ Effect: "Allow", Action: "s3:*", Resource: "*", Actions: "x" }]),
    kind: "identity",
    message: "Syntax errors in policy.",
  },
];

describe("parsePolicy", () => {
  it.each(parseErrorCases)("refuses $name", (c) => {
    let error: unknown;
    try {
      parsePolicy(c.text, c.kind);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).message).toBe(c.message);
    expect(policyProblems(c.text, c.kind)).toContain(c.message);
  });

  it("normalises a single Statement object and string elements to arrays, and keeps the text", () => {
    const text = JSON.stringify({
      Version: "2012-10-17",
      Id: "key-default-1",
      Statement: {
        Sid: "One",
        Effect: "Allow",
        Principal: { AWS: ACCT, Service: "s3.amazonaws.com" },
        Action: "kms:Decrypt",
        Resource: "*",
        Condition: { Bool: { "aws:SecureTransport": true } },
      },
    });
    const policy = parsePolicy(text, "resource");
    expect(policy).toEqual({
      version: "2012-10-17",
      id: "key-default-1",
      text,
      statements: [
        {
          sid: "One",
          effect: "Allow",
          principal: { AWS: [ACCT], Service: ["s3.amazonaws.com"] },
          action: ["kms:Decrypt"],
          resource: ["*"],
          condition: { Bool: { "aws:SecureTransport": ["true"] } },
        },
      ],
    });
    expect(policyProblems(text, "resource")).toEqual([]);
  });

  it('treats "Principal": "*" as {"AWS": ["*"]} and accepts Federated / CanonicalUser principals', () => {
    const policy = parsePolicy(
      doc([
        { Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/*" },
        {
          Effect: "Allow",
          NotPrincipal: { Federated: "cognito-identity.amazonaws.com" },
          Action: "s3:GetObject",
          Resource: "*",
        },
        {
          Effect: "Allow",
          Principal: { CanonicalUser: "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be" },
          Action: "s3:*",
          Resource: "*",
        },
      ]),
      "resource",
    );
    expect(policy.statements[0]!.principal).toEqual({ AWS: ["*"] });
    expect(policy.statements[1]!.notPrincipal).toEqual({ Federated: ["cognito-identity.amazonaws.com"] });
  });

  it("accepts key-policy Sids with spaces and a 2008-10-17 document, but not such Sids in IAM policies", () => {
    expect(parsePolicy(doc([rootStatement], "2008-10-17"), "resource").version).toBe("2008-10-17");
    expect(() => parsePolicy(doc([{ ...rootStatement, Principal: undefined }]), "identity")).toThrow(
      "Statement IDs (SID) must be alpha-numeric",
    );
  });

  it("lists every AWS principal a policy names, from Principal and NotPrincipal", () => {
    const policy = resource(rootStatement, keyUsersStatement, {
      Effect: "Deny",
      NotPrincipal: { AWS: [alice.arn, ROLE_ID], Service: "cloudtrail.amazonaws.com" },
      Action: "kms:*",
      Resource: "*",
    });
    expect(policyPrincipals(policy)).toEqual([`arn:aws:iam::${ACCT}:root`, ROLE_R, alice.arn, ROLE_ID]);
    expect(policyPrincipals(publicRead)).toEqual(["*"]);
  });

  it("reports several problems at once without throwing", () => {
    const problems = policyProblems(doc([{ Effect: "Maybe", Principal: "*", Action: "x" }]), "identity");
    expect(problems).toEqual(
      expect.arrayContaining([
        "Invalid effect: Maybe",
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        "Policy statement must contain resources.",
        "Policy document should not specify a principal.",
      ]),
    );
  });
});
