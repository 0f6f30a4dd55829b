import { resolve } from "node:path";
import type { Command } from "commander";
import { Account, PROFILES } from "../sim/account.js";
import { FaultInjector, FaultSpecError } from "../sim/faults.js";
import { serve } from "../sim/server.js";
import { Simulator } from "../sim/simulator.js";
import { DataDir } from "../sim/store.js";
import { CliError, EXIT } from "./exit-codes.js";

export const DEFAULT_SIM_DATA = ".kmslab/sim";
const DEFAULT_REGION = "us-east-1";

/** `--sim-data`, else `KMSLAB_SIM_DATA`, else `.kmslab/sim` under the working directory. */
export function simDataDir(flag: string | undefined): string {
  return resolve(flag ?? process.env.KMSLAB_SIM_DATA ?? DEFAULT_SIM_DATA);
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535)
    throw new CliError(`--port must be a number from 0 to 65535, not "${value}"`);
  return n;
}

export function faultsFrom(
  spec: string | undefined,
  seedText: string | undefined,
): FaultInjector | undefined {
  const text = spec ?? process.env.KMSLAB_SIM_FAULTS;
  const seedRaw = seedText ?? process.env.KMSLAB_SIM_SEED ?? "1";
  const seed = Number(seedRaw);
  if (!Number.isInteger(seed)) throw new CliError(`the fault seed must be an integer, not "${seedRaw}"`);
  if (!text) return undefined;
  try {
    return FaultInjector.parse(text, seed);
  } catch (err) {
    if (err instanceof FaultSpecError) throw new CliError(`--faults: ${err.message}`);
    throw err;
  }
}

/** `export NAME=value` lines for a shell: what an AWS CLI or SDK needs to reach the account. */
function clientEnv(
  creds: { accessKeyId: string; secretAccessKey: string },
  endpoint: string | undefined,
): string {
  const vars: Record<string, string> = {
    ...(endpoint ? { AWS_ENDPOINT_URL: endpoint } : {}),
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_REGION: DEFAULT_REGION,
    AWS_DEFAULT_REGION: DEFAULT_REGION,
  };
  return Object.entries(vars)
    .map(([k, v]) => `export ${k}=${v}`)
    .join("\n")
    .concat("\n");
}

export function registerSim(program: Command, globals: () => { simData?: string }): void {
  const sim = program
    .command("sim")
    .description("the embedded simulated AWS account (offline, no credentials needed)");

  sim
    .command("serve")
    .description("serve the simulated account over HTTP, for the AWS CLI and any AWS SDK")
    .option("--port <port>", "TCP port (0 picks a free one)", "4566")
    .option("--host <host>", "address to listen on; loopback only unless you say otherwise", "127.0.0.1")
    .option(
      "--faults <spec>",
      'inject faults, e.g. "kms.Encrypt:throttle=0.2,5xx=0.05,latency=20;iam:throttle=0.1" (env KMSLAB_SIM_FAULTS)',
    )
    .option("--fault-seed <n>", "seed for fault injection (env KMSLAB_SIM_SEED)")
    .option(
      "--sim-profile <name>",
      "standard (CloudTrail about a second behind), instant (no delays) or realistic (AWS-like minutes, IAM propagation)",
      "standard",
    )
    .action(
      async (opts: {
        port: string;
        host: string;
        faults?: string;
        faultSeed?: string;
        simProfile: string;
      }) => {
        const port = parsePort(opts.port);
        if (!Object.hasOwn(PROFILES, opts.simProfile))
          throw new CliError(
            `--sim-profile must be one of ${Object.keys(PROFILES).join(", ")}, not "${opts.simProfile}"`,
          );
        const faults = faultsFrom(opts.faults, opts.faultSeed);
        const dir = simDataDir(globals().simData);
        const simulator = Simulator.open(dir, {
          command: "kmslab sim serve",
          profile: opts.simProfile,
          faults,
        });
        // Signals are caught from here on, so a Ctrl-C at any moment closes the server and frees the lock.
        const signalled = new Promise<NodeJS.Signals>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
        });
        let running: Awaited<ReturnType<typeof serve>>;
        try {
          running = await serve(simulator, { port, host: opts.host });
        } catch (err) {
          simulator.close();
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "EADDRINUSE")
            throw new CliError(
              `port ${port} on ${opts.host} is already in use; pick another with --port`,
              EXIT.failure,
            );
          throw err;
        }
        const loopback = /^(127\.|::1$|localhost$)/.test(opts.host);
        const endpoint = loopback ? running.url : `http://127.0.0.1:${running.port}`;
        simulator.announceEndpoint(endpoint);
        const creds = simulator.credentials();
        process.stderr.write(
          `kmslab simulator: account ${simulator.account.accountId}, data in ${dir}\n` +
            (loopback ? "" : `warning: listening on ${opts.host}, reachable from other machines\n`) +
            (faults ? `fault injection on (seed ${faults.seed})\n` : "") +
            "point a client at it with:\n",
        );
        process.stdout.write(clientEnv(creds, endpoint));
        process.stderr.write("listening; Ctrl-C stops\n");
        await signalled;
        await running.close();
        simulator.close();
        process.stderr.write("kmslab simulator stopped\n");
        // Stopped while it could not save (a full disk): the calls it undid were answered with errors.
        if (simulator.saveFailure) throw simulator.saveFailure;
      },
    );

  sim
    .command("credentials")
    .description("print the simulated account's admin credentials")
    .option("--format <format>", "env (export lines) or json", "env")
    .action((opts: { format: string }) => {
      if (opts.format !== "env" && opts.format !== "json")
        throw new CliError(`--format must be "env" or "json", not "${opts.format}"`);
      const dir = simDataDir(globals().simData);
      const store = new DataDir(dir);
      let state = store.load();
      if (!state) {
        // First use: create the account (which needs the writer's lock, briefly).
        Simulator.open(dir, { command: "kmslab sim credentials" }).close();
        state = store.load()!;
      }
      const account = new Account(state);
      const creds = account.iam.adminCredentials();
      // While `sim serve` holds the directory, its endpoint comes with the credentials.
      const endpoint = store.holder()?.endpoint;
      if (opts.format === "json") {
        const out = {
          AccountId: account.accountId,
          UserArn: `arn:aws:iam::${account.accountId}:user/${account.adminUserName}`,
          AccessKeyId: creds.accessKeyId,
          SecretAccessKey: creds.secretAccessKey,
          Region: DEFAULT_REGION,
          ...(endpoint ? { EndpointUrl: endpoint } : {}),
        };
        process.stdout.write(JSON.stringify(out, null, 2) + "\n");
      } else {
        process.stdout.write(clientEnv(creds, endpoint));
      }
    });
}
