import { createState, type JournalEntry, type LedgerEntry, type StateFile } from "../../state/index.js";

/**
 * A state shaped like one in the middle of a lab run: the lab's parameters, an XState snapshot with
 * six stage regions, per-stage records, an effect journal (intent and done per effect) and a ledger.
 * `events` adds polled evidence (CloudTrail events seen during stage 5's wait) to make large states:
 * 0 gives about 6 KiB (8 KiB on disk, indented), 400 about 300 KiB on disk. Used by the state tests and the bench.
 */
export function sampleState(events = 0): StateFile {
  const accountId = "123456789012";
  const region = "us-east-1";
  const runId = "run-3f9c2a";
  const state = createState({
    target: { kind: "sim", region, accountId },
    runId,
    machineVersion: "1",
    params: {
      region,
      keyAlias: "alias/myFirstKey",
      keyUserRole: "kmslab-key-user",
      trailName: "kmslab-trail",
      logBucket: `kmslab-trail-${accountId}-${region}`,
      dataBucket: `kmslab-data-${accountId}-${region}`,
      objectKey: "reports/secret-report.txt",
      suffix: "",
    },
    now: new Date("2026-11-28T10:00:00.000Z"),
  });
  const keyArn = `arn:aws:kms:${region}:${accountId}:key/0b6f3c1e-6a8e-4c57-9d55-2f1d8f0a7c11`;
  const stageIds = [
    "create-key",
    "trail-to-bucket",
    "sse-kms-upload",
    "public-access-denied",
    "trail-key-usage",
    "key-user-access",
  ];
  const effects: [string, string, string, string][] = [
    ["create-key", "iam", "CreateRole", `arn:aws:iam::${accountId}:role/kmslab-key-user`],
    ["create-key", "iam", "PutRolePolicy", `arn:aws:iam::${accountId}:role/kmslab-key-user`],
    ["create-key", "kms", "CreateKey", keyArn],
    ["create-key", "kms", "CreateAlias", `arn:aws:kms:${region}:${accountId}:alias/myFirstKey`],
    ["trail-to-bucket", "s3", "CreateBucket", `arn:aws:s3:::kmslab-trail-${accountId}-${region}`],
    ["trail-to-bucket", "s3", "PutPublicAccessBlock", `arn:aws:s3:::kmslab-trail-${accountId}-${region}`],
    ["trail-to-bucket", "s3", "PutBucketPolicy", `arn:aws:s3:::kmslab-trail-${accountId}-${region}`],
  ];
  const journal: JournalEntry[] = [];
  const ledger: LedgerEntry[] = [];
  let seq = 0;
  // Stage 1 done, stage 2 in flight: its PutBucketPolicy has an intent and no result yet.
  const inFlight = 6;
  for (const [n, [stageId, service, operation, arn]] of effects.entries()) {
    const at = new Date(Date.UTC(2026, 10, 28, 10, 0, seq)).toISOString();
    journal.push({
      seq: ++seq,
      stageId,
      effectId: operation.replace(/^./, (c) => c.toLowerCase()),
      service,
      operation,
      phase: "intent",
      at,
      input: { name: arn.split(/[/:]/).pop() },
    });
    if (n === inFlight) break;
    journal.push({
      seq: ++seq,
      stageId,
      effectId: operation.replace(/^./, (c) => c.toLowerCase()),
      service,
      operation,
      phase: "done",
      at,
      resourceArn: arn,
    });
    if (operation.startsWith("Create"))
      ledger.push({
        arn,
        type: `AWS::${service.toUpperCase()}::${operation.replace(/^(Create|Put)/, "")}`,
        stageId,
        createdAt: at,
        tags: { "kmslab:run": runId, "kmslab:stage": stageId },
      });
  }
  state.journal = journal;
  state.ledger = ledger;
  for (const [i, id] of stageIds.entries()) {
    state.stages[id] = {
      status: i < 1 ? "passed" : i === 1 ? "running" : "pending",
      attempts: 1,
      startedAt: new Date(Date.UTC(2026, 10, 28, 10, i)).toISOString(),
      ...(i < 1 ? { endedAt: new Date(Date.UTC(2026, 10, 28, 10, i, 30)).toISOString() } : {}),
      outputs: i === 0 ? { keyArn } : {},
      evidence: i < 1 ? [{ check: "verified", points: 15 }] : [],
    };
  }
  const seen = Array.from({ length: events }, (_, i) => ({
    EventId: `5c1b7e0a-${String(i).padStart(4, "0")}-4d9e-8c33-3f1a9e0b7d21`,
    EventName: i % 2 ? "Decrypt" : "GenerateDataKey",
    EventTime: new Date(Date.UTC(2026, 10, 28, 10, 5, i % 60)).toISOString(),
    Username: "admin",
    Resources: [{ ResourceType: "AWS::KMS::Key", ResourceName: keyArn }],
    EncryptionContext: {
      "aws:s3:arn": `arn:aws:s3:::kmslab-data-${accountId}-${region}/reports/secret-report.txt`,
    },
    SourceIPAddress: "s3.amazonaws.com",
    UserAgent: "s3.amazonaws.com",
  }));
  if (events > 0) state.stages["trail-to-bucket"]!.evidence.push({ lookupEvents: seen });
  state.snapshot = {
    status: "active",
    value: Object.fromEntries(
      stageIds.map((id, i) => [id, i < 1 ? "passed" : i === 1 ? "running" : "waiting"]),
    ),
    context: {
      runId,
      deadlines: { "trail-key-usage/wait": Date.UTC(2026, 10, 28, 10, 25) },
      stages: Object.fromEntries(stageIds.map((id, i) => [id, { status: i < 1 ? "passed" : "pending" }])),
    },
    children: {
      "trail-to-bucket.run": {
        snapshot: { status: "active", input: { stageId: "trail-to-bucket" } },
        src: "runStage",
      },
    },
    historyValue: {},
    tags: [],
  };
  return state;
}
