import * as cloudtrail from "@aws-sdk/client-cloudtrail";
import * as iam from "@aws-sdk/client-iam";
import * as kms from "@aws-sdk/client-kms";
import * as s3 from "@aws-sdk/client-s3";
import * as sts from "@aws-sdk/client-sts";
import type { Service } from "../steps/dsl.js";

/**
 * What the pinned AWS SDK v3 clients know about an operation, read from the operation schemas they
 * ship (`CreateKey$` = [9, namespace, name, traits, input, output]; a structure is
 * [3, namespace, name, traits, memberNames, memberSchemas]; a list [1, ..., member]; a map
 * [2, ..., key, value]). The structural check uses it to prove that every `aws-sdk:` Task names a
 * real operation and passes only members of its input; the error names follow from the SDK's
 * exception classes.
 */

type Module = Record<string, unknown>;

const MODULES: Record<Service, { module: Module; prefix: string; base: string }> = {
  sts: { module: sts as Module, prefix: "Sts", base: "STSServiceException" },
  iam: { module: iam as Module, prefix: "Iam", base: "IAMServiceException" },
  kms: { module: kms as Module, prefix: "Kms", base: "KMSServiceException" },
  s3: { module: s3 as Module, prefix: "S3", base: "S3ServiceException" },
  cloudtrail: { module: cloudtrail as Module, prefix: "CloudTrail", base: "CloudTrailServiceException" },
};

export const SERVICES = Object.keys(MODULES) as Service[];

/** A schema as the SDK writes it: a number (simple type), a tuple, or a thunk of either. */
type Schema = unknown;

function resolve(schema: Schema): Schema {
  let s = schema;
  // A member is [schema, traits]; a reference is a thunk.
  for (let i = 0; i < 4; i++) {
    if (typeof s === "function") s = (s as () => Schema)();
    else if (Array.isArray(s) && s.length === 2 && typeof s[0] !== "number") s = s[0];
    else break;
  }
  return s;
}

/** The operation's schema, or undefined when the SDK has no such operation. */
function operation(service: Service, action: string): unknown[] | undefined {
  const op = MODULES[service].module[`${action}$`];
  if (!Array.isArray(op) || op[0] !== 9 || op[2] !== action) return undefined;
  return op;
}

export function hasOperation(service: string, action: string): boolean {
  return service in MODULES && operation(service as Service, action) !== undefined;
}

/** `CreateKey` → `createKey` (the action as an `aws-sdk:` resource names it). */
export const camel = (action: string) => action[0]!.toLowerCase() + action.slice(1);
/** `createKey` → `CreateKey`. */
export const pascal = (action: string) => action[0]!.toUpperCase() + action.slice(1);

/**
 * Where `value` does not fit the operation's input: members the input structure does not have,
 * at any depth (structures, lists, maps), as `Path.To.Member` strings. Values that are JSONata
 * expressions are not looked into (their shape is only known at run time).
 */
export function unknownMembers(service: Service, action: string, value: unknown): string[] {
  const op = operation(service, action);
  if (!op) return [`(no operation ${service}:${action})`];
  const problems: string[] = [];
  walk(resolve(op[4]), value, "", problems);
  return problems;
}

function walk(schema: Schema, value: unknown, path: string, problems: string[]): void {
  if (typeof value === "string" || value === null || typeof value !== "object") return;
  const s = resolve(schema);
  if (!Array.isArray(s)) return;
  const kind = s[0];
  if (kind === 3 && !Array.isArray(value)) {
    const names = s[4] as string[];
    const members = s[5] as Schema[];
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const i = names.indexOf(k);
      if (i < 0) problems.push(path ? `${path}.${k}` : k);
      else walk(members[i], v, path ? `${path}.${k}` : k, problems);
    }
  } else if (kind === 1 && Array.isArray(value)) {
    for (const [i, item] of value.entries()) walk(s[4], item, `${path}[${i}]`, problems);
  } else if (kind === 2 && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>))
      walk(s[5], v, `${path}.${k}`, problems);
  }
}

