/**
 * Fault injection for resilience tests: per service and operation, a probability of throttling, of
 * a 5xx answer, and added latency. Decisions come from a seeded generator, so a run with the same
 * seed and the same sequence of requests sees the same faults.
 *
 * Spec syntax (flag `--faults`, env `KMSLAB_SIM_FAULTS`), rules separated by `;`:
 *   `kms.Encrypt:throttle=0.2,5xx=0.05,latency=20` · `iam:throttle=0.1` · `*:latency=5` ·
 *   `cloudtrail.CreateTrail:deny=1` (AccessDenied, as a service control policy's explicit deny) ·
 *   `s3.CreateBucket:reset=1,count=1` (the connection is reset once the call has been made: it took
 *   effect, its answer is lost — what a client sees as ECONNRESET / "socket hang up")
 * `count=N` makes a rule inject at most N faults, then let calls through.
 * The most specific rule wins (service.Operation over service over `*`).
 */
export interface FaultRule {
  throttle?: number;
  error5xx?: number;
  /** Probability of an access denial, as an organisation's service control policy would cause. */
  deny?: number;
  /** Probability that the connection is reset after the call took effect (the answer is lost). */
  reset?: number;
  latencyMs?: number;
  /** At most this many faults from this rule (latency aside); unlimited when absent. */
  count?: number;
}

export type FaultDecision = { kind: "none" | "throttle" | "5xx" | "deny" | "reset"; latencyMs: number };

export class FaultSpecError extends Error {}

export class FaultInjector {
  private rules = new Map<string, FaultRule>();
  private state: number;

  constructor(
    rules: Record<string, FaultRule> = {},
    readonly seed = 1,
  ) {
    this.state = seed >>> 0 || 1;
    for (const [scope, rule] of Object.entries(rules)) this.set(scope, rule);
  }

  /** Parses the spec syntax above; throws FaultSpecError naming what is wrong. */
  static parse(spec: string, seed = 1): FaultInjector {
    const injector = new FaultInjector({}, seed);
    for (const raw of spec.split(";")) {
      const text = raw.trim();
      if (!text) continue;
      const colon = text.indexOf(":");
      if (colon < 1)
        throw new FaultSpecError(`fault rule "${text}" must look like "kms.Encrypt:throttle=0.2"`);
      const scope = text.slice(0, colon).trim();
      if (!/^(\*|[a-z0-9-]+(\.[A-Za-z0-9]+)?)$/.test(scope))
        throw new FaultSpecError(
          `fault scope "${scope}" must be "*", a service ("kms") or "service.Operation"`,
        );
      const rule: FaultRule = {};
      for (const pair of text.slice(colon + 1).split(",")) {
        const [k, v] = pair.split("=").map((s) => s.trim());
        const n = Number(v);
        if (!v || Number.isNaN(n))
          throw new FaultSpecError(`fault setting "${pair.trim()}" needs a number, e.g. throttle=0.2`);
        if (k === "throttle" || k === "5xx" || k === "deny" || k === "reset") {
          if (n < 0 || n > 1) throw new FaultSpecError(`fault probability ${k}=${v} must be between 0 and 1`);
          if (k === "throttle") rule.throttle = n;
          else if (k === "deny") rule.deny = n;
          else if (k === "reset") rule.reset = n;
          else rule.error5xx = n;
        } else if (k === "latency") {
          if (n < 0 || n > 60_000)
            throw new FaultSpecError(`fault latency=${v} must be 0..60000 milliseconds`);
          rule.latencyMs = n;
        } else if (k === "count") {
          if (!Number.isInteger(n) || n < 0)
            throw new FaultSpecError(`fault count=${v} must be a whole number`);
          rule.count = n;
        } else
          throw new FaultSpecError(
            `unknown fault kind "${k}" (use throttle, 5xx, deny, reset, latency or count)`,
          );
      }
      injector.set(scope, rule);
    }
    return injector;
  }

  set(scope: string, rule: FaultRule): void {
    this.rules.set(scope, { ...rule });
  }

  clear(): void {
    this.rules.clear();
  }

  get active(): boolean {
    return this.rules.size > 0;
  }

  /** What happens to this call. Draws from the generator only when a rule applies. */
  decide(service: string, operation: string): FaultDecision {
    if (this.rules.size === 0) return { kind: "none", latencyMs: 0 };
    const rule = this.rules.get(`${service}.${operation}`) ?? this.rules.get(service) ?? this.rules.get("*");
    if (!rule) return { kind: "none", latencyMs: 0 };
    const latencyMs = rule.latencyMs ?? 0;
    if (rule.count === 0) return { kind: "none", latencyMs };
    const kind =
      rule.throttle && this.next() < rule.throttle
        ? "throttle"
        : rule.error5xx && this.next() < rule.error5xx
          ? "5xx"
          : rule.deny && this.next() < rule.deny
            ? "deny"
            : rule.reset && this.next() < rule.reset
              ? "reset"
              : "none";
    if (kind !== "none" && rule.count !== undefined) rule.count--;
    return { kind, latencyMs };
  }

  /** mulberry32: small, fast, good enough for reproducible fault patterns. */
  private next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}
