import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { afterEach, describe, expect, it } from "vitest";
import { blobStore, open, seal } from "../sim/services/s3/blobs.js";
import { Simulator } from "../sim/simulator.js";

/**
 * Where object bodies live (blobs.ts): random-named files under `<dataDir>/s3/objects/`, written
 * before the state and removed after it; no key can name a path, bodies are encrypted at rest, and
 * everything survives a restart.
 */

const BUCKET = "store-test-bucket";
const HOSTILE_KEYS = [
  "../../x",
  "../../../../../../tmp/escaped",
  "/etc/passwd",
  "a\u0000b",
  "k".repeat(1024),
  `${"é".repeat(512)}`, // 1,024 bytes of UTF-8
  "ключ/日本語/🙂 with spaces+plus",
  "..",
  ".",
  "__proto__",
  "constructor",
];

let root: string | undefined;
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

function files(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(path));
    else out.push(path);
  }
  return out;
}

const client = (sim: Simulator) => new S3Client({ ...sim.clientConfig(), forcePathStyle: true });

describe("object bodies in the data directory", () => {
  it("hostile keys are stored and read back, nothing is written outside the data directory, and all survives a restart", async () => {
    root = mkdtempSync(join(tmpdir(), "kmslab-s3-store-"));
    const dir = join(root, "data");
    let sim = Simulator.open(dir);
    let s3 = client(sim);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const kms = new KMSClient(sim.clientConfig());
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    await kms.send(new CreateAliasCommand({ AliasName: "alias/store", TargetKeyId: key.KeyId! }));

    const bodyOf = (k: string) => `body of ${JSON.stringify(k)} — plaintext marker 7f3a`;
    for (const k of HOSTILE_KEYS)
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: k, Body: bodyOf(k) }));
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "kms/object",
        Body: bodyOf("kms"),
        ServerSideEncryption: "aws:kms",
        SSEKMSKeyId: "alias/store",
      }),
    );
    for (const k of HOSTILE_KEYS) {
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: k }));
      expect(await got.Body!.transformToString()).toBe(bodyOf(k));
    }

    // Only the data directory was written to; bodies are files named by 32 random hex digits.
    expect(readdirSync(root)).toEqual(["data"]);
    const all = files(dir).map((f) => relative(dir, f));
    const blobs = all.filter((f) => f.startsWith(join("s3", "objects")));
    expect(blobs).toHaveLength(HOSTILE_KEYS.length + 1);
    for (const b of blobs) expect(b).toMatch(/^s3\/objects\/[0-9a-f]{32}$/);
    expect(statSync(join(dir, "s3", "master.key")).mode & 0o777).toBe(0o600);

    // At rest: no plaintext in the blobs, no body and no master key in account.json.
    for (const b of blobs) expect(readFileSync(join(dir, b)).includes("plaintext marker")).toBe(false);
    const state = readFileSync(join(dir, "account.json"), "utf8");
    expect(state).not.toContain("plaintext marker");
    expect(state).not.toContain(readFileSync(join(dir, "s3", "master.key"), "utf8").trim());

    sim.close();
    sim = Simulator.open(dir);
    s3 = client(sim);
    for (const k of [...HOSTILE_KEYS]) {
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: k }));
      expect(await got.Body!.transformToString()).toBe(bodyOf(k));
    }
    const kmsObject = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "kms/object" }));
    expect(kmsObject.SSEKMSKeyId).toBe(key.Arn);
    expect(await kmsObject.Body!.transformToString()).toBe(bodyOf("kms"));
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, EncodingType: "url" }));
    expect(listed.KeyCount).toBe(HOSTILE_KEYS.length + 1);
    sim.close();
  });

  it("a replaced or deleted object's body file is removed once the state is saved", async () => {
    root = mkdtempSync(join(tmpdir(), "kmslab-s3-store-"));
    const dir = join(root, "data");
    const sim = Simulator.open(dir);
    const s3 = client(sim);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const objects = () => readdirSync(join(dir, "s3", "objects"));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "k", Body: "one" }));
    const first = objects();
    expect(first).toHaveLength(1);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "k", Body: "two" }));
    const second = objects();
    expect(second).toHaveLength(1);
    expect(second[0]).not.toBe(first[0]);
    const state = JSON.parse(readFileSync(join(dir, "account.json"), "utf8"));
    expect(state.services.s3.buckets[BUCKET].objects.k[0].blobId).toBe(second[0]);
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "k" }));
    expect(objects()).toEqual([]);
    sim.close();
  });

  it("an in-memory account keeps bodies in memory", async () => {
    const sim = Simulator.inMemory();
    const s3 = client(sim);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: "../../etc/passwd", Body: "m" }));
    expect(blobStore(sim.account).size).toBe(1);
    expect(
      await (
        await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: "../../etc/passwd" }))
      ).Body!.transformToString(),
    ).toBe("m");
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "../../etc/passwd" }));
    expect(blobStore(sim.account).size).toBe(0);
  });

  it("keeps the documented body layout (1 | IV | tag | ciphertext), so bodies already on disk still open", () => {
    const key = randomBytes(32);
    const iv = Buffer.alloc(12, 3);
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(Buffer.from("sse-s3"));
    const body = Buffer.concat([cipher.update("stored before"), cipher.final()]);
    const byHand = Buffer.concat([Buffer.from([1]), iv, cipher.getAuthTag(), body]);
    expect(open(key, byHand, "sse-s3").toString()).toBe("stored before");

    const sealed = seal(key, Buffer.from("sealed now"));
    expect(sealed[0]).toBe(1);
    const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(1, 13));
    decipher.setAuthTag(sealed.subarray(13, 29));
    expect(Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]).toString()).toBe(
      "sealed now",
    );
  });
});
