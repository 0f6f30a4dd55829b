import { performance } from "node:perf_hooks";
import { aslValidatorProblems, structuralProblems } from "../asl/check.js";
import { exportLab, exportTeardown } from "../asl/export.js";
import { execute, virtualClock } from "../asl/interpreter.js";
import { median } from "./stats.js";

/**
 * The Step Functions export: generating the lab's definition, checking it (asl-validator against
 * kmslab's structural check, which reads the SDK's operation schemas), and the ASL interpreter's cost
 * per state (the teardown walked with a canned Task invoker). Medians of ROUNDS runs.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

async function timeMs(fn: () => unknown | Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

export async function run(): Promise<boolean> {
  const lab = await exportLab();
  const teardown = await exportTeardown();
  const size = JSON.stringify(lab.definition).length;
  const generate = await timeMs(() => exportLab());
  const validator = await timeMs(() => aslValidatorProblems(lab.definition));
  const validatorTeardown = await timeMs(() => aslValidatorProblems(teardown.definition));
  const structural = await timeMs(() => structuralProblems(lab.definition));
  const copy = await timeMs(() => structuredClone(lab.definition));
  let states = 0;
  const walk = await timeMs(async () => {
    const r = await execute(
      teardown.definition,
      {},
      {
        clock: virtualClock(),
        invoke: async (req) =>
          req.resource.endsWith(":describeKey") ? { KeyMetadata: { Arn: "arn:k" } } : {},
      },
    );
    states = r.transitions;
  });
  const f = (ms: number) => `${ms.toFixed(1)} ms`;
  console.log("\nStep Functions export (asl/)");
  console.log(`  lab definition: ${(size / 1024).toFixed(0)} KiB compact JSON, generated in ${f(generate)}`);
  console.log(
    `  asl-validator: lab ${f(validator)}, teardown ${f(validatorTeardown)} (plus ${f(copy)} for the copy it needs)`,
  );
  console.log(`  structural check (SDK schemas, reachability, JSONata): lab ${f(structural)}`);
  console.log(`  ratio asl-validator / structural check: ${(validator / structural).toFixed(1)}x`);
  console.log(
    `  interpreter: teardown walk ${f(walk)} for ${states} states, ${((walk * 1000) / states).toFixed(0)} µs per state`,
  );
  return true;
}
