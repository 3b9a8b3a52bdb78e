/**
 * gRPC through the router to an HTTP/2 upstream: an HTTP/1.1 client (curl) sends `application/grpc` framed bytes,
 * a python3-grpcio server answers; grpc-status/grpc-message trailers and trailers-only replies pass through and
 * the router charges `cluster.<name>.grpc.<service>.<method>.*`. `deno task test` brings grpcio first (tools/peers.ts).
 */
import assert from "node:assert/strict";
import {
  anyHost,
  bootstrapYaml,
  curl,
  httpListener,
  parseResponse,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import { grpcFrame, tempBytes } from "./h2_upstream_peers.ts";
import { PY } from "./python_grpc.ts";

const SERVER = `
import sys, grpc
from concurrent import futures

def say(request, context):
    context.set_trailing_metadata((("x-trace", "t1"),))
    return b"echo:" + request

def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

handler = grpc.method_handlers_generic_handler("test.Echo", {
    "Say": grpc.unary_unary_rpc_method_handler(say),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop(0)
`;

/** Starts the python3-grpcio server; resolves with its port and a stopper. */
async function startPythonServer(): Promise<{ port: number; close(): Promise<void> }> {
  const child = new Deno.Command(PY, {
    args: ["-c", SERVER],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  })
    .spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("python gRPC server exited");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    port: Number(text.trim()),
    close: async () => {
      await child.stdin.close();
      await child.stdout.cancel();
      await child.status;
    },
  };
}

Deno.test({
  name: "gRPC through the router to a python3-grpcio server",
  fn: async (t) => {
    const py = await startPythonServer();
    try {
      await using proxy = await startProxy(bootstrapYaml(
        [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "grpc" } }])] })],
        [staticCluster("grpc", [py.port], { http2_protocol_options: {} })],
      ));
      const body = await tempBytes(grpcFrame(new TextEncoder().encode("hi")));
      const call = (method: string) =>
        curl([
          "--raw",
          "-i",
          "-H",
          "content-type: application/grpc",
          "-H",
          "te: trailers",
          "--data-binary",
          `@${body}`,
          proxy.url(`/test.Echo/${method}`),
        ]);
      try {
        await t.step("a unary call: message in the body, grpc-status in chunked trailers", async () => {
          const r = await call("Say");
          assert.equal(r.code, 0, r.stderr);
          const res = parseResponse(r.stdout);
          assert.equal(res.status, 200);
          assert.equal(res.headers.get("content-type"), "application/grpc");
          assert.equal(res.headers.get("transfer-encoding"), "chunked");
          // one 12-byte chunk: the gRPC frame of "echo:hi"; then the trailers
          assert.ok(res.body.includes("\0\0\0\0\x07echo:hi"), JSON.stringify(res.body));
          assert.match(res.body, /\r\n0\r\n(?:.*\r\n)*grpc-status: 0\r\n/);
          assert.match(res.body, /x-trace: t1\r\n/);
          assert.equal(proxy.stat("cluster.grpc.grpc.test.Echo.Say.0"), 1);
          assert.equal(proxy.stat("cluster.grpc.grpc.test.Echo.Say.success"), 1);
          assert.equal(proxy.stat("cluster.grpc.grpc.test.Echo.Say.total"), 1);
        });

        await t.step(
          "a trailers-only error reply passes grpc-status and grpc-message in the head",
          async () => {
            const r = await call("Fail");
            const res = parseResponse(r.stdout);
            assert.equal(res.status, 200);
            assert.equal(res.headers.get("grpc-status"), "5");
            assert.equal(res.headers.get("grpc-message"), "no such thing");
            assert.equal(proxy.stat("cluster.grpc.grpc.test.Echo.Fail.5"), 1);
            assert.equal(proxy.stat("cluster.grpc.grpc.test.Echo.Fail.failure"), 1);
            assert.equal(proxy.stat("cluster.grpc.grpc.test.Echo.Fail.total"), 1);
            assert.equal(proxy.stat("cluster.grpc.grpc.test.Echo.Say.total"), 1);
          },
        );

        await t.step("non-gRPC requests are not charged", async () => {
          await curl([proxy.url("/test.Echo/Say")]);
          assert.equal(proxy.stat("cluster.grpc.grpc.test.Echo.Say.total"), 1);
        });
      } finally {
        await Deno.remove(body);
      }
    } finally {
      await py.close();
    }
  },
});
