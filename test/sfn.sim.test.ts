import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import {
  CreateStateMachineCommand,
  DeleteStateMachineCommand,
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  DescribeStateMachineCommand,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
  UpdateStateMachineCommand,
  ValidateStateMachineDefinitionCommand,
} from "@aws-sdk/client-sfn";
import { beforeEach, describe, expect, it } from "vitest";
import { Simulator } from "../sim/simulator.js";

/**
 * The simulated Step Functions through the real SFN client: each state type, each Retry and Catch
 * rule, timeouts, stopping, name idempotency and the API's errors. Executions make real SDK calls
 * into the simulated account as the state machine's role. Retry intervals are real seconds (Step
 * Functions' minimum is 1 s), so the retry tests take a few seconds each.
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const TRUST_STATES = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Principal: { Service: "states.amazonaws.com" }, Action: "sts:AssumeRole" }],
});

interface Lab {
  sim: Simulator;
  sfn: SFNClient;
  iam: IAMClient;
  account: string;
  roleArn: string;
  /** Moves the simulated account's clock (Waits and timeouts run on it). */
  advance(ms: number): void;
}

async function setUp(actions: string[] = ["kms:*", "sts:AssumeRole"]): Promise<Lab> {
  let offset = 0;
  const sim = Simulator.inMemory({ clock: () => new Date(Date.now() + offset) });
  const config = sim.clientConfig();
  const iam = new IAMClient(config);
  const sfn = new SFNClient(config);
  await iam.send(new CreateRoleCommand({ RoleName: "states", AssumeRolePolicyDocument: TRUST_STATES }));
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: "states",
      PolicyName: "work",
      PolicyDocument: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: actions, Resource: "*" }],
      }),
    }),
  );
  const account = sim.account.accountId;
  return {
    sim,
    sfn,
    iam,
    account,
    roleArn: `arn:aws:iam::${account}:role/states`,
    advance: (ms) => {
      offset += ms;
    },
  };
}

let machines = 0;

/** Creates a state machine of the states given (JSONata), returns its ARN. */
async function deploy(lab: Lab, definition: Record<string, unknown>): Promise<string> {
  const out = await lab.sfn.send(
    new CreateStateMachineCommand({
      name: `m${++machines}`,
      roleArn: lab.roleArn,
      definition: JSON.stringify({ QueryLanguage: "JSONata", ...definition }),
    }),
  );
  return out.stateMachineArn!;
}

interface Run {
  arn: string;
  execution: DescribeExecutionCommandOutput;
  events: HistoryEvent[];
  types: string[];
}

async function history(lab: Lab, arn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await lab.sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, nextToken }));
    events.push(...page.events!);
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** Starts an execution and waits for its end. */
async function run(lab: Lab, definition: Record<string, unknown>, input: unknown = {}): Promise<Run> {
  const machine = await deploy(lab, definition);
  const { executionArn } = await lab.sfn.send(
    new StartExecutionCommand({ stateMachineArn: machine, input: JSON.stringify(input) }),
  );
  await lab.sim.account.states.settled();
  return finished(lab, executionArn!);
}

async function finished(lab: Lab, arn: string): Promise<Run> {
  const execution = await lab.sfn.send(new DescribeExecutionCommand({ executionArn: arn }));
  const events = await history(lab, arn);
  return { arn, execution, events, types: events.map((e) => e.type!) };
}

const out = (r: Run) => JSON.parse(r.execution.output ?? "null");
const count = (r: Run, type: string) => r.types.filter((t) => t === type).length;

/** A Task that fails with Kms.NotFoundException (the alias does not exist). */
const MISSING_KEY = {
  Type: "Task",
  Resource: "arn:aws:states:::aws-sdk:kms:describeKey",
  Arguments: { KeyId: "alias/does-not-exist" },
};

