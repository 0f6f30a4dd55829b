import { describe, expect, it } from "vitest";
import { ServiceError } from "../sim/core/errors.js";
import type { ServiceProvider } from "../sim/core/service.js";
import type { SimRequest } from "../sim/core/types.js";
import { blob, bool, int, list, str, struct, timestamp, validate } from "../sim/core/validate.js";
import { jsonCodec } from "../sim/protocols/json.js";
import { nest, parseForm, queryCodec } from "../sim/protocols/query.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

const queryProvider: ServiceProvider = {
  service: "iam",
  protocol: "awsQuery",
  eventSource: "iam.amazonaws.com",
  apiVersion: "2010-05-08",
  xmlNamespace: "https://iam.amazonaws.com/doc/2010-05-08/",
  operations: { CreateRole: { readOnly: false } },
};

const jsonProvider: ServiceProvider = {
  service: "kms",
  protocol: "awsJson1_1",
  eventSource: "kms.amazonaws.com",
  targetPrefixes: ["TrentService"],
  operations: { Encrypt: { readOnly: true } },
};

function request(over: Partial<SimRequest>): SimRequest {
  return {
    method: "POST",
    rawPath: "/",
    query: {},
    headers: {},
    body: new Uint8Array(),
    scheme: "https",
    sourceIp: "127.0.0.1",
    ...over,
  };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as ServiceError).code;
  }
  return "no error";
}

