import * as crypto from "node:crypto";
import { createHash, createHmac } from "node:crypto";

/**
 * The pieces of AWS Signature Version 4 a verifier needs: parsing what the client sent, rebuilding the
 * canonical request from the request as it arrived, and deriving the signature. Pure functions over
 * strings and bytes; `authenticate.ts` decides what each failure means for each AWS error family.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */

export const ALGORITHM = "AWS4-HMAC-SHA256";
export const TERMINATOR = "aws4_request";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The `Authorization` header split into its algorithm and `key=value` components. */
export interface AuthorizationHeader {
  algorithm: string;
  /** Components by name (`Credential`, `SignedHeaders`, `Signature`); unknown names are kept too. */
  params: Map<string, string>;
  /** The first component that has no `=`, which AWS reports on its own. */
  badPair?: string;
}

/**
 * Splits `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`. AWS tolerates any amount
 * of whitespace around the commas; a component without `=` is a malformed header, not a missing one.
 */
export function parseAuthorizationHeader(value: string): AuthorizationHeader {
  const trimmed = value.trim();
  const space = trimmed.search(/\s/);
  const algorithm = space < 0 ? trimmed : trimmed.slice(0, space);
  const params = new Map<string, string>();
  const header: AuthorizationHeader = { algorithm, params };
  if (space < 0) return header;
  for (const raw of trimmed.slice(space + 1).split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) {
      header.badPair ??= part;
      continue;
    }
    params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return header;
}

/** `AKID/20261128/us-east-1/kms/aws4_request`, split; undefined unless it has exactly five elements. */
export interface CredentialScope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
}

export function parseCredential(credential: string): CredentialScope | undefined {
  const parts = credential.split("/");
  if (parts.length !== 5) return undefined;
  const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  return { accessKeyId, date, region, service, terminator };
}

const BASIC_ISO = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Parses the ISO 8601 basic format SigV4 uses (`20261128T120000Z`); NaN if it is not that. */
export function parseAmzDate(value: string): number {
  const m = BASIC_ISO.exec(value);
  if (!m) return Number.NaN;
  const [y, mo, d, h, mi, s] = [+m[1]!, +m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  // Date.UTC rolls 20261340 over into the next year; AWS rejects such dates, so do we.
  const back = new Date(ms);
  return back.getUTCFullYear() === y &&
    back.getUTCMonth() === mo - 1 &&
    back.getUTCDate() === d &&
    h < 24 &&
    mi < 60 &&
    s < 60
    ? ms
    : Number.NaN;
}

/** `20261128T120000Z` for a Date (seconds precision, UTC). */
export function formatAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]|\.\d{3}/g, "");
}

const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;

/** RFC 3986 percent-encoding of everything but unreserved characters, upper-case hex (AWS's UriEncode). */
export function uriEncode(value: string): string {
  if (UNRESERVED.test(value)) return value;
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function decodeSegment(segment: string): string {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    // Not valid percent-encoding (e.g. `%zz` or a lone UTF-8 byte): canonicalise what was sent.
    return segment;
  }
}

/**
 * The canonical URI. S3 signs the path as sent, encoded once: each segment is decoded and re-encoded
 * in RFC 3986 form, so `%7E` and `~` agree, empty segments (`a//b`) and dot segments are kept. Every
 * other service signs the path after RFC 3986 dot-segment removal (empty segments dropped, as the SDK
 * signer does), with each segment of the wire path encoded once more: the value ends up encoded twice.
 */
export function canonicalUri(rawPath: string, s3: boolean): string {
  if (rawPath === "/" || rawPath === "") return "/";
  if (s3) {
    const segments = rawPath.split("/");
    for (let i = 0; i < segments.length; i++) segments[i] = uriEncode(decodeSegment(segments[i]!));
    return segments.join("/");
  }
  const kept: string[] = [];
  for (const segment of rawPath.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") kept.pop();
    else kept.push(uriEncode(segment));
  }
  const trailing = kept.length > 0 && rawPath.endsWith("/") ? "/" : "";
  return `/${kept.join("/")}${trailing}`;
}