describe("simulated Step Functions: state types", () => {
  let lab: Lab;
  beforeEach(async () => {
    lab = await setUp();
  });

  it("Pass: Output over $states.input, Assign read by a later state", async () => {
    const r = await run(
      lab,
      {
        StartAt: "First",
        States: {
          First: {
            Type: "Pass",
            Assign: { doubled: "{% $states.input.n * 2 %}" },
            Output: { seen: "{% $states.input.n %}" },
            Next: "Second",
          },
          Second: {
            Type: "Pass",
            Output: "{% {'seen': $states.input.seen, 'doubled': $doubled} %}",
            End: true,
          },
        },
      },
      { n: 21 },
    );
    expect(r.execution.status).toBe("SUCCEEDED");
    expect(out(r)).toEqual({ seen: 21, doubled: 42 });
    expect(r.types).toEqual([
      "ExecutionStarted",
      "PassStateEntered",
      "PassStateExited",
      "PassStateEntered",
      "PassStateExited",
      "ExecutionSucceeded",
    ]);
    expect(r.events.map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.events[1]!.stateEnteredEventDetails).toMatchObject({ name: "First", input: '{"n":21}' });
  });

  it("Task: an aws-sdk call made as the execution role, its result in $states.result; Credentials assume another role", async () => {
    await lab.iam.send(
      new CreateRoleCommand({
        RoleName: "other",
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { AWS: lab.roleArn }, Action: "sts:AssumeRole" }],
        }),
      }),
    );
    const r = await run(
      lab,
      {
        StartAt: "Create",
        States: {
          Create: {
            Type: "Task",
            Resource: "arn:aws:states:::aws-sdk:kms:createKey",
            Arguments: { Description: "{% $states.input.d %}" },
            Assign: { keyId: "{% $states.result.KeyMetadata.KeyId %}" },
            Next: "Describe",
          },
          Describe: {
            Type: "Task",
            Resource: "arn:aws:states:::aws-sdk:kms:describeKey",
            Arguments: { KeyId: "{% $keyId %}" },
            Output: "{% $states.result.KeyMetadata.Description %}",
            Next: "WhoAmI",
          },
          WhoAmI: {
            Type: "Task",
            Resource: "arn:aws:states:::aws-sdk:sts:getCallerIdentity",
            Credentials: { RoleArn: `arn:aws:iam::${lab.account}:role/other` },
            Output: "{% $states.result.Arn %}",
            End: true,
          },
        },
      },
      { d: "made by a state machine" },
    );
    expect(r.execution.status).toBe("SUCCEEDED");
    expect(out(r)).toMatch(new RegExp(`^arn:aws:sts::${lab.account}:assumed-role/other/`));
    const scheduled = r.events.find((e) => e.type === "TaskScheduled")!.taskScheduledEventDetails!;
    expect(scheduled).toMatchObject({
      resourceType: "aws-sdk:kms",
      resource: "createKey",
      region: "us-east-1",
    });
    expect(JSON.parse(scheduled.parameters!)).toEqual({ Description: "made by a state machine" });
    const described = r.events.filter((e) => e.type === "TaskSucceeded")[1]!.taskSucceededEventDetails!;
    expect(JSON.parse(described.output!).KeyMetadata.Description).toBe("made by a state machine");
    // The key was made by a session of the execution role, as CloudTrail saw it.
    const keys = lab.sim.account.kms.state.keys;
    expect(Object.keys(keys)).toHaveLength(1);
  });

  it("Choice: the first rule that holds, else Default; none and no Default fails States.NoChoiceMatched", async () => {
    const definition = {
      StartAt: "Pick",
      States: {
        Pick: {
          Type: "Choice",
          Choices: [
            { Condition: "{% $states.input.n > 10 %}", Next: "Big", Output: { size: "big" } },
            { Condition: "{% $states.input.n > 5 %}", Next: "Medium", Assign: { size: "medium" } },
          ],
          Default: "Small",
        },
        Big: { Type: "Succeed" },
        Medium: { Type: "Pass", Output: "{% {'size': $size} %}", End: true },
        Small: { Type: "Pass", Output: { size: "small" }, End: true },
      },
    };
    expect(out(await run(lab, definition, { n: 11 }))).toEqual({ size: "big" });
    expect(out(await run(lab, definition, { n: 6 }))).toEqual({ size: "medium" });
    expect(out(await run(lab, definition, { n: 1 }))).toEqual({ size: "small" });
    const strict = await run(
      lab,
      {
        StartAt: "Pick",
        States: {
          Pick: { Type: "Choice", Choices: [{ Condition: "{% $states.input.n > 10 %}", Next: "Big" }] },
          Big: { Type: "Succeed" },
        },
      },
      { n: 1 },
    );
    expect(strict.execution).toMatchObject({ status: "FAILED", error: "States.NoChoiceMatched" });
    expect(strict.types.at(-1)).toBe("ExecutionFailed");
  });

  it("Wait: waits on the simulated account's clock, which the test moves on an hour", async () => {
    const machine = await deploy(lab, {
      StartAt: "Nap",
      States: { Nap: { Type: "Wait", Seconds: 3600, Next: "Done" }, Done: { Type: "Succeed" } },
    });
    const { executionArn } = await lab.sfn.send(new StartExecutionCommand({ stateMachineArn: machine }));
    await new Promise((r) => setTimeout(r, 200));
    const waiting = await lab.sfn.send(new DescribeExecutionCommand({ executionArn }));
    expect(waiting.status).toBe("RUNNING");
    lab.advance(3600_000);
    await lab.sim.account.states.settled();
    const r = await finished(lab, executionArn!);
    expect(r.execution.status).toBe("SUCCEEDED");
    expect(r.types).toContain("WaitStateExited");
    const entered = r.events.find((e) => e.type === "WaitStateEntered")!.timestamp!.getTime();
    const exited = r.events.find((e) => e.type === "WaitStateExited")!.timestamp!.getTime();
    expect(exited - entered).toBeGreaterThanOrEqual(3600_000);
  });

  it("Succeed and Fail: Output, and the Fail state's Error and Cause as the execution's", async () => {
    const ok = await run(lab, {
      StartAt: "Done",
      States: { Done: { Type: "Succeed", Output: { all: "good" } } },
    });
    expect(ok.execution.status).toBe("SUCCEEDED");
    expect(out(ok)).toEqual({ all: "good" });
    expect(ok.types).toEqual([
      "ExecutionStarted",
      "SucceedStateEntered",
      "SucceedStateExited",
      "ExecutionSucceeded",
    ]);
    const failed = await run(
      lab,
      {
        StartAt: "Stop",
        States: {
          Stop: { Type: "Fail", Error: "Lab.Broken", Cause: "{% 'because ' & $states.input.why %}" },
        },
      },
      { why: "it is" },
    );
    expect(failed.execution).toMatchObject({ status: "FAILED", error: "Lab.Broken", cause: "because it is" });
    expect(failed.types).toEqual(["ExecutionStarted", "FailStateEntered", "ExecutionFailed"]);
    expect(failed.events.at(-1)!.executionFailedEventDetails).toEqual({
      error: "Lab.Broken",
      cause: "because it is",
    });
  });

  it("Parallel: every branch's output in order; a failing branch stops the others and the Parallel fails", async () => {
    const r = await run(
      lab,
      {
        StartAt: "Both",
        States: {
          Both: {
            Type: "Parallel",
            Branches: [
              {
                StartAt: "A",
                States: { A: { Type: "Pass", Output: "{% $states.input.x + 1 %}", End: true } },
              },
              {
                StartAt: "B",
                States: { B: { Type: "Pass", Output: "{% $states.input.x + 2 %}", End: true } },
              },
            ],
            End: true,
          },
        },
      },
      { x: 1 },
    );
    expect(out(r)).toEqual([2, 3]);
    expect(r.types).toEqual(
      expect.arrayContaining([
        "ParallelStateEntered",
        "ParallelStateStarted",
        "ParallelStateSucceeded",
        "ParallelStateExited",
      ]),
    );

    const failing = await run(lab, {
      StartAt: "Both",
      States: {
        Both: {
          Type: "Parallel",
          Branches: [
            {
              StartAt: "Slow",
              States: {
                Slow: { Type: "Wait", Seconds: 3600, Next: "Never" },
                Never: {
                  Type: "Task",
                  Resource: "arn:aws:states:::aws-sdk:kms:createKey",
                  Arguments: {},
                  End: true,
                },
              },
            },
            { StartAt: "Broken", States: { Broken: { Type: "Fail", Error: "Branch.Failed" } } },
          ],
          End: true,
        },
      },
    });
    expect(failing.execution).toMatchObject({ status: "FAILED", error: "Branch.Failed" });
    expect(failing.types).toContain("WaitStateAborted");
    expect(failing.types).toContain("ParallelStateFailed");
    expect(failing.types).not.toContain("TaskScheduled");
    expect(Object.keys(lab.sim.account.kms.state.keys)).toHaveLength(0);
  });

  it("Map: Items, ItemSelector with the item's index, MaxConcurrency; a failing iteration fails the Map", async () => {
    const r = await run(
      lab,
      {
        StartAt: "Each",
        States: {
          Each: {
            Type: "Map",
            Items: "{% $states.input.names %}",
            MaxConcurrency: 1,
            ItemSelector: {
              name: "{% $states.context.Map.Item.Value %}",
              at: "{% $states.context.Map.Item.Index %}",
            },
            ItemProcessor: {
              ProcessorConfig: { Mode: "INLINE" },
              StartAt: "Greet",
              States: {
                Greet: {
                  Type: "Pass",
                  Output: "{% $states.input.at & ':' & $states.input.name %}",
                  End: true,
                },
              },
            },
            End: true,
          },
        },
      },
      { names: ["ana", "bo", "cy"] },
    );
    expect(out(r)).toEqual(["0:ana", "1:bo", "2:cy"]);
    expect(r.events.find((e) => e.type === "MapStateStarted")!.mapStateStartedEventDetails).toEqual({
      length: 3,
    });
    expect(count(r, "MapIterationStarted")).toBe(3);
    expect(count(r, "MapIterationSucceeded")).toBe(3);
    expect(
      r.events
        .filter((e) => e.type === "MapIterationSucceeded")
        .map((e) => e.mapIterationSucceededEventDetails!.index),
    ).toEqual([0, 1, 2]);

    const failing = await run(lab, {
      StartAt: "Each",
      States: {
        Each: {
          Type: "Map",
          Items: [1, 2, 3],
          MaxConcurrency: 1,
          ItemProcessor: {
            StartAt: "Check",
            States: {
              Check: {
                Type: "Choice",
                Choices: [{ Condition: "{% $states.input = 2 %}", Next: "Bad" }],
                Default: "Good",
              },
              Bad: { Type: "Fail", Error: "Item.Bad" },
              Good: { Type: "Succeed" },
            },
          },
          End: true,
        },
      },
    });
    expect(failing.execution).toMatchObject({ status: "FAILED", error: "Item.Bad" });
    expect(count(failing, "MapIterationFailed")).toBe(1);
    expect(count(failing, "MapIterationStarted")).toBe(2); // the third never starts
    expect(failing.types).toContain("MapStateFailed");
  });
});

