import { randomBytes, randomInt } from "node:crypto";
import type { ServiceError } from "./core/errors.js";
import { uuid } from "./core/random.js";
import { type CallContext, type OperationFn, replaceContents, type ServiceProvider } from "./core/service.js";
import { CloudTrailService } from "./services/cloudtrail/provider.js";
import { emptyIamState } from "./services/iam/model.js";
import { IamService } from "./services/iam/provider.js";
import { emptyKmsState } from "./services/kms/model.js";
import { KmsService } from "./services/kms/provider.js";
import { emptyS3State } from "./services/s3/model.js";
import { S3Service } from "./services/s3/provider.js";
import { StatesService } from "./services/states/provider.js";
import { StsService } from "./services/sts/provider.js";

/**
 * How faithfully the account imitates AWS's timing. `instant` (what tests use) applies every change
 * at once; `standard` (the CLI's default) keeps CloudTrail about a second behind, so a lab sees the
 * waiting it must do on AWS without waiting long; `realistic` uses AWS-like minutes and IAM's
 * propagation delay, on whatever clock the account reads (tests pass one they can advance).
 */
export interface AccountOptions {
  /** New IAM principals are not usable (AssumeRole, key/bucket policies) for this long. */
  propagationDelayMs: number;
  /** A key policy put with PutKeyPolicy takes effect this long after (the one before holds meanwhile). */
  keyPolicyPropagationMs: number;
  /** An event shows in CloudTrail's LookupEvents this long after its call. */
  trailLookupDelayMs: number;
  /** A logging trail delivers a log file of its pending records this often (AWS: about 5 minutes). */
  trailDeliveryIntervalMs: number;
  /** LookupEvents allowed per second per account and Region (AWS: 2); 0 lifts the limit (benchmarks). */
  trailLookupsPerSecond: number;
}

export const PROFILES: Record<string, AccountOptions> = {
  instant: {
    propagationDelayMs: 0,
    keyPolicyPropagationMs: 0,
    trailLookupDelayMs: 0,
    trailDeliveryIntervalMs: 0,
    trailLookupsPerSecond: 2,
  },
  standard: {
    propagationDelayMs: 0,
    keyPolicyPropagationMs: 0,
    trailLookupDelayMs: 1_000,
    trailDeliveryIntervalMs: 1_000,
    trailLookupsPerSecond: 2,
  },
  realistic: {
    propagationDelayMs: 8_000,
    // About what a lab run on AWS saw (a key user taken out kept decrypting for ~40 s); AWS says
    // only "within seconds, ... in some cases several minutes".
    keyPolicyPropagationMs: 40_000,
    trailLookupDelayMs: 180_000,
    trailDeliveryIntervalMs: 300_000,
    trailLookupsPerSecond: 2,
  },
};

/** What a listener learns about each completed call (CloudTrail records every one of them). */
export interface CallRecord {
  service: string;
  eventSource: string;
  operation: string;
  readOnly: boolean;
  input: Record<string, unknown>;
  output?: unknown;
  error?: ServiceError;
  ctx: CallContext;
}

/** A call's record, built in one shape for the dispatcher's calls and a service's calls to another. */
export function callRecord(
  provider: ServiceProvider,
  operation: string,
  readOnly: boolean,
  input: Record<string, unknown>,
  ctx: CallContext,
  outcome: { output: unknown } | { error: ServiceError },
): CallRecord {
  return {
    service: provider.service,
    eventSource: provider.eventSource,
    operation,
    readOnly,
    input,
    output: "output" in outcome ? outcome.output : undefined,
    error: "error" in outcome ? outcome.error : undefined,
    ctx,
  };
}

/** The JSON document that holds a whole account; persisted atomically by the store. */
export interface AccountState {
  formatVersion: 1;
  accountId: string;
  createdAt: string;
  /** The admin user created with the account; its access key is in the IAM state. */
  adminUserName: string;
  services: Record<string, unknown>;
}

/** A clock the simulator reads; tests may replace it to move time (credential expiry, skew). */
export type Clock = () => Date;

/**
 * One simulated AWS account: its identity, its services and the state they keep. Providers reach
 * each other through it (KMS asks IAM for a caller's policies; STS asks IAM for a role).
 */
