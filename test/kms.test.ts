import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  DeleteRoleCommand,
  IAMClient,
  PutUserPolicyCommand,
} from "@aws-sdk/client-iam";
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  type CreateKeyCommandInput,
  DecryptCommand,
  type DecryptCommandInput,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GetKeyPolicyCommand,
  KMSClient,
  ListAliasesCommand,
  ListGrantsCommand,
  ListKeyPoliciesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  RevokeGrantCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
} from "@aws-sdk/client-kms";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import { describe, expect, it } from "vitest";
import { PROFILES } from "../sim/account.js";
import { Simulator } from "../sim/simulator.js";

/**
 * The simulated KMS through the real SDK v3 client: every error is asserted by name, HTTP status and
 * message, as aws-subset §1 states them.
 */

interface Failure {
  name: string;
  status: number | undefined;
  message: string;
}

async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    const err = e as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: err.name, status: err.$metadata?.httpStatusCode, message: err.message };
  }
  throw new Error("expected the call to fail");
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function setup(options: Parameters<typeof Simulator.inMemory>[0] = {}) {
  const sim = Simulator.inMemory(options);
  const kms = new KMSClient(sim.clientConfig());
  const iam = new IAMClient(sim.clientConfig());
  const sts = new STSClient(sim.clientConfig());
  const acct = sim.account.accountId;
  const root = `arn:aws:iam::${acct}:root`;
  const adminArn = `arn:aws:iam::${acct}:user/admin`;
  return { sim, kms, iam, sts, acct, root, adminArn };
}

type Env = ReturnType<typeof setup>;

const policyDoc = (...statements: object[]) =>
  JSON.stringify({ Version: "2012-10-17", Statement: statements });
const allow = (principal: string, action: string | string[], sid?: string) => ({
  ...(sid ? { Sid: sid } : {}),
  Effect: "Allow",
  Principal: { AWS: principal },
  Action: action,
  Resource: "*",
});

async function newKey(env: Env, extra: CreateKeyCommandInput = {}) {
  const { KeyMetadata } = await env.kms.send(new CreateKeyCommand(extra));
  return KeyMetadata!;
}

/** An IAM user with an access key and (optionally) an inline policy; returns a KMS client acting as it. */
async function newUser(env: Env, name: string, policy?: string) {
  const { User } = await env.iam.send(new CreateUserCommand({ UserName: name }));
  if (policy)
    await env.iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: "p", PolicyDocument: policy }));
  const { AccessKey } = await env.iam.send(new CreateAccessKeyCommand({ UserName: name }));
  const credentials = { accessKeyId: AccessKey!.AccessKeyId!, secretAccessKey: AccessKey!.SecretAccessKey! };
  return { arn: User!.Arn!, kms: new KMSClient(env.sim.clientConfig({ credentials })) };
}

/** A role the account may assume, and a KMS client acting as a session of it. */
async function newRoleSession(env: Env, name: string) {
  const trust = policyDoc({ Effect: "Allow", Principal: { AWS: env.root }, Action: "sts:AssumeRole" });
  const { Role } = await env.iam.send(
    new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: trust }),
  );
  const { Credentials } = await env.sts.send(
    new AssumeRoleCommand({ RoleArn: Role!.Arn!, RoleSessionName: "s1" }),
  );
  const credentials = {
    accessKeyId: Credentials!.AccessKeyId!,
    secretAccessKey: Credentials!.SecretAccessKey!,
    sessionToken: Credentials!.SessionToken!,
  };
  return {
    roleArn: Role!.Arn!,
    roleId: Role!.RoleId!,
    sessionArn: `arn:aws:sts::${env.acct}:assumed-role/${name}/s1`,
    kms: new KMSClient(env.sim.clientConfig({ credentials })),
  };
}

