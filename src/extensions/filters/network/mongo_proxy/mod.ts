/** The envoy.filters.network.mongo_proxy extension object for the registry. */
import { checkAppendableFile } from "../../../../common/file_check.ts";
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { loadedModule } from "../../../../registry/prepare.ts";
import { type MongoProxyConfig, mongoProxySchema } from "./config.ts";

/** The implementation (codec, BSON scanner, stats), loaded when a config uses the filter (see Extension.load). */
let impl: typeof import("./factory.ts") | undefined;
const MONGO_PROXY_NAME = "envoy.filters.network.mongo_proxy";

/** envoy.filters.network.mongo_proxy (Envoy's deprecated name envoy.mongo_proxy is not registered). */
export const mongoProxy: Extension<MongoProxyConfig, NetworkFilterCreate<MongoProxyConfig>> = {
  name: MONGO_PROXY_NAME,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy"],
  category: "network_filter",
  schema: mongoProxySchema as never,
  preflight: (config) => {
    const why = config.access_log ? checkAppendableFile(config.access_log) : undefined;
    return why ? [{ path: ["access_log"], message: why }] : [];
  },
  load: async () => {
    impl ??= await import("./factory.ts");
  },
  create: (config, ctx) => new (loadedModule(impl, MONGO_PROXY_NAME).MongoProxyFactory)(config, ctx),
};
