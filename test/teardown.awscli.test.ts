import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AWS_CLI, awsCliEnv, runCli, type ServeHandle, startServe, tempDir } from "./helpers/cli.js";

/**
 * The teardown as the AWS CLI sees it: `kmslab run` and `kmslab teardown --yes` reach the account
 * that `kmslab sim serve` holds (over HTTP), and the AWS CLI, listing every key, alias, bucket,
 * trail and role with their tags, finds nothing of the lab's afterwards but a key pending deletion.
 */
const run = promisify(execFile);

describe("teardown checked with the AWS CLI against kmslab sim serve", () => {
  const work = tempDir("kmslab-awscli-teardown-");
  const simData = join(work, "sim");
  let server: ServeHandle;

  async function aws(args: string[]): Promise<Record<string, unknown>> {
    const { stdout } = await run(AWS_CLI, ["--endpoint-url", server.endpoint, "--output", "json", ...args], {
      cwd: work,
      encoding: "utf8",
      env: awsCliEnv(work, server),
    });
    return stdout.trim() ? JSON.parse(stdout) : {};
  }

  type Tag = { Key?: string; Value?: string; TagKey?: string; TagValue?: string };
  const runOf = (tags: Tag[] | undefined) =>
    tags?.find((t) => (t.Key ?? t.TagKey) === "kmslab:run")?.[tags[0]?.Key ? "Value" : "TagValue"];

  /** Every kmslab-tagged or kmslab-named resource the AWS CLI lists; keys pending deletion apart. */
  async function labResources(): Promise<string[]> {
    const out: string[] = [];
    const pending: string[] = [];
    for (const k of ((await aws(["kms", "list-keys"])).Keys as { KeyId: string }[]) ?? []) {
      const meta = (await aws(["kms", "describe-key", "--key-id", k.KeyId])).KeyMetadata as {
        KeyState: string;
      };
      const tags = (await aws(["kms", "list-resource-tags", "--key-id", k.KeyId])).Tags as Tag[];
      if (!runOf(tags)) continue;
      if (meta.KeyState === "PendingDeletion") pending.push(k.KeyId);
      else out.push(`key ${k.KeyId}`);
    }
    for (const a of ((await aws(["kms", "list-aliases"])).Aliases as { AliasName: string }[]) ?? [])
      if (a.AliasName.startsWith("alias/myFirstKey")) out.push(`alias ${a.AliasName}`);
    for (const b of ((await aws(["s3api", "list-buckets"])).Buckets as { Name: string }[]) ?? [])
      if (b.Name.startsWith("kmslab-")) out.push(`bucket ${b.Name}`);
    for (const t of ((await aws(["cloudtrail", "describe-trails"])).trailList as { Name: string }[]) ?? [])
      out.push(`trail ${t.Name}`);
    for (const r of ((await aws(["iam", "list-roles"])).Roles as { RoleName: string }[]) ?? []) {
      const tags = (await aws(["iam", "list-role-tags", "--role-name", r.RoleName])).Tags as Tag[];
      if (runOf(tags) || r.RoleName.startsWith("kmslab-")) out.push(`role ${r.RoleName}`);
    }
    return [...out.sort(), ...pending.map((k) => `pending ${k}`)];
  }

  beforeAll(async () => {
    server = await startServe(["--sim-data", simData, "--sim-profile", "instant"]);
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("leaves no kmslab-tagged resource but the key pending deletion", async () => {
    const args = ["--sim-data", simData, "--state", join(work, "state.json")];
    const lab = await runCli(
      ["run", ...args, "--poll-interval", "1", "--trail-wait", "60", "--propagation-wait", "10"],
      { cwd: work },
    );
    expect(lab.code, lab.stderr).toBe(0);
    // The listing sees the lab before (two of its calls suffice to show it can fail).
    expect((await aws(["cloudtrail", "describe-trails"])).trailList).toHaveLength(1);
    expect(
      ((await aws(["s3api", "list-buckets"])).Buckets as { Name: string }[]).filter((b) =>
        b.Name.startsWith("kmslab-"),
      ),
    ).toHaveLength(2);

    const down = await runCli(["teardown", "--yes", ...args], { cwd: work });
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toContain(server.endpoint);
    const after = await labResources();
    expect(after).toHaveLength(1);
    expect(after[0]).toMatch(/^pending /);
  }, 120_000);
});
