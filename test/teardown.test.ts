import { cpSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  AttachRolePolicyCommand,
  CreatePolicyCommand,
  IAMClient,
  PutRolePolicyCommand,
} from "@aws-sdk/client-iam";
import {
  DeleteObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { Clients } from "../machines/aws.js";
import { FaultInjector } from "../sim/faults.js";
import { Simulator } from "../sim/simulator.js";
import { FileStateStore, MemoryStateStore, parseState, type StateStore } from "../state/index.js";
import { type TeardownResult, teardown } from "../teardown/index.js";
import { runCli, tempDir } from "./helpers/cli.js";
import { labResources, makeLookAlikes, runIn } from "./helpers/teardown.js";

/**
 * `kmslab teardown` on the embedded simulator, through the real SDK clients and the CLI: after a
 * full run, after a crash at every effect of a run, when itself killed at every deletion, next to
 * hand-made look-alikes, under throttling, and with one deletion denied.
 */
const instant = { KMSLAB_SIM_PROFILE: "instant" };
const RUN_ARGS = ["--poll-interval", "1", "--trail-wait", "60", "--propagation-wait", "10"];

async function tearDown(
  sim: Simulator,
  store: StateStore | undefined,
  extra: { allRuns?: boolean; includeUntagged?: boolean; dryRun?: boolean } = {},
): Promise<TeardownResult> {
  const clients = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
  try {
    return await teardown({
      clients,
      account: sim.account.accountId,
      region: "us-east-1",
      ...(store ? { store } : {}),
      bucketBudgetMs: 10_000,
      ...extra,
    });
  } finally {
    clients.destroy();
  }
}

const outcomes = (r: TeardownResult) =>
  Object.fromEntries(r.items.map((i) => [`${i.type} ${i.arn.split(/[:/]/).pop()}`, i.outcome]));

/** The account in a data directory, opened for a moment. */
async function withSim<T>(dir: string, fn: (sim: Simulator) => Promise<T>): Promise<T> {
  const sim = Simulator.open(dir, { profile: "instant" });
  try {
    return await fn(sim);
  } finally {
    sim.close();
  }
}

describe("teardown after a full run", () => {
  it("removes everything the run made — versions, delete markers, inline and attached policies included — and a second teardown removes nothing", async () => {
    const sim = Simulator.inMemory();
    const store = new MemoryStateStore();
    const run = await runIn(sim, store);
    expect(run.complete).toBe(true);
    const account = sim.account.accountId;
    const config = sim.clientConfig();
    const s3 = new S3Client({ ...config, forcePathStyle: true });
    const iam = new IAMClient(config);
    // The awkward parts: a versioned bucket with old versions and a delete marker; a role with a
    // second inline policy and an attached managed one.
    const data = `kmslab-data-${account}-us-east-1`;
    await s3.send(
      new PutBucketVersioningCommand({ Bucket: data, VersioningConfiguration: { Status: "Enabled" } }),
    );
    await s3.send(new PutObjectCommand({ Bucket: data, Key: "notes.txt", Body: "one" }));
    await s3.send(new PutObjectCommand({ Bucket: data, Key: "notes.txt", Body: "two" }));
    await s3.send(new DeleteObjectCommand({ Bucket: data, Key: "notes.txt" }));
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: "kmslab-key-user",
        PolicyName: "added-by-hand",
        PolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: "s3:ListAllMyBuckets", Resource: "*" }],
        }),
      }),
    );
    const policy = await iam.send(
      new CreatePolicyCommand({
        PolicyName: "kmslab-extra",
        PolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: "*" }],
        }),
      }),
    );
    await iam.send(
      new AttachRolePolicyCommand({ RoleName: "kmslab-key-user", PolicyArn: policy.Policy!.Arn! }),
    );
    s3.destroy();
    iam.destroy();
    expect((await labResources(config)).length).toBe(6);

    const dry = await tearDown(sim, store, { dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.items.filter((i) => i.outcome === "wouldRemove").map((i) => i.type)).toEqual([
      "AWS::CloudTrail::Trail",
      "AWS::S3::Bucket",
      "AWS::S3::Bucket",
      "AWS::KMS::Alias",
      "AWS::KMS::Key",
      "AWS::IAM::Role",
    ]);
    expect(await labResources(config)).toHaveLength(6);

    const result = await tearDown(sim, store);
    expect(result.complete).toBe(true);
    expect(result.remaining).toEqual([]);
    expect(new Set(result.items.map((i) => i.outcome))).toEqual(new Set(["removed"]));
    const key = result.items.find((i) => i.type === "AWS::KMS::Key")!;
    expect(Date.parse(key.deletionDate!) - Date.now()).toBeGreaterThan(6.9 * 86_400_000);
    expect(await labResources(config)).toEqual([]);

    // The state file says so too: every effect undone, every stage rolled back, the record written.
    const state = parseState(store.snapshotText!, "memory");
    expect(Object.values(state.stages).map((s) => s.status)).toEqual(Array(6).fill("rolledBack"));
    expect(state.ledger.every((l) => l.deletedAt)).toBe(true);
    expect(state.teardown?.remaining).toEqual([]);

    const mutating = sim.stats.mutatingCalls;
    const again = await tearDown(sim, store);
    expect(again.complete).toBe(true);
    expect(sim.stats.mutatingCalls).toBe(mutating);
    expect(Object.values(outcomes(again))).not.toContain("removed");
    expect(outcomes(again)[`AWS::KMS::Key ${key.arn.split("/").pop()}`]).toBe("pendingDeletion");
  }, 60_000);

  it("empties the log bucket again when one more file lands after logging stopped", async () => {
    const sim = Simulator.inMemory();
    const store = new MemoryStateStore();
    expect((await runIn(sim, store)).complete).toBe(true);
    const logBucket = `kmslab-trail-${sim.account.accountId}-us-east-1`;
    const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
    // A late delivery, as CloudTrail may make after StopLogging: right after the teardown emptied
    // the log bucket the first time, before it deletes the bucket.
    let late = 0;
    class LateDelivery extends Clients {
      override async call(...args: Parameters<Clients["call"]>) {
        const out = await super.call(...args);
        const [service, action, input] = args;
        if (service === "s3" && action === "DeleteObjects" && input.Bucket === logBucket && late++ === 0)
          await s3.send(
            new PutObjectCommand({
              Bucket: logBucket,
              Key: `AWSLogs/${sim.account.accountId}/CloudTrail/us-east-1/late.json.gz`,
              Body: "late",
            }),
          );
        return out;
      }
    }
    const clients = new LateDelivery({ ...sim.clientConfig(), region: "us-east-1" });
    const result = await teardown({
      clients,
      account: sim.account.accountId,
      region: "us-east-1",
      store,
      sleep: async () => {},
    });
    clients.destroy();
    s3.destroy();
    expect(late).toBe(2);
    expect(result.complete).toBe(true);
    expect(await labResources(sim.clientConfig())).toEqual([]);
  }, 60_000);

  it("counts what was deleted by hand as already gone, before the sweep or between it and the deletion", async () => {
    const sim = Simulator.inMemory();
    const store = new MemoryStateStore();
    expect((await runIn(sim, store)).complete).toBe(true);
    const hand = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
    await hand.call("cloudtrail", "DeleteTrail", { Name: "kmslab-trail" });
    // The alias goes by hand after the sweep saw it: DeleteAlias answers NotFoundException.
    class ByHand extends Clients {
      override async call(...args: Parameters<Clients["call"]>) {
        if (args[1] === "DeleteAlias") await hand.call("kms", "DeleteAlias", args[2]);
        return super.call(...args);
      }
    }
    const clients = new ByHand({ ...sim.clientConfig(), region: "us-east-1" });
    const result = await teardown({ clients, account: sim.account.accountId, region: "us-east-1", store });
    clients.destroy();
    hand.destroy();
    expect(result.complete).toBe(true);
    const byType = Object.fromEntries(result.items.map((i) => [i.type, i.outcome]));
    expect(byType["AWS::CloudTrail::Trail"]).toBe("gone");
    expect(byType["AWS::KMS::Alias"]).toBe("gone");
    expect(byType["AWS::IAM::Role"]).toBe("removed");
    expect(await labResources(sim.clientConfig())).toEqual([]);
  }, 60_000);

  it("completes with 20% throttling injected on every service", async () => {
    const faults = new FaultInjector({}, 20261129);
    const sim = Simulator.inMemory({ faults });
    const store = new MemoryStateStore();
    expect((await runIn(sim, store)).complete).toBe(true);
    faults.set("*", { throttle: 0.2 });
    const result = await tearDown(sim, store);
    faults.clear();
    expect(result.complete).toBe(true);
    expect(await labResources(sim.clientConfig())).toEqual([]);
  }, 60_000);

  it("with AccessDenied on one deletion, reports exactly what remains and exits non-zero; run again once allowed, it completes", async () => {
    const cwd = tempDir("kmslab-td-denied-");
    const dir = join(cwd, ".kmslab/sim");
    const state = join(cwd, ".kmslab/state.json");
    await withSim(dir, (sim) => runIn(sim, new FileStateStore(state)));
    const denied = await runCli(["teardown", "--yes", "--json"], {
      cwd,
      env: { ...instant, KMSLAB_SIM_FAULTS: "iam.DeleteRole:deny=1" },
    });
    expect(denied.code, denied.stderr).toBe(1);
    const out = JSON.parse(denied.stdout) as TeardownResult;
    const account = out.account;
    expect(out.remaining).toEqual([`arn:aws:iam::${account}:role/kmslab-key-user`]);
    const role = out.items.find((i) => i.type === "AWS::IAM::Role")!;
    expect(role.outcome).toBe("failed");
    expect((role as unknown as { reason: string }).reason).toContain("AccessDenied");
    expect(await withSim(dir, (sim) => labResources(sim.clientConfig()))).toEqual([
      `role kmslab-key-user tagged ${out.runId}`,
    ]);
    const table = await runCli(["teardown"], { cwd, env: instant });
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/would remove\s+AWS::IAM::Role/);
    const half = await runCli(["status"], { cwd, env: instant });
    expect(half.stdout).toMatch(/teardown .*: 1 resource\(s\) remain/);

    const retried = await runCli(["teardown", "--yes"], { cwd, env: instant });
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toContain("nothing that should go remains");
    expect(await withSim(dir, (sim) => labResources(sim.clientConfig()))).toEqual([]);
    // `kmslab status` tells a torn-down run from a failed one: no points, nothing failed.
    const status = await runCli(["status"], { cwd, env: instant });
    expect(status.stdout).toContain("0/100 points");
    expect(status.stdout).not.toContain("failed");
    expect(status.stdout).toMatch(/torn down .*: nothing the run made remains/);
  }, 60_000);
});

