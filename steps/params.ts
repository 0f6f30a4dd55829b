import { z } from "zod";

/**
 * The lab's parameters (lab.md, "Lab parameters"): one validated object that feeds every stage, the
 * report and the Step Functions export, recorded in the state file. Flags and a config file set
 * them; `resolveParams` fills in what depends on the account (bucket names) and applies the suffix.
 */
const NAME = /^[\w+=,.@-]{1,64}$/;

export const paramsSchema = z
  .object({
    region: z
      .string()
      .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, "must be an AWS Region name such as us-east-1")
      .default("us-east-1"),
    keyAlias: z
      .string()
      .regex(/^alias\/[A-Za-z0-9/_-]{1,250}$/, "must look like alias/<name> (letters, digits, / _ -)")
      .refine((a) => !a.startsWith("alias/aws/"), "alias/aws/ is reserved for AWS managed keys")
      .default("alias/myFirstKey"),
    keyUserRole: z
      .string()
      .regex(NAME, "must be an IAM role name (1-64 of A-Za-z0-9+=,.@_-)")
      .default("kmslab-key-user"),
    trailName: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$/,
        "must be a CloudTrail trail name (3-128 characters)",
      )
      .default("kmslab-trail"),
    /** Default `kmslab-trail-<account>-<region>`: account and region make it globally unique. */
    logBucket: z.string().optional(),
    /** Default `kmslab-data-<account>-<region>`. */
    dataBucket: z.string().optional(),
    objectKey: z
      .string()
      .min(1)
      .max(900)
      .refine((k) => !k.startsWith("/") && !k.split("/").includes(".."), "must be a relative object key")
      .default("reports/secret-report.txt"),
    /** Appended to every name, so several learners can share one account (e.g. `-alice`). */
    suffix: z
      .string()
      .regex(/^[a-z0-9-]{0,20}$/, "must be up to 20 lower-case letters, digits or hyphens")
      .default(""),
    /** How long stage 5 waits for CloudTrail (AWS: typically 5, at most about 15 minutes). */
    trailWaitSeconds: z.number().int().min(1).max(7200).default(1200),
    /** How long policy changes may take to propagate (IAM roles, key policies). */
    propagationWaitSeconds: z.number().int().min(1).max(3600).default(120),
    /** Seconds between polls of CloudTrail (it allows 2 LookupEvents per second per account). */
    pollSeconds: z.number().int().min(1).max(300).default(15),
  })
  .strict();

export type LabParamsInput = z.input<typeof paramsSchema>;
export type LabParams = z.output<typeof paramsSchema>;

/** Parameters with the account's facts filled in and the suffix applied: what expressions see as `$params`. */
export interface ResolvedParams {
  account: string;
  region: string;
  keyAlias: string;
  keyUserRole: string;
  trailName: string;
  logBucket: string;
  dataBucket: string;
  objectKey: string;
  suffix: string;
  trailWaitSeconds: number;
  propagationWaitSeconds: number;
  pollSeconds: number;
}

export class ParamsError extends Error {}

const BUCKET = /^(?!xn--)(?!.*-s3alias$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Validates raw parameters (flags and config merged); throws ParamsError naming each problem. */
export function parseParams(input: unknown): LabParams {
  const parsed = paramsSchema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) =>
    i.code === "unrecognized_keys"
      ? `unknown parameter${i.keys.length > 1 ? "s" : ""} ${i.keys.join(", ")}`
      : `${i.path.join(".") || "parameters"}: ${i.message}`,
  );
  throw new ParamsError(`invalid lab parameters: ${problems.join("; ")}`);
}

export function resolveParams(params: LabParams, account: string): ResolvedParams {
  const s = params.suffix;
  const resolved: ResolvedParams = {
    account,
    region: params.region,
    keyAlias: params.keyAlias + s,
    keyUserRole: params.keyUserRole + s,
    trailName: params.trailName + s,
    logBucket: params.logBucket ?? `kmslab-trail-${account}-${params.region}${s}`,
    dataBucket: params.dataBucket ?? `kmslab-data-${account}-${params.region}${s}`,
    objectKey: params.objectKey,
    suffix: s,
    trailWaitSeconds: params.trailWaitSeconds,
    propagationWaitSeconds: params.propagationWaitSeconds,
    pollSeconds: params.pollSeconds,
  };
  for (const name of ["logBucket", "dataBucket"] as const) {
    const b = resolved[name];
    if (!BUCKET.test(b) || b.includes("..") || /^\d+\.\d+\.\d+\.\d+$/.test(b))
      throw new ParamsError(`invalid lab parameters: ${name} "${b}" is not a valid S3 bucket name`);
  }
  if (!NAME.test(resolved.keyUserRole))
    throw new ParamsError(
      `invalid lab parameters: keyUserRole "${resolved.keyUserRole}" is too long with the suffix`,
    );
  return resolved;
}
