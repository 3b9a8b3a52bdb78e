import assert from "node:assert/strict";
import { formatStatsJson, formatStatsText, histogramSummary, parseStatsQuery, statsJson } from "./format.ts";
import { StatsStore } from "./store.ts";

function sample(): StatsStore {
  const s = new StatsStore();
  s.counter("cluster.a.upstream_rq_total").inc(3);
  s.counter("cluster.a.upstream_cx_connect_fail");
  s.gauge("cluster.a.membership_total").set(2);
  s.gauge("server.live").set(1);
  const h = s.histogram("cluster.a.upstream_rq_time");
  for (let i = 1; i <= 100; i++) h.record(i);
  s.histogram("http.x.rq_time");
  return s;
}

Deno.test("stats text format", async (t) => {
  await t.step("sorted name: value lines, histograms last", () => {
    const text = formatStatsText(sample().snapshot());
    const lines = text.trimEnd().split("\n");
    assert.deepEqual(lines.slice(0, 4), [
      "cluster.a.membership_total: 2",
      "cluster.a.upstream_cx_connect_fail: 0",
      "cluster.a.upstream_rq_total: 3",
      "server.live: 1",
    ]);
    assert.match(lines[4], /^cluster\.a\.upstream_rq_time: P0\([\d.]+,[\d.]+\) P25\(/);
    assert.match(lines[4], / P99\.5\([\d.]+,[\d.]+\) P99\.9\([\d.]+,[\d.]+\) P100\([\d.]+,[\d.]+\)$/);
    assert.equal(lines[5], "http.x.rq_time: No recorded values");
    assert.ok(text.endsWith("\n"));
  });
  await t.step("quantiles are close to the recorded distribution", () => {
    const h = sample().snapshot().histograms["cluster.a.upstream_rq_time"];
    const m = /P50\(([\d.]+),([\d.]+)\)/.exec(histogramSummary(h))!;
    assert.equal(m[1], m[2]);
    assert.ok(Math.abs(Number(m[1]) - 50) < 3, m[1]);
  });
  await t.step("filter and usedonly", () => {
    const snap = sample().snapshot();
    const q = parseStatsQuery(new URLSearchParams("filter=upstream_rq&usedonly"));
    assert.equal(typeof q, "object");
    const text = formatStatsText(snap, q as Exclude<typeof q, string>);
    assert.equal(text.split("\n")[0], "cluster.a.upstream_rq_total: 3");
    assert.equal(text.split("\n").length, 3);
    const used = formatStatsText(snap, { usedOnly: true });
    assert.ok(!used.includes("connect_fail"));
    assert.ok(!used.includes("http.x.rq_time"));
  });
  await t.step("invalid regex is an error string", () => {
    assert.equal(typeof parseStatsQuery(new URLSearchParams("filter=(")), "string");
  });
});

Deno.test("stats json format", () => {
  const doc = statsJson(sample().snapshot());
  const stats = doc.stats as Record<string, unknown>[];
  assert.deepEqual(stats[0], { name: "cluster.a.membership_total", value: 2 });
  assert.equal(stats.length, 5);
  const hist = stats[4].histograms as {
    supported_quantiles: number[];
    computed_quantiles: { name: string; values: { interval: number | null; cumulative: number | null }[] }[];
  };
  assert.deepEqual(hist.supported_quantiles, [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]);
  assert.equal(hist.computed_quantiles[0].name, "cluster.a.upstream_rq_time");
  assert.equal(hist.computed_quantiles[0].values.length, 10);
  assert.equal(typeof hist.computed_quantiles[0].values[2].cumulative, "number");
  assert.deepEqual(hist.computed_quantiles[1].values[0], { interval: null, cumulative: null });
  assert.deepEqual(JSON.parse(formatStatsJson(sample().snapshot())), doc);
  const none = statsJson(sample().snapshot(), { filter: /server/ });
  assert.deepEqual(none, { stats: [{ name: "server.live", value: 1 }] });
});
