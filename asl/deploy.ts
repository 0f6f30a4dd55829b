import {
  CreateStateMachineCommand,
  ListStateMachinesCommand,
  type SFNClient,
  UpdateStateMachineCommand,
  ValidateStateMachineDefinitionCommand,
} from "@aws-sdk/client-sfn";
import { AwsError, type Clients } from "../machines/aws.js";
import { type Export, type ExportOptions, exportLab, exportTeardown } from "./export.js";
import { executionRolePolicy, type PolicyDocument, type PolicyNames } from "./iam.js";

/**
 * `kmslab deploy` as a library: the lab and teardown definitions exported, checked by Step
 * Functions itself (ValidateStateMachineDefinition: only its OK counts), the execution role made
 * or brought up to date, and the two state machines created or updated in place (found by name).
 * Every step is safe to repeat: a second deploy updates what the first made and creates nothing.
 */

/** What `deploy` names: `<prefix>-lab`, `<prefix>-teardown`, the role `<prefix>-states`. */
export const DEFAULT_PREFIX = "kmslab";
export const PREFIX = /^[A-Za-z0-9_-]{1,50}$/;

export const machineNames = (prefix: string) => ({ lab: `${prefix}-lab`, teardown: `${prefix}-teardown` });
export const roleName = (prefix: string) => `${prefix}-states`;

/** Step Functions assumes the execution role: the only principal its trust policy names. */
export const STATES_TRUST_POLICY = {
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Principal: { Service: "states.amazonaws.com" },
      Action: "sts:AssumeRole",
    },
  ],
};

/** ValidateStateMachineDefinition found problems (or did not say OK). */
export class DefinitionRejected extends Error {
  constructor(
    readonly machine: string,
    readonly result: string,
    readonly diagnostics: { severity?: string; code?: string; message?: string; location?: string }[],
  ) {
    super(
      `Step Functions does not accept the ${machine} definition (ValidateStateMachineDefinition: ${result})`,
    );
  }
}

export type Action = "created" | "updated" | "given";

export interface DeployResult {
  account: string;
  region: string;
  role: { arn: string; action: Action; policy?: PolicyDocument };
  stateMachines: Record<"lab" | "teardown", { name: string; arn: string; action: Exclude<Action, "given"> }>;
  notes: string[];
}

export interface DeployOptions {
  sfn: SFNClient;
  /** For IAM (the role), with the same credentials. */
  clients: Clients;
  account: string;
  region: string;
  prefix?: string;
  /** Use this role as it is; otherwise `<prefix>-states` is created or updated. */
  roleArn?: string;
  /** The definitions' parameter defaults (as `kmslab export asl --config` bakes them in). */
  defaults?: ExportOptions["defaults"];
  /** The names the policy is written for: the lab's, with `*` where a learner's suffix goes. */
  names: PolicyNames;
  /** Waits between tries while a new role is not yet assumable (IAM is eventually consistent). */
  sleep?: (ms: number) => Promise<void>;
  /** How long a new role may take to become assumable by Step Functions. */
  roleWaitMs?: number;
}

/**
 * The policy's names for any learner: every name a suffix is appended to ends in `*` (names given
 * without a suffix), so the executions of a class run (`-alice`, `-bob`...) are allowed as the
 * suffix-less one is. The object key takes no suffix.
 */
export function anySuffix(n: PolicyNames): PolicyNames {
  return {
    ...n,
    keyAlias: `${n.keyAlias}*`,
    keyUserRole: `${n.keyUserRole}*`,
    trailName: `${n.trailName}*`,
    logBucket: `${n.logBucket}*`,
    dataBucket: `${n.dataBucket}*`,
  };
}

export async function deploy(o: DeployOptions): Promise<DeployResult> {
  const prefix = o.prefix ?? DEFAULT_PREFIX;
  const names = machineNames(prefix);
  const defaults = o.defaults ? { defaults: o.defaults } : {};
  const exports: Record<"lab" | "teardown", Export> = {
    lab: await exportLab(defaults),
    teardown: await exportTeardown(defaults),
  };
  const definitions = {
    lab: JSON.stringify(exports.lab.definition),
    teardown: JSON.stringify(exports.teardown.definition),
  };
  // Both checked before anything is made: a rejected definition leaves the account as it was.
  for (const kind of ["lab", "teardown"] as const) await validate(o.sfn, names[kind], definitions[kind]);

  const policy = executionRolePolicy([exports.lab.definition, exports.teardown.definition], o.names);
  const role = o.roleArn
    ? { arn: o.roleArn, action: "given" as const }
    : { ...(await putRole(o.clients, roleName(prefix), policy)), policy };

  const existing = await existingMachines(o.sfn);
  const machines = {} as DeployResult["stateMachines"];
  for (const kind of ["lab", "teardown"] as const) {
    const name = names[kind];
    const arn = existing.get(name);
    if (arn) {
      // A role made again (deleted by hand) is new to Step Functions too.
      await whileRoleIsNew(o, role.action === "created", () =>
        o.sfn.send(
          new UpdateStateMachineCommand({
            stateMachineArn: arn,
            definition: definitions[kind],
            roleArn: role.arn,
          }),
        ),
      );
      machines[kind] = { name, arn, action: "updated" };
    } else {
      const created = await createMachine(o, name, definitions[kind], role.arn, role.action === "created");
      machines[kind] = { name, arn: created, action: "created" };
    }
  }
  return {
    account: o.account,
    region: o.region,
    role,
    stateMachines: machines,
    notes: [...new Set([...exports.lab.notes, ...exports.teardown.notes])],
  };
}

