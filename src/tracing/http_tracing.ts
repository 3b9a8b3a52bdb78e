/**
 * The HTTP connection manager's tracing (Envoy's ConnectionManagerImpl tracing + HttpTracerUtility): built once
 * per HCM snapshot when `tracing` has a provider (its own or the bootstrap's). Per request it records the
 * decision in x-request-id, counts `http.<prefix>.tracing.*`, starts the downstream span (operation from the
 * route decorator or x-envoy-decorator-operation) and finalizes it with Envoy's tags; the router asks it for
 * upstream spans. Requests of an HCM without tracing never reach this module.
 */
import type { StreamInfo } from "../common/stream_info.ts";
import { formatResponseFlags } from "../common/response_flags.ts";
import type { HttpRequest } from "../http/filter.ts";
import type { HeaderMap } from "../http/headers.ts";
import type { RouteEntry } from "../http/routing/types.ts";
import type { ExtensionRef } from "../config/extension_ref.ts";
import type { FactoryContext } from "../network/filter.ts";
import type { Counter } from "../stats/store.ts";
import {
  type CustomTagConfig,
  fractionPer10k,
  type HcmTracingConfig,
  percentPer10k,
  type RouteTracingConfig,
} from "./config.ts";
import { mutateTraceReason, type SamplingRates } from "./request_id.ts";
import { type Span, type TracerCreate, type TracerDriver, TraceReason } from "./types.ts";

/** Envoy's default max_path_tag_length. */
export const DEFAULT_MAX_PATH_TAG_LENGTH = 256;

/** The stream as tracing sees it (ActiveStream implements it). */
export interface TracedStream {
  readonly request: HttpRequest;
  readonly streamInfo: StreamInfo;
  route(): RouteEntry | null;
  /** The request's span, null when none was started. */
  readonly activeSpan: Span | null;
  /** Ingress: the decorator operation the response carries back (x-envoy-decorator-operation), else "". */
  decoratedOperation: string;
}

/** A custom tag compiled once: its value per request. */
interface CompiledTag {
  readonly tag: string;
  value(req: HttpRequest, info: StreamInfo): string;
}

/** A route's tracing overrides compiled once (RouteEntry.tracing). */
export interface RouteTracing {
  readonly rates: SamplingRates;
  readonly tags: readonly CompiledTag[];
}

/** Compiles a route's `tracing` (routing calls it once per route at table build). */
export function compileRouteTracing(c: RouteTracingConfig): RouteTracing {
  // as Envoy's RouteTracingImpl: a route with `tracing` replaces all three rates, each 100 % when unset
  return {
    rates: {
      client: fractionPer10k(c.client_sampling, 10000),
      random: fractionPer10k(c.random_sampling, 10000),
      overall: fractionPer10k(c.overall_sampling, 10000),
    },
    tags: c.custom_tags.map(compileTag),
  };
}

function compileTag(t: CustomTagConfig): CompiledTag {
  const tag = t.tag;
  if (t.literal !== undefined) {
    const v = t.literal.value;
    return { tag, value: () => v };
  }
  if (t.environment !== undefined) {
    let v = t.environment.default_value;
    try {
      v = Deno.env.get(t.environment.name) ?? v;
    } catch {
      // no --allow-env: the default, as an unset variable
    }
    return { tag, value: () => v };
  }
  if (t.request_header !== undefined) {
    const name = t.request_header.name.toLowerCase();
    const def = t.request_header.default_value;
    return { tag, value: (req) => req.headers.get(name) ?? def };
  }
  const m = t.metadata!;
  const ns = m.metadata_key.key;
  const path = m.metadata_key.path.map((p) => p.key);
  const def = m.default_value;
  return {
    tag,
    value: (_req, info) => {
      let v: unknown = info.dynamicMetadata?.[ns];
      for (const k of path) {
        v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
      }
      if (v === undefined || v === null) return def;
      return typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
    },
  };
}

/** `http.<prefix>.tracing.*`. */
class TracingStats {
  readonly random_sampling: Counter;
  readonly service_forced: Counter;
  readonly client_enabled: Counter;
  readonly not_traceable: Counter;
  readonly health_check: Counter;
  constructor(ctx: FactoryContext, statPrefix: string) {
    const s = ctx.stats.scope(`http.${statPrefix}.tracing`);
    this.random_sampling = s.counter("random_sampling");
    this.service_forced = s.counter("service_forced");
    this.client_enabled = s.counter("client_enabled");
    this.not_traceable = s.counter("not_traceable");
    this.health_check = s.counter("health_check");
  }
}

interface DriverEntry {
  driver: TracerDriver;
  users: number;
}

/** One driver per provider config per event loop and cluster manager (Envoy's HttpTracerManager cache). */
const DRIVERS = new WeakMap<object, Map<string, DriverEntry>>();

