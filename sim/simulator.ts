import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { DiskFullError } from "../lib/files.js";
import {
  Account,
  type AccountOptions,
  type CallRecord,
  type Clock,
  callRecord,
  ids,
  PROFILES,
} from "./account.js";
import {
  type AuthOptions,
  authenticate,
  type CredentialRecord,
  type ErrorFamily,
  MISMATCH as SIGNATURE_MISMATCH,
} from "./auth/authenticate.js";
import { ServiceError } from "./core/errors.js";
import { type CallContext, callContext, type OperationFn, type ServiceProvider } from "./core/service.js";
import type { Principal, SimRequest, SimResponse } from "./core/types.js";
import { type FaultDecision, FaultInjector } from "./faults.js";
import type { Codec } from "./protocols/codec.js";
import { jsonCodec } from "./protocols/json.js";
import { queryCodec } from "./protocols/query.js";
import { DataDir } from "./store.js";

export interface SimulatorOptions {
  /** `instant` (default) or `realistic` (IAM propagation delay), or explicit options. */
  profile?: keyof typeof PROFILES | AccountOptions;
  clock?: Clock;
  faults?: FaultInjector;
}

export interface SimulatorStats {
  requests: number;
  /** Calls to operations that change state, whether or not they succeeded. */
  mutatingCalls: number;
  /** Mutating calls that may change a resource of the account (all but AssumeRole's sessions). */
  writeCalls: number;
}

export interface ClientConfigOptions {
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  maxAttempts?: number;
}

const CODECS: Record<ServiceProvider["protocol"], Codec | undefined> = {
  awsJson1_0: jsonCodec("1.0"),
  awsJson1_1: jsonCodec("1.1"),
  awsQuery: queryCodec,
  restXml: undefined,
};

const FAMILY: Record<ServiceProvider["protocol"], ErrorFamily> = {
  awsJson1_0: "json",
  awsJson1_1: "json",
  awsQuery: "query",
  restXml: "s3",
};

/** One operation call on its way through the dispatcher. */
interface Call {
  provider: ServiceProvider;
  operation: string;
  readOnly: boolean;
  input: Record<string, unknown>;
  ctx: CallContext;
}

/** Answers to calls undone because the account could not be saved, with why (requestHandler). */
const UNSAVED = new WeakMap<SimResponse, DiskFullError>();

const SCOPE = /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\/([^/,\s]+)\//;

/**
 * The simulated AWS account as a service: one `handle(request)` that routes to the service,
 * authenticates (SigV4), injects faults, runs the operation and renders the answer in the
 * service's protocol. Served in process (`requestHandler()` for SDK clients) and over HTTP
 * (sim/server.ts) by the same code.
 */
export class Simulator {
  readonly faults: FaultInjector;
  readonly stats: SimulatorStats = { requests: 0, mutatingCalls: 0, writeCalls: 0 };
  private readonly byTarget = new Map<string, ServiceProvider>();
  private readonly byService = new Map<string, ServiceProvider>();
  private closed = false;
  private dateSecond = Number.NaN;
  private dateText = "";

  private constructor(
    readonly account: Account,
    private readonly dataDir: DataDir | undefined,
    options: SimulatorOptions,
  ) {
    this.faults = options.faults ?? new FaultInjector();
    for (const provider of account.providers) this.register(provider);
    // Step Functions' executions run here, their Tasks sent into this simulator as SDK requests.
    // Their saves never throw: one that fails puts the account back as last saved (see save()).
    const save = () => {
      try {
        this.save();
      } catch {
        // Already said and undone.
      }
    };
    account.states.attach({ requestHandler: this.requestHandler(), save });
  }

  /** A fresh account that lives in memory only (tests). */
  static inMemory(options: SimulatorOptions = {}): Simulator {
    return new Simulator(Account.create(resolveProfile(options.profile), options.clock), undefined, options);
  }

