import { StateSecretError } from "./errors.js";

/**
 * Keeping secrets out of the state file. Temporary credentials, plaintext data keys and object
 * bodies stay in memory (issue 4); the engine records AWS inputs and outputs in the journal, so the
 * store checks every state it writes and refuses one that carries something secret-looking. Two
 * signals: a field named like a secret (whatever its value), and a string shaped like an AWS secret
 * access key or session token (wherever it is).
 */

/** What redact() puts in place of a secret; accepted by assertNoSecrets, even in a secret-named field. */
export const REDACTED = "[redacted]";

/**
 * Field names whose value is a secret, compared without case and without `_`/`-`: SecretAccessKey,
 * secretAccessKey, AWS_SECRET_ACCESS_KEY, SessionToken, Plaintext... and Credentials (STS's
 * AssumeRole output), refused whole.
 */
function isSecretName(key: string): boolean {
  const k = key.toLowerCase().replace(/[^a-z0-9]/g, "");
  return (
    k.endsWith("secretaccesskey") || k.endsWith("sessiontoken") || k === "plaintext" || k === "credentials"
  );
}

/**
 * 40 characters of base64's alphabet with upper case, lower case and a digit or `/`/`+`, as AWS's
 * secret access keys are; hex digests (lower case only) and ids do not match.
 */
const SECRET_KEY_SHAPE = /^[A-Za-z0-9/+]{40}$/;
function looksLikeSecretKey(s: string): boolean {
  return SECRET_KEY_SHAPE.test(s) && /[A-Z]/.test(s) && /[a-z]/.test(s) && /[0-9/+]/.test(s);
}

/** STS session tokens start with these (base64 of their binary header); found anywhere in a string. */
const SESSION_TOKEN_SHAPE = /(IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz|AQoDYXdzE)[A-Za-z0-9/+=]{40,}/;

function isSecretString(s: string): boolean {
  return (s.length === 40 && looksLikeSecretKey(s)) || (s.length >= 52 && SESSION_TOKEN_SHAPE.test(s));
}

/**
 * A secret field that discloses nothing: empty (`SessionToken: undefined` in a config, for one) or
 * already redacted, so that what redact() returns is accepted.
 */
function isHarmless(value: unknown): boolean {
  return value === undefined || value === null || value === "" || value === REDACTED;
}

/** `$.journal[3].input["key-user"].Credentials`: where a finding is, as the error names it. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "$";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else if (typeof p === "string" && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p)) out += `.${p}`;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

/**
 * One pass over the value. `path` is a stack shared by the whole walk (pushed and popped, formatted
 * only for a finding): the walk runs on every checkpoint, over states of hundreds of KiB.
 */
function walk(value: unknown, path: PropertyKey[], found: string[], copy: boolean): unknown {
  if (typeof value === "string") {
    if (!isSecretString(value)) return value;
    found.push(formatPath(path));
    return REDACTED;
  }
  if (Array.isArray(value)) {
    const out = copy ? new Array<unknown>(value.length) : undefined;
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      const v = walk(value[i], path, found, copy);
      path.pop();
      if (out) out[i] = v;
    }
    return out ?? value;
  }
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> | undefined = copy ? {} : undefined;
    for (const k of Object.keys(value)) {
      const v = (value as Record<string, unknown>)[k];
      path.push(k);
      if (isSecretName(k) && !isHarmless(v)) {
        found.push(formatPath(path));
        if (out) out[k] = REDACTED;
      } else {
        const w = walk(v, path, found, copy);
        if (out) out[k] = w;
      }
      path.pop();
    }
    return out ?? value;
  }
  return value;
}

/** The paths of everything secret-looking in `value`, in document order; empty when it is clean. */
export function findSecrets(value: unknown): string[] {
  const found: string[] = [];
  walk(value, [], found, false);
  return found;
}

/**
 * A copy of `value` with every secret-looking field or string replaced by "[redacted]": what the
 * engine records as a journal entry's input or result summary. The original is not changed.
 */
export function redact<T>(value: T): T {
  return walk(value, [], [], true) as T;
}

/** Throws StateSecretError naming every offending path; the store calls it before each write. */
export function assertNoSecrets(value: unknown): void {
  const found = findSecrets(value);
  if (found.length > 0) throw new StateSecretError(found);
}
