import { join } from "node:path";
import { type RosterGrade, slug } from "../grade/class.js";
import type { GradeResult } from "../grade/grade.js";
import { writeFileAtomic } from "../grade/store.js";
import { escapeHtml, markdownText, OUTCOME_COLOUR } from "./common.js";
import { render } from "./render.js";

/**
 * A class's gradings summed up: each learner's score and verdict, the distribution of scores in
 * tens, and per stage how many passed it and the mean points — as Markdown, HTML and CSV.
 */
export interface ClassEntry {
  name: string;
  /** The learner's own report files, relative to the summary. */
  files?: { json: string; html: string };
  result?: GradeResult;
  /** Why the learner could not be graded (no credentials for their profile...). */
  error?: string;
}

export interface ClassSummary {
  learners: number;
  graded: number;
  passed: number;
  meanScore: number;
  /** Learners per band of ten points: 0–9, 10–19, ... 90–100. */
  distribution: number[];
  stages: { id: string; title: string; maxPoints: number; passed: number; meanPoints: number }[];
}

export function summarise(entries: ClassEntry[]): ClassSummary {
  const results = entries.flatMap((e) => (e.result ? [e.result] : []));
  const distribution = Array.from({ length: 10 }, () => 0);
  for (const r of results) distribution[Math.min(9, Math.floor(r.percent / 10))]! += 1;
  const first = results[0];
  const stages = (first?.stages ?? []).map((s, i) => {
    const all = results.map((r) => r.stages[i]!);
    return {
      id: s.id,
      title: s.title,
      maxPoints: s.maxPoints,
      passed: all.filter((x) => x.outcome === "passed").length,
      meanPoints: round(all.reduce((n, x) => n + x.points, 0) / Math.max(1, all.length)),
    };
  });
  return {
    learners: entries.length,
    graded: results.length,
    passed: results.filter((r) => r.passed).length,
    meanScore: round(results.reduce((n, r) => n + r.score, 0) / Math.max(1, results.length)),
    distribution,
    stages,
  };
}

const round = (n: number) => Math.round(n * 10) / 10;
const pct = (n: number, d: number) => (d === 0 ? "–" : `${Math.round((n / d) * 100)}%`);
const band = (i: number) => (i === 9 ? "90–100" : `${i * 10}–${i * 10 + 9}`);

export function classMarkdown(entries: ClassEntry[], s = summarise(entries)): string {
  const out = [
    "# kmslab class summary",
    "",
    `${s.graded} of ${s.learners} learners graded · ${s.passed} passed (${pct(s.passed, s.graded)}) · mean score ${s.meanScore}`,
    "",
    "## Score distribution",
    "",
    "| score | learners |",
    "|---|---|",
    ...s.distribution.map((n, i) => `| ${band(i)} | ${n} ${"█".repeat(n > 50 ? Math.ceil(n / 5) : n)} |`),
    "",
    "## Pass rate per stage",
    "",
    "| stage | passed | pass rate | mean points |",
    "|---|---|---|---|",
    ...s.stages.map(
      (st) =>
        `| ${st.id} | ${st.passed}/${s.graded} | ${pct(st.passed, s.graded)} | ${st.meanPoints}/${st.maxPoints} |`,
    ),
    "",
    "## Learners",
    "",
    "| learner | score | verdict | report |",
    "|---|---|---|---|",
    ...entries.map((e) =>
      e.result
        ? `| ${markdownText(e.name)} | ${e.result.score}/${e.result.maxScore} | ${e.result.passed ? "pass" : "fail"} | ${e.files ? `[html](${encodeURI(e.files.html)}) · [json](${encodeURI(e.files.json)})` : ""} |`
        : `| ${markdownText(e.name)} | – | not graded: ${markdownText(e.error ?? "")} | |`,
    ),
    "",
  ];
  return out.join("\n");
}

