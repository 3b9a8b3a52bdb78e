/**
 * gRPC through nuncio with real python3-grpcio peers: an h2c client -> nuncio (downstream HTTP/2) -> an h2c
 * cluster (upstream HTTP/2) -> a grpcio server. Unary, server/client streaming, bidi, errors with status and
 * message, metadata both ways, and deadlines (grpc-timeout capped by the route's max_stream_duration).
 */
import assert from "node:assert/strict";
import { anyHost, bootstrapYaml, httpListener, run, startProxy, staticCluster } from "./helpers.ts";
import { compileProto, PY } from "./python_grpc.ts";

const FIXTURES = new URL("./fixtures/grpc/", import.meta.url).pathname;

/** Compiles echo.proto into a temp dir and starts server.py; resolves with its port. */
async function startGrpcServer(dir: string) {
  await compileProto(FIXTURES, dir, `${FIXTURES}echo.proto`);
  const child = new Deno.Command(PY, {
    args: [`${FIXTURES}server.py`, dir],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  await child.stdout.cancel();
  const port = Number(text.trim());
  const close = async () => {
    await child.stdin.close();
    await child.status;
  };
  return { port, close, [Symbol.asyncDispose]: close };
}

Deno.test("gRPC through nuncio (python3-grpcio client and server)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nuncio_grpc_" });
  try {
    await using server = await startGrpcServer(dir);
    const cluster = staticCluster("grpc", [server.port], {
      typed_extension_protocol_options: {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
          "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          explicit_http_config: { http2_protocol_options: {} },
        },
      },
    });
    await using proxy = await startProxy(bootstrapYaml([
      httpListener({
        virtualHosts: [anyHost([{
          match: { prefix: "/" },
          route: { cluster: "grpc", timeout: "0s", max_stream_duration: { grpc_timeout_header_max: "0.5s" } },
        }])],
      }),
    ], [cluster]));
    const r = await run(PY, [`${FIXTURES}client.py`, dir, `127.0.0.1:${proxy.port()}`, "10"]);
    assert.equal(r.code, 0, r.stderr + JSON.stringify(await proxy.log(1)));
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.unary, { text: "echo:hi", n: 7, initial: "m1", trailing: "t-hi" });
    assert.deepEqual(out.server_stream, ["s-0", "s-1", "s-2", "s-3", "s-4"]);
    assert.deepEqual(out.client_stream, { text: "1,2,3,4,5", n: 15 });
    assert.deepEqual(out.bidi, ["A", "B", "C"]);
    assert.equal(out.big, 3_000_005);
    assert.deepEqual(out.fail, { code: "PERMISSION_DENIED", details: "no way: m2" });
    // the client allowed 10 s; nuncio capped grpc-timeout at the route's 0.5 s and answered DEADLINE_EXCEEDED
    assert.deepEqual(out.deadline, { code: "DEADLINE_EXCEEDED", details: "downstream duration timeout" });
    assert.ok(out.deadline_ms >= 400 && out.deadline_ms < 3000, `deadline after ${out.deadline_ms} ms`);
    assert.equal(proxy.stat("http.ingress.downstream_rq_max_duration_reached"), 1);
    assert.ok(proxy.stat("http.ingress.downstream_rq_http2_total") >= 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
