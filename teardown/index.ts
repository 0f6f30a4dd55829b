import { setTimeout as sleep } from "node:timers/promises";
import { crashHarness } from "../lib/crash.js";
import { AwsError, type Clients } from "../machines/aws.js";
import {
  assertTarget,
  Checkpointer,
  type StateFile,
  type StateStore,
  type TeardownItem,
} from "../state/index.js";
import { parseParams, type ResolvedParams, resolveParams } from "../steps/params.js";
import { Aws } from "./aws.js";
import { deleteResource } from "./delete.js";
import { sweep } from "./inventory.js";
import { latestEffects, type PlanItem, plan } from "./plan.js";

/**
 * `kmslab teardown` as a library: plan from the state file and a sweep of the account, then (when
 * asked) delete in lab.md's order, checkpointing every deletion in the state file, and finally look
 * again at the account to say exactly what remains. Running it again after an interruption picks up
 * where it stopped (what is gone is found gone); running it after it completed removes nothing.
 */

export type { PlanItem } from "./plan.js";

export type Outcome = TeardownItem["outcome"] | "wouldRemove" | "skipped";

export interface ResultItem extends PlanItem {
  outcome: Outcome;
  detail?: string;
}

export interface TeardownResult {
  dryRun: boolean;
  runId?: string;
  account: string;
  region: string;
  allRuns: boolean;
  items: ResultItem[];
  /** ARNs of what should go and is still there. */
  remaining: string[];
  /** ARNs of what may be the run's but could not be read (skipped): the teardown cannot say it is done. */
  undecided: string[];
  /** Nothing that should go remains, and nothing is undecided. */
  complete: boolean;
}

export interface TeardownOptions {
  clients: Clients;
  /** The account and Region the credentials reach (GetCallerIdentity, the client's Region). */
  account: string;
  region: string;
  /** The run's state store; absent for --all-runs without a state file. */
  store?: StateStore;
  allRuns?: boolean;
  includeUntagged?: boolean;
  command?: string;
  /** How long a bucket may keep receiving CloudTrail files (default 60 s). */
  bucketBudgetMs?: number;
  /** Sees each resource as it is dealt with. */
  progress?: (item: ResultItem) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * The tests' crash harness (as the engine's KMSLAB_TEST_CRASH_AFTER_EFFECT): `N` kills this process
 * with SIGKILL right after the N-th change the account accepted, `N:checkpoint` right after the
 * N-th deletion's checkpoint.
 */
const crash = crashHarness("KMSLAB_TEST_CRASH_AFTER_DELETION");

export class Teardown {
  /** The state file's content and its writes, when there is a state file. */
  private checkpoints?: Checkpointer;
  private params!: ResolvedParams;
  private readonly aws: Aws;
  private changes = 0;
  private checkpointed = 0;
  private locked = false;

