import { describe, expect, it } from "vitest";
import { exportTeardown } from "../asl/export.js";
import { executionRolePolicy, iamActionsOf } from "../asl/iam.js";
import { allStates } from "../asl/interpreter.js";
import { pascal } from "../asl/sdk.js";
import { Clients } from "../machines/aws.js";
import { evaluatePolicy, parsePolicy } from "../sim/policy/index.js";
import { Simulator } from "../sim/simulator.js";
import { MemoryStateStore } from "../state/index.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { allSteps, STAGES } from "../steps/registry.js";
import {
  arnOf,
  callsOf,
  exportedCalls,
  labNames,
  RESOURCES,
  resourceKind,
  TEARDOWN_ORDER,
} from "../steps/resources.js";
import { teardown } from "../teardown/index.js";
import { runIn } from "./helpers/teardown.js";

/**
 * The resource-type registry (steps/resources.ts) is the one place that says how a lab resource is
 * found, read and deleted: these fail when one of its readers — the exported teardown, the IAM
 * policy export, the local teardown — makes a call the registry does not, misses one it does, or
 * grants it on other resources than the type's.
 */

const teardownDefinition = (await exportTeardown()).definition;
const key = (service: string, action: string) => `${service}:${action}`;

describe("the resource-type registry", () => {
  it("names every stage effect's resource type, and orders the teardown's types", () => {
    for (const s of STAGES)
      for (const step of allSteps(s.run))
        if (step.kind === "call" && step.effect?.resource)
          expect(Object.keys(RESOURCES), `${s.id}.${step.id}`).toContain(step.effect.resource.type);
    expect(TEARDOWN_ORDER).toEqual([
      "AWS::CloudTrail::Trail",
      "AWS::S3::Bucket",
      "AWS::KMS::Alias",
      "AWS::KMS::Key",
      "AWS::IAM::Role",
    ]);
  });

  it("the exported teardown makes exactly the registry's calls, one Map per type in its order", () => {
    const tasks = new Set<string>();
    for (const [, state] of allStates(teardownDefinition)) {
      const m = /^arn:aws:states:::aws-sdk:(\w+):(\w+)$/.exec(state.Resource ?? "");
      if (m) tasks.add(key(m[1]!, pascal(m[2]!)));
    }
    const registry = new Set(
      TEARDOWN_ORDER.flatMap((t) => exportedCalls(t).map((c) => key(c.call.service, c.call.action))),
    );
    expect([...tasks].sort()).toEqual([...registry].sort());
    // The types' Maps, chained in teardown order: each one's items are judged as that type.
    const states = teardownDefinition.States;
    const maps: string[] = [];
    let name = states["teardown.runIds?"]!.Choices![0]!.Next;
    while (name !== "teardown.report") {
      const state = states[name]!;
      if (state.Type === "Map") maps.push(state.ItemProcessor!.StartAt);
      name = state.Type === "Choice" ? state.Default! : state.Next!;
    }
    expect(maps).toEqual(TEARDOWN_ORDER.map((t) => `teardown.${resourceKind(t).noun}`));
  });

  it("the IAM policy export allows every call of the exported teardown on each of its type's resources", () => {
    const names = resolveParams(parseParams({ suffix: "-x" }), "111122223333");
    const policy = parsePolicy(JSON.stringify(executionRolePolicy([teardownDefinition], names)), "identity");
    const principal = {
      type: "AssumedRole" as const,
      arn: "arn:aws:sts::111122223333:assumed-role/kmslab-states/x",
      accountId: "111122223333",
      userId: "AROAEXAMPLE:x",
      roleArn: "arn:aws:iam::111122223333:role/kmslab-states",
    };
    const parts = { region: names.region, account: names.account };
    const keyArn = arnOf("AWS::KMS::Key", { ...parts, name: "1234abcd-12ab-34cd-56ef-1234567890ab" });
    let checked = 0;
    for (const type of TEARDOWN_ORDER)
      for (const { role, call } of exportedCalls(type)) {
        const own = labNames(type, names).map((name) => arnOf(type, { ...parts, name }));
        // KMS authorises a key's calls, by alias or not, on the key; DeleteAlias on the alias too.
        const resources =
          role === "list"
            ? ["*"]
            : call.service === "kms"
              ? [keyArn, ...(call.action === "DeleteAlias" ? own : [])]
              : call.action === "DeleteObjects"
                ? own.map((b) => `${b}/AWSLogs/x.json.gz`)
                : own;
        expect(resources.length, `${type} ${call.action}`).toBeGreaterThan(0);
        for (const action of iamActionsOf(call.service, call.action))
          for (const resource of resources) {
            const decision = evaluatePolicy(policy, { principal, action, resource }).effect;
            expect(decision, `${type}: ${action} on ${resource}`).toBe("Allow");
            checked++;
          }
      }
    expect(checked).toBeGreaterThan(20);
  });

  it("the local teardown makes only the registry's calls, lists every type and deletes in its order", async () => {
    const sim = Simulator.inMemory();
    const store = new MemoryStateStore();
    expect((await runIn(sim, store)).complete).toBe(true);
    const made: string[] = [];
    const clients = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
    clients.observer = (c) => made.push(key(c.service, c.action));
    const result = await teardown({ clients, account: sim.account.accountId, region: "us-east-1", store });
    clients.destroy();
    sim.close();
    expect(result.complete).toBe(true);
    const registry = new Set(
      TEARDOWN_ORDER.flatMap((t) => callsOf(t).map((c) => key(c.call.service, c.call.action))),
    );
    expect(made.filter((c) => !registry.has(c))).toEqual([]);
    for (const t of TEARDOWN_ORDER)
      expect(made).toContain(key(resourceKind(t).list.service, resourceKind(t).list.action));
    expect([...new Set(result.items.map((i) => i.type))]).toEqual(TEARDOWN_ORDER);
  }, 60_000);
});
