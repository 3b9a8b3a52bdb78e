/**
 * zod schema for `envoy.config.cluster.v3.Cluster` as used in `static_resources.clusters`.
 * Fields Envoy has but nuncio does not implement yet are listed explicitly and rejected with
 * "Field not supported by nuncio"; unknown fields are rejected by the strict objects.
 */
import { configSourceSchema } from "../config/config_source.ts";
import { ipFamily } from "../common/ip.ts";
import { z } from "zod/mini";
import { double, envoyEnum, onlyValues, transformWithIssues } from "../config/schema_util.ts";
import { address, duration, percent, uint32, uint64 } from "../config/common.ts";
import { metadataSchema, structSchema } from "../config/metadata.ts";
import { transportSocketSchema } from "../transport/tls_config.ts";
import { healthChecksSchema } from "./health/config.ts";
import { outlierDetectionSchema } from "./outlier/config.ts";
import { upstreamConnectionOptionsSchema } from "./tcp_keepalive.ts";
import {
  commonHttpProtocolOptions,
  http1ProtocolOptions,
  http2ProtocolOptions,
  typedExtensionProtocolOptions,
} from "./protocol_options.ts";

/** The message every recognised but unimplemented field fails with. */
export const NOT_SUPPORTED = "Field not supported by nuncio";

/** A field that exists in Envoy but not in nuncio: absent is fine, any value is an error. */
const unsupported = z.optional(z.never({ error: NOT_SUPPORTED }));

/** Shape entries rejecting each of `names` (spread into a strictObject shape). */
function unsupportedFields<const K extends string>(...names: K[]): Record<K, typeof unsupported> {
  const out = {} as Record<K, typeof unsupported>;
  for (const n of names) out[n] = unsupported;
  return out;
}

/** An enum whose `unsupported` members are valid Envoy values that nuncio rejects with NOT_SUPPORTED. */
function partialEnum<const S extends string>(
  what: string,
  supported: readonly S[],
  notYet: readonly string[],
) {
  return z.pipe(
    z.string(),
    transformWithIssues((v, ctx): S => {
      if ((supported as readonly string[]).includes(v)) return v as S;
      // Envoy reads enums case-insensitively (`round_robin` is ROUND_ROBIN)
      const upper = v.toUpperCase();
      if ((supported as readonly string[]).includes(upper)) return upper as S;
      if (notYet.includes(upper)) v = upper;
      ctx.addIssue({
        code: "custom",
        message: notYet.includes(v)
          ? `${NOT_SUPPORTED}: ${what} ${v} is not supported`
          : `Invalid ${what} "${v}" (expected one of ${supported.join(", ")})`,
      });
      return z.NEVER;
    }),
  );
}

/** True when `n` is prime (config time only). */
export function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** Cluster.type values nuncio implements. */
export const CLUSTER_TYPES = ["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"] as const;
/** Cluster.lb_policy values nuncio implements. */
export const LB_POLICIES = [
  "ROUND_ROBIN",
  "LEAST_REQUEST",
  "RANDOM",
  "RING_HASH",
  "MAGLEV",
  "CLUSTER_PROVIDED",
] as const;
/** Cluster.dns_lookup_family values. */
export const DNS_LOOKUP_FAMILIES = ["AUTO", "V4_ONLY", "V6_ONLY", "V4_PREFERRED", "ALL"] as const;
/** One of DNS_LOOKUP_FAMILIES. */
export type DnsLookupFamily = typeof DNS_LOOKUP_FAMILIES[number];

const MAX_RING_SIZE = 8_388_608;

/** Highest priority level accepted (Envoy allows any uint32; nuncio keeps one array slot per level). */
export const MAX_PRIORITY = 127;

const healthStatus = envoyEnum(["UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED"]);

const locality = z.strictObject({
  region: z.optional(z.string()),
  zone: z.optional(z.string()),
  sub_zone: z.optional(z.string()),
});

const endpoint = z.strictObject({
  address,
  hostname: z.optional(z.string()),
  ...unsupportedFields("health_check_config", "additional_addresses"),
});

const lbEndpoint = z.strictObject({
  endpoint,
  health_status: z._default(healthStatus, "UNKNOWN"),
  load_balancing_weight: z.optional(uint32.check(z.minimum(1))),
  /** filter_metadata; `envoy.lb` is what the subset load balancer matches. */
  metadata: z.optional(metadataSchema),
  ...unsupportedFields("endpoint_name"),
});

