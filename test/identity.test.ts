import { CloudTrailClient, LookupEventsCommand } from "@aws-sdk/client-cloudtrail";
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  GetRoleCommand,
  IAMClient,
  PutRolePolicyCommand,
  UpdateAssumeRolePolicyCommand,
} from "@aws-sdk/client-iam";
import { CreateKeyCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { describe, expect, it } from "vitest";
import { Simulator } from "../sim/simulator.js";
import { failure } from "./helpers/errors.js";
import { SSO_PATH, SSO_ROLE, ssoAdministrator } from "./helpers/identities.js";

/**
 * Who can call, as AWS has it, through the real SDK: roles and users with a path (IAM Identity
 * Center's roles live under /aws-reserved/sso.amazonaws.com/), principals a policy may name only
 * if they exist, the root user (who may not assume a role), session policies, and NotPrincipal
 * with role sessions.
 */

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

function account() {
  const sim = Simulator.inMemory();
  const acct = sim.account.accountId;
  const clients = (credentials?: Credentials) => {
    const config = sim.clientConfig(credentials ? { credentials } : {});
    return {
      iam: new IAMClient(config),
      sts: new STSClient(config),
      kms: new KMSClient(config),
      s3: new S3Client({ ...config, forcePathStyle: true }),
      trail: new CloudTrailClient(config),
    };
  };
  return { sim, acct, admin: clients(), clients };
}

const doc = (...Statement: object[]) => JSON.stringify({ Version: "2012-10-17", Statement });
const trustAccount = (acct: string) =>
  doc({ Effect: "Allow", Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: "sts:AssumeRole" });
const ALLOW_ALL = doc({ Effect: "Allow", Action: "*", Resource: "*" });

/** A role trusted by the account, allowed everything, and a session of it (with session policies, if given). */
async function roleSession(
  env: ReturnType<typeof account>,
  name: string,
  assume: { Policy?: string; PolicyArns?: { arn: string }[] } = {},
) {
  const { Role } = await env.admin.iam.send(
    new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: trustAccount(env.acct) }),
  );
  await env.admin.iam.send(
    new PutRolePolicyCommand({ RoleName: name, PolicyName: "all", PolicyDocument: ALLOW_ALL }),
  );
  const out = await env.admin.sts.send(
    new AssumeRoleCommand({ RoleArn: Role!.Arn!, RoleSessionName: "s1", ...assume }),
  );
  const c = out.Credentials!;
  return {
    roleArn: Role!.Arn!,
    sessionArn: out.AssumedRoleUser!.Arn!,
    as: env.clients({
      accessKeyId: c.AccessKeyId!,
      secretAccessKey: c.SecretAccessKey!,
      sessionToken: c.SessionToken!,
    }),
  };
}

/** A bucket with one object and a key whose policy lets the account's IAM policies decide. */
async function bucketAndKey(env: ReturnType<typeof account>, bucket = "identity-data") {
  await env.admin.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await env.admin.s3.send(new PutObjectCommand({ Bucket: bucket, Key: "a.txt", Body: "hello" }));
  const { KeyMetadata } = await env.admin.kms.send(new CreateKeyCommand({}));
  return { bucket, keyArn: KeyMetadata!.Arn! };
}

