import { describe, expect, it } from "vitest";
import { parseXml, renderFlatXml, XmlParseError, xmlChild, xmlChildren } from "../sim/core/xml.js";

/** The small XML parser that reads S3 request bodies, and S3's flattened writer. */

describe("parseXml", () => {
  it("reads elements, text, the five entities, numeric references and CDATA; attributes are dropped", () => {
    const doc = parseXml(
      '<?xml version="1.0" encoding="UTF-8"?>\n<!-- a comment -->\n<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>' +
        "<Tag><Key>a&amp;b &lt;&gt; &quot;&apos;</Key><Value>&#233;&#x1F511;</Value></Tag>" +
        "<Tag><Key><![CDATA[<raw> & ]]>x</Key><Value/></Tag></TagSet></Tagging>",
    );
    expect(doc.name).toBe("Tagging");
    const tags = xmlChildren(xmlChild(doc, "TagSet")!, "Tag");
    expect(tags).toHaveLength(2);
    expect(xmlChild(tags[0]!, "Key")!.text).toBe("a&b <> \"'");
    expect(xmlChild(tags[0]!, "Value")!.text).toBe("é🔑");
    expect(xmlChild(tags[1]!, "Key")!.text).toBe("<raw> & x");
    expect(xmlChild(tags[1]!, "Value")!.text).toBe("");
  });

  it("matches child names by local name (prefixes ignored) and keeps a leading BOM out", () => {
    const doc = parseXml("\ufeff<s3:Delete xmlns:s3='x'><s3:Quiet>true</s3:Quiet></s3:Delete>");
    expect(xmlChild(doc, "Quiet")!.text).toBe("true");
  });

  it.each([
    [
      "a DOCTYPE (entity expansion)",
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><a>&lol;</a>',
    ],
    ["an external entity (XXE)", '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'],
    ["an undeclared entity", "<a>&nbsp;</a>"],
    ["an unterminated entity", "<a>&amp</a>"],
    ["a bare ampersand", "<a>a & b</a>"],
    ["a bad character reference", "<a>&#xD800;</a>"],
    ["a reference to a control character", "<a>&#0;</a>"],
    ["a raw control character", "<a>\u0001</a>"],
    ["mismatched tags", "<a><b></a></b>"],
    ["an unclosed element", "<a><b></b>"],
    ["two roots", "<a/><b/>"],
    ["text outside the root", "<a/>text"],
    ["no root", "  "],
    ["an unquoted attribute", "<a x=1/>"],
    ["an unterminated comment", "<a><!-- </a>"],
    ["an unterminated CDATA section", "<a><![CDATA[ </a>"],
    ["a '<' in an attribute", '<a x="<"/>'],
  ])("refuses %s", (_what, text) => {
    expect(() => parseXml(text)).toThrow(XmlParseError);
  });

  it("refuses nesting deeper than the limit without using the stack", () => {
    expect(() => parseXml("<a>".repeat(50_000))).toThrow(/nested deeper than 64/);
    expect(() => parseXml(`${"<a>".repeat(10)}${"</a>".repeat(10)}`, { maxDepth: 9 })).toThrow(XmlParseError);
    expect(parseXml(`${"<a>".repeat(10)}${"</a>".repeat(10)}`, { maxDepth: 10 }).name).toBe("a");
  });

  it("refuses documents longer than the size limit", () => {
    expect(() => parseXml(`<a>${"x".repeat(100)}</a>`, { maxLength: 50 })).toThrow(/longer than 50/);
  });
});

describe("renderFlatXml", () => {
  it("flattens arrays, wraps lists held in objects, writes @attributes, escapes text and leaves out absent members", () => {
    expect(
      renderFlatXml({
        Contents: [{ Key: "a<b" }, { Key: "c&d" }],
        TagSet: { Tag: [{ Key: "k", Value: "v" }] },
        Grantee: { "@xsi:type": "CanonicalUser", ID: "x" },
        When: new Date("2026-01-02T03:04:05.000Z"),
        Missing: undefined,
        Flag: false,
      }),
    ).toBe(
      "<Contents><Key>a&lt;b</Key></Contents><Contents><Key>c&amp;d</Key></Contents>" +
        "<TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet>" +
        '<Grantee xsi:type="CanonicalUser"><ID>x</ID></Grantee>' +
        "<When>2026-01-02T03:04:05.000Z</When><Flag>false</Flag>",
    );
  });

  it("round-trips through the parser", () => {
    const text = `<R>${renderFlatXml({ K: ["x & y", "\u00e9 <z>"] })}</R>`;
    expect(xmlChildren(parseXml(text), "K").map((n) => n.text)).toEqual(["x & y", "\u00e9 <z>"]);
  });
});
