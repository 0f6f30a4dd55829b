import { setTimeout as sleep } from "node:timers/promises";
import { AwsError, type Clients } from "../machines/aws.js";
import { backoffDelay, type RetryPolicy, TRANSIENT_RETRY } from "../machines/runner.js";
import type { Service } from "../steps/dsl.js";

/**
 * The teardown's AWS calls: the engine's clients, with the engine's answer to throttling and 5xx
 * (AwsError.transient; exponential backoff with full jitter, TRANSIENT_RETRY), and a hook that
 * sees every call that changes the account (the crash tests' harness counts them).
 */
export class Aws {
  constructor(
    readonly clients: Clients,
    private readonly policy: RetryPolicy = TRANSIENT_RETRY,
    /** Called after each change the account accepted. */
    private readonly changed: () => void = () => {},
    private readonly wait: (ms: number) => Promise<void> = (ms) => sleep(ms),
  ) {}

  /** A read: retried while throttled. */
  read(service: Service, action: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.retrying(() => this.clients.call(service, action, input));
  }

  /** A change: retried while throttled; `gone` error codes mean it was already done (NotFound). */
  async change(
    service: Service,
    action: string,
    input: Record<string, unknown>,
    gone: string[] = [],
  ): Promise<"done" | "gone"> {
    return (await this.changeWithOutput(service, action, input, gone)) ? "done" : "gone";
  }

  /** A change whose answer matters (ScheduleKeyDeletion's date); undefined when it was already gone. */
  async changeWithOutput(
    service: Service,
    action: string,
    input: Record<string, unknown>,
    gone: string[] = ["NotFoundException"],
  ): Promise<Record<string, unknown> | undefined> {
    let out: Record<string, unknown>;
    try {
      out = await this.retrying(() => this.clients.call(service, action, input));
    } catch (err) {
      if (err instanceof AwsError && gone.includes(err.code)) return undefined;
      throw err;
    }
    this.changed();
    return out;
  }

  /** A change made with read() (DeleteObjects, whose failures come in its answer) that succeeded. */
  noteChange(): void {
    this.changed();
  }

  /** For `.catch()`: an error `accept` recognises becomes `fallback`; any other is thrown again. */
  unless<T = undefined>(accept: (err: AwsError) => boolean, fallback?: T) {
    return (err: unknown): T => {
      if (err instanceof AwsError && accept(err)) return fallback as T;
      throw err;
    };
  }

  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof AwsError) || !err.transient || attempt >= this.policy.maxAttempts) throw err;
        await this.wait(backoffDelay(this.policy, attempt));
      }
    }
  }
}
