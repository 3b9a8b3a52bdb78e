import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import type { ClusterImpl } from "./cluster.ts";
import { createClusterManager } from "./cluster_manager.ts";
import { clusterSchema } from "./config.ts";
import { seededRandom } from "./lb/lb.ts";

const ep = (address: string, extra: Record<string, unknown> = {}, hostname?: string) => ({
  endpoint: { address: { socket_address: { address, port_value: 8080 } }, ...(hostname ? { hostname } : {}) },
  ...extra,
});

function make(endpoints: unknown[], extra: Record<string, unknown> = {}) {
  const stats = new StatsStore();
  const config = clusterSchema.parse({
    name: "c",
    load_assignment: { endpoints: [{ lb_endpoints: endpoints }] },
    ...extra,
  });
  const cm = createClusterManager([config], { stats, clock: new ManualClock(), random: seededRandom(7) });
  const cluster = cm.get("c") as ClusterImpl;
  const g = (n: string) => stats.gauges.get(`cluster.c.${n}`)?.value;
  const c = (n: string) => stats.counters.get(`cluster.c.${n}`)?.value ?? 0;
  return { cm, cluster, stats, g, c };
}

const picks = (cluster: ClusterImpl, n: number) =>
  Array.from({ length: n }, () => cluster.chooseHost({})?.address ?? null);

Deno.test("cluster manager", async (t) => {
  await t.step("static membership, hostnames, weights and gauges", async () => {
    const { cm, cluster, g } = make([
      ep("10.0.0.1", { load_balancing_weight: 3 }),
      ep("::1", {}, "api.local"),
    ]);
    await cm.initialize();
    assert.equal(cm.all().length, 1);
    assert.equal(cm.get("missing"), undefined);
    const [a, b] = cluster.hosts();
    assert.equal(a.addressString, "10.0.0.1:8080");
    assert.equal(a.hostname, "10.0.0.1");
    assert.equal(a.weight, 3);
    assert.equal(b.addressString, "[::1]:8080");
    assert.equal(b.hostname, "api.local");
    assert.equal(g("membership_total"), 2);
    assert.equal(g("membership_healthy"), 2);
    assert.equal(cluster.connectTimeoutMs, 5000);
    assert.equal(cluster.perConnectionBufferLimitBytes, 1048576);
    cm.close();
  });

  await t.step("unhealthy hosts are skipped", () => {
    const { cm, cluster, g, c } = make([
      ep("10.0.0.1"),
      ep("10.0.0.2", { health_status: "UNHEALTHY" }),
      ep("10.0.0.3", { health_status: "HEALTHY" }),
      ep("10.0.0.4"),
    ]);
    assert.equal(g("membership_healthy"), 3);
    assert.deepEqual(picks(cluster, 4), ["10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.1"]);
    assert.equal(c("lb_healthy_panic"), 0);
    // Flipped without notification: the cluster resyncs on the first pick of the bad host.
    cluster.hosts()[0].healthy = false;
    assert.deepEqual(picks(cluster, 3).filter((a) => a === "10.0.0.1"), []);
    assert.equal(g("membership_healthy"), 2);
    assert.equal(cluster.panic, false);
    cm.close();
  });

  await t.step("panic mode below healthy_panic_threshold (Envoy default 50 %)", () => {
    const { cm, cluster, c } = make([
      ep("10.0.0.1"),
      ep("10.0.0.2", { health_status: "DRAINING" }),
      ep("10.0.0.3", { health_status: "TIMEOUT" }),
    ]);
    assert.equal(cluster.panic, true);
    assert.deepEqual(new Set(picks(cluster, 6)), new Set(["10.0.0.1", "10.0.0.2", "10.0.0.3"]));
    assert.equal(c("lb_healthy_panic"), 6);
    cluster.hosts()[1].healthy = true;
    cluster.healthChanged();
    assert.equal(cluster.panic, false);
    assert.deepEqual(new Set(picks(cluster, 6)), new Set(["10.0.0.1", "10.0.0.2"]));
    cm.close();
  });

  await t.step("threshold 0 disables panic; no healthy host gives null", () => {
    const { cm, cluster, c } = make([ep("10.0.0.1", { health_status: "UNHEALTHY" })], {
      common_lb_config: { healthy_panic_threshold: { value: 0 } },
    });
    assert.equal(cluster.chooseHost({}), null);
    assert.equal(c("upstream_cx_none_healthy"), 1);
    cm.close();
    const empty = make([]);
    assert.equal(empty.cluster.chooseHost({}), null);
    empty.cm.close();
  });

  await t.step("avoid asks the LB for another host", () => {
    const { cm, cluster } = make([ep("10.0.0.1"), ep("10.0.0.2"), ep("10.0.0.3")]);
    const [h1, h2] = cluster.hosts();
    for (let i = 0; i < 6; i++) {
      const h = cluster.chooseHost({ avoid: [h1, h2] });
      assert.equal(h?.address, "10.0.0.3");
    }
    const ring = make([ep("10.0.0.1"), ep("10.0.0.2")], { lb_policy: "RING_HASH" });
    const first = ring.cluster.chooseHost({ hash: 42n })!;
    assert.notEqual(ring.cluster.chooseHost({ hash: 42n, avoid: [first] }), first);
    ring.cm.close();
    cm.close();
  });

  await t.step("every lb_policy is wired", () => {
    for (const lb_policy of ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"]) {
      const { cm, cluster } = make([ep("10.0.0.1"), ep("10.0.0.2")], { lb_policy });
      assert.ok(cluster.chooseHost({ hash: 7n }), lb_policy);
      cm.close();
    }
  });

  await t.step("recordResponseCode creates and caches upstream_rq_<code> and <N>xx", () => {
    const { cm, cluster, stats, c } = make([ep("10.0.0.1")]);
    const before = stats.counters.size;
    cluster.stats.recordResponseCode(200);
    cluster.stats.recordResponseCode(200);
    cluster.stats.recordResponseCode(503);
    cluster.stats.recordResponseCode(204);
    assert.equal(c("upstream_rq_200"), 2);
    assert.equal(c("upstream_rq_204"), 1);
    assert.equal(c("upstream_rq_2xx"), 3);
    assert.equal(c("upstream_rq_503"), 1);
    assert.equal(c("upstream_rq_5xx"), 1);
    assert.equal(stats.counters.size, before + 5);
    const counter = stats.counters.get("cluster.c.upstream_rq_200");
    cluster.stats.recordResponseCode(200);
    assert.equal(stats.counters.get("cluster.c.upstream_rq_200"), counter);
    assert.equal(counter!.value, 3);
    assert.ok(stats.counters.has("cluster.c.upstream_cx_total"));
    assert.ok(stats.histograms.has("cluster.c.upstream_rq_time"));
    cm.close();
  });

  await t.step("duplicate cluster names are rejected", () => {
    const config = clusterSchema.parse({ name: "dup" });
    assert.throws(
      () => createClusterManager([config, config], { stats: new StatsStore(), clock: new ManualClock() }),
      /Duplicate cluster name "dup"/,
    );
  });
});