describe("safety", () => {
  it("keeps untagged look-alikes with the lab's names through a teardown and an --all-runs sweep, and removes another run's only with --all-runs", async () => {
    const cwd = tempDir("kmslab-td-safe-");
    const dir = join(cwd, ".kmslab/sim");
    const stateA = join(cwd, "a.json");
    const stateB = join(cwd, "b.json");
    const account = await withSim(dir, async (sim) => {
      await runIn(sim, new FileStateStore(stateA));
      await runIn(sim, new FileStateStore(stateB), { suffix: "-b" });
      return sim.account.accountId;
    });
    const a = await runCli(["teardown", "--yes", "--state", stateA], { cwd, env: instant });
    expect(a.code, a.stderr).toBe(0);
    // Run b's resources are another run's: listed as kept, untouched.
    expect(a.stdout).toMatch(/kept\s+AWS::IAM::Role\s+\S+kmslab-key-user-b — tagged by another run/);
    const lookAlikes = await withSim(dir, (sim) => makeLookAlikes(sim.clientConfig(), account));
    const left = await withSim(dir, (sim) => labResources(sim.clientConfig()));
    expect(left.filter((r) => !r.includes(" tagged "))).toEqual(lookAlikes);
    expect(left.filter((r) => r.includes(" tagged "))).toHaveLength(6);

    // Run a's teardown again: the look-alikes carry a's names, not its tags.
    const again = await runCli(["teardown", "--yes", "--state", stateA, "--json"], { cwd, env: instant });
    expect(again.code, again.stderr).toBe(0);
    const kept = (JSON.parse(again.stdout) as TeardownResult).items.filter((i) => i.outcome === "kept");
    expect(kept.filter((i) => i.reason.includes("another run"))).toHaveLength(6);
    expect(
      kept
        .filter((i) => !i.reason.includes("another run"))
        .map((i) => i.type)
        .sort(),
    ).toEqual([
      "AWS::CloudTrail::Trail",
      "AWS::IAM::Role",
      "AWS::KMS::Alias",
      "AWS::S3::Bucket",
      "AWS::S3::Bucket",
    ]);

    // --all-runs needs the account confirmed: refused without it, and with another account.
    const unconfirmed = await runCli(["teardown", "--all-runs", "--yes", "--state", stateA], {
      cwd,
      env: instant,
    });
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain("--account");
    const wrong = await runCli(["teardown", "--all-runs", "--yes", "--account", "111122223333"], {
      cwd,
      env: instant,
    });
    expect(wrong.code).toBe(4);
    expect(await withSim(dir, (sim) => labResources(sim.clientConfig()))).toEqual(left);

    const all = await runCli(
      ["teardown", "--all-runs", "--yes", "--account", account, "--state", join(cwd, "none.json")],
      {
        cwd,
        env: instant,
      },
    );
    expect(all.code, all.stderr).toBe(0);
    expect(await withSim(dir, (sim) => labResources(sim.clientConfig()))).toEqual(lookAlikes);

    // Asked for explicitly, the look-alikes go (the trail first, the role's trust policy and all).
    const untagged = await runCli(["teardown", "--include-untagged", "--yes", "--state", stateA], {
      cwd,
      env: instant,
    });
    expect(untagged.code, untagged.stderr).toBe(0);
    expect(untagged.stdout).toMatch(/removed\s+AWS::KMS::Alias/);
    expect(await withSim(dir, (sim) => labResources(sim.clientConfig()))).toEqual([]);
  }, 120_000);

  it("is a dry run without --yes when not interactive, and refuses a state file of another account or Region", async () => {
    const cwd = tempDir("kmslab-td-dry-");
    const dir = join(cwd, ".kmslab/sim");
    const state = join(cwd, ".kmslab/state.json");
    await withSim(dir, (sim) => runIn(sim, new FileStateStore(state)));
    const before = readFileSync(state, "utf8");
    const dry = await runCli(["teardown"], { cwd, env: instant });
    expect(dry.code).toBe(1);
    expect(dry.stdout).toMatch(/would remove 6/);
    expect(dry.stderr).toContain("dry run, nothing was changed");
    expect(await withSim(dir, (sim) => labResources(sim.clientConfig()))).toHaveLength(6);
    expect(readFileSync(state, "utf8")).toBe(before);

    const other = tempDir("kmslab-td-other-");
    const mtime = statSync(state).mtimeMs;
    const refused = await runCli(["teardown", "--yes", "--sim-data", join(other, "sim")], {
      cwd,
      env: instant,
    });
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/account/);
    expect(statSync(state).mtimeMs).toBe(mtime);
    const region = await runCli(["teardown", "--yes", "--region", "eu-west-1"], { cwd, env: instant });
    expect(region.code).toBe(5);
    expect(region.stderr).toMatch(/eu-west-1/);
    expect(statSync(state).mtimeMs).toBe(mtime);

    const none = await runCli(["teardown", "--yes", "--state", join(cwd, "nothing.json")], {
      cwd,
      env: instant,
    });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no state file");
    const bad = await runCli(["teardown", "--all-runs", "--account", "12345"], { cwd, env: instant });
    expect(bad.code).toBe(2);
  }, 60_000);
});

