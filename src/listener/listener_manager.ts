/**
 * Envoy's listener manager for one event loop: static listeners from the bootstrap, and listeners added,
 * updated and removed at run time (LDS). A new or updated listener warms until its filter factories are ready
 * (RDS routes arrived), then takes new connections at once: an updated listener whose address is unchanged
 * takes over the listening socket of the one it replaces (`Listener.takeOver`), any other binds (reusePort).
 * The listener it replaces stops accepting (closing its socket unless handed over) and drains, and its
 * factories are closed once the drain is over. Static listeners cannot be changed.
 */
import { Logger } from "../common/log.ts";
import type { ListenerConfig } from "../config/listener.ts";
import type { NetworkFilterFactory } from "../network/filter.ts";
import type { Counter, Gauge, StatsStore } from "../stats/store.ts";
import type { Listener } from "./listener.ts";

/** How a shutdown tells connections to drain. */
export interface DrainOptions {
  /** Tell connections at random moments over this many ms instead of all at once (--drain-strategy gradual). */
  spreadMs?: number;
  /** Keep idle HTTP/1.1 keep-alive connections until their next response (no client races a close). */
  keepIdle?: boolean;
}

const log = new Logger("config");

/** A listener with the factories built for it (closed when it is retired). */
export interface BuiltListener {
  listener: Listener;
  factories: NetworkFilterFactory[];
}

/** What `addOrUpdate` did. */
export type ListenerUpdateResult = "added" | "updated" | "unchanged";

/** Where a listener is in its life, as /config_dump reports it. */
export type ListenerState = "warming" | "active" | "draining";

/** One listener version known to the manager. */
export interface ManagedListener {
  /** Listener name. */
  readonly name: string;
  /** version_info of the LDS update that made it ("" for static ones). */
  readonly version: string;
  /** The parsed config (static ones included). */
  readonly config: ListenerConfig;
  /** True for bootstrap listeners. */
  readonly isStatic: boolean;
  /** Wall-clock ms when it was added or updated. */
  readonly lastUpdated: number;
  /** The bound (or to-be-bound) listener. */
  readonly listener: Listener;
  /** Its network filter factories. */
  readonly factories: NetworkFilterFactory[];
  /** Identity of the config, compared on update. */
  readonly hash: string;
}

interface Entry extends ManagedListener {
  /** Resolved when it leaves the warming set (active, superseded, removed or failed). */
  leftWarming: Promise<void>;
  leave: () => void;
}

/** Options of a ListenerManager. */
export interface ListenerManagerOptions {
  /** The data plane's stats store (`listener_manager.*`). */
  stats: StatsStore;
  /** Builds listener and factories from a parsed config; throws when the config cannot be built. */
  build(config: ListenerConfig): BuiltListener;
  /** How long a replaced or removed listener drains before its connections are closed (Envoy: 600 s). */
  drainTimeMs: number;
  /** Wall clock in ms (for last_updated). */
  now(): number;
}

/** Options of `addOrUpdate`. */
export interface AddOrUpdateOptions {
  /**
   * The resource as received (JSON-able), compared with the previous one to tell an update from a repeat;
   * absent: the parsed config is compared.
   */
  raw?: unknown;
  /**
   * A bootstrap reload (SIGHUP, POST /reload): the listener is static and may replace a static one, which
   * drains as an LDS update's would.
   */
  static?: boolean;
}

/** Runs at load/update time: a stable identity for a parsed or raw listener config. */
export function configHash(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v instanceof RegExp) return `/${v.source}/${v.flags}`;
    if (v instanceof Map) return [...v.entries()];
    if (v instanceof Set) return [...v.values()];
    if (v instanceof Uint8Array) return [...v];
    // an extension reference's registered extension: its name says enough
    if (v !== null && typeof v === "object" && typeof v.category === "string" && "create" in v) return v.name;
    return v;
  });
}

/** Static and dynamic listeners of one event loop with Envoy's LDS semantics. */
export class ListenerManager {
  readonly #active = new Map<string, Entry>();
  readonly #warming = new Map<string, Entry>();
  readonly #draining = new Set<Entry>();
  readonly #retiring = new Set<Promise<void>>();
  readonly #opts: ListenerManagerOptions;
  readonly #added: Counter;
  readonly #modified: Counter;
  readonly #removed: Counter;
  readonly #createFailure: Counter;
  readonly #gWarming: Gauge;
  readonly #gActive: Gauge;
  readonly #gDraining: Gauge;
  #stopped = false;

  constructor(opts: ListenerManagerOptions) {
    this.#opts = opts;
    const s = opts.stats.scope("listener_manager");
    this.#added = s.counter("listener_added");
    this.#modified = s.counter("listener_modified");
    this.#removed = s.counter("listener_removed");
    this.#createFailure = s.counter("listener_create_failure");
    this.#gWarming = s.gauge("total_listeners_warming");
    this.#gActive = s.gauge("total_listeners_active");
    this.#gDraining = s.gauge("total_listeners_draining");
  }

