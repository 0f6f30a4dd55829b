import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CloudTrailClient, LookupEventsCommand } from "@aws-sdk/client-cloudtrail";
import { CreateRoleCommand, GetRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateKeyCommand, KMSClient, ListKeysCommand } from "@aws-sdk/client-kms";
import {
  CreateStateMachineCommand,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
  ValidateStateMachineDefinitionCommand,
} from "@aws-sdk/client-sfn";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Simulator } from "../sim/simulator.js";
import { failure } from "./helpers/errors.js";

/**
 * Requests nested thousands of levels deep, through the real SDK into a persistent account: each is
 * refused with a 400 before anything runs, and the account is as it was (no resource, no CloudTrail
 * event). Before the bounds, the change was made and the answer was a 500 (an SDK retries those).
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const DEEP = 5000;
/** `{"a":{"a":...}}` DEEP levels down, written out (JSON.stringify itself overflows on it). */
const deepJson = (n = DEEP) => `${'{"a":'.repeat(n)}"x"${"}".repeat(n)}`;

/** A client whose JSON body gets an extra member appended before it is signed. */
function withExtraJson<C extends { middlewareStack: KMSClient["middlewareStack"] }>(
  client: C,
  extra: string,
): C {
  client.middlewareStack.add(
    (next) => async (args) => {
      const req = (args as { request: { body: unknown; headers: Record<string, string> } }).request;
      const body = typeof req.body === "string" ? req.body : new TextDecoder().decode(req.body as Uint8Array);
      req.body = `${body.replace(/}\s*$/, "")}${body.trim() === "{}" ? "" : ","}"Extra":${extra}}`;
      req.headers["content-length"] = String(Buffer.byteLength(req.body as string));
      return next(args);
    },
    { step: "build", name: "deepBody" },
  );
  return client;
}

let dir: string;
let sim: Simulator;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kmslab-nesting-"));
  sim = Simulator.open(dir, { command: "test" });
});
afterEach(() => {
  sim.close();
  rmSync(dir, { recursive: true, force: true });
});

async function eventNames(): Promise<string[]> {
  const ct = new CloudTrailClient(sim.clientConfig());
  const out = await ct.send(new LookupEventsCommand({}));
  return (out.Events ?? []).map((e) => e.EventName ?? "");
}

describe("nesting bounds", () => {
  it("JSON codec: a member 5,000 deep is a 400 SerializationException and no key is made", async () => {
    const kms = withExtraJson(new KMSClient({ ...sim.clientConfig(), maxAttempts: 1 }), deepJson());
    const err = await failure(kms.send(new CreateKeyCommand({ Description: "deep" })));
    expect(err).toMatchObject({ name: "SerializationException", status: 400 });
    const plain = new KMSClient(sim.clientConfig());
    expect((await plain.send(new ListKeysCommand({}))).Keys).toEqual([]);
    expect(await eventNames()).not.toContain("CreateKey");
  });

  it("query codec: a parameter of 5,000 dotted segments is a 400 and no role is made", async () => {
    const iam = new IAMClient({ ...sim.clientConfig(), maxAttempts: 1 });
    iam.middlewareStack.add(
      (next) => async (args) => {
        const req = (args as { request: { body: string; headers: Record<string, string> } }).request;
        req.body = `${req.body}&${Array.from({ length: DEEP }, () => "A").join(".")}=x`;
        req.headers["content-length"] = String(Buffer.byteLength(req.body));
        return next(args);
      },
      { step: "build", name: "deepQuery" },
    );
    const trust = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { Service: "states.amazonaws.com" }, Action: "sts:AssumeRole" },
      ],
    });
    const err = await failure(
      iam.send(new CreateRoleCommand({ RoleName: "deep", AssumeRolePolicyDocument: trust })),
    );
    expect(err).toMatchObject({ name: "InvalidQueryParameter", status: 400 });
    const plain = new IAMClient(sim.clientConfig());
    expect((await failure(plain.send(new GetRoleCommand({ RoleName: "deep" })))).name).toBe(
      "NoSuchEntityException",
    );
    expect(await eventNames()).not.toContain("CreateRole");
  });

  it("a key policy nested 5,000 deep is MalformedPolicyDocumentException and no key is made", async () => {
    const kms = new KMSClient({ ...sim.clientConfig(), maxAttempts: 1 });
    const policy = `{"Version":"2012-10-17","Statement":[{"Effect":${deepJson()},"Principal":"*","Action":"kms:*","Resource":"*"}]}`;
    const err = await failure(kms.send(new CreateKeyCommand({ Policy: policy })));
    expect(err).toMatchObject({ name: "MalformedPolicyDocumentException", status: 400 });
    expect((await kms.send(new ListKeysCommand({}))).Keys).toEqual([]);
  });

  it("ASL validator: a definition 5,000 deep is InvalidDefinition (400) and no state machine is made", async () => {
    const sfn = new SFNClient({ ...sim.clientConfig(), maxAttempts: 1 });
    const definition = `{"QueryLanguage":"JSONata","StartAt":"P","States":{"P":{"Type":"Pass","Output":${deepJson()},"End":true}}}`;
    const roleArn = `arn:aws:iam::${sim.account.accountId}:role/states`;
    const err = await failure(sfn.send(new CreateStateMachineCommand({ name: "deep", definition, roleArn })));
    expect(err).toMatchObject({ name: "InvalidDefinition", status: 400 });
    expect((await sfn.send(new ListStateMachinesCommand({}))).stateMachines).toEqual([]);
    const checked = await sfn.send(new ValidateStateMachineDefinitionCommand({ definition }));
    expect(checked.result).toBe("FAIL");
  });

  it("ASL validator: Parallel states nested 12 deep are refused at once, not after seconds of checking", async () => {
    const sfn = new SFNClient({ ...sim.clientConfig(), maxAttempts: 1 });
    let branch: unknown = { StartAt: "L", States: { L: { Type: "Pass", End: true } } };
    for (let i = 0; i < 12; i++)
      branch = {
        StartAt: `P${i}`,
        States: { [`P${i}`]: { Type: "Parallel", Branches: [branch], End: true } },
      };
    const definition = JSON.stringify({ ...(branch as object), QueryLanguage: "JSONata" });
    const checked = await sfn.send(new ValidateStateMachineDefinitionCommand({ definition }));
    expect(checked.result).toBe("FAIL");
    expect(checked.diagnostics?.[0]?.message).toMatch(/Parallel and Map states nest deeper than 10/);
  });

  it("StartExecution: an input 5,000 deep is InvalidExecutionInput and no execution starts", async () => {
    const sfn = new SFNClient({ ...sim.clientConfig(), maxAttempts: 1 });
    const iam = new IAMClient(sim.clientConfig());
    const trust = JSON.stringify({
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Principal: { Service: "states.amazonaws.com" }, Action: "sts:AssumeRole" },
      ],
    });
    const role = await iam.send(
      new CreateRoleCommand({ RoleName: "states", AssumeRolePolicyDocument: trust }),
    );
    const { stateMachineArn } = await sfn.send(
      new CreateStateMachineCommand({
        name: "pass",
        roleArn: role.Role!.Arn!,
        definition: JSON.stringify({
          QueryLanguage: "JSONata",
          StartAt: "P",
          States: { P: { Type: "Pass", End: true } },
        }),
      }),
    );
    const err = await failure(sfn.send(new StartExecutionCommand({ stateMachineArn, input: deepJson() })));
    expect(err).toMatchObject({ name: "InvalidExecutionInput", status: 400 });
    expect((await sfn.send(new ListExecutionsCommand({ stateMachineArn }))).executions).toEqual([]);
  });
});
