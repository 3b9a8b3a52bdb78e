/**
 * envoy.filters.http.router: the terminal HTTP filter. Picks the cluster for the matched route and runs the
 * request as one or more attempts, with Envoy's retry policy, global, per-try and idle timeouts, circuit
 * breakers and request mirroring; failures become Envoy's local replies (NR 404, NC/UH/UF/UO/UC 503, UPE 502,
 * UT 504, URX when retries ran out).
 *
 * This module holds the per-stream state and the HTTP filter entry points; the request's preparation
 * (request_setup.ts), host choice and attempts (attempt_runner.ts), the global and idle timeouts
 * (stream_timeouts.ts) and what becomes of an attempt's response or failure (upstream_response.ts) work on
 * that state in their own modules.
 */
import { Logger } from "../../../../common/log.ts";
import { type MetadataMatchCriteria, requestCriteria } from "../../../../common/metadata_match.ts";
import { ResponseFlag } from "../../../../common/response_flags.ts";
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import {
  type HttpFilter,
  type HttpFilterCallbacks,
  type HttpFilterFactory,
  HttpFilterStatus,
} from "../../../../http/filter.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { RouteActionEntry, RouteEntry } from "../../../../http/routing/types.ts";
import type { FactoryContext } from "../../../../network/filter.ts";
import type { Counter } from "../../../../stats/store.ts";
import type { PriorityBreakers } from "../../../../upstream/circuit_breaker.ts";
import type { Cluster, UpstreamError } from "../../../../upstream/types.ts";
import type { Attempt, AttemptOwner } from "./attempt.ts";
import { startAttempt } from "./attempt_runner.ts";
import type { RouterConfig } from "./config.ts";
import type { MirrorSet } from "./mirror.ts";
import type { RequestLimits } from "./overrides.ts";
import { directReply, localReply, stopIteration } from "./replies.ts";
import { encodeTrailersBlock } from "./request_head.ts";
import { DEFAULT_BUFFER_LIMIT, prepareRequest } from "./request_setup.ts";
import { type RetryState, retryStats } from "./retry_state.ts";
import { startGlobalTimeout, streamTimeout } from "./stream_timeouts.ts";
import { acceptResponseHead, attemptFailed, attemptResetAfterHeaders } from "./upstream_response.ts";

const routerLog = new Logger("router");

const EMPTY = new Uint8Array(0);

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

/**
 * Per-stream router. Its public fields are the router's own state, shared with the router modules named
 * above (nothing outside this directory sees the class).
 */
