import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** The built CLI, run as a user runs it (`npm test` builds it first). */
export const BIN = resolve(import.meta.dirname, "../../bin/kmslab.js");

export function tempDir(prefix = "kmslab-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `kmslab ...args` to completion. */
export function runCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", fail);
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

export interface ServeHandle {
  child: ChildProcess;
  endpoint: string;
  env: Record<string, string>;
  stderr: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `kmslab sim serve --port 0` and waits for the environment it prints. */
export function startServe(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<ServeHandle> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, "sim", "serve", "--port", "0", ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.on("data", (d) => {
      stdout += d;
      const env: Record<string, string> = {};
      for (const m of stdout.matchAll(/^export (\w+)=(.*)$/gm)) env[m[1]!] = m[2]!;
      if (env.AWS_DEFAULT_REGION && env.AWS_ENDPOINT_URL)
        done({
          child,
          endpoint: env.AWS_ENDPOINT_URL,
          env,
          stderr: () => stderr,
          stop: (signal = "SIGTERM") => {
            child.kill(signal);
            return exited;
          },
        });
    });
    child.on("exit", (code) => fail(new Error(`sim serve exited ${code}: ${stderr}`)));
  });
}

/** Debian's AWS CLI (the one .ci/run installs), else whichever is on PATH. */
export const AWS_CLI = existsSync("/usr/bin/aws") ? "/usr/bin/aws" : "aws";

/**
 * The AWS CLI's environment against `kmslab sim serve`: the account's admin keys, us-east-1, no
 * pager, and none of the user's config or credential files. Its own config file asks for SigV4 on
 * S3: AWS CLI v2 signs so anyway, v1 would presign with Signature Version 2 (refused, as S3 refuses
 * it for buckets made since 2020 and for SSE-KMS objects), so the tests also run with a v1 on PATH.
 */
export function awsCliEnv(work: string, server: ServeHandle): Record<string, string> {
  const config = join(work, "aws-config");
  if (!existsSync(config)) writeFileSync(config, "[default]\ns3 =\n    signature_version = s3v4\n");
  return {
    PATH: process.env.PATH ?? "",
    HOME: work,
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: join(work, "none-credentials"),
    AWS_PAGER: "",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: server.env.AWS_ACCESS_KEY_ID!,
    AWS_SECRET_ACCESS_KEY: server.env.AWS_SECRET_ACCESS_KEY!,
  };
}
