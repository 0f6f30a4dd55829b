import { Command, CommanderError } from "commander";
import { DataDirInvalidError, DataDirLockedError } from "../sim/store.js";
import { CliError, EXIT } from "./exit-codes.js";
import { registerSim } from "./sim.js";

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
    .showHelpAfterError("(run kmslab --help for usage)")
    .exitOverride();
  registerSim(program, () => program.opts<{ simData?: string }>());
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
    return EXIT.ok;
  } catch (err) {
    return report(err);
  }
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
  if (err instanceof DataDirLockedError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return EXIT.locked;
  }
  if (err instanceof DataDirInvalidError) {
    process.stderr.write(`kmslab: ${err.message}\n`);
    return EXIT.invalidData;
  }
  process.stderr.write(`kmslab: ${(err as Error).message ?? String(err)}\n`);
  if (process.env.KMSLAB_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
  return EXIT.failure;
}
