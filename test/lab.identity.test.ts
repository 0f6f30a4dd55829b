import { join } from "node:path";
import { CloudTrailClient, LookupEventsCommand } from "@aws-sdk/client-cloudtrail";
import { IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import { DescribeKeyCommand, GetKeyPolicyCommand, KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gradeLab } from "../grade/grade.js";
import { Clients } from "../machines/aws.js";
import { runLab } from "../machines/engine.js";
import { BlockedError, type RunnerHooks, StageRunner } from "../machines/runner.js";
import { Simulator } from "../sim/simulator.js";
import { MemoryStateStore } from "../state/index.js";
import { ROOT_CANNOT_ASSUME } from "../steps/build.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { keyUserAccess } from "../steps/stages/key-user-access.js";
import { runCli, type ServeHandle, startServe, tempDir } from "./helpers/cli.js";
import { type ClientSetup, credentialEnv, SSO_ROLE, ssoAdministrator } from "./helpers/identities.js";

/**
 * The lab run by the callers learners have besides an IAM user: an IAM Identity Center (SSO)
 * session, whose role has a path its session ARN leaves out, and the account's root user, who may
 * not assume the key-user role. In process through the engine, and as `kmslab run` against
 * `kmslab sim serve`.
 */
const FAST = { pollSeconds: 1, trailWaitSeconds: 60, propagationWaitSeconds: 10 };
const FAST_FLAGS = ["--poll-interval", "1", "--trail-wait", "60", "--propagation-wait", "10"];

async function runAs(sim: Simulator, credentials: ClientSetup["credentials"]) {
  const clients = new Clients({ ...sim.clientConfig({ credentials }), region: "us-east-1" });
  try {
    return await runLab({
      store: new MemoryStateStore(),
      clients,
      target: { kind: "sim", region: "us-east-1", accountId: sim.account.accountId },
      params: resolveParams(parseParams(FAST), sim.account.accountId),
      command: "test",
    });
  } finally {
    clients.destroy();
  }
}

const points = (result: Awaited<ReturnType<typeof runAs>>) =>
  Object.fromEntries(Object.entries(result.stages).map(([id, s]) => [id, s.points ?? s.status]));
const FULL_MARKS = {
  "create-key": 15,
  "trail-to-bucket": 15,
  "sse-kms-upload": 15,
  "public-access-denied": 15,
  "trail-key-usage": 20,
  "key-user-access": 20,
};

async function keyOf(sim: Simulator) {
  const kms = new KMSClient(sim.clientConfig());
  const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: "alias/myFirstKey" }));
  const { Policy } = await kms.send(new GetKeyPolicyCommand({ KeyId: KeyMetadata!.KeyId! }));
  return { description: KeyMetadata!.Description!, policy: JSON.parse(Policy!) as { Statement: object[] } };
}

describe("the lab as an IAM Identity Center (SSO) user", () => {
  it("passes every stage, with the key administered by the role's ARN, path included", async () => {
    const sim = Simulator.inMemory();
    const sso = await ssoAdministrator(sim.clientConfig());
    expect(points(await runAs(sim, sso.credentials))).toEqual(FULL_MARKS);
    const { policy } = await keyOf(sim);
    expect(policy.Statement).toContainEqual(
      expect.objectContaining({
        Sid: "Allow access for Key Administrators",
        Principal: { AWS: sso.roleArn },
      }),
    );
  });

  it("leaves the key to the root statement, and says so, when the caller may not read its own role", async () => {
    const sim = Simulator.inMemory();
    const sso = await ssoAdministrator(sim.clientConfig());
    await new IAMClient(sim.clientConfig()).send(
      new PutRolePolicyCommand({
        RoleName: SSO_ROLE,
        PolicyName: "no-self-read",
        PolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Deny", Action: "iam:GetRole", Resource: sso.roleArn }],
        }),
      }),
    );
    expect(points(await runAs(sim, sso.credentials))).toEqual(FULL_MARKS);
    const { policy, description } = await keyOf(sim);
    expect(policy.Statement.map((s) => (s as { Sid: string }).Sid)).toEqual([
      "Enable IAM User Permissions",
      "Allow use of the key",
    ]);
    expect(description).toContain(`iam:GetRole on the caller's role ${SSO_ROLE} was denied`);
  });
});

describe("the lab as the account's root user", () => {
  it("blocks stage 6 at once with what to do instead, without trying to assume the key-user role", async () => {
    const sim = Simulator.inMemory();
    const assumed: string[] = [];
    sim.observe((call) => {
      if (call.operation === "AssumeRole" && call.ctx.principal.type === "Root") assumed.push(call.operation);
    });
    const result = await runAs(sim, sim.rootCredentials());
    expect(points(result)).toEqual({ ...FULL_MARKS, "key-user-access": "blocked" });
    expect(result.stages["key-user-access"]?.reason).toBe(ROOT_CANNOT_ASSUME);
    expect(assumed).toEqual([]);

    // Grading as root reads as the key user too: its learner is told the same.
    const clients = new Clients({
      ...sim.clientConfig({ credentials: sim.rootCredentials() }),
      region: "us-east-1",
    });
    const graded = await gradeLab({
      clients,
      params: resolveParams(parseParams(FAST), sim.account.accountId),
      target: { kind: "sim", region: "us-east-1", accountId: sim.account.accountId },
    });
    clients.destroy();
    const restored = graded.stages
      .find((s) => s.id === "key-user-access")!
      .checks.find((c) => c.id === "restored")!;
    expect(restored.learner).toBe(`cannot act as the key user: ${ROOT_CANNOT_ASSUME}`);
  });
});

