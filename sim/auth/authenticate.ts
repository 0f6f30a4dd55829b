import { timingSafeEqual } from "node:crypto";
import { ServiceError } from "../core/errors.js";
import { ANONYMOUS, type Principal, type SimRequest } from "../core/types.js";
import {
  ALGORITHM,
  type CredentialScope,
  canonicalHeaders,
  canonicalQuery,
  canonicalRequest,
  canonicalUri,
  formatAmzDate,
  parseAmzDate,
  parseAuthorizationHeader,
  parseCredential,
  sha256Hex,
  signature,
  signingKey,
  stringToSign,
  TERMINATOR,
  UNSIGNED_PAYLOAD,
} from "./sigv4.js";

/**
 * Which error vocabulary a service speaks. "json": KMS, CloudTrail, Step Functions (400s with
 * `...Exception` codes); "query": IAM, STS (403s with bare codes); "s3": S3 (its own codes and extras).
 */
export type ErrorFamily = "json" | "query" | "s3";

/** What the account knows about an access key id: its secret and whose it is. */
export interface CredentialRecord {
  secretAccessKey: string;
  /** Set for temporary (ASIA) credentials: the request must carry exactly this token. */
  sessionToken?: string;
  expiration?: Date;
  active: boolean;
  principal: Principal;
}

export interface AuthOptions {
  family: ErrorFamily;
  now: Date;
  lookup: (accessKeyId: string) => CredentialRecord | undefined;
  /** S3 only: a request with no signature at all is evaluated as the anonymous principal. */
  allowAnonymous: boolean;
  /** When given, the credential scope must name this signing service (`kms`, `iam`, `s3`...). */
  expectedService?: string;
  /** When given, the credential scope must name this region (IAM: always `us-east-1`). */
  expectedRegion?: string;
}

export interface AuthResult {
  principal: Principal;
  signed: boolean;
  presigned: boolean;
  /** The credential scope's region and service, as the client signed them. */
  region?: string;
  service?: string;
  accessKeyId?: string;
  /**
   * S3 `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` uploads: what the `aws-chunked` body's chunk
   * signatures chain from (each chunk's string to sign names the previous signature).
   */
  chunkSigning?: ChunkSigning;
}

export interface ChunkSigning {
  signingKey: Buffer;
  seedSignature: string;
  amzDate: string;
  /** `<date>/<region>/<service>/aws4_request`. */
  scope: string;
  /** Whether a signed trailer follows the last chunk. */
  trailer: boolean;
}

const DAY_SECONDS = 86_400;
const MAX_PRESIGN_SECONDS = 7 * DAY_SECONDS;
const S3_SKEW_MS = 15 * 60_000;

/** AWS's signing-mismatch sentences: S3 has its own, every other service shares one. */
export const MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const S3_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
const INVALID_TOKEN = "The security token included in the request is invalid.";
const EXPIRED_TOKEN = "The security token included in the request is expired";
const PRESIGN_PARAMS = [
  "X-Amz-Algorithm",
  "X-Amz-Credential",
  "X-Amz-Signature",
  "X-Amz-Date",
  "X-Amz-SignedHeaders",
  "X-Amz-Expires",
] as const;
const S3_PAYLOAD_HASHES = new Set([
  "UNSIGNED-PAYLOAD",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
  "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
  "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
]);
const HEX64 = /^[0-9a-fA-F]{64}$/;

/**
 * Authenticates a request the way AWS's front end does, SigV4 in an `Authorization` header or in a
 * presigned URL's query, and throws a ServiceError in the words of the service's family otherwise.
 *
 * The checks run in AWS's order (as observed for IAM/STS and mirrored for the others): mechanism →
 * algorithm → header components and date presence → signed-header rules → date format → clock skew /
 * presign window → credential scope → (S3) payload-hash header → access key → session token → token
 * expiry → signature → (S3) body hash.
 *
 * Deliberate simplifications, written down:
 * - json/query hash the body themselves; a hex `x-amz-content-sha256` is not trusted there, so a body
 *   altered after signing fails as a bad signature (S3 trusts the header and reports the body mismatch).
 * - S3 requires every `x-amz-*` header present to be signed, for presigned URLs as well as headers.
 * - `aws-chunked` bodies (`STREAMING-*`) are decoded, and their chunk signatures checked, by S3
 *   (sim/services/s3), from the `chunkSigning` this returns.
 * - SigV4 parameters sent in an awsQuery form body (rather than the URL) are not looked at.
 * - Presigned json/query requests: the `Signature expired` wording for a passed X-Amz-Expires is our
 *   extrapolation of the header-skew message.
 */
