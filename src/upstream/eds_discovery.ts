/**
 * Membership of an EDS cluster: each ClusterLoadAssignment the xDS layer delivers replaces the hosts. A host
 * whose endpoint is unchanged (address, hostname, weight, priority, locality and its weight) keeps its Host
 * object, so its pooled connections and health survive the update; only its EDS health status and its metadata
 * (which the subset load balancer reads when the cluster rebuilds its LB) are refreshed.
 */
import type { ClusterImpl } from "./cluster.ts";
import type { ClusterLoadAssignment } from "./config.ts";
import { localityKey } from "./dns_cluster.ts";
import { HostImpl } from "./host.ts";

/** Applies EDS assignments to one cluster (one per cluster generation). */
export class EdsDiscovery {
  readonly #cluster: ClusterImpl;
  #byKey = new Map<string, HostImpl>();
  /** The last assignment applied (seeds the next generation of the cluster; config_dump). */
  assignment: ClusterLoadAssignment | null = null;

  /** Binds to `cluster` (no hosts until the first `apply`). */
  constructor(cluster: ClusterImpl) {
    this.#cluster = cluster;
  }

  /** Replaces the cluster's hosts with those of `cla` (runs per EDS update). */
  apply(cla: ClusterLoadAssignment): void {
    const prev = this.#byKey;
    const byKey = new Map<string, HostImpl>();
    const hosts: HostImpl[] = [];
    for (const l of cla.endpoints) {
      const locality = localityKey(l.locality);
      const localityWeight = l.load_balancing_weight ?? 0;
      for (const e of l.lb_endpoints) {
        const sa = e.endpoint.address.socket_address;
        const hostname = e.endpoint.hostname ?? "";
        const weight = e.load_balancing_weight ?? 1;
        const key =
          `${sa.address}|${sa.port_value}|${hostname}|${weight}|${l.priority}|${locality}|${localityWeight}`;
        if (byKey.has(key)) continue; // the same endpoint twice: one host
        const metadata = e.metadata?.filter_metadata ?? null;
        let h = prev.get(key);
        if (h === undefined) {
          h = new HostImpl(sa.address, sa.port_value, {
            hostname,
            weight,
            priority: l.priority,
            locality,
            localityWeight,
            metadata,
          });
        } else h.metadata = metadata; // Envoy updates metadata in place; the subset LB re-reads it on setHosts
        h.setEdsHealth(e.health_status);
        byKey.set(key, h);
        hosts.push(h);
      }
    }
    this.#byKey = byKey;
    this.assignment = cla;
    this.#cluster.setHosts(hosts, cla.policy?.overprovisioning_factor ?? 140);
  }
}
