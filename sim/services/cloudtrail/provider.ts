import { createHash, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { DiskFullError } from "../../../lib/files.js";
import type { Account } from "../../account.js";
import { ServiceError } from "../../core/errors.js";
import { uuid } from "../../core/random.js";
import {
  type CallContext,
  callContext,
  globalContextKeys,
  type OperationInfo,
  replaceContents,
  type ServiceProvider,
} from "../../core/service.js";
import type { Principal } from "../../core/types.js";
import { bool, int, list, str, struct, timestamp, validate } from "../../core/validate.js";
import { identityDenial } from "../../policy/index.js";
import { s3Allowed } from "../s3/access.js";
import { EventStore, type LookupKey, RETENTION_MS, type StoredEvent } from "./events.js";
import { GLOBAL_SOURCES, S3_DATA, slim, summarize, toTrailEvent, trailTime } from "./records.js";

/**
 * The simulated AWS CloudTrail (awsJson1_1): trails and their log delivery into S3, the event
 * history every call to every service of the account lands in, and LookupEvents over it.
 *
 * Deliberate simplifications: no digest files, no CloudWatch Logs or SNS, no Insights, no
 * organisation trails; a multi-Region trail logs every Region of this one account. A trail's files
 * are written through S3 as `cloudtrail.amazonaws.com` (so the bucket policy decides, as on AWS).
 */

interface Tag {
  Key: string;
  Value?: string;
}

interface BasicSelector {
  ReadWriteType?: "ReadOnly" | "WriteOnly" | "All";
  IncludeManagementEvents?: boolean;
  DataResources?: { Type?: string; Values?: string[] }[];
  ExcludeManagementEventSources?: string[];
}

interface FieldSelector {
  Field: string;
  Equals?: string[];
  NotEquals?: string[];
  StartsWith?: string[];
  NotStartsWith?: string[];
  EndsWith?: string[];
  NotEndsWith?: string[];
}

interface AdvancedSelector {
  Name?: string;
  FieldSelectors: FieldSelector[];
}

export interface TrailRecord {
  name: string;
  arn: string;
  region: string;
  s3BucketName: string;
  s3KeyPrefix?: string;
  includeGlobalServiceEvents: boolean;
  isMultiRegionTrail: boolean;
  logFileValidationEnabled: boolean;
  kmsKeyId?: string;
  tags: Tag[];
  eventSelectors?: BasicSelector[];
  advancedEventSelectors?: AdvancedSelector[];
  isLogging: boolean;
  startLoggingTime?: string;
  stopLoggingTime?: string;
  latestDeliveryTime?: string;
  latestDeliveryAttemptTime?: string;
  latestDeliveryError?: string;
  /** Events up to this sequence number are delivered (or were recorded while it did not log). */
  deliveredSeq: number;
  /** When logging stopped: the last event it still owes a file for. */
  stopSeq?: number;
  /** The next delivery is not before this (epoch ms): files come every interval, not at once. */
  nextDeliveryAt?: number;
}

export interface CloudTrailState {
  trails: Record<string, TrailRecord>;
}

const CLOUDTRAIL: Principal = {
  type: "AWSService",
  arn: "cloudtrail.amazonaws.com",
  accountId: "",
  userId: "cloudtrail.amazonaws.com",
  service: "cloudtrail.amazonaws.com",
};

const LOOKUP_KEYS: readonly LookupKey[] = [
  "EventId",
  "EventName",
  "ReadOnly",
  "Username",
  "ResourceType",
  "ResourceName",
  "EventSource",
  "AccessKeyId",
];

const TRAIL_NAME = /^[A-Za-z0-9._-]+$/;

export class CloudTrailService implements ServiceProvider {
  readonly service = "cloudtrail";
  readonly protocol = "awsJson1_1" as const;
  readonly eventSource = "cloudtrail.amazonaws.com";
  readonly targetPrefixes = [
    "CloudTrail_20131101",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101",
  ] as const;
  readonly operations: Readonly<Record<string, OperationInfo>> = {
    CreateTrail: { readOnly: false },
    GetTrail: { readOnly: true },
    DescribeTrails: { readOnly: true },
    ListTrails: { readOnly: true },
    DeleteTrail: { readOnly: false },
    StartLogging: { readOnly: false },
    StopLogging: { readOnly: false },
    GetTrailStatus: { readOnly: true },
    PutEventSelectors: { readOnly: false },
    GetEventSelectors: { readOnly: true },
    AddTags: { readOnly: false },
    RemoveTags: { readOnly: false },
    ListTags: { readOnly: true },
    LookupEvents: { readOnly: true },
  };

  readonly state: CloudTrailState;
  readonly events: EventStore;
  /** LookupEvents tokens per Region (2 per second, on the account's clock). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly account: Account,
    state?: CloudTrailState,
  ) {
    this.state = state ?? { trails: {} };
    this.events = new EventStore(account.dataDir, account.now().getTime(), (e, pending) =>
      toTrailEvent(pending, account, e.eventId, e),
    );
    for (const t of Object.values(this.state.trails))
      t.deliveredSeq = Math.min(t.deliveredSeq, this.events.nextSeq - 1);
    account.observe((record) => {
      // A trail's own log-file writes are not events of the account.
      if (record.ctx.principal.service === CLOUDTRAIL.service) return;
      // Data events never reach the event history; a trail logs them only if its selectors ask at
      // the time of the call. With no trail asking, there is nothing to keep.
      if (record.service === "s3" && S3_DATA.has(record.operation) && !this.wantsDataEvents()) return;
      const summary = summarize(record, account);
      const eventId = uuid();
      this.events.record(summary, eventId, slim(record));
    });
    account.onTick((now) => this.deliver(now));
  }

  /** The account went back to its last save (Account.rollback): the trails as saved, and the history too. */
  restore(saved: CloudTrailState): void {
    this.events.rollback();
    replaceContents(this.state, saved);
    for (const t of Object.values(this.state.trails))
      t.deliveredSeq = Math.min(t.deliveredSeq, this.events.nextSeq - 1);
  }

  /** Whether a logging trail (or one stopping) selects any data events. */
  private wantsDataEvents(): boolean {
    for (const name in this.state.trails) {
      const t = this.state.trails[name]!;
      if (!t.isLogging && t.stopSeq === undefined) continue;
      if (t.advancedEventSelectors) return true;
      if (t.eventSelectors?.some((e) => (e.DataResources ?? []).length > 0)) return true;
    }
    return false;
  }

  // ---- trails ----------------------------------------------------------------------------------

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html
  CreateTrail(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      Name: string;
      S3BucketName: string;
      S3KeyPrefix?: string;
      IncludeGlobalServiceEvents?: boolean;
      IsMultiRegionTrail?: boolean;
      EnableLogFileValidation?: boolean;
      KmsKeyId?: string;
      TagsList?: Tag[];
    }>(input, {
      Name: str({ required: true }),
      S3BucketName: str({ required: true }),
      S3KeyPrefix: str({ max: 200 }),
      SnsTopicName: str(),
      IncludeGlobalServiceEvents: bool(),
      IsMultiRegionTrail: bool(),
      EnableLogFileValidation: bool(),
      CloudWatchLogsLogGroupArn: str(),
      CloudWatchLogsRoleArn: str(),
      KmsKeyId: str(),
      IsOrganizationTrail: bool(),
      TagsList: list(struct({ Key: str({ required: true, max: 128 }), Value: str({ max: 256 }) }), {
        max: 200,
      }),
    });
    checkTrailName(req.Name);
    const arn = this.trailArn(ctx, req.Name);
    this.authorizeCall(ctx, "cloudtrail:CreateTrail", arn);
    if (this.state.trails[arn])
      throw new ServiceError(
        "TrailAlreadyExistsException",
        `Trail ${req.Name} already exists for customer: ${ctx.accountId}`,
      );
    this.checkBucket(ctx, req.S3BucketName, req.S3KeyPrefix, arn);
    const trail: TrailRecord = {
      name: req.Name,
      arn,
      region: ctx.region,
      s3BucketName: req.S3BucketName,
      ...(req.S3KeyPrefix ? { s3KeyPrefix: req.S3KeyPrefix } : {}),
      includeGlobalServiceEvents: req.IncludeGlobalServiceEvents ?? true,
      isMultiRegionTrail: req.IsMultiRegionTrail ?? false,
      logFileValidationEnabled: req.EnableLogFileValidation ?? false,
      ...(req.KmsKeyId ? { kmsKeyId: req.KmsKeyId } : {}),
      tags: req.TagsList ?? [],
      isLogging: false,
      deliveredSeq: this.events.nextSeq - 1,
    };
    this.state.trails[arn] = trail;
    return {
      Name: trail.name,
      S3BucketName: trail.s3BucketName,
      S3KeyPrefix: trail.s3KeyPrefix,
      IncludeGlobalServiceEvents: trail.includeGlobalServiceEvents,
      IsMultiRegionTrail: trail.isMultiRegionTrail,
      TrailARN: trail.arn,
      LogFileValidationEnabled: trail.logFileValidationEnabled,
      KmsKeyId: trail.kmsKeyId,
      IsOrganizationTrail: false,
    };
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrail.html
  GetTrail(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ Name: string }>(input, { Name: str({ required: true }) });
    const trail = this.findTrail(ctx, req.Name);
    this.authorizeCall(ctx, "cloudtrail:GetTrail", trail.arn);
    return { Trail: describe(trail) };
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html
  DescribeTrails(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ trailNameList?: string[]; includeShadowTrails?: boolean }>(input, {
      trailNameList: list(str()),
      includeShadowTrails: bool(),
    });
    this.authorizeCall(ctx, "cloudtrail:DescribeTrails", "*");
    const all = Object.values(this.state.trails).filter(
      (t) => t.region === ctx.region || (t.isMultiRegionTrail && req.includeShadowTrails !== false),
    );
    const wanted = req.trailNameList;
    const trails =
      wanted && wanted.length > 0
        ? all.filter((t) => wanted.includes(t.name) || wanted.includes(t.arn))
        : all;
    return { trailList: trails.map(describe) };
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_ListTrails.html
  ListTrails(_input: Record<string, unknown>, ctx: CallContext) {
    this.authorizeCall(ctx, "cloudtrail:ListTrails", "*");
    return {
      Trails: Object.values(this.state.trails).map((t) => ({
        TrailARN: t.arn,
        Name: t.name,
        HomeRegion: t.region,
      })),
    };
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DeleteTrail.html
  DeleteTrail(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ Name: string }>(input, { Name: str({ required: true }) });
    const trail = this.findTrail(ctx, req.Name);
    this.authorizeCall(ctx, "cloudtrail:DeleteTrail", trail.arn);
    delete this.state.trails[trail.arn];
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_StartLogging.html
  StartLogging(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ Name: string }>(input, { Name: str({ required: true }) });
    const trail = this.findTrail(ctx, req.Name);
    this.authorizeCall(ctx, "cloudtrail:StartLogging", trail.arn);
    if (trail.isLogging) return;
    trail.isLogging = true;
    trail.startLoggingTime = ctx.now.toISOString();
    trail.nextDeliveryAt = ctx.now.getTime() + this.account.options.trailDeliveryIntervalMs;
    delete trail.stopSeq;
    // What happened while the trail did not log is never delivered; this call itself is.
    trail.deliveredSeq = this.events.nextSeq - 1;
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_StopLogging.html
  StopLogging(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ Name: string }>(input, { Name: str({ required: true }) });
    const trail = this.findTrail(ctx, req.Name);
    this.authorizeCall(ctx, "cloudtrail:StopLogging", trail.arn);
    if (!trail.isLogging) return;
    trail.isLogging = false;
    trail.stopLoggingTime = ctx.now.toISOString();
    // The StopLogging call is still logged: one last file may land after logging stopped (§7).
    trail.stopSeq = this.events.nextSeq;
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html
  GetTrailStatus(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ Name: string }>(input, { Name: str({ required: true }) });
    const trail = this.findTrail(ctx, req.Name);
    this.authorizeCall(ctx, "cloudtrail:GetTrailStatus", trail.arn);
    const date = (iso?: string) => (iso ? new Date(iso) : undefined);
    const text = (iso?: string) => (iso ? trailTime(new Date(iso)) : undefined);
    return {
      IsLogging: trail.isLogging,
      LatestDeliveryError: trail.latestDeliveryError,
      LatestDeliveryTime: date(trail.latestDeliveryTime),
      StartLoggingTime: date(trail.startLoggingTime),
      StopLoggingTime: date(trail.stopLoggingTime),
      LatestDeliveryAttemptTime: text(trail.latestDeliveryAttemptTime) ?? "",
      LatestNotificationAttemptTime: "",
      LatestNotificationAttemptSucceeded: "",
      LatestDeliveryAttemptSucceeded: text(trail.latestDeliveryTime) ?? "",
      TimeLoggingStarted: text(trail.startLoggingTime) ?? "",
      TimeLoggingStopped: text(trail.stopLoggingTime) ?? "",
    };
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_PutEventSelectors.html
  PutEventSelectors(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      TrailName: string;
      EventSelectors?: BasicSelector[];
      AdvancedEventSelectors?: AdvancedSelector[];
    }>(input, {
      TrailName: str({ required: true }),
      EventSelectors: list(
        struct({
          ReadWriteType: str({ enum: ["ReadOnly", "WriteOnly", "All"] }),
          IncludeManagementEvents: bool(),
          DataResources: list(struct({ Type: str(), Values: list(str()) })),
          ExcludeManagementEventSources: list(str()),
        }),
        { max: 5 },
      ),
      AdvancedEventSelectors: list(
        struct({
          Name: str(),
          FieldSelectors: list(
            struct({
              Field: str({ required: true }),
              Equals: list(str()),
              NotEquals: list(str()),
              StartsWith: list(str()),
              NotStartsWith: list(str()),
              EndsWith: list(str()),
              NotEndsWith: list(str()),
            }),
            { required: true, min: 1 },
          ),
        }),
      ),
    });
    const trail = this.findTrail(ctx, req.TrailName);
    this.authorizeCall(ctx, "cloudtrail:PutEventSelectors", trail.arn);
    if ((req.EventSelectors === undefined) === (req.AdvancedEventSelectors === undefined))
      throw new ServiceError(
        "InvalidParameterCombinationException",
        "You cannot specify both EventSelectors and AdvancedEventSelectors in a PutEventSelectors request. Use EventSelectors to configure basic event selectors or AdvancedEventSelectors to configure advanced event selectors.",
      );
    if (req.EventSelectors) {
      trail.eventSelectors = req.EventSelectors;
      delete trail.advancedEventSelectors;
      return { TrailARN: trail.arn, EventSelectors: req.EventSelectors };
    }
    trail.advancedEventSelectors = req.AdvancedEventSelectors!;
    delete trail.eventSelectors;
    return { TrailARN: trail.arn, AdvancedEventSelectors: req.AdvancedEventSelectors };
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetEventSelectors.html
  GetEventSelectors(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ TrailName: string }>(input, { TrailName: str({ required: true }) });
    const trail = this.findTrail(ctx, req.TrailName);
    this.authorizeCall(ctx, "cloudtrail:GetEventSelectors", trail.arn);
    if (trail.advancedEventSelectors)
      return { TrailARN: trail.arn, AdvancedEventSelectors: trail.advancedEventSelectors };
    return { TrailARN: trail.arn, EventSelectors: trail.eventSelectors ?? DEFAULT_SELECTORS };
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_AddTags.html
  AddTags(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ ResourceId: string; TagsList: Tag[] }>(input, {
      ResourceId: str({ required: true }),
      TagsList: list(struct({ Key: str({ required: true, max: 128 }), Value: str({ max: 256 }) }), {
        required: true,
      }),
    });
    const trail = this.findTrail(ctx, req.ResourceId);
    this.authorizeCall(ctx, "cloudtrail:AddTags", trail.arn);
    for (const tag of req.TagsList) {
      const existing = trail.tags.find((t) => t.Key === tag.Key);
      if (existing) existing.Value = tag.Value;
      else trail.tags.push(tag);
    }
    if (trail.tags.length > 50)
      throw new ServiceError(
        "TagsLimitExceededException",
        "The number of tags per trail has exceeded the permitted amount. Currently, the limit is 50.",
      );
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_RemoveTags.html
  RemoveTags(input: Record<string, unknown>, ctx: CallContext): void {
    const req = validate<{ ResourceId: string; TagsList: Tag[] }>(input, {
      ResourceId: str({ required: true }),
      TagsList: list(struct({ Key: str({ required: true }), Value: str() }), { required: true }),
    });
    const trail = this.findTrail(ctx, req.ResourceId);
    this.authorizeCall(ctx, "cloudtrail:RemoveTags", trail.arn);
    trail.tags = trail.tags.filter((t) => !req.TagsList.some((r) => r.Key === t.Key));
  }

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_ListTags.html
  ListTags(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{ ResourceIdList: string[] }>(input, {
      ResourceIdList: list(str(), { required: true, max: 20 }),
    });
    // Authorised per trail (the Service Authorization Reference gives ListTags the trail resource).
    return {
      ResourceTagList: req.ResourceIdList.map((id) => {
        const trail = this.findTrail(ctx, id);
        this.authorizeCall(ctx, "cloudtrail:ListTags", trail.arn);
        return { ResourceId: trail.arn, TagsList: trail.tags };
      }),
    };
  }

  // ---- event history ---------------------------------------------------------------------------

  // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html
  LookupEvents(input: Record<string, unknown>, ctx: CallContext) {
    const req = validate<{
      LookupAttributes?: { AttributeKey: LookupKey; AttributeValue: string }[];
      StartTime?: Date;
      EndTime?: Date;
      EventCategory?: string;
      MaxResults?: number;
      NextToken?: string;
    }>(input, {
      LookupAttributes: list(
        struct({
          // Checked below: CloudTrail answers an unknown key with its own exception.
          AttributeKey: str({ required: true }),
          AttributeValue: str({ required: true, min: 1, max: 2000 }),
        }),
      ),
      StartTime: timestamp(),
      EndTime: timestamp(),
      EventCategory: str({ enum: ["insight"] }),
      MaxResults: int(),
      NextToken: str(),
    });
    this.authorizeCall(ctx, "cloudtrail:LookupEvents", "*");
    this.throttle(ctx);
    const attrs = req.LookupAttributes ?? [];
    // AWS allows one attribute per request, of eight keys; both messages are unconfirmed.
    if (attrs.length > 1)
      throw new ServiceError(
        "InvalidLookupAttributesException",
        "You cannot specify more than one lookup attribute.",
      );
    const attr = attrs[0];
    if (attr && !LOOKUP_KEYS.includes(attr.AttributeKey))
      throw new ServiceError(
        "InvalidLookupAttributesException",
        `Invalid lookup attribute key: ${attr.AttributeKey}. Valid keys are: ${LOOKUP_KEYS.join(", ")}.`,
      );
    if (req.MaxResults !== undefined && (req.MaxResults < 1 || req.MaxResults > 50))
      throw new ServiceError(
        "InvalidMaxResultsException",
        "Value for parameter MaxResults is not valid. MaxResults must be a number between 1 and 50.",
      );
    const now = ctx.now.getTime();
    const start = req.StartTime?.getTime() ?? now - RETENTION_MS;
    const end = req.EndTime?.getTime() ?? now;
    if (start > end)
      throw new ServiceError(
        "InvalidTimeRangeException",
        "Start time must be less than or equal to end time.",
      );
    if (req.EventCategory === "insight") return { Events: [] };
    const visibleUntil = Math.min(end, now - this.account.options.trailLookupDelayMs);
    let cursor = Number.POSITIVE_INFINITY;
    // A token names where the last page stopped and the query it belongs to: AWS refuses a token
    // "previously used in a request with different parameters" (message unconfirmed).
    const query = createHash("sha256")
      .update(
        JSON.stringify([attrs[0] ?? null, req.StartTime?.getTime(), req.EndTime?.getTime(), ctx.region]),
      )
      .digest("base64url")
      .slice(0, 16);
    if (req.NextToken !== undefined) {
      const m = /^ct1\.(\d+)\.([\w-]{16})$/.exec(Buffer.from(req.NextToken, "base64url").toString("latin1"));
      if (!m || m[2] !== query) throw new ServiceError("InvalidNextTokenException", "Invalid NextToken");
      cursor = Number(m[1]);
    }
    const max = req.MaxResults ?? 50;
    const candidates = this.events.matching(attrs[0]?.AttributeKey, attrs[0]?.AttributeValue);
    const found: StoredEvent[] = [];
    let next: string | undefined;
    // Newest first: walk the (time-ordered) list from its end.
    for (let i = candidates.length - 1; i >= 0; i--) {
      const e = candidates[i]!;
      if (e.seq >= cursor || e.category !== "Management") continue;
      if (e.time > visibleUntil || e.time < start) continue;
      if (e.region !== ctx.region && !(GLOBAL_SOURCES.has(e.eventSource) && e.region === "us-east-1"))
        continue;
      if (found.length === max) {
        next = Buffer.from(`ct1.${found.at(-1)!.seq}.${query}`, "latin1").toString("base64url");
        break;
      }
      found.push(e);
    }
    return {
      Events: found.map((e) => ({
        EventId: e.eventId,
        EventName: e.eventName,
        ReadOnly: String(e.readOnly),
        AccessKeyId: e.accessKeyId,
        EventTime: new Date(e.time),
        EventSource: e.eventSource,
        Username: e.username,
        Resources: e.resources.map((r) => ({ ResourceType: r.type, ResourceName: r.ARN })),
        CloudTrailEvent: this.events.json(e),
      })),
      NextToken: next,
    };
  }

  // ---- delivery --------------------------------------------------------------------------------

  /** Run before every request: each logging trail writes a file of its pending records when due. */
  private deliver(now: Date): void {
    const interval = this.account.options.trailDeliveryIntervalMs;
    for (const trail of Object.values(this.state.trails)) {
      if (!trail.isLogging && trail.stopSeq === undefined) continue;
      if (now.getTime() < (trail.nextDeliveryAt ?? 0)) continue;
      const through = trail.isLogging ? Number.POSITIVE_INFINITY : trail.stopSeq!;
      const pending = this.events.since(trail.deliveredSeq, through);
      const records = pending.filter((e) => selects(trail, e));
      if (records.length === 0) {
        if (pending.length > 0) {
          trail.deliveredSeq = pending.at(-1)!.seq;
          this.account.changed();
        }
        if (!trail.isLogging) delete trail.stopSeq;
        continue;
      }
      trail.latestDeliveryAttemptTime = now.toISOString();
      trail.nextDeliveryAt = now.getTime() + interval;
      try {
        this.writeLogFile(trail, records, now);
        trail.latestDeliveryTime = now.toISOString();
        delete trail.latestDeliveryError;
        trail.deliveredSeq = pending.at(-1)!.seq;
        if (!trail.isLogging) delete trail.stopSeq;
      } catch (err) {
        // The simulator's own disk is full: nothing was written, and the records are tried again at
        // the next delivery (AWS's delivery errors name the bucket's problems, not CloudTrail's own).
        if (!(err instanceof DiskFullError)) {
          if (!(err instanceof ServiceError)) throw err;
          // Kept until a delivery succeeds; the records are tried again next time.
          trail.latestDeliveryError = err.code;
        }
      }
      this.account.changed();
    }
  }

  private writeLogFile(trail: TrailRecord, records: StoredEvent[], now: Date): void {
    const acct = this.account.accountId;
    const iso = now.toISOString();
    const [y, m, d] = [iso.slice(0, 4), iso.slice(5, 7), iso.slice(8, 10)];
    const stamp = `${y}${m}${d}T${iso.slice(11, 13)}${iso.slice(14, 16)}Z`;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const random = Array.from(randomBytes(16), (b) => alphabet[b % alphabet.length]).join("");
    const prefix = trail.s3KeyPrefix ? `${trail.s3KeyPrefix}/` : "";
    const key = `${prefix}AWSLogs/${acct}/CloudTrail/${trail.region}/${y}/${m}/${d}/${acct}_CloudTrail_${trail.region}_${stamp}_${random}.json.gz`;
    const body = gzipSync(`{"Records":[${records.map((r) => this.events.json(r)).join(",")}]}`);
    const ctx = callContext({
      accountId: acct,
      region: trail.region,
      requestId: randomBytes(8).toString("hex").toUpperCase(),
      principal: CLOUDTRAIL,
      now,
      sourceIp: "cloudtrail.amazonaws.com",
      userAgent: "cloudtrail.amazonaws.com",
      secureTransport: true,
      serviceKeys: { "aws:SourceArn": trail.arn, "aws:SourceAccount": acct },
    });
    this.account.call(
      this.account.s3,
      "PutObject",
      {
        Bucket: trail.s3BucketName,
        Key: key,
        method: "PUT",
        query: {},
        headers: {
          "x-amz-acl": "bucket-owner-full-control",
          "content-type": "application/json",
          "content-encoding": "gzip",
          "content-length": String(body.length),
        },
        body,
        virtualHosted: false,
      },
      ctx,
    );
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private trailArn(ctx: CallContext, name: string): string {
    return `arn:aws:cloudtrail:${ctx.region}:${ctx.accountId}:trail/${name}`;
  }

  /** A trail by name (in the caller's Region) or by ARN, or TrailNotFoundException. */
  private findTrail(ctx: CallContext, nameOrArn: string): TrailRecord {
    const trail = nameOrArn.startsWith("arn:")
      ? this.state.trails[nameOrArn]
      : this.state.trails[this.trailArn(ctx, nameOrArn)];
    if (!trail) {
      if (!nameOrArn.startsWith("arn:")) checkTrailName(nameOrArn);
      throw new ServiceError(
        "TrailNotFoundException",
        `Unknown trail: ${nameOrArn} for the user: ${ctx.accountId}`,
      );
    }
    return trail;
  }

  /**
   * CloudTrail checks the bucket when a trail is created: it must exist, and its policy must let
   * CloudTrail read its ACL and write under `[prefix/]AWSLogs/<account>/`, judged with this trail
   * as `aws:SourceArn` (aws-subset §3.1).
   */
  private checkBucket(
    ctx: CallContext,
    bucketName: string,
    prefix: string | undefined,
    trailArn: string,
  ): void {
    const bucket = this.account.s3.state.buckets[bucketName];
    if (!bucket)
      throw new ServiceError("S3BucketDoesNotExistException", `S3 bucket ${bucketName} does not exist.`);
    const keys = globalContextKeys({ ...ctx, principal: CLOUDTRAIL, viaService: undefined });
    keys["aws:SourceArn"] = trailArn;
    keys["aws:SourceAccount"] = ctx.accountId;
    keys["aws:SecureTransport"] = true;
    const logs = `arn:aws:s3:::${bucketName}/${prefix ? `${prefix}/` : ""}AWSLogs/${ctx.accountId}/CloudTrail/${ctx.region}/`;
    const ok =
      s3Allowed(this.account.s3, CLOUDTRAIL, "s3:GetBucketAcl", `arn:aws:s3:::${bucketName}`, bucket, keys) &&
      s3Allowed(this.account.s3, CLOUDTRAIL, "s3:PutObject", logs, bucket, {
        ...keys, // a copy: the ACL key is for this check only
        "s3:x-amz-acl": "bucket-owner-full-control",
      });
    if (!ok)
      throw new ServiceError(
        "InsufficientS3BucketPolicyException",
        `Incorrect S3 bucket policy is detected for bucket: ${bucketName}`,
      );
  }

  /** CloudTrail's own API is authorised by the caller's IAM policies. */
  private authorizeCall(ctx: CallContext, action: string, resource: string): void {
    const denial = identityDenial(
      { principal: ctx.principal, action, resource, context: globalContextKeys(ctx) },
      this.account.iam.identityPolicies(ctx.principal),
      this.account.accountId,
    );
    if (denial) throw new ServiceError("AccessDeniedException", denial);
  }

  /** 2 LookupEvents per second per account and Region (aws-subset §3.4), on the account's clock. */
  private throttle(ctx: CallContext): void {
    const rate = this.account.options.trailLookupsPerSecond;
    if (rate <= 0) return;
    const now = ctx.now.getTime();
    const b = this.buckets.get(ctx.region) ?? { tokens: rate, at: now };
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.buckets.set(ctx.region, b);
    if (b.tokens < 1) throw new ServiceError("ThrottlingException", "Rate exceeded");
    b.tokens -= 1;
  }
}

const DEFAULT_SELECTORS: BasicSelector[] = [
  {
    ReadWriteType: "All",
    IncludeManagementEvents: true,
    DataResources: [],
    ExcludeManagementEventSources: [],
  },
];

function describe(t: TrailRecord) {
  return {
    Name: t.name,
    S3BucketName: t.s3BucketName,
    S3KeyPrefix: t.s3KeyPrefix,
    IncludeGlobalServiceEvents: t.includeGlobalServiceEvents,
    IsMultiRegionTrail: t.isMultiRegionTrail,
    HomeRegion: t.region,
    TrailARN: t.arn,
    LogFileValidationEnabled: t.logFileValidationEnabled,
    KmsKeyId: t.kmsKeyId,
    HasCustomEventSelectors: t.eventSelectors !== undefined || t.advancedEventSelectors !== undefined,
    HasInsightSelectors: false,
    IsOrganizationTrail: false,
  };
}

/** Trail name rules (aws-subset §3.2), in moto's words where AWS's are unrecorded. */
function checkTrailName(name: string): void {
  const bad = (message: string) => new ServiceError("InvalidTrailNameException", message);
  if (name.length < 3)
    throw bad(
      `Trail name too short. Minimum allowed length: 3 characters. Specified name length: ${name.length} characters.`,
    );
  if (name.length > 128)
    throw bad(
      `Trail name too long. Maximum allowed length: 128 characters. Specified name length: ${name.length} characters.`,
    );
  if (!/^[A-Za-z0-9]/.test(name)) throw bad("Trail name must starts with a letter or number.");
  if (!/[A-Za-z0-9]$/.test(name)) throw bad("Trail name must ends with a letter or number.");
  if (!TRAIL_NAME.test(name))
    throw bad(
      "Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, periods (.), hyphens (-), and underscores (_).",
    );
  if (/[._-]{2}/.test(name))
    throw bad(`Trail name cannot have adjacent periods, underscores or dashes. Specified name: ${name}`);
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) throw bad("Trail name cannot be formatted as an IP address.");
}

/** Whether a trail logs an event: its Region, and its event selectors (basic or advanced). */
function selects(t: TrailRecord, e: StoredEvent): boolean {
  const inRegion =
    e.region === t.region ||
    t.isMultiRegionTrail ||
    (t.includeGlobalServiceEvents && GLOBAL_SOURCES.has(e.eventSource));
  if (!inRegion) return false;
  if (t.advancedEventSelectors)
    return t.advancedEventSelectors.some((s) => s.FieldSelectors.every((f) => fieldMatches(f, e)));
  const selectors = t.eventSelectors ?? DEFAULT_SELECTORS;
  return selectors.some((s) => {
    const rw = s.ReadWriteType ?? "All";
    if ((rw === "ReadOnly" && !e.readOnly) || (rw === "WriteOnly" && e.readOnly)) return false;
    if (e.category === "Management")
      return (
        (s.IncludeManagementEvents ?? true) &&
        !(s.ExcludeManagementEventSources ?? []).includes(e.eventSource)
      );
    return (s.DataResources ?? []).some(
      (d) =>
        d.Type === "AWS::S3::Object" &&
        e.resources.some(
          (r) =>
            r.type === "AWS::S3::Object" &&
            (d.Values ?? []).some((v) => v === "arn:aws:s3" || v === "arn:aws:s3:::" || r.ARN.startsWith(v)),
        ),
    );
  });
}

function fieldMatches(f: FieldSelector, e: StoredEvent): boolean {
  const values: string[] =
    f.Field === "eventCategory"
      ? [e.category]
      : f.Field === "readOnly"
        ? [String(e.readOnly)]
        : f.Field === "eventSource"
          ? [e.eventSource]
          : f.Field === "eventName"
            ? [e.eventName]
            : f.Field === "resources.type"
              ? e.resources.map((r) => r.type)
              : f.Field === "resources.ARN"
                ? e.resources.map((r) => r.ARN)
                : [];
  const any = (list: string[] | undefined, test: (v: string, x: string) => boolean) =>
    list === undefined || values.some((v) => list.some((x) => test(v, x)));
  const none = (list: string[] | undefined, test: (v: string, x: string) => boolean) =>
    list === undefined || !values.some((v) => list.some((x) => test(v, x)));
  return (
    any(f.Equals, (v, x) => v === x) &&
    none(f.NotEquals, (v, x) => v === x) &&
    any(f.StartsWith, (v, x) => v.startsWith(x)) &&
    none(f.NotStartsWith, (v, x) => v.startsWith(x)) &&
    any(f.EndsWith, (v, x) => v.endsWith(x)) &&
    none(f.NotEndsWith, (v, x) => v.endsWith(x))
  );
}
