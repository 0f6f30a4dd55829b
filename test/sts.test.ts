import {
  CreateRoleCommand,
  CreateUserCommand,
  GetRoleCommand,
  IAMClient,
  PutRolePolicyCommand,
} from "@aws-sdk/client-iam";
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { describe, expect, it } from "vitest";
import { Account, type AccountOptions, PROFILES } from "../sim/account.js";
import type { CallContext } from "../sim/core/service.js";
import type { Principal } from "../sim/core/types.js";
import { Simulator } from "../sim/simulator.js";
import { failure, thrown } from "./helpers/errors.js";

const trust = (principal: string) =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { AWS: principal }, Action: "sts:AssumeRole" }],
  });
const allow = (action: string, resource = "*") =>
  JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: action, Resource: resource }],
  });

function setup(options?: AccountOptions) {
  let now = Date.parse("2026-03-01T12:00:00Z");
  const account = Account.create(options, () => new Date(now));
  const { iam, sts } = account;
  const acct = account.accountId;
  const admin = iam.findAccessKey(iam.adminCredentials().accessKeyId)!.principal;
  const root: Principal = { type: "Root", arn: `arn:aws:iam::${acct}:root`, accountId: acct, userId: acct };
  const ctx = (principal: Principal = admin): CallContext => ({
    accountId: acct,
    region: "us-east-1",
    requestId: "req",
    principal,
    now: account.now(),
    sourceIp: "127.0.0.1",
    userAgent: "test",
    secureTransport: true,
  });
  const user = (name: string, policy?: string) => {
    iam.CreateUser({ UserName: name }, ctx());
    if (policy) iam.PutUserPolicy({ UserName: name, PolicyName: "p", PolicyDocument: policy }, ctx());
    const key = iam.CreateAccessKey({ UserName: name }, ctx()).AccessKey;
    return iam.findAccessKey(key.AccessKeyId)!.principal;
  };
  const role = (name: string, trustDoc: string, extra: Record<string, unknown> = {}) =>
    iam.CreateRole({ RoleName: name, AssumeRolePolicyDocument: trustDoc, ...extra }, ctx()).Role;
  const advance = (ms: number) => {
    now += ms;
  };
  return { account, iam, sts, acct, admin, root, ctx, user, role, advance };
}

function expectError(fn: () => unknown, code: string, status: number, message: string) {
  const err = thrown(fn);
  expect({ code: err.code, status: err.status, message: err.message }).toEqual({ code, status, message });
}

