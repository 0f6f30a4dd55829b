/**
 * A small XML writer for the query (IAM/STS) and S3 protocols. Output objects are plain data:
 * arrays become `<member>` lists (awsQuery's default, non-flattened form), Dates ISO-8601, blobs
 * base64; `undefined` and `null` members are left out, as AWS leaves out absent members.
 */
const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!).replace(/\r/g, "&#13;");
}

export function renderXmlValue(value: unknown, listItemName = "member"): string {
  if (value === undefined || value === null) return "";
  if (value instanceof Date) return escapeXml(value.toISOString());
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (Array.isArray(value)) {
    let out = "";
    for (const item of value)
      out += `<${listItemName}>${renderXmlValue(item, listItemName)}</${listItemName}>`;
    return out;
  }
  if (typeof value === "object") {
    let out = "";
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined || v === null) continue;
      out += `<${k}>${renderXmlValue(v, listItemName)}</${k}>`;
    }
    return out;
  }
  return escapeXml(String(value));
}

export function xmlElement(name: string, value: unknown, attrs = ""): string {
  return `<${name}${attrs}>${renderXmlValue(value)}</${name}>`;
}

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n';
