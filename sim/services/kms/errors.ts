import { ServiceError } from "../../core/errors.js";
import { type AuthzResult, denialReason } from "../../policy/index.js";

/**
 * KMS's errors in AWS's words (aws-subset §1.7). Every KMS error is HTTP 400 except the dry-run
 * answer (412, as the model declares). Messages copy AWS's recorded texts where they are known.
 */
export const kmsErrors = {
  /** A KeyId that is neither a UUID, an `mrk-` id, an ARN nor an alias. */
  invalidKeyId: (input: string) => new ServiceError("NotFoundException", `Invalid keyId '${input}'`),
  keyNotFound: (keyArn: string) => new ServiceError("NotFoundException", `Key '${keyArn}' does not exist`),
  aliasNotFound: (aliasArn: string) =>
    new ServiceError("NotFoundException", `Alias ${aliasArn} is not found.`),
  /** A key or alias ARN naming another Region than the endpoint's. */
  invalidArnRegion: (region: string) => new ServiceError("NotFoundException", `Invalid arn ${region}`),
  disabled: (keyArn: string) => new ServiceError("DisabledException", `${keyArn} is disabled.`),
  pendingDeletion: (keyArn: string) =>
    new ServiceError("KMSInvalidStateException", `${keyArn} is pending deletion.`),
  notPendingDeletion: (keyArn: string) =>
    new ServiceError("KMSInvalidStateException", `${keyArn} is not pending deletion.`),
  /** AWS answers tampered blobs and context mismatches with an empty message. */
  invalidCiphertext: () => new ServiceError("InvalidCiphertextException", ""),
  incorrectKey: () =>
    new ServiceError(
      "IncorrectKeyException",
      "The key ID in the request does not identify a CMK that can perform this operation.",
    ),
  aliasExists: (aliasArn: string) =>
    new ServiceError("AlreadyExistsException", `An alias with the name ${aliasArn} already exists`),
  aliasPrefix: () =>
    new ServiceError(
      "ValidationException",
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    ),
  /**
   * `alias/aws/` is reserved for AWS managed keys. AWS's code for this is unconfirmed (aws-subset
   * §9.2); like moto we answer NotAuthorizedException with an empty message.
   */
  reservedAlias: () => new ServiceError("NotAuthorizedException", ""),
  aliasTargetIsAlias: () =>
    new ServiceError("ValidationException", "Aliases must refer to keys. Not aliases"),
  malformedPolicy: (message: string) => new ServiceError("MalformedPolicyDocumentException", message),
  lockout: () =>
    new ServiceError(
      "MalformedPolicyDocumentException",
      "The new key policy will not allow you to update the key policy in the future.",
    ),
  invalidPrincipals: () =>
    new ServiceError(
      "MalformedPolicyDocumentException",
      "Policy contains a statement with one or more invalid principals.",
    ),
  noSuchPolicy: () => new ServiceError("NotFoundException", "No such policy exists"),
  reservedTag: () => new ServiceError("TagException", "Tags beginning with aws: are reserved"),
  invalidGrantId: () => new ServiceError("InvalidGrantIdException", ""),
  invalidMarker: () => new ServiceError("InvalidMarkerException", "Could not deserialize marker"),
  keyUsage: (keyArn: string, usage: string, op: string) =>
    new ServiceError(
      "InvalidKeyUsageException",
      `${keyArn} key usage is ${usage} which is not valid for ${op}.`,
    ),
  validation: (message: string) => new ServiceError("ValidationException", message),
  unsupported: (message: string) => new ServiceError("UnsupportedOperationException", message),
  dryRun: () =>
    new ServiceError(
      "DryRunOperationException",
      "The request would have succeeded, but the DryRun option is set.",
      412,
    ),
};

/**
 * AWS's denial text (aws-subset §1.5). `reason` says which policy lacked an Allow (implicit deny) or
 * held the Deny (explicit deny).
 */
export function kmsAccessDenied(
  callerArn: string,
  action: string,
  resource: string,
  reason: Pick<AuthzResult, "explicitDeny" | "missing">,
): ServiceError {
  return new ServiceError(
    "AccessDeniedException",
    `User: ${callerArn} is not authorized to perform: ${action} on resource: ${resource} ${denialReason(reason, action)}`,
  );
}
