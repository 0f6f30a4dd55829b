import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { pooledRandom, randomBytesFast } from "../../core/random.js";

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
const IV_LENGTH = 12;
const TAG_LENGTH = 16;

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
  if (!context) return undefined;
  const keys = Object.keys(context);
  if (keys.length === 0) return undefined;
  keys.sort();
  const parts: Buffer[] = [];
  for (const k of keys) {
    const kb = Buffer.from(k, "utf8");
    const vb = Buffer.from(context[k] ?? "", "utf8");
    const len = Buffer.allocUnsafe(8);
    len.writeUInt32BE(kb.length, 0);
    len.writeUInt32BE(vb.length, 4);
    parts.push(len, kb, vb);
  }
  return Buffer.concat(parts);
}

function header(keyId: string): Buffer {
  const id = Buffer.from(keyId, "latin1");
  const h = Buffer.allocUnsafe(3 + id.length);
  h[0] = MAGIC;
  h[1] = VERSION;
  h[2] = id.length;
  id.copy(h, 3);
  return h;
}

/** Encrypts `plaintext` under the key; the blob names `keyId`. */
export function sealBlob(
  keyId: string,
  material: Buffer,
  plaintext: Uint8Array,
  context: EncryptionContext | undefined,
): Buffer {
  const h = header(keyId);
  const iv = pooledRandom(IV_LENGTH);
  const cipher = createCipheriv("aes-256-gcm", material, iv);
  const aad = canonicalContext(context);
  cipher.setAAD(aad ? Buffer.concat([h, aad]) : h);
  const first = cipher.update(plaintext);
  const last = cipher.final();
  const tag = cipher.getAuthTag();
  return Buffer.concat([h, iv, tag, first, last]);
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
    const aad = canonicalContext(context);
    decipher.setAAD(aad ? Buffer.concat([h, aad]) : h);
    decipher.setAuthTag(tag);
    const first = decipher.update(body);
    const last = decipher.final();
    return last.length === 0 ? first : Buffer.concat([first, last]);
  } catch {
    return undefined;
  }
}
