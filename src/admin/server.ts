/** Serves the admin Hono app on its own port with Deno.serve. */
import type { Hono } from "hono";
import { type Clock, systemClock } from "../common/clock.ts";
import { StreamInfo } from "../common/stream_info.ts";
import { HeaderMap } from "../http/headers.ts";

/** Options of the admin server. */
export interface AdminServerOptions {
  /** Address to bind. */
  hostname: string;
  /** Port to bind (0: any free port). */
  port: number;
  /** Called once per answered request with what the admin access log records. */
  onRequest?: (info: StreamInfo) => void;
  /** Time source of the recorded times (default: the system clock). */
  clock?: Clock;
}

/** A running admin server. */
export interface AdminServer {
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /** Stops accepting, finishes in-flight requests and resolves when the server is gone. */
  close(): Promise<void>;
}

/** Starts serving `app` on hostname:port (binding errors throw synchronously). */
export function startAdminServer(app: Hono, opts: AdminServerOptions): AdminServer {
  const ac = new AbortController();
  const onRequest = opts.onRequest;
  const handler: Deno.ServeHandler<Deno.NetAddr> = onRequest
    ? (req, conn) => logged(app, req, conn, onRequest, opts.clock ?? systemClock)
    : (req) => app.fetch(req);
  const server = Deno.serve(
    { hostname: opts.hostname, port: opts.port, signal: ac.signal, onListen() {} },
    handler,
  );
  let closing: Promise<void> | undefined;
  return {
    port: server.addr.port,
    close() {
      if (!closing) {
        ac.abort();
        closing = server.finished;
      }
      return closing;
    },
  };
}

/** Answers one admin request and reports it (method, path, status, bytes, peer, duration). */
async function logged(
  app: Hono,
  req: Request,
  conn: Deno.ServeHandlerInfo<Deno.NetAddr>,
  onRequest: (info: StreamInfo) => void,
  clock: Clock,
): Promise<Response> {
  const info = new StreamInfo();
  info.startTime = clock.now();
  info.startMono = clock.monotonic();
  const url = new URL(req.url);
  info.method = req.method;
  info.path = url.pathname + url.search;
  info.authority = req.headers.get("host") ?? url.host;
  info.scheme = url.protocol.slice(0, -1);
  info.protocol = "HTTP/1.1";
  info.requestHeaders = HeaderMap.from(req.headers);
  const peer = conn.remoteAddr;
  info.downstreamRemoteAddress = info.downstreamDirectRemoteAddress = peer.hostname.includes(":")
    ? `[${peer.hostname}]:${peer.port}`
    : `${peer.hostname}:${peer.port}`;
  info.bytesReceived = Number(req.headers.get("content-length") ?? 0) || 0;
  let res: Response;
  try {
    res = await app.fetch(req);
  } catch (e) {
    info.responseCode = 500;
    info.endMono = clock.monotonic();
    onRequest(info);
    throw e;
  }
  info.responseCode = res.status;
  info.responseHeaders = HeaderMap.from(res.headers);
  info.bytesSent = Number(res.headers.get("content-length") ?? 0) || 0;
  info.endMono = clock.monotonic();
  onRequest(info);
  return res;
}
