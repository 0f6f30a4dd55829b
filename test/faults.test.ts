import { describe, expect, it } from "vitest";
import { FaultInjector, FaultSpecError } from "../sim/faults.js";

describe("fault injection", () => {
  it("parses specs and prefers the most specific rule", () => {
    const f = FaultInjector.parse("kms.Encrypt:throttle=1;kms:5xx=1;*:latency=7", 42);
    expect(f.decide("kms", "Encrypt")).toEqual({ kind: "throttle", latencyMs: 0 });
    expect(f.decide("kms", "Decrypt")).toEqual({ kind: "5xx", latencyMs: 0 });
    expect(f.decide("iam", "GetRole")).toEqual({ kind: "none", latencyMs: 7 });
  });

  it("denies a call as an organisation's service control policy would", async () => {
    const { Simulator } = await import("../sim/simulator.js");
    const { KMSClient, CreateKeyCommand, ListKeysCommand } = await import("@aws-sdk/client-kms");
    const sim = Simulator.inMemory({ faults: FaultInjector.parse("kms.CreateKey:deny=1") });
    const kms = new KMSClient(sim.clientConfig());
    const err = await kms.send(new CreateKeyCommand({})).then(
      () => undefined,
      (e: { name: string; message: string; $metadata: { httpStatusCode: number } }) => e,
    );
    expect(err?.name).toBe("AccessDeniedException");
    expect(err?.$metadata.httpStatusCode).toBe(400);
    expect(err?.message).toBe(
      `User: arn:aws:iam::${sim.account.accountId}:user/admin is not authorized to perform: kms:CreateKey with an explicit deny in a service control policy`,
    );
    expect((await kms.send(new ListKeysCommand({}))).Keys).toEqual([]);
  });

  it("resets a connection after the call, at most `count` times", () => {
    const f = FaultInjector.parse("s3.CreateBucket:reset=1,count=2");
    expect([1, 2, 3].map(() => f.decide("s3", "CreateBucket").kind)).toEqual(["reset", "reset", "none"]);
    expect(FaultInjector.parse("kms:throttle=1,count=0").decide("kms", "Encrypt").kind).toBe("none");
    expect(() => FaultInjector.parse("kms:count=1.5")).toThrow(/whole number/);
  });

  it("is reproducible for a seed and roughly honours the probability", () => {
    const run = (seed: number) => {
      const f = FaultInjector.parse("kms:throttle=0.2", seed);
      return Array.from({ length: 2000 }, () => f.decide("kms", "Encrypt").kind);
    };
    const a = run(7);
    expect(run(7)).toEqual(a);
    expect(run(8)).not.toEqual(a);
    const share = a.filter((k) => k === "throttle").length / a.length;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.25);
  });

  it.each([
    ["kms", /must look like/],
    ["kms:throttle=2", /between 0 and 1/],
    ["kms:boom=1", /unknown fault kind/],
    ["kms:throttle=x", /needs a number/],
    ["KMS Encrypt:throttle=0.1", /fault scope/],
  ])("rejects %s", (spec, message) => {
    expect(() => FaultInjector.parse(spec)).toThrow(FaultSpecError);
    expect(() => FaultInjector.parse(spec)).toThrow(message);
  });
});
