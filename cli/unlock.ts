import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { describeHolder, holderStatus, type LockInfo, lockIdOf } from "../lib/lock.js";
import { DataDir } from "../sim/store.js";
import { DEFAULT_STATE_PATH, FileStateStore } from "../state/index.js";
import { CliError, EXIT } from "./exit-codes.js";
import type { GlobalOptions } from "./run.js";
import { simDataDir } from "./sim.js";

/**
 * `kmslab unlock <lock-id>`: removes a lock whose holder kmslab cannot check (it ran on another
 * machine, or in another container of this one), as `terraform force-unlock LOCK_ID` does. The id
 * to type is the one a refused command printed; a wrong one is refused (exit 2), a holder known to
 * be running is not unlocked (exit 3), and a terminal asks for "yes" (`--yes` skips it; without a
 * terminal, `--yes` is required). Looks at the state file's lock (`--state`) and the simulator
 * data directory's (`--sim-data`).
 */
export function registerUnlock(program: Command, globals: () => GlobalOptions): void {
  program
    .command("unlock")
    .description("remove the lock of a process that is no longer running (the id its refusal printed)")
    .argument("<lock-id>", "the lock's id, as the refused command printed it")
    .action(async (id: string) => {
      process.exitCode = await unlockCommand(globals(), id);
    });
}

interface Lockable {
  what: string;
  read(): LockInfo | undefined;
  forceUnlock(id: string): boolean;
}

async function unlockCommand(g: GlobalOptions, id: string): Promise<number> {
  const state = new FileStateStore(g.state ?? DEFAULT_STATE_PATH);
  const data = new DataDir(simDataDir(g.simData));
  const locks: Lockable[] = [
    {
      what: `the state file ${state.path}`,
      read: () => state.readLock(),
      forceUnlock: (i) => state.forceUnlock(i),
    },
    {
      what: `the simulator data directory ${data.dir}`,
      read: () => data.readLock(),
      forceUnlock: (i) => data.forceUnlock(i),
    },
  ];
  const held = locks.flatMap((l) => {
    const lock = l.read();
    return lock ? [{ ...l, lock }] : [];
  });
  const target = held.find((l) => lockIdOf(l.lock) === id);
  if (!target) {
    if (held.length === 0)
      throw new CliError(
        `nothing is locked: neither ${locks.map((l) => l.what).join(" nor ")} has a lock (--state and --sim-data choose others)`,
        EXIT.failure,
      );
    throw new CliError(
      `no lock has the id ${id}: ${held.map((l) => `${l.what} is locked with id ${lockIdOf(l.lock)}`).join("; ")}. ` +
        `Type the id the refused command printed.`,
      EXIT.usage,
    );
  }
  const { holder } = describeHolder(target.lock, "");
  if (holderStatus(target.lock) === "alive")
    throw new CliError(
      `${target.what} is locked by ${holder}, which is running: stop it (kill ${target.lock.pid}) rather than remove its lock.`,
      EXIT.locked,
    );
  if (!g.yes) {
    if (!(process.stdin.isTTY && process.stderr.isTTY))
      throw new CliError(
        `removing the lock of ${target.what} (held by ${holder}) needs --yes when there is no terminal to confirm it`,
        EXIT.usage,
      );
    process.stderr.write(
      `${target.what} is locked by ${holder}.\n` +
        `Removing the lock while that process still runs lets two writers change the same files.\n`,
    );
    const answer = await ask(`Remove the lock ${id}? Only "yes" will be accepted: `);
    if (answer !== "yes") {
      process.stderr.write("kmslab: the lock was left in place\n");
      return EXIT.failure;
    }
  }
  if (!target.forceUnlock(id))
    throw new CliError(`the lock of ${target.what} changed meanwhile; it was left in place`, EXIT.locked);
  if (g.json) process.stdout.write(`${JSON.stringify({ unlocked: id, lock: target.what }, null, 2)}\n`);
  else process.stderr.write(`kmslab: removed the lock ${id} of ${target.what}\n`);
  return EXIT.ok;
}

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}
