import assert from "node:assert/strict";
import protobuf from "protobufjs";
import { HeaderMap } from "../../../http/headers.ts";
import type { FactoryContext } from "../../../network/filter.ts";
import { StatsStore } from "../../../stats/store.ts";
import { openTelemetryConfigSchema } from "./config.ts";
import { encodeExportRequest } from "./otlp.ts";
import { extractTraceparent, OtelDriver, type OtelSpan } from "./tracer.ts";

const TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

Deno.test("W3C traceparent extraction", () => {
  assert.deepEqual(extractTraceparent(HeaderMap.from([["traceparent", TP], ["tracestate", "k=v"]])), {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    parentId: "b7ad6b7169203331",
    sampled: true,
    traceState: "k=v",
  });
  assert.equal(extractTraceparent(new HeaderMap()), null);
  assert.equal(
    (extractTraceparent(HeaderMap.from([["traceparent", TP.replace(/01$/, "00")]])) as { sampled: boolean })
      .sampled,
    false,
  );
  for (
    const bad of [
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
      "garbage",
    ]
  ) assert.equal(extractTraceparent(HeaderMap.from([["traceparent", bad]])), "invalid", bad);
});

// opentelemetry-proto v1 (trace.proto, common.proto, resource.proto, trace_service.proto): the fields read here
const PROTO = `
syntax = "proto3";
message AnyValue { oneof value { string string_value = 1; } }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message InstrumentationScope { string name = 1; }
message Event { fixed64 time_unix_nano = 1; string name = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5;
  int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; repeated Event events = 11;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;

Deno.test("OTLP ExportTraceServiceRequest encoding decodes with the published field numbers", () => {
  const bytes = encodeExportRequest([["service.name", "svc"]], [{
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    parentSpanId: "00f067aa0ba902b7",
    traceState: "k=v",
    name: "ingress",
    kind: 2,
    startNs: 1_700_000_000_123_456_000n,
    endNs: 1_700_000_000_223_456_000n,
    attributes: new Map([["http.status_code", "200"], ["empty", ""]]),
    events: [{ timeNs: 1_700_000_000_200_000_000n, name: "e" }],
  }]);
  const T = protobuf.parse(PROTO, { keepCase: true }).root.lookupType("ExportTraceServiceRequest");
  // deno-lint-ignore no-explicit-any -- protobufjs decodes to untyped messages
  const m = T.toObject(T.decode(bytes), { longs: String, bytes: String }) as any;
  const rs = m.resource_spans[0];
  assert.deepEqual(rs.resource.attributes, [{ key: "service.name", value: { string_value: "svc" } }]);
  assert.equal(rs.scope_spans[0].scope.name, "envoy");
  const s = rs.scope_spans[0].spans[0];
  const hex = (b64: string) =>
    [...atob(b64)].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  assert.equal(hex(s.trace_id), "0af7651916cd43dd8448eb211c80319c");
  assert.equal(hex(s.span_id), "b7ad6b7169203331");
  assert.equal(hex(s.parent_span_id), "00f067aa0ba902b7");
  assert.equal(s.trace_state, "k=v");
  assert.equal(s.name, "ingress");
  assert.equal(s.kind, 2);
  assert.equal(s.start_time_unix_nano, "1700000000123456000");
  assert.equal(s.end_time_unix_nano, "1700000000223456000");
  assert.deepEqual(s.attributes, [
    { key: "http.status_code", value: { string_value: "200" } },
    { key: "empty", value: { string_value: "" } },
  ]);
  assert.deepEqual(s.events, [{ time_unix_nano: "1700000000200000000", name: "e" }]);
});

Deno.test("opentelemetry driver: context continuation, kinds, injection, unsampled callers", async () => {
  const stats = new StatsStore();
  const c = {
    stats,
    clusterManager: { get: () => undefined },
    node: { id: "n", cluster: "c" },
  } as unknown as FactoryContext;
  const d = new OtelDriver(openTelemetryConfigSchema.parse({}), c);
  try {
    const base = {
      authority: "h",
      operation: "ingress",
      egress: false,
      spawnUpstreamSpan: false,
      startMs: 1000,
      traced: true,
    };
    const s = d.startSpan({
      ...base,
      headers: HeaderMap.from([["traceparent", TP], ["tracestate", "a=1"]]),
    }) as OtelSpan;
    assert.equal(s.traceId, "0af7651916cd43dd8448eb211c80319c");
    assert.equal(s.parentSpanId, "b7ad6b7169203331");
    assert.equal(s.kind, 2);
    const out = new HeaderMap();
    s.injectContext(out);
    assert.equal(out.get("traceparent"), `00-${s.traceId}-${s.spanId}-01`);
    assert.equal(out.get("tracestate"), "a=1");
    const child = s.spawnChild("router x egress", 1001) as OtelSpan;
    assert.equal(child.kind, 3);
    assert.equal(child.parentSpanId, s.spanId);
    const root = d.startSpan({ ...base, egress: true, headers: new HeaderMap() }) as OtelSpan;
    assert.equal(root.kind, 3);
    assert.match(root.traceId, /^[0-9a-f]{32}$/);
    assert.equal(root.parentSpanId, "");
    // a caller that did not sample: nothing recorded, its traceparent passes through untouched
    const un = d.startSpan({ ...base, headers: HeaderMap.from([["traceparent", TP.replace(/01$/, "00")]]) })!;
    assert.equal(un.sampled, false);
    assert.equal(d.startSpan({ ...base, traced: false, headers: new HeaderMap() })!.sampled, false);
    assert.equal(d.startSpan({ ...base, headers: HeaderMap.from([["traceparent", "bad"]]) }), null);
    // no exporter configured: spans are dropped at flush, as Envoy skips the export
    for (let i = 0; i < 5; i++) (d.startSpan({ ...base, headers: new HeaderMap() }) as OtelSpan).finish(1002);
    assert.equal(stats.counter("tracing.opentelemetry.spans_sent").value, 0);
  } finally {
    await d.close();
  }
});
