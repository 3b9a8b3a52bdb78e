/**
 * /config_dump in Envoy's shape (admin.v3.ConfigDump): Bootstrap, Clusters, Listeners and Routes
 * dumps, each with "@type". Secrets (TLS private keys and passwords) are redacted like Envoy does.
 */
import type { ConfigDumpSource, DynamicResource } from "./types.ts";

const T = "type.googleapis.com/";
const BOOTSTRAP_DUMP = T + "envoy.admin.v3.BootstrapConfigDump";
const CLUSTERS_DUMP = T + "envoy.admin.v3.ClustersConfigDump";
const LISTENERS_DUMP = T + "envoy.admin.v3.ListenersConfigDump";
const ROUTES_DUMP = T + "envoy.admin.v3.RoutesConfigDump";
const CLUSTER = T + "envoy.config.cluster.v3.Cluster";
const LISTENER = T + "envoy.config.listener.v3.Listener";
const ROUTE_CONFIG = T + "envoy.config.route.v3.RouteConfiguration";
const ENDPOINTS_DUMP = T + "envoy.admin.v3.EndpointsConfigDump";
const CLA = T + "envoy.config.endpoint.v3.ClusterLoadAssignment";
const HCM_NAME = "envoy.filters.network.http_connection_manager";

const SENSITIVE = new Set(["private_key", "password"]);

/** A deep copy with every leaf under `private_key` / `password` replaced by "[redacted]". */
export function redact(v: unknown, inSecret = false): unknown {
  if (Array.isArray(v)) return v.map((x) => redact(x, inSecret));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = redact(x, inSecret || SENSITIVE.has(k));
    return out;
  }
  return inSecret && (typeof v === "string" || typeof v === "number") ? "[redacted]" : v;
}

const iso = (ms: number) => new Date(ms).toISOString();

function asArray(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? v.filter((x) => x !== null && typeof x === "object") : [];
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : undefined;
}

/** Inline route configs of every HTTP connection manager in `listeners` (Envoy's static_route_configs). */
function inlineRouteConfigs(listeners: Record<string, unknown>[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of listeners) {
    const chains = [
      ...asArray(l.filter_chains),
      ...(obj(l.default_filter_chain) ? [obj(l.default_filter_chain)!] : []),
    ];
    for (const chain of chains) {
      for (const f of asArray(chain.filters)) {
        const tc = obj(f.typed_config);
        const isHcm = f.name === HCM_NAME || String(tc?.["@type"] ?? "").endsWith(".HttpConnectionManager");
        const rc = obj(tc?.route_config);
        if (isHcm && rc) out.push(rc);
      }
    }
  }
  return out;
}

function typed(type: string, resource: Record<string, unknown>): Record<string, unknown> {
  return { "@type": type, ...resource };
}

function dynamic(d: DynamicResource, key: string, type: string): Record<string, unknown> {
  return { version_info: d.versionInfo, [key]: typed(type, d.resource), last_updated: iso(d.lastUpdatedMs) };
}