export function authenticate(req: SimRequest, opts: AuthOptions): AuthResult {
  const header = req.headers.authorization;
  const q = req.query;
  const presign =
    q["X-Amz-Algorithm"] !== undefined ||
    q["X-Amz-Credential"] !== undefined ||
    q["X-Amz-Signature"] !== undefined;
  if (opts.family === "s3") {
    if (header !== undefined && presign) {
      throw new ServiceError(
        "InvalidArgument",
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        400,
        { ArgumentName: "Authorization", ArgumentValue: header },
      );
    }
    if (header === undefined && !presign && q.AWSAccessKeyId !== undefined && q.Signature !== undefined) {
      throw sigV2Unsupported();
    }
  }
  if (header !== undefined) return verify(req, opts, fromHeader(req, opts, header));
  if (presign) return verify(req, opts, fromQuery(req, opts));
  switch (opts.family) {
    case "json":
      throw new ServiceError("MissingAuthenticationTokenException", "Missing Authentication Token", 400);
    case "query":
      throw new ServiceError("MissingAuthenticationToken", "Request is missing Authentication Token", 403);
    case "s3":
      if (!opts.allowAnonymous) throw new ServiceError("AccessDenied", "Access Denied", 403);
      return { principal: ANONYMOUS, signed: false, presigned: false };
  }
}

/** What a request claims, gathered from either mechanism, ready to be checked against the secret. */
interface Claim {
  presigned: boolean;
  scope: CredentialScope;
  /** The request time as it enters the string to sign. */
  amzDate: string;
  signedHeaders: string;
  signedHeaderList: string[];
  signature: string;
  token?: string;
  payloadHash: string;
  /** S3 header auth with a hex `x-amz-content-sha256`: the body must hash to it. */
  bodyHash?: string;
  /** The query parameter the canonical query leaves out (the presigned URL's own signature). */
  excludeParam?: string;
}

function fromHeader(req: SimRequest, opts: AuthOptions, value: string): Claim {
  const f = opts.family;
  const parsed = parseAuthorizationHeader(value);
  const dateValue = req.headers["x-amz-date"] ?? req.headers.date;
  if (parsed.algorithm !== ALGORITHM) {
    if (f === "s3") {
      if (parsed.algorithm === "AWS") throw sigV2Unsupported();
      throw new ServiceError("InvalidArgument", "Unsupported Authorization Type", 400, {
        ArgumentName: "Authorization",
        ArgumentValue: value,
      });
    }
    if (/^AWS\d+-/.test(parsed.algorithm))
      throw incomplete(f, `Unsupported AWS 'algorithm': '${parsed.algorithm}'.`);
    // SigV2 (`AWS AKID:sig`), a bearer token...: to AWS, a header lacking every SigV4 component.
    throw incomplete(f, missingComponents(new Map(), dateValue, value));
  }
  if (parsed.badPair !== undefined) {
    if (f === "s3") throw s3Malformed(THREE_COMPONENTS);
    throw incomplete(
      f,
      `'${parsed.badPair}' not a valid key=value pair (missing equal-sign) in Authorization header: '${value}'.`,
    );
  }
  const credential = parsed.params.get("Credential");
  const signedHeaders = parsed.params.get("SignedHeaders");
  const sig = parsed.params.get("Signature");
  if (credential === undefined || signedHeaders === undefined || sig === undefined) {
    if (f === "s3") throw s3Malformed(THREE_COMPONENTS);
    throw incomplete(f, missingComponents(parsed.params, dateValue, value));
  }
  if (dateValue === undefined) {
    if (f === "s3") throw s3DateRequired();
    throw incomplete(f, missingComponents(parsed.params, dateValue, value));
  }
  const signedHeaderList = signedHeaders.split(";");
  checkSignedHeaders(req, f, signedHeaderList);

  const ms = parseRequestDate(dateValue, req.headers["x-amz-date"] !== undefined);
  if (Number.isNaN(ms)) {
    if (f === "s3") throw s3DateRequired();
    throw incomplete(
      f,
      `Date must be in ISO-8601 'basic format'. Got '${dateValue}'. See http://en.wikipedia.org/wiki/ISO_8601`,
    );
  }
  const amzDate = req.headers["x-amz-date"] ?? formatAmzDate(new Date(ms));
  checkSkew(f, ms, amzDate, opts.now);
  const scope = checkScope(f, false, credential, amzDate, opts);

  let payloadHash: string;
  let bodyHash: string | undefined;
  const declared = req.headers["x-amz-content-sha256"];
  if (f === "s3") {
    if (declared === undefined) {
      throw new ServiceError(
        "InvalidRequest",
        "Missing required header for this request: x-amz-content-sha256",
        400,
      );
    }
    if (HEX64.test(declared)) bodyHash = declared.toLowerCase();
    else if (!S3_PAYLOAD_HASHES.has(declared)) {
      throw new ServiceError(
        "InvalidArgument",
        `x-amz-content-sha256 must be ${[...S3_PAYLOAD_HASHES].join(", ")} or a valid sha256 value.`,
        400,
        { ArgumentName: "x-amz-content-sha256", ArgumentValue: declared },
      );
    }
    payloadHash = declared;
  } else {
    payloadHash = declared !== undefined && !HEX64.test(declared) ? declared : sha256Hex(req.body);
  }
  return {
    presigned: false,
    scope,
    amzDate,
    signedHeaders,
    signedHeaderList,
    signature: sig,
    token: req.headers["x-amz-security-token"],
    payloadHash,
    bodyHash,
  };
}

