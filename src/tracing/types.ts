/**
 * The tracing contracts (Envoy's `envoy/tracing/`): a tracer driver per provider extension (Zipkin,
 * OpenTelemetry) starts spans; the HTTP connection manager owns the request's span, the router spawns upstream
 * spans and injects context. Core code reaches drivers only through the registry (`tracer` category).
 */
import type { HeaderMap } from "../http/headers.ts";
import type { FactoryContext } from "../network/filter.ts";

/** Why a request is traced or not (Envoy's Tracing::Reason). */
export const TraceReason = {
  NotTraceable: 0,
  HealthCheck: 1,
  Sampling: 2,
  ServiceForced: 3,
  ClientForced: 4,
} as const;
/** One of TraceReason. */
export type TraceReason = typeof TraceReason[keyof typeof TraceReason];

/** One span: tags, operation name, context propagation; finished once. */
export interface Span {
  /** Whether the span is sampled (reported when finished). */
  readonly sampled: boolean;
  /** Sets (or overwrites) a string tag. */
  setTag(name: string, value: string): void;
  /** Renames the span (route decorator, x-envoy-decorator-operation). */
  setOperation(name: string): void;
  /** Adds a timestamped event (verbose mode); `atMs` is wall-clock ms. */
  log(atMs: number, event: string): void;
  /** Writes this span's context into outgoing request headers (B3 or W3C). */
  injectContext(headers: HeaderMap): void;
  /** A child span (client kind) named `name`, starting at wall-clock `startMs`. */
  spawnChild(name: string, startMs: number): Span;
  /** Ends the span at wall-clock `endMs` and hands it to the reporter when sampled. */
  finish(endMs: number): void;
}

/** What a driver needs to start the span of a downstream request. */
export interface SpanStart {
  /** The request headers (context is extracted from them). */
  readonly headers: HeaderMap;
  /** :authority / Host. */
  readonly authority: string;
  /** The default operation name ("ingress" or "egress <host>"). */
  readonly operation: string;
  /** The listener is OUTBOUND (Envoy's egress operation: a client span). */
  readonly egress: boolean;
  /** Whether the HCM spans upstream requests itself (spawn_upstream_span: Envoy as an independent hop). */
  readonly spawnUpstreamSpan: boolean;
  /** Wall-clock start, ms since epoch. */
  readonly startMs: number;
  /** The HCM's decision (trace reason is traced). */
  readonly traced: boolean;
}

/** A tracing provider instance (one per event loop and config): starts spans, batches and reports them. */
export interface TracerDriver {
  /** Starts the downstream request's span; null when the headers carry a context the driver rejects. */
  startSpan(s: SpanStart): Span | null;
  /** Flushes what is buffered (best effort) and stops timers; runs when the last HCM using it closes. */
  close(): Promise<void>;
}

/** The `create` of `tracer` extensions: one driver for a provider config on this event loop. */
export type TracerCreate<C> = (config: C, ctx: FactoryContext) => TracerDriver;
