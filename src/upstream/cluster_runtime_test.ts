import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { setRuntime } from "../runtime/current.ts";
import { createEntry, EMPTY_SNAPSHOT, RuntimeSnapshot } from "../runtime/snapshot.ts";
import { StatsStore } from "../stats/store.ts";
import type { ClusterImpl } from "./cluster.ts";
import { createClusterManager } from "./cluster_manager.ts";
import { clusterSchema } from "./config.ts";
import { seededRandom } from "./lb/lb.ts";

const ep = (address: string, health_status?: string) => ({
  endpoint: { address: { socket_address: { address, port_value: 8080 } } },
  ...(health_status ? { health_status } : {}),
});

function snapshot(values: Record<string, string>): RuntimeSnapshot {
  return new RuntimeSnapshot([{
    name: "t",
    values: new Map(Object.entries(values).map(([k, v]) => [k, createEntry(v)])),
  }]);
}

Deno.test("upstream.healthy_panic_threshold from the runtime overrides every cluster's threshold", () => {
  const stats = new StatsStore();
  const config = clusterSchema.parse({
    name: "c",
    load_assignment: {
      endpoints: [{
        lb_endpoints: [ep("10.0.0.1"), ep("10.0.0.2", "UNHEALTHY"), ep("10.0.0.3", "UNHEALTHY")],
      }],
    },
  });
  const cm = createClusterManager([config], { stats, clock: new ManualClock(), random: seededRandom(3) });
  const cluster = cm.get("c") as ClusterImpl;
  const picks = () => new Set(Array.from({ length: 9 }, () => cluster.chooseHost({})?.address ?? null));
  try {
    // 33 % healthy, under the default 50 %: panic, every host
    assert.deepEqual(picks(), new Set(["10.0.0.1", "10.0.0.2", "10.0.0.3"]));
    assert.equal(cluster.panic, true);
    // the runtime lowers the threshold: the next pick rebuilds the LB, healthy hosts only
    setRuntime(snapshot({ "upstream.healthy_panic_threshold": "20" }));
    assert.deepEqual(picks(), new Set(["10.0.0.1"]));
    assert.equal(cluster.panic, false);
    // 0 disables panic mode; over 100 counts as 100
    setRuntime(snapshot({ "upstream.healthy_panic_threshold": "0" }));
    assert.deepEqual(picks(), new Set(["10.0.0.1"]));
    setRuntime(snapshot({ "upstream.healthy_panic_threshold": "250" }));
    assert.deepEqual(picks(), new Set(["10.0.0.1", "10.0.0.2", "10.0.0.3"]));
    setRuntime(EMPTY_SNAPSHOT);
    assert.equal(cluster.chooseHost({}) !== null, true);
    assert.equal(cluster.panic, true, "back to the configured 50 %");
  } finally {
    setRuntime(EMPTY_SNAPSHOT);
    cm.close();
  }
});

Deno.test("least_request active_request_bias: a RuntimeDouble read when the LB is built", () => {
  const stats = new StatsStore();
  const config = clusterSchema.parse({
    name: "c",
    lb_policy: "LEAST_REQUEST",
    least_request_lb_config: { active_request_bias: { default_value: 1, runtime_key: "bias" } },
    load_assignment: { endpoints: [{ lb_endpoints: [ep("10.0.0.1"), ep("10.0.0.2")] }] },
  });
  const cm = createClusterManager([config], { stats, clock: new ManualClock(), random: seededRandom(5) });
  const cluster = cm.get("c") as ClusterImpl;
  try {
    assert.notEqual(cluster.chooseHost({}), null);
    setRuntime(snapshot({ bias: "0.5" }));
    assert.notEqual(cluster.chooseHost({}), null, "rebuilt with the runtime's bias");
  } finally {
    setRuntime(EMPTY_SNAPSHOT);
    cm.close();
  }
});
