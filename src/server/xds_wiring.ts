/**
 * The main thread's side of xDS: owns the XdsClient and every subscription (CDS and LDS from the bootstrap, EDS
 * per EDS cluster, RDS per route_config_name), validates each update whole (schemas and pre-serve checks, as
 * `--mode validate` would), then applies it: cluster changes first on the thread that owns health, then on
 * every event loop (the in-process data plane or each worker, through one versioned message). A rejection is a
 * NACK with the reason and changes nothing. It keeps what /config_dump shows of dynamic resources.
 */
import { CompactionScheduler } from "../common/heap.ts";
import { Logger } from "../common/log.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import type { ConfigSource } from "../config/config_source.ts";
import type { ListenerConfig } from "../config/listener.ts";
import type { DynamicResource } from "../admin/types.ts";
import { type Scope, StatsStore } from "../stats/store.ts";
import type { ClusterConfig } from "../upstream/config.ts";
import type { DynamicClusterManager } from "../upstream/types.ts";
import { XdsClient, xdsNode, type XdsWatch } from "../xds/client.ts";
import { type ClusterAddress, TYPE_URLS, type XdsUpdate } from "../xds/types.ts";
import { secrets } from "../transport/secret.ts";
import type { SdsSecretConfig } from "../transport/tls_config.ts";
import type { ListenerStateInfo } from "./worker_protocol.ts";
import {
  applySecrets,
  applyToClusters,
  checkResources,
  checkSecrets,
  edsServiceName,
  kindOf,
  type ParsedUpdate,
  parseUpdate,
  PartialApplyError,
  staticNames,
  type XdsKind,
} from "./xds_apply.ts";

const log = new Logger("config");
/** Bound on remembered draining listener versions (each is forgotten when its drain ends). */
const MAX_RETIRED = 1000;

/** A raw update as sent to workers (structured-clone safe). */
export interface RawUpdate {
  kind: XdsKind;
  version: string;
  resources: [string, unknown][];
  removed: string[];
  /** A bootstrap reload (SIGHUP, POST /reload): static resources, which may replace and remove static ones. */
  reload?: boolean;
}

/** True when a static listener's or cluster's TLS context fetches a secret over SDS (the wiring must run). */
export function usesSds(b: Bootstrap): boolean {
  const sds = (ts: unknown) => {
    const c = ts as { kind?: string; config?: { common_tls_context?: Record<string, unknown> } } | undefined;
    if (c?.kind !== "tls") return false;
    const common = c.config?.common_tls_context as {
      tls_certificate_sds_secret_configs?: { sds_config?: unknown }[];
      validation_context_sds_secret_config?: { sds_config?: unknown };
    } | undefined;
    return (common?.tls_certificate_sds_secret_configs ?? []).some((x) => x.sds_config !== undefined) ||
      common?.validation_context_sds_secret_config?.sds_config !== undefined;
  };
  return b.static_resources.listeners.some((l) => l.filter_chains.some((fc) => sds(fc.transport_socket))) ||
    b.static_resources.clusters.some((c) => sds((c as { transport_socket?: unknown }).transport_socket));
}

/**
 * True when the bootstrap needs the xDS wiring: `dynamic_resources`, or static resources that subscribe on their
 * own (an EDS cluster, a connection manager with `rds`, a TLS context with `sds_config`).
 */
export function usesXds(b: Bootstrap): boolean {
  if (b.dynamic_resources || usesSds(b)) return true;
  if (b.static_resources.clusters.some((c) => c.type === "EDS")) return true;
  return b.static_resources.listeners.some((l) =>
    l.filter_chains.some((fc) => fc.filters.some((f) => (f.config as { rds?: unknown }).rds !== undefined))
  );
}

