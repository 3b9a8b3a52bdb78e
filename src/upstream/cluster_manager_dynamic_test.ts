/** The cluster manager at run time: add, update, remove, EDS endpoints, warming, stats and shared slot release. */
import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { StatsStore } from "../stats/store.ts";
import type { ClusterImpl } from "./cluster.ts";
import { createClusterManager } from "./cluster_manager.ts";
import { clusterLoadAssignmentSchema, clusterSchema } from "./config.ts";
import { HealthFlag, HostSlot } from "./health/state.ts";
import type { HostImpl } from "./host.ts";
import { seededRandom } from "./lb/lb.ts";

type Obj = Record<string, unknown>;

const ep = (address: string, extra: Obj = {}) => ({
  endpoint: { address: { socket_address: { address, port_value: 8080 } } },
  ...extra,
});
const staticCfg = (name: string, addrs: string[], extra: Obj = {}) =>
  clusterSchema.parse({
    name,
    load_assignment: { endpoints: [{ lb_endpoints: addrs.map((a) => ep(a)) }] },
    ...extra,
  });
const edsCfg = (name: string, extra: Obj = {}) =>
  clusterSchema.parse({ name, type: "EDS", eds_cluster_config: { eds_config: { ads: {} } }, ...extra });
const cla = (name: string, endpoints: unknown[], extra: Obj = {}) =>
  clusterLoadAssignmentSchema.parse({ cluster_name: name, endpoints, ...extra });

