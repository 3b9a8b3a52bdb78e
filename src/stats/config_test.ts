import assert from "node:assert/strict";
import { compileStatsConfig, type StatsConfig, statsConfigSchema } from "./config.ts";
import { formatPrometheus } from "./prometheus.ts";
import { mergeSnapshots, StatsStore } from "./store.ts";
import { TagProducer } from "./tags.ts";

function parse(raw: unknown): StatsConfig {
  return statsConfigSchema.parse(raw);
}

function issues(raw: unknown): string[] {
  const r = statsConfigSchema.safeParse(raw);
  assert.ok(!r.success, "expected the config to fail");
  return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

Deno.test("stats_config schema", async (t) => {
  await t.step("a tag name given twice", () => {
    assert.deepEqual(
      issues({ stats_tags: [{ tag_name: "a", fixed_value: "1" }, { tag_name: "a", regex: "^(x)" }] }),
      [
        "stats_tags.1.tag_name: Tag name 'a' specified twice",
      ],
    );
  });
  await t.step("regex and fixed_value together", () => {
    assert.deepEqual(issues({ stats_tags: [{ tag_name: "a", regex: "(x)", fixed_value: "1" }] }), [
      "stats_tags.0.fixed_value: Only one of regex and fixed_value may be set",
    ]);
  });
  await t.step("a name without regex must be one of Envoy's defaults", () => {
    assert.deepEqual(issues({ stats_tags: [{ tag_name: "my.tag" }] }), [
      "stats_tags.0.tag_name: No regex specified for tag specifier and no default regex for name: 'my.tag'",
    ]);
    parse({ stats_tags: [{ tag_name: "envoy.cluster_name" }] });
  });
  await t.step("a regex that does not compile", () => {
    assert.match(
      issues({ stats_tags: [{ tag_name: "a", regex: "((" }] })[0],
      /^stats_tags\.0\.regex: Invalid regex/,
    );
  });
  await t.step("stats_matcher needs exactly one rule", () => {
    assert.deepEqual(issues({ stats_matcher: {} }), [
      "stats_matcher: Exactly one of reject_all, exclusion_list, inclusion_list must be set",
    ]);
  });
  await t.step("bucket bounds are positive and unique", () => {
    assert.equal(
      issues({ histogram_bucket_settings: [{ match: { prefix: "a" }, buckets: [1, 1] }] }).length,
      1,
    );
    assert.equal(issues({ histogram_bucket_settings: [{ match: { prefix: "a" }, buckets: [0] }] }).length, 1);
    assert.equal(issues({ histogram_bucket_settings: [{ match: { prefix: "a" }, buckets: [] }] }).length, 1);
  });
  await t.step("unknown fields are errors", () => {
    assert.match(issues({ stats_tagz: [] })[0], /stats_tagz/);
  });
});

Deno.test("custom tags", async (t) => {
  await t.step("fixed and regex tags after the defaults; prefix-less extractors first", () => {
    const p = new TagProducer({
      statsTags: [
        { tag_name: "env", fixed_value: "prod" },
        { tag_name: "shard", regex: String.raw`^cluster(?=\.).*?\.(shard_(\d+)\.)` },
      ],
    });
    const r = p.extract("cluster.web.shard_3.upstream_rq_200");
    assert.equal(r.name, "cluster.upstream_rq");
    // Envoy runs extractors without a prefix token (response_code, the fixed tag) before the `cluster.` ones
    assert.deepEqual(r.tags, [
      { name: "envoy.response_code", value: "200" },
      { name: "env", value: "prod" },
      { name: "envoy.cluster_name", value: "web" },
      { name: "shard", value: "3" },
    ]);
    assert.deepEqual(p.extract("server.uptime"), {
      name: "server.uptime",
      tags: [{ name: "env", value: "prod" }],
    });
  });
  await t.step("use_all_default_tags: false keeps only the custom ones", () => {
    const p = new TagProducer({
      useAllDefaultTags: false,
      statsTags: [{ tag_name: "envoy.cluster_name" }, { tag_name: "svc", regex: String.raw`\.(svc_(\w+))$` }],
    });
    assert.deepEqual(p.extract("cluster.web.upstream_rq_200"), {
      name: "cluster.upstream_rq_200",
      tags: [{ name: "envoy.cluster_name", value: "web" }],
    });
    // one group: it is both the part removed and the value
    assert.deepEqual(
      new TagProducer({ statsTags: [{ tag_name: "t", regex: String.raw`\.(x\d)\.` }] }).extract("a.x1.b"),
      {
        name: "a..b",
        tags: [{ name: "t", value: "x1" }],
      },
    );
  });
  await t.step("a custom extractor of a default name is skipped once the default matched", () => {
    const p = new TagProducer({
      statsTags: [{ tag_name: "envoy.cluster_name", regex: String.raw`^cluster\.((.*?)\.)` }],
    });
    assert.deepEqual(p.extract("cluster.a.b.total").tags, [{ name: "envoy.cluster_name", value: "a" }]);
  });
});

Deno.test("stats_matcher rejects stats at instantiation", async (t) => {
  const store = (m: unknown) => {
    const s = new StatsStore();
    const c = compileStatsConfig(parse({ stats_matcher: m }));
    s.configure({ rejects: c.rejects });
    return s;
  };
  await t.step("exclusion_list", () => {
    const s = store({
      exclusion_list: { patterns: [{ prefix: "cluster." }, { safe_regex: { regex: ".*_time" } }] },
    });
    const rejected = s.counter("cluster.a.upstream_rq_total");
    rejected.inc(3);
    // the same object comes back by name, counting, but never stored or shown
    assert.equal(s.counter("cluster.a.upstream_rq_total"), rejected);
    assert.equal(rejected.value, 3);
    s.histogram("http.x.downstream_rq_time").record(5);
    s.counter("http.x.downstream_rq_total").inc();
    s.gauge("cluster.a.membership_total").set(2);
    const snap = s.snapshot();
    assert.deepEqual(snap.counters, { "http.x.downstream_rq_total": 1 });
    assert.deepEqual(snap.gauges, {});
    assert.deepEqual(Object.keys(snap.histograms), []);
  });
  await t.step("inclusion_list", () => {
    const s = store({
      inclusion_list: { patterns: [{ prefix: "server." }, { exact: "http.x.downstream_rq_total" }] },
    });
    s.counter("http.x.downstream_rq_total").inc();
    s.counter("http.x.downstream_rq_2xx").inc();
    s.gauge("server.live").set(1);
    assert.deepEqual(s.snapshot().counters, { "http.x.downstream_rq_total": 1 });
    assert.deepEqual(s.snapshot().gauges, { "server.live": 1 });
  });
  await t.step("reject_all", () => {
    const all = store({ reject_all: true });
    all.counter("a").inc();
    assert.deepEqual(all.snapshot().counters, {});
    const none = store({ reject_all: false });
    none.counter("a").inc();
    assert.deepEqual(none.snapshot().counters, { a: 1 });
  });
});

Deno.test("histogram_bucket_settings: first matching rule, in Prometheus output", () => {
  const c = compileStatsConfig(parse({
    histogram_bucket_settings: [
      { match: { suffix: "_rq_time" }, buckets: [100, 1, 10] },
      { match: { prefix: "http." }, buckets: [7] },
    ],
  }));
  const mk = () => {
    const s = new StatsStore();
    s.configure({ bucketsFor: c.bucketsFor });
    for (const v of [0.5, 3, 30, 300]) s.histogram("http.in.downstream_rq_time").record(v);
    s.histogram("http.in.downstream_cx_length_ms").record(9);
    s.histogram("cluster.a.upstream_cx_connect_ms").record(1);
    return s.snapshot();
  };
  const snap = mergeSnapshots([mk(), mk()]);
  assert.deepEqual(snap.histograms["http.in.downstream_rq_time"].bounds, [1, 10, 100]);
  assert.deepEqual(snap.histograms["http.in.downstream_rq_time"].buckets, [2, 2, 2, 2]);
  const text = formatPrometheus(snap, {}, c.tags);
  const lines = text.split("\n").filter((l) => l.startsWith("envoy_http_downstream_rq_time_bucket"));
  assert.deepEqual(lines, [
    'envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="in",le="1"} 2',
    'envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="in",le="10"} 4',
    'envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="in",le="100"} 6',
    'envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="in",le="+Inf"} 8',
  ]);
  assert.ok(
    text.includes(
      'envoy_http_downstream_cx_length_ms_bucket{envoy_http_conn_manager_prefix="in",le="7"} 0\n',
    ),
  );
  // unmatched: Envoy's default buckets, and no `bounds` in the snapshot
  assert.equal(snap.histograms["cluster.a.upstream_cx_connect_ms"].bounds, undefined);
  assert.ok(
    text.includes('envoy_cluster_upstream_cx_connect_ms_bucket{envoy_cluster_name="a",le="3600000"} 2\n'),
  );
});