  /**
   * The persistent account in `dir` (created on first use), locked for this process until
   * `close()`. Throws DataDirLockedError when another process holds it.
   */
  static open(dir: string, options: SimulatorOptions & { command?: string } = {}): Simulator {
    const dataDir = new DataDir(dir);
    dataDir.lock(options.command ?? "kmslab");
    try {
      const saved = dataDir.load();
      const profile = resolveProfile(options.profile);
      const account = saved
        ? new Account(saved, profile, options.clock, dataDir.dir)
        : Account.create(profile, options.clock, dataDir.dir);
      if (!saved) dataDir.save(account.toState());
      return new Simulator(account, dataDir, options);
    } catch (err) {
      dataDir.unlock();
      throw err;
    }
  }

  /**
   * Releases the data directory's lock. State is already on disk: it is saved after every change.
   * An execution still running ends FAILED (States.Runtime): nothing runs in an account nobody serves.
   */
  close(): void {
    this.account.states.stopAll("The simulator was closed while this execution was running.");
    try {
      this.save();
    } finally {
      this.closed = true;
      this.dataDir?.unlock();
    }
  }

  /**
   * Saves the account if anything changed, then lets go of what the saved state no longer needs.
   * A save that fails (a full disk: the file on disk is still the last good one) puts the account
   * back as it was saved, undoing the changes of the call being answered, and throws: the call is
   * answered with an error, and taking effect and being answered go together, so a retry is safe.
   */
  private save(): void {
    if (this.closed) return;
    if (this.account.takeChanged() && this.dataDir) {
      try {
        this.dataDir.save(this.account.toState());
      } catch (err) {
        this.rollback(err);
        throw err;
      }
      this.failing = undefined;
    }
    this.account.committed();
  }

  /**
   * Puts a persistent account back as its data directory holds it, after a save that failed or a
   * call that failed inside the simulator (an internal error may come after the call changed the
   * account). An in-memory account has no saved state to go back to: it keeps what it holds.
   */
  private rollback(cause: unknown): void {
    if (!this.dataDir) return;
    if (cause instanceof DiskFullError) {
      // Said once while saves keep failing; `sim serve` runs on, and saves again once there is room.
      if (this.failing === undefined)
        process.stderr.write(
          `kmslab sim: ${cause.message}\nkmslab sim: the account is back as last saved; calls fail ` +
            `(HTTP: 500, an internal error) until there is room to save it again\n`,
        );
      this.failing = cause;
    }
    const saved = this.dataDir.load();
    if (saved) this.account.rollback(saved);
  }

  /** Why the last save failed, while saves are failing (said once on stderr until one succeeds). */
  private failing: DiskFullError | undefined;

  /** The error of the last save while saves are failing: `sim serve` stops with it. */
  get saveFailure(): DiskFullError | undefined {
    return this.failing;
  }

  /** Tells other processes (`kmslab sim credentials`) where this account is being served. */
  announceEndpoint(endpoint: string): void {
    this.dataDir?.annotateLock({ endpoint });
  }

  get dataDirectory(): string | undefined {
    return this.dataDir?.dir;
  }

  /** The admin user's long-term access key. */
  credentials(): { accessKeyId: string; secretAccessKey: string } {
    return this.account.iam.adminCredentials();
  }

  /** An access key of the account's root user (made on first use and kept with the account). */
  rootCredentials(): { accessKeyId: string; secretAccessKey: string } {
    const credentials = this.account.iam.rootCredentials();
    this.save();
    return credentials;
  }

  /** Adds a service (S3, CloudTrail... come from later parts). */
  register(provider: ServiceProvider): void {
    this.byService.set(provider.service, provider);
    for (const prefix of provider.targetPrefixes ?? []) this.byTarget.set(prefix, provider);
  }

  /** Called after every completed operation, successful or not, also calls between services. */
  observe(listener: (record: CallRecord) => void): () => void {
    return this.account.observe(listener);
  }

  /** Config for an SDK v3 client that reaches this account in process, through the full SDK stack. */
  clientConfig(options: ClientConfigOptions = {}) {
    return {
      region: options.region ?? "us-east-1",
      credentials: options.credentials ?? this.credentials(),
      requestHandler: this.requestHandler(),
      ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
    };
  }

