import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { appendLine } from "../../../lib/files.js";

/**
 * Executions' histories: each event as GetExecutionHistory returns it (the SDK's HistoryEvent
 * shape, timestamp as a Date). Not in account.json, which is rewritten on every change: a
 * persistent account appends each event as one JSON line to `<dataDir>/states/<hash of the
 * execution ARN>.jsonl` when it happens, so a history survives a restart of `sim serve` and a line
 * a crash cut short is dropped when read (an append that fails, on a full disk, is cut off at
 * once). Histories are read back from their file on first use.
 */
export interface HistoryEvent {
  id: number;
  previousEventId: number;
  timestamp: Date;
  type: string;
  [details: string]: unknown;
}

export class HistoryStore {
  private readonly histories = new Map<string, HistoryEvent[]>();
  private readonly dir: string | undefined;

  constructor(dataDir: string | undefined) {
    this.dir = dataDir === undefined ? undefined : join(dataDir, "states");
  }

  private file(executionArn: string): string {
    return join(this.dir!, `${createHash("sha256").update(executionArn).digest("hex").slice(0, 32)}.jsonl`);
  }

  /** Appends one event, numbered after the last; returns it. */
  append(
    executionArn: string,
    type: string,
    timestamp: Date,
    details: Record<string, unknown>,
  ): HistoryEvent {
    const events = this.read(executionArn);
    const id = events.length + 1;
    const event: HistoryEvent = { timestamp, type, id, previousEventId: id - 1, ...details };
    if (this.dir !== undefined) {
      if (id === 1) mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      appendLine(this.file(executionArn), `${JSON.stringify(event)}\n`);
    }
    events.push(event);
    return event;
  }

  read(executionArn: string): HistoryEvent[] {
    let events = this.histories.get(executionArn);
    if (events) return events;
    events = [];
    if (this.dir !== undefined && existsSync(this.file(executionArn))) {
      for (const line of readFileSync(this.file(executionArn), "utf8").split("\n")) {
        if (!line) continue;
        try {
          const e = JSON.parse(line) as HistoryEvent & { timestamp: string };
          events.push({ ...e, timestamp: new Date(e.timestamp) });
        } catch {
          break; // cut short by a crash: what follows was never acknowledged
        }
      }
    }
    this.histories.set(executionArn, events);
    return events;
  }

  /** Forgets an execution's history, in memory and on disk (an execution whose start was undone). */
  remove(executionArn: string): void {
    this.histories.delete(executionArn);
    if (this.dir !== undefined) rmSync(this.file(executionArn), { force: true });
  }

  /** Lets a finished execution's events go from memory (they stay on disk). */
  release(executionArn: string): void {
    if (this.dir !== undefined) this.histories.delete(executionArn);
  }
}
