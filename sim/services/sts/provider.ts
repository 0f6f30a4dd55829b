import { randomBytes } from "node:crypto";
import { type Account, ids } from "../../account.js";
import { ServiceError } from "../../core/errors.js";
import { type CallContext, globalContextKeys, type ServiceProvider } from "../../core/service.js";
import type { Principal } from "../../core/types.js";
import { int, list, str, struct, validate } from "../../core/validate.js";
import { authorize, type EvalRequest, evaluatePolicy, PolicyError, parsePolicy } from "../../policy/index.js";

/** One issued set of temporary credentials, JSON-safe (persisted so sessions survive a restart). */
export interface SessionRecord {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
  issuedAt: string;
  roleArn: string;
  roleId: string;
  roleName: string;
  sessionName: string;
  sourceIdentity?: string;
  /** The inline session policy (AssumeRole `Policy`), as sent. */
  policy?: string;
  /** Managed session policies (AssumeRole `PolicyArns`): read when the session is used. */
  policyArns?: string[];
}

export interface StsState {
  sessions: Record<string, SessionRecord>;
}

/** Sessions are kept this long past expiry, so a late request hears "expired" rather than "invalid". */
const EXPIRED_RETENTION_MS = 24 * 3600 * 1000;
/** AWS caps sessions obtained with a role session's credentials (role chaining) at one hour. */
const CHAINED_MAX_SECONDS = 3600;

/**
 * STS: who am I, and role sessions. AssumeRole evaluates the role's trust policy against the
 * caller; temporary credentials (`ASIA...`) are stored here and looked up by the authenticator
 * through `findSession`. Session policies (`Policy`, `PolicyArns`) limit the session's permissions
 * (sim/policy/authorize.ts); session tags are accepted but not applied (a deliberate simplification).
 */
export class StsService implements ServiceProvider {
  readonly service = "sts";
  readonly protocol = "awsQuery" as const;
  readonly eventSource = "sts.amazonaws.com";
  readonly apiVersion = "2011-06-15";
  readonly xmlNamespace = "https://sts.amazonaws.com/doc/2011-06-15/";
  readonly operations = {
    GetCallerIdentity: { readOnly: true },
    // Not read-only: it stores the session it issues (but no resource: not a write).
    AssumeRole: { readOnly: false, sessionOnly: true },
  } as const;

  readonly state: StsState;

  constructor(
    private readonly account: Account,
    state?: StsState,
  ) {
    this.state = state ?? { sessions: {} };
  }

  /**
   * Temporary credentials by access key id, with the role session they act as. Expired sessions
   * are still returned (with their `expiration`) for a day, so the authenticator can answer
   * ExpiredToken; after that they are pruned.
   */
  findSession(accessKeyId: string):
    | {
        secretAccessKey: string;
        sessionToken: string;
        expiration: Date;
        active: true;
        principal: Principal;
      }
    | undefined {
    this.prune();
    const s = this.state.sessions[accessKeyId];
    if (!s) return undefined;
    return {
      secretAccessKey: s.secretAccessKey,
      sessionToken: s.sessionToken,
      expiration: new Date(s.expiration),
      // A session's key works until the session expires (authentication checks `expiration`).
      active: true,
      principal: this.sessionPrincipal(s),
    };
  }

  // https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
  GetCallerIdentity(_input: Record<string, unknown>, ctx: CallContext) {
    // Needs no permission: AWS answers it even when a policy denies sts:GetCallerIdentity.
    return { UserId: ctx.principal.userId, Account: ctx.principal.accountId, Arn: ctx.principal.arn };
  }

