import assert from "node:assert/strict";
import { Hono } from "hono";
import { StatsStore } from "../stats/store.ts";
import { computeFrame, dashboardEndpoints, DashboardSampler, type DashboardSource } from "./dashboard.ts";
import type { ClusterStatus } from "./types.ts";

const LISTENERS = [{
  name: "edge",
  address: "127.0.0.1:8080",
  statName: "127.0.0.1_8080",
  httpPrefixes: ["edge"],
}];
const CLUSTERS: ClusterStatus[] = [{
  name: "backend",
  addedViaApi: false,
  hosts: [
    {
      address: "10.0.0.1",
      port: 80,
      hostname: "",
      weight: 1,
      healthFlags: [],
      stats: {
        cx_total: 0,
        cx_active: 0,
        cx_connect_fail: 0,
        rq_total: 0,
        rq_active: 0,
        rq_success: 0,
        rq_error: 0,
        rq_timeout: 0,
      },
    },
    {
      address: "10.0.0.2",
      port: 80,
      hostname: "",
      weight: 1,
      healthFlags: ["failed_outlier_check"],
      stats: {
        cx_total: 0,
        cx_active: 0,
        cx_connect_fail: 0,
        rq_total: 0,
        rq_active: 0,
        rq_success: 0,
        rq_error: 0,
        rq_timeout: 0,
      },
    },
  ],
}];

function traffic(store: StatsStore, n: number, ms: number, errors = 0): void {
  store.counter("http.edge.downstream_rq_total").inc(n);
  store.counter("http.edge.downstream_rq_5xx").inc(errors);
  store.counter("cluster.backend.upstream_rq_total").inc(n);
  store.counter("cluster.backend.upstream_rq_5xx").inc(errors);
  for (let i = 0; i < n; i++) {
    store.histogram("http.edge.downstream_rq_time").record(ms);
    store.histogram("cluster.backend.upstream_rq_time").record(ms);
  }
}

Deno.test("computeFrame: rates and interval quantiles from two snapshots", () => {
  const store = new StatsStore();
  traffic(store, 100, 500); // before the interval: slow, must not show in this frame's quantiles
  store.gauge("listener.127.0.0.1_8080.downstream_cx_active").set(7);
  store.gauge("cluster.backend.outlier_detection.ejections_active").set(1);
  const prev = store.snapshot();
  traffic(store, 200, 10, 20);
  store.counter("listener.127.0.0.1_8080.downstream_cx_total").inc(4);
  const f = computeFrame(store.snapshot(), prev, 2, LISTENERS, CLUSTERS, 1234);
  assert.equal(f.t, 1234);
  const [l] = f.listeners;
  assert.equal(l.rps, 100);
  assert.equal(l.rate5xx, 10);
  assert.equal(l.connections, 7);
  assert.equal(l.cxRate, 2);
  assert.ok(l.p50! > 9 && l.p50! < 11, `p50 ${l.p50}`);
  assert.ok(l.p99! < 11, `p99 ${l.p99}`);
  const [c] = f.clusters;
  assert.equal(c.rps, 100);
  assert.equal(c.healthy, 1);
  assert.equal(c.total, 2);
  assert.equal(c.ejectionsActive, 1);
  assert.deepEqual(c.hosts[1], { address: "10.0.0.2:80", health: "failed_outlier_check" });
});

Deno.test("computeFrame: no requests in the interval gives null quantiles; a counter reset is not negative", () => {
  const store = new StatsStore();
  traffic(store, 50, 5);
  const prev = store.snapshot();
  const quiet = computeFrame(store.snapshot(), prev, 1, LISTENERS, [], 0);
  assert.equal(quiet.listeners[0].rps, 0);
  assert.equal(quiet.listeners[0].p99, null);
  store.resetCounters();
  store.counter("http.edge.downstream_rq_total").inc(3);
  assert.equal(computeFrame(store.snapshot(), prev, 1, LISTENERS, [], 0).listeners[0].rps, 3);
});

function fakeSource(store: StatsStore): DashboardSource & { calls: number } {
  const src = {
    calls: 0,
    stats: () => {
      src.calls++;
      return Promise.resolve(store.snapshot());
    },
    clusters: () => Promise.resolve(CLUSTERS),
    listeners: () => Promise.resolve(LISTENERS),
  };
  return src;
}

Deno.test("DashboardSampler samples only while a client listens, and records peaks", async () => {
  const store = new StatsStore();
  const src = fakeSource(store);
  const sampler = new DashboardSampler(src, { intervalMs: 3_600_000 });
  assert.equal(sampler.running, false);
  const frames: unknown[] = [];
  const off = sampler.subscribe((f) => frames.push(f));
  assert.equal(sampler.running, true);
  await new Promise((r) => setTimeout(r, 10)); // the subscribe's own first sample (ticks never overlap)
  traffic(store, 10, 1);
  store.gauge("cluster.backend.upstream_rq_active").set(5);
  await sampler.tick();
  assert.ok(frames.length >= 1);
  assert.equal(sampler.peaks()?.clusters.get("backend")?.rqActive, 5);
  off();
  assert.equal(sampler.running, false);
  const calls = src.calls;
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(src.calls, calls);
  sampler.close();
});

Deno.test("/dashboard serves the page; /dashboard/events streams frames and ends on close", async () => {
  const store = new StatsStore();
  const sampler = new DashboardSampler(fakeSource(store), { intervalMs: 50 });
  const app = new Hono();
  for (const e of dashboardEndpoints(sampler)) app.get(e.path, e.handler);
  const page = await app.request("/dashboard");
  assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
  const html = await page.text();
  assert.match(html, /new EventSource\("dashboard\/events"\)/);
  assert.doesNotMatch(html, /https?:\/\//); // nothing fetched from elsewhere

  const res = await app.request("/dashboard/events");
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("event: frame")) {
    const { value } = await reader.read();
    text += value;
  }
  const data = JSON.parse(text.slice(text.indexOf("data: ") + 6).split("\n")[0]);
  assert.equal(data.listeners[0].name, "edge");
  sampler.close();
  for (;;) if ((await reader.read()).done) break;
  assert.equal(sampler.running, false);
});
