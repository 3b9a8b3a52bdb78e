/** The envoy.config.bootstrap.v3.Bootstrap subset nuncio implements, and its cross-reference checks. */
import { z } from "zod/mini";
import { bootstrapTracingSchema } from "../tracing/config.ts";
import { address, duration } from "./common.ts";
import { typedExtension } from "./extension_ref.ts";
import { dynamicResourcesSchema, grpcServiceConfigSourceSchema } from "./config_source.ts";
import { configError, type ConfigIssue } from "./errors.ts";
import { listenerSchema } from "./listener.ts";
import { notSupportedFields } from "./schema_util.ts";
import { clusterSchema } from "../upstream/config.ts";
import { secretSchema } from "../transport/secret.ts";
import { layeredRuntimeSchema } from "../runtime/config.ts";
import { statsConfigSchema } from "../stats/config.ts";

/** envoy.config.core.v3.Locality. */
export const localitySchema = z.strictObject({
  region: z.optional(z.string()),
  zone: z.optional(z.string()),
  sub_zone: z.optional(z.string()),
});

/** envoy.config.core.v3.Node (identity reported to xDS servers and shown by /server_info). */
export const nodeSchema = z.strictObject({
  id: z.optional(z.string()),
  cluster: z.optional(z.string()),
  metadata: z.optional(z.record(z.string(), z.unknown())),
  locality: z.optional(localitySchema),
  user_agent_name: z.optional(z.string()),
  user_agent_version: z.optional(z.string()),
  ...notSupportedFields([
    "user_agent_build_version",
    "extensions",
    "client_features",
    "listening_addresses",
    "dynamic_parameters",
  ]),
});

/** envoy.config.bootstrap.v3.Admin. */
export const adminSchema = z.strictObject({
  address: z.optional(address),
  access_log: z._default(z.array(typedExtension("access_logger")), []),
  /** Deprecated in Envoy: a file path for the admin access log (a file logger with the default format). */
  access_log_path: z.optional(z.string().check(z.minLength(1))),
  ...notSupportedFields(["profile_path", "socket_options", "ignore_global_conn_limit"]),
});

/** envoy.config.bootstrap.v3.Bootstrap.StaticResources. */
export const staticResourcesSchema = z.strictObject({
  listeners: z._default(z.array(listenerSchema), []),
  clusters: z._default(z.array(clusterSchema), []),
  /** Secrets TLS contexts name in an SdsSecretConfig without sds_config. */
  secrets: z._default(z.array(secretSchema), []),
});

/** envoy.config.bootstrap.v3.ClusterManager: the local cluster of zone aware routing and load reporting. */
export const clusterManagerSchema = z.strictObject({
  /** The cluster whose hosts are this proxy's callers (zone aware routing); a static cluster, as Envoy. */
  local_cluster_name: z.optional(z.string()),
  /** Load reporting (LRS, envoy.service.load_stats.v3) to a gRPC service on a static cluster. */
  load_stats_config: z.optional(grpcServiceConfigSourceSchema),
  ...notSupportedFields([
    "outlier_detection",
    "upstream_bind_config",
    "enable_deferred_cluster_creation",
  ]),
});

