import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import { DescribeKeyCommand, KMSClient, ListKeysCommand } from "@aws-sdk/client-kms";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { ListStateMachinesCommand, SFNClient } from "@aws-sdk/client-sfn";
import { describe, expect, it } from "vitest";
import { anySuffix, deploy, STATES_TRUST_POLICY } from "../asl/deploy.js";
import { exportLab, exportTeardown } from "../asl/export.js";
import { executionRolePolicy } from "../asl/iam.js";
import { Clients } from "../machines/aws.js";
import { PROFILES } from "../sim/account.js";
import { evaluatePolicy, parsePolicy } from "../sim/policy/index.js";
import { Simulator } from "../sim/simulator.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { runCli, startServe, tempDir } from "./helpers/cli.js";
import { labResources } from "./helpers/teardown.js";

/**
 * `kmslab deploy`, `kmslab sfn start` and `kmslab sfn status` as a user runs them, against the
 * embedded simulator's Step Functions: the two state machines and their role made once and
 * updated after, the lab run as an execution and graded 100/100, torn down by the teardown's
 * execution to nothing but the key pending deletion, a class roster's executions, and bad input
 * refused with exit 2 and nothing written.
 */
const FAST = { pollSeconds: 1, trailWaitSeconds: 120, propagationWaitSeconds: 30 };
const env = { KMSLAB_SIM_PROFILE: "instant" };

function workspace(prefix: string) {
  const work = tempDir(prefix);
  const simData = join(work, "sim");
  const input = join(work, "input.json");
  writeFileSync(input, JSON.stringify(FAST));
  const cli = (...args: string[]) => runCli(["--sim-data", simData, ...args], { cwd: work, env });
  return { work, simData, input, cli };
}

/** The account in a data directory, opened for a moment (no CLI holds it between commands). */
async function withSim<T>(dir: string, fn: (sim: Simulator) => Promise<T>): Promise<T> {
  const sim = Simulator.open(dir, { profile: "instant" });
  try {
    return await fn(sim);
  } finally {
    sim.close();
  }
}

interface View {
  status: string;
  kind: string;
  executionArn: string;
  points?: number;
  stages: { id: string; status: string; points?: number; reason?: string }[];
}

