import { jsonNestsDeeper } from "../core/nesting.js";

/**
 * Policy documents: parsing and validation. A document is checked the way IAM, KMS and S3 check it
 * when it is stored, with AWS's wording where it is known, and normalised (every string-or-array
 * element becomes an array, `"Principal":"*"` becomes `{"AWS":["*"]}`) so that the evaluator has
 * a single shape to compile.
 */

/** What the document is attached to: the rules differ (an identity policy names no principal...). */
export type PolicyKind = "identity" | "resource" | "trust";

/** The principal element, normalised: each type maps to its list of names. */
export interface PrincipalMap {
  AWS?: string[];
  Service?: string[];
  Federated?: string[];
  CanonicalUser?: string[];
}

/** condition operator (as written, e.g. `ForAnyValue:StringLike`) → condition key → values. */
export type ConditionBlock = Record<string, Record<string, string[]>>;

export interface Statement {
  sid?: string;
  effect: "Allow" | "Deny";
  action?: string[];
  notAction?: string[];
  resource?: string[];
  notResource?: string[];
  principal?: PrincipalMap;
  notPrincipal?: PrincipalMap;
  condition?: ConditionBlock;
}

export interface Policy {
  version?: string;
  id?: string;
  statements: Statement[];
  /** The document exactly as it was given (what Get*Policy returns). */
  text: string;
}

/** A document AWS would refuse; `message` is AWS's reason (`MalformedPolicyDocument` and kin). */
export class PolicyError extends Error {
  override readonly name = "PolicyError";
}

export const VERSIONS: readonly string[] = ["2012-10-17", "2008-10-17"];

const SYNTAX = "Syntax errors in policy.";
const TOP_FIELDS = new Set(["Version", "Id", "Statement"]);
const STATEMENT_FIELDS = new Set([
  "Sid",
  "Effect",
  "Principal",
  "NotPrincipal",
  "Action",
  "NotAction",
  "Resource",
  "NotResource",
  "Condition",
]);
const PRINCIPAL_TYPES = new Set(["AWS", "Service", "Federated", "CanonicalUser"]);

/** Every condition operator AWS knows, by lower-case name (operators are matched case-insensitively). */
export const OPERATORS: ReadonlyMap<string, string> = new Map(
  [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
  ].map((op) => [op.toLowerCase(), op]),
);

/** An operator as written, split into its set prefix, base operator and IfExists suffix. */
export interface OperatorParts {
  set?: "ForAnyValue" | "ForAllValues";
  base: string;
  ifExists: boolean;
}

export function splitOperator(written: string): OperatorParts | undefined {
  let rest = written;
  let set: OperatorParts["set"];
  const lower = rest.toLowerCase();
  if (lower.startsWith("foranyvalue:")) {
    set = "ForAnyValue";
    rest = rest.slice(12);
  } else if (lower.startsWith("forallvalues:")) {
    set = "ForAllValues";
    rest = rest.slice(13);
  }
  let ifExists = false;
  if (rest.toLowerCase().endsWith("ifexists")) {
    ifExists = true;
    rest = rest.slice(0, -8);
  }
  const base = OPERATORS.get(rest.toLowerCase());
  if (!base) return undefined;
  // `NullIfExists` means nothing: Null already is the existence test.
  if (base === "Null" && ifExists) return undefined;
  return set ? { set, base, ifExists } : { base, ifExists };
}

// Principal names accepted in `{"AWS": ...}`: everyone, an account id, an IAM/STS ARN, or the unique
// id a deleted principal degrades to (AIDA user, AROA role...).
const AWS_PRINCIPAL = /^(\*|\d{12}|arn:aws[a-z-]*:(iam|sts)::(\d{12}|aws):.+|A[A-Z0-9]{3}[A-Z0-9]{8,})$/;
const ALNUM = /^[0-9A-Za-z]*$/;

/**
 * Parses and validates a policy document. Throws PolicyError with the first problem AWS would
 * report. Parsed documents are cached by text and kind (they are frozen: treat them as read-only),
 * so callers may parse a stored document on every request.
 */
export function parsePolicy(text: string, kind: PolicyKind): Policy {
  // Keyed by kind, then by the text itself (not a concatenation: a stored document is the same string
  // object on every request, whose hash V8 keeps).
  const cache = parsed[kind];
  const hit = cache.get(text);
  if (hit) return hit;
  const problems: string[] = [];
  const policy = parseInto(text, kind, problems);
  if (problems.length > 0 || !policy) throw new PolicyError(problems[0] ?? SYNTAX);
  if (cache.size >= PARSE_CACHE_MAX) cache.clear();
  cache.set(text, policy);
  return policy;
}

