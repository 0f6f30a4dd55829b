import jsonata from "jsonata";
import { describe, expect, it } from "vitest";
import { OBJECT_BODY, POLICY_NAMES_ROLE, POLICY_WITHOUT_ROLE, policyAllows } from "../steps/build.js";
import { ExpressionError, evaluate, render, UndefinedFieldError } from "../steps/expr.js";
import { ParamsError, parseParams, resolveParams } from "../steps/params.js";
import { STAGES, validateRegistry } from "../steps/registry.js";
import { KEY_POLICY } from "../steps/stages/create-key.js";

const params = resolveParams(parseParams({}), "123456789012");
const bindings = {
  params,
  runId: "run-1",
  callerArn: "arn:aws:iam::123456789012:user/admin",
  callerRole: null,
};
const roleArn = "arn:aws:iam::123456789012:role/kmslab-key-user";

describe("the stage registry", () => {
  it("is consistent: 100 points, dependencies in order, every expression parses", () => {
    expect(validateRegistry()).toEqual([]);
    expect(STAGES.map((s) => s.id)).toEqual([
      "create-key",
      "trail-to-bucket",
      "sse-kms-upload",
      "public-access-denied",
      "trail-key-usage",
      "key-user-access",
    ]);
  });

  it("reports a stage whose points do not add up and a broken expression", () => {
    const broken = STAGES.map((s) =>
      s.id === "create-key"
        ? { ...s, points: 16, verify: [{ ...s.verify[0]!, score: "$key.Enabled ? (" }, ...s.verify.slice(1)] }
        : s,
    );
    const problems = validateRegistry(broken);
    expect(problems).toContain("stage points add up to 101, not 100");
    expect(problems.some((p) => p.startsWith("create-key.key: JSONata expression"))).toBe(true);
  });
});

/** A JSONata result with its sequences (flagged arrays) as plain arrays. */
const plainArrays = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(plainArrays)
    : value !== null && typeof value === "object" && !Buffer.isBuffer(value)
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainArrays(v)]))
      : value;

