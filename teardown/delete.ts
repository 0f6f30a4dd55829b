import { AwsError } from "../machines/aws.js";
import { type Bindings, evaluate, render } from "../steps/expr.js";
import { type CallOp, type DrainOp, type ResourceCall, resourceKind } from "../steps/resources.js";
import type { Aws } from "./aws.js";
import type { PlanItem } from "./plan.js";

/**
 * The deleters: each resource type's deletion as the resource-type registry (steps/resources.ts)
 * writes it — its calls in order, the exported teardown making the same ones — run here against the
 * account. Safe to repeat: a `gone` error means someone finished it already. What AWS needs before
 * the delete itself is in the registry's steps: a trail stops logging first; a bucket is drained of
 * every version and delete marker and listed again until empty (and drained again when CloudTrail
 * delivered one more file); a key's deletion is scheduled after the 7-day minimum; a role loses its
 * inline and attached policies first.
 */

export interface Deleted {
  /** `gone`: it was not there any more (deleted by hand, or by an interrupted teardown). */
  outcome: "removed" | "gone" | "pendingDeletion";
  deletionDate?: string;
  detail?: string;
}

export interface DeleteOptions {
  /** The lab's parameters (`$params` in the registry's templates). */
  params: Bindings;
  /** How long a deletion may be told "not yet" (a bucket receiving files) before it gives up. */
  budgetMs?: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

export async function deleteResource(aws: Aws, item: PlanItem, o: DeleteOptions): Promise<Deleted> {
  const ops = resourceKind(item.type).delete;
  const bindings: Bindings = { params: o.params, resource: { name: item.name, arn: item.arn } };
  const started = o.now();
  const removed = new Map<string, number>();
  let deletionDate: string | undefined;
  restart: for (;;) {
    for (const op of ops) {
      if (op.kind === "drain") {
        const n = await drain(aws, op, bindings);
        if (n === "gone") return { outcome: "gone" };
        if (n > 0) removed.set(op.noun, (removed.get(op.noun) ?? 0) + n);
        continue;
      }
      const r = await callOnce(aws, op, bindings);
      if (r === "gone") return { outcome: "gone" };
      if ("again" in r) {
        const budget = o.budgetMs ?? op.again!.budgetSeconds * 1000;
        if (o.now() - started > budget) throw r.again;
        await o.sleep(op.again!.waitSeconds * 1000);
        continue restart;
      }
      if ("pendingDeletion" in r)
        return { outcome: "pendingDeletion", ...(r.deletionDate ? { deletionDate: r.deletionDate } : {}) };
      deletionDate = r.deletionDate ?? deletionDate;
    }
    break;
  }
  const detail = [...removed].map(([noun, n]) => `${n} ${noun}`).join(" and ");
  return {
    outcome: "removed",
    ...(deletionDate ? { deletionDate, detail: "pending deletion (7 days)" } : {}),
    ...(detail ? { detail: `${detail} removed first` } : {}),
  };
}

const args = async (call: ResourceCall, bindings: Bindings) =>
  (await render(call.args, bindings)) as Record<string, unknown>;

/** One call of a deleter: its answer's facts, gone, "not yet", or "already under way". */
async function callOnce(
  aws: Aws,
  op: CallOp,
  bindings: Bindings,
): Promise<
  "gone" | { deletionDate?: string } | { again: AwsError } | { pendingDeletion: true; deletionDate?: string }
> {
  let out: Record<string, unknown> | undefined;
  try {
    out = await aws.changeWithOutput(
      op.call.service,
      op.call.action,
      await args(op.call, bindings),
      op.call.gone ?? [],
    );
  } catch (err) {
    if (!(err instanceof AwsError)) throw err;
    if (op.again?.errors.includes(err.code)) return { again: err };
    if (!op.already?.errors.includes(err.code)) throw err;
    const read = await aws.read(
      op.already.read.service,
      op.already.read.action,
      await args(op.already.read, bindings),
    );
    const at = { ...bindings, states: { result: read } };
    if ((await evaluate(`{% ${op.already.holds} %}`, at)) !== true) throw err;
    const date = op.already.deletionDate ? await evaluate(`{% ${op.already.deletionDate} %}`, at) : undefined;
    return { pendingDeletion: true, ...(typeof date === "string" ? { deletionDate: date } : {}) };
  }
  if (!out) return "gone";
  const date = op.result?.deletionDate
    ? await evaluate(`{% ${op.result.deletionDate} %}`, { ...bindings, states: { result: out } })
    : undefined;
  return date === undefined || date === null ? {} : { deletionDate: String(date) };
}

/** Lists and removes until nothing is left; how many items it removed, or gone. */
async function drain(aws: Aws, op: DrainOp, bindings: Bindings): Promise<number | "gone"> {
  let removed = 0;
  for (let round = 0; round < MAX_DRAIN_ROUNDS; round++) {
    let page: Record<string, unknown>;
    try {
      page = await aws.read(op.list.service, op.list.action, await args(op.list, bindings));
    } catch (err) {
      if (err instanceof AwsError && op.list.gone?.includes(err.code)) return "gone";
      throw err;
    }
    const items = ((await evaluate(`{% ${op.list.items} %}`, { ...bindings, states: { result: page } })) ??
      []) as unknown[];
    if (items.length === 0) return removed;
    if (op.batch) {
      const out = await aws.changeWithOutput(
        op.batch.service,
        op.batch.action,
        await args(op.batch, { ...bindings, items }),
        op.batch.gone ?? [],
      );
      if (!out) return "gone";
      const failed = op.batch.failed
        ? ((await evaluate(`{% ${op.batch.failed} %}`, { ...bindings, states: { result: out } })) as
            | { Key?: string; Code?: string; Message?: string }[]
            | undefined)
        : undefined;
      const first = failed?.[0];
      if (first)
        throw new AwsError(
          first.Code ?? "Error",
          `${first.Key}: ${first.Message ?? ""}`,
          undefined,
          op.batch.service,
          op.batch.action,
        );
    } else if (op.each) {
      // An item gone meanwhile is fine: the listing again says whether the resource went too.
      for (const item of items)
        await aws.change(
          op.each.service,
          op.each.action,
          await args(op.each, { ...bindings, item }),
          op.each.gone ?? [],
        );
    }
    removed += items.length;
  }
  throw new AwsError(
    "DrainGaveUp",
    `${op.noun}: still listed after ${MAX_DRAIN_ROUNDS} rounds of removing them`,
    undefined,
    op.list.service,
    op.list.action,
  );
}

/** Rounds of list-and-remove before a drain gives up (a page is up to 1000 items). */
export const MAX_DRAIN_ROUNDS = 1000;
