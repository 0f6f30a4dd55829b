import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  FileStateStore,
  MemoryStateStore,
  REDACTED,
  redact,
  rememberSecret,
  StateConflictError,
  StateInvalidError,
  StateLockedError,
  StateSecretError,
  type StateStore,
} from "../state/index.js";
import { sampleState } from "./helpers/state.js";

/**
 * One contract for every StateStore (Terraform's statemgr TestFull): what the engine relies on holds
 * for the file store and the memory store alike.
 */

/** Shaped as AWS documents its example secret access key; only a held one is refused by value. */
const HELD_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "kmslab-state-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Subject {
  store: StateStore;
  /** A second handle on the same state (another process's view, for the file store). */
  another(): StateStore;
}

const stores: [string, () => Subject][] = [
  [
    "FileStateStore",
    () => {
      const path = join(tempDir(), ".kmslab", "state.json");
      return { store: new FileStateStore(path), another: () => new FileStateStore(path) };
    },
  ],
  [
    "MemoryStateStore",
    () => {
      const store = new MemoryStateStore();
      return { store, another: () => store };
    },
  ],
];

describe.each(stores)("%s contract", (_name, make) => {
  const locked: StateStore[] = [];
  afterEach(async () => {
    for (const s of locked.splice(0)) await s.unlock();
  });

  it("reads nothing before the first write", async () => {
    expect(await make().store.read()).toBeUndefined();
  });

  it("creates, then reads back exactly what it stored", async () => {
    const { store, another } = make();
    const initial = sampleState();
    const written = await store.write(initial);
    expect(written.serial).toBe(1);
    expect(written.lineage).toBe(initial.lineage);
    expect(Date.parse(written.updatedAt)).toBeGreaterThanOrEqual(Date.parse(initial.createdAt));
    expect(await store.read()).toEqual(written);
    expect(await another().read()).toEqual(written);
  });

  it("increments the serial on every change, keeps the lineage, and skips writes that change nothing", async () => {
    const { store } = make();
    let state = await store.write(sampleState());
    const lineage = state.lineage;
    for (let i = 2; i <= 5; i++) {
      state.stages["create-key"]!.attempts = i;
      state = await store.write(state);
      expect(state.serial).toBe(i);
      expect(state.lineage).toBe(lineage);
    }
    const again = await store.write(state);
    expect(again.serial).toBe(5);
    expect(again.updatedAt).toBe(state.updatedAt);
    expect((await store.read())!.stages["create-key"]!.attempts).toBe(5);
  });

  it("hands out copies: mutating what read or write returned changes nothing stored", async () => {
    const { store } = make();
    const written = await store.write(sampleState());
    const read = (await store.read())!;
    read.serial = 99;
    read.stages["create-key"]!.status = "failed";
    written.runId = "changed";
    const fresh = (await store.read())!;
    expect(fresh.serial).toBe(1);
    expect(fresh.stages["create-key"]!.status).toBe("passed");
    expect(fresh.runId).toBe("run-3f9c2a");
  });

  it("refuses a state of another lineage", async () => {
    const { store } = make();
    const state = await store.write(sampleState());
    const other = { ...state, lineage: randomUUID() };
    const err = await store.write(other).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateConflictError);
    expect(err).toMatchObject({ kind: "lineage", stored: state.lineage, given: other.lineage });
    expect((await store.read())!.lineage).toBe(state.lineage);
  });

  it("refuses a write based on a stale read (optimistic concurrency)", async () => {
    const { store, another } = make();
    await store.write(sampleState());
    const mine = (await store.read())!;
    const theirs = (await another().read())!;
    theirs.stages["create-key"]!.attempts = 7;
    const second = another();
    const stored = await second.write(theirs);
    expect(stored.serial).toBe(2);
    mine.stages["create-key"]!.attempts = 3;
    const err = await store.write(mine).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateConflictError);
    expect(err).toMatchObject({ kind: "serial", stored: 2, given: 1 });
    expect((err as Error).message).toContain("Read it again");
    expect((await store.read())!.stages["create-key"]!.attempts).toBe(7);
  });

  it("lets one holder at a time take the lock, naming the holder", async () => {
    const { store, another } = make();
    await store.lock("kmslab run");
    locked.push(store);
    const err = await another()
      .lock("kmslab teardown")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateLockedError);
    const holder = (err as StateLockedError).holder;
    expect(holder).toMatchObject({ pid: process.pid, host: hostname(), command: "kmslab run" });
    expect(Date.parse(holder.startedAt)).not.toBeNaN();
    expect((err as Error).message).toContain(`process ${process.pid}`);
    expect((err as Error).message).toContain("kmslab run");
    await store.unlock();
    const next = another();
    await next.lock("kmslab teardown");
    locked.push(next);
  });

  it("refuses secrets, names where they are, and writes nothing", async () => {
    const { store } = make();
    const base = await store.write(sampleState());
    const cases: [(s: typeof base) => void, string][] = [
      [
        (s) => {
          s.journal[0]!.result = { Credentials: { AccessKeyId: "ASIAEXAMPLE", Expiration: "later" } };
        },
        "$.journal[0].result.Credentials",
      ],
      [
        (s) => {
          s.stages["create-key"]!.outputs.dataKey = { Plaintext: "c2VjcmV0", KeyId: "k" };
        },
        '$.stages["create-key"].outputs.dataKey.Plaintext',
      ],
      [
        (s) => {
          s.params.secretAccessKey = "x";
        },
        "$.params.secretAccessKey",
      ],
      [
        (s) => {
          s.snapshot = { context: { env: { AWS_SESSION_TOKEN: "t" } } };
        },
        "$.snapshot.context.env.AWS_SESSION_TOKEN",
      ],
      [
        (s) => {
          // A credential this process holds, wherever it is (here inside a longer text).
          rememberSecret(HELD_SECRET);
          s.journal[1]!.input = { note: `the key is ${HELD_SECRET}` };
        },
        "$.journal[1].input.note",
      ],
      [
        (s) => {
          s.stages["trail-to-bucket"]!.evidence.push(`token IQoJb3JpZ2luX2VjE${"A".repeat(80)}`);
        },
        '$.stages["trail-to-bucket"].evidence[0]',
      ],
    ];
    for (const [plant, path] of cases) {
      const bad = structuredClone(base);
      plant(bad);
      const err = await store.write(bad).catch((e: unknown) => e);
      expect(err, path).toBeInstanceOf(StateSecretError);
      expect((err as StateSecretError).paths).toContain(path);
      expect((err as Error).message).toContain(path);
      expect(await store.read()).toEqual(base);
      // Redacted, the same state is accepted and the secret never reaches the store.
      const clean = await store.write({ ...redact(bad), serial: (await store.read())!.serial });
      expect(JSON.stringify(clean)).toContain(REDACTED);
      await store.write({ ...base, serial: clean.serial }).then((s) => Object.assign(base, s));
    }
  });

  it("keeps apart what is not a secret: hex digests, ids, empty secret fields, names shaped like keys", async () => {
    const { store } = make();
    const state = sampleState();
    state.stages["create-key"]!.outputs = {
      sha1: "da39a3ee5e6b4b0d3255bfef95601890afd80709",
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      SessionToken: null,
      // 40 characters of base64's alphabet in both cases, as a secret access key is: a name, not one.
      alias: "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",
    };
    expect((await store.write(state)).serial).toBe(1);
  });

  it("refuses a state that fails the schema, naming the field", async () => {
    const { store } = make();
    const state = sampleState();
    state.stages["create-key"]!.outputs.blob = new Uint8Array([1, 2]);
    const err = await store.write(state).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateInvalidError);
    expect((err as StateInvalidError).field).toBe('$.stages["create-key"].outputs.blob');
    const bad = {
      ...sampleState(),
      stages: { x: { status: "done", attempts: 0, outputs: {}, evidence: [] } },
    };
    await expect(store.write(bad as never)).rejects.toThrow(/\$\.stages\.x\.status/);
    expect(await store.read()).toBeUndefined();
  });
});

