import type { Command } from "commander";
import { aslValidatorProblems, structuralProblems } from "../asl/check.js";
import { type Export, exportLab, exportTeardown } from "../asl/export.js";
import { executionRolePolicy, type PolicyNames } from "../asl/iam.js";
import { labMermaid } from "../asl/mermaid.js";
import { DiskFullError, writeAtomic } from "../lib/files.js";
import { type LabParams, parseParams, resolveParams } from "../steps/params.js";
import { CliError, EXIT } from "./exit-codes.js";
import { type GlobalOptions, readConfig } from "./run.js";

/**
 * `kmslab export asl [--teardown]`: the lab (or its teardown) as an AWS Step Functions state
 * machine, checked before it is written; `kmslab export iam-policy`: the policy its execution role
 * needs; `kmslab export mermaid`: the lab's statechart. Each writes to stdout or `--out FILE`
 * (replaced atomically, or left as it was when anything is wrong). What Step Functions cannot do as the
 * local engine does it is said on stderr.
 */
export function registerExport(program: Command, globals: () => GlobalOptions): void {
  const exp = program
    .command("export")
    .description("export the lab: Step Functions definition, IAM policy, statechart");

  exp
    .command("asl")
    .description("the lab as an AWS Step Functions state machine (Amazon States Language, JSONata)")
    .option("--teardown", "the teardown instead: every stage's effects undone, newest first")
    .option("--config <file>", "a JSON file of lab parameters: the definition's defaults")
    .option("--out <file>", "write the definition to this file rather than stdout")
    .action(async (opts: { teardown?: boolean; config?: string; out?: string }) => {
      const g = globals();
      const params = readParams(opts.config);
      const exported = await (opts.teardown ? exportTeardown : exportLab)({ defaults: defaultsFrom(params) });
      const problems = [
        ...structuralProblems(exported.definition),
        ...aslValidatorProblems(exported.definition),
      ];
      if (problems.length > 0)
        throw new CliError(
          `the generated definition does not check:\n  ${problems.join("\n  ")}`,
          EXIT.failure,
        );
      const text = `${JSON.stringify(exported.definition, null, 2)}\n`;
      emit(g, opts.out, text, summary(exported, opts.teardown === true));
    });

  exp
    .command("iam-policy")
    .description("the least-privilege IAM policy for the state machine's execution role")
    .option("--account <id>", "the AWS account (else * wherever the account goes)")
    .option("--config <file>", "a JSON file of lab parameters")
    .option("--out <file>", "write the policy to this file rather than stdout")
    .action(async (opts: { account?: string; config?: string; out?: string }) => {
      const g = globals();
      if (opts.account !== undefined && !/^\d{12}$/.test(opts.account))
        throw new CliError(`--account must be a 12-digit AWS account id, not "${opts.account}"`);
      const params = readParams(opts.config, g.region);
      const defaults = defaultsFrom(params);
      const definitions = [
        (await exportLab({ defaults })).definition,
        (await exportTeardown({ defaults })).definition,
      ];
      const policy = executionRolePolicy(definitions, policyNames(params, opts.account));
      emit(g, opts.out, `${JSON.stringify(policy, null, 2)}\n`, {
        statements: policy.Statement.length,
        actions: policy.Statement.reduce((n, s) => n + s.Action.length, 0),
      });
    });

  exp
    .command("mermaid")
    .description("the lab's statechart as a Mermaid diagram")
    .option("--out <file>", "write the diagram to this file rather than stdout")
    .action((opts: { out?: string }) => {
      emit(globals(), opts.out, labMermaid(), {});
    });
}

function summary(exported: Export, teardown: boolean): Record<string, unknown> {
  return {
    kind: teardown ? "teardown" : "lab",
    states: countStates(exported.definition),
    notes: exported.notes,
  };
}

function countStates(b: {
  States: Record<string, { Branches?: { States: Record<string, unknown> }[] }>;
}): number {
  let n = 0;
  for (const s of Object.values(b.States)) {
    n++;
    for (const branch of s.Branches ?? []) n += countStates(branch as never);
  }
  return n;
}

function readParams(config: string | undefined, region?: string): LabParams {
  return parseParams({ ...(config ? readConfig(config) : {}), ...(region ? { region } : {}) });
}

/** The parameters a definition bakes in as defaults (account-derived names stay computed). */
export function defaultsFrom(p: LabParams) {
  return {
    keyAlias: p.keyAlias,
    keyUserRole: p.keyUserRole,
    trailName: p.trailName,
    objectKey: p.objectKey,
    suffix: p.suffix,
    trailWaitSeconds: p.trailWaitSeconds,
    propagationWaitSeconds: p.propagationWaitSeconds,
    pollSeconds: p.pollSeconds,
  };
}

/** Names for the policy: with the account, or `*` where the account goes (bucket names included). */
function policyNames(params: LabParams, account: string | undefined): PolicyNames {
  const r = resolveParams(params, account ?? "000000000000");
  if (account) return r;
  return {
    ...r,
    account: "*",
    logBucket: params.logBucket ?? `kmslab-trail-*-${params.region}${params.suffix}`,
    dataBucket: params.dataBucket ?? `kmslab-data-*-${params.region}${params.suffix}`,
  };
}

/** The document to stdout or a file (written beside it, then renamed over it); a summary on stderr or as JSON. */
function emit(g: GlobalOptions, out: string | undefined, text: string, info: Record<string, unknown>): void {
  const notes = (info.notes as string[] | undefined) ?? [];
  if (out) {
    try {
      // Definitions and policies are meant to be shared (committed, deployed): readable by all.
      writeAtomic(out, text, { mode: 0o644 });
    } catch (err) {
      if (err instanceof DiskFullError) throw err;
      throw new CliError(`cannot write ${out}: ${(err as Error).message}`);
    }
    if (g.json) process.stdout.write(`${JSON.stringify({ out, ...info }, null, 2)}\n`);
    else process.stderr.write(`kmslab: wrote ${out}\n`);
  } else process.stdout.write(text);
  if (!g.json) for (const note of notes) process.stderr.write(`kmslab: note: ${note}\n`);
}
