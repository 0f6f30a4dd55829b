import {
  CreateAccessKeyCommand,
  CreatePolicyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ScheduleKeyDeletionCommand,
} from "@aws-sdk/client-kms";
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve } from "../sim/server.js";
import { Simulator } from "../sim/simulator.js";
import { failure } from "./helpers/errors.js";
import { signer } from "./helpers/sign.js";

/**
 * What an SDK or plain HTTP user of the simulator sees, checked against what AWS answers
 * (aws-subset §0, §1, §4, §6, §8): response headers, identifiers, field sets and denial texts.
 */

const SKEW_MS = 20 * 60_000;

describe("response headers", () => {
  const sim = Simulator.inMemory({ clock: () => new Date(Date.now() + SKEW_MS) });
  let url = "";
  let close = async () => {};
  beforeAll(async () => {
    const server = await serve(sim, { port: 0 });
    url = server.url;
    close = server.close;
  });
  afterAll(() => close());

  const expectAccountDate = (date: string | null) => {
    expect(date).not.toBeNull();
    // HTTP-date from the account's clock (20 minutes ahead here), not the host's.
    expect(Math.abs(Date.parse(date!) - (Date.now() + SKEW_MS))).toBeLessThan(5_000);
  };

  it("every answer, error or not, carries a request id and the account's Date (over HTTP)", async () => {
    const unsigned = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.ListKeys" },
      body: "{}",
    });
    expect(unsigned.status).toBe(400);
    expect(unsigned.headers.get("x-amzn-requestid")).toMatch(/^[0-9a-f-]{36}$/);
    expectAccountDate(unsigned.headers.get("date"));

    const query = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Action=GetCallerIdentity&Version=2011-06-15",
    });
    expect(query.status).toBe(403);
    expect(query.headers.get("x-amzn-requestid")).toMatch(/^[0-9a-f-]{36}$/);
    expectAccountDate(query.headers.get("date"));

    const unrouted = await fetch(`${url}/`);
    expectAccountDate(unrouted.headers.get("date"));
  });

  it("in process too", async () => {
    const out = await sim.requestHandler().handle({
      method: "POST",
      path: "/",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.ListKeys" },
      body: "{}",
    });
    expect(out.response.statusCode).toBe(400);
    expect(out.response.headers["x-amzn-requestid"]).toMatch(/^[0-9a-f-]{36}$/);
    expectAccountDate(out.response.headers.date ?? null);
  });

  it("an SDK whose clock is off corrects it from the Date header and succeeds, as against AWS", async () => {
    // The account's clock runs 20 minutes ahead of the host's: beyond KMS's 5 and STS's 15 minutes.
    const inProcess = sim.clientConfig();
    const overHttp = { region: "us-east-1", credentials: sim.credentials(), endpoint: url };
    for (const config of [inProcess, overHttp]) {
      const keys = await new KMSClient(config).send(new ListKeysCommand({}));
      expect(keys.$metadata.httpStatusCode).toBe(200);
      const id = await new STSClient(config).send(new GetCallerIdentityCommand({}));
      expect(id.Account).toBe(sim.account.accountId);
    }
  });

  it("a presigned STS GetCallerIdentity URL works with plain fetch", async () => {
    const server = Simulator.inMemory();
    const running = await serve(server, { port: 0 });
    try {
      const u = new URL(running.url);
      const presigned = await signer("sts", server.credentials()).presign(
        {
          method: "GET",
          protocol: "http:",
          hostname: u.hostname,
          port: Number(u.port),
          path: "/",
          query: { Action: "GetCallerIdentity", Version: "2011-06-15" },
          headers: { host: u.host },
        },
        { expiresIn: 60 },
      );
      const qs = new URLSearchParams(presigned.query as Record<string, string>).toString();
      const res = await fetch(`${running.url}/?${qs}`);
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(text).toContain(`<Arn>arn:aws:iam::${server.account.accountId}:user/admin</Arn>`);
    } finally {
      await running.close();
    }
  });
});

