/**
 * Membership discovery for STATIC, STRICT_DNS and LOGICAL_DNS clusters. DNS clusters re-resolve every
 * dns_refresh_rate; a failed resolution keeps the current hosts; an unchanged address keeps its Host.
 */
import type { Clock, TimerHandle } from "../common/clock.ts";
import type { Logger } from "../common/log.ts";
import type { ClusterImpl } from "./cluster.ts";
import type { ClusterConfig } from "./config.ts";
import { type Resolver, selectFamily } from "./dns.ts";
import { HostImpl, type HostOptions } from "./host.ts";

/** Keeps a cluster's membership up to date. */
export interface Discovery {
  /** Starts discovery; resolves after the first round (success or failure). Idempotent. */
  initialize(): Promise<void>;
  /** Stops refresh timers; in-flight lookups are ignored. */
  close(): void;
}

/** One lb_endpoint of the config. */
interface Target {
  name: string;
  port: number;
  /** Host options from the lb_endpoint and its locality (hostname as configured). */
  opts: HostOptions;
  /** The lb_endpoint's health_status. */
  status: string;
  hosts: HostImpl[];
}

/** "region/zone/sub_zone" of a locality ("" when absent); hosts of one locality share it. */
export function localityKey(l: { region?: string; zone?: string; sub_zone?: string } | undefined): string {
  return l === undefined ? "" : `${l.region ?? ""}/${l.zone ?? ""}/${l.sub_zone ?? ""}`;
}

/** Every lb_endpoint of `config` as a Target. */
function targets(config: ClusterConfig): Target[] {
  const out: Target[] = [];
  for (const l of config.load_assignment?.endpoints ?? []) {
    const locality = localityKey(l.locality);
    for (const e of l.lb_endpoints) {
      const sa = e.endpoint.address.socket_address;
      out.push({
        name: sa.address,
        port: sa.port_value,
        opts: {
          hostname: e.endpoint.hostname,
          weight: e.load_balancing_weight,
          priority: l.priority,
          locality,
          localityWeight: l.load_balancing_weight ?? 0,
          metadata: e.metadata?.filter_metadata,
        },
        status: e.health_status,
        hosts: [],
      });
    }
  }
  return out;
}

/** A host of target `t` at `address` with its EDS health status applied. */
function hostOf(t: Target, address: string, opts: HostOptions): HostImpl {
  const h = new HostImpl(address, t.port, opts);
  h.setEdsHealth(t.status);
  return h;
}

/** Sets the hosts of a STATIC cluster (addresses are IPs) at once. */
export function staticDiscovery(cluster: ClusterImpl): Discovery {
  const hosts = targets(cluster.config).map((t) => hostOf(t, t.name, t.opts));
  cluster.setHosts(hosts);
  return { initialize: () => Promise.resolve(), close: () => {} };
}

/** Discovery for STRICT_DNS (all addresses of every name) and LOGICAL_DNS (first address of one name). */
export class DnsDiscovery implements Discovery {
  readonly #cluster: ClusterImpl;
  readonly #resolver: Resolver;
  readonly #clock: Clock;
  readonly #log?: Logger;
  readonly #targets: Target[];
  readonly #logical: boolean;
  #first: Promise<void> | null = null;
  #timer: TimerHandle | null = null;
  #closed = false;

  constructor(cluster: ClusterImpl, deps: { resolver: Resolver; clock: Clock; log?: Logger }) {
    this.#cluster = cluster;
    this.#resolver = deps.resolver;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#targets = targets(cluster.config);
    this.#logical = cluster.config.type === "LOGICAL_DNS";
  }

  initialize(): Promise<void> {
    return this.#first ??= this.#safeRound();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
  }

  /** Resolves every target once, applies the result, and schedules the next round. */
  async #round(): Promise<void> {
    const changed = await Promise.all(this.#targets.map((t) => this.#resolve(t)));
    if (this.#closed) return;
    if (changed.includes(true)) {
      this.#cluster.setHosts(this.#targets.flatMap((t) => t.hosts));
    }
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = null;
      this.#safeRound();
    }, this.#cluster.config.dns_refresh_rate);
  }

  /** A round that never rejects (it runs from a timer). */
  #safeRound(): Promise<void> {
    return this.#round().catch((e) => {
      this.#log?.error(
        `Cluster ${this.#cluster.name}: DNS refresh failed: ${e instanceof Error ? e.stack : e}`,
      );
    });
  }

  /** Resolves one target; returns true when its host list changed. Never rejects. */
  async #resolve(t: Target): Promise<boolean> {
    const u = this.#cluster.updateStats;
    u.attempt.inc();
    let addrs: string[];
    try {
      addrs = selectFamily(await this.#resolver.lookup(t.name), this.#cluster.config.dns_lookup_family);
    } catch (e) {
      if (this.#closed) return false;
      u.failure.inc();
      this.#log?.warn(
        `Cluster ${this.#cluster.name}: DNS resolution of ${t.name} failed: ${
          e instanceof Error ? e.message : e
        }`,
      );
      return false;
    }
    if (this.#closed) return false;
    u.success.inc();
    if (addrs.length === 0) u.empty.inc();
    const opts = { ...t.opts, hostname: t.opts.hostname || t.name };
    if (this.#logical) {
      if (addrs.length === 0) return false; // keep the current host
      const h = t.hosts[0];
      if (h === undefined) {
        // One host whose address follows DNS: its health slot is keyed by name, the same in every thread.
        t.hosts = [hostOf(t, addrs[0], { ...opts, healthKey: `${t.name}:${t.port}` })];
        return true;
      }
      if (h.address !== addrs[0]) h.setAddress(addrs[0]); // same Host: connections stay
      return false;
    }
    const next = addrs.map((a) => t.hosts.find((h) => h.address === a) ?? hostOf(t, a, opts));
    const same = next.length === t.hosts.length && next.every((h, i) => h === t.hosts[i]);
    t.hosts = next;
    return !same;
  }
}
