/**
 * The gRPC transport of the service: unary calls over HTTP/2 cleartext (h2c, prior knowledge, as Envoy's
 * gRPC clients speak to a STATIC cluster with http2_protocol_options). A thin adapter over a
 * `UnaryHandler`; it runs on node:http2 because Deno.serve cannot send trailers, and is meant to move onto
 * nuncio's own HTTP/2 codec (src/http/h2/) once that has a server API: only this file changes.
 */
import http2 from "node:http2";
import { encodeGrpcFrame, encodeGrpcMessage, GrpcFrameDecoder, GrpcStatus } from "../grpc/frame.ts";
import { RateLimitServiceError } from "./types.ts";

/** A unary method: the request message in, the response message out; throws RateLimitServiceError for a status. */
export type UnaryHandler = (message: Uint8Array) => Promise<Uint8Array>;

/** Options of startGrpcServer. */
export interface GrpcServerOptions {
  hostname?: string;
  /** 0 picks a free port. */
  port: number;
  /** Methods by full path (`/package.Service/Method`). */
  methods: Record<string, UnaryHandler>;
}

/** A running gRPC server. */
export interface GrpcServer {
  /** The bound port. */
  readonly port: number;
  /** Stops accepting and closes every connection. */
  close(): Promise<void>;
}

/** Starts an h2c gRPC server; resolves once it listens. */
export function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServer> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    stream.on("error", () => {});
    const path = String(headers[":path"] ?? "");
    const handler = Object.hasOwn(opts.methods, path) ? opts.methods[path] : undefined;
    const ct = String(headers["content-type"] ?? "");
    if (headers[":method"] !== "POST" || !ct.startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    if (!handler) {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `Method ${path} not implemented`);
      return;
    }
    const decoder = new GrpcFrameDecoder();
    const messages: Uint8Array[] = [];
    let failed = false;
    stream.on("data", (chunk: Uint8Array) => {
      if (failed) return;
      try {
        for (const m of decoder.push(chunk)) messages.push(m);
      } catch (e) {
        failed = true;
        trailersOnly(stream, GrpcStatus.INVALID_ARGUMENT, (e as Error).message);
      }
    });
    stream.on("end", () => {
      if (failed) return;
      if (messages.length !== 1 || decoder.pending > 0) {
        trailersOnly(stream, GrpcStatus.INVALID_ARGUMENT, "Expected exactly one request message");
        return;
      }
      handler(messages[0]).then((reply) => {
        if (stream.destroyed || stream.closed) return;
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(encodeGrpcFrame(reply));
      }, (e) => {
        const code = e instanceof RateLimitServiceError ? e.grpcStatus : GrpcStatus.INTERNAL;
        trailersOnly(stream, code, (e as Error).message);
      });
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname ?? "127.0.0.1", () => {
      server.off("error", reject);
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : opts.port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sessions) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

function trailersOnly(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond({
    ":status": 200,
    "content-type": "application/grpc",
    "grpc-status": String(code),
    "grpc-message": encodeGrpcMessage(message),
  }, { endStream: true });
}