function acquireDriver(ref: ExtensionRef, ctx: FactoryContext): { key: string; driver: TracerDriver } {
  const key = `${ref.ext.name}\n${JSON.stringify(ref.config)}`;
  let byKey = DRIVERS.get(ctx.clusterManager);
  if (byKey === undefined) DRIVERS.set(ctx.clusterManager, byKey = new Map());
  let e = byKey.get(key);
  if (e === undefined) {
    e = { driver: (ref.ext.create as TracerCreate<unknown>)(ref.config, ctx), users: 0 };
    byKey.set(key, e);
  }
  e.users++;
  return { key, driver: e.driver };
}

/** The tracing state of one HCM snapshot. */
export class HcmTracing {
  readonly rates: SamplingRates;
  readonly maxPathTagLength: number;
  readonly verbose: boolean;
  /** spawn_upstream_span: the router makes a client span per upstream attempt. */
  readonly spawnUpstreamSpan: boolean;
  readonly tags: readonly CompiledTag[];
  readonly stats: TracingStats;
  readonly driver: TracerDriver;
  /** Draws client_sampling (tests replace it). */
  random: () => number = Math.random;
  readonly #key: string;
  readonly #ctx: FactoryContext;
  readonly #nodeId: string;
  readonly #zone: string;
  /** The listener is OUTBOUND: spans are egress (client) spans named "egress <host>". */
  readonly egress: boolean;

  constructor(
    c: HcmTracingConfig,
    provider: ExtensionRef,
    ctx: FactoryContext,
    statPrefix: string,
    zone = "",
  ) {
    this.rates = {
      client: percentPer10k(c.client_sampling, 10000),
      random: percentPer10k(c.random_sampling, 10000),
      overall: percentPer10k(c.overall_sampling, 10000),
    };
    this.maxPathTagLength = c.max_path_tag_length ?? DEFAULT_MAX_PATH_TAG_LENGTH;
    this.verbose = c.verbose;
    this.spawnUpstreamSpan = c.spawn_upstream_span ?? false;
    this.tags = c.custom_tags.map(compileTag);
    this.stats = new TracingStats(ctx, statPrefix);
    const { key, driver } = acquireDriver(provider, ctx);
    this.#key = key;
    this.driver = driver;
    this.#ctx = ctx;
    this.#nodeId = ctx.node.id;
    this.egress = ctx.trafficDirection === "OUTBOUND";
    this.#zone = zone;
  }

