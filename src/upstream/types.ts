/**
 * Contracts between the upstream subsystem (cluster manager, clusters, load balancers, pools) and its
 * users (router, tcp_proxy, admin). Implementations live beside this file.
 */
import type { MetadataMatchCriteria } from "../common/metadata_match.ts";
import type { Counter, Gauge, Histogram } from "../stats/store.ts";
import type { CircuitBreakers } from "./circuit_breaker.ts";
import type { H1ClientCodec } from "../http/h1/client.ts";
import type { H2ClientConnection } from "../http/h2/client.ts";
import type { ClusterConfig, ClusterLoadAssignment } from "./config.ts";

/** One upstream endpoint. */
export interface Host {
  /** IP address (or resolved address) to connect to. */
  readonly address: string;
  /** TCP port. */
  readonly port: number;
  /** "address:port", for logs and `%UPSTREAM_HOST%`. */
  readonly addressString: string;
  /** Hostname used for auto_host_rewrite (the DNS name for DNS clusters, else the address). */
  readonly hostname: string;
  /** Load-balancing weight (>= 1). */
  readonly weight: number;
  /** True unless health checking or outlier detection (later) marked it down. */
  healthy: boolean;
  /** Requests currently in flight to this host (LEAST_REQUEST reads it). */
  activeRequests: number;
  /** Connections currently open to this host. */
  activeConnections: number;
  /** Per-host counters shown by /clusters. */
  readonly stats: HostStats;
  /** Envoy's health flag bits (src/upstream/health/state.ts HealthFlag); absent means "healthy ? 0 : failed". */
  healthFlags?(): number;
}

/** Per-host counters (/clusters output). */
export interface HostStats {
  cx_total: number;
  cx_connect_fail: number;
  rq_total: number;
  rq_success: number;
  rq_error: number;
  rq_timeout: number;
}

/** Envoy's per-cluster stats (`cluster.<name>.`), created once per cluster. */
export interface ClusterStats {
  upstream_cx_total: Counter;
  upstream_cx_active: Gauge;
  upstream_cx_connect_fail: Counter;
  upstream_cx_connect_timeout: Counter;
  upstream_cx_destroy: Counter;
  upstream_cx_destroy_local: Counter;
  upstream_cx_destroy_remote: Counter;
  upstream_cx_rx_bytes_total: Counter;
  upstream_cx_tx_bytes_total: Counter;
  upstream_cx_none_healthy: Counter;
  upstream_cx_connect_ms: Histogram;
  upstream_cx_length_ms: Histogram;
  upstream_rq_total: Counter;
  upstream_rq_active: Gauge;
  upstream_rq_pending_total: Counter;
  upstream_rq_pending_active: Gauge;
  upstream_rq_completed: Counter;
  upstream_rq_timeout: Counter;
  upstream_rq_rx_reset: Counter;
  upstream_rq_tx_reset: Counter;
  upstream_rq_retry: Counter;
  upstream_rq_time: Histogram;
  membership_healthy: Gauge;
  membership_total: Gauge;
  lb_healthy_panic: Counter;
  /** Returns (creating on first use) `upstream_rq_<code>` and `upstream_rq_<N>xx`. */
  recordResponseCode(code: number): void;
}

/** Inputs a load balancer may use to pick a host. */
export interface LbContext {
  /** Hash from the route's hash_policy (RING_HASH / MAGLEV); undefined when the policy gave none. */
  hash?: bigint;
  /** Hosts to avoid (retries, later). */
  avoid?: readonly Host[];
  /** Subset load balancer criteria (route metadata_match and `envoy.lb` dynamic metadata); ignored without subsets. */
  metadataMatch?: MetadataMatchCriteria | null;
  /** The downstream connection's local address when a listener filter restored it (ORIGINAL_DST clusters). */
  originalDst?: string;
  /** The request's headers (ORIGINAL_DST `use_http_header`); absent for TCP. */
  requestHeaders?: { get(name: string): string | null | undefined };
}

/** A connection to an upstream host, owned by a pool while idle and by one request while in use. */
export interface UpstreamConnection {
  /** The socket. */
  readonly conn: Deno.Conn;
  /** The host it is connected to. */
  readonly host: Host;
  /** True when this connection served an earlier request. */
  readonly reused: boolean;
  /**
   * The HTTP/1.1 client codec of this connection: it owns the read buffer and the read the pool keeps pending
   * while the connection is idle (to notice a peer close), so a user reads through it.
   */
  readonly h1: H1ClientCodec;
  /**
   * Monotonic ms of the last byte its user read, set before `release` (0: unknown); the pool takes it as
   * the start of the idle period instead of reading the clock again.
   */
  lastRxMono: number;
  /** Returns the connection to its pool (`reusable`) or closes it. Call exactly once per acquire. */
  release(reusable: boolean): void;
}

