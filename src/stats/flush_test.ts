import assert from "node:assert/strict";
import { ManualClock } from "../common/clock.ts";
import { StatsFlusher, toMetricSnapshot } from "./flush.ts";
import type { MetricSnapshot, StatsSink } from "./sink.ts";
import { mergeSnapshots, type StatsSnapshot, StatsStore } from "./store.ts";

function store(): StatsStore {
  const s = new StatsStore();
  s.configure({ reportUnused: true });
  return s;
}

Deno.test("sinks get used counters' deltas and used gauges", () => {
  const s = store();
  s.counter("a").inc(5);
  s.counter("never");
  s.gauge("g").set(0);
  s.gauge("untouched");
  const latched = new Map<string, number>();
  assert.deepEqual(toMetricSnapshot(s.snapshot(), latched), {
    counters: [{ name: "a", delta: 5 }],
    gauges: [{ name: "g", value: 0 }],
  });
  s.counter("a").inc(2);
  // a used counter that did not move still goes out, with 0 (Envoy's used() is sticky)
  assert.deepEqual(toMetricSnapshot(s.snapshot(), latched).counters, [{ name: "a", delta: 2 }]);
  assert.deepEqual(toMetricSnapshot(s.snapshot(), latched).counters, [{ name: "a", delta: 0 }]);
  s.resetCounters();
  s.counter("a").inc();
  assert.deepEqual(toMetricSnapshot(s.snapshot(), latched).counters, [{ name: "a", delta: 1 }]);
});

Deno.test("merged snapshots: a stat is unused only where every worker left it unused", () => {
  const w1 = store();
  const w2 = store();
  w1.counter("x").inc();
  w2.counter("x");
  w1.counter("y");
  w2.counter("y");
  w1.gauge("g");
  w2.gauge("g").set(3);
  const merged = mergeSnapshots([w1.snapshot(), w2.snapshot()]);
  assert.deepEqual(merged.unused, ["y"]);
  // a store without sinks reports nothing: every stat counts as used
  assert.equal(new StatsStore().snapshot().unused, undefined);
  assert.deepEqual(mergeSnapshots([w1.snapshot(), new StatsStore().snapshot()]).unused, ["y", "g"]);
});

Deno.test("StatsFlusher: periodic flushes on the clock, one at a time, closed with the sinks", async () => {
  const clock = new ManualClock();
  const s = store();
  const got: MetricSnapshot[] = [];
  let closed = 0;
  const sink: StatsSink = { flush: (m) => void got.push(m), close: () => void closed++ };
  const f = new StatsFlusher([sink], {
    snapshot: () => Promise.resolve(s.snapshot()),
    intervalMs: 5000,
    clock,
  });
  f.start();
  s.counter("c").inc(4);
  clock.advance(4999);
  await Promise.resolve();
  assert.equal(got.length, 0);
  clock.advance(1);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(got, [{ counters: [{ name: "c", delta: 4 }], gauges: [] }]);
  s.counter("c").inc();
  clock.advance(5000);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(got[1].counters, [{ name: "c", delta: 1 }]);
  await f.close();
  assert.equal(closed, 1);
  clock.advance(5000);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(got.length, 2);
});

Deno.test("StatsFlusher: without an interval only explicit flushes (stats_flush_on_admin)", async () => {
  const clock = new ManualClock();
  const snap: StatsSnapshot = { counters: { a: 1 }, gauges: {}, histograms: {}, unused: [] };
  const got: MetricSnapshot[] = [];
  const f = new StatsFlusher([{ flush: (m) => void got.push(m), close() {} }], {
    snapshot: () => Promise.resolve(snap),
    clock,
  });
  f.start();
  clock.advance(60_000);
  assert.equal(got.length, 0);
  f.flushSnapshot(snap);
  await f.flush();
  assert.deepEqual(got.map((m) => m.counters), [[{ name: "a", delta: 1 }], [{ name: "a", delta: 0 }]]);
  await f.close();
});