/**
 * The name Step Functions gives an AWS SDK error: `<Service>.<Exception>` (aws-subset §5). Errors
 * the SDK models keep their class name, with `Exception` appended where the model's name lacks it
 * (Step Functions' names come from the Java SDK: `S3.NoSuchKeyException`,
 * `Iam.NoSuchEntityException`). Errors the service does not model (S3's `AccessDenied`,
 * `NoSuchTagSet`; KMS's `AccessDeniedException`) are the service's generic exception
 * (`S3.S3Exception`, `Kms.KmsException`) — unconfirmed by AWS, so such a Catch cannot tell them apart.
 */
export function aslErrorName(service: Service, code: string): string {
  const { module, prefix, base } = MODULES[service];
  if (LATE_MODELLED[service]?.includes(code)) return `${prefix}.${prefix}Exception`;
  const Base = module[base] as (abstract new (...args: never[]) => unknown) | undefined;
  for (const name of [code, `${code}Exception`]) {
    const Class = module[name] as { prototype?: unknown } | undefined;
    if (typeof Class === "function" && Base && Class.prototype instanceof Base)
      return `${prefix}.${name.endsWith("Exception") ? name : `${name}Exception`}`;
  }
  return `${prefix}.${prefix}Exception`;
}

/**
 * Errors the pinned JS clients model but Step Functions' own SDK may not: S3's `AccessDenied` is a
 * late addition to S3's model, and the Java SDK v2 (whose exception classes Step Functions' error
 * names follow) has answered a 403 AccessDenied with its generic `S3Exception` — so a denial may be
 * `S3.S3Exception` or `S3.AccessDeniedException`. Which one Step Functions gives today is
 * unconfirmed: the simulated Step Functions gives the generic name (aslErrorName), and the export
 * catches both (aslErrorNames).
 */
const LATE_MODELLED: Partial<Record<Service, string[]>> = { s3: ["AccessDenied"] };

/** Every name Step Functions may give an error of that code: the one aslErrorName gives, and the other reading. */
export function aslErrorNames(service: Service, code: string): string[] {
  const name = aslErrorName(service, code);
  if (!LATE_MODELLED[service]?.includes(code)) return [name];
  return [name, `${MODULES[service].prefix}.${code.endsWith("Exception") ? code : `${code}Exception`}`];
}

/** Whether the SDK models an error of that code (so that Step Functions can name it apart). */
export function isModelledError(service: Service, code: string): boolean {
  return aslErrorName(service, code) !== `${MODULES[service].prefix}.${MODULES[service].prefix}Exception`;
}

/**
 * Throttling and server errors each service answers without modelling them in the SDK (S3's
 * `SlowDown`, STS's `Throttling`...): Step Functions' names for them are not documented, so the
 * export retries both the Java-style name (`S3.SlowDownException`) — unconfirmed — and the modelled
 * ones.
 */
const UNMODELLED_TRANSIENT: Record<Service, string[]> = {
  s3: ["SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"],
  sts: ["Throttling"],
  iam: ["Throttling"],
  kms: ["ThrottlingException"],
  cloudtrail: [],
};

/**
 * AWS's messages for the un-modelled errors a Catch must tell apart from the others Step Functions
 * names alike (`S3.S3Exception`): by the Cause, which holds the message (the Java SDK's, with
 * "(Service: S3, Status Code: 404, ...)" after it on AWS).
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketTagging.html (NoSuchTagSet),
 * https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (BucketNotEmpty).
 */
export const UNMODELLED_MESSAGES: Partial<Record<Service, Record<string, string>>> = {
  s3: {
    NoSuchTagSet: "The TagSet does not exist",
    BucketNotEmpty: "The bucket you tried to delete is not empty",
  },
};

/** The error names a Retry on throttling and 5xx lists for a service. */
export function transientErrorNames(service: Service, modelled: Iterable<string>): string[] {
  const { prefix } = MODULES[service];
  const names = [...modelled].filter((c) => isModelledError(service, c)).map((c) => aslErrorName(service, c));
  for (const code of UNMODELLED_TRANSIENT[service])
    names.push(`${prefix}.${code.endsWith("Exception") ? code : `${code}Exception`}`);
  return [...new Set(names)];
}
