import {
  CloudTrailClient,
  CreateTrailCommand,
  DescribeTrailsCommand,
  ListTagsCommand,
} from "@aws-sdk/client-cloudtrail";
import { CreateRoleCommand, IAMClient, ListRolesCommand, ListRoleTagsCommand } from "@aws-sdk/client-iam";
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
} from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  GetBucketTaggingCommand,
  ListBucketsCommand,
  PutBucketPolicyCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Clients } from "../../machines/aws.js";
import { runLab } from "../../machines/engine.js";
import type { Simulator } from "../../sim/simulator.js";
import type { StateStore } from "../../state/index.js";
import { parseParams, resolveParams } from "../../steps/params.js";

/**
 * What the teardown tests share: a lab run in process, and the account's lab resources as anyone
 * sees them through the SDK — everything tagged `kmslab:run` and everything that has a lab name.
 */
export const FAST = { pollSeconds: 1, trailWaitSeconds: 60, propagationWaitSeconds: 10 };

export async function runIn(sim: Simulator, store: StateStore, params: Record<string, unknown> = {}) {
  const clients = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
  try {
    return await runLab({
      store,
      clients,
      target: { kind: "sim", region: "us-east-1", accountId: sim.account.accountId },
      params: resolveParams(parseParams({ ...FAST, ...params }), sim.account.accountId),
      command: "test",
    });
  } finally {
    clients.destroy();
  }
}

type Config = ReturnType<Simulator["clientConfig"]>;

/**
 * Every resource of the lab's types that carries a `kmslab:run` tag or a lab name (`kmslab-*`
 * buckets, trails and roles; `alias/myFirstKey*`), as "type name [tagged RUN]". Keys pending
 * deletion count as removed and are not listed; untagged keys are listed only behind a lab alias.
 */
export async function labResources(config: Config): Promise<string[]> {
  const out: string[] = [];
  const tag = (run: string | undefined) => (run ? ` tagged ${run}` : "");
  const kms = new KMSClient(config);
  const iam = new IAMClient(config);
  const s3 = new S3Client({ ...config, forcePathStyle: true });
  const ct = new CloudTrailClient(config);
  try {
    const live = new Map<string, string>();
    for (const k of (await kms.send(new ListKeysCommand({}))).Keys ?? []) {
      // Someone else's key, whose key policy does not admit the account: not the lab's.
      const described = await kms
        .send(new DescribeKeyCommand({ KeyId: k.KeyId }))
        .catch((err: Error) => (err.name === "AccessDeniedException" ? undefined : Promise.reject(err)));
      if (!described) continue;
      const meta = described.KeyMetadata!;
      if (meta.KeyState === "PendingDeletion") continue;
      const tags = (await kms.send(new ListResourceTagsCommand({ KeyId: k.KeyId }))).Tags ?? [];
      const run = tags.find((t) => t.TagKey === "kmslab:run")?.TagValue;
      live.set(meta.KeyId!, run ?? "");
      if (run) out.push(`key ${meta.KeyId}${tag(run)}`);
    }
    for (const a of (await kms.send(new ListAliasesCommand({}))).Aliases ?? [])
      if (a.AliasName?.startsWith("alias/myFirstKey"))
        out.push(
          `alias ${a.AliasName} -> ${!live.has(a.TargetKeyId!) ? "no live key" : live.get(a.TargetKeyId!) ? `key${tag(live.get(a.TargetKeyId!))}` : "untagged key"}`,
        );
    for (const b of (await s3.send(new ListBucketsCommand({}))).Buckets ?? []) {
      const tags = await s3
        .send(new GetBucketTaggingCommand({ Bucket: b.Name }))
        .then((t) => t.TagSet ?? [])
        .catch(() => []);
      const run = tags.find((t) => t.Key === "kmslab:run")?.Value;
      if (run || b.Name!.startsWith("kmslab-")) out.push(`bucket ${b.Name}${tag(run)}`);
    }
    for (const t of (await ct.send(new DescribeTrailsCommand({}))).trailList ?? []) {
      const tags =
        (await ct.send(new ListTagsCommand({ ResourceIdList: [t.TrailARN!] }))).ResourceTagList?.[0]
          ?.TagsList ?? [];
      const run = tags.find((x) => x.Key === "kmslab:run")?.Value;
      if (run || t.Name!.startsWith("kmslab-")) out.push(`trail ${t.Name}${tag(run)}`);
    }
    for (const r of (await iam.send(new ListRolesCommand({}))).Roles ?? []) {
      const tags = (await iam.send(new ListRoleTagsCommand({ RoleName: r.RoleName }))).Tags ?? [];
      const run = tags.find((x) => x.Key === "kmslab:run")?.Value;
      if (run || r.RoleName!.startsWith("kmslab-")) out.push(`role ${r.RoleName}${tag(run)}`);
    }
  } finally {
    for (const c of [kms, iam, s3, ct]) c.destroy();
  }
  return out.sort();
}

/**
 * Resources made by hand with the lab's names and no tags at all: the role, both buckets, a trail
 * (delivering into the look-alike log bucket) and the alias on a key of its own.
 */
export async function makeLookAlikes(config: Config, account: string): Promise<string[]> {
  const kms = new KMSClient(config);
  const iam = new IAMClient(config);
  const s3 = new S3Client({ ...config, forcePathStyle: true });
  const ct = new CloudTrailClient(config);
  const logBucket = `kmslab-trail-${account}-us-east-1`;
  const dataBucket = `kmslab-data-${account}-us-east-1`;
  try {
    await iam.send(
      new CreateRoleCommand({
        RoleName: "kmslab-key-user",
        AssumeRolePolicyDocument: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            { Effect: "Allow", Principal: { AWS: `arn:aws:iam::${account}:root` }, Action: "sts:AssumeRole" },
          ],
        }),
      }),
    );
    await s3.send(new CreateBucketCommand({ Bucket: logBucket }));
    await s3.send(new CreateBucketCommand({ Bucket: dataBucket }));
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: logBucket,
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { Service: "cloudtrail.amazonaws.com" },
              Action: "s3:GetBucketAcl",
              Resource: `arn:aws:s3:::${logBucket}`,
            },
            {
              Effect: "Allow",
              Principal: { Service: "cloudtrail.amazonaws.com" },
              Action: "s3:PutObject",
              Resource: `arn:aws:s3:::${logBucket}/AWSLogs/${account}/*`,
              Condition: { StringEquals: { "s3:x-amz-acl": "bucket-owner-full-control" } },
            },
          ],
        }),
      }),
    );
    await ct.send(new CreateTrailCommand({ Name: "kmslab-trail", S3BucketName: logBucket }));
    const key = (await kms.send(new CreateKeyCommand({ Description: "hand-made" }))).KeyMetadata!;
    await kms.send(new CreateAliasCommand({ AliasName: "alias/myFirstKey", TargetKeyId: key.KeyId }));
  } finally {
    for (const c of [kms, iam, s3, ct]) c.destroy();
  }
  return [
    "alias alias/myFirstKey -> untagged key",
    `bucket ${dataBucket}`,
    `bucket ${logBucket}`,
    "role kmslab-key-user",
    "trail kmslab-trail",
  ].sort();
}
