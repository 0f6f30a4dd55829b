import { AwsError, type CallOptions, Clients, isReadAction } from "../machines/aws.js";
import { verifyStage } from "../machines/engine.js";
import { type CheckResult, type RunnerHooks, StageRunner } from "../machines/runner.js";
import { redact, type StateFile, TOOL_VERSION } from "../state/index.js";
import type { Service, StageDef, StageId } from "../steps/dsl.js";
import type { ResolvedParams } from "../steps/params.js";
import { LAB_VERSION, STAGES } from "../steps/registry.js";

/**
 * Grading: every stage's verification run against the account as it stands, strictly read-only,
 * with or without the state file of a kmslab run. The checks (steps/stages) read only the
 * parameters and the account, so a lab done by hand is graded exactly like one kmslab ran; a state
 * file adds what was planned (each stage's recorded status and times) to set against what is there.
 */

/** passed: every point · partial: some · failed: none, though the stage was started · notAttempted: nothing of it exists. */
export type Outcome = "passed" | "partial" | "failed" | "notAttempted";

export interface GradedCheck {
  id: string;
  title: string;
  points: number;
  maxPoints: number;
  outcome: Exclude<Outcome, "notAttempted">;
  /** What the check saw: ARNs, event ids, error codes, times. */
  evidence: Record<string, unknown>;
  /** For the learner, when a point is missing. */
  learner?: string;
  /** For the instructor (the author's view), when a point is missing. */
  author?: string;
}

export interface GradedStage {
  id: StageId;
  title: string;
  points: number;
  maxPoints: number;
  outcome: Outcome;
  dependsOn: StageId[];
  /** When grading ran this stage's checks, and how long they took. */
  gradedAt: string;
  gradingMs: number;
  /** What the state file records of the run (absent for a lab done by hand). */
  run?: {
    status: string;
    attempts: number;
    startedAt?: string;
    endedAt?: string;
    durationMs?: number;
    error?: string;
  };
  checks: GradedCheck[];
}

/** One grading of one learner's lab: saved as JSON (schema/report.schema.json) and rendered by report/. */
export interface GradeResult {
  schemaVersion: 1;
  tool: { name: "kmslab"; version: string };
  labVersion: string;
  learner?: string;
  target: { kind: string; region: string; accountId: string; endpoint?: string };
  params: Record<string, unknown>;
  /** The kmslab run the state file records, if any. */
  run?: { runId: string; createdAt: string; updatedAt: string };
  startedAt: string;
  endedAt: string;
  durationMs: number;
  score: number;
  maxScore: number;
  percent: number;
  /** The pass mark in percent (lab.md: 80). */
  threshold: number;
  passed: boolean;
  stages: GradedStage[];
}

export const DEFAULT_THRESHOLD = 80;

export interface GradeOptions {
  /** The account's clients; grading wraps them so that nothing but reads can be sent. */
  clients: Clients;
  params: ResolvedParams;
  target: GradeResult["target"];
  state?: StateFile;
  learner?: string;
  threshold?: number;
  now?: () => number;
}

/** Grades the lab as the account stands. Makes no call that changes the account. */
export async function gradeLab(o: GradeOptions): Promise<GradeResult> {
  const now = o.now ?? Date.now;
  const started = now();
  const clients = new GradingClients(o.clients);
  const runId = o.state?.runId ?? "grade";
  // Grading takes the account as it is this moment: it does not wait for IAM to accept a role.
  const params: ResolvedParams = { ...o.params, propagationWaitSeconds: 0 };
  const hooks: RunnerHooks = {
    intent: () => Promise.reject(new ReadOnlyError("grading makes no change (an effect was about to run)")),
    done: () => Promise.reject(new ReadOnlyError("grading makes no change")),
    recorded: () => undefined,
    deadline: (_key, fallback) => Promise.resolve(fallback),
    now,
  };
  // The stages' checks are independent reads: all made at once, each stage timed on its own.
  const graded = await Promise.all(
    STAGES.map(async (def) => {
      const t0 = now();
      const checks = await verifyStage(
        def,
        (vars) => new StageRunner(clients, params, runId, def.id, hooks, vars),
      );
      return { def, checks, at: t0, ms: now() - t0 };
    }),
  );
  const outcomes = new Map<StageId, Outcome>();
  const stages: GradedStage[] = graded.map(({ def, checks, at, ms }) => {
    const stage = gradedStage(def, checks, outcomes, o.state);
    stage.gradedAt = new Date(at).toISOString();
    stage.gradingMs = ms;
    outcomes.set(def.id, stage.outcome);
    return stage;
  });
  const score = stages.reduce((n, s) => n + s.points, 0);
  const maxScore = stages.reduce((n, s) => n + s.maxPoints, 0);
  const percent = Math.round((score / maxScore) * 1000) / 10;
  const threshold = o.threshold ?? DEFAULT_THRESHOLD;
  const ended = now();
  const result: GradeResult = {
    schemaVersion: 1,
    tool: { name: "kmslab", version: TOOL_VERSION },
    labVersion: LAB_VERSION,
    ...(o.learner !== undefined ? { learner: o.learner } : {}),
    target: o.target,
    params: { ...o.params },
    ...(o.state
      ? { run: { runId: o.state.runId, createdAt: o.state.createdAt, updatedAt: o.state.updatedAt } }
      : {}),
    startedAt: new Date(started).toISOString(),
    endedAt: new Date(ended).toISOString(),
    durationMs: ended - started,
    score,
    maxScore,
    percent,
    threshold,
    passed: percent >= threshold,
    stages,
  };
  // Evidence is what the account answered: a credential in it (named as one, or one this process
  // holds) is redacted, never saved.
  return redact(result);
}