describe("STS provider", () => {
  it("tells a user, the root and a role session who they are", () => {
    const { sts, acct, admin, root, ctx, role } = setup();
    expect(sts.GetCallerIdentity({}, ctx())).toEqual({ UserId: admin.userId, Account: acct, Arn: admin.arn });
    expect(sts.GetCallerIdentity({}, ctx(root))).toEqual({
      UserId: acct,
      Account: acct,
      Arn: `arn:aws:iam::${acct}:root`,
    });
    const r = role("reader", trust(`arn:aws:iam::${acct}:root`));
    const out = sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "alice" }, ctx());
    const session = sts.findSession(out.Credentials.AccessKeyId)!;
    expect(sts.GetCallerIdentity({}, ctx(session.principal))).toEqual({
      UserId: `${r.RoleId}:alice`,
      Account: acct,
      Arn: `arn:aws:sts::${acct}:assumed-role/reader/alice`,
    });
  });

  it("issues temporary credentials for a role whose trust policy delegates to the account", () => {
    const { sts, acct, ctx, role, iam } = setup();
    const r = role("reader", trust(`arn:aws:iam::${acct}:root`), { MaxSessionDuration: 7200 });
    const out = sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s1", DurationSeconds: "7200" }, ctx());
    expect(out.Credentials.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(out.Credentials.SecretAccessKey).toHaveLength(40);
    expect(out.Credentials.SessionToken.length).toBeGreaterThan(300);
    expect(out.Credentials.SessionToken).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(out.Credentials.Expiration.toISOString()).toBe("2026-03-01T14:00:00.000Z");
    expect(out.AssumedRoleUser).toEqual({
      AssumedRoleId: `${r.RoleId}:s1`,
      Arn: `arn:aws:sts::${acct}:assumed-role/reader/s1`,
    });
    const session = sts.findSession(out.Credentials.AccessKeyId)!;
    expect(session).toMatchObject({
      secretAccessKey: out.Credentials.SecretAccessKey,
      sessionToken: out.Credentials.SessionToken,
      expiration: out.Credentials.Expiration,
    });
    expect(session.principal).toEqual({
      type: "AssumedRole",
      arn: `arn:aws:sts::${acct}:assumed-role/reader/s1`,
      accountId: acct,
      userId: `${r.RoleId}:s1`,
      accessKeyId: out.Credentials.AccessKeyId,
      roleArn: r.Arn,
      roleId: r.RoleId,
      roleName: "reader",
      sessionName: "s1",
      sessionIssuedAt: "2026-03-01T12:00:00.000Z",
    });
    iam.PutRolePolicy({ RoleName: "reader", PolicyName: "s3", PolicyDocument: allow("s3:GetObject") }, ctx());
    expect(iam.identityPolicies(session.principal)).toHaveLength(1);
  });

  it("requires the trust policy to allow the caller: identity permissions alone do not make a role assumable", () => {
    const { sts, acct, ctx, role, user, admin } = setup();
    user("carol");
    const r = role("only-carol", trust(`arn:aws:iam::${acct}:user/carol`));
    expectError(
      () => sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0" }, ctx()),
      "AccessDenied",
      403,
      `User: ${admin.arn} is not authorized to perform: sts:AssumeRole on resource: ${r.Arn}`,
    );
  });

  it("lets a principal named by the trust policy in without any identity policy", () => {
    const { sts, acct, ctx, role, user } = setup();
    const dave = user("dave");
    const r = role("for-dave", trust(`arn:aws:iam::${acct}:user/dave`));
    expect(sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0" }, ctx(dave)).AssumedRoleUser.Arn).toBe(
      `arn:aws:sts::${acct}:assumed-role/for-dave/s0`,
    );
  });

  it("with an account-root trust policy, defers to the caller's IAM policy", () => {
    const { sts, acct, ctx, role, user } = setup();
    const r = role("delegated", trust(`arn:aws:iam::${acct}:root`));
    const erin = user("erin");
    expectError(
      () => sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0" }, ctx(erin)),
      "AccessDenied",
      403,
      `User: ${erin.arn} is not authorized to perform: sts:AssumeRole on resource: ${r.Arn}`,
    );
    const frank = user("frank", allow("sts:AssumeRole", r.Arn));
    expect(
      sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0" }, ctx(frank)).Credentials.AccessKeyId,
    ).toMatch(/^ASIA/);
  });

  it("refuses unknown roles, the root user, and out-of-range durations", () => {
    const { sts, acct, ctx, role, root, admin } = setup();
    const missing = `arn:aws:iam::${acct}:role/missing`;
    expectError(
      () => sts.AssumeRole({ RoleArn: missing, RoleSessionName: "s0" }, ctx()),
      "AccessDenied",
      403,
      `User: ${admin.arn} is not authorized to perform: sts:AssumeRole on resource: ${missing}`,
    );
    const r = role("r", trust(`arn:aws:iam::${acct}:root`));
    expectError(
      () => sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0" }, ctx(root)),
      "AccessDenied",
      403,
      "Roles may not be assumed by root accounts.",
    );
    expectError(
      () => sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0", DurationSeconds: "7200" }, ctx()),
      "ValidationError",
      400,
      "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    );
    expectError(
      () => sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0", DurationSeconds: "899" }, ctx()),
      "ValidationError",
      400,
      "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
    );
    expectError(
      () => sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "bad name" }, ctx()),
      "ValidationError",
      400,
      String.raw`1 validation error detected: Value 'bad name' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`,
    );
  });

  it("caps role chaining at one hour", () => {
    const { sts, acct, ctx, role } = setup();
    const first = role("first", trust(`arn:aws:iam::${acct}:root`));
    const second = role("second", trust(first.Arn), { MaxSessionDuration: 43200 });
    const s1 = sts.AssumeRole({ RoleArn: first.Arn, RoleSessionName: "hop1" }, ctx());
    const session = sts.findSession(s1.Credentials.AccessKeyId)!.principal;
    expectError(
      () =>
        sts.AssumeRole(
          { RoleArn: second.Arn, RoleSessionName: "hop2", DurationSeconds: "3601" },
          ctx(session),
        ),
      "ValidationError",
      400,
      "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
    );
    const s2 = sts.AssumeRole({ RoleArn: second.Arn, RoleSessionName: "hop2" }, ctx(session));
    expect(s2.AssumedRoleUser.Arn).toBe(`arn:aws:sts::${acct}:assumed-role/second/hop2`);
  });

  it("does not let a new role be assumed before it has propagated", () => {
    const { sts, acct, ctx, role, advance } = setup({ ...PROFILES.instant!, propagationDelayMs: 10_000 });
    const r = role("slow", trust(`arn:aws:iam::${acct}:root`));
    expect(thrown(() => sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0" }, ctx())).code).toBe(
      "AccessDenied",
    );
    advance(10_000);
    expect(sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0" }, ctx()).Credentials.AccessKeyId).toMatch(
      /^ASIA/,
    );
  });

  it("keeps sessions in its state, reports expired ones for a day, then prunes them", () => {
    const { account, sts, acct, ctx, role, iam, advance } = setup();
    const r = role("r", trust(`arn:aws:iam::${acct}:root`));
    const id = sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s0" }, ctx()).Credentials.AccessKeyId;
    const restored = new Account(JSON.parse(JSON.stringify(account.toState())), undefined, () =>
      account.now(),
    );
    expect(restored.sts.findSession(id)?.principal.arn).toBe(`arn:aws:sts::${acct}:assumed-role/r/s0`);
    advance(3600_000 + 1);
    expect(sts.findSession(id)!.expiration.getTime()).toBeLessThan(account.now().getTime());
    advance(24 * 3600_000);
    expect(sts.findSession(id)).toBeUndefined();
    expect(sts.state.sessions).toEqual({});
    // A session outlives nothing: once its role is gone, it carries no policies.
    const id2 = sts.AssumeRole({ RoleArn: r.Arn, RoleSessionName: "s2" }, ctx()).Credentials.AccessKeyId;
    iam.PutRolePolicy({ RoleName: "r", PolicyName: "p", PolicyDocument: allow("s3:*") }, ctx());
    const principal = sts.findSession(id2)!.principal;
    expect(iam.identityPolicies(principal)).toHaveLength(1);
    iam.DeleteRolePolicy({ RoleName: "r", PolicyName: "p" }, ctx());
    iam.DeleteRole({ RoleName: "r" }, ctx());
    role("r", trust(`arn:aws:iam::${acct}:root`));
    iam.PutRolePolicy({ RoleName: "r", PolicyName: "p", PolicyDocument: allow("s3:*") }, ctx());
    expect(iam.identityPolicies(principal)).toEqual([]);
  });
});