export function classHtml(entries: ClassEntry[], s = summarise(entries)): string {
  const max = Math.max(1, ...s.distribution);
  const bars = s.distribution
    .map(
      (n, i) =>
        `<tr><td>${band(i)}</td><td><div style="background:#0b57d0;height:14px;width:${(n / max) * 100}%"></div></td><td>${n}</td></tr>`,
    )
    .join("");
  const stages = s.stages
    .map(
      (st) =>
        `<tr><td><code>${escapeHtml(st.id)}</code> ${escapeHtml(st.title)}</td><td>${st.passed}/${s.graded}</td><td><div style="background:${OUTCOME_COLOUR.passed};height:14px;width:${s.graded ? (st.passed / s.graded) * 100 : 0}%"></div></td><td>${st.meanPoints}/${st.maxPoints}</td></tr>`,
    )
    .join("");
  const learners = entries
    .map((e) =>
      e.result
        ? `<tr><td>${escapeHtml(e.name)}</td><td>${e.result.score}/${e.result.maxScore}</td><td>${e.result.passed ? "pass" : "fail"}</td><td>${e.files ? `<a href="${escapeHtml(encodeURI(e.files.html))}">report</a> · <a href="${escapeHtml(encodeURI(e.files.json))}">json</a>` : ""}</td></tr>`
        : `<tr><td>${escapeHtml(e.name)}</td><td>–</td><td colspan="2">not graded: ${escapeHtml(e.error ?? "")}</td></tr>`,
    )
    .join("\n");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>kmslab class summary</title>
<style>body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem}table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left}td:nth-child(2) div{min-width:1px}</style></head>
<body><h1>kmslab class summary</h1>
<p id="summary">${s.graded} of ${s.learners} learners graded · ${s.passed} passed (${pct(s.passed, s.graded)}) · mean score ${s.meanScore}</p>
<h2>Score distribution</h2><table id="distribution"><tr><th>score</th><th></th><th>learners</th></tr>${bars}</table>
<h2>Pass rate per stage</h2><table id="stages"><tr><th>stage</th><th>passed</th><th></th><th>mean points</th></tr>${stages}</table>
<h2>Learners</h2><table id="learners"><tr><th>learner</th><th>score</th><th>verdict</th><th>report</th></tr>
${learners}</table></body></html>
`;
}

const csvField = (v: string | number | boolean) => {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** One row per learner: score, percent, verdict and each stage's points and outcome. */
export function classCsv(entries: ClassEntry[]): string {
  const stageIds = entries.find((e) => e.result)?.result?.stages.map((s) => s.id) ?? [];
  const header = [
    "name",
    "score",
    "maxScore",
    "percent",
    "passed",
    ...stageIds.flatMap((id) => [`${id}.points`, `${id}.outcome`]),
    "error",
  ];
  const rows = entries.map((e) => {
    const r = e.result;
    return [
      e.name,
      r?.score ?? "",
      r?.maxScore ?? "",
      r?.percent ?? "",
      r ? r.passed : "",
      ...stageIds.flatMap((id) => {
        const s = r?.stages.find((x) => x.id === id);
        return [s?.points ?? "", s?.outcome ?? ""];
      }),
      e.error ?? "",
    ].map(csvField);
  });
  return `${[header, ...rows].map((r) => r.join(",")).join("\n")}\n`;
}

/**
 * Writes a class's reports into `dir`: per learner the grading (JSON, author messages included)
 * and its HTML report, then summary.md, summary.html and summary.csv. Returns the entries.
 */
export function writeClassReports(
  graded: readonly RosterGrade[],
  dir: string,
  options: { instructor?: boolean } = {},
): ClassEntry[] {
  const taken = new Set<string>();
  const entries = graded.map(({ learner, result, error }): ClassEntry => {
    const name = slug(learner.name, taken);
    if (!result) return { name: learner.name, error: error ?? "not graded" };
    const files = { json: `${name}.json`, html: `${name}.html` };
    writeFileAtomic(join(dir, files.json), `${JSON.stringify(result, null, 2)}\n`);
    writeFileAtomic(
      join(dir, files.html),
      render(result, "html", { instructor: options.instructor === true }),
    );
    return { name: learner.name, files, result };
  });
  writeFileAtomic(join(dir, "summary.md"), classMarkdown(entries));
  writeFileAtomic(join(dir, "summary.html"), classHtml(entries));
  writeFileAtomic(join(dir, "summary.csv"), classCsv(entries));
  return entries;
}
