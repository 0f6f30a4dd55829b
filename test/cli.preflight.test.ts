import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { beforeAll, describe, expect, it } from "vitest";
import { Simulator } from "../sim/simulator.js";
import { FileStateStore, type StateFile } from "../state/index.js";
import { runCli, tempDir } from "./helpers/cli.js";
import { sampleState } from "./helpers/state.js";

/**
 * `run`, `teardown` and `grade` refused with exit 5 (a state file that is unreadable, of another
 * account or Region, of another engine) refuse before the embedded account is opened: the
 * simulator's data directory is left byte for byte as it was. Before, the account was opened first
 * (its clock moved, CloudTrail recorded the caller's identity check) and only then was the state
 * file looked at.
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const env = { KMSLAB_SIM_PROFILE: "instant" };

/** Every file under `dir` and its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p).toString("base64");
    }
  };
  walk(dir);
  return out;
}

let cwd: string;
let simDir: string;
let accountId: string;

beforeAll(async () => {
  cwd = tempDir("kmslab-preflight-");
  simDir = join(cwd, ".kmslab/sim");
  const sim = Simulator.open(simDir, { command: "test" });
  try {
    await new KMSClient(sim.clientConfig()).send(new CreateKeyCommand({ Description: "there before" }));
    accountId = sim.account.accountId;
  } finally {
    sim.close();
  }
});

async function writeState(name: string, change: (s: StateFile) => void = () => {}): Promise<string> {
  const path = join(cwd, name);
  const state = sampleState();
  change(state);
  await new FileStateStore(path).write(state);
  return path;
}

describe("refused commands leave the embedded account untouched", () => {
  it.each([
    [
      "run",
      "a state file of another account",
      ["run"],
      () => writeState("other.json"),
      /account 123456789012/,
    ],
    [
      "run",
      "a state file of another lab engine",
      ["run"],
      () =>
        writeState("engine.json", (s) => {
          s.target.accountId = accountId;
        }),
      /lab engine version/,
    ],
    [
      "run",
      "a state file that is not JSON",
      ["run"],
      async () => {
        const path = join(cwd, "broken.json");
        writeFileSync(path, "{ not json");
        return path;
      },
      /not a valid kmslab state/,
    ],
    [
      "teardown",
      "a state file of another account",
      ["teardown", "--yes"],
      () => writeState("td.json"),
      /account/,
    ],
    [
      "teardown",
      "a state file of another Region",
      ["teardown", "--yes", "--region", "eu-west-1"],
      () =>
        writeState("td-region.json", (s) => {
          s.target.accountId = accountId;
        }),
      /eu-west-1/,
    ],
    [
      "grade",
      "a state file that is not JSON",
      ["grade"],
      async () => {
        const path = join(cwd, "grade-broken.json");
        writeFileSync(path, "{ not json");
        return path;
      },
      /not a valid kmslab state/,
    ],
  ])("%s with %s exits 5 and changes no file of the account", async (_cmd, _what, args, make, message) => {
    const state = await make();
    const before = snapshot(simDir);
    const res = await runCli([...args, "--state", state], { cwd, env });
    expect(res.code, res.stderr).toBe(5);
    expect(res.stderr).toMatch(message);
    expect(snapshot(simDir)).toEqual(before);
  });
});
