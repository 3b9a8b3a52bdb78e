import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import type { ClusterImpl } from "./cluster.ts";
import { createClusterManager } from "./cluster_manager.ts";
import { clusterSchema } from "./config.ts";
import { seededRandom } from "./lb/lb.ts";
import type { HostImpl } from "./host.ts";
import { parseIpPort } from "./original_dst.ts";

function make(extra: Record<string, unknown> = {}) {
  const stats = new StatsStore();
  const clock = new ManualClock();
  const config = clusterSchema.parse({
    name: "od",
    type: "ORIGINAL_DST",
    lb_policy: "CLUSTER_PROVIDED",
    ...extra,
  });
  const cm = createClusterManager([config], { stats, clock, random: seededRandom(3) });
  const cluster = cm.get("od") as ClusterImpl;
  const g = (n: string) => stats.gauges.get(`cluster.od.${n}`)?.value;
  const c = (n: string) => stats.counters.get(`cluster.od.${n}`)?.value ?? 0;
  return { cm, cluster, clock, g, c };
}

Deno.test("parseIpPort: IPv4 and bracketed IPv6 literals with a port, nothing else", () => {
  assert.deepEqual(parseIpPort("10.1.2.3:8080"), { address: "10.1.2.3", port: 8080 });
  assert.deepEqual(parseIpPort("[::1]:443"), { address: "::1", port: 443 });
  for (
    const bad of [
      "10.1.2.3",
      "::1:80",
      "[::1]",
      "host.local:80",
      "10.1.2.3:",
      "10.1.2.3:65536",
      "10.1.2.3:8x",
    ]
  ) {
    assert.equal(parseIpPort(bad), undefined, bad);
  }
});

Deno.test("ORIGINAL_DST: a host per destination, created on first use and swept once unused", async () => {
  const { cm, cluster, clock, g, c } = make({ cleanup_interval: "2s" });
  await cm.initialize();
  assert.equal(g("membership_total"), 0);
  assert.equal(cluster.chooseHost({}), null, "no original destination");
  assert.equal(c("upstream_cx_none_healthy"), 1);

  const a = cluster.chooseHost({ originalDst: "10.0.0.1:80" });
  assert.equal(a?.addressString, "10.0.0.1:80");
  assert.equal(cluster.chooseHost({ originalDst: "10.0.0.1:80" }), a, "the same host again");
  const b = cluster.chooseHost({ originalDst: "[fd00::2]:9000" });
  assert.equal(b?.addressString, "[fd00::2]:9000");
  assert.equal(g("membership_total"), 2);

  // first sweep: both were picked since the cluster started, both stay
  clock.advance(2000);
  assert.equal(g("membership_total"), 2);
  // only a is used in the next interval: b goes
  cluster.chooseHost({ originalDst: "10.0.0.1:80" });
  clock.advance(2000);
  assert.equal(g("membership_total"), 1);
  assert.deepEqual(cluster.hosts().map((h) => h.addressString), ["10.0.0.1:80"]);
  // a host with a request in flight is kept even when nothing picked it
  (a as HostImpl).activeRequests++;
  clock.advance(2000);
  clock.advance(2000);
  assert.equal(g("membership_total"), 1);
  (a as HostImpl).activeRequests--;
  clock.advance(2000);
  assert.equal(g("membership_total"), 0);
  cm.close();
});

Deno.test("ORIGINAL_DST: the header overrides the connection's destination; upstream_port_override", async () => {
  const { cm, cluster } = make({
    original_dst_lb_config: {
      use_http_header: true,
      http_header_name: "X-Dst",
      upstream_port_override: 7000,
    },
  });
  await cm.initialize();
  const headers = (v: string | null) => ({ get: (n: string) => n === "x-dst" ? v : null });
  const pick = (dst: string | undefined, h: string | null) =>
    cluster.chooseHost({ originalDst: dst, requestHeaders: headers(h) })?.addressString ?? null;
  assert.equal(pick("10.0.0.1:80", "10.9.9.9:1234"), "10.9.9.9:7000");
  // absent or unparsable header: the connection's destination, as Envoy does
  assert.equal(pick("10.0.0.1:80", null), "10.0.0.1:7000");
  assert.equal(pick("10.0.0.1:80", "not-an-address"), "10.0.0.1:7000");
  assert.equal(pick(undefined, null), null);
  cm.close();
});