/** Where an upstream error came from (Pingora's ErrorSource). */
export const ErrorSource = {
  /** The upstream host or the way to it: connect, reset, a malformed or late response. */
  Upstream: 0,
  /** The downstream client. */
  Downstream: 1,
  /** The proxy's own limits and state: circuit breakers, a cancelled acquire. */
  Internal: 2,
} as const;
/** One of ErrorSource. */
export type ErrorSource = typeof ErrorSource[keyof typeof ErrorSource];

/**
 * What went wrong with an upstream request, named as Envoy's reset reasons and response code details. A pool
 * reports the first five (ConnectFailure); attempts add the others.
 */
export type UpstreamErrorKind =
  /** max_requests, max_pending_requests or max_connections reached (UO); never retried. */
  | "overflow"
  /** The TCP (or TLS) connect failed (UF). */
  | "connect_failure"
  /** The connect timed out (UF). */
  | "connect_timeout"
  /** No host to connect to (UF). */
  | "no_healthy_host"
  /** The acquire was given up by its requester. */
  | "cancelled"
  /** The connection closed or failed before a full response (UC). */
  | "connection_termination"
  /** The response was malformed (UPE). */
  | "protocol_error"
  /** per_try_timeout fired (UT). */
  | "per_try_timeout"
  /** The upstream reset the HTTP/2 stream (UR). */
  | "remote_reset"
  /** The upstream refused the HTTP/2 stream (REFUSED_STREAM, or GOAWAY above its id): safe to retry (UR). */
  | "remote_refused_stream_reset";

/** The kinds a connection pool reports when it cannot give a connection or a stream. */
export type ConnectFailure = Extract<
  UpstreamErrorKind,
  "connect_failure" | "connect_timeout" | "overflow" | "no_healthy_host" | "cancelled"
>;

/**
 * One upstream failure, as Pingora's Error: its kind, where it came from, whether a retry policy may retry it
 * (retry_on then decides), and the transport detail (`%UPSTREAM_TRANSPORT_FAILURE_REASON%` for connect
 * failures). Made only on failure paths.
 */
export class UpstreamError {
  /** Where it came from. */
  readonly source: ErrorSource;
  /** False when no retry policy may retry it (overflow: retrying would only add load). */
  readonly retryable: boolean;

  /** An error of `kind`; `detail` defaults to the kind's name. */
  constructor(readonly kind: UpstreamErrorKind, readonly detail: string = kind) {
    this.source = kind === "overflow" || kind === "cancelled" ? ErrorSource.Internal : ErrorSource.Upstream;
    this.retryable = kind !== "overflow";
  }

  /** True when no connection was made (retry_on connect-failure and reset-before-request apply). */
  get beforeConnect(): boolean {
    const k = this.kind;
    return k === "connect_failure" || k === "connect_timeout" || k === "no_healthy_host" || k === "cancelled";
  }
}

/**
 * Options of an HTTP/1.1 acquire: the routing priority whose circuit breakers apply. The object's identity
 * also names a queued acquire for `cancelAcquire` (the router passes its per-attempt object).
 */
export interface AcquireOptions {
  /** 0 DEFAULT, 1 HIGH. */
  readonly priority: number;
}

/** Result of a connection acquire. */
export type AcquireResult =
  | { ok: true; connection: UpstreamConnection }
  | { ok: false; reason: ConnectFailure; detail: string };

/**
 * Asks an HTTP/2 pool for a stream (the router's HTTP/2 attempt implements it). Exactly one callback follows
 * `newH2Stream` (maybe synchronously) unless the request is cancelled with `cancelH2Stream`.
 */
export interface H2StreamRequester extends AcquireOptions {
  /** A connection with a free stream slot: open the stream now, synchronously, with `h2.request`. */
  onPoolReady(h2: H2ClientConnection, reused: boolean): void;
  /**
   * No stream: `reason` says why; "http1" means ALPN chose HTTP/1.1 for this host (an auto_config cluster):
   * acquire an HTTP/1.1 connection instead.
   */
  onPoolFailure(reason: ConnectFailure | "http1", detail: string): void;
}

