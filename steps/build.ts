import type { CallStep, Check, PollStep, ProbeStep, RequireStep, Service, StageId, Step } from "./dsl.js";

/**
 * Small builders that keep the stage modules readable. They only assemble data (dsl.ts); the
 * expressions stay JSONata text that both engines evaluate.
 */

export const RUN_TAG = "kmslab:run";
export const STAGE_TAG = "kmslab:stage";

/**
 * JSONata: `list` with `value` appended, as a paged read's variables grow page by page
 * (CallStep.pages): `$append`'s own rules (an array's items, a single value, nothing for undefined).
 */
export const PAGE_APPEND = (list: string, value: string) => `$append(${list}, ${value})`;

/** `{% ... %}` */
export const x = (jsonata: string): string => `{% ${jsonata} %}`;

const RAW = "\u0000jsonata:";

/** Marks JSONata source inside a `lit()` object (a variable, a concatenation). */
export const raw = (jsonata: string): string => RAW + jsonata;

/**
 * A JSON value written as JSONata source, with `raw()` parts spliced in: the policy documents are
 * built this way and serialised with `$string()` where an API wants a string.
 */
export function lit(value: unknown): string {
  if (typeof value === "string")
    return value.startsWith(RAW) ? value.slice(RAW.length) : JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(lit).join(", ")}]`;
  if (value !== null && typeof value === "object")
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}: ${lit(v)}`)
      .join(", ")}}`;
  return JSON.stringify(value);
}

/** The tags every created resource carries, in each service's own shape. */
export const tags = {
  kms: (stage: StageId) => [
    { TagKey: RUN_TAG, TagValue: x("$runId") },
    { TagKey: STAGE_TAG, TagValue: stage },
  ],
  keyed: (stage: StageId) => [
    { Key: RUN_TAG, Value: x("$runId") },
    { Key: STAGE_TAG, Value: stage },
  ],
  /** S3's `x-amz-tagging` header form (URL query encoding). */
  header: (stage: StageId) =>
    x(
      `"${encodeURIComponent(RUN_TAG)}=" & $encodeUrlComponent($runId) & "&${encodeURIComponent(STAGE_TAG)}=${stage}"`,
    ),
};

/** The JSONata test "this tag list says the resource is this run's" (IAM, S3, CloudTrail shapes). */
export const ownedBy = (tagList: string) => `$count(${tagList}[Key = "${RUN_TAG}" and Value = $runId]) > 0`;

type CallExtras = Omit<CallStep, "kind" | "id" | "title" | "service" | "action" | "args">;

export function call(
  id: string,
  title: string,
  service: Service,
  action: string,
  /** The input: an object of literals and `{% %}` fields, or one `{% %}` expression that builds it. */
  args: Record<string, unknown> | string,
  extras: CallExtras = {},
): CallStep {
  return { kind: "call", id, title, service, action, args, ...extras };
}

export function must(id: string, title: string, condition: string, message: string): RequireStep {
  return { kind: "require", id, title, condition, message };
}

export function poll(
  id: string,
  title: string,
  steps: (CallStep | ProbeStep)[],
  options: Omit<PollStep, "kind" | "id" | "title" | "steps">,
): PollStep {
  return { kind: "poll", id, title, steps, ...options };
}

export function check(
  id: string,
  title: string,
  points: number,
  read: Step[],
  score: string,
  messages: { evidence: Record<string, string>; learner: string; author: string },
): Check {
  return { id, title, points, read, score, ...messages };
}

/**
 * What a learner running as the account's root user is told: AWS answers the root user's
 * AssumeRole with 403 AccessDenied "Roles may not be assumed by root accounts.", and stage 6 (and
 * its grading) acts as the key-user role. AWS's documentation does not state the refusal; the
 * response is as observed and quoted in https://github.com/cloudposse/terraform-aws-vpc-peering-multi-account/issues/106
 * (status 403) and https://github.com/double-break/spapi-php/issues/45 (the XML error's code and message).
 */
export const ROOT_CANNOT_ASSUME =
  "these credentials are the account's root user, and AWS does not let the root user assume a role " +
  '("Roles may not be assumed by root accounts."), which acting as the key user needs: run kmslab as an ' +
  "IAM Identity Center (SSO) user (aws configure sso, then kmslab run --profile <profile>) or as an IAM user " +
  "or role with administrator access, not as root";

/** The role's ARN from the parameters (IAM ARNs are predictable). */
export const ROLE_ARN = `"arn:aws:iam::" & $params.account & ":role/" & $params.keyUserRole`;
export const TRAIL_ARN = `"arn:aws:cloudtrail:" & $params.region & ":" & $params.account & ":trail/" & $params.trailName`;
export const OBJECT_ARN = `"arn:aws:s3:::" & $params.dataBucket & "/" & $params.objectKey`;
export const bucketArn = (param: "logBucket" | "dataBucket") => `"arn:aws:s3:::" & $params.${param}`;

/**
 * CreateBucket's arguments, as one expression: in us-east-1 no configuration at all (S3 refuses a
 * `us-east-1` LocationConstraint, aws-subset §2.1), elsewhere the Region. Not a field that gives
 * nothing in us-east-1: Step Functions fails such a field (States.QueryEvaluationError) instead of
 * leaving it out.
 */
export const createBucketArgs = (bucket: string) =>
  x(
    `$merge([{"Bucket": ${bucket}}, $params.region = "us-east-1" ? {} : {"CreateBucketConfiguration": {"LocationConstraint": $params.region}}])`,
  );

/**
 * JSONata: whether the key policy `$policy` (parsed) has an Allow statement naming the key-user role
 * with Decrypt and GenerateDataKey (directly or through `kms:*` / `kms:GenerateDataKey*`).
 */
export const POLICY_NAMES_ROLE = `(
  $role := ${ROLE_ARN};
  $grants := function($acts, $a) { $a in $acts or "kms:*" in $acts or ($a = "kms:GenerateDataKey" and "kms:GenerateDataKey*" in $acts) };
  $count($policy.Statement[Effect = "Allow" and $role in $append([], Principal.AWS)
    and $grants($append([], Action), "kms:Decrypt") and $grants($append([], Action), "kms:GenerateDataKey")]) > 0
)`;

/** JSONata: the policy `$p` with the key-user role taken out of every Allow statement naming it. */
export const POLICY_WITHOUT_ROLE = `(
  $role := ${ROLE_ARN};
  $merge([$p, {"Statement": [$p.Statement.(
    $principals := $append([], Principal.AWS);
    (Effect = "Allow" and $role in $principals)
      ? ($rest := $principals[$ != $role];
         $count($rest) = 0 ? undefined : $merge([$, {"Principal": $merge([Principal, {"AWS": $count($rest) = 1 ? $rest[0] : $rest}])}]))
      : $
  )]}])
)`;

/**
 * JSONata: whether the identity policy document `doc` (parsed JSON) has an Allow statement that
 * could let its holder call `action` on `resource` (each a JSONata expression). Actions match as
 * IAM matches them, case-insensitively with `*` and `?` wildcards (`*`, `kms:*`, `kms:De*`), and
 * NotAction / NotResource allow whatever they do not name; resources match with the same
 * wildcards (over the whole ARN, which matches at least what IAM would). Conditions are not
 * evaluated: a statement that applies under some condition is counted, as it could apply.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
 */
export const policyAllows = (doc: string, action: string, resource: string) => `(
  $glob := function($p, $v) {(
    $c := $substring($p, 0, 1);
    $p = "" ? $v = "" :
    $c = "*" ? ($glob($substring($p, 1), $v) or ($v != "" and $glob($p, $substring($v, 1)))) :
    $v != "" and ($c = "?" or $c = $substring($v, 0, 1)) and $glob($substring($p, 1), $substring($v, 1))
  )};
  $names := function($patterns, $v) {
    $reduce($append([], $patterns), function($found, $p) { $found or $glob($p, $v) }, false)
  };
  $action := $lowercase(${action});
  $resource := ${resource};
  $count($append([], ${doc}.Statement)[
    Effect = "Allow"
    and ($exists(Action) ? $names(Action.$lowercase($), $action) : $exists(NotAction) and $not($names(NotAction.$lowercase($), $action)))
    and ($exists(Resource) ? $names(Resource, $resource) : $exists(NotResource) and $not($names(NotResource, $resource)))
  ]) > 0
)`;

/** JSONata: the body the lab uploads, a function of the parameters alone (so grading can recompute it). */
export const OBJECT_BODY = `"kmslab lab object\\naccount: " & $params.account & "\\nobject: " & $params.objectKey & "\\n"`;
