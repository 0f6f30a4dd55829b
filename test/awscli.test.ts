import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AWS_CLI, awsCliEnv, type ServeHandle, startServe, tempDir } from "./helpers/cli.js";

/**
 * The AWS CLI (Debian's package, installed by .ci/run) against `kmslab sim serve`: the simulator
 * must work for a client that is not the JS SDK — botocore's serialisers, signer and parsers.
 */
const run = promisify(execFile);

interface AwsResult {
  code: number;
  stdout: string;
  stderr: string;
}

// Each `aws` command is a Python start-up: allow for a loaded machine.
describe("the AWS CLI against kmslab sim serve", { timeout: 120_000 }, () => {
  const work = tempDir("kmslab-awscli-");
  const data = join(work, "sim");
  let server: ServeHandle;
  let accountId: string;

  function aws(args: string[], creds?: Record<string, string>): Promise<AwsResult> {
    const env: Record<string, string> = { ...awsCliEnv(work, server), ...creds };
    return run(AWS_CLI, ["--endpoint-url", server.endpoint, "--output", "json", ...args], {
      env,
      cwd: work,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (err: { code: number; stdout: string; stderr: string }) => ({
        code: err.code,
        stdout: err.stdout,
        stderr: err.stderr,
      }),
    );
  }

  async function ok(args: string[], creds?: Record<string, string>): Promise<Record<string, unknown>> {
    const res = await aws(args, creds);
    expect(res.stderr, `aws ${args.join(" ")}`).toBe("");
    expect(res.code).toBe(0);
    return res.stdout.trim() ? JSON.parse(res.stdout) : {};
  }

  beforeAll(async () => {
    server = await startServe(["--sim-data", data]);
    const id = await ok(["sts", "get-caller-identity"]);
    accountId = id.Account as string;
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("creates a key user role, encrypts and decrypts as it, and loses access when removed from the key policy", async () => {
    const root = `arn:aws:iam::${accountId}:root`;
    const trust = {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: { AWS: root }, Action: "sts:AssumeRole" }],
    };
    const role = (
      await ok([
        "iam",
        "create-role",
        "--role-name",
        "kmslab-key-user",
        "--assume-role-policy-document",
        JSON.stringify(trust),
      ])
    ).Role as { Arn: string; AssumeRolePolicyDocument: unknown };
    expect(role.Arn).toBe(`arn:aws:iam::${accountId}:role/kmslab-key-user`);
    expect(role.AssumeRolePolicyDocument).toEqual(trust); // the CLI decodes IAM's URL-encoded documents

    const admin = `arn:aws:iam::${accountId}:user/admin`;
    const rootStatement = {
      Sid: "Enable IAM User Permissions",
      Effect: "Allow",
      Principal: { AWS: root },
      Action: "kms:*",
      Resource: "*",
    };
    const users = {
      Sid: "Allow use of the key",
      Effect: "Allow",
      Principal: { AWS: role.Arn },
      Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
      Resource: "*",
    };
    const admins = {
      Sid: "Allow access for Key Administrators",
      Effect: "Allow",
      Principal: { AWS: admin },
      Action: "kms:*",
      Resource: "*",
    };
    const withUser = { Version: "2012-10-17", Statement: [rootStatement, admins, users] };
    const withoutUser = { Version: "2012-10-17", Statement: [rootStatement, admins] };
    writeFileSync(join(work, "policy.json"), JSON.stringify(withUser));
    const key = (
      await ok(["kms", "create-key", "--description", "lab key", "--policy", "file://policy.json"])
    ).KeyMetadata as {
      KeyId: string;
      Arn: string;
      KeyState: string;
    };
    expect(key.KeyState).toBe("Enabled");

    const assumed = (
      await ok(["sts", "assume-role", "--role-arn", role.Arn, "--role-session-name", "learner"])
    ).Credentials as {
      AccessKeyId: string;
      SecretAccessKey: string;
      SessionToken: string;
    };
    const asRole = {
      AWS_ACCESS_KEY_ID: assumed.AccessKeyId,
      AWS_SECRET_ACCESS_KEY: assumed.SecretAccessKey,
      AWS_SESSION_TOKEN: assumed.SessionToken,
    };
    expect((await ok(["sts", "get-caller-identity"], asRole)).Arn).toBe(
      `arn:aws:sts::${accountId}:assumed-role/kmslab-key-user/learner`,
    );

    writeFileSync(join(work, "plain.txt"), "the secret report\n");
    const enc = await ok(
      ["kms", "encrypt", "--key-id", key.KeyId, "--plaintext", "fileb://plain.txt"],
      asRole,
    );
    expect(enc.KeyId).toBe(key.Arn);
    writeFileSync(join(work, "cipher.bin"), Buffer.from(enc.CiphertextBlob as string, "base64"));
    const dec = await ok(["kms", "decrypt", "--ciphertext-blob", "fileb://cipher.bin"], asRole);
    expect(Buffer.from(dec.Plaintext as string, "base64").toString()).toBe("the secret report\n");

    writeFileSync(join(work, "policy-without-user.json"), JSON.stringify(withoutUser));
    await ok([
      "kms",
      "put-key-policy",
      "--key-id",
      key.KeyId,
      "--policy-name",
      "default",
      "--policy",
      "file://policy-without-user.json",
    ]);
    const denied = await aws(["kms", "decrypt", "--ciphertext-blob", "fileb://cipher.bin"], asRole);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain("AccessDeniedException");
    expect(denied.stderr).toContain(
      `User: arn:aws:sts::${accountId}:assumed-role/kmslab-key-user/learner is not authorized to perform: kms:Decrypt`,
    );

    await ok([
      "kms",
      "put-key-policy",
      "--key-id",
      key.KeyId,
      "--policy-name",
      "default",
      "--policy",
      "file://policy.json",
    ]);
    const back = await ok(["kms", "decrypt", "--ciphertext-blob", "fileb://cipher.bin"], asRole);
    expect(Buffer.from(back.Plaintext as string, "base64").toString()).toBe("the secret report\n");
  });

  it("denies unsigned requests", async () => {
    const kms = await aws(["kms", "list-keys", "--no-sign-request"]);
    expect(kms.code).not.toBe(0);
    expect(kms.stderr).toContain("MissingAuthenticationTokenException");
    const sts = await aws(["sts", "get-caller-identity", "--no-sign-request"]);
    expect(sts.code).not.toBe(0);
    expect(sts.stderr).toContain("MissingAuthenticationToken");
    const iam = await aws(["iam", "list-roles", "--no-sign-request"]);
    expect(iam.code).not.toBe(0);
    expect(iam.stderr).toContain("MissingAuthenticationToken");
  });

  it("keeps keys across a restart on the same data directory: they still decrypt what they encrypted", async () => {
    const key = (await ok(["kms", "create-key"])).KeyMetadata as { KeyId: string };
    await ok(["kms", "create-alias", "--alias-name", "alias/restart-test", "--target-key-id", key.KeyId]);
    writeFileSync(join(work, "before.txt"), "written before the restart");
    const enc = await ok([
      "kms",
      "encrypt",
      "--key-id",
      "alias/restart-test",
      "--plaintext",
      "fileb://before.txt",
      "--encryption-context",
      "purpose=restart",
    ]);
    writeFileSync(join(work, "before.bin"), Buffer.from(enc.CiphertextBlob as string, "base64"));

    expect(await server.stop()).toBe(0);
    server = await startServe(["--sim-data", data]);

    const dec = await ok([
      "kms",
      "decrypt",
      "--ciphertext-blob",
      "fileb://before.bin",
      "--encryption-context",
      "purpose=restart",
    ]);
    expect(Buffer.from(dec.Plaintext as string, "base64").toString()).toBe(
      readFileSync(join(work, "before.txt"), "utf8"),
    );
    const wrongContext = await aws([
      "kms",
      "decrypt",
      "--ciphertext-blob",
      "fileb://before.bin",
      "--encryption-context",
      "purpose=other",
    ]);
    expect(wrongContext.stderr).toContain("InvalidCiphertextException");
    expect((await ok(["iam", "get-role", "--role-name", "kmslab-key-user"])).Role).toBeTruthy();
  });
});
