import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { Clients } from "../machines/aws.js";
import { DEFAULT_STATE_PATH, FileStateStore } from "../state/index.js";
import { STAGES } from "../steps/registry.js";
import { type PlanItem, type ResultItem, Teardown, type TeardownResult } from "../teardown/index.js";
import { CliError, EXIT } from "./exit-codes.js";
import type { GlobalOptions } from "./run.js";
import { assertSimState, callerAccount, knownSim, openTarget } from "./target.js";

/**
 * `kmslab teardown`: a dry run unless `--yes` (or a "yes" typed at the prompt); with it, removes
 * what the run made, newest stage first in lab.md's order, and sweeps the account for the run's
 * tagged leftovers. `--all-runs` sweeps every kmslab-tagged resource once the account id is
 * confirmed (typed, or `--account`). Exit 0 only when nothing that should go remains.
 */
interface TeardownFlags {
  allRuns?: boolean;
  account?: string;
  includeUntagged?: boolean;
}

export function registerTeardown(program: Command, globals: () => GlobalOptions): void {
  program
    .command("teardown")
    .description("remove what the lab made (a dry run unless --yes)")
    .option("--all-runs", "sweep every kmslab-tagged resource in the account, not just this run's")
    .option("--account <id>", "the account id --all-runs acts on (instead of typing it)")
    .option("--include-untagged", "also remove resources with the lab's names but no kmslab tags")
    .action(async (flags: TeardownFlags) => {
      process.exitCode = await teardownCommand(globals(), flags);
    });
}

const interactive = () => process.stdin.isTTY === true && process.stderr.isTTY === true;

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

async function teardownCommand(g: GlobalOptions, flags: TeardownFlags): Promise<number> {
  if (flags.account !== undefined && !/^\d{12}$/.test(flags.account))
    throw new CliError(`--account must be a 12-digit account id, not "${flags.account}"`);
  if (flags.account !== undefined && !flags.allRuns)
    throw new CliError("--account confirms an --all-runs sweep; add --all-runs or leave it out");
  const store = new FileStateStore(g.state ?? DEFAULT_STATE_PATH);
  // Whatever can refuse the teardown is checked before the embedded account is opened (knownSim).
  const existing = await store.read();
  const sim = knownSim(g);
  if (sim && existing) assertSimState(existing, sim, store.path);
  const target = await openTarget(g, "kmslab teardown");
  const clients = new Clients(target.base);
  try {
    const account = await callerAccount(clients, target);
    if (flags.account !== undefined && flags.account !== account)
      throw new CliError(
        `--account ${flags.account} does not match the account these credentials reach (${account}): nothing was touched`,
        EXIT.credentials,
      );
    // Acting is asked for (--yes) or may be confirmed at a prompt; otherwise this is a dry run.
    const mayAct = g.yes === true || interactive();
    const t = new Teardown({
      clients,
      account,
      region: target.region,
      store,
      allRuns: flags.allRuns === true,
      includeUntagged: flags.includeUntagged === true,
      command: "kmslab teardown",
      ...(g.json ? {} : { progress: (r: ResultItem) => process.stderr.write(`  ${line(r)}\n`) }),
    });
    const state = await t.open(mayAct);
    try {
      if (!state && !flags.allRuns)
        throw new CliError(
          `no state file at ${store.path}: no run to tear down (--state PATH names another; --all-runs sweeps every kmslab-tagged resource)`,
          EXIT.failure,
        );
      const items = await t.plan();
      const removing = items.filter((i) => i.action === "remove");
      // With --yes a teardown acts even when nothing is left to remove: it records that nothing remains.
      let act = g.yes === true || (mayAct && removing.length > 0);
      let shown = false;
      if (act && removing.length > 0 && flags.allRuns && flags.account === undefined) {
        if (!interactive())
          throw new CliError(
            "--all-runs with --yes needs --account ID when there is no terminal to confirm it",
          );
        printPlan(t.dryRun(items));
        shown = true;
        act =
          (await ask(`type the account id (${account}) to remove every kmslab-tagged resource in it: `)) ===
          account;
      } else if (act && g.yes !== true) {
        printPlan(t.dryRun(items));
        shown = true;
        const untagged = removing.some((i) => i.untagged);
        const answer = await ask(
          `remove ${removing.length} resource(s)${untagged ? ", some without kmslab tags" : ""}? type "yes": `,
        );
        act = answer === "yes";
      }
      if (!act) {
        const result = t.dryRun(items);
        if (!g.json && !shown) printPlan(result);
        if (g.json) process.stdout.write(`${JSON.stringify(jsonResult(result), null, 2)}\n`);
        else if (removing.length > 0)
          process.stderr.write(
            "kmslab: dry run, nothing was changed; run with --yes to remove what is listed above\n",
          );
        return result.complete ? EXIT.ok : EXIT.failure;
      }
      if (!g.json)
        process.stderr.write(
          `kmslab: tearing down${state ? ` run ${state.runId}` : ""} on ${target.description}, account ${account}, ${target.region}\n`,
        );
      const result = await t.execute(items);
      if (g.json) process.stdout.write(`${JSON.stringify(jsonResult(result), null, 2)}\n`);
      else printPlan(result);
      return result.complete ? EXIT.ok : EXIT.failure;
    } finally {
      await t.close();
    }
  } finally {
    clients.destroy();
    target.close();
  }
}

