import type { ChunkSigning } from "../auth/authenticate.js";
import type { Codec } from "../protocols/codec.js";
import type { ContextKeys, Principal } from "./types.js";

/**
 * The contract between the simulator's wire layer and its service providers. A provider is a class
 * with one method per AWS operation, named as AWS names it (`CreateKey`, `GetRole`); `operations`
 * lists them with whether they change state. Providers never see HTTP: they get the decoded input
 * and a CallContext, return a plain output object (Uint8Array for blobs, Date for timestamps) or
 * throw a ServiceError.
 */
export type Protocol = "awsJson1_0" | "awsJson1_1" | "awsQuery" | "restXml";

export interface OperationInfo {
  /** False for operations that change the account (counted as mutating, and persisted after). */
  readOnly: boolean;
  /**
   * Stores only a session it issues (STS AssumeRole): mutating for persistence, but it changes no
   * resource of the account, and CloudTrail logs it as read-only. Not counted as a write.
   */
  sessionOnly?: true;
}

export interface ServiceProvider {
  /** Signing name and ARN service: `kms`, `iam`, `sts`, `s3`, `cloudtrail`. */
  readonly service: string;
  readonly protocol: Protocol;
  /** CloudTrail `eventSource`, e.g. `kms.amazonaws.com`. */
  readonly eventSource: string;
  /** awsJson: the `x-amz-target` prefixes accepted (`TrentService`). */
  readonly targetPrefixes?: readonly string[];
  /** awsQuery: the API version (`2010-05-08`) and XML namespace of responses. */
  readonly apiVersion?: string;
  readonly xmlNamespace?: string;
  readonly operations: Readonly<Record<string, OperationInfo>>;
  /** restXml services bring their own codec (REST routing is per service); others use the protocol's. */
  readonly codec?: Codec;
}

/** What a provider's operation learns about the call besides its input. */
export interface CallContext {
  accountId: string;
  region: string;
  requestId: string;
  principal: Principal;
  now: Date;
  sourceIp: string;
  userAgent: string;
  secureTransport: boolean;
  /** Set when an AWS service calls on the requester's behalf, e.g. `s3.amazonaws.com` calling KMS. */
  viaService?: string;
  /**
   * Condition keys an AWS service adds when it acts for a resource of its own: CloudTrail writing a
   * log file sets `aws:SourceArn` (the trail) and `aws:SourceAccount`.
   */
  serviceKeys?: ContextKeys;
  /** How the request was authenticated: S3 tells SigV4 from anonymous, and checks chunk signatures. */
  auth?: RequestAuth;
}

/**
 * A CallContext with every field, optional ones included, in one order: every context is made here
 * (the dispatcher's, CloudTrail's and Step Functions' own calls, `onBehalf`) so that V8 gives them
 * all one hidden class. Not `{ ...ctx, viaService }`: in Node 20's V8 a spread copy that then gains
 * a property gets a hidden class of its own every time, so every read of such an object misses V8's
 * inline caches and fills its shared lookup cache with entries nothing reuses, pushing out the SDK's.
 */
export function callContext(c: CallContext): CallContext {
  return {
    accountId: c.accountId,
    region: c.region,
    requestId: c.requestId,
    principal: c.principal,
    now: c.now,
    sourceIp: c.sourceIp,
    userAgent: c.userAgent,
    secureTransport: c.secureTransport,
    viaService: c.viaService,
    serviceKeys: c.serviceKeys,
    auth: c.auth,
  };
}

/**
 * The context of a call a service makes on the requester's behalf (S3 calling KMS): the same
 * caller and request, in `region`, through `viaService`.
 */
export function onBehalf(ctx: CallContext, region: string, viaService: string): CallContext {
  const c = callContext(ctx);
  c.region = region;
  c.viaService = viaService;
  return c;
}

export interface RequestAuth {
  signed: boolean;
  presigned: boolean;
  chunkSigning?: ChunkSigning;
}

/** An operation implementation as the dispatcher calls it. */
export type OperationFn = (input: Record<string, unknown>, ctx: CallContext) => unknown | Promise<unknown>;

/**
 * The global condition keys every request carries (aws:SecureTransport, aws:SourceIp, ...), for
 * providers to extend with their service's own keys before they authorise a call.
 */
export function globalContextKeys(ctx: CallContext): ContextKeys {
  return {
    "aws:SecureTransport": ctx.secureTransport,
    "aws:SourceIp": ctx.sourceIp,
    "aws:CurrentTime": ctx.now.toISOString(),
    "aws:EpochTime": Math.floor(ctx.now.getTime() / 1000),
    "aws:RequestedRegion": ctx.region,
    "aws:UserAgent": ctx.userAgent,
    "aws:ViaAWSService": ctx.viaService !== undefined,
    ...ctx.serviceKeys,
  };
}

/**
 * Makes `target` hold what `source` holds, in place: services keep a reference to their state
 * object. Keys both have are assigned, not deleted and added again, so the object keeps its shape.
 */
export function replaceContents(target: object, source: object): void {
  const t = target as Record<string, unknown>;
  for (const key of Object.keys(t)) if (!Object.hasOwn(source, key)) delete t[key];
  Object.assign(t, source);
}
