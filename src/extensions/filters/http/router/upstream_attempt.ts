/**
 * What every attempt of a routed request does whatever its protocol: the circuit breaker's request slot, the
 * upstream_rq_* and per-host request stats, the per-try timeout, the response-head bookkeeping (outcome for
 * outlier detection, response-code stats, immediate health-check failure), aborting, and how failures are
 * reported to the router. The HTTP/1.1 (`UpstreamRequest`) and HTTP/2 (`H2UpstreamRequest`) attempts extend
 * it with their own I/O.
 */
import { type TimeoutTarget, TimerEntry } from "../../../../common/timer_wheel.ts";
import type { HeaderMap } from "../../../../http/headers.ts";
import type { PriorityBreakers } from "../../../../upstream/circuit_breaker.ts";
import { type Cluster, type ConnectFailure, type Host, UpstreamError } from "../../../../upstream/types.ts";
import type { Attempt, AttemptOwner } from "./attempt.ts";
import type { HcmTracing } from "../../../../tracing/http_tracing.ts";
import type { Span } from "../../../../tracing/types.ts";

/** The protocol-independent part of one attempt; created per try (once per request without retries). */
export abstract class UpstreamAttempt implements Attempt, TimeoutTarget {
  /** True once the whole request went upstream. */
  requestSent = false;
  /** The whole upstream response is in hand. */
  upstreamComplete = false;
  /** The response head was accepted by the router (and goes downstream). */
  headersForwarded = false;
  /** True once the upstream accepted an upgrade (101); HTTP/2 upstreams never tunnel here. */
  tunnel = false;
  /** Monotonic start of the attempt (set by the router). */
  startMono = 0;
  /** Monotonic time of the last upstream receive (0 before any). */
  rxMono = 0;
  #ready = false;
  #finished = false;
  #aborted = false;
  /** Holds a circuit-breaker request slot. */
  #holdsRequest = false;
  /** Counted in upstream_rq_total/active and the host's request stats. */
  #counted = false;
  #perTry: TimerEntry | null = null;
  #perTryMs = 0;
  /** The attempt's client span (tracing with child spans), finalized when the attempt ends. */
  span: Span | null = null;
  #tracing: HcmTracing | null = null;
  #spanProtocol = "";
  #status = 0;

  constructor(
    readonly owner: AttemptOwner,
    readonly cluster: Cluster,
    readonly host: Host,
    readonly breakers: PriorityBreakers,
    readonly priority: number,
  ) {}

  /** Upstream bytes arrived now: the attempt's and the stream's receive times, the router's idle timeout. */
  noteReceived(): void {
    const owner = this.owner;
    const now = owner.ctx.clock.monotonic();
    this.rxMono = now;
    const info = owner.cb.streamInfo;
    if (info.firstUpstreamRxMono === 0) info.firstUpstreamRxMono = now;
    owner.onUpstreamActivity(now);
  }

  /** True once the attempt ended (completed, failed or aborted). */
  get finished(): boolean {
    return this.#finished;
  }

  /** True once the head and the buffered body went out: new body bytes may be sent directly. */
  get ready(): boolean {
    return this.#ready && !this.#finished;
  }

  /** True while the attempt holds (or waits for) a connection or stream. */
  abstract get active(): boolean;

  /** Sends request body bytes; resolves when they may be reused (false when the attempt failed). */
  abstract sendData(data: Uint8Array, endStream: boolean): boolean | Promise<boolean>;

  /** Sends the owner's request trailers, ending the request. */
  abstract sendTrailers(): Promise<void>;

  /** Drops the connection or resets the stream the attempt holds (no-op when none). */
  protected abstract release(): void;

  /** Cancels a pending connection or stream request (no-op when none is pending). */
  protected abstract cancelPending(): void;

  /** True once the router aborted the attempt. */
  protected get aborted(): boolean {
    return this.#aborted;
  }

  /** The head and the buffered body went out. */
  protected markReady(): void {
    this.#ready = true;
  }

  /** Gives the attempt its client span, finalized with `tracing` when the attempt ends. */
  traceWith(span: Span, tracing: HcmTracing, protocol: string): void {
    this.span = span;
    this.#tracing = tracing;
    this.#spanProtocol = protocol;
  }

  /** Sets the per-try timeout (armed when the request is complete). */
  setPerTryTimeout(ms: number): void {
    this.#perTryMs = ms;
  }

