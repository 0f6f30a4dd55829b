import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

/** A node:crypto hash in the shape @smithy/signature-v4 expects (HMAC when given a secret). */
export class NodeSha256 {
  private readonly hash;
  constructor(secret?: string | Uint8Array) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", secret);
  }
  update(data: string | Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

export function signer(service: string, creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, region = "us-east-1") {
  return new SignatureV4({ service, region, credentials: creds, sha256: NodeSha256, uriEscapePath: service !== "s3" });
}
