import { createDecipheriv, createHash, randomBytes } from "node:crypto";
import { GCM_IV_LENGTH as IV_LENGTH, sealInto, GCM_TAG_LENGTH as TAG_LENGTH } from "../../core/gcm.js";
import { randomBytesFast } from "../../core/random.js";

/**
 * The simulator's symmetric ciphertext: real AES-256-GCM under the key's 32-byte material, in a
 * self-describing blob so that Decrypt finds the key without a KeyId, as KMS does (aws-subset §1.6;
 * AWS's own layout is undocumented, this one is ours):
 *
 *   "K" 0x01 | idLength (1 byte) | key id (ASCII) | IV (12) | tag (16) | ciphertext
 *
 * The header (everything before the IV) and the canonical encryption context are the AAD, so any
 * tampering, a different key id, or a context that is not an exact, case-sensitive match fails the
 * GCM tag check.
 */
const MAGIC = 0x4b;
const VERSION = 0x01;

export type EncryptionContext = Record<string, string>;

/** `n` random bytes the caller may keep (data keys). */
export function randomKeyBytes(n: number): Buffer {
  return randomBytesFast(n);
}

/** 32 fresh random bytes: the material of a new key. */
export function newKeyMaterial(): Buffer {
  return randomBytes(32);
}

/** A stable 64-hex id for a key's material (KeyMaterialId / CurrentKeyMaterialId): its SHA-256. */
export function keyMaterialId(material: Buffer): string {
  return createHash("sha256").update(material).digest("hex");
}

/**
 * The context as AAD: keys sorted by code unit (exact case), each key and value length-prefixed so
 * that `{a:"bc"}` and `{ab:"c"}` differ. An absent or empty context adds nothing.
 */
export function canonicalContext(context: EncryptionContext | undefined): Buffer | undefined {
  return contextAad(context, undefined);
}

/**
 * The AAD in one buffer: `prefix` (a blob's header), then the canonical context. Undefined when both
 * are empty.
 */
function contextAad(
  context: EncryptionContext | undefined,
  prefix: Uint8Array | undefined,
): Buffer | undefined {
  const keys = context ? Object.keys(context) : [];
  if (keys.length === 0) return prefix && Buffer.from(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  keys.sort();
  let size = prefix?.length ?? 0;
  for (const k of keys)
    size += 8 + Buffer.byteLength(k, "utf8") + Buffer.byteLength(context![k] ?? "", "utf8");
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (prefix) {
    out.set(prefix, 0);
    at = prefix.length;
  }
  for (const k of keys) {
    const v = context![k] ?? "";
    const kLength = out.write(k, at + 8, "utf8");
    const vLength = out.write(v, at + 8 + kLength, "utf8");
    out.writeUInt32BE(kLength, at);
    out.writeUInt32BE(vLength, at + 4);
    at += 8 + kLength + vLength;
  }
  return out;
}

/** Encrypts `plaintext` under the key; the blob names `keyId`. Built in one buffer. */
export function sealBlob(
  keyId: string,
  material: Buffer,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): Buffer {
  const headerLength = 3 + keyId.length;
  const out = Buffer.allocUnsafe(headerLength + IV_LENGTH + TAG_LENGTH + plaintext.length);
  out[0] = MAGIC;
  out[1] = VERSION;
  out[2] = keyId.length;
  out.write(keyId, 3, "latin1");
  return sealInto(out, headerLength, material, plaintext, contextAad(context, out.subarray(0, headerLength)));
}

/** The key id a blob names, or undefined when the blob is not one of ours (→ InvalidCiphertextException). */
export function blobKeyId(blob: Uint8Array): string | undefined {
  if (blob.length < 3 || blob[0] !== MAGIC || blob[1] !== VERSION) return undefined;
  const idLength = blob[2]!;
  if (idLength === 0 || blob.length < 3 + idLength + IV_LENGTH + TAG_LENGTH) return undefined;
  return Buffer.from(blob.buffer, blob.byteOffset + 3, idLength).toString("latin1");
}

/** Decrypts a blob whose key id was checked by `blobKeyId`; undefined on any authentication failure. */
export function openBlob(
  blob: Uint8Array,
  material: Buffer,
  context: EncryptionContext | undefined,
): Buffer | undefined {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const headerLength = 3 + buf[2]!;
  const h = buf.subarray(0, headerLength);
  const iv = buf.subarray(headerLength, headerLength + IV_LENGTH);
  const tag = buf.subarray(headerLength + IV_LENGTH, headerLength + IV_LENGTH + TAG_LENGTH);
  const body = buf.subarray(headerLength + IV_LENGTH + TAG_LENGTH);
  try {
    const decipher = createDecipheriv("aes-256-gcm", material, iv);
    decipher.setAAD(contextAad(context, h)!);
    decipher.setAuthTag(tag);
    const first = decipher.update(body);
    const last = decipher.final();
    return last.length === 0 ? first : Buffer.concat([first, last]);
  } catch {
    return undefined;
  }
}
