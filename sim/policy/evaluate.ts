/**
 * Evaluation of one policy against one request. A policy is compiled on first use (kept in a
 * WeakMap keyed by the Policy object, which parsePolicy caches by text), so evaluating a key policy
 * of a few statements costs a few string comparisons.
 */

import type { ContextKeys, ContextValue, Principal } from "../core/types.js";
import { type ConditionContext, type ConditionFn, compileCondition } from "./conditions.js";
import { type Policy, policyKind, type Statement } from "./document.js";
import {
  compileAction,
  compileGlob,
  compileNotPrincipal,
  compilePrincipalMap,
  type Matcher,
  type PrincipalMatch,
  type PrincipalMatcher,
  parseTemplate,
  resolveGlob,
} from "./match.js";

export interface EvalRequest {
  principal: Principal;
  action: string;
  resource: string;
  /** The request's context keys, or a function that makes them: most decisions never read them. */
  context?: ContextKeys | (() => ContextKeys);
}

export interface EvalResult {
  effect: "Allow" | "Deny" | "None";
  /** The Sid of the statement that decided (the first matching Deny, else the first matching Allow). */
  sid?: string;
  /**
   * Set on an Allow that only names the caller's account (`arn:aws:iam::<acct>:root` or the bare
   * account id) rather than the caller: in a resource policy such an Allow only delegates to the
   * caller's IAM policies (see authorize()).
   */
  delegated?: boolean;
}

/**
 * The request as policies see it: the lower-cased action and the context keys (the caller's, plus
 * those the evaluator derives from the principal), built lazily because most statements are
 * decided by action and principal alone.
 */
export class EvalContext implements ConditionContext {
  readonly action: string;
  private keys?: Map<string, string[]>;

  constructor(readonly req: EvalRequest) {
    this.action = req.action.toLowerCase();
  }

  values(lowerKey: string): string[] | undefined {
    this.keys ??= buildKeys(this.req);
    return this.keys.get(lowerKey);
  }

  variable(lowerKey: string): string | undefined {
    const v = this.values(lowerKey);
    // A multivalued key cannot be substituted into a single string.
    return v?.length === 1 ? v[0] : undefined;
  }
}

/**
 * The principal's global condition keys, set by the evaluator itself (they override anything the
 * caller passes under the same names). For role sessions `aws:PrincipalArn` is the *role's* ARN,
 * as AWS sets it, while `aws:userid` is `AROA...:<session>`.
 */
export function principalKeys(p: Principal): ContextKeys {
  // One literal per case, not `{ ...common, more }`: see onBehalf in core/service.ts.
  const service = p.type === "AWSService";
  switch (p.type) {
    case "Root":
      return {
        "aws:PrincipalIsAWSService": service,
        "aws:PrincipalArn": p.arn,
        "aws:PrincipalAccount": p.accountId,
        "aws:PrincipalType": "Account",
        "aws:userid": p.userId,
      };
    case "IAMUser":
      return {
        "aws:PrincipalIsAWSService": service,
        "aws:PrincipalArn": p.arn,
        "aws:PrincipalAccount": p.accountId,
        "aws:PrincipalType": "User",
        "aws:userid": p.userId,
        "aws:username": p.userName ?? p.arn.slice(p.arn.lastIndexOf("/") + 1),
      };
    case "AssumedRole":
      return {
        "aws:PrincipalIsAWSService": service,
        "aws:PrincipalArn": p.roleArn ?? p.arn,
        "aws:PrincipalAccount": p.accountId,
        "aws:PrincipalType": "AssumedRole",
        "aws:userid": p.userId,
      };
    case "AWSService":
      return { "aws:PrincipalIsAWSService": service, "aws:PrincipalServiceName": p.service };
    case "Anonymous":
      return {
        "aws:PrincipalIsAWSService": service,
        "aws:PrincipalType": "Anonymous",
        "aws:userid": "anonymous",
      };
  }
}

function buildKeys(req: EvalRequest): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (ctx: ContextKeys) => {
    for (const key in ctx) {
      const v = asStrings(ctx[key]);
      if (v) out.set(key.toLowerCase(), v);
      else out.delete(key.toLowerCase());
    }
  };
  if (req.context) add(typeof req.context === "function" ? req.context() : req.context);
  add(principalKeys(req.principal));
  return out;
}

function asStrings(v: ContextValue): string[] | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.length > 0 ? v : undefined;
  return [String(v)];
}

// -------------------------------------------------------------------------------------------------
// Compilation

type ResourceMatcher = (resource: string, ctx: EvalContext) => boolean;

interface CompiledStatement {
  sid?: string;
  deny: boolean;
  /** Statements that can never apply (see compileStatement). */
  inert: boolean;
  action?: Matcher[];
  notAction?: Matcher[];
  /** Neither resource nor notResource: a trust policy, whose resource is the role itself. */
  resource?: ResourceMatcher[];
  notResource?: ResourceMatcher[];
  principal?: PrincipalMatcher;
  /** True when the caller is excluded by NotPrincipal. */
  notPrincipal?: (p: Principal) => boolean;
  conditions: ConditionFn[];
}

const compiled = new WeakMap<Policy, CompiledStatement[]>();

