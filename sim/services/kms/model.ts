/**
 * What the simulated KMS keeps, JSON-safe so the store can persist it as it is. Keys are regional:
 * each record carries its Region, and aliases are kept per Region (AWS: unique per account+Region).
 */
export type KeyState = "Enabled" | "Disabled" | "PendingDeletion";

export interface Tag {
  TagKey: string;
  TagValue: string;
}

export interface GrantConstraints {
  EncryptionContextSubset?: Record<string, string>;
  EncryptionContextEquals?: Record<string, string>;
}

export interface GrantRecord {
  grantId: string;
  /** The token CreateGrant returned (accepted and ignored afterwards: grants act at once here). */
  grantToken: string;
  name?: string;
  granteePrincipal: string;
  retiringPrincipal?: string;
  /** Grant operation names: `Decrypt`, `Encrypt`, `GenerateDataKey`, `ReEncryptFrom`... */
  operations: string[];
  constraints?: GrantConstraints;
  creationDate: string;
  issuingAccount: string;
}

export interface KeyRecord {
  keyId: string;
  arn: string;
  region: string;
  creationDate: string;
  description: string;
  keyUsage: "ENCRYPT_DECRYPT";
  keySpec: "SYMMETRIC_DEFAULT";
  origin: "AWS_KMS";
  keyManager: "CUSTOMER" | "AWS";
  multiRegion: boolean;
  state: KeyState;
  deletionDate?: string;
  pendingWindowInDays?: number;
  /** 32 bytes of AES-256 key material, base64. */
  material: string;
  keyMaterialId: string;
  /** The key policy exactly as the caller sent it (or the default). */
  policy: string;
  /**
   * IAM user/role ARNs named in the policy → their unique ids when the policy was stored. When an
   * entity is deleted (or replaced by a new one of the same name) its ARN degrades to the old id
   * (aws-subset §1.4), which then matches nobody.
   */
  principalIds: Record<string, string>;
  /** The policy a PutKeyPolicy replaced, still in force until `until` (key policy propagation). */
  previousPolicy?: { policy: string; principalIds: Record<string, string>; until: string };
  tags: Tag[];
  grants: GrantRecord[];
}

export interface AliasRecord {
  aliasName: string;
  targetKeyId: string;
  creationDate: string;
  lastUpdatedDate: string;
}

export interface KmsState {
  /** By key id. */
  keys: Record<string, KeyRecord>;
  /** Region → alias name → alias. */
  aliases: Record<string, Record<string, AliasRecord>>;
}

export const emptyKmsState = (): KmsState => ({ keys: {}, aliases: {} });

export const keyArn = (region: string, accountId: string, keyId: string) =>
  `arn:aws:kms:${region}:${accountId}:key/${keyId}`;
export const aliasArn = (region: string, accountId: string, aliasName: string) =>
  `arn:aws:kms:${region}:${accountId}:${aliasName}`;

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const MRK_ID = /^mrk-[0-9a-f]{32}$/;
export const isKeyId = (s: string) => UUID.test(s) || MRK_ID.test(s);

/** The programmatic default key policy (aws-subset §1.4), as GetKeyPolicy returns it. */
export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Id: "key-default-1",
    Statement: [
      {
        Sid: "Enable IAM User Permissions",
        Effect: "Allow",
        Principal: { AWS: `arn:aws:iam::${accountId}:root` },
        Action: "kms:*",
        Resource: "*",
      },
    ],
  });
}

/** Operations a grant may allow (the model's GrantOperation enum). */
export const GRANT_OPERATIONS = [
  "Decrypt",
  "Encrypt",
  "GenerateDataKey",
  "GenerateDataKeyWithoutPlaintext",
  "ReEncryptFrom",
  "ReEncryptTo",
  "Sign",
  "Verify",
  "GetPublicKey",
  "CreateGrant",
  "RetireGrant",
  "DescribeKey",
  "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext",
  "GenerateMac",
  "VerifyMac",
  "DeriveSharedSecret",
] as const;
