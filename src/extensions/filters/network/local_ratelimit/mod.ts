/** The envoy.filters.network.local_ratelimit extension object for the registry. */
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type NetworkLocalRateLimitConfig, networkLocalRateLimitSchema } from "./config.ts";
import { NetworkLocalRateLimitFactory } from "./filter.ts";

/** envoy.filters.network.local_ratelimit. */
export const networkLocalRateLimit: Extension<
  NetworkLocalRateLimitConfig,
  NetworkFilterCreate<NetworkLocalRateLimitConfig>
> = {
  name: "envoy.filters.network.local_ratelimit",
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"],
  category: "network_filter",
  schema: networkLocalRateLimitSchema as never,
  create: (config, ctx) => new NetworkLocalRateLimitFactory(config, ctx),
};
