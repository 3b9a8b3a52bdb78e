/**
 * envoy.tracers.opentelemetry: W3C trace context (`traceparent`, `tracestate`) extraction and injection,
 * OTLP spans batched per event loop and exported over gRPC (TraceService/Export on the `envoy_grpc` cluster,
 * nuncio's own gRPC client) or OTLP/HTTP (protobuf POST to `http_uri`), with `tracing.opentelemetry.*` stats.
 */
import { GrpcChannel, GrpcError } from "../../../grpc/client.ts";
import type { HeaderMap } from "../../../http/headers.ts";
import type { FactoryContext } from "../../../network/filter.ts";
import type { Counter } from "../../../stats/store.ts";
import { randomHex64, SpanBatcher } from "../../../tracing/batcher.ts";
import { postToCollector } from "../../../tracing/collector_http.ts";
import type { Span, SpanStart, TracerDriver } from "../../../tracing/types.ts";
import type { OpenTelemetryConfig } from "./config.ts";
import { encodeExportRequest, type OtlpSpan } from "./otlp.ts";

const EXPORT_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const HEX = /^[0-9a-f]+$/;
const ZERO32 = "0".repeat(32);
const ZERO16 = "0".repeat(16);

/** A W3C trace context read from `traceparent` / `tracestate`. */
export interface W3cContext {
  traceId: string;
  /** The caller's span id (the parent of ours). */
  parentId: string;
  sampled: boolean;
  traceState: string;
}

/** Parses `traceparent` (version 00 layout); null when absent, "invalid" when malformed (Envoy: no span). */
export function extractTraceparent(h: HeaderMap): W3cContext | null | "invalid" {
  const tp = h.get("traceparent");
  if (tp === undefined) return null;
  if (tp.length < 55) return "invalid";
  const parts = tp.split("-");
  if (parts.length < 4) return "invalid";
  const [version, traceId, parentId, flags] = parts;
  if (version.length !== 2 || !HEX.test(version) || version === "ff") return "invalid";
  if (version === "00" && (parts.length !== 4 || tp.length !== 55)) return "invalid";
  if (traceId.length !== 32 || !HEX.test(traceId) || traceId === ZERO32) return "invalid";
  if (parentId.length !== 16 || !HEX.test(parentId) || parentId === ZERO16) return "invalid";
  if (flags.length !== 2 || !HEX.test(flags)) return "invalid";
  return {
    traceId,
    parentId,
    sampled: (parseInt(flags, 16) & 1) === 1,
    traceState: h.get("tracestate") ?? "",
  };
}

/** Envoy's `tracing.opentelemetry.` counters. */
class OtelStats {
  readonly spans_sent: Counter;
  readonly timer_flushed: Counter;
  readonly http_reports_sent: Counter;
  readonly http_reports_dropped: Counter;
  readonly http_reports_failed: Counter;
  readonly grpc_reports_sent: Counter;
  readonly grpc_reports_failed: Counter;
  readonly reports_dropped: Counter;
  constructor(ctx: FactoryContext) {
    const s = ctx.stats.scope("tracing.opentelemetry");
    this.spans_sent = s.counter("spans_sent");
    this.timer_flushed = s.counter("timer_flushed");
    this.http_reports_sent = s.counter("http_reports_sent");
    this.http_reports_dropped = s.counter("http_reports_dropped");
    this.http_reports_failed = s.counter("http_reports_failed");
    this.grpc_reports_sent = s.counter("grpc_reports_sent");
    this.grpc_reports_failed = s.counter("grpc_reports_failed");
    this.reports_dropped = s.counter("reports_dropped");
  }
}

/** A sampled OpenTelemetry span. */
export class OtelSpan implements Span, OtlpSpan {
  readonly sampled = true;
  readonly attributes = new Map<string, string>();
  events: { timeNs: bigint; name: string }[] | null = null;
  startNs: bigint;
  endNs = 0n;
  #done = false;

  constructor(
    readonly driver: OtelDriver,
    readonly traceId: string,
    readonly spanId: string,
    readonly parentSpanId: string,
    readonly traceState: string,
    public name: string,
    readonly kind: number,
    startMs: number,
  ) {
    this.startNs = msToNs(startMs);
  }

  setTag(name: string, value: string): void {
    if (name !== "") this.attributes.set(name, value);
  }

  setOperation(name: string): void {
    this.name = name;
  }

  log(atMs: number, event: string): void {
    (this.events ??= []).push({ timeNs: msToNs(atMs), name: event });
  }

  injectContext(h: HeaderMap): void {
    h.set("traceparent", `00-${this.traceId}-${this.spanId}-01`);
    if (this.traceState !== "") h.set("tracestate", this.traceState);
  }

