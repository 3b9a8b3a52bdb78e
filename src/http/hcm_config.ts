/** The per-snapshot state of one http_connection_manager: precomputed options, stats, routes and filters. */
import type { Clock } from "../common/clock.ts";
import type { TimerWheel } from "../common/timer_wheel.ts";
import type { AccessLogger } from "../access_log/types.ts";
import type { Counter, Gauge, Histogram, Scope } from "../stats/store.ts";
import type { ClusterManager } from "../upstream/types.ts";
import type { H2Options, H2Stats } from "./h2/mod.ts";
import type { HttpFilterFactory } from "./filter.ts";
import type { RouteConfigProvider } from "./routing/provider.ts";
import type { HcmTracing } from "../tracing/http_tracing.ts";
import type { ForwardClientCert, XfccBuilder } from "./xfcc.ts";

/** Envoy's `http.<stat_prefix>.` stats. */
export class HcmStats {
  readonly downstream_cx_total: Counter;
  readonly downstream_cx_active: Gauge;
  readonly downstream_cx_http1_total: Counter;
  readonly downstream_cx_http1_active: Gauge;
  readonly downstream_cx_http2_total: Counter;
  readonly downstream_cx_http2_active: Gauge;
  readonly downstream_cx_max_requests_reached: Counter;
  readonly downstream_cx_drain_close: Counter;
  readonly downstream_cx_destroy: Counter;
  readonly downstream_cx_length_ms: Histogram;
  readonly downstream_cx_rx_bytes_total: Counter;
  readonly downstream_cx_tx_bytes_total: Counter;
  readonly downstream_cx_protocol_error: Counter;
  readonly downstream_cx_idle_timeout: Counter;
  readonly downstream_cx_upgrades_total: Counter;
  readonly downstream_cx_upgrades_active: Gauge;
  readonly downstream_rq_total: Counter;
  readonly downstream_rq_http1_total: Counter;
  readonly downstream_rq_http2_total: Counter;
  readonly downstream_rq_max_duration_reached: Counter;
  readonly downstream_rq_active: Gauge;
  readonly downstream_rq_completed: Counter;
  readonly downstream_rq_xx: Counter[];
  readonly downstream_rq_time: Histogram;
  readonly downstream_rq_header_timeout: Counter;
  readonly downstream_rq_timeout: Counter;
  readonly downstream_rq_idle_timeout: Counter;
  readonly downstream_rq_rx_reset: Counter;
  readonly downstream_rq_tx_reset: Counter;
  readonly downstream_rq_non_relative_path: Counter;
  readonly downstream_rq_too_large: Counter;
  readonly no_route: Counter;
  readonly no_cluster: Counter;
  readonly rq_redirect: Counter;
  readonly rq_direct_response: Counter;
  readonly rq_total: Counter;

  constructor(s: Scope) {
    this.downstream_cx_total = s.counter("downstream_cx_total");
    this.downstream_cx_active = s.gauge("downstream_cx_active");
    this.downstream_cx_http1_total = s.counter("downstream_cx_http1_total");
    this.downstream_cx_http1_active = s.gauge("downstream_cx_http1_active");
    this.downstream_cx_http2_total = s.counter("downstream_cx_http2_total");
    this.downstream_cx_http2_active = s.gauge("downstream_cx_http2_active");
    this.downstream_cx_max_requests_reached = s.counter("downstream_cx_max_requests_reached");
    this.downstream_cx_drain_close = s.counter("downstream_cx_drain_close");
    this.downstream_cx_destroy = s.counter("downstream_cx_destroy");
    this.downstream_cx_length_ms = s.histogram("downstream_cx_length_ms");
    this.downstream_cx_rx_bytes_total = s.counter("downstream_cx_rx_bytes_total");
    this.downstream_cx_tx_bytes_total = s.counter("downstream_cx_tx_bytes_total");
    this.downstream_cx_protocol_error = s.counter("downstream_cx_protocol_error");
    this.downstream_cx_idle_timeout = s.counter("downstream_cx_idle_timeout");
    this.downstream_cx_upgrades_total = s.counter("downstream_cx_upgrades_total");
    this.downstream_cx_upgrades_active = s.gauge("downstream_cx_upgrades_active");
    this.downstream_rq_total = s.counter("downstream_rq_total");
    this.downstream_rq_http1_total = s.counter("downstream_rq_http1_total");
    this.downstream_rq_http2_total = s.counter("downstream_rq_http2_total");
    this.downstream_rq_max_duration_reached = s.counter("downstream_rq_max_duration_reached");
    this.downstream_rq_active = s.gauge("downstream_rq_active");
    this.downstream_rq_completed = s.counter("downstream_rq_completed");
    this.downstream_rq_xx = [1, 2, 3, 4, 5].map((n) => s.counter(`downstream_rq_${n}xx`));
    this.downstream_rq_time = s.histogram("downstream_rq_time");
    this.downstream_rq_header_timeout = s.counter("downstream_rq_header_timeout");
    this.downstream_rq_timeout = s.counter("downstream_rq_timeout");
    this.downstream_rq_idle_timeout = s.counter("downstream_rq_idle_timeout");
    this.downstream_rq_rx_reset = s.counter("downstream_rq_rx_reset");
    this.downstream_rq_tx_reset = s.counter("downstream_rq_tx_reset");
    this.downstream_rq_non_relative_path = s.counter("downstream_rq_non_relative_path");
    this.downstream_rq_too_large = s.counter("downstream_rq_too_large");
    this.no_route = s.counter("no_route");
    this.no_cluster = s.counter("no_cluster");
    this.rq_redirect = s.counter("rq_redirect");
    this.rq_direct_response = s.counter("rq_direct_response");
    this.rq_total = s.counter("rq_total");
  }
}

