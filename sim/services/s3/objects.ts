import { ServiceError } from "../../core/errors.js";
import type { CallContext } from "../../core/service.js";
import type { S3Input, S3Output } from "./model.js";
import type { S3Service } from "./provider.js";

// objects: every function below is to be implemented.

export function putObject(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutObject is not implemented yet", 501);
}

export function getObject(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetObject is not implemented yet", 501);
}

export function headObject(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "HeadObject is not implemented yet", 501);
}

export function deleteObject(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "DeleteObject is not implemented yet", 501);
}

export function deleteObjects(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "DeleteObjects is not implemented yet", 501);
}

export function listObjectsV2(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "ListObjectsV2 is not implemented yet", 501);
}

export function listObjects(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "ListObjects is not implemented yet", 501);
}

export function listObjectVersions(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "ListObjectVersions is not implemented yet", 501);
}

export function getObjectAcl(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetObjectAcl is not implemented yet", 501);
}

export function getObjectTagging(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "GetObjectTagging is not implemented yet", 501);
}

export function putObjectTagging(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "PutObjectTagging is not implemented yet", 501);
}

export function deleteObjectTagging(_svc: S3Service, _input: S3Input, _ctx: CallContext): S3Output {
  throw new ServiceError("NotImplemented", "DeleteObjectTagging is not implemented yet", 501);
}