describe("crashes", () => {
  it("after a crash at each effect of a run, teardown without resuming leaves nothing of the lab", async () => {
    // A full run makes 10 effects; `k:call` crashes after the call, before its checkpoint.
    for (let k = 1; k <= 10; k++) {
      for (const window of ["", ":call"]) {
        const cwd = tempDir("kmslab-td-crash-");
        const crashed = await runCli(["run", ...RUN_ARGS], {
          cwd,
          env: { ...instant, KMSLAB_TEST_CRASH_AFTER_EFFECT: `${k}${window}` },
        });
        expect(crashed.code, `crash at ${k}${window}: ${crashed.stderr}`).toBe(null);
        const result = await withSim(join(cwd, ".kmslab/sim"), async (sim) => {
          const r = await tearDown(sim, new FileStateStore(join(cwd, ".kmslab/state.json")));
          return { r, left: await labResources(sim.clientConfig()) };
        });
        expect(result.r.complete, `teardown after ${k}${window}`).toBe(true);
        expect(result.left, `after ${k}${window}`).toEqual([]);
      }
    }
  }, 300_000);

  it("killed at each deletion, a teardown run again completes, and one more removes nothing", async () => {
    const base = tempDir("kmslab-td-kill-base-");
    await withSim(join(base, ".kmslab/sim"), (sim) =>
      runIn(sim, new FileStateStore(join(base, ".kmslab/state.json"))),
    );
    let finished = 0;
    for (const window of ["", ":checkpoint"]) {
      for (let k = 1; k < 40; k++) {
        const cwd = tempDir("kmslab-td-kill-");
        cpSync(join(base, ".kmslab"), join(cwd, ".kmslab"), { recursive: true });
        const killed = await runCli(["teardown", "--yes"], {
          cwd,
          env: { ...instant, KMSLAB_TEST_CRASH_AFTER_DELETION: `${k}${window}` },
        });
        if (killed.code === 0) {
          // k is past the last deletion: the teardown ran to the end.
          finished++;
          break;
        }
        expect(killed.code, `kill at ${k}${window}: ${killed.stderr}`).toBe(null);
        expect(() =>
          parseState(readFileSync(join(cwd, ".kmslab/state.json"), "utf8"), "state"),
        ).not.toThrow();
        // Run again (in process: the killed one's locks are stale and taken over), then once more.
        await withSim(join(cwd, ".kmslab/sim"), async (sim) => {
          const store = new FileStateStore(join(cwd, ".kmslab/state.json"));
          const again = await tearDown(sim, store);
          expect(again.complete, `again after ${k}${window}`).toBe(true);
          expect(await labResources(sim.clientConfig()), `after ${k}${window}`).toEqual([]);
          const mutating = sim.stats.mutatingCalls;
          const third = await tearDown(sim, store);
          expect(third.complete).toBe(true);
          expect(third.items.filter((i) => i.outcome === "removed")).toEqual([]);
          expect(sim.stats.mutatingCalls).toBe(mutating);
        });
        if (window === ":checkpoint") expect(k).toBeLessThanOrEqual(6);
      }
    }
    expect(finished).toBe(2);
  }, 300_000);
});

