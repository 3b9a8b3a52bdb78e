/**
 * Upstream HTTP/2 peers for end-to-end tests: an h2c origin on node:http2 that records what it saw (protocol,
 * sessions, concurrency per session, bodies, trailers), an origin on the project's codec that refuses streams
 * with GOAWAY, and gRPC framing helpers.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { ErrorCode } from "../src/http/h2/constants.ts";
import { H2ServerConnection } from "../src/http/h2/server.ts";
import type { H2Stream, H2StreamHandler } from "../src/http/h2/stream.ts";
import { HeaderMap } from "../src/http/headers.ts";

/** One request as the origin saw it. */
export interface H2Seen {
  method: string;
  path: string;
  httpVersion: string;
  authority: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
  trailers: Record<string, string | string[] | undefined>;
}

/** A running node:http2 origin. */
export interface H2Origin extends AsyncDisposable {
  port: number;
  requests: H2Seen[];
  /** HTTP/2 sessions (connections) accepted. */
  sessions: number;
  /** Highest number of concurrently open requests seen on one session. */
  maxPerSession: number;
  close(): Promise<void>;
}

/** What a handler gets: the compat request/response and the seen record (body counted before it runs). */
export type H2Handler = (
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  seen: H2Seen,
) => void | Promise<void>;

/** Options of `startH2Origin`. */
export interface H2OriginOptions {
  /** SETTINGS the origin sends (e.g. maxConcurrentStreams). */
  settings?: http2.Settings;
}

/** Starts an h2c origin on 127.0.0.1 (HTTP/2 with prior knowledge). */
export async function startH2Origin(handler: H2Handler, opts: H2OriginOptions = {}): Promise<H2Origin> {
  const requests: H2Seen[] = [];
  const active = new Map<unknown, number>();
  let sessions = 0;
  let maxPerSession = 0;
  const server = http2.createServer({ settings: opts.settings });
  const sockets = new Set<{ destroy(): void }>();
  server.on("connection", (s: { destroy(): void; on(e: string, f: () => void): void }) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("session", () => sessions++);
  server.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    const key = req.stream.session;
    const n = (active.get(key) ?? 0) + 1;
    active.set(key, n);
    if (n > maxPerSession) maxPerSession = n;
    res.on("close", () => active.set(key, (active.get(key) ?? 1) - 1));
    const seen: H2Seen = {
      method: req.method,
      path: req.url,
      httpVersion: req.httpVersion,
      authority: req.authority ?? String(req.headers.host ?? ""),
      headers: { ...req.headers },
      bodyBytes: 0,
      trailers: {},
    };
    requests.push(seen);
    req.on("data", (c: Uint8Array) => seen.bodyBytes += c.length);
    req.on("end", () => {
      seen.trailers = { ...req.trailers };
      void handler(req, res, seen);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return {
    port,
    requests,
    get sessions() {
      return sessions;
    },
    get maxPerSession() {
      return maxPerSession;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** An HTTP/2 origin on the project's codec that answers "second try", or refuses via GOAWAY while `refuse`. */
export interface GoawayOrigin extends AsyncDisposable {
  port: number;
  /** When true, the next request's connection gets GOAWAY(last stream 0) instead of an answer (then false). */
  refuse: boolean;
  /** Connections accepted. */
  connections: number;
  close(): Promise<void>;
}

/** Starts a GoawayOrigin on 127.0.0.1. */
export function startGoawayOrigin(): GoawayOrigin {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<H2ServerConnection>();
  const o: GoawayOrigin = {
    port: (listener.addr as Deno.NetAddr).port,
    refuse: true,
    connections: 0,
    close: async () => {
      listener.close();
      for (const c of conns) c.close();
      await accepting;
    },
    [Symbol.asyncDispose]: () => o.close(),
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      o.connections++;
      const ref: { h2?: H2ServerConnection } = {};
      const handler: H2StreamHandler = {
        onHeaders(st: H2Stream) {
          if (o.refuse) {
            o.refuse = false;
            ref.h2!.goaway(ErrorCode.NO_ERROR, 0);
            return;
          }
          const h = new HeaderMap();
          h.addLower("content-type", "text/plain");
          st.respond(200, h, false);
          st.sendData(new TextEncoder().encode("second try"), true);
        },
        onData() {},
        onTrailers() {},
        onReset() {},
      };
      const h2 = ref.h2 = new H2ServerConnection(conn, handler);
      conns.add(h2);
      h2.start().finally(() => conns.delete(h2));
    }
  })().catch(() => {});
  return o;
}

/** A gRPC length-prefixed message (uncompressed). */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

/** Writes `bytes` to a temp file (for curl --data-binary @file); returns its path. */
export async function tempBytes(bytes: Uint8Array): Promise<string> {
  const p = await Deno.makeTempFile({ prefix: "nuncio_h2_" });
  await Deno.writeFile(p, bytes);
  return p;
}
