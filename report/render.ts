import type { GradedStage, GradeResult, Outcome } from "../grade/grade.js";
import { escapeHtml, markdownText, OUTCOME_COLOUR, OUTCOME_LABEL } from "./common.js";
import { statechartSvg } from "./svg.js";

export { escapeHtml, OUTCOME_COLOUR, OUTCOME_LABEL };

/**
 * A grading result (grade/) rendered for people and machines: a terminal table, Markdown, one
 * self-contained HTML page (inline CSS and SVG, no external asset), JSON (schema/report.schema.json)
 * and JUnit XML (one test case per check). The learner's view leaves the author's messages out;
 * `instructor` puts them in.
 */
export type ReportFormat = "text" | "md" | "html" | "json" | "junit";
export const FORMATS: readonly ReportFormat[] = ["text", "md", "html", "json", "junit"];

export interface ReportOptions {
  instructor?: boolean;
  /** Earlier gradings of the same lab (oldest first), to show progress over time. */
  history?: { gradedAt: string; score: number; percent: number }[];
}

export function render(result: GradeResult, format: ReportFormat, options: ReportOptions = {}): string {
  const view = options.instructor ? result : learnerView(result);
  switch (format) {
    case "text":
      return renderText(view, options);
    case "md":
      return renderMarkdown(view, options);
    case "html":
      return renderHtml(view, options);
    case "json":
      return `${JSON.stringify(view, null, 2)}\n`;
    case "junit":
      return renderJunit(view);
  }
}

/** The result without the author's messages: what a learner is shown. */
export function learnerView(result: GradeResult): GradeResult {
  return {
    ...result,
    stages: result.stages.map((s) => ({
      ...s,
      checks: s.checks.map(({ author: _author, ...c }) => c),
    })),
  };
}

const ICON: Record<Outcome, string> = { passed: "✔", partial: "◐", failed: "✘", notAttempted: "·" };

function verdict(r: GradeResult): string {
  return `${r.score}/${r.maxScore} points (${r.percent}%) — ${r.passed ? "PASS" : "FAIL"} (pass mark ${r.threshold}%)`;
}