  /** Takes a circuit-breaker request slot; on overflow the attempt ends and the owner is told (false). */
  protected takeRequest(): boolean {
    if (!this.breakers.tryRequest()) {
      this.cluster.circuitBreakers.stats.upstream_rq_pending_overflow.inc();
      this.finish(false);
      this.owner.onAttemptFailed(this, new UpstreamError("overflow"));
      return false;
    }
    this.#holdsRequest = true;
    return true;
  }

  /** The request goes to the host: upstream_rq_total/active and the host's request stats. */
  protected countRequest(): void {
    this.#counted = true;
    const stats = this.cluster.stats;
    const host = this.host;
    stats.upstream_rq_total.inc();
    stats.upstream_rq_active.inc();
    host.activeRequests++;
    host.stats.rq_total++;
  }

  /** Ends the attempt uncounted, giving the request slot back (another attempt takes the request over). */
  protected handOver(): void {
    this.#holdsRequest = false;
    this.#finished = true;
    this.breakers.releaseRequest();
  }

  /** The whole request went upstream: starts the per-try timeout (unless a head already went downstream). */
  protected armPerTry(): void {
    if (this.#perTryMs > 0 && !this.#finished && !this.headersForwarded) {
      this.#perTry ??= new TimerEntry(this);
      this.owner.ctx.timers.arm(this.#perTry, this.#perTryMs, 0);
    }
  }

  /** The per-try timeout fired before a response head went downstream. */
  onTimeout(): void {
    if (this.#finished || this.headersForwarded) return;
    this.host.stats.rq_timeout++;
    this.cluster.recordOutcome(this.host, 504);
    this.release();
    this.finish(false);
    this.owner.onAttemptFailed(this, new UpstreamError("per_try_timeout"));
  }

  /** The router gives up on this attempt (global timeout, downstream reset, retry): release everything. */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.cancelPending();
    this.release();
    this.finish(false);
  }

  /**
   * The response head arrived: records the outcome and asks the router. True when the head goes downstream;
   * false when the router took over (retry), and the attempt is then closed.
   */
  protected acceptHead(status: number, headers: HeaderMap): boolean {
    if (this.#perTry !== null) this.owner.ctx.timers.disarm(this.#perTry);
    this.#status = status;
    const cluster = this.cluster;
    cluster.recordOutcome(this.host, status);
    cluster.stats.recordResponseCode(status);
    if (headers.has("x-envoy-immediate-health-check-fail")) {
      cluster.reportImmediateHealthCheckFail?.(this.host);
    }
    if (!this.owner.onAttemptHeaders(this, status, headers)) {
      this.release();
      this.finish(false);
      return false;
    }
    this.headersForwarded = true;
    return true;
  }

  /** The pool could not give a connection or stream (`reason` is the error's kind as it is). */
  protected poolFailed(reason: ConnectFailure, detail: string): void {
    this.fail(new UpstreamError(reason, detail), reason === "overflow" ? 0 : 503);
  }

  /**
   * The attempt failed with `err` before its head went downstream: releases everything, records `outcome` for
   * the host (0: none) and tells the router, which retries or answers locally.
   */
  protected fail(err: UpstreamError, outcome: number): void {
    this.release();
    this.finish(false);
    if (outcome !== 0) this.cluster.recordOutcome(this.host, outcome);
    this.owner.onAttemptFailed(this, err);
  }

  /** The upstream failed after the head went downstream: the router resets the downstream stream. */
  protected resetAfterHeaders(flag: number, reason: string): void {
    this.release();
    this.finish(false);
    this.owner.onAttemptResetAfterHeaders(this, flag, reason);
  }

  /** Upstream request bookkeeping, once: the breaker slot, upstream_rq_* and the host's request stats. */
  protected finish(success: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    const span = this.span;
    if (span !== null) {
      this.span = null;
      this.#tracing!.finishUpstream(span, {
        protocol: this.#spanProtocol,
        status: this.#status,
        flags: 0,
        cluster: this.cluster.name,
        host: this.host.addressString,
      });
    }
    if (this.#perTry !== null) this.owner.ctx.timers.disarm(this.#perTry);
    if (!this.#holdsRequest) return;
    this.#holdsRequest = false;
    this.breakers.releaseRequest();
    if (!this.#counted) return;
    const stats = this.cluster.stats;
    const host = this.host;
    stats.upstream_rq_active.dec();
    stats.upstream_rq_completed.inc();
    host.activeRequests--;
    if (success) {
      const end = this.rxMono || this.owner.ctx.clock.monotonic();
      stats.upstream_rq_time.record(end - this.startMono);
      host.stats.rq_success++;
    } else host.stats.rq_error++;
  }
}
