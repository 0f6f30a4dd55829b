import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
// The engine is not in the bundle (dist/ holds the CLI and the simulator): its sources, via tsx.
import { AwsError, Clients, type Credentials, type ObservedCall } from "../machines/aws.js";
import { runLab } from "../machines/engine.js";
import type * as SimLibrary from "../sim/index.js";
import { FileStateStore, MemoryStateStore } from "../state/index.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { median } from "./stats.js";

const bundle = "../dist/index.js";
const { Simulator, FaultInjector, PROFILES } = (await import(bundle)) as typeof SimLibrary;

/**
 * The lab engine's cost, measured side by side in one run:
 *  - the full lab on the embedded simulator (instant profile: no simulated waiting) — the engine
 *    with its machine, JSONata, checkpoints to a state file after every effect and transition;
 *  - the same AWS calls, recorded from that run, replayed by a straight-line script with no engine
 *    (ids the account made are mapped to the new account's): orchestration overhead = lab / script,
 *    target ≤ 1.3, the median of the rounds' ratios (each round runs the lab, then its script, so
 *    load from other processes hits both alike), after warm-up rounds: the engine's own code (the
 *    machine, JSONata, the state file) is still being compiled by V8 in the first few runs of a
 *    process, which the cold-process figure below shows;
 *  - both again with 50 ms of latency injected into every call: the engine runs independent stages
 *    at the same time, the script one call after another — target lab / script ≤ 0.8;
 *  - `kmslab run` as a cold process (node start, bundle load, the whole lab) and `kmslab --version`.
 */
const ROUNDS = Number(process.env.BENCH_LAB_ROUNDS ?? 11);
const WARM_UP = 5;
const LATENCY_ROUNDS = 3;
const REGION = "us-east-1";
const FAST = { pollSeconds: 1, trailWaitSeconds: 60, propagationWaitSeconds: 10 };

type Sim = ReturnType<typeof Simulator.inMemory>;

/**
 * CloudTrail's 2 LookupEvents/s would make both sides mostly wait (the lab looks events up 8 times):
 * the limit is lifted in the account and in the engine's pacing alike, so what is compared is work.
 */
function freshSim(latencyMs = 0): Sim {
  const faults = latencyMs > 0 ? FaultInjector.parse(`*:latency=${latencyMs}`) : undefined;
  const profile = { ...PROFILES.instant!, trailLookupsPerSecond: 0 };
  return Simulator.inMemory({ profile, ...(faults ? { faults } : {}) });
}

/** One run of the whole lab; `inMemory`: the state in a MemoryStateStore, not in a file. */
async function lab(
  sim: Sim,
  inMemory = false,
): Promise<{ ms: number; calls: ObservedCall[]; writes: number }> {
  const dir = inMemory ? undefined : mkdtempSync(join(tmpdir(), "kmslab-bench-lab-"));
  const clients = new Clients({ ...sim.clientConfig(), region: REGION }, {}, 0);
  const calls: ObservedCall[] = [];
  clients.observer = (c) => calls.push(c);
  const store = dir ? new FileStateStore(join(dir, "state.json")) : new MemoryStateStore();
  const start = performance.now();
  const result = await runLab({
    store,
    clients,
    target: { kind: "sim", region: REGION, accountId: sim.account.accountId },
    params: resolveParams(parseParams(FAST), sim.account.accountId),
    command: "bench",
  });
  const ms = performance.now() - start;
  clients.destroy();
  // Every write of the state file adds one to its serial.
  const writes = (await store.read())!.serial;
  if (dir) rmSync(dir, { recursive: true, force: true });
  if (!result.complete) throw new Error(`the lab did not complete: ${JSON.stringify(result.stages)}`);
  return { ms, calls, writes };
}

/** Replaces every known old value (account id, key ids, ARNs) inside strings. */
function substitute(value: unknown, map: Map<string, string>): unknown {
  if (typeof value === "string") {
    let out = value;
    for (const [from, to] of map) if (out.includes(from)) out = out.split(from).join(to);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, map));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, map)]));
  return value;
}

/** Learns which new values stand for which old ones, from two outputs of the same call. */
function learn(before: unknown, after: unknown, map: Map<string, string>): void {
  if (typeof before === "string" && typeof after === "string") {
    // Only what the account invents: key ids and ARNs, ciphertexts. (Names are the same in both runs.)
    const invented = /^[0-9a-f-]{36}$|:key\/[0-9a-f-]{36}$|^[A-Za-z0-9+/=]{60,}$/;
    if (before !== after && invented.test(before)) map.set(before, after);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    for (const [i, b] of before.entries()) learn(b, after[i], map);
    return;
  }
  if (before && after && typeof before === "object" && typeof after === "object")
    for (const [k, v] of Object.entries(before)) learn(v, (after as Record<string, unknown>)[k], map);
}

