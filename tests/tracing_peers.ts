/**
 * Trace collectors for the tracing tests: a Zipkin v2 JSON receiver (POST /api/v2/spans) and an OTLP receiver
 * (OTLP/HTTP protobuf at /v1/traces, and OTLP/gRPC TraceService/Export on nuncio's gRPC server), decoding with
 * protobufjs from the opentelemetry-proto message definitions (field numbers as published).
 */
import protobuf from "protobufjs";
import { GrpcServer } from "../src/grpc/server.ts";

/** A Zipkin v2 span as received. */
export interface ZipkinSpanJson {
  traceId: string;
  id: string;
  parentId?: string;
  kind?: string;
  name: string;
  timestamp: number;
  duration: number;
  shared?: boolean;
  localEndpoint?: { serviceName?: string };
  tags: Record<string, string>;
}

/** A running Zipkin collector. */
export interface ZipkinReceiver extends AsyncDisposable {
  port: number;
  spans: ZipkinSpanJson[];
  posts: number;
  /** Waits until at least `n` spans arrived (bounded). */
  waitSpans(n: number, timeoutMs?: number): Promise<ZipkinSpanJson[]>;
  close(): Promise<void>;
}

async function waitFor<T>(get: () => T[], n: number, timeoutMs: number): Promise<T[]> {
  const deadline = Date.now() + timeoutMs;
  while (get().length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return get();
}

/** Starts a Zipkin v2 receiver answering 202 (or `status`). */
export function startZipkinReceiver(status = 202): ZipkinReceiver {
  const spans: ZipkinSpanJson[] = [];
  const r = { posts: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    if (req.method !== "POST" || u.pathname !== "/api/v2/spans") return new Response(null, { status: 404 });
    if (req.headers.get("content-type") !== "application/json") return new Response(null, { status: 415 });
    spans.push(...await req.json() as ZipkinSpanJson[]);
    r.posts++;
    return new Response(null, { status });
  });
  const close = async () => {
    await server.shutdown();
  };
  return {
    port: server.addr.port,
    spans,
    get posts() {
      return r.posts;
    },
    waitSpans: (n, timeoutMs = 3000) => waitFor(() => spans, n, timeoutMs),
    close,
    [Symbol.asyncDispose]: close,
  };
}

const OTLP_PROTO = `
syntax = "proto3";
package opentelemetry.proto;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    bytes bytes_value = 7;
  }
}
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; fixed32 flags = 16;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10; repeated Event events = 11;
  uint32 dropped_events_count = 12; uint32 dropped_links_count = 14; Status status = 15;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;

const root = protobuf.parse(OTLP_PROTO, { keepCase: true }).root;
const ExportRequest = root.lookupType("opentelemetry.proto.ExportTraceServiceRequest");

/** An OTLP span as received (ids as hex, attributes as a string map). */
export interface OtlpSpanJson {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string>;
  serviceName: string;
}

function hex(b: Uint8Array | undefined): string {
  return b === undefined ? "" : [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Decodes an ExportTraceServiceRequest into flat spans. */
export function decodeOtlp(body: Uint8Array): OtlpSpanJson[] {
  // deno-lint-ignore no-explicit-any -- protobufjs decodes to untyped messages
  const msg = ExportRequest.toObject(ExportRequest.decode(body), { longs: String, defaults: false }) as any;
  const out: OtlpSpanJson[] = [];
  for (const rs of msg.resource_spans ?? []) {
    const attrs = (kvs: { key: string; value?: { string_value?: string } }[] | undefined) =>
      Object.fromEntries((kvs ?? []).map((kv) => [kv.key, kv.value?.string_value ?? ""]));
    const serviceName = attrs(rs.resource?.attributes)["service.name"] ?? "";
    for (const ss of rs.scope_spans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hex(s.trace_id),
          spanId: hex(s.span_id),
          parentSpanId: hex(s.parent_span_id),
          name: s.name,
          kind: s.kind ?? 0,
          startNs: BigInt(s.start_time_unix_nano ?? 0),
          endNs: BigInt(s.end_time_unix_nano ?? 0),
          attributes: attrs(s.attributes),
          serviceName,
        });
      }
    }
  }
  return out;
}

/** A running OTLP collector (HTTP and gRPC). */
export interface OtlpReceiver extends AsyncDisposable {
  httpPort: number;
  grpcPort: number;
  spans: OtlpSpanJson[];
  contentTypes: string[];
  waitSpans(n: number, timeoutMs?: number): Promise<OtlpSpanJson[]>;
  close(): Promise<void>;
}

/** Starts an OTLP receiver: HTTP protobuf at /v1/traces (200) and gRPC TraceService/Export. */
export function startOtlpReceiver(): OtlpReceiver {
  const spans: OtlpSpanJson[] = [];
  const contentTypes: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    if (req.method !== "POST" || u.pathname !== "/v1/traces") return new Response(null, { status: 404 });
    contentTypes.push(req.headers.get("content-type") ?? "");
    spans.push(...decodeOtlp(new Uint8Array(await req.arrayBuffer())));
    return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
  });
  const grpc = new GrpcServer();
  grpc.register("/opentelemetry.proto.collector.trace.v1.TraceService/Export", (body) => {
    spans.push(...decodeOtlp(body));
    return new Uint8Array(0);
  });
  const grpcPort = grpc.listen({ port: 0, hostname: "127.0.0.1" }).port;
  const close = async () => {
    await server.shutdown();
    await grpc.close();
  };
  return {
    httpPort: server.addr.port,
    grpcPort,
    spans,
    contentTypes,
    waitSpans: (n, timeoutMs = 3000) => waitFor(() => spans, n, timeoutMs),
    close,
    [Symbol.asyncDispose]: close,
  };
}
