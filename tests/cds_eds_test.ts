/**
 * Cluster updates on a running proxy (what CDS and EDS do through the xDS layer), driven by calling the
 * cluster manager directly: a request in flight finishes on the old cluster while new ones go to the new one,
 * idle pooled connections of the old cluster close, an EDS cluster serves its endpoints once warm, and a
 * removed cluster answers 503.
 */
import assert from "node:assert/strict";
import { request, scriptedOrigin } from "./fault_peers.ts";
import {
  anyHost,
  bootstrapYaml,
  httpListener,
  sleep,
  startOrigin,
  startProxy,
  staticCluster,
} from "./helpers.ts";
import { clusterLoadAssignmentSchema, clusterSchema } from "../src/upstream/config.ts";
import type { DynamicClusterManager } from "../src/upstream/types.ts";

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await sleep(10);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

const ep = (port: number) => ({
  endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } },
});

Deno.test("cluster updates on a running proxy", async (t) => {
  await t.step(
    "update: in-flight finishes on the old cluster, idle old connections close, new traffic moves",
    async () => {
      await using stalled = scriptedOrigin([{ stall: true }]);
      await using a = startOrigin("a");
      await using b = startOrigin("b");
      const yaml = bootstrapYaml(
        [httpListener({
          virtualHosts: [anyHost([
            { match: { prefix: "/slow" }, route: { cluster: "slow" } },
            { match: { prefix: "/" }, route: { cluster: "web" } },
          ])],
        })],
        [staticCluster("web", [a.port]), staticCluster("slow", [stalled.port])],
      );
      await using proxy = await startProxy(yaml);
      const cm = proxy.plane.clusters as DynamicClusterManager;
      assert.equal((await request(proxy.port(), "/")).body, "hello from a");
      assert.equal(proxy.stat("cluster.web.upstream_cx_active"), 1); // the keep-alive connection, idle in the pool

      const inflight = request(proxy.port(), "/slow");
      await waitFor(() => stalled.inFlight === 1, "the stalled request");
      // replace both clusters: "slow" moves to origin b while its request is in flight
      assert.equal(cm.addOrUpdate(clusterSchema.parse(staticCluster("web", [b.port]))), "updated");
      assert.equal(cm.addOrUpdate(clusterSchema.parse(staticCluster("slow", [b.port]))), "updated");
      await cm.whenWarm("web");
      await cm.whenWarm("slow");
      await waitFor(
        () => proxy.stat("cluster.web.upstream_cx_active") === 0,
        "the old idle connection to close",
      );
      assert.equal((await request(proxy.port(), "/")).body, "hello from b");
      assert.equal((await request(proxy.port(), "/slow")).body, "hello from b");
      stalled.release();
      const r = await inflight;
      assert.equal(r.status, 200);
      assert.equal(r.body, "released");
      assert.equal(proxy.stat("cluster_manager.cluster_modified"), 2);
    },
  );

  await t.step(
    "EDS: the static cluster serves until the EDS version is warm; remove answers 503",
    async () => {
      await using a = startOrigin("a");
      await using b = startOrigin("b");
      await using c = startOrigin("c");
      const yaml = bootstrapYaml(
        [httpListener({ virtualHosts: [anyHost([{ match: { prefix: "/" }, route: { cluster: "web" } }])] })],
        [staticCluster("web", [a.port])],
      );
      await using proxy = await startProxy(yaml);
      const cm = proxy.plane.clusters as DynamicClusterManager;
      cm.addOrUpdate(
        clusterSchema.parse({ name: "web", type: "EDS", eds_cluster_config: { eds_config: { ads: {} } } }),
      );
      assert.equal(proxy.stat("cluster_manager.warming_clusters"), 1);
      assert.equal((await request(proxy.port(), "/")).body, "hello from a"); // warming: the old one serves
      cm.setEndpoints(
        "web",
        clusterLoadAssignmentSchema.parse({
          cluster_name: "web",
          endpoints: [{ lb_endpoints: [ep(b.port)] }],
        }),
      );
      await cm.whenWarm("web");
      assert.equal((await request(proxy.port(), "/")).body, "hello from b");
      // P0 (b) fully unhealthy: fail over to P1 (c)
      cm.setEndpoints(
        "web",
        clusterLoadAssignmentSchema.parse({
          cluster_name: "web",
          endpoints: [
            { priority: 0, lb_endpoints: [{ ...ep(b.port), health_status: "UNHEALTHY" }] },
            { priority: 1, lb_endpoints: [ep(c.port)] },
          ],
        }),
      );
      for (let i = 0; i < 3; i++) assert.equal((await request(proxy.port(), "/")).body, "hello from c");
      assert.equal(proxy.stat("cluster.web.update_success"), 2);
      assert.equal(cm.remove("web"), true);
      assert.equal((await request(proxy.port(), "/")).status, 503);
      assert.equal(proxy.stat("cluster_manager.cluster_removed"), 1);
    },
  );
});
