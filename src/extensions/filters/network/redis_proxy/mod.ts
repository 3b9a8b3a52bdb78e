/** The redis_proxy extension object for the registry. */
import type { Extension } from "../../../../registry/registry.ts";
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import { loadedModule } from "../../../../registry/prepare.ts";
import { redisClusterRefs, type RedisProxyConfig, redisProxySchema } from "./config.ts";

/** The implementation, loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./filter.ts") | undefined;
const REDIS_PROXY_NAME = "envoy.filters.network.redis_proxy";

/** envoy.filters.network.redis_proxy (terminal). */
export const redisProxy: Extension<RedisProxyConfig, NetworkFilterCreate<RedisProxyConfig>> = {
  name: REDIS_PROXY_NAME,
  terminal: true,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"],
  category: "network_filter",
  schema: redisProxySchema as never,
  clusterRefs: redisClusterRefs,
  load: async () => {
    impl ??= await import("./filter.ts");
  },
  create: (config, ctx) => new (loadedModule(impl, REDIS_PROXY_NAME).RedisProxyFactory)(config, ctx),
};
