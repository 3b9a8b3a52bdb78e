import assert from "node:assert/strict";
import { SharedArena } from "../common/shared_arena.ts";
import { mergeSnapshots, StatsStore } from "../stats/store.ts";
import { CircuitBreakers, DEFAULT_THRESHOLDS, thresholdsFromConfig } from "./circuit_breaker.ts";

Deno.test("circuit breakers", async (t) => {
  await t.step("thresholds: first per priority wins, defaults otherwise", () => {
    const [d, h] = thresholdsFromConfig([
      { priority: "HIGH", max_requests: 7 },
      { priority: "HIGH", max_requests: 9 },
    ]);
    assert.deepEqual(d, DEFAULT_THRESHOLDS);
    assert.equal(h.maxRequests, 7);
    assert.equal(h.maxConnections, 1024);
    assert.equal(h.maxRetries, 3);
  });

  await t.step("two threads share counts; open gauges merge to the truth", () => {
    const arena = SharedArena.create({ bytes: 64 * 1024, capacity: 64 });
    const th = thresholdsFromConfig([{ priority: "DEFAULT", max_requests: 2, track_remaining: true }]);
    const s1 = new StatsStore();
    const s2 = new StatsStore();
    const a = new CircuitBreakers("c", th, arena, s1.scope("cluster.c."));
    const b = new CircuitBreakers("c", th, SharedArena.attach(arena.buffer), s2.scope("cluster.c."));
    const pa = a.forPriority(0);
    const pb = b.forPriority(0);
    const merged = (name: string) => mergeSnapshots([s1.snapshot(), s2.snapshot()]).gauges[name];
    assert.equal(merged("cluster.c.circuit_breakers.default.remaining_rq"), 2);
    assert.ok(pa.tryRequest());
    assert.equal(merged("cluster.c.circuit_breakers.default.rq_open"), 0);
    assert.ok(pb.tryRequest());
    assert.equal(merged("cluster.c.circuit_breakers.default.rq_open"), 1);
    assert.equal(merged("cluster.c.circuit_breakers.default.remaining_rq"), 0);
    assert.equal(pa.tryRequest(), false);
    assert.equal(pb.tryRequest(), false);
    assert.equal(pa.count(2), 2);
    pa.releaseRequest(); // released by the other thread than the one that took it
    assert.equal(merged("cluster.c.circuit_breakers.default.rq_open"), 0);
    assert.equal(merged("cluster.c.circuit_breakers.default.remaining_rq"), 1);
    assert.ok(pb.tryRequest());
    pb.releaseRequest();
    pb.releaseRequest();
    assert.equal(pa.count(2), 0);
    assert.equal(merged("cluster.c.circuit_breakers.default.remaining_rq"), 2);
    assert.equal(merged("cluster.c.circuit_breakers.high.rq_open"), 0);
  });

  await t.step("retry budget: a share of active requests, at least min_retry_concurrency", () => {
    const arena = SharedArena.create({ bytes: 64 * 1024, capacity: 64 });
    const th = thresholdsFromConfig([{
      priority: "DEFAULT",
      retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: 1 },
    }]);
    const p = new CircuitBreakers("c", th, arena, new StatsStore().scope("cluster.c.")).forPriority(0);
    assert.ok(p.tryRetry());
    assert.equal(p.tryRetry(), false);
    for (let i = 0; i < 6; i++) assert.ok(p.tryRequest());
    assert.ok(p.tryRetry());
    assert.ok(p.tryRetry());
    assert.equal(p.tryRetry(), false);
  });
});
