import { GetRoleCommand, IAMClient, ListRolesCommand } from "@aws-sdk/client-iam";
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  KMSClient,
  ListKeysCommand,
} from "@aws-sdk/client-kms";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultInjector } from "../sim/faults.js";
import { type RunningServer, serve } from "../sim/server.js";
import { Simulator } from "../sim/simulator.js";
import { tempDir } from "./helpers/cli.js";

/** The same account answers the same way in process and over HTTP. */
describe.each(["in process", "over HTTP"] as const)("the simulator %s", (mode) => {
  const sim = Simulator.inMemory();
  let server: RunningServer | undefined;
  let config:
    | ReturnType<Simulator["clientConfig"]>
    | { region: string; credentials: ReturnType<Simulator["credentials"]>; endpoint: string };

  beforeAll(async () => {
    if (mode === "in process") config = sim.clientConfig();
    else {
      server = await serve(sim, { port: 0 });
      config = { region: "us-east-1", credentials: sim.credentials(), endpoint: server.url };
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  it("routes KMS (JSON), IAM and STS (query) and answers with request ids", async () => {
    const id = await new STSClient(config).send(new GetCallerIdentityCommand({}));
    expect(id.Account).toBe(sim.account.accountId);
    expect(id.Arn).toBe(`arn:aws:iam::${sim.account.accountId}:user/admin`);
    expect(id.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const kms = new KMSClient(config);
    const key = await kms.send(new CreateKeyCommand({}));
    const enc = await kms.send(
      new EncryptCommand({ KeyId: key.KeyMetadata!.KeyId!, Plaintext: Buffer.from("x") }),
    );
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob! }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe("x");
    expect((await new IAMClient(config).send(new ListRolesCommand({}))).Roles).toBeDefined();
  });

  it("raises the SDK's own exception classes with AWS's status and message", async () => {
    const err = await new IAMClient(config).send(new GetRoleCommand({ RoleName: "missing" })).catch((e) => e);
    expect(err.name).toBe("NoSuchEntityException");
    expect(err.$metadata.httpStatusCode).toBe(404);
    expect(err.message).toBe("The role with name missing cannot be found.");
  });

  it("rejects wrong credentials as AWS does", async () => {
    const bad = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "x".repeat(40) };
    const kmsErr = await new KMSClient({ ...config, credentials: bad })
      .send(new ListKeysCommand({}))
      .catch((e) => e);
    expect(kmsErr.name).toBe("UnrecognizedClientException");
    expect(kmsErr.$metadata.httpStatusCode).toBe(400);
    const wrongSecret = { accessKeyId: sim.credentials().accessKeyId, secretAccessKey: "y".repeat(40) };
    const stsErr = await new STSClient({ ...config, credentials: wrongSecret })
      .send(new GetCallerIdentityCommand({}))
      .catch((e) => e);
    expect(stsErr.name).toBe("SignatureDoesNotMatch");
    expect(stsErr.$metadata.httpStatusCode).toBe(403);
  });
});

describe("fault injection through the SDK", () => {
  it("throttles and fails as configured; the SDK's retries see AWS's retryable errors", async () => {
    const sim = Simulator.inMemory({ faults: FaultInjector.parse("kms.ListKeys:throttle=1;sts:5xx=1") });
    const once = new KMSClient(sim.clientConfig({ maxAttempts: 1 }));
    const throttled = await once.send(new ListKeysCommand({})).catch((e) => e);
    expect(throttled.name).toBe("ThrottlingException");
    expect(throttled.message).toBe("Rate exceeded");
    const failed = await new STSClient(sim.clientConfig({ maxAttempts: 2 }))
      .send(new GetCallerIdentityCommand({}))
      .catch((e) => e);
    expect(failed.$metadata.httpStatusCode).toBe(500);
    expect(failed.$metadata.attempts).toBe(2); // retried once, as the SDK retries 5xx
    sim.faults.clear();
    expect((await once.send(new ListKeysCommand({}))).Keys).toEqual([]);
  });

  it("with 30% throttling, calls still complete thanks to retries", async () => {
    const sim = Simulator.inMemory({ faults: FaultInjector.parse("kms:throttle=0.3", 5) });
    const kms = new KMSClient(sim.clientConfig({ maxAttempts: 10 }));
    for (let i = 0; i < 20; i++) await kms.send(new CreateKeyCommand({}));
    sim.faults.clear();
    expect((await kms.send(new ListKeysCommand({}))).Keys).toHaveLength(20);
  });
});

describe("a persistent account", () => {
  it("counts mutating calls and survives a reopen of its data directory", async () => {
    const dir = tempDir();
    const first = Simulator.open(dir);
    const kms = new KMSClient(first.clientConfig());
    const before = first.stats.mutatingCalls;
    const key = await kms.send(new CreateKeyCommand({ Description: "kept" }));
    await kms.send(new ListKeysCommand({}));
    expect(first.stats.mutatingCalls - before).toBe(1);
    const enc = await kms.send(
      new EncryptCommand({ KeyId: key.KeyMetadata!.KeyId!, Plaintext: Buffer.from("persist") }),
    );
    const creds = first.credentials();
    first.close();

    const second = Simulator.open(dir);
    try {
      expect(second.account.accountId).toBe(first.account.accountId);
      expect(second.credentials()).toEqual(creds);
      const dec = await new KMSClient(second.clientConfig()).send(
        new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob! }),
      );
      expect(Buffer.from(dec.Plaintext!).toString()).toBe("persist");
    } finally {
      second.close();
    }
  });
});