/** A cluster as seen by its users. */
export interface Cluster {
  /** Cluster name. */
  readonly name: string;
  /** Stats under `cluster.<name>.`. */
  readonly stats: ClusterStats;
  /** connect_timeout in ms (default 5000). */
  readonly connectTimeoutMs: number;
  /** per_connection_buffer_limit_bytes (default 1 MiB). */
  readonly perConnectionBufferLimitBytes: number;
  /** All hosts currently known (any health). */
  hosts(): readonly Host[];
  /** Picks a host with the cluster's LB policy; null when none is usable. */
  chooseHost(ctx: LbContext): Host | null;
  /** ORIGINAL_DST: hosts come from each request's original destination (LbContext.originalDst, requestHeaders). */
  readonly connectsToOriginalDst?: boolean;
  /**
   * A pooled HTTP/1.1 keep-alive connection to `host` (reuses an idle one when possible). Waits as a pending
   * request when max_connections is reached; fails with "overflow" when max_pending_requests is.
   */
  acquireHttp1(host: Host, opts?: AcquireOptions): Promise<AcquireResult>;
  /** An idle HTTP/1.1 connection to `host` taken without waiting (the common case); null: call acquireHttp1. */
  takeIdleHttp1(host: Host): AcquireResult | null;
  /**
   * The protocol of routed HTTP requests (UpstreamHttpProtocol of src/upstream/protocol_options.ts: 0 HTTP/1.1,
   * 1 HTTP/2, 2 ALPN auto, 3 the downstream's); absent means HTTP/1.1.
   */
  readonly httpProtocol?: number;
  /** Asks for an HTTP/2 stream to `host` (HTTP/2 capable clusters); the answer goes to `req`. */
  newH2Stream?(host: Host, req: H2StreamRequester): void;
  /** Gives up a queued `newH2Stream` (no callback follows); no-op otherwise. */
  cancelH2Stream?(req: H2StreamRequester): void;
  /** Gives up a queued acquire made with `opts` (it resolves with reason "cancelled"); no-op otherwise. */
  cancelAcquire(opts: AcquireOptions): void;
  /** Circuit breakers of this cluster (per priority, shared by every worker). */
  readonly circuitBreakers: CircuitBreakers;
  /** A fresh TCP connection to `host`, not pooled (tcp_proxy, upgrades). Counts in cx stats until closed. */
  connectTcp(host: Host): Promise<AcquireResult>;
  /** Records that a connection from `connectTcp` closed (for cx_active / cx_length). */
  tcpClosed(conn: UpstreamConnection, closedLocally: boolean): void;
  /**
   * Reports the result of one request attempt on `host` to outlier detection (called by the router once per
   * attempt). `code` is the upstream HTTP status, or the status Envoy maps a local-origin failure to when
   * split_external_local_origin_errors is off: 503 for connect failure and reset, 504 for timeout.
   */
  recordOutcome(host: Host, code: number): void;
  /**
   * The upstream answered with `x-envoy-immediate-health-check-fail` (router, on response headers): with
   * active health checks configured the host fails them at once, until checks pass again.
   */
  reportImmediateHealthCheckFail?(host: Host): void;
}

/** The set of clusters of one config snapshot on one worker. */
export interface ClusterManager {
  /** Finds a cluster by name. */
  get(name: string): Cluster | undefined;
  /** All clusters. */
  all(): readonly Cluster[];
  /** Starts DNS resolution etc.; resolves when every cluster finished its first resolution (warming). */
  initialize(): Promise<void>;
  /** Stops timers and closes idle pooled connections. */
  close(): void;
}

/** What `addOrUpdate` did. */
export type ClusterUpdateResult = "added" | "updated" | "unchanged";

/**
 * A cluster manager whose clusters change at run time (CDS and EDS through the xDS layer). A new or changed
 * cluster warms before it serves: until then `get` returns the previous version (or nothing for a new name).
 */
export interface DynamicClusterManager extends ClusterManager {
  /**
   * Adds a cluster or replaces the one of the same name whole (new pools, hosts and LB; health state is kept
   * for hosts that stay while the health config is unchanged). "unchanged" when `config` deep-equals the newest
   * version. The new version warms (first resolution and health checks; an EDS cluster: its first endpoints),
   * then replaces the old one, which retires: requests in flight on it finish, idle connections close.
   */
  addOrUpdate(config: ClusterConfig): ClusterUpdateResult;
  /** Removes a cluster (active and warming versions retire as in addOrUpdate); false when unknown. */
  remove(name: string): boolean;
  /**
   * Applies an EDS ClusterLoadAssignment to the EDS cluster `name` (every version of it) and counts
   * `update_attempt`/`update_success`; its first endpoints warm it. False when unknown or not EDS.
   */
  setEndpoints(name: string, cla: ClusterLoadAssignment): boolean;
  /**
   * Counts an EDS update of `name` that did not change its hosts: "rejected" (invalid: `update_rejected`),
   * "empty" (no assignment in the response: `update_empty`, membership unchanged, warms the cluster as Envoy) or
   * "unchanged" (the same assignment again: `update_success` and `update_no_rebuild`). All count
   * `update_attempt`. False when unknown or not EDS.
   */
  noteEndpointUpdate(name: string, outcome: "rejected" | "empty" | "unchanged"): boolean;
  /** Ends warming of `name` now (the xDS layer's initial_fetch_timeout); false when unknown or already warm. */
  markWarm(name: string): boolean;
  /** Resolves true once the newest version of `name` is warm (at once if it is), false when it is unknown or removed. */
  whenWarm(name: string): Promise<boolean>;
  /** True while `name` has a version that is not warm yet. */
  isWarming(name: string): boolean;
  /** Every cluster name with an active or warming version. */
  names(): string[];
  /** The newest config of `name` (warming or active), for config_dump. */
  configOf(name: string): ClusterConfig | undefined;
  /** The last EDS assignment applied to `name` (config_dump ?include_eds). */
  endpointsOf(name: string): ClusterLoadAssignment | undefined;
}
