import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
// deploy and the class runner are not in the bundle: their sources, via tsx.
import { anySuffix, deploy } from "../asl/deploy.js";
import { runClass, sfnClient } from "../asl/executions.js";
import { Clients } from "../machines/aws.js";
import type * as SimLibrary from "../sim/index.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { median } from "./stats.js";

const bundle = "../dist/index.js";
const { Simulator, PROFILES } = (await import(bundle)) as typeof SimLibrary;

/**
 * `kmslab sfn start --class` on the embedded simulator: a class of 50 learners sharing one
 * simulated account (a data directory, as the CLI's), each an execution of the deployed lab with
 * their own suffix, started and followed by the class runner `concurrency` at a time — the
 * executions run in this process, as the CLI's do. Prints the wall time, each learner's execution
 * time, the calls the executions made (LookupEvents and throttled ones apart) and peak memory; no
 * assertion on time.
 *
 * The account's CloudTrail allows 2 LookupEvents a second (AWS's limit, shared by the whole class:
 * each lab's lookups that get through, ~5, are a floor of learners × 5 / 2 seconds, and throttled ones
 * back off); BENCH_SFN_LOOKUPS=0 lifts the limit to see the executions' own cost.
 */
const LEARNERS = Number(process.env.BENCH_SFN_LEARNERS ?? 50);
const CONCURRENCY = Number(process.env.BENCH_SFN_CONCURRENCY ?? 10);
const LOOKUPS = Number(process.env.BENCH_SFN_LOOKUPS ?? 2);
const FAST = { pollSeconds: 1, trailWaitSeconds: 120, propagationWaitSeconds: 30 };
const REGION = "us-east-1";

export async function run(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), "kmslab-bench-sfn-"));
  const sim = Simulator.open(join(dir, "sim"), {
    command: "bench",
    profile: { ...PROFILES.standard!, trailLookupsPerSecond: LOOKUPS },
  });
  const base = { ...sim.clientConfig({ region: REGION }), region: REGION };
  const clients = new Clients(base);
  const sfn = sfnClient(base);
  let calls = 0;
  let lookups = 0;
  let throttled = 0;
  const unobserve = sim.observe((c) => {
    calls++;
    if (c.operation === "LookupEvents") lookups++;
    if (/Throttl/.test(c.error?.code ?? "")) throttled++;
  });
  try {
    const account = sim.account.accountId;
    const deployStart = performance.now();
    const deployed = await deploy({
      sfn,
      clients,
      account,
      region: REGION,
      names: anySuffix(resolveParams(parseParams({}), account)),
    });
    const deployMs = performance.now() - deployStart;
    const items = Array.from({ length: LEARNERS }, (_, i) => {
      const n = String(i + 1).padStart(3, "0");
      return {
        learner: `learner ${n}`,
        executionName: `learner-${n}-bench`,
        input: { ...FAST, suffix: `-l${n}` },
      };
    });

    global.gc?.();
    let peakHeap = process.memoryUsage().heapUsed;
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakRss = Math.max(peakRss, m.rss);
    }, 50);
    const before = { calls, lookups, throttled };
    const start = performance.now();
    const outcomes = await runClass(sfn, deployed.stateMachines.lab.arn, items, {
      concurrency: CONCURRENCY,
      wait: true,
      intervalMs: 500,
    });
    const wallMs = performance.now() - start;
    clearInterval(sampler);

    const durations = outcomes.flatMap((o) => (o.durationMs !== undefined ? [o.durationMs] : []));
    const succeeded = outcomes.filter((o) => o.status === "SUCCEEDED").length;
    const failures = new Map<string, number>();
    for (const o of outcomes)
      if (o.status !== "SUCCEEDED") {
        const why = `${o.status} ${o.error ?? ""}: ${(o.cause ?? "").slice(0, 100)}`;
        failures.set(why, (failures.get(why) ?? 0) + 1);
      }
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    console.log(
      `\nsfn-class: ${LEARNERS} learners, one simulated account, ${CONCURRENCY} executions at a time, CloudTrail ${LOOKUPS || "unlimited"} LookupEvents/s`,
    );
    console.log(`  deploy (validate, role, two state machines)  ${s(deployMs)}`);
    console.log(
      `  wall time, all ${LEARNERS}                        ${s(wallMs)}  (${s(wallMs / LEARNERS)} a learner)`,
    );
    console.log(
      `  each learner's execution                    median ${s(median(durations))}, min ${s(Math.min(...durations))}, max ${s(Math.max(...durations))}`,
    );
    console.log(
      `  calls into the account                      ${calls - before.calls} (${lookups - before.lookups} LookupEvents, ${throttled - before.throttled} throttled)`,
    );
    console.log(`  succeeded                                   ${succeeded}/${LEARNERS}`);
    for (const [why, n] of failures) console.log(`    ${n} × ${why}`);
    console.log(
      `  peak memory: heap ${mb(peakHeap)}, RSS ${mb(peakRss)} sampled, process max RSS ${mb(process.resourceUsage().maxRSS * 1024)}`,
    );
    // The acceptance: every learner of the class succeeds (npm run bench fails otherwise).
    return succeeded === LEARNERS;
  } finally {
    unobserve();
    sfn.destroy();
    clients.destroy();
    sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = (await run()) ? 0 : 1;
