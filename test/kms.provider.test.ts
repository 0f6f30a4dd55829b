import { createCipheriv, createDecipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Account } from "../sim/account.js";
import type { CallContext } from "../sim/core/service.js";
import type { Principal } from "../sim/core/types.js";
import {
  blobKeyId,
  canonicalContext,
  newKeyMaterial,
  openBlob,
  sealBlob,
} from "../sim/services/kms/crypto.js";
import { thrown } from "./helpers/errors.js";

/**
 * The KMS provider called directly, as the dispatcher and other providers (S3) call it: inputs as
 * the JSON codec hands them over (blobs as base64 strings), outputs before serialisation.
 */

function setup() {
  let offsetMs = 0;
  const account = Account.create(undefined, () => new Date(Date.now() + offsetMs));
  const admin = account.iam.findAccessKey(account.iam.adminCredentials().accessKeyId)!.principal;
  const ctx = (over: Partial<CallContext> = {}, principal: Principal = admin): CallContext => ({
    accountId: account.accountId,
    region: "us-east-1",
    requestId: "req",
    principal,
    now: account.now(),
    sourceIp: "192.0.2.10",
    userAgent: "test",
    secureTransport: true,
    ...over,
  });
  const kms = account.kms;
  const acct = account.accountId;
  return { account, kms, admin, ctx, acct, travel: (ms: number) => (offsetMs += ms) };
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const policy = (...statements: object[]) => JSON.stringify({ Version: "2012-10-17", Statement: statements });

describe("KMS crypto", () => {
  it("canonical context ignores key order, keeps case and separates keys from values", () => {
    expect(canonicalContext({ a: "1", b: "2" })).toEqual(canonicalContext({ b: "2", a: "1" }));
    expect(canonicalContext({ a: "bc" })).not.toEqual(canonicalContext({ ab: "c" }));
    expect(canonicalContext({ a: "x" })).not.toEqual(canonicalContext({ A: "x" }));
    expect(canonicalContext({})).toBeUndefined();
  });

  it("a blob names its key and opens only with the same material and context", () => {
    const material = newKeyMaterial();
    const id = "11111111-2222-3333-4444-555555555555";
    const blob = sealBlob(id, material, Buffer.from("pt"), { k: "v" });
    expect(blobKeyId(blob)).toBe(id);
    expect(openBlob(blob, material, { k: "v" })?.toString()).toBe("pt");
    expect(openBlob(blob, material, { k: "V" })).toBeUndefined();
    expect(openBlob(blob, newKeyMaterial(), { k: "v" })).toBeUndefined();
    const renamed = Buffer.from(blob);
    renamed[3] = "2".charCodeAt(0); // a different key id in the header fails the tag (the header is AAD)
    expect(openBlob(renamed, material, { k: "v" })).toBeUndefined();
    expect(blobKeyId(Buffer.from("junk"))).toBeUndefined();
  });

  it("keeps the documented blob layout, so blobs already in data directories still open", () => {
    const material = newKeyMaterial();
    const id = "11111111-2222-3333-4444-555555555555";
    // "K" 0x01 | id length | id | IV (12) | tag (16) | ciphertext; AAD: the header, then each context
    // pair sorted by key as (key length, value length: 4 bytes each, big-endian) | key | value.
    const header = Buffer.concat([Buffer.from([0x4b, 0x01, id.length]), Buffer.from(id, "latin1")]);
    const pair = (k: string, v: string) => {
      const len = Buffer.alloc(8);
      len.writeUInt32BE(Buffer.byteLength(k), 0);
      len.writeUInt32BE(Buffer.byteLength(v), 4);
      return Buffer.concat([len, Buffer.from(k), Buffer.from(v)]);
    };
    const aad = Buffer.concat([header, pair("aws:s3:arn", "arn:aws:s3:::b/k"), pair("é", "ü")]);
    const iv = Buffer.alloc(12, 7);
    const cipher = createCipheriv("aes-256-gcm", material, iv);
    cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update("by hand"), cipher.final()]);
    const byHand = Buffer.concat([header, iv, cipher.getAuthTag(), body]);
    const context = { é: "ü", "aws:s3:arn": "arn:aws:s3:::b/k" };
    expect(openBlob(byHand, material, context)?.toString()).toBe("by hand");

    const sealed = sealBlob(id, material, Buffer.from("sealed"), context);
    expect(sealed.subarray(0, header.length)).toEqual(header);
    const at = header.length;
    const decipher = createDecipheriv("aes-256-gcm", material, sealed.subarray(at, at + 12));
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(at + 12, at + 28));
    expect(Buffer.concat([decipher.update(sealed.subarray(at + 28)), decipher.final()]).toString()).toBe(
      "sealed",
    );
  });
});