/**
 * The canonical query string: every parameter except `exclude` (the presigned URL's own
 * `X-Amz-Signature`), names and values RFC 3986-encoded, sorted by encoded name then encoded value.
 */
export function canonicalQuery(query: Record<string, string[]>, exclude?: string): string {
  const pairs: string[] = [];
  for (const name in query) {
    if (name === exclude) continue;
    const encodedName = uriEncode(name);
    for (const value of query[name] ?? []) pairs.push(`${encodedName}=${uriEncode(value)}`);
  }
  if (pairs.length < 2) return pairs[0] ?? "";
  // Sorting `name=value` strings sorts by name then value, except when one name is a prefix of
  // another (`a` vs `a-b`): compare the name parts first, as AWS does.
  return pairs.sort(comparePairs).join("&");
}

function comparePairs(a: string, b: string): number {
  const ea = a.indexOf("=");
  const eb = b.indexOf("=");
  const na = a.slice(0, ea);
  const nb = b.slice(0, eb);
  if (na !== nb) return na < nb ? -1 : 1;
  const va = a.slice(ea + 1);
  const vb = b.slice(eb + 1);
  return va < vb ? -1 : va > vb ? 1 : 0;
}

/** A header value as SigV4 canonicalises it: trimmed, inner runs of whitespace collapsed to one space. */
export function canonicalHeaderValue(value: string): string {
  if (!NEEDS_COLLAPSE.test(value) && value[0] !== " " && value[value.length - 1] !== " ") return value;
  return value.replace(/[ \t\r\n]+/g, " ").replace(/^ | $/g, "");
}

const NEEDS_COLLAPSE = /[ \t\r\n]{2}|[\t\r\n]/;

/** `name:value\n` for each signed header, in the order the client listed them. */
export function canonicalHeaders(headers: Record<string, string>, signed: readonly string[]): string {
  let out = "";
  for (const name of signed) out += `${name}:${canonicalHeaderValue(headers[name] ?? "")}\n`;
  return out;
}

/** Node's one-shot digest (Node 20.12 and later; engines allow 20.0): no Hash object per call. */
const oneShot: typeof crypto.hash | undefined = crypto.hash;

export function sha256Hex(data: string | Uint8Array): string {
  return oneShot ? oneShot("sha256", data, "hex") : createHash("sha256").update(data).digest("hex");
}

export interface CanonicalRequestParts {
  method: string;
  uri: string;
  query: string;
  headers: string;
  signedHeaders: string;
  payloadHash: string;
}

export function canonicalRequest(p: CanonicalRequestParts): string {
  return `${p.method}\n${p.uri}\n${p.query}\n${p.headers}\n${p.signedHeaders}\n${p.payloadHash}`;
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
}

/**
 * Derived signing keys. The HMAC chain costs four HMACs; a client reuses one key for a whole day, so
 * keys are kept per secret (the credential record's own string: looking it up hashes nothing new),
 * the few scopes of each in use, newest first.
 */
interface CachedKey {
  date: string;
  region: string;
  service: string;
  key: Buffer;
}
const keyCache = new Map<string, CachedKey[]>();
const KEY_CACHE_SECRETS = 64;
const KEY_CACHE_SCOPES = 8;

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  let scopes = keyCache.get(secret);
  if (scopes) {
    for (const c of scopes) if (c.date === date && c.region === region && c.service === service) return c.key;
  } else {
    if (keyCache.size >= KEY_CACHE_SECRETS) keyCache.delete(keyCache.keys().next().value!);
    scopes = [];
    keyCache.set(secret, scopes);
  }
  const kDate = createHmac("sha256", `AWS4${secret}`).update(date).digest();
  const kRegion = createHmac("sha256", kDate).update(region).digest();
  const kService = createHmac("sha256", kRegion).update(service).digest();
  const key = createHmac("sha256", kService).update(TERMINATOR).digest();
  scopes.unshift({ date, region, service, key });
  if (scopes.length > KEY_CACHE_SCOPES) scopes.pop();
  return key;
}

/** The raw 32-byte signature; compare it with `timingSafeEqual`, not as hex strings. */
export function signature(key: Buffer, toSign: string): Buffer {
  return createHmac("sha256", key).update(toSign).digest();
}
