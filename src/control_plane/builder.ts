/**
 * Builds each node's Envoy v3 resources from the inputs: pure, deterministic (same inputs, same output, in a
 * fixed order), shared by the control plane (served over xDS) and `nuncio configgen` (rendered as static
 * bootstraps).
 *
 * A service's proxies (node.cluster = the service) get:
 * - listener `ingress` on the defaults' ingress address and port, routing everything to the static cluster
 *   `local_service` (127.0.0.1:<manifest port>, HTTP/2 for http2/grpc services, the manifest's health check);
 * - listener `egress` on 127.0.0.1:<egress port>, with route configuration `egress`: one virtual host per
 *   upstream (domains `<service>` and `<service>:<egress port>`), its timeout, retries and, when asked, a
 *   local rate limit;
 * - one TCP listener `tcp_<service>` on 127.0.0.1:<port> per database and cache;
 * - exactly the EDS clusters its manifest names (circuit breakers, outlier detection, connect timeout), the
 *   knobs it leaves out taking the defaults' values;
 * - API listeners named after each upstream (served only when asked by name: proxyless gRPC clients resolving
 *   `xds:///<service>`), with the same route and cluster.
 * The edge node (node.cluster = the edge file's node_cluster) gets listener `edge` (TLS through SDS when the
 * edge names a secret), route configuration `edge` and the clusters of the services it routes to.
 */
import { type Defaults, type Edge, type Knob, knobValue, type Manifest, type Upstream } from "./inputs.ts";

/** A manifest's health check. */
type ManifestHealthCheck = NonNullable<Manifest["health_check"]>;

/** A resource in proto3 JSON form. */
export type Json = Record<string, unknown>;

/** Everything one kind of node gets. */
export interface NodeConfig {
  /** Listeners with a socket (what a wildcard LDS subscription gets). */
  listeners: Json[];
  /** API listeners, served only when a client names them. */
  apiListeners: Json[];
  routes: Json[];
  clusters: Json[];
  /** EDS service names of its clusters. */
  endpoints: string[];
  /** SDS secret names it may fetch. */
  secrets: string[];
}

/** The inputs of one build (each a last good version). */
export interface BuildInputs {
  defaults: Defaults;
  manifests: ReadonlyMap<string, Manifest>;
  edge?: Edge;
}

/** The build: a NodeConfig per node cluster. */
export interface Build {
  nodes: Map<string, NodeConfig>;
}

const T = {
  hcm:
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  router: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
  localRateLimit: "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
  tcpProxy: "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
  mongoProxy: "type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy",
  redisProxy: "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
  networkLocalRateLimit:
    "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
  httpOptions: "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
  downstreamTls: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
};

/** The name of the static cluster of the local service. */
export const LOCAL_CLUSTER = "local_service";

