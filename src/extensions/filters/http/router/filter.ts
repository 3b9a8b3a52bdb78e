/**
 * envoy.filters.http.router: the terminal HTTP filter. Picks the cluster and host for the matched route and
 * runs the request as one or more attempts (UpstreamRequest), with Envoy's retry policy, global, per-try and
 * idle timeouts, circuit breakers and request mirroring; failures become Envoy's local replies (NR 404,
 * NC/UH/UF/UO/UC 503, UPE 502, UT 504, URX when retries ran out).
 */
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
} from "../../../../http/filter.ts";
import { encodeRequestHead } from "../../../../http/h1_glue.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import { encodeTrailersBlock, h2RequestHead, useH2 } from "./request_head.ts";
import type { RouteActionEntry, RouteEntry } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter } from "../../../../stats/store.ts";
import type { PriorityBreakers } from "../../../../upstream/circuit_breaker.ts";
import type { Cluster, Host, LbContext } from "../../../../upstream/types.ts";
import type { RouterConfig } from "./config.ts";
import { MirrorSet } from "./mirror.ts";
import { applyOverrides, type RequestLimits } from "./overrides.ts";
import { prepareRequestHeaders } from "./request_head.ts";
import { directReply, failureReply, localReply, retriedFailureKind, stopIteration } from "./replies.ts";
import { RetryDecision, RetryState, retryStats } from "./retry_state.ts";
import { type Attempt, AttemptFailure, type AttemptOwner } from "./attempt.ts";
import { H2Start, H2UpstreamRequest } from "./h2_upstream_request.ts";
import { UpstreamRequest } from "./upstream_request.ts";

const EMPTY = new Uint8Array(0);
/** Envoy's default for the buffered request body (the listener's per_connection_buffer_limit_bytes). */
const DEFAULT_BUFFER_LIMIT = 1024 * 1024;
const TIMER_GLOBAL = 0;
const TIMER_IDLE = 1;
/** The load-balancer context of a request without hash policy or hosts to avoid (shared, never mutated). */
const NO_LB_CONTEXT: LbContext = {};

/** The long-lived router state of one HCM. */
export class RouterFactory implements HttpFilterFactory {
  readonly terminal = true;
  /** Envoy's router stats under `http.<stat_prefix>.`. */
  readonly stats: {
    no_route: Counter;
    no_cluster: Counter;
    rq_redirect: Counter;
    rq_direct_response: Counter;
    rq_total: Counter;
  };
  /** Random source for back-off jitter and mirror fractions (tests replace it). */
  random: () => number = Math.random;
  constructor(readonly config: RouterConfig, readonly ctx: FactoryContext, readonly statPrefix: string) {
    const s = ctx.stats.scope(`http.${statPrefix}`);
    this.stats = {
      no_route: s.counter("no_route"),
      no_cluster: s.counter("no_cluster"),
      rq_redirect: s.counter("rq_redirect"),
      rq_direct_response: s.counter("rq_direct_response"),
      rq_total: s.counter("rq_total"),
    };
  }
  createFilter(cb: HttpFilterCallbacks): HttpFilter {
    return new RouterFilter(this, cb);
  }
}

/** Per-stream router. */
class RouterFilter implements HttpFilter, TimeoutTarget, AttemptOwner, RequestLimits {
  timeoutMs = 0;
  perTryMs = 0;
  retryOn = 0;
  numRetries = 0;
  extraCodes: number[] | null = null;
  /** Buffered request body (copies) while retries or shadows may need it; null when not buffering. */
  body: Uint8Array[] | null = null;
  /** The whole request body was received. */
  bodyEnd = false;
  /** The request trailers, once received. */
  requestTrailers: HeaderMap | null = null;
  #trailersBlock: Uint8Array | null = null;
  #bodyBytes = 0;
  #bufferLimit = DEFAULT_BUFFER_LIMIT;
  #route: (RouteEntry & RouteActionEntry) | null = null;
  #cluster: Cluster | null = null;
  #breakers: PriorityBreakers | null = null;
  #attempt: Attempt | null = null;
  #retry: RetryState | null = null;
  #shadows: MirrorSet | null = null;
  #path = "";
  #chunkedUp = false;
  #attempts = 0;
  #flags = 0;
  #finished = false;
  #destroyed = false;
  #upstreamStart = 0;
  #timer = new TimerEntry(this);
  #deadline = 0;
  #idleMs = 0;
  #lastActivity = 0;

