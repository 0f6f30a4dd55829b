import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { gradeRoster, type Learner } from "../grade/class.js";
import { gradeLab } from "../grade/grade.js";
import { Clients } from "../machines/aws.js";
import { writeClassReports } from "../report/class.js";
import type * as SimLibrary from "../sim/index.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { labByHand, type Mistakes } from "../test/helpers/handlab.js";

const bundle = "../dist/index.js";
const { Simulator, PROFILES } = (await import(bundle)) as typeof SimLibrary;
type Sim = ReturnType<typeof Simulator.inMemory>;

/**
 * Grading a class: 200 learners, each in their own simulated account (as lab platforms give each
 * learner an account; AWS allows 5 trails per Region in one account, so a class cannot share one),
 * their labs done by hand through the SDK — most right, some with one of the common mistakes.
 * Set-up (the 200 accounts and labs) is timed apart from what is measured: grading all 200 as
 * `kmslab grade --class` does (8 at a time) and writing every learner's JSON and HTML report and the
 * class summary. Target: under 10 s. Peak memory: the heap sampled while grading, and the
 * process's maximum RSS (the 200 accounts included).
 *
 * CloudTrail's 2 LookupEvents/s is per account: with one account a learner it costs a learner one
 * lookup's wait, not the class's; the benchmark lifts it so that what is measured is work.
 */
const LEARNERS = Number(process.env.BENCH_GRADE_LEARNERS ?? 200);
const TARGET_MS = 10_000;

const MISTAKES: Mistakes[] = [
  {},
  {},
  {},
  { sseS3: true },
  { trailNotLogging: true },
  {},
  { leftRemoved: true },
  { neverRemoved: true },
  {},
  { bucketKey: true },
];

export async function run(): Promise<boolean> {
  // Each trail delivers a log file a second at most (AWS: about every 5 minutes), not at every request.
  const profile = { ...PROFILES.instant!, trailDeliveryIntervalMs: 1_000, trailLookupsPerSecond: 0 };
  const roster: Learner[] = Array.from({ length: LEARNERS }, (_, i) => ({
    name: `learner ${String(i + 1).padStart(3, "0")}`,
    line: i + 2,
  }));

  const setupStart = performance.now();
  const sims: Sim[] = [];
  for (const [i] of roster.entries()) {
    const sim = Simulator.inMemory({ profile });
    await labByHand(sim, MISTAKES[i % MISTAKES.length]);
    sims.push(sim);
  }
  // The last events of each lab reach its trail's log file.
  await new Promise((r) => setTimeout(r, 1_100));
  for (const sim of sims) await new STSClient(sim.clientConfig()).send(new GetCallerIdentityCommand({}));
  const setupMs = performance.now() - setupStart;

  let lookups = 0;
  let calls = 0;
  const clients = sims.map((sim) => {
    const c = new Clients({ ...sim.clientConfig(), region: "us-east-1" }, {}, 0);
    c.observer = (call) => {
      calls++;
      if (call.action === "LookupEvents") lookups++;
    };
    return c;
  });
  const writes = () => sims.reduce((n, sim) => n + sim.stats.writeCalls, 0);
  const dir = mkdtempSync(join(tmpdir(), "kmslab-bench-class-"));
  global.gc?.();
  let peakHeap = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 20);
  const writesBefore = writes();
  const start = performance.now();
  const graded = await gradeRoster(roster, (l) => {
    const i = l.line - 2;
    const sim = sims[i]!;
    return gradeLab({
      clients: clients[i]!,
      params: resolveParams(parseParams({}), sim.account.accountId),
      target: { kind: "sim", region: "us-east-1", accountId: sim.account.accountId },
      learner: l.name,
    });
  });
  const gradedMs = performance.now() - start;
  const entries = writeClassReports(graded, dir);
  const totalMs = performance.now() - start;
  clearInterval(sampler);
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  const files = readdirSync(dir).length;
  rmSync(dir, { recursive: true, force: true });
  for (const c of clients) c.destroy();
  const writesDuring = writes() - writesBefore;

  const scores = entries.map((e) => e.result?.score ?? -1);
  const failed = entries.filter((e) => !e.result);
  const full = scores.filter((s) => s === 100).length;
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  const ok = failed.length === 0 && totalMs < TARGET_MS && writesDuring === 0;
  console.log(`\ngrade: a class of ${LEARNERS} learners, one simulated account each`);
  console.log(
    `  set-up (${LEARNERS} accounts, their labs by hand through the SDK)  ${(setupMs / 1000).toFixed(1)} s`,
  );
  console.log(
    `  grade all ${LEARNERS}                                 ${(gradedMs / 1000).toFixed(2)} s  (${(gradedMs / LEARNERS).toFixed(1)} ms a learner, ${calls} calls, ${lookups} LookupEvents)`,
  );
  console.log(
    `  grade + every report + class summary           ${(totalMs / 1000).toFixed(2)} s  (target < ${TARGET_MS / 1000} s: ${(totalMs / TARGET_MS).toFixed(2)} of it; ${files} files)`,
  );
  console.log(`  writes to the accounts while grading           ${writesDuring}`);
  console.log(`  scores: ${full} at 100, min ${Math.min(...scores)}, ${failed.length} not graded`);
  console.log(
    `  peak memory: heap while grading ${mb(peakHeap)}, process max RSS ${mb(process.resourceUsage().maxRSS * 1024)} (the ${LEARNERS} accounts included)`,
  );
  if (!ok) console.log("  grade bench: FAILED (a learner not graded, over target, or a write)");
  return ok;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = (await run()) ? 0 : 1;
