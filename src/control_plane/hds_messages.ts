/**
 * The HDS messages the control plane builds and reads, in proto3 JSON (hds.ts encodes and decodes them): the
 * HealthCheckSpecifier of a proxy's share, and the endpoint statuses of an EndpointHealthResponse in either
 * form (`cluster_endpoints_health`, or the flat `endpoints_health` older clients send).
 */

/** One endpoint to check. */
export interface HdsEndpoint {
  address: string;
  port: number;
  /** Its locality's zone (endpoints are grouped by zone in the specifier). */
  zone?: string;
}

/** What the control plane wants checked: a service's endpoints and the check to run on them. */
export interface HdsTarget {
  service: string;
  endpoints: HdsEndpoint[];
  /** An envoy.config.core.v3.HealthCheck in proto3 JSON (snake_case, durations as "5s"). */
  healthCheck: Record<string, unknown>;
}

/** A duration in proto3 JSON ("10s", "1.5s"). */
export function durationJson(ms: number): string {
  return `${(ms / 1000).toFixed(3).replace(/\.?0+$/, "")}s`;
}

/**
 * Runs on every (re)assignment: the HealthCheckSpecifier of a share (endpoints by service): one
 * ClusterHealthCheck per service named after it, with the target's HealthCheck and the endpoints grouped by zone.
 */
export function specifierJson(
  share: ReadonlyMap<string, readonly HdsEndpoint[]>,
  targets: ReadonlyMap<string, HdsTarget>,
  intervalMs: number,
): Record<string, unknown> {
  const clusters = [];
  for (const [service, eps] of share) {
    const t = targets.get(service);
    if (!t) continue;
    const byZone = new Map<string, HdsEndpoint[]>();
    for (const ep of eps) {
      const z = ep.zone ?? "";
      const list = byZone.get(z);
      if (list) list.push(ep);
      else byZone.set(z, [ep]);
    }
    clusters.push({
      cluster_name: service,
      health_checks: [t.healthCheck],
      locality_endpoints: [...byZone].map(([zone, list]) => ({
        ...(zone ? { locality: { zone } } : {}),
        endpoints: list.map((ep) => ({
          address: { socket_address: { address: ep.address, port_value: ep.port } },
        })),
      })),
    });
  }
  return { cluster_health_checks: clusters, interval: durationJson(intervalMs) };
}

/** One endpoint's status as a proxy reported it. */
export interface ReportedHealth {
  service: string;
  address: string;
  port: number;
  /** An envoy.config.core.v3.HealthStatus name ("UNKNOWN" when absent). */
  status: string;
}

interface EndpointHealth {
  endpoint?: { address?: { socket_address?: { address?: string; port_value?: number | string } } };
  health_status?: string;
}

/** envoy.service.health.v3.EndpointHealthResponse (JSON). */
export interface EndpointHealthResponse {
  endpoints_health?: EndpointHealth[];
  cluster_endpoints_health?: {
    cluster_name?: string;
    locality_endpoints_health?: { endpoints_health?: EndpointHealth[] }[];
  }[];
}

/**
 * Runs per report: the statuses an EndpointHealthResponse carries. `cluster_endpoints_health` names the service
 * (cluster_name); when it is empty, each entry of the flat `endpoints_health` counts for every service of
 * `share` that has that address and port. Entries without an address and port are skipped.
 */
export function reportedHealth(
  r: EndpointHealthResponse,
  share: ReadonlyMap<string, readonly HdsEndpoint[]>,
): ReportedHealth[] {
  const out: ReportedHealth[] = [];
  const add = (service: string, eh: EndpointHealth) => {
    const sa = eh.endpoint?.address?.socket_address;
    if (!sa?.address || sa.port_value === undefined) return;
    out.push({
      service,
      address: sa.address,
      port: Number(sa.port_value),
      status: eh.health_status ?? "UNKNOWN",
    });
  };
  if (r.cluster_endpoints_health?.length) {
    for (const ch of r.cluster_endpoints_health) {
      for (const l of ch.locality_endpoints_health ?? []) {
        for (const eh of l.endpoints_health ?? []) add(ch.cluster_name ?? "", eh);
      }
    }
    return out;
  }
  for (const eh of r.endpoints_health ?? []) {
    const sa = eh.endpoint?.address?.socket_address;
    for (const [service, eps] of share) {
      if (eps.some((ep) => ep.address === sa?.address && ep.port === Number(sa?.port_value))) {
        add(service, eh);
      }
    }
  }
  return out;
}
