import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
// The state module is not in the bundle (dist/ holds the CLI and the simulator): its sources, via tsx.
import { FileStateStore, MemoryStateStore, type StateFile, type StateStore } from "../state/index.js";
import { sampleState } from "../test/helpers/state.js";

/**
 * What one checkpoint costs the engine: FileStateStore.write() of a state that changed, for a state
 * of about 6 KiB (a run in its first stages) and one of about 300 KiB (a long wait's evidence). Each
 * write checks for secrets, validates, serializes, writes a temp file, fsyncs it, links the backup,
 * renames and fsyncs the directory. MemoryStateStore shows the part that is not file I/O.
 * BENCH_STATE_DIR chooses the directory (default: the system's temp directory; the real state lives
 * in `.kmslab/` of the working directory, so put it on the same disk to measure that disk).
 */
const WRITES = Number(process.env.BENCH_CHECKPOINTS ?? 400);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timeWrites(store: StateStore, initial: StateFile, writes: number): Promise<number[]> {
  let state = await store.write(initial);
  const times: number[] = [];
  for (let i = 0; i < writes + 20; i++) {
    // A realistic change: one more journal entry and a touched stage record.
    state.journal.push({
      seq: state.journal.length + 1,
      stageId: "trail-to-bucket",
      effectId: `poll-${i}`,
      service: "cloudtrail",
      operation: "LookupEvents",
      phase: i % 2 ? "done" : "intent",
      at: new Date().toISOString(),
    });
    state.stages["trail-to-bucket"]!.attempts = i;
    const start = performance.now();
    state = await store.write(state);
    if (i >= 20) times.push(performance.now() - start); // the first 20 warm up
    state.journal.pop(); // keep the size steady
  }
  return times.sort((a, b) => a - b);
}

export async function run(): Promise<boolean> {
  const root = mkdtempSync(join(process.env.BENCH_STATE_DIR ?? tmpdir(), "kmslab-bench-state-"));
  try {
    console.log(`\ncheckpoint write (${WRITES} writes each, in ${root})`);
    console.log("  state     on disk   file p50   file p99   memory p50   memory p99");
    for (const [label, events] of [
      ["~6 KiB", 0],
      ["~300 KiB", 400],
    ] as const) {
      const path = join(root, `${events}`, "state.json");
      const file = new FileStateStore(path);
      await file.lock("bench");
      const fileTimes = await timeWrites(file, sampleState(events), WRITES);
      const size = statSync(path).size;
      await file.unlock();
      const memTimes = await timeWrites(new MemoryStateStore(), sampleState(events), WRITES);
      const ms = (x: number) => `${x.toFixed(2)} ms`.padStart(9);
      console.log(
        `  ${label.padEnd(9)} ${`${(size / 1024).toFixed(1)} KiB`.padStart(9)} ${ms(percentile(fileTimes, 50))}` +
          `  ${ms(percentile(fileTimes, 99))}    ${ms(percentile(memTimes, 50))}    ${ms(percentile(memTimes, 99))}`,
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return true;
}

// Run on its own: `node --import tsx bench/checkpoint.ts`.
if (import.meta.url === `file://${process.argv[1]}`) await run();
