import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UnsafeDirectoryError } from "../lib/files.js";
import { ownIdentity } from "../lib/process.js";
import { Simulator } from "../sim/simulator.js";
import { DataDir } from "../sim/store.js";
import { FileStateStore, parseState, StateLockedError } from "../state/index.js";
import { BIN, runCli, tempDir } from "./helpers/cli.js";
import { sampleState } from "./helpers/state.js";

/** The pid of a process that has just ended. */
async function exitedPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((r) => child.on("exit", r));
  return child.pid!;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

/** A process that runs until the test ends. */
async function liveProcess(): Promise<number> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  children.push(child);
  await new Promise((r) => child.once("spawn", r));
  return child.pid!;
}

describe("temp files a dead writer left", () => {
  it("are removed from the data directory and beside the state file by the next process to lock them", async () => {
    const cwd = tempDir("kmslab-temps-");
    const dir = join(cwd, ".kmslab", "sim");
    Simulator.open(dir).close();
    const dead = await exitedPid();
    const stale = [
      join(dir, `account.json.tmp-${dead}`),
      join(dir, `lock.tmp-${dead}`),
      join(dir, "s3", `master.key.tmp-${dead}`),
      join(cwd, ".kmslab", `state.json.lock.tmp-${dead}`),
      join(cwd, ".kmslab", `state.json.tmp-${dead}`),
    ];
    mkdirSync(join(dir, "s3"), { recursive: true });
    for (const f of stale) writeFileSync(f, '{"secretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}');
    // Its pid now belongs to a process that started after the file was last written: its writer is gone.
    const reused = await liveProcess();
    const reusedFile = join(dir, `account.json.tmp-${reused}`);
    writeFileSync(reusedFile, "{");
    utimesSync(reusedFile, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    // A live writer's own temp file (written after it started) is its own: kept.
    const writer = await liveProcess();
    const live = join(dir, `account.json.tmp-${writer}`);
    writeFileSync(live, "{");

    // Another program's temp file in the same directory is not ours to remove.
    const theirs = join(cwd, ".kmslab", `notes.txt.tmp-${dead}`);
    writeFileSync(theirs, "theirs");

    Simulator.open(dir).close();
    const store = new FileStateStore(join(cwd, ".kmslab", "state.json"));
    await store.lock("kmslab run");
    await store.unlock();
    for (const f of [...stale, reusedFile]) expect(existsSync(f), f).toBe(false);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(theirs)).toBe(true);
  });
});

describe("locks", () => {
  const me = ownIdentity();
  const lockOf = (extra: Record<string, unknown>) =>
    JSON.stringify({
      id: "7c1e2d7e-0000-4000-8000-000000000001",
      pid: 4_000_000,
      host: "a-container",
      command: "kmslab run",
      startedAt: "2026-11-28T10:00:00.000Z",
      ...me,
      ...extra,
    });

  it("are taken over when their holder is certainly gone, whatever its hostname", async () => {
    const dead = await exitedPid();
    const reused = await liveProcess();
    const cases: [string, string][] = [
      ["a dead pid of this boot and pid namespace, another hostname", lockOf({ pid: dead })],
      ["a pid now used by a process that started at another time", lockOf({ pid: reused, processStart: 1 })],
      ["another boot of this machine", lockOf({ bootId: "00000000-0000-4000-8000-000000000000" })],
    ];
    for (const [name, text] of cases) {
      const path = join(tempDir("kmslab-lock-"), "state.json");
      writeFileSync(`${path}.lock`, text);
      const store = new FileStateStore(path);
      await expect(store.lock("kmslab run"), name).resolves.toBeUndefined();
      expect(store.readLock()?.pid, name).toBe(process.pid);
      await store.unlock();
      const data = new DataDir(tempDir("kmslab-lock-"));
      writeFileSync(data.lockPath, text);
      expect(() => data.lock("kmslab sim serve"), name).not.toThrow();
      data.unlock();
    }
  });

  it("that cannot be checked from here are refused with the command that takes them over, by their id", async () => {
    const cwd = tempDir("kmslab-unlock-");
    mkdirSync(join(cwd, ".kmslab"), { mode: 0o700 });
    const statePath = join(cwd, ".kmslab", "state.json");
    // Another container of this machine: the same boot, another pid namespace.
    const text = lockOf({ pidNamespace: "pid:[4026532999]", pid: process.pid });
    writeFileSync(`${statePath}.lock`, text);
    const id = JSON.parse(text).id as string;

    const refused = await runCli(["run"], { cwd, env: { KMSLAB_SIM_PROFILE: "instant" } });
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toContain(`is in use by process ${process.pid} on a-container (kmslab run`);
    expect(refused.stderr).toContain(`take the lock over with: kmslab unlock ${id} --state ${statePath}`);

    const wrong = await runCli(["unlock", "7c1e2d7e-0000-4000-8000-000000000002"], { cwd });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`is locked with id ${id}`);
    const unconfirmed = await runCli(["unlock", id], { cwd });
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain("needs --yes");
    expect(readFileSync(`${statePath}.lock`, "utf8")).toBe(text);

    const unlocked = await runCli(["unlock", id, "--yes"], { cwd });
    expect(unlocked.code, unlocked.stderr).toBe(0);
    expect(existsSync(`${statePath}.lock`)).toBe(false);
    const again = await runCli(["unlock", id, "--yes"], { cwd });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("nothing is locked");
  });

  it("held by a running process are not removed by unlock", async () => {
    const cwd = tempDir("kmslab-unlock-live-");
    const store = new FileStateStore(join(cwd, ".kmslab", "state.json"));
    await store.lock("kmslab run");
    try {
      const id = store.readLock()!.id!;
      await expect(new FileStateStore(store.path).lock("second")).rejects.toThrow(StateLockedError);
      await expect(new FileStateStore(store.path).lock("second")).rejects.toThrow(/Wait for it to finish/);
      const res = await runCli(["unlock", id, "--yes"], { cwd });
      expect(res.code).toBe(3);
      expect(res.stderr).toContain(`which is running: stop it (kill ${process.pid})`);
      expect(store.readLock()?.id).toBe(id);
    } finally {
      await store.unlock();
    }
  });

  it("written by an older kmslab (no identity) keep the hostname rule, and name an id to unlock them by", async () => {
    const path = join(tempDir("kmslab-lock-legacy-"), "state.json");
    const legacy = { pid: process.pid, host: "elsewhere", command: "kmslab run", startedAt: "then" };
    writeFileSync(`${path}.lock`, JSON.stringify(legacy));
    const err = await new FileStateStore(path).lock("x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateLockedError);
    const id = /kmslab unlock (legacy-[0-9a-f]{12})/.exec((err as Error).message)?.[1];
    expect(id).toBeDefined();
    expect(new FileStateStore(path).forceUnlock(id!)).toBe(true);
    writeFileSync(`${path}.lock`, JSON.stringify({ ...legacy, host: hostname(), pid: await exitedPid() }));
    await expect(new FileStateStore(path).lock("x")).resolves.toBeUndefined();
  });
});