const localityLbEndpoints = z.strictObject({
  locality: z.optional(locality),
  lb_endpoints: z._default(z.array(lbEndpoint), []),
  load_balancing_weight: z.optional(uint32.check(z.minimum(1))),
  priority: z._default(uint32.check(z.maximum(MAX_PRIORITY)), 0),
  ...unsupportedFields("proximity", "leds_cluster_locality_config", "metadata"),
});

/** ClusterLoadAssignment.Policy: the overprovisioning factor; dropping and staleness are not implemented. */
const lbPolicy = z.strictObject({
  overprovisioning_factor: z._default(uint32.check(z.minimum(1)), 140),
  ...unsupportedFields("drop_overloads", "endpoint_stale_after", "weighted_priority_health"),
});

const loadAssignmentShape = {
  endpoints: z._default(z.array(localityLbEndpoints), []),
  policy: z.optional(lbPolicy),
  ...unsupportedFields("named_endpoints"),
};

/** A cluster's inline `load_assignment` (its cluster_name is ignored, as Envoy). */
const loadAssignment = z.strictObject({ cluster_name: z.optional(z.string()), ...loadAssignmentShape });

/**
 * envoy.config.endpoint.v3.ClusterLoadAssignment as an EDS resource (the xDS layer validates each one with it
 * before calling ClusterManager.setEndpoints); same fields as a cluster's load_assignment, cluster_name required.
 */
export const clusterLoadAssignmentSchema = z.strictObject({
  cluster_name: z.string().check(z.minLength(1)),
  ...loadAssignmentShape,
});

/** A parsed, defaulted ClusterLoadAssignment (EDS resource or a cluster's load_assignment). */
export type ClusterLoadAssignment = z.output<typeof loadAssignment>;

/** envoy.config.core.v3.RuntimeDouble (active_request_bias): Envoy takes any bias >= 0; absent (proto3) is 0. */
const runtimeDouble = z.strictObject({
  default_value: z._default(double.check(z.minimum(0)), 0),
  // read from the runtime when the load balancer is rebuilt (lb/factory.ts), default_value when absent
  runtime_key: z.optional(z.string()),
});

const ringHashLbConfig = z.strictObject({
  minimum_ring_size: z._default(
    z.pipe(uint64, z.number().check(z.minimum(1), z.maximum(MAX_RING_SIZE))),
    1024,
  ),
  maximum_ring_size: z._default(
    z.pipe(uint64, z.number().check(z.minimum(1), z.maximum(MAX_RING_SIZE))),
    MAX_RING_SIZE,
  ),
  hash_function: z._default(partialEnum("hash_function", ["XX_HASH"] as const, ["MURMUR_HASH_2"]), "XX_HASH"),
}).check(z.refine((c) => c.minimum_ring_size <= c.maximum_ring_size, {
  error: "minimum_ring_size must not exceed maximum_ring_size",
  path: ["minimum_ring_size"],
}));

const maglevLbConfig = z.strictObject({
  table_size: z._default(
    z.pipe(uint64, z.number().check(z.maximum(5_000_011))).check(
      z.refine(isPrime, { error: "table_size must be prime" }),
    ),
    65537,
  ),
});

const leastRequestLbConfig = z.strictObject({
  choice_count: z._default(uint32.check(z.minimum(2)), 2),
  active_request_bias: z.optional(runtimeDouble),
  ...unsupportedFields("slow_start_config"),
});

const roundRobinLbConfig = z.strictObject({ ...unsupportedFields("slow_start_config") });

/**
 * CommonLbConfig.ZoneAwareLbConfig: zone aware routing toward hosts in this proxy's locality (needs
 * cluster_manager.local_cluster_name; ROUND_ROBIN, LEAST_REQUEST and RANDOM only, as Envoy).
 */
const zoneAwareLbConfig = z.strictObject({
  /** Share of picks that consider zone routing (Envoy rounds the percent to an integer; default 100). */
  routing_enabled: z.optional(percent),
  /** Fewer healthy priority 0 upstream hosts than this: no zone routing (default 6). */
  min_cluster_size: z.optional(uint64),
  /** No host instead of all hosts when the upstream level or the local cluster is in panic. */
  fail_traffic_on_panic: z._default(z.boolean(), false),
  ...unsupportedFields("force_locality_direct_routing", "force_local_zone", "locality_basis"),
});

