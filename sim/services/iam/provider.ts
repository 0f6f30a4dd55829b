import { type Account, ids } from "../../account.js";
import { ServiceError } from "../../core/errors.js";
import { type CallContext, globalContextKeys, type ServiceProvider } from "../../core/service.js";
import type { ContextKeys, Principal } from "../../core/types.js";
import { bool, int, str, validate } from "../../core/validate.js";
import {
  identityDenial,
  type Policy,
  PolicyError,
  parsePolicy,
  policyPrincipals,
} from "../../policy/index.js";
import {
  type AccessKeyRecord,
  AWS_MANAGED,
  accessKeyId,
  arn,
  byName,
  checkName,
  checkPath,
  checkTags,
  description,
  emptyIamState,
  encodeDocument,
  existingUserName,
  type IamState,
  type ManagedPolicyRecord,
  marker,
  maxItems,
  mergeTags,
  own,
  paginate,
  path,
  pathPrefix,
  policyDocument,
  policyName,
  put,
  type RoleRecord,
  removeTags,
  roleName,
  type Tag,
  tagKeys,
  tags,
  type UserRecord,
  userName,
} from "./model.js";

type Kind = "identity" | "trust";

const ADMIN_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }],
});

const MAX_ACCESS_KEYS = 2;
const MAX_MANAGED_PER_ENTITY = 10;

interface Paging {
  Marker?: string;
  MaxItems?: number;
}

/**
 * IAM: roles, users, inline and managed policies, tags and access keys; and, for the rest of the
 * simulator, the answers to "which policies apply to this caller", "who holds this access key" and
 * "does this principal exist yet" (new principals propagate after `propagationDelayMs`, as IAM's
 * eventual consistency makes them on AWS).
 *
 * Every operation is authorised against the caller's identity policies with action `iam:<Op>`.
 * Deliberate simplifications: no groups, instance profiles, login profiles, permissions boundaries
 * (accepted, not enforced) or policy versions beyond v1.
 */
export class IamService implements ServiceProvider {
  readonly service = "iam";
  readonly protocol = "awsQuery" as const;
  readonly eventSource = "iam.amazonaws.com";
  readonly apiVersion = "2010-05-08";
  readonly xmlNamespace = "https://iam.amazonaws.com/doc/2010-05-08/";
  readonly operations = {
    CreateRole: { readOnly: false },
    GetRole: { readOnly: true },
    DeleteRole: { readOnly: false },
    ListRoles: { readOnly: true },
    UpdateAssumeRolePolicy: { readOnly: false },
    PutRolePolicy: { readOnly: false },
    GetRolePolicy: { readOnly: true },
    DeleteRolePolicy: { readOnly: false },
    ListRolePolicies: { readOnly: true },
    AttachRolePolicy: { readOnly: false },
    DetachRolePolicy: { readOnly: false },
    ListAttachedRolePolicies: { readOnly: true },
    TagRole: { readOnly: false },
    UntagRole: { readOnly: false },
    ListRoleTags: { readOnly: true },
    CreatePolicy: { readOnly: false },
    GetPolicy: { readOnly: true },
    GetPolicyVersion: { readOnly: true },
    ListPolicyVersions: { readOnly: true },
    DeletePolicy: { readOnly: false },
    ListPolicies: { readOnly: true },
    CreateUser: { readOnly: false },
    GetUser: { readOnly: true },
    DeleteUser: { readOnly: false },
    ListUsers: { readOnly: true },
    TagUser: { readOnly: false },
    UntagUser: { readOnly: false },
    ListUserTags: { readOnly: true },
    PutUserPolicy: { readOnly: false },
    GetUserPolicy: { readOnly: true },
    DeleteUserPolicy: { readOnly: false },
    ListUserPolicies: { readOnly: true },
    AttachUserPolicy: { readOnly: false },
    DetachUserPolicy: { readOnly: false },
    ListAttachedUserPolicies: { readOnly: true },
    CreateAccessKey: { readOnly: false },
    DeleteAccessKey: { readOnly: false },
    ListAccessKeys: { readOnly: true },
    UpdateAccessKey: { readOnly: false },
  } as const;

  readonly state: IamState;
  private readonly principals = new Map<string, { user: UserRecord; principal: Principal }>();
  /**
   * Where a user or role was last found by its unique id, and a user by an access key id: every
   * request looks its caller up twice or more. A hint only, checked on use (entities are deleted and
   * created again); a miss searches the table and remembers what it found.
   */
  private readonly userById = new Map<string, string>();
  private readonly roleById = new Map<string, string>();
  private readonly userByKey = new Map<string, string>();

  constructor(
    private readonly account: Account,
    state?: IamState,
  ) {
    this.state = state ?? emptyIamState();
  }

  // ---------------------------------------------------------------------------------------------
  // For the rest of the simulator

  /** The account's first user: full access through an inline policy, and one active access key. */
  bootstrapAdmin(name: string): void {
    const now = this.account.now().toISOString();
    const user: UserRecord = {
      name,
      id: ids.unique("AIDA"),
      path: "/",
      arn: this.arnOf("user", "/", name),
      createDate: now,
      tags: [],
      inline: { AdministratorAccess: ADMIN_POLICY },
      attached: [],
      accessKeys: [
        { accessKeyId: ids.unique("AKIA"), secretAccessKey: ids.secret(), status: "Active", createDate: now },
      ],
      propagated: true,
    };
    put(this.state.users, name.toLowerCase(), user);
  }

  /** The admin user's first access key. */
  adminCredentials(): { accessKeyId: string; secretAccessKey: string } {
    const key = own(this.state.users, this.account.adminUserName.toLowerCase())?.accessKeys[0];
    if (!key) throw new Error(`the account has no admin access key (user ${this.account.adminUserName})`);
    return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  }

