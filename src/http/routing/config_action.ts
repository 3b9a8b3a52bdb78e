/** zod schemas for the route actions: RouteAction (forward), RedirectAction and DirectResponseAction. */
import { z } from "zod/mini";
import { rateLimitSchema } from "./rate_limits.ts";
import { duration, uint32 } from "../../config/common.ts";
import { envoyEnum, integer, notSupportedFields, transformWithIssues } from "../../config/schema_util.ts";
import { exactlyOne, headersToAdd, headersToRemove, regexMatchAndSubstitute } from "./config_util.ts";
import { requestMirrorPolicySchema, retryPolicySchema } from "./config_retry.ts";
import { metadataSchema } from "../../config/metadata.ts";
import { NOT_SUPPORTED } from "../../config/errors.ts";
import { registry } from "../../registry/registry.ts";

const CORS_POLICY_URL = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";

/**
 * The deprecated envoy.config.route.v3.CorsPolicy (VirtualHost.cors, RouteAction.cors), which Envoy still
 * honours: the fields of the CORS filter's CorsPolicy, parsed by that filter's per-route schema (found in the
 * registry at parse time, like typed_per_filter_config entries).
 */
export const legacyCorsPolicy = z.pipe(
  z.record(z.string(), z.unknown()),
  transformWithIssues((v, ctx): unknown => {
    const ext = registry.findPerRoute(CORS_POLICY_URL);
    if (!ext) {
      ctx.addIssue({ code: "custom", path: [], message: NOT_SUPPORTED });
      return undefined;
    }
    const r = ext.perRouteSchema!.safeParse(v);
    if (r.success) return r.data;
    for (const i of r.error.issues) ctx.addIssue({ code: "custom", path: i.path, message: i.message });
    return undefined;
  }),
);

/** envoy.config.route.v3.WeightedCluster.ClusterWeight. */
export const clusterWeightSchema = z.strictObject({
  name: z.string().check(z.minLength(1)),
  weight: z._default(uint32, 0),
  request_headers_to_add: z._default(headersToAdd, []),
  request_headers_to_remove: z._default(headersToRemove, []),
  response_headers_to_add: z._default(headersToAdd, []),
  response_headers_to_remove: z._default(headersToRemove, []),
  /** Subset load balancer criteria (`envoy.lb`), merged over the route's. */
  metadata_match: z.optional(metadataSchema),
  ...notSupportedFields([
    "cluster_header",
    "typed_per_filter_config",
    "host_rewrite_literal",
  ]),
});

/** envoy.config.route.v3.WeightedCluster. */
export const weightedClusterSchema = z.strictObject({
  clusters: z.array(clusterWeightSchema).check(z.minLength(1)),
  /** Deprecated in Envoy but accepted; when set, the weights must add up to it. */
  total_weight: z.optional(uint32.check(z.minimum(1))),
  ...notSupportedFields(["runtime_key_prefix", "header_name", "random_value_specifier"]),
}).check(z.superRefine((v, ctx) => {
  const sum = v.clusters.reduce((s, c) => s + c.weight, 0);
  if (sum === 0) {
    ctx.addIssue({ code: "custom", path: ["clusters"], message: "Sum of weights must be greater than 0" });
  } else if (v.total_weight !== undefined && sum !== v.total_weight) {
    ctx.addIssue({
      code: "custom",
      path: ["total_weight"],
      message: `Sum of weights (${sum}) must equal total_weight (${v.total_weight})`,
    });
  }
}));

/** envoy.config.route.v3.RouteAction.HashPolicy. */
export const hashPolicySchema = z.strictObject({
  header: z.optional(z.strictObject({
    header_name: z.string().check(z.minLength(1)),
    regex_rewrite: z.optional(regexMatchAndSubstitute),
  })),
  cookie: z.optional(z.strictObject({
    name: z.string().check(z.minLength(1)),
    ttl: z.optional(duration),
    path: z.optional(z.string()),
    ...notSupportedFields(["attributes"]),
  })),
  connection_properties: z.optional(z.strictObject({ source_ip: z._default(z.boolean(), false) })),
  query_parameter: z.optional(z.strictObject({ name: z.string().check(z.minLength(1)) })),
  terminal: z._default(z.boolean(), false),
  ...notSupportedFields(["filter_state"]),
}).check(
  z.superRefine((v, ctx) =>
    exactlyOne(v, ["header", "cookie", "connection_properties", "query_parameter"], ctx)
  ),
);

/** The parsed form of a HashPolicy. */
export type HashPolicyConfig = z.infer<typeof hashPolicySchema>;

