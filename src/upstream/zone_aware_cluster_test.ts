/**
 * Zone aware routing through the cluster manager: config (zone_aware_lb_config, cluster_manager.local_cluster_name),
 * clusters following the local cluster's membership and health, and its stats.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { formatConfigError } from "../config/errors.ts";
import { loadConfigText } from "../config/load.ts";
import { StatsStore } from "../stats/store.ts";
import { createClusterManager } from "./cluster_manager.ts";
import { clusterLoadAssignmentSchema, clusterSchema } from "./config.ts";
import type { HostImpl } from "./host.ts";
import { seededRandom } from "./lb/lb.ts";

type Obj = Record<string, unknown>;

/** LocalityLbEndpoints of `n` endpoints 10.<net>.<zone index>.<i> in zone `zone`. */
const zoneEndpoints = (net: number, zone: string, n: number, status = "HEALTHY") => ({
  locality: { zone },
  lb_endpoints: Array.from({ length: n }, (_, i) => ({
    endpoint: {
      address: { socket_address: { address: `10.${net}.${zone.charCodeAt(0)}.${i}`, port_value: 80 } },
    },
    health_status: status,
  })),
});
const staticZones = (name: string, net: number, zones: Record<string, number>, extra: Obj = {}) =>
  clusterSchema.parse({
    name,
    load_assignment: { endpoints: Object.entries(zones).map(([z, n]) => zoneEndpoints(net, z, n)) },
    ...extra,
  });
const edsCfg = (name: string) =>
  clusterSchema.parse({ name, type: "EDS", eds_cluster_config: { eds_config: { ads: {} } } });
const cla = (name: string, net: number, zones: Record<string, number>) =>
  clusterLoadAssignmentSchema.parse({
    cluster_name: name,
    endpoints: Object.entries(zones).map(([z, n]) => zoneEndpoints(net, z, n)),
  });

function issues(yaml: string): string[] {
  const r = loadConfigText(yaml, "t.yaml");
  return r.ok ? [] : r.errors.map(formatConfigError);
}

Deno.test("config: zone_aware_lb_config and cluster_manager.local_cluster_name", () => {
  const c = clusterSchema.parse({
    name: "web",
    common_lb_config: {
      zone_aware_lb_config: {
        routing_enabled: { value: 40 },
        min_cluster_size: "3",
        fail_traffic_on_panic: true,
      },
    },
  });
  assert.deepEqual(c.common_lb_config?.zone_aware_lb_config, {
    routing_enabled: { value: 40 },
    min_cluster_size: 3,
    fail_traffic_on_panic: true,
  });
  const bad = (cfg: Obj) => {
    const r = clusterSchema.safeParse({ name: "web", ...cfg });
    assert.ok(!r.success);
    return r.error.issues.map((i) => i.message).join("; ");
  };
  assert.match(
    bad({ common_lb_config: { zone_aware_lb_config: {}, locality_weighted_lb_config: {} } }),
    /Only one of zone_aware_lb_config and locality_weighted_lb_config/,
  );
  assert.match(
    bad({ lb_policy: "MAGLEV", common_lb_config: { zone_aware_lb_config: {} } }),
    /not supported.*zone_aware_lb_config with lb_policy MAGLEV/,
  );
  assert.match(
    bad({ common_lb_config: { zone_aware_lb_config: { force_local_zone: {} } } }),
    /not supported/,
  );

  const boot = (cm: string) =>
    `cluster_manager: ${cm}\nstatic_resources:\n  clusters:\n  - name: callers\n  - name: web\n`;
  assert.deepEqual(issues(boot("{local_cluster_name: callers}")), []);
  const missing = issues(boot("{local_cluster_name: nope}"));
  assert.equal(missing.length, 1);
  assert.match(missing[0], /cluster_manager\.local_cluster_name.*local cluster "nope" must be defined/);
  for (const field of ["outlier_detection", "upstream_bind_config"]) {
    const e = issues(boot(`{${field}: {}}`));
    assert.equal(e.length, 1, field);
    assert.match(e[0], new RegExp(`cluster_manager\\.${field}.*not supported`));
  }
});