  /**
   * A smithy HttpHandler: SDK clients send their signed requests here instead of the network. A
   * call the account could not save for a full disk fails as the handler's own error (DiskFullError),
   * as a transport fails, rather than as a 500 to retry: the disk is this process's, and a client in
   * it learns why at once (over HTTP, `sim serve` answers 500 and logs why).
   */
  requestHandler() {
    const output = (res: SimResponse) => {
      const failure = UNSAVED.get(res);
      if (failure) return Promise.reject(failure);
      try {
        return Promise.resolve(toSmithyOutput(res));
      } catch (err) {
        // A connection reset (an injected fault) fails the call as a transport error would.
        return Promise.reject(err);
      }
    };
    return {
      handle: (request: SmithyRequest) => {
        const req = fromSmithy(request);
        if (req instanceof Promise) return req.then((r) => this.respond(r)).then(output);
        const out = this.respond(req);
        return out instanceof Promise ? out.then(output) : output(out);
      },
      updateHttpClientConfig(): void {},
      httpHandlerConfigs: () => ({}),
      destroy(): void {},
      metadata: { handlerProtocol: "http/1.1" },
    };
  }

  /** One request in, one response out; never rejects. */
  handle(req: SimRequest): Promise<SimResponse> {
    const out = this.respond(req);
    return out instanceof Promise ? out : Promise.resolve(out);
  }

  /** `handle`, answering at once when nothing had to wait (most calls): no promise to settle. */
  private respond(req: SimRequest): SimResponse | Promise<SimResponse> {
    const out = this.answer(req);
    return out instanceof Promise ? out.then((res) => this.finish(req, res)) : this.finish(req, out);
  }

  private finish(req: SimRequest, res: SimResponse): SimResponse {
    // AWS dates every answer, and SDKs correct their clock skew from it: the account's clock,
    // not the host's, is the one a client must agree with.
    res.headers.date = this.httpDate(this.account.now().getTime());
    // A HEAD answer has no body, errors included (S3: the SDK names HEAD errors from the status).
    if (req.method === "HEAD" && res.body instanceof Uint8Array && res.body.length > 0)
      res.body = new Uint8Array(0);
    return res;
  }

  /** `Date` header text, at the header's one-second resolution: formatted once a second. */
  private httpDate(ms: number): string {
    const second = Math.floor(ms / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateText = new Date(second * 1000).toUTCString();
    }
    return this.dateText;
  }

  /**
   * What the HTTP server asks before it reads a request's body: the request as far as it can be
   * checked without one (which service, then SigV4 up to the signature). A request that is refused
   * either way is answered now and its body never read: a body buffered before its signature is
   * checked is memory anyone can take. Otherwise `signed` says whose budget the body counts against
   * (S3 lets requests with no signature at all through, as the anonymous principal).
   * Nothing is counted or recorded; the request itself is still handled, in full, by handle().
   */
  admit(head: SimRequest): { refused: SimResponse } | { signed: boolean } {
    const provider = this.route(head);
    if (!provider) return { signed: false };
    const family = FAMILY[provider.protocol];
    try {
      return { signed: authenticate(head, this.authOptions(provider, this.account.now())).signed };
    } catch (err) {
      if (!(err instanceof ServiceError)) return { signed: false };
      // Outside S3 the signature covers the body's hash, and an S3 body may have to match its
      // declared hash: these failures may only be the body's absence here, so the body decides.
      const needsBody =
        family === "s3" ? err.code === "XAmzContentSHA256Mismatch" : err.message === SIGNATURE_MISMATCH;
      if (needsBody) return { signed: true };
      const codec = provider.codec ?? CODECS[provider.protocol]!;
      return { refused: this.dated(codec.encodeError(provider, err, ids.requestId())) };
    }
  }

