import * as cloudtrail from "@aws-sdk/client-cloudtrail";
import * as iam from "@aws-sdk/client-iam";
import * as kms from "@aws-sdk/client-kms";
import * as s3 from "@aws-sdk/client-s3";
import * as sts from "@aws-sdk/client-sts";
import { DiskFullError } from "../lib/files.js";
import { rememberSecret, rememberSecretsIn } from "../state/secrets.js";
import type { Service } from "../steps/dsl.js";

/**
 * The AWS side of the engine: SDK clients for the lab's five services, built from one base
 * configuration (real AWS through the standard credential chain, an endpoint, or the embedded
 * simulator's in-process requestHandler — the engine cannot tell them apart), calls made by
 * operation name as the stage definitions name them, and their results made JSON-safe, as Step
 * Functions' aws-sdk integrations return them (blobs as base64, times as ISO strings, S3 bodies as
 * text).
 */

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** What every client is built from; the CLI fills it for the chosen target. */
export interface ClientBase {
  region: string;
  endpoint?: string;
  credentials?: Credentials | (() => Promise<Credentials>);
  /** The embedded simulator's in-process handler (sim target). */
  requestHandler?: unknown;
  /** An AWS CLI profile name (aws target). */
  profile?: string;
}

interface SdkClient {
  send(command: unknown): Promise<Record<string, unknown>>;
  destroy(): void;
}

type Module = Record<string, unknown>;

const MODULES: Record<Service, { module: Module; client: string }> = {
  sts: { module: sts as Module, client: "STSClient" },
  iam: { module: iam as Module, client: "IAMClient" },
  kms: { module: kms as Module, client: "KMSClient" },
  s3: { module: s3 as Module, client: "S3Client" },
  cloudtrail: { module: cloudtrail as Module, client: "CloudTrailClient" },
};

/** Members that are blobs in the SDK but travel as base64 text in definitions (as in ASL). */
const BLOB_INPUTS: Partial<Record<string, string[]>> = {
  "kms.Decrypt": ["CiphertextBlob"],
  "kms.Encrypt": ["Plaintext"],
  "kms.ReEncrypt": ["CiphertextBlob"],
};

/** An AWS error as the engine reasons about it. */
/** Whether an action only reads (AWS names reads Get, Describe, List, Head or Lookup...). */
export function isReadAction(action: string): boolean {
  return READ_ACTION.test(action);
}
const READ_ACTION = /^(Get|Describe|List|Head|Lookup)[A-Z]/;

export class AwsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number | undefined,
    readonly service: Service,
    readonly action: string,
  ) {
    super(message);
    this.name = "AwsError";
  }

  /** Throttling, server errors and broken connections: worth retrying with backoff. */
  get transient(): boolean {
    return (
      TRANSIENT_CODES.has(this.code) ||
      NETWORK_CODES.has(this.code) ||
      (this.status !== undefined && this.status >= 500)
    );
  }

  /**
   * The call may have been made though no answer says so: the connection broke after it was sent
   * (a reset, a timeout) or the service failed (5xx). Throttling and a connection never made
   * (refused, no such host) are known not to have been made. A caller that sends a change again
   * after such an error must expect to find it done (see StageRunner: "already exists" is then ours).
   */
  get outcomeUnknown(): boolean {
    if (NETWORK_CODES.has(this.code)) return !NOT_CONNECTED.has(this.code);
    return this.code === "TimeoutError" || this.code === "RequestTimeout" || (this.status ?? 0) >= 500;
  }
}

/**
 * Node's connection errors, as the AWS SDK's own retry strategy classifies them
 * (@smithy/service-error-classification: NODEJS_TIMEOUT_ERROR_CODES and NODEJS_NETWORK_ERROR_CODES;
 * "socket hang up" is ECONNRESET). The engine turns the SDK's retries off (it retries and journals
 * itself), so it must know them: one reset in a 20-minute run must not roll a stage back.
 */
export const NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** Connection errors that mean the request never left: nothing was done. */
const NOT_CONNECTED: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** Error codes that mean "try again later" (throttling, service errors); the ASL export retries the same. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "SlowDown",
  "RequestThrottled",
  "ServiceUnavailable",
  "InternalError",
  "InternalFailure",
  "ServiceFailure",
  "KMSInternalException",
  "TimeoutError",
  "RequestTimeout",
]);

export interface CallOptions {
  credentials?: Credentials;
  unsigned?: boolean;
  /** S3 GetObject: the body as base64 (binary) rather than text. */
  binaryBody?: boolean;
}

/** What a call observer sees (the orchestration benchmark records the engine's calls with it). */
export interface ObservedCall {
  service: Service;
  action: string;
  input: Record<string, unknown>;
  output?: Record<string, unknown>;
  error?: AwsError;
  options: CallOptions;
}

/**
 * CloudTrail allows 2 LookupEvents per second per account and Region (aws-subset §3.4): the engine
 * paces its own lookups, across all stages, rather than being throttled and backing off.
 */
class Pacer {
  private next = 0;
  constructor(private readonly perSecond: number) {}

  async turn(): Promise<void> {
    if (this.perSecond <= 0) return;
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + 1000 / this.perSecond;
    if (at > now) await new Promise((r) => setTimeout(r, at - now));
  }
}