  spawnChild(name: string, startMs: number): Span {
    return new OtelSpan(
      this.driver,
      this.traceId,
      randomHex64(),
      this.spanId,
      this.traceState,
      name,
      3,
      startMs,
    );
  }

  finish(endMs: number): void {
    if (this.#done) return;
    this.#done = true;
    this.endNs = msToNs(endMs);
    this.driver.report(this);
  }
}

function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1000)) * 1000n;
}

/** An unsampled request: nothing recorded; an incoming traceparent passes through unchanged. */
const NOT_SAMPLED: Span = {
  sampled: false,
  setTag() {},
  setOperation() {},
  log() {},
  injectContext() {},
  spawnChild(): Span {
    return NOT_SAMPLED;
  },
  finish() {},
};

/** One OpenTelemetry tracer per config and event loop. */
export class OtelDriver implements TracerDriver {
  readonly stats: OtelStats;
  readonly #config: OpenTelemetryConfig;
  readonly #batcher: SpanBatcher<OtelSpan>;
  readonly #resource: [string, string][];
  readonly #channel: GrpcChannel | null = null;

  constructor(
    config: OpenTelemetryConfig,
    readonly ctx: FactoryContext,
    opts?: { flushIntervalMs?: number },
  ) {
    this.#config = config;
    this.stats = new OtelStats(ctx);
    this.#resource = [["service.name", config.service_name || "unknown_service:envoy"]];
    const g = config.grpc_service?.envoy_grpc;
    if (g !== undefined) {
      const name = g.cluster_name;
      this.#channel = new GrpcChannel(name, () => ctx.clusterManager.get(name), {
        timers: ctx.timers,
        authority: g.authority,
      });
    }
    this.#batcher = new SpanBatcher<OtelSpan>({
      minFlushSpans: 5,
      flushIntervalMs: opts?.flushIntervalMs ?? 5000,
      send: (batch) => this.#send(batch),
      onTimerFlush: () => this.stats.timer_flushed.inc(),
      onDropped: () => this.stats.reports_dropped.inc(),
    });
  }

  startSpan(s: SpanStart): Span | null {
    const ctx = extractTraceparent(s.headers);
    if (ctx === "invalid") return null;
    const kind = s.egress ? 3 : 2;
    if (ctx === null) {
      if (!s.traced) return NOT_SAMPLED;
      return new OtelSpan(
        this,
        randomHex64() + randomHex64(),
        randomHex64(),
        "",
        "",
        s.operation,
        kind,
        s.startMs,
      );
    }
    // the caller's sampled flag decides (Envoy without a sampler)
    if (!ctx.sampled) return NOT_SAMPLED;
    return new OtelSpan(
      this,
      ctx.traceId,
      randomHex64(),
      ctx.parentId,
      ctx.traceState,
      s.operation,
      kind,
      s.startMs,
    );
  }

  /** A sampled span finished: buffered for the next export. */
  report(span: OtelSpan): void {
    this.#batcher.add(span);
  }

  async #send(batch: OtelSpan[]): Promise<void> {
    const stats = this.stats;
    const c = this.#config;
    if (this.#channel === null && c.http_service === undefined) return; // no exporter: Envoy skips
    stats.spans_sent.inc(batch.length);
    const body = encodeExportRequest(this.#resource, batch);
    if (this.#channel !== null) {
      const r = await this.#channel.unary(EXPORT_PATH, body, c.grpc_service?.timeout || 5000);
      if (r instanceof GrpcError) stats.grpc_reports_failed.inc();
      else stats.grpc_reports_sent.inc();
      return;
    }
    const h = c.http_service!;
    let path = "/v1/traces";
    let authority = h.http_uri.cluster;
    try {
      const u = new URL(h.http_uri.uri);
      path = u.pathname + u.search;
      authority = u.host;
    } catch {
      // a bare path
      if (h.http_uri.uri.startsWith("/")) path = h.http_uri.uri;
    }
    const status = await postToCollector(this.ctx.clusterManager, {
      cluster: h.http_uri.cluster,
      path,
      authority,
      contentType: "application/x-protobuf",
      body,
      headers: [
        ["user-agent", "OTel-OTLP-Exporter-nuncio"],
        ...h.request_headers_to_add.map((o) =>
          [o.header.key.toLowerCase(), o.header.value] as [string, string]
        ),
      ],
      timeoutMs: h.http_uri.timeout,
    });
    if (status <= 0) stats.http_reports_failed.inc();
    else if (status === 200) stats.http_reports_sent.inc();
    else stats.http_reports_dropped.inc();
  }

  async close(): Promise<void> {
    await this.#batcher.close();
    this.#channel?.close();
  }
}