describe("KMS keys", () => {
  it("CreateKey returns AWS's KeyMetadata for a new symmetric key", async () => {
    const env = setup();
    const md = await newKey(env, { Description: "lab key" });
    expect(Object.keys(md).sort()).toEqual(
      [
        "AWSAccountId",
        "KeyId",
        "Arn",
        "CreationDate",
        "Enabled",
        "Description",
        "KeyUsage",
        "KeyState",
        "Origin",
        "KeyManager",
        "CustomerMasterKeySpec",
        "KeySpec",
        "EncryptionAlgorithms",
        "MultiRegion",
        "CurrentKeyMaterialId",
      ].sort(),
    );
    expect(md.KeyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(md).toMatchObject({
      AWSAccountId: env.acct,
      Arn: `arn:aws:kms:us-east-1:${env.acct}:key/${md.KeyId}`,
      Enabled: true,
      Description: "lab key",
      KeyUsage: "ENCRYPT_DECRYPT",
      KeyState: "Enabled",
      Origin: "AWS_KMS",
      KeyManager: "CUSTOMER",
      CustomerMasterKeySpec: "SYMMETRIC_DEFAULT",
      KeySpec: "SYMMETRIC_DEFAULT",
      EncryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
      MultiRegion: false,
    });
    expect(md.CreationDate).toBeInstanceOf(Date);
    expect(md.CurrentKeyMaterialId).toMatch(/^[0-9a-f]{64}$/);
  });

  it("a multi-Region key gets an mrk- id", async () => {
    const env = setup();
    const md = await newKey(env, { MultiRegion: true });
    expect(md.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/);
    expect(md.MultiRegion).toBe(true);
    expect(md.MultiRegionConfiguration?.MultiRegionKeyType).toBe("PRIMARY");
  });

  it("CreateKey without Policy stores the default key policy verbatim", async () => {
    const env = setup();
    const md = await newKey(env);
    const got = await env.kms.send(new GetKeyPolicyCommand({ KeyId: md.KeyId, PolicyName: "default" }));
    expect(got.PolicyName).toBe("default");
    expect(got.Policy).toBe(
      `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow",` +
        `"Principal":{"AWS":"arn:aws:iam::${env.acct}:root"},"Action":"kms:*","Resource":"*"}]}`,
    );
    expect((await env.kms.send(new ListKeyPoliciesCommand({ KeyId: md.KeyId }))).PolicyNames).toEqual([
      "default",
    ]);
    expect(
      await failure(env.kms.send(new GetKeyPolicyCommand({ KeyId: md.KeyId, PolicyName: "other" }))),
    ).toEqual({
      name: "NotFoundException",
      status: 400,
      message: "No such policy exists",
    });
  });

  it("DescribeKey finds a key by id, key ARN, alias name and alias ARN", async () => {
    const env = setup();
    const md = await newKey(env);
    await env.kms.send(new CreateAliasCommand({ AliasName: "alias/myFirstKey", TargetKeyId: md.KeyId }));
    for (const id of [
      md.KeyId!,
      md.Arn!,
      "alias/myFirstKey",
      `arn:aws:kms:us-east-1:${env.acct}:alias/myFirstKey`,
    ]) {
      const { KeyMetadata } = await env.kms.send(new DescribeKeyCommand({ KeyId: id }));
      expect(KeyMetadata?.Arn).toBe(md.Arn);
    }
  });

  it("answers unknown and malformed key ids with AWS's NotFoundException texts", async () => {
    const env = setup();
    const id = "11111111-2222-3333-4444-555555555555";
    const cases: [string, string][] = [
      ["not-a-key", "Invalid keyId 'not-a-key'"],
      [id, `Key 'arn:aws:kms:us-east-1:${env.acct}:key/${id}' does not exist`],
      [
        `arn:aws:kms:us-east-1:${env.acct}:key/${id}`,
        `Key 'arn:aws:kms:us-east-1:${env.acct}:key/${id}' does not exist`,
      ],
      ["alias/nope", `Alias arn:aws:kms:us-east-1:${env.acct}:alias/nope is not found.`],
      [`arn:aws:kms:eu-west-1:${env.acct}:key/${id}`, "Invalid arn eu-west-1"],
    ];
    for (const [keyId, message] of cases)
      expect(await failure(env.kms.send(new DescribeKeyCommand({ KeyId: keyId })))).toEqual({
        name: "NotFoundException",
        status: 400,
        message,
      });
  });

  it("keys are regional", async () => {
    const env = setup();
    const md = await newKey(env);
    const eu = new KMSClient(env.sim.clientConfig({ region: "eu-west-1" }));
    expect(await failure(eu.send(new DescribeKeyCommand({ KeyId: md.KeyId })))).toEqual({
      name: "NotFoundException",
      status: 400,
      message: `Key 'arn:aws:kms:eu-west-1:${env.acct}:key/${md.KeyId}' does not exist`,
    });
  });

  it("ListKeys lists the Region's keys and pages with Limit/Marker", async () => {
    const env = setup();
    const a = await newKey(env);
    const b = await newKey(env);
    const all = await env.kms.send(new ListKeysCommand({}));
    expect(all.Keys).toEqual([
      { KeyId: a.KeyId, KeyArn: a.Arn },
      { KeyId: b.KeyId, KeyArn: b.Arn },
    ]);
    expect(all.Truncated).toBe(false);
    const first = await env.kms.send(new ListKeysCommand({ Limit: 1 }));
    expect(first).toMatchObject({ Keys: [{ KeyId: a.KeyId }], Truncated: true });
    const second = await env.kms.send(new ListKeysCommand({ Limit: 1, Marker: first.NextMarker }));
    expect(second).toMatchObject({ Keys: [{ KeyId: b.KeyId }], Truncated: false });
  });
});

describe("KMS aliases", () => {
  it("enforces AWS's alias rules with AWS's messages", async () => {
    const env = setup();
    const md = await newKey(env);
    expect(
      await failure(env.kms.send(new CreateAliasCommand({ AliasName: "myKey", TargetKeyId: md.KeyId }))),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    });
    expect(
      await failure(
        env.kms.send(new CreateAliasCommand({ AliasName: "alias/bad name", TargetKeyId: md.KeyId })),
      ),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        "1 validation error detected: Value 'alias/bad name' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    });
    // aws-subset §9.2: the code for reserved names is unconfirmed; the simulator follows moto (empty
    // message, which the SDK reports as "UnknownError").
    expect(
      await failure(
        env.kms.send(new CreateAliasCommand({ AliasName: "alias/aws/mine", TargetKeyId: md.KeyId })),
      ),
    ).toEqual({
      name: "NotAuthorizedException",
      status: 400,
      message: "UnknownError",
    });
    await env.kms.send(new CreateAliasCommand({ AliasName: "alias/k", TargetKeyId: md.KeyId }));
    expect(
      await failure(env.kms.send(new CreateAliasCommand({ AliasName: "alias/k", TargetKeyId: md.KeyId }))),
    ).toEqual({
      name: "AlreadyExistsException",
      status: 400,
      message: `An alias with the name arn:aws:kms:us-east-1:${env.acct}:alias/k already exists`,
    });
    expect(
      await failure(env.kms.send(new CreateAliasCommand({ AliasName: "alias/k2", TargetKeyId: "alias/k" }))),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message: "Aliases must refer to keys. Not aliases",
    });
    expect(await failure(env.kms.send(new DeleteAliasCommand({ AliasName: "alias/gone" })))).toEqual({
      name: "NotFoundException",
      status: 400,
      message: `Alias arn:aws:kms:us-east-1:${env.acct}:alias/gone is not found.`,
    });
  });

  it("lists, retargets and deletes aliases; AWS's predefined aliases are listed without a target", async () => {
    const env = setup();
    const a = await newKey(env);
    const b = await newKey(env);
    await env.kms.send(new CreateAliasCommand({ AliasName: "alias/app", TargetKeyId: a.Arn }));
    let list = await env.kms.send(new ListAliasesCommand({}));
    const app = list.Aliases?.find((x) => x.AliasName === "alias/app");
    expect(app).toMatchObject({
      AliasArn: `arn:aws:kms:us-east-1:${env.acct}:alias/app`,
      TargetKeyId: a.KeyId,
    });
    expect(app?.CreationDate).toBeInstanceOf(Date);
    expect(list.Aliases?.find((x) => x.AliasName === "alias/aws/s3")).toEqual({
      AliasName: "alias/aws/s3",
      AliasArn: `arn:aws:kms:us-east-1:${env.acct}:alias/aws/s3`,
    });
    await env.kms.send(new UpdateAliasCommand({ AliasName: "alias/app", TargetKeyId: b.KeyId }));
    list = await env.kms.send(new ListAliasesCommand({ KeyId: b.KeyId }));
    expect(list.Aliases?.map((x) => x.AliasName)).toEqual(["alias/app"]);
    expect((await env.kms.send(new ListAliasesCommand({ KeyId: a.KeyId }))).Aliases).toEqual([]);
    await env.kms.send(new DeleteAliasCommand({ AliasName: "alias/app" }));
    expect((await env.kms.send(new ListAliasesCommand({ KeyId: b.KeyId }))).Aliases).toEqual([]);
  });

  it("an AWS managed key appears behind alias/aws/s3 on first use", async () => {
    const env = setup();
    const { KeyMetadata } = await env.kms.send(new DescribeKeyCommand({ KeyId: "alias/aws/s3" }));
    expect(KeyMetadata).toMatchObject({ KeyManager: "AWS", KeyState: "Enabled" });
    // Its policy only lets principals use it through S3, so a direct Encrypt is refused even for the admin.
    const err = await failure(
      env.kms.send(new EncryptCommand({ KeyId: "alias/aws/s3", Plaintext: enc.encode("x") })),
    );
    expect(err.name).toBe("AccessDeniedException");
  });
});

