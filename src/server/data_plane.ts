/**
 * One event loop's data plane built from a bootstrap snapshot: its stats store, cluster manager and
 * listeners. The main thread runs one when --concurrency is 1; otherwise each worker runs one.
 */
import { systemClock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { Logger } from "../common/log.ts";
import { TimerWheel } from "../common/timer_wheel.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import { type FilterChainSpec, Listener } from "../listener/listener.ts";
import { DownstreamTls } from "../transport/tls_downstream.ts";
import type { FactoryContext, NetworkFilterCreate, NetworkFilterFactory } from "../network/filter.ts";
import { registry } from "../registry/registry.ts";
import { StatsStore } from "../stats/store.ts";
import { createClusterManager } from "../upstream/cluster_manager.ts";
import { clusterStatusOf } from "../admin/clusters.ts";
import type { ClusterStatus } from "../admin/types.ts";
import { hostSuccessRate } from "../upstream/host.ts";
import type { ClusterManager } from "../upstream/types.ts";

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

/** Listeners, clusters and stats of one event loop. */
export class DataPlane {
  readonly stats = new StatsStore();
  readonly clock = systemClock;
  readonly timers = new TimerWheel(systemClock);
  readonly clusters: ClusterManager;
  readonly listeners: Listener[] = [];
  /** Every network filter factory built for this snapshot (closed by stop()). */
  readonly #factories: NetworkFilterFactory[] = [];

  /**
   * Builds (does not start) the data plane. `shared` is the process-wide arena (the main thread creates it and
   * hands it to every worker); a fresh one is made when omitted (tests, single-threaded use). `healthOwner`
   * is false in workers: the main thread runs health checks and outlier sweeps and owns membership gauges.
   */
  constructor(
    readonly bootstrap: Bootstrap,
    readonly workerIndex = 0,
    readonly shared: SharedArena = SharedArena.create(),
    healthOwner = true,
  ) {
    this.clusters = createClusterManager(bootstrap.static_resources.clusters, {
      stats: this.stats,
      clock: this.clock,
      log: new Logger("upstream"),
      shared: this.shared,
      healthOwner,
    });
    const node = { id: bootstrap.node?.id ?? "", cluster: bootstrap.node?.cluster ?? "" };
    for (const l of bootstrap.static_resources.listeners) {
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
        node,
        shared: this.shared,
      };
      // one factory list (and TLS context) per filter chain; the listener picks the chain per connection
      const chains: FilterChainSpec[] = l.filter_chains.map((chain, i) => {
        const factories: NetworkFilterFactory[] = chain.filters.map((ref) =>
          (ref.ext.create as NetworkFilterCreate<unknown>)(ref.config, ctx)
        );
        this.#factories.push(...factories);
        const ts = chain.transport_socket;
        return {
          name: chain.name ?? `chain_${i}`,
          match: chain.filter_chain_match,
          filters: factories,
          tls: ts?.kind === "tls" ? new DownstreamTls(ts.config) : undefined,
        };
      });
      this.listeners.push(
        new Listener(
          {
            name: l.name,
            hostname: sa.address,
            port: sa.port_value,
            filters: chains[0].filters,
            chains,
            inspectTimeoutMs: l.listener_filters_timeout,
            // the only listener filter nuncio has: envoy.filters.listener.tls_inspector
            tlsInspector: l.listener_filters.length > 0,
            bufferLimitBytes: l.per_connection_buffer_limit_bytes ?? 1024 * 1024,
            scope,
          },
          this.clock,
          workerIndex * 1_000_000_000,
        ),
      );
    }
  }

  /**
   * Resolves DNS clusters, then binds every listener. When a port cannot be bound, closes the listeners
   * already bound and throws one line naming the listener and address (see bindErrorMessage).
   */
  async start(reusePort: boolean): Promise<void> {
    await this.clusters.initialize();
    for (const l of this.listeners) {
      try {
        l.start(reusePort);
      } catch (e) {
        for (const other of this.listeners) other.stopAccepting();
        throw new Error(bindErrorMessage(`listener "${l.spec.name}"`, l.spec.hostname, l.spec.port, e));
      }
    }
    this.stats.gauge("server.state", "never_import").set(0);
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
  async stop(graceMs = 0): Promise<void> {
    for (const l of this.listeners) l.stopAccepting();
    await Promise.all(this.listeners.map((l) => l.drainAndClose(graceMs)));
    // after the drain: closes pooled upstream connections, idle and still in use (shadows, stuck requests)
    this.clusters.close();
    await Promise.all(this.#factories.map((f) => f.close?.()));
    this.timers.close();
    log.debug("data plane stopped");
  }
}
