/**
 * Matching of actions, resources and principals against the names a policy writes. Patterns are
 * compiled once (a policy is compiled when first evaluated, and regular expressions are shared
 * through a cache), because KMS authorises every Encrypt/Decrypt call.
 */

import type { Principal } from "../core/types.js";
import type { PrincipalMap } from "./document.js";

/** A compiled pattern. */
export type Matcher = (value: string) => boolean;

/**
 * How `*` and `?` behave: `plain` matches any characters (actions, `StringLike`); `arn` keeps them
 * inside one colon-separated ARN component for the first five components (partition, service,
 * region, account), while in the resource part (which may itself contain `:` and `/`) they match
 * anything — as AWS documents for `ArnLike` and for the Resource element.
 */
export type GlobMode = "plain" | "arn";

const regexCache = new Map<string, RegExp>();
const REGEX_CACHE_MAX = 10_000;

/** The RegExp for a glob (cached). Case-sensitive; callers lower-case both sides when they must not be. */
export function globRegExp(pattern: string, mode: GlobMode): RegExp {
  const key = mode + "\n" + pattern;
  let re = regexCache.get(key);
  if (!re) {
    re = new RegExp("^" + globSource(pattern, mode) + "$", "s");
    if (regexCache.size >= REGEX_CACHE_MAX) regexCache.clear();
    regexCache.set(key, re);
  }
  return re;
}

/** The regular-expression source of a glob (no anchors). */
export function globSource(pattern: string, mode: GlobMode): string {
  return tokenSource(
    [...pattern].map((ch) => ({ ch, literal: false })),
    mode,
  );
}

/** One character of a pattern; `literal` characters (substituted variables, `${*}`) are never wildcards. */
interface GlobToken {
  ch: string;
  literal: boolean;
}

function tokenSource(tokens: GlobToken[], mode: GlobMode): string {
  // A pattern with fewer than six ARN components (e.g. `arn:aws:kms:*`) cannot be matched component
  // by component; it is matched as a plain glob over the whole string.
  let colons = 0;
  if (mode === "arn") for (const t of tokens) if (t.ch === ":") colons++;
  const perComponent = mode === "arn" && colons >= 5;
  let out = "";
  let seen = 0;
  for (const { ch, literal } of tokens) {
    const inHead = perComponent && seen < 5;
    if (!literal && ch === "*") out += inHead ? "[^:]*" : ".*";
    else if (!literal && ch === "?") out += inHead ? "[^:]" : ".";
    else {
      if (ch === ":") seen++;
      out += escapeRegExp(ch);
    }
  }
  return out;
}

/** A matcher for one glob, with fast paths for `*`, literals and `prefix*`. */
export function compileGlob(pattern: string, mode: GlobMode): Matcher {
  if (pattern === "*") return () => true;
  const star = pattern.indexOf("*");
  const hasQ = pattern.includes("?");
  if (star < 0 && !hasQ) return (v) => v === pattern;
  if (!hasQ && star === pattern.length - 1) {
    // `kms:Generate*`, `arn:aws:s3:::bucket/*`, `arn:aws:kms:*`: a single trailing star is either in
    // the resource part or in a pattern matched as a whole, so it matches any suffix.
    const prefix = pattern.slice(0, -1);
    return (v) => v.startsWith(prefix);
  }
  const re = globRegExp(pattern, mode);
  return (v) => re.test(v);
}

