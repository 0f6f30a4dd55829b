import {
  call,
  check,
  must,
  POLICY_NAMES_ROLE,
  POLICY_WITHOUT_ROLE,
  policyAllows,
  poll,
  ROLE_ARN,
  ROOT_CANNOT_ASSUME,
  x,
} from "../build.js";
import { ANY_ERROR, type CallStep, type StageDef } from "../dsl.js";
import { objectExists } from "./buckets.js";
import { describeKeyByAlias } from "./sse-kms-upload.js";
import { eventLookup, keyLookup } from "./trail-key-usage.js";

/**
 * Stage 6 (lab.md): the key policy alone decides the key user's access. As the key-user role the
 * object downloads; with the role taken out of the key policy it no longer does (S3: 403 with KMS's
 * denial; KMS Decrypt: AccessDeniedException); with the role put back it does again. Each change is
 * polled until it has propagated. The role has no KMS permission in IAM (stage 1), else removing it
 * from the key policy would change nothing (aws-subset §7, the stage 6 trap) — the precondition
 * checks that.
 */
const ID = "key-user-access";

const getAsKeyUser = (id: string, variable: string, expectDenied = false): CallStep =>
  call(
    id,
    "GET the object as the key user",
    "s3",
    "GetObject",
    {
      Bucket: x("$params.dataBucket"),
      Key: x("$params.objectKey"),
    },
    expectDenied
      ? { as: "keyUser", expectError: { errors: ["AccessDenied"], assign: { [variable]: x("true") } } }
      : {
          as: "keyUser",
          tolerate: ["AccessDenied"],
          assign: { [variable]: x(`$type($states.result.Body) = "string"`) },
        },
  );

const decryptAsKeyUser = (id: string, variable: string, expectDenied = false): CallStep =>
  call(
    id,
    "decrypt as the key user",
    "kms",
    "Decrypt",
    { CiphertextBlob: x("$probeBlob") },
    expectDenied
      ? {
          as: "keyUser",
          expectError: { errors: ["AccessDeniedException"], assign: { [variable]: x("true") } },
        }
      : { as: "keyUser", tolerate: ["AccessDeniedException"], assign: { [variable]: x("true") } },
  );

const readKeyPolicy = call(
  "policy",
  "read the key policy",
  "kms",
  "GetKeyPolicy",
  {
    KeyId: x("$key.KeyId"),
    PolicyName: "default",
  },
  {
    when: `$type($key) = "object"`,
    assign: { startPolicy: x("$states.result.Policy"), policy: x("$parse($states.result.Policy)") },
  },
);

/** JSONata: whether a PutKeyPolicy record's policy names the key user. */
const NAMES_ROLE = `function($text) { ($policy := $parse($text); ${POLICY_NAMES_ROLE}) }`;

/** JSONata: when the key user was first taken out of the key policy (epoch ms), from `$puts`; undefined before. */
const REMOVED_AT = `(
  $namesRole := ${NAMES_ROLE};
  $type($puts) = "array" ? $min($puts[$not($namesRole(requestParameters.policy))].$toMillis(eventTime))
)`;

/** The key's PutKeyPolicy events (every page: the key user's polls add events on the key). */
const lookupPuts = (id: string) =>
  keyLookup(id, "look up the key's PutKeyPolicy events", {
    puts: `[$events[eventName = "PutKeyPolicy" and $key.Arn in resources.ARN and $not($exists(errorCode))]]`,
  });

/**
 * The key user's denied Decrypts since it was taken out of the key policy. By event name, not by
 * the key: CloudTrail may not name the key of a ciphertext KMS refused to decrypt (unconfirmed; the
 * simulator does not), so a lookup by the key's ARN may never show them. In an account shared by a
 * class every learner's Decrypts answer this lookup: it starts at the removal, and the denials are
 * told apart by the session's role (the key user's ARN carries the learner's suffix).
 */
const lookupDenials = (id: string) =>
  eventLookup(
    id,
    "look up the key user's denied Decrypt events",
    { AttributeKey: "EventName", AttributeValue: "Decrypt" },
    {
      denials: `[$events[eventName = "Decrypt" and $exists(errorCode) and userIdentity.sessionContext.sessionIssuer.arn = ${ROLE_ARN}]]`,
    },
    { when: `$exists(${REMOVED_AT})`, startTime: REMOVED_AT },
  );

/**
 * JSONata: points for the sequence in CloudTrail — a PutKeyPolicy without the role (4), then a
 * denied KMS call by the role (3), then a PutKeyPolicy with it (3).
 */
const SEQUENCE = `(
  $namesRole := ${NAMES_ROLE};
  $without := $puts[$not($namesRole(requestParameters.policy))];
  $with := $puts[$namesRole(requestParameters.policy)];
  $removedAt := $min($without.$toMillis(eventTime));
  $deniedAt := $min($denials[$toMillis(eventTime) >= $removedAt].$toMillis(eventTime));
  ($count($without) > 0 ? 4 : 0)
    + ($exists($deniedAt) ? 3 : 0)
    + ($count($with[$toMillis(eventTime) >= $deniedAt]) > 0 ? 3 : 0)
)`;

