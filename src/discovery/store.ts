/**
 * Where the registry keeps hosts: the store contract and the in-memory store (the default, and the embedded
 * one). Stores keep what they are told; the TTL is applied by the Registry (reads) and by `sweep` (removal).
 */
import { hostKey, type HostRecord, type Registration } from "./types.ts";

/** A host store; every method may reject (a remote store that is down), the registry copes. */
export interface RegistryStore {
  /** "memory" or "redis", for logs and /healthcheck. */
  readonly kind: string;
  /** Creates or replaces the host (service, ip, port) with last_check_in = `now` (epoch ms). */
  register(service: string, host: Registration, now: number): Promise<void>;
  /** Every stored host of `service` (expired ones too), in a stable order (ip, then port). */
  hosts(service: string): Promise<HostRecord[]>;
  /** Every stored host whose service_repo_name is `repo`, ordered by service, ip, port. */
  hostsOfRepo(repo: string): Promise<HostRecord[]>;
  /** Removes every port of `ip` under `service`; resolves with how many hosts went. */
  deregister(service: string, ip: string): Promise<number>;
  /** Removes hosts whose last_check_in is before `cutoff` (epoch ms); resolves with how many went. */
  sweep(cutoff: number): Promise<number>;
  /** Names of services with at least one stored host. */
  services(): Promise<string[]>;
  /** False while the store is known to be unreachable. */
  healthy(): boolean;
  /** Releases connections. */
  close(): Promise<void>;
}

/** Orders hosts by service, ip, then port (what every read returns). */
export function compareHosts(a: HostRecord, b: HostRecord): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  if (a.ip_address !== b.ip_address) return a.ip_address < b.ip_address ? -1 : 1;
  return a.port - b.port;
}

/** Hosts in process memory: one Map per service keyed by `ip:port`. */
export class MemoryStore implements RegistryStore {
  readonly kind: string = "memory";
  #services = new Map<string, Map<string, HostRecord>>();

  /** See RegistryStore.register. */
  register(service: string, host: Registration, now: number): Promise<void> {
    let m = this.#services.get(service);
    if (!m) this.#services.set(service, m = new Map());
    m.set(hostKey(host.ip_address, host.port), { service, ...host, last_check_in: now });
    return Promise.resolve();
  }

  /** See RegistryStore.hosts. */
  hosts(service: string): Promise<HostRecord[]> {
    const m = this.#services.get(service);
    return Promise.resolve(m ? [...m.values()].sort(compareHosts) : []);
  }

  /** See RegistryStore.hostsOfRepo. */
  hostsOfRepo(repo: string): Promise<HostRecord[]> {
    const out: HostRecord[] = [];
    for (const m of this.#services.values()) {
      for (const h of m.values()) if (h.service_repo_name === repo) out.push(h);
    }
    return Promise.resolve(out.sort(compareHosts));
  }

  /** See RegistryStore.deregister. */
  deregister(service: string, ip: string): Promise<number> {
    const m = this.#services.get(service);
    let n = 0;
    if (m) {
      for (const [k, h] of m) {
        if (h.ip_address === ip) {
          m.delete(k);
          n++;
        }
      }
      if (m.size === 0) this.#services.delete(service);
    }
    return Promise.resolve(n);
  }

  /** See RegistryStore.sweep. */
  sweep(cutoff: number): Promise<number> {
    let n = 0;
    for (const [service, m] of this.#services) {
      for (const [k, h] of m) {
        if (h.last_check_in < cutoff) {
          m.delete(k);
          n++;
        }
      }
      if (m.size === 0) this.#services.delete(service);
    }
    return Promise.resolve(n);
  }

  /** See RegistryStore.services. */
  services(): Promise<string[]> {
    return Promise.resolve([...this.#services.keys()].sort());
  }

  /** Always true. */
  healthy(): boolean {
    return true;
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