/** Milliseconds as a google.protobuf.Duration string. */
export function durationText(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

const ADS_SOURCE = { ads: {}, resource_api_version: "V3" };

/** A manifest's health check as an envoy.config.core.v3.HealthCheck, the defaults filling what it leaves out. */
export function healthCheckJson(hc: ManifestHealthCheck, d: Defaults): Json {
  const dh = d.health_check;
  return {
    timeout: durationText(hc.timeout ?? dh.timeout ?? 1000),
    interval: durationText(hc.interval ?? dh.interval ?? 10_000),
    unhealthy_threshold: hc.unhealthy_threshold ?? dh.unhealthy_threshold ?? 2,
    healthy_threshold: hc.healthy_threshold ?? dh.healthy_threshold ?? 1,
    http_health_check: { path: hc.path },
  };
}

function socket(address: string, port: number): Json {
  return { socket_address: { address, port_value: port } };
}

/** An empty NodeConfig: what a proxy of a service without manifest gets (it serves nothing, safely). */
export function emptyNode(): NodeConfig {
  return { listeners: [], apiListeners: [], routes: [], clusters: [], endpoints: [], secrets: [] };
}

/** Builds every node's resources. */
export function build(inputs: BuildInputs): Build {
  const nodes = new Map<string, NodeConfig>();
  const names = [...inputs.manifests.keys()].sort();
  for (const name of names) nodes.set(name, serviceNode(inputs, inputs.manifests.get(name)!));
  if (inputs.edge) nodes.set(inputs.edge.node_cluster, edgeNode(inputs, inputs.edge));
  return { nodes };
}

/** The value of a knob: the upstream's, else the defaults' default. */
function knob(d: Defaults, u: Upstream | undefined, k: Knob): number | undefined {
  return (u ? knobValue(u, k) : undefined) ?? d.limits[k]?.default;
}

function hcm(
  statPrefix: string,
  routeName: string,
  rateLimited: boolean,
  route?: Json,
  extra: Json = {},
): Json {
  const filters: Json[] = [];
  if (rateLimited) {
    // no bucket at the listener: only routes with a typed_per_filter_config are limited
    filters.push({
      name: "envoy.filters.http.local_ratelimit",
      typed_config: { "@type": T.localRateLimit, stat_prefix: `${statPrefix}_rate_limit` },
    });
  }
  filters.push({ name: "envoy.filters.http.router", typed_config: { "@type": T.router } });
  return {
    "@type": T.hcm,
    stat_prefix: statPrefix,
    ...(route
      ? { route_config: route }
      : { rds: { route_config_name: routeName, config_source: ADS_SOURCE } }),
    http_filters: filters,
    ...extra,
  };
}

/** The network filters of a database or cache listener: a connection rate limit, then the protocol's filters. */
function storeFilters(t: Manifest["databases"][number]): Json[] {
  const filters: Json[] = [];
  if (t.connections_per_second !== undefined) {
    filters.push({
      name: "envoy.filters.network.local_ratelimit",
      typed_config: {
        "@type": T.networkLocalRateLimit,
        stat_prefix: `${t.service}_connections`,
        token_bucket: {
          max_tokens: t.connections_per_second,
          tokens_per_fill: t.connections_per_second,
          fill_interval: "1s",
        },
      },
    });
  }
  if (t.protocol === "redis") {
    filters.push({
      name: "envoy.filters.network.redis_proxy",
      typed_config: {
        "@type": T.redisProxy,
        stat_prefix: t.service,
        settings: { op_timeout: "1s" },
        prefix_routes: { catch_all_route: { cluster: t.service } },
      },
    });
    return filters;
  }
  if (t.protocol === "mongo") {
    filters.push({
      name: "envoy.filters.network.mongo_proxy",
      typed_config: { "@type": T.mongoProxy, stat_prefix: t.service },
    });
  }
  filters.push({
    name: "envoy.filters.network.tcp_proxy",
    typed_config: {
      "@type": T.tcpProxy,
      stat_prefix: t.service,
      cluster: t.service,
      ...(t.idle_timeout !== undefined ? { idle_timeout: durationText(t.idle_timeout) } : {}),
    },
  });
  return filters;
}

function httpListener(name: string, address: string, port: number, config: Json, tls?: Json): Json {
  return {
    name,
    address: socket(address, port),
    filter_chains: [{
      filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: config }],
      ...(tls ? { transport_socket: tls } : {}),
    }],
  };
}

function retryPolicy(d: Defaults, retryOn: string | undefined, u: Upstream | undefined): Json | undefined {
  const n = knob(d, u, "retries");
  if (!n) return undefined;
  const perTry = knob(d, u, "per_try_timeout");
  return {
    retry_on: retryOn ?? d.retry_on,
    num_retries: n,
    ...(perTry ? { per_try_timeout: durationText(perTry) } : {}),
  };
}

/** gRPC's retry conditions: what proxyless gRPC clients act on (they ignore the HTTP ones). */
const GRPC_RETRY_ON = new Set([
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
]);

/**
 * The route action of an upstream (egress and API listeners). For an API listener (proxyless gRPC clients)
 * the timeout is also `max_stream_duration` (gRPC reads that, not `timeout`) and retries keep only gRPC's
 * conditions (`unavailable` when none is listed).
 */
function upstreamRoute(d: Defaults, u: Upstream, grpcClient = false): Json {
  const timeout = knob(d, u, "timeout");
  const retry = retryPolicy(d, u.retry_on, u);
  if (retry && grpcClient) {
    const codes = (retry.retry_on as string).split(",").filter((c) => GRPC_RETRY_ON.has(c));
    retry.retry_on = codes.length > 0 ? codes.join(",") : "unavailable";
  }
  const canary = grpcClient ? undefined : u.canary_percent;
  return {
    ...(canary === undefined
      ? { cluster: u.service }
      : { weighted_clusters: canarySplit(u.service, canary) }),
    ...(timeout !== undefined ? { timeout: durationText(timeout) } : {}),
    ...(timeout !== undefined && grpcClient
      ? { max_stream_duration: { max_stream_duration: durationText(timeout) } }
      : {}),
    ...(retry ? { retry_policy: retry } : {}),
  };
}

