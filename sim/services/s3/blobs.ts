import { createDecipheriv, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeAtomic, writeNewFile } from "../../../lib/files.js";
import type { Account } from "../../account.js";
import { GCM_IV_LENGTH, GCM_TAG_LENGTH, sealInto } from "../../core/gcm.js";
import { pooledRandom, randomBytesFast } from "../../core/random.js";

/**
 * Where S3 object bodies live: files under `<dataDir>/s3/objects/<id>`, where the id is 32 random
 * hex digits and never anything taken from the object's key, so no key (`../x`, `/etc/passwd`, NUL,
 * 1,024 bytes) can name a path outside the data directory. An in-memory map stands in when the
 * account has no data directory.
 *
 * Ordering, for crash safety: a body is written and fsync'ed before the operation returns (the
 * state that refers to it is saved after); a body the state stops referring to is removed only
 * once that state is saved (account.afterCommit). A crash can leave an orphan file, never a state
 * that points at nothing. A body that cannot be written whole (a full disk) is removed and the
 * operation fails; one written for a change the account then rolls back (its save failed) is
 * removed with it (account.onRollback).
 *
 * Bodies are stored encrypted with the object's own 256-bit data key (AES-256-GCM; the file is
 * `version(1) | iv(12) | tag(16) | ciphertext`), as S3 keeps them: the key comes from KMS for
 * SSE-KMS and from the S3 master key for SSE-S3 (sse.ts).
 */

const ID = /^[0-9a-f]{32}$/;
const FORMAT = 1;

export class BlobStore {
  private readonly memory = new Map<string, Buffer>();
  private readonly dir: string | undefined;
  private dirReady = false;

  constructor(private readonly account: Account) {
    this.dir = account.dataDir === undefined ? undefined : join(account.dataDir, "s3", "objects");
  }

  /**
   * Stores `data` (already sealed) under a new random id, durably; returns the id. An in-memory store
   * keeps `data` itself: the caller gives it up.
   */
  write(data: Uint8Array): string {
    const id = pooledRandom(16).toString("hex");
    if (this.dir === undefined) {
      this.memory.set(id, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      return id;
    }
    if (!this.dirReady) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.dirReady = true;
    }
    writeNewFile(join(this.dir, id), data);
    this.account.onRollback(() => this.removeNow(id));
    return id;
  }

  /** The stored bytes of `id`; throws when there are none (a state edited by hand, a lost file). */
  read(id: string): Buffer {
    if (!ID.test(id)) throw new Error(`invalid S3 blob id ${JSON.stringify(id)}`);
    if (this.dir === undefined) {
      const data = this.memory.get(id);
      if (!data) throw new Error(`S3 blob ${id} is missing`);
      return data;
    }
    return readFileSync(join(this.dir, id));
  }

  /** Removes `id` once the account's state no longer referring to it has been saved. */
  removeAfterCommit(id: string): void {
    this.account.afterCommit(() => this.removeNow(id));
  }

  /** Removes `id` at once: a body written for an operation that then failed, never referred to. */
  removeNow(id: string): void {
    if (!ID.test(id)) return;
    if (this.dir === undefined) this.memory.delete(id);
    else rmSync(join(this.dir, id), { force: true });
  }

  /** For tests: how many bodies are stored. */
  get size(): number {
    return this.memory.size;
  }

  /**
   * The account's SSE-S3 master key (32 bytes), which wraps every SSE-S3 object's data key. Kept in
   * `<dataDir>/s3/master.key` (base64, mode 0600), not in account.json: the state file holds no secret.
   * In memory for an in-memory account.
   */
  masterKey(): Buffer {
    if (this.master) return this.master;
    if (this.account.dataDir === undefined) {
      this.master = randomBytes(32);
      return this.master;
    }
    const file = join(this.account.dataDir, "s3", "master.key");
    try {
      const key = Buffer.from(readFileSync(file, "utf8").trim(), "base64");
      if (key.length === 32) {
        this.master = key;
        return key;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    mkdirSync(join(this.account.dataDir, "s3"), { recursive: true, mode: 0o700 });
    const key = randomBytesFast(32);
    writeAtomic(file, `${key.toString("base64")}\n`, { mode: 0o600 });
    this.master = key;
    return key;
  }

  private master: Buffer | undefined;
}

const stores = new WeakMap<Account, BlobStore>();

/** The account's blob store (one per account, made on first use). */
export function blobStore(account: Account): BlobStore {
  let store = stores.get(account);
  if (!store) {
    store = new BlobStore(account);
    stores.set(account, store);
  }
  return store;
}

/** AES-256-GCM with `key`: `version | iv | tag | ciphertext`, written into one buffer. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad?: string): Buffer {
  const out = Buffer.allocUnsafe(1 + GCM_IV_LENGTH + GCM_TAG_LENGTH + plaintext.length);
  out[0] = FORMAT;
  return sealInto(out, 1, key, plaintext, aad === undefined ? undefined : Buffer.from(aad, "utf8"));
}

/** Opens what `seal` made; throws when the key is wrong or the bytes were altered. */
export function open(key: Uint8Array, sealed: Uint8Array, aad?: string): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (buf.length < 29 || buf[0] !== FORMAT) throw new Error("S3 blob: unknown format");
  const decipher = createDecipheriv("aes-256-gcm", key, buf.subarray(1, 13));
  decipher.setAuthTag(buf.subarray(13, 29));
  if (aad !== undefined) decipher.setAAD(Buffer.from(aad, "utf8"));
  return Buffer.concat([decipher.update(buf.subarray(29)), decipher.final()]);
}