function fromQuery(req: SimRequest, opts: AuthOptions): Claim {
  const f = opts.family;
  const one = (name: string) => req.query[name]?.[0];
  const required = f === "s3" ? PRESIGN_PARAMS : PRESIGN_PARAMS.slice(0, 5);
  const missing = required.filter((name) => one(name) === undefined);
  if (missing.length > 0) {
    if (f === "s3") {
      throw queryParamsError(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
      );
    }
    throw incomplete(
      f,
      `AWS query-string parameters must include ${missing.map((m) => `'${m}'`).join(", ")}. Re-examine the query-string parameters.`,
    );
  }
  const algorithm = one("X-Amz-Algorithm")!;
  if (algorithm !== ALGORITHM) {
    if (f === "s3") throw queryParamsError(`X-Amz-Algorithm only supports "${ALGORITHM}"`);
    throw incomplete(f, `Unsupported AWS 'algorithm': '${algorithm}'.`);
  }
  const expiresText = one("X-Amz-Expires");
  let expires: number | undefined;
  if (expiresText !== undefined) {
    if (!/^-?\d+$/.test(expiresText)) throw presignError(f, "X-Amz-Expires should be a number");
    expires = Number(expiresText);
    if (expires < 0) throw presignError(f, "X-Amz-Expires must be non-negative");
    if (expires > MAX_PRESIGN_SECONDS) {
      throw presignError(
        f,
        `X-Amz-Expires must be less than a week (in seconds) that is ${MAX_PRESIGN_SECONDS}`,
      );
    }
  }
  const amzDate = one("X-Amz-Date")!;
  const ms = parseAmzDate(amzDate);
  if (Number.isNaN(ms)) {
    if (f === "s3")
      throw queryParamsError(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`);
    throw incomplete(
      f,
      `Date must be in ISO-8601 'basic format'. Got '${amzDate}'. See http://en.wikipedia.org/wiki/ISO_8601`,
    );
  }
  const scope = checkScope(f, true, one("X-Amz-Credential")!, amzDate, opts);
  const signedHeaders = one("X-Amz-SignedHeaders")!;
  const signedHeaderList = signedHeaders.split(";");
  checkSignedHeaders(req, f, signedHeaderList);
  checkPresignWindow(f, ms, amzDate, expires, opts.now);

  const declared = req.headers["x-amz-content-sha256"];
  const payloadHash =
    f === "s3"
      ? UNSIGNED_PAYLOAD
      : declared !== undefined && !HEX64.test(declared)
        ? declared
        : sha256Hex(req.body);
  return {
    presigned: true,
    scope,
    amzDate,
    signedHeaders,
    signedHeaderList,
    signature: one("X-Amz-Signature")!,
    token: one("X-Amz-Security-Token") ?? req.headers["x-amz-security-token"],
    payloadHash,
    excludeParam: "X-Amz-Signature",
  };
}

