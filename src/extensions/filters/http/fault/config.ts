/** Config of envoy.filters.http.fault (envoy.extensions.filters.http.fault.v3.HTTPFault). */
import { z } from "zod";
import { duration, fractionalPercent, uint32 } from "../../../../config/common.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";
import { headerMatcherSchema } from "../../../../http/routing/config_match.ts";

const empty = z.strictObject({});

function oneOf<T extends Record<string, unknown>>(keys: (keyof T & string)[]) {
  return (v: T, ctx: z.RefinementCtx) => {
    const set = keys.filter((k) => v[k] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({
        code: "custom",
        path: set.length ? [set[1]] : [],
        message: `Exactly one of ${keys.join(", ")} must be set`,
      });
    }
  };
}

/** envoy.extensions.filters.common.fault.v3.FaultDelay. */
export const faultDelaySchema = z.strictObject({
  fixed_delay: duration.optional(),
  header_delay: empty.optional(),
  percentage: fractionalPercent.optional(),
}).superRefine(oneOf(["fixed_delay", "header_delay"]));

/** envoy.extensions.filters.http.fault.v3.FaultAbort. */
export const faultAbortSchema = z.strictObject({
  http_status: uint32.min(200).max(599).optional(),
  grpc_status: uint32.optional(),
  header_abort: empty.optional(),
  percentage: fractionalPercent.optional(),
}).superRefine(oneOf(["http_status", "grpc_status", "header_abort"]));

/** The HTTPFault message (also its per-route form). */
export const httpFaultSchema = z.strictObject({
  delay: faultDelaySchema.optional(),
  abort: faultAbortSchema.optional(),
  upstream_cluster: z.string().optional(),
  headers: z.array(headerMatcherSchema).default([]),
  downstream_nodes: z.array(z.string()).default([]),
  max_active_faults: uint32.optional(),
  // Runtime overrides are not implemented: the keys are accepted and the config values apply.
  delay_percent_runtime: z.string().optional(),
  abort_percent_runtime: z.string().optional(),
  delay_duration_runtime: z.string().optional(),
  abort_http_status_runtime: z.string().optional(),
  max_active_faults_runtime: z.string().optional(),
  response_rate_limit_percent_runtime: z.string().optional(),
  abort_grpc_status_runtime: z.string().optional(),
  disable_downstream_cluster_stats: z.boolean().optional(),
  ...notSupportedFields(["response_rate_limit", "filter_metadata"]),
});

/** The parsed HTTPFault config. */
export type HttpFaultConfig = z.infer<typeof httpFaultSchema>;
