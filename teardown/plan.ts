import type { JournalEntry, StateFile } from "../state/index.js";
import type { CallStep, StageId } from "../steps/dsl.js";
import { evaluate } from "../steps/expr.js";
import type { ResolvedParams } from "../steps/params.js";
import { allSteps, STAGES } from "../steps/registry.js";
import { isTeardownType, labNames, TEARDOWN_ORDER, type TeardownType } from "../steps/resources.js";
import type { Found } from "./inventory.js";

/**
 * What a teardown will do, decided from the state file (the effect journal and the ledger: what
 * this run made, and when) and the sweep (what the account holds, and whose tags it carries).
 * Pure: it reads nothing and changes nothing, so the dry run and the real run plan alike.
 *
 * The rule of safety: a resource is removed only when it carries the run's `kmslab:run` tag (any
 * run's with --all-runs), or — the one gap between a create and its tags — it is a bucket with no
 * kmslab tag that S3 says was created after this run's journal recorded its intent to create it.
 * Aliases carry no tags: an alias goes with the key it points at. Resources with the lab's names
 * but none of its tags are listed as kept, and removed only with --include-untagged. What the sweep
 * could not read (a denial, another Region) is skipped with the reason; when it has the lab's name
 * or the run's journal knows it, the teardown cannot say the run is gone, so it is undecided.
 */

export type Action = "remove" | "gone" | "pendingDeletion" | "kept" | "skipped";

export interface PlanItem {
  type: TeardownType;
  arn: string;
  name: string;
  stageId?: string;
  action: Action;
  /** Why: whose tag it carries, or why it stays. */
  reason: string;
  deletionDate?: string;
  /** Removing it needs the user's confirmation beyond --yes-less dry run (untagged, --include-untagged). */
  untagged?: boolean;
  /** Skipped, and it may be the run's: the teardown cannot be complete while it stays unread. */
  undecided?: boolean;
}

export interface PlanOptions {
  /** The state file of the run being torn down; absent with --all-runs and no state. */
  state?: StateFile;
  /** The lab's names (the state's parameters, or the defaults for the account). */
  params: ResolvedParams;
  allRuns: boolean;
  includeUntagged: boolean;
}

/** A resource the journal or the ledger says this run made (or set out to make). */
interface Expected {
  type: TeardownType;
  arn: string;
  stageId: string;
  /** When the run recorded its intent to create it: S3's CreationDate is not before. */
  intentAt?: string;
  /** A ledger entry with deletedAt: removed by a rollback or an earlier teardown. */
  deletedAt?: string;
}

const STAGE_ORDER = STAGES.map((s) => s.id as string);

