import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { chromium } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { type GradeResult, gradeLab } from "../grade/grade.js";
import { Clients } from "../machines/aws.js";
import { render } from "../report/render.js";
import { parseXml, type XmlNode } from "../sim/core/xml.js";
import { Simulator } from "../sim/simulator.js";
import { parseParams, resolveParams } from "../steps/params.js";
import { STAGES } from "../steps/registry.js";
import { labByHand } from "./helpers/handlab.js";

/**
 * The report of a real grading (a lab done by hand, the key user left out of the key policy) in
 * every format: JSON valid against the published schema, JUnit XML read back, and the HTML page
 * opened in headless Chromium, where the score, every stage row and the statechart must show.
 */
const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = resolve(import.meta.dirname, "../test-artifacts");

let result: GradeResult;

beforeAll(async () => {
  const sim = Simulator.inMemory();
  const clients = new Clients({ ...sim.clientConfig(), region: "us-east-1" });
  await labByHand(sim, { leftRemoved: true });
  result = await gradeLab({
    clients,
    params: resolveParams(parseParams({}), sim.account.accountId),
    target: { kind: "sim", region: "us-east-1", accountId: sim.account.accountId },
    learner: "Ada <Lovelace> & co",
  });
  clients.destroy();
  expect(result.score).toBe(80);
});

const schema = JSON.parse(readFileSync(resolve(import.meta.dirname, "../schema/report.schema.json"), "utf8"));

function validator() {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  ajv.addFormat("date-time", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
  return ajv.compile(schema);
}

describe("the report", () => {
  it("JSON follows the published schema, in the learner's view (no author messages) and the instructor's", () => {
    const validate = validator();
    const learner = JSON.parse(render(result, "json"));
    expect(validate(learner), JSON.stringify(validate.errors)).toBe(true);
    const instructor = JSON.parse(render(result, "json", { instructor: true }));
    expect(validate(instructor), JSON.stringify(validate.errors)).toBe(true);
    const authors = (r: GradeResult) =>
      r.stages.flatMap((s) => s.checks.filter((c) => c.author !== undefined));
    expect(authors(learner)).toHaveLength(0);
    expect(authors(instructor).length).toBeGreaterThan(0);
    // The schema is not a formality: a stage without its outcome is refused.
    const broken = structuredClone(learner);
    delete broken.stages[0].outcome;
    expect(validate(broken)).toBe(false);
  });

  it("JUnit XML has one test case per check, failures where points are missing, and reads back", () => {
    const doc = parseXml(render(result, "junit", { instructor: true }));
    expect(doc.name).toBe("testsuites");
    const suites = doc.children.filter((c) => c.name === "testsuite");
    expect(suites).toHaveLength(STAGES.length);
    const cases = suites.flatMap((s) => s.children.filter((c) => c.name === "testcase"));
    const checks = result.stages.flatMap((s) => s.checks);
    expect(cases).toHaveLength(checks.length);
    const failing = (c: XmlNode) => c.children.some((x) => x.name === "failure");
    expect(cases.filter(failing)).toHaveLength(checks.filter((c) => c.points < c.maxPoints).length);
    // Stage 6's sequence is the check that names the mistake.
    const sequence = cases.find((c) =>
      c.children.some((x) => x.name === "failure" && x.text.includes("PutKeyPolicy events")),
    );
    expect(sequence).toBeDefined();
    const raw = render(result, "junit");
    expect(raw).toMatch(
      /<testsuites name="kmslab Ada &#60;Lovelace&#62; &#38; co" tests="\d+" failures="\d+"/,
    );
    expect(raw).toContain('message="7/10: The key user was left removed');
  });

  it("text and Markdown give the score, each stage and the learner's messages", () => {
    for (const format of ["text", "md"] as const) {
      const out = render(result, format);
      expect(out).toContain("80/100 points (80%) — PASS (pass mark 80%)");
      for (const s of STAGES) expect(out).toContain(s.title);
      expect(out).toContain("The key user was left removed");
      expect(out).not.toContain("author");
      expect(render(result, format, { instructor: true })).toContain("author");
    }
  });

  it("the statechart sets what the run recorded against what grading finds: a dashed border where they disagree", () => {
    const planned = structuredClone(result);
    for (const s of planned.stages) s.run = { status: "passed", attempts: 1 };
    const svg = render(planned, "html");
    const state = (id: string) =>
      svg.slice(svg.indexOf(`<g class="state" data-stage="${id}"`)).split("</g>")[0]!;
    expect(state("key-user-access")).toContain("stroke-dasharray");
    expect(state("key-user-access")).toContain("run: passed");
    expect(state("trail-key-usage")).not.toContain("stroke-dasharray");
    expect(state("create-key")).toContain('fill="#ef8f00"');
  });

  it("HTML is one self-contained page that headless Chromium shows: score, every stage row, the statechart", async () => {
    const html = render(result, "html", {
      instructor: true,
      history: [{ gradedAt: "2026-11-28T10:00:00.000Z", score: 45, percent: 45 }],
    });
    // No external asset: no script, stylesheet, image or font fetched from anywhere.
    expect(html).not.toMatch(
      /<script|<link|<img|\ssrc=|url\((?!#)|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
    );
    expect(html).not.toContain("Ada <Lovelace>");
    mkdirSync(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, "report.html");
    writeFileSync(file, html);
    expect(existsSync(CHROMIUM), `${CHROMIUM} is needed (apt-get install chromium; .ci/run does it)`).toBe(
      true,
    );
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const requests: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith("file:")) requests.push(r.url());
      });
      await page.goto(`file://${file}`);
      await expect.poll(() => page.locator("#score").isVisible()).toBe(true);
      expect(await page.locator("#score").textContent()).toContain("80/100 points (80%) — PASS");
      const rows = page.locator("tr.stage-row");
      expect(await rows.count()).toBe(STAGES.length);
      for (const s of STAGES) {
        const row = page.locator(`tr.stage-row[data-stage="${s.id}"]`);
        expect(await row.isVisible(), s.id).toBe(true);
        expect(await row.textContent()).toContain(s.title);
      }
      expect(await page.locator(`tr[data-stage="key-user-access"] .points`).textContent()).toBe("7/20");
      const chart = page.locator("#statechart svg");
      expect(await chart.isVisible()).toBe(true);
      const box = await chart.boundingBox();
      expect(box!.width).toBeGreaterThan(300);
      expect(await page.locator("#statechart g.state").count()).toBe(STAGES.length);
      expect(
        await page.locator('#statechart g.state[data-stage="key-user-access"] rect').getAttribute("fill"),
      ).toBe("#ef8f00");
      expect(await page.locator("#timeline .tl-bar").count()).toBe(STAGES.length);
      // Evidence is folded away until asked for.
      const evidence = page.locator('tr[data-stage="create-key"] details').first();
      expect(await evidence.locator("pre").isVisible()).toBe(false);
      await evidence.locator("summary").click();
      expect(await evidence.locator("pre").isVisible()).toBe(true);
      expect(await evidence.locator("pre").textContent()).toContain("arn:aws:kms:us-east-1:");
      await page.screenshot({ path: join(ARTIFACTS, "report.png"), fullPage: true });
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
    expect(existsSync(join(ARTIFACTS, "report.png"))).toBe(true);
  }, 60_000);
});