describe("stage 6's precondition: the role has no IAM path to the key", () => {
  const sim = Simulator.inMemory();
  beforeAll(async () => {
    expect(points(await runAs(sim, sim.credentials()))).toEqual(FULL_MARKS);
  });

  /** After a whole lab as the admin: the role's lab policy replaced, then stage 6's precondition alone. */
  async function preconditionWith(statements: object[]) {
    await new IAMClient(sim.clientConfig()).send(
      new PutRolePolicyCommand({
        RoleName: "kmslab-key-user",
        PolicyName: "kmslab-read-lab-data",
        PolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: statements }),
      }),
    );
    const clients = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
    const hooks: RunnerHooks = {
      intent: async () => {},
      done: async () => {},
      recorded: () => undefined,
      deadline: async (_key, fallback) => fallback,
    };
    const params = resolveParams(parseParams(FAST), sim.account.accountId);
    const runner = new StageRunner(clients, params, "check", keyUserAccess.id, hooks);
    try {
      await runner.runSteps(keyUserAccess.precondition, false);
      return undefined;
    } catch (err) {
      if (err instanceof BlockedError) return err.message;
      throw err;
    } finally {
      clients.destroy();
    }
  }
  const READ = { Effect: "Allow", Action: ["s3:GetObject", "s3:ListBucket"], Resource: "*" };

  it.each([
    ["Action *", { Effect: "Allow", Action: "*", Resource: "*" }],
    ["kms:De*", { Effect: "Allow", Action: "kms:De*", Resource: "*" }],
    ["a NotAction that leaves KMS in", { Effect: "Allow", NotAction: "iam:*", Resource: "*" }],
  ])("refuses a lab policy that allows kms:Decrypt through %s", async (_what, statement) => {
    expect(await preconditionWith([READ, statement])).toBe(
      "the role kmslab-key-user's policy kmslab-read-lab-data allows kms:Decrypt on the key: removing it from the key policy would not revoke its access; take those permissions away first",
    );
  });

  it("accepts a lab policy whose KMS permissions do not reach Decrypt on the key", async () => {
    expect(
      await preconditionWith([READ, { Effect: "Allow", Action: "kms:Encrypt", Resource: "*" }]),
    ).toBeUndefined();
  });
});

describe("kmslab run against kmslab sim serve", () => {
  const work = tempDir("kmslab-identity-");
  const simData = join(work, "sim");
  let server: ServeHandle;
  let root: ClientSetup["credentials"];

  beforeAll(async () => {
    // The root user's key is made before the server holds the account.
    const sim = Simulator.open(simData);
    root = sim.rootCredentials();
    sim.close();
    server = await startServe(["--sim-data", simData, "--sim-profile", "instant"]);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const admin = () => ({
    region: "us-east-1",
    endpoint: server.endpoint,
    credentials: {
      accessKeyId: server.env.AWS_ACCESS_KEY_ID!,
      secretAccessKey: server.env.AWS_SECRET_ACCESS_KEY!,
    },
  });
  /** `kmslab run` as a user runs it with credentials in the environment, and none of the user's AWS files. */
  const run = (credentials: ClientSetup["credentials"], suffix: string) =>
    runCli(
      [
        "--endpoint-url",
        server.endpoint,
        "run",
        "--state",
        join(work, `${suffix}.json`),
        "--suffix",
        suffix,
        ...FAST_FLAGS,
      ],
      {
        cwd: work,
        env: {
          HOME: work,
          AWS_CONFIG_FILE: join(work, "none-config"),
          AWS_SHARED_CREDENTIALS_FILE: join(work, "none-credentials"),
          AWS_REGION: "us-east-1",
          ...credentialEnv(credentials),
        },
      },
    );

  it("scores 100 as an SSO user whose role has a path", async () => {
    const sso = await ssoAdministrator(admin());
    const res = await run(sso.credentials, "-sso");
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("100/100 points");
  }, 120_000);

  it("as root, blocks stage 6 with what to do and makes no AssumeRole", async () => {
    const res = await run(root, "-root");
    expect(res.code).toBe(1);
    expect(res.stdout).toContain("80/100 points");
    expect(res.stdout.replace(/\s+/g, " ")).toContain(ROOT_CANNOT_ASSUME);
    const trail = new CloudTrailClient(admin());
    const { Events } = await trail.send(
      new LookupEventsCommand({
        LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "AssumeRole" }],
      }),
    );
    trail.destroy();
    expect(Events?.filter((e) => JSON.parse(e.CloudTrailEvent!).userIdentity.type === "Root")).toEqual([]);
  }, 120_000);
});