/** The registry's `canary` tag as EDS endpoint metadata selects these (see discovery/eds.ts). */
function canaryMatch(canary: boolean): Json {
  return { filter_metadata: { "envoy.lb": { canary } } };
}

/** `percent` of requests to the service's canary hosts, the rest to the others (subsets of one cluster). */
function canarySplit(service: string, percent: number): Json {
  return {
    clusters: [
      { name: service, weight: percent, metadata_match: canaryMatch(true) },
      { name: service, weight: 100 - percent, metadata_match: canaryMatch(false) },
    ].filter((c) => c.weight > 0),
  };
}

/** Subsets by the `canary` key; a subset with no host falls back to every host. */
const CANARY_SUBSETS: Json = { fallback_policy: "ANY_ENDPOINT", subset_selectors: [{ keys: ["canary"] }] };

function rateLimitPerRoute(rps: number, statPrefix: string): Json {
  return {
    "envoy.filters.http.local_ratelimit": {
      "@type": T.localRateLimit,
      stat_prefix: statPrefix,
      token_bucket: { max_tokens: rps, tokens_per_fill: rps, fill_interval: "1s" },
      filter_enabled: { default_value: { numerator: 100, denominator: "HUNDRED" } },
      filter_enforced: { default_value: { numerator: 100, denominator: "HUNDRED" } },
    },
  };
}

/** An EDS cluster of `service` with the knobs of `u` (or the defaults'). */
function edsCluster(d: Defaults, service: string, u: Upstream | undefined, http2: boolean): Json {
  const thresholds: Json = {};
  for (const k of ["max_connections", "max_pending_requests", "max_requests", "max_retries"] as const) {
    const v = knob(d, u, k);
    if (v !== undefined) thresholds[k] = v;
  }
  const outlier: Json = {};
  const c5 = knob(d, u, "consecutive_5xx");
  const eject = knob(d, u, "base_ejection_time");
  const maxEject = knob(d, u, "max_ejection_percent");
  if (c5 !== undefined) outlier.consecutive_5xx = c5;
  if (eject !== undefined) outlier.base_ejection_time = durationText(eject);
  if (maxEject !== undefined) outlier.max_ejection_percent = maxEject;
  const eds = d.eds === "ads" ? ADS_SOURCE : {
    api_config_source: {
      api_type: "REST",
      transport_api_version: "V3",
      cluster_names: [d.eds.rest_cluster],
      refresh_delay: durationText(d.eds.refresh_delay),
    },
    resource_api_version: "V3",
  };
  return {
    name: service,
    type: "EDS",
    eds_cluster_config: { eds_config: eds, service_name: service },
    connect_timeout: durationText(d.connect_timeout),
    lb_policy: "ROUND_ROBIN",
    ...(Object.keys(thresholds).length > 0 ? { circuit_breakers: { thresholds: [thresholds] } } : {}),
    ...(Object.keys(outlier).length > 0 ? { outlier_detection: outlier } : {}),
    ...(u?.canary_percent !== undefined ? { lb_subset_config: CANARY_SUBSETS } : {}),
    ...(http2 ? http2Options() : {}),
  };
}

function http2Options(): Json {
  return {
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": T.httpOptions,
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };
}

function isHttp2(m: Manifest | undefined): boolean {
  return m !== undefined && m.protocol !== "http1";
}

