/**
 * The gRPC origin of the bench's gRPC line, run in its own process (never inside nuncio's):
 * `deno run --allow-net bench/grpc_origin.ts PORT` serves the unary method GRPC_METHOD over h2c with
 * nuncio's GrpcServer (src/grpc/server.ts), echoing each request message back with status OK. It prints
 * "listening PORT" once bound and exits on SIGTERM/SIGINT after a graceful shutdown.
 */

import { GrpcServer } from "../src/grpc/server.ts";

/** Full path of the echo method the bench calls. */
export const GRPC_METHOD = "/nuncio.bench.Echo/Unary";

/** Serialized request message: protobuf field 1 (string) holding the 31-byte text below. */
export const GRPC_MESSAGE: Uint8Array = (() => {
  const text = new TextEncoder().encode("nuncio-bench-0123456789abcdefgh");
  const out = new Uint8Array(2 + text.length);
  out[0] = 0x0a; // field 1, length-delimited
  out[1] = text.length;
  out.set(text, 2);
  return out;
})();

/** The request body h2load posts: GRPC_MESSAGE in one uncompressed gRPC frame. */
export function grpcRequestBody(): Uint8Array {
  const out = new Uint8Array(5 + GRPC_MESSAGE.length);
  new DataView(out.buffer).setUint32(1, GRPC_MESSAGE.length);
  out.set(GRPC_MESSAGE, 5);
  return out;
}

/** Starts the echo server on `port` (0 picks one); resolves with the server and its bound port. */
export function startEchoServer(port: number): { server: GrpcServer; port: number } {
  const server = new GrpcServer().register(GRPC_METHOD, (req) => req);
  const addr = server.listen({ hostname: "127.0.0.1", port });
  return { server, port: addr.port };
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? "0");
  if (!Number.isInteger(port) || port < 0) {
    console.error(`Bad port ${Deno.args[0]}`);
    Deno.exit(2);
  }
  const { server, port: bound } = startEchoServer(port);
  console.log(`listening ${bound}`);
  const stop = () => {
    server.shutdown(1000).then(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
