/**
 * envoy.filters.http.ratelimit: asks the global rate-limit service about the descriptors of the matched
 * route's `rate_limits` (and the virtual host's) before the request goes on. Over limit: 429 with
 * `x-envoy-ratelimited` and flag RL. Service error or timeout: flag RLSE, then fail open (default) or closed.
 * Runtime: filter_enabled / filter_enforced, else Envoy's keys `ratelimit.http_filter_enabled` and
 * `ratelimit.http_filter_enforcing` (100 %); a limit with a disable_key needs `ratelimit.<key>.http_filter_enabled`.
 */
import { Logger } from "../../../../common/log.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
  type HttpResponse,
  type LocalReplyOptions,
} from "../../../../http/filter.ts";
import { HeaderMap } from "../../../../http/headers.ts";
import type { DescriptorEntry } from "../../../../http/routing/rate_limits.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter } from "../../../../stats/store.ts";
import { type RateLimitClient, RlsCode, type RlsDecision } from "../../common/ratelimit/client.ts";
import type { HttpRateLimitConfig } from "./config.ts";
import { RuntimeFraction } from "../../common/config.ts";
import { runtime } from "../../../../runtime/current.ts";
import type { Span } from "../../../../tracing/types.ts";

/** The child span of a ShouldRateLimit call (Envoy's async gRPC client: "async <service>.<method> egress"). */
const RLS_SPAN = "async envoy.service.ratelimit.v3.RateLimitService.ShouldRateLimit egress";

/** `cluster.<target>.ratelimit.*` counters. */
interface RlStats {
  ok: Counter;
  over_limit: Counter;
  error: Counter;
  failure_mode_allowed: Counter;
}

const UNIT_SECONDS = [0, 1, 60, 3600, 86400];
const GRPC_UNAVAILABLE = 14;
const GRPC_RESOURCE_EXHAUSTED = 8;

/** Per-snapshot state of one ratelimit filter config. */
export class HttpRateLimitFactory implements HttpFilterFactory {
  readonly terminal = false;
  readonly stage: number;
  readonly timeoutMs: number;
  readonly failureModeDeny: boolean;
  readonly xRateLimitHeaders: boolean;
  readonly ratelimitedHeader: boolean;
  readonly limitedStatus: number;
  readonly errorStatus: number;
  readonly limitedGrpcStatus: number;
  readonly requestType: "internal" | "external" | "both";
  /** filter_enabled / filter_enforced, or null for Envoy's runtime keys ratelimit.http_filter_enabled/enforcing. */
  readonly #enabled: RuntimeFraction | null;
  readonly #enforced: RuntimeFraction | null;
  readonly #stats = new Map<string, RlStats>();
  readonly #prefix: string;

  constructor(
    readonly config: HttpRateLimitConfig,
    readonly ctx: FactoryContext,
    readonly client: RateLimitClient,
  ) {
    this.stage = config.stage ?? 0;
    this.timeoutMs = config.timeout ?? 20;
    this.failureModeDeny = config.failure_mode_deny ?? false;
    this.xRateLimitHeaders = config.enable_x_ratelimit_headers === "DRAFT_VERSION_03";
    this.ratelimitedHeader = !(config.disable_x_envoy_ratelimited_header ?? false);
    this.limitedStatus = config.rate_limited_status?.code ?? 429;
    this.errorStatus = config.status_on_error?.code ?? 500;
    this.limitedGrpcStatus = config.rate_limited_as_resource_exhausted
      ? GRPC_RESOURCE_EXHAUSTED
      : GRPC_UNAVAILABLE;
    this.requestType = config.request_type ?? "both";
    this.#enabled = config.filter_enabled ? new RuntimeFraction(config.filter_enabled, 100) : null;
    this.#enforced = config.filter_enforced ? new RuntimeFraction(config.filter_enforced, 100) : null;
    this.#prefix = config.stat_prefix ? `${config.stat_prefix}.ratelimit` : "ratelimit";
  }

  /** True when this request asks the service (filter_enabled, else runtime `ratelimit.http_filter_enabled`). */
  enabled(): boolean {
    const e = this.#enabled;
    return e !== null ? e.enabled() : runtime().featureEnabled("ratelimit.http_filter_enabled", 100);
  }

