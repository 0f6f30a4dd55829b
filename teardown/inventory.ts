import { AwsError } from "../machines/aws.js";
import { RUN_TAG, STAGE_TAG } from "../steps/build.js";
import { type Bindings, evaluate, render } from "../steps/expr.js";
import {
  type Listing,
  type ResourceCall,
  resourceKind,
  TEARDOWN_ORDER,
  type TeardownType,
} from "../steps/resources.js";
import type { Aws } from "./aws.js";

/**
 * The teardown's sweep: every resource of the lab's types in the account and Region, with its tags,
 * read through the SDK as anyone would read them, as the resource-type registry (steps/resources.ts)
 * says: its listing, its description, its tags. Nothing outside these types is ever listed, so
 * nothing outside them can be touched. A resource whose tags cannot be read — someone else's key
 * whose key policy does not admit the caller, a bucket whose policy denies it, a bucket in another
 * Region (301 PermanentRedirect, which SDK v3 does not follow) — is found with the reason, so the
 * plan can keep it and say why, instead of the whole sweep failing.
 */

export { TEARDOWN_ORDER, type TeardownType } from "../steps/resources.js";

export interface Found {
  type: TeardownType;
  arn: string;
  /** Its name (trail, bucket, alias and role names; a key's id). */
  name: string;
  /** The `kmslab:run` tag's value; undefined when the resource carries none. */
  run?: string;
  stage?: string;
  /** Buckets: when S3 says it was created (ISO). */
  createdAt?: string;
  /** Its deletion is under way already (a key pending deletion), to complete on `deletionDate`. */
  deleting?: boolean;
  deletionDate?: string;
  /** Aliases: the ARN of the key they point at. */
  ownerArn?: string;
  /** Why its tags (or its description) could not be read: whose it is is not known. */
  unreadable?: string;
}

type Tag = { Key?: string; Value?: string };

/** Reads in flight at once per resource type during a sweep. */
const SWEEP_CONCURRENCY = 8;

/** Everything of the lab's types the caller can see in `region` of `account`. */
export async function sweep(aws: Aws, account: string, region: string): Promise<Found[]> {
  const params = { account, region };
  const found = await Promise.all(TEARDOWN_ORDER.map((type) => sweepType(aws, type, params)));
  return found.flat();
}

async function sweepType(aws: Aws, type: TeardownType, params: Bindings): Promise<Found[]> {
  const kind = resourceKind(type);
  const listed = await listAll(aws, kind.list, { params });
  return mapLimit(listed, async (item) => {
    const resource = { name: String(item.name), arn: String(item.arn) };
    const f: Found = {
      type,
      ...resource,
      ...(typeof item.createdAt === "string" ? { createdAt: item.createdAt } : {}),
      ...(typeof item.ownerArn === "string" ? { ownerArn: item.ownerArn } : {}),
    };
    const bindings = { params, resource };
    if (kind.describe) {
      const d = kind.describe;
      const read = await readOf(aws, d, bindings);
      if (read === "gone") return undefined;
      if ("unreadable" in read) return { ...f, unreadable: read.unreadable };
      const at = { ...bindings, states: { result: read.result } };
      if ((await evaluate(`{% ${d.keep} %}`, at)) !== true) return undefined;
      if (d.deleting && (await evaluate(`{% ${d.deleting} %}`, at)) === true) {
        f.deleting = true;
        const date = d.deletionDate ? await evaluate(`{% ${d.deletionDate} %}`, at) : undefined;
        if (typeof date === "string") f.deletionDate = date;
      }
    }
    if (!kind.tags) return f;
    const read = await readOf(aws, kind.tags, bindings, kind.tags.none);
    if (read === "gone") return undefined;
    if ("unreadable" in read) return { ...f, unreadable: read.unreadable };
    const tags = read.result
      ? ((await evaluate(`{% ${kind.tags.tags} %}`, { ...bindings, states: { result: read.result } })) as
          | Tag[]
          | undefined)
      : [];
    return tagged(f, tags);
  });
}

/** The resource with its run and stage tags. */
function tagged(found: Found, tags: Tag[] | undefined): Found {
  const value = (key: string) => {
    const tag = tags?.find((t) => t.Key === key);
    return tag ? (tag.Value ?? "") : undefined;
  };
  const run = value(RUN_TAG);
  const stage = value(STAGE_TAG);
  return { ...found, ...(run !== undefined ? { run } : {}), ...(stage !== undefined ? { stage } : {}) };
}

/**
 * One read of one resource: its answer (undefined for `none`: no tags), gone, or why it cannot be
 * read. A 301 (another Region) and an access denial say whose it is not; anything else that is not
 * retried away is said as AWS said it — the plan keeps what it cannot judge.
 */
async function readOf(
  aws: Aws,
  call: ResourceCall,
  bindings: Bindings,
  none: string[] = [],
): Promise<"gone" | { result: Record<string, unknown> | undefined } | { unreadable: string }> {
  const args = (await render(call.args, bindings)) as Record<string, unknown>;
  try {
    return { result: await aws.read(call.service, call.action, args) };
  } catch (err) {
    if (!(err instanceof AwsError)) throw err;
    if (call.gone?.includes(err.code)) return "gone";
    if (none.includes(err.code)) return { result: undefined };
    return { unreadable: unreadableReason(err) };
  }
}

/** Why a resource could not be read, keyed on the code and status (S3's 301 has no body to name it). */
export function unreadableReason(err: AwsError): string {
  const call = `${err.action}: ${err.code}`;
  // https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html: PermanentRedirect, 301.
  if (err.status === 301 || err.code === "PermanentRedirect")
    return `it is in another Region (${err.action}: 301 PermanentRedirect)`;
  if (err.status === 403 || /^AccessDenied/.test(err.code))
    return `access to it is denied (${call}: ${err.message})`;
  return `${call}: ${err.message}`;
}

/** Every item of a registry listing, following its pagination. */
async function listAll(aws: Aws, listing: Listing, bindings: Bindings): Promise<Record<string, unknown>[]> {
  const all: Record<string, unknown>[] = [];
  const input = (await render(listing.args, bindings)) as Record<string, unknown>;
  let token: string | undefined;
  do {
    const page = await aws.read(
      listing.service,
      listing.action,
      token && listing.next ? { ...input, [listing.next.in]: token } : input,
    );
    const items = await evaluate(`{% ${listing.items} %}`, { ...bindings, states: { result: page } });
    all.push(...((items as Record<string, unknown>[] | undefined) ?? []));
    const truncated = page.Truncated ?? page.IsTruncated;
    token = listing.next && truncated !== false ? (page[listing.next.out] as string | undefined) : undefined;
  } while (token);
  return all;
}

/** Per-resource reads, a few at a time (AWS's latency, not the work, is what a sweep waits on). */
async function mapLimit<T>(
  items: readonly T[],
  fn: (item: T) => Promise<Found | undefined>,
): Promise<Found[]> {
  const out: (Found | undefined)[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(SWEEP_CONCURRENCY, items.length) }, worker));
  return out.filter((f): f is Found => f !== undefined);
}