describe("simulated Step Functions: Retry and Catch", () => {
  let lab: Lab;
  beforeEach(async () => {
    lab = await setUp();
  });

  it("Retry on the service's error name: MaxAttempts more tries, IntervalSeconds × BackoffRate apart, then the error", async () => {
    const r = await run(lab, {
      StartAt: "Find",
      States: {
        Find: {
          ...MISSING_KEY,
          Retry: [
            { ErrorEquals: ["Kms.NotFoundException"], IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 2 },
          ],
          End: true,
        },
      },
    });
    expect(r.execution).toMatchObject({ status: "FAILED", error: "Kms.NotFoundException" });
    expect(count(r, "TaskScheduled")).toBe(3);
    expect(count(r, "TaskFailed")).toBe(3);
    const at = r.events.filter((e) => e.type === "TaskScheduled").map((e) => e.timestamp!.getTime());
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1000);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(2000);
    expect(r.events.find((e) => e.type === "TaskFailed")!.taskFailedEventDetails).toMatchObject({
      resourceType: "aws-sdk:kms",
      resource: "describeKey",
      error: "Kms.NotFoundException",
    });
  });

  it("MaxAttempts 0 never retries; only the first Retrier that names the error counts, each its own attempts", async () => {
    const never = await run(lab, {
      StartAt: "Find",
      States: {
        Find: { ...MISSING_KEY, Retry: [{ ErrorEquals: ["States.ALL"], MaxAttempts: 0 }], End: true },
      },
    });
    expect(count(never, "TaskScheduled")).toBe(1);
    const first = await run(lab, {
      StartAt: "Find",
      States: {
        Find: {
          ...MISSING_KEY,
          Retry: [
            { ErrorEquals: ["Kms.InvalidArnException"], MaxAttempts: 5, IntervalSeconds: 1 },
            { ErrorEquals: ["Kms.NotFoundException"], MaxAttempts: 1, IntervalSeconds: 1 },
            { ErrorEquals: ["States.ALL"], MaxAttempts: 5, IntervalSeconds: 1 },
          ],
          End: true,
        },
      },
    });
    expect(count(first, "TaskScheduled")).toBe(2);
  });

  it("States.TaskFailed and States.ALL match a Task's error; a name that differs does not", async () => {
    for (const [names, retried] of [
      [["States.TaskFailed"], true],
      [["States.ALL"], true],
      [["Kms.DisabledException"], false],
    ] as const) {
      const r = await run(lab, {
        StartAt: "Find",
        States: {
          Find: {
            ...MISSING_KEY,
            Retry: [{ ErrorEquals: names, MaxAttempts: 1, IntervalSeconds: 1 }],
            End: true,
          },
        },
      });
      expect(count(r, "TaskScheduled"), names.join()).toBe(retried ? 2 : 1);
    }
  });

  it("Catch: the first Catcher that names the error, $states.errorOutput, Output and Assign; no match fails the execution", async () => {
    const r = await run(lab, {
      StartAt: "Find",
      States: {
        Find: {
          ...MISSING_KEY,
          Catch: [
            { ErrorEquals: ["Kms.DisabledException"], Next: "Wrong" },
            {
              ErrorEquals: ["Kms.NotFoundException"],
              Next: "Handled",
              Assign: { why: "{% $states.errorOutput.Error %}" },
              Output:
                "{% {'caught': $states.errorOutput.Error, 'hasCause': $length($states.errorOutput.Cause) > 0} %}",
            },
            { ErrorEquals: ["States.ALL"], Next: "Wrong" },
          ],
          End: true,
        },
        Wrong: { Type: "Fail", Error: "Test.WrongCatcher" },
        Handled: { Type: "Pass", Output: "{% $merge([$states.input, {'why': $why}]) %}", End: true },
      },
    });
    expect(r.execution.status).toBe("SUCCEEDED");
    expect(out(r)).toEqual({ caught: "Kms.NotFoundException", hasCause: true, why: "Kms.NotFoundException" });
    expect(r.types).toContain("TaskStateExited");

    const uncaught = await run(lab, {
      StartAt: "Find",
      States: {
        Find: {
          ...MISSING_KEY,
          Catch: [{ ErrorEquals: ["Kms.DisabledException"], Next: "Never" }],
          End: true,
        },
        Never: { Type: "Succeed" },
      },
    });
    expect(uncaught.execution).toMatchObject({ status: "FAILED", error: "Kms.NotFoundException" });
  });

  it("a field whose JSONata gives nothing fails the state with States.QueryEvaluationError naming the field; a Catch on it fires", async () => {
    // AWS: "The JSONata expression '$states.input.pushLocation' specified for the field
    // 'Arguments/Input/pushLocation' returned nothing (undefined)." — not a field left out.
    const task = await run(lab, {
      StartAt: "Find",
      States: {
        Find: {
          Type: "Task",
          Resource: "arn:aws:states:::aws-sdk:kms:describeKey",
          Arguments: { KeyId: "alias/x", GrantTokens: ["{% $states.input.token %}"] },
          End: true,
        },
      },
    });
    expect(task.execution).toMatchObject({ status: "FAILED", error: "States.QueryEvaluationError" });
    expect(task.execution.cause).toBe(
      "An error occurred while executing the state 'Find'. The JSONata expression '$states.input.token' specified for the field 'Arguments/GrantTokens[0]' returned nothing (undefined).",
    );
    // Nothing was called.
    expect(task.types).not.toContain("TaskScheduled");

    const output = await run(
      lab,
      {
        StartAt: "Shape",
        States: {
          Shape: {
            Type: "Pass",
            Output: { v: "{% $states.input.absent %}" },
            End: true,
          },
        },
      },
      { present: 1 },
    );
    expect(output.execution).toMatchObject({ status: "FAILED", error: "States.QueryEvaluationError" });
    expect(output.execution.cause).toContain(
      "specified for the field 'Output/v' returned nothing (undefined)",
    );

    const handled = await run(lab, {
      StartAt: "Find",
      States: {
        Find: {
          Type: "Task",
          Resource: "arn:aws:states:::aws-sdk:kms:describeKey",
          Arguments: { KeyId: "{% $states.input.alias %}" },
          Catch: [{ ErrorEquals: ["States.QueryEvaluationError"], Next: "Handled" }],
          End: true,
        },
        Handled: { Type: "Pass", Output: "{% $states.input.Error %}", End: true },
      },
    });
    expect(handled.execution.status).toBe("SUCCEEDED");
    expect(out(handled)).toBe("States.QueryEvaluationError");

    // One expression that builds the whole object leaves out what is absent: JSONata's object
    // constructor omits a key whose value is undefined.
    const whole = await run(lab, {
      StartAt: "Shape",
      States: {
        Shape: { Type: "Pass", Output: "{% {'a': 1, 'b': $states.input.absent} %}", End: true },
      },
    });
    expect(whole.execution.status).toBe("SUCCEEDED");
    expect(out(whole)).toEqual({ a: 1 });
  });

  it("Retry first, then Catch once the retries are spent", async () => {
    const r = await run(lab, {
      StartAt: "Find",
      States: {
        Find: {
          ...MISSING_KEY,
          Retry: [{ ErrorEquals: ["States.ALL"], MaxAttempts: 1, IntervalSeconds: 1 }],
          Catch: [{ ErrorEquals: ["States.ALL"], Next: "Handled" }],
          End: true,
        },
        Handled: { Type: "Pass", End: true },
      },
    });
    expect(r.execution.status).toBe("SUCCEEDED");
    expect(count(r, "TaskScheduled")).toBe(2);
    expect(out(r)).toMatchObject({ Error: "Kms.NotFoundException" });
  });

  it("TimeoutSeconds: a Task slower than it fails States.Timeout, which States.TaskFailed does not match but States.Timeout does", async () => {
    lab.sim.faults.set("kms.ListKeys", { latencyMs: 2500 });
    const slow = {
      Type: "Task",
      Resource: "arn:aws:states:::aws-sdk:kms:listKeys",
      Arguments: {},
      TimeoutSeconds: 1,
    };
    const r = await run(lab, {
      StartAt: "List",
      States: {
        List: {
          ...slow,
          Retry: [{ ErrorEquals: ["States.TaskFailed"], MaxAttempts: 3, IntervalSeconds: 1 }],
          Catch: [{ ErrorEquals: ["States.Timeout"], Next: "TimedOut" }],
          End: true,
        },
        TimedOut: { Type: "Pass", End: true },
      },
    });
    expect(r.execution.status).toBe("SUCCEEDED");
    expect(count(r, "TaskScheduled")).toBe(1);
    expect(r.events.find((e) => e.type === "TaskTimedOut")!.taskTimedOutEventDetails).toMatchObject({
      error: "States.Timeout",
      resource: "listKeys",
    });
    expect(
      r.events.find((e) => e.type === "TaskScheduled")!.taskScheduledEventDetails!.timeoutInSeconds,
    ).toBe(1);
    expect(out(r)).toMatchObject({ Error: "States.Timeout" });
  });

  it("the definition's TimeoutSeconds ends the execution TIMED_OUT", async () => {
    const machine = await deploy(lab, {
      TimeoutSeconds: 60,
      StartAt: "Nap",
      States: { Nap: { Type: "Wait", Seconds: 3600, End: true } },
    });
    const { executionArn } = await lab.sfn.send(new StartExecutionCommand({ stateMachineArn: machine }));
    await new Promise((r) => setTimeout(r, 100));
    lab.advance(61_000);
    await lab.sim.account.states.settled();
    const r = await finished(lab, executionArn!);
    expect(r.execution).toMatchObject({ status: "TIMED_OUT", error: "States.Timeout" });
    expect(r.types.at(-1)).toBe("ExecutionTimedOut");
  });
});

