import type { Command } from "commander";
import {
  anySuffix,
  DEFAULT_PREFIX,
  DefinitionRejected,
  type DeployResult,
  deploy,
  machineNames,
  PREFIX,
  roleName,
} from "../asl/deploy.js";
import { sfnClient } from "../asl/executions.js";
import { AwsError, Clients } from "../machines/aws.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { CliError, EXIT } from "./exit-codes.js";
import { defaultsFrom } from "./export.js";
import { type GlobalOptions, paramsFrom, readConfig } from "./run.js";
import { callerAccount, openTarget, type Target } from "./target.js";

/**
 * `kmslab deploy`: the lab and its teardown as two Step Functions state machines
 * (`<prefix>-lab`, `<prefix>-teardown`), checked by ValidateStateMachineDefinition first, created
 * or updated in place, with an execution role: `--role-arn`, or `<prefix>-states` made or brought
 * up to date (by default on the simulator; elsewhere only when asked with `--create-role`, as
 * creating IAM roles in someone's account is not a thing to do unasked).
 */
interface DeployFlags {
  roleArn?: string;
  createRole?: boolean;
  namePrefix?: string;
  config?: string;
}

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

export function registerDeploy(program: Command, globals: () => GlobalOptions): void {
  program
    .command("deploy")
    .description("deploy the lab and its teardown as AWS Step Functions state machines")
    .option("--role-arn <arn>", "the execution role the state machines use (else the role kmslab-states)")
    .option(
      "--create-role",
      "create or update the execution role <prefix>-states (the default on the simulator)",
    )
    .option(
      "--name-prefix <prefix>",
      `names: <prefix>-lab, <prefix>-teardown, <prefix>-states (default ${DEFAULT_PREFIX})`,
    )
    .option(
      "--config <file>",
      "a JSON file of lab parameters: the definitions' defaults and the names the role may act on",
    )
    .action(async (flags: DeployFlags) => {
      process.exitCode = await deployCommand(globals(), flags);
    });
}

/** `--name-prefix`, checked (state machine and role names both come from it). */
export function prefixOf(value: string | undefined): string {
  const prefix = value ?? DEFAULT_PREFIX;
  if (!PREFIX.test(prefix))
    throw new CliError(`--name-prefix must be 1-50 letters, digits, _ or -, not "${prefix}"`);
  return prefix;
}

/** An AWS error as one line and the exit code it deserves (credentials 4, anything else 1). */
export function awsFailure(err: unknown, doing: string): CliError {
  if (err instanceof CliError) return err;
  const e = err as Error & { $metadata?: unknown; code?: string };
  const code = err instanceof AwsError ? err.code : e.name;
  const credentials =
    /^(UnrecognizedClient|InvalidClientTokenId|InvalidSignature|SignatureDoesNotMatch|ExpiredToken|CredentialsProviderError)/.test(
      code ?? "",
    );
  return new CliError(
    `${doing}: ${code && code !== "Error" ? `${code}: ` : ""}${e.message}`,
    credentials ? EXIT.credentials : EXIT.failure,
  );
}

async function deployCommand(g: GlobalOptions, flags: DeployFlags): Promise<number> {
  // Everything the flags and files say is checked before the account is opened.
  const prefix = prefixOf(flags.namePrefix);
  if (flags.roleArn !== undefined && !ROLE_ARN.test(flags.roleArn))
    throw new CliError(
      `--role-arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), not "${flags.roleArn}"`,
    );
  if (flags.roleArn !== undefined && flags.createRole)
    throw new CliError("--role-arn and --create-role contradict each other: give one");
  if (flags.config) parseParams(readConfig(flags.config));
  const target = await openTarget(g, "kmslab deploy");
  const clients = new Clients(target.base);
  const sfn = sfnClient(target.base);
  try {
    if (flags.roleArn === undefined && !flags.createRole && target.kind !== "sim")
      throw new CliError(
        `deploy needs an execution role on ${target.description}: pass --role-arn ARN (a role that trusts states.amazonaws.com) or --create-role (kmslab creates ${roleName(prefix)})`,
      );
    const params = parseParams({
      ...paramsFrom({ config: flags.config }, target.kind),
      region: target.region,
    });
    const account = await callerAccount(clients, target);
    const names = anySuffix(resolveParams({ ...params, suffix: "" }, account));
    if (!g.json)
      process.stderr.write(
        `kmslab: deploying ${machineNames(prefix).lab} and ${machineNames(prefix).teardown} to ${target.description}, account ${account}, ${target.region}\n`,
      );
    let result: DeployResult;
    try {
      result = await deploy({
        sfn,
        clients,
        account,
        region: target.region,
        prefix,
        ...(flags.roleArn ? { roleArn: flags.roleArn } : {}),
        defaults: defaultsFrom(params),
        names,
      });
    } catch (err) {
      if (err instanceof DefinitionRejected) {
        for (const d of err.diagnostics)
          process.stderr.write(
            `  ${d.severity ?? "ERROR"} ${d.code ?? ""}${d.location ? ` at ${d.location}` : ""}: ${d.message ?? ""}\n`,
          );
        throw new CliError(err.message, EXIT.failure);
      }
      throw awsFailure(err, `deploy to ${target.description}`);
    }
    print(g, target, result);
    return EXIT.ok;
  } finally {
    sfn.destroy();
    clients.destroy();
    target.close();
  }
}

function print(g: GlobalOptions, target: Target, r: DeployResult): void {
  if (g.json) {
    process.stdout.write(`${JSON.stringify({ target: target.kind, ...r }, null, 2)}\n`);
    return;
  }
  const rows: [string, string, string][] = [
    ["role", r.role.arn, r.role.action],
    ["lab", r.stateMachines.lab.arn, r.stateMachines.lab.action],
    ["teardown", r.stateMachines.teardown.arn, r.stateMachines.teardown.action],
  ];
  for (const [what, arn, action] of rows) process.stdout.write(`${what.padEnd(9)} ${arn}  (${action})\n`);
  if (g.verbose) for (const note of r.notes) process.stderr.write(`kmslab: note: ${note}\n`);
  process.stderr.write(
    `kmslab: run it with kmslab sfn start${r.stateMachines.lab.name === "kmslab-lab" ? "" : ` --name-prefix ${r.stateMachines.lab.name.slice(0, -4)}`}\n`,
  );
}
