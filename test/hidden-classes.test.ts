import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);
const script = fileURLToPath(new URL("./helpers/hidden-classes.ts", import.meta.url));

/**
 * The simulator's per-request objects keep one V8 hidden class from request to request: the
 * context S3 hands KMS on the requester's behalf, the dispatcher's own contexts (the same class as
 * those), and the principal's condition keys. A spread copy that gains a property (`{ ...ctx,
 * viaService }`) gets a class of its own every time in Node 20's V8, and every read of it then
 * misses V8's caches. Checked with V8's test hook, so in a child process with natives syntax on.
 */
it("keeps one hidden class for each kind of per-request object", async () => {
  const { stdout } = await run(process.execPath, ["--allow-natives-syntax", "--import", "tsx", script], {
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  });
  expect(JSON.parse(stdout.trim().split("\n").at(-1)!)).toEqual({
    onBehalfContexts: true,
    directContexts: true,
    onBehalfLikeDirect: true,
    principalKeys: true,
  });
}, 60_000);