/** envoy.config.route.v3.RouteAction. */
export const routeActionSchema = z.strictObject({
  cluster: z.optional(z.string().check(z.minLength(1))),
  cluster_header: z.optional(z.string().check(z.minLength(1))),
  weighted_clusters: z.optional(weightedClusterSchema),
  prefix_rewrite: z.optional(z.string()),
  regex_rewrite: z.optional(regexMatchAndSubstitute),
  host_rewrite_literal: z.optional(z.string()),
  auto_host_rewrite: z.optional(z.boolean()),
  timeout: z.optional(duration),
  idle_timeout: z.optional(duration),
  hash_policy: z._default(z.array(hashPolicySchema), []),
  retry_policy: z.optional(retryPolicySchema),
  request_mirror_policies: z._default(z.array(requestMirrorPolicySchema), []),
  priority: z._default(envoyEnum(["DEFAULT", "HIGH"]), "DEFAULT"),
  rate_limits: z._default(z.array(rateLimitSchema), []),
  include_vh_rate_limits: z._default(z.boolean(), false),
  /** Subset load balancer criteria: filter_metadata `envoy.lb` selects hosts by their endpoint metadata. */
  metadata_match: z.optional(metadataSchema),
  /** Deprecated in Envoy (typed_per_filter_config replaces it) but honoured; see legacyCorsPolicy. */
  cors: z.optional(legacyCorsPolicy),
  /** Stream duration limits applied by the connection manager (grpc-timeout handling). */
  max_stream_duration: z.optional(z.strictObject({
    max_stream_duration: z.optional(duration),
    grpc_timeout_header_max: z.optional(duration),
    grpc_timeout_header_offset: z.optional(duration),
  })),
  ...notSupportedFields([
    "cluster_specifier_plugin",
    "inline_cluster_specifier_plugin",
    "cluster_not_found_response_code",
    "path_rewrite_policy",
    "host_rewrite_header",
    "host_rewrite_path_regex",
    "append_x_forwarded_host",
    "retry_policy_typed_config",
    "max_grpc_timeout",
    "grpc_timeout_offset",
    "upgrade_configs",
    "internal_redirect_policy",
    "internal_redirect_action",
    "max_internal_redirects",
    "hedge_policy",
    "early_data_policy",
  ]),
}).check(z.superRefine((v, ctx) => {
  exactlyOne(v, ["cluster", "cluster_header", "weighted_clusters"], ctx);
  exactlyOne(v, ["prefix_rewrite", "regex_rewrite"], ctx, false);
  exactlyOne(v, ["host_rewrite_literal", "auto_host_rewrite"], ctx, false);
}));

/** The parsed form of a RouteAction (durations in ms). */
export type RouteActionConfig = z.infer<typeof routeActionSchema>;

const REDIRECT_CODES = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
} as const;

/** envoy.config.route.v3.RedirectAction; response_code parses to the status number. */
export const redirectActionSchema = z.strictObject({
  https_redirect: z.optional(z.boolean()),
  scheme_redirect: z.optional(z.string().check(z.minLength(1))),
  host_redirect: z.optional(z.string()),
  port_redirect: z.optional(uint32.check(z.maximum(65535))),
  path_redirect: z.optional(z.string()),
  prefix_rewrite: z.optional(z.string()),
  regex_rewrite: z.optional(regexMatchAndSubstitute),
  response_code: z.pipe(
    z._default(envoyEnum(Object.keys(REDIRECT_CODES) as [keyof typeof REDIRECT_CODES]), "MOVED_PERMANENTLY"),
    z.transform((c) => REDIRECT_CODES[c]),
  ),
  strip_query: z._default(z.boolean(), false),
}).check(z.superRefine((v, ctx) => {
  exactlyOne(v, ["https_redirect", "scheme_redirect"], ctx, false);
  exactlyOne(v, ["path_redirect", "prefix_rewrite", "regex_rewrite"], ctx, false);
}));

/** The parsed form of a RedirectAction (response_code as a number). */
export type RedirectActionConfig = z.infer<typeof redirectActionSchema>;

/** envoy.config.core.v3.DataSource for a direct response body, resolved to bytes at config load. */
export const bodyDataSource = z.pipe(
  z.strictObject({
    filename: z.optional(z.string().check(z.minLength(1))),
    inline_bytes: z.optional(z.string()),
    inline_string: z.optional(z.string()),
    ...notSupportedFields(["environment_variable", "watched_directory"]),
  }).check(z.superRefine((v, ctx) => exactlyOne(v, ["filename", "inline_bytes", "inline_string"], ctx))),
  transformWithIssues((v, ctx): Uint8Array => {
    if (v.inline_string !== undefined) return new TextEncoder().encode(v.inline_string);
    if (v.inline_bytes !== undefined) {
      try {
        return Uint8Array.from(atob(v.inline_bytes), (c) => c.charCodeAt(0));
      } catch {
        ctx.addIssue({ code: "custom", path: ["inline_bytes"], message: "Invalid base64" });
        return z.NEVER;
      }
    }
    try {
      return Deno.readFileSync(v.filename!);
    } catch (e) {
      ctx.addIssue({
        code: "custom",
        path: ["filename"],
        message: `Cannot read ${v.filename}: ${(e as Error).message}`,
      });
      return z.NEVER;
    }
  }),
);

/** envoy.config.route.v3.DirectResponseAction; body parses to bytes (empty when absent). */
export const directResponseActionSchema = z.strictObject({
  status: integer.check(z.minimum(100), z.maximum(599)),
  body: z.pipe(z.optional(bodyDataSource), z.transform((b) => b ?? new Uint8Array(0))),
});

/** The parsed form of a DirectResponseAction. */
export type DirectResponseActionConfig = z.infer<typeof directResponseActionSchema>;
