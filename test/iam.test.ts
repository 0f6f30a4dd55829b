import {
  AttachRolePolicyCommand,
  CreateAccessKeyCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListRolesCommand,
  ListRoleTagsCommand,
  PutRolePolicyCommand,
  TagRoleCommand,
} from "@aws-sdk/client-iam";
import { describe, expect, it } from "vitest";
import { Account, type AccountOptions, PROFILES } from "../sim/account.js";
import type { CallContext } from "../sim/core/service.js";
import type { Principal } from "../sim/core/types.js";
import { Simulator } from "../sim/simulator.js";
import { failure, thrown } from "./helpers/errors.js";

const TRUST_ACCOUNT = (acct: string) =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: "sts:AssumeRole" },
    ],
  });
const ALLOW = (action: string, resource = "*") =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: action, Resource: resource }],
  });

function setup(options?: AccountOptions, clock?: () => Date) {
  const account = Account.create(options, clock);
  const iam = account.iam;
  const admin = iam.findAccessKey(iam.adminCredentials().accessKeyId)!.principal;
  const ctx = (principal: Principal = admin): CallContext => ({
    accountId: account.accountId,
    region: "us-east-1",
    requestId: "req",
    principal,
    now: account.now(),
    sourceIp: "127.0.0.1",
    userAgent: "test",
    secureTransport: true,
  });
  return { account, iam, admin, ctx, acct: account.accountId };
}

function expectError(fn: () => unknown, code: string, status: number, message: string | RegExp) {
  const err = thrown(fn);
  expect({ code: err.code, status: err.status }).toEqual({ code, status });
  if (typeof message === "string") expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
}

