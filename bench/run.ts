/**
 * `npm run bench`: runs every benchmark under bench/ in turn. Benchmarks print figures and ratios
 * measured side by side in one run; they are never run as tests.
 */
const benches = [
  "./sdk-overhead.ts",
  "./checkpoint.ts",
  "./cloudtrail.ts",
  "./lab.ts",
  "./asl.ts",
  "./teardown.ts",
  "./grade.ts",
  "./sfn-class.ts",
];
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
let failed = false;
for (const bench of benches) {
  const mod = (await import(bench)) as { run: () => Promise<boolean> };
  if (!(await mod.run())) failed = true;
}
process.exitCode = failed ? 1 : 0;
