/** The /clusters output (Envoy's text lines and ?format=json) and helpers building ClusterStatus. */
import { flagNames } from "../upstream/health/state.ts";
import type { Cluster, Host } from "../upstream/types.ts";
import type {
  CircuitBreakerThresholds,
  ClusterStatus,
  HealthFlag,
  HostStatus,
  HostStatusStats,
} from "./types.ts";

/** Envoy's default circuit breaker thresholds. */
export const DEFAULT_THRESHOLDS: CircuitBreakerThresholds = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
};

/** Host stat names in Envoy's text order (sorted). */
const STAT_ORDER: readonly (keyof HostStatusStats)[] = [
  "cx_active",
  "cx_connect_fail",
  "cx_total",
  "rq_active",
  "rq_error",
  "rq_success",
  "rq_timeout",
  "rq_total",
];
const COUNTERS: readonly (keyof HostStatusStats)[] = [
  "cx_connect_fail",
  "cx_total",
  "rq_error",
  "rq_success",
  "rq_timeout",
  "rq_total",
];
const GAUGES: readonly (keyof HostStatusStats)[] = ["cx_active", "rq_active"];

/** "ip:port", bracketing IPv6. */
export function hostAddress(h: { address: string; port: number }): string {
  return h.address.includes(":") ? `[${h.address}]:${h.port}` : `${h.address}:${h.port}`;
}

/** Envoy's health flag string: "healthy", or "/flag/flag". */
export function healthFlagsString(flags: readonly HealthFlag[]): string {
  return flags.length === 0 ? "healthy" : flags.map((f) => "/" + f).join("");
}

function thresholdsText(out: string[], name: string, prio: string, t: CircuitBreakerThresholds): void {
  out.push(
    `${name}::${prio}_priority::max_connections::${t.maxConnections}\n`,
    `${name}::${prio}_priority::max_pending_requests::${t.maxPendingRequests}\n`,
    `${name}::${prio}_priority::max_requests::${t.maxRequests}\n`,
    `${name}::${prio}_priority::max_retries::${t.maxRetries}\n`,
  );
}

/** The text /clusters body ("cluster::host:port::stat::value" lines). */
export function formatClustersText(clusters: readonly ClusterStatus[]): string {
  const out: string[] = [];
  for (const c of clusters) {
    const n = c.name;
    thresholdsText(out, n, "default", c.circuitBreakers?.default ?? DEFAULT_THRESHOLDS);
    thresholdsText(out, n, "high", c.circuitBreakers?.high ?? DEFAULT_THRESHOLDS);
    out.push(`${n}::added_via_api::${c.addedViaApi}\n`);
    for (const h of c.hosts) {
      const p = `${n}::${hostAddress(h)}::`;
      for (const s of STAT_ORDER) out.push(`${p}${s}::${h.stats[s]}\n`);
      out.push(
        `${p}hostname::${h.hostname}\n`,
        `${p}health_flags::${healthFlagsString(h.healthFlags)}\n`,
        `${p}weight::${h.weight}\n`,
        `${p}region::${h.locality?.region ?? ""}\n`,
        `${p}zone::${h.locality?.zone ?? ""}\n`,
        `${p}sub_zone::${h.locality?.sub_zone ?? ""}\n`,
        `${p}canary::${h.canary ?? false}\n`,
        `${p}priority::${h.priority ?? 0}\n`,
        `${p}success_rate::${h.successRate ?? -1}\n`,
        `${p}local_origin_success_rate::-1\n`,
      );
    }
  }
  return out.join("");
}

function thresholdsJson(t: CircuitBreakerThresholds, priority?: string): Record<string, unknown> {
  return {
    ...(priority ? { priority } : {}),
    max_connections: t.maxConnections,
    max_pending_requests: t.maxPendingRequests,
    max_requests: t.maxRequests,
    max_retries: t.maxRetries,
  };
}

function metric(name: string, value: number, gauge: boolean): Record<string, unknown> {
  // proto3 JSON: uint64 as a string, zero values and the default enum (COUNTER) omitted.
  const m: Record<string, unknown> = { name };
  if (value !== 0) m.value = String(value);
  if (gauge) m.type = "GAUGE";
  return m;
}