/** Every problem AWS would report for the document (empty when it is valid), without throwing. */
export function policyProblems(text: string, kind: PolicyKind): string[] {
  const problems: string[] = [];
  parseInto(text, kind, problems);
  return problems;
}

/**
 * Every AWS principal a policy names (in Principal or NotPrincipal), as written: ARNs, account ids,
 * unique ids and `*`. Service, federated and canonical-user principals are not included.
 */
export function policyPrincipals(policy: Policy): string[] {
  const out = new Set<string>();
  for (const s of policy.statements) {
    for (const p of s.principal?.AWS ?? []) out.add(p);
    for (const p of s.notPrincipal?.AWS ?? []) out.add(p);
  }
  return [...out];
}

const PARSE_CACHE_MAX = 2000;
const parsed: Record<PolicyKind, Map<string, Policy>> = {
  identity: new Map(),
  resource: new Map(),
  trust: new Map(),
};

function parseInto(text: string, kind: PolicyKind, problems: string[]): Policy | undefined {
  // A document's grammar nests a few levels (Statement, Condition, operator, key, values): one
  // nested deeper is a syntax error, found before the parse builds it (sim/core/nesting.ts).
  if (jsonNestsDeeper(text)) {
    problems.push(SYNTAX);
    return undefined;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    problems.push("This policy contains invalid Json");
    return undefined;
  }
  if (!isObject(doc)) {
    problems.push(SYNTAX);
    return undefined;
  }
  for (const field of Object.keys(doc)) if (!TOP_FIELDS.has(field)) problems.push(SYNTAX);
  const version = doc.Version;
  if (version !== undefined && (typeof version !== "string" || !VERSIONS.includes(version)))
    problems.push(SYNTAX);
  const id = doc.Id;
  if (id !== undefined && typeof id !== "string") problems.push(SYNTAX);

  const raw = doc.Statement;
  if (raw === undefined) {
    problems.push("Missing required field Statement");
    return undefined;
  }
  const list = Array.isArray(raw) ? raw : [raw];
  const statements: Statement[] = [];
  const sids = new Set<string>();
  for (const item of list) {
    const s = parseStatement(item, kind, problems);
    if (!s) continue;
    if (s.sid !== undefined && s.sid !== "") {
      if (sids.has(s.sid)) problems.push("Statement IDs (SID) in a single policy must be unique.");
      sids.add(s.sid);
    }
    statements.push(s);
  }
  const policy: Policy = Object.freeze({
    ...(typeof version === "string" ? { version } : {}),
    ...(typeof id === "string" ? { id } : {}),
    statements: Object.freeze(statements) as Statement[],
    text,
  });
  kinds.set(policy, kind);
  return policy;
}

const kinds = new WeakMap<Policy, PolicyKind>();

/** The kind a policy was parsed as; undefined for a Policy built by hand. */
export function policyKind(policy: Policy): PolicyKind | undefined {
  return kinds.get(policy);
}

