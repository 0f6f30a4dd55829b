import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import type { SimRequest, SimResponse } from "./core/types.js";
import type { Simulator } from "./simulator.js";

/** Requests larger than this are refused before their body is read (AWS answers 413 too). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface ServeOptions {
  port?: number;
  host?: string;
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
  const server = createServer(
    { requestTimeout: 120_000, headersTimeout: 30_000, keepAliveTimeout: 5_000 },
    (req, res) => {
      handleHttp(sim, req, res).catch((err) => {
        process.stderr.write(`kmslab sim: ${(err as Error).message}\n`);
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    },
  );
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

async function handleHttp(sim: Simulator, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    res.writeHead(413, { "content-type": "text/plain", connection: "close" }).end("Request Entity Too Large");
    req.destroy();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      res
        .writeHead(413, { "content-type": "text/plain", connection: "close" })
        .end("Request Entity Too Large");
      req.destroy();
      return;
    }
    chunks.push(chunk);
  }
  const simReq = toSimRequest(req, Buffer.concat(chunks));
  if (!simReq) {
    res.writeHead(400, { "content-type": "text/plain" }).end("Malformed request target");
    return;
  }
  writeResponse(res, await sim.handle(simReq));
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