function compiledStatements(policy: Policy): CompiledStatement[] {
  let out = compiled.get(policy);
  if (!out) {
    // Policy variables exist only from Version 2012-10-17; in older documents `${...}` is literal text.
    const variables = policy.version === "2012-10-17";
    const trust = policyKind(policy) === "trust";
    out = policy.statements.map((s) => compileStatement(s, variables, trust));
    compiled.set(policy, out);
  }
  return out;
}

function compileStatement(s: Statement, variables: boolean, trust: boolean): CompiledStatement {
  // A statement without Action, or without Resource outside a trust policy (whose resource is the
  // role itself), is accepted by KMS and S3 but has no effect.
  const noAction = s.action === undefined && s.notAction === undefined;
  const noResource = s.resource === undefined && s.notResource === undefined;
  const out: CompiledStatement = {
    deny: s.effect === "Deny",
    inert: noAction || (noResource && !trust),
    conditions: [],
  };
  if (s.sid !== undefined) out.sid = s.sid;
  if (s.action) out.action = s.action.map(compileAction);
  if (s.notAction) out.notAction = s.notAction.map(compileAction);
  if (s.resource) out.resource = s.resource.map((r) => compileResource(r, variables));
  if (s.notResource) out.notResource = s.notResource.map((r) => compileResource(r, variables));
  if (s.principal) out.principal = compilePrincipalMap(s.principal);
  if (s.notPrincipal) out.notPrincipal = compileNotPrincipal(s.notPrincipal);
  for (const [op, keys] of Object.entries(s.condition ?? {}))
    for (const [key, values] of Object.entries(keys))
      out.conditions.push(compileCondition(op, key, values, variables));
  return out;
}

function compileResource(pattern: string, variables: boolean): ResourceMatcher {
  const tpl = variables ? parseTemplate(pattern) : undefined;
  if (tpl)
    // `arn:aws:s3:::home/${aws:username}/*`: resolved per request; no value → no match.
    return (r, ctx) => resolveGlob(tpl, "arn", (k) => ctx.variable(k))?.test(r) ?? false;
  const m = compileGlob(pattern, "arn");
  return (r) => m(r);
}

// -------------------------------------------------------------------------------------------------
// Evaluation

function anyAction(list: Matcher[], action: string): boolean {
  for (const m of list) if (m(action)) return true;
  return false;
}

function anyResource(list: ResourceMatcher[], resource: string, ctx: EvalContext): boolean {
  for (const m of list) if (m(resource, ctx)) return true;
  return false;
}

/** Whether a statement applies to the request, and how its principal element named the caller. */
function applies(s: CompiledStatement, ctx: EvalContext): PrincipalMatch {
  if (s.inert) return false;
  if (s.action ? !anyAction(s.action, ctx.action) : s.notAction && anyAction(s.notAction, ctx.action))
    return false;
  const resource = ctx.req.resource;
  if (s.resource) {
    if (!anyResource(s.resource, resource, ctx)) return false;
  } else if (s.notResource && anyResource(s.notResource, resource, ctx)) return false;
  let who: PrincipalMatch = "direct";
  if (s.principal) who = s.principal(ctx.req.principal);
  // NotPrincipal: everyone except the principals it names (see compileNotPrincipal).
  else if (s.notPrincipal) who = s.notPrincipal(ctx.req.principal) ? false : "direct";
  if (!who) return false;
  for (const c of s.conditions) if (!c(ctx)) return false;
  return who;
}

/**
 * The raw outcome of one policy: the first matching Deny, the first direct / delegated Allow, and
 * the first Allow that names the caller's role session by its own ARN (`session`, also `direct`).
 */
export interface Scan {
  deny?: CompiledStatement;
  direct?: CompiledStatement;
  session?: CompiledStatement;
  account?: CompiledStatement;
}

export function scanPolicy(policy: Policy, ctx: EvalContext): Scan {
  const out: Scan = {};
  // Only a session with session policies tells an Allow naming its session ARN from one naming its role.
  const bySession = ctx.req.principal.sessionPolicies !== undefined;
  for (const s of compiledStatements(policy)) {
    if (s.deny) {
      if (applies(s, ctx)) {
        out.deny = s;
        return out;
      }
      continue;
    }
    // A direct Allow is already known (naming the session, if that matters): only a Deny can change the outcome.
    if (out.direct && (out.session || !bySession)) continue;
    const who = applies(s, ctx);
    if (who === "session") {
      out.session = s;
      out.direct ??= s;
    } else if (who === "direct") out.direct ??= s;
    else if (who === "account") out.account ??= s;
  }
  return out;
}

/**
 * Evaluates one policy on its own: Deny if a matching statement denies, Allow if one allows (see
 * `delegated` for an Allow that only names the caller's account), None otherwise. Statements
 * without a Principal (identity policies) apply to whoever the policy is attached to.
 */
export function evaluatePolicy(policy: Policy, req: EvalRequest): EvalResult {
  const scan = scanPolicy(policy, new EvalContext(req));
  const decided = scan.deny ?? scan.direct ?? scan.account;
  if (!decided) return { effect: "None" };
  const effect = scan.deny ? "Deny" : "Allow";
  return {
    effect,
    ...(decided.sid !== undefined ? { sid: decided.sid } : {}),
    ...(effect === "Allow" && !scan.direct ? { delegated: true } : {}),
  };
}