/** Action patterns: case-insensitive; the request's action must be passed lower-cased. */
export function compileAction(pattern: string): Matcher {
  return compileGlob(pattern.toLowerCase(), "plain");
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

// -------------------------------------------------------------------------------------------------
// Policy variables

/** A value with `${...}` policy variables, split into literal text, variables and escaped characters. */
export type TemplatePart =
  | { lit: string }
  | { key: string; fallback?: string }
  /** `${*}`, `${?}`, `${$}`: the character itself, never a wildcard. */
  | { char: string };

/**
 * Splits a value into template parts, or returns undefined when it has no variables. Variables
 * are only substituted in `2012-10-17` documents; callers pass older documents' values as literals.
 */
export function parseTemplate(value: string): TemplatePart[] | undefined {
  if (!value.includes("${")) return undefined;
  const parts: TemplatePart[] = [];
  const re = /\$\{([^}]*)\}/g;
  let last = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    if (m.index > last) parts.push({ lit: value.slice(last, m.index) });
    last = m.index + m[0].length;
    const body = m[1]!.trim();
    if (body === "*" || body === "?" || body === "$") {
      parts.push({ char: body });
      continue;
    }
    // `${aws:username, 'default'}`: a fallback for a missing key.
    const withDefault = /^([^,]+?)\s*,\s*'([^']*)'$/.exec(body);
    if (withDefault) parts.push({ key: withDefault[1]!.toLowerCase(), fallback: withDefault[2]! });
    else parts.push({ key: body.toLowerCase() });
  }
  if (last < value.length) parts.push({ lit: value.slice(last) });
  return parts;
}

/** Looks a (lower-case) context key up as a single string, for substitution. */
export type VariableLookup = (lowerKey: string) => string | undefined;

/** The literal string a template resolves to; undefined when a variable has no value (no match). */
export function resolveLiteral(parts: TemplatePart[], lookup: VariableLookup): string | undefined {
  let out = "";
  for (const p of parts) {
    if ("lit" in p) out += p.lit;
    else if ("char" in p) out += p.char;
    else {
      const v = lookup(p.key) ?? p.fallback;
      if (v === undefined) return undefined;
      out += v;
    }
  }
  return out;
}

/**
 * The RegExp a glob template resolves to: literal text keeps its wildcards, substituted values and
 * `${*}`-style escapes are matched literally. Undefined when a variable has no value.
 */
export function resolveGlob(
  parts: TemplatePart[],
  mode: GlobMode,
  lookup: VariableLookup,
): RegExp | undefined {
  const tokens: GlobToken[] = [];
  const push = (text: string, literal: boolean) => {
    for (const ch of text) tokens.push({ ch, literal });
  };
  for (const p of parts) {
    if ("lit" in p) push(p.lit, false);
    else if ("char" in p) push(p.char, true);
    else {
      const v = lookup(p.key) ?? p.fallback;
      if (v === undefined) return undefined;
      push(v, true);
    }
  }
  const source = tokenSource(tokens, mode);
  const key = "tpl\n" + source;
  let re = regexCache.get(key);
  if (!re) {
    re = new RegExp("^" + source + "$", "s");
    if (regexCache.size >= REGEX_CACHE_MAX) regexCache.clear();
    regexCache.set(key, re);
  }
  return re;
}

// -------------------------------------------------------------------------------------------------
// Principals

/**
 * How a principal entry matched: `direct` names the caller (or everyone); `session` names a role
 * session by its own ARN (a direct match that session policies do not limit); `account` names the
 * caller's account, which for a resource policy only delegates the decision to the caller's own
 * IAM policies. The account's root user is named *directly* by its account.
 */
export type PrincipalMatch = "direct" | "session" | "account" | false;
export type PrincipalMatcher = (p: Principal) => PrincipalMatch;

const ACCOUNT_ROOT = /^arn:aws[a-z-]*:iam::(\d{12}):root$/;
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\//;
const USER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:user\//;
const SESSION_ARN = /^arn:aws[a-z-]*:sts::\d{12}:assumed-role\/[^/]+\/.+$/;

const never: PrincipalMatcher = () => false;

