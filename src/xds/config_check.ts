/** Cross-checks of xDS config sources against the bootstrap (run after the schema, like server/cross_check.ts). */
import type { Bootstrap } from "../config/bootstrap.ts";
import type { ApiConfigSource, ConfigSource } from "../config/config_source.ts";
import { configError, type ConfigIssue, type PathSegment } from "../config/errors.ts";

/** The management-server cluster names an ApiConfigSource uses, each with its path below the source. */
function sourceClusters(api: ApiConfigSource): [string, PathSegment[]][] {
  return [
    ...api.cluster_names.map((n, i): [string, PathSegment[]] => [n, ["cluster_names", i]]),
    ...api.grpc_services.map((g, i): [string, PathSegment[]] => [
      g.envoy_grpc.cluster_name,
      ["grpc_services", i, "envoy_grpc", "cluster_name"],
    ]),
  ];
}

/**
 * Issues for one ApiConfigSource (or a ConfigSource holding one) at `path`: as Envoy, each cluster it names must
 * be a statically defined (static_resources), non-EDS cluster.
 */
export function apiConfigSourceIssues(
  bootstrap: Bootstrap,
  source: ConfigSource | ApiConfigSource,
  path: readonly PathSegment[],
): ConfigIssue[] {
  const api = "api_type" in source ? source : source.api_config_source;
  if (!api) return [];
  const base = "api_type" in source ? [...path] : [...path, "api_config_source"];
  const issues: ConfigIssue[] = [];
  for (const [name, sub] of sourceClusters(api)) {
    const c = bootstrap.static_resources.clusters.find((c) => c.name === name);
    if (!c || (c.type as string) === "EDS") {
      issues.push(configError(
        [...base, ...sub],
        `ApiConfigSource must name a statically defined non-EDS cluster: "${name}" ${
          c ? "is an EDS cluster" : "is not in static_resources.clusters"
        }`,
      ));
    }
  }
  return issues;
}

/**
 * Issues for the bootstrap's config sources: dynamic_resources (lds_config, cds_config, ads_config), hds_config
 * and cluster_manager.load_stats_config; [] without them.
 */
export function configSourceClusterIssues(bootstrap: Bootstrap): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const d = bootstrap.dynamic_resources;
  if (d) {
    const base = ["dynamic_resources"];
    if (d.lds_config) issues.push(...apiConfigSourceIssues(bootstrap, d.lds_config, [...base, "lds_config"]));
    if (d.cds_config) issues.push(...apiConfigSourceIssues(bootstrap, d.cds_config, [...base, "cds_config"]));
    if (d.ads_config) issues.push(...apiConfigSourceIssues(bootstrap, d.ads_config, [...base, "ads_config"]));
  }
  if (bootstrap.hds_config) {
    issues.push(...apiConfigSourceIssues(bootstrap, bootstrap.hds_config, ["hds_config"]));
  }
  const lrs = bootstrap.cluster_manager?.load_stats_config;
  if (lrs) issues.push(...apiConfigSourceIssues(bootstrap, lrs, ["cluster_manager", "load_stats_config"]));
  return issues;
}