  /**
   * Runs once per request after the request headers were prepared: the trace decision (in x-request-id), its
   * stat, and the downstream span (null when not traced or the driver refuses the incoming context).
   */
  begin(stream: TracedStream, startMs: number): Span | null {
    const req = stream.request;
    const route = stream.route();
    const rt = route?.tracing;
    const reason = mutateTraceReason(req.headers, rt !== undefined ? rt.rates : this.rates, this.random);
    const stats = this.stats;
    let traced = true;
    if (reason === TraceReason.Sampling) stats.random_sampling.inc();
    else if (reason === TraceReason.ServiceForced) stats.service_forced.inc();
    else if (reason === TraceReason.ClientForced) stats.client_enabled.inc();
    else {
      stats.not_traceable.inc();
      traced = false;
    }
    const span = this.driver.startSpan({
      headers: req.headers,
      authority: req.authority,
      operation: this.egress ? `egress ${req.authority}` : "ingress",
      egress: this.egress,
      spawnUpstreamSpan: this.spawnUpstreamSpan,
      startMs,
      traced,
    });
    if (span === null) return null;
    if (!span.sampled) {
      // Envoy keeps an unsampled span for its context (the router still propagates "not sampled")
      return span;
    }
    span.setTag("node_id", this.#nodeId);
    span.setTag("zone", this.#zone);
    const d = route?.decorator;
    if (d !== undefined) span.setOperation(d.operation);
    if (this.egress) {
      // egress: the decorator names the receiving side's span too (unless propagate is false)
      if (d !== undefined && d.propagate) req.headers.set("x-envoy-decorator-operation", d.operation);
      return span;
    }
    // ingress: the caller's decorator operation names this span; the header stops here
    const op = req.headers.get("x-envoy-decorator-operation");
    if (op !== undefined) {
      if (op !== "") span.setOperation(op);
      req.headers.remove("x-envoy-decorator-operation");
    } else if (d !== undefined && d.propagate) stream.decoratedOperation = d.operation;
    return span;
  }

  /**
   * The response head goes downstream (Envoy's encodeHeaders and mutateResponseHeaders): a forced trace returns
   * x-request-id; ingress returns the decorator's operation to the caller, egress takes the callee's.
   */
  onResponseHeaders(stream: TracedStream, h: HeaderMap): void {
    const rh = stream.request.headers;
    if (rh.has("x-envoy-force-trace")) {
      const id = rh.get("x-request-id");
      if (id !== undefined) h.set("x-request-id", id);
    }
    const span = stream.activeSpan;
    if (span === null || !span.sampled) return;
    if (!this.egress) {
      if (stream.decoratedOperation !== "") h.set("x-envoy-decorator-operation", stream.decoratedOperation);
      return;
    }
    const op = h.get("x-envoy-decorator-operation");
    if (op !== undefined) {
      if (op !== "") span.setOperation(op);
      h.remove("x-envoy-decorator-operation");
    }
  }

  /** Finalizes the downstream span when the stream ends (Envoy's finalizeDownstreamSpan). */
  finishDownstream(span: Span, stream: TracedStream, endMs: number): void {
    if (!span.sampled) {
      span.finish(endMs);
      return;
    }
    const req = stream.request;
    const info = stream.streamInfo;
    // the five request headers the tags read, first values, in one pass over the names
    const names = req.headers.names, values = req.headers.values;
    let id: string | undefined, proto: string | undefined, cluster: string | undefined;
    let ua: string | undefined, ct: string | undefined;
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      const len = n.length;
      if (len === 12) {
        if (id === undefined && n === "x-request-id") id = values[i];
      } else if (len === 17) {
        if (proto === undefined && n === "x-forwarded-proto") proto = values[i];
        else if (ct === undefined && n === "x-client-trace-id") ct = values[i];
      } else if (len === 10) {
        if (ua === undefined && n === "user-agent") ua = values[i];
      } else if (len === 34) {
        if (cluster === undefined && n === "x-envoy-downstream-service-cluster") cluster = values[i];
      }
    }
    if (id !== undefined) span.setTag("guid:x-request-id", id);
    let path = info.originalPath || req.path;
    if (path.length > this.maxPathTagLength) path = path.slice(0, this.maxPathTagLength);
    span.setTag("http.url", `${proto ?? req.scheme}://${req.authority}${path}`);
    span.setTag("http.method", req.method);
    span.setTag("downstream_cluster", cluster ?? "-");
    span.setTag("user_agent", ua ?? "-");
    span.setTag("http.protocol", info.protocol);
    span.setTag("peer.address", info.downstreamDirectRemoteAddress);
    if (ct !== undefined) span.setTag("guid:x-client-trace-id", ct);
    this.#customTags(span, this.tags, req, info);
    const route = stream.route();
    const rt = route?.tracing;
    if (rt !== undefined) this.#customTags(span, rt.tags, req, info);
    span.setTag("request_size", String(info.bytesReceived));
    span.setTag("response_size", String(info.bytesSent));
    this.#common(span, info.responseCode, info.responseFlags, info.upstreamCluster, info.upstreamHost);
    if (this.verbose) {
      if (info.firstUpstreamRxMono > 0) {
        span.log(
          info.startTime + info.firstUpstreamRxMono - info.startMono,
          "first upstream rx byte received",
        );
      }
      if (info.endMono > 0) {
        span.log(info.startTime + info.endMono - info.startMono, "last downstream tx byte sent");
      }
    }
    span.finish(endMs);
  }

  /** A child (client) span for one upstream attempt (router), named as Envoy's router names it. */
  upstreamSpan(parent: Span, cluster: string, attempt: number): Span {
    const span = parent.spawnChild(`router ${cluster} egress`, this.#ctx.clock.now());
    if (attempt > 1) span.setTag("retry.count", String(attempt - 1));
    return span;
  }

  /** Finalizes an upstream attempt's span (Envoy's finalizeUpstreamSpan). */
  finishUpstream(
    span: Span,
    a: { protocol: string; status: number; flags: number; cluster: string; host: string },
  ): void {
    if (span.sampled) {
      span.setTag("http.protocol", a.protocol);
      span.setTag("upstream_address", a.host);
      span.setTag("peer.address", a.host);
      this.#common(span, a.status, a.flags, a.cluster, "");
    }
    span.finish(this.#ctx.clock.now());
  }

  #common(span: Span, status: number, flags: number, cluster: string, host: string): void {
    span.setTag("component", "proxy");
    if (cluster) span.setTag("upstream_cluster", cluster);
    if (host) span.setTag("upstream_address", host);
    span.setTag("http.status_code", String(status));
    span.setTag("response_flags", formatResponseFlags(flags));
    if (status === 0 || (status >= 500 && status < 600)) span.setTag("error", "true");
  }

  #customTags(span: Span, tags: readonly CompiledTag[], req: HttpRequest, info: StreamInfo): void {
    for (let i = 0; i < tags.length; i++) {
      const v = tags[i].value(req, info);
      if (v !== "") span.setTag(tags[i].tag, v);
    }
  }

  /** The HCM snapshot is retired: the last user of the driver flushes and stops it. */
  async close(): Promise<void> {
    const byKey = DRIVERS.get(this.#ctx.clusterManager);
    const e = byKey?.get(this.#key);
    if (e === undefined || --e.users > 0) return;
    byKey!.delete(this.#key);
    await e.driver.close();
  }
}

/**
 * Builds the HCM's tracing (run once per snapshot): null without a `tracing` block or without a provider
 * (neither the HCM's nor the bootstrap's), as Envoy traces nothing then.
 */
export function createHcmTracing(
  c: HcmTracingConfig | undefined,
  bootstrapProvider: ExtensionRef | undefined,
  ctx: FactoryContext,
  statPrefix: string,
): HcmTracing | null {
  if (c === undefined) return null;
  const provider = c.provider ?? bootstrapProvider;
  if (provider === undefined) return null;
  return new HcmTracing(c, provider, ctx, statPrefix, (ctx.node as { zone?: string }).zone ?? "");
}
