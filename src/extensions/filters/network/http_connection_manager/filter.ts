/** Builds the per-snapshot HcmConfig from the parsed HttpConnectionManager and makes per-connection codecs. */
import { anyUsesTlsFacts, createAccessLogs } from "../../../../access_log/config.ts";
import { Http1ServerConnection } from "../../../../http/conn_manager.ts";
import { Http2ServerConnection } from "../../../../http/h2_conn_manager.ts";
import { type H2Options, h2StatsFrom } from "../../../../http/h2/mod.ts";
import type { HttpFilterCreate, HttpFilterFactory } from "../../../../http/filter.ts";
import { type HcmConfig, type HcmOptions, HcmStats } from "../../../../http/hcm_config.ts";
import { type RouteConfigProvider, StaticRouteConfigProvider } from "../../../../http/routing/provider.ts";
import type {
  DownstreamConnection,
  FactoryContext,
  NetworkFilterFactory,
  TerminalFilter,
} from "../../../../network/filter.ts";
import { type ClientCertDetail, XfccBuilder } from "../../../../http/xfcc.ts";
import { createHcmTracing } from "../../../../tracing/http_tracing.ts";
import type { Http2ProtocolOptionsConfig, HttpConnectionManagerConfig } from "./config.ts";

/** Default request_headers_timeout: Envoy leaves it off; nuncio turns it on so slow clients cannot hold connections. */
export const DEFAULT_REQUEST_HEADERS_TIMEOUT_MS = 10_000;

/**
 * Downstream HTTP/2 options with Envoy's defaults (max_concurrent_streams 2147483647, 256 MiB windows) and the
 * codec's flood limits (Envoy's values).
 */
export function resolveHttp2Options(c: Http2ProtocolOptionsConfig | undefined): H2Options {
  const o: H2Options = { max_concurrent_streams: 2147483647 };
  if (!c) return o;
  const keys = [
    "hpack_table_size",
    "max_concurrent_streams",
    "initial_stream_window_size",
    "initial_connection_window_size",
    "max_outbound_frames",
    "max_outbound_control_frames",
    "max_consecutive_inbound_frames_with_empty_payload",
    "max_inbound_priority_frames_per_stream",
    "max_inbound_window_update_frames_per_data_frame_sent",
  ] as const;
  for (const k of keys) if (c[k] !== undefined) o[k] = c[k];
  return o;
}

/** Resolves Envoy's defaults for every HCM option; `node` is the bootstrap node (for add_user_agent). */
export function resolveHcmOptions(
  c: HttpConnectionManagerConfig,
  node: { id: string; cluster: string } = { id: "", cluster: "" },
): HcmOptions {
  const common = c.common_http_protocol_options ?? {};
  const h1 = c.http_protocol_options ?? {};
  const escaped = c.path_with_escaped_slashes_action === "IMPLEMENTATION_SPECIFIC_DEFAULT"
    ? "KEEP_UNCHANGED"
    : c.path_with_escaped_slashes_action;
  return {
    statPrefix: c.stat_prefix,
    codecType: c.codec_type as "AUTO" | "HTTP1" | "HTTP2",
    http2: resolveHttp2Options(c.http2_protocol_options),
    maxHeadersBytes: c.max_request_headers_kb * 1024,
    maxHeadersCount: common.max_headers_count ?? 100,
    requestHeadersTimeoutMs: c.request_headers_timeout ?? DEFAULT_REQUEST_HEADERS_TIMEOUT_MS,
    idleTimeoutMs: common.idle_timeout ?? 3_600_000,
    streamIdleTimeoutMs: c.stream_idle_timeout ?? 300_000,
    requestTimeoutMs: c.request_timeout ?? 0,
    maxStreamDurationMs: common.max_stream_duration ?? 0,
    maxRequestsPerConnection: common.max_requests_per_connection ?? 0,
    useRemoteAddress: c.use_remote_address,
    xffNumTrustedHops: c.xff_num_trusted_hops,
    skipXffAppend: c.skip_xff_append,
    via: c.via ?? "",
    userAgent: c.add_user_agent && node.cluster ? node.cluster : undefined,
    downstreamServiceNode: c.add_user_agent ? node.id : "",
    generateRequestId: c.generate_request_id,
    preserveExternalRequestId: c.preserve_external_request_id,
    alwaysSetRequestIdInResponse: c.always_set_request_id_in_response,
    serverName: c.server_name || "envoy", // "" (proto3 default) is unset, as in Envoy
    serverHeaderTransformation: c.server_header_transformation,
    normalizePath: c.normalize_path,
    mergeSlashes: c.merge_slashes,
    escapedSlashes: escaped,
    stripPort: c.strip_any_host_port ? "any" : c.strip_matching_host_port ? "matching" : "none",
    pathOptions: { normalize: c.normalize_path, mergeSlashes: c.merge_slashes, escapedSlashes: escaped },
    upgrades: new Set(
      c.upgrade_configs.filter((u) => u.enabled !== false).map((u) => u.upgrade_type.toLowerCase()),
    ),
    acceptHttp10: h1.accept_http_10 ?? false,
    proxy100Continue: c.proxy_100_continue,
    defaultHostForHttp10: h1.default_host_for_http_10 ?? "",
    allowAbsoluteUrl: h1.allow_absolute_url ?? true,
    headersWithUnderscores: common.headers_with_underscores_action ?? "ALLOW",
    internalCidrs: c.internal_address_config?.cidr_ranges?.map((r) => ({
      address: r.address_prefix,
      prefixLen: r.prefix_len,
    })),
    forwardClientCert: c.forward_client_cert_details,
    xfcc:
      c.forward_client_cert_details === "APPEND_FORWARD" || c.forward_client_cert_details === "SANITIZE_SET"
        ? new XfccBuilder(clientCertDetails(c.set_current_client_cert_details))
        : undefined,
  };
}

