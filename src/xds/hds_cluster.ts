/**
 * One ClusterHealthCheck of an HDS specifier on the proxy (Envoy's HdsCluster): its endpoints as hosts, checked
 * by nuncio's active health checker (upstream/health: the same sessions, thresholds and HTTP/TCP/gRPC probes as
 * a cluster's `health_checks`), one checker per listed HealthCheck. Host health lives in slots of a
 * SharedArena under `host/hds/<cluster>#<variant>/`, apart from the proxy's own clusters. A new specifier with
 * the same checks keeps the checkers and their hosts' state and only adds and removes endpoints.
 */
import type { Clock } from "../common/clock.ts";
import type { SharedArena } from "../common/shared_arena.ts";
import type { Scope } from "../stats/store.ts";
import { localityKey } from "../upstream/dns_cluster.ts";
import { HealthChecker } from "../upstream/health/checker.ts";
import { probeFactoryFor } from "../upstream/health/cluster_health.ts";
import type { HealthCheckConfig } from "../upstream/health/config.ts";
import { ClusterHealthState, HealthFlag } from "../upstream/health/state.ts";
import { formatAddress, HostImpl } from "../upstream/host.ts";

/** envoy.config.core.v3.Locality (JSON). */
export interface Locality {
  region?: string;
  zone?: string;
  sub_zone?: string;
}

/** The endpoints of one locality of a ClusterHealthCheck. */
export interface HdsLocalityEndpoints {
  locality?: Locality;
  endpoints: { address: string; port: number }[];
}

/** A parsed ClusterHealthCheck. */
export interface HdsClusterSpec {
  name: string;
  checks: HealthCheckConfig[];
  /** The checks as received (JSON), to tell an unchanged cluster from a changed one. */
  checksKey: string;
  localities: HdsLocalityEndpoints[];
}

/** What a cluster needs from its client. */
export interface HdsClusterDeps {
  arena: SharedArena;
  /** Scope `hds_delegate.` of the proxy's stats (checkers count under `cluster.<name>.health_check.`). */
  scope: Scope;
  clock: Clock;
  random: () => number;
  /** Distinguishes this cluster's slots from an earlier version's of the same name. */
  variant: string;
}

/** An envoy.config.core.v3.HealthStatus name. */
export type HealthStatusName = "UNKNOWN" | "HEALTHY" | "UNHEALTHY" | "DEGRADED" | "TIMEOUT";

/** Worse first: a host is as healthy as its least healthy checker says. */
const RANK: Record<HealthStatusName, number> = {
  TIMEOUT: 4,
  UNHEALTHY: 3,
  UNKNOWN: 2,
  DEGRADED: 1,
  HEALTHY: 0,
};

/** The status a host's flags say (before its first check: UNKNOWN). */
export function statusOfFlags(flags: number): HealthStatusName {
  if (flags & HealthFlag.PENDING_ACTIVE_HC) return "UNKNOWN";
  if (flags & HealthFlag.FAILED_ACTIVE_HC) {
    return flags & HealthFlag.ACTIVE_HC_TIMEOUT ? "TIMEOUT" : "UNHEALTHY";
  }
  return flags & HealthFlag.DEGRADED_ACTIVE_HC ? "DEGRADED" : "HEALTHY";
}

interface Check {
  checker: HealthChecker;
  state: ClusterHealthState;
  hosts: Map<string, HostImpl>;
}

/** See the file comment. */
export class HdsCluster {
  readonly name: string;
  readonly checksKey: string;
  readonly #checks: Check[];
  #localities: HdsLocalityEndpoints[] = [];
  #started = false;
  #closed = false;

  /** Builds the checkers (config time); `start` begins checking. */
  constructor(spec: HdsClusterSpec, deps: HdsClusterDeps) {
    this.name = spec.name;
    this.checksKey = spec.checksKey;
    const initial = HealthFlag.FAILED_ACTIVE_HC | HealthFlag.PENDING_ACTIVE_HC;
    this.#checks = spec.checks.map((config, i) => {
      const state = new ClusterHealthState(deps.arena, `hds/${spec.name}`, initial, `${deps.variant}.${i}`);
      const checker = new HealthChecker(config, {
        state,
        scope: deps.scope.scope(`cluster.${spec.name}.health_check`),
        clock: deps.clock,
        random: deps.random,
        probes: probeFactoryFor(config, spec.name),
        // the checks are the point of HDS: `interval`, never no_traffic_interval (see hds_client.ts)
        hasTraffic: () => true,
        onChange: () => {},
      });
      return { checker, state, hosts: new Map() };
    });
    this.setEndpoints(spec.localities);
  }

  /** Replaces the endpoints: new ones start checking, removed ones stop, the others keep their state. */
  setEndpoints(localities: HdsLocalityEndpoints[]): void {
    if (this.#closed) return;
    this.#localities = localities;
    for (const c of this.#checks) {
      const next = new Map<string, HostImpl>();
      for (const l of localities) {
        for (const ep of l.endpoints) {
          const key = formatAddress(ep.address, ep.port);
          if (next.has(key)) continue;
          let h = c.hosts.get(key);
          if (!h) {
            h = new HostImpl(ep.address, ep.port, { locality: localityKey(l.locality), healthKey: key });
            h.health = c.state.host(key);
          }
          next.set(key, h);
        }
      }
      for (const [key, h] of c.hosts) if (!next.has(key)) release(c.state, h);
      c.hosts = next;
      c.checker.setHosts([...next.values()]);
    }
  }

  /** Starts every checker (first checks at once, or after initial_jitter). */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    for (const c of this.#checks) c.checker.start();
  }

  /** The status of one endpoint over every check. */
  status(address: string, port: number): HealthStatusName {
    let worst: HealthStatusName = "HEALTHY";
    const key = formatAddress(address, port);
    for (const c of this.#checks) {
      const h = c.hosts.get(key);
      const s = h ? statusOfFlags(h.healthFlags()) : "UNKNOWN";
      if (RANK[s] > RANK[worst]) worst = s;
    }
    return this.#checks.length === 0 ? "UNKNOWN" : worst;
  }

  /** This cluster's part of an EndpointHealthResponse: a ClusterEndpointsHealth (JSON). */
  report(): { cluster_name: string; locality_endpoints_health: Record<string, unknown>[] } {
    return {
      cluster_name: this.name,
      locality_endpoints_health: this.#localities.map((l) => ({
        ...(l.locality ? { locality: l.locality } : {}),
        endpoints_health: l.endpoints.map((ep) => ({
          endpoint: { address: { socket_address: { address: ep.address, port_value: ep.port } } },
          health_status: this.status(ep.address, ep.port),
        })),
      })),
    };
  }

  /** Stops every check and gives the health slots back. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#checks) {
      c.checker.close();
      for (const h of c.hosts.values()) release(c.state, h);
      c.hosts.clear();
      c.state.release();
    }
  }
}

function release(state: ClusterHealthState, h: HostImpl): void {
  if (h.health === null || h.healthReleased) return;
  h.health = state.releaseHost(h.healthKey, h.health);
  h.healthReleased = true;
}