describe("STS through the SDK", () => {
  const sim = Simulator.inMemory();
  const acct = sim.account.accountId;
  const iam = new IAMClient(sim.clientConfig());
  const sts = new STSClient(sim.clientConfig());

  it("answers GetCallerIdentity for the admin user", async () => {
    const me = await sts.send(new GetCallerIdentityCommand({}));
    expect(me.Account).toBe(acct);
    expect(me.Arn).toBe(`arn:aws:iam::${acct}:user/admin`);
    expect(me.UserId).toMatch(/^AIDA/);
  });

  it("assumes a role and acts as the session", async () => {
    const created = await iam.send(
      new CreateRoleCommand({
        RoleName: "kmslab-key-user",
        AssumeRolePolicyDocument: trust(`arn:aws:iam::${acct}:root`),
      }),
    );
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: "kmslab-key-user",
        PolicyName: "read-self",
        PolicyDocument: allow("iam:GetRole", created.Role!.Arn!),
      }),
    );
    const out = await sts.send(
      new AssumeRoleCommand({
        RoleArn: created.Role!.Arn,
        RoleSessionName: "key-user",
        DurationSeconds: 900,
      }),
    );
    expect(out.Credentials?.AccessKeyId).toMatch(/^ASIA/);
    expect(out.Credentials?.Expiration).toBeInstanceOf(Date);
    expect(out.AssumedRoleUser?.Arn).toBe(`arn:aws:sts::${acct}:assumed-role/kmslab-key-user/key-user`);
    const credentials = {
      accessKeyId: out.Credentials!.AccessKeyId!,
      secretAccessKey: out.Credentials!.SecretAccessKey!,
      sessionToken: out.Credentials!.SessionToken!,
    };
    const asSession = new STSClient(sim.clientConfig({ credentials }));
    const me = await asSession.send(new GetCallerIdentityCommand({}));
    expect(me).toMatchObject({
      Account: acct,
      Arn: `arn:aws:sts::${acct}:assumed-role/kmslab-key-user/key-user`,
      UserId: `${created.Role!.RoleId}:key-user`,
    });
    const iamAsSession = new IAMClient(sim.clientConfig({ credentials }));
    expect((await iamAsSession.send(new GetRoleCommand({ RoleName: "kmslab-key-user" }))).Role?.RoleId).toBe(
      created.Role!.RoleId,
    );
    expect(await failure(iamAsSession.send(new GetRoleCommand({ RoleName: "other" })))).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: arn:aws:sts::${acct}:assumed-role/kmslab-key-user/key-user is not authorized to perform: iam:GetRole on resource: arn:aws:iam::${acct}:role/other because no identity-based policy allows the iam:GetRole action`,
    });
  });

  it("denies AssumeRole when the trust policy does not name the caller", async () => {
    await iam.send(new CreateUserCommand({ UserName: "someone-else" }));
    const created = await iam.send(
      new CreateRoleCommand({
        RoleName: "not-for-admin",
        AssumeRolePolicyDocument: trust(`arn:aws:iam::${acct}:user/someone-else`),
      }),
    );
    expect(
      await failure(sts.send(new AssumeRoleCommand({ RoleArn: created.Role!.Arn, RoleSessionName: "x0" }))),
    ).toEqual({
      name: "AccessDenied",
      status: 403,
      message: `User: arn:aws:iam::${acct}:user/admin is not authorized to perform: sts:AssumeRole on resource: ${created.Role!.Arn}`,
    });
    expect(
      await failure(
        sts.send(
          new AssumeRoleCommand({
            RoleArn: created.Role!.Arn,
            RoleSessionName: "x0",
            DurationSeconds: 50000,
          }),
        ),
      ),
    ).toEqual({
      name: "ValidationError",
      status: 400,
      message:
        "1 validation error detected: Value '50000' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200",
    });
  });
});