describe("kmslab deploy, sfn start, sfn status on the embedded simulator", () => {
  const { work, simData, input, cli } = workspace("kmslab-sfn-cli-");
  let labArn = "";

  it("deploy validates and creates both state machines and the role; a second deploy updates them, nothing twice", async () => {
    const first = await cli("--json", "deploy");
    expect(first.code, first.stderr).toBe(0);
    const made = JSON.parse(first.stdout);
    expect(made.role).toMatchObject({
      action: "created",
      arn: expect.stringMatching(/:role\/kmslab-states$/),
    });
    expect(made.stateMachines.lab).toMatchObject({ name: "kmslab-lab", action: "created" });
    expect(made.stateMachines.teardown).toMatchObject({ name: "kmslab-teardown", action: "created" });

    const again = await cli("deploy");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^role +arn:aws:iam::\d{12}:role\/kmslab-states +\(updated\)$/m);
    expect(again.stdout).toMatch(
      /^lab +arn:aws:states:us-east-1:\d{12}:stateMachine:kmslab-lab +\(updated\)$/m,
    );
    expect(again.stdout).toMatch(/^teardown +.*:stateMachine:kmslab-teardown +\(updated\)$/m);

    await withSim(simData, async (sim) => {
      const sfn = new SFNClient(sim.clientConfig());
      const machines = (await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? [];
      expect(machines.map((m) => m.name)).toEqual(["kmslab-lab", "kmslab-teardown"]);
      sfn.destroy();
      const roles = (await labResources(sim.clientConfig())).filter((r) => r.startsWith("role"));
      expect(roles).toEqual(["role kmslab-states"]);
    });
  }, 60_000);

  it("sfn start runs the lab to SUCCEEDED (waiting even with --no-wait), grade gives 100/100, sfn status shows six stages passed", async () => {
    const run = await cli("--json", "sfn", "start", "--input", input, "--no-wait");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("--no-wait does not apply to the embedded simulator");
    const view = JSON.parse(run.stdout) as View;
    expect(view).toMatchObject({ status: "SUCCEEDED", kind: "lab", points: 100 });
    labArn = view.executionArn;

    const grade = await cli("--json", "grade");
    expect(grade.code, grade.stderr).toBe(0);
    expect(JSON.parse(grade.stdout)).toMatchObject({ score: 100, passed: true });

    const status = await cli("--json", "sfn", "status", labArn);
    expect(status.code, status.stderr).toBe(0);
    const shown = JSON.parse(status.stdout) as View;
    expect(shown.stages.map((s) => [s.id, s.status, s.points])).toEqual([
      ["create-key", "passed", 15],
      ["trail-to-bucket", "passed", 15],
      ["sse-kms-upload", "passed", 15],
      ["public-access-denied", "passed", 15],
      ["trail-key-usage", "passed", 20],
      ["key-user-access", "passed", 20],
    ]);
    const text = await cli("sfn", "status", labArn);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("SUCCEEDED");
    expect(text.stdout.match(/ passed +\d+\/\d+$/gm)).toHaveLength(6);
    expect(text.stdout).toContain("points: 100/100");
  }, 120_000);

  it("sfn start --teardown leaves no lab resource but the key pending deletion", async () => {
    const down = await cli("sfn", "start", "--teardown", "--input", input);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/^teardown execution .*: SUCCEEDED$/m);
    await withSim(simData, async (sim) => {
      // Only the state machines' own role stays (deploy made it; the lab did not).
      expect(await labResources(sim.clientConfig())).toEqual(["role kmslab-states"]);
      const kms = new KMSClient(sim.clientConfig());
      const states = [];
      for (const k of (await kms.send(new ListKeysCommand({}))).Keys ?? [])
        states.push((await kms.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata?.KeyState);
      kms.destroy();
      expect(states).toEqual(["PendingDeletion"]);
    });
    // The lab's execution is still there to look at.
    const status = await cli("sfn", "status", labArn);
    expect(status.code).toBe(0);
  }, 120_000);

  it("sfn start --class runs one execution per learner, each with its suffix, and all succeed", async () => {
    const roster = join(work, "learners.csv");
    writeFileSync(roster, "name,suffix\nAnn Émile,\nBob,\nCarol,-carol\n");
    const res = await cli("--json", "sfn", "start", "--class", roster, "--input", input);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as {
      total: number;
      succeeded: number;
      learners: { learner: string; executionName: string; status: string; durationMs: number }[];
    };
    expect(out).toMatchObject({ total: 3, succeeded: 3 });
    expect(out.learners.map((l) => [l.learner, l.status])).toEqual([
      ["Ann Émile", "SUCCEEDED"],
      ["Bob", "SUCCEEDED"],
      ["Carol", "SUCCEEDED"],
    ]);
    expect(out.learners[0]!.executionName).toMatch(/^Ann-Emile-\d{8}T\d{6}Z$/);
    for (const [suffix, learner] of [
      ["-ann-emile", "Ann"],
      ["-bob", "Bob"],
      ["-carol", "Carol"],
    ]) {
      const grade = await cli("--json", "grade", "--suffix", suffix!, "--learner", learner!);
      expect(grade.code, `${learner}: ${grade.stdout.slice(0, 400)}`).toBe(0);
    }
    // Their teardowns, as a class too; the table is the text output.
    const down = await cli("sfn", "start", "--class", roster, "--teardown", "--input", input);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/^learner +status +duration +error$/m);
    expect(down.stdout).toContain("3/3 succeeded");
    await withSim(simData, async (sim) => {
      expect(await labResources(sim.clientConfig())).toEqual(["role kmslab-states"]);
    });
  }, 180_000);
});

