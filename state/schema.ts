import { randomUUID } from "node:crypto";
import { z } from "zod";
import pkg from "../package.json" with { type: "json" };

/**
 * The state file's format: an envelope around XState's persisted snapshot (Terraform's statemgr
 * shape). The envelope says which format and which tool wrote it, which lineage it belongs to and
 * how many changes it has seen; the engine's own data (parameters, snapshot, per-stage records,
 * effect journal, resource ledger) sits inside it. Validated with zod on every read and write.
 */

/** Bumped on any change that an older kmslab could misread; files of a newer version are refused. */
export const STATE_FORMAT_VERSION = 1;

/** This kmslab's version, recorded as the writer of every state file. */
export const TOOL_VERSION: string = pkg.version;

/**
 * A JSON value, typed `unknown` so that the engine can store XState snapshots and runner variables
 * without casts, but checked to survive JSON.stringify/parse unchanged: SDK blobs (Uint8Array),
 * Dates, Maps, NaN and the like are refused with the path of the offending field.
 */
const json = z.unknown().superRefine((value, ctx) => {
  const path: PropertyKey[] = [];
  const what = firstNonJson(value, path);
  if (what) ctx.addIssue({ code: "custom", path, message: `${what} is not JSON` });
});

/** What in `value` would not survive JSON, if anything; `path` is left pointing at it. */
function firstNonJson(value: unknown, path: PropertyKey[]): string | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return undefined;
  if (typeof value === "number") return Number.isFinite(value) ? undefined : `the number ${value}`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      const bad = firstNonJson(value[i], path);
      if (bad) return bad;
      path.pop();
    }
    return undefined;
  }
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null)
      return `a ${value.constructor?.name ?? "non-plain object"}`;
    for (const k in value) {
      const v = (value as Record<string, unknown>)[k];
      // undefined members vanish in JSON.stringify, as intended for optional fields.
      if (v === undefined || !Object.hasOwn(value, k)) continue;
      path.push(k);
      const bad = firstNonJson(v, path);
      if (bad) return bad;
      path.pop();
    }
    return undefined;
  }
  return value === undefined ? "undefined" : `a ${typeof value}`;
}

const timestamp = z.iso.datetime({ offset: true });

/** Where the lab runs: the embedded simulator, an endpoint (`--endpoint-url`), or AWS itself. */
export const targetSchema = z.object({
  kind: z.enum(["sim", "endpoint", "aws"]),
  endpoint: z.string().optional(),
  region: z.string().min(1),
  accountId: z.string().regex(/^\d{12}$/, "must be a 12-digit AWS account id"),
});
export type Target = z.infer<typeof targetSchema>;

/**
 * A stage's place in the lab: pending (dependencies not met), running, verifying, then passed,
 * failed (and its own effects rolled back) or blocked (a precondition does not hold); rolledBack once
 * teardown has undone it.
 */
export const stageStatusSchema = z.enum([
  "pending",
  "running",
  "verifying",
  "passed",
  "failed",
  "blocked",
  "rolledBack",
]);
export type StageStatus = z.infer<typeof stageStatusSchema>;

/** Why a stage failed or was blocked: an AWS error code (or the engine's own) and its message. */
export const stageErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  at: timestamp,
});
export type StageError = z.infer<typeof stageErrorSchema>;

/** One stage's record: its status, how many attempts, what it produced and what proves it. */
export const stageRecordSchema = z.object({
  status: stageStatusSchema,
  attempts: z.number().int().nonnegative(),
  startedAt: timestamp.optional(),
  endedAt: timestamp.optional(),
  /** Named values later stages read (key ARN, bucket names...), as the runner's variables. */
  outputs: z.record(z.string(), json),
  /** What the verification saw (ARNs, event ids, error codes, timestamps), for the report. */
  evidence: z.array(json),
  error: stageErrorSchema.optional(),
});
export type StageRecord = z.infer<typeof stageRecordSchema>;

/** An effect's phase in the journal; the latest entry per (stageId, effectId) is its state. */
export const effectPhaseSchema = z.enum(["intent", "done", "failed", "undone"]);
export type EffectPhase = z.infer<typeof effectPhaseSchema>;

/**
 * One entry of the effect journal: an `intent` is written (and made durable) before a call that
 * changes the account, `done` or `failed` after it, `undone` when rollback or teardown reversed it.
 * A resumed run reads the latest phase per (stageId, effectId) to decide what not to repeat.
 */
