import {
  call,
  check,
  lit,
  must,
  ownedBy,
  POLICY_NAMES_ROLE,
  ROLE_ARN,
  RUN_TAG,
  raw,
  tags,
  x,
} from "../build.js";
import type { StageDef } from "../dsl.js";

/**
 * Stage 1 (lab.md): a symmetric customer managed key with a console-style key policy (account root,
 * the caller as key administrator, the key-user role as key user), its alias, and the key-user role
 * itself — trusted by the account, allowed to read the lab's data bucket, and given no KMS
 * permission in IAM, so that the key policy alone decides its use of the key (stage 6's trap).
 */
const ID = "create-key";
const ROOT = raw(`"arn:aws:iam::" & $params.account & ":root"`);

const TRUST = lit({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { AWS: ROOT }, Action: "sts:AssumeRole" }],
});

const READ_DATA = lit({
  Version: "2012-10-17",
  Statement: [
    {
      Sid: "ReadLabData",
      Effect: "Allow",
      Action: ["s3:GetObject", "s3:ListBucket"],
      Resource: [
        raw(`"arn:aws:s3:::" & $params.dataBucket`),
        raw(`"arn:aws:s3:::" & $params.dataBucket & "/*"`),
      ],
    },
  ],
});

/**
 * JSONata: the caller's own ARN as a key policy can name it, or null. A user's or the root's ARN
 * is the caller's; a role session (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`) is named by
 * its role, whose ARN carries the role's path (IAM Identity Center's roles live under
 * `/aws-reserved/sso.amazonaws.com/`), which the session ARN leaves out: only GetRole gives it
 * (`$callerRoleArn`). Rebuilt from the session ARN it would name a role that does not exist, which
 * KMS refuses ("Policy contains a statement with one or more invalid principals").
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns
 */
export const ADMIN_ARN = `($type($callerRole) = "string" ? $callerRoleArn : $callerArn)`;

const KEY_ADMINISTRATORS = lit({
  Sid: "Allow access for Key Administrators",
  Effect: "Allow",
  Principal: { AWS: raw(ADMIN_ARN) },
  Action: [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
  ],
  Resource: "*",
});

/**
 * The console's key policy: the account root (which lets IAM policies grant use of the key), the
 * caller as key administrator — left out when the caller's ARN is not known (a role session that
 * may not read its role): the root statement then lets the caller's IAM policies administer the
 * key, and the key's description says so — and the key-user role as key user.
 */
export const KEY_POLICY = lit({
  Version: "2012-10-17",
  Id: "kmslab-key-policy",
  Statement: [
    {
      Sid: "Enable IAM User Permissions",
      Effect: "Allow",
      Principal: { AWS: ROOT },
      Action: "kms:*",
      Resource: "*",
    },
    raw(`$type(${ADMIN_ARN}) = "string" ? ${KEY_ADMINISTRATORS} : undefined`),
    {
      Sid: "Allow use of the key",
      Effect: "Allow",
      Principal: { AWS: raw(ROLE_ARN) },
      Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
      Resource: "*",
    },
  ],
});

