import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CloudTrailClient, DescribeTrailsCommand } from "@aws-sdk/client-cloudtrail";
import { IAMClient, ListRolesCommand } from "@aws-sdk/client-iam";
import { DescribeKeyCommand, KMSClient, ListAliasesCommand, ListKeysCommand } from "@aws-sdk/client-kms";
import { ListBucketsCommand, S3Client } from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { Clients } from "../machines/aws.js";
import { runLab } from "../machines/engine.js";
import { FaultInjector } from "../sim/faults.js";
import { Simulator } from "../sim/simulator.js";
import { MemoryStateStore, parseState } from "../state/index.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { runCli, type ServeHandle, startServe, tempDir } from "./helpers/cli.js";

/**
 * The lab engine end to end on the embedded simulator: a full run, a second run that changes
 * nothing, crashes at every effect, Ctrl-C in the middle of a CloudTrail wait, an injected denial,
 * injected throttling, and bad input. Runs through the CLI spawn a real `kmslab run`, so that the
 * crash tests can SIGKILL it.
 */
const FAST = { pollSeconds: 1, trailWaitSeconds: 60, propagationWaitSeconds: 10 };

async function inProcess(sim: Simulator, store = new MemoryStateStore()) {
  const clients = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
  const params = resolveParams(parseParams(FAST), sim.account.accountId);
  try {
    return await runLab({
      store,
      clients,
      target: { kind: "sim", region: "us-east-1", accountId: sim.account.accountId },
      params,
      command: "test",
    });
  } finally {
    clients.destroy();
  }
}

/** What the account holds of the lab: counted through the SDK, as anyone would see it. */
async function inventory(sim: Simulator) {
  // The SDK's own retries: an account with faults injected throttles the test's reads too.
  return inventoryOf(sim.clientConfig({ maxAttempts: 10 }));
}

async function inventoryOf(
  config:
    | ReturnType<Simulator["clientConfig"]>
    | { region: string; endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string } },
) {
  const kms = new KMSClient(config);
  const keys = (await kms.send(new ListKeysCommand({}))).Keys ?? [];
  const live: string[] = [];
  for (const k of keys) {
    const meta = (await kms.send(new DescribeKeyCommand({ KeyId: k.KeyId }))).KeyMetadata!;
    if (meta.KeyState !== "PendingDeletion") live.push(meta.KeyId!);
  }
  const aliases = ((await kms.send(new ListAliasesCommand({}))).Aliases ?? []).filter(
    (a) => a.AliasName === "alias/myFirstKey",
  );
  const roles = ((await new IAMClient(config).send(new ListRolesCommand({}))).Roles ?? []).filter(
    (r) => r.RoleName === "kmslab-key-user",
  );
  const buckets =
    (await new S3Client({ ...config, forcePathStyle: true }).send(new ListBucketsCommand({}))).Buckets ?? [];
  const trails = (await new CloudTrailClient(config).send(new DescribeTrailsCommand({}))).trailList ?? [];
  return {
    keys: live.length,
    aliases: aliases.length,
    roles: roles.length,
    buckets: buckets.length,
    trails: trails.length,
  };
}

const ONE_OF_EACH = { keys: 1, aliases: 1, roles: 1, buckets: 2, trails: 1 };