function serviceNode(inputs: BuildInputs, m: Manifest): NodeConfig {
  const d = inputs.defaults;
  const node = emptyNode();
  // ingress: everything to the local service
  const hc = m.health_check;
  node.clusters.push({
    name: LOCAL_CLUSTER,
    type: "STATIC",
    connect_timeout: durationText(d.connect_timeout),
    load_assignment: {
      cluster_name: LOCAL_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socket("127.0.0.1", m.port) } }] }],
    },
    ...(hc ? { health_checks: [healthCheckJson(hc, d)] } : {}),
    ...(isHttp2(m) ? http2Options() : {}),
  });
  node.listeners.push(
    httpListener("ingress", d.ingress_address, d.ingress_port, hcm("ingress", "ingress", false)),
  );
  node.routes.push({
    name: "ingress",
    virtual_hosts: [{
      name: m.service,
      domains: ["*"],
      routes: [{
        match: { prefix: "/" },
        route: { cluster: LOCAL_CLUSTER, timeout: durationText(d.ingress_timeout) },
      }],
    }],
  });
  // egress: one virtual host per upstream
  const ups = [...m.upstreams].sort((a, b) => a.service < b.service ? -1 : a.service > b.service ? 1 : 0);
  const limited = ups.some((u) => knob(d, u, "requests_per_second") !== undefined);
  if (ups.length > 0) {
    // the local service is the caller: its address decides (loopback is internal), so the x-envoy-* timeout
    // and retry headers and the x-request-id the thin client sends are kept, as on Lyft's sidecars
    node.listeners.push(
      httpListener(
        "egress",
        "127.0.0.1",
        d.egress_port,
        hcm("egress", "egress", limited, undefined, { use_remote_address: true }),
      ),
    );
    node.routes.push({
      name: "egress",
      virtual_hosts: ups.map((u) => {
        const rps = knob(d, u, "requests_per_second");
        return {
          name: u.service,
          domains: [u.service, `${u.service}:${d.egress_port}`],
          routes: [{
            match: { prefix: "/" },
            route: upstreamRoute(d, u),
            ...(rps !== undefined
              ? { typed_per_filter_config: rateLimitPerRoute(rps, `egress_${u.service}_rate_limit`) }
              : {}),
          }],
        };
      }),
    });
  }
  for (const u of ups) {
    const target = inputs.manifests.get(u.service);
    node.clusters.push(edsCluster(d, u.service, u, isHttp2(target)));
    node.endpoints.push(u.service);
    node.apiListeners.push({
      name: u.service,
      api_listener: {
        api_listener: hcm(u.service, u.service, false, {
          name: u.service,
          virtual_hosts: [{
            name: u.service,
            domains: ["*"],
            routes: [{ match: { prefix: "" }, route: upstreamRoute(d, u, true) }],
          }],
        }),
      },
    });
  }
  // databases and caches: one TCP listener each
  const tcp = [...m.databases, ...m.caches].sort((a, b) => a.port - b.port);
  for (const t of tcp) {
    node.listeners.push({
      name: `tcp_${t.service}`,
      address: socket("127.0.0.1", t.port),
      filter_chains: [{ filters: storeFilters(t) }],
    });
    if (!node.endpoints.includes(t.service)) {
      const cluster = edsCluster(d, t.service, undefined, false);
      if (t.max_connections !== undefined) {
        cluster.circuit_breakers = { thresholds: [{ max_connections: t.max_connections }] };
      }
      // redis_proxy shards keys with the cluster's consistent hash
      if (t.protocol === "redis") cluster.lb_policy = "RING_HASH";
      node.clusters.push(cluster);
      node.endpoints.push(t.service);
    }
  }
  return node;
}

function edgeNode(inputs: BuildInputs, e: Edge): NodeConfig {
  const d = inputs.defaults;
  const node = emptyNode();
  const tls = e.tls_secret === undefined ? undefined : {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": T.downstreamTls,
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: e.tls_secret, sds_config: ADS_SOURCE }],
      },
    },
  };
  node.listeners.push(httpListener("edge", e.address, e.port, hcm("edge", "edge", false), tls));
  if (e.tls_secret !== undefined) node.secrets.push(e.tls_secret);
  node.routes.push({
    name: "edge",
    virtual_hosts: [{
      name: "edge",
      domains: e.domains,
      routes: e.routes.map((r) => {
        const timeout = r.timeout ?? d.limits.timeout?.default;
        const retry = r.retries === undefined
          ? retryPolicy(d, r.retry_on, undefined)
          : r.retries > 0
          ? { retry_on: r.retry_on ?? d.retry_on, num_retries: r.retries }
          : undefined;
        return {
          match: { prefix: r.prefix },
          route: {
            cluster: r.service,
            ...(r.prefix_rewrite !== undefined ? { prefix_rewrite: r.prefix_rewrite } : {}),
            ...(timeout !== undefined ? { timeout: durationText(timeout) } : {}),
            ...(retry ? { retry_policy: retry } : {}),
          },
        };
      }),
    }],
  });
  const services = [...new Set(e.routes.map((r) => r.service))].sort();
  for (const s of services) {
    node.clusters.push(edsCluster(d, s, undefined, isHttp2(inputs.manifests.get(s))));
    node.endpoints.push(s);
  }
  return node;
}
