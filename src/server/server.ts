/**
 * The main thread of `nuncio -c bootstrap.yaml`: runs the data plane in-process (--concurrency 1) or in N
 * workers that share every port through reusePort, serves admin, and merges worker stats on demand.
 */
import { mergeClusterStatuses } from "../admin/clusters.ts";
import type { ClusterStatus } from "../admin/types.ts";
import { systemClock } from "../common/clock.ts";
import { SharedArena } from "../common/shared_arena.ts";
import type { BootstrapExtensionCreate, BootstrapExtensionHandle } from "../registry/bootstrap_extension.ts";
import { prepareTls } from "../transport/cert_store.ts";
import { prepareExtensions } from "../registry/prepare.ts";
import { Logger, logSettings, reopenLogFile } from "../common/log.ts";
import { reopenAccessLogs } from "../access_log/writer.ts";
import type { Bootstrap } from "../config/bootstrap.ts";
import { mergeSnapshots, type StatsSnapshot, StatsStore } from "../stats/store.ts";
import {
  configureStats,
  createSinks,
  DEFAULT_FLUSH_INTERVAL_MS,
  StatsFlusher,
  type StatsSetup,
} from "../stats/flush.ts";
import { activeTagProducer, setActiveTagProducer, type TagProducer } from "../stats/tags.ts";
import { createClusterManager, syncClusterHealth } from "../upstream/cluster_manager.ts";
import { healthCheckFailed, healthCheckFailSlot, setHealthCheckFailed } from "../upstream/health/hc_fail.ts";
import type { ClusterManager } from "../upstream/types.ts";
import { DataPlane, type ListenerAddress } from "./data_plane.ts";
import type { DrainOptions } from "../listener/listener_manager.ts";
import type { FromWorker, ListenerStateInfo, ToWorker } from "./worker_protocol.ts";
import type { DynamicClusterManager } from "../upstream/types.ts";
import {
  applyToClusters,
  applyToPlane,
  type ParsedUpdate,
  parseUpdate,
  PartialApplyError,
  staticNames,
} from "./xds_apply.ts";
import { deepEqual } from "../upstream/config_compare.ts";
import { type RawUpdate, usesXds, XdsWiring } from "./xds_wiring.ts";
import { type HdsLrsHandle, startHdsLrs } from "./hds_lrs_wiring.ts";
import { RuntimeLoader } from "../runtime/loader.ts";
import { runtime, setRuntime, toWire } from "../runtime/current.ts";
import { EMPTY_SNAPSHOT, type RuntimeSnapshot } from "../runtime/snapshot.ts";

const log = new Logger("main");

/** The version printed by --version and /server_info. */
export const VERSION = "0.1.0";

/** Options of a running server. */
export interface ServerOptions {
  configPath: string;
  concurrency: number;
  logLevel: string;
  /** The bootstrap document as loaded and merged (--config-yaml, --service-*): /config_dump, and what workers parse. */
  raw: unknown;
  commandLine: string[];
  /** /server_info's command_line_options (Envoy's names); built from the fields above when absent. */
  commandLineOptions?: Record<string, unknown>;
  /** How long a listener that LDS replaces or removes drains (--drain-time-s, as Envoy; default 600 s). */
  drainTimeMs?: number;
  /**
   * Bind listeners with SO_REUSEPORT even with one event loop: a hot restart's next process binds the same
   * addresses beside this one before this one lets go of them.
   */
  reusePort?: boolean;
  /** --drain-strategy, for admin /drain_listeners?graceful. */
  drainStrategy?: "gradual" | "immediate";
}

interface WorkerHandle {
  worker: Worker;
  addresses: ListenerAddress[];
}

