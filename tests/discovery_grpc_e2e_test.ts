/**
 * The registry's gRPC EDS end to end with nuncio itself as the client: a proxy whose EDS cluster takes its
 * endpoints from the registry over ADS (state of the world and delta) or over a plain EDS gRPC stream routes
 * to the hosts registered there; a new host gets traffic, a deregistered one none; while the registry is down
 * traffic continues on the hosts the proxy has, and once it is back a new registration applies.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { startDiscoveryService } from "../src/discovery/run.ts";
import { waitFor } from "./health_helpers.ts";
import { refusedPort, restartablePort, startOrigin } from "./helpers.ts";
import { edsCluster, loadLoop, startNuncio, staticCluster, staticRouteListener } from "./xds_e2e_helpers.ts";

type Obj = Record<string, unknown>;
const grpcSource = (apiType: string): Obj => ({
  api_type: apiType,
  transport_api_version: "V3",
  grpc_services: [{ envoy_grpc: { cluster_name: "registry" } }],
});

const CASES: { name: string; eds: Obj; dynamic?: Obj }[] = [
  {
    name: "ADS (state of the world)",
    eds: { resource_api_version: "V3", ads: {} },
    dynamic: { ads_config: grpcSource("GRPC") },
  },
  {
    name: "ADS (delta)",
    eds: { resource_api_version: "V3", ads: {} },
    dynamic: { ads_config: grpcSource("DELTA_GRPC") },
  },
  {
    name: "api_config_source GRPC",
    eds: { resource_api_version: "V3", api_config_source: grpcSource("GRPC") },
  },
];

for (const c of CASES) {
  Deno.test(`registry gRPC EDS over ${c.name} feeds a nuncio proxy; survives a registry restart`, async () => {
    await using a = startOrigin("a");
    await using b = startOrigin("b");
    await using d = startOrigin("d");
    const grpcPort = restartablePort(); // the registry comes back on it
    const start = () =>
      startDiscoveryService({ port: 0, grpcPort, sweepIntervalMs: 0, grpc: { coalesceMs: 5 } });
    let reg = await start();
    try {
      const register = async (port: number) => {
        const r = await fetch(`http://127.0.0.1:${reg.port}/v1/registration/users`, {
          method: "POST",
          body: JSON.stringify({ ip: "127.0.0.1", port, tags: { az: "z1", region: "r1" } }),
        });
        assert.equal(r.status, 200, await r.text());
      };
      await register(a.port);
      const port = refusedPort();
      const adminPort = refusedPort();
      const bootstrap = stringify({
        node: { id: "edge-1", cluster: "edge" },
        admin: { address: { socket_address: { address: "127.0.0.1", port_value: adminPort } } },
        ...(c.dynamic ? { dynamic_resources: c.dynamic } : {}),
        static_resources: {
          listeners: [staticRouteListener(port, "ingress", "users", "reg")],
          clusters: [staticCluster("registry", grpcPort, true), edsCluster(c.eds, "ROUND_ROBIN", "users")],
        },
      });
      await using nuncio = await startNuncio(bootstrap, adminPort, 1);
      const load = loadLoop(port, 1);
      try {
        await load.more("hello from a|reg", 5);
        // a new host gets traffic
        await register(b.port);
        await load.more("hello from b|reg", 20);
        // a deregistered host gets none
        const del = await fetch(`http://127.0.0.1:${reg.port}/v1/registration/users/127.0.0.1`, {
          method: "DELETE",
        });
        assert.deepEqual(await del.json(), { removed: 2 });
        await register(b.port);
        await waitFor(
          "membership 1",
          async () => (await nuncio.stat("cluster.users.membership_total")) === 1,
        );
        await load.more("hello from b|reg", 2);
        const aAfter = load.count("hello from a|reg");
        await load.more("hello from b|reg", 30);
        assert.equal(load.count("hello from a|reg"), aAfter, "a deregistered host gets no traffic");
        const stats = reg.registry.stats.snapshot();
        assert.ok(stats.counters["discovery.grpc.acks"] >= 2, JSON.stringify(stats.counters));
        assert.equal(stats.counters["discovery.grpc.nacks"], 0);
        assert.equal(stats.gauges["discovery.grpc.streams_active"], 1);
        // the registry goes away: traffic continues on b
        await reg.close();
        await load.more("hello from b|reg", 30);
        // back (an empty memory store): a new registration applies
        reg = await start();
        await register(d.port);
        await load.more("hello from d|reg", 20, 20_000);
        const bAfter = load.count("hello from b|reg");
        await load.more("hello from d|reg", 30);
        assert.ok(load.count("hello from b|reg") - bAfter <= 1, "b is gone from the new registry");
      } finally {
        await load.stop();
      }
      assert.deepEqual(load.failures, []);
    } finally {
      await reg.close();
    }
  });
}