function setup(configs: ReturnType<typeof clusterSchema.parse>[], zone = "a") {
  const stats = new StatsStore();
  const cm = createClusterManager(configs, {
    stats,
    clock: new ManualClock(),
    random: seededRandom(5),
    shared: SharedArena.create({ capacity: 1024 }),
    localClusterName: "callers",
    locality: { zone },
  });
  const c = (n: string) => stats.counters.get(n)?.value ?? 0;
  /** Percent of `n` picks of cluster `name` per zone. */
  const shares = (name: string, n = 4000) => {
    const count: Record<string, number> = {};
    const cluster = cm.get(name)!;
    for (let i = 0; i < n; i++) {
      const h = cluster.chooseHost({}) as HostImpl | null;
      const z = h === null ? "none" : h.locality.split("/")[1];
      count[z] = (count[z] ?? 0) + 1;
    }
    return Object.fromEntries(Object.entries(count).map(([z, v]) => [z, Math.round(100 * v / n)]));
  };
  return { cm, stats, c, shares };
}

Deno.test("cluster manager: clusters route by zone and follow the local cluster's changes", async () => {
  const { cm, c, shares } = setup([
    edsCfg("callers"),
    staticZones("web", 1, { a: 3, b: 3 }),
    staticZones("hashed", 2, { a: 3, b: 3 }, { lb_policy: "RING_HASH" }),
  ]);
  await cm.initialize();
  // the local cluster has no endpoints yet: no zone routing
  assert.deepEqual(shares("web", 600), { a: 50, b: 50 });
  assert.equal(c("cluster.web.lb_zone_routing_all_directly"), 0);

  // callers 50/50 over zones a and b: everything stays in zone a
  assert.ok(cm.setEndpoints("callers", cla("callers", 9, { a: 2, b: 2 })));
  await cm.whenWarm("callers");
  assert.deepEqual(shares("web", 600), { a: 100 });
  assert.equal(c("cluster.web.lb_zone_routing_all_directly"), 600);

  // callers move to 75 % in zone a: only 50/75 of our picks may stay, the rest goes to b
  cm.setEndpoints("callers", cla("callers", 9, { a: 3, b: 1 }));
  const s = shares("web", 20000);
  assert.ok(Math.abs(s.a - 67) <= 1 && Math.abs(s.b - 33) <= 1, JSON.stringify(s));
  assert.ok(c("cluster.web.lb_zone_routing_sampled") > 0);
  assert.ok(c("cluster.web.lb_zone_routing_cross_zone") > 0);

  // ring hash does not route by zone (as Envoy) and registers no zone stats
  assert.deepEqual(shares("hashed", 600).none, undefined);
  assert.equal(c("cluster.hashed.lb_recalculate_zone_structures"), 0);

  // the local cluster is an upstream like any other: with its 4 hosts it is under min_cluster_size
  assert.deepEqual(shares("callers", 100), { a: 75, b: 25 });
  assert.ok(c("cluster.callers.lb_zone_cluster_too_small") >= 1);
});

Deno.test("cluster manager: too small, local cluster not ok, and a local cluster replaced by CDS", async () => {
  const { cm, c, shares } = setup([
    staticZones("callers", 9, { b: 1, c: 1 }), // nobody in our zone "a"
    staticZones("small", 1, { a: 2, b: 2 }),
    staticZones("web", 2, { a: 3, b: 3 }),
  ]);
  await cm.initialize();
  assert.deepEqual(shares("web", 600), { a: 50, b: 50 });
  assert.ok(c("cluster.web.lb_local_cluster_not_ok") >= 1);
  // CDS replaces the local cluster: clusters rebuild their routing from its new hosts once it is warm
  cm.addOrUpdate(staticZones("callers", 9, { a: 1, b: 1 }));
  await cm.whenWarm("callers");
  assert.deepEqual(shares("web", 600), { a: 100 });
  assert.deepEqual(shares("small", 600), { a: 50, b: 50 });
  assert.ok(c("cluster.small.lb_zone_cluster_too_small") >= 1);
});