  constructor(readonly f: RouterFactory, readonly cb: HttpFilterCallbacks) {}

  get ctx(): FactoryContext {
    return this.f.ctx;
  }

  get tunnelRequested(): boolean {
    return this.cb.upgradeType !== "";
  }

  /** The request trailers as an HTTP/1.1 chunked trailer block (encoded on first use). */
  get trailersBlock(): Uint8Array | null {
    const t = this.requestTrailers;
    if (t === null) return null;
    return this.#trailersBlock ??= encodeTrailersBlock(t);
  }

  decodeHeaders(endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    const cb = this.cb;
    const route = cb.route();
    const stats = this.f.stats;
    stats.rq_total.inc();
    if (!route) {
      stats.no_route.inc();
      cb.streamInfo.responseFlags |= ResponseFlag.NoRouteFound;
      return this.#localReply(404, "", ResponseFlag.NoRouteFound, "route_not_found");
    }
    if (route.kind === "direct_response") {
      stats.rq_direct_response.inc();
      return this.#direct(route, route.status, route.body, null);
    }
    if (route.kind === "redirect") {
      stats.rq_redirect.inc();
      const r = route.redirect(cb.request);
      return this.#direct(route, r.status, EMPTY, r.location);
    }
    this.#route = route;
    const req = cb.request;
    const name = route.selectCluster(req, Math.random());
    const cluster = name ? this.f.ctx.clusterManager.get(name) : undefined;
    cb.streamInfo.upstreamCluster = name;
    if (!cluster) {
      stats.no_cluster.inc();
      return this.#localReply(503, "", ResponseFlag.NoClusterFound, "cluster_not_found");
    }
    this.#cluster = cluster;
    this.#breakers = cluster.circuitBreakers.forPriority(route.priority);
    return this.#start(endStream);
  }