describe("JSONata as Step Functions evaluates it", () => {
  it("gives JSONata's own value for literals, variables and field paths (which it reads directly)", async () => {
    const data = {
      s: "text",
      n: 0,
      t: true,
      z: null,
      o: { a: { b: "deep" }, list: [5], nested: [[1, 2], [3]], none: null, bytes: Buffer.from("x") },
      items: [{ name: "a" }, { name: "b" }],
      one: [{ name: "only" }],
      bare: Object.assign(Object.create(null), { k: "v" }),
    };
    const expressions = [
      "true",
      "false",
      "null",
      "42",
      "-1.5",
      '"str"',
      "$s",
      "$n",
      "$t",
      "$z",
      "$o",
      "$items",
      "$missing",
      "$string",
      "$$",
      "$",
      "$o.a",
      "$o.a.b",
      "$o.a.b.c",
      "$o.list",
      "$o.nested",
      "$o.none",
      "$o.none.x",
      "$o.bytes",
      "$o.constructor",
      "$o.a.toString",
      "$o.missing.x",
      "$s.length",
      "$n.x",
      "$t.x",
      "$items.name",
      "$one.name",
      "$bare.k",
      "$o.`a`.b",
      "$o.a[0]",
      "$o.list[0]",
      "$o.list[]",
    ];
    for (const body of expressions) {
      const expected = await jsonata(body).evaluate({}, data);
      const got = await evaluate(`{% ${body} %}`, data);
      // JSONata's sequences are arrays with a flag; evaluate returns plain arrays.
      expect([body, got], body).toEqual([body, plainArrays(expected)]);
    }
  });

  it("renders templates: expressions replaced, literals kept; a field that gives nothing fails, as in Step Functions", async () => {
    const out = await render(
      { Bucket: "{% $params.dataBucket %}", Fixed: 7, List: ["{% $runId %}", "x"] },
      bindings,
      "Arguments",
    );
    expect(out).toEqual({ Bucket: "kmslab-data-123456789012-us-east-1", Fixed: 7, List: ["run-1", "x"] });
    // Step Functions fails the state (States.QueryEvaluationError) rather than leave the field out.
    await expect(
      render({ Bucket: "x", Config: { Where: "{% $params.nowhere %}" } }, bindings, "Arguments"),
    ).rejects.toThrow(new UndefinedFieldError("{% $params.nowhere %}", "Arguments/Config/Where"));
    await expect(render({ List: ["a", "{% undefined %}"] }, bindings, "Output")).rejects.toThrow(
      "The JSONata expression 'undefined' specified for the field 'Output/List[1]' returned nothing (undefined).",
    );
    await expect(render("{% undefined %}", bindings, "Output")).rejects.toThrow(UndefinedFieldError);
    // A bare expression the caller defaults (a variable's value) may give nothing.
    expect(await render("{% undefined %}", bindings)).toBeUndefined();
    // One expression that builds the object leaves an absent value out.
    expect(await render("{% {'a': 1, 'b': $params.nowhere} %}", bindings, "Arguments")).toEqual({ a: 1 });
  });

  it("has Step Functions' extra functions", async () => {
    expect(await evaluate('{% $hash("abc", "SHA-256") %}', {})).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    expect(await evaluate("{% $partition([1,2,3,4,5], 2) %}", {})).toEqual([[1, 2], [3, 4], [5]]);
    expect(await evaluate("{% $range(0, 10, 5) %}", {})).toEqual([0, 5, 10]);
    expect(await evaluate("{% $parse('{\"a\":[1]}').a %}", {})).toEqual([1]);
    expect(await evaluate("{% $uuid() %}", {})).toMatch(/^[0-9a-f-]{36}$/);
    await expect(evaluate('{% $hash("abc", "CRC") %}', {})).rejects.toThrow(ExpressionError);
  });

  it("builds the console-style key policy with the caller as administrator and the role as key user", async () => {
    const policy = JSON.parse((await evaluate(`{% $string(${KEY_POLICY}) %}`, bindings)) as string);
    expect(policy.Statement.map((s: { Principal: { AWS: string } }) => s.Principal.AWS)).toEqual([
      "arn:aws:iam::123456789012:root",
      "arn:aws:iam::123456789012:user/admin",
      roleArn,
    ]);
    expect(
      await evaluate(`{% ($policy := $parse($string(${KEY_POLICY})); ${POLICY_NAMES_ROLE}) %}`, bindings),
    ).toBe(true);
  });

  it("names a role session's administrator by its role's ARN as GetRole gives it (path included), or not at all", async () => {
    const principals = async (extra: object) =>
      JSON.parse(
        (await evaluate(`{% $string(${KEY_POLICY}) %}`, {
          ...bindings,
          callerArn: "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/ana",
          callerRole: "AWSReservedSSO_Admin_0123456789abcdef",
          ...extra,
        })) as string,
      ).Statement.map((s: { Principal: { AWS: string } }) => s.Principal.AWS);
    const withPath =
      "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef";
    expect(await principals({ callerRoleArn: withPath })).toEqual([
      "arn:aws:iam::123456789012:root",
      withPath,
      roleArn,
    ]);
    // GetRole denied: no guessed ARN, the root statement alone lets IAM policies administer the key.
    expect(await principals({ callerRoleArn: null })).toEqual(["arn:aws:iam::123456789012:root", roleArn]);
  });

  it("finds an IAM path to the key in a policy whatever way it allows kms:Decrypt", async () => {
    const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const allows = (...statements: object[]) =>
      evaluate(`{% ${policyAllows("$doc", `"kms:Decrypt"`, "$key")} %}`, {
        doc: { Version: "2012-10-17", Statement: statements.length === 1 ? statements[0] : statements },
        key,
      });
    const allow = (extra: object) => ({ Effect: "Allow", Resource: "*", ...extra });
    for (const action of ["*", "kms:*", "KMS:Decrypt", "kms:De*", "kms:?ecrypt", ["s3:GetObject", "kms:*"]])
      expect(await allows(allow({ Action: action })), JSON.stringify(action)).toBe(true);
    expect(await allows(allow({ NotAction: "s3:*" }))).toBe(true);
    expect(await allows(allow({ Action: "kms:Decrypt", Resource: "arn:aws:kms:*:*:key/*" }))).toBe(true);
    expect(
      await allows(allow({ Action: "kms:Decrypt", Resource: undefined, NotResource: "arn:aws:s3:::*" })),
    ).toBe(true);
    // A conditional Allow could apply: counted.
    expect(
      await allows(allow({ Action: "kms:*", Condition: { Bool: { "aws:SecureTransport": "true" } } })),
    ).toBe(true);
    for (const none of [
      allow({ Action: ["s3:GetObject", "s3:ListBucket"] }),
      allow({ Action: "kms:Encrypt" }),
      allow({ Action: "kms:Decrypt", Resource: "arn:aws:kms:us-east-1:123456789012:key/other" }),
      allow({ NotAction: ["kms:*"] }),
      allow({ Action: "kms:*", Resource: undefined, NotResource: key }),
      { Effect: "Deny", Action: "*", Resource: "*" },
    ])
      expect(await allows(none), JSON.stringify(none)).toBe(false);
  });

  it("takes the role out of the key policy, and only the role", async () => {
    const start = {
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "root",
          Effect: "Allow",
          Principal: { AWS: "arn:aws:iam::123456789012:root" },
          Action: "kms:*",
          Resource: "*",
        },
        {
          Sid: "users",
          Effect: "Allow",
          Principal: { AWS: roleArn },
          Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
          Resource: "*",
        },
        {
          Sid: "shared",
          Effect: "Allow",
          Principal: { AWS: [roleArn, "arn:aws:iam::123456789012:user/other"] },
          Action: "kms:Decrypt",
          Resource: "*",
        },
      ],
    };
    const without = (await evaluate(`{% ($p := $parse($start); ${POLICY_WITHOUT_ROLE}) %}`, {
      ...bindings,
      start: JSON.stringify(start),
    })) as typeof start;
    expect(without.Statement.map((s) => s.Sid)).toEqual(["root", "shared"]);
    expect(without.Statement[1]!.Principal).toEqual({ AWS: "arn:aws:iam::123456789012:user/other" });
    const names = (policy: unknown) => evaluate(`{% ${POLICY_NAMES_ROLE} %}`, { ...bindings, policy });
    expect(await names(start)).toBe(true);
    expect(await names(without)).toBe(false);
  });

  it("computes the object's body from the parameters alone", async () => {
    expect(await evaluate(`{% ${OBJECT_BODY} %}`, bindings)).toBe(
      "kmslab lab object\naccount: 123456789012\nobject: reports/secret-report.txt\n",
    );
  });
});

