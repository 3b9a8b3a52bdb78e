/** The envoy.filters.network.mongo_proxy extension object for the registry. */
import { checkAppendableFile } from "../../../../common/file_check.ts";
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import type { Extension } from "../../../../registry/registry.ts";
import { type MongoProxyConfig, mongoProxySchema } from "./config.ts";
import { MongoProxyFactory } from "./factory.ts";

/** envoy.filters.network.mongo_proxy (Envoy's deprecated name envoy.mongo_proxy is not registered). */
export const mongoProxy: Extension<MongoProxyConfig, NetworkFilterCreate<MongoProxyConfig>> = {
  name: "envoy.filters.network.mongo_proxy",
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy"],
  category: "network_filter",
  schema: mongoProxySchema as never,
  preflight: (config) => {
    const why = config.access_log ? checkAppendableFile(config.access_log) : undefined;
    return why ? [{ path: ["access_log"], message: why }] : [];
  },
  create: (config, ctx) => new MongoProxyFactory(config, ctx),
};