function hostJson(h: HostStatus): Record<string, unknown> {
  const health: Record<string, unknown> = {};
  const f = new Set(h.healthFlags);
  if (f.has("failed_active_hc")) health.failed_active_health_check = true;
  if (f.has("failed_outlier_check")) health.failed_outlier_check = true;
  health.eds_health_status = f.has("failed_eds_health")
    ? "UNHEALTHY"
    : f.has("degraded_eds_health")
    ? "DEGRADED"
    : "HEALTHY";
  if (f.has("degraded_active_hc")) health.failed_active_degraded_check = true;
  if (f.has("pending_dynamic_removal")) health.pending_dynamic_removal = true;
  if (f.has("pending_active_hc")) health.pending_active_hc = true;
  if (f.has("excluded_via_immediate_hc_fail")) health.excluded_via_immediate_hc_fail = true;
  if (f.has("active_hc_timeout")) health.active_hc_timeout = true;
  const out: Record<string, unknown> = {
    address: { socket_address: { address: h.address, port_value: h.port } },
    stats: [
      ...COUNTERS.map((s) => metric(s, h.stats[s], false)),
      ...GAUGES.map((s) => metric(s, h.stats[s], true)),
    ],
    health_status: health,
    weight: h.weight,
  };
  if (h.hostname) out.hostname = h.hostname;
  out.locality = { ...h.locality };
  if (h.priority) out.priority = h.priority;
  if (h.successRate !== undefined && h.successRate >= 0) out.success_rate = { value: h.successRate };
  return out;
}

/** The ?format=json /clusters document (admin.v3.Clusters). */
export function clustersJson(clusters: readonly ClusterStatus[]): Record<string, unknown> {
  return {
    cluster_statuses: clusters.map((c) => {
      const s: Record<string, unknown> = {
        name: c.name,
        circuit_breakers: {
          thresholds: [
            thresholdsJson(c.circuitBreakers?.default ?? DEFAULT_THRESHOLDS),
            thresholdsJson(c.circuitBreakers?.high ?? DEFAULT_THRESHOLDS, "HIGH"),
          ],
        },
      };
      if (c.addedViaApi) s.added_via_api = true;
      if (c.hosts.length) s.host_statuses = c.hosts.map(hostJson);
      return s;
    }),
  };
}

/** Options for clusterStatusOf. */
export interface ClusterStatusOptions {
  addedViaApi?: boolean;
  circuitBreakers?: ClusterStatus["circuitBreakers"];
  /** Health flags of an unhealthy host without `healthFlags()` (default: ["failed_active_hc"]). */
  unhealthyFlags?: readonly HealthFlag[];
  /** The outlier detector's success rate of a host (percent), undefined or -1 when not computed. */
  successRate?: (host: Host) => number | undefined;
}

/** The health flags of a host: its flag bits when it has them, else healthy or `unhealthy`. */
export function hostHealthFlags(h: Host, unhealthy: readonly HealthFlag[]): readonly HealthFlag[] {
  if (h.healthFlags) return flagNames(h.healthFlags()) as HealthFlag[];
  return h.healthy ? [] : unhealthy;
}

/** Builds a ClusterStatus from a worker's Cluster (runs per admin request). */
export function clusterStatusOf(cluster: Cluster, opts: ClusterStatusOptions = {}): ClusterStatus {
  const unhealthy = opts.unhealthyFlags ?? ["failed_active_hc"];
  return {
    name: cluster.name,
    addedViaApi: opts.addedViaApi ?? false,
    circuitBreakers: opts.circuitBreakers,
    hosts: cluster.hosts().map((h): HostStatus => ({
      address: h.address,
      port: h.port,
      hostname: h.hostname === h.address ? "" : h.hostname,
      weight: h.weight,
      healthFlags: hostHealthFlags(h, unhealthy),
      successRate: opts.successRate?.(h),
      stats: {
        cx_total: h.stats.cx_total,
        cx_active: h.activeConnections,
        cx_connect_fail: h.stats.cx_connect_fail,
        rq_total: h.stats.rq_total,
        rq_active: h.activeRequests,
        rq_success: h.stats.rq_success,
        rq_error: h.stats.rq_error,
        rq_timeout: h.stats.rq_timeout,
      },
    })),
  };
}

/** Sums per-worker statuses of the same clusters and hosts (the first worker's order and health win). */
export function mergeClusterStatuses(parts: readonly (readonly ClusterStatus[])[]): ClusterStatus[] {
  const out: ClusterStatus[] = [];
  const byName = new Map<string, { status: ClusterStatus; hosts: Map<string, HostStatus> }>();
  for (const part of parts) {
    for (const c of part) {
      let e = byName.get(c.name);
      if (!e) {
        const status: ClusterStatus = { ...c, hosts: [] };
        e = { status, hosts: new Map() };
        byName.set(c.name, e);
        out.push(status);
      }
      for (const h of c.hosts) {
        const key = hostAddress(h);
        const have = e.hosts.get(key);
        if (!have) {
          const copy: HostStatus = { ...h, stats: { ...h.stats } };
          e.hosts.set(key, copy);
          e.status.hosts.push(copy);
          continue;
        }
        for (const s of STAT_ORDER) have.stats[s] += h.stats[s];
      }
    }
  }
  return out;
}
