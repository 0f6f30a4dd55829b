import { ServiceError, type Violation, validationMessage } from "./errors.js";

/**
 * Input validation with AWS's wording. Each operation declares the shape of its input; `validate`
 * checks it and throws one ServiceError listing every violation, as AWS's validation layer does
 * ("2 validation errors detected: ...; ...").
 *
 * Member names in messages are the lowerCamel form AWS prints (`Plaintext` -> `plaintext`).
 */
export type Field =
  | {
      kind: "string";
      required?: boolean;
      min?: number;
      max?: number;
      pattern?: RegExp;
      enum?: readonly string[];
    }
  | { kind: "blob"; required?: boolean; min?: number; max?: number }
  | { kind: "integer"; required?: boolean; min?: number; max?: number }
  | { kind: "boolean"; required?: boolean }
  | { kind: "timestamp"; required?: boolean }
  | { kind: "list"; required?: boolean; min?: number; max?: number; item?: Field }
  | { kind: "map"; required?: boolean; max?: number; value?: Field }
  | { kind: "structure"; required?: boolean; shape: Shape };

export type Shape = Record<string, Field>;

export const str = (o: Omit<Extract<Field, { kind: "string" }>, "kind"> = {}): Field => ({
  kind: "string",
  ...o,
});
export const blob = (o: Omit<Extract<Field, { kind: "blob" }>, "kind"> = {}): Field => ({
  kind: "blob",
  ...o,
});
export const int = (o: Omit<Extract<Field, { kind: "integer" }>, "kind"> = {}): Field => ({
  kind: "integer",
  ...o,
});
export const bool = (o: { required?: boolean } = {}): Field => ({ kind: "boolean", ...o });
export const timestamp = (o: { required?: boolean } = {}): Field => ({ kind: "timestamp", ...o });
export const list = (item: Field, o: { required?: boolean; min?: number; max?: number } = {}): Field => ({
  kind: "list",
  item,
  ...o,
});
export const map = (value: Field, o: { required?: boolean; max?: number } = {}): Field => ({
  kind: "map",
  value,
  ...o,
});
export const struct = (shape: Shape, o: { required?: boolean } = {}): Field => ({
  kind: "structure",
  shape,
  ...o,
});

/**
 * AWS's model patterns constrain the whole value (`[\w+=,.@-]+` rejects "bad name!"), while a
 * JavaScript RegExp matches anywhere: anchor each pattern once, keep its source for the message.
 */