/** Compiles one name of a principal element (`type` is AWS, Service, Federated or CanonicalUser). */
export function compilePrincipal(type: string, name: string): PrincipalMatcher {
  if (type === "Service") {
    const service = name.toLowerCase();
    return (p) => (p.type === "AWSService" && p.service?.toLowerCase() === service ? "direct" : false);
  }
  // The simulator has no federated (SAML/OIDC) or canonical-user callers: such entries match nobody.
  if (type !== "AWS") return never;
  if (name === "*") return () => "direct";
  const account = /^\d{12}$/.test(name) ? name : ACCOUNT_ROOT.exec(name)?.[1];
  if (account !== undefined)
    return (p) => {
      if (p.type === "Anonymous" || p.type === "AWSService" || p.accountId !== account) return false;
      return p.type === "Root" ? "direct" : "account";
    };
  // A role ARN covers every session of the role.
  if (ROLE_ARN.test(name)) return (p) => (p.type === "AssumedRole" && p.roleArn === name ? "direct" : false);
  if (USER_ARN.test(name)) return (p) => (p.type === "IAMUser" && p.arn === name ? "direct" : false);
  if (SESSION_ARN.test(name)) return (p) => (p.type === "AssumedRole" && p.arn === name ? "session" : false);
  // Unique ids: what a stored policy shows once the named role or user was deleted. They match the
  // entity that had the id, never a re-created namesake (which gets a new id).
  if (name.startsWith("AROA"))
    return (p) => (p.type === "AssumedRole" && p.roleId === name ? "direct" : false);
  if (name.startsWith("AIDA")) return (p) => (p.type === "IAMUser" && p.userId === name ? "direct" : false);
  return never;
}

/** Compiles a whole principal element: the best match over all its entries. */
export function compilePrincipalMap(map: PrincipalMap): PrincipalMatcher {
  const matchers: PrincipalMatcher[] = [];
  for (const [type, names] of Object.entries(map))
    for (const n of names ?? []) matchers.push(compilePrincipal(type, n));
  if (matchers.length === 1) return matchers[0]!;
  return (p) => {
    let best: PrincipalMatch = false;
    for (const m of matchers) {
      const r = m(p);
      if (r === "session") return r;
      if (r === "direct" || (r && !best)) best = r;
    }
    return best;
  };
}

/**
 * Compiles a NotPrincipal element: true when the caller is *excluded* (the statement does not apply).
 * As AWS documents for `NotPrincipal` with `Deny`, a request is checked against each identity it
 * acts for: a user against its account and itself; a role session against its account, its role
 * and itself, the session being "identified by the role session name" — its session ARN. So a
 * user is excluded only if the element names it and its account (the root ARN or the account id);
 * a role session only if it names the session's ARN, the role's ARN and the account: a role's ARN
 * alone exempts none of its sessions (AWS says a missing role or account "might" deny; the
 * simulator takes the strict reading). Naming the account alone excludes only its root user; `*`
 * excludes everyone; a service principal is excluded by its name.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
 */
export function compileNotPrincipal(map: PrincipalMap): (p: Principal) => boolean {
  const entities: PrincipalMatcher[] = [];
  const accounts: PrincipalMatcher[] = [];
  const roles = new Set<string>();
  let everyone = false;
  for (const [type, names] of Object.entries(map) as Array<[string, string[] | undefined]>)
    for (const n of names ?? []) {
      if (type === "AWS" && n === "*") everyone = true;
      else if (type === "AWS" && (/^\d{12}$/.test(n) || ACCOUNT_ROOT.test(n)))
        accounts.push(compilePrincipal(type, n));
      else {
        if (type === "AWS" && ROLE_ARN.test(n)) roles.add(n);
        entities.push(compilePrincipal(type, n));
      }
    }
  const named = (list: PrincipalMatcher[], p: Principal) => list.some((m) => m(p) !== false);
  return (p) => {
    if (everyone) return true;
    if (p.type === "Root") return named(accounts, p);
    if (p.type === "AWSService" || p.type === "Anonymous") return named(entities, p);
    if (p.type === "AssumedRole")
      return (
        entities.some((m) => m(p) === "session") &&
        p.roleArn !== undefined &&
        roles.has(p.roleArn) &&
        named(accounts, p)
      );
    return named(entities, p) && named(accounts, p);
  };
}
