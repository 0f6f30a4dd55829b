import type { GradedStage, GradeResult } from "../grade/grade.js";
import { escapeHtml, OUTCOME_COLOUR, OUTCOME_LABEL } from "./common.js";

/**
 * The lab's statechart as inline SVG: the six stages as states in columns by dependency depth (the
 * machine runs a stage once its dependencies passed), an arrow per dependency, from a start state
 * to the final state. Each state is filled with its graded outcome; the run's own status from the
 * state file (what was planned and happened then) is written under it, its border dashed when it
 * disagrees with what grading finds now.
 */
const W = 200;
const H = 64;
const GAP_X = 60;
const GAP_Y = 26;
const PAD = 40;

export function statechartSvg(r: GradeResult): string {
  const depth = new Map<string, number>();
  for (const s of r.stages) depth.set(s.id, Math.max(0, ...s.dependsOn.map((d) => (depth.get(d) ?? 0) + 1)));
  const columns: GradedStage[][] = [];
  for (const s of r.stages) {
    const d = depth.get(s.id)!;
    columns[d] = [...(columns[d] ?? []), s];
  }
  const rows = Math.max(...columns.map((c) => c.length));
  const height = PAD * 2 + rows * H + (rows - 1) * GAP_Y;
  const width = PAD * 2 + 60 + columns.length * (W + GAP_X) + 30;
  const pos = new Map<string, { x: number; y: number }>();
  for (const [ci, col] of columns.entries()) {
    const top = (height - (col.length * H + (col.length - 1) * GAP_Y)) / 2;
    for (const [ri, s] of col.entries())
      pos.set(s.id, { x: PAD + 60 + ci * (W + GAP_X), y: top + ri * (H + GAP_Y) });
  }
  const parts: string[] = [];
  const arrow = (x1: number, y1: number, x2: number, y2: number) =>
    `<path d="M${x1},${y1} C${(x1 + x2) / 2},${y1} ${(x1 + x2) / 2},${y2} ${x2},${y2}" fill="none" stroke="#777" stroke-width="1.5" marker-end="url(#arrow)"/>`;
  const startY = height / 2;
  parts.push(`<circle cx="${PAD}" cy="${startY}" r="9" fill="#333"><title>start</title></circle>`);
  for (const s of r.stages) {
    const p = pos.get(s.id)!;
    if (s.dependsOn.length === 0) parts.push(arrow(PAD + 9, startY, p.x, p.y + H / 2));
    for (const d of s.dependsOn) {
      const q = pos.get(d)!;
      parts.push(arrow(q.x + W, q.y + H / 2, p.x, p.y + H / 2));
    }
  }
  const endX = width - PAD + 10;
  const complete = r.stages.every((s) => s.outcome === "passed");
  for (const s of r.stages) {
    if (r.stages.some((o) => o.dependsOn.includes(s.id))) continue;
    const p = pos.get(s.id)!;
    parts.push(arrow(p.x + W, p.y + H / 2, endX - 12, startY));
  }
  parts.push(
    `<circle cx="${endX}" cy="${startY}" r="11" fill="none" stroke="#333" stroke-width="2"/><circle cx="${endX}" cy="${startY}" r="6" fill="${complete ? "#2e7d32" : "#333"}"><title>${complete ? "lab complete" : "lab not complete"}</title></circle>`,
  );
  r.stages.forEach((s, i) => {
    const p = pos.get(s.id)!;
    const runStatus = s.run?.status;
    const disagrees = runStatus !== undefined && (runStatus === "passed") !== (s.outcome === "passed");
    parts.push(`<g class="state" data-stage="${s.id}" data-outcome="${s.outcome}">
<title>${escapeHtml(`${s.title}: ${OUTCOME_LABEL[s.outcome]}, ${s.points}/${s.maxPoints}${runStatus ? ` (run: ${runStatus})` : ""}`)}</title>
<rect x="${p.x}" y="${p.y}" width="${W}" height="${H}" rx="14" fill="${OUTCOME_COLOUR[s.outcome]}" stroke="#222" stroke-width="${disagrees ? 2.5 : 1}"${disagrees ? ' stroke-dasharray="6 4"' : ""}/>
<text x="${p.x + W / 2}" y="${p.y + 20}" text-anchor="middle" fill="#fff" font-size="13" font-weight="bold">${i + 1}. ${escapeHtml(s.id)}</text>
<text x="${p.x + W / 2}" y="${p.y + 38}" text-anchor="middle" fill="#fff" font-size="12">${OUTCOME_LABEL[s.outcome]} · ${s.points}/${s.maxPoints}</text>
<text x="${p.x + W / 2}" y="${p.y + 55}" text-anchor="middle" fill="#fff" font-size="11">${runStatus ? `run: ${escapeHtml(runStatus)}` : "no run recorded"}</text>
</g>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="the lab's statechart, each stage coloured by its outcome" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" style="max-width:100%;height:auto">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>
${parts.join("\n")}
</svg>`;
}