/** A running data plane (in-process or workers) plus the state admin reads. */
export class Server {
  readonly mainStats = new StatsStore();
  /**
   * Memory shared with every worker (created once per process). Sized for xDS at scale: 1,000 clusters with
   * 10,000 endpoints take ~13,000 keys, and a cluster update briefly holds two versions' host keys; pages are
   * only resident once touched.
   */
  readonly shared = SharedArena.create({ capacity: 262_144, bytes: 64 * 1024 * 1024 });
  readonly startedAt = Date.now();
  /**
   * Re-reads the bootstrap from where it came from and applies it (SIGHUP, POST /reload): set by whoever
   * knows the source (`nuncio -c`); resolves to a summary, throws with the reason (config kept).
   */
  reloadConfig?: () => Promise<string>;
  /** Hot restart: this process's --restart-epoch, its generation, and when the first epoch started. */
  hotRestart = { version: "disabled", epoch: 0, generation: 0, firstStartedAt: this.startedAt };
  state: "PRE_INITIALIZING" | "INITIALIZING" | "LIVE" | "DRAINING" = "PRE_INITIALIZING";
  #plane: DataPlane | undefined;
  /**
   * With workers: the main thread's own view of cluster membership (no listeners, no traffic). It runs the
   * active health checks and outlier sweeps whose results every worker reads from the SharedArena.
   */
  #membership: ClusterManager | undefined;
  /** The xDS subscriptions and apply layer (main thread), when the bootstrap has dynamic_resources. */
  #xds: XdsWiring | undefined;
  /** The HDS and LRS clients (main thread), when the bootstrap has hds_config or load_stats_config. */
  #hdsLrs: HdsLrsHandle | undefined;
  #workers: WorkerHandle[] = [];
  /** Started bootstrap_extensions (closed after the data plane). */
  #extensions: BootstrapExtensionHandle[] = [];
  #nextId = 1;
  #pending = new Map<number, { want: number; got: FromWorker[]; resolve: (v: FromWorker[]) => void }>();
  #quit: (() => void) | undefined;
  /** Resolves when /quitquitquit or a signal asks the server to stop. */
  readonly quitRequested: Promise<void>;
  /** The runtime (layered_runtime): this thread builds every snapshot and hands it to each event loop. */
  readonly runtime: RuntimeLoader;

  // --- stats sinks and stats_config (src/stats/flush.ts) ---
  /** stats_config applied to mainStats, and this thread's histogram writers. */
  readonly #statsSetup: StatsSetup;
  /** Flushes stats_sinks (absent without sinks). */
  #flusher: StatsFlusher | undefined;
  /** The tag producer /stats/prometheus used before this server installed its own. */
  #previousTags: TagProducer | undefined;

