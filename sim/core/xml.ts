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

// -------------------------------------------------------------------------------------------------
// S3's XML: flattened lists and attributes

/**
 * Renders a value the way S3 writes its documents. Arrays are *flattened*: `{Contents: [a, b]}`
 * becomes `<Contents>a</Contents><Contents>b</Contents>`; a wrapped list is written as an object
 * holding the array (`{TagSet: {Tag: [...]}}` → `<TagSet><Tag>..</Tag><Tag>..</Tag></TagSet>`).
 * Keys starting with `@` are attributes of the element that holds them (`xsi:type` on a Grantee).
 */
export function renderFlatXml(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (value instanceof Date) return escapeXml(value.toISOString());
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (typeof value !== "object" || Array.isArray(value)) return escapeXml(String(value));
  let out = "";
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined || v === null || k.startsWith("@")) continue;
    for (const item of Array.isArray(v) ? v : [v]) out += flatElement(k, item);
  }
  return out;
}

/** One element in S3's flavour: `@`-keys of an object value become its attributes. */
export function flatElement(name: string, value: unknown, extraAttrs = ""): string {
  let attrs = extraAttrs;
  if (value !== null && typeof value === "object" && !(value instanceof Date) && !Array.isArray(value))
    for (const [k, v] of Object.entries(value as Record<string, unknown>))
      if (k.startsWith("@") && v !== undefined) attrs += ` ${k.slice(1)}="${escapeXml(String(v))}"`;
  return `<${name}${attrs}>${renderFlatXml(value)}</${name}>`;
}

// -------------------------------------------------------------------------------------------------
// A small, safe XML parser (request bodies: S3 configuration documents)

/** An element: its name as written (prefix included), its child elements and its text. */
export interface XmlNode {
  name: string;
  children: XmlNode[];
  /** The element's own character data (entities resolved, CDATA included), concatenated. */
  text: string;
}

export class XmlParseError extends Error {
  override readonly name = "XmlParseError";
}

export interface XmlLimits {
  /** Deepest nesting accepted (the root is depth 1). */
  maxDepth?: number;
  /** Largest document accepted, in UTF-16 code units of the text. */
  maxLength?: number;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.\u00b7\u00c0-\uffff]*/y;
const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
// Characters XML 1.0 forbids anywhere (C0 controls other than tab, LF, CR; U+FFFE/U+FFFF).
const FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;

/**
 * Parses a document into its root element. Deliberately small: elements, attributes (checked and
 * dropped), text with the five predefined entities and numeric character references, CDATA,
 * comments and processing instructions (skipped). A DOCTYPE is refused outright, so no entity
 * can be declared (no XXE, no entity expansion bombs). Iterative, so depth is bounded by
 * `maxDepth` (default 64), not by the JavaScript stack; input longer than `maxLength`
 * (default 4 MiB) is refused before it is read.
 */
