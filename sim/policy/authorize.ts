/**
 * The authorisation decision for one request: the caller's identity policies together with the
 * resource's policy (key policy, bucket policy, role trust policy), following AWS's evaluation
 * logic for the two cases the simulator needs.
 */

import { type Policy, parsePolicy } from "./document.js";
import { EvalContext, type EvalRequest, scanPolicy } from "./evaluate.js";

export interface AuthzInput {
  req: EvalRequest;
  /** The caller's IAM policies (the user's, or the session's role's), inline and attached. */
  identityPolicies: Policy[];
  /** Key policy, bucket policy or role trust policy. */
  resourcePolicy?: Policy;
  resourceAccountId: string;
  mode: "default" | "kms";
}

/** The kinds of policy AWS's denial messages name. */
export type PolicyType = "identity" | "resource" | "session";

export interface AuthzResult {
  allowed: boolean;
  explicitDeny?: PolicyType;
  /** When implicitly denied: which kind of policy lacked an Allow (AWS's denial message names it). */
  missing?: PolicyType;
}

const POLICY_TYPE_NAMES: Record<PolicyType, string> = {
  identity: "an identity-based policy",
  resource: "a resource-based policy",
  session: "a session policy",
};

/**
 * The end of AWS's denial message, after "User: <arn> is not authorized to perform: <action> on
 * resource: <resource>": which kind of policy denied, or lacked an Allow. The identity- and
 * resource-based wordings are AWS's (aws-subset §1.5, §2.3); "a session policy" follows the same
 * pattern for the policy type AWS's troubleshooting guide lists, its exact words unconfirmed.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html
 */
export function denialReason(result: Pick<AuthzResult, "explicitDeny" | "missing">, action: string): string {
  if (result.explicitDeny) return `with an explicit deny in ${POLICY_TYPE_NAMES[result.explicitDeny]}`;
  const kind = POLICY_TYPE_NAMES[result.missing ?? "identity"].replace(/^an? /, "");
  return `because no ${kind} allows the ${action} action`;
}

/**
 * Decides a request.
 *
 * An explicit Deny in any policy wins. A resource-policy Allow naming the caller's *account* (its
 * root ARN or bare id) matches every principal of that account but only delegates to IAM: it
 * grants only what the caller's identity policies also allow. An Allow naming the caller itself
 * (user, role — covering its sessions —, session, unique id, `*`, service principal) grants by
 * itself, within the resource's account.
 *
 * - `default` (IAM, S3, STS trust within an account): allowed if the identity policies allow or the
 *   resource policy allows; a caller from another account needs both. The account's root user has
 *   an implicit identity Allow. Anonymous callers and AWS services have no identity policies: only
 *   a resource policy naming them (or `*`) lets them in.
 * - `kms` (key policies, aws-subset §1.5): the key policy is required and nobody has implicit access,
 *   root included (a statement naming the account root names the root user directly). Allowed iff
 *   the key policy allows the caller directly, or allows the caller's account and the caller's IAM
 *   policies allow; a caller from another account always needs its IAM policies too.
 */
export function authorize(input: AuthzInput): AuthzResult {
  const { req, identityPolicies, resourcePolicy, resourceAccountId, mode } = input;
  const ctx = new EvalContext(req);
  const p = req.principal;

  let identityAllows = false;
  for (const policy of identityPolicies) {
    const scan = scanPolicy(policy, ctx);
    if (scan.deny) return { allowed: false, explicitDeny: "identity" };
    if (scan.direct || scan.account) identityAllows = true;
  }
  // A role session's session policies: an explicit Deny in one denies, and without an Allow in one
  // nothing but a resource policy naming the session itself grants the session anything.
  let sessionAllows = true;
  if (p.sessionPolicies) {
    sessionAllows = false;
    for (const text of p.sessionPolicies) {
      const scan = scanPolicy(parsePolicy(text, "identity"), ctx);
      if (scan.deny) return { allowed: false, explicitDeny: "session" };
      if (scan.direct || scan.account) sessionAllows = true;
    }
  }
  let direct = false;
  let namesSession = false;
  let viaAccount = false;
  if (resourcePolicy) {
    const scan = scanPolicy(resourcePolicy, ctx);
    if (scan.deny) return { allowed: false, explicitDeny: "resource" };
    direct = scan.direct !== undefined;
    namesSession = scan.session !== undefined;
    viaAccount = scan.account !== undefined;
  }

  const hasIdentity = p.type !== "Anonymous" && p.type !== "AWSService";
  if (!hasIdentity) return direct ? { allowed: true } : { allowed: false, missing: "resource" };
  if (mode === "default" && p.type === "Root") identityAllows = true;

  const crossAccount = p.accountId !== resourceAccountId;
  let result: AuthzResult;
  if (crossAccount) {
    if (!direct && !viaAccount) return { allowed: false, missing: "resource" };
    result = identityAllows ? { allowed: true } : { allowed: false, missing: "identity" };
  } else if (mode === "default")
    result = identityAllows || direct ? { allowed: true } : { allowed: false, missing: "identity" };
  else if (direct || (viaAccount && identityAllows)) result = { allowed: true };
  else result = { allowed: false, missing: viaAccount ? "identity" : "resource" };
  if (sessionAllows) return result;
  // Session policies limit what the role's identity policies and a resource policy naming the role
  // (or the account, or everyone) grant; a resource policy naming the session's own ARN is added
  // after the session was made, unlimited by them (within the account).
  // https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session
  if (namesSession && !crossAccount) return { allowed: true };
  return result.allowed ? { allowed: false, missing: "session" } : result;
}

/**
 * Services with no resource policy on the call (IAM, CloudTrail's own API, Step Functions): the
 * caller's identity policies alone decide, within the account. Returns AWS's denial message, or
 * undefined when allowed; the service throws it with its own error code and status.
 */
export function identityDenial(
  req: EvalRequest,
  identityPolicies: Policy[],
  accountId: string,
): string | undefined {
  const result = authorize({ req, identityPolicies, resourceAccountId: accountId, mode: "default" });
  if (result.allowed) return undefined;
  return `User: ${req.principal.arn} is not authorized to perform: ${req.action} on resource: ${req.resource} ${denialReason(result, req.action)}`;
}
