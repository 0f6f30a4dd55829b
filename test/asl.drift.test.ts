import { describe, expect, it } from "vitest";
import { exportLab } from "../asl/export.js";
import { allStates } from "../asl/interpreter.js";
import { buildLabMachine, type StageExecutor } from "../machines/lab.js";
import { PROFILES } from "../sim/account.js";
import { call, x } from "../steps/build.js";
import type { StageDef } from "../steps/dsl.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { STAGES } from "../steps/registry.js";
import {
  type Call,
  callsOnly,
  type EngineRecording,
  recordEngine,
  type Walk,
  walkRecorded,
} from "./helpers/asl.js";

/**
 * No drift between the two engines: for the default parameters, the local engine runs the lab on
 * the simulator with every AWS call recorded, and the exported state machine, walked by the ASL
 * interpreter over those recorded results, makes the same calls — service, operation, arguments
 * after evaluation, as the key user or not — stage by stage. Steps are compared in order; the engine
 * runs a stage's checks at the same time (the definition one after another), so their calls are
 * compared as a set. Where Step
 * Functions cannot do what the engine does (probes), the documented replacement is checked instead.
 * And a stage changed in one place — a modified copy of the registry given to both the machine
 * builder and the exporter — changes both engines.
 */

const steps = (calls: Call[]) => calls.filter((c) => !c.verify);
const checks = (calls: Call[]) =>
  calls
    .filter((c) => c.verify)
    .map(({ verify: _v, ...c }) => JSON.stringify(c))
    .sort();

function compare(rec: EngineRecording, walk: Walk) {
  const engine = callsOnly(rec.calls);
  expect(Object.keys(walk.calls).sort()).toEqual(Object.keys(engine).sort());
  for (const stage of Object.keys(engine)) {
    const asl = walk.calls[stage]!;
    const made = engine[stage]!;
    const n = steps(asl).length;
    expect(steps(asl), `${stage}: precondition and run`).toEqual(made.slice(0, n));
    expect(checks(asl), `${stage}: verification`).toEqual(
      made
        .slice(n)
        .map((c) => JSON.stringify(c))
        .sort(),
    );
  }
}

