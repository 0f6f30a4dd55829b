import { createHmac, randomBytes, randomUUID } from "node:crypto";
import type { Account } from "../../account.js";
import {
  type CallContext,
  globalContextKeys,
  type OperationInfo,
  type ServiceProvider,
} from "../../core/service.js";
import type { ContextKeys, Principal } from "../../core/types.js";
import { blob, bool, type Field, int, list, map, str, struct, validate } from "../../core/validate.js";
import { type AuthzResult, authorize, type Policy, PolicyError, parsePolicy } from "../../policy/index.js";
import {
  blobKeyId,
  type EncryptionContext,
  keyMaterialId,
  newKeyMaterial,
  openBlob,
  randomKeyBytes,
  sealBlob,
} from "./crypto.js";
import { kmsAccessDenied, kmsErrors } from "./errors.js";
import {
  type AliasRecord,
  aliasArn,
  defaultKeyPolicy,
  emptyKmsState,
  GRANT_OPERATIONS,
  type GrantConstraints,
  type GrantRecord,
  isKeyId,
  type KeyRecord,
  type KmsState,
  keyArn,
  type Tag,
} from "./model.js";

/** Persisted state plus a per-account secret from which AWS managed keys are derived (see `managedKey`). */
export interface KmsServiceState extends KmsState {
  seed: string;
}

// ---- input shapes (the KMS model's constraints) ------------------------------------------------

const keyIdField = (required = true) => str({ required, min: 1, max: 2048 });
const contextField = map(str());
const grantTokens = list(str({ min: 1, max: 8192 }), { max: 10 });
const tagList = (required = false) =>
  list(
    struct({
      TagKey: str({ required: true, min: 1, max: 128 }),
      TagValue: str({ required: true, min: 0, max: 256 }),
    }),
    {
      required,
    },
  );
// Printable Latin-1 plus tab, LF and CR: the model's pattern for key policies.
const POLICY_CHARS = /[\u0009\u000A\u000D\u0020-\u00FF]+/;
const policyField = (required: boolean) => str({ required, min: 1, max: 131072, pattern: POLICY_CHARS });
const aliasNameField = str({ required: true, min: 1, max: 256, pattern: /^[a-zA-Z0-9:/_-]+$/ });
const limitField = int({ min: 1, max: 1000 });
const markerField = str({ min: 1, max: 1024 });
const algorithmField = str({
  enum: ["SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"],
});
const grantOperationsField: Field = list(str({ enum: GRANT_OPERATIONS }), { required: true, min: 1 });

const KEY_SPECS = [
  "RSA_2048",
  "RSA_3072",
  "RSA_4096",
  "ECC_NIST_P256",
  "ECC_NIST_P384",
  "ECC_NIST_P521",
  "ECC_SECG_P256K1",
  "SYMMETRIC_DEFAULT",
  "HMAC_224",
  "HMAC_256",
  "HMAC_384",
  "HMAC_512",
  "SM2",
  "ML_DSA_44",
  "ML_DSA_65",
  "ML_DSA_87",
] as const;

/** AWS managed aliases every Region lists (their keys are created on first use, as AWS does). */
const PREDEFINED_ALIASES = [
  "alias/aws/acm",
  "alias/aws/dynamodb",
  "alias/aws/ebs",
  "alias/aws/elasticfilesystem",
  "alias/aws/es",
  "alias/aws/glue",
  "alias/aws/kinesisvideo",
  "alias/aws/lambda",
  "alias/aws/rds",
  "alias/aws/redshift",
  "alias/aws/s3",
  "alias/aws/secretsmanager",
  "alias/aws/ssm",
  "alias/aws/xray",
];

const ALGORITHM = "SYMMETRIC_DEFAULT";

interface Resolved {
  key: KeyRecord;
  /** The alias name when the caller named the key by alias (feeds `kms:RequestAlias`). */
  alias?: string;
}

interface CachedPolicy {
  text: string;
  /** ARNs found degraded when this entry was made ("" when none). */
  gone: string;
  policy: Policy;
}

interface AuthzOptions {
  alias?: string;
  context?: EncryptionContext;
  /** The grant operation that may allow the call when the policies do not (rule 3 of §1.5). */
  grantOp?: string;
  extra?: ContextKeys;
}

/**
 * The simulated AWS KMS (awsJson1_1, `TrentService`): customer managed symmetric keys with real
 * AES-256-GCM, aliases, key policies evaluated as KMS evaluates them (aws-subset §1.5), grants, tags
 * and the key-state rules of §1.2.
 *
 * Every operation is a public method taking the decoded input and a CallContext, so other
 * providers can call KMS on a requester's behalf: S3 calls `GenerateDataKey` / `Decrypt` with the
 * requester's context and `viaService` set (`s3.<region>.amazonaws.com`), which feeds
 * `kms:ViaService` and `aws:ViaAWSService`.
 *
 * Deliberate differences from AWS: only SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT / AWS_KMS keys
 * (others: UnsupportedOperationException); grants act at once (tokens are accepted and ignored);
 * the degraded-principal text substitution (§1.4) replaces every quoted occurrence of the ARN in
 * the stored policy text, Conditions included.
 */
export class KmsService implements ServiceProvider {
  readonly service = "kms";
  readonly protocol = "awsJson1_1" as const;
  readonly eventSource = "kms.amazonaws.com";
  readonly targetPrefixes = ["TrentService"] as const;
  readonly operations: Readonly<Record<string, OperationInfo>> = {
    CreateKey: { readOnly: false },
    DescribeKey: { readOnly: true },
    ListKeys: { readOnly: true },
    UpdateKeyDescription: { readOnly: false },
    CreateAlias: { readOnly: false },
    UpdateAlias: { readOnly: false },
    DeleteAlias: { readOnly: false },
    ListAliases: { readOnly: true },
    GetKeyPolicy: { readOnly: true },
    PutKeyPolicy: { readOnly: false },
    ListKeyPolicies: { readOnly: true },
    Encrypt: { readOnly: true },
    Decrypt: { readOnly: true },
    ReEncrypt: { readOnly: true },
    GenerateDataKey: { readOnly: true },
    GenerateDataKeyWithoutPlaintext: { readOnly: true },
    ScheduleKeyDeletion: { readOnly: false },
    CancelKeyDeletion: { readOnly: false },
    EnableKey: { readOnly: false },
    DisableKey: { readOnly: false },
    TagResource: { readOnly: false },
    UntagResource: { readOnly: false },
    ListResourceTags: { readOnly: true },
    CreateGrant: { readOnly: false },
    RevokeGrant: { readOnly: false },
    ListGrants: { readOnly: true },
  };

  readonly state: KmsServiceState;
  /** Parsed key policies by key id; re-parsed only when the text or its degraded principals change. */
  private readonly policies = new Map<string, CachedPolicy>();
  /** Decoded key material by key id (material never changes). */
  private readonly materials = new Map<string, Buffer>();