describe("roles and users with a path", () => {
  it("keeps the path in the role's and the user's ARN, and out of the session's, and CloudTrail shows both", async () => {
    const env = account();
    const sso = await ssoAdministrator(env.sim.clientConfig());
    expect(sso.roleArn).toBe(`arn:aws:iam::${env.acct}:role${SSO_PATH}${SSO_ROLE}`);
    expect(sso.sessionArn).toBe(`arn:aws:sts::${env.acct}:assumed-role/${SSO_ROLE}/learner@example.com`);
    const as = env.clients(sso.credentials);
    const me = await as.sts.send(new GetCallerIdentityCommand({}));
    const { Role } = await env.admin.iam.send(new GetRoleCommand({ RoleName: SSO_ROLE }));
    expect(Role).toMatchObject({ Path: SSO_PATH, Arn: sso.roleArn });
    expect(me).toMatchObject({ Arn: sso.sessionArn, UserId: `${Role!.RoleId}:learner@example.com` });

    // The session acts as its role: a user made with a path by it, and that user's own key.
    const { User } = await as.iam.send(new CreateUserCommand({ UserName: "ci", Path: "/automation/" }));
    expect(User!.Arn).toBe(`arn:aws:iam::${env.acct}:user/automation/ci`);
    const { AccessKey } = await as.iam.send(new CreateAccessKeyCommand({ UserName: "ci" }));
    const ci = env.clients({
      accessKeyId: AccessKey!.AccessKeyId!,
      secretAccessKey: AccessKey!.SecretAccessKey!,
    });
    expect((await ci.sts.send(new GetCallerIdentityCommand({}))).Arn).toBe(User!.Arn);

    // An event by the session: its session ARN, and its role's ARN with the path as the issuer; an
    // event about the role names the role by its ARN, path included.
    await as.iam.send(new GetRoleCommand({ RoleName: SSO_ROLE }));
    const { Events } = await env.admin.trail.send(
      new LookupEventsCommand({
        LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "GetRole" }],
      }),
    );
    const bySession = Events!.find((e) => e.Username === "learner@example.com")!;
    const record = JSON.parse(bySession.CloudTrailEvent!);
    expect(record.userIdentity).toMatchObject({
      type: "AssumedRole",
      arn: sso.sessionArn,
      sessionContext: { sessionIssuer: { type: "Role", arn: sso.roleArn, userName: SSO_ROLE } },
    });
    expect(bySession.Resources).toEqual([{ ResourceType: "AWS::IAM::Role", ResourceName: sso.roleArn }]);
  });

  it("lets a key policy or a bucket policy name a role by its ARN with the path, and its sessions in", async () => {
    const env = account();
    const sso = await ssoAdministrator(env.sim.clientConfig());
    const as = env.clients(sso.credentials);
    const allowRole = (actions: string[], resource: string) => ({
      Effect: "Allow",
      Principal: { AWS: sso.roleArn },
      Action: actions,
      Resource: resource,
    });
    const { KeyMetadata } = await env.admin.kms.send(
      new CreateKeyCommand({ Policy: doc(allowRole(["kms:*"], "*")), BypassPolicyLockoutSafetyCheck: true }),
    );
    await expect(
      as.kms.send(new EncryptCommand({ KeyId: KeyMetadata!.Arn, Plaintext: Buffer.from("x") })),
    ).resolves.toMatchObject({ KeyId: KeyMetadata!.Arn });
    await env.admin.s3.send(new CreateBucketCommand({ Bucket: "sso-bucket" }));
    await env.admin.s3.send(
      new PutBucketPolicyCommand({
        Bucket: "sso-bucket",
        Policy: doc(allowRole(["s3:GetObject"], "arn:aws:s3:::sso-bucket/*")),
      }),
    );
  });

  it("refuses a policy naming the role by an ARN without its path, as a principal that does not exist", async () => {
    const env = account();
    const sso = await ssoAdministrator(env.sim.clientConfig());
    const pathless = `arn:aws:iam::${env.acct}:role/${SSO_ROLE}`;
    const naming = (principal: string, actions: string, resource?: string) =>
      doc({
        Effect: "Allow",
        Principal: { AWS: principal },
        Action: actions,
        ...(resource ? { Resource: resource } : {}),
      });
    expect(
      await failure(env.admin.kms.send(new CreateKeyCommand({ Policy: naming(pathless, "kms:*", "*") }))),
    ).toEqual({
      name: "MalformedPolicyDocumentException",
      status: 400,
      message: "Policy contains a statement with one or more invalid principals.",
    });
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    const invalid = {
      name: "MalformedPolicyDocumentException",
      status: 400,
      message: `Invalid principal in policy: "AWS":"${pathless}"`,
    };
    expect(
      await failure(
        env.admin.iam.send(
          new CreateRoleCommand({
            RoleName: "trusts-sso",
            AssumeRolePolicyDocument: naming(pathless, "sts:AssumeRole"),
          }),
        ),
      ),
    ).toEqual(invalid);
    expect(
      await failure(
        env.admin.iam.send(
          new UpdateAssumeRolePolicyCommand({
            RoleName: SSO_ROLE,
            PolicyDocument: naming(pathless, "sts:AssumeRole"),
          }),
        ),
      ),
    ).toEqual(invalid);
    await env.admin.s3.send(new CreateBucketCommand({ Bucket: "sso-bucket" }));
    expect(
      await failure(
        env.admin.s3.send(
          new PutBucketPolicyCommand({
            Bucket: "sso-bucket",
            Policy: naming(pathless, "s3:GetObject", "arn:aws:s3:::sso-bucket/*"),
          }),
        ),
      ),
    ).toEqual({ name: "MalformedPolicy", status: 400, message: "Invalid principal in policy" });
    // Named right, the same documents are taken; a session ARN is as good as its role.
    await env.admin.iam.send(
      new CreateRoleCommand({
        RoleName: "trusts-sso",
        AssumeRolePolicyDocument: naming(sso.roleArn, "sts:AssumeRole"),
      }),
    );
    await env.admin.iam.send(
      new UpdateAssumeRolePolicyCommand({
        RoleName: "trusts-sso",
        PolicyDocument: naming(sso.sessionArn, "sts:AssumeRole"),
      }),
    );
    // A unique id stands for a principal only while that principal exists.
    expect(
      await failure(
        env.admin.iam.send(
          new UpdateAssumeRolePolicyCommand({
            RoleName: "trusts-sso",
            PolicyDocument: naming("AROAXXXXXXXXXXXXXXXXX", "sts:AssumeRole"),
          }),
        ),
      ),
    ).toMatchObject({ name: "MalformedPolicyDocumentException", status: 400 });
  });
});