/** The recorded calls, one after another, as a plain script would make them. */
async function script(sim: Sim, calls: ObservedCall[], oldAccount: string): Promise<number> {
  const clients = new Clients({ ...sim.clientConfig(), region: REGION }, {}, 0);
  const map = new Map([[oldAccount, sim.account.accountId]]);
  let keyUser: Credentials | undefined;
  const start = performance.now();
  for (const c of calls) {
    const input = substitute(c.input, map) as Record<string, unknown>;
    const options = { ...c.options, ...(c.options.credentials && keyUser ? { credentials: keyUser } : {}) };
    try {
      const out = await clients.call(c.service, c.action, input, options);
      if (c.output) learn(c.output, out, map);
      if (c.action === "AssumeRole") {
        const k = out.Credentials as { AccessKeyId: string; SecretAccessKey: string; SessionToken: string };
        keyUser = {
          accessKeyId: k.AccessKeyId,
          secretAccessKey: k.SecretAccessKey,
          sessionToken: k.SessionToken,
        };
      }
    } catch (err) {
      // The recorded run may have had an error here too; and log files have random names, so a
      // replayed read of one the new account named otherwise answers NoSuchKey: a call all the same.
      if (!(err instanceof AwsError)) throw err;
    }
  }
  const ms = performance.now() - start;
  clients.destroy();
  return ms;
}

function cold(args: string[], env: Record<string, string>): number {
  const cwd = mkdtempSync(join(tmpdir(), "kmslab-bench-cold-"));
  const start = performance.now();
  const res = spawnSync(process.execPath, [resolve(import.meta.dirname, "../bin/kmslab.js"), ...args], {
    cwd,
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
  const ms = performance.now() - start;
  rmSync(cwd, { recursive: true, force: true });
  if (res.status !== 0) throw new Error(`kmslab ${args.join(" ")} exited ${res.status}: ${res.stderr}`);
  return ms;
}

export async function run(): Promise<boolean> {
  for (let r = 0; r < WARM_UP; r++) {
    const sim = freshSim();
    await script(freshSim(), (await lab(sim)).calls, sim.account.accountId);
  }
  const labMs: number[] = [];
  const memoryMs: number[] = [];
  const scriptMs: number[] = [];
  let callCount = 0;
  let writes = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const sim = freshSim();
    const recorded = await lab(sim);
    callCount = recorded.calls.length;
    writes = recorded.writes;
    labMs.push(recorded.ms);
    memoryMs.push((await lab(freshSim(), true)).ms);
    scriptMs.push(await script(freshSim(), recorded.calls, sim.account.accountId));
  }
  const latencyLab: number[] = [];
  const latencyScript: number[] = [];
  for (let r = 0; r < LATENCY_ROUNDS; r++) {
    const sim = freshSim(50);
    const recorded = await lab(sim);
    latencyLab.push(recorded.ms);
    latencyScript.push(await script(freshSim(50), recorded.calls, sim.account.accountId));
  }
  const coldRun = median(
    [0, 1, 2].map(() => cold(["run", ...["--poll-interval", "1"]], { KMSLAB_SIM_PROFILE: "instant" })),
  );
  const coldVersion = median([0, 1, 2].map(() => cold(["--version"], {})));

  const overhead = median(labMs.map((ms, i) => ms / scriptMs[i]!));
  const memoryOverhead = median(memoryMs.map((ms, i) => ms / scriptMs[i]!));
  const parallel = median(latencyLab) / median(latencyScript);
  console.log(
    `\nThe lab engine (median of ${ROUNDS} rounds after ${WARM_UP} warm-up rounds; ${callCount} AWS calls and ${writes} state file writes per run)`,
  );
  console.log(
    `  full lab, embedded simulator (in process, state file on disk): ${median(labMs).toFixed(0)} ms`,
  );
  console.log(
    `  the same calls as a plain script:                               ${median(scriptMs).toFixed(0)} ms`,
  );
  console.log(
    `  orchestration overhead lab/script: ${overhead.toFixed(2)} (target ≤ 1.3: ${overhead <= 1.3 ? "met" : "NOT MET"})`,
  );
  // The same runs with the state kept in memory: what the engine's own work costs, without the
  // state file's durable writes (each an fsync of the file and one of its directory).
  console.log(
    `  the lab with its state in memory instead of a file: ${median(memoryMs).toFixed(0)} ms, lab/script ${memoryOverhead.toFixed(2)}`,
  );
  console.log(
    `  with 50 ms per call: lab ${median(latencyLab).toFixed(0)} ms, script ${median(latencyScript).toFixed(0)} ms`,
  );
  console.log(
    `  parallel stages lab/script: ${parallel.toFixed(2)} (target ≤ 0.8: ${parallel <= 0.8 ? "met" : "NOT MET"})`,
  );
  console.log(
    `  cold \`kmslab run\` (new process, whole lab): ${coldRun.toFixed(0)} ms; cold \`kmslab --version\`: ${coldVersion.toFixed(0)} ms`,
  );
  return overhead <= 1.3 && parallel <= 0.8;
}
