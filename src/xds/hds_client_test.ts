import assert from "node:assert/strict";
import type { ApiConfigSource } from "../config/config_source.ts";
import { GrpcServer, type GrpcStreamCall } from "../grpc/server.ts";
import { StatsStore } from "../stats/store.ts";
import { HealthFlag } from "../upstream/health/state.ts";
import { encodeMessage } from "./codec/encode.ts";
import { decodeMessage } from "./codec/proto_json.ts";
import { messageType } from "./codec/root.ts";
import { statusOfFlags } from "./hds_cluster.ts";
import { HDS_STREAM_METHOD, HdsClient, parseSpecifier } from "./hds_client.ts";

const REQ = messageType("envoy.service.health.v3.HealthCheckRequestOrEndpointHealthResponse");
const SPEC = messageType("envoy.service.health.v3.HealthCheckSpecifier");
const HC = {
  timeout: "1s",
  interval: "0.05s",
  unhealthy_threshold: 1,
  healthy_threshold: 1,
  http_health_check: { path: "/hc" },
};

Deno.test("statusOfFlags: pending is UNKNOWN, failed UNHEALTHY or TIMEOUT, degraded DEGRADED", () => {
  const F = HealthFlag;
  assert.equal(statusOfFlags(F.FAILED_ACTIVE_HC | F.PENDING_ACTIVE_HC), "UNKNOWN");
  assert.equal(statusOfFlags(F.FAILED_ACTIVE_HC), "UNHEALTHY");
  assert.equal(statusOfFlags(F.FAILED_ACTIVE_HC | F.ACTIVE_HC_TIMEOUT), "TIMEOUT");
  assert.equal(statusOfFlags(F.DEGRADED_ACTIVE_HC), "DEGRADED");
  assert.equal(statusOfFlags(0), "HEALTHY");
});

Deno.test("parseSpecifier: health checks go through nuncio's schema; problems name their path", () => {
  const ep = { address: { socket_address: { address: "127.0.0.1", port_value: 80 } } };
  const ok = parseSpecifier({
    cluster_health_checks: [{
      cluster_name: "web",
      health_checks: [HC],
      locality_endpoints: [{ locality: { zone: "a" }, endpoints: [ep] }],
    }],
  });
  assert.equal(ok[0].checks[0].interval, 50);
  assert.deepEqual(ok[0].localities, [{
    locality: { zone: "a" },
    endpoints: [{ address: "127.0.0.1", port: 80 }],
  }]);
  assert.throws(
    () =>
      parseSpecifier({
        cluster_health_checks: [{
          cluster_name: "web",
          health_checks: [{ ...HC, http_health_check: { path: "x" } }],
        }],
      }),
    /cluster_health_checks\[0\]\.health_checks\[0\]\.http_health_check\.path: path must start with \//,
  );
  assert.throws(
    () => parseSpecifier({ cluster_health_checks: [{ cluster_name: "a" }, { cluster_name: "a" }] }),
    /cluster_health_checks\[1\]\.cluster_name: "a" is listed twice/,
  );
});

const SOURCE = {
  api_type: "GRPC",
  grpc_services: [{ envoy_grpc: { cluster_name: "hds" } }],
} as unknown as ApiConfigSource;

Deno.test("HdsClient: checks what the specifier lists with nuncio's HTTP checker and reports every interval", async () => {
  let failing = false;
  const origin = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    () => new Response("ok", { status: failing ? 503 : 200 }),
  );
  const originPort = origin.addr.port;
  const reports: Record<string, unknown>[] = [];
  let hello: Record<string, unknown> | undefined;
  let server: GrpcStreamCall | undefined;
  const grpc = new GrpcServer();
  grpc.registerStream(HDS_STREAM_METHOD, (call) => {
    server = call;
    call.onMessage = (m) => {
      const msg = decodeMessage(REQ, m);
      if (msg.health_check_request) {
        hello = msg;
        call.send(encodeMessage(SPEC, {
          interval: "0.05s",
          cluster_health_checks: [{
            cluster_name: "web",
            health_checks: [HC],
            locality_endpoints: [{
              locality: { zone: "z1" },
              endpoints: [
                { address: { socket_address: { address: "127.0.0.1", port_value: originPort } } },
                { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } },
              ],
            }],
          }],
        }));
      } else reports.push(msg);
    };
  });
  const { port } = grpc.listen({ port: 0 });
  const stats = new StatsStore();
  const client = new HdsClient(SOURCE, {
    node: { id: "n1", cluster: "edge" },
    resolveCluster: () => ({ host: "127.0.0.1", port }),
    stats,
  });
  const statusOf = (p: number) => {
    const r = reports.at(-1) as {
      endpoint_health_response?: { endpoints_health?: Record<string, unknown>[] };
    };
    const e = r?.endpoint_health_response?.endpoints_health?.find((x) =>
      (x.endpoint as { address: { socket_address: { port_value: number } } }).address.socket_address
        .port_value === p
    );
    return e?.health_status;
  };
  try {
    client.start();
    await waitUntil(() => statusOf(originPort) === "HEALTHY" && statusOf(1) === "UNHEALTHY");
    assert.deepEqual(hello, {
      health_check_request: {
        node: { id: "n1", cluster: "edge" },
        capability: { health_check_protocols: ["HTTP", "TCP"] },
      },
    });
    const last = reports.at(-1) as { endpoint_health_response: { cluster_endpoints_health: unknown[] } };
    assert.deepEqual(last.endpoint_health_response.cluster_endpoints_health, [{
      cluster_name: "web",
      locality_endpoints_health: [{
        locality: { zone: "z1" },
        endpoints_health: [
          {
            endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: originPort } } },
            health_status: "HEALTHY",
          },
          {
            endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } },
            health_status: "UNHEALTHY",
          },
        ],
      }],
    }]);
    failing = true;
    await waitUntil(() => statusOf(originPort) === "UNHEALTHY");
    failing = false;
    await waitUntil(() => statusOf(originPort) === "HEALTHY");
    assert.equal(client.intervalMs, 100); // 50 ms asked, 100 ms at least
    assert.equal(stats.counter("hds_delegate.requests").value, 1);
    assert.ok(stats.counter("hds_delegate.responses").value >= 3);
    assert.ok(stats.counter("hds_delegate.cluster.web.health_check.attempt").value >= 3);
    // an empty specifier stops every check
    server!.send(encodeMessage(SPEC, { interval: "0.05s" }));
    await waitUntil(() => client.checks().length === 0);
  } finally {
    await client.close();
    server?.end();
    await grpc.close();
    await origin.shutdown();
  }
});

async function waitUntil(f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
