import { ServiceError } from "../core/errors.js";
import { MAX_NESTING } from "../core/nesting.js";
import type { ServiceProvider } from "../core/service.js";
import type { SimRequest, SimResponse } from "../core/types.js";
import { escapeXml, renderXmlValue, XML_DECLARATION } from "../core/xml.js";
import { type Codec, fromUtf8, utf8 } from "./codec.js";

/**
 * awsQuery (IAM, STS): a form-encoded `Action=<Op>&Version=<date>&...` body (or query string), and
 * XML responses `<OpResponse><OpResult>...</OpResult><ResponseMetadata>`. Nested members use dotted
 * names: `Tags.member.1.Key` is the Key of the first element of the list Tags.
 */
export const queryCodec: Codec = {
  decode(req: SimRequest, provider: ServiceProvider) {
    const params = queryParams(req);
    const operation = params.get("Action") ?? "";
    if (!operation) throw new ServiceError("MissingAction", "Missing Action", 400);
    if (!Object.hasOwn(provider.operations, operation))
      throw new ServiceError(
        "InvalidAction",
        `Could not find operation ${operation} for version ${params.get("Version") ?? "NO_VERSION_SPECIFIED"}`,
        400,
      );
    const version = params.get("Version");
    if (version !== undefined && version !== provider.apiVersion)
      throw new ServiceError(
        "InvalidAction",
        `Could not find operation ${operation} for version ${version}`,
        400,
      );
    params.delete("Action");
    params.delete("Version");
    return { operation, input: nest(params) };
  },

  encode(provider, operation, output, requestId): SimResponse {
    const ns = provider.xmlNamespace ?? "";
    const result =
      output === undefined ? "" : `<${operation}Result>${renderXmlValue(output)}</${operation}Result>`;
    const xml =
      `${XML_DECLARATION}<${operation}Response xmlns="${ns}">${result}` +
      `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${operation}Response>`;
    return {
      status: 200,
      headers: { "content-type": "text/xml", "x-amzn-requestid": requestId },
      body: utf8.encode(xml),
    };
  },

  encodeError(provider, error, requestId): SimResponse {
    const ns = provider.xmlNamespace ?? "";
    const xml =
      `${XML_DECLARATION}<ErrorResponse xmlns="${ns}"><Error><Type>${error.fault}</Type>` +
      `<Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error>` +
      `<RequestId>${requestId}</RequestId></ErrorResponse>`;
    return {
      status: error.status,
      headers: { "content-type": "text/xml", "x-amzn-requestid": requestId },
      body: utf8.encode(xml),
    };
  },
};

/** Form body parameters, then query-string ones; a body must be form-encoded. */
export function queryParams(req: SimRequest): Map<string, string> {
  const params = new Map<string, string>();
  for (const [k, values] of Object.entries(req.query)) if (values.length > 0) params.set(k, values[0]!);
  if (req.body.length > 0) {
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/x-www-form-urlencoded")
      throw new ServiceError("InvalidParameterValue", `Unsupported content type: ${type || "none"}`, 400);
    for (const [k, v] of parseForm(fromUtf8.decode(req.body))) params.set(k, v);
  }
  return params;
}

/** `a=b&c=d` with `+` as space, as HTML forms encode; malformed escapes are an error, not a crash. */
export function parseForm(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of text.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? "" : part.slice(eq + 1);
    try {
      out.push([decodeURIComponent(k.replace(/\+/g, " ")), decodeURIComponent(v.replace(/\+/g, " "))]);
    } catch {
      throw new ServiceError(
        "MalformedQueryString",
        `Malformed percent-encoding in parameter: ${k.slice(0, 64)}`,
        400,
      );
    }
  }
  return out;
}

const FORBIDDEN = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Dotted parameters into nested input: `Tags.member.2.Key` → `Tags[1].Key`,
 * `Attributes.entry.1.key/value` → `Attributes: {key: value}`. Out-of-order and sparse list indexes
 * are kept in order with holes removed.
 */
export function nest(params: Map<string, string>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  const entryMaps: {
    target: Record<string, unknown>;
    name: string;
    entries: Record<string, Record<string, string>>;
  }[] = [];
  for (const [key, value] of params) {
    const parts = key.split(".");
    // A name nests one level per segment: refused before any input is built (sim/core/nesting.ts).
    // The code and message are AWS's common error for a malformed query string
    // (https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html); that IAM and STS
    // answer an over-deep name with it is unconfirmed.
    if (parts.length > MAX_NESTING)
      throw new ServiceError(
        "InvalidQueryParameter",
        "The AWS query string is malformed or does not adhere to AWS standards.",
        400,
      );
    if (parts.some((p) => FORBIDDEN.has(p) || p === "")) continue;
    let node: Record<string, unknown> = root;
    for (let i = 0; i < parts.length; i++) {
      const seg = parts[i]!;
      const next = parts[i + 1];
      const idx = parts[i + 2];
      if ((next === "member" || next === "entry") && idx !== undefined && /^\d{1,4}$/.test(idx)) {
        if (next === "entry") {
          // map: Name.entry.N.key / Name.entry.N.value
          const field = parts[i + 3];
          if (field !== "key" && field !== "value") break;
          let rec = entryMaps.find((m) => m.target === node && m.name === seg);
          if (!rec) {
            rec = { target: node, name: seg, entries: {} };
            entryMaps.push(rec);
          }
          const entry = rec.entries[idx] ?? {};
          rec.entries[idx] = entry;
          entry[field] = value;
          break;
        }
        const existing = node[seg];
        const list: unknown[] = Array.isArray(existing) ? existing : [];
        node[seg] = list;
        const n = Number(idx) - 1;
        if (n < 0) break;
        if (i + 3 === parts.length) {
          list[n] = value;
          break;
        }
        const child = list[n];
        const obj = child && typeof child === "object" ? (child as Record<string, unknown>) : {};
        list[n] = obj;
        node = obj;
        i += 2;
        continue;
      }
      if (i === parts.length - 1) {
        node[seg] = value;
      } else {
        const child = node[seg];
        const obj =
          child && typeof child === "object" && !Array.isArray(child)
            ? (child as Record<string, unknown>)
            : {};
        node[seg] = obj;
        node = obj;
      }
    }
  }
  for (const m of entryMaps) {
    const map: Record<string, string> = {};
    for (const e of Object.values(m.entries)) if (e.key !== undefined) map[e.key] = e.value ?? "";
    m.target[m.name] = map;
  }
  compact(root);
  return root;
}

function compact(value: unknown): void {
  if (Array.isArray(value)) {
    for (let i = value.length - 1; i >= 0; i--) if (!(i in value)) value.splice(i, 1);
    for (const v of value) compact(v);
  } else if (value && typeof value === "object") {
    for (const v of Object.values(value)) compact(v);
  }
}
