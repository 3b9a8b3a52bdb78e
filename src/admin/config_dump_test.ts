import assert from "node:assert/strict";
import { buildConfigDump } from "./config_dump.ts";

Deno.test("config_dump: dynamic resources by state, with versions (Envoy's ConfigDump shape)", () => {
  const at = Date.UTC(2026, 0, 1);
  const dump = buildConfigDump({
    bootstrap: {},
    bootstrapLoadedMs: at,
    listenersVersion: "l2",
    clustersVersion: "c3",
    dynamicListeners: [
      { versionInfo: "l2", resource: { name: "up" }, lastUpdatedMs: at },
      { versionInfo: "l2", resource: { name: "waiting" }, lastUpdatedMs: at, warming: true },
      { versionInfo: "l1", resource: { name: "up" }, lastUpdatedMs: at, draining: true },
    ],
    dynamicClusters: [
      { versionInfo: "c3", resource: { name: "web" }, lastUpdatedMs: at },
      { versionInfo: "c3", resource: { name: "eds" }, lastUpdatedMs: at, warming: true },
    ],
  });
  const [, clusters, listeners] = dump.configs as Record<string, unknown>[];
  assert.equal(clusters.version_info, "c3");
  assert.deepEqual(
    (clusters.dynamic_active_clusters as { cluster: { name: string } }[]).map((c) => c.cluster.name),
    [
      "web",
    ],
  );
  assert.deepEqual(
    (clusters.dynamic_warming_clusters as { cluster: { name: string } }[]).map((c) => c.cluster.name),
    ["eds"],
  );
  assert.equal(listeners.version_info, "l2");
  const dl = listeners.dynamic_listeners as Record<string, Record<string, unknown>>[];
  assert.deepEqual(dl.map((l) => Object.keys(l).sort()), [
    ["active_state", "draining_state", "name"],
    ["name", "warming_state"],
  ]);
  assert.equal(dl[0].draining_state.version_info, "l1", "the replaced version drains beside the active one");
  assert.equal(dl[0].active_state.version_info, "l2");
  assert.equal(dl[0].active_state.last_updated, "2026-01-01T00:00:00.000Z");
  assert.equal(
    (dl[1].warming_state.listener as Record<string, unknown>)["@type"],
    "type.googleapis.com/envoy.config.listener.v3.Listener",
  );
});
