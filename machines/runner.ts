import { setTimeout as sleep } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { DiskFullError } from "../lib/files.js";
import { PAGE_APPEND, ROOT_CANNOT_ASSUME, RUN_TAG, STAGE_TAG } from "../steps/build.js";
import {
  ANY_ERROR,
  type CallStep,
  type Check,
  type PollStep,
  type ProbeStep,
  type Service,
  type Step,
} from "../steps/dsl.js";
import { type Bindings, evaluate, render } from "../steps/expr.js";
import type { ResolvedParams } from "../steps/params.js";
import { AwsError, type Clients, type Credentials, isReadAction } from "./aws.js";

/**
 * Executes stage steps against AWS (or the simulator) through the SDK: the local engine's half of
 * "one definition, two engines". Calls that change the account are journaled — intent before,
 * result after — and on a resumed run an effect the journal shows done is not repeated: its
 * variables are restored from the journal and the run goes on (reads are always repeated; they
 * change nothing). An intent without a result (a crash mid-call) is resolved by looking at the
 * account: the call's "already exists" error, or for keys a search by the run's tag.
 */

/** How the engine tells the outside world what happens (checkpoints, progress). */
export interface RunnerHooks {
  /** Before an effect's call: must be durable before the call is sent. */
  intent(entry: EffectRecord): Promise<void>;
  /** After an effect's call succeeded (or was found done). */
  done(entry: EffectRecord & { resourceArn?: string; assigned: Bindings }): Promise<void>;
  /** A journaled effect of this stage attempt, if any (resume). */
  recorded(stepId: string): { phase: "intent" | "done"; assigned?: Bindings } | undefined;
  /**
   * A stage's run records how many of its steps are complete, with the variables they set: a
   * resumed run skips them (a poll that proved a passing state — access denied for a while — is
   * not asked to prove it again once the state has moved on).
   */
  cursor?(): number;
  stepDone?(completed: number, vars: Bindings): Promise<void>;
  /** Polls keep their deadline here so a resumed wait keeps what is left of its budget. */
  deadline(key: string, fallbackMs: number): Promise<number>;
  /** Before the run waits (a poll, a back-off): what it has recorded so far must be durable. */
  settle?(): Promise<void>;
  progress?(event: ProgressEvent): void;
  /** Checked between steps and while waiting: true stops the run (Ctrl-C). */
  stopping?(): boolean;
  now?(): number;
  /** Sleeps (tests and the simulator's clock may shorten waits). */
  sleep?(ms: number): Promise<void>;
}

export interface EffectRecord {
  stageId: string;
  stepId: string;
  service: string;
  action: string;
}

export type ProgressEvent =
  | { kind: "step"; stageId: string; stepId: string; title: string }
  | { kind: "waiting"; stageId: string; stepId: string; waitingFor: string; remainingMs: number }
  | { kind: "retry"; stageId: string; stepId: string; code: string; attempt: number; delayMs: number };

/** A precondition does not hold: the stage is blocked, not failed. */
export class BlockedError extends Error {
  override readonly name = "BlockedError";
}

