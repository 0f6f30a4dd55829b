import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { describe, expect, it } from "vitest";
import {
  type AuthOptions,
  authenticate,
  type CredentialRecord,
  type ErrorFamily,
} from "../sim/auth/authenticate.js";
import { canonicalQuery, canonicalUri, signingKey } from "../sim/auth/sigv4.js";
import { ServiceError } from "../sim/core/errors.js";
import { ANONYMOUS, type Principal, type SimRequest } from "../sim/core/types.js";

// Requests are signed exactly as SDK v3 clients sign them (@smithy/signature-v4), then put "on the
// wire" the way the node HTTP handler does (path as serialised, query escaped) and read back the way
// the simulator's server reads them (lower-case headers, decoded query).

type HttpRequest = Awaited<ReturnType<SignatureV4["presign"]>>;
type SourceData = string | ArrayBuffer | ArrayBufferView;

/** The sha256 a SignatureV4 needs, on node:crypto (what @smithy/hash-node does). */
class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", toBytes(this.secret));
  }
  update(data: SourceData): void {
    this.hash.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

function toBytes(data: SourceData): Uint8Array {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

const NOW = new Date("2026-11-28T12:00:00Z");
const ACCOUNT = "111122223333";

interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const ADMIN: Creds = {
  accessKeyId: "AKIAADMINEXAMPLE0001",
  secretAccessKey: "adminSecret/K7MDENG+bPxRfiCYEXAMPLEKEY",
};
const INACTIVE: Creds = { accessKeyId: "AKIAINACTIVEEXAMPLE1", secretAccessKey: "inactiveSecretEXAMPLEKEY" };
const SESSION: Creds = {
  accessKeyId: "ASIASESSIONEXAMPLE01",
  secretAccessKey: "sessionSecretEXAMPLEKEY",
  sessionToken: "FwoGZXIvYXdzEXAMPLETOKEN//////////wEaDEXAMPLE+token/with=chars",
};
const EXPIRED: Creds = {
  accessKeyId: "ASIAEXPIREDEXAMPLE01",
  secretAccessKey: "expiredSecretEXAMPLEKEY",
  sessionToken: "ExpiredSessionTokenEXAMPLE",
};

const adminPrincipal: Principal = {
  type: "IAMUser",
  arn: `arn:aws:iam::${ACCOUNT}:user/admin`,
  accountId: ACCOUNT,
  userId: "AIDAADMINEXAMPLE0001",
  userName: "admin",
  accessKeyId: ADMIN.accessKeyId,
};
const sessionPrincipal: Principal = {
  type: "AssumedRole",
  arn: `arn:aws:sts::${ACCOUNT}:assumed-role/KeyUser/lab`,
  accountId: ACCOUNT,
  userId: "AROAROLEEXAMPLE00001:lab",
  roleName: "KeyUser",
  sessionName: "lab",
};

const RECORDS: Record<string, CredentialRecord> = {
  [ADMIN.accessKeyId]: { secretAccessKey: ADMIN.secretAccessKey, active: true, principal: adminPrincipal },
  [INACTIVE.accessKeyId]: {
    secretAccessKey: INACTIVE.secretAccessKey,
    active: false,
    principal: adminPrincipal,
  },
  [SESSION.accessKeyId]: {
    secretAccessKey: SESSION.secretAccessKey,
    sessionToken: SESSION.sessionToken,
    expiration: new Date(NOW.getTime() + 3600_000),
    active: true,
    principal: sessionPrincipal,
  },
  [EXPIRED.accessKeyId]: {
    secretAccessKey: EXPIRED.secretAccessKey,
    sessionToken: EXPIRED.sessionToken,
    expiration: new Date(NOW.getTime() - 1000),
    active: true,
    principal: sessionPrincipal,
  },
};

function options(family: ErrorFamily, extra: Partial<AuthOptions> = {}): AuthOptions {
  return { family, now: NOW, lookup: (id) => RECORDS[id], allowAnonymous: family === "s3", ...extra };
}

interface SignOptions {
  service: string;
  region?: string;
  creds?: Creds;
  date?: Date;
  presign?: boolean;
  expiresIn?: number;
}

async function sign(request: HttpRequest, o: SignOptions): Promise<HttpRequest> {
  const s3 = o.service === "s3";
  const signer = new SignatureV4({
    service: o.service,
    region: o.region ?? "us-east-1",
    credentials: o.creds ?? ADMIN,
    sha256: NodeSha256,
    // What the S3 client configures: the serialiser already encoded the path, sign it as is.
    uriEscapePath: !s3,
    applyChecksum: true,
  });
  const signingDate = o.date ?? NOW;
  if (!o.presign) return signer.sign(request, { signingDate });
  // What @aws-sdk/s3-request-presigner does before presigning.
  const unsignableHeaders = new Set<string>();
  if (s3) {
    request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
    unsignableHeaders.add("content-type");
  }
  return signer.presign(request, { signingDate, expiresIn: o.expiresIn ?? 900, unsignableHeaders });
}

/** RFC 3986 escaping as smithy's escapeUri / extendedEncodeURIComponent do it. */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The S3 serialiser's label encoding, segment by segment. */
function s3Path(bucket: string, key: string): string {
  return `/${bucket}/${key.split("/").map(rfc3986).join("/")}`;
}

/** Wire round trip: query escaped as the node handler writes it, then decoded as a server reads it. */
function toSim(r: HttpRequest): SimRequest {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(r.query ?? {})) {
    for (const value of Array.isArray(v) ? v : [v ?? ""]) parts.push(`${rfc3986(k)}=${rfc3986(value)}`);
  }
  const query: Record<string, string[]> = {};
  for (const part of parts) {
    const eq = part.indexOf("=");
    const k = decodeURIComponent(part.slice(0, eq));
    const v = decodeURIComponent(part.slice(eq + 1));
    const values = query[k] ?? [];
    values.push(v);
    query[k] = values;
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  const body = r.body === undefined ? new Uint8Array() : toBytes(r.body as SourceData);
  return { method: r.method, rawPath: r.path, query, headers, body, scheme: "https", sourceIp: "192.0.2.10" };
}

const enc = (s: string) => new TextEncoder().encode(s);

function kmsRequest(body = '{"KeyId":"alias/myFirstKey","Plaintext":"aGVsbG8="}'): HttpRequest {
  return {
    method: "POST",
    protocol: "https:",
    hostname: "kms.us-east-1.amazonaws.com",
    path: "/",
    query: {},
    headers: {
      host: "kms.us-east-1.amazonaws.com",
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "TrentService.Encrypt",
      "x-amz-user-agent": "aws-sdk-js/3.1164.0",
      "user-agent": "aws-sdk-js/3.1164.0 ua/2.1 os/linux lang/js md/nodejs#20.20.2 api/kms#3.1164.0",
      "amz-sdk-invocation-id": "6f1c2f0e-5e8b-4f55-9d3b-1b0a7d3c9e11",
      "amz-sdk-request": "attempt=1; max=3",
      "content-length": String(enc(body).length),
    },
    body: enc(body),
  };
}

function iamRequest(body = "Action=ListUsers&Version=2010-05-08&PathPrefix=%2Flab%2F"): HttpRequest {
  return {
    method: "POST",
    protocol: "https:",
    hostname: "iam.amazonaws.com",
    path: "/",
    query: {},
    headers: {
      host: "iam.amazonaws.com",
      "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      "content-length": String(enc(body).length),
    },
    body: enc(body),
  };
}

function s3Request(
  method: string,
  key: string,
  body?: string,
  query: Record<string, string> = {},
): HttpRequest {
  const headers: Record<string, string> = {
    host: "s3.us-east-1.amazonaws.com",
    "x-amz-user-agent": "aws-sdk-js/3",
  };
  if (body !== undefined) {
    headers["content-type"] = "text/plain";
    headers["content-length"] = String(enc(body).length);
    headers["x-amz-sdk-checksum-algorithm"] = "CRC32";
    headers["x-amz-checksum-crc32"] = "AAAAAA==";
  } else {
    headers["x-amz-checksum-mode"] = "ENABLED";
  }
  return {
    method,
    protocol: "https:",
    hostname: "s3.us-east-1.amazonaws.com",
    path: s3Path("lab-data-bucket", key),
    query: { "x-id": method === "PUT" ? "PutObject" : "GetObject", ...query },
    headers,
    body: body === undefined ? undefined : enc(body),
  };
}

/** Runs authenticate and returns the ServiceError it must throw. */
function failure(req: SimRequest, opts: AuthOptions): ServiceError {
  try {
    authenticate(req, opts);
  } catch (err) {
    if (err instanceof ServiceError) return err;
    throw err;
  }
  throw new Error("authenticate() accepted the request");
}

function expectError(
  req: SimRequest,
  opts: AuthOptions,
  code: string,
  status: number,
  message?: string,
): ServiceError {
  const err = failure(req, opts);
  expect({ code: err.code, status: err.status }).toEqual({ code, status });
  if (message !== undefined) expect(err.message).toBe(message);
  return err;
}

const MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const S3_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
const INVALID_TOKEN = "The security token included in the request is invalid.";

const S3_KEYS = [
  "my report.txt",
  "a+b=c&d.txt",
  "100% sure;really?.txt",
  "ünïcødé/文件 😀.txt",
  "dir//double//slash.txt",
  "parens (1) [x] {y} *!'~.txt",
  "./dot/../segments",
];

describe("AWS's published SigV4 examples verify (canonicalisation independent of the SDK signer)", () => {
  it("IAM ListUsers, header auth", () => {
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html (the classic example)
    const req: SimRequest = {
      method: "GET",
      rawPath: "/",
      query: { Action: ["ListUsers"], Version: ["2010-05-08"] },
      headers: {
        host: "iam.amazonaws.com",
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
        "x-amz-date": "20150830T123600Z",
        authorization:
          "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
      },
      body: new Uint8Array(),
      scheme: "https",
      sourceIp: "192.0.2.1",
    };
    const result = authenticate(req, {
      family: "query",
      now: new Date("2015-08-30T12:36:00Z"),
      lookup: (id) =>
        id === "AKIDEXAMPLE"
          ? {
              secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
              active: true,
              principal: adminPrincipal,
            }
          : undefined,
      allowAnonymous: false,
      expectedService: "iam",
      expectedRegion: "us-east-1",
    });
    expect(result).toMatchObject({ signed: true, presigned: false, region: "us-east-1", service: "iam" });
  });

  const s3Example = (id: string) =>
    id === "AKIAIOSFODNN7EXAMPLE"
      ? {
          secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
          active: true,
          principal: adminPrincipal,
        }
      : undefined;

  it("S3 GET Object with Range, header auth", () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
    const req: SimRequest = {
      method: "GET",
      rawPath: "/test.txt",
      query: {},
      headers: {
        host: "examplebucket.s3.amazonaws.com",
        range: "bytes=0-9",
        "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date": "20130524T000000Z",
        authorization:
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
      },
      body: new Uint8Array(),
      scheme: "https",
      sourceIp: "192.0.2.1",
    };
    const now = new Date("2013-05-24T00:05:00Z");
    expect(authenticate(req, { family: "s3", now, lookup: s3Example, allowAnonymous: true }).signed).toBe(
      true,
    );
  });

  it("S3 presigned GET Object", () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
    const req: SimRequest = {
      method: "GET",
      rawPath: "/test.txt",
      query: {
        "X-Amz-Algorithm": ["AWS4-HMAC-SHA256"],
        "X-Amz-Credential": ["AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"],
        "X-Amz-Date": ["20130524T000000Z"],
        "X-Amz-Expires": ["86400"],
        "X-Amz-SignedHeaders": ["host"],
        "X-Amz-Signature": ["aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"],
      },
      headers: { host: "examplebucket.s3.amazonaws.com" },
      body: new Uint8Array(),
      scheme: "https",
      sourceIp: "192.0.2.1",
    };
    const opts = { family: "s3" as const, lookup: s3Example, allowAnonymous: true };
    const result = authenticate(req, { ...opts, now: new Date("2013-05-24T20:00:00Z") });
    expect(result).toMatchObject({ signed: true, presigned: true, accessKeyId: "AKIAIOSFODNN7EXAMPLE" });
    const err = expectError(req, { ...opts, now: new Date("2013-05-25T00:00:01Z") }, "AccessDenied", 403);
    expect(err.message).toBe("Request has expired");
    expect(err.extra).toEqual({
      "X-Amz-Expires": "86400",
      Expires: "2013-05-25T00:00:00Z",
      ServerTime: "2013-05-25T00:00:01Z",
    });
  });
});