describe("identifiers", () => {
  it("unique ids are 21 characters (AIDA/AROA/ANPA), access key ids 20 (AKIA/ASIA)", async () => {
    const sim = Simulator.inMemory();
    const iam = new IAMClient(sim.clientConfig());
    const sts = new STSClient(sim.clientConfig());
    const acct = sim.account.accountId;
    const { User } = await iam.send(new CreateUserCommand({ UserName: "u" }));
    expect(User!.UserId).toMatch(/^AIDA[A-Z2-7]{17}$/);
    const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: "u" }));
    expect(AccessKey!.AccessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
    const trust = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: "sts:AssumeRole" },
      ],
    });
    const { Role } = await iam.send(
      new CreateRoleCommand({ RoleName: "r", AssumeRolePolicyDocument: trust }),
    );
    expect(Role!.RoleId).toMatch(/^AROA[A-Z2-7]{17}$/);
    const { Policy } = await iam.send(
      new CreatePolicyCommand({
        PolicyName: "p",
        PolicyDocument:
          '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
      }),
    );
    expect(Policy!.PolicyId).toMatch(/^ANPA[A-Z2-7]{17}$/);
    const session = await sts.send(new AssumeRoleCommand({ RoleArn: Role!.Arn!, RoleSessionName: "s-1" }));
    expect(session.Credentials!.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(session.AssumedRoleUser!.AssumedRoleId).toBe(`${Role!.RoleId}:s-1`);
    const admin = await sts.send(new GetCallerIdentityCommand({}));
    expect(admin.UserId).toMatch(/^AIDA[A-Z2-7]{17}$/);
  });
});