export const keyUserAccess: StageDef = {
  id: ID,
  title: "removing the key user from the key policy takes effect",
  points: 20,
  dependsOn: ["create-key", "sse-kms-upload"],
  precondition: [
    call(
      "caller",
      "find out who is calling",
      "sts",
      "GetCallerIdentity",
      {},
      { assign: { callerArn: x("$states.result.Arn") } },
    ),
    // AWS refuses AssumeRole to the root user at once ("Roles may not be assumed by root
    // accounts."): nothing to wait for, and the learner needs another identity.
    must(
      "notRoot",
      "the caller is not the account's root user (who cannot act as the key user)",
      `$callerArn != "arn:aws:iam::" & $params.account & ":root"`,
      JSON.stringify(ROOT_CANNOT_ASSUME),
    ),
    describeKeyByAlias,
    must(
      "keyEnabled",
      "the key is enabled",
      `$key.KeyState = "Enabled"`,
      `"no enabled key answers to " & $params.keyAlias`,
    ),
    call(
      "role",
      "look for the key-user role",
      "iam",
      "GetRole",
      { RoleName: x("$params.keyUserRole") },
      {
        tolerate: ["NoSuchEntity"],
        assign: { roleThere: x("true") },
      },
    ),
    must(
      "roleExists",
      "the key-user role exists",
      "$roleThere = true",
      `"there is no role " & $params.keyUserRole & " (stage 1 makes it)"`,
    ),
    ...objectExists(),
    call(
      "attached",
      "list the role's managed policies",
      "iam",
      "ListAttachedRolePolicies",
      {
        RoleName: x("$params.keyUserRole"),
      },
      { assign: { attached: x("$states.result.AttachedPolicies") } },
    ),
    call(
      "inline",
      "list the role's inline policies",
      "iam",
      "ListRolePolicies",
      { RoleName: x("$params.keyUserRole") },
      {
        assign: { inline: x("$states.result.PolicyNames") },
      },
    ),
    call(
      "labPolicy",
      "read the role's lab policy",
      "iam",
      "GetRolePolicy",
      {
        RoleName: x("$params.keyUserRole"),
        PolicyName: "kmslab-read-lab-data",
      },
      {
        tolerate: ["NoSuchEntity"],
        assign: { labPolicy: x("$decodeUrlComponent($states.result.PolicyDocument)") },
      },
    ),
    // An IAM policy that allows the role kms:Decrypt on the key is a second path to it (through the
    // key policy's root statement): taking the role out of the key-users statement would change
    // nothing. Only the lab's own policy is read; any other policy is refused unread.
    must(
      "noIamPath",
      "the role has no IAM path to the key",
      `$count($attached) = 0 and $count($inline[$ != "kmslab-read-lab-data"]) = 0
        and $not($type($labPolicy) = "string" and ${policyAllows("$parse($labPolicy)", `"kms:Decrypt"`, "$key.Arn")})`,
      `"the role " & $params.keyUserRole & ($count($attached) + $count($inline[$ != "kmslab-read-lab-data"]) > 0
        ? " has IAM policies besides the lab's (" & $join($append($attached.PolicyName, $inline[$ != "kmslab-read-lab-data"]), ", ") & ")"
        : "'s policy kmslab-read-lab-data allows kms:Decrypt on the key") & ": removing it from the key policy would not revoke its access; take those permissions away first"`,
    ),
    readKeyPolicy,
    must(
      "policyNamesRole",
      "the key policy names the role",
      POLICY_NAMES_ROLE,
      `"the key policy of " & $params.keyAlias & " has no key-users statement naming " & $params.keyUserRole`,
    ),
  ],
  run: [
    call(
      "probeBlob",
      "encrypt a probe for the key user to decrypt",
      "kms",
      "Encrypt",
      {
        KeyId: x("$key.Arn"),
        Plaintext: x(`$base64encode("kmslab key-user probe")`),
      },
      { assign: { probeBlob: x("$states.result.CiphertextBlob") } },
    ),
    // The key user's first call. Step Functions assumes the Task's Credentials role for it, and a
    // role just made may not be assumable yet (IAM propagation); the name Step Functions gives that
    // failure is not documented. GetCallerIdentity needs no permission, so any failure of it means
    // "not yet": retried whatever it is (ASL: States.ALL), within the propagation budget. The local
    // engine's AssumeRole waits the same way.
    call(
      "keyUserSession",
      "wait until the key user's role can be assumed",
      "sts",
      "GetCallerIdentity",
      {},
      { as: "keyUser", retry: { errors: [ANY_ERROR], budgetSeconds: "$params.propagationWaitSeconds" } },
    ),
    poll("before", "as the key user, read the object", [getAsKeyUser("getBefore", "readBefore")], {
      until: "$readBefore = true",
      intervalSeconds: "2",
      budgetSeconds: "$params.propagationWaitSeconds",
      waitingFor: "the key user's access (IAM propagation)",
    }),
    call(
      "removeUser",
      "take the key user out of the key policy",
      "kms",
      "PutKeyPolicy",
      {
        KeyId: x("$key.KeyId"),
        PolicyName: "default",
        Policy: x(`($p := $parse($startPolicy); $string(${POLICY_WITHOUT_ROLE}))`),
      },
      {
        effect: {
          undo: [
            call("putBack", "put the key policy back as the stage found it", "kms", "PutKeyPolicy", {
              KeyId: x("$key.KeyId"),
              PolicyName: "default",
              Policy: x("$startPolicy"),
            }),
          ],
        },
      },
    ),
    poll(
      "denied",
      "as the key user, see access fail",
      [getAsKeyUser("getDenied", "s3Denied", true), decryptAsKeyUser("decryptDenied", "kmsDenied", true)],
      {
        until: "$s3Denied = true and $kmsDenied = true",
        intervalSeconds: "2",
        budgetSeconds: "$params.propagationWaitSeconds",
        waitingFor: "the key policy change to take effect",
      },
    ),
    call("restoreUser", "put the key user back into the key policy", "kms", "PutKeyPolicy", {
      KeyId: x("$key.KeyId"),
      PolicyName: "default",
      Policy: x("$startPolicy"),
    }),
    poll(
      "after",
      "as the key user, see access work again",
      [getAsKeyUser("getAfter", "readAfter"), decryptAsKeyUser("decryptAfter", "decryptAfter")],
      {
        until: "$readAfter = true and $decryptAfter = true",
        intervalSeconds: "2",
        budgetSeconds: "$params.propagationWaitSeconds",
        waitingFor: "the key policy change to take effect",
      },
    ),
    poll(
      "trail",
      "wait until CloudTrail shows the sequence",
      [lookupPuts("lookupPuts"), lookupDenials("lookupDenials")],
      {
        until: `${SEQUENCE} = 10`,
        intervalSeconds: "$params.pollSeconds",
        budgetSeconds: "$params.trailWaitSeconds",
        waitingFor: "CloudTrail's event history (LookupEvents)",
      },
    ),
  ],
  verify: [
    check(
      "restored",
      "the key policy names the key user again and the key user can read the object",
      10,
      [describeKeyByAlias, readKeyPolicy, getAsKeyUser("getNow", "readNow")],
      `(${POLICY_NAMES_ROLE} ? 5 : 0) + ($readNow = true ? 5 : 0)`,
      {
        evidence: { roleArn: ROLE_ARN, keyUserCanRead: "$readNow = true" },
        learner: `$not(${POLICY_NAMES_ROLE}) ? "Put " & $params.keyUserRole & " back into the key policy's key-users statement (Decrypt, GenerateDataKey)."
          : "The key policy names " & $params.keyUserRole & " but it still cannot read " & $params.objectKey & ": check its s3:GetObject permission."`,
        author: `"policy names role: " & (${POLICY_NAMES_ROLE} ? "yes" : "no") & ", role can read: " & ($readNow = true ? "yes" : "no")`,
      },
    ),
    check(
      "sequence",
      "CloudTrail shows the key user removed, denied, then restored",
      10,
      [describeKeyByAlias, lookupPuts("keyEvents"), lookupDenials("denialEvents")],
      SEQUENCE,
      {
        evidence: { putKeyPolicyEvents: "$puts.eventID", deniedEvents: "$denials.eventID" },
        learner: `(
          $namesRole := ${NAMES_ROLE};
          $without := $type($puts) = "array" and $count($puts) > 0 ? $puts[$not($namesRole(requestParameters.policy))] : [];
          $removed := $count($without) > 0;
          $removedAt := $removed ? $min($without.$toMillis(eventTime)) : 0;
          $denied := $type($denials) = "array" and $count($denials[$toMillis(eventTime) >= $removedAt]) > 0;
          $not($removed)
            ? "The key user was never removed from the key policy: CloudTrail shows no PutKeyPolicy without " & $params.keyUserRole & " (take it out of the key-users statement, then try to read the object as the role)."
            : $not($denied)
              ? "CloudTrail shows the key user removed but no denied Decrypt by " & $params.keyUserRole & " after that: read the object as the role while it is out of the key policy."
              : "The key user was left removed: CloudTrail shows no PutKeyPolicy that puts " & $params.keyUserRole & " back after its denial."
        )`,
        author: `"PutKeyPolicy events: " & $string($count($puts)) & ", denied calls by the role: " & $string($count($denials))`,
      },
    ),
  ],
};
