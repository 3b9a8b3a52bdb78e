/** The http_connection_manager extension object for the registry. */
import type { ClusterRef, Extension } from "../../../../registry/registry.ts";
import type { NetworkFilterCreate } from "../../../../network/filter.ts";
import { type HttpConnectionManagerConfig, httpConnectionManagerSchema } from "./config.ts";
import { HttpConnectionManagerFactory } from "./filter.ts";

/** envoy.filters.network.http_connection_manager. */
export const httpConnectionManager: Extension<
  HttpConnectionManagerConfig,
  NetworkFilterCreate<HttpConnectionManagerConfig>
> = {
  name: "envoy.filters.network.http_connection_manager",
  terminal: true,
  typeUrls: [
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  ],
  category: "network_filter",
  schema: httpConnectionManagerSchema as never,
  clusterRefs: routeClusterRefs,
  create: (config, ctx) => new HttpConnectionManagerFactory(config, ctx),
};

/**
 * The clusters the inline route table names (route.cluster, weighted clusters, mirror policies), unless it
 * says `validate_clusters: false`; runs once at load. The http_filters' own references are found by the caller.
 */
export function routeClusterRefs(config: HttpConnectionManagerConfig): ClusterRef[] {
  const rc = config.route_config;
  if (!rc || rc.validate_clusters === false) return [];
  const out: ClusterRef[] = [];
  rc.virtual_hosts.forEach((vh, vi) => {
    vh.routes.forEach((r, ri) => {
      const a = r.route;
      if (!a) return;
      const p = ["route_config", "virtual_hosts", vi, "routes", ri, "route"];
      if (a.cluster !== undefined) out.push({ path: [...p, "cluster"], name: a.cluster });
      a.weighted_clusters?.clusters.forEach((c, i) =>
        out.push({ path: [...p, "weighted_clusters", "clusters", i, "name"], name: c.name })
      );
      a.request_mirror_policies.forEach((m, i) => {
        if (m.cluster !== undefined) {
          out.push({ path: [...p, "request_mirror_policies", i, "cluster"], name: m.cluster });
        }
      });
    });
  });
  return out;
}