describe("no drift between the local engine and the Step Functions export", () => {
  // us-east-1 is where S3 takes no location constraint: CreateBucket's arguments differ there.
  it.each(["us-east-1", "eu-west-1"])(
    "makes the same AWS calls for the default parameters in %s, and both pass every stage",
    async (region) => {
      const rec = await recordEngine({ region });
      expect(Object.values(rec.statuses)).toEqual(Array(6).fill("passed"));
      // The Region comes from the state machine's ARN (the execution input names none).
      const walk = await walkRecorded(rec, {});
      expect(walk.status, `${walk.error}: ${walk.cause}`).toBe("SUCCEEDED");
      const output = walk.output as { runId: string; params: unknown; points: number };
      expect(output.runId).toBe(rec.runId);
      // The definition resolves the execution input into the same parameters as the engine.
      expect(output.params).toEqual(resolveParams(parseParams({ region }), rec.account));
      const created = callsOnly(rec.calls)["trail-to-bucket"]!.find((c) => c.action === "CreateBucket");
      expect(created?.args).toEqual(
        region === "us-east-1"
          ? { Bucket: expect.any(String) }
          : { Bucket: expect.any(String), CreateBucketConfiguration: { LocationConstraint: region } },
      );
      expect(output.points).toBe(100);
      compare(rec, walk);
      for (const stage of Object.keys(walk.unused)) expect(walk.unused[stage], stage).toEqual([]);
      // Every stage made calls, the key user's among them.
      expect(Object.keys(walk.calls).sort()).toEqual(STAGES.map((s) => s.id).sort());
      expect(walk.calls["key-user-access"]!.filter((c) => c.as === "keyUser").length).toBeGreaterThan(4);

      // Probes: the unsigned GET (run and check) became the bucket's public-access reads...
      const unsigned = rec.probes["public-access-denied"]!;
      expect(unsigned.map((c) => c.action)).toEqual(["GetObject", "GetObject"]);
      expect(walk.replacements["public-access-denied"]!.map((c) => c.action)).toEqual([
        "GetPublicAccessBlock",
        "GetBucketPolicyStatus",
        "GetPublicAccessBlock",
        "GetBucketPolicyStatus",
      ]);
      // ...and reading the log files became listing them, with the same arguments as the engine's listing.
      const listings = rec.probes["trail-key-usage"]!.filter((c) => c.action === "ListObjectsV2");
      expect(walk.replacements["trail-key-usage"]).toEqual(
        listings.map(({ service, action, args }) => ({ service, action, args })),
      );
    },
  );

  it("reads every page of CloudTrail in both engines while a key policy change propagates", async () => {
    // 90 s for a key policy to take effect: stage 6's polls make two Decrypts on the key each
    // round while the removal propagates (and the put-back after it), so its PutKeyPolicy is
    // no longer among the key's newest 50 events when the lab looks for the sequence.
    const rec = await recordEngine({}, undefined, {
      ...PROFILES.instant!,
      keyPolicyPropagationMs: 90_000,
      trailLookupsPerSecond: 0,
    });
    expect(rec.statuses["key-user-access"]).toBe("passed");
    const lookups = callsOnly(rec.calls)["key-user-access"]!.filter((c) => c.action === "LookupEvents");
    // The key's events came in more than one page: NextToken was followed.
    expect(lookups.some((c) => (c.args as { NextToken?: string }).NextToken !== undefined)).toBe(true);
    const walk = await walkRecorded(rec, {});
    expect(walk.status, `${walk.error}: ${walk.cause}`).toBe("SUCCEEDED");
    expect((walk.output as { points: number }).points).toBe(100);
    compare(rec, walk);
    for (const stage of Object.keys(walk.unused)) expect(walk.unused[stage], stage).toEqual([]);
  });

  it("a stage changed in one place changes both engines", async () => {
    // A copy of the registry with one more call in stage 1's run: nothing else is told about it.
    const changed: StageDef[] = STAGES.map((s) =>
      s.id !== "create-key"
        ? s
        : {
            ...s,
            run: [
              ...s.run,
              call("describeIt", "describe the key for the class", "kms", "UpdateKeyDescription", {
                KeyId: x("$keyId"),
                Description: x(`"kmslab class key, run " & $runId`),
              }),
            ],
          },
    );
    const idle: StageExecutor = {
      precondition: async () => {},
      run: async () => {},
      verify: async () => ({ points: 0, maxPoints: 0 }),
      rollback: async () => {},
    };
    expect(Object.keys(buildLabMachine(changed, idle).config.states ?? {})).toEqual(STAGES.map((s) => s.id));

    const exported = await exportLab({ stages: changed });
    const original = await exportLab();
    const resources = (d: typeof exported) =>
      allStates(d.definition)
        .map(([, s]) => s.Resource)
        .filter((r) => r?.endsWith(":updateKeyDescription"));
    expect(resources(exported)).toHaveLength(1);
    expect(resources(original)).toHaveLength(0);

    const rec = await recordEngine({}, changed);
    const walk = await walkRecorded(rec, {}, exported);
    expect(walk.status, `${walk.error}: ${walk.cause}`).toBe("SUCCEEDED");
    compare(rec, walk);
    const made = (calls: Call[]) => calls.filter((c) => c.action === "UpdateKeyDescription");
    expect(made(callsOnly(rec.calls)["create-key"]!)).toEqual([
      {
        service: "kms",
        action: "UpdateKeyDescription",
        args: { KeyId: expect.any(String), Description: `kmslab class key, run ${rec.runId}` },
      },
    ]);
    expect(made(walk.calls["create-key"]!)).toEqual(made(callsOnly(rec.calls)["create-key"]!));

    expect(walk.unused["create-key"]).toEqual([]);
    // The unchanged export, walked over the changed engine's calls, leaves the new call unmade.
    const stale = await walkRecorded(rec, {}, original);
    expect(stale.unused["create-key"]!.map((c) => c.action)).toEqual(["UpdateKeyDescription"]);
    expect(() => compare(rec, stale)).toThrow();
  });
});
