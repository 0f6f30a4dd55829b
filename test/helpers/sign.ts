import { createHash, createHmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

type SourceData = string | ArrayBuffer | ArrayBufferView;

const bytes = (d: SourceData): string | Uint8Array =>
  typeof d === "string"
    ? d
    : ArrayBuffer.isView(d)
      ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
      : new Uint8Array(d);

/** A node:crypto hash in the shape @smithy/signature-v4 expects (HMAC when given a secret). */
export class NodeSha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
}

export function signer(
  service: string,
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  region = "us-east-1",
) {
  return new SignatureV4({
    service,
    region,
    credentials: creds,
    sha256: NodeSha256,
    uriEscapePath: service !== "s3",
  });
}