function setup(configs = [staticCfg("boot", ["10.0.0.1"])], arena = SharedArena.create({ capacity: 1024 })) {
  const stats = new StatsStore();
  const warmed: string[] = [];
  const cm = createClusterManager(configs, {
    stats,
    clock: new ManualClock(),
    random: seededRandom(1),
    shared: arena,
    onWarm: (n) => warmed.push(n),
  });
  const c = (n: string) => stats.counters.get(n)?.value ?? 0;
  const g = (n: string) => stats.gauges.get(n)?.value ?? 0;
  return { cm, stats, arena, warmed, c, g };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

Deno.test("cluster manager: add, update, remove", async (t) => {
  await t.step("bootstrap clusters are active at once and warm in initialize()", async () => {
    const { cm, c, g, warmed } = setup();
    assert.ok(cm.get("boot"));
    assert.equal(c("cluster_manager.cluster_added"), 1);
    assert.equal(g("cluster_manager.active_clusters"), 1);
    assert.equal(cm.isWarming("boot"), true);
    await cm.initialize();
    assert.equal(cm.isWarming("boot"), false);
    assert.deepEqual(warmed, ["boot"]);
    cm.close();
  });

  await t.step("a new cluster serves once warm; the same config again is unchanged", async () => {
    const { cm, c, g } = setup();
    assert.equal(cm.addOrUpdate(staticCfg("a", ["10.0.0.2"])), "added");
    assert.equal(cm.get("a"), undefined);
    assert.equal(g("cluster_manager.warming_clusters"), 1);
    assert.equal(await cm.whenWarm("a"), true);
    assert.equal(cm.get("a")?.hosts()[0].address, "10.0.0.2");
    assert.equal(cm.all().length, 2);
    assert.equal(g("cluster_manager.warming_clusters"), 0);
    assert.equal(g("cluster_manager.active_clusters"), 2);
    assert.equal(cm.addOrUpdate(staticCfg("a", ["10.0.0.2"])), "unchanged");
    assert.equal(c("cluster_manager.cluster_added"), 2);
    assert.equal(c("cluster_manager.cluster_modified"), 0);
    assert.equal(await cm.whenWarm("nope"), false);
    cm.close();
  });

  await t.step("an update builds a new cluster; the old one retires after the new one is warm", async () => {
    const { cm, c } = setup();
    const old = cm.get("boot") as ClusterImpl;
    assert.equal(cm.addOrUpdate(staticCfg("boot", ["10.0.0.9"])), "updated");
    assert.equal(cm.get("boot"), old); // still serving while the new version warms
    await cm.whenWarm("boot");
    const next = cm.get("boot") as ClusterImpl;
    assert.notEqual(next, old);
    assert.equal(old.retired, true);
    assert.equal(next.retired, false);
    assert.equal(next.hosts()[0].address, "10.0.0.9");
    assert.equal(c("cluster_manager.cluster_modified"), 1);
    // a request still holding the old cluster can pick a host
    assert.equal(old.chooseHost({})?.address, "10.0.0.1");
    cm.close();
  });

  await t.step("remove retires it and it disappears", async () => {
    const { cm, c, g } = setup();
    await cm.initialize();
    const old = cm.get("boot") as ClusterImpl;
    assert.equal(cm.remove("boot"), true);
    assert.equal(cm.remove("boot"), false);
    assert.equal(cm.get("boot"), undefined);
    assert.equal(cm.all().length, 0);
    assert.equal(old.retired, true);
    assert.equal(c("cluster_manager.cluster_removed"), 1);
    assert.equal(g("cluster_manager.active_clusters"), 0);
    cm.close();
  });

  await t.step("health state stays for hosts that stay unless the health config changed", async () => {
    const od = { outlier_detection: { consecutive_5xx: 5 } };
    const { cm } = setup([staticCfg("o", ["10.0.0.1"], od)]);
    await cm.initialize();
    const h = cm.get("o")!.hosts()[0] as HostImpl;
    Atomics.or(h.health!.i32, HostSlot.FLAGS, HealthFlag.FAILED_OUTLIER_CHECK);
    cm.addOrUpdate(staticCfg("o", ["10.0.0.1"], { ...od, connect_timeout: "1s" }));
    await cm.whenWarm("o");
    const same = cm.get("o")!.hosts()[0] as HostImpl;
    assert.notEqual(same, h);
    assert.equal(same.healthy, false); // shared slot kept: still ejected
    cm.addOrUpdate(staticCfg("o", ["10.0.0.1"], { outlier_detection: { consecutive_5xx: 3 } }));
    await cm.whenWarm("o");
    assert.equal(cm.get("o")!.hosts()[0].healthy, true); // new health config: fresh state
    cm.close();
  });
});

Deno.test("cluster manager: EDS", async (t) => {
  await t.step("an EDS cluster warms on its first endpoints; updates reuse unchanged hosts", async () => {
    const { cm, c, g } = setup([]);
    assert.equal(cm.addOrUpdate(edsCfg("e")), "added");
    assert.equal(cm.isWarming("e"), true);
    let warm = false;
    cm.whenWarm("e").then(() => warm = true);
    await flush();
    assert.equal(warm, false);
    assert.equal(cm.setEndpoints("e", cla("e", [{ lb_endpoints: [ep("10.1.0.1"), ep("10.1.0.2")] }])), true);
    await flush();
    assert.equal(warm, true);
    assert.equal(g("cluster_manager.warming_clusters"), 0);
    const e = cm.get("e")!;
    const [h1] = e.hosts();
    assert.equal(c("cluster.e.update_attempt"), 1);
    assert.equal(c("cluster.e.update_success"), 1);
    cm.setEndpoints(
      "e",
      cla("e", [{ lb_endpoints: [ep("10.1.0.1", { health_status: "DRAINING" }), ep("10.1.0.3")] }]),
    );
    assert.equal(e.hosts()[0], h1); // same endpoint: same Host (its pooled connections stay)
    assert.equal(h1.healthy, false);
    assert.deepEqual(e.hosts().map((h) => h.address), ["10.1.0.1", "10.1.0.3"]);
    assert.equal(e.chooseHost({})?.address, "10.1.0.3");
    assert.equal(c("cluster.e.update_success"), 2);
    assert.equal(cm.endpointsOf("e")?.endpoints[0].lb_endpoints.length, 2);
    cm.close();
  });

  await t.step("rejections and empty responses are counted; only EDS clusters take endpoints", () => {
    const { cm, c } = setup();
    cm.addOrUpdate(edsCfg("e"));
    assert.equal(cm.noteEndpointUpdate("e", "rejected"), true);
    assert.equal(cm.isWarming("e"), true);
    assert.equal(cm.noteEndpointUpdate("e", "empty"), true);
    assert.equal(cm.isWarming("e"), false); // Envoy ends warming on an empty response
    assert.equal(c("cluster.e.update_rejected"), 1);
    assert.equal(c("cluster.e.update_empty"), 1);
    assert.equal(c("cluster.e.update_attempt"), 2);
    assert.equal(cm.setEndpoints("boot", cla("boot", [])), false);
    assert.equal(cm.setEndpoints("nope", cla("nope", [])), false);
    assert.equal(cm.noteEndpointUpdate("boot", "rejected"), false);
    cm.close();
  });

  await t.step("markWarm ends warming without endpoints (initial_fetch_timeout)", async () => {
    const { cm } = setup([]);
    cm.addOrUpdate(edsCfg("e"));
    assert.equal(cm.markWarm("e"), true);
    assert.equal(cm.markWarm("e"), false);
    assert.equal(await cm.whenWarm("e"), true);
    assert.equal(cm.get("e")?.chooseHost({}), null);
    cm.close();
  });

  await t.step("a changed EDS cluster starts from the endpoints it had", async () => {
    const { cm } = setup([]);
    cm.addOrUpdate(edsCfg("e"));
    cm.setEndpoints("e", cla("e", [{ lb_endpoints: [ep("10.1.0.1")] }]));
    await cm.whenWarm("e");
    const old = cm.get("e")!;
    cm.addOrUpdate(edsCfg("e", { connect_timeout: "2s" }));
    assert.equal(await cm.whenWarm("e"), true);
    assert.notEqual(cm.get("e"), old);
    assert.equal(cm.get("e")!.hosts()[0].address, "10.1.0.1");
    cm.close();
  });

  await t.step("priorities, degraded status and overprovisioning from the assignment", async () => {
    const { cm } = setup([]);
    cm.addOrUpdate(edsCfg("e"));
    const p0 = ["10.2.0.1", "10.2.0.2"].map((a, i) =>
      ep(a, { health_status: i === 0 ? "HEALTHY" : "UNHEALTHY" })
    );
    cm.setEndpoints(
      "e",
      cla("e", [{ priority: 0, lb_endpoints: p0 }, { priority: 1, lb_endpoints: [ep("10.2.1.1")] }], {
        policy: { overprovisioning_factor: 100 },
      }),
    );
    await cm.whenWarm("e");
    const e = cm.get("e") as ClusterImpl;
    assert.deepEqual(e.priorityLb?.load.healthy, [50, 50]);
    cm.setEndpoints("e", cla("e", [{ lb_endpoints: [ep("10.2.0.1", { health_status: "DEGRADED" })] }]));
    assert.deepEqual(e.priorityLb?.load.degraded, [100]);
    assert.equal(e.chooseHost({})?.address, "10.2.0.1");
    cm.close();
  });
});

Deno.test("cluster manager: shared slots of removed clusters are given back", async (t) => {
  await t.step(
    "breaker, health and host slots return to the arena; in-flight breakers keep working",
    async () => {
      const arena = SharedArena.create({ capacity: 1024 });
      const { cm } = setup([], arena);
      const base = arena.liveKeys();
      cm.addOrUpdate(edsCfg("e", { outlier_detection: {} }));
      cm.setEndpoints("e", cla("e", [{ lb_endpoints: [ep("10.3.0.1"), ep("10.3.0.2")] }]));
      await cm.whenWarm("e");
      assert.equal(arena.liveKeys(), base + 5); // cb default+high, health/e, two hosts
      const cluster = cm.get("e")!;
      const pb = cluster.circuitBreakers.forPriority(0);
      assert.ok(pb.tryRequest()); // a request in flight
      cm.remove("e");
      assert.equal(arena.liveKeys(), base);
      pb.releaseRequest(); // lands in the private copy, not in reused memory
      assert.equal(pb.count(2), 0);
      cm.close();
    },
  );

  await t.step("an update keeps the slots; another thread's use keeps them alive", async () => {
    const arena = SharedArena.create({ capacity: 1024 });
    const main = setup([], arena);
    const worker = setup([], SharedArena.attach(arena.buffer));
    const base = arena.liveKeys();
    for (const m of [main, worker]) {
      m.cm.addOrUpdate(staticCfg("s", ["10.4.0.1"]));
      await m.cm.whenWarm("s");
    }
    assert.equal(arena.liveKeys(), base + 4);
    main.cm.addOrUpdate(staticCfg("s", ["10.4.0.1"], { connect_timeout: "3s" }));
    await main.cm.whenWarm("s");
    assert.equal(arena.liveKeys(), base + 4);
    const wb = worker.cm.get("s")!.circuitBreakers.forPriority(0);
    main.cm.remove("s");
    assert.equal(arena.liveKeys(), base + 4); // the worker still holds them
    assert.ok(wb.tryRequest());
    const mb = worker.cm.get("s")!.circuitBreakers.forPriority(0);
    assert.equal(mb.count(2), 1);
    wb.releaseRequest();
    worker.cm.remove("s");
    assert.equal(arena.liveKeys(), base);
    main.cm.close();
    worker.cm.close();
  });
});
