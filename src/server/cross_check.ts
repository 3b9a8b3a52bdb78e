// deno-lint-ignore-file no-explicit-any -- extensions of every config type live in one registry; typed at their use sites
/** Config checks that need more than one part of the bootstrap: every referenced cluster must exist. */
import type { Bootstrap } from "../config/bootstrap.ts";
import type { ConfigIssue } from "../config/errors.ts";
import { configError } from "../config/errors.ts";

type Path = (string | number)[];

/** Finds cluster names used by tcp_proxy and static route configs that no cluster defines. */
export function checkClusterReferences(b: Bootstrap): ConfigIssue[] {
  const names = new Set(b.static_resources.clusters.map((c) => c.name));
  const issues: ConfigIssue[] = [];
  const need = (name: string | undefined, path: Path) => {
    if (name !== undefined && !names.has(name)) issues.push(configError(path, `Unknown cluster "${name}"`));
  };
  b.static_resources.listeners.forEach((l, li) => {
    l.filter_chains.forEach((fc, ci) => {
      fc.filters.forEach((f, fi) => {
        const base: Path = [
          "static_resources",
          "listeners",
          li,
          "filter_chains",
          ci,
          "filters",
          fi,
          "typed_config",
        ];
        const cfg = f.config as Record<string, any>;
        if (f.ext.name === "envoy.filters.network.tcp_proxy") {
          need(cfg.cluster, [...base, "cluster"]);
          cfg.weighted_clusters?.clusters?.forEach((c: { name: string }, i: number) =>
            need(c.name, [...base, "weighted_clusters", "clusters", i, "name"])
          );
        } else if (f.ext.name === "envoy.filters.network.http_connection_manager") {
          const rc = cfg.route_config;
          if (!rc || rc.validate_clusters === false) return;
          rc.virtual_hosts?.forEach((vh: any, vi: number) => {
            vh.routes?.forEach((r: any, ri: number) => {
              const p: Path = [...base, "route_config", "virtual_hosts", vi, "routes", ri, "route"];
              if (!r.route) return;
              need(r.route.cluster, [...p, "cluster"]);
              r.route.weighted_clusters?.clusters?.forEach((c: { name: string }, i: number) =>
                need(c.name, [...p, "weighted_clusters", "clusters", i, "name"])
              );
            });
          });
        }
      });
    });
  });
  return issues;
}