describe("a stage that cannot run, and a simulator served by kmslab sim serve", () => {
  it("names the blocked stage and why, exits 1, and shows the stages that ran", async () => {
    const { simData, work, cli } = workspace("kmslab-sfn-blocked-");
    expect((await cli("deploy")).code).toBe(0);
    // A bucket with the learner's data-bucket name, made by someone else.
    await withSim(simData, async (sim) => {
      const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
      await s3.send(new CreateBucketCommand({ Bucket: `kmslab-data-${sim.account.accountId}-us-east-1-x` }));
      s3.destroy();
    });
    const input = join(work, "x.json");
    writeFileSync(input, JSON.stringify({ ...FAST, suffix: "-x" }));
    const run = await cli("--json", "sfn", "start", "--input", input);
    expect(run.code).toBe(1);
    const view = JSON.parse(run.stdout) as View & { error: string; cause: string };
    expect(view).toMatchObject({ status: "FAILED", error: "kmslab.Blocked", points: 30 });
    expect(view.cause).toMatch(/^sse-kms-upload: a bucket named kmslab-data-\d+-us-east-1-x already exists/);
    const stage = (id: string) => view.stages.find((s) => s.id === id)!;
    expect(stage("create-key").status).toBe("passed");
    expect(stage("sse-kms-upload")).toMatchObject({
      status: "blocked",
      reason: expect.stringContaining("already exists"),
    });
    expect(stage("key-user-access").status).toBe("waiting");
    const text = await cli("sfn", "status", view.executionArn);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/sse-kms-upload .* blocked/);
  }, 90_000);

  it("deploy --role-arn uses the given role; a teardown whose deletion is denied fails, naming the stage", async () => {
    const { simData, input, cli } = workspace("kmslab-sfn-role-");
    // A role that trusts Step Functions, with the deployed policy but for s3:DeleteBucket.
    const roleArn = await withSim(simData, async (sim) => {
      const account = sim.account.accountId;
      const definitions = [(await exportLab()).definition, (await exportTeardown()).definition];
      const policy = executionRolePolicy(definitions, anySuffix(resolveParams(parseParams({}), account)));
      for (const st of policy.Statement) st.Action = st.Action.filter((a) => a !== "s3:DeleteBucket");
      const iam = new IAMClient(sim.clientConfig());
      const role = await iam.send(
        new CreateRoleCommand({
          RoleName: "my-states-role",
          AssumeRolePolicyDocument: JSON.stringify(STATES_TRUST_POLICY),
        }),
      );
      await iam.send(
        new PutRolePolicyCommand({
          RoleName: "my-states-role",
          PolicyName: "lab",
          PolicyDocument: JSON.stringify(policy),
        }),
      );
      iam.destroy();
      return role.Role!.Arn!;
    });
    const deployed = await cli("--json", "deploy", "--role-arn", roleArn);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(JSON.parse(deployed.stdout).role).toEqual({ arn: roleArn, action: "given" });
    expect((await cli("sfn", "start", "--input", input)).code).toBe(0);
    const down = await cli("--json", "sfn", "start", "--teardown", "--input", input);
    expect(down.code).toBe(1);
    const view = JSON.parse(down.stdout) as View & { error: string };
    expect(view).toMatchObject({ kind: "teardown", status: "FAILED", error: "kmslab.TeardownIncomplete" });
    const stage = (id: string) => view.stages.find((s) => s.id === id)!;
    // The log bucket is trail-to-bucket's, the data bucket sse-kms-upload's: both deletions denied
    // (S3's AccessDenied is S3.S3Exception in Step Functions, the Java SDK's generic exception).
    for (const id of ["trail-to-bucket", "sse-kms-upload"])
      expect(stage(id)).toMatchObject({
        status: "failed",
        reason: expect.stringMatching(/S3\.S3Exception: .* is not authorized to perform: s3:DeleteBucket/),
      });
    expect(stage("create-key").status).toBe("passed");
  }, 90_000);

  it("with kmslab sim serve holding the account, --no-wait returns the ARN and sfn status --watch follows it there", async () => {
    const { simData, input, cli } = workspace("kmslab-sfn-serve-");
    const server = await startServe(["--sim-data", simData, "--sim-profile", "instant"]);
    try {
      expect((await cli("deploy")).code).toBe(0);
      const started = await cli("sfn", "start", "--input", input, "--no-wait", "--name", "served");
      expect(started.code, started.stderr).toBe(0);
      expect(started.stdout.trim()).toMatch(/^arn:aws:states:us-east-1:\d{12}:execution:kmslab-lab:served$/);
      const watched = await cli("--json", "sfn", "status", started.stdout.trim(), "--watch");
      expect(watched.code, watched.stderr).toBe(0);
      const view = JSON.parse(watched.stdout) as View;
      expect(view.status).toBe("SUCCEEDED");
      expect(view.stages.every((s) => s.status === "passed")).toBe(true);
      // The same name again is refused by Step Functions (ExecutionAlreadyExists), exit 1.
      const again = await cli("sfn", "start", "--input", input, "--no-wait", "--name", "served");
      expect(again.code).toBe(1);
      expect(again.stderr).toContain("ExecutionAlreadyExists");
    } finally {
      await server.stop();
    }
  }, 90_000);
});

