import type { Service } from "../steps/dsl.js";
import type { ResolvedParams } from "../steps/params.js";
import { exportedCalls, labNames, TEARDOWN_ORDER } from "../steps/resources.js";
import { allStates } from "./interpreter.js";
import { pascal } from "./sdk.js";
import type { Definition } from "./types.js";

/**
 * The least-privilege IAM policy the state machine's execution role needs, derived from the Tasks
 * the definitions hold (Step Functions does not generate one for `aws-sdk` integrations,
 * aws-subset §5): for each operation, the IAM actions it needs — its own, and those it implies
 * (tags written at creation; the KMS calls S3 makes on the caller's behalf for SSE-KMS; AssumeRole of
 * the key-user role for Tasks with `Credentials`) — on the lab's resources, named from the
 * parameters. Keys have no name before they exist: KMS actions are on the account's keys in the
 * Region, or on the alias. The teardown's Tasks come from the resource-type registry
 * (steps/resources.ts): they act on `$resource`, any of the type's resources the parameters name
 * (both buckets), and its listings (keys, which have no name) on `*`.
 */

export interface PolicyStatement {
  Sid: string;
  Effect: "Allow";
  Action: string[];
  Resource: string[];
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

/** The names a policy is written for: resolved lab parameters (account `*` when not known). */
export type PolicyNames = Pick<
  ResolvedParams,
  "account" | "region" | "keyAlias" | "keyUserRole" | "trailName" | "logBucket" | "dataBucket" | "objectKey"
>;

interface Need {
  actions: string[];
  resources: string[];
}

/** IAM action names where S3's differ from its operation names. */
const S3_ACTIONS: Record<string, string[]> = {
  HeadBucket: ["s3:ListBucket"],
  ListObjectsV2: ["s3:ListBucket"],
  ListObjectVersions: ["s3:ListBucketVersions"],
  HeadObject: ["s3:GetObject"],
  DeleteObjects: ["s3:DeleteObject", "s3:DeleteObjectVersion"],
  GetPublicAccessBlock: ["s3:GetBucketPublicAccessBlock"],
  PutPublicAccessBlock: ["s3:PutBucketPublicAccessBlock"],
};

const OBJECT_OPS = new Set(["HeadObject", "GetObject", "PutObject", "DeleteObject"]);

/** What a registry Task's arguments read: the resource it acts on, not a parameter. */
const REGISTRY_VARIABLES = /\$(resource|owned|items?)\b/;

/** The registry's listings the exported teardown makes (types without names): not resource-scoped. */
const LISTINGS = new Set(
  TEARDOWN_ORDER.flatMap((t) =>
    exportedCalls(t)
      .filter((c) => c.role === "list")
      .map((c) => `${c.call.service}:${c.call.action}`),
  ),
);

/** The IAM actions an operation is authorised as (S3's differ from its operation names). */
export function iamActionsOf(service: Service, action: string): string[] {
  return service === "s3" ? (S3_ACTIONS[action] ?? [`s3:${action}`]) : [`${service}:${action}`];
}

/** What one operation needs, given its Arguments as written (a template). */
function needs(service: Service, action: string, args: Record<string, unknown>, n: PolicyNames): Need[] {
  const keys = `arn:aws:kms:${n.region}:${n.account}:key/*`;
  const role = `arn:aws:iam::${n.account}:role/${n.keyUserRole}`;
  const trail = `arn:aws:cloudtrail:${n.region}:${n.account}:trail/${n.trailName}`;
  // Arguments may be one expression that builds the input (CreateBucket's): the bucket is named in it.
  const text = JSON.stringify(typeof args === "string" ? args : (args.Bucket ?? ""));
  const fromRegistry = REGISTRY_VARIABLES.test(JSON.stringify(args));
  if (LISTINGS.has(`${service}:${action}`)) return [{ actions: [`${service}:${action}`], resources: ["*"] }];
  // A registry Task acts on any of its type's named resources; a stage's names its bucket.
  const buckets = fromRegistry
    ? labNames("AWS::S3::Bucket", n)
    : [text.includes("logBucket") ? n.logBucket : n.dataBucket];
  switch (service) {
    case "sts":
      return [{ actions: [`sts:${action}`], resources: ["*"] }];
    case "iam": {
      // The key-user role by its name; any other role the definition reads is the caller's own (the
      // execution role, whose name and path the definition only learns from GetCallerIdentity).
      const keyUser = JSON.stringify(args.RoleName ?? "").includes("keyUserRole");
      const out: Need[] = [
        { actions: [`iam:${action}`], resources: [keyUser ? role : `arn:aws:iam::${n.account}:role/*`] },
      ];
      if (action === "CreateRole" && args.Tags) out.push({ actions: ["iam:TagRole"], resources: [role] });
      return out;
    }
    case "cloudtrail": {
      if (action === "LookupEvents") return [{ actions: ["cloudtrail:LookupEvents"], resources: ["*"] }];
      const out: Need[] = [{ actions: [`cloudtrail:${action}`], resources: [trail] }];
      if (action === "CreateTrail" && args.TagsList)
        out.push({ actions: ["cloudtrail:AddTags"], resources: [trail] });
      return out;
    }
    case "kms": {
      // Operations on no particular key take "*": "CreateKey, GenerateRandom, ListAliases, and
      // ListKeys" (https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html).
      if (action === "ListAliases" || action === "ListKeys")
        return [{ actions: [`kms:${action}`], resources: ["*"] }];
      if (action === "CreateKey") {
        const out: Need[] = [{ actions: ["kms:CreateKey"], resources: ["*"] }];
        if (args.Tags) out.push({ actions: ["kms:TagResource"], resources: [keys] });
        return out;
      }
      if (action === "CreateAlias" || action === "DeleteAlias")
        return [
          {
            actions: [`kms:${action}`],
            resources: [`arn:aws:kms:${n.region}:${n.account}:${n.keyAlias}`, keys],
          },
        ];
      return [{ actions: [`kms:${action}`], resources: [keys] }];
    }
    case "s3": {
      const actions = iamActionsOf(service, action);
      if (action === "DeleteObjects")
        return [{ actions, resources: buckets.map((b) => `arn:aws:s3:::${b}/*`) }];
      if (!OBJECT_OPS.has(action)) return [{ actions, resources: buckets.map((b) => `arn:aws:s3:::${b}`) }];
      const bucket = buckets[0]!;
      const object = `arn:aws:s3:::${bucket}/${bucket === n.logBucket ? "*" : n.objectKey}`;
      const out: Need[] = [{ actions, resources: [object] }];
      if (action === "PutObject" && args.Tagging)
        out.push({ actions: ["s3:PutObjectTagging"], resources: [object] });
      // SSE-KMS: S3 asks KMS for a data key (upload) or to decrypt one (download) as the caller.
      if (action === "PutObject" && args.SSEKMSKeyId)
        out.push({ actions: ["kms:GenerateDataKey"], resources: [keys] });
      if ((action === "GetObject" || action === "HeadObject") && bucket === n.dataBucket)
        out.push({ actions: ["kms:Decrypt"], resources: [keys] });
      return out;
    }
  }
}

/** The operations (service, action) the definitions' Tasks call, each once, and whether any acts as the key user. */
export function definitionCalls(definitions: Definition[]): {
  calls: { service: Service; action: string; args: Record<string, unknown> }[];
  keyUser: boolean;
} {
  const calls: { service: Service; action: string; args: Record<string, unknown> }[] = [];
  let keyUser = false;
  for (const d of definitions)
    for (const [, state] of allStates(d)) {
      if (state.Type !== "Task" || !state.Resource) continue;
      const m = /^arn:aws:states:::aws-sdk:(\w+):(\w+)$/.exec(state.Resource);
      if (!m) continue;
      if (state.Credentials) {
        keyUser = true;
        continue; // made as the key-user role: that role's permissions, not the execution role's
      }
      calls.push({
        service: m[1] as Service,
        action: pascal(m[2]!),
        args: (state.Arguments ?? {}) as Record<string, unknown>,
      });
    }
  return { calls, keyUser };
}

/** The execution role's policy: one statement per set of resources, actions sorted. */
export function executionRolePolicy(definitions: Definition[], names: PolicyNames): PolicyDocument {
  const { calls, keyUser } = definitionCalls(definitions);
  const byResources = new Map<string, Set<string>>();
  const add = (need: Need) => {
    const key = JSON.stringify([...need.resources].sort());
    const set = byResources.get(key) ?? new Set<string>();
    for (const a of need.actions) set.add(a);
    byResources.set(key, set);
  };
  for (const c of calls) for (const need of needs(c.service, c.action, c.args, names)) add(need);
  // Tasks with Credentials: Step Functions assumes the key-user role with the execution role.
  if (keyUser)
    add({
      actions: ["sts:AssumeRole"],
      resources: [`arn:aws:iam::${names.account}:role/${names.keyUserRole}`],
    });
  const statements = [...byResources.entries()]
    .map(([resources, actions]) => ({
      resources: JSON.parse(resources) as string[],
      actions: [...actions].sort(),
    }))
    .sort((a, b) => a.resources.join().localeCompare(b.resources.join()));
  return {
    Version: "2012-10-17",
    Statement: statements.map((s, i) => ({
      Sid: sid(s.resources, i),
      Effect: "Allow",
      Action: s.actions,
      Resource: s.resources,
    })),
  };
}

function sid(resources: string[], i: number): string {
  const r = resources[0] ?? "";
  const kind =
    r === "*"
      ? "AnyResource"
      : r.includes(":key/")
        ? "LabKeys"
        : r.includes(":alias/")
          ? "LabAlias"
          : r.endsWith(":role/*")
            ? "CallerRole"
            : r.includes(":role/")
              ? "KeyUserRole"
              : r.includes(":trail/")
                ? "LabTrail"
                : r.startsWith("arn:aws:s3:::")
                  ? r.includes("/")
                    ? "LabObjects"
                    : "LabBucket"
                  : "Lab";
  return `${kind}${i + 1}`;
}
