/**
 * The lab's stages as data: each stage is a precondition, a run, a verification and (implicitly) a
 * rollback, written as declared sequences of AWS calls whose computed values are JSONata
 * `{% %}` expressions. Two engines read the same definitions: the local XState engine (machines/)
 * executes them with the AWS SDK, and the Step Functions export (workflows/) renders them as ASL
 * Tasks, Choices and Waits. Nothing here runs anything.
 *
 * Variables: every expression sees `$params` (the resolved lab parameters, account and region
 * included), `$runId`, and the variables earlier steps assigned (`assign`, evaluated over
 * `$states.result` as in ASL). A check (verification) sees only `$params` and its own reads: it
 * grades the account as it stands, a lab done by hand included.
 */

import type { ResourceType } from "./resources.js";

export type Service = "sts" | "iam" | "kms" | "s3" | "cloudtrail";

export type StageId =
  | "create-key"
  | "trail-to-bucket"
  | "sse-kms-upload"
  | "public-access-denied"
  | "trail-key-usage"
  | "key-user-access";

/** JSON whose strings may be `{% %}` expressions. */
export type Template = unknown;

/** The lab's resource types: the entries of the resource-type registry (steps/resources.ts). */
export type { ResourceType };

/** One AWS API call: the unit both engines execute (an `aws-sdk:<service>:<action>` Task in ASL). */
export interface CallStep {
  kind: "call";
  /** Unique within its stage; with the stage id it names the ASL state and the journal entry. */
  id: string;
  title: string;
  service: Service;
  /** The API operation as the SDK names it (`CreateKey`); ASL uses it camelCased. */
  action: string;
  args: Template;
  /** Variables set from `$states.result` (the call's output), for later steps and stages. */
  assign?: Record<string, string>;
  /** Made as the lab's key-user role (AssumeRole locally; Task `Credentials` in ASL). */
  as?: "keyUser";
  /** Declared when the call changes the account: journaled, and undone by rollback and teardown. */
  effect?: Effect;
  /**
   * The call is expected to fail with one of these error codes (stage 6 proves a denial): the error
   * is the step's success, `assign` is evaluated over `$states.errorOutput` ({Error, Cause}), and a
   * success is a failure of the step.
   */
  expectError?: { errors: string[]; assign?: Record<string, string> };
  /** Errors that count as success (NotFound when deleting something already gone). */
  tolerate?: string[];
  /**
   * The variables this call assigns hold what must never reach disk (an object's plaintext body):
   * the engine keeps them in memory only.
   */
  sensitive?: true;
  /** The variables this call assigns are large and only of the moment (CloudTrail events): not checkpointed. */
  ephemeral?: true;
  /** JSONata: the call is made only when this holds (ASL: a Choice around the Task). */
  when?: string;
  /**
   * Errors that mean "not yet" rather than "no": a role just created that KMS does not accept as a
   * principal yet (IAM propagation). Retried with backoff within the budget (ASL: a Retry).
   * `ANY_ERROR` retries whatever fails (ASL: States.ALL), for a call that can fail only for "not yet".
   */
  retry?: { errors: string[]; budgetSeconds: string };
  /**
   * A read whose answer comes in pages (LookupEvents): both engines follow `NextToken` up to `max`
   * pages (ASL: the Task again with `NextToken`, in a Choice loop), and each `assign` expression is
   * evaluated over each page's result, its values appended page by page (PAGE_APPEND) — so an
   * expression picks from one page (a filter), and its variable lists what every page gave.
   */
  pages?: { max: number };
}

/** In `retry.errors`: any error at all. */
export const ANY_ERROR = "*";

export interface Effect {
  /** What the call creates (for the ledger and the teardown's tag sweep): type and ARN expression. */
  resource?: { type: ResourceType; arn: string };
  /** The calls that undo it, run newest effect first when the stage rolls back or is torn down. */
  undo: (CallStep | PollStep)[];
  /**
   * A resumed run may find its resource already made (the crash fell between the call and its
   * checkpoint): when the call fails with one of `errors`, `read` looks at what is there and `owned`
   * (JSONata over the variables read) says whether it is this run's — then the step counts as done.
   */
  exists?: { errors: string[]; read: CallStep[]; owned: string };
}

/**
 * A precondition assertion: when `condition` is false the stage is blocked (not failed) with
 * `message`. ASL: a Choice into a Fail state.
 */
export interface RequireStep {
  kind: "require";
  id: string;
  title: string;
  condition: string;
  message: string;
}

/**
 * Something that is not an AWS API call (the anonymous GET of stage 4). The local engine runs it;
 * Step Functions cannot, so the export replaces it with `asl.replacement` and says why.
 */
export interface ProbeStep {
  kind: "probe";
  id: string;
  title: string;
  probe: "unsignedGet" | "readLogFiles";
  args: Template;
  assign?: Record<string, string>;
  asl: {
    comment: string;
    replacement: CallStep[];
    /**
     * What the probe's own variables become in Step Functions, computed from the replacement's
     * (JSONata `{% %}` per variable), so that the steps and checks after it read the same names.
     */
    assign?: Record<string, string>;
  };
}

/**
 * Repeats `steps` until `until` holds, `intervalSeconds` apart, within `budgetSeconds` (a JSONata
 * expression, so a parameter can set it): propagation of IAM and key policy changes, CloudTrail
 * delivery. The deadline is absolute and kept in the checkpoint, so a resumed wait keeps its budget.
 * ASL: Wait + Choice loop.
 */
export interface PollStep {
  kind: "poll";
  id: string;
  title: string;
  steps: (CallStep | ProbeStep)[];
  until: string;
  /** JSONata: seconds between attempts (a parameter, so the simulator can poll faster than AWS needs). */
  intervalSeconds: string;
  budgetSeconds: string;
  /** What the learner is told while waiting ("waiting for CloudTrail to deliver"). */
  waitingFor: string;
}

export type Step = CallStep | RequireStep | ProbeStep | PollStep;

/**
 * One graded check: read-only steps gather facts, `score` (JSONata) gives the points earned out of
 * `points` (partial credit where lab.md allows it), `evidence` what is shown in the report, and the
 * messages what the learner and the author (instructor) read when the check is not fully met.
 */
export interface Check {
  id: string;
  title: string;
  points: number;
  read: Step[];
  score: string;
  evidence: Record<string, string>;
  learner: string;
  author: string;
}

export interface StageDef {
  id: StageId;
  title: string;
  points: number;
  dependsOn: StageId[];
  precondition: Step[];
  run: Step[];
  verify: Check[];
}
