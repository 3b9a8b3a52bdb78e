/** The HTTP rate limit extension object for the registry. */
import type { Extension } from "../../../../registry/registry.ts";
import type { HttpFilterCreate } from "../../../../http/filter.ts";
import { rateLimitServiceClusterRefs } from "../../common/ratelimit/config.ts";
import { GrpcRateLimitClient } from "../../common/ratelimit/grpc_client.ts";
import { type HttpRateLimitConfig, httpRateLimitSchema } from "./config.ts";
import { HttpRateLimitFactory } from "./filter.ts";

/** envoy.filters.http.ratelimit. */
export const httpRateLimit: Extension<HttpRateLimitConfig, HttpFilterCreate<HttpRateLimitConfig>> = {
  name: "envoy.filters.http.ratelimit",
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit"],
  category: "http_filter",
  schema: httpRateLimitSchema as never,
  clusterRefs: (config) => rateLimitServiceClusterRefs(config.rate_limit_service),
  create: (config, ctx) =>
    new HttpRateLimitFactory(config, ctx, new GrpcRateLimitClient(config.rate_limit_service, ctx)),
};
