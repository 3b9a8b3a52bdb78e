/**
 * Contracts of the compiled route table (built once per RouteConfiguration, read per request).
 * The implementation lives beside this file (config.ts: zod schema; table.ts: compiler and matcher).
 */
import type { HeaderMap } from "../headers.ts";
import type { RouteTracing } from "../../tracing/http_tracing.ts";
import type { MetadataMatchCriteria } from "../../common/metadata_match.ts";
import type { CompiledRateLimit } from "./rate_limits.ts";
import type { RetryPolicy } from "./retry_policy.ts";

/** What route matching needs of a request. */
export interface RouteRequest {
  method: string;
  /** Path including query string, already normalized by the connection manager. */
  path: string;
  /** Host header / :authority as received. */
  authority: string;
  /** "http" / "https". */
  scheme: string;
  headers: HeaderMap;
}

/** Context for header formatters (%DOWNSTREAM_REMOTE_ADDRESS% etc.) and hash policies. */
export interface RouteContext {
  /** Downstream client IP (after XFF handling). */
  remoteIp: string;
  /** "ip:port" of the downstream peer. */
  remoteAddress: string;
  /** "ip:port" of the listener side. */
  localAddress: string;
  /** `localAddress` when original_dst or proxy_protocol restored it (ORIGINAL_DST clusters), else absent. */
  originalDst?: string;
  /** Upstream "ip:port" when known (response headers), else "". */
  upstreamHost: string;
  /** "HTTP/1.1" etc. */
  protocol: string;
  /** The request id header value. */
  requestId: string;
}

/** Header mutations compiled from request/response_headers_to_add/remove at route, vhost and config level. */
export interface HeaderMutation {
  /** Applies removals, then additions (most specific level first, as Envoy does) to `headers`. */
  apply(headers: HeaderMap, ctx: RouteContext): void;
  /** True when apply would do nothing (lets the hot path skip it). */
  readonly empty: boolean;
}

/** Forward to a cluster. */
export interface RouteActionEntry {
  readonly kind: "route";
  /** Picks the cluster name (fixed, weighted or from cluster_header); "" when cluster_header is missing. */
  selectCluster(req: RouteRequest, random: number): string;
  /**
   * The metadata_match criteria (`envoy.lb`) of the cluster `selectCluster` picked with the same `random`: the
   * route's, merged with the weighted cluster's; null when none (absent: the entry has no metadata_match).
   */
  metadataMatchFor?(random: number): MetadataMatchCriteria | null;
  /**
   * The upstream path after prefix_rewrite / regex_rewrite, or undefined when the path is unchanged.
   * Must be called with the same request that matched.
   */
  rewritePath(req: RouteRequest): string | undefined;
  /** host_rewrite_literal value, or undefined. */
  readonly hostRewriteLiteral: string | undefined;
  /** auto_host_rewrite: set Host to the chosen upstream host's hostname. */
  readonly autoHostRewrite: boolean;
  /** Route timeout in ms; 15000 by default; 0 = disabled. */
  readonly timeoutMs: number;
  /** Route idle_timeout in ms, or undefined (use the HCM stream idle timeout). */
  readonly idleTimeoutMs: number | undefined;
  /** Hash for RING_HASH/MAGLEV from hash_policy; undefined when no policy produced a hash. */
  hash(req: RouteRequest, ctx: RouteContext): bigint | undefined;
  /** True when the route has a hash_policy. */
  readonly hasHashPolicy: boolean;
  /** The raw parsed route action config (for later features: retries, mirrors). */
  readonly config: unknown;
  /** The retry policy (route level, else virtual host level), or null when none. */
  readonly retryPolicy: RetryPolicy | null;
  /** request_mirror_policies (empty when none). */
  readonly mirrorPolicies: readonly MirrorPolicy[];
  /** Routing priority for circuit breakers: 0 DEFAULT, 1 HIGH. */
  readonly priority: number;
  /** per_request_buffer_limit_bytes (route, else virtual host), or undefined (the connection's limit). */
  readonly bufferLimitBytes: number | undefined;
  /** Virtual host include_request_attempt_count: send x-envoy-attempt-count upstream. */
  readonly includeRequestAttemptCount: boolean;
  /** Virtual host include_attempt_count_in_response: send x-envoy-attempt-count downstream. */
  readonly includeAttemptCountInResponse: boolean;
  /** rate_limits for the rate-limit filter: the route's, plus the virtual host's as Envoy combines them. */
  readonly rateLimits: readonly CompiledRateLimit[];
}

