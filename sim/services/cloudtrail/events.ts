import { appendFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TrailEvent } from "./records.js";

/**
 * The account's event history: every recorded event, in order, with the few fields LookupEvents
 * filters on kept beside the JSON text (100,000 events must stay cheap to hold and to search).
 * Persistent accounts append each event as one JSON line under `<dataDir>/cloudtrail/`, not in
 * account.json (which is rewritten on every change); a line a crash cut short is ignored on load,
 * and events older than CloudTrail's 90 days are dropped.
 */
export interface StoredEvent {
  seq: number;
  /** Epoch milliseconds of eventTime. */
  time: number;
  region: string;
  category: "Management" | "Data";
  eventId: string;
  eventName: string;
  eventSource: string;
  readOnly: boolean;
  username?: string;
  accessKeyId?: string;
  resources: { type: string; name: string }[];
  /** Whether a trail's own log-file delivery made it (never shown, never delivered). */
  json: string;
}

export const RETENTION_MS = 90 * 24 * 3600 * 1000;

/** LookupEvents' attribute keys → the stored field they search. */
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
  private readonly index = new Map<string, StoredEvent[]>();
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
        if (typeof stored.seq !== "number" || now - stored.time > RETENTION_MS) continue;
        this.add(stored);
      }
    }
  }

  get nextSeq(): number {
    return this.seq + 1;
  }

  /** Records one event; returns it as stored. */
  record(event: TrailEvent): StoredEvent {
    const identity = event.userIdentity as {
      type?: string;
      userName?: string;
      accessKeyId?: string;
      arn?: string;
      invokedBy?: string;
    };
    const username =
      identity.type === "IAMUser"
        ? identity.userName
        : identity.type === "AssumedRole"
          ? identity.arn?.split("/").pop()
          : identity.type === "Root"
            ? "root"
            : identity.invokedBy;
    const resources: StoredEvent["resources"] = [];
    for (const r of event.resources ?? []) {
      resources.push({ type: r.type, name: r.ARN });
      // A key is found by its id as well as its ARN (§9.5: which one AWS indexes is unconfirmed).
      if (r.type === "AWS::KMS::Key")
        resources.push({ type: r.type, name: r.ARN.slice(r.ARN.lastIndexOf("/") + 1) });
    }
    const stored: StoredEvent = {
      seq: this.seq + 1,
      time: Date.parse(event.eventTime),
      region: event.awsRegion,
      category: event.eventCategory,
      eventId: event.eventID,
      eventName: event.eventName,
      eventSource: event.eventSource,
      readOnly: event.readOnly,
      ...(username ? { username } : {}),
      ...(identity.accessKeyId ? { accessKeyId: identity.accessKeyId } : {}),
      resources,
      json: JSON.stringify(event),
    };
    this.add(stored);
    if (this.file) appendFileSync(this.file, `${JSON.stringify(stored)}\n`, { mode: 0o600 });
    return stored;
  }

  private add(e: StoredEvent): void {
    this.seq = Math.max(this.seq, e.seq);
    this.events.push(e);
    const keys = [
      `EventId\0${e.eventId}`,
      `EventName\0${e.eventName}`,
      `ReadOnly\0${e.readOnly}`,
      `EventSource\0${e.eventSource}`,
      ...(e.username ? [`Username\0${e.username}`] : []),
      ...(e.accessKeyId ? [`AccessKeyId\0${e.accessKeyId}`] : []),
      ...e.resources.flatMap((r) => [`ResourceType\0${r.type}`, `ResourceName\0${r.name}`]),
    ];
    for (const key of new Set(keys)) {
      let list = this.index.get(key);
      if (!list) {
        list = [];
        this.index.set(key, list);
      }
      list.push(e);
    }
  }

  /** Events matching one attribute (all when none), oldest first. */
  matching(key: LookupKey | undefined, value: string | undefined): readonly StoredEvent[] {
    if (key === undefined) return this.events;
    return this.index.get(`${key}\0${value}`) ?? [];
  }

  /** Events recorded after `seq` (exclusive) up to `through` (inclusive), oldest first. */
  since(seq: number, through = Number.POSITIVE_INFINITY): StoredEvent[] {
    // Sequence numbers are dense and ordered: find the start by binary search.
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
