/** Config of envoy.filters.http.fault (envoy.extensions.filters.http.fault.v3.HTTPFault). */
import { z } from "zod/mini";
import { duration, fractionalPercent, uint32 } from "../../../../config/common.ts";
import { notSupportedFields } from "../../../../config/schema_util.ts";
import { headerMatcherSchema } from "../../../../http/routing/config_match.ts";

const empty = z.strictObject({});

function oneOf<T extends Record<string, unknown>>(keys: (keyof T & string)[]) {
  return (v: T, ctx: z.core.$RefinementCtx) => {
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
  fixed_delay: z.optional(duration),
  header_delay: z.optional(empty),
  percentage: z.optional(fractionalPercent),
}).check(z.superRefine(oneOf(["fixed_delay", "header_delay"])));

/** envoy.extensions.filters.http.fault.v3.FaultAbort. */
export const faultAbortSchema = z.strictObject({
  http_status: z.optional(uint32.check(z.minimum(200), z.maximum(599))),
  grpc_status: z.optional(uint32),
  header_abort: z.optional(empty),
  percentage: z.optional(fractionalPercent),
}).check(z.superRefine(oneOf(["http_status", "grpc_status", "header_abort"])));

/** The HTTPFault message (also its per-route form). */
export const httpFaultSchema = z.strictObject({
  delay: z.optional(faultDelaySchema),
  abort: z.optional(faultAbortSchema),
  upstream_cluster: z.optional(z.string()),
  headers: z._default(z.array(headerMatcherSchema), []),
  downstream_nodes: z._default(z.array(z.string()), []),
  max_active_faults: z.optional(uint32),
  // Runtime keys replacing Envoy's defaults (fault.http.*): read per request from the runtime (settings.ts).
  delay_percent_runtime: z.optional(z.string()),
  abort_percent_runtime: z.optional(z.string()),
  delay_duration_runtime: z.optional(z.string()),
  abort_http_status_runtime: z.optional(z.string()),
  max_active_faults_runtime: z.optional(z.string()),
  response_rate_limit_percent_runtime: z.optional(z.string()),
  abort_grpc_status_runtime: z.optional(z.string()),
  disable_downstream_cluster_stats: z.optional(z.boolean()),
  ...notSupportedFields(["response_rate_limit", "filter_metadata"]),
});

/** The parsed HTTPFault config. */
export type HttpFaultConfig = z.infer<typeof httpFaultSchema>;
