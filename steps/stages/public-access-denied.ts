import { call, check, must, x } from "../build.js";
import type { ProbeStep, StageDef } from "../dsl.js";
import { bucketPrivate } from "./buckets.js";

/**
 * Stage 4 (lab.md): an anonymous request for the object is refused (403 AccessDenied, S3's XML
 * error), a SigV4-signed one returns it. Step Functions signs every aws-sdk call, so the export
 * replaces the anonymous GET with the bucket's public-access settings and says so.
 */
const ID = "public-access-denied";

const head = call(
  "head",
  "read the object's metadata",
  "s3",
  "HeadObject",
  {
    Bucket: x("$params.dataBucket"),
    Key: x("$params.objectKey"),
  },
  { tolerate: ["NotFound", "NoSuchKey", "NoSuchBucket", "Forbidden"], assign: { head: x("$states.result") } },
);

/** JSONata: the replacement's reads say an anonymous GET is refused (Block Public Access on, policy not public). */
const REFUSED =
  "($anonPublic != true and $anonPab.BlockPublicAcls = true and $anonPab.IgnorePublicAcls = true and $anonPab.BlockPublicPolicy = true and $anonPab.RestrictPublicBuckets = true)";

const unsignedGet = (id: string): ProbeStep => ({
  kind: "probe",
  id,
  title: "GET the object's URL without signing",
  probe: "unsignedGet",
  args: { Bucket: x("$params.dataBucket"), Key: x("$params.objectKey"), Region: x("$params.region") },
  assign: { anonStatus: x("$states.result.status"), anonCode: x("$states.result.code") },
  asl: {
    comment:
      "Step Functions signs every AWS SDK call and cannot send an anonymous request: in place of the unsigned GET this reads the bucket's Block Public Access and policy status, and takes an anonymous GET as refused (403 AccessDenied) when all four settings are on and the policy is not public; the signed GET that follows is made as in the local engine (which sends the unsigned GET itself).",
    replacement: [
      call(
        `${id}Pab`,
        "read Block Public Access",
        "s3",
        "GetPublicAccessBlock",
        { Bucket: x("$params.dataBucket") },
        {
          tolerate: ["NoSuchPublicAccessBlockConfiguration"],
          assign: { anonPab: x("$states.result.PublicAccessBlockConfiguration") },
        },
      ),
      call(
        `${id}PolicyStatus`,
        "read the bucket's policy status",
        "s3",
        "GetBucketPolicyStatus",
        { Bucket: x("$params.dataBucket") },
        {
          tolerate: ["NoSuchBucketPolicy"],
          assign: { anonPublic: x("$states.result.PolicyStatus.IsPublic = true") },
        },
      ),
    ],
    // Both from the replacement's reads: an ASL Assign sees the values from before its state.
    assign: {
      anonStatus: x(`${REFUSED} ? 403 : 200`),
      anonCode: x(`${REFUSED} ? "AccessDenied" : null`),
    },
  },
});

const signedGet = call(
  "signedGet",
  "GET the object with a SigV4-signed request",
  "s3",
  "GetObject",
  {
    Bucket: x("$params.dataBucket"),
    Key: x("$params.objectKey"),
  },
  {
    sensitive: true,
    tolerate: ["AccessDenied", "NoSuchKey", "NoSuchBucket"],
    assign: { body: x("$states.result.Body") },
  },
);

export const publicAccessDenied: StageDef = {
  id: ID,
  title: "public requests fail, signed ones work",
  points: 15,
  dependsOn: ["sse-kms-upload"],
  precondition: [
    head,
    must(
      "objectExists",
      "the object exists",
      `$type($head) = "object"`,
      `"the object " & $params.objectKey & " is not in " & $params.dataBucket & " (stage 3 uploads it)"`,
    ),
  ],
  run: [unsignedGet("unsigned"), signedGet],
  verify: [
    check(
      "unsigned-denied",
      "an unsigned GET of the object is refused with 403 AccessDenied",
      7,
      [unsignedGet("unsigned")],
      `$anonStatus = 403 and $anonCode = "AccessDenied" ? 7 : 0`,
      {
        evidence: { status: "$anonStatus", code: "$anonCode" },
        learner: `$anonStatus = 200 ? "Anyone can download " & $params.objectKey & " without credentials: remove the public grant and turn Block Public Access on."
          : $anonCode = "InvalidArgument" ? "The bucket lets anonymous requests through to " & $params.objectKey & ": only SSE-KMS's need for a signed request stopped this one (400 InvalidArgument, not 403 AccessDenied). Remove the public grant and turn Block Public Access on."
          : "An unsigned GET should get 403 AccessDenied; it got " & $string($anonStatus) & " " & $string($anonCode) & "."`,
        author: `"unsigned GET → " & $string($anonStatus) & " " & $string($anonCode)`,
      },
    ),
    check(
      "signed-works",
      "a signed GET returns the uploaded body",
      5,
      [head, signedGet],
      `$type($body) = "string" and ($type($head.Metadata.sha256) = "string" ? $hash($body, "SHA-256") = $head.Metadata.sha256 : true) ? 5 : 0`,
      {
        evidence: {
          bodySha256: `$type($body) = "string" ? $hash($body, "SHA-256") : null`,
          uploadedSha256: "$head.Metadata.sha256",
        },
        learner: `$type($body) != "string" ? "A signed GET of " & $params.objectKey & " failed: you (the caller) need s3:GetObject and kms:Decrypt." : "The body downloaded differs from the one uploaded."`,
        author: `"signed GET " & ($type($body) = "string" ? "returned " & $string($length($body)) & " characters" : "failed")`,
      },
    ),
    bucketPrivate("dataBucket", 3),
  ],
};