function who(r: GradeResult): string {
  return `${r.learner ? `${r.learner} · ` : ""}account ${r.target.accountId}, ${r.target.region}${r.run ? ` · run ${r.run.runId} (${formatDuration(Date.parse(r.run.updatedAt) - Date.parse(r.run.createdAt))}, ${r.run.createdAt} → ${r.run.updatedAt})` : " · graded from the parameters alone"}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

function renderText(r: GradeResult, o: ReportOptions): string {
  const lines = [`kmslab grade — ${who(r)}`, `graded ${r.endedAt} in ${formatDuration(r.durationMs)}`, ""];
  for (const s of r.stages) {
    lines.push(
      `${ICON[s.outcome]} ${s.title.padEnd(64)} ${OUTCOME_LABEL[s.outcome].padEnd(13)} ${`${s.points}/${s.maxPoints}`.padStart(5)}${s.run ? `  (run: ${s.run.status}${s.run.durationMs !== undefined ? `, ${formatDuration(s.run.durationMs)}` : ""})` : ""}`,
    );
    for (const c of s.checks) {
      if (c.points >= c.maxPoints) continue;
      lines.push(`    ${c.points}/${c.maxPoints} ${c.title}`);
      if (c.learner) lines.push(`      → ${c.learner}`);
      if (c.author) lines.push(`      author: ${c.author}`);
    }
  }
  lines.push("", verdict(r));
  if (o.history && o.history.length > 0)
    lines.push(`earlier: ${o.history.map((h) => `${h.gradedAt} ${h.score}`).join(" · ")}`);
  return `${lines.join("\n")}\n`;
}

const mdCell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

function renderMarkdown(r: GradeResult, o: ReportOptions): string {
  const out = [
    "# kmslab lab report",
    "",
    `${markdownText(who(r))}  `,
    `graded ${r.endedAt} in ${formatDuration(r.durationMs)}`,
    "",
    `**${verdict(r)}**`,
    "",
    "| # | stage | outcome | points | run |",
    "|---|---|---|---|---|",
    ...r.stages.map(
      (s, i) =>
        `| ${i + 1} | ${mdCell(s.title)} (\`${s.id}\`) | ${ICON[s.outcome]} ${OUTCOME_LABEL[s.outcome]} | ${s.points}/${s.maxPoints} | ${s.run ? `${s.run.status}${s.run.durationMs !== undefined ? `, ${formatDuration(s.run.durationMs)}` : ""}` : "—"} |`,
    ),
    "",
  ];
  for (const s of r.stages) {
    out.push(`## ${s.title} — ${s.points}/${s.maxPoints}`, "");
    for (const c of s.checks) {
      out.push(`- ${ICON[c.outcome]} ${c.title}: ${c.points}/${c.maxPoints}`);
      if (c.learner) out.push(`  - ${c.learner}`);
      if (c.author) out.push(`  - *author:* ${c.author}`);
      const evidence = Object.entries(c.evidence);
      if (evidence.length > 0)
        out.push(
          `  - evidence: ${evidence.map(([k, v]) => `${k} \`${mdCell(JSON.stringify(v))}\``).join(", ")}`,
        );
    }
    out.push("");
  }
  if (o.history && o.history.length > 0) {
    out.push("## Progress", "", "| graded | score |", "|---|---|");
    for (const h of [...o.history, { gradedAt: r.endedAt, score: r.score, percent: r.percent }])
      out.push(`| ${h.gradedAt} | ${h.score} (${h.percent}%) |`);
    out.push("");
  }
  return out.join("\n");
}

const CSS = `
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}.meta{color:#555}
.score{font-size:1.3rem;margin:1rem 0;padding:.6rem 1rem;border-radius:6px;color:#fff;display:inline-block}
.pass{background:#2e7d32}.fail{background:#c62828}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
.badge{display:inline-block;border-radius:4px;color:#fff;padding:0 .4rem;font-size:.85rem}
details{margin:.2rem 0}summary{cursor:pointer;color:#0b57d0}pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:12px}
.learner{margin:.1rem 0}.author{color:#6a1b9a;margin:.1rem 0}
.timeline{position:relative;border-left:1px solid #bbb;margin:1rem 0}
.tl-row{display:flex;align-items:center;height:22px}.tl-label{width:230px;font-size:12px;white-space:nowrap;overflow:hidden}
.tl-track{position:relative;flex:1;height:14px;background:#f3f3f3}.tl-bar{position:absolute;height:14px;border-radius:3px;min-width:3px}
`;

function renderHtml(r: GradeResult, o: ReportOptions): string {
  const rows = r.stages
    .map((s, i) => {
      const checks = s.checks
        .map(
          (c) => `<li>${ICON[c.outcome]} ${escapeHtml(c.title)}: <b>${c.points}/${c.maxPoints}</b>
${c.learner ? `<div class="learner">${escapeHtml(c.learner)}</div>` : ""}${c.author ? `<div class="author">author: ${escapeHtml(c.author)}</div>` : ""}
<details><summary>evidence</summary><pre>${escapeHtml(JSON.stringify(c.evidence, null, 2))}</pre></details></li>`,
        )
        .join("\n");
      return `<tr class="stage-row" data-stage="${s.id}" data-outcome="${s.outcome}">
<td>${i + 1}</td><td><b>${escapeHtml(s.title)}</b><br><code>${s.id}</code><ul>${checks}</ul></td>
<td><span class="badge" style="background:${OUTCOME_COLOUR[s.outcome]}">${OUTCOME_LABEL[s.outcome]}</span></td>
<td class="points">${s.points}/${s.maxPoints}</td>
<td>${s.run ? `${escapeHtml(s.run.status)}${s.run.durationMs !== undefined ? `<br>${formatDuration(s.run.durationMs)}` : ""}${s.run.error ? `<br><small>${escapeHtml(s.run.error)}</small>` : ""}` : "—"}</td></tr>`;
    })
    .join("\n");
  const history =
    o.history && o.history.length > 0
      ? `<h2>Progress</h2><table><tr><th>graded</th><th>score</th></tr>${[
          ...o.history,
          { gradedAt: r.endedAt, score: r.score, percent: r.percent },
        ]
          .map((h) => `<tr><td>${escapeHtml(h.gradedAt)}</td><td>${h.score} (${h.percent}%)</td></tr>`)
          .join("")}</table>`
      : "";
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>kmslab report${r.learner ? ` — ${escapeHtml(r.learner)}` : ""}</title><style>${CSS}</style></head>
<body>
<h1>kmslab lab report</h1>
<div class="meta">${escapeHtml(who(r))}<br>graded ${escapeHtml(r.endedAt)} in ${formatDuration(r.durationMs)}</div>
<div id="score" class="score ${r.passed ? "pass" : "fail"}">${escapeHtml(verdict(r))}</div>
<h2>The lab's stages</h2>
<figure id="statechart">${statechartSvg(r)}</figure>
<h2>Stages</h2>
<table id="stages"><thead><tr><th>#</th><th>stage and checks</th><th>outcome</th><th>points</th><th>run</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Timeline</h2>
${timeline(r)}
${history}
</body></html>
`;
}

/**
 * When each stage ran (from the state file) or, for a lab done by hand, when its checks ran: bars
 * on one time axis, coloured by outcome.
 */
function timeline(r: GradeResult): string {
  const span = (s: GradedStage): [number, number] | undefined => {
    if (s.run?.startedAt) {
      const a = Date.parse(s.run.startedAt);
      return [a, s.run.endedAt ? Date.parse(s.run.endedAt) : a];
    }
    return undefined;
  };
  const fromRun = r.stages.some((s) => span(s));
  const spans = r.stages.map((s) =>
    fromRun ? span(s) : ([Date.parse(s.gradedAt), Date.parse(s.gradedAt) + s.gradingMs] as [number, number]),
  );
  const known = spans.filter((x): x is [number, number] => x !== undefined);
  const t0 = Math.min(...known.map((x) => x[0]));
  const t1 = Math.max(...known.map((x) => x[1]), t0 + 1);
  const rows = r.stages
    .map((s, i) => {
      const x = spans[i];
      const bar = x
        ? `<div class="tl-bar" style="left:${(((x[0] - t0) / (t1 - t0)) * 100).toFixed(2)}%;width:${(((x[1] - x[0]) / (t1 - t0)) * 100).toFixed(2)}%;background:${OUTCOME_COLOUR[s.outcome]}" title="${escapeHtml(`${new Date(x[0]).toISOString()} – ${new Date(x[1]).toISOString()}`)}"></div>`
        : "";
      return `<div class="tl-row"><div class="tl-label">${escapeHtml(s.id)}</div><div class="tl-track">${bar}</div></div>`;
    })
    .join("\n");
  return `<div class="timeline" id="timeline"><div class="meta">${fromRun ? "when each stage ran (state file)" : "when each stage's checks ran (no state file)"}: ${new Date(t0).toISOString()} → ${new Date(t1).toISOString()} (${formatDuration(t1 - t0)})</div>
${rows}</div>`;
}

const xml = (text: string) => escapeHtml(text).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "");

/** JUnit XML: a test suite per stage, a test case per check; a check short of its points is a failure. */
function renderJunit(r: GradeResult): string {
  const failures = (s: GradedStage) => s.checks.filter((c) => c.points < c.maxPoints).length;
  const total = r.stages.reduce((n, s) => n + s.checks.length, 0);
  const failed = r.stages.reduce((n, s) => n + failures(s), 0);
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const suites = r.stages.map((s) => {
    const cases = s.checks.map((c) => {
      const body =
        c.points < c.maxPoints
          ? `<failure type="${s.outcome === "notAttempted" ? "notAttempted" : c.outcome}" message="${xml(`${c.points}/${c.maxPoints}: ${c.learner ?? c.title}`)}">${xml(
              [c.author ? `author: ${c.author}` : "", `evidence: ${JSON.stringify(c.evidence)}`]
                .filter(Boolean)
                .join("\n"),
            )}</failure>`
          : "";
      return `    <testcase classname="kmslab.${s.id}" name="${xml(`${c.id}: ${c.title}`)}" time="${seconds(s.gradingMs)}">
      <properties><property name="points" value="${c.points}"/><property name="maxPoints" value="${c.maxPoints}"/></properties>${body ? `\n      ${body}` : ""}
    </testcase>`;
    });
    return `  <testsuite name="${s.id}" tests="${s.checks.length}" failures="${failures(s)}" errors="0" skipped="0" time="${seconds(s.gradingMs)}" timestamp="${s.gradedAt.replace(/Z$/, "")}">
    <properties><property name="outcome" value="${s.outcome}"/><property name="points" value="${s.points}"/><property name="maxPoints" value="${s.maxPoints}"/></properties>
${cases.join("\n")}
  </testsuite>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="${xml(`kmslab${r.learner ? ` ${r.learner}` : ""}`)}" tests="${total}" failures="${failed}" errors="0" time="${seconds(r.durationMs)}">
${suites.join("\n")}
</testsuites>
`;
}
