import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import type { SimRequest, SimResponse } from "./core/types.js";
import type { Simulator } from "./simulator.js";

/** Requests larger than this are refused before their body is read (AWS answers 413 too). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Request bodies held in memory at once, across every request in flight. A request that would pass
 * it is answered at once with its service's throttling error (S3: 503 SlowDown, "Please reduce your
 * request rate."), which SDKs retry with backoff: what AWS answers for load it will not take now
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html). Requests with no
 * signature at all (S3's anonymous access) share a smaller part of it, so that anyone who can reach
 * the port cannot hold the memory the signed clients need.
 */
export const MAX_BUFFERED_BYTES = 256 * 1024 * 1024;
export const MAX_UNSIGNED_BUFFERED_BYTES = MAX_BODY_BYTES;

export interface ServeOptions {
  port?: number;
  host?: string;
  /** The budgets above (tests give smaller ones). */
  maxBufferedBytes?: number;
  maxUnsignedBufferedBytes?: number;
}

/** Bytes of request bodies held now: all of them, and those of requests that carry no signature. */
class BodyBudget {
  private held = 0;
  private unsignedHeld = 0;
  constructor(
    private readonly max: number,
    private readonly maxUnsigned: number,
  ) {}

  take(bytes: number, signed: boolean): boolean {
    if (this.held + bytes > this.max) return false;
    if (!signed && this.unsignedHeld + bytes > this.maxUnsigned) return false;
    this.held += bytes;
    if (!signed) this.unsignedHeld += bytes;
    return true;
  }

  give(bytes: number, signed: boolean): void {
    this.held -= bytes;
    if (!signed) this.unsignedHeld -= bytes;
  }
}

export interface RunningServer {
  server: Server;
  url: string;
  port: number;
  host: string;
  close(): Promise<void>;
}

/**
 * `kmslab sim serve`: the simulator over HTTP, for the AWS CLI and any SDK (`AWS_ENDPOINT_URL`).
 * The server only translates HTTP to SimRequest and back; every decision is the Simulator's.
 */
