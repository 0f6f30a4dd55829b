import { describe, expect, it } from "vitest";
import { pooledRandom, uuid } from "../sim/core/random.js";

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
