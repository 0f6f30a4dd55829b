import { call, check, must, OBJECT_ARN, OBJECT_BODY, tags, x } from "../build.js";
import type { StageDef } from "../dsl.js";
import { bucketIsFree, createBucket } from "./buckets.js";

/**
 * Stage 3 (lab.md): an object encrypted with SSE-KMS under the lab's key, bucket key off, so that
 * every use of the object reaches KMS — and CloudTrail — as a GenerateDataKey or a Decrypt whose
 * encryption context is the object's ARN. The body is a function of the parameters, and its
 * SHA-256 travels as object metadata, so stage 4 can prove a download returned what was uploaded.
 */
const ID = "sse-kms-upload";

export const describeKeyByAlias = call(
  "key",
  "describe the key by its alias",
  "kms",
  "DescribeKey",
  {
    KeyId: x("$params.keyAlias"),
  },
  { tolerate: ["NotFoundException"], assign: { key: x("$states.result.KeyMetadata") } },
);

/** The upload: SSE-KMS under the key (`$key`), bucket key off, the body's SHA-256 as metadata. */
export const UPLOAD = {
  Bucket: x("$params.dataBucket"),
  Key: x("$params.objectKey"),
  Body: x(OBJECT_BODY),
  ContentType: "text/plain; charset=utf-8",
  ServerSideEncryption: "aws:kms",
  SSEKMSKeyId: x("$key.Arn"),
  BucketKeyEnabled: false,
  Metadata: { sha256: x(`$hash(${OBJECT_BODY}, "SHA-256")`) },
  Tagging: tags.header(ID),
};

export const sseKmsUpload: StageDef = {
  id: ID,
  title: "an object encrypted with SSE-KMS",
  points: 15,
  dependsOn: ["create-key"],
  precondition: [
    describeKeyByAlias,
    must(
      "keyEnabled",
      "the key is enabled",
      `$key.KeyState = "Enabled"`,
      `$type($key) != "object" ? "no key answers to " & $params.keyAlias & " (stage 1 makes it)" : "the key " & $key.Arn & " is " & $key.KeyState & ", not Enabled"`,
    ),
    // DryRun answers DryRunOperationException exactly when the real call would be allowed.
    call(
      "mayUse",
      "check the caller may use the key",
      "kms",
      "GenerateDataKey",
      {
        KeyId: x("$key.Arn"),
        KeySpec: "AES_256",
        DryRun: true,
      },
      { expectError: { errors: ["DryRunOperationException"], assign: { mayUseKey: x("true") } } },
    ),
    must(
      "mayUseKey",
      "the caller may use the key",
      "$mayUseKey = true",
      `"this identity may not use the key " & $key.Arn & " (kms:GenerateDataKey)"`,
    ),
    ...bucketIsFree("dataBucket", "--data-bucket"),
  ],
  run: [
    ...createBucket("dataBucket", ID, "dataBucket"),
    call(
      "upload",
      "upload the object with SSE-KMS under the key (bucket key off)",
      "s3",
      "PutObject",
      UPLOAD,
      {
        assign: { objectETag: x("$states.result.ETag") },
        effect: {
          resource: { type: "AWS::S3::Object", arn: OBJECT_ARN },
          undo: [
            call(
              "deleteObject",
              "delete the object",
              "s3",
              "DeleteObject",
              {
                Bucket: x("$params.dataBucket"),
                Key: x("$params.objectKey"),
              },
              { tolerate: ["NoSuchBucket", "NoSuchKey"] },
            ),
          ],
        },
      },
    ),
  ],
  verify: [
    check(
      "encrypted",
      "the object is encrypted with SSE-KMS under the lab's key, bucket key off",
      15,
      [
        describeKeyByAlias,
        call(
          "head",
          "read the object's metadata",
          "s3",
          "HeadObject",
          {
            Bucket: x("$params.dataBucket"),
            Key: x("$params.objectKey"),
          },
          {
            tolerate: ["NotFound", "NoSuchKey", "NoSuchBucket", "Forbidden"],
            assign: { head: x("$states.result") },
          },
        ),
      ],
      `$type($head) != "object" ? 0
        : $head.ServerSideEncryption = "aws:kms" and $head.SSEKMSKeyId = $key.Arn ? ($head.BucketKeyEnabled = true ? 10 : 15)
        : $head.ServerSideEncryption = "aws:kms" ? 8
        : 4`,
      {
        evidence: {
          objectArn: OBJECT_ARN,
          serverSideEncryption: "$head.ServerSideEncryption",
          kmsKeyArn: "$head.SSEKMSKeyId",
          bucketKeyEnabled: "$head.BucketKeyEnabled = true",
        },
        learner: `$type($head) != "object" ? "There is no object " & $params.objectKey & " in " & $params.dataBucket & "."
          : $head.ServerSideEncryption != "aws:kms" ? "The object is encrypted with " & $head.ServerSideEncryption & " (SSE-S3); upload it with SSE-KMS (aws:kms) under " & $params.keyAlias & "."
          : $head.SSEKMSKeyId != $key.Arn ? "The object is encrypted under another KMS key (" & $head.SSEKMSKeyId & "), not " & $params.keyAlias & "."
          : "Turn the S3 Bucket Key off for this upload: with it, S3 rarely calls KMS and CloudTrail shows little of the key's use."`,
        author: `"HeadObject: SSE=" & $head.ServerSideEncryption & ", key=" & $head.SSEKMSKeyId & ", bucketKey=" & ($head.BucketKeyEnabled = true ? "on" : "off")`,
      },
    ),
  ],
};