const commonLbConfig = z.strictObject({
  healthy_panic_threshold: z.optional(percent),
  /** Present (an empty message): pick a locality by weight x availability, then a host in it. */
  locality_weighted_lb_config: z.optional(z.strictObject({})),
  zone_aware_lb_config: z.optional(zoneAwareLbConfig),
  ...unsupportedFields(
    "update_merge_window",
    "ignore_new_hosts_until_first_hc",
    "close_connections_on_host_set_change",
    "consistent_hashing_lb_config",
    "override_host_status",
  ),
});

/** Cluster.LbSubsetConfig.LbSubsetSelector. */
const lbSubsetSelector = z.strictObject({
  keys: z._default(z.array(z.string()), []),
  single_host_per_subset: z._default(z.boolean(), false),
  fallback_policy: z._default(
    envoyEnum(["NOT_DEFINED", "NO_FALLBACK", "ANY_ENDPOINT", "DEFAULT_SUBSET", "KEYS_SUBSET"]),
    "NOT_DEFINED",
  ),
  fallback_keys_subset: z._default(z.array(z.string()), []),
}).check(z.superRefine((s, ctx) => {
  // Envoy's SubsetSelector checks, with its messages
  const issue = (message: string) =>
    ctx.addIssue({ code: "custom", path: ["fallback_keys_subset"], message });
  if (s.fallback_policy !== "KEYS_SUBSET") {
    if (s.fallback_keys_subset.length > 0) {
      issue("fallback_keys_subset can be set only for KEYS_SUBSET fallback_policy");
    }
    return;
  }
  const keys = new Set(s.keys);
  const fallback = new Set(s.fallback_keys_subset);
  if (fallback.size === 0) issue("fallback_keys_subset cannot be empty");
  else if ([...fallback].some((k) => !keys.has(k))) {
    issue("fallback_keys_subset must be a subset of selector keys");
  } else if (fallback.size === keys.size) issue("fallback_keys_subset cannot be equal to keys");
}));

/** Cluster.LbSubsetConfig: the subset load balancer (enabled when some selector has keys). */
const lbSubsetConfig = z.strictObject({
  fallback_policy: z._default(envoyEnum(["NO_FALLBACK", "ANY_ENDPOINT", "DEFAULT_SUBSET"]), "NO_FALLBACK"),
  default_subset: z._default(structSchema, {}),
  subset_selectors: z._default(z.array(lbSubsetSelector), []),
  locality_weight_aware: z._default(z.boolean(), false),
  scale_locality_weight: z._default(z.boolean(), false),
  panic_mode_any: z._default(z.boolean(), false),
  list_as_any: z._default(z.boolean(), false),
  metadata_fallback_policy: z._default(
    envoyEnum(["METADATA_NO_FALLBACK", "FALLBACK_LIST"]),
    "METADATA_NO_FALLBACK",
  ),
});

/** A parsed Cluster.LbSubsetConfig. */
export type LbSubsetConfig = z.output<typeof lbSubsetConfig>;

const cbThresholds = z.strictObject({
  priority: z._default(envoyEnum(["DEFAULT", "HIGH"]), "DEFAULT"),
  max_connections: z.optional(uint32),
  max_pending_requests: z.optional(uint32),
  max_requests: z.optional(uint32),
  max_retries: z.optional(uint32),
  retry_budget: z.optional(z.strictObject({
    budget_percent: z.optional(percent),
    min_retry_concurrency: z.optional(uint32),
  })),
  track_remaining: z._default(z.boolean(), false),
  ...unsupportedFields("max_connection_pools"),
});

/** envoy.config.cluster.v3.CircuitBreakers. */
const circuitBreakers = z.strictObject({
  thresholds: z._default(z.array(cbThresholds), []),
  ...unsupportedFields("per_host_thresholds"),
});