  /**
   * The answer to a request the server cannot take now (its bodies would pass the memory budget):
   * the service's throttling error, which SDKs retry with backoff (S3: 503 SlowDown).
   */
  throttled(head: SimRequest): SimResponse {
    const provider = this.route(head) ?? this.byService.get("s3")!;
    const codec = provider.codec ?? CODECS[provider.protocol]!;
    return this.dated(codec.encodeError(provider, throttlingError(provider), ids.requestId()));
  }

  private dated(res: SimResponse): SimResponse {
    res.headers.date = this.httpDate(this.account.now().getTime());
    return res;
  }

  private authOptions(provider: ServiceProvider, now: Date): AuthOptions {
    return {
      family: FAMILY[provider.protocol],
      now,
      lookup: this.lookupCredentials,
      allowAnonymous: provider.protocol === "restXml",
      expectedService: provider.service,
      ...(provider.service === "iam" ? { expectedRegion: "us-east-1" } : {}),
    };
  }

  /** The answer, or a promise of it when a fault delays it or the operation is asynchronous. */
  private answer(req: SimRequest): SimResponse | Promise<SimResponse> {
    const requestId = ids.requestId();
    this.stats.requests++;
    this.account.tick();
    const provider = this.route(req);
    if (!provider) {
      this.saveQuietly();
      return {
        status: 400,
        headers: { "content-type": "application/xml", "x-amz-request-id": requestId },
        body: new TextEncoder().encode(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code><Message>The simulator serves KMS, CloudTrail, S3, IAM, STS and Step Functions here; this request's X-Amz-Target names none of them.</Message><RequestId>${requestId}</RequestId></Error>`,
        ),
      };
    }
    const codec = provider.codec ?? CODECS[provider.protocol]!;
    const internal = (cause: unknown) => {
      const res = codec.encodeError(provider, internalError(provider), requestId);
      if (cause instanceof DiskFullError) UNSAVED.set(res, cause);
      return res;
    };
    const fail = (err: unknown): SimResponse => {
      if (err instanceof ServiceError) return codec.encodeError(provider, err, requestId);
      if (!(err instanceof DiskFullError))
        process.stderr.write(`kmslab sim: internal error in ${provider.service}: ${(err as Error).stack}\n`);
      this.rollback(err);
      return internal(err);
    };
    // Saved before the client hears back: an answer it got is never lost to a crash, and one whose
    // save failed is an error (the call undone).
    const saved = (res: SimResponse): SimResponse => {
      try {
        this.save();
        return res;
      } catch (err) {
        return internal(err);
      }
    };
    const fault = { reset: false };
    // A reset loses the answer, error or not, of a call that was made.
    const lost = (res: SimResponse): SimResponse => (fault.reset ? { ...res, reset: true } : res);
    const answer = (res: SimResponse): SimResponse => lost(saved(res));
    try {
      const out = this.dispatch(req, provider, codec, requestId, fault);
      return out instanceof Promise ? out.then(answer, (err: unknown) => answer(fail(err))) : answer(out);
    } catch (err) {
      return answer(fail(err));
    }
  }

  /** Saves what a request changed without an operation (a CloudTrail delivery); a failure is undone. */
  private saveQuietly(): void {
    try {
      this.save();
    } catch {
      // Already said and undone.
    }
  }