const LABEL: Record<ResultItem["outcome"], string> = {
  wouldRemove: "would remove",
  removed: "removed",
  gone: "already gone",
  pendingDeletion: "pending deletion",
  kept: "kept",
  skipped: "skipped",
  failed: "FAILED",
};

function line(r: ResultItem): string {
  const date = r.deletionDate ? ` (deleted on ${r.deletionDate.slice(0, 10)})` : "";
  const why = r.outcome === "removed" ? (r.detail ?? "") : (r.detail ?? r.reason);
  return `${LABEL[r.outcome].padEnd(16)} ${r.type.padEnd(22)} ${r.arn}${date}${why ? ` — ${why}` : ""}`;
}

/** Per stage, newest first: what goes, what is gone, what stays and why; then the totals. */
function printPlan(result: TeardownResult): void {
  const out: string[] = [];
  out.push(
    `${result.dryRun ? "teardown plan (dry run)" : "teardown"}${result.runId ? ` of run ${result.runId}` : ""}${result.allRuns ? " — every kmslab run" : ""}: account ${result.account}, ${result.region}`,
  );
  const stages = [...STAGES.map((s) => s.id as string)].reverse();
  const groups = new Map<string, ResultItem[]>();
  for (const item of result.items) {
    const key = item.stageId && stages.includes(item.stageId) ? item.stageId : "(no stage)";
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  for (const stage of [...stages, "(no stage)"]) {
    const items = groups.get(stage);
    if (!items) continue;
    out.push(`${stage}`);
    for (const item of items) out.push(`  ${line(item)}`);
  }
  if (result.items.length === 0) out.push("  nothing of the lab's in this account");
  const count = (o: ResultItem["outcome"]) => result.items.filter((i) => i.outcome === o).length;
  out.push(
    (Object.keys(LABEL) as ResultItem["outcome"][])
      .filter((o) => count(o) > 0)
      .map((o) => `${LABEL[o]} ${count(o)}`)
      .join(" · ") || "nothing to do",
  );
  if (!result.dryRun)
    out.push(
      result.remaining.length === 0
        ? "nothing that should go remains"
        : `still there and should go:\n${result.remaining.map((a) => `  ${a}`).join("\n")}`,
    );
  if (result.undecided.length > 0)
    out.push(
      `kept because whose they are could not be read (the teardown is not complete until it can):\n${result.undecided.map((a) => `  ${a}`).join("\n")}`,
    );
  process.stdout.write(`${out.join("\n")}\n`);
}

function jsonResult(result: TeardownResult) {
  return {
    ...result,
    items: result.items.map((i: ResultItem & Partial<PlanItem>) => ({
      stageId: i.stageId ?? null,
      type: i.type,
      arn: i.arn,
      outcome: i.outcome,
      reason: i.outcome === "removed" || i.outcome === "failed" ? (i.detail ?? i.reason) : i.reason,
      ...(i.deletionDate ? { deletionDate: i.deletionDate } : {}),
      ...(i.undecided ? { undecided: true } : {}),
    })),
  };
}