describe("awsQuery", () => {
  it("nests member lists, maps and structures", () => {
    const params = new Map(
      parseForm(
        "RoleName=r&Tags.member.2.Key=b&Tags.member.2.Value=2&Tags.member.1.Key=a&Tags.member.1.Value=1" +
          "&Ids.member.1=x&Ids.member.3=z&Attrs.entry.1.key=k&Attrs.entry.1.value=v&Outer.Inner=deep+space%2B",
      ),
    );
    expect(nest(params)).toEqual({
      RoleName: "r",
      Tags: [
        { Key: "a", Value: "1" },
        { Key: "b", Value: "2" },
      ],
      Ids: ["x", "z"],
      Attrs: { k: "v" },
      Outer: { Inner: "deep space+" },
    });
  });

  it("ignores prototype-polluting names", () => {
    const out = nest(
      new Map([
        ["__proto__.polluted", "yes"],
        ["a.constructor.x", "1"],
      ]),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(out).toEqual({});
  });

  it("rejects malformed escapes, a missing or unknown Action and a wrong Version", () => {
    const form = { "content-type": "application/x-www-form-urlencoded" };
    expect(
      codeOf(() =>
        queryCodec.decode(request({ headers: form, body: enc.encode("Action=%zz") }), queryProvider),
      ),
    ).toBe("MalformedQueryString");
    expect(
      codeOf(() =>
        queryCodec.decode(request({ headers: form, body: enc.encode("Version=2010-05-08") }), queryProvider),
      ),
    ).toBe("MissingAction");
    expect(
      codeOf(() =>
        queryCodec.decode(request({ headers: form, body: enc.encode("Action=Nope") }), queryProvider),
      ),
    ).toBe("InvalidAction");
    expect(
      codeOf(() =>
        queryCodec.decode(
          request({ headers: form, body: enc.encode("Action=CreateRole&Version=2011-06-15") }),
          queryProvider,
        ),
      ),
    ).toBe("InvalidAction");
    expect(
      codeOf(() =>
        queryCodec.decode(
          request({ headers: { "content-type": "text/plain" }, body: enc.encode("Action=CreateRole") }),
          queryProvider,
        ),
      ),
    ).toBe("InvalidParameterValue");
  });

  it("renders results as AWS does: members, ISO dates, escaped text, and ErrorResponse", () => {
    const res = queryCodec.encode(
      queryProvider,
      "CreateRole",
      {
        Role: {
          RoleName: "a<b",
          CreateDate: new Date("2026-11-28T12:00:00Z"),
          Tags: [{ Key: "k", Value: "v" }],
        },
      },
      "req-1",
    );
    const xml = dec.decode(res.body as Uint8Array);
    expect(xml).toContain(
      '<CreateRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><CreateRoleResult><Role>',
    );
    expect(xml).toContain("<RoleName>a&lt;b</RoleName><CreateDate>2026-11-28T12:00:00.000Z</CreateDate>");
    expect(xml).toContain("<Tags><member><Key>k</Key><Value>v</Value></member></Tags>");
    expect(xml).toContain("<ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>");
    const err = queryCodec.encodeError(
      queryProvider,
      new ServiceError("NoSuchEntity", "The role with name x cannot be found.", 404),
      "r2",
    );
    expect(err.status).toBe(404);
    expect(dec.decode(err.body as Uint8Array)).toContain(
      "<Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name x cannot be found.</Message></Error><RequestId>r2</RequestId>",
    );
  });
});

describe("awsJson", () => {
  const codec = jsonCodec("1.1");
  const headers = { "content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.Encrypt" };

  it("decodes the operation from X-Amz-Target and rejects what it cannot read", () => {
    expect(codec.decode(request({ headers, body: enc.encode('{"KeyId":"k"}') }), jsonProvider)).toEqual({
      operation: "Encrypt",
      input: { KeyId: "k" },
    });
    expect(codeOf(() => codec.decode(request({ headers, body: enc.encode("{nope") }), jsonProvider))).toBe(
      "SerializationException",
    );
    expect(codeOf(() => codec.decode(request({ headers, body: enc.encode("[1]") }), jsonProvider))).toBe(
      "SerializationException",
    );
    expect(codeOf(() => codec.decode(request({ headers, body: enc.encode("null") }), jsonProvider))).toBe(
      "SerializationException",
    );
    expect(
      codeOf(() =>
        codec.decode(
          request({ headers: { ...headers, "x-amz-target": "TrentService.toString" } }),
          jsonProvider,
        ),
      ),
    ).toBe("UnknownOperationException");
    expect(
      codeOf(() =>
        codec.decode(request({ headers: { ...headers, "content-type": "text/html" } }), jsonProvider),
      ),
    ).toBe("SerializationException");
  });

  it("speaks awsJson1_0 with its own content type", () => {
    const v10 = jsonCodec("1.0");
    const h = { "content-type": "application/x-amz-json-1.0", "x-amz-target": "AWSStepFunctions.Encrypt" };
    expect(v10.decode(request({ headers: h, body: enc.encode("{}") }), jsonProvider).operation).toBe(
      "Encrypt",
    );
    expect(v10.encode(jsonProvider, "Encrypt", {}, "id").headers["content-type"]).toBe(
      "application/x-amz-json-1.0",
    );
  });

  it("encodes blobs as base64 and dates as epoch seconds; errors carry __type and x-amzn-ErrorType", () => {
    const res = codec.encode(
      jsonProvider,
      "Encrypt",
      { CiphertextBlob: Buffer.from("hi"), CreationDate: new Date(1500) },
      "id",
    );
    expect(JSON.parse(dec.decode(res.body as Uint8Array))).toEqual({
      CiphertextBlob: "aGk=",
      CreationDate: 1.5,
    });
    const err = codec.encodeError(
      jsonProvider,
      new ServiceError("NotFoundException", "Key 'x' does not exist"),
      "id",
    );
    expect(err.headers["x-amzn-errortype"]).toBe("NotFoundException");
    expect(JSON.parse(dec.decode(err.body as Uint8Array))).toEqual({
      __type: "NotFoundException",
      message: "Key 'x' does not exist",
    });
  });
});

describe("validate", () => {
  const shape = {
    KeyId: str({ required: true, min: 1, max: 8 }),
    Plaintext: blob({ min: 1, max: 4 }),
    Count: int({ min: 1, max: 10 }),
    Flag: bool(),
    When: timestamp(),
    Tags: list(struct({ TagKey: str({ required: true }) })),
  };

  it("coerces wire values to model types", () => {
    const out = validate<Record<string, unknown>>(
      { KeyId: "k", Plaintext: "aGk=", Count: "3", Flag: "true", When: 1, Tags: [{ TagKey: "a" }] },
      shape,
    );
    expect(out.Plaintext).toEqual(Buffer.from("hi"));
    expect(out.Count).toBe(3);
    expect(out.Flag).toBe(true);
    expect(out.When).toEqual(new Date(1000));
  });

  it("lists every violation in AWS's words", () => {
    let message = "";
    try {
      validate({ Plaintext: "aGVsbG8=", Count: 11, Tags: [{}] }, shape);
    } catch (err) {
      message = (err as Error).message;
      expect((err as ServiceError).code).toBe("ValidationException");
    }
    expect(message).toBe(
      "4 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; " +
        "Value 'java.nio.HeapByteBuffer[pos=0 lim=5]' at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4; " +
        "Value '11' at 'count' failed to satisfy constraint: Member must have value less than or equal to 10; " +
        "Value null at 'tags.1.member.tagKey' failed to satisfy constraint: Member must not be null",
    );
  });
});
