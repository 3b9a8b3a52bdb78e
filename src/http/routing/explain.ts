/**
 * Route explanations for the admin's `/debug/route`: which virtual host a request selects and why the others do
 * not, every route tried with the reason it failed, and how the chosen route picks its cluster. Runs over a
 * compiled table (the same matchers the data path uses) on demand; the request path never calls it.
 */
import { stripPort } from "./vhost_select.ts";
import type { CompiledRouteTable, VirtualHostTable } from "./table.ts";
import type { RouteEntry, RouteRequest } from "./types.ts";

/** One virtual host considered for the request's authority. */
export interface VirtualHostAttempt {
  name: string;
  domains: readonly string[];
  selected: boolean;
  /** "domain '*.example.com' (suffix wildcard)", or why not ("no domain matches 'a.com'", "... but 'x' wins"). */
  reason: string;
}

/** One route of the selected virtual host, in config order. */
export interface RouteAttemptInfo {
  index: number;
  name: string;
  /** "#0 prefix '/api' (+1 header matcher(s))". */
  match: string;
  matched: boolean;
  reason: string;
}

/** How the chosen route picks its cluster. */
export interface ClusterChoice {
  /** The cluster this request would take ("" when cluster_header names none). */
  name: string;
  /** "cluster" (fixed), "cluster_header" or "weighted_clusters". */
  specifier: "cluster" | "cluster_header" | "weighted_clusters";
  reason: string;
  /** weighted_clusters: each cluster's weight and share. */
  weights?: { name: string; weight: number; percent: number }[];
}

/** The whole route decision. */
export interface RouteExplanation {
  routeConfig: string;
  authority: string;
  virtualHosts: VirtualHostAttempt[];
  /** The selected virtual host's name, null when no domain matched (404 NR). */
  virtualHost: string | null;
  routes: RouteAttemptInfo[];
  /** The matched route, null when none (404 NR). */
  route: { name: string; index: number; kind: RouteEntry["kind"]; match: string } | null;
  /** Forwarding routes only. */
  cluster?: ClusterChoice;
  /** The matched entry (for the caller's LB step). */
  entry: RouteEntry | null;
}

/** Envoy's domain precedence as a number: exact > longest suffix wildcard > longest prefix wildcard > "*". */
function domainRank(domain: string, host: string): { rank: number; kind: string } | null {
  const d = domain.toLowerCase();
  if (d === "*") return { rank: 0, kind: "catch-all" };
  if (d.startsWith("*")) {
    const s = d.slice(1);
    return host.length > s.length && host.endsWith(s)
      ? { rank: 2e6 + s.length, kind: "suffix wildcard" }
      : null;
  }
  if (d.endsWith("*")) {
    const p = d.slice(0, -1);
    return host.length > p.length && host.startsWith(p)
      ? { rank: 1e6 + p.length, kind: "prefix wildcard" }
      : null;
  }
  return d === host ? { rank: 3e6, kind: "exact" } : null;
}

function bestDomain(
  vh: VirtualHostTable,
  host: string,
): { domain: string; rank: number; kind: string } | null {
  let best: { domain: string; rank: number; kind: string } | null = null;
  for (const d of vh.domains) {
    const r = domainRank(d, host);
    if (r !== null && (best === null || r.rank > best.rank)) best = { domain: d, ...r };
  }
  return best;
}

/** Virtual host selection in words: every virtual host with why it was or was not chosen. */
function explainVirtualHosts(table: CompiledRouteTable, authority: string): {
  attempts: VirtualHostAttempt[];
  chosen: VirtualHostTable | undefined;
} {
  const chosen = table.findVirtualHost(authority);
  let host = authority.toLowerCase();
  if (table.ignorePort) host = stripPort(host);
  const win = chosen ? bestDomain(chosen, host) : null;
  const attempts = table.virtualHosts.map((vh): VirtualHostAttempt => {
    const best = bestDomain(vh, host);
    let reason: string;
    if (vh === chosen) reason = win ? `domain '${win.domain}' (${win.kind})` : "selected";
    else if (best === null) {
      reason = `domain mismatch: none of [${vh.domains.map((d) => `'${d}'`).join(", ")}] matches '${host}'`;
    } else {
      reason =
        `domain '${best.domain}' (${best.kind}) matches, but virtual host '${chosen?.name}' wins with '${
          win?.domain ?? "?"
        }' (${win?.kind ?? "?"})${best.rank === win?.rank ? ", declared first" : ""}`;
    }
    return { name: vh.name, domains: vh.domains, selected: vh === chosen, reason };
  });
  return { attempts, chosen };
}

/** How a forwarding entry picks its cluster for `req` with the draw `random`. */
function explainCluster(entry: RouteEntry, req: RouteRequest, random: number): ClusterChoice | undefined {
  if (entry.kind !== "route") return undefined;
  const cfg = entry.config as {
    cluster?: string;
    cluster_header?: string;
    weighted_clusters?: { clusters: { name: string; weight: number }[] };
  };
  const name = entry.selectCluster(req, random);
  if (cfg.cluster !== undefined) return { name, specifier: "cluster", reason: `fixed cluster '${name}'` };
  if (cfg.cluster_header !== undefined) {
    return {
      name,
      specifier: "cluster_header",
      reason: name === ""
        ? `request header '${cfg.cluster_header}' is absent (503 NC would follow)`
        : `request header '${cfg.cluster_header}' names '${name}'`,
    };
  }
  const clusters = cfg.weighted_clusters?.clusters ?? [];
  const total = clusters.reduce((a, c) => a + c.weight, 0);
  const pick = Math.min(total - 1, Math.max(0, Math.floor(random * total)));
  return {
    name,
    specifier: "weighted_clusters",
    reason: `weighted draw ${pick} of ${total} (random ${random.toFixed(4)}) falls in '${name}'; ` +
      `another request may take another cluster`,
    weights: clusters.map((c) => ({
      name: c.name,
      weight: c.weight,
      percent: total > 0 ? Math.round(c.weight * 10000 / total) / 100 : 0,
    })),
  };
}

/**
 * Explains how `table` routes `req` (admin, on demand). `random` is the draw for weighted clusters and
 * runtime fractions (Math.random() by default; tests pass one).
 */
export function explainRoute(
  table: CompiledRouteTable,
  req: RouteRequest,
  opts: { random?: number } = {},
): RouteExplanation {
  const random = opts.random ?? Math.random();
  const { attempts, chosen } = explainVirtualHosts(table, req.authority);
  const out: RouteExplanation = {
    routeConfig: table.name,
    authority: req.authority,
    virtualHosts: attempts,
    virtualHost: chosen?.name ?? null,
    routes: [],
    route: null,
    entry: null,
  };
  if (!chosen) return out;
  // route_index draws runtime fractions as an integer below 10^12
  const tried = chosen.index.explain(req, Math.floor(random * 1e12));
  out.routes = tried.map((t) => ({
    index: t.index,
    name: t.entry.name,
    match: t.entry.matchDescription,
    matched: t.matched,
    reason: t.reason,
  }));
  const hit = tried.find((t) => t.matched);
  if (!hit) return out;
  out.entry = hit.entry;
  out.route = {
    name: hit.entry.name,
    index: hit.index,
    kind: hit.entry.kind,
    match: hit.entry.matchDescription,
  };
  out.cluster = explainCluster(hit.entry, req, random);
  return out;
}