export function parseXml(input: string, limits: XmlLimits = {}): XmlNode {
  const maxDepth = limits.maxDepth ?? 64;
  const maxLength = limits.maxLength ?? 4 * 1024 * 1024;
  if (input.length > maxLength) throw new XmlParseError(`document longer than ${maxLength} characters`);
  if (FORBIDDEN.test(input)) throw new XmlParseError("character not allowed in XML");
  const s = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  let i = 0;
  const stack: XmlNode[] = [];
  let root: XmlNode | undefined;
  const fail = (what: string): never => {
    throw new XmlParseError(`${what} at offset ${i}`);
  };
  const readName = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(s);
    if (!m) fail("name expected");
    i += m![0].length;
    return m![0];
  };
  const skipSpace = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t" || s[i] === "\n" || s[i] === "\r")) i++;
  };
  const decodeText = (raw: string): string => {
    if (raw.includes("<")) fail("'<' in text");
    if (!raw.includes("&")) return raw;
    return raw.replace(/&([^;&]*);?/g, (whole, ref: string) => {
      if (!whole.endsWith(";")) fail("unterminated entity reference");
      if (ref.startsWith("#")) {
        const code = ref[1] === "x" ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
        const valid = /^#(x[0-9A-Fa-f]{1,6}|[0-9]{1,7})$/.test(ref);
        if (!valid || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) fail("bad character reference");
        const ch = String.fromCodePoint(code);
        if (FORBIDDEN.test(ch)) fail("character not allowed in XML");
        return ch;
      }
      const e = ENTITIES[ref];
      if (e === undefined) fail(`undeclared entity '${ref}'`);
      return e!;
    });
  };
  const addText = (text: string) => {
    const top = stack[stack.length - 1];
    if (top) top.text += text;
    else if (text.trim() !== "") fail("text outside the root element");
  };

  while (i < s.length) {
    const lt = s.indexOf("<", i);
    if (lt < 0) {
      addText(decodeText(s.slice(i)));
      i = s.length;
      break;
    }
    if (lt > i) addText(decodeText(s.slice(i, lt)));
    i = lt;
    if (s.startsWith("<?", i)) {
      const end = s.indexOf("?>", i + 2);
      if (end < 0) fail("unterminated processing instruction");
      i = end + 2;
    } else if (s.startsWith("<!--", i)) {
      const end = s.indexOf("-->", i + 4);
      if (end < 0) fail("unterminated comment");
      i = end + 3;
    } else if (s.startsWith("<![CDATA[", i)) {
      const end = s.indexOf("]]>", i + 9);
      if (end < 0) fail("unterminated CDATA section");
      if (stack.length === 0) fail("CDATA outside the root element");
      addText(s.slice(i + 9, end));
      i = end + 3;
    } else if (s.startsWith("<!", i)) {
      // <!DOCTYPE ...>, <!ENTITY ...>: declarations are where XXE and entity bombs live.
      fail("DOCTYPE and ENTITY declarations are not allowed");
    } else if (s.startsWith("</", i)) {
      i += 2;
      const name = readName();
      skipSpace();
      if (s[i] !== ">") fail("'>' expected");
      i++;
      const open = stack.pop();
      if (!open || open.name !== name) fail(`unexpected end tag </${name}>`);
    } else {
      i++;
      const name = readName();
      // Attributes: checked for form, then dropped (S3's documents carry only xmlns and xsi:type).
      for (;;) {
        const before = i;
        skipSpace();
        if (s[i] === ">" || s.startsWith("/>", i)) break;
        if (i === before) fail("space expected before attribute");
        readName();
        skipSpace();
        if (s[i] !== "=") fail("'=' expected");
        i++;
        skipSpace();
        const q = s[i];
        if (q !== '"' && q !== "'") fail("quoted attribute value expected");
        const end = s.indexOf(q!, i + 1);
        if (end < 0) fail("unterminated attribute value");
        decodeText(s.slice(i + 1, end));
        i = end + 1;
      }
      const node: XmlNode = { name, children: [], text: "" };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(node);
      else if (root) fail("more than one root element");
      else root = node;
      if (s.startsWith("/>", i)) {
        i += 2;
      } else {
        i++;
        stack.push(node);
        if (stack.length > maxDepth) fail(`elements nested deeper than ${maxDepth}`);
      }
    }
  }
  if (stack.length > 0) throw new XmlParseError(`unclosed element <${stack[stack.length - 1]!.name}>`);
  if (!root) throw new XmlParseError("no root element");
  return root;
}

/** The local part of an element name (`s3:Tag` → `Tag`). */
export const localName = (name: string): string => name.slice(name.indexOf(":") + 1);

/** The first child element named `name` (local name), if any. */
export function xmlChild(node: XmlNode, name: string): XmlNode | undefined {
  return node.children.find((c) => localName(c.name) === name);
}

/** Every child element named `name` (local name). */
export function xmlChildren(node: XmlNode, name: string): XmlNode[] {
  return node.children.filter((c) => localName(c.name) === name);
}
