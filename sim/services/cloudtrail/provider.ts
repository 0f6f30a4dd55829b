import type { Account } from "../../account.js";
import type { OperationInfo, ServiceProvider } from "../../core/service.js";

export interface CloudTrailState {
  trails: Record<string, unknown>;
}

/** The simulated AWS CloudTrail (awsJson1_1): trails, event recording, LookupEvents, log delivery. */
export class CloudTrailService implements ServiceProvider {
  readonly service = "cloudtrail";
  readonly protocol = "awsJson1_1" as const;
  readonly eventSource = "cloudtrail.amazonaws.com";
  readonly targetPrefixes = [
    "CloudTrail_20131101",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101",
  ] as const;
  readonly operations: Readonly<Record<string, OperationInfo>> = {};
  readonly state: CloudTrailState;

  constructor(
    readonly account: Account,
    state?: CloudTrailState,
  ) {
    this.state = state ?? { trails: {} };
  }
}
