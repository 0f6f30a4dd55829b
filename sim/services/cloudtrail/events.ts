import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  truncateSync,
  unlinkSync,
} from "node:fs";
import { join } from "node:path";
import { appendLine } from "../../../lib/files.js";
import type { EventSummary, PendingRecord, TrailEvent } from "./records.js";

/**
 * The account's event history: every recorded event, in order, with the few fields LookupEvents
 * and trail selectors look at kept as plain values. The full record (its JSON) is built only when
 * someone reads it — a lookup, a log file — because most calls are never looked at and a simulated
 * call must stay cheap.
 *
 * Persistent accounts build the record at once and append `<summary JSON>\t<record JSON>` as one
 * line to `<dataDir>/cloudtrail/events-<n>.jsonl` (not to account.json, which is rewritten on every
 * change; JSON text never holds a raw tab). Only the summary is kept in memory and parsed on load;
 * a record is read back from its file when it is looked up or delivered, so 100,000 events cost
 * little memory and open quickly. A file holds at most SEGMENT_EVENTS events of one UTC day, so
 * whole files age out: on load, files whose events are all older than CloudTrail's 90 days are
 * deleted and older events dropped; a line a crash cut short is ignored and cut off the file (the
 * next line appended starts clean). An append that fails (a full disk) is cut off at once. The
 * history follows the account's saves: what was recorded since the last one is dropped, from memory
 * and from the files, when the account goes back to it (committed, rollback).
 */
export interface StoredEvent extends EventSummary {
  seq: number;
  eventId: string;
  /** The record as JSON, once built (in-memory accounts; and lines of the first file format). */
  json?: string;
  /** What the record is built from (dropped once built). */
  pending?: PendingRecord | undefined;
  /** Where the record is on disk: file number, byte offset and length. */
  at?: [number, number, number];
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

/** Events per history file; a file also holds one UTC day only. */
export const SEGMENT_EVENTS = 10_000;

const DAY_MS = 24 * 3600 * 1000;

export class EventStore {
  readonly events: StoredEvent[] = [];
  private readonly index = new Map<LookupKey, Map<string, StoredEvent[]>>();
  private readonly dir?: string;
  private seq = 0;
  /** The file being appended to: its number, events, UTC day (epoch days) and size. */
  private segment = { n: 0, count: 0, day: -1, bytes: 0 };
  /** The last event and the file as they were at the account's last save. */
  private saved = { seq: 0, n: 0, count: 0, day: -1, bytes: 0 };

  constructor(
    dataDir: string | undefined,
    now: number,
    /** Makes an event's full record from what was kept of its call. */
    private readonly toRecord: (e: StoredEvent, pending: PendingRecord) => TrailEvent,
  ) {
    if (!dataDir) return;
    const dir = join(dataDir, "cloudtrail");
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // `events.jsonl` (one file, before segments) reads as file 0.
    const files = readdirSync(dir)
      .map((name) => ({ name, m: /^events(?:-(\d+))?\.jsonl$/.exec(name) }))
      .filter((f) => f.m !== null)
      .map((f) => ({ name: f.name, n: Number(f.m![1] ?? 0) }))
      .sort((a, b) => a.n - b.n);
    for (const [i, f] of files.entries()) {
      const path = join(dir, f.name);
      const data = readFileSync(path);
      const end = data.lastIndexOf(10) + 1;
      // Only the file being written when a process died can end in a torn line.
      if (end < data.length && i === files.length - 1) truncateSync(path, end);
      let kept = 0;
      let lines = 0;
      let newest = Number.NEGATIVE_INFINITY;
      for (let start = 0; start < end; ) {
        const nl = data.indexOf(10, start);
        const tab = data.subarray(start, nl).indexOf(9); // bounded: old-format lines have none
        const cut = tab >= 0 ? start + tab : nl;
        const line = start;
        start = nl + 1;
        if (cut === line) continue;
        lines++;
        let stored: StoredEvent;
        try {
          stored = JSON.parse(data.toString("utf8", line, cut)) as StoredEvent;
        } catch {
          continue; // not an event (cut short, then written over by an older version)
        }
        if (typeof stored.seq !== "number") continue;
        if (cut !== nl) stored.at = [f.n, cut + 1, nl - cut - 1];
        else if (typeof stored.json !== "string") continue;
        newest = Math.max(newest, stored.time);
        if (now - stored.time > RETENTION_MS) continue;
        this.add(stored);
        kept++;
      }
      // Numbers are never reused: after a deleted file, the next event starts file n + 1.
      if (kept === 0 && now - newest > RETENTION_MS) {
        unlinkSync(path);
        this.segment = { n: f.n, count: SEGMENT_EVENTS, day: -1, bytes: 0 };
      } else this.segment = { n: f.n, count: lines, day: Math.floor(newest / DAY_MS), bytes: end };
    }
    this.committed();
  }

