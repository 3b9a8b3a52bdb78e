/**
 * Contracts of the admin API: what the server provides (AdminDeps) and what subsystems contribute
 * (AdminEndpoint), plus the plain-data shapes of /clusters, /listeners, /server_info and /config_dump.
 */
import type { Context } from "hono";
import type { StatsSnapshot } from "../stats/store.ts";
import type { RuntimeAdmin } from "../runtime/admin.ts";

/** One admin route contributed by a subsystem (Caddy style), e.g. `/healthcheck/fail`. */
export interface AdminEndpoint {
  /** Absolute path, e.g. "/drain_listeners". */
  readonly path: string;
  /** "POST" for anything that changes state (GET then answers 405), "GET" otherwise. */
  readonly method: "GET" | "POST";
  /** One line for /help. */
  readonly help: string;
  /** Produces the response. */
  readonly handler: (c: Context) => Response | Promise<Response>;
}

/** Envoy's server states (admin.v3.ServerInfo.State). */
export type ServerState = "LIVE" | "DRAINING" | "PRE_INITIALIZING" | "INITIALIZING";

/** What /server_info reports. */
export interface ServerInfo {
  /** Build version, e.g. "nuncio/0.1.0". */
  version: string;
  state: ServerState;
  /** Seconds since this process started. */
  uptime_current_epoch: number;
  /** Seconds since the first process of a hot-restart chain started. */
  uptime_all_epochs: number;
  hot_restart_version: string;
  /** The parsed command line, snake_case keys like Envoy's CommandLineOptions. */
  command_line_options: Record<string, unknown>;
  /** The bootstrap node (id, cluster, metadata, ...). */
  node: Record<string, unknown>;
}

/** A listener as /listeners shows it. */
export interface ListenerInfo {
  name: string;
  /** Bound "ip:port" ("[::1]:80" for IPv6); the actual port when configured with 0. */
  address: string;
}

/** Envoy's host health flags (text form, as in /clusters "health_flags"). */
export type HealthFlag =
  | "failed_active_hc"
  | "failed_outlier_check"
  | "failed_eds_health"
  | "degraded_active_hc"
  | "degraded_eds_health"
  | "pending_dynamic_removal"
  | "pending_active_hc"
  | "excluded_via_immediate_hc_fail"
  | "active_hc_timeout";

/** Per-host counters and gauges of /clusters. */
export interface HostStatusStats {
  cx_total: number;
  cx_active: number;
  cx_connect_fail: number;
  rq_total: number;
  rq_active: number;
  rq_success: number;
  rq_error: number;
  rq_timeout: number;
}

/** One upstream host in /clusters. */
export interface HostStatus {
  /** IP (or resolved address). */
  address: string;
  port: number;
  /** DNS name for DNS clusters, "" otherwise. */
  hostname: string;
  weight: number;
  /** Priority level (default 0). */
  priority?: number;
  /** Empty when healthy. */
  healthFlags: readonly HealthFlag[];
  stats: HostStatusStats;
  locality?: { region?: string; zone?: string; sub_zone?: string };
  canary?: boolean;
  /** Outlier detection success rate 0..100, -1 or absent when unknown. */
  successRate?: number;
}

/** Circuit breaker thresholds of one priority. */
export interface CircuitBreakerThresholds {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
}

/** One cluster in /clusters. */
export interface ClusterStatus {
  name: string;
  addedViaApi: boolean;
  /** Thresholds per priority; Envoy's defaults (1024/1024/1024/3) when absent. */
  circuitBreakers?: { default?: CircuitBreakerThresholds; high?: CircuitBreakerThresholds };
  hosts: HostStatus[];
}

/** An xDS-delivered resource with its version, for /config_dump. */
export interface DynamicResource {
  versionInfo: string;
  /** The resource as received (JSON form, without "@type"). */
  resource: Record<string, unknown>;
  /** When it was accepted, ms since epoch. */
  lastUpdatedMs: number;
  /** Accepted but not serving yet (a listener waiting for its routes, an EDS cluster for its endpoints). */
  warming?: boolean;
  /** A listener version a later update replaced or removed, still draining its connections. */
  draining?: boolean;
}

/** Everything /config_dump renders. */
export interface ConfigDumpSource {
  /** The bootstrap as loaded (plain JSON/YAML data, not the parsed config objects). */
  bootstrap: Record<string, unknown>;
  /** When the bootstrap was loaded, ms since epoch. */
  bootstrapLoadedMs: number;
  dynamicListeners?: DynamicResource[];
  dynamicClusters?: DynamicResource[];
  dynamicRouteConfigs?: DynamicResource[];
  /** EDS assignments (shown with `?include_eds`). */
  dynamicEndpoints?: DynamicResource[];
  /** Last LDS / CDS version seen. */
  listenersVersion?: string;
  clustersVersion?: string;
}

/** What the admin API needs from the server (implemented by the main thread). */
export interface AdminDeps {
  /** Stats merged across workers. */
  stats(): Promise<StatsSnapshot>;
  /** Zeroes counters (and histograms) on every worker. */
  resetCounters(): Promise<void>;
  /** Cluster and host status (host stats summed across workers; see mergeClusterStatuses). */
  clusters(): Promise<ClusterStatus[]>;
  /** The configuration to dump. */
  configDump(): ConfigDumpSource | Promise<ConfigDumpSource>;
  /** Active listeners. */
  listeners(): ListenerInfo[];
  /** Server facts for /server_info and /ready. */
  serverInfo(): ServerInfo;
  /** True when LIVE (all initial config loaded, not draining). */
  ready(): boolean;
  /** Starts a clean shutdown (called just after /quitquitquit answered). */
  quit(): void;
  /** The process log level. */
  getLogLevel(): string;
  /** Changes the log level everywhere; throws on an unknown level. */
  setLogLevel(level: string): void | Promise<void>;
  /** Every logger (component) and its level for /logging; without it /logging lists only the default. */
  loggers?(): Record<string, string>;
  /** Sets some loggers (/logging?router=debug, ?paths=router:debug,http:info); throws on unknown names. */
  setLoggerLevels?(levels: Record<string, string>): void | Promise<void>;
  /**
   * Makes the server fail (true) or pass (false) health checks from other proxies (POST /healthcheck/fail and
   * /healthcheck/ok, for draining); the endpoints are absent without it.
   */
  setHealthCheckFailed?(failed: boolean): void;
  /** Reopens access log files (/reopen_logs); the endpoint is absent without it. */
  reopenLogs?(): void | Promise<void>;
  /** The runtime for /runtime and /runtime_modify; without it /runtime shows no layers and no entries. */
  runtime?: RuntimeAdmin;
  /** Routes contributed by other subsystems. */
  endpoints?: readonly AdminEndpoint[];
}
