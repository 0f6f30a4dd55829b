import { CreateRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  SFNClient,
  StartExecutionCommand,
} from "@aws-sdk/client-sfn";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Simulator } from "../sim/simulator.js";

/**
 * What one execution of the simulated Step Functions may take, through the real SFN client: its
 * JSONata is bounded (an expression past the bounds fails the state with
 * States.QueryEvaluationError instead of running for seconds and taking hundreds of MB), a long
 * evaluation lets the event loop turn (other clients are served meanwhile), and payloads past
 * Step Functions' 256 KiB quota fail the execution with States.DataLimitExceeded.
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const TRUST = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "states.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

let sim: Simulator;
let sfn: SFNClient;
let roleArn: string;

beforeEach(async () => {
  sim = Simulator.inMemory();
  sfn = new SFNClient(sim.clientConfig());
  const iam = new IAMClient(sim.clientConfig());
  roleArn = (await iam.send(new CreateRoleCommand({ RoleName: "states", AssumeRolePolicyDocument: TRUST })))
    .Role!.Arn!;
});
afterEach(() => sim.close());

let n = 0;
/** Starts an execution of a one-state machine (`state` is that state, End included). */
async function start(state: Record<string, unknown>): Promise<string> {
  const { stateMachineArn } = await sfn.send(
    new CreateStateMachineCommand({
      name: `limits-${++n}`,
      roleArn,
      definition: JSON.stringify({
        QueryLanguage: "JSONata",
        StartAt: "S",
        States: { S: { ...state, End: true } },
      }),
    }),
  );
  return (await sfn.send(new StartExecutionCommand({ stateMachineArn }))).executionArn!;
}

async function finished(executionArn: string) {
  await sim.account.states.settled();
  return sfn.send(new DescribeExecutionCommand({ executionArn }));
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("Step Functions bounds", () => {
  it("an expression that would allocate ten million items fails with States.QueryEvaluationError", async () => {
    const arn = await start({ Type: "Pass", Output: "{% $count([1..9999999].($string($))) %}" });
    const out = await finished(arn);
    expect(out.status).toBe("FAILED");
    expect(out.error).toBe("States.QueryEvaluationError");
    expect(out.cause).toMatch(/maximum sequence length/);
  });

  it("an expression past the evaluation-step bound fails with States.QueryEvaluationError", async () => {
    const arn = await start({
      Type: "Pass",
      Output: "{% $sum([1..100000].($ * 2)) %}",
    });
    const out = await finished(arn);
    expect(out.status).toBe("FAILED");
    expect(out.error).toBe("States.QueryEvaluationError");
    expect(out.cause).toMatch(/evaluation steps/);
  });

  it("a long evaluation lets the event loop turn: the execution is still running when a macrotask runs", async () => {
    // About 160,000 steps: allowed, and long enough that it has not ended when the loop first turns.
    const arn = await start({ Type: "Pass", Output: "{% $sum([1..40000].($ * 2)) %}" });
    // Wait (a macrotask at a time) until the Pass state is being evaluated.
    for (;;) {
      await turn();
      const { events = [] } = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn }));
      if (events.some((e) => e.type === "PassStateEntered")) break;
    }
    await turn();
    const during = await sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
    expect(during.status).toBe("RUNNING");
    const out = await finished(arn);
    expect(out.status).toBe("SUCCEEDED");
    expect(out.output).toBe(String(40000 * 40001));
  });

  it("a state output over 256 KiB fails the execution with States.DataLimitExceeded", async () => {
    const arn = await start({ Type: "Pass", Output: "{% $pad('', 300000, 'x') %}" });
    const out = await finished(arn);
    expect(out.status).toBe("FAILED");
    expect(out.error).toBe("States.DataLimitExceeded");
  });

  it("variables over 256 KiB assigned by one state fail the execution with States.DataLimitExceeded", async () => {
    const arn = await start({
      Type: "Pass",
      Assign: { big: "{% $pad('', 300000, 'x') %}" },
    });
    const out = await finished(arn);
    expect(out.status).toBe("FAILED");
    expect(out.error).toBe("States.DataLimitExceeded");
  });
});
