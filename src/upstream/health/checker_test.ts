import assert from "node:assert/strict";
import { ManualClock } from "../../common/clock.ts";
import { SharedArena } from "../../common/shared_arena.ts";
import { StatsStore } from "../../stats/store.ts";
import { HostImpl } from "../host.ts";
import { HealthChecker, nextIntervalMs } from "./checker.ts";
import { healthCheckSchema } from "./config.ts";
import { type Probe, ProbeOutcome, type ProbeSink } from "./probe.ts";
import { ClusterHealthState, ClusterSlot, HealthFlag } from "./state.ts";

/** A probe the test answers by hand. */
class FakeProbe implements Probe {
  started = 0;
  cancelled = 0;
  closed = false;
  constructor(readonly sink: ProbeSink) {}
  start(): void {
    this.started++;
  }
  cancel(): void {
    this.cancelled++;
  }
  close(): void {
    this.closed = true;
  }
  answer(o: ProbeOutcome): void {
    this.sink.onProbeResult(o);
  }
}

function setup(extra: Record<string, unknown> = {}, traffic = true) {
  const clock = new ManualClock();
  const stats = new StatsStore();
  const arena = SharedArena.create({ bytes: 1 << 16, capacity: 64 });
  const state = new ClusterHealthState(
    arena,
    "c",
    HealthFlag.FAILED_ACTIVE_HC | HealthFlag.PENDING_ACTIVE_HC,
  );
  if (traffic) Atomics.store(state.slot, ClusterSlot.TRAFFIC, 1);
  const probes: FakeProbe[] = [];
  let changes = 0;
  const cfg = healthCheckSchema.parse({
    timeout: "1s",
    interval: "10s",
    unhealthy_threshold: 3,
    healthy_threshold: 2,
    http_health_check: { path: "/healthz" },
    ...extra,
  });
  const checker = new HealthChecker(cfg, {
    state,
    scope: stats.scope("cluster.c.health_check"),
    clock,
    random: () => 0,
    probes: {
      type: "HTTP",
      create: (_h, sink) => {
        const p = new FakeProbe(sink);
        probes.push(p);
        return p;
      },
    },
    hasTraffic: () => Atomics.load(state.slot, ClusterSlot.TRAFFIC) === 1,
    onChange: () => changes++,
  });
  const host = new HostImpl("10.0.0.1", 80);
  host.health = state.host(host.healthKey);
  const stat = (n: string) => {
    const s = stats.snapshot();
    return s.counters[`cluster.c.health_check.${n}`] ?? s.gauges[`cluster.c.health_check.${n}`];
  };
  return { clock, checker, host, probes, stat, state, changes: () => changes };
}

