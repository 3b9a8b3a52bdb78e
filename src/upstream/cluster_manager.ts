/**
 * The cluster manager: builds the clusters of the bootstrap and those CDS adds, warms each new version before
 * it serves, retires replaced and removed versions (requests in flight finish on them), applies EDS updates
 * and gives SharedArena slots back when a cluster goes.
 */
import type { Clock } from "../common/clock.ts";
import type { Logger } from "../common/log.ts";
import { SharedArena } from "../common/shared_arena.ts";
import { Counter, Gauge, type StatsStore } from "../stats/store.ts";
import { BreakerSlots } from "./circuit_breaker.ts";
import { ClusterImpl } from "./cluster.ts";
import type { ClusterConfig, ClusterLoadAssignment } from "./config.ts";
import { deepEqual, healthVariant } from "./config_compare.ts";
import { type Resolver, systemResolver } from "./dns.ts";
import { type Discovery, DnsDiscovery, localityKey, staticDiscovery } from "./dns_cluster.ts";
import { originalDstConfig, OriginalDstHosts } from "./original_dst.ts";
import { EdsDiscovery } from "./eds_discovery.ts";
import type { LocalClusterView } from "./lb/zone_aware.ts";
import { initialHostFlags } from "./health/cluster_health.ts";
import { ClusterHealthState } from "./health/state.ts";
import type { Random } from "./lb/lb.ts";
import type { ConnectFn } from "./pool.ts";
import type { Cluster, ClusterManager, ClusterUpdateResult, DynamicClusterManager } from "./types.ts";
import { upstreamSecretWait } from "../transport/tls_upstream.ts";

/** What a warming cluster version waits for besides its hosts: its TLS context's SDS secrets. */
export interface SecretReadiness {
  /** A promise while a secret has neither arrived nor timed out (initial_fetch_timeout), else undefined. */
  readonly ready: Promise<void> | undefined;
  /** Stops waiting (clears timers); the version was retired or warmed. */
  close(): void;
}

/** The default readiness: the secrets of the cluster's UpstreamTlsContext (this event loop's registry). */
export function clusterSecretReadiness(config: ClusterConfig): SecretReadiness | undefined {
  const ts = config.transport_socket;
  return ts?.kind === "tls" ? upstreamSecretWait(ts.config) : undefined;
}

/** Dependencies of the cluster manager; the optional ones exist for tests. */
export interface ClusterManagerDeps {
  /** Store receiving `cluster.<name>.*` and `cluster_manager.*` stats. */
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
  /** Memory shared by every worker (circuit breakers, health); a private one per manager when absent. */
  shared?: SharedArena;
  /** True on the thread that decides host health (main thread); default true. See ClusterDeps.healthOwner. */
  healthOwner?: boolean;
  /** Called each time a version of a cluster becomes warm (after it replaced the previous one). */
  onWarm?: (name: string) => void;
  /**
   * cluster_manager.local_cluster_name: the cluster whose hosts are this proxy's callers; with it, clusters route
   * by zone toward `locality` (Envoy's zone aware routing).
   */
  localClusterName?: string;
  /** This proxy's node.locality (`--service-zone` sets its zone); the empty locality when absent. */
  locality?: { region?: string; zone?: string; sub_zone?: string };
  /**
   * Cluster warming on secrets, as Envoy: a version CDS adds or updates stays warming (the previous version
   * serves, or none) until this is ready (default `clusterSecretReadiness`: its SDS secrets arrived or their
   * initial_fetch_timeout passed). Bootstrap clusters serve at once (the server's initial fetch waits instead).
   */
  secretReadiness?: (config: ClusterConfig) => SecretReadiness | undefined;
}

/** One version of a cluster and its discovery. */
interface Version {
  readonly cluster: ClusterImpl;
  readonly config: ClusterConfig;
  readonly discovery: Discovery | null;
  readonly eds: EdsDiscovery | null;
  readonly health: ClusterHealthState;
  readonly variant: string;
  /** The SDS secrets this version warms on (CDS versions only). */
  readonly secrets: SecretReadiness | undefined;
  started: boolean;
  warm: boolean;
  /** A callback waits for `secrets` (warming is otherwise done). */
  waitingSecrets: boolean;
}