/** What the wiring needs from the server. */
export interface XdsWiringDeps {
  bootstrap: Bootstrap;
  /** The root stats scope of the main thread. */
  stats: Scope;
  /** The cluster manager that owns health (the in-process plane's, or the main thread's membership view). */
  owner: DynamicClusterManager;
  /**
   * Applies a validated update to every event loop's data plane (in-process: the plane, whose cluster manager is
   * `owner`, so cluster kinds were applied already; workers: each re-parses and applies); resolves to an error
   * message when one failed.
   */
  applyEverywhere(u: RawUpdate, parsed: ParsedUpdate): Promise<string | undefined>;
  /** Ends warming of an EDS cluster in every worker (the owner is told directly). */
  markWarm(cluster: string): void;
  /** The first RDS fetch of a route config failed or timed out: its listeners stop warming everywhere. */
  routesGaveUp(name: string): void;
  /**
   * The gRPC transports module (xds/grpc.ts, loaded on demand so a static proxy never loads protobuf); absent:
   * gRPC and ADS sources are refused.
   */
  grpc?: typeof import("../xds/grpc.ts");
  /** The static names xDS may not change, shared with the server (a bootstrap reload updates them). */
  statics?: ReturnType<typeof staticNames>;
}

interface Kept {
  version: string;
  raw: unknown;
  at: number;
  /** EDS: the assignment as JSON, to skip unchanged ones in the next state-of-the-world response. */
  json?: string;
}

