import { STSClient } from "@aws-sdk/client-sts";
import { AwsError, type ClientBase, type Clients } from "../machines/aws.js";
import { Account, type AccountOptions, PROFILES } from "../sim/account.js";
import { Simulator } from "../sim/simulator.js";
import { DataDir, DataDirLockedError } from "../sim/store.js";
import { assertTarget, type StateFile } from "../state/index.js";
import { CliError, EXIT } from "./exit-codes.js";
import { faultsFrom, simDataDir } from "./sim.js";

/**
 * Where the lab runs: the embedded simulated account (the default), an AWS-compatible endpoint
 * (`--endpoint-url`), or real AWS (`--target aws`, `--profile`). AWS's own environment variables
 * (AWS_PROFILE, AWS_REGION, AWS_ACCESS_KEY_ID...) apply to the endpoint and AWS targets; the
 * simulator never needs them. A simulator data directory that `kmslab sim serve` holds is reached
 * through that server, so a lab and an AWS CLI session can share one account.
 */
export type TargetKind = "sim" | "endpoint" | "aws";

export interface TargetOptions {
  target?: string;
  endpointUrl?: string;
  profile?: string;
  region?: string;
  simData?: string;
}

export interface Target {
  kind: TargetKind;
  region: string;
  endpoint?: string;
  base: ClientBase;
  /** What the progress display and the state file say about it. */
  description: string;
  simulator?: Simulator;
  close(): void;
}

export class TargetError extends Error {}

export async function openTarget(options: TargetOptions, command: string): Promise<Target> {
  const kind = targetKind(options);
  if (kind === "sim") return openSim(options, command);
  const region = options.region ?? (await regionFromChain(options.profile));
  const base: ClientBase = { region };
  if (options.profile) base.profile = options.profile;
  const endpoint = options.endpointUrl ?? (kind === "endpoint" ? process.env.AWS_ENDPOINT_URL : undefined);
  if (endpoint) base.endpoint = endpoint;
  return {
    kind,
    region,
    ...(endpoint ? { endpoint } : {}),
    base,
    description: endpoint
      ? `endpoint ${endpoint}`
      : `AWS${options.profile ? ` (profile ${options.profile})` : ""}`,
    close() {},
  };
}

/**
 * The embedded simulator's account, read from its data directory without opening it, and the
 * Region a command would use there. Opening an account moves it on (its clock, CloudTrail's
 * deliveries), so what can refuse a command is checked against this first: a refused command
 * leaves the data directory as it was. Undefined for an endpoint or AWS, whose credentials decide.
 */
export interface KnownSim {
  dir: string;
  /** Undefined while the directory holds no account yet (opening it would make one). */
  accountId?: string;
  region: string;
}

export function knownSim(options: TargetOptions): KnownSim | undefined {
  if (targetKind(options) !== "sim") return undefined;
  const dir = simDataDir(options.simData);
  // An unreadable account file is DataDirInvalidError (exit 5), as opening it would be.
  const saved = new DataDir(dir).load();
  return { dir, region: options.region ?? "us-east-1", ...(saved ? { accountId: saved.accountId } : {}) };
}

/** Refuses (exit 5) a state file that is not of the simulated account about to be opened. */
export function assertSimState(
  state: StateFile,
  sim: KnownSim,
  path: string,
): { accountId: string; region: string } {
  if (sim.accountId === undefined)
    throw new CliError(
      `the state file ${path} belongs to account ${state.target.accountId} in ${state.target.region}, but the ` +
        `simulator data directory ${sim.dir} holds no account yet. kmslab only continues a lab where it ` +
        `started: give the data directory it ran on (--sim-data DIR), or start a separate lab with --state PATH.`,
      EXIT.invalidData,
    );
  const target = { accountId: sim.accountId, region: sim.region };
  assertTarget(state, target, path);
  return target;
}

export function targetKind(options: TargetOptions): TargetKind {
  const t = options.target;
  if (t !== undefined && t !== "sim" && t !== "aws")
    throw new TargetError(`--target must be "sim" or "aws", not "${t}"`);
  if (options.endpointUrl) {
    if (t === "sim") throw new TargetError("--endpoint-url and --target sim contradict each other");
    return "endpoint";
  }
  if (t === "aws" || options.profile) return "aws";
  return "sim";
}

/** The Region the SDK's default chain finds: AWS_REGION, AWS_DEFAULT_REGION, the profile's config. */
async function regionFromChain(profile: string | undefined): Promise<string> {
  const client = new STSClient(profile ? { profile } : {});
  try {
    return await client.config.region();
  } catch {
    throw new TargetError(
      "no AWS Region is set: pass --region, set AWS_REGION, or give the profile a region in ~/.aws/config",
    );
  } finally {
    client.destroy();
  }
}

/**
 * The embedded account's timing: `standard` unless KMSLAB_SIM_PROFILE names another profile
 * (instant, realistic) or gives one as JSON (`{"trailLookupDelayMs":4000}`, over `standard`).
 */
function simProfile(): AccountOptions {
  const text = process.env.KMSLAB_SIM_PROFILE;
  if (!text) return PROFILES.standard!;
  if (Object.hasOwn(PROFILES, text)) return PROFILES[text]!;
  try {
    const custom = JSON.parse(text) as Partial<AccountOptions>;
    const merged = { ...PROFILES.standard!, ...custom };
    if (Object.values(merged).every((v) => typeof v === "number" && v >= 0)) return merged;
  } catch {
    // reported below
  }
  throw new TargetError(
    `KMSLAB_SIM_PROFILE must be ${Object.keys(PROFILES).join(", ")} or a JSON object of delays in milliseconds`,
  );
}

function openSim(options: TargetOptions, command: string): Target {
  const dir = simDataDir(options.simData);
  const region = options.region ?? "us-east-1";
  try {
    // KMSLAB_SIM_FAULTS / KMSLAB_SIM_SEED inject faults into the embedded account, as for sim serve.
    const faults = faultsFrom(undefined, undefined);
    const simulator = Simulator.open(dir, { command, profile: simProfile(), ...(faults ? { faults } : {}) });
    return {
      kind: "sim",
      region,
      base: { ...simulator.clientConfig({ region }), region },
      description: `the embedded simulator (${dir})`,
      simulator,
      close: () => simulator.close(),
    };
  } catch (err) {
    // `kmslab sim serve` holds the account: use it over HTTP, with the account's own credentials.
    const endpoint = err instanceof DataDirLockedError ? err.holder.endpoint : undefined;
    if (!endpoint) throw err;
    const store = new DataDir(dir);
    const state = store.load();
    if (!state) throw err;
    const credentials = new Account(state).iam.adminCredentials();
    return {
      kind: "sim",
      region,
      endpoint,
      base: { region, endpoint, credentials },
      description: `the simulator served at ${endpoint} (${dir})`,
      close() {},
    };
  }
}

/** The account the target's credentials reach (STS GetCallerIdentity), or a credentials error. */
export async function callerAccount(clients: Clients, target: Target): Promise<string> {
  try {
    return (await clients.call("sts", "GetCallerIdentity", {})).Account as string;
  } catch (err) {
    if (err instanceof AwsError)
      throw new CliError(
        `cannot authenticate to ${target.description}: ${err.code}: ${err.message}. Check your credentials (AWS_PROFILE, --profile, aws configure).`,
        EXIT.credentials,
      );
    throw new CliError(`cannot reach ${target.description}: ${(err as Error).message}`, EXIT.credentials);
  }
}