/** set_current_client_cert_details in the order Envoy emits them (Cert, Chain, Subject, URI, DNS). */
function clientCertDetails(
  d: HttpConnectionManagerConfig["set_current_client_cert_details"],
): ClientCertDetail[] {
  if (d === undefined) return [];
  const out: ClientCertDetail[] = [];
  if (d.cert) out.push("Cert");
  if (d.chain) out.push("Chain");
  if (d.subject) out.push("Subject");
  if (d.uri) out.push("URI");
  if (d.dns) out.push("DNS");
  return out;
}

/**
 * Runs when the factory is built: an inline route_config becomes a static provider; `rds` shares the data
 * plane's provider for its route_config_name (404 NR until the first RouteConfiguration arrives).
 */
export function routeProviderFor(
  config: HttpConnectionManagerConfig,
  ctx: FactoryContext,
): RouteConfigProvider {
  if (config.rds === undefined) return new StaticRouteConfigProvider(config.route_config!);
  if (ctx.routes === undefined) {
    throw new Error(`rds (${config.rds.route_config_name}) needs a data plane with a route config registry`);
  }
  return ctx.routes.provider(config.rds.route_config_name);
}

/** The network filter factory of one http_connection_manager config. */
export class HttpConnectionManagerFactory implements NetworkFilterFactory {
  readonly terminal = true;
  readonly hcm: HcmConfig;
  readonly needsTlsFacts: boolean;

  constructor(config: HttpConnectionManagerConfig, ctx: FactoryContext) {
    const opts = resolveHcmOptions(config, ctx.node);
    const filters: HttpFilterFactory[] = [];
    for (const ref of config.http_filters) {
      const create = ref.ext.create as HttpFilterCreate<unknown>;
      filters.push(create(ref.config, ctx, { statPrefix: config.stat_prefix, filterName: ref.name }));
    }
    if (filters.length === 0 || !filters[filters.length - 1].terminal) {
      throw new Error("The last HTTP filter must be a terminal filter such as envoy.filters.http.router");
    }
    for (let i = 0; i < filters.length - 1; i++) {
      if (filters[i].terminal) {
        throw new Error(`Terminal HTTP filter ${config.http_filters[i].name} must be last`);
      }
    }
    this.hcm = {
      opts,
      stats: new HcmStats(ctx.stats.scope(`http.${config.stat_prefix}`)),
      routeProvider: routeProviderFor(config, ctx),
      filters,
      accessLogs: createAccessLogs(config.access_log, ctx),
      clock: ctx.clock,
      timers: ctx.timers,
      clusterManager: ctx.clusterManager,
      h2Stats: h2StatsFrom((n, gauge) =>
        gauge ? ctx.stats.scope("http2").gauge(n) : ctx.stats.scope("http2").counter(n)
      ),
      tracing: createHcmTracing(config.tracing, ctx.tracingProvider, ctx, config.stat_prefix),
    };
    this.needsTlsFacts = anyUsesTlsFacts(this.hcm.accessLogs);
  }

  /** Listener warming: a promise until the RDS route table is in place; undefined once it is (or inline). */
  whenReady(): Promise<void> | undefined {
    const p = this.hcm.routeProvider;
    return p.ready ? undefined : p.whenReady();
  }

  /**
   * Picks the codec per connection: HTTP2 always speaks HTTP/2 (as Envoy does, whatever ALPN said); AUTO
   * speaks HTTP/2 when ALPN chose "h2", else sniffs the HTTP/2 preface; HTTP1 speaks HTTP/1.1.
   */
  createFilter(conn: DownstreamConnection): TerminalFilter {
    const codec = this.hcm.opts.codecType;
    if (codec === "HTTP2" || (codec === "AUTO" && conn.tls?.alpn === "h2")) {
      return new Http2ServerConnection(this.hcm);
    }
    return new Http1ServerConnection(this.hcm, codec === "AUTO");
  }

  /** Flushes and closes the access logs and retires the HTTP filter factories. */
  async close(): Promise<void> {
    await Promise.all([
      ...this.hcm.accessLogs.map((l) => l.close()),
      ...this.hcm.filters.map((f) => f.close?.()),
      this.hcm.tracing?.close(),
    ]);
  }
}