async function validate(sfn: SFNClient, machine: string, definition: string): Promise<void> {
  const out = await sfn.send(
    new ValidateStateMachineDefinitionCommand({ definition, type: "STANDARD", maxResults: 100 }),
  );
  if (out.result !== "OK") throw new DefinitionRejected(machine, String(out.result), out.diagnostics ?? []);
}

/** Every state machine of the account and Region, by name. */
async function existingMachines(sfn: SFNClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(
      new ListStateMachinesCommand({ maxResults: 1000, ...(nextToken ? { nextToken } : {}) }),
    );
    for (const m of page.stateMachines ?? [])
      if (m.name && m.stateMachineArn) out.set(m.name, m.stateMachineArn);
    nextToken = page.nextToken;
  } while (nextToken);
  return out;
}

/** The execution role: created with the trust policy, or its trust policy reset; its inline policy replaced. */
async function putRole(
  clients: Clients,
  name: string,
  policy: PolicyDocument,
): Promise<{ arn: string; action: Action }> {
  let arn: string;
  let action: Action;
  try {
    const got = await clients.call("iam", "GetRole", { RoleName: name });
    arn = (got.Role as { Arn: string }).Arn;
    action = "updated";
    await clients.call("iam", "UpdateAssumeRolePolicy", {
      RoleName: name,
      PolicyDocument: JSON.stringify(STATES_TRUST_POLICY),
    });
  } catch (err) {
    if (!(err instanceof AwsError && err.code === "NoSuchEntity")) throw err;
    const made = await clients.call("iam", "CreateRole", {
      RoleName: name,
      Description: "kmslab: the execution role of the lab's Step Functions state machines",
      AssumeRolePolicyDocument: JSON.stringify(STATES_TRUST_POLICY),
      Tags: [{ Key: "kmslab:component", Value: "states-execution-role" }],
    });
    arn = (made.Role as { Arn: string }).Arn;
    action = "created";
  }
  await clients.call("iam", "PutRolePolicy", {
    RoleName: name,
    PolicyName: name,
    PolicyDocument: JSON.stringify(policy),
  });
  return { arn, action };
}

/**
 * Step Functions cannot assume the role yet: a new role IAM has not propagated. AWS says (400
 * AccessDeniedException) "Neither the global service principal states.amazonaws.com, nor the
 * regional one is authorized to assume the provided role."; older answers "The principal
 * states.amazonaws.com is not authorized to assume the provided role." Both end the same way.
 */
const NOT_ASSUMABLE = /authorized to assume the provided role/i;

/** CreateStateMachine, tried again while a role this deploy just made is not yet assumable. */
function createMachine(
  o: DeployOptions,
  name: string,
  definition: string,
  roleArn: string,
  newRole: boolean,
): Promise<string> {
  return whileRoleIsNew(o, newRole, async () => {
    const out = await o.sfn.send(
      new CreateStateMachineCommand({
        name,
        definition,
        roleArn,
        type: "STANDARD",
        tags: [{ key: "kmslab:component", value: name }],
      }),
    );
    return out.stateMachineArn!;
  });
}

/**
 * Runs `fn`, again after a back-off (2 s, doubling, at most 10 s) while Step Functions says it
 * cannot assume a role just made, for at most `roleWaitMs` of waiting in all.
 */
async function whileRoleIsNew<T>(o: DeployOptions, newRole: boolean, fn: () => Promise<T>): Promise<T> {
  const sleep = o.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const budget = newRole ? (o.roleWaitMs ?? 60_000) : 0;
  let waited = 0;
  for (let delay = 2_000; ; delay = Math.min(10_000, delay * 2)) {
    try {
      return await fn();
    } catch (err) {
      if (!NOT_ASSUMABLE.test((err as Error).message) || waited + delay > budget) throw err;
      await sleep(delay);
      waited += delay;
    }
  }
}
