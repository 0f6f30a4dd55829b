import { bucketArn, call, check, lit, must, ownedBy, raw, TRAIL_ARN, tags, x } from "../build.js";
import type { StageDef } from "../dsl.js";
import { bucketIsFree, bucketPrivate, createBucket } from "./buckets.js";

/**
 * Stage 2 (lab.md): CloudTrail logging into a new bucket. The bucket policy is the one CloudTrail
 * documents (aws-subset §3.1), pinned to this trail with `aws:SourceArn`, which keeps the bucket
 * non-public; it can be written before the trail exists because trail ARNs are predictable.
 */
const ID = "trail-to-bucket";

const TRAIL_POLICY = lit({
  Version: "2012-10-17",
  Statement: [
    {
      Sid: "AWSCloudTrailAclCheck20150319",
      Effect: "Allow",
      Principal: { Service: "cloudtrail.amazonaws.com" },
      Action: "s3:GetBucketAcl",
      Resource: raw(bucketArn("logBucket")),
      Condition: { StringEquals: { "aws:SourceArn": raw(TRAIL_ARN) } },
    },
    {
      Sid: "AWSCloudTrailWrite20150319",
      Effect: "Allow",
      Principal: { Service: "cloudtrail.amazonaws.com" },
      Action: "s3:PutObject",
      Resource: raw(`${bucketArn("logBucket")} & "/AWSLogs/" & $params.account & "/*"`),
      Condition: {
        StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": raw(TRAIL_ARN) },
      },
    },
  ],
});

const stopLogging = call(
  "stopLogging",
  "stop logging",
  "cloudtrail",
  "StopLogging",
  { Name: x(TRAIL_ARN) },
  {
    tolerate: ["TrailNotFoundException"],
  },
);

export const trailToBucket: StageDef = {
  id: ID,
  title: "CloudTrail logs into a new bucket",
  points: 15,
  dependsOn: [],
  precondition: [
    call(
      "trailTaken",
      "look for the trail",
      "cloudtrail",
      "GetTrail",
      { Name: x("$params.trailName") },
      {
        tolerate: ["TrailNotFoundException"],
        assign: { existingTrail: x("$states.result.Trail.TrailARN") },
      },
    ),
    call(
      "trailOwner",
      "see which run made the trail",
      "cloudtrail",
      "ListTags",
      {
        ResourceIdList: [x("$existingTrail")],
      },
      {
        when: `$type($existingTrail) = "string"`,
        assign: { existingTrailTags: x("$states.result.ResourceTagList[0].TagsList") },
      },
    ),
    must(
      "trailFree",
      "the trail name is free or this run's",
      `$type($existingTrail) != "string" or ${ownedBy("$existingTrailTags")}`,
      `"a trail named " & $params.trailName & " already exists and was not made by this run: choose another name (--trail-name) or a suffix (--suffix)"`,
    ),
    ...bucketIsFree("logBucket", "--log-bucket"),
  ],
  run: [
    ...createBucket("logBucket", ID, "logBucket"),
    call("trailPolicy", "let CloudTrail write into the bucket (bucket policy)", "s3", "PutBucketPolicy", {
      Bucket: x("$params.logBucket"),
      Policy: x(`$string(${TRAIL_POLICY})`),
    }),
    call(
      "createTrail",
      "create the trail",
      "cloudtrail",
      "CreateTrail",
      {
        Name: x("$params.trailName"),
        S3BucketName: x("$params.logBucket"),
        IsMultiRegionTrail: false,
        IncludeGlobalServiceEvents: true,
        TagsList: tags.keyed(ID),
      },
      {
        assign: { trailArn: x("$states.result.TrailARN") },
        retry: {
          errors: ["InsufficientS3BucketPolicyException"],
          budgetSeconds: "$params.propagationWaitSeconds",
        },
        effect: {
          resource: { type: "AWS::CloudTrail::Trail", arn: TRAIL_ARN },
          undo: [
            stopLogging,
            call(
              "deleteTrail",
              "delete the trail",
              "cloudtrail",
              "DeleteTrail",
              { Name: x(TRAIL_ARN) },
              {
                tolerate: ["TrailNotFoundException"],
              },
            ),
          ],
          exists: {
            errors: ["TrailAlreadyExistsException"],
            read: [
              call(
                "readTrailTags",
                "read the trail's tags",
                "cloudtrail",
                "ListTags",
                {
                  ResourceIdList: [x(TRAIL_ARN)],
                },
                { assign: { existingTrailTags: x("$states.result.ResourceTagList[0].TagsList") } },
              ),
            ],
            owned: ownedBy("$existingTrailTags"),
          },
        },
      },
    ),
    call(
      "startLogging",
      "start logging",
      "cloudtrail",
      "StartLogging",
      { Name: x(TRAIL_ARN) },
      {
        effect: { undo: [stopLogging] },
      },
    ),
  ],
  verify: [
    check(
      "logging",
      "the trail is logging",
      5,
      [
        call(
          "status",
          "read the trail's status",
          "cloudtrail",
          "GetTrailStatus",
          { Name: x("$params.trailName") },
          {
            tolerate: ["TrailNotFoundException"],
            assign: { status: x("$states.result") },
          },
        ),
      ],
      "$status.IsLogging = true ? 5 : 0",
      {
        evidence: { isLogging: "$status.IsLogging", startedAt: "$status.StartLoggingTime" },
        learner: `$type($status) != "object" ? "There is no trail named " & $params.trailName & "." : "The trail " & $params.trailName & " exists but is not logging: start logging (StartLogging)."`,
        author: `"GetTrailStatus.IsLogging = " & ($status.IsLogging = true ? "true" : "false")`,
      },
    ),
    check(
      "delivers",
      "the trail delivers into the log bucket",
      5,
      [
        call(
          "trail",
          "read the trail",
          "cloudtrail",
          "GetTrail",
          { Name: x("$params.trailName") },
          {
            tolerate: ["TrailNotFoundException"],
            assign: { trail: x("$states.result.Trail") },
          },
        ),
        call(
          "status",
          "read the trail's status",
          "cloudtrail",
          "GetTrailStatus",
          { Name: x("$params.trailName") },
          {
            tolerate: ["TrailNotFoundException"],
            assign: { deliveryError: x("$states.result.LatestDeliveryError") },
          },
        ),
      ],
      `$type($trail) != "object" or $trail.S3BucketName != $params.logBucket ? 0 : ($type($deliveryError) = "string" and $deliveryError != "" ? 3 : 5)`,
      {
        evidence: {
          bucket: "$trail.S3BucketName",
          trailArn: "$trail.TrailARN",
          latestDeliveryError: "$deliveryError",
        },
        learner: `$type($trail) != "object" or $trail.S3BucketName != $params.logBucket
          ? "The trail must deliver into the bucket " & $params.logBucket & "."
          : "CloudTrail cannot write into " & $params.logBucket & " (" & $deliveryError & "): its bucket policy must let cloudtrail.amazonaws.com s3:PutObject with bucket-owner-full-control."`,
        author: `"S3BucketName=" & $trail.S3BucketName & ", LatestDeliveryError=" & ($type($deliveryError) = "string" ? $deliveryError : "none")`,
      },
    ),
    bucketPrivate("logBucket", 5),
  ],
};