/** The checks that need the secret: key, session token, expiry, then the signature itself. */
function verify(req: SimRequest, opts: AuthOptions, claim: Claim): AuthResult {
  const f = opts.family;
  const { scope } = claim;
  const record = opts.lookup(scope.accessKeyId);
  if (record === undefined || !record.active) {
    if (f === "s3") {
      throw new ServiceError(
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
        403,
        {
          AWSAccessKeyId: scope.accessKeyId,
        },
      );
    }
    throw invalidToken(f);
  }
  if (record.sessionToken !== undefined ? claim.token !== record.sessionToken : claim.token !== undefined) {
    if (f === "s3")
      throw new ServiceError("InvalidToken", "The provided token is malformed or otherwise invalid.", 400);
    throw invalidToken(f);
  }
  if (record.expiration !== undefined && record.expiration.getTime() <= opts.now.getTime()) {
    if (f === "json") throw new ServiceError("ExpiredTokenException", EXPIRED_TOKEN, 400);
    if (f === "query") throw new ServiceError("ExpiredToken", EXPIRED_TOKEN, 403);
    throw new ServiceError("ExpiredToken", "The provided token has expired.", 400);
  }

  const canonical = canonicalRequest({
    method: req.method,
    uri: canonicalUri(req.rawPath, f === "s3"),
    query: canonicalQuery(req.query, claim.excludeParam),
    headers: canonicalHeaders(req.headers, claim.signedHeaderList),
    signedHeaders: claim.signedHeaders,
    payloadHash: claim.payloadHash,
  });
  const scopeText = `${scope.date}/${scope.region}/${scope.service}/${scope.terminator}`;
  const toSign = stringToSign(claim.amzDate, scopeText, canonical);
  const key = signingKey(record.secretAccessKey, scope.date, scope.region, scope.service);
  const expected = signature(key, toSign);
  if (!HEX64.test(claim.signature) || !timingSafeEqual(Buffer.from(claim.signature, "hex"), expected)) {
    if (f === "s3") {
      throw new ServiceError("SignatureDoesNotMatch", S3_MISMATCH, 403, {
        AWSAccessKeyId: scope.accessKeyId,
        StringToSign: toSign,
        SignatureProvided: claim.signature,
        StringToSignBytes: hexBytes(toSign),
        CanonicalRequest: canonical,
        CanonicalRequestBytes: hexBytes(canonical),
      });
    }
    throw signatureError(f, MISMATCH);
  }
  if (claim.bodyHash !== undefined) {
    const computed = sha256Hex(req.body);
    if (computed !== claim.bodyHash) {
      throw new ServiceError(
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        400,
        { ClientComputedContentSHA256: claim.bodyHash, S3ComputedContentSHA256: computed },
      );
    }
  }
  const principal =
    record.principal.accessKeyId === undefined
      ? { ...record.principal, accessKeyId: scope.accessKeyId }
      : record.principal;
  const result: AuthResult = {
    principal,
    signed: true,
    presigned: claim.presigned,
    region: scope.region,
    service: scope.service,
    accessKeyId: scope.accessKeyId,
  };
  if (claim.payloadHash.startsWith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")) {
    result.chunkSigning = {
      signingKey: key,
      seedSignature: claim.signature.toLowerCase(),
      amzDate: claim.amzDate,
      scope: scopeText,
      trailer: claim.payloadHash.endsWith("-TRAILER"),
    };
  }
  return result;
}

/** `Date` may be an HTTP date; `x-amz-date` must be ISO 8601 basic. Epoch ms, or NaN. */
function parseRequestDate(value: string, isAmzDate: boolean): number {
  const basic = parseAmzDate(value);
  if (!Number.isNaN(basic) || isAmzDate) return basic;
  return /[a-z]/i.test(value) ? Date.parse(value) : Number.NaN;
}

/**
 * `host` must be signed (AWS: "'Host' or ':authority' must be a 'SignedHeader'"); S3 additionally
 * refuses any `x-amz-*` header it was sent but that the signature does not cover.
 */
