import { StateSecretError } from "./errors.js";

/**
 * Keeping secrets out of the state file. Temporary credentials, plaintext data keys and object
 * bodies stay in memory (issue 4); the engine records AWS inputs and outputs in the journal, so the
 * store checks every state it writes and refuses one that carries a secret. Three signals: a field
 * named like a secret (whatever its value); a credential this process holds (its own secret access
 * key and session token, and every one an AWS answer handed it: rememberSecretsIn), found anywhere
 * in any string; and a string shaped like an STS session token, whose prefix no name or word has.
 * A string merely shaped like a secret access key (40 characters of base64) is not one: lab
 * parameters such as a 40-character mixed-case role name or object key look just the same.
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

/** STS session tokens start with these (base64 of their binary header); found anywhere in a string. */
const SESSION_TOKEN_SHAPE = /(IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz|AQoDYXdzE)[A-Za-z0-9/+=]{40,}/;

/** The credentials this process holds, by value (a secret access key is 40 characters). */
const held = new Set<string>();
const MIN_SECRET_LENGTH = 16;
let shortestHeld = Number.POSITIVE_INFINITY;

/** Tells the state checks about a credential this process holds, so that it is never written. */
export function rememberSecret(value: unknown): void {
  if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH || value === REDACTED) return;
  held.add(value);
  shortestHeld = Math.min(shortestHeld, value.length);
}

/** Remembers the value of every secret-named field in `value`: an AWS answer (AssumeRole's Credentials...). */
export function rememberSecretsIn(value: unknown): void {
  if (Array.isArray(value)) for (const v of value) rememberSecretsIn(v);
  else if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value))
    for (const [k, v] of Object.entries(value)) {
      if (isSecretName(k) && typeof v === "string") rememberSecret(v);
      else rememberSecretsIn(v);
    }
}

function holdsCredential(s: string): boolean {
  if (s.length < shortestHeld) return false;
  for (const secret of held) if (s.includes(secret)) return true;
  return false;
}

function isSecretString(s: string): boolean {
  return holdsCredential(s) || (s.length >= 52 && SESSION_TOKEN_SHAPE.test(s));
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