describe("KMS as the SDK parses it", () => {
  it("KeyMetadata has AWS's field set and types; deletion fields only while pending deletion", async () => {
    const sim = Simulator.inMemory();
    const kms = new KMSClient(sim.clientConfig());
    const { KeyMetadata: md } = await kms.send(new CreateKeyCommand({}));
    expect(Object.keys(md!).sort()).toEqual(
      [
        "AWSAccountId",
        "Arn",
        "CreationDate",
        "CurrentKeyMaterialId",
        "CustomerMasterKeySpec",
        "Description",
        "EncryptionAlgorithms",
        "Enabled",
        "KeyId",
        "KeyManager",
        "KeySpec",
        "KeyState",
        "KeyUsage",
        "MultiRegion",
        "Origin",
      ].sort(),
    );
    expect(md!.CreationDate).toBeInstanceOf(Date);
    expect(md!.Enabled).toBe(true);
    expect(md!.MultiRegion).toBe(false);
    expect(md!.Description).toBe("");

    const scheduled = await kms.send(
      new ScheduleKeyDeletionCommand({ KeyId: md!.KeyId!, PendingWindowInDays: 7 }),
    );
    expect(scheduled.KeyId).toBe(md!.Arn);
    expect(scheduled.DeletionDate).toBeInstanceOf(Date);
    const pending = (await kms.send(new DescribeKeyCommand({ KeyId: md!.KeyId! }))).KeyMetadata!;
    expect(pending).toMatchObject({
      KeyState: "PendingDeletion",
      Enabled: false,
      PendingDeletionWindowInDays: 7,
    });
    expect(pending.DeletionDate).toEqual(scheduled.DeletionDate);
    expect(pending.DeletionDate!.getTime() - pending.CreationDate!.getTime()).toBeGreaterThanOrEqual(
      7 * 86_400_000,
    );

    expect((await kms.send(new CancelKeyDeletionCommand({ KeyId: md!.KeyId! }))).KeyId).toBe(md!.Arn);
    const back = (await kms.send(new DescribeKeyCommand({ KeyId: md!.KeyId! }))).KeyMetadata!;
    expect(back).toMatchObject({ KeyState: "Disabled", Enabled: false });
    expect(back.DeletionDate).toBeUndefined();
    expect(back.PendingDeletionWindowInDays).toBeUndefined();
  });

  it("ListAliases pages through every alias once, with and without KeyId", async () => {
    const sim = Simulator.inMemory();
    const kms = new KMSClient(sim.clientConfig());
    const { KeyMetadata: md } = await kms.send(new CreateKeyCommand({}));
    for (let i = 0; i < 5; i++)
      await kms.send(new CreateAliasCommand({ AliasName: `alias/k${i}`, TargetKeyId: md!.KeyId! }));
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const page = await kms.send(
        new ListAliasesCommand({ Limit: 4, ...(marker ? { Marker: marker } : {}) }),
      );
      expect(page.Aliases!.length).toBeLessThanOrEqual(4);
      expect(page.Truncated).toBe(page.NextMarker !== undefined);
      names.push(...page.Aliases!.map((a) => a.AliasName!));
      marker = page.NextMarker;
    } while (marker);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(["alias/k0", "alias/k4", "alias/aws/s3"]));
    const forKey = await kms.send(new ListAliasesCommand({ KeyId: md!.Arn!, Limit: 3 }));
    expect(forKey.Aliases!.map((a) => a.AliasName)).toEqual(["alias/k0", "alias/k1", "alias/k2"]);
    expect(forKey.Truncated).toBe(true);
  });

  it("keys are regional: a key made in us-east-1 is unknown to a client signing for eu-west-1", async () => {
    const sim = Simulator.inMemory();
    const { KeyMetadata: md } = await new KMSClient(sim.clientConfig()).send(new CreateKeyCommand({}));
    const eu = new KMSClient(sim.clientConfig({ region: "eu-west-1" }));
    expect(await failure(eu.send(new DescribeKeyCommand({ KeyId: md!.KeyId! })))).toEqual({
      name: "NotFoundException",
      status: 400,
      message: `Key 'arn:aws:kms:eu-west-1:${sim.account.accountId}:key/${md!.KeyId}' does not exist`,
    });
    expect(await failure(eu.send(new DescribeKeyCommand({ KeyId: md!.Arn! })))).toMatchObject({
      name: "NotFoundException",
      message: "Invalid arn us-east-1",
    });
    const { KeyMetadata: euKey } = await eu.send(new CreateKeyCommand({}));
    expect(euKey!.Arn).toMatch(/^arn:aws:kms:eu-west-1:/);
  });

  it("denies a user (not a role) with AWS's texts, with and without an IAM policy", async () => {
    const sim = Simulator.inMemory();
    const iam = new IAMClient(sim.clientConfig());
    const acct = sim.account.accountId;
    const { KeyMetadata: md } = await new KMSClient(sim.clientConfig()).send(new CreateKeyCommand({}));
    await iam.send(new CreateUserCommand({ UserName: "bob" }));
    const { AccessKey } = await iam.send(new CreateAccessKeyCommand({ UserName: "bob" }));
    const bob = new KMSClient(
      sim.clientConfig({
        credentials: { accessKeyId: AccessKey!.AccessKeyId!, secretAccessKey: AccessKey!.SecretAccessKey! },
      }),
    );
    const user = `arn:aws:iam::${acct}:user/bob`;
    expect(await failure(bob.send(new CreateKeyCommand({})))).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${user} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action`,
    });
    expect(await failure(bob.send(new DescribeKeyCommand({ KeyId: md!.KeyId! })))).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${user} is not authorized to perform: kms:DescribeKey on resource: ${md!.Arn} because no identity-based policy allows the kms:DescribeKey action`,
    });
    await iam.send(
      new PutUserPolicyCommand({
        UserName: "bob",
        PolicyName: "describe",
        PolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: "kms:DescribeKey", Resource: "*" }],
        }),
      }),
    );
    expect((await bob.send(new DescribeKeyCommand({ KeyId: md!.KeyId! }))).KeyMetadata!.Arn).toBe(md!.Arn);
    expect(
      await failure(bob.send(new EncryptCommand({ KeyId: md!.KeyId!, Plaintext: Buffer.from("x") }))),
    ).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${user} is not authorized to perform: kms:Encrypt on resource: ${md!.Arn} because no identity-based policy allows the kms:Encrypt action`,
    });
  });
});
