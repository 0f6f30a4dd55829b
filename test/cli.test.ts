import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KMSClient, ListKeysCommand } from "@aws-sdk/client-kms";
import { describe, expect, it } from "vitest";
import { runCli, startServe, tempDir } from "./helpers/cli.js";

describe("kmslab sim credentials", () => {
  it("creates the account on first use and prints the same admin key each time", async () => {
    const cwd = tempDir();
    const first = await runCli(["sim", "credentials"], { cwd });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^export AWS_ACCESS_KEY_ID=AKIA[A-Z2-7]{16}$/m);
    expect(first.stdout).toMatch(/^export AWS_SECRET_ACCESS_KEY=[A-Za-z0-9/+]{40}$/m);
    expect(first.stdout).not.toContain("AWS_ENDPOINT_URL"); // nothing serves this account
    expect(first.stdout).toMatch(/^export AWS_REGION=us-east-1$/m);
    const json = await runCli(["sim", "credentials", "--format", "json"], { cwd });
    const creds = JSON.parse(json.stdout);
    expect(creds.AccountId).toMatch(/^\d{12}$/);
    expect(creds.UserArn).toBe(`arn:aws:iam::${creds.AccountId}:user/admin`);
    expect(first.stdout).toContain(`AWS_ACCESS_KEY_ID=${creds.AccessKeyId}`);
    // default data directory is .kmslab/sim under the working directory
    expect(JSON.parse(readFileSync(join(cwd, ".kmslab/sim/account.json"), "utf8")).accountId).toBe(
      creds.AccountId,
    );
  });

  it("honours --sim-data and KMSLAB_SIM_DATA", async () => {
    const dir = tempDir();
    const a = await runCli(["--sim-data", join(dir, "a"), "sim", "credentials", "--format", "json"]);
    const b = await runCli(["sim", "credentials", "--format", "json"], {
      env: { KMSLAB_SIM_DATA: join(dir, "a") },
    });
    expect(JSON.parse(a.stdout).AccountId).toBe(JSON.parse(b.stdout).AccountId);
  });

  it("rejects bad usage with exit code 2", async () => {
    const bad = await runCli(["sim", "credentials", "--format", "yaml"], { cwd: tempDir() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format must be "env" or "json"');
    expect((await runCli(["sim", "nope"])).code).toBe(2);
    expect((await runCli(["--no-such-flag"])).code).toBe(2);
  });

  it("refuses an unreadable data file with exit code 5 and leaves it as it was", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "sim"));
    writeFileSync(join(dir, "sim/account.json"), "{garbage");
    const res = await runCli(["--sim-data", join(dir, "sim"), "sim", "credentials"]);
    expect(res.code).toBe(5);
    expect(res.stderr).toContain("is not valid JSON");
    expect(readFileSync(join(dir, "sim/account.json"), "utf8")).toBe("{garbage");
  });
});

describe("kmslab sim serve", () => {
  it("prints the client environment, refuses a second server on the same data, and stops cleanly", async () => {
    const dir = tempDir();
    const server = await startServe(["--sim-data", dir]);
    try {
      expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.env.AWS_ACCESS_KEY_ID).toMatch(/^AKIA/);
      // while served, the credentials come with the server's endpoint
      const creds = await runCli(["--sim-data", dir, "sim", "credentials"]);
      expect(creds.stdout).toContain(`export AWS_ENDPOINT_URL=${server.endpoint}\n`);
      expect(creds.stdout).toContain(`export AWS_SECRET_ACCESS_KEY=${server.env.AWS_SECRET_ACCESS_KEY}\n`);
      const second = await runCli(["--sim-data", dir, "sim", "serve", "--port", "0"]);
      expect(second.code).toBe(3);
      expect(second.stderr).toContain(`in use by process ${server.child.pid}`);
      expect(second.stderr).toContain("kmslab sim serve");
      const res = await fetch(server.endpoint, { method: "POST" });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    } finally {
      expect(await server.stop("SIGTERM")).toBe(0);
    }
    // the lock is released: no endpoint any more, and it can be served again
    expect((await runCli(["--sim-data", dir, "sim", "credentials"])).stdout).not.toContain(
      "AWS_ENDPOINT_URL",
    );
    const again = await startServe(["--sim-data", dir]);
    expect(await again.stop("SIGINT")).toBe(0);
  });

  it("rejects bad flags with exit code 2", async () => {
    expect((await runCli(["sim", "serve", "--port", "99999"])).code).toBe(2);
    const faults = await runCli(["sim", "serve", "--faults", "kms:explode=1", "--sim-data", tempDir()]);
    expect(faults.code).toBe(2);
    expect(faults.stderr).toContain("unknown fault kind");
  });

  it.each([
    ["--faults flag", ["--faults", "kms.ListKeys:throttle=1"], {}],
    ["KMSLAB_SIM_FAULTS", [], { KMSLAB_SIM_FAULTS: "kms:throttle=1", KMSLAB_SIM_SEED: "3" }],
  ])("injects faults set by the %s", async (_how, args, env) => {
    const server = await startServe(["--sim-data", tempDir(), ...args], { env });
    try {
      expect(server.stderr()).toContain("fault injection on");
      const kms = new KMSClient({
        region: "us-east-1",
        endpoint: server.endpoint,
        maxAttempts: 1,
        credentials: {
          accessKeyId: server.env.AWS_ACCESS_KEY_ID!,
          secretAccessKey: server.env.AWS_SECRET_ACCESS_KEY!,
        },
      });
      const err = await kms.send(new ListKeysCommand({})).catch((e) => e);
      expect(err.name).toBe("ThrottlingException");
      expect(err.$metadata.httpStatusCode).toBe(400);
    } finally {
      await server.stop();
    }
  });
});
