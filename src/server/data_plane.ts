/**
 * One event loop's data plane built from a bootstrap snapshot: its stats store, cluster manager and
 * listeners. The main thread runs one when --concurrency is 1; otherwise each worker runs one.
 */
import { systemClock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { Logger } from "../common/log.ts";
import { TimerWheel } from "../common/timer_wheel.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import { Listener } from "../listener/listener.ts";
import type { FactoryContext, NetworkFilterCreate, NetworkFilterFactory } from "../network/filter.ts";
import { registry } from "../registry/registry.ts";
import { StatsStore } from "../stats/store.ts";
import { createClusterManager } from "../upstream/cluster_manager.ts";
import type { ClusterManager } from "../upstream/types.ts";

const log = new Logger("main");

/** A listener's reported address. */
export interface ListenerAddress {
  name: string;
  address: string;
  port: number;
}

/** Per-host status for /clusters. */
export interface HostStatus {
  cluster: string;
  address: string;
  hostname: string;
  weight: number;
  healthy: boolean;
  stats: Record<string, number>;
}

/** Envoy's listener stat prefix for an address ("0.0.0.0_10000"). */
export function listenerStatName(address: string, port: number): string {
  return `${address}_${port}`;
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
   * hands it to every worker); a fresh one is made when omitted (tests, single-threaded use).
   */
  constructor(
    readonly bootstrap: Bootstrap,
    readonly workerIndex = 0,
    readonly shared: SharedArena = SharedArena.create(),
  ) {
    this.clusters = createClusterManager(bootstrap.static_resources.clusters, {
      stats: this.stats,
      clock: this.clock,
      log: new Logger("upstream"),
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
        log: new Logger(l.name),
        node,
        shared: this.shared,
      };
      const chain = l.filter_chains[0];
      const factories: NetworkFilterFactory[] = chain.filters.map((ref) =>
        (ref.ext.create as NetworkFilterCreate<unknown>)(ref.config, ctx)
      );
      this.#factories.push(...factories);
      this.listeners.push(
        new Listener(
          {
            name: l.name,
            hostname: sa.address,
            port: sa.port_value,
            filters: factories,
            bufferLimitBytes: l.per_connection_buffer_limit_bytes ?? 1024 * 1024,
            scope,
          },
          this.clock,
          workerIndex * 1_000_000_000,
        ),
      );
    }
  }

  /** Resolves DNS clusters, then binds every listener. Throws when a port cannot be bound. */
  async start(reusePort: boolean): Promise<void> {
    await this.clusters.initialize();
    for (const l of this.listeners) l.start(reusePort);
    this.stats.gauge("server.state", "never_import").set(0);
  }

  /** Bound addresses (ports resolved when the config said 0). */
  addresses(): ListenerAddress[] {
    return this.listeners.map((l) => ({ name: l.spec.name, address: l.spec.hostname, port: l.port }));
  }

  /** Host status of every cluster. */
  hostStatus(): HostStatus[] {
    const out: HostStatus[] = [];
    for (const c of this.clusters.all()) {
      for (const h of c.hosts()) {
        out.push({
          cluster: c.name,
          address: h.addressString,
          hostname: h.hostname,
          weight: h.weight,
          healthy: h.healthy,
          stats: {
            cx_total: h.stats.cx_total,
            cx_active: h.activeConnections,
            cx_connect_fail: h.stats.cx_connect_fail,
            rq_total: h.stats.rq_total,
            rq_active: h.activeRequests,
            rq_success: h.stats.rq_success,
            rq_error: h.stats.rq_error,
            rq_timeout: h.stats.rq_timeout,
          },
        });
      }
    }
    return out;
  }

  /** Stops accepting, waits up to `graceMs` for connections to end, then closes everything. */
  async stop(graceMs = 0): Promise<void> {
    for (const l of this.listeners) l.stopAccepting();
    // idle pooled upstream connections would keep peers' (and our own demo origin's) connections open
    this.clusters.close();
    await Promise.all(this.listeners.map((l) => l.drainAndClose(graceMs)));
    await Promise.all(this.#factories.map((f) => f.close?.()));
    this.timers.close();
    log.debug("data plane stopped");
  }
}
