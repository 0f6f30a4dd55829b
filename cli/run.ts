import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { Clients } from "../machines/aws.js";
import { assertResumable, type LabResult, runLab } from "../machines/engine.js";
import type { StageStatus } from "../machines/lab.js";
import { DEFAULT_STATE_PATH, FileStateStore, type StageRecord } from "../state/index.js";
import { type LabParamsInput, parseParams, resolveParams } from "../steps/params.js";
import { STAGES } from "../steps/registry.js";
import { CliError, EXIT } from "./exit-codes.js";
import { progressFor, summary } from "./progress.js";
import { assertSimState, callerAccount, knownSim, openTarget, type TargetOptions } from "./target.js";

/**
 * `kmslab run` (alias `resume`): run the lab, or continue the run the state file records;
 * `kmslab status`: each stage's state from the state file, without touching the account.
 */
export interface GlobalOptions extends TargetOptions {
  state?: string;
  json?: boolean;
  yes?: boolean;
  verbose?: boolean;
}

/** Flags that set lab parameters, as AWS CLI users would spell them. */
export const PARAM_FLAGS: [flag: string, key: keyof LabParamsInput, help: string, kind?: "int"][] = [
  ["--key-alias <alias>", "keyAlias", "the key's alias (default alias/myFirstKey)"],
  ["--key-user-role <name>", "keyUserRole", "the key user's IAM role (default kmslab-key-user)"],
  ["--trail-name <name>", "trailName", "the trail (default kmslab-trail)"],
  ["--log-bucket <bucket>", "logBucket", "CloudTrail's bucket (default kmslab-trail-<account>-<region>)"],
  ["--data-bucket <bucket>", "dataBucket", "the object's bucket (default kmslab-data-<account>-<region>)"],
  ["--object-key <key>", "objectKey", "the object's key (default reports/secret-report.txt)"],
  ["--suffix <suffix>", "suffix", "appended to every name, e.g. -alice"],
  ["--trail-wait <seconds>", "trailWaitSeconds", "how long to wait for CloudTrail", "int"],
  ["--propagation-wait <seconds>", "propagationWaitSeconds", "how long policy changes may take", "int"],
  ["--poll-interval <seconds>", "pollSeconds", "seconds between CloudTrail polls", "int"],
];

/** On the simulator CloudTrail is seconds behind, not minutes: shorter waits, faster polls. */
const SIM_DEFAULTS: Partial<LabParamsInput> = {
  trailWaitSeconds: 120,
  propagationWaitSeconds: 30,
  pollSeconds: 1,
};