  #direct(
    route: RouteEntry,
    status: number,
    body: Uint8Array,
    location: string | null,
  ): Promise<HttpFilterStatus> {
    return directReply(this.cb, route, status, body, location).then(stopIteration);
  }

  #localReply(
    status: number,
    body: string,
    flags: number,
    details: string,
    extra?: [string, string][],
  ): Promise<HttpFilterStatus> {
    const route = this.#route;
    const count = route?.includeAttemptCountInResponse ? this.#attempts : 0;
    return localReply(this.cb, route, count, { status, body, flags: flags | this.#flags, details, extra })
      .then(stopIteration);
  }

  /** Prepares the upstream request head (once), timeouts, retries and shadows, then runs the first attempt. */
  #start(endStream: boolean): Promise<HttpFilterStatus> {
    const cb = this.cb;
    const route = this.#route!;
    const req = cb.request;
    const h = req.headers;
    const upgrade = cb.upgradeType;
    this.#path = prepareRequestHeaders(cb, route);
    // ---- timeouts and retries: the route's, then an internal caller's overrides ----
    const policy = route.retryPolicy;
    this.timeoutMs = route.timeoutMs;
    if (policy !== null) {
      this.perTryMs = policy.perTryTimeoutMs;
      this.retryOn = policy.retryOn;
      this.numRetries = policy.numRetries;
    }
    if (cb.internal) applyOverrides(h, this, this.f.config.respect_expected_rq_timeout);
    if (this.perTryMs >= this.timeoutMs && this.timeoutMs > 0) this.perTryMs = 0;
    const expected = this.perTryMs > 0 ? this.perTryMs : this.timeoutMs;
    if (expected > 0 && !this.f.config.suppress_envoy_headers) {
      h.set("x-envoy-expected-rq-timeout-ms", String(expected));
    }
    if (this.retryOn !== 0 && !upgrade && (policy === null || policy.requestRetriable(req))) {
      this.#retry = new RetryState(
        policy,
        this.retryOn,
        this.numRetries,
        this,
        this.f.ctx.timers,
        this.f.random,
      );
      this.#retry.extraCodes = this.extraCodes;
    }
    if (req.contentLength < 0 && !endStream) {
      h.addLower("transfer-encoding", "chunked");
      this.#chunkedUp = true;
    }
    if (route.mirrorPolicies.length > 0) {
      this.#shadows = MirrorSet.create(this.f.ctx, route, h, this.timeoutMs, this.f.random);
    }
    if (!endStream && (this.#retry !== null || this.#shadows !== null)) {
      this.body = [];
      this.#bufferLimit = route.bufferLimitBytes ?? DEFAULT_BUFFER_LIMIT;
    }
    if (route.idleTimeoutMs !== undefined && route.idleTimeoutMs > 0) {
      this.#idleMs = route.idleTimeoutMs;
      this.#lastActivity = this.f.ctx.clock.monotonic();
    }
    this.#upstreamStart = this.f.ctx.clock.monotonic();
    this.bodyEnd = endStream;
    if (endStream) this.#requestComplete(this.#upstreamStart);
    else if (this.#idleMs > 0) this.#armTimer();
    return this.#startAttempt();
  }

  /** Monotonic start of the current attempt: the first one starts with the upstream request. */
  #attemptStart(): number {
    return this.#attempts === 1 ? this.#upstreamStart : this.f.ctx.clock.monotonic();
  }

  /** Picks a host and runs one attempt; resolves when it is under way (or failed). */
  async #startAttempt(): Promise<HttpFilterStatus> {
    const cb = this.cb;
    const route = this.#route!;
    const cluster = this.#cluster!;
    const req = cb.request;
    const retry = this.#retry;
    const hash = route.hasHashPolicy ? route.hash(req, cb.routeContext()) : undefined;
    let host: Host | null;
    if (retry !== null && retry.attempted.length > 0 && retry.policy?.previousHosts) {
      const avoid = retry.attempted;
      host = cluster.chooseHost({ hash, avoid });
      for (let i = 1; i < retry.policy.hostSelectionMaxAttempts && host && avoid.includes(host); i++) {
        host = cluster.chooseHost({ hash, avoid });
      }
    } else {
      host = cluster.chooseHost(hash !== undefined ? { hash } : NO_LB_CONTEXT);
    }
    if (!host) {
      this.#finish();
      return this.#localReply(
        503,
        "no healthy upstream",
        ResponseFlag.NoHealthyUpstream,
        "no_healthy_upstream",
      );
    }
    retry?.attempted.push(host);
    const info = cb.streamInfo;
    info.upstreamHost = host.addressString;
    info.attemptCount = ++this.#attempts;
    const h = req.headers;
    if (route.autoHostRewrite) h.set("host", host.hostname);
    if (route.includeRequestAttemptCount) h.set("x-envoy-attempt-count", String(this.#attempts));
    const proto = cluster.httpProtocol;
    if (proto !== undefined && proto !== 0 && useH2(proto, cb)) {
      const a2 = new H2UpstreamRequest(this, cluster, host, this.#breakers!, route.priority);
      a2.startMono = this.#attemptStart();
      if (this.perTryMs > 0) a2.setPerTryTimeout(this.perTryMs);
      this.#attempt = a2;
      const r = await a2.start(h2RequestHead(req, this.#path));
      if (r !== H2Start.Http1 || this.#attempt !== a2 || this.#finished) {
        return HttpFilterStatus.StopIteration;
      }
      // ALPN chose HTTP/1.1 for this host: the same attempt goes over HTTP/1.1
    }
    const head = encodeRequestHead(req.method, this.#path, h);
    const a = new UpstreamRequest(this, cluster, host, this.#breakers!, route.priority);
    a.startMono = this.#attemptStart();
    if (this.perTryMs > 0) a.setPerTryTimeout(this.perTryMs);
    this.#attempt = a;
    await a.start(head, this.#chunkedUp);
    return HttpFilterStatus.StopIteration;
  }

  async decodeData(data: Uint8Array, endStream: boolean): Promise<HttpFilterStatus> {
    if (this.#finished) return HttpFilterStatus.StopIteration;
    if (this.#idleMs > 0) this.#lastActivity = this.f.ctx.clock.monotonic();
    if (this.body !== null) {
      this.#bodyBytes += data.length;
      if (this.#bodyBytes > this.#bufferLimit) this.#abandonBuffer();
      else if (data.length > 0) this.body.push(data.slice());
    }
    if (endStream) this.bodyEnd = true;
    const a = this.#attempt;
    if (a !== null && a.ready) await a.sendData(data, endStream);
    if (endStream) this.#requestComplete(this.f.ctx.clock.monotonic());
    return HttpFilterStatus.StopIteration;
  }

  async decodeTrailers(trailers: HeaderMap): Promise<HttpFilterStatus> {
    this.requestTrailers = trailers;
    this.bodyEnd = true;
    const a = this.#attempt;
    if (a !== null && a.ready) await a.sendTrailers();
    this.#requestComplete(this.f.ctx.clock.monotonic());
    return HttpFilterStatus.StopIteration;
  }

  /** The body outgrew the buffer: no retries or shadows for this request any more. */
  #abandonBuffer(): void {
    this.body = null;
    const retry = this.#retry;
    if (retry !== null) retry.replayable = false;
    this.#shadows = null;
    retryStats(this.#cluster!, this.f.ctx.stats).retry_or_shadow_abandoned.inc();
    const a = this.#attempt;
    if (a === null || !a.ready) {
      // a retry was waiting to replay the body it can no longer have
      retry?.destroy(this.#breakers);
      a?.abort();
      this.#attempt = null;
      this.#finish();
      this.#localReply(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        ResponseFlag.UpstreamConnectionTermination,
        "upstream_reset_before_response_started{connection_termination}",
      ).catch(() => this.cb.resetStream());
    }
  }

  /** The downstream request is complete (at monotonic `now`): send shadows, start the global timeout. */
  #requestComplete(now: number): void {
    if (this.#shadows !== null) {
      this.#shadows.send(this.cb.request.method, this.#path, this.body ?? []);
      this.#shadows = null;
    }
    if (this.timeoutMs > 0 && !this.#finished && !this.#attempt?.tunnel) {
      this.#deadline = now + this.timeoutMs;
      if (this.#idleMs > 0) this.#armTimer();
      else this.f.ctx.timers.arm(this.#timer, this.timeoutMs, TIMER_GLOBAL);
    }
  }

  #armTimer(): void {
    let next = this.#deadline > 0 ? this.#deadline : Infinity;
    let kind = TIMER_GLOBAL;
    if (this.#idleMs > 0 && this.#lastActivity + this.#idleMs < next) {
      next = this.#lastActivity + this.#idleMs;
      kind = TIMER_IDLE;
    }
    if (next === Infinity) return;
    this.f.ctx.timers.arm(this.#timer, Math.max(1, next - this.f.ctx.clock.monotonic()), kind);
  }

  onTimeout(kind: number): void {
    if (this.#finished || this.#destroyed) return;
    const a = this.#attempt;
    if (a !== null && a.upstreamComplete) return;
    const cb = this.cb;
    const now = this.f.ctx.clock.monotonic();
    const idle = kind === TIMER_IDLE || (this.#deadline === 0 || now < this.#deadline);
    if (idle && this.#idleMs > 0 && now < this.#lastActivity + this.#idleMs) {
      this.#armTimer(); // activity since: not idle
      return;
    }
    const cluster = this.#cluster!;
    if (!idle) cluster.stats.upstream_rq_timeout.inc();
    if (a !== null) {
      if (!idle) {
        a.host.stats.rq_timeout++;
        cluster.recordOutcome(a.host, 504);
      }
      a.abort();
    }
    this.#attempt = null;
    this.#finish();
    const flag = idle ? ResponseFlag.StreamIdleTimeout : ResponseFlag.UpstreamRequestTimeout;
    if (!cb.responseStarted) {
      if (idle) {
        this.#localReply(408, "stream timeout", flag, "stream_idle_timeout").catch(() => cb.resetStream());
      } else {
        this.#localReply(504, "upstream request timeout", flag, "upstream_response_timeout")
          .catch(() => cb.resetStream());
      }
    } else {
      cb.streamInfo.responseFlags |= flag;
      cb.resetStream();
    }
  }

  /** Activity from upstream (for the route idle timeout). */
  onUpstreamActivity(now: number): void {
    if (this.#idleMs > 0) this.#lastActivity = now || this.f.ctx.clock.monotonic();
  }

  // ---- AttemptOwner ----

  onAttemptHeaders(a: Attempt, status: number, headers: HeaderMap): boolean {
    if (a !== this.#attempt || this.#finished) return false;
    const retry = this.#retry;
    if (retry !== null) {
      const stats = retry.stats(this.#cluster!, this.f.ctx.stats);
      const d = retry.onResponse(status, headers, this.#breakers!, stats);
      if (d === RetryDecision.Yes) {
        this.#attempt = null;
        return false;
      }
      if (d === RetryDecision.LimitExceeded) this.#flags |= ResponseFlag.UpstreamRetryLimitExceeded;
      else if (d === RetryDecision.Overflow) this.#flags |= ResponseFlag.UpstreamOverflow;
    }
    const cb = this.cb;
    const info = cb.streamInfo;
    info.responseFlags |= this.#flags;
    info.responseCodeDetails = "via_upstream";
    const route = this.#route!;
    if (!this.f.config.suppress_envoy_headers) {
      headers.set(
        "x-envoy-upstream-service-time",
        String(Math.round((a.rxMono || this.f.ctx.clock.monotonic()) - this.#upstreamStart)),
      );
    }
    if (route.includeAttemptCountInResponse) headers.set("x-envoy-attempt-count", String(this.#attempts));
    if (!route.responseHeaders.empty) route.responseHeaders.apply(headers, cb.routeContext());
    return true;
  }

  onAttemptFailed(a: Attempt, why: AttemptFailure, detail: string): void {
    if (a !== this.#attempt || this.#finished || this.#destroyed) return;
    this.#attempt = null;
    const retry = this.#retry;
    const kind = retriedFailureKind(why);
    if (why === AttemptFailure.PerTryTimeout) {
      retryStats(this.#cluster!, this.f.ctx.stats).upstream_rq_per_try_timeout.inc();
    }
    if (retry !== null) {
      const stats = retry.stats(this.#cluster!, this.f.ctx.stats);
      if (kind !== null) {
        const d = retry.onReset(kind, this.#breakers!, stats, why === AttemptFailure.Refused);
        if (d === RetryDecision.Yes) return;
        if (d === RetryDecision.LimitExceeded) this.#flags |= ResponseFlag.UpstreamRetryLimitExceeded;
        else if (d === RetryDecision.Overflow) this.#flags |= ResponseFlag.UpstreamOverflow;
      }
    }
    this.#finish();
    const r = failureReply(why, detail, this.f.config.suppress_envoy_headers);
    if (r.timeout) this.#cluster!.stats.upstream_rq_timeout.inc();
    if (r.transportFailure) this.cb.streamInfo.upstreamTransportFailureReason = detail;
    this.#localReply(r.status, r.body, r.flag, r.details, r.headers).catch(() => this.cb.resetStream());
  }

  onAttemptResetAfterHeaders(
    a: Attempt,
    flag: number = ResponseFlag.UpstreamConnectionTermination,
    reason = "connection_termination",
  ): void {
    if (a !== this.#attempt || this.#destroyed) return;
    this.#finish();
    const info = this.cb.streamInfo;
    info.responseFlags |= flag;
    info.responseCodeDetails = `upstream_reset_after_response_started{${reason}}`;
    this.cb.resetStream();
  }

  /** The back-off passed: next attempt. */
  onRetry(): void {
    if (this.#finished || this.#destroyed) return;
    this.#startAttempt().catch(() => this.cb.resetStream());
  }

  /** The router is done with this request (a final answer is decided). */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.f.ctx.timers.disarm(this.#timer);
    this.#retry?.destroy(this.#breakers);
  }

  onDestroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const a = this.#attempt;
    if (a !== null && !a.upstreamComplete && !a.finished) {
      if (a.active) this.#cluster?.stats.upstream_rq_tx_reset.inc();
      a.abort();
    }
    this.f.ctx.timers.disarm(this.#timer);
    this.#retry?.destroy(this.#breakers);
    this.#finished = true;
  }
}