  /** The account was saved: what is recorded so far stays. */
  committed(): void {
    const saved = this.saved;
    const segment = this.segment;
    saved.seq = this.seq;
    saved.n = segment.n;
    saved.count = segment.count;
    saved.day = segment.day;
    saved.bytes = segment.bytes;
  }

  /** The account went back to its last save: the events recorded since go, from memory and disk. */
  rollback(): void {
    const saved = this.saved;
    while (this.events.length > 0 && this.events[this.events.length - 1]!.seq > saved.seq)
      this.unindex(this.events.pop()!);
    this.seq = saved.seq;
    if (this.dir) {
      for (let n = this.segment.n; n > saved.n; n--) rmSync(this.path(n), { force: true });
      try {
        if (saved.n > 0) truncateSync(this.path(saved.n), saved.bytes);
      } catch {
        // A file that was deleted (aged out) is made again by the next event.
      }
    }
    this.segment = { n: saved.n, count: saved.count, day: saved.day, bytes: saved.bytes };
  }

  private path(n: number): string {
    return join(this.dir!, n === 0 ? "events.jsonl" : `events-${n}.jsonl`);
  }

  /** The file the next event is appended to (a new one per SEGMENT_EVENTS events or UTC day). */
  private segmentFor(time: number): { n: number; bytes: number } {
    const day = Math.floor(time / DAY_MS);
    if (this.segment.n === 0 || this.segment.count >= SEGMENT_EVENTS || day !== this.segment.day)
      this.segment = { n: this.segment.n + 1, count: 0, day, bytes: 0 };
    this.segment.count++;
    return this.segment;
  }

  get nextSeq(): number {
    return this.seq + 1;
  }

  /** Records one event from its summary; its full record is made from `pending` when first read. */
  record(summary: EventSummary, eventId: string, pending: PendingRecord): StoredEvent {
    // The summary is this call's own: it becomes the stored event rather than being copied.
    const stored = summary as StoredEvent;
    stored.seq = this.seq + 1;
    stored.eventId = eventId;
    if (this.dir) {
      const head = JSON.stringify(stored);
      const json = JSON.stringify(this.toRecord(stored, pending));
      const segment = this.segmentFor(stored.time);
      const offset = segment.bytes + Buffer.byteLength(head) + 1;
      segment.bytes = appendLine(this.path(segment.n), `${head}\t${json}\n`, segment.bytes);
      stored.at = [segment.n, offset, Buffer.byteLength(json)];
    } else stored.pending = pending;
    this.add(stored);
    return stored;
  }

  /** The event's record as JSON (read back from its file for a persistent account). */
  json(e: StoredEvent): string {
    if (e.json !== undefined) return e.json;
    if (e.pending) {
      e.json = JSON.stringify(this.toRecord(e, e.pending));
      e.pending = undefined;
      return e.json;
    }
    const [n, offset, length] = e.at!;
    const fd = openSync(this.path(n), "r");
    try {
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, offset);
      return buf.toString("utf8");
    } finally {
      closeSync(fd);
    }
  }

  private add(e: StoredEvent): void {
    this.seq = Math.max(this.seq, e.seq);
    this.events.push(e);
    this.indexEvent(e, false);
  }

  /** Lists `e` under each of its attributes, or takes it off them (`remove`: it was the last added). */
  private indexEvent(e: StoredEvent, remove: boolean): void {
    // Event ids are unique and rarely looked up: their index is built on the first such lookup.
    if (this.index.has("EventId")) this.put("EventId", e.eventId, e, remove);
    this.put("EventName", e.eventName, e, remove);
    this.put("ReadOnly", e.readOnly ? "true" : "false", e, remove);
    this.put("EventSource", e.eventSource, e, remove);
    if (e.username !== undefined) this.put("Username", e.username, e, remove);
    if (e.accessKeyId !== undefined) this.put("AccessKeyId", e.accessKeyId, e, remove);
    for (const r of e.resources) {
      this.put("ResourceType", r.type, e, remove);
      this.put("ResourceName", r.ARN, e, remove);
      // A key is found by its id as well as its ARN (§9.5: which one AWS indexes is unconfirmed).
      if (r.type === "AWS::KMS::Key")
        this.put("ResourceName", r.ARN.slice(r.ARN.lastIndexOf("/") + 1), e, remove);
    }
  }

  private unindex(e: StoredEvent): void {
    this.indexEvent(e, true);
  }

  private put(key: LookupKey, value: string, e: StoredEvent, remove = false): void {
    if (remove) {
      const list = this.index.get(key)?.get(value);
      if (list && list[list.length - 1] === e) list.pop();
      return;
    }
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
    if (key === "EventId" && !this.index.has(key)) {
      this.index.set(key, new Map());
      for (const e of this.events) this.put(key, e.eventId, e);
    }
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