export class Account {
  readonly accountId: string;
  readonly createdAt: string;
  readonly adminUserName: string;
  readonly iam: IamService;
  readonly sts: StsService;
  readonly kms: KmsService;
  readonly s3: S3Service;
  readonly cloudtrail: CloudTrailService;
  readonly states: StatesService;
  private readonly listeners: ((record: CallRecord) => void)[] = [];
  private readonly tickers: ((now: Date) => void)[] = [];
  private readonly commitHooks: (() => void)[] = [];
  private readonly rollbackHooks: (() => void)[] = [];
  private dirty = false;

  /**
   * @param dataDir the simulator's data directory when the account is persistent: services keep
   *   what does not belong in `account.json` there (S3 object bodies, CloudTrail's event log).
   *   Undefined for an in-memory account.
   */
  constructor(
    state: AccountState,
    readonly options: AccountOptions = PROFILES.instant!,
    readonly clock: Clock = () => new Date(),
    readonly dataDir?: string,
  ) {
    this.accountId = state.accountId;
    this.createdAt = state.createdAt;
    this.adminUserName = state.adminUserName;
    this.iam = new IamService(this, state.services.iam as IamService["state"] | undefined);
    this.sts = new StsService(this, state.services.sts as StsService["state"] | undefined);
    this.kms = new KmsService(this, state.services.kms as KmsService["state"] | undefined);
    this.s3 = new S3Service(this, state.services.s3 as S3Service["state"] | undefined);
    this.cloudtrail = new CloudTrailService(
      this,
      state.services.cloudtrail as CloudTrailService["state"] | undefined,
    );
    this.states = new StatesService(this, state.services.states as StatesService["state"] | undefined);
  }

  /** Every service of the account, as the simulator registers them. */
  get providers(): ServiceProvider[] {
    return [this.kms, this.iam, this.sts, this.s3, this.cloudtrail, this.states];
  }

  /** A brand-new account: random 12-digit id, an `admin` user with full access and an access key. */
  static create(options?: AccountOptions, clock?: Clock, dataDir?: string): Account {
    const accountId = String(randomInt(100_000, 999_999)) + String(randomInt(100_000, 999_999));
    const account = new Account(
      {
        formatVersion: 1,
        accountId,
        createdAt: (clock ?? (() => new Date()))().toISOString(),
        adminUserName: "admin",
        services: {},
      },
      options,
      clock,
      dataDir,
    );
    account.iam.bootstrapAdmin(account.adminUserName);
    return account;
  }

  now(): Date {
    return this.clock();
  }