  // https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
  AssumeRole(input: Record<string, unknown>, ctx: CallContext) {
    const tag = struct({
      Key: str({ required: true, min: 1, max: 128 }),
      Value: str({ required: true, max: 256 }),
    });
    const req = validate<{
      RoleArn: string;
      RoleSessionName: string;
      DurationSeconds?: number;
      ExternalId?: string;
      SourceIdentity?: string;
      Policy?: string;
      PolicyArns?: { arn?: string }[];
    }>(
      input,
      {
        RoleArn: str({ required: true, min: 20, max: 2048 }),
        RoleSessionName: str({
          required: true,
          min: 2,
          max: 64,
          pattern: /[\w+=,.@-]*/u,
        }),
        PolicyArns: list(struct({ arn: str({ min: 20, max: 2048 }) })),
        Policy: str({ min: 1, max: 2048 }),
        DurationSeconds: int({ min: 900, max: 43200 }),
        Tags: list(tag, { max: 50 }),
        TransitiveTagKeys: list(str({ min: 1, max: 128 }), { max: 50 }),
        ExternalId: str({ min: 2, max: 1224, pattern: /[\w+=,.@:/-]*/u }),
        SerialNumber: str({ min: 9, max: 256 }),
        TokenCode: str({ min: 6, max: 6 }),
        SourceIdentity: str({ min: 2, max: 64, pattern: /[\w+=,.@-]*/u }),
      },
      "ValidationError",
    );
    const caller = ctx.principal;
    const denied = () =>
      new ServiceError(
        "AccessDenied",
        `User: ${caller.arn} is not authorized to perform: sts:AssumeRole on resource: ${req.RoleArn}`,
        403,
      );
    // Not in AWS's documentation; the status, code and message as observed in real responses:
    // https://github.com/cloudposse/terraform-aws-vpc-peering-multi-account/issues/106,
    // https://github.com/double-break/spapi-php/issues/45
    if (caller.type === "Root")
      throw new ServiceError("AccessDenied", "Roles may not be assumed by root accounts.", 403);
    // A role that does not exist, or has not propagated yet, is refused like one whose trust policy
    // does not name the caller: AWS does not reveal which.
    const role = this.account.iam.assumableRole(req.RoleArn);
    if (!role) throw denied();
    const trust = this.account.iam.storedPolicy(role.trustPolicy, "trust");
    if (!trust) throw denied();

    const context = globalContextKeys(ctx);
    context["sts:RoleSessionName"] = req.RoleSessionName;
    if (req.ExternalId !== undefined) context["sts:ExternalId"] = req.ExternalId;
    if (req.SourceIdentity !== undefined) context["sts:SourceIdentity"] = req.SourceIdentity;
    const evalReq: EvalRequest = { principal: caller, action: "sts:AssumeRole", resource: role.arn, context };
    // The trust policy must allow the caller, by naming it or its account (an Allow naming the
    // account then defers to the caller's IAM policies, which authorize() checks along with explicit
    // denies): an identity policy alone never makes a role assumable.
    const trusted = evaluatePolicy(trust, evalReq).effect === "Allow";
    const decision = authorize({
      req: evalReq,
      identityPolicies: this.account.iam.identityPolicies(caller),
      resourcePolicy: trust,
      resourceAccountId: this.account.accountId,
      mode: "default",
    });
    if (!trusted || !decision.allowed) throw denied();

    const chained = caller.type === "AssumedRole";
    const duration = req.DurationSeconds ?? 3600;
    if (chained && duration > CHAINED_MAX_SECONDS)
      throw new ServiceError(
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        400,
      );
    if (duration > role.maxSessionDuration)
      throw new ServiceError(
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        400,
      );

    const policyArns = this.sessionPolicyArns(req.PolicyArns);
    if (req.Policy !== undefined) this.checkSessionPolicy(req.Policy);

    this.prune();
    const session: SessionRecord = {
      accessKeyId: ids.unique("ASIA"),
      secretAccessKey: ids.secret(),
      sessionToken: sessionToken(),
      expiration: new Date(ctx.now.getTime() + duration * 1000).toISOString(),
      issuedAt: ctx.now.toISOString(),
      roleArn: role.arn,
      roleId: role.id,
      roleName: role.name,
      sessionName: req.RoleSessionName,
      ...(req.SourceIdentity !== undefined ? { sourceIdentity: req.SourceIdentity } : {}),
      ...(req.Policy !== undefined ? { policy: req.Policy } : {}),
      ...(policyArns.length > 0 ? { policyArns } : {}),
    };
    this.state.sessions[session.accessKeyId] = session;
    const principal = this.sessionPrincipal(session);
    return {
      Credentials: {
        AccessKeyId: session.accessKeyId,
        SecretAccessKey: session.secretAccessKey,
        SessionToken: session.sessionToken,
        Expiration: new Date(session.expiration),
      },
      AssumedRoleUser: { AssumedRoleId: principal.userId, Arn: principal.arn },
      SourceIdentity: req.SourceIdentity,
    };
  }

  /**
   * The managed session policies' ARNs: each must be a managed policy that exists, in the role's
   * account or AWS's. AWS's answer to one that does not exist is unconfirmed; the simulator refuses
   * it (400 MalformedPolicyDocument) rather than make a session AWS might not.
   */
  private sessionPolicyArns(list: { arn?: string }[] | undefined): string[] {
    const arns = (list ?? []).map((p) => p.arn ?? "");
    if (arns.length > 10)
      throw new ServiceError(
        "ValidationError",
        "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10",
        400,
      );
    for (const arn of arns)
      if (this.account.iam.managedPolicyDocument(arn) === undefined)
        throw new ServiceError(
          "MalformedPolicyDocument",
          `Policy ${arn} does not exist or is not attachable.`,
          400,
        );
    return arns;
  }

  /**
   * An inline session policy is an identity policy (no Principal). The STS model names the error
   * (MalformedPolicyDocument, 400); the message is the policy engine's reason, AWS's own unconfirmed.
   */
  private checkSessionPolicy(text: string): void {
    try {
      parsePolicy(text, "identity");
    } catch (err) {
      if (err instanceof PolicyError) throw new ServiceError("MalformedPolicyDocument", err.message, 400);
      throw err;
    }
  }

  /**
   * The session policies as they stand now: the inline one, and the managed ones' default versions
   * (a managed policy deleted since grants nothing). Undefined for a session made without any.
   */
  private sessionPolicies(s: SessionRecord): string[] | undefined {
    if (s.policy === undefined && s.policyArns === undefined) return undefined;
    const out = s.policy !== undefined ? [s.policy] : [];
    for (const arn of s.policyArns ?? []) {
      const text = this.account.iam.managedPolicyDocument(arn);
      if (text !== undefined) out.push(text);
    }
    return out;
  }

  private sessionPrincipal(s: SessionRecord): Principal {
    const acct = this.account.accountId;
    return {
      type: "AssumedRole",
      arn: `arn:aws:sts::${acct}:assumed-role/${s.roleName}/${s.sessionName}`,
      accountId: acct,
      userId: `${s.roleId}:${s.sessionName}`,
      accessKeyId: s.accessKeyId,
      roleArn: s.roleArn,
      roleId: s.roleId,
      roleName: s.roleName,
      sessionName: s.sessionName,
      sessionIssuedAt: s.issuedAt,
      sessionPolicies: this.sessionPolicies(s),
    };
  }

  private prune(): void {
    const cutoff = this.account.now().getTime() - EXPIRED_RETENTION_MS;
    for (const [id, s] of Object.entries(this.state.sessions))
      if (Date.parse(s.expiration) < cutoff) delete this.state.sessions[id];
  }
}

/** Opaque, long and base64 like AWS's tokens; it identifies nothing by itself (the access key does). */
function sessionToken(): string {
  return "IQoJb3JpZ2luX2VjE" + randomBytes(300).toString("base64");
}
