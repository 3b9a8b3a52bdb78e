/** zod schemas for the route actions: RouteAction (forward), RedirectAction and DirectResponseAction. */
import { z } from "zod";
import { rateLimitSchema } from "./rate_limits.ts";
import { duration, uint32 } from "../../config/common.ts";
import { notSupportedFields } from "../../config/schema_util.ts";
import { exactlyOne, headersToAdd, headersToRemove, regexMatchAndSubstitute } from "./config_util.ts";
import { requestMirrorPolicySchema, retryPolicySchema } from "./config_retry.ts";

/** envoy.config.route.v3.WeightedCluster.ClusterWeight. */
export const clusterWeightSchema = z.strictObject({
  name: z.string().min(1),
  weight: uint32.default(0),
  request_headers_to_add: headersToAdd.default([]),
  request_headers_to_remove: headersToRemove.default([]),
  response_headers_to_add: headersToAdd.default([]),
  response_headers_to_remove: headersToRemove.default([]),
  ...notSupportedFields([
    "cluster_header",
    "metadata_match",
    "typed_per_filter_config",
    "host_rewrite_literal",
  ]),
});

/** envoy.config.route.v3.WeightedCluster. */
export const weightedClusterSchema = z.strictObject({
  clusters: z.array(clusterWeightSchema).min(1),
  /** Deprecated in Envoy but accepted; when set, the weights must add up to it. */
  total_weight: uint32.min(1).optional(),
  ...notSupportedFields(["runtime_key_prefix", "header_name", "random_value_specifier"]),
}).superRefine((v, ctx) => {
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
});

/** envoy.config.route.v3.RouteAction.HashPolicy. */
export const hashPolicySchema = z.strictObject({
  header: z.strictObject({
    header_name: z.string().min(1),
    regex_rewrite: regexMatchAndSubstitute.optional(),
  }).optional(),
  cookie: z.strictObject({
    name: z.string().min(1),
    ttl: duration.optional(),
    path: z.string().optional(),
    ...notSupportedFields(["attributes"]),
  }).optional(),
  connection_properties: z.strictObject({ source_ip: z.boolean().default(false) }).optional(),
  query_parameter: z.strictObject({ name: z.string().min(1) }).optional(),
  terminal: z.boolean().default(false),
  ...notSupportedFields(["filter_state"]),
}).superRefine((v, ctx) =>
  exactlyOne(v, ["header", "cookie", "connection_properties", "query_parameter"], ctx)
);

/** The parsed form of a HashPolicy. */
export type HashPolicyConfig = z.infer<typeof hashPolicySchema>;

/** envoy.config.route.v3.RouteAction. */
export const routeActionSchema = z.strictObject({
  cluster: z.string().min(1).optional(),
  cluster_header: z.string().min(1).optional(),
  weighted_clusters: weightedClusterSchema.optional(),
  prefix_rewrite: z.string().optional(),
  regex_rewrite: regexMatchAndSubstitute.optional(),
  host_rewrite_literal: z.string().optional(),
  auto_host_rewrite: z.boolean().optional(),
  timeout: duration.optional(),
  idle_timeout: duration.optional(),
  hash_policy: z.array(hashPolicySchema).default([]),
  retry_policy: retryPolicySchema.optional(),
  request_mirror_policies: z.array(requestMirrorPolicySchema).default([]),
  priority: z.enum(["DEFAULT", "HIGH"]).default("DEFAULT"),
  rate_limits: z.array(rateLimitSchema).default([]),
  include_vh_rate_limits: z.boolean().default(false),
  /** Stream duration limits applied by the connection manager (grpc-timeout handling). */
  max_stream_duration: z.strictObject({
    max_stream_duration: duration.optional(),
    grpc_timeout_header_max: duration.optional(),
    grpc_timeout_header_offset: duration.optional(),
  }).optional(),
  ...notSupportedFields([
    "cluster_specifier_plugin",
    "inline_cluster_specifier_plugin",
    "cluster_not_found_response_code",
    "metadata_match",
    "path_rewrite_policy",
    "host_rewrite_header",
    "host_rewrite_path_regex",
    "append_x_forwarded_host",
    "retry_policy_typed_config",
    "cors",
    "max_grpc_timeout",
    "grpc_timeout_offset",
    "upgrade_configs",
    "internal_redirect_policy",
    "internal_redirect_action",
    "max_internal_redirects",
    "hedge_policy",
    "early_data_policy",
  ]),
}).superRefine((v, ctx) => {
  exactlyOne(v, ["cluster", "cluster_header", "weighted_clusters"], ctx);
  exactlyOne(v, ["prefix_rewrite", "regex_rewrite"], ctx, false);
  exactlyOne(v, ["host_rewrite_literal", "auto_host_rewrite"], ctx, false);
});

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
  https_redirect: z.boolean().optional(),
  scheme_redirect: z.string().min(1).optional(),
  host_redirect: z.string().optional(),
  port_redirect: uint32.max(65535).optional(),
  path_redirect: z.string().optional(),
  prefix_rewrite: z.string().optional(),
  regex_rewrite: regexMatchAndSubstitute.optional(),
  response_code: z.enum(Object.keys(REDIRECT_CODES) as [keyof typeof REDIRECT_CODES])
    .default("MOVED_PERMANENTLY")
    .transform((c) => REDIRECT_CODES[c]),
  strip_query: z.boolean().default(false),
}).superRefine((v, ctx) => {
  exactlyOne(v, ["https_redirect", "scheme_redirect"], ctx, false);
  exactlyOne(v, ["path_redirect", "prefix_rewrite", "regex_rewrite"], ctx, false);
});

/** The parsed form of a RedirectAction (response_code as a number). */
export type RedirectActionConfig = z.infer<typeof redirectActionSchema>;

/** envoy.config.core.v3.DataSource for a direct response body, resolved to bytes at config load. */
export const bodyDataSource = z.strictObject({
  filename: z.string().min(1).optional(),
  inline_bytes: z.string().optional(),
  inline_string: z.string().optional(),
  ...notSupportedFields(["environment_variable", "watched_directory"]),
}).superRefine((v, ctx) => exactlyOne(v, ["filename", "inline_bytes", "inline_string"], ctx))
  .transform((v, ctx): Uint8Array => {
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
  });

/** envoy.config.route.v3.DirectResponseAction; body parses to bytes (empty when absent). */
export const directResponseActionSchema = z.strictObject({
  status: z.number().int().min(100).max(599),
  body: bodyDataSource.optional().transform((b) => b ?? new Uint8Array(0)),
});

/** The parsed form of a DirectResponseAction. */
export type DirectResponseActionConfig = z.infer<typeof directResponseActionSchema>;
