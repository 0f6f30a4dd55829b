import { CloudTrailClient, CreateTrailCommand, StartLoggingCommand } from "@aws-sdk/client-cloudtrail";
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from "@aws-sdk/client-iam";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  KMSClient,
  PutKeyPolicyCommand,
} from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  PutPublicAccessBlockCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import type { Simulator } from "../../sim/simulator.js";

/**
 * The lab done by hand through the AWS SDK, as a learner following the lab sheet would do it
 * (no kmslab tags, no state file), with any of the mistakes graders see most. `suffix` names a
 * learner's resources when several share one account.
 */
export interface Mistakes {
  /** The key policy has no key-users statement (and stage 6 is never done). */
  noKeyUserStatement?: boolean;
  /** The trail is created but logging never started. */
  trailNotLogging?: boolean;
  /** The object is uploaded with SSE-S3 (AES256) instead of SSE-KMS. */
  sseS3?: boolean;
  /** The upload turns the S3 Bucket Key on. */
  bucketKey?: boolean;
  /** The data bucket gets a public-read bucket policy (Block Public Access off). */
  publicPolicy?: boolean;
  /** Stage 6: the key user is never removed from the key policy. */
  neverRemoved?: boolean;
  /** Stage 6: the key user is removed, denied, and never put back. */
  leftRemoved?: boolean;
  /** The log bucket's policy lets CloudTrail check the ACL but not write (after the trail exists). */
  noCloudTrailWrite?: boolean;
  /** The alias is created with another name than the lab's. */
  wrongAlias?: string;
}

