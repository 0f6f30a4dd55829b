import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Simulator } from "../sim/simulator.js";
import { runCli, tempDir } from "./helpers/cli.js";

/**
 * The state file never holds a credential, and what is not one is not taken for one: a lab
 * parameter that merely looks like a secret access key (40 characters of base64's alphabet, both
 * cases) is recorded, while the credentials the run signs with are refused wherever they appear,
 * with a message for the learner. Before, such a parameter stopped the run with exit 5 and a
 * message for a developer ("pass the value through redact()").
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

// The run stops at its first KMS call (an SCP-style deny): enough for the state file to be written.
const env = { KMSLAB_SIM_PROFILE: "instant", KMSLAB_SIM_FAULTS: "kms:deny=1" };

describe("secrets in the state file", () => {
  it("a 40-character mixed-case alias is a parameter, not a secret: it is recorded", async () => {
    const cwd = tempDir("kmslab-secrets-");
    const alias = "alias/QuarterlyFinanceKeyForTeamA2026b12";
    expect(alias).toHaveLength(40);
    const res = await runCli(["run", "--key-alias", alias], { cwd, env });
    expect(res.code, res.stderr).toBe(1);
    const state = JSON.parse(readFileSync(join(cwd, ".kmslab/state.json"), "utf8"));
    expect(state.params.keyAlias).toBe(alias);
  });

  it("the credential the run signs with is refused, with a message for the learner", async () => {
    const cwd = tempDir("kmslab-secrets-");
    const sim = Simulator.open(join(cwd, ".kmslab/sim"), { command: "test" });
    const { secretAccessKey } = sim.credentials();
    sim.close();
    const res = await runCli(["run", "--object-key", `notes/${secretAccessKey}`], { cwd, env });
    expect(res.code).toBe(5);
    expect(res.stderr).toContain("$.params.objectKey");
    expect(res.stderr).toMatch(/never writes them to disk.*choose another value/s);
    expect(res.stderr).not.toContain("redact()");
    expect(res.stderr).not.toContain(secretAccessKey);
  });
});