export class Clients {
  private readonly cache = new Map<string, SdkClient>();
  private readonly lookups: Pacer;
  private readonly remembered = new WeakSet<SdkClient>();
  /** Sees every call, with its output or its error. */
  observer?: (call: ObservedCall) => void;

  constructor(
    readonly base: ClientBase,
    /** Extra config per client. */
    private readonly extra: Record<string, unknown> = {},
    /** LookupEvents per second the engine allows itself (AWS's limit; 0: no pacing). */
    lookupsPerSecond = 2,
  ) {
    this.lookups = new Pacer(lookupsPerSecond);
  }

  /** A client for the service, with the base credentials or the given ones. */
  client(service: Service, credentials?: Credentials, variant = ""): SdkClient {
    const key = `${service}:${credentials?.accessKeyId ?? ""}:${variant}`;
    let client = this.cache.get(key);
    if (client) return client;
    const { module, client: name } = MODULES[service];
    const Ctor = module[name] as new (config: Record<string, unknown>) => SdkClient;
    const config: Record<string, unknown> = {
      region: this.base.region,
      // The engine retries throttling and 5xx itself (backoff with jitter, journaled, mirrored in ASL).
      maxAttempts: 1,
      ...this.extra,
    };
    if (this.base.endpoint) config.endpoint = this.base.endpoint;
    if (this.base.requestHandler) config.requestHandler = this.base.requestHandler;
    if (this.base.profile) config.profile = this.base.profile;
    const creds = credentials ?? this.base.credentials;
    if (creds) config.credentials = creds;
    if (service === "s3" && (this.base.endpoint || this.base.requestHandler)) config.forcePathStyle = true;
    if (variant === "unsigned") {
      config.signer = { sign: async (request: unknown) => request };
      config.credentials = { accessKeyId: "", secretAccessKey: "" };
    }
    client = new Ctor(config);
    this.cache.set(key, client);
    return client;
  }

  /**
   * One call by operation name. The input is JSON as definitions write it; the result is JSON as
   * Step Functions would hand it over. Errors come out as AwsError.
   */
  async call(
    service: Service,
    action: string,
    input: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    const Command = MODULES[service].module[`${action}Command`] as
      | (new (
          input: Record<string, unknown>,
        ) => unknown)
      | undefined;
    if (!Command) throw new Error(`the AWS SDK has no ${service} operation ${action}`);
    const args = { ...input };
    for (const member of BLOB_INPUTS[`${service}.${action}`] ?? [])
      if (typeof args[member] === "string") args[member] = Buffer.from(args[member] as string, "base64");
    const client = this.client(service, options.credentials, options.unsigned ? "unsigned" : "");
    if (service === "cloudtrail" && action === "LookupEvents") await this.lookups.turn();
    let output: Record<string, unknown>;
    await this.rememberCredentials(client);
    try {
      output = await client.send(new Command(args));
      const body = output.Body as { transformToByteArray?: () => Promise<Uint8Array> } | undefined;
      // A binary body (a gzipped log file) travels as base64, as Step Functions hands blobs over.
      if (options.binaryBody && body?.transformToByteArray) output.Body = await body.transformToByteArray();
    } catch (err) {
      // The embedded account could not save the call (a full disk): not an answer of AWS's.
      if (err instanceof DiskFullError) throw err;
      const error = toAwsError(err, service, action);
      this.observer?.({ service, action, input, error, options });
      throw error;
    }
    const safe = (await jsonSafe(output)) as Record<string, unknown>;
    // Credentials an answer hands over (AssumeRole, CreateAccessKey) and plaintext data keys.
    rememberSecretsIn(safe);
    this.observer?.({ service, action, input, output: safe, options });
    return safe;
  }

  /**
   * The state file must never hold the credentials this process signs with: each client's, as the
   * SDK resolved them (the credential chain, a profile, the simulator's), are remembered once.
   */
  private async rememberCredentials(client: SdkClient): Promise<void> {
    if (this.remembered.has(client)) return;
    this.remembered.add(client);
    const provider = (client as { config?: { credentials?: () => Promise<Partial<Credentials>> } }).config
      ?.credentials;
    const identity = typeof provider === "function" ? await provider().catch(() => undefined) : undefined;
    rememberSecret(identity?.secretAccessKey);
    rememberSecret(identity?.sessionToken);
  }

  destroy(): void {
    for (const client of this.cache.values()) client.destroy();
    this.cache.clear();
  }
}

export function toAwsError(err: unknown, service: Service, action: string): AwsError {
  if (err instanceof AwsError) return err;
  const e = err as {
    name?: string;
    Code?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
  };
  // A broken connection has no AWS code: Node's (ECONNRESET...) names it.
  const code = e.code && NETWORK_CODES.has(e.code) ? e.code : (e.Code ?? e.name ?? "Error");
  return new AwsError(code, e.message ?? String(err), e.$metadata?.httpStatusCode, service, action);
}

/** Blobs → base64, Dates → ISO strings, S3 bodies → text; `$metadata` dropped. */
async function jsonSafe(value: unknown, top = true): Promise<unknown> {
  if (value === null || value === undefined) return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (Array.isArray(value)) return Promise.all(value.map((v) => jsonSafe(v, false)));
  if (typeof value === "object") {
    const body = value as { transformToString?: () => Promise<string> };
    if (typeof body.transformToString === "function") return body.transformToString();
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (top && k === "$metadata") continue;
      out[k] = await jsonSafe(v, false);
    }
    return out;
  }
  return value;
}
