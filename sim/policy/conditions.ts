/**
 * Condition operators. Each `"Operator": {"key": [values]}` pair is compiled once into a function
 * of the request context.
 *
 * Semantics (IAM User Guide, "Condition operators" and "Set operators for multivalued context keys"):
 * - Several values for one key: OR (the key matches any of them); for a negated operator
 *   (`StringNotEquals`...), the key must match none of them.
 * - Several keys, or several operators: AND (handled by the evaluator).
 * - A key missing from the request context (an empty list counts as missing):
 *     plain positive operator → false; plain negated operator (`StringNotLike`, `ArnNotLike`,
 *     `NotIpAddress`...) → true ("if the policy condition requires that the key is not matched and
 *     the key is not present, the condition is true"); `...IfExists` → true; `Null` tests presence;
 *     `ForAnyValue:` → false; `ForAllValues:` → true (vacuously: every one of no values matches).
 * - A multivalued key without a set prefix is treated like `ForAnyValue:` for positive operators
 *   (some value matches) and as "no value matches" for negated ones.
 * - `ForAnyValue:NotOp`: some request value matches none of the policy values;
 *   `ForAllValues:NotOp`: every request value matches none of them.
 * Condition keys are case-insensitive (keys are looked up lower-cased, which also makes the context
 * key of `kms:EncryptionContext:<key>` case-insensitive); values are case-sensitive unless the
 * operator says otherwise.
 */

import { type OperatorParts, splitOperator } from "./document.js";
import {
  compileGlob,
  type GlobMode,
  parseTemplate,
  resolveGlob,
  resolveLiteral,
  type TemplatePart,
} from "./match.js";

/** The request context as conditions see it. */
export interface ConditionContext {
  /** The values of a lower-case key as strings; undefined when absent or empty. */
  values(lowerKey: string): string[] | undefined;
  /** A single value for policy-variable substitution. */
  variable(lowerKey: string): string | undefined;
}

export type ConditionFn = (ctx: ConditionContext) => boolean;

/** "Does this request value match at least one policy value?" for one base operator. */
type ValueTest = (requestValue: string, ctx: ConditionContext) => boolean;

const NEGATED = new Set([
  "StringNotEquals",
  "StringNotEqualsIgnoreCase",
  "StringNotLike",
  "NumericNotEquals",
  "DateNotEquals",
  "NotIpAddress",
  "ArnNotEquals",
  "ArnNotLike",
]);

/**
 * Compiles one operator/key/values triple. `variables` says whether `${...}` policy variables are
 * substituted (documents with Version 2012-10-17); otherwise they are literal text.
 */
export function compileCondition(
  operator: string,
  key: string,
  values: string[],
  variables: boolean,
): ConditionFn {
  const parts = splitOperator(operator);
  // The parser refuses unknown operators; a hand-built Policy with one never matches.
  if (!parts) return () => false;
  const lowerKey = key.toLowerCase();
  if (parts.base === "Null") {
    const wantsMissing = values.map((v) => v.toLowerCase() === "true");
    return (ctx) => {
      const missing = ctx.values(lowerKey) === undefined;
      return wantsMissing.some((w) => w === missing);
    };
  }
  const negated = NEGATED.has(parts.base);
  const test = valueTest(parts, values, variables);
  return combine(parts, negated, lowerKey, test);
}

function combine(parts: OperatorParts, negated: boolean, lowerKey: string, test: ValueTest): ConditionFn {
  const { set, ifExists } = parts;
  if (set === "ForAllValues")
    // Missing or empty → true; otherwise every request value must match (negated: match none).
    return (ctx) => {
      const got = ctx.values(lowerKey);
      if (got === undefined) return true;
      for (const v of got) if (test(v, ctx) === negated) return false;
      return true;
    };
  if (set === "ForAnyValue")
    return (ctx) => {
      const got = ctx.values(lowerKey);
      if (got === undefined) return ifExists;
      for (const v of got) if (test(v, ctx) !== negated) return true;
      return false;
    };
  return (ctx) => {
    const got = ctx.values(lowerKey);
    if (got === undefined) return ifExists || negated;
    let any = false;
    for (const v of got)
      if (test(v, ctx)) {
        any = true;
        break;
      }
    return any !== negated;
  };
}

function valueTest(parts: OperatorParts, values: string[], variables: boolean): ValueTest {
  switch (parts.base) {
    case "StringEquals":
    case "StringNotEquals":
      return stringTest(values, variables, false);
    case "StringEqualsIgnoreCase":
    case "StringNotEqualsIgnoreCase":
      return stringTest(values, variables, true);
    case "StringLike":
    case "StringNotLike":
      return globTest(values, variables, "plain");
    case "ArnEquals":
    case "ArnNotEquals":
    case "ArnLike":
    case "ArnNotLike":
      // AWS documents both ArnEquals and ArnLike as component-wise matches with wildcards.
      return globTest(values, variables, "arn");
    case "NumericEquals":
    case "NumericNotEquals":
      return numericTest(values, (a, b) => a === b);
    case "NumericLessThan":
      return numericTest(values, (a, b) => a < b);
    case "NumericLessThanEquals":
      return numericTest(values, (a, b) => a <= b);
    case "NumericGreaterThan":
      return numericTest(values, (a, b) => a > b);
    case "NumericGreaterThanEquals":
      return numericTest(values, (a, b) => a >= b);
    case "DateEquals":
    case "DateNotEquals":
      return dateTest(values, (a, b) => a === b);
    case "DateLessThan":
      return dateTest(values, (a, b) => a < b);
    case "DateLessThanEquals":
      return dateTest(values, (a, b) => a <= b);
    case "DateGreaterThan":
      return dateTest(values, (a, b) => a > b);
    case "DateGreaterThanEquals":
      return dateTest(values, (a, b) => a >= b);
    case "Bool": {
      const want = new Set(values.map((v) => v.toLowerCase()));
      return (v) => want.has(v.toLowerCase());
    }
    case "BinaryEquals": {
      const want = values.map((v) => Buffer.from(v, "base64"));
      return (v) => {
        const got = Buffer.from(v, "base64");
        return want.some((w) => w.equals(got));
      };
    }
    case "IpAddress":
    case "NotIpAddress": {
      const ranges = values.map(parseCidr).filter((r): r is Cidr => r !== undefined);
      return (v) => {
        const ip = parseIp(v);
        return ip !== undefined && ranges.some((r) => inRange(ip, r));
      };
    }
    default:
      return () => false;
  }
}

