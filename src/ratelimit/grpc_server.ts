/**
 * The gRPC transport of the service: unary calls over HTTP/2 cleartext (h2c, prior knowledge, as Envoy's
 * gRPC clients speak to a STATIC cluster) on nuncio's own HTTP/2 codec (src/grpc/server.ts). A thin adapter
 * over a `UnaryHandler`; a RateLimitServiceError's `grpcStatus` becomes the call's status.
 */
import { GrpcServer as H2GrpcServer } from "../grpc/server.ts";

/** A unary method: the request message in, the response message out; throws RateLimitServiceError for a status. */
export type UnaryHandler = (message: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** Options of startGrpcServer. */
export interface GrpcServerOptions {
  hostname?: string;
  /** 0 picks a free port. */
  port: number;
  /** Methods by full path (`/package.Service/Method`). */
  methods: Record<string, UnaryHandler>;
  /** Bind with SO_REUSEPORT. */
  reusePort?: boolean;
}

/** A running gRPC server. */
export interface GrpcServer {
  /** The bound port. */
  readonly port: number;
  /** Stops accepting, lets calls in flight finish (bounded by `graceMs`, default 1000) and closes. */
  close(graceMs?: number): Promise<void>;
}

/** Starts an h2c gRPC server; resolves once it listens (rejects when the address is taken). */
export function startGrpcServer(opts: GrpcServerOptions): Promise<GrpcServer> {
  const server = new H2GrpcServer();
  for (const [path, handler] of Object.entries(opts.methods)) server.register(path, handler);
  try {
    const addr = server.listen({ hostname: opts.hostname, port: opts.port, reusePort: opts.reusePort });
    return Promise.resolve({ port: addr.port, close: (graceMs = 1000) => server.shutdown(graceMs) });
  } catch (e) {
    return server.close().then(() => Promise.reject(e));
  }
}