describe("KMS cryptography", () => {
  it("encrypts and decrypts, with and without context; responses name the key ARN", async () => {
    const env = setup();
    const md = await newKey(env);
    await env.kms.send(new CreateAliasCommand({ AliasName: "alias/c", TargetKeyId: md.KeyId }));
    const plain = await env.kms.send(
      new EncryptCommand({ KeyId: "alias/c", Plaintext: enc.encode("hello") }),
    );
    expect(plain.KeyId).toBe(md.Arn);
    expect(plain.EncryptionAlgorithm).toBe("SYMMETRIC_DEFAULT");
    const out = await env.kms.send(new DecryptCommand({ CiphertextBlob: plain.CiphertextBlob }));
    expect(dec.decode(out.Plaintext)).toBe("hello");
    expect(out.KeyId).toBe(md.Arn);
    expect(out.KeyMaterialId).toBe(md.CurrentKeyMaterialId);

    const context = { "aws:s3:arn": "arn:aws:s3:::bucket/key", Purpose: "Lab" };
    const withCtx = await env.kms.send(
      new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("secret"), EncryptionContext: context }),
    );
    const back = await env.kms.send(
      new DecryptCommand({
        CiphertextBlob: withCtx.CiphertextBlob,
        EncryptionContext: { Purpose: "Lab", "aws:s3:arn": "arn:aws:s3:::bucket/key" },
        KeyId: md.Arn,
      }),
    );
    expect(dec.decode(back.Plaintext)).toBe("secret");
  });

  it("a context mismatch, a missing context or a tampered blob is InvalidCiphertextException with no message", async () => {
    const env = setup();
    const md = await newKey(env);
    const { CiphertextBlob } = await env.kms.send(
      new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("x"), EncryptionContext: { a: "b" } }),
    );
    const tampered = Uint8Array.from(CiphertextBlob!);
    tampered[tampered.length - 1]! ^= 1;
    const inputs: DecryptCommandInput[] = [
      { CiphertextBlob, EncryptionContext: { a: "B" } },
      { CiphertextBlob, EncryptionContext: { A: "b" } },
      { CiphertextBlob },
      { CiphertextBlob: tampered, EncryptionContext: { a: "b" } },
      { CiphertextBlob: enc.encode("not a kms blob") },
    ];
    for (const input of inputs) {
      const err = await failure(env.kms.send(new DecryptCommand(input)));
      expect(err).toMatchObject({ name: "InvalidCiphertextException", status: 400 });
      // AWS sends an empty message; the SDK reports an empty message as "UnknownError".
      expect(err.message).toBe("UnknownError");
    }
  });

  it("Decrypt with the wrong KeyId is IncorrectKeyException", async () => {
    const env = setup();
    const a = await newKey(env);
    const b = await newKey(env);
    const { CiphertextBlob } = await env.kms.send(
      new EncryptCommand({ KeyId: a.KeyId, Plaintext: enc.encode("x") }),
    );
    expect(await failure(env.kms.send(new DecryptCommand({ CiphertextBlob, KeyId: b.KeyId })))).toEqual({
      name: "IncorrectKeyException",
      status: 400,
      message: "The key ID in the request does not identify a CMK that can perform this operation.",
    });
  });

  it("Plaintext must be 1–4096 bytes", async () => {
    const env = setup();
    const md = await newKey(env);
    expect(
      await failure(env.kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: new Uint8Array(4097) }))),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    });
    const max = await env.kms.send(
      new EncryptCommand({ KeyId: md.KeyId, Plaintext: new Uint8Array(4096).fill(7) }),
    );
    const out = await env.kms.send(new DecryptCommand({ CiphertextBlob: max.CiphertextBlob }));
    expect(out.Plaintext).toEqual(new Uint8Array(4096).fill(7));
  });

  it("GenerateDataKey takes exactly one of KeySpec and NumberOfBytes", async () => {
    const env = setup();
    const md = await newKey(env);
    const k256 = await env.kms.send(new GenerateDataKeyCommand({ KeyId: md.KeyId, KeySpec: "AES_256" }));
    expect(k256.Plaintext).toHaveLength(32);
    expect(k256.KeyId).toBe(md.Arn);
    expect(k256.KeyMaterialId).toBe(md.CurrentKeyMaterialId);
    const back = await env.kms.send(new DecryptCommand({ CiphertextBlob: k256.CiphertextBlob }));
    expect(back.Plaintext).toEqual(k256.Plaintext);
    expect(
      (await env.kms.send(new GenerateDataKeyCommand({ KeyId: md.KeyId, KeySpec: "AES_128" }))).Plaintext,
    ).toHaveLength(16);
    expect(
      (await env.kms.send(new GenerateDataKeyCommand({ KeyId: md.KeyId, NumberOfBytes: 64 }))).Plaintext,
    ).toHaveLength(64);
    const without = await env.kms.send(
      new GenerateDataKeyWithoutPlaintextCommand({
        KeyId: md.KeyId,
        KeySpec: "AES_256",
        EncryptionContext: { k: "v" },
      }),
    );
    expect("Plaintext" in without).toBe(false);
    expect(
      (
        await env.kms.send(
          new DecryptCommand({ CiphertextBlob: without.CiphertextBlob, EncryptionContext: { k: "v" } }),
        )
      ).Plaintext,
    ).toHaveLength(32);
    for (const input of [
      { KeyId: md.KeyId },
      { KeyId: md.KeyId, KeySpec: "AES_256" as const, NumberOfBytes: 32 },
    ])
      expect(await failure(env.kms.send(new GenerateDataKeyCommand(input)))).toEqual({
        name: "ValidationException",
        status: 400,
        message: "Please specify either number of bytes or key spec.",
      });
    expect(
      await failure(env.kms.send(new GenerateDataKeyCommand({ KeyId: md.KeyId, NumberOfBytes: 2000 }))),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message:
        "1 validation error detected: Value '2000' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
    });
  });

  it("ReEncrypt moves a ciphertext to another key and context", async () => {
    const env = setup();
    const a = await newKey(env);
    const b = await newKey(env);
    const first = await env.kms.send(
      new EncryptCommand({ KeyId: a.KeyId, Plaintext: enc.encode("move me"), EncryptionContext: { v: "1" } }),
    );
    const moved = await env.kms.send(
      new ReEncryptCommand({
        CiphertextBlob: first.CiphertextBlob,
        SourceEncryptionContext: { v: "1" },
        DestinationKeyId: b.KeyId,
        DestinationEncryptionContext: { v: "2" },
      }),
    );
    expect(moved).toMatchObject({ SourceKeyId: a.Arn, KeyId: b.Arn });
    const out = await env.kms.send(
      new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob, EncryptionContext: { v: "2" } }),
    );
    expect(dec.decode(out.Plaintext)).toBe("move me");
    expect(out.KeyId).toBe(b.Arn);
  });
});

