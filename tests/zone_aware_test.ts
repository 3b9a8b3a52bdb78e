/**
 * Zone aware routing end to end: a sidecar in zone "a" (node.locality.zone) with a local cluster describing its
 * callers sends its requests to the upstream's zone-a origins while their share of the upstream covers its
 * callers' share, and spills the rest to zone b when it does not (fewer zone-a origins, or more zone-a callers).
 */
import assert from "node:assert/strict";
import { request } from "./fault_peers.ts";
import { anyHost, bootstrapYaml, httpListener, startOrigin, startProxy } from "./helpers.ts";
import { clusterSchema } from "../src/upstream/config.ts";
import type { DynamicClusterManager } from "../src/upstream/types.ts";

type Obj = Record<string, unknown>;

/** A STATIC cluster with one LocalityLbEndpoints per zone (`ports` per zone on 127.0.0.1). */
function zonedCluster(name: string, zones: Record<string, number[]>, extra: Obj = {}): Obj {
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    load_assignment: {
      cluster_name: name,
      endpoints: Object.entries(zones).map(([zone, ports]) => ({
        locality: { region: "us-east-1", zone },
        lb_endpoints: ports.map((p) => ({
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
        })),
      })),
    },
    ...extra,
  };
}

/** The callers (the local cluster): hosts are never contacted, only their zones count. */
const callers = (a: number, b: number) =>
  zonedCluster("callers", {
    "us-east-1a": Array.from({ length: a }, (_, i) => 20000 + i),
    "us-east-1b": Array.from({ length: b }, (_, i) => 21000 + i),
  });

/** Counts answers per origin zone over `n` requests. */
async function zoneCounts(port: number, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await request(port, "/");
    assert.equal(r.status, 200, r.body);
    const zone = r.body.replace(/^hello from /, "").slice(0, 1); // origins are named a0.., b0..
    out[zone] = (out[zone] ?? 0) + 1;
  }
  return out;
}

Deno.test("zone aware routing: a sidecar in zone a prefers zone-a origins and spills when they are too few", async () => {
  const origins = new Map(["a0", "a1", "a2", "b0", "b1", "b2", "b3", "b4"].map((n) => [n, startOrigin(n)]));
  try {
    const port = (n: string) => origins.get(n)!.port;
    const web = (a: string[], b: string[]) =>
      zonedCluster("web", { "us-east-1a": a.map(port), "us-east-1b": b.map(port) });
    const yaml = bootstrapYaml(
      [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])] })],
      [callers(2, 2), web(["a0", "a1", "a2"], ["b0", "b1", "b2"])],
      {
        node: { id: "sidecar-1", cluster: "frontend", locality: { region: "us-east-1", zone: "us-east-1a" } },
        cluster_manager: { local_cluster_name: "callers" },
      },
    );
    await using proxy = await startProxy(yaml);
    const cm = proxy.plane.clusters as DynamicClusterManager;

    // callers 50/50, upstream 50/50: every request stays in zone a
    assert.deepEqual(await zoneCounts(proxy.port(), 60), { a: 60 });
    assert.equal(proxy.stat("cluster.web.lb_zone_routing_all_directly"), 60);
    assert.equal(proxy.stat("cluster.web.lb_zone_routing_cross_zone"), 0);

    // zone a keeps one origin of six (17 % of the upstream for 50 % of the callers): a third of our requests
    // stay local, the rest spill to zone b
    cm.addOrUpdate(clusterSchema.parse(web(["a0"], ["b0", "b1", "b2", "b3", "b4"])));
    assert.ok(await cm.whenWarm("web"));
    let n = await zoneCounts(proxy.port(), 300);
    assert.ok(n.a >= 60 && n.a <= 140, `about 100 of 300 in zone a: ${JSON.stringify(n)}`);
    assert.equal(n.a + n.b, 300);
    assert.ok(proxy.stat("cluster.web.lb_zone_routing_sampled") > 0);
    assert.ok(proxy.stat("cluster.web.lb_zone_routing_cross_zone") > 0);

    // back to 3 + 3 origins, but 3 of 4 callers now run in zone a: 50/75 of our requests can stay
    cm.addOrUpdate(clusterSchema.parse(web(["a0", "a1", "a2"], ["b0", "b1", "b2"])));
    cm.addOrUpdate(clusterSchema.parse(callers(3, 1)));
    assert.ok(await cm.whenWarm("web"));
    assert.ok(await cm.whenWarm("callers"));
    n = await zoneCounts(proxy.port(), 300);
    assert.ok(n.a >= 160 && n.a <= 240, `about 200 of 300 in zone a: ${JSON.stringify(n)}`);
  } finally {
    await Promise.all([...origins.values()].map((o) => o.close()));
  }
});

Deno.test("zone aware routing: a too small upstream is balanced over every zone (lb_zone_cluster_too_small)", async () => {
  await using a0 = startOrigin("a0");
  await using b0 = startOrigin("b0");
  const yaml = bootstrapYaml(
    [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])] })],
    [callers(1, 1), zonedCluster("web", { "us-east-1a": [a0.port], "us-east-1b": [b0.port] })],
    {
      node: { locality: { region: "us-east-1", zone: "us-east-1a" } },
      cluster_manager: { local_cluster_name: "callers" },
    },
  );
  await using proxy = await startProxy(yaml);
  assert.deepEqual(await zoneCounts(proxy.port(), 10), { a: 5, b: 5 });
  assert.ok(proxy.stat("cluster.web.lb_zone_cluster_too_small") >= 1);
});
