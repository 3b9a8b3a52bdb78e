/** The network rate limit extension object for the registry. */
import type { Extension } from "../../../../registry/registry.ts";
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import { rateLimitServiceClusterRefs } from "../../common/ratelimit/config.ts";
import { GrpcRateLimitClient } from "../../common/ratelimit/grpc_client.ts";
import { type NetworkRateLimitConfig, networkRateLimitSchema } from "./config.ts";
import { NetworkRateLimitFactory } from "./filter.ts";

/** envoy.filters.network.ratelimit. */
export const networkRateLimit: Extension<
  NetworkRateLimitConfig,
  NetworkFilterCreate<NetworkRateLimitConfig>
> = {
  name: "envoy.filters.network.ratelimit",
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.network.ratelimit.v3.RateLimit"],
  category: "network_filter",
  schema: networkRateLimitSchema as never,
  clusterRefs: (config) => rateLimitServiceClusterRefs(config.rate_limit_service),
  create: (config, ctx) =>
    new NetworkRateLimitFactory(config, ctx, new GrpcRateLimitClient(config.rate_limit_service, ctx)),
};
