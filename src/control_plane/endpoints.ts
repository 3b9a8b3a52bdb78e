/**
 * Where the control plane reads hosts: the registry in the same process (its change notifications push at
 * once), or a remote registry's v1 API polled for the services the build names (`GET
 * /v1/registration/:service`, every `refreshMs`, a few at a time). A remote registry that fails costs
 * freshness only: the last hosts read are kept and served, and `registry_errors` counts the failures.
 */
import { Logger } from "../common/log.ts";
import type { Registry } from "../discovery/registry.ts";
import type { HostJson, HostRecord } from "../discovery/types.ts";
import type { Counter, Scope } from "../stats/store.ts";

const log = new Logger("control-plane");

/** The hosts of services, and word when they change. */
export interface EndpointSource {
  /** The live hosts of `service`; rejects when they cannot be read and nothing is cached. */
  hosts(service: string): Promise<readonly HostRecord[]>;
  /** Every service the registry knows (for the mesh report); rejects when it cannot say. */
  services(): Promise<string[]>;
  /** Told when hosts of a service (or, null, of any) may have changed. */
  readonly changeListeners: Set<(service: string | null) => void>;
  /** The services the build needs (a polling source reads these). */
  watch(services: ReadonlySet<string>): void;
  close(): Promise<void>;
}

/** Hosts from a Registry in the same process. */
export class LocalEndpoints implements EndpointSource {
  readonly registry: Registry;
  readonly changeListeners = new Set<(service: string | null) => void>();
  readonly #forward: (service: string | null) => void;

  constructor(registry: Registry) {
    this.registry = registry;
    this.#forward = (s) => {
      for (const l of this.changeListeners) l(s);
    };
    registry.changeListeners.add(this.#forward);
  }

  async hosts(service: string): Promise<readonly HostRecord[]> {
    return (await this.registry.hosts(service)).hosts;
  }

  services(): Promise<string[]> {
    return this.registry.services();
  }

  watch(): void {}

  close(): Promise<void> {
    this.registry.changeListeners.delete(this.#forward);
    return Promise.resolve();
  }
}

/** Options of RemoteEndpoints. */
export interface RemoteEndpointsOptions {
  /** The registry's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** How often watched services are re-read (default 5000 ms). */
  refreshMs?: number;
  /** Reads in flight at once (default 16). */
  concurrency?: number;
  /** Per-request timeout (default 2000 ms). */
  timeoutMs?: number;
  stats: Scope;
}

/** Hosts from a remote registry's v1 API, polled. */
export class RemoteEndpoints implements EndpointSource {
  readonly changeListeners = new Set<(service: string | null) => void>();
  readonly #base: string;
  readonly #refreshMs: number;
  readonly #concurrency: number;
  readonly #timeoutMs: number;
  readonly #cache = new Map<string, { key: string; hosts: HostRecord[] }>();
  #watched: ReadonlySet<string> = new Set();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<void> | undefined;
  #closed = false;
  readonly #c: { errors: Counter; reads: Counter };
  readonly #abort = new AbortController();

  constructor(opts: RemoteEndpointsOptions) {
    this.#base = opts.url.replace(/\/+$/, "");
    this.#refreshMs = opts.refreshMs ?? 5000;
    this.#concurrency = opts.concurrency ?? 16;
    this.#timeoutMs = opts.timeoutMs ?? 2000;
    this.#c = { errors: opts.stats.counter("registry_errors"), reads: opts.stats.counter("registry_reads") };
  }

  async hosts(service: string): Promise<readonly HostRecord[]> {
    const c = this.#cache.get(service);
    if (c) return c.hosts;
    await this.#read(service);
    const r = this.#cache.get(service);
    if (!r) throw new Error(`registry ${this.#base} did not answer for ${service}`);
    return r.hosts;
  }

  async services(): Promise<string[]> {
    // the v1 API has no list: the services read so far
    return await Promise.resolve([...this.#cache.keys()].sort());
  }

  watch(services: ReadonlySet<string>): void {
    this.#watched = services;
    for (const s of [...this.#cache.keys()]) if (!services.has(s)) this.#cache.delete(s);
    if (this.#timer === undefined && !this.#closed) this.#arm(0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#round;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#round = this.#poll().finally(() => {
        this.#round = undefined;
        if (!this.#closed) this.#arm(this.#refreshMs);
      });
    }, ms);
  }

  async #poll(): Promise<void> {
    const names = [...this.#watched];
    let next = 0;
    const worker = async () => {
      while (next < names.length && !this.#closed) {
        const s = names[next++];
        if (await this.#read(s)) { for (const l of this.changeListeners) l(s); }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, names.length) }, worker));
  }

  /** Reads one service; true when its hosts changed. A failure keeps what was read before. */
  async #read(service: string): Promise<boolean> {
    this.#c.reads.inc();
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#timeoutMs)]);
    try {
      const res = await fetch(`${this.#base}/v1/registration/${encodeURIComponent(service)}`, { signal });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status}`);
      }
      const body = await res.json() as { hosts?: HostJson[] };
      const hosts: HostRecord[] = (body.hosts ?? []).map((h) => ({
        service,
        ip_address: h.ip_address,
        port: h.port,
        revision: h.revision ?? "",
        service_repo_name: h.service_repo_name ?? "",
        last_check_in: Date.parse(h.last_check_in) || 0,
        tags: h.tags ?? {},
      }));
      const key = JSON.stringify(hosts.map((h) => [h.ip_address, h.port, h.tags]));
      const old = this.#cache.get(service);
      this.#cache.set(service, { key, hosts });
      return old === undefined || old.key !== key;
    } catch (e) {
      if (this.#closed) return false;
      this.#c.errors.inc();
      log.warn(
        `registry ${this.#base}: cannot read ${service}: ${(e as Error).message}; keeping the last hosts`,
      );
      return false;
    }
  }
}
