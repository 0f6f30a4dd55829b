/**
 * The parts of the Amazon States Language (JSONata mode) that kmslab writes and interprets
 * (https://states-language.net/ and the Step Functions developer guide). Loosely typed: a state is
 * a JSON object whose `Type` says which fields it has.
 */

export interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  BackoffRate?: number;
  MaxAttempts?: number;
  MaxDelaySeconds?: number;
  JitterStrategy?: "FULL" | "NONE";
}

export interface Catcher {
  ErrorEquals: string[];
  Next: string;
  Assign?: Record<string, unknown>;
  Output?: unknown;
}

export interface ChoiceRule {
  Condition: string;
  Next: string;
  Assign?: Record<string, unknown>;
  Output?: unknown;
}

export interface State {
  Type: "Task" | "Pass" | "Choice" | "Wait" | "Parallel" | "Map" | "Succeed" | "Fail";
  Comment?: string;
  Next?: string;
  End?: boolean;
  Assign?: Record<string, unknown>;
  Output?: unknown;
  Arguments?: unknown;
  Resource?: string;
  Credentials?: { RoleArn: string };
  Retry?: Retrier[];
  Catch?: Catcher[];
  Choices?: ChoiceRule[];
  Default?: string;
  Seconds?: number | string;
  Branches?: Branchlike[];
  Error?: string;
  Cause?: string;
  /** Task: a number or a `{% %}` expression; past it the Task fails with States.Timeout. */
  TimeoutSeconds?: number | string;
  /** Map (JSONata mode): the items (default: the state's input), what each iteration gets, its states. */
  Items?: unknown;
  ItemSelector?: unknown;
  ItemProcessor?: Branchlike & { ProcessorConfig?: { Mode?: "INLINE" | "DISTRIBUTED" } };
  MaxConcurrency?: number | string;
  [field: string]: unknown;
}

export interface Branchlike {
  StartAt: string;
  States: Record<string, State>;
}

export interface Definition extends Branchlike {
  Comment?: string;
  /** Past it the execution ends TIMED_OUT. */
  TimeoutSeconds?: number;
  QueryLanguage?: "JSONata" | "JSONPath";
}