describe("state files that cannot be used as they are", () => {
  it("an unreadable state file exits 5 (permission denied), changing nothing", async () => {
    const cwd = tempDir("kmslab-eacces-");
    const dir = join(cwd, ".kmslab");
    const store = new FileStateStore(join(dir, "state.json"));
    await store.write(sampleState());
    const before = readFileSync(store.path, "utf8");
    // As root, permissions do not stop a read: run the CLI as nobody instead (the directory lets it in).
    const asRoot = process.getuid?.() === 0;
    chmodSync(cwd, 0o755);
    chmodSync(dir, asRoot ? 0o755 : 0o700);
    if (!asRoot) chmodSync(store.path, 0o000);
    // The simulator's data directory is the user's own: the state file is what it cannot use.
    const simData = join(cwd, "sim");
    mkdirSync(simData, { mode: 0o700 });
    if (asRoot) chownSync(simData, 65534, 65534);
    for (const command of ["status", "run"]) {
      const res = await new Promise<{ code: number | null; stderr: string }>((done) => {
        const child = spawn(process.execPath, [BIN, command, "--state", store.path], {
          cwd,
          env: { ...process.env, KMSLAB_SIM_DATA: simData, KMSLAB_SIM_PROFILE: "instant", HOME: cwd },
          stdio: ["ignore", "ignore", "pipe"],
          ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
        });
        let stderr = "";
        child.stderr!.on("data", (d) => (stderr += d));
        child.on("close", (code) => done({ code, stderr }));
      });
      expect(res.code, `${command}: ${res.stderr}`).toBe(5);
      expect(res.stderr, command).toMatch(/permission denied\. Nothing was changed/);
    }
    if (!asRoot) chmodSync(store.path, 0o600);
    expect(readFileSync(store.path, "utf8")).toBe(before);
  });

  it("a symlinked state file stays a link: the write goes to its target, the backup beside the target", async () => {
    const home = tempDir("kmslab-symlink-");
    mkdirSync(join(home, "shared"), { mode: 0o700 });
    mkdirSync(join(home, ".kmslab"), { mode: 0o700 });
    const target = join(home, "shared", "lab.json");
    const link = join(home, ".kmslab", "state.json");
    symlinkSync(target, link);
    const store = new FileStateStore(link);
    await store.lock("kmslab run");
    const first = await store.write(sampleState());
    await store.write({ ...first, runId: "second" });
    await store.unlock();
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(target);
    expect(parseState(readFileSync(target, "utf8"), target).runId).toBe("second");
    expect(parseState(readFileSync(`${target}.backup`, "utf8"), "backup").serial).toBe(1);
    expect(readdirSync(join(home, ".kmslab"))).toEqual(["state.json"]);
    expect((await new FileStateStore(link).read())?.runId).toBe("second");
  });

  it("a directory any user may write in (without the sticky bit) is refused with exit 5 and how to fix it", async () => {
    const cwd = tempDir("kmslab-worldwritable-");
    const dir = join(cwd, ".kmslab");
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    await expect(new FileStateStore(join(dir, "state.json")).lock("x")).rejects.toThrow(UnsafeDirectoryError);
    expect(() => new DataDir(dir).lock("x")).toThrow(UnsafeDirectoryError);
    const res = await runCli(["run"], {
      cwd,
      env: { KMSLAB_SIM_PROFILE: "instant", KMSLAB_SIM_DATA: join(cwd, "sim") },
    });
    expect(res.code, res.stderr).toBe(5);
    expect(res.stderr).toContain(
      `refusing to use ${dir}: any user of this machine may write in it (mode 0777)`,
    );
    expect(res.stderr).toContain(`chmod 700 ${dir}`);
    expect(readdirSync(dir)).toEqual([]);
    // With the sticky bit (as /tmp has) only a file's owner may rename or remove it: accepted.
    chmodSync(dir, 0o1777);
    const store = new FileStateStore(join(dir, "state.json"));
    await expect(store.lock("x")).resolves.toBeUndefined();
    await store.unlock();
  });
});
