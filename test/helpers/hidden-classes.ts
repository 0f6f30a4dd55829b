/**
 * Run by test/hidden-classes.test.ts in a child `node --allow-natives-syntax`: do the simulator's
 * per-request objects share V8 hidden classes ("maps") from one request to the next? Prints one
 * JSON line of findings. An object that gets a hidden class of its own on every request (what
 * `{ ...ctx, viaService }` does in Node 20's V8) makes every read of it miss V8's inline caches.
 */
import { CreateKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { CallRecord } from "../../sim/account.js";
import type { Principal } from "../../sim/core/types.js";
import { principalKeys } from "../../sim/policy/evaluate.js";
import { Simulator } from "../../sim/simulator.js";

// V8's own test hook; a function built at run time, so that no TypeScript tool has to parse `%`.
const sameMap = new Function("a", "b", "return %HaveSameMap(a, b)") as (a: object, b: object) => boolean;
const allSame = (xs: object[]) => xs.length > 1 && xs.every((x) => sameMap(xs[0]!, x));

const sim = Simulator.inMemory();
const records: CallRecord[] = [];
sim.observe((r) => records.push(r));
const kms = new KMSClient(sim.clientConfig());
const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
const s3 = new S3Client({ ...sim.clientConfig(), forcePathStyle: true });
await s3.send(new CreateBucketCommand({ Bucket: "maps-bucket" }));
// Enough requests for V8 to optimise the code on the path: the trap shows only then (after four
// requests every context still shares one hidden class, whatever the code).
for (let i = 0; i < 400; i++) {
  await s3.send(
    new PutObjectCommand({
      Bucket: "maps-bucket",
      Key: `o/${i % 8}`,
      Body: "x",
      ServerSideEncryption: "aws:kms",
      SSEKMSKeyId: KeyMetadata!.KeyId!,
    }),
  );
}
const user: Principal = {
  type: "IAMUser",
  arn: "arn:aws:iam::111122223333:user/u",
  accountId: "111122223333",
  userId: "AIDAEXAMPLE",
  userName: "u",
};
/** The contexts of the last four calls of `operation`. */
const last = (operation: string) =>
  records
    .filter((r) => r.operation === operation)
    .slice(-4)
    .map((r) => r.ctx);
const onBehalf = last("GenerateDataKey");
const direct = last("PutObject");
const keys: object[] = [];
for (let i = 0; i < 5000; i++) keys.push(principalKeys(user));

console.log(
  JSON.stringify({
    onBehalfContexts: allSame(onBehalf),
    directContexts: allSame(direct),
    onBehalfLikeDirect: onBehalf.length > 0 && direct.length > 0 && sameMap(onBehalf[0]!, direct[0]!),
    principalKeys: allSame(keys.slice(-4)),
  }),
);
