import { performance } from "node:perf_hooks";
import { CreateRoleCommand, GetRoleCommand, IAMClient } from "@aws-sdk/client-iam";
import { CreateKeyCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type * as SimLibrary from "../sim/index.js";
import { median } from "./stats.js";

// The built bundle, as users run it (`npm run bench` builds it first), not the sources through tsx.
const bundle = "../dist/index.js";
const { Simulator, serve } = (await import(bundle)) as typeof SimLibrary;

/**
 * What the simulator costs on top of the SDK itself, for KMS Encrypt, S3 PutObject (1 KiB, SSE-KMS:
 * S3 calls KMS GenerateDataKey on the requester's behalf and CloudTrail records it) and IAM GetRole:
 *   (a) a requestHandler that returns a canned response (the simulator's own answer to the same call,
 *       recorded once and replayed): the SDK's own cost, the floor;
 *   (b) the simulator in process (requestHandler): SigV4 check, policy evaluation, AES-GCM...;
 *   (c) `sim serve` over HTTP on loopback (server in this same process);
 *   (d) the simulator alone: (b)'s recorded request handled again and again, no SDK in between.
 * Rounds are short (CALLS calls per side, a fraction of a second) and alternate a, b, c, so that
 * load from other processes hits the sides of one round alike; a ratio is the median of the rounds'
 * ratios, a per-call figure the median of the rounds' means.
 * Targets: (b)/(a) ≤ 1.5 for Encrypt and for PutObject.
 */
const CALLS = Number(process.env.BENCH_CALLS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 25);

type Send = () => Promise<unknown>;

interface SmithyResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** A requestHandler that answers every request with a copy of one recorded response. */
function cannedHandler(recorded: SmithyResponse) {
  return {
    handle: async () => ({
      response: { statusCode: recorded.statusCode, headers: { ...recorded.headers }, body: recorded.body },
    }),
    updateHttpClientConfig() {},
    httpHandlerConfigs: () => ({}),
    destroy() {},
  };
}

async function perCallMicros(send: Send, calls: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < calls; i++) await send();
  return ((performance.now() - start) * 1000) / calls;
}