/** A cluster name: the version serving (`active`), the one warming, and what every version shares. */
interface Entry {
  active: Version | null;
  warming: Version | null;
  readonly breakers: BreakerSlots;
  readonly waiters: ((warm: boolean) => void)[];
  rejected: Counter | null;
  /** `cluster.<name>.update_no_rebuild`, made on first use. */
  noRebuild: Counter | null;
}

/** Builds the clusters of the bootstrap (config time); call initialize() before serving, close() when retired. */
export function createClusterManager(
  configs: ClusterConfig[],
  deps: ClusterManagerDeps,
): DynamicClusterManager {
  return new ClusterManagerImpl(configs, deps);
}

class ClusterManagerImpl implements DynamicClusterManager {
  readonly #deps: ClusterManagerDeps;
  readonly #arena: SharedArena;
  readonly #owner: boolean;
  readonly #entries = new Map<string, Entry>();
  #list: ClusterImpl[] = [];
  #init: Promise<void> | null = null;
  readonly #added: Counter;
  readonly #modified: Counter;
  readonly #removed: Counter;
  readonly #active: Gauge;
  readonly #warmingGauge: Gauge;
  /** The local cluster's hosts as every cluster's zone aware routing reads them; null without one. */
  readonly #local: LocalClusterView | null = null;

  constructor(configs: ClusterConfig[], deps: ClusterManagerDeps) {
    this.#deps = deps;
    const localName = deps.localClusterName;
    if (localName !== undefined && localName !== "") {
      this.#local = {
        locality: localityKey(deps.locality ?? {}),
        hosts: () => this.#entries.get(localName)?.active?.cluster.localHostSet() ?? null,
      };
    }
    this.#arena = deps.shared ?? SharedArena.create();
    this.#owner = deps.healthOwner ?? true;
    // Registered by the health owner only, so merging worker stats does not multiply them.
    const s = deps.stats;
    const counter = (n: string) => this.#owner ? s.counter(n) : new Counter(n);
    const gauge = (n: string) => this.#owner ? s.gauge(n, "never_import") : new Gauge(n, "never_import");
    this.#added = counter("cluster_manager.cluster_added");
    this.#modified = counter("cluster_manager.cluster_modified");
    this.#removed = counter("cluster_manager.cluster_removed");
    this.#active = gauge("cluster_manager.active_clusters");
    this.#warmingGauge = gauge("cluster_manager.warming_clusters");
    for (const config of configs) {
      if (this.#entries.has(config.name)) throw new Error(`Duplicate cluster name "${config.name}"`);
      const entry = this.#newEntry(config.name);
      // bootstrap clusters serve at once (they warm in initialize(), before listeners start)
      entry.active = this.#build(entry, config, null, false);
      this.#entries.set(config.name, entry);
      this.#added.inc();
    }
    this.#changed();
  }

  get(name: string): Cluster | undefined {
    return this.#entries.get(name)?.active?.cluster;
  }

  all(): readonly Cluster[] {
    return this.#list;
  }