describe("the execution role's policy covers every learner's suffix", () => {
  it("allows a class learner's names only once widened to any suffix", async () => {
    const definitions = [(await exportLab()).definition, (await exportTeardown()).definition];
    const names = resolveParams(parseParams({}), "111122223333");
    const principal = {
      type: "AssumedRole" as const,
      arn: "arn:aws:sts::111122223333:assumed-role/kmslab-states/x",
      accountId: "111122223333",
      userId: "AROAEXAMPLE:x",
      roleArn: "arn:aws:iam::111122223333:role/kmslab-states",
    };
    const decide = (names: Parameters<typeof executionRolePolicy>[1], action: string, resource: string) =>
      evaluatePolicy(parsePolicy(JSON.stringify(executionRolePolicy(definitions, names)), "identity"), {
        principal,
        action,
        resource,
      }).effect;
    const alice = [
      ["iam:CreateRole", "arn:aws:iam::111122223333:role/kmslab-key-user-alice"],
      ["s3:CreateBucket", "arn:aws:s3:::kmslab-data-111122223333-us-east-1-alice"],
      ["cloudtrail:CreateTrail", "arn:aws:cloudtrail:us-east-1:111122223333:trail/kmslab-trail-alice"],
      ["kms:CreateAlias", "arn:aws:kms:us-east-1:111122223333:alias/myFirstKey-alice"],
    ] as const;
    // As `kmslab export iam-policy` writes it, for the names without a suffix: a learner is denied.
    for (const [action, resource] of alice) expect(decide(names, action, resource)).toBe("None");
    for (const [action, resource] of alice) expect(decide(anySuffix(names), action, resource)).toBe("Allow");
    expect(decide(anySuffix(names), "iam:CreateRole", "arn:aws:iam::111122223333:role/kmslab-key-user")).toBe(
      "Allow",
    );
    expect(decide(anySuffix(names), "iam:CreateRole", "arn:aws:iam::111122223333:role/admin")).toBe("None");
  });
});