describe("simulated Step Functions: the API", () => {
  let lab: Lab;
  beforeEach(async () => {
    lab = await setUp();
  });
  const waiting = { StartAt: "Nap", States: { Nap: { Type: "Wait", Seconds: 3600, End: true } } };

  it("StartExecution: the same name and input while running is the same execution; otherwise ExecutionAlreadyExists", async () => {
    const machine = await deploy(lab, waiting);
    const a = await lab.sfn.send(
      new StartExecutionCommand({ stateMachineArn: machine, name: "once", input: '{"a":1}' }),
    );
    const again = await lab.sfn.send(
      new StartExecutionCommand({ stateMachineArn: machine, name: "once", input: '{"a":1}' }),
    );
    expect(again.executionArn).toBe(a.executionArn);
    expect(again.startDate).toEqual(a.startDate);
    await expect(
      lab.sfn.send(new StartExecutionCommand({ stateMachineArn: machine, name: "once", input: '{"a":2}' })),
    ).rejects.toMatchObject({ name: "ExecutionAlreadyExists" });
    const listed = await lab.sfn.send(new ListExecutionsCommand({ stateMachineArn: machine }));
    expect(listed.executions).toHaveLength(1);

    // Stopping it: ABORTED with the error and cause given, the Wait aborted, no longer restartable.
    await lab.sfn.send(
      new StopExecutionCommand({ executionArn: a.executionArn, error: "Test.Stop", cause: "enough" }),
    );
    await lab.sim.account.states.settled();
    const r = await finished(lab, a.executionArn!);
    expect(r.execution).toMatchObject({ status: "ABORTED", error: "Test.Stop", cause: "enough" });
    expect(r.types).toContain("ExecutionAborted");
    await expect(
      lab.sfn.send(new StartExecutionCommand({ stateMachineArn: machine, name: "once", input: '{"a":1}' })),
    ).rejects.toMatchObject({ name: "ExecutionAlreadyExists" });
    const byStatus = await lab.sfn.send(
      new ListExecutionsCommand({ stateMachineArn: machine, statusFilter: "RUNNING" }),
    );
    expect(byStatus.executions).toHaveLength(0);
  });

  it("ValidateStateMachineDefinition says OK or FAIL with diagnostics; CreateStateMachine refuses what FAILs", async () => {
    const good = await lab.sfn.send(
      new ValidateStateMachineDefinitionCommand({
        definition: JSON.stringify({ QueryLanguage: "JSONata", ...waiting }),
      }),
    );
    expect(good).toMatchObject({ result: "OK", diagnostics: [] });
    const bad = {
      QueryLanguage: "JSONata",
      StartAt: "Nowhere",
      States: { Nap: { Type: "Wait", Seconds: 1, End: true } },
    };
    const verdict = await lab.sfn.send(
      new ValidateStateMachineDefinitionCommand({ definition: JSON.stringify(bad) }),
    );
    expect(verdict.result).toBe("FAIL");
    expect(verdict.diagnostics![0]).toMatchObject({ severity: "ERROR", code: "SCHEMA_VALIDATION_FAILED" });
    const notJson = await lab.sfn.send(
      new ValidateStateMachineDefinitionCommand({ definition: "{not json" }),
    );
    expect(notJson.diagnostics![0]!.code).toBe("INVALID_JSON_DESCRIPTION");
    await expect(
      lab.sfn.send(
        new CreateStateMachineCommand({ name: "bad", roleArn: lab.roleArn, definition: JSON.stringify(bad) }),
      ),
    ).rejects.toMatchObject({ name: "InvalidDefinition" });
  });

  it("Create is idempotent for the same definition, StateMachineAlreadyExists for another; Update; List; Delete once its executions end", async () => {
    const definition = JSON.stringify({ QueryLanguage: "JSONata", ...waiting });
    const a = await lab.sfn.send(
      new CreateStateMachineCommand({ name: "same", roleArn: lab.roleArn, definition }),
    );
    const b = await lab.sfn.send(
      new CreateStateMachineCommand({ name: "same", roleArn: lab.roleArn, definition }),
    );
    expect(b.stateMachineArn).toBe(a.stateMachineArn);
    const other = JSON.stringify({
      QueryLanguage: "JSONata",
      StartAt: "X",
      States: { X: { Type: "Succeed" } },
    });
    await expect(
      lab.sfn.send(new CreateStateMachineCommand({ name: "same", roleArn: lab.roleArn, definition: other })),
    ).rejects.toMatchObject({ name: "StateMachineAlreadyExists" });
    const { executionArn } = await lab.sfn.send(
      new StartExecutionCommand({ stateMachineArn: a.stateMachineArn }),
    );
    const updated = await lab.sfn.send(
      new UpdateStateMachineCommand({ stateMachineArn: a.stateMachineArn, definition: other }),
    );
    expect(updated.revisionId).toBeTruthy();
    const described = await lab.sfn.send(
      new DescribeStateMachineCommand({ stateMachineArn: a.stateMachineArn }),
    );
    expect(described).toMatchObject({
      name: "same",
      status: "ACTIVE",
      definition: other,
      roleArn: lab.roleArn,
      type: "STANDARD",
    });
    const listed = await lab.sfn.send(new ListStateMachinesCommand({}));
    expect(listed.stateMachines!.map((m) => m.name)).toEqual(["same"]);

    await lab.sfn.send(new DeleteStateMachineCommand({ stateMachineArn: a.stateMachineArn }));
    const deleting = await lab.sfn.send(
      new DescribeStateMachineCommand({ stateMachineArn: a.stateMachineArn }),
    );
    expect(deleting.status).toBe("DELETING");
    await expect(
      lab.sfn.send(new StartExecutionCommand({ stateMachineArn: a.stateMachineArn })),
    ).rejects.toMatchObject({ name: "StateMachineDeleting" });
    // The running execution still runs its own definition, the one it started with.
    await lab.sfn.send(new StopExecutionCommand({ executionArn }));
    await lab.sim.account.states.settled();
    await expect(
      lab.sfn.send(new DescribeStateMachineCommand({ stateMachineArn: a.stateMachineArn })),
    ).rejects.toMatchObject({ name: "StateMachineDoesNotExist" });
    expect((await lab.sfn.send(new ListStateMachinesCommand({}))).stateMachines).toEqual([]);
  });

  it("errors: a malformed ARN, a missing execution, bad input, a role Step Functions may not assume, a caller without permission", async () => {
    const machine = await deploy(lab, waiting);
    await expect(
      lab.sfn.send(new DescribeExecutionCommand({ executionArn: "arn:aws:nope" })),
    ).rejects.toMatchObject({
      name: "InvalidArn",
    });
    await expect(
      lab.sfn.send(
        new DescribeExecutionCommand({
          executionArn: `${machine.replace(":stateMachine:", ":execution:")}:ghost`,
        }),
      ),
    ).rejects.toMatchObject({ name: "ExecutionDoesNotExist" });
    await expect(
      lab.sfn.send(new StartExecutionCommand({ stateMachineArn: machine, input: "{oops" })),
    ).rejects.toMatchObject({ name: "InvalidExecutionInput" });
    await expect(
      lab.sfn.send(new StartExecutionCommand({ stateMachineArn: machine, name: "has space" })),
    ).rejects.toMatchObject({ name: "InvalidName" });

    await lab.iam.send(
      new CreateRoleCommand({
        RoleName: "untrusting",
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" },
          ],
        }),
      }),
    );
    await expect(
      lab.sfn.send(
        new CreateStateMachineCommand({
          name: "x",
          roleArn: `arn:aws:iam::${lab.account}:role/untrusting`,
          definition: JSON.stringify({ QueryLanguage: "JSONata", ...waiting }),
        }),
      ),
    ).rejects.toMatchObject({
      name: "AccessDeniedException",
      message: expect.stringContaining("states.amazonaws.com"),
    });

    // A session of the execution role has no states:* permission.
    const sts = lab.sim.account.sts;
    const session = lab.sim.account.call<{ Credentials: Record<string, string> }>(
      sts,
      "AssumeRole",
      { RoleArn: lab.roleArn, RoleSessionName: "caller" },
      {
        accountId: lab.account,
        region: "us-east-1",
        requestId: "x",
        principal: {
          type: "AWSService",
          arn: "states.amazonaws.com",
          accountId: "",
          userId: "states.amazonaws.com",
          service: "states.amazonaws.com",
        },
        now: new Date(),
        sourceIp: "127.0.0.1",
        userAgent: "test",
        secureTransport: true,
      },
    ).Credentials;
    const limited = new SFNClient(
      lab.sim.clientConfig({
        credentials: {
          accessKeyId: session.AccessKeyId!,
          secretAccessKey: session.SecretAccessKey!,
          sessionToken: session.SessionToken!,
        },
      }),
    );
    await expect(limited.send(new StartExecutionCommand({ stateMachineArn: machine }))).rejects.toMatchObject(
      {
        name: "AccessDeniedException",
        message: expect.stringContaining("states:StartExecution"),
      },
    );
  });

  it("the execution's Tasks are denied what the execution role's policy does not allow", async () => {
    const narrow = await setUp(["kms:ListKeys"]);
    const r = await run(narrow, {
      StartAt: "Create",
      States: {
        Create: {
          Type: "Task",
          Resource: "arn:aws:states:::aws-sdk:kms:createKey",
          Arguments: {},
          End: true,
        },
      },
    });
    expect(r.execution.status).toBe("FAILED");
    expect(r.execution.cause).toMatch(/assumed-role\/states\/.* is not authorized to perform: kms:CreateKey/);
  });
});
