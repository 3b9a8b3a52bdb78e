/**
 * One upstream cluster: its membership, the load balancer over the usable hosts (healthy ones, or all
 * in panic mode as Envoy), and its connection pool.
 */
import type { Clock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { type BreakerSlots, CircuitBreakers, thresholdsFromConfig } from "./circuit_breaker.ts";
import type { Logger } from "../common/log.ts";
import type { Counter, Scope } from "../stats/store.ts";
import type { ClusterConfig } from "./config.ts";
import { ClusterHealth } from "./health/cluster_health.ts";
import type { ClusterHealthState } from "./health/state.ts";
import { createClusterStats, type HostImpl } from "./host.ts";
import { lbBuilder } from "./lb/factory.ts";
import type { LoadBalancer, Random } from "./lb/lb.ts";
import { PriorityLb, type PriorityLbOptions } from "./lb/priority.ts";
import { runtime } from "../runtime/current.ts";
import type { RuntimeSnapshot } from "../runtime/snapshot.ts";
import { type ClusterLb, createSubsetStats, type SubsetLb, SubsetLbFactory } from "./lb/subset.ts";
import {
  createZoneStats,
  type LocalClusterView,
  type LocalHostSet,
  type ZoneAwareConfig,
} from "./lb/zone_aware.ts";
import { type ConnectFn, ConnPool } from "./pool.ts";
import { H2Pool } from "./h2_pool.ts";
import { protocolSettings, UpstreamHttpProtocol } from "./protocol_options.ts";
import { h2StatsFrom } from "../http/h2/stats.ts";
import { createTlsConnect } from "../transport/tls_upstream.ts";
import { keepAliveConnect, wantsKeepAlive } from "./tcp_keepalive.ts";
import type {
  AcquireOptions,
  AcquireResult,
  Cluster,
  ClusterStats,
  H2StreamRequester,
  Host,
  LbContext,
  UpstreamConnection,
} from "./types.ts";

/** What a cluster needs from its environment. */
export interface ClusterDeps {
  /** Scope already prefixed `cluster.<name>.`. */
  scope: Scope;
  /** Time source. */
  clock: Clock;
  /** Logger. */
  log?: Logger;
  /** Socket opener for the pool (default Deno.connect). */
  connect?: ConnectFn;
  /** Random source for LBs (default Math.random). */
  random?: Random;
  /** Memory shared by every worker (circuit breaker counts); a private arena when absent. */
  shared?: SharedArena;
  /**
   * True on the thread that decides health (runs active checks and outlier sweeps, owns membership
   * gauges): the main thread. Default true (single-threaded use and tests).
   */
  healthOwner?: boolean;
  /** Breaker counts shared with other generations of this cluster (cluster manager); own ones when absent. */
  breakerSlots?: BreakerSlots;
  /** Health state shared with other generations of this cluster (cluster manager); own one when absent. */
  healthState?: ClusterHealthState;
  /**
   * The local cluster (cluster_manager.local_cluster_name) and this proxy's locality: with them, ROUND_ROBIN,
   * LEAST_REQUEST and RANDOM clusters route by zone (Envoy's zone aware routing).
   */
  localCluster?: LocalClusterView;
}

/** Source of LocalHostSet versions: unique across clusters and their generations. */
let hostSetVersions = 0;

/** Extra picks tried when the LB returns a host listed in `ctx.avoid`. */
const AVOID_ATTEMPTS = 3;

/** A cluster; membership is set by its discovery (static list or DNS) through `setHosts`. */
export class ClusterImpl implements Cluster {
  readonly name: string;
  readonly stats: ClusterStats;
  readonly connectTimeoutMs: number;
  readonly perConnectionBufferLimitBytes: number;
  readonly config: ClusterConfig;
  readonly circuitBreakers: CircuitBreakers;
  /** Active health checking and outlier detection state (shared slots, checker, detector). */
  readonly health: ClusterHealth;
  /** DNS refresh counters (`update_attempt|success|failure|empty`). */
  readonly updateStats: { attempt: Counter; success: Counter; failure: Counter; empty: Counter };
  readonly #build: (hosts: readonly Host[]) => LoadBalancer;
  readonly #pool: ConnPool;
  readonly #h2: H2Pool | null = null;
  /** UpstreamHttpProtocol of routed requests (auto without TLS is HTTP/1.1, as Envoy). */
  readonly httpProtocol: number;
  readonly #panicThreshold: number;
  readonly #localityWeighted: boolean;
  readonly #random: Random;
  #overprovisioning: number;
  #hosts: HostImpl[] = [];
  #lb: ClusterLb | null = null;
  /** lb_subset_config compiled, with its stats; null when subsetting is off. */
  readonly #subsets: SubsetLbFactory | null = null;
  #panic = false;
  #seenGen = -1;
  /** The runtime snapshot the LB was built with (upstream.healthy_panic_threshold, zone routing keys). */
  #seenRuntime: RuntimeSnapshot | null = null;
  #retired = false;
  /** Zone aware routing settings, null when it does not apply (no local cluster, or a hash policy). */
  readonly #zone: ZoneAwareConfig | null = null;
  readonly #localView: LocalClusterView | null = null;
  /** zone_aware_lb_config.fail_traffic_on_panic (applies with or without a local cluster, as Envoy). */
  readonly #failOnPanic: boolean;
  /** Version of the local cluster's hosts the LB was built with (-1: none). */
  #localVersion = -1;
  /** Version of this cluster's membership and health (changes at each healthChanged). */
  #version = 0;
  #localSet: LocalHostSet | null = null;
  #picker: { choose(ctx: LbContext): Host | null } | null = null;

  constructor(config: ClusterConfig, deps: ClusterDeps) {
    this.config = config;
    this.name = config.name;
    this.stats = createClusterStats(deps.scope, deps.healthOwner ?? true);
    this.updateStats = {
      attempt: deps.scope.counter("update_attempt"),
      success: deps.scope.counter("update_success"),
      failure: deps.scope.counter("update_failure"),
      empty: deps.scope.counter("update_empty"),
    };
    this.connectTimeoutMs = config.connect_timeout;
    this.perConnectionBufferLimitBytes = config.per_connection_buffer_limit_bytes;
    this.#panicThreshold = config.common_lb_config?.healthy_panic_threshold?.value ?? 50;
    this.#localityWeighted = config.common_lb_config?.locality_weighted_lb_config !== undefined;
    this.#overprovisioning = config.load_assignment?.policy?.overprovisioning_factor ?? 140;
    this.#random = deps.random ?? Math.random;
    this.#build = lbBuilder(config, this.#random);
    if (SubsetLbFactory.enabled(config.lb_subset_config)) {
      this.#subsets = new SubsetLbFactory(
        config.lb_subset_config,
        createSubsetStats(deps.scope, deps.healthOwner ?? true),
      );
    }
    this.#failOnPanic = config.common_lb_config?.zone_aware_lb_config?.fail_traffic_on_panic ?? false;
    const p = config.lb_policy;
    if (deps.localCluster && (p === "ROUND_ROBIN" || p === "LEAST_REQUEST" || p === "RANDOM")) {
      const za = config.common_lb_config?.zone_aware_lb_config;
      this.#localView = deps.localCluster;
      this.#zone = {
        localLocality: deps.localCluster.locality,
        routingEnabled: za?.routing_enabled !== undefined ? Math.round(za.routing_enabled.value) : 100,
        minClusterSize: za?.min_cluster_size ?? 6,
        failTrafficOnPanic: za?.fail_traffic_on_panic ?? false,
        stats: createZoneStats(deps.scope),
      };
    }
    const arena = deps.shared ?? SharedArena.create({ bytes: 64 * 1024, capacity: 64 });
    this.circuitBreakers = new CircuitBreakers(
      config.name,
      thresholdsFromConfig(config.circuit_breakers?.thresholds),
      arena,
      deps.scope,
      deps.breakerSlots,
    );
    const connect = deps.connect ?? upstreamConnect(config, [], deps.scope);
    this.health = new ClusterHealth(config, {
      connect: connect ? (h) => connect({ hostname: h.address, port: h.port }) : undefined,
      arena: deps.shared ?? SharedArena.create({ bytes: 256 * 1024, capacity: 256 }),
      scope: deps.scope,
      clock: deps.clock,
      random: deps.random ?? Math.random,
      owner: deps.healthOwner ?? true,
      hosts: () => this.#hosts,
      onChange: () => this.healthChanged(),
      log: deps.log,
      state: deps.healthState,
    });
    const ps = protocolSettings(config);
    const http = ps.common;
    let protocol: number = ps.protocol;
    if (protocol === UpstreamHttpProtocol.Auto && config.transport_socket?.kind !== "tls") {
      protocol = UpstreamHttpProtocol.Http1;
    }
    this.httpProtocol = protocol;
    const auto = protocol === UpstreamHttpProtocol.Auto;
    const idleTimeoutMs = http?.idle_timeout ?? 3_600_000;
    const maxRequestsPerConnection = http?.max_requests_per_connection ??
      config.max_requests_per_connection ?? 0;
    this.#pool = new ConnPool({
      breakers: this.circuitBreakers,
      stats: this.stats,
      clock: deps.clock,
      connectTimeoutMs: config.connect_timeout,
      idleTimeoutMs,
      maxRequestsPerConnection,
      connect: auto && !deps.connect ? upstreamConnect(config, ["http/1.1"], deps.scope) : connect,
      log: deps.log,
    });
    if (protocol !== UpstreamHttpProtocol.Http1) {
      const scope = deps.scope;
      this.#h2 = new H2Pool({
        breakers: this.circuitBreakers,
        stats: this.stats,
        clock: deps.clock,
        connectTimeoutMs: config.connect_timeout,
        idleTimeoutMs,
        maxRequestsPerConnection,
        h2: {
          ...ps.h2,
          initial_stream_window_size: ps.h2.initial_stream_window_size ?? UPSTREAM_STREAM_WINDOW,
        },
        h2Stats: h2StatsFrom((n, gauge) => gauge ? scope.gauge(`http2.${n}`) : scope.counter(`http2.${n}`)),
        connect: deps.connect ?? upstreamConnect(config, auto ? ["h2", "http/1.1"] : ["h2"], deps.scope),
        http1: auto ? this.#pool : undefined,
        log: deps.log,
      });
    }
    this.stats.membership_total.set(0);
    this.stats.membership_healthy.set(0);
  }

  /** The pool (tests and admin). */
  get pool(): ConnPool {
    return this.#pool;
  }

  /**
   * True while a priority level that receives traffic has fewer than healthy_panic_threshold percent of usable
   * hosts (its picks use all of its hosts).
   */
  get panic(): boolean {
    return this.#panic;
  }

  hosts(): readonly Host[] {
    return this.#hosts;
  }

  /**
   * The priority loads and LB of the current membership (tests, admin); null before the first setHosts and for
   * clusters with subsets.
   */
  get priorityLb(): PriorityLb | null {
    return this.#lb instanceof PriorityLb ? this.#lb : null;
  }

  /** The subset load balancer of the current membership (tests, admin); null without lb_subset_config. */
  get subsetLb(): SubsetLb | null {
    return this.#subsets === null ? null : this.#lb as SubsetLb | null;
  }

  /**
   * Replaces the membership (discovery); hosts no longer present lose their pooled connections.
   * `overprovisioning` (percent) comes with an EDS assignment's policy; unchanged when absent.
   */
  setHosts(hosts: HostImpl[], overprovisioning?: number): void {
    if (overprovisioning !== undefined) this.#overprovisioning = overprovisioning;
    hosts = this.health.membership(this.#hosts, hosts);
    const keep = new Set(hosts);
    for (const h of this.#hosts) if (!keep.has(h)) this.#removeHost(h);
    this.#hosts = hosts;
    this.healthChanged();
  }

  #removeHost(h: Host): void {
    this.#pool.removeHost(h);
    this.#h2?.removeHost(h);
  }

  /**
   * This cluster's priority 0 hosts as a local cluster (zone aware routing of the others reads them per pick);
   * re-reads shared health first, so its version moves with health as well as membership.
   */
  localHostSet(): LocalHostSet {
    if (this.health.generation() !== this.#seenGen) this.healthChanged();
    return this.#localSet ??= { version: this.#version, hosts: this.#hosts.filter((h) => h.priority === 0) };
  }

  /** Rebuilds the LB and membership gauges; call after flipping any host's `healthy`. */
  healthChanged(): void {
    this.#seenGen = this.health.generation();
    const pruned = this.health.pruneRemoved(this.#hosts);
    if (pruned !== this.#hosts) {
      const keep = new Set(pruned);
      for (const h of this.#hosts) if (!keep.has(h)) this.#removeHost(h);
      this.#hosts = pruned;
    }
    this.#version = ++hostSetVersions;
    this.#localSet = null;
    // after the version moved: the local cluster may be this one
    const local = this.#localView?.hosts() ?? null;
    this.#localVersion = local?.version ?? -1;
    let healthy = 0;
    for (const h of this.#hosts) if (h.healthy && !h.degraded) healthy++;
    this.stats.membership_total.set(this.#hosts.length);
    this.stats.membership_healthy.set(healthy);
    // Envoy's runtime keys, read when the LB is (re)built: the panic threshold of every cluster and zone routing's
    // minimum cluster size (upstream.zone_routing.enabled is read per pick)
    const rt = this.#seenRuntime = runtime();
    const zone = this.#zone === null ? null : {
      ...this.#zone,
      minClusterSize: rt.getInteger("upstream.zone_routing.min_cluster_size", this.#zone.minClusterSize),
    };
    const opts: PriorityLbOptions = {
      build: this.#build,
      overprovisioning: this.#overprovisioning,
      panicThreshold: Math.min(100, rt.getInteger("upstream.healthy_panic_threshold", this.#panicThreshold)),
      localityWeighted: this.#localityWeighted,
      random: this.#random,
      zoneAware: zone === null ? null : { config: zone, local: local?.hosts ?? null },
      failTrafficOnPanic: this.#failOnPanic,
    };
    // subsets re-read host metadata here too (an EDS update may change only that)
    const lb = this.#lb = this.#subsets !== null
      ? this.#subsets.build(this.#hosts, opts)
      : new PriorityLb(this.#hosts, opts);
    this.#panic = lb.panic;
  }

  /** ORIGINAL_DST: the cluster's own host picker (upstream/original_dst.ts) replaces the LB. */
  useHostPicker(picker: { choose(ctx: LbContext): Host | null }): void {
    this.#picker = picker;
  }

  get connectsToOriginalDst(): boolean {
    return this.#picker !== null;
  }

  chooseHost(ctx: LbContext): Host | null {
    const picker = this.#picker;
    if (picker !== null) {
      const h = picker.choose(ctx);
      if (h === null) this.stats.upstream_cx_none_healthy.inc();
      return h;
    }
    const view = this.#localView;
    if (
      this.health.generation() !== this.#seenGen || this.#lb === null || runtime() !== this.#seenRuntime ||
      (view !== null && (view.hosts()?.version ?? -1) !== this.#localVersion)
    ) this.healthChanged();
    let lb = this.#lb!;
    let h = lb.choose(ctx, 0);
    if (h !== null && !h.healthy && !lb.lastPanic && !lb.lastAnyHealth) {
      // Health flipped without healthChanged(): resync once.
      this.healthChanged();
      lb = this.#lb!;
      h = lb.choose(ctx, 0);
    }
    if (h === null) {
      // fail_traffic_on_panic: Envoy counts the panic, then finds no host
      if (lb.lastPanic && this.#failOnPanic) this.stats.lb_healthy_panic.inc();
      this.stats.upstream_cx_none_healthy.inc();
      return null;
    }
    const panic = lb.lastPanic;
    const avoid = ctx.avoid;
    if (avoid !== undefined && avoid.length > 0) {
      for (let attempt = 1; attempt <= AVOID_ATTEMPTS && avoid.includes(h!); attempt++) {
        h = lb.choose(ctx, attempt) ?? h;
      }
    }
    if (panic) this.stats.lb_healthy_panic.inc();
    return h;
  }

  /** An idle HTTP/1.1 connection to `host` without waiting (the common case); null: use acquireHttp1. */
  takeIdleHttp1(host: Host): AcquireResult | null {
    const r = this.#pool.takeIdleHttp1(host);
    if (r !== null) this.health.trafficSeen();
    return r;
  }

  acquireHttp1(host: Host, opts?: AcquireOptions): Promise<AcquireResult> {
    this.health.trafficSeen();
    return this.#pool.acquireHttp1(host, opts);
  }

  newH2Stream(host: Host, req: H2StreamRequester): void {
    this.health.trafficSeen();
    if (this.#h2 !== null) this.#h2.newStream(host, req);
    else req.onPoolFailure("http1", "");
  }

  cancelH2Stream(req: H2StreamRequester): void {
    this.#h2?.cancel(req);
  }

  /** The HTTP/2 pool (tests), null for HTTP/1.1-only clusters. */
  get h2Pool(): H2Pool | null {
    return this.#h2;
  }

  cancelAcquire(opts: AcquireOptions): void {
    this.#pool.cancelAcquire(opts);
  }

  connectTcp(host: Host): Promise<AcquireResult> {
    this.health.trafficSeen();
    return this.#pool.connectTcp(host);
  }

  tcpClosed(conn: UpstreamConnection, closedLocally: boolean): void {
    this.#pool.tcpClosed(conn, closedLocally);
  }

  recordOutcome(host: Host, code: number): void {
    this.health.record(host as HostImpl, code);
  }

  reportImmediateHealthCheckFail(host: Host): void {
    this.health.immediateFail(host as HostImpl);
  }

  /** Starts active checks and the outlier sweep (health owner); resolves after every host's first check. */
  initializeHealth(): Promise<void> {
    return this.health.initialize();
  }

  /** Re-reads shared health into this thread's LB and gauges (owner: before /stats). */
  syncHealth(): void {
    if (this.health.generation() !== this.#seenGen) this.healthChanged();
    this.health.syncGauges();
  }

  /** True once `retire` or `close` ran. */
  get retired(): boolean {
    return this.#retired;
  }

  /**
   * Takes the cluster out of service after a replacement or removal (cluster manager): health checks and
   * outlier sweeps stop, hosts give back their shared slots, idle pooled connections close and busy ones close
   * when their request finishes (HTTP/2 connections drain). Requests in flight keep working. Idempotent.
   */
  retire(): void {
    if (this.#retired) return;
    this.#retired = true;
    for (const h of this.#hosts) {
      this.health.releaseHost(h);
      this.#removeHost(h);
    }
    this.#pool.retire();
    this.health.close();
    this.#subsets?.close();
  }

  /** Closes idle connections and stops the pool's timer, health checks and outlier sweeps. */
  close(): void {
    this.#retired = true;
    for (const h of this.#hosts) this.health.releaseHost(h);
    this.health.close();
    this.#subsets?.close();
    this.#pool.close();
    this.#h2?.close();
  }
}

/** Health from an lb_endpoint's health_status (UNKNOWN and HEALTHY count as healthy). */
export function healthyFromStatus(status: string): boolean {
  return status === "UNKNOWN" || status === "HEALTHY";
}

/**
 * nuncio's default per-stream receive window of upstream HTTP/2 connections (1 MiB, where Envoy's is 256 MiB):
 * a response body waiting for a slow downstream holds at most this much memory per stream.
 */
const UPSTREAM_STREAM_WINDOW = 1024 * 1024;

/**
 * A pool's socket opener for the cluster's transport_socket: TLS when configured (offering `alpn` unless the
 * context configures its own alpn_protocols), else plain TCP. Handshakes count `ssl.*` in the cluster's `scope`.
 */
function upstreamConnect(config: ClusterConfig, alpn: string[] = [], scope?: Scope): ConnectFn | undefined {
  // upstream_connection_options.tcp_keepalive: SO_KEEPALIVE and its timings on the TCP socket (TLS runs over it)
  const o = config.upstream_connection_options;
  const tcp = wantsKeepAlive(o) ? keepAliveConnect(o) : undefined;
  const ts = config.transport_socket;
  if (ts?.kind !== "tls") return tcp;
  const ctx = ts.config.common_tls_context;
  if (alpn.length === 0 || ctx.alpn_protocols.length > 0) {
    return createTlsConnect(ts.config, tcp, undefined, { scope });
  }
  const withAlpn = { ...ts.config, common_tls_context: { ...ctx, alpn_protocols: alpn } };
  return createTlsConnect(withAlpn, tcp, undefined, { scope });
}
