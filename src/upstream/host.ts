/** The Host implementation and per-cluster stats (`cluster.<name>.`). */
import type { Struct } from "../config/metadata.ts";
import type { Counter, Scope } from "../stats/store.ts";
import { Gauge } from "../stats/store.ts";
import {
  DEGRADED_MASK,
  HealthFlag,
  HostF64,
  type HostHealthSlot,
  HostSlot,
  SLOT_INITIALIZED,
  UNHEALTHY_MASK,
} from "./health/state.ts";
import type { ClusterStats, Host, HostStats } from "./types.ts";

/** A concrete upstream host; LOGICAL_DNS updates its address in place (`setAddress`). */
export class HostImpl implements Host {
  address: string;
  port: number;
  addressString: string;
  readonly hostname: string;
  readonly weight: number;
  /** Priority level of its LocalityLbEndpoints (0 is the highest). */
  readonly priority: number;
  /** Locality key "region/zone/sub_zone" ("" when none). */
  readonly locality: string;
  /** Its locality's load_balancing_weight (0 when unset: no traffic under locality-weighted LB, as Envoy). */
  readonly localityWeight: number;
  /**
   * The lb_endpoint's metadata.filter_metadata (namespace -> Struct), null when none; an EDS update that changes
   * only the metadata replaces it in place (the host keeps its connections and health, as Envoy).
   */
  metadata: Readonly<Record<string, Struct>> | null;
  /** Key of the host's shared health slot: "address:port", or "hostname:port" for LOGICAL_DNS. */
  readonly healthKey: string;
  /** Shared health memory (attached by the cluster); null until then. */
  health: HostHealthSlot | null = null;
  /** Set once the host left its cluster and gave its shared slot back (`health` is a private copy then). */
  healthReleased = false;
  /** Per-thread flags (FAILED_EDS_HEALTH, PENDING_DYNAMIC_REMOVAL). */
  localFlags = 0;
  activeRequests = 0;
  activeConnections = 0;
  readonly stats: HostStats = {
    cx_total: 0,
    cx_connect_fail: 0,
    rq_total: 0,
    rq_success: 0,
    rq_error: 0,
    rq_timeout: 0,
  };

  constructor(
    address: string,
    port: number,
    opts: HostOptions = {},
  ) {
    this.address = address;
    this.port = port;
    this.addressString = formatAddress(address, port);
    this.hostname = opts.hostname || address;
    this.weight = Math.max(1, opts.weight ?? 1);
    this.healthKey = opts.healthKey ?? this.addressString;
    this.priority = opts.priority ?? 0;
    this.locality = opts.locality ?? "";
    this.localityWeight = opts.localityWeight ?? 0;
    this.metadata = opts.metadata ?? null;
    this.setEdsHealth(opts.healthy === false ? "UNHEALTHY" : opts.degraded ? "DEGRADED" : "HEALTHY");
  }

  /** Sets the per-thread EDS health flags from an lb_endpoint's health_status (config or EDS update). */
  setEdsHealth(status: string): void {
    this.localFlags &= ~(HealthFlag.FAILED_EDS_HEALTH | HealthFlag.DEGRADED_EDS_HEALTH);
    if (status === "DEGRADED") this.localFlags |= HealthFlag.DEGRADED_EDS_HEALTH;
    else if (status !== "UNKNOWN" && status !== "HEALTHY") this.localFlags |= HealthFlag.FAILED_EDS_HEALTH;
  }

  /** True when usable only as a fallback: degraded (EDS or active check) and not unhealthy. */
  get degraded(): boolean {
    const f = this.healthFlags();
    return (f & UNHEALTHY_MASK) === 0 && (f & DEGRADED_MASK) !== 0;
  }

  /** True unless a health flag (active check, outlier ejection, EDS status) marks the host down. */
  get healthy(): boolean {
    return (this.healthFlags() & UNHEALTHY_MASK) === 0;
  }

  /** Sets or clears the per-thread FAILED_EDS_HEALTH flag (EDS status, tests). */
  set healthy(v: boolean) {
    if (v) this.localFlags &= ~HealthFlag.FAILED_EDS_HEALTH;
    else this.localFlags |= HealthFlag.FAILED_EDS_HEALTH;
  }

  /** All health flag bits (see HealthFlag): the shared ones and this thread's own. */
  healthFlags(): number {
    const h = this.health;
    return h === null
      ? this.localFlags
      : this.localFlags | (Atomics.load(h.i32, HostSlot.FLAGS) & ~SLOT_INITIALIZED);
  }

