import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCsv } from "../grade/class.js";
import { Simulator } from "../sim/simulator.js";
import { runCli, tempDir } from "./helpers/cli.js";
import { labByHand } from "./helpers/handlab.js";

/**
 * `kmslab grade`, `kmslab report` and `kmslab grade --class` as a user runs them, against a
 * simulator data directory where two learners sharing the account did the lab by hand (Ann right,
 * Bob with SSE-S3): saved gradings, every report format, the class summary, and bad input refused
 * with its exit code and nothing written.
 */
describe("kmslab grade and kmslab report on the command line", () => {
  const work = tempDir("kmslab-grade-cli-");
  const simData = join(work, "sim");
  const state = join(work, "lab", "state.json");
  const env = { KMSLAB_SIM_PROFILE: "instant" };
  let secret = "";
  const cli = (...args: string[]) =>
    runCli(["--sim-data", simData, "--state", state, ...args], { cwd: work, env });

  beforeAll(async () => {
    const sim = Simulator.open(simData, { command: "test", profile: "instant" });
    secret = sim.credentials().secretAccessKey;
    try {
      await labByHand(sim, {}, "-ann");
      await labByHand(sim, { sseS3: true }, "-bob");
    } finally {
      sim.close();
    }
  }, 60_000);

  it("grades a learner, saves the grading beside the state file with its time, and exits 0 on a pass", async () => {
    const res = await cli("grade", "--suffix", "-ann", "--learner", "Ann");
    expect(res.stderr).toContain("graded from the parameters alone");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("100/100 points (100%) — PASS (pass mark 80%)");
    const saved = readdirSync(join(work, "lab")).filter((f) => /^grade-.*Z\.json$/.test(f));
    expect(saved).toHaveLength(1);
    const text = readFileSync(join(work, "lab", saved[0]!), "utf8");
    // Neither a credential nor the object's plaintext reaches the saved grading.
    expect(text).not.toContain(secret);
    expect(text).not.toContain("quarterly numbers");
    const result = JSON.parse(text);
    expect(result).toMatchObject({ learner: "Ann", score: 100, passed: true, params: { suffix: "-ann" } });
    expect(saved[0]).toBe(`grade-${result.endedAt.replace(/:/g, "-")}.json`);
  });

  it("exits 1 on a fail, and --json prints the grading", async () => {
    const res = await cli("--json", "grade", "--suffix", "-bob", "--learner", "Bob");
    expect(res.code).toBe(1);
    const result = JSON.parse(res.stdout);
    expect(result.score).toBe(69);
    expect(result.stages.find((s: { id: string }) => s.id === "sse-kms-upload").points).toBe(4);
  });

  it("renders the newest grading in each format, to stdout or --out", async () => {
    const junit = join(work, "bob.xml");
    const res = await cli("report", "--format", "junit", "--out", junit);
    expect(res.code).toBe(0);
    expect(readFileSync(junit, "utf8")).toMatch(/^<\?xml[\s\S]*<testsuites name="kmslab Bob"/);
    const md = await cli("report", "--format", "md", "--instructor");
    expect(md.code).toBe(0);
    expect(md.stdout).toContain("69/100 points (69%) — FAIL");
    expect(md.stdout).toContain("*author:*");
    const html = await cli("report", "--format", "html");
    expect(html.stdout).toMatch(/^<!DOCTYPE html>/);
    expect(html.stdout).toContain("<svg");
    const json = await cli("report", "--format", "json");
    expect(JSON.parse(json.stdout).learner).toBe("Bob");
  });

  it("refuses bad input with a clear message and its exit code, writing nothing", async () => {
    const before = readdirSync(join(work, "lab")).sort();
    const badFormat = await cli("report", "--format", "pdf");
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toContain("--format must be one of text, md, html, json, junit");
    const badThreshold = await cli("grade", "--threshold", "120");
    expect(badThreshold.code).toBe(2);
    const badSuffix = await cli("grade", "--suffix", "NOT OK");
    expect(badSuffix.code).toBe(2);
    expect(badSuffix.stderr).toContain("suffix");
    writeFileSync(join(work, "not-a-grading.json"), '{"hello": 1}');
    const badIn = await cli("report", "--in", join(work, "not-a-grading.json"));
    expect(badIn.code).toBe(5);
    expect(badIn.stderr).toContain("is not a kmslab grading");
    const none = await runCli(["--state", join(work, "elsewhere", "state.json"), "report"], {
      cwd: work,
      env,
    });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("run kmslab grade first");
    writeFileSync(join(work, "bad.csv"), "learner,suffix\nann,-ann\n");
    const badRoster = await cli("grade", "--class", join(work, "bad.csv"), "--out", join(work, "bad-class"));
    expect(badRoster.code).toBe(2);
    expect(badRoster.stderr).toContain('the first row must name the columns, with at least "name"');
    expect(existsSync(join(work, "bad-class"))).toBe(false);
    expect(readdirSync(join(work, "lab")).sort()).toEqual(before);
  });

  it("grades a class from a roster: each learner's report and a summary in Markdown, HTML and CSV", async () => {
    const roster = join(work, "learners.csv");
    writeFileSync(roster, 'name,suffix\nAnn,-ann\n"Bob, the builder",-bob\nCyd,-cyd\n');
    const out = join(work, "class");
    const res = await cli("grade", "--class", roster, "--out", out);
    expect(res.stderr).toBe(`kmslab: class reports in class\n`);
    expect(res.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(
      [
        "Ann.html",
        "Ann.json",
        "Bob-the-builder.html",
        "Bob-the-builder.json",
        "Cyd.html",
        "Cyd.json",
        "summary.csv",
        "summary.html",
        "summary.md",
      ].sort(),
    );
    const text = readFileSync(join(out, "summary.csv"), "utf8");
    expect(text).toMatch(/^name,score,maxScore,percent,passed,create-key\.points,create-key\.outcome,/);
    const csv = parseCsv(text);
    expect(csv.slice(1).map((row) => row.slice(0, 2))).toEqual([
      ["Ann", "100"],
      ["Bob, the builder", "69"],
      ["Cyd", "0"],
    ]);
    const md = readFileSync(join(out, "summary.md"), "utf8");
    expect(md).toContain("3 of 3 learners graded · 1 passed (33%) · mean score 56.3");
    expect(md).toContain("| sse-kms-upload | 1/3 | 33% | 6.3/15 |");
    expect(md).toContain("| 90–100 | 1 █ |");
    expect(readFileSync(join(out, "summary.html"), "utf8")).toContain('<table id="stages">');
    expect(JSON.parse(readFileSync(join(out, "Cyd.json"), "utf8")).stages[0].outcome).toBe("notAttempted");
  }, 60_000);
});