/** One request_mirror_policies entry. */
export interface MirrorPolicy {
  /** Cluster receiving the shadow request ("" when `clusterHeader` names it per request). */
  readonly cluster: string;
  /** Lower-cased request header holding the mirror cluster's name ("" when `cluster` is fixed). */
  readonly clusterHeader: string;
  /** runtime_fraction default_value as a fraction in [0, 1] (1 when unset). */
  readonly fraction: number;
}

/** Answer with a redirect. */
export interface RedirectEntry {
  readonly kind: "redirect";
  /** Status (301 default, 302, 303, 307, 308) and Location for this request. */
  redirect(req: RouteRequest): { status: number; location: string };
}

/** Answer directly. */
export interface DirectResponseEntry {
  readonly kind: "direct_response";
  readonly status: number;
  /** Body bytes (empty when none). */
  readonly body: Uint8Array;
}

/** A matched route with everything the router and connection manager need. */
export type RouteEntry = (RouteActionEntry | RedirectEntry | DirectResponseEntry) & {
  /** Route name ("" when unnamed). */
  readonly name: string;
  /** Virtual host name. */
  readonly virtualHostName: string;
  /** How the route matches ("#0 prefix '/'"), for debug logs. */
  readonly matchDescription: string;
  /** Request header mutation (route + vhost + route config). */
  readonly requestHeaders: HeaderMutation;
  /** Response header mutation (route + vhost + route config). */
  readonly responseHeaders: HeaderMutation;
  /**
   * Per-filter config by filter name (typed_per_filter_config of route, virtual host and route config, most
   * specific wins); each value is a PerFilterConfig parsed by the filter's per-route schema.
   */
  readonly perFilterConfig: ReadonlyMap<string, unknown>;
  /** The route's decorator (Envoy uses it for the tracing span; kept for tracing), undefined when none. */
  readonly decorator?: RouteDecorator;
  /** The route's tracing overrides (envoy.config.route.v3.Tracing), undefined when none. */
  readonly tracing?: RouteTracing;
};

/** envoy.config.route.v3.Decorator. */
export interface RouteDecorator {
  /** The operation name (span name) of requests matching the route. */
  readonly operation: string;
  /** Whether the operation is propagated to the other party (x-envoy-decorator-operation); default true. */
  readonly propagate: boolean;
}

/** One typed_per_filter_config entry, parsed at config time by its HTTP filter's per-route schema. */
export interface PerFilterConfig {
  /** The parsed per-route message (the extension's perRouteSchema output). */
  readonly config: unknown;
  /**
   * Where it was declared: "<route config name>", then "/<virtual host name>", then "/<route index>"; the same in
   * every worker, so filters key shared state (token buckets) by it.
   */
  readonly location: string;
  /**
   * The entry of the same name one level up (virtual host for a route's, route configuration for a virtual
   * host's), if any: filters that merge every level, as Envoy's traversePerFilterConfig, follow it.
   */
  readonly parent?: PerFilterConfig;
}

/**
 * The perFilterConfig key of the deprecated `cors` fields (VirtualHost.cors, RouteAction.cors), parsed by the
 * CORS filter's policy schema; the CORS filter reads it when no level has a typed_per_filter_config for it.
 */
export const LEGACY_CORS_KEY = "envoy.config.route.v3.CorsPolicy";

/** The compiled table for one RouteConfiguration. */
export interface RouteTable {
  /** Route config name. */
  readonly name: string;
  /** The first matching route of the virtual host chosen by authority, or null (404 NR). */
  match(req: RouteRequest): RouteEntry | null;
}