describe("FileStateStore lock across processes", () => {
  const STORE = resolve(import.meta.dirname, "../state/store.ts");
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill("SIGKILL");
  });

  /** A `node -e` child that takes the lock with the real store and keeps it until killed. */
  async function holdInChild(path: string, command: string): Promise<ChildProcess> {
    const script = `
      const { FileStateStore } = await import(${JSON.stringify(STORE)});
      await new FileStateStore(${JSON.stringify(path)}).lock(${JSON.stringify(command)});
      console.log("locked");
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    await new Promise<void>((done, fail) => {
      child.stdout!.on("data", (d) => String(d).includes("locked") && done());
      child.on("exit", (code) => fail(new Error(`child exited ${code}: ${stderr}`)));
    });
    return child;
  }

  it("refuses while another process holds it, names that process, and takes the lock over once it is killed", async () => {
    const path = join(tempDir(), "state.json");
    const child = await holdInChild(path, "kmslab run --target sim");
    const store = new FileStateStore(path);
    const err = await store.lock("kmslab status").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateLockedError);
    expect((err as StateLockedError).holder).toMatchObject({
      pid: child.pid,
      host: hostname(),
      command: "kmslab run --target sim",
    });
    expect((err as Error).message).toContain(`process ${child.pid} on ${hostname()}`);
    expect((err as Error).message).toContain("kmslab run --target sim");
    expect(store.holder()?.pid).toBe(child.pid);

    // SIGKILL leaves the lock file behind; its process is gone, so the lock is stale.
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    expect(JSON.parse(readFileSync(store.lockPath, "utf8")).pid).toBe(child.pid);
    expect(store.holder()).toBeUndefined();
    await store.lock("kmslab resume");
    expect(JSON.parse(readFileSync(store.lockPath, "utf8"))).toMatchObject({
      pid: process.pid,
      command: "kmslab resume",
    });
    await store.unlock();
  });

  it("respects a lock held on another host (its process cannot be checked from here)", async () => {
    const path = join(tempDir(), "state.json");
    const lock = {
      pid: 1,
      host: "ci-runner-7",
      command: "kmslab run",
      startedAt: "2026-11-28T10:00:00.000Z",
    };
    writeFileSync(`${path}.lock`, JSON.stringify(lock));
    const err = await new FileStateStore(path).lock("kmslab run").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateLockedError);
    expect((err as Error).message).toContain(
      "process 1 on ci-runner-7 (kmslab run, since 2026-11-28T10:00:00.000Z)",
    );
  });
});
