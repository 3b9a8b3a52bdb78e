import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsStore } from "../stats/store.ts";
import type { ClusterImpl } from "../upstream/cluster.ts";
import { createClusterManager } from "../upstream/cluster_manager.ts";
import { clusterSchema } from "../upstream/config.ts";
import { previewHost } from "./host_preview.ts";

function cluster(extra: Record<string, unknown> = {}) {
  const ep = (address: string) => ({
    endpoint: { address: { socket_address: { address, port_value: 80 } } },
  });
  const config = clusterSchema.parse({
    name: "c",
    load_assignment: { endpoints: [{ lb_endpoints: [ep("10.0.0.1"), ep("10.0.0.2"), ep("10.0.0.3")] }] },
    ...extra,
  });
  const cm = createClusterManager([config], { stats: new StatsStore(), clock: new ManualClock() });
  return { cm, c: cm.get("c") as ClusterImpl };
}

Deno.test("previewHost: a round-robin preview does not move the live rotation", () => {
  const { cm, c } = cluster();
  const live = () => c.chooseHost({})!.addressString;
  const first = live();
  const p = previewHost(c, undefined);
  assert.equal(p.policy, "ROUND_ROBIN");
  assert.equal(p.total, 3);
  assert.equal(p.healthy, 3);
  assert.equal(p.sideEffectFree, true);
  assert.match(p.reason, /each worker keeps its own rotation/);
  for (let i = 0; i < 5; i++) previewHost(c, undefined);
  // the live balancer continues where it was: second, third, then the first host again
  const next = [live(), live(), live()];
  assert.equal(next[2], first);
  assert.equal(new Set(next).size, 3);
  cm.close();
});

Deno.test("previewHost: RING_HASH gives the live balancer's host for the same hash", () => {
  const { cm, c } = cluster({ lb_policy: "RING_HASH" });
  for (const hash of [1n, 42n, 123456789n, 2n ** 63n]) {
    const p = previewHost(c, hash);
    assert.equal(p.host, c.chooseHost({ hash })!.addressString);
    assert.match(p.reason, /the same host every worker picks/);
  }
  cm.close();
});
