import type { EngineEvent, LabResult } from "../machines/engine.js";
import type { StageStatus } from "../machines/lab.js";
import type { StageId } from "../steps/dsl.js";
import { STAGES } from "../steps/registry.js";

/**
 * What `kmslab run` shows while it works. On a terminal: the six stages as a live task list, with
 * the step in progress and, while waiting, what for and how much of the budget is left. Elsewhere
 * (a pipe, CI): one plain line per stage transition and wait. With --json: nothing until the result.
 */
export interface Progress {
  event(e: EngineEvent): void;
  done(): void;
}

export const ICON: Record<StageStatus, string> = {
  waiting: "·",
  checking: "…",
  running: "▶",
  verifying: "✓?",
  rollingBack: "↶",
  passed: "✔",
  failed: "✖",
  blocked: "⊘",
};

export const TITLE = new Map(STAGES.map((s, i) => [s.id, `${i + 1}. ${s.id} — ${s.title}`]));

export function progressFor(stream: NodeJS.WriteStream, mode: "json" | "auto", verbose: boolean): Progress {
  if (mode === "json") return { event() {}, done() {} };
  return stream.isTTY ? new LiveProgress(stream) : new PlainProgress(stream, verbose);
}

class PlainProgress implements Progress {
  private lastWait = new Map<string, number>();
  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly verbose: boolean,
  ) {}

  event(e: EngineEvent): void {
    if (e.kind === "stage") {
      if (e.status === "waiting") return;
      this.out.write(
        `${e.stageId}: ${e.status}${e.reason && e.status !== "passed" ? ` (${e.reason})` : ""}\n`,
      );
    } else if (e.kind === "waiting") {
      // One line a minute per wait is enough in a log.
      const last = this.lastWait.get(e.stageId) ?? 0;
      if (Date.now() - last < 60_000) return;
      this.lastWait.set(e.stageId, Date.now());
      this.out.write(`${e.stageId}: waiting for ${e.waitingFor} (${formatMs(e.remainingMs)} left)\n`);
    } else if (this.verbose) {
      if (e.kind === "step") this.out.write(`${e.stageId}: ${e.title}\n`);
      else this.out.write(`${e.stageId}: ${e.code}, retrying in ${e.delayMs} ms (attempt ${e.attempt})\n`);
    }
  }

  done(): void {}
}

class LiveProgress implements Progress {
  private readonly status = new Map<StageId, StageStatus>();
  private readonly detail = new Map<StageId, string>();
  private drawn = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream) {
    for (const s of STAGES) this.status.set(s.id, "waiting");
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
  }

  event(e: EngineEvent): void {
    if (e.kind === "stage") {
      this.status.set(e.stageId, e.status);
      this.detail.set(e.stageId, e.reason && e.status !== "passed" ? e.reason : "");
    } else if (e.kind === "step") this.detail.set(e.stageId as StageId, e.title);
    else if (e.kind === "waiting")
      this.detail.set(e.stageId as StageId, `waiting for ${e.waitingFor} · ${formatMs(e.remainingMs)} left`);
    else this.detail.set(e.stageId as StageId, `${e.code}: retrying (attempt ${e.attempt})`);
  }

  private draw(): void {
    const width = this.out.columns || 100;
    const lines = STAGES.map((s) => {
      const st = this.status.get(s.id)!;
      const detail = this.detail.get(s.id);
      const line = `${ICON[st].padEnd(2)} ${TITLE.get(s.id)}${detail ? `  ${detail}` : ""}`;
      return line.length > width - 1 ? `${line.slice(0, width - 2)}…` : line;
    });
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A`);
    for (const line of lines) this.out.write(`\x1b[2K${line}\n`);
    this.drawn = lines.length;
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.draw();
  }
}

export function formatMs(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

/** The summary printed after a run (or by `status`). */
export function summary(result: Pick<LabResult, "runId" | "stages">): string {
  const rows = STAGES.map((s) => {
    const o = result.stages[s.id];
    const points = o?.points !== undefined ? `${o.points}/${o.maxPoints}` : `–/${s.points}`;
    const status = o?.status ?? "waiting";
    return `${ICON[status].padEnd(2)} ${(TITLE.get(s.id) ?? s.id).padEnd(72)} ${status.padEnd(11)} ${points.padStart(6)}${o?.reason && status !== "passed" ? `\n     ${o.reason}` : ""}`;
  });
  const earned = STAGES.reduce((n, s) => n + (result.stages[s.id]?.points ?? 0), 0);
  return `${rows.join("\n")}\nrun ${result.runId}: ${earned}/100 points\n`;
}
