import assert from "node:assert/strict";
import { ManualClock } from "../../common/clock.ts";
import { SharedArena } from "../../common/shared_arena.ts";
import { StatsStore } from "../../stats/store.ts";
import { ClusterImpl } from "../cluster.ts";
import { clusterSchema } from "../config.ts";
import { HostImpl } from "../host.ts";
import { ClusterSlot, HealthFlag, HostSlot } from "./state.ts";

function cluster(arena: SharedArena, owner: boolean, stats: StatsStore, extra: Record<string, unknown> = {}) {
  const config = clusterSchema.parse({ name: "c", ...extra });
  return new ClusterImpl(config, {
    scope: stats.scope("cluster.c."),
    clock: new ManualClock(),
    shared: arena,
    healthOwner: owner,
  });
}

const hosts = (...ports: number[]) => ports.map((p) => new HostImpl("127.0.0.1", p));

Deno.test("cluster health across threads", async (t) => {
  await t.step("a worker rebuilds its LB when the shared generation moves", () => {
    const arena = SharedArena.create({ bytes: 1 << 16, capacity: 64 });
    const mainStats = new StatsStore();
    const workerStats = new StatsStore();
    const main = cluster(arena, true, mainStats);
    const worker = cluster(arena, false, workerStats);
    main.setHosts(hosts(1, 2, 3));
    worker.setHosts(hosts(1, 2, 3));
    const h1 = main.hosts()[0] as HostImpl;
    Atomics.or(h1.health!.i32, HostSlot.FLAGS, HealthFlag.FAILED_ACTIVE_HC);
    main.health.state.bump();
    const picks = new Set<number>();
    for (let i = 0; i < 9; i++) picks.add(worker.chooseHost({})!.port);
    assert.deepEqual([...picks].sort(), [2, 3]);
    // Only the owner registers membership gauges, so /stats does not sum them per worker.
    main.syncHealth();
    assert.equal(mainStats.snapshot().gauges["cluster.c.membership_healthy"], 2);
    assert.equal(mainStats.snapshot().gauges["cluster.c.membership_total"], 3);
    assert.equal(workerStats.snapshot().gauges["cluster.c.membership_healthy"], undefined);
    main.close();
    worker.close();
  });

  await t.step("hosts that leave give their shared slots back once every thread dropped them", () => {
    const arena = SharedArena.create({ bytes: 1 << 16, capacity: 16 });
    const main = cluster(arena, true, new StatsStore());
    const worker = cluster(arena, false, new StatsStore());
    // a DNS-driven host set churning through far more addresses than the table holds
    let base = arena.liveKeys();
    for (let round = 0; round < 200; round++) {
      const ports = [round + 1, round + 2, round + 3].map((p) => 1000 + p);
      const a = hosts(...ports);
      main.setHosts(a);
      worker.setHosts(hosts(...ports));
      if (round === 0) base = arena.liveKeys() - 3;
      assert.equal(arena.liveKeys(), base + 3, `round ${round}`);
    }
    // a host that left keeps a private copy of its state; writes to it never reach a reused slot
    const gone = main.hosts()[0] as HostImpl;
    Atomics.or(gone.health!.i32, HostSlot.FLAGS, HealthFlag.FAILED_OUTLIER_CHECK);
    main.setHosts(hosts(5000));
    worker.setHosts(hosts(5000));
    assert.ok(gone.healthReleased);
    assert.ok(gone.healthFlags() & HealthFlag.FAILED_OUTLIER_CHECK, "the copy keeps the state");
    Atomics.or(gone.health!.i32, HostSlot.FLAGS, HealthFlag.DEGRADED_ACTIVE_HC);
    const fresh = main.hosts()[0] as HostImpl;
    assert.equal(fresh.healthFlags(), 0, "the new host's slot is zeroed and untouched");
    assert.equal(arena.liveKeys(), base + 1);
    main.close();
    worker.close();
    assert.equal(arena.liveKeys(), base, "closing the clusters gives the hosts back");
  });

  await t.step("ejections of hosts that left never pin the cluster's ejection count", () => {
    const arena = SharedArena.create({ bytes: 1 << 16, capacity: 64 });
    const od = { outlier_detection: { consecutive_5xx: 3, interval: "10s", max_ejection_percent: 100 } };
    const main = cluster(arena, true, new StatsStore(), od);
    const worker = cluster(arena, false, new StatsStore(), od);
    const active = () => Atomics.load(main.health.state.slot, ClusterSlot.EJECTIONS_ACTIVE);
    main.setHosts(hosts(1, 2));
    worker.setHosts(hosts(1, 2));
    // late answers on a host this thread already dropped do not count
    const gone = worker.hosts()[0] as HostImpl;
    worker.setHosts(hosts(2));
    for (let i = 0; i < 5; i++) worker.recordOutcome(gone, 503);
    assert.equal(active(), 0);
    // a worker ejects a host the owner's DNS round already dropped; the owner never sees it to un-eject
    main.setHosts(hosts(2));
    worker.setHosts(hosts(1, 2));
    const late = worker.hosts()[0] as HostImpl;
    for (let i = 0; i < 3; i++) worker.recordOutcome(late, 503);
    assert.equal(active(), 1);
    worker.setHosts(hosts(2));
    assert.equal(active(), 1);
    main.health.outlier!.sweep(); // the owner's interval recounts from its members
    assert.equal(active(), 0);
    main.close();
    worker.close();
  });

  await t.step("with active checks, new hosts start failed and pending; removed healthy hosts stay", () => {
    const arena = SharedArena.create({ bytes: 1 << 16, capacity: 64 });
    const c = cluster(arena, false, new StatsStore(), {
      health_checks: [{
        timeout: "1s",
        interval: "1s",
        unhealthy_threshold: 1,
        healthy_threshold: 1,
        tcp_health_check: {},
      }],
    });
    c.setHosts(hosts(1, 2));
    const [h1, h2] = c.hosts() as HostImpl[];
    assert.equal(h1.healthFlags(), HealthFlag.FAILED_ACTIVE_HC | HealthFlag.PENDING_ACTIVE_HC);
    assert.equal(c.chooseHost({})?.port, 1, "panic: all hosts failed, so all are used");
    Atomics.and(
      h1.health!.i32,
      HostSlot.FLAGS,
      ~(HealthFlag.FAILED_ACTIVE_HC | HealthFlag.PENDING_ACTIVE_HC),
    );
    Atomics.and(
      h2.health!.i32,
      HostSlot.FLAGS,
      ~(HealthFlag.FAILED_ACTIVE_HC | HealthFlag.PENDING_ACTIVE_HC),
    );
    c.health.state.bump();
    // DNS drops host 1 while it passes checks: it stays, flagged pending_dynamic_removal
    c.setHosts([h2]);
    assert.equal(c.hosts().length, 2);
    assert.ok(h1.healthFlags() & HealthFlag.PENDING_DYNAMIC_REMOVAL);
    // ... until it fails a check
    Atomics.or(h1.health!.i32, HostSlot.FLAGS, HealthFlag.FAILED_ACTIVE_HC);
    c.health.state.bump();
    c.chooseHost({});
    assert.deepEqual(c.hosts().map((h) => h.port), [2]);
    // ignore_health_on_host_removal drops at once
    const d = cluster(SharedArena.create({ bytes: 1 << 16, capacity: 64 }), false, new StatsStore(), {
      ignore_health_on_host_removal: true,
      health_checks: [{
        timeout: "1s",
        interval: "1s",
        unhealthy_threshold: 1,
        healthy_threshold: 1,
        tcp_health_check: {},
      }],
    });
    d.setHosts(hosts(1, 2));
    d.setHosts([d.hosts()[1] as HostImpl]);
    assert.equal(d.hosts().length, 1);
    c.close();
    d.close();
  });

  await t.step("immediate health check fail from the data plane", () => {
    const arena = SharedArena.create({ bytes: 1 << 16, capacity: 64 });
    const stats = new StatsStore();
    const c = cluster(arena, false, stats, {
      health_checks: [{
        timeout: "1s",
        interval: "1s",
        unhealthy_threshold: 3,
        healthy_threshold: 1,
        tcp_health_check: {},
      }],
    });
    c.setHosts(hosts(1, 2));
    for (const h of c.hosts() as HostImpl[]) Atomics.store(h.health!.i32, HostSlot.FLAGS, 1 << 30);
    c.health.state.bump();
    c.reportImmediateHealthCheckFail(c.hosts()[0]);
    assert.equal(c.chooseHost({})?.port, 2);
    assert.equal(
      (c.hosts()[0] as HostImpl).healthFlags(),
      HealthFlag.FAILED_ACTIVE_HC | HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL,
    );
    assert.equal(stats.snapshot().counters["cluster.c.health_check.passive_failure"], 1);
    c.close();
  });
});
