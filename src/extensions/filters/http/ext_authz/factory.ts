/**
 * The long-lived side of envoy.filters.http.ext_authz: per config snapshot its stats, header matchers and the
 * authorization client (gRPC or HTTP), and the check's input built from a stream (Envoy's FilterConfig and
 * CheckRequestUtils::createHttpCheck). The per-stream filter is in filter.ts.
 */
import type { HttpFilter, HttpFilterCallbacks, HttpFilterFactory } from "../../../../http/filter.ts";
import { StringMatch } from "../../../../http/routing/matchers.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter, Scope } from "../../../../stats/store.ts";
import { Fraction } from "../../common/config.ts";
import {
  type AuthzClient,
  type CheckInput,
  type CheckPeer,
  HeaderKeyMatcher,
  sanitizeHeaderValue,
  splitAddress,
} from "./check.ts";
import type { BufferSettingsConfig, ExtAuthzConfig, ListStringMatcherConfig } from "./config.ts";
import { ExtAuthzFilter } from "./filter.ts";
import { GrpcAuthzClient } from "./grpc_client.ts";
import { HttpAuthzClient } from "./http_client.ts";
import { compileHeadersToAdd } from "./http_mapping.ts";

/** The canonical extension name (the default typed_per_filter_config key). */
export const EXT_AUTHZ_NAME = "envoy.filters.http.ext_authz";

/** Default deadline of a check (Envoy's DefaultTimeout for grpc_service). */
const DEFAULT_TIMEOUT_MS = 200;
const NO_DEADLINE_MS = 86_400_000;
const PARTIAL_BODY = "x-envoy-auth-partial-body";
const DOWNSTREAM_SERVICE_CLUSTER = "x-envoy-downstream-service-cluster";

/** `http.<prefix>.ext_authz.*` counters. */
export interface FilterStats {
  ok: Counter;
  denied: Counter;
  error: Counter;
  disabled: Counter;
  failure_mode_allowed: Counter;
  invalid: Counter;
  ignored_dynamic_metadata: Counter;
}

/** `cluster.<route cluster>.ext_authz.*` counters. */
export interface ClusterAuthzStats {
  ok: Counter;
  denied: Counter;
  error: Counter;
  invalid: Counter;
  failure_mode_allowed: Counter;
}

function matcherOf(
  list: ListStringMatcherConfig | undefined,
  extra: readonly string[] = [],
): HeaderKeyMatcher | null {
  if (list === undefined && extra.length === 0) return null;
  const ms = (list?.patterns ?? []).map((p) => StringMatch.from(p));
  for (const e of extra) ms.push(StringMatch.of("exact", e));
  return new HeaderKeyMatcher(ms);
}

/** The URI SAN, else DNS SAN, else subject of a certificate (Envoy's principal). */
function principalOf(c: { uriSans: string; dnsSans: string; subject: string } | null): string {
  if (c === null) return "";
  if (c.uriSans !== "") return c.uriSans.split(",")[0];
  if (c.dnsSans !== "") return c.dnsSans.split(",")[0];
  return c.subject;
}

