/** Config of envoy.filters.http.health_check (envoy.extensions.filters.http.health_check.v3.HealthCheck). */
import { z } from "zod/mini";
import { headerMatcherSchema } from "../../../../http/routing/config_match.ts";

const NOT_SUPPORTED = "Field not supported by nuncio";

/** The HealthCheck filter message. */
export const healthCheckFilterSchema = z.strictObject({
  pass_through_mode: z.boolean({ error: "pass_through_mode is required" }),
  headers: z._default(z.array(headerMatcherSchema), []),
  cache_time: z.optional(z.never({ error: NOT_SUPPORTED })),
  cluster_min_healthy_percentages: z.optional(z.never({ error: NOT_SUPPORTED })),
});

/** The parsed HealthCheck filter config. */
export type HealthCheckFilterConfig = z.output<typeof healthCheckFilterSchema>;