  /** True when an over-limit answer is enforced (filter_enforced, else runtime `ratelimit.http_filter_enforcing`). */
  enforced(): boolean {
    const e = this.#enforced;
    return e !== null ? e.enabled() : runtime().featureEnabled("ratelimit.http_filter_enforcing", 100);
  }

  /** Counters for a target cluster (created on first use). */
  statsFor(cluster: string): RlStats {
    let s = this.#stats.get(cluster);
    if (!s) {
      const scope = this.ctx.stats.scope(`cluster.${cluster}.${this.#prefix}`);
      s = {
        ok: scope.counter("ok"),
        over_limit: scope.counter("over_limit"),
        error: scope.counter("error"),
        failure_mode_allowed: scope.counter("failure_mode_allowed"),
      };
      this.#stats.set(cluster, s);
    }
    return s;
  }

  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new HttpRateLimitFilter(this, cb);
  }

  close(): void {
    this.client.close();
  }
}

const log = new Logger("filter");

/** Debug line: why the rate-limit filter lets `cb` through without asking the service. */
function logSkip(cb: HttpFilterCallbacks, why: string): void {
  log.debug(`${cb.streamInfo.logPrefix()}ratelimit filter skips the request: ${why}`);
}

class HttpRateLimitFilter implements HttpFilter {
  #responseHeaders: [string, string][] | undefined;

  constructor(readonly f: HttpRateLimitFactory, readonly cb: HttpFilterCallbacks) {}

  decodeHeaders(_endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const f = this.f, cb = this.cb;
    if (!f.enabled()) {
      if (log.enabled("debug")) {
        logSkip(cb, "filter_enabled (or runtime ratelimit.http_filter_enabled) not hit");
      }
      return HttpFilterStatus.Continue;
    }
    if (f.requestType !== "both" && (f.requestType === "internal") !== cb.internal) {
      if (log.enabled("debug")) {
        logSkip(cb, `request_type ${f.requestType}, the request is ${cb.internal ? "internal" : "external"}`);
      }
      return HttpFilterStatus.Continue;
    }
    const route = cb.route();
    if (route === null || route.kind !== "route") {
      if (log.enabled("debug")) logSkip(cb, route === null ? "no route" : `the route is a ${route.kind}`);
      return HttpFilterStatus.Continue;
    }
    const limits = route.rateLimits;
    if (limits.length === 0) {
      if (log.enabled("debug")) logSkip(cb, "the route and virtual host have no rate_limits");
      return HttpFilterStatus.Continue;
    }
    const req = cb.request;
    // the cluster chosen with the route (the same pick the router makes)
    const cluster = cb.streamInfo.upstreamCluster;
    const dctx = {
      localServiceCluster: f.ctx.node.cluster,
      destinationCluster: cluster,
      remoteIp: cb.remoteIp,
    };
    const descriptors: DescriptorEntry[][] = [];
    const rt = runtime();
    for (const l of limits) {
      if (l.stage !== f.stage) continue;
      // Envoy: a limit with a disable_key applies while runtime ratelimit.<key>.http_filter_enabled (default 100)
      if (l.disableKey !== "" && !rt.featureEnabled(`ratelimit.${l.disableKey}.http_filter_enabled`, 100)) {
        continue;
      }
      l.populate(req, dctx, descriptors);
    }
    if (descriptors.length === 0) {
      if (log.enabled("debug")) logSkip(cb, `no descriptor was produced for stage ${f.stage}`);
      return HttpFilterStatus.Continue;
    }
    return this.#ask(descriptors, cluster);
  }

