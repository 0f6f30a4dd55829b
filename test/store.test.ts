import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DataDir, DataDirInvalidError, DataDirLockedError } from "../sim/store.js";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "kmslab-store-"));
  dirs.push(d);
  return d;
}

const state = {
  formatVersion: 1 as const,
  accountId: "123456789012",
  createdAt: "2026-11-28T00:00:00.000Z",
  adminUserName: "admin",
  services: { iam: { x: 1 } },
};

describe("simulator data directory", () => {
  const held: DataDir[] = [];
  afterEach(() => {
    for (const d of held.splice(0)) d.unlock();
  });

  it("saves atomically and loads what it saved", () => {
    const dd = new DataDir(tempDir());
    dd.lock("test");
    held.push(dd);
    dd.save(state);
    expect(new DataDir(dd.dir).load()).toEqual(state);
    expect(existsSync(`${dd.accountPath}.tmp-${process.pid}`)).toBe(false);
  });

  it("refuses a second writer and names the holder", () => {
    const dir = tempDir();
    const first = new DataDir(dir);
    first.lock("kmslab sim serve");
    held.push(first);
    const second = new DataDir(dir);
    expect(() => second.lock("kmslab sim credentials")).toThrow(DataDirLockedError);
    try {
      second.lock("other");
    } catch (err) {
      expect((err as Error).message).toContain(`process ${process.pid}`);
      expect((err as Error).message).toContain("kmslab sim serve");
    }
    first.unlock();
    second.lock("now free");
    held.push(second);
  });

  it("takes over a lock whose process is gone", async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, ["-e", ""]);
    const deadPid = child.pid!;
    await new Promise((r) => child.on("exit", r));
    const dd = new DataDir(dir);
    dd.lock("x");
    dd.unlock();
    writeFileSync(
      dd.lockPath,
      JSON.stringify({
        pid: deadPid,
        host: (await import("node:os")).hostname(),
        command: "dead",
        startedAt: "then",
      }),
    );
    dd.lock("alive");
    held.push(dd);
    expect(dd.readLock()?.pid).toBe(process.pid);
  });

  it("refuses unreadable, foreign and newer files, leaving them as they were", () => {
    const dd = new DataDir(tempDir());
    dd.lock("t");
    held.push(dd);
    for (const [text, pattern] of [
      ["{not json", /not valid JSON/],
      ['{"hello":1}', /not a kmslab simulator account/],
      [JSON.stringify({ ...state, formatVersion: 9 }), /format version 9, written by a newer kmslab/],
    ] as const) {
      writeFileSync(dd.accountPath, text);
      expect(() => dd.load()).toThrow(DataDirInvalidError);
      expect(() => dd.load()).toThrow(pattern);
      expect(readFileSync(dd.accountPath, "utf8")).toBe(text);
    }
  });
});