  constructor(
    private readonly account: Account,
    state?: KmsServiceState,
  ) {
    this.state = state ?? { ...emptyKmsState(), seed: randomBytes(32).toString("base64") };
    this.state.seed ??= randomBytes(32).toString("base64");
  }

  // ---- keys ------------------------------------------------------------------------------------

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html
  CreateKey(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      Description?: string;
      KeyUsage?: string;
      KeySpec?: string;
      CustomerMasterKeySpec?: string;
      Origin?: string;
      Policy?: string;
      BypassPolicyLockoutSafetyCheck?: boolean;
      Tags?: Tag[];
      MultiRegion?: boolean;
    }>(input, {
      Description: str({ min: 0, max: 8192 }),
      KeyUsage: str({ enum: ["SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"] }),
      KeySpec: str({ enum: KEY_SPECS }),
      CustomerMasterKeySpec: str({ enum: KEY_SPECS }),
      Origin: str({ enum: ["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"] }),
      Policy: policyField(false),
      BypassPolicyLockoutSafetyCheck: bool(),
      Tags: tagList(),
      MultiRegion: bool(),
    });
    const spec = req.KeySpec ?? req.CustomerMasterKeySpec ?? "SYMMETRIC_DEFAULT";
    const usage = req.KeyUsage ?? "ENCRYPT_DECRYPT";
    const origin = req.Origin ?? "AWS_KMS";
    const tags = req.Tags ?? [];
    const extra: ContextKeys = {
      "kms:KeySpec": spec,
      "kms:KeyUsage": usage,
      "kms:KeyOrigin": origin,
      "kms:MultiRegion": req.MultiRegion ?? false,
      ...requestTagContext(tags),
    };
    this.authorizeIdentity(ctx, "kms:CreateKey", "*", extra);
    if (spec !== "SYMMETRIC_DEFAULT")
      throw kmsErrors.unsupported(`KeySpec ${spec} is not supported by the kmslab simulator.`);
    if (usage !== "ENCRYPT_DECRYPT")
      throw kmsErrors.validation(`KeyUsage ${usage} is not compatible with KeySpec SYMMETRIC_DEFAULT`);
    if (origin !== "AWS_KMS")
      throw kmsErrors.unsupported(`Origin ${origin} is not supported by the kmslab simulator.`);
    checkTags(tags);