// -------------------------------------------------------------------------------------------------
// Strings and ARNs

function templates(values: string[], variables: boolean): Array<TemplatePart[] | undefined> {
  return values.map((v) => (variables ? parseTemplate(v) : undefined));
}

function stringTest(values: string[], variables: boolean, ignoreCase: boolean): ValueTest {
  const norm = (s: string) => (ignoreCase ? s.toLowerCase() : s);
  const tpl = templates(values, variables);
  const fixed = new Set(values.filter((_, i) => !tpl[i]).map(norm));
  const dynamic = tpl.filter((t): t is TemplatePart[] => t !== undefined);
  if (dynamic.length === 0) return (v) => fixed.has(norm(v));
  return (v, ctx) => {
    const n = norm(v);
    if (fixed.has(n)) return true;
    for (const t of dynamic) {
      const want = resolveLiteral(t, (k) => ctx.variable(k));
      if (want !== undefined && norm(want) === n) return true;
    }
    return false;
  };
}

function globTest(values: string[], variables: boolean, mode: GlobMode): ValueTest {
  const tpl = templates(values, variables);
  const fixed = values.filter((_, i) => !tpl[i]).map((v) => compileGlob(v, mode));
  const dynamic = tpl.filter((t): t is TemplatePart[] => t !== undefined);
  return (v, ctx) => {
    for (const m of fixed) if (m(v)) return true;
    for (const t of dynamic) if (resolveGlob(t, mode, (k) => ctx.variable(k))?.test(v)) return true;
    return false;
  };
}

// -------------------------------------------------------------------------------------------------
// Numbers and dates

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function parseNumber(s: string): number {
  return NUMBER.test(s.trim()) ? Number(s) : Number.NaN;
}

/** Milliseconds since the epoch: ISO 8601 dates, or epoch seconds as AWS accepts them. */
export function parseDate(s: string): number {
  const t = s.trim();
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  return Date.parse(t);
}

function numericTest(values: string[], cmp: (req: number, pol: number) => boolean): ValueTest {
  const want = values.map(parseNumber).filter((n) => !Number.isNaN(n));
  return (v) => {
    const n = parseNumber(v);
    return !Number.isNaN(n) && want.some((w) => cmp(n, w));
  };
}

function dateTest(values: string[], cmp: (req: number, pol: number) => boolean): ValueTest {
  const want = values.map(parseDate).filter((n) => !Number.isNaN(n));
  return (v) => {
    const n = parseDate(v);
    return !Number.isNaN(n) && want.some((w) => cmp(n, w));
  };
}

// -------------------------------------------------------------------------------------------------
// IP addresses (IPv4 and IPv6; an IPv4-mapped IPv6 request address is matched as IPv4)

interface Ip {
  v6: boolean;
  value: bigint;
}
interface Cidr extends Ip {
  bits: number;
}

function parseCidr(s: string): Cidr | undefined {
  const [addr, len] = s.trim().split("/", 2);
  const ip = parseIp(addr ?? "");
  if (!ip) return undefined;
  const max = ip.v6 ? 128 : 32;
  const bits = len === undefined ? max : Number(len);
  if (!Number.isInteger(bits) || bits < 0 || bits > max) return undefined;
  return { ...ip, bits };
}

function inRange(ip: Ip, r: Cidr): boolean {
  if (ip.v6 !== r.v6) return false;
  const width = ip.v6 ? 128n : 32n;
  const shift = width - BigInt(r.bits);
  return ip.value >> shift === r.value >> shift;
}

export function parseIp(s: string): Ip | undefined {
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return { v6: false, value: BigInt(v4) };
  const v6 = parseIpv6(s);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { v6: false, value: v6 & 0xffffffffn };
  return { v6: true, value: v6 };
}

function parseIpv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let out = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    out = out * 256 + octet;
  }
  return out;
}

function parseIpv6(s: string): bigint | undefined {
  if (!s.includes(":")) return undefined;
  let text = s;
  const groups: number[] = [];
  // An embedded IPv4 tail (`::ffff:192.0.2.1`) supplies the last two groups.
  const tail = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  let tailGroups: number[] = [];
  if (tail) {
    const v4 = parseIpv4(tail[1]!);
    if (v4 === undefined) return undefined;
    tailGroups = [v4 >>> 16, v4 & 0xffff];
    text = text.slice(0, -tail[1]!.length);
    if (text.endsWith(":") && !text.endsWith("::")) text = text.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (h: string | undefined): number[] | undefined => {
    if (!h) return [];
    const out: number[] = [];
    for (const g of h.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]);
  const rest = parse(halves[1]);
  if (!head || !rest) return undefined;
  const explicit = head.length + rest.length + tailGroups.length;
  if (halves.length === 2) {
    if (explicit > 7) return undefined;
    groups.push(...head, ...new Array<number>(8 - explicit).fill(0), ...rest, ...tailGroups);
  } else {
    if (explicit !== 8) return undefined;
    groups.push(...head, ...tailGroups);
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return value;
}