  /** Listens to every completed call, from clients or between services; returns the unsubscribe. */
  observe(listener: (record: CallRecord) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  get observed(): boolean {
    return this.listeners.length > 0;
  }

  emit(record: CallRecord): void {
    for (const listener of this.listeners) listener(record);
  }

  /**
   * One service calling another inside the account, as AWS's services do: S3 calling KMS for an
   * SSE-KMS object on the requester's behalf (ctx carries the requester and `viaService`), or
   * CloudTrail writing a log file into S3 as `cloudtrail.amazonaws.com`. The call is authorised
   * by the callee as any other and observed (so CloudTrail records it); it is not a client request
   * (no faults, not counted). Returns the output or throws the callee's ServiceError.
   */
  call<T = unknown>(
    provider: ServiceProvider,
    operation: string,
    input: Record<string, unknown>,
    ctx: CallContext,
  ): T {
    const info = provider.operations[operation];
    if (!info) throw new Error(`${provider.service} has no operation ${operation}`);
    const fn = (provider as unknown as Record<string, OperationFn>)[operation]!;
    let output: unknown;
    try {
      output = fn.call(provider, input, ctx);
    } catch (err) {
      if (this.listeners.length > 0 && (err as ServiceError).name === "ServiceError")
        this.emit(callRecord(provider, operation, info.readOnly, input, ctx, { error: err as ServiceError }));
      throw err;
    }
    if (output instanceof Promise) throw new Error(`${provider.service}.${operation} is asynchronous`);
    if (!info.readOnly) this.changed();
    if (this.listeners.length > 0)
      this.emit(callRecord(provider, operation, info.readOnly, input, ctx, { output }));
    return output as T;
  }

  /** Registers work that runs before each request, given the account's time (CloudTrail delivery). */
  onTick(fn: (now: Date) => void): void {
    this.tickers.push(fn);
  }

  tick(): void {
    if (this.tickers.length === 0) return;
    const now = this.now();
    for (const fn of this.tickers) fn(now);
  }

  /** Marks the account as changed outside a mutating operation (a delivered log file), to be saved. */
  changed(): void {
    this.dirty = true;
  }

  /** Whether anything changed since the last call; resets the mark. */
  takeChanged(): boolean {
    const was = this.dirty;
    this.dirty = false;
    return was;
  }

  /**
   * Runs `fn` once the account's state has been saved (at once for an in-memory account): files a
   * saved state no longer refers to (a deleted object's body) are removed only then, so a crash in
   * between leaves an orphan file, never a state that points at nothing.
   */
  afterCommit(fn: () => void): void {
    this.commitHooks.push(fn);
  }

  /**
   * Runs `fn` if the changes since the last save are rolled back instead (a persistent account
   * whose save failed): a file written for a change that is undone (a new object's body) goes.
   */
  onRollback(fn: () => void): void {
    this.rollbackHooks.push(fn);
  }

  /** Called by the simulator after each save. */
  committed(): void {
    if (this.commitHooks.length > 0) for (const fn of this.commitHooks.splice(0)) fn();
    if (this.rollbackHooks.length > 0) this.rollbackHooks.length = 0;
    if (this.dataDir !== undefined) this.cloudtrail.events.committed();
  }

  /**
   * Undoes every change since the last save: each service's state becomes `saved` (what the data
   * directory holds, read back after a save that failed), files written for undone changes go,
   * events recorded since are dropped from the event history, and files that only the undone state
   * stopped referring to stay. Executions of Step Functions are not data: one already running keeps
   * its live record, one started by an undone call is stopped and forgotten.
   */
  rollback(saved: AccountState): void {
    this.commitHooks.length = 0;
    for (const fn of this.rollbackHooks.splice(0).reverse()) fn();
    const services = saved.services as Partial<Record<string, object>>;
    replaceContents(this.iam.state, services.iam ?? emptyIamState());
    replaceContents(this.sts.state, services.sts ?? { sessions: {} });
    replaceContents(this.kms.state, services.kms ?? { ...emptyKmsState(), seed: this.kms.state.seed });
    replaceContents(this.s3.state, services.s3 ?? emptyS3State());
    this.cloudtrail.restore((services.cloudtrail as CloudTrailService["state"]) ?? { trails: {} });
    this.states.restore((services.states as StatesService["state"]) ?? { machines: {}, executions: {} });
    this.dirty = false;
  }

  toState(): AccountState {
    return {
      formatVersion: 1,
      accountId: this.accountId,
      createdAt: this.createdAt,
      adminUserName: this.adminUserName,
      services: {
        iam: this.iam.state,
        sts: this.sts.state,
        kms: this.kms.state,
        s3: this.s3.state,
        cloudtrail: this.cloudtrail.state,
        states: this.states.state,
      },
    };
  }
}

/** Random identifiers in AWS's formats. */
export const ids = {
  uuid,
  /**
   * Base32 upper-case ids as IAM forms them: unique ids (`AROA`/`AIDA`/`ANPA`) have 21 characters,
   * access key ids (`AKIA`/`ASIA`) 20.
   */
  unique(prefix: "AROA" | "AIDA" | "ANPA" | "AKIA" | "ASIA"): string {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const bytes = randomBytes(prefix === "AKIA" || prefix === "ASIA" ? 16 : 17);
    let out = prefix;
    for (const b of bytes) out += alphabet[b % 32];
    return out;
  },
  /** 40 characters of AWS's secret-key alphabet (letters, digits, `/` and `+`). */
  secret(): string {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";
    let out = "";
    for (const b of randomBytes(40)) out += alphabet[b & 63];
    return out;
  },
  requestId: uuid,
};
