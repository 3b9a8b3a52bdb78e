/**
 * One event loop's data plane built from a bootstrap snapshot: its stats store, cluster manager and
 * listeners. The main thread runs one when --concurrency is 1; otherwise each worker runs one.
 */
import { systemClock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { Logger } from "../common/log.ts";
import { TimerWheel } from "../common/timer_wheel.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import type { FilterChainConfig, ListenerConfig, ListenerFilterConfig } from "../config/listener.ts";
import type { RouteConfiguration } from "../http/routing/config.ts";
import { RouteConfigRegistry } from "../http/routing/provider.ts";
import { type FilterChainSpec, Listener } from "../listener/listener.ts";
import { ProxyProtocolFilter } from "../listener/proxy_protocol.ts";
import {
  type AddOrUpdateOptions,
  type BuiltListener,
  ListenerManager,
  type ListenerUpdateResult,
} from "../listener/listener_manager.ts";
import { DownstreamTls, tlsWarmingFactory } from "../transport/tls_downstream.ts";
import type { FactoryContext, NetworkFilterCreate, NetworkFilterFactory } from "../network/filter.ts";
import { registry } from "../registry/registry.ts";
import { StatsStore } from "../stats/store.ts";
import { configureStats, type StatsSetup } from "../stats/flush.ts";
import { createClusterManager } from "../upstream/cluster_manager.ts";
import { clusterStatusOf } from "../admin/clusters.ts";
import type { ClusterStatus } from "../admin/types.ts";
import { hostSuccessRate } from "../upstream/host.ts";
import type { ClusterManager } from "../upstream/types.ts";
import type { DrainOptions } from "../listener/listener_manager.ts";

const log = new Logger("main");

/** A listener's reported address. */
export interface ListenerAddress {
  name: string;
  address: string;
  port: number;
}

/** Envoy's listener stat prefix for an address ("0.0.0.0_10000"). */
export function listenerStatName(address: string, port: number): string {
  return `${address}_${port}`;
}

/** `listener "x" cannot bind 127.0.0.1:8080: address already in use`: a bind failure as one line. */
export function bindErrorMessage(what: string, hostname: string, port: number, err: unknown): string {
  const addr = hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
  let why: string;
  if (err instanceof Deno.errors.AddrInUse) why = "address already in use";
  else if (err instanceof Deno.errors.AddrNotAvailable) why = "address not available";
  else if (err instanceof Deno.errors.PermissionDenied) why = "permission denied";
  else why = (err as Error).message ?? String(err);
  return `${what} cannot bind ${addr}: ${why}`;
}

/** Options of a DataPlane. */
export interface DataPlaneOptions {
  /** The process-wide arena (the main thread creates it and hands it to every worker); fresh when omitted. */
  shared?: SharedArena;
  /** False in workers: the main thread runs health checks and outlier sweeps and owns membership gauges. */
  healthOwner?: boolean;
  /** How long a listener replaced or removed by LDS drains (Envoy's --drain-time-s: 600 s). */
  drainTimeMs?: number;
}

/** Envoy's default drain time for listeners an LDS update replaces or removes. */
export const DEFAULT_LDS_DRAIN_TIME_MS = 600_000;

/** Listeners, clusters and stats of one event loop. */
export class DataPlane {
  readonly stats = new StatsStore();
  readonly clock = systemClock;
  readonly timers = new TimerWheel(systemClock);
  readonly clusters: ClusterManager;
  /** RDS route configs by route_config_name, shared by every HCM naming one. */
  readonly routes = new RouteConfigRegistry({ clock: systemClock });
  /** Static and dynamic (LDS) listeners. */
  readonly listenerManager: ListenerManager;
  readonly shared: SharedArena;
  /** stats_config applied to `stats`, and the stats sinks' histogram writers of this event loop. */
  readonly #statsSetup: StatsSetup;
  readonly #node: { id: string; cluster: string; zone: string };
  /** The bootstrap's `tracing.http` provider: the default of HCMs whose tracing names none. */
  readonly #tracingProvider: FactoryContext["tracingProvider"];

  /**
   * Builds (does not start) the data plane. `shared` is the process-wide arena (the main thread creates it and
   * hands it to every worker); a fresh one is made when omitted (tests, single-threaded use). `healthOwner`
   * is false in workers: the main thread runs health checks and outlier sweeps and owns membership gauges.
   */
  /** Names of the static (bootstrap) listeners and clusters, which xDS may not change; a reload updates them. */
  readonly statics: { listeners: Set<string>; clusters: Set<string> };

  constructor(
    readonly bootstrap: Bootstrap,
    readonly workerIndex = 0,
    shared: SharedArena = SharedArena.create(),
    healthOwner = true,
    opts: Omit<DataPlaneOptions, "shared" | "healthOwner"> = {},
  ) {
    this.shared = shared;
    // stats_config and the sinks' histogram writers, before any stat is declared
    this.#statsSetup = configureStats(this.stats, bootstrap, () => this.clusters);
    this.statics = {
      listeners: new Set(bootstrap.static_resources.listeners.map((l) => l.name)),
      clusters: new Set(bootstrap.static_resources.clusters.map((c) => c.name)),
    };
    this.clusters = createClusterManager(bootstrap.static_resources.clusters, {
      stats: this.stats,
      clock: this.clock,
      log: new Logger("upstream"),
      shared: this.shared,
      healthOwner,
      localClusterName: bootstrap.cluster_manager?.local_cluster_name,
      locality: bootstrap.node?.locality,
    });
    this.#node = {
      id: bootstrap.node?.id ?? "",
      cluster: bootstrap.node?.cluster ?? "",
      zone: bootstrap.node?.locality?.zone ?? "",
    };
    this.#tracingProvider = bootstrap.tracing?.http;
    this.listenerManager = new ListenerManager({
      // listener_manager.* describe the server, not a worker: every worker applies the same updates, so the
      // first one reports them and the others count into a store nobody merges (the sum would be N times)
      stats: workerIndex === 0 ? this.stats : new StatsStore(),
      build: (l) => this.#build(l),
      drainTimeMs: opts.drainTimeMs ?? DEFAULT_LDS_DRAIN_TIME_MS,
      now: () => this.clock.now(),
    });
    for (const l of bootstrap.static_resources.listeners) this.listenerManager.addStatic(l);
  }

  /** Every listener version and its state (active, warming, draining), for /config_dump. */
  listenerStates(): { name: string; version: string; state: "active" | "warming" | "draining" }[] {
    return this.listenerManager.list().map((l) => ({
      name: l.listener.name,
      version: l.listener.version,
      state: l.state,
    }));
  }

  /** Listeners taking connections (static and dynamic). */
  get listeners(): Listener[] {
    return this.listenerManager.activeListeners();
  }

  /**
   * The active listener use_original_dst hands a connection for `addr` to: the one bound to that address, else
   * the one on the wildcard address of its family and port (Envoy's order).
   */
  #listenerAt(addr: Deno.NetAddr): Listener | undefined {
    let wildcard: Listener | undefined;
    const any = addr.hostname.includes(":") ? "::" : "0.0.0.0";
    for (const l of this.listenerManager.activeListeners()) {
      if (l.spec.port !== addr.port) continue;
      if (l.spec.hostname === addr.hostname) return l;
      if (l.spec.hostname === any) wildcard ??= l;
    }
    return wildcard;
  }

  /** Builds a listener and its filter factories (one list and TLS context per filter chain). */
  #build(l: ListenerConfig): BuiltListener {
    const sa = l.address.socket_address;
    const scope = this.stats.scope(`listener.${listenerStatName(sa.address, sa.port_value)}`);
    const ctx: FactoryContext = {
      stats: this.stats,
      listenerScope: scope,
      clusterManager: this.clusters,
      clock: this.clock,
      timers: this.timers,
      registry,
      log: new Logger("filter", `[${l.name}] `),
      node: this.#node,
      shared: this.shared,
      routes: this.routes,
      tracingProvider: this.#tracingProvider,
      trafficDirection: l.traffic_direction,
    };
    const all: NetworkFilterFactory[] = [];
    try {
      // the listener picks the chain per connection
      const build = (chain: FilterChainConfig, name: string): FilterChainSpec => {
        const factories: NetworkFilterFactory[] = chain.filters.map((ref) =>
          (ref.ext.create as NetworkFilterCreate<unknown>)(ref.config, ctx)
        );
        all.push(...factories);
        const ts = chain.transport_socket;
        const tls = ts?.kind === "tls" ? new DownstreamTls(ts.config) : undefined;
        // a chain whose certificate comes from SDS keeps the listener warming until the secret arrived
        if (tls?.whenReady() !== undefined) all.push(tlsWarmingFactory(tls));
        return { name, match: chain.filter_chain_match, filters: factories, tls };
      };
      const chains = l.filter_chains.map((chain, i) => build(chain, chain.name ?? `chain_${i}`));
      const dfc = l.default_filter_chain;
      const defaultChain = dfc === undefined ? undefined : build(dfc, dfc.name ?? "default");
      const pp = l.listener_filters.find((f) => f.kind === "proxy_protocol") as
        | Extract<ListenerFilterConfig, { kind: "proxy_protocol" }>
        | undefined;
      const kinds = l.listener_filters.map((f) => f.kind);
      const od = kinds.indexOf("original_dst");
      const listener = new Listener(
        {
          name: l.name,
          hostname: sa.address,
          port: sa.port_value,
          filters: (chains[0] ?? defaultChain!).filters,
          chains,
          defaultChain,
          proxyProtocol: pp === undefined ? undefined : new ProxyProtocolFilter(pp.config, this.stats, scope),
          originalDst: od < 0 ? undefined : od < kinds.indexOf("proxy_protocol") ? "first" : "last",
          handOff: l.use_original_dst ? (addr) => this.#listenerAt(addr) : undefined,
          bindToPort: l.bind_to_port,
          inspectTimeoutMs: l.listener_filters_timeout,
          tlsInspector: l.listener_filters.some((f) => f.kind === "tls_inspector"),
          bufferLimitBytes: l.per_connection_buffer_limit_bytes ?? 1024 * 1024,
          scope,
        },
        this.clock,
        this.workerIndex * 1_000_000_000,
      );
      return { listener, factories: all };
    } catch (e) {
      for (const f of all) void Promise.resolve().then(() => f.close?.()).catch(() => {});
      throw e;
    }
  }

  /**
   * Resolves DNS clusters, then binds every static listener. When a port cannot be bound, closes the listeners
   * already bound and throws one line naming the listener and address (see bindErrorMessage).
   */
  async start(reusePort: boolean): Promise<void> {
    await this.clusters.initialize();
    await this.listenerManager.startStatic(
      reusePort,
      (l, e) => new Error(bindErrorMessage(`listener "${l.spec.name}"`, l.spec.hostname, l.spec.port, e)),
    );
    this.stats.gauge("server.state", "never_import").set(0);
  }

  /**
   * LDS: adds `config`, or replaces the listener of the same name when the config differs (compared as
   * `opts.raw` when given, else the parsed config). A listener whose routes (RDS) have not arrived warms first
   * (`whenListenerWarm`); a warm one takes new connections at once while the one it replaces drains for
   * `drainTimeMs`: at the same address it takes over the replaced one's listening socket (no bind, no close,
   * see `Listener.takeOver`), elsewhere it binds with reusePort. Rejects, changing nothing, for a static
   * listener's name, a config that cannot be built, or an address that cannot be bound.
   */
  addOrUpdateListener(
    config: ListenerConfig,
    version: string,
    opts?: AddOrUpdateOptions,
  ): Promise<ListenerUpdateResult> {
    try {
      return Promise.resolve(this.listenerManager.addOrUpdate(config, version, opts));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * LDS: the listener stops accepting at once and drains for `drainTimeMs`, then closes. False when no such
   * listener; rejects for a static (bootstrap) listener.
   */
  removeListener(name: string, reload = false): Promise<boolean> {
    try {
      return Promise.resolve(this.listenerManager.remove(name, reload));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Admin /drain_listeners in this event loop (see `ListenerManager.drainListeners`). */
  drainListeners(o: Parameters<ListenerManager["drainListeners"]>[0]): void {
    this.listenerManager.drainListeners(o);
  }

  /** Resolves once no listener named `name` is warming (active, removed, or failed to bind). */
  whenListenerWarm(name: string): Promise<void> {
    return this.listenerManager.whenWarm(name);
  }

  /**
   * RDS: compiles `config` and swaps it in for every connection manager whose `rds.route_config_name` is
   * `name`: their next stream (open keep-alive and HTTP/2 connections included) uses it; listeners warming
   * on it become active. Throws when the table cannot be compiled; the previous one keeps serving.
   */
  setRouteConfig(name: string, config: RouteConfiguration, version: string): void {
    this.routes.update(name, config, version);
  }

  /** Bound addresses (ports resolved when the config said 0). */
  addresses(): ListenerAddress[] {
    return this.listeners.map((l) => ({ name: l.spec.name, address: l.spec.hostname, port: l.port }));
  }

  /** /clusters status of every cluster (host counters of this event loop; health is shared). */
  clusterStatus(): ClusterStatus[] {
    return this.clusters.all().map((c) => clusterStatusOf(c, { successRate: hostSuccessRate }));
  }

  /** Stops accepting, waits up to `graceMs` for connections to end, then closes everything. */
  async stop(graceMs = 0, drain: DrainOptions = {}): Promise<void> {
    await this.listenerManager.stop(graceMs, drain);
    // after the drain: closes pooled upstream connections, idle and still in use (shadows, stuck requests)
    this.clusters.close();
    this.timers.close();
    await this.#statsSetup.close();
    log.debug("data plane stopped");
  }
}