  /**
   * An access key of the account's root user, made on first use: tests and demonstrations use it to
   * call as root, which AWS allows but advises against (and which the lab cannot complete: AWS does
   * not let the root user assume a role).
   * https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_add-key.html
   */
  rootCredentials(): { accessKeyId: string; secretAccessKey: string } {
    this.state.rootAccessKeys ??= [];
    let key = this.state.rootAccessKeys.find((k) => k.status === "Active");
    if (!key) {
      key = {
        accessKeyId: ids.unique("AKIA"),
        secretAccessKey: ids.secret(),
        status: "Active",
        createDate: this.account.now().toISOString(),
      };
      this.state.rootAccessKeys.push(key);
      this.account.changed();
    }
    return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  }

  /** A long-term access key and the user (or the account's root user) it authenticates as. */
  findAccessKey(id: string): { secretAccessKey: string; active: boolean; principal: Principal } | undefined {
    const root = this.state.rootAccessKeys?.find((k) => k.accessKeyId === id);
    if (root) {
      const acct = this.account.accountId;
      return {
        secretAccessKey: root.secretAccessKey,
        active: root.status === "Active",
        principal: {
          type: "Root",
          arn: `arn:aws:iam::${acct}:root`,
          accountId: acct,
          userId: acct,
          accessKeyId: id,
        },
      };
    }
    const keyOf = (user: UserRecord | undefined) => user?.accessKeys.find((k) => k.accessKeyId === id);
    const hinted = this.userByKey.get(id);
    let user = hinted === undefined ? undefined : own(this.state.users, hinted);
    let key = keyOf(user);
    if (!key) {
      for (const [name, candidate] of Object.entries(this.state.users)) {
        key = keyOf(candidate);
        if (key) {
          this.userByKey.set(id, name);
          user = candidate;
          break;
        }
      }
    }
    if (!user || !key) return undefined;
    return {
      secretAccessKey: key.secretAccessKey,
      active: key.status === "Active",
      principal: this.keyPrincipal(user, id),
    };
  }

  /** A user or role by unique id (a hint first, see userById). */
  private byId<T extends { id: string }>(
    table: Record<string, T>,
    hints: Map<string, string>,
    id: string,
  ): T | undefined {
    const hinted = hints.get(id);
    const hit = hinted === undefined ? undefined : own(table, hinted);
    if (hit?.id === id) return hit;
    for (const [name, entity] of Object.entries(table))
      if (entity.id === id) {
        hints.set(id, name);
        return entity;
      }
    return undefined;
  }

  /** The policies IAM evaluates for a caller: a user's or a session's role's inline and attached policies. */
  identityPolicies(principal: Principal): Policy[] {
    let entity: RoleRecord | UserRecord | undefined;
    if (principal.type === "IAMUser") {
      entity = this.byId(this.state.users, this.userById, principal.userId);
    } else if (principal.type === "AssumedRole" && principal.roleId !== undefined) {
      // By id: a session of a deleted role keeps no permissions, even if a role of that name is created again.
      entity = this.byId(this.state.roles, this.roleById, principal.roleId);
    }
    if (!entity) return [];
    const texts = [...Object.values(entity.inline)];
    for (const policyArn of entity.attached) {
      const document = this.managedPolicyDocument(policyArn);
      if (document !== undefined) texts.push(document);
    }
    const out: Policy[] = [];
    for (const text of texts) {
      const policy = this.storedPolicy(text, "identity");
      if (policy) out.push(policy);
    }
    return out;
  }

  /**
   * A principal ARN named in a key, bucket or trust policy: its unique id if it exists and has
   * propagated; the account root (ARN or bare id) resolves to the account id. A session ARN
   * (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`) resolves to itself while its role exists,
   * as policies keep session ARNs as written.
   */
  resolvePrincipal(principalArn: string): { uniqueId: string } | undefined {
    const acct = this.account.accountId;
    if (principalArn === acct || principalArn === `arn:aws:iam::${acct}:root`) return { uniqueId: acct };
    const session = new RegExp(`^arn:aws:sts::${acct}:assumed-role/([^/]+)/[^/]+$`).exec(principalArn);
    if (session) {
      const role = own(this.state.roles, session[1]!.toLowerCase());
      return role && this.isPropagated(role) ? { uniqueId: principalArn } : undefined;
    }
    const entity =
      Object.values(this.state.roles).find((r) => r.arn === principalArn) ??
      Object.values(this.state.users).find((u) => u.arn === principalArn);
    return entity && this.isPropagated(entity) ? { uniqueId: entity.id } : undefined;
  }

  /**
   * The AWS principals a key, bucket or trust policy names, checked as AWS checks them when the
   * policy is stored (aws-subset §1.4, §2.2, §4): `*` and accounts (an id or a root ARN) always
   * pass; a user, role or role session of this account must exist and have propagated, named by its
   * exact ARN — a role's path included — and a unique id (what a policy shows once its principal
   * was deleted) must still be an entity's. `unknown` lists the names that fail; `foreign`, the
   * other accounts' users, roles and sessions, which cannot be looked up here (each service says
   * what it makes of them); `uniqueIds`, what each name of this account's users and roles resolves
   * to (KMS keeps it, for when the principal is deleted).
   */
  checkPrincipals(policy: Policy): {
    unknown: string[];
    foreign: string[];
    uniqueIds: Record<string, string>;
  } {
    const acct = this.account.accountId;
    const out = { unknown: [] as string[], foreign: [] as string[], uniqueIds: {} as Record<string, string> };
    for (const name of policyPrincipals(policy)) {
      if (name === "*" || /^\d{12}$/.test(name) || /^arn:aws[a-z-]*:iam::\d{12}:root$/.test(name)) continue;
      const arn = /^arn:aws[a-z-]*:(iam|sts)::(\d{12}):/.exec(name);
      if (arn && arn[2] !== acct) out.foreign.push(name);
      else if (arn) {
        const resolved = this.resolvePrincipal(name);
        if (!resolved) out.unknown.push(name);
        else if (arn[1] === "iam") out.uniqueIds[name] = resolved.uniqueId;
      } else if (this.arnForUniqueId(name) === undefined) out.unknown.push(name);
    }
    return out;
  }