export async function labByHand(sim: Simulator, mistakes: Mistakes = {}, suffix = ""): Promise<void> {
  const config = sim.clientConfig();
  const account = sim.account.accountId;
  const region = "us-east-1";
  const iam = new IAMClient(config);
  const kms = new KMSClient(config);
  const s3 = new S3Client({ ...config, forcePathStyle: true });
  const trail = new CloudTrailClient(config);
  const roleName = `kmslab-key-user${suffix}`;
  const roleArn = `arn:aws:iam::${account}:role/${roleName}`;
  const logBucket = `kmslab-trail-${account}-${region}${suffix}`;
  const dataBucket = `kmslab-data-${account}-${region}${suffix}`;
  const trailName = `kmslab-trail${suffix}`;
  const trailArn = `arn:aws:cloudtrail:${region}:${account}:trail/${trailName}`;
  const objectKey = "reports/secret-report.txt";
  const root = `arn:aws:iam::${account}:root`;
  const caller = `arn:aws:iam::${account}:user/${sim.account.adminUserName}`;

  // Stage 1: the key user (S3 read only, no KMS in IAM), the key with a console-style policy, the alias.
  await iam.send(
    new CreateRoleCommand({
      RoleName: roleName,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { AWS: root }, Action: "sts:AssumeRole" }],
      }),
    }),
  );
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: roleName,
      PolicyName: "read-data",
      PolicyDocument: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: `arn:aws:s3:::${dataBucket}/*` }],
      }),
    }),
  );
  const policy = (withRole: boolean) =>
    JSON.stringify({
      Version: "2012-10-17",
      Id: "key-consolepolicy-3",
      Statement: [
        {
          Sid: "Enable IAM User Permissions",
          Effect: "Allow",
          Principal: { AWS: root },
          Action: "kms:*",
          Resource: "*",
        },
        {
          Sid: "Allow access for Key Administrators",
          Effect: "Allow",
          Principal: { AWS: caller },
          Action: [
            "kms:Create*",
            "kms:Describe*",
            "kms:Enable*",
            "kms:List*",
            "kms:Put*",
            "kms:Update*",
            "kms:Revoke*",
            "kms:Disable*",
            "kms:Get*",
            "kms:Delete*",
            "kms:ScheduleKeyDeletion",
            "kms:CancelKeyDeletion",
          ],
          Resource: "*",
        },
        ...(withRole
          ? [
              {
                Sid: "Allow use of the key",
                Effect: "Allow",
                Principal: { AWS: roleArn },
                Action: [
                  "kms:Encrypt",
                  "kms:Decrypt",
                  "kms:ReEncrypt*",
                  "kms:GenerateDataKey*",
                  "kms:DescribeKey",
                ],
                Resource: "*",
              },
            ]
          : []),
      ],
    });
  const key = (
    await kms.send(
      new CreateKeyCommand({ Description: "my first key", Policy: policy(!mistakes.noKeyUserStatement) }),
    )
  ).KeyMetadata!;
  await kms.send(
    new CreateAliasCommand({
      AliasName: mistakes.wrongAlias ?? `alias/myFirstKey${suffix}`,
      TargetKeyId: key.KeyId,
    }),
  );

  // Stage 2: the log bucket, CloudTrail's bucket policy, the trail, logging.
  const privateBucket = (Bucket: string) =>
    s3.send(
      new PutPublicAccessBlockCommand({
        Bucket,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          IgnorePublicAcls: true,
          BlockPublicPolicy: true,
          RestrictPublicBuckets: true,
        },
      }),
    );
  await s3.send(new CreateBucketCommand({ Bucket: logBucket }));
  await privateBucket(logBucket);
  const aclCheck = {
    Sid: "AWSCloudTrailAclCheck",
    Effect: "Allow",
    Principal: { Service: "cloudtrail.amazonaws.com" },
    Action: "s3:GetBucketAcl",
    Resource: `arn:aws:s3:::${logBucket}`,
    Condition: { StringEquals: { "aws:SourceArn": trailArn } },
  };
  const write = {
    Sid: "AWSCloudTrailWrite",
    Effect: "Allow",
    Principal: { Service: "cloudtrail.amazonaws.com" },
    Action: "s3:PutObject",
    Resource: `arn:aws:s3:::${logBucket}/AWSLogs/${account}/*`,
    Condition: { StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trailArn } },
  };
  const bucketPolicy = (statements: object[]) =>
    s3.send(
      new PutBucketPolicyCommand({
        Bucket: logBucket,
        Policy: JSON.stringify({ Version: "2012-10-17", Statement: statements }),
      }),
    );
  await bucketPolicy([aclCheck, write]);
  await trail.send(new CreateTrailCommand({ Name: trailName, S3BucketName: logBucket }));
  // The "tidy-up" that breaks delivery: CloudTrail may still read the ACL but no longer write.
  if (mistakes.noCloudTrailWrite) await bucketPolicy([aclCheck]);
  if (!mistakes.trailNotLogging) await trail.send(new StartLoggingCommand({ Name: trailName }));

  // Stage 3: the data bucket and the encrypted upload.
  await s3.send(new CreateBucketCommand({ Bucket: dataBucket }));
  if (mistakes.publicPolicy) {
    // A new bucket blocks public policies: the learner turns Block Public Access off first.
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: dataBucket,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: false,
          IgnorePublicAcls: false,
          BlockPublicPolicy: false,
          RestrictPublicBuckets: false,
        },
      }),
    );
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: dataBucket,
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: "*",
              Action: "s3:GetObject",
              Resource: `arn:aws:s3:::${dataBucket}/*`,
            },
          ],
        }),
      }),
    );
  } else await privateBucket(dataBucket);
  await s3.send(
    new PutObjectCommand({
      Bucket: dataBucket,
      Key: objectKey,
      Body: "quarterly numbers: confidential\n",
      ...(mistakes.sseS3
        ? { ServerSideEncryption: "AES256" }
        : {
            ServerSideEncryption: "aws:kms",
            SSEKMSKeyId: key.Arn,
            BucketKeyEnabled: mistakes.bucketKey === true,
          }),
    }),
  );

  // Stage 4: a signed download (the unsigned one is the grader's to try).
  await (
    await s3.send(new GetObjectCommand({ Bucket: dataBucket, Key: objectKey }))
  ).Body!.transformToString();

  // Stage 6: as the key user; out of the key policy; denied; back in.
  if (mistakes.noKeyUserStatement) return;
  const assumed = (
    await new STSClient(config).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: "learner" }))
  ).Credentials!;
  const asRole = {
    ...config,
    credentials: {
      accessKeyId: assumed.AccessKeyId!,
      secretAccessKey: assumed.SecretAccessKey!,
      sessionToken: assumed.SessionToken!,
    },
  };
  const roleS3 = new S3Client({ ...asRole, forcePathStyle: true });
  const roleKms = new KMSClient(asRole);
  await (
    await roleS3.send(new GetObjectCommand({ Bucket: dataBucket, Key: objectKey }))
  ).Body!.transformToString();
  if (mistakes.neverRemoved) return;
  await kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: "default", Policy: policy(false) }));
  const blob = (await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from("probe") })))
    .CiphertextBlob!;
  await roleKms.send(new DecryptCommand({ CiphertextBlob: blob })).then(
    () => {
      throw new Error("the key user could still decrypt");
    },
    (err: Error) => {
      if (err.name !== "AccessDeniedException") throw err;
    },
  );
  if (mistakes.leftRemoved) return;
  await kms.send(new PutKeyPolicyCommand({ KeyId: key.KeyId, PolicyName: "default", Policy: policy(true) }));
}