export function registerRun(program: Command, globals: () => GlobalOptions): void {
  const run = program
    .command("run")
    .alias("resume")
    .description("run the lab, or continue the run recorded in the state file")
    .option("--config <file>", "a JSON file of lab parameters (flags win over it)");
  for (const [flag, , help] of PARAM_FLAGS) run.option(flag, help);
  run.action(async (opts: Record<string, string | undefined>) => {
    const g = globals();
    process.exitCode = await runCommand(g, opts);
  });

  program
    .command("status")
    .description("show each stage's state from the state file")
    .action(async () => {
      const g = globals();
      const store = new FileStateStore(g.state ?? DEFAULT_STATE_PATH);
      const state = await store.read();
      if (!state)
        throw new CliError(
          `no state file at ${store.path}: nothing has run yet (kmslab run starts the lab)`,
          EXIT.failure,
        );
      const stages = Object.fromEntries(
        STAGES.map((s) => {
          const r: StageRecord | undefined = state.stages[s.id];
          const checks = (r?.evidence ?? []) as { points?: number }[];
          // A stage rolled back (its own failure, or a teardown) holds nothing now: no points.
          const undone = r?.status === "rolledBack" && !r.error;
          const points =
            checks.length > 0 && !undone ? checks.reduce((n, c) => n + (c.points ?? 0), 0) : undefined;
          return [
            s.id,
            {
              status: fromRecord(r),
              maxPoints: s.points,
              attempts: r?.attempts ?? 0,
              ...(points !== undefined ? { points } : {}),
              ...(r?.error
                ? { reason: r.error.message }
                : undone
                  ? { reason: "rolled back: what it made was removed" }
                  : {}),
            },
          ];
        }),
      );
      const holder = store.holder();
      if (g.json) {
        process.stdout.write(
          `${JSON.stringify({ runId: state.runId, target: state.target, running: holder ?? null, stages }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(
        `target: ${state.target.kind} ${state.target.endpoint ?? ""} account ${state.target.accountId}, ${state.target.region}\n` +
          (holder
            ? `in progress: process ${holder.pid} (${holder.command}) since ${holder.startedAt}\n`
            : ""),
      );
      process.stdout.write(summary({ runId: state.runId, stages: stages as unknown as LabResult["stages"] }));
      const t = state.teardown;
      if (t?.endedAt)
        process.stdout.write(
          t.remaining && t.remaining.length > 0
            ? `teardown ${t.endedAt}: ${t.remaining.length} resource(s) remain (kmslab teardown --yes tries again)\n`
            : `torn down ${t.endedAt}: nothing the run made remains (kmslab run starts the lab again)\n`,
        );
    });
}

function fromRecord(record: StageRecord | undefined): StageStatus {
  if (record === undefined) return "waiting";
  switch (record.status) {
    case "pending":
      return "waiting";
    case "rolledBack":
      // A run's own rollback failed the stage; a teardown's leaves it to be run again.
      return record.error ? "failed" : "waiting";
    default:
      return record.status;
  }
}

function intFlag(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new CliError(`${flag} must be a whole number of seconds, not "${value}"`);
  return Number(value);
}

/** A `--config` file: a JSON object of lab parameters (checked by the parameters' schema later). */
export function readConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CliError(`cannot read the config file ${path}: ${(err as Error).message}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new CliError(`the config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (config === null || typeof config !== "object" || Array.isArray(config))
    throw new CliError(`the config file ${path} must hold a JSON object of lab parameters`);
  return config as Record<string, unknown>;
}

/** The parameters from the config file, then the flags. */
export function paramsFrom(opts: Record<string, string | undefined>, kind: string): LabParamsInput {
  const config = opts.config ? readConfig(opts.config) : {};
  const fromFlags: Record<string, unknown> = {};
  for (const [flag, key, , type] of PARAM_FLAGS) {
    const name = flag
      .split(" ")[0]!
      .slice(2)
      .replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
    const value = opts[name];
    if (value !== undefined) fromFlags[key] = type === "int" ? intFlag(flag.split(" ")[0]!, value) : value;
  }
  return { ...(kind === "sim" ? SIM_DEFAULTS : {}), ...config, ...fromFlags } as LabParamsInput;
}

async function runCommand(g: GlobalOptions, opts: Record<string, string | undefined>): Promise<number> {
  const store = new FileStateStore(g.state ?? DEFAULT_STATE_PATH);
  // Whatever can refuse the run is checked before the embedded account is opened (knownSim).
  const existing = await store.read();
  const sim = knownSim(g);
  if (sim) {
    const params = parseParams({ ...paramsFrom(opts, "sim"), region: sim.region });
    if (existing) {
      const target = assertSimState(existing, sim, store.path);
      assertResumable(existing, target, resolveParams(params, target.accountId));
    }
  }
  const target = await openTarget(g, "kmslab run");
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    // A ParamsError reaches main(), which says it and exits 2.
    const params = parseParams({ ...paramsFrom(opts, target.kind), region: target.region });
    const clients = new Clients(target.base);
    const account = await callerAccount(clients, target);
    const resolved = resolveParams(params, account);
    const progress = progressFor(process.stderr, g.json ? "json" : "auto", g.verbose === true);
    if (!g.json)
      process.stderr.write(
        `kmslab: running the lab on ${target.description}, account ${account}, ${target.region}\n`,
      );
    let result: LabResult;
    try {
      result = await runLab({
        store,
        clients,
        target: {
          kind: target.kind,
          region: target.region,
          accountId: account,
          ...(target.endpoint ? { endpoint: target.endpoint } : {}),
        },
        params: resolved,
        command: "kmslab run",
        progress: (e) => progress.event(e),
        signal: controller.signal,
      });
    } finally {
      progress.done();
      clients.destroy();
    }
    if (g.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else {
      process.stdout.write(summary(result));
      if (result.interrupted)
        process.stderr.write(`kmslab: stopped; run it again to continue (state in ${store.path})\n`);
    }
    if (result.interrupted) return EXIT.interrupted;
    return result.complete ? EXIT.ok : EXIT.failure;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    target.close();
  }
}