  /** Builds the sinks and arms the flush timer (at start; stats_flush_on_admin: no timer). */
  #startStatsFlush(): void {
    setActiveTagProducer(this.#statsSetup.compiled.tags);
    if ((this.bootstrap.stats_sinks ?? []).length === 0) return;
    const sinks = createSinks(this.bootstrap, this.#statsSetup.compiled, {
      stats: this.mainStats,
      clusters: () => this.#plane?.clusters ?? this.#membership,
    });
    this.#flusher = new StatsFlusher(sinks, {
      snapshot: () => this.#collectStats(),
      intervalMs: this.bootstrap.stats_flush_on_admin
        ? undefined
        : this.bootstrap.stats_flush_interval ?? DEFAULT_FLUSH_INTERVAL_MS,
      clock: systemClock,
    });
    this.#flusher.start();
  }

  /** Stops flushing and closes the sinks and this thread's histogram writers (at stop). */
  async #stopStatsFlush(): Promise<void> {
    const f = this.#flusher;
    this.#flusher = undefined;
    await f?.close();
    await this.#statsSetup.close();
    if (activeTagProducer() === this.#statsSetup.compiled.tags && this.#previousTags) {
      setActiveTagProducer(this.#previousTags);
    }
  }
  // --- end stats sinks ---

  constructor(readonly bootstrap: Bootstrap, readonly opts: ServerOptions) {
    this.#statsSetup = configureStats(
      this.mainStats,
      bootstrap,
      () => this.#plane?.clusters ?? this.#membership,
    );
    this.#previousTags = activeTagProducer();
    this.quitRequested = new Promise((r) => this.#quit = r);
    this.runtime = new RuntimeLoader(bootstrap.layered_runtime, {
      serviceCluster: bootstrap.node?.cluster ?? "",
      stats: this.mainStats,
      publish: (s) => this.#publishRuntime(s),
    });
  }

  /** Installs a runtime snapshot on this thread and in every worker; resolves once each has it. */
  async #publishRuntime(s: RuntimeSnapshot): Promise<void> {
    setRuntime(s);
    if (this.#workers.length === 0) return;
    const id = this.#nextId++;
    const wire = toWire(s);
    await new Promise<FromWorker[]>((resolve) => {
      this.#pending.set(id, { want: this.#workers.length, got: [], resolve });
      for (const w of this.#workers) {
        w.worker.postMessage({ type: "runtime", id, runtime: wire } satisfies ToWorker);
      }
    });
  }

  /** Starts listeners (in-process or in workers); throws on bind failure. */
  async start(): Promise<void> {
    this.state = "INITIALIZING";
    // as Envoy: the runtime loads before anything reads it (a disk layer that cannot be watched fails start)
    await this.runtime.start();
    for (const ref of this.bootstrap.bootstrap_extensions) {
      const create = ref.ext.create as BootstrapExtensionCreate<unknown>;
      this.#extensions.push(
        await create(ref.config, { stats: this.mainStats, log: new Logger("main", `[${ref.name}] `) }),
      );
    }
    if (this.opts.concurrency <= 1) {
      await prepareTls(this.bootstrap);
      await prepareExtensions(this.bootstrap);
      this.#plane = new DataPlane(this.bootstrap, 0, this.shared, true, {
        drainTimeMs: this.opts.drainTimeMs,
      });
      await this.#plane.start(this.opts.reusePort ?? false);
    } else {
      this.#membership = createClusterManager(this.bootstrap.static_resources.clusters, {
        stats: this.mainStats,
        clock: systemClock,
        log: new Logger("upstream"),
        shared: this.shared,
        healthOwner: true,
        localClusterName: this.bootstrap.cluster_manager?.local_cluster_name,
        locality: this.bootstrap.node?.locality,
      });
      await this.#membership.initialize();
      const starts: Promise<void>[] = [];
      for (let i = 0; i < this.opts.concurrency; i++) starts.push(this.#startWorker(i));
      // every worker has bound or failed before start() answers, so a failure leaves nothing half-started
      const settled = await Promise.allSettled(starts);
      const failed = settled.find((s) => s.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    this.mainStats.gauge("server.concurrency", "never_import").set(this.opts.concurrency);
    this.mainStats.gauge("server.hot_restart_epoch", "never_import").set(this.hotRestart.epoch);
    this.mainStats.gauge("server.hot_restart_generation", "never_import").set(this.hotRestart.generation);
    this.#hdsLrs = await startHdsLrs({
      bootstrap: this.bootstrap,
      stats: this.mainStats,
      owner: (this.#plane?.clusters ?? this.#membership)!,
      arena: this.shared,
      snapshot: () => this.#collectStats(),
    });
    this.#startStatsFlush();
    if (!usesXds(this.bootstrap)) {
      this.state = "LIVE";
      return;
    }
    // xDS: LIVE (and /ready 200) once CDS and LDS finished their initial fetch, as Envoy
    this.#xds = new XdsWiring({
      bootstrap: this.bootstrap,
      stats: this.mainStats,
      owner: (this.#plane?.clusters ?? this.#membership) as DynamicClusterManager,
      applyEverywhere: (u, parsed) => this.#applyEverywhere(u, parsed),
      markWarm: (cluster) => {
        for (const w of this.#workers) {
          w.worker.postMessage({ type: "mark_warm", cluster } satisfies ToWorker);
        }
      },
      routesGaveUp: (name) => {
        this.#plane?.routes.giveUp(name);
        for (const w of this.#workers) {
          w.worker.postMessage({ type: "routes_gave_up", name } satisfies ToWorker);
        }
      },
      statics: this.statics,
      // protobuf and the gRPC transports load only for a bootstrap that has dynamic_resources
      grpc: await import("../xds/grpc.ts"),
    });
    this.#xds.start();
    this.#xds.initialFetch.then(() => {
      if (this.state === "INITIALIZING") this.state = "LIVE";
    });
  }

  #ownStatics: ReturnType<typeof staticNames> | undefined;

  /** Names of the static listeners and clusters (xDS may not change them; a reload updates them). */
  get statics(): ReturnType<typeof staticNames> {
    return this.#plane?.statics ?? (this.#ownStatics ??= staticNames(this.bootstrap));
  }

  /** Resolves when the initial xDS fetch is done (at once without dynamic_resources). */
  get initialized(): Promise<void> {
    return this.#xds?.initialFetch ?? Promise.resolve();
  }

  /** Dynamic resources for /config_dump (empty without xDS). */
  async xdsDump(): Promise<ReturnType<XdsWiring["dump"]> | undefined> {
    if (!this.#xds) return undefined;
    // which replaced or removed listener versions are still draining: the data plane knows (any worker will do,
    // they all apply the same updates)
    let states: ListenerStateInfo[];
    if (this.#plane) states = this.#plane.listenerStates();
    else {
      const replies = await this.#ask("listener_states");
      states = (replies[0] as { states?: ListenerStateInfo[] } | undefined)?.states ?? [];
    }
    return this.#xds.dump(states);
  }

  /**
   * SIGHUP and POST /reload: applies a re-read bootstrap (already validated as `--mode validate` would) through
   * the xDS update path: changed and new static clusters, then listeners (replaced ones drain as on an LDS
   * update), then removed clusters. What cannot change in place (admin, node, dynamic_resources, runtime, stats
   * settings, static secrets) rejects the reload whole and the running config stays. Resolves to a summary;
   * throws with the reason when nothing or only part could be applied.
   */
  async reload(nextRaw: unknown): Promise<string> {
    if (this.state !== "LIVE" && this.state !== "INITIALIZING") {
      throw new Error(`the server is ${this.state.toLowerCase()}: nothing to reload into`);
    }
    if (this.#plane === undefined && this.#workers.length === 0) {
      throw new Error("the server is still starting: reload once it serves");
    }
    const before = this.opts.raw as Record<string, unknown>;
    const after = nextRaw as Record<string, unknown>;
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (key === "static_resources" || deepEqual(before[key], after[key])) continue;
      throw new Error(
        `"${key}" changed, which needs a hot restart (--restart-epoch); the running config stays`,
      );
    }
    const sb = (before.static_resources ?? {}) as Record<string, unknown>;
    const sa = (after.static_resources ?? {}) as Record<string, unknown>;
    for (const key of new Set([...Object.keys(sb), ...Object.keys(sa)])) {
      if (key === "listeners" || key === "clusters" || deepEqual(sb[key], sa[key])) continue;
      throw new Error(
        `"static_resources.${key}" changed, which needs a hot restart (--restart-epoch); the running config stays`,
      );
    }
    const diff = (kind: "listeners" | "clusters") => {
      const named = (list: unknown) =>
        new Map(((list ?? []) as { name: string }[]).map((r) => [r.name, r as unknown] as const));
      const old = named(sb[kind]);
      const now = named(sa[kind]);
      const changed: [string, unknown][] = [...now].filter(([n, r]) => !deepEqual(old.get(n), r));
      const removed = [...old.keys()].filter((n) => !now.has(n));
      return { changed, removed };
    };
    const clusters = diff("clusters");
    const listeners = diff("listeners");
    // validated whole by the caller; each resource is parsed again here, as an xDS update's would be
    const steps: RawUpdate[] = [
      { kind: "cluster", version: "", resources: clusters.changed, removed: [], reload: true },
      {
        kind: "listener",
        version: "",
        resources: listeners.changed,
        removed: listeners.removed,
        reload: true,
      },
      { kind: "cluster", version: "", resources: [], removed: clusters.removed, reload: true },
    ];
    for (const u of steps) {
      if (u.resources.length === 0 && u.removed.length === 0) continue;
      const parsed = parseUpdate(u.kind, u.version, u.resources, u.removed);
      if (typeof parsed === "string") throw new Error(parsed);
      const owner = (this.#plane?.clusters ?? this.#membership) as DynamicClusterManager | undefined;
      if (u.kind === "cluster" && owner) applyToClusters(owner, parsed, this.statics.clusters, true);
      const failed = await this.#applyEverywhere(u, parsed);
      if (failed) throw new Error(failed);
    }
    this.opts.raw = nextRaw;
    const n = (x: { changed: unknown[]; removed: unknown[] }) =>
      `${x.changed.length} changed, ${x.removed.length} removed`;
    return `reloaded: listeners ${n(listeners)}; clusters ${n(clusters)}`;
  }

  /** Applies a validated xDS update to the in-process plane or to every worker (cluster kinds: see XdsWiring). */
  async #applyEverywhere(u: RawUpdate, parsed: ParsedUpdate): Promise<string | undefined> {
    if (this.#plane) {
      // the plane's cluster manager is the health owner, which the wiring updated already
      if (u.kind === "listener" || u.kind === "route") {
        await applyToPlane(this.#plane, parsed, this.#plane.statics, undefined, u.reload);
      }
      return undefined;
    }
    const id = this.#nextId++;
    const replies = await new Promise<FromWorker[]>((resolve) => {
      this.#pending.set(id, { want: this.#workers.length, got: [], resolve });
      for (const w of this.#workers) w.worker.postMessage({ type: "xds", id, update: u } satisfies ToWorker);
    });
    const rs = replies as { error?: string; failed?: string[] }[];
    const error = rs.find((r) => r.error !== undefined)?.error;
    if (error === undefined) return undefined;
    // listeners that failed in some worker: the wiring records the others as applied (as Envoy's LDS)
    const failed = [...new Set(rs.flatMap((r) => r.failed ?? []))];
    if (failed.length > 0) throw new PartialApplyError(error, failed);
    return `Worker rejected the update: ${error}`;
  }

  #startWorker(index: number): Promise<void> {
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    const handle: WorkerHandle = { worker, addresses: [] };
    this.#workers.push(handle);
    return new Promise((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "started") {
          handle.addresses = m.addresses;
          resolve();
        } else if (m.type === "error") {
          log.debug(`worker ${index} failed to start: ${m.message}`);
          reject(new Error(m.message));
        } else if (
          m.type === "stats" || m.type === "reset_counters" || m.type === "xds" ||
          m.type === "listener_states" || m.type === "runtime"
        ) {
          const p = this.#pending.get(m.id);
          if (!p) return;
          p.got.push(m);
          if (p.got.length === p.want) {
            this.#pending.delete(m.id);
            p.resolve(p.got);
          }
        }
      };
      worker.onerror = (e) => {
        log.error(`Worker ${index} failed: ${e.message}`);
        e.preventDefault();
        reject(new Error(e.message));
      };
      const start: ToWorker = {
        type: "start",
        raw: this.opts.raw,
        drainTimeMs: this.opts.drainTimeMs,
        workerIndex: index,
        log: logSettings(),
        shared: this.shared.buffer,
        runtime: toWire(runtime()),
      };
      worker.postMessage(start);
    });
  }

  #ask(type: "stats" | "reset_counters" | "listener_states"): Promise<FromWorker[]> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, { want: this.#workers.length, got: [], resolve });
      for (const w of this.#workers) w.worker.postMessage({ type, id } satisfies ToWorker);
    });
  }

  /**
   * Stats of every worker and the main thread, summed (admin and hot restart); with stats_flush_on_admin the
   * sinks are flushed with the same snapshot, as Envoy flushes when admin reads stats.
   */
  async stats(): Promise<StatsSnapshot> {
    const s = await this.#collectStats();
    if (this.bootstrap.stats_flush_on_admin) this.#flusher?.flushSnapshot(s);
    return s;
  }

  /** Stats of every worker and the main thread, summed. */
  async #collectStats(): Promise<StatsSnapshot> {
    this.#updateServerStats();
    const owner = this.#plane?.clusters ?? this.#membership;
    if (owner) syncClusterHealth(owner);
    if (this.#plane) return mergeSnapshots([this.#plane.stats.snapshot(), this.mainStats.snapshot()]);
    const replies = await this.#ask("stats");
    const parts = replies.map((r) => (r as { snapshot: StatsSnapshot }).snapshot);
    parts.push(this.mainStats.snapshot());
    return mergeSnapshots(parts);
  }

  #updateServerStats(): void {
    const s = this.mainStats;
    s.gauge("server.uptime", "never_import").set(Math.floor((Date.now() - this.startedAt) / 1000));
    const state = this.reportedState;
    s.gauge("server.live", "never_import").set(state === "LIVE" ? 1 : 0);
    s.gauge("server.memory_allocated", "never_import").set(Deno.memoryUsage().heapUsed);
    s.gauge("server.memory_physical_size", "never_import").set(Deno.memoryUsage().rss);
    s.gauge("server.state", "never_import").set(state === "LIVE" ? 0 : state === "DRAINING" ? 1 : 2);
  }

  /** Zeroes counters everywhere. */
  async resetCounters(): Promise<void> {
    this.mainStats.resetCounters();
    if (this.#plane) this.#plane.stats.resetCounters();
    else await this.#ask("reset_counters");
  }

  /** /clusters status: host counters summed across workers; health flags come from the shared state. */
  async clusters(): Promise<ClusterStatus[]> {
    if (this.#plane) return this.#plane.clusterStatus();
    const replies = await this.#ask("stats");
    return mergeClusterStatuses(replies.map((r) => (r as { clusters: ClusterStatus[] }).clusters));
  }

  /** The state admin reports: DRAINING while failing health checks (as Envoy), else the lifecycle state. */
  get reportedState(): Server["state"] {
    return this.state === "LIVE" && this.healthCheckFailed ? "DRAINING" : this.state;
  }

  /** Reopens access log files and the --log-path file here and in every worker (SIGUSR1, /reopen_logs). */
  reopenLogs(): void {
    reopenAccessLogs();
    reopenLogFile();
    for (const w of this.#workers) w.worker.postMessage({ type: "reopen_logs" } satisfies ToWorker);
  }

  /** Hands this thread's log settings (levels, format, path) to every worker (after /logging changes). */
  syncLogSettings(): void {
    const settings = logSettings();
    for (const w of this.#workers) {
      w.worker.postMessage({ type: "log_settings", settings } satisfies ToWorker);
    }
  }

  /** True while the server fails health checks (admin /healthcheck/fail). */
  get healthCheckFailed(): boolean {
    return healthCheckFailed(healthCheckFailSlot(this.shared));
  }

  /** Makes the health_check filter of every worker fail (true) or pass (false) health checks. */
  setHealthCheckFailed(failed: boolean): void {
    setHealthCheckFailed(this.shared, failed);
  }

  /** The cluster manager of this thread that owns health (admin /debug/route previews hosts with it). */
  get healthOwner(): ClusterManager | undefined {
    return this.#plane?.clusters ?? this.#membership;
  }

  /** Listener names and bound addresses. */
  listeners(): ListenerAddress[] {
    if (this.#plane) return this.#plane.addresses();
    return this.#workers[0]?.addresses ?? [];
  }

  /**
   * Admin /drain_listeners: listeners stop accepting, at once or (`graceful`) after `--drain-time-s` during which
   * connections are told to drain (as --drain-strategy says); the server then reports DRAINING. A graceful
   * drain ends the process at its end unless `skipExit`, as Envoy.
   */
  drainListeners(
    o: { inboundOnly: boolean; graceful: boolean; skipExit: boolean; strategy: "gradual" | "immediate" },
  ): void {
    const graceMs = this.opts.drainTimeMs ?? 0;
    const msg = {
      inboundOnly: o.inboundOnly,
      graceful: o.graceful,
      graceMs,
      spreadMs: o.strategy === "gradual" ? graceMs : 0,
    };
    if (o.graceful) this.state = "DRAINING";
    this.#plane?.drainListeners(msg);
    for (const w of this.#workers) {
      w.worker.postMessage({ type: "drain_listeners", ...msg } satisfies ToWorker);
    }
    if (o.graceful && !o.skipExit) {
      const t = setTimeout(() => this.quit(), graceMs);
      this.quitRequested.then(() => clearTimeout(t));
    }
  }

  /** Asks the process to stop (admin /quitquitquit, signals). */
  quit(): void {
    this.#quit?.();
  }

  /**
   * The stats of every event loop as they were when `stop` ended the workers (a hot restart hands them to the
   * next process); undefined before.
   */
  finalStats: StatsSnapshot | undefined;

  /**
   * Stops every listener and worker; waits up to `graceMs` for connections to finish (`drain`: how they are
   * told).
   */
  async stop(graceMs = 0, drain: DrainOptions = {}): Promise<void> {
    this.state = "DRAINING";
    await this.#stopStatsFlush();
    // before any listener drains: extensions that must act while new connections are still taken (deregister)
    await Promise.all(
      this.#extensions.map((e) =>
        e.drain?.().catch((err) => new Logger("main").warn(`bootstrap extension drain failed: ${err}`))
      ),
    );
    await this.#hdsLrs?.close();
    await this.#xds?.close();
    this.runtime.close();
    const last: StatsSnapshot[] = [];
    if (this.#plane) {
      await this.#plane.stop(graceMs, drain);
      last.push(this.#plane.stats.snapshot());
    }
    this.#membership?.close();
    await Promise.all(this.#workers.map((w) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          w.worker.terminate();
          resolve();
        }, graceMs + 2000);
        w.worker.onmessage = (e: MessageEvent<FromWorker>) => {
          if (e.data.type === "stopped") {
            if (e.data.snapshot) last.push(e.data.snapshot);
            clearTimeout(t);
            w.worker.terminate();
            resolve();
          }
        };
        w.worker.postMessage({ type: "stop", graceMs, drain } satisfies ToWorker);
      })
    ));
    this.#workers = [];
    this.#updateServerStats();
    last.push(this.mainStats.snapshot());
    this.finalStats = mergeSnapshots(last);
    if (runtime() === this.runtime.snapshot) setRuntime(EMPTY_SNAPSHOT);
    const exts = this.#extensions;
    this.#extensions = [];
    await Promise.all(exts.map((e) => e.close()));
  }
}