describe("the lab engine on the embedded simulator", () => {
  it("passes all six stages, and a second run changes nothing", async () => {
    const sim = Simulator.inMemory();
    const store = new MemoryStateStore();
    const first = await inProcess(sim, store);
    expect(
      Object.fromEntries(Object.entries(first.stages).map(([k, v]) => [k, [v.status, v.points]])),
    ).toEqual({
      "create-key": ["passed", 15],
      "trail-to-bucket": ["passed", 15],
      "sse-kms-upload": ["passed", 15],
      "public-access-denied": ["passed", 15],
      "trail-key-usage": ["passed", 20],
      "key-user-access": ["passed", 20],
    });
    expect(first.complete).toBe(true);
    expect(await inventory(sim)).toEqual(ONE_OF_EACH);

    const mutating = sim.stats.mutatingCalls;
    const again = await inProcess(sim, store);
    expect(again.complete).toBe(true);
    expect(again.runId).toBe(first.runId);
    expect(sim.stats.mutatingCalls).toBe(mutating);
    // The state never holds a secret or the object's body.
    const text = store.snapshotText!;
    expect(text).not.toContain(sim.credentials().secretAccessKey);
    expect(text).not.toContain("kmslab lab object");
  }, 60_000);

  it("fails the stage whose call is denied, undoes its own effects, keeps the others, and completes once the fault is gone", async () => {
    const faults = FaultInjector.parse("cloudtrail.CreateTrail:deny=1");
    const sim = Simulator.inMemory({ faults });
    const store = new MemoryStateStore();
    const first = await inProcess(sim, store);
    expect(first.stages["trail-to-bucket"]).toMatchObject({ status: "failed" });
    expect(first.stages["trail-to-bucket"].reason).toContain("AccessDeniedException");
    expect(first.stages["trail-key-usage"].status).toBe("blocked");
    for (const id of ["create-key", "sse-kms-upload", "public-access-denied", "key-user-access"] as const)
      expect(first.stages[id].status, id).toBe("passed");
    // The log bucket it made is gone again; the data bucket of stage 3 stays.
    expect((await inventory(sim)).buckets).toBe(1);
    const state = parseState(store.snapshotText!, "memory");
    expect(state.stages["trail-to-bucket"]!.status).toBe("rolledBack");
    expect(state.stages["trail-to-bucket"]!.error?.message).toContain("service control policy");

    faults.clear();
    const second = await inProcess(sim, store);
    expect(second.complete).toBe(true);
    expect(await inventory(sim)).toEqual(ONE_OF_EACH);
  }, 60_000);

  it("completes with 20% throttling and 5% server errors injected across all services", async () => {
    const sim = Simulator.inMemory({ faults: FaultInjector.parse("*:throttle=0.2,5xx=0.05", 20261129) });
    const result = await inProcess(sim);
    expect(result.complete).toBe(true);
    expect(await inventory(sim)).toEqual(ONE_OF_EACH);
  }, 120_000);
});

describe("the lab engine when connections are reset", () => {
  let server: ServeHandle | undefined;
  afterEach(async () => {
    await server?.stop("SIGKILL");
    server = undefined;
  });

  // Each of these calls is made, then the connection is reset instead of answered (once each): the
  // key, a bucket and the role are made though the engine hears nothing back.
  const resets = [
    "kms.CreateKey",
    "s3.CreateBucket",
    "iam.CreateRole",
    "kms.PutKeyPolicy",
    "s3.GetObject",
    "cloudtrail.LookupEvents",
  ];
  const spec = resets.map((op) => `${op}:reset=1,count=1`).join(";");

  async function runWithResets(clients: Clients, region: string) {
    const seen: string[] = [];
    clients.observer = (c) => {
      if (c.error?.code === "ECONNRESET") seen.push(`${c.service}.${c.action}`);
    };
    const account = (await clients.call("sts", "GetCallerIdentity", {})).Account as string;
    const result = await runLab({
      store: new MemoryStateStore(),
      clients,
      target: { kind: "endpoint", region, accountId: account },
      params: resolveParams(parseParams({ ...FAST, region }), account),
      command: "test",
    });
    expect(
      Object.fromEntries(Object.entries(result.stages).map(([k, v]) => [k, v.status])),
      JSON.stringify(result.stages),
    ).toEqual({
      "create-key": "passed",
      "trail-to-bucket": "passed",
      "sse-kms-upload": "passed",
      "public-access-denied": "passed",
      "trail-key-usage": "passed",
      "key-user-access": "passed",
    });
    // The engine saw each reset and went on.
    expect(new Set(seen)).toEqual(new Set(resets));
  }

  it("over HTTP (`kmslab sim serve`): retries a reset connection and completes with nothing duplicated, changes whose answer was lost included", async () => {
    server = await startServe([
      "--sim-data",
      tempDir("kmslab-reset-"),
      "--sim-profile",
      "instant",
      "--faults",
      spec,
    ]);
    const config = {
      region: "us-east-1",
      endpoint: server.endpoint,
      credentials: {
        accessKeyId: server.env.AWS_ACCESS_KEY_ID!,
        secretAccessKey: server.env.AWS_SECRET_ACCESS_KEY!,
      },
    };
    const clients = new Clients(config);
    try {
      await runWithResets(clients, "us-east-1");
      expect(await inventoryOf(config)).toEqual(ONE_OF_EACH);
    } finally {
      clients.destroy();
    }
  }, 120_000);

  it("in eu-west-1, where a bucket made again is BucketAlreadyOwnedByYou (us-east-1 answers 200): the lost bucket is this run's", async () => {
    const sim = Simulator.inMemory({ faults: FaultInjector.parse(spec) });
    const clients = new Clients({ ...sim.clientConfig(), region: "eu-west-1" });
    try {
      await runWithResets(clients, "eu-west-1");
      expect(await inventoryOf(sim.clientConfig({ region: "eu-west-1" }))).toEqual(ONE_OF_EACH);
    } finally {
      clients.destroy();
    }
  }, 120_000);
});