  /**
   * Authenticate, decode, inject faults, run the operation, persist, render. Synchronous unless a
   * fault adds latency or the operation itself is asynchronous: most calls never wait, and a
   * simulated call should cost little more than the SDK's own work.
   */
  private dispatch(
    req: SimRequest,
    provider: ServiceProvider,
    codec: Codec,
    requestId: string,
    fault: { reset: boolean },
  ): SimResponse | Promise<SimResponse> {
    const now = this.account.now();
    const auth = authenticate(req, this.authOptions(provider, now));
    const { operation, input } = codec.decode(req, provider);
    const info = provider.operations[operation]!;
    const readOnly = info.readOnly;
    if (!readOnly) this.stats.mutatingCalls++;
    if (!readOnly && !info.sessionOnly) this.stats.writeCalls++;

    const ctx = callContext({
      accountId: this.account.accountId,
      region: provider.service === "iam" ? "us-east-1" : (auth.region ?? "us-east-1"),
      requestId,
      principal: auth.principal,
      now,
      sourceIp: req.sourceIp,
      userAgent: req.headers["user-agent"] ?? "",
      secureTransport: req.scheme === "https",
      auth: { signed: auth.signed, presigned: auth.presigned, chunkSigning: auth.chunkSigning },
    });
    const call: Call = { provider, operation, readOnly, input, ctx };
    const decision = this.faults.decide(provider.service, operation);
    // A reset comes after the call: it is made as usual, then its answer is lost.
    fault.reset = decision.kind === "reset";
    const kind = decision.kind === "reset" ? "none" : decision.kind;
    if (decision.latencyMs > 0) return sleep(decision.latencyMs).then(() => this.run(call, codec, kind));
    return this.run(call, codec, kind);
  }

  private run(
    call: Call,
    codec: Codec,
    fault: Exclude<FaultDecision["kind"], "reset">,
  ): SimResponse | Promise<SimResponse> {
    if (fault !== "none") throw injectedError(call, fault);
    const fn = (call.provider as unknown as Record<string, OperationFn>)[call.operation]!;
    const failed = (err: unknown): never => {
      if (err instanceof ServiceError) this.emit(call, { error: err });
      throw err;
    };
    let output: unknown;
    try {
      output = fn.call(call.provider, call.input, call.ctx);
    } catch (err) {
      failed(err);
    }
    if (output instanceof Promise) return output.then((out) => this.succeed(call, codec, out), failed);
    return this.succeed(call, codec, output);
  }

  private succeed(call: Call, codec: Codec, output: unknown): SimResponse {
    if (!call.readOnly) this.account.changed();
    this.emit(call, { output });
    return codec.encode(call.provider, call.operation, output, call.ctx.requestId);
  }

  private emit(call: Call, outcome: { output: unknown } | { error: ServiceError }): void {
    if (!this.account.observed) return;
    this.account.emit(
      callRecord(call.provider, call.operation, call.readOnly, call.input, call.ctx, outcome),
    );
  }

  private readonly lookupCredentials = (accessKeyId: string): CredentialRecord | undefined => {
    if (accessKeyId.startsWith("ASIA")) return this.account.sts.findSession(accessKeyId);
    return this.account.iam.findAccessKey(accessKeyId);
  };

  /** Which service a request is for: X-Amz-Target (JSON), else the signing scope, host or Version (query). */
  private route(req: SimRequest): ServiceProvider | undefined {
    const target = req.headers["x-amz-target"];
    if (target !== undefined) {
      const dot = target.lastIndexOf(".");
      return (
        this.byTarget.get(target.slice(0, dot)) ?? this.byTarget.get(target.slice(0, dot).split(".").pop()!)
      );
    }
    const scope =
      SCOPE.exec(req.headers.authorization ?? "") ??
      SCOPE.exec(`Credential=${req.query["X-Amz-Credential"]?.[0]}`);
    const signed = scope ? this.byService.get(scope[2]!) : undefined;
    if (signed) return signed;
    const host = (req.headers.host ?? "").split(".")[0];
    if (host === "iam" || host === "sts") return this.byService.get(host);
    if (isQueryRequest(req)) {
      const version = /(?:^|&)Version=([^&]*)/.exec(
        new TextDecoder().decode(req.body.subarray(0, 4096)),
      )?.[1];
      const v = version ?? req.query.Version?.[0];
      for (const p of this.byService.values()) if (p.protocol === "awsQuery" && p.apiVersion === v) return p;
      return this.byService.get("sts");
    }
    return this.byService.get("s3");
  }
}