describe("bad usage is refused with exit 2 and nothing written", () => {
  const { work, simData, input, cli } = workspace("kmslab-sfn-usage-");
  const notJson = join(work, "bad.json");
  const unknown = join(work, "unknown.json");
  const roster = join(work, "profiles.csv");
  writeFileSync(notJson, "{ nope");
  writeFileSync(unknown, JSON.stringify({ pollSeconds: 1, colour: "blue" }));
  const badSuffix = join(work, "suffix.csv");
  writeFileSync(roster, "name,profile\nAnn,ann\n");
  writeFileSync(badSuffix, "name,suffix\nAnn,-ann\nBob,-Not Lower\n");

  it.each([
    [["deploy", "--role-arn", "not-an-arn"], /--role-arn must be an IAM role ARN/],
    [["deploy", "--role-arn", "arn:aws:iam::111122223333:role/x", "--create-role"], /contradict/],
    [["deploy", "--name-prefix", "no spaces"], /--name-prefix must be/],
    [["deploy", "--config", join(work, "missing.json")], /cannot read the config file/],
    [["deploy", "--bogus"], /unknown option/],
    [["sfn", "start", "--input", join(work, "missing.json")], /cannot read the config file/],
    [["sfn", "start", "--input", notJson], /is not valid JSON/],
    [["sfn", "start", "--input", unknown], /unknown parameter colour/],
    [["sfn", "start", "--name", "has space"], /--name must be/],
    [["sfn", "start", "--concurrency", "2"], /--concurrency goes with --class/],
    [["sfn", "start", "--class", roster], /profile and endpoint are for grade --class/],
    [["sfn", "start", "--class", join(work, "none.csv")], /cannot read the roster/],
    [["sfn", "start", "--class", badSuffix], /line 3: Bob: invalid lab parameters: suffix/],
    [["sfn", "start", "--class", roster, "--concurrency", "0"], /--concurrency must be/],
    [["sfn", "status", "not-an-arn"], /is not an execution ARN/],
    [["sfn", "status"], /missing required argument/],
  ])("kmslab %j", async (args, message) => {
    const res = await cli(...args);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stdout).toBe("");
    expect(existsSync(simData)).toBe(false);
  });

  it("deploy to an endpoint without --role-arn or --create-role says to pass one, before any call", async () => {
    // Nothing listens there: the refusal comes before any request.
    const res = await runCli(["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1", "deploy"], {
      cwd: work,
      env: { AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "secret" },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/pass --role-arn ARN .* or --create-role/);
  });

  it("sfn start before deploy says to deploy first (exit 1)", async () => {
    const res = await cli("sfn", "start", "--input", input);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/no state machine kmslab-lab .*kmslab deploy/);
  });
});

describe("deploy with a role IAM has not propagated yet", () => {
  it("waits while Step Functions cannot assume the role it just made, as AWS words it, then creates the state machines", async () => {
    // New principals take 8 s to propagate (the realistic profile's delay), on a clock the
    // deploy's waits move.
    let offset = 0;
    const sim = Simulator.inMemory({
      profile: { ...PROFILES.instant!, propagationDelayMs: 8_000 },
      clock: () => new Date(Date.now() + offset),
    });
    const config = sim.clientConfig();
    const sfn = new SFNClient(config);
    const clients = new Clients({ ...config, region: "us-east-1" });
    const waits: number[] = [];
    try {
      const account = sim.account.accountId;
      const result = await deploy({
        sfn,
        clients,
        account,
        region: "us-east-1",
        names: anySuffix(resolveParams(parseParams({}), account)),
        sleep: async (ms) => {
          waits.push(ms);
          offset += ms;
        },
      });
      expect(result.role.action).toBe("created");
      expect(Object.values(result.stateMachines).map((m) => m.action)).toEqual(["created", "created"]);
      // CreateStateMachine was refused until the role had propagated: 2 + 4 + 8 s of waiting.
      expect(waits).toEqual([2_000, 4_000, 8_000]);
      const listed = await sfn.send(new ListStateMachinesCommand({}));
      expect(listed.stateMachines!.map((m) => m.name).sort()).toEqual(["kmslab-lab", "kmslab-teardown"]);
    } finally {
      sfn.destroy();
      clients.destroy();
      sim.close();
    }
  }, 60_000);

  it("says what AWS says when the role can never be assumed, after waiting no longer than allowed", async () => {
    const sim = Simulator.inMemory({ profile: { ...PROFILES.instant!, propagationDelayMs: 3_600_000 } });
    const config = sim.clientConfig();
    const sfn = new SFNClient(config);
    const clients = new Clients({ ...config, region: "us-east-1" });
    let waited = 0;
    try {
      const account = sim.account.accountId;
      const failed = await deploy({
        sfn,
        clients,
        account,
        region: "us-east-1",
        names: anySuffix(resolveParams(parseParams({}), account)),
        roleWaitMs: 30_000,
        sleep: async (ms) => {
          waited += ms;
        },
      }).catch((err: Error) => err);
      expect(failed).toMatchObject({
        name: "AccessDeniedException",
        message:
          "Neither the global service principal states.amazonaws.com, nor the regional one is authorized to assume the provided role.",
      });
      expect(waited).toBeLessThanOrEqual(30_000);
      expect(waited).toBeGreaterThan(0);
    } finally {
      sfn.destroy();
      clients.destroy();
      sim.close();
    }
  }, 60_000);
});
