import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
// The engine and the teardown are not in the bundle: their sources, via tsx.
import { AwsError, Clients, type ObservedCall } from "../machines/aws.js";
import { runLab } from "../machines/engine.js";
import type * as SimLibrary from "../sim/index.js";
import { FileStateStore } from "../state/index.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { teardown } from "../teardown/index.js";
import { median } from "./stats.js";

const bundle = "../dist/index.js";
const { Simulator, PROFILES } = (await import(bundle)) as typeof SimLibrary;

/**
 * The teardown's cost, side by side in one run, on the embedded simulator (instant profile):
 *  - a dry run (the sweep and the plan) and a full teardown after a full lab run, with a checkpoint
 *    written to a state file after every deletion;
 *  - the teardown's changes alone (its StopLogging, DeleteObjects, DeleteBucket... recorded and
 *    replayed as a straight-line script on the same kind of account): teardown / script is what
 *    sweeping, re-checking and checkpointing cost over the bare deletions;
 *  - the dry run again in an account holding 100 unrelated keys, buckets and roles besides the lab:
 *    the sweep reads every resource of the lab's types, so it grows with the account.
 */
const ROUNDS = Number(process.env.BENCH_TEARDOWN_ROUNDS ?? 5);
const REGION = "us-east-1";
const FAST = { pollSeconds: 1, trailWaitSeconds: 60, propagationWaitSeconds: 10 };
type Sim = ReturnType<typeof Simulator.inMemory>;

const freshSim = (): Sim =>
  Simulator.inMemory({ profile: { ...PROFILES.instant!, trailLookupsPerSecond: 0 } });

async function labIn(sim: Sim, dir: string): Promise<FileStateStore> {
  const store = new FileStateStore(join(dir, "state.json"));
  const clients = new Clients({ ...sim.clientConfig(), region: REGION }, {}, 0);
  const result = await runLab({
    store,
    clients,
    target: { kind: "sim", region: REGION, accountId: sim.account.accountId },
    params: resolveParams(parseParams(FAST), sim.account.accountId),
    command: "bench",
  });
  clients.destroy();
  if (!result.complete) throw new Error("the lab did not complete");
  return store;
}

async function timedTeardown(sim: Sim, store: FileStateStore, dryRun: boolean) {
  const clients = new Clients({ ...sim.clientConfig(), region: REGION }, {}, 0);
  const calls: ObservedCall[] = [];
  clients.observer = (c) => calls.push(c);
  const start = performance.now();
  const result = await teardown({ clients, account: sim.account.accountId, region: REGION, store, dryRun });
  const ms = performance.now() - start;
  clients.destroy();
  if (!dryRun && !result.complete) throw new Error("the teardown did not complete");
  return { ms, calls };
}

const CHANGES = /^(Delete|Stop|Schedule|Detach)/;

/** The recorded changes only, one after another, against an account the lab ran in. */
async function script(sim: Sim, calls: ObservedCall[], oldAccount: string, oldKey: string, newKey: string) {
  const clients = new Clients({ ...sim.clientConfig(), region: REGION }, {}, 0);
  const swap = (v: unknown): unknown =>
    JSON.parse(JSON.stringify(v).split(oldAccount).join(sim.account.accountId).split(oldKey).join(newKey));
  const start = performance.now();
  for (const c of calls.filter((c) => CHANGES.test(c.action) && !c.error)) {
    let input = swap(c.input) as Record<string, unknown>;
    if (c.action === "DeleteObjects") {
      // Object versions differ between accounts: list them, as any script emptying a bucket must.
      const listed = await clients.call("s3", "ListObjectVersions", { Bucket: input.Bucket });
      const objects = [
        ...((listed.Versions as { Key: string; VersionId: string }[]) ?? []),
        ...((listed.DeleteMarkers as { Key: string; VersionId: string }[]) ?? []),
      ].map((o) => ({ Key: o.Key, VersionId: o.VersionId }));
      if (objects.length === 0) continue;
      input = { Bucket: input.Bucket, Delete: { Objects: objects, Quiet: true } };
    }
    try {
      await clients.call(c.service, c.action, input);
    } catch (err) {
      if (!(err instanceof AwsError)) throw err;
    }
  }
  const ms = performance.now() - start;
  clients.destroy();
  return ms;
}

