import assert from "node:assert/strict";
import { StatsStore } from "../stats/store.ts";
import { latencyEvidence, niceMs, proposeTimeout, suggest, suggestCluster } from "./suggest.ts";

function timed(store: StatsStore, n: number, ms: (i: number) => number): void {
  const h = store.histogram("cluster.c.upstream_rq_time");
  for (let i = 0; i < n; i++) h.record(ms(i));
  store.counter("cluster.c.upstream_rq_total").inc(n);
}

Deno.test("niceMs rounds up to two significant digits", () => {
  assert.equal(niceMs(137.2), 140);
  assert.equal(niceMs(9.01), 9.1);
  assert.equal(niceMs(1234), 1300);
  assert.equal(niceMs(0.2), 1);
});

Deno.test("proposeTimeout: none below 100 samples, p99 x 2 below 1000, p99.9 x 1.5 from 1000", () => {
  const s = new StatsStore();
  timed(s, 50, () => 10);
  const few = proposeTimeout(latencyEvidence(s.snapshot().histograms["cluster.c.upstream_rq_time"]));
  assert.equal(few.value_ms, null);
  assert.equal(few.confidence, "none");
  assert.match(few.basis, /too few samples: 50/);

  timed(s, 450, () => 10);
  const low = proposeTimeout(latencyEvidence(s.snapshot().histograms["cluster.c.upstream_rq_time"]));
  assert.equal(low.confidence, "low");
  assert.ok(low.value_ms! >= 20 && low.value_ms! <= 22, String(low.value_ms));

  // 2000 samples: 99.9 % at 10 ms, the slowest 0.1 % at 100 ms
  const t = new StatsStore();
  timed(t, 2000, (i) => (i < 1997 ? 10 : 100));
  const ev = latencyEvidence(t.snapshot().histograms["cluster.c.upstream_rq_time"]);
  assert.equal(ev.count, 2000);
  const high = proposeTimeout(ev);
  assert.equal(high.confidence, "high");
  assert.match(high.basis, /p99\.9 .* x 1\.5 over 2000 samples/);
  assert.ok(high.value_ms! >= 15 && high.value_ms! <= 160, String(high.value_ms));
});

Deno.test("suggestCluster: breakers from observed concurrency, retry budget from failures, with evidence", () => {
  const s = new StatsStore();
  timed(s, 1000, () => 20);
  s.counter("cluster.c.upstream_rq_5xx").inc(30);
  s.counter("cluster.c.upstream_rq_retry").inc(10);
  s.gauge("cluster.c.upstream_rq_active").set(4);
  s.gauge("server.uptime").set(10);
  const peaks = { sampledSeconds: 5, clusters: new Map([["c", { rqActive: 40, cxActive: 12, rps: 100 }]]) };
  const out = suggestCluster("c", s.snapshot(), undefined, peaks) as {
    evidence: {
      requests: number;
      errors: { retryable_percent: number };
      concurrency: Record<string, number>;
    };
    suggestions: {
      retry_budget: { budget_percent: number; basis: string };
      circuit_breakers: { max_requests: number; max_connections: number; basis: string; current: unknown };
    };
  };
  assert.equal(out.evidence.requests, 1000);
  assert.equal(out.evidence.errors.retryable_percent, 3);
  assert.equal(out.evidence.concurrency.rq_active_peak, 40);
  assert.equal(out.suggestions.retry_budget.budget_percent, 6);
  assert.equal(out.suggestions.circuit_breakers.max_requests, 80);
  assert.equal(out.suggestions.circuit_breakers.max_connections, 24);
  assert.match(out.suggestions.circuit_breakers.basis, /peaks sampled over 5 s/);
  assert.deepEqual(out.suggestions.circuit_breakers.current, {
    maxConnections: 1024,
    maxPendingRequests: 1024,
    maxRequests: 1024,
    maxRetries: 3,
  });
});

Deno.test("suggest: routes take their slowest cluster's timeout; too few samples say so", async () => {
  const s = new StatsStore();
  const res = await suggest({
    stats: () => Promise.resolve(s.snapshot()),
    clusters: () => Promise.resolve([{ name: "c", addedViaApi: false, hosts: [] }]),
    routes: () =>
      Promise.resolve([{
        routeConfig: "rc",
        virtualHost: "vh",
        route: "r",
        clusters: ["c"],
        timeoutMs: 15000,
        retries: false,
      }]),
  }) as {
    clusters: { suggestions: { timeout: { value_ms: null; basis: string } } }[];
    routes: Record<string, unknown>[];
  };
  assert.equal(res.clusters[0].suggestions.timeout.value_ms, null);
  assert.match(res.clusters[0].suggestions.timeout.basis, /too few samples: 0/);
  assert.equal(res.routes[0].suggested_timeout_ms, null);
  assert.equal(res.routes[0].current_timeout_ms, 15000);
});