describe("kmslab run as a process", () => {
  const instant = { KMSLAB_SIM_PROFILE: "instant" };
  const args = ["--poll-interval", "1", "--trail-wait", "60", "--propagation-wait", "10"];

  async function accountOf(cwd: string) {
    const sim = Simulator.open(join(cwd, ".kmslab/sim"));
    try {
      return await inventory(sim);
    } finally {
      sim.close();
    }
  }

  it("survives a SIGKILL right after each effect, before and after its checkpoint, and resumes with nothing duplicated", async () => {
    // A full run makes 10 effects (4 in stage 1, 3 in stage 2, 2 in stage 3, 1 in stage 6).
    const effects = 10;
    for (let k = 1; k <= effects; k++) {
      for (const window of ["", ":call"]) {
        const cwd = tempDir("kmslab-crash-");
        const crashed = await runCli(["run", ...args], {
          cwd,
          env: { ...instant, KMSLAB_TEST_CRASH_AFTER_EFFECT: `${k}${window}` },
        });
        expect(crashed.code, `crash at ${k}${window}: ${crashed.stderr}`).toBe(null);
        const resumed = await runCli(["run", ...args], { cwd, env: instant });
        expect(resumed.code, `resume after ${k}${window}: ${resumed.stderr}`).toBe(0);
        expect(await accountOf(cwd), `after ${k}${window}`).toEqual(ONE_OF_EACH);
        expect(() =>
          parseState(readFileSync(join(cwd, ".kmslab/state.json"), "utf8"), "state"),
        ).not.toThrow();
      }
    }
  }, 300_000);

  /**
   * Starts `kmslab run` with CloudTrail 10 s behind (events and log files) and resolves once the run
   * says it waits for CloudTrail in stage 5.
   */
  async function runUntilTrailWait(cwd: string) {
    const slow = {
      KMSLAB_SIM_PROFILE: JSON.stringify({ trailLookupDelayMs: 10_000, trailDeliveryIntervalMs: 10_000 }),
    };
    const { spawn } = await import("node:child_process");
    const { BIN } = await import("./helpers/cli.js");
    const child = spawn(process.execPath, [BIN, "run", ...args], { cwd, env: { ...process.env, ...slow } });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.on("exit", (code, signal) => r({ code, signal })),
    );
    let stderr = "";
    await new Promise<void>((resolve) => {
      child.stderr.on("data", (d) => {
        stderr += d;
        if (/trail-key-usage: waiting for/.test(stderr)) resolve();
      });
    });
    return { child, exited };
  }

  it("stops on Ctrl-C during the CloudTrail wait, and a second run completes", async () => {
    const cwd = tempDir("kmslab-sigint-");
    const { child, exited } = await runUntilTrailWait(cwd);
    child.kill("SIGINT");
    expect((await exited).code).toBe(130);
    const state = JSON.parse(readFileSync(join(cwd, ".kmslab/state.json"), "utf8"));
    expect(state.stages["trail-key-usage"].status).toBe("running");
    const resumed = await runCli(["run", ...args], { cwd, env: instant });
    expect(resumed.code, resumed.stderr).toBe(0);
  }, 120_000);

  it("has the wait's deadline and everything before it on disk while it waits: a SIGKILL then loses nothing", async () => {
    const cwd = tempDir("kmslab-killwait-");
    const { child, exited } = await runUntilTrailWait(cwd);
    child.kill("SIGKILL");
    expect((await exited).signal).toBe("SIGKILL");
    const path = join(cwd, ".kmslab/state.json");
    const killed = parseState(readFileSync(path, "utf8"), "state");
    const deadlines = killed.stages["trail-key-usage"]!.outputs.__deadlines as Record<string, number>;
    expect(Object.keys(deadlines)).toContain("trail-key-usage.events#1");
    for (const id of ["create-key", "sse-kms-upload", "public-access-denied"])
      expect(killed.stages[id]!.status, id).toBe("passed");

    const resumed = await runCli(["run", ...args], { cwd, env: instant });
    expect(resumed.code, resumed.stderr).toBe(0);
    const done = parseState(readFileSync(path, "utf8"), "state");
    // The resumed wait kept its deadline rather than starting a new budget.
    expect(
      (done.stages["trail-key-usage"]!.outputs.__deadlines as Record<string, number>)[
        "trail-key-usage.events#1"
      ],
    ).toBe(deadlines["trail-key-usage.events#1"]);
  }, 120_000);

  describe("bad input leaves every file as it was", () => {
    function prepared() {
      const cwd = tempDir("kmslab-badinput-");
      return cwd;
    }

    it.each([
      ["not JSON", "{ this is not json", /not valid JSON|is not JSON/i],
      ["truncated", '{"formatVersion":1,"lineage":"', /not valid JSON|truncated|is not JSON/i],
      [
        "a newer format version",
        JSON.stringify({ formatVersion: 9, tool: { name: "kmslab", version: "9.0.0" } }),
        /version 9/,
      ],
    ])("refuses a state file that is %s with exit code 5", async (_what, content, message) => {
      const cwd = prepared();
      const path = join(cwd, "state.json");
      writeFileSync(path, content);
      const before = statSync(path).mtimeMs;
      const res = await runCli(["run", "--state", path, ...args], { cwd, env: instant });
      expect(res.code).toBe(5);
      expect(res.stderr).toMatch(message);
      expect(readFileSync(path, "utf8")).toBe(content);
      expect(statSync(path).mtimeMs).toBe(before);
    });

    it("refuses a state file of another account with exit code 5", async () => {
      const cwd = prepared();
      const first = await runCli(["run", ...args, "--object-key", "x.txt"], {
        cwd,
        env: { ...instant, KMSLAB_SIM_FAULTS: "kms:deny=1" },
      });
      expect(first.code).toBe(1);
      const path = join(cwd, ".kmslab/state.json");
      const text = readFileSync(path, "utf8");
      const other = tempDir("kmslab-other-");
      const res = await runCli(
        ["run", "--state", path, "--sim-data", join(other, "sim"), ...args, "--object-key", "x.txt"],
        {
          cwd,
          env: instant,
        },
      );
      expect(res.code).toBe(5);
      expect(res.stderr).toMatch(/account/);
      expect(readFileSync(path, "utf8")).toBe(text);
    });

    it.each([
      [["--key-alias", "myKey"], 2, /keyAlias: must look like alias/],
      [["--suffix", "UPPER"], 2, /suffix/],
      [["--trail-wait", "soon"], 2, /--trail-wait must be a whole number/],
      [["--no-such-flag"], 2, /unknown option/],
      [["--target", "mars"], 2, /--target must be/],
    ])("refuses %j with exit code %i", async (extra, code, message) => {
      const cwd = prepared();
      const res = await runCli(["run", ...extra], { cwd, env: instant });
      expect(res.code).toBe(code);
      expect(res.stderr).toMatch(message);
    });
  });
});

describe.skipIf(!process.env.KMSLAB_AWS_TEST)(
  "the lab on real AWS (opt-in: KMSLAB_AWS_TEST=1 with credentials)",
  () => {
    it("runs every stage to passed", async () => {
      const cwd = tempDir("kmslab-aws-");
      const res = await runCli(["run", "--target", "aws", "--suffix", `-${Date.now().toString(36)}`], {
        cwd,
      });
      expect(res.code, res.stderr).toBe(0);
    }, 3_600_000);
  },
);