describe("KMS key states", () => {
  it("follows the key-state × operation matrix with AWS's messages", async () => {
    const env = setup();
    const md = await newKey(env);
    const arn = md.Arn!;
    const encrypt = () => env.kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("x") }));
    const { CiphertextBlob } = await encrypt();

    await env.kms.send(new DisableKeyCommand({ KeyId: md.KeyId }));
    expect((await env.kms.send(new DescribeKeyCommand({ KeyId: md.KeyId }))).KeyMetadata).toMatchObject({
      Enabled: false,
      KeyState: "Disabled",
    });
    const disabled = { name: "DisabledException", status: 400, message: `${arn} is disabled.` };
    expect(await failure(encrypt())).toEqual(disabled);
    expect(await failure(env.kms.send(new DecryptCommand({ CiphertextBlob })))).toEqual(disabled);
    expect(
      await failure(env.kms.send(new GenerateDataKeyCommand({ KeyId: md.KeyId, KeySpec: "AES_256" }))),
    ).toEqual(disabled);
    expect(
      await failure(
        env.kms.send(
          new CreateGrantCommand({ KeyId: md.KeyId, GranteePrincipal: env.root, Operations: ["Decrypt"] }),
        ),
      ),
    ).toEqual(disabled);
    await env.kms.send(new CreateAliasCommand({ AliasName: "alias/while-disabled", TargetKeyId: md.KeyId }));
    await env.kms.send(new TagResourceCommand({ KeyId: md.KeyId, Tags: [{ TagKey: "t", TagValue: "v" }] }));
    await env.kms.send(new EnableKeyCommand({ KeyId: md.KeyId }));
    await encrypt();

    expect(
      await failure(
        env.kms.send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 5 })),
      ),
    ).toEqual({
      name: "ValidationException",
      status: 400,
      message: "PendingWindowInDays should be between 7 and 30, but it is 5",
    });
    const scheduled = await env.kms.send(
      new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 7 }),
    );
    expect(scheduled).toMatchObject({ KeyId: arn, KeyState: "PendingDeletion", PendingWindowInDays: 7 });
    const days = (scheduled.DeletionDate!.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThan(7.1);
    const described = (await env.kms.send(new DescribeKeyCommand({ KeyId: md.KeyId }))).KeyMetadata!;
    expect(described).toMatchObject({
      KeyState: "PendingDeletion",
      Enabled: false,
      PendingDeletionWindowInDays: 7,
    });
    expect(described.DeletionDate).toEqual(scheduled.DeletionDate);

    const pending = { name: "KMSInvalidStateException", status: 400, message: `${arn} is pending deletion.` };
    expect(await failure(encrypt())).toEqual(pending);
    expect(await failure(env.kms.send(new DecryptCommand({ CiphertextBlob })))).toEqual(pending);
    expect(await failure(env.kms.send(new EnableKeyCommand({ KeyId: md.KeyId })))).toEqual(pending);
    expect(await failure(env.kms.send(new DisableKeyCommand({ KeyId: md.KeyId })))).toEqual(pending);
    expect(await failure(env.kms.send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId })))).toEqual(pending);
    expect(
      await failure(env.kms.send(new CreateAliasCommand({ AliasName: "alias/late", TargetKeyId: md.KeyId }))),
    ).toEqual(pending);
    expect(
      await failure(
        env.kms.send(new TagResourceCommand({ KeyId: md.KeyId, Tags: [{ TagKey: "a", TagValue: "b" }] })),
      ),
    ).toEqual(pending);
    // Still fine while pending deletion.
    await env.kms.send(new GetKeyPolicyCommand({ KeyId: md.KeyId }));
    await env.kms.send(new ListResourceTagsCommand({ KeyId: md.KeyId }));
    await env.kms.send(new DeleteAliasCommand({ AliasName: "alias/while-disabled" }));

    expect(await env.kms.send(new CancelKeyDeletionCommand({ KeyId: md.KeyId }))).toMatchObject({
      KeyId: arn,
    });
    const after = (await env.kms.send(new DescribeKeyCommand({ KeyId: md.KeyId }))).KeyMetadata!;
    expect(after).toMatchObject({ KeyState: "Disabled", Enabled: false });
    expect(after.DeletionDate).toBeUndefined();
    expect(await failure(env.kms.send(new CancelKeyDeletionCommand({ KeyId: md.KeyId })))).toEqual({
      name: "KMSInvalidStateException",
      status: 400,
      message: `${arn} is not pending deletion.`,
    });
  });
});