    const keyId = req.MultiRegion ? `mrk-${randomBytes(16).toString("hex")}` : randomUUID();
    const arn = keyArn(ctx.region, this.account.accountId, keyId);
    let policy = defaultKeyPolicy(this.account.accountId);
    let principalIds: Record<string, string> = {};
    if (req.Policy !== undefined) {
      principalIds = this.checkNewPolicy(
        ctx,
        arn,
        req.Policy,
        req.BypassPolicyLockoutSafetyCheck === true,
      ).principalIds;
      policy = req.Policy;
    }
    const material = newKeyMaterial();
    const key: KeyRecord = {
      keyId,
      arn,
      region: ctx.region,
      creationDate: ctx.now.toISOString(),
      description: req.Description ?? "",
      keyUsage: "ENCRYPT_DECRYPT",
      keySpec: "SYMMETRIC_DEFAULT",
      origin: "AWS_KMS",
      keyManager: "CUSTOMER",
      multiRegion: req.MultiRegion === true,
      state: "Enabled",
      material: material.toString("base64"),
      keyMaterialId: keyMaterialId(material),
      policy,
      principalIds,
      tags: dedupeTags(tags),
      grants: [],
    };
    this.state.keys[keyId] = key;
    this.materials.set(keyId, material);
    return { KeyMetadata: this.metadata(key) };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_DescribeKey.html
  DescribeKey(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ KeyId: string }>(input, { KeyId: keyIdField(), GrantTokens: grantTokens });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:DescribeKey", { alias, grantOp: "DescribeKey" });
    return { KeyMetadata: this.metadata(key) };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_ListKeys.html
  ListKeys(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ Limit?: number; Marker?: string }>(input, {
      Limit: limitField,
      Marker: markerField,
    });
    this.authorizeIdentity(ctx, "kms:ListKeys", "*");
    const keys = this.regionKeys(ctx.region).map((k) => ({ KeyId: k.keyId, KeyArn: k.arn }));
    const { items, next } = paginate(keys, req.Limit ?? 100, req.Marker);
    return { Keys: items, ...(next ? { NextMarker: next, Truncated: true } : { Truncated: false }) };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdateKeyDescription.html
  UpdateKeyDescription(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ KeyId: string; Description: string }>(input, {
      KeyId: keyIdField(),
      Description: str({ required: true, min: 0, max: 8192 }),
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:UpdateKeyDescription", { alias });
    this.requireNotPendingDeletion(key);
    key.description = req.Description;
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_EnableKey.html
  EnableKey(input: Record<string, unknown>, ctx: CallContext): void {
    const key = this.keyForStateChange(input, ctx, "kms:EnableKey");
    key.state = "Enabled";
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_DisableKey.html
  DisableKey(input: Record<string, unknown>, ctx: CallContext): void {
    const key = this.keyForStateChange(input, ctx, "kms:DisableKey");
    key.state = "Disabled";
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html
  ScheduleKeyDeletion(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ KeyId: string; PendingWindowInDays?: number }>(input, {
      KeyId: keyIdField(),
      PendingWindowInDays: int({ min: 1, max: 365 }),
    });
    const days = req.PendingWindowInDays ?? 30;
    // The docs say 7–30 while the model allows 1–365; the text is LocalStack's (AWS's is unconfirmed, §9.3).
    if (days < 7 || days > 30)
      throw kmsErrors.validation(`PendingWindowInDays should be between 7 and 30, but it is ${days}`);
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:ScheduleKeyDeletion", { alias });
    this.requireNotPendingDeletion(key);
    const deletionDate = new Date(ctx.now.getTime() + days * 86_400_000);
    key.state = "PendingDeletion";
    key.deletionDate = deletionDate.toISOString();
    key.pendingWindowInDays = days;
    return {
      KeyId: key.arn,
      DeletionDate: deletionDate,
      KeyState: "PendingDeletion",
      PendingWindowInDays: days,
    };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_CancelKeyDeletion.html
  CancelKeyDeletion(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ KeyId: string }>(input, { KeyId: keyIdField() });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:CancelKeyDeletion", { alias });
    if (key.state !== "PendingDeletion") throw kmsErrors.notPendingDeletion(key.arn);
    key.state = "Disabled";
    delete key.deletionDate;
    delete key.pendingWindowInDays;
    return { KeyId: key.arn };
  }

  // ---- aliases ---------------------------------------------------------------------------------

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateAlias.html
  CreateAlias(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ AliasName: string; TargetKeyId: string }>(input, {
      AliasName: aliasNameField,
      TargetKeyId: keyIdField(),
    });
    const name = checkAliasName(req.AliasName);
    if (isAliasRef(req.TargetKeyId)) throw kmsErrors.aliasTargetIsAlias();
    const { key } = this.findKey(ctx, req.TargetKeyId);
    const arn = aliasArn(ctx.region, this.account.accountId, name);
    // AWS needs kms:CreateAlias on the alias (IAM only) and on the key (key policy) [aws-subset §1.5].
    this.authorizeIdentity(ctx, "kms:CreateAlias", arn);
    this.authorizeKey(ctx, key, "kms:CreateAlias");
    this.requireNotPendingDeletion(key);
    const aliases = this.regionAliases(ctx.region);
    if (aliases[name]) throw kmsErrors.aliasExists(arn);
    const now = ctx.now.toISOString();
    aliases[name] = { aliasName: name, targetKeyId: key.keyId, creationDate: now, lastUpdatedDate: now };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdateAlias.html
  UpdateAlias(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ AliasName: string; TargetKeyId: string }>(input, {
      AliasName: aliasNameField,
      TargetKeyId: keyIdField(),
    });
    const name = checkAliasName(req.AliasName);
    const arn = aliasArn(ctx.region, this.account.accountId, name);
    const alias = this.regionAliases(ctx.region)[name];
    if (!alias) throw kmsErrors.aliasNotFound(arn);
    if (isAliasRef(req.TargetKeyId)) throw kmsErrors.aliasTargetIsAlias();
    const { key } = this.findKey(ctx, req.TargetKeyId);
    this.authorizeIdentity(ctx, "kms:UpdateAlias", arn);
    const current = this.liveKey(alias.targetKeyId);
    if (current) this.authorizeKey(ctx, current, "kms:UpdateAlias");
    this.authorizeKey(ctx, key, "kms:UpdateAlias");
    this.requireNotPendingDeletion(key);
    alias.targetKeyId = key.keyId;
    alias.lastUpdatedDate = ctx.now.toISOString();
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_DeleteAlias.html
  DeleteAlias(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ AliasName: string }>(input, { AliasName: aliasNameField });
    const name = checkAliasName(req.AliasName);
    const arn = aliasArn(ctx.region, this.account.accountId, name);
    const aliases = this.regionAliases(ctx.region);
    const alias = aliases[name];
    if (!alias) throw kmsErrors.aliasNotFound(arn);
    this.authorizeIdentity(ctx, "kms:DeleteAlias", arn);
    const key = this.liveKey(alias.targetKeyId);
    if (key) this.authorizeKey(ctx, key, "kms:DeleteAlias");
    delete aliases[name];
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_ListAliases.html
  ListAliases(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ KeyId?: string; Limit?: number; Marker?: string }>(input, {
      KeyId: keyIdField(false),
      Limit: limitField,
      Marker: markerField,
    });
    this.authorizeIdentity(ctx, "kms:ListAliases", "*");
    const target = req.KeyId === undefined ? undefined : this.findKey(ctx, req.KeyId).key.keyId;
    this.regionKeys(ctx.region); // drops keys whose deletion date has passed, with their aliases
    const aliases = this.regionAliases(ctx.region);
    const out: Record<string, unknown>[] = [];
    for (const a of Object.values(aliases)) {
      if (target !== undefined && a.targetKeyId !== target) continue;
      out.push({
        AliasName: a.aliasName,
        AliasArn: aliasArn(ctx.region, this.account.accountId, a.aliasName),
        TargetKeyId: a.targetKeyId,
        CreationDate: new Date(a.creationDate),
        LastUpdatedDate: new Date(a.lastUpdatedDate),
      });
    }
    if (target === undefined) {
      // AWS lists its predefined aliases even before their keys exist, then without TargetKeyId.
      for (const name of PREDEFINED_ALIASES)
        if (!aliases[name])
          out.push({ AliasName: name, AliasArn: aliasArn(ctx.region, this.account.accountId, name) });
    }
    out.sort((a, b) => String(a.AliasName).localeCompare(String(b.AliasName)));
    const { items, next } = paginate(out, req.Limit ?? 100, req.Marker);
    return { Aliases: items, ...(next ? { NextMarker: next, Truncated: true } : { Truncated: false }) };
  }

  // ---- key policies ----------------------------------------------------------------------------

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyPolicy.html
  GetKeyPolicy(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ KeyId: string; PolicyName?: string }>(input, {
      KeyId: keyIdField(),
      PolicyName: str({ min: 1, max: 128, pattern: /[\w]+/ }),
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:GetKeyPolicy", { alias });
    if (req.PolicyName !== undefined && req.PolicyName !== "default") throw kmsErrors.noSuchPolicy();
    return { Policy: this.effectivePolicy(key).text, PolicyName: "default" };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html
  PutKeyPolicy(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{
      KeyId: string;
      PolicyName?: string;
      Policy: string;
      BypassPolicyLockoutSafetyCheck?: boolean;
    }>(input, {
      KeyId: keyIdField(),
      PolicyName: str({ min: 1, max: 128, pattern: /[\w]+/ }),
      Policy: policyField(true),
      BypassPolicyLockoutSafetyCheck: bool(),
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:PutKeyPolicy", { alias });
    if (req.PolicyName !== undefined && req.PolicyName !== "default") throw kmsErrors.noSuchPolicy();
    const { principalIds } = this.checkNewPolicy(
      ctx,
      key.arn,
      req.Policy,
      req.BypassPolicyLockoutSafetyCheck === true,
      key,
    );
    const delay = this.account.options.keyPolicyPropagationMs;
    if (delay > 0) {
      const inForce = this.policyInForce(key, ctx.now);
      key.previousPolicy = {
        policy: inForce.policy,
        principalIds: inForce.principalIds,
        until: new Date(ctx.now.getTime() + delay).toISOString(),
      };
    }
    key.policy = req.Policy;
    key.principalIds = principalIds;
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_ListKeyPolicies.html
  ListKeyPolicies(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ KeyId: string }>(input, {
      KeyId: keyIdField(),
      Limit: limitField,
      Marker: markerField,
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:ListKeyPolicies", { alias });
    return { PolicyNames: ["default"], Truncated: false };
  }

  // ---- cryptography ----------------------------------------------------------------------------

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_Encrypt.html
  Encrypt(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      KeyId: string;
      Plaintext: Uint8Array;
      EncryptionContext?: EncryptionContext;
      EncryptionAlgorithm?: string;
      DryRun?: boolean;
    }>(input, encryptShape);
    checkPlaintext(req.Plaintext);
    const { key, alias } = this.findKey(ctx, req.KeyId);
    const context = req.EncryptionContext;
    this.authorizeKey(ctx, key, "kms:Encrypt", {
      alias,
      context,
      grantOp: "Encrypt",
      extra: algorithmContext,
    });
    this.requireUsable(key);
    this.checkAlgorithm(key, req.EncryptionAlgorithm, "Encrypt");
    if (req.DryRun) throw kmsErrors.dryRun();
    const ciphertext = sealBlob(key.keyId, this.material(key), req.Plaintext, context);
    return { CiphertextBlob: ciphertext, KeyId: key.arn, EncryptionAlgorithm: ALGORITHM };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_Decrypt.html
  Decrypt(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      CiphertextBlob: Uint8Array;
      EncryptionContext?: EncryptionContext;
      KeyId?: string;
      EncryptionAlgorithm?: string;
      DryRun?: boolean;
    }>(input, decryptShape);
    const { key, alias } = this.keyOfBlob(ctx, req.CiphertextBlob, req.KeyId);
    const context = req.EncryptionContext;
    this.authorizeKey(ctx, key, "kms:Decrypt", {
      alias,
      context,
      grantOp: "Decrypt",
      extra: algorithmContext,
    });
    this.requireUsable(key);
    this.checkAlgorithm(key, req.EncryptionAlgorithm, "Decrypt");
    if (req.DryRun) throw kmsErrors.dryRun();
    const plaintext = openBlob(req.CiphertextBlob, this.material(key), context);
    if (!plaintext) throw kmsErrors.invalidCiphertext();
    return {
      KeyId: key.arn,
      Plaintext: plaintext,
      EncryptionAlgorithm: ALGORITHM,
      KeyMaterialId: key.keyMaterialId,
    };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_ReEncrypt.html
  ReEncrypt(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      CiphertextBlob: Uint8Array;
      SourceEncryptionContext?: EncryptionContext;
      SourceKeyId?: string;
      DestinationKeyId: string;
      DestinationEncryptionContext?: EncryptionContext;
      SourceEncryptionAlgorithm?: string;
      DestinationEncryptionAlgorithm?: string;
      DryRun?: boolean;
    }>(input, {
      CiphertextBlob: blob({ required: true, min: 1, max: 6144 }),
      SourceEncryptionContext: contextField,
      SourceKeyId: keyIdField(false),
      DestinationKeyId: keyIdField(),
      DestinationEncryptionContext: contextField,
      SourceEncryptionAlgorithm: algorithmField,
      DestinationEncryptionAlgorithm: algorithmField,
      GrantTokens: grantTokens,
      DryRun: bool(),
    });
    const source = this.keyOfBlob(ctx, req.CiphertextBlob, req.SourceKeyId);
    const dest = this.findKey(ctx, req.DestinationKeyId);
    const sameKey = { "kms:ReEncryptOnSameKey": source.key.keyId === dest.key.keyId, ...algorithmContext };
    this.authorizeKey(ctx, source.key, "kms:ReEncryptFrom", {
      alias: source.alias,
      context: req.SourceEncryptionContext,
      grantOp: "ReEncryptFrom",
      extra: sameKey,
    });
    this.authorizeKey(ctx, dest.key, "kms:ReEncryptTo", {
      alias: dest.alias,
      context: req.DestinationEncryptionContext,
      grantOp: "ReEncryptTo",
      extra: sameKey,
    });
    this.requireUsable(source.key);
    this.requireUsable(dest.key);
    this.checkAlgorithm(source.key, req.SourceEncryptionAlgorithm, "ReEncrypt");
    this.checkAlgorithm(dest.key, req.DestinationEncryptionAlgorithm, "ReEncrypt");
    if (req.DryRun) throw kmsErrors.dryRun();
    const plaintext = openBlob(req.CiphertextBlob, this.material(source.key), req.SourceEncryptionContext);
    if (!plaintext) throw kmsErrors.invalidCiphertext();
    const ciphertext = sealBlob(
      dest.key.keyId,
      this.material(dest.key),
      plaintext,
      req.DestinationEncryptionContext,
    );
    return {
      CiphertextBlob: ciphertext,
      SourceKeyId: source.key.arn,
      KeyId: dest.key.arn,
      SourceEncryptionAlgorithm: ALGORITHM,
      DestinationEncryptionAlgorithm: ALGORITHM,
      SourceKeyMaterialId: source.key.keyMaterialId,
      DestinationKeyMaterialId: dest.key.keyMaterialId,
    };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateDataKey.html
  GenerateDataKey(input: Record<string, unknown>, ctx: CallContext) {
    const { key, plaintext, ciphertext } = this.dataKey(input, ctx, "GenerateDataKey");
    return {
      CiphertextBlob: ciphertext,
      Plaintext: plaintext,
      KeyId: key.arn,
      KeyMaterialId: key.keyMaterialId,
    };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateDataKeyWithoutPlaintext.html
  GenerateDataKeyWithoutPlaintext(input: Record<string, unknown>, ctx: CallContext) {
    const { key, ciphertext } = this.dataKey(input, ctx, "GenerateDataKeyWithoutPlaintext");
    return { CiphertextBlob: ciphertext, KeyId: key.arn, KeyMaterialId: key.keyMaterialId };
  }

  // ---- tags ------------------------------------------------------------------------------------

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_TagResource.html
  TagResource(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ KeyId: string; Tags: Tag[] }>(input, { KeyId: keyIdField(), Tags: tagList(true) });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:TagResource", { alias, extra: requestTagContext(req.Tags) });
    this.requireNotPendingDeletion(key);
    checkTags(req.Tags);
    key.tags = dedupeTags([...key.tags, ...req.Tags]);
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_UntagResource.html
  UntagResource(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ KeyId: string; TagKeys: string[] }>(input, {
      KeyId: keyIdField(),
      TagKeys: list(str({ min: 1, max: 128 }), { required: true }),
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:UntagResource", { alias, extra: { "aws:TagKeys": req.TagKeys } });
    this.requireNotPendingDeletion(key);
    const drop = new Set(req.TagKeys);
    key.tags = key.tags.filter((t) => !drop.has(t.TagKey));
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_ListResourceTags.html
  ListResourceTags(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ KeyId: string; Limit?: number; Marker?: string }>(input, {
      KeyId: keyIdField(),
      Limit: int({ min: 1, max: 50 }),
      Marker: markerField,
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:ListResourceTags", { alias });
    const tags = key.tags.map((t) => ({ TagKey: t.TagKey, TagValue: t.TagValue }));
    const { items, next } = paginate(tags, req.Limit ?? 50, req.Marker);
    return { Tags: items, ...(next ? { NextMarker: next, Truncated: true } : { Truncated: false }) };
  }

  // ---- grants ----------------------------------------------------------------------------------

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html
  CreateGrant(input: Record<string, unknown>, ctx: CallContext) {
    const principalField = str({ min: 1, max: 256, pattern: /^[\w+=,.@:/-]+$/ });
    const req = validate<{
      KeyId: string;
      GranteePrincipal: string;
      RetiringPrincipal?: string;
      Operations: string[];
      Constraints?: GrantConstraints;
      Name?: string;
      DryRun?: boolean;
    }>(input, {
      KeyId: keyIdField(),
      GranteePrincipal: { ...principalField, required: true } as Field,
      RetiringPrincipal: principalField,
      Operations: grantOperationsField,
      Constraints: struct({ EncryptionContextSubset: contextField, EncryptionContextEquals: contextField }),
      GrantTokens: grantTokens,
      Name: str({ min: 1, max: 256, pattern: /^[a-zA-Z0-9:/_-]+$/ }),
      DryRun: bool(),
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:CreateGrant", {
      alias,
      grantOp: "CreateGrant",
      extra: {
        "kms:GrantOperations": req.Operations,
        "kms:GranteePrincipal": req.GranteePrincipal,
        ...(req.RetiringPrincipal ? { "kms:RetiringPrincipal": req.RetiringPrincipal } : {}),
        "kms:GrantIsForAWSResource": ctx.viaService !== undefined,
      },
    });
    this.requireUsable(key);
    if (req.DryRun) throw kmsErrors.dryRun();
    const grantToken = randomBytes(96).toString("base64url");
    // A repeated CreateGrant with the same Name returns the existing grant (AWS's idempotency rule).
    const same = req.Name === undefined ? undefined : key.grants.find((g) => g.name === req.Name);
    if (same) return { GrantToken: grantToken, GrantId: same.grantId };
    const grant: GrantRecord = {
      grantId: randomBytes(32).toString("hex"),
      grantToken,
      granteePrincipal: req.GranteePrincipal,
      operations: [...req.Operations],
      creationDate: ctx.now.toISOString(),
      issuingAccount: `arn:aws:iam::${this.account.accountId}:root`,
    };
    if (req.Name !== undefined) grant.name = req.Name;
    if (req.RetiringPrincipal !== undefined) grant.retiringPrincipal = req.RetiringPrincipal;
    if (req.Constraints) grant.constraints = req.Constraints;
    key.grants.push(grant);
    return { GrantToken: grantToken, GrantId: grant.grantId };
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_RevokeGrant.html
  RevokeGrant(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ KeyId: string; GrantId: string; DryRun?: boolean }>(input, {
      KeyId: keyIdField(),
      GrantId: str({ required: true, min: 1, max: 128 }),
      DryRun: bool(),
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:RevokeGrant", { alias });
    const index = key.grants.findIndex((g) => g.grantId === req.GrantId);
    if (index < 0) throw kmsErrors.invalidGrantId();
    if (req.DryRun) throw kmsErrors.dryRun();
    key.grants.splice(index, 1);
  }

  // https://docs.aws.amazon.com/kms/latest/APIReference/API_ListGrants.html
  ListGrants(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      KeyId: string;
      Limit?: number;
      Marker?: string;
      GrantId?: string;
      GranteePrincipal?: string;
    }>(input, {
      KeyId: keyIdField(),
      Limit: int({ min: 1, max: 100 }),
      Marker: markerField,
      GrantId: str({ min: 1, max: 128 }),
      GranteePrincipal: str({ min: 1, max: 256 }),
    });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, "kms:ListGrants", { alias });
    if (req.GrantId !== undefined && !key.grants.some((g) => g.grantId === req.GrantId))
      throw kmsErrors.invalidGrantId();
    const grants = key.grants
      .filter((g) => req.GrantId === undefined || g.grantId === req.GrantId)
      .filter((g) => req.GranteePrincipal === undefined || g.granteePrincipal === req.GranteePrincipal)
      .map((g) => ({
        KeyId: key.arn,
        GrantId: g.grantId,
        ...(g.name !== undefined ? { Name: g.name } : {}),
        CreationDate: new Date(g.creationDate),
        GranteePrincipal: g.granteePrincipal,
        ...(g.retiringPrincipal !== undefined ? { RetiringPrincipal: g.retiringPrincipal } : {}),
        IssuingAccount: g.issuingAccount,
        Operations: g.operations,
        ...(g.constraints ? { Constraints: g.constraints } : {}),
      }));
    const { items, next } = paginate(grants, req.Limit ?? 50, req.Marker);
    return { Grants: items, ...(next ? { NextMarker: next, Truncated: true } : { Truncated: false }) };
  }

  // ---- lookups ---------------------------------------------------------------------------------

  /**
   * A key named by key id, key ARN, alias name or alias ARN, in the caller's Region, with AWS's
   * NotFoundException texts (aws-subset §1.7). Keys whose deletion date has passed are gone.
   */
  private findKey(ctx: CallContext, input: string): Resolved {
    const acct = this.account.accountId;
    let aliasName: string | undefined;
    let keyId: string;
    let arnForError: string | undefined;
    if (input.startsWith("arn:")) {
      const m = /^arn:aws[\w-]*:kms:([^:]*):([^:]*):(key|alias)\/(.+)$/.exec(input);
      if (!m) throw kmsErrors.invalidKeyId(input);
      const [, region, account, kind, rest] = m as unknown as [string, string, string, string, string];
      if (region !== ctx.region) throw kmsErrors.invalidArnRegion(region);
      if (kind === "alias") {
        aliasName = `alias/${rest}`;
        if (account !== acct) throw kmsErrors.aliasNotFound(input);
      } else {
        keyId = rest;
        if (!isKeyId(rest)) throw kmsErrors.invalidKeyId(input);
        if (account !== acct) throw kmsErrors.keyNotFound(input);
        arnForError = input;
      }
    } else if (input.startsWith("alias/")) {
      aliasName = input;
    } else {
      if (!isKeyId(input)) throw kmsErrors.invalidKeyId(input);
      keyId = input;
    }
    if (aliasName !== undefined) {
      const alias = this.regionAliases(ctx.region)[aliasName] ?? this.managedAlias(ctx, aliasName);
      const key = alias && this.liveKey(alias.targetKeyId);
      if (!alias || !key) throw kmsErrors.aliasNotFound(aliasArn(ctx.region, acct, aliasName));
      return { key, alias: aliasName };
    }
    const key = this.liveKey(keyId!);
    if (!key || key.region !== ctx.region)
      throw kmsErrors.keyNotFound(arnForError ?? keyArn(ctx.region, acct, keyId!));
    return { key };
  }

  /** The key a ciphertext names; a KeyId in the request must name the same key (IncorrectKeyException). */
  private keyOfBlob(ctx: CallContext, ciphertext: Uint8Array, requested: string | undefined): Resolved {
    const named = requested === undefined ? undefined : this.findKey(ctx, requested);
    const id = blobKeyId(ciphertext);
    const key = id === undefined ? undefined : this.liveKey(id);
    if (!key || key.region !== ctx.region) {
      if (named && id !== undefined) throw kmsErrors.incorrectKey();
      throw kmsErrors.invalidCiphertext();
    }
    if (named && named.key.keyId !== key.keyId) throw kmsErrors.incorrectKey();
    return named ?? { key };
  }

  /** A key by id, unless its scheduled deletion date has passed (then it and its aliases are removed). */
  /**
   * The ARN of the key a call names — by KeyId (id, ARN, alias or alias ARN) or by the key id
   * inside a CiphertextBlob — for CloudTrail's `resources`, also when the call itself failed.
   * Changes nothing (AWS managed keys are not created by asking).
   */
  keyArnFor(input: Record<string, unknown>, region: string): string | undefined {
    let id: string | undefined;
    const keyId = input.KeyId ?? input.DestinationKeyId;
    if (typeof keyId === "string") {
      const alias = /^(?:arn:aws[\w-]*:kms:[^:]*:[^:]*:)?(alias\/.+)$/.exec(keyId)?.[1];
      if (alias) id = this.state.aliases[region]?.[alias]?.targetKeyId;
      else id = keyId.startsWith("arn:") ? keyId.slice(keyId.lastIndexOf("/") + 1) : keyId;
    } else if (input.CiphertextBlob instanceof Uint8Array) {
      id = blobKeyId(input.CiphertextBlob);
    } else if (typeof input.CiphertextBlob === "string") {
      id = blobKeyId(Buffer.from(input.CiphertextBlob, "base64"));
    }
    return id === undefined ? undefined : this.state.keys[id]?.arn;
  }

  private liveKey(keyId: string): KeyRecord | undefined {
    const key = this.state.keys[keyId];
    if (!key) return undefined;
    if (
      key.state === "PendingDeletion" &&
      key.deletionDate &&
      Date.parse(key.deletionDate) <= this.account.now().getTime()
    ) {
      this.purge(key);
      return undefined;
    }
    return key;
  }

  private purge(key: KeyRecord): void {
    delete this.state.keys[key.keyId];
    this.policies.delete(key.keyId);
    this.materials.delete(key.keyId);
    const aliases = this.state.aliases[key.region] ?? {};
    for (const [name, alias] of Object.entries(aliases))
      if (alias.targetKeyId === key.keyId) delete aliases[name];
  }

  private regionKeys(region: string): KeyRecord[] {
    const out: KeyRecord[] = [];
    for (const id of Object.keys(this.state.keys)) {
      const key = this.liveKey(id);
      if (key && key.region === region) out.push(key);
    }
    return out;
  }

  private regionAliases(region: string): Record<string, AliasRecord> {
    let aliases = this.state.aliases[region];
    if (!aliases) {
      aliases = {};
      this.state.aliases[region] = aliases;
    }
    return aliases;
  }

  /**
   * The AWS managed key behind a predefined `alias/aws/<service>` alias, created on first use as
   * AWS does. Its id and material derive from the account's seed, so a key created by a read-only
   * call (not persisted at once) comes back identical after a restart.
   */
  private managedAlias(ctx: CallContext, aliasName: string): AliasRecord | undefined {
    if (!PREDEFINED_ALIASES.includes(aliasName)) return undefined;
    const svc = aliasName.slice("alias/aws/".length);
    const acct = this.account.accountId;
    const derive = (label: string) =>
      createHmac("sha256", Buffer.from(this.state.seed, "base64"))
        .update(`${label}\n${ctx.region}\n${aliasName}`)
        .digest();
    const h = derive("key-id").toString("hex");
    const keyId = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
    const material = derive("material");
    const policy = JSON.stringify({
      Version: "2012-10-17",
      Id: `auto-${svc}-2`,
      Statement: [
        {
          Sid: `Allow access through ${svc} for all principals in the account that are authorized to use ${svc}`,
          Effect: "Allow",
          Principal: { AWS: "*" },
          Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
          Resource: "*",
          Condition: {
            StringEquals: {
              "kms:CallerAccount": acct,
              "kms:ViaService": `${svc}.${ctx.region}.amazonaws.com`,
            },
          },
        },
        {
          Sid: "Allow direct access to key metadata to the account",
          Effect: "Allow",
          Principal: { AWS: `arn:aws:iam::${acct}:root` },
          Action: ["kms:Describe*", "kms:Get*", "kms:List*"],
          Resource: "*",
        },
      ],
    });
    const now = ctx.now.toISOString();
    this.state.keys[keyId] ??= {
      keyId,
      arn: keyArn(ctx.region, acct, keyId),
      region: ctx.region,
      creationDate: now,
      description: `Default key that protects my ${svc} data when no other key is defined`,
      keyUsage: "ENCRYPT_DECRYPT",
      keySpec: "SYMMETRIC_DEFAULT",
      origin: "AWS_KMS",
      keyManager: "AWS",
      multiRegion: false,
      state: "Enabled",
      material: material.toString("base64"),
      keyMaterialId: keyMaterialId(material),
      policy,
      principalIds: {},
      tags: [],
      grants: [],
    };
    const alias: AliasRecord = { aliasName, targetKeyId: keyId, creationDate: now, lastUpdatedDate: now };
    this.regionAliases(ctx.region)[aliasName] = alias;
    return alias;
  }

  private material(key: KeyRecord): Buffer {
    let m = this.materials.get(key.keyId);
    if (!m) {
      m = Buffer.from(key.material, "base64");
      this.materials.set(key.keyId, m);
    }
    return m;
  }

  private metadata(key: KeyRecord): Record<string, unknown> {
    const md: Record<string, unknown> = {
      AWSAccountId: this.account.accountId,
      KeyId: key.keyId,
      Arn: key.arn,
      CreationDate: new Date(key.creationDate),
      Enabled: key.state === "Enabled",
      Description: key.description,
      KeyUsage: key.keyUsage,
      KeyState: key.state,
      Origin: key.origin,
      KeyManager: key.keyManager,
      CustomerMasterKeySpec: key.keySpec,
      KeySpec: key.keySpec,
      EncryptionAlgorithms: [ALGORITHM],
      MultiRegion: key.multiRegion,
      CurrentKeyMaterialId: key.keyMaterialId,
    };
    if (key.multiRegion)
      md.MultiRegionConfiguration = {
        MultiRegionKeyType: "PRIMARY",
        PrimaryKey: { Arn: key.arn, Region: key.region },
        ReplicaKeys: [],
      };
    if (key.state === "PendingDeletion" && key.deletionDate) {
      md.DeletionDate = new Date(key.deletionDate);
      md.PendingDeletionWindowInDays = key.pendingWindowInDays;
    }
    return md;
  }

  // ---- key states ------------------------------------------------------------------------------

  /** Encrypt/Decrypt/GenerateDataKey/CreateGrant row of the §1.2 matrix. */
  private requireUsable(key: KeyRecord): void {
    if (key.state === "Disabled") throw kmsErrors.disabled(key.arn);
    if (key.state === "PendingDeletion") throw kmsErrors.pendingDeletion(key.arn);
  }

  private requireNotPendingDeletion(key: KeyRecord): void {
    if (key.state === "PendingDeletion") throw kmsErrors.pendingDeletion(key.arn);
  }

  private keyForStateChange(input: Record<string, unknown>, ctx: CallContext, action: string): KeyRecord {
    const req = validate<{ KeyId: string }>(input, { KeyId: keyIdField() });
    const { key, alias } = this.findKey(ctx, req.KeyId);
    this.authorizeKey(ctx, key, action, { alias });
    this.requireNotPendingDeletion(key);
    return key;
  }

  /** Symmetric keys take only SYMMETRIC_DEFAULT; AWS's InvalidKeyUsageException wording (§1.7). */
  private checkAlgorithm(key: KeyRecord, algorithm: string | undefined, op: string): void {
    if (algorithm !== undefined && algorithm !== ALGORITHM)
      throw kmsErrors.keyUsage(key.arn, key.keyUsage, op);
  }

  private dataKey(
    input: Record<string, unknown>,
    ctx: CallContext,
    op: "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext",
  ) {
    const req = validate<{
      KeyId: string;
      EncryptionContext?: EncryptionContext;
      NumberOfBytes?: number;
      KeySpec?: string;
      DryRun?: boolean;
    }>(input, dataKeyShape);
    if ((req.NumberOfBytes === undefined) === (req.KeySpec === undefined))
      throw kmsErrors.validation("Please specify either number of bytes or key spec.");
    const { key, alias } = this.findKey(ctx, req.KeyId);
    const context = req.EncryptionContext;
    this.authorizeKey(ctx, key, `kms:${op}`, { alias, context, grantOp: op });
    this.requireUsable(key);
    if (req.DryRun) throw kmsErrors.dryRun();
    const plaintext = randomKeyBytes(req.NumberOfBytes ?? (req.KeySpec === "AES_128" ? 16 : 32));
    return { key, plaintext, ciphertext: sealBlob(key.keyId, this.material(key), plaintext, context) };
  }

  // ---- authorisation ---------------------------------------------------------------------------

  /**
   * KMS authorisation for an operation on a key (aws-subset §1.5): the key policy (required) with
   * the caller's IAM policies, then grants. Runs before key-state checks, as AWS does: a permitted
   * caller learns the key is disabled, others get AccessDeniedException.
   */
  private authorizeKey(ctx: CallContext, key: KeyRecord, action: string, opts: AuthzOptions = {}): void {
    const principal = ctx.principal;
    const result = authorize({
      req: { principal, action, resource: key.arn, context: () => this.requestContext(ctx, key, opts) },
      identityPolicies: this.account.iam.identityPolicies(principal),
      resourcePolicy: this.effectivePolicy(key, this.policyInForce(key, ctx.now)).policy,
      resourceAccountId: this.account.accountId,
      mode: "kms",
    });
    if (result.allowed) return;
    if (!result.explicitDeny && opts.grantOp && this.grantAllows(key, principal, opts.grantOp, opts.context))
      return;
    throw kmsAccessDenied(principal.arn, action, key.arn, result);
  }

  /** CreateKey, ListKeys, ListAliases and alias resources: IAM policies only (mode "default"). */
  private authorizeIdentity(
    ctx: CallContext,
    action: string,
    resource: string,
    extra: ContextKeys = {},
  ): void {
    const result = authorize({
      req: { principal: ctx.principal, action, resource, context: { ...baseContext(ctx), ...extra } },
      identityPolicies: this.account.iam.identityPolicies(ctx.principal),
      resourceAccountId: this.account.accountId,
      mode: "default",
    });
    if (result.allowed) return;
    const reason: Pick<AuthzResult, "explicitDeny" | "missing"> = result.explicitDeny
      ? { explicitDeny: result.explicitDeny }
      : { missing: result.missing === "session" ? "session" : "identity" };
    throw kmsAccessDenied(ctx.principal.arn, action, resource, reason);
  }

  private requestContext(
    ctx: CallContext,
    key: Pick<KeyRecord, "keySpec" | "keyUsage" | "origin" | "multiRegion" | "tags">,
    opts: AuthzOptions,
  ): ContextKeys {
    const c = baseContext(ctx);
    c["kms:KeySpec"] = key.keySpec;
    c["kms:KeyUsage"] = key.keyUsage;
    c["kms:KeyOrigin"] = key.origin;
    c["kms:MultiRegion"] = key.multiRegion;
    if (opts.alias !== undefined) c["kms:RequestAlias"] = opts.alias;
    const enc = opts.context;
    if (enc) {
      const keys = Object.keys(enc);
      for (const k of keys) c[`kms:EncryptionContext:${k}`] = enc[k];
      if (keys.length > 0) c["kms:EncryptionContextKeys"] = keys;
    }
    for (const tag of key.tags) c[`aws:ResourceTag/${tag.TagKey}`] = tag.TagValue;
    if (opts.extra) Object.assign(c, opts.extra);
    return c;
  }

  /** Rule 3 of §1.5: a grant on the key names the caller (a role's grant covers its sessions) and the operation. */
  private grantAllows(
    key: KeyRecord,
    principal: Principal,
    op: string,
    context: EncryptionContext | undefined,
  ): boolean {
    for (const g of key.grants) {
      if (!g.operations.includes(op)) continue;
      const grantee = g.granteePrincipal;
      if (grantee !== principal.arn && grantee !== principal.roleArn && grantee !== principal.service)
        continue;
      if (g.constraints && !constraintsHold(g.constraints, context)) continue;
      return true;
    }
    return false;
  }

  // ---- key policies ----------------------------------------------------------------------------

  /**
   * The key policy as it stands now: the stored text, with each IAM principal that no longer is the
   * entity it was when the policy was stored replaced by that entity's old unique id (aws-subset
   * §1.4: a deleted role degrades to `AROA...` and stops matching a re-created role of the same
   * name). Parsed once per change, not per call.
   */
  private effectivePolicy(
    key: KeyRecord,
    stored: Pick<KeyRecord, "policy" | "principalIds"> = key,
  ): { text: string; policy: Policy } {
    let gone = "";
    for (const arn in stored.principalIds) {
      if (this.account.iam.arnForUniqueId(stored.principalIds[arn]!) !== arn) gone += `${arn}\n`;
    }
    const hit = this.policies.get(key.keyId);
    if (hit && hit.text === stored.policy && hit.gone === gone)
      return { text: hit.policy.text, policy: hit.policy };
    let text = stored.policy;
    if (gone) {
      for (const arn of gone.split("\n"))
        if (arn) text = text.split(`"${arn}"`).join(`"${stored.principalIds[arn]}"`);
    }
    let policy: Policy;
    try {
      policy = parsePolicy(text, "resource");
    } catch {
      // A stored policy always parsed when it was stored; should a degraded one not, it allows nothing.
      policy = { statements: [], text };
    }
    this.policies.set(key.keyId, { text: stored.policy, gone, policy });
    return { text, policy };
  }

  /**
   * The key policy authorisation reads: the one put last, or — for `keyPolicyPropagationMs` after a
   * PutKeyPolicy — the one it replaced. KMS is eventually consistent ("typically ... within
   * seconds, but in some cases it can take several minutes",
   * https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html):
   * a key user taken out keeps its access for a while, one put back waits for it. GetKeyPolicy
   * shows the new policy at once (unconfirmed whether AWS's does).
   */
  private policyInForce(key: KeyRecord, now: Date): Pick<KeyRecord, "policy" | "principalIds"> {
    const previous = key.previousPolicy;
    if (previous && now.getTime() < Date.parse(previous.until)) return previous;
    if (previous) delete key.previousPolicy;
    return key;
  }

  /**
   * CreateKey/PutKeyPolicy validation (aws-subset §1.4): the policy parses; every AWS principal it
   * names exists (its unique id is remembered for degradation); and, unless bypassed, the caller
   * could still call PutKeyPolicy under it.
   */
  private checkNewPolicy(
    ctx: CallContext,
    arn: string,
    text: string,
    bypass: boolean,
    key?: KeyRecord,
  ): { policy: Policy; principalIds: Record<string, string> } {
    let policy: Policy;
    try {
      policy = parsePolicy(text, "resource");
    } catch (err) {
      if (err instanceof PolicyError) throw kmsErrors.malformedPolicy(err.message);
      throw err;
    }
    const acct = this.account.accountId;
    const iam = this.account.iam;
    // Other accounts' users and roles cannot be looked up here: refused, as KMS refuses those
    // that do not exist (a deliberate strictness; the lab names none).
    const { unknown, foreign, uniqueIds: principalIds } = iam.checkPrincipals(policy);
    if (unknown.length > 0 || foreign.length > 0) throw kmsErrors.invalidPrincipals();
    if (!bypass) {
      const result = authorize({
        req: {
          principal: ctx.principal,
          action: "kms:PutKeyPolicy",
          resource: arn,
          context: this.requestContext(ctx, key ?? NEW_KEY, {}),
        },
        identityPolicies: iam.identityPolicies(ctx.principal),
        resourcePolicy: policy,
        resourceAccountId: acct,
        mode: "kms",
      });
      if (!result.allowed) throw kmsErrors.lockout();
    }
    return { policy, principalIds };
  }
}

// ---- helpers ---------------------------------------------------------------------------------

const encryptShape = {
  KeyId: keyIdField(),
  Plaintext: blob({ required: true }),
  EncryptionContext: contextField,
  GrantTokens: grantTokens,
  EncryptionAlgorithm: algorithmField,
  DryRun: bool(),
};

const dataKeyShape = {
  KeyId: keyIdField(),
  EncryptionContext: contextField,
  NumberOfBytes: int({ min: 1, max: 1024 }),
  KeySpec: str({ enum: ["AES_256", "AES_128"] }),
  GrantTokens: grantTokens,
  DryRun: bool(),
};

const decryptShape = {
  CiphertextBlob: blob({ required: true, min: 1, max: 6144 }),
  EncryptionContext: contextField,
  GrantTokens: grantTokens,
  KeyId: keyIdField(false),
  EncryptionAlgorithm: algorithmField,
  DryRun: bool(),
};

/** What the lockout check knows of a key CreateKey has not stored yet. */
const NEW_KEY = {
  keySpec: "SYMMETRIC_DEFAULT",
  keyUsage: "ENCRYPT_DECRYPT",
  origin: "AWS_KMS",
  multiRegion: false,
  tags: [] as Tag[],
} as const;

const algorithmContext: ContextKeys = { "kms:EncryptionAlgorithm": ALGORITHM };

/** Plaintext is sensitive: AWS's message names the member but not its value (aws-subset §1.6). */
function checkPlaintext(plaintext: Uint8Array): void {
  const bound =
    plaintext.length < 1
      ? "Member must have length greater than or equal to 1"
      : plaintext.length > 4096
        ? "Member must have length less than or equal to 4096"
        : undefined;
  if (bound)
    throw kmsErrors.validation(
      `1 validation error detected: Value at 'plaintext' failed to satisfy constraint: ${bound}`,
    );
}

function baseContext(ctx: CallContext): ContextKeys {
  const c = globalContextKeys(ctx);
  c["kms:CallerAccount"] = ctx.principal.accountId;
  if (ctx.viaService !== undefined) c["kms:ViaService"] = ctx.viaService;
  return c;
}

function requestTagContext(tags: Tag[]): ContextKeys {
  if (tags.length === 0) return {};
  const c: ContextKeys = { "aws:TagKeys": tags.map((t) => t.TagKey) };
  for (const t of tags) c[`aws:RequestTag/${t.TagKey}`] = t.TagValue;
  return c;
}

function checkTags(tags: Tag[]): void {
  for (const t of tags) if (t.TagKey.toLowerCase().startsWith("aws:")) throw kmsErrors.reservedTag();
}

/** Later tags with the same key replace earlier ones, keeping first-seen order. */
function dedupeTags(tags: Tag[]): Tag[] {
  const byKey = new Map<string, Tag>();
  for (const t of tags) byKey.set(t.TagKey, { TagKey: t.TagKey, TagValue: t.TagValue });
  return [...byKey.values()];
}

const isAliasRef = (s: string) => s.startsWith("alias/") || /^arn:aws[\w-]*:kms:[^:]*:[^:]*:alias\//.test(s);

/** Alias names must start with `alias/`; `alias/aws/` belongs to AWS (aws-subset §1.3, §9.2). */
function checkAliasName(name: string): string {
  if (!name.startsWith("alias/")) throw kmsErrors.aliasPrefix();
  if (name.startsWith("alias/aws/")) throw kmsErrors.reservedAlias();
  return name;
}

function constraintsHold(c: GrantConstraints, context: EncryptionContext | undefined): boolean {
  const enc = context ?? {};
  if (c.EncryptionContextEquals) {
    const want = c.EncryptionContextEquals;
    const wantKeys = Object.keys(want);
    if (wantKeys.length !== Object.keys(enc).length) return false;
    for (const k of wantKeys) if (enc[k] !== want[k]) return false;
  }
  if (c.EncryptionContextSubset) {
    for (const [k, v] of Object.entries(c.EncryptionContextSubset)) if (enc[k] !== v) return false;
  }
  return true;
}

/** Markers are the index of the next item, as a string; anything else is not ours. */
function paginate<T>(all: T[], limit: number, marker: string | undefined): { items: T[]; next?: string } {
  let start = 0;
  if (marker !== undefined) {
    if (!/^\d+$/.test(marker) || Number(marker) > all.length) throw kmsErrors.invalidMarker();
    start = Number(marker);
  }
  const items = all.slice(start, start + limit);
  const end = start + items.length;
  return end < all.length ? { items, next: String(end) } : { items };
}