describe("IAM provider", () => {
  it("bootstraps an admin user with full access and one access key", () => {
    const { iam, admin, acct, ctx } = setup();
    const creds = iam.adminCredentials();
    expect(creds.accessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
    expect(creds.secretAccessKey).toHaveLength(40);
    expect(admin).toMatchObject({
      type: "IAMUser",
      arn: `arn:aws:iam::${acct}:user/admin`,
      userName: "admin",
    });
    expect(admin.userId).toMatch(/^AIDA/);
    const policy = iam.GetUserPolicy({ UserName: "admin", PolicyName: "AdministratorAccess" }, ctx());
    expect(JSON.parse(decodeURIComponent(policy.PolicyDocument))).toMatchObject({
      Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }],
    });
    expect(iam.ListAccessKeys({}, ctx()).AccessKeyMetadata).toEqual([
      expect.objectContaining({ UserName: "admin", AccessKeyId: creds.accessKeyId, Status: "Active" }),
    ]);
    expect(iam.identityPolicies(admin)).toHaveLength(1);
  });

  it("creates a role with AWS's ids, ARN (with path) and URL-encoded trust policy", () => {
    const { iam, acct, ctx } = setup();
    const doc = TRUST_ACCOUNT(acct).replace("{", "{ ");
    const { Role } = iam.CreateRole(
      {
        RoleName: "app-role",
        Path: "/team/",
        AssumeRolePolicyDocument: doc,
        Tags: [{ Key: "k", Value: "v" }],
      },
      ctx(),
    );
    expect(Role.RoleId).toMatch(/^AROA[A-Z2-7]{17}$/);
    expect(Role.Arn).toBe(`arn:aws:iam::${acct}:role/team/app-role`);
    expect(Role.MaxSessionDuration).toBe(3600);
    expect(Role.AssumeRolePolicyDocument).toBe(encodeURIComponent(doc));
    expect(decodeURIComponent(Role.AssumeRolePolicyDocument)).toBe(doc);
    expect(Role.Tags).toEqual([{ Key: "k", Value: "v" }]);
    expect(iam.GetRole({ RoleName: "APP-ROLE" }, ctx()).Role.RoleId).toBe(Role.RoleId);
    expect(iam.resolvePrincipal(Role.Arn)).toEqual({ uniqueId: Role.RoleId });
    expect(iam.resolvePrincipal(`arn:aws:iam::${acct}:root`)).toEqual({ uniqueId: acct });
    expect(iam.arnForUniqueId(Role.RoleId)).toBe(Role.Arn);
  });

  it("answers CreateRole/GetRole errors in AWS's words", () => {
    const { iam, acct, ctx } = setup();
    const doc = TRUST_ACCOUNT(acct);
    iam.CreateRole({ RoleName: "r1", AssumeRolePolicyDocument: doc }, ctx());
    expectError(
      () => iam.CreateRole({ RoleName: "R1", AssumeRolePolicyDocument: doc }, ctx()),
      "EntityAlreadyExists",
      409,
      "Role with name R1 already exists.",
    );
    expectError(
      () => iam.GetRole({ RoleName: "nope" }, ctx()),
      "NoSuchEntity",
      404,
      "The role with name nope cannot be found.",
    );
    expectError(
      () => iam.CreateRole({ RoleName: "x".repeat(65), AssumeRolePolicyDocument: doc }, ctx()),
      "ValidationError",
      400,
      `1 validation error detected: Value '${"x".repeat(65)}' at 'roleName' failed to satisfy constraint: Member must have length less than or equal to 64`,
    );
    expectError(
      () => iam.CreateRole({ RoleName: "bad name!", AssumeRolePolicyDocument: doc }, ctx()),
      "ValidationError",
      400,
      "The specified value for roleName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-",
    );
    expectError(
      () => iam.CreateRole({ RoleName: "r2" }, ctx()),
      "ValidationError",
      400,
      "1 validation error detected: Value null at 'assumeRolePolicyDocument' failed to satisfy constraint: Member must not be null",
    );
    expectError(
      () => iam.CreateRole({ RoleName: "r2", Path: "no-slash", AssumeRolePolicyDocument: doc }, ctx()),
      "ValidationError",
      400,
      "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.",
    );
    expectError(
      () => iam.CreateRole({ RoleName: "r2", AssumeRolePolicyDocument: "{not json" }, ctx()),
      "MalformedPolicyDocument",
      400,
      "This policy contains invalid Json",
    );
    const ghost = `arn:aws:iam::${acct}:role/ghost`;
    expectError(
      () =>
        iam.CreateRole(
          {
            RoleName: "r2",
            AssumeRolePolicyDocument: JSON.stringify({
              Version: "2012-10-17",
              Statement: [{ Effect: "Allow", Principal: { AWS: ghost }, Action: "sts:AssumeRole" }],
            }),
          },
          ctx(),
        ),
      "MalformedPolicyDocument",
      400,
      `Invalid principal in policy: "AWS":"${ghost}"`,
    );
    expect(() => iam.GetRole({ RoleName: "r2" }, ctx())).toThrow("cannot be found");
  });

  it("manages inline and attached role policies and refuses DeleteRole until they are gone", () => {
    const { iam, acct, ctx } = setup();
    iam.CreateRole({ RoleName: "r", AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }, ctx());
    const doc = ALLOW("s3:GetObject", "arn:aws:s3:::bucket/*");
    iam.PutRolePolicy({ RoleName: "r", PolicyName: "read", PolicyDocument: doc }, ctx());
    expect(
      decodeURIComponent(iam.GetRolePolicy({ RoleName: "r", PolicyName: "read" }, ctx()).PolicyDocument),
    ).toBe(doc);
    expect(iam.ListRolePolicies({ RoleName: "r" }, ctx())).toEqual({
      PolicyNames: ["read"],
      IsTruncated: false,
    });
    expectError(
      () => iam.GetRolePolicy({ RoleName: "r", PolicyName: "other" }, ctx()),
      "NoSuchEntity",
      404,
      "The role policy with name other cannot be found.",
    );
    expectError(
      () => iam.PutRolePolicy({ RoleName: "r", PolicyName: "bad", PolicyDocument: "[" }, ctx()),
      "MalformedPolicyDocument",
      400,
      "This policy contains invalid Json",
    );

    const { Policy } = iam.CreatePolicy(
      { PolicyName: "managed", PolicyDocument: ALLOW("kms:Decrypt") },
      ctx(),
    );
    expect(Policy).toMatchObject({
      Arn: `arn:aws:iam::${acct}:policy/managed`,
      DefaultVersionId: "v1",
      AttachmentCount: 0,
    });
    expect(Policy.PolicyId).toMatch(/^ANPA/);
    const missing = `arn:aws:iam::${acct}:policy/missing`;
    expectError(
      () => iam.AttachRolePolicy({ RoleName: "r", PolicyArn: missing }, ctx()),
      "NoSuchEntity",
      404,
      `Policy ${missing} does not exist or is not attachable.`,
    );
    iam.AttachRolePolicy({ RoleName: "r", PolicyArn: Policy.Arn }, ctx());
    expect(iam.ListAttachedRolePolicies({ RoleName: "r" }, ctx()).AttachedPolicies).toEqual([
      { PolicyName: "managed", PolicyArn: Policy.Arn },
    ]);
    expect(iam.GetPolicy({ PolicyArn: Policy.Arn }, ctx()).Policy.AttachmentCount).toBe(1);

    // Managed first, then inline: each refusal names what is left to remove.
    expectError(
      () => iam.DeleteRole({ RoleName: "r" }, ctx()),
      "DeleteConflict",
      409,
      "Cannot delete entity, must detach all policies first.",
    );
    expectError(
      () => iam.DeletePolicy({ PolicyArn: Policy.Arn }, ctx()),
      "DeleteConflict",
      409,
      "Cannot delete a policy attached to entities.",
    );
    iam.DetachRolePolicy({ RoleName: "r", PolicyArn: Policy.Arn }, ctx());
    expectError(
      () => iam.DeleteRole({ RoleName: "r" }, ctx()),
      "DeleteConflict",
      409,
      "Cannot delete entity, must delete policies first.",
    );
    iam.DeleteRolePolicy({ RoleName: "r", PolicyName: "read" }, ctx());
    const roleId = iam.GetRole({ RoleName: "r" }, ctx()).Role.RoleId;
    iam.DeleteRole({ RoleName: "r" }, ctx());
    expect(iam.arnForUniqueId(roleId)).toBeUndefined();
    expect(iam.resolvePrincipal(`arn:aws:iam::${acct}:role/r`)).toBeUndefined();
    iam.DeletePolicy({ PolicyArn: Policy.Arn }, ctx());
    expectError(
      () => iam.GetPolicy({ PolicyArn: Policy.Arn }, ctx()),
      "NoSuchEntity",
      404,
      `Policy ${Policy.Arn} was not found.`,
    );
  });

  it("serves managed policy versions with URL-encoded documents", () => {
    const { iam, ctx } = setup();
    const doc = ALLOW("kms:*");
    const { Policy } = iam.CreatePolicy(
      { PolicyName: "p", Path: "/lab/", PolicyDocument: doc, Description: "d" },
      ctx(),
    );
    const version = iam.GetPolicyVersion({ PolicyArn: Policy.Arn, VersionId: "v1" }, ctx()).PolicyVersion;
    expect(decodeURIComponent(version.Document)).toBe(doc);
    expect(version.IsDefaultVersion).toBe(true);
    expect(iam.ListPolicyVersions({ PolicyArn: Policy.Arn }, ctx()).Versions).toEqual([
      expect.objectContaining({ VersionId: "v1", IsDefaultVersion: true }),
    ]);
    expect(iam.ListPolicies({ Scope: "Local" }, ctx()).Policies.map((p) => p.Arn)).toEqual([Policy.Arn]);
    expect(iam.ListPolicies({ Scope: "AWS" }, ctx()).Policies.map((p) => p.PolicyName)).toContain(
      "AdministratorAccess",
    );
    expectError(
      () => iam.CreatePolicy({ PolicyName: "P", PolicyDocument: doc }, ctx()),
      "EntityAlreadyExists",
      409,
      "A policy called P already exists. Duplicate names are not allowed.",
    );
  });

  it("tags roles case-insensitively, within AWS's limits", () => {
    const { iam, acct, ctx } = setup();
    iam.CreateRole({ RoleName: "r", AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }, ctx());
    iam.TagRole(
      {
        RoleName: "r",
        Tags: [
          { Key: "b", Value: "1" },
          { Key: "a", Value: "" },
        ],
      },
      ctx(),
    );
    iam.TagRole({ RoleName: "r", Tags: [{ Key: "B", Value: "2" }] }, ctx());
    expect(iam.ListRoleTags({ RoleName: "r" }, ctx()).Tags).toEqual([
      { Key: "B", Value: "2" },
      { Key: "a", Value: "" },
    ]);
    expectError(
      () =>
        iam.TagRole(
          {
            RoleName: "r",
            Tags: [
              { Key: "x", Value: "1" },
              { Key: "X", Value: "2" },
            ],
          },
          ctx(),
        ),
      "InvalidInput",
      400,
      "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
    );
    expectError(
      () => iam.TagRole({ RoleName: "r", Tags: [{ Key: "bad*key", Value: "1" }] }, ctx()),
      "ValidationError",
      400,
      String.raw`1 validation error detected: Value 'bad*key' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+`,
    );
    expect(
      thrown(() => iam.TagRole({ RoleName: "r", Tags: [{ Key: "aws:x", Value: "1" }] }, ctx())).code,
    ).toBe("InvalidInput");
    const many = Array.from({ length: 49 }, (_, i) => ({ Key: `k${i}`, Value: "v" }));
    expectError(
      () => iam.TagRole({ RoleName: "r", Tags: many }, ctx()),
      "LimitExceeded",
      409,
      "The number of tags has reached the maximum limit.",
    );
    iam.UntagRole({ RoleName: "r", TagKeys: ["b", "never"] }, ctx());
    expect(iam.ListRoleTags({ RoleName: "r" }, ctx()).Tags).toEqual([{ Key: "a", Value: "" }]);
  });

  it("pages lists with MaxItems and Marker", () => {
    const { iam, acct, ctx } = setup();
    for (const name of ["c", "a", "b"])
      iam.CreateRole({ RoleName: name, AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }, ctx());
    const first = iam.ListRoles({ MaxItems: "2" }, ctx());
    expect(first.Roles.map((r) => r.RoleName)).toEqual(["a", "b"]);
    expect(first.IsTruncated).toBe(true);
    const second = iam.ListRoles({ MaxItems: "2", Marker: first.Marker }, ctx());
    expect(second.Roles.map((r) => r.RoleName)).toEqual(["c"]);
    expect(second).toMatchObject({ IsTruncated: false });
    expect(second.Marker).toBeUndefined();
    expectError(
      () => iam.ListRoles({ MaxItems: "0" }, ctx()),
      "ValidationError",
      400,
      "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
  });

  it("manages users and access keys, refusing DeleteUser while keys or policies remain", () => {
    const { iam, acct, ctx } = setup();
    const { User } = iam.CreateUser({ UserName: "bob", Path: "/people/" }, ctx());
    expect(User).toMatchObject({
      UserName: "bob",
      Arn: `arn:aws:iam::${acct}:user/people/bob`,
      Path: "/people/",
    });
    expect(User.UserId).toMatch(/^AIDA/);
    expectError(
      () => iam.CreateUser({ UserName: "BOB" }, ctx()),
      "EntityAlreadyExists",
      409,
      "User with name BOB already exists.",
    );
    expectError(
      () => iam.GetUser({ UserName: "zed" }, ctx()),
      "NoSuchEntity",
      404,
      "The user with name zed cannot be found.",
    );

    const k1 = iam.CreateAccessKey({ UserName: "bob" }, ctx()).AccessKey;
    expect(k1.AccessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
    expect(k1.SecretAccessKey).toHaveLength(40);
    expect(k1.Status).toBe("Active");
    iam.CreateAccessKey({ UserName: "bob" }, ctx());
    expectError(
      () => iam.CreateAccessKey({ UserName: "bob" }, ctx()),
      "LimitExceeded",
      409,
      "Cannot exceed quota for AccessKeysPerUser: 2",
    );
    iam.UpdateAccessKey({ UserName: "bob", AccessKeyId: k1.AccessKeyId, Status: "Inactive" }, ctx());
    expect(iam.findAccessKey(k1.AccessKeyId)).toMatchObject({
      active: false,
      principal: { userName: "bob" },
    });

    iam.PutUserPolicy({ UserName: "bob", PolicyName: "p", PolicyDocument: ALLOW("s3:*") }, ctx());
    iam.AttachUserPolicy(
      { UserName: "bob", PolicyArn: "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess" },
      ctx(),
    );
    const conflict = (message: string) =>
      expectError(() => iam.DeleteUser({ UserName: "bob" }, ctx()), "DeleteConflict", 409, message);
    conflict("Cannot delete entity, must delete access keys first.");
    for (const k of iam.ListAccessKeys({ UserName: "bob" }, ctx()).AccessKeyMetadata)
      iam.DeleteAccessKey({ UserName: "bob", AccessKeyId: k.AccessKeyId }, ctx());
    conflict("Cannot delete entity, must delete policies first.");
    iam.DeleteUserPolicy({ UserName: "bob", PolicyName: "p" }, ctx());
    conflict("Cannot delete entity, must detach all policies first.");
    iam.DetachUserPolicy(
      { UserName: "bob", PolicyArn: "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess" },
      ctx(),
    );
    iam.DeleteUser({ UserName: "bob" }, ctx());
    expect(iam.findAccessKey(k1.AccessKeyId)).toBeUndefined();
    expectError(
      () => iam.DeleteAccessKey({ UserName: "admin", AccessKeyId: "AKIAAAAAAAAAAAAAAAAA" }, ctx()),
      "NoSuchEntity",
      404,
      "The Access Key with id AKIAAAAAAAAAAAAAAAAA cannot be found.",
    );
  });

  it("authorises every operation against the caller's identity policies", () => {
    const { iam, acct, ctx } = setup();
    iam.CreateUser({ UserName: "bob" }, ctx());
    const key = iam.CreateAccessKey({ UserName: "bob" }, ctx()).AccessKey;
    const bob = iam.findAccessKey(key.AccessKeyId)!.principal;
    expect(iam.identityPolicies(bob)).toEqual([]);
    expectError(
      () => iam.CreateRole({ RoleName: "r", AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }, ctx(bob)),
      "AccessDenied",
      403,
      `User: arn:aws:iam::${acct}:user/bob is not authorized to perform: iam:CreateRole on resource: arn:aws:iam::${acct}:role/r because no identity-based policy allows the iam:CreateRole action`,
    );
    iam.CreateRole({ RoleName: "r", AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }, ctx());
    iam.PutUserPolicy(
      {
        UserName: "bob",
        PolicyName: "p",
        PolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Action: "iam:GetRole", Resource: `arn:aws:iam::${acct}:role/r` },
            { Effect: "Deny", Action: "iam:DeleteRole", Resource: "*" },
          ],
        }),
      },
      ctx(),
    );
    expect(iam.identityPolicies(bob)).toHaveLength(1);
    expect(iam.GetRole({ RoleName: "r" }, ctx(bob)).Role.RoleName).toBe("r");
    expectError(
      () => iam.DeleteRole({ RoleName: "r" }, ctx(bob)),
      "AccessDenied",
      403,
      `User: arn:aws:iam::${acct}:user/bob is not authorized to perform: iam:DeleteRole on resource: arn:aws:iam::${acct}:role/r with an explicit deny in an identity-based policy`,
    );
    // Authorisation comes before existence: a denied caller learns nothing about the role.
    expectError(
      () => iam.GetRole({ RoleName: "other" }, ctx(bob)),
      "AccessDenied",
      403,
      /iam:GetRole on resource/,
    );
  });

  it("keeps new principals unresolvable until the propagation delay has passed", () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const { iam, acct, ctx, admin } = setup(
      { ...PROFILES.instant!, propagationDelayMs: 8000 },
      () => new Date(now),
    );
    expect(iam.resolvePrincipal(admin.arn)).toEqual({ uniqueId: admin.userId });
    const { Role } = iam.CreateRole({ RoleName: "r", AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }, ctx());
    expect(iam.resolvePrincipal(Role.Arn)).toBeUndefined();
    expect(iam.assumableRole(Role.Arn)).toBeUndefined();
    now += 8000;
    expect(iam.resolvePrincipal(Role.Arn)).toEqual({ uniqueId: Role.RoleId });
    expect(iam.assumableRole(Role.Arn)?.id).toBe(Role.RoleId);
  });

  it("treats names that are also JavaScript property names as ordinary names", () => {
    const { iam, acct, ctx } = setup();
    expectError(
      () => iam.GetRole({ RoleName: "constructor" }, ctx()),
      "NoSuchEntity",
      404,
      "The role with name constructor cannot be found.",
    );
    iam.CreateRole({ RoleName: "__proto__", AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }, ctx());
    iam.CreateUser({ UserName: "constructor" }, ctx());
    iam.PutUserPolicy(
      { UserName: "constructor", PolicyName: "toString", PolicyDocument: ALLOW("s3:*") },
      ctx(),
    );
    expect(iam.GetRole({ RoleName: "__proto__" }, ctx()).Role.Arn).toBe(
      `arn:aws:iam::${acct}:role/__proto__`,
    );
    expect(iam.ListUserPolicies({ UserName: "constructor" }, ctx()).PolicyNames).toEqual(["toString"]);
    expectError(
      () => iam.GetUserPolicy({ UserName: "constructor", PolicyName: "valueOf" }, ctx()),
      "NoSuchEntity",
      404,
      "The user policy with name valueOf cannot be found.",
    );
  });

  it("survives a round trip through its persisted state", () => {
    const { account, iam, acct, ctx } = setup();
    iam.CreateRole({ RoleName: "r", AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }, ctx());
    const restored = new Account(JSON.parse(JSON.stringify(account.toState())));
    expect(restored.iam.adminCredentials()).toEqual(iam.adminCredentials());
    expect(restored.iam.resolvePrincipal(`arn:aws:iam::${acct}:role/r`)).toEqual(
      iam.resolvePrincipal(`arn:aws:iam::${acct}:role/r`),
    );
  });
});