describe("KMS tags", () => {
  it("tags, lists and untags; aws: keys are reserved", async () => {
    const env = setup();
    const md = await newKey(env, { Tags: [{ TagKey: "env", TagValue: "lab" }] });
    await env.kms.send(
      new TagResourceCommand({ KeyId: md.KeyId, Tags: [{ TagKey: "owner", TagValue: "me" }] }),
    );
    expect((await env.kms.send(new ListResourceTagsCommand({ KeyId: md.KeyId }))).Tags).toEqual([
      { TagKey: "env", TagValue: "lab" },
      { TagKey: "owner", TagValue: "me" },
    ]);
    await env.kms.send(new UntagResourceCommand({ KeyId: md.KeyId, TagKeys: ["env"] }));
    expect((await env.kms.send(new ListResourceTagsCommand({ KeyId: md.KeyId }))).Tags).toEqual([
      { TagKey: "owner", TagValue: "me" },
    ]);
    const reserved = { name: "TagException", status: 400, message: "Tags beginning with aws: are reserved" };
    expect(
      await failure(
        env.kms.send(new TagResourceCommand({ KeyId: md.KeyId, Tags: [{ TagKey: "aws:x", TagValue: "v" }] })),
      ),
    ).toEqual(reserved);
    expect(
      await failure(env.kms.send(new CreateKeyCommand({ Tags: [{ TagKey: "AWS:y", TagValue: "v" }] }))),
    ).toEqual(reserved);
  });
});