describe("KMS provider", () => {
  it("takes JSON-codec input (base64 blobs) and returns Buffers and Dates", () => {
    const { kms, ctx } = setup();
    const { KeyMetadata } = kms.CreateKey({}, ctx());
    expect(KeyMetadata.CreationDate).toBeInstanceOf(Date);
    const out = kms.Encrypt({ KeyId: KeyMetadata.KeyId, Plaintext: b64("hi") }, ctx());
    expect(Buffer.isBuffer(out.CiphertextBlob)).toBe(true);
    const back = kms.Decrypt({ CiphertextBlob: out.CiphertextBlob.toString("base64") }, ctx());
    expect(back.Plaintext.toString()).toBe("hi");
  });

  it("InvalidCiphertextException and the reserved-alias error carry an empty message on the wire", () => {
    const { kms, ctx } = setup();
    const { KeyMetadata } = kms.CreateKey({}, ctx());
    const { CiphertextBlob } = kms.Encrypt(
      { KeyId: KeyMetadata.KeyId, Plaintext: b64("x"), EncryptionContext: { a: "b" } },
      ctx(),
    );
    const err = thrown(() => kms.Decrypt({ CiphertextBlob, EncryptionContext: { a: "c" } }, ctx()));
    expect({ code: err.code, status: err.status, message: err.message }).toEqual({
      code: "InvalidCiphertextException",
      status: 400,
      message: "",
    });
    const reserved = thrown(() =>
      kms.CreateAlias({ AliasName: "alias/aws/x", TargetKeyId: KeyMetadata.KeyId }, ctx()),
    );
    expect({ code: reserved.code, message: reserved.message }).toEqual({
      code: "NotAuthorizedException",
      message: "",
    });
  });

  it("DryRun answers DryRunOperationException (412) once the call would have succeeded", () => {
    const { kms, ctx } = setup();
    const { KeyMetadata } = kms.CreateKey({}, ctx());
    const err = thrown(() =>
      kms.Encrypt({ KeyId: KeyMetadata.KeyId, Plaintext: b64("x"), DryRun: true }, ctx()),
    );
    expect({ code: err.code, status: err.status, message: err.message }).toEqual({
      code: "DryRunOperationException",
      status: 412,
      message: "The request would have succeeded, but the DryRun option is set.",
    });
  });

  it("a key is gone once its deletion date has passed, and its aliases with it", () => {
    const { kms, ctx, travel, acct } = setup();
    const { KeyMetadata } = kms.CreateKey({}, ctx());
    kms.CreateAlias({ AliasName: "alias/doomed", TargetKeyId: KeyMetadata.KeyId }, ctx());
    kms.ScheduleKeyDeletion({ KeyId: KeyMetadata.KeyId, PendingWindowInDays: 7 }, ctx());
    travel(6 * 86_400_000);
    expect(kms.DescribeKey({ KeyId: KeyMetadata.KeyId }, ctx()).KeyMetadata.KeyState).toBe("PendingDeletion");
    travel(86_400_000 + 1000);
    const err = thrown(() => kms.DescribeKey({ KeyId: KeyMetadata.KeyId }, ctx()));
    expect({ code: err.code, message: err.message }).toEqual({
      code: "NotFoundException",
      message: `Key '${KeyMetadata.Arn}' does not exist`,
    });
    const alias = thrown(() => kms.DescribeKey({ KeyId: "alias/doomed" }, ctx()));
    expect(alias.message).toBe(`Alias arn:aws:kms:us-east-1:${acct}:alias/doomed is not found.`);
    expect(kms.ListKeys({}, ctx()).Keys).toEqual([]);
    expect(kms.ListAliases({}, ctx()).Aliases.map((a) => a.AliasName)).not.toContain("alias/doomed");
  });

  it("state survives a JSON round trip: old ciphertexts still decrypt", () => {
    const { account, kms, ctx } = setup();
    const { KeyMetadata } = kms.CreateKey({}, ctx());
    const { CiphertextBlob } = kms.Encrypt({ KeyId: KeyMetadata.KeyId, Plaintext: b64("persist") }, ctx());
    const managed = kms.GenerateDataKey(
      { KeyId: "alias/aws/s3", KeySpec: "AES_256" },
      ctx({ viaService: "s3.us-east-1.amazonaws.com" }),
    );
    const reopened = new Account(JSON.parse(JSON.stringify(account.toState())));
    const c = {
      ...ctx(),
      principal: reopened.iam.findAccessKey(reopened.iam.adminCredentials().accessKeyId)!.principal,
    };
    expect(reopened.kms.Decrypt({ CiphertextBlob }, c).Plaintext.toString()).toBe("persist");
    expect(
      reopened.kms.Decrypt(
        { CiphertextBlob: managed.CiphertextBlob },
        { ...c, viaService: "s3.us-east-1.amazonaws.com" },
      ).Plaintext,
    ).toEqual(managed.Plaintext);
  });

  it("the AWS managed key is usable only through its service (kms:ViaService, kms:CallerAccount)", () => {
    const { kms, ctx } = setup();
    const via = ctx({ viaService: "s3.us-east-1.amazonaws.com" });
    const dk = kms.GenerateDataKey(
      { KeyId: "alias/aws/s3", KeySpec: "AES_256", EncryptionContext: { "aws:s3:arn": "arn:aws:s3:::b/k" } },
      via,
    );
    expect(dk.Plaintext).toHaveLength(32);
    const back = kms.Decrypt(
      { CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { "aws:s3:arn": "arn:aws:s3:::b/k" } },
      via,
    );
    expect(back.Plaintext).toEqual(dk.Plaintext);
    const err = thrown(() =>
      kms.Decrypt(
        { CiphertextBlob: dk.CiphertextBlob, EncryptionContext: { "aws:s3:arn": "arn:aws:s3:::b/k" } },
        ctx(),
      ),
    );
    expect(err.code).toBe("AccessDeniedException");
    expect(kms.DescribeKey({ KeyId: "alias/aws/s3" }, ctx()).KeyMetadata.KeyManager).toBe("AWS");
  });

  it("feeds encryption context, alias and transport condition keys to the key policy", () => {
    const { kms, ctx, admin, acct } = setup();
    const root = `arn:aws:iam::${acct}:root`;
    const text = policy(
      { Effect: "Allow", Principal: { AWS: root }, Action: "kms:*", Resource: "*" },
      {
        Effect: "Deny",
        Principal: { AWS: "*" },
        Action: "kms:Encrypt",
        Resource: "*",
        Condition: { StringNotEquals: { "kms:EncryptionContext:purpose": "lab" } },
      },
      {
        Effect: "Deny",
        Principal: { AWS: "*" },
        Action: "kms:Decrypt",
        Resource: "*",
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
      {
        Effect: "Deny",
        Principal: { AWS: "*" },
        Action: "kms:GenerateDataKey",
        Resource: "*",
        Condition: { StringEquals: { "kms:RequestAlias": "alias/blocked" } },
      },
    );
    const { KeyMetadata } = kms.CreateKey({ Policy: text }, ctx());
    const keyId = KeyMetadata.KeyId;
    kms.CreateAlias({ AliasName: "alias/blocked", TargetKeyId: keyId }, ctx());
    const denied = thrown(() =>
      kms.Encrypt({ KeyId: keyId, Plaintext: b64("x"), EncryptionContext: { purpose: "other" } }, ctx()),
    );
    expect(denied.message).toBe(
      `User: ${admin.arn} is not authorized to perform: kms:Encrypt on resource: ${KeyMetadata.Arn} with an explicit deny in a resource-based policy`,
    );
    const { CiphertextBlob } = kms.Encrypt(
      { KeyId: keyId, Plaintext: b64("x"), EncryptionContext: { purpose: "lab" } },
      ctx(),
    );
    expect(
      thrown(() =>
        kms.Decrypt(
          { CiphertextBlob, EncryptionContext: { purpose: "lab" } },
          ctx({ secureTransport: false }),
        ),
      ).code,
    ).toBe("AccessDeniedException");
    kms.Decrypt({ CiphertextBlob, EncryptionContext: { purpose: "lab" } }, ctx());
    expect(
      thrown(() => kms.GenerateDataKey({ KeyId: "alias/blocked", KeySpec: "AES_256" }, ctx())).code,
    ).toBe("AccessDeniedException");
    kms.GenerateDataKey({ KeyId: keyId, KeySpec: "AES_256" }, ctx());
  });

  it("validates inputs in AWS's words", () => {
    const { kms, ctx } = setup();
    const { KeyMetadata } = kms.CreateKey({}, ctx());
    const missing = thrown(() => kms.Encrypt({ KeyId: KeyMetadata.KeyId }, ctx()));
    expect(missing.message).toBe(
      "1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null",
    );
    const window = thrown(() =>
      kms.ScheduleKeyDeletion({ KeyId: KeyMetadata.KeyId, PendingWindowInDays: 0 }, ctx()),
    );
    expect(window.message).toBe(
      "1 validation error detected: Value '0' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    const tooLong = thrown(() =>
      kms.PutKeyPolicy({ KeyId: KeyMetadata.KeyId, Policy: "x".repeat(131073) }, ctx()),
    );
    expect(tooLong.code).toBe("ValidationException");
    expect(tooLong.message).toMatch(
      /at 'policy' failed to satisfy constraint: Member must have length less than or equal to 131072/,
    );
    const ops = thrown(() =>
      kms.CreateGrant(
        { KeyId: KeyMetadata.KeyId, GranteePrincipal: "arn:aws:iam::111122223333:root", Operations: ["Fly"] },
        ctx(),
      ),
    );
    expect(ops.code).toBe("ValidationException");
    const alg = thrown(() =>
      kms.Encrypt(
        { KeyId: KeyMetadata.KeyId, Plaintext: b64("x"), EncryptionAlgorithm: "RSAES_OAEP_SHA_256" },
        ctx(),
      ),
    );
    expect({ code: alg.code, message: alg.message }).toEqual({
      code: "InvalidKeyUsageException",
      message: `${KeyMetadata.Arn} key usage is ENCRYPT_DECRYPT which is not valid for Encrypt.`,
    });
    const spec = thrown(() => kms.CreateKey({ KeySpec: "RSA_2048" }, ctx()));
    expect(spec.code).toBe("UnsupportedOperationException");
  });
});