describe("the account's root user", () => {
  it("is who its access key says, and may not assume a role", async () => {
    const env = account();
    const root = env.clients(env.sim.rootCredentials());
    expect(await root.sts.send(new GetCallerIdentityCommand({}))).toMatchObject({
      Account: env.acct,
      UserId: env.acct,
      Arn: `arn:aws:iam::${env.acct}:root`,
    });
    const { Role } = await env.admin.iam.send(
      new CreateRoleCommand({ RoleName: "r", AssumeRolePolicyDocument: trustAccount(env.acct) }),
    );
    expect(
      await failure(root.sts.send(new AssumeRoleCommand({ RoleArn: Role!.Arn, RoleSessionName: "s1" }))),
    ).toEqual({
      name: "AccessDenied",
      status: 403,
      message: "Roles may not be assumed by root accounts.",
    });
  });
});

describe("session policies", () => {
  it("a Deny * session policy leaves the session nothing its role allows, not even through the key policy", async () => {
    const env = account();
    const { bucket, keyArn } = await bucketAndKey(env);
    const session = await roleSession(env, "limited", {
      Policy: doc({ Effect: "Deny", Action: "*", Resource: "*" }),
    });
    expect(await failure(session.as.s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a.txt" })))).toEqual(
      {
        name: "AccessDenied",
        status: 403,
        message: `User: ${session.sessionArn} is not authorized to perform: s3:GetObject on resource: "arn:aws:s3:::${bucket}/a.txt" with an explicit deny in a session policy`,
      },
    );
    expect(
      await failure(session.as.kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from("x") }))),
    ).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${session.sessionArn} is not authorized to perform: kms:Encrypt on resource: ${keyArn} with an explicit deny in a session policy`,
    });
    // GetCallerIdentity needs no permission.
    expect((await session.as.sts.send(new GetCallerIdentityCommand({}))).Arn).toBe(session.sessionArn);
  });

  it("grants the session the intersection of its role's policies and its session policies", async () => {
    const env = account();
    const { bucket, keyArn } = await bucketAndKey(env);
    const session = await roleSession(env, "readonly", {
      PolicyArns: [{ arn: "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess" }],
    });
    await expect(
      session.as.s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a.txt" })),
    ).resolves.toBeDefined();
    expect(
      await failure(session.as.s3.send(new PutObjectCommand({ Bucket: bucket, Key: "b.txt", Body: "x" }))),
    ).toMatchObject({
      name: "AccessDenied",
      message: expect.stringMatching(/because no session policy allows the s3:PutObject action$/),
    });
    expect(
      await failure(session.as.kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from("x") }))),
    ).toMatchObject({
      name: "AccessDeniedException",
      message: expect.stringMatching(/no session policy allows/),
    });
  });

  it("does not limit what a bucket policy grants the session by its own ARN, but limits what it grants the role", async () => {
    const env = account();
    const { bucket } = await bucketAndKey(env);
    const onlyList = doc({ Effect: "Allow", Action: "s3:ListBucket", Resource: "*" });
    const session = await roleSession(env, "narrow", { Policy: onlyList });
    const grant = (principal: string) =>
      env.admin.s3.send(
        new PutBucketPolicyCommand({
          Bucket: bucket,
          Policy: doc({
            Effect: "Allow",
            Principal: { AWS: principal },
            Action: "s3:GetObject",
            Resource: `arn:aws:s3:::${bucket}/*`,
          }),
        }),
      );
    await grant(session.roleArn);
    expect(
      await failure(session.as.s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a.txt" }))),
    ).toMatchObject({
      name: "AccessDenied",
    });
    await grant(session.sessionArn);
    await expect(
      session.as.s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a.txt" })),
    ).resolves.toBeDefined();
  });

  it("refuses a session policy that is not a valid identity policy, or a managed policy that does not exist", async () => {
    const env = account();
    const { Role } = await env.admin.iam.send(
      new CreateRoleCommand({ RoleName: "r", AssumeRolePolicyDocument: trustAccount(env.acct) }),
    );
    expect(
      await failure(
        env.admin.sts.send(new AssumeRoleCommand({ RoleArn: Role!.Arn, RoleSessionName: "s1", Policy: "{" })),
      ),
    ).toMatchObject({ name: "MalformedPolicyDocumentException", status: 400 });
    expect(
      await failure(
        env.admin.sts.send(
          new AssumeRoleCommand({
            RoleArn: Role!.Arn,
            RoleSessionName: "s1",
            PolicyArns: [{ arn: `arn:aws:iam::${env.acct}:policy/nope` }],
          }),
        ),
      ),
    ).toMatchObject({ name: "MalformedPolicyDocumentException", status: 400 });
  });
});

describe("NotPrincipal and role sessions", () => {
  it("exempts a session from a NotPrincipal Deny only by its session ARN, not by its role's", async () => {
    const env = account();
    const { bucket } = await bucketAndKey(env);
    const session = await roleSession(env, "reader");
    const exempt = (...names: string[]) =>
      env.admin.s3.send(
        new PutBucketPolicyCommand({
          Bucket: bucket,
          Policy: doc({
            Effect: "Deny",
            NotPrincipal: { AWS: [...names, `arn:aws:iam::${env.acct}:root`] },
            Action: "s3:GetObject",
            Resource: `arn:aws:s3:::${bucket}/*`,
          }),
        }),
      );
    const get = () => session.as.s3.send(new GetObjectCommand({ Bucket: bucket, Key: "a.txt" }));
    await exempt(session.roleArn);
    expect(await failure(get())).toMatchObject({
      name: "AccessDenied",
      message: expect.stringMatching(/with an explicit deny in a resource-based policy$/),
    });
    await exempt(session.roleArn, session.sessionArn);
    await expect(get()).resolves.toBeDefined();
  });
});