  initialize(): Promise<void> {
    // Envoy's primary clusters: every non-EDS cluster resolves (and runs its first health checks) before
    // serving; EDS clusters warm when the xDS layer delivers their endpoints (see whenWarm).
    return this.#init ??= Promise.all(
      [...this.#entries.keys()].filter((n) => this.#newest(n)?.eds === null).map((n) => {
        const v = this.#newest(n)!;
        this.#start(n, v);
        return this.whenWarm(n);
      }),
    ).then(() => {});
  }

  addOrUpdate(config: ClusterConfig): ClusterUpdateResult {
    const name = config.name;
    let entry = this.#entries.get(name);
    const prev = entry ? (entry.warming ?? entry.active) : null;
    if (prev !== null && deepEqual(prev.config, config)) return "unchanged";
    const added = entry === undefined;
    if (entry === undefined) {
      entry = this.#newEntry(name);
      this.#entries.set(name, entry);
      this.#added.inc();
    } else {
      this.#modified.inc();
    }
    const v = this.#build(entry, config, prev, true);
    const superseded = entry.warming;
    entry.warming = v;
    if (superseded !== null) this.#retire(entry, superseded); // replaced before it warmed
    if (v.eds !== null) {
      // Same EDS resource as the version it replaces: start from its endpoints (the server need not resend them)
      const last = prev?.eds?.assignment;
      if (last && edsName(prev!.config) === edsName(config)) this.#applyEds(name, v, last);
    } else {
      this.#start(name, v);
    }
    this.#changed();
    return added ? "added" : "updated";
  }

  remove(name: string): boolean {
    const entry = this.#entries.get(name);
    if (entry === undefined) return false;
    this.#entries.delete(name);
    const live = [entry.active, entry.warming];
    entry.active = entry.warming = null;
    for (const v of live) {
      if (v === null) continue;
      this.#retire(entry, v);
      v.cluster.stats.membership_total.set(0);
      v.cluster.stats.membership_healthy.set(0);
    }
    entry.breakers.release();
    for (const w of entry.waiters.splice(0)) w(false);
    this.#removed.inc();
    this.#changed();
    return true;
  }

  setEndpoints(name: string, cla: ClusterLoadAssignment): boolean {
    const entry = this.#entries.get(name);
    if (entry === undefined) return false;
    let applied = false;
    for (const v of [entry.warming, entry.active]) {
      if (v === null || v.eds === null) continue;
      this.#applyEds(name, v, cla);
      applied = true;
    }
    if (applied && this.#owner) {
      const u = (entry.warming ?? entry.active)!.cluster.updateStats;
      u.attempt.inc();
      u.success.inc();
    }
    return applied;
  }

  noteEndpointUpdate(name: string, outcome: "rejected" | "empty" | "unchanged"): boolean {
    const entry = this.#entries.get(name);
    const v = entry && (entry.warming ?? entry.active);
    if (!entry || !v || v.eds === null) return false;
    if (this.#owner) {
      v.cluster.updateStats.attempt.inc();
      if (outcome === "empty") v.cluster.updateStats.empty.inc();
      else if (outcome === "unchanged") {
        // as Envoy: a successful update that needed no load-balancer rebuild
        v.cluster.updateStats.success.inc();
        (entry.noRebuild ??= this.#deps.stats.counter(`cluster.${name}.update_no_rebuild`)).inc();
      } else (entry.rejected ??= this.#deps.stats.counter(`cluster.${name}.update_rejected`)).inc();
    }
    if (outcome === "empty") this.markWarm(name);
    return true;
  }

  markWarm(name: string): boolean {
    const entry = this.#entries.get(name);
    const v = entry && (entry.warming ?? entry.active);
    if (!v || v.warm) return false;
    this.#start(name, v);
    this.#warmed(name, v);
    return true;
  }

  whenWarm(name: string): Promise<boolean> {
    const entry = this.#entries.get(name);
    const v = entry && (entry.warming ?? entry.active);
    if (!entry || !v) return Promise.resolve(false);
    if (v.warm) return Promise.resolve(true);
    return new Promise((resolve) => entry.waiters.push(resolve));
  }

  isWarming(name: string): boolean {
    const v = this.#newest(name);
    return v !== null && !v.warm;
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  configOf(name: string): ClusterConfig | undefined {
    return this.#newest(name)?.config;
  }

  endpointsOf(name: string): ClusterLoadAssignment | undefined {
    return this.#newest(name)?.eds?.assignment ?? undefined;
  }

  /** Re-reads shared health into LBs and owner gauges (before /stats). */
  syncHealth(): void {
    for (const c of this.#list) c.syncHealth();
  }

  close(): void {
    for (const entry of this.#entries.values()) {
      for (const v of [entry.active, entry.warming]) {
        if (v === null) continue;
        v.secrets?.close();
        v.discovery?.close();
        v.cluster.close();
        v.health.release();
      }
      entry.breakers.release();
      for (const w of entry.waiters.splice(0)) w(false);
    }
    this.#entries.clear();
    this.#list = [];
  }

  #newEntry(name: string): Entry {
    return {
      active: null,
      warming: null,
      breakers: new BreakerSlots(this.#arena, name),
      waiters: [],
      rejected: null,
      noRebuild: null,
    };
  }

  /**
   * Builds a version of `config`; it shares health state with `prev` when their health config is the same.
   * `gated`: it warms on its SDS secrets too (see ClusterManagerDeps.secretReadiness).
   */
  #build(entry: Entry, config: ClusterConfig, prev: Version | null, gated: boolean): Version {
    const d = this.#deps;
    const variant = healthVariant(config);
    const health = prev !== null && prev.variant === variant
      ? prev.health
      : new ClusterHealthState(this.#arena, config.name, initialHostFlags(config), variant);
    const cluster = new ClusterImpl(config, {
      scope: d.stats.scope(`cluster.${config.name}.`),
      clock: d.clock,
      log: d.log,
      connect: d.connect,
      random: d.random,
      shared: this.#arena,
      healthOwner: d.healthOwner,
      breakerSlots: entry.breakers,
      healthState: health,
      localCluster: this.#local ?? undefined,
    });
    let discovery: Discovery | null = null;
    let eds: EdsDiscovery | null = null;
    if (config.type === "EDS") eds = new EdsDiscovery(cluster);
    else if (config.type === "STATIC") discovery = staticDiscovery(cluster);
    else if (config.type === "ORIGINAL_DST") {
      const od = new OriginalDstHosts(cluster, originalDstConfig(config), { clock: d.clock, log: d.log });
      cluster.useHostPicker(od);
      discovery = od;
    } else {discovery = new DnsDiscovery(cluster, {
        resolver: d.resolver ?? systemResolver,
        clock: d.clock,
        log: d.log,
      });}
    const secrets = gated ? (d.secretReadiness ?? clusterSecretReadiness)(config) : undefined;
    return {
      cluster,
      config,
      discovery,
      eds,
      health,
      variant,
      secrets,
      started: false,
      warm: false,
      waitingSecrets: false,
    };
  }

  /** Runs a non-EDS version's first resolution and health checks (or an EDS version's checks), then warms it. */
  #start(name: string, v: Version): void {
    if (v.started) return;
    v.started = true;
    const first = v.discovery?.initialize() ?? Promise.resolve();
    first.then(() => v.cluster.retired ? undefined : v.cluster.initializeHealth()).then(() =>
      this.#warmed(name, v)
    );
  }

  #applyEds(name: string, v: Version, cla: ClusterLoadAssignment): void {
    v.eds!.apply(cla);
    this.#start(name, v); // the first endpoints warm it once their health checks ran
  }

  /** `v` finished warming: it replaces the active version (which retires) unless it was itself replaced. */
  #warmed(name: string, v: Version): void {
    const entry = this.#entries.get(name);
    if (v.warm || entry === undefined) return;
    if (entry.warming === v && v.secrets?.ready !== undefined) {
      // hosts are ready; the TLS context's secrets are not (nor timed out): still warming
      if (!v.waitingSecrets) {
        v.waitingSecrets = true;
        v.secrets.ready.then(() => this.#warmed(name, v));
      }
      return;
    }
    v.secrets?.close();
    if (entry.warming === v) {
      const old = entry.active;
      entry.active = v;
      entry.warming = null;
      if (old !== null) this.#retire(entry, old);
    } else if (entry.active !== v) {
      return; // retired meanwhile
    }
    v.warm = true;
    this.#changed();
    for (const w of entry.waiters.splice(0)) w(true);
    this.#deps.onWarm?.(name);
  }

  /** Takes `v` out of service; its health state goes back unless the other live version shares it. */
  #retire(entry: Entry, v: Version): void {
    v.secrets?.close();
    v.discovery?.close();
    v.cluster.retire();
    if (entry.active?.health !== v.health && entry.warming?.health !== v.health) v.health.release();
  }

  #newest(name: string): Version | null {
    const e = this.#entries.get(name);
    return e ? (e.warming ?? e.active) : null;
  }

  /** Rebuilds the list of serving clusters and the manager gauges. */
  #changed(): void {
    const list: ClusterImpl[] = [];
    let warming = 0;
    for (const e of this.#entries.values()) {
      if (e.active !== null) list.push(e.active.cluster);
      if (e.warming !== null) warming++;
    }
    this.#list = list;
    this.#active.set(list.length);
    this.#warmingGauge.set(warming);
  }
}

/** The EDS resource name of an EDS cluster (service_name, else the cluster name). */
function edsName(config: ClusterConfig): string {
  return config.eds_cluster_config?.service_name ?? config.name;
}

/** Re-reads shared host health into `cm`'s clusters and owner gauges (main thread, before /stats). */
export function syncClusterHealth(cm: ClusterManager): void {
  if (cm instanceof ClusterManagerImpl) cm.syncHealth();
}