function parseStatement(raw: unknown, kind: PolicyKind, problems: string[]): Statement | undefined {
  if (!isObject(raw)) {
    problems.push(SYNTAX);
    return undefined;
  }
  for (const field of Object.keys(raw)) if (!STATEMENT_FIELDS.has(field)) problems.push(SYNTAX);

  const out: Statement = { effect: "Allow" };
  if (raw.Sid !== undefined) {
    if (typeof raw.Sid !== "string") problems.push(SYNTAX);
    else {
      // IAM restricts Sids of identity policies; key and bucket policies accept spaces
      // ("Enable IAM User Permissions").
      if (kind === "identity" && !ALNUM.test(raw.Sid))
        problems.push(
          "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
        );
      out.sid = raw.Sid;
    }
  }

  if (raw.Effect === undefined) problems.push("Missing required field Effect");
  else if (raw.Effect === "Allow" || raw.Effect === "Deny") out.effect = raw.Effect;
  else
    problems.push(
      `Invalid effect: ${typeof raw.Effect === "string" ? raw.Effect : JSON.stringify(raw.Effect)}`,
    );

  // Action / NotAction
  if (raw.Action !== undefined && raw.NotAction !== undefined) problems.push(SYNTAX);
  for (const field of ["Action", "NotAction"] as const) {
    if (raw[field] === undefined) continue;
    const values = stringList(raw[field], problems);
    for (const a of values)
      if (a !== "*" && !/^[^:]+:.*$/.test(a))
        problems.push("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.");
    if (field === "Action") out.action = values;
    else out.notAction = values;
  }
  if (kind === "identity" && raw.Action === undefined && raw.NotAction === undefined)
    problems.push("Policy statement must contain actions.");
  if (kind === "trust")
    for (const a of out.action ?? [])
      if (!a.toLowerCase().startsWith("sts:")) {
        problems.push("AssumeRole policy may only specify STS AssumeRole actions.");
        break;
      }

  // Resource / NotResource
  if (raw.Resource !== undefined && raw.NotResource !== undefined) problems.push(SYNTAX);
  for (const field of ["Resource", "NotResource"] as const) {
    if (raw[field] === undefined) continue;
    // A trust policy's resource is the role itself; IAM refuses one that names any.
    if (kind === "trust") problems.push(`Has prohibited field ${field}`);
    const values = stringList(raw[field], problems);
    for (const r of values)
      if (r !== "*" && !r.startsWith("arn:")) problems.push(`Resource ${r} must be in ARN format or "*".`);
    if (field === "Resource") out.resource = values;
    else out.notResource = values;
  }
  if (kind === "identity" && raw.Resource === undefined && raw.NotResource === undefined)
    problems.push("Policy statement must contain resources.");

  // Principal / NotPrincipal
  const hasPrincipal = raw.Principal !== undefined || raw.NotPrincipal !== undefined;
  if (kind === "identity") {
    if (hasPrincipal) problems.push("Policy document should not specify a principal.");
  } else {
    if (!hasPrincipal) problems.push("Missing required field Principal");
    if (raw.Principal !== undefined && raw.NotPrincipal !== undefined) problems.push(SYNTAX);
    if (raw.Principal !== undefined) out.principal = principalMap(raw.Principal, problems);
    if (raw.NotPrincipal !== undefined) out.notPrincipal = principalMap(raw.NotPrincipal, problems);
  }

  if (raw.Condition !== undefined) out.condition = conditionBlock(raw.Condition, problems);
  return out;
}

function principalMap(raw: unknown, problems: string[]): PrincipalMap {
  // `"Principal": "*"` and `"Principal": {"AWS": "*"}` are equivalent (everyone, anonymous included).
  if (raw === "*") return { AWS: ["*"] };
  if (!isObject(raw)) {
    problems.push(typeof raw === "string" ? `Invalid principal in policy: "${raw}"` : SYNTAX);
    return {};
  }
  const out: PrincipalMap = {};
  for (const [type, value] of Object.entries(raw)) {
    if (!PRINCIPAL_TYPES.has(type)) {
      problems.push(SYNTAX);
      continue;
    }
    const names = stringList(value, problems);
    for (const name of names) {
      const bad = type === "AWS" ? !AWS_PRINCIPAL.test(name) : name === "";
      if (bad) problems.push(`Invalid principal in policy: "${type}":"${name}"`);
    }
    out[type as keyof PrincipalMap] = names;
  }
  return out;
}

function conditionBlock(raw: unknown, problems: string[]): ConditionBlock {
  const out: ConditionBlock = {};
  if (!isObject(raw)) {
    problems.push(SYNTAX);
    return out;
  }
  for (const [op, keys] of Object.entries(raw)) {
    if (!splitOperator(op)) {
      problems.push(`Invalid Condition type : ${op}`);
      continue;
    }
    if (!isObject(keys)) {
      problems.push(SYNTAX);
      continue;
    }
    const block: Record<string, string[]> = {};
    for (const [key, value] of Object.entries(keys)) {
      if (!key.includes(":"))
        problems.push("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.");
      const values = Array.isArray(value) ? value : [value];
      const strings: string[] = [];
      for (const v of values) {
        // JSON numbers and booleans are written unquoted in conditions (`"kms:GrantIsForAWSResource": true`).
        if (typeof v === "string") strings.push(v);
        else if (typeof v === "number" || typeof v === "boolean") strings.push(String(v));
        else problems.push(SYNTAX);
      }
      block[key] = strings;
    }
    out[op] = block;
  }
  return out;
}

function stringList(raw: unknown, problems: string[]): string[] {
  const values = Array.isArray(raw) ? raw : [raw];
  const out: string[] = [];
  for (const v of values) {
    if (typeof v === "string") out.push(v);
    else problems.push(SYNTAX);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