Deno.test("health checker state machine", async (t) => {
  await t.step(
    "a new host is unhealthy and pending until its first check, which passes at once",
    async () => {
      const { clock, checker, host, probes, stat } = setup();
      checker.setHosts([host]);
      assert.equal(host.healthy, false);
      assert.ok(host.healthFlags() & HealthFlag.PENDING_ACTIVE_HC);
      let initialized = false;
      checker.initialized().then(() => initialized = true);
      checker.start();
      clock.advance(0);
      assert.equal(probes[0].started, 1);
      probes[0].answer(ProbeOutcome.SUCCESS);
      assert.equal(host.healthy, true);
      assert.equal(host.healthFlags(), 0);
      await Promise.resolve();
      assert.ok(initialized);
      assert.equal(stat("attempt"), 1);
      assert.equal(stat("success"), 1);
      assert.equal(stat("healthy"), 1);
      checker.close();
      assert.ok(probes[0].closed);
    },
  );

  await t.step("network failures need unhealthy_threshold; a bad status fails at once", () => {
    const { clock, checker, host, probes, stat } = setup();
    checker.setHosts([host]);
    checker.start();
    clock.advance(0);
    probes[0].answer(ProbeOutcome.SUCCESS);
    for (let i = 0; i < 2; i++) {
      clock.advance(10_000);
      probes[0].answer(ProbeOutcome.NETWORK_FAILURE);
      assert.equal(host.healthy, true, `after ${i + 1} network failures`);
    }
    clock.advance(10_000); // edge interval defaults to interval
    probes[0].answer(ProbeOutcome.NETWORK_FAILURE);
    assert.equal(host.healthy, false);
    assert.equal(stat("network_failure"), 3);
    assert.equal(stat("healthy"), 0);
    // healthy_threshold 2 to come back
    clock.advance(10_000);
    probes[0].answer(ProbeOutcome.SUCCESS);
    assert.equal(host.healthy, false);
    clock.advance(10_000);
    probes[0].answer(ProbeOutcome.SUCCESS);
    assert.equal(host.healthy, true);
    clock.advance(10_000);
    probes[0].answer(ProbeOutcome.ACTIVE_FAILURE);
    assert.equal(host.healthy, false, "a non-retriable status fails at once");
    assert.equal(stat("failure"), 4);
    checker.close();
  });

  await t.step("retriable statuses count toward the threshold", () => {
    const { clock, checker, host, probes } = setup({ unhealthy_threshold: 2 });
    checker.setHosts([host]);
    checker.start();
    clock.advance(0);
    probes[0].answer(ProbeOutcome.SUCCESS);
    clock.advance(10_000);
    probes[0].answer(ProbeOutcome.RETRIABLE_FAILURE);
    assert.equal(host.healthy, true);
    clock.advance(10_000);
    probes[0].answer(ProbeOutcome.RETRIABLE_FAILURE);
    assert.equal(host.healthy, false);
    checker.close();
  });

  await t.step("immediate-health-check-fail excludes the host at once", () => {
    const { clock, checker, host, probes } = setup({ unhealthy_threshold: 5 });
    checker.setHosts([host]);
    checker.start();
    clock.advance(0);
    probes[0].answer(ProbeOutcome.SUCCESS);
    clock.advance(10_000);
    probes[0].answer(ProbeOutcome.IMMEDIATE_FAILURE);
    assert.equal(host.healthy, false);
    assert.ok(host.healthFlags() & HealthFlag.EXCLUDED_VIA_IMMEDIATE_HC_FAIL);
    clock.advance(10_000);
    probes[0].answer(ProbeOutcome.SUCCESS);
    clock.advance(10_000);
    probes[0].answer(ProbeOutcome.SUCCESS);
    assert.equal(host.healthFlags(), 0);
    checker.close();
  });

  await t.step("a timeout cancels the probe, flags active_hc_timeout and counts as a network failure", () => {
    const { clock, checker, host, probes, stat } = setup({ unhealthy_threshold: 1 });
    checker.setHosts([host]);
    checker.start();
    clock.advance(0);
    probes[0].answer(ProbeOutcome.SUCCESS);
    clock.advance(10_000);
    clock.advance(999);
    assert.equal(host.healthy, true);
    clock.advance(1);
    assert.equal(probes[0].cancelled, 1);
    assert.equal(host.healthy, false);
    assert.ok(host.healthFlags() & HealthFlag.ACTIVE_HC_TIMEOUT);
    assert.equal(stat("network_failure"), 1);
    probes[0].answer(ProbeOutcome.SUCCESS); // late answer of the cancelled check: ignored
    assert.equal(stat("success"), 1);
    checker.close();
  });

  await t.step("intervals: no traffic, edges, unhealthy, jitter", () => {
    const cfg = healthCheckSchema.parse({
      timeout: "1s",
      interval: "10s",
      unhealthy_threshold: 3,
      healthy_threshold: 3,
      unhealthy_interval: "20s",
      unhealthy_edge_interval: "2s",
      healthy_edge_interval: "1s",
      no_traffic_interval: "60s",
      interval_jitter: "1s",
      interval_jitter_percent: 10,
      tcp_health_check: {},
    });
    const base = { traffic: true, hostHealthy: true, random: () => 0 };
    assert.equal(nextIntervalMs(cfg, { ...base, traffic: false, checkPassed: true, transition: 0 }), 60_000);
    assert.equal(nextIntervalMs(cfg, { ...base, checkPassed: true, transition: 0 }), 10_000);
    assert.equal(nextIntervalMs(cfg, { ...base, checkPassed: true, transition: 2 }), 1_000);
    assert.equal(nextIntervalMs(cfg, { ...base, checkPassed: false, transition: 0 }), 20_000);
    assert.equal(nextIntervalMs(cfg, { ...base, checkPassed: false, transition: 2 }), 2_000);
    const jittered = nextIntervalMs(cfg, { ...base, random: () => 0.5, checkPassed: true, transition: 0 });
    assert.equal(jittered, 10_000 + 500 + 500);
  });

  await t.step("without traffic the checker waits no_traffic_interval", () => {
    const { clock, checker, host, probes } = setup({}, false);
    checker.setHosts([host]);
    checker.start();
    clock.advance(0);
    probes[0].answer(ProbeOutcome.SUCCESS);
    clock.advance(59_999);
    assert.equal(probes[0].started, 1);
    clock.advance(1);
    assert.equal(probes[0].started, 2);
    checker.close();
  });

  await t.step("removed hosts stop being checked", () => {
    const { clock, checker, host, probes } = setup();
    const other = new HostImpl("10.0.0.2", 80);
    checker.setHosts([host, other]);
    checker.start();
    clock.advance(0);
    assert.equal(probes.length, 2);
    checker.setHosts([host]);
    assert.ok(probes[1].closed);
    checker.close();
  });
});
