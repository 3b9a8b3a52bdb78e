/**
 * The registry's logic over a store: check-ins, reads that never return expired hosts, the sweeper, and reads
 * from the last good answer (flagged stale) while the store is unreachable. Time comes from an injected Clock.
 */
import { type Clock, systemClock, type TimerHandle } from "../common/clock.ts";
import { Logger } from "../common/log.ts";
import type { Counter, StatsStore } from "../stats/store.ts";
import type { RegistryStore } from "./store.ts";
import { checkIp, checkName, type HostRecord, parseRegistration } from "./types.ts";

const log = new Logger("discovery");
/** Reads remembered for stale answers (services and repos); the oldest is forgotten beyond this. */
const MAX_CACHED = 100_000;

/** The store failed and no cached answer exists; the HTTP layer answers 503. */
export class StoreUnavailableError extends Error {
  /** Wraps `message`. */
  constructor(message: string) {
    super(message);
    this.name = "StoreUnavailableError";
  }
}

/** A read: the hosts, and whether they come from the cache because the store failed. */
export interface HostsRead {
  hosts: HostRecord[];
  stale: boolean;
}

/** Options of Registry. */
export interface RegistryOptions {
  store: RegistryStore;
  /** Stats are counted under `discovery.`. */
  stats: StatsStore;
  /** A host not checked in for this long is expired (default 600 000 ms). */
  ttlMs?: number;
  /** Sweeper period (default 30 000 ms); 0 disables the sweeper. */
  sweepIntervalMs?: number;
  clock?: Clock;
}

/** Lyft's registry semantics over a RegistryStore; see the file comment. */
export class Registry {
  readonly store: RegistryStore;
  readonly ttlMs: number;
  readonly sweepIntervalMs: number;
  readonly stats: StatsStore;
  readonly #clock: Clock;
  readonly #cache = new Map<string, HostRecord[]>();
  readonly #c: Record<
    | "registrations"
    | "deregistrations"
    | "swept"
    | "sweeps"
    | "store_error"
    | "stale_reads"
    | "bad_requests",
    Counter
  >;
  #timer: TimerHandle | undefined;
  #closed = false;
  #failing = false;
  /** Told after a write that may change a service's hosts (null: any service, after a sweep). */
  readonly changeListeners = new Set<(service: string | null) => void>();
  /** The sweep in progress (tests await it after advancing a ManualClock). */
  sweeping: Promise<number> | undefined;

  /** Wraps `opts.store`; call `start()` to run the sweeper. */
  constructor(opts: RegistryOptions) {
    this.store = opts.store;
    this.stats = opts.stats;
    this.ttlMs = opts.ttlMs ?? 600_000;
    this.sweepIntervalMs = opts.sweepIntervalMs ?? 30_000;
    this.#clock = opts.clock ?? systemClock;
    const s = opts.stats.scope("discovery.");
    this.#c = {
      registrations: s.counter("registrations"),
      deregistrations: s.counter("deregistrations"),
      swept: s.counter("swept"),
      sweeps: s.counter("sweeps"),
      store_error: s.counter("store_error"),
      stale_reads: s.counter("stale_reads"),
      bad_requests: s.counter("bad_requests"),
    };
  }

  /** Counts a request rejected for bad input (called by the HTTP layer). */
  badRequest(): void {
    this.#c.bad_requests.inc();
  }

  /** Validates and stores a check-in of `service`; throws BadRequestError or StoreUnavailableError. */
  async register(service: string, body: unknown): Promise<void> {
    checkName(service);
    const host = parseRegistration(body);
    try {
      await this.store.register(service, host, this.#clock.now());
    } catch (e) {
      throw this.#storeFailed(e);
    }
    this.#ok();
    this.#c.registrations.inc();
    this.#changed(service);
  }

  /** Removes every port of `ip` under `service`; resolves with how many hosts went. */
  async deregister(service: string, ip: string): Promise<number> {
    checkName(service);
    checkIp(ip);
    let n;
    try {
      n = await this.store.deregister(service, ip);
    } catch (e) {
      throw this.#storeFailed(e);
    }
    this.#c.deregistrations.inc(n);
    if (n > 0) this.#changed(service);
    return n;
  }

  /** The live hosts of `service` (expired ones filtered out even if not swept yet). */
  hosts(service: string): Promise<HostsRead> {
    checkName(service);
    return this.#read(`s:${service}`, () => this.store.hosts(service));
  }

  /** The live hosts of every service registered from `repo`. */
  hostsOfRepo(repo: string): Promise<HostsRead> {
    checkName(repo, "repo");
    return this.#read(`r:${repo}`, () => this.store.hostsOfRepo(repo));
  }

  /** Names of services with stored hosts (a wildcard EDS request); throws StoreUnavailableError. */
  async services(): Promise<string[]> {
    try {
      return await this.store.services();
    } catch (e) {
      throw this.#storeFailed(e);
    }
  }

  /** Removes expired hosts from the store now; resolves with how many went. */
  async sweep(): Promise<number> {
    const n = await this.store.sweep(this.#clock.now() - this.ttlMs);
    this.#c.sweeps.inc();
    this.#c.swept.inc(n);
    if (n > 0) {
      log.debug(`swept ${n} expired host(s)`);
      this.#changed(null);
    }
    return n;
  }

  /** Starts the periodic sweeper (no-op when the interval is 0). */
  start(): void {
    if (this.sweepIntervalMs > 0 && this.#timer === undefined && !this.#closed) this.#arm();
  }

  /** Stops the sweeper and waits for a sweep in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    await this.sweeping?.catch(() => {});
  }

  #arm(): void {
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      this.sweeping = this.sweep().catch((e) => {
        this.#storeFailed(e);
        return 0;
      }).finally(() => {
        this.sweeping = undefined;
        if (!this.#closed) this.#arm();
      });
    }, this.sweepIntervalMs);
  }

  async #read(key: string, load: () => Promise<HostRecord[]>): Promise<HostsRead> {
    let all: HostRecord[];
    try {
      all = await load();
    } catch (e) {
      const err = this.#storeFailed(e);
      const cached = this.#cache.get(key);
      if (!cached) throw err;
      this.#c.stale_reads.inc();
      // hosts cannot check in while the store is down, so the cache is served as last seen, not expired
      return { hosts: cached, stale: true };
    }
    const cutoff = this.#clock.now() - this.ttlMs;
    const hosts = all.filter((h) => h.last_check_in >= cutoff);
    this.#ok();
    if (!this.#cache.has(key) && this.#cache.size >= MAX_CACHED) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(key, hosts);
    return { hosts, stale: false };
  }

  #changed(service: string | null): void {
    for (const l of this.changeListeners) l(service);
  }

  #storeFailed(e: unknown): StoreUnavailableError {
    this.#c.store_error.inc();
    const msg = `${this.store.kind} store unavailable: ${(e as Error).message}`;
    if (!this.#failing) log.warn(`${msg}; reads answer from the cache until it is back`);
    this.#failing = true;
    return new StoreUnavailableError(msg);
  }

  #ok(): void {
    if (!this.#failing) return;
    this.#failing = false;
    log.info(`${this.store.kind} store reachable again`);
  }
}