  /** The current ARN of a role or user by unique id (or the root for the account id); undefined once deleted. */
  arnForUniqueId(id: string): string | undefined {
    if (id === this.account.accountId) return `arn:aws:iam::${id}:root`;
    return (
      Object.values(this.state.roles).find((r) => r.id === id)?.arn ??
      Object.values(this.state.users).find((u) => u.id === id)?.arn
    );
  }

  /** A role's ARN (its path included) by name; undefined if there is no such role. */
  roleArn(name: string): string | undefined {
    return own(this.state.roles, name.toLowerCase())?.arn;
  }

  /** A managed policy's default version (an account's or AWS's), by ARN; undefined if there is none. */
  managedPolicyDocument(policyArn: string): string | undefined {
    const policy = this.managedPolicy(policyArn);
    return policy?.versions.find((v) => v.versionId === policy.defaultVersionId)?.document;
  }

  /** A role by ARN for STS: only once it has propagated (a new role is not assumable at once). */
  assumableRole(roleArn: string): RoleRecord | undefined {
    const role = Object.values(this.state.roles).find((r) => r.arn === roleArn);
    return role && this.isPropagated(role) ? role : undefined;
  }

  /**
   * A stored document as a Policy (the engine caches parses by text); undefined if it no longer
   * parses, which cannot happen to documents this service accepted.
   */
  storedPolicy(text: string, kind: Kind): Policy | undefined {
    try {
      return parsePolicy(text, kind);
    } catch {
      return undefined;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Roles

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html
  CreateRole(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      RoleName: string;
      Path?: string;
      AssumeRolePolicyDocument: string;
      Description?: string;
      MaxSessionDuration?: number;
      PermissionsBoundary?: string;
      Tags?: Tag[];
    }>(
      input,
      {
        Path: path(),
        RoleName: roleName(),
        AssumeRolePolicyDocument: policyDocument(),
        Description: description(),
        MaxSessionDuration: int({ min: 3600, max: 43200 }),
        PermissionsBoundary: arn(false),
        Tags: tags(),
      },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    checkPath("path", req.Path);
    checkTags(req.Tags);
    const p = req.Path ?? "/";
    const roleArn = this.arnOf("role", p, req.RoleName);
    this.authorize(ctx, "CreateRole", roleArn, requestTagContext(req.Tags));
    if (own(this.state.roles, req.RoleName.toLowerCase()))
      throw new ServiceError("EntityAlreadyExists", `Role with name ${req.RoleName} already exists.`, 409);
    this.parseTrust(req.AssumeRolePolicyDocument);
    const role: RoleRecord = {
      name: req.RoleName,
      id: ids.unique("AROA"),
      path: p,
      arn: roleArn,
      createDate: ctx.now.toISOString(),
      trustPolicy: req.AssumeRolePolicyDocument,
      ...(req.Description !== undefined ? { description: req.Description } : {}),
      maxSessionDuration: req.MaxSessionDuration ?? 3600,
      tags: mergeTags([], req.Tags ?? []),
      inline: {},
      attached: [],
    };
    put(this.state.roles, role.name.toLowerCase(), role);
    return { Role: this.roleView(role, "full") };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html
  GetRole(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ RoleName: string }>(input, { RoleName: roleName() }, "ValidationError");
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "GetRole", req.RoleName);
    return { Role: this.roleView(role, "full") };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html
  DeleteRole(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ RoleName: string }>(input, { RoleName: roleName() }, "ValidationError");
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "DeleteRole", req.RoleName);
    if (role.attached.length > 0)
      throw new ServiceError("DeleteConflict", "Cannot delete entity, must detach all policies first.", 409);
    if (Object.keys(role.inline).length > 0)
      throw new ServiceError("DeleteConflict", "Cannot delete entity, must delete policies first.", 409);
    delete this.state.roles[role.name.toLowerCase()];
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListRoles.html
  ListRoles(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ PathPrefix?: string } & Paging>(
      input,
      { PathPrefix: pathPrefix(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    this.authorize(ctx, "ListRoles", `arn:aws:iam::${this.account.accountId}:role${req.PathPrefix ?? "/"}`);
    const roles = Object.values(this.state.roles)
      .filter((r) => r.path.startsWith(req.PathPrefix ?? "/"))
      .sort(byName);
    const page = paginate(roles, req.Marker, req.MaxItems);
    return {
      Roles: page.items.map((r) => this.roleView(r, "list")),
      IsTruncated: page.IsTruncated,
      Marker: page.Marker,
    };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_UpdateAssumeRolePolicy.html
  UpdateAssumeRolePolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ RoleName: string; PolicyDocument: string }>(
      input,
      { RoleName: roleName(), PolicyDocument: policyDocument() },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "UpdateAssumeRolePolicy", req.RoleName);
    this.parseTrust(req.PolicyDocument);
    role.trustPolicy = req.PolicyDocument;
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html
  PutRolePolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = this.inlineInput(input, "RoleName", true);
    const role = this.authorizedRole(ctx, "PutRolePolicy", req.RoleName);
    this.parseIdentity(req.PolicyDocument!);
    put(role.inline, req.PolicyName, req.PolicyDocument!);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRolePolicy.html
  GetRolePolicy(input: Record<string, unknown>, ctx: CallContext) {
    const req = this.inlineInput(input, "RoleName", false);
    const role = this.authorizedRole(ctx, "GetRolePolicy", req.RoleName);
    const doc = own(role.inline, req.PolicyName);
    if (doc === undefined) throw noSuchInline("role", req.PolicyName);
    return { RoleName: role.name, PolicyName: req.PolicyName, PolicyDocument: encodeDocument(doc) };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRolePolicy.html
  DeleteRolePolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = this.inlineInput(input, "RoleName", false);
    const role = this.authorizedRole(ctx, "DeleteRolePolicy", req.RoleName);
    if (own(role.inline, req.PolicyName) === undefined) throw noSuchInline("role", req.PolicyName);
    delete role.inline[req.PolicyName];
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListRolePolicies.html
  ListRolePolicies(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ RoleName: string } & Paging>(
      input,
      { RoleName: roleName(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "ListRolePolicies", req.RoleName);
    const page = paginate(Object.keys(role.inline).sort(), req.Marker, req.MaxItems);
    return { PolicyNames: page.items, IsTruncated: page.IsTruncated, Marker: page.Marker };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_AttachRolePolicy.html
  AttachRolePolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ RoleName: string; PolicyArn: string }>(
      input,
      { RoleName: roleName(), PolicyArn: arn() },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "AttachRolePolicy", req.RoleName);
    this.attach(role, req.PolicyArn, "PoliciesPerRole");
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DetachRolePolicy.html
  DetachRolePolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ RoleName: string; PolicyArn: string }>(
      input,
      { RoleName: roleName(), PolicyArn: arn() },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "DetachRolePolicy", req.RoleName);
    this.detach(role, req.PolicyArn);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListAttachedRolePolicies.html
  ListAttachedRolePolicies(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ RoleName: string; PathPrefix?: string } & Paging>(
      input,
      { RoleName: roleName(), PathPrefix: pathPrefix(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "ListAttachedRolePolicies", req.RoleName);
    return this.attachedView(role, req);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_TagRole.html
  TagRole(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ RoleName: string; Tags: Tag[] }>(
      input,
      { RoleName: roleName(), Tags: tags(true) },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    checkTags(req.Tags);
    const role = this.authorizedRole(ctx, "TagRole", req.RoleName, requestTagContext(req.Tags));
    role.tags = mergeTags(role.tags, req.Tags);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_UntagRole.html
  UntagRole(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ RoleName: string; TagKeys: string[] }>(
      input,
      { RoleName: roleName(), TagKeys: tagKeys() },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "UntagRole", req.RoleName, { "aws:TagKeys": req.TagKeys });
    role.tags = removeTags(role.tags, req.TagKeys);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListRoleTags.html
  ListRoleTags(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ RoleName: string } & Paging>(
      input,
      { RoleName: roleName(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    checkName("roleName", req.RoleName);
    const role = this.authorizedRole(ctx, "ListRoleTags", req.RoleName);
    const page = paginate(role.tags, req.Marker, req.MaxItems);
    return { Tags: page.items, IsTruncated: page.IsTruncated, Marker: page.Marker };
  }

  // ---------------------------------------------------------------------------------------------
  // Managed policies

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html
  CreatePolicy(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      PolicyName: string;
      Path?: string;
      PolicyDocument: string;
      Description?: string;
      Tags?: Tag[];
    }>(
      input,
      {
        PolicyName: policyName(),
        Path: str({ min: 1, max: 512, pattern: /((\/[A-Za-z0-9.,+@=_-]+)*)\//u }),
        PolicyDocument: policyDocument(),
        Description: description(),
        Tags: tags(),
      },
      "ValidationError",
    );
    checkName("policyName", req.PolicyName);
    checkTags(req.Tags);
    const p = req.Path ?? "/";
    const policyArn = this.arnOf("policy", p, req.PolicyName);
    this.authorize(ctx, "CreatePolicy", policyArn, requestTagContext(req.Tags));
    if (Object.values(this.state.policies).some((x) => x.name.toLowerCase() === req.PolicyName.toLowerCase()))
      throw new ServiceError(
        "EntityAlreadyExists",
        `A policy called ${req.PolicyName} already exists. Duplicate names are not allowed.`,
        409,
      );
    this.parseIdentity(req.PolicyDocument);
    const now = ctx.now.toISOString();
    const policy: ManagedPolicyRecord = {
      name: req.PolicyName,
      id: ids.unique("ANPA"),
      path: p,
      arn: policyArn,
      ...(req.Description !== undefined ? { description: req.Description } : {}),
      createDate: now,
      updateDate: now,
      defaultVersionId: "v1",
      versions: [{ versionId: "v1", document: req.PolicyDocument, createDate: now }],
      tags: mergeTags([], req.Tags ?? []),
    };
    put(this.state.policies, policy.arn, policy);
    return {
      Policy: { ...this.policyView(policy, false), Tags: policy.tags.length > 0 ? policy.tags : undefined },
    };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetPolicy.html
  GetPolicy(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ PolicyArn: string }>(input, { PolicyArn: arn() }, "ValidationError");
    this.authorize(ctx, "GetPolicy", req.PolicyArn);
    const policy = this.managedPolicyOrThrow(req.PolicyArn);
    return {
      Policy: { ...this.policyView(policy, true), Tags: policy.tags.length > 0 ? policy.tags : undefined },
    };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetPolicyVersion.html
  GetPolicyVersion(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ PolicyArn: string; VersionId: string }>(
      input,
      {
        PolicyArn: arn(),
        VersionId: str({
          required: true,
          pattern: /v[1-9][0-9]*(\.[A-Za-z0-9-]*)?/u,
        }),
      },
      "ValidationError",
    );
    this.authorize(ctx, "GetPolicyVersion", req.PolicyArn);
    const policy = this.managedPolicyOrThrow(req.PolicyArn);
    const version = policy.versions.find((v) => v.versionId === req.VersionId);
    if (!version)
      throw new ServiceError(
        "NoSuchEntity",
        `Policy ${req.PolicyArn} version ${req.VersionId} does not exist or is not attachable.`,
        404,
      );
    return {
      PolicyVersion: {
        Document: encodeDocument(version.document),
        VersionId: version.versionId,
        IsDefaultVersion: version.versionId === policy.defaultVersionId,
        CreateDate: new Date(version.createDate),
      },
    };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListPolicyVersions.html
  ListPolicyVersions(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ PolicyArn: string } & Paging>(
      input,
      { PolicyArn: arn(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    this.authorize(ctx, "ListPolicyVersions", req.PolicyArn);
    const policy = this.managedPolicyOrThrow(req.PolicyArn);
    const page = paginate(policy.versions, req.Marker, req.MaxItems);
    return {
      Versions: page.items.map((v) => ({
        VersionId: v.versionId,
        IsDefaultVersion: v.versionId === policy.defaultVersionId,
        CreateDate: new Date(v.createDate),
      })),
      IsTruncated: page.IsTruncated,
      Marker: page.Marker,
    };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeletePolicy.html
  DeletePolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ PolicyArn: string }>(input, { PolicyArn: arn() }, "ValidationError");
    this.authorize(ctx, "DeletePolicy", req.PolicyArn);
    const policy = this.managedPolicyOrThrow(req.PolicyArn);
    // Not confirmed from a recorded AWS response: the code and wording for deleting an AWS-managed policy.
    if (!own(this.state.policies, policy.arn))
      throw new ServiceError("UnmodifiableEntity", "Cannot delete policies outside your own account.", 400);
    if (this.attachmentCount(policy.arn) > 0)
      throw new ServiceError("DeleteConflict", "Cannot delete a policy attached to entities.", 409);
    delete this.state.policies[policy.arn];
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListPolicies.html
  ListPolicies(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<
      { Scope?: "All" | "AWS" | "Local"; OnlyAttached?: boolean; PathPrefix?: string } & Paging
    >(
      input,
      {
        Scope: str({ enum: ["All", "AWS", "Local"] }),
        OnlyAttached: bool(),
        PathPrefix: pathPrefix(),
        PolicyUsageFilter: str({ enum: ["PermissionsPolicy", "PermissionsBoundary"] }),
        Marker: marker(),
        MaxItems: maxItems(),
      },
      "ValidationError",
    );
    this.authorize(
      ctx,
      "ListPolicies",
      `arn:aws:iam::${this.account.accountId}:policy${req.PathPrefix ?? "/"}`,
    );
    const scope = req.Scope ?? "All";
    const all = [
      ...(scope === "Local" ? [] : AWS_MANAGED),
      ...(scope === "AWS" ? [] : Object.values(this.state.policies)),
    ]
      .filter((p) => p.path.startsWith(req.PathPrefix ?? "/"))
      .filter((p) => !req.OnlyAttached || this.attachmentCount(p.arn) > 0)
      .sort(byName);
    const page = paginate(all, req.Marker, req.MaxItems);
    return {
      Policies: page.items.map((p) => this.policyView(p, false)),
      IsTruncated: page.IsTruncated,
      Marker: page.Marker,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Users

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateUser.html
  CreateUser(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ UserName: string; Path?: string; PermissionsBoundary?: string; Tags?: Tag[] }>(
      input,
      { Path: path(), UserName: userName(), PermissionsBoundary: arn(false), Tags: tags() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    checkPath("path", req.Path);
    checkTags(req.Tags);
    const p = req.Path ?? "/";
    const userArn = this.arnOf("user", p, req.UserName);
    this.authorize(ctx, "CreateUser", userArn, requestTagContext(req.Tags));
    if (own(this.state.users, req.UserName.toLowerCase()))
      throw new ServiceError("EntityAlreadyExists", `User with name ${req.UserName} already exists.`, 409);
    const user: UserRecord = {
      name: req.UserName,
      id: ids.unique("AIDA"),
      path: p,
      arn: userArn,
      createDate: ctx.now.toISOString(),
      tags: mergeTags([], req.Tags ?? []),
      inline: {},
      attached: [],
      accessKeys: [],
    };
    put(this.state.users, user.name.toLowerCase(), user);
    return { User: this.userView(user, true) };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetUser.html
  GetUser(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ UserName?: string }>(
      input,
      { UserName: existingUserName(false) },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    if (req.UserName === undefined && ctx.principal.type === "Root") {
      // The root user answers for itself; it has no user record.
      return {
        User: {
          UserId: this.account.accountId,
          Arn: ctx.principal.arn,
          CreateDate: new Date(this.account.createdAt),
        },
      };
    }
    const user = this.authorizedUser(ctx, "GetUser", this.userNameOrCaller(req.UserName, ctx));
    return { User: this.userView(user, true) };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteUser.html
  DeleteUser(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ UserName: string }>(input, { UserName: existingUserName() }, "ValidationError");
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "DeleteUser", req.UserName);
    if (user.accessKeys.length > 0)
      throw new ServiceError("DeleteConflict", "Cannot delete entity, must delete access keys first.", 409);
    if (Object.keys(user.inline).length > 0)
      throw new ServiceError("DeleteConflict", "Cannot delete entity, must delete policies first.", 409);
    if (user.attached.length > 0)
      throw new ServiceError("DeleteConflict", "Cannot delete entity, must detach all policies first.", 409);
    delete this.state.users[user.name.toLowerCase()];
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUsers.html
  ListUsers(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ PathPrefix?: string } & Paging>(
      input,
      { PathPrefix: pathPrefix(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    this.authorize(ctx, "ListUsers", `arn:aws:iam::${this.account.accountId}:user${req.PathPrefix ?? "/"}`);
    const users = Object.values(this.state.users)
      .filter((u) => u.path.startsWith(req.PathPrefix ?? "/"))
      .sort(byName);
    const page = paginate(users, req.Marker, req.MaxItems);
    return {
      Users: page.items.map((u) => this.userView(u, false)),
      IsTruncated: page.IsTruncated,
      Marker: page.Marker,
    };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_TagUser.html
  TagUser(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ UserName: string; Tags: Tag[] }>(
      input,
      { UserName: existingUserName(), Tags: tags(true) },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    checkTags(req.Tags);
    const user = this.authorizedUser(ctx, "TagUser", req.UserName, requestTagContext(req.Tags));
    user.tags = mergeTags(user.tags, req.Tags);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_UntagUser.html
  UntagUser(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ UserName: string; TagKeys: string[] }>(
      input,
      { UserName: existingUserName(), TagKeys: tagKeys() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "UntagUser", req.UserName, { "aws:TagKeys": req.TagKeys });
    user.tags = removeTags(user.tags, req.TagKeys);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUserTags.html
  ListUserTags(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ UserName: string } & Paging>(
      input,
      { UserName: existingUserName(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "ListUserTags", req.UserName);
    const page = paginate(user.tags, req.Marker, req.MaxItems);
    return { Tags: page.items, IsTruncated: page.IsTruncated, Marker: page.Marker };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPolicy.html
  PutUserPolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = this.inlineInput(input, "UserName", true);
    const user = this.authorizedUser(ctx, "PutUserPolicy", req.UserName);
    this.parseIdentity(req.PolicyDocument!);
    put(user.inline, req.PolicyName, req.PolicyDocument!);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetUserPolicy.html
  GetUserPolicy(input: Record<string, unknown>, ctx: CallContext) {
    const req = this.inlineInput(input, "UserName", false);
    const user = this.authorizedUser(ctx, "GetUserPolicy", req.UserName);
    const doc = own(user.inline, req.PolicyName);
    if (doc === undefined) throw noSuchInline("user", req.PolicyName);
    return { UserName: user.name, PolicyName: req.PolicyName, PolicyDocument: encodeDocument(doc) };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteUserPolicy.html
  DeleteUserPolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = this.inlineInput(input, "UserName", false);
    const user = this.authorizedUser(ctx, "DeleteUserPolicy", req.UserName);
    if (own(user.inline, req.PolicyName) === undefined) throw noSuchInline("user", req.PolicyName);
    delete user.inline[req.PolicyName];
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUserPolicies.html
  ListUserPolicies(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ UserName: string } & Paging>(
      input,
      { UserName: existingUserName(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "ListUserPolicies", req.UserName);
    const page = paginate(Object.keys(user.inline).sort(), req.Marker, req.MaxItems);
    return { PolicyNames: page.items, IsTruncated: page.IsTruncated, Marker: page.Marker };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_AttachUserPolicy.html
  AttachUserPolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ UserName: string; PolicyArn: string }>(
      input,
      { UserName: userName(), PolicyArn: arn() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "AttachUserPolicy", req.UserName);
    this.attach(user, req.PolicyArn, "PoliciesPerUser");
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DetachUserPolicy.html
  DetachUserPolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ UserName: string; PolicyArn: string }>(
      input,
      { UserName: userName(), PolicyArn: arn() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "DetachUserPolicy", req.UserName);
    this.detach(user, req.PolicyArn);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListAttachedUserPolicies.html
  ListAttachedUserPolicies(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ UserName: string; PathPrefix?: string } & Paging>(
      input,
      { UserName: userName(), PathPrefix: pathPrefix(), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "ListAttachedUserPolicies", req.UserName);
    return this.attachedView(user, req);
  }

  // ---------------------------------------------------------------------------------------------
  // Access keys

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateAccessKey.html
  CreateAccessKey(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ UserName?: string }>(
      input,
      { UserName: existingUserName(false) },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "CreateAccessKey", this.userNameOrCaller(req.UserName, ctx));
    if (user.accessKeys.length >= MAX_ACCESS_KEYS)
      throw new ServiceError(
        "LimitExceeded",
        `Cannot exceed quota for AccessKeysPerUser: ${MAX_ACCESS_KEYS}`,
        409,
      );
    const key: AccessKeyRecord = {
      accessKeyId: ids.unique("AKIA"),
      secretAccessKey: ids.secret(),
      status: "Active",
      createDate: ctx.now.toISOString(),
    };
    user.accessKeys.push(key);
    return {
      AccessKey: {
        UserName: user.name,
        AccessKeyId: key.accessKeyId,
        Status: key.status,
        SecretAccessKey: key.secretAccessKey,
        CreateDate: new Date(key.createDate),
      },
    };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteAccessKey.html
  DeleteAccessKey(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ UserName?: string; AccessKeyId: string }>(
      input,
      { UserName: existingUserName(false), AccessKeyId: accessKeyId() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "DeleteAccessKey", this.userNameOrCaller(req.UserName, ctx));
    const index = user.accessKeys.findIndex((k) => k.accessKeyId === req.AccessKeyId);
    if (index < 0) throw noSuchAccessKey(req.AccessKeyId);
    user.accessKeys.splice(index, 1);
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListAccessKeys.html
  ListAccessKeys(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ UserName?: string } & Paging>(
      input,
      { UserName: existingUserName(false), Marker: marker(), MaxItems: maxItems() },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "ListAccessKeys", this.userNameOrCaller(req.UserName, ctx));
    const page = paginate(user.accessKeys, req.Marker, req.MaxItems);
    return {
      AccessKeyMetadata: page.items.map((k) => ({
        UserName: user.name,
        AccessKeyId: k.accessKeyId,
        Status: k.status,
        CreateDate: new Date(k.createDate),
      })),
      IsTruncated: page.IsTruncated,
      Marker: page.Marker,
    };
  }

  // https://docs.aws.amazon.com/IAM/latest/APIReference/API_UpdateAccessKey.html
  UpdateAccessKey(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ UserName?: string; AccessKeyId: string; Status: "Active" | "Inactive" }>(
      input,
      {
        UserName: existingUserName(false),
        AccessKeyId: accessKeyId(),
        Status: str({ required: true, enum: ["Active", "Inactive", "Expired"] }),
      },
      "ValidationError",
    );
    checkName("userName", req.UserName);
    const user = this.authorizedUser(ctx, "UpdateAccessKey", this.userNameOrCaller(req.UserName, ctx));
    const key = user.accessKeys.find((k) => k.accessKeyId === req.AccessKeyId);
    if (!key) throw noSuchAccessKey(req.AccessKeyId);
    if ((req.Status as string) === "Expired")
      throw new ServiceError("InvalidInput", "Access keys cannot be set to the Expired status.", 400);
    key.status = req.Status;
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private arnOf(kind: "role" | "user" | "policy", p: string, name: string): string {
    return `arn:aws:iam::${this.account.accountId}:${kind}${p}${name}`;
  }

  private isPropagated(entity: { createDate: string; propagated?: true }): boolean {
    if (entity.propagated) return true;
    const age = this.account.now().getTime() - Date.parse(entity.createDate);
    return age >= this.account.options.propagationDelayMs;
  }

  /**
   * The principal a user's access key signs as: one frozen object per key, shared by its requests
   * (CloudTrail keeps the principal of every event it records).
   */
  private keyPrincipal(user: UserRecord, accessKeyId: string): Principal {
    const hit = this.principals.get(accessKeyId);
    if (hit?.user === user) return hit.principal;
    const principal = Object.freeze({ ...this.userPrincipal(user), accessKeyId });
    this.principals.set(accessKeyId, { user, principal });
    return principal;
  }

  private userPrincipal(user: UserRecord): Principal {
    return {
      type: "IAMUser",
      arn: user.arn,
      accountId: this.account.accountId,
      userId: user.id,
      userName: user.name,
    };
  }

  /** Throws AWS's AccessDenied unless the caller's identity policies allow `iam:<op>` on `resource`. */
  private authorize(ctx: CallContext, op: string, resource: string, extra: ContextKeys = {}): void {
    const action = `iam:${op}`;
    const denial = identityDenial(
      { principal: ctx.principal, action, resource, context: Object.assign(globalContextKeys(ctx), extra) },
      this.identityPolicies(ctx.principal),
      this.account.accountId,
    );
    if (denial) throw new ServiceError("AccessDenied", denial, 403);
  }

  /** Authorises `op` on the named role (its ARN, or the ARN it would have), then finds it. */
  private authorizedRole(ctx: CallContext, op: string, name: string, extra: ContextKeys = {}): RoleRecord {
    const role = own(this.state.roles, name.toLowerCase());
    this.authorize(ctx, op, role?.arn ?? this.arnOf("role", "/", name), {
      ...resourceTagContext(role?.tags),
      ...extra,
    });
    if (!role) throw new ServiceError("NoSuchEntity", `The role with name ${name} cannot be found.`, 404);
    return role;
  }

  private authorizedUser(ctx: CallContext, op: string, name: string, extra: ContextKeys = {}): UserRecord {
    const user = own(this.state.users, name.toLowerCase());
    this.authorize(ctx, op, user?.arn ?? this.arnOf("user", "/", name), {
      ...resourceTagContext(user?.tags),
      ...extra,
    });
    if (!user) throw new ServiceError("NoSuchEntity", `The user with name ${name} cannot be found.`, 404);
    return user;
  }

  /** Operations whose UserName is optional act on the calling user; other callers must name one. */
  private userNameOrCaller(name: string | undefined, ctx: CallContext): string {
    if (name !== undefined) return name;
    if (ctx.principal.type === "IAMUser" && ctx.principal.userName) return ctx.principal.userName;
    throw new ServiceError(
      "ValidationError",
      "Must specify userName when calling with non-User credentials",
      400,
    );
  }

  private inlineInput(
    input: Record<string, unknown>,
    nameKey: "RoleName" | "UserName",
    withDocument: boolean,
  ) {
    const req = validate<{
      RoleName?: string;
      UserName?: string;
      PolicyName: string;
      PolicyDocument?: string;
    }>(
      input,
      {
        [nameKey]: nameKey === "RoleName" ? roleName() : existingUserName(),
        PolicyName: policyName(),
        ...(withDocument ? { PolicyDocument: policyDocument() } : {}),
      },
      "ValidationError",
    );
    const name = (nameKey === "RoleName" ? req.RoleName : req.UserName)!;
    checkName(nameKey === "RoleName" ? "roleName" : "userName", name);
    checkName("policyName", req.PolicyName);
    return { ...req, RoleName: name, UserName: name };
  }

  private parseIdentity(text: string): Policy {
    try {
      return parsePolicy(text, "identity");
    } catch (err) {
      malformed(err);
    }
  }

  /**
   * A trust policy must parse, and every principal of this account it names must exist (and have
   * propagated): AWS refuses `Invalid principal in policy` otherwise. Other accounts' principals
   * cannot be checked here and are accepted.
   */
  private parseTrust(text: string): Policy {
    let policy: Policy;
    try {
      policy = parsePolicy(text, "trust");
    } catch (err) {
      malformed(err);
    }
    const [unknown] = this.checkPrincipals(policy).unknown;
    if (unknown !== undefined)
      throw new ServiceError(
        "MalformedPolicyDocument",
        `Invalid principal in policy: "AWS":"${unknown}"`,
        400,
      );
    return policy;
  }

  private managedPolicy(policyArn: string): ManagedPolicyRecord | undefined {
    return own(this.state.policies, policyArn) ?? AWS_MANAGED.find((p) => p.arn === policyArn);
  }

  private managedPolicyOrThrow(policyArn: string): ManagedPolicyRecord {
    const policy = this.managedPolicy(policyArn);
    if (!policy) throw new ServiceError("NoSuchEntity", `Policy ${policyArn} was not found.`, 404);
    return policy;
  }

  private attachmentCount(policyArn: string): number {
    let n = 0;
    for (const e of [...Object.values(this.state.roles), ...Object.values(this.state.users)])
      if (e.attached.includes(policyArn)) n++;
    return n;
  }

  private attach(entity: RoleRecord | UserRecord, policyArn: string, quota: string): void {
    if (!this.managedPolicy(policyArn))
      throw new ServiceError("NoSuchEntity", `Policy ${policyArn} does not exist or is not attachable.`, 404);
    if (entity.attached.includes(policyArn)) return;
    if (entity.attached.length >= MAX_MANAGED_PER_ENTITY)
      throw new ServiceError(
        "LimitExceeded",
        `Cannot exceed quota for ${quota}: ${MAX_MANAGED_PER_ENTITY}`,
        409,
      );
    entity.attached.push(policyArn);
  }

  private detach(entity: RoleRecord | UserRecord, policyArn: string): void {
    const index = entity.attached.indexOf(policyArn);
    if (index < 0) throw new ServiceError("NoSuchEntity", `Policy ${policyArn} was not found.`, 404);
    entity.attached.splice(index, 1);
  }

  private attachedView(entity: RoleRecord | UserRecord, req: { PathPrefix?: string } & Paging) {
    const attached = entity.attached.flatMap((a) => {
      const policy = this.managedPolicy(a);
      return policy?.path.startsWith(req.PathPrefix ?? "/") ? [policy] : [];
    });
    const page = paginate(attached, req.Marker, req.MaxItems);
    return {
      AttachedPolicies: page.items.map((p) => ({ PolicyName: p.name, PolicyArn: p.arn })),
      IsTruncated: page.IsTruncated,
      Marker: page.Marker,
    };
  }

  /** `full` (CreateRole, GetRole) adds tags and last use; ListRoles leaves them out, as AWS does. */
  private roleView(role: RoleRecord, detail: "full" | "list") {
    return {
      Path: role.path,
      RoleName: role.name,
      RoleId: role.id,
      Arn: role.arn,
      CreateDate: new Date(role.createDate),
      AssumeRolePolicyDocument: encodeDocument(role.trustPolicy),
      Description: role.description,
      MaxSessionDuration: role.maxSessionDuration,
      Tags: detail === "full" && role.tags.length > 0 ? role.tags : undefined,
      RoleLastUsed: detail === "full" ? {} : undefined,
    };
  }

  private userView(user: UserRecord, withTags: boolean) {
    return {
      Path: user.path,
      UserName: user.name,
      UserId: user.id,
      Arn: user.arn,
      CreateDate: new Date(user.createDate),
      Tags: withTags && user.tags.length > 0 ? user.tags : undefined,
    };
  }

  private policyView(policy: ManagedPolicyRecord, withDescription: boolean) {
    return {
      PolicyName: policy.name,
      PolicyId: policy.id,
      Arn: policy.arn,
      Path: policy.path,
      DefaultVersionId: policy.defaultVersionId,
      AttachmentCount: this.attachmentCount(policy.arn),
      PermissionsBoundaryUsageCount: 0,
      IsAttachable: true,
      Description: withDescription ? policy.description : undefined,
      CreateDate: new Date(policy.createDate),
      UpdateDate: new Date(policy.updateDate),
    };
  }
}

/** A policy the engine refuses is MalformedPolicyDocument, with the engine's reason as the message. */
function malformed(err: unknown): never {
  if (err instanceof PolicyError) throw new ServiceError("MalformedPolicyDocument", err.message, 400);
  throw err;
}

function noSuchInline(kind: "role" | "user", name: string): ServiceError {
  return new ServiceError("NoSuchEntity", `The ${kind} policy with name ${name} cannot be found.`, 404);
}

function noSuchAccessKey(id: string): ServiceError {
  return new ServiceError("NoSuchEntity", `The Access Key with id ${id} cannot be found.`, 404);
}

/** `aws:RequestTag/<key>` and `aws:TagKeys` for operations that set tags. */
function requestTagContext(list: Tag[] | undefined): ContextKeys {
  if (!list || list.length === 0) return {};
  const out: ContextKeys = { "aws:TagKeys": list.map((t) => t.Key) };
  for (const t of list) out[`aws:RequestTag/${t.Key}`] = t.Value;
  return out;
}

/** `aws:ResourceTag/<key>` (and the IAM-specific `iam:ResourceTag/<key>`) for operations on a tagged entity. */
function resourceTagContext(list: Tag[] | undefined): ContextKeys {
  const out: ContextKeys = {};
  for (const t of list ?? []) {
    out[`aws:ResourceTag/${t.Key}`] = t.Value;
    out[`iam:ResourceTag/${t.Key}`] = t.Value;
  }
  return out;
}