describe("KMS key policies and authorisation", () => {
  it("refuses malformed policies, unknown principals and policies that lock the caller out", async () => {
    const env = setup();
    const md = await newKey(env);
    const malformed = await failure(
      env.kms.send(new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: "{not json" })),
    );
    expect(malformed).toMatchObject({ name: "MalformedPolicyDocumentException", status: 400 });
    expect(malformed.message.length).toBeGreaterThan(0);

    const ghost = `arn:aws:iam::${env.acct}:role/ghost`;
    expect(
      await failure(
        env.kms.send(
          new PutKeyPolicyCommand({
            KeyId: md.KeyId,
            Policy: policyDoc(allow(env.root, "kms:*"), allow(ghost, "kms:Decrypt")),
          }),
        ),
      ),
    ).toEqual({
      name: "MalformedPolicyDocumentException",
      status: 400,
      message: "Policy contains a statement with one or more invalid principals.",
    });

    const other = await newUser(env, "other");
    const lockout = {
      name: "MalformedPolicyDocumentException",
      status: 400,
      message: "The new key policy will not allow you to update the key policy in the future.",
    };
    const otherOnly = policyDoc(allow(other.arn, "kms:*"));
    expect(
      await failure(env.kms.send(new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: otherOnly }))),
    ).toEqual(lockout);
    expect(await failure(env.kms.send(new CreateKeyCommand({ Policy: otherOnly })))).toEqual(lockout);
    // Allowing every action but PutKeyPolicy is a lockout too.
    const noPut = policyDoc(
      allow(env.adminArn, ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GetKeyPolicy"]),
    );
    expect(await failure(env.kms.send(new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: noPut })))).toEqual(
      lockout,
    );

    // BypassPolicyLockoutSafetyCheck stores it anyway, and the admin is then locked out for real.
    await env.kms.send(
      new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: otherOnly, BypassPolicyLockoutSafetyCheck: true }),
    );
    expect((await other.kms.send(new GetKeyPolicyCommand({ KeyId: md.KeyId }))).Policy).toBe(otherOnly);
    expect(await failure(env.kms.send(new DescribeKeyCommand({ KeyId: md.KeyId })))).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${env.adminArn} is not authorized to perform: kms:DescribeKey on resource: ${md.Arn} because no resource-based policy allows the kms:DescribeKey action`,
    });
    const created = await env.kms.send(
      new CreateKeyCommand({ Policy: otherOnly, BypassPolicyLockoutSafetyCheck: true }),
    );
    expect(created.KeyMetadata?.KeyState).toBe("Enabled");
  });

  it("stores the policy text exactly as given", async () => {
    const env = setup();
    const text = `{\n  "Version": "2012-10-17",\n  "Statement": [ ${JSON.stringify(allow(env.root, "kms:*"))} ]\n}`;
    const md = (await env.kms.send(new CreateKeyCommand({ Policy: text }))).KeyMetadata!;
    expect((await env.kms.send(new GetKeyPolicyCommand({ KeyId: md.KeyId }))).Policy).toBe(text);
  });

  it("names the missing or denying policy in AccessDeniedException", async () => {
    const env = setup();
    const md = await newKey(env);
    const user = await newUser(env, "alice");
    const encrypt = (kms: KMSClient) =>
      kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("x") }));
    const denied = (reason: string) => ({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${user.arn} is not authorized to perform: kms:Encrypt on resource: ${md.Arn} ${reason}`,
    });
    // Default policy delegates to IAM, and alice's IAM policies are silent.
    expect(await failure(encrypt(user.kms))).toEqual(
      denied("because no identity-based policy allows the kms:Encrypt action"),
    );
    // The key policy naming alice allows her by itself.
    await env.kms.send(
      new PutKeyPolicyCommand({
        KeyId: md.KeyId,
        Policy: policyDoc(allow(env.root, "kms:*"), allow(user.arn, "kms:Encrypt")),
      }),
    );
    await encrypt(user.kms);
    // An explicit deny in the key policy wins.
    await env.kms.send(
      new PutKeyPolicyCommand({
        KeyId: md.KeyId,
        Policy: policyDoc(allow(env.root, "kms:*"), allow(user.arn, "kms:Encrypt"), {
          Effect: "Deny",
          Principal: { AWS: user.arn },
          Action: "kms:Encrypt",
          Resource: "*",
        }),
      }),
    );
    expect(await failure(encrypt(user.kms))).toEqual(
      denied("with an explicit deny in a resource-based policy"),
    );
  });

  it("IAM allows are ineffective unless the key policy delegates to the account", async () => {
    const env = setup();
    const bob = await newUser(env, "bob", policyDoc({ Effect: "Allow", Action: "kms:*", Resource: "*" }));
    const md = await newKey(env);
    await bob.kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("x") }));
    await env.kms.send(
      new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: policyDoc(allow(env.adminArn, "kms:*")) }),
    );
    expect(
      await failure(bob.kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("x") }))),
    ).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${bob.arn} is not authorized to perform: kms:Encrypt on resource: ${md.Arn} because no resource-based policy allows the kms:Encrypt action`,
    });
    // An explicit deny in IAM bites even where the key policy allows.
    const carol = await newUser(
      env,
      "carol",
      policyDoc({ Effect: "Deny", Action: "kms:Encrypt", Resource: "*" }),
    );
    await env.kms.send(
      new PutKeyPolicyCommand({
        KeyId: md.KeyId,
        Policy: policyDoc(allow(env.adminArn, "kms:*"), allow(carol.arn, "kms:Encrypt")),
      }),
    );
    expect(
      await failure(carol.kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("x") }))),
    ).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${carol.arn} is not authorized to perform: kms:Encrypt on resource: ${md.Arn} with an explicit deny in an identity-based policy`,
    });
  });

  it("CreateKey and ListKeys are authorised by IAM policies alone", async () => {
    const env = setup();
    const dave = await newUser(env, "dave");
    expect(await failure(dave.kms.send(new CreateKeyCommand({})))).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${dave.arn} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action`,
    });
    expect((await failure(dave.kms.send(new ListKeysCommand({})))).name).toBe("AccessDeniedException");
    expect((await failure(dave.kms.send(new ListAliasesCommand({})))).name).toBe("AccessDeniedException");
  });

  it("stage 6: removing the key users' statement revokes a role session's access; putting it back restores it", async () => {
    const env = setup();
    const session = await newRoleSession(env, "KeyUser");
    const withUsers = policyDoc(
      allow(env.root, "kms:*", "Enable IAM User Permissions"),
      allow(
        session.roleArn,
        ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Allow use of the key",
      ),
    );
    const withoutUsers = policyDoc(allow(env.root, "kms:*", "Enable IAM User Permissions"));
    const md = (await env.kms.send(new CreateKeyCommand({ Policy: withUsers }))).KeyMetadata!;
    const { CiphertextBlob } = await session.kms.send(
      new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("data") }),
    );
    expect(dec.decode((await session.kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext)).toBe(
      "data",
    );

    await env.kms.send(new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: withoutUsers }));
    expect(await failure(session.kms.send(new DecryptCommand({ CiphertextBlob })))).toEqual({
      name: "AccessDeniedException",
      status: 400,
      message: `User: ${session.sessionArn} is not authorized to perform: kms:Decrypt on resource: ${md.Arn} because no identity-based policy allows the kms:Decrypt action`,
    });

    await env.kms.send(new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: withUsers }));
    expect(dec.decode((await session.kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext)).toBe(
      "data",
    );
  });

  it("a key policy put takes effect only after keyPolicyPropagationMs; until then the one before holds", async () => {
    let now = Date.now();
    const env = setup({
      profile: { ...PROFILES.instant!, keyPolicyPropagationMs: 40_000 },
      clock: () => new Date(now),
    });
    const session = await newRoleSession(env, "KeyUser");
    const root = allow(env.root, "kms:*", "Enable IAM User Permissions");
    const withUsers = policyDoc(
      root,
      allow(session.roleArn, ["kms:Encrypt", "kms:Decrypt"], "Allow use of the key"),
    );
    const withoutUsers = policyDoc(root);
    const md = (await env.kms.send(new CreateKeyCommand({ Policy: withUsers }))).KeyMetadata!;
    const { CiphertextBlob } = await session.kms.send(
      new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("data") }),
    );
    const decrypts = async () =>
      session.kms.send(new DecryptCommand({ CiphertextBlob })).then(
        () => true,
        () => false,
      );

    await env.kms.send(new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: withoutUsers }));
    // GetKeyPolicy shows the new policy at once; authorisation still reads the one before.
    expect((await env.kms.send(new GetKeyPolicyCommand({ KeyId: md.KeyId }))).Policy).toBe(withoutUsers);
    expect(await decrypts()).toBe(true);
    now += 39_000;
    expect(await decrypts()).toBe(true);
    now += 1_000;
    expect(await decrypts()).toBe(false);

    // Put back: that too takes effect only after the delay.
    await env.kms.send(new PutKeyPolicyCommand({ KeyId: md.KeyId, Policy: withUsers }));
    expect(await decrypts()).toBe(false);
    now += 40_000;
    expect(await decrypts()).toBe(true);
  });

  it("a deleted role degrades to its unique id in the key policy and a re-created role is not matched", async () => {
    const env = setup();
    const first = await newRoleSession(env, "Temp");
    const text = policyDoc(allow(env.root, "kms:*"), allow(first.roleArn, "kms:Encrypt"));
    const md = (await env.kms.send(new CreateKeyCommand({ Policy: text }))).KeyMetadata!;
    await env.iam.send(new DeleteRoleCommand({ RoleName: "Temp" }));
    const shown = (await env.kms.send(new GetKeyPolicyCommand({ KeyId: md.KeyId }))).Policy!;
    expect(shown).toBe(text.replace(`"${first.roleArn}"`, `"${first.roleId}"`));
    const second = await newRoleSession(env, "Temp");
    expect(second.roleArn).toBe(first.roleArn);
    expect(
      (await failure(second.kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("x") }))))
        .name,
    ).toBe("AccessDeniedException");
  });

  it("grants authorise their grantee for the granted operations only", async () => {
    const env = setup();
    const session = await newRoleSession(env, "Grantee");
    const md = await newKey(env);
    const encrypt = () =>
      session.kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("g") }));
    expect((await failure(encrypt())).name).toBe("AccessDeniedException");
    const { GrantId, GrantToken } = await env.kms.send(
      new CreateGrantCommand({
        KeyId: md.KeyId,
        GranteePrincipal: session.roleArn,
        Operations: ["Encrypt", "Decrypt"],
        Name: "g1",
      }),
    );
    expect(GrantId).toMatch(/^[0-9a-f]{64}$/);
    expect(GrantToken?.length).toBeGreaterThan(0);
    const { CiphertextBlob } = await encrypt();
    await session.kms.send(new DecryptCommand({ CiphertextBlob }));
    expect(
      (await failure(session.kms.send(new GenerateDataKeyCommand({ KeyId: md.KeyId, KeySpec: "AES_256" }))))
        .name,
    ).toBe("AccessDeniedException");
    const listed = await env.kms.send(new ListGrantsCommand({ KeyId: md.KeyId }));
    expect(listed.Grants).toHaveLength(1);
    expect(listed.Grants?.[0]).toMatchObject({
      KeyId: md.Arn,
      GrantId,
      Name: "g1",
      GranteePrincipal: session.roleArn,
      IssuingAccount: env.root,
      Operations: ["Encrypt", "Decrypt"],
    });
    await env.kms.send(new RevokeGrantCommand({ KeyId: md.KeyId, GrantId }));
    expect((await failure(encrypt())).name).toBe("AccessDeniedException");
    expect(await failure(env.kms.send(new RevokeGrantCommand({ KeyId: md.KeyId, GrantId })))).toMatchObject({
      name: "InvalidGrantIdException",
      status: 400,
    });
  });

  it("grant constraints bind the encryption context", async () => {
    const env = setup();
    const session = await newRoleSession(env, "Scoped");
    const md = await newKey(env);
    await env.kms.send(
      new CreateGrantCommand({
        KeyId: md.KeyId,
        GranteePrincipal: session.roleArn,
        Operations: ["Encrypt"],
        Constraints: { EncryptionContextSubset: { team: "blue" } },
      }),
    );
    await session.kms.send(
      new EncryptCommand({
        KeyId: md.KeyId,
        Plaintext: enc.encode("x"),
        EncryptionContext: { team: "blue", x: "y" },
      }),
    );
    expect(
      (
        await failure(
          session.kms.send(
            new EncryptCommand({
              KeyId: md.KeyId,
              Plaintext: enc.encode("x"),
              EncryptionContext: { team: "red" },
            }),
          ),
        )
      ).name,
    ).toBe("AccessDeniedException");
  });

  it("authorises before checking the key state", async () => {
    const env = setup();
    const md = await newKey(env);
    const eve = await newUser(env, "eve");
    await env.kms.send(new DisableKeyCommand({ KeyId: md.KeyId }));
    expect(
      (await failure(eve.kms.send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: enc.encode("x") })))).name,
    ).toBe("AccessDeniedException");
  });
});