const anchored = new WeakMap<RegExp, RegExp>();
function wholeMatch(pattern: RegExp): RegExp {
  let whole = anchored.get(pattern);
  if (!whole) {
    whole = new RegExp(`^(?:${pattern.source})$`, pattern.flags.replace(/[gy]/g, ""));
    anchored.set(pattern, whole);
  }
  return whole;
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** A member's name as messages print it, worked out once per name. */
const memberNames = new Map<string, string>();
function memberName(name: string): string {
  let lower = memberNames.get(name);
  if (lower === undefined) {
    lower = lowerFirst(name);
    memberNames.set(name, lower);
  }
  return lower;
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return "java.nio.HeapByteBuffer[pos=0 lim=" + value.length + "]";
  if (typeof value === "string") return value.length > 256 ? value.slice(0, 256) + "..." : value;
  if (typeof value === "object") {
    try {
      return JSON.stringify(value).slice(0, 256);
    } catch {
      return "[structure]"; // too deep to print; the violation is still reported
    }
  }
  return String(value);
}

/**
 * Wire values arrive as the protocol carries them: blobs as base64 strings (JSON), numbers and
 * booleans as strings (query), timestamps as epoch seconds (JSON) or ISO-8601 (query). Coerce them
 * to their model type first; a value that cannot be read stays as it was and fails its check.
 */
function coerce(field: Field, value: unknown): unknown {
  switch (field.kind) {
    case "blob":
      if (typeof value === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(value) && value.length % 4 === 0)
        return Buffer.from(value, "base64");
      return value;
    case "integer":
      if (typeof value === "string" && /^-?\d+$/.test(value)) return Number(value);
      return value;
    case "boolean":
      if (value === "true") return true;
      if (value === "false") return false;
      return value;
    case "timestamp":
      if (typeof value === "number") return new Date(value * 1000);
      if (typeof value === "string")
        return new Date(/^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : value);
      return value;
    default:
      return value;
  }
}

function check(field: Field, raw: unknown, path: string, out: Violation[]): unknown {
  const value = coerce(field, raw);
  if (value === undefined || value === null) {
    if (field.required) out.push({ member: path, value: null, constraint: "Member must not be null" });
    return value;
  }
  const bad = (constraint: string) => {
    out.push({ member: path, value: describe(value), constraint });
    return value;
  };
  switch (field.kind) {
    case "string": {
      if (typeof value !== "string") return bad("Member must be a string");
      if (field.min !== undefined && value.length < field.min)
        bad(`Member must have length greater than or equal to ${field.min}`);
      if (field.max !== undefined && value.length > field.max)
        bad(`Member must have length less than or equal to ${field.max}`);
      if (field.pattern && !wholeMatch(field.pattern).test(value))
        bad(`Member must satisfy regular expression pattern: ${field.pattern.source}`);
      if (field.enum && !field.enum.includes(value))
        bad(`Member must satisfy enum value set: [${field.enum.join(", ")}]`);
      return value;
    }
    case "blob": {
      if (!(value instanceof Uint8Array)) return bad("Member must be a blob");
      if (field.min !== undefined && value.length < field.min)
        bad(`Member must have length greater than or equal to ${field.min}`);
      if (field.max !== undefined && value.length > field.max)
        bad(`Member must have length less than or equal to ${field.max}`);
      return value;
    }
    case "integer": {
      if (typeof value !== "number" || !Number.isInteger(value)) return bad("Member must be an integer");
      if (field.min !== undefined && value < field.min)
        bad(`Member must have value greater than or equal to ${field.min}`);
      if (field.max !== undefined && value > field.max)
        bad(`Member must have value less than or equal to ${field.max}`);
      return value;
    }
    case "boolean":
      if (typeof value !== "boolean") bad("Member must be a boolean");
      return value;
    case "timestamp":
      if (!(value instanceof Date) || Number.isNaN(value.getTime())) bad("Member must be a timestamp");
      return value;
    case "list": {
      if (!Array.isArray(value)) return bad("Member must be a list");
      if (field.min !== undefined && value.length < field.min)
        bad(`Member must have length greater than or equal to ${field.min}`);
      if (field.max !== undefined && value.length > field.max)
        bad(`Member must have length less than or equal to ${field.max}`);
      if (field.item) {
        const item = field.item;
        return value.map((v, i) => check(item, v, `${path}.${i + 1}.member`, out));
      }
      return value;
    }
    case "map": {
      if (typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array)
        return bad("Member must be a map");
      const entries = Object.entries(value as Record<string, unknown>);
      if (field.max !== undefined && entries.length > field.max)
        bad(`Member must have length less than or equal to ${field.max}`);
      if (field.value) {
        const valueField = field.value;
        return Object.fromEntries(entries.map(([k, v]) => [k, check(valueField, v, `${path}.${k}`, out)]));
      }
      return value;
    }
    case "structure": {
      if (typeof value !== "object" || Array.isArray(value) || value instanceof Uint8Array)
        return bad("Member must be a structure");
      return collect(field.shape, value as Record<string, unknown>, path + ".", out);
    }
  }
}

function collect(
  shape: Shape,
  input: Record<string, unknown>,
  prefix: string,
  out: Violation[],
): Record<string, unknown> {
  const checked: Record<string, unknown> = {};
  for (const name in shape) checked[name] = check(shape[name]!, input[name], prefix + memberName(name), out);
  // The input's members in its own order, each known one as checked; then known members the input
  // lacked but a check supplied. No `delete`: it would leave the result a slow dictionary object.
  // A JSON null is an absent member to AWS's services, and so to every operation here.
  const result: Record<string, unknown> = {};
  for (const name in input) {
    if (name === "__proto__") Object.defineProperty(result, name, { value: input[name], enumerable: true });
    else if (!Object.hasOwn(shape, name)) result[name] = input[name];
    else if (checked[name] !== undefined && checked[name] !== null) result[name] = checked[name];
  }
  for (const name in shape)
    if (!Object.hasOwn(input, name) && checked[name] !== undefined && checked[name] !== null)
      result[name] = checked[name];
  return result;
}

/**
 * Coerces wire values to model types and checks `input` against `shape`; throws `code` (ValidationException for JSON services,
 * ValidationError for IAM/STS) with AWS's message when anything is off. Returns the input typed.
 */
export function validate<T>(input: unknown, shape: Shape, code = "ValidationException"): T {
  const obj = (input ?? {}) as Record<string, unknown>;
  const out: Violation[] = [];
  const result = collect(shape, obj, "", out);
  if (out.length > 0) throw new ServiceError(code, validationMessage(out), 400);
  return result as T;
}
