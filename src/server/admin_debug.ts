/**
 * The admin's debugging and observation endpoints over a running Server: `/dashboard` (+ its event stream),
 * `/debug/route` and `/debug/suggest`. They read configuration as the main thread has it (static listeners
 * from the bootstrap as loaded or reloaded, dynamic ones and RDS route configs from the xDS layer), parse it
 * with the same schemas, and the merged stats.
 */
import { dashboardEndpoints, type DashboardListener, DashboardSampler } from "../admin/dashboard.ts";
import {
  type ExplainListener,
  routeExplainEndpoint,
  type RouteExplainSource,
} from "../admin/route_explain.ts";
import { suggestEndpoint, type SuggestRoute } from "../admin/suggest.ts";
import type { AdminEndpoint } from "../admin/types.ts";
import type { ListenerConfig } from "../config/listener.ts";
import type { RouteConfiguration } from "../http/routing/config.ts";
import { syncClusterHealth } from "../upstream/cluster_manager.ts";
import { listenerStatName } from "./data_plane.ts";
import type { Server } from "./server.ts";
import { parseResource } from "./xds_apply.ts";

const HCM = "envoy.filters.network.http_connection_manager";

/** The debug endpoints and what to stop when admin closes. */
export interface DebugAdmin {
  endpoints: AdminEndpoint[];
  /** Ends open dashboard streams and the sampler's timer. */
  close(): void;
}

/** Parsed listener configs by their raw object (raw resources are replaced, never changed, by reloads and xDS). */
const parsedListeners = new WeakMap<object, ListenerConfig | null>();

/** Parsed RDS route configs by their raw object (so the compiled table cache in route_explain.ts hits too). */
const parsedRoutes = new WeakMap<object, RouteConfiguration | null>();

function parseListener(name: string, raw: unknown): ListenerConfig | null {
  if (typeof raw !== "object" || raw === null) return null;
  let p = parsedListeners.get(raw);
  if (p === undefined) {
    const r = parseResource("listener", name, raw);
    parsedListeners.set(raw, p = r.ok ? r.value : null);
  }
  return p;
}

/** Parses the listeners serving now (static from the raw bootstrap, dynamic from xDS) with their bound address. */
async function currentListeners(server: Server): Promise<ExplainListener[]> {
  const raw = server.opts.raw as { static_resources?: { listeners?: { name: string }[] } };
  const resources: [string, unknown][] = (raw.static_resources?.listeners ?? []).map((l) => [l.name, l]);
  const x = await server.xdsDump();
  for (const d of x?.listeners ?? []) {
    if (d.warming || d.draining) continue;
    const name = (d.resource as { name?: string }).name;
    if (name !== undefined) resources.push([name, d.resource]);
  }
  const bound = new Map(server.listeners().map((a) => [a.name, `${a.address}:${a.port}`]));
  const out: ExplainListener[] = [];
  for (const [name, r] of resources) {
    const config = parseListener(name, r);
    if (config === null) continue;
    const sa = config.address.socket_address;
    out.push({ config, address: bound.get(name) ?? `${sa.address}:${sa.port_value}` });
  }
  return out;
}

async function routeConfig(server: Server, name: string): Promise<RouteConfiguration | undefined> {
  const x = await server.xdsDump();
  const d = x?.routes.find((r) => (r.resource as { name?: string }).name === name);
  if (!d) return undefined;
  let rc = parsedRoutes.get(d.resource);
  if (rc === undefined) {
    const p = parseResource("route", name, d.resource);
    parsedRoutes.set(d.resource, rc = p.ok ? p.value : null);
  }
  return rc ?? undefined;
}

interface HcmLike {
  stat_prefix: string;
  route_config?: RouteConfiguration;
  rds?: { route_config_name: string };
}

function hcmsOf(l: ExplainListener): HcmLike[] {
  const chains = [
    ...l.config.filter_chains,
    ...(l.config.default_filter_chain ? [l.config.default_filter_chain] : []),
  ];
  return chains.flatMap((c) => c.filters.filter((f) => f.ext.name === HCM).map((f) => f.config as HcmLike));
}

/** Routes of every listener's route configs that forward to clusters (for /debug/suggest). */
async function currentRoutes(server: Server): Promise<SuggestRoute[]> {
  const seen = new Set<string>();
  const out: SuggestRoute[] = [];
  for (const l of await currentListeners(server)) {
    for (const h of hcmsOf(l)) {
      const rc = h.route_config ?? (h.rds ? await routeConfig(server, h.rds.route_config_name) : undefined);
      if (!rc || seen.has(rc.name + "\0" + l.config.name)) continue;
      seen.add(rc.name + "\0" + l.config.name);
      for (const vh of rc.virtual_hosts) {
        vh.routes.forEach((r, i) => {
          const a = r.route as
            | {
              cluster?: string;
              weighted_clusters?: { clusters: { name: string }[] };
              timeout?: number;
              retry_policy?: unknown;
            }
            | undefined;
          if (!a) return;
          const clusters = a.cluster !== undefined
            ? [a.cluster]
            : a.weighted_clusters?.clusters.map((c) => c.name) ?? [];
          if (clusters.length === 0) return; // cluster_header: decided per request
          out.push({
            routeConfig: rc.name || `(inline in ${l.config.name})`,
            virtualHost: vh.name,
            route: r.name || `#${i}`,
            clusters,
            timeoutMs: a.timeout ?? 15_000,
            retries: a.retry_policy !== undefined || vh.retry_policy !== undefined,
          });
        });
      }
    }
  }
  return out;
}

/** Builds /dashboard, /dashboard/events, /debug/route and /debug/suggest over `server`. */
export function createDebugAdmin(server: Server): DebugAdmin {
  const sampler = new DashboardSampler({
    stats: () => server.stats(),
    clusters: () => server.clusters(),
    listeners: async (): Promise<DashboardListener[]> =>
      (await currentListeners(server)).map((l) => {
        const sa = l.config.address.socket_address;
        return {
          name: l.config.name,
          address: l.address,
          statName: listenerStatName(sa.address, sa.port_value),
          httpPrefixes: hcmsOf(l).map((h) => h.stat_prefix),
        };
      }),
  });
  const explain: RouteExplainSource = {
    listeners: () => currentListeners(server),
    routeConfig: (name) => routeConfig(server, name),
    clusterManager: () => {
      const cm = server.healthOwner;
      if (cm) syncClusterHealth(cm);
      return cm;
    },
  };
  return {
    endpoints: [
      ...dashboardEndpoints(sampler),
      routeExplainEndpoint(explain),
      suggestEndpoint({
        stats: () => server.stats(),
        clusters: () => server.clusters(),
        routes: () => currentRoutes(server),
        peaks: () => sampler.peaks(),
      }),
    ],
    close: () => sampler.close(),
  };
}
