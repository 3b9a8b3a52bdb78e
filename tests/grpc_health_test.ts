/**
 * gRPC health checks end to end: a real python3-grpcio server implementing grpc.health.v1.Health/Check
 * (message classes compiled by grpc_tools.protoc from this test's own health.proto) flips between SERVING,
 * NOT_SERVING and an error status on command; the proxy's /clusters follows. Skipped without grpcio.
 */
import assert from "node:assert/strict";
import { anyHost, bootstrapYaml, httpListener, staticCluster } from "./helpers.ts";
import { ADMIN, healthFlagsOf, startServer, waitFor } from "./health_helpers.ts";
import { compileProto, PY } from "./python_grpc.ts";

// grpc/health/v1/health.proto (Check only)
const PROTO = `syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
`;

// Answers the mode read from stdin (SERVING | NOT_SERVING | ERROR) for service "svc.A" when the check carries
// the x-hc: nuncio metadata; SERVICE_UNKNOWN otherwise. Prints its port, then "ok" after each command.
const SERVER = `
import sys, threading
from concurrent import futures
sys.path.insert(0, sys.argv[1])
import grpc, health_pb2, health_pb2_grpc
R = health_pb2.HealthCheckResponse
mode = ["SERVING"]
class Health(health_pb2_grpc.HealthServicer):
    def Check(self, request, context):
        md = dict(context.invocation_metadata())
        if request.service != "svc.A" or md.get("x-hc") != "nuncio":
            return R(status=R.SERVICE_UNKNOWN)
        if mode[0] == "ERROR":
            context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        return R(status=R.SERVING if mode[0] == "SERVING" else R.NOT_SERVING)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
for line in sys.stdin:
    mode[0] = line.strip()
    print("ok", flush=True)
server.stop(0)
`;

/** Starts the python health server; `set(mode)` switches what it answers. */
async function startPythonHealth(dir: string) {
  await Deno.writeTextFile(`${dir}/health.proto`, PROTO);
  await Deno.writeTextFile(`${dir}/server.py`, SERVER);
  await compileProto(dir, dir, `${dir}/health.proto`);
  const child = new Deno.Command(PY, { args: [`${dir}/server.py`, dir], stdin: "piped", stdout: "piped" })
    .spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const r = await lines.read();
      if (r.done) throw new Error("Python health server exited");
      buffered += r.value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
  const writer = child.stdin.getWriter();
  const port = Number(await nextLine());
  return {
    port,
    async set(mode: string) {
      await writer.write(new TextEncoder().encode(mode + "\n"));
      assert.equal(await nextLine(), "ok");
    },
    async [Symbol.asyncDispose]() {
      await writer.close();
      await lines.cancel();
      await child.status;
    },
  };
}

Deno.test({
  name: "gRPC health checks against python grpcio: SERVING, NOT_SERVING, error status, service name",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "nuncio_grpchc_" });
    try {
      await using py = await startPythonHealth(dir);
      const hc = (service: string) => ({
        timeout: "1s",
        interval: "0.05s",
        no_traffic_interval: "0.05s",
        unhealthy_threshold: 2,
        healthy_threshold: 2,
        grpc_health_check: {
          service_name: service,
          authority: "health.local",
          initial_metadata: [{ header: { key: "x-hc", value: "nuncio" } }],
        },
      });
      await using s = await startServer(bootstrapYaml(
        [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "svc" } }])] })],
        [
          staticCluster("svc", [py.port], { health_checks: [hc("svc.A")] }),
          staticCluster("other", [py.port], { health_checks: [hc("svc.B")] }),
        ],
        { admin: ADMIN },
      ));
      const host = `127.0.0.1:${py.port}`;
      const flags = async (cluster = "svc") => healthFlagsOf(await s.admin("/clusters"), cluster, host);
      // first checks are done before the server is up: svc.A serves, svc.B is an unknown service
      assert.equal(await flags(), "healthy");
      assert.equal(await flags("other"), "/failed_active_hc");

      await py.set("NOT_SERVING");
      await waitFor("NOT_SERVING to fail the host", async () => (await flags()) === "/failed_active_hc");
      const stats = await s.admin("/stats");
      assert.match(stats, /cluster\.svc\.health_check\.failure: [1-9]/);
      assert.match(stats, /cluster\.svc\.health_check\.healthy: 0\n/);

      await py.set("SERVING");
      await waitFor("SERVING to bring the host back", async () => (await flags()) === "healthy");

      await py.set("ERROR");
      await waitFor(
        "grpc-status UNAVAILABLE to fail the host",
        async () => (await flags()) === "/failed_active_hc",
      );
      assert.match(await s.admin("/stats"), /cluster\.svc\.health_check\.network_failure: 0\n/);
      await py.set("SERVING");
      await waitFor("the host back again", async () => (await flags()) === "healthy");
      assert.equal(await flags("other"), "/failed_active_hc");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