  /** Runs at construction of the data plane: a bootstrap listener (bound by `startStatic`). */
  addStatic(config: ListenerConfig): void {
    const e = this.#entry(config, "", true, configHash(config));
    this.#active.set(config.name, e);
    this.#gauges();
  }

  /**
   * Runs at start: binds every static listener; when one cannot be bound, stops those already bound, waits
   * until their ports are released and throws (`onError` names it).
   */
  async startStatic(reusePort: boolean, onError: (l: Listener, err: unknown) => Error): Promise<void> {
    for (const e of this.#active.values()) {
      if (!e.isStatic) continue;
      try {
        e.listener.start(reusePort);
      } catch (err) {
        const all = [...this.#active.values()].map((o) => o.listener);
        for (const other of all) other.stopAccepting();
        await Promise.all(all.map((o) => o.released()));
        throw onError(e.listener, err);
      }
    }
  }

  /**
   * Runs on an LDS update: adds a listener, replaces the one of the same name when its config differs, or does
   * nothing when it is the same. Resolves once the update is accepted: a listener with nothing to wait for is
   * bound (a bind failure rejects and changes nothing); one whose routes have not arrived warms in the
   * background (see `whenWarm`). Rejects, changing nothing, for a static listener's name or a config that
   * cannot be built.
   */
  addOrUpdate(config: ListenerConfig, version: string, opts: AddOrUpdateOptions = {}): ListenerUpdateResult {
    const name = config.name;
    if (this.#stopped) throw new Error(`Listener "${name}" cannot be added: the data plane is stopping`);
    const current = this.#active.get(name);
    if (current?.isStatic && !opts.static) {
      throw new Error(`Listener "${name}" is static (from the bootstrap) and cannot be changed by xDS`);
    }
    const hash = configHash(opts.raw ?? config);
    const latest = this.#warming.get(name) ?? current;
    if (latest?.hash === hash) return "unchanged";
    const e = this.#entry(config, version, opts.static ?? false, hash);
    const pending = e.factories.map((f) => f.whenReady?.()).filter((p) => p !== undefined);
    const superseded = this.#warming.get(name);
    if (pending.length === 0) {
      this.#activate(e, true); // throws on a bind failure, before anything changed
    } else {
      this.#warming.set(name, e);
      Promise.all(pending).then(() => {
        if (this.#warming.get(name) !== e) return; // superseded or removed meanwhile
        try {
          this.#activate(e, false);
        } catch (err) {
          log.error((err as Error).message);
        }
      });
    }
    if (superseded !== undefined) this.#dropWarming(superseded);
    (latest === undefined ? this.#added : this.#modified).inc();
    this.#gauges();
    return latest === undefined ? "added" : "updated";
  }

  /**
   * Runs on an LDS update: the listener stops accepting at once and drains in the background (its
   * factories are closed after). False when no such listener; throws for a static one unless `reload` (a
   * bootstrap reload removes static listeners).
   */
  remove(name: string, reload = false): boolean {
    const a = this.#active.get(name);
    if (a?.isStatic && !reload) {
      throw new Error(`Listener "${name}" is static (from the bootstrap) and cannot be removed by xDS`);
    }
    const w = this.#warming.get(name);
    if (w === undefined && a === undefined) return false;
    if (w !== undefined) this.#dropWarming(w);
    if (a !== undefined) {
      this.#active.delete(name);
      this.#retire(a);
    }
    this.#removed.inc();
    this.#gauges();
    return true;
  }

  /**
   * Admin /drain_listeners: every active listener (only `traffic_direction: INBOUND` ones with `inboundOnly`)
   * stops accepting; with `graceful` its connections are first told to drain (spread over `spreadMs`) while it
   * keeps accepting for `graceMs`. Connections are not closed: they end on their own or at shutdown.
   */
  drainListeners(o: { inboundOnly: boolean; graceful: boolean; graceMs: number; spreadMs: number }): void {
    for (const e of this.#active.values()) {
      if (o.inboundOnly && e.config.traffic_direction !== "INBOUND") continue;
      if (!o.graceful) {
        e.listener.stopAccepting();
        continue;
      }
      e.listener.discourage(o.spreadMs);
      const t = setTimeout(() => e.listener.stopAccepting(), o.graceMs);
      this.#drainTimers.add(t);
    }
  }

  readonly #drainTimers = new Set<ReturnType<typeof setTimeout>>();

  /** Resolves once no listener named `name` is warming (it became active, was removed or failed to bind). */
  async whenWarm(name: string): Promise<void> {
    for (let w = this.#warming.get(name); w !== undefined; w = this.#warming.get(name)) await w.leftWarming;
  }

  /** Resolves once every replaced or removed listener has drained and its factories are closed. */
  async drained(): Promise<void> {
    while (this.#retiring.size > 0) await Promise.all([...this.#retiring]);
  }

  /** Listeners taking connections (static and dynamic), in the order they were added. */
  activeListeners(): Listener[] {
    return [...this.#active.values()].map((e) => e.listener);
  }

  /** Every listener version with its state (for /config_dump and /listeners). */
  list(): { state: ListenerState; listener: ManagedListener }[] {
    return [
      ...[...this.#active.values()].map((l) => ({ state: "active" as const, listener: l })),
      ...[...this.#warming.values()].map((l) => ({ state: "warming" as const, listener: l })),
      ...[...this.#draining].map((l) => ({ state: "draining" as const, listener: l })),
    ];
  }

  /**
   * Runs at shutdown: drops warming listeners, drains the rest for up to `graceMs`, closes every factory.
   * `drain.spreadMs` tells connections over that window (--drain-strategy gradual); `drain.keepIdle` (a hot
   * restart's hand-over) keeps idle HTTP/1.1 connections until their next response, as LDS updates do.
   */
  async stop(graceMs: number, drain: DrainOptions = {}): Promise<void> {
    this.#stopped = true;
    for (const t of this.#drainTimers) clearTimeout(t);
    for (const w of [...this.#warming.values()]) this.#dropWarming(w);
    const active = [...this.#active.values()];
    this.#active.clear();
    for (const a of active) a.listener.stopAccepting();
    // a listener already draining has its drain cut to the shutdown's grace
    await Promise.all([
      ...active.map((a) => a.listener.drainAndClose(graceMs, drain.keepIdle ?? false, drain.spreadMs ?? 0)),
      ...[...this.#draining].map((d) => d.listener.drainAndClose(graceMs)),
    ]);
    await Promise.all(active.map((a) => closeFactories(a.factories)));
    await this.drained();
    this.#gauges();
  }

  #entry(config: ListenerConfig, version: string, isStatic: boolean, hash: string): Entry {
    const built = this.#opts.build(config);
    let leave!: () => void;
    const leftWarming = new Promise<void>((r) => leave = r);
    return {
      name: config.name,
      version,
      config,
      isStatic,
      lastUpdated: this.#opts.now(),
      listener: built.listener,
      factories: built.factories,
      hash,
      leftWarming,
      leave,
    };
  }

  /**
   * Makes a warm listener active and retires the one it replaces. When the address (and the socket kind, see
   * `Listener.takeOver`) is the same, the new version takes over the old one's listening socket: no second
   * bind, no close, so nothing queued on it is lost (Envoy does the same); only the filter chains new
   * connections get change. Otherwise it binds with reusePort; on a bind failure drops it and throws.
   */
  #activate(e: Entry, sync: boolean): void {
    const old = this.#active.get(e.name);
    try {
      if (old === undefined || !e.listener.takeOver(old.listener)) e.listener.start(true);
    } catch (err) {
      this.#createFailure.inc();
      if (this.#warming.get(e.name) === e) this.#warming.delete(e.name);
      e.leave();
      void closeFactories(e.factories);
      this.#gauges();
      const l = e.listener.spec;
      throw new Error(`Listener "${e.name}" cannot bind ${l.hostname}:${l.port}: ${(err as Error).message}`);
    }
    if (this.#warming.get(e.name) === e) this.#warming.delete(e.name);
    e.leave();
    this.#active.set(e.name, e);
    if (old !== undefined) this.#retire(old);
    if (!sync) this.#gauges();
    log.info(`Listener "${e.name}" ${old ? "updated" : "added"} (version ${e.version || "-"})`);
  }

  #dropWarming(e: Entry): void {
    if (this.#warming.get(e.name) === e) this.#warming.delete(e.name);
    e.leave();
    void closeFactories(e.factories);
  }

  /** Stops accepting now, drains, then closes the factories. */
  #retire(e: Entry): void {
    this.#draining.add(e);
    const done = e.listener.drainAndClose(this.#opts.drainTimeMs, true)
      .then(() => closeFactories(e.factories))
      .catch((err) => log.error(`Listener "${e.name}" drain failed: ${(err as Error).message}`))
      .finally(() => {
        this.#draining.delete(e);
        this.#retiring.delete(done);
        this.#gauges();
      });
    this.#retiring.add(done);
  }

  #gauges(): void {
    this.#gWarming.set(this.#warming.size);
    this.#gActive.set(this.#active.size);
    this.#gDraining.set(this.#draining.size);
  }
}

async function closeFactories(factories: NetworkFilterFactory[]): Promise<void> {
  await Promise.all(factories.map((f) => {
    try {
      return f.close?.();
    } catch (err) {
      log.error(`Closing a filter factory failed: ${(err as Error).message}`);
    }
  }));
}
