import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { IamService } from "./services/iam/provider.js";
import { KmsService } from "./services/kms/provider.js";
import { StsService } from "./services/sts/provider.js";

/**
 * How faithfully the account imitates AWS's timing. `instant` (the default, and what tests use)
 * applies every change at once; `realistic` adds IAM's propagation delay for new principals.
 */
export interface AccountOptions {
  /** New IAM principals are not usable (AssumeRole, key/bucket policies) for this long. */
  propagationDelayMs: number;
}

export const PROFILES: Record<string, AccountOptions> = {
  instant: { propagationDelayMs: 0 },
  realistic: { propagationDelayMs: 8_000 },
};

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

  constructor(
    state: AccountState,
    readonly options: AccountOptions = PROFILES.instant!,
    readonly clock: Clock = () => new Date(),
  ) {
    this.accountId = state.accountId;
    this.createdAt = state.createdAt;
    this.adminUserName = state.adminUserName;
    this.iam = new IamService(this, state.services.iam as IamService["state"] | undefined);
    this.sts = new StsService(this, state.services.sts as StsService["state"] | undefined);
    this.kms = new KmsService(this, state.services.kms as KmsService["state"] | undefined);
  }

  /** A brand-new account: random 12-digit id, an `admin` user with full access and an access key. */
  static create(options?: AccountOptions, clock?: Clock): Account {
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
    );
    account.iam.bootstrapAdmin(account.adminUserName);
    return account;
  }

  now(): Date {
    return this.clock();
  }

  toState(): AccountState {
    return {
      formatVersion: 1,
      accountId: this.accountId,
      createdAt: this.createdAt,
      adminUserName: this.adminUserName,
      services: { iam: this.iam.state, sts: this.sts.state, kms: this.kms.state },
    };
  }
}

/** Random identifiers in AWS's formats. */
export const ids = {
  uuid: () => randomUUID(),
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
  requestId: () => randomUUID(),
};