describe("IAM through the SDK", () => {
  const sim = Simulator.inMemory();
  const acct = sim.account.accountId;
  const iam = new IAMClient(sim.clientConfig());

  it("creates a role and returns its documents URL-encoded, decoding back to what was sent", async () => {
    const trust = TRUST_ACCOUNT(acct);
    const created = await iam.send(
      new CreateRoleCommand({
        RoleName: "sdk-role",
        AssumeRolePolicyDocument: trust,
        Tags: [{ Key: "kmslab:run", Value: "r1" }],
      }),
    );
    expect(created.Role?.Arn).toBe(`arn:aws:iam::${acct}:role/sdk-role`);
    expect(created.Role?.CreateDate).toBeInstanceOf(Date);
    const got = await iam.send(new GetRoleCommand({ RoleName: "sdk-role" }));
    expect(decodeURIComponent(got.Role!.AssumeRolePolicyDocument!)).toBe(trust);
    expect(got.Role?.Tags).toEqual([{ Key: "kmslab:run", Value: "r1" }]);
    const inline = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Action: ["s3:GetObject"], Resource: "arn:aws:s3:::b/a b+c&d" }],
    });
    await iam.send(
      new PutRolePolicyCommand({ RoleName: "sdk-role", PolicyName: "s3-read", PolicyDocument: inline }),
    );
    const pol = await iam.send(new GetRolePolicyCommand({ RoleName: "sdk-role", PolicyName: "s3-read" }));
    expect(decodeURIComponent(pol.PolicyDocument!)).toBe(inline);
    await iam.send(
      new TagRoleCommand({ RoleName: "sdk-role", Tags: [{ Key: "kmslab:stage", Value: "create-key" }] }),
    );
    const tags = await iam.send(new ListRoleTagsCommand({ RoleName: "sdk-role" }));
    expect(tags.Tags).toEqual([
      { Key: "kmslab:run", Value: "r1" },
      { Key: "kmslab:stage", Value: "create-key" },
    ]);
    expect(tags.IsTruncated).toBe(false);
  });

  // The SDK names modelled errors by their shape (wire code `EntityAlreadyExists` raises
  // EntityAlreadyExistsException), as it does against AWS; unmodelled codes keep their wire name.
  it("answers errors with AWS's names, statuses and messages", async () => {
    const trust = TRUST_ACCOUNT(acct);
    await iam.send(new CreateRoleCommand({ RoleName: "dup", AssumeRolePolicyDocument: trust }));
    expect(
      await failure(iam.send(new CreateRoleCommand({ RoleName: "dup", AssumeRolePolicyDocument: trust }))),
    ).toEqual({
      name: "EntityAlreadyExistsException",
      status: 409,
      message: "Role with name dup already exists.",
    });
    expect(await failure(iam.send(new GetRoleCommand({ RoleName: "missing" })))).toEqual({
      name: "NoSuchEntityException",
      status: 404,
      message: "The role with name missing cannot be found.",
    });
    expect(
      await failure(iam.send(new CreateRoleCommand({ RoleName: "bad", AssumeRolePolicyDocument: "{oops" }))),
    ).toEqual({
      name: "MalformedPolicyDocumentException",
      status: 400,
      message: "This policy contains invalid Json",
    });
    expect(
      await failure(iam.send(new CreateRoleCommand({ RoleName: "a b", AssumeRolePolicyDocument: trust }))),
    ).toEqual({
      name: "ValidationError",
      status: 400,
      message:
        "The specified value for roleName is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_-",
    });
  });

  it("refuses DeleteRole until attached, then inline, policies are removed", async () => {
    await iam.send(new CreateRoleCommand({ RoleName: "del", AssumeRolePolicyDocument: TRUST_ACCOUNT(acct) }));
    await iam.send(
      new PutRolePolicyCommand({ RoleName: "del", PolicyName: "p", PolicyDocument: ALLOW("s3:*") }),
    );
    const { Policy } = await iam.send(
      new CreatePolicyCommand({ PolicyName: "del-m", PolicyDocument: ALLOW("s3:*") }),
    );
    await iam.send(new AttachRolePolicyCommand({ RoleName: "del", PolicyArn: Policy!.Arn }));
    expect(await failure(iam.send(new DeleteRoleCommand({ RoleName: "del" })))).toEqual({
      name: "DeleteConflictException",
      status: 409,
      message: "Cannot delete entity, must detach all policies first.",
    });
    await iam.send(new DetachRolePolicyCommand({ RoleName: "del", PolicyArn: Policy!.Arn }));
    expect(await failure(iam.send(new DeleteRoleCommand({ RoleName: "del" })))).toEqual({
      name: "DeleteConflictException",
      status: 409,
      message: "Cannot delete entity, must delete policies first.",
    });
    await iam.send(new DeleteRolePolicyCommand({ RoleName: "del", PolicyName: "p" }));
    await iam.send(new DeleteRoleCommand({ RoleName: "del" }));
    expect((await failure(iam.send(new GetRoleCommand({ RoleName: "del" })))).name).toBe(
      "NoSuchEntityException",
    );
  });

  it("pages ListRoles through Marker", async () => {
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const page = await iam.send(new ListRolesCommand({ MaxItems: 1, Marker: marker }));
      names.push(...(page.Roles ?? []).map((r) => r.RoleName!));
      marker = page.IsTruncated ? page.Marker : undefined;
    } while (marker);
    expect(names).toEqual([...names].sort());
    expect(names).toContain("sdk-role");
  });

  it("denies a user without permissions, naming the user and the action", async () => {
    await iam.send(new CreateUserCommand({ UserName: "nobody" }));
    const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: "nobody" }));
    const asNobody = new IAMClient(
      sim.clientConfig({
        credentials: { accessKeyId: AccessKey!.AccessKeyId!, secretAccessKey: AccessKey!.SecretAccessKey! },
      }),
    );
    expect(await failure(asNobody.send(new GetRoleCommand({ RoleName: "sdk-role" })))).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: arn:aws:iam::${acct}:user/nobody is not authorized to perform: iam:GetRole on resource: arn:aws:iam::${acct}:role/sdk-role because no identity-based policy allows the iam:GetRole action`,
    });
  });
});