  /** Asks the service; the decision is applied at once when the client has it without waiting. */
  #ask(descriptors: DescriptorEntry[][], cluster: string): HttpFilterStatus | Promise<HttpFilterStatus> {
    const f = this.f, cb = this.cb;
    // tracing: the call is a child span of the request's (Envoy's gRPC async client span)
    const parent = cb.activeSpan;
    const span = parent != null && parent.sampled ? parent.spawnChild(RLS_SPAN, f.ctx.clock.now()) : null;
    let metadata: HeaderMap | null = null;
    if (span !== null) span.injectContext(metadata = new HeaderMap());
    const res = f.client.shouldRateLimit(
      { domain: f.config.domain, descriptors, hitsAddend: 0, metadata },
      f.timeoutMs,
    );
    if (res instanceof Promise) return this.#awaitDecision(res, span, cluster);
    return this.#apply(res, span, cluster);
  }

  async #awaitDecision(
    res: Promise<RlsDecision | Error>,
    span: Span | null,
    cluster: string,
  ): Promise<HttpFilterStatus> {
    return this.#apply(await res, span, cluster);
  }

  /** Stats, flags, headers and the local reply for one answer of the service. */
  #apply(
    res: RlsDecision | Error,
    span: Span | null,
    cluster: string,
  ): HttpFilterStatus | Promise<HttpFilterStatus> {
    const f = this.f, cb = this.cb;
    if (span !== null) {
      span.setTag("component", "proxy");
      span.setTag("upstream_cluster", f.config.rate_limit_service.grpc_service.envoy_grpc.cluster_name);
      const code = res instanceof Error ? (res as { status?: number }).status ?? 2 : 0;
      span.setTag("grpc.status_code", String(code));
      if (code !== 0) span.setTag("error", "true");
      span.finish(f.ctx.clock.now());
    }
    const stats = f.statsFor(cluster);
    if (res instanceof Error) {
      stats.error.inc();
      cb.streamInfo.responseFlags |= ResponseFlag.RateLimitServiceError;
      if (f.failureModeDeny) {
        return this.#reply(f.errorStatus, {
          flags: ResponseFlag.RateLimitServiceError,
          details: "rate_limiter_error",
          grpcStatus: GRPC_UNAVAILABLE,
        });
      }
      stats.failure_mode_allowed.inc();
      return HttpFilterStatus.Continue;
    }
    const headers = this.#decisionHeaders(res);
    if (log.enabled("debug")) {
      log.debug(
        `${cb.streamInfo.logPrefix()}ratelimit service says ${
          res.overallCode === RlsCode.OverLimit ? "OVER_LIMIT" : "OK"
        } for domain '${f.config.domain}'`,
      );
    }
    if (res.overallCode === RlsCode.OverLimit) stats.over_limit.inc();
    if (res.overallCode === RlsCode.OverLimit && f.enforced()) {
      return this.#reply(f.limitedStatus, {
        flags: ResponseFlag.RateLimited,
        details: "request_rate_limited",
        headers: f.ratelimitedHeader ? [...headers, ["x-envoy-ratelimited", "true"]] : headers,
        grpcStatus: f.limitedGrpcStatus,
      });
    }
    if (res.overallCode !== RlsCode.OverLimit) stats.ok.inc();
    const add = res.requestHeadersToAdd;
    for (let i = 0; i < add.length; i++) cb.request.headers.set(add[i][0], add[i][1]);
    if (headers.length > 0) this.#responseHeaders = headers;
    return HttpFilterStatus.Continue;
  }

  async #reply(status: number, opts: LocalReplyOptions): Promise<HttpFilterStatus> {
    await this.cb.sendLocalReply(status, "", opts);
    return HttpFilterStatus.StopIteration;
  }

  /** RLS response_headers_to_add plus the draft-03 X-RateLimit-* headers when enabled (read-only: may be the response's). */
  #decisionHeaders(res: RlsDecision): [string, string][] {
    if (!this.f.xRateLimitHeaders) return res.responseHeadersToAdd;
    const out: [string, string][] = res.responseHeadersToAdd.slice();
    let min = -1;
    for (let i = 0; i < res.statuses.length; i++) {
      const s = res.statuses[i];
      if (s.requestsPerUnit === 0) continue;
      if (min < 0 || s.limitRemaining < res.statuses[min].limitRemaining) min = i;
    }
    if (min < 0) return out;
    const m = res.statuses[min];
    let limit = String(m.requestsPerUnit);
    for (const s of res.statuses) {
      if (s.requestsPerUnit > 0) limit += `, ${s.requestsPerUnit};w=${UNIT_SECONDS[s.unit] ?? 0}`;
    }
    out.push(["x-ratelimit-limit", limit], ["x-ratelimit-remaining", String(m.limitRemaining)]);
    if (m.secondsUntilReset >= 0) out.push(["x-ratelimit-reset", String(m.secondsUntilReset)]);
    return out;
  }

  encodeHeaders(res: HttpResponse, _endStream: boolean): HttpFilterStatus {
    const h = this.#responseHeaders;
    if (h !== undefined) { for (const [k, v] of h) res.headers.set(k, v); }
    return HttpFilterStatus.Continue;
  }
}
