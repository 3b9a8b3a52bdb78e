/** The http_connection_manager extension object for the registry. */
import type { Extension } from "../../../../registry/registry.ts";
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import { type HttpConnectionManagerConfig, httpConnectionManagerSchema } from "./config.ts";
import { HttpConnectionManagerFactory } from "./filter.ts";

/** envoy.filters.network.http_connection_manager. */
export const httpConnectionManager: Extension<
  HttpConnectionManagerConfig,
  NetworkFilterCreate<HttpConnectionManagerConfig>
> = {
  name: "envoy.filters.network.http_connection_manager",
  typeUrls: [
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  ],
  category: "network_filter",
  schema: httpConnectionManagerSchema as never,
  create: (config, ctx) => new HttpConnectionManagerFactory(config, ctx),
};