  /** Points the host at a new address (LOGICAL_DNS re-resolution); existing connections are untouched. */
  setAddress(address: string): void {
    this.address = address;
    this.addressString = formatAddress(address, this.port);
  }
}

/** Options of a HostImpl (discovery fills them from an lb_endpoint and its locality). */
export interface HostOptions {
  hostname?: string;
  weight?: number;
  /** False: EDS/config health_status made it unhealthy. */
  healthy?: boolean;
  /** True: health_status DEGRADED. */
  degraded?: boolean;
  healthKey?: string;
  priority?: number;
  locality?: string;
  localityWeight?: number;
  /** metadata.filter_metadata of the lb_endpoint. */
  metadata?: Readonly<Record<string, Struct>> | null;
}

/** "ip:port", with brackets for IPv6. */
export function formatAddress(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Creates the ClusterStats of one cluster in `scope` (already prefixed `cluster.<name>.`); runs at config time.
 * Membership gauges are registered only when `ownsMembership` (the thread deciding health): other threads get
 * detached gauges so /stats does not sum them once per worker.
 */
export function createClusterStats(scope: Scope, ownsMembership = true): ClusterStats {
  // Packed arrays indexed by status code / class: no string building after the first use of a code.
  const codes: (Counter | undefined)[] = new Array(1000).fill(undefined);
  const classes: (Counter | undefined)[] = new Array(10).fill(undefined);
  return {
    upstream_cx_total: scope.counter("upstream_cx_total"),
    upstream_cx_active: scope.gauge("upstream_cx_active"),
    upstream_cx_connect_fail: scope.counter("upstream_cx_connect_fail"),
    upstream_cx_connect_timeout: scope.counter("upstream_cx_connect_timeout"),
    upstream_cx_destroy: scope.counter("upstream_cx_destroy"),
    upstream_cx_destroy_local: scope.counter("upstream_cx_destroy_local"),
    upstream_cx_destroy_remote: scope.counter("upstream_cx_destroy_remote"),
    upstream_cx_rx_bytes_total: scope.counter("upstream_cx_rx_bytes_total"),
    upstream_cx_tx_bytes_total: scope.counter("upstream_cx_tx_bytes_total"),
    upstream_cx_none_healthy: scope.counter("upstream_cx_none_healthy"),
    upstream_cx_connect_ms: scope.histogram("upstream_cx_connect_ms"),
    upstream_cx_length_ms: scope.histogram("upstream_cx_length_ms"),
    upstream_rq_total: scope.counter("upstream_rq_total"),
    upstream_rq_active: scope.gauge("upstream_rq_active"),
    upstream_rq_pending_total: scope.counter("upstream_rq_pending_total"),
    upstream_rq_pending_active: scope.gauge("upstream_rq_pending_active"),
    upstream_rq_completed: scope.counter("upstream_rq_completed"),
    upstream_rq_timeout: scope.counter("upstream_rq_timeout"),
    upstream_rq_rx_reset: scope.counter("upstream_rq_rx_reset"),
    upstream_rq_tx_reset: scope.counter("upstream_rq_tx_reset"),
    upstream_rq_retry: scope.counter("upstream_rq_retry"),
    upstream_rq_time: scope.histogram("upstream_rq_time"),
    membership_healthy: ownsMembership
      ? scope.gauge("membership_healthy", "never_import")
      : new Gauge(scope.prefix + "membership_healthy", "never_import"),
    membership_total: ownsMembership
      ? scope.gauge("membership_total", "never_import")
      : new Gauge(scope.prefix + "membership_total", "never_import"),
    lb_healthy_panic: scope.counter("lb_healthy_panic"),
    recordResponseCode(code: number): void {
      if (!(code >= 0 && code < 1000)) code = 0;
      code |= 0;
      let c = codes[code];
      if (c === undefined) codes[code] = c = scope.counter(`upstream_rq_${code}`);
      c.inc();
      const k = (code / 100) | 0;
      let x = classes[k];
      if (x === undefined) classes[k] = x = scope.counter(`upstream_rq_${k}xx`);
      x.inc();
    },
  };
}

/** The outlier detector's last success rate of `host` (percent), -1 when not computed (admin). */
export function hostSuccessRate(host: Host): number {
  const h = (host as Partial<HostImpl>).health;
  return h ? h.f64[HostF64.SUCCESS_RATE] : -1;
}