describe("requests signed by the SDK signer verify", () => {
  it("a KMS (awsJson) request: the principal, scope and key come back", async () => {
    const result = authenticate(toSim(await sign(kmsRequest(), { service: "kms" })), options("json"));
    expect(result).toEqual({
      principal: adminPrincipal,
      signed: true,
      presigned: false,
      region: "us-east-1",
      service: "kms",
      accessKeyId: ADMIN.accessKeyId,
    });
  });

  it("a KMS request with session credentials carries the session's principal", async () => {
    const req = toSim(await sign(kmsRequest(), { service: "kms", region: "eu-west-1", creds: SESSION }));
    const result = authenticate(
      req,
      options("json", { expectedService: "kms", expectedRegion: "eu-west-1" }),
    );
    expect(result.principal).toMatchObject({ type: "AssumedRole", accessKeyId: SESSION.accessKeyId });
    expect(result.region).toBe("eu-west-1");
  });

  it("an IAM (awsQuery) form POST and a query-string GET", async () => {
    const post = toSim(await sign(iamRequest(), { service: "iam" }));
    expect(authenticate(post, options("query")).service).toBe("iam");
    const get: HttpRequest = {
      ...iamRequest(""),
      method: "GET",
      query: { Action: "GetUser", Version: "2010-05-08", UserName: "key user+1@lab" },
      body: undefined,
    };
    expect(authenticate(toSim(await sign(get, { service: "iam" })), options("query")).signed).toBe(true);
  });

  it("a presigned STS-style GET (query family)", async () => {
    const req: HttpRequest = {
      ...iamRequest(""),
      method: "GET",
      hostname: "sts.amazonaws.com",
      headers: { host: "sts.amazonaws.com" },
      query: { Action: "GetCallerIdentity", Version: "2011-06-15" },
      body: undefined,
    };
    const signed = toSim(await sign(req, { service: "sts", presign: true, expiresIn: 60, creds: SESSION }));
    expect(authenticate(signed, options("query"))).toMatchObject({ presigned: true, service: "sts" });
    expectError(
      signed,
      options("query", { now: new Date(NOW.getTime() + 61_000) }),
      "SignatureDoesNotMatch",
      403,
      "Signature expired: 20261128T120000Z is now earlier than 20261128T120001Z (20261128T120101Z - 60 sec.)",
    );
  });

  for (const key of S3_KEYS) {
    it(`S3 GET, PUT and presigned GET of ${JSON.stringify(key)}`, async () => {
      const get = toSim(await sign(s3Request("GET", key), { service: "s3" }));
      expect(authenticate(get, options("s3"))).toMatchObject({
        signed: true,
        presigned: false,
        service: "s3",
      });

      const put = toSim(await sign(s3Request("PUT", key, `body of ${key}`), { service: "s3" }));
      expect(authenticate(put, options("s3")).signed).toBe(true);

      const presigned = toSim(
        await sign(s3Request("GET", key), { service: "s3", presign: true, creds: SESSION }),
      );
      expect(presigned.query["X-Amz-Security-Token"]).toEqual([SESSION.sessionToken]);
      expect(authenticate(presigned, options("s3"))).toMatchObject({ signed: true, presigned: true });
    });
  }

  it("S3 accepts a path sent with different but equivalent percent-encoding", async () => {
    const req = toSim(await sign(s3Request("GET", "tilde~file (2).txt"), { service: "s3" }));
    req.rawPath = req.rawPath.replace("~", "%7E").replace("%28", "%28");
    expect(authenticate(req, options("s3")).signed).toBe(true);
  });

  it("S3 accepts STREAMING and UNSIGNED payload hashes without reading the body", async () => {
    for (const hash of ["UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]) {
      const raw = s3Request("PUT", "chunked.bin", "5\r\nhello\r\n0\r\n");
      raw.headers["x-amz-content-sha256"] = hash;
      raw.headers["content-encoding"] = "aws-chunked";
      expect(authenticate(toSim(await sign(raw, { service: "s3" })), options("s3")).signed).toBe(true);
    }
  });
});

describe("tampering after signing", () => {
  it("json: body, signed header, date, secret", async () => {
    const signed = await sign(kmsRequest(), { service: "kms" });
    const body = toSim(signed);
    body.body = enc('{"KeyId":"alias/other","Plaintext":"aGVsbG8="}');
    expectError(body, options("json"), "InvalidSignatureException", 400, MISMATCH);

    const header = toSim(signed);
    header.headers["x-amz-target"] = "TrentService.Decrypt";
    expectError(header, options("json"), "InvalidSignatureException", 400, MISMATCH);

    const date = toSim(signed);
    date.headers["x-amz-date"] = "20261128T120001Z";
    expectError(date, options("json"), "InvalidSignatureException", 400, MISMATCH);

    const wrongSecret = await sign(kmsRequest(), {
      service: "kms",
      creds: { accessKeyId: ADMIN.accessKeyId, secretAccessKey: "not-the-secret" },
    });
    expectError(toSim(wrongSecret), options("json"), "InvalidSignatureException", 400, MISMATCH);
  });

  it("json: a date on another day than the credential scope says", async () => {
    const req = toSim(await sign(kmsRequest(), { service: "kms" }));
    req.headers["x-amz-date"] = "20261127T235900Z";
    const now = new Date("2026-11-28T00:01:00Z");
    expectError(
      req,
      options("json", { now }),
      "InvalidSignatureException",
      400,
      "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261128' != '20261127', from '20261127T235900Z'. ",
    );
  });

  it("query: body, query string, path, secret", async () => {
    const signedPost = await sign(iamRequest(), { service: "iam" });
    const body = toSim(signedPost);
    body.body = enc("Action=ListUsers&Version=2010-05-08&PathPrefix=%2Fother%2F");
    expectError(body, options("query"), "SignatureDoesNotMatch", 403, MISMATCH);

    const path = toSim(signedPost);
    path.rawPath = "/admin";
    expectError(path, options("query"), "SignatureDoesNotMatch", 403, MISMATCH);

    const get: HttpRequest = {
      ...iamRequest(""),
      method: "GET",
      query: { Action: "GetUser" },
      body: undefined,
    };
    const query = toSim(await sign(get, { service: "iam" }));
    query.query.UserName = ["root"];
    expectError(query, options("query"), "SignatureDoesNotMatch", 403, MISMATCH);

    const wrongSecret = await sign(iamRequest(), {
      service: "iam",
      creds: { accessKeyId: ADMIN.accessKeyId, secretAccessKey: "nope" },
    });
    expectError(toSim(wrongSecret), options("query"), "SignatureDoesNotMatch", 403, MISMATCH);
  });

  it("s3: path, signed header and query give SignatureDoesNotMatch with S3's diagnostics", async () => {
    const signed = await sign(s3Request("GET", "secret/report.txt"), { service: "s3" });
    const path = toSim(signed);
    path.rawPath = s3Path("lab-data-bucket", "secret/other.txt");
    const err = expectError(path, options("s3"), "SignatureDoesNotMatch", 403, S3_MISMATCH);
    expect(err.extra.AWSAccessKeyId).toBe(ADMIN.accessKeyId);
    expect(err.extra.CanonicalRequest).toContain("\n/lab-data-bucket/secret/other.txt\nx-id=GetObject\n");
    expect(err.extra.StringToSign).toMatch(
      /^AWS4-HMAC-SHA256\n20261128T120000Z\n20261128\/us-east-1\/s3\/aws4_request\n/,
    );
    expect(err.extra.StringToSignBytes).toMatch(/^41 57 53 34 /);

    const header = toSim(signed);
    header.headers["x-amz-checksum-mode"] = "DISABLED";
    expectError(header, options("s3"), "SignatureDoesNotMatch", 403, S3_MISMATCH);

    const query = toSim(signed);
    query.query.versionId = ["3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"];
    expectError(query, options("s3"), "SignatureDoesNotMatch", 403, S3_MISMATCH);
  });

  it("s3: a body that no longer matches x-amz-content-sha256", async () => {
    const req = toSim(await sign(s3Request("PUT", "data.txt", "original"), { service: "s3" }));
    req.body = enc("tampered");
    const err = expectError(
      req,
      options("s3"),
      "XAmzContentSHA256Mismatch",
      400,
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
    expect(err.extra.S3ComputedContentSHA256).toBe(createHash("sha256").update("tampered").digest("hex"));
  });

  it("s3 presigned: a changed parameter or secret", async () => {
    const signed = toSim(await sign(s3Request("GET", "report.txt"), { service: "s3", presign: true }));
    const tampered = { ...signed, query: { ...signed.query, "X-Amz-Expires": ["3600"] } };
    expectError(tampered, options("s3"), "SignatureDoesNotMatch", 403, S3_MISMATCH);
    const wrong = toSim(
      await sign(s3Request("GET", "report.txt"), {
        service: "s3",
        presign: true,
        creds: { accessKeyId: ADMIN.accessKeyId, secretAccessKey: "wrong" },
      }),
    );
    expectError(wrong, options("s3"), "SignatureDoesNotMatch", 403, S3_MISMATCH);
  });
});

describe("clock skew", () => {
  it("json allows 5 minutes either way", async () => {
    const at = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);
    const req = toSim(await sign(kmsRequest(), { service: "kms" }));
    expect(authenticate(req, options("json", { now: at(4) })).signed).toBe(true);
    expect(authenticate(req, options("json", { now: at(-4) })).signed).toBe(true);
    expectError(
      req,
      options("json", { now: at(65) }),
      "InvalidSignatureException",
      400,
      "Signature expired: 20261128T120000Z is now earlier than 20261128T130000Z (20261128T130500Z - 5 min.)",
    );
    expectError(
      req,
      options("json", { now: at(-6) }),
      "InvalidSignatureException",
      400,
      "Signature not yet current: 20261128T120000Z is still later than 20261128T115900Z (20261128T115400Z + 5 min.)",
    );
  });

  it("query allows 15 minutes", async () => {
    const req = toSim(await sign(iamRequest(), { service: "iam" }));
    expect(authenticate(req, options("query", { now: new Date(NOW.getTime() + 14 * 60_000) })).signed).toBe(
      true,
    );
    expectError(
      req,
      options("query", { now: new Date(NOW.getTime() + 16 * 60_000) }),
      "SignatureDoesNotMatch",
      403,
      "Signature expired: 20261128T120000Z is now earlier than 20261128T120100Z (20261128T121600Z - 15 min.)",
    );
  });

  it("s3 answers RequestTimeTooSkewed beyond 15 minutes, past or future", async () => {
    const req = toSim(await sign(s3Request("GET", "k"), { service: "s3" }));
    for (const minutes of [16, -16]) {
      const now = new Date(NOW.getTime() + minutes * 60_000);
      const err = expectError(
        req,
        options("s3", { now }),
        "RequestTimeTooSkewed",
        403,
        "The difference between the request time and the current time is too large.",
      );
      expect(err.extra).toEqual({
        RequestTime: "20261128T120000Z",
        ServerTime: now.toISOString().replace(".000Z", "Z"),
        MaxAllowedSkewMilliseconds: "900000",
      });
    }
  });
});

describe("credentials", () => {
  const families: [ErrorFamily, () => HttpRequest, string][] = [
    ["json", () => kmsRequest(), "kms"],
    ["query", () => iamRequest(), "iam"],
    ["s3", () => s3Request("GET", "k"), "s3"],
  ];

  it("unknown and inactive access keys", async () => {
    const expected: Record<ErrorFamily, [string, number, string]> = {
      json: ["UnrecognizedClientException", 400, INVALID_TOKEN],
      query: ["InvalidClientTokenId", 403, INVALID_TOKEN],
      s3: ["InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."],
    };
    for (const [family, make, service] of families) {
      for (const creds of [{ accessKeyId: "AKIANOSUCHKEY0000000", secretAccessKey: "x" }, INACTIVE]) {
        const req = toSim(await sign(make(), { service, creds }));
        expectError(req, options(family), ...expected[family]);
      }
    }
  });

  it("expired session credentials", async () => {
    const expected: Record<ErrorFamily, [string, number, string]> = {
      json: ["ExpiredTokenException", 400, "The security token included in the request is expired"],
      query: ["ExpiredToken", 403, "The security token included in the request is expired"],
      s3: ["ExpiredToken", 400, "The provided token has expired."],
    };
    for (const [family, make, service] of families) {
      expectError(
        toSim(await sign(make(), { service, creds: EXPIRED })),
        options(family),
        ...expected[family],
      );
    }
  });

  it("a session key without its token, with another token, and a long-term key with a token", async () => {
    const expected: Record<ErrorFamily, [string, number, string]> = {
      json: ["UnrecognizedClientException", 400, INVALID_TOKEN],
      query: ["InvalidClientTokenId", 403, INVALID_TOKEN],
      s3: ["InvalidToken", 400, "The provided token is malformed or otherwise invalid."],
    };
    const variants: Creds[] = [
      { accessKeyId: SESSION.accessKeyId, secretAccessKey: SESSION.secretAccessKey },
      { ...SESSION, sessionToken: "SomeoneElsesToken" },
      { ...ADMIN, sessionToken: SESSION.sessionToken },
    ];
    for (const [family, make, service] of families) {
      for (const creds of variants) {
        expectError(toSim(await sign(make(), { service, creds })), options(family), ...expected[family]);
      }
    }
  });
});

describe("presigned URLs", () => {
  it("expire after X-Amz-Expires and are not valid before X-Amz-Date", async () => {
    const req = toSim(await sign(s3Request("GET", "k"), { service: "s3", presign: true, expiresIn: 300 }));
    expect(authenticate(req, options("s3", { now: new Date(NOW.getTime() + 300_000) })).presigned).toBe(true);
    const late = expectError(
      req,
      options("s3", { now: new Date(NOW.getTime() + 301_000) }),
      "AccessDenied",
      403,
    );
    expect(late.message).toBe("Request has expired");
    expect(late.extra["X-Amz-Expires"]).toBe("300");
    const early = expectError(
      req,
      options("s3", { now: new Date(NOW.getTime() - 16 * 60_000) }),
      "AccessDenied",
      403,
    );
    expect(early.message).toBe("Request is not yet valid");
  });

  it("reject missing parameters and an X-Amz-Expires over a week", async () => {
    const req = toSim(await sign(s3Request("GET", "k"), { service: "s3", presign: true }));
    const { "X-Amz-SignedHeaders": _, ...withoutSignedHeaders } = req.query;
    expectError(
      { ...req, query: withoutSignedHeaders },
      options("s3"),
      "AuthorizationQueryParametersError",
      400,
      "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
    );
    expectError(
      { ...req, query: { ...req.query, "X-Amz-Expires": ["604801"] } },
      options("s3"),
      "AuthorizationQueryParametersError",
      400,
      "X-Amz-Expires must be less than a week (in seconds) that is 604800",
    );
    expectError(
      { ...req, query: { ...req.query, "X-Amz-Algorithm": ["AWS4-HMAC-SHA1"] } },
      options("s3"),
      "AuthorizationQueryParametersError",
      400,
      'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"',
    );
  });

  it("may not be combined with an Authorization header on S3", async () => {
    const req = toSim(await sign(s3Request("GET", "k"), { service: "s3", presign: true }));
    req.headers.authorization = "AWS4-HMAC-SHA256 Credential=x";
    expectError(req, options("s3"), "InvalidArgument", 400);
  });
});

describe("unsigned and malformed requests", () => {
  const bare = (family: ErrorFamily): SimRequest => {
    const r =
      family === "json" ? kmsRequest() : family === "query" ? iamRequest() : s3Request("GET", "public.txt");
    return toSim(r);
  };

  it("S3 without a signature is the anonymous principal; other families want a token", () => {
    expect(authenticate(bare("s3"), options("s3"))).toEqual({
      principal: ANONYMOUS,
      signed: false,
      presigned: false,
    });
    expectError(bare("s3"), options("s3", { allowAnonymous: false }), "AccessDenied", 403, "Access Denied");
    expectError(
      bare("json"),
      options("json"),
      "MissingAuthenticationTokenException",
      400,
      "Missing Authentication Token",
    );
    expectError(
      bare("query"),
      options("query"),
      "MissingAuthenticationToken",
      403,
      "Request is missing Authentication Token",
    );
  });

  it("an Authorization header missing components", async () => {
    const req = toSim(await sign(kmsRequest(), { service: "kms" }));
    const header = req.headers.authorization!.replace(/, Signature=[0-9a-f]+/, "");
    req.headers.authorization = header;
    expectError(
      req,
      options("json"),
      "IncompleteSignatureException",
      400,
      `Authorization header requires 'Signature' parameter. Authorization=${header}`,
    );
    delete req.headers["x-amz-date"];
    expectError(
      req,
      options("query"),
      "IncompleteSignature",
      400,
      `Authorization header requires 'Signature' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=${header}`,
    );
    expectError(
      req,
      options("s3"),
      "AuthorizationHeaderMalformed",
      400,
      "The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.",
    );
  });

  it("a component without '=' and a credential with the wrong shape", async () => {
    const req = toSim(await sign(kmsRequest(), { service: "kms" }));
    const broken = req.headers.authorization!.replace("Credential=", "Credential ");
    expectError(
      { ...req, headers: { ...req.headers, authorization: broken } },
      options("json"),
      "IncompleteSignatureException",
      400,
      `'${broken.slice(17, broken.indexOf(","))}' not a valid key=value pair (missing equal-sign) in Authorization header: '${broken}'.`,
    );
    const shortScope = req.headers.authorization!.replace(
      /Credential=[^,]+/,
      `Credential=${ADMIN.accessKeyId}/20261128`,
    );
    expectError(
      { ...req, headers: { ...req.headers, authorization: shortScope } },
      options("json"),
      "IncompleteSignatureException",
      400,
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${ADMIN.accessKeyId}/20261128'`,
    );
  });

  it("SigV2 and other schemes", () => {
    const sigV2 = {
      ...bare("s3"),
      headers: { ...bare("s3").headers, authorization: `AWS ${ADMIN.accessKeyId}:c2lnbmF0dXJl` },
    };
    expectError(
      sigV2,
      options("s3"),
      "InvalidRequest",
      400,
      "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    );
    const bearer = { ...sigV2, headers: { ...sigV2.headers, authorization: "Bearer abc" } };
    expectError(bearer, options("s3"), "InvalidArgument", 400, "Unsupported Authorization Type");
    const json = {
      ...bare("json"),
      headers: { ...bare("json").headers, authorization: `AWS ${ADMIN.accessKeyId}:c2ln` },
    };
    expectError(
      json,
      options("json"),
      "IncompleteSignatureException",
      400,
      `Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS ${ADMIN.accessKeyId}:c2ln`,
    );
    const v4a = {
      ...json,
      headers: { ...json.headers, authorization: "AWS4-ECDSA-P256-SHA256 Credential=x" },
    };
    expectError(
      v4a,
      options("json"),
      "IncompleteSignatureException",
      400,
      "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'.",
    );
  });

  it("host must be signed; S3 wants every x-amz-* header signed and x-amz-content-sha256 present", async () => {
    const json = toSim(await sign(kmsRequest(), { service: "kms" }));
    json.headers.authorization = json.headers.authorization!.replace(";host;", ";");
    expectError(
      json,
      options("json"),
      "InvalidSignatureException",
      400,
      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );

    const s3 = toSim(await sign(s3Request("GET", "k"), { service: "s3" }));
    s3.headers["x-amz-acl"] = "public-read";
    const err = expectError(
      s3,
      options("s3"),
      "AccessDenied",
      403,
      "There were headers present in the request which were not signed",
    );
    expect(err.extra.HeadersNotSigned).toBe("x-amz-acl");

    const raw = s3Request("GET", "k");
    const signer = new SignatureV4({
      service: "s3",
      region: "us-east-1",
      credentials: ADMIN,
      sha256: NodeSha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const noHash = toSim(await signer.sign(raw, { signingDate: NOW }));
    expectError(
      noHash,
      options("s3"),
      "InvalidRequest",
      400,
      "Missing required header for this request: x-amz-content-sha256",
    );
  });

  it("a credential scoped to another service or region, when the caller names them", async () => {
    const req = toSim(await sign(kmsRequest(), { service: "dynamodb", region: "mars-east-1" }));
    expectError(
      req,
      options("json", { expectedService: "kms", expectedRegion: "us-east-1" }),
      "InvalidSignatureException",
      400,
      "Credential should be scoped to a valid region, not 'mars-east-1'. Credential should be scoped to correct service: 'kms'. ",
    );
    const s3 = toSim(await sign(s3Request("GET", "k"), { service: "s3", region: "eu-west-1" }));
    const err = expectError(
      s3,
      options("s3", { expectedRegion: "us-east-1" }),
      "AuthorizationHeaderMalformed",
      400,
      "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'",
    );
    expect(err.extra.Region).toBe("us-east-1");
  });
});

describe("canonicalisation helpers", () => {
  it("S3 paths are encoded once, other services' twice; dot segments only collapse outside S3", () => {
    expect(canonicalUri("/bucket/a%20b/%7E~/c+d//e/./f/../g", true)).toBe(
      "/bucket/a%20b/~~/c%2Bd//e/./f/../g",
    );
    expect(canonicalUri("/a%20b/./c/../d/", false)).toBe("/a%2520b/d/");
    expect(canonicalUri("/", false)).toBe("/");
  });

  it("query parameters sort by name, then value, with prefixes first", () => {
    expect(
      canonicalQuery({ "a-b": ["1"], a: ["z", "y"], "X-Amz-Signature": ["s"], e: [""] }, "X-Amz-Signature"),
    ).toBe("a=y&a=z&a-b=1&e=");
  });

  it("signing keys are cached per secret, day, region and service", () => {
    const a = signingKey("secret", "20261128", "us-east-1", "kms");
    expect(signingKey("secret", "20261128", "us-east-1", "kms")).toBe(a);
    expect(signingKey("secret", "20261128", "us-east-1", "s3").equals(a)).toBe(false);
    expect(signingKey("other", "20261128", "us-east-1", "kms").equals(a)).toBe(false);
  });
});

describe("through real SDK clients (full middleware stack, in-process handler)", () => {
  /** Answers as AWS would: an empty success, or the authentication error in the service's format. */
  function handler(family: "json" | "query", success: string) {
    return {
      async handle(request: HttpRequest) {
        const statusAndBody = (): [number, string] => {
          try {
            // Real clients sign with the real clock: judge them by it, with a session that is still live.
            const now = new Date();
            const lookup = (id: string): CredentialRecord | undefined => {
              const record = RECORDS[id];
              if (id !== SESSION.accessKeyId || record === undefined) return record;
              return { ...record, expiration: new Date(now.getTime() + 3600_000) };
            };
            authenticate(toSim(request), { ...options(family), now, lookup });
            return [200, success];
          } catch (err) {
            if (!(err instanceof ServiceError)) throw err;
            return family === "json"
              ? [err.status, JSON.stringify({ __type: err.code, message: err.message })]
              : [
                  err.status,
                  `<ErrorResponse><Error><Type>Sender</Type><Code>${err.code}</Code><Message>${err.message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`,
                ];
          }
        };
        const [statusCode, body] = statusAndBody();
        const contentType = family === "json" ? "application/x-amz-json-1.1" : "text/xml";
        return { response: { statusCode, headers: { "content-type": contentType }, body: enc(body) } };
      },
      updateHttpClientConfig(): void {},
      httpHandlerConfigs: () => ({}),
      destroy(): void {},
    };
  }

  it("a KMS client's requests verify, and a wrong secret surfaces as InvalidSignatureException", async () => {
    const { KMSClient, ListKeysCommand } = await import("@aws-sdk/client-kms");
    const config = { region: "us-east-1", maxAttempts: 1, requestHandler: handler("json", '{"Keys":[]}') };
    const kms = new KMSClient({ ...config, credentials: ADMIN });
    await expect(kms.send(new ListKeysCommand({}))).resolves.toMatchObject({ Keys: [] });
    const session = new KMSClient({ ...config, credentials: SESSION });
    await expect(session.send(new ListKeysCommand({}))).resolves.toMatchObject({ Keys: [] });

    const bad = new KMSClient({ ...config, credentials: { ...ADMIN, secretAccessKey: "wrong" } });
    const err = await bad.send(new ListKeysCommand({})).catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: "InvalidSignatureException",
      message: MISMATCH,
      $metadata: { httpStatusCode: 400 },
    });
  });

  it("an IAM client's requests verify, and an unknown key surfaces as InvalidClientTokenId", async () => {
    const { IAMClient, ListUsersCommand } = await import("@aws-sdk/client-iam");
    const ok =
      '<ListUsersResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListUsersResult><Users/><IsTruncated>false</IsTruncated></ListUsersResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></ListUsersResponse>';
    const config = { region: "us-east-1", maxAttempts: 1, requestHandler: handler("query", ok) };
    const iam = new IAMClient({ ...config, credentials: ADMIN });
    await expect(iam.send(new ListUsersCommand({ PathPrefix: "/lab team+ops/" }))).resolves.toMatchObject({
      IsTruncated: false,
    });
    const stranger = new IAMClient({
      ...config,
      credentials: { accessKeyId: "AKIANOSUCHKEY0000000", secretAccessKey: "x" },
    });
    const err = await stranger.send(new ListUsersCommand({})).catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: "InvalidClientTokenId",
      message: INVALID_TOKEN,
      $metadata: { httpStatusCode: 403 },
    });
  });
});