function checkSignedHeaders(req: SimRequest, f: ErrorFamily, signed: string[]): void {
  if (f !== "s3") {
    if (!signed.includes("host")) {
      throw signatureError(f, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    }
    return;
  }
  const unsigned: string[] = [];
  if (!signed.includes("host")) unsigned.push("host");
  for (const name in req.headers) {
    if (name.startsWith("x-amz-") && !signed.includes(name)) unsigned.push(name);
  }
  if (unsigned.length > 0) {
    throw new ServiceError(
      "AccessDenied",
      "There were headers present in the request which were not signed",
      403,
      {
        HeadersNotSigned: unsigned.join(", "),
      },
    );
  }
}

/** Header auth: the request time must be within 5 minutes (json) or 15 minutes (query, S3) of now. */
function checkSkew(f: ErrorFamily, ms: number, amzDate: string, now: Date): void {
  if (f === "s3") {
    if (Math.abs(ms - now.getTime()) > S3_SKEW_MS) {
      throw new ServiceError(
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
        403,
        {
          RequestTime: amzDate,
          ServerTime: isoSeconds(now.getTime()),
          MaxAllowedSkewMilliseconds: String(S3_SKEW_MS),
        },
      );
    }
    return;
  }
  const minutes = f === "json" ? 5 : 15;
  const nowMs = Math.floor(now.getTime() / 1000) * 1000;
  const window = minutes * 60_000;
  if (ms >= nowMs - window && ms <= nowMs + window) return;
  const nowText = formatAmzDate(new Date(nowMs));
  if (ms < nowMs - window) {
    const earliest = formatAmzDate(new Date(nowMs - window));
    throw signatureError(
      f,
      `Signature expired: ${amzDate} is now earlier than ${earliest} (${nowText} - ${minutes} min.)`,
    );
  }
  if (ms > nowMs + window) {
    const latest = formatAmzDate(new Date(nowMs + window));
    throw signatureError(
      f,
      `Signature not yet current: ${amzDate} is still later than ${latest} (${nowText} + ${minutes} min.)`,
    );
  }
}

/** Presigned URLs are valid from X-Amz-Date (less the skew allowance) until X-Amz-Date + X-Amz-Expires. */
function checkPresignWindow(
  f: ErrorFamily,
  ms: number,
  amzDate: string,
  expires: number | undefined,
  now: Date,
): void {
  if (f !== "s3") {
    if (expires === undefined) {
      checkSkew(f, ms, amzDate, now);
      return;
    }
    const nowMs = Math.floor(now.getTime() / 1000) * 1000;
    if (nowMs > ms + expires * 1000) {
      const earliest = formatAmzDate(new Date(nowMs - expires * 1000));
      const nowText = formatAmzDate(new Date(nowMs));
      throw signatureError(
        f,
        `Signature expired: ${amzDate} is now earlier than ${earliest} (${nowText} - ${expires} sec.)`,
      );
    }
    // A URL signed in the future is judged like a header-signed request.
    if (ms > nowMs) checkSkew(f, ms, amzDate, now);
    return;
  }
  const expiresMs = ms + (expires ?? 0) * 1000;
  const extra = { Expires: isoSeconds(expiresMs), ServerTime: isoSeconds(now.getTime()) };
  if (ms > now.getTime() + S3_SKEW_MS) {
    // S3 reports X-Amz-Date here as epoch milliseconds, oddly; so do we.
    throw new ServiceError("AccessDenied", "Request is not yet valid", 403, {
      "X-Amz-Date": String(ms),
      ...extra,
    });
  }
  if (now.getTime() > expiresMs) {
    throw new ServiceError("AccessDenied", "Request has expired", 403, {
      "X-Amz-Expires": String(expires),
      ...extra,
    });
  }
}

/**
 * The credential must be `AKID/YYYYMMDD/region/service/aws4_request`, dated the request's day, and
 * (when the caller says which) scoped to this endpoint's region and service.
 */
function checkScope(
  f: ErrorFamily,
  presigned: boolean,
  credential: string,
  amzDate: string,
  opts: AuthOptions,
): CredentialScope {
  const scope = parseCredential(credential);
  const { expectedRegion, expectedService } = opts;
  if (f === "s3") {
    const fail = (reason: string, extra: Record<string, string> = {}) =>
      presigned
        ? queryParamsError(`Error parsing the X-Amz-Credential parameter; ${reason}`, extra)
        : s3Malformed(reason, extra);
    if (scope === undefined) {
      throw fail(
        `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`,
      );
    }
    if (scope.accessKeyId === "")
      throw fail("a non-empty Access Key (AKID) must be provided in the credential.");
    if (expectedRegion !== undefined && scope.region !== expectedRegion) {
      throw fail(`the region '${scope.region}' is wrong; expecting '${expectedRegion}'`, {
        Region: expectedRegion,
      });
    }
    if (expectedService !== undefined && scope.service !== expectedService) {
      throw fail(`incorrect service "${scope.service}". This endpoint belongs to "${expectedService}".`);
    }
    if (scope.terminator !== TERMINATOR) {
      throw fail(`incorrect terminal "${scope.terminator}". This endpoint uses "${TERMINATOR}".`);
    }
    if (scope.date !== amzDate.slice(0, 8))
      throw fail("Invalid credential date. Date is not the same as X-Amz-Date.");
    return scope;
  }
  if (scope === undefined) {
    throw incomplete(
      f,
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential}'`,
    );
  }
  // AWS lists every scope problem at once, each sentence followed by a space.
  let problems = "";
  if (expectedRegion !== undefined && scope.region !== expectedRegion) {
    problems += `Credential should be scoped to a valid region, not '${scope.region}'. `;
  }
  if (expectedService !== undefined && scope.service !== expectedService) {
    problems += `Credential should be scoped to correct service: '${expectedService}'. `;
  }
  if (scope.terminator !== TERMINATOR) {
    problems += `Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${scope.terminator}'. `;
  }
  if (scope.date !== amzDate.slice(0, 8)) {
    problems += `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scope.date}' != '${amzDate.slice(0, 8)}', from '${amzDate}'. `;
  }
  if (problems !== "") throw signatureError(f, problems);
  return scope;
}