export class RouterFilter implements HttpFilter, TimeoutTarget, AttemptOwner, RequestLimits {
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
  /** The most the request body buffer may hold. */
  bufferLimit = DEFAULT_BUFFER_LIMIT;
  /** The matched route (routing to a cluster). */
  route: (RouteEntry & RouteActionEntry) | null = null;
  cluster: Cluster | null = null;
  breakers: PriorityBreakers | null = null;
  /** Subset criteria for host picks: the route's metadata_match under the request's `envoy.lb` dynamic metadata. */
  metadataMatch: MetadataMatchCriteria | null = null;
  /** The current attempt (null between a failure and the next try). */
  attempt: Attempt | null = null;
  /** Retry state, when the request may be retried. */
  retry: RetryState | null = null;
  /** Mirrors to send once the request is complete. */
  shadows: MirrorSet | null = null;
  /** The request path as sent upstream. */
  path = "";
  /** The request body goes upstream chunked. */
  chunkedUp = false;
  /** Attempts started. */
  attempts = 0;
  /** Each attempt gets its own client span (tracing with start_child_span or spawn_upstream_span). */
  childSpans = false;
  /** Response flags gathered for the final answer (URX, UO). */
  flags = 0;
  /** A final answer is decided. */
  finished = false;
  destroyed = false;
  /** Monotonic start of the upstream request. */
  upstreamStart = 0;
  /** The global and idle timeout (stream_timeouts.ts). */
  readonly timer: TimerEntry = new TimerEntry(this);
  /** Monotonic deadline of the global timeout (0 until the request is complete). */
  deadline = 0;
  /** Route idle timeout in ms (0 = none). */
  idleMs = 0;
  /** Monotonic time of the last activity either way (idle timeout). */
  lastActivity = 0;
  #trailersBlock: Uint8Array | null = null;
  #bodyBytes = 0;

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
      return this.localReply(404, "", ResponseFlag.NoRouteFound, "route_not_found");
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
    this.route = route;
    // chosen with the route (ActiveStream.route): weighted and cluster_header picks are made once
    const name = cb.routeClusterName;
    const cluster = name ? this.f.ctx.clusterManager.get(name) : undefined;
    if (routerLog.enabled("debug")) {
      routerLog.debug(
        cluster
          ? `${cb.streamInfo.logPrefix()}cluster '${name}' match for URL '${cb.request.path}'`
          : `${cb.streamInfo.logPrefix()}unknown cluster '${name}'`,
      );
    }
    if (!cluster) {
      stats.no_cluster.inc();
      return this.localReply(503, "", ResponseFlag.NoClusterFound, "cluster_not_found");
    }
    this.cluster = cluster;
    this.breakers = cluster.circuitBreakers.forPriority(route.priority);
    this.metadataMatch = requestCriteria(cb.routeMetadataMatch ?? null, cb.streamInfo.dynamicMetadata);
    prepareRequest(this, endStream);
    const span = cb.activeSpan;
    if (span != null) {
      // Envoy: a client span per attempt (start_child_span, spawn_upstream_span) carries the context;
      // otherwise the request's own span is propagated
      if (this.f.config.start_child_span || cb.tracing!.spawnUpstreamSpan) this.childSpans = true;
      else span.injectContext(cb.request.headers);
    }
    return startAttempt(this);
  }

  #direct(
    route: RouteEntry,
    status: number,
    body: Uint8Array,
    location: string | null,
  ): Promise<HttpFilterStatus> {
    return directReply(this.cb, route, status, body, location).then(stopIteration);
  }

  /** Answers locally (with the gathered response flags and, when the route asks, the attempt count). */
  localReply(
    status: number,
    body: string,
    flags: number,
    details: string,
    extra?: [string, string][],
  ): Promise<HttpFilterStatus> {
    const route = this.route;
    const count = route?.includeAttemptCountInResponse ? this.attempts : 0;
    return localReply(this.cb, route, count, { status, body, flags: flags | this.flags, details, extra })
      .then(stopIteration);
  }

  decodeData(data: Uint8Array, endStream: boolean): HttpFilterStatus | Promise<HttpFilterStatus> {
    if (this.finished) return HttpFilterStatus.StopIteration;
    if (this.idleMs > 0) this.lastActivity = this.f.ctx.clock.monotonic();
    if (this.body !== null) {
      this.#bodyBytes += data.length;
      if (this.#bodyBytes > this.bufferLimit) this.#abandonBuffer();
      else if (data.length > 0) this.body.push(data.slice());
    }
    if (endStream) this.bodyEnd = true;
    const a = this.attempt;
    if (a !== null && a.ready) {
      // an HTTP/2 stream with window takes the chunk at once; a held chunk (or HTTP/1.1) is waited for
      const sent = a.sendData(data, endStream);
      if (sent instanceof Promise) return sent.then(endStream ? this.#completeAfterData : stopIteration);
    }
    if (endStream) this.requestComplete(this.f.ctx.clock.monotonic());
    return HttpFilterStatus.StopIteration;
  }

  readonly #completeAfterData = (): HttpFilterStatus => {
    this.requestComplete(this.f.ctx.clock.monotonic());
    return HttpFilterStatus.StopIteration;
  };

  async decodeTrailers(trailers: HeaderMap): Promise<HttpFilterStatus> {
    this.requestTrailers = trailers;
    this.bodyEnd = true;
    const a = this.attempt;
    if (a !== null && a.ready) await a.sendTrailers();
    this.requestComplete(this.f.ctx.clock.monotonic());
    return HttpFilterStatus.StopIteration;
  }

  /** The body outgrew the buffer: no retries or shadows for this request any more. */
  #abandonBuffer(): void {
    this.body = null;
    const retry = this.retry;
    if (retry !== null) retry.replayable = false;
    this.shadows = null;
    retryStats(this.cluster!, this.f.ctx.stats).retry_or_shadow_abandoned.inc();
    const a = this.attempt;
    if (a === null || !a.ready) {
      // a retry was waiting to replay the body it can no longer have
      retry?.destroy(this.breakers);
      a?.abort();
      this.attempt = null;
      this.finish();
      this.localReply(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        ResponseFlag.UpstreamConnectionTermination,
        "upstream_reset_before_response_started{connection_termination}",
      ).catch(() => this.cb.resetStream());
    }
  }

  /** The downstream request is complete (at monotonic `now`): send shadows, start the global timeout. */
  requestComplete(now: number): void {
    if (this.shadows !== null) {
      this.shadows.send(this.cb.request, this.path, this.body ?? []);
      this.shadows = null;
    }
    if (this.timeoutMs > 0 && !this.finished && !this.attempt?.tunnel) startGlobalTimeout(this, now);
  }

  /** The global or idle timeout fired (stream_timeouts.ts). */
  onTimeout(kind: number): void {
    streamTimeout(this, kind);
  }

  /** Activity from upstream (for the route idle timeout). */
  onUpstreamActivity(now: number): void {
    if (this.idleMs > 0) this.lastActivity = now || this.f.ctx.clock.monotonic();
  }

  // ---- AttemptOwner (upstream_response.ts) ----

  onAttemptHeaders(a: Attempt, status: number, headers: HeaderMap): boolean {
    return acceptResponseHead(this, a, status, headers);
  }

  onAttemptFailed(a: Attempt, err: UpstreamError): void {
    attemptFailed(this, a, err);
  }

  onAttemptResetAfterHeaders(
    a: Attempt,
    flag: number = ResponseFlag.UpstreamConnectionTermination,
    reason = "connection_termination",
  ): void {
    attemptResetAfterHeaders(this, a, flag, reason);
  }

  /** The back-off passed: next attempt. */
  onRetry(): void {
    if (this.finished || this.destroyed) return;
    try {
      const started = startAttempt(this);
      if (started instanceof Promise) started.catch(() => this.cb.resetStream());
    } catch {
      this.cb.resetStream();
    }
  }

  /** The router is done with this request (a final answer is decided). */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.f.ctx.timers.disarm(this.timer);
    this.retry?.destroy(this.breakers);
  }

  onDestroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const a = this.attempt;
    if (a !== null && !a.upstreamComplete && !a.finished) {
      if (a.active) this.cluster?.stats.upstream_rq_tx_reset.inc();
      a.abort();
    }
    this.f.ctx.timers.disarm(this.timer);
    this.retry?.destroy(this.breakers);
    this.finished = true;
  }
}