/** The step that journaled an effect (`createKey#2` in stage create-key). */
export function effectStep(stageId: string, effectId: string): CallStep | undefined {
  const stepId = effectId.replace(/#\d+$/, "");
  const def = STAGES.find((s) => s.id === stageId);
  const step = def ? allSteps(def.run).find((s) => s.id === stepId) : undefined;
  return step?.kind === "call" ? step : undefined;
}

/** The latest journal entry of each effect. */
export function latestEffects(journal: readonly JournalEntry[]): JournalEntry[] {
  const latest = new Map<string, JournalEntry>();
  for (const e of journal) latest.set(`${e.stageId}/${e.effectId}`, e);
  return [...latest.values()];
}

/** What the run's journal and ledger say it made, with the ARNs the step definitions compute. */
async function expected(state: StateFile): Promise<Map<string, Expected>> {
  const out = new Map<string, Expected>();
  for (const l of state.ledger) {
    if (!isTeardownType(l.type)) continue;
    out.set(l.arn, {
      type: l.type,
      arn: l.arn,
      stageId: l.stageId,
      ...(l.deletedAt ? { deletedAt: l.deletedAt } : {}),
    });
  }
  const intents = new Map<string, string>();
  for (const e of state.journal)
    if (e.phase === "intent")
      intents.set(`${e.stageId}/${e.effectId}`, intents.get(`${e.stageId}/${e.effectId}`) ?? e.at);
  for (const e of latestEffects(state.journal)) {
    const step = effectStep(e.stageId, e.effectId);
    const resource = step?.effect?.resource;
    if (!step || !resource || !isTeardownType(resource.type)) continue;
    const intentAt = intents.get(`${e.stageId}/${e.effectId}`);
    let arn = e.resourceArn;
    if (!arn) {
      // An intent without its result (a crash during the call): the ARN from the parameters, when
      // they determine it (a key's does not: the sweep finds it by its tags).
      const bindings = {
        params: state.params,
        runId: state.runId,
        ...(state.stages[e.stageId]?.outputs ?? {}),
        ...((e.result as Record<string, unknown> | undefined) ?? {}),
      };
      const value = await evaluate(`{% ${resource.arn} %}`, bindings).catch(() => undefined);
      if (typeof value !== "string" || value.includes("undefined")) continue;
      arn = value;
    }
    const known = out.get(arn);
    if (e.phase === "undone") {
      // Undone by a rollback or an earlier teardown: whatever has its name now was not made by this effect.
      if (!known) out.set(arn, { type: resource.type, arn, stageId: e.stageId, deletedAt: e.at });
      continue;
    }
    out.set(arn, {
      type: resource.type,
      arn,
      stageId: e.stageId,
      ...(intentAt ? { intentAt } : {}),
      ...(known?.deletedAt ? { deletedAt: known.deletedAt } : {}),
    });
  }
  return out;
}

/** The lab's names per type (what a look-alike would be called), as the registry gives them. */
function namesByType(params: ResolvedParams): Record<TeardownType, Set<string>> {
  return Object.fromEntries(TEARDOWN_ORDER.map((t) => [t, new Set(labNames(t, params))])) as Record<
    TeardownType,
    Set<string>
  >;
}

/** A resource the sweep could not read: kept, and undecided when it may be the run's. */
function skipped(f: Found, mayBeTheRuns: boolean): Pick<PlanItem, "action" | "reason" | "undecided"> {
  return mayBeTheRuns
    ? {
        action: "skipped",
        undecided: true,
        reason: `${f.unreadable}: it has the lab's name (or the run's journal knows it) but whose it is cannot be read, so it is kept, and the teardown is not complete`,
      }
    : { action: "skipped", reason: `${f.unreadable}: not provably the lab's, so it is kept` };
}

/** Decides, for every resource of the lab's types, whether it goes, and why. */
export async function plan(found: readonly Found[], options: PlanOptions): Promise<PlanItem[]> {
  const { state, allRuns, includeUntagged } = options;
  const runId = state?.runId;
  const known = state ? await expected(state) : new Map<string, Expected>();
  const names = namesByType(options.params);
  const items: PlanItem[] = [];
  const ownedKeys = new Map<string, string>();

  const ownership = (f: Found): string | undefined => {
    if (f.run !== undefined && f.run === runId) return `tagged ${"kmslab:run"}=${f.run}`;
    if (f.run !== undefined && allRuns) return `tagged kmslab:run=${f.run} (--all-runs)`;
    const k = known.get(f.arn);
    if (
      f.type === "AWS::S3::Bucket" &&
      f.run === undefined &&
      k?.intentAt &&
      !k.deletedAt &&
      f.createdAt &&
      Date.parse(f.createdAt) >= Date.parse(k.intentAt) - 1000
    )
      return `made by this run (journal, ${k.intentAt}) before it could be tagged`;
    return undefined;
  };

  for (const type of TEARDOWN_ORDER) {
    for (const f of found.filter((x) => x.type === type && x.type !== "AWS::KMS::Alias")) {
      const why = ownership(f);
      const k = known.get(f.arn);
      const base = {
        type: f.type,
        arn: f.arn,
        name: f.name,
        ...((f.stage ?? k?.stageId) ? { stageId: f.stage ?? k?.stageId } : {}),
      };
      if (f.unreadable !== undefined) {
        items.push({ ...base, ...skipped(f, names[f.type].has(f.name) || k !== undefined) });
        continue;
      }
      if (why) {
        if (f.type === "AWS::KMS::Key") ownedKeys.set(f.arn, why);
        if (f.deleting) {
          items.push({
            ...base,
            action: "pendingDeletion",
            reason: `pending deletion${f.deletionDate ? ` on ${f.deletionDate}` : ""}`,
            ...(f.deletionDate ? { deletionDate: f.deletionDate } : {}),
          });
        } else items.push({ ...base, action: "remove", reason: why });
        continue;
      }
      // Another run's resources are listed (kept, and why); the account's other resources are not.
      if (!names[f.type].has(f.name) && !k && f.run === undefined) continue;
      if (includeUntagged && f.run === undefined && names[f.type].has(f.name)) {
        items.push({
          ...base,
          action: "remove",
          untagged: true,
          reason: "has the lab's name and no kmslab tag (--include-untagged)",
        });
        continue;
      }
      items.push({ ...base, action: "kept", reason: keptReason(f) });
    }
  }

  // Aliases: an alias goes with its key.
  const aliasItems: PlanItem[] = [];
  for (const f of found.filter((x) => x.type === "AWS::KMS::Alias")) {
    const k = known.get(f.arn);
    const keyWhy = f.ownerArn ? ownedKeys.get(f.ownerArn) : undefined;
    const base = {
      type: f.type,
      arn: f.arn,
      name: f.name,
      ...(k?.stageId ? { stageId: k.stageId } : {}),
    };
    if (keyWhy) {
      const key = found.find((x) => x.arn === f.ownerArn);
      aliasItems.push({
        ...base,
        ...(key?.stage ? { stageId: key.stage } : {}),
        action: "remove",
        reason: `points at a key ${keyWhy}`,
      });
      continue;
    }
    const target = found.find((x) => x.arn === f.ownerArn);
    if (target?.unreadable !== undefined) {
      aliasItems.push({
        ...base,
        ...skipped(
          { ...f, unreadable: `it points at a key that cannot be read (${target.unreadable})` },
          names[f.type].has(f.name) || k !== undefined,
        ),
      });
      continue;
    }
    if (!names[f.type].has(f.name) && !k && target?.run === undefined) continue;
    if (includeUntagged && target?.run === undefined && names[f.type].has(f.name)) {
      aliasItems.push({
        ...base,
        action: "remove",
        untagged: true,
        reason: "has the lab's name and points at a key without kmslab tags (--include-untagged)",
      });
      continue;
    }
    aliasItems.push({
      ...base,
      action: "kept",
      reason:
        target?.run !== undefined
          ? `points at a key of another run (kmslab:run=${target.run}): --all-runs removes every run's resources`
          : "points at a key without kmslab tags (an alias goes with its key; --include-untagged removes it)",
    });
  }
  items.push(...aliasItems);

  // What the journal or ledger knows and the account no longer holds: already gone.
  const present = new Set(found.map((f) => f.arn));
  for (const k of known.values()) {
    if (present.has(k.arn)) continue;
    items.push({
      type: k.type,
      arn: k.arn,
      name: k.arn.split(/[:/]/).pop() ?? k.arn,
      stageId: k.stageId,
      action: "gone",
      reason: k.deletedAt ? `removed ${k.deletedAt}` : "not in the account (already deleted)",
    });
  }
  return sortPlan(items);
}

function keptReason(f: Found): string {
  if (f.run !== undefined)
    return `tagged by another run (kmslab:run=${f.run}): --all-runs removes every run's resources`;
  if (f.type === "AWS::KMS::Key") return "no kmslab:run tag: keys are removed only by their tag";
  return "has the lab's name but no kmslab:run tag, so kmslab did not make it (--include-untagged removes it)";
}

/** Lab.md's order (trail, buckets, alias, key, role), stages newest first within a type. */
export function sortPlan(items: PlanItem[]): PlanItem[] {
  const typeIndex = (t: string) => (TEARDOWN_ORDER as readonly string[]).indexOf(t);
  const stageIndex = (s: string | undefined) => (s ? STAGE_ORDER.indexOf(s as StageId) : -1);
  return [...items].sort(
    (a, b) =>
      typeIndex(a.type) - typeIndex(b.type) ||
      stageIndex(b.stageId) - stageIndex(a.stageId) ||
      a.arn.localeCompare(b.arn),
  );
}