/** Per-snapshot state of one ext_authz filter config. */
export class ExtAuthzFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly stats: FilterStats;
  readonly client: AuthzClient;
  /** The HTTP client when `http_service` is configured (its checks take the stream's formatter context). */
  readonly http: HttpAuthzClient | null;
  /** The name of a check's child span (Envoy's async client: "async <cluster or method> egress"). */
  readonly spanName: string;
  /** The authorization service's cluster (the child span's upstream_cluster tag). */
  readonly serviceCluster: string;
  readonly allowed: HeaderKeyMatcher | null;
  readonly disallowed: HeaderKeyMatcher | null;
  readonly statusOnError: number;
  readonly enabled: Fraction | null;
  readonly denyAtDisable: boolean;
  readonly withBody: BufferSettingsConfig | undefined;
  readonly #clusterStats = new Map<string, ClusterAuthzStats>();
  readonly #clusterPrefix: string;

  constructor(
    readonly config: ExtAuthzConfig,
    readonly ctx: FactoryContext,
    readonly name: string,
    statPrefix: string,
  ) {
    const sub = config.stat_prefix === "" ? "" : `${config.stat_prefix}.`;
    const s: Scope = ctx.stats.scope(`http.${statPrefix}.ext_authz.${sub}`);
    this.stats = {
      ok: s.counter("ok"),
      denied: s.counter("denied"),
      error: s.counter("error"),
      disabled: s.counter("disabled"),
      failure_mode_allowed: s.counter("failure_mode_allowed"),
      invalid: s.counter("invalid"),
      ignored_dynamic_metadata: s.counter("ignored_dynamic_metadata"),
    };
    this.#clusterPrefix = `ext_authz.${sub}`;
    const code = config.status_on_error?.code ?? 403;
    this.statusOnError = code >= 100 && code <= 511 ? code : 403;
    this.enabled = config.filter_enabled ? Fraction.of(config.filter_enabled.default_value, 100) : null;
    this.denyAtDisable = config.deny_at_disable?.default_value ?? false;
    this.withBody = config.with_request_body;
    this.disallowed = matcherOf(config.disallowed_headers);
    const hs = config.http_service;
    if (hs) {
      // HTTP services get only Authorization, Method, Path and Host unless more are allowed
      this.allowed = matcherOf(
        hs.authorization_request?.allowed_headers ?? config.allowed_headers,
        ["authorization", ":method", ":path", ":authority"],
      );
      const ar = hs.authorization_response;
      this.http = new HttpAuthzClient({
        cluster: hs.server_uri.cluster,
        timeoutMs: hs.server_uri.timeout,
        pathPrefix: hs.path_prefix,
        headersToAdd: compileHeadersToAdd(hs.authorization_request?.headers_to_add ?? []),
        upstream: matcherOf(ar?.allowed_upstream_headers),
        upstreamAppend: matcherOf(ar?.allowed_upstream_headers_to_append),
        client: ar?.allowed_client_headers
          ? matcherOf(ar.allowed_client_headers, ["content-length", "www-authenticate", "location"])
          : null,
        clientOnSuccess: matcherOf(ar?.allowed_client_headers_on_success),
        dynamicMetadata: matcherOf(ar?.dynamic_metadata_from_headers),
      }, ctx);
      this.client = this.http;
      this.serviceCluster = hs.server_uri.cluster;
      this.spanName = `async ${hs.server_uri.cluster} egress`;
    } else {
      const g = config.grpc_service!;
      this.allowed = matcherOf(config.allowed_headers);
      this.http = null;
      this.serviceCluster = g.envoy_grpc.cluster_name;
      this.spanName = "async envoy.service.auth.v3.Authorization.Check egress";
      this.client = new GrpcAuthzClient(
        g.envoy_grpc.cluster_name,
        g.envoy_grpc.authority,
        // 0 disables the deadline in Envoy's async client: a day stands in for "none"
        g.timeout === 0 ? NO_DEADLINE_MS : g.timeout ?? DEFAULT_TIMEOUT_MS,
        ctx,
      );
    }
  }

  /** `cluster.<name>.ext_authz.*` counters of the route's cluster (created on first use). */
  clusterStats(cluster: string): ClusterAuthzStats {
    let s = this.#clusterStats.get(cluster);
    if (!s) {
      const scope = this.ctx.stats.scope(`cluster.${cluster}.${this.#clusterPrefix}`);
      s = {
        ok: scope.counter("ok"),
        denied: scope.counter("denied"),
        error: scope.counter("error"),
        invalid: scope.counter("invalid"),
        failure_mode_allowed: scope.counter("failure_mode_allowed"),
      };
      this.#clusterStats.set(cluster, s);
    }
    return s;
  }

  /**
   * The check's input for the stream (Envoy's CheckRequestUtils::createHttpCheck): request attributes, the
   * headers the allowed/disallowed matchers let through, the buffered body and the route's context extensions.
   */
  checkInput(
    cb: HttpFilterCallbacks,
    body: Uint8Array | null,
    partial: boolean,
    contextExtensions: Readonly<Record<string, string>> | null,
  ): CheckInput {
    const c = this.config;
    const req = cb.request;
    const info = cb.streamInfo;
    const raw = c.encode_raw_headers;
    const names: string[] = [];
    const values: string[] = [];
    this.#addHeader(names, values, ":authority", req.authority, raw);
    this.#addHeader(names, values, ":path", req.path, raw);
    this.#addHeader(names, values, ":method", req.method, raw);
    this.#addHeader(names, values, ":scheme", req.scheme, raw);
    const h = req.headers;
    for (let i = 0; i < h.names.length; i++) {
      const n = h.names[i];
      if (n === "host" || n === PARTIAL_BODY) continue;
      this.#addHeader(names, values, n, h.values[i], raw);
    }
    if (body !== null) {
      const v = partial ? "true" : "false";
      const at = raw ? -1 : names.indexOf(PARTIAL_BODY);
      if (at >= 0) values[at] = v;
      else {
        names.push(PARTIAL_BODY);
        values.push(v);
      }
    }
    const tls = info.downstreamTls;
    const [srcIp, srcPort] = splitAddress(info.downstreamDirectRemoteAddress || info.downstreamRemoteAddress);
    const [dstIp, dstPort] = splitAddress(info.downstreamLocalAddress);
    const source: CheckPeer = {
      address: srcIp,
      port: srcPort,
      service: sanitizeHeaderValue(h.get(DOWNSTREAM_SERVICE_CLUSTER) ?? ""),
      principal: tls ? principalOf(tls.peer) : "",
      certificate: c.include_peer_certificate && tls?.peer ? tls.peer.urlEncodedPem : "",
    };
    const destination: CheckPeer = {
      address: dstIp,
      port: dstPort,
      service: "",
      principal: tls ? principalOf(tls.local) : "",
      certificate: "",
    };
    return {
      source,
      destination,
      startTimeMs: info.startTime,
      id: String(info.streamId),
      method: req.method,
      path: req.path,
      host: req.authority,
      scheme: req.scheme,
      size: info.bytesReceived,
      protocol: req.protocol,
      headerNames: names,
      headerValues: values,
      rawHeaders: raw,
      body,
      // Envoy reads pack_as_bytes from the filter's with_request_body only (a route's does not change it)
      packAsBytes: c.with_request_body?.pack_as_bytes === true || this.http !== null,
      contextExtensions,
      sni: c.include_tls_session ? (tls?.sni || info.requestedServerName) : null,
      metadataContext: this.#metadataContext(info.dynamicMetadata),
    };
  }

  /** The metadata_context_namespaces present in the request's dynamic metadata; null when none is. */
  #metadataContext(
    dynamic: Readonly<Record<string, Record<string, unknown>>> | null,
  ): Record<string, Record<string, unknown>> | null {
    const wanted = this.config.metadata_context_namespaces;
    if (dynamic === null || wanted.length === 0) return null;
    let out: Record<string, Record<string, unknown>> | null = null;
    for (const ns of wanted) {
      const fields = dynamic[ns];
      if (fields !== undefined) (out ??= {})[ns] = fields;
    }
    return out;
  }

  /** Adds one header line to the check's list if the matchers let it through (joined per name unless raw). */
  #addHeader(names: string[], values: string[], n: string, v: string, raw: boolean): void {
    if (this.disallowed !== null && this.disallowed.matches(n)) return;
    if (this.allowed !== null && !this.allowed.matches(n)) return;
    if (raw) {
      names.push(n);
      values.push(v);
      return;
    }
    const value = sanitizeHeaderValue(v);
    const at = names.indexOf(n);
    if (at < 0) {
      names.push(n);
      values.push(value);
    } else values[at] += "," + value;
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new ExtAuthzFilter(this, cb);
  }

  close(): void {
    this.client.close();
  }
}