  constructor(private readonly o: TeardownOptions) {
    this.aws = new Aws(
      o.clients,
      undefined,
      () => {
        this.changes++;
        crash(this.changes);
      },
      o.sleep,
    );
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  /** Reads the state (taking its lock when `lock`) and refuses another account or Region. */
  async open(lock: boolean): Promise<StateFile | undefined> {
    const store = this.o.store;
    if (store && lock) {
      await store.lock(this.o.command ?? "kmslab teardown");
      this.locked = true;
    }
    try {
      const state = store ? await store.read() : undefined;
      if (state) assertTarget(state, { accountId: this.o.account, region: this.o.region });
      if (store && state) this.checkpoints = new Checkpointer(store, state);
    } catch (err) {
      await this.close();
      throw err;
    }
    this.params = this.state
      ? (this.state.params as unknown as ResolvedParams)
      : resolveParams(parseParams({ region: this.o.region }), this.o.account);
    return this.state;
  }

  async close(): Promise<void> {
    if (this.locked) await this.o.store?.unlock();
    this.locked = false;
  }

  /** What would happen: nothing is changed. */
  async plan(): Promise<PlanItem[]> {
    const found = await sweep(this.aws, this.o.account, this.o.region);
    return plan(found, {
      ...(this.state ? { state: this.state } : {}),
      params: this.params,
      allRuns: this.o.allRuns === true,
      includeUntagged: this.o.includeUntagged === true,
    });
  }

  /** The plan as a dry run's result. */
  dryRun(items: PlanItem[]): TeardownResult {
    const out = items.map((i) => ({
      ...i,
      outcome: (i.action === "remove" ? "wouldRemove" : i.action) as Outcome,
    }));
    return this.result(
      true,
      out,
      items.filter((i) => i.action === "remove").map((i) => i.arn),
      undecided(items),
    );
  }

  /** Deletes what the plan says goes, in its order, then looks again. */
  async execute(items: PlanItem[]): Promise<TeardownResult> {
    const results: ResultItem[] = [];
    await this.checkpoint((st) => {
      st.teardown = { startedAt: this.iso(), allRuns: this.o.allRuns === true, items: [] };
    });
    for (const item of items) {
      if (item.action !== "remove") {
        const r: ResultItem = { ...item, outcome: item.action };
        results.push(r);
        this.o.progress?.(r);
        continue;
      }
      let r: ResultItem;
      try {
        const d = await deleteResource(this.aws, item, {
          params: this.params as unknown as Record<string, unknown>,
          ...(this.o.bucketBudgetMs !== undefined ? { budgetMs: this.o.bucketBudgetMs } : {}),
          now: () => this.now(),
          sleep: this.o.sleep ?? ((ms) => sleep(ms)),
        });
        r = {
          ...item,
          outcome: d.outcome,
          ...(d.deletionDate ? { deletionDate: d.deletionDate } : {}),
          ...(d.detail ? { detail: d.detail } : {}),
        };
      } catch (err) {
        if (!(err instanceof AwsError)) throw err;
        r = { ...item, outcome: "failed", detail: `${err.code}: ${err.message}` };
      }
      results.push(r);
      await this.checkpoint((st) => this.record(st, r));
      this.checkpointed++;
      crash(this.checkpointed, "checkpoint");
      this.o.progress?.(r);
    }
    // Look again: what should go and is still there is what remains, whatever the calls said.
    const after = await this.plan();
    const remaining = after.filter((i) => i.action === "remove").map((i) => i.arn);
    const unsure = undecided(after);
    await this.checkpoint((st) => {
      for (const r of results) if (r.outcome !== "removed" && r.outcome !== "failed") this.record(st, r);
      st.teardown!.endedAt = this.iso();
      // What may be the run's and could not be read remains as far as the record can tell.
      st.teardown!.remaining = [...remaining, ...unsure];
      if (remaining.length === 0 && unsure.length === 0) this.markUndone(st);
    });
    return this.result(false, results, remaining, unsure);
  }

  private result(
    dryRun: boolean,
    items: ResultItem[],
    remaining: string[],
    unsure: string[],
  ): TeardownResult {
    return {
      dryRun,
      ...(this.state ? { runId: this.state.runId } : {}),
      account: this.o.account,
      region: this.o.region,
      allRuns: this.o.allRuns === true,
      items,
      remaining,
      undecided: unsure,
      complete: remaining.length === 0 && unsure.length === 0,
    };
  }

  /** One resource's outcome into the teardown record; a removal also into the ledger and journal. */
  private record(st: StateFile, r: ResultItem): void {
    const t = st.teardown!;
    const row: TeardownItem = {
      arn: r.arn,
      type: r.type,
      ...(r.stageId ? { stageId: r.stageId } : {}),
      // The record's outcomes predate skipping: a skipped resource is kept, and the reason says why.
      outcome: r.outcome === "wouldRemove" || r.outcome === "skipped" ? "kept" : r.outcome,
      reason: r.detail ?? r.reason,
      ...(r.deletionDate ? { deletionDate: r.deletionDate } : {}),
      at: this.iso(),
    };
    t.items = [...t.items.filter((i) => i.arn !== r.arn), row];
    if (r.outcome !== "removed" && r.outcome !== "gone" && r.outcome !== "pendingDeletion") return;
    for (const l of st.ledger) if (l.arn === r.arn && !l.deletedAt) l.deletedAt = this.iso();
    for (const e of latestEffects(st.journal))
      if (e.resourceArn === r.arn && e.phase !== "undone") st.journal.push(this.undone(st, e));
  }

  /** Everything the run did is undone: every effect's journal says so, every stage is rolled back. */
  private markUndone(st: StateFile): void {
    for (const e of latestEffects(st.journal))
      if (e.phase === "done" || e.phase === "intent") st.journal.push(this.undone(st, e));
    for (const l of st.ledger) l.deletedAt ??= this.iso();
    for (const r of Object.values(st.stages)) if (r.status !== "pending") r.status = "rolledBack";
  }

  private undone(st: StateFile, e: StateFile["journal"][number]): StateFile["journal"][number] {
    const seq = (st.journal.at(-1)?.seq ?? 0) + 1;
    return {
      seq,
      stageId: e.stageId,
      effectId: e.effectId,
      service: e.service,
      operation: e.operation,
      phase: "undone",
      at: this.iso(),
    };
  }

  private get state(): StateFile | undefined {
    return this.checkpoints?.state;
  }

  private async checkpoint(change: (st: StateFile) => void): Promise<void> {
    await this.checkpoints?.commit(change);
  }
}

const undecided = (items: readonly PlanItem[]) => items.filter((i) => i.undecided).map((i) => i.arn);

/** Plans and, unless `dryRun`, executes: the whole teardown for callers that need no confirmation step. */
export async function teardown(options: TeardownOptions & { dryRun?: boolean }): Promise<TeardownResult> {
  const t = new Teardown(options);
  await t.open(!options.dryRun);
  try {
    const items = await t.plan();
    return options.dryRun ? t.dryRun(items) : await t.execute(items);
  } finally {
    await t.close();
  }
}
