/** The envoy.filters.http.local_ratelimit extension object for the registry. */
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type LocalRateLimitConfig, localRateLimitSchema } from "./config.ts";
import { LOCAL_RATELIMIT_NAME, LocalRateLimitFactory } from "./filter.ts";

/** envoy.filters.http.local_ratelimit (per-route config: the same LocalRateLimit message). */
export const httpLocalRateLimit: Extension<LocalRateLimitConfig, HttpFilterCreate<LocalRateLimitConfig>> = {
  name: LOCAL_RATELIMIT_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"],
  category: "http_filter",
  schema: localRateLimitSchema as never,
  perRouteSchema: localRateLimitSchema,
  create: (config, ctx, hcm) =>
    new LocalRateLimitFactory(config, ctx, hcm.filterName ?? LOCAL_RATELIMIT_NAME, hcm.statPrefix),
};
