/** The cluster manager: builds every cluster of a config snapshot and owns their discovery and pools. */
import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/log.ts";
import type { SharedArena } from "../common/shared_arena.ts";
import type { StatsStore } from "../stats/store.ts";
import { ClusterImpl } from "./cluster.ts";
import type { ClusterConfig } from "./config.ts";
import { type Resolver, systemResolver } from "./dns.ts";
import { type Discovery, DnsDiscovery, staticDiscovery } from "./dns_cluster.ts";
import type { Random } from "./lb/lb.ts";
import type { ConnectFn } from "./pool.ts";
import type { Cluster, ClusterManager } from "./types.ts";

/** Dependencies of the cluster manager; the optional ones exist for tests. */
export interface ClusterManagerDeps {
  /** Store receiving `cluster.<name>.*` stats. */
  stats: StatsStore;
  /** Time source for timers and durations. */
  clock: Clock;
  /** Logger for DNS failures and connect errors. */
  log?: Logger;
  /** DNS resolver (default: getaddrinfo via node:dns). */
  resolver?: Resolver;
  /** Socket opener (default Deno.connect). */
  connect?: ConnectFn;
  /** Random source for LBs (default Math.random). */
  random?: Random;
  /** Memory shared by every worker (circuit breakers, health); each cluster gets a private one when absent. */
  shared?: SharedArena;
  /** True on the thread that decides host health (main thread); default true. See ClusterDeps.healthOwner. */
  healthOwner?: boolean;
}

/** Builds the clusters of one snapshot (config time); call initialize() before serving, close() when retired. */
export function createClusterManager(configs: ClusterConfig[], deps: ClusterManagerDeps): ClusterManager {
  return new ClusterManagerImpl(configs, deps);
}

class ClusterManagerImpl implements ClusterManager {
  readonly #clusters = new Map<string, ClusterImpl>();
  readonly #list: ClusterImpl[] = [];
  readonly #discovery: Discovery[] = [];
  #init: Promise<void> | null = null;

  constructor(configs: ClusterConfig[], deps: ClusterManagerDeps) {
    for (const config of configs) {
      if (this.#clusters.has(config.name)) throw new Error(`Duplicate cluster name "${config.name}"`);
      const cluster = new ClusterImpl(config, {
        scope: deps.stats.scope(`cluster.${config.name}.`),
        clock: deps.clock,
        log: deps.log,
        connect: deps.connect,
        random: deps.random,
        shared: deps.shared,
        healthOwner: deps.healthOwner,
      });
      this.#clusters.set(config.name, cluster);
      this.#list.push(cluster);
      this.#discovery.push(
        config.type === "STATIC" ? staticDiscovery(cluster) : new DnsDiscovery(cluster, {
          resolver: deps.resolver ?? systemResolver,
          clock: deps.clock,
          log: deps.log,
        }),
      );
    }
  }

  get(name: string): Cluster | undefined {
    return this.#clusters.get(name);
  }

  all(): readonly Cluster[] {
    return this.#list;
  }

  initialize(): Promise<void> {
    // Like Envoy, a cluster with active health checks finishes warming after every host's first check.
    return this.#init ??= Promise.all(this.#discovery.map((d) => d.initialize()))
      .then(() => Promise.all(this.#list.map((c) => c.initializeHealth())))
      .then(() => {});
  }

  /** Re-reads shared health into LBs and owner gauges (before /stats). */
  syncHealth(): void {
    for (const c of this.#list) c.syncHealth();
  }

  close(): void {
    for (const d of this.#discovery) d.close();
    for (const c of this.#list) c.close();
  }
}

/** Re-reads shared host health into `cm`'s clusters and owner gauges (main thread, before /stats). */
export function syncClusterHealth(cm: ClusterManager): void {
  if (cm instanceof ClusterManagerImpl) cm.syncHealth();
}
