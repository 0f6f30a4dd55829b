import { bucketArn, call, createBucketArgs, must, ownedBy, poll, tags, x } from "../build.js";
import type { CallStep, Check, PollStep, StageId, Step } from "../dsl.js";

/**
 * What stages 2 and 3 both do with a bucket of their own: make sure the name is free (or this
 * run's), create it with its tags and Block Public Access, and undo that by emptying and deleting
 * it. Emptying re-lists until nothing is left: CloudTrail may deliver one more file after logging
 * stops (aws-subset §7).
 */
type BucketParam = "logBucket" | "dataBucket";

export function bucketIsFree(param: BucketParam, flag: string): Step[] {
  const v = `${param}Tags`;
  return [
    call(
      `${param}Taken`,
      `look for the bucket ${param}`,
      "s3",
      "HeadBucket",
      { Bucket: x(`$params.${param}`) },
      {
        tolerate: ["NotFound", "NoSuchBucket"],
        assign: { [`${param}Exists`]: x("true") },
      },
    ),
    call(
      `${param}Owner`,
      "see which run made the bucket",
      "s3",
      "GetBucketTagging",
      { Bucket: x(`$params.${param}`) },
      {
        when: `$${param}Exists = true`,
        tolerate: ["NoSuchTagSet"],
        assign: { [v]: x("$states.result.TagSet") },
      },
    ),
    must(
      `${param}Free`,
      "the bucket is free or this run's",
      `$${param}Exists != true or ${ownedBy(`$${v}`)}`,
      `"a bucket named " & $params.${param} & " already exists and was not made by this run: choose another name (${flag}) or a suffix (--suffix)"`,
    ),
  ];
}

/** Precondition of the stages that use stage 3's object: it is there (HeadObject), or the stage is blocked. */
export function objectExists(): Step[] {
  return [
    call(
      "head",
      "look for the object",
      "s3",
      "HeadObject",
      { Bucket: x("$params.dataBucket"), Key: x("$params.objectKey") },
      { tolerate: ["NotFound", "NoSuchKey", "NoSuchBucket"], assign: { objectThere: x("true") } },
    ),
    must(
      "objectExists",
      "the object exists",
      "$objectThere = true",
      `"the object " & $params.objectKey & " is not in " & $params.dataBucket & " (stage 3 uploads it)"`,
    ),
  ];
}

export function emptyBucket(param: BucketParam, prefix: string): PollStep {
  return poll(
    `${prefix}Empty`,
    "empty the bucket (every version and delete marker)",
    [
      call(
        `${prefix}List`,
        "list what is left",
        "s3",
        "ListObjectVersions",
        { Bucket: x(`$params.${param}`) },
        {
          tolerate: ["NoSuchBucket"],
          assign: {
            [`${prefix}Left`]: x(
              `[$append($append([], $states.result.Versions), $states.result.DeleteMarkers).{"Key": Key, "VersionId": VersionId}]`,
            ),
          },
        },
      ),
      call(
        `${prefix}Delete`,
        "delete what is left",
        "s3",
        "DeleteObjects",
        { Bucket: x(`$params.${param}`), Delete: { Objects: x(`$${prefix}Left`), Quiet: true } },
        {
          when: `$type($${prefix}Left) = "array" and $count($${prefix}Left) > 0`,
          tolerate: ["NoSuchBucket"],
        },
      ),
    ],
    {
      // A bucket already gone leaves the list null (its NoSuchBucket tolerated): nothing left either.
      until: `$type($${prefix}Left) != "array" or $count($${prefix}Left) = 0`,
      intervalSeconds: "2",
      budgetSeconds: "$params.trailWaitSeconds",
      waitingFor: "the bucket to be empty (CloudTrail may deliver one last file)",
    },
  );
}

/** CreateBucket as an effect, followed by its tags and Block Public Access. */
export function createBucket(param: BucketParam, stage: StageId, prefix: string): CallStep[] {
  return [
    call(`${prefix}Create`, `create the bucket`, "s3", "CreateBucket", createBucketArgs(`$params.${param}`), {
      effect: {
        resource: { type: "AWS::S3::Bucket", arn: bucketArn(param) },
        undo: [
          emptyBucket(param, prefix),
          call(
            `${prefix}Remove`,
            "delete the bucket",
            "s3",
            "DeleteBucket",
            { Bucket: x(`$params.${param}`) },
            {
              tolerate: ["NoSuchBucket"],
            },
          ),
        ],
        exists: {
          errors: ["BucketAlreadyOwnedByYou"],
          read: [
            call(
              `${prefix}ReadTags`,
              "read the bucket's tags",
              "s3",
              "GetBucketTagging",
              {
                Bucket: x(`$params.${param}`),
              },
              { tolerate: ["NoSuchTagSet"], assign: { [`${param}Tags`]: x("$states.result.TagSet") } },
            ),
          ],
          owned: ownedBy(`$${param}Tags`),
        },
      },
    }),
    call(`${prefix}Tag`, "tag the bucket", "s3", "PutBucketTagging", {
      Bucket: x(`$params.${param}`),
      Tagging: { TagSet: tags.keyed(stage) },
    }),
    call(`${prefix}Private`, "turn every Block Public Access setting on", "s3", "PutPublicAccessBlock", {
      Bucket: x(`$params.${param}`),
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        IgnorePublicAcls: true,
        BlockPublicPolicy: true,
        RestrictPublicBuckets: true,
      },
    }),
  ];
}

/** A check that the bucket is not public: its policy status (3 points) and Block Public Access (2). */
export function bucketPrivate(param: BucketParam, points: 3 | 5): Check {
  const policyPoints = points === 5 ? 3 : 2;
  const bpaPoints = points - policyPoints;
  return {
    id: "private",
    title: "the bucket is not public",
    points,
    read: [
      call(
        "policyStatus",
        "read the bucket's policy status",
        "s3",
        "GetBucketPolicyStatus",
        {
          Bucket: x(`$params.${param}`),
        },
        {
          tolerate: ["NoSuchBucketPolicy", "NoSuchBucket"],
          assign: { isPublic: x("$states.result.PolicyStatus.IsPublic") },
        },
      ),
      call(
        "publicAccessBlock",
        "read Block Public Access",
        "s3",
        "GetPublicAccessBlock",
        {
          Bucket: x(`$params.${param}`),
        },
        {
          tolerate: ["NoSuchPublicAccessBlockConfiguration", "NoSuchBucket"],
          assign: { pab: x("$states.result.PublicAccessBlockConfiguration") },
        },
      ),
      call(
        "exists",
        "look for the bucket",
        "s3",
        "HeadBucket",
        { Bucket: x(`$params.${param}`) },
        {
          tolerate: ["NotFound", "NoSuchBucket"],
          assign: { bucketExists: x("true") },
        },
      ),
    ],
    score: `$bucketExists != true ? 0 : ($isPublic = true ? 0 : ${policyPoints}) + ($pab.BlockPublicAcls and $pab.IgnorePublicAcls and $pab.BlockPublicPolicy and $pab.RestrictPublicBuckets ? ${bpaPoints} : 0)`,
    evidence: { isPublic: "$isPublic = true", blockPublicAccess: "$pab" },
    learner: `$bucketExists != true ? "The bucket " & $params.${param} & " does not exist." : ($isPublic = true ? "The bucket policy of " & $params.${param} & " makes it public: grant only named principals or services, pinned by conditions." : "Turn on all four Block Public Access settings of " & $params.${param} & ".")`,
    author: `"IsPublic=" & ($isPublic = true ? "true" : "false") & ", BPA=" & $string($pab)`,
  };
}
