import { call, check, must, OBJECT_ARN, poll, x } from "../build.js";
import type { CallStep, ProbeStep, StageDef } from "../dsl.js";
import { objectExists } from "./buckets.js";
import { describeKeyByAlias, UPLOAD } from "./sse-kms-upload.js";

/**
 * Stage 5 (lab.md): CloudTrail saw the key being used for the object — the GenerateDataKey of the
 * upload and the Decrypt of the signed download, each with the object's ARN as encryption context —
 * in LookupEvents and in a log file delivered into the log bucket. CloudTrail takes minutes on AWS:
 * the run polls within a budget (an absolute deadline, so a resumed run keeps what is left of it),
 * no faster than CloudTrail's 2 LookupEvents per second.
 */
const ID = "trail-key-usage";

/** JSONata: the events of one name whose encryption context names the lab's object. */
const forObject = (source: string, eventName?: string) =>
  `[${source}[${eventName ? `eventName = "${eventName}" and ` : ""}requestParameters.encryptionContext."aws:s3:arn" = ${OBJECT_ARN} and $not($exists(errorCode))]]`;

/**
 * How many pages of 50 a lookup reads at most (2,000 events), in both engines. One page is not
 * enough: stage 6's polls add two Decrypts on the key a round, so while a key policy change
 * propagates (tens of seconds on AWS) its PutKeyPolicy falls out of the newest 50.
 */
export const LOOKUP_PAGES = 40;

/**
 * A LookupEvents by one attribute, every page (up to LOOKUP_PAGES), each page's records parsed into
 * `$events` for the `assign` expressions (each picks from one page: CallStep.pages). `startTime`
 * (JSONata, epoch milliseconds) leaves out what came before; it is sent as ISO 8601 text, which the
 * SDK takes for a timestamp (as Step Functions' aws-sdk integration is expected to: unconfirmed).
 */
export const eventLookup = (
  id: string,
  description: string,
  attribute: { AttributeKey: string; AttributeValue: string },
  assign: Record<string, string>,
  options: { when: string; startTime?: string },
): CallStep =>
  call(
    id,
    description,
    "cloudtrail",
    "LookupEvents",
    {
      LookupAttributes: [attribute],
      ...(options.startTime ? { StartTime: x(`$fromMillis(${options.startTime})`) } : {}),
      MaxResults: 50,
    },
    {
      when: options.when,
      ephemeral: true,
      pages: { max: LOOKUP_PAGES },
      assign: Object.fromEntries(
        Object.entries(assign).map(([k, v]) => [
          k,
          x(`($events := [$states.result.Events.$parse(CloudTrailEvent)]; ${v})`),
        ]),
      ),
    },
  );

/**
 * A LookupEvents of the lab's key by its ARN — by the key, not the event name, so that learners
 * sharing an account each find their own key's events instead of being crowded out by everyone's,
 * and one lookup serves every event a step needs (CloudTrail allows an account 2 a second).
 */
export const keyLookup = (id: string, description: string, assign: Record<string, string>): CallStep =>
  eventLookup(id, description, { AttributeKey: "ResourceName", AttributeValue: x("$key.Arn") }, assign, {
    when: `$type($key) = "object"`,
  });

/** The upload's and the download's use of the key, from one lookup. */
const lookupKeyUse = keyLookup("lookupKeyUse", "look up the key's GenerateDataKey and Decrypt events", {
  generated: forObject("$events", "GenerateDataKey"),
  decrypted: forObject("$events", "Decrypt"),
});

/**
 * The verification's read of CloudTrail: every event on the lab's key, all pages, so that learners
 * sharing an account are each graded on their own key's history, which the grader's own reads lengthen.
 */
export const keyEvents = (assign: Record<string, string>): CallStep =>
  keyLookup("keyEvents", "look up the key's events", assign);

/**
 * `after` (JSONata, epoch milliseconds): the files to read start from when the events were made, oldest
 * first — a log bucket shared by a busy account holds many newer files that cannot hold them.
 */
const readLogFiles = (id: string, after?: string): ProbeStep => ({
  kind: "probe",
  id,
  title: "read the log files CloudTrail delivered",
  probe: "readLogFiles",
  args: {
    Bucket: x("$params.logBucket"),
    Prefix: x(`"AWSLogs/" & $params.account & "/CloudTrail/" & $params.region & "/"`),
    Want: ["GenerateDataKey", "Decrypt"],
    ContextArn: x(OBJECT_ARN),
    // Null when the events are not found (yet): every file is read.
    ...(after ? { After: x(`($t := ${after}; $exists($t) ? $t : null)`) } : {}),
  },
  assign: {
    logFiles: x("$states.result.files"),
    logRecords: x(forObject(`$states.result.records[eventSource = "kms.amazonaws.com"]`)),
  },
  asl: {
    comment:
      "Step Functions cannot gunzip a delivered log file: this lists the files under the trail's prefix instead and takes a delivered file as holding the key's GenerateDataKey and Decrypt events (the local engine reads the files and looks for them).",
    replacement: [
      call(
        `${id}List`,
        "list the delivered log files",
        "s3",
        "ListObjectsV2",
        {
          Bucket: x("$params.logBucket"),
          Prefix: x(`"AWSLogs/" & $params.account & "/CloudTrail/" & $params.region & "/"`),
        },
        { assign: { logFileCount: x("$states.result.KeyCount") } },
      ),
    ],
    assign: {
      logFiles: x("$logFileCount"),
      logRecords: x(`$logFileCount > 0 ? [{"eventName": "GenerateDataKey"}, {"eventName": "Decrypt"}] : []`),
    },
  },
});

