import { ServiceError } from "../../core/errors.js";
import type { CallContext } from "../../core/service.js";
import type { S3Input, S3Output } from "./model.js";
import type { S3Service } from "./provider.js";

// buckets: every function below is to be implemented.

export function listBuckets(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "ListBuckets is not implemented yet", 501);
}

export function createBucket(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "CreateBucket is not implemented yet", 501);
}

export function deleteBucket(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "DeleteBucket is not implemented yet", 501);
}

export function headBucket(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "HeadBucket is not implemented yet", 501);
}

export function getBucketLocation(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetBucketLocation is not implemented yet", 501);
}

export function putBucketPolicy(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutBucketPolicy is not implemented yet", 501);
}

export function getBucketPolicy(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetBucketPolicy is not implemented yet", 501);
}

export function deleteBucketPolicy(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "DeleteBucketPolicy is not implemented yet", 501);
}

export function getBucketPolicyStatus(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetBucketPolicyStatus is not implemented yet", 501);
}

export function putPublicAccessBlock(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutPublicAccessBlock is not implemented yet", 501);
}

export function getPublicAccessBlock(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetPublicAccessBlock is not implemented yet", 501);
}

export function deletePublicAccessBlock(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "DeletePublicAccessBlock is not implemented yet", 501);
}

export function putBucketEncryption(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutBucketEncryption is not implemented yet", 501);
}

export function getBucketEncryption(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetBucketEncryption is not implemented yet", 501);
}

export function deleteBucketEncryption(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "DeleteBucketEncryption is not implemented yet", 501);
}

export function putBucketTagging(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutBucketTagging is not implemented yet", 501);
}

export function getBucketTagging(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetBucketTagging is not implemented yet", 501);
}

export function deleteBucketTagging(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "DeleteBucketTagging is not implemented yet", 501);
}

export function getBucketAcl(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetBucketAcl is not implemented yet", 501);
}

export function putBucketAcl(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutBucketAcl is not implemented yet", 501);
}

export function getBucketOwnershipControls(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetBucketOwnershipControls is not implemented yet", 501);
}

export function putBucketOwnershipControls(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutBucketOwnershipControls is not implemented yet", 501);
}

export function getBucketVersioning(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetBucketVersioning is not implemented yet", 501);
}

export function putBucketVersioning(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutBucketVersioning is not implemented yet", 501);
}
