import { appendFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { EventSummary, TrailEvent } from "./records.js";

/**
 * The account's event history: every recorded event, in order, with the few fields LookupEvents
 * and trail selectors look at kept as plain values. The full record (its JSON) is built only when
 * someone reads it — a lookup, a log file — because most calls are never looked at and a simulated
 * call must stay cheap; persistent accounts build it at once and append it as one JSON line under
 * `<dataDir>/cloudtrail/` (not in account.json, which is rewritten on every change). A line a crash
 * cut short is ignored on load, and events older than CloudTrail's 90 days are dropped.
 */
export interface StoredEvent extends EventSummary {
  seq: number;
  eventId: string;
  /** The record as JSON, once built (always, for events loaded from disk). */
  json?: string;
  /** Builds the record (dropped once built). */
  build?: () => TrailEvent;
}

export const RETENTION_MS = 90 * 24 * 3600 * 1000;

/** LookupEvents' attribute keys. */
export type LookupKey =
  | "EventId"
  | "EventName"
  | "ReadOnly"
  | "Username"
  | "ResourceType"
  | "ResourceName"
  | "EventSource"
  | "AccessKeyId";

export class EventStore {
  readonly events: StoredEvent[] = [];
  private readonly index = new Map<LookupKey, Map<string, StoredEvent[]>>();
  private readonly file?: string;
  private seq = 0;

  constructor(dataDir: string | undefined, now: number) {
    if (!dataDir) return;
    const dir = join(dataDir, "cloudtrail");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = join(dir, "events.jsonl");
    for (const name of readdirSync(dir)
      .filter((n) => n.endsWith(".jsonl"))
      .sort()) {
      for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
        if (!line) continue;
        let stored: StoredEvent;
        try {
          stored = JSON.parse(line) as StoredEvent;
        } catch {
          continue; // cut short by a crash
        }
        if (
          typeof stored.seq !== "number" ||
          typeof stored.json !== "string" ||
          now - stored.time > RETENTION_MS
        )
          continue;
        this.add(stored);
      }
    }
  }

  get nextSeq(): number {
    return this.seq + 1;
  }

  /** Records one event from its summary; `build` makes the full record when it is first read. */
  record(summary: EventSummary, eventId: string, build: () => TrailEvent): StoredEvent {
    // The summary is this call's own: it becomes the stored event rather than being copied.
    const stored = summary as StoredEvent;
    stored.seq = this.seq + 1;
    stored.eventId = eventId;
    stored.build = build;
    if (this.file) {
      this.json(stored);
      appendFileSync(this.file, `${JSON.stringify({ ...stored, build: undefined })}\n`, { mode: 0o600 });
    }
    this.add(stored);
    return stored;
  }

  /** The event's record as JSON. */
  json(e: StoredEvent): string {
    if (e.json === undefined) {
      e.json = JSON.stringify(e.build!());
      delete e.build;
    }
    return e.json;
  }

  private add(e: StoredEvent): void {
    this.seq = Math.max(this.seq, e.seq);
    this.events.push(e);
    this.put("EventId", e.eventId, e);
    this.put("EventName", e.eventName, e);
    this.put("ReadOnly", e.readOnly ? "true" : "false", e);
    this.put("EventSource", e.eventSource, e);
    if (e.username !== undefined) this.put("Username", e.username, e);
    if (e.accessKeyId !== undefined) this.put("AccessKeyId", e.accessKeyId, e);
    for (const r of e.resources) {
      this.put("ResourceType", r.type, e);
      this.put("ResourceName", r.ARN, e);
      // A key is found by its id as well as its ARN (§9.5: which one AWS indexes is unconfirmed).
      if (r.type === "AWS::KMS::Key") this.put("ResourceName", r.ARN.slice(r.ARN.lastIndexOf("/") + 1), e);
    }
  }

  private put(key: LookupKey, value: string, e: StoredEvent): void {
    let byValue = this.index.get(key);
    if (!byValue) {
      byValue = new Map();
      this.index.set(key, byValue);
    }
    const list = byValue.get(value);
    // An event is listed once per value (two resources of one type name it once).
    if (!list) byValue.set(value, [e]);
    else if (list[list.length - 1] !== e) list.push(e);
  }

  /** Events matching one attribute (all when none), oldest first. */
  matching(key: LookupKey | undefined, value: string | undefined): readonly StoredEvent[] {
    if (key === undefined) return this.events;
    return this.index.get(key)?.get(value ?? "") ?? [];
  }

  /** Events recorded after `seq` (exclusive) up to `through` (inclusive), oldest first. */
  since(seq: number, through = Number.POSITIVE_INFINITY): StoredEvent[] {
    // Sequence numbers are ordered: find the start by binary search.
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.events[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    const out: StoredEvent[] = [];
    for (let i = lo; i < this.events.length && this.events[i]!.seq <= through; i++) out.push(this.events[i]!);
    return out;
  }
}
