import { createCipheriv } from "node:crypto";
import { pooledRandom } from "./random.js";

export const GCM_IV_LENGTH = 12;
export const GCM_TAG_LENGTH = 16;

/**
 * AES-256-GCM of `plaintext` written into `out` from `at`: a fresh IV, the tag, then the ciphertext
 * (`out` has room for all three). `aad` is authenticated, not written. KMS's ciphertext blobs and S3's
 * stored bodies both put their own header before it.
 */
export function sealInto(
  out: Buffer,
  at: number,
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
): Buffer {
  const iv = out.subarray(at, at + GCM_IV_LENGTH);
  pooledRandom(GCM_IV_LENGTH).copy(iv);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  if (aad) cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  // GCM is a stream mode: every byte comes out of update(), final() only makes the tag.
  if (cipher.final().length !== 0 || body.length !== plaintext.length)
    throw new Error("AES-GCM: unexpected output");
  cipher.getAuthTag().copy(out, at + GCM_IV_LENGTH);
  body.copy(out, at + GCM_IV_LENGTH + GCM_TAG_LENGTH);
  return out;
}