describe("lab parameters", () => {
  it("fills in defaults, the account's bucket names and the suffix", () => {
    const p = resolveParams(parseParams({ suffix: "-alice", region: "eu-west-1" }), "123456789012");
    expect(p).toMatchObject({
      keyAlias: "alias/myFirstKey-alice",
      keyUserRole: "kmslab-key-user-alice",
      trailName: "kmslab-trail-alice",
      logBucket: "kmslab-trail-123456789012-eu-west-1-alice",
      dataBucket: "kmslab-data-123456789012-eu-west-1-alice",
      objectKey: "reports/secret-report.txt",
    });
  });

  it("refuses bad values and unknown parameters, naming each", () => {
    expect(() => parseParams({ keyAlias: "myKey", colour: "red" })).toThrow(ParamsError);
    expect(() => parseParams({ keyAlias: "myKey", colour: "red" })).toThrow(
      /keyAlias: must look like alias.*; unknown parameter colour/,
    );
    expect(() => parseParams({ keyAlias: "alias/aws/s3" })).toThrow(/reserved/);
    expect(() => parseParams({ objectKey: "../x" })).toThrow(/relative object key/);
    expect(() => resolveParams(parseParams({ dataBucket: "Bad_Bucket" }), "123456789012")).toThrow(
      /dataBucket "Bad_Bucket" is not a valid S3 bucket name/,
    );
  });
});
