import { describe, expect, it } from "vitest";
import { pooledRandom, uuid } from "../sim/core/random.js";
import { digest } from "../sim/services/s3/checksums.js";

describe("sim random ids", () => {
  it("uuid() answers version-4 UUIDs in the canonical lower-case form, all different", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = uuid();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(5000);
  });

  it("uuid() strings stay as they were when more are made (no shared buffer behind them)", () => {
    const first = uuid();
    const copy = `${first}`;
    for (let i = 0; i < 100; i++) uuid();
    expect(first).toBe(copy);
  });

  it("pooledRandom() hands out different bytes each call, across pool refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) seen.add(pooledRandom(12).toString("hex"));
    expect(seen.size).toBe(3000);
  });
});

describe("S3 checksums", () => {
  // Bit by bit, as the standard defines it: what zlib's (or the table's) CRC32 must agree with.
  const reference = (data: Uint8Array) => {
    let c = 0xffffffff;
    for (const byte of data) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };

  it("CRC32 and CRC32C give the standard check values; CRC32 agrees with the bitwise definition", () => {
    const check = Buffer.from("123456789");
    expect(digest("CRC32", check).readUInt32BE()).toBe(0xcbf43926);
    expect(digest("CRC32C", check).readUInt32BE()).toBe(0xe3069283);
    for (const size of [0, 1, 7, 1024, 65_537]) {
      const data = Buffer.from(pooledRandom(size));
      expect(digest("CRC32", data).readUInt32BE()).toBe(reference(data));
    }
  });
});
