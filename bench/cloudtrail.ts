import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CloudTrailClient, LookupEventsCommand } from "@aws-sdk/client-cloudtrail";
import { CreateKeyCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import type * as SimLibrary from "../sim/index.js";

// The built bundle, as users run it (`npm run bench` builds it first); KMSLAB_BENCH_DIST names
// another build (a bundle of work in progress, without rebuilding the shared dist/).
const bundle = process.env.KMSLAB_BENCH_DIST
  ? `${process.env.KMSLAB_BENCH_DIST}/index.js`
  : "../dist/index.js";
const { Simulator } = (await import(bundle)) as typeof SimLibrary;

/**
 * CloudTrail's event history at scale: 100,000 recorded events (KMS Encrypt calls: one made through
 * the SDK, observed, then replayed into the account's call bus with fresh request ids and each of
 * 20 keys — what the recorder sees for every call), then LookupEvents through the real client — by EventName, by ResourceName (a key's
 * ARN, matching a few events among them), and unfiltered first pages — p50/p99 per lookup, and
 * the memory the history takes (heap and RSS growth while recording). The account's clock is moved
 * a second between lookups, so CloudTrail's 2 requests/s limit does not throttle the benchmark.
 * Then the same for a persistent account: each event appended as a JSON line (its record built at
 * once), the history's size on disk, and the time and heap to open the account again (load + index).
 */
const EVENTS = Number(process.env.BENCH_TRAIL_EVENTS ?? 100_000);
const LOOKUPS = Number(process.env.BENCH_TRAIL_LOOKUPS ?? 200);

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

export async function run(): Promise<boolean> {
  let offset = 0;
  const sim = Simulator.inMemory({ profile: "instant", clock: () => new Date(Date.now() + offset) });
  const kms = new KMSClient(sim.clientConfig());
  const trail = new CloudTrailClient(sim.clientConfig());
  const keys: { KeyId?: string; Arn?: string }[] = [];
  for (let i = 0; i < 20; i++) keys.push((await kms.send(new CreateKeyCommand({}))).KeyMetadata!);
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  const seen: Parameters<Parameters<typeof sim.observe>[0]>[0][] = [];
  const stop = sim.observe((r) => seen.push(r));
  await kms.send(new EncryptCommand({ KeyId: keys[0]!.KeyId, Plaintext: Buffer.from("x") }));
  stop();
  const sample = seen[0]!;
  const recordStart = performance.now();
  for (let i = sim.account.cloudtrail.events.events.length; i < EVENTS; i++) {
    const key = keys[i % keys.length]!;
    sim.account.emit({
      ...sample,
      input: { ...sample.input, KeyId: key.KeyId },
      output: { ...(sample.output as object), KeyId: key.Arn },
      ctx: { ...sample.ctx, requestId: `bench-${i}`, now: new Date(Date.now() + offset) },
    });
  }
  const recordMs = performance.now() - recordStart;
  global.gc?.();
  const heapMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  const rssMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
  const recorded = sim.account.cloudtrail.events.events.length;

  const cases: [string, () => LookupEventsCommand][] = [
    [
      "EventName=Encrypt (50 of ~100,000)",
      () =>
        new LookupEventsCommand({
          LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "Encrypt" }],
        }),
    ],
    [
      "ResourceName=<key ARN>",
      () =>
        new LookupEventsCommand({
          LookupAttributes: [{ AttributeKey: "ResourceName", AttributeValue: keys[3]!.Arn! }],
          MaxResults: 50,
        }),
    ],
    [
      "EventName=CreateKey (20 events)",
      () =>
        new LookupEventsCommand({
          LookupAttributes: [{ AttributeKey: "EventName", AttributeValue: "CreateKey" }],
        }),
    ],
    ["no filter, first page", () => new LookupEventsCommand({ MaxResults: 50 })],
  ];
  console.log(
    `\nCloudTrail LookupEvents with ${recorded.toLocaleString("en")} recorded events (node ${process.version})`,
  );
  console.log(
    `  recording: ${((recordMs * 1000) / EVENTS).toFixed(1)} µs per event (summarised and indexed; the record is built when read)`,
  );
  console.log(
    `  memory: heap +${heapMb.toFixed(0)} MiB, RSS +${rssMb.toFixed(0)} MiB (${((heapMb * 2 ** 20) / recorded).toFixed(0)} bytes of heap per event)`,
  );
  console.log("  lookup                                   p50 ms   p99 ms");
  for (const [name, make] of cases) {
    const times: number[] = [];
    for (let i = 0; i < LOOKUPS; i++) {
      offset += 1000;
      const start = performance.now();
      const out = await trail.send(make());
      times.push(performance.now() - start);
      if ((out.Events?.length ?? 0) === 0) throw new Error(`${name}: nothing found`);
    }
    console.log(
      `  ${name.padEnd(40)} ${pct(times, 50).toFixed(2).padStart(6)}   ${pct(times, 99).toFixed(2).padStart(6)}`,
    );
  }
  return persistent(sample, keys);
}

type CallRecord = Parameters<Parameters<SimLibrary.Simulator["observe"]>[0]>[0];

/** The history of a persistent account: append cost, size on disk, and reopening it. */
async function persistent(sample: CallRecord, keys: { KeyId?: string; Arn?: string }[]): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), "kmslab-bench-trail-"));
  try {
    const first = Simulator.open(dir, { profile: "instant" });
    const start = performance.now();
    for (let i = first.account.cloudtrail.events.events.length; i < EVENTS; i++) {
      const key = keys[i % keys.length]!;
      first.account.emit({
        ...sample,
        input: { ...sample.input, KeyId: key.KeyId },
        output: { ...(sample.output as object), KeyId: key.Arn },
        ctx: { ...sample.ctx, requestId: `bench-${i}`, now: new Date() },
      });
    }
    const appendMs = performance.now() - start;
    first.close();
    const history = join(dir, "cloudtrail");
    const files = readdirSync(history);
    const bytes = files.reduce((n, f) => n + statSync(join(history, f)).size, 0);
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const openStart = performance.now();
    const second = Simulator.open(dir, { profile: "instant" });
    const openMs = performance.now() - openStart;
    global.gc?.();
    const heapMb = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    const loaded = second.account.cloudtrail.events.events.length;
    second.close();
    console.log(`  persistent account (${loaded.toLocaleString("en")} events in ${files.length} files):`);
    console.log(
      `    append: ${((appendMs * 1000) / EVENTS).toFixed(1)} µs per event; on disk ${(bytes / 2 ** 20).toFixed(0)} MiB (${(bytes / loaded).toFixed(0)} bytes per event)`,
    );
    console.log(`    reopen: ${openMs.toFixed(0)} ms to load and index; heap +${heapMb.toFixed(0)} MiB`);
    return loaded === EVENTS;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
