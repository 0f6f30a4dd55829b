import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  KMSClient,
  ListKeysCommand,
} from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { Simulator } from "../sim/simulator.js";
import { parseState } from "../state/index.js";
import { runCli, startServe, tempDir } from "./helpers/cli.js";

/**
 * A full disk, injected (KMSLAB_TEST_DISK_FULL=n+: the n-th write of the process and every later
 * one comes up short, then fails with ENOSPC, as on a disk that fills): whatever write it hits, a
 * command exits 6 saying the disk is full, every file is as it was or complete and valid, nothing
 * is left half-written, and once there is room again the lab carries on to 100 points.
 */

const instant = { KMSLAB_SIM_PROFILE: "instant" };
const args = ["--poll-interval", "1", "--trail-wait", "60", "--propagation-wait", "10"];
/** Where the fault lands: each write of a command's first ones, then further and further in. */
const POINTS = [1, 2, 3, 4, 6, 9, 14, 22, 35, 55, 90, 150, 250, 400];

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).map((n) => join(dir, n));
}

/** Every file the lab keeps is whole: no temp file, no lock, and the state, its backup, gradings and the account all read back. */
async function assertWhole(cwd: string, context: string): Promise<void> {
  const root = join(cwd, ".kmslab");
  const files = filesUnder(root);
  expect(
    files.filter((f) => /\.tmp-\d+$/.test(f)),
    `${context}: temp files`,
  ).toEqual([]);
  expect(
    files.filter((f) => f.endsWith(".lock") || f.endsWith("/sim/lock")),
    `${context}: locks`,
  ).toEqual([]);
  for (const name of ["state.json", "state.json.backup"]) {
    const path = join(root, name);
    if (existsSync(path)) expect(() => parseState(readFileSync(path, "utf8"), path), context).not.toThrow();
  }
  for (const f of files.filter((f) => /grade-.*\.json$/.test(f)))
    expect(() => JSON.parse(readFileSync(f, "utf8")), `${context}: ${f}`).not.toThrow();
  if (!existsSync(join(root, "sim", "account.json"))) return;
  // The account opens, and every key and object body it records is there and usable.
  const sim = Simulator.open(join(root, "sim"));
  try {
    const kms = new KMSClient(sim.clientConfig());
    for (const k of (await kms.send(new ListKeysCommand({}))).Keys ?? []) {
      const meta = sim.account.kms.state.keys[k.KeyId!];
      if (meta?.state !== "Enabled") continue;
      const { CiphertextBlob } = await kms.send(
        new EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from("still here") }),
      );
      const { Plaintext } = await kms.send(new DecryptCommand({ CiphertextBlob }));
      expect(Buffer.from(Plaintext!).toString(), context).toBe("still here");
    }
    const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
    for (const b of (await s3.send(new ListBucketsCommand({}))).Buckets ?? []) {
      const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: b.Name }));
      for (const v of versions.Versions ?? []) {
        const got = await s3.send(
          new GetObjectCommand({ Bucket: b.Name, Key: v.Key, VersionId: v.VersionId }),
        );
        expect((await got.Body!.transformToByteArray()).length, `${context}: ${b.Name}/${v.Key}`).toBe(
          v.Size,
        );
      }
    }
  } finally {
    sim.close();
  }
}

interface Outcome {
  i: number;
  ok: boolean;
  status?: number | undefined;
}

/** Runs `kmslab <command>` with the disk full from each point on, in turn; returns how many it stopped. */
async function fillAtEachPoint(cwd: string, command: string[]): Promise<number> {
  let stopped = 0;
  for (const n of POINTS) {
    const res = await runCli(command, { cwd, env: { ...instant, KMSLAB_TEST_DISK_FULL: `${n}+` } });
    const context = `${command[0]} with the disk full from write ${n}`;
    await assertWhole(cwd, context);
    if (res.code === 0) return stopped; // it needed fewer writes than that
    stopped++;
    expect(res.code, `${context}: ${res.stderr}`).toBe(6);
    expect(res.stderr, context).toMatch(/the disk is full \(ENOSPC\)\. What it held before is untouched/);
  }
  return stopped;
}

describe("a full disk at every point of a command", () => {
  it("run, grade and teardown exit 6 saying so, leave every file whole, and carry on once there is room", async () => {
    const cwd = tempDir("kmslab-diskfull-");
    expect(await fillAtEachPoint(cwd, ["run", ...args])).toBeGreaterThan(8);
    const resumed = await runCli(["run", ...args], { cwd, env: instant });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain("100/100 points");

    expect(await fillAtEachPoint(cwd, ["grade"])).toBeGreaterThan(2);
    const graded = await runCli(["grade", "--json"], { cwd, env: instant });
    expect(graded.code, graded.stderr).toBe(0);
    expect(JSON.parse(graded.stdout).score).toBe(100);

    expect(await fillAtEachPoint(cwd, ["teardown", "--yes"])).toBeGreaterThan(4);
    const torn = await runCli(["teardown", "--yes", "--json"], { cwd, env: instant });
    expect(torn.code, torn.stderr).toBe(0);
    expect(JSON.parse(torn.stdout).remaining).toEqual([]);
    await assertWhole(cwd, "after the teardown");
  }, 300_000);
});