/** See the file comment. */
export class XdsWiring {
  readonly #d: XdsWiringDeps;
  readonly #client: XdsClient;
  readonly #statics: ReturnType<typeof staticNames>;
  /** Dynamic resources as accepted, by kind and name (for /config_dump). */
  readonly #kept: Record<XdsKind, Map<string, Kept>> = {
    listener: new Map(),
    route: new Map(),
    cluster: new Map(),
    endpoint: new Map(),
    secret: new Map(),
  };
  /** Listener versions replaced or removed, by "name@version", until the data plane finished draining them. */
  readonly #retired = new Map<string, Kept>();
  /** Versions of the last accepted LDS and CDS updates. */
  #versions: Partial<Record<XdsKind, string>> = {};
  /** RDS watches by route_config_name; EDS watches by service name. */
  readonly #rds = new Map<string, XdsWatch>();
  readonly #edsBySource = new Map<string, { watch: XdsWatch; services: Set<string> }>();
  /** initial_fetch_timeout timers of EDS services that joined a running subscription. */
  readonly #warmTimers = new Set<ReturnType<typeof setTimeout>>();
  /** RDS, EDS and SDS watches ("<type URL> <name>") whose initial fetch is not done yet (see #checkInitial). */
  readonly #initPending = new Set<string>();
  /** SDS watches by secret name. */
  readonly #sds = new Map<string, XdsWatch>();
  /**
   * SDS watches whose secret has neither arrived nor timed out, by name: ends their initial fetch (clears the
   * initial_fetch_timeout timer, releases #initPending). See #syncSds.
   */
  readonly #sdsInit = new Map<string, () => void>();
  /** Route configs and EDS services used by the current static and dynamic listeners and clusters. */
  #listenerConfigs = new Map<string, ListenerConfig>();
  #clusterConfigs = new Map<string, ClusterConfig>();
  /** Serializes updates: one validate-and-apply at a time, in arrival order. */
  #queue: Promise<unknown> = Promise.resolve();
  #initial = { cds: false, lds: false };
  #initialDone: () => void = () => {};
  /** Resolves once CDS and LDS finished their initial fetch (applied, rejected or timed out). */
  readonly initialFetch: Promise<void>;
  #closed = false;
  /** Compacts the heap once updates go quiet (not after each of a burst). */
  readonly #compaction = new CompactionScheduler();
  /** EDS subscriptions' own counters (the cluster manager keeps the exported cluster.<name>.update_*). */
  readonly #edsStats = new StatsStore();

  constructor(deps: XdsWiringDeps) {
    this.#d = deps;
    this.#statics = deps.statics ?? staticNames(deps.bootstrap);
    for (const l of deps.bootstrap.static_resources.listeners) this.#listenerConfigs.set(l.name, l);
    for (const c of deps.bootstrap.static_resources.clusters) this.#clusterConfigs.set(c.name, c);
    const d = deps.bootstrap.dynamic_resources;
    this.#initial = { cds: !d?.cds_config, lds: !d?.lds_config };
    this.initialFetch = new Promise((resolve) => {
      this.#initialDone = resolve;
    });
    this.#client = new XdsClient(d, {
      node: xdsNode(deps.bootstrap.node),
      stats: deps.stats,
      resolveCluster: (name) => this.#resolve(name),
      grpcTransport: deps.grpc?.grpcTransportFactory({
        node: xdsNode(deps.bootstrap.node),
        resolveCluster: (name) => this.#resolve(name),
        stats: deps.stats,
        adsConfig: d?.ads_config,
      }),
      listeners: {
        validateAndApply: (u) => this.#serialized(u),
        onInitialFetchDone: (o) => this.#initialFetchDone("lds", o),
      },
      clusters: {
        validateAndApply: (u) => this.#serialized(u),
        onInitialFetchDone: (o) => this.#initialFetchDone("cds", o),
      },
    });
  }

  /** Starts CDS and LDS (CDS first, as Envoy), and EDS/RDS for static EDS clusters and RDS listeners. */
  start(): void {
    this.#client.start();
    this.#syncWatches();
    this.#checkInitial();
  }

  /** Stops every subscription (no timer, request or watcher left). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#compaction.close();
    for (const t of this.#warmTimers) clearTimeout(t);
    this.#warmTimers.clear();
    for (const settle of [...this.#sdsInit.values()]) settle();
    this.#initialDone();
    await this.#client.close();
  }

  /** Dynamic resources for /config_dump. */
  dump(states: readonly ListenerStateInfo[] = []): {
    listeners: DynamicResource[];
    clusters: DynamicResource[];
    routes: DynamicResource[];
    endpoints: DynamicResource[];
    /** SDS secrets (private keys redacted). */
    secrets: DynamicResource[];
    listenersVersion?: string;
    clustersVersion?: string;
  } {
    const list = (k: XdsKind, warming: (name: string) => boolean = () => false) =>
      [...this.#kept[k]].map(([name, v]) => ({
        versionInfo: v.version,
        resource: v.raw as Record<string, unknown>,
        lastUpdatedMs: v.at,
        warming: warming(name),
      }));
    // versions a later update replaced or removed that the data plane still drains (the rest are forgotten)
    const draining = new Set(
      states.filter((s) => s.state === "draining").map((s) => `${s.name}@${s.version}`),
    );
    for (const key of this.#retired.keys()) if (!draining.has(key)) this.#retired.delete(key);
    const drainingListeners = [...this.#retired.values()].map((v) => ({
      versionInfo: v.version,
      resource: v.raw as Record<string, unknown>,
      lastUpdatedMs: v.at,
      draining: true,
    }));
    return {
      // a listener warms until its route configs arrived; a cluster until the owner says it is warm
      listeners: [
        ...list("listener", (name) => this.#routeNames(name).some((r) => !this.#kept.route.has(r))),
        ...drainingListeners,
      ],
      clusters: list("cluster", (name) => this.#d.owner.isWarming(name)),
      routes: list("route"),
      endpoints: list("endpoint"),
      secrets: list("secret"),
      listenersVersion: this.#versions.listener,
      clustersVersion: this.#versions.cluster,
    };
  }

  #initialFetchDone(which: "cds" | "lds", outcome: string): void {
    log.info(`${which.toUpperCase()} initial fetch done (${outcome})`);
    this.#initial[which] = true;
    this.#checkInitial();
  }

  /**
   * Done once CDS and LDS finished their initial fetch and so did the EDS of the clusters and the RDS of the
   * listeners they brought (applied, rejected or timed out), and the SDS secrets of both arrived (or timed out,
   * see #syncSds), as Envoy's init manager: until then a listener may still be warming (not bound) or route to
   * a cluster with no endpoints or secrets yet.
   */
  #checkInitial(): void {
    if (!this.#initial.cds || !this.#initial.lds) return;
    if (this.#initPending.size === 0) this.#initialDone();
  }

  /** A management-server cluster's address, from the cluster manager that owns health. */
  #resolve(name: string): ClusterAddress | undefined {
    const c = this.#d.owner.get(name);
    if (!c) return undefined;
    const hosts = c.hosts();
    const h = hosts.find((x) => x.healthy) ?? hosts[0];
    if (!h) return undefined;
    const tls = (this.#d.owner.configOf(name) as { transport_socket?: { kind?: string } } | undefined)
      ?.transport_socket?.kind === "tls";
    return { host: h.address, port: h.port, tls };
  }

  #serialized(u: XdsUpdate): Promise<string | undefined> {
    const run = this.#queue.then(() => this.#validateAndApply(u));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #validateAndApply(u: XdsUpdate): Promise<string | undefined> {
    if (this.#closed) return "Shutting down";
    const kind = kindOf(u.typeUrl);
    if (!kind) return `Resource type ${u.typeUrl} is not supported by nuncio`;
    if (kind === "endpoint") {
      // a state-of-the-world EDS response carries every assignment: only the changed ones are parsed, sent to
      // workers and rebuilt (one changed of 1,000 must not rebuild 1,000 load balancers in every thread)
      const changed = new Map<string, unknown>();
      for (const [name, raw] of u.resources) {
        if (this.#kept.endpoint.get(name)?.json !== JSON.stringify(raw)) changed.set(name, raw);
      }
      if (changed.size < u.resources.size) {
        const index = this.#clustersByService();
        for (const name of u.resources.keys()) {
          if (changed.has(name)) continue;
          for (const c of index.get(name) ?? []) this.#d.owner.noteEndpointUpdate(c, "unchanged");
        }
      }
      if (changed.size === 0 && u.removed.length === 0) return undefined;
      u = { ...u, resources: changed };
    }
    const parsed = parseUpdate(kind, u.version, u.resources, u.removed);
    if (typeof parsed === "string") return parsed;
    // static resources are not xDS's to change
    const statics = kind === "listener"
      ? this.#statics.listeners
      : kind === "cluster"
      ? this.#statics.clusters
      : null;
    for (const name of parsed.resources.keys()) {
      if (statics?.has(name)) return `${kind === "listener" ? "Listener" : "Cluster"} "${name}" is static`;
    }
    if (statics) {
      // state of the world: what is applied now and absent from this response goes, including resources a
      // partly failed update applied without the subscription counting them as accepted (Envoy's LDS compares
      // with the listener manager's listeners, not with the last ACKed set)
      const gone = new Set(parsed.removed);
      for (const name of this.#kept[kind].keys()) if (!parsed.resources.has(name)) gone.add(name);
      parsed.removed = [...gone].filter((n) => !statics.has(n));
    }
    const checked = await checkResources(
      kind === "listener" ? mapValues(parsed as ParsedUpdate<"listener">) : new Map(),
      kind === "cluster" ? mapValues(parsed as ParsedUpdate<"cluster">) : new Map(),
      new Set((this.#d.bootstrap.static_resources.secrets ?? []).map((s) => s.name)),
    );
    if (checked) return checked;
    if (kind === "secret") {
      const bad = await checkSecrets(parsed as ParsedUpdate<"secret">);
      if (bad) return bad;
    }
    const raw: RawUpdate = { kind, version: u.version, resources: [...u.resources], removed: parsed.removed };
    try {
      // the thread that owns health applies cluster changes first
      if (kind === "cluster" || kind === "endpoint") {
        applyToClusters(this.#d.owner, parsed, this.#statics.clusters);
      }
      // the main thread's secrets serve the in-process plane and the health owner's upstream TLS
      if (kind === "secret") await applySecrets(secrets, parsed);
      const failed = await this.#d.applyEverywhere(raw, parsed);
      if (failed) return failed;
    } catch (e) {
      if (e instanceof PartialApplyError) {
        // the listeners that applied are live: record them (RDS watches, config_dump, later removals), NACK
        // naming the others; the LDS version stays the last one applied whole
        const applied = new Map([...parsed.resources].filter(([n]) => !e.failed.includes(n)));
        this.#accepted(kind, { ...parsed, resources: applied }, false);
        return e.message;
      }
      return (e as Error).message;
    }
    this.#accepted(kind, parsed);
    this.#compaction.note();
    return undefined;
  }

  #accepted(kind: XdsKind, u: ParsedUpdate, whole = true): void {
    const kept = this.#kept[kind];
    const now = Date.now();
    if (kind === "listener") {
      // the versions this update replaces or removes drain for a while: /config_dump shows them as draining
      for (const name of [...u.resources.keys(), ...u.removed]) {
        const old = kept.get(name);
        if (
          old && old.version !== u.version &&
          (u.removed.includes(name) || old.raw !== u.resources.get(name)?.raw)
        ) {
          this.#retired.set(`${name}@${old.version}`, old);
        }
      }
      while (this.#retired.size > MAX_RETIRED) this.#retired.delete(this.#retired.keys().next().value!);
    }
    for (const [name, { raw }] of u.resources) {
      kept.set(name, {
        version: u.version,
        raw: kind === "secret" ? redactSecret(raw) : raw,
        at: now,
        json: kind === "endpoint" ? JSON.stringify(raw) : undefined,
      });
    }
    for (const name of u.removed) kept.delete(name);
    // a secret applied everywhere ends its initial fetch (an empty or unrelated response does not)
    if (kind === "secret") { for (const name of u.resources.keys()) this.#sdsInit.get(name)?.(); }
    if (whole && (kind === "listener" || kind === "cluster")) this.#versions[kind] = u.version;
    if (kind === "listener") {
      for (const [name, { value }] of (u as ParsedUpdate<"listener">).resources) {
        this.#listenerConfigs.set(name, value);
      }
      for (const name of u.removed) this.#listenerConfigs.delete(name);
    } else if (kind === "cluster") {
      for (const [name, { value }] of (u as ParsedUpdate<"cluster">).resources) {
        this.#clusterConfigs.set(name, value);
      }
      for (const name of u.removed) this.#clusterConfigs.delete(name);
    }
    if (kind === "listener" || kind === "cluster") this.#syncWatches();
  }

  /** Subscribes to the route configs and EDS services in use and drops the ones no longer used. */
  #syncWatches(): void {
    if (this.#closed) return;
    const routes = new Map<string, { source: ConfigSource; statPrefix: string }>();
    for (const l of this.#listenerConfigs.values()) {
      for (const chain of l.filter_chains) {
        for (const f of chain.filters) {
          const rds = (f.config as { rds?: { route_config_name: string; config_source: ConfigSource } }).rds;
          const prefix = (f.config as { stat_prefix?: string }).stat_prefix ?? "";
          if (rds && !routes.has(rds.route_config_name)) {
            routes.set(rds.route_config_name, { source: rds.config_source, statPrefix: prefix });
          }
        }
      }
    }
    const services = new Map<string, { source: ConfigSource; cluster: string }>();
    for (const c of this.#clusterConfigs.values()) {
      const service = edsServiceName(c);
      const eds = (c as { eds_cluster_config?: { eds_config: ConfigSource } }).eds_cluster_config;
      if (service && eds && !services.has(service)) {
        services.set(service, { source: eds.eds_config, cluster: c.name });
      }
    }
    this.#syncKind(
      this.#rds,
      routes,
      TYPE_URLS.route,
      (name, v) => this.#d.stats.scope(`http.${v.statPrefix}.rds.${name}`),
    );
    // EDS: the cluster manager counts cluster.<name>.update_* (as for DNS refreshes), told of NACKs and empties
    this.#syncEds(services);
    // SDS: every secret a listener's or cluster's TLS context fetches (`sds.<name>.update_*`, as Envoy)
    const secretsInUse = this.#secretsInUse();
    this.#syncSds(secretsInUse);
    // what no listener or cluster uses any more leaves /config_dump (blue/green names must not grow memory)
    for (const name of this.#kept.route.keys()) if (!routes.has(name)) this.#kept.route.delete(name);
    for (const name of this.#kept.endpoint.keys()) if (!services.has(name)) this.#kept.endpoint.delete(name);
    for (const name of this.#kept.secret.keys()) if (!secretsInUse.has(name)) this.#kept.secret.delete(name);
    // a dropped watch may have been the last one the initial fetch waited for
    this.#checkInitial();
  }

  /** The route_config_names an listener's connection managers take from RDS. */
  #routeNames(listener: string): string[] {
    const l = this.#listenerConfigs.get(listener);
    if (!l) return [];
    return l.filter_chains.flatMap((c) =>
      c.filters.flatMap((f) => {
        const rds = (f.config as { rds?: { route_config_name: string } }).rds;
        return rds ? [rds.route_config_name] : [];
      })
    );
  }

  /** Secrets named with an sds_config by the TLS contexts of the current listeners and clusters. */
  #secretsInUse(): Map<string, { source: ConfigSource }> {
    const out = new Map<string, { source: ConfigSource }>();
    const add = (c: SdsSecretConfig | undefined) => {
      if (c?.sds_config && !out.has(c.name)) out.set(c.name, { source: c.sds_config });
    };
    type Tls = {
      kind?: string;
      config?: {
        common_tls_context?: {
          tls_certificate_sds_secret_configs?: SdsSecretConfig[];
          validation_context_sds_secret_config?: SdsSecretConfig;
        };
      };
    };
    const visit = (ts: Tls | undefined) => {
      if (ts?.kind !== "tls") return;
      const common = ts.config?.common_tls_context;
      for (const c of common?.tls_certificate_sds_secret_configs ?? []) add(c);
      add(common?.validation_context_sds_secret_config);
    };
    for (const l of this.#listenerConfigs.values()) {
      for (const chain of l.filter_chains) visit(chain.transport_socket as Tls | undefined);
    }
    for (const c of this.#clusterConfigs.values()) {
      visit((c as { transport_socket?: Tls }).transport_socket);
    }
    return out;
  }

  /** Cluster names by EDS service name (built when needed: one pass over the clusters). */
  #clustersByService(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const c of this.#clusterConfigs.values()) {
      const s = edsServiceName(c);
      if (s === undefined) continue;
      const list = out.get(s);
      if (list) list.push(c.name);
      else out.set(s, [c.name]);
    }
    return out;
  }

  /**
   * An EDS update of one source's subscription (every service of that source): rejections are counted on the
   * clusters it named (all of them when it named none); an empty response counts `update_empty` and warms them.
   */
  async #edsUpdate(services: ReadonlySet<string>, u: XdsUpdate): Promise<string | undefined> {
    const error = await this.#serialized(u);
    if (error === undefined && u.resources.size > 0) return undefined;
    // a rejection concerns the services it carried; an empty outcome only those a delta response removed (an
    // empty state-of-the-world response names no service, and Envoy's named watches are not told of it)
    const affected = u.resources.size > 0
      ? [...u.resources.keys()]
      : u.removed.filter((s) => services.has(s));
    if (affected.length === 0) return error;
    const index = this.#clustersByService();
    for (const service of affected) {
      for (const c of index.get(service) ?? []) {
        this.#d.owner.noteEndpointUpdate(c, error !== undefined ? "rejected" : "empty");
        if (error === undefined) this.#markWarm(c);
      }
    }
    return error;
  }

  /** Ends warming of `cluster` on the owner and in every worker. */
  #markWarm(cluster: string): void {
    this.#d.owner.markWarm(cluster);
    this.#d.markWarm(cluster);
  }

  /**
   * EDS: one subscription per config source asks for every service of that source (as Envoy's gRPC mux merges
   * per-cluster watches), so 1,000 EDS clusters are one request and one update, not 1,000. A service added to
   * an existing subscription gets its own initial_fetch_timeout.
   */
  #syncEds(services: Map<string, { source: ConfigSource }>): void {
    const groups = new Map<string, { source: ConfigSource; services: Set<string> }>();
    for (const [service, { source }] of services) {
      const key = JSON.stringify(source);
      const g = groups.get(key);
      if (g) g.services.add(service);
      else groups.set(key, { source, services: new Set([service]) });
    }
    for (const [key, g] of this.#edsBySource) {
      if (groups.has(key)) continue;
      this.#edsBySource.delete(key);
      this.#initPending.delete(`eds ${key}`);
      g.watch.close().catch((e) => log.warn(`closing an EDS subscription: ${(e as Error).message}`));
    }
    for (const [key, want] of groups) {
      const have = this.#edsBySource.get(key);
      if (have) {
        const added = [...want.services].filter((s) => !have.services.has(s));
        have.services = want.services;
        have.watch.setNames(want.services);
        if (added.length > 0) this.#armWarmTimeout(added, want.source.initial_fetch_timeout);
        continue;
      }
      const pending = `eds ${key}`;
      this.#initPending.add(pending);
      const group = { services: want.services } as { services: Set<string>; watch: XdsWatch };
      try {
        group.watch = this.#client.subscribe(TYPE_URLS.endpoint, want.source, {
          names: want.services,
          stats: this.#edsStats.scope(`eds.${this.#edsBySource.size}`),
          validateAndApply: (u) => this.#edsUpdate(group.services, u),
          onInitialFetchDone: (o) => {
            if (o === "timeout") { for (const s of group.services) this.#edsTimedOut(s); }
            if (this.#initPending.delete(pending)) this.#checkInitial();
          },
        });
        this.#edsBySource.set(key, group);
        // each service has its own initial_fetch_timeout, as Envoy's per-cluster EDS watches: one missing from
        // the first response must not warm for ever
        this.#armWarmTimeout([...want.services], want.source.initial_fetch_timeout);
      } catch (e) {
        this.#initPending.delete(pending);
        log.error(`cannot subscribe to EDS: ${(e as Error).message}`);
      }
    }
  }

  /** Services that joined a running EDS subscription stop warming after the source's initial_fetch_timeout. */
  #armWarmTimeout(services: string[], timeoutMs: number | undefined): void {
    if (!timeoutMs) return;
    const t = setTimeout(() => {
      this.#warmTimers.delete(t);
      for (const s of services) this.#edsTimedOut(s);
    }, timeoutMs);
    this.#warmTimers.add(t);
  }

  #syncKind<V extends { source: ConfigSource }>(
    watches: Map<string, XdsWatch>,
    wanted: Map<string, V>,
    typeUrl: string,
    scope: (name: string, v: V) => Scope,
  ): void {
    const gates = typeUrl === TYPE_URLS.route;
    for (const [name, w] of watches) {
      if (!wanted.has(name)) {
        watches.delete(name);
        this.#initPending.delete(`${typeUrl} ${name}`);
        w.close().catch((e) => log.warn(`closing the ${name} subscription: ${(e as Error).message}`));
      }
    }
    for (const [name, v] of wanted) {
      if (watches.has(name)) continue;
      const key = `${typeUrl} ${name}`;
      if (gates) this.#initPending.add(key);
      try {
        watches.set(
          name,
          this.#client.subscribe(typeUrl, v.source, {
            names: [name],
            stats: scope(name, v),
            validateAndApply: (u) => this.#serialized(u),
            onInitialFetchDone: () => {
              // timed out, rejected, or answered without this route config: its listeners stop warming and
              // serve 404 NR until it arrives (Envoy's bounded RDS wait)
              if (typeUrl === TYPE_URLS.route && !this.#kept.route.has(name)) this.#d.routesGaveUp(name);
              if (this.#initPending.delete(key)) this.#checkInitial();
            },
          }),
        );
      } catch (e) {
        this.#initPending.delete(key);
        log.error(`cannot subscribe to ${name}: ${(e as Error).message}`);
      }
    }
  }

  /**
   * One SDS subscription per secret in use. As Envoy's init manager waits for the SDS secrets of the initial
   * listeners and clusters, the initial fetch (LIVE, /ready) waits until each secret was applied everywhere or
   * its source's initial_fetch_timeout passed. A response without the secret (REST serves every secret to
   * every request) does not end the wait: the timeout is armed here too, and counts `sds.<name>.init_fetch_timeout`
   * when the subscription itself did not (it does when no response came at all). On a timeout the main
   * thread's registry stops waiting for it (listeners and clusters warming on it in the in-process data plane
   * go active; each worker's contexts time out on their own timers).
   */
  #syncSds(wanted: Map<string, { source: ConfigSource }>): void {
    for (const [name, w] of this.#sds) {
      if (wanted.has(name)) continue;
      this.#sds.delete(name);
      this.#sdsInit.get(name)?.();
      w.close().catch((e) => log.warn(`closing the ${name} subscription: ${(e as Error).message}`));
    }
    for (const [name, { source }] of wanted) {
      if (this.#sds.has(name)) continue;
      const key = `${TYPE_URLS.secret} ${name}`;
      const scope = this.#d.stats.scope(`sds.${name}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = () => {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        if (this.#sdsInit.get(name) === settle) this.#sdsInit.delete(name);
        if (this.#initPending.delete(key)) this.#checkInitial();
      };
      const waits = !secrets.isSettled(name);
      if (waits) {
        this.#initPending.add(key);
        this.#sdsInit.set(name, settle);
      }
      try {
        const watch = this.#client.subscribe(TYPE_URLS.secret, source, {
          names: [name],
          stats: scope,
          validateAndApply: (u) => this.#serialized(u),
          onInitialFetchDone: (o) => {
            if (o !== "timeout" || this.#sdsInit.get(name) !== settle) return;
            secrets.markTimedOut(name);
            settle();
          },
        });
        this.#sds.set(name, watch);
        const ms = source.initial_fetch_timeout ?? 0;
        if (waits && ms > 0) {
          timer = setTimeout(() => {
            timer = undefined;
            if (this.#sdsInit.get(name) !== settle) return;
            // the subscription counts (and reports) its own timeout while it has had no response
            if (!watch.subscription.initialFetchDone) return;
            scope.counter("init_fetch_timeout").inc();
            log.warn(`SDS secret "${name}": initial fetch timed out after ${ms} ms`);
            secrets.markTimedOut(name);
            settle();
          }, ms);
        }
      } catch (e) {
        settle();
        log.error(`cannot subscribe to ${name}: ${(e as Error).message}`);
      }
    }
  }

  /** initial_fetch_timeout of an EDS service: its clusters stop warming (with no hosts), as Envoy. */
  #edsTimedOut(service: string): void {
    for (const c of this.#clustersByService().get(service) ?? []) {
      if (this.#d.owner.isWarming(c)) this.#markWarm(c);
    }
  }
}

function mapValues<K extends XdsKind>(
  u: ParsedUpdate<K>,
): Map<string, import("./xds_apply.ts").ParsedResources[K]> {
  const out = new Map();
  for (const [name, { value }] of u.resources) out.set(name, value);
  return out;
}

/** A Secret as /config_dump shows it: private keys redacted, as Envoy does. */
function redactSecret(raw: unknown): unknown {
  const r = raw as { tls_certificate?: { private_key?: unknown } };
  if (!r?.tls_certificate?.private_key) return raw;
  return { ...r, tls_certificate: { ...r.tls_certificate, private_key: { inline_string: "[redacted]" } } };
}
