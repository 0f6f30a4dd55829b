import type { Readable } from "node:stream";

/**
 * A request as the simulator sees it, whichever way it arrived (in process through an SDK client's
 * requestHandler, or over HTTP). Header names are lower-case.
 */
export interface SimRequest {
  method: string;
  /** The path exactly as sent, still percent-encoded (what SigV4 canonicalises). */
  rawPath: string;
  /** Query parameters, decoded; a parameter may repeat. */
  query: Record<string, string[]>;
  headers: Record<string, string>;
  body: Uint8Array;
  /** `http` or `https`: feeds `aws:SecureTransport`. */
  scheme: "http" | "https";
  sourceIp: string;
}

export interface SimResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | Readable;
  /**
   * An injected fault: the call was made (and saved), then the connection is reset instead of
   * answering — over HTTP the socket is destroyed, in process the request fails as Node's would
   * (ECONNRESET, "socket hang up").
   */
  reset?: true;
}

export type PrincipalType = "Root" | "IAMUser" | "AssumedRole" | "AWSService" | "Anonymous";

/** Who made a request, as authentication resolved it. */
export interface Principal {
  type: PrincipalType;
  /** The caller's ARN as AWS reports it (for role sessions the `sts::...:assumed-role/...` form). */
  arn: string;
  accountId: string;
  /** `AIDA...` for users, `AROA...:<session>` for role sessions, the account id for root. */
  userId: string;
  accessKeyId?: string;
  /** For role sessions: the role's ARN and unique id, and the session's name. */
  roleArn?: string;
  roleId?: string;
  roleName?: string;
  sessionName?: string;
  sessionIssuedAt?: string;
  /**
   * For role sessions made with session policies (AssumeRole `Policy`, `PolicyArns`): the policy
   * documents, which limit what the role's policies grant the session. Undefined without any.
   */
  sessionPolicies?: readonly string[];
  /** For IAM users. */
  userName?: string;
  /** For AWS services calling on their own behalf, e.g. `cloudtrail.amazonaws.com`. */
  service?: string;
}

export const ANONYMOUS: Principal = {
  type: "Anonymous",
  arn: "*",
  accountId: "anonymous",
  userId: "anonymous",
};

/** Values of request context keys (aws:SourceArn, kms:EncryptionContext:..., ...). */
export type ContextValue = string | string[] | boolean | number | undefined;
export type ContextKeys = Record<string, ContextValue>;