describe("kmslab sim serve on a disk that fills under load", () => {
  for (const mode of ["60", "60+"]) {
    it(`answers each call either done or failed, never both (the disk full ${mode.endsWith("+") ? "from" : "at"} write 60), and keeps the account`, async () => {
      const cwd = tempDir("kmslab-diskfull-serve-");
      const server = await startServe([], { cwd, env: { ...instant, KMSLAB_TEST_DISK_FULL: mode } });
      const config = {
        region: "us-east-1",
        endpoint: server.endpoint,
        credentials: {
          accessKeyId: server.env.AWS_ACCESS_KEY_ID!,
          secretAccessKey: server.env.AWS_SECRET_ACCESS_KEY!,
        },
        maxAttempts: 1,
      };
      const kms = new KMSClient(config);
      const s3 = new S3Client({ ...config, forcePathStyle: true });
      // The bucket first, then keys and objects all at once.
      await s3.send(new CreateBucketCommand({ Bucket: "load" }));
      const outcome = (i: number) => ({
        done: (): Outcome => ({ i, ok: true }),
        failed: (err: { $metadata?: { httpStatusCode?: number } }): Outcome => ({
          i,
          ok: false,
          status: err.$metadata?.httpStatusCode,
        }),
      });
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0
            ? kms.send(new CreateKeyCommand({ Description: `key-${i}` }))
            : s3.send(new PutObjectCommand({ Bucket: "load", Key: `object-${i}`, Body: `body ${i}` }))
          ).then(outcome(i).done, outcome(i).failed),
        ),
      );
      const failed = outcomes.filter((o) => !o.ok);
      expect(failed.length).toBeGreaterThan(0);
      expect(new Set(failed.map((o) => o.status))).toEqual(new Set([500]));
      const code = await server.stop();
      expect(server.stderr()).toMatch(/the disk is full \(ENOSPC\)/);
      // Still unable to save when stopped: it says so in its exit code.
      expect(code).toBe(mode.endsWith("+") ? 6 : 0);
      kms.destroy();
      s3.destroy();

      const dir = join(cwd, ".kmslab", "sim");
      expect(filesUnder(dir).filter((f) => /\.tmp-\d+$/.test(f))).toEqual([]);
      const sim = Simulator.open(dir);
      try {
        // The account and its admin key survived; what was answered done is there, and only that.
        expect(sim.credentials().accessKeyId).toBe(server.env.AWS_ACCESS_KEY_ID);
        const keys = Object.values(sim.account.kms.state.keys).map((k) => k.description);
        const local = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
        const listed = await local.send(new ListObjectVersionsCommand({ Bucket: "load" }));
        const objects = (listed.Versions ?? []).map((v) => v.Key);
        for (const o of outcomes) {
          const name = o.i % 2 === 0 ? `key-${o.i}` : `object-${o.i}`;
          expect(
            o.i % 2 === 0 ? keys.includes(name) : objects.includes(name),
            `${name}: answered ${o.ok}`,
          ).toBe(o.ok);
        }
        for (const v of listed.Versions ?? []) {
          const got = await local.send(new GetObjectCommand({ Bucket: "load", Key: v.Key }));
          expect(await got.Body!.transformToString()).toBe(`body ${v.Key!.slice("object-".length)}`);
        }
        // Object bodies on disk are those of the objects, no more (a rolled-back upload leaves none).
        const bodies = readdirSync(join(dir, "s3", "objects"));
        expect(bodies.length).toBe(objects.length);
        // And it works on: a new key and object.
        await new KMSClient(sim.clientConfig()).send(new CreateKeyCommand({ Description: "after" }));
        await local.send(new PutObjectCommand({ Bucket: "load", Key: "after", Body: "after" }));
        expect(statSync(join(dir, "account.json")).size).toBeGreaterThan(1000);
      } finally {
        sim.close();
      }
    }, 60_000);
  }
});

/**
 * The same on a real file system that fills: a 2 MB tmpfs, filled to leave a little room, then
 * freed (opt-in, as it mounts one: KMSLAB_TMPFS_TEST=1, as root). The CLI's output goes elsewhere.
 */
describe.skipIf(!process.env.KMSLAB_TMPFS_TEST)(
  "on a real 2 MB tmpfs (opt-in: KMSLAB_TMPFS_TEST=1, as root)",
  () => {
    it("at each level of free space, the run exits 6 or completes, every file is whole, and it resumes to 100", async () => {
      const mount = tempDir("kmslab-tmpfs-");
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mount]);
      try {
        for (const freeKiB of [2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192]) {
          for (const name of readdirSync(mount)) rmSync(join(mount, name), { recursive: true, force: true });
          const cwd = join(mount, "lab");
          mkdirSync(cwd);
          const avail = Number(
            execFileSync("df", ["--output=avail", "-k", mount], { encoding: "utf8" }).split("\n")[1],
          );
          if (avail > freeKiB) writeFileSync(join(mount, "filler"), Buffer.alloc((avail - freeKiB) * 1024));
          const res = await runCli(["run", ...args], { cwd, env: instant });
          const context = `${freeKiB} KiB free`;
          expect([0, 6], `${context}: ${res.stderr}`).toContain(res.code);
          if (res.code === 6) expect(res.stderr, context).toMatch(/the disk is full/);
          rmSync(join(mount, "filler"), { force: true });
          await assertWhole(cwd, context);
          const resumed = await runCli(["run", ...args], { cwd, env: instant });
          expect(resumed.code, `${context}, resumed: ${resumed.stderr}`).toBe(0);
          expect(resumed.stdout).toContain("100/100 points");
        }
      } finally {
        execFileSync("umount", [mount]);
      }
    }, 600_000);
  },
);