/** Builds the /config_dump document (runs per admin request). */
export function buildConfigDump(
  src: ConfigDumpSource,
  opts: { includeEds?: boolean } = {},
): { configs: Record<string, unknown>[] } {
  const bootstrap = redact(src.bootstrap) as Record<string, unknown>;
  const loaded = iso(src.bootstrapLoadedMs);
  const statics = obj(bootstrap.static_resources) ?? {};
  const staticListeners = asArray(statics.listeners);

  const clusters: Record<string, unknown> = { "@type": CLUSTERS_DUMP };
  if (src.clustersVersion) clusters.version_info = src.clustersVersion;
  const sc = asArray(statics.clusters);
  if (sc.length) {
    clusters.static_clusters = sc.map((c) => ({ cluster: typed(CLUSTER, c), last_updated: loaded }));
  }
  const dynClusters = (warming: boolean) =>
    (src.dynamicClusters ?? []).filter((d) => (d.warming === true) === warming).map((d) =>
      dynamic({ ...d, resource: redact(d.resource) as Record<string, unknown> }, "cluster", CLUSTER)
    );
  const activeClusters = dynClusters(false);
  const warmingClusters = dynClusters(true);
  if (activeClusters.length) clusters.dynamic_active_clusters = activeClusters;
  if (warmingClusters.length) clusters.dynamic_warming_clusters = warmingClusters;

  const listeners: Record<string, unknown> = { "@type": LISTENERS_DUMP };
  if (src.listenersVersion) listeners.version_info = src.listenersVersion;
  if (staticListeners.length) {
    listeners.static_listeners = staticListeners.map((l) => ({
      listener: typed(LISTENER, l),
      last_updated: loaded,
    }));
  }
  if (src.dynamicListeners?.length) {
    // one DynamicListener per name, with its active, warming and draining versions (Envoy's shape)
    const byName = new Map<string, Record<string, unknown>>();
    for (const d of src.dynamicListeners) {
      const name = String(d.resource.name ?? "");
      let entry = byName.get(name);
      if (!entry) byName.set(name, entry = { name });
      const state = d.draining ? "draining_state" : d.warming ? "warming_state" : "active_state";
      entry[state] = dynamic(
        { ...d, resource: redact(d.resource) as Record<string, unknown> },
        "listener",
        LISTENER,
      );
    }
    listeners.dynamic_listeners = [...byName.values()];
  }

  const routes: Record<string, unknown> = { "@type": ROUTES_DUMP };
  const inline = inlineRouteConfigs(staticListeners);
  if (inline.length) {
    routes.static_route_configs = inline.map((r) => ({
      route_config: typed(ROUTE_CONFIG, r),
      last_updated: loaded,
    }));
  }
  if (src.dynamicRouteConfigs?.length) {
    routes.dynamic_route_configs = src.dynamicRouteConfigs.map((d) =>
      dynamic(d, "route_config", ROUTE_CONFIG)
    );
  }

  const configs = [{ "@type": BOOTSTRAP_DUMP, bootstrap, last_updated: loaded }, clusters, listeners, routes];
  if (opts.includeEds) {
    const endpoints: Record<string, unknown> = { "@type": ENDPOINTS_DUMP };
    const staticEds = sc.filter((c) => obj(c.load_assignment)).map((c) => ({
      endpoint_config: typed(CLA, obj(c.load_assignment)!),
      last_updated: loaded,
    }));
    if (staticEds.length) endpoints.static_endpoint_configs = staticEds;
    if (src.dynamicEndpoints?.length) {
      endpoints.dynamic_endpoint_configs = src.dynamicEndpoints.map((d) =>
        dynamic(d, "endpoint_config", CLA)
      );
    }
    configs.push(endpoints);
  }
  return { configs };
}

/** Envoy's element type of each repeated field `?resource=` can name. */
const RESOURCE_TYPES: Record<string, string> = {
  static_clusters: `${CLUSTERS_DUMP}.StaticCluster`,
  dynamic_active_clusters: `${CLUSTERS_DUMP}.DynamicCluster`,
  dynamic_warming_clusters: `${CLUSTERS_DUMP}.DynamicCluster`,
  static_listeners: `${LISTENERS_DUMP}.StaticListener`,
  dynamic_listeners: `${LISTENERS_DUMP}.DynamicListener`,
  static_route_configs: `${ROUTES_DUMP}.StaticRouteConfig`,
  dynamic_route_configs: `${ROUTES_DUMP}.DynamicRouteConfig`,
  static_endpoint_configs: `${ENDPOINTS_DUMP}.StaticEndpointConfig`,
  dynamic_endpoint_configs: `${ENDPOINTS_DUMP}.DynamicEndpointConfig`,
};

/**
 * Envoy's `?resource=` and `?mask=`: with a resource, the configs are that repeated field's elements (each
 * with its element "@type"); a mask (comma-separated field paths) keeps only those fields of each config.
 * Returns an error message for a resource name Envoy would not accept.
 */
export function selectConfigDump(
  dump: { configs: Record<string, unknown>[] },
  resource: string | undefined,
  mask: string | undefined,
): { configs: Record<string, unknown>[] } | string {
  let configs = dump.configs;
  if (resource !== undefined) {
    const type = RESOURCE_TYPES[resource];
    if (!type) return `${resource} is not a repeated field of any config dump`;
    configs = configs.flatMap((c) => asArray(c[resource]).map((r) => ({ "@type": type, ...r })));
  }
  if (mask !== undefined) {
    const paths = mask.split(",").map((p) => p.trim()).filter((p) => p).map((p) => p.split("."));
    configs = configs.map((c) => {
      const out: Record<string, unknown> = { "@type": c["@type"] };
      for (const p of paths) copyPath(c, out, p);
      return out;
    });
  }
  return { configs };
}

function copyPath(from: Record<string, unknown>, to: Record<string, unknown>, path: string[]): void {
  const [head, ...rest] = path;
  if (!(head in from)) return;
  const v = from[head];
  if (rest.length === 0) {
    to[head] = v;
    return;
  }
  if (Array.isArray(v)) {
    const prev = Array.isArray(to[head]) ? to[head] as Record<string, unknown>[] : v.map(() => ({}));
    v.forEach((x, i) => {
      if (obj(x)) copyPath(x as Record<string, unknown>, prev[i], rest);
    });
    to[head] = prev;
  } else if (obj(v)) {
    const sub = obj(to[head]) ?? {};
    copyPath(v as Record<string, unknown>, sub, rest);
    to[head] = sub;
  }
}