/** Options resolved from the HttpConnectionManager config with Envoy's defaults (and nuncio's, noted). */
export interface HcmOptions {
  statPrefix: string;
  /** codec_type: AUTO picks HTTP/2 from ALPN "h2" or the HTTP/2 preface, else HTTP/1.1. */
  codecType: "AUTO" | "HTTP1" | "HTTP2";
  /** http2_protocol_options for the downstream HTTP/2 codec (Envoy's defaults applied). */
  http2: H2Options;
  maxHeadersBytes: number;
  maxHeadersCount: number;
  /** request_headers_timeout; nuncio turns it on by default (10 s) where Envoy leaves it off. */
  requestHeadersTimeoutMs: number;
  /** common_http_protocol_options.idle_timeout (1 h). */
  idleTimeoutMs: number;
  /** stream_idle_timeout (5 min). */
  streamIdleTimeoutMs: number;
  /** request_timeout (off). */
  requestTimeoutMs: number;
  /** max_stream_duration (off). */
  maxStreamDurationMs: number;
  /** max_requests_per_connection (0 = unlimited). */
  maxRequestsPerConnection: number;
  useRemoteAddress: boolean;
  xffNumTrustedHops: number;
  skipXffAppend: boolean;
  via: string;
  /** add_user_agent: the local service cluster (--service-cluster) for user-agent and
   * x-envoy-downstream-service-cluster; undefined when off or when the node has no cluster. */
  userAgent: string | undefined;
  /** add_user_agent: the local node id (--service-node) for x-envoy-downstream-service-node ("" = none). */
  downstreamServiceNode: string;
  generateRequestId: boolean;
  preserveExternalRequestId: boolean;
  alwaysSetRequestIdInResponse: boolean;
  serverName: string;
  serverHeaderTransformation: "OVERWRITE" | "APPEND_IF_ABSENT" | "PASS_THROUGH";
  normalizePath: boolean;
  mergeSlashes: boolean;
  escapedSlashes: "KEEP_UNCHANGED" | "REJECT_REQUEST" | "UNESCAPE_AND_REDIRECT" | "UNESCAPE_AND_FORWARD";
  stripPort: "none" | "matching" | "any";
  /** The three path options above as one object for preparePath (built once). */
  pathOptions: {
    normalize: boolean;
    mergeSlashes: boolean;
    escapedSlashes: "KEEP_UNCHANGED" | "REJECT_REQUEST" | "UNESCAPE_AND_REDIRECT" | "UNESCAPE_AND_FORWARD";
  };
  /** Enabled upgrade types, lowercase. */
  upgrades: ReadonlySet<string>;
  acceptHttp10: boolean;
  /** proxy_100_continue: forward Expect upstream instead of answering 100 Continue locally. */
  proxy100Continue: boolean;
  defaultHostForHttp10: string;
  allowAbsoluteUrl: boolean;
  headersWithUnderscores: "ALLOW" | "REJECT_REQUEST" | "DROP_HEADER";
  /** Internal CIDR ranges; undefined = Envoy's classic default (RFC 1918, loopback, ULA). */
  internalCidrs: { address: string; prefixLen: number }[] | undefined;
  /** forward_client_cert_details (SANITIZE when absent). */
  forwardClientCert?: ForwardClientCert;
  /** Builds this hop's x-forwarded-client-cert element (APPEND_FORWARD and SANITIZE_SET only). */
  xfcc?: XfccBuilder;
}

/** Everything a connection of this HCM needs; immutable once built (RDS swaps the provider's table). */
export interface HcmConfig {
  readonly opts: HcmOptions;
  readonly stats: HcmStats;
  /** Where each stream reads the route table (`routeProvider.table`, once per stream): inline or RDS. */
  readonly routeProvider: RouteConfigProvider;
  readonly filters: readonly HttpFilterFactory[];
  readonly accessLogs: readonly AccessLogger[];
  readonly clock: Clock;
  readonly timers: TimerWheel;
  readonly clusterManager: ClusterManager;
  /** The `http2.*` codec stats shared by every HTTP/2 connection of this worker. */
  readonly h2Stats: H2Stats;
  /** The HCM's tracing (decision, spans); null when `tracing` is absent or has no provider. */
  readonly tracing: HcmTracing | null;
}