export const createKey: StageDef = {
  id: ID,
  title: "a symmetric customer managed key",
  points: 15,
  dependsOn: [],
  precondition: [
    call(
      "caller",
      "find out who is calling",
      "sts",
      "GetCallerIdentity",
      {},
      {
        assign: {
          callerArn: x("$states.result.Arn"),
          callerRole: x(
            `$contains($states.result.Arn, ":assumed-role/") ? $split($states.result.Arn, "/")[1] : null`,
          ),
        },
      },
    ),
    call(
      "callerRole",
      "read the caller's role (its ARN has the path its session's ARN leaves out)",
      "iam",
      "GetRole",
      { RoleName: x("$callerRole") },
      {
        when: `$type($callerRole) = "string"`,
        // Never a guessed ARN: a caller that may not read its role is left to the root statement.
        tolerate: ["AccessDenied"],
        assign: { callerRoleArn: x("$states.result.Role.Arn") },
      },
    ),
    call(
      "aliasTaken",
      "look for the alias",
      "kms",
      "DescribeKey",
      { KeyId: x("$params.keyAlias") },
      {
        tolerate: ["NotFoundException"],
        assign: { aliasKeyArn: x("$states.result.KeyMetadata.Arn") },
      },
    ),
    call(
      "aliasOwner",
      "see which run made the alias's key",
      "kms",
      "ListResourceTags",
      { KeyId: x("$aliasKeyArn") },
      {
        when: `$type($aliasKeyArn) = "string"`,
        assign: { aliasKeyRun: x(`$states.result.Tags[TagKey = "${RUN_TAG}"].TagValue`) },
      },
    ),
    must(
      "aliasFree",
      "the alias is free or this run's",
      `$type($aliasKeyArn) != "string" or $aliasKeyRun = $runId`,
      `"the alias " & $params.keyAlias & " already points at key " & $aliasKeyArn & ", which this run did not create: choose another alias (--key-alias) or a suffix (--suffix)"`,
    ),
    call(
      "roleTaken",
      "look for the key-user role",
      "iam",
      "GetRole",
      { RoleName: x("$params.keyUserRole") },
      {
        tolerate: ["NoSuchEntity"],
        assign: { existingRoleTags: x("$states.result.Role.Tags") },
      },
    ),
    must(
      "roleFree",
      "the key-user role is free or this run's",
      `$type($existingRoleTags) = "null" or ${ownedBy("$existingRoleTags")}`,
      `"an IAM role named " & $params.keyUserRole & " already exists and was not made by this run: choose another name (--key-user-role) or a suffix (--suffix)"`,
    ),
  ],
  run: [
    call(
      "createRole",
      "create the key-user role",
      "iam",
      "CreateRole",
      {
        RoleName: x("$params.keyUserRole"),
        AssumeRolePolicyDocument: x(`$string(${TRUST})`),
        Description: "kmslab key user: the principal the lab grants, revokes and restores use of the key",
        Tags: tags.keyed(ID),
      },
      {
        assign: { roleArn: x("$states.result.Role.Arn") },
        effect: {
          resource: { type: "AWS::IAM::Role", arn: ROLE_ARN },
          undo: [
            call(
              "deleteRoleInline",
              "delete the role's policy",
              "iam",
              "DeleteRolePolicy",
              {
                RoleName: x("$params.keyUserRole"),
                PolicyName: "kmslab-read-lab-data",
              },
              { tolerate: ["NoSuchEntity"] },
            ),
            call(
              "deleteRole",
              "delete the key-user role",
              "iam",
              "DeleteRole",
              {
                RoleName: x("$params.keyUserRole"),
              },
              { tolerate: ["NoSuchEntity"] },
            ),
          ],
          exists: {
            errors: ["EntityAlreadyExists"],
            read: [
              call(
                "readRole",
                "read the existing role",
                "iam",
                "GetRole",
                { RoleName: x("$params.keyUserRole") },
                {
                  assign: {
                    roleArn: x("$states.result.Role.Arn"),
                    existingRoleTags: x("$states.result.Role.Tags"),
                  },
                },
              ),
            ],
            owned: ownedBy("$existingRoleTags"),
          },
        },
      },
    ),
    call(
      "rolePolicy",
      "let the role read the lab's data bucket (and nothing in KMS)",
      "iam",
      "PutRolePolicy",
      {
        RoleName: x("$params.keyUserRole"),
        PolicyName: "kmslab-read-lab-data",
        PolicyDocument: x(`$string(${READ_DATA})`),
      },
      {
        effect: {
          undo: [
            call(
              "deleteRolePolicy",
              "delete the role's policy",
              "iam",
              "DeleteRolePolicy",
              {
                RoleName: x("$params.keyUserRole"),
                PolicyName: "kmslab-read-lab-data",
              },
              { tolerate: ["NoSuchEntity"] },
            ),
          ],
        },
      },
    ),
    call(
      "createKey",
      "create the key with a console-style key policy",
      "kms",
      "CreateKey",
      {
        Description: x(
          `"kmslab lab key (run " & $runId & ")" & ($type(${ADMIN_ARN}) = "string" ? "" : "; no key administrators statement: iam:GetRole on the caller's role " & $callerRole & " was denied, so the account's IAM policies administer the key")`,
        ),
        KeyUsage: "ENCRYPT_DECRYPT",
        KeySpec: "SYMMETRIC_DEFAULT",
        Policy: x(`$string(${KEY_POLICY})`),
        Tags: tags.kms(ID),
      },
      {
        assign: { keyArn: x("$states.result.KeyMetadata.Arn"), keyId: x("$states.result.KeyMetadata.KeyId") },
        // KMS refuses a principal IAM has not propagated yet ("invalid principals"): not yet, not no.
        retry: {
          errors: ["MalformedPolicyDocumentException"],
          budgetSeconds: "$params.propagationWaitSeconds",
        },
        effect: {
          resource: { type: "AWS::KMS::Key", arn: "$keyArn" },
          undo: [
            call(
              "scheduleKeyDeletion",
              "schedule the key's deletion (7 days)",
              "kms",
              "ScheduleKeyDeletion",
              {
                KeyId: x("$keyArn"),
                PendingWindowInDays: 7,
              },
              { tolerate: ["KMSInvalidStateException", "NotFoundException"] },
            ),
          ],
        },
      },
    ),
    call(
      "createAlias",
      "give the key its alias",
      "kms",
      "CreateAlias",
      { AliasName: x("$params.keyAlias"), TargetKeyId: x("$keyId") },
      {
        effect: {
          resource: {
            type: "AWS::KMS::Alias",
            arn: `"arn:aws:kms:" & $params.region & ":" & $params.account & ":" & $params.keyAlias`,
          },
          undo: [
            call(
              "deleteAlias",
              "delete the alias",
              "kms",
              "DeleteAlias",
              { AliasName: x("$params.keyAlias") },
              {
                tolerate: ["NotFoundException"],
              },
            ),
          ],
          exists: {
            errors: ["AlreadyExistsException"],
            read: [
              call(
                "readAlias",
                "read the alias",
                "kms",
                "DescribeKey",
                { KeyId: x("$params.keyAlias") },
                {
                  assign: { aliasKeyArn: x("$states.result.KeyMetadata.Arn") },
                },
              ),
            ],
            owned: "$aliasKeyArn = $keyArn",
          },
        },
      },
    ),
  ],
  verify: [
    check(
      "key",
      "the alias names an enabled, customer managed, symmetric key",
      8,
      [
        call(
          "describe",
          "describe the key by its alias",
          "kms",
          "DescribeKey",
          { KeyId: x("$params.keyAlias") },
          {
            tolerate: ["NotFoundException"],
            assign: { key: x("$states.result.KeyMetadata") },
          },
        ),
        call(
          "aliases",
          "list the account's aliases (a near miss is named to the learner)",
          "kms",
          "ListAliases",
          { Limit: 100 },
          {
            when: `$type($key) != "object"`,
            assign: {
              nearMisses: x(
                `[$states.result.Aliases[$substring(AliasName, 0, 10) != "alias/aws/" and ($lowercase(AliasName) = $lowercase($params.keyAlias) or $contains($lowercase(AliasName), $lowercase($substringAfter($params.keyAlias, "alias/"))) or $contains($lowercase($params.keyAlias), $lowercase($substringAfter(AliasName, "alias/"))))].AliasName]`,
              ),
            },
          },
        ),
      ],
      `$key.Enabled = true and $key.KeyManager = "CUSTOMER" and $key.KeySpec = "SYMMETRIC_DEFAULT" and $key.KeyUsage = "ENCRYPT_DECRYPT" ? 8 : 0`,
      {
        evidence: {
          keyArn: "$key.Arn",
          keyState: "$key.KeyState",
          keySpec: "$key.KeySpec",
          otherAliases: `$type($nearMisses) = "array" and $count($nearMisses) > 0 ? $nearMisses : undefined`,
        },
        learner: `$type($key) != "object"
          ? "No key answers to " & $params.keyAlias & ($type($nearMisses) = "array" and $count($nearMisses) > 0 ? " (the account has " & $join($nearMisses, ", ") & ": a wrong alias? aliases are case-sensitive)" : "") & ": create a symmetric customer managed key and give it that alias."
          : "The key behind " & $params.keyAlias & " must be an enabled, customer managed, symmetric ENCRYPT_DECRYPT key; it is " & $key.KeyState & ", " & $key.KeyManager & ", " & $key.KeySpec & "."`,
        author: `"DescribeKey(" & $params.keyAlias & ") → " & ($type($key) = "object" ? $key.KeyState & "/" & $key.KeyManager & "/" & $key.KeySpec : "not found")`,
      },
    ),
    check(
      "key-users",
      "the key policy has a key-users statement naming the key-user role",
      7,
      [
        call(
          "describe",
          "describe the key by its alias",
          "kms",
          "DescribeKey",
          { KeyId: x("$params.keyAlias") },
          {
            tolerate: ["NotFoundException"],
            assign: { key: x("$states.result.KeyMetadata") },
          },
        ),
        call(
          "policy",
          "read the key policy",
          "kms",
          "GetKeyPolicy",
          { KeyId: x("$key.KeyId"), PolicyName: "default" },
          {
            when: `$type($key) = "object"`,
            assign: { policy: x("$parse($states.result.Policy)") },
          },
        ),
      ],
      `${POLICY_NAMES_ROLE} ? 7 : 0`,
      {
        evidence: { roleArn: ROLE_ARN, statements: "$count($policy.Statement)" },
        learner: `"The key policy needs a statement that allows the role " & $params.keyUserRole & " kms:Decrypt and kms:GenerateDataKey (the console's \\"key users\\")."`,
        author: `"no Allow statement with Principal.AWS = " & ${ROLE_ARN} & " granting Decrypt and GenerateDataKey"`,
      },
    ),
  ],
};