describe("what the sweep cannot read", () => {
  /** A key whose key policy admits only another role: not even the account's IAM policies reach it. */
  async function foreignKey(admin: Clients, account: string): Promise<string> {
    await admin.call("iam", "CreateRole", {
      RoleName: "someone-else",
      AssumeRolePolicyDocument: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: "sts:AssumeRole" },
        ],
      }),
    });
    const key = await admin.call("kms", "CreateKey", {
      BypassPolicyLockoutSafetyCheck: true,
      Policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { AWS: `arn:aws:iam::${account}:role/someone-else` },
            Action: "kms:*",
            Resource: "*",
          },
        ],
      }),
    });
    return (key.KeyMetadata as { Arn: string }).Arn;
  }

  /** A bucket whose policy denies everyone reading its tags. */
  async function deniedBucket(admin: Clients, name: string): Promise<void> {
    await admin.call("s3", "CreateBucket", { Bucket: name });
    await admin.call("s3", "PutBucketPolicy", {
      Bucket: name,
      Policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Deny", Principal: "*", Action: "s3:GetBucketTagging", Resource: `arn:aws:s3:::${name}` },
        ],
      }),
    });
  }

  /** An S3 that ignores ListBuckets' BucketRegion and says no bucket's Region: every bucket is listed. */
  class NoRegionFilter extends Clients {
    override async call(...args: Parameters<Clients["call"]>) {
      const [service, action, input, options] = args;
      if (service !== "s3" || action !== "ListBuckets") return super.call(...args);
      const { BucketRegion: _r, ...rest } = input;
      const out = await super.call(service, action, rest, options);
      const buckets = out.Buckets as { BucketRegion?: string }[];
      return { ...out, Buckets: buckets.map(({ BucketRegion: _b, ...b }) => b) };
    }
  }

  it("skips someone else's key, a bucket whose policy denies the caller and another Region's bucket, each with its reason, and removes the run's resources", async () => {
    const sim = Simulator.inMemory();
    const store = new MemoryStateStore();
    expect((await runIn(sim, store)).complete).toBe(true);
    const account = sim.account.accountId;
    const admin = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
    const europe = new Clients({ ...sim.clientConfig(), region: "eu-west-1" });
    const key = await foreignKey(admin, account);
    await deniedBucket(admin, "someone-elses-bucket");
    await europe.call("s3", "CreateBucket", {
      Bucket: "a-bucket-in-ireland",
      CreateBucketConfiguration: { LocationConstraint: "eu-west-1" },
    });
    europe.destroy();

    // ListBuckets asks S3 for this Region's buckets only.
    const listed: Record<string, unknown>[] = [];
    const watched = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
    watched.observer = (c) => {
      if (c.action === "ListBuckets") listed.push(c.input);
    };
    const dry = await teardown({ clients: watched, account, region: "us-east-1", store, dryRun: true });
    watched.destroy();
    expect(listed).toEqual([{ BucketRegion: "us-east-1" }]);
    const reason = (r: TeardownResult, arn: string) => r.items.find((i) => i.arn === arn);
    expect(reason(dry, key)).toMatchObject({
      outcome: "skipped",
      reason: expect.stringMatching(
        /^access to it is denied \(DescribeKey: AccessDeniedException: .*not provably the lab's/,
      ),
    });
    expect(reason(dry, "arn:aws:s3:::someone-elses-bucket")).toMatchObject({
      outcome: "skipped",
      reason: expect.stringMatching(/^access to it is denied \(GetBucketTagging: AccessDenied: /),
    });
    // Filtered out by S3: not looked at.
    expect(reason(dry, "arn:aws:s3:::a-bucket-in-ireland")).toBeUndefined();
    expect(dry.items.filter((i) => i.outcome === "wouldRemove")).toHaveLength(6);
    expect(dry.undecided).toEqual([]);

    // A server that ignores the filter: the other Region's bucket answers 301, and is skipped too.
    const clients = new NoRegionFilter({ ...sim.clientConfig(), region: "us-east-1" });
    const result = await teardown({ clients, account, region: "us-east-1", store, bucketBudgetMs: 10_000 });
    clients.destroy();
    expect(reason(result, "arn:aws:s3:::a-bucket-in-ireland")).toMatchObject({
      outcome: "skipped",
      reason:
        "it is in another Region (GetBucketTagging: 301 PermanentRedirect): not provably the lab's, so it is kept",
    });
    expect(result.complete).toBe(true);
    expect(result.items.filter((i) => i.outcome === "removed")).toHaveLength(6);
    expect(await labResources(sim.clientConfig())).toEqual([]);
    // What was skipped is untouched.
    expect(
      ((await admin.call("kms", "ListKeys", {})).Keys as { KeyArn: string }[]).map((k) => k.KeyArn),
    ).toContain(key);
    await admin.call("s3", "HeadBucket", { Bucket: "someone-elses-bucket" });
    admin.destroy();
  }, 60_000);

  it("keeps a bucket with the lab's name whose tags it may not read, and says the teardown is not complete, dry run too", async () => {
    const cwd = tempDir("kmslab-td-unread-");
    const dir = join(cwd, ".kmslab/sim");
    const state = join(cwd, ".kmslab/state.json");
    const bucket = await withSim(dir, async (sim) => {
      await runIn(sim, new FileStateStore(state));
      const admin = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
      // The run's data bucket is gone, and one of the same name is there that nobody may read the tags of.
      const name = `kmslab-data-${sim.account.accountId}-us-east-1`;
      await admin.call("s3", "DeleteObject", { Bucket: name, Key: "reports/secret-report.txt" });
      await admin.call("s3", "DeleteBucket", { Bucket: name });
      await deniedBucket(admin, name);
      admin.destroy();
      return name;
    });
    const dry = await runCli(["teardown", "--json"], { cwd, env: instant });
    expect(dry.code).toBe(1);
    const planned = JSON.parse(dry.stdout) as TeardownResult;
    expect(planned.undecided).toEqual([`arn:aws:s3:::${bucket}`]);
    expect(planned.items.find((i) => i.arn === `arn:aws:s3:::${bucket}`)).toMatchObject({
      outcome: "skipped",
      undecided: true,
    });
    const done = await runCli(["teardown", "--yes"], { cwd, env: instant });
    expect(done.code).toBe(1);
    expect(done.stdout).toMatch(
      new RegExp(`skipped +AWS::S3::Bucket +arn:aws:s3:::${bucket} — access to it is denied`),
    );
    expect(done.stdout).toContain("kept because whose they are could not be read");
    await withSim(dir, async (sim) => {
      const admin = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
      await admin.call("s3", "HeadBucket", { Bucket: bucket });
      admin.destroy();
      // Everything else of the run is gone.
      expect(await labResources(sim.clientConfig())).toEqual([`bucket ${bucket}`]);
    });
  }, 60_000);
});
