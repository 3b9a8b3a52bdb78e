/** The tcp_proxy extension object for the registry. */
import type { Extension } from "../../../../registry/registry.ts";
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import { type TcpProxyConfig, tcpProxySchema } from "./config.ts";
import { TcpProxyFactory } from "./filter.ts";

/** envoy.filters.network.tcp_proxy. */
export const tcpProxy: Extension<TcpProxyConfig, NetworkFilterCreate<TcpProxyConfig>> = {
  name: "envoy.filters.network.tcp_proxy",
  terminal: true,
  typeUrls: ["type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"],
  category: "network_filter",
  schema: tcpProxySchema as never,
  clusterRefs: (config) =>
    config.cluster !== undefined
      ? [{ path: ["cluster"], name: config.cluster }]
      : (config.weighted_clusters?.clusters ?? []).map((c, i) => ({
        path: ["weighted_clusters", "clusters", i, "name"],
        name: c.name,
      })),
  create: (config, ctx) => new TcpProxyFactory(config, ctx),
};
