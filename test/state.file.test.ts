import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  assertTarget,
  FileStateStore,
  parseState,
  StateCorruptError,
  type StateFile,
  StateTargetMismatchError,
  StateVersionError,
  TOOL_VERSION,
} from "../state/index.js";
import { sampleState } from "./helpers/state.js";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "kmslab-statefile-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Every file of a directory: content digest, mtime and mode; atime excluded (reading sets it). */
function snapshotDir(dir: string): Record<string, { sha256: string; mtimeMs: number; mode: number }> {
  const out: Record<string, { sha256: string; mtimeMs: number; mode: number }> = {};
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    out[name] = {
      sha256: createHash("sha256").update(readFileSync(p)).digest("hex"),
      mtimeMs: st.mtimeMs,
      mode: st.mode & 0o777,
    };
  }
  return out;
}

/** A store with two writes behind it (so a backup exists), the state file then replaced by `text`. */
async function storeHolding(text: string | ((valid: StateFile) => string)): Promise<FileStateStore> {
  const store = new FileStateStore(join(tempDir(), ".kmslab", "state.json"));
  let state = await store.write(sampleState());
  state.stages["create-key"]!.attempts = 2;
  state = await store.write(state);
  writeFileSync(store.path, typeof text === "string" ? text : text(state));
  return store;
}

const modeOf = (p: string) => statSync(p).mode & 0o777;

