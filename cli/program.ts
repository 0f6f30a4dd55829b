import { Command, CommanderError } from "commander";
import { DiskFullError, lastDiskFull, UnsafeDirectoryError } from "../lib/files.js";
import { MachineVersionError, ParamsMismatchError } from "../machines/engine.js";
import { DataDirInvalidError, DataDirLockedError } from "../sim/store.js";
import { StateError, StateLockedError } from "../state/index.js";
import { ParamsError } from "../steps/params.js";
import { registerDeploy } from "./deploy.js";
import { CliError, EXIT } from "./exit-codes.js";
import { registerExport } from "./export.js";
import { registerGrade, registerReport } from "./grade.js";
import { type GlobalOptions, registerRun } from "./run.js";
import { registerSfn } from "./sfn.js";
import { registerSim } from "./sim.js";
import { TargetError } from "./target.js";
import { registerTeardown } from "./teardown.js";
import { registerUnlock } from "./unlock.js";

/**
 * The kmslab command line: parses argv, runs a command, and maps what the library throws to one
 * clear line on stderr and an exit code (cli/exit-codes.ts). The only place that exits.
 */
export function buildProgram(): Command {
  const program = new Command("kmslab")
    .description("Run, check and clean up the hands-on AWS KMS security lab")
    .version("0.1.0")
    .option(
      "--sim-data <dir>",
      "data directory of the simulated account (env KMSLAB_SIM_DATA; default .kmslab/sim)",
    )
    .option("--state <path>", "the state file (default .kmslab/state.json)")
    .option("--target <target>", "sim (the embedded simulated account, default) or aws")
    .option(
      "--endpoint-url <url>",
      "an AWS-compatible endpoint to run against (env AWS_ENDPOINT_URL with --target aws)",
    )
    .option("--profile <name>", "an AWS CLI profile (implies --target aws)")
    .option(
      "--region <region>",
      "the AWS Region (else AWS_REGION, the profile's, us-east-1 on the simulator)",
    )
    .option("--json", "print machine-readable JSON")
    .option("--yes", "do not ask for confirmation")
    .option("--verbose", "say more about each step")
    .showHelpAfterError("(run kmslab --help for usage)")
    .exitOverride();
  const globals = () => program.opts<GlobalOptions>();
  registerRun(program, globals);
  registerSim(program, globals);
  registerExport(program, globals);
  registerTeardown(program, globals);
  registerGrade(program, globals);
  registerReport(program, globals);
  registerDeploy(program, globals);
  registerSfn(program, globals);
  registerUnlock(program, globals);
  for (const cmd of program.commands) {
    cmd.exitOverride();
    for (const sub of cmd.commands) sub.exitOverride();
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    // Commands that finish with an outcome other than success (a failed stage) set it here.
    return diskFullOr(typeof process.exitCode === "number" ? process.exitCode : EXIT.ok);
  } catch (err) {
    return diskFullOr(report(err));
  }
}

/**
 * A command that failed after a write could not complete failed for that, whatever error reached
 * it (the simulated account answering 500 for calls it could not save looks like a failed stage or
 * an unreachable endpoint): it is said, and the exit code is 6.
 */
function diskFullOr(code: number): number {
  const full = lastDiskFull();
  if (!full || code === EXIT.ok || code === EXIT.interrupted || code === EXIT.diskFull) return code;
  process.stderr.write(`kmslab: ${full.message}\n`);
  return EXIT.diskFull;
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version exit 0; commander has already printed the usage problem.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (err instanceof CliError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof StateLockedError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return EXIT.locked;
  }
  if (err instanceof StateError || err instanceof ParamsMismatchError || err instanceof MachineVersionError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return EXIT.invalidData;
  }
  if (err instanceof TargetError || err instanceof ParamsError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return EXIT.usage;
  }
  if (err instanceof DataDirLockedError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return EXIT.locked;
  }
  if (err instanceof DataDirInvalidError || err instanceof UnsafeDirectoryError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return EXIT.invalidData;
  }
  if (err instanceof DiskFullError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return EXIT.diskFull;
  }
  process.stderr.write(`kmslab: ${(err as Error).message ?? String(err)}\n`);
  if (process.env.KMSLAB_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
  return EXIT.failure;
}
