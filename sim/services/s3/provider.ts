import type { Account } from "../../account.js";
import type { CallContext, OperationInfo, ServiceProvider } from "../../core/service.js";
import * as buckets from "./buckets.js";
import { s3Codec } from "./codec.js";
import { emptyS3State, type S3Input, type S3Output, type S3State } from "./model.js";
import * as objects from "./objects.js";

/**
 * The simulated Amazon S3 (restXml): buckets with their policies, Block Public Access, default
 * encryption, tags and versioning; objects with SSE-S3 and SSE-KMS (KMS called on the requester's
 * behalf, as S3 does), checksums and `aws-chunked` uploads. Bucket operations live in buckets.ts,
 * object operations in objects.ts; the REST routing and XML rendering in codec.ts.
 *
 * Every operation takes the routed request (S3Input) and returns an S3Output for the codec.
 */
export class S3Service implements ServiceProvider {
  readonly service = "s3";
  readonly protocol = "restXml" as const;
  readonly eventSource = "s3.amazonaws.com";
  readonly codec = s3Codec;
  readonly operations: Readonly<Record<string, OperationInfo>> = {
    ListBuckets: { readOnly: true },
    CreateBucket: { readOnly: false },
    DeleteBucket: { readOnly: false },
    HeadBucket: { readOnly: true },
    GetBucketLocation: { readOnly: true },
    PutBucketPolicy: { readOnly: false },
    GetBucketPolicy: { readOnly: true },
    DeleteBucketPolicy: { readOnly: false },
    GetBucketPolicyStatus: { readOnly: true },
    PutPublicAccessBlock: { readOnly: false },
    GetPublicAccessBlock: { readOnly: true },
    DeletePublicAccessBlock: { readOnly: false },
    PutBucketEncryption: { readOnly: false },
    GetBucketEncryption: { readOnly: true },
    DeleteBucketEncryption: { readOnly: false },
    PutBucketTagging: { readOnly: false },
    GetBucketTagging: { readOnly: true },
    DeleteBucketTagging: { readOnly: false },
    GetBucketAcl: { readOnly: true },
    PutBucketAcl: { readOnly: false },
    GetBucketOwnershipControls: { readOnly: true },
    PutBucketOwnershipControls: { readOnly: false },
    GetBucketVersioning: { readOnly: true },
    PutBucketVersioning: { readOnly: false },
    PutObject: { readOnly: false },
    GetObject: { readOnly: true },
    HeadObject: { readOnly: true },
    DeleteObject: { readOnly: false },
    DeleteObjects: { readOnly: false },
    ListObjectsV2: { readOnly: true },
    ListObjects: { readOnly: true },
    ListObjectVersions: { readOnly: true },
    GetObjectAcl: { readOnly: true },
    GetObjectTagging: { readOnly: true },
    PutObjectTagging: { readOnly: false },
    DeleteObjectTagging: { readOnly: false },
  };

  readonly state: S3State;

  constructor(
    readonly account: Account,
    state?: S3State,
  ) {
    this.state = state ?? emptyS3State();
  }

  // ---- buckets (buckets.ts) ----------------------------------------------------------------

  ListBuckets(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.listBuckets(this, input as unknown as S3Input, ctx);
  }

  CreateBucket(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.createBucket(this, input as unknown as S3Input, ctx);
  }

  DeleteBucket(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.deleteBucket(this, input as unknown as S3Input, ctx);
  }

  HeadBucket(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.headBucket(this, input as unknown as S3Input, ctx);
  }

  GetBucketLocation(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getBucketLocation(this, input as unknown as S3Input, ctx);
  }

  PutBucketPolicy(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.putBucketPolicy(this, input as unknown as S3Input, ctx);
  }

  GetBucketPolicy(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getBucketPolicy(this, input as unknown as S3Input, ctx);
  }

  DeleteBucketPolicy(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.deleteBucketPolicy(this, input as unknown as S3Input, ctx);
  }

  GetBucketPolicyStatus(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getBucketPolicyStatus(this, input as unknown as S3Input, ctx);
  }

  PutPublicAccessBlock(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.putPublicAccessBlock(this, input as unknown as S3Input, ctx);
  }

  GetPublicAccessBlock(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getPublicAccessBlock(this, input as unknown as S3Input, ctx);
  }

  DeletePublicAccessBlock(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.deletePublicAccessBlock(this, input as unknown as S3Input, ctx);
  }

  PutBucketEncryption(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.putBucketEncryption(this, input as unknown as S3Input, ctx);
  }

  GetBucketEncryption(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getBucketEncryption(this, input as unknown as S3Input, ctx);
  }

  DeleteBucketEncryption(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.deleteBucketEncryption(this, input as unknown as S3Input, ctx);
  }

  PutBucketTagging(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.putBucketTagging(this, input as unknown as S3Input, ctx);
  }

  GetBucketTagging(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getBucketTagging(this, input as unknown as S3Input, ctx);
  }

  DeleteBucketTagging(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.deleteBucketTagging(this, input as unknown as S3Input, ctx);
  }

  GetBucketAcl(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getBucketAcl(this, input as unknown as S3Input, ctx);
  }

  PutBucketAcl(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.putBucketAcl(this, input as unknown as S3Input, ctx);
  }

  GetBucketOwnershipControls(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getBucketOwnershipControls(this, input as unknown as S3Input, ctx);
  }

  PutBucketOwnershipControls(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.putBucketOwnershipControls(this, input as unknown as S3Input, ctx);
  }

  GetBucketVersioning(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.getBucketVersioning(this, input as unknown as S3Input, ctx);
  }

  PutBucketVersioning(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return buckets.putBucketVersioning(this, input as unknown as S3Input, ctx);
  }

  // ---- objects (objects.ts) ----------------------------------------------------------------

  PutObject(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.putObject(this, input as unknown as S3Input, ctx);
  }

  GetObject(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.getObject(this, input as unknown as S3Input, ctx);
  }

  HeadObject(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.headObject(this, input as unknown as S3Input, ctx);
  }

  DeleteObject(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.deleteObject(this, input as unknown as S3Input, ctx);
  }

  DeleteObjects(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.deleteObjects(this, input as unknown as S3Input, ctx);
  }

  ListObjectsV2(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.listObjectsV2(this, input as unknown as S3Input, ctx);
  }

  ListObjects(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.listObjects(this, input as unknown as S3Input, ctx);
  }

  ListObjectVersions(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.listObjectVersions(this, input as unknown as S3Input, ctx);
  }

  GetObjectAcl(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.getObjectAcl(this, input as unknown as S3Input, ctx);
  }

  GetObjectTagging(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.getObjectTagging(this, input as unknown as S3Input, ctx);
  }

  PutObjectTagging(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.putObjectTagging(this, input as unknown as S3Input, ctx);
  }

  DeleteObjectTagging(input: Record<string, unknown>, ctx: CallContext): S3Output {
    return objects.deleteObjectTagging(this, input as unknown as S3Input, ctx);
  }
}