describe("FileStateStore: bad files give their error and leave every file byte-identical", () => {
  const valid = JSON.stringify(sampleState(), null, 2);
  const cases: {
    name: string;
    text: string | ((s: StateFile) => string);
    error: new (...args: never[]) => Error;
    message: RegExp[];
    field?: string;
  }[] = [
    {
      name: "not JSON",
      text: "this is not { json",
      error: StateCorruptError,
      message: [/is not JSON/],
    },
    {
      name: "truncated",
      text: valid.slice(0, Math.floor(valid.length / 2)),
      error: StateCorruptError,
      message: [/truncated/],
    },
    { name: "empty", text: "", error: StateCorruptError, message: [/empty/] },
    { name: "a JSON array", text: "[]", error: StateCorruptError, message: [/not a JSON object/] },
    {
      name: "missing its format version",
      text: (s) => JSON.stringify({ ...s, formatVersion: undefined }),
      error: StateCorruptError,
      message: [/\$\.formatVersion: missing/],
      field: "$.formatVersion",
    },
    {
      name: "failing the schema",
      text: (s) =>
        JSON.stringify({ ...s, stages: { "create-key": { ...s.stages["create-key"], attempts: -1 } } }),
      error: StateCorruptError,
      message: [/\$\.stages\["create-key"\]\.attempts: /],
      field: '$.stages["create-key"].attempts',
    },
    {
      name: "of an unknown format version (0)",
      text: (s) => JSON.stringify({ ...s, formatVersion: 0 }),
      error: StateVersionError,
      message: [
        /format version 0, written by kmslab 0\.1\.0, which no kmslab writes/,
        /reads format version 1/,
      ],
    },
    {
      name: 'of a wrong-typed format version ("1")',
      text: (s) => JSON.stringify({ ...s, formatVersion: "1" }),
      error: StateVersionError,
      message: [/format version "1"/],
    },
    {
      name: "of a newer format version",
      text: (s) =>
        JSON.stringify({ ...s, formatVersion: 2, tool: { name: "kmslab", version: "9.9.0" }, newField: 1 }),
      error: StateVersionError,
      message: [
        /format version 2, written by kmslab 9\.9\.0/,
        new RegExp(`this kmslab \\(${TOOL_VERSION.replace(/\./g, "\\.")}\\) reads format version 1`),
        /Upgrade kmslab/,
      ],
    },
  ];

  for (const c of cases) {
    it(`a file ${c.name}`, async () => {
      const store = await storeHolding(c.text);
      const dir = dirname(store.path);
      const before = snapshotDir(dir);
      expect(Object.keys(before)).toEqual(["state.json", "state.json.backup"]);

      const err = await store.read().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(c.error);
      for (const m of c.message) expect((err as Error).message).toMatch(m);
      expect((err as Error).message).toContain(store.path);
      expect((err as Error).message).toContain("left as it is");
      if (c.error === StateCorruptError) {
        expect((err as Error).message).toContain(`${store.path}.backup holds the previous version`);
        expect((err as StateCorruptError).field).toBe(c.field);
      }
      // A write does not replace what it cannot read; a locked session leaves nothing behind either.
      await expect(store.write(sampleState())).rejects.toBeInstanceOf(c.error);
      await store.lock("kmslab status");
      await expect(new FileStateStore(store.path).read()).rejects.toBeInstanceOf(c.error);
      await store.unlock();
      expect(snapshotDir(dir)).toEqual(before);
    });
  }

  it("a corrupt file without a backup says there is none", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "state.json"), "{");
    const before = snapshotDir(dir);
    const err = await new FileStateStore(join(dir, "state.json")).read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateCorruptError);
    expect((err as Error).message).toContain("There is no backup");
    expect(snapshotDir(dir)).toEqual(before);
  });

  it("a file of another account or region is read, and assertTarget refuses it naming both", async () => {
    const store = await storeHolding((s) =>
      JSON.stringify({ ...s, target: { kind: "aws", region: "eu-west-1", accountId: "210987654321" } }),
    );
    const dir = dirname(store.path);
    const before = snapshotDir(dir);
    const state = (await store.read())!;
    const here = { accountId: "123456789012", region: "us-east-1" };
    for (const target of [here, { ...here, region: "eu-west-1" }, { ...here, accountId: "210987654321" }]) {
      const err = (() => {
        try {
          assertTarget(state, target, store.path);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(StateTargetMismatchError);
      expect((err as Error).message).toContain("account 210987654321 in eu-west-1");
      expect((err as Error).message).toContain(`account ${target.accountId} in ${target.region}`);
      expect((err as Error).message).toContain(store.path);
    }
    expect(() => assertTarget(state, { accountId: "210987654321", region: "eu-west-1" })).not.toThrow();
    expect(snapshotDir(dir)).toEqual(before);
  });

  it("reading where there is no state creates nothing", async () => {
    const dir = tempDir();
    expect(await new FileStateStore(join(dir, ".kmslab", "state.json")).read()).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("FileStateStore: files on disk", () => {
  it("keeps the previous version as <path>.backup, untouched by writes that change nothing", async () => {
    const store = new FileStateStore(join(tempDir(), "state.json"));
    let state = await store.write(sampleState());
    expect(existsSync(store.backupPath)).toBe(false);
    for (let i = 2; i <= 4; i++) {
      state.stages["create-key"]!.attempts = i;
      state = await store.write(state);
      const backup = parseState(readFileSync(store.backupPath, "utf8"), store.backupPath);
      expect(backup.serial).toBe(i - 1);
      expect(backup.stages["create-key"]!.attempts).toBe(i === 2 ? 1 : i - 1);
    }
    const before = snapshotDir(dirname(store.path));
    await store.write(state);
    expect(snapshotDir(dirname(store.path))).toEqual(before);
  });

  it("writes mode 0600 files in a directory it creates 0700", async () => {
    const root = tempDir();
    const store = new FileStateStore(join(root, "nested", ".kmslab", "state.json"));
    await store.lock("kmslab run");
    expect(modeOf(dirname(store.path))).toBe(0o700);
    expect(modeOf(store.lockPath)).toBe(0o600);
    let state = await store.write(sampleState());
    expect(modeOf(store.path)).toBe(0o600);
    chmodSync(store.path, 0o644); // a learner loosened it: the next write tightens it again
    state.runId = "run-2";
    state = await store.write(state);
    expect(modeOf(store.path)).toBe(0o600);
    expect(modeOf(store.backupPath)).toBe(0o644); // the old file itself, kept as it was
    state.runId = "run-3";
    await store.write(state);
    expect(modeOf(store.backupPath)).toBe(0o600);
    await store.unlock();
    expect(existsSync(store.lockPath)).toBe(false);
  });

  it("ignores a temp file left by a crash between write and rename, and removes it under the lock", async () => {
    const dir = tempDir();
    const store = new FileStateStore(join(dir, "state.json"));
    const state = await store.write(sampleState());
    const next = JSON.stringify({ ...state, serial: 2, runId: "half-written" }, null, 2);
    const deadPid = await exitedPid();
    const stray = `${store.path}.tmp-${deadPid}`;
    writeFileSync(stray, next.slice(0, next.length / 2));
    const live = `${store.path}.tmp-${process.ppid}`; // a live process's write in progress: not ours to remove
    writeFileSync(live, "{");
    const mine = `${store.path}.tmp-${process.pid}`; // an earlier process that had our pid
    writeFileSync(mine, "{");

    expect(await store.read()).toEqual(state);
    await store.lock("kmslab resume");
    expect(existsSync(stray)).toBe(false);
    expect(existsSync(live)).toBe(true);
    const written = await store.write({ ...state, runId: "run-2" });
    expect(written.serial).toBe(2);
    expect(existsSync(mine)).toBe(false);
    expect(await new FileStateStore(store.path).read()).toEqual(written);
    await store.unlock();
    expect(readdirSync(dir).sort()).toEqual([
      "state.json",
      "state.json.backup",
      `state.json.tmp-${process.ppid}`,
    ]);
  });

  // The child takes the lock, writes a first state, then arms a crash at one point of the second
  // write: node:fs is patched and syncBuiltinESMExports() makes lib/files.ts see the patch.
  const crashPoints: [string, string][] = [
    [
      "half-way through writing the temp file",
      `fs.writeSync = (fd, text) => { real.writeSync(fd, text.slice(0, text.length / 2)); die(); };`,
    ],
    ["after the temp file is fsynced, before the backup", `fs.linkSync = () => die();`],
    [
      "after the backup, before the rename",
      `fs.renameSync = (from, to) => (to === path ? die() : real.renameSync(from, to));`,
    ],
  ];
  for (const [when, patch] of crashPoints) {
    it(`recovers from a crash ${when}`, async () => {
      const dir = tempDir();
      const path = join(dir, "state.json");
      const script = `
        const fs = (await import("node:fs")).default;
        const { syncBuiltinESMExports } = await import("node:module");
        const { FileStateStore } = await import(${JSON.stringify(resolve(import.meta.dirname, "../state/store.ts"))});
        const { sampleState } = await import(${JSON.stringify(resolve(import.meta.dirname, "helpers/state.ts"))});
        const path = ${JSON.stringify(path)};
        const store = new FileStateStore(path);
        await store.lock("writer");
        const first = await store.write(sampleState(400));
        const real = { ...fs };
        const die = () => process.kill(process.pid, "SIGKILL");
        ${patch}
        syncBuiltinESMExports();
        await store.write({ ...first, runId: "second" });
        console.log("not crashed");`;
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      const signal = await new Promise((r) => child.once("exit", (_code, sig) => r(sig)));
      expect(signal).toBe("SIGKILL");
      expect(out).toBe("");
      const leftovers = readdirSync(dir).filter((n) => n.includes(".tmp-"));
      expect(leftovers).toEqual([`state.json.tmp-${child.pid}`]);

      const store = new FileStateStore(path);
      const state = (await store.read())!;
      expect(state.serial).toBe(1);
      expect(state.runId).toBe("run-3f9c2a");
      await store.lock("kmslab resume");
      expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
      const second = await store.write({ ...state, runId: "second" });
      expect(second.serial).toBe(2);
      expect(parseState(readFileSync(store.backupPath, "utf8"), store.backupPath).serial).toBe(1);
      await store.unlock();
      expect(readdirSync(dir).sort()).toEqual(["state.json", "state.json.backup"]);
    });
  }

  it("survives SIGKILL at random moments of a write loop: the state and its backup always validate", async () => {
    const path = join(tempDir(), "state.json");
    const script = `
      const { FileStateStore } = await import(${JSON.stringify(resolve(import.meta.dirname, "../state/store.ts"))});
      const { sampleState } = await import(${JSON.stringify(resolve(import.meta.dirname, "helpers/state.ts"))});
      const store = new FileStateStore(${JSON.stringify(path)});
      await store.lock("writer");
      let state = (await store.read()) ?? sampleState(400);
      for (;;) {
        state.stages["create-key"].attempts++;
        state = await store.write(state);
        process.stdout.write(state.serial + "\\n");
      }`;
    let lastSeen = 0;
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      await new Promise<void>((done) => {
        child.stdout.on("data", (d) => {
          out += d;
          if (out.split("\n").length > 3) done();
        });
      });
      await new Promise((r) => setTimeout(r, Math.random() * 40));
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const printed = out.trim().split("\n").map(Number);
      const acked = printed[printed.length - 1]!;

      const store = new FileStateStore(path);
      const state = (await store.read())!;
      // Every acknowledged write is on disk; at most one more got renamed before the kill.
      expect(state.serial).toBeGreaterThanOrEqual(acked);
      expect(state.serial).toBeLessThanOrEqual(acked + 1);
      expect(state.serial).toBeGreaterThan(lastSeen);
      lastSeen = state.serial;
      const backup = parseState(readFileSync(store.backupPath, "utf8"), store.backupPath);
      expect(backup.lineage).toBe(state.lineage);
      expect([state.serial - 1, state.serial]).toContain(backup.serial);
      // The dead writer's lock and temp files go when the next writer takes over.
      await store.lock("next");
      expect(readdirSync(dirname(path)).sort()).toEqual([
        "state.json",
        "state.json.backup",
        "state.json.lock",
      ]);
      await store.unlock();
    }
  });

  it("refuses a write when another process changed the file since this store read it", async () => {
    const path = join(tempDir(), "state.json");
    const mine = new FileStateStore(path);
    const state = await mine.write(sampleState());
    // Another writer (no lock taken: the store still guards against it).
    const theirs = new FileStateStore(path);
    await theirs.write({ ...(await theirs.read())!, runId: "theirs" });
    await expect(mine.write({ ...state, runId: "mine" })).rejects.toThrow(
      /based on serial 1, but the file is at serial 2/,
    );
    // A new lineage cannot take a path over either.
    await expect(mine.write({ ...sampleState(), lineage: randomUUID() })).rejects.toThrow(/different lab/);
    expect((await mine.read())!.runId).toBe("theirs");
  });

  it("writes into an existing directory without changing its mode", async () => {
    const dir = join(tempDir(), "shared");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    await new FileStateStore(join(dir, "state.json")).write(sampleState());
    expect(modeOf(dir)).toBe(0o755);
  });
});

/** The pid of a process that has just ended: a lock or temp file naming it is stale. */
async function exitedPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((r) => child.on("exit", r));
  return child.pid!;
}
