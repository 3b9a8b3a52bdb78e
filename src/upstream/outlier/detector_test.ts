import assert from "node:assert/strict";
import { ManualClock } from "../../common/clock.ts";
import { SharedArena } from "../../common/shared_arena.ts";
import { StatsStore } from "../../stats/store.ts";
import { ClusterHealthState, ClusterSlot, HealthFlag } from "../health/state.ts";
import { HostImpl } from "../host.ts";
import { outlierDetectionSchema } from "./config.ts";
import { OutlierDetector } from "./detector.ts";

function setup(
  cfg: Record<string, unknown>,
  n: number,
  arena = SharedArena.create({ bytes: 1 << 16, capacity: 64 }),
) {
  const clock = new ManualClock();
  const stats = new StatsStore();
  const state = new ClusterHealthState(arena, "c", 0);
  const hosts = Array.from({ length: n }, (_, i) => {
    const h = new HostImpl(`10.0.0.${i + 1}`, 80);
    h.health = state.host(h.healthKey);
    return h;
  });
  let changes = 0;
  const make = (owner: boolean, store = stats) =>
    new OutlierDetector(outlierDetectionSchema.parse(cfg), {
      state,
      scope: store.scope("cluster.c.outlier_detection"),
      clock,
      random: () => 0.5,
      hosts: () => hosts,
      onChange: () => changes++,
      owner,
    });
  const det = make(true);
  const stat = (n: string) => {
    const s = stats.snapshot();
    return s.counters[`cluster.c.outlier_detection.${n}`] ?? s.gauges[`cluster.c.outlier_detection.${n}`];
  };
  return { clock, det, hosts, state, stat, make, changes: () => changes, arena };
}

Deno.test("outlier detector", async (t) => {
  await t.step("consecutive 5xx ejects at the threshold; a success resets the count", () => {
    const { det, hosts, stat, state } = setup({ consecutive_5xx: 3 }, 10);
    const h = hosts[0];
    det.record(h, 500);
    det.record(h, 503);
    det.record(h, 200);
    det.record(h, 500);
    det.record(h, 500);
    assert.equal(h.healthy, true);
    const gen = state.generation();
    det.record(h, 500);
    assert.equal(h.healthy, false);
    assert.ok(h.healthFlags() & HealthFlag.FAILED_OUTLIER_CHECK);
    assert.equal(state.generation(), gen + 1);
    assert.equal(stat("ejections_enforced_total"), 1);
    assert.equal(stat("ejections_enforced_consecutive_5xx"), 1);
    assert.equal(stat("ejections_detected_consecutive_5xx"), 1);
    det.syncGauge();
    assert.equal(stat("ejections_active"), 1);
  });

  await t.step("un-ejected after base_ejection_time x multiplier; the multiplier grows, then decays", () => {
    const { det, hosts, clock, stat } = setup({
      consecutive_5xx: 1,
      interval: "1s",
      base_ejection_time: "10s",
    }, 10);
    const h = hosts[0];
    det.start();
    det.record(h, 500);
    assert.equal(h.healthy, false);
    clock.advance(9_000);
    assert.equal(h.healthy, false);
    clock.advance(1_000);
    assert.equal(h.healthy, true);
    // second ejection right away: 20 s
    det.record(h, 500);
    clock.advance(19_000);
    assert.equal(h.healthy, false);
    clock.advance(1_000);
    assert.equal(h.healthy, true);
    // healthy long enough: the multiplier decays back (one step per sweep after base_ejection_time)
    clock.advance(15_000);
    det.record(h, 500);
    clock.advance(10_000);
    assert.equal(h.healthy, true, "ejected for base time only after decay");
    assert.equal(stat("ejections_enforced_total"), 3);
    det.close();
  });

  await t.step("max_ejection_percent overflow, at least one host", () => {
    const { det, hosts, stat, state } = setup({ consecutive_5xx: 1 }, 5);
    det.record(hosts[0], 500);
    det.record(hosts[1], 500);
    assert.equal(hosts[0].healthy, false);
    assert.equal(hosts[1].healthy, true);
    assert.equal(stat("ejections_overflow"), 1);
    assert.equal(stat("ejections_detected_consecutive_5xx"), 2);
    assert.equal(Atomics.load(state.slot, ClusterSlot.EJECTIONS_ACTIVE), 1);
  });

  await t.step("gateway failures: detected always, enforced at 0 % never", () => {
    const { det, hosts, stat } = setup({ consecutive_gateway_failure: 2, consecutive_5xx: 100 }, 10);
    det.record(hosts[0], 502);
    det.record(hosts[0], 504);
    assert.equal(stat("ejections_detected_consecutive_gateway_failure"), 1);
    assert.equal(stat("ejections_enforced_consecutive_gateway_failure"), 0);
    assert.equal(hosts[0].healthy, true);
    const e = setup({ consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100 }, 10);
    e.det.record(e.hosts[0], 503);
    e.det.record(e.hosts[0], 500); // a non-gateway 5xx resets the gateway count
    e.det.record(e.hosts[0], 503);
    assert.equal(e.hosts[0].healthy, true);
    e.det.record(e.hosts[0], 502);
    assert.equal(e.hosts[0].healthy, false);
    assert.equal(e.stat("ejections_enforced_consecutive_gateway_failure"), 1);
  });

  await t.step("success-rate sweep ejects the outlier and publishes success rates", () => {
    const { det, hosts, stat } = setup({ consecutive_5xx: 1000, max_ejection_percent: 50 }, 5);
    for (let i = 0; i < 5; i++) {
      for (let r = 0; r < 100; r++) det.record(hosts[i], i === 4 && r % 2 === 0 ? 500 : 200);
    }
    det.sweep();
    assert.equal(hosts[4].healthy, false);
    assert.equal(stat("ejections_enforced_success_rate"), 1);
    assert.equal(hosts[0].health!.f64[6], 100);
    assert.equal(hosts[4].health!.f64[6], 50);
  });

  await t.step("failure-percentage sweep when enforced", () => {
    const { det, hosts, stat } = setup({
      consecutive_5xx: 1000,
      enforcing_success_rate: 0,
      enforcing_failure_percentage: 100,
      max_ejection_percent: 100,
    }, 5);
    for (let i = 0; i < 5; i++) {
      for (let r = 0; r < 60; r++) det.record(hosts[i], i < 2 && r % 10 !== 0 ? 503 : 200);
    }
    det.sweep();
    assert.equal(hosts[0].healthy, false);
    assert.equal(hosts[1].healthy, false);
    assert.equal(hosts[2].healthy, true);
    assert.equal(stat("ejections_enforced_failure_percentage"), 2);
    assert.equal(stat("ejections_detected_success_rate"), 0); // 60 requests: below success_rate_request_volume
  });

  await t.step("two threads share one ejection", () => {
    const a = setup({ consecutive_5xx: 2 }, 10);
    const workerStats = new StatsStore();
    const worker = a.make(false, workerStats);
    worker.record(a.hosts[0], 500);
    a.det.record(a.hosts[0], 500); // the second failure, seen by another thread, crosses the threshold
    assert.equal(a.hosts[0].healthy, false);
    assert.equal(Atomics.load(a.state.slot, ClusterSlot.EJECTIONS_ACTIVE), 1);
    assert.equal(workerStats.snapshot().gauges["cluster.c.outlier_detection.ejections_active"], undefined);
  });
});
