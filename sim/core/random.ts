import { randomFillSync } from "node:crypto";

/**
 * Random bytes from a pool refilled 16 KiB at a time: `crypto.randomBytes(12)` costs ~6 µs per
 * call — several of them are a third of a simulated call — while a slice of a pooled fill costs well
 * under one. The bytes are the same CSPRNG output, each handed out once.
 */
const pool = Buffer.alloc(16 * 1024);
let poolOffset = pool.length;

/** A view of `n` fresh random bytes, valid until the next call: copy it to keep it. */
export function pooledRandom(n: number): Buffer {
  if (n > pool.length) return randomFill(n);
  if (poolOffset + n > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

function randomFill(n: number): Buffer {
  return randomFillSync(Buffer.alloc(n));
}

/** `n` random bytes the caller may keep (keys, ids). */
export function randomBytesFast(n: number): Buffer {
  return Buffer.from(pooledRandom(n));
}

const HEX = "0123456789abcdef";
const uuidBytes = Buffer.alloc(36);

/**
 * A random (version 4) UUID as one flat string. `crypto.randomUUID()` builds its answer by
 * concatenating 20 pieces, which V8 keeps as a tree of ~20 string objects (~450 bytes); CloudTrail
 * keeps two ids for every event it records, so that tree was most of an event's memory.
 */
export function uuid(): string {
  const r = pooledRandom(16);
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) uuidBytes[j++] = 0x2d; // "-"
    let b = r[i]!;
    if (i === 6)
      b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // RFC 4122 variant
    uuidBytes[j++] = HEX.charCodeAt(b >> 4);
    uuidBytes[j++] = HEX.charCodeAt(b & 0x0f);
  }
  return uuidBytes.toString("latin1");
}