function isQueryRequest(req: SimRequest): boolean {
  return (
    (req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded") ||
    req.query.Action !== undefined
  );
}

function resolveProfile(profile: SimulatorOptions["profile"]): AccountOptions {
  if (profile === undefined) return PROFILES.instant!;
  if (typeof profile === "string") {
    const p = PROFILES[profile];
    if (!p)
      throw new Error(`unknown simulator profile "${profile}" (use ${Object.keys(PROFILES).join(" or ")})`);
    return p;
  }
  return profile;
}

function injectedError(call: Call, kind: "throttle" | "5xx" | "deny"): ServiceError {
  const provider = call.provider;
  const family = FAMILY[provider.protocol];
  if (kind === "deny") {
    // What AWS says when an organisation's service control policy denies the call.
    const action = `${provider.service}:${call.operation}`;
    const message = `User: ${call.ctx.principal.arn} is not authorized to perform: ${action} with an explicit deny in a service control policy`;
    if (family === "s3") return new ServiceError("AccessDenied", message, 403);
    if (family === "query") return new ServiceError("AccessDenied", message, 403);
    return new ServiceError("AccessDeniedException", message, 400);
  }
  if (kind === "throttle") return throttlingError(provider);
  return internalError(provider);
}

/** What each family answers when it will not take a request now (S3's 503 SlowDown and kin). */
function throttlingError(provider: ServiceProvider): ServiceError {
  const family = FAMILY[provider.protocol];
  if (family === "s3") return new ServiceError("SlowDown", "Please reduce your request rate.", 503);
  if (family === "query") return new ServiceError("Throttling", "Rate exceeded", 400);
  return new ServiceError("ThrottlingException", "Rate exceeded", 400);
}

function internalError(provider: ServiceProvider): ServiceError {
  const family = FAMILY[provider.protocol];
  if (family === "s3")
    return new ServiceError("InternalError", "We encountered an internal error. Please try again.", 500);
  if (family === "query") return new ServiceError("ServiceFailure", "Service failure", 500);
  if (provider.service === "kms")
    return new ServiceError("KMSInternalException", "Internal service error.", 500);
  return new ServiceError(
    "InternalFailure",
    "The request processing has failed because of an unknown error.",
    500,
  );
}

/** The parts of a smithy HttpRequest the handler reads. */
interface SmithyRequest {
  method: string;
  protocol?: string;
  hostname?: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

function fromSmithy(request: SmithyRequest): SimRequest | Promise<SimRequest> {
  const headers: Record<string, string> = {};
  const given = request.headers;
  for (const k in given) headers[k.toLowerCase()] = given[k]!;
  if (headers.host === undefined && request.hostname)
    headers.host = request.port ? `${request.hostname}:${request.port}` : request.hostname;
  const query: Record<string, string[]> = {};
  const params = request.query ?? {};
  for (const k in params) {
    const v = params[k];
    if (v === null || v === undefined) query[k] = [""];
    else query[k] = Array.isArray(v) ? v : [v];
  }
  const simRequest = (body: Uint8Array): SimRequest => ({
    method: request.method,
    rawPath: request.path,
    query,
    headers,
    body,
    scheme: request.protocol === "http:" ? "http" : "https",
    sourceIp: "127.0.0.1",
  });
  const body = request.body;
  if (body === undefined || body === null) return simRequest(new Uint8Array(0));
  if (body instanceof Uint8Array) return simRequest(body);
  if (typeof body === "string") return simRequest(Buffer.from(body, "utf8"));
  return collect(body).then(simRequest);
}

/** A streaming body (S3 uploads), read whole. */
async function collect(body: unknown): Promise<Uint8Array> {
  if (body instanceof Readable || (typeof body === "object" && Symbol.asyncIterator in (body as object))) {
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
  }
  throw new Error(`unsupported request body type: ${typeof body}`);
}

function toSmithyOutput(res: SimResponse) {
  if (res.reset) throw connectionReset();
  return { response: { statusCode: res.status, reason: undefined, headers: res.headers, body: res.body } };
}

/** What Node's HTTP client reports when the server resets the connection before answering. */
function connectionReset(): Error {
  return Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
}

export type { CallRecord, Principal };