/** envoy.config.cluster.v3.Cluster (static clusters). */
export const clusterSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  type: z._default(partialEnum("cluster type", CLUSTER_TYPES, []), "STATIC"),
  connect_timeout: z._default(
    duration.check(z.refine((ms) => ms > 0, { error: "connect_timeout must be positive" })),
    5000,
  ),
  lb_policy: z._default(
    partialEnum("lb_policy", LB_POLICIES, [
      "LOAD_BALANCING_POLICY_CONFIG",
      "ORIGINAL_DST_LB",
    ]),
    "ROUND_ROBIN",
  ),
  load_assignment: z.optional(loadAssignment),
  eds_cluster_config: z.optional(z.strictObject({
    /** Where the endpoints come from (the main thread's xDS layer owns the subscription). */
    eds_config: configSourceSchema,
    service_name: z.optional(z.string().check(z.minLength(1))),
  })),
  dns_refresh_rate: z._default(
    duration.check(z.refine((ms) => ms >= 1, { error: "dns_refresh_rate must be at least 1ms" })),
    5000,
  ),
  dns_lookup_family: z._default(envoyEnum(DNS_LOOKUP_FAMILIES), "AUTO"),
  respect_dns_ttl: onlyValues([false], "hosts are re-resolved every dns_refresh_rate"),
  per_connection_buffer_limit_bytes: z._default(uint32, 1_048_576),
  ring_hash_lb_config: z.optional(ringHashLbConfig),
  maglev_lb_config: z.optional(maglevLbConfig),
  least_request_lb_config: z.optional(leastRequestLbConfig),
  round_robin_lb_config: z.optional(roundRobinLbConfig),
  common_lb_config: z.optional(commonLbConfig),
  lb_subset_config: z.optional(lbSubsetConfig),
  health_checks: z.optional(healthChecksSchema),
  outlier_detection: z.optional(outlierDetectionSchema),
  ignore_health_on_host_removal: z._default(z.boolean(), false),
  common_http_protocol_options: z.optional(commonHttpProtocolOptions),
  /** Deprecated alias of common_http_protocol_options.max_requests_per_connection. */
  max_requests_per_connection: z.optional(uint32),
  transport_socket: z.optional(transportSocketSchema("upstream")),
  circuit_breakers: z.optional(circuitBreakers),
  /** HttpProtocolOptions and RedisProtocolOptions, parsed. */
  typed_extension_protocol_options: z.optional(typedExtensionProtocolOptions),
  /** Deprecated: same as explicit_http_config.http_protocol_options. */
  http_protocol_options: z.optional(http1ProtocolOptions),
  /** Deprecated: same as explicit_http_config.http2_protocol_options. */
  http2_protocol_options: z.optional(http2ProtocolOptions),
  /** tcp_keepalive: SO_KEEPALIVE and its timings (see tcp_keepalive.ts). */
  upstream_connection_options: z.optional(upstreamConnectionOptionsSchema),
  /** ORIGINAL_DST: where the destination comes from (see original_dst.ts). */
  original_dst_lb_config: z.optional(z.strictObject({
    use_http_header: z._default(z.boolean(), false),
    http_header_name: z.optional(
      z.pipe(z.string().check(z.minLength(1)), z.transform((s) => s.toLowerCase())),
    ),
    upstream_port_override: z.optional(uint32.check(z.maximum(65535))),
    ...unsupportedFields("metadata_key"),
  })),
  /** ORIGINAL_DST: how often hosts no request used leave the cluster (Envoy: 5 s). */
  cleanup_interval: z._default(
    duration.check(z.refine((ms) => ms > 0, { error: "cleanup_interval must be positive" })),
    5000,
  ),
  // Later issues replace these entries with real schemas.
  ...unsupportedFields(
    "transport_socket_matches",
    "alt_stat_name",
    "cluster_type",
    "load_balancing_policy",
    "upstream_bind_config",
    "upstream_config",
    "upstream_http_protocol_options",
    "protocol_selection",
    "dns_failure_refresh_rate",
    "dns_resolvers",
    "use_tcp_for_dns_lookups",
    "dns_resolution_config",
    "typed_dns_resolver_config",
    "dns_jitter",
    "wait_for_warm_on_init",
    "metadata",
    "close_connections_on_host_health_failure",
    "filters",
    "lrs_server",
    "lrs_report_endpoint_metrics",
    "track_timeout_budgets",
    "track_cluster_stats",
    "preconnect_policy",
    "connection_pool_per_downstream_connection",
  ),
}).check(z.superRefine((c, ctx) => {
  if (
    c.typed_extension_protocol_options?.http !== undefined &&
    (c.http_protocol_options !== undefined || c.http2_protocol_options !== undefined)
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["typed_extension_protocol_options"],
      message:
        "HttpProtocolOptions cannot be combined with the deprecated http_protocol_options or http2_protocol_options",
    });
  }
  if (c.http_protocol_options !== undefined && c.http2_protocol_options !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["http2_protocol_options"],
      message: "Only one of http_protocol_options and http2_protocol_options may be set",
    });
  }
  if (
    c.max_requests_per_connection !== undefined &&
    c.common_http_protocol_options?.max_requests_per_connection !== undefined
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["max_requests_per_connection"],
      message:
        "Only one of max_requests_per_connection and common_http_protocol_options.max_requests_per_connection may be set",
    });
  }
  if (c.type === "EDS") {
    if (c.eds_cluster_config === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["eds_cluster_config"],
        message: "EDS clusters need eds_cluster_config",
      });
    }
    if (c.load_assignment !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["load_assignment"],
        message: "EDS clusters take their endpoints from EDS: load_assignment must not be set",
      });
    }
  } else if (c.eds_cluster_config !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["eds_cluster_config"],
      message: `eds_cluster_config is only valid for EDS clusters (type is ${c.type})`,
    });
  }
  if (
    c.common_lb_config?.locality_weighted_lb_config !== undefined &&
    (c.lb_policy === "RING_HASH" || c.lb_policy === "MAGLEV")
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["common_lb_config", "locality_weighted_lb_config"],
      message: `${NOT_SUPPORTED}: locality_weighted_lb_config with lb_policy ${c.lb_policy}`,
    });
  }
  if (
    c.lb_subset_config?.locality_weight_aware && c.common_lb_config?.locality_weighted_lb_config === undefined
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["lb_subset_config", "locality_weight_aware"],
      message:
        `Locality weight aware subset LB requires that a locality_weighted_lb_config be set in ${c.name}`,
    });
  }
  const zoneAware = c.common_lb_config?.zone_aware_lb_config;
  if (zoneAware !== undefined && c.common_lb_config?.locality_weighted_lb_config !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["common_lb_config", "zone_aware_lb_config"],
      message: "Only one of zone_aware_lb_config and locality_weighted_lb_config may be set",
    });
  }
  if (zoneAware !== undefined && (c.lb_policy === "RING_HASH" || c.lb_policy === "MAGLEV")) {
    ctx.addIssue({
      code: "custom",
      path: ["common_lb_config", "zone_aware_lb_config"],
      message: `${NOT_SUPPORTED}: zone_aware_lb_config with lb_policy ${c.lb_policy} (Envoy routes by zone ` +
        "only with ROUND_ROBIN, LEAST_REQUEST and RANDOM)",
    });
  }
  if (c.type === "ORIGINAL_DST") {
    // Envoy's messages (original_dst_cluster.cc)
    if (c.lb_policy !== "CLUSTER_PROVIDED") {
      ctx.addIssue({
        code: "custom",
        path: ["lb_policy"],
        message: `cluster: LB policy ${c.lb_policy} is not valid for Cluster type ORIGINAL_DST. Only ` +
          "'CLUSTER_PROVIDED' is allowed with cluster type 'ORIGINAL_DST'",
      });
    }
    if (c.load_assignment !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["load_assignment"],
        message: "ORIGINAL_DST clusters must have no load assignment configured",
      });
    }
    if (c.lb_subset_config !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["lb_subset_config"],
        message: "ORIGINAL_DST clusters pick the destination itself: lb_subset_config does not apply",
      });
    }
  } else if (c.lb_policy === "CLUSTER_PROVIDED") {
    ctx.addIssue({
      code: "custom",
      path: ["lb_policy"],
      message:
        `cluster: LB policy CLUSTER_PROVIDED is not valid for Cluster type ${c.type}: only ORIGINAL_DST ` +
        "provides its own load balancer here",
    });
  } else if (c.original_dst_lb_config !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["original_dst_lb_config"],
      message: `original_dst_lb_config applies to ORIGINAL_DST clusters (type is ${c.type})`,
    });
  }
  const localities = c.load_assignment?.endpoints ?? [];
  if (c.type === "LOGICAL_DNS" && (localities.length !== 1 || localities[0].lb_endpoints.length !== 1)) {
    ctx.addIssue({
      code: "custom",
      path: ["load_assignment"],
      message: "LOGICAL_DNS clusters must have exactly one locality with exactly one lb_endpoint",
    });
  }
  if (c.type !== "STATIC") return;
  localities.forEach((l, i) =>
    l.lb_endpoints.forEach((e, j) => {
      const a = e.endpoint.address.socket_address.address;
      if (ipFamily(a) === 0) {
        ctx.addIssue({
          code: "custom",
          path: [
            "load_assignment",
            "endpoints",
            i,
            "lb_endpoints",
            j,
            "endpoint",
            "address",
            "socket_address",
            "address",
          ],
          message: `STATIC cluster endpoint address "${a}" is not an IP address (use STRICT_DNS for names)`,
        });
      }
    })
  );
}));

/** A parsed, defaulted cluster. */
export type ClusterConfig = z.output<typeof clusterSchema>;
/** The cluster config as written (before defaults). */
export type ClusterConfigInput = z.input<typeof clusterSchema>;