export async function serve(sim: Simulator, options: ServeOptions = {}): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const budget = new BodyBudget(
    options.maxBufferedBytes ?? MAX_BUFFERED_BYTES,
    options.maxUnsignedBufferedBytes ?? MAX_UNSIGNED_BUFFERED_BYTES,
  );
  const handler = (expectsContinue: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    handleHttp(sim, budget, req, res, expectsContinue).catch((err) => {
      process.stderr.write(`kmslab sim: ${(err as Error).message}\n`);
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  };
  const server = createServer(
    { requestTimeout: 120_000, headersTimeout: 30_000, keepAliveTimeout: 5_000 },
    handler(false),
  );
  // `Expect: 100-continue` (SDKs send it with large uploads): the client waits for the go-ahead
  // before it sends the body, so a refused request costs no upload at all.
  server.on("checkContinue", handler(true));
  server.on("clientError", (_err, socket) => {
    if (socket.writable)
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 4566, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    server,
    host,
    port: address.port,
    url: `http://${urlHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const NO_BODY = Buffer.alloc(0);

/**
 * One request: checked as far as its headers allow (Simulator.admit) before its body is read, then
 * read within the memory budget (the declared length is held before the first byte), then handled.
 * A request refused early is answered at once; its body is never held.
 */
async function handleHttp(
  sim: Simulator,
  budget: BodyBudget,
  req: IncomingMessage,
  res: ServerResponse,
  expectsContinue: boolean,
): Promise<void> {
  const declared = Number(req.headers["content-length"] ?? 0);
  // Only a body still to come is worth refusing early for; a request without one is simply handled
  // (answering it from its headers alone would race the parser's answer to any stray bytes after it).
  const bodyToCome = declared > 0 || req.headers["transfer-encoding"] !== undefined;
  const head = toSimRequest(req, NO_BODY);
  if (!head) {
    const malformed = {
      status: 400,
      headers: { "content-type": "text/plain" },
      body: Buffer.from("Malformed request target"),
    };
    if (bodyToCome) refuse(req, res, malformed);
    else writeResponse(res, malformed);
    return;
  }
  if (declared > MAX_BODY_BYTES) return refuse(req, res, tooLarge());
  const admitted = bodyToCome ? sim.admit(head) : { signed: true };
  if ("refused" in admitted) return refuse(req, res, admitted.refused);
  const { signed } = admitted;
  let held = 0;
  const hold = (bytes: number) => {
    if (!budget.take(bytes, signed)) return false;
    held += bytes;
    return true;
  };
  try {
    if (!hold(declared)) return refuse(req, res, sim.throttled(head));
    if (expectsContinue) res.writeContinue();
    // A declared length is read into one buffer of that size (the parser delivers no more than it):
    // no second copy. A body without Content-Length (chunked) is held as it arrives.
    const body = declared > 0 ? Buffer.allocUnsafe(declared) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    // Not destroyed when the loop is left early: a refusal's answer must still reach the client.
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      if (body) {
        size += chunk.copy(body, size);
        continue;
      }
      size += chunk.length;
      if (size > MAX_BODY_BYTES) return refuse(req, res, tooLarge());
      if (size > held && !hold(size - held)) return refuse(req, res, sim.throttled(head));
      chunks.push(chunk);
    }
    head.body = body ? body.subarray(0, size) : Buffer.concat(chunks, size);
    chunks.length = 0;
    writeResponse(res, await sim.handle(head));
  } finally {
    budget.give(held, signed);
  }
}

function tooLarge(): SimResponse {
  return {
    status: 413,
    headers: { "content-type": "text/plain" },
    body: Buffer.from("Request Entity Too Large"),
  };
}

/**
 * Answers now and closes the connection after it. Whatever body the client still sends is read and
 * dropped, never held (closing the socket at once could lose the answer), up to the largest body
 * a request may have.
 */
function refuse(req: IncomingMessage, res: ServerResponse, out: SimResponse): void {
  out.headers.connection = "close";
  writeResponse(res, out);
  let dropped = 0;
  req.on("data", (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > MAX_BODY_BYTES) req.destroy();
  });
  req.resume();
}

function toSimRequest(req: IncomingMessage, body: Buffer): SimRequest | undefined {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const rawPath = q < 0 ? url : url.slice(0, q);
  if (!rawPath.startsWith("/")) return undefined;
  const query: Record<string, string[]> = Object.create(null);
  if (q >= 0) {
    for (const part of url.slice(q + 1).split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      let k: string;
      let v: string;
      try {
        // SigV4 clients encode spaces as %20; a literal `+` is a plus sign, not a space.
        k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
        v = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1));
      } catch {
        return undefined;
      }
      const values = query[k] ?? [];
      values.push(v);
      query[k] = values;
    }
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.join(",") : v;
  }
  return {
    method: req.method ?? "GET",
    rawPath,
    query: { ...query },
    headers,
    body,
    scheme: "http",
    sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
  };
}

function writeResponse(res: ServerResponse, out: SimResponse): void {
  // An injected reset: the call was made; the client's connection is dropped instead of answered.
  if (out.reset) {
    if (!(out.body instanceof Uint8Array)) out.body.destroy();
    res.socket?.resetAndDestroy();
    return;
  }
  const headers = { ...out.headers };
  if (out.body instanceof Uint8Array) {
    // A HEAD answer keeps the Content-Length of what a GET would send (S3's HeadObject).
    if (out.body.length > 0 || headers["content-length"] === undefined)
      headers["content-length"] = String(out.body.length);
    res.writeHead(out.status, headers);
    res.end(out.body);
    return;
  }
  res.writeHead(out.status, headers);
  (out.body as Readable).pipe(res);
}