export async function run(): Promise<boolean> {
  const sim = Simulator.inMemory();
  const server = await serve(sim, { port: 0 });
  const creds = sim.credentials();
  const region = "us-east-1";

  const kmsSim = new KMSClient(sim.clientConfig());
  const { KeyMetadata } = await kmsSim.send(new CreateKeyCommand({}));
  const keyId = KeyMetadata!.KeyId!;
  const iamSim = new IAMClient(sim.clientConfig());
  const trust = JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { AWS: `arn:aws:iam::${sim.account.accountId}:root` },
        Action: "sts:AssumeRole",
      },
    ],
  });
  await iamSim.send(new CreateRoleCommand({ RoleName: "bench-role", AssumeRolePolicyDocument: trust }));

  // The canned answers are the simulator's own, recorded from one call each and replayed (headers,
  // `date` included, and body), so (a) parses exactly the response (b) parses.
  const live = sim.requestHandler();
  type SmithyRequest = Parameters<typeof live.handle>[0];
  const last: { response?: SmithyResponse; request?: SmithyRequest } = {};
  const recorder = {
    ...live,
    handle: (request: SmithyRequest) =>
      live.handle(request).then((out) => {
        last.request = request;
        // A copy: the SDK replaces an S3 response's body with a stream of it once it has read it.
        const { statusCode, headers, body } = out.response as SmithyResponse;
        last.response = { statusCode, headers: { ...headers }, body: Uint8Array.from(body) };
        return out;
      }),
  };
  // The recorded request, too: (d) sends it to the simulator again and again, no SDK around it.
  const record = async (send: () => Promise<unknown>): Promise<{ answer: SmithyResponse; alone: Send }> => {
    delete last.response;
    await send();
    const response = last.response as SmithyResponse | undefined;
    const request = last.request!;
    if (response?.statusCode !== 200) throw new Error("the call to record did not succeed");
    const alone = async () => {
      const { response } = await live.handle(request);
      if (response.statusCode !== 200) throw new Error(`the replayed request failed: ${response.statusCode}`);
    };
    return { answer: response, alone };
  };
  const plaintext = Buffer.from("hello, kmslab");
  const kmsRecorder = new KMSClient({ region, credentials: creds, requestHandler: recorder });
  const encryptRecorded = await record(() =>
    kmsRecorder.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext })),
  );
  const iamRecorder = new IAMClient({ region, credentials: creds, requestHandler: recorder });
  const roleRecorded = await record(() => iamRecorder.send(new GetRoleCommand({ RoleName: "bench-role" })));
  const kmsCanned = new KMSClient({
    region,
    credentials: creds,
    requestHandler: cannedHandler(encryptRecorded.answer),
  });
  const iamCanned = new IAMClient({
    region,
    credentials: creds,
    requestHandler: cannedHandler(roleRecorded.answer),
  });
  const kmsHttp = new KMSClient({ region, credentials: creds, endpoint: server.url });
  const iamHttp = new IAMClient({ region, credentials: creds, endpoint: server.url });

  const encrypt =
    (c: KMSClient): Send =>
    () =>
      c.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
  const getRole =
    (c: IAMClient): Send =>
    () =>
      c.send(new GetRoleCommand({ RoleName: "bench-role" }));

  const bucket = "bench-bucket";
  const s3Sim = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
  await s3Sim.send(new CreateBucketCommand({ Bucket: bucket }));
  const s3Http = new S3Client({ region, credentials: creds, endpoint: server.url, forcePathStyle: true });
  const kib = Buffer.alloc(1024, "k");
  let n = 0;
  const putObject =
    (c: S3Client): Send =>
    () =>
      c.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `objects/${n++ % 64}.txt`,
          Body: kib,
          ServerSideEncryption: "aws:kms",
          SSEKMSKeyId: keyId,
        }),
      );

  const s3Recorder = new S3Client({
    region,
    credentials: creds,
    forcePathStyle: true,
    requestHandler: recorder,
  });
  const putRecorded = await record(putObject(s3Recorder));
  const s3Canned = new S3Client({
    region,
    credentials: creds,
    forcePathStyle: true,
    requestHandler: cannedHandler(putRecorded.answer),
  });

  const cases = [
    {
      name: "KMS Encrypt",
      a: encrypt(kmsCanned),
      b: encrypt(kmsSim),
      c: encrypt(kmsHttp),
      d: encryptRecorded.alone,
      target: 1.5,
    },
    {
      name: "S3 PutObject",
      a: putObject(s3Canned),
      b: putObject(s3Sim),
      c: putObject(s3Http),
      d: putRecorded.alone,
      target: 1.5,
    },
    {
      name: "IAM GetRole",
      a: getRole(iamCanned),
      b: getRole(iamSim),
      c: getRole(iamHttp),
      d: roleRecorded.alone,
      target: undefined,
    },
  ];

  let ok = true;
  console.log(
    `\nSDK overhead: µs per call, ${ROUNDS} alternating rounds of ${CALLS} sequential calls per side (node ${process.version})`,
  );
  console.log("operation     (a) canned  (b) in-process  (c) HTTP   (b)/(a)  (c)/(a)   (d) sim alone");
  for (const c of cases) {
    for (const send of [c.a, c.b, c.c, c.d]) await perCallMicros(send, 300); // warm-up
    const a: number[] = [];
    const b: number[] = [];
    const h: number[] = [];
    const d: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      a.push(await perCallMicros(c.a, CALLS));
      b.push(await perCallMicros(c.b, CALLS));
      h.push(await perCallMicros(c.c, Math.ceil(CALLS / 4)));
      d.push(await perCallMicros(c.d, CALLS));
    }
    const [ma, mb, mh, md] = [median(a), median(b), median(h), median(d)];
    const ratio = median(b.map((x, i) => x / a[i]!));
    const httpRatio = median(h.map((x, i) => x / a[i]!));
    // (b) − (a) is what the simulator adds to a call through the SDK; (d) is its own work on that
    // call's request when nothing else runs between (warm caches). The gap between the two is the
    // cost of sharing the CPU's caches with the SDK, on both sides.
    const added = median(b.map((x, i) => x - a[i]!));
    console.log(
      `${c.name.padEnd(12)} ${ma.toFixed(0).padStart(10)} ${mb.toFixed(0).padStart(15)} ${mh.toFixed(0).padStart(9)} ${ratio.toFixed(2).padStart(9)} ${httpRatio.toFixed(2).padStart(8)} ${md.toFixed(0).padStart(15)}`,
    );
    console.log(
      `  the simulator adds ${added.toFixed(0)} µs to a call through the SDK; alone, on the same request, it takes ${md.toFixed(0)} µs`,
    );
    if (c.target !== undefined) {
      const pass = ratio <= c.target;
      ok &&= pass;
      console.log(
        `  ${c.name}: (b)/(a) = ${ratio.toFixed(2)}, target ≤ ${c.target}: ${pass ? "met" : "NOT MET"}`,
      );
    }
  }
  await server.close();
  return ok;
}