function gradedStage(
  def: StageDef,
  results: CheckResult[],
  earlier: Map<StageId, Outcome>,
  state: StateFile | undefined,
): GradedStage {
  const checks: GradedCheck[] = results.map((c) => ({
    id: c.id,
    title: c.title,
    points: c.points,
    maxPoints: c.maxPoints,
    outcome: c.points >= c.maxPoints ? "passed" : c.points > 0 ? "partial" : "failed",
    evidence: defined(c.evidence),
    ...(c.learner ? { learner: c.learner } : {}),
    ...(c.author ? { author: c.author } : {}),
  }));
  const points = checks.reduce((n, c) => n + c.points, 0);
  const record = state?.stages[def.id];
  const run: GradedStage["run"] = record
    ? {
        status: record.status,
        attempts: record.attempts,
        ...(record.startedAt ? { startedAt: record.startedAt } : {}),
        ...(record.endedAt ? { endedAt: record.endedAt } : {}),
        ...(record.startedAt && record.endedAt
          ? { durationMs: Date.parse(record.endedAt) - Date.parse(record.startedAt) }
          : {}),
        ...(record.error ? { error: record.error.message } : {}),
      }
    : undefined;
  const outcome: Outcome =
    points >= def.points
      ? "passed"
      : points > 0
        ? "partial"
        : attempted(def, checks, earlier)
          ? "failed"
          : "notAttempted";
  return {
    id: def.id,
    title: def.title,
    points,
    maxPoints: def.points,
    outcome,
    dependsOn: [...def.dependsOn],
    gradedAt: "",
    gradingMs: 0,
    ...(run ? { run } : {}),
    checks,
  };
}

/**
 * Whether a stage that scored nothing was started at all: what it makes is there (a key, a trail,
 * an object, a key-policy change). A stage whose dependency was not attempted was not either.
 */
function attempted(def: StageDef, checks: GradedCheck[], earlier: Map<StageId, Outcome>): boolean {
  if (def.dependsOn.some((d) => earlier.get(d) === "notAttempted")) return false;
  const seen = (check: string, key: string) => {
    const v = checks.find((c) => c.id === check)?.evidence[key];
    return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
  };
  switch (def.id) {
    case "create-key":
      return seen("key", "keyArn") || seen("key", "otherAliases");
    case "trail-to-bucket":
      return seen("delivers", "trailArn") || seen("private", "blockPublicAccess");
    case "sse-kms-upload":
      return seen("encrypted", "serverSideEncryption");
    case "public-access-denied":
      return true;
    case "trail-key-usage":
      return true;
    case "key-user-access":
      return seen("sequence", "putKeyPolicyEvents") || seen("sequence", "deniedEvents");
  }
}

/** Evidence without the values nothing was found for (JSON has no undefined). */
function defined(evidence: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(evidence)) if (v !== undefined) out[k] = v;
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}

export class ReadOnlyError extends Error {
  override readonly name = "ReadOnlyError";
}

/**
 * The operations a grading may send: reads, and AssumeRole (to read as the key user; it issues a
 * session and changes no resource — CloudTrail logs it as read-only). Anything else is refused
 * before it leaves the process, so grading is read-only by construction as well as by test.
 */
export function isGradingRead(service: Service, action: string): boolean {
  return isReadAction(action) || (service === "sts" && action === "AssumeRole");
}

/**
 * The account's clients as grading uses them: only reads (isGradingRead) pass, and one grading
 * makes each distinct read once — the account is graded as one moment, and the checks of several
 * stages that read the same thing (the key by its alias, the key's CloudTrail events) share the
 * answer.
 */
export class GradingClients extends Clients {
  private readonly answers = new Map<string, Promise<Record<string, unknown>>>();

  constructor(private readonly inner: Clients) {
    super(inner.base, {}, 0);
  }

  override call(
    service: Service,
    action: string,
    input: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<Record<string, unknown>> {
    if (!isGradingRead(service, action))
      return Promise.reject(new ReadOnlyError(`grading is read-only: ${service} ${action} was refused`));
    if (service === "sts" && action === "AssumeRole") return this.inner.call(service, action, input, options);
    const key = JSON.stringify([
      service,
      action,
      input,
      options.credentials?.accessKeyId ?? "",
      options.unsigned === true,
      options.binaryBody === true,
    ]);
    let answer = this.answers.get(key);
    if (!answer) {
      answer = this.inner.call(service, action, input, options);
      // A transient error is not the account's answer: the next ask tries again.
      answer.catch((err: unknown) => {
        if (!(err instanceof AwsError) || err.transient) this.answers.delete(key);
      });
      this.answers.set(key, answer);
    }
    return answer;
  }

  override destroy(): void {
    this.answers.clear();
  }
}