/** A step failed: the stage fails and rolls back. */
export class StepError extends Error {
  override readonly name = "StepError";
  constructor(
    readonly stepId: string,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The run was asked to stop (SIGINT): state is checkpointed, the stage resumes later. */
export class StoppedError extends Error {
  override readonly name = "StoppedError";
}

export interface RetryPolicy {
  maxAttempts: number;
  baseMs: number;
  maxDelayMs: number;
}

/** Throttling and 5xx: exponential backoff with full jitter (ASL: the same Retry, JitterStrategy FULL). */
export const TRANSIENT_RETRY: RetryPolicy = { maxAttempts: 8, baseMs: 200, maxDelayMs: 10_000 };

/**
 * CloudTrail's LookupEvents: 2 a second per account and Region, shared by everyone in it (a class
 * running the lab in one account): throttling is expected there, so more and longer retries. With
 * ten executions polling one account, about two lookups in three are throttled: 16 attempts lost
 * a whole run now and then (0.65^16 ≈ 0.1% a lookup, and a class makes hundreds). 30 attempts back
 * off for about four minutes on average and at most eight and a half, less than the lab's default
 * wait for CloudTrail on AWS (`trailWaitSeconds`, 20 minutes).
 */
export const LOOKUP_RETRY: RetryPolicy = { maxAttempts: 30, baseMs: 1000, maxDelayMs: 20_000 };

/** The retry policy of an action, the same in both engines (the ASL export's Retry follows it). */
export function retryPolicyFor(
  service: string,
  action: string,
  base: RetryPolicy = TRANSIENT_RETRY,
): RetryPolicy {
  return service === "cloudtrail" && action === "LookupEvents" ? LOOKUP_RETRY : base;
}

/** How long to wait before retry `attempt` (1, 2, ...): exponential, capped, full jitter. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseMs * 2 ** (attempt - 1));
  return Math.floor(Math.random() * cap) + 1;
}

/** The newest log files read per look: hours of a trail's files on AWS, a whole lab on the simulator. */
const MAX_LOG_FILES = 1000;

export class StageRunner {
  private keyUser?: { credentials: Credentials; expires: number };
  readonly vars: Bindings;
  private readonly sensitive = new Set<string>();

  constructor(
    private readonly clients: Clients,
    private readonly params: ResolvedParams,
    private readonly runId: string,
    private readonly stageId: string,
    private readonly hooks: RunnerHooks,
    vars: Bindings = {},
    private readonly retryPolicy: RetryPolicy = TRANSIENT_RETRY,
  ) {
    this.vars = { ...vars };
  }

  /** The variables that may be checkpointed: all but what sensitive, ephemeral and probe steps assigned. */
  persistableVars(): Bindings {
    const out: Bindings = {};
    for (const [k, v] of Object.entries(this.vars)) if (!this.sensitive.has(k)) out[k] = v;
    return out;
  }

  private bindings(extra: Bindings = {}): Bindings {
    return { ...this.vars, params: this.params, runId: this.runId, ...extra };
  }

  private now(): number {
    return this.hooks.now?.() ?? Date.now();
  }

  /** Waits, once what the run has recorded so far is durable: a crash while waiting loses nothing. */
  private async wait(ms: number): Promise<void> {
    await this.hooks.settle?.();
    return this.hooks.sleep ? this.hooks.sleep(ms) : sleep(ms);
  }

  async runSteps(steps: readonly Step[], journal: boolean): Promise<void> {
    const start = journal ? (this.hooks.cursor?.() ?? 0) : 0;
    for (const [index, step] of steps.entries()) {
      if (index < start) continue;
      if (this.hooks.stopping?.()) throw new StoppedError("stopped");
      this.hooks.progress?.({ kind: "step", stageId: this.stageId, stepId: step.id, title: step.title });
      switch (step.kind) {
        case "call":
          await this.runCall(step, journal);
          break;
        case "require":
          if ((await evaluate(`{% ${step.condition} %}`, this.bindings())) !== true)
            throw new BlockedError(String(await evaluate(`{% ${step.message} %}`, this.bindings())));
          break;
        case "probe":
          await this.runProbe(step);
          break;
        case "poll":
          await this.runPoll(step);
          break;
      }
      if (journal) await this.hooks.stepDone?.(index + 1, this.persistableVars());
    }
  }

  /** A check: its reads, then its score, evidence and messages. Never changes the account. */
  async runCheck(c: Check): Promise<CheckResult> {
    let error: string | undefined;
    try {
      await this.runSteps(c.read, false);
    } catch (err) {
      // A full disk (the embedded account could not save) says nothing of the account: no score.
      if (err instanceof StoppedError || err instanceof DiskFullError) throw err;
      error = (err as Error).message;
    }
    const b = this.bindings();
    const score = error ? 0 : Number(await evaluate(`{% ${c.score} %}`, b).catch(() => 0));
    const points = Number.isFinite(score) ? Math.max(0, Math.min(c.points, score)) : 0;
    const evidence: Record<string, unknown> = {};
    for (const [k, expr] of Object.entries(c.evidence)) {
      evidence[k] = await evaluate(`{% ${expr} %}`, b).catch(() => undefined);
    }
    const message = async (expr: string) =>
      String((await evaluate(`{% ${expr} %}`, b).catch((e: Error) => `(${e.message})`)) ?? "");
    return {
      id: c.id,
      title: c.title,
      points,
      maxPoints: c.points,
      evidence,
      learner: points < c.points ? (error ?? (await message(c.learner))) : undefined,
      author: points < c.points ? (error ?? (await message(c.author))) : undefined,
    };
  }

  private async assign(
    assign: Record<string, string> | undefined,
    states: Bindings | undefined,
  ): Promise<Bindings> {
    const out: Bindings = {};
    if (!assign) return out;
    for (const [name, template] of Object.entries(assign)) {
      // A call that was skipped or whose error was tolerated leaves its variables null (as ASL's Catch assigns them).
      out[name] = states === undefined ? null : ((await render(template, this.bindings({ states }))) ?? null);
    }
    Object.assign(this.vars, out);
    return out;
  }

  private async runCall(step: CallStep, journal: boolean): Promise<void> {
    if (step.sensitive || step.ephemeral)
      for (const name of Object.keys(step.assign ?? {})) this.sensitive.add(name);
    if (step.when !== undefined && (await evaluate(`{% ${step.when} %}`, this.bindings())) !== true) {
      await this.assign(step.assign, undefined);
      return;
    }
    const effect = journal && step.effect !== undefined;
    const record: EffectRecord = {
      stageId: this.stageId,
      stepId: step.id,
      service: step.service,
      action: step.action,
    };
    let recovering = false;
    if (effect) {
      const seen = this.hooks.recorded(step.id);
      if (seen?.phase === "done") {
        Object.assign(this.vars, seen.assigned ?? {});
        return;
      }
      recovering = seen?.phase === "intent";
      if (!recovering) await this.hooks.intent(record);
    } else if (journal && !isReadAction(step.action)) {
      // A change that is not an effect (a policy put back as the stage goes) is made once what came
      // before it is durable: a run stopped right after it (a crash, a disk that filled) makes it
      // again when resumed, rather than resuming before it, on an account it already changed.
      await this.hooks.settle?.();
    }
    if (recovering && step.action === "CreateKey") {
      // CreateKey has no name to collide with: the key a crash left behind is found by the run's tags.
      const keyId = await this.findTaggedKey();
      if (keyId) {
        const result = await this.aws("kms", "DescribeKey", { KeyId: keyId });
        await this.finishEffect(step, record, await this.assign(step.assign, { result }));
        return;
      }
    }
    // A field that evaluates to nothing fails the step, as it fails a Task in Step Functions.
    const args = (await render(step.args, this.bindings(), "Arguments")) as Record<string, unknown>;
    let pages: Record<string, unknown>[];
    // Sent again after an attempt whose answer was lost (a reset connection, a 5xx): that attempt
    // may have made the change. What is safe to send again: changes that set a state (PutKeyPolicy,
    // PutObject, PutBucketTagging, StartLogging...) and deletions (their NotFound is tolerated) as
    // they are; a create by name fails "already exists", and is then this run's (below, as after a
    // crash); CreateKey has no name, so the key is looked for by the run's tags before a new one is made.
    let resent = false;
    const beforeResend = effect
      ? async (err: AwsError): Promise<Record<string, unknown> | undefined> => {
          if (!err.outcomeUnknown) return undefined;
          resent = true;
          if (step.action !== "CreateKey") return undefined;
          const keyId = await this.findTaggedKey();
          return keyId ? this.aws("kms", "DescribeKey", { KeyId: keyId }) : undefined;
        }
      : undefined;
    try {
      pages = await this.send(step, args, beforeResend);
    } catch (err) {
      if (!(err instanceof AwsError)) throw err;
      if (step.expectError?.errors.includes(err.code)) {
        await this.assign(step.expectError.assign, { errorOutput: { Error: err.code, Cause: err.message } });
        return;
      }
      if (step.tolerate?.includes(err.code)) {
        await this.assign(step.assign, undefined);
        return;
      }
      const exists = step.effect?.exists;
      if (exists?.errors.includes(err.code)) {
        await this.runSteps(exists.read, false);
        const owned = (await evaluate(`{% ${exists.owned} %}`, this.bindings())) === true;
        // After an intent without a result (a crash) or an attempt whose answer was lost, the
        // precondition had found the name free: what is there now is ours.
        if (!owned && !recovering && !resent)
          throw new StepError(
            step.id,
            `${step.title}: it already exists and was not made by this run (${err.code})`,
            err.code,
          );
        await this.finishEffect(step, record, {});
        return;
      }
      throw new StepError(step.id, `${step.title}: ${err.code}: ${err.message}`, err.code);
    }
    if (step.expectError) {
      await this.assign(step.expectError.assign, undefined);
      return;
    }
    const assigned = step.pages
      ? await this.assignPages(step.assign ?? {}, pages)
      : await this.assign(step.assign, { result: pages[0] });
    if (effect) await this.finishEffect(step, record, assigned);
  }

  /**
   * A paged read's variables (CallStep.pages): each expression over each page's result, the values
   * appended page by page with JSONata's own `$append`, as the exported Choice loop assigns them.
   */
  private async assignPages(
    assign: Record<string, string>,
    pages: Record<string, unknown>[],
  ): Promise<Bindings> {
    const out: Bindings = {};
    for (const [name, template] of Object.entries(assign)) {
      let list: unknown = [];
      for (const result of pages) {
        const value = await render(template, this.bindings({ states: { result } }));
        list = await evaluate(`{% ${PAGE_APPEND("$list", "$value")} %}`, { list, value });
      }
      out[name] = list ?? null;
    }
    Object.assign(this.vars, out);
    return out;
  }

  /** The key this run's stage created, by its tags (ListKeys, then ListResourceTags per key). */
  private async findTaggedKey(): Promise<string | undefined> {
    let marker: string | undefined;
    do {
      const page = await this.aws("kms", "ListKeys", marker ? { Marker: marker } : {});
      for (const k of (page.Keys as { KeyId: string }[] | undefined) ?? []) {
        const tags = await this.aws("kms", "ListResourceTags", { KeyId: k.KeyId }).catch((err: unknown) =>
          err instanceof AwsError ? { Tags: [] } : Promise.reject(err),
        );
        const list = (tags.Tags as { TagKey: string; TagValue: string }[] | undefined) ?? [];
        const has = (key: string, value: string) =>
          list.some((t) => t.TagKey === key && t.TagValue === value);
        if (has(RUN_TAG, this.runId) && has(STAGE_TAG, this.stageId)) return k.KeyId;
      }
      marker = page.Truncated ? (page.NextMarker as string) : undefined;
    } while (marker);
    return undefined;
  }

  private async finishEffect(step: CallStep, record: EffectRecord, assigned: Bindings): Promise<void> {
    if (!step.effect) return;
    const arnExpr = step.effect.resource?.arn;
    const resourceArn = arnExpr ? String(await evaluate(`{% ${arnExpr} %}`, this.bindings())) : undefined;
    const keep: Bindings = {};
    for (const name of Object.keys(step.assign ?? {}))
      if (this.vars[name] !== undefined) keep[name] = this.vars[name];
    await this.hooks.done({
      ...record,
      ...(resourceArn ? { resourceArn } : {}),
      assigned: { ...keep, ...assigned },
    });
  }

  /**
   * One call with the engine's retries: transient errors always, the step's own "not yet" errors
   * within budget. `beforeResend` sees each error before the call is sent again, and may answer for
   * it (the key an attempt whose answer was lost had made).
   */
  private async send(
    step: CallStep,
    args: Record<string, unknown>,
    beforeResend?: (err: AwsError) => Promise<Record<string, unknown> | undefined>,
  ): Promise<Record<string, unknown>[]> {
    const started = this.now();
    const budgetMs = step.retry
      ? Number(await evaluate(`{% ${step.retry.budgetSeconds} %}`, this.bindings())) * 1000
      : 0;
    const notYet = (err: AwsError) =>
      (step.retry?.errors.includes(err.code) === true || step.retry?.errors.includes(ANY_ERROR) === true) &&
      this.now() - started < budgetMs;
    const page = (input: Record<string, unknown>) =>
      this.retrying(
        step.id,
        async () => {
          const credentials = step.as === "keyUser" ? await this.keyUserCredentials() : undefined;
          return this.clients.call(step.service, step.action, input, credentials ? { credentials } : {});
        },
        notYet,
        retryPolicyFor(step.service, step.action, this.retryPolicy),
        beforeResend,
      );
    const pages = [await page(args)];
    if (!step.pages) return pages;
    // A shared account's history is longer than one page: the next ones, up to `max`.
    let token = pages[0]!.NextToken as string | undefined;
    for (let n = 1; token && n < step.pages.max; n++) {
      const next = await page({ ...args, NextToken: token });
      pages.push(next);
      token = next.NextToken as string | undefined;
    }
    return pages;
  }

  /**
   * Runs `fn`, retrying throttling, 5xx and broken connections (and what `notYet` accepts) with
   * backoff and full jitter; `beforeResend` may answer instead of a next attempt.
   */
  private async retrying<T>(
    stepId: string,
    fn: () => Promise<T>,
    notYet: (err: AwsError) => boolean = () => false,
    policy: RetryPolicy = this.retryPolicy,
    beforeResend?: (err: AwsError) => Promise<T | undefined>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof AwsError)) throw err;
        if (!notYet(err) && !(err.transient && attempt < policy.maxAttempts)) throw err;
        const answered = await beforeResend?.(err);
        if (answered !== undefined) return answered;
        const delayMs = backoffDelay(policy, attempt);
        this.hooks.progress?.({
          kind: "retry",
          stageId: this.stageId,
          stepId,
          code: err.code,
          attempt,
          delayMs,
        });
        if (this.hooks.stopping?.()) throw new StoppedError("stopped");
        await this.wait(delayMs);
      }
    }
  }

  private aws(
    service: Service,
    action: string,
    input: Record<string, unknown>,
    options: { unsigned?: boolean } = {},
  ) {
    return this.retrying(`${service}.${action}`, () => this.clients.call(service, action, input, options));
  }

  /** The key-user role's session (AssumeRole), renewed before it expires; a new role may need IAM to catch up. */
  private async keyUserCredentials(): Promise<Credentials> {
    if (this.keyUser && this.keyUser.expires - this.now() > 60_000) return this.keyUser.credentials;
    const roleArn = `arn:aws:iam::${this.params.account}:role/${this.params.keyUserRole}`;
    const deadline = this.now() + this.params.propagationWaitSeconds * 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.clients.call("sts", "AssumeRole", {
          RoleArn: roleArn,
          RoleSessionName: "kmslab-key-user",
          DurationSeconds: 900,
        });
        const c = out.Credentials as {
          AccessKeyId: string;
          SecretAccessKey: string;
          SessionToken: string;
          Expiration: string;
        };
        const credentials = {
          accessKeyId: c.AccessKeyId,
          secretAccessKey: c.SecretAccessKey,
          sessionToken: c.SessionToken,
        };
        this.keyUser = { credentials, expires: Date.parse(c.Expiration) };
        return credentials;
      } catch (err) {
        if (!(err instanceof AwsError)) throw err;
        // The root user is refused at once and for good; a role IAM has not propagated yet, for a while.
        const root = err.code === "AccessDenied" && err.message.includes("Roles may not be assumed by root");
        const notYet = err.transient || (err.code === "AccessDenied" && !root);
        if (notYet && this.now() <= deadline) {
          await this.wait(backoffDelay(this.retryPolicy, attempt));
          continue;
        }
        // Not an AwsError: the call that needed the session must not take its AccessDenied for its
        // own (a GetObject expected to be denied, or tolerated while access propagates).
        throw new StepError(
          "keyUser",
          root
            ? `cannot act as the key user: ${ROOT_CANNOT_ASSUME}`
            : `cannot act as the key user (AssumeRole ${roleArn}): ${err.code}: ${err.message}`,
          err.code,
        );
      }
    }
  }

  private async runProbe(step: ProbeStep): Promise<void> {
    const args = (await render(step.args, this.bindings(), "Arguments")) as Record<string, string>;
    const result =
      step.probe === "unsignedGet" ? await this.unsignedGet(args) : await this.readLogFiles(args);
    await this.assign(step.assign, { result });
  }

  /** An anonymous GET of the object: the SDK's request with signing switched off. */
  private async unsignedGet(args: Record<string, unknown>): Promise<Bindings> {
    try {
      const body = await this.aws(
        "s3",
        "GetObject",
        { Bucket: args.Bucket, Key: args.Key },
        { unsigned: true },
      );
      return { status: 200, code: null, bodyLength: String(body.Body ?? "").length };
    } catch (err) {
      if (!(err instanceof AwsError)) throw err;
      return { status: err.status ?? 0, code: err.code };
    }
  }

  /**
   * The delivered CloudTrail log files under a prefix, newest first, gunzipped: their records. With
   * `Want` (event names) and `ContextArn`, reading stops once every wanted event about that object is
   * found — a bucket may hold many files, and the newest are the ones that matter.
   */
  private async readLogFiles(args: Record<string, unknown>): Promise<Bindings> {
    const keys: { key: string; modified: string }[] = [];
    let token: string | undefined;
    do {
      const page: Record<string, unknown> = await this.aws("s3", "ListObjectsV2", {
        Bucket: args.Bucket,
        Prefix: args.Prefix,
        ...(token ? { ContinuationToken: token } : {}),
      }).catch((err: unknown) => {
        // No bucket, no log file: the checks say what is missing.
        if (err instanceof AwsError && err.code === "NoSuchBucket") return { Contents: [] };
        throw err;
      });
      for (const o of (page.Contents as { Key?: string; LastModified?: string }[] | undefined) ?? [])
        if (o.Key?.endsWith(".json.gz")) keys.push({ key: o.Key, modified: o.LastModified ?? "" });
      token = page.NextContinuationToken as string | undefined;
    } while (token);
    keys.sort((a, b) => b.modified.localeCompare(a.modified) || b.key.localeCompare(a.key));
    if (typeof args.After === "number") {
      // The events' time is known: only files delivered since can hold them, the earliest first
      // (a minute's slack for S3's second-grained times).
      const after = args.After - 60_000;
      const since = keys.filter((k) => Date.parse(k.modified) >= after).reverse();
      keys.splice(0, keys.length, ...since);
    }
    const want = new Set((args.Want as string[] | undefined) ?? []);
    const records: {
      eventName?: string;
      requestParameters?: { encryptionContext?: Record<string, string> };
    }[] = [];
    // From the events' time the first file is likely the one: one first, then more at a time.
    let batch = typeof args.After === "number" ? 1 : 8;
    for (let i = 0; i < Math.min(keys.length, MAX_LOG_FILES); i += batch, batch = Math.min(8, batch * 2)) {
      const bodies = await Promise.all(
        keys
          .slice(i, i + batch)
          .map(({ key }) =>
            this.retrying("logFiles", () =>
              this.clients.call("s3", "GetObject", { Bucket: args.Bucket, Key: key }, { binaryBody: true }),
            ),
          ),
      );
      for (const out of bodies) {
        try {
          const text = gunzipSync(Buffer.from(String(out.Body), "base64")).toString("utf8");
          records.push(...((JSON.parse(text) as { Records?: typeof records }).Records ?? []));
        } catch {
          // Not a CloudTrail log file (someone else's object under the prefix): not ours to judge.
        }
      }
      if (want.size > 0) {
        const found = new Set(
          records
            .filter((r) => r.requestParameters?.encryptionContext?.["aws:s3:arn"] === args.ContextArn)
            .map((r) => r.eventName),
        );
        if ([...want].every((w) => found.has(w))) break;
      }
    }
    return { files: keys.length, records };
  }

  private async runPoll(step: PollStep): Promise<void> {
    const budgetMs = Number(await evaluate(`{% ${step.budgetSeconds} %}`, this.bindings())) * 1000;
    const intervalMs = Number(await evaluate(`{% ${step.intervalSeconds} %}`, this.bindings())) * 1000;
    const deadline = await this.hooks.deadline(`${this.stageId}.${step.id}`, this.now() + budgetMs);
    for (;;) {
      await this.runSteps(step.steps, false);
      if ((await evaluate(`{% ${step.until} %}`, this.bindings())) === true) return;
      const remainingMs = deadline - this.now();
      if (remainingMs <= 0)
        throw new StepError(
          step.id,
          `${step.title}: gave up waiting for ${step.waitingFor} after ${Math.round(budgetMs / 1000)} s`,
        );
      // Durable before anyone is told the run waits (wait() would write it only after).
      await this.hooks.settle?.();
      this.hooks.progress?.({
        kind: "waiting",
        stageId: this.stageId,
        stepId: step.id,
        waitingFor: step.waitingFor,
        remainingMs,
      });
      if (this.hooks.stopping?.()) throw new StoppedError("stopped");
      await this.wait(Math.min(intervalMs, remainingMs));
    }
  }
}

export interface CheckResult {
  id: string;
  title: string;
  points: number;
  maxPoints: number;
  evidence: Record<string, unknown>;
  learner?: string;
  author?: string;
}