/** envoy.config.bootstrap.v3.Bootstrap. */
export const bootstrapSchema = z.strictObject({
  node: z.optional(nodeSchema),
  admin: z.optional(adminSchema),
  static_resources: z._default(staticResourcesSchema, () => ({ listeners: [], clusters: [], secrets: [] })),
  /** Started on the main thread before the data plane (e.g. nuncio's embedded rate-limit service). */
  bootstrap_extensions: z._default(z.array(typedExtension("bootstrap_extension")), []),
  /** xDS sources (LDS, CDS, ADS); the xDS client (src/xds/) subscribes to them. */
  dynamic_resources: z.optional(dynamicResourcesSchema),
  cluster_manager: z.optional(clusterManagerSchema),
  /** Health discovery (HDS, envoy.service.health.v3): health checks a gRPC service on a static cluster assigns. */
  hds_config: z.optional(grpcServiceConfigSourceSchema),
  /** The runtime's layers (static, disk, admin); src/runtime/. Absent: no layers, every default applies. */
  layered_runtime: z.optional(layeredRuntimeSchema),
  /** Stats sinks (src/stats/sink.ts), flushed from the main thread. */
  stats_sinks: z._default(z.array(typedExtension("stats_sink")), []),
  /** Tags, the stats matcher and histogram buckets (src/stats/config.ts). */
  stats_config: z.optional(statsConfigSchema),
  /** How often sinks are flushed (Envoy: 5 s by default, at least 1 ms, below 300 s). */
  stats_flush_interval: z.optional(
    duration.check(
      z.refine((ms) => ms >= 1 && ms < 300_000, { message: "Must be at least 1ms and below 300s" }),
    ),
  ),
  /** Flush sinks only when admin reads stats (no flush timer); excludes stats_flush_interval. */
  stats_flush_on_admin: z.optional(
    z.boolean().check(z.refine((v) => v, { message: "stats_flush_on_admin may only be true" })),
  ),
  /** envoy.config.trace.v3.Tracing: the `tracing.http` provider HCMs use when their tracing names none. */
  tracing: z.optional(bootstrapTracingSchema),
  ...notSupportedFields([
    "node_context_params",
    "flags_path",
    "deferred_stat_options",
    "watchdog",
    "watchdogs",
    "runtime",
    "overload_manager",
    "enable_dispatcher_stats",
    "header_prefix",
    "stats_server_version_override",
    "use_tcp_for_dns_lookups",
    "dns_resolution_config",
    "typed_dns_resolver_config",
    "fatal_actions",
    "config_sources",
    "default_config_source",
    "default_socket_interface",
    "certificate_provider_instances",
    "inline_headers",
    "perf_tracing_file_path",
    "default_regex_engine",
    "xds_delegate_extension",
    "xds_config_tracker_extension",
    "listener_manager",
    "application_log_config",
    "grpc_async_client_manager_config",
    "memory_allocator_manager",
  ]),
});

/** The parsed bootstrap: durations in ms, defaults filled, typed configs resolved to ExtensionRefs. */
export type Bootstrap = z.output<typeof bootstrapSchema>;

/** Runs after the schema passed: unique listener and cluster names, one listener per address:port. */
export function crossValidate(b: Bootstrap): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const base = ["static_resources"];
  const listenerNames = new Map<string, number>();
  const addresses = new Map<string, number>();
  b.static_resources.listeners.forEach((l, i) => {
    const prev = listenerNames.get(l.name);
    if (prev !== undefined) {
      issues.push(configError(
        [...base, "listeners", i, "name"],
        `Duplicate listener name "${l.name}" (also listeners[${prev}])`,
      ));
    } else listenerNames.set(l.name, i);
    const sa = l.address.socket_address;
    if (sa.port_value === 0) return; // port 0: the kernel picks a free port for each listener
    const key = `${sa.address}:${sa.port_value}`;
    const prevAddr = addresses.get(key);
    if (prevAddr !== undefined) {
      issues.push(configError(
        [...base, "listeners", i, "address"],
        `Listener "${l.name}" has the same address ${key} as listeners[${prevAddr}]`,
      ));
    } else addresses.set(key, i);
  });
  const clusterNames = new Map<string, number>();
  b.static_resources.clusters.forEach((c, i) => {
    const prev = clusterNames.get(c.name);
    if (prev !== undefined) {
      issues.push(configError(
        [...base, "clusters", i, "name"],
        `Duplicate cluster name "${c.name}" (also clusters[${prev}])`,
      ));
    } else clusterNames.set(c.name, i);
  });
  if (b.stats_flush_on_admin && b.stats_flush_interval !== undefined) {
    issues.push(configError(
      ["stats_flush_on_admin"],
      "Only one of stats_flush_interval or stats_flush_on_admin may be set",
    ));
  }
  const local = b.cluster_manager?.local_cluster_name;
  if (local && !clusterNames.has(local)) {
    issues.push(configError(
      ["cluster_manager", "local_cluster_name"],
      `local cluster "${local}" must be defined in static_resources.clusters`,
    ));
  }
  return issues;
}