export const journalEntrySchema = z.object({
  /** 1, 2, 3... in the order written; never reused within a lineage. */
  seq: z.number().int().positive(),
  stageId: z.string().min(1),
  /** The step's id within its stage (the ASL state name with the stage id). */
  effectId: z.string().min(1),
  service: z.string().min(1),
  operation: z.string().min(1),
  phase: effectPhaseSchema,
  at: timestamp,
  /** What was asked, redacted: never a secret (see assertNoSecrets). */
  input: json.optional(),
  /** What came back that a resumed run needs (the variables the step assigned), redacted. */
  result: json.optional(),
  resourceArn: z.string().optional(),
});
export type JournalEntry = z.infer<typeof journalEntrySchema>;

/** A resource this run created: what teardown deletes, newest first, and what its sweep expects. */
export const ledgerEntrySchema = z.object({
  arn: z.string().min(1),
  /** CloudFormation-style type name, e.g. `AWS::KMS::Key`. */
  type: z.string().min(1),
  stageId: z.string().min(1),
  createdAt: timestamp,
  deletedAt: timestamp.optional(),
  tags: z.record(z.string(), z.string()),
});
export type LedgerEntry = z.infer<typeof ledgerEntrySchema>;

/** What one teardown found or did to one resource (the teardown record's rows). */
export const teardownItemSchema = z.object({
  arn: z.string().min(1),
  type: z.string().min(1),
  stageId: z.string().optional(),
  /** removed by this teardown · gone (already, or deleted by hand) · pendingDeletion (a key) · kept · failed. */
  outcome: z.enum(["removed", "gone", "pendingDeletion", "kept", "failed"]),
  reason: z.string().optional(),
  /** A key's scheduled deletion date. */
  deletionDate: z.string().optional(),
  at: timestamp,
});
export type TeardownItem = z.infer<typeof teardownItemSchema>;

/**
 * The teardown of this run: started, each resource's outcome as it happens (written after every
 * deletion, so an interrupted teardown shows how far it got), and, once it ended, what remains.
 * Optional: state files written before teardown existed read as they did.
 */
export const teardownRecordSchema = z.object({
  startedAt: timestamp,
  endedAt: timestamp.optional(),
  allRuns: z.boolean(),
  items: z.array(teardownItemSchema),
  /** ARNs of what should have gone and is still there (set when the teardown ended). */
  remaining: z.array(z.string()).optional(),
});
export type TeardownRecord = z.infer<typeof teardownRecordSchema>;

/** The whole state file. Unknown keys are dropped on read: a writer that adds any bumps the format. */
export const stateFileSchema = z.object({
  formatVersion: z.literal(STATE_FORMAT_VERSION),
  /** Fixed when the state is created: a file of another lineage is another lab, never overwritten. */
  lineage: z.uuid(),
  /** Incremented by the store on every write that changes something (optimistic concurrency). */
  serial: z.number().int().nonnegative(),
  tool: z.object({ name: z.literal("kmslab"), version: z.string().min(1) }),
  /** The machine definition's version: a snapshot of another shape is not restored. */
  machineVersion: z.string().min(1),
  target: targetSchema,
  runId: z.string().min(1),
  /** The lab parameters as resolved; their own zod schema (steps/params.ts) checks them. */
  params: z.record(z.string(), z.unknown()),
  /** XState's getPersistedSnapshot(), JSON; undefined before the machine first runs. */
  snapshot: json.optional(),
  stages: z.record(z.string(), stageRecordSchema),
  journal: z.array(journalEntrySchema),
  ledger: z.array(ledgerEntrySchema),
  /** The latest teardown (kmslab teardown --yes), absent until one ran. */
  teardown: teardownRecordSchema.optional(),
  createdAt: timestamp,
  updatedAt: timestamp,
});
export type StateFile = z.infer<typeof stateFileSchema>;

/** What createState needs: where the lab runs, its run id, the machine version and the parameters. */
export interface NewStateInit {
  target: Target;
  runId: string;
  machineVersion: string;
  params: Record<string, unknown>;
  /** Defaults to now. */
  now?: Date;
  /** Defaults to a fresh UUID. */
  lineage?: string;
}

/**
 * A fresh state: new lineage, serial 0 (the first write makes it 1), no snapshot, no stages, an
 * empty journal and ledger. Nothing is written until the store's write().
 */
export function createState(init: NewStateInit): StateFile {
  const at = (init.now ?? new Date()).toISOString();
  return {
    formatVersion: STATE_FORMAT_VERSION,
    lineage: init.lineage ?? randomUUID(),
    serial: 0,
    tool: { name: "kmslab", version: TOOL_VERSION },
    machineVersion: init.machineVersion,
    target: { ...init.target },
    runId: init.runId,
    params: structuredClone(init.params),
    stages: {},
    journal: [],
    ledger: [],
    createdAt: at,
    updatedAt: at,
  };
}