const usedWithKey = (events: string, points: number) =>
  `($count(${events}[$key.Arn in resources.ARN]) > 0 ? ${points} : 0)`;
const inLog = (name: string, points: number) =>
  `($count($logRecords[eventName = "${name}"]) > 0 ? ${points} : 0)`;

export const trailKeyUsage: StageDef = {
  id: ID,
  title: "CloudTrail saw the key being used",
  points: 20,
  dependsOn: ["trail-to-bucket", "sse-kms-upload", "public-access-denied"],
  precondition: [
    call(
      "status",
      "read the trail's status",
      "cloudtrail",
      "GetTrailStatus",
      { Name: x("$params.trailName") },
      {
        tolerate: ["TrailNotFoundException"],
        assign: { isLogging: x("$states.result.IsLogging") },
      },
    ),
    must(
      "logging",
      "the trail is logging",
      "$isLogging = true",
      `"the trail " & $params.trailName & " is not logging (stage 2 starts it)"`,
    ),
    ...objectExists(),
  ],
  run: [
    // Stage 3 may have uploaded (and stage 4 downloaded) before stage 2's trail started logging —
    // they do not depend on each other. The same upload (same body, same key) and a signed download
    // are made again now that the trail logs, so that its log files can hold them.
    describeKeyByAlias,
    call("uploadAgain", "upload the object again while the trail logs", "s3", "PutObject", UPLOAD),
    call(
      "downloadAgain",
      "download the object again while the trail logs",
      "s3",
      "GetObject",
      { Bucket: x("$params.dataBucket"), Key: x("$params.objectKey") },
      { sensitive: true, assign: { downloadedAgain: x('$type($states.result.Body) = "string"') } },
    ),
    poll(
      "events",
      "wait until LookupEvents shows the upload's and the download's use of the key",
      [lookupKeyUse],
      {
        until: "$count($generated) > 0 and $count($decrypted) > 0",
        intervalSeconds: "$params.pollSeconds",
        budgetSeconds: "$params.trailWaitSeconds",
        waitingFor: "CloudTrail's event history (LookupEvents)",
      },
    ),
    poll("delivery", "wait until a delivered log file holds both events", [readLogFiles("logFiles")], {
      until: `"GenerateDataKey" in $logRecords.eventName and "Decrypt" in $logRecords.eventName`,
      intervalSeconds: "$params.pollSeconds",
      budgetSeconds: "$params.trailWaitSeconds",
      waitingFor: "CloudTrail to deliver a log file",
    }),
  ],
  verify: [
    check(
      "lookup-events",
      "LookupEvents shows GenerateDataKey and Decrypt on the key with the object's ARN as context",
      12,
      [
        describeKeyByAlias,
        keyEvents({
          generated: forObject(`$events[eventName = "GenerateDataKey"]`),
          decrypted: forObject(`$events[eventName = "Decrypt"]`),
        }),
      ],
      `${usedWithKey("$generated", 6)} + ${usedWithKey("$decrypted", 6)}`,
      {
        evidence: {
          keyArn: "$key.Arn",
          generateDataKeyEvents: "$generated.eventID",
          decryptEvents: "$decrypted.eventID",
        },
        learner: `"CloudTrail's event history should show " & $join([
          $count($generated[$key.Arn in resources.ARN]) = 0 ? "a GenerateDataKey (the SSE-KMS upload)" : (),
          $count($decrypted[$key.Arn in resources.ARN]) = 0 ? "a Decrypt (the signed download)" : ()
        ], " and ") & " on " & $params.keyAlias & " with encryption context aws:s3:arn = " & ${OBJECT_ARN} & "; events can take several minutes to appear."`,
        author: `"GenerateDataKey events: " & $string($count($generated)) & ", Decrypt events: " & $string($count($decrypted))`,
      },
    ),
    check(
      "log-file",
      "a delivered log file holds both events",
      8,
      [
        describeKeyByAlias,
        keyEvents({
          usedAt: `${forObject(`$events[eventName in ["GenerateDataKey", "Decrypt"]]`)}.$toMillis(eventTime)`,
        }),
        readLogFiles("logFiles", `$type($usedAt) = "array" ? $min($usedAt)`),
      ],
      `${inLog("GenerateDataKey", 4)} + ${inLog("Decrypt", 4)}`,
      {
        evidence: { logFiles: "$logFiles", events: "$logRecords.eventID" },
        learner: `$logFiles = 0 ? "No log file has been delivered into " & $params.logBucket & " yet: is the trail logging, and does the bucket policy let CloudTrail write?"
          : "The delivered log files do not yet hold both the GenerateDataKey and the Decrypt for the object; CloudTrail delivers about every 5 minutes."`,
        author: `"log files: " & $string($logFiles) & ", matching records: " & $string($count($logRecords))`,
      },
    ),
  ],
};
