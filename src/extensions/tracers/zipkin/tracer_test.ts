import assert from "node:assert/strict";
import { HeaderMap } from "../../../http/headers.ts";
import type { FactoryContext } from "../../../network/filter.ts";
import { StatsStore } from "../../../stats/store.ts";
import type { SpanStart } from "../../../tracing/types.ts";
import { zipkinConfigSchema } from "./config.ts";
import { extractContext, extractSampled, ZipkinDriver, type ZipkinSpan } from "./tracer.ts";

const h = (pairs: [string, string][]) => HeaderMap.from(pairs);

Deno.test("zipkin B3 extraction (Envoy's SpanContextExtractor)", async (t) => {
  await t.step("sampled: b3 flag, then x-b3-sampled, then the HCM decision", () => {
    assert.equal(extractSampled(h([["b3", "0"]]), true), false);
    assert.equal(
      extractSampled(h([["b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"]]), false),
      true,
    );
    assert.equal(extractSampled(h([["b3", "80f198ee56343ba8-e457b5a2e4d86bd1-d"]]), false), true);
    assert.equal(extractSampled(h([["b3", "80f198ee56343ba8-e457b5a2e4d86bd1"]]), true), true);
    assert.equal(extractSampled(h([["x-b3-sampled", "true"]]), false), true);
    assert.equal(extractSampled(h([["x-b3-sampled", "0"]]), true), false);
    assert.equal(extractSampled(h([]), true), true);
  });

  await t.step("context: multi-header and single-header forms; malformed is invalid", () => {
    assert.deepEqual(
      extractContext(
        h([["x-b3-traceid", "463AC35C9F6413AD"], ["x-b3-spanid", "a2fb"], ["x-b3-parentspanid", "1"]]),
        true,
      ),
      {
        traceId: "463ac35c9f6413ad",
        spanId: "000000000000a2fb",
        parentId: "0000000000000001",
        sampled: true,
      },
    );
    assert.deepEqual(
      extractContext(
        h([["b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"]]),
        true,
      ),
      {
        traceId: "80f198ee56343ba864fe8b2a57d3eff7",
        spanId: "e457b5a2e4d86bd1",
        parentId: "05e3ac9a4f6e3b90",
        sampled: true,
      },
    );
    assert.equal(extractContext(h([["b3", "1"]]), true), null);
    assert.equal(extractContext(h([]), true), null);
    assert.equal(extractContext(h([["x-b3-traceid", "zz"], ["x-b3-spanid", "1"]]), true), "invalid");
    assert.equal(extractContext(h([["b3", "80f198ee56343ba8-e457b5a2e4d86bd1-x"]]), true), "invalid");
    assert.equal(extractContext(h([["b3", "x"]]), true), "invalid");
  });
});

function ctx(): { ctx: FactoryContext; stats: StatsStore } {
  const stats = new StatsStore();
  const c = {
    stats,
    clusterManager: { get: () => undefined, all: () => [], initialize: () => Promise.resolve(), close() {} },
    node: { id: "n1", cluster: "svc" },
  } as unknown as FactoryContext;
  return { ctx: c, stats };
}

const start = (headers: HeaderMap, extra: Partial<SpanStart> = {}): SpanStart => ({
  headers,
  authority: "example.com",
  operation: "ingress",
  egress: false,
  spawnUpstreamSpan: false,
  startMs: 1_700_000_000_000,
  traced: true,
  ...extra,
});

Deno.test("zipkin driver: spans, shared context, injection, batching", async (t) => {
  const { ctx: c, stats } = ctx();
  const d = new ZipkinDriver(
    zipkinConfigSchema.parse({ collector_cluster: "z", collector_endpoint: "/s" }),
    c,
  );
  try {
    await t.step("a root span: 64-bit ids, named after the host, injected as x-b3-*", () => {
      const s = d.startSpan(start(new HeaderMap())) as ZipkinSpan;
      assert.equal(s.kind, "SERVER");
      assert.equal(s.name, "example.com");
      assert.match(s.traceId, /^[0-9a-f]{16}$/);
      assert.equal(s.id, s.traceId);
      const out = h([["b3", "stale"]]);
      s.injectContext(out);
      assert.equal(out.get("x-b3-traceid"), s.traceId);
      assert.equal(out.get("x-b3-spanid"), s.id);
      assert.equal(out.get("x-b3-sampled"), "1");
      assert.equal(out.has("b3"), false);
      const child = s.spawnChild("router c egress", 1_700_000_000_001) as ZipkinSpan;
      assert.equal(child.kind, "CLIENT");
      assert.equal(child.parentId, s.id);
      assert.equal(child.traceId, s.traceId);
    });

    await t.step("an incoming context is shared (same id, shared: true) unless spawn_upstream_span", () => {
      const incoming = h([["x-b3-traceid", "463ac35c9f6413ad"], ["x-b3-spanid", "a2fb4a1d1a96d312"]]);
      const s = d.startSpan(start(incoming)) as ZipkinSpan;
      assert.equal(s.id, "a2fb4a1d1a96d312");
      assert.equal(JSON.parse(JSON.stringify(s.plain())).shared, true);
      const own = d.startSpan(start(incoming, { spawnUpstreamSpan: true })) as ZipkinSpan;
      assert.equal(own.parentId, "a2fb4a1d1a96d312");
      assert.notEqual(own.id, "a2fb4a1d1a96d312");
      const egress = d.startSpan(start(incoming, { egress: true })) as ZipkinSpan;
      assert.equal(egress.kind, "CLIENT");
      assert.equal(egress.parentId, "a2fb4a1d1a96d312");
    });

    await t.step("not sampled: one shared span that propagates x-b3-sampled: 0", () => {
      const a = d.startSpan(start(new HeaderMap(), { traced: false }))!;
      const b = d.startSpan(start(h([["x-b3-sampled", "0"]])))!;
      assert.equal(a, b);
      assert.equal(a.sampled, false);
      const out = new HeaderMap();
      a.injectContext(out);
      assert.equal(out.get("x-b3-sampled"), "0");
      assert.equal(d.startSpan(start(h([["b3", "garbage"]]))), null);
    });

    await t.step("v2 JSON and a flush every 5 finished spans (no cluster: skipped, counted)", () => {
      const s = d.startSpan(start(new HeaderMap())) as ZipkinSpan;
      s.setTag("http.status_code", "200");
      s.setOperation("op");
      s.finish(1_700_000_000_002.5);
      const j = JSON.parse(JSON.stringify(s.plain()));
      assert.equal(j.name, "op");
      assert.equal(j.timestamp, 1_700_000_000_000_000);
      assert.equal(j.duration, 2500);
      assert.deepEqual(j.localEndpoint, { serviceName: "svc" });
      assert.deepEqual(j.tags, { "http.status_code": "200" });
      for (let i = 0; i < 4; i++) {
        (d.startSpan(start(new HeaderMap())) as ZipkinSpan).finish(1_700_000_000_003);
      }
      assert.equal(stats.counter("tracing.zipkin.spans_sent").value, 5);
    });
  } finally {
    await d.close();
  }
  assert.equal(stats.counter("tracing.zipkin.reports_skipped_no_cluster").value, 1);
});