async function keyOf(sim: Sim): Promise<string> {
  const clients = new Clients({ ...sim.clientConfig(), region: REGION }, {}, 0);
  const out = await clients.call("kms", "DescribeKey", { KeyId: "alias/myFirstKey" });
  clients.destroy();
  return (out.KeyMetadata as { KeyId: string }).KeyId;
}

async function clutter(sim: Sim, n: number): Promise<void> {
  const clients = new Clients({ ...sim.clientConfig(), region: REGION }, {}, 0);
  const trust = JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { AWS: `arn:aws:iam::${sim.account.accountId}:root` },
        Action: "sts:AssumeRole",
      },
    ],
  });
  for (let i = 0; i < n; i++) {
    await clients.call("kms", "CreateKey", { Description: `other ${i}` });
    await clients.call("s3", "CreateBucket", { Bucket: `other-bucket-${i}` });
    await clients.call("iam", "CreateRole", { RoleName: `other-role-${i}`, AssumeRolePolicyDocument: trust });
  }
  clients.destroy();
}

export async function run(): Promise<boolean> {
  const dryMs: number[] = [];
  const fullMs: number[] = [];
  const scriptMs: number[] = [];
  const clutteredMs: number[] = [];
  let readCalls = 0;
  let changeCalls = 0;
  for (let r = 0; r < ROUNDS + 1; r++) {
    const dir = mkdtempSync(join(tmpdir(), "kmslab-bench-teardown-"));
    const sim = freshSim();
    const store = await labIn(sim, dir);
    const oldKey = await keyOf(sim);
    const dry = await timedTeardown(sim, store, true);
    const full = await timedTeardown(sim, store, false);
    const other = freshSim();
    const otherDir = mkdtempSync(join(tmpdir(), "kmslab-bench-teardown-"));
    await labIn(other, otherDir);
    const replay = await script(other, full.calls, sim.account.accountId, oldKey, await keyOf(other));
    const crowded = freshSim();
    const crowdedDir = mkdtempSync(join(tmpdir(), "kmslab-bench-teardown-"));
    const crowdedStore = await labIn(crowded, crowdedDir);
    await clutter(crowded, 100);
    const cluttered = await timedTeardown(crowded, crowdedStore, true);
    for (const d of [dir, otherDir, crowdedDir]) rmSync(d, { recursive: true, force: true });
    if (r === 0) continue; // warm-up
    dryMs.push(dry.ms);
    fullMs.push(full.ms);
    scriptMs.push(replay);
    clutteredMs.push(cluttered.ms);
    changeCalls = full.calls.filter((c) => CHANGES.test(c.action) && !c.error).length;
    readCalls = full.calls.length - changeCalls;
  }
  const ratio = median(fullMs) / median(scriptMs);
  console.log(`\nkmslab teardown (median of ${ROUNDS} rounds, embedded simulator, instant profile)`);
  console.log(`  dry run (sweep + plan):                     ${median(dryMs).toFixed(0)} ms`);
  console.log(
    `  full teardown (${changeCalls} changes, ${readCalls} reads, checkpoints): ${median(fullMs).toFixed(0)} ms`,
  );
  console.log(`  the same changes as a plain script:         ${median(scriptMs).toFixed(0)} ms`);
  console.log(`  teardown / script: ${ratio.toFixed(2)}`);
  console.log(
    `  dry run with 100 unrelated keys, buckets and roles: ${median(clutteredMs).toFixed(0)} ms (${(median(clutteredMs) / median(dryMs)).toFixed(1)}x the lab-only account)`,
  );
  return true;
}