/** AWS's list of what an `Authorization` header lacks, ending with the header as received. */
function missingComponents(
  params: Map<string, string>,
  dateValue: string | undefined,
  header: string,
): string {
  let message = "";
  for (const name of ["Credential", "Signature", "SignedHeaders"]) {
    if (!params.has(name)) message += `Authorization header requires '${name}' parameter. `;
  }
  if (dateValue === undefined) {
    message += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ";
  }
  return `${message}Authorization=${header}`;
}

const THREE_COMPONENTS =
  "the authorization header requires three components: Credential, SignedHeaders, and Signature.";

function incomplete(f: ErrorFamily, message: string): ServiceError {
  return f === "json"
    ? new ServiceError("IncompleteSignatureException", message, 400)
    : new ServiceError("IncompleteSignature", message, 400);
}

function signatureError(f: ErrorFamily, message: string): ServiceError {
  return f === "json"
    ? new ServiceError("InvalidSignatureException", message, 400)
    : new ServiceError("SignatureDoesNotMatch", message, 403);
}

function invalidToken(f: ErrorFamily): ServiceError {
  return f === "json"
    ? new ServiceError("UnrecognizedClientException", INVALID_TOKEN, 400)
    : new ServiceError("InvalidClientTokenId", INVALID_TOKEN, 403);
}

function presignError(f: ErrorFamily, message: string): ServiceError {
  return f === "s3" ? queryParamsError(message) : incomplete(f, message);
}

function s3Malformed(reason: string, extra: Record<string, string> = {}): ServiceError {
  return new ServiceError(
    "AuthorizationHeaderMalformed",
    `The authorization header is malformed; ${reason}`,
    400,
    extra,
  );
}

function queryParamsError(message: string, extra: Record<string, string> = {}): ServiceError {
  return new ServiceError("AuthorizationQueryParametersError", message, 400, extra);
}

function s3DateRequired(): ServiceError {
  return new ServiceError(
    "AccessDenied",
    "AWS authentication requires a valid Date or x-amz-date header",
    403,
  );
}

function sigV2Unsupported(): ServiceError {
  return new ServiceError(
    "InvalidRequest",
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    400,
  );
}

/** `2026-11-28T13:05:00Z`: S3's timestamps in error extras. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** S3's `...Bytes` extras: each byte as two hex digits, space-separated. */
function hexBytes(text: string): string {
  return Buffer.from(text, "utf8")
    .toString("hex")
    .replace(/(..)(?!$)/g, "$1 ");
}
